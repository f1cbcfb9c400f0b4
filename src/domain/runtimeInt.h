/*
 * runtimeInt.h — internals shared by the files that implement runtime.h:
 * spawn.c (mz_domain_spawn, the domain's first process), exec.c
 * (mz_domain_exec), cgroup.c, mounts.c, secure.c, idmap.c.
 *
 * Functions marked "child side" run in a process made by a raw clone3 from a
 * possibly multi-threaded caller (a supervisor serves the domain's file system
 * from a thread), sharing its memory: they must be async-signal-safe — no
 * malloc, no stdio, no locks — make their system calls through sys.h (never
 * touching errno) and report failure as -errno plus a static string.
 */
#ifndef MZ_DOMAIN_RUNTIME_INT_H
#define MZ_DOMAIN_RUNTIME_INT_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../init/protocol.h"
#include "runtime.h"

/* ---- cgroup.c: one group per domain, v1, v2 or hybrid, found at run time */

/* The most hierarchies a domain's group lives in (v2 + memory, pids, cpu,
 * cpuacct, blkio). */
#define MZ_CG_MAX 6

/* What a new process needs to join a domain's groups. */
struct mz_cg_join {
	int v2fd;              /* the v2 group (O_DIRECTORY): clone3 CLONE_INTO_CGROUP; -1 */
	char *tasks[MZ_CG_MAX]; /* v1 "tasks" files to write "0" to */
	int ntasks;
};

/* Make the group "mezzo/NAME" in the v2 hierarchy (if any) with the limits
 * whose controllers are there, after checking that every limit asked for
 * can be set; rel gets "mezzo/NAME".  A stale empty group of that name is
 * replaced, unless fresh (then EEXIST: the caller does not know yet that the
 * name is its own).  On failure nothing is left. */
int mz_cg_create_v2(const char *name, const struct mz_limits *lim, bool fresh, char *rel,
		    size_t relsz, mz_error_t *err);
/* Then the v1 groups and limits (hybrid and v1 hosts).  On failure the
 * caller removes everything with mz_cg_remove. */
int mz_cg_create_v1(const char *rel, const struct mz_limits *lim, mz_error_t *err);
/* Prepare joining the groups of rel: lim as given to create (the groups may
 * not be made yet), or NULL for a running domain's existing groups. */
int mz_cg_join_open(const char *rel, const struct mz_limits *lim, struct mz_cg_join *j,
		    mz_error_t *err);
void mz_cg_join_close(struct mz_cg_join *j);
/* Child side: move the calling (single-threaded) process into the v1 groups,
 * and into the v2 group unless clone3 already put it there. */
int mz_cg_join_self(const struct mz_cg_join *j, bool v2_done);
struct clone_args;
/* Parent side: have clone3 put the child straight into the v2 group
 * (CLONE_INTO_CGROUP); true if it was asked for (the child's v2_done). */
bool mz_cg_clone_into(const struct mz_cg_join *j, struct clone_args *ca);
/* clone3 returned r: if that is a kernel before 5.7 refusing
 * CLONE_INTO_CGROUP, ca no longer asks for it and the answer is true: clone
 * again, and the child joins by writing cgroup.procs (v2_done false). */
bool mz_cg_clone_fallback(struct clone_args *ca, long r);
/* SIGKILL: cgroup.kill where there is one, else kill every listed process until
 * the group is empty.  Other signals: every listed process once. */
int mz_cg_signal(const char *rel, int sig, mz_error_t *err);
/* rmdir the empty groups "mezzo/NAME", v2 and v1, of every NAME ending in
 * suffix that keep() does not want: what a run killed between its early
 * clone and its record left (supervisor.c, "A domain made as it starts").
 * A name whose v2 group is in use keeps its v1 groups.  Returns how many
 * names went. */
int mz_cg_sweep(const char *suffix, bool (*keep)(void *arg, const char *name), void *arg);
/* rmdir the groups (retrying briefly while the last tasks leave). */
int mz_cg_remove(const char *rel, mz_error_t *err);
int mz_cg_stats(const char *rel, struct mz_domain_stats *st, mz_error_t *err);

/* ---- secure.c: the second wall */

/* The seccomp program for a domain, built once per process and variant with
 * libseccomp (in the parent: libseccomp allocates) and kept. */
int mz_seccomp_prog(bool allow_perf_bpf, const struct sock_fprog **prog, mz_error_t *err);
/* The capabilities root in a domain keeps (bit mask of CAP_*). */
uint64_t mz_caps_keep(bool allow_perf_bpf);
/* Child side: drop every capability outside keep from the bounding set, clear
 * the ambient and inheritable sets, leave keep as permitted and effective. */
int mz_caps_apply(uint64_t keep, const char **what);
/* Child side: no_new_privs, then the seccomp program. */
int mz_seccomp_apply(const struct sock_fprog *prog, const char **what);

/* ---- idmap.c */

/* Parent side: write the uid and gid maps of the user namespace of pid. */
int mz_idmap_write(pid_t pid, const struct mz_domain_spec *s, mz_error_t *err);

/* ---- mounts.c (child side) */

struct mz_mount_args {
	const char *console;    /* host path of a terminal to bind on /dev/console, or NULL */
	bool devpts_gid5;       /* gid 5 (tty) is mapped */
	const char *hosts, *resolv; /* host files for /etc/hosts, /etc/resolv.conf */
};
/* Still as host uid 0 (the host paths of the files are in root-only
 * directories): bind a->hosts and a->resolv read-only over the tree's
 * etc/hosts and etc/resolv.conf, where those are regular files reached
 * without a symlink; otherwise leave them be. */
int mz_mounts_bind_files(int rootfd, const struct mz_mount_args *a, const char **what);
/* In the new mount namespace, still as host uid 0: everything private, rootfs
 * bound onto itself and opened (O_PATH) as *rootfd. */
int mz_mounts_bind_root(const char *rootfs, int *rootfd, const char **what);
/* As the domain's root: /proc, /sys (read-only), a minimal /dev with
 * /dev/pts and /dev/shm, /tmp — all on the tree of rootfd, before the pivot. */
int mz_mounts_populate(int rootfd, const struct mz_mount_args *a, const char **what);
/* The names in the tree's root that populate mounts on (NULL-terminated). */
extern const char *const mz_mounts_tops[];
/* pivot_root into rootfd, detach the old root, cwd "/". */
int mz_mounts_pivot(int rootfd, const char **what);

/* ---- child.c: making children, and what they do before exec */

/* clone3 without a libc wrapper: pid in the parent, 0 in the child, -errno. */
struct clone_args;
pid_t mz_clone3(struct clone_args *args);
/* clone3 a child that runs fn(arg) (and exits if fn returns).  Where it can
 * (x86_64, not under ASan), the child shares the caller's memory (CLONE_VM)
 * and runs on stack[0..stack_size); it must then not use the caller's
 * threads' state and the caller must keep what it reads alive until it has
 * exec'd or died.  Returns the pid or -errno. */
pid_t mz_clone_fn(struct clone_args *ca, void (*fn)(void *), void *arg, void *stack,
		  size_t stack_size);
bool mz_clone_shares_vm(void);

/* Write one struct mz_init_msg on fd: "WHAT[ ARG]" and err; _exec: the
 * failure is the command's exec (its status 127 or 126 goes with it). */
void mz_child_report(int fd, int err, const char *what, const char *arg);
void mz_child_report_exec(int fd, int err, const char *what, const char *arg);
/* The error a report read from a child says ("PREFIX: WHAT[ ARG]", its errno,
 * its status): returns -errno; *err is left alone if already set. */
int mz_child_error(struct mz_init_msg *m, const char *prefix, mz_error_t *err);
/* Close every fd but keep[] (entries < 0 ignored; at most 8 of them):
 * 0 or -errno. */
int mz_child_keep_only(const int keep[], int n);
/* Lay out the fds for exec: stdio[i] becomes i (-1: /dev/null, opened after
 * the pivot), *extra (if not NULL and >= 0) becomes 3 (not close-on-exec) and
 * *extra is set to 3; each *keep[i] >= 0 is moved out of the way and updated
 * (close-on-exec).  Every other fd is marked close-on-exec. */
int mz_child_fds(const int stdio[3], int *extra, int *const keep[], int nkeep,
		 const char **what);
/* Become a session leader with stdin as the controlling terminal. */
int mz_child_ctty(const char **what);
/* Switch to ids inside the user namespace, dropping supplementary groups. */
int mz_child_ids(uid_t uid, gid_t gid, const char **what);
/* Every signal to its default action, none blocked. */
void mz_child_signals_default(void);
/* execve argv[0], searched in envp's PATH like execvp; returns -errno. */
int mz_exec_search(char *const *argv, char *const *envp);
/* The PATH mz_exec_search searches for envp (its own, else root's default). */
const char *mz_exec_path(char *const *envp);

/* The default environment of a domain's process (static strings). */
char *const *mz_default_env(uid_t uid, bool tty);
/* The environment a spec's command gets: its own, else the default. */
char *const *mz_domain_env(const struct mz_domain_spec *s);

#endif
