/*
 * io.c — the I/O micro-benchmarks behind bench/run (figures 2, 3, 4 and 6).
 *
 * Each subcommand does one measured thing on a path it is given, so the very
 * same code runs against a mezzo mount, a native ext4 directory and an
 * overlayfs mount; bench/run compares the numbers.  Output is key=value lines
 * (times in seconds or microseconds as the key says) for bench/run to parse.
 *
 *   io write FILE MIB [BS]    sequential pwrite()s of BS bytes (default 1 MiB,
 *                             a power of two) into FILE, opened
 *                             O_CREAT|O_TRUNC; times without and with fsync,
 *                             from after the open (a truncating open of a big
 *                             file costs what freeing its blocks costs)
 *   io read FILE              sequential 1 MiB pread()s to EOF
 *   io randread FILE COUNT    COUNT 4 KiB pread()s at random 4 KiB-aligned
 *                             offsets (fixed seed: same offsets every run)
 *   io openlat FILE COUNT     open(O_RDONLY)+close() of an existing file,
 *                             each call timed: median, mean, p99
 *   io statlat FILE COUNT     stat() of an existing file, the same way
 *   io readtree DIR           read every regular file under DIR (no symlinks
 *                             followed, one file system); bytes and files
 *   io resident DIR           page-cache bytes of the regular files under DIR
 *                             (mmap + mincore, nothing is faulted in)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUF (1u << 20)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "io: %s %s: %s\n", what, path ? path : "", strerror(errno));
	exit(1);
}

static void *xbuf(size_t n)
{
	void *p;
	if (posix_memalign(&p, 4096, n) != 0) {
		fprintf(stderr, "io: out of memory\n");
		exit(1);
	}
	/* not zeros: a file system must not get away with holes */
	for (size_t i = 0; i < n; i++)
		((unsigned char *)p)[i] = (unsigned char)(i * 131 + 7);
	return p;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static int cmd_write(const char *path, long mib, long bs)
{
	unsigned char *b = xbuf(BUF);
	long n = mib * (BUF / bs);
	double to = now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open", path);
	double t0 = now();
	for (long i = 0; i < n; i++) {
		b[0] = (unsigned char)i; /* every block different */
		if (pwrite(fd, b, bs, (off_t)i * bs) != (ssize_t)bs)
			die("pwrite", path);
	}
	double t1 = now();
	if (fsync(fd) < 0)
		die("fsync", path);
	double t2 = now();
	close(fd);
	printf("bytes=%lld\nopen_s=%.6f\nnofsync_s=%.6f\nfsync_s=%.6f\n", (long long)mib * BUF,
	       t0 - to, t1 - t0, t2 - t0);
	return 0;
}

static int cmd_read(const char *path)
{
	unsigned char *b = xbuf(BUF);
	double t0 = now();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open", path);
	long long total = 0;
	for (;;) {
		ssize_t n = pread(fd, b, BUF, total);
		if (n < 0)
			die("pread", path);
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	double t1 = now();
	printf("bytes=%lld\nsecs=%.6f\n", total, t1 - t0);
	return 0;
}

static int cmd_randread(const char *path, long count)
{
	unsigned char *b = xbuf(4096);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat", path);
	uint64_t blocks = st.st_size / 4096;
	if (blocks == 0) {
		fprintf(stderr, "io: %s is smaller than 4 KiB\n", path);
		return 1;
	}
	off_t *off = malloc(count * sizeof(*off));
	for (long i = 0; i < count; i++)
		off[i] = (off_t)(next_rand() % blocks) * 4096;
	double t0 = now();
	for (long i = 0; i < count; i++)
		if (pread(fd, b, 4096, off[i]) != 4096)
			die("pread", path);
	double t1 = now();
	close(fd);
	printf("reads=%ld\nsecs=%.6f\niops=%.0f\nus_per_read=%.3f\n", count, t1 - t0,
	       count / (t1 - t0), (t1 - t0) * 1e6 / count);
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void latency_report(int64_t *ns, long count)
{
	double sum = 0;
	for (long i = 0; i < count; i++)
		sum += ns[i];
	qsort(ns, count, sizeof(*ns), cmp_i64);
	printf("calls=%ld\nmedian_us=%.3f\nmean_us=%.3f\np90_us=%.3f\np99_us=%.3f\nmax_us=%.3f\n",
	       count, ns[count / 2] / 1e3, sum / count / 1e3, ns[count * 9 / 10] / 1e3,
	       ns[count * 99 / 100] / 1e3, ns[count - 1] / 1e3);
}

static int cmd_openlat(const char *path, long count)
{
	int64_t *ns = malloc(count * sizeof(*ns));
	for (long i = 0; i < count / 10 + 100; i++) { /* warm up */
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", path);
		close(fd);
	}
	for (long i = 0; i < count; i++) {
		int64_t t0 = now_ns();
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", path);
		close(fd);
		ns[i] = now_ns() - t0;
	}
	latency_report(ns, count);
	return 0;
}

static int cmd_statlat(const char *path, long count)
{
	int64_t *ns = malloc(count * sizeof(*ns));
	struct stat st;
	for (long i = 0; i < count / 10 + 100; i++)
		if (stat(path, &st) < 0)
			die("stat", path);
	for (long i = 0; i < count; i++) {
		int64_t t0 = now_ns();
		if (stat(path, &st) < 0)
			die("stat", path);
		ns[i] = now_ns() - t0;
	}
	latency_report(ns, count);
	return 0;
}

static long long tree_bytes, tree_files, tree_errors;
static unsigned char *tree_buf;

static int read_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	if (type != FTW_F || !S_ISREG(sb->st_mode))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		tree_errors++;
		return 0;
	}
	for (;;) {
		ssize_t n = read(fd, tree_buf, BUF);
		if (n < 0) {
			tree_errors++;
			break;
		}
		if (n == 0)
			break;
		tree_bytes += n;
	}
	close(fd);
	tree_files++;
	return 0;
}

static int resident_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	if (type != FTW_F || !S_ISREG(sb->st_mode) || sb->st_size == 0)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		tree_errors++;
		return 0;
	}
	size_t len = sb->st_size;
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		tree_errors++;
		return 0;
	}
	size_t pages = (len + 4095) / 4096;
	unsigned char *vec = malloc(pages);
	if (mincore(m, len, vec) == 0) {
		for (size_t i = 0; i < pages; i++)
			if (vec[i] & 1)
				tree_bytes += 4096;
	} else {
		tree_errors++;
	}
	free(vec);
	munmap(m, len);
	tree_files++;
	return 0;
}

static int cmd_walk(const char *dir, bool resident)
{
	tree_buf = xbuf(BUF);
	double t0 = now();
	if (nftw(dir, resident ? resident_one : read_one, 64, FTW_PHYS | FTW_MOUNT) < 0)
		die("walk", dir);
	double t1 = now();
	printf("bytes=%lld\nfiles=%lld\nerrors=%lld\nsecs=%.6f\n", tree_bytes, tree_files,
	       tree_errors, t1 - t0);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: io write FILE MIB [BS] | read FILE | randread FILE COUNT |\n"
			"       openlat FILE COUNT | statlat FILE COUNT | readtree DIR |\n"
			"       resident DIR\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1], *path = argv[2];
	long n = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(cmd, "write") == 0 && n > 0) {
		long bs = argc > 4 ? strtol(argv[4], NULL, 10) : BUF;
		if (bs < 512 || bs > BUF || BUF % bs != 0)
			return usage();
		return cmd_write(path, n, bs);
	}
	if (strcmp(cmd, "read") == 0)
		return cmd_read(path);
	if (strcmp(cmd, "randread") == 0 && n > 0)
		return cmd_randread(path, n);
	if (strcmp(cmd, "openlat") == 0 && n > 0)
		return cmd_openlat(path, n);
	if (strcmp(cmd, "statlat") == 0 && n > 0)
		return cmd_statlat(path, n);
	if (strcmp(cmd, "readtree") == 0)
		return cmd_walk(path, false);
	if (strcmp(cmd, "resident") == 0)
		return cmd_walk(path, true);
	return usage();
}
