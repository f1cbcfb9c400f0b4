/*
 * trace.c — see trace.h.
 */
#include "trace.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define TRACE_MAX 128

bool mz_trace_on;

static const char *trace_file;
static struct {
	const char *step;
	int64_t ns;
} trace_tab[TRACE_MAX];
static unsigned trace_n;      /* slots taken (atomically: children share it) */
static unsigned trace_done;   /* slots flushed */
static int64_t trace_base;  /* the first step's time */
static bool trace_told_dropped;

/* A fork's table holds its parent's steps, which the parent writes itself. */
static void trace_forked(void)
{
	unsigned n = __atomic_load_n(&trace_n, __ATOMIC_RELAXED);
	trace_done = n < TRACE_MAX ? n : TRACE_MAX;
}

void mz_trace_init(void)
{
	static bool hooked;
	if (!hooked && pthread_atfork(NULL, NULL, trace_forked) == 0)
		hooked = true;
	/* A fork's table is its parent's: a process's steps start at its first
	 * call (a serve worker's, before it runs the CLI, which calls again). */
	static pid_t trace_pid;
	if (trace_pid != getpid()) {
		trace_pid = getpid();
		trace_n = trace_done = 0;
		trace_base = 0;
		trace_told_dropped = false;
	}
	const char *f = getenv("MEZZO_TRACE");
	trace_file = f && *f ? f : NULL;
	mz_trace_on = trace_file != NULL;
	static bool at_exit;
	if (mz_trace_on && !at_exit && atexit(mz_trace_flush) == 0)
		at_exit = true;
}

void mz_trace_step(const char *step)
{
	int64_t ns = mono_ns(); /* the vDSO's clock: fine in the CLONE_VM children */
	unsigned i = __atomic_fetch_add(&trace_n, 1, __ATOMIC_RELAXED);
	if (i >= TRACE_MAX)
		return;
	trace_tab[i].ns = ns;
	__atomic_store_n(&trace_tab[i].step, step, __ATOMIC_RELEASE);
}

void mz_trace_flush(void)
{
	if (!mz_trace_on)
		return;
	unsigned n = __atomic_load_n(&trace_n, __ATOMIC_RELAXED);
	unsigned dropped = n > TRACE_MAX ? n - TRACE_MAX : 0;
	if (n > TRACE_MAX)
		n = TRACE_MAX;
	if (trace_base == 0 && n > 0)
		trace_base = trace_tab[0].ns;
	/* one write, so that the lines of processes tracing into the same
	 * file at once stay whole (O_APPEND) */
	char buf[TRACE_MAX * 96 + 64];
	size_t len = 0;
	for (unsigned i = trace_done; i < n; i++) {
		const char *step = __atomic_load_n(&trace_tab[i].step, __ATOMIC_ACQUIRE);
		if (step == NULL) /* taken, not written yet: its child is gone or late */
			continue;
		int m = snprintf(buf + len, sizeof(buf) - len, "%d %.3f %.60s\n", (int)getpid(),
				 (double)(trace_tab[i].ns - trace_base) / 1e6, step);
		if (m > 0 && (size_t)m < sizeof(buf) - len)
			len += (size_t)m;
	}
	if (dropped && !trace_told_dropped) {
		trace_told_dropped = true;
		int m = snprintf(buf + len, sizeof(buf) - len, "%d - (%u steps dropped)\n",
				 (int)getpid(), dropped);
		if (m > 0 && (size_t)m < sizeof(buf) - len)
			len += (size_t)m;
	}
	trace_done = n;
	if (len == 0)
		return;
	buf[len++] = '\n';
	int fd = open(trace_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, buf, len) < 0) {
		/* a trace that cannot be written is no trace: nothing to report */
	}
	close(fd);
}
