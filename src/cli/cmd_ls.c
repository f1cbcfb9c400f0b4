/*
 * cmd_ls.c — `mezzo ls`, `mezzo inspect`, `mezzo logs`: what domains there
 * are and what they do.  State is read from the catalog and checked against
 * the live processes, so it is true after a crash too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../domain/runtime.h"
#include "../domain/supervisor.h"
#include "../lib/util.h"
#include "../net/net.h"
#include "domain_opts.h"

/* Memory and tasks of a domain, from its cgroup (-1: none). */
static struct mz_domain_stats stats_of(const char *root, const struct mz_domain_rec *r)
{
	struct mz_domain_proc p;
	struct mz_domain_stats st = {-1, -1, -1};
	mz_domain_proc_of(root, r->name, 0, &p);
	if (mz_domain_stats(&p, &st, NULL) < 0)
		st.memory_bytes = st.pids = st.cpu_usage_ns = -1;
	return st;
}

static const char *state_of(const char *root, const struct mz_domain_rec *r)
{
	if (r->sup_pid && r->init_pid)
		return "running";
	/* its supervisor died and left processes: 'stop' or 'rm -f' reaps them */
	if (!r->sup_pid && stats_of(root, r).pids > 0)
		return "orphaned";
	if (r->sup_pid)
		return "starting";
	return r->exit_status < 0 ? "created" : "stopped";
}

static void fmt_uptime(char *buf, size_t n, const struct mz_domain_rec *r)
{
	if (!r->init_pid) {
		snprintf(buf, n, "-");
		return;
	}
	int64_t s = (now_ns() - r->started_ns) / 1000000000;
	if (s < 120)
		snprintf(buf, n, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%lldm", (long long)s / 60);
	else
		snprintf(buf, n, "%lldh", (long long)s / 3600);
}

/* A lease as text: its addresses, MAC and LAN's name. */
struct lease_text {
	char a4[16], a6[48], mac[18];
	struct mz_lan_rec lan;
};

static void lease_text(mz_store *s, const struct mz_lease_rec *l, struct lease_text *t)
{
	mz_ip4_fmt(l->ip4, t->a4);
	if (l->has_ip6)
		mz_ip6_fmt(l->ip6, t->a6);
	else
		snprintf(t->a6, sizeof(t->a6), "-");
	mz_mac_fmt(l->mac, t->mac);
	if (mz_lan_rec_get_id(s, l->lan, &t->lan, NULL) < 0)
		snprintf(t->lan.name, sizeof(t->lan.name), "?");
}

/* The domain's addresses, from the leases of every domain (by name). */
static void json_addrs(FILE *f, mz_store *s, const char *name, const struct mz_lease_rec *l,
		       size_t nl)
{
	fprintf(f, ",\"addresses\":[");
	bool first = true;
	for (size_t i = 0; i < nl; i++) {
		if (strcmp(l[i].domain, name) != 0)
			continue;
		struct lease_text t;
		lease_text(s, &l[i], &t);
		fprintf(f, "%s{\"nic\":\"eth%d\",\"lan\":", first ? "" : ",", l[i].nic);
		cli_json_str(f, t.lan.name);
		fprintf(f, ",\"ipv4\":\"%s\",\"ipv6\":", t.a4);
		if (l[i].has_ip6)
			fprintf(f, "\"%s\"", t.a6);
		else
			fprintf(f, "null");
		fprintf(f, ",\"mac\":\"%s\"}", t.mac);
		first = false;
	}
	fprintf(f, "]");
}

/* The first IPv4 address of the domain (its eth0), or "-". */
static const char *first_addr(char out[16], const char *name,
			      const struct mz_lease_rec *l, size_t nl)
{
	int best = -1;
	for (size_t i = 0; i < nl; i++)
		if (strcmp(l[i].domain, name) == 0 && (best < 0 || l[i].nic < l[best].nic))
			best = (int)i;
	if (best < 0)
		return "-";
	mz_ip4_fmt(l[best].ip4, out);
	return out;
}

static void json_rec(FILE *f, const char *root, const struct mz_domain_rec *r)
{
	fprintf(f, "{\"name\":");
	cli_json_str(f, r->name);
	fprintf(f, ",\"state\":\"%s\",\"image\":", state_of(root, r));
	cli_json_str(f, r->source);
	struct mz_domain_stats st = stats_of(root, r);
	fprintf(f, ",\"memory_bytes\":%lld,\"pids\":%lld", (long long)st.memory_bytes,
		(long long)st.pids);
	fprintf(f, ",\"tree\":%lld,\"uid_base\":%u,\"supervisor_pid\":%d,\"init_pid\":%d,"
		   "\"created_ns\":%lld,\"started_ns\":%lld,\"exit_status\":%d,"
		   "\"limits\":{\"memory\":%lld,\"pids\":%lld,\"cpu_weight\":%lld,"
		   "\"cpu_quota_us\":%lld,\"io_weight\":%lld},\"cmd\":[",
		(long long)r->tree, MZ_DOMAIN_ID_BASE + (unsigned)r->slot * MZ_DOMAIN_ID_COUNT,
		(int)r->sup_pid, (int)r->init_pid, (long long)r->created_ns,
		(long long)r->started_ns, r->exit_status >= 0 ? exit_code_of(r->exit_status) : -1,
		(long long)r->memory, (long long)r->pids, (long long)r->cpu_weight,
		(long long)r->cpu_quota_us, (long long)r->io_weight);
	for (size_t i = 0; i < r->cmd_len; i += strlen(r->cmd + i) + 1) {
		if (i)
			fputc(',', f);
		cli_json_str(f, r->cmd + i);
	}
	fprintf(f, "],\"init\":\"%s\",\"autoremove\":%s,\"services\":[",
		r->init_mode == MZ_INIT_IMAGE ? "image" : "mezzo", r->autoremove ? "true" : "false");
	struct mz_service_list sl;
	if (mz_domain_services_parse(r->services, r->services_len, &sl) == 0) {
		for (size_t i = 0; i < sl.n; i++) {
			fprintf(f, "%s{\"name\":", i ? "," : "");
			cli_json_str(f, sl.names[i]);
			fprintf(f, ",\"cmd\":[");
			for (size_t k = 0; sl.argvs[i][k]; k++) {
				if (k)
					fputc(',', f);
				cli_json_str(f, sl.argvs[i][k]);
			}
			fprintf(f, "]}");
		}
		mz_service_list_free(&sl);
	}
	fprintf(f, "]"); /* the caller adds the addresses and closes the object */
}

static const char ls_usage[] =
	"usage: mezzo ls [--json]\n"
	"\n"
	"Domains: NAME, STATE (created, starting, running, stopped, or orphaned when\n"
	"its supervisor died), UPTIME, the init's host PID, MEMORY charged to it,\n"
	"its number of tasks (PIDS), the IPv4 ADDRESS of its eth0 (when it is on a\n"
	"LAN) and the IMAGE it was made from.  --json for scripts (all addresses).\n";

int cmd_ls(struct cli *c, int argc, char **argv)
{
	argc = cli_take_json(c, argc, argv);
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(ls_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1)
		return cli_usage("ls", "no arguments expected");
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	struct mz_domain_rec *v = NULL;
	size_t n = 0;
	struct mz_lease_rec *l = NULL;
	size_t nl = 0;
	if (cli_store(c, &s, &err) < 0 || mz_domain_rec_list(s, &v, &n, &err) < 0 ||
	    mz_lease_list(s, NULL, 0, &l, &nl, &err) < 0)
		return cli_fail(&err);
	if (c->json)
		printf("[");
	else
		printf("%-20s %-9s %-7s %-8s %-9s %-5s %-15s %s\n", "NAME", "STATE", "UPTIME",
		       "PID", "MEMORY", "PIDS", "ADDRESS", "IMAGE");
	for (size_t i = 0; i < n; i++) {
		if (c->json) {
			if (i)
				printf(",");
			json_rec(stdout, mz_store_root(s), &v[i]);
			/* json_rec left the object open for this */
			json_addrs(stdout, s, v[i].name, l, nl);
			printf("}");
			continue;
		}
		char up[32], pid[24] = "-";
		fmt_uptime(up, sizeof(up), &v[i]);
		if (v[i].init_pid)
			snprintf(pid, sizeof(pid), "%d", (int)v[i].init_pid);
		struct mz_domain_stats st = stats_of(mz_store_root(s), &v[i]);
		char mem[32] = "-", np[24] = "-";
		if (st.memory_bytes > 0 && (v[i].init_pid || st.pids > 0))
			cli_bytes(mem, st.memory_bytes);
		if (st.pids > 0)
			snprintf(np, sizeof(np), "%lld", (long long)st.pids);
		char a4[INET_ADDRSTRLEN];
		printf("%-20s %-9s %-7s %-8s %-9s %-5s %-15s %s\n", v[i].name,
		       state_of(mz_store_root(s), &v[i]), up, pid, mem, np,
		       first_addr(a4, v[i].name, l, nl), v[i].source);
	}
	if (c->json)
		printf("]\n");
	mz_domain_recs_free(v, n);
	mz_lease_recs_free(l, nl);
	return EXIT_OK;
}

static const char inspect_usage[] =
	"usage: mezzo inspect [--json] NAME\n\nEverything mezzo knows of a domain.\n";

int cmd_inspect(struct cli *c, int argc, char **argv)
{
	argc = cli_take_json(c, argc, argv);
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(inspect_usage, stdout);
		return EXIT_OK;
	}
	if (argc != 2)
		return cli_usage("inspect", "need a domain NAME");
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	struct mz_domain_rec r;
	struct mz_lease_rec *l = NULL;
	size_t nl = 0;
	if (cli_store(c, &s, &err) < 0 || mz_domain_rec_get(s, argv[1], &r, &err) < 0)
		return cli_fail(&err);
	if (mz_lease_list(s, r.name, 0, &l, &nl, &err) < 0) {
		mz_domain_rec_free(&r);
		return cli_fail(&err);
	}
	if (c->json) {
		json_rec(stdout, mz_store_root(s), &r);
		json_addrs(stdout, s, r.name, l, nl);
		printf("}\n");
	} else {
		char up[32];
		fmt_uptime(up, sizeof(up), &r);
		printf("name:        %s\nstate:       %s\nimage:       %s\nuptime:      %s\n", r.name,
		       state_of(mz_store_root(s), &r), r.source, up);
		printf("host uids:   %u-%u\n", MZ_DOMAIN_ID_BASE + (unsigned)r.slot * MZ_DOMAIN_ID_COUNT,
		       MZ_DOMAIN_ID_BASE + (unsigned)(r.slot + 1) * MZ_DOMAIN_ID_COUNT - 1);
		if (r.init_pid)
			printf("init pid:    %d (supervisor %d)\n", (int)r.init_pid, (int)r.sup_pid);
		if (r.exit_status >= 0 && !r.sup_pid)
			printf("last exit:   %d\n", exit_code_of(r.exit_status));
		printf("command:    ");
		for (size_t i = 0; i < r.cmd_len; i += strlen(r.cmd + i) + 1)
			printf(" %s", r.cmd + i);
		printf("%s\n", r.cmd_len ? "" : r.services_len ? " (none: services only)"
					    : r.init_mode == MZ_INIT_IMAGE ? " /sbin/init" : " /bin/sh");
		printf("init:        %s\n", r.init_mode == MZ_INIT_IMAGE ? "the image's (the command is pid 1)"
									: "mezzo-init");
		if (r.autoremove)
			printf("autoremove:  yes ('run --rm'; 'mezzo prune' removes it once that run is gone)\n");
		struct mz_service_list sl;
		if (mz_domain_services_parse(r.services, r.services_len, &sl) == 0) {
			for (size_t i = 0; i < sl.n; i++) {
				printf("service:     %s =", sl.names[i]);
				for (size_t k = 0; sl.argvs[i][k]; k++)
					printf(" %s", sl.argvs[i][k]);
				printf("\n");
			}
			mz_service_list_free(&sl);
		}
		printf("limits:      memory %lld, pids %lld, cpu weight %lld, cpu quota %lld us/100ms, "
		       "io weight %lld (0 = none)\n",
		       (long long)r.memory, (long long)r.pids, (long long)r.cpu_weight,
		       (long long)r.cpu_quota_us, (long long)r.io_weight);
		for (size_t i = 0; i < nl; i++) {
			struct lease_text t;
			lease_text(s, &l[i], &t);
			printf("eth%d:        %s %s on LAN %s, mac %s\n", l[i].nic, t.a4, t.a6,
			       t.lan.name, t.mac);
		}
		if (nl == 0)
			printf("network:     loopback only\n");
	}
	mz_domain_rec_free(&r);
	mz_lease_recs_free(l, nl);
	return EXIT_OK;
}

static const char logs_usage[] =
	"usage: mezzo logs NAME\n\nWhat the domain wrote on its console (kept while nobody watches).\n";

int cmd_logs(struct cli *c, int argc, char **argv)
{
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(logs_usage, stdout);
		return EXIT_OK;
	}
	if (argc != 2)
		return cli_usage("logs", "need a domain NAME");
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	struct mz_domain_rec r;
	if (cli_store(c, &s, &err) < 0 || mz_domain_rec_get(s, argv[1], &r, &err) < 0)
		return cli_fail(&err);
	mz_domain_rec_free(&r);
	cleanup_free char *dir = mz_domain_run_dir(mz_store_root(s), argv[1]);
	const char *names[] = {"console.log.1", "console.log"};
	for (size_t i = 0; i < 2; i++) {
		cleanup_free char *p = xasprintf("%s/%s", dir, names[i]);
		cleanup_close int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		char buf[65536];
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (write_all(1, buf, n) < 0)
				return EXIT_FAIL;
	}
	return EXIT_OK;
}
