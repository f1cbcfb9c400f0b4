/*
 * view.c — a file tree as seen through a chain of layers.
 *
 * Lookups walk the chain from the top (the tree's own, mutable layer) down to
 * the root version and take the first row they find; a dentry with ino 0 is a
 * whiteout that hides a name below.  Every change is written to the top layer
 * only: changing an inode first copies its row up ("copy-up", one row), and
 * writing a file's data first gives the tree a private object (CoW).  Each
 * public mutation is one catalog transaction, so a crash never leaves half a
 * rename.
 *
 * Attributes of a regular file whose object is private to this tree are read
 * from the object file itself (size, blocks, times): data written through FUSE
 * passthrough never passes through mezzo, so the file is the only truth.
 */
#include "storeInt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../lib/imap.h"
#include "../lib/util.h"

struct mz_view {
	mz_store *s;
	mz_lid *chain; /* chain[0] is the top */
	int depth;
	mz_ino root;
	bool writable;
	/* Inode rows as last read (catalog values; object-file values are
	 * re-read each time).  Only this view writes its tree, so the cache is
	 * exact: every write below drops the entries it touches, a rollback
	 * drops them all. */
	struct imap cache;
};

struct vcache {
	struct mz_inode a;
	int8_t has_xattr; /* -1 unknown */
	/* a.size and a.blocks are the sealed object's own: it never changes,
	 * so it is stat'ed once, not at every getattr (an open is one) */
	bool sealed_filled;
};

#define VIEW_CACHE_MAX 200000

static void cache_free_one(int64_t k UNUSED, void *v, void *arg UNUSED)
{
	free(v);
}

void mz_view_invalidate(mz_view *v)
{
	imap_foreach(&v->cache, cache_free_one, NULL);
	imap_free(&v->cache);
	imap_init(&v->cache);
}

static void cache_drop(mz_view *v, mz_ino ino)
{
	free(imap_del(&v->cache, ino));
}

/* An inode's xattrs changed: whether it has any is no longer known. */
static void cache_xattrs_changed(mz_view *v, mz_ino ino)
{
	struct vcache *c = imap_get(&v->cache, ino);
	if (c)
		c->has_xattr = -1;
}

/* Remember a's row (as getattr_db reads it, or as inode_store wrote it). */
static struct vcache *cache_put(mz_view *v, const struct mz_inode *a, int8_t has_xattr)
{
	if (v->cache.n >= VIEW_CACHE_MAX)
		mz_view_invalidate(v);
	struct vcache *c = xmalloc(sizeof(*c));
	c->a = *a;
	c->has_xattr = has_xattr;
	c->sealed_filled = false;
	imap_put(&v->cache, a->ino, c);
	return c;
}

int mz_view_reload(mz_view *v, mz_error_t *err)
{
	mz_view_invalidate(v);
	mz_lid id = v->chain ? v->chain[0] : 0;
	free(v->chain);
	v->chain = NULL;
	v->depth = 0;
	size_t cap = 0;
	while (id) {
		struct mz_layer l;
		int r = mz_layer_get(v->s, id, &l, err);
		if (r < 0)
			return r;
		if (v->depth == 0) {
			v->root = l.root_ino;
			v->writable = l.kind == MZ_LAYER_TREE || l.building;
		}
		if ((size_t)v->depth == cap) {
			cap = cap ? 2 * cap : 8;
			v->chain = xrealloc(v->chain, cap * sizeof(*v->chain));
		}
		v->chain[v->depth++] = id;
		id = l.parent;
		if (v->depth > 100000)
			return mz_error(err, ELOOP, "layer chain too deep (corrupt catalog?)");
	}
	return 0;
}

int mz_view_open(mz_store *s, mz_lid layer, mz_view **out, mz_error_t *err)
{
	mz_view *v = xcalloc(1, sizeof(*v));
	v->s = s;
	imap_init(&v->cache);
	v->chain = xmalloc(sizeof(*v->chain));
	v->chain[0] = layer;
	int r = mz_view_reload(v, err);
	if (r < 0) {
		mz_view_close(v);
		return r;
	}
	*out = v;
	return 0;
}

void mz_view_close(mz_view *v)
{
	if (v == NULL)
		return;
	imap_foreach(&v->cache, cache_free_one, NULL);
	imap_free(&v->cache);
	free(v->chain);
	free(v);
}

mz_ino mz_view_root(mz_view *v) { return v->root; }
mz_lid mz_view_top(mz_view *v) { return v->chain[0]; }
bool mz_view_writable(mz_view *v) { return v->writable; }
mz_store *mz_view_store(mz_view *v) { return v->s; }

static int check_name(const char *name, mz_error_t *err)
{
	size_t n = strlen(name);
	if (n == 0 || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return mz_error(err, EINVAL, "invalid file name '%s'", name);
	if (n > 255)
		return mz_error(err, ENAMETOOLONG, "file name longer than 255 bytes");
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

static int dentry_at(mz_view *v, int from, mz_ino dir, const char *name, mz_ino *ino,
		     uint32_t *type, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		v->s, "SELECT ino, type FROM dentry WHERE layer = ? AND parent = ? AND name = ?");
	for (int i = from; i < v->depth; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, v->chain[i]);
		sqlite3_bind_int64(st, 2, dir);
		sqlite3_bind_blob(st, 3, name, strlen(name), SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*ino = sqlite3_column_int64(st, 0);
			if (type)
				*type = sqlite3_column_int(st, 1);
			sqlite3_reset(st);
			return *ino ? 1 : 0;
		}
		if (rc != SQLITE_DONE)
			return store_dberr(v->s, err, "lookup");
	}
	sqlite3_reset(st);
	return 0;
}

int mz_view_lookup(mz_view *v, mz_ino dir, const char *name, mz_ino *out, mz_error_t *err)
{
	int r = check_name(name, err);
	if (r < 0)
		return r;
	r = dentry_at(v, 0, dir, name, out, NULL, err);
	if (r < 0)
		return r;
	return r ? 0 : -ENOENT;
}

/* false if the object file cannot be stat'ed (store check reports that):
 * a keeps the catalog's values */
static bool inode_fill_from_object(mz_view *v, struct mz_inode *a, mz_oid obj, int fd)
{
	char rel[32];
	struct stat stb;
	if (fd >= 0 && obj == a->object) {
		if (fstat(fd, &stb) < 0)
			return false;
	} else {
		mz_object_relpath(a->object, rel);
		if (fstatat(v->s->objects_fd, rel, &stb, AT_SYMLINK_NOFOLLOW) < 0)
			return false;
	}
	a->blocks = stb.st_blocks;
	a->size = stb.st_size;
	if (a->object_sealed)
		return true;
	a->atime_ns = (int64_t)stb.st_atim.tv_sec * 1000000000 + stb.st_atim.tv_nsec;
	a->mtime_ns = (int64_t)stb.st_mtim.tv_sec * 1000000000 + stb.st_mtim.tv_nsec;
	int64_t c = (int64_t)stb.st_ctim.tv_sec * 1000000000 + stb.st_ctim.tv_nsec;
	if (c > a->ctime_ns)
		a->ctime_ns = c;
	return true;
}

static int getattr_db(mz_view *v, mz_ino ino, struct mz_inode *a, mz_error_t *err);

static int getattr_cached(mz_view *v, mz_ino ino, struct mz_inode *a, struct vcache **out,
			  mz_error_t *err)
{
	struct vcache *c = imap_get(&v->cache, ino);
	if (c == NULL) {
		int r = getattr_db(v, ino, a, err);
		if (r < 0)
			return r;
		c = cache_put(v, a, -1);
	}
	*a = c->a;
	*out = c;
	return 0;
}

int mz_view_getattr_row(mz_view *v, mz_ino ino, struct mz_inode *a, mz_error_t *err)
{
	struct vcache *c;
	return getattr_cached(v, ino, a, &c, err);
}

int mz_view_getattr_fd(mz_view *v, mz_ino ino, struct mz_inode *a, mz_oid obj, int fd,
		       mz_error_t *err)
{
	struct vcache *c;
	int r = getattr_cached(v, ino, a, &c, err);
	if (r < 0)
		return r;
	if (c->sealed_filled)
		return 0;
	a->blocks = (a->size + 511) / 512;
	if (a->object && inode_fill_from_object(v, a, obj, fd) && a->object_sealed) {
		c->a.size = a->size;
		c->a.blocks = a->blocks;
		c->sealed_filled = true;
	}
	return 0;
}

int mz_view_getattr(mz_view *v, mz_ino ino, struct mz_inode *a, mz_error_t *err)
{
	return mz_view_getattr_fd(v, ino, a, 0, -1, err);
}

static int getattr_db(mz_view *v, mz_ino ino, struct mz_inode *a, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		v->s, "SELECT i.mode, i.uid, i.gid, i.nlink, i.rdev, i.size, i.atime, i.mtime, "
		      "i.ctime, IFNULL(i.object, 0), o.hash IS NOT NULL, IFNULL(o.refs, 0) "
		      "FROM inode i LEFT JOIN object o ON o.id = i.object "
		      "WHERE i.layer = ? AND i.ino = ?");
	for (int i = 0; i < v->depth; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, v->chain[i]);
		sqlite3_bind_int64(st, 2, ino);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW)
			return store_dberr(v->s, err, "getattr");
		memset(a, 0, sizeof(*a));
		a->ino = ino;
		a->layer = v->chain[i];
		a->mode = sqlite3_column_int(st, 0);
		a->uid = sqlite3_column_int64(st, 1);
		a->gid = sqlite3_column_int64(st, 2);
		a->nlink = sqlite3_column_int(st, 3);
		a->rdev = sqlite3_column_int64(st, 4);
		a->size = sqlite3_column_int64(st, 5);
		a->atime_ns = sqlite3_column_int64(st, 6);
		a->mtime_ns = sqlite3_column_int64(st, 7);
		a->ctime_ns = sqlite3_column_int64(st, 8);
		a->object = sqlite3_column_int64(st, 9);
		a->object_sealed = sqlite3_column_int(st, 10);
		a->object_refs = sqlite3_column_int64(st, 11);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	return -ENOENT;
}

struct dent_row {
	char *name;
	size_t len;
	mz_ino ino;
	uint32_t type;
	int level;
};

static int dent_cmp(const void *pa, const void *pb)
{
	const struct dent_row *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->name, b->name, n);
	if (c == 0)
		c = a->len < b->len ? -1 : a->len > b->len;
	if (c == 0)
		c = a->level - b->level;
	return c;
}

int mz_view_readdir(mz_view *v, mz_ino dir, struct mz_dirent **out, size_t *nout,
		    mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		v->s, "SELECT name, ino, type FROM dentry WHERE layer = ? AND parent = ?");
	struct dent_row *rows = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	for (int i = 0; i < v->depth && r == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, v->chain[i]);
		sqlite3_bind_int64(st, 2, dir);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				rows = xrealloc(rows, cap * sizeof(*rows));
			}
			size_t len = sqlite3_column_bytes(st, 0);
			rows[n].name = xmalloc(len + 1);
			memcpy(rows[n].name, sqlite3_column_blob(st, 0), len);
			rows[n].name[len] = '\0';
			rows[n].len = len;
			rows[n].ino = sqlite3_column_int64(st, 1);
			rows[n].type = sqlite3_column_int(st, 2);
			rows[n].level = i;
			n++;
		}
		if (rc != SQLITE_DONE)
			r = store_dberr(v->s, err, "readdir");
	}
	sqlite3_reset(st);
	if (n > 1)
		qsort(rows, n, sizeof(*rows), dent_cmp);
	struct mz_dirent *d = xcalloc(n ? n : 1, sizeof(*d));
	size_t m = 0;
	const char *prev = NULL;
	size_t prev_len = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		/* Rows of one name are adjacent, topmost layer first: it wins. */
		bool shadowed = prev && rows[i].len == prev_len &&
				memcmp(rows[i].name, prev, prev_len) == 0;
		prev = rows[i].name;
		prev_len = rows[i].len;
		if (shadowed || rows[i].ino == 0)
			continue;
		d[m].ino = rows[i].ino;
		d[m].mode = rows[i].type;
		d[m].name = rows[i].name;
		rows[i].name = NULL;
		m++;
	}
	for (size_t i = 0; i < n; i++)
		free(rows[i].name);
	free(rows);
	if (r < 0) {
		mz_dirents_free(d, m);
		return r;
	}
	*out = d;
	*nout = m;
	return 0;
}

void mz_dirents_free(struct mz_dirent *d, size_t n)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(d[i].name);
	free(d);
}

/* Any entry at all in dir?  (rmdir and rename need "empty".) */
static int dir_is_empty(mz_view *v, mz_ino dir, mz_error_t *err)
{
	struct mz_dirent *d;
	size_t n;
	int r = mz_view_readdir(v, dir, &d, &n, err);
	if (r < 0)
		return r;
	mz_dirents_free(d, n);
	return n == 0;
}

int mz_view_readlink(mz_view *v, mz_ino ino, char **out, mz_error_t *err)
{
	struct mz_inode a;
	int r = mz_view_getattr(v, ino, &a, err);
	if (r < 0)
		return r;
	if (!S_ISLNK(a.mode))
		return -EINVAL;
	sqlite3_stmt *st = store_stmt(v->s, "SELECT target FROM inode WHERE layer = ? AND ino = ?");
	sqlite3_bind_int64(st, 1, a.layer);
	sqlite3_bind_int64(st, 2, ino);
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_dberr(v->s, err, "readlink");
	size_t len = sqlite3_column_bytes(st, 0);
	char *t = xmalloc(len + 1);
	memcpy(t, sqlite3_column_blob(st, 0), len);
	t[len] = '\0';
	sqlite3_reset(st);
	*out = t;
	return 0;
}

/* ---- writing (top layer only) --------------------------------------------- */

static int need_writable(mz_view *v, mz_error_t *err)
{
	if (!v->writable)
		return mz_error(err, EROFS, "a version is read-only: make a tree from it");
	return 0;
}

/* Give the top layer its own row for a->ino (with its xattrs). */
static int copy_up(mz_view *v, struct mz_inode *a, mz_error_t *err)
{
	if (a->layer == v->chain[0])
		return 0;
	static const char *const sql[] = {
		"INSERT INTO inode SELECT ?1, ino, mode, uid, gid, nlink, rdev, size, atime, "
		"mtime, ctime, object, target FROM inode WHERE layer = ?2 AND ino = ?3",
		"INSERT INTO xattr SELECT ?1, ino, name, value FROM xattr "
		"WHERE layer = ?2 AND ino = ?3",
	};
	for (size_t i = 0; i < ARRAY_SIZE(sql); i++) {
		sqlite3_stmt *st = store_stmt(v->s, sql[i]);
		sqlite3_bind_int64(st, 1, v->chain[0]);
		sqlite3_bind_int64(st, 2, a->layer);
		sqlite3_bind_int64(st, 3, a->ino);
		int r = store_step_done(v->s, st, err, "copy-up");
		if (r < 0)
			return r;
	}
	a->layer = v->chain[0];
	if (a->object)
		a->object_refs++;
	cache_drop(v, a->ino);
	return 0;
}

/* Write a (whose row copy_up put in the top layer) back.  The cache keeps
 * what was written, so that the reply to the request and the next change
 * of the same inode read no row: a directory is changed by every entry made
 * in it, a file by each of tar's three SETATTRs.  Whether it has xattrs is
 * kept: only setxattr and removexattr change that (cache_xattrs_changed).
 * A failed transaction drops the whole cache (TX), a failed batch too. */
static int inode_store(mz_view *v, const struct mz_inode *a, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		v->s, "UPDATE inode SET mode = ?, uid = ?, gid = ?, nlink = ?, rdev = ?, size = ?, "
		      "atime = ?, mtime = ?, ctime = ?, object = NULLIF(?, 0) "
		      "WHERE layer = ? AND ino = ?");
	sqlite3_bind_int(st, 1, a->mode);
	sqlite3_bind_int64(st, 2, a->uid);
	sqlite3_bind_int64(st, 3, a->gid);
	sqlite3_bind_int(st, 4, a->nlink);
	sqlite3_bind_int64(st, 5, a->rdev);
	sqlite3_bind_int64(st, 6, a->size);
	sqlite3_bind_int64(st, 7, a->atime_ns);
	sqlite3_bind_int64(st, 8, a->mtime_ns);
	sqlite3_bind_int64(st, 9, a->ctime_ns);
	sqlite3_bind_int64(st, 10, a->object);
	sqlite3_bind_int64(st, 11, v->chain[0]);
	sqlite3_bind_int64(st, 12, a->ino);
	int r = store_step_done(v->s, st, err, "update inode");
	struct vcache *c = imap_get(&v->cache, a->ino);
	if (r < 0) {
		cache_drop(v, a->ino);
	} else if (c) { /* in place: a write is no malloc and free */
		c->a = *a;
		c->sealed_filled = false;
	} else {
		cache_put(v, a, -1);
	}
	return r;
}

static int dentry_put(mz_view *v, mz_ino dir, const char *name, mz_ino ino, uint32_t type,
		      mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		v->s, "INSERT OR REPLACE INTO dentry(layer, parent, name, ino, type) "
		      "VALUES (?, ?, ?, ?, ?)");
	sqlite3_bind_int64(st, 1, v->chain[0]);
	sqlite3_bind_int64(st, 2, dir);
	sqlite3_bind_blob(st, 3, name, strlen(name), SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, ino);
	sqlite3_bind_int(st, 5, type);
	return store_step_done(v->s, st, err, "insert dentry");
}

/* Remove a name from the merged view: a whiteout if a lower layer has it. */
static int dentry_remove(mz_view *v, mz_ino dir, const char *name, mz_error_t *err)
{
	mz_ino below = 0;
	int r = dentry_at(v, 1, dir, name, &below, NULL, err);
	if (r < 0)
		return r;
	if (r > 0)
		return dentry_put(v, dir, name, 0, 0, err);
	sqlite3_stmt *st = store_stmt(
		v->s, "DELETE FROM dentry WHERE layer = ? AND parent = ? AND name = ?");
	sqlite3_bind_int64(st, 1, v->chain[0]);
	sqlite3_bind_int64(st, 2, dir);
	sqlite3_bind_blob(st, 3, name, strlen(name), SQLITE_STATIC);
	return store_step_done(v->s, st, err, "delete dentry");
}

/* A directory's entries changed: mtime and ctime now, nlink by delta. */
static int dir_touch(mz_view *v, mz_ino dir, int nlink_delta, int64_t now, mz_error_t *err)
{
	struct mz_inode d;
	int r = mz_view_getattr(v, dir, &d, err);
	if (r < 0)
		return r == -ENOENT ? mz_error(err, ENOENT, "directory vanished") : r;
	if ((r = copy_up(v, &d, err)) < 0)
		return r;
	d.mtime_ns = d.ctime_ns = now;
	d.nlink += nlink_delta;
	return inode_store(v, &d, err);
}

/* r of a read of ino's attributes, with a message when ino is missing. */
static int inode_missing(int r, mz_ino ino, mz_error_t *err)
{
	if (r == -ENOENT)
		return mz_error(err, ENOENT, "no inode %lld", (long long)ino);
	return r;
}

static int getattr_err(mz_view *v, mz_ino ino, struct mz_inode *a, mz_error_t *err)
{
	return inode_missing(mz_view_getattr(v, ino, a, err), ino, err);
}

/* The inode's row alone, for a change that needs its type, mode, owner,
 * links, layer or object but not what its object file says.  A private
 * object's file is the truth for its size and times (getattr reads them
 * there; sealing copies them into the rows, dedup.c), so the older values
 * its row keeps are never read, and a change writes them back as they are.
 * A stat of the object by its path was a fifth of the work of tar's
 * SETATTRs and GETXATTRs. */
static int getattr_row_err(mz_view *v, mz_ino ino, struct mz_inode *a, mz_error_t *err)
{
	return inode_missing(mz_view_getattr_row(v, ino, a, err), ino, err);
}

/* Run body inside a transaction; roll back on failure. */
#define TX(v, err, body)                                   \
	do {                                               \
		int tx_r_ = mz_store_begin((v)->s, err);   \
		if (tx_r_ < 0)                             \
			return tx_r_;                      \
		tx_r_ = (body);                            \
		if (tx_r_ < 0) {                           \
			mz_store_rollback((v)->s);         \
			mz_view_invalidate(v);             \
			return tx_r_;                      \
		}                                          \
		tx_r_ = mz_store_commit((v)->s, err);      \
		if (tx_r_ < 0) /* rolled back */           \
			mz_view_invalidate(v);             \
		return tx_r_;                              \
	} while (0)

static int view_create(mz_view *v, mz_ino dir, const char *name, const struct mz_inode *attr,
		       mz_oid object, const char *target, struct mz_inode *out, mz_error_t *err)
{
	mz_ino ino;
	int r = dentry_at(v, 0, dir, name, &ino, NULL, err);
	if (r != 0)
		return r < 0 ? r : -EEXIST;
	struct mz_inode d;
	if ((r = getattr_err(v, dir, &d, err)) < 0)
		return r;
	if (!S_ISDIR(d.mode))
		return -ENOTDIR;
	if (d.nlink == 0)
		return -ENOENT; /* directory was removed while we looked */
	if ((r = store_alloc_ino(v->s, &ino, err)) < 0)
		return r;
	if (S_ISREG(attr->mode) && object == 0 &&
	    (r = mz_object_create_private(v->s, &object, NULL, err)) < 0)
		return r;
	int64_t size = 0;
	if (S_ISLNK(attr->mode))
		size = strlen(target);
	else if (S_ISREG(attr->mode) && attr->size > 0)
		size = attr->size;
	sqlite3_stmt *st = store_stmt(
		v->s, "INSERT INTO inode(layer, ino, mode, uid, gid, nlink, rdev, size, atime, "
		      "mtime, ctime, object, target) "
		      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, 0), ?)");
	sqlite3_bind_int64(st, 1, v->chain[0]);
	sqlite3_bind_int64(st, 2, ino);
	sqlite3_bind_int(st, 3, attr->mode);
	sqlite3_bind_int64(st, 4, attr->uid);
	sqlite3_bind_int64(st, 5, attr->gid);
	sqlite3_bind_int(st, 6, S_ISDIR(attr->mode) ? 2 : 1);
	sqlite3_bind_int64(st, 7, attr->rdev);
	sqlite3_bind_int64(st, 8, size);
	sqlite3_bind_int64(st, 9, attr->atime_ns);
	sqlite3_bind_int64(st, 10, attr->mtime_ns);
	sqlite3_bind_int64(st, 11, attr->ctime_ns);
	sqlite3_bind_int64(st, 12, S_ISREG(attr->mode) ? object : 0);
	if (target)
		sqlite3_bind_blob(st, 13, target, strlen(target), SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 13);
	if ((r = store_step_done(v->s, st, err, "insert inode")) < 0)
		return r;
	if ((r = dentry_put(v, dir, name, ino, attr->mode & S_IFMT, err)) < 0)
		return r;
	if ((r = dir_touch(v, dir, S_ISDIR(attr->mode) ? 1 : 0, attr->ctime_ns, err)) < 0)
		return r;
	return out ? getattr_err(v, ino, out, err) : 0;
}

int mz_view_create(mz_view *v, mz_ino dir, const char *name, const struct mz_inode *attr,
		   mz_oid object, const char *target, struct mz_inode *out, mz_error_t *err)
{
	int r;
	if ((r = need_writable(v, err)) < 0 || (r = check_name(name, err)) < 0)
		return r;
	if (S_ISLNK(attr->mode) && (target == NULL || strlen(target) >= 4096))
		return mz_error(err, ENAMETOOLONG, "symlink target missing or too long");
	TX(v, err, view_create(v, dir, name, attr, object, target, out, err));
}

static int view_link(mz_view *v, mz_ino ino, mz_ino dir, const char *name, mz_error_t *err)
{
	mz_ino other;
	int r = dentry_at(v, 0, dir, name, &other, NULL, err);
	if (r != 0)
		return r < 0 ? r : -EEXIST;
	struct mz_inode a;
	if ((r = getattr_row_err(v, ino, &a, err)) < 0)
		return r;
	if (S_ISDIR(a.mode))
		return -EPERM;
	if (a.nlink >= 65000)
		return -EMLINK;
	if ((r = copy_up(v, &a, err)) < 0)
		return r;
	int64_t now = now_ns();
	a.nlink++;
	a.ctime_ns = now;
	if ((r = inode_store(v, &a, err)) < 0)
		return r;
	if ((r = dentry_put(v, dir, name, ino, a.mode & S_IFMT, err)) < 0)
		return r;
	return dir_touch(v, dir, 0, now, err);
}

int mz_view_link(mz_view *v, mz_ino ino, mz_ino dir, const char *name, mz_error_t *err)
{
	int r;
	if ((r = need_writable(v, err)) < 0 || (r = check_name(name, err)) < 0)
		return r;
	TX(v, err, view_link(v, ino, dir, name, err));
}

/* One link of inode a is going away. */
static int drop_link(mz_view *v, struct mz_inode *a, int64_t now, mz_ino *gone,
		     mz_error_t *err)
{
	uint32_t nlink = S_ISDIR(a->mode) ? 0 : (a->nlink ? a->nlink - 1 : 0);
	if (nlink == 0 && a->layer != v->chain[0]) {
		/* Only lower layers know it and this tree no longer names it. */
		if (gone)
			*gone = 0;
		return 0;
	}
	int r = copy_up(v, a, err);
	if (r < 0)
		return r;
	a->nlink = nlink;
	a->ctime_ns = now;
	if ((r = inode_store(v, a, err)) < 0)
		return r;
	if (gone)
		*gone = nlink == 0 ? a->ino : 0;
	return 0;
}

static int view_unlink(mz_view *v, mz_ino dir, const char *name, bool want_dir, mz_ino *gone,
		       mz_error_t *err)
{
	mz_ino ino;
	int r = dentry_at(v, 0, dir, name, &ino, NULL, err);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	struct mz_inode a;
	if ((r = getattr_row_err(v, ino, &a, err)) < 0)
		return r;
	if (want_dir && !S_ISDIR(a.mode))
		return -ENOTDIR;
	if (!want_dir && S_ISDIR(a.mode))
		return -EISDIR;
	if (want_dir) {
		r = dir_is_empty(v, ino, err);
		if (r <= 0)
			return r < 0 ? r : -ENOTEMPTY;
	}
	int64_t now = now_ns();
	if ((r = dentry_remove(v, dir, name, err)) < 0)
		return r;
	if ((r = drop_link(v, &a, now, gone, err)) < 0)
		return r;
	return dir_touch(v, dir, want_dir ? -1 : 0, now, err);
}

int mz_view_unlink(mz_view *v, mz_ino dir, const char *name, bool want_dir, mz_ino *gone,
		   mz_error_t *err)
{
	int r;
	if (gone)
		*gone = 0;
	if ((r = need_writable(v, err)) < 0 || (r = check_name(name, err)) < 0)
		return r;
	TX(v, err, view_unlink(v, dir, name, want_dir, gone, err));
}

static int touch_ctime(mz_view *v, mz_ino ino, int64_t now, mz_error_t *err)
{
	struct mz_inode a;
	int r = getattr_row_err(v, ino, &a, err);
	if (r < 0 || (r = copy_up(v, &a, err)) < 0)
		return r;
	a.ctime_ns = now;
	return inode_store(v, &a, err);
}

static int view_rename(mz_view *v, mz_ino d1, const char *n1, mz_ino d2, const char *n2,
		       unsigned flags, mz_ino *replaced, mz_error_t *err)
{
	mz_ino src, dst = 0;
	uint32_t stype, dtype = 0;
	int r = dentry_at(v, 0, d1, n1, &src, &stype, err);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	r = dentry_at(v, 0, d2, n2, &dst, &dtype, err);
	if (r < 0)
		return r;
	bool src_dir = S_ISDIR(stype), dst_dir = dst && S_ISDIR(dtype);
	int64_t now = now_ns();

	if (flags & MZ_RENAME_EXCHANGE) {
		if (!dst)
			return -ENOENT;
		if ((r = dentry_put(v, d1, n1, dst, dtype, err)) < 0 ||
		    (r = dentry_put(v, d2, n2, src, stype, err)) < 0)
			return r;
		int delta = (src_dir ? 1 : 0) - (dst_dir ? 1 : 0);
		if ((r = dir_touch(v, d1, d1 == d2 ? 0 : -delta, now, err)) < 0)
			return r;
		if (d1 != d2 && (r = dir_touch(v, d2, delta, now, err)) < 0)
			return r;
		if ((r = touch_ctime(v, src, now, err)) < 0)
			return r;
		return touch_ctime(v, dst, now, err);
	}
	if (dst) {
		if (flags & MZ_RENAME_NOREPLACE)
			return -EEXIST;
		if (dst == src)
			return 0; /* POSIX: two links to one file, nothing to do */
		if (src_dir && !dst_dir)
			return -ENOTDIR;
		if (!src_dir && dst_dir)
			return -EISDIR;
		if (dst_dir) {
			r = dir_is_empty(v, dst, err);
			if (r <= 0)
				return r < 0 ? r : -ENOTEMPTY;
		}
		struct mz_inode da;
		if ((r = getattr_row_err(v, dst, &da, err)) < 0)
			return r;
		if ((r = drop_link(v, &da, now, replaced, err)) < 0)
			return r;
		if (dst_dir && (r = dir_touch(v, d2, -1, now, err)) < 0)
			return r;
	}
	if ((r = dentry_remove(v, d1, n1, err)) < 0)
		return r;
	if ((r = dentry_put(v, d2, n2, src, stype, err)) < 0)
		return r;
	int moved = (src_dir && d1 != d2) ? 1 : 0;
	if ((r = dir_touch(v, d1, -moved, now, err)) < 0)
		return r;
	if (d1 != d2 && (r = dir_touch(v, d2, moved, now, err)) < 0)
		return r;
	return touch_ctime(v, src, now, err);
}

int mz_view_rename(mz_view *v, mz_ino d1, const char *n1, mz_ino d2, const char *n2,
		   unsigned flags, mz_ino *replaced, mz_error_t *err)
{
	int r;
	if (replaced)
		*replaced = 0;
	if ((r = need_writable(v, err)) < 0 || (r = check_name(n1, err)) < 0 ||
	    (r = check_name(n2, err)) < 0)
		return r;
	if ((flags & MZ_RENAME_EXCHANGE) && (flags & MZ_RENAME_NOREPLACE))
		return -EINVAL;
	TX(v, err, view_rename(v, d1, n1, d2, n2, flags, replaced, err));
}

static int set_object_times(mz_view *v, const struct mz_inode *a, unsigned mask)
{
	char rel[32];
	mz_object_relpath(a->object, rel);
	struct timespec ts[2] = {
		{.tv_sec = a->atime_ns / 1000000000, .tv_nsec = a->atime_ns % 1000000000},
		{.tv_sec = a->mtime_ns / 1000000000, .tv_nsec = a->mtime_ns % 1000000000},
	};
	if (!(mask & MZ_SET_ATIME))
		ts[0].tv_nsec = UTIME_OMIT;
	if (!(mask & MZ_SET_MTIME))
		ts[1].tv_nsec = UTIME_OMIT;
	if (utimensat(v->s->objects_fd, rel, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int view_setattr(mz_view *v, mz_ino ino, const struct mz_inode *n, unsigned mask,
			mz_error_t *err)
{
	struct mz_inode a;
	int r = getattr_row_err(v, ino, &a, err);
	if (r < 0 || (r = copy_up(v, &a, err)) < 0)
		return r;
	if (mask & MZ_SET_MODE)
		a.mode = (a.mode & S_IFMT) | (n->mode & 07777);
	if (mask & MZ_SET_UID)
		a.uid = n->uid;
	if (mask & MZ_SET_GID)
		a.gid = n->gid;
	if (mask & MZ_SET_SIZE)
		a.size = n->size;
	if (mask & MZ_SET_ATIME)
		a.atime_ns = n->atime_ns;
	if (mask & MZ_SET_MTIME)
		a.mtime_ns = n->mtime_ns;
	if (mask & MZ_SET_NLINK)
		a.nlink = n->nlink;
	a.ctime_ns = (mask & MZ_SET_CTIME) ? n->ctime_ns : now_ns();
	if ((r = inode_store(v, &a, err)) < 0)
		return r;
	/* A private object's file is the truth for its times: keep it so. */
	if (a.object && !a.object_sealed && (mask & (MZ_SET_ATIME | MZ_SET_MTIME)) &&
	    (r = set_object_times(v, &a, mask)) < 0)
		return mz_error_sys(err, -r, "cannot set times of object %lld",
				    (long long)a.object);
	return 0;
}

int mz_view_setattr(mz_view *v, mz_ino ino, const struct mz_inode *attr, unsigned mask,
		    mz_error_t *err)
{
	int r = need_writable(v, err);
	if (r < 0)
		return r;
	TX(v, err, view_setattr(v, ino, attr, mask, err));
}

static int view_make_writable(mz_view *v, mz_ino ino, int64_t keep, mz_oid *out,
			      mz_error_t *err)
{
	struct mz_inode a; /* the times the copy gets: a private object's are its file's */
	int r = getattr_err(v, ino, &a, err);
	if (r < 0)
		return r;
	if (!S_ISREG(a.mode))
		return mz_error(err, EINVAL, "inode %lld is not a regular file", (long long)ino);
	if (a.layer == v->chain[0] && a.object && !a.object_sealed && a.object_refs == 1) {
		*out = a.object;
		return 0;
	}
	if ((r = copy_up(v, &a, err)) < 0)
		return r;
	mz_oid old = a.object, nobj;
	if (old && keep != 0)
		r = mz_object_copy(v->s, old, keep, &nobj, err);
	else
		r = mz_object_create_private(v->s, &nobj, NULL, err);
	if (r < 0)
		return r;
	a.object = nobj;
	a.object_sealed = false;
	a.object_refs = 1; /* this row's, as the trigger counts it */
	if ((r = inode_store(v, &a, err)) < 0)
		return r;
	if ((r = set_object_times(v, &a, MZ_SET_ATIME | MZ_SET_MTIME)) < 0)
		return mz_error_sys(err, -r, "cannot set times of new object");
	if (old && (r = store_object_drop_if_unused(v->s, old, err)) < 0)
		return r;
	*out = nobj;
	return 0;
}

int mz_view_make_writable(mz_view *v, mz_ino ino, int64_t keep_bytes, mz_oid *out,
			  mz_error_t *err)
{
	int r = need_writable(v, err);
	if (r < 0)
		return r;
	TX(v, err, view_make_writable(v, ino, keep_bytes, out, err));
}

static int view_reap(mz_view *v, mz_ino ino, mz_error_t *err)
{
	enum { BATCH = 64 };
	mz_oid objs[BATCH];
	mz_ino inos[BATCH];
	size_t n = 0;
	/* Two statements, not "(? = 0 OR ino = ?)": SQLite plans that once, as
	 * a scan of the whole layer, and a reap follows every last close of an
	 * unlinked file (an untar of Debian that replaced 406 files spent 12 %
	 * of its server's time here). */
	sqlite3_stmt *st = store_stmt(
		v->s, ino ? "SELECT ino, IFNULL(object, 0) FROM inode "
			    "WHERE layer = ?1 AND ino = ?2 AND nlink = 0"
			  : "SELECT ino, IFNULL(object, 0) FROM inode "
			    "WHERE layer = ?1 AND nlink = 0 LIMIT 64");
	sqlite3_bind_int64(st, 1, v->chain[0]);
	if (ino)
		sqlite3_bind_int64(st, 2, ino);
	int rc;
	while (n < BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		inos[n] = sqlite3_column_int64(st, 0);
		objs[n++] = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	static const char *const dels[] = {
		"DELETE FROM inode WHERE layer = ? AND ino = ?",
		"DELETE FROM xattr WHERE layer = ? AND ino = ?",
	};
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < ARRAY_SIZE(dels); k++) {
			sqlite3_stmt *d = store_stmt(v->s, dels[k]);
			sqlite3_bind_int64(d, 1, v->chain[0]);
			sqlite3_bind_int64(d, 2, inos[i]);
			int r = store_step_done(v->s, d, err, "reap");
			if (r < 0)
				return r;
		}
		cache_drop(v, inos[i]);
		if (objs[i]) {
			int r = store_object_drop_if_unused(v->s, objs[i], err);
			if (r < 0)
				return r;
		}
	}
	return n == BATCH ? 1 : 0;
}

static int view_reap_one(mz_view *v, mz_ino ino, mz_error_t *err)
{
	int r = view_reap(v, ino, err);
	return r < 0 ? r : 0;
}

int mz_view_reap(mz_view *v, mz_ino ino, mz_error_t *err)
{
	if (!v->writable)
		return 0;
	TX(v, err, view_reap_one(v, ino, err));
}

int mz_view_reap_all(mz_view *v, mz_error_t *err)
{
	if (!v->writable)
		return 0;
	for (;;) {
		int r = mz_store_begin(v->s, err);
		if (r < 0)
			return r;
		r = view_reap(v, 0, err);
		if (r < 0) {
			mz_store_rollback(v->s);
			mz_view_invalidate(v);
			return r;
		}
		int c = mz_store_commit(v->s, err);
		if (c < 0)
			return c;
		if (r == 0)
			return 0;
	}
}

/* ---- extended attributes ------------------------------------------------ */

int mz_view_getxattr(mz_view *v, mz_ino ino, const char *name, void **val, size_t *len,
		     mz_error_t *err)
{
	struct mz_inode a;
	int r = getattr_row_err(v, ino, &a, err);
	if (r < 0)
		return r;
	/* The kernel asks for security.capability at every write and chown:
	 * remember which inodes have no xattrs at all. */
	struct vcache *c = imap_get(&v->cache, ino);
	if (c && c->has_xattr < 0) {
		sqlite3_stmt *e = store_stmt(
			v->s, "SELECT EXISTS(SELECT 1 FROM xattr WHERE layer = ? AND ino = ?)");
		sqlite3_bind_int64(e, 1, a.layer);
		sqlite3_bind_int64(e, 2, ino);
		if (sqlite3_step(e) != SQLITE_ROW)
			return store_dberr(v->s, err, "getxattr");
		c->has_xattr = sqlite3_column_int(e, 0);
		sqlite3_reset(e);
	}
	if (c && c->has_xattr == 0)
		return -ENODATA;
	sqlite3_stmt *st = store_stmt(
		v->s, "SELECT value FROM xattr WHERE layer = ? AND ino = ? AND name = ?");
	sqlite3_bind_int64(st, 1, a.layer);
	sqlite3_bind_int64(st, 2, ino);
	sqlite3_bind_blob(st, 3, name, strlen(name), SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENODATA;
	if (rc != SQLITE_ROW)
		return store_dberr(v->s, err, "getxattr");
	*len = sqlite3_column_bytes(st, 0);
	*val = xmalloc(*len ? *len : 1);
	memcpy(*val, sqlite3_column_blob(st, 0), *len);
	sqlite3_reset(st);
	return 0;
}

static int view_setxattr(mz_view *v, mz_ino ino, const char *name, const void *val,
			 size_t len, int flags, mz_error_t *err)
{
	struct mz_inode a;
	int r = getattr_row_err(v, ino, &a, err);
	if (r < 0)
		return r;
	if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
		void *old = NULL;
		size_t ol;
		r = mz_view_getxattr(v, ino, name, &old, &ol, err);
		free(old);
		if (r < 0 && r != -ENODATA)
			return r;
		if ((flags & XATTR_CREATE) && r == 0)
			return -EEXIST;
		if ((flags & XATTR_REPLACE) && r == -ENODATA)
			return -ENODATA;
	}
	if ((r = copy_up(v, &a, err)) < 0)
		return r;
	sqlite3_stmt *st = store_stmt(
		v->s, "INSERT OR REPLACE INTO xattr(layer, ino, name, value) VALUES (?, ?, ?, ?)");
	sqlite3_bind_int64(st, 1, v->chain[0]);
	sqlite3_bind_int64(st, 2, ino);
	sqlite3_bind_blob(st, 3, name, strlen(name), SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, val ? val : "", len, SQLITE_STATIC);
	if ((r = store_step_done(v->s, st, err, "setxattr")) < 0)
		return r;
	a.ctime_ns = now_ns();
	if ((r = inode_store(v, &a, err)) == 0)
		cache_xattrs_changed(v, ino);
	return r;
}

int mz_view_setxattr(mz_view *v, mz_ino ino, const char *name, const void *val, size_t len,
		     int flags, mz_error_t *err)
{
	int r = need_writable(v, err);
	if (r < 0)
		return r;
	if (strlen(name) == 0 || strlen(name) > 255)
		return -ERANGE;
	if (len > 65536)
		return -E2BIG;
	TX(v, err, view_setxattr(v, ino, name, val, len, flags, err));
}

/* name is there (mz_view_removexattr looked, and this view is the tree's
 * only writer). */
static int view_removexattr(mz_view *v, mz_ino ino, const char *name, mz_error_t *err)
{
	struct mz_inode a;
	int r;
	if ((r = getattr_row_err(v, ino, &a, err)) < 0 || (r = copy_up(v, &a, err)) < 0)
		return r;
	sqlite3_stmt *st = store_stmt(
		v->s, "DELETE FROM xattr WHERE layer = ? AND ino = ? AND name = ?");
	sqlite3_bind_int64(st, 1, v->chain[0]);
	sqlite3_bind_int64(st, 2, ino);
	sqlite3_bind_blob(st, 3, name, strlen(name), SQLITE_STATIC);
	if ((r = store_step_done(v->s, st, err, "removexattr")) < 0)
		return r;
	a.ctime_ns = now_ns();
	if ((r = inode_store(v, &a, err)) == 0)
		cache_xattrs_changed(v, ino);
	return r;
}

int mz_view_removexattr(mz_view *v, mz_ino ino, const char *name, mz_error_t *err)
{
	int r = need_writable(v, err);
	if (r < 0)
		return r;
	/* Most calls find nothing to remove (the kernel drops file
	 * capabilities at every chown): say so before a transaction, whose
	 * rollback would empty the whole cache (TX). */
	void *old = NULL;
	size_t ol;
	r = mz_view_getxattr(v, ino, name, &old, &ol, err);
	free(old);
	if (r < 0)
		return r;
	TX(v, err, view_removexattr(v, ino, name, err));
}

int mz_view_listxattr(mz_view *v, mz_ino ino, char **out, size_t *len, mz_error_t *err)
{
	struct mz_inode a;
	int r = getattr_row_err(v, ino, &a, err);
	if (r < 0)
		return r;
	sqlite3_stmt *st = store_stmt(
		v->s, "SELECT name FROM xattr WHERE layer = ? AND ino = ? ORDER BY name");
	sqlite3_bind_int64(st, 1, a.layer);
	sqlite3_bind_int64(st, 2, ino);
	char *buf = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t l = sqlite3_column_bytes(st, 0);
		buf = xrealloc(buf, n + l + 1);
		memcpy(buf + n, sqlite3_column_blob(st, 0), l);
		buf[n + l] = '\0';
		n += l + 1;
	}
	if (rc != SQLITE_DONE) {
		free(buf);
		return store_dberr(v->s, err, "listxattr");
	}
	*out = buf;
	*len = n;
	return 0;
}
