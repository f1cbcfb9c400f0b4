/*
 * dir.c — import a directory tree of the host into a building version.
 *
 * The walk never follows a symlink: everything is opened relative to its
 * parent's directory fd with O_NOFOLLOW, and each open file is checked to be
 * the inode fstatat saw (a file swapped for a symlink, fifo or device between
 * the two would otherwise be read).  Fifos, sockets and devices are recorded,
 * never opened; their xattrs (and a symlink's) are read through
 * /proc/self/fd/DIRFD/NAME with the l*xattr calls.
 *
 * Hard links are kept (a device+inode map); sparse files are read extent by
 * extent with SEEK_DATA/SEEK_HOLE.  The walk stays on the source's file
 * system: a directory that is a mount point of another file system (a /proc
 * left mounted in a chroot, say) is imported as an empty directory, with a
 * warning, so host state never leaks into an image.
 */
#include "imageInt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"

struct dirsrc {
	struct builder *b;
	const char *source;
	dev_t dev;
	struct bmap *links; /* {st_dev, st_ino} -> image inode, for st_nlink > 1 */
	char path[IMG_MAX_PATH + IMG_MAX_NAME + 2]; /* relative path, for messages */
	size_t plen;
	bool warned_mount;
};

struct devino {
	dev_t dev;
	ino_t ino;
};

static int sys_fail(struct dirsrc *d, mz_error_t *err, int e, const char *what)
{
	return mz_error_sys(err, e, "%s/%s: %s", d->source, d->path, what);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* All names in the directory, sorted (the image should not depend on the
 * order a file system happens to return). */
static int read_names(struct dirsrc *d, int dfd, char ***out, size_t *nout, mz_error_t *err)
{
	int fd = dup(dfd);
	if (fd < 0)
		return sys_fail(d, err, errno, "cannot read directory");
	DIR *dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return sys_fail(d, err, errno, "cannot read directory");
	}
	rewinddir(dir);
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = xstrdup(de->d_name);
	}
	int e = errno;
	closedir(dir);
	if (e) {
		free_names(v, n);
		return sys_fail(d, err, e, "cannot read directory");
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_names);
	*out = v;
	*nout = n;
	return 0;
}

static void stat_attr(const struct stat *st, struct mz_inode *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = st->st_mode;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
		a->rdev = st->st_rdev;
	a->size = S_ISREG(st->st_mode) ? st->st_size : 0;
	a->atime_ns = (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec;
	a->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	a->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* ---- extended attributes -------------------------------------------------- */

/* Either through an open fd, or (fd < 0) through a no-follow path. */
static ssize_t xlist(int fd, const char *path, char *buf, size_t n)
{
	return fd >= 0 ? flistxattr(fd, buf, n) : llistxattr(path, buf, n);
}

static ssize_t xget(int fd, const char *path, const char *name, void *buf, size_t n)
{
	return fd >= 0 ? fgetxattr(fd, name, buf, n) : lgetxattr(path, name, buf, n);
}

static int copy_xattrs(struct dirsrc *d, int fd, int dfd, const char *name, mz_ino ino,
		       bool *any, mz_error_t *err)
{
	char path[64 + IMG_MAX_NAME];
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dfd, name);
	ssize_t n;
	cleanup_free char *list = NULL;
	for (;;) {
		n = xlist(fd, path, NULL, 0);
		if (n <= 0)
			break;
		list = xrealloc(list, n);
		n = xlist(fd, path, list, n);
		if (n >= 0 || errno != ERANGE)
			break;
	}
	if (n < 0) {
		if (errno == ENOTSUP || errno == ENOENT)
			return 0;
		return sys_fail(d, err, errno, "cannot list extended attributes");
	}
	cleanup_free char *val = xmalloc(65536);
	for (char *p = list; p < list + n; p += strlen(p) + 1) {
		ssize_t l = xget(fd, path, p, val, 65536);
		if (l < 0 && errno == ENODATA)
			continue; /* removed meanwhile */
		if (l < 0)
			return sys_fail(d, err, errno, "cannot read extended attribute");
		int r = build_xattr(d->b, ino, d->path, p, val, l, err);
		if (r < 0)
			return r;
		*any = true;
	}
	return 0;
}

/* ---- content ---------------------------------------------------------------- */

/* Copy [0, *size) of fd, data extents only; a file that shrank meanwhile
 * ends where it ended. */
static int copy_data(struct dirsrc *d, int fd, int64_t *size, mz_oid *oid, mz_error_t *err)
{
	struct builder *b = d->b;
	int r = build_before_data(b, *size, err);
	struct objw w;
	if (r < 0 || (r = objw_begin(b, &w, err)) < 0)
		return r;
	int64_t pos = 0, end = *size;
	while (r == 0 && pos < end) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0) {
			r = sys_fail(d, err, errno, "cannot read");
			break;
		}
		if (data >= end)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		for (int64_t off = data; r == 0 && off < hole;) {
			size_t want = hole - off < IMG_IO_BUF ? (size_t)(hole - off) : IMG_IO_BUF;
			ssize_t k = pread(fd, b->buf, want, off);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				r = sys_fail(d, err, errno, "cannot read");
			} else if (k == 0) {
				end = hole = off; /* shrank under us */
			} else {
				r = objw_write(&w, off, b->buf, k, err);
				off += k;
			}
		}
		pos = hole;
	}
	if (r == 0)
		r = objw_finish(&w, end, oid, err);
	objw_release(&w);
	*size = end;
	if (r < 0 && err && *err && strncmp((*err)->msg, d->source, strlen(d->source)) != 0)
		mz_error_wrap(err, "%s/%s", d->source, d->path);
	return r;
}

/* Open name for reading without following it, and check it is still the
 * inode fstatat saw. */
static int open_same(struct dirsrc *d, int dfd, const char *name, const struct stat *st,
		     int flags, mz_error_t *err)
{
	flags |= O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	int fd = openat(dfd, name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name, flags);
	if (fd < 0)
		return sys_fail(d, err, errno, "cannot open");
	struct stat now;
	if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino ||
	    (now.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) {
		close(fd);
		return mz_error(err, EAGAIN, "%s/%s: changed while being imported", d->source,
				d->path);
	}
	return fd;
}

/* ---- the walk ------------------------------------------------------------- */

static int walk(struct dirsrc *d, int dfd, mz_ino dino, mz_error_t *err);

static int entry_dir(struct dirsrc *d, int dfd, mz_ino dino, const char *name,
		     const struct stat *st, struct mz_inode *a, mz_error_t *err)
{
	struct builder *b = d->b;
	cleanup_close int fd = open_same(d, dfd, name, st, O_DIRECTORY, err);
	if (fd < 0)
		return fd;
	mz_ino ino;
	bool any = false;
	int r = build_create(b, dino, name, d->path, a, 0, NULL, &ino, err);
	if (r == 0)
		r = copy_xattrs(d, fd, dfd, name, ino, &any, err);
	if (r == 0)
		r = build_tick(b, err);
	if (r < 0)
		return r;
	build_fixup(b, ino, a, MZ_SET_ATIME | MZ_SET_MTIME | MZ_SET_CTIME);
	if (st->st_dev != d->dev) {
		if (!d->warned_mount)
			mz_warn("%s/%s: another file system is mounted here: imported as an "
				"empty directory",
				d->source, d->path);
		d->warned_mount = true;
		return 0;
	}
	return walk(d, fd, ino, err);
}

static int entry_other(struct dirsrc *d, int dfd, mz_ino dino, const char *name,
		       const struct stat *st, struct mz_inode *a, mz_ino *ino, mz_error_t *err)
{
	cleanup_close int fd = -1;
	mz_oid oid = 0;
	char target[IMG_MAX_PATH + 1];
	const char *tp = NULL;
	int r;
	if (S_ISREG(st->st_mode)) {
		if (st->st_size > IMG_MAX_SIZE)
			return mz_error(err, EFBIG, "%s/%s: larger than 1 TiB", d->source, d->path);
		if ((fd = open_same(d, dfd, name, st, 0, err)) < 0)
			return fd;
		if ((r = copy_data(d, fd, &a->size, &oid, err)) < 0)
			return r;
	} else if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlinkat(dfd, name, target, sizeof(target));
		if (n < 0)
			return sys_fail(d, err, errno, "cannot read symlink");
		if (n >= (ssize_t)sizeof(target) - 1)
			return mz_error(err, ENAMETOOLONG, "%s/%s: symlink target too long",
					d->source, d->path);
		target[n] = '\0';
		tp = target;
	} else if (!S_ISCHR(st->st_mode) && !S_ISBLK(st->st_mode) && !S_ISFIFO(st->st_mode) &&
		   !S_ISSOCK(st->st_mode)) {
		return mz_error(err, EINVAL, "%s/%s: unsupported file type", d->source, d->path);
	}
	if ((r = build_create(d->b, dino, name, d->path, a, oid, tp, ino, err)) < 0)
		return r;
	bool any = false;
	if ((r = copy_xattrs(d, fd, dfd, name, *ino, &any, err)) < 0)
		return r;
	if (any)
		build_fixup(d->b, *ino, a, MZ_SET_ATIME | MZ_SET_MTIME | MZ_SET_CTIME);
	return 0;
}

static int one_entry(struct dirsrc *d, int dfd, mz_ino dino, const char *name,
		     mz_error_t *err)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : sys_fail(d, err, errno, "cannot stat");
	if (d->plen > IMG_MAX_PATH)
		return mz_error(err, ENAMETOOLONG, "%s/%.200s...: path longer than 4096 bytes",
				d->source, d->path);
	struct mz_inode a;
	stat_attr(&st, &a);
	if (S_ISDIR(st.st_mode))
		return entry_dir(d, dfd, dino, name, &st, &a, err);
	struct devino key = {.dev = st.st_dev, .ino = st.st_ino};
	int64_t first;
	int r;
	if (st.st_nlink > 1 && bmap_get(d->links, &key, sizeof(key), &first)) {
		if ((r = build_link(d->b, first, dino, name, d->path, err)) < 0)
			return r;
		return build_tick(d->b, err);
	}
	mz_ino ino;
	if ((r = entry_other(d, dfd, dino, name, &st, &a, &ino, err)) < 0)
		return r;
	if (st.st_nlink > 1)
		bmap_put(d->links, &key, sizeof(key), ino);
	return build_tick(d->b, err);
}

static int walk(struct dirsrc *d, int dfd, mz_ino dino, mz_error_t *err)
{
	char **names = NULL;
	size_t n = 0;
	int r = read_names(d, dfd, &names, &n, err);
	if (r < 0)
		return r;
	size_t save = d->plen;
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t l = strlen(names[i]);
		if (save + 1 + l >= sizeof(d->path)) {
			r = mz_error(err, ENAMETOOLONG, "%s/%.200s...: path longer than 4096 bytes",
				     d->source, d->path);
			break;
		}
		d->plen = save;
		if (d->plen)
			d->path[d->plen++] = '/';
		memcpy(d->path + d->plen, names[i], l + 1);
		d->plen += l;
		r = one_entry(d, dfd, dino, names[i], err);
	}
	d->plen = save;
	d->path[save] = '\0';
	free_names(names, n);
	return r;
}

int import_dir(struct builder *b, const char *source, int dirfd, mz_error_t *err)
{
	struct dirsrc d = {.b = b, .source = source};
	struct stat st;
	if (fstat(dirfd, &st) < 0)
		return mz_error_sys(err, errno, "%s: cannot stat", source);
	d.dev = st.st_dev;
	d.links = bmap_new();
	struct mz_inode a;
	stat_attr(&st, &a);
	bool any = false;
	/* The root's xattrs, through its own fd (name "." for the path form). */
	int r = copy_xattrs(&d, dirfd, dirfd, ".", b->root, &any, err);
	build_fixup(b, b->root, &a,
		    MZ_SET_MODE | MZ_SET_UID | MZ_SET_GID | MZ_SET_ATIME | MZ_SET_MTIME |
			    MZ_SET_CTIME);
	if (r == 0)
		r = walk(&d, dirfd, b->root, err);
	bmap_free(d.links);
	return r;
}
