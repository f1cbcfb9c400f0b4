/*
 * control.c — the control socket of a tree server.
 *
 * Work on a mounted tree that must agree with the server's open files (a
 * snapshot while programs write) is done by the server itself: the CLI
 * connects to <root>/run/tree-ID.sock and sends one line, "snapshot NAME";
 * the answer is "ok VERSION-ID" or "error MESSAGE".  The socket is root-only
 * (mode 0600 in a 0700 directory).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "fsInt.h"

char *mz_fs_control_path(const char *store_root, mz_lid layer)
{
	return xasprintf("%s/run/tree-%lld.sock", store_root, (long long)layer);
}

static int sock_addr(const char *path, struct sockaddr_un *a, mz_error_t *err)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return mz_error(err, ENAMETOOLONG, "store root path too long for a socket: %s",
				path);
	strcpy(a->sun_path, path);
	return 0;
}

int fs_control_open(struct fs_server *S, mz_error_t *err)
{
	cleanup_free char *path = mz_fs_control_path(S->root_path, S->layer);
	struct sockaddr_un a;
	int r = sock_addr(path, &a, err);
	if (r < 0)
		return r;
	unlink(path); /* a dead server's socket; a live one owns the tree (checked) */
	S->ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (S->ctl_fd < 0)
		return mz_error_sys(err, errno, "control socket");
	mode_t old = umask(0077);
	r = bind(S->ctl_fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (r < 0 || listen(S->ctl_fd, 8) < 0) {
		int e = errno;
		close(S->ctl_fd);
		S->ctl_fd = -1; /* nothing half made left for the loop to poll */
		return mz_error_sys(err, e, "control socket %s", path);
	}
	return 0;
}

void fs_control_close(struct fs_server *S)
{
	if (S->ctl_fd < 0)
		return;
	close(S->ctl_fd);
	S->ctl_fd = -1;
	cleanup_free char *path = mz_fs_control_path(S->root_path, S->layer);
	unlink(path);
}

struct hot_list {
	mz_ino *ino;
	size_t n;
};

static void collect_hot(int64_t key, void *val, void *arg)
{
	struct fs_node *n = val;
	struct hot_list *h = arg;
	if (n->nwriters > 0) {
		h->ino = xrealloc(h->ino, (h->n + 1) * sizeof(*h->ino));
		h->ino[h->n++] = key;
	}
}

int fs_snapshot(struct fs_server *S, const char *version, mz_lid *out, mz_error_t *err)
{
	struct hot_list hot = {0};
	imap_foreach(&S->nodes, collect_hot, &hot);
	int r = mz_tree_snapshot_hot(S->store, S->layer, version, hot.ino, hot.n, out, err);
	free(hot.ino);
	if (r < 0)
		return r;
	/* The tree now sits on the new version: re-read the chain. */
	return mz_view_reload(S->view, err);
}

void fs_control_handle(struct fs_server *S)
{
	cleanup_close int c = accept4(S->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	struct timeval tv = {.tv_sec = 5};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char line[512];
	ssize_t n = read(c, line, sizeof(line) - 1);
	if (n <= 0)
		return;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	mz_error_t err cleanup_error = NULL;
	cleanup_free char *reply = NULL;
	if (strncmp(line, "snapshot ", 9) == 0) {
		mz_lid v;
		/* Under the server lock, as a request; committed before the
		 * answer, so that the caller's next command sees the version. */
		pthread_mutex_lock(&S->lock);
		fs_flush(S);
		int r = fs_snapshot(S, line + 9, &v, &err);
		fs_flush(S);
		pthread_mutex_unlock(&S->lock);
		if (r < 0)
			reply = xasprintf("error %s\n", err ? err->msg : "snapshot failed");
		else
			reply = xasprintf("ok %lld\n", (long long)v);
	} else {
		reply = xasprintf("error unknown request\n");
	}
	if (write_all(c, reply, strlen(reply)) < 0)
		mz_debug("control reply: %s", strerror(errno));
}

int mz_fs_snapshot(mz_store *s, mz_lid tree, const char *version, mz_lid *out,
		   mz_error_t *err)
{
	pid_t owner;
	int r = mz_layer_owner(s, tree, &owner, err);
	if (r < 0)
		return r;
	if (owner == 0 || owner == getpid())
		return mz_tree_snapshot(s, tree, version, out, err);
	if ((r = mz_name_check(version, "version", err)) < 0)
		return r;
	cleanup_free char *path = mz_fs_control_path(mz_store_root(s), tree);
	struct sockaddr_un a;
	if ((r = sock_addr(path, &a, err)) < 0)
		return r;
	cleanup_close int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		return mz_error_sys(err, errno, "socket");
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		return mz_error_sys(err, errno, "cannot reach the server of tree %lld (%s)",
				    (long long)tree, path);
	cleanup_free char *req = xasprintf("snapshot %s\n", version);
	if ((r = write_all(c, req, strlen(req))) < 0)
		return mz_error_sys(err, -r, "control request");
	char line[1024];
	ssize_t n = read_all(c, line, sizeof(line) - 1);
	if (n <= 0)
		return mz_error(err, EIO, "the tree server gave no answer");
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (strncmp(line, "ok ", 3) == 0) {
		if (out)
			*out = strtoll(line + 3, NULL, 10);
		return 0;
	}
	return mz_error(err, EIO, "%s", strncmp(line, "error ", 6) == 0 ? line + 6 : line);
}
