/*
 * secure.c — the second wall around a domain (seed 003, 3.3.1: an attacker
 * must first break the domain's own system layer, then the host's): a
 * seccomp filter, no_new_privs and a capability bounding set.
 *
 * The first wall is the user namespace: root in a domain is an unprivileged
 * host uid whose capabilities count only for objects its namespaces own.
 * This file narrows what is left of the kernel's interface.
 *
 * Seccomp: default allow, a deny list returning EPERM, for x86_64, i386 and
 * x32 alike (a 32-bit or x32 syscall number must not slip past the list).
 * Denied: module loading (init/finit/delete_module), kexec, reboot, the
 * keyrings (add_key, request_key, keyctl: not namespaced), open_by_handle_at
 * and name_to_handle_at (file handles bypass the mount tree), userfaultfd,
 * iopl/ioperm, swapon/swapoff, acct, setting the (not namespaced) clocks,
 * syslog, quotactl, lookup_dcookie, nfsservctl, uselib and other relics,
 * vm86, personality(MMAP_PAGE_ZERO), the TIOCSTI and TIOCLINUX ioctls
 * (pushing input into a terminal the host may share), and perf_event_open
 * and bpf unless the domain is configured for them.
 *
 * Decisions, and why:
 *   - mount and friends (mount, umount2, fsopen, fsmount, move_mount,
 *     open_tree, pivot_root) are allowed.  Root in a domain mounting tmpfs,
 *     proc, sysfs, devpts, mqueue, overlay or FUSE in its own mount namespace
 *     is administration of its own domain.  "New mounts of host file
 *     systems" are refused by the kernel already: a file system that reads a
 *     block device cannot be mounted from a user namespace other than the
 *     initial one (no FS_USERNS_MOUNT), device nodes cannot be made there
 *     (mknod of devices needs CAP_MKNOD in the initial namespace), and the
 *     host's tree is detached from the domain's mount namespace by
 *     pivot_root.  Seccomp cannot look at a mount's file system type string
 *     anyway, so a type allow-list is not expressible here.
 *   - Nested user namespaces (clone/unshare CLONE_NEWUSER) are allowed:
 *     root in the domain already holds every namespaced capability, so a
 *     nested namespace gives it nothing new, and tools people run in
 *     domains (browsers' sandboxes, podman, systemd's PrivateUsers) need
 *     them.  The host's user.max_user_namespaces governs them as it does for
 *     host users.
 *   - ptrace is allowed: the pid namespace confines it to the domain's
 *     processes, and a process joining from the host is not dumpable until
 *     it has exec'd (exec.c).
 *
 * Capabilities kept (everything else leaves the bounding set, and the
 * inheritable and ambient sets are emptied): CHOWN, DAC_OVERRIDE, FOWNER,
 * FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_ADMIN, NET_RAW,
 * IPC_OWNER, SYS_CHROOT, SYS_PTRACE, SYS_ADMIN, MKNOD, AUDIT_WRITE, SETFCAP
 * (plus PERFMON and BPF with allow_perf_bpf).  SYS_ADMIN is kept on purpose:
 * in a user namespace it means "administer the namespaces this domain owns"
 * (mounts in its mount namespace, sethostname, unshare for sandboxing, its
 * own network stack's settings), which is what root in a domain is for; every
 * host-facing use of it checks the initial user namespace, which the domain
 * never has.  Dropped: SYS_MODULE, SYS_BOOT, SYS_RAWIO, SYS_TIME,
 * SYS_RESOURCE (a domain must not raise its own limits), SYS_NICE,
 * SYS_PACCT, SYS_TTY_CONFIG, LINUX_IMMUTABLE, MAC_*, SYSLOG, WAKE_ALARM,
 * BLOCK_SUSPEND, AUDIT_CONTROL, AUDIT_READ, LEASE, IPC_LOCK, NET_BROADCAST,
 * DAC_READ_SEARCH, CHECKPOINT_RESTORE.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "runtimeInt.h"
#include "sys.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static const char *const denied[] = {
	"init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms",
	"query_module", "kexec_load", "kexec_file_load", "reboot", "add_key", "request_key",
	"keyctl", "open_by_handle_at", "name_to_handle_at", "userfaultfd", "iopl", "ioperm",
	"swapon", "swapoff", "acct", "settimeofday", "stime", "clock_settime", "clock_settime64",
	"clock_adjtime", "clock_adjtime64", "adjtimex", "syslog", "lookup_dcookie", "quotactl",
	"quotactl_fd", "nfsservctl", "uselib", "_sysctl", "vm86", "vm86old",
};
static const char *const perf_bpf[] = {"perf_event_open", "bpf"};

static int deny(scmp_filter_ctx ctx, const char *name, mz_error_t *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* unknown to this libseccomp: nothing to deny */
	int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	if (r < 0)
		return mz_error_sys(err, -r, "seccomp: cannot deny %s", name);
	return 0;
}

static int build(bool allow_perf_bpf, struct sock_fprog *out, mz_error_t *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return mz_error(err, ENOMEM, "seccomp_init failed");
	int r = 0;
	/* A binary tree of syscall numbers rather than a chain: when the filter
	 * is loaded the kernel runs it for every syscall number of every ABI to
	 * build its allow cache (under a spinlock); a chain makes that 2.5
	 * times slower. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0)
		mz_debug("seccomp: no binary tree optimization: %s", strerror(-r));
	r = 0;
	/* The native arch is in already; 32-bit and x32 calls get the same list. */
	if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
		if ((r = seccomp_arch_add(ctx, SCMP_ARCH_X86)) < 0 && r != -EEXIST)
			mz_error_sys(err, -r, "seccomp: cannot add the i386 ABI");
		else if ((r = seccomp_arch_add(ctx, SCMP_ARCH_X32)) < 0 && r != -EEXIST)
			mz_error_sys(err, -r, "seccomp: cannot add the x32 ABI");
		else
			r = 0;
	}
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(denied); i++)
		r = deny(ctx, denied[i], err);
	for (size_t i = 0; r == 0 && !allow_perf_bpf && i < ARRAY_SIZE(perf_bpf); i++)
		r = deny(ctx, perf_bpf[i], err);
	/* personality(): MMAP_PAGE_ZERO (bit 20) set, bit 31 clear — bit 31
	 * clear keeps the 0xffffffff query allowed. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, 0x80000000u | MMAP_PAGE_ZERO,
					     MMAP_PAGE_ZERO));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX));
	if (r < 0 && (err == NULL || *err == NULL))
		mz_error_sys(err, -r, "seccomp: cannot add an argument rule");

	/* libseccomp 2.5 exports to an fd only. */
	int fd = -1;
	if (r == 0 && (fd = memfd_create("mezzo-seccomp", MFD_CLOEXEC)) < 0)
		r = mz_error_sys(err, errno, "memfd_create");
	if (r == 0 && (r = seccomp_export_bpf(ctx, fd)) < 0)
		mz_error_sys(err, -r, "seccomp: cannot export the filter");
	seccomp_release(ctx);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) != 0 ||
	    size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		close(fd);
		return mz_error(err, EINVAL, "seccomp: exported filter has a bad size (%lld)",
				(long long)size);
	}
	struct sock_filter *f = xmalloc((size_t)size);
	if (pread(fd, f, (size_t)size, 0) != size) {
		int e = errno ? errno : EIO;
		close(fd);
		free(f);
		return mz_error_sys(err, e, "seccomp: cannot read the filter back");
	}
	close(fd);
	out->len = (unsigned short)(size / sizeof(struct sock_filter));
	out->filter = f;
	return 0;
}

/* Building the filter costs about 0.35 ms of libseccomp per process, which
 * "mezzo run" would pay on every start: the exported program is also kept in
 * /run/mezzo (tmpfs, root only), named by a hash of everything that shapes it
 * (rule set version, deny list, variant, libseccomp version).  Bump
 * RULES_VERSION whenever build() changes in a way the deny list does not show. */
#define RULES_VERSION 1
#define CACHE_DIR "/run/mezzo"

static void cache_path(bool allow_perf_bpf, char *out, size_t n)
{
	const struct scmp_version *v = seccomp_version();
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	char head[96];
	snprintf(head, sizeof(head), "%d:%d:%u.%u.%u:%u", RULES_VERSION, allow_perf_bpf,
		 v ? v->major : 0, v ? v->minor : 0, v ? v->micro : 0, seccomp_arch_native());
	for (const char *p = head; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	for (size_t i = 0; i < ARRAY_SIZE(denied); i++)
		for (const char *p = denied[i]; p == denied[i] || p[-1]; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(out, n, CACHE_DIR "/seccomp-%016llx.bpf", (unsigned long long)h);
}

static int load_cached(const char *path, struct sock_fprog *out)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = -EINVAL;
	/* only a file root made and nobody else can change */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 &&
	    (st.st_mode & 022) == 0 && st.st_size > 0 &&
	    st.st_size % sizeof(struct sock_filter) == 0 &&
	    st.st_size / sizeof(struct sock_filter) <= BPF_MAXINSNS) {
		struct sock_filter *f = xmalloc((size_t)st.st_size);
		if (read_all(fd, f, (size_t)st.st_size) == st.st_size) {
			out->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
			out->filter = f;
			r = 0;
		} else {
			free(f);
		}
	}
	close(fd);
	return r;
}

static void store_cached(const char *path, const struct sock_fprog *p)
{
	if (geteuid() != 0 || (mkdir(CACHE_DIR, 0700) < 0 && errno != EEXIST))
		return;
	int r = write_file_atomic(path, p->filter, p->len * sizeof(struct sock_filter), 0600);
	if (r < 0)
		mz_debug("cannot cache the seccomp filter in %s: %s", path, strerror(-r));
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock_fprog cache[2];

int mz_seccomp_prog(bool allow_perf_bpf, const struct sock_fprog **prog, mz_error_t *err)
{
	pthread_mutex_lock(&cache_lock);
	struct sock_fprog *p = &cache[allow_perf_bpf];
	int r = 0;
	if (p->filter == NULL) {
		char path[128];
		cache_path(allow_perf_bpf, path, sizeof(path));
		if (load_cached(path, p) < 0 && (r = build(allow_perf_bpf, p, err)) == 0)
			store_cached(path, p);
	}
	pthread_mutex_unlock(&cache_lock);
	*prog = r == 0 ? p : NULL;
	return r;
}

uint64_t mz_caps_keep(bool allow_perf_bpf)
{
	static const int keep[] = {
		CAP_CHOWN,       CAP_DAC_OVERRIDE, CAP_FOWNER,   CAP_FSETID,
		CAP_KILL,        CAP_SETGID,       CAP_SETUID,   CAP_SETPCAP,
		CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_OWNER,
		CAP_SYS_CHROOT,  CAP_SYS_PTRACE,   CAP_SYS_ADMIN, CAP_MKNOD,
		CAP_AUDIT_WRITE, CAP_SETFCAP,
	};
	uint64_t m = 0;
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		m |= 1ULL << keep[i];
	if (allow_perf_bpf)
		m |= 1ULL << CAP_PERFMON | 1ULL << CAP_BPF;
	return m;
}

int mz_caps_apply(uint64_t keep, const char **what)
{
	long r;
	for (int cap = 0; cap < 64; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if ((r = mz_sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0)) < 0) {
			if (r == -EINVAL)
				break; /* past the kernel's last capability */
			*what = "cannot drop a capability from the bounding set";
			return (int)r;
		}
	}
	r = mz_sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (r < 0 && r != -EINVAL) {
		*what = "cannot clear the ambient capabilities";
		return (int)r;
	}
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if ((r = mz_sys(SYS_capget, &h, d)) < 0) {
		*what = "capget";
		return (int)r;
	}
	for (int i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));
		d[i].permitted &= k;
		d[i].effective &= k;
		d[i].inheritable = 0;
	}
	if ((r = mz_sys(SYS_capset, &h, d)) < 0) {
		*what = "capset";
		return (int)r;
	}
	return 0;
}

int mz_seccomp_apply(const struct sock_fprog *prog, const char **what)
{
	long r = mz_sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (r < 0) {
		*what = "cannot set no_new_privs";
		return (int)r;
	}
	if ((r = mz_sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog)) < 0) {
		*what = "cannot load the seccomp filter";
		return (int)r;
	}
	return 0;
}
