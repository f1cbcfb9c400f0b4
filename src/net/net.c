/*
 * net.c — LANs and the domains on them: the API of net.h.
 *
 * The catalog says what should be (LANs, leases, forwards); the kernel holds
 * what is (bridges, veths, nftables elements).  Every kernel object is named
 * from a catalog id and the store's tag, so the two can always be compared:
 * mz_net_cleanup_orphans removes what the kernel has and the catalog does not
 * want, and an attach that finds its table gone rebuilds the whole rule set
 * from the catalog.
 *
 * Ordering for crash safety: a lease is marked attached before anything of
 * it enters the kernel, and detached only after its elements are out, so a
 * crash at any point leaves at worst an attached lease with nothing (or a
 * dead veth) behind it, which cleanup recognises.  Attach and detach hold a
 * shared lock on ROOT/run/net.lock, cleanup an exclusive one, so cleanup
 * never mistakes an attach in progress for the leftovers of a crash.
 */
#include "netInt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "netlinkInt.h"

/* ---- names ------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *p)
{
	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

static unsigned tag_value(mz_store *s)
{
	/* A tag, not a secret (as the cgroup tag of supervisor.c). */
	uint64_t h = fnv1a(1469598103934665603ULL, mz_store_root(s));
	return (unsigned)((h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) & 0xffff);
}

void mz_net_tag(mz_store *s, char out[8])
{
	snprintf(out, 8, "mz%04x", tag_value(s));
}

/* Ids past 8 digits would not fit IFNAMSIZ; 10^8 LANs or domain creations. */
#define MZ_NET_MAX_ID 99999999

void mz_net_bridge_name(mz_store *s, int64_t lan_id, char out[16])
{
	snprintf(out, 16, "mz%04x-%u", tag_value(s) & 0xffff,
		 (unsigned)(lan_id % (MZ_NET_MAX_ID + 1)) % 100000000u);
}

void mz_net_veth_name(mz_store *s, int64_t lease_id, char variant, char out[16])
{
	snprintf(out, 16, "mz%04x%c%u", tag_value(s) & 0xffff,
		 variant && strchr(MZ_NET_VETH_VARIANTS, variant) ? variant : 'v',
		 (unsigned)(lease_id % (MZ_NET_MAX_ID + 1)) % 100000000u);
}

uint32_t mz_net_fast_block(mz_store *s, int64_t lan_id)
{
	/* Past 16 bits a LAN's id would share a block with another LAN: such
	 * a LAN keeps the bridge only. */
	if (lan_id < 1 || lan_id > 0xffff)
		return 0;
	return (uint32_t)tag_value(s) << 16 | (uint32_t)lan_id;
}

bool mz_net_link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

/* The store's IPv6 ULA /48: fd + 40 bits of a hash of the machine and root
 * (RFC 4193 asks for a pseudo-random global ID). */
static void store_ula48(mz_store *s, uint8_t out[6])
{
	char mid[64] = "";
	cleanup_file FILE *f = fopen("/etc/machine-id", "re");
	if (f && fgets(mid, sizeof(mid), f) == NULL)
		mid[0] = '\0';
	uint64_t h = fnv1a(fnv1a(1469598103934665603ULL, mid), mz_store_root(s));
	out[0] = 0xfd;
	for (int i = 1; i < 6; i++, h >>= 8)
		out[i] = (uint8_t)h;
}

/* ---- the lock between attaches and cleanup ----------------------------- */

static int net_lock(mz_store *s, int how, mz_error_t *err)
{
	cleanup_free char *p = xasprintf("%s/run/net.lock", mz_store_root(s));
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return mz_error_sys(err, errno, "cannot open %s", p);
	while (flock(fd, how) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return mz_error_sys(err, e, "cannot lock %s", p);
		}
	}
	return fd;
}

/* ---- checking subnets ---------------------------------------------------- */

struct special {
	const char *cidr, *what;
};

static int subnet_check(const struct mz_cidr *c, const char *text, mz_error_t *err)
{
	static const struct special v4[] = {
		{"0.0.0.0/8", "\"this network\""}, {"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"}, {"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
	};
	static const struct special v6[] = {
		{"::/8", "reserved (loopback, IPv4-mapped)"}, {"fe80::/10", "link-local"},
		{"ff00::/8", "multicast"},
	};
	const struct special *sp = c->family == AF_INET ? v4 : v6;
	size_t n = c->family == AF_INET ? ARRAY_SIZE(v4) : ARRAY_SIZE(v6);
	for (size_t i = 0; i < n; i++) {
		struct mz_cidr x;
		mz_cidr_parse(sp[i].cidr, 0, &x, NULL);
		if (mz_cidr_overlap(c, &x))
			return mz_error(err, EINVAL, "subnet %s is in the %s range %s", text, sp[i].what,
					sp[i].cidr);
	}
	if (c->family == AF_INET && (c->len < 8 || c->len > 30))
		return mz_error(err, EINVAL, "subnet %s: the prefix must be /8 to /30 (a LAN needs "
				"a network, a host, a domain and a broadcast address)", text);
	if (c->family == AF_INET6 && (c->len < 48 || c->len > 112))
		return mz_error(err, EINVAL, "IPv6 subnet %s: the prefix must be /48 to /112", text);
	return 0;
}

static int overlap_check(const struct mz_cidr *c, const struct mz_lan_rec *lans, size_t nlans,
			 const struct mz_cidr *routes, size_t nroutes, mz_error_t *err)
{
	char a[64], b[64];
	mz_cidr_fmt(c, a);
	for (size_t i = 0; i < nlans; i++) {
		struct mz_cidr l4, l6;
		mz_lan_cidrs(&lans[i], &l4, &l6);
		const struct mz_cidr *l = c->family == AF_INET ? &l4 : &l6;
		if (l->len && mz_cidr_overlap(c, l)) {
			mz_cidr_fmt(l, b);
			return mz_error(err, EEXIST, "subnet %s overlaps LAN '%s' (%s)", a, lans[i].name,
					b);
		}
	}
	for (size_t i = 0; i < nroutes; i++) {
		if (mz_cidr_overlap(c, &routes[i])) {
			mz_cidr_fmt(&routes[i], b);
			return mz_error(err, EEXIST, "subnet %s collides with the host's route to %s "
					"(see 'ip route'): choose another with --subnet", a, b);
		}
	}
	return 0;
}

static int lan_create(mz_store *s, const char *name, const struct mz_lan_opts *o, int len4,
		      struct mz_lan_rec *out, mz_error_t *err)
{
	int r = mz_lan_name_check(name, err);
	if (r < 0)
		return r;
	if (o->nat && o->isolated)
		return mz_error(err, EINVAL, "a LAN cannot be --nat and --isolated at once");
	struct mz_cidr c4 = {0}, c6 = {0};
	bool want6 = !(o->subnet6 && strcmp(o->subnet6, "none") == 0);
	if (o->subnet) {
		if ((r = mz_cidr_parse(o->subnet, AF_INET, &c4, err)) < 0 ||
		    (r = subnet_check(&c4, o->subnet, err)) < 0)
			return r;
	}
	if (want6 && o->subnet6) {
		if ((r = mz_cidr_parse(o->subnet6, AF_INET6, &c6, err)) < 0 ||
		    (r = subnet_check(&c6, o->subnet6, err)) < 0)
			return r;
		int need = 32 - (o->subnet ? c4.len : len4);
		if (128 - c6.len < need)
			return mz_error(err, EINVAL, "IPv6 subnet %s is too small: a domain's IPv6 "
					"address has its IPv4 host number, %d bits", o->subnet6, need);
	}
	struct mz_cidr *routes = NULL;
	size_t nroutes = 0;
	if ((r = mz_host_routes(&routes, &nroutes, err)) < 0)
		return r;
	struct mz_lan_rec *lans = NULL;
	size_t nlans = 0;
	if ((r = mz_store_begin(s, err)) < 0) {
		free(routes);
		return r;
	}
	r = mz_lan_rec_list(s, &lans, &nlans, err);
	/* Taken: other LANs' subnets and the host's routes. */
	struct mz_cidr *taken = xcalloc(nroutes + 2 * nlans + 1, sizeof(*taken));
	size_t nt = 0;
	for (size_t i = 0; i < nroutes; i++)
		taken[nt++] = routes[i];
	for (size_t i = 0; i < nlans; i++) {
		mz_lan_cidrs(&lans[i], &taken[nt], &taken[nt + 1]);
		nt += lans[i].len6 ? 2 : 1;
	}
	char tag[8];
	mz_net_tag(s, tag);
	if (r == 0 && o->subnet)
		r = overlap_check(&c4, lans, nlans, routes, nroutes, err);
	else if (r == 0)
		r = mz_subnet_pick4(taken, nt, len4, (uint32_t)strtoul(tag + 2, NULL, 16), &c4, err);
	if (r == 0 && want6 && o->subnet6)
		r = overlap_check(&c6, lans, nlans, routes, nroutes, err);
	else if (r == 0 && want6) {
		uint8_t ula[6];
		store_ula48(s, ula);
		r = mz_subnet_pick6(taken, nt, ula, &c6, err);
	}
	if (r == 0) {
		memset(out, 0, sizeof(*out));
		snprintf(out->name, sizeof(out->name), "%s", name);
		out->net4 = ntohl(*(uint32_t *)c4.addr);
		out->len4 = c4.len;
		if (want6) {
			memcpy(out->net6, c6.addr, 16);
			out->len6 = c6.len;
		}
		out->nat = o->nat;
		out->isolated = o->isolated;
		r = mz_lan_rec_create(s, out, err);
	}
	free(taken);
	free(lans);
	free(routes);
	if (r < 0) {
		mz_store_rollback(s);
		return r;
	}
	return mz_store_commit(s, err);
}

int mz_net_lan_create(mz_store *s, const char *name, const struct mz_lan_opts *o,
		      struct mz_lan_rec *out, mz_error_t *err)
{
	return lan_create(s, name, o, 24, out, err);
}

int mz_net_lan_default(mz_store *s, struct mz_lan_rec *out, mz_error_t *err)
{
	if (mz_lan_rec_get(s, MZ_NET_DEFAULT_LAN, out, NULL) == 0)
		return 0;
	/* A /20: the LAN everyone is on holds 4093 domains. */
	struct mz_lan_opts o = {.nat = true};
	mz_error_t e = NULL;
	int r = lan_create(s, MZ_NET_DEFAULT_LAN, &o, 20, out, &e);
	if (r == -EEXIST && mz_lan_rec_get(s, MZ_NET_DEFAULT_LAN, out, NULL) == 0)
		r = 0; /* another process made it meanwhile */
	else if (r < 0)
		mz_error(err, -r, "cannot make the default LAN: %s", e ? e->msg : "?");
	mz_error_release(&e);
	return r;
}

/* ---- nftables state from the catalog -------------------------------------- */

/* The lease a domain's forwards go to: its lowest NIC. */
static const struct mz_lease_rec *fwd_target(const struct mz_lease_rec *v, size_t n,
					      const char *domain)
{
	const struct mz_lease_rec *best = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].domain, domain) == 0 && (best == NULL || v[i].nic < best->nic))
			best = &v[i];
	return best;
}

static void put_domain(FILE *f, mz_store *s, const char *tag, const struct mz_lease_rec *v,
		       size_t n, const struct mz_fwd_rec *fw, size_t nfw, bool add)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].veth[0]) {
			mz_nft_put_lease(f, tag, &v[i], v[i].veth, add);
			mz_nft_put_rate(f, tag, &v[i], v[i].veth, add);
		}
	}
	for (size_t i = 0; i < nfw; i++) {
		const struct mz_lease_rec *to = fwd_target(v, n, fw[i].domain);
		if (to)
			mz_nft_put_fwd(f, tag, &fw[i], to, add);
	}
}

/* The whole rule set as the catalog wants it: tables, every LAN, every
 * attached lease and its domain's forwards. */
static int nft_rebuild(mz_store *s, mz_error_t *err)
{
	char tag[8];
	mz_net_tag(s, tag);
	struct mz_lan_rec *lans = NULL;
	struct mz_lease_rec *leases = NULL;
	struct mz_fwd_rec *fw = NULL;
	size_t nl = 0, nle = 0, nfw = 0;
	int r = mz_lan_rec_list(s, &lans, &nl, err);
	if (r == 0)
		r = mz_lease_list(s, NULL, 0, &leases, &nle, err);
	if (r == 0)
		r = mz_fwd_list(s, NULL, &fw, &nfw, err);
	if (r == 0) {
		cleanup_free char *cmds = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&cmds, &len);
		mz_nft_put_base(f, tag);
		for (size_t i = 0; i < nl; i++) {
			char br[16];
			mz_net_bridge_name(s, lans[i].id, br);
			mz_nft_put_lan(f, tag, &lans[i], br, true);
		}
		/* attached leases only, first in the array */
		size_t k = 0;
		for (size_t i = 0; i < nle; i++)
			if (leases[i].attached) {
				struct mz_lease_rec t = leases[k];
				leases[k++] = leases[i];
				leases[i] = t;
			}
		put_domain(f, s, tag, leases, k, fw, nfw, true);
		fclose(f);
		r = mz_nft_run(cmds, "load mezzo's rule set", NULL, err);
	}
	free(lans);
	mz_lease_recs_free(leases, nle);
	free(fw);
	return r;
}

/* ---- sysctls of a bridge ------------------------------------------------ */

static void sysctl_set(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char cur[16] = "";
	if (pread(fd, cur, sizeof(cur) - 1, 0) > 0 && strncmp(cur, value, strlen(value)) == 0) {
		close(fd);
		return;
	}
	if (write(fd, value, strlen(value)) < 0)
		mz_debug("net: cannot write %s: %s", path, strerror(errno));
	close(fd);
}

/* Raise (never lower) an integer sysctl to at least want. */
static void sysctl_raise(const char *path, long want)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	char cur[32] = "";
	if (pread(fd, cur, sizeof(cur) - 1, 0) > 0 && strtol(cur, NULL, 10) < want) {
		char v[32];
		int n = snprintf(v, sizeof(v), "%ld", want);
		if (write(fd, v, (size_t)n) < 0)
			mz_debug("net: cannot write %s: %s", path, strerror(errno));
	}
	close(fd);
}

/* The kernel keeps one neighbour (ARP/ND) table for all network namespaces,
 * 1024 entries at most by default (gc_thresh3): measured, past about 500
 * domains talking on one LAN, connects failed with "neighbor table
 * overflow".  A LAN's bridge raises the limits to what its size needs
 * (four entries per address it can hand out; an entry is ~0.5 KiB, and only
 * those in use cost memory), as it turns on ip_forward. */
static void neigh_limits_raise(const struct mz_lan_rec *lan)
{
	long hosts = lan->len4 >= 16 ? (1L << (32 - lan->len4)) : 65536;
	static const char *const fam[] = {"ipv4", "ipv6"};
	for (size_t i = 0; i < 2; i++) {
		char p[96];
		snprintf(p, sizeof(p), "/proc/sys/net/%s/neigh/default/gc_thresh1", fam[i]);
		sysctl_raise(p, hosts);
		snprintf(p, sizeof(p), "/proc/sys/net/%s/neigh/default/gc_thresh2", fam[i]);
		sysctl_raise(p, 2 * hosts);
		snprintf(p, sizeof(p), "/proc/sys/net/%s/neigh/default/gc_thresh3", fam[i]);
		sysctl_raise(p, 4 * hosts);
	}
}

/* Make a LAN's bridge (and the rule set, if it is not there): the slow path
 * of an attach, once per LAN and boot. */
static int bridge_make(mz_store *s, struct mz_nl *nl, const struct mz_lan_rec *lan,
		       const char *br, int *ifindex, mz_error_t *err)
{
	/* The host's routes may have changed since the LAN was made. */
	struct mz_cidr *routes = NULL, c4, c6;
	size_t nroutes = 0;
	int r = mz_host_routes(&routes, &nroutes, err);
	if (r < 0)
		return r;
	mz_lan_cidrs(lan, &c4, &c6);
	for (size_t i = 0; i < nroutes && r == 0; i++) {
		if (mz_cidr_overlap(&c4, &routes[i]) || (c6.len && mz_cidr_overlap(&c6, &routes[i]))) {
			char a[64], b[64];
			mz_cidr_fmt(routes[i].family == AF_INET ? &c4 : &c6, a);
			mz_cidr_fmt(&routes[i], b);
			r = mz_error(err, EEXIST, "LAN '%s' (%s) collides with the host's route to %s: "
				     "remove the LAN and make it again with another --subnet",
				     lan->name, a, b);
		}
	}
	free(routes);
	if (r < 0)
		return r;
	/* the filter first: the bridge never runs without it */
	if ((r = nft_rebuild(s, err)) < 0)
		return r;
	/* 02:6d and the host's address on the LAN, as a domain's MAC is made
	 * from its own: unique on the LAN. */
	uint8_t mac[6] = {0x02, 0x6d};
	mz_ip4_bytes(mz_lan_gw4(lan), mac + 2);
	r = mz_nl_bridge_add(nl, br, mac, ifindex, err);
	if (r == -EEXIST) {
		struct mz_nl_link l;
		if ((r = mz_nl_link_get(nl, br, &l, err)) < 0)
			return r == -ENODEV ? mz_error(err, ENODEV, "bridge %s vanished", br) : r;
		*ifindex = l.ifindex;
	} else if (r < 0) {
		return r;
	}
	char p[96];
	/* Loopback port forwards: the host's 127.0.0.1 DNAT'ed to a domain
	 * leaves through the bridge before it is masqueraded. */
	snprintf(p, sizeof(p), "/proc/sys/net/ipv4/conf/%s/route_localnet", br);
	sysctl_set(p, "1");
	if (!lan->len6) {
		snprintf(p, sizeof(p), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", br);
		sysctl_set(p, "1");
	}
	neigh_limits_raise(lan);
	if (!lan->isolated) {
		/* Routing for the LAN's way out (NAT or routed), as Docker and
		 * libvirt do.  IPv6 forwarding for the whole host would stop
		 * it from taking router adverts: only the bridge forwards. */
		sysctl_set("/proc/sys/net/ipv4/ip_forward", "1");
		if (lan->len6) {
			snprintf(p, sizeof(p), "/proc/sys/net/ipv6/conf/%s/force_forwarding", br);
			sysctl_set(p, "1");
		}
	}
	uint8_t gw4[4], gw6[16];
	mz_ip4_bytes(mz_lan_gw4(lan), gw4);
	r = mz_nl_addr_add(nl, *ifindex, AF_INET, gw4, lan->len4, false, err);
	if (r == 0 && lan->len6) {
		mz_lan_gw6(lan, gw6);
		r = mz_nl_addr_add(nl, *ifindex, AF_INET6, gw6, lan->len6, true, err);
	}
	return r == -EEXIST ? 0 : r;
}

/* ---- attach ---------------------------------------------------------------- */

struct nic {
	struct mz_lease_rec *lease;
	struct mz_lan_rec lan;
	char peer[16];
	bool made;
	int ifindex; /* the host end's, once made */
};

/*
 * The host end's name.  A restart soon after a stop finds the last run's
 * veth still there: the kernel destroys a dead namespace's devices
 * asynchronously (measured 1-30 ms, more under load), and deleting it
 * ourselves would take 15-25 ms.  So a lease has four names, TAGvID, TAGwID,
 * TAGxID and TAGyID, and a start takes the next free one after the one it
 * used last; only when all four are taken (restarts faster than the kernel
 * cleans up) is the oldest deleted.  A lease is one domain's, so any of them
 * that exists is a stale one of that domain.
 */
static int veth_pick(mz_store *s, struct mz_nl *nl, struct nic *n, mz_error_t *err)
{
	const char *var = MZ_NET_VETH_VARIANTS;
	size_t nv = strlen(var), last = nv - 1;
	char name[16];
	for (size_t k = 0; k < nv; k++) {
		mz_net_veth_name(s, n->lease->id, var[k], name);
		if (strcmp(n->lease->veth, name) == 0)
			last = k;
	}
	struct mz_nl_link l;
	int r = 0;
	for (size_t k = 1; k <= nv; k++) {
		mz_net_veth_name(s, n->lease->id, var[(last + k) % nv], name);
		r = mz_nl_link_get(nl, name, &l, err);
		if (r == -ENODEV) {
			memcpy(n->lease->veth, name, sizeof(name));
			return 0;
		}
		if (r < 0)
			return r;
	}
	mz_net_veth_name(s, n->lease->id, var[(last + 1) % nv], name);
	mz_debug("net: all names of lease %lld are taken: deleting %s", (long long)n->lease->id,
		 name);
	if ((r = mz_nl_link_get(nl, name, &l, err)) == 0)
		r = mz_nl_link_del(nl, l.ifindex, err);
	if (r < 0 && r != -ENODEV)
		return r;
	memcpy(n->lease->veth, name, sizeof(name));
	return 0;
}

static int veth_make(struct mz_nl *nl, struct nic *n, int master, int netns_fd, mz_error_t *err)
{
	struct mz_nl_veth v = {.name = n->lease->veth, .master = master, .peer_name = n->peer,
			       .peer_mac = n->lease->mac, .peer_netns_fd = netns_fd};
	int r = mz_nl_veth_add(nl, &v, err);
	if (r == -EEXIST)
		r = mz_error(err, EEXIST, "cannot create veth %s: the domain has an %s already, "
			     "or %s was made meanwhile", v.name, n->peer, v.name);
	if (r == 0)
		n->made = true;
	/* Its index, for the token bucket and the fast path (the ack of
	 * RTM_NEWLINK does not carry it). */
	struct mz_nl_link l;
	if (r == 0 && (r = mz_nl_link_get(nl, v.name, &l, err)) == 0)
		n->ifindex = l.ifindex;
	/* What the domain receives leaves the host end: a token bucket there
	 * shapes it (what it sends is policed by nftables, see nft.c). */
	int64_t rate = n->lease->rate_in, burst = mz_rate_burst(rate);
	if (r == 0 && rate > 0)
		r = mz_nl_qdisc_tbf(nl, n->ifindex, (uint64_t)rate,
				    burst > UINT32_MAX ? UINT32_MAX : (uint32_t)burst, err);
	return r == -ENODEV ? mz_error(err, ENODEV, "%s vanished", v.name) : r;
}

/* Inside the domain: addresses, and default routes on the first NIC whose
 * LAN leads somewhere. */
static int nics_configure(struct nic *nics, size_t n, int netns_fd, mz_error_t *err)
{
	struct mz_nl nl cleanup_nl = {0};
	int r = mz_nl_open(&nl, netns_fd, err);
	bool routed = false;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct mz_nl_link l;
		const struct mz_lease_rec *le = nics[i].lease;
		if ((r = mz_nl_link_get(&nl, nics[i].peer, &l, err)) < 0) {
			if (r == -ENODEV)
				r = mz_error(err, ENODEV, "%s vanished in the domain", nics[i].peer);
			break;
		}
		uint8_t a4[4];
		mz_ip4_bytes(le->ip4, a4);
		r = mz_nl_link_set_up(&nl, l.ifindex, true, err);
		if (r == 0)
			r = mz_nl_addr_add(&nl, l.ifindex, AF_INET, a4, nics[i].lan.len4, false,
					   err);
		if (r == 0 && le->has_ip6)
			r = mz_nl_addr_add(&nl, l.ifindex, AF_INET6, le->ip6, nics[i].lan.len6, true,
					   err);
		if (r == 0 && !routed && !nics[i].lan.isolated) {
			uint8_t gw4[4], gw6[16];
			mz_ip4_bytes(mz_lan_gw4(&nics[i].lan), gw4);
			r = mz_nl_route_add(&nl, AF_INET, NULL, 0, gw4, l.ifindex, err);
			if (r == 0 && le->has_ip6) {
				mz_lan_gw6(&nics[i].lan, gw6);
				r = mz_nl_route_add(&nl, AF_INET6, NULL, 0, gw6, l.ifindex, err);
			}
			routed = true;
		}
	}
	return r;
}

/* The NIC's veth on its LAN's fast path (fast.c). */
static int fast_join(mz_store *s, struct mz_nl *nl, const struct nic *n, mz_error_t *err)
{
	uint32_t block = mz_net_fast_block(s, n->lan.id);
	/* MEZZO_NET_FAST=0: the bridge only, for this start (a way to rule
	 * the fast path out when a network misbehaves) */
	const char *off = getenv("MEZZO_NET_FAST");
	if (block == 0 || (off && strcmp(off, "0") == 0))
		return 0;
	const struct mz_lease_rec *le = n->lease;
	char br[16];
	mz_net_bridge_name(s, n->lan.id, br);
	struct mz_fast_member m = {.ifindex = n->ifindex, .lease = le->id, .mac = le->mac,
				   .ip4 = le->ip4, .ip6 = le->has_ip6 ? le->ip6 : NULL,
				   .send = le->rate_out == 0, .shaped = le->rate_in > 0};
	return mz_fast_join(nl, br, block, &m, err);
}

static void fast_leave(mz_store *s, struct mz_nl *nl, const struct mz_lease_rec *le)
{
	char br[16];
	mz_net_bridge_name(s, le->lan, br);
	mz_error_t e = NULL;
	/* Best effort: what stays names a veth that is going away (a redirect
	 * there drops), and cleanup removes entries of detached leases. */
	if (mz_fast_leave(nl, br, mz_net_fast_block(s, le->lan), le->id, le->mac, &e) < 0)
		mz_warn("net: %s", e ? e->msg : "?");
	mz_error_release(&e);
}

void mz_net_prepare(mz_store *s)
{
	char tag[8];
	mz_net_tag(s, tag);
	mz_nft_warm(tag);
}

/* The commands that add (or remove) a domain's elements, those of its
 * leases v[] and its forwards; first, if old[] is given, the removal of those
 * a run that never detached left (it may have used the other veth name).
 * *out NULL when there are none. */
static int domain_cmds(mz_store *s, const char *domain, struct mz_lease_rec *v, size_t n,
		       const struct mz_lease_rec *old, size_t nold, bool add, char **out,
		       mz_error_t *err)
{
	struct mz_fwd_rec *fw = NULL;
	size_t nfw = 0;
	int r = mz_fwd_list(s, domain, &fw, &nfw, err);
	if (r < 0)
		return r;
	char tag[8];
	mz_net_tag(s, tag);
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	if (nold)
		put_domain(f, s, tag, old, nold, fw, nfw, false);
	put_domain(f, s, tag, v, n, fw, nfw, add);
	fclose(f);
	free(fw);
	if (len == 0) {
		free(*out);
		*out = NULL;
	}
	return 0;
}

static int domain_elems(mz_store *s, const char *domain, struct mz_lease_rec *v, size_t n,
			bool add, mz_error_t *err)
{
	cleanup_free char *cmds = NULL;
	int r = domain_cmds(s, domain, v, n, NULL, 0, add, &cmds, err);
	if (r < 0 || cmds == NULL)
		return r;
	cleanup_free char *what = xasprintf("%s the filter of domain '%s'",
					    add ? "load" : "remove", domain);
	return mz_nft_run(cmds, what, NULL, err);
}

int mz_net_attach(mz_store *s, const char *domain, int netns_fd, const char *rundir,
		  mz_error_t *err)
{
	struct mz_lease_rec *v = NULL;
	size_t n = 0;
	int r = mz_lease_list(s, domain, 0, &v, &n, err);
	if (r < 0)
		return r;
	if (n == 0) {
		free(v);
		return mz_hosts_write(s, domain, NULL, 0, rundir, err);
	}
	int lock = net_lock(s, LOCK_SH, err);
	if (lock < 0) {
		mz_lease_recs_free(v, n);
		return lock;
	}
	int64_t t0 = mono_ns(), t1 = 0, t2 = 0, t3 = 0;
	struct nic *nics = xcalloc(n, sizeof(*nics));
	struct mz_lease_rec *old = xcalloc(n, sizeof(*old));
	size_t nold = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		nics[i].lease = &v[i];
		snprintf(nics[i].peer, sizeof(nics[i].peer), "eth%d", v[i].nic % 100);
		if (v[i].attached && v[i].veth[0]) {
			old[nold] = v[i];
			old[nold++].rundir = NULL; /* v[i] owns it */
		}
		if (v[i].id > MZ_NET_MAX_ID || v[i].lan > MZ_NET_MAX_ID)
			r = mz_error(err, EOVERFLOW, "lease %lld: ids past %d do not fit interface "
				     "names", (long long)v[i].id, MZ_NET_MAX_ID);
		else
			r = mz_lan_rec_get_id(s, v[i].lan, &nics[i].lan, err);
	}
	struct mz_nl nl = {0};
	if (r == 0)
		r = mz_nl_open(&nl, -1, err);
	for (size_t i = 0; i < n && r == 0; i++)
		r = veth_pick(s, &nl, &nics[i], err);
	cleanup_free char *cmds = NULL;
	if (r == 0)
		r = domain_cmds(s, domain, v, n, old, nold, true, &cmds, err);
	/* Marked before anything enters the kernel (see the top). */
	bool marked = false;
	if (r == 0 && (r = mz_store_begin(s, err)) == 0) {
		for (size_t i = 0; i < n && r == 0; i++)
			r = mz_lease_attach(s, v[i].id, v[i].veth, rundir, err);
		r = r == 0 ? mz_store_commit(s, err) : (mz_store_rollback(s), r);
		marked = r == 0;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		char br[16];
		struct mz_nl_link l;
		int master = 0;
		mz_net_bridge_name(s, nics[i].lan.id, br);
		r = mz_nl_link_get(&nl, br, &l, err);
		if (r == 0)
			master = l.ifindex;
		else if (r == -ENODEV)
			r = bridge_make(s, &nl, &nics[i].lan, br, &master, err);
		if (r == 0)
			r = veth_make(&nl, &nics[i], master, netns_fd, err);
	}
	t1 = mono_ns();
	if (r == 0)
		r = nics_configure(nics, n, netns_fd, err);
	t2 = mono_ns();
	/* The fast path: after the veth exists, before the elements open its
	 * traffic; it only ever lets through what the elements would.  It is
	 * a shortcut, not a check: a kernel that cannot have it (no cls_bpf,
	 * no BPF) leaves the domain on the bridge, slower and as safe. */
	for (size_t i = 0; i < n && r == 0; i++) {
		mz_error_t e = NULL;
		if (fast_join(s, &nl, &nics[i], &e) < 0) {
			mz_warn("net: %s keeps the bridge path only: %s", v[i].veth,
				e ? e->msg : "?");
			fast_leave(s, &nl, &v[i]);
		}
		mz_error_release(&e);
	}
	t3 = mono_ns();
	/* The elements go in last: until then the veth's traffic is dropped
	 * (the checks fail closed), never let through unchecked.  The first
	 * run of a process costs ~1.4 ms more than the next ones (see
	 * mz_net_prepare); on a thread beside the veths' making, it made the
	 * whole slower here (2 CPUs): the two contend for the process's
	 * memory map while libnftables loads and faults in its caches. */
	if (r == 0 && cmds) {
		mz_error_t e = NULL;
		r = mz_nft_run(cmds, "load the domain's filter", NULL, &e);
		if (r == -ENOENT) {
			/* The table went (a firewall reload flushes the rule
			 * set): all of it back, ours included (attached). */
			mz_warn("net: mezzo's nftables tables were gone; loading them again");
			r = nft_rebuild(s, err);
		} else if (r < 0) {
			mz_error(err, -r, "%s", e ? e->msg : "?");
		}
		mz_error_release(&e);
	}
	int64_t t4 = mono_ns();
	/* The hosts file last: it is shared by the LAN's members, who try
	 * the new name as soon as it is there.  Before the elements were in,
	 * such a member's SYN could reach this domain, whose answer then
	 * waited for an ARP request the bridge chain had dropped: one ARP
	 * retry, 1 s (bench/net figure 1 took 1,015 ms at times). */
	if (r == 0)
		r = mz_hosts_write(s, domain, v, n, rundir, err);
	mz_debug("net: attach %s: veths %.3f ms, inside %.3f, fast %.3f, nft %.3f, hosts %.3f",
		 domain, (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6, (t4 - t3) / 1e6,
		 (mono_ns() - t4) / 1e6);
	if (r < 0 && marked) {
		/* Undo: nothing of a failed start may stay in the kernel (and
		 * what a run that never detached left goes too). */
		for (size_t i = 0; i < n && nl.sock; i++) {
			struct mz_nl_link l;
			if (nics[i].made)
				fast_leave(s, &nl, &v[i]);
			if (nics[i].made && mz_nl_link_get(&nl, v[i].veth, &l, NULL) == 0)
				mz_nl_link_del(&nl, l.ifindex, NULL);
		}
		cleanup_free char *undo = NULL;
		int x = domain_cmds(s, domain, v, n, old, nold, false, &undo, NULL);
		if (x == 0 && undo)
			x = mz_nft_run(undo, "remove the domain's filter", NULL, NULL);
		/* (left attached when that failed, for 'net prune' to retry) */
		for (size_t i = 0; i < n && (x == 0 || x == -ENOENT); i++)
			mz_lease_detach(s, v[i].id, NULL);
	}
	mz_nl_close(&nl);
	close(lock);
	free(nics);
	free(old);
	mz_lease_recs_free(v, n);
	return r;
}

int mz_net_set_rates(mz_store *s, const char *domain, int64_t ingress, int64_t egress,
		     mz_error_t *err)
{
	/* a token bucket counts in 32 bits of bytes per tick: ~34 GB/s */
	const int64_t max = 1ll << 34;
	if (ingress < 0 || egress < 0 || ingress > max || egress > max)
		return mz_error(err, EINVAL, "a rate limit must be from 0 (none) to %lld bytes/s",
				(long long)max);
	if ((ingress && ingress < 1000) || (egress && egress < 1000))
		return mz_error(err, EINVAL, "a rate limit below 1000 bytes/s would stall TCP");
	return mz_lease_set_rates(s, domain, ingress, egress, err);
}

/* ---- detach, forget ------------------------------------------------------ */

static int detach_locked(mz_store *s, const char *domain, mz_error_t *err)
{
	struct mz_lease_rec *v = NULL;
	size_t n = 0;
	int r = mz_lease_list(s, domain, 0, &v, &n, err);
	if (r < 0)
		return r;
	bool any = false;
	for (size_t i = 0; i < n; i++)
		any |= v[i].attached;
	if (any) {
		struct mz_nl nl cleanup_nl = {0};
		mz_error_t e = NULL;
		if (mz_nl_open(&nl, -1, &e) == 0) {
			for (size_t i = 0; i < n; i++)
				if (v[i].attached)
					fast_leave(s, &nl, &v[i]);
		} else {
			mz_warn("net: %s", e->msg);
		}
		mz_error_release(&e);
		r = domain_elems(s, domain, v, n, false, err);
		if (r == -ENOENT) { /* no table: nothing of ours is loaded */
			mz_error_release(err);
			r = 0;
		}
	}
	if (r == 0 && any && (r = mz_store_begin(s, err)) == 0) {
		for (size_t i = 0; i < n && r == 0; i++)
			if (v[i].attached)
				r = mz_lease_detach(s, v[i].id, err);
		r = r == 0 ? mz_store_commit(s, err) : (mz_store_rollback(s), r);
	}
	mz_lease_recs_free(v, n);
	return r;
}

int mz_net_detach(mz_store *s, const char *domain, mz_error_t *err)
{
	int lock = net_lock(s, LOCK_SH, err);
	if (lock < 0)
		return lock;
	int r = detach_locked(s, domain, err);
	close(lock);
	return r;
}

int mz_net_forget_domain(mz_store *s, const char *domain, mz_error_t *err)
{
	/* On no LAN (loopback only, most domains): nothing attached, no lease,
	 * no port forward, no hosts file naming it, and none can be added
	 * meanwhile (the caller's transaction holds the catalog's write lock).
	 * The lock file, the statements and the hosts files' refresh below
	 * were ~0.2 ms of every `rm` and `run --rm` of such a domain. */
	int any = mz_lease_any(s, domain, err);
	if (any <= 0)
		return any;
	int lock = net_lock(s, LOCK_SH, err);
	if (lock < 0)
		return lock;
	int r = detach_locked(s, domain, err);
	if (r == 0)
		r = mz_lease_forget(s, domain, err);
	if (r == 0)
		mz_hosts_refresh(s, NULL);
	close(lock);
	return r;
}

/* ---- plan -------------------------------------------------------------------- */

/* Does a host service hold this port?  Try to bind it, on every address. */
static int host_port_check(const struct mz_port_fwd *p, mz_error_t *err)
{
	int type = p->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	const char *proto = p->proto == IPPROTO_UDP ? "udp" : "tcp";
	for (int fam = 0; fam < 2; fam++) {
		cleanup_close int fd = socket(fam ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue; /* no IPv6 on this host */
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		int b;
		if (fam) {
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			struct sockaddr_in6 a = {.sin6_family = AF_INET6,
						 .sin6_port = htons((uint16_t)p->host_port)};
			b = bind(fd, (struct sockaddr *)&a, sizeof(a));
		} else {
			struct sockaddr_in a = {.sin_family = AF_INET,
						.sin_port = htons((uint16_t)p->host_port)};
			b = bind(fd, (struct sockaddr *)&a, sizeof(a));
		}
		if (b < 0 && errno == EADDRINUSE)
			return mz_error(err, EADDRINUSE, "host port %d/%s is in use by a service of "
					"the host (see 'ss -lntup')", p->host_port, proto);
	}
	return 0;
}

int mz_net_plan(mz_store *s, const char *domain, const char *const *lans, size_t n,
		const struct mz_port_fwd *ports, size_t nports, mz_error_t *err)
{
	int r = mz_name_check(domain, "domain", err);
	if (r < 0)
		return r;
	if (strlen(domain) > 63)
		return mz_error(err, EINVAL, "invalid domain name '%s': at most 63 characters",
				domain);
	if (n > MZ_NET_MAX_NICS)
		return mz_error(err, EINVAL, "a domain can be on %d LANs at most", MZ_NET_MAX_NICS);
	if (nports && n == 0)
		return mz_error(err, EINVAL, "port forwards need a LAN to forward to");
	for (size_t i = 0; i < n; i++) {
		if ((r = mz_lan_name_check(lans[i], err)) < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (strcmp(lans[i], lans[j]) == 0)
				return mz_error(err, EINVAL, "LAN '%s' is named twice", lans[i]);
	}
	for (size_t i = 0; i < nports; i++) {
		const struct mz_port_fwd *p = &ports[i];
		if ((p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || p->host_port < 1 ||
		    p->host_port > 65535 || p->domain_port < 1 || p->domain_port > 65535)
			return mz_error(err, EINVAL, "bad port forward %d:%d", p->host_port,
					p->domain_port);
		for (size_t j = 0; j < i; j++)
			if (ports[j].proto == p->proto && ports[j].host_port == p->host_port)
				return mz_error(err, EINVAL, "host port %d/%s is forwarded twice",
						p->host_port, p->proto == IPPROTO_UDP ? "udp" : "tcp");
		if ((r = host_port_check(p, err)) < 0)
			return r;
	}
	if ((r = mz_store_begin(s, err)) < 0)
		return r;
	struct mz_lease_rec *old = NULL;
	size_t nold = 0;
	r = mz_lease_list(s, domain, 0, &old, &nold, err);
	mz_lease_recs_free(old, nold);
	if (r == 0 && nold)
		r = mz_error(err, EEXIST, "domain '%s' is on LANs already", domain);
	for (size_t i = 0; i < n && r == 0; i++) {
		struct mz_lan_rec lan;
		struct mz_lease_rec le = {0};
		if (strcmp(lans[i], MZ_NET_DEFAULT_LAN) == 0)
			r = mz_net_lan_default(s, &lan, err);
		else
			r = mz_lan_rec_get(s, lans[i], &lan, err);
		if (r == 0)
			r = mz_lease_alloc(s, &lan, domain, (int)i, &le, err);
		free(le.rundir);
	}
	for (size_t i = 0; i < nports && r == 0; i++) {
		struct mz_fwd_rec f = {.proto = ports[i].proto, .host_port = ports[i].host_port,
				       .domain_port = ports[i].domain_port};
		snprintf(f.domain, sizeof(f.domain), "%s", domain);
		r = mz_fwd_add(s, &f, err);
	}
	if (r < 0) {
		mz_store_rollback(s);
		return r;
	}
	return mz_store_commit(s, err);
}

/* ---- removing LANs and cleaning up ---------------------------------------- */

struct link_acc {
	char tag[8];
	struct mz_nl_link *v;
	size_t n;
};

static int link_collect(const struct mz_nl_link *l, void *arg)
{
	struct link_acc *a = arg;
	if (strncmp(l->name, a->tag, strlen(a->tag)) != 0)
		return 0;
	a->v = xrealloc(a->v, (a->n + 1) * sizeof(*a->v));
	a->v[a->n++] = *l;
	return 0;
}

/* The store's links: bridges (kind 'b', id) and veths ('v', id). */
static bool link_parse(const char *tag, const char *name, char *kind, int64_t *id)
{
	size_t t = strlen(tag);
	if (strncmp(name, tag, t) != 0 || !name[t] || !strchr("-" MZ_NET_VETH_VARIANTS, name[t]) ||
	    !name[t + 1])
		return false;
	for (const char *p = name + t + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	*kind = name[t] == '-' ? 'b' : 'v';
	*id = strtoll(name + t + 1, NULL, 10);
	return true;
}

/* Is the domain of a lease running, by what the kernel and the catalog say?
 * Its veth must exist, and a catalog domain must have a live supervisor
 * (leases of no catalog domain are the tests' namespaces). */
static bool lease_running(mz_store *s, const struct mz_lease_rec *l, const struct link_acc *links)
{
	bool up = false;
	for (size_t i = 0; i < links->n && !up && l->veth[0]; i++)
		up = strcmp(links->v[i].name, l->veth) == 0;
	if (!up)
		return false;
	struct mz_domain_rec d;
	if (mz_domain_rec_get(s, l->domain, &d, NULL) == 0) {
		mz_domain_rec_free(&d);
		return d.sup_pid != 0;
	}
	return true;
}

struct fast_keep {
	const struct mz_lease_rec *v;
	size_t n;
	int *ifindex; /* of each lease's veth if it runs there, else 0 */
};

static bool fast_keep_cb(int64_t lease, int ifindex, void *arg)
{
	const struct fast_keep *k = arg;
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i].id == lease)
			return k->ifindex[i] != 0 && k->ifindex[i] == ifindex;
	return false;
}

static int cleanup_locked(mz_store *s, int *removed, mz_error_t *err)
{
	struct link_acc links = {0};
	mz_net_tag(s, links.tag);
	struct mz_nl nl cleanup_nl = {0};
	int r = mz_nl_open(&nl, -1, err);
	/* links first, then leases: see the top about the order */
	if (r == 0)
		r = mz_nl_link_list(&nl, link_collect, &links, err);
	struct mz_lease_rec *v = NULL;
	size_t n = 0;
	if (r == 0)
		r = mz_lease_list(s, NULL, 0, &v, &n, err);
	struct mz_lan_rec *lans = NULL;
	size_t nlans = 0;
	if (r == 0)
		r = mz_lan_rec_list(s, &lans, &nlans, err);
	int count = 0;
	/* leases whose domain is not running: elements out, then detached */
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!v[i].attached || lease_running(s, &v[i], &links))
			continue;
		mz_error_t e = NULL;
		int x = domain_elems(s, v[i].domain, &v[i], 1, false, &e);
		if (x < 0 && x != -ENOENT)
			mz_warn("net: %s", e ? e->msg : "?");
		mz_error_release(&e);
		if (x == 0 || x == -ENOENT) {
			mz_lease_detach(s, v[i].id, NULL);
			count++;
		}
	}
	/* fast path entries of leases that are not running on that veth */
	struct fast_keep fk = {.v = v, .n = n, .ifindex = xcalloc(n ? n : 1, sizeof(int))};
	for (size_t i = 0; i < n && r == 0; i++)
		for (size_t k = 0; k < links.n && v[i].attached && v[i].veth[0]; k++)
			if (strcmp(links.v[k].name, v[i].veth) == 0 &&
			    lease_running(s, &v[i], &links))
				fk.ifindex[i] = links.v[k].ifindex;
	for (size_t i = 0; i < nlans && r == 0; i++) {
		char br[16];
		mz_net_bridge_name(s, lans[i].id, br);
		mz_error_t e = NULL;
		if (mz_fast_prune(&nl, br, mz_net_fast_block(s, lans[i].id), fast_keep_cb, &fk,
				  &count, &e) < 0)
			mz_warn("net: %s", e ? e->msg : "?");
		mz_error_release(&e);
	}
	free(fk.ifindex);
	/* links nothing wants */
	size_t bridges = 0;
	for (size_t i = 0; i < links.n && r == 0; i++) {
		char kind;
		int64_t id;
		if (!link_parse(links.tag, links.v[i].name, &kind, &id))
			continue;
		bridges += kind == 'b';
		bool wanted = false;
		if (kind == 'b') {
			for (size_t k = 0; k < nlans && !wanted; k++)
				wanted = lans[k].id == id;
		} else {
			for (size_t k = 0; k < n && !wanted; k++)
				wanted = v[k].id == id && v[k].attached &&
					 strcmp(v[k].veth, links.v[i].name) == 0 &&
					 lease_running(s, &v[k], &links);
		}
		if (wanted)
			continue;
		mz_debug("net: deleting %s", links.v[i].name);
		if (mz_nl_link_del(&nl, links.v[i].ifindex, NULL) == 0) {
			count++;
			bridges -= kind == 'b';
		}
	}
	/* Bridges left: the rule set whole again (a firewall reload may have
	 * flushed it, leaving running domains unfiltered).  None: nothing to
	 * filter, no tables (the next bridge made loads them again). */
	if (r == 0 && bridges > 0) {
		r = nft_rebuild(s, err);
	} else if (r == 0) {
		char tag[8];
		mz_net_tag(s, tag);
		cleanup_free char *cmds = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&cmds, &len);
		mz_nft_put_drop(f, tag);
		fclose(f);
		r = mz_nft_run(cmds, "remove mezzo's tables", NULL, err);
	}
	free(links.v);
	free(lans);
	mz_lease_recs_free(v, n);
	if (removed)
		*removed = count;
	return r;
}

int mz_net_cleanup_orphans(mz_store *s, int *removed, mz_error_t *err)
{
	int lock = net_lock(s, LOCK_EX, err);
	if (lock < 0)
		return lock;
	int r = cleanup_locked(s, removed, err);
	close(lock);
	return r;
}

int mz_net_lan_remove(mz_store *s, const char *name, bool force, mz_error_t *err)
{
	struct mz_lan_rec lan;
	int r = mz_lan_rec_get(s, name, &lan, err);
	if (r < 0)
		return r;
	int lock = net_lock(s, LOCK_EX, err);
	if (lock < 0)
		return lock;
	struct mz_lease_rec *v = NULL;
	size_t n = 0;
	char tag[8], br[16];
	mz_net_tag(s, tag);
	mz_net_bridge_name(s, lan.id, br);
	r = mz_lease_list(s, NULL, lan.id, &v, &n, err);
	if (r == 0 && n && !force) {
		char who[200] = "";
		for (size_t i = 0; i < n && strlen(who) < 150; i++)
			snprintf(who + strlen(who), sizeof(who) - strlen(who), "%s%s", i ? ", " : "",
				 v[i].domain);
		r = mz_error(err, EBUSY, "LAN '%s' has %zu member%s (%s%s): remove %s first, or "
			     "'mezzo net rm --force %s'", name, n, n == 1 ? "" : "s", who,
			     strlen(who) >= 150 ? ", ..." : "", n == 1 ? "it" : "them", name);
	}
	struct mz_nl nl cleanup_nl = {0};
	if (r == 0)
		r = mz_nl_open(&nl, -1, err);
	/* its members: elements out, veths deleted (their domains lose a NIC) */
	for (size_t i = 0; i < n && r == 0; i++) {
		char veth[16];
		struct mz_nl_link l;
		if (v[i].attached) {
			int x = domain_elems(s, v[i].domain, &v[i], 1, false, err);
			if (x < 0 && x != -ENOENT)
				r = x;
			else
				mz_error_release(err);
		}
		for (const char *k = MZ_NET_VETH_VARIANTS; *k && r == 0; k++) {
			mz_net_veth_name(s, v[i].id, *k, veth);
			if (mz_nl_link_get(&nl, veth, &l, NULL) == 0)
				mz_nl_link_del(&nl, l.ifindex, NULL);
		}
	}
	if (r == 0) {
		cleanup_free char *cmds = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&cmds, &len);
		mz_nft_put_lan(f, tag, &lan, br, false);
		fclose(f);
		int x = mz_nft_run(cmds, "remove the LAN's filter", NULL, err);
		if (x < 0 && x != -ENOENT)
			r = x;
		else
			mz_error_release(err);
	}
	struct mz_nl_link l;
	if (r == 0 && mz_nl_link_get(&nl, br, &l, NULL) == 0)
		r = mz_nl_link_del(&nl, l.ifindex, err);
	if (r == 0 || r == -ENODEV)
		r = mz_lan_rec_remove(s, lan.id, err);
	if (r == 0) {
		mz_hosts_refresh(s, NULL);
		/* and whatever a crash left behind, tables too if it was the last */
		r = cleanup_locked(s, NULL, err);
	}
	mz_lease_recs_free(v, n);
	close(lock);
	return r;
}

int mz_net_fast_stats(mz_store *s, int64_t lan_id, struct mz_net_fast_stat **out, size_t *n,
		      mz_error_t *err)
{
	*out = NULL;
	*n = 0;
	uint32_t block = mz_net_fast_block(s, lan_id);
	if (block == 0)
		return 0;
	struct mz_nl nl cleanup_nl = {0};
	int r = mz_nl_open(&nl, -1, err);
	if (r < 0)
		return r;
	char br[16];
	mz_net_bridge_name(s, lan_id, br);
	r = mz_fast_stats(&nl, br, block, out, n, err);
	if (r == -ENOENT) {
		mz_error_release(err);
		r = 0;
	}
	return r;
}

int mz_net_fast_dump(mz_store *s, const char *lan, FILE *out, mz_error_t *err)
{
	struct mz_lan_rec l;
	int r = mz_lan_rec_get(s, lan, &l, err);
	if (r < 0)
		return r;
	struct mz_nl nl cleanup_nl = {0};
	r = mz_nl_open(&nl, -1, err);
	char br[16];
	mz_net_bridge_name(s, l.id, br);
	if (r == 0)
		r = mz_fast_dump(&nl, br, mz_net_fast_block(s, l.id), out, err);
	return r;
}

void mz_net_refresh_hosts(mz_store *s, const char *domain)
{
	mz_hosts_refresh(s, domain);
}

char *mz_net_hosts_file(mz_store *s, const char *domain, mz_error_t *err)
{
	return mz_hosts_file(s, domain, err);
}
