/* serveInt.h — between the server's loop (serve.c) and its workers (worker.c). */
#ifndef MZ_SERVE_INT_H
#define MZ_SERVE_INT_H

#include "serve.h"

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "protocol.h"

/* One message to a client (a status, a decline): never blocks, and a client
 * gone or not reading is nobody's problem but its own. */
static inline void mz_serve_tell(int c, int kind, int value)
{
	struct mz_serve_msg m = {.kind = (uint32_t)kind, .value = value};
	if (send(c, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
	}
}

/* recvmsg() into buf, the fds that come with it into fds[0..*nfds)
 * (close-on-exec), retried on EINTR: what recvmsg returns.  More fds than
 * maxfds, or a truncated control message: all of them closed, *nfds -1. */
ssize_t mz_serve_recv_fds(int sock, void *buf, size_t len, int flags, int *fds, int maxfds,
			  int *nfds);

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

/* In a spare, before it waits for a client: note its own signal
 * dispositions and limits (a worker changes only those its client's differ
 * in) and make the worker's second thread (it forwards the client's
 * signals). */
void mz_serve_worker_ready(void);

#endif
