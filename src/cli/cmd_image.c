/*
 * cmd_image.c — `mezzo image`: import, list, inspect and remove images, and
 * make the default busybox image or a debootstrap'ed Debian one.
 *
 * Each subcommand parses its own options (getopt_long, so options may come
 * after the arguments), prints a human-readable result or, with --json,
 * one JSON document on stdout; errors go to stderr through cli_fail (exit 1)
 * or cli_usage (exit 2).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../image/image.h"
#include "../lib/util.h"
#include "cli.h"

static const char image_help[] =
	"usage: mezzo image COMMAND ...\n"
	"\n"
	"An image is a named, immutable file tree in the store; trees (see 'mezzo fs')\n"
	"are made from it in O(1).  Identical files are stored once across all images.\n"
	"\n"
	"Commands:\n"
	"  import NAME SOURCE      import a directory or a tar archive (any compression)\n"
	"  ls                      list images\n"
	"  inspect NAME            details of one image\n"
	"  rm NAME...              remove images\n"
	"  busybox [NAME]          make the default image from the host's static busybox\n"
	"  debootstrap NAME [SUITE]  make a Debian image with debootstrap\n"
	"\n"
	"Examples:\n"
	"  mezzo image busybox\n"
	"  mezzo image import alpine alpine-minirootfs.tar.gz\n"
	"  mezzo image import myroot /srv/rootfs\n"
	"  mezzo --json image ls\n"
	"  mezzo image rm alpine\n"
	"\n"
	"Run 'mezzo image COMMAND --help' for the options of each command.\n";

static const char import_help[] =
	"usage: mezzo image import [--json] [-q] NAME SOURCE\n"
	"\n"
	"Import SOURCE as the image NAME.  SOURCE is a directory, a tar archive\n"
	"(plain, gzip, bzip2, xz, lzma, lz4 or zstd, recognised by content, not by\n"
	"name), or '-' for a tar archive on standard input.  Owners, modes, times,\n"
	"hard links, sparse files, devices, fifos, sockets, xattrs (file\n"
	"capabilities too) and POSIX ACLs are kept; symlinks are never followed.\n"
	"The image appears only when the whole import succeeded.\n"
	"\n"
	"Archives are checked: absolute paths, '..', paths through symlinks, hard\n"
	"links to unknown entries, overlong names and sizes over 1 TiB are refused.\n"
	"\n"
	"Options:\n"
	"  --json       print the result as JSON\n"
	"  -q, --quiet  print only the name, no progress\n"
	"\n"
	"Examples:\n"
	"  mezzo image import debian ./debian-rootfs.tar.xz\n"
	"  mezzo image import web /srv/web-root\n"
	"  docker export c1 | mezzo image import c1 -\n";

static const char ls_help[] =
	"usage: mezzo image ls [--json]\n"
	"\n"
	"List images: name, creation time, number of entries (files, directories,\n"
	"links, ...) and the logical size of their files.\n"
	"\n"
	"Examples:\n"
	"  mezzo image ls\n"
	"  mezzo --json image ls | jq '.[].name'\n";

static const char inspect_help[] =
	"usage: mezzo image inspect [--json] NAME\n"
	"\n"
	"Show an image: id, creation time, entries by type, logical size, the\n"
	"objects its files are kept in, and the versions and trees built on it.\n"
	"\n"
	"Examples:\n"
	"  mezzo image inspect busybox\n"
	"  mezzo image inspect --json busybox\n";

static const char rm_help[] =
	"usage: mezzo image rm NAME...\n"
	"\n"
	"Remove images.  Trees and versions built on an image keep its data; the\n"
	"space of files nothing uses any more is freed by 'mezzo store gc'.\n"
	"\n"
	"Example:\n"
	"  mezzo image rm old-debian\n";

static const char busybox_help[] =
	"usage: mezzo image busybox [--exist-ok] [--busybox PATH] [NAME]\n"
	"\n"
	"Make the default image NAME (default 'busybox'): a minimal root file system\n"
	"with the host's static busybox as /bin/busybox, a symlink for each applet\n"
	"(/bin/sh, /usr/bin/env, ...), /etc/passwd, group, hostname and hosts, and\n"
	"empty /dev /proc /sys /tmp /root /run /var/tmp.  Needs the Debian package\n"
	"busybox-static.\n"
	"\n"
	"Options:\n"
	"  --exist-ok       succeed without doing anything if the image exists\n"
	"  --busybox PATH   the busybox binary to use (default /bin/busybox)\n"
	"  --json, -q       as for 'mezzo image import'\n"
	"\n"
	"Examples:\n"
	"  mezzo image busybox\n"
	"  mezzo image busybox --exist-ok\n"
	"  mezzo image busybox bb2 --busybox /opt/busybox\n";

static const char debootstrap_help[] =
	"usage: mezzo image debootstrap [--mirror URL] [--variant VARIANT] NAME [SUITE]\n"
	"\n"
	"Run debootstrap (default suite bookworm, variant minbase, Debian's default\n"
	"mirror) into a temporary directory under the store root, import the result\n"
	"as NAME and remove the directory.  Needs root, network access and the\n"
	"Debian package debootstrap.\n"
	"\n"
	"Options:\n"
	"  --mirror URL       the Debian mirror (http://, https://, ftp:// or file:/)\n"
	"  --variant VARIANT  debootstrap variant (minbase, buildd, fakechroot, ...)\n"
	"  --json, -q         as for 'mezzo image import'\n"
	"\n"
	"Examples:\n"
	"  mezzo image debootstrap bookworm\n"
	"  mezzo image debootstrap trixie trixie --mirror http://deb.debian.org/debian\n";

/* ---- option parsing ---------------------------------------------------- */

enum { OPT_JSON = 256, OPT_EXIST_OK, OPT_BUSYBOX, OPT_MIRROR, OPT_VARIANT };

struct opts {
	bool exist_ok;
	const char *busybox, *mirror, *variant;
};

/* Parse options; returns the index of the first argument, or -1 after
 * printing help (*rc = 0) or a usage error (*rc = 2). */
static int parse(struct cli *c, const char *cmd, const char *help, int argc, char **argv,
		 struct opts *o, int *rc)
{
	static const struct option longs[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
		{"quiet", no_argument, NULL, 'q'},
		{"exist-ok", no_argument, NULL, OPT_EXIST_OK},
		{"busybox", required_argument, NULL, OPT_BUSYBOX},
		{"mirror", required_argument, NULL, OPT_MIRROR},
		{"variant", required_argument, NULL, OPT_VARIANT},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	opterr = 0;
	optind = 0; /* GNU: full re-initialisation */
	int ch;
	while ((ch = getopt_long(argc, argv, ":hq", longs, NULL)) != -1) {
		switch (ch) {
		case 'h':
			fputs(help, stdout);
			*rc = EXIT_OK;
			return -1;
		case 'q': c->quiet = true; break;
		case OPT_JSON: c->json = true; break;
		case OPT_EXIST_OK: o->exist_ok = true; break;
		case OPT_BUSYBOX: o->busybox = optarg; break;
		case OPT_MIRROR: o->mirror = optarg; break;
		case OPT_VARIANT: o->variant = optarg; break;
		case ':':
			*rc = cli_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
			return -1;
		default:
			*rc = cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
			return -1;
		}
	}
	bool allowed = (o->exist_ok || o->busybox) ? strcmp(cmd, "image busybox") == 0
			: (o->mirror || o->variant) ? strcmp(cmd, "image debootstrap") == 0
						   : true;
	if (!allowed) {
		*rc = cli_usage(cmd, "option not accepted by this command");
		return -1;
	}
	return optind;
}

static bool nargs_ok(const char *cmd, int have, int min, int max, int *rc)
{
	if (have >= min && have <= max)
		return true;
	*rc = cli_usage(cmd, have < min ? "missing argument" : "too many arguments");
	return false;
}

/* ---- output helpers ------------------------------------------------------ */

static const char *when(char buf[32], int64_t ns, bool utc_iso)
{
	time_t t = ns / 1000000000;
	struct tm tm;
	if (utc_iso)
		strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	else
		strftime(buf, 32, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	return buf;
}

static void print_summary(struct cli *c, const char *name, mz_lid id,
			  const struct mz_import_stats *st)
{
	char b1[32], b2[32], b3[32];
	if (c->json) {
		printf("{\"name\": ");
		cli_json_str(stdout, name);
		printf(", \"id\": %lld, \"entries\": %lld, \"files\": %lld, \"bytes\": %lld, "
		       "\"stored_bytes\": %lld, \"new_objects\": %lld, \"dedup_bytes\": %lld}\n",
		       (long long)id, (long long)st->entries, (long long)st->files,
		       (long long)st->bytes, (long long)st->stored, (long long)st->objects_new,
		       (long long)st->dedup_bytes);
		return;
	}
	printf("%s\n", name);
	if (c->quiet)
		return;
	printf("  %lld entries, %lld files, %s; %s new on disk, %s saved by dedup\n",
	       (long long)st->entries, (long long)st->files, cli_bytes(b1, st->bytes),
	       cli_bytes(b2, st->stored), cli_bytes(b3, st->dedup_bytes));
}

/* ---- import, busybox, debootstrap ----------------------------------------- */

static int image_import(struct cli *c, int argc, char **argv)
{
	struct opts o;
	int rc, i = parse(c, "image import", import_help, argc, argv, &o, &rc);
	if (i < 0 || !nargs_ok("image import", argc - i, 2, 2, &rc))
		return rc;
	cleanup_error mz_error_t err = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	struct mz_import_stats st = {0};
	struct mz_import_opts io = {.progress = !c->quiet, .stats = &st};
	mz_lid id;
	if (mz_image_import(s, argv[i], argv[i + 1], &io, &id, &err) < 0)
		return cli_fail(&err);
	print_summary(c, argv[i], id, &st);
	return EXIT_OK;
}

static int image_busybox(struct cli *c, int argc, char **argv)
{
	struct opts o;
	int rc, i = parse(c, "image busybox", busybox_help, argc, argv, &o, &rc);
	if (i < 0 || !nargs_ok("image busybox", argc - i, 0, 1, &rc))
		return rc;
	const char *name = i < argc ? argv[i] : CLI_DEFAULT_IMAGE;
	cleanup_error mz_error_t err = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	cleanup_free char *spec = xasprintf("image:%s", name);
	struct mz_layer l;
	if (mz_layer_resolve(s, spec, &l, &err) == 0) {
		if (!o.exist_ok) {
			fprintf(stderr, "mezzo: error: image '%s' already exists (--exist-ok "
					"accepts it; 'mezzo image rm %s' removes it)\n",
				name, name);
			return EXIT_FAIL;
		}
		if (!c->quiet)
			fprintf(stderr, "mezzo: image '%s' already exists\n", name);
		if (c->json) {
			printf("{\"name\": ");
			cli_json_str(stdout, name);
			printf(", \"id\": %lld, \"existed\": true}\n", (long long)l.id);
		}
		return EXIT_OK;
	}
	mz_error_release(&err);
	struct mz_import_stats st = {0};
	struct mz_import_opts io = {.progress = !c->quiet, .stats = &st};
	mz_lid id;
	if (mz_image_busybox(s, name, o.busybox, &io, &id, &err) < 0)
		return cli_fail(&err);
	print_summary(c, name, id, &st);
	return EXIT_OK;
}

static int image_debootstrap(struct cli *c, int argc, char **argv)
{
	struct opts o;
	int rc, i = parse(c, "image debootstrap", debootstrap_help, argc, argv, &o, &rc);
	if (i < 0 || !nargs_ok("image debootstrap", argc - i, 1, 2, &rc))
		return rc;
	cleanup_error mz_error_t err = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	struct mz_debootstrap_opts d = {
		.suite = i + 1 < argc ? argv[i + 1] : NULL,
		.mirror = o.mirror,
		.variant = o.variant,
		.quiet = c->quiet,
	};
	struct mz_import_stats st = {0};
	struct mz_import_opts io = {.progress = !c->quiet, .stats = &st};
	mz_lid id;
	if (mz_image_debootstrap(s, argv[i], &d, &io, &id, &err) < 0)
		return cli_fail(&err);
	print_summary(c, argv[i], id, &st);
	return EXIT_OK;
}

/* ---- ls, inspect, rm ------------------------------------------------------- */

static void json_info(const struct mz_image_info *in)
{
	char t[32];
	printf("{\"name\": ");
	cli_json_str(stdout, in->layer.name);
	printf(", \"id\": %lld, \"created\": \"%s\", \"created_ns\": %lld, \"entries\": %lld, "
	       "\"files\": %lld, \"dirs\": %lld, \"symlinks\": %lld, \"specials\": %lld, "
	       "\"bytes\": %lld, \"objects\": %lld, \"object_bytes\": %lld",
	       (long long)in->layer.id, when(t, in->layer.created_ns, true),
	       (long long)in->layer.created_ns, (long long)in->entries, (long long)in->files,
	       (long long)in->dirs, (long long)in->symlinks, (long long)in->specials,
	       (long long)in->bytes, (long long)in->objects, (long long)in->object_bytes);
}

static int image_ls(struct cli *c, int argc, char **argv)
{
	struct opts o;
	int rc, i = parse(c, "image ls", ls_help, argc, argv, &o, &rc);
	if (i < 0 || !nargs_ok("image ls", argc - i, 0, 0, &rc))
		return rc;
	cleanup_error mz_error_t err = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	cleanup_free struct mz_layer *v = NULL;
	size_t n;
	if (mz_image_list(s, &v, &n, &err) < 0)
		return cli_fail(&err);
	cleanup_free struct mz_image_info *in = xcalloc(n ? n : 1, sizeof(*in));
	int w = 4;
	for (size_t k = 0; k < n; k++) {
		if (mz_image_info_layer(s, &v[k], &in[k], &err) < 0)
			return cli_fail(&err);
		if ((int)strlen(v[k].name) > w)
			w = strlen(v[k].name);
	}
	if (c->json) {
		printf("[");
		for (size_t k = 0; k < n; k++) {
			printf(k ? ",\n " : "\n ");
			json_info(&in[k]);
			printf("}");
		}
		printf(n ? "\n]\n" : "]\n");
		return EXIT_OK;
	}
	printf("%-*s  %-19s  %8s  %10s\n", w, "NAME", "CREATED", "FILES", "SIZE");
	for (size_t k = 0; k < n; k++) {
		char t[32], b[32];
		printf("%-*s  %-19s  %8lld  %10s\n", w, v[k].name,
		       when(t, v[k].created_ns, false), (long long)in[k].entries,
		       cli_bytes(b, in[k].bytes));
	}
	return EXIT_OK;
}

struct users {
	struct mz_layer *all;
	size_t n, cap;
};

static int collect(const struct mz_layer *l, void *arg)
{
	struct users *u = arg;
	if (u->n == u->cap) {
		u->cap = u->cap ? 2 * u->cap : 32;
		u->all = xrealloc(u->all, u->cap * sizeof(*u->all));
	}
	u->all[u->n++] = *l;
	return 0;
}

/* Is id an ancestor of l (following parent links through u)? */
static bool built_on(const struct users *u, const struct mz_layer *l, mz_lid id)
{
	mz_lid p = l->parent;
	for (size_t hops = 0; p && hops <= u->n; hops++) {
		if (p == id)
			return true;
		mz_lid next = 0;
		for (size_t k = 0; k < u->n; k++)
			if (u->all[k].id == p)
				next = u->all[k].parent;
		p = next;
	}
	return false;
}

/* The layers built on id, listed to stdout (JSON array or text lines). */
static int print_users(mz_store *s, mz_lid id, bool json, mz_error_t *err)
{
	struct users u = {0};
	int r = mz_layer_foreach(s, collect, &u, err);
	size_t shown = 0;
	for (size_t k = 0; r == 0 && k < u.n; k++) {
		const struct mz_layer *l = &u.all[k];
		if (l->building || !built_on(&u, l, id))
			continue;
		const char *kind = l->kind == MZ_LAYER_TREE ? "tree" : "version";
		if (json) {
			printf("%s{\"kind\": \"%s\", \"id\": %lld, \"name\": ", shown ? ", " : "",
			       kind, (long long)l->id);
			cli_json_str(stdout, l->name);
			printf("}");
		} else {
			printf("%s%s %s", shown ? ", " : "", kind,
			       l->name[0] ? l->name : "(anonymous)");
		}
		shown++;
	}
	if (!json && shown == 0)
		printf("none");
	free(u.all);
	return r;
}

static int image_inspect(struct cli *c, int argc, char **argv)
{
	struct opts o;
	int rc, i = parse(c, "image inspect", inspect_help, argc, argv, &o, &rc);
	if (i < 0 || !nargs_ok("image inspect", argc - i, 1, 1, &rc))
		return rc;
	cleanup_error mz_error_t err = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	struct mz_image_info in;
	if (mz_image_info(s, argv[i], &in, &err) < 0)
		return cli_fail(&err);
	char t[32], b1[32], b2[32];
	if (c->json) {
		json_info(&in);
		printf(", \"built_on_it\": [");
		if (print_users(s, in.layer.id, true, &err) < 0)
			return cli_fail(&err);
		printf("]}\n");
		return EXIT_OK;
	}
	printf("name:     %s\n", in.layer.name);
	printf("id:       %lld\n", (long long)in.layer.id);
	printf("created:  %s\n", when(t, in.layer.created_ns, false));
	printf("entries:  %lld (%lld files, %lld directories, %lld symlinks, %lld other)\n",
	       (long long)in.entries, (long long)in.files, (long long)in.dirs,
	       (long long)in.symlinks, (long long)in.specials);
	printf("size:     %s (%lld bytes)\n", cli_bytes(b1, in.bytes), (long long)in.bytes);
	printf("objects:  %lld (%s on disk, shared with other images where identical)\n",
	       (long long)in.objects, cli_bytes(b2, in.object_bytes));
	printf("built on it: ");
	if (print_users(s, in.layer.id, false, &err) < 0)
		return cli_fail(&err);
	printf("\n");
	return EXIT_OK;
}

static int image_rm(struct cli *c, int argc, char **argv)
{
	struct opts o;
	int rc, i = parse(c, "image rm", rm_help, argc, argv, &o, &rc);
	if (i < 0 || !nargs_ok("image rm", argc - i, 1, 1 << 20, &rc))
		return rc;
	cleanup_error mz_error_t err = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	int status = EXIT_OK;
	for (; i < argc; i++) {
		if (mz_image_remove(s, argv[i], &err) < 0) {
			status = cli_fail(&err);
			mz_error_release(&err);
			continue;
		}
		if (!c->quiet)
			printf("removed image '%s'\n", argv[i]);
	}
	return status;
}

/* ---- the group ----------------------------------------------------------- */

int cmd_image(struct cli *c, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
	} subs[] = {
		{"import", image_import}, {"ls", image_ls},
		{"list", image_ls},       {"inspect", image_inspect},
		{"rm", image_rm},         {"remove", image_rm},
		{"busybox", image_busybox}, {"debootstrap", image_debootstrap},
	};
	if (argc < 2) {
		fputs(image_help, stderr);
		return EXIT_USAGE;
	}
	if (cli_is_help(argv[1])) {
		fputs(image_help, stdout);
		return EXIT_OK;
	}
	for (size_t k = 0; k < ARRAY_SIZE(subs); k++)
		if (strcmp(argv[1], subs[k].name) == 0)
			return subs[k].fn(c, argc - 1, argv + 1);
	return cli_usage("image", "unknown command '%s'", argv[1]);
}
