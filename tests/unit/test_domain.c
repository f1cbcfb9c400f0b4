/* test_domain.c — the domain runtime's pieces: spec checks, the seccomp
 * program, the capability set, cgroups, and (as root, with busybox-static) a
 * real spawn, exec, kill and cleanup.  The system tests (test_runtime.py)
 * check the isolation itself. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/domain/runtime.h"
#include "../../src/domain/runtimeInt.h"
#include "../../src/lib/util.h"

#define BASE 200000

static char init_path[PATH_MAX + 16];

/* build/tests/test_domain -> build/mezzo-init */
static void find_init(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	for (int i = 0; i < 2; i++)
		*strrchr(self, '/') = '\0';
	snprintf(init_path, sizeof(init_path), "%s/mezzo-init", self);
}

static bool can_run_domains(void)
{
	return geteuid() == 0 && access("/bin/busybox", X_OK) == 0 && access(init_path, X_OK) == 0;
}

static void expect_einval(struct mz_domain_spec *s, const char *needle)
{
	struct mz_domain_proc d;
	mz_error_t err cleanup_error = NULL;
	assert_int_equal(mz_domain_spawn(s, &d, &err), -EINVAL);
	assert_non_null(err);
	assert_non_null(strstr(err->msg, needle));
	assert_int_equal(d.pidfd, -1);
}

static void test_spec_checks(void **state)
{
	(void)state;
	char *argv[] = {"/bin/true", NULL};
	struct mz_domain_spec ok = {.name = "unit", .rootfs = "/nonexistent", .uid_base = BASE,
				    .uid_count = 65536, .gid_base = BASE, .gid_count = 65536,
				    .argv = argv, .init_path = "/nonexistent"};
	struct mz_domain_spec s = ok;
	s.name = "bad/name";
	expect_einval(&s, "bad domain name");
	s.name = "..";
	expect_einval(&s, "bad domain name");
	s.name = "";
	expect_einval(&s, "bad domain name");
	s = ok;
	s.rootfs = "relative";
	expect_einval(&s, "absolute");
	s = ok;
	s.argv = (char *[]){NULL};
	expect_einval(&s, "no command");
	s = ok;
	s.uid_base = 0;
	expect_einval(&s, "host root");
	s = ok;
	s.uid = 70000;
	expect_einval(&s, "outside the domain's range");
	s = ok;
	s.uid_count = 0;
	expect_einval(&s, "empty id range");
	/* a missing init is reported before anything is made */
	struct mz_domain_proc d;
	mz_error_t err cleanup_error = NULL;
	assert_int_equal(mz_domain_spawn(&ok, &d, &err), -ENOENT);
	assert_non_null(strstr(err->msg, "mezzo-init"));
}

static void test_seccomp_prog(void **state)
{
	(void)state;
	const struct sock_fprog *a, *b, *c;
	mz_error_t err cleanup_error = NULL;
	assert_int_equal(mz_seccomp_prog(false, &a, &err), 0);
	assert_int_equal(mz_seccomp_prog(false, &b, &err), 0);
	assert_int_equal(mz_seccomp_prog(true, &c, &err), 0);
	assert_ptr_equal(a, b); /* built once per process */
	assert_true(a->len > 10 && a->len <= BPF_MAXINSNS);
	assert_true(c->len > 10);
	assert_true(a->len != c->len ||
		    memcmp(a->filter, c->filter, a->len * sizeof(struct sock_filter)) != 0);
}

static void test_caps_keep(void **state)
{
	(void)state;
	uint64_t k = mz_caps_keep(false);
	assert_true(k & (1ULL << CAP_CHOWN));
	assert_true(k & (1ULL << CAP_SETUID));
	assert_true(k & (1ULL << CAP_NET_BIND_SERVICE));
	assert_true(k & (1ULL << CAP_SYS_ADMIN));
	assert_false(k & (1ULL << CAP_SYS_MODULE));
	assert_false(k & (1ULL << CAP_SYS_BOOT));
	assert_false(k & (1ULL << CAP_SYS_RAWIO));
	assert_false(k & (1ULL << CAP_SYS_RESOURCE));
	assert_false(k & (1ULL << CAP_SYS_TIME));
	assert_false(k & (1ULL << 38)); /* PERFMON */
	assert_true(mz_caps_keep(true) & (1ULL << 38));
}

static bool file_has(const char *path, const char *want)
{
	char buf[256] = "";
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, want) != NULL;
}

static void test_cgroup_limits(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	char rel[256];
	struct mz_limits lim = {.memory_bytes = 64 << 20, .pids = 33};
	mz_error_t err cleanup_error = NULL;
	int r = mz_cg_create_v2("unit-cg", &lim, false, rel, sizeof(rel), &err);
	if (r == -ENOTSUP)
		skip();
	assert_int_equal(r, 0);
	assert_int_equal(mz_cg_create_v1(rel, &lim, &err), 0);
	assert_string_equal(rel, "mezzo/unit-cg");
	/* wherever this host keeps them */
	bool mem = file_has("/sys/fs/cgroup/memory/mezzo/unit-cg/memory.limit_in_bytes", "67108864") ||
		   file_has("/sys/fs/cgroup/mezzo/unit-cg/memory.max", "67108864");
	bool pids = file_has("/sys/fs/cgroup/pids/mezzo/unit-cg/pids.max", "33") ||
		    file_has("/sys/fs/cgroup/mezzo/unit-cg/pids.max", "33");
	assert_true(mem);
	assert_true(pids);
	struct mz_domain_stats st;
	assert_int_equal(mz_cg_stats(rel, &st, &err), 0);
	assert_int_equal(st.pids, 0);
	/* a stale empty group of the same name is replaced */
	assert_int_equal(mz_cg_create_v2("unit-cg", &lim, false, rel, sizeof(rel), &err), 0);
	assert_int_equal(mz_cg_create_v1(rel, &lim, &err), 0);
	assert_int_equal(mz_cg_remove(rel, &err), 0);
	assert_int_equal(access("/sys/fs/cgroup/memory/mezzo/unit-cg", F_OK), -1);
	assert_int_equal(access("/sys/fs/cgroup/mezzo/unit-cg", F_OK), -1);
	assert_int_equal(mz_cg_remove(rel, &err), 0); /* twice is fine */
}

/* A busybox tree with just enough in it. */
static void make_root(const char *dir)
{
	char p[PATH_MAX];
	const char *dirs[] = {"", "/bin", "/etc", "/tmp", "/proc", "/sys", "/dev"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(p, sizeof(p), "%s%s", dir, dirs[i]);
		assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
		assert_int_equal(chown(p, BASE, BASE), 0);
	}
	snprintf(p, sizeof(p), "cp /bin/busybox %s/bin/busybox", dir);
	assert_int_equal(system(p), 0);
	const char *applets[] = {"sh", "true", "sleep", "cat", "id", "ps"};
	for (size_t i = 0; i < ARRAY_SIZE(applets); i++) {
		snprintf(p, sizeof(p), "%s/bin/%s", dir, applets[i]);
		assert_int_equal(symlink("busybox", p), 0);
	}
}

struct rfx {
	char dir[64];
	char root[96];
};

static int root_setup(void **state)
{
	find_init();
	if (!can_run_domains()) {
		*state = NULL;
		return 0;
	}
	struct rfx *f = xcalloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/mezzo-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	make_root(f->root);
	*state = f;
	return 0;
}

static int root_teardown(void **state)
{
	struct rfx *f = *state;
	if (f == NULL)
		return 0;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int wait_init(struct mz_domain_proc *d)
{
	siginfo_t si = {0};
	assert_int_equal(waitid(P_PIDFD, (id_t)d->pidfd, &si, WEXITED), 0);
	close(d->pidfd);
	d->pidfd = -1;
	return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

static void test_spawn_status(void **state)
{
	struct rfx *f = *state;
	if (f == NULL)
		skip();
	char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
	struct mz_domain_spec s = {.name = "unit-spawn", .rootfs = f->root, .uid_base = BASE,
				   .uid_count = 65536, .gid_base = BASE, .gid_count = 65536,
				   .argv = argv, .init_path = init_path,
				   .stdio = {-1, -1, 2}, .limits = {.pids = 16}};
	struct mz_domain_proc d;
	mz_error_t err cleanup_error = NULL;
	assert_int_equal(mz_domain_spawn(&s, &d, &err), 0);
	assert_true(d.pid > 0 && d.pidfd >= 0);
	assert_string_equal(d.cgroup, "mezzo/unit-spawn");
	assert_int_equal(wait_init(&d), 3);
	assert_int_equal(mz_domain_cleanup(&d, &err), 0);
	assert_int_equal(access("/sys/fs/cgroup/pids/mezzo/unit-spawn", F_OK), -1);
}

static void test_spawn_errors(void **state)
{
	struct rfx *f = *state;
	if (f == NULL)
		skip();
	char *argv[] = {"/no/such/cmd", NULL};
	struct mz_domain_spec s = {.name = "unit-err", .rootfs = f->root, .uid_base = BASE,
				   .uid_count = 65536, .gid_base = BASE, .gid_count = 65536,
				   .argv = argv, .init_path = init_path, .stdio = {-1, -1, 2}};
	struct mz_domain_proc d;
	mz_error_t err = NULL;
	assert_int_equal(mz_domain_spawn(&s, &d, &err), -ENOENT);
	assert_non_null(strstr(err->msg, "cannot run /no/such/cmd"));
	assert_int_equal(d.pidfd, -1);
	assert_int_equal(access("/sys/fs/cgroup/pids/mezzo/unit-err", F_OK), -1);
	mz_error_release(&err);

	char missing[128];
	snprintf(missing, sizeof(missing), "%s/missing", f->dir);
	s.rootfs = missing;
	s.argv = (char *[]){"/bin/true", NULL};
	assert_true(mz_domain_spawn(&s, &d, &err) < 0);
	assert_non_null(strstr(err->msg, "root file system"));
	mz_error_release(&err);

	s.rootfs = f->root;
	s.cwd = "/nowhere";
	assert_int_equal(mz_domain_spawn(&s, &d, &err), -ENOENT);
	assert_non_null(strstr(err->msg, "/nowhere"));
	mz_error_release(&err);
}

static void test_exec_kill_stats(void **state)
{
	struct rfx *f = *state;
	if (f == NULL)
		skip();
	char *argv[] = {"/bin/sleep", "30", NULL};
	struct mz_domain_spec s = {.name = "unit-exec", .rootfs = f->root, .uid_base = BASE,
				   .uid_count = 65536, .gid_base = BASE, .gid_count = 65536,
				   .argv = argv, .init_path = init_path, .stdio = {-1, -1, 2}};
	struct mz_domain_proc d;
	mz_error_t err cleanup_error = NULL;
	assert_int_equal(mz_domain_spawn(&s, &d, &err), 0);

	/* the exec'd process sees init as pid 1 and is our child */
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct mz_exec_spec x = {.argv = (char *[]){"/bin/cat", "/proc/1/cmdline", NULL},
				 .stdio = {-1, p[1], 2}, .domain = &s, .uid = 1000, .gid = 1000};
	pid_t pid;
	assert_int_equal(mz_domain_exec(&d, &x, &pid, &err), 0);
	close(p[1]);
	char buf[128] = "";
	ssize_t n = read_all(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	assert_true(n > 0);
	assert_string_equal(buf, "mezzo-init");
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	x.argv = (char *[]){"/no/such", NULL};
	assert_int_equal(mz_domain_exec(&d, &x, &pid, &err), -ENOENT);
	mz_error_release(&err);

	struct mz_domain_stats ds;
	assert_int_equal(mz_domain_stats(&d, &ds, &err), 0);
	assert_true(ds.pids >= 2);
	assert_true(ds.memory_bytes > 0);

	assert_int_equal(mz_domain_kill(&d, SIGKILL, &err), 0);
	assert_int_equal(wait_init(&d), 128 + SIGKILL);
	assert_int_equal(mz_domain_cleanup(&d, &err), 0);
}

static void test_init_standalone(void **state)
{
	(void)state;
	find_init();
	if (access(init_path, X_OK) != 0 || access("/bin/sh", X_OK) != 0)
		skip();
	/* not pid 1: init still runs the command, reaps, and exits with its status */
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "%s -- /bin/sh -c 'sleep 0.01 & exit 4'", init_path);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 4);
	snprintf(cmd, sizeof(cmd), "%s -- /bin/sh -c 'kill -TERM $$'", init_path);
	st = system(cmd);
	assert_int_equal(WEXITSTATUS(st), 128 + SIGTERM);
	snprintf(cmd, sizeof(cmd), "%s -- /nonexistent 2>/dev/null", init_path);
	st = system(cmd);
	assert_int_equal(WEXITSTATUS(st), 127);
}

/* In a child (the caller's fds are its own): keep some of a spread of fds,
 * with a duplicate and a -1 among them; exactly those stay open. */
static void test_keep_only(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd[12];
		for (int i = 0; i < 12; i++)
			if ((fd[i] = open("/dev/null", O_RDONLY | (i % 2 ? O_CLOEXEC : 0))) < 0)
				_exit(10);
		int high = fcntl(fd[5], F_DUPFD, 900);
		if (high < 0 || fcntl(fd[4], F_DUPFD, 950) < 0) /* above all kept */
			_exit(13);
		const int keep[] = {fd[7], 1, -1, fd[2], fd[7], high};
		if (mz_child_keep_only(keep, 6) < 0)
			_exit(11);
		for (int f = 0; f < 1024; f++) {
			bool want = f == 1 || f == fd[2] || f == fd[7] || f == high;
			if ((fcntl(f, F_GETFD) >= 0) != want)
				_exit(20 + (f < 60 ? f : 60));
		}
		const int many[9] = {0};
		_exit(mz_child_keep_only(many, 9) == -EINVAL ? 0 : 12);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	find_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_checks),
		cmocka_unit_test(test_seccomp_prog),
		cmocka_unit_test(test_caps_keep),
		cmocka_unit_test(test_cgroup_limits),
		cmocka_unit_test(test_init_standalone),
		cmocka_unit_test(test_keep_only),
		cmocka_unit_test_setup_teardown(test_spawn_status, root_setup, root_teardown),
		cmocka_unit_test_setup_teardown(test_spawn_errors, root_setup, root_teardown),
		cmocka_unit_test_setup_teardown(test_exec_kill_stats, root_setup, root_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
