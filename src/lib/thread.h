/*
 * thread.h — starting a helper thread on another CPU than the caller's.
 *
 * A supervisor starts helpers (the tree's server, the warm-up) to work
 * beside it while it goes on.  On these VMs the scheduler tends to queue a
 * new thread behind its creator on the creator's CPU rather than wake the
 * idle one (measured with `perf sched timehist`: the tree server waited
 * 0.23 ms to run while the other vCPU idled, and the start waited on it).
 * So the helper starts where the caller is not, and once running lets
 * itself be moved anywhere again.
 */
#ifndef MZ_THREAD_H
#define MZ_THREAD_H

#include <pthread.h>
#include <stddef.h>

/* pthread_create, with the new thread first placed on a CPU other than the
 * caller's (when the process may use another).  stack: its stack size, or
 * 0 for the default.  Returns 0 or an errno value, as pthread_create. */
int mz_thread_start_apart(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg);

#endif
