/*
 * mounts.c — finding a store's mounted trees in /proc/self/mountinfo.
 *
 * A tree is mounted with the source "mezzo:ID@STORE-ROOT" and the type
 * fuse.mezzo, so the kernel's own mount table says which tree is where and
 * no registry of mezzo's can go stale after a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "fs.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
int mz_fs_foreach_mount(const char *store_root,
			int (*cb)(mz_lid tree, const char *mountpoint, void *arg), void *arg)
{
	cleanup_file FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return -errno;
	cleanup_free char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mountpoint opts [optional...] - type source super */
		char *sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		char type[64], source[4096];
		if (sscanf(sep + 3, "%63s %4095s", type, source) != 2 ||
		    strcmp(type, "fuse.mezzo") != 0)
			continue;
		unescape_octal(source);
		long long id;
		int off = 0;
		if (sscanf(source, "mezzo:%lld@%n", &id, &off) != 1 || off == 0)
			continue;
		if (store_root && strcmp(source + off, store_root) != 0)
			continue;
		char mp[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		unescape_octal(mp);
		int r = cb(id, mp, arg);
		if (r != 0)
			return r;
	}
	return 0;
}
