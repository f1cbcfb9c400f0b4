/*
 * maint.c — what the store's maintenance passes (check.c, gc.c, dedup.c,
 * df.c) share: one-off statements, the scan of the object directories for
 * files no catalog row names, durable removal of object files, and the
 * removal of garbage layers.
 *
 * Two rules keep maintenance safe next to live imports and tree servers:
 *   - A catalog row never names a missing file.  Rows go first, in a
 *     transaction; the files go only after that commit is durable (WAL
 *     fsync), so even a power cut cannot bring back a row without its file.
 *   - A file with no row may still be an object whose row is about to
 *     commit (an import links files before its transaction ends).  Such a
 *     file is an orphan only once its ctime is older than a grace period:
 *     900 s, or $MEZZO_ORPHAN_GRACE_SECONDS (tests set 0).  Orphans are
 *     unlinked under the catalog's write lock after a fresh look for the row.
 */
#include "storeInt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/util.h"

#define ORPHAN_GRACE_DEFAULT_S 900

int store_prepare(mz_store *s, const char *sql, sqlite3_stmt **st, mz_error_t *err)
{
	*st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return store_dberr(s, err, "prepare");
	return 0;
}

void store_finalizep(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
	*st = NULL;
}

int64_t store_orphan_grace_ns(void)
{
	const char *e = getenv("MEZZO_ORPHAN_GRACE_SECONDS");
	int64_t secs = ORPHAN_GRACE_DEFAULT_S;
	if (e != NULL && *e) {
		char *end;
		long long v = strtoll(e, &end, 10);
		if (*end == '\0' && v >= 0)
			secs = v;
	}
	return secs * 1000000000;
}

/* ---- id lists and durable unlinks ---------------------------------------- */

void store_idlist_push(struct store_idlist *l, mz_oid id)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = id;
}

void store_idlist_free(struct store_idlist *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void store_take_pending(mz_store *s, size_t mark, struct store_idlist *l)
{
	for (size_t i = mark; i < s->pending_n; i++)
		store_idlist_push(l, s->pending[i]);
	if (mark < s->pending_n)
		s->pending_n = mark;
}

int store_unlink_durably(mz_store *s, struct store_idlist *l, int64_t *bytes, mz_error_t *err)
{
	if (bytes)
		*bytes = 0;
	if (l->n == 0)
		return 0;
	/* Not synced: keep the files (at worst orphans that a later gc takes). */
	int r = mz_store_sync(s, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l->n; i++) {
		char rel[32];
		struct stat stb;
		mz_object_relpath(l->v[i], rel);
		if (bytes && fstatat(s->objects_fd, rel, &stb, AT_SYMLINK_NOFOLLOW) == 0)
			*bytes += (int64_t)stb.st_blocks * 512;
		unlinkat(s->objects_fd, rel, 0);
	}
	l->n = 0;
	return 0;
}

/* ---- orphan files ----------------------------------------------------------- */

static int cmp_oid(const void *a, const void *b)
{
	mz_oid x = *(const mz_oid *)a, y = *(const mz_oid *)b;
	return x < y ? -1 : x > y;
}

/* Every object id the catalog knows, sorted. */
static int load_ids(mz_store *s, struct store_idlist *ids, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(s, "SELECT id FROM object ORDER BY id", &st, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_idlist_push(ids, sqlite3_column_int64(st, 0));
	if (rc != SQLITE_DONE)
		return store_dberr(s, err, "list objects");
	return 0;
}

/* An object file name: a decimal id > 0 without leading zeros. */
static mz_oid parse_oid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 18 || name[0] == '0')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return strtoll(name, NULL, 10);
}

struct orphan_cand {
	struct store_orphan o;
	dev_t dev;
	ino_t ino;
	mz_oid id;
};

struct scan {
	mz_store *s;
	int64_t now, grace;
	struct store_idlist ids;
	struct orphan_cand *old;
	size_t nold, capold;
	int (*cb)(const struct store_orphan *, void *);
	void *arg;
};

static int scan_entry(struct scan *sc, int dfd, unsigned dir, const char *name)
{
	struct orphan_cand c;
	memset(&c, 0, sizeof(c));
	snprintf(c.o.rel, sizeof(c.o.rel), "%02x/%s", dir, name);
	struct stat stb;
	if (fstatat(dfd, name, &stb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno; /* went away meanwhile: fine */
	c.o.bytes = (int64_t)stb.st_blocks * 512;
	int64_t ctime = (int64_t)stb.st_ctim.tv_sec * 1000000000 + stb.st_ctim.tv_nsec;
	c.o.age_s = (sc->now - ctime) / 1000000000;
	c.id = parse_oid(name);
	if (c.id == 0 || (unsigned)(c.id & 0xff) != dir || !S_ISREG(stb.st_mode)) {
		c.o.kind = STORE_STRAY_FILE;
		return sc->cb(&c.o, sc->arg);
	}
	if (sc->ids.n && bsearch(&c.id, sc->ids.v, sc->ids.n, sizeof(mz_oid), cmp_oid))
		return 0;
	if (sc->now - ctime < sc->grace) {
		c.o.kind = STORE_ORPHAN_YOUNG;
		return sc->cb(&c.o, sc->arg);
	}
	c.o.kind = STORE_ORPHAN_OLD;
	c.dev = stb.st_dev;
	c.ino = stb.st_ino;
	if (sc->nold == sc->capold) {
		sc->capold = sc->capold ? 2 * sc->capold : 16;
		sc->old = xrealloc(sc->old, sc->capold * sizeof(*sc->old));
	}
	sc->old[sc->nold++] = c;
	return 0;
}

static int scan_dir(struct scan *sc, unsigned dir, bool remove)
{
	char dn[4];
	snprintf(dn, sizeof(dn), "%02x", dir);
	int dfd = openat(sc->s->objects_fd, dn, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		if (errno != ENOENT)
			return -errno;
		struct store_orphan o = {.kind = STORE_MISSING_DIR};
		snprintf(o.rel, sizeof(o.rel), "%s", dn);
		if (remove)
			o.removed = mkdirat(sc->s->objects_fd, dn, 0700) == 0 ? 1 : -errno;
		return sc->cb(&o, sc->arg);
	}
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int e = errno;
		close(dfd);
		return -e;
	}
	int r = 0;
	struct dirent *de;
	while (r >= 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = scan_entry(sc, dirfd(d), dir, de->d_name);
	}
	closedir(d);
	return r;
}

/* Old candidates: a fresh look for each row (it may have committed since the
 * ids were loaded) and, with remove, the unlink under the write lock, so no
 * writer can be between linking a file and committing its row. */
static int settle_old(struct scan *sc, bool remove, mz_error_t *err)
{
	mz_store *s = sc->s;
	int r = 0;
	if (remove && (r = mz_store_begin(s, err)) < 0)
		return r;
	cleanup_stmt sqlite3_stmt *st = NULL;
	if ((r = store_prepare(s, "SELECT 1 FROM object WHERE id = ?", &st, err)) < 0)
		goto out;
	for (size_t i = 0; i < sc->nold; i++) {
		struct orphan_cand *c = &sc->old[i];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, c->id);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			continue; /* committed meanwhile: not an orphan */
		if (rc != SQLITE_DONE) {
			r = store_dberr(s, err, "look up object");
			goto out;
		}
		if (remove) {
			struct stat stb;
			if (fstatat(s->objects_fd, c->o.rel, &stb, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			/* The very file we judged old, not one linked since. */
			if (stb.st_dev != c->dev || stb.st_ino != c->ino)
				continue;
			c->o.removed = unlinkat(s->objects_fd, c->o.rel, 0) == 0 ? 1 : -errno;
		}
		if ((r = sc->cb(&c->o, sc->arg)) < 0)
			goto out;
	}
out:
	if (remove) {
		/* Nothing was written: ending the transaction releases the lock. */
		if (r < 0)
			mz_store_rollback(s);
		else
			r = mz_store_commit(s, err);
	}
	return r;
}

int store_scan_orphans(mz_store *s, bool remove,
		       int (*cb)(const struct store_orphan *, void *), void *arg,
		       mz_error_t *err)
{
	struct scan sc = {.s = s, .now = now_ns(), .grace = store_orphan_grace_ns(),
			  .cb = cb, .arg = arg};
	/* Ids first, files second: a row committed in between has its file
	 * already linked, so at worst it looks like a candidate and is settled
	 * by the fresh look below. */
	int r = load_ids(s, &sc.ids, err);
	for (unsigned dir = 0; r >= 0 && dir < 256; dir++) {
		r = scan_dir(&sc, dir, remove);
		if (r < 0 && (err == NULL || *err == NULL))
			r = mz_error_sys(err, -r, "cannot scan %s/objects/%02x", s->root, dir);
	}
	if (r >= 0 && sc.nold > 0)
		r = settle_old(&sc, remove, err);
	store_idlist_free(&sc.ids);
	free(sc.old);
	return r < 0 ? r : 0;
}

/* ---- garbage layers ----------------------------------------------------------- */

int store_layer_garbage(mz_store *s, mz_lid id, const char **why, mz_error_t *err)
{
	*why = NULL;
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT kind, name IS NULL, building, owner_pid, owner_start, "
			      "EXISTS (SELECT 1 FROM layer c WHERE c.parent = l.id) "
			      "FROM layer l WHERE id = ?",
			      &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_dberr(s, err, "read layer");
	int kind = sqlite3_column_int(st, 0);
	bool anon = sqlite3_column_int(st, 1);
	bool building = sqlite3_column_int(st, 2);
	pid_t pid = sqlite3_column_int(st, 3);
	int64_t start = sqlite3_column_int64(st, 4);
	bool children = sqlite3_column_int(st, 5);
	if (children)
		return 0;
	if (building) {
		if (!store_owner_alive(pid, start))
			*why = "dead-build";
	} else if (kind == MZ_LAYER_TREE) {
		if (anon && !store_owner_alive(pid, start))
			*why = "dead-tree";
	} else if (anon) {
		*why = "anon-version";
	}
	return 0;
}

int store_layer_collect(mz_store *s, mz_lid id, mz_error_t *err)
{
	int n = 0;
	while (id) {
		const char *why;
		int r = store_layer_garbage(s, id, &why, err);
		if (r < 0)
			return r;
		if (why == NULL)
			break;
		struct mz_layer l;
		if ((r = mz_layer_get(s, id, &l, err)) < 0)
			return r;
		if ((r = store_layer_delete_rows(s, id, err)) < 0)
			return r;
		n++;
		id = l.parent;
	}
	return n;
}

int store_layer_collect_tx(mz_store *s, mz_lid id, int64_t *objects, int64_t *bytes,
			   mz_error_t *err)
{
	int r = mz_store_begin(s, err);
	if (r < 0)
		return r;
	size_t mark = s->pending_n;
	struct store_idlist files = {0};
	int n = store_layer_collect(s, id, err);
	store_take_pending(s, mark, &files);
	if (n < 0) {
		mz_store_rollback(s);
		store_idlist_free(&files);
		return n;
	}
	if ((r = mz_store_commit(s, err)) == 0) {
		int64_t b = 0;
		if (objects)
			*objects += files.n;
		r = store_unlink_durably(s, &files, &b, err);
		if (bytes)
			*bytes += b;
	}
	store_idlist_free(&files);
	return r < 0 ? r : n;
}
