/*
 * main.c — the `mezzo` command: global options, then one command group.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../init/protocol.h"
#include "../lib/log.h"
#include "../lib/trace.h"
#include "../lib/util.h"
#include "cli.h"
#include "domain_opts.h"

static const char usage_text[] =
	"usage: mezzo [--root DIR] [--json] COMMAND ...\n"
	"\n"
	"mezzo runs many small isolated domains on one host, on an object store\n"
	"that keeps identical files once on disk and once in memory.\n"
	"\n"
	"Domains:\n"
	"  run      run a command in a new domain (mezzo's main job); -d: in the\n"
	"           background, create + start in one command\n"
	"  create   make a domain; start, stop, restart, kill, rm manage it\n"
	"  exec     run a command inside a running domain; console NAME attaches\n"
	"  ls       list domains; inspect NAME, logs NAME, snapshot NAME VERSION\n"
	"  prune    remove what killed 'run --rm's left behind\n"
	"  net      virtual LANs: create, ls, inspect, rm, prune\n"
	"  serve    keep mezzo resident, so that commands start in a fork of it\n"
	"\n"
	"Storage:\n"
	"  image    import, list, inspect and remove images (named versions)\n"
	"  fs       mount a tree of an image or version, snapshot it, list trees\n"
	"  store    check, gc, dedup and df of the object store\n"
	"\n"
	"Global options:\n"
	"  --root DIR   store root (default $MEZZO_ROOT, else /var/lib/mezzo)\n"
	"  --json       machine-readable output for listing commands\n"
	"  -q, --quiet  no progress output\n"
	"  -h, --help   this text; `mezzo COMMAND --help` for each command\n"
	"  --version    mezzo's version and the catalog schema it uses\n"
	"\n"
	"Environment:\n"
	"  MEZZO_ROOT=DIR         the store root, as --root\n"
	"  MEZZO_DEBUG=1          timestamped debug lines on stderr (and in the logs)\n"
	"  MEZZO_TRACE=FILE       append the times of a start's steps to FILE\n"
	"                         (\"PID MS STEP\" lines; bench/timeline sums them up)\n"
	"  MEZZO_CPU_LATENCY=0|1  whether busy tree servers, and supervisors while\n"
	"                         they start or stop a domain, ask idle CPUs to poll\n"
	"                         instead of halting (default: only on a VM guest whose\n"
	"                         idle vCPUs halt at once; docs/design.md)\n"
	"  MEZZO_FUSE_URING=1     serve trees over FUSE io_uring, not /dev/fuse\n"
	"  MEZZO_NET_FAST=0       LANs through their bridge only, no fast path\n"
	"  MEZZO_INIT=PATH        the mezzo-init to run as a domain's pid 1\n"
	"  MEZZO_SOCKET=PATH      where `mezzo serve` listens (default\n"
	"                         /run/mezzo/serve.sock; \"none\": run directly)\n"
	"\n"
	"Examples:\n"
	"  mezzo run --rm -- /bin/sh -c 'echo hello from $(hostname)'\n"
	"  mezzo image import busybox /path/to/rootfs.tar.gz\n"
	"  mezzo fs mount busybox /mnt/a --tree a\n"
	"  mezzo fs snapshot a a-v1\n"
	"  mezzo fs umount /mnt/a\n"
	"  mezzo store check\n";

int cli_fail(mz_error_t *err)
{
	fprintf(stderr, "mezzo: error: %s\n",
		(err && *err && (*err)->msg) ? (*err)->msg : "unknown failure");
	return EXIT_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "mezzo %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'mezzo %s --help'.\n", cmd);
	return EXIT_USAGE;
}

int cli_store(struct cli *c, mz_store **out, mz_error_t *err)
{
	return mz_store_open(c->root, out, err);
}

int cli_wait_ready(int fd, mz_error_t *err)
{
	char msg[2048];
	ssize_t n = read_all(fd, msg, sizeof(msg) - 1);
	if (n <= 0)
		return -ECHILD;
	msg[n] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	if (strcmp(msg, "ok") == 0)
		return 0;
	/* "error: MSG", or "error NNN: MSG" for a command that could not run */
	int status = 0, at = 0;
	if (strncmp(msg, "error: ", 7) == 0)
		at = 7;
	else if (sscanf(msg, "error %3d: %n", &status, &at) != 1 || at == 0)
		status = at = 0;
	bool empty = err && *err == NULL;
	int r = mz_error(err, EIO, "%s", msg + at);
	if (empty && *err)
		(*err)->status = status; /* cli_fail_cmd takes only what it knows */
	return r;
}

int cli_cmd_status(mz_error_t *err)
{
	int status = err && *err ? (*err)->status : 0;
	/* only these: a status the report made up must not end a failure as 0 */
	return status == MZ_INIT_EXIT_NOEXEC || status == MZ_INIT_EXIT_NOTFOUND ? status
										: EXIT_RUN_FAIL;
}

int cli_fail_cmd(mz_error_t *err)
{
	cli_fail(err);
	return cli_cmd_status(err);
}

bool cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0 || strcmp(arg, "help") == 0;
}

int cli_take_json(struct cli *c, int argc, char **argv)
{
	int k = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c->json = true;
		else
			argv[k++] = argv[i];
	}
	argv[k] = NULL;
	return k;
}

const char *cli_bytes(char buf[32], long long n)
{
	return fmt_bytes(buf, n);
}

void cli_json_str(FILE *f, const char *s)
{
	json_put_str(f, s);
}

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}

int cli_main(int argc, char **argv)
{
	struct cli c = {.argv0 = argv[0]};
	mz_log_init("mezzo");
	mz_trace_init();
	mz_trace("main");
	mz_debug("main: %s", argc > 1 ? argv[1] : "");
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			c.root = argv[++i];
		else if (strncmp(argv[i], "--root=", 7) == 0)
			c.root = argv[i] + 7;
		else if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0)
			c.quiet = true;
		else if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			/* two "key value" lines: the first for people, both for scripts */
			printf("mezzo %s\ncatalog-schema %d\n", MZ_VERSION, mz_store_schema_version());
			return EXIT_OK;
		} else {
			fprintf(stderr, "mezzo: unknown option '%s'\n%s", argv[i], usage_text);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
	} cmds[] = {
		{"store", cmd_store},
		{"image", cmd_image},
		{"fs", cmd_fs},
		{"run", cmd_run},
		{"create", cmd_create},
		{"start", cmd_start},
		{"stop", cmd_stop},
		{"kill", cmd_kill},
		{"restart", cmd_restart},
		{"rm", cmd_rm},
		{"ls", cmd_ls},
		{"inspect", cmd_inspect},
		{"logs", cmd_logs},
		{"exec", cmd_exec},
		{"console", cmd_console},
		{"snapshot", cmd_snapshot},
		{"prune", cmd_prune},
		{"net", cmd_net},
		{"serve", cmd_serve},
	};
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
		if (strcmp(argv[i], cmds[k].name) == 0)
			return cmds[k].fn(&c, argc - i, argv + i);
	if (strcmp(argv[i], "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	fprintf(stderr, "mezzo: unknown command '%s'\n%s", argv[i], usage_text);
	return EXIT_USAGE;
}
