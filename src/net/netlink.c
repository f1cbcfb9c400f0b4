/* netlink.c — see netlinkInt.h. */
#include "netlinkInt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include "mnl.h"
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/util.h"

/* Requests are small; a dump reply buffer holds many messages at once. */
#define NL_REQ_SIZE 1024
#define NL_RECV_SIZE 32768

int mz_nl_open(struct mz_nl *nl, int netns_fd, mz_error_t *err)
{
	memset(nl, 0, sizeof(*nl));
	int r = mz_dyn_load_mnl(err);
	if (r < 0)
		return r;
	int self = -1;
	if (netns_fd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return mz_error_sys(err, errno, "cannot open our network namespace");
		if (setns(netns_fd, CLONE_NEWNET) < 0) {
			int e = errno;
			close(self);
			return mz_error_sys(err, e, "cannot enter the domain's network namespace");
		}
	}
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	int e = errno;
	if (self >= 0) {
		if (setns(self, CLONE_NEWNET) < 0)
			abort(); /* our own namespace: cannot fail, and must not stay elsewhere */
		close(self);
	}
	if (nl->sock == NULL)
		return mz_error_sys(err, e, "cannot open a netlink socket");
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		e = errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return mz_error_sys(err, e, "cannot bind a netlink socket");
	}
	/* Acks without a copy of the request, errors with the kernel's text. */
	int one = 1;
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	return 0;
}

void mz_nl_close(struct mz_nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

static struct nlmsghdr *nl_req(struct mz_nl *nl, char *buf, int type, int flags)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = ++nl->seq;
	return h;
}

/*
 * Send one request and read until its ack (or the end of its dump).  Every
 * reply message goes to cb.  Returns 0 or the kernel's -errno; the message
 * is the caller's, who knows what was asked.
 */
static int nl_talk(struct mz_nl *nl, struct nlmsghdr *h, mnl_cb_t cb, void *arg)
{
	if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0)
		return -errno;
	cleanup_free char *buf = xmalloc(NL_RECV_SIZE);
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, buf, NL_RECV_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* A dump that other changes to the table interrupted says so on
		 * its messages (NLM_F_DUMP_INTR), and libmnl would stop there,
		 * the rest unread.  Listings here are best effort by nature
		 * (a link may come or go right after any dump anyway): the
		 * dump is read to its end and taken as it is. */
		int left = (int)n;
		for (struct nlmsghdr *m = (struct nlmsghdr *)buf; mnl_nlmsg_ok(m, left);
		     m = mnl_nlmsg_next(m, &left))
			m->nlmsg_flags &= ~NLM_F_DUMP_INTR;
		int r = mnl_cb_run(buf, n, h->nlmsg_seq, nl->portid, cb, arg);
		if (r == MNL_CB_STOP)
			return 0;
		if (r < 0)
			return errno ? -errno : -EIO;
	}
}

/* ---- links ---------------------------------------------------------- */

struct link_parse {
	struct mz_nl_link *out;
	int (*cb)(const struct mz_nl_link *, void *);
	void *arg;
	int stopped;
};

static int linkinfo_attr(const struct nlattr *a, void *data)
{
	struct mz_nl_link *l = data;
	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
		snprintf(l->kind, sizeof(l->kind), "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int link_attr(const struct nlattr *a, void *data)
{
	struct mz_nl_link *l = data;
	switch (mnl_attr_get_type(a)) {
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
			snprintf(l->name, sizeof(l->name), "%s", mnl_attr_get_str(a));
		break;
	case IFLA_MASTER:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			l->master = (int)mnl_attr_get_u32(a);
		break;
	case IFLA_ADDRESS:
		if (mnl_attr_get_payload_len(a) == 6)
			memcpy(l->mac, mnl_attr_get_payload(a), 6);
		break;
	case IFLA_LINKINFO:
		mnl_attr_parse_nested(a, linkinfo_attr, l);
		break;
	}
	return MNL_CB_OK;
}

static int link_msg(const struct nlmsghdr *h, void *data)
{
	struct link_parse *p = data;
	if (h->nlmsg_type != RTM_NEWLINK || p->stopped)
		return MNL_CB_OK;
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(h);
	struct mz_nl_link l;
	memset(&l, 0, sizeof(l));
	l.ifindex = ifi->ifi_index;
	l.flags = ifi->ifi_flags;
	mnl_attr_parse(h, sizeof(*ifi), link_attr, &l);
	if (p->out)
		*p->out = l;
	if (p->cb && p->cb(&l, p->arg))
		p->stopped = 1; /* read on to the end of the dump all the same */
	return MNL_CB_OK;
}

int mz_nl_link_get(struct mz_nl *nl, const char *name, struct mz_nl_link *out,
		   mz_error_t *err)
{
	if (strlen(name) >= IFNAMSIZ)
		return mz_error(err, EINVAL, "interface name '%s' is too long", name);
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_GETLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(h, IFLA_IFNAME, name);
	/* no stats: they are most of a link message */
	mnl_attr_put_u32(h, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	struct link_parse p = {.out = out};
	int r = nl_talk(nl, h, link_msg, &p);
	if (r == -ENODEV)
		return r;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot look up interface %s", name);
	return 0;
}

int mz_nl_link_list(struct mz_nl *nl, int (*cb)(const struct mz_nl_link *, void *), void *arg,
		    mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_GETLINK, NLM_F_DUMP);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_u32(h, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	struct link_parse p = {.cb = cb, .arg = arg};
	int r = nl_talk(nl, h, link_msg, &p);
	if (r < 0)
		return mz_error_sys(err, -r, "cannot list network interfaces");
	return 0;
}

int mz_nl_bridge_add(struct mz_nl *nl, const char *name, const uint8_t mac[6], int *ifindex,
		     mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(h, IFLA_IFNAME, name);
	mnl_attr_put(h, IFLA_ADDRESS, 6, mac);
	struct nlattr *info = mnl_attr_nest_start(h, IFLA_LINKINFO);
	mnl_attr_put_strz(h, IFLA_INFO_KIND, "bridge");
	struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
	mnl_attr_put_u32(h, IFLA_BR_STP_STATE, 0);
	mnl_attr_put_u32(h, IFLA_BR_FORWARD_DELAY, 0);
	mnl_attr_nest_end(h, data);
	mnl_attr_nest_end(h, info);
	int r = nl_talk(nl, h, NULL, NULL);
	if (r == -EEXIST)
		return r;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot create bridge %s", name);
	struct mz_nl_link l;
	if ((r = mz_nl_link_get(nl, name, &l, err)) < 0)
		return r == -ENODEV ? mz_error(err, ENODEV, "bridge %s vanished", name) : r;
	*ifindex = l.ifindex;
	return 0;
}

int mz_nl_veth_add(struct mz_nl *nl, const struct mz_nl_veth *v, mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(h, IFLA_IFNAME, v->name);
	if (v->master > 0)
		mnl_attr_put_u32(h, IFLA_MASTER, (uint32_t)v->master);
	struct nlattr *info = mnl_attr_nest_start(h, IFLA_LINKINFO);
	mnl_attr_put_strz(h, IFLA_INFO_KIND, "veth");
	struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
	/* The peer: an ifinfomsg of its own, then its attributes. */
	struct nlattr *peer = mnl_attr_nest_start(h, VETH_INFO_PEER);
	struct ifinfomsg *pifi = mnl_nlmsg_put_extra_header(h, sizeof(*pifi));
	memset(pifi, 0, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	/* Not IFF_UP: this kernel (6.18) answers ENOTCONN to a peer made up
	 * in another namespace.  The caller brings it up from in there. */
	mnl_attr_put_strz(h, IFLA_IFNAME, v->peer_name);
	if (v->peer_mac)
		mnl_attr_put(h, IFLA_ADDRESS, 6, v->peer_mac);
	if (v->peer_netns_fd >= 0)
		mnl_attr_put_u32(h, IFLA_NET_NS_FD, (uint32_t)v->peer_netns_fd);
	mnl_attr_nest_end(h, peer);
	mnl_attr_nest_end(h, data);
	mnl_attr_nest_end(h, info);
	int r = nl_talk(nl, h, NULL, NULL);
	if (r == -EEXIST)
		return r;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot create veth pair %s/%s", v->name, v->peer_name);
	return 0;
}

int mz_nl_link_del(struct mz_nl *nl, int ifindex, mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_DELLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	int r = nl_talk(nl, h, NULL, NULL);
	if (r == -ENODEV)
		return r;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot delete interface %d", ifindex);
	return 0;
}

int mz_nl_link_set_up(struct mz_nl *nl, int ifindex, bool up, mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_NEWLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = up ? IFF_UP : 0;
	ifi->ifi_change = IFF_UP;
	int r = nl_talk(nl, h, NULL, NULL);
	if (r < 0)
		return mz_error_sys(err, -r, "cannot set interface %d %s", ifindex,
				    up ? "up" : "down");
	return 0;
}

/* ---- addresses and routes ------------------------------------------- */

static size_t addr_len(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

int mz_nl_addr_add(struct mz_nl *nl, int ifindex, int family, const void *addr, int prefixlen,
		   bool nodad, mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof(*ifa));
	ifa->ifa_family = family;
	ifa->ifa_prefixlen = prefixlen;
	ifa->ifa_index = ifindex;
	ifa->ifa_flags = nodad ? IFA_F_NODAD : 0;
	mnl_attr_put(h, IFA_LOCAL, addr_len(family), addr);
	mnl_attr_put(h, IFA_ADDRESS, addr_len(family), addr);
	if (nodad)
		mnl_attr_put_u32(h, IFA_FLAGS, IFA_F_NODAD);
	int r = nl_talk(nl, h, NULL, NULL);
	if (r == -EEXIST)
		return r;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot add an IPv%d address to interface %d",
				    family == AF_INET6 ? 6 : 4, ifindex);
	return 0;
}

int mz_nl_route_add(struct mz_nl *nl, int family, const void *dst, int dstlen, const void *gw,
		    int ifindex, mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(h, sizeof(*rtm));
	rtm->rtm_family = family;
	rtm->rtm_dst_len = dst ? dstlen : 0;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (dst)
		mnl_attr_put(h, RTA_DST, addr_len(family), dst);
	if (gw)
		mnl_attr_put(h, RTA_GATEWAY, addr_len(family), gw);
	mnl_attr_put_u32(h, RTA_OIF, (uint32_t)ifindex);
	int r = nl_talk(nl, h, NULL, NULL);
	if (r == -EEXIST)
		return r;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot add an IPv%d route on interface %d",
				    family == AF_INET6 ? 6 : 4, ifindex);
	return 0;
}

struct route_parse {
	int (*cb)(const struct mz_nl_route *, void *);
	void *arg;
	int stopped;
};

static int route_attr(const struct nlattr *a, void *data)
{
	struct mz_nl_route *rt = data;
	switch (mnl_attr_get_type(a)) {
	case RTA_DST:
		if (mnl_attr_get_payload_len(a) == addr_len(rt->family))
			memcpy(rt->dst, mnl_attr_get_payload(a), addr_len(rt->family));
		break;
	case RTA_TABLE:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			rt->table = (int)mnl_attr_get_u32(a);
		break;
	case RTA_OIF:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			rt->oif = (int)mnl_attr_get_u32(a);
		break;
	}
	return MNL_CB_OK;
}

static int route_msg(const struct nlmsghdr *h, void *data)
{
	struct route_parse *p = data;
	if (h->nlmsg_type != RTM_NEWROUTE || p->stopped)
		return MNL_CB_OK;
	struct rtmsg *rtm = mnl_nlmsg_get_payload(h);
	struct mz_nl_route rt;
	memset(&rt, 0, sizeof(rt));
	rt.family = rtm->rtm_family;
	rt.dstlen = rtm->rtm_dst_len;
	rt.table = rtm->rtm_table;
	rt.type = rtm->rtm_type;
	mnl_attr_parse(h, sizeof(*rtm), route_attr, &rt);
	if (p->cb(&rt, p->arg))
		p->stopped = 1;
	return MNL_CB_OK;
}

int mz_nl_route_list(struct mz_nl *nl, int family, int (*cb)(const struct mz_nl_route *, void *),
		     void *arg, mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(h, sizeof(*rtm));
	rtm->rtm_family = family;
	struct route_parse p = {.cb = cb, .arg = arg};
	int r = nl_talk(nl, h, route_msg, &p);
	if (r < 0)
		return mz_error_sys(err, -r, "cannot list the host's IPv%d routes",
				    family == AF_INET6 ? 6 : 4);
	return 0;
}

/* ---- traffic control ------------------------------------------------- */

int mz_nl_qdisc_tbf(struct mz_nl *nl, int ifindex, uint64_t rate, uint32_t burst,
		    mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, rate ? RTM_NEWQDISC : RTM_DELQDISC,
				    (rate ? NLM_F_CREATE | NLM_F_REPLACE : 0) | NLM_F_ACK);
	struct tcmsg *tcm = mnl_nlmsg_put_extra_header(h, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_ROOT;
	tcm->tcm_handle = 0x6d7a0000; /* "mz": 6d7a: */
	if (rate) {
		mnl_attr_put_strz(h, TCA_KIND, "tbf");
		struct nlattr *opts = mnl_attr_nest_start(h, TCA_OPTIONS);
		struct tc_tbf_qopt q;
		memset(&q, 0, sizeof(q));
		/* The link layer is said, so the kernel computes packet times
		 * itself and wants no rate table; rates past 32 bits go in
		 * TCA_TBF_RATE64.  The queue holds ~50 ms at the rate, at least
		 * two bursts, so TCP sees delay before it sees drops. */
		q.rate.rate = rate > UINT32_MAX ? UINT32_MAX : (uint32_t)rate;
		q.rate.linklayer = TC_LINKLAYER_ETHERNET;
		uint64_t limit = rate / 20;
		if (limit < 2ull * burst)
			limit = 2ull * burst;
		q.limit = limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit;
		q.mtu = 1u << 16;
		mnl_attr_put(h, TCA_TBF_PARMS, sizeof(q), &q);
		if (rate > UINT32_MAX)
			mnl_attr_put_u64(h, TCA_TBF_RATE64, rate);
		mnl_attr_put_u32(h, TCA_TBF_BURST, burst);
		mnl_attr_nest_end(h, opts);
	}
	int r = nl_talk(nl, h, NULL, NULL);
	if (r == -ENOENT && !rate)
		return r;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot %s the rate limit of interface %d",
				    rate ? "set" : "remove", ifindex);
	return 0;
}

int mz_nl_qdisc_clsact(struct mz_nl *nl, int ifindex, uint32_t block, mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	struct tcmsg *tcm = mnl_nlmsg_put_extra_header(h, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_CLSACT;
	tcm->tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0);
	mnl_attr_put_strz(h, TCA_KIND, "clsact");
	mnl_attr_put_u32(h, TCA_INGRESS_BLOCK, block);
	int r = nl_talk(nl, h, NULL, NULL);
	if (r < 0)
		return mz_error_sys(err, -r, "cannot add a clsact qdisc (block %u) to interface %d",
				    block, ifindex);
	return 0;
}

/* A filter request addressed to a shared block rather than to a link. */
static struct tcmsg *block_tcm(struct nlmsghdr *h, uint32_t block, uint16_t prio,
			       uint32_t handle)
{
	struct tcmsg *tcm = mnl_nlmsg_put_extra_header(h, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = TCM_IFINDEX_MAGIC_BLOCK;
	tcm->tcm_block_index = block;
	tcm->tcm_handle = handle;
	tcm->tcm_info = TC_H_MAKE((uint32_t)prio << 16, htons(ETH_P_ALL));
	return tcm;
}

int mz_nl_block_bpf_add(struct mz_nl *nl, uint32_t block, uint16_t prio, uint32_t handle,
			int prog_fd, const char *name, mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_NEWTFILTER,
				    NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	block_tcm(h, block, prio, handle);
	mnl_attr_put_strz(h, TCA_KIND, "bpf");
	mnl_attr_put_u32(h, TCA_CHAIN, 0);
	struct nlattr *opts = mnl_attr_nest_start(h, TCA_OPTIONS);
	mnl_attr_put_u32(h, TCA_BPF_FD, (uint32_t)prog_fd);
	mnl_attr_put_strz(h, TCA_BPF_NAME, name);
	/* direct action: the program's return value is the verdict */
	mnl_attr_put_u32(h, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
	mnl_attr_nest_end(h, opts);
	int r = nl_talk(nl, h, NULL, NULL);
	if (r == -EEXIST)
		return r;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot add filter %s to block %u", name, block);
	return 0;
}

struct bpf_find {
	uint32_t handle, prio, prog_id;
	char *name;
	bool found;
};

static int bpf_opt_attr(const struct nlattr *a, void *data)
{
	struct bpf_find *f = data;
	if (mnl_attr_get_type(a) == TCA_BPF_ID && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		f->prog_id = mnl_attr_get_u32(a);
	else if (mnl_attr_get_type(a) == TCA_BPF_NAME &&
		 mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
		snprintf(f->name, 64, "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int bpf_filter_msg(const struct nlmsghdr *h, void *data)
{
	struct bpf_find *f = data;
	const struct tcmsg *tcm = mnl_nlmsg_get_payload(h);
	/* the dump also names each classifier instance itself (handle 0) */
	if (h->nlmsg_type != RTM_NEWTFILTER || tcm->tcm_handle != f->handle ||
	    (tcm->tcm_info >> 16) != f->prio || f->found)
		return MNL_CB_OK;
	const struct nlattr *a;
	bool bpf = false;
	mnl_attr_for_each(a, h, sizeof(*tcm)) {
		if (mnl_attr_get_type(a) == TCA_KIND && mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
			bpf = strcmp(mnl_attr_get_str(a), "bpf") == 0;
		else if (mnl_attr_get_type(a) == TCA_OPTIONS && bpf)
			mnl_attr_parse_nested(a, bpf_opt_attr, f);
	}
	f->found = bpf && f->prog_id != 0;
	return MNL_CB_OK;
}

int mz_nl_block_bpf_get(struct mz_nl *nl, uint32_t block, uint16_t prio, uint32_t handle,
			uint32_t *prog_id, char name[64], mz_error_t *err)
{
	char buf[NL_REQ_SIZE];
	struct nlmsghdr *h = nl_req(nl, buf, RTM_GETTFILTER, NLM_F_DUMP);
	block_tcm(h, block, prio, 0);
	struct bpf_find f = {.handle = handle, .prio = prio, .name = name};
	name[0] = 0;
	int r = nl_talk(nl, h, bpf_filter_msg, &f);
	/* no such block: an empty dump or EINVAL, as the kernel goes */
	if (r == -EINVAL || r == -ENOENT || (r == 0 && !f.found))
		return -ENOENT;
	if (r < 0)
		return mz_error_sys(err, -r, "cannot list the filters of block %u", block);
	*prog_id = f.prog_id;
	return 0;
}
