/*
 * control.c — a running domain's control socket: `mezzo stop` asks the
 * supervisor directly.
 *
 * Without it, a stop opens the catalog (a schema read and the WAL index:
 * ~0.4 ms, a tenth of a stop) only to learn the supervisor's pid, signals
 * it, and waits for the whole process to be gone.  The supervisor itself
 * knows when the domain is down: once its processes, cgroups and mount are
 * gone and the catalog says so.  So it listens on a socket, a stop sends
 * "stop TIMEOUT" and gets "stopped" at that moment.  The timeout is the
 * caller's: SIGTERM can carry none, so `stop --timeout N` now means N.
 *
 * The socket is abstract (named "mezzo-ctl/" and the domain's host-wide
 * cgroup name, in the host's network namespace): a bind in the run
 * directory would make an inode, ~0.1 ms on this journal-less ext4, and
 * leave a file behind a crash; an abstract name costs neither and dies with
 * its supervisor.  It has no file mode, so both ends check who the other
 * is: the supervisor takes requests only from root, and the caller believes
 * only a listener of root's.  Anyone else holding the name first only makes
 * stops go the old way, through the catalog and a signal, as they do for a
 * supervisor still starting, one of an older mezzo, or one that died while
 * a stop waited (the old way then cleans up after it).
 */
#include "supervisor.h"
#include "controlInt.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"

/* "\0mezzo-ctl/NAME.TAG": the length is the address's, no NUL at the end */
static socklen_t sock_addr(const char *store_root, const char *name, struct sockaddr_un *a)
{
	char cg[160];
	mz_domain_cgroup_name(store_root, name, cg);
	*a = (struct sockaddr_un){.sun_family = AF_UNIX};
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "mezzo-ctl/%s", cg);
	if (n < 0 || (size_t)n >= sizeof(a->sun_path) - 1)
		n = (int)sizeof(a->sun_path) - 2; /* cut: the request names the domain */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static uid_t peer_uid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 ? cr.uid : (uid_t)-1;
}

/* ---- the supervisor's side */

void sup_control_init(struct sup_control *c)
{
	c->listen = -1;
	c->n = 0;
}

int sup_control_open(struct sup_control *c, const char *store_root, const char *name,
		     mz_error_t *err)
{
	struct sockaddr_un a;
	socklen_t len = sock_addr(store_root, name, &a);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return mz_error_sys(err, errno, "control socket");
	if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, SUP_CONTROL_MAX) < 0) {
		int e = errno;
		close(fd);
		return mz_error_sys(err, e, "control socket @%s", a.sun_path + 1);
	}
	c->listen = fd;
	c->name = name;
	return 0;
}

static void conn_drop(struct sup_control *c, size_t i)
{
	close(c->conn[i].fd);
	c->conn[i] = c->conn[--c->n];
}

static void control_accept(struct sup_control *c)
{
	int fd;
	while ((fd = accept4(c->listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		/* root only: an abstract socket has no mode to say so */
		if (c->n == SUP_CONTROL_MAX || peer_uid(fd) != 0) {
			close(fd);
			continue;
		}
		c->conn[c->n++] = (struct sup_conn){.fd = fd, .stopping = false};
	}
}

int sup_control_poll_fds(const struct sup_control *c, struct pollfd *pf)
{
	int k = 0;
	pf[k++] = (struct pollfd){.fd = c->listen, .events = POLLIN};
	for (size_t i = 0; i < c->n; i++)
		pf[k++] = (struct pollfd){.fd = c->conn[i].fd, .events = POLLIN};
	return k;
}

int sup_control_read(struct sup_control *c, const struct pollfd *pf, int nfds)
{
	int timeout = -1;
	/* pf[1..] are c->conn[0..], as polled; from the last, so that an entry
	 * dropped (the last moved into its place) was already read */
	for (int k = nfds - 1; k >= 1; k--) {
		size_t i = (size_t)(k - 1);
		if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		char msg[256];
		ssize_t n = recv(c->conn[i].fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		int t = -1;
		if (n > 0 && !c->conn[i].stopping) {
			/* "stop TIMEOUT NAME": NAME, because a long one's address is
			 * cut, and must be ours */
			msg[n] = '\0';
			char *end;
			if (strncmp(msg, "stop ", 5) == 0) {
				long v = strtol(msg + 5, &end, 10);
				if (end != msg + 5 && *end == ' ' && strcmp(end + 1, c->name) == 0 &&
				    v >= 0 && v <= 3600)
					t = (int)v;
			}
		}
		if (t < 0) {
			/* gone, or said something else than one stop of us */
			conn_drop(c, i);
			continue;
		}
		c->conn[i].stopping = true;
		if (timeout < 0 || t < timeout)
			timeout = t;
	}
	if (nfds > 0 && (pf[0].revents & POLLIN))
		control_accept(c); /* read at the next poll */
	return timeout;
}

void sup_control_close(struct sup_control *c, const char *say)
{
	/* the name first: the next start of the domain may bind it as soon as
	 * a stop hears "stopped" */
	if (c->listen >= 0) {
		close(c->listen);
		c->listen = -1;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (say && c->conn[i].stopping &&
		    send(c->conn[i].fd, say, strlen(say), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			mz_debug("control: %s", strerror(errno));
		close(c->conn[i].fd);
	}
	c->n = 0;
}

/* ---- the caller's side */

int mz_domain_ask_stop(const char *store_root, const char *name, int timeout_s,
		       mz_error_t *err)
{
	struct sockaddr_un a;
	socklen_t len = sock_addr(store_root, name, &a);
	cleanup_close int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mz_error_sys(err, errno, "control socket");
	/* nobody listens, or not a supervisor (root's): ask the catalog */
	if (connect(fd, (struct sockaddr *)&a, len) < 0 || peer_uid(fd) != 0)
		return -ENOENT;
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "stop %d %s", timeout_s, name);
	if (n < 0 || (size_t)n >= sizeof(msg) || send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n)
		return -ENOENT;
	/* the supervisor's own SIGKILL comes at timeout_s; its teardown after */
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	int64_t wait_ms = ((int64_t)timeout_s + 10) * 1000;
	int64_t until = mono_ns() + wait_ms * 1000000;
	for (;;) {
		int left = (int)((until - mono_ns()) / 1000000);
		int p = poll(&pf, 1, left > 0 ? left : 0);
		if (p < 0 && errno == EINTR)
			continue;
		if (p <= 0)
			return mz_error(err, ETIMEDOUT, "domain '%s' did not stop in time", name);
		break;
	}
	ssize_t got = recv(fd, msg, sizeof(msg) - 1, 0);
	if (got > 0) {
		msg[got] = '\0';
		if (strcmp(msg, "stopped") == 0)
			return 0;
	}
	return -ENOENT; /* it died meanwhile: the catalog way cleans up */
}
