/*
 * mounts.c — the domain's file system namespace, built by the domain's first
 * process in its new mount namespace (child side: async-signal-safe).
 *
 * Steps, and why in this order:
 *   1. every mount private (nothing propagates back to the host), the root
 *      tree bound onto itself (pivot_root wants a mount point), opened while
 *      the process still has its host uid 0 (the host directories above the
 *      tree may be 0700 root);
 *   -- the caller then becomes the domain's root (idmapped uid 0) --
 *   2. a fresh /proc and a read-only /sys, BEFORE pivot_root: the kernel lets
 *      a user namespace mount proc or sysfs only while a fully visible
 *      instance of it is in the mount namespace ("mount_too_revealing"); after
 *      the host tree is detached there is none, and mount fails with EPERM.
 *      The new proc belongs to the domain's pid namespace (we are its pid 1)
 *      and the new sysfs to its network namespace;
 *   3. /dev: a small tmpfs with only null, zero, full, random, urandom and tty,
 *      each bind-mounted from the host one by one (a tmpfs made in a user
 *      namespace is nodev, a bind keeps the host node's mount), a devpts
 *      instance of its own with /dev/ptmx pointing into it, /dev/shm, the
 *      /dev/fd family of links, and /dev/console when there is a terminal
 *      (bound by its host path);
 *   4. /tmp: a tmpfs, mode 1777;
 *   5. pivot_root(".", ".") then umount2(".", MNT_DETACH): the old root is
 *      stacked under the new one and detached, no directory is needed for it.
 * The top-level mount points come from the domain's tree, which is not
 * trusted: each is opened with O_NOFOLLOW|O_DIRECTORY (made if missing, as
 * the domain's root) and mounted on through /proc/self/fd, so a symlink
 * planted by the domain cannot redirect a mount onto a host path.
 * Child side: system calls through sys.h, no errno, no allocation.
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include "runtimeInt.h"
#include "sys.h"

/* "/proc/self/fd/N[/name]" without stdio. */
static const char *fdpath(char buf[64], int fd, const char *name)
{
	static const char pre[] = "/proc/self/fd/";
	char digits[12];
	int n = 0;
	unsigned v = (unsigned)fd;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	char *p = buf;
	memcpy(p, pre, sizeof(pre) - 1);
	p += sizeof(pre) - 1;
	while (n)
		*p++ = digits[--n];
	if (name) {
		*p++ = '/';
		size_t l = strlen(name);
		if (l > 40)
			l = 40;
		memcpy(p, name, l);
		p += l;
	}
	*p = '\0';
	return buf;
}

static long do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		     const void *data)
{
	return mz_sys(SYS_mount, src, dst, type, flags, data);
}

int mz_mounts_bind_root(const char *rootfs, int *rootfd, const char **what)
{
	long r = do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	if (r < 0) {
		*what = "cannot make the mounts private";
		return (int)r;
	}
	if ((r = do_mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL)) < 0) {
		*what = "cannot bind the root file system onto itself";
		return (int)r;
	}
	r = mz_sys(SYS_openat, AT_FDCWD, rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r < 0) {
		*what = "cannot open the root file system";
		return (int)r;
	}
	*rootfd = (int)r;
	return 0;
}

/* Remount the bind mount at p read-only, with flags more: a remount must
 * repeat the flags the kernel locked on the bind (those of its source). */
static long remount_ro(const char *p, unsigned long more)
{
	struct statfs sf;
	long r = mz_sys(SYS_statfs, p, &sf);
	if (r < 0)
		return r;
	static const struct {
		unsigned long st, ms;
	} keep[] = {{ST_NOSUID, MS_NOSUID},       {ST_NODEV, MS_NODEV},
		    {ST_NOEXEC, MS_NOEXEC},       {ST_NOATIME, MS_NOATIME},
		    {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
	unsigned long fl = MS_REMOUNT | MS_BIND | MS_RDONLY | more;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (sf.f_flags & keep[i].st)
			fl |= keep[i].ms;
	return do_mount(NULL, p, NULL, fl, NULL);
}

static int bind_file_ro(int etc, const char *name, const char *src)
{
	long fd = mz_sys(SYS_openat, etc, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0; /* nothing to cover: the domain keeps its own */
	struct stat st;
	long r = mz_sys(SYS_fstat, fd, &st);
	char p[64];
	if (r == 0 && S_ISREG(st.st_mode)) {
		fdpath(p, (int)fd, NULL);
		r = do_mount(src, p, NULL, MS_BIND, NULL);
	}
	mz_sys(SYS_close, fd);
	if (r < 0 || !S_ISREG(st.st_mode))
		return (int)r;
	/* read-only: the remount is of the new mount (a fresh fd reaches it),
	 * repeating the flags the kernel locked on the bind */
	fd = mz_sys(SYS_openat, etc, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return (int)fd;
	r = remount_ro(fdpath(p, (int)fd, NULL), MS_NOSUID | MS_NODEV | MS_NOEXEC);
	mz_sys(SYS_close, fd);
	return (int)r;
}

int mz_mounts_bind_files(int rootfd, const struct mz_mount_args *a, const char **what)
{
	if (a->hosts == NULL && a->resolv == NULL)
		return 0;
	long etc = mz_sys(SYS_openat, rootfd, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (etc < 0)
		return 0;
	int r = 0;
	if (a->hosts && (r = bind_file_ro((int)etc, "hosts", a->hosts)) < 0)
		*what = "cannot bind /etc/hosts";
	if (r == 0 && a->resolv && (r = bind_file_ro((int)etc, "resolv.conf", a->resolv)) < 0)
		*what = "cannot bind /etc/resolv.conf";
	mz_sys(SYS_close, etc);
	return r;
}

/* A directory at the top of the domain's tree, never through a symlink:
 * an fd, or -errno. */
static int top_dir(int rootfd, const char *name, mode_t mode)
{
	long fd = mz_sys(SYS_openat, rootfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -ENOENT) {
		long r = mz_sys(SYS_mkdirat, rootfd, name, mode);
		if (r < 0 && r != -EEXIST)
			return (int)r;
		fd = mz_sys(SYS_openat, rootfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return (int)fd;
}

static int mount_top(int rootfd, const char *name, mode_t mode, const char *src,
		     const char *type, unsigned long flags, const char *data)
{
	int fd = top_dir(rootfd, name, mode);
	if (fd < 0)
		return fd;
	char p[64];
	long r = do_mount(src, fdpath(p, fd, NULL), type, flags, data);
	mz_sys(SYS_close, fd);
	return (int)r;
}

/* The host's /sys, bound read-only: where a fresh sysfs is refused. */
static int bind_sys_ro(int rootfd)
{
	int fd = top_dir(rootfd, "sys", 0555);
	if (fd < 0)
		return fd;
	char p[64];
	fdpath(p, fd, NULL);
	long r = do_mount("/sys", p, NULL, MS_BIND | MS_REC, NULL);
	if (r == 0)
		r = remount_ro(p, 0);
	mz_sys(SYS_close, fd);
	return (int)r;
}

/* An empty file at name in dir, then the host's node (or fd path) bound on it. */
static int bind_node(int dir, const char *name, const char *src, mode_t mode)
{
	long fd = mz_sys(SYS_openat, dir, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
	if (fd < 0)
		return (int)fd;
	mz_sys(SYS_close, fd);
	char p[64];
	return (int)do_mount(src, fdpath(p, dir, name), NULL, MS_BIND, NULL);
}

static int make_dev(int rootfd, const struct mz_mount_args *a, const char **what)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const char *const links[][2] = {{"fd", "/proc/self/fd"},
					       {"stdin", "/proc/self/fd/0"},
					       {"stdout", "/proc/self/fd/1"},
					       {"stderr", "/proc/self/fd/2"},
					       {"ptmx", "pts/ptmx"}};
	int r = mount_top(rootfd, "dev", 0755, "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC,
			  "mode=755,size=65536");
	if (r < 0) {
		*what = "cannot mount a tmpfs on /dev";
		return r;
	}
	/* the tmpfs just mounted (the lookup crosses onto it) */
	long dev = mz_sys(SYS_openat, rootfd, "dev", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct statfs sf;
	if (dev < 0 || (r = (int)mz_sys(SYS_fstatfs, dev, &sf)) < 0 || sf.f_type != TMPFS_MAGIC) {
		*what = "cannot open the new /dev";
		return dev < 0 ? (int)dev : r < 0 ? r : -EIO;
	}
	char p[64];
	for (size_t i = 0; r == 0 && i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		char src[32] = "/dev/";
		strcat(src, nodes[i]);
		if ((r = bind_node((int)dev, nodes[i], src, 0666)) < 0)
			*what = "cannot bind a device node into /dev";
	}
	if (r == 0 && a->console) {
		/* by path: a bind's source must be a mount of this namespace, and
		 * an fd opened by the caller is on one of the host's */
		if ((r = bind_node((int)dev, "console", a->console, 0600)) < 0)
			*what = "cannot bind the terminal on /dev/console";
	}
	if (r == 0) {
		r = (int)mz_sys(SYS_mkdirat, dev, "pts", 0755);
		if (r == 0)
			r = (int)do_mount("devpts", fdpath(p, (int)dev, "pts"), "devpts",
					  MS_NOSUID | MS_NOEXEC,
					  a->devpts_gid5 ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
							 : "newinstance,ptmxmode=0666,mode=0620");
		if (r < 0)
			*what = "cannot mount a devpts instance on /dev/pts";
	}
	if (r == 0) {
		r = (int)mz_sys(SYS_mkdirat, dev, "shm", 01777);
		if (r == 0)
			r = (int)do_mount("shm", fdpath(p, (int)dev, "shm"), "tmpfs",
					  MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777");
		if (r < 0)
			*what = "cannot mount a tmpfs on /dev/shm";
	}
	for (size_t i = 0; r == 0 && i < sizeof(links) / sizeof(links[0]); i++)
		if ((r = (int)mz_sys(SYS_symlinkat, links[i][1], dev, links[i][0])) < 0)
			*what = "cannot make the links in /dev";
	mz_sys(SYS_close, dev);
	return r;
}

/* what mz_mounts_populate opens in the tree (its supervisor looks these up
 * ahead, see warm_lookups in supervisor.c) */
const char *const mz_mounts_tops[] = {"proc", "sys", "dev", "tmp", NULL};

int mz_mounts_populate(int rootfd, const struct mz_mount_args *a, const char **what)
{
	/* the modes given to mkdir are meant as they are */
	long old = mz_sys(SYS_umask, 0);
	int r = mount_top(rootfd, "proc", 0555, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL);
	if (r < 0)
		*what = "cannot mount /proc";
	if (r == 0 && (r = mount_top(rootfd, "sys", 0555, "sysfs", "sysfs",
				     MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) < 0) {
		if (r == -EPERM || r == -EACCES)
			r = bind_sys_ro(rootfd);
		if (r < 0)
			*what = "cannot mount /sys";
	}
	if (r == 0)
		r = make_dev(rootfd, a, what);
	if (r == 0 && (r = mount_top(rootfd, "tmp", 01777, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV,
				     "mode=1777")) < 0)
		*what = "cannot mount a tmpfs on /tmp";
	mz_sys(SYS_umask, old);
	return r;
}

int mz_mounts_pivot(int rootfd, const char **what)
{
	long r;
	if ((r = mz_sys(SYS_fchdir, rootfd)) < 0)
		*what = "cannot enter the root file system";
	else if ((r = mz_sys(SYS_pivot_root, ".", ".")) < 0)
		*what = "pivot_root";
	else if ((r = mz_sys(SYS_umount2, ".", MNT_DETACH)) < 0)
		*what = "cannot detach the host's root";
	else if ((r = mz_sys(SYS_chdir, "/")) < 0)
		*what = "chdir /";
	return (int)r;
}
