/*
 * runtime.h — the isolation of a domain on Linux (seed 003, sections 3.2.3 and
 * 3.3.1): private kernel instances (pid, mount, uts, ipc, cgroup, net, user
 * namespaces), an unprivileged host id range for the domain's ids, a root
 * file system that is the domain's tree, and a second wall around it
 * (seccomp, no_new_privs, capability bounding set, rlimits, cgroup limits).
 *
 * This module knows nothing of the store or of FUSE: it is given a mounted
 * root directory and makes a domain of it.  Lifecycle (create/start/stop,
 * supervisors, the catalog) lives in supervisor.c and the CLI.
 */
#ifndef MZ_DOMAIN_RUNTIME_H
#define MZ_DOMAIN_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/error.h"

/* Resource limits; 0 (or negative) means "no limit". */
struct mz_limits {
	int64_t memory_bytes;   /* memory + swap hard limit */
	int64_t pids;           /* max tasks */
	int64_t cpu_weight;     /* relative share, 1..10000 (v2 semantics; 100 default) */
	int64_t cpu_quota_us;   /* with cpu_period_us: hard CPU cap */
	int64_t cpu_period_us;
	int64_t io_weight;      /* 1..10000 (v2), mapped to blkio.weight on v1 */
	int64_t nofile;         /* RLIMIT_NOFILE inside the domain */
};

struct mz_domain_spec {
	const char *name;       /* hostname and cgroup name; [A-Za-z0-9_.-] */
	const char *rootfs;     /* host path of the domain's root (a mounted tree) */
	/* id map: domain ids 0..count-1 are host ids base..base+count-1 */
	uid_t uid_base, uid_count;
	gid_t gid_base, gid_count;
	/* The domain's first process, run by mezzo-init (pid 1) as its service;
	 * init exits with this process's status. */
	char *const *argv;
	char *const *envp;      /* NULL: a minimal default (PATH, HOME, TERM) */
	const char *cwd;        /* inside the domain; NULL: "/" */
	uid_t uid;              /* ids inside the domain for argv */
	gid_t gid;
	int stdio[3];           /* fds given to argv as 0, 1, 2 (host side fds) */
	bool tty;               /* stdio[0] is a terminal: make it controlling */
	const char *init_path;  /* host path of the static mezzo-init binary */
	struct mz_limits limits;
	bool allow_perf_bpf;    /* seccomp: allow perf_event_open and bpf */
};

/* A running domain as its supervisor sees it. */
struct mz_domain_proc {
	pid_t pid;              /* host pid of the domain's init */
	int pidfd;              /* pidfd of init (poll for exit; setns) */
	char cgroup[512];       /* cgroup path relative to each hierarchy root */
};

/* Make the domain and start its init.  Returns once init runs (or failed to
 * start, with a precise error).  The caller reaps init (waitid on pidfd). */
int mz_domain_spawn(const struct mz_domain_spec *spec, struct mz_domain_proc *out,
		    mz_error_t *err);

/* A process to run inside a running domain. */
struct mz_exec_spec {
	char *const *argv;
	char *const *envp;      /* NULL: the default environment */
	const char *cwd;        /* NULL: "/" */
	uid_t uid;
	gid_t gid;
	int stdio[3];
	bool tty;
	const struct mz_domain_spec *domain; /* the domain's spec (limits, flags) */
};

/* Join every namespace and the cgroup of d, apply the same second wall,
 * and run x; *out gets its host pid (the caller waits for it). */
int mz_domain_exec(const struct mz_domain_proc *d, const struct mz_exec_spec *x, pid_t *out,
		   mz_error_t *err);

/* Signal every process of the domain (through its cgroup), then init. */
int mz_domain_kill(const struct mz_domain_proc *d, int sig, mz_error_t *err);

/* Remove the domain's cgroup(s) once its processes are gone. */
int mz_domain_cleanup(const struct mz_domain_proc *d, mz_error_t *err);

struct mz_domain_stats {
	int64_t memory_bytes;   /* charged to the domain's memory cgroup */
	int64_t pids;           /* tasks in the domain */
	int64_t cpu_usage_ns;
};
int mz_domain_stats(const struct mz_domain_proc *d, struct mz_domain_stats *st,
		    mz_error_t *err);

#endif
