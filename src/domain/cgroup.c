/*
 * cgroup.c — one control group per domain: limits (memory, pids, cpu, io),
 * accounting, and a handle to kill everything in the domain at once.
 *
 * Hosts come in three shapes and mezzo finds out which at run time, from the
 * kernel's own mount table:
 *   - pure v2: /sys/fs/cgroup is cgroup2; every controller is there, enabled
 *     for the "mezzo" parent through cgroup.subtree_control;
 *   - hybrid (these machines): v1 hierarchies per controller under
 *     /sys/fs/cgroup/<ctl> and a cgroup2 mount beside them (unified/) that
 *     has no controllers but tracks processes: cgroup.kill and
 *     CLONE_INTO_CGROUP work there;
 *   - pure v1: no cgroup2 at all; processes are killed by listing them.
 * Each controller is used from v1 if a v1 hierarchy has it, else from v2 if
 * the v2 root offers it.  A domain NAME lives at "mezzo/NAME" under every
 * hierarchy it uses (v2 always; v1 memory and pids always; v1 cpuacct where
 * there is no v2 to count cpu time; v1 cpu and blkio only when a limit needs
 * them).
 *
 * Joining: a new process goes into the v2 group by clone3(CLONE_INTO_CGROUP)
 * and moves itself into v1 groups by writing "0" to their "tasks" files —
 * moving a single thread does not take the global threadgroup lock, whose
 * write side costs an RCU grace period per migration (cgroup.procs does).
 * So a domain's groups are made in two steps: the v2 one (with any v2
 * limits) before its first process is cloned into it, the v1 ones while
 * that process loads its seccomp filter; it joins them once told to go.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "runtimeInt.h"
#include "sys.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

#define CG_PARENT "mezzo"

/* Where each controller lives; NULL root: not available. */
enum { C_MEMORY, C_PIDS, C_CPU, C_CPUACCT, C_IO, C_N };
static const char *const v1_names[C_N] = {"memory", "pids", "cpu", "cpuacct", "blkio"};
static const char *const v2_names[C_N] = {"memory", "pids", "cpu", NULL, "io"};

static struct {
	char *v2;         /* cgroup2 mount point, or NULL */
	char *v1[C_N];    /* v1 hierarchy mount point per controller, or NULL */
	bool on_v2[C_N];  /* used from v2 */
	int err;          /* detection failed: -errno */
} L;
static pthread_once_t layout_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t enable_lock = PTHREAD_MUTEX_INITIALIZER;
static bool enabled_v2;

static bool has_opt(const char *opts, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = opts; p && *p;) {
		const char *e = strchrnul(p, ',');
		if ((size_t)(e - p) == n && strncmp(p, name, n) == 0)
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

static int read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read_all(fd, buf, n - 1);
	int e = errno;
	close(fd);
	if (r < 0)
		return -e;
	buf[r] = '\0';
	return (int)r;
}

/* The kernel's mount table: any layout, wherever it is mounted. */
static void detect_mountinfo(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL) {
		L.err = -errno;
		return;
	}
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		char *sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		char type[32], mp[4096], src[256], opts[1024];
		if (sscanf(sep + 3, "%31s %255s %1023s", type, src, opts) != 3 ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		unescape_octal(mp);
		if (strcmp(type, "cgroup2") == 0) {
			if (L.v2 == NULL)
				L.v2 = xstrdup(mp);
		} else if (strcmp(type, "cgroup") == 0) {
			for (int c = 0; c < C_N; c++)
				if (L.v1[c] == NULL && has_opt(opts, v1_names[c]))
					L.v1[c] = xstrdup(mp);
		}
	}
	free(line);
	fclose(f);
}

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == magic;
}

static void detect(void)
{
	/* The usual places first (a few statfs instead of parsing the mount
	 * table: this runs in every "mezzo run"). */
	if (is_fs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC)) {
		L.v2 = xstrdup("/sys/fs/cgroup"); /* pure v2 */
	} else if (is_fs("/sys/fs/cgroup", TMPFS_MAGIC)) {
		if (is_fs("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC))
			L.v2 = xstrdup("/sys/fs/cgroup/unified");
		for (int c = 0; c < C_N; c++) {
			char p[64];
			snprintf(p, sizeof(p), "/sys/fs/cgroup/%s", v1_names[c]);
			if (is_fs(p, CGROUP_SUPER_MAGIC))
				L.v1[c] = xstrdup(p);
		}
	}
	bool any = L.v2 != NULL;
	for (int c = 0; c < C_N; c++)
		any |= L.v1[c] != NULL;
	if (!any)
		detect_mountinfo();
	if (L.err < 0)
		return;
	char ctls[512] = "";
	if (L.v2) {
		cleanup_free char *p = xasprintf("%s/cgroup.controllers", L.v2);
		if (read_small(p, ctls, sizeof(ctls)) < 0)
			ctls[0] = '\0';
		for (char *q = ctls; *q; q++)
			if (*q == ' ' || *q == '\n')
				*q = ',';
	}
	for (int c = 0; c < C_N; c++)
		L.on_v2[c] = L.v1[c] == NULL && v2_names[c] && has_opt(ctls, v2_names[c]);
	mz_debug("cgroups: v2 %s; v1 memory %s pids %s cpu %s cpuacct %s blkio %s",
		 L.v2 ? L.v2 : "-", L.v1[C_MEMORY] ? "yes" : "no", L.v1[C_PIDS] ? "yes" : "no",
		 L.v1[C_CPU] ? "yes" : "no", L.v1[C_CPUACCT] ? "yes" : "no",
		 L.v1[C_IO] ? "yes" : "no");
}

static int layout(mz_error_t *err)
{
	pthread_once(&layout_once, detect);
	if (L.err < 0)
		return mz_error_sys(err, -L.err, "cannot read /proc/self/mountinfo");
	if (L.v2 == NULL && L.v1[C_PIDS] == NULL && L.v1[C_MEMORY] == NULL)
		return mz_error(err, ENOTSUP, "no usable cgroup hierarchy is mounted");
	return 0;
}

/* The distinct v1 hierarchies, by mount point (cpu and cpuacct may share one). */
/* The distinct v1 hierarchies among the controllers in use[] (NULL: all). */
static int v1_roots(const bool *use, const char *roots[C_N])
{
	int n = 0;
	for (int c = 0; c < C_N; c++) {
		if ((use && !use[c]) || L.v1[c] == NULL)
			continue;
		bool dup = false;
		for (int i = 0; i < n; i++)
			dup |= strcmp(roots[i], L.v1[c]) == 0;
		if (!dup)
			roots[n++] = L.v1[c];
	}
	return n;
}

static int cg_write(const char *dir, const char *file, const char *val)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, val, strlen(val));
	int e = errno;
	close(fd);
	return n < 0 ? -e : 0;
}

static int cg_writef(const char *dir, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int cg_writef(const char *dir, const char *file, const char *fmt, ...)
{
	char val[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return cg_write(dir, file, val);
}

/* Let the mezzo parent and its children use the controllers taken from v2
 * (all of them on a pure v2 host; in hybrid mode those no v1 hierarchy has).
 * One at a time: a controller the kernel refuses to enable (cpu while
 * real-time tasks sit in a child group, say) is dropped, not fatal; a limit
 * that needs it fails later with a precise message. */
static void enable_v2(void)
{
	pthread_mutex_lock(&enable_lock);
	if (!enabled_v2) {
		cleanup_free char *parent = xasprintf("%s/" CG_PARENT, L.v2);
		for (int c = 0; c < C_N; c++) {
			if (!L.on_v2[c])
				continue;
			char want[32];
			snprintf(want, sizeof(want), "+%s", v2_names[c]);
			int r = cg_write(L.v2, "cgroup.subtree_control", want);
			if (r == 0)
				r = cg_write(parent, "cgroup.subtree_control", want);
			if (r < 0) {
				mz_warn("cgroup controller %s unusable in %s: %s", v2_names[c], L.v2,
					strerror(-r));
				L.on_v2[c] = false;
			}
		}
		enabled_v2 = true;
	}
	pthread_mutex_unlock(&enable_lock);
}

/* mkdir R/mezzo/NAME, replacing a stale empty group of a crashed run. */
static int make_group(const char *root, const char *rel, bool fresh, mz_error_t *err)
{
	cleanup_free char *parent = xasprintf("%s/" CG_PARENT, root);
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return mz_error_sys(err, errno, "cannot make cgroup %s", parent);
	cleanup_free char *dir = xasprintf("%s/%s", root, rel);
	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return mz_error_sys(err, errno, "cannot make cgroup %s", dir);
	if (fresh)
		return mz_error_sys(err, EEXIST, "cgroup %s exists", dir);
	if (rmdir(dir) < 0)
		return mz_error_sys(err, errno == EBUSY ? EEXIST : errno,
				    "cgroup %s exists and is in use (is the domain running?)", dir);
	if (mkdir(dir, 0755) < 0)
		return mz_error_sys(err, errno, "cannot make cgroup %s", dir);
	return 0;
}

/* The directory of the domain's group for controller c (v1 or v2). */
static char *ctl_dir(int c, const char *rel)
{
	if (L.v1[c])
		return xasprintf("%s/%s", L.v1[c], rel);
	if (L.on_v2[c])
		return xasprintf("%s/%s", L.v2, rel);
	return NULL;
}

static int need(int c, const char *what, mz_error_t *err)
{
	if (L.v1[c] || L.on_v2[c])
		return 0;
	return mz_error(err, ENOTSUP, "a %s limit needs the %s cgroup controller, which this host "
				      "does not offer", what, v1_names[c]);
}

/* Check that every limit asked for has its controller. */
static int check_limits(const struct mz_limits *lim, mz_error_t *err)
{
	int r = 0;
	if (lim->memory_bytes > 0 && (r = need(C_MEMORY, "memory", err)) < 0)
		return r;
	if (lim->pids > 0 && (r = need(C_PIDS, "pids", err)) < 0)
		return r;
	if ((lim->cpu_weight > 0 || lim->cpu_quota_us > 0) && (r = need(C_CPU, "cpu", err)) < 0)
		return r;
	if (lim->io_weight > 0 && (r = need(C_IO, "io", err)) < 0)
		return r;
	return 0;
}

/* Write the limits whose controller is on v1 (v1 true) or on v2. */
static int set_limits(const char *rel, const struct mz_limits *lim, bool v1, mz_error_t *err)
{
	int r;
#define PHASE(c) ((L.v1[c] != NULL) == v1)
	if (lim->memory_bytes > 0 && PHASE(C_MEMORY)) {
		cleanup_free char *d = ctl_dir(C_MEMORY, rel);
		long long v = (long long)lim->memory_bytes;
		if (L.v1[C_MEMORY]) {
			r = cg_writef(d, "memory.limit_in_bytes", "%lld", v);
			/* memory + swap: only where swap accounting is on */
			if (r == 0 && (r = cg_writef(d, "memory.memsw.limit_in_bytes", "%lld", v)) == -ENOENT)
				r = 0;
		} else {
			r = cg_writef(d, "memory.max", "%lld", v);
			/* v2 has no memory+swap limit: no swap at all keeps it hard */
			if (r == 0 && (r = cg_write(d, "memory.swap.max", "0")) == -ENOENT)
				r = 0;
		}
		if (r < 0)
			return mz_error_sys(err, -r, "cannot set the memory limit of %s", d);
	}
	if (lim->pids > 0 && PHASE(C_PIDS)) {
		cleanup_free char *d = ctl_dir(C_PIDS, rel);
		if ((r = cg_writef(d, "pids.max", "%lld", (long long)lim->pids)) < 0)
			return mz_error_sys(err, -r, "cannot set pids.max of %s", d);
	}
	if ((lim->cpu_weight > 0 || lim->cpu_quota_us > 0) && PHASE(C_CPU)) {
		cleanup_free char *d = ctl_dir(C_CPU, rel);
		long long w = lim->cpu_weight > 10000 ? 10000 : lim->cpu_weight;
		long long q = lim->cpu_quota_us;
		long long p = lim->cpu_period_us > 0 ? lim->cpu_period_us : 100000;
		if (w > 0) {
			r = L.v1[C_CPU] ? cg_writef(d, "cpu.shares", "%lld", w * 1024 / 100 < 2 ? 2 : w * 1024 / 100)
					: cg_writef(d, "cpu.weight", "%lld", w);
			if (r < 0)
				return mz_error_sys(err, -r, "cannot set the cpu weight of %s", d);
		}
		if (q > 0) {
			if (L.v1[C_CPU]) {
				r = cg_writef(d, "cpu.cfs_period_us", "%lld", p);
				if (r == 0)
					r = cg_writef(d, "cpu.cfs_quota_us", "%lld", q);
			} else {
				r = cg_writef(d, "cpu.max", "%lld %lld", q, p);
			}
			if (r < 0)
				return mz_error_sys(err, -r, "cannot set the cpu quota of %s", d);
		}
	}
	if (lim->io_weight > 0 && PHASE(C_IO)) {
		cleanup_free char *d = ctl_dir(C_IO, rel);
		long long w = lim->io_weight > 10000 ? 10000 : lim->io_weight;
		long long w1000 = w / 10 < 1 ? 1 : w / 10; /* v1 and bfq: 1..1000 */
		if (L.v1[C_IO]) {
			r = cg_writef(d, "blkio.weight", "%lld", w1000 < 10 ? 10 : w1000);
			if (r == -ENOENT)
				r = cg_writef(d, "blkio.bfq.weight", "%lld", w1000);
		} else {
			r = cg_writef(d, "io.weight", "default %lld", w);
			if (r == -ENOENT)
				r = cg_writef(d, "io.bfq.weight", "%lld", w1000);
		}
		/* Without a weight-based I/O scheduler there is nothing to set:
		 * not a reason to refuse to run the domain. */
		if (r == -ENOENT)
			mz_warn("io weight of %s ignored: no I/O scheduler here supports weights", d);
		else if (r < 0)
			return mz_error_sys(err, -r, "cannot set the io weight of %s", d);
	}
#undef PHASE
	return 0;
}

/* The distinct v1 hierarchies a domain's group lives in (lim NULL: every
 * one that might have it). */
static int v1_targets(const struct mz_limits *lim, const char *roots[C_N])
{
	/* cpuacct only for accounting where there is no v2 (whose cpu.stat
	 * counts cpu time with or without the cpu controller) */
	bool use[C_N] = {[C_MEMORY] = true, [C_PIDS] = true, [C_CPUACCT] = L.v2 == NULL,
			 [C_CPU] = !lim || lim->cpu_weight > 0 || lim->cpu_quota_us > 0,
			 [C_IO] = !lim || lim->io_weight > 0};
	return v1_roots(use, roots);
}

int mz_cg_create_v2(const char *name, const struct mz_limits *lim, bool fresh, char *rel,
		    size_t relsz, mz_error_t *err)
{
	int r = layout(err);
	if (r < 0)
		return r;
	if ((size_t)snprintf(rel, relsz, CG_PARENT "/%s", name) >= relsz)
		return mz_error(err, ENAMETOOLONG, "domain name too long: %s", name);
	if ((r = check_limits(lim, err)) < 0)
		return r;
	if (L.v2) {
		/* EEXIST: another domain's, which is not ours to remove */
		if ((r = make_group(L.v2, rel, fresh, err)) < 0)
			return r;
		enable_v2();
	}
	if ((r = set_limits(rel, lim, false, err)) < 0)
		mz_cg_remove(rel, NULL);
	return r;
}

int mz_cg_create_v1(const char *rel, const struct mz_limits *lim, mz_error_t *err)
{
	const char *roots[C_N];
	int n = v1_targets(lim, roots), r = 0;
	for (int i = 0; i < n && r == 0; i++)
		r = make_group(roots[i], rel, false, err);
	if (r == 0)
		r = set_limits(rel, lim, true, err);
	return r;
}

int mz_cg_join_open(const char *rel, const struct mz_limits *lim, struct mz_cg_join *j,
		    mz_error_t *err)
{
	j->v2fd = -1;
	j->ntasks = 0;
	int r = layout(err);
	if (r < 0)
		return r;
	if (L.v2) {
		cleanup_free char *d = xasprintf("%s/%s", L.v2, rel);
		j->v2fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (j->v2fd < 0)
			return mz_error_sys(err, errno, "cannot open cgroup %s", d);
	}
	const char *roots[C_N];
	int n = v1_targets(lim, roots);
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s/tasks", roots[i], rel);
		/* a running domain's: only the groups it has (cpu, blkio when limited) */
		if (lim == NULL && access(p, F_OK) < 0) {
			free(p);
			continue;
		}
		j->tasks[j->ntasks++] = p;
	}
	return 0;
}

void mz_cg_join_close(struct mz_cg_join *j)
{
	if (j->v2fd >= 0)
		close(j->v2fd);
	j->v2fd = -1;
	for (int i = 0; i < j->ntasks; i++)
		free(j->tasks[i]);
	j->ntasks = 0;
}

/* Write "0" (the caller itself) to dir/name. */
static long write_self(int dir, const char *name)
{
	long fd = mz_sys(SYS_openat, dir, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fd;
	long r = mz_sys(SYS_write, fd, "0", 1);
	mz_sys(SYS_close, fd);
	return r < 0 ? r : 0;
}

int mz_cg_join_self(const struct mz_cg_join *j, bool v2_done)
{
	long r = 0;
	/* "tasks", not cgroup.procs: a single thread moving itself takes no
	 * global lock; the opener's credentials (still host root) count */
	for (int i = 0; i < j->ntasks && r == 0; i++)
		r = write_self(AT_FDCWD, j->tasks[i]);
	if (r == 0 && !v2_done && j->v2fd >= 0)
		r = write_self(j->v2fd, "cgroup.procs");
	return (int)r;
}

bool mz_cg_clone_into(const struct mz_cg_join *j, struct clone_args *ca)
{
	if (j->v2fd < 0)
		return false;
	ca->flags |= CLONE_INTO_CGROUP;
	ca->cgroup = (uint64_t)j->v2fd;
	return true;
}

bool mz_cg_clone_fallback(struct clone_args *ca, long r)
{
	if (r >= 0 || !(ca->flags & CLONE_INTO_CGROUP) || (r != -EINVAL && r != -E2BIG))
		return false;
	ca->flags &= ~(uint64_t)CLONE_INTO_CGROUP;
	ca->cgroup = 0;
	return true;
}

/* Remove the groups of one name in the hierarchy roots[0..n) (v2 first):
 * true if none is left.  A v2 group in use (EBUSY: a run's pid 1 is in it
 * from its birth, its record not yet written) keeps the v1 ones too, which
 * that pid 1 joins later. */
static bool sweep_name(const char *const *roots, int n, bool v2_first, const char *name)
{
	bool gone = true;
	for (int i = 0; i < n; i++) {
		cleanup_free char *g = xasprintf("%s/" CG_PARENT "/%s", roots[i], name);
		if (rmdir(g) < 0 && errno != ENOENT) {
			gone = false;
			if (i == 0 && v2_first)
				return false;
		}
	}
	return gone;
}

int mz_cg_sweep(const char *suffix, bool (*keep)(void *arg, const char *name), void *arg)
{
	mz_error_t err cleanup_error = NULL;
	if (layout(&err) < 0)
		return 0;
	/* v2 first, then the distinct v1 roots: a name found in any of them */
	const char *roots[C_N + 1];
	int n = 0;
	if (L.v2)
		roots[n++] = L.v2;
	n += v1_roots(NULL, roots + n);
	int swept = 0;
	size_t sl = strlen(suffix);
	cleanup_free char *v2parent = L.v2 ? xasprintf("%s/" CG_PARENT, L.v2) : NULL;
	cleanup_close int v2fd = v2parent ? open(v2parent, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	for (int i = 0; i < n; i++) {
		cleanup_free char *parent = xasprintf("%s/" CG_PARENT, roots[i]);
		DIR *d = opendir(parent);
		if (d == NULL)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name);
			if (e->d_type != DT_DIR || l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)
				continue;
			/* a name with a v2 group was seen (and kept) in the v2 pass */
			if (i > 0 && v2fd >= 0 && faccessat(v2fd, e->d_name, F_OK, 0) == 0)
				continue;
			if (!keep(arg, e->d_name) && sweep_name(roots, n, L.v2 != NULL, e->d_name))
				swept++;
		}
		closedir(d);
	}
	return swept;
}

/* The file listing the domain's processes: v2 if any, else a v1 one. */
static char *procs_path(const char *rel)
{
	if (L.v2)
		return xasprintf("%s/%s/cgroup.procs", L.v2, rel);
	for (int c = 0; c < C_N; c++)
		if (L.v1[c])
			return xasprintf("%s/%s/cgroup.procs", L.v1[c], rel);
	return NULL;
}

/* Signal every process listed; returns how many were listed, or -errno. */
static int signal_listed(const char *path, int sig)
{
	cleanup_file FILE *f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	int n = 0;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1) {
		n++;
		if (kill((pid_t)pid, sig) < 0 && errno != ESRCH)
			mz_debug("kill %ld: %s", pid, strerror(errno));
	}
	return n;
}

int mz_cg_signal(const char *rel, int sig, mz_error_t *err)
{
	int r = layout(err);
	if (r < 0)
		return r;
	if (sig == SIGKILL && L.v2) {
		cleanup_free char *d = xasprintf("%s/%s", L.v2, rel);
		r = cg_write(d, "cgroup.kill", "1");
		if (r == 0 || r == -ENOENT) {
			/* ENOENT: either no group (nothing to kill) or a kernel
			 * before 5.14 without cgroup.kill: fall through to listing */
			struct stat sb;
			if (r == 0 || stat(d, &sb) < 0)
				return 0;
		} else {
			return mz_error_sys(err, -r, "cannot write %s/cgroup.kill", d);
		}
	}
	cleanup_free char *path = procs_path(rel);
	if (path == NULL)
		return 0;
	/* A fork bomb may add processes while we kill: for SIGKILL go on until
	 * the group is empty (its pids limit bounds the race). */
	int64_t until = mono_ns() + 5LL * 1000000000;
	for (;;) {
		int n = signal_listed(path, sig);
		if (n == -ENOENT || n == 0 || sig != SIGKILL)
			return 0;
		if (n < 0)
			return mz_error_sys(err, -n, "cannot read %s", path);
		if (mono_ns() > until)
			return mz_error(err, EBUSY, "processes of %s survive SIGKILL", path);
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
}

int mz_cg_remove(const char *rel, mz_error_t *err)
{
	int r = layout(err);
	if (r < 0)
		return r;
	const char *roots[MZ_CG_MAX];
	int n = 0;
	if (L.v2)
		roots[n++] = L.v2;
	n += v1_roots(NULL, roots + n);
	int ret = 0;
	for (int i = 0; i < n; i++) {
		cleanup_free char *d = xasprintf("%s/%s", roots[i], rel);
		/* The last task leaves its group a little after it is reaped. */
		long wait_us = 50, waited = 0;
		while (rmdir(d) < 0) {
			if (errno == ENOENT)
				break;
			if (errno != EBUSY || waited > 2000000) {
				if (ret == 0)
					ret = mz_error_sys(err, errno, "cannot remove cgroup %s", d);
				break;
			}
			struct timespec ts = {0, wait_us * 1000};
			nanosleep(&ts, NULL);
			waited += wait_us;
			if (wait_us < 20000)
				wait_us *= 2;
		}
	}
	return ret;
}

static int64_t read_int(const char *dir, const char *file)
{
	char path[4096], buf[64];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtoll(buf, NULL, 10);
}

int mz_cg_stats(const char *rel, struct mz_domain_stats *st, mz_error_t *err)
{
	st->memory_bytes = st->pids = st->cpu_usage_ns = -1;
	int r = layout(err);
	if (r < 0)
		return r;
	cleanup_free char *md = ctl_dir(C_MEMORY, rel);
	if (md)
		st->memory_bytes = read_int(md, L.v1[C_MEMORY] ? "memory.usage_in_bytes" : "memory.current");
	cleanup_free char *pd = ctl_dir(C_PIDS, rel);
	if (pd)
		st->pids = read_int(pd, "pids.current");
	if (L.v2) {
		char path[4096], buf[1024];
		snprintf(path, sizeof(path), "%s/%s/cpu.stat", L.v2, rel);
		if (read_small(path, buf, sizeof(buf)) > 0) {
			char *p = strstr(buf, "usage_usec ");
			if (p)
				st->cpu_usage_ns = strtoll(p + 11, NULL, 10) * 1000;
		}
	} else if (L.v1[C_CPUACCT]) {
		cleanup_free char *cd = xasprintf("%s/%s", L.v1[C_CPUACCT], rel);
		st->cpu_usage_ns = read_int(cd, "cpuacct.usage");
	}
	if (st->memory_bytes < 0 && st->pids < 0 && st->cpu_usage_ns < 0)
		return mz_error(err, ENOENT, "no accounting found for cgroup %s", rel);
	return 0;
}
