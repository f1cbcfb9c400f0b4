/*
 * space.c — a tree server on a file system that runs out of space.
 *
 * A tree's changes are committed to the catalog in batches (group commit,
 * server.c), after the kernel has been told they succeeded.  A commit needs
 * room in the catalog's WAL; when a domain has filled the store's file
 * system (its writes go straight to object files, past the server), the
 * commit fails and the batch is gone.  Left alone the server went on
 * acknowledging creates into batches that could never commit: a program was
 * told 20 000 files were made and 18 000 of them were not there after a
 * remount.  Two rules keep that from happening:
 *
 *  - below FS_SPACE_LOW free bytes (or FS_SPACE_LOW_INODES free inodes) the
 *    server refuses what makes the tree bigger (new names, xattrs) with
 *    ENOSPC, as a local file system would, and keeps answering what frees
 *    space (unlink, rmdir, truncate) or changes nothing;
 *  - once a batch has failed to commit, every request commits on its own
 *    until space is back, so a commit that fails fails the request that
 *    made it instead of disappearing behind a success.
 *
 * The free space is looked at (statvfs) at most every FS_SPACE_CHECK_NS
 * while it is plentiful (also while commits are unbatched: leaving that
 * takes a second anyway), at every growing request while it is short; then
 * the object files of deleted inodes, which wait for a catalog sync to be
 * unlinked, are unlinked at once.  And the catalog's WAL has room kept for
 * it (mz_store_keep_wal_room), so that commits need no free block.
 */
#include <errno.h>
#include <sys/statvfs.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "fsInt.h"

#define FS_SPACE_LOW (16ll << 20)
#define FS_SPACE_LOW_INODES 256
#define FS_SPACE_CHECK_NS (50 * 1000000LL)
/* After a failed batch, at least this long of one commit per request, even
 * if statvfs sees room: what failed may not have been the space. */
#define FS_UNBATCHED_NS (1000 * 1000000LL)

/* Free bytes and inodes of the store's file system; false if unknown.  The
 * server runs as root: what root may still use counts (f_bfree). */
static bool space_short(struct fs_server *S, bool *shortp)
{
	struct statvfs sv;
	if (fstatvfs(mz_store_objects_dirfd(S->store), &sv) < 0)
		return false;
	long long bytes = (long long)sv.f_bfree * (long long)sv.f_frsize;
	/* hysteresis: once short, plenty means twice the limit */
	long long need = S->space.low ? 2 * FS_SPACE_LOW : FS_SPACE_LOW;
	unsigned long inodes = S->space.low ? 2 * FS_SPACE_LOW_INODES : FS_SPACE_LOW_INODES;
	*shortp = bytes < need || (sv.f_files > 0 && sv.f_ffree < inodes);
	return true;
}

static void space_update(struct fs_server *S)
{
	int64_t now = mono_ns();
	if (!S->space.low && now < S->space.checked_ns + FS_SPACE_CHECK_NS)
		return;
	S->space.checked_ns = now;
	/* What the tree deleted is unlinked only once the catalog says so on
	 * disk (store.c), in batches: short of space, free it now. */
	mz_error_t err cleanup_error = NULL;
	if ((S->space.low || S->space.unbatched) && mz_store_unlinks_pending(S->store) &&
	    fs_sync(S, &err) < 0)
		mz_debug("space: sync: %s", err ? err->msg : "");
	/* the catalog's room to commit in (another process's truncating
	 * checkpoint may have given it back since the last look) */
	if (!S->space.low)
		mz_store_keep_wal_room(S->store);
	bool low;
	if (space_short(S, &low) && low != S->space.low) {
		S->space.low = low;
		if (low)
			mz_warn("the store's file system is nearly full: new files, directories "
				"and xattrs get ENOSPC until space is freed");
		else
			mz_info("the store's file system has room again");
	}
	if (S->space.unbatched && !S->space.low && now - S->space.failed_ns >= FS_UNBATCHED_NS) {
		S->space.unbatched = false;
		mz_store_set_batch(S->store, true);
		mz_info("catalog commits are batched again");
	}
}

static bool grows_tree(uint32_t op)
{
	switch (op) {
	case FUSE_CREATE:
	case FUSE_TMPFILE:
	case FUSE_MKNOD:
	case FUSE_MKDIR:
	case FUSE_SYMLINK:
	case FUSE_LINK:
	case FUSE_SETXATTR:
		return true;
	default:
		return false;
	}
}

bool fs_space_refuses(struct fs_server *S, uint32_t op)
{
	if (!grows_tree(op))
		return false;
	space_update(S);
	return S->space.low;
}

void fs_space_commit_failed(struct fs_server *S)
{
	mz_view_invalidate(S->view); /* its rows may be the lost batch's */
	if (!S->space.unbatched) {
		S->space.unbatched = true;
		mz_store_set_batch(S->store, false);
		mz_warn("catalog commits are made one request at a time until the store "
			"has room again");
	}
	S->space.failed_ns = mono_ns();
	S->space.checked_ns = 0; /* look at the space at the next request */
}

void fs_space_after_request(struct fs_server *S)
{
	if (S->space.unbatched)
		space_update(S);
}

void fs_space_statfs(const struct statvfs *sv, uint64_t *bavail, uint64_t *ffree)
{
	uint64_t keep = sv->f_frsize ? (uint64_t)FS_SPACE_LOW / sv->f_frsize : 0;
	*bavail = sv->f_bavail > keep ? sv->f_bavail - keep : 0;
	*ffree = sv->f_ffree > FS_SPACE_LOW_INODES ? sv->f_ffree - FS_SPACE_LOW_INODES : 0;
}
