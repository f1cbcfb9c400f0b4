/* log.c — see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "mezzo";
static int log_fd = 2;
static int log_debug = -1;

void mz_log_init(const char *prog)
{
	log_prog = prog;
	const char *d = getenv("MEZZO_DEBUG");
	log_debug = d != NULL && *d != '\0' && strcmp(d, "0") != 0;
}

void mz_log_to_fd(int fd)
{
	log_fd = fd;
}

void mz_log(int level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warning", "error"};
	if (log_debug < 0)
		mz_log_init(log_prog);
	if (level == MZ_LOG_DEBUG && !log_debug)
		return;
	char buf[2048];
	int n;
	if (level == MZ_LOG_DEBUG) {
		/* CLOCK_MONOTONIC, so that the lines of the CLI, the supervisor
		 * and the tree server of one start line up as a timeline */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		n = snprintf(buf, sizeof(buf), "%s[%d] %lld.%06ld: debug: ", log_prog, (int)getpid(),
			     (long long)ts.tv_sec, ts.tv_nsec / 1000);
	} else {
		n = snprintf(buf, sizeof(buf), "%s: %s: ", log_prog, names[level]);
	}
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(log_fd, buf, n) < 0) {
		/* stderr gone: nowhere to report */
	}
}
