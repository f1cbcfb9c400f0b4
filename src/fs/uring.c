/*
 * uring.c — FUSE over io_uring: each request answered on the CPU that made it.
 *
 * Through /dev/fuse, one server thread reads every request, and in this VM
 * waking it on the other vCPU costs 150-300 µs, far more than the request.
 * FUSE over io_uring (protocol 7.42, kernel 6.14) gives a connection one
 * request queue per possible CPU, and the kernel puts a request on the queue
 * of the CPU its caller runs on.  So the server runs one thread per possible
 * CPU, pinned to it, each with its own ring whose entries are registered for
 * that CPU's queue: a request wakes the thread next to its caller, which
 * answers it and takes the next one in a single io_uring_enter
 * (COMMIT_AND_FETCH).  Processing stays serialized by S->lock (one SQLite
 * connection, one node table): the win is wake-up locality, not parallelism.
 *
 * The /dev/fuse loop (server.c) keeps running beside the rings: the kernel
 * still sends FORGET and INTERRUPT there, INIT comes before the rings, and
 * everything does if the kernel refuses the rings.
 *
 * Order of operations, as checked on 6.18:
 *  1. enable_uring must be Y when the kernel sends INIT (at mount()), or
 *     FUSE_OVER_IO_URING is not offered.
 *  2. REGISTER before the INIT reply fails with EAGAIN: the connection is
 *     not initialised (the payload size comes from max_write/max_pages).  So
 *     the threads and rings are made first, at INIT (a failure there means
 *     we do not accept io_uring), the INIT reply accepts it, and then every
 *     queue registers its entries.
 *  3. Once accepted, requests wait until every possible CPU's queue has an
 *     entry.  If a REGISTER fails (say, a payload buffer too small: EINVAL)
 *     the kernel turns io_uring off for the connection and sends requests
 *     through /dev/fuse again: still served, nothing hangs.
 *  4. At umount (or abort) the kernel completes every waiting entry with
 *     -ENOTCONN, and a commit after that fails the same way.  A thread ends
 *     when it has no entry left, or when fs_uring_stop() asks (an eventfd
 *     each ring polls).  A server killed with entries registered leaves a
 *     dead mount (ENOTCONN) that umount -l removes.
 *
 * Knob: io_uring is used only with MEZZO_FUSE_URING=1 in the server's
 * environment.  Measured here, it halves request latency for a client that
 * stays on one CPU (open+close 7 us against 13 us, tar 3.3 s against 4.4 s)
 * but gains nothing for an unpinned client (the scheduler moves it to the
 * idle CPU and every request crosses CPUs anyway), and costs 1 MiB of ring
 * buffer per CPU per tree: not yet worth it for many small domains.  When it
 * is asked for and enable_uring is N, the server sets it to Y
 * if it can (root; logged): it is system-wide, but only changes what the
 * kernel offers servers that ask for io_uring.  If it cannot, the server
 * serves through /dev/fuse.  <root>/run/fs.log says which it does:
 * "io_uring: N queues" or "...; serving through /dev/fuse".
 *
 * Nor does it survive kill -9 on 6.18: a server killed while a request sits
 * with one of its ring threads leaves that request's caller in D state for
 * good, and aborting the connection (fusectl) does not end the request
 * (measured with the kill -9 storm of test_crash.py: domains' processes
 * stuck within seconds, still stuck after every connection was aborted).
 * Through /dev/fuse the same storm leaves nothing: another reason it is
 * opt-in.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "fsInt.h"

#define ENABLE_URING_PARAM "/sys/module/fuse/parameters/enable_uring"
#define CPU_POSSIBLE "/sys/devices/system/cpu/possible"

/* Entries per queue.  One thread serves a queue one request at a time, and
 * a commit fetches the next queued request at once: one is enough. */
#define FS_URING_DEPTH 1
/* Each entry's memory: one page holding the header buffer, then the payload
 * buffer.  The page's tail takes a request's op_in so that the handlers see
 * op_in + payload as one contiguous argument, as read() gives it. */
#define FS_URING_HDR_AREA 4096
/* user_data of the stop poll; entries are pointers */
#define UD_STOP 1

struct fs_queue;

struct fs_ring_ent {
	struct fs_queue *q;
	char *mem;
	size_t memlen;
	struct mz_fuse_uring_req_header *hdr;
	char *payload;
	struct iovec iov[2];
	/* copy of the request header: the reply overwrites hdr->in_out */
	struct fuse_in_header in;
	bool replied;
	bool live; /* registered and not ended by the kernel */
};

struct fs_queue {
	struct fs_server *S;
	struct fs_uring *U;
	int qid;
	pthread_t thread;
	bool started;
	struct io_uring ring;
	bool ring_ok;
	struct fs_ring_ent ent[FS_URING_DEPTH];
	int live;
	bool refused;
};

struct fs_uring {
	int nq;
	size_t payload_size;
	int stop_fd;
	struct fs_queue *q;
	/* start-up handshake with the threads */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int nready, nfailed;      /* threads done setting up, of which failed */
	int nregistered, nrefused; /* threads done registering, refused */
	int nbroken;              /* could not even ask (logged) */
	int refused_errno;
	int go;                   /* 0: wait, 1: register, -1: exit */
};

/* ---- whether to use io_uring ---------------------------------------------- */

bool fs_uring_wanted(struct fs_server *S)
{
	const char *env = getenv("MEZZO_FUSE_URING");
	if (env == NULL || strcmp(env, "1") != 0) {
		mz_debug("io_uring: off (MEZZO_FUSE_URING=1 turns it on); serving through /dev/fuse");
		return false;
	}
	char v[8] = "";
	cleanup_close int fd = open(ENABLE_URING_PARAM, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, v, sizeof(v) - 1) <= 0) {
		mz_info("io_uring: the kernel has no FUSE over io_uring; serving through /dev/fuse");
		return false;
	}
	if (v[0] == 'Y' || v[0] == 'y' || v[0] == '1')
		return true;
	cleanup_close int wfd = open(ENABLE_URING_PARAM, O_WRONLY | O_CLOEXEC);
	if (wfd < 0 || write(wfd, "Y", 1) != 1) {
		mz_info("io_uring: %s is N and cannot be set (%s); serving through /dev/fuse",
			ENABLE_URING_PARAM, strerror(errno));
		return false;
	}
	mz_info("io_uring: set %s to Y", ENABLE_URING_PARAM);
	return true;
}

/* Queues the kernel makes: one per possible CPU, indexed by CPU number. */
static int possible_cpus(void)
{
	cleanup_file FILE *f = fopen(CPU_POSSIBLE, "re");
	char line[256];
	if (f == NULL || fgets(line, sizeof(line), f) == NULL)
		return -1;
	int max = -1;
	for (char *p = line; *p && *p != '\n';) {
		char *end;
		long a = strtol(p, &end, 10), b = a;
		if (end == p)
			return -1;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		if (b > max)
			max = (int)b;
		p = *end == ',' ? end + 1 : end;
	}
	return max + 1;
}

/* ---- one queue -------------------------------------------------------------- */

static void prep_cmd(struct fs_queue *q, struct fs_ring_ent *e, uint32_t op, uint64_t commit)
{
	struct io_uring_sqe *sqe;
	while ((sqe = io_uring_get_sqe(&q->ring)) == NULL) /* SQ full: never, in fact */
		io_uring_submit(&q->ring);
	memset(sqe, 0, 2 * sizeof(*sqe)); /* SQE128 */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->S->dev_fd;
	sqe->cmd_op = op;
	sqe->addr = (uintptr_t)e->iov;
	sqe->len = 2;
	sqe->user_data = (uintptr_t)e;
	struct mz_fuse_uring_cmd_req *c = (void *)sqe->cmd;
	c->commit_id = commit;
	c->qid = q->qid;
}

/* In the queue's thread: pin it, make its ring and entries. */
static bool queue_setup(struct fs_queue *q)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (q->qid < CPU_SETSIZE)
		CPU_SET(q->qid, &set);
	/* A possible CPU may be offline: its queue still needs an entry. */
	if (q->qid >= CPU_SETSIZE || sched_setaffinity(0, sizeof(set), &set) < 0)
		mz_debug("io_uring: queue %d runs unpinned: %s", q->qid, strerror(errno));
	struct io_uring_params p = {
		.flags = IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN |
			 IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
	int r = io_uring_queue_init_params(2 * FS_URING_DEPTH + 2, &q->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_SQE128;
		r = io_uring_queue_init_params(2 * FS_URING_DEPTH + 2, &q->ring, &p);
	}
	if (r < 0) {
		mz_warn("io_uring: ring for CPU %d: %s", q->qid, strerror(-r));
		return false;
	}
	q->ring_ok = true;
	for (int i = 0; i < FS_URING_DEPTH; i++) {
		struct fs_ring_ent *e = &q->ent[i];
		e->q = q;
		e->memlen = FS_URING_HDR_AREA + q->U->payload_size;
		e->mem = mmap(NULL, e->memlen, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (e->mem == MAP_FAILED) {
			e->mem = NULL;
			mz_warn("io_uring: buffers for CPU %d: %s", q->qid, strerror(errno));
			return false;
		}
		e->hdr = (void *)e->mem;
		e->payload = e->mem + FS_URING_HDR_AREA;
		e->iov[0] = (struct iovec){e->hdr, sizeof(*e->hdr)};
		e->iov[1] = (struct iovec){e->payload, q->U->payload_size};
	}
	return true;
}

/* Register the entries; 0, or the -errno the kernel refused them with. */
static int queue_register(struct fs_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	io_uring_prep_poll_add(sqe, q->U->stop_fd, POLLIN);
	sqe->user_data = UD_STOP;
	for (int i = 0; i < FS_URING_DEPTH; i++) {
		prep_cmd(q, &q->ent[i], MZ_FUSE_IO_URING_CMD_REGISTER, 0);
		q->ent[i].live = true;
		q->live++;
	}
	/* Once accepted in INIT, the kernel holds every request until each
	 * queue has an entry: a transient failure here must not stick. */
	int r;
	for (int tries = 0; (r = io_uring_submit(&q->ring)) < 0 && tries < 200; tries++) {
		if (r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ENOMEM)
			break;
		usleep(5000);
	}
	if (r < 0) {
		mz_err("io_uring: cannot register queue %d (%s): the tree's requests wait "
		       "until it is unmounted (umount -l)", q->qid, strerror(-r));
		for (int i = 0; i < FS_URING_DEPTH; i++)
			q->ent[i].live = false;
		q->live = 0;
		return r;
	}
	/* A refusal completes at once; look without consuming (a request may
	 * already be there: the serving loop takes it). */
	io_uring_get_events(&q->ring);
	struct io_uring_cqe *cqes[2 * FS_URING_DEPTH + 2];
	unsigned n = io_uring_peek_batch_cqe(&q->ring, cqes, ARRAY_SIZE(cqes));
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_cqe *c = cqes[i];
		if (c->user_data != UD_STOP && c->res < 0) {
			q->refused = true; /* reported by fs_uring_start */
			return c->res;
		}
	}
	return 0;
}

/* One request in entry e: dispatch it, reply into e; true if the catalog
 * batch must be flushed now.  Holds S->lock. */
static bool queue_request(struct fs_queue *q, struct fs_ring_ent *e)
{
	struct fs_server *S = q->S;
	memcpy(&e->in, e->hdr->in_out, sizeof(e->in));
	uint32_t psz = e->hdr->ring_ent_in_out.payload_sz;
	struct fs_req r = {.h = &e->in, .ent = e};
	e->replied = false;
	size_t fixed = sizeof(e->in) + (size_t)psz;
	size_t oplen = e->in.len >= fixed ? e->in.len - fixed : SIZE_MAX;
	if (psz > q->U->payload_size || oplen > MZ_FUSE_URING_OP_IN_OUT_SZ) {
		mz_warn("io_uring: malformed request (opcode %u, len %u, payload %u)",
			e->in.opcode, e->in.len, psz);
		fs_reply_err(S, &r, -EIO);
	} else {
		char *arg = e->payload - oplen;
		memcpy(arg, e->hdr->op_in, oplen);
		r.arg = arg;
		r.arglen = oplen + psz;
		fs_dispatch(S, &r);
		/* FORGET and INTERRUPT (no reply) come through /dev/fuse; an
		 * entry must be committed whatever happens, or it is lost. */
		if (!e->replied)
			fs_reply_err(S, &r, -EIO);
	}
	return fs_after_request(S, q->qid);
}

/* Submit what is queued, then look for a completion without sleeping for
 * up to FS_SPIN_NS (see there); true if one is there. */
static bool queue_spin(struct fs_queue *q)
{
	if (io_uring_submit(&q->ring) < 0)
		return false;
	struct io_uring_cqe *cqe;
	int64_t until = mono_ns() + FS_SPIN_NS;
	do {
		/* runs the deferred task work that fills entries in */
		io_uring_get_events(&q->ring);
		if (io_uring_peek_cqe(&q->ring, &cqe) == 0)
			return true;
		sched_yield();
	} while (mono_ns() < until);
	return false;
}

static void queue_serve(struct fs_queue *q)
{
	struct fs_server *S = q->S;
	bool stop = false, busy = false;
	while (q->live > 0 && !stop) {
		struct io_uring_cqe *cqe;
		if (!(busy && queue_spin(q))) {
			int64_t ns = fs_wait_ns(S, q->qid);
			struct __kernel_timespec ts = {.tv_sec = ns / 1000000000,
						       .tv_nsec = ns % 1000000000};
			int r = io_uring_submit_and_wait_timeout(&q->ring, &cqe, 1,
								 ns >= 0 ? &ts : NULL, NULL);
			if (r == -ETIME) {
				fs_idle(S);
				continue;
			}
			if (r == -EINTR || r == -EAGAIN || r == -EBUSY)
				continue;
			if (r < 0) {
				mz_err("io_uring: queue %d: %s", q->qid, strerror(-r));
				break;
			}
		}
		bool locked = false, flush = false;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			seen++;
			if (cqe->user_data == UD_STOP) {
				stop = true;
				continue;
			}
			struct fs_ring_ent *e = (void *)(uintptr_t)cqe->user_data;
			if (cqe->res < 0) {
				/* the connection is gone (ENOTCONN, ECONNABORTED, or
				 * ECANCELED when the ring goes) or refused the entry */
				if (cqe->res != -ENOTCONN && cqe->res != -ECONNABORTED &&
				    cqe->res != -ECANCELED && !q->refused)
					mz_warn("io_uring: queue %d: entry ended: %s", q->qid,
						strerror(-cqe->res));
				if (e->live) {
					e->live = false;
					q->live--;
				}
				continue;
			}
			if (!locked) {
				pthread_mutex_lock(&S->lock);
				locked = true;
			}
			flush |= queue_request(q, e);
			prep_cmd(q, e, MZ_FUSE_IO_URING_CMD_COMMIT_AND_FETCH,
				 e->hdr->ring_ent_in_out.commit_id);
		}
		io_uring_cq_advance(&q->ring, seen);
		busy = locked; /* served a request: the next one may be close */
		if (locked)
			pthread_mutex_unlock(&S->lock);
		if (flush) {
			/* the replies first, then the commit of the catalog */
			io_uring_submit(&q->ring);
			pthread_mutex_lock(&S->lock);
			fs_flush(S);
			pthread_mutex_unlock(&S->lock);
		}
	}
}

static void queue_teardown(struct fs_queue *q)
{
	if (q->ring_ok)
		io_uring_queue_exit(&q->ring);
	q->ring_ok = false;
	for (int i = 0; i < FS_URING_DEPTH; i++) {
		struct fs_ring_ent *e = &q->ent[i];
		/* An entry the kernel still holds (stopped while mounted) may yet
		 * be written to until the ring's cancellation runs: keep its
		 * memory (this only happens when the server goes away). */
		if (e->mem && !e->live)
			munmap(e->mem, e->memlen);
	}
}

static void *queue_main(void *arg)
{
	struct fs_queue *q = arg;
	struct fs_uring *U = q->U;
	bool ok = queue_setup(q);
	pthread_mutex_lock(&U->mu);
	U->nready++;
	if (!ok)
		U->nfailed++;
	pthread_cond_broadcast(&U->cv);
	while (U->go == 0)
		pthread_cond_wait(&U->cv, &U->mu);
	bool go = U->go > 0;
	pthread_mutex_unlock(&U->mu);
	if (ok && go) {
		int r = queue_register(q);
		pthread_mutex_lock(&U->mu);
		U->nregistered++;
		if (r < 0 && q->refused) {
			U->nrefused++;
			U->refused_errno = -r;
		} else if (r < 0) {
			U->nbroken++;
		}
		pthread_cond_broadcast(&U->cv);
		pthread_mutex_unlock(&U->mu);
		/* Even refused, serve: other entries of this queue may be live,
		 * and the ring ends them at umount. */
		queue_serve(q);
	}
	queue_teardown(q);
	return NULL;
}

/* ---- all queues ---------------------------------------------------------------- */

static void uring_free(struct fs_server *S)
{
	struct fs_uring *U = S->uring;
	if (U == NULL)
		return;
	pthread_mutex_lock(&U->mu);
	if (U->go == 0)
		U->go = -1;
	pthread_cond_broadcast(&U->cv);
	pthread_mutex_unlock(&U->mu);
	if (U->stop_fd >= 0)
		eventfd_write(U->stop_fd, 1);
	for (int i = 0; i < U->nq; i++)
		if (U->q[i].started)
			pthread_join(U->q[i].thread, NULL);
	if (U->stop_fd >= 0)
		close(U->stop_fd);
	pthread_cond_destroy(&U->cv);
	pthread_mutex_destroy(&U->mu);
	free(U->q);
	free(U);
	S->uring = NULL;
}

bool fs_uring_prepare(struct fs_server *S)
{
	int nq = possible_cpus();
	if (nq <= 0 || nq > 65536) {
		mz_warn("io_uring: cannot read %s", CPU_POSSIBLE);
		return false;
	}
	struct fs_uring *U = xcalloc(1, sizeof(*U));
	S->uring = U;
	U->nq = nq;
	/* The kernel wants max(8 KiB, max_write, max_pages pages) per entry. */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	U->payload_size = (size_t)(FS_MAX_WRITE / 4096) * page;
	if (U->payload_size < FS_MAX_WRITE)
		U->payload_size = FS_MAX_WRITE;
	if (U->payload_size < 8192)
		U->payload_size = 8192;
	pthread_mutex_init(&U->mu, NULL);
	pthread_cond_init(&U->cv, NULL);
	U->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	U->q = xcalloc(nq, sizeof(*U->q));
	if (U->stop_fd < 0) {
		mz_warn("io_uring: eventfd: %s", strerror(errno));
		uring_free(S);
		return false;
	}
	/* The threads take no signals: the process's stay with the main one. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int started = 0;
	for (int i = 0; i < nq; i++) {
		struct fs_queue *q = &U->q[i];
		q->S = S;
		q->U = U;
		q->qid = i;
		int r = pthread_create(&q->thread, NULL, queue_main, q);
		if (r != 0) {
			mz_warn("io_uring: thread for CPU %d: %s", i, strerror(r));
			break;
		}
		q->started = true;
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&U->mu);
	while (U->nready < started)
		pthread_cond_wait(&U->cv, &U->mu);
	bool ok = started == nq && U->nfailed == 0;
	pthread_mutex_unlock(&U->mu);
	if (!ok)
		uring_free(S);
	return ok;
}

void fs_uring_start(struct fs_server *S, bool negotiated)
{
	struct fs_uring *U = S->uring;
	if (U == NULL)
		return;
	if (!negotiated) {
		uring_free(S);
		return;
	}
	pthread_mutex_lock(&U->mu);
	U->go = 1;
	pthread_cond_broadcast(&U->cv);
	while (U->nregistered < U->nq)
		pthread_cond_wait(&U->cv, &U->mu);
	int refused = U->nrefused, e = U->refused_errno, broken = U->nbroken;
	pthread_mutex_unlock(&U->mu);
	if (broken)
		return; /* logged by the queue */
	if (refused)
		mz_warn("io_uring: the kernel refused the rings (%s); serving through /dev/fuse",
			strerror(e));
	else
		mz_info("io_uring: %d queues, requests served on the CPU that makes them", U->nq);
}

void fs_uring_stop(struct fs_server *S)
{
	uring_free(S);
}

int fs_uring_reply(struct fs_server *S, const struct fs_req *r, int neg_errno,
		   const struct iovec *iov, int n)
{
	struct fs_ring_ent *e = r->ent;
	if (e->replied) {
		mz_warn("io_uring: request %llu answered twice", (unsigned long long)r->h->unique);
		return 0;
	}
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (neg_errno == 0 && len > e->q->U->payload_size) {
		mz_warn("io_uring: reply to opcode %u too large (%zu bytes)", r->h->opcode, len);
		neg_errno = -EIO;
	}
	if (neg_errno != 0) {
		len = 0;
	} else {
		/* memmove: a reply may quote the request, which sits there too */
		size_t off = 0;
		for (int i = 0; i < n; i++) {
			if (iov[i].iov_len)
				memmove(e->payload + off, iov[i].iov_base, iov[i].iov_len);
			off += iov[i].iov_len;
		}
	}
	struct fuse_out_header oh = {
		.len = sizeof(oh) + len, .error = neg_errno, .unique = r->h->unique};
	memcpy(e->hdr->in_out, &oh, sizeof(oh));
	e->hdr->ring_ent_in_out.payload_sz = len;
	e->replied = true;
	return 0;
}
