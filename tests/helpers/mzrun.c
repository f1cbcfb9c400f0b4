/*
 * mzrun — a test driver for the domain runtime (src/domain/runtime.h), no
 * store, no FUSE: a plain directory is the domain's root.
 *
 *   mzrun [options] ROOTFS -- CMD [ARG...] [--- EXEC-CMD [ARG...]]
 *
 * Spawns a domain running CMD, waits for its init and exits with its status
 * (an exit code, or 128 + signal).  With "--- EXEC-CMD", once the domain runs,
 * EXEC-CMD is run inside it with mz_domain_exec; mzrun then exits with
 * EXEC-CMD's status after killing the domain.  Prints nothing of its own
 * except errors ("mzrun: ...", exit 125) and, with --stats, one line
 * "stats memory=B pids=N cpu_ns=T" on stderr before tearing down.
 *
 * Options: --name NAME (default mzrun-PID), --uid-base N (default 200000;
 * uid and gid, count 65536), --uid U, --gid G, --cwd DIR, --tty,
 * --memory BYTES, --pids N, --cpu-weight W, --cpu-quota-us Q, --io-weight W,
 * --nofile N, --perf, --grace MS, --init PATH (default $MEZZO_INIT, else
 * mezzo-init two directories above this binary), --stats.
 * SIGINT/SIGTERM/SIGHUP kill the domain.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/domain/runtime.h"
#include "../../src/lib/util.h"

static void usage(void)
{
	fprintf(stderr, "usage: mzrun [options] ROOTFS -- CMD [ARG...] [--- EXEC-CMD [ARG...]]\n");
	exit(125);
}

static int status_of(const siginfo_t *si)
{
	return si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
}

static char *default_init(void)
{
	const char *e = getenv("MEZZO_INIT");
	if (e && *e)
		return xstrdup(e);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return xstrdup("mezzo-init");
	self[n] = '\0';
	for (int i = 0; i < 3; i++) {
		char *s = strrchr(self, '/');
		if (s)
			*s = '\0';
	}
	return xasprintf("%s/mezzo-init", self);
}

int main(int argc, char **argv)
{
	struct mz_domain_spec s = {.uid_base = 200000, .uid_count = 65536, .gid_count = 65536,
				   .stdio = {0, 1, 2}};
	char namebuf[64];
	snprintf(namebuf, sizeof(namebuf), "mzrun-%d", (int)getpid());
	s.name = namebuf;
	bool stats = false, gid_base_set = false;
	cleanup_free char *init = NULL;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2]; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--tty") == 0) {
			s.tty = true;
			continue;
		}
		if (strcmp(o, "--perf") == 0) {
			s.allow_perf_bpf = true;
			continue;
		}
		if (strcmp(o, "--stats") == 0) {
			stats = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		long long n = strtoll(v, NULL, 0);
		if (strcmp(o, "--name") == 0)
			s.name = v;
		else if (strcmp(o, "--uid-base") == 0)
			s.uid_base = (uid_t)n;
		else if (strcmp(o, "--gid-base") == 0)
			s.gid_base = (gid_t)n, gid_base_set = true;
		else if (strcmp(o, "--uid") == 0)
			s.uid = (uid_t)n;
		else if (strcmp(o, "--gid") == 0)
			s.gid = (gid_t)n;
		else if (strcmp(o, "--cwd") == 0)
			s.cwd = v;
		else if (strcmp(o, "--memory") == 0)
			s.limits.memory_bytes = n;
		else if (strcmp(o, "--pids") == 0)
			s.limits.pids = n;
		else if (strcmp(o, "--cpu-weight") == 0)
			s.limits.cpu_weight = n;
		else if (strcmp(o, "--cpu-quota-us") == 0)
			s.limits.cpu_quota_us = n;
		else if (strcmp(o, "--io-weight") == 0)
			s.limits.io_weight = n;
		else if (strcmp(o, "--nofile") == 0)
			s.limits.nofile = n;
		else if (strcmp(o, "--grace") == 0)
			s.stop_grace_ms = (int)n;
		else if (strcmp(o, "--init") == 0)
			init = xstrdup(v);
		else
			usage();
	}
	if (!gid_base_set)
		s.gid_base = s.uid_base;
	if (i + 2 >= argc || strcmp(argv[i + 1], "--") != 0)
		usage();
	s.rootfs = argv[i];
	char **cmd = argv + i + 2;
	char **exec_cmd = NULL;
	for (char **a = cmd; *a; a++)
		if (strcmp(*a, "---") == 0) {
			*a = NULL;
			exec_cmd = a + 1;
			break;
		}
	if (cmd[0] == NULL || (exec_cmd && exec_cmd[0] == NULL))
		usage();
	s.argv = cmd;
	if (init == NULL)
		init = default_init();
	s.init_path = init;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);

	int64_t T0 = mono_ns();
	mz_error_t err cleanup_error = NULL;
	struct mz_domain_proc d;
	if (mz_domain_spawn(&s, &d, &err) < 0) {
		fprintf(stderr, "mzrun: %s\n", err ? err->msg : "spawn failed");
		return 125;
	}
	int64_t T1 = mono_ns();
	int ret = 125;
	pid_t xpid = -1;
	if (exec_cmd) {
		struct mz_exec_spec x = {.argv = exec_cmd, .uid = s.uid, .gid = s.gid,
					 .stdio = {0, 1, 2}, .domain = &s};
		if (mz_domain_exec(&d, &x, &xpid, &err) < 0) {
			fprintf(stderr, "mzrun: %s\n", err ? err->msg : "exec failed");
			xpid = -1;
		}
	}
	/* Wait for init (or the exec'd process), killing the domain on a signal. */
	for (;;) {
		struct pollfd pf[2] = {{.fd = d.pidfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (xpid > 0) {
			siginfo_t si = {0};
			if (waitid(P_PID, (id_t)xpid, &si, WEXITED | WNOHANG) == 0 && si.si_pid == xpid) {
				ret = status_of(&si);
				xpid = -1;
				break;
			}
			pf[0].fd = -1;
		} else if (exec_cmd) {
			break; /* exec failed */
		}
		if (poll(pf, 2, xpid > 0 ? 5 : -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo ssi;
			if (read(sfd, &ssi, sizeof(ssi)) > 0)
				mz_domain_kill(&d, SIGKILL, NULL);
		}
		if (!exec_cmd && (pf[0].revents & POLLIN))
			break;
	}
	if (stats) {
		struct mz_domain_stats st;
		if (mz_domain_stats(&d, &st, &err) == 0)
			fprintf(stderr, "stats memory=%lld pids=%lld cpu_ns=%lld\n",
				(long long)st.memory_bytes, (long long)st.pids,
				(long long)st.cpu_usage_ns);
		else
			fprintf(stderr, "mzrun: %s\n", err ? err->msg : "stats failed");
		mz_error_release(&err);
	}
	if (exec_cmd)
		mz_domain_kill(&d, SIGKILL, NULL);
	siginfo_t si = {0};
	while (waitid(P_PIDFD, (id_t)d.pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	int64_t T2 = mono_ns();
	if (!exec_cmd)
		ret = status_of(&si);
	close(d.pidfd);
	if (mz_domain_cleanup(&d, &err) < 0) {
		fprintf(stderr, "mzrun: %s\n", err ? err->msg : "cleanup failed");
		if (ret == 0)
			ret = 125;
	}
	int64_t T3 = mono_ns();
	if (getenv("MZRUN_TIMING")) fprintf(stderr, "T spawn %.3f wait %.3f cleanup %.3f\n", (T1-T0)/1e6, (T2-T1)/1e6, (T3-T2)/1e6);
	return ret;
}
