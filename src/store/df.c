/*
 * df.c — `store df` and `store info`: where the space of the store goes.
 *
 * Per layer (image, version, tree): its own inode rows, their logical bytes
 * (sum of the sizes of the objects its rows name), the bytes of objects only
 * this layer names (what removing it could give back) and of objects it
 * shares with other layers.  Totals: objects, their bytes, what they take
 * on disk (st_blocks) and what sharing and dedup save (logical - physical).
 *
 * Everything per layer is SQL aggregates, so a store of 200 000 objects
 * costs one pass over the catalog plus one stat per object file (the
 * on-disk total, and the true size of private objects, whose catalog size
 * is not kept up to date: their writes go straight to the file).  The
 * whole report reads one snapshot of the catalog.
 */
#include "storeInt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/util.h"

struct totals {
	int64_t objects, sealed, unref, unref_bytes, physical, disk, missing;
	int64_t logical, layers, catalog;
};

static int64_t catalog_bytes(mz_store *s)
{
	int64_t n = 0;
	struct stat stb;
	if (fstatat(s->root_fd, "catalog.db", &stb, 0) == 0)
		n += stb.st_size;
	if (fstatat(s->root_fd, "catalog.db-wal", &stb, 0) == 0)
		n += stb.st_size;
	return n;
}

/* One stat per object: disk use, and private objects' real sizes into
 * temp.maint_psize for the aggregates. */
static int df_stat_objects(mz_store *s, struct totals *t, mz_error_t *err)
{
	int r = store_exec(s,
			   "CREATE TEMP TABLE IF NOT EXISTS maint_psize(id INTEGER PRIMARY KEY, "
			   "size INTEGER NOT NULL); DELETE FROM temp.maint_psize;",
			   err);
	cleanup_stmt sqlite3_stmt *st = NULL, *ins = NULL;
	if (r == 0)
		r = store_prepare(s, "SELECT id, hash IS NULL FROM object", &st, err);
	if (r == 0)
		r = store_prepare(s, "INSERT INTO temp.maint_psize VALUES (?, ?)", &ins, err);
	if (r < 0)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		mz_oid id = sqlite3_column_int64(st, 0);
		char rel[32];
		struct stat stb;
		mz_object_relpath(id, rel);
		if (fstatat(s->objects_fd, rel, &stb, AT_SYMLINK_NOFOLLOW) < 0) {
			t->missing++;
			continue;
		}
		t->disk += (int64_t)stb.st_blocks * 512;
		if (!sqlite3_column_int(st, 1))
			continue;
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, id);
		sqlite3_bind_int64(ins, 2, stb.st_size);
		if (sqlite3_step(ins) != SQLITE_DONE)
			return store_dberr(s, err, "df");
	}
	if (rc != SQLITE_DONE)
		return store_dberr(s, err, "list objects");
	return 0;
}

static int df_totals(mz_store *s, struct totals *t, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(s,
			      "SELECT COUNT(*), IFNULL(SUM(o.hash IS NOT NULL), 0), "
			      "IFNULL(SUM(o.refs <= 0), 0), "
			      "IFNULL(SUM(CASE WHEN o.refs <= 0 THEN IFNULL(p.size, o.size) END), 0), "
			      "IFNULL(SUM(IFNULL(p.size, o.size)), 0) "
			      "FROM object o LEFT JOIN temp.maint_psize p ON p.id = o.id",
			      &st, err);
	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_dberr(s, err, "df totals");
	t->objects = sqlite3_column_int64(st, 0);
	t->sealed = sqlite3_column_int64(st, 1);
	t->unref = sqlite3_column_int64(st, 2);
	t->unref_bytes = sqlite3_column_int64(st, 3);
	t->physical = sqlite3_column_int64(st, 4);
	t->catalog = catalog_bytes(s);
	return 0;
}

static const char layers_sql[] =
	"WITH sz(id, size) AS (SELECT o.id, IFNULL(p.size, o.size) FROM object o "
	"  LEFT JOIN temp.maint_psize p ON p.id = o.id), "
	"lo(layer, object) AS (SELECT DISTINCT layer, object FROM inode "
	"  WHERE object IS NOT NULL), "
	"nl(object, n) AS (SELECT object, COUNT(*) FROM lo GROUP BY object), "
	"ex(layer, excl, shared) AS (SELECT lo.layer, "
	"  SUM(CASE WHEN nl.n = 1 THEN sz.size ELSE 0 END), "
	"  SUM(CASE WHEN nl.n > 1 THEN sz.size ELSE 0 END) "
	"  FROM lo JOIN nl ON nl.object = lo.object JOIN sz ON sz.id = lo.object "
	"  GROUP BY lo.layer), "
	"lg(layer, inodes, logical) AS (SELECT i.layer, COUNT(*), SUM(IFNULL(sz.size, 0)) "
	"  FROM inode i LEFT JOIN sz ON sz.id = i.object GROUP BY i.layer) "
	"SELECT l.id, IFNULL(l.parent, 0), l.kind, IFNULL(l.name, ''), l.is_image, l.building, "
	"  IFNULL(lg.inodes, 0), IFNULL(lg.logical, 0), IFNULL(ex.excl, 0), "
	"  IFNULL(ex.shared, 0) "
	"FROM layer l LEFT JOIN lg ON lg.layer = l.id LEFT JOIN ex ON ex.layer = l.id "
	"ORDER BY l.kind, l.is_image DESC, l.name IS NULL, l.name, l.id";

static const char *kind_name(int kind, bool is_image, bool building)
{
	if (building)
		return "build";
	return kind == MZ_LAYER_TREE ? "tree" : is_image ? "image" : "version";
}

static int df_layers(mz_store *s, bool json, FILE *out, struct totals *t, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(s, layers_sql, &st, err);
	if (r < 0)
		return r;
	if (json)
		fputs("{\"layers\":[", out);
	else
		fprintf(out, "%-6s %-8s %-24s %9s %11s %11s %11s\n", "LAYER", "KIND", "NAME",
			"INODES", "LOGICAL", "EXCLUSIVE", "SHARED");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0), parent = sqlite3_column_int64(st, 1);
		const char *name = (const char *)sqlite3_column_text(st, 3);
		const char *kind = kind_name(sqlite3_column_int(st, 2), sqlite3_column_int(st, 4),
					     sqlite3_column_int(st, 5));
		int64_t inodes = sqlite3_column_int64(st, 6), logical = sqlite3_column_int64(st, 7);
		int64_t excl = sqlite3_column_int64(st, 8), shared = sqlite3_column_int64(st, 9);
		t->logical += logical;
		if (json) {
			fprintf(out,
				"%s{\"id\":%" PRId64 ",\"parent\":%" PRId64 ",\"kind\":\"%s\","
				"\"name\":",
				t->layers ? "," : "", id, parent, kind);
			if (*name)
				json_put_str(out, name);
			else
				fputs("null", out);
			fprintf(out,
				",\"inodes\":%" PRId64 ",\"logical_bytes\":%" PRId64
				",\"exclusive_bytes\":%" PRId64 ",\"shared_bytes\":%" PRId64 "}",
				inodes, logical, excl, shared);
		} else {
			char b1[32], b2[32], b3[32];
			fprintf(out, "%-6" PRId64 " %-8s %-24s %9" PRId64 " %11s %11s %11s\n", id,
				kind, *name ? name : "-", inodes, fmt_bytes(b1, logical),
				fmt_bytes(b2, excl), fmt_bytes(b3, shared));
		}
		t->layers++;
	}
	if (rc != SQLITE_DONE)
		return store_dberr(s, err, "df");
	return 0;
}

static void df_print_totals(const struct totals *t, bool json, FILE *out)
{
	int64_t saved = t->logical - t->physical;
	if (json) {
		fprintf(out,
			"],\"totals\":{\"layers\":%" PRId64 ",\"objects\":%" PRId64
			",\"sealed_objects\":%" PRId64 ",\"private_objects\":%" PRId64
			",\"unreferenced_objects\":%" PRId64 ",\"unreferenced_bytes\":%" PRId64
			",\"missing_files\":%" PRId64 ",\"physical_bytes\":%" PRId64
			",\"disk_bytes\":%" PRId64 ",\"logical_bytes\":%" PRId64
			",\"saved_bytes\":%" PRId64 ",\"catalog_bytes\":%" PRId64 "}}\n",
			t->layers, t->objects, t->sealed, t->objects - t->sealed, t->unref,
			t->unref_bytes, t->missing, t->physical, t->disk, t->logical, saved,
			t->catalog);
		return;
	}
	char b1[32], b2[32], b3[32];
	fprintf(out, "\nobjects  %" PRId64 " (%" PRId64 " sealed, %" PRId64 " private)",
		t->objects, t->sealed, t->objects - t->sealed);
	if (t->unref)
		fprintf(out, ", %" PRId64 " unreferenced (%s, 'mezzo store gc' frees them)",
			t->unref, fmt_bytes(b1, t->unref_bytes));
	if (t->missing)
		fprintf(out, ", %" PRId64 " files missing (see 'mezzo store check')", t->missing);
	fprintf(out, "\ndata     %s, %s allocated on disk\n", fmt_bytes(b1, t->physical),
		fmt_bytes(b2, t->disk));
	fprintf(out, "logical  %s in %" PRId64 " layer%s: %s saved by sharing and dedup\n",
		fmt_bytes(b1, t->logical), t->layers, t->layers == 1 ? "" : "s", fmt_bytes(b3, saved));
	fprintf(out, "catalog  %s\n", fmt_bytes(b2, t->catalog));
}

int mz_store_df(mz_store *s, bool json, FILE *out, mz_error_t *err)
{
	if (s->tx_depth > 0)
		return mz_error(err, EBUSY, "internal: store df inside a transaction");
	/* A deferred transaction: one snapshot, and no write lock (only the
	 * connection's own temp tables are written). */
	int r = store_exec(s, "BEGIN", err);
	if (r < 0)
		return r;
	struct totals t = {0};
	r = df_stat_objects(s, &t, err);
	if (r == 0)
		r = df_totals(s, &t, err);
	if (r == 0)
		r = df_layers(s, json, out, &t, err);
	if (r == 0)
		df_print_totals(&t, json, out);
	store_exec(s, "ROLLBACK", NULL);
	store_exec(s, "DROP TABLE IF EXISTS temp.maint_psize", NULL);
	fflush(out);
	return r;
}

/* Root, catalog size, and counts of objects and layers. */
int mz_store_info(mz_store *s, bool json, FILE *out, mz_error_t *err)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = store_prepare(
		s,
		"SELECT (SELECT COUNT(*) FROM object), "
		"(SELECT COUNT(*) FROM object WHERE hash IS NOT NULL), "
		"(SELECT COUNT(*) FROM layer WHERE kind = 1 AND is_image = 1 AND building = 0), "
		"(SELECT COUNT(*) FROM layer WHERE kind = 1 AND is_image = 0 AND building = 0), "
		"(SELECT COUNT(*) FROM layer WHERE kind = 2), "
		"(SELECT COUNT(*) FROM layer WHERE building = 1), "
		"(SELECT COUNT(*) FROM inode), "
		"(SELECT value FROM meta WHERE key = 'schema')",
		&st, err);
	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_dberr(s, err, "store info");
	int64_t v[8];
	for (int i = 0; i < 8; i++)
		v[i] = sqlite3_column_int64(st, i);
	int64_t cat = catalog_bytes(s);
	if (json) {
		fputs("{\"root\":", out);
		json_put_str(out, s->root);
		fprintf(out,
			",\"schema\":%" PRId64 ",\"catalog_bytes\":%" PRId64 ",\"objects\":%" PRId64
			",\"sealed_objects\":%" PRId64 ",\"private_objects\":%" PRId64
			",\"images\":%" PRId64 ",\"versions\":%" PRId64 ",\"trees\":%" PRId64
			",\"building\":%" PRId64 ",\"inodes\":%" PRId64 "}\n",
			v[7], cat, v[0], v[1], v[0] - v[1], v[2], v[3], v[4], v[5], v[6]);
	} else {
		char b[32];
		fprintf(out, "root      %s\n", s->root);
		fprintf(out, "catalog   %s/catalog.db, %s, schema %" PRId64 "\n", s->root,
			fmt_bytes(b, cat), v[7]);
		fprintf(out, "objects   %" PRId64 " (%" PRId64 " sealed, %" PRId64 " private)\n",
			v[0], v[1], v[0] - v[1]);
		fprintf(out,
			"layers    %" PRId64 " images, %" PRId64 " other versions, %" PRId64
			" trees, %" PRId64 " being built\n",
			v[2], v[3], v[4], v[5]);
		fprintf(out, "inodes    %" PRId64 " rows\n", v[6]);
	}
	fflush(out);
	return 0;
}
