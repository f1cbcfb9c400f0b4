/*
 * runtime_floor.c — how far mezzo's domain start is from the bare minimum.
 *
 *   runtime_floor ROOTFS [N] [MZRUN]
 *
 * ROOTFS is a busybox tree owned by uid/gid 200000 (as the system tests make
 * it).  Runs /bin/true N times (default 200) each way, interleaved, and prints
 * median / p10 / p90 in ms:
 *   floor       clone(pid|mnt|net|uts|ipc) + bind rootfs + mount /proc +
 *               pivot_root + exec /bin/true + wait (the "minimal runtime" of
 *               notes/machine.md)
 *   floor+user  the same with a user namespace and its id maps
 *   mezzo       mz_domain_spawn (all of it: cgroups, mounts, init, seccomp,
 *               caps) + wait + mz_domain_cleanup, in process
 * and, with MZRUN (path of build/tests/helpers/mzrun), the same as whole
 * processes: fork+exec of this binary in floor+user mode vs fork+exec of mzrun.
 *
 *   runtime_floor --floor-once ROOTFS [CMD ARGS...]
 *
 * runs the floor + userns mode once as a whole process (CMD defaults to
 * /bin/true) and exits with 0 if CMD succeeded, else 1: the floor that
 * bench/domains times end to end beside `mezzo run`, and leaves running
 * (with a sleeping CMD) for its memory figures.
 * BENCH_ONLY_MEZZO=1 runs only the mezzo loop (for perf record).
 *
 * Medians move with the machine's load (other work on its 2 CPUs); compare
 * the columns of one run, not runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../src/domain/runtime.h"
#include "../src/lib/util.h"

static const char *rootfs;
static char *default_cmd[] = {"/bin/true", NULL};
static char **floor_cmd = default_cmd;

static void die(const char *what)
{
	perror(what);
	_exit(111);
}

static void floor_child(int pipefd, bool user)
{
	char c;
	if (user && read(pipefd, &c, 1) != 1)
		_exit(1);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("private");
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		die("bind");
	if (chdir(rootfs) < 0)
		die("chdir");
	if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		die("proc");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die("pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		die("umount");
	if (chdir("/") < 0)
		die("chdir /");
	execve(floor_cmd[0], floor_cmd, (char *[]){NULL});
	die("execve");
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, s, strlen(s)) < 0)
		die(path);
	close(fd);
}

static int run_floor(bool user)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	struct clone_args ca = {
		.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
			 (user ? CLONE_NEWUSER : 0),
		.exit_signal = SIGCHLD};
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0)
		die("clone3");
	if (pid == 0) {
		close(p[1]);
		floor_child(p[0], user);
	}
	close(p[0]);
	if (user) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%ld/uid_map", pid);
		write_file(path, "0 200000 65536\n");
		snprintf(path, sizeof(path), "/proc/%ld/gid_map", pid);
		write_file(path, "0 200000 65536\n");
		if (write(p[1], "g", 1) != 1)
			die("go");
	}
	close(p[1]);
	int st;
	if (waitpid((pid_t)pid, &st, 0) < 0)
		die("waitpid");
	return st;
}

static char *init_path;

static int run_mezzo(int i)
{
	char name[32];
	snprintf(name, sizeof(name), "bench-%d", i % 4);
	char *argv[] = {"/bin/true", NULL};
	struct mz_domain_spec s = {.name = name, .rootfs = rootfs, .uid_base = 200000,
				   .uid_count = 65536, .gid_base = 200000, .gid_count = 65536,
				   .argv = argv, .stdio = {0, 1, 2}, .init_path = init_path};
	struct mz_domain_proc d;
	mz_error_t err cleanup_error = NULL;
	if (mz_domain_spawn(&s, &d, &err) < 0) {
		fprintf(stderr, "spawn: %s\n", err->msg);
		exit(1);
	}
	siginfo_t si;
	waitid(P_PIDFD, (id_t)d.pidfd, &si, WEXITED);
	close(d.pidfd);
	if (mz_domain_cleanup(&d, &err) < 0) {
		fprintf(stderr, "cleanup: %s\n", err->msg);
		exit(1);
	}
	return si.si_status;
}

static int run_exec(char *const *argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return st;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n)
{
	qsort(t, (size_t)n, sizeof(double), cmp);
	printf("%-22s median %6.3f ms   p10 %6.3f   p90 %6.3f\n", what, t[n / 2], t[n / 10],
	       t[n * 9 / 10]);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--floor-once") == 0) {
		rootfs = argv[2];
		if (argc > 3)
			floor_cmd = argv + 3;
		return run_floor(true) == 0 ? 0 : 1;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: runtime_floor ROOTFS [N] [MZRUN]\n");
		return 2;
	}
	rootfs = argv[1];
	int n = argc > 2 ? atoi(argv[2]) : 200;
	const char *mzrun = argc > 3 ? argv[3] : NULL;
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sl > 0 ? sl : 0] = '\0';
	init_path = getenv("MEZZO_INIT");
	if (init_path == NULL) {
		/* build/bench/runtime_floor -> build/mezzo-init */
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", self);
		for (int k = 0; k < 2; k++) {
			char *s = strrchr(dir, '/');
			if (s)
				*s = '\0';
		}
		init_path = xasprintf("%s/mezzo-init", dir);
	}
	double *t[5];
	for (int k = 0; k < 5; k++)
		t[k] = xcalloc((size_t)n, sizeof(double));
	for (int i = 0; i < 10; i++) { /* warm up */
		run_floor(false);
		run_mezzo(i);
	}
	if (getenv("BENCH_ONLY_MEZZO")) {
		for (int i = 0; i < n; i++)
			run_mezzo(i);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		int64_t a = mono_ns();
		if (run_floor(false) != 0)
			return 1;
		int64_t b = mono_ns();
		if (run_floor(true) != 0)
			return 1;
		int64_t c = mono_ns();
		if (run_mezzo(i) != 0)
			return 1;
		int64_t d = mono_ns();
		t[0][i] = (double)(b - a) / 1e6;
		t[1][i] = (double)(c - b) / 1e6;
		t[2][i] = (double)(d - c) / 1e6;
		if (mzrun) {
			char *fa[] = {self, "--floor-once", (char *)rootfs, NULL};
			char *ma[] = {(char *)mzrun, "--init", init_path, "--name", "bench-x",
				      (char *)rootfs, "--", "/bin/true", NULL};
			int64_t e = mono_ns();
			if (run_exec(fa) != 0)
				return 1;
			int64_t f = mono_ns();
			if (run_exec(ma) != 0)
				return 1;
			int64_t g = mono_ns();
			t[3][i] = (double)(f - e) / 1e6;
			t[4][i] = (double)(g - f) / 1e6;
		}
	}
	printf("/bin/true in %s, %d runs each, interleaved\n", rootfs, n);
	report("floor (no userns)", t[0], n);
	report("floor + userns", t[1], n);
	report("mezzo (in process)", t[2], n);
	if (mzrun) {
		report("exec floor + userns", t[3], n);
		report("exec mzrun", t[4], n);
	}
	return 0;
}
