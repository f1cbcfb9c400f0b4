/*
 * build.c — the builder: how an import writes into the store.
 *
 * An import fills a version layer that is "building" (invisible to
 * mz_layer_resolve) and publishes it only at the very end, so an import that
 * fails or is killed leaves no image.  Catalog writes are batched: a batch is
 * one transaction of up to ~2000 entries or one second, and it is committed
 * before bulk file data is written, so the catalog's write lock is never held
 * across a long copy (tree servers write the same catalog).
 *
 * Creating a name touches its directory's times, and linking or setting an
 * xattr touches the inode's ctime; so the attributes that matter are applied
 * once more at the end ("fix-ups"), as tar does for directories.
 *
 * Every regular file's content goes into an O_TMPFILE in the object
 * directory, hashed while it is written and sealed at the end: identical
 * content is stored once.  All-zero blocks are skipped, so sparse files (and
 * runs of zeros in any file) stay holes.
 */
#include "imageInt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/util.h"

#define BATCH_ENTRIES 2000
#define BATCH_NS 1000000000LL
#define BIG_FILE (8LL << 20)

/* Put the path in front of the message a store call left, or make one. */
static int fail(mz_error_t *err, int r, const char *path, const char *what)
{
	if (err && *err)
		return mz_error_wrap(err, "%s", path);
	return mz_error_sys(err, -r, "%s: cannot %s", path, what);
}

/* ---- transactions ------------------------------------------------------ */

static int build_tx(struct builder *b, mz_error_t *err)
{
	if (b->in_tx)
		return 0;
	int r = mz_store_begin(b->s, err);
	if (r < 0)
		return r;
	b->in_tx = true;
	b->batch_n = 0;
	b->batch_start = mono_ns();
	return 0;
}

static int build_commit(struct builder *b, mz_error_t *err)
{
	if (!b->in_tx)
		return 0;
	b->in_tx = false;
	return mz_store_commit(b->s, err);
}

int build_tick(struct builder *b, mz_error_t *err)
{
	b->st.entries++;
	build_progress(b, false);
	if (!b->in_tx)
		return 0;
	if (++b->batch_n >= BATCH_ENTRIES || mono_ns() - b->batch_start > BATCH_NS)
		return build_commit(b, err);
	return 0;
}

int build_before_data(struct builder *b, int64_t size, mz_error_t *err)
{
	if (b->in_tx && (size >= BIG_FILE || mono_ns() - b->batch_start > BATCH_NS))
		return build_commit(b, err);
	return 0;
}

/* ---- life cycle ---------------------------------------------------------- */

int build_begin(struct builder *b, mz_store *s, const struct mz_import_opts *o,
		mz_error_t *err)
{
	memset(b, 0, sizeof(*b));
	b->s = s;
	b->progress = o && o->progress && isatty(2);
	b->root_owned = o && o->root_owned;
	b->now = now_ns();
	int r = mz_version_begin(s, 0, 0755, &b->layer, err);
	if (r < 0)
		return r;
	if ((r = mz_view_open(s, b->layer, &b->v, err)) < 0) {
		build_abort(b);
		return r;
	}
	b->root = mz_view_root(b->v);
	b->buf = xmalloc(IMG_IO_BUF);
	/* The root as a source without a root entry gets it; one that has one
	 * overrides this with a later fix-up. */
	struct mz_inode a = {.mode = S_IFDIR | 0755};
	a.atime_ns = a.mtime_ns = a.ctime_ns = b->now;
	build_fixup(b, b->root, &a,
		    MZ_SET_MODE | MZ_SET_UID | MZ_SET_GID | MZ_SET_ATIME | MZ_SET_MTIME |
			    MZ_SET_CTIME);
	return 0;
}

static int apply_fixups(struct builder *b, mz_error_t *err)
{
	for (size_t i = 0; i < b->nfix; i++) {
		struct fixup *f = &b->fix[i];
		int r = build_tx(b, err);
		if (r < 0)
			return r;
		if (b->root_owned)
			f->attr.uid = f->attr.gid = 0;
		/* A later entry may have replaced (and dropped) the inode.  Ask
		 * first: a failing setattr would doom the whole batch. */
		struct mz_inode cur;
		r = mz_view_getattr(b->v, f->ino, &cur, err);
		if (r == -ENOENT)
			continue;
		if (r == 0)
			r = mz_view_setattr(b->v, f->ino, &f->attr, f->mask, err);
		if (r < 0)
			return fail(err, r, "fixing attributes", "set attributes");
		if (++b->batch_n >= BATCH_ENTRIES && (r = build_commit(b, err)) < 0)
			return r;
	}
	return 0;
}

static void progress_clear(struct builder *b)
{
	if (b->progress && b->last_progress)
		fputs("\r\033[K", stderr);
}

int build_finish(struct builder *b, const char *name, mz_error_t *err)
{
	int r = apply_fixups(b, err);
	if (r == 0)
		r = build_commit(b, err);
	if (r < 0)
		return r;
	progress_clear(b);
	mz_view_close(b->v);
	b->v = NULL;
	return mz_version_publish(b->s, b->layer, name, true, err);
}

void build_abort(struct builder *b)
{
	progress_clear(b);
	if (b->in_tx) {
		mz_store_rollback(b->s);
		b->in_tx = false;
	}
	mz_view_close(b->v);
	b->v = NULL;
	if (b->layer == 0)
		return;
	mz_error_t e = NULL;
	if (mz_layer_remove(b->s, b->layer, true, &e) < 0)
		mz_warn("cannot remove the unfinished import (layer %lld): %s; "
			"'mezzo store gc' will",
			(long long)b->layer, e && e->msg ? e->msg : "unknown error");
	mz_error_release(&e);
	b->layer = 0;
}

void build_free(struct builder *b)
{
	mz_view_close(b->v);
	b->v = NULL;
	free(b->fix);
	b->fix = NULL;
	free(b->buf);
	b->buf = NULL;
}

void build_progress(struct builder *b, bool force)
{
	if (!b->progress)
		return;
	int64_t t = mono_ns();
	if (!force && t - b->last_progress < 100000000)
		return;
	b->last_progress = t;
	char h[32];
	fprintf(stderr, "\r\033[Kimporting: %lld entries, %s", (long long)b->st.entries,
		fmt_bytes(h, b->st.bytes));
	fflush(stderr);
}

/* ---- entries ------------------------------------------------------------- */

int build_create(struct builder *b, mz_ino dir, const char *name, const char *path,
		 struct mz_inode *attr, mz_oid object, const char *target, mz_ino *out,
		 mz_error_t *err)
{
	int r = build_tx(b, err);
	if (r < 0)
		return r;
	if (b->root_owned)
		attr->uid = attr->gid = 0;
	struct mz_inode made;
	r = mz_view_create(b->v, dir, name, attr, object, target, &made, err);
	if (r < 0)
		return fail(err, r, path, "create");
	if (S_ISREG(attr->mode)) {
		b->st.files++;
		b->st.bytes += attr->size;
	}
	*out = made.ino;
	return 0;
}

int build_link(struct builder *b, mz_ino ino, mz_ino dir, const char *name, const char *path,
	       mz_error_t *err)
{
	int r = build_tx(b, err);
	if (r < 0)
		return r;
	struct mz_inode a;
	if ((r = mz_view_getattr(b->v, ino, &a, err)) < 0)
		return fail(err, r, path, "read the hard link's target");
	if ((r = mz_view_link(b->v, ino, dir, name, err)) < 0)
		return fail(err, r, path, "create hard link");
	/* Linking set the inode's ctime to now: restore it at the end. */
	build_fixup(b, ino, &a, MZ_SET_ATIME | MZ_SET_MTIME | MZ_SET_CTIME);
	return 0;
}

int build_unlink(struct builder *b, mz_ino dir, const char *name, const char *path,
		 mz_error_t *err)
{
	int r = build_tx(b, err);
	if (r < 0)
		return r;
	mz_ino ino, gone = 0;
	struct mz_inode a;
	if ((r = mz_view_lookup(b->v, dir, name, &ino, err)) < 0 ||
	    (r = mz_view_getattr(b->v, ino, &a, err)) < 0)
		return fail(err, r, path, "look up the entry to replace");
	if ((r = mz_view_unlink(b->v, dir, name, false, &gone, err)) < 0)
		return fail(err, r, path, "replace");
	if (gone && (r = mz_view_reap(b->v, gone, err)) < 0)
		return fail(err, r, path, "drop the replaced inode");
	b->st.entries--;
	if (gone && S_ISREG(a.mode)) {
		b->st.files--;
		b->st.bytes -= a.size;
	}
	return 0;
}

static bool xattr_name_ok(const char *n)
{
	return strncmp(n, "user.", 5) == 0 || strncmp(n, "trusted.", 8) == 0 ||
	       strncmp(n, "security.", 9) == 0 || strcmp(n, "system.posix_acl_access") == 0 ||
	       strcmp(n, "system.posix_acl_default") == 0;
}

int build_xattr(struct builder *b, mz_ino ino, const char *path, const char *name,
		const void *val, size_t len, mz_error_t *err)
{
	if (!xattr_name_ok(name)) {
		if (!b->warned_xattr)
			mz_warn("%s: skipping extended attribute '%s' (only user.*, trusted.*, "
				"security.* and POSIX ACLs are kept; further ones skipped silently)",
				path, name);
		b->warned_xattr = true;
		return 0;
	}
	if (strlen(name) > 255)
		return mz_error(err, ERANGE, "%s: extended attribute name longer than 255 bytes",
				path);
	if (len > 65536)
		return mz_error(err, E2BIG, "%s: extended attribute '%s' larger than 64 KiB",
				path, name);
	int r = build_tx(b, err);
	if (r < 0)
		return r;
	r = mz_view_setxattr(b->v, ino, name, val, len, 0, err);
	if (r < 0)
		return fail(err, r, path, "set extended attribute");
	return 0;
}

void build_fixup(struct builder *b, mz_ino ino, const struct mz_inode *attr, unsigned mask)
{
	if (b->nfix == b->capfix) {
		b->capfix = b->capfix ? 2 * b->capfix : 256;
		b->fix = xrealloc(b->fix, b->capfix * sizeof(*b->fix));
	}
	b->fix[b->nfix++] = (struct fixup){.ino = ino, .attr = *attr, .mask = mask};
}

/* ---- file content ---------------------------------------------------------- */

int objw_begin(struct builder *b, struct objw *w, mz_error_t *err)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
	w->fd = mz_object_tmpfile(b->s, err);
	if (w->fd < 0)
		return w->fd;
	w->h = mz_hasher_new();
	return 0;
}

void objw_release(struct objw *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	mz_hasher_free(w->h);
	w->h = NULL;
}

static void hash_zeros(mz_hasher *h, int64_t n)
{
	static const unsigned char z[65536];
	while (n > 0) {
		size_t k = n > (int64_t)sizeof(z) ? sizeof(z) : (size_t)n;
		mz_hasher_update(h, z, k);
		n -= k;
	}
}

static bool is_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int pwrite_all(int fd, const unsigned char *p, size_t n, int64_t off)
{
	while (n > 0) {
		ssize_t k = pwrite(fd, p, n, off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= k;
		off += k;
	}
	return 0;
}

/* Write p[0, len) at off, leaving 4 KiB-aligned blocks of zeros as holes. */
static int write_sparse(int fd, const unsigned char *p, size_t len, int64_t off)
{
	size_t i = 0;
	while (i < len) {
		size_t blk = 4096 - (size_t)((off + i) % 4096);
		if (blk > len - i)
			blk = len - i;
		if (is_zero(p + i, blk)) {
			i += blk;
			continue;
		}
		size_t start = i;
		i += blk;
		while (i < len) {
			size_t nb = len - i < 4096 ? len - i : 4096;
			if (is_zero(p + i, nb))
				break;
			i += nb;
		}
		int r = pwrite_all(fd, p + start, i - start, off + start);
		if (r < 0)
			return r;
	}
	return 0;
}

int objw_write(struct objw *w, int64_t off, const void *buf, size_t len, mz_error_t *err)
{
	if (off < w->pos || off > IMG_MAX_SIZE || (int64_t)len > IMG_MAX_SIZE - off)
		return mz_error(err, EINVAL, "file data out of order or beyond 1 TiB");
	hash_zeros(w->h, off - w->pos);
	mz_hasher_update(w->h, buf, len);
	int r = write_sparse(w->fd, buf, len, off);
	if (r < 0)
		return mz_error_sys(err, -r, "cannot write into the object store");
	w->pos = off + len;
	return 0;
}

int objw_finish(struct objw *w, int64_t size, mz_oid *out, mz_error_t *err)
{
	struct builder *b = w->b;
	if (size < w->pos)
		return mz_error(err, EINVAL, "file data beyond its size");
	hash_zeros(w->h, size - w->pos);
	w->pos = size;
	if (ftruncate(w->fd, size) < 0)
		return mz_error_sys(err, errno, "cannot size a new object");
	uint8_t hash[MZ_HASH_LEN];
	mz_hasher_final(w->h, hash);
	int r = build_tx(b, err);
	if (r < 0 || (r = mz_object_seal_tmpfile(b->s, w->fd, hash, out, err)) < 0)
		return r;
	/* Linked in as a new object, or dropped because the content exists? */
	struct stat stb;
	if (fstat(w->fd, &stb) < 0)
		return mz_error_sys(err, errno, "cannot stat a new object");
	if (stb.st_nlink > 0) {
		b->st.objects_new++;
		b->st.stored += (int64_t)stb.st_blocks * 512;
	} else {
		b->st.dedup_bytes += size;
	}
	return 0;
}
