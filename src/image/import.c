/*
 * import.c — the image API: import, list, inspect, remove.
 *
 * mz_image_import checks the name before any work is done, picks the source
 * kind by what SOURCE is (a directory, or anything else read as a tar
 * archive whose compression is recognised by content), runs it through a
 * builder and publishes the result; on any failure the building layer is
 * removed again, so either the whole image appears or nothing does.
 *
 * Counting what an image holds walks its tree through a view; the catalog
 * keeps no per-image totals.
 */
#include "imageInt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/util.h"

int image_name_free(mz_store *s, const char *name, mz_error_t *err)
{
	int r = mz_name_check(name, "image", err);
	if (r < 0)
		return r;
	cleanup_free char *spec = xasprintf("version:%s", name);
	struct mz_layer l;
	mz_error_t e = NULL;
	r = mz_layer_resolve(s, spec, &l, &e);
	if (r == -ENOENT) {
		mz_error_release(&e);
		return 0;
	}
	if (r < 0) {
		if (err && *err == NULL)
			*err = steal_pointer(&e);
		mz_error_release(&e);
		return r;
	}
	return mz_error(err, EEXIST,
			"an %s named '%s' already exists (remove it first with "
			"'mezzo image rm %s')",
			l.is_image ? "image" : "version", name, name);
}

static int open_source(const char *source, bool *is_dir, mz_error_t *err)
{
	struct stat st;
	int fd;
	if (strcmp(source, "-") == 0) {
		fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return mz_error_sys(err, errno, "cannot read standard input");
	} else {
		fd = open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return mz_error_sys(err, errno, "cannot open source '%s'", source);
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return mz_error_sys(err, e, "cannot stat source '%s'", source);
	}
	*is_dir = S_ISDIR(st.st_mode);
	return fd;
}

int mz_image_import(mz_store *s, const char *name, const char *source,
		    const struct mz_import_opts *o, mz_lid *out, mz_error_t *err)
{
	int r = image_name_free(s, name, err);
	if (r < 0)
		return r;
	bool is_dir = false;
	cleanup_close int fd = open_source(source, &is_dir, err);
	if (fd < 0)
		return fd;
	struct builder b;
	if ((r = build_begin(&b, s, o, err)) < 0)
		return r;
	const char *label = strcmp(source, "-") == 0 ? "stdin" : source;
	r = is_dir ? import_dir(&b, label, fd, err) : import_tar(&b, label, fd, err);
	if (r == 0)
		r = build_finish(&b, name, err);
	if (o && o->stats)
		*o->stats = b.st;
	if (r < 0)
		build_abort(&b);
	else if (out)
		*out = b.layer;
	build_free(&b);
	return r;
}

/* ---- listing and counting ---------------------------------------------- */

struct list {
	struct mz_layer *v;
	size_t n, cap;
};

static int list_cb(const struct mz_layer *l, void *arg)
{
	struct list *ls = arg;
	if (l->kind != MZ_LAYER_VERSION || !l->is_image || l->building)
		return 0;
	if (ls->n == ls->cap) {
		ls->cap = ls->cap ? 2 * ls->cap : 16;
		ls->v = xrealloc(ls->v, ls->cap * sizeof(*ls->v));
	}
	ls->v[ls->n++] = *l;
	return 0;
}

static int layer_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mz_layer *)a)->name, ((const struct mz_layer *)b)->name);
}

int mz_image_list(mz_store *s, struct mz_layer **out, size_t *n, mz_error_t *err)
{
	struct list ls = {0};
	int r = mz_layer_foreach(s, list_cb, &ls, err);
	if (r < 0) {
		free(ls.v);
		return r;
	}
	if (ls.n > 1)
		qsort(ls.v, ls.n, sizeof(*ls.v), layer_name_cmp);
	*out = ls.v;
	*n = ls.n;
	return 0;
}

static int find_image(mz_store *s, const char *name, struct mz_layer *l, mz_error_t *err)
{
	cleanup_free char *spec = xasprintf("image:%s", name);
	mz_error_t e = NULL;
	int r = mz_layer_resolve(s, spec, l, &e);
	if (r == -ENOENT) {
		mz_error_release(&e);
		return mz_error(err, ENOENT, "no image named '%s' (see 'mezzo image ls')", name);
	}
	if (r < 0 && err && *err == NULL)
		*err = steal_pointer(&e);
	mz_error_release(&e);
	return r;
}

/* Count what is below dir (depth-first with an explicit stack). */
static int count_tree(mz_view *v, struct mz_image_info *in, mz_error_t *err)
{
	struct bmap *seen = bmap_new(), *objs = bmap_new();
	size_t n = 1, cap = 64;
	mz_ino *stack = xmalloc(cap * sizeof(*stack));
	stack[0] = mz_view_root(v);
	bmap_put(seen, &stack[0], sizeof(mz_ino), 1);
	in->dirs = 1;
	int r = 0;
	while (n > 0 && r == 0) {
		mz_ino dir = stack[--n];
		struct mz_dirent *d;
		size_t nd;
		if ((r = mz_view_readdir(v, dir, &d, &nd, err)) < 0)
			break;
		for (size_t i = 0; i < nd && r == 0; i++) {
			in->entries++;
			if (bmap_get(seen, &d[i].ino, sizeof(mz_ino), NULL))
				continue;
			bmap_put(seen, &d[i].ino, sizeof(mz_ino), 1);
			struct mz_inode a;
			if ((r = mz_view_getattr(v, d[i].ino, &a, err)) < 0)
				break;
			if (S_ISDIR(a.mode)) {
				in->dirs++;
				if (n == cap)
					stack = xrealloc(stack, (cap *= 2) * sizeof(*stack));
				stack[n++] = a.ino;
			} else if (S_ISREG(a.mode)) {
				in->files++;
				in->bytes += a.size;
				if (a.object && !bmap_get(objs, &a.object, sizeof(a.object), NULL)) {
					bmap_put(objs, &a.object, sizeof(a.object), 1);
					in->objects++;
					in->object_bytes += a.blocks * 512;
				}
			} else if (S_ISLNK(a.mode)) {
				in->symlinks++;
			} else {
				in->specials++;
			}
		}
		mz_dirents_free(d, nd);
	}
	free(stack);
	bmap_free(seen);
	bmap_free(objs);
	return r;
}

int mz_image_info_layer(mz_store *s, const struct mz_layer *l, struct mz_image_info *out,
			mz_error_t *err)
{
	memset(out, 0, sizeof(*out));
	out->layer = *l;
	mz_view *v;
	int r = mz_view_open(s, l->id, &v, err);
	if (r < 0)
		return r;
	r = count_tree(v, out, err);
	mz_view_close(v);
	return r;
}

int mz_image_info(mz_store *s, const char *name, struct mz_image_info *out, mz_error_t *err)
{
	struct mz_layer l;
	int r = find_image(s, name, &l, err);
	if (r < 0)
		return r;
	return mz_image_info_layer(s, &l, out, err);
}

int mz_image_remove(mz_store *s, const char *name, mz_error_t *err)
{
	struct mz_layer l;
	int r = find_image(s, name, &l, err);
	if (r < 0)
		return r;
	return mz_layer_remove(s, l.id, false, err);
}
