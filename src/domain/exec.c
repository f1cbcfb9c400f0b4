/*
 * exec.c — mz_domain_exec: run one more process inside a running domain
 * (mezzo exec), and mz_domain_kill / mz_domain_cleanup / mz_domain_stats.
 *
 * The new process must be the caller's child (the caller waits for it) and
 * inside the domain's pid namespace.  setns(CLONE_NEWPID) only changes where
 * the caller's *children* go, so the calling thread switches its
 * pid_ns_for_children to the domain's (via init's pidfd), clones, and
 * switches back at once; other threads of the caller are not affected.
 *
 * The child, still with the host's view: not dumpable (so root in the domain
 * can neither ptrace it nor open its /proc files while it holds host
 * state), joins the v2 group by clone3 and the v1 groups by writing "0",
 * sets the rlimits (raising them needs the host's CAP_SYS_RESOURCE, gone
 * once in the domain's user namespace), then setns() into every other
 * namespace of init at once, drops the same capabilities as init got, takes
 * the requested ids, sets no_new_privs and the same seccomp filter, and
 * execs.  Execve makes it dumpable again, now as a domain process.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/util.h"
#include "runtimeInt.h"


struct xchild {
	const struct mz_domain_proc *d;
	const struct mz_exec_spec *x;
	int sock;
	struct mz_cg_join join;
	bool v2_done;
	const struct sock_fprog *prog;
	uint64_t keep;
	int64_t nofile;
	char *const *envp;
};

static __attribute__((noreturn)) void xchild_main(struct xchild *c)
{
	const struct mz_exec_spec *x = c->x;
	const char *what = "?";
	int r;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		r = -errno;
		what = "cannot make the process non-dumpable";
		goto fail;
	}
	if ((r = mz_cg_join_self(&c->join, c->v2_done)) < 0) {
		what = "cannot join the domain's cgroups";
		goto fail;
	}
	if (c->nofile > 0) {
		struct rlimit rl = {(rlim_t)c->nofile, (rlim_t)c->nofile};
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			r = -errno;
			what = "cannot set RLIMIT_NOFILE";
			goto fail;
		}
	}
	if (setns(c->d->pidfd, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
				       CLONE_NEWNET | CLONE_NEWCGROUP) < 0) {
		r = -errno;
		what = "cannot enter the domain's namespaces";
		goto fail;
	}
	if ((r = mz_caps_apply(c->keep, &what)) < 0)
		goto fail;
	if ((r = mz_child_ids(x->uid, x->gid, &what)) < 0)
		goto fail;
	const char *cwd = x->cwd ? x->cwd : "/";
	if (chdir(cwd) < 0) {
		r = -errno;
		what = "cannot change directory to";
		mz_child_report(c->sock, -r, what, cwd);
		_exit(MZ_INIT_EXIT_NOTFOUND);
	}
	int sock = c->sock;
	if ((r = mz_child_fds(x->stdio, NULL, (int *[]){&sock}, 1, &what)) < 0)
		goto fail;
	c->sock = sock;
	mz_child_signals_default();
	/* a session of its own, so it keeps nothing of the caller's terminal
	 * (the domain's /dev/tty is whatever its controlling terminal is) */
	if (x->tty) {
		if ((r = mz_child_ctty(&what)) < 0)
			goto fail;
	} else if (setsid() < 0) {
		r = -errno;
		what = "setsid";
		goto fail;
	}
	if ((r = mz_seccomp_apply(c->prog, &what)) < 0)
		goto fail;
	r = mz_exec_search(x->argv, c->envp);
	mz_child_report_exec(c->sock, -r, "cannot run", x->argv[0]);
	_exit(MZ_INIT_EXEC_STATUS(-r));
fail:
	mz_child_report(c->sock, -r, what, NULL);
	_exit(MZ_INIT_EXIT_NOTFOUND);
}

int mz_domain_exec(const struct mz_domain_proc *d, const struct mz_exec_spec *x, pid_t *out,
		   mz_error_t *err)
{
	*out = -1;
	if (x->argv == NULL || x->argv[0] == NULL)
		return mz_error(err, EINVAL, "no command to run in the domain");
	if (d->pidfd < 0)
		return mz_error(err, EINVAL, "the domain has no init (no pidfd)");
	const struct mz_domain_spec *ds = x->domain;
	if (ds && (x->uid >= ds->uid_count || x->gid >= ds->gid_count))
		return mz_error(err, EINVAL, "ids %u:%u are outside the domain's range",
				(unsigned)x->uid, (unsigned)x->gid);
	bool perf = ds && ds->allow_perf_bpf;
	struct xchild c = {
		.d = d,
		.x = x,
		.keep = mz_caps_keep(perf),
		.nofile = ds ? ds->limits.nofile : 0,
		.envp = x->envp ? x->envp : mz_default_env(x->uid, x->tty),
	};
	int r = mz_seccomp_prog(perf, &c.prog, err);
	if (r < 0)
		return r;
	cleanup_close int self_pidns = open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (self_pidns < 0)
		return mz_error_sys(err, errno, "cannot open /proc/thread-self/ns/pid");
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return mz_error_sys(err, errno, "socketpair");
	cleanup_close int mine = sv[0];
	cleanup_close int theirs = sv[1];
	c.sock = theirs;
	if ((r = mz_cg_join_open(d->cgroup, NULL, &c.join, err)) < 0)
		return r;

	if (setns(d->pidfd, CLONE_NEWPID) < 0) {
		r = mz_error_sys(err, errno, "cannot enter the domain's pid namespace");
		mz_cg_join_close(&c.join);
		return r;
	}
	struct clone_args ca = {.exit_signal = SIGCHLD};
	c.v2_done = mz_cg_clone_into(&c.join, &ca);
	/* no handler of the caller's may run in the child */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = mz_clone3(&ca);
	if (mz_cg_clone_fallback(&ca, pid)) {
		c.v2_done = false;
		pid = mz_clone3(&ca);
	}
	if (pid == 0)
		xchild_main(&c);
	/* Back to our own pid namespace for whatever this thread forks next. */
	if (setns(self_pidns, CLONE_NEWPID) < 0)
		abort(); /* cannot happen: it is our active namespace */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	mz_cg_join_close(&c.join);
	if (pid < 0)
		return mz_error_sys(err, -pid, "cannot make a process in the domain (clone3)");
	close(steal_fd(&theirs));
	struct mz_init_msg m;
	ssize_t n;
	do
		n = read(mine, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(m)) {
		r = mz_child_error(&m, "exec in domain", err);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return r;
	}
	*out = pid;
	return 0;
}

int mz_domain_kill(const struct mz_domain_proc *d, int sig, mz_error_t *err)
{
	int r = 0;
	if (sig == SIGKILL && d->cgroup[0])
		r = mz_cg_signal(d->cgroup, SIGKILL, err);
	if (d->pidfd >= 0 && syscall(SYS_pidfd_send_signal, d->pidfd, sig, NULL, 0) < 0 &&
	    errno != ESRCH && r == 0)
		r = mz_error_sys(err, errno, "cannot signal the domain's init");
	return r;
}

int mz_domain_cleanup(const struct mz_domain_proc *d, mz_error_t *err)
{
	if (d->cgroup[0] == '\0')
		return 0;
	/* Normally empty once init is gone (its pid namespace went with it); a
	 * straggler — say, a process that moved itself — is killed. */
	mz_cg_signal(d->cgroup, SIGKILL, NULL);
	return mz_cg_remove(d->cgroup, err);
}

int mz_domain_stats(const struct mz_domain_proc *d, struct mz_domain_stats *st, mz_error_t *err)
{
	return mz_cg_stats(d->cgroup, st, err);
}
