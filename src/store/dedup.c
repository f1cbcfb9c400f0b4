/*
 * dedup.c — `store dedup`: the seed's lightweight object-level dedup.
 *
 * Import seals what it stores, so identical files of images are stored once
 * from the start.  What is written inside trees lands in private objects,
 * and a snapshot makes those part of an immutable version: from then on they
 * can be sealed like any imported file.  For each such private object this
 * computes the SHA-256 and
 *   - if a sealed object with that content exists, repoints the inode rows
 *     to it (the refcount triggers follow) and drops the private object;
 *   - else seals it in place: hash and size in its row, file made 0400.
 *
 * Candidates are private objects named only by inode rows of finished
 * versions and of trees; objects of a build in progress are its importer's.
 * A tree's object may be open for writing by the tree's server, and a
 * snapshot of a live tree can leave an open file's object in a version, so
 * every candidate is locked first.
 *
 * Locking contract with tree servers (src/fs): a server holds flock(LOCK_SH)
 * on every object file it has open for writing, for as long as it is open.
 * Dedup takes flock(LOCK_EX | LOCK_NB) on the object before hashing it and
 * keeps it until the catalog change is committed; an object it cannot lock
 * is skipped this time.  A server that had to wait for its LOCK_SH must look
 * at the inode again once it has it: the object may have been sealed or
 * replaced meanwhile, and then mz_view_make_writable gives it a fresh copy.
 * Because a server takes that lock only after mz_view_make_writable and
 * open, a tree that is being served (its owner process is alive) is left
 * alone altogether, checked again under the catalog's write lock; a server
 * claims its tree before it writes anything.  A tree row that ends up
 * naming a sealed object simply copies on its next write.
 */
#include "storeInt.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"

/* Private objects every inode row of which is in a finished version or a
 * tree (of a layer that exists). */
#define ELIGIBLE                                                                         \
	"o.hash IS NULL AND o.refs > 0 AND NOT EXISTS (SELECT 1 FROM inode i LEFT JOIN " \
	"layer l ON l.id = i.layer WHERE i.object = o.id AND (l.id IS NULL OR "          \
	"l.building != 0))"

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int step_done(mz_store *s, sqlite3_stmt *st, mz_error_t *err, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_dberr(s, err, what);
	return 0;
}

/* Does a live server own a tree that names this object? */
static int tree_served(mz_store *s, mz_oid id, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT DISTINCT l.owner_pid, l.owner_start FROM inode i "
			      "JOIN layer l ON l.id = i.layer WHERE i.object = ? AND l.kind = 2",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (store_owner_alive(sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1)))
			return 1;
	if (rc != SQLITE_DONE)
		return store_dberr(s, err, "read tree owners");
	return 0;
}

/* With fd locked and hashed: change the catalog.  Returns 1 merged, 0 sealed
 * in place or skipped. */
static int dedup_apply(mz_store *s, mz_oid id, int fd, const uint8_t *hash,
		       const struct stat *stb, struct store_idlist *gone, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "SELECT 1 FROM object o WHERE o.id = ? AND " ELIGIBLE, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0; /* changed meanwhile: next time */
	if (rc != SQLITE_ROW)
		return store_dberr(s, err, "read object");
	store_finalizep(&st);
	if ((r = tree_served(s, id, err)) != 0)
		return r < 0 ? r : 0;

	if ((r = store_prepare(s, "SELECT id, size FROM object WHERE hash = ?", &st, err)) < 0)
		return r;
	sqlite3_bind_blob(st, 1, hash, MZ_HASH_LEN, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_dberr(s, err, "look up hash");
	mz_oid twin = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	int64_t twin_size = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
	store_finalizep(&st);
	if (twin) {
		/* Never point rows at a file that is not there (store check says why). */
		char trel[32];
		struct stat tst;
		mz_object_relpath(twin, trel);
		if (twin_size != stb->st_size ||
		    fstatat(s->objects_fd, trel, &tst, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(tst.st_mode) || tst.st_size != stb->st_size) {
			mz_warn("object %lld: its twin %lld by hash is damaged: not merged "
				"(see 'mezzo store check')",
				(long long)id, (long long)twin);
			return 0;
		}
	}

	/* What users saw came from the file; a sealed object's times come from
	 * the inode rows, so carry them over. */
	if ((r = store_prepare(s,
			       "UPDATE inode SET size = ?2, atime = ?3, mtime = ?4, "
			       "ctime = MAX(ctime, ?5) WHERE object = ?1",
			       &st, err)) < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, stb->st_size);
	sqlite3_bind_int64(st, 3, ts_ns(&stb->st_atim));
	sqlite3_bind_int64(st, 4, ts_ns(&stb->st_mtim));
	sqlite3_bind_int64(st, 5, ts_ns(&stb->st_ctim));
	if ((r = step_done(s, st, err, "update inodes")) < 0)
		return r;
	store_finalizep(&st);

	if (twin) {
		static const char *const sql[] = {
			"UPDATE inode SET object = ?2 WHERE object = ?1",
			"DELETE FROM object WHERE id = ?1 AND refs <= 0",
		};
		for (size_t i = 0; i < ARRAY_SIZE(sql); i++) {
			if ((r = store_prepare(s, sql[i], &st, err)) < 0)
				return r;
			sqlite3_bind_int64(st, 1, id);
			if (i == 0)
				sqlite3_bind_int64(st, 2, twin);
			if ((r = step_done(s, st, err, "merge object")) < 0)
				return r;
			store_finalizep(&st);
		}
		store_idlist_push(gone, id);
		return 1;
	}
	if ((r = store_prepare(s, "UPDATE object SET hash = ?2, size = ?3 WHERE id = ?1", &st,
			       err)) < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob(st, 2, hash, MZ_HASH_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, stb->st_size);
	if ((r = step_done(s, st, err, "seal object")) < 0)
		return r;
	/* Read-only before the row says sealed (a crash leaves a private 0400
	 * file, which is harmless). */
	if (fchmod(fd, 0400) < 0)
		return mz_error_sys(err, errno, "cannot chmod object %lld", (long long)id);
	return 0;
}

static int dedup_one(mz_store *s, mz_oid id, struct mz_dedup_report *rep,
		     struct store_idlist *gone, mz_error_t *err)
{
	int r = tree_served(s, id, err);
	if (r != 0) {
		if (r > 0)
			mz_debug("dedup: object %lld is in a served tree: skipped", (long long)id);
		return r < 0 ? r : 0;
	}
	char rel[32];
	mz_object_relpath(id, rel);
	cleanup_close int fd = openat(s->objects_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		mz_debug("dedup: object %lld: %s (see 'mezzo store check')", (long long)id,
			 strerror(errno));
		return 0;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK || errno == EINTR) {
			mz_debug("dedup: object %lld is open for writing: skipped", (long long)id);
			return 0;
		}
		return mz_error_sys(err, errno, "cannot lock object %lld", (long long)id);
	}
	rep->examined++;
	struct stat before, after;
	uint8_t hash[MZ_HASH_LEN];
	if (fstat(fd, &before) < 0 || !S_ISREG(before.st_mode))
		return 0;
	/* Sealed content must be on disk before the catalog says it is sealed. */
	if (fdatasync(fd) < 0)
		return mz_error_sys(err, errno, "cannot sync object %lld", (long long)id);
	if ((r = mz_hash_fd(fd, hash)) < 0)
		return mz_error_sys(err, -r, "cannot read object %lld", (long long)id);
	/* Written under us by someone who ignored the lock: not now. */
	if (fstat(fd, &after) < 0 || after.st_size != before.st_size ||
	    ts_ns(&after.st_mtim) != ts_ns(&before.st_mtim))
		return 0;

	if ((r = mz_store_begin(s, err)) < 0)
		return r;
	size_t mark = gone->n;
	r = dedup_apply(s, id, fd, hash, &after, gone, err);
	if (r < 0) {
		mz_store_rollback(s);
		gone->n = mark;
		fchmod(fd, before.st_mode & 07777);
		return r;
	}
	int c = mz_store_commit(s, err);
	if (c < 0) {
		gone->n = mark;
		fchmod(fd, before.st_mode & 07777);
		return c;
	}
	if (r == 1) {
		rep->merged++;
		rep->bytes_saved += (int64_t)after.st_blocks * 512;
	}
	return 0; /* the lock goes with fd, after the commit */
}

int mz_store_dedup(mz_store *s, struct mz_dedup_report *rep, mz_error_t *err)
{
	struct mz_dedup_report dummy;
	if (rep == NULL)
		rep = &dummy;
	memset(rep, 0, sizeof(*rep));
	if (s->tx_depth > 0)
		return mz_error(err, EBUSY, "internal: store dedup inside a transaction");
	struct store_idlist cand = {0}, gone = {0};
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "SELECT o.id FROM object o WHERE " ELIGIBLE " ORDER BY o.id",
			      &st, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_idlist_push(&cand, sqlite3_column_int64(st, 0));
	if (rc != SQLITE_DONE)
		r = store_dberr(s, err, "list private objects");
	store_finalizep(&st);
	for (size_t i = 0; r >= 0 && i < cand.n; i++) {
		r = dedup_one(s, cand.v[i], rep, &gone, err);
		/* Merged objects' files go in batches, each after one sync. */
		if (r >= 0 && gone.n >= 1024)
			r = store_unlink_durably(s, &gone, NULL, err);
	}
	if (r >= 0)
		r = store_unlink_durably(s, &gone, NULL, err);
	store_idlist_free(&cand);
	store_idlist_free(&gone);
	return r < 0 ? r : 0;
}
