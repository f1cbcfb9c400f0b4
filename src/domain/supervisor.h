/*
 * supervisor.h — the host side of one running domain.
 *
 * A supervisor is one process per running domain (seed 003: a failure of one
 * domain's host side affects no other domain).  It serves the domain's tree
 * (a FUSE server thread with passthrough), makes the domain (runtime.h),
 * holds its console, waits for its init, and on the way out tears everything
 * down: cgroups, the mount, its claim in the catalog.
 */
#ifndef MZ_DOMAIN_SUPERVISOR_H
#define MZ_DOMAIN_SUPERVISOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "../lib/error.h"

struct mz_store;
struct mz_cpulat;
struct mz_domain_rec;

/* A domain that mz_supervise makes as it starts it (`run`, `run -d`): make()
 * opens the catalog and writes the domain's record, claimed by this process,
 * on a thread of its own on the other CPU, while the domain's namespaces and
 * pid 1 are made beside it from proto, which must say what make() writes
 * (name, cmd, services, init mode, limits; no LAN).  *store gets the open
 * catalog: the caller's, to close after mz_supervise returns (also on an
 * error, if set). */
struct mz_sup_make {
	int (*make)(void *arg, struct mz_store **s, mz_error_t *err);
	void *arg;
	const struct mz_domain_rec *proto;
	struct mz_store **store;
	bool clone_early;        /* false: make() first, then the ordinary order
				    (a domain on a LAN: its spawn needs the
				    LAN's files and hooks) */
};

struct mz_sup_opts {
	const char *store_root;
	struct mz_store *store;  /* an open handle to use (this process's, not
				    one opened before a fork), or NULL */
	const char *name;        /* the domain (a catalog record) */
	bool console;            /* init's stdio is a pty kept by the supervisor,
				    logged to run/domains/NAME/console.log;
				    else stdio[] below */
	int stdio[3];
	bool tty;                /* stdio[0] is a terminal (foreground run) */
	bool log;                /* stderr goes to run/domains/NAME/supervisor.log
				    once the domain is claimed */
	int ready_fd;            /* gets "ok\n" or "error: MSG\n" once init runs;
				    closed by mz_supervise then, or before it
				    returns whatever happened (-1: none) */
	int stop_timeout_s;      /* SIGTERM to SIGKILL, on a stop request */
	bool remove;             /* once stopped, remove the domain (run --rm):
				    in the commit that says it stopped */
	bool *removed;           /* if not NULL: set true once it is removed */
	struct mz_cpulat *cpulat; /* the caller's CPU latency request, held since
				     before the domain was made (run), or NULL */
	const struct mz_sup_make *make; /* the domain is made here (store NULL),
					   or NULL: it exists */
};

/* Run the domain until its init exits; *status gets init's wait status. */
int mz_supervise(const struct mz_sup_opts *o, int *status, mz_error_t *err);

struct mz_domain_proc;
/* The running domain NAME whose init is init_pid (0: unknown), as the
 * runtime wants it (pidfd opened when init_pid is given). */
int mz_domain_proc_of(const char *store_root, const char *name, pid_t init_pid,
		      struct mz_domain_proc *out);
/* The host-wide cgroup name of a store's domain. */
void mz_domain_cgroup_name(const char *store_root, const char *name, char out[160]);
/* A domain whose supervisor died: kill what is left of it and remove its
 * cgroups (and the dead mount an older mezzo left).  Harmless when nothing
 * is left. */
int mz_domain_reap_orphan(const char *store_root, const char *name, mz_error_t *err);

/* Remove the empty cgroups (v2 and v1) of this store's domains that the
 * catalog does not know: a `run` killed after making its domain's pid 1 and
 * before writing its record leaves them (`mezzo prune` calls this).
 * Returns how many domains' groups went. */
int mz_domain_sweep_cgroups(struct mz_store *s);

/* Ask NAME's supervisor, over its control socket, to stop the domain
 * (SIGTERM, SIGKILL after timeout_s) and wait until it is down and recorded
 * so.  -ENOENT, with *err untouched, if no supervisor answers (none runs,
 * or it died meanwhile): then the catalog knows more. */
int mz_domain_ask_stop(const char *store_root, const char *name, int timeout_s,
		       mz_error_t *err);

/* Where the pieces of a running domain live. */
char *mz_domain_run_dir(const char *store_root, const char *name);
/* Remove a domain from the catalog: its record, its tree and its place on
 * its LANs, in one transaction.  ENOENT if there is none; EBUSY if it runs,
 * unless self (0: nobody) is its supervisor, removing it as it stops. */
int mz_domain_forget(struct mz_store *s, const char *name, pid_t self, mz_error_t *err);
/* Remove the files of a domain's run directory (logs, console socket, LAN
 * files) and the directory; harmless if there are none. */
void mz_domain_run_dir_remove(const char *store_root, const char *name);
/* The static init binary: $MEZZO_INIT, else mezzo-init beside this binary. */
char *mz_domain_init_path(void);

#endif
