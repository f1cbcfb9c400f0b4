/*
 * hosts.c — a domain's /etc/hosts and /etc/resolv.conf.
 *
 * Domains on one LAN find each other by name through /etc/hosts: mezzo writes
 * rundir/hosts (the supervisor bind-mounts it read-only over the domain's
 * /etc/hosts) with the domain's own addresses and those of every domain
 * holding a lease on one of its LANs.  Leases outlive restarts, so the file
 * changes only when a LAN's set of leases does; each LAN counts those
 * changes (hosts_gen) and each lease remembers the count its file was
 * written at, so a restart rewrites no one else's file, and a new member's
 * first start rewrites each running member's file once.
 *
 * A file is rewritten in place (truncate and write, under flock against a
 * concurrent writer): a bind mount holds the inode, so a rename would go
 * unseen.  A reader may catch the file half-written for a moment; the
 * resolver reads it again on its next lookup.
 */
#include "netInt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The hosts file of a domain on LANs lans[0..n) (in NIC order): the members
 * of those LANs, each under the address of the first of them it is on (the
 * domain itself among them).  It depends on the LANs only, not on the
 * domain: members of the same LANs share its text (mz_hosts_refresh_stale
 * makes it once for all of them). */
static int lans_hosts_text(mz_store *s, const int64_t *lans, size_t n, char **out, size_t *len,
			   mz_error_t *err)
{
	int r = 0;
	FILE *f = open_memstream(out, len);
	fprintf(f, "# mezzo: the domains of this domain's LANs (rewritten as they change)\n"
		   "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
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

static int hosts_text(mz_store *s, const char *domain, char **out, size_t *len, mz_error_t *err)
{
	cleanup_free int64_t *lans = NULL;
	size_t n = 0;
	int r = domain_lans(s, domain, &lans, &n, err);
	if (r < 0)
		return r;
	if (n)
		return lans_hosts_text(s, lans, n, out, len, err);
	FILE *f = open_memstream(out, len);
	fprintf(f, "# mezzo: %s is on no LAN\n"
		   "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		   "127.0.1.1\t%s\n",
		domain, domain);
	fclose(f);
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

static int resolv_text(mz_store *s, const char *domain, char **out, size_t *len, mz_error_t *err)
{
	struct mz_lease_rec *mine = NULL;
	size_t n = 0;
	int r = mz_lease_list(s, domain, 0, &mine, &n, err);
	if (r < 0)
		return r;
	bool way_out = false;
	for (size_t i = 0; i < n && !way_out; i++) {
		struct mz_lan_rec lan;
		if (mz_lan_rec_get_id(s, mine[i].lan, &lan, NULL) == 0 && !lan.isolated)
			way_out = true;
	}
	mz_lease_recs_free(mine, n);
	FILE *f = open_memstream(out, len);
	fprintf(f, "# mezzo: name servers for %s; its LAN members are in /etc/hosts\n", domain);
	if (way_out)
		put_nameservers(f);
	else
		fprintf(f, "# no LAN of this domain leads out: no name servers\n");
	fclose(f);
	return 0;
}

int mz_hosts_write(mz_store *s, const char *domain, const char *rundir, mz_error_t *err)
{
	cleanup_free char *hosts = NULL, *resolv = NULL;
	size_t hn = 0, rn = 0;
	int r = hosts_text(s, domain, &hosts, &hn, err);
	if (r == 0)
		r = resolv_text(s, domain, &resolv, &rn, err);
	if (r < 0)
		return r;
	cleanup_free char *hp = xasprintf("%s/hosts", rundir);
	cleanup_free char *rp = xasprintf("%s/resolv.conf", rundir);
	if ((r = put_in_place(hp, hosts, hn, true, err)) < 0)
		return r;
	return put_in_place(rp, resolv, rn, true, err);
}

void mz_hosts_refresh_stale(mz_store *s, const char *except)
{
	struct mz_lease_rec *v = NULL;
	size_t n = 0;
	if (mz_lease_list_stale(s, except, &v, &n, NULL) < 0 || n == 0) {
		mz_lease_recs_free(v, n);
		return;
	}
	/* one write per domain (its stale leases are adjacent: sorted by
	 * domain), one text per set of LANs (memo: the sets seen, and theirs) */
	struct memo {
		int64_t *lans;
		size_t n;
		char *text;
		size_t len;
	} *memo = NULL;
	size_t nmemo = 0;
	bool tx = mz_store_begin(s, NULL) == 0;
	for (size_t i = 0; i < n; i++) {
		bool first = i == 0 || strcmp(v[i].domain, v[i - 1].domain) != 0;
		int64_t *lans = NULL;
		size_t nl = 0;
		if (first && v[i].rundir && domain_lans(s, v[i].domain, &lans, &nl, NULL) == 0 &&
		    nl) {
			size_t k = 0;
			while (k < nmemo && !(memo[k].n == nl &&
					      memcmp(memo[k].lans, lans, nl * sizeof(*lans)) == 0))
				k++;
			if (k == nmemo) {
				memo = xrealloc(memo, (nmemo + 1) * sizeof(*memo));
				memo[k] = (struct memo){.lans = lans, .n = nl};
				lans = NULL;
				if (lans_hosts_text(s, memo[k].lans, nl, &memo[k].text, &memo[k].len,
						    NULL) < 0)
					memo[k].text = NULL;
				nmemo++;
			}
			cleanup_free char *hp = xasprintf("%s/hosts", v[i].rundir);
			mz_error_t e = NULL;
			/* no O_CREAT: a stopped domain's file is not brought back */
			if (memo[k].text)
				put_in_place(hp, memo[k].text, memo[k].len, false, &e);
			mz_error_release(&e);
		}
		free(lans);
		/* the count as read before the text was made: a change since
		 * leaves the lease stale for the next one to see */
		mz_lease_set_hosts_gen(s, v[i].id, v[i].lan_gen, NULL);
	}
	if (tx && mz_store_commit(s, NULL) < 0)
		mz_store_rollback(s);
	for (size_t k = 0; k < nmemo; k++) {
		free(memo[k].lans);
		free(memo[k].text);
	}
	free(memo);
	mz_lease_recs_free(v, n);
}
