/*
 * domain_opts.c — parsing what a domain is made of (create, run).
 */
#include "domain_opts.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../domain/supervisor.h"
#include "../lib/util.h"
#include "../net/net.h"

int64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	int64_t mul = 1;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mul = 1LL << 10; end++; break;
	case 'M': mul = 1LL << 20; end++; break;
	case 'G': mul = 1LL << 30; end++; break;
	case 'T': mul = 1LL << 40; end++; break;
	default: return -1;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v > INT64_MAX / mul)
		return -1;
	return v * mul;
}

int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

char **split_words(const char *line)
{
	size_t cap = 8, n = 0;
	char **v = xcalloc(cap, sizeof(char *));
	char *w = xmalloc(strlen(line) + 1);
	const char *p = line;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		size_t k = 0;
		char q = 0;
		for (; *p && (q || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (q == '\'') {
				if (*p == '\'')
					q = 0;
				else
					w[k++] = *p;
			} else if (*p == '\\' && (!q || strchr("\"\\$`", p[1]))) {
				if (p[1] == '\0')
					goto bad;
				w[k++] = *++p;
			} else if (*p == '"' && q) {
				q = 0;
			} else if ((*p == '"' || *p == '\'') && !q) {
				q = *p;
			} else {
				w[k++] = *p;
			}
		}
		if (q)
			goto bad;
		if (n + 2 > cap)
			v = xrealloc(v, (cap *= 2) * sizeof(char *));
		v[n++] = xstrndup(w, k);
		v[n] = NULL;
	}
	free(w);
	return v;
bad:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(w);
	return NULL;
}

static void free_words(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void domain_opts_free(struct domain_opts *o)
{
	free(o->services);
	o->services = NULL;
}

/* --service NAME=CMD */
static int service_opt(const char *cmd, struct domain_opts *o, const char *v)
{
	const char *eq = strchr(v, '=');
	size_t nl = eq ? (size_t)(eq - v) : 0;
	if (eq == NULL || nl == 0 || nl > 63 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != nl)
		return cli_usage(cmd, "--service wants NAME=COMMAND, NAME 1 to 63 of "
				      "[A-Za-z0-9_.-] (got '%s')", v);
	if (o->nservices == 64)
		return cli_usage(cmd, "at most 64 services");
	cleanup_free char *name = xstrndup(v, nl);
	struct mz_service_list have;
	if (mz_domain_services_parse(o->services, o->services_len, &have) == 0) {
		for (size_t i = 0; i < have.n; i++)
			if (strcmp(have.names[i], name) == 0) {
				mz_service_list_free(&have);
				return cli_usage(cmd, "service '%s' is given twice", name);
			}
		mz_service_list_free(&have);
	}
	char **words = split_words(eq + 1);
	if (words == NULL || words[0] == NULL) {
		free_words(words);
		return cli_usage(cmd, "service '%s': %s", name,
				 words ? "no command" : "unterminated quote or trailing backslash");
	}
	mz_domain_services_add(&o->services, &o->services_len, name, words);
	o->nservices++;
	free_words(words);
	return 0;
}

static int num_opt(const char *cmd, const char *opt, const char *val, int64_t min, int64_t max,
		   bool size, int64_t *out)
{
	int64_t v = size ? parse_size(val) : -1;
	if (!size) {
		char *end;
		errno = 0;
		long long x = strtoll(val, &end, 10);
		v = (errno || *end || end == val) ? -1 : x;
	}
	if (v < min || v > max)
		return cli_usage(cmd, "%s: '%s' is not a valid value (%lld..%lld%s)", opt, val,
				 (long long)min, (long long)max, size ? ", suffixes k/M/G" : "");
	*out = v;
	return 0;
}

int domain_opts_parse(const char *cmd, const char *usage, int argc, char **argv,
		      struct domain_opts *o)
{
	/* o is zeroed by the caller (it may own memory before we fail) */
	o->image = CLI_DEFAULT_IMAGE;
	o->stop_timeout_s = 10;
	bool is_run = strcmp(cmd, "run") == 0;
	bool net_none = false;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int r = 0;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (cli_is_help(a)) {
			fputs(usage, stdout);
			return OPTS_HELP_SHOWN;
		} else if (strcmp(a, "--rm") == 0 && is_run) {
			o->rm = true;
			continue;
		} else if ((strcmp(a, "-d") == 0 || strcmp(a, "--detach") == 0) && is_run) {
			o->detach = true;
			continue;
		} else if (a[0] != '-') {
			break; /* the command starts */
		} else if (v == NULL) {
			return cli_usage(cmd, "%s needs a value", a);
		} else if (strcmp(a, "--service") == 0) {
			r = service_opt(cmd, o, v);
		} else if (strcmp(a, "--init") == 0) {
			if (strcmp(v, "mezzo") == 0)
				o->init_mode = MZ_INIT_MEZZO;
			else if (strcmp(v, "image") == 0)
				o->init_mode = MZ_INIT_IMAGE;
			else
				return cli_usage(cmd, "--init is 'mezzo' or 'image', not '%s'", v);
		} else if (strcmp(a, "--net") == 0) {
			if (o->nnets == 8)
				return cli_usage(cmd, "at most 8 --net (eth0 to eth7)");
			if (strcmp(v, "none") != 0) {
				for (int k = 0; k < o->nnets; k++)
					if (strcmp(o->nets[k], v) == 0)
						return cli_usage(cmd, "--net %s is given twice", v);
				o->nets[o->nnets++] = v;
			} else {
				net_none = true;
			}
		} else if (strcmp(a, "-p") == 0 || strcmp(a, "--publish") == 0) {
			if (o->nports == 64)
				return cli_usage(cmd, "at most 64 port forwards");
			mz_error_t pe cleanup_error = NULL;
			if (mz_port_fwd_parse(v, &o->ports[o->nports], &pe) < 0)
				return cli_usage(cmd, "%s %s: %s", a, v, pe ? pe->msg : "bad port");
			o->nports++;
		} else if (strcmp(a, "--rate-in") == 0) {
			r = num_opt(cmd, a, v, 1000, 1LL << 34, true, &o->rate_in);
		} else if (strcmp(a, "--rate-out") == 0) {
			r = num_opt(cmd, a, v, 1000, 1LL << 34, true, &o->rate_out);
		} else if (strcmp(a, "--name") == 0) {
			o->name = v;
		} else if (strcmp(a, "--image") == 0) {
			o->image = v;
		} else if (strcmp(a, "--memory") == 0) {
			r = num_opt(cmd, a, v, 4 << 20, INT64_MAX, true, &o->memory);
		} else if (strcmp(a, "--pids") == 0) {
			r = num_opt(cmd, a, v, 2, 4194304, false, &o->pids);
		} else if (strcmp(a, "--cpu-weight") == 0) {
			r = num_opt(cmd, a, v, 1, 10000, false, &o->cpu_weight);
		} else if (strcmp(a, "--cpus") == 0) {
			/* in hundredths of a CPU: --cpus 150 = 1.5 CPUs */
			r = num_opt(cmd, a, v, 1, 100000, false, &o->cpu_quota_us);
			o->cpu_quota_us *= 1000; /* of a 100 ms period */
		} else if (strcmp(a, "--io-weight") == 0) {
			r = num_opt(cmd, a, v, 1, 10000, false, &o->io_weight);
		} else if (strcmp(a, "--stop-timeout") == 0) {
			int64_t t;
			r = num_opt(cmd, a, v, 0, 3600, false, &t);
			o->stop_timeout_s = t;
		} else {
			return cli_usage(cmd, "unknown option '%s'", a);
		}
		if (r)
			return r;
		i++;
	}
	o->cmd = argv + i;
	o->ncmd = argc - i;
	if (net_none && o->nnets)
		return cli_usage(cmd, "--net none and --net LAN exclude each other");
	if ((o->nports || o->rate_in || o->rate_out) && o->nnets == 0)
		return cli_usage(cmd, "port forwards and rate limits need a LAN: --net LAN "
				      "(--net default is there out of the box)");
	if (o->init_mode == MZ_INIT_IMAGE && o->nservices)
		return cli_usage(cmd, "--service needs mezzo's init: the image's own init "
				      "(--init image) runs its own services");
	return 0;
}

void domain_opts_rec(const struct domain_opts *o, struct mz_domain_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", o->name);
	snprintf(rec->source, sizeof(rec->source), "%s", o->image);
	size_t len = 0;
	for (int i = 0; i < o->ncmd; i++)
		len += strlen(o->cmd[i]) + 1;
	char *blob = xmalloc(len + 1);
	size_t off = 0;
	for (int i = 0; i < o->ncmd; i++) {
		size_t n = strlen(o->cmd[i]) + 1;
		memcpy(blob + off, o->cmd[i], n);
		off += n;
	}
	rec->cmd = blob;
	rec->cmd_len = len;
	rec->memory = o->memory;
	rec->pids = o->pids;
	rec->cpu_weight = o->cpu_weight;
	rec->cpu_quota_us = o->cpu_quota_us;
	rec->io_weight = o->io_weight;
	rec->services = o->services;
	rec->services_len = o->services_len;
	rec->init_mode = o->init_mode;
	rec->autoremove = o->rm;
	rec->sup_pid = o->supervisor;
}

int domain_opts_create(mz_store *s, const struct domain_opts *o, mz_error_t *err)
{
	struct mz_layer l;
	int r = mz_layer_resolve(s, o->image, &l, err);
	if (r == -ENOENT && err && *err && strcmp(o->image, CLI_DEFAULT_IMAGE) == 0) {
		/* a store that has not made the default image yet */
		cleanup_free char *m = xstrdup((*err)->msg);
		mz_error_release(err);
		return mz_error(err, ENOENT, "%s; 'mezzo image busybox' makes the default image", m);
	}
	if (r < 0)
		return r;
	if (l.kind != MZ_LAYER_VERSION)
		return mz_error(err, EINVAL,
				"'%s' is a tree: a domain starts from an image or a version "
				"(snapshot the tree first)",
				o->image);
	struct mz_domain_rec rec;
	domain_opts_rec(o, &rec);
	cleanup_free char *blob = rec.cmd;
	/* the domain and its place on its LANs, at once or not at all */
	r = mz_store_begin(s, err);
	if (r == 0)
		r = mz_domain_rec_create(s, l.id, &rec, err);
	if (r == 0 && o->nnets)
		r = mz_net_plan(s, o->name, o->nets, (size_t)o->nnets, o->ports,
				(size_t)o->nports, err);
	if (r == 0 && (o->rate_in || o->rate_out))
		r = mz_net_set_rates(s, o->name, o->rate_in, o->rate_out, err);
	return r == 0 ? mz_store_commit(s, err) : (mz_store_rollback(s), r);
}

int domain_remove(mz_store *s, const char *name, mz_error_t *err)
{
	int r = mz_domain_forget(s, name, 0, err); /* ENOENT, EBUSY if it runs */
	if (r == 0)
		mz_domain_run_dir_remove(mz_store_root(s), name);
	return r;
}
