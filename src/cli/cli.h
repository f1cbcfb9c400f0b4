/*
 * cli.h — what every `mezzo` subcommand shares.
 *
 * One file per command group (cmd_store.c, cmd_image.c, cmd_fs.c, ...), each
 * exporting `int cmd_GROUP(struct cli *c, int argc, char **argv)` that returns
 * the process exit status.  Options common to all commands are parsed by
 * main.c before the group sees its arguments.
 */
#ifndef MZ_CLI_H
#define MZ_CLI_H

#include <stdbool.h>

#include "../lib/error.h"
#include "../store/store.h"

/* mezzo's version: what `mezzo --version` says. */
#define MZ_VERSION "0.1.0"

struct cli {
	const char *root; /* --root, else $MEZZO_ROOT, else /var/lib/mezzo */
	bool json;        /* --json: machine-readable output where offered */
	bool quiet;
	const char *argv0; /* path of the mezzo binary (for re-exec) */
};

/* The image a domain runs when none is named, and the name `mezzo image
 * busybox` gives the one it makes. */
#define CLI_DEFAULT_IMAGE "busybox"

/* Exit statuses: 0 ok, 1 operation failed, 2 usage error.  `run` and `exec`
 * exit with their command's status instead, and so say a failure of their
 * own as container runtimes do: 125 mezzo failed, 126 the command is not
 * executable, 127 it was not found. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_RUN_FAIL = 125 };

/* Print "mezzo: error: <msg>" for err and return EXIT_FAIL. */
int cli_fail(mz_error_t *err);
/* The same for `run` and `exec`: returns 126 or 127 when the command could
 * not run (MZ_INIT_EXIT_*, init/protocol.h), else 125. */
int cli_fail_cmd(mz_error_t *err);
/* The status cli_fail_cmd returns for err, without printing. */
int cli_cmd_status(mz_error_t *err);
/* Read to end of file the ready pipe of a process this command forked (a
 * supervisor, a tree server): 0 once it said "ok"; -EIO with its message
 * when it said "error: MSG"; -ECHILD (no message) when it died mute. */
int cli_wait_ready(int fd, mz_error_t *err);
/* Print a usage error with a hint to --help and return EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Open the store named by the options. */
int cli_store(struct cli *c, mz_store **out, mz_error_t *err);
/* True if argv[i] is -h or --help. */
bool cli_is_help(const char *arg);
/* Takes --json out of argv (a listing command's, which takes it after the
 * command as well as before); returns the new argc. */
int cli_take_json(struct cli *c, int argc, char **argv);
/* Print bytes human-readably into buf. */
const char *cli_bytes(char buf[32], long long n);
/* Write s as a JSON string literal (with quotes) to f. */
void cli_json_str(FILE *f, const char *s);

int cmd_store(struct cli *c, int argc, char **argv);
int cmd_image(struct cli *c, int argc, char **argv);
int cmd_fs(struct cli *c, int argc, char **argv);
int cmd_net(struct cli *c, int argc, char **argv);
int cmd_serve(struct cli *c, int argc, char **argv);

/* The whole command line, as main() takes it; `mezzo serve`'s workers run
 * their clients' commands through it. */
int cli_main(int argc, char **argv);

#endif
