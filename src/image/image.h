/*
 * image.h — images: named, immutable file trees imported into the store.
 *
 * An image is a version layer with a name (store.h).  Importing one reads a
 * directory or a tar archive, stores every regular file's content as a sealed
 * (content-addressed, deduplicated) object and writes the naming data into a
 * version layer that stays "building", invisible to everyone, until the last
 * entry is in; only then is it published under its name.  A failed or killed
 * import therefore never leaves a half image behind.
 *
 * Every source is treated as hostile: no path of an archive can reach outside
 * the image, through "..", an absolute name or a symlink met on the way, and
 * nothing of the source is ever followed or created on the host.
 */
#ifndef MZ_IMAGE_H
#define MZ_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/error.h"
#include "../store/store.h"

/* What an import did; filled as it goes, so it is meaningful on failure too. */
struct mz_import_stats {
	int64_t entries;       /* names created (each hard link counts), without the root */
	int64_t files;         /* regular files among them (hard links not counted) */
	int64_t bytes;         /* logical bytes of those files' content */
	int64_t stored;        /* bytes newly allocated in the object store */
	int64_t objects_new;   /* sealed objects created */
	int64_t dedup_bytes;   /* content bytes that were already stored (dedup) */
};

struct mz_import_opts {
	bool progress;   /* one updating progress line on stderr, if it is a terminal */
	bool root_owned; /* store every entry as owned by 0:0 (trees made unprivileged) */
	struct mz_import_stats *stats; /* optional out */
};

/* Import SOURCE as image NAME.  SOURCE is a directory, or a tar archive
 * (plain, gzip, bzip2, xz, lzma, lz4, zstd; recognised by content), or "-" for
 * a tar archive on standard input.  On success *out (optional) gets the new
 * layer id.
 *
 * Archive paths: a leading "./" and "." or empty components are dropped; an
 * absolute path, a ".." component, a component over 255 bytes, a path over
 * 4096 bytes, a parent that is (or goes through) a symlink, a hard link to
 * anything not created earlier in the same archive, a size over 1 TiB or
 * data that disagrees with its header all make the import fail.  A later
 * entry replaces an earlier non-directory of the same name, as tar does; it
 * may never replace a directory with a non-directory.  Missing parent
 * directories are created (0755, root).  Symlink targets are kept verbatim. */
int mz_image_import(mz_store *s, const char *name, const char *source,
		    const struct mz_import_opts *o, mz_lid *out, mz_error_t *err);

/* What is in an image (or any version), counted by walking its tree. */
struct mz_image_info {
	struct mz_layer layer;
	int64_t entries;      /* names, each hard link counted, without the root */
	int64_t files, dirs, symlinks, specials; /* inodes by type, the root included */
	int64_t bytes;        /* logical size of regular files, each inode once */
	int64_t objects;      /* distinct objects their content is kept in */
	int64_t object_bytes; /* space those objects take on disk */
};

/* Info about the image NAME ("image:NAME" semantics: only images match). */
int mz_image_info(mz_store *s, const char *name, struct mz_image_info *out, mz_error_t *err);
/* Info about any layer (walks its view). */
int mz_image_info_layer(mz_store *s, const struct mz_layer *l, struct mz_image_info *out,
			mz_error_t *err);
/* All published images, sorted by name; free *out with free(). */
int mz_image_list(mz_store *s, struct mz_layer **out, size_t *n, mz_error_t *err);
/* Remove image NAME.  Trees and versions built on it keep its data. */
int mz_image_remove(mz_store *s, const char *name, mz_error_t *err);

/* Build the minimal busybox root file system (static busybox from
 * busybox_path, NULL for /bin/busybox, one symlink per applet, /etc basics,
 * empty /dev /proc /sys /tmp ...) in a temporary directory under the store
 * root, import it as NAME, remove the directory. */
int mz_image_busybox(mz_store *s, const char *name, const char *busybox_path,
		     const struct mz_import_opts *o, mz_lid *out, mz_error_t *err);

struct mz_debootstrap_opts {
	const char *suite;   /* NULL: bookworm */
	const char *mirror;  /* NULL: debootstrap's default */
	const char *variant; /* NULL: minbase */
	bool quiet;          /* debootstrap's own output to /dev/null */
};
/* Run debootstrap into a temporary directory under the store root, import
 * the result as NAME and remove the directory (also on failure). */
int mz_image_debootstrap(mz_store *s, const char *name, const struct mz_debootstrap_opts *d,
			 const struct mz_import_opts *o, mz_lid *out, mz_error_t *err);

#endif
