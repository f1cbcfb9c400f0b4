/*
 * imageInt.h — what the image module's own files share and nobody else sees.
 *
 * A *builder* (build.c) owns one import: the building version layer, the
 * view it writes through, the catalog transaction that batches entries, the
 * deferred attribute fix-ups and the statistics.  The sources (tar.c,
 * dir.c) turn their input into builder calls and never touch the store
 * directly; import.c ties them together.
 */
#ifndef MZ_IMAGE_INT_H
#define MZ_IMAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define IMG_MAX_PATH 4096
#define IMG_MAX_NAME 255
#define IMG_MAX_SIZE (1LL << 40) /* 1 TiB: no file of an image is bigger */
#define IMG_IO_BUF (1 << 20)

/* ---- a small hash map: byte-string keys to int64 values (map.c) --------- */

struct bmap;
struct bmap *bmap_new(void);
void bmap_free(struct bmap *m);
bool bmap_get(const struct bmap *m, const void *key, size_t len, int64_t *val);
/* Insert or overwrite. */
void bmap_put(struct bmap *m, const void *key, size_t len, int64_t val);
size_t bmap_count(const struct bmap *m);

/* ---- the builder (build.c) ---------------------------------------------- */

struct fixup {
	mz_ino ino;
	struct mz_inode attr;
	unsigned mask;
};

struct builder {
	mz_store *s;
	mz_view *v;
	mz_lid layer;
	mz_ino root;
	bool in_tx;
	int batch_n;
	int64_t batch_start;
	bool progress;
	bool root_owned;
	int64_t last_progress;
	int64_t now;                /* import start: times of implicit dirs */
	struct mz_import_stats st;
	struct fixup *fix;
	size_t nfix, capfix;
	unsigned char *buf;         /* IMG_IO_BUF bytes for file data */
	bool warned_xattr;
};

int build_begin(struct builder *b, mz_store *s, const struct mz_import_opts *o,
		mz_error_t *err);
/* Apply fix-ups, commit, publish as image name. */
int build_finish(struct builder *b, const char *name, mz_error_t *err);
/* Roll back and remove the building layer (after a failure). */
void build_abort(struct builder *b);
void build_free(struct builder *b);

/* Count one entry; commits the batch every ~2000 entries or second. */
int build_tick(struct builder *b, mz_error_t *err);
/* About to copy size bytes of file data: end a long-open batch first, so the
 * catalog's write lock is not held while bulk data is written. */
int build_before_data(struct builder *b, int64_t size, mz_error_t *err);

/* Create dir/name (path is for messages).  attr: mode with type, ids, times,
 * rdev, size; object for regular files; target for symlinks. */
int build_create(struct builder *b, mz_ino dir, const char *name, const char *path,
		 struct mz_inode *attr, mz_oid object, const char *target, mz_ino *out,
		 mz_error_t *err);
int build_link(struct builder *b, mz_ino ino, mz_ino dir, const char *name, const char *path,
	       mz_error_t *err);
/* Remove the non-directory dir/name (a later archive entry replaces it). */
int build_unlink(struct builder *b, mz_ino dir, const char *name, const char *path,
		 mz_error_t *err);
/* Set an xattr; names outside user. trusted. security. and the POSIX ACLs
 * are skipped with a warning. */
int build_xattr(struct builder *b, mz_ino ino, const char *path, const char *name,
		const void *val, size_t len, mz_error_t *err);
/* Set attributes at the end (after children and links changed times). */
void build_fixup(struct builder *b, mz_ino ino, const struct mz_inode *attr, unsigned mask);
void build_progress(struct builder *b, bool force);

/* Writing one regular file's content into a new sealed object. */
struct objw {
	struct builder *b;
	int fd;
	struct mz_hasher *h;
	int64_t pos; /* content hashed (and written) up to here */
};
int objw_begin(struct builder *b, struct objw *w, mz_error_t *err);
/* Data at off (>= every earlier write's end); all-zero blocks become holes. */
int objw_write(struct objw *w, int64_t off, const void *buf, size_t len, mz_error_t *err);
/* The content is size bytes (zeros after the last write): seal it. */
int objw_finish(struct objw *w, int64_t size, mz_oid *out, mz_error_t *err);
void objw_release(struct objw *w);

/* ---- sources ------------------------------------------------------------ */

/* A tar archive read from fd (any compression libarchive recognises). */
int import_tar(struct builder *b, const char *source, int fd, mz_error_t *err);
/* A directory tree, never following a symlink. */
int import_dir(struct builder *b, const char *source, int dirfd, mz_error_t *err);

/* POSIX ACL of a tar entry (type ARCHIVE_ENTRY_ACL_TYPE_ACCESS or _DEFAULT)
 * in the kernel's system.posix_acl_* xattr format; 0 and *len 0 if none. */
struct archive_entry;
int acl_to_xattr(struct archive_entry *e, int type, void **out, size_t *len);

/* The name is valid and no image or version has it yet (import.c). */
int image_name_free(mz_store *s, const char *name, mz_error_t *err);

/* rm -rf that never follows symlinks nor crosses into other mounts. */
int rm_tree(const char *path);

#endif
