/*
 * cmd_fs.c — `mezzo fs`: mount trees, unmount them, snapshot them, list them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../fs/fs.h"
#include "../lib/log.h"
#include "../lib/util.h"
#include "cli.h"

static const char fs_usage[] =
	"usage: mezzo fs COMMAND ...\n"
	"\n"
	"A tree is a mutable file tree made from a version (an image is a named\n"
	"version) in O(1); it is served as a POSIX file system with FUSE\n"
	"passthrough, so reads and writes run at native speed and every tree\n"
	"shares one page-cache copy of each file they have in common.\n"
	"\n"
	"Commands:\n"
	"  mount SOURCE MOUNTPOINT [--tree NAME] [--suid] [--dev] [--foreground]\n"
	"        SOURCE is an image, a version or an existing tree ('image:N',\n"
	"        'version:N', 'tree:N' when a name is ambiguous).  From an image or\n"
	"        version a new tree is made: named with --tree (it persists), else\n"
	"        anonymous and dropped at umount.  Mounted nosuid,nodev unless\n"
	"        --suid / --dev.\n"
	"  umount MOUNTPOINT [--lazy]\n"
	"  snapshot TREE VERSION   make an immutable version of a tree, O(changes);\n"
	"                          works while the tree is mounted and in use\n"
	"  ls [--json]             trees, their base version and where mounted\n"
	"  rm TREE                 remove an unmounted tree\n"
	"\n"
	"Examples:\n"
	"  mezzo fs mount busybox /mnt/a --tree a    # new persistent tree 'a'\n"
	"  echo hi > /mnt/a/hello; mezzo fs snapshot a a-v1\n"
	"  mezzo fs umount /mnt/a; mezzo fs mount a /mnt/a   # same tree again\n"
	"  mezzo fs mount a-v1 /mnt/b                # anonymous tree from a-v1\n";

struct mount_opts {
	const char *tree_name;
	bool suid, dev, foreground;
};

/* In the serving process: make the tree (if mounting a version) so that
 * this process owns it, then serve it. */
static int serve(const char *root, const struct mz_layer *src, const char *tree_name,
		 const char *mp, struct mz_fs_opts *o, mz_error_t *err)
{
	mz_lid tree = src->id;
	if (src->kind == MZ_LAYER_VERSION) {
		mz_store *s = NULL;
		int r = mz_store_open(root, &s, err);
		if (r == 0)
			r = mz_tree_create(s, src->id, tree_name, getpid(), &tree, err);
		mz_store_close(s);
		if (r < 0) {
			if (o->ready_fd >= 0) {
				cleanup_free char *m = xasprintf("error: %s\n", *err ? (*err)->msg : "");
				write_all(o->ready_fd, m, strlen(m));
			}
			return r;
		}
	}
	return mz_fs_serve(root, tree, mp, o, err);
}

static int fs_mount_cmd(struct cli *c, int argc, char **argv)
{
	struct mount_opts mo = {0};
	const char *pos[2];
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tree") == 0 && i + 1 < argc)
			mo.tree_name = argv[++i];
		else if (strcmp(argv[i], "--suid") == 0)
			mo.suid = true;
		else if (strcmp(argv[i], "--dev") == 0)
			mo.dev = true;
		else if (strcmp(argv[i], "--foreground") == 0 || strcmp(argv[i], "-f") == 0)
			mo.foreground = true;
		else if (cli_is_help(argv[i])) {
			fputs(fs_usage, stdout);
			return EXIT_OK;
		} else if (argv[i][0] == '-')
			return cli_usage("fs", "mount: unknown option '%s'", argv[i]);
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			return cli_usage("fs", "mount: too many arguments");
	}
	if (npos != 2)
		return cli_usage("fs", "mount: need SOURCE and MOUNTPOINT");

	mz_error_t err cleanup_error = NULL;
	mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	struct mz_layer l;
	int r = mz_layer_resolve(s, pos[0], &l, &err);
	struct stat st;
	if (r == 0 && (stat(pos[1], &st) < 0 || !S_ISDIR(st.st_mode)))
		r = mz_error(&err, ENOTDIR, "mount point %s is not a directory", pos[1]);
	bool anonymous = l.kind == MZ_LAYER_VERSION && mo.tree_name == NULL;
	if (r == 0 && l.kind == MZ_LAYER_TREE && mo.tree_name)
		r = mz_error(&err, EINVAL, "'%s' is already a tree: --tree names a new tree",
			     pos[0]);
	if (r == 0 && mo.tree_name)
		r = mz_name_check(mo.tree_name, "tree", &err);
	cleanup_free char *root = r == 0 ? xstrdup(mz_store_root(s)) : NULL;
	/* A SQLite connection must not cross fork(): the server opens its own. */
	mz_store_close(s);
	if (r < 0)
		return cli_fail(&err);

	struct mz_fs_opts o = {.allow_suid = mo.suid, .allow_dev = mo.dev,
			       .drop_on_exit = anonymous, .ready_fd = -1};
	if (mo.foreground) {
		r = serve(root, &l, mo.tree_name, pos[1], &o, &err);
		return r < 0 ? cli_fail(&err) : EXIT_OK;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return mz_error_sys(&err, errno, "pipe"), cli_fail(&err);
	pid_t pid = fork();
	if (pid < 0)
		return mz_error_sys(&err, errno, "fork"), cli_fail(&err);
	if (pid == 0) {
		close(p[0]);
		setsid();
		cleanup_free char *logpath = xasprintf("%s/run/fs.log", root);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		dup2(null, 0);
		dup2(null, 1);
		dup2(log >= 0 ? log : null, 2);
		mz_log_init("mezzo-fs");
		mz_debug("serving, pid %d", (int)getpid());
		o.ready_fd = p[1];
		r = serve(root, &l, mo.tree_name, pos[1], &o, &err);
		if (r < 0)
			mz_err("%s", err ? err->msg : "server failed");
		_exit(r < 0 ? 1 : 0);
	}
	close(p[1]);
	r = cli_wait_ready(p[0], &err);
	close(p[0]);
	if (r < 0) {
		waitpid(pid, NULL, 0);
		if (r == -ECHILD)
			mz_error(&err, EIO, "the tree server died while mounting");
		return cli_fail(&err);
	}
	if (!c->quiet)
		printf("%s\n", anonymous ? "mounted (anonymous tree, dropped at umount)" : "mounted");
	return EXIT_OK;
}

struct find_mp {
	const char *path;
	mz_lid tree;
	char root[4096];
};

static int match_mp(mz_lid tree, const char *mp, void *arg)
{
	struct find_mp *f = arg;
	if (strcmp(mp, f->path) != 0)
		return 0;
	f->tree = tree;
	return 1;
}

static int fs_umount_cmd(struct cli *c, int argc, char **argv)
{
	bool lazy = false;
	const char *mp = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--lazy") == 0 || strcmp(argv[i], "-l") == 0)
			lazy = true;
		else if (cli_is_help(argv[i])) {
			fputs(fs_usage, stdout);
			return EXIT_OK;
		} else if (argv[i][0] == '-')
			return cli_usage("fs", "umount: unknown option '%s'", argv[i]);
		else if (!mp)
			mp = argv[i];
		else
			return cli_usage("fs", "umount: too many arguments");
	}
	if (!mp)
		return cli_usage("fs", "umount: need MOUNTPOINT");
	mz_error_t err cleanup_error = NULL;
	cleanup_free char *real = realpath(mp, NULL);
	if (real == NULL)
		return mz_error_sys(&err, errno, "%s", mp), cli_fail(&err);
	mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	struct find_mp f = {.path = real};
	mz_fs_foreach_mount(mz_store_root(s), match_mp, &f);
	if (f.tree == 0) {
		mz_store_close(s);
		return mz_error(&err, EINVAL, "%s is not a mounted tree of store %s", real, c->root ? c->root : mz_store_default_root(NULL)),
		       cli_fail(&err);
	}
	pid_t owner = 0;
	mz_layer_owner(s, f.tree, &owner, NULL);
	mz_store_close(s);
	if (umount2(real, lazy ? MNT_DETACH : 0) < 0) {
		int e = errno;
		if (e == EBUSY)
			return mz_error(&err, e, "%s is busy (a process uses it); close it or use --lazy",
					real),
			       cli_fail(&err);
		return mz_error_sys(&err, e, "cannot unmount %s", real), cli_fail(&err);
	}
	/* Wait for the server to finish (an anonymous tree is dropped then).  A
	 * pidfd turns readable when the process exits, zombie or not: kill(pid,
	 * 0) would wait for whoever reaps it. */
	int pfd = owner > 0 ? (int)syscall(SYS_pidfd_open, owner, 0) : -1;
	if (pfd >= 0) {
		struct pollfd pf = {.fd = pfd, .events = POLLIN};
		poll(&pf, 1, 10000);
		close(pfd);
	}
	return EXIT_OK;
}

/* NAME or tree:NAME, as a tree (a version of that name does not count). */
static int resolve_tree(mz_store *s, const char *name, struct mz_layer *l, mz_error_t *err)
{
	cleanup_free char *spec = strncmp(name, "tree:", 5) == 0 ? xstrdup(name)
								 : xasprintf("tree:%s", name);
	return mz_layer_resolve(s, spec, l, err);
}

static int fs_snapshot_cmd(struct cli *c, int argc, char **argv)
{
	if (argc == 2 && cli_is_help(argv[1])) {
		fputs(fs_usage, stdout);
		return EXIT_OK;
	}
	if (argc != 3)
		return cli_usage("fs", "snapshot: need TREE and VERSION");
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	struct mz_layer l;
	mz_lid v;
	if (resolve_tree(s, argv[1], &l, &err) < 0 ||
	    mz_fs_snapshot(s, l.id, argv[2], &v, &err) < 0)
		return cli_fail(&err);
	if (!c->quiet)
		printf("%s\n", argv[2]);
	return EXIT_OK;
}

static int fs_rm_cmd(struct cli *c, int argc, char **argv)
{
	if (argc != 2 || cli_is_help(argv[1])) {
		if (argc == 2) {
			fputs(fs_usage, stdout);
			return EXIT_OK;
		}
		return cli_usage("fs", "rm: need TREE");
	}
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	struct mz_layer l;
	if (resolve_tree(s, argv[1], &l, &err) < 0 || mz_layer_remove(s, l.id, false, &err) < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

struct ls_ctx {
	struct cli *c;
	mz_store *s;
	int n;
};

struct mp_lookup {
	mz_lid tree;
	char mp[4096];
};

static int find_tree_mp(mz_lid tree, const char *mp, void *arg)
{
	struct mp_lookup *m = arg;
	if (tree != m->tree)
		return 0;
	snprintf(m->mp, sizeof(m->mp), "%s", mp);
	return 1;
}

static int ls_one(const struct mz_layer *l, void *arg)
{
	struct ls_ctx *x = arg;
	if (l->kind != MZ_LAYER_TREE)
		return 0;
	struct mz_layer base = {0};
	mz_layer_get(x->s, l->parent, &base, NULL);
	struct mp_lookup m = {.tree = l->id};
	mz_fs_foreach_mount(mz_store_root(x->s), find_tree_mp, &m);
	pid_t owner = 0;
	mz_layer_owner(x->s, l->id, &owner, NULL);
	char name[300], basename[300];
	if (l->name[0])
		snprintf(name, sizeof(name), "%s", l->name);
	else
		snprintf(name, sizeof(name), "#%lld", (long long)l->id);
	if (base.name[0])
		snprintf(basename, sizeof(basename), "%s", base.name);
	else
		snprintf(basename, sizeof(basename), "#%lld", (long long)base.id);
	if (x->c->json) {
		printf("%s{\"id\":%lld,\"name\":", x->n ? "," : "", (long long)l->id);
		cli_json_str(stdout, l->name);
		printf(",\"base\":");
		cli_json_str(stdout, base.name);
		printf(",\"base_id\":%lld,\"anonymous\":%s,\"mountpoint\":", (long long)base.id,
		       l->name[0] ? "false" : "true");
		if (m.mp[0])
			cli_json_str(stdout, m.mp);
		else
			printf("null");
		printf(",\"server_pid\":%d,\"created_ns\":%lld,\"depth\":%d}", (int)owner,
		       (long long)l->created_ns, l->depth);
	} else {
		if (x->n == 0)
			printf("%-24s %-24s %-8s %s\n", "TREE", "BASE", "PID", "MOUNTPOINT");
		char pidbuf[16] = "-";
		if (owner)
			snprintf(pidbuf, sizeof(pidbuf), "%d", (int)owner);
		printf("%-24s %-24s %-8s %s\n", name, basename, pidbuf, m.mp[0] ? m.mp : "-");
	}
	x->n++;
	return 0;
}

static int fs_ls_cmd(struct cli *c, int argc, char **argv)
{
	argc = cli_take_json(c, argc, argv);
	if (argc > 1 && cli_is_help(argv[1])) {
		fputs(fs_usage, stdout);
		return EXIT_OK;
	}
	if (argc > 1)
		return cli_usage("fs", "ls: no arguments expected");
	mz_error_t err cleanup_error = NULL;
	cleanup_store mz_store *s = NULL;
	if (cli_store(c, &s, &err) < 0)
		return cli_fail(&err);
	struct ls_ctx x = {.c = c, .s = s};
	if (c->json)
		printf("[");
	if (mz_layer_foreach(s, ls_one, &x, &err) < 0)
		return cli_fail(&err);
	if (c->json)
		printf("]\n");
	return EXIT_OK;
}

int cmd_fs(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(fs_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
	} sub[] = {
		{"mount", fs_mount_cmd},     {"umount", fs_umount_cmd}, {"snapshot", fs_snapshot_cmd},
		{"ls", fs_ls_cmd},           {"rm", fs_rm_cmd},
	};
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++)
		if (strcmp(argv[1], sub[i].name) == 0)
			return sub[i].fn(c, argc - 1, argv + 1);
	return cli_usage("fs", "unknown command '%s'", argv[1]);
}
