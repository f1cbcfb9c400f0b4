/*
 * gc.c — `store gc`: give back the space of what nothing uses any more.
 *
 * In this order, so each step frees what the one before let go:
 *   1. layers: builds and anonymous trees whose owner process is gone (the
 *      leftovers of crashed imports and servers), then anonymous finished
 *      versions that no layer builds on, upward along their chains;
 *   2. object rows with no inode row naming them, sealed and private, and
 *      their files: rows go in a transaction, files after it is durable;
 *   3. orphan object files (no row, older than the grace period; see maint.c).
 *
 * Unreferenced *sealed* objects are kept while an import is alive: the
 * import may have just been handed one by mz_object_seal_tmpfile (identical
 * content already stored) and not yet have committed the inode row naming
 * it.  The contract: a process that holds a sealed object id without an
 * inode row naming it owns a live building layer meanwhile.
 */
#include "storeInt.h"

#include <errno.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/util.h"

#define GC_BATCH 4096

static int gc_layers(mz_store *s, struct mz_gc_report *rep, mz_error_t *err)
{
	struct store_idlist ids = {0};
	cleanup_stmt sqlite3_stmt *st = NULL;
	/* Candidates only: store_layer_collect decides under the write lock. */
	int r = store_prepare(s,
			      "SELECT id FROM layer l WHERE (building = 1 OR name IS NULL) AND "
			      "NOT EXISTS (SELECT 1 FROM layer c WHERE c.parent = l.id)",
			      &st, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_idlist_push(&ids, sqlite3_column_int64(st, 0));
	if (rc != SQLITE_DONE)
		r = store_dberr(s, err, "list layers");
	store_finalizep(&st);
	for (size_t i = 0; r >= 0 && i < ids.n; i++) {
		r = store_layer_collect_tx(s, ids.v[i], &rep->objects, &rep->bytes, err);
		if (r > 0)
			rep->layers += r;
	}
	store_idlist_free(&ids);
	return r < 0 ? r : 0;
}

/* Is some import (a building layer with a live owner) running? */
static int import_alive(mz_store *s, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "SELECT owner_pid, owner_start FROM layer WHERE building = 1",
			      &st, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (store_owner_alive(sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1)))
			return 1;
	if (rc != SQLITE_DONE)
		return store_dberr(s, err, "list layers");
	return 0;
}

/* Drop up to GC_BATCH unreferenced object rows; returns how many went. */
static int gc_objects_batch(mz_store *s, bool sealed_too, struct mz_gc_report *rep,
			    mz_error_t *err)
{
	int r = mz_store_begin(s, err);
	if (r < 0)
		return r;
	struct store_idlist files = {0};
	cleanup_stmt sqlite3_stmt *st = NULL;
	r = store_prepare(s,
			  "DELETE FROM object WHERE id IN (SELECT id FROM object WHERE refs <= 0 "
			  "AND (hash IS NULL OR ?1) LIMIT ?2) RETURNING id",
			  &st, err);
	if (r == 0) {
		sqlite3_bind_int(st, 1, sealed_too);
		sqlite3_bind_int(st, 2, GC_BATCH);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			store_idlist_push(&files, sqlite3_column_int64(st, 0));
		if (rc != SQLITE_DONE)
			r = store_dberr(s, err, "drop objects");
	}
	store_finalizep(&st);
	if (r < 0) {
		mz_store_rollback(s);
		store_idlist_free(&files);
		return r;
	}
	int n = files.n;
	if ((r = mz_store_commit(s, err)) == 0) {
		int64_t bytes = 0;
		rep->objects += files.n;
		r = store_unlink_durably(s, &files, &bytes, err);
		rep->bytes += bytes;
	}
	store_idlist_free(&files);
	return r < 0 ? r : n;
}

static int gc_objects(mz_store *s, struct mz_gc_report *rep, mz_error_t *err)
{
	int alive = import_alive(s, err);
	if (alive < 0)
		return alive;
	if (alive)
		mz_info("an import is running: unreferenced sealed objects are kept for it");
	int n;
	do {
		n = gc_objects_batch(s, !alive, rep, err);
	} while (n == GC_BATCH);
	return n < 0 ? n : 0;
}

static int gc_orphan_cb(const struct store_orphan *o, void *arg)
{
	struct mz_gc_report *rep = arg;
	if (o->kind == STORE_ORPHAN_OLD && o->removed > 0) {
		rep->files++;
		rep->bytes += o->bytes;
	} else if (o->kind == STORE_ORPHAN_OLD && o->removed < 0) {
		mz_warn("cannot remove orphan objects/%s: %s", o->rel, strerror(-o->removed));
	} else if (o->kind == STORE_STRAY_FILE) {
		mz_warn("objects/%s is not an object file: left alone (see 'mezzo store check')",
			o->rel);
	}
	return 0;
}

int mz_store_gc(mz_store *s, struct mz_gc_report *rep, mz_error_t *err)
{
	struct mz_gc_report dummy;
	if (rep == NULL)
		rep = &dummy;
	memset(rep, 0, sizeof(*rep));
	if (s->tx_depth > 0)
		return mz_error(err, EBUSY, "internal: store gc inside a transaction");
	int r = gc_layers(s, rep, err);
	if (r == 0)
		r = gc_objects(s, rep, err);
	if (r == 0)
		r = store_scan_orphans(s, true, gc_orphan_cb, rep, err);
	return r;
}
