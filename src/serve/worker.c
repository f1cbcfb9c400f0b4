/*
 * worker.c — a fork of `mezzo serve` taking one client's command.
 *
 * The worker must run the command as a direct run by the client would, or
 * not at all: a root client that dropped capabilities, set no_new_privs, sits
 * under seccomp or in other namespaces must not borrow the server's.  So it
 * compares the client's credentials and namespaces with its own (the
 * server's, read once before any fork) and declines on any difference; the
 * client then execs mezzo-core itself, with exactly its own rights.
 *
 * Taken on from the client: stdin, stdout, stderr and the working directory
 * (as fds), the environment, umask, rlimits, ignored and blocked signals.
 * From the kernel: its nice value and CPU affinity.  What a fork of the
 * server does not take on: the client's cgroup, session and controlling
 * terminal, and its parent.  The command's end is reported by an
 * on_exit() hook; a thread forwards the client's signals to this process,
 * and when the client goes away (killed), kills the worker as the kill would
 * have killed a direct run.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/trace.h"
#include "../lib/util.h"
#include "../store/store.h"
#include "protocol.h"
#include "serveInt.h"

static const char *const ns_names[] = {"mnt", "pid", "net", "uts", "ipc", "user", "cgroup", "time"};
#define NNS ARRAY_SIZE(ns_names)

/* The server's own, read once: what each client is compared with. */
static struct {
	bool ready;
	char creds[1024];
	struct stat ns[NNS], root;
	bool has_ns[NNS];
} self;

/* This spare's own signal dispositions and resource limits, read before it
 * waits for a client: a command's take_on then changes only what differs
 * from its client's (of 64 dispositions and 16 limits, mostly none; each a
 * system call, 80 of them ~50 µs of the client's time). */
enum { DISP_DFL, DISP_IGN, DISP_OTHER, DISP_NONE /* libc's own: not ours to set */ };
static struct {
	unsigned char disp[65];
	struct rlimit rlim[MZ_SERVE_NLIMITS];
	bool rlim_known[MZ_SERVE_NLIMITS];
} spare;

static void note_spare_state(void)
{
	for (int sig = 1; sig <= 64; sig++) {
		struct sigaction sa;
		spare.disp[sig] = sigaction(sig, NULL, &sa) < 0 ? DISP_NONE
				  : sa.sa_handler == SIG_DFL ? DISP_DFL
				  : sa.sa_handler == SIG_IGN ? DISP_IGN
							     : DISP_OTHER;
	}
	for (int r = 0; r < MZ_SERVE_NLIMITS; r++)
		spare.rlim_known[r] = getrlimit(r, &spare.rlim[r]) == 0;
}

static int conn = -1;
static int chan = -1; /* to the server: the statements prepared, at the end */
static pid_t worker_pid;
static atomic_int reported;
static atomic_int outlive; /* the worker no longer dies with its client */

/* The lines of a /proc/PID/status that say what a process may do, read
 * through dirfd (/proc/PID). */
static int read_creds(int dirfd, char *out, size_t cap)
{
	char buf[4096];
	cleanup_close int fd = openat(dirfd, "status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read_all(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	static const char *const keys[] = {"Uid:",	"Gid:",	   "Groups:",	    "Cap",
					   "NoNewPrivs:", "Seccomp:", "Seccomp_filters:"};
	size_t used = 0;
	for (char *line = buf, *end; *line; line = end) {
		end = strchr(line, '\n');
		end = end ? end + 1 : line + strlen(line);
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			size_t kl = strlen(keys[k]), l = (size_t)(end - line);
			if (l < kl || memcmp(line, keys[k], kl) != 0)
				continue;
			if (used + l >= cap)
				return -1;
			memcpy(out + used, line, l);
			used += l;
			break;
		}
	}
	out[used] = '\0';
	return used > 0 ? 0 : -1;
}

static void prepare_self(void)
{
	if (self.ready)
		return;
	cleanup_close int dir = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || read_creds(dir, self.creds, sizeof(self.creds)) < 0)
		self.creds[0] = '\0'; /* compares unequal with any client: all declined */
	for (size_t i = 0; i < NNS; i++) {
		char p[32];
		snprintf(p, sizeof(p), "ns/%s", ns_names[i]);
		self.has_ns[i] = dir >= 0 && fstatat(dir, p, &self.ns[i], 0) == 0;
	}
	if (stat("/", &self.root) < 0)
		memset(&self.root, 0, sizeof(self.root));
	self.ready = true;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int check_client(pid_t pid)
{
	char p[32], creds[sizeof(self.creds)];
	snprintf(p, sizeof(p), "/proc/%d", (int)pid);
	cleanup_close int dir = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || !self.creds[0] || read_creds(dir, creds, sizeof(creds)) < 0 ||
	    strcmp(creds, self.creds) != 0)
		return MZ_SERVE_DECLINE_CREDS;
	for (size_t i = 0; i < NNS; i++) {
		struct stat st;
		snprintf(p, sizeof(p), "ns/%s", ns_names[i]);
		bool has = fstatat(dir, p, &st, 0) == 0;
		if (has != self.has_ns[i] || (has && !same_file(&st, &self.ns[i])))
			return MZ_SERVE_DECLINE_NS;
	}
	struct stat st;
	if (fstatat(dir, "root", &st, 0) < 0 || !same_file(&st, &self.root))
		return MZ_SERVE_DECLINE_NS;
	return 0;
}

/* What the kernel says of the client's scheduling: its nice value and the
 * CPUs it may run on (`nice mezzo ...`, `taskset -c 1 mezzo ...`). */
static void take_sched(pid_t pid)
{
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, (id_t)pid);
	if (errno == 0)
		setpriority(PRIO_PROCESS, 0, nice);
	cpu_set_t cpus;
	if (sched_getaffinity(pid, sizeof(cpus), &cpus) == 0)
		sched_setaffinity(0, sizeof(cpus), &cpus);
}

/* The statements this worker's stores prepared, for the next spares. */
static void report_sql(void)
{
	const char *sql[CHAN_MAX_SQL];
	size_t n = mz_store_seen_sql(sql, CHAN_MAX_SQL);
	if (chan < 0 || n == 0)
		return;
	struct chan_msg m = {.kind = CHAN_SQL, .pid = (int32_t)getpid()};
	for (size_t i = 0; i < n; i++)
		m.sql[i] = (uint64_t)(uintptr_t)sql[i];
	if (send(chan, &m, offsetof(struct chan_msg, sql) + n * sizeof(m.sql[0]),
		 MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* the server is gone, or busy: the next spares prepare less */
	}
}

static void report_exit(int status, void *arg)
{
	(void)arg;
	if (getpid() != worker_pid)
		return;
	if (!atomic_exchange(&reported, 1)) {
		fflush(NULL); /* the command's output first, then its status */
		mz_trace_flush(); /* and its steps (a client's timeline is whole) */
		if (conn >= 0)
			mz_serve_tell(conn, MZ_SERVE_EXIT, status & 0xff);
	}
	report_sql();
}

bool mz_serve_is_worker(void)
{
	return conn >= 0 && getpid() == worker_pid && !atomic_load(&reported);
}

void mz_serve_outlive(void)
{
	atomic_store(&outlive, 1);
}

void mz_serve_report(int status)
{
	if (conn < 0 || getpid() != worker_pid || atomic_exchange(&reported, 1))
		return;
	mz_serve_tell(conn, MZ_SERVE_EXIT, status & 0xff);
}

static void drop_conn_in_child(void)
{
	/* a fork of the worker (a detached supervisor, say) is not the command */
	if (conn >= 0)
		close(conn);
	if (chan >= 0)
		close(chan);
	conn = chan = -1;
}

/* The worker's second thread, made while it is a spare (a thread's start
 * cost ~0.1 ms in a fresh fork, on the client's time): once the command is
 * taken, it forwards the client's signals and watches for its end. */
static struct {
	bool running;
	sem_t go_watch;
} helper;

static void watch_client(void)
{
	static const int forwarded[] = MZ_SERVE_FORWARDED;
	for (;;) {
		struct mz_serve_msg m;
		ssize_t n = recv(conn, &m, sizeof(m), MSG_WAITALL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m))
			break;
		if (m.kind != MZ_SERVE_SIGNAL)
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
			if (forwarded[i] == m.value && !atomic_load(&outlive))
				kill(worker_pid, m.value);
	}
	/* The client is gone before the command ended: it was killed (it never
	 * leaves otherwise), and a direct run would have died with it. */
	if (!atomic_load(&reported) && !atomic_load(&outlive))
		kill(worker_pid, SIGKILL);
}

static void *helper_main(void *arg)
{
	(void)arg;
	while (sem_wait(&helper.go_watch) < 0)
		;
	watch_client();
	return NULL;
}

void mz_serve_worker_ready(void)
{
	prepare_self();
	note_spare_state();
	sem_init(&helper.go_watch, 0, 0);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread takes no signal */
	pthread_t th;
	int e = pthread_create(&th, NULL, helper_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e == 0) {
		pthread_detach(th);
		helper.running = true;
	}
}

/* Read the request and its fds; 0, or a decline reason. */
static int read_req(int c, struct mz_serve_req *q, int fds[MZ_SERVE_NFDS], char **blob)
{
	int got;
	ssize_t n = mz_serve_recv_fds(c, q, sizeof(*q), 0, fds, MZ_SERVE_NFDS, &got);
	if (n <= 0 || got != MZ_SERVE_NFDS) {
		while (got > 0)
			close(fds[--got]);
		return MZ_SERVE_DECLINE_REQUEST;
	}
	if (n < (ssize_t)sizeof(*q) &&
	    read_all(c, (char *)q + n, sizeof(*q) - (size_t)n) != (ssize_t)(sizeof(*q) - (size_t)n))
		return MZ_SERVE_DECLINE_REQUEST;
	if (q->magic != MZ_SERVE_MAGIC || q->argc < 1 || q->blob_len > MZ_SERVE_MAX_BLOB ||
	    (uint64_t)q->argc + q->envc > MZ_SERVE_MAX_STRINGS)
		return MZ_SERVE_DECLINE_REQUEST;
	*blob = xmalloc(q->blob_len + 1);
	if (read_all(c, *blob, q->blob_len) != (ssize_t)q->blob_len)
		return MZ_SERVE_DECLINE_REQUEST;
	/* exactly argc + envc strings, each ending in its NUL */
	uint64_t strings = 0;
	for (uint32_t i = 0; i < q->blob_len; i++)
		strings += (*blob)[i] == '\0';
	if (strings != (uint64_t)q->argc + q->envc ||
	    (q->blob_len > 0 && (*blob)[q->blob_len - 1] != '\0'))
		return MZ_SERVE_DECLINE_REQUEST;
	return 0;
}

/* The client's state, made this process's. */
static void take_on(const struct mz_serve_req *q, int fds[MZ_SERVE_NFDS], char **env)
{
	for (int i = 0; i < 3; i++) {
		dup2(fds[i], i);
		close(fds[i]);
	}
	if (fchdir(fds[3]) < 0)
		mz_debug("serve: fchdir: %s", strerror(errno));
	close(fds[3]);
	umask((mode_t)(q->umask & 0777));
	for (int r = 0; r < MZ_SERVE_NLIMITS; r++) {
		struct rlimit rl = {.rlim_cur = q->rlim[r].cur, .rlim_max = q->rlim[r].max};
		if (spare.rlim_known[r] && spare.rlim[r].rlim_cur == rl.rlim_cur &&
		    spare.rlim[r].rlim_max == rl.rlim_max)
			continue;
		if (setrlimit(r, &rl) < 0)
			mz_debug("serve: rlimit %d: %s", r, strerror(errno));
	}
	clearenv();
	for (char **e = env; *e; e++)
		if (strchr(*e, '='))
			putenv(*e);
	sigset_t mask;
	sigemptyset(&mask);
	for (int s = 1; s <= 64; s++) {
		bool ign = (q->sig_ignored >> (s - 1)) & 1;
		struct sigaction sa = {.sa_handler = ign ? SIG_IGN : SIG_DFL};
		if (s != SIGKILL && s != SIGSTOP && spare.disp[s] != DISP_NONE &&
		    spare.disp[s] != (ign ? DISP_IGN : DISP_DFL))
			sigaction(s, &sa, NULL);
		if ((q->sig_blocked >> (s - 1)) & 1)
			sigaddset(&mask, s);
	}
	sigprocmask(SIG_SETMASK, &mask, NULL);
}

void mz_serve_worker_prepare(void)
{
	prepare_self();
}

int mz_serve_worker_take(int c, int chan_fd, struct mz_serve_job *job)
{
	prepare_self();
	/* a client that connects and sends nothing holds up this fork alone,
	 * and not for long */
	struct timeval tv = {.tv_sec = 10};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct ucred cr;
	socklen_t crl = sizeof(cr);
	struct mz_serve_req q;
	int fds[MZ_SERVE_NFDS] = {-1, -1, -1, -1};
	char *blob = NULL;
	int why = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 ? MZ_SERVE_DECLINE_REQUEST
		  : cr.uid != geteuid()				       ? MZ_SERVE_DECLINE_CREDS
								       : 0;
	/* The client first, then its request: sent right after its connect,
	 * the request is here by the time the check is done.  (The check in
	 * the helper thread, beside the reading, cost two thread wakeups,
	 * ~65 µs here, for nothing to overlap.) */
	if (why == 0)
		why = check_client(cr.pid);
	if (why == 0)
		why = read_req(c, &q, fds, &blob);
	if (why) {
		mz_serve_tell(c, MZ_SERVE_DECLINE, why);
		return 0;
	}
	tv.tv_sec = 0;
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* from here on the command is this worker's: a connection that ends
	 * without a status is an error for the client, not a cue to run it */
	struct mz_serve_msg taken = {.kind = MZ_SERVE_TAKEN};
	if (send(c, &taken, sizeof(taken), MSG_NOSIGNAL) != (ssize_t)sizeof(taken))
		return 0; /* the client is gone: nothing may run */

	take_sched(cr.pid);
	char **v = xcalloc((size_t)q.argc + q.envc + 2, sizeof(*v));
	char *p = blob;
	for (uint32_t i = 0; i < q.argc + q.envc; i++, p += strlen(p) + 1)
		v[i + (i >= q.argc)] = p; /* argv, NULL, env, NULL */
	take_on(&q, fds, v + q.argc + 1);

	conn = c;
	chan = chan_fd;
	worker_pid = getpid();
	pthread_atfork(NULL, NULL, drop_conn_in_child);
	on_exit(report_exit, NULL);
	if (helper.running)
		sem_post(&helper.go_watch);
	mz_log_init("mezzo"); /* MEZZO_DEBUG as the client has it */
	mz_trace_init();      /* MEZZO_TRACE too */
	mz_trace("serve: command taken");
	mz_debug("serve: request from pid %d%s", (int)cr.pid,
		 helper.running ? "" : " (no watcher thread: signals are not forwarded)");
	job->argc = (int)q.argc;
	job->argv = v;
	return 1;
}
