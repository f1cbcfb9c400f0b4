/*
 * util.h — cleanup attributes and small helpers shared by every module.
 *
 * `cleanup_free char *p = ...;` frees p when it goes out of scope, `cleanup_close
 * int fd = ...;` closes fd.  Hand ownership on with steal_pointer()/steal_fd().
 * This keeps error paths to a plain `return r;` instead of goto ladders.
 */
#ifndef MZ_UTIL_H
#define MZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

void cleanup_freep(void *p);
void cleanup_closep(int *fd);
void cleanup_fclosep(FILE **f);

#define cleanup_free __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))
#define cleanup_file __attribute__((cleanup(cleanup_fclosep)))

static inline void *steal_ptr(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_pointer(pp) steal_ptr(pp)

static inline int steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))

/* Allocation that never returns NULL: mezzo treats OOM in small allocations as
 * fatal, as SQLite and Redis do for their own bookkeeping. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Full read/write loops that retry on EINTR and short transfers. */
ssize_t read_all(int fd, void *buf, size_t n);
int write_all(int fd, const void *buf, size_t n);

/* Nanoseconds on CLOCK_REALTIME / CLOCK_MONOTONIC. */
int64_t now_ns(void);
int64_t mono_ns(void);
/* The process's soft limit of open files raised to its hard one (servers
 * keep many open); returns the soft limit it had, 0 if it was the hard one
 * already (or unreadable). */
unsigned long raise_nofile(void);

/* mkdir -p with mode; returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* "12.3 MiB": n bytes for people. */
const char *fmt_bytes(char buf[32], int64_t n);
/* s as a JSON string literal, quotes included. */
void json_put_str(FILE *f, const char *s);
/* Undo the \ooo octal escapes of /proc/self/mountinfo, in place. */
void unescape_octal(char *s);

/* Write a file atomically: tmp + fsync + rename + fsync(dir). */
int write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);

#endif
