/*
 * ops_dir.c — directory listing.
 *
 * A directory handle keeps the listing it took when read from offset 0, and
 * offsets index that listing: a reader never loses or repeats an entry while
 * the directory changes under it (entries made since are seen after a
 * rewind, as POSIX allows).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/util.h"
#include "fsInt.h"

int fs_op_opendir(struct fs_server *S, const struct fs_req *r)
{
	struct fs_handle *h = xcalloc(1, sizeof(*h));
	h->fd = -1;
	h->node = NULL;
	uint64_t fh = S->next_fh++;
	imap_put(&S->handles, (int64_t)fh, h);
	struct fuse_open_out o = {.fh = fh};
	return fs_reply(S, r, &o, sizeof(o));
}

int fs_op_releasedir(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_release_in *in = r->arg;
	struct fs_handle *h = imap_del(&S->handles, (int64_t)in->fh);
	if (h) {
		mz_dirents_free(h->ents, h->nents);
		free(h);
	}
	return fs_reply_err(S, r, 0);
}

int fs_op_fsyncdir(struct fs_server *S, const struct fs_req *r)
{
	mz_error_t err = NULL;
	int rc = fs_sync(S, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return fs_reply_err(S, r, 0);
}

static int list(struct fs_server *S, struct fs_handle *h, mz_ino dir, uint64_t offset,
		mz_error_t *err)
{
	if (offset != 0 && h->ents != NULL)
		return 0;
	mz_dirents_free(h->ents, h->nents);
	h->ents = NULL;
	h->nents = 0;
	return mz_view_readdir(S->view, dir, &h->ents, &h->nents, err);
}

static int readdir_common(struct fs_server *S, const struct fs_req *r, bool plus)
{
	const struct fuse_read_in *in = r->arg;
	struct fs_handle *h = fs_handle_get(S, in->fh);
	if (h == NULL)
		return fs_reply_err(S, r, -EBADF);
	mz_ino dir = fs_ino(S, r->h->nodeid);
	mz_error_t err = NULL;
	int rc = list(S, h, dir, in->offset, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	size_t cap = in->size, used = 0;
	cleanup_free char *buf = xcalloc(1, cap ? cap : 1);
	/* index 0 is ".", 1 is "..", then the listing; an entry's off is its
	 * index + 1 (where the next read resumes). */
	for (uint64_t k = in->offset; k < h->nents + 2; k++) {
		const char *name;
		mz_ino ino;
		uint32_t type;
		if (k < 2) {
			name = k == 0 ? "." : "..";
			ino = dir;
			type = S_IFDIR;
		} else {
			name = h->ents[k - 2].name;
			ino = h->ents[k - 2].ino;
			type = h->ents[k - 2].mode;
		}
		size_t namelen = strlen(name);
		size_t base = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
		size_t reclen = FUSE_DIRENT_ALIGN(base + namelen);
		if (used + reclen > cap)
			break;
		struct fuse_dirent *d;
		if (plus) {
			struct fuse_direntplus *dp = (void *)(buf + used);
			if (k >= 2) {
				struct mz_inode a;
				rc = fs_getattr(S, ino, &a, &err);
				if (rc < 0) {
					mz_error_release(&err);
					continue; /* vanished since the listing: skip */
				}
				fs_fill_entry(S, &a, &dp->entry_out);
				fs_node_ref(S, ino);
			}
			d = &dp->dirent;
		} else {
			d = (void *)(buf + used);
		}
		d->ino = ino;
		d->off = k + 1;
		d->namelen = namelen;
		d->type = (type & S_IFMT) >> 12;
		memcpy(d->name, name, namelen);
		used += reclen;
	}
	return fs_reply(S, r, buf, used);
}

int fs_op_readdir(struct fs_server *S, const struct fs_req *r)
{
	return readdir_common(S, r, false);
}

int fs_op_readdirplus(struct fs_server *S, const struct fs_req *r)
{
	return readdir_common(S, r, true);
}
