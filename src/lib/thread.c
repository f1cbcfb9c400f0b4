/*
 * thread.c — see thread.h.
 */
#include "thread.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util.h"

struct apart {
	void *(*fn)(void *);
	void *arg;
	cpu_set_t all; /* the caller's mask: the thread's own from its start on */
};

static void *apart_main(void *p)
{
	struct apart a = *(struct apart *)p;
	free(p);
	sched_setaffinity(0, sizeof(a.all), &a.all);
	return a.fn(a.arg);
}

int mz_thread_start_apart(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (stack)
		pthread_attr_setstacksize(&attr, stack);
	struct apart *a = xmalloc(sizeof(*a));
	a->fn = fn;
	a->arg = arg;
	int here = sched_getcpu();
	bool apart = false;
	if (here >= 0 && sched_getaffinity(0, sizeof(a->all), &a->all) == 0 &&
	    CPU_ISSET(here, &a->all) && CPU_COUNT(&a->all) > 1) {
		cpu_set_t elsewhere = a->all;
		CPU_CLR(here, &elsewhere);
		apart = pthread_attr_setaffinity_np(&attr, sizeof(elsewhere), &elsewhere) == 0;
	}
	int r = pthread_create(t, &attr, apart ? apart_main : fn, apart ? (void *)a : arg);
	pthread_attr_destroy(&attr);
	if (r != 0 || !apart)
		free(a);
	return r;
}
