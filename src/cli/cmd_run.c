/*
 * cmd_run.c — `mezzo run`: mezzo's main job.  Create a domain, run a command
 * in it as its main process with this terminal's stdio, exit with its status.
 * The supervisor runs in this very process (no daemon): nothing is left
 * behind when it returns, and with --rm not even the domain.  With --detach
 * it runs in a process forked for it, as for `mezzo start`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../domain/supervisor.h"
#include "../lib/cpulat.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "domain_opts.h"

static const char run_usage[] =
	"usage: mezzo run [-d] [--rm] [--name NAME] [--image IMAGE] [LIMITS] [--] CMD ARGS...\n"
	"\n"
	"Make a domain from IMAGE (default: busybox, made by ./setup) in O(1), run\n"
	"CMD in it as its main process with this terminal's input and output, and\n"
	"exit with CMD's status (128+N if a signal N ended it).  The domain has its\n"
	"own pid 1, hostname, network stack (loopback), users (root inside is an\n"
	"unprivileged host uid) and copy-on-write files.\n"
	"\n"
	"Exit status: CMD's; else 125 if mezzo failed, 126 if CMD is not executable,\n"
	"127 if it was not found (with -d: 0 once CMD runs, or one of these);\n"
	"2 for a usage error.\n"
	"\n"
	"  -d, --detach      run it in the background: print its name and return as\n"
	"                    soon as CMD runs (its output goes to 'mezzo logs NAME';\n"
	"                    'mezzo exec', 'mezzo console' and 'mezzo stop' reach it).\n"
	"                    'mezzo create' + 'mezzo start' in one command\n"
	"  --rm              remove the domain and its files afterwards, when CMD\n"
	"                    exits or the domain is stopped ('mezzo prune' does,\n"
	"                    should its supervisor be killed before it can)\n"
	"  --name NAME       name it (default run-<random>); keep it to 'mezzo start'\n"
	"                    it again later, 'mezzo snapshot' it, or look at its files\n"
	"  --image IMAGE     an image or version (see 'mezzo image ls')\n"
	"  --memory SIZE, --pids N, --cpu-weight N, --cpus N, --io-weight N\n"
	"                    limits, as for 'mezzo create'\n"
	"  --net LAN, --net none, -p HOST:DOMAIN[/tcp|/udp], --rate-in R, --rate-out R\n"
	"                    network (default: loopback only), as for 'mezzo create'\n"
	"  --service NAME=CMD, --init mezzo|image\n"
	"                    services and pid 1, as for 'mezzo create'\n"
	"\n"
	"Examples:\n"
	"  mezzo run --rm -- /bin/sh -c 'echo hello from $(hostname)'\n"
	"  mezzo run --rm --image debian -- bash     # interactive on a terminal\n"
	"  name=$(mezzo run -d --rm -- sleep 600); mezzo exec \"$name\" -- ps\n"
	"  mezzo run --name build --image debian --memory 2G -- make -C /src\n";

struct run_make {
	struct cli *c;
	const struct domain_opts *o;
	bool made;
};

/* The supervisor's make(): the catalog, and the domain's record in it. */
static int run_make(void *arg, mz_store **s, mz_error_t *err)
{
	struct run_make *m = arg;
	int r = cli_store(m->c, s, err);
	if (r == 0)
		r = domain_opts_create(*s, m->o, err);
	m->made = r == 0;
	return r;
}

int domain_run(struct cli *c, const struct domain_opts *o, struct mz_sup_opts *so,
	       int *status, mz_error_t *err)
{
	struct mz_domain_rec proto;
	domain_opts_rec(o, &proto);
	cleanup_free char *blob = proto.cmd;
	mz_store *s = NULL;
	struct run_make m = {.c = c, .o = o};
	struct mz_sup_make mk = {.make = run_make, .arg = &m, .proto = &proto, .store = &s,
				 .clone_early = o->nnets == 0};
	so->store_root = mz_store_default_root(c->root);
	so->store = NULL;
	so->name = o->name;
	so->make = &mk;
	bool removed = false;
	so->remove = o->rm;
	so->removed = &removed;
	int r = mz_supervise(so, status, err);
	mz_debug("run: %s: supervised", o->name);
	if (m.made && o->rm && !removed) {
		mz_error_t e2 cleanup_error = NULL;
		/* ENOENT: a `mezzo prune` took it once it stopped, as it may */
		if (domain_remove(s, o->name, &e2) < 0 && !(e2 && e2->code == ENOENT))
			mz_warn("could not remove domain %s: %s", o->name, e2 ? e2->msg : "");
	}
	mz_store_close(s);
	mz_debug("run: %s: removed", o->name);
	return r;
}

int cmd_run(struct cli *c, int argc, char **argv)
{
	struct domain_opts o cleanup_domain_opts = {0};
	int r = domain_opts_parse("run", run_usage, argc, argv, &o);
	if (r == OPTS_HELP_SHOWN)
		return EXIT_OK;
	if (r)
		return r;
	if (o.ncmd == 0)
		return cli_usage("run", "need a command to run (e.g. -- /bin/sh)");
	char auto_name[64];
	if (o.name == NULL) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(auto_name, sizeof(auto_name), "run-%x%05x", (unsigned)getpid() & 0xfffff,
			 (unsigned)(ts.tv_nsec >> 10) & 0xfffff);
		o.name = auto_name;
	}
	if (o.detach) {
		mz_error_t err cleanup_error = NULL;
		if (domain_start_detached(c, o.name, o.stop_timeout_s, &o, &err) < 0)
			return cli_fail_cmd(&err);
		if (!c->quiet)
			printf("%s\n", o.name);
		return EXIT_OK;
	}
	/* claimed by this process in the same commit that makes it: a run
	 * killed at any moment leaves a domain that is someone's or no one's,
	 * never one `prune` could take while the run is about to claim it */
	o.supervisor = getpid();
	/* idle CPUs poll while the domain is made (supervisor.c), from here */
	struct mz_cpulat lat = MZ_CPULAT_INIT;
	mz_cpulat_hold(&lat);
	mz_error_t err cleanup_error = NULL;
	/* One catalog handle for all of it: each open costs a schema read. */
	struct mz_sup_opts so = {.stdio = {0, 1, 2}, .tty = isatty(0), .ready_fd = -1,
				 .stop_timeout_s = o.stop_timeout_s, .cpulat = &lat};
	int status = 0;
	r = domain_run(c, &o, &so, &status, &err);
	int code = r < 0 ? cli_fail_cmd(&err) : exit_code_of(status);
	mz_cpulat_close(&lat);
	return code;
}
