/*
 * init.c — mezzo-init, pid 1 of every domain.
 *
 * A static binary (plain libc, nothing from src/lib) that mz_domain_spawn
 * executes from a host file descriptor as the last step of building a domain.
 * Its work is what the kernel asks of a pid namespace's init and what a domain
 * needs of its "system layer" at the smallest:
 *   - run the domain's services; for now one, the main command (argv after
 *     "--"), with the given ids, working directory and controlling terminal,
 *     in init's own environment;
 *   - reap every zombie of the namespace (orphans are re-parented to pid 1);
 *   - forward SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH
 *     to the main command (pid 1 gets no default signal actions, so it has to
 *     catch them to receive them at all);
 *   - when the main command exits: SIGTERM to everything left, a grace period,
 *     SIGKILL to the rest, then exit with the main command's status (its exit
 *     code, or 128 + the signal that killed it).
 * The protocol with the spawner (argv, --ready-fd) is in protocol.h.
 *
 * Services are a table so that more (a getty, sshd, ...) can be added later
 * with their own restart and stop-order policy; the main loop already treats
 * them uniformly.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#define MAX_GROUPS 64
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct service {
	char **argv;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
	const char *cwd;
	bool tty;   /* make stdin its controlling terminal */
	bool main;  /* init exits with its status */
	pid_t pid;  /* 0: not running */
	int status; /* wait status, once exited */
	bool exited;
};

static struct service services[1];
static int nservices;
static int ready_fd = -1;
static long grace_ms = MZ_INIT_GRACE_MS;
static bool is_pid1;

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* Report a failure: to the spawner while it listens (it adds strerror and
 * makes it the spawn's error), else on stderr. */
static void say(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int err, const char *fmt, ...)
{
	struct mz_init_msg m = {.err = err};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m.msg, sizeof(m.msg), fmt, ap);
	va_end(ap);
	if (ready_fd >= 0 && write(ready_fd, &m, sizeof(m)) == (ssize_t)sizeof(m))
		return;
	if (err)
		dprintf(2, "mezzo-init: %s: %s\n", m.msg, strerror(err));
	else
		dprintf(2, "mezzo-init: %s\n", m.msg);
}

static void usage(void)
{
	dprintf(2, "usage: mezzo-init [--ready-fd N] [--uid U] [--gid G] [--groups G,...] "
		   "[--cwd DIR] [--tty] [--grace MS] [--main-pid PID] -- CMD [ARG...]\n");
	exit(2);
}

static long num(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		usage();
	return v;
}

static void parse(int argc, char **argv, struct service *s)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--tty") == 0) {
			s->tty = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "--ready-fd") == 0) {
			ready_fd = (int)num(v);
		} else if (strcmp(a, "--uid") == 0) {
			s->uid = (uid_t)num(v);
		} else if (strcmp(a, "--gid") == 0) {
			s->gid = (gid_t)num(v);
		} else if (strcmp(a, "--cwd") == 0) {
			s->cwd = v;
		} else if (strcmp(a, "--main-pid") == 0) {
			s->pid = (pid_t)num(v);
		} else if (strcmp(a, "--grace") == 0) {
			grace_ms = num(v);
		} else if (strcmp(a, "--groups") == 0) {
			char buf[1024];
			snprintf(buf, sizeof(buf), "%s", v);
			for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (s->ngroups == MAX_GROUPS)
					usage();
				s->groups[s->ngroups++] = (gid_t)num(t);
			}
		} else {
			usage();
		}
	}
	if (i >= argc)
		usage();
	s->argv = argv + i;
	s->main = true;
}

/* execve with a search of $PATH, as execvp does, without allocating. */
static void exec_search(char **argv)
{
	const char *file = argv[0];
	extern char **environ;
	if (strchr(file, '/')) {
		execve(file, argv, environ);
		return;
	}
	const char *path = getenv("PATH");
	if (path == NULL || *path == '\0')
		path = DEFAULT_PATH;
	int saved = ENOENT;
	for (const char *p = path;; p++) {
		const char *e = strchrnul(p, ':');
		char buf[4096];
		int n = snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(e - p), p, e > p ? "/" : "",
				 file);
		if (n > 0 && (size_t)n < sizeof(buf)) {
			execve(buf, argv, environ);
			if (errno == EACCES)
				saved = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
		}
		if (*e == '\0')
			break;
		p = e;
	}
	errno = saved;
}

/* In the child: become the service and exec it.  Never returns. */
static void service_exec(struct service *s)
{
	sigset_t none;
	sigemptyset(&none);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* Its own session: the service's process group can be signalled as a
	 * whole, and a terminal can become its controlling one. */
	setsid();
	if (s->tty && ioctl(0, TIOCSCTTY, 0) < 0)
		dprintf(2, "mezzo-init: cannot make stdin the controlling terminal: %s\n",
			strerror(errno));
	if (setgroups((size_t)s->ngroups, s->groups) < 0) {
		say(errno, "setgroups");
		_exit(MZ_INIT_EXIT_NOTFOUND);
	}
	if (setresgid(s->gid, s->gid, s->gid) < 0) {
		say(errno, "setgid %u", (unsigned)s->gid);
		_exit(MZ_INIT_EXIT_NOTFOUND);
	}
	if (setresuid(s->uid, s->uid, s->uid) < 0) {
		say(errno, "setuid %u", (unsigned)s->uid);
		_exit(MZ_INIT_EXIT_NOTFOUND);
	}
	if (s->cwd && chdir(s->cwd) < 0) {
		say(errno, "cannot change directory to %s", s->cwd);
		_exit(MZ_INIT_EXIT_NOTFOUND);
	}
	if (ready_fd >= 0)
		fcntl(ready_fd, F_SETFD, FD_CLOEXEC); /* closed by a successful exec */
	exec_search(s->argv);
	int e = errno;
	say(e, "cannot run %s", s->argv[0]);
	_exit(e == ENOENT ? MZ_INIT_EXIT_NOTFOUND : MZ_INIT_EXIT_NOEXEC);
}

/* vfork: init is small, but copying even its page tables is most of a
 * fork; the child only sets itself up and execs (or _exits). */
static int service_start(struct service *s)
{
	pid_t pid = vfork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		service_exec(s);
	s->pid = pid;
	s->exited = false;
	return 0;
}

/* Reap every exited child; true while children (or, as pid 1, any other
 * process of the namespace) are left. */
static bool reap(void)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid > 0) {
			for (int i = 0; i < nservices; i++) {
				if (services[i].pid == pid) {
					services[i].pid = 0;
					services[i].status = st;
					services[i].exited = true;
				}
			}
			continue;
		}
		if (pid == 0)
			return true;
		if (errno == EINTR)
			continue;
		/* No children.  Processes joined from the host (mz_domain_exec) are
		 * not ours to wait for, but as pid 1 kill(-1, 0) still sees them. */
		return is_pid1 && kill(-1, 0) == 0;
	}
}

static void signal_all(int sig)
{
	if (is_pid1) {
		kill(-1, sig); /* every process of the namespace but init */
		return;
	}
	for (int i = 0; i < nservices; i++)
		if (services[i].pid > 0)
			kill(-services[i].pid, sig);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The main service is gone: stop what is left, politely first. */
static void stop_rest(const sigset_t *set)
{
	if (!reap())
		return;
	signal_all(SIGTERM);
	signal_all(SIGCONT);
	int64_t deadline = mono_ms() + grace_ms;
	bool more = true;
	while (more) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		/* Orphans of the namespace wake us with SIGCHLD; processes joined
		 * from the host do not, so look again every 10 ms. */
		if (left > 10)
			left = 10;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = left * 1000000};
		int sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
			break; /* asked again: no more grace */
		more = reap();
	}
	if (more) {
		signal_all(SIGKILL);
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
	}
}

static void noop(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	struct service *m = &services[nservices++];
	parse(argc, argv, m);
	is_pid1 = getpid() == 1;
	if (!is_pid1)
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* testable outside a domain */

	/* Catch (so that pid 1 receives them at all) and block: they are taken
	 * synchronously with sigwaitinfo, no handler runs. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	struct sigaction sa = {.sa_handler = noop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		sigaddset(&set, forwarded[i]);
		sigaction(forwarded[i], &sa, NULL);
	}
	/* SETMASK: the spawner starts us with everything blocked */
	sigprocmask(SIG_SETMASK, &set, NULL);

	if (m->pid > 0) {
		/* --main-pid: the spawner started it (our child) in parallel with
		 * our exec; it may even be gone already. */
		reap();
	} else {
		if (ready_fd >= 0)
			fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
		int r = service_start(m);
		if (r < 0) {
			say(-r, "fork");
			return MZ_INIT_EXIT_NOTFOUND;
		}
	}
	if (ready_fd >= 0) {
		close(ready_fd);
		ready_fd = -1;
	}

	while (!m->exited) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			reap();
		} else if (m->pid > 0) {
			kill(m->pid, sig);
		}
	}
	stop_rest(&set);

	if (WIFEXITED(m->status))
		return WEXITSTATUS(m->status);
	if (WIFSIGNALED(m->status))
		return 128 + WTERMSIG(m->status);
	return 1;
}
