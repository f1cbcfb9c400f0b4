/*
 * netlinkInt.h — the few rtnetlink requests mezzo's LANs are made of, over
 * libmnl.
 *
 * Why not `ip`: spawning it costs ~2 ms a call, more than a whole attach is
 * allowed to.  Why so few: a LAN is a bridge, a domain's NIC a veth pair
 * whose peer is born in the domain's network namespace (IFLA_NET_NS_FD, so
 * there is no move), plus addresses and default routes in there.
 *
 * One struct mz_nl is one socket in one network namespace, for one sequence
 * of requests.  Every request asks for an ack and waits for it: a function
 * returns 0 or the kernel's -errno, with a message in err.
 */
#ifndef MZ_NET_NETLINK_INT_H
#define MZ_NET_NETLINK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../lib/error.h"

struct mnl_socket;

struct mz_nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
};

/* A socket in the calling thread's network namespace (netns_fd < 0) or in
 * the namespace of netns_fd (the thread visits it with setns to make the
 * socket and comes back: a socket stays in the namespace it was made in). */
int mz_nl_open(struct mz_nl *nl, int netns_fd, mz_error_t *err);
void mz_nl_close(struct mz_nl *nl);
#define cleanup_nl __attribute__((cleanup(mz_nl_close)))

struct mz_nl_link {
	int ifindex;
	char name[16];
	char kind[16];      /* "bridge", "veth", ... ("" if none) */
	int master;         /* ifindex of the bridge it is a port of, 0 if none */
	unsigned flags;     /* IFF_* */
	uint8_t mac[6];
};

/* The link called name: 0, or -ENODEV (err untouched) when there is none. */
int mz_nl_link_get(struct mz_nl *nl, const char *name, struct mz_nl_link *out,
		   mz_error_t *err);
/* Every link of the namespace; cb returns non-zero to stop. */
int mz_nl_link_list(struct mz_nl *nl, int (*cb)(const struct mz_nl_link *, void *), void *arg,
		    mz_error_t *err);
/* A new bridge, up, with a fixed MAC (a bridge otherwise takes the lowest
 * MAC of its ports, so its address would change under its LAN's
 * neighbour caches as domains come and go) and STP off, so that a new port
 * forwards at once.  -EEXIST if the name is taken. */
int mz_nl_bridge_add(struct mz_nl *nl, const char *name, const uint8_t mac[6], int *ifindex,
		     mz_error_t *err);

struct mz_nl_veth {
	const char *name;      /* host end */
	int master;            /* bridge to join at birth (0: none) */
	const char *peer_name; /* other end, made in peer_netns_fd */
	const uint8_t *peer_mac; /* NULL: random */
	int peer_netns_fd;     /* -1: beside the host end */
};
/* One request makes the pair: host end up and a port of master, peer (down)
 * with its name and MAC in its namespace. -EEXIST if a name is taken. */
int mz_nl_veth_add(struct mz_nl *nl, const struct mz_nl_veth *v, mz_error_t *err);
/* Delete a link (both ends of a veth go).  -ENODEV if there is none.  Takes
 * 15-25 ms (an RCU grace period under the rtnl lock): not for hot paths. */
int mz_nl_link_del(struct mz_nl *nl, int ifindex, mz_error_t *err);
/* Set a link up or down. */
int mz_nl_link_set_up(struct mz_nl *nl, int ifindex, bool up, mz_error_t *err);

/* Add an address (family AF_INET or AF_INET6, addr 4 or 16 bytes).  nodad:
 * usable at once, with no duplicate address detection (mezzo hands the
 * addresses out, so they are unique by construction).  -EEXIST if present. */
int mz_nl_addr_add(struct mz_nl *nl, int ifindex, int family, const void *addr, int prefixlen,
		   bool nodad, mz_error_t *err);
/* Add a route to dst/dstlen (dst NULL: the default route) via gw (NULL: on
 * link) out of ifindex, in the main table.  -EEXIST if present. */
int mz_nl_route_add(struct mz_nl *nl, int family, const void *dst, int dstlen, const void *gw,
		    int ifindex, mz_error_t *err);

struct mz_nl_route {
	int family;
	uint8_t dst[16];     /* network byte order */
	int dstlen;          /* 0: a default route */
	int table;
	int type;            /* RTN_UNICAST, RTN_LOCAL, ... */
	int oif;             /* 0 if none (multipath, blackhole, ...) */
};
/* Every route of family (AF_INET, AF_INET6) in every table. */
int mz_nl_route_list(struct mz_nl *nl, int family, int (*cb)(const struct mz_nl_route *, void *),
		     void *arg, mz_error_t *err);

/* Token bucket on a link's egress (the root qdisc is replaced): rate in
 * bytes per second, burst in bytes; rate 0 removes mezzo's root qdisc
 * (-ENOENT if there was none). */
int mz_nl_qdisc_tbf(struct mz_nl *nl, int ifindex, uint64_t rate, uint32_t burst,
		    mz_error_t *err);

/* A clsact qdisc on a link whose ingress hook is the shared filter block
 * `block` (a per-netns index; the kernel makes the block with the first
 * qdisc that names it and frees it, filters and all, with the last one).
 * -EEXIST if the link has a clsact already. */
int mz_nl_qdisc_clsact(struct mz_nl *nl, int ifindex, uint32_t block, mz_error_t *err);
/* A direct-action cls_bpf filter running prog_fd, called name, on every
 * protocol in chain 0 of block at prio/handle.  -EEXIST if one is there
 * already; another -errno (EINVAL here) if there is no such block. */
int mz_nl_block_bpf_add(struct mz_nl *nl, uint32_t block, uint16_t prio, uint32_t handle,
			int prog_fd, const char *name, mz_error_t *err);
/* The program id and name of the cls_bpf filter at prio/handle of block:
 * 0, or -ENOENT (err untouched) when there is none, or no such block. */
int mz_nl_block_bpf_get(struct mz_nl *nl, uint32_t block, uint16_t prio, uint32_t handle,
			uint32_t *prog_id, char name[64], mz_error_t *err);

#endif
