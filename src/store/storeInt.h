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

struct mz_store {
	char *root;
	sqlite3 *db;
	int root_fd;
	int objects_fd;
	int tx_depth;
	bool tx_failed;
	struct stmt_slot stmts[96];
	/* object files whose rows went in this transaction: unlinked on commit */
	mz_oid *pending;
	size_t pending_n, pending_cap;
};

/* A prepared statement for a static SQL string, reset and ready to bind. */
sqlite3_stmt *store_stmt(mz_store *s, const char *sql);
/* Report the database's current error as an mz_error. */
int store_dberr(mz_store *s, mz_error_t *err, const char *what);
/* Run one statement with no results. */
int store_exec(mz_store *s, const char *sql, mz_error_t *err);
/* Step a statement to completion (SQLITE_DONE); rows are an error. */
int store_step_done(mz_store *s, sqlite3_stmt *st, mz_error_t *err, const char *what);

/* Allocate a fresh inode number (inside a transaction). */
int store_alloc_ino(mz_store *s, mz_ino *out, mz_error_t *err);
/* Delete a private object whose last reference just went (row, then file). */
int store_object_drop_if_unused(mz_store *s, mz_oid id, mz_error_t *err);
/* The unlink of object files deferred until the transaction commits. */
void store_defer_unlink(mz_store *s, mz_oid id);

/* Owner bookkeeping: pid plus its start time, so a reused pid is not alive. */
int64_t store_pid_starttime(pid_t pid);
bool store_owner_alive(pid_t pid, int64_t start);

/* Delete every row of a layer (no checks). */
int store_layer_delete_rows(mz_store *s, mz_lid id, mz_error_t *err);

#endif
