/*
 * cmd_exec.c — `mezzo exec`: run a command inside a running domain, in all of
 * its namespaces and its cgroup, behind the same second wall as its init.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
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
	"status (128+N if a signal N ended it); else 125 if mezzo failed, 126 if\n"
	"CMD is not executable, 127 if it was not found; 2 for a usage error.\n"
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
			return cli_fail_cmd(&err);
		mz_domain_rec_free(&rec);
		root = xstrdup(mz_store_root(s));
	}
	if (!rec.init_pid) {
		mz_error(&err, EINVAL, "domain '%s' is not running ('mezzo start %s')", name, name);
		return cli_fail_cmd(&err);
	}
	struct mz_domain_proc p;
	if (mz_domain_proc_of(root, name, rec.init_pid, &p) < 0) {
		mz_error_sys(&err, errno, "domain '%s' stopped meanwhile", name);
		return cli_fail_cmd(&err);
	}
	struct mz_exec_spec x = {.argv = argv + i, .cwd = cwd, .uid = uid, .gid = gid,
				 .stdio = {0, 1, 2}, .tty = isatty(0)};
	pid_t pid;
	int r = mz_domain_exec(&p, &x, &pid, &err);
	close(p.pidfd);
	if (r < 0)
		return cli_fail_cmd(&err);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			mz_error_sys(&err, errno, "waitpid");
			return cli_fail_cmd(&err);
		}
	}
	return exit_code_of(status);
}

static const char console_usage[] =
	"usage: mezzo console NAME\n"
	"\n"
	"Attach this terminal to the running domain's console (its init's terminal,\n"
	"kept by its supervisor; what it printed while nobody watched is in\n"
	"'mezzo logs NAME').  Detach with Ctrl-] ; the domain keeps running.\n";

struct raw_tty {
	bool set;
	struct termios saved;
};

static void raw_restore(struct raw_tty *r)
{
	if (r->set)
		tcsetattr(0, TCSADRAIN, &r->saved);
}

int cmd_console(struct cli *c, int argc, char **argv)
{
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(console_usage, stdout);
		return EXIT_OK;
	}
	if (argc != 2)
		return cli_usage("console", "need a domain NAME");
	mz_error_t err cleanup_error = NULL;
	struct mz_domain_rec rec;
	cleanup_free char *sock = NULL;
	{
		cleanup_store mz_store *s = NULL;
		if (cli_store(c, &s, &err) < 0 || mz_domain_rec_get(s, argv[1], &rec, &err) < 0)
			return cli_fail(&err);
		mz_domain_rec_free(&rec);
		cleanup_free char *dir = mz_domain_run_dir(mz_store_root(s), argv[1]);
		sock = xasprintf("%s/console.sock", dir);
	}
	if (!rec.sup_pid) {
		mz_error(&err, EINVAL, "domain '%s' is not running", argv[1]);
		return cli_fail(&err);
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		mz_error_sys(&err, errno, "cannot attach to the console of '%s'", argv[1]);
		return cli_fail(&err);
	}
	struct raw_tty tty __attribute__((cleanup(raw_restore))) = {0};
	if (isatty(0) && tcgetattr(0, &tty.saved) == 0) {
		struct termios raw = tty.saved;
		cfmakeraw(&raw);
		tty.set = tcsetattr(0, TCSADRAIN, &raw) == 0;
		fprintf(stderr, "attached to %s; detach with Ctrl-]\r\n", argv[1]);
	}
	bool in_open = true;
	for (;;) {
		struct pollfd pf[2] = {{.fd = in_open ? 0 : -1, .events = POLLIN},
				       {.fd = fd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		char buf[4096];
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break; /* the domain stopped */
			if (write_all(1, buf, n) < 0)
				break;
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				in_open = false; /* keep showing output until detach */
				continue;
			}
			char *esc = memchr(buf, 0x1d, n); /* Ctrl-] */
			if (write_all(fd, buf, esc ? esc - buf : n) < 0 || esc)
				break;
		}
	}
	if (tty.set)
		fprintf(stderr, "\r\ndetached from %s\r\n", argv[1]);
	return EXIT_OK;
}
