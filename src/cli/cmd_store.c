/*
 * cmd_store.c — `mezzo store`: check, gc, dedup, df and info of the object
 * store.  The work is in src/store (check.c, gc.c, dedup.c, df.c); this file
 * parses arguments, prints summaries and chooses the exit status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"
#include "cli.h"


static const char store_usage[] =
	"usage: mezzo store COMMAND [OPTIONS]\n"
	"\n"
	"Maintenance of the object store: the object files under ROOT/objects and\n"
	"the catalog (ROOT/catalog.db) that names them.\n"
	"\n"
	"Commands:\n"
	"  check [--repair] [--verify-hashes]\n"
	"               verify the catalog against the object files; exit 1 if\n"
	"               problems remain\n"
	"  gc           remove leftovers of crashed imports and servers, unused\n"
	"               objects and orphan files\n"
	"  dedup        seal private objects of versions and merge identical ones\n"
	"  df           space per image, version and tree (--json for a JSON object)\n"
	"  info         store root, catalog size, counts of objects and layers\n"
	"\n"
	"`mezzo store COMMAND --help` tells more about each.\n"
	"\n"
	"Examples:\n"
	"  mezzo store check --verify-hashes\n"
	"  mezzo store gc && mezzo store dedup\n"
	"  mezzo --json store df\n";

static const char check_usage[] =
	"usage: mezzo store check [--repair] [--verify-hashes]\n"
	"\n"
	"Verify the store and print one line per problem:\n"
	"  problem: KIND: DETAIL     and, once fixed,     repaired: KIND: DETAIL\n"
	"  garbage: KIND: DETAIL     leftovers of a killed process (not a problem)\n"
	"then a summary `check: N problems, M repaired`.  Checked: every object\n"
	"row has its file and every object file a row; sealed files have the\n"
	"catalog's size, mode 0400 and (with --verify-hashes) their SHA-256;\n"
	"refcounts; inode rows and directory entries point at what exists; layer\n"
	"chains; imports and anonymous trees left by dead processes; SQLite's\n"
	"integrity_check; the inode number counter.\n"
	"\n"
	"  --repair          fix what can be fixed without losing data: recount\n"
	"                    refs, reset next_ino and modes, remove leftovers of\n"
	"                    dead processes and orphan files.  Corrupt objects are\n"
	"                    reported, never deleted.\n"
	"  --verify-hashes   read every sealed object and compare its SHA-256\n"
	"\n"
	"A file with no catalog row counts as an orphan once its ctime is older\n"
	"than $MEZZO_ORPHAN_GRACE_SECONDS (default 900): an import links files\n"
	"before its transaction commits.  Younger ones are `note:` lines.\n"
	"\n"
	"Exit status: 0 consistent (after repair), 1 problems remain, 2 usage.\n"
	"\n"
	"Examples:\n"
	"  mezzo store check\n"
	"  mezzo store check --repair --verify-hashes\n"
	"  mezzo --json store check     # {\"problems\":N,\"repaired\":M,...}\n";

static const char gc_usage[] =
	"usage: mezzo store gc\n"
	"\n"
	"Give back space nothing uses: builds and anonymous trees whose process is\n"
	"gone, anonymous versions nothing builds on, objects no inode names (their\n"
	"rows, then their files once the catalog change is on disk), and orphan\n"
	"object files older than $MEZZO_ORPHAN_GRACE_SECONDS (default 900).\n"
	"Unused sealed objects are kept while an import is running.\n"
	"\n"
	"Example:\n"
	"  mezzo image rm old && mezzo store gc\n";

static const char dedup_usage[] =
	"usage: mezzo store dedup\n"
	"\n"
	"Object-level deduplication of what trees wrote: each private object used\n"
	"only by versions (snapshots) and trees is hashed; if a sealed object with\n"
	"the same content exists the inodes are pointed at it and the copy goes,\n"
	"else it is sealed in place (read-only, shareable by later imports).  An\n"
	"object a mounted tree has open for writing is skipped; a tree whose\n"
	"object was sealed copies it on its next write.\n"
	"\n"
	"Example:\n"
	"  mezzo fs snapshot a a-v1 && mezzo store dedup\n";

static const char df_usage[] =
	"usage: mezzo store df\n"
	"\n"
	"Space per image, version and tree: inode rows of the layer itself, their\n"
	"logical bytes, bytes of objects only this layer uses (EXCLUSIVE: what\n"
	"removing it could give back) and of objects it shares with others; then\n"
	"store totals: objects, bytes on disk, and what sharing and dedup save.\n"
	"With the global --json (or --json here), one JSON object.\n"
	"\n"
	"Examples:\n"
	"  mezzo store df\n"
	"  mezzo --json store df | jq '.totals.saved_bytes'\n";

static const char info_usage[] =
	"usage: mezzo store info\n"
	"\n"
	"Store root, catalog size, number of objects and of layers.\n"
	"\n"
	"Example:\n"
	"  mezzo --root /srv/mezzo store info\n";

/* Options every subcommand takes: --help, --json; returns -1 to go on, else
 * the exit status. */
static int common_opt(struct cli *c, const char *cmd, const char *usage, const char *arg)
{
	if (cli_is_help(arg)) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (strcmp(arg, "--json") == 0) {
		c->json = true;
		return -1;
	}
	if (arg[0] == '-')
		return cli_usage(cmd, "unknown option '%s'", arg);
	return cli_usage(cmd, "unexpected argument '%s'", arg);
}

static void json_lines(FILE *f, const char *buf)
{
	fputc('[', f);
	bool first = true;
	for (const char *p = buf; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		cleanup_free char *line = xasprintf("%.*s", (int)n, p);
		if (!first)
			fputc(',', f);
		cli_json_str(f, line);
		first = false;
		p = nl ? nl + 1 : p + n;
	}
	fputc(']', f);
}

static int store_check_cmd(struct cli *c, mz_store *s, bool repair, bool verify)
{
	mz_error_t err cleanup_error = NULL;
	struct mz_check_report rep;
	cleanup_free char *buf = NULL;
	size_t len = 0;
	FILE *out = stdout;
	if (c->json && (out = open_memstream(&buf, &len)) == NULL) {
		mz_error_sys(&err, errno, "cannot buffer the report");
		return cli_fail(&err);
	}
	int r = mz_store_check(s, repair, verify, out, &rep, &err);
	if (c->json)
		fclose(out);
	if (r < 0)
		return cli_fail(&err);
	int remaining = rep.problems - rep.repaired;
	if (c->json) {
		printf("{\"problems\":%d,\"repaired\":%d,\"remaining\":%d,\"garbage\":%d,"
		       "\"lines\":",
		       rep.problems, rep.repaired, remaining, rep.garbage);
		json_lines(stdout, buf);
		printf("}\n");
	} else {
		printf("check: %d problem%s, %d repaired", rep.problems,
		       rep.problems == 1 ? "" : "s", rep.repaired);
		if (rep.garbage)
			printf("; %d leftover%s of crashed processes ('mezzo store gc' reclaims them)",
			       rep.garbage, rep.garbage == 1 ? "" : "s");
		printf("\n");
		if (remaining > 0 && !repair)
			fprintf(stderr, "mezzo: 'mezzo store check --repair' fixes what it can\n");
	}
	return remaining > 0 ? EXIT_FAIL : EXIT_OK;
}

static int store_gc_cmd(struct cli *c, mz_store *s)
{
	mz_error_t err cleanup_error = NULL;
	struct mz_gc_report rep;
	if (mz_store_gc(s, &rep, &err) < 0)
		return cli_fail(&err);
	if (c->json) {
		printf("{\"layers\":%lld,\"objects\":%lld,\"files\":%lld,\"bytes\":%lld}\n",
		       (long long)rep.layers, (long long)rep.objects, (long long)rep.files,
		       (long long)rep.bytes);
	} else {
		char b[32];
		printf("gc: removed %lld layer%s, %lld object%s, %lld orphan file%s; freed %s\n",
		       (long long)rep.layers, rep.layers == 1 ? "" : "s", (long long)rep.objects,
		       rep.objects == 1 ? "" : "s", (long long)rep.files, rep.files == 1 ? "" : "s",
		       cli_bytes(b, rep.bytes));
	}
	return EXIT_OK;
}

static int store_dedup_cmd(struct cli *c, mz_store *s)
{
	mz_error_t err cleanup_error = NULL;
	struct mz_dedup_report rep;
	if (mz_store_dedup(s, &rep, &err) < 0)
		return cli_fail(&err);
	if (c->json) {
		printf("{\"examined\":%lld,\"merged\":%lld,\"bytes_saved\":%lld}\n",
		       (long long)rep.examined, (long long)rep.merged, (long long)rep.bytes_saved);
	} else {
		char b[32];
		printf("dedup: examined %lld private object%s, merged %lld, saved %s\n",
		       (long long)rep.examined, rep.examined == 1 ? "" : "s", (long long)rep.merged,
		       cli_bytes(b, rep.bytes_saved));
	}
	return EXIT_OK;
}

enum sub { SUB_CHECK, SUB_GC, SUB_DEDUP, SUB_DF, SUB_INFO };

int cmd_store(struct cli *c, int argc, char **argv)
{
	static const struct {
		const char *name;
		enum sub sub;
		const char *usage;
	} subs[] = {
		{"check", SUB_CHECK, check_usage}, {"gc", SUB_GC, gc_usage},
		{"dedup", SUB_DEDUP, dedup_usage}, {"df", SUB_DF, df_usage},
		{"info", SUB_INFO, info_usage},
	};
	if (argc < 2) {
		fputs(store_usage, stderr);
		return EXIT_USAGE;
	}
	if (cli_is_help(argv[1])) {
		fputs(store_usage, stdout);
		return EXIT_OK;
	}
	size_t k = 0;
	while (k < ARRAY_SIZE(subs) && strcmp(argv[1], subs[k].name) != 0)
		k++;
	if (k == ARRAY_SIZE(subs))
		return cli_usage("store", "unknown command '%s'", argv[1]);

	cleanup_free char *cmd = xasprintf("store %s", subs[k].name);
	bool repair = false, verify = false;
	for (int i = 2; i < argc; i++) {
		if (subs[k].sub == SUB_CHECK && strcmp(argv[i], "--repair") == 0)
			repair = true;
		else if (subs[k].sub == SUB_CHECK && strcmp(argv[i], "--verify-hashes") == 0)
			verify = true;
		else {
			int x = common_opt(c, cmd, subs[k].usage, argv[i]);
			if (x >= 0)
				return x;
		}
	}

	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	switch (subs[k].sub) {
	case SUB_CHECK:
		return store_check_cmd(c, s, repair, verify);
	case SUB_GC:
		return store_gc_cmd(c, s);
	case SUB_DEDUP:
		return store_dedup_cmd(c, s);
	case SUB_DF:
		if (mz_store_df(s, c->json, stdout, &err) < 0)
			return cli_fail(&err);
		return EXIT_OK;
	case SUB_INFO:
		if (mz_store_info(s, c->json, stdout, &err) < 0)
			return cli_fail(&err);
		return EXIT_OK;
	}
	return EXIT_FAIL;
}
