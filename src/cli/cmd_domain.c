/*
 * cmd_domain.c — a domain's lifecycle: create, start, stop, kill, restart,
 * rm, snapshot.  Each talks to the catalog; start forks the domain's
 * supervisor (src/domain/supervisor.c) and stop/kill signal it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../domain/runtime.h"
#include "../domain/supervisor.h"
#include "../fs/fs.h"
#include "../net/net.h"
#include "../serve/serve.h"
#include "../lib/cpulat.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "domain_opts.h"

static const char create_usage[] =
	"usage: mezzo create NAME [--image IMAGE[:VERSION]] [LIMITS] [-- CMD ARGS...]\n"
	"\n"
	"Make a domain: a tree of IMAGE (default: busybox) made in O(1), its own\n"
	"range of 65536 host ids, and the command its init runs (default /bin/sh).\n"
	"Nothing runs until 'mezzo start NAME'.\n"
	"\n"
	"Limits:\n"
	"  --memory SIZE      memory+swap limit (e.g. 256M)\n"
	"  --pids N           most tasks at once\n"
	"  --cpu-weight N     relative CPU share, 1..10000 (100 is the default share)\n"
	"  --cpus N           hard cap in hundredths of a CPU (150 = 1.5 CPUs)\n"
	"  --io-weight N      relative I/O share, 1..10000\n"
	"\n"
	"Network (default: loopback only):\n"
	"  --net LAN          put the domain on a virtual LAN ('mezzo net ls'; 'default'\n"
	"                     is there out of the box, NAT'ed): its eth0 (the next\n"
	"                     --net is eth1...), an address kept until 'mezzo rm', a\n"
	"                     default route, and /etc/hosts naming the LAN's domains\n"
	"  --net none         loopback only\n"
	"  -p HOST:DOMAIN[/tcp|/udp]\n"
	"                     forward the host's port (loopback and its addresses) to\n"
	"                     the domain's eth0; repeat for more\n"
	"  --rate-in RATE, --rate-out RATE\n"
	"                     bandwidth limits in bytes/s (e.g. 10M)\n"
	"\n"
	"Init (pid 1):\n"
	"  --service NAME=CMD a service mezzo's init runs beside the command, restarted\n"
	"                     when it exits (after 0.25 s, doubling to 30 s); repeat for\n"
	"                     more; they stop in reverse order.  CMD is split into words\n"
	"                     like a shell's simple command ('...' and \"...\" quote; no\n"
	"                     expansions).  With services and no CMD after --, the\n"
	"                     domain runs until 'mezzo stop'\n"
	"  --init image       pid 1 is the domain's command itself (default /sbin/init):\n"
	"                     the image's own init, e.g. busybox init or systemd\n"
	"  --init mezzo       pid 1 is mezzo's init (the default)\n"
	"\n"
	"Examples:\n"
	"  mezzo create web --image debian --memory 512M -- /usr/sbin/nginx -g 'daemon off;'\n"
	"  mezzo create box --net default -p 8080:80 --service web='httpd -f -p 80'\n"
	"  mezzo create vm --image debian --init image\n";

int cmd_create(struct cli *c, int argc, char **argv)
{
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(create_usage, stdout);
		return EXIT_OK;
	}
	if (argc < 2 || argv[1][0] == '-')
		return cli_usage("create", "need a domain NAME first");
	/* NAME, then options as for run (argv shifted so NAME stands as argv[0]) */
	struct domain_opts o cleanup_domain_opts = {0};
	int r = domain_opts_parse("create", create_usage, argc - 1, argv + 1, &o);
	if (r == OPTS_HELP_SHOWN)
		return EXIT_OK;
	if (r)
		return r;
	o.name = argv[1];
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0 || domain_opts_create(s, &o, &err) < 0)
		return cli_fail(&err);
	if (!c->quiet)
		printf("%s\n", o.name);
	return EXIT_OK;
}

/* NAME and at most one option with a value, on either side of it: `stop web
 * --timeout 5`, `stop --timeout=5 web`, `kill -s TERM web`.  opts: the
 * option's spellings, NULL-terminated; *val stays NULL without it. */
static int name_and_opt(const char *cmd, const char *usage, int argc, char **argv,
			const char *const opts[], const char **name, const char **val)
{
	*name = *val = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		/* `help` alone, as for the other commands; beside other words it is
		 * a NAME (a domain may be called so) */
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 ||
		    (argc == 2 && strcmp(a, "help") == 0)) {
			fputs(usage, stdout);
			return OPTS_HELP_SHOWN;
		}
		size_t k = 0, l = 0;
		for (; opts[k]; k++) {
			l = strlen(opts[k]);
			/* --long VALUE, --long=VALUE; -s VALUE */
			if (strncmp(a, opts[k], l) == 0 &&
			    (a[l] == '\0' || (a[l] == '=' && opts[k][1] == '-')))
				break;
		}
		if (opts[k] == NULL) {
			if (a[0] == '-')
				return cli_usage(cmd, "unknown option '%s'", a);
			if (*name)
				return cli_usage(cmd, "need exactly one domain NAME (got '%s' and '%s')",
						 *name, a);
			*name = a;
			continue;
		}
		if (*val)
			return cli_usage(cmd, "%s given twice", opts[0]);
		if (a[l] == '=')
			*val = a + l + 1;
		else if (i + 1 < argc)
			*val = argv[++i];
		else
			return cli_usage(cmd, "%s wants a value", opts[k]);
	}
	if (*name == NULL)
		return cli_usage(cmd, "need exactly one domain NAME");
	return 0;
}

/* Exactly one NAME, no option. */
static int one_name(const char *cmd, const char *usage, int argc, char **argv,
		    const char **name)
{
	static const char *const none[] = {NULL};
	const char *val;
	return name_and_opt(cmd, usage, argc, argv, none, name, &val);
}

/* What the supervisor forked by `run --detach` does: make the domain, with
 * the catalog handle it then supervises with (one process and one open of
 * the catalog for both, instead of a `create` and a `start`), supervise it,
 * and with --rm remove it once it stops.  Returns the exit status. */
static int make_and_supervise(struct cli *c, const struct domain_opts *make, int ready_fd)
{
	struct domain_opts o = *make; /* borrowed: the caller frees it */
	o.supervisor = getpid();      /* claimed by the commit that makes it */
	struct mz_cpulat lat = MZ_CPULAT_INIT;
	mz_cpulat_hold(&lat);
	mz_error_t err cleanup_error = NULL;
	struct mz_sup_opts so = {.console = true, .log = true, .ready_fd = ready_fd,
				 .stop_timeout_s = o.stop_timeout_s, .cpulat = &lat};
	int status = 0;
	int r = domain_run(c, &o, &so, &status, &err);
	if (r < 0)
		mz_err("%s", err ? err->msg : "supervisor failed");
	mz_cpulat_close(&lat);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}

/* What a detached supervisor does, forked or not (start_here): a session
 * of its own, stdio to /dev/null (its log, once it knows the domain), then
 * make the domain (run -d) and supervise it, telling how the start went on
 * ready_fd.  Returns the exit status. */
static int supervise_detached(struct cli *c, const char *name, int stop_timeout,
			      const struct domain_opts *make, int ready_fd)
{
	setsid();
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	mz_log_init("mezzo-supervisor");
	if (make)
		return make_and_supervise(c, make, ready_fd);
	struct mz_sup_opts so = {.store_root = mz_store_default_root(c->root), .name = name,
				 .console = true, .log = true, .ready_fd = ready_fd,
				 .stop_timeout_s = stop_timeout};
	mz_error_t err cleanup_error = NULL;
	int status = 0;
	int r = mz_supervise(&so, &status, &err);
	if (r < 0)
		mz_err("%s", err ? err->msg : "supervisor failed");
	return r < 0 ? 1 : 0;
}

/* A supervisor that closed its ready pipe without a word. */
static int died_starting(mz_error_t *err, const char *root, const char *name)
{
	cleanup_free char *dir = mz_domain_run_dir(root, name);
	return mz_error(err, EIO, "the supervisor of '%s' died while starting (see %s/supervisor.log)",
			name, dir);
}

/* The command's side of a start made in this very process (start_here):
 * what the caller of domain_start_detached would say and exit with. */
struct here {
	pthread_t th;
	int ready, out, errfd; /* the ready pipe; the client's stdout, stderr */
	const char *name, *root;
	bool run_d, quiet;
};

static void *here_report(void *arg)
{
	struct here *h = arg;
	mz_error_t err cleanup_error = NULL;
	int r = cli_wait_ready(h->ready, &err);
	int status = EXIT_OK;
	if (r == 0) {
		if (h->run_d && !h->quiet)
			dprintf(h->out, "%s\n", h->name);
	} else {
		if (r == -ECHILD)
			died_starting(&err, h->root, h->name);
		dprintf(h->errfd, "mezzo: error: %s\n", err && err->msg ? err->msg : "unknown failure");
		status = h->run_d ? cli_cmd_status(&err) : EXIT_FAIL;
	}
	close(h->out);
	close(h->errfd);
	mz_serve_report(status);
	return NULL;
}

/* Under `mezzo serve`: this worker, a fork of the server with the store's
 * catalog already open, becomes the supervisor itself instead of forking
 * one that opens the catalog again (0.6-0.8 ms of a `start`).  A thread
 * reads the ready pipe and says to the waiting client what the command
 * would have said; the supervisor goes on alone.  Never returns. */
static void start_here(struct cli *c, const char *name, int stop_timeout,
		       const struct domain_opts *make)
{
	struct here h = {.name = make ? make->name : name, .root = mz_store_default_root(c->root),
			 .run_d = make != NULL, .quiet = c->quiet, .out = dup(1), .errfd = dup(2)};
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0 || h.out < 0 || h.errfd < 0) {
		dprintf(2, "mezzo: error: pipe: %s\n", strerror(errno));
		exit(make ? EXIT_RUN_FAIL : EXIT_FAIL);
	}
	h.ready = p[0];
	if (pthread_create(&h.th, NULL, here_report, &h) != 0) {
		dprintf(2, "mezzo: error: cannot start a thread\n");
		exit(make ? EXIT_RUN_FAIL : EXIT_FAIL);
	}
	/* no longer the client's command: a process of its own, as a forked
	 * supervisor is */
	mz_serve_outlive();
	/* (the supervisor closes p[1] once it has said how the start went) */
	int status = supervise_detached(c, name, stop_timeout, make, p[1]);
	pthread_join(h.th, NULL);
	exit(status);
}

/* Fork the supervisor; return once the domain's init runs.  The supervisor
 * finds the domain, claims it (EBUSY: already running) and says how it went
 * on the pipe: no catalog work here, each open of it costs a schema read.
 * With make (run --detach), the supervisor makes the domain first. */
int domain_start_detached(struct cli *c, const char *name, int stop_timeout,
			  const struct domain_opts *make, mz_error_t *err)
{
	if (mz_serve_is_worker())
		start_here(c, name, stop_timeout, make);
	const char *root = mz_store_default_root(c->root);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return mz_error_sys(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		return mz_error_sys(err, errno, "fork");
	if (pid == 0) {
		close(p[0]);
		_exit(supervise_detached(c, name, stop_timeout, make, p[1]));
	}
	close(p[1]);
	int r = cli_wait_ready(p[0], err);
	close(p[0]);
	if (r == -ECHILD)
		return died_starting(err, root, name);
	return r;
}

static const char start_usage[] =
	"usage: mezzo start NAME\n"
	"\n"
	"Start a domain: its supervisor mounts its tree, makes its namespaces and\n"
	"cgroup, and runs its init with the domain's command.  Output goes to its\n"
	"console: 'mezzo logs NAME'.\n";

int cmd_start(struct cli *c, int argc, char **argv)
{
	const char *name = NULL;
	int r = one_name("start", start_usage, argc, argv, &name);
	if (r == OPTS_HELP_SHOWN)
		return EXIT_OK;
	if (r)
		return r;
	mz_error_t err cleanup_error = NULL;
	if (domain_start_detached(c, name, 10, NULL, &err) < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

/* Wait for a process that is not our child to exit. */
static bool wait_gone(pid_t pid, int timeout_ms)
{
	int fd = syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH;
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	int n = poll(&pf, 1, timeout_ms);
	close(fd);
	return n > 0;
}

/* Processes left in a domain whose supervisor died (0 if none). */
static int64_t orphans(const char *root, const char *name)
{
	struct mz_domain_proc p;
	struct mz_domain_stats st;
	mz_domain_proc_of(root, name, 0, &p);
	if (mz_domain_stats(&p, &st, NULL) < 0 || st.pids < 0)
		return 0;
	return st.pids;
}

static int stop_domain(struct cli *c, const char *name, int sig, int timeout_s,
		       bool quiet_if_stopped, mz_error_t *err)
{
	/* A running domain's supervisor answers on its control socket: no
	 * catalog needed.  Otherwise (none answers) the catalog tells. */
	if (sig == SIGTERM) {
		int a = mz_domain_ask_stop(mz_store_default_root(c->root), name, timeout_s, err);
		if (a != -ENOENT)
			return a;
	}
	cleanup_store mz_store *s = NULL;
	struct mz_domain_rec rec;
	int r = cli_store(c, &s, err);
	if (r == 0)
		r = mz_domain_rec_get(s, name, &rec, err);
	if (r < 0)
		return r;
	mz_domain_rec_free(&rec);
	if (!rec.sup_pid) {
		/* Not running, or its supervisor died: then its processes are
		 * orphans, and stopping it means killing them. */
		bool had = orphans(mz_store_root(s), name) > 0;
		if ((r = mz_domain_reap_orphan(mz_store_root(s), name, err)) < 0)
			return r;
		/* its LAN filter elements, if a dead supervisor left them */
		if ((r = mz_net_detach(s, name, err)) < 0)
			return r;
		if (had || quiet_if_stopped)
			return 0;
		return mz_error(err, EINVAL, "domain '%s' is not running", name);
	}
	if (sig == SIGTERM) {
		/* the supervisor stops the domain: SIGTERM, then SIGKILL */
		kill(rec.sup_pid, SIGTERM);
	} else if (rec.init_pid) {
		struct mz_domain_proc p;
		mz_domain_proc_of(mz_store_root(s), name, rec.init_pid, &p);
		r = mz_domain_kill(&p, sig, err);
		if (p.pidfd >= 0)
			close(p.pidfd);
		if (r < 0)
			return r;
	} else if (sig == SIGKILL) {
		/* still starting the domain (no init to kill yet): kill the
		 * supervisor, and reap what it made below */
		kill(rec.sup_pid, SIGKILL);
	}
	if (sig != SIGTERM && sig != SIGKILL)
		return 0;
	if (!wait_gone(rec.sup_pid, (timeout_s + 10) * 1000))
		return mz_error(err, ETIMEDOUT, "domain '%s' did not stop in time", name);
	/* A supervisor killed meanwhile (kill -9, the OOM killer) leaves its
	 * domain's processes and cgroups behind, and the record no longer
	 * names a supervisor: `rm --force` then removed the record and left
	 * them for good (seen in test_crash).  So reap them, unless another
	 * supervisor has the domain by now; nothing is left after a supervisor
	 * that ended well. */
	mz_domain_rec_free(&rec);
	if ((r = mz_domain_rec_get(s, name, &rec, err)) < 0)
		return r == -ENOENT ? (mz_error_release(err), 0) : r;
	bool taken = rec.sup_pid != 0;
	mz_domain_rec_free(&rec);
	if (taken)
		return 0;
	return mz_domain_reap_orphan(mz_store_root(s), name, err);
}

static const char stop_usage[] =
	"usage: mezzo stop [--timeout SECONDS] NAME\n"
	"\n"
	"Stop a domain gracefully: SIGTERM to its processes, SIGKILL to what is\n"
	"left after the timeout (default 10 s).  Returns when it is down.\n";

int cmd_stop(struct cli *c, int argc, char **argv)
{
	static const char *const opts[] = {"--timeout", NULL};
	const char *name, *tv;
	int r = name_and_opt("stop", stop_usage, argc, argv, opts, &name, &tv);
	if (r == OPTS_HELP_SHOWN)
		return EXIT_OK;
	if (r)
		return r;
	int timeout = 10;
	if (tv) {
		char *end;
		long t = strtol(tv, &end, 10);
		if (!isdigit((unsigned char)*tv) || *end || t > 3600)
			return cli_usage("stop", "--timeout wants seconds, 0 to 3600 (got '%s')", tv);
		timeout = (int)t;
	}
	mz_error_t err cleanup_error = NULL;
	if (stop_domain(c, name, SIGTERM, timeout, false, &err) < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

static const char kill_usage[] =
	"usage: mezzo kill [--signal SIG] NAME\n"
	"\n"
	"Send a signal (default KILL) to the domain's init; KILL ends the whole\n"
	"domain at once.  SIG: KILL, TERM, INT, HUP, USR1, USR2 or QUIT (SIG\n"
	"prefix optional), or a number 1-64; -s SIG and --signal=SIG work too.\n";

int cmd_kill(struct cli *c, int argc, char **argv)
{
	static const char *const opts[] = {"--signal", "-s", NULL};
	const char *name, *v;
	int r = name_and_opt("kill", kill_usage, argc, argv, opts, &name, &v);
	if (r == OPTS_HELP_SHOWN)
		return EXIT_OK;
	if (r)
		return r;
	int sig = SIGKILL;
	if (v) {
		const char *n = strncmp(v, "SIG", 3) == 0 ? v + 3 : v;
		static const struct { const char *n; int s; } sigs[] = {
			{"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT}, {"HUP", SIGHUP},
			{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"QUIT", SIGQUIT}};
		char *end;
		long num = strtol(n, &end, 10);
		sig = isdigit((unsigned char)*n) && *end == '\0' && num > 0 && num < 65 ? (int)num : 0;
		for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
			if (strcmp(n, sigs[i].n) == 0)
				sig = sigs[i].s;
		if (sig == 0)
			return cli_usage("kill", "unknown signal '%s' (KILL, TERM, INT, HUP, USR1, "
						 "USR2, QUIT, or a number 1-64)", v);
	}
	mz_error_t err cleanup_error = NULL;
	if (stop_domain(c, name, sig, 0, false, &err) < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

static const char restart_usage[] = "usage: mezzo restart NAME\n\nStop (if running), then start.\n";

int cmd_restart(struct cli *c, int argc, char **argv)
{
	const char *name = NULL;
	int r = one_name("restart", restart_usage, argc, argv, &name);
	if (r == OPTS_HELP_SHOWN)
		return EXIT_OK;
	if (r)
		return r;
	mz_error_t err cleanup_error = NULL;
	if (stop_domain(c, name, SIGTERM, 10, true, &err) < 0 ||
	    domain_start_detached(c, name, 10, NULL, &err) < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

static const char rm_usage[] =
	"usage: mezzo rm NAME... [--force]\n"
	"\n"
	"Remove domains and their trees (their files).  A running domain is refused\n"
	"unless --force, which kills it first.  Snapshots taken of it remain.\n";

/* One domain's records and files; with force, what runs is killed first
 * (also what a dead supervisor left running). */
static int remove_one(struct cli *c, const char *name, bool force, mz_error_t *err)
{
	int r = force ? stop_domain(c, name, SIGKILL, 0, true, err) : 0;
	cleanup_store mz_store *s = NULL;
	if (r == 0)
		r = cli_store(c, &s, err);
	return r < 0 ? r : domain_remove(s, name, err);
}

int cmd_rm(struct cli *c, int argc, char **argv)
{
	bool force = false;
	int n = 0;
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(rm_usage, stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
			force = true;
		else if (argv[i][0] == '-')
			return cli_usage("rm", "unknown option '%s'", argv[i]);
		else
			n++;
	}
	if (n == 0)
		return cli_usage("rm", "need a domain NAME");
	int rc = EXIT_OK;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		mz_error_t err cleanup_error = NULL;
		if (remove_one(c, argv[i], force, &err) < 0)
			rc = cli_fail(&err);
	}
	return rc;
}

static const char prune_usage[] =
	"usage: mezzo prune [--dry-run]\n"
	"\n"
	"Remove, with their files, the domains 'mezzo run --rm' made and could not\n"
	"remove itself because it was killed (kill -9, a CI job's timeout, a crash),\n"
	"and the empty cgroups of runs killed before their domain was recorded.\n"
	"Domains of runs still going and all other domains are left alone.  Prints\n"
	"the names it removes (with --dry-run, would remove), one a line.\n";

int cmd_prune(struct cli *c, int argc, char **argv)
{
	bool dry = false;
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(prune_usage, stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "-n") == 0)
			dry = true;
		else
			return cli_usage("prune", "unknown argument '%s'", argv[i]);
	}
	mz_error_t err cleanup_error = NULL;
	struct mz_domain_rec *v = NULL;
	size_t n = 0;
	{
		cleanup_store mz_store *s = NULL;
		if (cli_store(c, &s, &err) < 0 || mz_domain_rec_list(s, &v, &n, &err) < 0)
			return cli_fail(&err);
		/* and the cgroup a run killed before its record left: no domain */
		if (!dry)
			mz_debug("prune: %d record-less cgroups removed", mz_domain_sweep_cgroups(s));
	}
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		/* sup_pid is a live supervisor's only: 0 once the run is gone */
		if (!v[i].autoremove || v[i].sup_pid)
			continue;
		/* as rm --force: what the killed run left running goes first */
		mz_error_t e cleanup_error = NULL;
		if (!dry && remove_one(c, v[i].name, true, &e) < 0) {
			/* ENOENT: gone meanwhile (its run, stopping, removed it) */
			if (!(e && e->code == ENOENT))
				rc = cli_fail(&e);
			continue;
		}
		printf("%s\n", v[i].name);
	}
	mz_domain_recs_free(v, n);
	return rc;
}

static const char snapshot_usage[] =
	"usage: mezzo snapshot NAME VERSION\n"
	"\n"
	"Make an immutable version of the domain's files, O(changes), also while it\n"
	"runs.  Start new domains from it with --image VERSION.\n";

int cmd_snapshot(struct cli *c, int argc, char **argv)
{
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(snapshot_usage, stdout);
		return EXIT_OK;
	}
	if (argc != 3)
		return cli_usage("snapshot", "need NAME and VERSION");
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	struct mz_domain_rec rec;
	if (cli_store(c, &s, &err) < 0 || mz_domain_rec_get(s, argv[1], &rec, &err) < 0)
		return cli_fail(&err);
	mz_domain_rec_free(&rec);
	if (mz_fs_snapshot(s, rec.tree, argv[2], NULL, &err) < 0)
		return cli_fail(&err);
	if (!c->quiet)
		printf("%s\n", argv[2]);
	return EXIT_OK;
}
