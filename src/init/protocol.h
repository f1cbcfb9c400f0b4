/*
 * protocol.h — what mz_domain_spawn (src/domain/spawn.c) and mezzo-init
 * (src/init/init.c) say to each other.  Plain C, no mezzo headers: init is a
 * standalone static binary.
 *
 * Configuration travels in init's argv (nothing secret is in it: argv of pid 1
 * is readable in the domain) and the main command's environment is init's own
 * environment, passed on unchanged:
 *
 *   mezzo-init [--ready-fd N] [--uid U] [--gid G] [--groups G1,G2,...]
 *              [--cwd DIR] [--tty] [--grace MS] [--main-pid PID] -- CMD ARGS...
 *
 * With --main-pid, CMD is already running as init's child PID (the spawner
 * starts it beside init's own exec, which saves one exec's time on every
 * domain start) and init only adopts it: the id, directory and terminal
 * options then do not apply.  Without, init starts CMD itself.
 *
 * mz_domain_spawn uses --main-pid (and --grace); the other form is for running
 * init by hand and for services to come.
 *
 * --ready-fd N is the domain end of a SOCK_SEQPACKET pair (a pipe works too)
 * whose other end the spawner reads.  Whoever fails on the way to running CMD
 * (the spawner's child while it builds the domain, init itself, or init's
 * child before execve of CMD) writes one struct mz_init_msg and exits; when
 * CMD has been exec'd every copy of the fd is closed (close-on-exec) and the
 * spawner reads end-of-file: the domain runs.
 */
#ifndef MZ_INIT_PROTOCOL_H
#define MZ_INIT_PROTOCOL_H

#include <errno.h>
#include <stdint.h>

struct mz_init_msg {
	int32_t err;      /* positive errno */
	int32_t status;   /* CMD's exec failed: the status a shell gives it
			     (MZ_INIT_EXIT_*); 0: something else failed */
	char msg[248];    /* NUL-terminated: what failed */
};

/* Exit statuses of init that mean "CMD never ran" (as a shell reports them). */
#define MZ_INIT_EXIT_NOTFOUND 127 /* CMD not found, or the domain setup failed */
#define MZ_INIT_EXIT_NOEXEC 126   /* CMD found but not executable */
/* The status of a CMD whose exec failed with errno e. */
#define MZ_INIT_EXEC_STATUS(e) ((e) == ENOENT ? MZ_INIT_EXIT_NOTFOUND : MZ_INIT_EXIT_NOEXEC)

/* Default time between SIGTERM and SIGKILL for what is left when CMD exits. */
#define MZ_INIT_GRACE_MS 2000

#endif
