/*
 * rootfs.c — images made from scratch: the busybox default image and
 * debootstrap'ed Debian.
 *
 * Both build a root file system in a temporary directory under
 * <store root>/tmp (same file system as the objects, root-only), import it
 * like any directory and remove it again, also when anything fails.  The
 * removal never follows a symlink and never descends into another mount: a
 * failed debootstrap can leave /proc or /sys mounted inside its target, and
 * those are unmounted (lazily) before anything is deleted.
 */
#include "imageInt.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"

extern char **environ;

/* ---- temporary directories -------------------------------------------- */

static int make_tmpdir(mz_store *s, const char *what, char **out, mz_error_t *err)
{
	cleanup_free char *base = xasprintf("%s/tmp", mz_store_root(s));
	if (mkdir(base, 0700) < 0 && errno != EEXIST)
		return mz_error_sys(err, errno, "cannot create %s", base);
	char *dir = xasprintf("%s/%s-XXXXXX", base, what);
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) < 0) {
		int r = mz_error_sys(err, errno, "cannot create a temporary directory in %s", base);
		free(dir);
		return r;
	}
	*out = dir;
	return 0;
}

/* Undo the octal escapes of /proc/self/mountinfo ("\040" for a space). */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] && p[3]) {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

static void umount_under(const char *dir)
{
	cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return;
	size_t dl = strlen(dir);
	char line[8192];
	char **mps = NULL;
	size_t n = 0;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		unescape(mp);
		if (strncmp(mp, dir, dl) == 0 && mp[dl] == '/') {
			mps = xrealloc(mps, (n + 1) * sizeof(*mps));
			mps[n++] = xstrdup(mp);
		}
	}
	/* Later mounts sit on top of earlier ones: unmount in reverse. */
	while (n > 0) {
		if (umount2(mps[--n], MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			mz_warn("cannot unmount %s: %s", mps[n], strerror(errno));
		free(mps[n]);
	}
	free(mps);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	int r = (flag == FTW_DP) ? rmdir(path) : unlink(path);
	if (r < 0 && errno != ENOENT)
		mz_warn("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

int rm_tree(const char *path)
{
	umount_under(path);
	/* FTW_PHYS: never follow symlinks; FTW_MOUNT: stay on this file system. */
	if (nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return -errno;
	return access(path, F_OK) == 0 ? -ENOTEMPTY : 0;
}

static void tmpdir_done(char *dir)
{
	if (dir && rm_tree(dir) < 0)
		mz_warn("could not remove the temporary directory %s entirely", dir);
	free(dir);
}

/* ---- running a program ------------------------------------------------ */

static int run_wait(pid_t pid, const char *prog, mz_error_t *err)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return mz_error_sys(err, errno, "cannot wait for %s", prog);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Run argv; with capture, its stdout (up to 1 MiB) is returned in *capture;
 * with quiet, its stdout goes to /dev/null.  Returns its exit status.  As
 * system(3) does, SIGINT and SIGQUIT are ignored here while the child runs
 * (a ^C stops the child, and we still clean up after it). */
static int run(char *const argv[], char **capture, bool quiet, mz_error_t *err)
{
	int p[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (capture) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return mz_error_sys(err, errno, "cannot create a pipe");
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	} else if (quiet) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	}
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t def;
	sigemptyset(&def);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGQUIT);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF);
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	pid_t pid;
	int e = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (p[1] >= 0)
		close(p[1]);
	if (e) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		if (p[0] >= 0)
			close(p[0]);
		return mz_error_sys(err, e, "cannot run %s", argv[0]);
	}
	if (capture) {
		size_t n = 0, cap = 1 << 20;
		char *buf = xmalloc(cap + 1);
		ssize_t k;
		while ((k = read(p[0], buf + n, cap - n)) > 0 || (k < 0 && errno == EINTR))
			n += k > 0 ? k : 0;
		buf[n] = '\0';
		close(p[0]);
		*capture = buf;
	}
	int r = run_wait(pid, argv[0], err);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	return r;
}

/* ---- busybox ---------------------------------------------------------- */

static const char bb_hint[] = "install it with 'apt-get install busybox-static'";

/* A static executable has no program interpreter (PT_INTERP). */
static int check_static(const char *path, mz_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mz_error_sys(err, errno, "no busybox at %s (%s)", path, bb_hint);
	Elf64_Ehdr h;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.e_ident, ELFMAG, SELFMAG) != 0 || h.e_ident[EI_CLASS] != ELFCLASS64)
		return mz_error(err, ENOEXEC, "%s is not a 64-bit ELF executable", path);
	for (int i = 0; i < h.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), h.e_phoff + (off_t)i * h.e_phentsize) !=
		    (ssize_t)sizeof(ph))
			return mz_error(err, ENOEXEC, "%s: truncated ELF file", path);
		if (ph.p_type == PT_INTERP)
			return mz_error(err, ENOEXEC,
					"%s is dynamically linked, but an image has no libraries "
					"for it: %s",
					path, bb_hint);
	}
	return 0;
}

static int copy_file(const char *from, int dfd, const char *to, mode_t mode, mz_error_t *err)
{
	cleanup_close int in = open(from, O_RDONLY | O_CLOEXEC);
	cleanup_close int out = openat(dfd, to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (in < 0 || out < 0)
		return mz_error_sys(err, errno, "cannot copy %s", from);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write_all(out, buf, n) < 0)
			return mz_error_sys(err, errno, "cannot copy %s", from);
	if (n < 0 || fchmod(out, mode) < 0)
		return mz_error_sys(err, errno, "cannot copy %s", from);
	return 0;
}

/* mkdir -p of path's parent directories, relative to dfd. */
static int mkparents(int dfd, const char *path)
{
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = strchr(tmp, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(dfd, tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static bool applet_path_ok(const char *p)
{
	if (*p == '\0' || *p == '/' || strlen(p) > 200 || strstr(p, "..") != NULL)
		return false;
	for (; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int bb_applets(const char *busybox, int dfd, mz_error_t *err)
{
	char *argv[] = {(char *)busybox, "--list-full", NULL};
	cleanup_free char *list = NULL;
	int st = run(argv, &list, false, err);
	if (st < 0)
		return st;
	if (st != 0)
		return mz_error(err, EIO, "'%s --list-full' failed (exit %d)", busybox, st);
	int n = 0;
	for (char *save = NULL, *l = strtok_r(list, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (strcmp(l, "bin/busybox") == 0)
			continue;
		if (!applet_path_ok(l)) {
			mz_warn("busybox: skipping odd applet path '%.64s'", l);
			continue;
		}
		int r = mkparents(dfd, l);
		if (r < 0)
			return mz_error_sys(err, -r, "cannot create the parent of %s", l);
		if (symlinkat("/bin/busybox", dfd, l) < 0 && errno != EEXIST)
			return mz_error_sys(err, errno, "cannot create symlink %s", l);
		n++;
	}
	if (n == 0)
		return mz_error(err, EIO, "'%s --list-full' listed no applets", busybox);
	return 0;
}

static const struct {
	const char *path, *text;
} bb_files[] = {
	{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
		       "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
	{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
	{"etc/hostname", "mezzo\n"},
	{"etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
};

static const struct {
	const char *path;
	mode_t mode;
} bb_dirs[] = {
	{"bin", 0755}, {"sbin", 0755}, {"usr", 0755}, {"usr/bin", 0755}, {"usr/sbin", 0755},
	{"etc", 0755}, {"dev", 0755}, {"proc", 0555}, {"sys", 0555}, {"tmp", 01777},
	{"root", 0700}, {"run", 0755}, {"var", 0755}, {"var/tmp", 01777},
};

static int bb_tree(const char *dir, const char *busybox, mz_error_t *err)
{
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return mz_error_sys(err, errno, "cannot open %s", dir);
	for (size_t i = 0; i < ARRAY_SIZE(bb_dirs); i++)
		if (mkdirat(dfd, bb_dirs[i].path, 0700) < 0 ||
		    fchmodat(dfd, bb_dirs[i].path, bb_dirs[i].mode, 0) < 0)
			return mz_error_sys(err, errno, "cannot create %s/%s", dir, bb_dirs[i].path);
	int r = copy_file(busybox, dfd, "bin/busybox", 0755, err);
	if (r < 0 || (r = bb_applets(busybox, dfd, err)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(bb_files); i++) {
		cleanup_close int fd = openat(dfd, bb_files[i].path,
					      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, bb_files[i].text, strlen(bb_files[i].text)) < 0 ||
		    fchmod(fd, 0644) < 0)
			return mz_error_sys(err, errno, "cannot write %s", bb_files[i].path);
	}
	return 0;
}

int mz_image_busybox(mz_store *s, const char *name, const char *busybox_path,
		     const struct mz_import_opts *o, mz_lid *out, mz_error_t *err)
{
	const char *bb = busybox_path ? busybox_path : "/bin/busybox";
	int r = image_name_free(s, name, err);
	if (r < 0 || (r = check_static(bb, err)) < 0)
		return r;
	char *dir = NULL;
	if ((r = make_tmpdir(s, "busybox", &dir, err)) < 0)
		return r;
	struct mz_import_opts io = {0};
	if (o)
		io = *o;
	io.root_owned = true; /* whoever runs this, the image's files are root's */
	r = bb_tree(dir, bb, err);
	if (r == 0)
		r = mz_image_import(s, name, dir, &io, out, err);
	tmpdir_done(dir);
	return r;
}

/* ---- debootstrap ------------------------------------------------------ */

static char *find_program(const char *prog)
{
	const char *env = getenv("PATH");
	cleanup_free char *path = xasprintf("%s:/usr/sbin:/sbin:/usr/bin:/bin",
					    env ? env : "");
	for (char *save = NULL, *d = strtok_r(path, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/%s", d, prog);
		if (*d == '/' && access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

static bool word_ok(const char *w)
{
	if (w == NULL || *w == '\0' || *w == '-' || strlen(w) > 64)
		return false;
	for (; *w; w++)
		if (!(*w >= 'a' && *w <= 'z') && !(*w >= 'A' && *w <= 'Z') &&
		    !(*w >= '0' && *w <= '9') && *w != '-' && *w != '_' && *w != '.')
			return false;
	return true;
}

static bool mirror_ok(const char *m)
{
	static const char *const schemes[] = {"http://", "https://", "file:/", "ftp://"};
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (strncmp(m, schemes[i], strlen(schemes[i])) == 0)
			return strpbrk(m, " \t\n") == NULL;
	return false;
}

int mz_image_debootstrap(mz_store *s, const char *name, const struct mz_debootstrap_opts *d,
			 const struct mz_import_opts *o, mz_lid *out, mz_error_t *err)
{
	const char *suite = d && d->suite ? d->suite : "bookworm";
	const char *variant = d && d->variant ? d->variant : "minbase";
	const char *mirror = d ? d->mirror : NULL;
	int r = image_name_free(s, name, err);
	if (r < 0)
		return r;
	if (!word_ok(suite))
		return mz_error(err, EINVAL, "invalid suite '%s'", suite);
	if (!word_ok(variant))
		return mz_error(err, EINVAL, "invalid variant '%s'", variant);
	if (mirror && !mirror_ok(mirror))
		return mz_error(err, EINVAL, "invalid mirror '%s': give an http://, https://, "
				"ftp:// or file:/ URL", mirror);
	cleanup_free char *prog = find_program("debootstrap");
	if (prog == NULL)
		return mz_error(err, ENOENT, "debootstrap is not installed: "
				"install it with 'apt-get install debootstrap'");
	if (geteuid() != 0)
		return mz_error(err, EPERM, "debootstrap must run as root");
	char *dir = NULL;
	if ((r = make_tmpdir(s, "debootstrap", &dir, err)) < 0)
		return r;
	cleanup_free char *var = xasprintf("--variant=%s", variant);
	char *argv[] = {prog, var, (char *)suite, dir, (char *)mirror, NULL};
	int st = run(argv, NULL, d && d->quiet, err);
	if (st > 0) {
		/* Keep its log: the directory goes. */
		cleanup_free char *from = xasprintf("%s/debootstrap/debootstrap.log", dir);
		cleanup_free char *to = xasprintf("%s/tmp/debootstrap-%s.log",
						  mz_store_root(s), name);
		bool kept = rename(from, to) == 0;
		r = mz_error(err, EIO, "debootstrap %s failed (exit status %d); see its output "
			     "above%s%s",
			     suite, st, kept ? " and " : "", kept ? to : "");
	} else {
		r = st;
	}
	if (r == 0)
		r = mz_image_import(s, name, dir, o, out, err);
	tmpdir_done(dir);
	return r;
}
