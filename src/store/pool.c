/*
 * pool.c — object files made ahead of need.
 *
 * A tree server makes an object file for every regular file a program
 * creates, and the program waits meanwhile.  Making one is an inode and a
 * name in objects/xx/: on a journal-less ext4 (as on these machines) the
 * inode allocator also skips inodes deleted in the last minute, reading
 * each one's deletion time (`recently_deleted`), and the name is a scan of
 * the directory's block.  After earlier trees were dropped the first alone
 * was a third of the server's time in an untar; the name (a `linkat` of an
 * anonymous file, until session 10) was another tenth.  Lustre's object
 * servers precreate objects for the same reason.
 *
 * So a store handle that creates files in bursts (a tree server's, see
 * mz_store_set_pool) keeps up to POOL_MAX object files ready, made by a
 * thread of their own, each already named objects/xx/ID for an id reserved
 * for this handle: mz_object_create_private only writes its row.
 *
 * The ids.  The catalog hands out object ids by AUTOINCREMENT, which never
 * gives one out twice.  A reservation raises that counter (sqlite_sequence)
 * by POOL_IDS in a transaction of its own, committed before any of its files
 * is made, so neither another process nor a later row of ours can take
 * those ids; our rows then name them explicitly.  A reservation needs the
 * write lock outside any other transaction, so the server makes it after a
 * commit (store_pool_reserve) and makes its files itself until then.
 *
 * A file made and never used has no row.  The pool unlinks those when it
 * idles (POOL_IDLE_NS without a create) or closes; after a crash they are
 * orphans, which store check reports as garbage (not as problems) and gc
 * removes, like the files of an interrupted import.  A gc may also take a
 * live pool's file for an orphan (after the grace period, or with
 * MEZZO_ORPHAN_GRACE_SECONDS=0): a take checks that its file still has its
 * name, inside the transaction that writes its row, which holds the
 * catalog's write lock, under which alone gc unlinks (maint.c).
 */
#include "storeInt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"

#define POOL_MAX 64
#define POOL_LOW 32
#define POOL_IDS 1024
#define POOL_IDLE_NS (2 * 1000000000LL)
#define STR_(x) #x
#define STR(x) STR_(x)

struct store_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the filler waits on it */
	int objects_fd;      /* the store's (lives longer than the pool) */
	int fd[POOL_MAX];
	mz_oid id[POOL_MAX]; /* fd[i] is the file objects/../id[i] */
	int n;
	mz_oid next, end; /* reserved ids no file was made for yet: [next, end) */
	bool running;     /* the filler is at work or waiting */
	bool joinable;    /* a filler was started and not joined yet */
	bool stop;
	int64_t last_take_ns; /* CLOCK_MONOTONIC; 0 until the first take */
	pthread_t th;
};

/* Unlink and close the files made and not taken (they have no rows). */
static void pool_drain(struct store_pool *p)
{
	while (p->n > 0) {
		p->n--;
		char rel[32];
		mz_object_relpath(p->id[p->n], rel);
		if (unlinkat(p->objects_fd, rel, 0) < 0 && errno != ENOENT)
			mz_debug("pool: cannot remove unused objects/%s: %s", rel, strerror(errno));
		close(p->fd[p->n]);
	}
}

static void *pool_main(void *arg)
{
	struct store_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		while (p->n < POOL_MAX && p->next < p->end && !p->stop) {
			mz_oid id = p->next++;
			pthread_mutex_unlock(&p->lock);
			char rel[32];
			mz_object_relpath(id, rel);
			int fd = openat(p->objects_fd, rel,
					O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
			int e = errno;
			pthread_mutex_lock(&p->lock);
			if (fd >= 0) {
				p->id[p->n] = id;
				p->fd[p->n++] = fd;
			} else if (e != EEXIST) { /* a full disk, say: creates make their own, and fail */
				p->stop = true;
			} /* EEXIST: no file can have a reserved id; skip it all the same */
		}
		/* wait for the pool to run low (with ids to make more), or give up
		 * once no create came for POOL_IDLE_NS (a slow creator keeps it, at
		 * no cost) */
		bool idle = false;
		while (!p->stop && (p->n >= POOL_LOW || p->next >= p->end) && !idle) {
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

int store_pool_take(mz_store *s, mz_oid *id)
{
	struct store_pool *p = s->pool;
	if (p == NULL)
		return -1;
	pthread_mutex_lock(&p->lock);
	p->last_take_ns = mono_ns();
	int fd = -1;
	while (fd < 0 && p->n > 0) {
		p->n--;
		fd = p->fd[p->n];
		*id = p->id[p->n];
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_nlink == 0) { /* a gc took it for an orphan */
			close(fd);
			fd = -1;
		}
	}
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

void store_pool_reserve(mz_store *s)
{
	struct store_pool *p = s->pool;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	bool need = p->last_take_ns != 0 && !p->stop && p->end - p->next < POOL_MAX;
	pthread_mutex_unlock(&p->lock);
	if (!need)
		return;
	/* Not a wait for the lock in the middle of serving: if another process
	 * has it, the next commit asks again.  Every statement is reset at
	 * once, whatever it returned: a BEGIN left as it was after SQLITE_BUSY
	 * is an unfinished writer, and while one is unfinished SQLite ends no
	 * read transaction of this connection; the next BEGIN IMMEDIATE then
	 * starts from a read transaction, for which SQLite calls no busy
	 * handler, and meets another process's lock with an immediate
	 * SQLITE_BUSY (an EBUSY for the program that created a file; seen
	 * under `store gc` in a loop, test_fs.py). */
	sqlite3_busy_timeout(s->db, 0);
	mz_oid hi = 0;
	int rc = store_step_reset(s, "BEGIN IMMEDIATE");
	if (rc == SQLITE_DONE) {
		/* the counter's row exists once any object was made */
		rc = store_step_reset(s, "INSERT INTO sqlite_sequence(name, seq) "
					 "SELECT 'object', (SELECT IFNULL(MAX(id), 0) FROM object) "
					 "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence "
					 "WHERE name = 'object')");
		if (rc == SQLITE_DONE) {
			sqlite3_stmt *st = store_stmt(s, "UPDATE sqlite_sequence SET seq = seq + "
						      STR(POOL_IDS) " WHERE name = 'object' RETURNING seq");
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW) {
				hi = sqlite3_column_int64(st, 0);
				rc = sqlite3_step(st);
			}
			sqlite3_reset(st);
		}
		int end = store_step_reset(s, rc == SQLITE_DONE ? "COMMIT" : "ROLLBACK");
		if (end != SQLITE_DONE || rc != SQLITE_DONE) {
			mz_debug("pool: cannot reserve object ids: %s", sqlite3_errmsg(s->db));
			if (!sqlite3_get_autocommit(s->db))
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			hi = 0;
		}
	}
	sqlite3_busy_timeout(s->db, MZ_STORE_BUSY_MS);
	if (hi <= 0)
		return;
	pthread_mutex_lock(&p->lock);
	p->next = hi - POOL_IDS + 1;
	p->end = hi + 1;
	if (p->running)
		pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
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
