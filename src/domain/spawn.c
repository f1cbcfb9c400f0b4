/*
 * spawn.c — mz_domain_spawn: make a domain and start its init; or the same
 * in two steps, mz_domain_spawn_begin (up to and with the clone) and
 * mz_domain_spawn_finish (the rest), for a caller that works meanwhile
 * (supervisor.c, "A domain made as it starts").
 *
 * First what needs no child: the seccomp program, the children's stacks,
 * the domain's v2 cgroup (and, through spec->root_hook, the caller's mount
 * of the root finishing meanwhile).
 * One clone3 makes the domain's first process ("pid 1") in new user, pid,
 * mount, uts, ipc and network namespaces, born into the domain's v2 cgroup
 * (CLONE_INTO_CGROUP) with a pidfd for the caller.  Then, in parallel:
 *   parent: makes the v1 cgroups (hybrid hosts; the v2 group had to exist
 *           before the clone) and sets the rlimits (the end of _begin);
 *           writes the id maps, says "go", brings up the domain's loopback
 *           from outside (setns of the calling thread into the domain's
 *           network namespace, for one socket), says "lo" (_finish);
 *   pid 1:  sets no_new_privs and the seccomp filter (secure.c), waits for
 *           "go", moves itself into the v1 groups (hybrid hosts), builds
 *           the root (mounts.c), becomes the domain's root user, sets
 *           the hostname, enters a cgroup namespace of its own, pivots,
 *           drops capabilities; then it clones the main command's process
 *           (pid 2) and execveat()s mezzo-init, from an fd opened on the
 *           host, with "--main-pid 2";
 *   pid 2:  resets signals, takes the command's session, terminal, ids and
 *           directory, waits for "lo", execs the command.
 * So init's exec and the command's exec run side by side, and init adopts
 * the command as its main service instead of starting it.
 *
 * Reporting: a pipe whose write end is close-on-exec in both children.
 * Whoever fails writes one struct mz_init_msg and exits; when both have
 * exec'd the parent reads end-of-file.  So spawn returns either a domain
 * whose command runs, or a precise error with nothing left behind (processes
 * reaped, groups removed).
 *
 * The children share the caller's memory (child.c): everything that
 * allocates (the seccomp program, init's argv, cgroup paths) is prepared
 * before, nothing they read is freed before end-of-file, and their system
 * calls go through sys.h.  The struct child they get is read-only to them
 * but for the two fields pid 1 fills in for init's argv.  Their mz_trace()
 * steps (lib/trace.h: a vDSO clock read and an atomic add) land in the
 * caller's table where they share its memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/trace.h"
#include "../lib/util.h"
#include "runtimeInt.h"
#include "sys.h"


#define STACK_SIZE (128 * 1024)

struct child {
	const struct mz_domain_spec *spec;
	int ctl;                      /* the children's end of the control pair */
	int rep;                      /* the write end of the report pipe */
	int initfd;                   /* mezzo-init, opened on the host */
	struct mz_cg_join join;
	bool v2_done;                 /* clone3 put us in the v2 group */
	const struct sock_fprog *prog;
	uint64_t keep;                /* capabilities */
	int ctl2;                     /* pid 1 to pid 2: ctl after the fd layout */
	int exec_r, exec_w;           /* pid 1's exec closes exec_w: pid 2 waits
					 for the end of exec_r */
	char **init_argv;             /* [main_pid_slot] is filled in by pid 1 */
	int main_pid_slot;
	char main_pid[16];
	char *const *envp;
	struct mz_mount_args margs;
	char *stack2;                 /* pid 2's stack */
};

/* One byte from the parent: 1, 0 at end-of-file (the parent gave up), -errno. */
static long child_wait(int fd)
{
	char b;
	long r;
	while ((r = mz_sys(SYS_recvfrom, fd, &b, 1, 0, NULL, NULL)) == -EINTR)
		;
	return r;
}

/* pid 2: the main command. */
static void cmd_main(void *arg)
{
	struct child *c = arg;
	const struct mz_domain_spec *s = c->spec;
	const char *what = "?";
	int r = 0;
	/* pid 1 laid out our fds (the report pipe is 3; the control socket
	 * kept its number), dropped capabilities and loaded the seccomp filter
	 * before cloning us */
	mz_child_signals_default();
	mz_sys(SYS_close, c->exec_w);
	/* its own session: init can signal its process group, and a terminal
	 * can become its controlling one */
	if (s->tty) {
		r = mz_child_ctty(&what);
		if (r == -EPERM)
			r = 0; /* a terminal that is some host session's: run without */
	} else if ((r = (int)mz_sys(SYS_setsid)) > 0) {
		r = 0;
	} else if (r < 0) {
		what = "setsid";
	}
	if (r == 0)
		r = mz_child_ids(s->uid, s->gid, &what);
	const char *cwd = s->cwd ? s->cwd : "/";
	if (r == 0 && (r = (int)mz_sys(SYS_chdir, cwd)) < 0) {
		mz_child_report(3, -r, "cannot change directory to", cwd);
		mz_sys(SYS_exit_group, MZ_INIT_EXIT_NOTFOUND);
	}
	if (r == 0 && child_wait(c->ctl2) != 1)
		mz_sys(SYS_exit_group, MZ_INIT_EXIT_NOTFOUND); /* the parent gave up; it reports */
	/* and pid 1 is mezzo-init by now (end of file: its exec closed the
	 * pipe, or it died, and this pid namespace with it): the parent's
	 * "go" does not wait for that exec, and a quick command could else
	 * find pid 1 still the spawner (its /proc/1, its comm) */
	char b;
	while (mz_sys(SYS_read, c->exec_r, &b, 1) == -EINTR)
		;
	mz_sys(SYS_close, c->exec_r);
	if (r < 0) {
		mz_child_report(3, -r, what, NULL);
		mz_sys(SYS_exit_group, MZ_INIT_EXIT_NOTFOUND);
	}
	mz_trace("pid 2: exec command");
	r = mz_exec_search(s->argv, c->envp);
	mz_child_report_exec(3, -r, "cannot run", s->argv[0]);
	mz_sys(SYS_exit_group, MZ_INIT_EXEC_STATUS(-r));
}

static void fmt_int(char *out, int v)
{
	char d[12];
	int n = 0;
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*out++ = d[--n];
	*out = '\0';
}

/* pid 1: the domain, then init. */
static void child_main(void *arg)
{
	struct child *c = arg;
	const struct mz_domain_spec *s = c->spec;
	const char *what = "?";
	int r;
	/* the struct is shared with pid 2 (and the parent): read-only here,
	 * but for the argv slot below */
	int rep = c->rep, initfd = c->initfd, ctl = c->ctl;
	/* Only what we use, first: the copy of the caller's fds we were born
	 * with holds its tree's /dev/fuse open, and while any process holds
	 * that, the kernel keeps the connection even when its server is gone.
	 * Had the supervisor been killed after reading one of our requests (a
	 * lookup of a mount point, pid 2's exec of the command), we would wait
	 * for the answer in D state for ever, SIGKILL or not (the kernel waits
	 * out a request a server has read), and with us pid 2, cloned from us
	 * before its exec. */
	const int keep[] = {rep, initfd, ctl, s->stdio[0], s->stdio[1], s->stdio[2],
			    c->v2_done ? -1 : c->join.v2fd};
	if ((r = mz_child_keep_only(keep, (int)(sizeof(keep) / sizeof(keep[0])))) < 0) {
		what = "cannot close the supervisor's files";
		goto fail;
	}
	/* While the parent writes the id maps and makes the v1 cgroups: the
	 * second wall's filter (no_new_privs is not needed for it yet — we hold
	 * CAP_SYS_ADMIN in the new user namespace — and nothing the setup below
	 * calls is on the deny list). */
	mz_trace("pid 1: up");
	if ((r = mz_seccomp_apply(c->prog, &what)) < 0)
		goto fail;
	if (child_wait(ctl) != 1)
		mz_sys(SYS_exit_group, MZ_INIT_EXIT_NOTFOUND); /* the parent gave up; it reports */
	if ((r = mz_cg_join_self(&c->join, c->v2_done)) < 0) {
		what = "cannot join the domain's cgroups";
		goto fail;
	}

	mz_trace("pid 1: go; cgroups joined");
	int rootfd;
	if ((r = mz_mounts_bind_root(s->rootfs, &rootfd, &what)) < 0)
		goto fail;
	if ((r = mz_mounts_bind_files(rootfd, &c->margs, &what)) < 0)
		goto fail;
	if ((r = mz_child_ids(0, 0, &what)) < 0)
		goto fail;
	if ((r = (int)mz_sys(SYS_unshare, CLONE_NEWCGROUP)) < 0) {
		what = "cannot make a cgroup namespace";
		goto fail;
	}
	if ((r = (int)mz_sys(SYS_sethostname, s->name, strlen(s->name))) < 0) {
		what = "sethostname";
		goto fail;
	}
	if ((r = mz_mounts_populate(rootfd, &c->margs, &what)) < 0)
		goto fail;
	mz_trace("pid 1: mounts made");
	if ((r = mz_mounts_pivot(rootfd, &what)) < 0)
		goto fail;
	if ((r = mz_child_fds(s->stdio, &rep, (int *[]){&initfd, &ctl}, 2, &what)) < 0)
		goto fail;
	if ((r = (int)mz_sys(SYS_fcntl, 3, F_SETFD, FD_CLOEXEC)) < 0) {
		what = "fcntl";
		goto fail;
	}
	if ((r = mz_caps_apply(c->keep, &what)) < 0)
		goto fail;
	if (s->image_init) {
		/* The image's own init is pid 1: a session of its own, the
		 * terminal, the network up ("l"), then exec.  Failing to run
		 * it is reported like a main command's failure. */
		if ((r = (int)mz_sys(SYS_setsid)) < 0) {
			what = "setsid";
			goto fail;
		}
		if (s->tty && (r = mz_child_ctty(&what)) < 0 && r != -EPERM)
			goto fail;
		if (child_wait(ctl) != 1)
			mz_sys(SYS_exit_group, MZ_INIT_EXIT_NOTFOUND);
		r = mz_exec_search(s->argv, c->envp);
		mz_child_report_exec(3, -r, "cannot run the image's init", s->argv[0]);
		mz_sys(SYS_exit_group, MZ_INIT_EXEC_STATUS(-r));
	}
	if (s->argv) {
		c->ctl2 = ctl; /* where pid 2 finds the control socket */
		int ep[2];
		if ((r = (int)mz_sys(SYS_pipe2, ep, O_CLOEXEC)) < 0) {
			what = "pipe";
			goto fail;
		}
		c->exec_r = ep[0];
		c->exec_w = ep[1];
		struct clone_args ca = {.exit_signal = SIGCHLD};
		pid_t pid = mz_clone_fn(&ca, cmd_main, c, c->stack2, STACK_SIZE);
		mz_sys(SYS_close, ep[0]);
		if (pid < 0) {
			r = pid;
			what = "cannot start the main command's process";
			goto fail;
		}
		fmt_int(c->main_pid, pid);
		c->init_argv[c->main_pid_slot] = c->main_pid;
	} else if (child_wait(ctl) != 1) {
		/* services only: init starts them once the network is up */
		mz_sys(SYS_exit_group, MZ_INIT_EXIT_NOTFOUND);
	}
	mz_trace("pid 1: exec init");
	r = (int)mz_sys(SYS_execveat, initfd, "", c->init_argv, c->envp, AT_EMPTY_PATH);
	what = "cannot execute mezzo-init";
fail:
	mz_child_report(rep, -r, what, NULL);
	mz_sys(SYS_exit_group, MZ_INIT_EXIT_NOTFOUND);
}

/* ---- the parent side */

/* The domain's network namespace, opened while pid 1 is surely alive (it
 * waits for our "go"): the fd keeps the namespace, so a pid 1 that fails
 * and exits later cannot turn its own error into one of ours. */
static int netns_open(pid_t pid, int *out, mz_error_t *err)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pid);
	*out = open(p, O_RDONLY | O_CLOEXEC);
	if (*out < 0)
		return mz_error_sys(err, errno, "cannot open the domain's network namespace");
	return 0;
}

/* Bring up lo in the namespace: one socket made there by this thread
 * (setns is per thread), then ioctls on it from here. */
static int loopback_up(int target, mz_error_t *err)
{
	cleanup_close int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return mz_error_sys(err, errno, "cannot open our network namespace");
	if (setns(target, CLONE_NEWNET) < 0)
		return mz_error_sys(err, errno, "cannot enter the domain's network namespace");
	cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int e = errno;
	if (setns(self, CLONE_NEWNET) < 0)
		abort(); /* our own namespace: cannot fail, and must not stay elsewhere */
	if (s < 0)
		return mz_error_sys(err, e, "socket in the domain's network namespace");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return mz_error_sys(err, errno, "SIOCGIFFLAGS lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return mz_error_sys(err, errno, "cannot bring up the domain's loopback");
	return 0;
}

/* The host path of the terminal on fd, if it is a plain /dev one. */
static bool terminal_path(int fd, char *out, size_t n)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t l = readlink(p, out, n - 1);
	if (l <= 0)
		return false;
	out[l] = '\0';
	struct stat a, b;
	return strncmp(out, "/dev/", 5) == 0 && stat(out, &a) == 0 && fstat(fd, &b) == 0 &&
	       a.st_rdev == b.st_rdev && S_ISCHR(a.st_mode);
}

/* The host side of the id range (an early begin has none yet: its finish
 * checks it). */
static int check_bases(const struct mz_domain_spec *s, mz_error_t *err)
{
	if (s->uid_base == 0 || s->gid_base == 0)
		return mz_error(err, EINVAL, "the domain's id range must not contain host root");
	return 0;
}

static int check_spec(const struct mz_domain_spec *s, bool bases, mz_error_t *err)
{
	const char *n = s->name;
	size_t len = n ? strlen(n) : 0;
	if (len == 0 || len > 64 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
	    strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len)
		return mz_error(err, EINVAL, "bad domain name '%s': 1 to 64 of [A-Za-z0-9_.-]",
				n ? n : "");
	const char *cn = s->cgroup_name;
	if (cn && (strlen(cn) == 0 || strlen(cn) > 128 || cn[0] == '.' ||
		   strspn(cn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
			   strlen(cn)))
		return mz_error(err, EINVAL, "bad cgroup name '%s'", cn);
	if (s->rootfs == NULL || s->rootfs[0] != '/')
		return mz_error(err, EINVAL, "the root file system must be an absolute path");
	if (s->init_path == NULL)
		return mz_error(err, EINVAL, "no mezzo-init path given");
	bool has_cmd = s->argv != NULL && s->argv[0] != NULL;
	if (!has_cmd && (s->image_init || s->nservices == 0))
		return mz_error(err, EINVAL, "no command to run in the domain");
	if (s->image_init && s->nservices > 0)
		return mz_error(err, EINVAL, "services are run by mezzo-init, not by the image's init");
	for (size_t i = 0; i < s->nservices; i++) {
		const struct mz_service *v = &s->services[i];
		if (v->name == NULL || v->name[0] == '\0' || v->argv == NULL || v->argv[0] == NULL)
			return mz_error(err, EINVAL, "service %zu has no name or no command", i + 1);
	}
	if (s->uid_count == 0 || s->gid_count == 0)
		return mz_error(err, EINVAL, "empty id range");
	int r;
	if (bases && (r = check_bases(s, err)) < 0)
		return r;
	if (s->uid >= s->uid_count || s->gid >= s->gid_count)
		return mz_error(err, EINVAL, "ids %u:%u are outside the domain's range",
				(unsigned)s->uid, (unsigned)s->gid);
	return 0;
}

static size_t argv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* mezzo-init's argv (protocol.h): the services, then "--main-pid" and a slot
 * pid 1 fills in, then the main command.  *n gets the array's length. */
static char **init_argv(const struct mz_domain_spec *s, int *slot, size_t *n)
{
	size_t len = 8 + argv_len(s->argv);
	for (size_t k = 0; k < s->nservices; k++)
		len += 3 + argv_len(s->services[k].argv);
	char **a = xcalloc(len, sizeof(char *));
	size_t i = 0;
	a[i++] = xstrdup("mezzo-init");
	if (s->stop_grace_ms > 0) {
		a[i++] = xstrdup("--grace");
		a[i++] = xasprintf("%d", s->stop_grace_ms);
	}
	for (size_t k = 0; k < s->nservices; k++) {
		size_t m = argv_len(s->services[k].argv);
		a[i++] = xstrdup("--service");
		a[i++] = xstrdup(s->services[k].name);
		a[i++] = xasprintf("%zu", m);
		for (size_t j = 0; j < m; j++)
			a[i++] = xstrdup(s->services[k].argv[j]);
	}
	*slot = -1;
	if (s->argv) {
		a[i++] = xstrdup("--main-pid");
		*slot = (int)i;
		a[i++] = NULL; /* filled in by pid 1; freed separately */
	}
	a[i++] = xstrdup("--");
	for (size_t k = 0; k < argv_len(s->argv); k++)
		a[i++] = xstrdup(s->argv[k]);
	*n = len;
	return a;
}

static void free_argv(char **a, int skip, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((int)i != skip)
			free(a[i]);
	free(a);
}

/* Read the report pipe until end-of-file (both children exec'd or gone):
 * 0, or the first failure reported. */
static int wait_ready(int fd, mz_error_t *err)
{
	int r = 0;
	for (;;) {
		struct mz_init_msg m;
		ssize_t n = read(fd, &m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return r < 0 ? r : mz_error_sys(err, errno, "waiting for the domain to start");
		if (n == 0)
			return r;
		if (r == 0 && (size_t)n == sizeof(m))
			r = mz_child_error(&m, "domain", err);
	}
}

static void reap(pid_t pid, int pidfd)
{
	if (pidfd >= 0)
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	else
		kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* A domain being made: its pid 1 cloned and waiting for the parent's "go". */
struct mz_spawn {
	struct child c;               /* read by the children until they exec */
	const struct mz_domain_spec *spec;
	bool early;                   /* MZ_SPAWN_EARLY: the bases checked at finish */
	int ctl, rep, initfd, netfd;  /* the parent's ends; mezzo-init; the netns */
	int ctl_child, rep_child;     /* the children's ends, closed here once cloned
					 (c's copies of them are c's: pid 1 reads them) */
	char *stacks;
	size_t init_argc;
	char console[PATH_MAX];
	char cg[sizeof(((struct mz_domain_proc *)0)->cgroup)];
	pid_t pid;
	int pidfd;
};

/* Free what the spawn holds; failed: kill pid 1 (pid 2 dies with its pid
 * namespace) and remove the groups first. */
static void spawn_free(struct mz_spawn *sp, bool failed)
{
	if (failed && sp->pid > 0)
		reap(sp->pid, sp->pidfd);
	/* Only now are the children done with our memory (exec'd or dead). */
	mz_cg_join_close(&sp->c.join);
	if (sp->c.init_argv)
		free_argv(sp->c.init_argv, sp->c.main_pid_slot, sp->init_argc);
	if (sp->stacks)
		munmap(sp->stacks, 2 * STACK_SIZE);
	int fds[] = {sp->ctl, sp->rep, sp->initfd, sp->netfd, sp->ctl_child, sp->rep_child,
		     failed ? sp->pidfd : -1};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (failed && sp->cg[0])
		mz_cg_remove(sp->cg, NULL);
	free(sp);
}

int mz_domain_spawn_begin(const struct mz_domain_spec *spec, unsigned flags,
			  struct mz_spawn **out, mz_error_t *err)
{
	*out = NULL;
	bool early = flags & MZ_SPAWN_EARLY;
	int r = check_spec(spec, !early, err);
	if (r < 0)
		return r;
	const struct sock_fprog *prog;
	if ((r = mz_seccomp_prog(spec->allow_perf_bpf, &prog, err)) < 0)
		return r;
	struct mz_spawn *sp = xcalloc(1, sizeof(*sp));
	sp->spec = spec;
	sp->early = early;
	sp->ctl = sp->rep = sp->initfd = sp->netfd = sp->ctl_child = sp->rep_child = -1;
	sp->c.join.v2fd = -1;
	sp->pid = sp->pidfd = -1;
	struct child *c = &sp->c;
	if ((sp->initfd = open(spec->init_path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = mz_error_sys(err, errno, "cannot open mezzo-init %s", spec->init_path);
		goto fail;
	}
	/* Control: the parent's "go" (to pid 1) and "lo" (to pid 2) on a
	 * socket (send with MSG_NOSIGNAL: a child that died must not kill the
	 * caller with SIGPIPE).  Reports: the children's failures on a pipe,
	 * whose reader gets every message written before end-of-file. */
	int sv[2], pv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = mz_error_sys(err, errno, "socketpair");
		goto fail;
	}
	sp->ctl = sv[0];
	c->ctl = sp->ctl_child = sv[1];
	if (pipe2(pv, O_CLOEXEC) < 0) {
		r = mz_error_sys(err, errno, "pipe");
		goto fail;
	}
	sp->rep = pv[0];
	c->rep = sp->rep_child = pv[1];
	sp->stacks = mmap(NULL, 2 * STACK_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (sp->stacks == MAP_FAILED) {
		sp->stacks = NULL;
		r = mz_error_sys(err, errno, "cannot map the children's stacks");
		goto fail;
	}
	mz_trace("spawn: begin");
	if ((r = mz_cg_create_v2(spec->cgroup_name ? spec->cgroup_name : spec->name,
				 &spec->limits, early, sp->cg, sizeof(sp->cg), err)) < 0) {
		sp->cg[0] = '\0'; /* nothing made */
		goto fail;
	}
	mz_trace("spawn: cgroup v2 made");
	c->spec = spec;
	c->initfd = sp->initfd;
	c->prog = prog;
	c->keep = mz_caps_keep(spec->allow_perf_bpf);
	c->envp = mz_domain_env(spec);
	c->margs = (struct mz_mount_args){.devpts_gid5 = spec->gid_count > 5,
					  .hosts = spec->hosts_file,
					  .resolv = spec->resolv_file};
	c->stack2 = sp->stacks + STACK_SIZE;
	c->init_argv = init_argv(spec, &c->main_pid_slot, &sp->init_argc);
	if (spec->tty && isatty(spec->stdio[0]) &&
	    terminal_path(spec->stdio[0], sp->console, sizeof(sp->console)))
		c->margs.console = sp->console;
	r = mz_cg_join_open(sp->cg, &spec->limits, &c->join, err);
	if (r == 0 && spec->root_hook)
		r = spec->root_hook(spec->root_hook_arg, err);
	if (r < 0)
		goto fail;
	struct clone_args ca = {
		.flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS |
			 CLONE_NEWIPC | CLONE_NEWNET | CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)&sp->pidfd,
		.exit_signal = SIGCHLD,
	};
	c->v2_done = mz_cg_clone_into(&c->join, &ca);
	/* The children start with every signal blocked: no handler of the
	 * caller's runs in them (init and pid 2 set their own). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	struct clone_args again = ca;
	pid_t pid = mz_clone_fn(&ca, child_main, c, sp->stacks, STACK_SIZE);
	if (mz_cg_clone_fallback(&again, pid)) {
		c->v2_done = false;
		pid = mz_clone_fn(&again, child_main, c, sp->stacks, STACK_SIZE);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		r = mz_error_sys(err, -pid, "cannot make the domain's namespaces (clone3)");
		goto fail;
	}
	mz_trace("spawn: pid 1 cloned");
	sp->pid = pid;
	close(steal_fd(&sp->ctl_child)); /* theirs now */
	close(steal_fd(&sp->rep_child));
	if ((r = netns_open(pid, &sp->netfd, err)) < 0)
		goto fail;
	/* While pid 1 loads its seccomp filter (and, for an early spawn, while
	 * the caller's catalog work finishes): what needs only pid 1 and the
	 * group's name.  An early spawn's v2 group was new, so no domain of
	 * this name runs, and groups of its name elsewhere are leftovers. */
	if ((r = mz_cg_create_v1(sp->cg, &spec->limits, err)) < 0)
		goto fail;
	if (spec->limits.nofile > 0) {
		struct rlimit rl = {(rlim_t)spec->limits.nofile, (rlim_t)spec->limits.nofile};
		if (prlimit(pid, RLIMIT_NOFILE, &rl, NULL) < 0) {
			r = mz_error_sys(err, errno, "cannot set RLIMIT_NOFILE to %lld",
					 (long long)spec->limits.nofile);
			goto fail;
		}
	} else if (spec->limits.nofile_soft > 0) {
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)spec->limits.nofile_soft < rl.rlim_cur) {
			rl.rlim_cur = (rlim_t)spec->limits.nofile_soft;
			if (prlimit(pid, RLIMIT_NOFILE, &rl, NULL) < 0) {
				r = mz_error_sys(err, errno, "cannot set RLIMIT_NOFILE");
				goto fail;
			}
		}
	}
	mz_trace("spawn: cgroups v1 made");
	*out = sp;
	return 0;
fail:
	spawn_free(sp, true);
	return r;
}

int mz_domain_spawn_finish(struct mz_spawn *sp, struct mz_domain_proc *out, mz_error_t *err)
{
	const struct mz_domain_spec *spec = sp->spec;
	pid_t pid = sp->pid;
	int r = sp->early ? check_bases(spec, err) : 0;
	if (r == 0)
		r = mz_idmap_write(pid, spec, err);
	mz_trace("spawn: id maps written");
	if (r == 0 && send(sp->ctl, "g", 1, MSG_NOSIGNAL) != 1 && (r = wait_ready(sp->rep, err)) == 0)
		r = mz_error_sys(err, EPIPE, "cannot start the domain's first process");
	/* while pid 1 builds the file system tree */
	if (r == 0)
		r = loopback_up(sp->netfd, err);
	if (r == 0 && spec->net_hook)
		r = spec->net_hook(spec->net_hook_arg, sp->netfd, err);
	mz_trace("spawn: loopback up");
	if (r == 0 && send(sp->ctl, "l", 1, MSG_NOSIGNAL) != 1 && (r = wait_ready(sp->rep, err)) == 0)
		r = mz_error_sys(err, EPIPE, "cannot start the domain's main command");
	if (r == 0)
		r = wait_ready(sp->rep, err);
	mz_trace("spawn: both exec'd");
	if (r == 0) {
		out->pid = pid;
		out->pidfd = sp->pidfd;
		memcpy(out->cgroup, sp->cg, sizeof(out->cgroup));
	}
	spawn_free(sp, r < 0);
	return r;
}

void mz_domain_spawn_cancel(struct mz_spawn *sp)
{
	if (sp)
		spawn_free(sp, true);
}

int mz_domain_spawn(const struct mz_domain_spec *spec, struct mz_domain_proc *out,
		    mz_error_t *err)
{
	out->pid = -1;
	out->pidfd = -1;
	out->cgroup[0] = '\0';
	struct mz_spawn *sp;
	int r = mz_domain_spawn_begin(spec, 0, &sp, err);
	return r < 0 ? r : mz_domain_spawn_finish(sp, out, err);
}
