/*
 * protocol.h — what the `mezzo` command (src/client/) and `mezzo serve`
 * (src/serve/) say to each other over the serve socket.
 *
 * Why there is a server at all: a mezzo command's own start and end are a
 * large part of a short domain's life.  exec of the glibc program, its
 * loader and its libc's setup (which asks the CPU its features with CPUID,
 * a trap to the hypervisor on a VM) cost ~0.6 ms here before main(), and
 * its exit another ~0.3 ms; a static musl program starts in ~0.2 ms.  So
 * `mezzo` is a small static musl program: when `mezzo serve` listens, it
 * hands its argv, environment, stdio, working directory, umask, rlimits and
 * signal state to it and waits for the exit status; a fork of the server,
 * already past all of that, runs the command.  When nobody listens, or the
 * server declines (the caller is not in the server's namespaces, or has
 * other credentials), `mezzo` execs the full program (mezzo-core) itself:
 * the server is an accelerator, never a requirement.
 *
 * The exchange, on a SOCK_STREAM unix socket:
 *   client -> server  struct mz_serve_req, with SCM_RIGHTS fds
 *                     {stdin, stdout, stderr, cwd}, then blob_len bytes:
 *                     argc NUL-terminated argv strings, then envc
 *                     NUL-terminated "NAME=value" strings
 *   server -> client  struct mz_serve_msg: DECLINE (run it yourself), or
 *                     TAKEN (the command runs here) and later EXIT / SIGNAL
 *                     (how it ended).  A connection that ends before TAKEN
 *                     ran nothing (a server that died with the client in
 *                     its backlog): the client runs the command itself.
 *   client -> server  struct mz_serve_msg SIGNAL for each signal the
 *                     client gets while it waits (MZ_SERVE_FORWARDED)
 *
 * Included by the musl client: plain C and Linux headers only.
 */
#ifndef MZ_SERVE_PROTOCOL_H
#define MZ_SERVE_PROTOCOL_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Where `mezzo serve` listens unless --socket says otherwise, and where
 * `mezzo` looks unless $MEZZO_SOCKET says otherwise ("" or "none": never). */
#define MZ_SERVE_SOCKET_DEFAULT "/run/mezzo/serve.sock"
#define MZ_SERVE_SOCKET_ENV "MEZZO_SOCKET"

/* The full program, next to `mezzo` in the same directory. */
#define MZ_SERVE_CORE_NAME "mezzo-core"

#define MZ_SERVE_MAGIC 0x317a6d73u /* "smz1" */
#define MZ_SERVE_NFDS 4            /* stdin, stdout, stderr, cwd */
#define MZ_SERVE_MAX_BLOB (4u << 20)
#define MZ_SERVE_MAX_STRINGS 65536u
#define MZ_SERVE_NLIMITS 16 /* RLIMIT_CPU .. RLIMIT_RTTIME */

struct mz_serve_rlimit {
	uint64_t cur, max;
};

struct mz_serve_req {
	uint32_t magic;
	uint32_t argc, envc;
	uint32_t blob_len;
	uint32_t umask;
	uint32_t reserved;
	uint64_t sig_ignored; /* bit n-1: signal n is SIG_IGN in the client */
	uint64_t sig_blocked; /* bit n-1: signal n is blocked */
	struct mz_serve_rlimit rlim[MZ_SERVE_NLIMITS];
};

enum mz_serve_kind {
	MZ_SERVE_DECLINE = 1, /* value: enum mz_serve_decline */
	MZ_SERVE_EXIT = 2,    /* value: the exit status */
	MZ_SERVE_SIGNAL = 3,  /* value: the signal that ended it, or to forward */
	MZ_SERVE_TAKEN = 4,   /* the worker runs the command */
};

enum mz_serve_decline {
	MZ_SERVE_DECLINE_REQUEST = 1, /* malformed request */
	MZ_SERVE_DECLINE_CREDS = 2,   /* other uid, capabilities, no_new_privs or seccomp */
	MZ_SERVE_DECLINE_NS = 3,      /* other namespaces or root directory */
};

struct mz_serve_msg {
	uint32_t kind;
	int32_t value;
};

/* The signals the client forwards while it waits: what a terminal or a
 * supervisor sends to "the command".  Others (SIGTSTP, SIGPIPE, ...) act on
 * the client alone, or arise in the server's fork by themselves. */
#define MZ_SERVE_FORWARDED                                                                         \
	{SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM}

/* sendmsg() of buf with fds[0..nfds) (nfds <= MZ_SERVE_NFDS) as SCM_RIGHTS,
 * retried on EINTR: what it returns. */
static inline ssize_t mz_serve_send_fds(int sock, const void *buf, size_t len, const int *fds,
					int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MZ_SERVE_NFDS)];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

static inline const char *mz_serve_decline_str(int why)
{
	switch (why) {
	case MZ_SERVE_DECLINE_REQUEST:
		return "malformed request";
	case MZ_SERVE_DECLINE_CREDS:
		return "the caller's credentials differ from the server's";
	case MZ_SERVE_DECLINE_NS:
		return "the caller is in other namespaces than the server";
	}
	return "unknown reason";
}

#endif
