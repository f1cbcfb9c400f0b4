/*
 * server.c — mounting a tree and the FUSE request loop.
 *
 * One process serves one tree: a crash of one server never touches another
 * tree.  Requests are processed one at a time, under S->lock: with
 * passthrough, reads, writes and mmap never reach the server, and what does
 * reach it (metadata) goes through one SQLite connection anyway.  They are
 * read from /dev/fuse by the loop below, or, with FUSE over io_uring
 * (uring.c), by one thread per CPU, so that a request is answered on the CPU
 * that made it.  Why raw /dev/fuse and not libfuse: Debian 12's libfuse
 * (3.14) predates passthrough (protocol 7.40) and io_uring (7.42).
 */
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "fsInt.h"

/* ---- ids ------------------------------------------------------------------ */

static uint32_t id_out(uint32_t id, uint32_t base, uint32_t count)
{
	if (base == 0 && count == 0)
		return id;
	return id < count ? id + base : 65534;
}

static uint32_t id_in(uint32_t host, uint32_t base, uint32_t count)
{
	if (base == 0 && count == 0)
		return host;
	return host >= base && host - base < count ? host - base : 65534;
}

uint32_t fs_uid_in(struct fs_server *S, uint32_t host_uid)
{
	return id_in(host_uid, S->opts.uid_base, S->opts.uid_count);
}

uint32_t fs_gid_in(struct fs_server *S, uint32_t host_gid)
{
	return id_in(host_gid, S->opts.gid_base, S->opts.gid_count);
}

mz_ino fs_ino(struct fs_server *S, uint64_t nodeid)
{
	return nodeid == FUSE_ROOT_ID ? mz_view_root(S->view) : (mz_ino)nodeid;
}

uint64_t fs_nodeid(struct fs_server *S, mz_ino ino)
{
	return ino == mz_view_root(S->view) ? FUSE_ROOT_ID : (uint64_t)ino;
}

void fs_fill_attr(struct fs_server *S, const struct mz_inode *a, struct fuse_attr *o)
{
	memset(o, 0, sizeof(*o));
	o->ino = a->ino;
	o->size = S_ISDIR(a->mode) ? 4096 : a->size;
	o->blocks = a->blocks;
	o->atime = a->atime_ns / 1000000000;
	o->atimensec = a->atime_ns % 1000000000;
	o->mtime = a->mtime_ns / 1000000000;
	o->mtimensec = a->mtime_ns % 1000000000;
	o->ctime = a->ctime_ns / 1000000000;
	o->ctimensec = a->ctime_ns % 1000000000;
	o->mode = a->mode;
	o->nlink = a->nlink;
	o->uid = id_out(a->uid, S->opts.uid_base, S->opts.uid_count);
	o->gid = id_out(a->gid, S->opts.gid_base, S->opts.gid_count);
	/* the kernel decodes rdev with new_decode_dev() */
	unsigned ma = major(a->rdev), mi = minor(a->rdev);
	o->rdev = (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
	o->blksize = 4096;
}

void fs_fill_entry(struct fs_server *S, const struct mz_inode *a, struct fuse_entry_out *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = fs_nodeid(S, a->ino);
	e->entry_valid = FS_TTL_SEC;
	e->attr_valid = FS_TTL_SEC;
	fs_fill_attr(S, a, &e->attr);
}

/* ---- nodes ------------------------------------------------------------------ */

struct fs_node *fs_node_get(struct fs_server *S, mz_ino ino)
{
	return imap_get(&S->nodes, ino);
}

int fs_getattr(struct fs_server *S, mz_ino ino, struct mz_inode *a, mz_error_t *err)
{
	/* a file being written is open (or was just now: its backing stays
	 * open in the LRU): tar's SETATTRs, each answered with attributes */
	struct fs_node *n = fs_node_get(S, ino);
	if (n && n->bk_id > 0)
		return mz_view_getattr_fd(S->view, ino, a, n->bk_obj, n->bk_fd, err);
	return mz_view_getattr(S->view, ino, a, err);
}

struct fs_node *fs_node_ref(struct fs_server *S, mz_ino ino)
{
	struct fs_node *n = imap_get(&S->nodes, ino);
	if (n == NULL) {
		n = xcalloc(1, sizeof(*n));
		n->ino = ino;
		imap_put(&S->nodes, ino, n);
	}
	n->nlookup++;
	return n;
}

void fs_node_maybe_reap(struct fs_server *S, struct fs_node *n)
{
	if (n->nlookup > 0 || n->nopen > 0)
		return;
	imap_del(&S->nodes, n->ino);
	fs_backing_drop(S, n);
	if (n->unlinked) {
		mz_error_t err cleanup_error = NULL;
		if (mz_view_reap(S->view, n->ino, &err) < 0)
			mz_warn("reap inode %lld: %s", (long long)n->ino, err ? err->msg : "");
	}
	free(n);
}

void fs_node_unref(struct fs_server *S, struct fs_node *n, uint64_t count)
{
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	fs_node_maybe_reap(S, n);
}

void fs_inode_gone(struct fs_server *S, mz_ino ino)
{
	if (ino == 0)
		return;
	struct fs_node *n = fs_node_get(S, ino);
	if (n) {
		n->unlinked = true;
		return;
	}
	mz_error_t err cleanup_error = NULL;
	mz_view_reap(S->view, ino, &err);
}

/* ---- replies ---------------------------------------------------------------- */

int fs_reply_iov(struct fs_server *S, const struct fs_req *r, struct iovec *iov, int n)
{
	if (r->ent)
		return fs_uring_reply(S, r, 0, iov, n);
	struct fuse_out_header oh = {.unique = r->h->unique};
	struct iovec v[8];
	v[0].iov_base = &oh;
	v[0].iov_len = sizeof(oh);
	size_t len = sizeof(oh);
	for (int i = 0; i < n && i < 7; i++) {
		v[i + 1] = iov[i];
		len += iov[i].iov_len;
	}
	oh.len = len;
	if (writev(S->dev_fd, v, n + 1) < 0 && errno != ENOENT)
		mz_debug("reply to %llu: %s", (unsigned long long)r->h->unique, strerror(errno));
	return 0;
}

int fs_reply(struct fs_server *S, const struct fs_req *r, const void *data, size_t len)
{
	struct iovec v = {.iov_base = (void *)data, .iov_len = len};
	return fs_reply_iov(S, r, &v, len ? 1 : 0);
}

int fs_reply_err(struct fs_server *S, const struct fs_req *r, int neg_errno)
{
	if (r->ent)
		return fs_uring_reply(S, r, neg_errno, NULL, 0);
	struct fuse_out_header oh = {
		.unique = r->h->unique, .error = neg_errno, .len = sizeof(oh)};
	if (write(S->dev_fd, &oh, sizeof(oh)) < 0 && errno != ENOENT)
		mz_debug("error reply: %s", strerror(errno));
	return 0;
}

int fs_fail(struct fs_server *S, const struct fs_req *r, int rc, mz_error_t *err)
{
	/* Plain errno results (ENOENT, EEXIST, ...) are answers, not failures. */
	if (err && *err)
		mz_warn("op %u: %s", r->h->opcode, (*err)->msg);
	mz_error_release(err);
	return fs_reply_err(S, r, rc < 0 ? rc : -EIO);
}

/* ---- INIT ------------------------------------------------------------------ */

static int fs_init(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_init_in *in = r->arg;
	struct mz_fuse_init_out o = {0};
	if (in->major != 7) {
		mz_err("kernel FUSE protocol %u.%u unsupported", in->major, in->minor);
		return fs_reply_err(S, r, -EPROTO);
	}
	uint64_t kflags = in->flags;
	if (in->flags & FUSE_INIT_EXT)
		kflags |= (uint64_t)in->flags2 << 32;
	uint64_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES |
			FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ATOMIC_O_TRUNC |
			FUSE_CACHE_SYMLINKS | FUSE_PARALLEL_DIROPS | FUSE_INIT_EXT |
			FUSE_EXPORT_SUPPORT | MZ_FUSE_PASSTHROUGH | MZ_FUSE_DIRECT_IO_ALLOW_MMAP |
			/* We clear set-id bits and capabilities ourselves; in return
			 * the kernel marks the super block SB_NOSEC and stops asking
			 * for security.capability at every write (one round trip
			 * per write(2) otherwise, even with passthrough). */
			FUSE_HANDLE_KILLPRIV_V2;
	uint64_t flags = kflags & want;
	/* The rings must exist before we accept io_uring: once negotiated, the
	 * kernel holds every request until each CPU's queue has an entry. */
	bool uring = false;
	if (S->uring_want && !(kflags & MZ_FUSE_OVER_IO_URING))
		mz_warn("io_uring: not offered by the kernel; serving through /dev/fuse");
	else if (S->uring_want && !(uring = fs_uring_prepare(S)))
		mz_warn("io_uring: cannot set up the rings; serving through /dev/fuse");
	if (uring)
		flags |= MZ_FUSE_OVER_IO_URING;
	S->proto_minor = in->minor < 45 ? in->minor : 45;
	o.major = 7;
	o.minor = S->proto_minor;
	o.max_readahead = in->max_readahead;
	o.flags = (uint32_t)flags | FUSE_INIT_EXT;
	o.flags2 = flags >> 32;
	o.max_background = 64;
	o.congestion_threshold = 48;
	o.max_write = FS_MAX_WRITE;
	o.time_gran = 1;
	o.max_pages = FS_MAX_WRITE / 4096;
	/* 1: the mount may sit under an overlay; backing files are plain ext4. */
	o.max_stack_depth = (flags & MZ_FUSE_PASSTHROUGH) ? 1 : 0;
	S->passthrough = (flags & MZ_FUSE_PASSTHROUGH) != 0;
	size_t len = in->minor >= 23 ? sizeof(o) : FUSE_COMPAT_22_INIT_OUT_SIZE;
	fs_reply(S, r, &o, len);
	/* The kernel took the reply in write(): the connection is initialised
	 * and the rings may register now (before, REGISTER fails with EAGAIN). */
	if (S->uring)
		fs_uring_start(S, uring);
	return 0;
}

/* ---- dispatch ---------------------------------------------------------------- */

static fs_op_fn op_table(uint32_t op)
{
	switch (op) {
	case FUSE_LOOKUP: return fs_op_lookup;
	case FUSE_GETATTR: return fs_op_getattr;
	case FUSE_SETATTR: return fs_op_setattr;
	case FUSE_READLINK: return fs_op_readlink;
	case FUSE_SYMLINK: return fs_op_symlink;
	case FUSE_MKNOD: return fs_op_mknod;
	case FUSE_MKDIR: return fs_op_mkdir;
	case FUSE_UNLINK: return fs_op_unlink;
	case FUSE_RMDIR: return fs_op_rmdir;
	case FUSE_RENAME: return fs_op_rename;
	case FUSE_RENAME2: return fs_op_rename2;
	case FUSE_LINK: return fs_op_link;
	case FUSE_OPEN: return fs_op_open;
	case FUSE_CREATE: return fs_op_create;
	case FUSE_TMPFILE: return fs_op_tmpfile;
	case FUSE_READ: return fs_op_read;
	case FUSE_WRITE: return fs_op_write;
	case FUSE_RELEASE: return fs_op_release;
	case FUSE_FLUSH: return fs_op_flush;
	case FUSE_FSYNC: return fs_op_fsync;
	case FUSE_FALLOCATE: return fs_op_fallocate;
	case FUSE_LSEEK: return fs_op_lseek;
	case FUSE_STATFS: return fs_op_statfs;
	case FUSE_SYNCFS: return fs_op_syncfs;
	case FUSE_OPENDIR: return fs_op_opendir;
	case FUSE_READDIR: return fs_op_readdir;
	case FUSE_READDIRPLUS: return fs_op_readdirplus;
	case FUSE_RELEASEDIR: return fs_op_releasedir;
	case FUSE_FSYNCDIR: return fs_op_fsyncdir;
	case FUSE_GETXATTR: return fs_op_getxattr;
	case FUSE_LISTXATTR: return fs_op_listxattr;
	case FUSE_SETXATTR: return fs_op_setxattr;
	case FUSE_REMOVEXATTR: return fs_op_removexattr;
	default: return NULL;
	}
}

void fs_dispatch(struct fs_server *S, const struct fs_req *r)
{
	uint32_t op = r->h->opcode;
	S->op_count[op < 64 ? op : 63]++;
	if (op == FUSE_FORGET) {
		fs_op_forget(S, r); /* no reply */
		return;
	}
	if (op == FUSE_BATCH_FORGET) {
		fs_op_batch_forget(S, r);
		return;
	}
	if (op == FUSE_INTERRUPT)
		return; /* every op completes promptly; nothing to interrupt */
	if (op == FUSE_INIT) {
		fs_init(S, r);
		return;
	}
	if (op == FUSE_DESTROY) {
		__atomic_store_n(&S->exiting, true, __ATOMIC_RELAXED);
		fs_reply(S, r, NULL, 0);
		return;
	}
	fs_op_fn fn = op_table(op);
	if (fn == NULL) {
		fs_reply_err(S, r, -ENOSYS);
		return;
	}
	if (fs_space_refuses(S, op)) {
		fs_reply_err(S, r, -ENOSPC);
		return;
	}
	fn(S, r);
	fs_space_after_request(S);
}

/* ---- mounting and the loop ---------------------------------------------------- */

char *mz_fs_source(const char *store_root, mz_lid layer)
{
	return xasprintf("mezzo:%lld@%s", (long long)layer, store_root);
}

/*
 * The tree's mount is made detached (fsopen, fsconfig, fsmount) and
 * attached to its mount point apart (move_mount): a supervisor that makes
 * its domain as it starts it (`run`) makes the mount on the thread that made
 * the domain's record, while its other thread waits for the kernel to clone
 * the domain's pid 1, and only attaches it once that thread is in the mount
 * namespace the domain's is copied from (domain/supervisor.c).  The kernel
 * sends its INIT request as the mount is made; the server answers it once
 * it runs, and any access waits until then.
 */
static int fs_config(int fs, const char *key, const char *value, mz_error_t *err)
{
	unsigned cmd = value ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG;
	if (fsconfig(fs, cmd, key, value, 0) < 0)
		return mz_error_sys(err, errno, "cannot mount the tree: option %s", key);
	return 0;
}

static int fs_mount_make(struct fs_server *S, mz_error_t *err)
{
	struct mz_inode root;
	int r = mz_view_getattr(S->view, mz_view_root(S->view), &root, err);
	if (r < 0)
		return r == -ENOENT ? mz_error(err, EIO, "tree has no root inode") : r;
	S->dev_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (S->dev_fd < 0)
		return mz_error_sys(err, errno, "cannot open /dev/fuse (modprobe fuse?)");
	cleanup_close int fs = fsopen("fuse", FSOPEN_CLOEXEC);
	if (fs < 0)
		return mz_error_sys(err, errno, "cannot mount the tree: fsopen");
	char fd[16], mode[16];
	snprintf(fd, sizeof(fd), "%d", S->dev_fd);
	snprintf(mode, sizeof(mode), "%o", root.mode & S_IFMT);
	cleanup_free char *src = mz_fs_source(S->root_path, S->layer);
	if ((r = fs_config(fs, "subtype", "mezzo", err)) < 0 ||
	    (r = fs_config(fs, "source", src, err)) < 0 ||
	    (r = fs_config(fs, "fd", fd, err)) < 0 ||
	    (r = fs_config(fs, "rootmode", mode, err)) < 0 ||
	    (r = fs_config(fs, "user_id", "0", err)) < 0 ||
	    (r = fs_config(fs, "group_id", "0", err)) < 0 ||
	    (r = fs_config(fs, "default_permissions", NULL, err)) < 0 ||
	    (r = fs_config(fs, "allow_other", NULL, err)) < 0)
		return r;
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return mz_error_sys(err, errno, "cannot mount the tree");
	unsigned attr = MOUNT_ATTR_NOATIME;
	if (!S->opts.allow_suid)
		attr |= MOUNT_ATTR_NOSUID;
	if (!S->opts.allow_dev)
		attr |= MOUNT_ATTR_NODEV;
	S->mnt_fd = fsmount(fs, FSMOUNT_CLOEXEC, attr);
	if (S->mnt_fd < 0)
		return mz_error_sys(err, errno, "cannot mount the tree: fsmount");
	return 0;
}

/* A directory to mount on (S->mountpoint: its real path) */
static int fs_mountpoint(struct fs_server *S, const char *mountpoint, mz_error_t *err)
{
	free(S->mountpoint);
	S->mountpoint = realpath(mountpoint, NULL);
	if (S->mountpoint == NULL)
		return mz_error_sys(err, errno, "mount point %s", mountpoint);
	struct stat st;
	if (stat(S->mountpoint, &st) < 0)
		return mz_error_sys(err, errno, "mount point %s", S->mountpoint);
	if (!S_ISDIR(st.st_mode))
		return mz_error(err, ENOTDIR, "mount point %s is not a directory", S->mountpoint);
	return 0;
}

/* The mount made, onto S->mountpoint (checked already). */
static int fs_move(struct fs_server *S, mz_error_t *err)
{
	if (move_mount(S->mnt_fd, "", AT_FDCWD, S->mountpoint, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return mz_error_sys(err, errno, "cannot mount on %s", S->mountpoint);
	close(S->mnt_fd);
	S->mnt_fd = -1;
	return 0;
}

int mz_fs_attach(struct fs_server *S, const char *mountpoint, mz_error_t *err)
{
	if (S->mnt_fd < 0)
		return mz_error(err, EALREADY, "internal: the tree's mount is attached already");
	int r = fs_mountpoint(S, mountpoint, err);
	return r < 0 ? r : fs_move(S, err);
}

static void ready(struct fs_server *S, const char *msg)
{
	if (S->opts.ready_fd < 0)
		return;
	if (write_all(S->opts.ready_fd, msg, strlen(msg)) < 0) {
		/* the parent is gone: nobody to tell */
	}
	close(S->opts.ready_fd);
	S->opts.ready_fd = -1;
}

/* Group commit: the catalog transaction of a burst of requests is committed
 * once the tree has been idle this long, or once it is this old. */
#define FS_BATCH_IDLE_MS 2
#define FS_BATCH_MAX_NS (20 * 1000 * 1000)

void fs_flush(struct fs_server *S)
{
	__atomic_store_n(&S->flush_due_ns, 0, __ATOMIC_RELAXED);
	mz_error_t err cleanup_error = NULL;
	if (mz_store_flush(S->store, &err) < 0) {
		mz_err("catalog commit failed, the last changes are lost: %s",
		       err ? err->msg : "");
		fs_space_commit_failed(S);
	}
}

int fs_sync(struct fs_server *S, mz_error_t *err)
{
	int rc = mz_store_sync(S->store, err);
	if (rc < 0) /* the batch may be gone, as in fs_flush */
		fs_space_commit_failed(S);
	return rc;
}

bool fs_after_request(struct fs_server *S, int waiter)
{
	int64_t age = mz_store_batch_age_ns(S->store);
	if (age < 0) {
		__atomic_store_n(&S->flush_due_ns, 0, __ATOMIC_RELAXED);
		return false;
	}
	if (age >= FS_BATCH_MAX_NS)
		return true;
	int64_t now = mono_ns();
	int64_t due = now + FS_BATCH_IDLE_MS * 1000000LL;
	if (now - age + FS_BATCH_MAX_NS < due)
		due = now - age + FS_BATCH_MAX_NS;
	/* The waiter that saw the last request times out for the flush: the
	 * others sleep until a request comes. */
	__atomic_store_n(&S->flush_owner, waiter, __ATOMIC_RELAXED);
	__atomic_store_n(&S->flush_due_ns, due, __ATOMIC_RELAXED);
	return false;
}

int64_t fs_wait_ns(struct fs_server *S, int waiter)
{
	int64_t due = __atomic_load_n(&S->flush_due_ns, __ATOMIC_RELAXED);
	if (due == 0 || __atomic_load_n(&S->flush_owner, __ATOMIC_RELAXED) != waiter)
		return -1;
	int64_t left = due - mono_ns();
	return left > 0 ? left : 0;
}

void fs_idle(struct fs_server *S)
{
	pthread_mutex_lock(&S->lock);
	int64_t due = __atomic_load_n(&S->flush_due_ns, __ATOMIC_RELAXED);
	if (due != 0 && mono_ns() >= due)
		fs_flush(S);
	pthread_mutex_unlock(&S->lock);
}

static void fs_serve_one(struct fs_server *S, ssize_t len)
{
	if ((size_t)len < sizeof(struct fuse_in_header))
		return;
	struct fs_req r = {.h = (const struct fuse_in_header *)S->buf};
	if (r.h->len != (size_t)len)
		return;
	r.arg = S->buf + sizeof(*r.h);
	r.arglen = len - sizeof(*r.h);
	pthread_mutex_lock(&S->lock);
	fs_dispatch(S, &r);
	if (fs_after_request(S, FS_WAITER_DEV))
		fs_flush(S);
	pthread_mutex_unlock(&S->lock);
}

/* A tree idle this long gives back its caches (catalog statements and pages,
 * free heap): a thousand idle domains are a thousand servers. */
#define SHRINK_IDLE_NS (2000 * 1000000LL)
/* Free heap a busy server keeps rather than returning it to the kernel at
 * every free (mz_fs_run says why). */
#define FS_TRIM_THRESHOLD (4 << 20)

static void fs_shrink(struct fs_server *S)
{
	pthread_mutex_lock(&S->lock);
	if (__atomic_load_n(&S->flush_due_ns, __ATOMIC_RELAXED) == 0) {
		mz_store_shrink(S->store);
		malloc_trim(0);
		S->shrink_due_ns = 0;
	}
	pthread_mutex_unlock(&S->lock);
}

/* A request came in while we were still spinning after the previous one:
 * the tree is busy, and idle CPUs poll from now on (the one its sender
 * waits on included, before we reply) until FS_CPULAT_NS after the last
 * request.  A request that finds us asleep alone does not ask: a tree
 * used now and then, by a thousand domains, would keep the machine's idle
 * CPUs spinning for a millisecond at every one. */
static void fs_busy(struct fs_server *S)
{
	mz_cpulat_hold(&S->cpulat);
	S->cpulat_until_ns = mono_ns() + FS_CPULAT_NS;
}

/* A request after a sleep: it renews a request held still, asks nothing. */
static void fs_woken(struct fs_server *S)
{
	if (S->cpulat.held)
		S->cpulat_until_ns = mono_ns() + FS_CPULAT_NS;
}

/* poll's timeout in ms: the earliest of the catalog batch's flush, the end
 * of the CPU latency request and the idle shrink (-1: none). */
static int fs_loop_timeout(struct fs_server *S)
{
	int64_t now = mono_ns();
	int64_t ns = fs_wait_ns(S, FS_WAITER_DEV);
	if (S->cpulat.held) {
		int64_t left = S->cpulat_until_ns - now;
		if (left < 0)
			left = 0;
		if (ns < 0 || left < ns)
			ns = left;
	}
	if (ns < 0 && S->shrink_due_ns) {
		int64_t left = S->shrink_due_ns - now;
		ns = left > 0 ? left : 0;
	}
	return ns < 0 ? -1 : (int)((ns + 999999) / 1000000);
}

static int fs_loop(struct fs_server *S, mz_error_t *err)
{
	struct pollfd p[2] = {{.fd = S->dev_fd, .events = POLLIN},
			      {.fd = S->ctl_fd, .events = POLLIN}};
	int64_t spin_until = 0;
	while (!__atomic_load_n(&S->exiting, __ATOMIC_RELAXED)) {
		if (spin_until && mono_ns() < spin_until) {
			ssize_t len = read(S->dev_fd, S->buf, S->bufsize);
			if (len < 0 && errno == EAGAIN) {
				sched_yield();
				continue;
			}
			if (len < 0 && errno == ENODEV)
				return 0;
			if (len > 0) {
				fs_busy(S);
				fs_serve_one(S, len);
				spin_until = mono_ns() + FS_SPIN_NS;
				S->shrink_due_ns = spin_until + SHRINK_IDLE_NS;
			}
			continue;
		}
		spin_until = 0;
		int n = poll(p, S->ctl_fd >= 0 ? 2 : 1, fs_loop_timeout(S));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return mz_error_sys(err, errno, "poll");
		}
		if (n == 0) {
			if (S->cpulat.held && mono_ns() >= S->cpulat_until_ns)
				mz_cpulat_release(&S->cpulat);
			fs_idle(S);
			if (S->shrink_due_ns && mono_ns() >= S->shrink_due_ns)
				fs_shrink(S);
			continue;
		}
		if (S->ctl_fd >= 0 && (p[1].revents & POLLIN))
			fs_control_handle(S);
		if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
			continue;
		ssize_t len = read(S->dev_fd, S->buf, S->bufsize);
		if (len < 0) {
			if (errno == EINTR || errno == ENOENT || errno == EAGAIN)
				continue;
			if (errno == ENODEV)
				return 0; /* unmounted */
			return mz_error_sys(err, errno, "read /dev/fuse");
		}
		fs_woken(S);
		fs_serve_one(S, len);
		spin_until = mono_ns() + FS_SPIN_NS;
		S->shrink_due_ns = spin_until + SHRINK_IDLE_NS;
	}
	return 0;
}

static void free_node(int64_t key UNUSED, void *val, void *arg)
{
	struct fs_node *n = val;
	if (n->bk_id > 0)
		close(n->bk_fd);
	free(n);
}

static void free_handle(int64_t key UNUSED, void *val, void *arg UNUSED)
{
	struct fs_handle *h = val;
	if (h->fd >= 0)
		close(h->fd);
	mz_dirents_free(h->ents, h->nents);
	free(h);
}

/* Programs in a tree may hold many files open, each an fd here. */
int mz_fs_start(const char *store_root, mz_lid layer, const char *mountpoint,
		const struct mz_fs_opts *o, struct fs_server **out, mz_error_t *err)
{
	struct fs_server *S = xcalloc(1, sizeof(*S));
	S->dev_fd = S->ctl_fd = S->mnt_fd = -1;
	S->cpulat = (struct mz_cpulat)MZ_CPULAT_INIT;
	pthread_mutex_init(&S->lock, NULL);
	S->flush_owner = FS_WAITER_DEV;
	S->layer = layer;
	S->next_fh = 1;
	S->opts = *o;
	signal(SIGPIPE, SIG_IGN);
	imap_init(&S->nodes);
	imap_init(&S->handles);
	S->bufsize = FS_MAX_WRITE + 64 * 1024;
	S->buf = xmalloc(S->bufsize);
	/* a bad mount point, before the tree is claimed or anything made */
	int r = mountpoint ? fs_mountpoint(S, mountpoint, err) : 0;
	if (r == 0 && o->store) {
		S->store = o->store;
		S->store_lent = true;
	} else if (r == 0) {
		r = mz_store_open(store_root, &S->store, err);
	}
	if (r == 0) {
		S->root_path = xstrdup(mz_store_root(S->store));
		r = mz_view_open(S->store, layer, &S->view, err);
	}
	if (r == 0 && !mz_view_writable(S->view))
		r = mz_error(err, EINVAL, "only a tree can be served; make one from the version");
	if (r == 0)
		r = mz_layer_claim(S->store, layer, getpid(), err); /* one server per tree */
	S->claimed = r == 0;
	/* Inodes unlinked while open when a previous server died. */
	if (r == 0 && !o->fresh)
		r = mz_view_reap_all(S->view, err);
	if (r == 0 && !o->control_later)
		r = fs_control_open(S, err);
	/* Decided before mount(): the kernel offers io_uring in INIT only if
	 * enable_uring is Y by then. */
	if (r == 0)
		S->uring_want = fs_uring_wanted(S);
	if (r == 0)
		r = fs_mount_make(S, err);
	if (r == 0 && mountpoint) /* (its mount point checked above) */
		r = fs_move(S, err);
	if (r < 0) {
		cleanup_free char *msg = xasprintf("error: %s\n", (err && *err) ? (*err)->msg : "");
		ready(S, msg);
		mz_fs_stop(S);
		return r;
	}
	ready(S, "ok\n");
	*out = S;
	return 0;
}

int mz_fs_run(struct fs_server *S, mz_error_t *err)
{
	/* control_later: without it, snapshots of the tree cannot reach us;
	 * its files are served as well */
	mz_error_t ec cleanup_error = NULL;
	if (S->ctl_fd < 0 && S->opts.control_later && fs_control_open(S, &ec) < 0)
		mz_warn("%s", ec->msg);
	mz_store_set_batch(S->store, true);
	mz_store_set_pool(S->store, true);
	/* Each request is a savepoint in the open batch, and SQLite journals
	 * its pages in 64 KiB chunks it frees at the savepoint's release: at
	 * glibc's default trim threshold (128 KiB) that free shrank the heap
	 * with brk and the next request grew it again, faulting in and
	 * zeroing fresh pages every time (brk, trim and their page faults:
	 * ~10 % of the request thread in an untar).  Free heap is kept while
	 * busy; fs_shrink gives it all back after 2 s idle. */
	mallopt(M_TRIM_THRESHOLD, FS_TRIM_THRESHOLD);
	int r = fs_loop(S, err);
	/* Unmounted (or failed): the ring threads are done or about to be. */
	fs_uring_stop(S);
	mz_store_set_pool(S->store, false);
	mz_store_set_batch(S->store, false);
	return r;
}

struct mz_store *mz_fs_store(struct fs_server *S)
{
	return S->store;
}

struct mz_store *mz_fs_catalog_enter(struct fs_server *S)
{
	pthread_mutex_lock(&S->lock);
	return S->store;
}

void mz_fs_catalog_leave(struct fs_server *S)
{
	fs_flush(S);
	pthread_mutex_unlock(&S->lock);
}

int mz_fs_release(struct fs_server *S, mz_error_t *err)
{
	if (!S->claimed || S->opts.drop_on_exit)
		return 0;
	int r = mz_view_reap_all(S->view, err);
	if (r == 0)
		r = mz_layer_set_owner(S->store, S->layer, 0, err);
	if (r == 0)
		S->claimed = false;
	return r;
}

void mz_fs_disown(struct fs_server *S)
{
	if (S)
		S->claimed = false;
}

void mz_fs_stop(struct fs_server *S)
{
	if (S == NULL)
		return;
	fs_uring_stop(S);
	fs_control_close(S);
	mz_cpulat_close(&S->cpulat);
	for (int i = 0; i < 64; i++)
		if (S->op_count[i])
			mz_debug("opcode %d: %llu requests", i, (unsigned long long)S->op_count[i]);
	imap_foreach(&S->handles, free_handle, NULL);
	imap_foreach(&S->nodes, free_node, NULL);
	imap_free(&S->handles);
	imap_free(&S->nodes);
	if (S->mnt_fd >= 0) /* made, never attached: gone with the fd */
		close(S->mnt_fd);
	if (S->dev_fd >= 0)
		close(S->dev_fd);
	if (S->view && S->opts.drop_on_exit) {
		mz_error_t e2 cleanup_error = NULL;
		if (mz_layer_remove(S->store, S->layer, true, &e2) < 0)
			mz_warn("dropping anonymous tree: %s", e2 ? e2->msg : "");
	} else if (S->view) {
		/* only a tree we claimed: a server refused (EBUSY) must not reap
		 * what the one serving it keeps unlinked while open */
		mz_error_t e2 cleanup_error = NULL;
		if (mz_fs_release(S, &e2) < 0)
			mz_warn("releasing the tree: %s", e2 ? e2->msg : "");
	}
	mz_view_close(S->view);
	if (!S->store_lent)
		mz_store_close(S->store);
	free(S->buf);
	free(S->root_path);
	free(S->mountpoint);
	pthread_mutex_destroy(&S->lock);
	free(S);
}

int mz_fs_serve(const char *store_root, mz_lid layer, const char *mountpoint,
		const struct mz_fs_opts *o, mz_error_t *err)
{
	struct fs_server *S;
	raise_nofile(); /* the process is the server's: its limit may go up */
	int r = mz_fs_start(store_root, layer, mountpoint, o, &S, err);
	if (r < 0)
		return r;
	r = mz_fs_run(S, err);
	mz_fs_stop(S);
	return r;
}
