/*
 * cmd_exec.c — `mezzo exec`: run a command inside a running domain, in all of
 * its namespaces and its cgroup, behind the same second wall as its init.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../domain/runtime.h"
#include "../domain/supervisor.h"
#include "../lib/util.h"
#include "domain_opts.h"

static const char exec_usage[] =
	"usage: mezzo exec NAME [--user UID[:GID]] [--cwd DIR] [--] CMD ARGS...\n"
	"\n"
	"Run CMD inside the running domain NAME (its pid, mount, network, ipc, uts,\n"
	"user and cgroup namespaces, its cgroup and limits), as root of the domain\n"
	"unless --user; with this terminal when stdin is one.  Exits with CMD's\n"
	"status (128+N if a signal N ended it).\n"
	"\n"
	"Example:\n"
	"  mezzo exec web -- /bin/sh -c 'ps; ip addr'\n";

int cmd_exec(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(exec_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *name = argv[1], *cwd = NULL;
	uid_t uid = 0;
	gid_t gid = 0;
	int i = 2;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] != '-')
			break;
		if (i + 1 >= argc)
			return cli_usage("exec", "%s needs a value", argv[i]);
		if (strcmp(argv[i], "--user") == 0 || strcmp(argv[i], "-u") == 0) {
			unsigned u, g;
			int n = sscanf(argv[++i], "%u:%u", &u, &g);
			if (n < 1 || u >= MZ_DOMAIN_ID_COUNT || (n == 2 && g >= MZ_DOMAIN_ID_COUNT))
				return cli_usage("exec", "--user takes UID[:GID] (numbers inside the domain)");
			uid = u;
			gid = n == 2 ? g : u;
		} else if (strcmp(argv[i], "--cwd") == 0) {
			cwd = argv[++i];
		} else {
			return cli_usage("exec", "unknown option '%s'", argv[i]);
		}
	}
	if (i >= argc)
		return cli_usage("exec", "need a command to run");
	mz_error_t err cleanup_error = NULL;
	struct mz_domain_rec rec;
	cleanup_free char *root = NULL;
	{
		cleanup_store mz_store *s = NULL;
		if (cli_store(c, &s, &err) < 0 || mz_domain_rec_get(s, name, &rec, &err) < 0)
			return cli_fail(&err);
		mz_domain_rec_free(&rec);
		root = xstrdup(mz_store_root(s));
	}
	if (!rec.init_pid) {
		mz_error(&err, EINVAL, "domain '%s' is not running ('mezzo start %s')", name, name);
		return cli_fail(&err);
	}
	struct mz_domain_proc p;
	if (mz_domain_proc_of(root, name, rec.init_pid, &p) < 0) {
		mz_error_sys(&err, errno, "domain '%s' stopped meanwhile", name);
		return cli_fail(&err);
	}
	struct mz_exec_spec x = {.argv = argv + i, .cwd = cwd, .uid = uid, .gid = gid,
				 .stdio = {0, 1, 2}, .tty = isatty(0)};
	pid_t pid;
	int r = mz_domain_exec(&p, &x, &pid, &err);
	close(p.pidfd);
	if (r < 0)
		return cli_fail(&err);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			mz_error_sys(&err, errno, "waitpid");
			return cli_fail(&err);
		}
	}
	return exit_code_of(status);
}
