/*
 * imap.h — a hash table from int64 keys to pointers.
 *
 * Open addressing with linear probing and backward-shift deletion: no
 * tombstones, so lookups stay short however many nodes come and go (a FUSE
 * server's node table sees millions of lookups and forgets).  Key 0 is
 * reserved as "empty".
 */
#ifndef MZ_IMAP_H
#define MZ_IMAP_H

#include <stddef.h>
#include <stdint.h>

struct imap_slot {
	int64_t key;
	void *val;
};

struct imap {
	struct imap_slot *slots;
	size_t cap; /* power of two */
	size_t n;
};

void imap_init(struct imap *m);
void imap_free(struct imap *m);
void *imap_get(const struct imap *m, int64_t key);
/* Insert or replace (key must not be 0). */
void imap_put(struct imap *m, int64_t key, void *val);
/* Remove key; returns its value or NULL. */
void *imap_del(struct imap *m, int64_t key);
/* Visit every entry; fn may not modify the map. */
void imap_foreach(const struct imap *m, void (*fn)(int64_t key, void *val, void *arg),
		  void *arg);

#endif
