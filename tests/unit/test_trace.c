/* test_trace.c — lib/trace.h: nothing written when off; the steps of a
 * process in order, with times from its first; a table that overflows says
 * so once; a fork writes its own steps, not its parent's.  Each case runs
 * in a child of its own, since a process's table is set up once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "../../src/lib/trace.h"

static char dir[64], file[128];

static int setup(void **state)
{
	(void)state;
	fx_mkdtemp(dir);
	snprintf(file, sizeof(file), "%s/trace", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unsetenv("MEZZO_TRACE");
	fx_rmrf(dir);
	return 0;
}

/* In a case's child, cmocka's asserts would jump back into a copy of the
 * runner: a failed check there says what and exits 1. */
#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			_exit(1);                                                  \
		}                                                                  \
	} while (0)

/* fn in a child, which must exit 0 */
static void in_child(void (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

struct line {
	int pid;
	double ms;
	char step[64];
};

/* The lines of the file (an empty line ends a flush: counted in *flushes). */
static int read_lines(struct line *out, int max, int *flushes)
{
	FILE *f = fopen(file, "r");
	if (f == NULL)
		return -1;
	char buf[256];
	int n = 0;
	*flushes = 0;
	while (fgets(buf, sizeof(buf), f)) {
		if (buf[0] == '\n') {
			(*flushes)++;
			continue;
		}
		if (n < max) {
			struct line *l = &out[n++];
			char ms[32];
			if (sscanf(buf, "%d %31s %63[^\n]", &l->pid, ms, l->step) != 3)
				l->step[0] = '\0';
			l->ms = strcmp(ms, "-") == 0 ? -1 : atof(ms);
		}
	}
	fclose(f);
	return n;
}

static void off_case(void)
{
	unsetenv("MEZZO_TRACE");
	mz_trace_init();
	CHECK(!mz_trace_on);
	mz_trace("nothing");
	mz_trace_flush();
	struct stat st;
	CHECK(stat(file, &st) == -1);
}

static void order_case(void)
{
	setenv("MEZZO_TRACE", file, 1);
	mz_trace_init();
	CHECK(mz_trace_on);
	mz_trace("first");
	usleep(2000);
	mz_trace("second");
	mz_trace_flush();
	mz_trace("third");
	mz_trace_flush();
	mz_trace_flush(); /* nothing new: nothing written */
	struct line l[8];
	int flushes;
	CHECK(read_lines(l, 8, &flushes) == 3);
	CHECK(flushes == 2);
	CHECK(strcmp(l[0].step, "first") == 0);
	CHECK(strcmp(l[1].step, "second") == 0);
	CHECK(strcmp(l[2].step, "third") == 0);
	CHECK(l[0].ms == 0.0);
	CHECK(l[1].ms >= 2.0);      /* the times keep the first step's base */
	CHECK(l[2].ms >= l[1].ms);
	for (int i = 0; i < 3; i++)
		CHECK(l[i].pid == getpid());
}

static void overflow_case(void)
{
	setenv("MEZZO_TRACE", file, 1);
	mz_trace_init();
	for (int i = 0; i < 300; i++)
		mz_trace("step");
	mz_trace_flush();
	mz_trace("more");
	mz_trace_flush();
	struct line l[400];
	int flushes;
	int n = read_lines(l, 400, &flushes);
	int steps = 0, dropped = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(l[i].step, "step") == 0)
			steps++;
		else if (strstr(l[i].step, "steps dropped"))
			dropped++;
		else
			CHECK(!"an unexpected line"); /* "more" had no room */
	}
	CHECK(dropped == 1);
	CHECK(steps > 0 && steps < 300);
	CHECK(flushes == 1);
}

static void fork_case(void)
{
	setenv("MEZZO_TRACE", file, 1);
	mz_trace_init();
	mz_trace("parent");
	pid_t pid = fork();
	if (pid == 0) {
		mz_trace("child");
		mz_trace_flush();
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	mz_trace_flush();
	struct line l[8];
	int flushes;
	CHECK(read_lines(l, 8, &flushes) == 2);
	CHECK(strcmp(l[0].step, "child") == 0); /* the child wrote first */
	CHECK(l[0].pid == pid);
	CHECK(l[0].ms >= 0.0);           /* from the parent's first step */
	CHECK(strcmp(l[1].step, "parent") == 0);
	CHECK(l[1].pid == getpid());
}

/* A test that runs a case in a child of its own. */
#define CASE_IN_CHILD(test, fn)                    \
	static void test(void **state)             \
	{                                          \
		(void)state;                       \
		in_child(fn);                      \
	}
CASE_IN_CHILD(test_off_writes_nothing, off_case)
CASE_IN_CHILD(test_steps_in_order_from_the_first, order_case)
CASE_IN_CHILD(test_a_full_table_says_so_once, overflow_case)
CASE_IN_CHILD(test_a_fork_writes_its_own_steps, fork_case)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_off_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_steps_in_order_from_the_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_full_table_says_so_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_fork_writes_its_own_steps, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
