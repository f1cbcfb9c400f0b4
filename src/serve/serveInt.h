/* serveInt.h — between the server's loop (serve.c) and its workers (worker.c). */
#ifndef MZ_SERVE_INT_H
#define MZ_SERVE_INT_H

#include "serve.h"

/* In a fresh fork of the server: take the request on connection c (the
 * server's other fds already closed).  Returns 1 with job filled and the
 * caller's state applied; 0 when the request was declined or unreadable
 * (the worker should just exit). */
int mz_serve_worker_take(int c, struct mz_serve_job *job);

/* In the server, before its first fork: read its own credentials and
 * namespaces, which every worker compares its client's with. */
void mz_serve_worker_prepare(void);

/* In a spare, before it waits for a client: make the worker's second thread
 * (it checks the client, then forwards its signals). */
void mz_serve_worker_ready(void);

#endif
