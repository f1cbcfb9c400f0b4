/*
 * sysprobe — try system calls a domain must not be allowed, and report what
 * the kernel said.  The system tests (tests/system/test_runtime.py) compile
 * it statically and copy it into a domain's root; the Makefile's dynamic
 * build of it is unused.
 *
 *   sysprobe NAME...     prints "NAME: ok" or "NAME: ERRNAME" per probe
 *
 * Every probe is harmless even where it succeeds (a reboot probe asks for
 * "Ctrl-Alt-Del off", the module probes pass /dev/null, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/reboot.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
/* The i386 system call ABI from a 64-bit process: seccomp sees it as
 * AUDIT_ARCH_I386, with i386 numbers. */
static long int80(long nr, long a, long b, long c, long d)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d)
			 : "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}
#endif

static long probe(const char *n)
{
#if defined(__x86_64__)
	if (strcmp(n, "i386_reboot") == 0) /* reboot = 88 on i386 */
		return int80(88, (long)(unsigned)LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
			     LINUX_REBOOT_CMD_CAD_OFF, 0);
	if (strcmp(n, "i386_keyctl") == 0) /* keyctl = 288 on i386 */
		return int80(288, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0);
	if (strcmp(n, "i386_getpid") == 0) /* getpid = 20: allowed */
		return int80(20, 0, 0, 0, 0);
#endif
	if (strcmp(n, "finit_module") == 0) {
		int fd = open("/dev/null", O_RDONLY);
		return syscall(SYS_finit_module, fd, "", 0);
	}
	if (strcmp(n, "init_module") == 0) {
		static char img[64];
		return syscall(SYS_init_module, img, sizeof(img), "");
	}
	if (strcmp(n, "delete_module") == 0)
		return syscall(SYS_delete_module, "nosuchmodule", O_NONBLOCK);
	if (strcmp(n, "kexec_load") == 0)
		return syscall(SYS_kexec_load, 0, 0, NULL, 0);
	if (strcmp(n, "reboot") == 0)
		return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
			       LINUX_REBOOT_CMD_CAD_OFF, NULL);
	if (strcmp(n, "keyctl") == 0)
		return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
	if (strcmp(n, "add_key") == 0)
		return syscall(SYS_add_key, "user", "mezzo", "x", 1, KEY_SPEC_PROCESS_KEYRING);
	if (strcmp(n, "request_key") == 0)
		return syscall(SYS_request_key, "user", "mezzo", NULL, 0);
	if (strcmp(n, "open_by_handle_at") == 0) {
		char buf[sizeof(int) * 2 + 128] = {0};
		int *h = (int *)buf;
		h[0] = 128; /* handle_bytes */
		return syscall(SYS_open_by_handle_at, AT_FDCWD, buf, O_RDONLY);
	}
	if (strcmp(n, "name_to_handle_at") == 0) {
		char buf[sizeof(int) * 2 + 128] = {0};
		int *h = (int *)buf, mnt;
		h[0] = 128;
		return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", buf, &mnt, 0);
	}
	if (strcmp(n, "perf_event_open") == 0)
		return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
	if (strcmp(n, "bpf") == 0)
		return syscall(SYS_bpf, 0, NULL, 0);
	if (strcmp(n, "userfaultfd") == 0)
		return syscall(SYS_userfaultfd, 0);
	if (strcmp(n, "swapon") == 0)
		return syscall(SYS_swapon, "/nonexistent", 0);
	if (strcmp(n, "acct") == 0)
		return syscall(SYS_acct, NULL);
	if (strcmp(n, "settimeofday") == 0) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		return syscall(SYS_settimeofday, &tv, NULL);
	}
	if (strcmp(n, "clock_settime") == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		return syscall(SYS_clock_settime, CLOCK_REALTIME, &ts);
	}
	if (strcmp(n, "iopl") == 0)
		return syscall(SYS_iopl, 0);
	if (strcmp(n, "syslog") == 0)
		return syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	if (strcmp(n, "tiocsti") == 0) {
		char c = 'x';
		return ioctl(0, TIOCSTI, &c);
	}
	if (strcmp(n, "personality_page_zero") == 0)
		return syscall(SYS_personality, MMAP_PAGE_ZERO);
	if (strcmp(n, "personality_query") == 0)
		return syscall(SYS_personality, 0xffffffffUL) < 0 ? -1 : 0;
	if (strcmp(n, "mount_tmpfs") == 0) {
		mkdir("/tmp/probe-mnt", 0755);
		long r = mount("none", "/tmp/probe-mnt", "tmpfs", 0, NULL);
		if (r == 0)
			umount("/tmp/probe-mnt");
		return r;
	}
	if (strcmp(n, "mknod_block") == 0)
		return syscall(SYS_mknodat, AT_FDCWD, "/tmp/probe-blk", 060600, (8 << 8) | 0);
	if (strcmp(n, "userns") == 0) {
		pid_t p = fork();
		if (p == 0)
			_exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno);
		int st;
		waitpid(p, &st, 0);
		errno = WEXITSTATUS(st);
		return errno ? -1 : 0;
	}
	errno = EINVAL;
	fprintf(stderr, "sysprobe: unknown probe %s\n", n);
	return -2;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		errno = 0;
		long r = probe(argv[i]);
		if (r == -2)
			return 2;
		if (r >= 0)
			printf("%s: ok\n", argv[i]);
		else
			printf("%s: %s\n", argv[i], strerrorname_np(errno) ? strerrorname_np(errno) : "?");
	}
	return 0;
}
