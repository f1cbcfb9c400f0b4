/*
 * fs.h — the domain file system: one tree of the store served as a POSIX
 * file system over the raw FUSE protocol, regular files passed through to
 * their object files (seed 003 sections 3.2.1-3.2.2 on Linux).
 */
#ifndef MZ_FS_H
#define MZ_FS_H

#include <stdbool.h>
#include <sys/types.h>

#include "../lib/error.h"
#include "../store/store.h"

struct mz_fs_opts {
	/* Ids the tree's users see are mapped to host ids as host = id + base
	 * for ids below count (a domain's user namespace range); 0/0 for a
	 * tree mounted for the host itself (identity). */
	uid_t uid_base, uid_count;
	gid_t gid_base, gid_count;
	bool allow_suid; /* else mounted nosuid */
	bool allow_dev;  /* else mounted nodev */
	bool drop_on_exit; /* anonymous tree: remove it when the server exits */
	int ready_fd;    /* written "ok\n" or "error: ...\n" once mounted; -1 none */
	/* A catalog handle to use instead of opening one (which costs a schema
	 * parse, ~0.3 ms, on a domain's start path): the caller's, which it
	 * keeps and closes after mz_fs_stop, and which it uses while the
	 * server runs only between mz_fs_catalog_enter and _leave.  NULL:
	 * the server opens its own. */
	struct mz_store *store;
	/* The control socket (snapshots of the mounted tree) is made by
	 * mz_fs_run, after the mount, off a domain's start path (its bind makes
	 * an inode in the store's run directory, ~0.1 ms on this ext4); else by
	 * mz_fs_start, before it says "ok". */
	bool control_later;
	/* The tree was made by this process just now (`run`): it has no
	 * inodes unlinked while open by a server that died, none to reap. */
	bool fresh;
};

/* A running server of one tree. */
struct fs_server;
/* Open the store, claim the tree, mount it (nothing is served yet).  The
 * process's limit of open files is the caller's business: a server keeps
 * files open, and mz_fs_serve, which owns its process, raises it to the
 * hard limit; a supervisor does before it clones anything.  With
 * mountpoint NULL, the mount is made but attached nowhere: mz_fs_attach
 * attaches it, from any thread, in that thread's mount namespace (and
 * mz_fs_stop of a server never attached just drops it). */
int mz_fs_start(const char *store_root, mz_lid layer, const char *mountpoint,
		const struct mz_fs_opts *o, struct fs_server **out, mz_error_t *err);
int mz_fs_attach(struct fs_server *S, const char *mountpoint, mz_error_t *err);
/* Serve requests until the tree is unmounted (any thread, once). */
int mz_fs_run(struct fs_server *S, mz_error_t *err);
/* The server's catalog handle, for its owner to use once mz_fs_run has
 * returned (the server is done with it) and until mz_fs_stop. */
struct mz_store *mz_fs_store(struct fs_server *S);
/* Once mz_fs_run has returned: reap the tree's unlinked inodes and give up
 * the claim on it, so that another server may take it at once (a domain's
 * supervisor says "stopped" then, not once its process is gone);
 * mz_fs_stop then leaves the tree alone.  An anonymous tree (drop_on_exit)
 * is kept until mz_fs_stop drops it. */
int mz_fs_release(struct fs_server *S, mz_error_t *err);
/* Once mz_fs_run has returned and the tree was removed from the catalog
 * (its domain with it): mz_fs_stop then leaves it alone.  S may be NULL. */
void mz_fs_disown(struct fs_server *S);
/* Release everything (after mz_fs_run returned, or instead of it). */
void mz_fs_stop(struct fs_server *S);
/* For the owner of a lent handle (mz_fs_opts.store), while the server runs:
 * enter takes the server's lock (its requests wait: keep it short) and
 * returns the handle; leave commits what was done meanwhile, the server's
 * batch with it, and lets the server go on. */
struct mz_store *mz_fs_catalog_enter(struct fs_server *S);
void mz_fs_catalog_leave(struct fs_server *S);

/* start + run + stop: mount tree `layer` at mountpoint and serve it until it
 * is unmounted, in the calling process (callers daemonize first).
 *
 * With MEZZO_FUSE_URING=1 in the environment, requests are served through
 * FUSE over io_uring when the kernel has it: one thread per possible CPU,
 * pinned, answering the requests made on its CPU (the server sets
 * /sys/module/fuse/parameters/enable_uring to Y if it can).  By default, and
 * when the kernel cannot, it serves through /dev/fuse (see uring.c for the
 * measurements behind that default).  The log says which. */
int mz_fs_serve(const char *store_root, mz_lid layer, const char *mountpoint,
		const struct mz_fs_opts *o, mz_error_t *err);

/* The mount source string identifying a tree of a store in mountinfo. */
char *mz_fs_source(const char *store_root, mz_lid layer);

/* Ask the server of a mounted tree to snapshot it (O(changes)); falls back
 * to a direct snapshot when the tree is not mounted. */
int mz_fs_snapshot(mz_store *s, mz_lid tree, const char *version, mz_lid *out,
		   mz_error_t *err);

/* Visit the mounted trees of a store (all stores if store_root is NULL);
 * cb returns non-zero to stop, which is returned. */
int mz_fs_foreach_mount(const char *store_root,
			int (*cb)(mz_lid tree, const char *mountpoint, void *arg), void *arg);

/* Path of the control socket of a mounted tree. */
char *mz_fs_control_path(const char *store_root, mz_lid layer);

#endif
