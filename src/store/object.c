/*
 * object.c — object files: create, seal (dedup by content hash), CoW copy.
 *
 * An object's file is <root>/objects/XX/ID, XX the low byte of ID in hex, so
 * no directory grows past a few thousand entries per million objects.
 * New content is written to an O_TMPFILE first: if the process dies before
 * the object is linked in, the kernel reclaims the space and nothing is left.
 */
#include "storeInt.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/util.h"

void mz_object_relpath(mz_oid id, char out[32])
{
	snprintf(out, 32, "%02x/%lld", (unsigned)(id & 0xff), (long long)id);
}

int mz_object_open(mz_store *s, mz_oid id, int flags, mz_error_t *err)
{
	char rel[32];
	if (flags & O_CREAT)
		return mz_error(err, EINVAL, "internal: mz_object_open with O_CREAT");
	mz_object_relpath(id, rel);
	int fd = openat(s->objects_fd, rel, flags | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return mz_error_sys(err, errno, "cannot open object %lld", (long long)id);
	return fd;
}

int mz_object_get(mz_store *s, mz_oid id, struct mz_object *out, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT hash, size, refs FROM object WHERE id = ?");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return mz_error(err, ENOENT, "no object %lld", (long long)id);
	if (rc != SQLITE_ROW)
		return store_dberr(s, err, "read object");
	memset(out, 0, sizeof(*out));
	out->id = id;
	if (sqlite3_column_type(st, 0) == SQLITE_BLOB &&
	    sqlite3_column_bytes(st, 0) == MZ_HASH_LEN) {
		out->sealed = true;
		memcpy(out->hash, sqlite3_column_blob(st, 0), MZ_HASH_LEN);
	}
	out->size = sqlite3_column_int64(st, 1);
	out->refs = sqlite3_column_int64(st, 2);
	sqlite3_reset(st);
	return 0;
}

int mz_object_tmpfile(mz_store *s, mz_error_t *err)
{
	int fd = openat(s->objects_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return mz_error_sys(err, errno, "cannot create a temporary object in %s/objects",
				    s->root);
	return fd;
}

/* A new object's row: id 0 takes the next id, else id is one reserved for
 * us (pool.c). */
static int object_insert(mz_store *s, mz_oid id, const uint8_t *hash, int64_t size, mz_oid *out,
			 mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		s, "INSERT INTO object(id, hash, size, refs, created) VALUES (NULLIF(?, 0), ?, ?, 0, ?)");
	sqlite3_bind_int64(st, 1, id);
	if (hash)
		sqlite3_bind_blob(st, 2, hash, MZ_HASH_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, size);
	sqlite3_bind_int64(st, 4, now_ns());
	int r = store_step_done(s, st, err, "insert object");
	if (r < 0)
		return r;
	*out = sqlite3_last_insert_rowid(s->db);
	return 0;
}

/* Give an anonymous file a name in the object directory.  A file already at
 * that name can only be an orphan of a rolled-back transaction (we hold the
 * write lock, and the row id is free), so it is replaced. */
static int object_link_fd(mz_store *s, int fd, mz_oid id, mz_error_t *err)
{
	char rel[32], proc[64];
	mz_object_relpath(id, rel);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	for (int tries = 0; tries < 2; tries++) {
		if (linkat(AT_FDCWD, proc, s->objects_fd, rel, AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno != EEXIST)
			break;
		unlinkat(s->objects_fd, rel, 0);
	}
	return mz_error_sys(err, errno, "cannot link object %lld", (long long)id);
}

int mz_object_seal_tmpfile(mz_store *s, int fd, const uint8_t *hash_or_null, mz_oid *out,
			   mz_error_t *err)
{
	uint8_t hash[MZ_HASH_LEN];
	int r;
	if (hash_or_null) {
		memcpy(hash, hash_or_null, MZ_HASH_LEN);
	} else if ((r = mz_hash_fd(fd, hash)) < 0) {
		return mz_error_sys(err, -r, "cannot hash new object");
	}
	struct stat stb;
	if (fstat(fd, &stb) < 0)
		return mz_error_sys(err, errno, "cannot stat new object");

	/* Look up inside the write transaction: another process sealing the same
	 * content at the same moment then finds it instead of colliding. */
	if ((r = mz_store_begin(s, err)) < 0)
		return r;
	sqlite3_stmt *st = store_stmt(s, "SELECT id FROM object WHERE hash = ?");
	sqlite3_bind_blob(st, 1, hash, MZ_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		/* stored once: the tmpfile vanishes when the caller closes it */
		return mz_store_commit(s, err);
	}
	if (rc != SQLITE_DONE) {
		r = store_dberr(s, err, "look up object hash");
		mz_store_rollback(s);
		return r;
	}
	sqlite3_reset(st);

	/* Sealed objects are immutable: make the file read-only, so even a bug
	 * that opened one for writing would fail. */
	mz_oid id;
	r = fchmod(fd, 0400) < 0 ? mz_error_sys(err, errno, "cannot chmod new object") : 0;
	if (r == 0)
		r = object_insert(s, 0, hash, stb.st_size, &id, err);
	if (r == 0)
		r = object_link_fd(s, fd, id, err);
	if (r < 0) {
		mz_store_rollback(s);
		return r;
	}
	if ((r = mz_store_commit(s, err)) < 0)
		return r;
	*out = id;
	return 0;
}

int mz_object_create_private(mz_store *s, mz_oid *out, int *fd_out, mz_error_t *err)
{
	int r = mz_store_begin(s, err);
	if (r < 0)
		return r;
	/* one made ahead if there is one (pool.c): named already, its id ours;
	 * taken inside the transaction, so no gc can remove it any more */
	mz_oid id = 0;
	int fd = store_pool_take(s, &id);
	char rel[32];
	r = object_insert(s, fd >= 0 ? id : 0, NULL, 0, &id, err);
	mz_object_relpath(id, rel);
	if (r < 0) {
		if (fd >= 0) {
			close(fd);
			unlinkat(s->objects_fd, rel, 0);
		}
		mz_store_rollback(s);
		return r;
	}
	/* A file already at that name can only be an orphan of a rolled-back
	 * transaction (we hold the write lock, and the row id is free). */
	if (fd < 0)
		fd = openat(s->objects_fd, rel, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
			    0600);
	if (fd < 0) {
		r = mz_error_sys(err, errno, "cannot create object file %s", rel);
		mz_store_rollback(s);
		return r;
	}
	if ((r = mz_store_commit(s, err)) < 0) {
		close(fd);
		unlinkat(s->objects_fd, rel, 0);
		return r;
	}
	*out = id;
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return 0;
}

/* Copy [0, size) of src to dst keeping holes: data extents only, each with
 * copy_file_range (which the kernel may turn into a reflink or a server-side
 * copy). */
static int copy_sparse(int src, int dst, int64_t size)
{
	if (ftruncate(dst, size) < 0)
		return -errno;
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(src, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole remains */
			return -errno;
		}
		if (data >= size)
			break;
		off_t hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > size)
			hole = size;
		loff_t in = data, outp = data;
		while (in < hole) {
			ssize_t n = copy_file_range(src, &in, dst, &outp, hole - in, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if (n == 0)
				return -EIO;
		}
		pos = hole;
	}
	return 0;
}

int mz_object_copy(mz_store *s, mz_oid src, int64_t size, mz_oid *out, mz_error_t *err)
{
	cleanup_close int sfd = mz_object_open(s, src, O_RDONLY, err);
	if (sfd < 0)
		return sfd;
	struct stat stb;
	if (fstat(sfd, &stb) < 0)
		return mz_error_sys(err, errno, "cannot stat object %lld", (long long)src);
	if (size < 0 || size > stb.st_size)
		size = stb.st_size;

	cleanup_close int dfd = -1;
	mz_oid id;
	int r = mz_object_create_private(s, &id, &dfd, err);
	if (r < 0)
		return r;
	if (size > 0) {
		r = -EOPNOTSUPP;
		if (size == stb.st_size && ioctl(dfd, FICLONE, sfd) == 0)
			r = 0;
		if (r < 0)
			r = copy_sparse(sfd, dfd, size);
		if (r < 0) {
			mz_error_sys(err, -r, "cannot copy object %lld", (long long)src);
			/* the empty private object is released by the caller's failure
			 * path never referencing it: gc reclaims rows with no refs */
			return r;
		}
	}
	*out = id;
	return 0;
}

int store_object_drop_if_unused(mz_store *s, mz_oid id, mz_error_t *err)
{
	/* Private objects go as soon as nothing names them; sealed ones stay for
	 * dedup until gc, since the next import may well bring them back. */
	sqlite3_stmt *st = store_stmt(
		s, "DELETE FROM object WHERE id = ? AND refs <= 0 AND hash IS NULL RETURNING id");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sqlite3_reset(st);
		store_defer_unlink(s, id);
		return 1;
	}
	if (rc != SQLITE_DONE)
		return store_dberr(s, err, "drop object");
	return 0;
}
