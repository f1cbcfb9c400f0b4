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

#include "../lib/util.h"

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
	memset(o, 0, sizeof(*o));
	o->image = "busybox";
	o->stop_timeout_s = 10;
	bool is_run = strcmp(cmd, "run") == 0;
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
		} else if (a[0] != '-') {
			break; /* the command starts */
		} else if (v == NULL) {
			return cli_usage(cmd, "%s needs a value", a);
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
	return 0;
}

int domain_opts_create(mz_store *s, const struct domain_opts *o, mz_error_t *err)
{
	struct mz_layer l;
	int r = mz_layer_resolve(s, o->image, &l, err);
	if (r < 0)
		return r;
	if (l.kind != MZ_LAYER_VERSION)
		return mz_error(err, EINVAL,
				"'%s' is a tree: a domain starts from an image or a version "
				"(snapshot the tree first)",
				o->image);
	struct mz_domain_rec rec = {0};
	snprintf(rec.name, sizeof(rec.name), "%s", o->name);
	snprintf(rec.source, sizeof(rec.source), "%s", o->image);
	size_t len = 0;
	for (int i = 0; i < o->ncmd; i++)
		len += strlen(o->cmd[i]) + 1;
	cleanup_free char *blob = xmalloc(len + 1);
	size_t off = 0;
	for (int i = 0; i < o->ncmd; i++) {
		size_t n = strlen(o->cmd[i]) + 1;
		memcpy(blob + off, o->cmd[i], n);
		off += n;
	}
	rec.cmd = blob;
	rec.cmd_len = len;
	rec.memory = o->memory;
	rec.pids = o->pids;
	rec.cpu_weight = o->cpu_weight;
	rec.cpu_quota_us = o->cpu_quota_us;
	rec.io_weight = o->io_weight;
	return mz_domain_rec_create(s, l.id, &rec, err);
}
