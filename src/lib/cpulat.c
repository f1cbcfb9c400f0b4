/*
 * cpulat.c — see cpulat.h.
 */
#include "cpulat.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define QOS_DEVICE "/dev/cpu_dma_latency"
#define CPUIDLE_DRIVER "/sys/devices/system/cpu/cpuidle/current_driver"
#define HALT_POLL_NS "/sys/module/haltpoll/parameters/guest_halt_poll_ns"

/* The first line of a small sysfs file, or "" */
static void read_line(const char *path, char *buf, size_t n)
{
	buf[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	buf[r > 0 ? r : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

static bool wanted;
static pthread_once_t wanted_once = PTHREAD_ONCE_INIT;

static void decide(void)
{
	const char *e = getenv("MEZZO_CPU_LATENCY");
	if (e && *e) {
		wanted = strcmp(e, "0") != 0 && strcmp(e, "off") != 0;
		return;
	}
	/* A guest whose idle vCPUs halt without polling first: the case where
	 * every wakeup of an idle CPU is a hypervisor's.  Elsewhere (bare
	 * metal, where a halted CPU wakes in a microsecond or two; a guest
	 * that polls already) asking would only burn CPU. */
	char driver[32], poll[32];
	read_line(CPUIDLE_DRIVER, driver, sizeof(driver));
	read_line(HALT_POLL_NS, poll, sizeof(poll));
	wanted = strcmp(driver, "haltpoll") == 0 && strcmp(poll, "0") == 0;
}

bool mz_cpulat_wanted(void)
{
	pthread_once(&wanted_once, decide);
	return wanted;
}

static bool qos_write(int fd, int32_t us)
{
	return write(fd, &us, sizeof(us)) == (ssize_t)sizeof(us);
}

void mz_cpulat_hold(struct mz_cpulat *l)
{
	if (l->held || !mz_cpulat_wanted())
		return;
	if (l->fd == -1) {
		l->fd = open(QOS_DEVICE, O_WRONLY | O_CLOEXEC);
		if (l->fd < 0) {
			mz_debug("cpu latency: cannot open " QOS_DEVICE ": %m");
			l->fd = -2; /* not again */
		}
	}
	if (l->fd >= 0)
		l->held = qos_write(l->fd, 0);
}

void mz_cpulat_release(struct mz_cpulat *l)
{
	if (!l->held)
		return;
	/* -1 is PM_QOS_DEFAULT_VALUE: the request stays, with no bound */
	qos_write(l->fd, -1);
	l->held = false;
}

void mz_cpulat_close(struct mz_cpulat *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->held = false;
}
