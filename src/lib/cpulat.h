/*
 * cpulat.h — asking idle CPUs to poll, not halt, while a server is busy.
 *
 * On a KVM guest whose idle vCPUs halt at once (the cpuidle-haltpoll driver
 * with guest_halt_poll_ns = 0, as on the machines mezzo is measured on),
 * waking a process on an idle CPU is a trip through the hypervisor: 22-35
 * us here, against 4-8 us on a CPU that did not halt.  Every FUSE request a
 * domain makes ends with such a wakeup of the process that made it.  The
 * kernel's CPU latency QoS (/dev/cpu_dma_latency, see the kernel's
 * Documentation/power/pm_qos_interface.rst) lets a process ask for a bound
 * on that latency for as long as it holds the file open; with 0, idle CPUs
 * stay in cpuidle's POLL state.  The kernel drops the request when the file
 * is closed, so also when the process dies, however it dies.
 *
 * It costs CPU time: while a request is held, every idle CPU of the machine
 * spins.  So a tree server holds one only while it is busy (requests in a
 * burst, and for a millisecond after, fs/server.c), a supervisor only while
 * it starts or stops its domain, and only where it pays: by default on such
 * a halting guest alone (see mz_cpulat_wanted); MEZZO_CPU_LATENCY=0 turns it
 * off, =1 on, anywhere.
 */
#ifndef MZ_CPULAT_H
#define MZ_CPULAT_H

#include <stdbool.h>

struct mz_cpulat {
	int fd;    /* /dev/cpu_dma_latency, opened at the first hold; -1 not
		      yet, -2 could not be */
	bool held; /* a 0 us request is in force */
};

#define MZ_CPULAT_INIT {.fd = -1, .held = false}

/* Whether this process asks at all: MEZZO_CPU_LATENCY=0|1, else whether the
 * CPUs halt at once on going idle (decided once per process). */
bool mz_cpulat_wanted(void);

/* Ask for 0 us (if wanted and not held already): ~7 us, the kernel kicks
 * the idle CPUs so that they choose again.  Failures are silent: a server
 * that cannot ask works as before. */
void mz_cpulat_hold(struct mz_cpulat *l);

/* Withdraw the request (the file stays open for the next hold). */
void mz_cpulat_release(struct mz_cpulat *l);

/* Withdraw and close. */
void mz_cpulat_close(struct mz_cpulat *l);

#endif
