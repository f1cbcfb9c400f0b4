/* test_store.c — the object store and the layered naming over it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

#include "../../src/lib/util.h"
#include "../../src/store/store.h"
#include "../../src/store/storeInt.h"


static char *slurp(mz_store *s, mz_oid id)
{
	mz_error_t err = NULL;
	int fd = mz_object_open(s, id, O_RDONLY, &err);
	assert_true(fd >= 0);
	char *buf = xcalloc(1, 4096);
	assert_true(read(fd, buf, 4095) >= 0);
	close(fd);
	return buf;
}

static void test_dedup_on_seal(void **state)
{
	struct store_fx *f = *state;
	mz_oid a = fx_sealed(f->s, "same bytes"), b = fx_sealed(f->s, "same bytes"),
	       c = fx_sealed(f->s, "other bytes");
	assert_int_equal(a, b);
	assert_int_not_equal(a, c);
}

static void test_tree_cow_isolated(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base");
	mz_lid t1, t2;
	assert_int_equal(mz_tree_create(f->s, v, "one", 0, &t1, &err), 0);
	assert_int_equal(mz_tree_create(f->s, v, "two", 0, &t2, &err), 0);
	mz_view *v1, *v2;
	assert_int_equal(mz_view_open(f->s, t1, &v1, &err), 0);
	assert_int_equal(mz_view_open(f->s, t2, &v2, &err), 0);
	mz_ino pw = fx_walk(v1, "etc/passwd");
	assert_true(pw > 0);
	struct mz_inode before;
	assert_int_equal(mz_view_getattr(v1, pw, &before, &err), 0);
	assert_true(before.object_sealed);

	mz_oid w;
	assert_int_equal(mz_view_make_writable(v1, pw, -1, &w, &err), 0);
	assert_int_not_equal(w, before.object);
	int fd = mz_object_open(f->s, w, O_WRONLY | O_APPEND, &err);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, "bob:x:1:1\n", 10), 0);
	close(fd);
	/* Writable again without another copy. */
	mz_oid w2;
	assert_int_equal(mz_view_make_writable(v1, pw, -1, &w2, &err), 0);
	assert_int_equal(w, w2);

	struct mz_inode a1, a2;
	assert_int_equal(mz_view_getattr(v1, pw, &a1, &err), 0);
	assert_int_equal(mz_view_getattr(v2, fx_walk(v2, "etc/passwd"), &a2, &err), 0);
	assert_int_equal(a1.size, 21);
	assert_int_equal(a2.size, 11);
	char *c1 = slurp(f->s, a1.object), *c2 = slurp(f->s, a2.object);
	assert_string_equal(c1, "root:x:0:0\nbob:x:1:1\n");
	assert_string_equal(c2, "root:x:0:0\n");
	free(c1);
	free(c2);
	mz_view_close(v1);
	mz_view_close(v2);
}

static void test_whiteout_rename_readdir(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base"), t;
	assert_int_equal(mz_tree_create(f->s, v, NULL, getpid(), &t, &err), 0);
	mz_view *w;
	assert_int_equal(mz_view_open(f->s, t, &w, &err), 0);
	mz_ino etc = fx_walk(w, "etc"), bin = fx_walk(w, "bin");
	assert_int_equal(mz_view_rename(w, etc, "passwd", bin, "pw", 0, NULL, &err), 0);
	assert_int_equal(fx_walk(w, "etc/passwd"), 0);
	assert_true(fx_walk(w, "bin/pw") > 0);
	struct mz_dirent *d;
	size_t n;
	assert_int_equal(mz_view_readdir(w, bin, &d, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(d[0].name, "pw");
	assert_string_equal(d[1].name, "sh");
	mz_dirents_free(d, n);
	assert_int_equal(mz_view_readdir(w, etc, &d, &n, &err), 0);
	assert_int_equal(n, 0);
	mz_dirents_free(d, n);
	/* rmdir of a non-empty dir fails, of an empty one works. */
	assert_int_equal(mz_view_unlink(w, mz_view_root(w), "bin", true, NULL, &err), -ENOTEMPTY);
	assert_int_equal(mz_view_unlink(w, mz_view_root(w), "etc", true, NULL, &err), 0);
	assert_int_equal(fx_walk(w, "etc"), 0);
	/* NOREPLACE and EXCHANGE */
	assert_int_equal(mz_view_rename(w, bin, "pw", bin, "sh", MZ_RENAME_NOREPLACE, NULL, &err),
			 -EEXIST);
	mz_ino pw = fx_walk(w, "bin/pw"), sh = fx_walk(w, "bin/sh");
	assert_int_equal(mz_view_rename(w, bin, "pw", bin, "sh", MZ_RENAME_EXCHANGE, NULL, &err),
			 0);
	assert_int_equal(fx_walk(w, "bin/pw"), sh);
	assert_int_equal(fx_walk(w, "bin/sh"), pw);
	/* The version underneath is untouched. */
	mz_view *base;
	assert_int_equal(mz_view_open(f->s, v, &base, &err), 0);
	assert_true(fx_walk(base, "etc/passwd") > 0);
	assert_false(mz_view_writable(base));
	mz_view_close(base);
	mz_view_close(w);
}

static void test_snapshot_moves_changes(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base"), t, snap;
	assert_int_equal(mz_tree_create(f->s, v, "work", 0, &t, &err), 0);
	mz_view *w;
	assert_int_equal(mz_view_open(f->s, t, &w, &err), 0);
	struct mz_inode a = fx_attr(S_IFREG | 0600), made;
	assert_int_equal(mz_view_create(w, mz_view_root(w), "new", &a, 0, NULL, &made, &err), 0);
	assert_int_equal(mz_tree_snapshot(f->s, t, "snap1", &snap, &err), 0);
	assert_int_equal(mz_view_reload(w, &err), 0);
	/* The file is now in the version; the tree still sees it, and writing
	 * it must copy, not change the version's object. */
	mz_ino ino = fx_walk(w, "new");
	assert_int_equal(ino, made.ino);
	struct mz_inode got;
	assert_int_equal(mz_view_getattr(w, ino, &got, &err), 0);
	assert_int_equal(got.layer, snap);
	mz_oid wr;
	assert_int_equal(mz_view_make_writable(w, ino, -1, &wr, &err), 0);
	assert_int_not_equal(wr, made.object);
	struct mz_layer l;
	assert_int_equal(mz_layer_resolve(f->s, "version:snap1", &l, &err), 0);
	assert_int_equal(l.id, snap);
	assert_int_equal(mz_layer_resolve(f->s, "work", &l, &err), 0);
	assert_int_equal(l.id, t);
	assert_int_equal(l.parent, snap);
	mz_view_close(w);
}

/* A new tree named name, made from the base version, open as a view. */
static mz_view *new_tree_lid(mz_store *s, const char *name, mz_lid *t)
{
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(s, "base");
	assert_int_equal(mz_tree_create(s, v, name, 0, t, &err), 0);
	mz_view *w;
	assert_int_equal(mz_view_open(s, *t, &w, &err), 0);
	return w;
}

static mz_view *new_tree(mz_store *s, const char *name)
{
	mz_lid t;
	return new_tree_lid(s, name, &t);
}

/* A new file in w's root whose private object holds data, written past the
 * catalog as a passthrough write is: the object's fd, open for writing. */
static int private_file(mz_store *s, mz_view *w, const char *name, const char *data,
			struct mz_inode *file, mz_oid *obj)
{
	mz_error_t err = NULL;
	struct mz_inode a = fx_attr(S_IFREG | 0640);
	assert_int_equal(mz_view_create(w, mz_view_root(w), name, &a, 0, NULL, file, &err), 0);
	assert_int_equal(mz_view_make_writable(w, file->ino, -1, obj, &err), 0);
	int fd = mz_object_open(s, *obj, O_WRONLY, &err);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, strlen(data), 0), (ssize_t)strlen(data));
	return fd;
}

static void test_hardlinks_and_reap(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_view *w = new_tree(f->s, "h");
	mz_ino root = mz_view_root(w), sh = fx_walk(w, "bin/sh"), gone = 7;
	assert_int_equal(mz_view_link(w, sh, root, "sh2", &err), 0);
	struct mz_inode a;
	assert_int_equal(mz_view_getattr(w, sh, &a, &err), 0);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(mz_view_unlink(w, fx_walk(w, "bin"), "sh", false, &gone, &err), 0);
	assert_int_equal(gone, 0);
	assert_int_equal(mz_view_unlink(w, root, "sh2", false, &gone, &err), 0);
	assert_int_equal(gone, sh);
	assert_int_equal(mz_view_reap(w, sh, &err), 0);
	assert_int_equal(mz_view_unlink(w, root, "sh2", false, &gone, &err), -ENOENT);
	mz_view_close(w);
}

/* Removing a tree drops the private objects only it named, and no other:
 * a stray one (a crash's leftover) waits for gc, another tree's stays. */
static void test_remove_tree_drops_its_own_objects(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base"), t1, t2;
	assert_int_equal(mz_tree_create(f->s, v, "one", 0, &t1, &err), 0);
	assert_int_equal(mz_tree_create(f->s, v, "two", 0, &t2, &err), 0);
	mz_view *v1, *v2;
	assert_int_equal(mz_view_open(f->s, t1, &v1, &err), 0);
	assert_int_equal(mz_view_open(f->s, t2, &v2, &err), 0);
	mz_oid w1, w2, stray, sealed;
	struct mz_inode a;
	assert_int_equal(mz_view_getattr(v1, fx_walk(v1, "etc/passwd"), &a, &err), 0);
	sealed = a.object;
	assert_int_equal(mz_view_make_writable(v1, fx_walk(v1, "etc/passwd"), -1, &w1, &err), 0);
	assert_int_equal(mz_view_make_writable(v2, fx_walk(v2, "etc/passwd"), -1, &w2, &err), 0);
	mz_view_close(v1);
	mz_view_close(v2);
	assert_int_equal(mz_object_create_private(f->s, &stray, NULL, &err), 0);

	assert_int_equal(mz_layer_remove(f->s, t1, true, &err), 0);
	assert_int_equal(mz_store_sync(f->s, &err), 0);
	struct mz_object o;
	assert_int_equal(mz_object_get(f->s, w1, &o, &err), -ENOENT);
	mz_error_release(&err);
	char rel[32];
	mz_object_relpath(w1, rel);
	assert_int_equal(faccessat(mz_store_objects_dirfd(f->s), rel, F_OK, 0), -1);
	assert_int_equal(mz_object_get(f->s, w2, &o, &err), 0);
	assert_int_equal(mz_object_get(f->s, stray, &o, &err), 0);
	assert_int_equal(mz_object_get(f->s, sealed, &o, &err), 0);
}

static void test_bad_names(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	assert_int_equal(mz_name_check("ok-name_1.2", "x", &err), 0);
	assert_int_equal(mz_name_check("../evil", "x", &err), -EINVAL);
	mz_error_release(&err);
	assert_int_equal(mz_name_check("-flag", "x", &err), -EINVAL);
	mz_error_release(&err);
	mz_lid v = fx_base_version(f->s, "base"), t;
	assert_int_equal(mz_tree_create(f->s, v, "t", 0, &t, &err), 0);
	assert_int_equal(mz_tree_create(f->s, v, "t", 0, &t, &err), -EEXIST);
	mz_error_release(&err);
	mz_view *w;
	assert_int_equal(mz_view_open(f->s, t, &w, &err), 0);
	char longname[300];
	memset(longname, 'a', 256);
	longname[256] = '\0';
	struct mz_inode a = fx_attr(S_IFREG | 0644);
	assert_int_equal(mz_view_create(w, mz_view_root(w), longname, &a, 0, NULL, NULL, &err),
			 -ENAMETOOLONG);
	mz_error_release(&err);
	longname[255] = '\0';
	assert_int_equal(mz_view_create(w, mz_view_root(w), longname, &a, 0, NULL, NULL, &err), 0);
	mz_view_close(w);
}

/* What a view's cache says of ino is what the catalog says (a view opened
 * afresh has no cache).  The view keeps the rows it writes (inode_store). */
static void assert_cache_matches_catalog(mz_store *s, mz_view *w, mz_ino ino)
{
	mz_error_t err = NULL;
	mz_view *fresh;
	assert_int_equal(mz_view_open(s, mz_view_top(w), &fresh, &err), 0);
	struct mz_inode c, d;
	assert_int_equal(mz_view_getattr(w, ino, &c, &err), 0);
	assert_int_equal(mz_view_getattr(fresh, ino, &d, &err), 0);
	assert_int_equal(c.layer, d.layer);
	assert_int_equal(c.mode, d.mode);
	assert_int_equal(c.uid, d.uid);
	assert_int_equal(c.gid, d.gid);
	assert_int_equal(c.nlink, d.nlink);
	assert_int_equal(c.size, d.size);
	assert_int_equal(c.mtime_ns, d.mtime_ns);
	assert_int_equal(c.ctime_ns, d.ctime_ns);
	assert_int_equal(c.object, d.object);
	assert_int_equal(c.object_sealed, d.object_sealed);
	assert_int_equal(c.object_refs, d.object_refs);
	mz_view_close(fresh);
}

static void test_cached_rows_match_the_catalog(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_view *w = new_tree(f->s, "c");
	mz_ino root = mz_view_root(w), etc = fx_walk(w, "etc"), pw = fx_walk(w, "etc/passwd");
	/* a directory, changed by each entry made in it */
	struct mz_inode a = fx_attr(S_IFDIR | 0755), d, file;
	assert_int_equal(mz_view_create(w, root, "d", &a, 0, NULL, &d, &err), 0);
	a = fx_attr(S_IFREG | 0644);
	assert_int_equal(mz_view_create(w, d.ino, "f", &a, 0, NULL, &file, &err), 0);
	assert_cache_matches_catalog(f->s, w, d.ino);
	assert_cache_matches_catalog(f->s, w, root);
	/* tar's three SETATTRs */
	struct mz_inode n = {.uid = 7, .gid = 8, .mode = 0600, .mtime_ns = 12345};
	assert_int_equal(mz_view_setattr(w, file.ino, &n, MZ_SET_MTIME, &err), 0);
	assert_int_equal(mz_view_setattr(w, file.ino, &n, MZ_SET_UID | MZ_SET_GID, &err), 0);
	assert_int_equal(mz_view_setattr(w, file.ino, &n, MZ_SET_MODE, &err), 0);
	assert_cache_matches_catalog(f->s, w, file.ino);
	/* a file of the image: copied up, then given an object of its own, which
	 * is then this tree's alone: a second write must not copy it again */
	assert_int_equal(mz_view_link(w, pw, etc, "pw2", &err), 0);
	assert_cache_matches_catalog(f->s, w, pw);
	mz_oid o1, o2;
	assert_int_equal(mz_view_make_writable(w, pw, -1, &o1, &err), 0);
	assert_cache_matches_catalog(f->s, w, pw);
	assert_int_equal(mz_view_make_writable(w, pw, -1, &o2, &err), 0);
	assert_int_equal(o1, o2);
	/* no xattr, known and cached; then one, then none again */
	void *val = NULL;
	size_t len;
	assert_int_equal(mz_view_getxattr(w, file.ino, "user.a", &val, &len, &err), -ENODATA);
	assert_int_equal(mz_view_setattr(w, file.ino, &n, MZ_SET_MTIME, &err), 0);
	assert_int_equal(mz_view_setxattr(w, file.ino, "user.a", "1", 1, 0, &err), 0);
	assert_int_equal(mz_view_getxattr(w, file.ino, "user.a", &val, &len, &err), 0);
	assert_int_equal(len, 1);
	free(val);
	assert_int_equal(mz_view_removexattr(w, file.ino, "user.a", &err), 0);
	val = NULL;
	assert_int_equal(mz_view_getxattr(w, file.ino, "user.a", &val, &len, &err), -ENODATA);
	assert_cache_matches_catalog(f->s, w, file.ino);
	/* the last link of a file goes */
	assert_int_equal(mz_view_unlink(w, d.ino, "f", false, NULL, &err), 0);
	assert_cache_matches_catalog(f->s, w, file.ino);
	assert_cache_matches_catalog(f->s, w, d.ino);
	mz_view_close(w);
}

/* getattr_row: the row as the catalog has it, without a stat of the
 * object; getattr: with the object's size, which passthrough writes change
 * behind the catalog's back; getattr_fd: the same through an open file. */
static void test_getattr_row_skips_the_object(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_view *w = new_tree(f->s, "r");
	struct mz_inode file, row, full;
	mz_oid obj;
	close(private_file(f->s, w, "f", "12345", &file, &obj));
	assert_int_equal(mz_view_getattr_row(w, file.ino, &row, &err), 0);
	assert_int_equal(mz_view_getattr(w, file.ino, &full, &err), 0);
	assert_int_equal(full.size, 5);
	assert_int_equal(row.size, 0);
	assert_int_equal(row.mode, full.mode);
	assert_int_equal(row.uid, full.uid);
	assert_int_equal(row.object, obj);
	assert_int_equal(full.object, obj);
	assert_int_equal(mz_view_getattr_row(w, 999999, &row, &err), -ENOENT);
	/* getattr_fd reads the size through the fd given for the inode's
	 * object, and only for that object: a file of another size tells which */
	char tmp[] = "/tmp/mezzo-test-fd-XXXXXX";
	int other = mkstemp(tmp);
	assert_true(other >= 0);
	unlink(tmp);
	assert_int_equal(pwrite(other, "123456789", 9, 0), 9);
	assert_int_equal(mz_view_getattr_fd(w, file.ino, &full, obj, other, &err), 0);
	assert_int_equal(full.size, 9);
	assert_int_equal(mz_view_getattr_fd(w, file.ino, &full, obj + 1, other, &err), 0);
	assert_int_equal(full.size, 5);
	assert_int_equal(mz_view_getattr_fd(w, file.ino, &full, obj, -1, &err), 0);
	assert_int_equal(full.size, 5);
	close(other);
	mz_view_close(w);
}

/* Changes that read only an inode's row (chmod, chown, link, rename, xattrs)
 * write its older size and times back as they are: a private object's file
 * stays the truth for those, for getattr and for a version sealed later. */
static void test_row_changes_keep_the_files_size_and_times(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid t, ver;
	mz_view *w = new_tree_lid(f->s, "k", &t);
	mz_ino root = mz_view_root(w);
	struct mz_inode file, got;
	mz_oid obj;
	int fd = private_file(f->s, w, "f", "12345", &file, &obj);
	const struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1200000000, .tv_nsec = 5}};
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
	const int64_t at = 1000000000LL * 1000000000, mt = 1200000000LL * 1000000000 + 5;

	struct mz_inode n = {.mode = 0600, .uid = 7, .gid = 8};
	assert_int_equal(mz_view_setattr(w, file.ino, &n, MZ_SET_MODE, &err), 0);
	assert_int_equal(mz_view_setattr(w, file.ino, &n, MZ_SET_UID | MZ_SET_GID, &err), 0);
	assert_int_equal(mz_view_link(w, file.ino, root, "g", &err), 0);
	assert_int_equal(mz_view_rename(w, root, "g", root, "h", 0, NULL, &err), 0);
	assert_int_equal(mz_view_setxattr(w, file.ino, "user.a", "1", 1, 0, &err), 0);
	assert_int_equal(mz_view_removexattr(w, file.ino, "user.a", &err), 0);
	assert_int_equal(mz_view_removexattr(w, file.ino, "user.b", &err), -ENODATA);
	assert_int_equal(mz_view_unlink(w, root, "h", false, NULL, &err), 0);
	assert_int_equal(mz_view_getattr(w, file.ino, &got, &err), 0);
	assert_int_equal(got.size, 5);
	assert_int_equal(got.atime_ns, at);
	assert_int_equal(got.mtime_ns, mt);
	assert_int_equal(got.mode, S_IFREG | 0600);
	assert_int_equal(got.uid, 7);
	assert_int_equal(got.gid, 8);
	assert_int_equal(got.nlink, 1);
	mz_view_close(w);

	/* frozen into a version, then sealed: the rows get the file's values */
	assert_int_equal(mz_tree_snapshot(f->s, t, "k1", &ver, &err), 0);
	struct mz_dedup_report rep;
	assert_int_equal(mz_store_dedup(f->s, &rep, &err), 0);
	assert_int_equal(mz_view_open(f->s, ver, &w, &err), 0);
	assert_int_equal(mz_view_getattr(w, fx_walk(w, "f"), &got, &err), 0);
	assert_true(got.object_sealed);
	assert_int_equal(got.size, 5);
	assert_int_equal(got.mtime_ns, mt);
	mz_view_close(w);
}

static off_t wal_size(mz_store *s)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/catalog.db-wal", mz_store_root(s));
	struct stat st;
	return stat(p, &st) == 0 ? st.st_size : -1;
}

/* `run` makes its domain claimed by itself: the domain and its tree, in the
 * commit that makes them, so that its supervisor's claim then changes
 * nothing and appends nothing to the WAL (SQLite writes no page for an
 * UPDATE to the same values; a commit that writes costs the start WAL
 * frames and time).  A domain made unclaimed (`create`) is claimed by the
 * start. */
static void test_domain_made_claimed(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base");
	struct mz_domain_rec mine = {.sup_pid = getpid()}, later = {0}, got;
	strcpy(mine.name, "mine");
	strcpy(later.name, "later");
	assert_int_equal(mz_domain_rec_create(f->s, v, &mine, &err), 0);
	assert_int_equal(mz_domain_rec_create(f->s, v, &later, &err), 0);
	pid_t owner = 0;
	assert_int_equal(mz_layer_owner(f->s, mine.tree, &owner, &err), 0);
	assert_int_equal(owner, getpid());
	assert_int_equal(mz_layer_owner(f->s, later.tree, &owner, &err), 0);
	assert_int_equal(owner, 0);

	off_t before = wal_size(f->s);
	assert_true(before > 0);
	assert_int_equal(mz_domain_rec_claim(f->s, "mine", getpid(), &got, &err), 0);
	assert_int_equal(got.sup_pid, getpid());
	assert_int_equal(got.tree, mine.tree);
	mz_domain_rec_free(&got);
	assert_int_equal(wal_size(f->s), before);

	/* (the claim returns the record as it found it) */
	assert_int_equal(mz_domain_rec_claim(f->s, "later", getpid(), &got, &err), 0);
	assert_int_equal(got.sup_pid, 0);
	mz_domain_rec_free(&got);
	assert_true(wal_size(f->s) > before);
	assert_int_equal(mz_layer_owner(f->s, later.tree, &owner, &err), 0);
	assert_int_equal(owner, getpid());
	assert_int_equal(mz_domain_rec_get(f->s, "later", &got, &err), 0);
	assert_int_equal(got.sup_pid, getpid());
	mz_domain_rec_free(&got);
}

/* After its pool's reservation of object ids met another process's write
 * lock, a tree server's next transaction must wait for that lock, as every
 * BEGIN IMMEDIATE does (busy timeout), not fail at once with EBUSY: a BEGIN
 * left unfinished by the reservation kept the connection's read transaction
 * open after any read, and SQLite calls no busy handler for a write begun
 * from a read transaction.  (Seen as an EBUSY for a file created in a tree
 * while `store gc` ran in a loop.)  B holds the lock for 200 ms. */
static void *commit_later(void *arg)
{
	usleep(200 * 1000);
	mz_error_t err = NULL;
	assert_int_equal(mz_store_commit(arg, &err), 0);
	return NULL;
}

static void test_a_pool_that_met_a_lock_leaves_the_next_begin_waiting(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	fx_base_version(f->s, "base");
	mz_store_set_pool(f->s, true);
	mz_oid id = 0;
	store_pool_take(f->s, &id); /* a take: the pool wants ids from now on */
	mz_store *b = NULL;
	assert_int_equal(mz_store_open(f->dir, &b, &err), 0);
	assert_int_equal(mz_store_begin(b, &err), 0); /* B: the write lock */
	store_pool_reserve(f->s);                     /* meets it, gives up */
	struct mz_layer l;
	assert_int_equal(mz_layer_resolve(f->s, "base", &l, &err), 0); /* a read */
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, commit_later, b), 0);
	int64_t t0 = mono_ns();
	int r = mz_store_begin(f->s, &err);
	int64_t waited = mono_ns() - t0;
	pthread_join(th, NULL);
	assert_true(r == 0 || (fprintf(stderr, "%s\n", err ? err->msg : ""), false));
	assert_true(waited >= 100 * 1000000LL); /* it waited for B */
	assert_int_equal(mz_store_commit(f->s, &err), 0);
	mz_store_close(b);
	mz_store_set_pool(f->s, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dedup_on_seal, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_tree_cow_isolated, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_whiteout_rename_readdir, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_moves_changes, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_hardlinks_and_reap, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree_drops_its_own_objects, store_fx_setup,
						store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_a_pool_that_met_a_lock_leaves_the_next_begin_waiting,
						store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_domain_made_claimed, store_fx_setup,
						store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_cached_rows_match_the_catalog, store_fx_setup,
						store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_getattr_row_skips_the_object, store_fx_setup,
						store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_row_changes_keep_the_files_size_and_times,
						store_fx_setup, store_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
