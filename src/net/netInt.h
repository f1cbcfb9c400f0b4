/*
 * netInt.h — what src/net's files (and its tests) share and nobody else sees.
 */
#ifndef MZ_NET_INT_H
#define MZ_NET_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../lib/error.h"
#include "../store/store.h"
#include "net.h"

/* ---- addresses (addr.c) ------------------------------------------------ */

struct mz_cidr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network byte order; 4 bytes used for IPv4 */
	int len;
};

/* Parse "A.B.C.D/N" or "X:...:Y/N" (family 0: either; else that one).
 * Host bits must be zero; the prefix must be given. */
int mz_cidr_parse(const char *s, int family, struct mz_cidr *out, mz_error_t *err);
/* Do the two prefixes share an address? (Different families never do.) */
bool mz_cidr_overlap(const struct mz_cidr *a, const struct mz_cidr *b);
/* "10.1.2.0/24", "fd00::/64" */
void mz_cidr_fmt(const struct mz_cidr *c, char out[64]);
/* A LAN's subnets as CIDRs (c6->len 0: no IPv6). */
void mz_lan_cidrs(const struct mz_lan_rec *l, struct mz_cidr *c4, struct mz_cidr *c6);
/* IPv4 address (host order) to network-order bytes. */
void mz_ip4_bytes(uint32_t ip, uint8_t out[4]);
/* The address an IPv6 stack makes itself from mac (fe80::/64, EUI-64). */
void mz_ip6_linklocal(const uint8_t mac[6], uint8_t out[16]);
/* The host's address on a LAN: the subnet's first. */
uint32_t mz_lan_gw4(const struct mz_lan_rec *l);
void mz_lan_gw6(const struct mz_lan_rec *l, uint8_t out[16]);
/* Check a LAN name: 1-32 of [A-Za-z0-9_.-], not starting with '.' or '-'. */
int mz_lan_name_check(const char *name, mz_error_t *err);

/* Pick a subnet for a new LAN that overlaps no other LAN and no route in
 * routes[]: IPv4 10.x.y.0/len4, IPv6 a /64 of the store's ULA /48. */
int mz_subnet_pick4(const struct mz_cidr *taken, size_t ntaken, int len4, uint32_t seed,
		    struct mz_cidr *out, mz_error_t *err);
int mz_subnet_pick6(const struct mz_cidr *taken, size_t ntaken, const uint8_t ula48[6],
		    struct mz_cidr *out, mz_error_t *err);
/* Every route of the host (both families), as CIDRs, minus default routes
 * and link-local and multicast ones, which any subnet may sit beside. */
int mz_host_routes(struct mz_cidr **out, size_t *n, mz_error_t *err);

/* A lease's host end: TAG + a variant letter + ID (net.c says why there
 * are several). */
#define MZ_NET_VETH_VARIANTS "vwxy"
void mz_net_veth_name(mz_store *s, int64_t lease_id, char variant, char out[16]);

/* ---- nftables (nft.c) --------------------------------------------------- */

/* Run a buffer of nft commands as one transaction; what: for the message.
 * output (optional) gets what the commands printed (malloc'ed). */
int mz_nft_run(const char *cmds, const char *what, char **output, mz_error_t *err);
/* Load libnftables, make its context and warm its caches with a run
 * against the store's tables (tag); -errno if any of it failed. */
int mz_nft_warm(const char *tag);

/* Writers of the commands for the store's tables ("TAG" = mz_net_tag). */
/* The tables, sets and chains, with their fixed rules; idempotent (chains
 * are flushed and refilled, sets keep their elements). */
void mz_nft_put_base(FILE *f, const char *tag);
/* Elements of a LAN (add or delete). */
void mz_nft_put_lan(FILE *f, const char *tag, const struct mz_lan_rec *l, const char *bridge,
		    bool add);
/* Elements of a lease: what its veth may send as. */
void mz_nft_put_lease(FILE *f, const char *tag, const struct mz_lease_rec *l, const char *veth,
		      bool add);
/* The burst allowed above a rate limit (bytes/s): 50 ms at the rate, 16 KiB
 * (a few full frames) at least. */
static inline int64_t mz_rate_burst(int64_t rate)
{
	return rate / 20 > 16384 ? rate / 20 : 16384;
}
/* The egress limit of a lease (nothing if it has none). */
void mz_nft_put_rate(FILE *f, const char *tag, const struct mz_lease_rec *l, const char *veth,
		     bool add);
/* Elements of a port forward to a lease's addresses. */
void mz_nft_put_fwd(FILE *f, const char *tag, const struct mz_fwd_rec *fw,
		    const struct mz_lease_rec *to, bool add);
/* Remove both tables. */
void mz_nft_put_drop(FILE *f, const char *tag);

/* ---- the fast path between members of a LAN (fast.c) ----------------- */

struct mz_nl;

/* The LAN's filter block: the store's tag and the LAN's id (blocks are per
 * network namespace, shared by every store of the host); 0, no fast path,
 * for a LAN id past 16 bits. */
uint32_t mz_net_fast_block(mz_store *s, int64_t lan_id);

struct mz_fast_member {
	int ifindex;          /* its veth's host end */
	int64_t lease;
	const uint8_t *mac;
	uint32_t ip4;         /* host byte order */
	const uint8_t *ip6;   /* NULL: none */
	bool send;            /* may send through it (false: an egress limit, which
				 nftables polices on the bridge) */
	bool shaped;          /* what it receives must leave its host end's qdisc
				 (an ingress limit) */
};
/* Put a member's veth on the fast path of block (its filter called name,
 * the LAN's bridge name; made with the first member): a clsact qdisc on the
 * veth, and its entries.  block 0: nothing. */
int mz_fast_join(struct mz_nl *nl, const char *name, uint32_t block,
		 const struct mz_fast_member *m, mz_error_t *err);
/* Remove the entries of lease (MAC mac), if they are there. */
int mz_fast_leave(struct mz_nl *nl, const char *name, uint32_t block, int64_t lease,
		  const uint8_t mac[6], mz_error_t *err);
/* Remove every entry for which keep(lease, ifindex, arg) is false. */
int mz_fast_prune(struct mz_nl *nl, const char *name, uint32_t block,
		  bool (*keep)(int64_t lease, int ifindex, void *arg), void *arg, int *removed,
		  mz_error_t *err);
/* One line per entry (tests); -ENOENT if the block has no fast path. */
int mz_fast_dump(struct mz_nl *nl, const char *name, uint32_t block, FILE *out,
		 mz_error_t *err);
/* The entries of block's fast path, one per member (see mz_net_fast_stats). */
int mz_fast_stats(struct mz_nl *nl, const char *name, uint32_t block,
		  struct mz_net_fast_stat **out, size_t *n, mz_error_t *err);
/* The same by LAN name, for tests. */
int mz_net_fast_dump(mz_store *s, const char *lan, FILE *out, mz_error_t *err);
/* For tests: the program with maps of its own, attached nowhere; members
 * are added as by a join; a frame is run through it (BPF_PROG_TEST_RUN) as
 * if it came in on ingress_ifindex, and *verdict is the program's return
 * value (TC_ACT_REDIRECT: the fast path; TC_ACT_UNSPEC: the bridge). */
struct mz_fast_prog {
	int prog, members, ports;
};
int mz_fast_prog_load(struct mz_fast_prog *p, mz_error_t *err);
int mz_fast_prog_add(struct mz_fast_prog *p, const struct mz_fast_member *m, mz_error_t *err);
int mz_fast_prog_run(struct mz_fast_prog *p, uint32_t ingress_ifindex, const void *frame,
		     size_t len, uint32_t *verdict);
void mz_fast_prog_close(struct mz_fast_prog *p);

/* ---- host files (hosts.c) ----------------------------------------------- */

/* Bring the hosts file of domain's set of LANs up to date (made if missing)
 * and write rundir/resolv.conf; leases[0..n) are the domain's, in NIC order
 * (the caller has them). */
int mz_hosts_write(mz_store *s, const char *domain, const struct mz_lease_rec *leases, size_t n,
		   const char *rundir, mz_error_t *err);
/* The hosts file of domain's set of LANs, made (empty) if missing; NULL
 * with err if it has no LAN.  Free it. */
char *mz_hosts_file(mz_store *s, const char *domain, mz_error_t *err);
/* Bring up to date the hosts files of the sets of LANs that share a LAN with
 * domain (all of them if NULL), and delete those of LANs that are gone.
 * Best effort. */
void mz_hosts_refresh(mz_store *s, const char *domain);

#endif
