/* test_net.c — what src/net decides without touching the kernel's network:
 * parsing subnets, port forwards and names (hostile input), overlap checks,
 * choosing subnets, the nftables text, and the catalog's address book
 * (allocation, exhaustion, reuse after forget, uniqueness across store
 * handles and processes).  The kernel side is tests/system/test_net.py. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/net/net.h"
#include "../../src/net/netInt.h"
#include "fixture.h"

/* ---- subnets ------------------------------------------------------------ */

static void cidr_ok(const char *s, int family, const char *back)
{
	struct mz_cidr c;
	mz_error_t err cleanup_error = NULL;
	assert_int_equal(mz_cidr_parse(s, family, &c, &err), 0);
	char out[64];
	mz_cidr_fmt(&c, out);
	assert_string_equal(out, back);
}

static void cidr_bad(const char *s, int family, const char *needle)
{
	struct mz_cidr c;
	mz_error_t err cleanup_error = NULL;
	assert_int_equal(mz_cidr_parse(s, family, &c, &err), -EINVAL);
	assert_non_null(err);
	if (strstr(err->msg, needle) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", s ? s : "(null)", err->msg, needle);
}

static void test_cidr_parse(void **state)
{
	(void)state;
	cidr_ok("10.1.2.0/24", 0, "10.1.2.0/24");
	cidr_ok("10.0.0.0/8", AF_INET, "10.0.0.0/8");
	cidr_ok("0.0.0.0/0", 0, "0.0.0.0/0");
	cidr_ok("192.168.1.4/30", 0, "192.168.1.4/30");
	cidr_ok("fd00:1:2:3::/64", 0, "fd00:1:2:3::/64");
	cidr_ok("FD00::/8", AF_INET6, "fd00::/8");
	cidr_bad("10.1.2.3/24", 0, "did you mean 10.1.2.0/24");
	cidr_bad("fd00::1/64", 0, "did you mean fd00::/64");
	cidr_bad("10.1.2.0", 0, "no prefix length");
	cidr_bad("10.1.2.0/", 0, "prefix length");
	cidr_bad("10.1.2.0/33", 0, "from 0 to 32");
	cidr_bad("fd00::/129", 0, "from 0 to 128");
	cidr_bad("10.1.2.0/024", 0, "prefix length");
	cidr_bad("10.1.2.0/+24", 0, "prefix length");
	cidr_bad("10.1.2.0/24 ", 0, "prefix length");
	cidr_bad("10.1.2.0/2x", 0, "prefix length");
	cidr_bad("10.1.2.0/24/1", 0, "prefix length");
	cidr_bad("010.1.2.0/24", 0, "not an IPv4");
	cidr_bad("10.1.2/24", 0, "not an IPv4");
	cidr_bad("10.1.2.256/24", 0, "not an IPv4");
	cidr_bad(" 10.1.2.0/24", 0, "not an IPv4");
	cidr_bad("/24", 0, "bad address");
	cidr_bad("", 0, "empty subnet");
	cidr_bad(NULL, 0, "empty subnet");
	cidr_bad("fd00::/64", AF_INET, "not an IPv4 address");
	cidr_bad("10.0.0.0/8", AF_INET6, "not an IPv6 address");
	cidr_bad("fd00:::1/64", 0, "not an IPv4 or IPv6");
	char big[300];
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cidr_bad(big, 0, "no prefix length");
	big[100] = '/';
	cidr_bad(big, 0, "bad address");
}

static struct mz_cidr cidr(const char *s)
{
	struct mz_cidr c;
	assert_int_equal(mz_cidr_parse(s, 0, &c, NULL), 0);
	return c;
}

static void test_cidr_overlap(void **state)
{
	(void)state;
	struct mz_cidr a = cidr("10.1.0.0/16"), b = cidr("10.1.200.0/24"), c = cidr("10.2.0.0/16");
	struct mz_cidr d = cidr("0.0.0.0/0"), e = cidr("fd00::/64"), f = cidr("fd00::/48");
	struct mz_cidr g = cidr("fd00:0:0:1::/64"), h = cidr("10.1.0.0/17"), i = cidr("10.1.128.0/17");
	assert_true(mz_cidr_overlap(&a, &b) && mz_cidr_overlap(&b, &a));
	assert_false(mz_cidr_overlap(&a, &c));
	assert_true(mz_cidr_overlap(&a, &d));
	assert_false(mz_cidr_overlap(&a, &e)); /* families never overlap */
	assert_true(mz_cidr_overlap(&e, &f));
	assert_false(mz_cidr_overlap(&e, &g));
	assert_true(mz_cidr_overlap(&f, &g));
	assert_false(mz_cidr_overlap(&h, &i));
	assert_true(mz_cidr_overlap(&h, &a));
}

static void test_subnet_pick(void **state)
{
	(void)state;
	mz_error_t err cleanup_error = NULL;
	struct mz_cidr taken[3] = {cidr("10.64.0.0/24"), cidr("10.64.2.0/23"), cidr("10.64.4.0/24")};
	struct mz_cidr out;
	assert_int_equal(mz_subnet_pick4(taken, 3, 24, 0, &out, &err), 0);
	char s[64];
	mz_cidr_fmt(&out, s);
	assert_string_equal(s, "10.64.1.0/24");
	/* whatever the seed, never a taken one, always inside 10.64-10.254 */
	for (uint32_t seed = 0; seed < 5000; seed += 7) {
		assert_int_equal(mz_subnet_pick4(taken, 3, 24, seed, &out, &err), 0);
		for (int k = 0; k < 3; k++)
			assert_false(mz_cidr_overlap(&out, &taken[k]));
		assert_int_equal(out.addr[0], 10);
		assert_true(out.addr[1] >= 64 && out.addr[1] <= 254);
	}
	/* a route covering it all (10.0.0.0/8): nothing left */
	struct mz_cidr all = cidr("10.0.0.0/8");
	assert_int_equal(mz_subnet_pick4(&all, 1, 20, 3, &out, &err), -ENOSPC);
	assert_non_null(strstr(err->msg, "--subnet"));
	mz_error_release(&err);
	/* IPv6: the first free /64 of the /48 */
	uint8_t ula[6] = {0xfd, 1, 2, 3, 4, 5};
	struct mz_cidr t6[2] = {cidr("fd01:203:405:1::/64"), cidr("fd01:203:405:2::/63")};
	assert_int_equal(mz_subnet_pick6(t6, 2, ula, &out, &err), 0);
	mz_cidr_fmt(&out, s);
	assert_string_equal(s, "fd01:203:405:4::/64");
	struct mz_cidr all6 = cidr("fd01:203:405::/48");
	assert_int_equal(mz_subnet_pick6(&all6, 1, ula, &out, &err), -ENOSPC);
}

static void test_names_and_ports(void **state)
{
	(void)state;
	mz_error_t err cleanup_error = NULL;
	static const char *const good[] = {"default", "a", "web-1", "x_y.z", "A9"};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(mz_lan_name_check(good[i], NULL), 0);
	static const char *const bad[] = {"", ".hidden", "-opt", "a/b", "a b", "a;rm", "ä",
					  "\"q\"", "x\n", "123456789012345678901234567890123"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(mz_lan_name_check(bad[i], NULL), -EINVAL);
	assert_int_equal(mz_lan_name_check(NULL, NULL), -EINVAL);

	struct mz_port_fwd p;
	assert_int_equal(mz_port_fwd_parse("8080:80", &p, NULL), 0);
	assert_true(p.proto == IPPROTO_TCP && p.host_port == 8080 && p.domain_port == 80);
	assert_int_equal(mz_port_fwd_parse("53:5353/udp", &p, NULL), 0);
	assert_true(p.proto == IPPROTO_UDP && p.host_port == 53 && p.domain_port == 5353);
	assert_int_equal(mz_port_fwd_parse("443/tcp", &p, NULL), 0);
	assert_true(p.proto == IPPROTO_TCP && p.host_port == 443 && p.domain_port == 443);
	assert_int_equal(mz_port_fwd_parse("65535:1", &p, NULL), 0);
	static const struct {
		const char *spec, *needle;
	} badp[] = {
		{"0:80", "1 to 65535"},        {"65536:80", "1 to 65535"},
		{"80:65536", "1 to 65535"},    {"-1:80", "port ranges"},
		{"8000-8010:80", "port ranges"}, {"80:8000-8010", "port ranges"},
		{"80:80/sctp", "tcp or udp"},  {"80:80/", "tcp or udp"},
		{"80:80/tcp/udp", "tcp or udp"}, {"1.2.3.4:80:80", "every address"},
		{":80", "1 to 65535"},         {"80:", "1 to 65535"},
		{"0x50:80", "1 to 65535"},     {"080:80", "1 to 65535"},
		{" 80:80", "1 to 65535"},      {"99999999999999999999:1", "1 to 65535"},
		{"", "empty"},                 {"8080:80 ", "1 to 65535"},
		{"123456789012345678901234567890123:1", "too long"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(badp); i++) {
		assert_int_equal(mz_port_fwd_parse(badp[i].spec, &p, &err), -EINVAL);
		if (strstr(err->msg, badp[i].needle) == NULL)
			fail_msg("'%s': '%s' lacks '%s'", badp[i].spec, err->msg, badp[i].needle);
		mz_error_release(&err);
	}
	assert_int_equal(mz_port_fwd_parse(NULL, &p, NULL), -EINVAL);
}

static void test_nft_text(void **state)
{
	(void)state;
	struct mz_lease_rec l = {.id = 7, .ip4 = 0x0a010203, .has_ip6 = true,
				 .mac = {0x02, 0x6d, 0x0a, 0x01, 0x02, 0x03}};
	struct mz_cidr c6 = cidr("fd00:1::/64");
	memcpy(l.ip6, c6.addr, 16);
	l.ip6[15] = 3;
	struct mz_fwd_rec fw = {.domain = "a", .proto = IPPROTO_UDP, .host_port = 53,
				.domain_port = 5353};
	char *t = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&t, &n);
	mz_nft_put_lease(f, "mz1234", &l, "mz1234v7", true);
	mz_nft_put_fwd(f, "mz1234", &fw, &l, false);
	fclose(f);
	assert_non_null(strstr(t, "add element bridge mz1234 mac { \"mz1234v7\" . 02:6d:0a:01:02:03 }"));
	assert_non_null(strstr(t, "add element bridge mz1234 src4 { \"mz1234v7\" . 10.1.2.3 }"));
	assert_non_null(strstr(t, "\"mz1234v7\" . 02:6d:0a:01:02:03 . 10.1.2.3"));
	/* its link-local address is the one its kernel makes from the MAC */
	assert_non_null(strstr(t, "\"mz1234v7\" . fd00:1::3, \"mz1234v7\" . fe80::6d:aff:fe01:203"));
	assert_non_null(strstr(t, "0xfd000001000000000000000000000003"));
	/* a delete adds first, so it cannot fail on a missing element */
	assert_non_null(strstr(t, "add element inet mz1234 fwd4 { udp . 53 : 10.1.2.3 . 5353 }\n"
				  "delete element inet mz1234 fwd4 { udp . 53 }"));
	assert_non_null(strstr(t, "delete element inet mz1234 fwd6 { udp . 53 }"));
	free(t);
	t = NULL;
	f = open_memstream(&t, &n);
	mz_nft_put_base(f, "mz1234");
	fclose(f);
	assert_non_null(strstr(t, "table bridge mz1234 {"));
	assert_non_null(strstr(t, "iifname != \"mz1234*\" accept"));
	assert_non_null(strstr(t, "flush chain inet mz1234 forward"));
	free(t);
}

/* ---- the catalog's address book ------------------------------------------- */

static struct mz_lan_rec lan_add(mz_store *s, const char *name, const char *net4, int len4,
				 const char *net6, int len6)
{
	struct mz_lan_rec l = {0};
	snprintf(l.name, sizeof(l.name), "%s", name);
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, net4, &a), 1);
	l.net4 = ntohl(a.s_addr);
	l.len4 = len4;
	if (net6) {
		assert_int_equal(inet_pton(AF_INET6, net6, l.net6), 1);
		l.len6 = len6;
	}
	mz_error_t err cleanup_error = NULL;
	assert_int_equal(mz_lan_rec_create(s, &l, &err), 0);
	assert_true(l.id > 0);
	return l;
}

static char *ip4s(uint32_t ip)
{
	static char b[4][16];
	static int k;
	k = (k + 1) % 4;
	mz_ip4_fmt(ip, b[k]);
	return b[k];
}

static void test_lease_alloc(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err cleanup_error = NULL;
	/* a /29: .0 network, .1 the host, .7 broadcast: .2 to .6 for domains */
	struct mz_lan_rec l = lan_add(f->s, "small", "10.9.8.0", 29, "fd00:9::", 64);
	struct mz_lease_rec r;
	char name[16];
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		assert_int_equal(mz_lease_alloc(f->s, &l, name, 0, &r, &err), 0);
		char want[32];
		snprintf(want, sizeof(want), "10.9.8.%d", 2 + i);
		assert_string_equal(ip4s(r.ip4), want);
		assert_int_equal(r.ip6[15], 2 + i);
		assert_int_equal(r.mac[0], 0x02);
		assert_int_equal(r.mac[5], 2 + i);
		free(r.rundir);
	}
	/* full */
	assert_int_equal(mz_lease_alloc(f->s, &l, "late", 0, &r, &err), -ENOSPC);
	assert_non_null(strstr(err->msg, "LAN 'small' is full: all 5"));
	mz_error_release(&err);
	/* a domain once per LAN, and one NIC number once per domain */
	struct mz_lan_rec l2 = lan_add(f->s, "other", "10.9.9.0", 24, NULL, 0);
	assert_int_equal(mz_lease_alloc(f->s, &l, "d1", 1, &r, &err), -EEXIST);
	mz_error_release(&err);
	assert_int_equal(mz_lease_alloc(f->s, &l2, "d1", 0, &r, &err), -EEXIST);
	assert_non_null(strstr(err->msg, "has an eth0 already"));
	mz_error_release(&err);
	assert_int_equal(mz_lease_alloc(f->s, &l2, "d1", 1, &r, &err), 0);
	assert_false(r.has_ip6);
	free(r.rundir);
	/* forgetting d1 and d3 frees .3 and .5; the lowest goes first */
	int64_t gen = 0;
	struct mz_lan_rec now;
	assert_int_equal(mz_lan_rec_get_id(f->s, l.id, &now, &err), 0);
	gen = now.hosts_gen;
	assert_int_equal(mz_lease_forget(f->s, "d1", &err), 0);
	assert_int_equal(mz_lease_forget(f->s, "d3", &err), 0);
	assert_int_equal(mz_lan_rec_get_id(f->s, l.id, &now, &err), 0);
	assert_true(now.hosts_gen > gen); /* members' hosts files are stale */
	assert_int_equal(mz_lease_alloc(f->s, &l, "n1", 0, &r, &err), 0);
	assert_string_equal(ip4s(r.ip4), "10.9.8.3");
	free(r.rundir);
	assert_int_equal(mz_lease_alloc(f->s, &l, "n2", 0, &r, &err), 0);
	assert_string_equal(ip4s(r.ip4), "10.9.8.5");
	free(r.rundir);
	struct mz_lease_rec *v;
	size_t n;
	assert_int_equal(mz_lease_list(f->s, NULL, l.id, &v, &n, &err), 0);
	assert_int_equal(n, 5);
	mz_lease_recs_free(v, n);
	assert_int_equal(mz_lease_list(f->s, "d1", 0, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	mz_lease_recs_free(v, n);
	/* a LAN removed takes its leases with it */
	assert_int_equal(mz_lan_rec_remove(f->s, l.id, &err), 0);
	assert_int_equal(mz_lease_list(f->s, NULL, 0, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	mz_lease_recs_free(v, n);
}

static void test_lease_two_handles(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err cleanup_error = NULL;
	struct mz_lan_rec l = lan_add(f->s, "shared", "10.7.0.0", 24, NULL, 0);
	mz_store *s2;
	assert_int_equal(mz_store_open(f->dir, &s2, &err), 0);
	uint8_t seen[256] = {0};
	for (int i = 0; i < 40; i++) {
		struct mz_lease_rec r;
		char name[16];
		snprintf(name, sizeof(name), "h%d", i);
		/* one handle inside an open transaction of its own: the other
		 * waits for it and then sees its lease */
		mz_store *a = i % 2 ? s2 : f->s;
		assert_int_equal(mz_store_begin(a, &err), 0);
		assert_int_equal(mz_lease_alloc(a, &l, name, 0, &r, &err), 0);
		assert_int_equal(mz_store_commit(a, &err), 0);
		assert_int_equal(seen[r.ip4 & 255], 0);
		seen[r.ip4 & 255] = 1;
		free(r.rundir);
	}
	mz_store_close(s2);
}

static void test_lease_processes(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err cleanup_error = NULL;
	struct mz_lan_rec l = lan_add(f->s, "busy", "10.6.0.0", 22, NULL, 0);
	enum { KIDS = 4, EACH = 30 };
	pid_t kids[KIDS];
	for (int k = 0; k < KIDS; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			mz_store *s;
			if (mz_store_open(f->dir, &s, NULL) < 0)
				_exit(1);
			for (int i = 0; i < EACH; i++) {
				char name[32];
				struct mz_lease_rec r;
				snprintf(name, sizeof(name), "p%d-%d", k, i);
				if (mz_lease_alloc(s, &l, name, 0, &r, NULL) < 0)
					_exit(2);
				free(r.rundir);
			}
			mz_store_close(s);
			_exit(0);
		}
	}
	for (int k = 0; k < KIDS; k++) {
		int st;
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	struct mz_lease_rec *v;
	size_t n;
	assert_int_equal(mz_lease_list(f->s, NULL, l.id, &v, &n, &err), 0);
	assert_int_equal(n, KIDS * EACH);
	/* distinct and dense: .2 up to .2 + n - 1 */
	uint8_t *seen = xcalloc(1024, 1);
	for (size_t i = 0; i < n; i++) {
		uint32_t off = v[i].ip4 - l.net4;
		assert_true(off >= 2 && off < 2 + n);
		assert_int_equal(seen[off], 0);
		seen[off] = 1;
	}
	free(seen);
	mz_lease_recs_free(v, n);
}

static void test_forwards(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err cleanup_error = NULL;
	struct mz_fwd_rec a = {.domain = "a", .proto = IPPROTO_TCP, .host_port = 8080,
			       .domain_port = 80};
	assert_int_equal(mz_fwd_add(f->s, &a, &err), 0);
	struct mz_fwd_rec b = a;
	snprintf(b.domain, sizeof(b.domain), "b");
	assert_int_equal(mz_fwd_add(f->s, &b, &err), -EEXIST);
	assert_non_null(strstr(err->msg, "8080/tcp is forwarded to domain 'a'"));
	mz_error_release(&err);
	b.proto = IPPROTO_UDP; /* the same number, another protocol */
	assert_int_equal(mz_fwd_add(f->s, &b, &err), 0);
	struct mz_fwd_rec *v;
	size_t n;
	assert_int_equal(mz_fwd_list(f->s, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	free(v);
	assert_int_equal(mz_lease_forget(f->s, "a", &err), 0);
	assert_int_equal(mz_fwd_list(f->s, "a", &v, &n, &err), 0);
	assert_int_equal(n, 0);
	free(v);
}

static void test_plan(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err cleanup_error = NULL;
	struct mz_lan_opts o = {.subnet = "10.5.0.0/24", .subnet6 = "none"};
	struct mz_lan_rec l;
	assert_int_equal(mz_net_lan_create(f->s, "web", &o, &l, &err), 0);
	assert_int_equal(mz_net_lan_create(f->s, "web2", &o, &l, &err), -EEXIST);
	assert_non_null(strstr(err->msg, "overlaps LAN 'web'"));
	mz_error_release(&err);
	/* the default LAN is made on first use */
	const char *lans[] = {"web", MZ_NET_DEFAULT_LAN};
	struct mz_port_fwd p = {.proto = IPPROTO_TCP, .host_port = 47001, .domain_port = 80};
	assert_int_equal(mz_net_plan(f->s, "a", lans, 2, &p, 1, &err), 0);
	assert_int_equal(mz_lan_rec_get(f->s, MZ_NET_DEFAULT_LAN, &l, &err), 0);
	assert_true(l.nat && l.len4 == 20 && l.len6 == 64);
	struct mz_lease_rec *v;
	size_t n;
	assert_int_equal(mz_lease_list(f->s, "a", 0, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].nic, 0);
	assert_int_equal(v[1].nic, 1);
	mz_lease_recs_free(v, n);
	/* planned once */
	assert_int_equal(mz_net_plan(f->s, "a", lans, 1, NULL, 0, &err), -EEXIST);
	mz_error_release(&err);
	/* hostile or wrong input changes nothing */
	static const struct {
		const char *dom, *lan, *needle;
	} bad[] = {
		{"b/c", "web", "invalid domain name"},   {"", "web", "invalid domain name"},
		{"..", "web", "invalid domain name"},     {"b", "nosuch", "no LAN named 'nosuch'"},
		{"b", "a b", "invalid LAN name"},         {"b", "", "invalid LAN name"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *one = bad[i].lan;
		assert_true(mz_net_plan(f->s, bad[i].dom, &one, 1, NULL, 0, &err) < 0);
		if (strstr(err->msg, bad[i].needle) == NULL)
			fail_msg("%s on %s: '%s' lacks '%s'", bad[i].dom, bad[i].lan, err->msg,
				 bad[i].needle);
		mz_error_release(&err);
	}
	const char *twice[] = {"web", "web"};
	assert_int_equal(mz_net_plan(f->s, "b", twice, 2, NULL, 0, &err), -EINVAL);
	mz_error_release(&err);
	assert_int_equal(mz_net_plan(f->s, "b", NULL, 0, &p, 1, &err), -EINVAL);
	assert_non_null(strstr(err->msg, "need a LAN"));
	mz_error_release(&err);
	/* a taken host port fails the whole plan: no lease is left behind */
	assert_int_equal(mz_net_plan(f->s, "b", lans, 1, &p, 1, &err), -EEXIST);
	mz_error_release(&err);
	struct mz_port_fwd dup[2] = {p, p};
	dup[0].host_port = dup[1].host_port = 47002;
	assert_int_equal(mz_net_plan(f->s, "b", lans, 1, dup, 2, &err), -EINVAL);
	assert_non_null(strstr(err->msg, "forwarded twice"));
	mz_error_release(&err);
	struct mz_port_fwd zero = {.proto = IPPROTO_TCP, .host_port = 0, .domain_port = 80};
	assert_int_equal(mz_net_plan(f->s, "b", lans, 1, &zero, 1, &err), -EINVAL);
	mz_error_release(&err);
	assert_int_equal(mz_lease_list(f->s, "b", 0, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	mz_lease_recs_free(v, n);
	const char *nine[9] = {"web"};
	assert_int_equal(mz_net_plan(f->s, "b", nine, 9, NULL, 0, &err), -EINVAL);
	mz_error_release(&err);
	/* inside the caller's transaction: rolled back with it */
	assert_int_equal(mz_store_begin(f->s, &err), 0);
	assert_int_equal(mz_net_plan(f->s, "c", lans, 1, NULL, 0, &err), 0);
	mz_store_rollback(f->s);
	assert_int_equal(mz_lease_list(f->s, "c", 0, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	mz_lease_recs_free(v, n);
	/* rate limits: bounds, then on every lease of the domain */
	assert_int_equal(mz_net_set_rates(f->s, "a", 999, 0, &err), -EINVAL);
	mz_error_release(&err);
	assert_int_equal(mz_net_set_rates(f->s, "a", 0, -1, &err), -EINVAL);
	mz_error_release(&err);
	assert_int_equal(mz_net_set_rates(f->s, "a", 0, (1ll << 34) + 1, &err), -EINVAL);
	mz_error_release(&err);
	assert_int_equal(mz_net_set_rates(f->s, "a", 1000000, 2000, &err), 0);
	assert_int_equal(mz_lease_list(f->s, "a", 0, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		assert_true(v[i].rate_in == 1000000 && v[i].rate_out == 2000);
	mz_lease_recs_free(v, n);
	/* forget: leases and forwards go, the addresses are free again */
	assert_int_equal(mz_net_forget_domain(f->s, "a", &err), 0);
	assert_int_equal(mz_net_plan(f->s, "b", lans, 1, &p, 1, &err), 0);
	assert_int_equal(mz_lease_list(f->s, "b", 0, &v, &n, &err), 0);
	assert_string_equal(ip4s(v[0].ip4), "10.5.0.2");
	mz_lease_recs_free(v, n);
}

static void test_lan_checks(void **state)
{
	struct store_fx *f = *state;
	mz_error_t err cleanup_error = NULL;
	struct mz_lan_rec l;
	static const struct {
		struct mz_lan_opts o;
		const char *needle;
	} bad[] = {
		{{.subnet = "10.1.0.0/31"}, "/8 to /30"},
		{{.subnet = "10.0.0.0/7"}, "/8 to /30"},
		{{.subnet = "127.0.0.0/8"}, "loopback"},
		{{.subnet = "0.0.0.0/8"}, "this network"},
		{{.subnet = "240.0.0.0/8"}, "reserved"},
		{{.subnet6 = "::/64"}, "reserved"},
		{{.subnet6 = "::ffff:10.0.0.0/112"}, "reserved"},
		{{.subnet6 = "ff02::/64"}, "multicast"},
		{{.subnet6 = "fd00::/40"}, "/48 to /112"},
		{{.subnet6 = "10.0.0.0/8"}, "not an IPv6"},
		{{.nat = true, .isolated = true}, "--nat and --isolated"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(mz_net_lan_create(f->s, "x", &bad[i].o, &l, &err), -EINVAL);
		if (strstr(err->msg, bad[i].needle) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err->msg, bad[i].needle);
		mz_error_release(&err);
	}
	struct mz_lan_rec *v;
	size_t n;
	assert_int_equal(mz_lan_rec_list(f->s, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	free(v);
	/* chosen subnets: distinct, and an IPv6 /64 of one ULA /48 */
	struct mz_lan_opts o = {0};
	struct mz_lan_rec a, b;
	assert_int_equal(mz_net_lan_create(f->s, "a", &o, &a, &err), 0);
	assert_int_equal(mz_net_lan_create(f->s, "b", &o, &b, &err), 0);
	assert_true(a.net4 != b.net4 && a.len4 == 24 && b.len4 == 24);
	assert_int_equal(a.net6[0], 0xfd);
	assert_memory_equal(a.net6, b.net6, 6);
	assert_memory_not_equal(a.net6, b.net6, 8);
	/* another store gets another ULA prefix */
	char dir2[64];
	fx_mkdtemp(dir2);
	mz_store *s2;
	assert_int_equal(mz_store_open(dir2, &s2, &err), 0);
	struct mz_lan_rec c;
	assert_int_equal(mz_net_lan_create(s2, "c", &o, &c, &err), 0);
	assert_memory_not_equal(a.net6, c.net6, 6);
	char t1[8], t2[8];
	mz_net_tag(f->s, t1);
	mz_net_tag(s2, t2);
	assert_int_equal(strlen(t1), 6);
	assert_string_not_equal(t1, t2);
	char br[16];
	mz_net_bridge_name(s2, 99999999, br);
	assert_int_equal(strlen(br), 15);
	mz_store_close(s2);
	fx_rmrf(dir2);
}

/* ---- the LAN fast path's program (fast.c), run on frames by the kernel ---- */

/* Two members on one LAN: A (ifindex 11) and B (ifindex 12), and C (13),
 * which may receive but not send through it (an egress limit). */
static const uint8_t mac_a[6] = {0x02, 0x6d, 0, 0, 0, 0xa};
static const uint8_t mac_b[6] = {0x02, 0x6d, 0, 0, 0, 0xb};
static const uint8_t mac_c[6] = {0x02, 0x6d, 0, 0, 0, 0xc};
static const uint8_t ip6_a[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa};
static const uint8_t ip6_b[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb};
#define IP4_A 0x0a000002u /* 10.0.0.2 */
#define IP4_B 0x0a000003u
#define TC_ACT_UNSPEC_ (-1)
#define TC_ACT_REDIRECT_ 7

/* An Ethernet frame: IPv4 (version 4, IHL 5) or IPv6 with protocol proto. */
static size_t frame(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], int v,
		    const void *saddr, uint8_t proto)
{
	memset(f, 0, 128);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	if (v == 4) {
		f[12] = 0x08, f[13] = 0x00;
		f[14] = 0x45;
		f[16] = 0, f[17] = 40; /* total length */
		f[22] = 64, f[23] = proto;
		memcpy(f + 26, saddr, 4);
		return 14 + 40;
	}
	f[12] = 0x86, f[13] = 0xdd;
	f[14] = 0x60;
	f[19] = 20, f[20] = proto, f[21] = 64;
	memcpy(f + 22, saddr, 16);
	return 14 + 60;
}

static int verdict(struct mz_fast_prog *p, uint32_t ifindex, const uint8_t *f, size_t len)
{
	uint32_t v = 0;
	int r = mz_fast_prog_run(p, ifindex, f, len, &v);
	if (r < 0)
		fail_msg("BPF_PROG_TEST_RUN: %s", strerror(-r));
	return (int)v;
}

static void test_fast_prog(void **state)
{
	(void)state;
	struct mz_fast_prog p;
	mz_error_t err cleanup_error = NULL;
	if (mz_fast_prog_load(&p, &err) < 0) {
		if (err && (err->code == EPERM || err->code == ENOSYS))
			skip(); /* no BPF here: domains keep the bridge (net.c) */
		fail_msg("%s", err ? err->msg : "load");
	}
	struct mz_fast_member a = {.ifindex = 11, .lease = 1, .mac = mac_a, .ip4 = IP4_A,
				   .ip6 = ip6_a, .send = true};
	struct mz_fast_member b = {.ifindex = 12, .lease = 2, .mac = mac_b, .ip4 = IP4_B,
				   .ip6 = ip6_b, .send = true};
	struct mz_fast_member c = {.ifindex = 13, .lease = 3, .mac = mac_c, .ip4 = 0x0a000004u,
				   .send = false};
	assert_int_equal(mz_fast_prog_add(&p, &a, &err), 0);
	assert_int_equal(mz_fast_prog_add(&p, &b, &err), 0);
	assert_int_equal(mz_fast_prog_add(&p, &c, &err), 0);
	uint8_t f[128];
	uint32_t a4 = htonl(IP4_A), b4 = htonl(IP4_B);
	const uint8_t gw[6] = {0x02, 0x6d, 0, 0, 0, 0x1};
	const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	size_t n;

	/* what may take it: A's own TCP and UDP, v4 and v6, to B (and C) */
	n = frame(f, mac_b, mac_a, 4, &a4, 6);
	assert_int_equal(verdict(&p, 11, f, n), TC_ACT_REDIRECT_);
	n = frame(f, mac_b, mac_a, 4, &a4, 17);
	assert_int_equal(verdict(&p, 11, f, n), TC_ACT_REDIRECT_);
	n = frame(f, mac_b, mac_a, 6, ip6_a, 6);
	assert_int_equal(verdict(&p, 11, f, n), TC_ACT_REDIRECT_);
	n = frame(f, mac_c, mac_a, 4, &a4, 6);
	assert_int_equal(verdict(&p, 11, f, n), TC_ACT_REDIRECT_);
	n = frame(f, mac_a, mac_b, 4, &b4, 6);
	assert_int_equal(verdict(&p, 12, f, n), TC_ACT_REDIRECT_);

	/* what goes to the bridge and its checks */
	struct {
		const char *what;
		uint32_t in;
		const uint8_t *dst, *src;
		int v;
		const void *saddr;
		uint8_t proto;
	} bridge[] = {
		{"ICMP", 11, mac_b, mac_a, 4, &a4, 1},
		{"ICMPv6 (ND)", 11, mac_b, mac_a, 6, ip6_a, 58},
		{"an IPv6 extension header", 11, mac_b, mac_a, 6, ip6_a, 0},
		{"another member's source address", 11, mac_b, mac_a, 4, &b4, 6},
		{"another member's source address, v6", 11, mac_b, mac_a, 6, ip6_b, 6},
		{"another member's MAC", 11, mac_b, mac_b, 4, &a4, 6},
		{"from a veth that is no member", 14, mac_b, mac_a, 4, &a4, 6},
		{"from a member that may not send (egress limit)", 13, mac_a, mac_c, 4, &a4, 6},
		{"to the gateway", 11, gw, mac_a, 4, &a4, 6},
		{"broadcast", 11, bcast, mac_a, 4, &a4, 17},
		{"back to itself", 11, mac_a, mac_a, 4, &a4, 6},
		{"C without IPv6 sending v6", 13, mac_a, mac_c, 6, ip6_a, 6},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bridge); i++) {
		n = frame(f, bridge[i].dst, bridge[i].src, bridge[i].v, bridge[i].saddr,
			  bridge[i].proto);
		if (verdict(&p, bridge[i].in, f, n) != TC_ACT_UNSPEC_)
			fail_msg("%s: took the fast path", bridge[i].what);
	}
	/* not IP: ARP, a VLAN tag in the frame, IPv4 of another version */
	n = frame(f, mac_b, mac_a, 4, &a4, 6);
	f[12] = 0x08, f[13] = 0x06;
	assert_int_equal(verdict(&p, 11, f, n), TC_ACT_UNSPEC_);
	f[12] = 0x81, f[13] = 0x00;
	assert_int_equal(verdict(&p, 11, f, n), TC_ACT_UNSPEC_);
	n = frame(f, mac_b, mac_a, 4, &a4, 6);
	f[14] = 0x65;
	assert_int_equal(verdict(&p, 11, f, n), TC_ACT_UNSPEC_);
	/* (frames shorter than their IP header cannot be run here: the test
	 * run refuses them; the verifier holds the program to its bounds) */
	mz_fast_prog_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_overlap),
		cmocka_unit_test(test_subnet_pick),
		cmocka_unit_test(test_names_and_ports),
		cmocka_unit_test(test_nft_text),
		cmocka_unit_test(test_fast_prog),
		cmocka_unit_test_setup_teardown(test_lease_alloc, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_lease_two_handles, store_fx_setup,
						store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_lease_processes, store_fx_setup,
						store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_forwards, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_plan, store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_lan_checks, store_fx_setup, store_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
