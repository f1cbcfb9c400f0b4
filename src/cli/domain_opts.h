/*
 * domain_opts.h — options shared by `mezzo create` and `mezzo run`.
 */
#ifndef MZ_CLI_DOMAIN_OPTS_H
#define MZ_CLI_DOMAIN_OPTS_H

#include "../net/net.h"
#include "../store/store.h"
#include "cli.h"

struct domain_opts {
	const char *name;
	const char *image;       /* default CLI_DEFAULT_IMAGE */
	int64_t memory, pids, cpu_weight, cpu_quota_us, io_weight;
	bool rm;                 /* run --rm */
	bool detach;             /* run --detach */
	pid_t supervisor;        /* run: this process, the domain's from its creation */
	int stop_timeout_s;
	char **cmd;              /* after "--" */
	int ncmd;
	char *services;          /* the catalog's blob (mz_domain_services_add) */
	size_t services_len;
	int nservices;
	int init_mode;           /* MZ_INIT_MEZZO or MZ_INIT_IMAGE */
	const char *nets[8];     /* --net LAN...: its eth0, eth1, ... */
	int nnets;
	struct mz_port_fwd ports[64];
	int nports;
	int64_t rate_in, rate_out; /* bytes/s, 0: none */
};
void domain_opts_free(struct domain_opts *o);
#define cleanup_domain_opts __attribute__((cleanup(domain_opts_free)))
/* Split a command line into words as a shell would for a simple command:
 * blanks separate, '...' is literal, "..." keeps blanks and takes \" \\
 * \$ \` escapes, a backslash outside quotes escapes the next character.
 * No expansions.  NULL on an unterminated quote or trailing backslash. */
char **split_words(const char *line);

/* Parse argv[1..]: returns 0, OPTS_HELP_SHOWN (exit 0), or a usage exit
 * status.  `run` allows --rm. */
#define OPTS_HELP_SHOWN 1000
int domain_opts_parse(const char *cmd, const char *usage, int argc, char **argv,
		      struct domain_opts *o);
/* Remove a stopped domain: its record, tree, LAN leases and run directory. */
int domain_remove(mz_store *s, const char *name, mz_error_t *err);
/* `run`'s supervision of the domain it makes (in this process, or in one
 * forked for `run -d`): the domain made by the supervisor, beside the
 * making of its namespaces (supervisor.h), then run until it stops, and
 * with --rm removed.  so: as for mz_supervise, without store or make. */
struct mz_sup_opts;
int domain_run(struct cli *c, const struct domain_opts *o, struct mz_sup_opts *so,
	       int *status, mz_error_t *err);
/* Fork the domain's supervisor, detached from this terminal, and wait until
 * the domain's init runs (`start`).  With make (`run --detach`), the
 * supervisor first makes the domain NAME from those options. */
int domain_start_detached(struct cli *c, const char *name, int stop_timeout,
			  const struct domain_opts *make, mz_error_t *err);
/* The domain record the options describe, not written: rec->cmd is
 * malloc'ed (the caller frees it), rec->services is the options'. */
void domain_opts_rec(const struct domain_opts *o, struct mz_domain_rec *rec);
/* Make the domain record (and its tree) from the options. */
int domain_opts_create(mz_store *s, const struct domain_opts *o, mz_error_t *err);
/* "123", "64k", "512M", "2G" -> bytes; -1 on error. */
int64_t parse_size(const char *s);
/* A wait status as a shell exit code: the code, or 128 + signal. */
int exit_code_of(int status);

int cmd_create(struct cli *c, int argc, char **argv);
int cmd_start(struct cli *c, int argc, char **argv);
int cmd_stop(struct cli *c, int argc, char **argv);
int cmd_kill(struct cli *c, int argc, char **argv);
int cmd_restart(struct cli *c, int argc, char **argv);
int cmd_rm(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_ls(struct cli *c, int argc, char **argv);
int cmd_inspect(struct cli *c, int argc, char **argv);
int cmd_logs(struct cli *c, int argc, char **argv);
int cmd_snapshot(struct cli *c, int argc, char **argv);
int cmd_prune(struct cli *c, int argc, char **argv);
int cmd_exec(struct cli *c, int argc, char **argv);
int cmd_console(struct cli *c, int argc, char **argv);

#endif
