/*
 * fast.c — the fast path between members of one LAN: known unicast TCP and
 * UDP from a domain to another domain of its LAN goes from the sender's
 * veth straight into the receiver's, never entering the bridge.
 *
 * Why: the bridge is in the host's network namespace, where this host has
 * net.bridge.bridge-nf-call-iptables=1 (br_netfilter is built in and the
 * global sysctl is ORed with the per-bridge option), so every bridged IPv4
 * frame also ran conntrack and the inet forward chain, besides mezzo's bridge
 * chain of ~10 rules: 1.29x the round trip of a bare veth pair, against a
 * target of 1.1x (docs/benchmarks.md, issue 4).
 *
 * How: each member's host end has a clsact qdisc whose ingress is the LAN's
 * shared filter block; the block holds one direct-action cls_bpf filter whose
 * program looks the frame up in two hash maps of the LAN:
 *
 *   members: ingress ifindex -> the MAC, IPv4 and IPv6 address the veth's
 *            domain owns (the same facts as nft.c's mac/src4/src6 sets)
 *   ports:   destination MAC -> the receiver's host end
 *
 * and redirects it only if all of these hold: no VLAN tag; the sender is a
 * member; its source MAC is the member's; IPv4 with the member's source
 * address, or IPv6 with its (global) address, and the transport header comes
 * right after the IP header and is TCP or UDP; the destination MAC is
 * another member's.  Anything else (ARP, ND, ICMP, broadcast, multicast, the
 * gateway, extension headers, link-local sources, spoofed or unknown
 * sources) returns TC_ACT_UNSPEC and takes the bridge as before, where
 * nftables judges it.  A block, and so its maps, belongs to one LAN: a
 * member cannot reach another LAN's MACs through it.
 *
 * bpf_redirect_peer hands the frame to the receiver's eth0 inside its
 * namespace without a second trip through a backlog queue (skb_scrub_packet
 * makes it PACKET_HOST there); a receiver with an ingress rate limit is
 * reached with bpf_redirect through its host end's egress instead, where its
 * tbf shapes it.  A sender with an egress limit has no members entry: its
 * traffic takes the bridge, where nftables polices it.
 *
 * Why not flower + gact + mirred, or u32: this kernel has neither cls_flower
 * nor act_gact (nor act_police, matchall); u32 + mirred egress redirect was
 * measured at 1.14x a bare veth's round trip on one CPU (one backlog hop
 * more), this program at 1.04x.
 *
 * What lives where: the program and maps have no name in any file system;
 * the filter holds the program, the program its maps.  A later attach finds
 * them through the block (a netlink dump gives the program's id, the
 * program's info its maps' ids).  The block goes with the last qdisc naming
 * it, that is with the last member's veth, and everything with it.  Entries
 * carry their lease's id, so a detach or a cleanup removes exactly its own.
 */
#include "netInt.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"
#include "netlinkInt.h"

/* One filter per block, always here: the block is the LAN's own. */
#define FAST_PRIO 1
#define FAST_HANDLE 1
/* A bridge takes 1024 ports at most: so many members at most. */
#define FAST_MAX 1024

/* members: key the host end's ifindex (u32) */
struct fast_member_val {
	uint8_t mac[6];
	uint8_t has_ip6;
	uint8_t pad;
	uint8_t ip4[4];   /* network order */
	uint8_t ip6[16];
	uint32_t pad2;
	uint64_t hits;    /* frames it sent through the fast path */
	int64_t lease;
};
/* ports: key the MAC, zero-padded to 8 bytes */
struct fast_port_val {
	uint32_t ifindex;
	uint32_t flags;   /* FAST_SHAPED */
	int64_t lease;
};
#define FAST_SHAPED 1u

_Static_assert(offsetof(struct fast_member_val, has_ip6) == 6, "layout");
_Static_assert(offsetof(struct fast_member_val, ip4) == 8, "layout");
_Static_assert(offsetof(struct fast_member_val, ip6) == 12, "layout");
_Static_assert(offsetof(struct fast_member_val, hits) == 32, "layout");
_Static_assert(offsetof(struct fast_port_val, flags) == 4, "layout");

static int sys_bpf(int cmd, union bpf_attr *a)
{
	return (int)syscall(__NR_bpf, cmd, a, sizeof(*a));
}

/* ---- the program ----------------------------------------------------------- */

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define AND_IMM(d, i) INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, i)
#define LDX(sz, d, s, o) INSN(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX(sz, d, s, o) INSN(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define ST(sz, d, o, i) INSN(BPF_ST | BPF_MEM | (sz), d, 0, o, i)
#define XADD64(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define LD_MAP(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* Jumps name a label in .off until fast_prog resolves it. */
#define JIMM(op, d, i, L) INSN(BPF_JMP | (op) | BPF_K, d, 0, L, i)
#define JREG(op, d, s, L) INSN(BPF_JMP | (op) | BPF_X, d, s, L, 0)
#define JA(L) INSN(BPF_JMP | BPF_JA, 0, 0, L, 0)
#define LABEL(L) INSN(0xff, 0, 0, L, 0)
enum { L_PASS = 1, L_V4, L_V6, L_L4, L_DST, L_EGRESS, L_COUNT };

/* __sk_buff fields read (uapi, stable) */
#define SKB_VLAN_PRESENT offsetof(struct __sk_buff, vlan_present)
#define SKB_INGRESS_IFINDEX offsetof(struct __sk_buff, ingress_ifindex)
#define SKB_DATA offsetof(struct __sk_buff, data)
#define SKB_DATA_END offsetof(struct __sk_buff, data_end)

/*
 * r6 ctx, r7 frame start, r8 frame end, r9 the sender's members entry.
 * Frame offsets: Ethernet dst 0, src 6, type 12; IPv4 at 14 (version 14,
 * protocol 23, source 26); IPv6 at 14 (next header 20, source 22-37).
 * Loads from the frame and from the entry are both in memory order, so
 * bytes compare as they are; the Ethernet type loads little-endian.
 */
static size_t fast_prog(int members_fd, int ports_fd, struct bpf_insn *out, size_t max)
{
	const struct bpf_insn raw[] = {
		MOV_REG(6, 1),
		LDX(BPF_W, 2, 6, SKB_VLAN_PRESENT), JIMM(BPF_JNE, 2, 0, L_PASS),
		LDX(BPF_W, 7, 6, SKB_DATA), LDX(BPF_W, 8, 6, SKB_DATA_END),
		/* the sender: its veth, not anything in the frame */
		LDX(BPF_W, 2, 6, SKB_INGRESS_IFINDEX), STX(BPF_W, 10, 2, -4),
		LD_MAP(1, members_fd), MOV_REG(2, 10), ADD_IMM(2, -4),
		CALL(BPF_FUNC_map_lookup_elem),
		JIMM(BPF_JEQ, 0, 0, L_PASS), MOV_REG(9, 0),
		MOV_REG(1, 7), ADD_IMM(1, 14), JREG(BPF_JGT, 1, 8, L_PASS),
		/* its own source MAC */
		LDX(BPF_W, 1, 7, 6), LDX(BPF_W, 2, 9, 0), JREG(BPF_JNE, 1, 2, L_PASS),
		LDX(BPF_H, 1, 7, 10), LDX(BPF_H, 2, 9, 4), JREG(BPF_JNE, 1, 2, L_PASS),
		LDX(BPF_H, 1, 7, 12),
		JIMM(BPF_JEQ, 1, 0x0008, L_V4), JIMM(BPF_JEQ, 1, 0xdd86, L_V6), JA(L_PASS),
		LABEL(L_V4),
		MOV_REG(1, 7), ADD_IMM(1, 34), JREG(BPF_JGT, 1, 8, L_PASS),
		LDX(BPF_B, 1, 7, 14), AND_IMM(1, 0xf0), JIMM(BPF_JNE, 1, 0x40, L_PASS),
		LDX(BPF_W, 1, 7, 26), LDX(BPF_W, 2, 9, 8), JREG(BPF_JNE, 1, 2, L_PASS),
		LDX(BPF_B, 1, 7, 23), JA(L_L4),
		LABEL(L_V6),
		LDX(BPF_B, 1, 9, 6), JIMM(BPF_JEQ, 1, 0, L_PASS),
		MOV_REG(1, 7), ADD_IMM(1, 54), JREG(BPF_JGT, 1, 8, L_PASS),
		LDX(BPF_B, 1, 7, 14), AND_IMM(1, 0xf0), JIMM(BPF_JNE, 1, 0x60, L_PASS),
		LDX(BPF_W, 1, 7, 22), LDX(BPF_W, 2, 9, 12), JREG(BPF_JNE, 1, 2, L_PASS),
		LDX(BPF_W, 1, 7, 26), LDX(BPF_W, 2, 9, 16), JREG(BPF_JNE, 1, 2, L_PASS),
		LDX(BPF_W, 1, 7, 30), LDX(BPF_W, 2, 9, 20), JREG(BPF_JNE, 1, 2, L_PASS),
		LDX(BPF_W, 1, 7, 34), LDX(BPF_W, 2, 9, 24), JREG(BPF_JNE, 1, 2, L_PASS),
		LDX(BPF_B, 1, 7, 20),
		LABEL(L_L4),
		JIMM(BPF_JEQ, 1, 6, L_DST), JIMM(BPF_JNE, 1, 17, L_PASS),
		LABEL(L_DST),
		/* the receiver, by destination MAC, among this LAN's members */
		LDX(BPF_W, 1, 7, 0), STX(BPF_W, 10, 1, -16),
		LDX(BPF_H, 1, 7, 4), STX(BPF_H, 10, 1, -12), ST(BPF_H, 10, -10, 0),
		LD_MAP(1, ports_fd), MOV_REG(2, 10), ADD_IMM(2, -16),
		CALL(BPF_FUNC_map_lookup_elem),
		JIMM(BPF_JEQ, 0, 0, L_PASS),
		/* not back to itself (the bridge does not hairpin either) */
		LDX(BPF_W, 1, 0, 0), LDX(BPF_W, 2, 6, SKB_INGRESS_IFINDEX),
		JREG(BPF_JEQ, 1, 2, L_PASS),
		LDX(BPF_W, 7, 0, 4),
		MOV_IMM(2, 1), XADD64(9, 2, 32),
		MOV_IMM(2, 0),
		JIMM(BPF_JSET, 7, FAST_SHAPED, L_EGRESS),
		CALL(BPF_FUNC_redirect_peer), EXIT(),
		LABEL(L_EGRESS),
		CALL(BPF_FUNC_redirect), EXIT(),
		LABEL(L_PASS),
		MOV_IMM(0, TC_ACT_UNSPEC), EXIT(),
	};
	size_t n = sizeof(raw) / sizeof(raw[0]), m = 0;
	int pos[L_COUNT] = {0};
	for (size_t i = 0; i < n; i++) {
		if (raw[i].code == 0xff)
			pos[raw[i].off] = (int)m;
		else
			m++;
	}
	if (m > max)
		return 0;
	m = 0;
	for (size_t i = 0; i < n; i++) {
		if (raw[i].code == 0xff)
			continue;
		out[m] = raw[i];
		uint8_t c = raw[i].code;
		if (BPF_CLASS(c) == BPF_JMP && BPF_OP(c) != BPF_CALL && BPF_OP(c) != BPF_EXIT)
			out[m].off = (int16_t)(pos[raw[i].off] - (int)(m + 1));
		m++;
	}
	return m;
}

/* ---- maps ------------------------------------------------------------------- */

struct fast_maps {
	int members, ports;
};

static void fast_maps_close(struct fast_maps *m)
{
	if (m->members >= 0)
		close(m->members);
	if (m->ports >= 0)
		close(m->ports);
	m->members = m->ports = -1;
}
#define cleanup_fast_maps __attribute__((cleanup(fast_maps_close)))

static int map_make(const char *name, unsigned key, unsigned value, mz_error_t *err)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_HASH;
	a.key_size = key;
	a.value_size = value;
	a.max_entries = FAST_MAX;
	snprintf(a.map_name, sizeof(a.map_name), "%s", name);
	int fd = sys_bpf(BPF_MAP_CREATE, &a);
	if (fd < 0)
		return mz_error_sys(err, errno, "cannot create BPF map %s", name);
	return fd;
}

/* One element call on map fd: 0 or -errno.  value is the value (update,
 * lookup) or the next key (BPF_MAP_GET_NEXT_KEY; key NULL: the first). */
static int map_elem(int cmd, int fd, const void *key, const void *value, uint64_t flags)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uintptr_t)key;
	if (cmd == BPF_MAP_GET_NEXT_KEY)
		a.next_key = (uintptr_t)value;
	else
		a.value = (uintptr_t)value;
	a.flags = flags;
	return sys_bpf(cmd, &a) < 0 ? -errno : 0;
}

static int map_update(int fd, const void *key, const void *value)
{
	return map_elem(BPF_MAP_UPDATE_ELEM, fd, key, value, BPF_ANY);
}

static int map_lookup(int fd, const void *key, void *value)
{
	return map_elem(BPF_MAP_LOOKUP_ELEM, fd, key, value, 0);
}

static int map_delete(int fd, const void *key)
{
	return map_elem(BPF_MAP_DELETE_ELEM, fd, key, NULL, 0);
}

/* The key after key (NULL: the first); -ENOENT at the end. */
static int map_next(int fd, const void *key, void *next)
{
	return map_elem(BPF_MAP_GET_NEXT_KEY, fd, key, next, 0);
}

#define MAP_MEMBERS "mz_lan_members"
#define MAP_PORTS "mz_lan_ports"

/* A new program with new, empty maps. */
static int fast_make(struct fast_maps *m, int *prog_fd, mz_error_t *err)
{
	m->members = map_make(MAP_MEMBERS, sizeof(uint32_t), sizeof(struct fast_member_val), err);
	if (m->members < 0)
		return m->members;
	m->ports = map_make(MAP_PORTS, 8, sizeof(struct fast_port_val), err);
	if (m->ports < 0)
		return m->ports;
	struct bpf_insn prog[128];
	size_t n = fast_prog(m->members, m->ports, prog, sizeof(prog) / sizeof(prog[0]));
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SCHED_CLS;
	a.insns = (uintptr_t)prog;
	a.insn_cnt = (uint32_t)n;
	/* Only gates GPL-only helpers, and none is used. */
	a.license = (uintptr_t) "Dual MIT/GPL";
	snprintf(a.prog_name, sizeof(a.prog_name), "mz_lan_fast");
	int fd = sys_bpf(BPF_PROG_LOAD, &a);
	if (fd < 0) {
		/* again with the verifier's log, for the message */
		int e = errno;
		cleanup_free char *log = xcalloc(1, 16384);
		a.log_buf = (uintptr_t)log;
		a.log_size = 16384;
		a.log_level = 1;
		fd = sys_bpf(BPF_PROG_LOAD, &a);
		if (fd >= 0)
			close(fd);
		size_t len = strlen(log);
		return mz_error_sys(err, e, "cannot load the LAN fast path program%s%.300s",
				    len ? " (verifier: " : "", len > 300 ? log + len - 300 : log);
	}
	*prog_fd = fd;
	return 0;
}

/* The maps of the program of block's filter, which must be called name
 * (block indexes carry the store's tag and the LAN's id, the name says the
 * same: a filter of anyone else is never used).  -ENOENT if there is none. */
static int fast_open(struct mz_nl *nl, const char *name, uint32_t block, struct fast_maps *m,
		     mz_error_t *err)
{
	uint32_t prog_id;
	char fname[64];
	int r = mz_nl_block_bpf_get(nl, block, FAST_PRIO, FAST_HANDLE, &prog_id, fname, err);
	if (r < 0)
		return r;
	if (strcmp(fname, name) != 0)
		return mz_error(err, EEXIST, "filter block %u holds '%s', not mezzo's '%s'", block,
				fname, name);
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_id = prog_id;
	cleanup_close int pfd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
	if (pfd < 0)
		return errno == ENOENT ? -ENOENT /* gone meanwhile */
				       : mz_error_sys(err, errno, "cannot open BPF program %u", prog_id);
	uint32_t ids[4] = {0};
	struct bpf_prog_info pi;
	memset(&pi, 0, sizeof(pi));
	pi.nr_map_ids = 4;
	pi.map_ids = (uintptr_t)ids;
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = (uint32_t)pfd;
	a.info.info_len = sizeof(pi);
	a.info.info = (uintptr_t)&pi;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0)
		return mz_error_sys(err, errno, "cannot read BPF program %u", prog_id);
	for (uint32_t i = 0; i < pi.nr_map_ids && i < 4; i++) {
		memset(&a, 0, sizeof(a));
		a.map_id = ids[i];
		int fd = sys_bpf(BPF_MAP_GET_FD_BY_ID, &a);
		if (fd < 0)
			return mz_error_sys(err, errno, "cannot open BPF map %u", ids[i]);
		struct bpf_map_info mi;
		memset(&mi, 0, sizeof(mi));
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = (uint32_t)fd;
		a.info.info_len = sizeof(mi);
		a.info.info = (uintptr_t)&mi;
		if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0) {
			int e = errno;
			close(fd);
			return mz_error_sys(err, e, "cannot read BPF map %u", ids[i]);
		}
		int *slot = strcmp(mi.name, MAP_MEMBERS) == 0 ? &m->members
			    : strcmp(mi.name, MAP_PORTS) == 0 ? &m->ports
							       : NULL;
		if (slot && *slot < 0)
			*slot = fd;
		else
			close(fd);
	}
	if (m->members < 0 || m->ports < 0)
		return mz_error(err, EPROTO, "the program of filter %s lacks its maps", name);
	return 0;
}

static void mac_key(const uint8_t mac[6], uint8_t key[8])
{
	memset(key, 0, 8);
	memcpy(key, mac, 6);
}

/* ---- the API (netInt.h) ------------------------------------------------------ */

static int fast_put(const struct fast_maps *m, const struct mz_fast_member *mb, mz_error_t *err)
{
	uint32_t ifindex = (uint32_t)mb->ifindex;
	uint8_t key[8];
	mac_key(mb->mac, key);
	/* A run that never detached left its entries under its old veth */
	struct fast_port_val old;
	struct fast_member_val ov;
	if (map_lookup(m->ports, key, &old) == 0 && old.lease == mb->lease &&
	    old.ifindex != ifindex && map_lookup(m->members, &old.ifindex, &ov) == 0 &&
	    ov.lease == mb->lease)
		map_delete(m->members, &old.ifindex);
	int r = 0;
	if (mb->send) {
		struct fast_member_val v;
		memset(&v, 0, sizeof(v));
		memcpy(v.mac, mb->mac, 6);
		mz_ip4_bytes(mb->ip4, v.ip4);
		if (mb->ip6) {
			v.has_ip6 = 1;
			memcpy(v.ip6, mb->ip6, 16);
		}
		v.lease = mb->lease;
		r = map_update(m->members, &ifindex, &v);
	} else {
		/* an entry a last run left under a reused ifindex must not stay */
		map_delete(m->members, &ifindex);
	}
	struct fast_port_val p = {.ifindex = ifindex, .flags = mb->shaped ? FAST_SHAPED : 0,
				  .lease = mb->lease};
	if (r == 0)
		r = map_update(m->ports, key, &p);
	if (r < 0)
		return mz_error_sys(err, -r, "cannot add lease %lld to the LAN's fast path",
				    (long long)mb->lease);
	return 0;
}

int mz_fast_join(struct mz_nl *nl, const char *name, uint32_t block,
		 const struct mz_fast_member *mb, mz_error_t *err)
{
	if (block == 0)
		return 0;
	/* The qdisc first: from now on the block lives at least as long as
	 * this veth, so the filter found or made below cannot vanish with
	 * the last other member meanwhile. */
	int r = mz_nl_qdisc_clsact(nl, mb->ifindex, block, err);
	for (int tries = 0; r == 0 && tries < 3; tries++) {
		struct fast_maps m cleanup_fast_maps = {-1, -1};
		r = fast_open(nl, name, block, &m, err);
		if (r == 0)
			return fast_put(&m, mb, err);
		if (r != -ENOENT)
			return r;
		/* The first member: a program, filled before its filter goes
		 * in; another attach may win the race to put its own. */
		cleanup_close int prog = -1;
		r = fast_make(&m, &prog, err);
		if (r == 0)
			r = fast_put(&m, mb, err);
		if (r == 0)
			r = mz_nl_block_bpf_add(nl, block, FAST_PRIO, FAST_HANDLE, prog, name, err);
		if (r != -EEXIST)
			return r;
		r = 0;
	}
	return r == 0 ? mz_error(err, EAGAIN, "filter %s: block %u keeps changing", name, block)
		      : r;
}

int mz_fast_leave(struct mz_nl *nl, const char *name, uint32_t block, int64_t lease,
		  const uint8_t mac[6], mz_error_t *err)
{
	if (block == 0)
		return 0;
	struct fast_maps m cleanup_fast_maps = {-1, -1};
	int r = fast_open(nl, name, block, &m, err);
	if (r == -ENOENT)
		return 0; /* no member left: the block went with the last */
	if (r < 0)
		return r;
	uint8_t key[8];
	mac_key(mac, key);
	struct fast_port_val p;
	if (map_lookup(m.ports, key, &p) < 0 || p.lease != lease)
		return 0;
	/* the way in first, then the way out */
	map_delete(m.ports, key);
	struct fast_member_val v;
	if (map_lookup(m.members, &p.ifindex, &v) == 0 && v.lease == lease)
		map_delete(m.members, &p.ifindex);
	return 0;
}

int mz_fast_prune(struct mz_nl *nl, const char *name, uint32_t block,
		  bool (*keep)(int64_t lease, int ifindex, void *arg), void *arg, int *removed,
		  mz_error_t *err)
{
	if (block == 0)
		return 0;
	struct fast_maps m cleanup_fast_maps = {-1, -1};
	int r = fast_open(nl, name, block, &m, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	/* Keys are collected first: deleting while walking a hash map may
	 * restart the walk. */
	uint8_t keys[FAST_MAX][8];
	size_t n = 0;
	uint8_t k[8], next[8];
	for (int x = map_next(m.ports, NULL, next); x == 0 && n < FAST_MAX;
	     x = map_next(m.ports, k, next)) {
		memcpy(k, next, 8);
		struct fast_port_val p;
		if (map_lookup(m.ports, k, &p) == 0 && !keep(p.lease, (int)p.ifindex, arg))
			memcpy(keys[n++], k, 8);
	}
	for (size_t i = 0; i < n; i++)
		if (map_delete(m.ports, keys[i]) == 0 && removed)
			++*removed;
	n = 0;
	uint32_t ik = 0, inext;
	for (int x = map_next(m.members, NULL, &inext); x == 0 && n < FAST_MAX;
	     x = map_next(m.members, &ik, &inext)) {
		ik = inext;
		struct fast_member_val v;
		if (map_lookup(m.members, &ik, &v) == 0 && !keep(v.lease, (int)ik, arg))
			memcpy(keys[n++], &ik, 4);
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(&ik, keys[i], 4);
		map_delete(m.members, &ik);
	}
	return 0;
}

int mz_fast_stats(struct mz_nl *nl, const char *name, uint32_t block,
		  struct mz_net_fast_stat **out, size_t *n, mz_error_t *err)
{
	*out = NULL;
	*n = 0;
	struct fast_maps m cleanup_fast_maps = {-1, -1};
	int r = fast_open(nl, name, block, &m, err);
	if (r < 0)
		return r;
	/* receivers first (every member is one), then what each has sent */
	uint8_t k[8], next[8];
	for (int x = map_next(m.ports, NULL, next); x == 0 && *n < FAST_MAX;
	     x = map_next(m.ports, k, next)) {
		memcpy(k, next, 8);
		struct fast_port_val p;
		if (map_lookup(m.ports, k, &p) < 0)
			continue;
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = (struct mz_net_fast_stat){.lease = p.lease, .ifindex = (int)p.ifindex};
	}
	uint32_t ik = 0, inext;
	for (int x = map_next(m.members, NULL, &inext); x == 0; x = map_next(m.members, &ik, &inext)) {
		ik = inext;
		struct fast_member_val v;
		if (map_lookup(m.members, &ik, &v) < 0)
			continue;
		for (size_t i = 0; i < *n; i++)
			if ((*out)[i].lease == v.lease && (*out)[i].ifindex == (int)ik) {
				(*out)[i].sends = true;
				(*out)[i].frames = v.hits;
			}
	}
	return 0;
}

/* ---- for tests: the program alone ------------------------------------------- */

int mz_fast_prog_load(struct mz_fast_prog *p, mz_error_t *err)
{
	struct fast_maps m = {-1, -1};
	p->prog = p->members = p->ports = -1;
	int r = fast_make(&m, &p->prog, err);
	p->members = m.members;
	p->ports = m.ports;
	if (r < 0)
		mz_fast_prog_close(p);
	return r;
}

int mz_fast_prog_add(struct mz_fast_prog *p, const struct mz_fast_member *mb, mz_error_t *err)
{
	struct fast_maps m = {p->members, p->ports};
	return fast_put(&m, mb, err);
}

int mz_fast_prog_run(struct mz_fast_prog *p, uint32_t ingress_ifindex, const void *frame,
		     size_t len, uint32_t *verdict)
{
	struct __sk_buff ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.ingress_ifindex = ingress_ifindex;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.test.prog_fd = (uint32_t)p->prog;
	a.test.data_in = (uintptr_t)frame;
	a.test.data_size_in = (uint32_t)len;
	a.test.ctx_in = (uintptr_t)&ctx;
	a.test.ctx_size_in = sizeof(ctx);
	a.test.repeat = 1;
	if (sys_bpf(BPF_PROG_TEST_RUN, &a) < 0)
		return -errno;
	*verdict = a.test.retval;
	return 0;
}

void mz_fast_prog_close(struct mz_fast_prog *p)
{
	struct fast_maps m = {p->members, p->ports};
	fast_maps_close(&m);
	if (p->prog >= 0)
		close(p->prog);
	p->prog = p->members = p->ports = -1;
}

int mz_fast_dump(struct mz_nl *nl, const char *name, uint32_t block, FILE *out,
		 mz_error_t *err)
{
	struct fast_maps m cleanup_fast_maps = {-1, -1};
	int r = fast_open(nl, name, block, &m, err);
	if (r < 0)
		return r;
	uint8_t k[8], next[8];
	for (int x = map_next(m.ports, NULL, next); x == 0; x = map_next(m.ports, k, next)) {
		memcpy(k, next, 8);
		struct fast_port_val p;
		char mac[18];
		mz_mac_fmt(k, mac);
		if (map_lookup(m.ports, k, &p) == 0)
			fprintf(out, "port %s ifindex %u lease %lld%s\n", mac, p.ifindex,
				(long long)p.lease, p.flags & FAST_SHAPED ? " shaped" : "");
	}
	uint32_t ik = 0, inext;
	for (int x = map_next(m.members, NULL, &inext); x == 0;
	     x = map_next(m.members, &ik, &inext)) {
		ik = inext;
		struct fast_member_val v;
		if (map_lookup(m.members, &ik, &v) == 0)
			fprintf(out, "member ifindex %u lease %lld hits %llu\n", ik,
				(long long)v.lease, (unsigned long long)v.hits);
	}
	return 0;
}
