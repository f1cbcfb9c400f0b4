/*
 * ops_xattr.c — extended attributes, kept in the catalog per inode
 * (security.capability and POSIX ACLs included: the kernel asks for them).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "fsInt.h"

/* Answer a size probe (size 0), the value, or ERANGE. */
static int reply_sized(struct fs_server *S, const struct fs_req *r, uint32_t want,
		       const void *val, size_t len)
{
	if (want == 0) {
		struct fuse_getxattr_out o = {.size = len};
		return fs_reply(S, r, &o, sizeof(o));
	}
	if (len > want)
		return fs_reply_err(S, r, -ERANGE);
	return fs_reply(S, r, val, len);
}

int fs_op_getxattr(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_getxattr_in *in = r->arg;
	const char *name = (const char *)(in + 1);
	if (r->arglen <= sizeof(*in) || memchr(name, 0, r->arglen - sizeof(*in)) == NULL)
		return fs_reply_err(S, r, -EINVAL);
	mz_error_t err = NULL;
	cleanup_free void *val = NULL;
	size_t len = 0;
	int rc = mz_view_getxattr(S->view, fs_ino(S, r->h->nodeid), name, &val, &len, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return reply_sized(S, r, in->size, val, len);
}

int fs_op_listxattr(struct fs_server *S, const struct fs_req *r)
{
	const struct fuse_getxattr_in *in = r->arg;
	mz_error_t err = NULL;
	cleanup_free char *names = NULL;
	size_t len = 0;
	int rc = mz_view_listxattr(S->view, fs_ino(S, r->h->nodeid), &names, &len, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return reply_sized(S, r, in->size, names, len);
}

int fs_op_setxattr(struct fs_server *S, const struct fs_req *r)
{
	/* Without FUSE_SETXATTR_EXT the kernel sends the 8-byte compat header. */
	const struct fuse_setxattr_in *in = r->arg;
	size_t hdr = FUSE_COMPAT_SETXATTR_IN_SIZE;
	if (r->arglen <= hdr)
		return fs_reply_err(S, r, -EINVAL);
	const char *name = (const char *)r->arg + hdr;
	const char *end = memchr(name, 0, r->arglen - hdr);
	if (end == NULL || (size_t)(end + 1 - (const char *)r->arg) + in->size > r->arglen)
		return fs_reply_err(S, r, -EINVAL);
	mz_error_t err = NULL;
	int rc = mz_view_setxattr(S->view, fs_ino(S, r->h->nodeid), name, end + 1, in->size,
				  in->flags, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return fs_reply_err(S, r, 0);
}

int fs_op_removexattr(struct fs_server *S, const struct fs_req *r)
{
	const char *name = r->arg;
	if (r->arglen == 0 || memchr(name, 0, r->arglen) == NULL)
		return fs_reply_err(S, r, -EINVAL);
	mz_error_t err = NULL;
	int rc = mz_view_removexattr(S->view, fs_ino(S, r->h->nodeid), name, &err);
	if (rc < 0)
		return fs_fail(S, r, rc, &err);
	return fs_reply_err(S, r, 0);
}
