/*
 * idmap.c — the domain's id range: domain ids 0..count-1 are host ids
 * base..base+count-1, so root in a domain is an unprivileged host uid and
 * every domain's files and processes belong to ids no other domain (and no
 * host user) has.
 *
 * The maps are written by the spawner, which is privileged in the parent
 * user namespace.  Because it holds CAP_SETGID there, the kernel accepts the
 * gid map without "deny" in /proc/PID/setgroups: root in the domain keeps
 * setgroups(2), which su, login and apt's privilege dropping need.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "../lib/util.h"
#include "runtimeInt.h"

static int write_map(pid_t pid, const char *file, unsigned long base, unsigned long count,
		     mz_error_t *err)
{
	char path[64], line[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int n = snprintf(line, sizeof(line), "0 %lu %lu\n", base, count);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return mz_error_sys(err, errno, "cannot open %s", path);
	/* one write(2): the kernel takes a map in a single write only */
	ssize_t w = write(fd, line, (size_t)n);
	int e = errno;
	close(fd);
	if (w != n)
		return mz_error_sys(err, w < 0 ? e : EIO, "cannot write %s (0 %lu %lu)", path, base,
				    count);
	return 0;
}

int mz_idmap_write(pid_t pid, const struct mz_domain_spec *s, mz_error_t *err)
{
	int r = write_map(pid, "uid_map", s->uid_base, s->uid_count, err);
	if (r == 0)
		r = write_map(pid, "gid_map", s->gid_base, s->gid_count, err);
	return r;
}
