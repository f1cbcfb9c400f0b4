/*
 * serve.h — `mezzo serve`: run mezzo commands in forks of one resident,
 * already started process (protocol.h says why, and what is exchanged).
 *
 * The server itself only accepts, forks and reaps: it opens no store and
 * reads nothing a client sends.  Each fork (a worker) checks its caller
 * (same uid, capabilities, no_new_privs, seccomp mode, namespaces and root
 * as the server, else it declines and the client runs the command itself),
 * takes on the caller's stdio, working directory, environment, umask,
 * rlimits and signal state, and then runs the command as main() would.
 */
#ifndef MZ_SERVE_H
#define MZ_SERVE_H

#include <stdbool.h>

#include "../lib/error.h"

struct mz_serve_opts {
	const char *socket; /* NULL: MZ_SERVE_SOCKET_DEFAULT */
	bool detach;        /* fork into the background once listening; print its pid */
	const char *root;   /* the store spares open ahead (NULL: the default) */
};

struct mz_serve_job {
	int argc;
	char **argv; /* the command, argv[0] included; lives as long as the worker */
};

/* Serve until SIGTERM, SIGINT or SIGHUP.  Returns 0 in the server when it
 * ends (and in the parent of a detached one), or <0 with err set; returns 1
 * in a worker that has taken a request: the caller's state is now this
 * process's, and the caller runs job and ends with exit(status) (or returns
 * from main), which reports the status to the client.  A worker that ends
 * any other way (a signal, _exit) is reported by the server. */
int mz_serve(const struct mz_serve_opts *o, struct mz_serve_job *job, mz_error_t *err);

/* True in a worker whose client still waits for the status. */
bool mz_serve_is_worker(void);

/* From now on the worker is no longer the client's command: the client's
 * signals and death no longer reach it (a domain's supervisor, which a
 * direct `start` would have forked into a session of its own). */
void mz_serve_outlive(void);

/* Tell the waiting client its command's status now; the worker goes on.
 * The first report wins; the one exit would make is then dropped.  Safe
 * from any thread of the worker. */
void mz_serve_report(int status);

#endif
