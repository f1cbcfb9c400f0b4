/*
 * storeInt.h — what the store's own files share and nobody else sees.
 */
#ifndef MZ_STORE_INT_H
#define MZ_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

struct stmt_slot {
	const char *sql; /* static string: cache key by address */
	sqlite3_stmt *st;
};

#define MZ_TX_MAX 32
/* How long a writer waits for the catalog's write lock. */
#define MZ_STORE_BUSY_MS 30000

struct mz_store {
	char *root;
	sqlite3 *db;
	int root_fd;
	int objects_fd;
	int tx_depth;
	bool batching, batch_open;   /* group commit (mz_store_set_batch) */
	int64_t batch_start_ns;
	mz_ino ino_next, ino_end;    /* inode numbers handed to us, not yet used */
	bool tx_failed;              /* an inner rollback failed: commit must not */
	size_t tx_pending[MZ_TX_MAX]; /* pending_n when each level began */
	/* Every distinct statement of the code base fits (about 90 with the
	 * per-filter variants): a full cache aborts (store_stmt). */
	struct stmt_slot stmts[128];
	/* object files whose rows went in this transaction: unlinked on commit */
	mz_oid *pending;
	size_t pending_n, pending_cap;
	size_t pending_committed; /* pending[0..this) belong to committed txns */
	struct store_pool *pool;  /* object files made ahead (pool.c), or NULL */
};

/* A prepared statement for a static SQL string, reset and ready to bind. */
sqlite3_stmt *store_stmt(mz_store *s, const char *sql);
/* Report the database's current error as an mz_error. */
int store_dberr(mz_store *s, mz_error_t *err, const char *what);
/* Run one statement with no results. */
int store_exec(mz_store *s, const char *sql, mz_error_t *err);
/* Step a statement once (rows are ignored) and reset it; 0 or the error.
 * A statement must not stay unfinished between uses: one that returned a
 * row, or SQLITE_BUSY, and was not reset keeps this connection's read
 * transaction open, and a BEGIN IMMEDIATE made from a read transaction
 * fails at once on another process's lock instead of waiting for it. */
int store_step_done(mz_store *s, sqlite3_stmt *st, mz_error_t *err, const char *what);
/* store_stmt(sql) stepped once and reset: the step's result code. */
int store_step_reset(mz_store *s, const char *sql);
/* Step st to its end, each row made into one element of elem bytes by
 * from_row(st, element); the elements go to *out (malloc'ed), their number
 * to *n.  On an error the first k are given to free_rows (NULL: plain free
 * of the array).  The one loop of every "list the rows" of the catalog. */
int store_rows(mz_store *s, sqlite3_stmt *st, size_t elem, void (*from_row)(sqlite3_stmt *, void *),
	       void (*free_rows)(void *, size_t), void **out, size_t *n, const char *what,
	       mz_error_t *err);

/* The one-row counterpart of store_rows: step st once; a row goes through
 * from_row(st, out).  1 if there was a row, 0 if not, else the catalog's
 * error (what names the read).  st is reset in every case. */
int store_row(mz_store *s, sqlite3_stmt *st, void (*from_row)(sqlite3_stmt *, void *), void *out,
	      const char *what, mz_error_t *err);

/* Allocate a fresh inode number (inside a transaction). */
int store_alloc_ino(mz_store *s, mz_ino *out, mz_error_t *err);
/* Delete a private object whose last reference just went (row, then file). */
int store_object_drop_if_unused(mz_store *s, mz_oid id, mz_error_t *err);
/* The unlink of object files deferred until the transaction commits. */
void store_defer_unlink(mz_store *s, mz_oid id);

/* An object file made ahead (pool.c): its fd, open O_RDWR, and in *id the
 * id it is named by, reserved for this handle; or -1: make one yourself. */
int store_pool_take(mz_store *s, mz_oid *id);
/* After a commit, outside any transaction: reserve ids for the pool if it
 * has run out (a transaction of its own, given up if the lock is busy). */
void store_pool_reserve(mz_store *s);
void store_pool_free(mz_store *s);

/* Owner bookkeeping: pid plus its start time, so a reused pid is not alive. */
int64_t store_pid_starttime(pid_t pid);
bool store_owner_alive(pid_t pid, int64_t start);

/* Delete every row of a layer (no checks). */
int store_layer_delete_rows(mz_store *s, mz_lid id, mz_error_t *err);

/* ---- maintenance: shared by check.c, gc.c, dedup.c and df.c (maint.c) ---- */

/* A one-off statement: maintenance runs many distinct queries once each, so
 * they stay out of the store_stmt cache.  Finalized by cleanup_stmt. */
int store_prepare(mz_store *s, const char *sql, sqlite3_stmt **st, mz_error_t *err);
void store_finalizep(sqlite3_stmt **st);
#define cleanup_stmt __attribute__((cleanup(store_finalizep)))

/* How old (by ctime) a file under objects/ that no row names must be before
 * it is an orphan: $MEZZO_ORPHAN_GRACE_SECONDS, default 900. */
int64_t store_orphan_grace_ns(void);

enum store_orphan_kind {
	STORE_ORPHAN_YOUNG, /* no row, but too young: an import may commit it */
	STORE_ORPHAN_OLD,   /* no row and older than the grace period */
	STORE_STRAY_FILE,   /* not an object file name, or in the wrong XX dir */
	STORE_MISSING_DIR,  /* an objects/XX directory is missing */
};
struct store_orphan {
	enum store_orphan_kind kind;
	char rel[288];  /* path under objects/ */
	int64_t bytes;  /* allocated: st_blocks * 512 */
	int64_t age_s;  /* since the file's ctime */
	int removed;    /* remove mode: 1 removed (dir: made), 0 kept, -errno */
};
/* Walk objects/XX/ and call cb for every entry no catalog row accounts for;
 * with remove, old orphans are unlinked (under the catalog's write lock,
 * after a fresh look for their row) and missing dirs made again. */
int store_scan_orphans(mz_store *s, bool remove,
		       int (*cb)(const struct store_orphan *, void *), void *arg,
		       mz_error_t *err);

struct store_idlist {
	mz_oid *v;
	size_t n, cap;
};
void store_idlist_push(struct store_idlist *l, mz_oid id);
void store_idlist_free(struct store_idlist *l);
/* Take the unlinks queued by store_defer_unlink since mark (a pending_n
 * value) away from the commit, so the caller can sync before unlinking. */
void store_take_pending(mz_store *s, size_t mark, struct store_idlist *l);
/* After the commit that dropped their rows: make it durable, then unlink the
 * object files; *bytes (optional) gets what they had allocated. */
int store_unlink_durably(mz_store *s, struct store_idlist *l, int64_t *bytes,
			 mz_error_t *err);

/* Why a layer is garbage ("dead-build", "dead-tree", "anon-version"), or
 * NULL: re-read from the catalog, so call it inside the transaction that
 * removes it.  A layer others build on is never garbage. */
int store_layer_garbage(mz_store *s, mz_lid id, const char **why, mz_error_t *err);
/* Inside a transaction: remove layer id if it still is garbage, then its
 * parents while they are anonymous versions nothing builds on.  Returns the
 * number of layers removed. */
int store_layer_collect(mz_store *s, mz_lid id, mz_error_t *err);
/* The same in a transaction of its own; the files of the private objects
 * that went with the layers are unlinked once the commit is durable.
 * *objects and *bytes (optional) grow by what was freed. */
int store_layer_collect_tx(mz_store *s, mz_lid id, int64_t *objects, int64_t *bytes,
			   mz_error_t *err);

#endif
