/* test_image.c — importing images from directories and (hostile) tar archives. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

#include "../../src/image/image.h"
#include "../../src/lib/util.h"
#include "../../src/store/store.h"

struct fx {
	char dir[64];
	char src[96], tar[96], store[96];
	mz_store *s;
};

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	fx_mkdtemp(f->dir);
	snprintf(f->src, sizeof(f->src), "%s/src", f->dir);
	snprintf(f->tar, sizeof(f->tar), "%s/in.tar", f->dir);
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	assert_int_equal(mkdir(f->src, 0755), 0);
	mz_error_t err = NULL;
	assert_int_equal(mz_store_open(f->store, &f->s, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	mz_store_close(f->s);
	fx_rmrf(f->dir);
	free(f);
	return 0;
}

static struct mz_inode get(mz_view *v, const char *path)
{
	mz_error_t err = NULL;
	struct mz_inode a;
	mz_ino ino = fx_walk(v, path);
	if (ino == 0)
		fail_msg("%s missing from the image", path);
	assert_int_equal(mz_view_getattr(v, ino, &a, &err), 0);
	return a;
}

static char *content(mz_store *s, const struct mz_inode *a, off_t off, size_t n)
{
	mz_error_t err = NULL;
	int fd = mz_object_open(s, a->object, O_RDONLY, &err);
	assert_true(fd >= 0);
	char *buf = xcalloc(1, n + 1);
	assert_true(pread(fd, buf, n, off) >= 0);
	close(fd);
	return buf;
}

static mz_view *open_image(mz_store *s, const char *name)
{
	mz_error_t err = NULL;
	struct mz_layer l;
	char spec[300];
	snprintf(spec, sizeof(spec), "image:%s", name);
	assert_int_equal(mz_layer_resolve(s, spec, &l, &err), 0);
	mz_view *v;
	assert_int_equal(mz_view_open(s, l.id, &v, &err), 0);
	return v;
}

static int count_cb(const struct mz_layer *l, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int nlayers(mz_store *s)
{
	mz_error_t err = NULL;
	int n = 0;
	assert_int_equal(mz_layer_foreach(s, count_cb, &n, &err), 0);
	return n;
}

static void put(const char *dir, const char *name, const char *text, mode_t mode)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, text, strlen(text)), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int import(struct fx *f, const char *name, const char *src, struct mz_import_stats *st,
		  char **msg)
{
	mz_error_t err = NULL;
	struct mz_import_opts o = {.stats = st};
	int r = mz_image_import(f->s, name, src, &o, NULL, &err);
	if (msg)
		*msg = err ? xstrdup(err->msg) : NULL;
	else if (r < 0)
		fail_msg("import failed: %s", err ? err->msg : "?");
	mz_error_release(&err);
	return r;
}

/* ---- a directory with everything in it ----------------------------------- */

static const unsigned char acl_bytes[] = {
	/* version 2; user::rwx user:1000:r-x group::r-x mask::r-x other::--- */
	2, 0, 0, 0,   1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 5, 0, 0xe8, 3, 0, 0,
	4, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 5, 0, 0xff, 0xff, 0xff, 0xff,
	0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
};

static void make_tree(const char *d)
{
	char p[256];
#define P(x) (snprintf(p, sizeof(p), "%s/%s", d, x), p)
	assert_int_equal(mkdir(P("etc"), 0755), 0);
	assert_int_equal(mkdir(P("tmp"), 01777), 0);
	assert_int_equal(chmod(P("tmp"), 01777), 0);
	assert_int_equal(mkdir(P("a"), 0750), 0);
	assert_int_equal(mkdir(P("a/b"), 0700), 0);
	put(d, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
	put(d, "a/suid", "#!/bin/sh\n", 04755);
	put(d, "a/sgid", "sgid", 02711);
	put(d, "a/none", "", 0);
	put(d, "a/b/hl1", "linked", 0640);
	assert_int_equal(link(P("a/b/hl1"), (snprintf(p + 128, 128, "%s/hl2", d), p + 128)), 0);
	assert_int_equal(symlink("/etc/passwd", P("a/abs")), 0);
	assert_int_equal(symlink("../../etc", P("a/b/rel")), 0);
	assert_int_equal(mkfifo(P("fifo"), 0620), 0);
	assert_int_equal(mknod(P("null"), S_IFCHR | 0666, makedev(1, 3)), 0);
	int sk = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(P("sock")) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, p, strlen(p) + 1);
	assert_int_equal(bind(sk, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(sk);
	/* sparse: 10 MiB with one byte of data in the middle */
	int fd = open(P("sparse"), O_RDWR | O_CREAT, 0644);
	assert_int_equal(ftruncate(fd, 10 << 20), 0);
	assert_int_equal(pwrite(fd, "x", 1, 5 << 20), 1);
	close(fd);
	/* xattrs: user, file capability, ACL */
	assert_int_equal(setxattr(P("etc/passwd"), "user.note", "hello", 5, 0), 0);
	uint32_t cap[5] = {0x02000001, 1u << 10, 0, 0, 0}; /* v2, effective, net_bind */
	assert_int_equal(setxattr(P("a/suid"), "security.capability", cap, sizeof(cap), 0), 0);
	assert_int_equal(setxattr(P("a"), "system.posix_acl_access", acl_bytes,
				  sizeof(acl_bytes), 0),
			 0);
	assert_int_equal(lsetxattr(P("fifo"), "trusted.t", "v", 1, 0), 0);
	/* owners and times, the root included */
	assert_int_equal(lchown(P("a/abs"), 1234, 5678), 0);
	assert_int_equal(chown(P("a/sgid"), 4242, 4343), 0);
	assert_int_equal(chown(d, 42, 43), 0);
	assert_int_equal(chmod(d, 0711), 0);
	struct timespec ts[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
	assert_int_equal(utimensat(AT_FDCWD, P("a/abs"), ts, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(utimensat(AT_FDCWD, P("etc/passwd"), ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, P("a"), ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, d, ts, 0), 0);
#undef P
}

/* The image's attributes of path equal the source's lstat. */
static void same_attr(mz_view *v, const char *src, const char *path)
{
	char p[256];
	snprintf(p, sizeof(p), "%s%s%s", src, *path ? "/" : "", path);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	struct mz_inode a = *path ? get(v, path) : get(v, ".");
	if (a.mode != st.st_mode)
		fail_msg("%s: mode 0%o, want 0%o", path, a.mode, st.st_mode);
	assert_int_equal(a.uid, st.st_uid);
	assert_int_equal(a.gid, st.st_gid);
	assert_int_equal(a.mtime_ns, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
	if (!S_ISDIR(st.st_mode))
		assert_int_equal(a.nlink, st.st_nlink);
	if (S_ISREG(st.st_mode))
		assert_int_equal(a.size, st.st_size);
	if (S_ISCHR(st.st_mode))
		assert_int_equal(a.rdev, st.st_rdev);
}

static void same_xattr(mz_view *v, const char *src, const char *path, const char *name)
{
	char p[256], want[256];
	snprintf(p, sizeof(p), "%s/%s", src, path);
	ssize_t n = lgetxattr(p, name, want, sizeof(want));
	assert_true(n > 0);
	mz_error_t err = NULL;
	void *val;
	size_t len;
	assert_int_equal(mz_view_getxattr(v, fx_walk(v, path), name, &val, &len, &err), 0);
	assert_int_equal(len, n);
	assert_memory_equal(val, want, n);
	free(val);
}

static void test_dir_roundtrip(void **state)
{
	struct fx *f = *state;
	make_tree(f->src);
	struct mz_import_stats st;
	assert_int_equal(import(f, "full", f->src, &st, NULL), 0);
	assert_int_equal(nlayers(f->s), 1);
	mz_view *v = open_image(f->s, "full");
	static const char *const paths[] = {
		"", "etc", "tmp", "a", "a/b", "etc/passwd", "a/suid", "a/sgid", "a/none",
		"a/b/hl1", "hl2", "a/abs", "a/b/rel", "fifo", "null", "sock", "sparse",
	};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		same_attr(v, f->src, paths[i]);
	/* hard link: one inode */
	assert_int_equal(fx_walk(v, "a/b/hl1"), fx_walk(v, "hl2"));
	assert_int_equal(get(v, "hl2").nlink, 2);
	/* symlinks verbatim */
	mz_error_t err = NULL;
	char *t;
	assert_int_equal(mz_view_readlink(v, fx_walk(v, "a/abs"), &t, &err), 0);
	assert_string_equal(t, "/etc/passwd");
	free(t);
	assert_int_equal(mz_view_readlink(v, fx_walk(v, "a/b/rel"), &t, &err), 0);
	assert_string_equal(t, "../../etc");
	free(t);
	/* content, and the sparse file stays sparse */
	struct mz_inode pw = get(v, "etc/passwd");
	assert_true(pw.object_sealed);
	char *c = content(f->s, &pw, 0, 100);
	assert_string_equal(c, "root:x:0:0::/root:/bin/sh\n");
	free(c);
	struct mz_inode sp = get(v, "sparse");
	assert_int_equal(sp.size, 10 << 20);
	assert_true(sp.blocks * 512 < (1 << 20));
	c = content(f->s, &sp, 5 << 20, 1);
	assert_string_equal(c, "x");
	free(c);
	/* xattrs */
	same_xattr(v, f->src, "etc/passwd", "user.note");
	same_xattr(v, f->src, "a/suid", "security.capability");
	same_xattr(v, f->src, "a", "system.posix_acl_access");
	same_xattr(v, f->src, "fifo", "trusted.t");
	assert_int_equal(st.files, 6);
	assert_int_equal(st.entries, ARRAY_SIZE(paths) - 1);
	mz_view_close(v);

	struct mz_image_info in;
	assert_int_equal(mz_image_info(f->s, "full", &in, &err), 0);
	assert_int_equal(in.entries, ARRAY_SIZE(paths) - 1);
	assert_int_equal(in.files, 6);
	assert_int_equal(in.dirs, 5);
	assert_int_equal(in.symlinks, 2);
	assert_int_equal(in.specials, 3);
}

/* ---- tar archives written here ----------------------------------------------- */

struct tent {
	const char *path;
	mode_t mode;      /* with type; 0 means a hard link */
	const char *data; /* file content, symlink or hard link target */
	int64_t size;     /* -1: strlen(data) */
};

static void write_tar(const char *file, int filter, const struct tent *t, size_t n)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	switch (filter) {
	case 'g': archive_write_add_filter_gzip(a); break;
	case 'x': archive_write_add_filter_xz(a); break;
	case 'z': archive_write_add_filter_zstd(a); break;
	case 'b': archive_write_add_filter_bzip2(a); break;
	default: archive_write_add_filter_none(a); break;
	}
	assert_int_equal(archive_write_open_filename(a, file), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, t[i].path);
		archive_entry_set_mtime(e, 1600000000 + i, 5);
		archive_entry_set_uid(e, 1000 + i);
		archive_entry_set_gid(e, 2000 + i);
		size_t len = 0;
		if (t[i].mode == 0) {
			archive_entry_set_hardlink(e, t[i].data);
		} else {
			archive_entry_set_mode(e, t[i].mode);
			if (S_ISLNK(t[i].mode))
				archive_entry_set_symlink(e, t[i].data);
			if (S_ISREG(t[i].mode)) {
				len = t[i].data ? strlen(t[i].data) : 0;
				archive_entry_set_size(e, t[i].size >= 0 ? t[i].size : (int64_t)len);
			}
			if (S_ISREG(t[i].mode) && strcmp(t[i].path, "cap") == 0)
				archive_entry_xattr_add_entry(e, "security.capability", "\1\0\0\2",
							      4);
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (len)
			assert_int_equal(archive_write_data(a, t[i].data, len), (ssize_t)len);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

static const struct tent good[] = {
	{"./", S_IFDIR | 0750, NULL, 0},
	{"./bin/", S_IFDIR | 0755, NULL, 0},
	{"./bin/busybox", S_IFREG | 0755, "ELF pretend", -1},
	{"./bin/sh", S_IFLNK | 0777, "busybox", 0},
	{"./bin/ash", 0, "bin/busybox", 0},
	{"./deep/er/file", S_IFREG | 0600, "implicit parents", -1},
	{"cap", S_IFREG | 0700, "c", -1},
	{"cap", S_IFREG | 0700, "c", -1}, /* replaces an inode that had fix-ups */
	{"dev/null", S_IFCHR | 0666, NULL, 0},
	{"dup", S_IFREG | 0644, "first", -1},
	{"dup", S_IFREG | 0644, "second", -1},
	{"bin", S_IFDIR | 0711, NULL, 0},
};

static void check_good(struct fx *f, const char *name)
{
	mz_view *v = open_image(f->s, name);
	struct mz_inode a = get(v, ".");
	assert_int_equal(a.mode, S_IFDIR | 0750);
	assert_int_equal(a.uid, 1000);
	a = get(v, "bin");
	assert_int_equal(a.mode, S_IFDIR | 0711); /* the later duplicate wins */
	assert_int_equal(a.mtime_ns, 1600000011LL * 1000000000 + 5);
	a = get(v, "bin/busybox");
	assert_int_equal(a.mode, S_IFREG | 0755);
	assert_int_equal(a.uid, 1002);
	assert_int_equal(a.gid, 2002);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(a.mtime_ns, 1600000002LL * 1000000000 + 5);
	assert_int_equal(fx_walk(v, "bin/ash"), a.ino);
	char *c = content(f->s, &a, 0, 64);
	assert_string_equal(c, "ELF pretend");
	free(c);
	mz_error_t err = NULL;
	char *t;
	assert_int_equal(mz_view_readlink(v, fx_walk(v, "bin/sh"), &t, &err), 0);
	assert_string_equal(t, "busybox");
	free(t);
	a = get(v, "deep");
	assert_int_equal(a.mode, S_IFDIR | 0755);
	assert_int_equal(a.uid, 0);
	a = get(v, "deep/er/file");
	c = content(f->s, &a, 0, 64);
	assert_string_equal(c, "implicit parents");
	free(c);
	a = get(v, "dup");
	c = content(f->s, &a, 0, 64);
	assert_string_equal(c, "second");
	free(c);
	assert_int_equal(get(v, "dev/null").mode, S_IFCHR | 0666);
	void *val;
	size_t len;
	assert_int_equal(
		mz_view_getxattr(v, fx_walk(v, "cap"), "security.capability", &val, &len, &err), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(val, "\1\0\0\2", 4);
	free(val);
	mz_view_close(v);
}

static void test_tar_compressions(void **state)
{
	struct fx *f = *state;
	static const struct {
		int filter;
		const char *name;
	} kinds[] = {{0, "plain"}, {'g', "gz"}, {'x', "xz"}, {'z', "zstd"}, {'b', "bz2"}};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		char file[128];
		/* the name says nothing: content decides */
		snprintf(file, sizeof(file), "%s/archive-%zu.bin", f->dir, i);
		write_tar(file, kinds[i].filter, good, ARRAY_SIZE(good));
		struct mz_import_stats st;
		assert_int_equal(import(f, kinds[i].name, file, &st, NULL), 0);
		check_good(f, kinds[i].name);
		/* all archives have the same content: only the first stores any */
		assert_int_equal(st.objects_new, i == 0 ? 5 : 0);
	}
	assert_int_equal(nlayers(f->s), ARRAY_SIZE(kinds));
}

static void test_tar_zeros_and_acl(void **state)
{
	struct fx *f = *state;
	struct archive *a = archive_write_new();
	archive_write_set_format_pax(a);
	archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, f->tar), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "zeros");
	archive_entry_set_mode(e, S_IFREG | 0770);
	archive_entry_set_size(e, 4 << 20);
	static const int acl[][3] = {{ARCHIVE_ENTRY_ACL_USER_OBJ, 7, -1},
				     {ARCHIVE_ENTRY_ACL_GROUP_OBJ, 5, -1},
				     {ARCHIVE_ENTRY_ACL_USER, 7, 1000},
				     {ARCHIVE_ENTRY_ACL_MASK, 7, -1},
				     {ARCHIVE_ENTRY_ACL_OTHER, 0, -1}};
	for (size_t i = 0; i < ARRAY_SIZE(acl); i++)
		archive_entry_acl_add_entry(e, ARCHIVE_ENTRY_ACL_TYPE_ACCESS, acl[i][1], acl[i][0],
					    acl[i][2], acl[i][2] >= 0 ? "u" : NULL);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	char *buf = xcalloc(1, 1 << 20);
	for (int i = 0; i < 4; i++) {
		if (i == 3)
			buf[(1 << 20) - 1] = 'z';
		assert_int_equal(archive_write_data(a, buf, 1 << 20), 1 << 20);
	}
	free(buf);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);

	assert_int_equal(import(f, "zeros", f->tar, NULL, NULL), 0);
	mz_view *v = open_image(f->s, "zeros");
	struct mz_inode z = get(v, "zeros");
	assert_int_equal(z.size, 4 << 20);
	assert_true(z.blocks * 512 <= 64 * 1024); /* zero blocks became holes */
	char *c = content(f->s, &z, (4 << 20) - 1, 1);
	assert_string_equal(c, "z");
	free(c);
	/* the hash is of the full content, so the store's check agrees */
	mz_error_t err = NULL;
	struct mz_object ob;
	assert_int_equal(mz_object_get(f->s, z.object, &ob, &err), 0);
	int fd = mz_object_open(f->s, z.object, O_RDONLY, &err);
	uint8_t h[MZ_HASH_LEN];
	assert_int_equal(mz_hash_fd(fd, h), 0);
	close(fd);
	assert_memory_equal(h, ob.hash, MZ_HASH_LEN);
	/* ACL: kernel format, sorted, and the mode's group bits are the mask */
	void *val;
	size_t len;
	assert_int_equal(mz_view_getxattr(v, z.ino, "system.posix_acl_access", &val, &len, &err),
			 0);
	static const unsigned char want[] = {
		2, 0, 0, 0,   1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 7, 0, 0xe8, 3, 0, 0,
		4, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
	}; /* user::rwx user:1000:rwx group::r-x mask::rwx other::--- */
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(val, want, sizeof(want));
	free(val);
	assert_int_equal(z.mode & 0777, 0770);
	mz_view_close(v);
}

/* ---- hostile archives ------------------------------------------------------ */

static void hostile(struct fx *f, const struct tent *t, size_t n, const char *expect)
{
	write_tar(f->tar, 'g', t, n);
	char *msg = NULL;
	assert_true(import(f, "evil", f->tar, NULL, &msg) < 0);
	assert_non_null(msg);
	if (strstr(msg, expect) == NULL)
		fail_msg("error '%s' does not say '%s'", msg, expect);
	free(msg);
	/* no image, no building layer left behind */
	assert_int_equal(nlayers(f->s), 0);
	mz_error_t err = NULL;
	struct mz_layer l;
	assert_int_equal(mz_layer_resolve(f->s, "evil", &l, &err), -ENOENT);
	mz_error_release(&err);
}

static void test_hostile_archives(void **state)
{
	struct fx *f = *state;
	char longname[300], deep[5000];
	memset(longname, 'n', 256);
	longname[256] = '\0';
	for (int i = 0; i < 2100; i++)
		memcpy(deep + 2 * i, "d/", 2);
	strcpy(deep + 4200, "f");
#define REG(p) {p, S_IFREG | 0644, "x", -1}
#define LNK(p, t) {p, S_IFLNK | 0777, t, 0}
#define DIR(p) {p, S_IFDIR | 0755, NULL, 0}
#define HARD(p, t) {p, 0, t, 0}
#define CASE(why, ...) {why, (const struct tent[]){__VA_ARGS__}, \
			sizeof((const struct tent[]){__VA_ARGS__}) / sizeof(struct tent)}
	const struct {
		const char *why;
		const struct tent *t;
		size_t n;
	} cases[] = {
		CASE("'..'", REG("ok"), REG("../x")),
		CASE("'..'", REG("a/b/../../../x")),
		CASE("absolute", REG("/etc/passwd")),
		CASE("symlink", LNK("a", "/etc"), REG("a/passwd")),
		CASE("symlink", DIR("d/"), LNK("d/l", ".."), REG("d/l/x/y")),
		CASE("not an earlier entry", HARD("x", "nowhere")),
		CASE("'..'", HARD("x", "../../etc/shadow")),
		CASE("not an earlier entry", LNK("l", "/etc"), HARD("x", "l/shadow")),
		CASE("directory", DIR("d/"), HARD("x", "d")),
		CASE("replaces a directory", REG("f"), DIR("d/"), HARD("d", "f")),
		CASE("255", REG(longname)),
		CASE("4096", REG(deep)),
		CASE("replaces a directory", DIR("etc/"), REG("etc/passwd"), LNK("etc", "/etc")),
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		hostile(f, cases[i].t, cases[i].n, cases[i].why);

	/* A size header that lies: the archive ends before the data does. */
	const struct tent trunc[] = {{"f", S_IFREG | 0644, "0123456789abcdef", -1}};
	write_tar(f->tar, 0, trunc, 1);
	int fd = open(f->tar, O_RDONLY);
	char *raw = xcalloc(1, 1 << 16);
	assert_true(read(fd, raw, 1 << 16) > 0);
	close(fd);
	char *data = memmem(raw, 1 << 16, "0123456789abcdef", 16);
	assert_non_null(data);
	assert_int_equal(truncate(f->tar, data - raw + 8), 0); /* cut inside the data */
	free(raw);
	char *msg = NULL;
	assert_true(import(f, "evil", f->tar, NULL, &msg) < 0);
	free(msg);
	assert_int_equal(nlayers(f->s), 0);
	/* Not an archive at all. */
	put(f->dir, "junk", "this is no tar archive, just text\n", 0644);
	char junk[128];
	snprintf(junk, sizeof(junk), "%s/junk", f->dir);
	assert_true(import(f, "evil", junk, NULL, &msg) < 0);
	assert_non_null(strstr(msg, "not a directory or a tar archive"));
	free(msg);
	assert_int_equal(nlayers(f->s), 0);
}

/* A 1 TiB + 1 byte size in a header, written by hand (libarchive's writer
 * would want the data). */
static void test_hostile_size(void **state)
{
	struct fx *f = *state;
	unsigned char h[512 * 3] = {0};
	strcpy((char *)h, "big");
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	h[124] = 0x80; /* base-256 size (GNU): 2^40 + 1 */
	h[130] = 1;
	h[135] = 1;
	memcpy(h + 136, "00000000000", 12);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	int fd = open(f->tar, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(write_all(fd, h, sizeof(h)), 0);
	close(fd);
	char *msg = NULL;
	assert_true(import(f, "evil", f->tar, NULL, &msg) < 0);
	if (strstr(msg, "1 TiB") == NULL)
		fail_msg("unexpected error: %s", msg);
	free(msg);
	assert_int_equal(nlayers(f->s), 0);
}

/* ---- dedup, names, removal -------------------------------------------------- */

static void test_dedup_and_names(void **state)
{
	struct fx *f = *state;
	put(f->src, "one", "identical content", 0644);
	put(f->src, "two", "identical content", 0600);
	put(f->src, "three", "other content", 0644);
	struct mz_import_stats st;
	assert_int_equal(import(f, "first", f->src, &st, NULL), 0);
	assert_int_equal(st.objects_new, 2);
	assert_int_equal(st.dedup_bytes, 17);
	assert_int_equal(import(f, "second", f->src, &st, NULL), 0);
	assert_int_equal(st.objects_new, 0);
	assert_int_equal(st.stored, 0);
	mz_view *a = open_image(f->s, "first"), *b = open_image(f->s, "second");
	assert_int_equal(get(a, "one").object, get(b, "one").object);
	assert_int_equal(get(a, "one").object, get(b, "two").object);
	assert_int_not_equal(get(a, "one").object, get(b, "three").object);
	mz_view_close(a);
	mz_view_close(b);

	char *msg = NULL;
	assert_int_equal(import(f, "first", f->src, NULL, &msg), -EEXIST);
	assert_non_null(strstr(msg, "already exists"));
	free(msg);
	assert_int_equal(import(f, "../bad", f->src, NULL, &msg), -EINVAL);
	free(msg);
	assert_int_equal(import(f, "x", "/nonexistent/source", NULL, &msg), -ENOENT);
	assert_non_null(strstr(msg, "/nonexistent/source"));
	free(msg);
	assert_int_equal(nlayers(f->s), 2);

	struct mz_layer *v;
	size_t n;
	mz_error_t err = NULL;
	assert_int_equal(mz_image_list(f->s, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "first");
	free(v);
	assert_int_equal(mz_image_remove(f->s, "first", &err), 0);
	assert_int_equal(mz_image_remove(f->s, "first", &err), -ENOENT);
	assert_non_null(strstr(err->msg, "no image named 'first'"));
	mz_error_release(&err);
	assert_int_equal(nlayers(f->s), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dir_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tar_compressions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tar_zeros_and_acl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_archives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedup_and_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
