/*
 * acl.c — POSIX ACLs of tar entries as system.posix_acl_* xattr values.
 *
 * libarchive parses the ACLs of an archive (GNU tar's SCHILY.acl.*, bsdtar's
 * LIBARCHIVE.acl.*) into its own entry list instead of handing them over as
 * xattrs.  A domain reads an ACL as the kernel's binary xattr, so that is the
 * form the image keeps: a little-endian header (version 2) and one
 * {tag, perm, id} record per entry, sorted by tag and then id, with the three
 * base entries always present and a mask whenever there are named entries
 * (the rules the kernel's posix_acl_valid() checks).
 */
#include "imageInt.h"
#include "archive.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/util.h"

/* The kernel's values (include/uapi/linux/posix_acl*.h). */
enum {
	K_USER_OBJ = 0x01,
	K_USER = 0x02,
	K_GROUP_OBJ = 0x04,
	K_GROUP = 0x08,
	K_MASK = 0x10,
	K_OTHER = 0x20,
	K_VERSION = 2,
};
#define K_UNDEFINED_ID 0xffffffffu

struct kent {
	uint16_t tag, perm;
	uint32_t id;
};

static int ktag(int tag)
{
	switch (tag) {
	case ARCHIVE_ENTRY_ACL_USER_OBJ: return K_USER_OBJ;
	case ARCHIVE_ENTRY_ACL_USER: return K_USER;
	case ARCHIVE_ENTRY_ACL_GROUP_OBJ: return K_GROUP_OBJ;
	case ARCHIVE_ENTRY_ACL_GROUP: return K_GROUP;
	case ARCHIVE_ENTRY_ACL_MASK: return K_MASK;
	case ARCHIVE_ENTRY_ACL_OTHER: return K_OTHER;
	default: return 0;
	}
}

static int kent_cmp(const void *pa, const void *pb)
{
	const struct kent *a = pa, *b = pb;
	if (a->tag != b->tag)
		return a->tag < b->tag ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Is there an entry with this tag (and, for named entries, this id)? */
static bool has_id(const struct kent *v, int n, int tag, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (v[i].tag == tag && (id == K_UNDEFINED_ID || v[i].id == id))
			return true;
	return false;
}

static bool has(const struct kent *v, int n, int tag)
{
	return has_id(v, n, tag, K_UNDEFINED_ID);
}

static void put_le(unsigned char *p, uint32_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

/* Returns the mask's permissions (0-7) if the ACL has one, else -1. */
int acl_to_xattr(struct archive_entry *e, int type, void **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	int cap = archive_entry_acl_reset(e, type);
	if (cap <= 0)
		return -1;
	cap += 4;
	struct kent *v = xcalloc(cap, sizeof(*v));
	int n = 0, named = 0, t, perm, tag, id;
	const char *nm;
	while (n < cap - 4 &&
	       archive_entry_acl_next(e, type, &t, &perm, &tag, &id, &nm) == ARCHIVE_OK) {
		int k = ktag(tag);
		if (k == 0 || ((k == K_USER || k == K_GROUP) && id < 0))
			continue;
		bool is_named = k == K_USER || k == K_GROUP;
		uint32_t kid = is_named ? (uint32_t)id : K_UNDEFINED_ID;
		if (has_id(v, n, k, kid))
			continue; /* the kernel refuses duplicates */
		named += is_named;
		v[n++] = (struct kent){.tag = k, .perm = perm & 7, .id = kid};
	}
	if (n == 0 || (type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS && named == 0)) {
		free(v); /* nothing the mode does not already say */
		return -1;
	}
	mode_t mode = archive_entry_perm(e);
	static const struct {
		int tag, shift;
	} base[] = {{K_USER_OBJ, 6}, {K_GROUP_OBJ, 3}, {K_OTHER, 0}};
	for (size_t i = 0; i < ARRAY_SIZE(base); i++)
		if (!has(v, n, base[i].tag))
			v[n++] = (struct kent){base[i].tag, (mode >> base[i].shift) & 7,
					       K_UNDEFINED_ID};
	if (named && !has(v, n, K_MASK)) {
		uint16_t m = 0;
		for (int i = 0; i < n; i++)
			if (v[i].tag == K_GROUP_OBJ || v[i].tag == K_USER || v[i].tag == K_GROUP)
				m |= v[i].perm;
		v[n++] = (struct kent){K_MASK, m, K_UNDEFINED_ID};
	}
	qsort(v, n, sizeof(*v), kent_cmp);
	int mask = -1;
	unsigned char *x = xmalloc(4 + 8 * (size_t)n);
	put_le(x, K_VERSION, 4);
	for (int i = 0; i < n; i++) {
		put_le(x + 4 + 8 * i, v[i].tag, 2);
		put_le(x + 6 + 8 * i, v[i].perm, 2);
		put_le(x + 8 + 8 * i, v[i].id, 4);
		if (v[i].tag == K_MASK)
			mask = v[i].perm;
	}
	free(v);
	*out = x;
	*len = 4 + 8 * (size_t)n;
	return mask;
}
