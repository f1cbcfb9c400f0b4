/*
 * cmd_serve.c — `mezzo serve`: keep one mezzo process resident, so that
 * each command runs in a fork of it instead of starting the program anew
 * (src/serve/serve.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../serve/protocol.h"
#include "../serve/serve.h"
#include "cli.h"

static const char serve_usage[] =
	"usage: mezzo serve [--socket PATH] [--detach]\n"
	"\n"
	"Keep a mezzo process resident; `mezzo` commands of the same user, in the\n"
	"same namespaces and with the same capabilities, then run in a fork of it\n"
	"instead of starting mezzo anew: each saves the program's start and exit\n"
	"(~0.6 ms and ~0.3 ms here), which is much of a short domain's life.\n"
	"Anyone else (another uid, dropped capabilities, no_new_privs, seccomp,\n"
	"other namespaces), or every command when no server listens, runs mezzo\n"
	"directly, as before: the server changes how fast, never what happens.\n"
	"\n"
	"A command run by the server takes on its caller's stdin, stdout, stderr,\n"
	"working directory, environment, umask, rlimits and signal state; its\n"
	"caller forwards it SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGWINCH\n"
	"and SIGALRM, exits with its status, and takes it along when killed.  It\n"
	"runs in the server's cgroup and session, not its caller's.\n"
	"\n"
	"The server's forks open its store's catalog before a command comes (the\n"
	"store of `mezzo --root DIR serve`, else $MEZZO_ROOT, else /var/lib/mezzo):\n"
	"commands for that store skip its open; others open theirs as usual.\n"
	"\n"
	"Options:\n"
	"  --socket PATH  where to listen (default " MZ_SERVE_SOCKET_DEFAULT ");\n"
	"                 commands look there, or at $" MZ_SERVE_SOCKET_ENV ", which\n"
	"                 \"none\" turns off\n"
	"  --detach       go to the background once listening; print its pid\n"
	"\n"
	"Stop it with SIGTERM (or SIGINT, SIGHUP): it stops listening and exits;\n"
	"commands it is running go on to their end.\n"
	"\n"
	"Examples:\n"
	"  mezzo serve --detach\n"
	"  mezzo run --rm -- /bin/true          # now run by the server\n"
	"  MEZZO_SOCKET=none mezzo ls           # always directly\n";

int cmd_serve(struct cli *c, int argc, char **argv)
{
	struct mz_serve_opts o = {.root = c->root};
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(serve_usage, stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			o.socket = argv[++i];
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			o.socket = argv[i] + 9;
		} else if (strcmp(argv[i], "--detach") == 0 || strcmp(argv[i], "-d") == 0) {
			o.detach = true;
		} else {
			return cli_usage("serve", "unexpected argument '%s'", argv[i]);
		}
	}
	if (o.socket && o.socket[0] != '/')
		return cli_usage("serve", "--socket needs an absolute path");
	fflush(NULL); /* nothing of ours may be flushed twice, by a worker */
	cleanup_error mz_error_t err = NULL;
	struct mz_serve_job job;
	int r = mz_serve(&o, &job, &err);
	if (r < 0)
		return cli_fail(&err);
	if (r == 0)
		return EXIT_OK;
	/* a worker: the client's command, as main() would run it */
	exit(cli_main(job.argc, job.argv));
}
