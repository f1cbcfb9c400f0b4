/*
 * domains.c — the catalog records of domains.
 *
 * A domain is a row: its tree (a tree layer, made in O(1) from an image's
 * version), its slot (which 65536 host ids are its ids), its configuration,
 * and the process that supervises it while it runs.  "Running" is never just
 * a flag: a record names its supervisor by pid and start time, and a dead
 * supervisor means the domain is not running, whatever was written last.
 */
#include "storeInt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/util.h"

#define DOM_COLS                                                                      \
	"name, tree, slot, source, cmd, memory, pids, cpu_weight, cpu_quota_us, "       \
	"io_weight, created, started, sup_pid, sup_start, init_pid, exit_status, services, "    \
	"init_mode, autoremove"

/* A blob column, NUL-terminated (a text view for free), and its length. */
static char *blob_dup(sqlite3_stmt *st, int col, size_t *len)
{
	*len = (size_t)sqlite3_column_bytes(st, col);
	char *p = xmalloc(*len + 1);
	if (*len)
		memcpy(p, sqlite3_column_blob(st, col), *len);
	p[*len] = '\0';
	return p;
}

static void rec_from_row(sqlite3_stmt *st, void *row)
{
	struct mz_domain_rec *r = row;
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", (const char *)sqlite3_column_text(st, 0));
	r->tree = sqlite3_column_int64(st, 1);
	r->slot = sqlite3_column_int(st, 2);
	snprintf(r->source, sizeof(r->source), "%s", (const char *)sqlite3_column_text(st, 3));
	r->cmd = blob_dup(st, 4, &r->cmd_len);
	r->memory = sqlite3_column_int64(st, 5);
	r->pids = sqlite3_column_int64(st, 6);
	r->cpu_weight = sqlite3_column_int64(st, 7);
	r->cpu_quota_us = sqlite3_column_int64(st, 8);
	r->io_weight = sqlite3_column_int64(st, 9);
	r->created_ns = sqlite3_column_int64(st, 10);
	r->started_ns = sqlite3_column_int64(st, 11);
	pid_t sup = sqlite3_column_int(st, 12);
	int64_t start = sqlite3_column_int64(st, 13);
	r->sup_pid = store_owner_alive(sup, start) ? sup : 0;
	r->init_pid = r->sup_pid ? sqlite3_column_int(st, 14) : 0;
	r->exit_status = sqlite3_column_int(st, 15);
	r->services = blob_dup(st, 16, &r->services_len);
	r->init_mode = sqlite3_column_int(st, 17);
	r->autoremove = sqlite3_column_int(st, 18) != 0;
}

void mz_domain_rec_free(struct mz_domain_rec *r)
{
	if (r == NULL)
		return;
	free(r->cmd);
	r->cmd = NULL;
	free(r->services);
	r->services = NULL;
}

void mz_domain_recs_free(struct mz_domain_rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mz_domain_rec_free(&r[i]);
	free(r);
}

static int free_slot(mz_store *s, int *slot, mz_error_t *err)
{
	/* The lowest slot not in use: 1 if free, else the first gap. */
	sqlite3_stmt *st = store_stmt(
		s, "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM domain WHERE slot = 1) THEN 1 "
		   "ELSE (SELECT MIN(d.slot) + 1 FROM domain d WHERE NOT EXISTS "
		   "(SELECT 1 FROM domain e WHERE e.slot = d.slot + 1)) END");
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_dberr(s, err, "find a free id range");
	*slot = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (*slot >= MZ_DOMAIN_SLOTS)
		return mz_error(err, ENOSPC, "no free id range for another domain (%d in use)",
				MZ_DOMAIN_SLOTS);
	return 0;
}

int mz_domain_rec_create(mz_store *s, mz_lid version, struct mz_domain_rec *r,
			 mz_error_t *err)
{
	int rc = mz_name_check(r->name, "domain", err);
	if (rc < 0)
		return rc;
	if (strlen(r->name) > 63) /* it is the domain's hostname */
		return mz_error(err, EINVAL, "invalid domain name '%s': at most 63 characters",
				r->name);
	/* (declared before any goto: cleanup runs on every path out) */
	cleanup_free char *tree_name = xasprintf("domain.%s", r->name);
	if ((rc = mz_store_begin(s, err)) < 0)
		return rc;
	struct mz_domain_rec old;
	rc = mz_domain_rec_get(s, r->name, &old, NULL);
	if (rc == 0) {
		mz_domain_rec_free(&old);
		rc = mz_error(err, EEXIST, "a domain named '%s' already exists", r->name);
		goto fail;
	}
	if ((rc = mz_tree_create(s, version, tree_name, 0, &r->tree, err)) < 0)
		goto fail;
	/* supervised from birth: its tree too, so that the supervisor's claim
	 * finds both its own and writes nothing */
	if (r->sup_pid && (rc = mz_layer_claim(s, r->tree, r->sup_pid, err)) < 0)
		goto fail;
	if ((rc = free_slot(s, &r->slot, err)) < 0)
		goto fail;
	r->created_ns = now_ns();
	sqlite3_stmt *st = store_stmt(
		s, "INSERT INTO domain(name, tree, slot, source, cmd, memory, pids, cpu_weight, "
		   "cpu_quota_us, io_weight, created, services, init_mode, autoremove, sup_pid, "
		   "sup_start) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->tree);
	sqlite3_bind_int(st, 3, r->slot);
	sqlite3_bind_text(st, 4, r->source, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, r->cmd ? r->cmd : "", r->cmd_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->memory);
	sqlite3_bind_int64(st, 7, r->pids);
	sqlite3_bind_int64(st, 8, r->cpu_weight);
	sqlite3_bind_int64(st, 9, r->cpu_quota_us);
	sqlite3_bind_int64(st, 10, r->io_weight);
	sqlite3_bind_int64(st, 11, r->created_ns);
	sqlite3_bind_blob(st, 12, r->services ? r->services : "", r->services_len, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, r->init_mode);
	sqlite3_bind_int(st, 14, r->autoremove);
	sqlite3_bind_int(st, 15, r->sup_pid);
	sqlite3_bind_int64(st, 16, r->sup_pid ? store_pid_starttime(r->sup_pid) : 0);
	if ((rc = store_step_done(s, st, err, "insert domain")) < 0)
		goto fail;
	return mz_store_commit(s, err);
fail:
	mz_store_rollback(s);
	return rc;
}

int mz_domain_rec_get(mz_store *s, const char *name, struct mz_domain_rec *out,
		      mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT " DOM_COLS " FROM domain WHERE name = ?");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = store_row(s, st, rec_from_row, out, "read domain", err);
	if (r == 0)
		return mz_error(err, ENOENT, "no domain named '%s' (see 'mezzo ls')", name);
	return r < 0 ? r : 0;
}

static void recs_free(void *v, size_t n)
{
	mz_domain_recs_free(v, n);
}

int mz_domain_rec_list(mz_store *s, struct mz_domain_rec **out, size_t *n, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT " DOM_COLS " FROM domain ORDER BY name");
	return store_rows(s, st, sizeof(**out), rec_from_row, recs_free, (void **)out, n,
			  "list domains", err);
}

/* The rows of a claim, inside the caller's transaction. */
static int claim_rows(mz_store *s, const char *name, pid_t sup, struct mz_domain_rec *out,
		      mz_error_t *err)
{
	int rc = mz_domain_rec_get(s, name, out, err);
	if (rc < 0)
		return rc;
	if (out->sup_pid && out->sup_pid != sup)
		return mz_error(err, EBUSY, "domain '%s' is already running (supervisor %d)", name,
				(int)out->sup_pid);
	/* Its tree too, in the same commit: the supervisor serves it (one
	 * server per tree), and its server then has nothing to claim. */
	if ((rc = mz_layer_claim(s, out->tree, sup, err)) < 0)
		return rc;
	/* made claimed by this very process (`run`), and not started yet: the
	 * update would change nothing (and write no page), but its statement,
	 * prepared cold in a new process, costs ~35 us of the start (the
	 * record's sup_pid reads as ours only if its start time is ours too) */
	if (out->sup_pid == sup && out->init_pid == 0)
		return 0;
	sqlite3_stmt *st = store_stmt(
		s, "UPDATE domain SET sup_pid = ?, sup_start = ?, init_pid = 0 WHERE name = ?");
	sqlite3_bind_int(st, 1, sup);
	sqlite3_bind_int64(st, 2, store_pid_starttime(sup));
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return store_step_done(s, st, err, "claim domain");
}

int mz_domain_rec_claim(mz_store *s, const char *name, pid_t sup, struct mz_domain_rec *out,
			mz_error_t *err)
{
	memset(out, 0, sizeof(*out));
	int rc = mz_store_begin(s, err);
	if (rc < 0)
		return rc;
	rc = claim_rows(s, name, sup, out, err);
	rc = rc == 0 ? mz_store_commit(s, err) : (mz_store_rollback(s), rc);
	if (rc < 0) {
		mz_domain_rec_free(out);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

int mz_domain_rec_set_running(mz_store *s, const char *name, pid_t init_pid, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		s, "UPDATE domain SET init_pid = ?, started = ?, exit_status = -1 WHERE name = ?");
	sqlite3_bind_int(st, 1, init_pid);
	sqlite3_bind_int64(st, 2, now_ns());
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return store_step_done(s, st, err, "mark domain running");
}

int mz_domain_rec_set_stopped(mz_store *s, const char *name, int status, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		s, "UPDATE domain SET sup_pid = 0, sup_start = 0, init_pid = 0, exit_status = ? "
		   "WHERE name = ?");
	sqlite3_bind_int(st, 1, status);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	return store_step_done(s, st, err, "mark domain stopped");
}

int mz_domain_rec_remove(mz_store *s, const char *name, pid_t self, mz_error_t *err)
{
	int rc = mz_store_begin(s, err);
	if (rc < 0)
		return rc;
	struct mz_domain_rec r;
	if ((rc = mz_domain_rec_get(s, name, &r, err)) < 0)
		goto fail;
	mz_domain_rec_free(&r);
	if (r.sup_pid && r.sup_pid != self) {
		rc = mz_error(err, EBUSY, "domain '%s' is running: stop it first, or rm --force",
			      name);
		goto fail;
	}
	sqlite3_stmt *st = store_stmt(s, "DELETE FROM domain WHERE name = ?");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = store_step_done(s, st, err, "delete domain")) < 0)
		goto fail;
	if ((rc = mz_layer_remove(s, r.tree, true, err)) < 0)
		goto fail;
	return mz_store_commit(s, err);
fail:
	mz_store_rollback(s);
	return rc;
}

/* ---- the services blob: NAME \0 N \0 ARG1 \0 ... ARGN \0, repeated */

void mz_domain_services_add(char **blob, size_t *len, const char *name, char *const *argv)
{
	size_t n = 0, add = strlen(name) + 1 + 24;
	while (argv[n])
		add += strlen(argv[n++]) + 1;
	*blob = xrealloc(*blob, *len + add);
	char *p = *blob + *len;
	p += sprintf(p, "%s", name) + 1;
	p += sprintf(p, "%zu", n) + 1;
	for (size_t i = 0; i < n; i++)
		p = stpcpy(p, argv[i]) + 1;
	*len = (size_t)(p - *blob);
}

/* The next NUL-terminated string of [*p, end), or NULL. */
static const char *next_str(const char **p, const char *end)
{
	const char *s = *p, *z = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
	if (z == NULL)
		return NULL;
	*p = z + 1;
	return s;
}

int mz_domain_services_parse(const char *blob, size_t len, struct mz_service_list *out)
{
	memset(out, 0, sizeof(*out));
	const char *p = blob, *end = blob + len;
	while (p < end) {
		const char *name = next_str(&p, end), *count = next_str(&p, end);
		char *e;
		unsigned long n = count ? strtoul(count, &e, 10) : 0;
		if (name == NULL || !*name || count == NULL || *e || n == 0 || n > len) {
			mz_service_list_free(out);
			return -EINVAL;
		}
		char **argv = xcalloc(n + 1, sizeof(char *));
		for (unsigned long i = 0; i < n; i++) {
			argv[i] = (char *)next_str(&p, end);
			if (argv[i] == NULL) {
				free(argv);
				mz_service_list_free(out);
				return -EINVAL;
			}
		}
		out->names = xrealloc(out->names, (out->n + 1) * sizeof(char *));
		out->argvs = xrealloc(out->argvs, (out->n + 1) * sizeof(char **));
		out->names[out->n] = name;
		out->argvs[out->n++] = argv;
	}
	return 0;
}

void mz_service_list_free(struct mz_service_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->argvs[i]);
	free(l->argvs);
	free(l->names);
	memset(l, 0, sizeof(*l));
}
