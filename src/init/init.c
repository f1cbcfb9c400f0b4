/*
 * init.c — mezzo-init, pid 1 of every domain.
 *
 * A static binary (plain libc, nothing from src/lib) that mz_domain_spawn
 * executes from a host file descriptor as the last step of building a domain.
 * Its work is what the kernel asks of a pid namespace's init and what a domain
 * needs of its "system layer" at the smallest:
 *   - run the domain's services (--service NAME N ARGS..., in order) and
 *     restart one that exits, with a growing delay so that a crashing one
 *     does not spin;
 *   - run the main command (argv after "--"), or adopt it (--main-pid), with
 *     the given ids, working directory and controlling terminal, in init's
 *     own environment;
 *   - reap every zombie of the namespace (orphans are re-parented to pid 1);
 *   - forward SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH
 *     to the main command (pid 1 gets no default signal actions, so it has to
 *     catch them to receive them at all); without a main command, SIGTERM,
 *     SIGINT or SIGQUIT stop the domain and SIGHUP goes to every service;
 *   - shut down in order when the main command exits or a stop is asked:
 *     each service in the reverse order of the list (SIGTERM to its process
 *     group, a grace period, SIGKILL), then SIGTERM to everything left, a
 *     grace period, SIGKILL to the rest; exit with the main command's status
 *     (its exit code, or 128 + the signal that killed it), 0 without one.
 * The protocol with the spawner (argv, --ready-fd) is in protocol.h.
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
	const char *name;    /* of a service (NULL: the main command) */
	int64_t started_ms;  /* when it was last started */
	int64_t restart_at;  /* 0, or when to start it again (ms) */
	int64_t delay_ms;    /* the next restart's delay */
};

#define MAX_SERVICES 64
#define RESTART_MIN_MS 250
#define RESTART_MAX_MS 30000
#define RESTART_STABLE_MS 10000 /* up that long: the delay starts over */

static struct service services[MAX_SERVICES + 1];
static int nservices;
static bool stopping;
static int ready_fd = -1;
static long grace_ms = MZ_INIT_GRACE_MS;
static bool is_pid1;

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* Report a failure: to the spawner while it listens (it adds strerror and
 * makes it the spawn's error), else on stderr.  status: CMD's exec failed,
 * and this is what a shell would say of it (protocol.h); else 0. */
static void vsay(int status, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void vsay(int status, int err, const char *fmt, va_list ap)
{
	struct mz_init_msg m = {.err = err, .status = status};
	vsnprintf(m.msg, sizeof(m.msg), fmt, ap);
	if (ready_fd >= 0 && write(ready_fd, &m, sizeof(m)) == (ssize_t)sizeof(m))
		return;
	if (err)
		dprintf(2, "mezzo-init: %s: %s\n", m.msg, strerror(err));
	else
		dprintf(2, "mezzo-init: %s\n", m.msg);
}

static void say(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(0, err, fmt, ap);
	va_end(ap);
}

static void say_status(int status, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say_status(int status, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(status, err, fmt, ap);
	va_end(ap);
}

static void usage(void)
{
	dprintf(2, "usage: mezzo-init [--ready-fd N] [--uid U] [--gid G] [--groups G,...] "
		   "[--cwd DIR] [--tty] [--grace MS] [--service NAME N ARG1..ARGN]... "
		   "[--main-pid PID] -- [CMD [ARG...]]\n");
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

/* Parse argv: the services go into services[], the main command's options
 * into *s; returns whether there is a main command. */
static bool parse(int argc, char **argv, struct service *s)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--service") == 0) {
			/* NAME N ARG1..ARGN; the array is cut where the next begins */
			if (i + 2 >= argc || nservices == MAX_SERVICES)
				usage();
			struct service *v = &services[nservices++];
			v->name = argv[i + 1];
			long n = num(argv[i + 2]);
			if (n < 1 || n > argc - i - 3)
				usage();
			v->argv = calloc((size_t)n + 1, sizeof(char *));
			if (v->argv == NULL)
				usage();
			memcpy(v->argv, argv + i + 3, (size_t)n * sizeof(char *));
			v->delay_ms = RESTART_MIN_MS;
			i += 2 + (int)n;
			continue;
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
		return false;
	s->argv = argv + i;
	s->main = true;
	return true;
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
	say_status(MZ_INIT_EXEC_STATUS(e), e, "cannot run %s", s->argv[0]);
	_exit(MZ_INIT_EXEC_STATUS(e));
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	s->started_ms = mono_ms();
	s->restart_at = 0;
	return 0;
}

/* A service ended: start it again later, sooner if it had run a while. */
static void service_ended(struct service *s)
{
	int64_t now = mono_ms();
	if (now - s->started_ms >= RESTART_STABLE_MS)
		s->delay_ms = RESTART_MIN_MS;
	int st = s->status;
	if (WIFSIGNALED(st))
		dprintf(2, "mezzo-init: service %s killed by signal %d; restart in %lld ms\n",
			s->name, WTERMSIG(st), (long long)s->delay_ms);
	else
		dprintf(2, "mezzo-init: service %s exited with status %d; restart in %lld ms\n",
			s->name, WEXITSTATUS(st), (long long)s->delay_ms);
	s->restart_at = now + s->delay_ms;
	s->delay_ms = s->delay_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : s->delay_ms * 2;
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
				struct service *s = &services[i];
				if (s->pid != pid)
					continue;
				s->pid = 0;
				s->status = st;
				s->exited = true;
				if (!s->main && !stopping)
					service_ended(s);
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

/* Start the services whose restart is due; the time (ms) until the next
 * one, or -1 if none is waiting. */
static int64_t restart_due(void)
{
	int64_t now = mono_ms(), next = -1;
	for (int i = 0; i < nservices; i++) {
		struct service *s = &services[i];
		if (s->main || s->pid > 0 || s->restart_at == 0)
			continue;
		if (s->restart_at <= now) {
			int r = service_start(s);
			if (r < 0) {
				dprintf(2, "mezzo-init: cannot start service %s: %s\n", s->name,
					strerror(-r));
				s->restart_at = now + s->delay_ms;
			}
			continue;
		}
		if (next < 0 || s->restart_at - now < next)
			next = s->restart_at - now;
	}
	return next;
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

/* Wait up to ms for done() or a new stop request (true: asked again). */
static bool wait_until(const sigset_t *set, int64_t ms, bool (*done)(void *), void *arg)
{
	int64_t deadline = mono_ms() + ms;
	while (!done(arg)) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return false;
		/* Orphans of the namespace wake us with SIGCHLD; processes joined
		 * from the host do not, so look again every 10 ms. */
		if (left > 10)
			left = 10;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = left * 1000000};
		int sig = sigtimedwait(set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
			return true; /* asked again: no more grace */
		reap();
	}
	return false;
}

static bool service_gone(void *arg)
{
	return ((struct service *)arg)->pid == 0;
}

static bool all_gone(void *arg)
{
	(void)arg;
	return !reap();
}

/* Shut down: the services in reverse order, each given the grace period,
 * then whatever is left of the namespace. */
static void shutdown_all(const sigset_t *set)
{
	stopping = true;
	bool hurry = false;
	reap();
	for (int i = nservices - 1; i >= 0; i--) {
		struct service *s = &services[i];
		if (s->main || s->pid <= 0)
			continue;
		kill(-s->pid, SIGTERM);
		kill(s->pid, SIGTERM); /* if it left its process group */
		kill(-s->pid, SIGCONT);
		if (hurry || wait_until(set, grace_ms, service_gone, s))
			hurry = true;
		if (s->pid > 0) {
			kill(-s->pid, SIGKILL);
			kill(s->pid, SIGKILL);
			while (waitpid(s->pid, &s->status, 0) < 0 && errno == EINTR)
				;
			s->pid = 0;
		}
	}
	if (!reap())
		return;
	signal_all(SIGTERM);
	signal_all(SIGCONT);
	if (!hurry)
		hurry = wait_until(set, grace_ms, all_gone, NULL);
	if (hurry || reap()) {
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
	struct service main_cmd = {0};
	bool has_main = parse(argc, argv, &main_cmd);
	struct service *m = NULL;
	if (has_main) {
		m = &services[nservices++];
		*m = main_cmd;
	} else if (nservices == 0) {
		usage();
	}
	is_pid1 = getpid() == 1;
	if (!is_pid1)
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* testable outside a domain */

	/* Catch (so that pid 1 receives them at all) and block: they are taken
	 * synchronously with sigtimedwait, no handler runs. */
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

	if (ready_fd >= 0)
		fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
	for (int i = 0; i < nservices; i++) {
		struct service *s = &services[i];
		if (s->main && s->pid > 0) {
			/* --main-pid: the spawner started it (our child) in parallel
			 * with our exec; it may even be gone already (a zombie). */
			siginfo_t si;
			if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
			    errno == ECHILD) {
				say(ECHILD, "--main-pid %d is not a child of mezzo-init", (int)s->pid);
				return MZ_INIT_EXIT_NOTFOUND;
			}
			reap();
			continue;
		}
		int r = service_start(s);
		if (r < 0) {
			say(-r, "fork");
			return MZ_INIT_EXIT_NOTFOUND;
		}
	}
	if (ready_fd >= 0) {
		close(ready_fd);
		ready_fd = -1;
	}

	while (m ? !m->exited : !stopping) {
		int64_t next = restart_due();
		siginfo_t si;
		int sig;
		if (next >= 0) {
			struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
			sig = sigtimedwait(&set, &si, &ts);
		} else {
			sig = sigwaitinfo(&set, &si);
		}
		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			reap();
		} else if (m) {
			if (m->pid > 0)
				kill(m->pid, sig);
		} else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
			stopping = true;
		} else if (sig == SIGHUP || sig == SIGUSR1 || sig == SIGUSR2) {
			for (int i = 0; i < nservices; i++)
				if (services[i].pid > 0)
					kill(services[i].pid, sig);
		}
	}
	shutdown_all(&set);

	if (m == NULL)
		return 0;
	if (WIFEXITED(m->status))
		return WEXITSTATUS(m->status);
	if (WIFSIGNALED(m->status))
		return 128 + WTERMSIG(m->status);
	return 1;
}
