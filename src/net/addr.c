/*
 * addr.c — addresses, subnets, names and port specs of LANs: parsing what a
 * user typed (hostile until checked), and choosing subnets that collide with
 * nothing the host routes.
 */
#include "netInt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../lib/util.h"
#include "netlinkInt.h"

/* A decimal number of 1..maxdigits digits, no sign, no leading zero. */
static int parse_uint(const char *s, size_t n, int maxdigits, long *out)
{
	if (n == 0 || (int)n > maxdigits || (n > 1 && s[0] == '0'))
		return -1;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* The host bits of byte i of an address under a /len prefix. */
static uint8_t host_mask(int i, int len)
{
	int bit0 = i * 8;
	if (bit0 >= len)
		return 0xff;
	if (bit0 + 8 <= len)
		return 0;
	return (uint8_t)(0xff >> (len - bit0));
}

int mz_cidr_parse(const char *s, int family, struct mz_cidr *out, mz_error_t *err)
{
	memset(out, 0, sizeof(*out));
	const char *slash = s ? strchr(s, '/') : NULL;
	if (s == NULL || *s == '\0')
		return mz_error(err, EINVAL, "empty subnet: give one as ADDRESS/PREFIX, e.g. 10.20.0.0/24");
	if (slash == NULL)
		return mz_error(err, EINVAL, "subnet '%.64s' has no prefix length: write it as "
				"ADDRESS/PREFIX, e.g. 10.20.0.0/24", s);
	size_t alen = (size_t)(slash - s);
	char addr[INET6_ADDRSTRLEN];
	if (alen == 0 || alen >= sizeof(addr))
		return mz_error(err, EINVAL, "subnet '%.64s': bad address", s);
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (family != AF_INET6 && inet_pton(AF_INET, addr, out->addr) == 1)
		out->family = AF_INET;
	else if (family != AF_INET && inet_pton(AF_INET6, addr, out->addr) == 1)
		out->family = AF_INET6;
	else
		return mz_error(err, EINVAL, "subnet '%.64s': '%s' is not an IPv%s address", s,
				addr, family == AF_INET ? "4" : family == AF_INET6 ? "6" : "4 or IPv6");
	int max = out->family == AF_INET ? 32 : 128;
	long len;
	if (parse_uint(slash + 1, strlen(slash + 1), 3, &len) < 0 || len > max)
		return mz_error(err, EINVAL, "subnet '%.64s': the prefix length must be a number "
				"from 0 to %d", s, max);
	out->len = (int)len;
	/* Host bits set usually means a typo in the network part. */
	struct mz_cidr net = *out;
	int bytes = max / 8;
	for (int i = 0; i < bytes; i++)
		net.addr[i] &= (uint8_t)~host_mask(i, out->len);
	if (memcmp(net.addr, out->addr, (size_t)bytes) != 0) {
		char f[64];
		mz_cidr_fmt(&net, f);
		return mz_error(err, EINVAL, "subnet '%.64s' has host bits set: did you mean %s?", s,
				f);
	}
	return 0;
}

bool mz_cidr_overlap(const struct mz_cidr *a, const struct mz_cidr *b)
{
	if (a->family != b->family)
		return false;
	int len = a->len < b->len ? a->len : b->len;
	for (int i = 0; len > 0; i++, len -= 8) {
		uint8_t mask = len >= 8 ? 0xff : (uint8_t)(0xff << (8 - len));
		if ((a->addr[i] ^ b->addr[i]) & mask)
			return false;
	}
	return true;
}

void mz_cidr_fmt(const struct mz_cidr *c, char out[64])
{
	char a[INET6_ADDRSTRLEN] = "?";
	inet_ntop(c->family, c->addr, a, sizeof(a));
	snprintf(out, 64, "%s/%d", a, c->len);
}

void mz_ip4_bytes(uint32_t ip, uint8_t out[4])
{
	out[0] = (uint8_t)(ip >> 24);
	out[1] = (uint8_t)(ip >> 16);
	out[2] = (uint8_t)(ip >> 8);
	out[3] = (uint8_t)ip;
}

void mz_ip4_fmt(uint32_t ip, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void mz_ip6_fmt(const uint8_t ip[16], char out[48])
{
	if (inet_ntop(AF_INET6, ip, out, 48) == NULL)
		snprintf(out, 48, "?");
}

void mz_mac_fmt(const uint8_t m[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

void mz_ip6_linklocal(const uint8_t mac[6], uint8_t out[16])
{
	memset(out, 0, 16);
	out[0] = 0xfe;
	out[1] = 0x80;
	out[8] = mac[0] ^ 0x02; /* the universal/local bit, inverted */
	out[9] = mac[1];
	out[10] = mac[2];
	out[11] = 0xff;
	out[12] = 0xfe;
	out[13] = mac[3];
	out[14] = mac[4];
	out[15] = mac[5];
}

void mz_lan_cidrs(const struct mz_lan_rec *l, struct mz_cidr *c4, struct mz_cidr *c6)
{
	memset(c4, 0, sizeof(*c4));
	c4->family = AF_INET;
	mz_ip4_bytes(l->net4, c4->addr);
	c4->len = l->len4;
	memset(c6, 0, sizeof(*c6));
	c6->family = AF_INET6;
	memcpy(c6->addr, l->net6, 16);
	c6->len = l->len6;
}

uint32_t mz_lan_gw4(const struct mz_lan_rec *l)
{
	return l->net4 + 1;
}

void mz_lan_gw6(const struct mz_lan_rec *l, uint8_t out[16])
{
	memcpy(out, l->net6, 16);
	out[15] |= 1; /* len6 <= 112: the last byte is host part */
}

int mz_lan_name_check(const char *name, mz_error_t *err)
{
	size_t n = name ? strlen(name) : 0;
	bool ok = n >= 1 && n <= 32 && name[0] != '.' && name[0] != '-';
	for (size_t i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)name[i]) || strchr("_.-", name[i]) != NULL;
	if (!ok)
		return mz_error(err, EINVAL, "invalid LAN name '%.40s': use 1-32 of A-Z a-z 0-9 _ . -, "
				"not starting with '.' or '-'", name ? name : "");
	return 0;
}

/* ---- choosing subnets --------------------------------------------------- */

static bool taken_by(const struct mz_cidr *c, const struct mz_cidr *taken, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (mz_cidr_overlap(c, &taken[i]))
			return true;
	return false;
}

int mz_subnet_pick4(const struct mz_cidr *taken, size_t ntaken, int len4, uint32_t seed,
		    struct mz_cidr *out, mz_error_t *err)
{
	/* 10.64.0.0 - 10.254.255.255, from a point that depends on the store,
	 * so that two stores that have not made their bridges yet (and so
	 * cannot see each other's routes) are unlikely to pick one subnet. */
	if (len4 < 16 || len4 > 30)
		return mz_error(err, EINVAL, "internal: cannot pick a /%d", len4);
	uint32_t step = 1u << (32 - len4);
	uint32_t lo = (10u << 24) | (64u << 16), hi = (10u << 24) | (255u << 16);
	uint32_t count = (hi - lo) / step;
	uint32_t start = seed % count;
	for (uint32_t k = 0; k < count; k++) {
		uint32_t net = lo + ((start + k) % count) * step;
		struct mz_cidr c = {.family = AF_INET, .len = len4};
		mz_ip4_bytes(net, c.addr);
		if (!taken_by(&c, taken, ntaken)) {
			*out = c;
			return 0;
		}
	}
	return mz_error(err, ENOSPC, "no free /%d in 10.64.0.0-10.254.255.255: give a subnet "
			"with --subnet", len4);
}

int mz_subnet_pick6(const struct mz_cidr *taken, size_t ntaken, const uint8_t ula48[6],
		    struct mz_cidr *out, mz_error_t *err)
{
	for (unsigned id = 1; id <= 0xffff; id++) {
		struct mz_cidr c = {.family = AF_INET6, .len = 64};
		memcpy(c.addr, ula48, 6);
		c.addr[6] = (uint8_t)(id >> 8);
		c.addr[7] = (uint8_t)id;
		if (!taken_by(&c, taken, ntaken)) {
			*out = c;
			return 0;
		}
	}
	return mz_error(err, ENOSPC, "no free IPv6 /64 in the store's ULA prefix: give one with "
			"--subnet6");
}

struct routes_acc {
	struct mz_cidr *v;
	size_t n, cap;
};

static int route_cb(const struct mz_nl_route *rt, void *arg)
{
	struct routes_acc *a = arg;
	if (rt->dstlen == 0)
		return 0;
	if (rt->family == AF_INET6 &&
	    ((rt->dst[0] == 0xfe && (rt->dst[1] & 0xc0) == 0x80) || rt->dst[0] == 0xff))
		return 0;
	if (rt->family == AF_INET && (rt->dst[0] == 127 || rt->dst[0] >= 224))
		return 0;
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 32;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	struct mz_cidr *c = &a->v[a->n++];
	memset(c, 0, sizeof(*c));
	c->family = rt->family;
	memcpy(c->addr, rt->dst, 16);
	c->len = rt->dstlen;
	return 0;
}

int mz_host_routes(struct mz_cidr **out, size_t *n, mz_error_t *err)
{
	struct mz_nl nl cleanup_nl = {0};
	int r = mz_nl_open(&nl, -1, err);
	struct routes_acc a = {0};
	if (r == 0)
		r = mz_nl_route_list(&nl, AF_INET, route_cb, &a, err);
	if (r == 0)
		r = mz_nl_route_list(&nl, AF_INET6, route_cb, &a, err);
	if (r < 0) {
		free(a.v);
		return r;
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

/* ---- port forwards -------------------------------------------------------- */

static int port_of(const char *spec, const char *s, size_t n, const char *side, int *out,
		   mz_error_t *err)
{
	long v;
	if (memchr(s, '-', n))
		return mz_error(err, EINVAL, "port forward '%.64s': port ranges are not supported; "
				"give one -p per port", spec);
	if (parse_uint(s, n, 5, &v) < 0 || v < 1 || v > 65535)
		return mz_error(err, EINVAL, "port forward '%.64s': the %s port must be a number "
				"from 1 to 65535", spec, side);
	*out = (int)v;
	return 0;
}

int mz_port_fwd_parse(const char *spec, struct mz_port_fwd *out, mz_error_t *err)
{
	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0')
		return mz_error(err, EINVAL, "empty port forward: write HOSTPORT:DOMAINPORT[/tcp|/udp]");
	if (strlen(spec) > 32)
		return mz_error(err, EINVAL, "port forward '%.32s...' is too long: write "
				"HOSTPORT:DOMAINPORT[/tcp|/udp]", spec);
	out->proto = IPPROTO_TCP;
	const char *slash = strchr(spec, '/');
	size_t end = slash ? (size_t)(slash - spec) : strlen(spec);
	if (slash) {
		if (strcmp(slash + 1, "tcp") == 0)
			out->proto = IPPROTO_TCP;
		else if (strcmp(slash + 1, "udp") == 0)
			out->proto = IPPROTO_UDP;
		else
			return mz_error(err, EINVAL, "port forward '%s': the protocol must be tcp or "
					"udp", spec);
	}
	const char *colon = memchr(spec, ':', end);
	if (colon && memchr(colon + 1, ':', end - (size_t)(colon + 1 - spec)))
		return mz_error(err, EINVAL, "port forward '%s': write HOSTPORT:DOMAINPORT (a "
				"forward listens on every address of the host)", spec);
	int r;
	if (colon == NULL) {
		if ((r = port_of(spec, spec, end, "host", &out->host_port, err)) < 0)
			return r;
		out->domain_port = out->host_port;
		return 0;
	}
	if ((r = port_of(spec, spec, (size_t)(colon - spec), "host", &out->host_port, err)) < 0)
		return r;
	return port_of(spec, colon + 1, end - (size_t)(colon + 1 - spec), "domain",
		       &out->domain_port, err);
}
