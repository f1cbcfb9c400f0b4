/*
 * mezzo.c — the `mezzo` command users run: a small static musl program.
 *
 * When `mezzo serve` listens on $MEZZO_SOCKET (default
 * /run/mezzo/serve.sock), the command is run by a fork of that server, which
 * has already paid the full program's start (src/serve/protocol.h says why
 * and how); this program passes it what a direct run would have inherited
 * and waits, forwarding signals, for the status to exit with.  Otherwise it
 * execs mezzo-core, the full program, from its own directory: with no
 * server, `mezzo` behaves exactly as mezzo-core does.
 *
 * Built with musl, like mezzo-init, because the point is to start fast; so
 * it uses only system calls and a little stdio, and no mezzo library.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../serve/protocol.h"

extern char **environ;

static const int forwarded[] = MZ_SERVE_FORWARDED;
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))

static volatile sig_atomic_t pending[NFORWARDED];

static void on_signal(int sig)
{
	for (size_t i = 0; i < NFORWARDED; i++)
		if (forwarded[i] == sig)
			pending[i] = 1;
}

static void exec_core(char **argv)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "mezzo: cannot find my own path (/proc/self/exe): %s\n",
			strerror(n < 0 ? errno : ENOENT));
		exit(1);
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	size_t dir = slash ? (size_t)(slash - self) + 1 : 0;
	char core[PATH_MAX + sizeof(MZ_SERVE_CORE_NAME)];
	snprintf(core, sizeof(core), "%.*s%s", (int)dir, self, MZ_SERVE_CORE_NAME);
	execv(core, argv);
	fprintf(stderr, "mezzo: cannot run %s: %s\n", core, strerror(errno));
	exit(1);
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The request's fixed part: umask, rlimits and signal state as this
 * process has them (what a direct run would inherit); mask: the signal
 * mask it had before it blocked the ones it forwards. */
static void fill_req(struct mz_serve_req *q, int argc, size_t envc, size_t blob_len,
		     const sigset_t *mask)
{
	memset(q, 0, sizeof(*q));
	q->magic = MZ_SERVE_MAGIC;
	q->argc = (uint32_t)argc;
	q->envc = (uint32_t)envc;
	q->blob_len = (uint32_t)blob_len;
	mode_t m = umask(0);
	umask(m);
	q->umask = m;
	for (int r = 0; r < MZ_SERVE_NLIMITS; r++) {
		struct rlimit rl;
		if (getrlimit(r, &rl) == 0) {
			q->rlim[r].cur = rl.rlim_cur;
			q->rlim[r].max = rl.rlim_max;
		} else {
			q->rlim[r].cur = q->rlim[r].max = UINT64_MAX;
		}
	}
	for (int s = 1; s <= 64; s++) {
		struct sigaction sa;
		if (s <= 32 && s != SIGKILL && s != SIGSTOP && sigaction(s, NULL, &sa) == 0 &&
		    sa.sa_handler == SIG_IGN)
			q->sig_ignored |= 1ull << (s - 1);
		if (s != SIGKILL && s != SIGSTOP && sigismember(mask, s) == 1)
			q->sig_blocked |= 1ull << (s - 1);
	}
}

/* The argv and environment strings, each with its NUL. */
static char *make_blob(int argc, char **argv, size_t *envc, size_t *len)
{
	size_t n = 0, e = 0;
	for (int i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	for (char **v = environ; v && *v; v++, e++)
		n += strlen(*v) + 1;
	if (n > MZ_SERVE_MAX_BLOB || (size_t)argc + e > MZ_SERVE_MAX_STRINGS)
		return NULL;
	char *b = malloc(n ? n : 1), *p = b;
	if (!b)
		return NULL;
	for (int i = 0; i < argc; i++)
		p = stpcpy(p, argv[i]) + 1;
	for (char **v = environ; v && *v; v++)
		p = stpcpy(p, *v) + 1;
	*envc = e;
	*len = n;
	return b;
}

static int send_req(int s, int argc, char **argv, const sigset_t *mask)
{
	size_t envc, len;
	char *blob = make_blob(argc, argv, &envc, &len);
	if (!blob)
		return -1;
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (cwd < 0 || fstat(0, &st) < 0 || fstat(1, &st) < 0 || fstat(2, &st) < 0) {
		/* a closed stdio fd or no working directory: the server could not
		 * reproduce that; a direct run can */
		if (cwd >= 0)
			close(cwd);
		free(blob);
		return -1;
	}
	struct mz_serve_req q;
	fill_req(&q, argc, envc, len, mask);
	int fds[MZ_SERVE_NFDS] = {0, 1, 2, cwd};
	ssize_t n = mz_serve_send_fds(s, &q, sizeof(q), fds, MZ_SERVE_NFDS);
	close(cwd);
	int r = -1;
	if (n == (ssize_t)sizeof(q))
		r = write_full(s, blob, len);
	else if (n > 0)
		r = write_full(s, (char *)&q + n, sizeof(q) - (size_t)n) ?: write_full(s, blob, len);
	free(blob);
	return r;
}

static int read_msg(int s, struct mz_serve_msg *m)
{
	size_t got = 0;
	while (got < sizeof(*m)) {
		ssize_t n = read(s, (char *)m + got, sizeof(*m) - got);
		if (n < 0 && errno == EINTR)
			return 1; /* a signal: the caller forwards it and comes back */
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void die_like(int sig)
{
	signal(sig, SIG_DFL);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	raise(sig);
	exit(128 + sig); /* a signal whose default is to be ignored */
}

/* `mezzo [global options] serve ...` starts a server: never a worker's job. */
static bool is_serve(int argc, char **argv)
{
	int i = 1;
	while (i < argc && argv[i][0] == '-')
		i += strcmp(argv[i], "--root") == 0 ? 2 : 1;
	return i < argc && strcmp(argv[i], "serve") == 0;
}

int main(int argc, char **argv)
{
	if (is_serve(argc, argv))
		exec_core(argv);
	const char *path = getenv(MZ_SERVE_SOCKET_ENV);
	if (!path)
		path = MZ_SERVE_SOCKET_DEFAULT;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!*path || strcmp(path, "none") == 0 || strlen(path) >= sizeof(sa.sun_path))
		exec_core(argv);
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		exec_core(argv); /* nobody serves: run it here */

	/* Forwarded signals are blocked except while waiting in ppoll, so that
	 * none is lost between a check and the wait. */
	struct sigaction act = {.sa_handler = on_signal}, old[NFORWARDED];
	sigset_t fw, saved, waitmask;
	sigemptyset(&fw);
	for (size_t i = 0; i < NFORWARDED; i++)
		sigaddset(&fw, forwarded[i]);
	sigprocmask(SIG_BLOCK, &fw, &saved);
	waitmask = saved;
	for (size_t i = 0; i < NFORWARDED; i++) {
		sigaction(forwarded[i], NULL, &old[i]);
		if (old[i].sa_handler == SIG_IGN)
			continue; /* ignored here: ignored by the command too */
		sigaction(forwarded[i], &act, NULL);
		sigdelset(&waitmask, forwarded[i]);
	}

	if (send_req(s, argc, argv, &saved) < 0)
		goto direct;
	bool taken = false;
	for (;;) {
		struct pollfd pf = {.fd = s, .events = POLLIN};
		int n = ppoll(&pf, 1, NULL, &waitmask);
		for (size_t i = 0; i < NFORWARDED; i++) {
			if (!pending[i])
				continue;
			pending[i] = 0;
			struct mz_serve_msg m = {.kind = MZ_SERVE_SIGNAL, .value = forwarded[i]};
			write_full(s, &m, sizeof(m));
		}
		if (n <= 0)
			continue;
		struct mz_serve_msg m;
		int r = read_msg(s, &m);
		if (r > 0)
			continue;
		if (r < 0 && !taken)
			goto direct; /* never taken (the server died): nothing ran */
		if (r < 0) {
			/* the command may have run, so it must not run again here */
			fprintf(stderr, "mezzo: lost `mezzo serve` before the command ended\n");
			return 125;
		}
		if (!taken && m.kind == MZ_SERVE_DECLINE && getenv("MEZZO_DEBUG"))
			fprintf(stderr, "mezzo: serve declined: %s\n", mz_serve_decline_str(m.value));
		if (!taken && m.kind != MZ_SERVE_TAKEN)
			goto direct; /* declined, or its worker died before taking it */
		if (m.kind == MZ_SERVE_TAKEN) {
			taken = true;
			continue;
		}
		if (m.kind == MZ_SERVE_EXIT)
			return m.value & 0xff;
		if (m.kind == MZ_SERVE_SIGNAL && m.value > 0 && m.value < 65)
			die_like(m.value);
	}
direct:
	close(s);
	for (size_t i = 0; i < NFORWARDED; i++)
		sigaction(forwarded[i], &old[i], NULL);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	exec_core(argv);
}
