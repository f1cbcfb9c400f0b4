/*
 * ops_file.c — FUSE operations on open regular files.
 *
 * OPEN hands the kernel a passthrough backing id for the file's object, so
 * read, write, splice and mmap go straight to the object file in the host
 * page cache: one cached copy however many trees share the object.  Opening
 * for writing first makes the object private to this tree (copy-on-write).
 * READ and WRITE are served here only if the kernel refused passthrough.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "fsInt.h"

struct fs_handle *fs_handle_get(struct fs_server *S, uint64_t fh)
{
	return imap_get(&S->handles, (int64_t)fh);
}

static struct fs_node *node_for_open(struct fs_server *S, mz_ino ino)
{
	struct fs_node *n = fs_node_get(S, ino);
	if (n == NULL) {
		/* The kernel holds it (it sent us the nodeid): count from here. */
		n = xcalloc(1, sizeof(*n));
		n->ino = ino;
		imap_put(&S->nodes, ino, n);
	}
	return n;
}

/*
 * The kernel allows one passthrough backing file per inode at a time, so a
 * node keeps one (object fd + backing id) for all its passthrough opens, and
 * keeps it after they close: opening the file again costs no syscall here.
 * It is replaced only when no open uses it (after a copy-on-write), and
 * dropped when the kernel forgets the node.
 */
static void lru_remove(struct fs_server *S, struct fs_node *n)
{
	if (!n->in_lru)
		return;
	if (n->lru_prev)
		n->lru_prev->lru_next = n->lru_next;
	else
		S->lru_head = n->lru_next;
	if (n->lru_next)
		n->lru_next->lru_prev = n->lru_prev;
	else
		S->lru_tail = n->lru_prev;
	n->lru_prev = n->lru_next = NULL;
	n->in_lru = false;
	S->lru_n--;
}

void fs_backing_drop(struct fs_server *S, struct fs_node *n)
{
	lru_remove(S, n);
	if (n->bk_id <= 0)
		return;
	if (ioctl(S->dev_fd, MZ_FUSE_DEV_IOC_BACKING_CLOSE, &n->bk_id) < 0)
		mz_debug("backing close: %s", strerror(errno));
	close(n->bk_fd);
	n->bk_fd = -1;
	n->bk_id = 0;
	n->bk_obj = 0;
}

/* 1 if this open can pass through to obj, 0 if the node is backed by another
 * object right now (or passthrough is off), < 0 on error. */
static int backing_get(struct fs_server *S, struct fs_node *n, mz_oid obj, bool private,
		       mz_error_t *err)
{
	if (n->bk_id > 0 && n->bk_obj == obj) {
		lru_remove(S, n);
		n->bk_users++;
		return 1;
	}
	if (n->bk_id > 0) {
		if (n->bk_users > 0)
			return 0;
		fs_backing_drop(S, n);
	}
	/* Sealed objects are opened read-only, so no bug can write one. */
	cleanup_close int fd = mz_object_open(S->store, obj, private ? O_RDWR : O_RDONLY, err);
	if (fd < 0)
		return fd;
	/* Contract with `store dedup`: a private object a server may write is
	 * share-locked; dedup needs LOCK_EX to merge it. */
	if (private && flock(fd, LOCK_SH) < 0)
		return mz_error_sys(err, errno, "flock object %lld", (long long)obj);
	struct mz_fuse_backing_map map = {.fd = fd};
	int id = ioctl(S->dev_fd, MZ_FUSE_DEV_IOC_BACKING_OPEN, &map);
	if (id <= 0) {
		mz_warn("passthrough refused (%s): serving reads and writes myself",
			strerror(errno));
		S->passthrough = false;
		return 0;
	}
	n->bk_obj = obj;
	n->bk_fd = steal_fd(&fd);
	n->bk_id = id;
	n->bk_users = 1;
	return 1;
}

void fs_backing_put(struct fs_server *S, struct fs_node *n)
{
	if (n->bk_users == 0 || --n->bk_users > 0)
		return;
	n->lru_prev = NULL;
	n->lru_next = S->lru_head;
	if (S->lru_head)
		S->lru_head->lru_prev = n;
	else
		S->lru_tail = n;
	S->lru_head = n;
	n->in_lru = true;
	S->lru_n++;
	while (S->lru_n > FS_IDLE_BACKINGS)
		fs_backing_drop(S, S->lru_tail);
}

int fs_handle_fd(const struct fs_handle *h)
{
	return h->passthrough ? h->node->bk_fd : h->fd;
}

/* Open ino's object for the kernel; fills the open reply. */
static int open_object(struct fs_server *S, mz_ino ino, uint32_t flags,
		       struct mz_fuse_open_out *o, mz_error_t *err)
{
	struct mz_inode a; /* the mode and the object: no stat of the object */
	int rc = mz_view_getattr_row(S->view, ino, &a, err);
	if (rc < 0)
		return rc;
	if (!S_ISREG(a.mode))
		return S_ISDIR(a.mode) ? -EISDIR : -EINVAL;
	bool writable = (flags & O_ACCMODE) != O_RDONLY;
	bool trunc = (flags & O_TRUNC) != 0;
	mz_oid obj = a.object;
	bool private = obj && !a.object_sealed;
	if (writable || trunc || obj == 0) {
		if ((rc = mz_view_make_writable(S->view, ino, trunc ? 0 : -1, &obj, err)) < 0)
			return rc;
		private = true;
	}
	if (trunc) {
		cleanup_close int tfd = mz_object_open(S->store, obj, O_WRONLY, err);
		if (tfd < 0)
			return tfd;
		if (ftruncate(tfd, 0) < 0)
			return -errno;
		struct mz_inode n = {.size = 0};
		if ((rc = mz_view_setattr(S->view, ino, &n, MZ_SET_SIZE, err)) < 0)
			return rc;
	}
	struct fs_node *node = node_for_open(S, ino);
	int through = 0;
	if (S->passthrough && (through = backing_get(S, node, obj, private, err)) < 0)
		return through;
	cleanup_close int fd = -1;
	if (!through) {
		fd = mz_object_open(S->store, obj, writable ? O_RDWR : O_RDONLY, err);
		if (fd < 0)
			return fd;
	}
	struct fs_handle *h = xcalloc(1, sizeof(*h));
	h->node = node;
	node->nopen++;
	if (writable)
		node->nwriters++;
	h->fd = steal_fd(&fd);
	h->passthrough = through;
	h->writable = writable;
	uint64_t fh = S->next_fh++;
	imap_put(&S->handles, (int64_t)fh, h);
	memset(o, 0, sizeof(*o));
	o->fh = fh;
	if (through) {
		o->open_flags = MZ_FOPEN_PASSTHROUGH | FOPEN_NOFLUSH;
		o->backing_id = node->bk_id;
	} else if (S->passthrough) {
		/* Another object backs this inode's open files (it was copied
		 * on write while they stay open): serve this open ourselves. */
		o->open_flags = FOPEN_DIRECT_IO;
	} else {
		o->open_flags = FOPEN_KEEP_CACHE;
	}
	return 0;
}

int fs_op_open(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_open_in *in = r->arg;
	mz_error_t err = NULL;
	struct mz_fuse_open_out o;
	int rc = 0;
	/* Writes pass through to the object without us, and the kernel leaves
	 * killing set-id bits to us (HANDLE_KILLPRIV_V2): so a non-root opener
	 * that may write gets them cleared now, before its first write. */
	bool may_write = (in->flags & O_ACCMODE) != O_RDONLY;
	if ((in->open_flags & FUSE_OPEN_KILL_SUIDGID) ||
	    (may_write && fs_uid_in(S, r->h->uid) != 0))
		rc = fs_kill_suidgid(S, fs_ino(S, r->h->nodeid), &err);
	if (rc == 0)
		rc = open_object(S, fs_ino(S, r->h->nodeid), in->flags, &o, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return fs_reply(S, r, &o, sizeof(o));
}

static int create_common(struct fs_server *S, const struct fs_req *r, const char *name,
			 bool tmpfile)
{
	const struct fuse_create_in *in = r->arg;
	mz_ino dir = fs_ino(S, r->h->nodeid);
	mz_error_t err = NULL;
	struct mz_inode d, a, out;
	int rc = mz_view_getattr(S->view, dir, &d, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	memset(&a, 0, sizeof(a));
	a.mode = S_IFREG | (in->mode & 07777);
	a.uid = fs_uid_in(S, r->h->uid);
	a.gid = (d.mode & S_ISGID) ? d.gid : fs_gid_in(S, r->h->gid);
	a.atime_ns = a.mtime_ns = a.ctime_ns = now_ns();
	char tmpname[64];
	if (tmpfile) {
		snprintf(tmpname, sizeof(tmpname), ".mezzo-tmpfile-%llu",
			 (unsigned long long)r->h->unique);
		name = tmpname;
	}
	rc = mz_view_create(S->view, dir, name, &a, 0, NULL, &out, &err);
	mz_ino gone = 0;
	if (rc == 0 && tmpfile)
		rc = mz_view_unlink(S->view, dir, name, false, &gone, &err);
	struct mz_fuse_open_out o;
	if (rc == 0)
		rc = open_object(S, out.ino, in->flags & ~O_TRUNC, &o, &err);
	if (rc == 0)
		rc = fs_getattr(S, out.ino, &out, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	struct fuse_entry_out e;
	fs_fill_entry(S, &out, &e);
	struct fs_node *n = fs_node_ref(S, out.ino);
	if (gone)
		n->unlinked = true;
	struct iovec v[2] = {{&e, sizeof(e)}, {&o, sizeof(o)}};
	return fs_reply_iov(S, r, v, 2);
}

int fs_op_create(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_create_in *in = r->arg;
	if (r->arglen <= sizeof(*in) ||
	    memchr((const char *)r->arg + sizeof(*in), 0, r->arglen - sizeof(*in)) == NULL)
		return fs_reply_err(S, r, -EINVAL);
	return create_common(S, r, (const char *)r->arg + sizeof(*in), false);
}

int fs_op_tmpfile(struct fs_server *S, const struct fs_req *r)
{
	if (r->arglen < sizeof(struct fuse_create_in))
		return fs_reply_err(S, r, -EINVAL);
	return create_common(S, r, NULL, true);
}

int fs_op_read(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_read_in *in = r->arg;
	struct fs_handle *h = fs_handle_get(S, in->fh);
	if (h == NULL)
		return fs_reply_err(S, r, -EBADF);
	size_t size = in->size < S->bufsize ? in->size : S->bufsize;
	cleanup_free char *buf = xmalloc(size);
	ssize_t n = pread(fs_handle_fd(h), buf, size, in->offset);
	if (n < 0)
		return fs_reply_err(S, r, -errno);
	return fs_reply(S, r, buf, n);
}

int fs_op_write(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_write_in *in = r->arg;
	struct fs_handle *h = fs_handle_get(S, in->fh);
	if (h == NULL || !h->writable)
		return fs_reply_err(S, r, -EBADF);
	if (r->arglen < sizeof(*in) + in->size)
		return fs_reply_err(S, r, -EINVAL);
	if (in->write_flags & FUSE_WRITE_KILL_SUIDGID) {
		mz_error_t err = NULL;
		int rc = fs_kill_suidgid(S, h->node->ino, &err);
		if (rc < 0)
			return fs_fail(S, r, rc, &err);
	}
	ssize_t n = pwrite(fs_handle_fd(h), (const char *)(in + 1), in->size, in->offset);
	if (n < 0)
		return fs_reply_err(S, r, -errno);
	struct fuse_write_out o = {.size = n};
	return fs_reply(S, r, &o, sizeof(o));
}

int fs_op_release(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_release_in *in = r->arg;
	struct fs_handle *h = imap_del(&S->handles, (int64_t)in->fh);
	if (h) {
		struct fs_node *n = h->node;
		if (h->passthrough)
			fs_backing_put(S, n);
		else
			close(h->fd);
		n->nopen--;
		if (h->writable)
			n->nwriters--;
		free(h);
		fs_node_maybe_reap(S, n);
	}
	return fs_reply_err(S, r, 0);
}

int fs_op_flush(struct fs_server *S, const struct fs_req *r)
{
	return fs_reply_err(S, r, 0);
}

int fs_op_fsync(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_fsync_in *in = r->arg;
	struct fs_handle *h = fs_handle_get(S, in->fh);
	if (h) {
		int fd = fs_handle_fd(h);
		int rc = (in->fsync_flags & 1) ? fdatasync(fd) : fsync(fd);
		if (rc < 0)
			return fs_reply_err(S, r, -errno);
	}
	/* The file's metadata (its name, its size) lives in the catalog. */
	mz_error_t err = NULL;
	int rc = fs_sync(S, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return fs_reply_err(S, r, 0);
}

int fs_op_fallocate(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_fallocate_in *in = r->arg;
	struct fs_handle *h = fs_handle_get(S, in->fh);
	if (h == NULL || !h->writable)
		return fs_reply_err(S, r, -EBADF);
	if (fallocate(fs_handle_fd(h), in->mode, in->offset, in->length) < 0)
		return fs_reply_err(S, r, -errno);
	return fs_reply_err(S, r, 0);
}

int fs_op_lseek(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_lseek_in *in = r->arg;
	struct fs_handle *h = fs_handle_get(S, in->fh);
	if (h == NULL)
		return fs_reply_err(S, r, -EBADF);
	off_t off = lseek(fs_handle_fd(h), in->offset, in->whence);
	if (off < 0)
		return fs_reply_err(S, r, -errno);
	struct fuse_lseek_out o = {.offset = off};
	return fs_reply(S, r, &o, sizeof(o));
}

int fs_op_statfs(struct fs_server *S, const struct fs_req *r)
{
	struct statvfs sv;
	if (fstatvfs(mz_store_objects_dirfd(S->store), &sv) < 0)
		return fs_reply_err(S, r, -errno);
	struct fuse_statfs_out o = {0};
	o.st.blocks = sv.f_blocks;
	o.st.bfree = sv.f_bfree;
	o.st.files = sv.f_files;
	fs_space_statfs(&sv, &o.st.bavail, &o.st.ffree);
	o.st.bsize = sv.f_bsize;
	o.st.frsize = sv.f_frsize;
	o.st.namelen = 255;
	return fs_reply(S, r, &o, sizeof(o));
}

int fs_op_syncfs(struct fs_server *S, const struct fs_req *r)
{
	if (syncfs(mz_store_objects_dirfd(S->store)) < 0)
		return fs_reply_err(S, r, -errno);
	mz_error_t err = NULL;
	int rc = fs_sync(S, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return fs_reply_err(S, r, 0);
}
