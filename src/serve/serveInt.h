/* serveInt.h — between the server's loop (serve.c) and its workers (worker.c). */
#ifndef MZ_SERVE_INT_H
#define MZ_SERVE_INT_H

#include "serve.h"

#include <stdint.h>
#include <sys/types.h>

/* What a spare or worker tells the server, over their socketpair. */
enum { CHAN_TAKEN = 1, CHAN_SQL = 2 };
#define CHAN_MAX_SQL 128
struct chan_msg {
	int32_t kind;
	int32_t pid;
	/* CHAN_TAKEN: the connection comes with it (SCM_RIGHTS).  CHAN_SQL,
	 * at a worker's end: the statements its stores prepared (addresses in
	 * the program's image, as mz_store_seen_sql gives them), for the next
	 * spares to prepare ahead. */
	uint64_t sql[CHAN_MAX_SQL];
};

/* In a spare that took connection c (the server's other fds closed; chan
 * its end of the socketpair to the server, kept to report at the end).
 * Returns 1 with job filled and the caller's state applied; 0 when the
 * request was declined or unreadable (the worker should just exit). */
int mz_serve_worker_take(int c, int chan, struct mz_serve_job *job);

/* In the server, before its first fork: read its own credentials and
 * namespaces, which every worker compares its client's with. */
void mz_serve_worker_prepare(void);

/* In a spare, before it waits for a client: make the worker's second thread
 * (it checks the client, then forwards its signals). */
void mz_serve_worker_ready(void);

#endif
