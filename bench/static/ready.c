/*
 * ready.c — the first process of a benchmark domain (bench/domains, figures
 * 2 and 3).  Built statically by bench/domains at run time (cc -static) and
 * put into the benchmark's image and OCI root file system: the Makefile's
 * bench programs link libmezzo dynamically and could not run in a busybox tree.
 *
 *   ready [FILE]
 *
 * First thing after exec, reads CLOCK_MONOTONIC (one clock for the whole
 * machine: no time namespace is involved) and writes "ready NS\n" to FILE
 * (made with O_CREAT), or to standard output without FILE.  The benchmark
 * compares NS with the time it read just before `mezzo create`: that is the
 * moment the domain's first process runs.  Then it idles until SIGTERM or
 * SIGINT, which end it with status 0 (a graceful stop needs a process that
 * does stop when asked, also as pid 1 of a container without an init).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "ready %lld\n",
			 (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	/* before saying ready: a stop after that is always graceful */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int fd = 1;
	if (argc > 1 && (fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return 1;
	if (write(fd, buf, (size_t)n) != n)
		return 1;
	if (fd != 1)
		close(fd);
	for (;;)
		pause();
}
