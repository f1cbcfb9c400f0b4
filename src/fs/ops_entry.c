/*
 * ops_entry.c — FUSE operations on names and inodes: lookup, attributes,
 * creating and removing names.  Each maps onto one mz_view call, which is one
 * catalog transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "fsInt.h"

/* A request's NUL-terminated name argument at offset off, checked. */
static const char *req_name(const struct fs_req *r, size_t off)
{
	if (r->arglen <= off)
		return NULL;
	const char *name = (const char *)r->arg + off;
	if (memchr(name, '\0', r->arglen - off) == NULL)
		return NULL;
	return name;
}

static int reply_entry(struct fs_server *S, const struct fs_req *r, const struct mz_inode *a)
{
	struct fuse_entry_out e;
	fs_fill_entry(S, a, &e);
	fs_node_ref(S, a->ino);
	return fs_reply(S, r, &e, sizeof(e));
}

int fs_op_lookup(struct fs_server *S, const struct fs_req *r)
{
	const char *name = req_name(r, 0);
	if (name == NULL)
		return fs_reply_err(S, r, -EINVAL);
	mz_error_t err = NULL;
	mz_ino ino;
	int rc = mz_view_lookup(S->view, fs_ino(S, r->h->nodeid), name, &ino, &err);
	if (rc == -ENOENT) {
		/* Negative entry, cached: nothing but this server adds names. */
		struct fuse_entry_out e = {.nodeid = 0, .entry_valid = FS_TTL_SEC};
		mz_error_release(&err);
		return fs_reply(S, r, &e, sizeof(e));
	}
	struct mz_inode a;
	if (rc == 0)
		rc = fs_getattr(S, ino, &a, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return reply_entry(S, r, &a);
}

int fs_op_forget(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_forget_in *in = r->arg;
	struct fs_node *n = fs_node_get(S, fs_ino(S, r->h->nodeid));
	if (n)
		fs_node_unref(S, n, in->nlookup);
	return 0;
}

int fs_op_batch_forget(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_batch_forget_in *in = r->arg;
	const struct fuse_forget_one *one = (const void *)(in + 1);
	size_t max = (r->arglen - sizeof(*in)) / sizeof(*one);
	for (size_t i = 0; i < in->count && i < max; i++) {
		struct fs_node *n = fs_node_get(S, fs_ino(S, one[i].nodeid));
		if (n)
			fs_node_unref(S, n, one[i].nlookup);
	}
	return 0;
}

static int reply_attr(struct fs_server *S, const struct fs_req *r, mz_ino ino)
{
	mz_error_t err = NULL;
	struct mz_inode a;
	int rc = fs_getattr(S, ino, &a, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	struct fuse_attr_out o = {.attr_valid = FS_TTL_SEC};
	fs_fill_attr(S, &a, &o.attr);
	return fs_reply(S, r, &o, sizeof(o));
}

int fs_op_getattr(struct fs_server *S, const struct fs_req *r)
{
	return reply_attr(S, r, fs_ino(S, r->h->nodeid));
}

static int64_t ts_ns(uint64_t sec, uint32_t nsec)
{
	return (int64_t)sec * 1000000000 + nsec;
}

/* Truncate a regular file: CoW first unless the object is ours already. */
static int truncate_file(struct fs_server *S, mz_ino ino, uint64_t size, mz_error_t *err)
{
	struct mz_inode a;
	int rc = mz_view_getattr(S->view, ino, &a, err);
	if (rc < 0)
		return rc;
	if (!S_ISREG(a.mode))
		return S_ISDIR(a.mode) ? -EISDIR : -EINVAL;
	mz_oid obj;
	int64_t keep = (int64_t)size < a.size ? (int64_t)size : a.size;
	if ((rc = mz_view_make_writable(S->view, ino, keep, &obj, err)) < 0)
		return rc;
	cleanup_close int fd = mz_object_open(S->store, obj, O_WRONLY, err);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, size) < 0)
		return -errno;
	struct mz_inode n = {.size = size};
	return mz_view_setattr(S->view, ino, &n, MZ_SET_SIZE, err);
}

void fs_notify_inval_attr(struct fs_server *S, mz_ino ino)
{
	/* off < 0: attributes only, no page cache, so no lock is taken that the
	 * request being served could hold. */
	struct {
		struct fuse_out_header h;
		struct fuse_notify_inval_inode_out o;
	} msg = {
		.h = {.len = sizeof(msg), .error = FUSE_NOTIFY_INVAL_INODE, .unique = 0},
		.o = {.ino = fs_nodeid(S, ino), .off = -1, .len = 0},
	};
	if (write(S->dev_fd, &msg, sizeof(msg)) < 0 && errno != ENOENT)
		mz_debug("notify inval inode %lld: %s", (long long)ino, strerror(errno));
}

int fs_kill_suidgid(struct fs_server *S, mz_ino ino, mz_error_t *err)
{
	/* As a local file system does on write, truncate and chown by someone
	 * without CAP_FSETID: drop set-uid, set-gid when group-executable, and
	 * file capabilities. */
	struct mz_inode a; /* its mode only: no stat of the object */
	int rc = mz_view_getattr_row(S->view, ino, &a, err);
	if (rc < 0 || !S_ISREG(a.mode))
		return rc;
	uint32_t mode = a.mode & ~S_ISUID;
	if (mode & S_IXGRP)
		mode &= ~S_ISGID;
	if (mode != a.mode) {
		struct mz_inode n = {.mode = mode};
		if ((rc = mz_view_setattr(S->view, ino, &n, MZ_SET_MODE, err)) < 0)
			return rc;
		/* Outside a SETATTR reply the kernel keeps its cached mode for a
		 * day: tell it to forget it. */
		fs_notify_inval_attr(S, ino);
	}
	rc = mz_view_removexattr(S->view, ino, "security.capability", err);
	if (rc == -ENODATA) {
		mz_error_release(err);
		rc = 0;
	}
	return rc;
}

int fs_op_setattr(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_setattr_in *in = r->arg;
	mz_ino ino = fs_ino(S, r->h->nodeid);
	mz_error_t err = NULL;
	int rc = 0;
	if (in->valid & FATTR_SIZE)
		rc = truncate_file(S, ino, in->size, &err);
	struct mz_inode n = {0};
	unsigned mask = 0;
	int64_t now = now_ns();
	if (in->valid & FATTR_MODE) {
		n.mode = in->mode;
		mask |= MZ_SET_MODE;
	}
	if (in->valid & FATTR_UID) {
		n.uid = fs_uid_in(S, in->uid);
		mask |= MZ_SET_UID;
	}
	if (in->valid & FATTR_GID) {
		n.gid = fs_gid_in(S, in->gid);
		mask |= MZ_SET_GID;
	}
	if (in->valid & (FATTR_ATIME | FATTR_ATIME_NOW)) {
		n.atime_ns = (in->valid & FATTR_ATIME_NOW) ? now : ts_ns(in->atime, in->atimensec);
		mask |= MZ_SET_ATIME;
	}
	if (in->valid & (FATTR_MTIME | FATTR_MTIME_NOW)) {
		n.mtime_ns = (in->valid & FATTR_MTIME_NOW) ? now : ts_ns(in->mtime, in->mtimensec);
		mask |= MZ_SET_MTIME;
	}
	if (in->valid & FATTR_CTIME) {
		n.ctime_ns = ts_ns(in->ctime, in->ctimensec);
		mask |= MZ_SET_CTIME;
	}
	if (rc == 0 && mask)
		rc = mz_view_setattr(S->view, ino, &n, mask, &err);
	if (rc == 0 && (in->valid & FATTR_KILL_SUIDGID) && !(in->valid & FATTR_MODE))
		rc = fs_kill_suidgid(S, ino, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return reply_attr(S, r, ino);
}

int fs_op_readlink(struct fs_server *S, const struct fs_req *r)
{
	mz_error_t err = NULL;
	cleanup_free char *t = NULL;
	int rc = mz_view_readlink(S->view, fs_ino(S, r->h->nodeid), &t, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return fs_reply(S, r, t, strlen(t));
}

/* Owner and mode of a new inode: the caller's ids, the group of a setgid
 * directory (and its setgid bit for subdirectories), like a local fs. */
static int new_attr(struct fs_server *S, const struct fs_req *r, mz_ino dir, uint32_t mode,
		    struct mz_inode *a, mz_error_t *err)
{
	struct mz_inode d;
	int rc = mz_view_getattr(S->view, dir, &d, err);
	if (rc < 0)
		return rc;
	memset(a, 0, sizeof(*a));
	a->mode = mode;
	a->uid = fs_uid_in(S, r->h->uid);
	a->gid = fs_gid_in(S, r->h->gid);
	if (d.mode & S_ISGID) {
		a->gid = d.gid;
		if (S_ISDIR(mode))
			a->mode |= S_ISGID;
	}
	a->atime_ns = a->mtime_ns = a->ctime_ns = now_ns();
	return 0;
}

static int make_node(struct fs_server *S, const struct fs_req *r, const char *name,
		     uint32_t mode, uint64_t rdev, const char *target)
{
	mz_ino dir = fs_ino(S, r->h->nodeid);
	mz_error_t err = NULL;
	struct mz_inode a, out;
	int rc = new_attr(S, r, dir, mode, &a, &err);
	a.rdev = rdev;
	if (rc == 0)
		rc = mz_view_create(S->view, dir, name, &a, 0, target, &out, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return reply_entry(S, r, &out);
}

int fs_op_mknod(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_mknod_in *in = r->arg;
	const char *name = req_name(r, sizeof(*in));
	if (name == NULL)
		return fs_reply_err(S, r, -EINVAL);
	uint32_t type = in->mode & S_IFMT;
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
	    type != S_IFBLK)
		return fs_reply_err(S, r, -EINVAL);
	/* the kernel encodes rdev with new_encode_dev() */
	unsigned ma = (in->rdev & 0xfff00) >> 8;
	unsigned mi = (in->rdev & 0xff) | ((in->rdev >> 12) & 0xfff00);
	return make_node(S, r, name, in->mode, makedev(ma, mi), NULL);
}

int fs_op_mkdir(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_mkdir_in *in = r->arg;
	const char *name = req_name(r, sizeof(*in));
	if (name == NULL)
		return fs_reply_err(S, r, -EINVAL);
	return make_node(S, r, name, S_IFDIR | (in->mode & 07777), 0, NULL);
}

int fs_op_symlink(struct fs_server *S, const struct fs_req *r)
{
	const char *name = req_name(r, 0);
	const char *target = name ? req_name(r, strlen(name) + 1) : NULL;
	if (target == NULL)
		return fs_reply_err(S, r, -EINVAL);
	return make_node(S, r, name, S_IFLNK | 0777, 0, target);
}

static int remove_name(struct fs_server *S, const struct fs_req *r, bool dir)
{
	const char *name = req_name(r, 0);
	if (name == NULL)
		return fs_reply_err(S, r, -EINVAL);
	mz_error_t err = NULL;
	mz_ino gone;
	int rc = mz_view_unlink(S->view, fs_ino(S, r->h->nodeid), name, dir, &gone, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	fs_inode_gone(S, gone);
	return fs_reply_err(S, r, 0);
}

int fs_op_unlink(struct fs_server *S, const struct fs_req *r)
{
	return remove_name(S, r, false);
}

int fs_op_rmdir(struct fs_server *S, const struct fs_req *r)
{
	return remove_name(S, r, true);
}

static int do_rename(struct fs_server *S, const struct fs_req *r, uint64_t newdir,
		     uint32_t flags, size_t off)
{
	const char *oldname = req_name(r, off);
	const char *newname = oldname ? req_name(r, off + strlen(oldname) + 1) : NULL;
	if (newname == NULL)
		return fs_reply_err(S, r, -EINVAL);
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return fs_reply_err(S, r, -EINVAL); /* RENAME_WHITEOUT: overlayfs only */
	unsigned f = 0;
	if (flags & RENAME_NOREPLACE)
		f |= MZ_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= MZ_RENAME_EXCHANGE;
	mz_error_t err = NULL;
	mz_ino replaced;
	int rc = mz_view_rename(S->view, fs_ino(S, r->h->nodeid), oldname, fs_ino(S, newdir),
				newname, f, &replaced, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	fs_inode_gone(S, replaced);
	return fs_reply_err(S, r, 0);
}

int fs_op_rename(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_rename_in *in = r->arg;
	return do_rename(S, r, in->newdir, 0, sizeof(*in));
}

int fs_op_rename2(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_rename2_in *in = r->arg;
	return do_rename(S, r, in->newdir, in->flags, sizeof(*in));
}

int fs_op_link(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_link_in *in = r->arg;
	const char *name = req_name(r, sizeof(*in));
	if (name == NULL)
		return fs_reply_err(S, r, -EINVAL);
	mz_ino ino = fs_ino(S, in->oldnodeid);
	mz_error_t err = NULL;
	int rc = mz_view_link(S->view, ino, fs_ino(S, r->h->nodeid), name, &err);
	struct mz_inode a;
	if (rc == 0)
		rc = mz_view_getattr(S->view, ino, &a, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	struct fs_node *n = fs_node_get(S, ino);
	if (n)
		n->unlinked = false; /* O_TMPFILE made visible by linkat() */
	return reply_entry(S, r, &a);
}
