/*
 * cmd_net.c — `mezzo net`: create, list, inspect and remove virtual LANs, and
 * prune what crashed domains left in the kernel.  The work is in src/net;
 * this file parses arguments and prints.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "../net/net.h"
#include "../net/netInt.h"
#include "cli.h"

static const char net_usage[] =
	"usage: mezzo net COMMAND [OPTIONS]\n"
	"\n"
	"Virtual LANs.  A LAN is a bridge on the host with a private IPv4 subnet and\n"
	"an IPv6 /64; the host is its first address.  Each domain on a LAN gets its\n"
	"own NIC (eth0, eth1, ...) with a MAC and addresses that stay its own until\n"
	"the domain is removed, a default route, and /etc/hosts naming every\n"
	"member of its LANs.  A domain can send only as itself (no MAC or address\n"
	"spoofing), reaches no other LAN and none of the host's services, and is\n"
	"reached from outside only through the host ports forwarded to it.\n"
	"The LAN 'default' (NAT'ed) exists out of the box.\n"
	"\n"
	"Commands:\n"
	"  create NAME [--subnet CIDR] [--subnet6 CIDR|none] [--nat | --isolated]\n"
	"  ls                   LANs, their subnets, modes and number of members\n"
	"  inspect NAME         subnets, bridge, members with their addresses, forwards\n"
	"  rm NAME... [--force] remove LANs (--force: even with members, who lose\n"
	"                       their NIC on it)\n"
	"  prune                remove what crashed domains left: veths, filter\n"
	"                       elements, bridges of removed LANs\n"
	"\n"
	"`mezzo net COMMAND --help` tells more about each.\n"
	"\n"
	"Examples:\n"
	"  mezzo net create backend --isolated\n"
	"  mezzo net create web --subnet 10.30.0.0/24 --nat\n"
	"  mezzo --json net ls\n"
	"  mezzo net rm backend\n";

static const char create_usage[] =
	"usage: mezzo net create NAME [--subnet CIDR] [--subnet6 CIDR|none] [--nat | --isolated]\n"
	"\n"
	"Make a LAN.  NAME: 1-32 of A-Z a-z 0-9 _ . -.  The bridge is made when the\n"
	"first domain on the LAN starts.\n"
	"\n"
	"  --subnet CIDR     its IPv4 subnet, /8 to /30 (default: a free /24 in\n"
	"                    10.64.0.0-10.254.255.255).  It may overlap no other LAN\n"
	"                    and no route of the host.  The host is its first address,\n"
	"                    domains get the next ones.\n"
	"  --subnet6 CIDR    its IPv6 subnet, /48 to /112 (default: a free /64 of a\n"
	"                    ULA prefix of this store); 'none' for no IPv6\n"
	"  --nat             domains reach beyond the host, masqueraded behind the\n"
	"                    host's address\n"
	"  --isolated        domains reach each other and nothing else: no default\n"
	"                    route, and the host drops anything they route out\n"
	"  (neither)         a routed LAN: domains' packets are routed out with their\n"
	"                    own addresses (for networks that route the subnet back)\n"
	"\n"
	"Examples:\n"
	"  mezzo net create web --nat\n"
	"  mezzo net create db --subnet 10.40.0.0/24 --subnet6 none --isolated\n";

static const char ls_usage[] =
	"usage: mezzo net ls [--json]\n"
	"\n"
	"LANs: NAME, IPv4 SUBNET, IPV6 subnet, MODE (nat, routed, isolated), MEMBERS\n"
	"(domains with an address on it) and its BRIDGE ('-' until a member starts).\n";

static const char inspect_usage[] =
	"usage: mezzo net inspect [--json] NAME\n"
	"\n"
	"Everything about a LAN: subnets and the host's address on them, mode, bridge,\n"
	"each member's NIC, addresses and MAC and whether its filter is loaded\n"
	"(attached: it is running), whether TCP and UDP to and from it take the\n"
	"fast path past the bridge (and how many frames it sent that way; \"receive\n"
	"only\" with an egress limit, \"-\" when the kernel has no fast path for it),\n"
	"and the host ports forwarded to its members.\n";

static const char rm_usage[] =
	"usage: mezzo net rm NAME... [--force]\n"
	"\n"
	"Remove LANs: the bridge, its filter elements and the catalog record.  A LAN\n"
	"with members is refused unless --force: then its members lose their NIC on\n"
	"it at once (running ones too) and their addresses on it.\n"
	"\n"
	"Example:\n"
	"  mezzo net rm web --force\n";

static const char prune_usage[] =
	"usage: mezzo net prune\n"
	"\n"
	"Remove what domains that died without stopping left behind: filter\n"
	"elements of domains that are not running, veths of this store nothing\n"
	"wants, bridges of removed LANs, and, with no LAN left, mezzo's nftables\n"
	"tables of this store.  Deleting an interface takes ~20 ms.\n";

static const char *mode_of(const struct mz_lan_rec *l)
{
	return l->isolated ? "isolated" : l->nat ? "nat" : "routed";
}

static void cidrs_fmt(const struct mz_lan_rec *l, char c4[64], char c6[64])
{
	struct mz_cidr a, b;
	mz_lan_cidrs(l, &a, &b);
	mz_cidr_fmt(&a, c4);
	if (l->len6)
		mz_cidr_fmt(&b, c6);
	else
		snprintf(c6, 64, "-");
}

static int net_create(struct cli *c, int argc, char **argv)
{
	struct mz_lan_opts o = {0};
	const char *name = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (cli_is_help(a)) {
			fputs(create_usage, stdout);
			return EXIT_OK;
		} else if (strcmp(a, "--nat") == 0) {
			o.nat = true;
		} else if (strcmp(a, "--isolated") == 0) {
			o.isolated = true;
		} else if ((strcmp(a, "--subnet") == 0 || strcmp(a, "--subnet6") == 0) && i + 1 < argc) {
			*(strcmp(a, "--subnet") == 0 ? &o.subnet : &o.subnet6) = argv[++i];
		} else if (strncmp(a, "--subnet=", 9) == 0) {
			o.subnet = a + 9;
		} else if (strncmp(a, "--subnet6=", 10) == 0) {
			o.subnet6 = a + 10;
		} else if (a[0] == '-') {
			return cli_usage("net create", "unknown option '%s'", a);
		} else if (name) {
			return cli_usage("net create", "one LAN NAME at a time ('%s' and '%s')", name, a);
		} else {
			name = a;
		}
	}
	if (name == NULL)
		return cli_usage("net create", "need a LAN NAME");
	if (o.nat && o.isolated)
		return cli_usage("net create", "--nat and --isolated exclude each other");
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	struct mz_lan_rec l;
	if (cli_store(c, &s, &err) < 0 || mz_net_lan_create(s, name, &o, &l, &err) < 0)
		return cli_fail(&err);
	char c4[64], c6[64];
	cidrs_fmt(&l, c4, c6);
	if (c->json) {
		printf("{\"name\":");
		cli_json_str(stdout, l.name);
		printf(",\"subnet\":\"%s\",\"subnet6\":\"%s\",\"mode\":\"%s\"}\n", c4,
		       l.len6 ? c6 : "", mode_of(&l));
	} else if (!c->quiet) {
		printf("LAN %s: %s, %s, %s\n", l.name, c4, c6, mode_of(&l));
	}
	return EXIT_OK;
}

struct lan_view {
	struct mz_lease_rec *leases; /* all of the store */
	size_t nleases;
	struct mz_fwd_rec *fw;
	size_t nfw;
};

static size_t members_of(const struct lan_view *v, int64_t lan)
{
	size_t k = 0;
	for (size_t i = 0; i < v->nleases; i++)
		k += v->leases[i].lan == lan;
	return k;
}

static int net_ls(struct cli *c, mz_store *s)
{
	mz_error_t err cleanup_error = NULL;
	struct mz_lan_rec def, *lans = NULL;
	size_t n = 0;
	struct lan_view v = {0};
	if (mz_net_lan_default(s, &def, &err) < 0 || mz_lan_rec_list(s, &lans, &n, &err) < 0 ||
	    mz_lease_list(s, NULL, 0, &v.leases, &v.nleases, &err) < 0)
		return cli_fail(&err);
	if (c->json)
		printf("[");
	else
		printf("%-16s %-18s %-26s %-8s %-7s %s\n", "NAME", "SUBNET", "IPV6", "MODE",
		       "MEMBERS", "BRIDGE");
	for (size_t i = 0; i < n; i++) {
		char c4[64], c6[64], br[16];
		cidrs_fmt(&lans[i], c4, c6);
		mz_net_bridge_name(s, lans[i].id, br);
		bool up = mz_net_link_exists(br);
		size_t m = members_of(&v, lans[i].id);
		if (c->json) {
			printf("%s{\"name\":", i ? "," : "");
			cli_json_str(stdout, lans[i].name);
			printf(",\"subnet\":\"%s\",\"subnet6\":\"%s\",\"mode\":\"%s\",\"members\":%zu,"
			       "\"bridge\":\"%s\",\"bridge_present\":%s}",
			       c4, lans[i].len6 ? c6 : "", mode_of(&lans[i]), m, br, up ? "true" : "false");
		} else {
			printf("%-16s %-18s %-26s %-8s %-7zu %s\n", lans[i].name, c4, c6,
			       mode_of(&lans[i]), m, up ? br : "-");
		}
	}
	if (c->json)
		printf("]\n");
	free(lans);
	mz_lease_recs_free(v.leases, v.nleases);
	return EXIT_OK;
}

/* The forwards that go to a member of lan: those of domains whose lowest NIC
 * is on it. */
static bool fwd_on_lan(const struct lan_view *v, const struct mz_fwd_rec *f, int64_t lan)
{
	const struct mz_lease_rec *best = NULL;
	for (size_t i = 0; i < v->nleases; i++)
		if (strcmp(v->leases[i].domain, f->domain) == 0 &&
		    (best == NULL || v->leases[i].nic < best->nic))
			best = &v->leases[i];
	return best && best->lan == lan;
}

static int net_inspect(struct cli *c, mz_store *s, const char *name)
{
	mz_error_t err cleanup_error = NULL;
	struct mz_lan_rec l;
	struct lan_view v = {0};
	if (strcmp(name, MZ_NET_DEFAULT_LAN) == 0 ? mz_net_lan_default(s, &l, &err) < 0
						   : mz_lan_rec_get(s, name, &l, &err) < 0)
		return cli_fail(&err);
	if (mz_lease_list(s, NULL, 0, &v.leases, &v.nleases, &err) < 0 ||
	    mz_fwd_list(s, NULL, &v.fw, &v.nfw, &err) < 0)
		return cli_fail(&err);
	char c4[64], c6[64], br[16], gw4[16], gw6[48] = "";
	uint8_t g6[16];
	cidrs_fmt(&l, c4, c6);
	mz_net_bridge_name(s, l.id, br);
	mz_ip4_fmt(mz_lan_gw4(&l), gw4);
	if (l.len6) {
		mz_lan_gw6(&l, g6);
		mz_ip6_fmt(g6, gw6);
	}
	bool up = mz_net_link_exists(br);
	/* the fast path as the kernel holds it (best effort: a LAN without
	 * one, or a kernel that cannot say, shows none) */
	struct mz_net_fast_stat *fs = NULL;
	size_t nfs = 0;
	mz_error_t ferr = NULL;
	if (up && mz_net_fast_stats(s, l.id, &fs, &nfs, &ferr) < 0)
		nfs = 0;
	mz_error_release(&ferr);
	if (c->json) {
		printf("{\"name\":");
		cli_json_str(stdout, l.name);
		printf(",\"subnet\":\"%s\",\"gateway\":\"%s\",\"subnet6\":\"%s\",\"gateway6\":\"%s\","
		       "\"mode\":\"%s\",\"nat\":%s,\"isolated\":%s,\"bridge\":\"%s\","
		       "\"bridge_present\":%s,\"members\":[",
		       c4, gw4, l.len6 ? c6 : "", gw6, mode_of(&l), l.nat ? "true" : "false",
		       l.isolated ? "true" : "false", br, up ? "true" : "false");
	} else {
		printf("name:      %s\nsubnet:    %s (host: %s)\n", l.name, c4, gw4);
		if (l.len6)
			printf("ipv6:      %s (host: %s)\n", c6, gw6);
		else
			printf("ipv6:      none\n");
		printf("mode:      %s\nbridge:    %s%s\n", mode_of(&l), br,
		       up ? "" : " (made when a member starts)");
		printf("members:\n  %-20s %-5s %-16s %-26s %-18s %-9s %s\n", "DOMAIN", "NIC", "IPV4",
		       "IPV6", "MAC", "STATE", "FAST PATH");
	}
	bool first = true;
	for (size_t i = 0; i < v.nleases; i++) {
		const struct mz_lease_rec *le = &v.leases[i];
		if (le->lan != l.id)
			continue;
		char a4[16], a6[48] = "-", mac[18];
		const char *veth = le->veth[0] ? le->veth : "-";
		mz_ip4_fmt(le->ip4, a4);
		if (le->has_ip6)
			mz_ip6_fmt(le->ip6, a6);
		mz_mac_fmt(le->mac, mac);
		/* "both": it sends and is reached through the fast path; "in":
		 * only reached (an egress limit keeps its sending on the bridge) */
		const struct mz_net_fast_stat *f = NULL;
		for (size_t k = 0; k < nfs && le->attached && !f; k++)
			if (fs[k].lease == le->id)
				f = &fs[k];
		const char *fast = f == NULL ? "none" : f->sends ? "both" : "in";
		if (c->json) {
			printf("%s{\"domain\":", first ? "" : ",");
			cli_json_str(stdout, le->domain);
			printf(",\"nic\":\"eth%d\",\"ipv4\":\"%s\",\"ipv6\":\"%s\",\"mac\":\"%s\","
			       "\"veth\":\"%s\",\"attached\":%s,\"fast_path\":\"%s\","
			       "\"fast_path_frames\":%llu}",
			       le->nic, a4, le->has_ip6 ? a6 : "", mac, veth,
			       le->attached ? "true" : "false", fast,
			       f ? (unsigned long long)f->frames : 0ULL);
		} else {
			char fp[32] = "-";
			if (f && f->sends)
				snprintf(fp, sizeof(fp), "yes (%llu sent)", (unsigned long long)f->frames);
			else if (f)
				snprintf(fp, sizeof(fp), "receive only");
			printf("  %-20s eth%-2d %-16s %-26s %-18s %-9s %s\n", le->domain, le->nic, a4, a6,
			       mac, le->attached ? "attached" : "-", fp);
		}
		first = false;
	}
	if (c->json)
		printf("],\"forwards\":[");
	else
		printf("forwards:\n");
	first = true;
	for (size_t i = 0; i < v.nfw; i++) {
		const struct mz_fwd_rec *f = &v.fw[i];
		if (!fwd_on_lan(&v, f, l.id))
			continue;
		const char *proto = f->proto == IPPROTO_UDP ? "udp" : "tcp";
		if (c->json) {
			printf("%s{\"domain\":", first ? "" : ",");
			cli_json_str(stdout, f->domain);
			printf(",\"proto\":\"%s\",\"host_port\":%d,\"domain_port\":%d}", proto,
			       f->host_port, f->domain_port);
		} else {
			printf("  host port %d/%s -> %s port %d\n", f->host_port, proto, f->domain,
			       f->domain_port);
		}
		first = false;
	}
	if (c->json)
		printf("]}\n");
	mz_lease_recs_free(v.leases, v.nleases);
	free(v.fw);
	free(fs);
	return EXIT_OK;
}

int cmd_net(struct cli *c, int argc, char **argv)
{
	if (argc < 2) {
		fputs(net_usage, stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (cli_is_help(sub)) {
		fputs(net_usage, stdout);
		return EXIT_OK;
	}
	if (strcmp(sub, "create") == 0)
		return net_create(c, argc - 1, argv + 1);
	static const struct {
		const char *name, *usage;
	} subs[] = {{"ls", ls_usage}, {"inspect", inspect_usage}, {"rm", rm_usage},
		    {"prune", prune_usage}};
	size_t k = 0;
	while (k < ARRAY_SIZE(subs) && strcmp(sub, subs[k].name) != 0)
		k++;
	if (k == ARRAY_SIZE(subs))
		return cli_usage("net", "unknown command '%s'", sub);
	cleanup_free char *cmd = xasprintf("net %s", sub);
	bool force = false;
	char **names = xcalloc((size_t)argc, sizeof(char *));
	size_t nnames = 0;
	for (int i = 2; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(subs[k].usage, stdout);
			free(names);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--json") == 0) {
			c->json = true;
		} else if (k == 2 && (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)) {
			force = true;
		} else if (argv[i][0] == '-') {
			free(names);
			return cli_usage(cmd, "unknown option '%s'", argv[i]);
		} else {
			names[nnames++] = argv[i];
		}
	}
	int want = k == 1 ? 1 : k == 2 ? -1 : 0; /* inspect: one, rm: some, else none */
	if ((want >= 0 && (int)nnames != want) || (want < 0 && nnames == 0)) {
		free(names);
		return cli_usage(cmd, want == 0 ? "no arguments expected" : want == 1 ?
				 "need a LAN NAME" : "need LAN NAMEs");
	}
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0) {
		free(names);
		return cli_fail(&err);
	}
	int rc = EXIT_OK;
	switch (k) {
	case 0:
		rc = net_ls(c, s);
		break;
	case 1:
		rc = net_inspect(c, s, names[0]);
		break;
	case 2:
		for (size_t i = 0; i < nnames; i++) {
			mz_error_t e cleanup_error = NULL;
			if (mz_net_lan_remove(s, names[i], force, &e) < 0)
				rc = cli_fail(&e);
		}
		break;
	case 3: {
		int n = 0;
		if (mz_net_cleanup_orphans(s, &n, &err) < 0) {
			rc = cli_fail(&err);
		} else if (c->json) {
			printf("{\"removed\":%d}\n", n);
		} else if (!c->quiet) {
			printf("prune: removed %d leftover%s\n", n, n == 1 ? "" : "s");
		}
		break;
	}
	}
	free(names);
	return rc;
}
