/*
 * trace.h — where a command's milliseconds go: a timeline of named steps.
 *
 * With MEZZO_TRACE=FILE in the environment, mz_trace(STEP) notes the
 * CLOCK_MONOTONIC time of a step in a table of the process, and
 * mz_trace_flush() appends the steps noted since the last flush to FILE, a
 * line each:
 *
 *     PID MS STEP
 *
 * MS is the time since the table's first step (three decimals): the
 * process's own, or for a fork its parent's, so that a supervisor forked by
 * a command shares the command's timeline.  A flush ends with an empty
 * line.  bench/timeline runs a start or a run many
 * times this way and prints each step's median.
 *
 * Off (no MEZZO_TRACE), a step costs a load and a branch, so the steps stay
 * in the start path for good.  On, a step is one vDSO clock read and one
 * atomic add: no allocation, no lock, no errno, so that the children that
 * share the supervisor's memory before they exec (domain/spawn.c) note their
 * steps in the supervisor's table too.  Where they do not share it (not
 * x86-64, or a build with AddressSanitizer: see domain/child.c), their steps
 * stay in their own copies and are not written.  Steps past the table's size are
 * dropped, and counted.
 */
#ifndef MZ_TRACE_H
#define MZ_TRACE_H

#include <stdbool.h>

extern bool mz_trace_on;

/* Reads MEZZO_TRACE (again: a serve worker takes its client's environment). */
void mz_trace_init(void);
void mz_trace_step(const char *step);
void mz_trace_flush(void);

/* step: a string that lives as long as the process (a literal) */
static inline void mz_trace(const char *step)
{
	if (__builtin_expect(mz_trace_on, 0))
		mz_trace_step(step);
}

#endif
