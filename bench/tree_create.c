/*
 * tree_create.c — figure 1 of bench/run: making a new tree from a version.
 *
 * A domain starts from an immutable version with an empty delta, so making
 * its tree must cost the same however big the image is.  This program builds
 * a version of N regular files through the store API (every file names the
 * same sealed object: what is measured is naming, and one object keeps the
 * build fast), publishes it as an image, then times mz_tree_create() on it,
 * and the first lookup+getattr of a file in each new tree.  It also does the
 * peer measurements that need syscalls: the mount(2) of an overlayfs with an
 * empty upper over a native directory of N files, and that tree's first stat.
 *
 *   tree_create store ROOT N ITERS [IMAGE]
 *        build IMAGE (default bench-N) with N files, ~100 per directory, in
 *        ROOT's store and time ITERS tree creations; N may be 0 (an empty
 *        image, used by bench/run as the base of its scratch trees) and
 *        ITERS 0 (build only)
 *   tree_create native DIR N
 *        make the same shape natively: N names, ~100 per directory; the
 *        names of one directory are hard links of one empty file (like the
 *        store's shared object, and because ext4 slows down badly making
 *        200 000 inodes right after deleting many)
 *   tree_create overlay LOWER WORKDIR ITERS
 *        time ITERS overlay mounts (lower LOWER, empty upper) under WORKDIR
 *
 * Output: key=value lines, times in microseconds (*_us).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../src/store/store.h"

#define PER_DIR 100

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t wall_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Print median, mean, min and max of n samples (ns) as prefix_*_us. */
static void report(const char *prefix, int64_t *ns, int n)
{
	if (n == 0)
		return;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += ns[i];
	qsort(ns, n, sizeof(*ns), cmp_i64);
	printf("%s_median_us=%.3f\n%s_mean_us=%.3f\n%s_min_us=%.3f\n%s_max_us=%.3f\n", prefix,
	       ns[n / 2] / 1e3, prefix, sum / n / 1e3, prefix, ns[0] / 1e3, prefix,
	       ns[n - 1] / 1e3);
}

static int fail(mz_error_t *err, const char *what)
{
	fprintf(stderr, "tree_create: %s: %s\n", what, *err ? (*err)->msg : "failed");
	return 1;
}

/* The file every probe looks up: in the middle of the tree. */
static void probe_names(long n, char dir[32], char file[32])
{
	long i = n / 2;
	snprintf(dir, 32, "d%05ld", i / PER_DIR);
	snprintf(file, 32, "f%03ld", i % PER_DIR);
}

static int cmd_store(const char *root, long n, int iters, const char *image)
{
	mz_error_t err cleanup_error = NULL;
	mz_store *s = NULL;
	if (mz_store_open(root, &s, &err) < 0)
		return fail(&err, "open store");

	/* One sealed object for every file. */
	int fd = mz_object_tmpfile(s, &err);
	if (fd < 0)
		return fail(&err, "tmpfile");
	static const char content[] = "mezzo bench\n";
	if (write(fd, content, sizeof(content) - 1) != (ssize_t)sizeof(content) - 1) {
		perror("tree_create: write");
		return 1;
	}
	mz_oid obj;
	if (mz_object_seal_tmpfile(s, fd, NULL, &obj, &err) < 0)
		return fail(&err, "seal");
	close(fd);

	int64_t t0 = now_ns();
	mz_lid ver;
	if (mz_store_begin(s, &err) < 0 || mz_version_begin(s, 0, 0755, &ver, &err) < 0)
		return fail(&err, "begin version");
	mz_view *v;
	if (mz_view_open(s, ver, &v, &err) < 0)
		return fail(&err, "open building view");
	int64_t t = wall_ns();
	struct mz_inode da = {.mode = S_IFDIR | 0755, .atime_ns = t, .mtime_ns = t, .ctime_ns = t};
	struct mz_inode fa = {.mode = S_IFREG | 0644, .size = sizeof(content) - 1,
			      .atime_ns = t, .mtime_ns = t, .ctime_ns = t};
	mz_ino dir = 0;
	for (long i = 0; i < n; i++) {
		char name[32];
		if (i % PER_DIR == 0) {
			struct mz_inode out;
			snprintf(name, sizeof(name), "d%05ld", i / PER_DIR);
			if (mz_view_create(v, mz_view_root(v), name, &da, 0, NULL, &out, &err) < 0)
				return fail(&err, "mkdir");
			dir = out.ino;
		}
		snprintf(name, sizeof(name), "f%03ld", i % PER_DIR);
		if (mz_view_create(v, dir, name, &fa, obj, NULL, NULL, &err) < 0)
			return fail(&err, "create");
	}
	mz_view_close(v);
	char defname[64];
	if (image == NULL) {
		snprintf(defname, sizeof(defname), "bench-%ld", n);
		image = defname;
	}
	if (mz_version_publish(s, ver, image, true, &err) < 0 || mz_store_commit(s, &err) < 0)
		return fail(&err, "publish");
	int64_t t1 = now_ns();
	printf("image=%s\nversion=%lld\nfiles=%ld\nbuild_s=%.3f\n", image, (long long)ver, n,
	       (t1 - t0) / 1e9);
	if (iters <= 0)
		return 0;

	int64_t *create = calloc(iters, sizeof(int64_t));
	int64_t *vopen = calloc(iters, sizeof(int64_t));
	int64_t *first = calloc(iters, sizeof(int64_t));
	int64_t *drop = calloc(iters, sizeof(int64_t));
	mz_lid *trees = calloc(iters, sizeof(mz_lid));
	char dname[32], fname[32];
	probe_names(n, dname, fname);
	int nfirst = 0;
	for (int i = 0; i < iters; i++) {
		int64_t a = now_ns();
		if (mz_tree_create(s, ver, NULL, getpid(), &trees[i], &err) < 0)
			return fail(&err, "tree create");
		create[i] = now_ns() - a;
	}
	/* Afterwards, so that creation is measured back to back, each alone. */
	for (int i = 0; i < iters && n > 0; i++) {
		mz_view *tv;
		int64_t a = now_ns();
		if (mz_view_open(s, trees[i], &tv, &err) < 0)
			return fail(&err, "open tree");
		int64_t b = now_ns();
		mz_ino d, f;
		struct mz_inode attr;
		if (mz_view_lookup(tv, mz_view_root(tv), dname, &d, &err) < 0 ||
		    mz_view_lookup(tv, d, fname, &f, &err) < 0 ||
		    mz_view_getattr(tv, f, &attr, &err) < 0)
			return fail(&err, "lookup in new tree");
		int64_t c = now_ns();
		vopen[i] = b - a;
		first[i] = c - b;
		nfirst++;
		mz_view_close(tv);
	}
	for (int i = 0; i < iters; i++) {
		int64_t a = now_ns();
		if (mz_layer_remove(s, trees[i], true, &err) < 0)
			return fail(&err, "remove tree");
		drop[i] = now_ns() - a;
	}
	printf("iters=%d\nprobe=%s/%s\n", iters, dname, fname);
	report("create", create, iters);
	report("view_open", vopen, nfirst);
	report("first_lookup_getattr", first, nfirst);
	report("drop", drop, iters);
	mz_store_close(s);
	return 0;
}

static int cmd_native(const char *root, long n)
{
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	int64_t t0 = now_ns();
	int dfd = -1;
	for (long i = 0; i < n; i++) {
		char name[64];
		if (i % PER_DIR == 0) {
			if (dfd >= 0)
				close(dfd);
			snprintf(name, sizeof(name), "%s/d%05ld", root, i / PER_DIR);
			if (mkdir(name, 0755) < 0 && errno != EEXIST) {
				perror(name);
				return 1;
			}
			dfd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd < 0) {
				perror(name);
				return 1;
			}
		}
		snprintf(name, sizeof(name), "f%03ld", i % PER_DIR);
		if (i % PER_DIR == 0) {
			int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (fd < 0) {
				perror(name);
				return 1;
			}
			close(fd);
		} else if (linkat(dfd, "f000", dfd, name, 0) < 0 && errno != EEXIST) {
			perror(name);
			return 1;
		}
	}
	if (dfd >= 0)
		close(dfd);
	printf("files=%ld\nbuild_s=%.3f\n", n, (now_ns() - t0) / 1e9);
	return 0;
}

static int cmd_overlay(const char *lower, const char *work, int iters, long n)
{
	int64_t *mnt = calloc(iters, sizeof(int64_t));
	int64_t *first = calloc(iters, sizeof(int64_t));
	int64_t *umnt = calloc(iters, sizeof(int64_t));
	char dname[32], fname[32];
	probe_names(n, dname, fname);
	for (int i = 0; i < iters; i++) {
		char up[4096], wk[4096], mp[4096], opts[8192 + 64], probe[4200];
		snprintf(up, sizeof(up), "%s/upper%d", work, i);
		snprintf(wk, sizeof(wk), "%s/work%d", work, i);
		snprintf(mp, sizeof(mp), "%s/mnt%d", work, i);
		if (mkdir(up, 0755) < 0 || mkdir(wk, 0755) < 0 || mkdir(mp, 0755) < 0) {
			perror("tree_create: mkdir");
			return 1;
		}
		snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, up, wk);
		int64_t a = now_ns();
		if (mount("overlay", mp, "overlay", 0, opts) < 0) {
			perror("tree_create: mount overlay");
			return 1;
		}
		int64_t b = now_ns();
		struct stat st;
		if (n > 0) {
			snprintf(probe, sizeof(probe), "%s/%s/%s", mp, dname, fname);
			if (stat(probe, &st) < 0) {
				perror(probe);
				umount2(mp, MNT_DETACH);
				return 1;
			}
		}
		int64_t c = now_ns();
		if (umount2(mp, 0) < 0) {
			perror("tree_create: umount overlay");
			return 1;
		}
		int64_t d = now_ns();
		mnt[i] = b - a;
		first[i] = c - b;
		umnt[i] = d - c;
		char wkw[4200];
		snprintf(wkw, sizeof(wkw), "%s/work", wk);
		rmdir(wkw);
		rmdir(wk);
		rmdir(up);
		rmdir(mp);
	}
	printf("iters=%d\n", iters);
	report("mount", mnt, iters);
	if (n > 0)
		report("first_stat", first, iters);
	report("umount", umnt, iters);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 5 && strcmp(argv[1], "store") == 0)
		return cmd_store(argv[2], atol(argv[3]), atoi(argv[4]), argc > 5 ? argv[5] : NULL);
	if (argc == 4 && strcmp(argv[1], "native") == 0)
		return cmd_native(argv[2], atol(argv[3]));
	if (argc >= 5 && strcmp(argv[1], "overlay") == 0)
		return cmd_overlay(argv[2], argv[3], atoi(argv[4]),
				   argc > 5 ? atol(argv[5]) : 0);
	fprintf(stderr, "usage: tree_create store ROOT N ITERS [IMAGE]\n"
			"       tree_create native DIR N\n"
			"       tree_create overlay LOWER WORKDIR ITERS [N]\n");
	return 2;
}
