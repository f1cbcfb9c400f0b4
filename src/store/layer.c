/*
 * layer.c — versions, images and trees: the layers file trees are made of.
 *
 * A layer row names its parent; a tree's view is the chain from the tree up
 * to a root version.  Creating a tree inserts one row.  Snapshotting moves
 * the tree's own rows into a new version slid in under it, so the cost is the
 * number of changes and the tree keeps its id.
 */
#include "storeInt.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/util.h"

#define LAYER_COLS                                                                    \
	"id, IFNULL(parent, 0), kind, IFNULL(name, ''), is_image, building, root_ino, " \
	"created, depth"

static void layer_from_row(sqlite3_stmt *st, void *row)
{
	struct mz_layer *l = row;
	memset(l, 0, sizeof(*l));
	l->id = sqlite3_column_int64(st, 0);
	l->parent = sqlite3_column_int64(st, 1);
	l->kind = sqlite3_column_int(st, 2);
	snprintf(l->name, sizeof(l->name), "%s", (const char *)sqlite3_column_text(st, 3));
	l->is_image = sqlite3_column_int(st, 4);
	l->building = sqlite3_column_int(st, 5);
	l->root_ino = sqlite3_column_int64(st, 6);
	l->created_ns = sqlite3_column_int64(st, 7);
	l->depth = sqlite3_column_int(st, 8);
}

int mz_layer_get(mz_store *s, mz_lid id, struct mz_layer *out, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT " LAYER_COLS " FROM layer WHERE id = ?");
	sqlite3_bind_int64(st, 1, id);
	int r = store_row(s, st, layer_from_row, out, "read layer", err);
	if (r == 0)
		return mz_error(err, ENOENT, "no layer %lld", (long long)id);
	return r < 0 ? r : 0;
}

int mz_name_check(const char *name, const char *what, mz_error_t *err)
{
	size_t n = strlen(name);
	if (n == 0 || n > 128)
		return mz_error(err, EINVAL, "invalid %s name '%s': must be 1 to 128 characters",
				what, name);
	if (name[0] == '.' || name[0] == '-')
		return mz_error(err, EINVAL, "invalid %s name '%s': must not start with '.' or '-'",
				what, name);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = name[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return mz_error(err, EINVAL,
					"invalid %s name '%s': only letters, digits, '_', '.' and '-' "
					"are allowed",
					what, name);
	}
	return 0;
}

static int layer_find(mz_store *s, int kind, int image_only, const char *name,
		      struct mz_layer *out, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT " LAYER_COLS " FROM layer WHERE kind = ? AND "
					 "name = ? AND building = 0 AND (? = 0 OR is_image = 1)");
	sqlite3_bind_int(st, 1, kind);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, image_only);
	return store_row(s, st, layer_from_row, out, "find layer", err);
}

int mz_layer_resolve(mz_store *s, const char *spec, struct mz_layer *out, mz_error_t *err)
{
	static const struct {
		const char *prefix;
		int kind, image_only;
	} kinds[] = {
		{"image:", MZ_LAYER_VERSION, 1},
		{"version:", MZ_LAYER_VERSION, 0},
		{"tree:", MZ_LAYER_TREE, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		size_t pl = strlen(kinds[i].prefix);
		if (strncmp(spec, kinds[i].prefix, pl) != 0)
			continue;
		int r = layer_find(s, kinds[i].kind, kinds[i].image_only, spec + pl, out, err);
		if (r < 0)
			return r;
		if (r == 0)
			return mz_error(err, ENOENT, "no %.*s named '%s'", (int)pl - 1, spec,
					spec + pl);
		return 0;
	}
	struct mz_layer v, t;
	int rv = layer_find(s, MZ_LAYER_VERSION, 0, spec, &v, err);
	if (rv < 0)
		return rv;
	int rt = layer_find(s, MZ_LAYER_TREE, 0, spec, &t, err);
	if (rt < 0)
		return rt;
	if (rv && rt)
		return mz_error(err, EINVAL,
				"'%s' names both a %s and a tree: say 'image:%s', "
				"'version:%s' or 'tree:%s'",
				spec, v.is_image ? "image" : "version", spec, spec, spec);
	if (!rv && !rt)
		return mz_error(err, ENOENT,
				"no image, version or tree named '%s' (see 'mezzo image ls' and "
				"'mezzo fs ls')",
				spec);
	*out = rv ? v : t;
	return 0;
}

static int layer_insert(mz_store *s, mz_lid parent, int kind, const char *name,
			bool building, pid_t owner, mz_ino root, int depth, mz_lid *out,
			mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		s, "INSERT INTO layer(parent, kind, name, building, owner_pid, owner_start, "
		   "root_ino, created, depth) VALUES (NULLIF(?, 0), ?, ?, ?, ?, ?, ?, ?, ?)");
	sqlite3_bind_int64(st, 1, parent);
	sqlite3_bind_int(st, 2, kind);
	if (name)
		sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int(st, 4, building);
	sqlite3_bind_int(st, 5, owner);
	sqlite3_bind_int64(st, 6, owner ? store_pid_starttime(owner) : 0);
	sqlite3_bind_int64(st, 7, root);
	sqlite3_bind_int64(st, 8, now_ns());
	sqlite3_bind_int(st, 9, depth);
	if (sqlite3_step(st) != SQLITE_DONE) {
		if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT)
			return mz_error(err, EEXIST, "a %s named '%s' already exists",
					kind == MZ_LAYER_TREE ? "tree" : "version", name);
		return store_dberr(s, err, "insert layer");
	}
	*out = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int mz_version_begin(mz_store *s, mz_lid parent, uint32_t root_mode, mz_lid *out,
		     mz_error_t *err)
{
	int r = mz_store_begin(s, err);
	if (r < 0)
		return r;
	struct mz_layer p = {0};
	mz_ino root = 0;
	if (parent) {
		r = mz_layer_get(s, parent, &p, err);
		root = p.root_ino;
	} else {
		r = store_alloc_ino(s, &root, err);
	}
	if (r == 0)
		r = layer_insert(s, parent, MZ_LAYER_VERSION, NULL, true, getpid(), root,
				 p.depth + 1, out, err);
	if (r == 0 && !parent) {
		int64_t t = now_ns();
		sqlite3_stmt *st = store_stmt(
			s, "INSERT INTO inode(layer, ino, mode, uid, gid, nlink, atime, mtime, "
			   "ctime) VALUES (?, ?, ?, 0, 0, 2, ?, ?, ?)");
		sqlite3_bind_int64(st, 1, *out);
		sqlite3_bind_int64(st, 2, root);
		sqlite3_bind_int(st, 3, S_IFDIR | (root_mode & 07777));
		sqlite3_bind_int64(st, 4, t);
		sqlite3_bind_int64(st, 5, t);
		sqlite3_bind_int64(st, 6, t);
		r = store_step_done(s, st, err, "insert root inode");
	}
	if (r < 0) {
		mz_store_rollback(s);
		return r;
	}
	return mz_store_commit(s, err);
}

int mz_version_publish(mz_store *s, mz_lid id, const char *name, bool is_image,
		       mz_error_t *err)
{
	int r = mz_name_check(name, is_image ? "image" : "version", err);
	if (r < 0)
		return r;
	/* Object data must be on disk before the catalog says the version exists. */
	if (syncfs(s->objects_fd) < 0)
		return mz_error_sys(err, errno, "cannot sync the object store");
	sqlite3_stmt *st = store_stmt(s, "UPDATE layer SET name = ?, is_image = ?, building = 0, "
					 "owner_pid = 0, owner_start = 0 WHERE id = ? AND building = 1");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, is_image);
	sqlite3_bind_int64(st, 3, id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT)
			return mz_error(err, EEXIST, "an image or version named '%s' already exists",
					name);
		return store_dberr(s, err, "publish version");
	}
	if (sqlite3_changes(s->db) != 1)
		return mz_error(err, ENOENT, "internal: version %lld is not being built",
				(long long)id);
	return mz_store_sync(s, err);
}

int mz_tree_create(mz_store *s, mz_lid version, const char *name, pid_t owner_pid,
		   mz_lid *out, mz_error_t *err)
{
	int r;
	if (name && (r = mz_name_check(name, "tree", err)) < 0)
		return r;
	struct mz_layer v;
	if ((r = mz_layer_get(s, version, &v, err)) < 0)
		return r;
	if (v.kind != MZ_LAYER_VERSION || v.building)
		return mz_error(err, EINVAL, "a tree can only be made from a finished version");
	return layer_insert(s, version, MZ_LAYER_TREE, name, false, name ? 0 : owner_pid,
			    v.root_ino, v.depth + 1, out, err);
}

/* The version gets a copy of each hot inode's object; the tree keeps a row
 * naming the object that open files keep writing. */
static int snapshot_split_hot(mz_store *s, mz_lid tree, mz_lid nv, mz_ino ino,
			      mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		s, "SELECT IFNULL(object, 0) FROM inode WHERE layer = ? AND ino = ?");
	sqlite3_bind_int64(st, 1, nv);
	sqlite3_bind_int64(st, 2, ino);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return 0; /* not changed by this tree since the last snapshot */
	}
	mz_oid obj = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (obj == 0)
		return 0;
	mz_oid copy;
	int r = mz_object_copy(s, obj, -1, &copy, err);
	if (r < 0)
		return r;
	static const char *const sql[] = {
		"INSERT INTO inode SELECT ?1, ino, mode, uid, gid, nlink, rdev, size, atime, "
		"mtime, ctime, object, target FROM inode WHERE layer = ?2 AND ino = ?3",
		"INSERT INTO xattr SELECT ?1, ino, name, value FROM xattr "
		"WHERE layer = ?2 AND ino = ?3",
		"UPDATE inode SET object = ?4 WHERE layer = ?2 AND ino = ?3",
	};
	for (size_t i = 0; i < ARRAY_SIZE(sql); i++) {
		st = store_stmt(s, sql[i]);
		sqlite3_bind_int64(st, 1, tree);
		sqlite3_bind_int64(st, 2, nv);
		sqlite3_bind_int64(st, 3, ino);
		if (i == 2)
			sqlite3_bind_int64(st, 4, copy);
		if ((r = store_step_done(s, st, err, "snapshot open file")) < 0)
			return r;
	}
	return 0;
}

int mz_tree_snapshot_hot(mz_store *s, mz_lid tree, const char *version_name,
			 const mz_ino *hot, size_t nhot, mz_lid *out, mz_error_t *err)
{
	int r = mz_name_check(version_name, "version", err);
	if (r < 0)
		return r;
	struct mz_layer t;
	if ((r = mz_store_begin(s, err)) < 0)
		return r;
	if ((r = mz_layer_get(s, tree, &t, err)) < 0)
		goto fail;
	if (t.kind != MZ_LAYER_TREE) {
		r = mz_error(err, EINVAL, "'%s' is not a tree", t.name);
		goto fail;
	}
	mz_lid nv;
	r = layer_insert(s, t.parent, MZ_LAYER_VERSION, version_name, false, 0, t.root_ino,
			 t.depth, &nv, err);
	if (r < 0)
		goto fail;
	/* Unlinked-but-open inodes (nlink 0) stay with the tree. */
	static const char *const moves[] = {
		"UPDATE inode SET layer = ?1 WHERE layer = ?2 AND nlink > 0",
		"UPDATE dentry SET layer = ?1 WHERE layer = ?2",
		"UPDATE xattr SET layer = ?1 WHERE layer = ?2 AND ino IN "
		"(SELECT ino FROM inode WHERE layer = ?1)",
		"UPDATE layer SET parent = ?1, depth = depth + 1 WHERE id = ?2",
	};
	for (size_t i = 0; i < ARRAY_SIZE(moves); i++) {
		sqlite3_stmt *st = store_stmt(s, moves[i]);
		sqlite3_bind_int64(st, 1, nv);
		sqlite3_bind_int64(st, 2, tree);
		if ((r = store_step_done(s, st, err, "snapshot")) < 0)
			goto fail;
	}
	for (size_t i = 0; i < nhot; i++)
		if ((r = snapshot_split_hot(s, tree, nv, hot[i], err)) < 0)
			goto fail;
	if ((r = mz_store_commit(s, err)) < 0)
		return r;
	if (out)
		*out = nv;
	return mz_store_sync(s, err);
fail:
	mz_store_rollback(s);
	return r;
}

int mz_tree_snapshot(mz_store *s, mz_lid tree, const char *version_name, mz_lid *out,
		     mz_error_t *err)
{
	return mz_tree_snapshot_hot(s, tree, version_name, NULL, 0, out, err);
}

int mz_layer_owner(mz_store *s, mz_lid id, pid_t *pid, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT owner_pid, owner_start FROM layer WHERE id = ?");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return mz_error(err, ENOENT, "no layer %lld", (long long)id);
	if (rc != SQLITE_ROW)
		return store_dberr(s, err, "read layer owner");
	pid_t p = sqlite3_column_int(st, 0);
	int64_t start = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	*pid = store_owner_alive(p, start) ? p : 0;
	return 0;
}

int mz_layer_set_owner(mz_store *s, mz_lid id, pid_t pid, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		s, "UPDATE layer SET owner_pid = ?, owner_start = ? WHERE id = ?");
	sqlite3_bind_int(st, 1, pid);
	sqlite3_bind_int64(st, 2, pid ? store_pid_starttime(pid) : 0);
	sqlite3_bind_int64(st, 3, id);
	return store_step_done(s, st, err, "set layer owner");
}

int mz_layer_claim(mz_store *s, mz_lid id, pid_t pid, mz_error_t *err)
{
	/* already ours (a domain's supervisor claims its tree with the domain,
	 * and its server, a thread of it, asks again): no write */
	pid_t owner = 0;
	int r = mz_layer_owner(s, id, &owner, err);
	if (r < 0 || owner == pid)
		return r;
	if ((r = mz_store_begin(s, err)) < 0)
		return r;
	r = mz_layer_owner(s, id, &owner, err);
	if (r == 0 && owner != 0 && owner != pid)
		r = mz_error(err, EBUSY, "tree %lld is already served by process %d (mounted?)",
			     (long long)id, (int)owner);
	if (r == 0)
		r = mz_layer_set_owner(s, id, pid, err);
	return r == 0 ? mz_store_commit(s, err) : (mz_store_rollback(s), r);
}

static void oid_from_row(sqlite3_stmt *st, void *out)
{
	*(mz_oid *)out = sqlite3_column_int64(st, 0);
}

int store_layer_delete_rows(mz_store *s, mz_lid id, mz_error_t *err)
{
	/* The objects the layer names, so that the private ones nobody else
	 * names go with its rows: looked up by id afterwards, not by a search
	 * of every object for refs <= 0 (which made each `rm` of a domain, and
	 * each `run --rm`, cost 13 ms in a store of 120 000 objects). */
	sqlite3_stmt *st = store_stmt(
		s, "SELECT DISTINCT object FROM inode WHERE layer = ? AND object IS NOT NULL");
	sqlite3_bind_int64(st, 1, id);
	cleanup_free mz_oid *objs = NULL;
	size_t n = 0;
	int rc = store_rows(s, st, sizeof(*objs), oid_from_row, NULL, (void **)&objs, &n,
			    "list layer objects", err);
	if (rc < 0)
		return rc;
	static const char *const dels[] = {
		"DELETE FROM dentry WHERE layer = ?",
		"DELETE FROM xattr WHERE layer = ?",
		"DELETE FROM inode WHERE layer = ?",
		"DELETE FROM layer WHERE id = ?",
	};
	for (size_t i = 0; i < ARRAY_SIZE(dels); i++) {
		st = store_stmt(s, dels[i]);
		sqlite3_bind_int64(st, 1, id);
		int r = store_step_done(s, st, err, "delete layer");
		if (r < 0)
			return r;
	}
	/* Private objects that only this layer named go now (sealed ones stay
	 * for dedup until gc). */
	for (size_t i = 0; i < n; i++) {
		int r = store_object_drop_if_unused(s, objs[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int layer_children(mz_store *s, mz_lid id, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT COUNT(*) FROM layer WHERE parent = ?");
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_dberr(s, err, "count children");
	int n = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return n;
}

/* Delete a layer that nothing builds on, then its parents while they are
 * anonymous versions that nothing else builds on. */
static int layer_delete_chain(mz_store *s, mz_lid id, mz_error_t *err)
{
	while (id) {
		struct mz_layer l;
		int r = mz_layer_get(s, id, &l, err);
		if (r < 0)
			return r;
		if ((r = store_layer_delete_rows(s, id, err)) < 0)
			return r;
		id = l.parent;
		if (!id)
			break;
		struct mz_layer p;
		if ((r = mz_layer_get(s, id, &p, err)) < 0)
			return r;
		if (p.name[0] || p.building)
			break;
		if ((r = layer_children(s, id, err)) != 0)
			return r < 0 ? r : 0;
	}
	return 0;
}

int mz_layer_remove(mz_store *s, mz_lid id, bool force, mz_error_t *err)
{
	int r = mz_store_begin(s, err);
	if (r < 0)
		return r;
	struct mz_layer l;
	if ((r = mz_layer_get(s, id, &l, err)) < 0)
		goto fail;
	if (l.kind == MZ_LAYER_TREE) {
		sqlite3_stmt *st = store_stmt(
			s, "SELECT owner_pid, owner_start FROM layer WHERE id = ?");
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) != SQLITE_ROW) {
			r = store_dberr(s, err, "read layer");
			goto fail;
		}
		pid_t pid = sqlite3_column_int(st, 0);
		int64_t start = sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
		if (pid != getpid() && store_owner_alive(pid, start) && !force) {
			r = mz_error(err, EBUSY,
				     "tree '%s' is in use by process %d (mounted?): "
				     "umount it first",
				     l.name, (int)pid);
			goto fail;
		}
	}
	if (l.kind == MZ_LAYER_TREE && !force) {
		sqlite3_stmt *st = store_stmt(s, "SELECT name FROM domain WHERE tree = ?");
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			r = mz_error(err, EBUSY, "tree '%s' is the root of domain '%s': 'mezzo rm' it",
				     l.name, (const char *)sqlite3_column_text(st, 0));
			sqlite3_reset(st);
			goto fail;
		}
		sqlite3_reset(st);
	}
	r = layer_children(s, id, err);
	if (r < 0)
		goto fail;
	if (r > 0) {
		/* Something builds on it: drop the name, keep the data. */
		sqlite3_stmt *st = store_stmt(
			s, "UPDATE layer SET name = NULL, is_image = 0 WHERE id = ?");
		sqlite3_bind_int64(st, 1, id);
		r = store_step_done(s, st, err, "unname layer");
	} else {
		r = layer_delete_chain(s, id, err);
	}
	if (r < 0)
		goto fail;
	return mz_store_commit(s, err);
fail:
	mz_store_rollback(s);
	return r;
}

int mz_layer_foreach(mz_store *s, int (*cb)(const struct mz_layer *, void *), void *arg,
		     mz_error_t *err)
{
	/* A separate statement: callbacks may use the cached ones. */
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT " LAYER_COLS " FROM layer ORDER BY kind, name, id",
			       -1, &st, NULL) != SQLITE_OK)
		return store_dberr(s, err, "list layers");
	int rc, r = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct mz_layer l;
		layer_from_row(st, &l);
		if ((r = cb(&l, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_dberr(s, err, "list layers");
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}
