/* imap.c — see imap.h. */
#include "imap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t slot_of(const struct imap *m, int64_t key)
{
	uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing */
	return (h >> 32) & (m->cap - 1);
}

void imap_init(struct imap *m)
{
	m->cap = 64;
	m->n = 0;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
}

void imap_free(struct imap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
}

void *imap_get(const struct imap *m, int64_t key)
{
	for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i].key == key)
			return m->slots[i].val;
		if (m->slots[i].key == 0)
			return NULL;
	}
}

static void grow(struct imap *m)
{
	struct imap old = *m;
	m->cap *= 2;
	m->n = 0;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key)
			imap_put(m, old.slots[i].key, old.slots[i].val);
	free(old.slots);
}

void imap_put(struct imap *m, int64_t key, void *val)
{
	if ((m->n + 1) * 4 > m->cap * 3)
		grow(m);
	size_t i = slot_of(m, key);
	while (m->slots[i].key != 0 && m->slots[i].key != key)
		i = (i + 1) & (m->cap - 1);
	if (m->slots[i].key == 0)
		m->n++;
	m->slots[i].key = key;
	m->slots[i].val = val;
}

void *imap_del(struct imap *m, int64_t key)
{
	size_t i = slot_of(m, key);
	while (m->slots[i].key != key) {
		if (m->slots[i].key == 0)
			return NULL;
		i = (i + 1) & (m->cap - 1);
	}
	void *val = m->slots[i].val;
	m->n--;
	/* Backward-shift: move later entries of the cluster into the hole when
	 * their home slot does not lie (cyclically) between hole and them. */
	size_t hole = i;
	for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].key != 0; j = (j + 1) & (m->cap - 1)) {
		size_t home = slot_of(m, m->slots[j].key);
		bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (between)
			continue;
		m->slots[hole] = m->slots[j];
		hole = j;
	}
	m->slots[hole].key = 0;
	m->slots[hole].val = NULL;
	return val;
}

void imap_foreach(const struct imap *m, void (*fn)(int64_t key, void *val, void *arg),
		  void *arg)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			fn(m->slots[i].key, m->slots[i].val, arg);
}
