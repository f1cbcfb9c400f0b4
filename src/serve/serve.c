/*
 * serve.c — the server's loop: keep a spare fork waiting, reap workers.
 *
 * The server never accepts a connection itself.  It keeps one fork of
 * itself, a spare, blocked in accept() on the listening socket, with the
 * default store's catalog already open (mz_store_preopen): a client is
 * served by a process that has paid for the fork, its first page faults
 * and SQLite's open before the client came.  A spare that takes a
 * connection becomes a worker and passes the server the connection (over a
 * socketpair, with its pid), and the server forks the next spare.  So the
 * server reads nothing a client sends, and a slow or hostile client holds
 * up its own worker alone.
 *
 * The server keeps each worker's connection until it has reaped the worker,
 * so that a worker killed by a signal (or one that left through _exit) is
 * still reported to its client.  One process, one thread, two event sources
 * (the spares' socketpair and a signalfd), one poll().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "../store/store.h"
#include "protocol.h"
#include "serveInt.h"

struct worker {
	pid_t pid;
	int conn; /* -1: a spare, still waiting for a client */
};

struct server {
	int listen, sfd;
	int *lock; /* the server's flock on PATH.lock: no fork may keep it */
	int chan[2]; /* spares -> server: "I took one" (pid, with the connection) */
	const char *root; /* the store to open ahead (NULL: the default) */
	struct worker *w;
	size_t n, cap;
	int spares;
	const char *warm[CHAN_MAX_SQL]; /* statements workers prepared: the */
	size_t nwarm;                   /* next spares prepare them ahead */
	int64_t spare_due;       /* when to make the next spare; 0: none due */
	int64_t spare_deaths_at; /* spares that died without a client: backoff */
	int spare_deaths;
};

#define MS 1000000LL

/* The next spare: at the latest this long after the last one took a client.
 * Made at once while that client's command runs, it would compete with it
 * for the CPUs (measured on 2 vCPUs: `run --rm` 0.6 ms slower than with the
 * spare made 20 ms later); made when that worker ends, or when a client
 * waits with no spare, it competes with nothing. */
#define SPARE_DELAY (20 * MS)

/* Two spares: in a tight loop of commands the next client comes ~0.5 ms
 * after the last worker ended, before a spare made then is ready (fork,
 * catalog, thread: ~1 ms at low priority); the second one is. */
#define SPARES 2

static void spare_due_in(struct server *s, int64_t ns)
{
	int64_t at = mono_ns() + ns;
	if (s->spares < SPARES && (s->spare_due == 0 || at < s->spare_due))
		s->spare_due = at;
}

ssize_t mz_serve_recv_fds(int sock, void *buf, size_t len, int flags, int *fds, int maxfds,
			  int *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MZ_SERVE_NFDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	do
		n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	int got = 0;
	bool extra = (n >= 0 && (mh.msg_flags & MSG_CTRUNC));
	for (struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (got < maxfds)
				fds[got++] = fd;
			else {
				close(fd);
				extra = true;
			}
		}
	}
	if (extra) {
		while (got > 0)
			close(fds[--got]);
		got = -1;
	}
	*nfds = got;
	return n;
}

static struct worker *find(struct server *s, pid_t pid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->w[i].pid == pid)
			return &s->w[i];
	return NULL;
}

static void learn_sql(struct server *s, const struct chan_msg *m, size_t n)
{
	for (size_t i = 0; i < n && s->nwarm < CHAN_MAX_SQL; i++) {
		const char *q = (const char *)(uintptr_t)m->sql[i];
		size_t k = 0;
		while (k < s->nwarm && s->warm[k] != q)
			k++;
		if (k == s->nwarm)
			s->warm[s->nwarm++] = q;
	}
}

/* News from spares and workers: a connection taken (with it), or the
 * statements a worker prepared. */
static void read_chan(struct server *s)
{
	for (;;) {
		struct chan_msg m;
		int fd = -1, nfd;
		ssize_t n = mz_serve_recv_fds(s->chan[0], &m, sizeof(m), MSG_DONTWAIT, &fd, 1, &nfd);
		if (n <= 0)
			return;
		if (nfd != 1)
			fd = -1;
		size_t head = offsetof(struct chan_msg, sql);
		if ((size_t)n >= head && m.kind == CHAN_SQL) {
			learn_sql(s, &m, ((size_t)n - head) / sizeof(m.sql[0]));
		} else if ((size_t)n >= head && m.kind == CHAN_TAKEN) {
			struct worker *w = find(s, m.pid);
			if (w && w->conn < 0 && fd >= 0) {
				w->conn = fd;
				fd = -1;
				s->spares--;
				spare_due_in(s, SPARE_DELAY);
			}
		}
		if (fd >= 0)
			close(fd);
	}
}

static void reap(struct server *s)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct worker *w = find(s, pid);
		if (w == NULL)
			continue;
		if (w->conn < 0) {
			s->spares--;
			if (mono_ns() - s->spare_deaths_at > 1000000000LL) {
				s->spare_deaths_at = mono_ns();
				s->spare_deaths = 0;
			}
			s->spare_deaths++;
			mz_debug("serve: spare %d ended without a client", (int)pid);
			*w = s->w[--s->n];
			/* spares that keep dying at once are not made again in a loop */
			spare_due_in(s, s->spare_deaths < 5 ? 0 : 1000 * MS);
			continue;
		} else {
			/* A worker that ended through exit() has said this itself;
			 * the client takes the first status it gets. */
			if (WIFSIGNALED(st))
				mz_serve_tell(w->conn, MZ_SERVE_SIGNAL, WTERMSIG(st));
			else
				mz_serve_tell(w->conn, MZ_SERVE_EXIT, WEXITSTATUS(st));
			close(w->conn);
		}
		*w = s->w[--s->n];
		spare_due_in(s, 0);
	}
}

/* A spare: wait for a client, tell the server, become its worker.  (The
 * listening socket stays open until mz_serve returns.)  The lock goes
 * first: a fork holding it would keep a new server from starting after this
 * one was killed. */
static int spare(struct server *s, struct mz_serve_job *job)
{
	close(*s->lock);
	*s->lock = -1;
	close(s->sfd);
	close(s->chan[0]);
	for (size_t i = 0; i < s->n; i++)
		if (s->w[i].conn >= 0)
			close(s->w[i].conn);
	free(s->w);
	/* a spare dies with the server; a worker outlives it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* The next spare is made while a worker runs its command: on a small
	 * machine they share the CPUs, and the worker's client is waiting. */
	struct pollfd waiting = {.fd = s->listen, .events = POLLIN};
	if (poll(&waiting, 1, 0) == 0) {
		setpriority(PRIO_PROCESS, 0, 19);
		mz_store_preopen(s->root, s->warm, s->nwarm);
		setpriority(PRIO_PROCESS, 0, 0);
	}
	mz_serve_worker_ready();
	int c;
	do
		c = accept4(s->listen, NULL, NULL, SOCK_CLOEXEC);
	while (c < 0 && (errno == EINTR || errno == ECONNABORTED));
	if (c < 0)
		_exit(1);
	prctl(PR_SET_PDEATHSIG, 0);
	struct chan_msg taken = {.kind = CHAN_TAKEN, .pid = (int32_t)getpid()};
	/* the server gone: no one to report a signal death, the rest works */
	if (mz_serve_send_fds(s->chan[1], &taken, offsetof(struct chan_msg, sql), &c, 1) < 0)
		mz_debug("serve: cannot tell the server: %s", strerror(errno));
	if (mz_serve_worker_take(c, s->chan[1], job) != 1)
		_exit(0); /* declined or unreadable: the client has been told, or is gone */
	return 1;
}

static int serve_loop(struct server *s, struct mz_serve_job *job)
{
	s->spare_due = mono_ns();
	for (;;) {
		if (s->spare_due && mono_ns() >= s->spare_due) {
			s->spare_due = 0;
			if (s->n == s->cap) {
				s->cap = s->cap ? 2 * s->cap : 64;
				s->w = xrealloc(s->w, s->cap * sizeof(*s->w));
			}
			pid_t pid = fork();
			if (pid == 0)
				return spare(s, job);
			if (pid > 0) {
				s->w[s->n++] = (struct worker){.pid = pid, .conn = -1};
				s->spares++;
				spare_due_in(s, 0); /* the second, if one is missing */
			} else {
				mz_err("serve: fork: %s", strerror(errno));
				spare_due_in(s, 100 * MS);
			}
		}
		/* with no spare, a waiting client makes one at once */
		struct pollfd pf[3] = {{.fd = s->chan[0], .events = POLLIN},
				       {.fd = s->sfd, .events = POLLIN},
				       {.fd = s->spares < 1 ? s->listen : -1, .events = POLLIN}};
		int timeout = -1;
		if (s->spare_due) {
			int64_t left = s->spare_due - mono_ns();
			timeout = left > 0 ? (int)((left + MS - 1) / MS) : 0;
		}
		int n = poll(pf, 3, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			mz_err("serve: poll: %s", strerror(errno));
			return 0;
		}
		/* the news first: a worker's connection is known before its end */
		read_chan(s);
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			bool stop = false;
			while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if (si.ssi_signo != SIGCHLD)
					stop = true;
			reap(s);
			if (stop)
				return 0;
		}
		bool backoff = s->spare_deaths >= 5 && mono_ns() - s->spare_deaths_at < 1000 * MS;
		if ((pf[2].revents & POLLIN) && !backoff)
			spare_due_in(s, 0);
	}
}

/* Bind path, unless another server holds its lock; a stale socket file (no
 * lock held) is replaced.  The socket is the caller's uid's alone. */
static int listen_on(const char *path, int *lock_out, int *fd_out, mz_error_t *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return mz_error(err, ENAMETOOLONG, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	cleanup_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		int r = mkdir_p(dir, 0700);
		if (r < 0)
			return mz_error_sys(err, -r, "cannot make %s", dir);
	}
	cleanup_free char *lockp = xasprintf("%s.lock", path);
	cleanup_close int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0)
		return mz_error_sys(err, errno, "cannot open %s", lockp);
	if (flock(lock, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK
			       ? mz_error(err, EADDRINUSE,
					  "another `mezzo serve` listens on %s (stop it first)", path)
			       : mz_error_sys(err, errno, "cannot lock %s", lockp);
	if (unlink(path) < 0 && errno != ENOENT)
		return mz_error_sys(err, errno, "cannot remove the stale socket %s", path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mz_error_sys(err, errno, "socket");
	mode_t old = umask(0177);
	int b = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (b < 0)
		return mz_error_sys(err, e, "cannot bind %s", path);
	if (listen(fd, 512) < 0)
		return mz_error_sys(err, errno, "cannot listen on %s", path);
	*lock_out = steal_fd(&lock);
	*fd_out = steal_fd(&fd);
	return 0;
}

/* Remove the socket file if it is still the one bound here. */
static void unlink_ours(const char *path, const struct stat *bound)
{
	struct stat st;
	if (stat(path, &st) == 0 && st.st_ino == bound->st_ino && st.st_dev == bound->st_dev)
		unlink(path);
}

int mz_serve(const struct mz_serve_opts *o, struct mz_serve_job *job, mz_error_t *err)
{
	const char *path = o->socket ? o->socket : MZ_SERVE_SOCKET_DEFAULT;
	cleanup_close int lock = -1;
	cleanup_close int lfd = -1;
	int r = listen_on(path, &lock, &lfd, err);
	if (r < 0)
		return r;
	struct stat bound;
	if (stat(path, &bound) < 0)
		return mz_error_sys(err, errno, "cannot stat %s", path);
	/* One fd per running worker: as many as the hard limit allows. */
	raise_nofile();
	if (o->detach) {
		pid_t pid = fork();
		if (pid < 0)
			return mz_error_sys(err, errno, "fork");
		if (pid > 0) {
			/* the lock and the socket are the child's now */
			printf("%d\n", (int)pid);
			return 0;
		}
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
	}
	struct server s = {.listen = lfd, .lock = &lock, .root = o->root, .sfd = -1,
			   .chan = {-1, -1}};
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s.chan) < 0)
		return mz_error_sys(err, errno, "socketpair");
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	s.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sfd < 0) {
		r = mz_error_sys(err, errno, "signalfd");
	} else {
		mz_serve_worker_prepare();
		mz_debug("serve: listening on %s", path);
		r = serve_loop(&s, job);
	}
	if (r == 1) {
		/* a worker: the server's lock and socket are not its to hold */
		return 1;
	}
	unlink_ours(path, &bound);
	for (size_t i = 0; i < s.n; i++) {
		if (s.w[i].conn >= 0)
			close(s.w[i].conn); /* running workers report to their clients themselves */
		else
			kill(s.w[i].pid, SIGKILL); /* a spare */
	}
	free(s.w);
	close(s.chan[0]);
	close(s.chan[1]);
	if (s.sfd >= 0)
		close(s.sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}
