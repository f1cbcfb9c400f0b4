/*
 * controlInt.h — the supervisor's side of a domain's control socket
 * (control.c; the caller's side is mz_domain_ask_stop in supervisor.h).
 */
#ifndef MZ_DOMAIN_CONTROL_INT_H
#define MZ_DOMAIN_CONTROL_INT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "../lib/error.h"

/* Stops waiting at once; more are refused (closed) until one ends. */
#define SUP_CONTROL_MAX 8

struct sup_conn {
	int fd;
	bool stopping; /* asked to stop: told "stopped" at the end */
};

struct sup_control {
	int listen;       /* -1 until opened */
	const char *name; /* the domain's (the caller's string, kept) */
	struct sup_conn conn[SUP_CONTROL_MAX];
	size_t n;
};

void sup_control_init(struct sup_control *c);
/* Listen on the domain's control socket (see control.c). */
int sup_control_open(struct sup_control *c, const char *store_root, const char *name,
		     mz_error_t *err);
/* Fill pf (room for 1 + SUP_CONTROL_MAX) with what to poll; returns how many. */
int sup_control_poll_fds(const struct sup_control *c, struct pollfd *pf);
/* After poll: accept, read requests.  Returns the shortest stop timeout
 * (seconds) newly asked for, or -1 if no new stop. */
int sup_control_read(struct sup_control *c, const struct pollfd *pf, int nfds);
/* Say `say` (or nothing) to every stop waiting, and close everything. */
void sup_control_close(struct sup_control *c, const char *say);

#endif
