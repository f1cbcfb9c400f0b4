/*
 * check.c — `store check`: verify the catalog against the object files.
 *
 * Every inconsistency is one line on `out`:
 *     problem: <kind>: <detail>
 * and, when --repair fixed it, one more:
 *     repaired: <kind>: <detail>
 * Things worth knowing that are not problems (a young file with no row yet)
 * are `note:` lines.  Repairs never lose data: they recompute what is
 * derived (refcounts, next_ino, a sealed file's mode), drop leftovers of
 * crashed processes, and remove orphan files; a corrupt object is reported
 * and kept.
 *
 * The check reads without holding the write lock, so it can run next to live
 * trees and imports.  What a concurrent commit could make look wrong (a file
 * gone with its row, a file whose row just committed) is looked at again
 * before it is reported, and each repair re-checks its condition inside its
 * own short write transaction.
 */
#include "storeInt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/util.h"

struct chk {
	mz_store *s;
	bool repair, verify;
	FILE *out;
	struct mz_check_report *rep;
};

static void say(struct chk *c, const char *tag, const char *kind, const char *fmt, va_list ap)
{
	if (c->out == NULL)
		return;
	fprintf(c->out, "%s: ", tag);
	if (kind)
		fprintf(c->out, "%s: ", kind);
	vfprintf(c->out, fmt, ap);
	fputc('\n', c->out);
}

__attribute__((format(printf, 3, 4))) static void problem(struct chk *c, const char *kind,
							   const char *fmt, ...)
{
	va_list ap;
	c->rep->problems++;
	va_start(ap, fmt);
	say(c, "problem", kind, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void fixed(struct chk *c, const char *kind,
							 const char *fmt, ...)
{
	va_list ap;
	c->rep->repaired++;
	va_start(ap, fmt);
	say(c, "repaired", kind, fmt, ap);
	va_end(ap);
}

/* Leftovers of a process killed at a bad moment (a crashed import, a killed
 * server's anonymous tree, an object file whose row never committed): not an
 * inconsistency, since a crash at any moment must leave a consistent store,
 * but space that `store gc` (or check --repair) reclaims. */
__attribute__((format(printf, 3, 4))) static void garbage(struct chk *c, const char *kind,
							   const char *fmt, ...)
{
	va_list ap;
	c->rep->garbage++;
	va_start(ap, fmt);
	say(c, "garbage", kind, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void note(struct chk *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(c, "note", NULL, fmt, ap);
	va_end(ap);
}

/* "tree 'a'", "image 'base'", "anonymous version 7", "layer 9 (missing)" */
static const char *layer_desc(mz_store *s, mz_lid id, char buf[300])
{
	struct mz_layer l;
	if (mz_layer_get(s, id, &l, NULL) < 0) {
		snprintf(buf, 300, "layer %lld (missing)", (long long)id);
		return buf;
	}
	const char *kind = l.kind == MZ_LAYER_TREE ? "tree" : l.is_image ? "image" : "version";
	if (l.name[0])
		snprintf(buf, 300, "%s%s '%s' (layer %lld)", l.building ? "building " : "", kind,
			 l.name, (long long)id);
	else
		snprintf(buf, 300, "%sanonymous %s %lld", l.building ? "building " : "", kind,
			 (long long)id);
	return buf;
}

/* Run a one-off repair statement binding ?1 (and ?2) in its own transaction;
 * returns the number of rows changed. */
static int repair_exec(struct chk *c, const char *sql, int64_t a1, int64_t a2, mz_error_t *err)
{
	int r = mz_store_begin(c->s, err);
	if (r < 0)
		return r;
	cleanup_stmt sqlite3_stmt *st = NULL;
	if ((r = store_prepare(c->s, sql, &st, err)) == 0) {
		sqlite3_bind_int64(st, 1, a1);
		if (sqlite3_bind_parameter_count(st) >= 2)
			sqlite3_bind_int64(st, 2, a2);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_dberr(c->s, err, "repair");
		else
			r = sqlite3_changes(c->s->db);
	}
	store_finalizep(&st);
	if (r < 0) {
		mz_store_rollback(c->s);
		return r;
	}
	int rc = mz_store_commit(c->s, err);
	return rc < 0 ? rc : r;
}

/* ---- the catalog itself ---------------------------------------------------- */

static int check_integrity(struct chk *c, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(c->s, "PRAGMA integrity_check", &st, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *msg = (const char *)sqlite3_column_text(st, 0);
		if (msg && strcmp(msg, "ok") != 0)
			problem(c, "integrity", "catalog: %s", msg);
	}
	if (rc != SQLITE_DONE)
		problem(c, "integrity", "catalog: %s", sqlite3_errmsg(c->s->db));
	return 0;
}

static int check_next_ino(struct chk *c, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(c->s,
			      "SELECT (SELECT value FROM meta WHERE key = 'next_ino'), "
			      "MAX((SELECT IFNULL(MAX(ino), 0) FROM inode), "
			      "(SELECT IFNULL(MAX(ino), 0) FROM dentry), "
			      "(SELECT IFNULL(MAX(ino), 0) FROM xattr), "
			      "(SELECT IFNULL(MAX(root_ino), 0) FROM layer))",
			      &st, err);
	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_dberr(c->s, err, "read next_ino");
	bool missing = sqlite3_column_type(st, 0) == SQLITE_NULL;
	int64_t next = sqlite3_column_int64(st, 0), max = sqlite3_column_int64(st, 1);
	store_finalizep(&st);
	if (!missing && next > max)
		return 0;
	if (missing)
		problem(c, "next-ino", "meta has no next_ino (highest inode in use: %lld)",
			(long long)max);
	else
		problem(c, "next-ino", "next_ino %lld is not above the highest inode in use %lld",
			(long long)next, (long long)max);
	if (!c->repair)
		return 0;
	r = repair_exec(c,
			"INSERT INTO meta(key, value) VALUES ('next_ino', ?1) "
			"ON CONFLICT(key) DO UPDATE SET value = MAX(value, ?1)",
			max + 1 > 2 ? max + 1 : 2, 0, err);
	if (r < 0)
		return r;
	fixed(c, "next-ino", "next_ino set to %lld", (long long)(max + 1 > 2 ? max + 1 : 2));
	return 0;
}

/* ---- layers ----------------------------------------------------------------- */

/* Builds and anonymous trees whose owner is gone (crashed imports, servers). */
static int check_dead_layers(struct chk *c, mz_error_t *err)
{
	struct store_idlist ids = {0};
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(c->s,
			      "SELECT id, owner_pid, owner_start FROM layer "
			      "WHERE building = 1 OR (kind = 2 AND name IS NULL)",
			      &st, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (!store_owner_alive(sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2)))
			store_idlist_push(&ids, sqlite3_column_int64(st, 0));
	if (rc != SQLITE_DONE)
		r = store_dberr(c->s, err, "list layers");
	store_finalizep(&st);
	for (size_t i = 0; r >= 0 && i < ids.n; i++) {
		char d[300];
		struct mz_layer l;
		if (mz_layer_get(c->s, ids.v[i], &l, NULL) < 0)
			continue; /* gone meanwhile */
		const char *kind = l.building ? "dead-build" : "dead-tree";
		layer_desc(c->s, l.id, d);
		garbage(c, kind, "%s: its owner process is gone (%s)", d,
			l.building ? "a crashed import" : "a crashed or killed server");
		if (!c->repair)
			continue;
		int n = store_layer_collect_tx(c->s, l.id, NULL, NULL, err);
		if (n > 0)
			note(c, "%s removed", d);
		else if (n == 0)
			note(c, "%s not removed: other layers are built on it", d);
		r = n;
	}
	store_idlist_free(&ids);
	return r < 0 ? r : 0;
}

struct lrow {
	mz_lid id, parent;
};

static int cmp_lrow(const void *a, const void *b)
{
	mz_lid x = ((const struct lrow *)a)->id, y = ((const struct lrow *)b)->id;
	return x < y ? -1 : x > y;
}

/* Parents that are missing or no version, cycles; and temp.maint_anc(layer,
 * anc): each layer with every layer of its chain, for the dentry check. */
static int check_layer_chains(struct chk *c, mz_error_t *err)
{
	struct lrow *L = NULL;
	size_t n = 0, cap = 0;
	int r = store_exec(c->s,
			   "CREATE TEMP TABLE IF NOT EXISTS maint_anc(layer INTEGER NOT NULL, "
			   "anc INTEGER NOT NULL, PRIMARY KEY(layer, anc)) WITHOUT ROWID;"
			   "DELETE FROM temp.maint_anc;",
			   err);
	cleanup_stmt sqlite3_stmt *st = NULL, *ins = NULL;
	if (r == 0)
		r = store_prepare(c->s,
				  "SELECT l.id, IFNULL(l.parent, 0), p.id IS NULL, IFNULL(p.kind, 0) "
				  "FROM layer l LEFT JOIN layer p ON p.id = l.parent",
				  &st, err);
	if (r == 0)
		r = store_prepare(c->s, "INSERT OR IGNORE INTO temp.maint_anc VALUES (?, ?)", &ins,
				  err);
	if (r < 0)
		return r;
	int rc;
	char d[300];
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			L = xrealloc(L, cap * sizeof(*L));
		}
		L[n].id = sqlite3_column_int64(st, 0);
		L[n].parent = sqlite3_column_int64(st, 1);
		if (L[n].parent && sqlite3_column_int(st, 2))
			problem(c, "missing-parent", "%s: its parent layer %lld does not exist",
				layer_desc(c->s, L[n].id, d), (long long)L[n].parent);
		else if (L[n].parent && sqlite3_column_int(st, 3) != MZ_LAYER_VERSION)
			problem(c, "bad-parent", "%s: its parent layer %lld is not a version",
				layer_desc(c->s, L[n].id, d), (long long)L[n].parent);
		n++;
	}
	if (rc != SQLITE_DONE) {
		free(L);
		return store_dberr(c->s, err, "list layers");
	}
	if (n > 1)
		qsort(L, n, sizeof(*L), cmp_lrow);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct lrow *x = &L[i];
		size_t steps = 0;
		for (; x != NULL && steps <= n; steps++) {
			sqlite3_reset(ins);
			sqlite3_bind_int64(ins, 1, L[i].id);
			sqlite3_bind_int64(ins, 2, x->id);
			if (sqlite3_step(ins) != SQLITE_DONE) {
				r = store_dberr(c->s, err, "layer chains");
				break;
			}
			struct lrow key = {.id = x->parent};
			x = x->parent ? bsearch(&key, L, n, sizeof(*L), cmp_lrow) : NULL;
		}
		if (steps > n)
			problem(c, "layer-cycle", "%s: its chain of parents loops",
				layer_desc(c->s, L[i].id, d));
	}
	free(L);
	return r;
}

static void print_name(char *buf, size_t cap, const void *name, size_t len)
{
	const unsigned char *p = name;
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			buf[o++] = p[i];
		else
			o += snprintf(buf + o, cap - o, "\\x%02x", p[i]);
	}
	buf[o] = '\0';
}

/* Rows of layers that do not exist, and dentries whose inode (or directory)
 * has no row in their layer's chain. */
static int check_rows(struct chk *c, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(
		c->s,
		"SELECT 'inode', layer, COUNT(*) FROM inode WHERE layer NOT IN "
		"(SELECT id FROM layer) GROUP BY layer UNION ALL "
		"SELECT 'dentry', layer, COUNT(*) FROM dentry WHERE layer NOT IN "
		"(SELECT id FROM layer) GROUP BY layer UNION ALL "
		"SELECT 'xattr', layer, COUNT(*) FROM xattr WHERE layer NOT IN "
		"(SELECT id FROM layer) GROUP BY layer",
		&st, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		problem(c, "lost-rows", "%lld %s rows belong to layer %lld, which does not exist",
			(long long)sqlite3_column_int64(st, 2), sqlite3_column_text(st, 0),
			(long long)sqlite3_column_int64(st, 1));
	if (rc != SQLITE_DONE)
		return store_dberr(c->s, err, "rows of missing layers");
	store_finalizep(&st);

	/* A whiteout (ino 0) names nothing; its directory must still exist. */
	r = store_prepare(
		c->s,
		"SELECT * FROM (SELECT d.layer, d.parent, d.name, d.ino, "
		"d.ino != 0 AND NOT EXISTS (SELECT 1 FROM temp.maint_anc a JOIN inode i "
		"ON i.layer = a.anc AND i.ino = d.ino WHERE a.layer = d.layer) AS noino, "
		"NOT EXISTS (SELECT 1 FROM temp.maint_anc a JOIN inode i ON i.layer = a.anc "
		"AND i.ino = d.parent WHERE a.layer = d.layer) AS nodir "
		"FROM dentry d WHERE d.layer IN (SELECT id FROM layer)) WHERE noino OR nodir",
		&st, err);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char d[300], name[1100];
		mz_lid layer = sqlite3_column_int64(st, 0);
		print_name(name, sizeof(name), sqlite3_column_blob(st, 2),
			   sqlite3_column_bytes(st, 2));
		layer_desc(c->s, layer, d);
		long long dir = sqlite3_column_int64(st, 1), ino = sqlite3_column_int64(st, 3);
		if (ino != 0 && sqlite3_column_int(st, 4))
			problem(c, "dangling-dentry",
				"%s: entry '%s' of directory %lld names inode %lld, which no layer "
				"of its chain has",
				d, name, dir, ino);
		if (sqlite3_column_int(st, 5))
			problem(c, "dangling-dentry",
				"%s: entry '%s' is in directory %lld, which no layer of its chain has",
				d, name, dir);
	}
	if (rc != SQLITE_DONE)
		return store_dberr(c->s, err, "check dentries");
	return 0;
}

/* ---- objects: rows ------------------------------------------------------------- */

static int check_refs(struct chk *c, mz_error_t *err)
{
	/* Inode rows naming an object that has no row. */
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(c->s,
			      "SELECT i.layer, i.ino, i.object FROM inode i WHERE i.object IS NOT "
			      "NULL AND NOT EXISTS (SELECT 1 FROM object o WHERE o.id = i.object)",
			      &st, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char d[300];
		problem(c, "missing-object", "%s: inode %lld names object %lld, which does not exist",
			layer_desc(c->s, sqlite3_column_int64(st, 0), d),
			(long long)sqlite3_column_int64(st, 1),
			(long long)sqlite3_column_int64(st, 2));
	}
	if (rc != SQLITE_DONE)
		return store_dberr(c->s, err, "check inode objects");
	store_finalizep(&st);

	/* Refcounts against the inode rows that really name each object. */
	r = store_prepare(c->s,
			  "SELECT o.id, o.refs, IFNULL(n.n, 0) FROM object o LEFT JOIN "
			  "(SELECT object, COUNT(*) AS n FROM inode WHERE object IS NOT NULL "
			  "GROUP BY object) n ON n.object = o.id WHERE o.refs != IFNULL(n.n, 0)",
			  &st, err);
	if (r < 0)
		return r;
	struct store_idlist bad = {0};
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		problem(c, "refs", "object %lld has refs %lld but %lld inode rows name it",
			(long long)sqlite3_column_int64(st, 0),
			(long long)sqlite3_column_int64(st, 1),
			(long long)sqlite3_column_int64(st, 2));
		store_idlist_push(&bad, sqlite3_column_int64(st, 0));
	}
	if (rc != SQLITE_DONE)
		r = store_dberr(c->s, err, "check refs");
	store_finalizep(&st);
	for (size_t i = 0; r >= 0 && c->repair && i < bad.n; i++) {
		r = repair_exec(c,
				"UPDATE object SET refs = (SELECT COUNT(*) FROM inode "
				"WHERE object = ?1) WHERE id = ?1",
				bad.v[i], 0, err);
		if (r >= 0)
			fixed(c, "refs", "object %lld: refs recounted", (long long)bad.v[i]);
	}
	store_idlist_free(&bad);
	return r < 0 ? r : 0;
}

/* ---- objects: files ------------------------------------------------------------- */

static void check_sealed_file(struct chk *c, mz_oid id, const uint8_t *hash, int64_t size,
			      const struct stat *stb, const char *rel)
{
	if (stb->st_size != size)
		problem(c, "corrupt",
			"sealed object %lld: file objects/%s has %lld bytes, the catalog says %lld",
			(long long)id, rel, (long long)stb->st_size, (long long)size);
	if ((stb->st_mode & 07777) != 0400) {
		problem(c, "mode", "sealed object %lld: file objects/%s has mode %04o, not 0400",
			(long long)id, rel, (unsigned)(stb->st_mode & 07777));
		if (c->repair && fchmodat(c->s->objects_fd, rel, 0400, 0) == 0)
			fixed(c, "mode", "sealed object %lld: mode set to 0400", (long long)id);
	}
	if (!c->verify || stb->st_size != size)
		return;
	cleanup_close int fd = openat(c->s->objects_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	uint8_t got[MZ_HASH_LEN];
	int r = fd < 0 ? -errno : mz_hash_fd(fd, got);
	if (r < 0) {
		problem(c, "unreadable", "sealed object %lld: cannot read objects/%s: %s",
			(long long)id, rel, strerror(-r));
		return;
	}
	if (memcmp(got, hash, MZ_HASH_LEN) != 0) {
		char want[MZ_HASH_HEX], have[MZ_HASH_HEX];
		mz_hash_hex(hash, want);
		mz_hash_hex(got, have);
		problem(c, "corrupt", "sealed object %lld: content hash %s, the catalog says %s",
			(long long)id, have, want);
	}
}

/* A row whose file was missing during the scan: still so now? */
static int settle_missing(struct chk *c, mz_oid id, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(c->s, "SELECT hash IS NOT NULL, refs FROM object WHERE id = ?", &st,
			      err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0; /* dropped together with its file: fine */
	if (rc != SQLITE_ROW)
		return store_dberr(c->s, err, "read object");
	bool sealed = sqlite3_column_int(st, 0);
	int64_t refs = sqlite3_column_int64(st, 1);
	store_finalizep(&st);
	char rel[32];
	struct stat stb;
	mz_object_relpath(id, rel);
	if (fstatat(c->s->objects_fd, rel, &stb, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	problem(c, "missing-file", "%s object %lld (%lld refs) has no file objects/%s",
		sealed ? "sealed" : "private", (long long)id, (long long)refs, rel);
	if (!c->repair || refs > 0)
		return 0;
	/* Nothing names it: dropping the row loses nothing. */
	r = repair_exec(c, "DELETE FROM object WHERE id = ?1 AND refs <= 0", id, 0, err);
	if (r > 0)
		fixed(c, "missing-file", "object %lld: its unreferenced row dropped", (long long)id);
	return r < 0 ? r : 0;
}

static int check_object_files(struct chk *c, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(c->s, "SELECT id, hash, size FROM object ORDER BY id", &st, err);
	if (r < 0)
		return r;
	struct store_idlist missing = {0};
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		mz_oid id = sqlite3_column_int64(st, 0);
		char rel[32];
		struct stat stb;
		mz_object_relpath(id, rel);
		if (fstatat(c->s->objects_fd, rel, &stb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				store_idlist_push(&missing, id);
			else
				problem(c, "unreadable", "object %lld: cannot stat objects/%s: %s",
					(long long)id, rel, strerror(errno));
			continue;
		}
		if (!S_ISREG(stb.st_mode)) {
			problem(c, "not-a-file", "object %lld: objects/%s is not a regular file",
				(long long)id, rel);
			continue;
		}
		if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
			if (sqlite3_column_bytes(st, 1) != MZ_HASH_LEN) {
				problem(c, "bad-hash", "object %lld: hash column is not %d bytes",
					(long long)id, MZ_HASH_LEN);
				continue;
			}
			uint8_t hash[MZ_HASH_LEN];
			memcpy(hash, sqlite3_column_blob(st, 1), MZ_HASH_LEN);
			check_sealed_file(c, id, hash, sqlite3_column_int64(st, 2), &stb, rel);
		}
	}
	if (rc != SQLITE_DONE)
		r = store_dberr(c->s, err, "list objects");
	store_finalizep(&st); /* ends the read: the fresh looks below see new commits */
	for (size_t i = 0; r >= 0 && i < missing.n; i++)
		r = settle_missing(c, missing.v[i], err);
	store_idlist_free(&missing);
	return r;
}

static int orphan_cb(const struct store_orphan *o, void *arg)
{
	struct chk *c = arg;
	switch (o->kind) {
	case STORE_ORPHAN_YOUNG:
		note(c, "objects/%s has no catalog row yet (%llds old): an import may be "
			"committing it, or a tree server may have made it ahead",
		     o->rel, (long long)o->age_s);
		break;
	case STORE_ORPHAN_OLD:
		garbage(c, "orphan-file", "objects/%s (%lld bytes, %llds old) has no catalog row",
			o->rel, (long long)o->bytes, (long long)o->age_s);
		if (o->removed > 0)
			note(c, "objects/%s removed", o->rel);
		else if (o->removed < 0)
			note(c, "cannot remove objects/%s: %s", o->rel, strerror(-o->removed));
		break;
	case STORE_STRAY_FILE:
		problem(c, "stray-file",
			"objects/%s is not an object file (name, place or type): remove it by hand",
			o->rel);
		break;
	case STORE_MISSING_DIR:
		problem(c, "missing-dir", "objects/%s is missing", o->rel);
		if (o->removed > 0)
			fixed(c, "missing-dir", "objects/%s made", o->rel);
		break;
	}
	return 0;
}

int mz_store_check(mz_store *s, bool repair, bool verify_hashes, FILE *out,
		   struct mz_check_report *rep, mz_error_t *err)
{
	struct mz_check_report dummy;
	if (rep == NULL)
		rep = &dummy;
	memset(rep, 0, sizeof(*rep));
	if (s->tx_depth > 0)
		return mz_error(err, EBUSY, "internal: store check inside a transaction");
	struct chk c = {.s = s, .repair = repair, .verify = verify_hashes, .out = out, .rep = rep};
	/* Crash leftovers go first, so what they held is not reported twice. */
	int r = check_integrity(&c, err);
	if (r == 0)
		r = check_dead_layers(&c, err);
	if (r == 0)
		r = check_layer_chains(&c, err);
	if (r == 0)
		r = check_rows(&c, err);
	if (r == 0)
		r = check_refs(&c, err);
	if (r == 0)
		r = check_next_ino(&c, err);
	if (r == 0)
		r = check_object_files(&c, err);
	if (r == 0)
		r = store_scan_orphans(s, repair, orphan_cb, &c, err);
	store_exec(s, "DROP TABLE IF EXISTS temp.maint_anc", NULL);
	if (out)
		fflush(out);
	return r;
}
