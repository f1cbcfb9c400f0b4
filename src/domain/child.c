/*
 * child.c — making processes from a library, and what they do before exec:
 * clone3 (with a stack of their own, sharing the caller's memory where it
 * can), laying out file descriptors, switching ids, reporting a failure to
 * the parent, finding a command in $PATH.  Used by spawn.c and exec.c.
 *
 * Everything here runs in a child made by a raw clone3 from a caller that may
 * have threads (a supervisor serves the domain's file system from one), so it
 * is async-signal-safe: no malloc, no stdio, no locks, no glibc wrapper that
 * knows about the caller's threads (set*id: see mz_child_ids), and no errno:
 * system calls go through sys.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtimeInt.h"
#include "sys.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

pid_t mz_clone3(struct clone_args *args)
{
	long r = syscall(SYS_clone3, args, sizeof(*args));
	return r < 0 ? -errno : (pid_t)r;
}

/*
 * Sharing the caller's memory (CLONE_VM), as posix_spawn does, a child costs
 * no copy of the caller's page tables, no copy-on-write faults and no
 * teardown of a copied address space when it execs: with a supervisor's
 * address space that is a good part of a domain's start.  The child then runs
 * on a stack of its own, which clone3 can only give it through a little
 * assembly.  It also shares the calling thread's TLS, errno included: the
 * child makes its system calls through sys.h, which never touches errno,
 * and calls nothing of glibc's that keeps per-thread state (mezzo never
 * cancels threads).  The parent must leave alone whatever the child reads
 * until the child has exec'd or died.  Not under AddressSanitizer, whose
 * per-thread state would see two threads in one.
 */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define HAVE_CLONE_VM 1
pid_t mz_clone3_trampoline(struct clone_args *args, size_t size, void (*fn)(void *), void *arg);
__asm__(".text\n"
	".globl mz_clone3_trampoline\n"
	".hidden mz_clone3_trampoline\n"
	".type mz_clone3_trampoline,@function\n"
	"mz_clone3_trampoline:\n"
	"	mov %rdx, %r8\n"  /* fn and arg in registers the syscall keeps */
	"	mov %rcx, %r9\n"
	"	mov $435, %eax\n" /* SYS_clone3 */
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jnz 1f\n"
	"	xor %ebp, %ebp\n" /* child: on the new stack, 16-byte aligned */
	"	mov %r9, %rdi\n"
	"	call *%r8\n"
	"	mov $60, %eax\n"  /* SYS_exit, should fn return */
	"	xor %edi, %edi\n"
	"	syscall\n"
	"	hlt\n"
	"1:	ret\n"
	".size mz_clone3_trampoline, .-mz_clone3_trampoline\n");
#endif

bool mz_clone_shares_vm(void)
{
#ifdef HAVE_CLONE_VM
	return true;
#else
	return false;
#endif
}

pid_t mz_clone_fn(struct clone_args *ca, void (*fn)(void *), void *arg, void *stack,
		  size_t stack_size)
{
#ifdef HAVE_CLONE_VM
	ca->flags |= CLONE_VM;
	ca->stack = (uint64_t)(uintptr_t)stack;
	ca->stack_size = stack_size;
	return mz_clone3_trampoline(ca, sizeof(*ca), fn, arg); /* raw: -errno */
#else
	(void)stack;
	(void)stack_size;
	pid_t pid = mz_clone3(ca);
	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	return pid;
#endif
}

static void report(int fd, int status, int err, const char *what, const char *arg)
{
	struct mz_init_msg m;
	memset(&m, 0, sizeof(m));
	m.err = err;
	m.status = status;
	size_t n = 0, cap = sizeof(m.msg) - 1;
	for (const char *p = what; p && *p && n < cap; p++)
		m.msg[n++] = *p;
	if (arg && n + 1 < cap) {
		m.msg[n++] = ' ';
		for (const char *p = arg; *p && n < cap; p++)
			m.msg[n++] = *p;
	}
	mz_sys(SYS_write, fd, &m, sizeof(m)); /* if the parent is gone, nobody to tell */
}

void mz_child_report(int fd, int err, const char *what, const char *arg)
{
	report(fd, 0, err, what, arg);
}

void mz_child_report_exec(int fd, int err, const char *what, const char *arg)
{
	report(fd, MZ_INIT_EXEC_STATUS(err), err, what, arg);
}

int mz_child_error(struct mz_init_msg *m, const char *prefix, mz_error_t *err)
{
	m->msg[sizeof(m->msg) - 1] = '\0';
	bool empty = err && *err == NULL;
	int r = m->err > 0 ? mz_error_sys(err, m->err, "%s: %s", prefix, m->msg)
			   : mz_error(err, EIO, "%s: %s", prefix, m->msg);
	if (empty && *err)
		(*err)->status = m->status;
	return r;
}

int mz_child_keep_only(const int keep[], int n)
{
	unsigned k[8];
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (keep[i] < 0)
			continue;
		if (m == (int)(sizeof(k) / sizeof(k[0])))
			return -EINVAL;
		k[m++] = (unsigned)keep[i];
	}
	for (int i = 1; i < m; i++) /* a handful: insertion sort */
		for (int j = i; j > 0 && k[j - 1] > k[j]; j--) {
			unsigned t = k[j];
			k[j] = k[j - 1];
			k[j - 1] = t;
		}
	/* close the gaps between them, and everything above the last */
	unsigned from = 0;
	for (int i = 0; i <= m; i++) {
		unsigned to = i < m ? k[i] : ~0U;
		if (to > from) {
			long r = mz_sys(SYS_close_range, from, i < m ? to - 1 : to, 0U);
			if (r < 0)
				return (int)r;
		}
		if (i < m)
			from = k[i] + 1; /* a duplicate leaves from as it was */
	}
	return 0;
}

int mz_child_fds(const int stdio[3], int *extra, int *const keep[], int nkeep,
		 const char **what)
{
	/* First copy everything above 16 (close-on-exec), so that laying out
	 * 0..3 cannot clobber a source that happens to sit there. */
	long hi[4] = {-1, -1, -1, -1};
	for (int i = 0; i < 4; i++) {
		int src = i < 3 ? stdio[i] : (extra ? *extra : -1);
		if (src >= 0 && (hi[i] = mz_sys(SYS_fcntl, src, F_DUPFD_CLOEXEC, 16)) < 0) {
			*what = "cannot duplicate a file descriptor";
			return (int)hi[i];
		}
	}
	for (int i = 0; i < nkeep; i++) {
		if (*keep[i] < 0)
			continue;
		long k = mz_sys(SYS_fcntl, *keep[i], F_DUPFD_CLOEXEC, 16);
		if (k < 0) {
			*what = "cannot duplicate a file descriptor";
			return (int)k;
		}
		*keep[i] = (int)k;
	}
	for (int i = 0; i < 4; i++) {
		long src = hi[i];
		if (src < 0 && i < 3)
			src = mz_sys(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
		if (src < 0)
			continue;
		long r = mz_sys(SYS_dup3, src, i, 0);
		if (r < 0) {
			*what = "cannot lay out the standard file descriptors";
			return (int)r;
		}
	}
	if (extra && *extra >= 0)
		*extra = 3;
	/* Nothing of the caller's leaks into the domain: fds >= 4 close at exec
	 * (before Linux 5.11, without CLOSE_RANGE_CLOEXEC, one by one). */
	if (mz_sys(SYS_close_range, 4U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		struct rlimit rl;
		long max = mz_sys(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 &&
					   rl.rlim_cur < 65536
				   ? (long)rl.rlim_cur
				   : 65536;
		for (long fd = 4; fd < max; fd++)
			mz_sys(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
	}
	return 0;
}

int mz_child_ctty(const char **what)
{
	long r = mz_sys(SYS_setsid);
	if (r < 0) {
		*what = "setsid";
		return (int)r;
	}
	if ((r = mz_sys(SYS_ioctl, 0, TIOCSCTTY, 0)) < 0) {
		*what = "cannot make stdin the controlling terminal";
		return (int)r;
	}
	return 0;
}

/* Raw system calls, not glibc's wrappers: in a multi-threaded process glibc
 * makes set*id apply to every thread, by signalling the threads it knows of —
 * in a raw clone child those are the caller's, not ours. */
int mz_child_ids(uid_t uid, gid_t gid, const char **what)
{
	long r;
	if ((r = mz_sys(SYS_setgroups, 0, NULL)) < 0)
		*what = "setgroups";
	else if ((r = mz_sys(SYS_setresgid, gid, gid, gid)) < 0)
		*what = "setresgid";
	else if ((r = mz_sys(SYS_setresuid, uid, uid, uid)) < 0)
		*what = "setresuid";
	return (int)r;
}

void mz_child_signals_default(void)
{
	/* The kernel's sigaction: every disposition to default — handlers
	 * would be reset by execve anyway, but "ignore" survives it — and
	 * nothing blocked. */
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} dfl = {0};
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			mz_sys(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	uint64_t none = 0;
	mz_sys(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
}

char *const *mz_domain_env(const struct mz_domain_spec *s)
{
	return s->envp ? s->envp : mz_default_env(s->uid, s->tty);
}

char *const *mz_default_env(uid_t uid, bool tty)
{
	static char *const root[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
		"TERM=xterm", NULL};
	static char *const user[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/", "TERM=xterm",
				     NULL};
	static char *const root_notty[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
		NULL};
	static char *const user_notty[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/", NULL};
	if (uid == 0)
		return tty ? root : root_notty;
	return tty ? user : user_notty;
}

const char *mz_exec_path(char *const *envp)
{
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	return path;
}

int mz_exec_search(char *const *argv, char *const *envp)
{
	const char *file = argv[0];
	if (strchr(file, '/'))
		return (int)mz_sys(SYS_execve, file, argv, envp);
	const char *path = mz_exec_path(envp);
	int saved = -ENOENT;
	for (const char *p = path;; p++) {
		const char *e = strchrnul(p, ':');
		char buf[4096];
		size_t dl = (size_t)(e - p), fl = strlen(file);
		if (dl + fl + 2 <= sizeof(buf)) {
			memcpy(buf, p, dl);
			size_t n = dl;
			if (dl)
				buf[n++] = '/';
			memcpy(buf + n, file, fl + 1);
			int r = (int)mz_sys(SYS_execve, buf, argv, envp);
			if (r == -EACCES)
				saved = r;
			else if (r != -ENOENT && r != -ENOTDIR)
				saved = r;
		}
		if (*e == '\0')
			break;
		p = e;
	}
	return saved;
}
