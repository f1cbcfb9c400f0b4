/*
 * fixture.h — what the store, maintenance and image unit tests share: a
 * store in a fresh temporary directory, removed afterwards, and a few ways
 * of filling and walking it.  Include after <cmocka.h>.
 */
#ifndef MZ_TEST_FIXTURE_H
#define MZ_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/lib/util.h"
#include "../../src/store/store.h"

#define FX_UNUSED __attribute__((unused))

/* A temporary directory and, in it (or at sub, if given), an open store. */
struct store_fx {
	char dir[64];
	mz_store *s;
};

static FX_UNUSED void fx_mkdtemp(char dir[64])
{
	strcpy(dir, "/tmp/mezzo-unit-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static FX_UNUSED void fx_rmrf(const char *dir)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static FX_UNUSED int store_fx_setup(void **state)
{
	struct store_fx *f = xcalloc(1, sizeof(*f));
	fx_mkdtemp(f->dir);
	unsetenv("MEZZO_ORPHAN_GRACE_SECONDS");
	mz_error_t err = NULL;
	assert_int_equal(mz_store_open(f->dir, &f->s, &err), 0);
	*state = f;
	return 0;
}

static FX_UNUSED int store_fx_teardown(void **state)
{
	struct store_fx *f = *state;
	mz_store_close(f->s);
	unsetenv("MEZZO_ORPHAN_GRACE_SECONDS");
	fx_rmrf(f->dir);
	free(f);
	return 0;
}

/* Attributes of a new inode of this mode, owned by root, times now. */
static FX_UNUSED struct mz_inode fx_attr(uint32_t mode)
{
	struct mz_inode a = {.mode = mode};
	a.atime_ns = a.mtime_ns = a.ctime_ns = now_ns();
	return a;
}

/* A sealed object holding text. */
static FX_UNUSED mz_oid fx_sealed(mz_store *s, const char *text)
{
	mz_error_t err = NULL;
	int fd = mz_object_tmpfile(s, &err);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, text, strlen(text)), 0);
	mz_oid id;
	assert_int_equal(mz_object_seal_tmpfile(s, fd, NULL, &id, &err), 0);
	close(fd);
	return id;
}

/* An image with /etc/passwd and /bin/sh. */
static FX_UNUSED mz_lid fx_base_version(mz_store *s, const char *name)
{
	mz_error_t err = NULL;
	mz_lid v;
	assert_int_equal(mz_version_begin(s, 0, 0755, &v, &err), 0);
	mz_view *w;
	assert_int_equal(mz_view_open(s, v, &w, &err), 0);
	struct mz_inode etc, bin, a = fx_attr(S_IFDIR | 0755);
	assert_int_equal(mz_view_create(w, mz_view_root(w), "etc", &a, 0, NULL, &etc, &err), 0);
	assert_int_equal(mz_view_create(w, mz_view_root(w), "bin", &a, 0, NULL, &bin, &err), 0);
	a = fx_attr(S_IFREG | 0644);
	assert_int_equal(mz_view_create(w, etc.ino, "passwd", &a, fx_sealed(s, "root:x:0:0\n"),
					NULL, NULL, &err),
			 0);
	a = fx_attr(S_IFREG | 0755);
	assert_int_equal(
		mz_view_create(w, bin.ino, "sh", &a, fx_sealed(s, "#!shell"), NULL, NULL, &err), 0);
	mz_view_close(w);
	assert_int_equal(mz_version_publish(s, v, name, true, &err), 0);
	return v;
}

/* The inode at path ("." components skipped), 0 if there is none. */
static FX_UNUSED mz_ino fx_walk(mz_view *v, const char *path)
{
	mz_ino ino = mz_view_root(v);
	char *dup = xstrdup(path), *save = NULL;
	for (char *p = strtok_r(dup, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		mz_error_t err = NULL;
		if (strcmp(p, ".") == 0)
			continue;
		if (mz_view_lookup(v, ino, p, &ino, &err) < 0) {
			free(dup);
			mz_error_release(&err);
			return 0;
		}
	}
	free(dup);
	return ino;
}

#endif
