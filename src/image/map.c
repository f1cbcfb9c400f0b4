/*
 * map.c — a hash map ("bmap") from byte strings to int64, for the importers.
 *
 * Used for directory path -> inode (so resolving an archive entry's parent is
 * one probe, however deep or oddly ordered a hostile archive is), device+inode
 * -> inode (hard links of a directory source) and "seen" sets when walking an
 * image.  Open addressing with linear probing; the hash is seeded per map so
 * an archive cannot be crafted to make every key collide.
 */
#include "imageInt.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

struct slot {
	char *key; /* NULL: empty */
	size_t len;
	uint64_t hash;
	int64_t val;
};

struct bmap {
	struct slot *t;
	size_t cap, n; /* cap is a power of two */
	uint64_t seed;
};

static uint64_t hash_bytes(uint64_t seed, const void *key, size_t len)
{
	/* FNV-1a over a seeded basis, then a final avalanche (splitmix64). */
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

struct bmap *bmap_new(void)
{
	struct bmap *m = xcalloc(1, sizeof(*m));
	m->cap = 64;
	m->t = xcalloc(m->cap, sizeof(*m->t));
	m->seed = (uint64_t)mono_ns() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)m;
	return m;
}

void bmap_free(struct bmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->t[i].key);
	free(m->t);
	free(m);
}

static struct slot *find(const struct bmap *m, const void *key, size_t len, uint64_t h)
{
	size_t i = h & (m->cap - 1);
	for (;;) {
		struct slot *s = &m->t[i];
		if (s->key == NULL ||
		    (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
			return s;
		i = (i + 1) & (m->cap - 1);
	}
}

static void grow(struct bmap *m)
{
	struct slot *old = m->t;
	size_t oldcap = m->cap;
	m->cap *= 2;
	m->t = xcalloc(m->cap, sizeof(*m->t));
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key == NULL)
			continue;
		size_t j = old[i].hash & (m->cap - 1);
		while (m->t[j].key != NULL)
			j = (j + 1) & (m->cap - 1);
		m->t[j] = old[i];
	}
	free(old);
}

bool bmap_get(const struct bmap *m, const void *key, size_t len, int64_t *val)
{
	struct slot *s = find(m, key, len, hash_bytes(m->seed, key, len));
	if (s->key == NULL)
		return false;
	if (val)
		*val = s->val;
	return true;
}

void bmap_put(struct bmap *m, const void *key, size_t len, int64_t val)
{
	if ((m->n + 1) * 4 > m->cap * 3)
		grow(m);
	uint64_t h = hash_bytes(m->seed, key, len);
	struct slot *s = find(m, key, len, h);
	if (s->key == NULL) {
		s->key = xmalloc(len + 1);
		memcpy(s->key, key, len);
		s->key[len] = '\0';
		s->len = len;
		s->hash = h;
		m->n++;
	}
	s->val = val;
}

size_t bmap_count(const struct bmap *m)
{
	return m->n;
}
