/*
 * net.h — virtual LANs for domains.
 *
 * A LAN is a Linux bridge on the host with a private IPv4 subnet (and an IPv6
 * /64), whose first address is the host's.  A domain on a LAN gets a veth
 * pair: one end a port of the bridge, the other its eth0 (eth1, ... for more
 * LANs) in its own network namespace, with a MAC and addresses that mezzo
 * hands out once, keeps in the catalog and gives back only when the domain is
 * removed.  nftables (through libnftables, loaded on first use) keeps a
 * domain to its own MAC and addresses, LANs apart from each other and from
 * the host's services, masquerades what leaves a --nat LAN, drops what tries
 * to leave an --isolated one, and forwards host ports to domains.
 *
 * Lifecycle, as the domain code calls it:
 *   create  -> mz_net_plan          leases and port forwards, in the catalog
 *   start   -> mz_net_attach        bridge (if missing), veth, addresses,
 *                                   routes, filter elements, hosts files
 *   stop    -> mz_net_detach        filter elements go; the veth dies with
 *                                   the domain's network namespace
 *   rm      -> mz_net_forget_domain leases and forwards go
 *   crash   -> mz_net_cleanup_orphans (net rm, net prune, tests)
 *
 * Names in the kernel carry a tag of the store ("mz" + 4 hex digits of a
 * hash of its root), so two stores never touch each other's interfaces or
 * tables: bridge TAG-LANID, veth host end TAGvLEASEID (or TAGwLEASEID, see
 * net.c), nftables tables
 * "bridge TAG" and "inet TAG".  docs/net.md tells the whole story.
 */
#ifndef MZ_NET_H
#define MZ_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "../lib/error.h"
#include "../store/store.h"

/* Text of a lease's addresses: IPv4 (host order), IPv6, MAC (lower case). */
void mz_ip4_fmt(uint32_t ip, char out[16]);
void mz_ip6_fmt(const uint8_t ip[16], char out[48]);
void mz_mac_fmt(const uint8_t mac[6], char out[18]);

/* The LAN a domain is put on when none is named; made on first use. */
#define MZ_NET_DEFAULT_LAN "default"
/* NICs per domain (eth0 .. eth7). */
#define MZ_NET_MAX_NICS 8

/* ---- port forwards ------------------------------------------------------ */

struct mz_port_fwd {
	int proto;       /* IPPROTO_TCP or IPPROTO_UDP */
	int host_port;   /* 1..65535 */
	int domain_port; /* 1..65535 */
};

/* "HOSTPORT:DOMAINPORT[/tcp|/udp]", or "PORT[/PROTO]" for the same port on
 * both sides; tcp when no protocol is given.  EINVAL with a message that
 * says what is wrong. */
int mz_port_fwd_parse(const char *spec, struct mz_port_fwd *out, mz_error_t *err);

/* ---- the domain side ---------------------------------------------------- */

/* At `mezzo create`: put domain on lans[0..n) (its eth0, eth1, ...; n 0:
 * loopback only) and forward ports[0..nports) of the host to its eth0.  LANs
 * must exist, but for MZ_NET_DEFAULT_LAN, which is made on first use.  A
 * host port that a host service listens on, or that another domain has, is
 * refused.  Runs in a transaction of its own, nested in the caller's if one
 * is open: to make a domain and its plan atomic, call it between
 * mz_store_begin and mz_store_commit with mz_domain_rec_create.  EEXIST if
 * the domain has leases already. */
int mz_net_plan(mz_store *s, const char *domain, const char *const *lans, size_t n,
		const struct mz_port_fwd *ports, size_t nports, mz_error_t *err);

/* At start, from the supervisor, once the domain's network namespace exists
 * (netns_fd: open on it, loopback may be up already): for each lease, the
 * LAN's bridge (made if missing), a veth pair whose peer is born in netns_fd
 * as eth<nic> with the lease's MAC, addresses and (on the first LAN that has
 * a way out) default routes; the filter elements that let its traffic pass;
 * its port forwards.  Then the hosts file of its set of LANs (see
 * mz_net_hosts_file) is brought up to date, and rundir/resolv.conf written,
 * for the caller to bind-mount read-only over /etc/hosts and
 * /etc/resolv.conf.  The files of other sets of LANs that share one with it
 * learn of it by mz_net_refresh_hosts, which the caller runs next.  A domain
 * with no leases gets its resolv.conf only.  Thread-safe; the calling thread visits netns_fd for a moment.  On
 * failure the kernel state made so far is undone. */
int mz_net_attach(mz_store *s, const char *domain, int netns_fd, const char *rundir,
		  mz_error_t *err);

/* The hosts file that domain's supervisor binds over its /etc/hosts: one
 * per set of LANs, shared by every domain on the same LANs, rewritten in
 * place as their leases change (made empty here if missing: the attach
 * fills it).  NULL with err if domain has no LAN.  Free it. */
char *mz_net_hosts_file(mz_store *s, const char *domain, mz_error_t *err);

/* After an attach, once the domain runs: bring up to date the hosts files of
 * the other sets of LANs that share a LAN with it (a domain on LANs A and B
 * and one on A alone read different files).  Kept out of mz_net_attach so
 * that a start does not wait for it. */
void mz_net_refresh_hosts(mz_store *s, const char *domain);

/* Optional: take ~1.4 ms off the attach by starting libnftables now (load
 * it, make its context, fault in its caches with one cheap command), e.g. on
 * a thread of the supervisor while it waits for the domain's pid 1 to build
 * its root.  Best after any fork/clone without CLONE_VM of the caller: a
 * fork makes the warm memory copy-on-write again.  Thread-safe; a failure is
 * left for the attach to report. */
void mz_net_prepare(mz_store *s);

/* Bandwidth limits of a domain, in bytes per second (0: none), for each of
 * its NICs, from its next attach on: what it receives is shaped by a token
 * bucket (tc tbf) on its veth's host end; what it sends is policed
 * (dropped above the rate) by nftables on its bridge port.  EINVAL below
 * 1000 bytes/s or above 2^34. */
int mz_net_set_rates(mz_store *s, const char *domain, int64_t ingress, int64_t egress,
		     mz_error_t *err);

/* At stop: the domain's filter elements and forwards go (its traffic is
 * dropped from then on, whatever is left).  Its veth pair is destroyed by the
 * kernel with the network namespace, asynchronously: nothing is deleted
 * synchronously here.  Harmless if not attached. */
int mz_net_detach(mz_store *s, const char *domain, mz_error_t *err);

/* At rm, in the caller's transaction (with the domain's record): detach if
 * needed, then the domain's leases and forwards go, and the hosts files of
 * its LANs forget it. */
int mz_net_forget_domain(mz_store *s, const char *domain, mz_error_t *err);

/* The fast path of a LAN as the kernel holds it now: one entry per member
 * it can deliver to (a running member's lease), whether that member may
 * also send through it (no egress limit) and how many frames it has sent
 * that way.  *n 0 when the LAN has no fast path (no member running, or a
 * kernel without BPF, or MEZZO_NET_FAST=0).  Free *out. */
struct mz_net_fast_stat {
	int64_t lease;
	int ifindex;       /* its veth's host end */
	bool sends;
	uint64_t frames;
};
int mz_net_fast_stats(mz_store *s, int64_t lan_id, struct mz_net_fast_stat **out, size_t *n,
		      mz_error_t *err);

/* After a crash: filter elements of leases whose veth is gone, veths of the
 * store's whose lease is gone or whose domain is a stopped catalog domain,
 * bridges of LANs that are gone; then the rule set is loaded again whole
 * (after a firewall reload flushed it), or, once the store has no bridge
 * left, its nftables tables go.  Deletes interfaces synchronously (~20 ms each): never
 * on a start/stop path.  *removed (optional) counts what went. */
int mz_net_cleanup_orphans(mz_store *s, int *removed, mz_error_t *err);

/* ---- LANs ------------------------------------------------------------- */

struct mz_lan_opts {
	const char *subnet;  /* IPv4 CIDR (/8 ../30); NULL: a free private /24 */
	const char *subnet6; /* IPv6 CIDR (/48 ../112); NULL: a free ULA /64;
				"none": no IPv6 */
	bool nat;            /* masquerade what leaves the LAN */
	bool isolated;       /* nothing leaves the LAN (no default route) */
};

/* Make a LAN record after checking name and subnets: a subnet may overlap
 * neither another LAN's nor any route of the host (read over netlink).
 * Bridges are made by the first attach. */
int mz_net_lan_create(mz_store *s, const char *name, const struct mz_lan_opts *o,
		      struct mz_lan_rec *out, mz_error_t *err);
/* The default LAN (a NAT'ed /20), made if missing. */
int mz_net_lan_default(mz_store *s, struct mz_lan_rec *out, mz_error_t *err);
/* Remove a LAN: refused (EBUSY) while domains have leases on it, unless
 * force, which detaches them and takes their leases. The bridge, the veths
 * of its running members and its filter elements go at once. */
int mz_net_lan_remove(mz_store *s, const char *name, bool force, mz_error_t *err);

/* Kernel name of a LAN's bridge (a lease's veth is in its record). */
void mz_net_bridge_name(mz_store *s, int64_t lan_id, char out[16]);
/* "mz" + 4 hex digits: the store's tag on its interfaces and tables. */
void mz_net_tag(mz_store *s, char out[8]);
/* Is the interface name there (in the host's namespace)? */
bool mz_net_link_exists(const char *name);

#endif
