/* test_maint.c — store check, gc, dedup and df: each inconsistency is made
 * by hand (files deleted or overwritten, catalog rows changed with sqlite3),
 * then found, and repaired where that loses nothing.
 *
 * Orphan files are judged by age (ctime), which a test cannot set: the
 * store reads the grace period from $MEZZO_ORPHAN_GRACE_SECONDS, and the
 * tests that want orphans set it to 0. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include <sqlite3.h>

#include "../../src/lib/util.h"
#include "../../src/store/store.h"


/* The inode at path in layer (0 if none), with its attributes. */
static mz_ino lookup(mz_store *s, mz_lid layer, const char *path, struct mz_inode *a)
{
	mz_error_t err = NULL;
	mz_view *v;
	assert_int_equal(mz_view_open(s, layer, &v, &err), 0);
	mz_ino ino = mz_view_root(v);
	char *dup = xstrdup(path), *save = NULL;
	for (char *p = strtok_r(dup, "/", &save); p && ino; p = strtok_r(NULL, "/", &save))
		if (mz_view_lookup(v, ino, p, &ino, &err) < 0) {
			mz_error_release(&err);
			ino = 0;
		}
	free(dup);
	if (ino && a)
		assert_int_equal(mz_view_getattr(v, ino, a, &err), 0);
	mz_view_close(v);
	return ino;
}

static mz_oid object_at(mz_store *s, mz_lid layer, const char *path)
{
	struct mz_inode a;
	assert_true(lookup(s, layer, path, &a) > 0);
	return a.object;
}

/* A new file name in the tree's root, written through its private object as
 * a server would; returns that object. */
static mz_oid tree_file(mz_store *s, mz_lid tree, const char *name, const char *text)
{
	mz_error_t err = NULL;
	mz_view *v;
	assert_int_equal(mz_view_open(s, tree, &v, &err), 0);
	struct mz_inode a = fx_attr(S_IFREG | 0644), made;
	assert_int_equal(mz_view_create(v, mz_view_root(v), name, &a, 0, NULL, &made, &err), 0);
	mz_oid w;
	assert_int_equal(mz_view_make_writable(v, made.ino, -1, &w, &err), 0);
	int fd = mz_object_open(s, w, O_WRONLY, &err);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, text, strlen(text)), 0);
	close(fd);
	mz_view_close(v);
	return w;
}

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

static char *objpath(struct store_fx *f, mz_oid id)
{
	char rel[32];
	mz_object_relpath(id, rel);
	return xasprintf("%s/objects/%s", f->dir, rel);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Change the catalog behind the store's back. */
static void sql(struct store_fx *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *q = NULL;
	assert_true(vasprintf(&q, fmt, ap) >= 0);
	va_end(ap);
	char *path = xasprintf("%s/catalog.db", f->dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	char *msg = NULL;
	int rc = sqlite3_exec(db, q, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", q, msg);
	sqlite3_close(db);
	free(path);
	free(q);
}

/* Run check; returns its output (to free) and fills rep. */
static char *check(struct store_fx *f, bool repair, bool verify, struct mz_check_report *rep)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	mz_error_t err = NULL;
	int r = mz_store_check(f->s, repair, verify, out, rep, &err);
	fclose(out);
	if (r < 0)
		fail_msg("check failed: %s", err ? err->msg : "?");
	return buf;
}

static void expect_clean(struct store_fx *f)
{
	struct mz_check_report rep;
	char *o = check(f, false, true, &rep);
	if (rep.problems != 0)
		fail_msg("store not clean:\n%s", o);
	assert_null(strstr(o, "problem:"));
	free(o);
}

static void test_clean_store(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base"), t, a, snap;
	assert_int_equal(mz_tree_create(f->s, v, "work", 0, &t, &err), 0);
	tree_file(f->s, t, "notes", "hello\n");
	assert_int_equal(mz_tree_snapshot(f->s, t, "work-1", &snap, &err), 0);
	tree_file(f->s, t, "more", "more\n");
	assert_int_equal(mz_tree_create(f->s, v, NULL, getpid(), &a, &err), 0);
	expect_clean(f);
	struct mz_check_report rep;
	free(check(f, true, true, &rep));
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.repaired, 0);
}

static void test_missing_file(void **state)
{
	struct store_fx *f = *state;
	mz_lid v = fx_base_version(f->s, "base");
	char *pw = objpath(f, object_at(f->s, v, "etc/passwd"));
	mz_oid loose = fx_sealed(f->s, "nobody names me");
	char *lp = objpath(f, loose);
	assert_int_equal(unlink(pw), 0);
	assert_int_equal(unlink(lp), 0);

	struct mz_check_report rep;
	char *o = check(f, false, false, &rep);
	assert_int_equal(rep.problems, 2);
	assert_non_null(strstr(o, "problem: missing-file: sealed object"));
	free(o);
	/* The referenced one cannot be repaired; the loose row just goes. */
	o = check(f, true, false, &rep);
	assert_int_equal(rep.problems, 2);
	assert_int_equal(rep.repaired, 1);
	assert_non_null(strstr(o, "repaired: missing-file"));
	free(o);
	mz_error_t err = NULL;
	struct mz_object ob;
	assert_int_equal(mz_object_get(f->s, loose, &ob, &err), -ENOENT);
	mz_error_release(&err);
	free(check(f, false, false, &rep));
	assert_int_equal(rep.problems, 1);
	free(pw);
	free(lp);
}

static void test_corrupt_sealed(void **state)
{
	struct store_fx *f = *state;
	mz_lid v = fx_base_version(f->s, "base");
	mz_oid sh = object_at(f->s, v, "bin/sh");
	char *p = objpath(f, sh);
	/* Same length, other bytes: only the hash tells. */
	assert_int_equal(chmod(p, 0644), 0);
	int fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, "#!SHELL", 7), 0);
	close(fd);

	struct mz_check_report rep;
	char *o = check(f, false, false, &rep);
	assert_int_equal(rep.problems, 1);
	assert_non_null(strstr(o, "problem: mode: sealed object"));
	free(o);
	o = check(f, true, true, &rep);
	assert_int_equal(rep.problems, 2);
	assert_int_equal(rep.repaired, 1);
	assert_non_null(strstr(o, "problem: corrupt: sealed object"));
	assert_non_null(strstr(o, "repaired: mode"));
	free(o);
	struct stat stb;
	assert_int_equal(stat(p, &stb), 0);
	assert_int_equal(stb.st_mode & 07777, 0400);
	/* Corruption is reported, never "repaired" away. */
	o = check(f, true, true, &rep);
	assert_int_equal(rep.problems, 1);
	assert_int_equal(rep.repaired, 0);
	free(o);
	assert_true(exists(p));

	/* A size change shows without hashing. */
	mz_oid pw = object_at(f->s, v, "etc/passwd");
	char *pp = objpath(f, pw);
	assert_int_equal(truncate(pp, 3), 0);
	o = check(f, false, false, &rep);
	assert_int_equal(rep.problems, 1);
	assert_non_null(strstr(o, "has 3 bytes, the catalog says 11"));
	free(o);
	free(p);
	free(pp);
}

static void test_refs_repair(void **state)
{
	struct store_fx *f = *state;
	mz_lid v = fx_base_version(f->s, "base");
	mz_oid sh = object_at(f->s, v, "bin/sh"), pw = object_at(f->s, v, "etc/passwd");
	sql(f, "UPDATE object SET refs = refs + 5 WHERE id = %lld;"
	       "UPDATE object SET refs = 0 WHERE id = %lld",
	    (long long)sh, (long long)pw);
	struct mz_check_report rep;
	char *o = check(f, false, false, &rep);
	assert_int_equal(rep.problems, 2);
	assert_non_null(strstr(o, "problem: refs: object"));
	free(o);
	o = check(f, true, false, &rep);
	assert_int_equal(rep.problems, 2);
	assert_int_equal(rep.repaired, 2);
	free(o);
	mz_error_t err = NULL;
	struct mz_object ob;
	assert_int_equal(mz_object_get(f->s, sh, &ob, &err), 0);
	assert_int_equal(ob.refs, 1);
	assert_int_equal(mz_object_get(f->s, pw, &ob, &err), 0);
	assert_int_equal(ob.refs, 1);
	expect_clean(f);
}

static void test_orphan_files(void **state)
{
	struct store_fx *f = *state;
	fx_base_version(f->s, "base");
	char *orphan = xasprintf("%s/objects/3f/999999", f->dir);
	char *stray = xasprintf("%s/objects/00/junk", f->dir);
	FILE *o1 = fopen(orphan, "w");
	assert_non_null(o1);
	fputs("left by a crash", o1);
	fclose(o1);

	/* Young: an import may be about to commit its row. */
	struct mz_check_report rep;
	char *o = check(f, true, false, &rep);
	assert_int_equal(rep.problems, 0);
	assert_non_null(strstr(o, "note: objects/3f/999999 has no catalog row yet"));
	free(o);
	assert_true(exists(orphan));

	setenv("MEZZO_ORPHAN_GRACE_SECONDS", "0", 1);
	/* Old: a crash's leftover, garbage (not an inconsistency). */
	o = check(f, false, false, &rep);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.garbage, 1);
	assert_non_null(strstr(o, "garbage: orphan-file: objects/3f/999999"));
	free(o);
	assert_true(exists(orphan));
	o = check(f, true, false, &rep);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.garbage, 1);
	assert_non_null(strstr(o, "note: objects/3f/999999 removed"));
	free(o);
	assert_false(exists(orphan));

	/* Not an object file at all: reported, left for a human. */
	FILE *o2 = fopen(stray, "w");
	assert_non_null(o2);
	fclose(o2);
	o = check(f, true, false, &rep);
	assert_int_equal(rep.problems, 1);
	assert_int_equal(rep.repaired, 0);
	assert_non_null(strstr(o, "problem: stray-file: objects/00/junk"));
	free(o);
	assert_true(exists(stray));
	assert_int_equal(unlink(stray), 0);
	expect_clean(f);
	free(orphan);
	free(stray);
}

static void test_dangling_rows(void **state)
{
	struct store_fx *f = *state;
	mz_lid v = fx_base_version(f->s, "base");
	struct mz_inode root;
	assert_true(lookup(f->s, v, "", &root) > 0);
	sql(f,
	    "INSERT INTO inode(layer, ino, mode, uid, gid, nlink, atime, mtime, ctime, object) "
	    "VALUES (%lld, 9999, %d, 0, 0, 1, 0, 0, 0, 424242);"
	    "INSERT INTO dentry VALUES (%lld, %lld, 'ghost', 8888, %d);"
	    "INSERT INTO layer(parent, kind, name, root_ino, created, depth) "
	    "VALUES (7777, 1, 'lost', %lld, 0, 2);"
	    "UPDATE meta SET value = 3 WHERE key = 'next_ino'",
	    (long long)v, S_IFREG | 0644, (long long)v, (long long)root.ino, S_IFREG,
	    (long long)root.ino);
	struct mz_check_report rep;
	char *o = check(f, true, false, &rep);
	assert_non_null(strstr(o, "problem: missing-object:"));
	assert_non_null(strstr(o, "names object 424242"));
	assert_non_null(strstr(o, "problem: dangling-dentry:"));
	assert_non_null(strstr(o, "entry 'ghost'"));
	assert_non_null(strstr(o, "problem: missing-parent:"));
	assert_non_null(strstr(o, "problem: next-ino:"));
	assert_non_null(strstr(o, "repaired: next-ino"));
	assert_int_equal(rep.problems, 4);
	assert_int_equal(rep.repaired, 1);
	free(o);
	/* next_ino is fixed for good; the rest needs a human. */
	o = check(f, false, false, &rep);
	assert_int_equal(rep.problems, 3);
	assert_null(strstr(o, "next-ino"));
	free(o);
}

static pid_t dead_pid(void)
{
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0)
		_exit(0);
	assert_int_equal(waitpid(p, NULL, 0), p);
	return p;
}

static void test_dead_layers(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base"), b, t;
	/* An import in progress (ours: alive) with a private file in it. */
	assert_int_equal(mz_version_begin(f->s, v, 0755, &b, &err), 0);
	mz_oid bo = tree_file(f->s, b, "partial", "half an import");
	assert_int_equal(mz_tree_create(f->s, v, NULL, dead_pid(), &t, &err), 0);
	mz_oid to = tree_file(f->s, t, "scratch", "domain data");
	char *bp = objpath(f, bo), *tp = objpath(f, to);

	struct mz_check_report rep;
	char *o = check(f, false, false, &rep);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.garbage, 1);
	assert_non_null(strstr(o, "garbage: dead-tree: anonymous tree"));
	free(o);
	/* The import "crashes". */
	sql(f, "UPDATE layer SET owner_start = 1 WHERE id = %lld", (long long)b);
	o = check(f, false, false, &rep);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.garbage, 2);
	assert_non_null(strstr(o, "garbage: dead-build: building anonymous version"));
	free(o);
	o = check(f, true, false, &rep);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.garbage, 2);
	free(o);
	struct mz_layer l;
	assert_int_equal(mz_layer_get(f->s, b, &l, &err), -ENOENT);
	mz_error_release(&err);
	assert_int_equal(mz_layer_get(f->s, t, &l, &err), -ENOENT);
	mz_error_release(&err);
	assert_false(exists(bp));
	assert_false(exists(tp));
	assert_int_equal(mz_layer_get(f->s, v, &l, &err), 0);
	expect_clean(f);
	free(bp);
	free(tp);
}

static void test_gc(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base"), t, v2, live;
	assert_int_equal(mz_tree_create(f->s, v, NULL, dead_pid(), &t, &err), 0);
	mz_oid to = tree_file(f->s, t, "scratch", "private data of a dead domain");
	mz_oid loose = fx_sealed(f->s, "imported, then its image was removed");
	/* A version left anonymous with nothing on top (as after a crash). */
	assert_int_equal(mz_version_begin(f->s, v, 0755, &v2, &err), 0);
	assert_int_equal(mz_version_publish(f->s, v2, "v2", false, &err), 0);
	sql(f, "UPDATE layer SET name = NULL WHERE id = %lld", (long long)v2);
	char *tp = objpath(f, to), *lp = objpath(f, loose);
	char *orphan = xasprintf("%s/objects/3f/999999", f->dir);
	FILE *o1 = fopen(orphan, "w");
	assert_non_null(o1);
	fputs("orphan", o1);
	fclose(o1);

	/* While an import is alive, unreferenced sealed objects stay. */
	assert_int_equal(mz_version_begin(f->s, v, 0755, &live, &err), 0);
	struct mz_gc_report rep;
	assert_int_equal(mz_store_gc(f->s, &rep, &err), 0);
	assert_int_equal(rep.layers, 2);
	assert_int_equal(rep.objects, 1);
	assert_int_equal(rep.files, 0); /* young */
	assert_true(rep.bytes > 0);
	assert_false(exists(tp));
	assert_true(exists(lp));
	assert_true(exists(orphan));
	struct mz_layer l;
	assert_int_equal(mz_layer_get(f->s, t, &l, &err), -ENOENT);
	mz_error_release(&err);
	assert_int_equal(mz_layer_get(f->s, v2, &l, &err), -ENOENT);
	mz_error_release(&err);

	assert_int_equal(mz_version_publish(f->s, live, "live", false, &err), 0);
	setenv("MEZZO_ORPHAN_GRACE_SECONDS", "0", 1);
	assert_int_equal(mz_store_gc(f->s, &rep, &err), 0);
	assert_int_equal(rep.layers, 0);
	assert_int_equal(rep.objects, 1);
	assert_int_equal(rep.files, 1);
	assert_false(exists(lp));
	assert_false(exists(orphan));
	struct mz_object ob;
	assert_int_equal(mz_object_get(f->s, loose, &ob, &err), -ENOENT);
	mz_error_release(&err);
	/* What is in use stays. */
	char *c = slurp(f->s, object_at(f->s, v, "etc/passwd"));
	assert_string_equal(c, "root:x:0:0\n");
	free(c);
	assert_int_equal(mz_store_gc(f->s, &rep, &err), 0);
	assert_int_equal(rep.layers + rep.objects + rep.files, 0);
	expect_clean(f);
	free(tp);
	free(lp);
	free(orphan);
}

static void test_dedup(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base"), t1, t2, t3, t4, s1, s2, s4;
	assert_int_equal(mz_tree_create(f->s, v, "one", 0, &t1, &err), 0);
	assert_int_equal(mz_tree_create(f->s, v, "two", 0, &t2, &err), 0);
	assert_int_equal(mz_tree_create(f->s, v, "three", 0, &t3, &err), 0);
	assert_int_equal(mz_tree_create(f->s, v, "four", 0, &t4, &err), 0);
	mz_oid p1 = tree_file(f->s, t1, "f", "same content\n");
	mz_oid p2 = tree_file(f->s, t2, "g", "same content\n");
	mz_oid p3 = tree_file(f->s, t3, "h", "open for writing\n");
	mz_oid p4 = tree_file(f->s, t4, "sh2", "#!shell"); /* as the image's /bin/sh */
	/* A tree being served (its owner, us, is alive) is left alone. */
	mz_lid t5;
	assert_int_equal(mz_tree_create(f->s, v, NULL, getpid(), &t5, &err), 0);
	mz_oid p5 = tree_file(f->s, t5, "live", "same content\n");
	assert_int_equal(mz_tree_snapshot(f->s, t1, "one-1", &s1, &err), 0);
	assert_int_equal(mz_tree_snapshot(f->s, t2, "two-1", &s2, &err), 0);
	assert_int_equal(mz_tree_snapshot(f->s, t4, "four-1", &s4, &err), 0);
	char *p2path = objpath(f, p2), *p4path = objpath(f, p4);

	/* t3's server has its object open for writing. */
	mz_error_t e2 = NULL;
	int held = mz_object_open(f->s, p3, O_RDWR, &e2);
	assert_true(held >= 0);
	assert_int_equal(flock(held, LOCK_SH), 0);

	struct mz_dedup_report rep;
	assert_int_equal(mz_store_dedup(f->s, &rep, &err), 0);
	assert_int_equal(rep.examined, 3);
	assert_int_equal(rep.merged, 2);
	assert_true(rep.bytes_saved > 0);
	struct mz_inode a1, a2, a4;
	assert_true(lookup(f->s, s1, "f", &a1) > 0);
	assert_true(lookup(f->s, s2, "g", &a2) > 0);
	assert_true(lookup(f->s, s4, "sh2", &a4) > 0);
	assert_true(a1.object_sealed);
	assert_int_equal(a1.object, p1); /* sealed in place */
	assert_int_equal(a2.object, p1); /* merged into it */
	assert_int_equal(a1.object_refs, 2);
	assert_int_equal(a1.size, 13);
	assert_int_equal(a4.object, object_at(f->s, v, "bin/sh"));
	assert_false(exists(p2path));
	assert_false(exists(p4path));
	char *c = slurp(f->s, a2.object);
	assert_string_equal(c, "same content\n");
	free(c);
	/* The trees on the snapshots still see their files. */
	assert_true(lookup(f->s, t2, "g", &a2) > 0);
	assert_int_equal(a2.object, p1);
	struct mz_object ob;
	assert_int_equal(mz_object_get(f->s, p3, &ob, &err), 0);
	assert_false(ob.sealed);
	assert_int_equal(mz_object_get(f->s, p5, &ob, &err), 0);
	assert_false(ob.sealed);
	expect_clean(f);

	/* Once the writer is gone, the tree's object is sealed too, and the
	 * tree copies on its next write. */
	close(held);
	assert_int_equal(mz_store_dedup(f->s, &rep, &err), 0);
	assert_int_equal(rep.examined, 1);
	assert_int_equal(rep.merged, 0);
	assert_int_equal(mz_object_get(f->s, p3, &ob, &err), 0);
	assert_true(ob.sealed);
	mz_view *w;
	assert_int_equal(mz_view_open(f->s, t3, &w, &err), 0);
	struct mz_inode a3;
	mz_ino h = lookup(f->s, t3, "h", &a3);
	assert_int_equal(a3.size, 17);
	mz_oid nw;
	assert_int_equal(mz_view_make_writable(w, h, -1, &nw, &err), 0);
	assert_int_not_equal(nw, p3);
	c = slurp(f->s, nw);
	assert_string_equal(c, "open for writing\n");
	free(c);
	mz_view_close(w);
	assert_int_equal(mz_store_dedup(f->s, &rep, &err), 0);
	expect_clean(f);
	free(p2path);
	free(p4path);
}

static char *df(struct store_fx *f, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	mz_error_t err = NULL;
	assert_int_equal(mz_store_df(f->s, json, out, &err), 0);
	fclose(out);
	return buf;
}

static void test_df(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	mz_lid v = fx_base_version(f->s, "base"), t;
	assert_int_equal(mz_tree_create(f->s, v, "work", 0, &t, &err), 0);
	tree_file(f->s, t, "hello", "hello");
	char *j = df(f, true);
	assert_non_null(strstr(j, "{\"layers\":[{"));
	assert_non_null(strstr(j, "\"kind\":\"image\",\"name\":\"base\",\"inodes\":5,"
				  "\"logical_bytes\":18,\"exclusive_bytes\":18,\"shared_bytes\":0}"));
	/* The tree's own rows: its root (copied up) and the new file. */
	assert_non_null(strstr(j, "\"kind\":\"tree\",\"name\":\"work\",\"inodes\":2,"
				  "\"logical_bytes\":5,\"exclusive_bytes\":5,\"shared_bytes\":0}"));
	assert_non_null(strstr(j, "\"objects\":3,\"sealed_objects\":2,\"private_objects\":1"));
	assert_non_null(strstr(j, "\"logical_bytes\":23,\"saved_bytes\":0"));
	free(j);
	char *h = df(f, false);
	assert_non_null(strstr(h, "LAYER"));
	assert_non_null(strstr(h, "base"));
	assert_non_null(strstr(h, "objects  3 (2 sealed, 1 private)"));
	free(h);
}

/* Make n private objects: each comes with its file, open, under its name. */
static void make_private(mz_store *s, struct store_fx *f, mz_oid *ids, int n)
{
	mz_error_t err = NULL;
	for (int i = 0; i < n; i++) {
		int fd;
		assert_int_equal(mz_object_create_private(s, &ids[i], &fd, &err), 0);
		struct stat a, b;
		char *p = objpath(f, ids[i]);
		assert_int_equal(fstat(fd, &a), 0);
		assert_int_equal(stat(p, &b), 0);
		assert_int_equal(a.st_ino, b.st_ino);
		assert_int_equal(a.st_nlink, 1);
		free(p);
		close(fd);
		if (i % 40 == 39)
			usleep(20000); /* the filler's turn */
	}
}

/* A tree server's pool (pool.c) names object files ahead, under ids the
 * catalog reserved for it: every create gets its file and row; a file a gc
 * took from a live pool is never handed out; a closed pool leaves no file
 * behind; a killed one leaves orphans that check calls garbage (not
 * problems) and gc removes. */
static void test_pool_names_files_ahead(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err = NULL;
	setenv("MEZZO_ORPHAN_GRACE_SECONDS", "0", 1);
	mz_store_set_pool(f->s, true);
	mz_oid ids[200];
	make_private(f->s, f, ids, 200);
	/* ids from the catalog's counter only grow; the pool hands out its
	 * reserved ones last made first: so some id is below an earlier one */
	bool pooled = false;
	for (int i = 1; i < 200; i++)
		pooled |= ids[i] < ids[i - 1];
	assert_true(pooled);

	/* gc judges the pool's unused files orphans (grace 0) and removes them */
	struct mz_gc_report g;
	assert_int_equal(mz_store_gc(f->s, &g, &err), 0);
	assert_true(g.files > 0);
	make_private(f->s, f, ids, 100);

	mz_store_set_pool(f->s, false); /* drains: unlinks what it made */
	struct mz_check_report rep;
	char *o = check(f, false, true, &rep);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.garbage, 0);
	free(o);

	/* a tree server killed with a full pool */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		mz_store *c;
		if (mz_store_open(f->dir, &c, &err) < 0)
			_exit(1);
		mz_store_set_pool(c, true);
		for (int i = 0; i < 60; i++) {
			mz_oid id;
			if (mz_object_create_private(c, &id, NULL, &err) < 0)
				_exit(2);
			if (i % 20 == 19)
				usleep(20000);
		}
		_exit(0); /* no close: as kill -9 would */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	o = check(f, false, true, &rep);
	assert_int_equal(rep.problems, 0);
	assert_true(rep.garbage > 0);
	free(o);
	assert_int_equal(mz_store_gc(f->s, &g, &err), 0);
	assert_int_equal(g.files, rep.garbage);
	o = check(f, false, true, &rep);
	assert_int_equal(rep.problems, 0);
	assert_int_equal(rep.garbage, 0);
	free(o);
	unsetenv("MEZZO_ORPHAN_GRACE_SECONDS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean_store, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_sealed, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_refs_repair, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_orphan_files, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_dangling_rows, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_dead_layers, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_gc, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_dedup, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_df, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_pool_names_files_ahead, store_fx_setup,
						store_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
