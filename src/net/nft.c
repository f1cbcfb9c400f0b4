/*
 * nft.c — running nftables commands through libnftables, loaded on first use.
 *
 * libnftables (with libnftnl, libxtables, libjansson and libgmp behind it)
 * costs ~0.45 ms to load and ~0.1 ms to make a context, so it is dlopen'ed
 * (dynlib.h says why) by the first attach of a process and its context kept
 * for the process's life.  A buffer of commands is one netlink batch: the
 * kernel applies all of it or none of it.
 *
 * The rule set (docs/net.md explains each rule).  Per store, two tables:
 *
 *   bridge TAG  sees every frame a domain sends, before the bridge or the
 *               host acts on it.  A veth may send only with its lease's MAC,
 *               IPv4 and IPv6 source (ARP and neighbour adverts included),
 *               no router adverts or redirects, and no other ethertypes
 *               (a VLAN tag would hide its IP header from these checks).
 *   inet TAG    the host's side: nothing from a LAN reaches the host's own
 *               services (but neighbour discovery), no LAN reaches another
 *               (with br_netfilter on, a LAN's own bridged traffic shows up
 *               here too and is let through), an isolated LAN reaches
 *               nothing, a --nat LAN is masqueraded, host ports go to
 *               domains by DNAT (prerouting for others, output for the
 *               host itself, loopback included).
 *
 * Every rule is fixed and matches against sets: adding or removing a LAN or a
 * domain adds or removes set elements only, one small transaction that
 * touches nothing else.  A veth with no elements can send nothing (the
 * checks fail closed), so a domain whose elements are not in yet, or gone,
 * is cut off rather than unchecked.
 */
#include "netInt.h"

#include <errno.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/dynlib.h"
#include "../lib/util.h"

#define NFT_FUNCS(X)                                                                       \
	X(nft_ctx_new) X(nft_ctx_free) X(nft_ctx_buffer_output) X(nft_ctx_buffer_error)      \
	X(nft_ctx_get_output_buffer) X(nft_ctx_get_error_buffer) X(nft_run_cmd_from_buffer) \
	X(nft_ctx_output_set_flags)
MZ_DYN_DECLARE(NFT_FUNCS)
MZ_DYN_DEFINE(nftables, "libnftables.so.1", NFT_FUNCS)

static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nft_ctx *nft_ctx;
static pid_t nft_pid;   /* the process nft_ctx belongs to */

/* A child of fork must not use its parent's context: that holds the
 * parent's netlink socket (its replies could be read by either).  It makes
 * its own; the parent's copy is left alone. */
static void nft_atfork_prepare(void)
{
	pthread_mutex_lock(&nft_lock);
}

static void nft_atfork_parent(void)
{
	pthread_mutex_unlock(&nft_lock);
}

static void nft_atfork_child(void)
{
	nft_ctx = NULL;
	pthread_mutex_unlock(&nft_lock);
}

static void nft_atfork_register(void)
{
	pthread_atfork(nft_atfork_prepare, nft_atfork_parent, nft_atfork_child);
}

static int nft_ctx_get(mz_error_t *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, nft_atfork_register);
	if (nft_ctx && nft_pid == getpid())
		return 0;
	nft_ctx = NULL; /* forked by other means than fork(): see above */
	int r = mz_dyn_load_nftables(err);
	if (r < 0)
		return mz_error_wrap(err, "nftables (is Debian's libnftables1 installed?)");
	nft_ctx = mzdl_nft_ctx_new(NFT_CTX_DEFAULT);
	if (nft_ctx == NULL)
		return mz_error(err, ENOMEM, "cannot make an nftables context");
	nft_pid = getpid();
	/* Output and errors into buffers: mezzo reports them itself. */
	mzdl_nft_ctx_buffer_output(nft_ctx);
	mzdl_nft_ctx_buffer_error(nft_ctx);
	return 0;
}

/* The kernel's reason, as libnftables words it: its first "Error:" line. */
static int nft_failure(const char *errbuf, const char *what, mz_error_t *err)
{
	const char *e = errbuf ? strstr(errbuf, "Error: ") : NULL;
	int code = EIO;
	if (e == NULL)
		return mz_error(err, code, "nftables: cannot %s", what);
	e += 7;
	size_t n = strcspn(e, "\n");
	if (strncmp(e, "No such file or directory", 25) == 0 || strstr(e, ": No such file") != NULL)
		code = ENOENT;
	else if (strstr(e, "File exists") != NULL)
		code = EEXIST;
	else if (strstr(e, "Operation not permitted") != NULL)
		code = EPERM;
	return mz_error(err, code, "nftables: cannot %s: %.*s", what, (int)n, e);
}

int mz_nft_run(const char *cmds, const char *what, char **output, mz_error_t *err)
{
	pthread_mutex_lock(&nft_lock);
	int r = nft_ctx_get(err);
	if (r == 0) {
		if (output)
			mzdl_nft_ctx_output_set_flags(nft_ctx, 0);
		if (mzdl_nft_run_cmd_from_buffer(nft_ctx, cmds) != 0)
			r = nft_failure(mzdl_nft_ctx_get_error_buffer(nft_ctx), what, err);
		else if (output)
			*output = xstrdup(mzdl_nft_ctx_get_output_buffer(nft_ctx));
		/* reading a buffer resets it: nothing is carried to the next run */
		else
			mzdl_nft_ctx_get_output_buffer(nft_ctx);
		mzdl_nft_ctx_get_error_buffer(nft_ctx);
	}
	pthread_mutex_unlock(&nft_lock);
	return r;
}

int mz_nft_warm(const char *tag)
{
	/* The first run in a process pays for libnftables' caches (their
	 * page faults, ~0.9 ms) on top of loading it; later ones reuse them,
	 * as long as the same kind of command ran.  So: an element into a set
	 * kept for this (a dry run would do, but the kernel's abort of it
	 * waits for an RCU grace period, ~10 ms). */
	char cmds[96];
	snprintf(cmds, sizeof(cmds), "add element bridge %s warm { \"%s\" }\n", tag, tag);
	pthread_mutex_lock(&nft_lock);
	int r = nft_ctx_get(NULL);
	if (r == 0) {
		r = mzdl_nft_run_cmd_from_buffer(nft_ctx, cmds) == 0 ? 0 : -EIO;
		mzdl_nft_ctx_get_output_buffer(nft_ctx);
		mzdl_nft_ctx_get_error_buffer(nft_ctx);
	}
	pthread_mutex_unlock(&nft_lock);
	return r;
}

/* ---- the rule set ---------------------------------------------------- */

void mz_nft_put_base(FILE *f, const char *tag)
{
	/* Declare (a no-op for what exists), then flush and refill the chains:
	 * the same text repairs a damaged table and keeps the elements. */
	fprintf(f,
		"table bridge %1$s {\n"
		"  set mac { type ifname . ether_addr; }\n"
		"  set src4 { type ifname . ipv4_addr; }\n"
		"  set arp4 { type ifname . ether_addr . ipv4_addr; }\n"
		"  set src6 { type ifname . ipv6_addr; }\n"
		/* the target of a neighbour advert, as 128 raw bits */
		"  set nd6 { typeof iifname . @th,64,128; }\n"
		/* for mz_nft_warm, matched by nothing */
		"  set warm { type ifname; }\n"
		/* the egress limit of a veth: a named limit object */
		"  map egress { type ifname : limit; }\n"
		"  chain prerouting { type filter hook prerouting priority -300; policy accept; }\n"
		"}\n"
		"flush chain bridge %1$s prerouting\n"
		"table bridge %1$s {\n"
		"  chain prerouting {\n"
		"    iifname != \"%1$s*\" accept\n"
		"    iifname . ether saddr != @mac drop\n"
		"    ether type arp iifname . arp saddr ether . arp saddr ip != @arp4 drop\n"
		"    ether type ip iifname . ip saddr != @src4 drop\n"
		"    ether type ip6 iifname . ip6 saddr != @src6 drop\n"
		"    icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @nd6 drop\n"
		"    icmpv6 type { nd-router-advert, nd-redirect } drop\n"
		"    icmp type redirect drop\n"
		"    ether type != { ip, ip6, arp } drop\n"
		"    limit name iifname map @egress drop\n"
		"  }\n"
		"}\n",
		tag);
	fprintf(f,
		"table inet %1$s {\n"
		"  set bridges { type ifname; }\n"
		"  set isolated { type ifname; }\n"
		"  set natlans { type ifname; }\n"
		"  set intra { type ifname . ifname; }\n"
		"  map fwd4 { type inet_proto . inet_service : ipv4_addr . inet_service; }\n"
		"  map fwd6 { type inet_proto . inet_service : ipv6_addr . inet_service; }\n"
		"  chain input { type filter hook input priority filter; policy accept; }\n"
		"  chain forward { type filter hook forward priority filter; policy accept; }\n"
		"  chain prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
		"  chain output { type nat hook output priority -100; policy accept; }\n"
		"  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
		"}\n"
		"flush chain inet %1$s input\n"
		"flush chain inet %1$s forward\n"
		"flush chain inet %1$s prerouting\n"
		"flush chain inet %1$s output\n"
		"flush chain inet %1$s postrouting\n"
		"table inet %1$s {\n"
		"  chain input {\n"
		"    iifname != @bridges accept\n"
		"    ct state established,related accept\n"
		"    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n"
		"    drop\n"
		"  }\n"
		"  chain forward {\n"
		"    iifname . oifname @intra accept\n"
		"    ct state established,related accept\n"
		"    ct status dnat oifname @bridges accept\n"
		"    iifname @isolated drop\n"
		"    oifname @bridges drop\n"
		"  }\n"
		"  chain prerouting {\n"
		"    meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @fwd4\n"
		"    meta nfproto ipv6 fib daddr type local dnat ip6 to meta l4proto . th dport map @fwd6\n"
		"  }\n"
		"  chain output {\n"
		"    meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @fwd4\n"
		"    meta nfproto ipv6 fib daddr type local dnat ip6 to meta l4proto . th dport map @fwd6\n"
		"  }\n"
		"  chain postrouting {\n"
		"    iifname . oifname @intra ct status dnat masquerade\n"
		"    iifname . oifname @intra accept\n"
		"    oifname @bridges ip saddr 127.0.0.0/8 masquerade\n"
		"    oifname @isolated ct status dnat masquerade\n"
		"    iifname @natlans oifname != @bridges masquerade\n"
		"  }\n"
		"}\n",
		tag);
}

void mz_nft_put_drop(FILE *f, const char *tag)
{
	/* "add" first, so that the delete cannot fail on a missing table */
	fprintf(f, "add table bridge %1$s\ndelete table bridge %1$s\n"
		   "add table inet %1$s\ndelete table inet %1$s\n", tag);
}

/* An element operation: to delete, add first (a no-op if it is there), so
 * that a delete never fails on an element that did not make it in. */
static void put_elem(FILE *f, bool add, const char *family, const char *tag, const char *set,
		     const char *elem, const char *value)
{
	fprintf(f, "add element %s %s %s { %s%s%s }\n", family, tag, set, elem, value ? " : " : "",
		value ? value : "");
	if (!add)
		fprintf(f, "delete element %s %s %s { %s }\n", family, tag, set, elem);
}

void mz_nft_put_lan(FILE *f, const char *tag, const struct mz_lan_rec *l, const char *bridge,
		    bool add)
{
	char e[64];
	snprintf(e, sizeof(e), "\"%s\"", bridge);
	put_elem(f, add, "inet", tag, "bridges", e, NULL);
	if (l->isolated)
		put_elem(f, add, "inet", tag, "isolated", e, NULL);
	if (l->nat)
		put_elem(f, add, "inet", tag, "natlans", e, NULL);
	snprintf(e, sizeof(e), "\"%s\" . \"%s\"", bridge, bridge);
	put_elem(f, add, "inet", tag, "intra", e, NULL);
}

static void ip6_hex(const uint8_t a[16], char out[35])
{
	strcpy(out, "0x");
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 + 2 * i, 3, "%02x", a[i]);
}

void mz_nft_put_lease(FILE *f, const char *tag, const struct mz_lease_rec *l, const char *veth,
		      bool add)
{
	char mac[18], ip4[16], e[160];
	mz_mac_fmt(l->mac, mac);
	mz_ip4_fmt(l->ip4, ip4);
	snprintf(e, sizeof(e), "\"%s\" . %s", veth, mac);
	put_elem(f, add, "bridge", tag, "mac", e, NULL);
	snprintf(e, sizeof(e), "\"%s\" . %s", veth, ip4);
	put_elem(f, add, "bridge", tag, "src4", e, NULL);
	snprintf(e, sizeof(e), "\"%s\" . %s . %s", veth, mac, ip4);
	put_elem(f, add, "bridge", tag, "arp4", e, NULL);
	/* IPv6: its address, the link-local address its kernel makes from its
	 * MAC, and :: (duplicate address detection, MLD before an address). */
	uint8_t ll[16];
	char ll6[48], ip6[48], llx[35], ip6x[35];
	mz_ip6_linklocal(l->mac, ll);
	mz_ip6_fmt(ll, ll6);
	ip6_hex(ll, llx);
	if (l->has_ip6) {
		mz_ip6_fmt(l->ip6, ip6);
		ip6_hex(l->ip6, ip6x);
		snprintf(e, sizeof(e), "\"%1$s\" . %2$s, \"%1$s\" . %3$s, \"%1$s\" . ::", veth, ip6, ll6);
		put_elem(f, add, "bridge", tag, "src6", e, NULL);
		snprintf(e, sizeof(e), "\"%1$s\" . %2$s, \"%1$s\" . %3$s", veth, ip6x, llx);
		put_elem(f, add, "bridge", tag, "nd6", e, NULL);
	} else {
		snprintf(e, sizeof(e), "\"%1$s\" . %2$s, \"%1$s\" . ::", veth, ll6);
		put_elem(f, add, "bridge", tag, "src6", e, NULL);
		snprintf(e, sizeof(e), "\"%s\" . %s", veth, llx);
		put_elem(f, add, "bridge", tag, "nd6", e, NULL);
	}
}

void mz_nft_put_rate(FILE *f, const char *tag, const struct mz_lease_rec *l, const char *veth,
		     bool add)
{
	if (l->rate_out <= 0)
		return;
	int64_t burst = mz_rate_burst(l->rate_out);
	fprintf(f, "add limit bridge %s l%lld { rate over %lld bytes/second burst %lld bytes }\n",
		tag, (long long)l->id, (long long)l->rate_out, (long long)burst);
	char e[64], lim[32];
	snprintf(e, sizeof(e), "\"%s\"", veth);
	snprintf(lim, sizeof(lim), "\"l%lld\"", (long long)l->id);
	put_elem(f, add, "bridge", tag, "egress", e, lim);
	if (!add)
		fprintf(f, "delete limit bridge %s l%lld\n", tag, (long long)l->id);
}

void mz_nft_put_fwd(FILE *f, const char *tag, const struct mz_fwd_rec *fw,
		    const struct mz_lease_rec *to, bool add)
{
	const char *proto = fw->proto == IPPROTO_UDP ? "udp" : "tcp";
	char key[32], val[80], ip[48];
	snprintf(key, sizeof(key), "%s . %d", proto, fw->host_port);
	mz_ip4_fmt(to->ip4, ip);
	snprintf(val, sizeof(val), "%s . %d", ip, fw->domain_port);
	put_elem(f, add, "inet", tag, "fwd4", key, val);
	if (to->has_ip6) {
		mz_ip6_fmt(to->ip6, ip);
		snprintf(val, sizeof(val), "%s . %d", ip, fw->domain_port);
		put_elem(f, add, "inet", tag, "fwd6", key, val);
	}
}
