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
	int64_t nofile_soft;    /* without nofile: pid 1's soft RLIMIT_NOFILE (its
				   hard one the caller's), for a caller that
				   raised its own; 0: the caller's as it is */
};

/* A service mezzo-init runs in the domain, restarted when it exits, stopped
 * in the reverse order of the list. */
struct mz_service {
	const char *name;
	char *const *argv;
};

struct mz_domain_spec {
	const char *name;       /* hostname and cgroup name; [A-Za-z0-9_.-] */
	const char *cgroup_name; /* cgroup name if not name (unique per host) */
	const char *rootfs;     /* host path of the domain's root (a mounted tree) */
	/* id map: domain ids 0..count-1 are host ids base..base+count-1 */
	uid_t uid_base, uid_count;
	gid_t gid_base, gid_count;
	/* The domain's main process, run by mezzo-init (pid 1); init exits with
	 * its status.  NULL with services: the domain runs until stopped. */
	char *const *argv;
	const struct mz_service *services;
	size_t nservices;
	bool image_init;        /* argv is pid 1 itself (the image's own init):
				   no mezzo-init, no services */
	char *const *envp;      /* NULL: a minimal default (PATH, HOME, TERM) */
	const char *cwd;        /* inside the domain; NULL: "/" */
	uid_t uid;              /* ids inside the domain for argv */
	gid_t gid;
	int stdio[3];           /* fds given to argv as 0, 1, 2 (host side fds) */
	bool tty;               /* stdio[0] is a terminal: make it controlling */
	const char *init_path;  /* host path of the static mezzo-init binary */
	struct mz_limits limits;
	bool allow_perf_bpf;    /* seccomp: allow perf_event_open and bpf */
	int stop_grace_ms;      /* when argv exits, init's SIGTERM-to-SIGKILL grace for
				   what is left; 0: 2000 */
	/* Called with an fd of the domain's network namespace once its loopback
	 * is up, before the main command (or, without one, init) runs, while
	 * pid 1 builds the file system: the caller plugs the domain into its
	 * LANs.  An error aborts the spawn.  NULL: loopback only. */
	int (*net_hook)(void *arg, int netns_fd, mz_error_t *err);
	void *net_hook_arg;
	/* Called once the spawn's own preparations are made, just before the
	 * clone that copies the caller's mounts: the caller finishes mounting
	 * rootfs (say on another thread) while they are made.  An error aborts
	 * the spawn.  NULL: rootfs is mounted already. */
	int (*root_hook)(void *arg, mz_error_t *err);
	void *root_hook_arg;
	/* Host files bound read-only over the tree's /etc/hosts and
	 * /etc/resolv.conf where those are regular files; NULL: none. */
	const char *hosts_file, *resolv_file;
};

/* A running domain as its supervisor sees it. */
struct mz_domain_proc {
	pid_t pid;              /* host pid of the domain's init */
	int pidfd;              /* pidfd of init (poll for exit; setns) */
	char cgroup[512];       /* cgroup path relative to each hierarchy root */
};

/* Make the domain and start its init.  Returns once init and argv (init's
 * child, pid 2 in the domain, adopted by init with "--main-pid") have both
 * been exec'd — or with a precise error, e.g. "domain: cannot run CMD: No
 * such file or directory", and then nothing is left: no process, no cgroup.
 * The caller reaps init (waitid on pidfd; exit_signal is SIGCHLD) and closes
 * pidfd.  Init exits with argv's status: its exit code, or 128 + signal.
 *
 * Thread-safe; effects on the calling thread, all undone before returning:
 * every signal blocked around the clone, and a moment in the domain's network
 * namespace (setns, to make the socket that brings up its loopback).  The
 * seccomp program is built once per process and cached in /run/mezzo.
 *
 * Preconditions: rootfs is a directory tree whose top is owned by the
 * domain's root (host uid_base; gid_base) or at least searchable by it, with
 * proc, sys, dev and tmp either present as real directories (symlinks are
 * refused) or creatable by the domain's root; uid_base/gid_base != 0;
 * init_path is a static mezzo-init owned by host root and not writable by
 * the domain's ids (root in the domain can read it through /proc/1/exe).
 * The domain gets a fresh /proc, /sys read-only, a tmpfs /dev (null, zero,
 * full, random, urandom, tty, console if tty; pts, shm, ptmx, fd links), a
 * tmpfs /tmp, loopback up, hostname = name.  Cgroups: "mezzo/NAME" under
 * each hierarchy used (out->cgroup); a stale empty group of that name is
 * replaced, a busy one is an error (EEXIST). */
int mz_domain_spawn(const struct mz_domain_spec *spec, struct mz_domain_proc *out,
		    mz_error_t *err);

/* The same in two steps, so that the caller can do other work while the
 * kernel makes the namespaces, and finish what pid 1 needs only later.
 * begin makes the v2 cgroup (with spec's limits) and pid 1, which then waits;
 * finish does the rest, as mz_domain_spawn, and frees the handle either way;
 * cancel kills pid 1 and removes the group.  spec must live until finish
 * returns: pid 1 reads it after begin.  With MZ_SPAWN_EARLY, begin is made
 * before the caller knows the id range (uid_base, gid_base: set them before
 * finish) or that the name is its own: a cgroup of that name is then an
 * error (EEXIST), never replaced.  Before finish, spec may change only in
 * those two bases and the hooks; begin calls root_hook, if any, just before
 * its clone. */
struct mz_spawn;
#define MZ_SPAWN_EARLY 1u
int mz_domain_spawn_begin(const struct mz_domain_spec *spec, unsigned flags,
			  struct mz_spawn **out, mz_error_t *err);
int mz_domain_spawn_finish(struct mz_spawn *sp, struct mz_domain_proc *out, mz_error_t *err);
void mz_domain_spawn_cancel(struct mz_spawn *sp);

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
 * and run x in a session of its own; *out gets its host pid (the caller's
 * child: the caller waits for it).  Returns once x->argv has been exec'd, or
 * with the error (e.g. command not found), the child reaped.  d->pidfd may be
 * init's pidfd from spawn or from pidfd_open.  x->domain may be NULL (no
 * nofile limit, no perf).  Thread-safe; the calling thread's pid namespace
 * for children is switched to the domain's around the clone. */
int mz_domain_exec(const struct mz_domain_proc *d, const struct mz_exec_spec *x, pid_t *out,
		   mz_error_t *err);

/* SIGKILL: every process of the domain (cgroup.kill, or every pid listed in
 * the group), then init.  Any other signal goes to init only, which forwards
 * it to the main command and, once that exits, stops the rest in order
 * (SIGTERM, grace, SIGKILL): "mezzo stop" is mz_domain_kill(SIGTERM), then
 * SIGKILL after a timeout. */
int mz_domain_kill(const struct mz_domain_proc *d, int sig, mz_error_t *err);

/* Remove the domain's cgroup(s) once init has exited (stragglers are
 * SIGKILLed first); retries briefly while the last tasks leave. */
int mz_domain_cleanup(const struct mz_domain_proc *d, mz_error_t *err);

struct mz_domain_stats {  /* -1: not available on this host */
	int64_t memory_bytes;   /* charged to the domain's memory cgroup */
	int64_t pids;           /* tasks in the domain */
	int64_t cpu_usage_ns;
};
int mz_domain_stats(const struct mz_domain_proc *d, struct mz_domain_stats *st,
		    mz_error_t *err);

#endif
