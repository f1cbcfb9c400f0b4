/*
 * tar.c — import a tar archive (any compression libarchive knows, detected
 * by content) into a building version.
 *
 * An archive is hostile input.  Its entries are never extracted on the host:
 * each becomes a catalog entry of the image, so nothing in it can touch host
 * files.  What remains is keeping the image itself sane:
 *   - paths are normalised ("./" prefixes, "." and empty components dropped)
 *     and then rejected if absolute, if they hold "..", if a component is over
 *     255 bytes or the whole over 4096;
 *   - parents are resolved through a map of the directories this archive made,
 *     so a parent that is a symlink (or any non-directory) is an error, never
 *     followed, and a missing parent is created (0755, root);
 *   - hard links may name only an earlier non-directory entry;
 *   - a later entry replaces an earlier non-directory (as tar does) but never a
 *     directory, and a duplicate directory only updates attributes;
 *   - sizes over 1 TiB, data past the header's size and truncated data fail.
 */
#include "imageInt.h"
#include "archive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/log.h"
#include "../lib/util.h"

struct tarsrc {
	struct builder *b;
	const char *source;
	struct archive *a;
	struct bmap *dirs; /* normalised path of every directory -> inode */
};

/* An archive's name made safe to print (no terminal escapes), truncated. */
static const char *show(const char *in, char out[160])
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && o < 150; p++)
		out[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
	if (strlen(in) > 150)
		out[o++] = '.', out[o++] = '.', out[o++] = '.';
	out[o] = '\0';
	return out;
}

static int bad(struct tarsrc *t, mz_error_t *err, int code, const char *name, const char *why)
{
	char s[160];
	return mz_error(err, code, "%s: entry '%s': %s (refusing the whole archive)", t->source,
			show(name, s), why);
}

/* Normalise an archive path into out: "a/b/c", or "" for the root. */
static int norm_path(struct tarsrc *t, const char *in, char out[IMG_MAX_PATH + 1],
		     mz_error_t *err)
{
	if (in == NULL)
		return mz_error(err, EINVAL, "%s: an entry has no name", t->source);
	if (in[0] == '/')
		return bad(t, err, EINVAL, in, "absolute path");
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		const char *q = strchrnul(p, '/');
		size_t n = q - p;
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return bad(t, err, EINVAL, in, "path with a '..' component");
		if (n > IMG_MAX_NAME)
			return bad(t, err, ENAMETOOLONG, in, "name component longer than 255 bytes");
		if (!(n == 1 && p[0] == '.')) {
			if (o + (o ? 1 : 0) + n > IMG_MAX_PATH)
				return bad(t, err, ENAMETOOLONG, in, "path longer than 4096 bytes");
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = q;
	}
	out[o] = '\0';
	return 0;
}

/* Split "a/b/c" into parent length (3) and the last name ("c"). */
static size_t split(const char *path, size_t len, char name[IMG_MAX_NAME + 1])
{
	const char *s = memrchr(path, '/', len);
	size_t plen = s ? (size_t)(s - path) : 0;
	const char *n = s ? s + 1 : path;
	size_t nlen = len - (n - path);
	memcpy(name, n, nlen);
	name[nlen] = '\0';
	return plen;
}

/* Why path[0, len) cannot be a parent: it exists but is not a directory. */
static int not_a_dir(struct tarsrc *t, const char *whole, mz_ino ino, mz_error_t *err)
{
	struct mz_inode a;
	int r = mz_view_getattr(t->b->v, ino, &a, err);
	if (r < 0)
		return r;
	if (S_ISLNK(a.mode))
		return bad(t, err, ELOOP, whole,
			   "its parent is a symlink made earlier in the archive (symlinks are "
			   "never followed)");
	return bad(t, err, ENOTDIR, whole, "its parent is not a directory");
}

/* The directory at path[0, len), created (with any missing ancestors) if
 * need be. */
static int ensure_dir(struct tarsrc *t, const char *path, size_t len, const char *whole,
		      mz_ino *out, mz_error_t *err)
{
	struct builder *b = t->b;
	int64_t v = 0;
	size_t end = len;
	while (!bmap_get(t->dirs, path, end, &v)) {
		const char *s = memrchr(path, '/', end);
		end = s ? (size_t)(s - path) : 0; /* the root, "", is always there */
	}
	mz_ino ino = v;
	while (end < len) {
		size_t start = end ? end + 1 : 0;
		const char *s = memchr(path + start, '/', len - start);
		size_t stop = s ? (size_t)(s - path) : len;
		char name[IMG_MAX_NAME + 1];
		memcpy(name, path + start, stop - start);
		name[stop - start] = '\0';
		mz_ino child;
		int r = mz_view_lookup(b->v, ino, name, &child, err);
		if (r == 0)
			return not_a_dir(t, whole, child, err); /* every dir is in the map */
		if (r != -ENOENT)
			return r;
		struct mz_inode a = {.mode = S_IFDIR | 0755};
		a.atime_ns = a.mtime_ns = a.ctime_ns = b->now;
		if ((r = build_create(b, ino, name, whole, &a, 0, NULL, &child, err)) < 0)
			return r;
		build_fixup(b, child, &a, MZ_SET_ATIME | MZ_SET_MTIME | MZ_SET_CTIME);
		bmap_put(t->dirs, path, stop, child);
		if ((r = build_tick(b, err)) < 0)
			return r;
		ino = child;
		end = stop;
	}
	*out = ino;
	return 0;
}

static int64_t ts_ns(int64_t sec, long nsec)
{
	const int64_t lim = INT64_MAX / 1000000000 - 1;
	if (sec > lim)
		sec = lim;
	if (sec < -lim)
		sec = -lim;
	return sec * 1000000000 + nsec;
}

static int entry_attr(struct tarsrc *t, struct archive_entry *e, const char *path,
		      struct mz_inode *a, mz_error_t *err)
{
	memset(a, 0, sizeof(*a));
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
		return bad(t, err, ERANGE, path, "owner or group id out of range");
	a->uid = uid;
	a->gid = gid;
	a->mode = archive_entry_filetype(e) | (archive_entry_perm(e) & 07777);
	a->mtime_ns = ts_ns(archive_entry_mtime(e), archive_entry_mtime_nsec(e));
	a->atime_ns = archive_entry_atime_is_set(e)
			      ? ts_ns(archive_entry_atime(e), archive_entry_atime_nsec(e))
			      : a->mtime_ns;
	a->ctime_ns = archive_entry_ctime_is_set(e)
			      ? ts_ns(archive_entry_ctime(e), archive_entry_ctime_nsec(e))
			      : a->mtime_ns;
	a->rdev = archive_entry_rdev(e);
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	if (size < 0 || size > IMG_MAX_SIZE)
		return bad(t, err, EFBIG, path, "size over 1 TiB");
	a->size = size;
	return 0;
}

/* Copy the entry's data into a sealed object. */
static int entry_data(struct tarsrc *t, const char *path, int64_t size, mz_oid *oid,
		      mz_error_t *err)
{
	int r = build_before_data(t->b, size, err);
	struct objw w;
	if (r < 0 || (r = objw_begin(t->b, &w, err)) < 0)
		return r;
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		int rc = archive_read_data_block(t->a, &buf, &n, &off);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
			char s[160];
			r = mz_error(err, EIO, "%s: entry '%s': %s", t->source, show(path, s),
				     archive_error_string(t->a));
			break;
		}
		if (off < 0 || off > size || (int64_t)n > size - off) {
			r = bad(t, err, EINVAL, path, "data beyond the size in its header");
			break;
		}
		if ((r = objw_write(&w, off, buf, n, err)) < 0)
			break;
	}
	if (r == 0)
		r = objw_finish(&w, size, oid, err);
	objw_release(&w);
	if (r < 0 && err && *err && strncmp((*err)->msg, t->source, strlen(t->source)) != 0)
		mz_error_wrap(err, "%s: entry '%s'", t->source, path);
	return r;
}

/* Extended attributes and POSIX ACLs of the entry; *any is set if one was. */
static int entry_xattrs(struct tarsrc *t, struct archive_entry *e, mz_ino ino,
			const char *path, struct mz_inode *a, bool *any, mz_error_t *err)
{
	const char *name;
	const void *val;
	size_t len;
	bool have_acc = false, have_def = false;
	int r;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &len) == ARCHIVE_OK) {
		if (name == NULL)
			continue;
		have_acc |= strcmp(name, "system.posix_acl_access") == 0;
		have_def |= strcmp(name, "system.posix_acl_default") == 0;
		if ((r = build_xattr(t->b, ino, path, name, val, len, err)) < 0)
			return r;
		*any = true;
	}
	static const struct {
		int type;
		const char *name;
	} acls[] = {
		{ARCHIVE_ENTRY_ACL_TYPE_ACCESS, "system.posix_acl_access"},
		{ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, "system.posix_acl_default"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(acls); i++) {
		if (i == 0 ? have_acc : (have_def || !S_ISDIR(a->mode)))
			continue;
		cleanup_free void *x = NULL;
		int mask = acl_to_xattr(e, acls[i].type, &x, &len);
		if (len == 0)
			continue;
		if ((r = build_xattr(t->b, ino, path, acls[i].name, x, len, err)) < 0)
			return r;
		*any = true;
		/* With an ACL mask the group bits of the mode are the mask. */
		if (i == 0 && mask >= 0)
			a->mode = (a->mode & ~070u) | ((uint32_t)mask << 3);
	}
	return 0;
}

static int entry_hardlink(struct tarsrc *t, mz_ino dir, const char *name, const char *path,
			  const char *target, mz_error_t *err)
{
	char tp[IMG_MAX_PATH + 1], tname[IMG_MAX_NAME + 1];
	int r = norm_path(t, target, tp, err);
	if (r < 0)
		return mz_error_wrap(err, "hard link target");
	int64_t v;
	size_t tl = strlen(tp);
	if (tl == 0 || bmap_get(t->dirs, tp, tl, NULL))
		return bad(t, err, EPERM, path, "hard link to a directory");
	size_t pl = split(tp, tl, tname);
	mz_ino tino, old;
	if (!bmap_get(t->dirs, tp, pl, &v) ||
	    (r = mz_view_lookup(t->b->v, v, tname, &tino, err)) == -ENOENT)
		return bad(t, err, ENOENT, path,
			   "hard link to something that is not an earlier entry of the archive");
	if (r < 0)
		return r;
	if (bmap_get(t->dirs, path, strlen(path), NULL))
		return bad(t, err, EEXIST, path, "replaces a directory with a non-directory");
	r = mz_view_lookup(t->b->v, dir, name, &old, err);
	if (r == 0 && old == tino)
		return 0; /* already that file */
	if (r == 0 && (r = build_unlink(t->b, dir, name, path, err)) < 0)
		return r;
	if (r < 0 && r != -ENOENT)
		return r;
	if ((r = build_link(t->b, tino, dir, name, path, err)) < 0)
		return r;
	return build_tick(t->b, err);
}

static int entry_create(struct tarsrc *t, struct archive_entry *e, mz_ino dir,
			const char *name, const char *path, struct mz_inode *a, mz_ino *ino,
			mz_error_t *err)
{
	mz_oid oid = 0;
	const char *target = NULL;
	int r;
	switch (a->mode & S_IFMT) {
	case S_IFREG:
		if ((r = entry_data(t, path, a->size, &oid, err)) < 0)
			return r;
		break;
	case S_IFLNK:
		target = archive_entry_symlink(e);
		if (target == NULL)
			target = archive_entry_symlink_utf8(e);
		if (target == NULL || *target == '\0')
			return bad(t, err, EINVAL, path, "symlink without a target");
		break;
	case S_IFDIR:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	default:
		return bad(t, err, EINVAL, path, "unsupported entry type");
	}
	if (!S_ISREG(a->mode))
		a->size = 0;
	return build_create(t->b, dir, name, path, a, oid, target, ino, err);
}

static const char *entry_name(struct archive_entry *e)
{
	const char *p = archive_entry_pathname(e);
	return p ? p : archive_entry_pathname_utf8(e);
}

static int tar_entry(struct tarsrc *t, struct archive_entry *e, mz_error_t *err)
{
	struct builder *b = t->b;
	char path[IMG_MAX_PATH + 1], name[IMG_MAX_NAME + 1];
	int r = norm_path(t, entry_name(e), path, err);
	if (r < 0)
		return r;
	struct mz_inode a;
	if ((r = entry_attr(t, e, path, &a, err)) < 0)
		return r;
	size_t len = strlen(path);
	const char *hl = archive_entry_hardlink(e);
	if (hl == NULL)
		hl = archive_entry_hardlink_utf8(e);
	bool is_dir = hl == NULL && S_ISDIR(a.mode);
	unsigned all = MZ_SET_MODE | MZ_SET_UID | MZ_SET_GID | MZ_SET_ATIME | MZ_SET_MTIME |
		       MZ_SET_CTIME;
	bool xa = false;
	if (len == 0) { /* the root itself: attributes only */
		if (!is_dir)
			return bad(t, err, EINVAL, ".", "the root is not a directory");
		r = entry_xattrs(t, e, b->root, "/", &a, &xa, err);
		build_fixup(b, b->root, &a, all);
		return r;
	}
	mz_ino dir = 0, ino = 0;
	size_t pl = split(path, len, name);
	if ((r = ensure_dir(t, path, pl, path, &dir, err)) < 0)
		return r;
	if (hl)
		return entry_hardlink(t, dir, name, path, hl, err);
	r = mz_view_lookup(b->v, dir, name, &ino, err);
	if (r < 0 && r != -ENOENT)
		return r;
	bool exists = r == 0;
	if (exists && bmap_get(t->dirs, path, len, NULL)) {
		if (!is_dir)
			return bad(t, err, EEXIST, path,
				   "replaces a directory with a non-directory");
		/* The same directory again: newer attributes win. */
		if ((r = entry_xattrs(t, e, ino, path, &a, &xa, err)) < 0)
			return r;
		build_fixup(b, ino, &a, all);
		return build_tick(b, err);
	}
	if (exists && (r = build_unlink(b, dir, name, path, err)) < 0)
		return r;
	if ((r = entry_create(t, e, dir, name, path, &a, &ino, err)) < 0)
		return r;
	if (is_dir)
		bmap_put(t->dirs, path, len, ino);
	if ((r = entry_xattrs(t, e, ino, path, &a, &xa, err)) < 0)
		return r;
	if (is_dir || xa)
		build_fixup(b, ino, &a, xa ? all : (MZ_SET_ATIME | MZ_SET_MTIME | MZ_SET_CTIME));
	return build_tick(b, err);
}

static const char not_tar[] = "not a directory or a tar archive (plain, gzip, bzip2, xz, zstd)";

static struct archive *tar_open(const char *source, int fd, mz_error_t *err)
{
	if (mz_dyn_load_archive(err) < 0)
		return NULL;
	struct archive *a = archive_read_new();
	if (a == NULL) {
		mz_error(err, ENOMEM, "%s: cannot start reading the archive", source);
		return NULL;
	}
	/* The tar family of formats only, and only filters Debian's libarchive
	 * decodes in-process (it links zlib, bzip2, xz, lz4 and zstd), so no
	 * hostile input ever makes it start an external decompressor. */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_lz4(a);
	archive_read_support_filter_compress(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		const char *msg = archive_error_string(a);
		mz_error(err, EINVAL, "%s: %s: %s", source, not_tar,
			 msg ? msg : "cannot read it");
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int import_tar(struct builder *b, const char *source, int fd, mz_error_t *err)
{
	struct tarsrc t = {.b = b, .source = source};
	t.a = tar_open(source, fd, err);
	if (t.a == NULL)
		return -EINVAL;
	t.dirs = bmap_new();
	bmap_put(t.dirs, "", 0, b->root);
	int r = 0;
	for (int64_t n = 0;; n++) {
		struct archive_entry *e;
		int rc = archive_read_next_header(t.a, &e);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc == ARCHIVE_WARN) {
			mz_debug("%s: %s", source, archive_error_string(t.a));
		} else if (rc != ARCHIVE_OK) {
			const char *msg = archive_error_string(t.a);
			r = mz_error(err, EINVAL, "%s: %s%s%s", source, n == 0 ? not_tar : "",
				     n == 0 ? ": " : "", msg ? msg : "cannot read the archive");
			break;
		}
		if ((r = tar_entry(&t, e, err)) < 0)
			break;
	}
	bmap_free(t.dirs);
	archive_read_free(t.a);
	return r;
}
