/*
 * pool.c — object files made ahead of need.
 *
 * A tree server makes an object file for every regular file a program
 * creates, and the program waits meanwhile.  Making the inode is most of
 * that, and on a journal-less ext4 (as on these machines) the inode
 * allocator also skips inodes deleted in the last minute, reading each one's
 * deletion time (`recently_deleted`): after earlier trees were dropped, that
 * alone was 6.8 % of all CPU time in an untar, a third of the server's.
 * Lustre's object servers precreate objects for the same reason.
 *
 * So a store handle that creates files in bursts (a tree server's, see
 * mz_store_set_pool) keeps up to POOL_MAX anonymous files ready, made by a
 * thread of their own (O_TMPFILE in objects/), and mz_object_create_private
 * only gives one a name (linkat).  An anonymous file that is never named
 * goes with its process, whatever way it ends: nothing for `store check` or
 * gc to find.  The thread starts at the first create, refills below
 * POOL_LOW, and after POOL_IDLE_NS without a create closes what it holds and
 * ends: an idle domain keeps neither the thread nor the inodes.
 */
#include "storeInt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../lib/util.h"

#define POOL_MAX 64
#define POOL_LOW 32
#define POOL_IDLE_NS (2 * 1000000000LL)

struct store_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the filler waits on it */
	int objects_fd;      /* the store's (lives longer than the pool) */
	int fd[POOL_MAX];
	int n;
	bool running;  /* the filler is at work or waiting */
	bool joinable; /* a filler was started and not joined yet */
	bool stop;
	int64_t last_take_ns; /* CLOCK_MONOTONIC */
	pthread_t th;
};

static void pool_drain(struct store_pool *p)
{
	while (p->n > 0)
		close(p->fd[--p->n]);
}

static void *pool_main(void *arg)
{
	struct store_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		while (p->n < POOL_MAX && !p->stop) {
			pthread_mutex_unlock(&p->lock);
			int fd = openat(p->objects_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
			pthread_mutex_lock(&p->lock);
			if (fd < 0) { /* full disk, say: creates make their own, and fail */
				p->stop = true;
				break;
			}
			p->fd[p->n++] = fd;
		}
		/* wait for the pool to run low, or give up once no create came
		 * for POOL_IDLE_NS (a slow creator keeps it, at no cost) */
		bool idle = false;
		while (!p->stop && p->n >= POOL_LOW && !idle) {
			int64_t at = p->last_take_ns + POOL_IDLE_NS;
			struct timespec until = {.tv_sec = at / 1000000000LL,
						 .tv_nsec = at % 1000000000LL};
			if (pthread_cond_timedwait(&p->wake, &p->lock, &until) == ETIMEDOUT)
				idle = mono_ns() >= p->last_take_ns + POOL_IDLE_NS;
		}
		if (idle) {
			pool_drain(p);
			break;
		}
	}
	p->running = false;
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void mz_store_set_pool(mz_store *s, bool on)
{
	if (on && s->pool == NULL) {
		struct store_pool *p = xcalloc(1, sizeof(*p));
		pthread_mutex_init(&p->lock, NULL);
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->wake, &ca);
		pthread_condattr_destroy(&ca);
		p->objects_fd = s->objects_fd;
		s->pool = p;
	} else if (!on && s->pool) {
		store_pool_free(s);
	}
}

int store_pool_take(mz_store *s)
{
	struct store_pool *p = s->pool;
	if (p == NULL)
		return -1;
	pthread_mutex_lock(&p->lock);
	p->last_take_ns = mono_ns();
	int fd = p->n > 0 ? p->fd[--p->n] : -1;
	if (p->n < POOL_LOW && !p->stop) {
		if (p->running) {
			pthread_cond_signal(&p->wake);
		} else {
			/* the last filler ended (idle): it let go of the lock for
			 * good, so it is joined at once */
			if (p->joinable)
				pthread_join(p->th, NULL);
			p->joinable = p->running = pthread_create(&p->th, NULL, pool_main, p) == 0;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return fd;
}

void store_pool_free(mz_store *s)
{
	struct store_pool *p = s->pool;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (p->joinable)
		pthread_join(p->th, NULL);
	pool_drain(p);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
	s->pool = NULL;
}
