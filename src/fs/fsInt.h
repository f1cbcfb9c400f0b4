/*
 * fsInt.h — the FUSE server's internals, shared by its op files.
 */
#ifndef MZ_FS_INT_H
#define MZ_FS_INT_H

#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../lib/cpulat.h"
#include "../lib/imap.h"
#include "fs.h"
#include "proto.h"

/* The kernel remembers entries and attributes this long: mezzo is the only
 * writer of the tree and invalidates nothing behind the kernel's back. */
#define FS_TTL_SEC 86400

/* Largest WRITE the kernel sends (and READ it asks for): 1 MiB. */
#define FS_MAX_WRITE (1u << 20)

/* A node the kernel holds a reference to (nodeid == store ino, root is 1). */
struct fs_node {
	mz_ino ino;
	uint64_t nlookup;
	uint32_t nopen;     /* open file handles */
	uint32_t nwriters;  /* of those, open for writing */
	bool unlinked;      /* last link gone: reap when unreferenced */
	/* The kernel allows one passthrough backing file per inode at a time:
	 * every passthrough open of this node shares this one. */
	mz_oid bk_obj;
	int bk_fd;
	int bk_id;
	uint32_t bk_users;
	/* idle backings (no open uses them) in least-recently-used order */
	struct fs_node *lru_prev, *lru_next;
	bool in_lru;
};

/* Idle backings kept open: enough for a program's working set of files,
 * few enough that a tree of 100 000 files does not hold 100 000 fds. */
#define FS_IDLE_BACKINGS 2048

/* An open file or directory. */
struct fs_handle {
	struct fs_node *node;
	int fd;             /* object file when not passthrough, else -1 */
	bool passthrough;   /* uses node->bk_id; else reads/writes come to us */
	bool writable;
	/* directories: the listing taken at opendir, so readdir neither loses
	 * nor repeats entries while the directory changes */
	struct mz_dirent *ents;
	size_t nents;
};

struct fs_ring_ent;

struct fs_req {
	const struct fuse_in_header *h;
	const void *arg;   /* request body after the header */
	size_t arglen;
	/* Where the reply goes: NULL, written to /dev/fuse; else into this
	 * io_uring entry's buffers, committed after the handler returns. */
	struct fs_ring_ent *ent;
};

/* Who waits for requests: the /dev/fuse loop, or ring thread i (>= 0). */
#define FS_WAITER_DEV (-1)

struct fs_server {
	mz_store *store;
	bool store_lent;        /* the caller's (mz_fs_opts.store): not closed here */
	bool claimed;           /* the tree is ours: from its claim to mz_fs_release */
	mz_view *view;
	mz_lid layer;
	char *root_path;
	char *mountpoint;
	struct mz_fs_opts opts;
	int dev_fd;
	int mnt_fd;             /* the mount, made and not attached yet, or -1 */
	int ctl_fd;
	bool passthrough;   /* negotiated and working */
	bool exiting;       /* DESTROY seen (read and written atomically) */
	/* Request processing (the store, the tables below, the view cache)
	 * is serialized by this lock: /dev/fuse loop and ring threads alike. */
	pthread_mutex_t lock;
	/* Group commit: when the open catalog batch must be flushed (monotonic
	 * ns, 0: nothing pending) and which waiter times out for it.  Written
	 * under lock, read without (atomics). */
	int64_t flush_due_ns;
	int64_t shrink_due_ns; /* /dev/fuse loop: when idle caches go (0: done) */
	int flush_owner;
	bool uring_want;        /* try FUSE over io_uring at INIT */
	struct fs_uring *uring; /* its rings and threads (uring.c), NULL if unused */
	uint32_t proto_minor;
	struct imap nodes;   /* ino -> fs_node */
	struct imap handles; /* fh -> fs_handle */
	uint64_t next_fh;
	struct fs_node *lru_head, *lru_tail; /* head: most recently idle */
	size_t lru_n;
	/* The store's file system filling up (space.c); under lock. */
	struct {
		int64_t checked_ns; /* when its free space was last looked at */
		bool low;           /* short: requests that grow the tree get ENOSPC */
		bool unbatched;     /* a batch failed to commit: one commit a request */
		int64_t failed_ns;  /* when the last batch failed */
	} space;
	/* The /dev/fuse loop's CPU latency request (lib/cpulat.h): held from a
	 * request that came while spinning until FS_CPULAT_NS after the last. */
	struct mz_cpulat cpulat;
	int64_t cpulat_until_ns;
	uint64_t op_count[64]; /* requests per opcode (logged at exit, debug) */
	char *buf;
	size_t bufsize;
};

/* ---- replies (server.c) ---- */
int fs_reply(struct fs_server *S, const struct fs_req *r, const void *data, size_t len);
int fs_reply_iov(struct fs_server *S, const struct fs_req *r, struct iovec *iov, int n);
int fs_reply_err(struct fs_server *S, const struct fs_req *r, int neg_errno);
/* Log an unexpected internal error, map it to an errno for the kernel. */
int fs_fail(struct fs_server *S, const struct fs_req *r, int rc, mz_error_t *err);

/* ---- requests (server.c); callers hold S->lock ---- */
void fs_dispatch(struct fs_server *S, const struct fs_req *r);
/* After a request: note when the catalog batch is due; true if it is due
 * right now (the caller flushes once the reply is on its way). */
bool fs_after_request(struct fs_server *S, int waiter);
void fs_flush(struct fs_server *S);
/* What fsync asks: the batch committed and the WAL on disk. */
int fs_sync(struct fs_server *S, mz_error_t *err);
/* After a request, a server thread keeps looking for the next one (without
 * sleeping, yielding the CPU between tries) for this long before it sleeps:
 * requests come in bursts (a path walk, an untar), and the next one then
 * finds the server awake instead of paying a wakeup, most of a request's
 * cost on these VMs (an idle vCPU's wakeup is a trip through the host).
 * Measured on /dev/fuse: open()+close() 13.7 -> 8.8 us, an untar of Debian
 * 4.7 -> 3.9 s; on io_uring: open()+close() 15 -> 6 us.  An idle tree costs
 * nothing: the spin starts only after a request. */
#define FS_SPIN_NS (50 * 1000)
/* ... and while requests come in a burst (the next one during the spin),
 * idle CPUs are asked to poll instead of halting (lib/cpulat.h), for this
 * long after the last one: the process that made a request waits for the
 * reply on a CPU that has gone idle, and waking it from a halt costs more
 * than the server's whole work.  Measured on /dev/fuse: open()+close()
 * 19.4 -> 11.3 us.  Longer than the spin, so that a burst with short gaps
 * does not ask again at each request (~7 us). */
#define FS_CPULAT_NS (1000 * 1000)

/* Without the lock: how long waiter may sleep for the catalog batch's flush
 * (ns; -1: until a request), and the work to do when that sleep timed out
 * (takes the lock). */
int64_t fs_wait_ns(struct fs_server *S, int waiter);
void fs_idle(struct fs_server *S);

/* ---- a full file system (space.c); callers hold S->lock ---- */
/* Whether request op must get ENOSPC: it grows the tree and space is short. */
bool fs_space_refuses(struct fs_server *S, uint32_t op);
/* A batch did not commit: forget the view's cached rows, and commit each
 * request on its own from now on. */
void fs_space_commit_failed(struct fs_server *S);
/* After a request: back to batches once space is back. */
void fs_space_after_request(struct fs_server *S);
/* The store's free blocks and inodes as a domain may use them: the room
 * kept for the catalog is not theirs (as a file system's reserved blocks
 * are not a user's). */
struct statvfs;
void fs_space_statfs(const struct statvfs *sv, uint64_t *bavail, uint64_t *ffree);

/* ---- FUSE over io_uring (uring.c) ---- */
/* Before mounting: whether to try io_uring (MEZZO_FUSE_URING, enable_uring). */
bool fs_uring_wanted(struct fs_server *S);
/* At INIT, before replying: start one thread and ring per possible CPU;
 * false if that failed (then io_uring is not negotiated). */
bool fs_uring_prepare(struct fs_server *S);
/* After the INIT reply: register the rings' entries (or, negotiate=false,
 * drop the threads). */
void fs_uring_start(struct fs_server *S, bool negotiated);
/* Stop and join the ring threads (any time; NULL-safe). */
void fs_uring_stop(struct fs_server *S);
/* Reply into a ring entry (fs_reply* do this when r->ent is set). */
int fs_uring_reply(struct fs_server *S, const struct fs_req *r, int neg_errno,
		   const struct iovec *iov, int n);

/* ---- ids and attributes (server.c) ---- */
uint32_t fs_uid_in(struct fs_server *S, uint32_t host_uid);
uint32_t fs_gid_in(struct fs_server *S, uint32_t host_gid);
void fs_fill_attr(struct fs_server *S, const struct mz_inode *a, struct fuse_attr *out);
void fs_fill_entry(struct fs_server *S, const struct mz_inode *a, struct fuse_entry_out *e);
mz_ino fs_ino(struct fs_server *S, uint64_t nodeid);
uint64_t fs_nodeid(struct fs_server *S, mz_ino ino);
/* Take a kernel reference on ino (after a successful entry reply). */
struct fs_node *fs_node_ref(struct fs_server *S, mz_ino ino);
struct fs_node *fs_node_get(struct fs_server *S, mz_ino ino);
/* mz_view_getattr, the object's size and times read through the node's
 * backing file when it has one open (an fstat, not a path walk). */
int fs_getattr(struct fs_server *S, mz_ino ino, struct mz_inode *a, mz_error_t *err);
/* Drop n kernel references; reaps unlinked inodes nobody holds. */
void fs_node_unref(struct fs_server *S, struct fs_node *n, uint64_t count);
void fs_node_maybe_reap(struct fs_server *S, struct fs_node *n);
/* An inode lost its last link (from unlink/rmdir/rename). */
void fs_inode_gone(struct fs_server *S, mz_ino ino);

/* ---- op handlers ---- */
typedef int (*fs_op_fn)(struct fs_server *S, const struct fs_req *r);

/* Clear set-id bits and file capabilities (write/truncate/chown by someone
 * without CAP_FSETID; HANDLE_KILLPRIV_V2). */
int fs_kill_suidgid(struct fs_server *S, mz_ino ino, mz_error_t *err);
/* Have the kernel drop its cached attributes of ino. */
void fs_notify_inval_attr(struct fs_server *S, mz_ino ino);

int fs_op_lookup(struct fs_server *S, const struct fs_req *r);
int fs_op_forget(struct fs_server *S, const struct fs_req *r);
int fs_op_batch_forget(struct fs_server *S, const struct fs_req *r);
int fs_op_getattr(struct fs_server *S, const struct fs_req *r);
int fs_op_setattr(struct fs_server *S, const struct fs_req *r);
int fs_op_readlink(struct fs_server *S, const struct fs_req *r);
int fs_op_symlink(struct fs_server *S, const struct fs_req *r);
int fs_op_mknod(struct fs_server *S, const struct fs_req *r);
int fs_op_mkdir(struct fs_server *S, const struct fs_req *r);
int fs_op_unlink(struct fs_server *S, const struct fs_req *r);
int fs_op_rmdir(struct fs_server *S, const struct fs_req *r);
int fs_op_rename(struct fs_server *S, const struct fs_req *r);
int fs_op_rename2(struct fs_server *S, const struct fs_req *r);
int fs_op_link(struct fs_server *S, const struct fs_req *r);

int fs_op_open(struct fs_server *S, const struct fs_req *r);
int fs_op_create(struct fs_server *S, const struct fs_req *r);
int fs_op_tmpfile(struct fs_server *S, const struct fs_req *r);
int fs_op_read(struct fs_server *S, const struct fs_req *r);
int fs_op_write(struct fs_server *S, const struct fs_req *r);
int fs_op_release(struct fs_server *S, const struct fs_req *r);
int fs_op_flush(struct fs_server *S, const struct fs_req *r);
int fs_op_fsync(struct fs_server *S, const struct fs_req *r);
int fs_op_fallocate(struct fs_server *S, const struct fs_req *r);
int fs_op_lseek(struct fs_server *S, const struct fs_req *r);
int fs_op_statfs(struct fs_server *S, const struct fs_req *r);
int fs_op_syncfs(struct fs_server *S, const struct fs_req *r);

int fs_op_opendir(struct fs_server *S, const struct fs_req *r);
int fs_op_readdir(struct fs_server *S, const struct fs_req *r);
int fs_op_readdirplus(struct fs_server *S, const struct fs_req *r);
int fs_op_releasedir(struct fs_server *S, const struct fs_req *r);
int fs_op_fsyncdir(struct fs_server *S, const struct fs_req *r);

int fs_op_getxattr(struct fs_server *S, const struct fs_req *r);
int fs_op_listxattr(struct fs_server *S, const struct fs_req *r);
int fs_op_setxattr(struct fs_server *S, const struct fs_req *r);
int fs_op_removexattr(struct fs_server *S, const struct fs_req *r);

/* ---- control socket (control.c) ---- */
int fs_control_open(struct fs_server *S, mz_error_t *err);
void fs_control_handle(struct fs_server *S);
void fs_control_close(struct fs_server *S);
/* Snapshot the served tree (also used by the control socket). */
int fs_snapshot(struct fs_server *S, const char *version, mz_lid *out, mz_error_t *err);

/* Handles and backing files (ops_file.c). */
struct fs_handle *fs_handle_get(struct fs_server *S, uint64_t fh);
/* The fd to do I/O on for an open file (its own, or its node's backing). */
int fs_handle_fd(const struct fs_handle *h);
void fs_backing_drop(struct fs_server *S, struct fs_node *n);
/* An open using the node's backing closed. */
void fs_backing_put(struct fs_server *S, struct fs_node *n);

#endif
