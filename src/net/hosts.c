/*
 * hosts.c — a domain's /etc/hosts and /etc/resolv.conf.
 *
 * Domains on one LAN find each other by name through /etc/hosts.  Its text
 * depends only on the domain's LANs (in NIC order): every member of them,
 * under the address of the first of them it is on.  So the domains on the
 * same LANs share one file, STORE/run/hosts/L<id>[-<id>...], which each
 * supervisor bind-mounts read-only over its domain's /etc/hosts.  A start,
 * an rm or a LAN's removal rewrites each such file once, however many
 * domains share it: with a file per domain, a start on a LAN of N running
 * domains wrote N files of N lines (30 MB at N = 1000, 90 ms a start).
 *
 * A file is rewritten in place (new text over the old, then the tail cut,
 * under flock against a concurrent writer): a bind mount holds the inode,
 * so a rename would go unseen.  A reader may catch the file half-written
 * for a moment; the resolver reads it again on its next lookup.  Its first
 * line names the LANs' hosts_gen (which grows as their leases change), so
 * that a restart, which changes no lease, rewrites nothing.
 *
 * resolv.conf is the domain's own, in its run directory: small, written at
 * its start only.
 */
#include "netInt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"

/* Write content over path's file, in place; create: make it if missing.
 * The same content is not written again (a restart changes nothing), and
 * the new text goes over the old before the tail is cut, so a reader never
 * finds the file empty.  Truncating first costs ~0.1 ms on ext4. */
static int put_in_place(const char *path, const char *content, size_t n, bool create,
			mz_error_t *err)
{
	int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0);
	cleanup_close int fd = open(path, flags, 0644);
	if (fd < 0)
		return mz_error_sys(err, errno, "cannot open %s", path);
	if (flock(fd, LOCK_EX) < 0)
		return mz_error_sys(err, errno, "cannot lock %s", path);
	cleanup_free char *old = xmalloc(n + 1);
	ssize_t got = pread(fd, old, n + 1, 0);
	if (got == (ssize_t)n && memcmp(old, content, n) == 0)
		return 0;
	struct stat st;
	if (pwrite(fd, content, n, 0) != (ssize_t)n || fstat(fd, &st) < 0 ||
	    (st.st_size > (off_t)n && ftruncate(fd, (off_t)n) < 0))
		return mz_error_sys(err, errno, "cannot write %s", path);
	return 0;
}

/* Is name listed already?  (names[] holds n of them) */
static bool seen(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static void put_lease(FILE *f, const struct mz_lease_rec *l)
{
	char a4[16], a6[48];
	mz_ip4_fmt(l->ip4, a4);
	fprintf(f, "%s\t%s\n", a4, l->domain);
	if (l->has_ip6) {
		mz_ip6_fmt(l->ip6, a6);
		fprintf(f, "%s\t%s\n", a6, l->domain);
	}
}

/* The first line of the hosts file of LANs lans[0..n): it changes when
 * their leases do.  -ENOENT if one of them is gone. */
static int gen_tag(mz_store *s, const int64_t *lans, size_t n, char **out, mz_error_t *err)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	fputs("# mezzo: the domains of LANs", f);
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct mz_lan_rec lan;
		if ((r = mz_lan_rec_get_id(s, lans[i], &lan, err)) == 0)
			fprintf(f, " %s(%lld:%lld)", lan.name, (long long)lan.id,
				(long long)lan.hosts_gen);
	}
	fclose(f);
	if (r < 0) {
		free(*out);
		*out = NULL;
	}
	return r;
}

/* The hosts file of a domain on LANs lans[0..n) (in NIC order): the members
 * of those LANs, each under the address of the first of them it is on (the
 * domain itself among them), under the first line tag (gen_tag).  It
 * depends on the LANs only, not on the domain: members of the same LANs
 * share one file of it. */
static int lans_hosts_text(mz_store *s, const int64_t *lans, size_t n, const char *tag,
			   char **out, size_t *len, mz_error_t *err)
{
	int r = 0;
	FILE *f = open_memstream(out, len);
	fprintf(f, "%s\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", tag);
	char **names = NULL;
	size_t nnames = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct mz_lease_rec *m = NULL;
		size_t nm = 0;
		if ((r = mz_lease_list(s, NULL, lans[i], &m, &nm, err)) < 0)
			break;
		for (size_t j = 0; j < nm; j++) {
			/* a LAN lists a domain once (its leases are unique per
			 * LAN): only a later LAN's may repeat a name, so only
			 * those are looked up, and only the earlier ones kept
			 * (a linear list: one LAN of a thousand made every
			 * file O(N^2), every start O(N^3)) */
			if (i > 0 && seen(names, nnames, m[j].domain))
				continue;
			put_lease(f, &m[j]);
			if (i + 1 < n) {
				names = xrealloc(names, (nnames + 1) * sizeof(*names));
				names[nnames++] = xstrdup(m[j].domain);
			}
		}
		mz_lease_recs_free(m, nm);
	}
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	fclose(f);
	if (r < 0) {
		free(*out);
		*out = NULL;
	}
	return r;
}

/* The LANs of domain, in NIC order (*n 0: none). */
static int domain_lans(mz_store *s, const char *domain, int64_t **lans, size_t *n, mz_error_t *err)
{
	struct mz_lease_rec *mine = NULL;
	size_t nmine = 0;
	int r = mz_lease_list(s, domain, 0, &mine, &nmine, err);
	if (r < 0)
		return r;
	*lans = xcalloc(nmine ? nmine : 1, sizeof(**lans));
	for (size_t i = 0; i < nmine; i++)
		(*lans)[i] = mine[i].lan;
	*n = nmine;
	mz_lease_recs_free(mine, nmine);
	return 0;
}

/* Name servers a domain can reach: the host's, but for loopback ones (a
 * local stub is a host service, which LANs do not reach); where the host
 * has only a stub, systemd-resolved's list of its upstream servers. */
static void put_nameservers(FILE *f)
{
	static const char *const files[] = {"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"};
	for (size_t k = 0; k < ARRAY_SIZE(files); k++) {
		cleanup_file FILE *in = fopen(files[k], "re");
		if (in == NULL)
			continue;
		char line[512];
		int servers = 0;
		cleanup_free char *rest = NULL;
		size_t restn = 0;
		FILE *other = open_memstream(&rest, &restn);
		while (fgets(line, sizeof(line), in)) {
			char a[256];
			if (sscanf(line, "nameserver %255s", a) == 1) {
				if (strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0)
					continue;
				fprintf(f, "nameserver %s\n", a);
				servers++;
			} else if (strncmp(line, "search ", 7) == 0 || strncmp(line, "options ", 8) == 0) {
				fputs(line, other);
			}
		}
		fclose(other);
		if (servers) {
			fputs(rest, f);
			return;
		}
	}
	fprintf(f, "# the host has no name server a domain can reach\n");
}

/* The resolv.conf of domain, on LANs lans[0..n). */
static void resolv_text(mz_store *s, const char *domain, const int64_t *lans, size_t n,
			char **out, size_t *len)
{
	bool way_out = false;
	for (size_t i = 0; i < n && !way_out; i++) {
		struct mz_lan_rec lan;
		if (mz_lan_rec_get_id(s, lans[i], &lan, NULL) == 0 && !lan.isolated)
			way_out = true;
	}
	FILE *f = open_memstream(out, len);
	fprintf(f, "# mezzo: name servers for %s; its LAN members are in /etc/hosts\n", domain);
	if (way_out)
		put_nameservers(f);
	else
		fprintf(f, "# no LAN of this domain leads out: no name servers\n");
	fclose(f);
}

/* STORE/run/hosts/L<id>[-<id>...] for LANs lans[0..n) (n > 0). */
static char *set_path(mz_store *s, const int64_t *lans, size_t n)
{
	char *p = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&p, &len);
	fprintf(f, "%s/run/hosts/L", mz_store_root(s));
	for (size_t i = 0; i < n; i++)
		fprintf(f, i ? "-%lld" : "%lld", (long long)lans[i]);
	fclose(f);
	return p;
}

/* The LANs a set file's name lists; false if it is not one of ours. */
static bool set_parse(const char *name, int64_t **lans, size_t *n)
{
	*lans = NULL;
	*n = 0;
	if (name[0] != 'L')
		return false;
	const char *p = name + 1;
	while (*p) {
		char *end;
		errno = 0;
		long long id = strtoll(p, &end, 10);
		if (end == p || errno || id <= 0 || (*end && *end != '-') ||
		    *n >= MZ_NET_MAX_NICS) {
			free(*lans);
			*lans = NULL;
			*n = 0;
			return false;
		}
		*lans = xrealloc(*lans, (*n + 1) * sizeof(**lans));
		(*lans)[(*n)++] = id;
		p = *end ? end + 1 : end;
	}
	return *n > 0;
}

/* Bring the set file of lans[0..n) up to date: nothing if its first line
 * still names their generations, else the whole text again. */
static int set_update(mz_store *s, const char *path, const int64_t *lans, size_t n, bool create,
		      mz_error_t *err)
{
	cleanup_free char *tag = NULL;
	int r = gen_tag(s, lans, n, &tag, err);
	if (r < 0)
		return r;
	cleanup_file FILE *in = fopen(path, "re");
	if (in == NULL && !create)
		return 0; /* gone: nobody needs it */
	char line[1024];
	if (in && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, tag) == 0)
			return 0;
	}
	cleanup_free char *text = NULL;
	size_t len = 0;
	if ((r = lans_hosts_text(s, lans, n, tag, &text, &len, err)) < 0)
		return r;
	return put_in_place(path, text, len, create, err);
}

/* The set file of lans[0..n) (n > 0): *path, its directory made; the file
 * too (empty) if touch. */
static int set_file(mz_store *s, const int64_t *lans, size_t n, bool touch, char **path,
		    mz_error_t *err)
{
	cleanup_free char *dir = xasprintf("%s/run/hosts", mz_store_root(s));
	int r = mkdir_p(dir, 0755);
	if (r < 0)
		return mz_error_sys(err, -r, "cannot make %s", dir);
	cleanup_free char *p = set_path(s, lans, n);
	if (touch) {
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return mz_error_sys(err, errno, "cannot make %s", p);
		close(fd);
	}
	*path = steal_ptr(&p);
	return 0;
}

char *mz_hosts_file(mz_store *s, const char *domain, mz_error_t *err)
{
	cleanup_free int64_t *lans = NULL;
	size_t n = 0;
	char *path = NULL;
	if (domain_lans(s, domain, &lans, &n, err) < 0)
		return NULL;
	if (n == 0)
		mz_error(err, ENOENT, "domain '%s' is on no LAN", domain);
	else
		set_file(s, lans, n, true, &path, err);
	return path;
}

int mz_hosts_write(mz_store *s, const char *domain, const struct mz_lease_rec *leases, size_t n,
		   const char *rundir, mz_error_t *err)
{
	cleanup_free char *resolv = NULL, *hp = NULL;
	size_t rn = 0;
	cleanup_free int64_t *lans = xcalloc(n ? n : 1, sizeof(*lans));
	for (size_t i = 0; i < n; i++)
		lans[i] = leases[i].lan;
	resolv_text(s, domain, lans, n, &resolv, &rn);
	int r = 0;
	/* set_update makes the file if it is missing */
	if (n && (r = set_file(s, lans, n, false, &hp, err)) == 0)
		r = set_update(s, hp, lans, n, true, err);
	if (r < 0)
		return r;
	cleanup_free char *rp = xasprintf("%s/resolv.conf", rundir);
	return put_in_place(rp, resolv, rn, true, err);
}

void mz_hosts_refresh(mz_store *s, const char *domain)
{
	cleanup_free int64_t *mine = NULL;
	size_t nmine = 0;
	if (domain && (domain_lans(s, domain, &mine, &nmine, NULL) < 0 || nmine == 0))
		return;
	cleanup_free char *dir = xasprintf("%s/run/hosts", mz_store_root(s));
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int64_t *lans = NULL;
		size_t n = 0;
		if (!set_parse(e->d_name, &lans, &n))
			continue;
		bool mine_too = domain == NULL;
		for (size_t i = 0; i < n && !mine_too; i++)
			for (size_t j = 0; j < nmine && !mine_too; j++)
				mine_too = lans[i] == mine[j];
		cleanup_free char *path = xasprintf("%s/%s", dir, e->d_name);
		mz_error_t err = NULL;
		int r = mine_too ? set_update(s, path, lans, n, false, &err) : 0;
		if (r == -ENOENT)
			unlinkat(dirfd(d), e->d_name, 0); /* one of its LANs is gone */
		else if (r < 0)
			mz_warn("hosts file %s: %s", path, err ? err->msg : strerror(-r));
		mz_error_release(&err);
		free(lans);
	}
	closedir(d);
}
