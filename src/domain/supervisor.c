/*
 * supervisor.c — see supervisor.h.
 *
 * Order of work, and why:
 *   1. claim the domain in the catalog (one supervisor per domain);
 *   2. mount its tree with the domain's id map and serve it from a thread,
 *      so the domain's root user (an unprivileged host uid) owns its files;
 *   3. make the domain (runtime.h) with the mount as its root;
 *   4. wait for init, relaying signals and the console;
 *   5. tear down in reverse order.  Every step is undone on failure too.
 */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "../fs/fs.h"
#include "../net/net.h"
#include "../lib/cpulat.h"
#include "../lib/log.h"
#include "../lib/trace.h"
#include "../lib/thread.h"
#include "../lib/util.h"
#include "../store/store.h"
#include "runtime.h"
#include "runtimeInt.h"
#include "controlInt.h"

#define CONSOLE_LOG_MAX (1 << 20)

char *mz_domain_run_dir(const char *store_root, const char *name)
{
	return xasprintf("%s/run/domains/%s", store_root, name);
}

char *mz_domain_init_path(void)
{
	const char *e = getenv("MEZZO_INIT");
	if (e && *e)
		return xstrdup(e);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return xstrdup("/usr/local/lib/mezzo/mezzo-init");
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	return xasprintf("%s/mezzo-init", self);
}

/* argv from a NUL-separated blob (the catalog's form); an empty one is
 * /bin/sh, or the image's /sbin/init for image_init. */
static char **split_argv(const char *blob, size_t len, bool image_init)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (blob[i] == '\0')
			n++;
	char **v = xcalloc(n + 2, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < len && k < n; k++) {
		v[k] = xstrdup(blob + i);
		i += strlen(blob + i) + 1;
	}
	if (k == 0)
		v[k++] = xstrdup(image_init ? "/sbin/init" : "/bin/sh");
	return v;
}

static void free_argv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* What a domain's record says its processes are: its command and its
 * services, parsed from the record's blobs. */
struct rec_cmd {
	char **argv;
	struct mz_service_list sl;
	struct mz_service *svc;
};

/* 0, or -1 if the services' blob is malformed (argv is parsed all the same). */
static int rec_cmd_parse(const struct mz_domain_rec *r, struct rec_cmd *c)
{
	c->argv = split_argv(r->cmd, r->cmd_len, r->init_mode == MZ_INIT_IMAGE);
	if (mz_domain_services_parse(r->services, r->services_len, &c->sl) < 0)
		return -1;
	if (c->sl.n) {
		c->svc = xcalloc(c->sl.n, sizeof(*c->svc));
		for (size_t i = 0; i < c->sl.n; i++)
			c->svc[i] = (struct mz_service){.name = c->sl.names[i], .argv = c->sl.argvs[i]};
	}
	return 0;
}

static void rec_cmd_free(struct rec_cmd *c)
{
	free_argv(c->argv);
	free(c->svc);
	mz_service_list_free(&c->sl);
}

/* The file system thread mounts the domain's tree, says so, and serves it
 * until it is unmounted (or only serves it: a `run` makes and attaches the
 * mount ahead, early_make); meanwhile this thread makes the console.  In
 * the ordinary order the domain itself is made only once the mount is
 * there: a mount namespace is a copy of ours at clone time, and a mount
 * made later would not be in it. */
struct fs_job {
	const char *root, *mp;
	mz_lid tree;
	struct mz_fs_opts fo;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int r;
	mz_error_t err;
	struct fs_server *S;
};

/* How a supervisor serves its domain's tree: ids through the domain's range
 * from base, on the catalog handle s (lent: NULL for one of its own). */
static struct mz_fs_opts fs_opts(uid_t base, mz_store *s, bool fresh)
{
	return (struct mz_fs_opts){.uid_base = base, .uid_count = MZ_DOMAIN_ID_COUNT,
				   .gid_base = base, .gid_count = MZ_DOMAIN_ID_COUNT,
				   .allow_suid = true, .allow_dev = false, .ready_fd = -1,
				   .control_later = true, .fresh = fresh, .store = s};
}

static void *fs_thread(void *arg)
{
	struct fs_job *j = arg;
	struct fs_server *S = j->S; /* started and mounted ahead: only to serve */
	if (S == NULL) {
		mz_error_t err = NULL;
		int r = mz_fs_start(j->root, j->tree, j->mp, &j->fo, &S, &err);
		pthread_mutex_lock(&j->lock);
		j->done = true;
		j->r = r;
		j->err = err;
		j->S = S;
		pthread_cond_signal(&j->cond);
		pthread_mutex_unlock(&j->lock);
		if (r < 0)
			return NULL;
	}
	mz_error_t e2 cleanup_error = NULL;
	if (mz_fs_run(S, &e2) < 0)
		mz_err("file system server: %s", e2 ? e2->msg : "failed");
	return NULL;
}

/* Wait for the mount: 0, or the file system's error (moved into *err). */
static int fs_wait(void *arg, mz_error_t *err)
{
	struct fs_job *j = arg;
	pthread_mutex_lock(&j->lock);
	while (!j->done)
		pthread_cond_wait(&j->cond, &j->lock);
	pthread_mutex_unlock(&j->lock);
	if (j->r < 0 && err && *err == NULL) {
		*err = j->err;
		j->err = NULL;
	}
	return j->r;
}

/*
 * Warming the tree's dentries.  Pid 1's first steps in the tree (the mount
 * points /proc, /sys, /dev, /tmp; /etc/hosts on a LAN) and pid 2's exec of
 * the command (its PATH search) each wait for a LOOKUP round trip to the
 * server, one after the other: about 0.25 ms of a start.  The same names,
 * looked up from this process while the kernel makes the domain's
 * namespaces on the other CPU, are cached in the kernel by then (the tree
 * is the only writer of itself, so its entries and misses live long; the
 * dentries are the superblock's, seen through every mount of it).
 *
 * Lookups only (O_PATH: no OPEN, nothing written, nothing of the result
 * used), and never outside the tree: RESOLVE_IN_ROOT reads the domain's
 * links (/usr -> /, say) as the domain will, against its own root, not the
 * host's.
 */
struct warm {
	const char *mp;
	const char *cmd;       /* argv[0], or NULL */
	char *const *envp;     /* the command's environment: its PATH */
	bool lan;              /* /etc/hosts and /etc/resolv.conf are bound */
};

/* true if path names something in the tree */
static bool warm_path(int root, const char *path, bool follow)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW),
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void warm_lookups(const struct warm *w)
{
	int root = open(w->mp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return;
	for (const char *const *t = mz_mounts_tops; *t; t++)
		warm_path(root, *t, false);
	if (w->lan) {
		warm_path(root, "etc/hosts", false);
		warm_path(root, "etc/resolv.conf", false);
	}
	/* the command as mz_exec_search finds it: a path, or along PATH */
	if (w->cmd && strchr(w->cmd, '/')) {
		warm_path(root, w->cmd, true);
	} else if (w->cmd && *w->cmd) {
		for (const char *p = mz_exec_path(w->envp);; p++) {
			const char *e = strchrnul(p, ':');
			char buf[PATH_MAX];
			int n = snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p, w->cmd);
			if ((n < (int)sizeof(buf) && warm_path(root, buf, true)) || *e == '\0')
				break;
			p = e;
		}
	}
	close(root);
}

/* The spawn's root_hook: wait for the mount, then warm it (above) while
 * the kernel makes the namespaces.  The same thread first makes the run
 * directory, the supervisor's and the console's logs, and the sockets
 * `mezzo console` and `mezzo stop` connect to.  Each mkdir, create and bind
 * makes an inode, ~0.1 ms on this journal-less ext4 (its inode allocator
 * looks for recently deleted inodes): better spent beside the clone than
 * before it (the control socket is abstract: control.c).  Nothing reads
 * them before the spawn is done: a failure before then is told to the
 * caller on the ready pipe. */
struct console;
static int console_listen(struct console *c, const char *dir, mz_error_t *err);
static int console_log_open(struct console *c, const char *dir, mz_error_t *err);

struct root_job {
	struct fs_job *fs;
	struct warm warm;
	struct console *con;     /* or NULL */
	struct sup_control *ctl;
	const char *dir, *root, *name;
	bool make_dir; /* not made yet: made here */
	bool log;      /* the supervisor's log goes to the run directory */
	int files_r;
	mz_error_t files_err;
	pthread_t warm_th;
	bool warming;
};

/* The supervisor's standard error, from now on (before, /dev/null). */
static void log_open(const char *dir)
{
	cleanup_free char *log = xasprintf("%s/supervisor.log", dir);
	int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (lfd >= 0) {
		dup2(lfd, 2);
		close(lfd);
	}
}

static int run_files_make(struct root_job *j)
{
	int r = 0;
	if (j->make_dir && (r = mkdir_p(j->dir, 0700)) < 0)
		r = mz_error_sys(&j->files_err, -r, "cannot make %s", j->dir);
	if (r == 0 && j->log)
		log_open(j->dir);
	if (r == 0 && j->con)
		r = console_log_open(j->con, j->dir, &j->files_err);
	if (r == 0 && j->con)
		r = console_listen(j->con, j->dir, &j->files_err);
	/* without a control socket, `mezzo stop` signals: not worth failing for */
	mz_error_t e cleanup_error = NULL;
	if (r == 0 && sup_control_open(j->ctl, j->root, j->name, &e) < 0)
		mz_warn("%s; mezzo stop will signal instead", e->msg);
	return j->files_r = r;
}

/*
 * The warm-up's lookups wait for this very process's server.  A thread
 * waiting so must not hold the process's /dev/fuse: were the process killed
 * (kill -9) after its server thread had read one of them, the kernel would
 * wait out the answer (it does for a request a server has read), the
 * waiting thread would keep the fd table alive, the table the device's fd,
 * the fd the connection: a process that never finishes dying, its domain's
 * processes waiting on the same tree with it.  So the lookups are made from
 * a copy of the fd table with nothing in it, after the sockets (which must
 * be the process's).
 */
static void warm_alone(const struct warm *w)
{
	if (unshare(CLONE_FILES) < 0 || syscall(SYS_close_range, 0U, ~0U, 0U) < 0)
		return; /* not warmed: slower, not wrong */
	warm_lookups(w);
}

static void *root_thread(void *arg)
{
	struct root_job *j = arg;
	run_files_make(j);
	warm_alone(&j->warm);
	return NULL;
}

static int root_ready(void *arg, mz_error_t *err)
{
	struct root_job *j = arg;
	int r = fs_wait(j->fs, err);
	mz_trace("tree mounted");
	mz_debug("start: tree mounted");
	if (r < 0)
		return r;
	j->warming = mz_thread_start_apart(&j->warm_th, 64 << 10, root_thread, j) == 0;
	return 0;
}

/* The tree's etc/hosts and etc/resolv.conf, made empty (root's, 0644) where
 * missing, so that the LAN's files can be bound over them.  Before the tree
 * is served: its server is the only writer once it runs.  A name that is
 * there but is not a regular file is the domain's business: left alone (and
 * then not covered, see mz_mounts_bind_files). */
static int etc_files_ensure(mz_store *s, mz_lid tree, mz_error_t *err)
{
	mz_view *v = NULL;
	int r = mz_view_open(s, tree, &v, err);
	if (r < 0)
		return r;
	const char *names[] = {"hosts", "resolv.conf"};
	mz_ino etc = 0, ino;
	/* every start but the first finds them there: no write lock taken */
	bool missing = mz_view_lookup(v, mz_view_root(v), "etc", &etc, NULL) == -ENOENT;
	for (size_t i = 0; i < 2 && !missing; i++)
		missing = mz_view_lookup(v, etc, names[i], &ino, NULL) == -ENOENT;
	if (!missing) {
		mz_view_close(v);
		return 0;
	}
	int64_t now = now_ns();
	struct mz_inode a = {.mode = S_IFDIR | 0755, .atime_ns = now, .mtime_ns = now,
			     .ctime_ns = now};
	struct mz_inode got;
	r = mz_store_begin(s, err);
	if (r == 0) {
		r = mz_view_lookup(v, mz_view_root(v), "etc", &etc, NULL);
		if (r == -ENOENT && (r = mz_view_create(v, mz_view_root(v), "etc", &a, 0, NULL,
							&got, err)) == 0)
			etc = got.ino;
		else if (r < 0)
			r = mz_error_sys(err, -r, "looking up /etc in the domain's tree");
	}
	a.mode = S_IFREG | 0644;
	bool dir = r == 0 && mz_view_getattr(v, etc, &got, NULL) == 0 && S_ISDIR(got.mode);
	for (size_t i = 0; r == 0 && dir && i < 2; i++) {
		/* anything but a missing name is the domain's own: left alone */
		if (mz_view_lookup(v, etc, names[i], &ino, NULL) == -ENOENT)
			r = mz_view_create(v, etc, names[i], &a, 0, NULL, &got, err);
	}
	r = r == 0 ? mz_store_commit(s, err) : (mz_store_rollback(s), r);
	mz_view_close(v);
	return r;
}

/* The domain's LANs: plugged in by the runtime's network hook, between its
 * loopback and its first process. */
struct net_job {
	mz_store *s;
	const char *name, *rundir;
};

static int net_hook(void *arg, int netns_fd, mz_error_t *err)
{
	struct net_job *j = arg;
	return mz_net_attach(j->s, j->name, netns_fd, j->rundir, err);
}

/* libnftables' first use in a process costs ~1.4 ms (loading, caches): done
 * on a thread of its own while the tree is mounted and the domain made. */
static void *net_prepare_thread(void *arg)
{
	mz_net_prepare(arg);
	return NULL;
}

/* An empty resolv.conf, which the runtime binds over the domain's before
 * the attach fills it in (in place: same inode); the hosts file is the LAN
 * set's, made by mz_net_hosts_file. */
static int resolv_file_make(const char *dir, mz_error_t *err)
{
	cleanup_free char *p = xasprintf("%s/resolv.conf", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return mz_error_sys(err, errno, "cannot make %s", p);
	close(fd);
	return 0;
}

/* Say how the start went, once: the reader waits for end of file. */
static void tell(int *fd, const char *msg)
{
	if (*fd < 0)
		return;
	if (write_all(*fd, msg, strlen(msg)) < 0)
		mz_debug("ready pipe: %s", strerror(errno));
	close(*fd);
	*fd = -1;
}

/* "error: MSG", or "error NNN: MSG" when the command could not run (its
 * status, for `run -d` to exit with: cli_wait_ready). */
static void tell_error(int *fd, mz_error_t e)
{
	cleanup_free char *m =
		e && e->status ? xasprintf("error %d: %s\n", e->status, e->msg ? e->msg : "")
			       : xasprintf("error: %s\n", e && e->msg ? e->msg : "");
	tell(fd, m);
}

/* The console: init's terminal, kept here and logged with a size cap. */
struct console {
	int master, slave, log;
	char *logpath;
	off_t logsize;
	int listen;   /* run/domains/NAME/console.sock: `mezzo console` attaches */
	char *sockpath;
	int client;   /* the one attached client, or -1 */
};

static int console_open(struct console *c, mz_error_t *err)
{
	c->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (c->master < 0 || grantpt(c->master) < 0 || unlockpt(c->master) < 0)
		return mz_error_sys(err, errno, "cannot make a console pty");
	char name[128];
	if (ptsname_r(c->master, name, sizeof(name)) != 0)
		return mz_error_sys(err, errno, "ptsname");
	c->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->slave < 0)
		return mz_error_sys(err, errno, "open %s", name);
	return 0;
}

/* console.log, in the run directory: what the domain writes is kept */
static int console_log_open(struct console *c, const char *dir, mz_error_t *err)
{
	c->logpath = xasprintf("%s/console.log", dir);
	c->log = open(c->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (c->log < 0)
		return mz_error_sys(err, errno, "open %s", c->logpath);
	struct stat st;
	c->logsize = fstat(c->log, &st) == 0 ? st.st_size : 0;
	return 0;
}

/* run/domains/NAME/console.sock, where `mezzo console` attaches */
static int console_listen(struct console *c, const char *dir, mz_error_t *err)
{
	c->sockpath = xasprintf("%s/console.sock", dir);
	const char *sock = c->sockpath;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof(a.sun_path))
		return mz_error(err, ENAMETOOLONG, "console socket path too long: %s", sock);
	strcpy(a.sun_path, sock);
	unlink(sock);
	c->listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen < 0 || bind(c->listen, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    chmod(sock, 0600) < 0 || listen(c->listen, 4) < 0)
		return mz_error_sys(err, errno, "console socket %s", sock);
	return 0;
}

/* A new client replaces the attached one (the last to attach wins). */
static void console_accept(struct console *c)
{
	int fd = accept4(c->listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (c->client >= 0)
		close(c->client);
	c->client = fd;
}

/* Keystrokes of the attached client go to the domain's terminal. */
static void console_input(struct console *c)
{
	char buf[4096];
	ssize_t n = read(c->client, buf, sizeof(buf));
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(c->client);
			c->client = -1;
		}
		return;
	}
	if (write_all(c->master, buf, n) < 0)
		mz_debug("console input: %s", strerror(errno));
}

static void console_pump(struct console *c)
{
	char buf[8192];
	ssize_t n;
	while ((n = read(c->master, buf, sizeof(buf))) > 0) {
		if (c->logsize + n > CONSOLE_LOG_MAX) {
			/* keep one older generation: logs NAME shows both */
			cleanup_free char *old = xasprintf("%s.1", c->logpath);
			rename(c->logpath, old);
			close(c->log);
			c->log = open(c->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
			c->logsize = 0;
		}
		if (c->log >= 0 && write_all(c->log, buf, n) == 0)
			c->logsize += n;
		/* the output is kept whether or not anyone watches; a client too
		 * slow to take it is let go rather than stall the domain */
		if (c->client >= 0 && write(c->client, buf, n) != n) {
			close(c->client);
			c->client = -1;
		}
	}
}

static void console_close(struct console *c)
{
	if (c->master >= 0)
		close(c->master);
	if (c->slave >= 0)
		close(c->slave);
	if (c->log >= 0)
		close(c->log);
	if (c->client >= 0)
		close(c->client);
	if (c->listen >= 0) {
		close(c->listen);
		unlink(c->sockpath);
	}
	free(c->sockpath);
	free(c->logpath);
}

/* A stop asked with this timeout: SIGTERM now if none was asked before,
 * and SIGKILL at *kill_at, the earliest any stop asked for. */
static void stop_begin(struct mz_domain_proc *p, int64_t *kill_at, int timeout_s)
{
	int64_t at = mono_ns() + (int64_t)timeout_s * 1000000000;
	if (!*kill_at)
		mz_domain_kill(p, SIGTERM, NULL);
	if (!*kill_at || at < *kill_at)
		*kill_at = at;
}

/* Wait for init; on SIGTERM/SIGINT/SIGHUP, or a stop on the control
 * socket, stop it: SIGTERM, then SIGKILL after the timeout (the stop's own,
 * else the start's). */
static int wait_init(const struct mz_sup_opts *o, struct mz_domain_proc *p, struct console *c,
		     struct sup_control *ctl, int *status, mz_error_t *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	cleanup_close int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return mz_error_sys(err, errno, "signalfd");
	int64_t kill_at = 0;
	for (;;) {
		struct pollfd pf[5 + 1 + SUP_CONTROL_MAX] = {
			{.fd = p->pidfd, .events = POLLIN},
			{.fd = sfd, .events = POLLIN},
			{.fd = c ? c->master : -1, .events = POLLIN},
			{.fd = c ? c->listen : -1, .events = POLLIN},
			{.fd = c ? c->client : -1, .events = POLLIN}};
		int nctl = ctl->listen >= 0 ? sup_control_poll_fds(ctl, pf + 5) : 0;
		int timeout = -1;
		if (kill_at) {
			int64_t left = kill_at - mono_ns();
			timeout = left > 0 ? (int)(left / 1000000) + 1 : 0;
		}
		int n = poll(pf, (nfds_t)(5 + nctl), timeout);
		if (n < 0 && errno != EINTR)
			return mz_error_sys(err, errno, "poll");
		int stop_s = n > 0 && nctl ? sup_control_read(ctl, pf + 5, nctl) : -1;
		if (stop_s >= 0)
			stop_begin(p, &kill_at, stop_s);
		if (c && (pf[2].revents & POLLIN))
			console_pump(c);
		if (c && (pf[3].revents & POLLIN))
			console_accept(c);
		if (c && c->client >= 0 && (pf[4].revents & (POLLIN | POLLHUP | POLLERR)))
			console_input(c);
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (kill_at)
					mz_domain_kill(p, SIGKILL, NULL); /* asked twice */
				else
					stop_begin(p, &kill_at,
						   o->stop_timeout_s > 0 ? o->stop_timeout_s : 10);
			}
		}
		if (kill_at && mono_ns() >= kill_at) {
			mz_domain_kill(p, SIGKILL, NULL);
			kill_at = mono_ns() + 3600LL * 1000000000;
		}
		if (pf[0].revents & POLLIN) {
			siginfo_t si = {0};
			if (waitid(P_PIDFD, p->pidfd, &si, WEXITED) < 0)
				return mz_error_sys(err, errno, "waitid");
			*status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
							    : W_EXITCODE(0, si.si_status);
			if (c)
				console_pump(c);
			return 0;
		}
	}
}

static rlim_t caller_nofile; /* the caller's soft RLIMIT_NOFILE (mz_supervise) */

/* The spec of the domain record r describes (c: its command, parsed), as
 * this supervisor makes it: rooted at mp, in the cgroup named cgname, with
 * o's stdio or the console.  The caller adds the id range, and a LAN's
 * hooks and files. */
static struct mz_domain_spec spec_of(const struct mz_domain_rec *r, const struct rec_cmd *c,
				     const char *cgname, const char *mp, const char *init,
				     const struct mz_sup_opts *o, const struct console *con)
{
	struct mz_domain_spec spec = {
		.name = r->name,
		.cgroup_name = cgname,
		.rootfs = mp,
		.uid_count = MZ_DOMAIN_ID_COUNT,
		.gid_count = MZ_DOMAIN_ID_COUNT,
		/* with services and no command of its own, the domain runs
		   until stopped */
		.argv = (c->sl.n && r->cmd_len == 0) ? NULL : c->argv,
		.services = c->svc,
		.nservices = c->sl.n,
		.image_init = r->init_mode == MZ_INIT_IMAGE,
		.tty = o->console ? true : o->tty,
		.init_path = init,
		.limits = {.memory_bytes = r->memory,
			   .pids = r->pids,
			   .cpu_weight = r->cpu_weight,
			   .cpu_quota_us = r->cpu_quota_us,
			   .cpu_period_us = r->cpu_quota_us ? 100000 : 0,
			   .io_weight = r->io_weight,
			   .nofile_soft = (int64_t)caller_nofile},
	};
	for (int i = 0; i < 3; i++)
		spec.stdio[i] = o->console ? con->slave : o->stdio[i];
	return spec;
}

/*
 * A domain made as it starts (`run`): its catalog work and its namespaces
 * side by side.  The catalog's open and the domain's rows (0.8-1.1 ms: a new
 * process opens SQLite cold, parses the schema and prepares its statements)
 * need nothing of the clone, and the clone (0.5-0.9 ms, most of it the new
 * network namespace) needs nothing of the catalog but the id range, which
 * the parent writes only later.  So make() runs on a thread placed on the
 * other CPU (lib/thread.h: left to the scheduler, a thread this short runs
 * after its creator, not beside it) while this thread clones pid 1 from
 * what the record will say.
 *
 * The tree can be mounted only once the catalog has named it: its mount is
 * made beside the clone, detached, and attached after the claim (early_make);
 * it reaches pid 1's mount namespace by propagation, the mount point
 * being a shared mount in this supervisor's namespace (its only one; pid 1
 * makes all of its own private first thing after "go", before it binds the
 * tree as its root).  And pid 1's cgroup is made before the catalog has said
 * that the name is free: a group of that name is an error then, never
 * replaced (runtime.h), and the start falls back to the ordinary order.
 */
struct early {
	pthread_t th;
	const struct mz_sup_make *mk;
	mz_store *s;
	int r;                    /* make()'s */
	mz_error_t err;
	struct mz_spawn *sp;      /* pid 1 waiting for its "go", or NULL */
	struct mz_domain_spec spec; /* pid 1 reads it until finish */
	struct rec_cmd cmd;         /* spec's command and services */
	char cgname[160];
	char *init;
	char *mp;                 /* the tree's mount point, from the store's
				     canonical root as the store will have it */
	bool unshared;            /* this process's mount namespace made */
	bool console;             /* con opened */
	bool ahead;               /* make() runs beside the clone */
	struct fs_server *fs;     /* the tree's server, its mount made (not
				     attached), or NULL */
	mz_lid fs_tree;
};

/* The record; then, while the other thread still waits for the clone
 * (0.5-0.8 ms, against ~0.4 for the record in a spare of `mezzo serve`),
 * the tree's server and its mount, made detached (fs/server.c).  Attached
 * once the record is claimed, it spares the start the wait for a server
 * thread, the catalog's reads and the mount (~0.2 ms).  Should making them
 * fail here, the ordinary order makes them again (and says why if it fails
 * too); should the attach fail, the start fails, as a failed mount does. */
static void *early_make(void *arg)
{
	struct early *e = arg;
	e->r = e->mk->make(e->mk->arg, &e->s, &e->err);
	struct mz_domain_rec rec;
	if (e->r < 0 || !e->ahead || mz_domain_rec_get(e->s, e->mk->proto->name, &rec, NULL) < 0)
		return NULL;
	uid_t base = MZ_DOMAIN_ID_BASE + (uid_t)rec.slot * MZ_DOMAIN_ID_COUNT;
	struct mz_fs_opts fo = fs_opts(base, e->s, true);
	mz_error_t fe cleanup_error = NULL;
	if (mz_fs_start(mz_store_root(e->s), rec.tree, NULL, &fo, &e->fs, &fe) == 0) {
		e->fs_tree = rec.tree;
		mz_trace("run: the tree's mount made, beside the clone");
	} else {
		mz_debug("start: %s: early mount: %s", rec.name, fe ? fe->msg : "");
	}
	mz_domain_rec_free(&rec);
	return NULL;
}

/* (a pid 1 still waiting for its "go" is killed: the start did not finish) */
static void early_free(struct early *e)
{
	mz_domain_spawn_cancel(e->sp);
	mz_fs_stop(e->fs);
	rec_cmd_free(&e->cmd);
	free(e->init);
	free(e->mp);
	mz_error_release(&e->err);
	*e = (struct early){0};
}

static int console_open(struct console *c, mz_error_t *err);
static void console_close(struct console *c);

/* Make the record (make()) and, beside it, pid 1.  0 with e->s set and
 * e->sp set or not (not: the start goes on in the ordinary order); or
 * make()'s error. */
static int early_start(const struct mz_sup_opts *o, struct early *e, struct console *con,
		       mz_error_t *err)
{
	const struct mz_domain_rec *p = e->mk->proto;
	/* The catalog's open and the record, first: ~1 ms here, a little
	 * more than the path from here through the clone to the join. */
	e->ahead = e->mk->clone_early;
	bool thread = e->ahead && mz_thread_start_apart(&e->th, 0, early_make, e) == 0;
	if (!thread)
		e->ahead = false;
	/* a store not made yet (make() may be making it) has no root to
	 * resolve, or no run directory yet: the ordinary order */
	cleanup_free char *root = thread ? realpath(o->store_root, NULL) : NULL;
	const char *mp = e->mp = root ? xasprintf("%s/run/mnt", root) : NULL;
	bool ok = mp != NULL && (mkdir(mp, 0700) == 0 || errno == EEXIST);
	/* the mount namespace pid 1's is copied from, with its mount point
	 * shared (above) */
	if (ok) {
		e->unshared = unshare(CLONE_NEWNS) == 0 &&
			      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
		ok = e->unshared && mount(mp, mp, NULL, MS_BIND, NULL) == 0 &&
		     mount(NULL, mp, NULL, MS_SHARED, NULL) == 0;
	}
	if (ok && o->console) {
		mz_error_t ce cleanup_error = NULL;
		ok = e->console = console_open(con, &ce) == 0;
		if (!ok) { /* the ordinary order opens it again, and says why not */
			console_close(con);
			*con = (struct console){.master = -1, .slave = -1, .log = -1,
						.listen = -1, .client = -1};
		}
	}
	if (!thread)
		early_make(e);
	if (ok) {
		/* (malformed, the record's would be too: the ordinary order says so) */
		ok = rec_cmd_parse(p, &e->cmd) == 0;
		mz_domain_cgroup_name(root, p->name, e->cgname);
		e->init = mz_domain_init_path();
		e->spec = spec_of(p, &e->cmd, e->cgname, mp, e->init, o, con);
		mz_error_t be cleanup_error = NULL;
		if (ok && mz_domain_spawn_begin(&e->spec, MZ_SPAWN_EARLY, &e->sp, &be) < 0)
			mz_debug("start: %s: early clone: %s", p->name, be ? be->msg : "");
	}
	if (thread)
		pthread_join(e->th, NULL);
	mz_trace("record made");
	*o->make->store = e->s;
	if (e->r < 0) {
		*err = e->err;
		e->err = NULL;
		mz_domain_spawn_cancel(e->sp);
		e->sp = NULL;
		return e->r;
	}
	return 0;
}

int mz_supervise(const struct mz_sup_opts *o, int *status, mz_error_t *err)
{
	/* A start and a stop are chains of wakeups between this process, its
	 * threads and the domain's first processes, each on whichever CPU is
	 * idle; idle CPUs poll meanwhile where waking a halted one costs
	 * (lib/cpulat.h), not while the domain just runs. */
	mz_trace("supervise");
	/* The tree's server may keep many files open: this process's soft
	 * limit goes up to its hard one, before any thread or clone, and the
	 * domain gets its caller's (spec_of), whichever way it starts. */
	rlim_t was = raise_nofile();
	if (was)
		caller_nofile = was;
	struct mz_cpulat own_lat = MZ_CPULAT_INIT;
	struct mz_cpulat *lat = o->cpulat ? o->cpulat : &own_lat;
	mz_cpulat_hold(lat);
	int ready_fd = o->ready_fd;
	mz_store *s = o->store;
	bool own_s = false; /* opened here, closed here */
	struct mz_domain_rec rec = {0};
	struct console con = {.master = -1, .slave = -1, .log = -1, .listen = -1, .client = -1};
	struct early E = {.mk = o->make};
	/* one malloc arena: the file system thread (and a run's catalog thread)
	 * would get its own (64 KiB and up of resident heap per domain) for no
	 * gain */
	mallopt(M_ARENA_MAX, 1);
	int r = 0;
	if (o->make)
		r = early_start(o, &E, &con, err);
	else if (s == NULL)
		own_s = (r = mz_store_open(o->store_root, &s, err)) == 0;
	if (o->make)
		s = E.s;
	if (r == 0)
		r = mz_domain_rec_claim(s, o->name, getpid(), &rec, err);
	mz_trace("claimed");
	/* What a crashed supervisor of this domain may have left behind (one
	 * that ended well left no supervisor and no init in the record; `run`
	 * made the record already naming us). */
	if (r == 0 && ((rec.sup_pid && rec.sup_pid != getpid()) || rec.init_pid))
		r = mz_domain_reap_orphan(mz_store_root(s), o->name, err);
	if (r < 0) {
		mz_domain_rec_free(&rec);
		early_free(&E);
		console_close(&con);
		if (own_s)
			mz_store_close(s);
		tell_error(&ready_fd, *err);
		mz_cpulat_close(&own_lat);
		return r;
	}
	/* The run directory holds the console, the supervisor's log and a LAN's
	 * files, and is made only for those.  The tree's mount point is one for
	 * every domain of the store: each supervisor mounts in a mount
	 * namespace of its own (below), and a directory per domain cost a mkdir
	 * at every start and an rmdir at every rm (~0.25 ms on this ext4). */
	cleanup_free char *dir = mz_domain_run_dir(mz_store_root(s), o->name);
	cleanup_free char *mp = xasprintf("%s/run/mnt", mz_store_root(s));
	if (E.sp && strcmp(mp, E.mp) != 0) { /* the root resolved otherwise meanwhile */
		mz_domain_spawn_cancel(E.sp);
		E.sp = NULL;
	}
	cleanup_free char *init = mz_domain_init_path();
	struct rec_cmd cmd = {0};
	if (rec_cmd_parse(&rec, &cmd) < 0 && r == 0)
		r = mz_error(err, EINVAL, "domain %s: its services in the catalog are malformed",
			     o->name);
	uid_t base = MZ_DOMAIN_ID_BASE + (uid_t)rec.slot * MZ_DOMAIN_ID_COUNT;
	struct sup_control ctl;
	sup_control_init(&ctl);
	struct fs_server *S = NULL;
	pthread_t th;
	bool thread = false, spawned = false;
	struct mz_domain_proc proc = {.pidfd = -1};

	/* Signals are read from a signalfd in wait_init. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (r == 0 && mkdir(mp, 0700) < 0 && errno != EEXIST)
		r = mz_error_sys(err, errno, "cannot make %s", mp);
	/* on a LAN: the files to bind over /etc/hosts and /etc/resolv.conf
	 * exist in the tree and in the run directory (below) */
	struct mz_lease_rec *leases = NULL;
	size_t nleases = 0;
	/* (one made here to clone early is on none) */
	if (r == 0 && !(o->make && o->make->clone_early))
		r = mz_lease_list(s, o->name, 0, &leases, &nleases, err);
	mz_lease_recs_free(leases, nleases);
	/* a LAN's files are made below; a console's and a log's beside the
	 * clone (root_thread) */
	if (r == 0 && nleases && (r = mkdir_p(dir, 0700)) < 0)
		r = mz_error_sys(err, -r, "cannot make %s", dir);
	/* The tree is mounted in a mount namespace of this supervisor's own.  A
	 * domain's mount namespace starts as a copy of its supervisor's: were
	 * every domain's tree in the host's, each start would copy all of them
	 * (measured: a start 7.8 ms at 100 domains, 11.2 ms at 1000, and the
	 * copies' memory).  And a supervisor that dies leaves no dead mount. */
	if (r == 0 && !E.unshared &&
	    (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0))
		r = mz_error_sys(err, errno, "cannot make the supervisor's mount namespace");
	mz_trace("mount namespace made");
	/* a domain made here is on no LAN; were it, it would start in order */
	if (E.sp && nleases) {
		mz_domain_spawn_cancel(E.sp);
		E.sp = NULL;
	}
	/* on a LAN: its files; libnftables warms up */
	pthread_t nth;
	bool net_thread = false;
	cleanup_free char *hosts = NULL;
	if (r == 0 && nleases) {
		r = etc_files_ensure(s, rec.tree, err);
		if (r == 0)
			r = resolv_file_make(dir, err);
		if (r == 0 && (hosts = mz_net_hosts_file(s, o->name, err)) == NULL)
			r = *err ? -(*err)->code : -EIO;
		if (r == 0)
			net_thread = pthread_create(&nth, NULL, net_prepare_thread, s) == 0;
	}
	cleanup_free char *resolv = nleases ? xasprintf("%s/resolv.conf", dir) : NULL;
	struct net_job nj = {.s = s, .name = o->name, .rundir = dir};
	/* The tree server uses this process's catalog handle (a second one
	 * would cost a schema parse on the start path) unless the domain is on
	 * a LAN: then the attach, which runs while pid 1 makes its mounts in
	 * the tree, uses the catalog at length, and must not hold up the
	 * server meanwhile. */
	bool lend = nleases == 0;
	struct fs_job job = {
		.root = mz_store_root(s), .mp = mp, .tree = rec.tree,
		.fo = fs_opts(base, lend ? s : NULL, o->make != NULL),
		.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	};
	/* a server made ahead (early_start): its mount goes where pid 1 will
	 * see it, and the thread has only to serve */
	if (E.fs && (r != 0 || E.fs_tree != rec.tree || !lend)) {
		mz_fs_stop(E.fs);
		E.fs = NULL;
	}
	if (r == 0 && E.fs) {
		r = mz_fs_attach(E.fs, mp, err);
		if (r < 0) {
			mz_fs_stop(E.fs);
		} else {
			job.S = E.fs;
			job.done = true;
		}
		E.fs = NULL;
	}
	if (r == 0) {
		r = -mz_thread_start_apart(&th, 0, fs_thread, &job);
		if (r < 0)
			mz_error_sys(err, -r, "cannot start the file system thread");
		thread = r == 0;
		if (!thread && job.S) { /* attached, and nobody to serve it */
			umount2(mp, MNT_DETACH);
			mz_fs_stop(job.S);
			job.S = NULL;
		}
	}
	if (r == 0 && o->console && !E.console)
		r = console_open(&con, err);
	if (r == 0) {
		char cgname[160];
		mz_domain_cgroup_name(mz_store_root(s), rec.name, cgname);
		struct mz_domain_spec spec = spec_of(&rec, &cmd, cgname, mp, init, o, &con);
		spec.uid_base = spec.gid_base = base;
		spec.net_hook = nleases ? net_hook : NULL;
		spec.net_hook_arg = &nj;
		spec.hosts_file = hosts;
		spec.resolv_file = resolv;
		if (net_thread) {
			pthread_join(nth, NULL); /* the hook must not race its warm-up */
			net_thread = false;
		}
		/* the tree is mounted (root_hook) while the spawn prepares */
		struct root_job rj = {.fs = &job,
				      .warm = {.mp = mp, .cmd = spec.argv ? spec.argv[0] : NULL,
					       .envp = mz_domain_env(&spec), .lan = nleases > 0},
				      .con = o->console ? &con : NULL, .ctl = &ctl, .dir = dir,
				      .root = mz_store_root(s), .name = o->name,
				      .make_dir = (o->log || o->console) && !nleases,
				      .log = o->log};
		if (E.sp) {
			/* pid 1 waits already, cloned from E.spec: the same but for
			 * the id range, known now; the tree is mounted now too */
			E.spec.uid_base = E.spec.gid_base = base;
			r = root_ready(&rj, err);
			struct mz_spawn *sp = E.sp;
			E.sp = NULL;
			if (r == 0)
				r = mz_domain_spawn_finish(sp, &proc, err);
			else
				mz_domain_spawn_cancel(sp);
		} else {
			spec.root_hook = root_ready;
			spec.root_hook_arg = &rj;
			r = mz_domain_spawn(&spec, &proc, err);
		}
		if (rj.warming)
			pthread_join(rj.warm_th, NULL);
		else if (r == 0)
			run_files_make(&rj);
		mz_trace("spawned");
		mz_debug("start: %s: spawned", o->name);
		spawned = r == 0;
		if (r == 0 && rj.files_r < 0) {
			r = rj.files_r;
			*err = rj.files_err;
			rj.files_err = NULL;
		}
		mz_error_release(&rj.files_err);
	}
	if (r == 0) {
		mz_store *c = lend ? mz_fs_catalog_enter(job.S) : s;
		r = mz_domain_rec_set_running(c, o->name, proc.pid, err);
		if (lend)
			mz_fs_catalog_leave(job.S);
	}
	/* A start that failed says so once it is undone (below): its caller
	 * returns to find nothing of it (nor, with --rm, the domain itself). */
	if (r == 0) {
		mz_trace("running recorded");
		tell(&ready_fd, "ok\n");
		mz_trace_flush(); /* a start's timeline, without waiting for the stop */
		/* the other members of its LANs learn its name: after "ok", a
		 * start does not wait for those N files to be written */
		if (nleases)
			mz_net_refresh_hosts(s, o->name);
		if (con.slave >= 0) {
			close(con.slave); /* init has it; we keep the master */
			con.slave = -1;
		}
		/* An idle domain's host side is this process, times a thousand
		 * domains: while it waits, it keeps one catalog connection (the
		 * file system thread's, lent or its own) and gives back the heap
		 * the start used (and, after a fork, what the parent's left). */
		if (own_s && !lend) {
			mz_store_close(s);
			s = NULL;
		}
		malloc_trim(0);
		mz_cpulat_release(lat);
		r = wait_init(o, &proc, o->console ? &con : NULL, &ctl, status, err);
		mz_cpulat_hold(lat);
		mz_trace("init exited");
		mz_debug("stop: %s: init exited", o->name);
	}

	/* Teardown, in reverse order, whatever happened above. */
	if (spawned) {
		if (r < 0)
			mz_domain_kill(&proc, SIGKILL, NULL);
		mz_error_t e2 cleanup_error = NULL;
		if (mz_domain_cleanup(&proc, &e2) < 0)
			mz_warn("cleanup of domain %s: %s", o->name, e2 ? e2->msg : "");
		if (proc.pidfd >= 0)
			close(proc.pidfd);
	}
	mz_trace("processes and cgroups gone");
	mz_debug("stop: %s: processes and cgroups gone", o->name);
	console_close(&con);
	if (thread) {
		fs_wait(&job, NULL);
		S = job.S;
		mz_error_release(&job.err);
	}
	if (S) {
		/* The server thread ends when the kernel says the mount is gone. */
		if (umount2(mp, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			mz_warn("umount %s: %s", mp, strerror(errno));
		pthread_join(th, NULL);
	} else if (thread) {
		pthread_join(th, NULL); /* it failed to mount, and has returned */
	}
	mz_trace("tree unmounted");
	mz_debug("stop: %s: tree unmounted", o->name);
	if (net_thread)
		pthread_join(nth, NULL);
	/* The last words in the catalog: through our own handle if we kept
	 * one, else the server's, idle now (an open costs a schema read). */
	mz_error_t e3 cleanup_error = NULL;
	mz_store *last = s ? s : S ? mz_fs_store(S) : NULL;
	if (last == NULL && mz_store_open(o->store_root, &s, &e3) == 0)
		last = s;
	bool removed = false;
	if (last == NULL) {
		mz_warn("cannot record that %s stopped: %s", o->name, e3 ? e3->msg : "");
	} else {
		/* One commit for them all (each of its own cost a WAL write);
		 * should it fail to begin, each statement commits alone. */
		bool tx = mz_store_begin(last, &e3) == 0;
		mz_error_release(&e3);
		/* its filter elements go; its veths died with its namespace */
		if (nleases && mz_net_detach(last, o->name, &e3) < 0)
			mz_warn("%s", e3 ? e3->msg : "");
		mz_error_release(&e3);
		/* run --rm: the domain goes, and its tree with it, so there is
		 * nothing to release or to mark stopped.  Failing that, it stays
		 * stopped, for the caller or `mezzo prune` to remove. */
		removed = o->remove && mz_domain_forget(last, o->name, getpid(), &e3) == 0;
		if (o->remove && !removed)
			mz_warn("could not remove domain %s: %s", o->name, e3 ? e3->msg : "");
		mz_error_release(&e3);
		/* the tree is free for the next start, before we are gone */
		bool released = removed || S == NULL || mz_fs_release(S, &e3) == 0;
		if (!released)
			mz_warn("%s", e3 ? e3->msg : "");
		mz_error_release(&e3);
		bool stopped = removed ||
			       mz_domain_rec_set_stopped(last, o->name, r == 0 ? *status : -1, &e3) == 0;
		if (!stopped)
			mz_warn("%s", e3 ? e3->msg : "");
		mz_error_release(&e3);
		if (tx && mz_store_commit(last, &e3) < 0) {
			mz_warn("cannot record that %s stopped: %s", o->name, e3 ? e3->msg : "");
			stopped = removed = false;
		}
		if (removed)
			mz_fs_disown(S); /* its tree is gone: nothing to release */
		if (stopped && released)
			sup_control_close(&ctl, "stopped"); /* down, and recorded so */
	}
	sup_control_close(&ctl, NULL);
	if (removed)
		mz_domain_run_dir_remove(mz_store_root(last), o->name);
	if (o->removed)
		*o->removed = removed;
	mz_fs_stop(S);
	mz_trace("stop recorded");
	mz_debug("stop: %s: recorded", o->name);
	rec_cmd_free(&cmd);
	mz_domain_rec_free(&rec);
	early_free(&E);
	if (own_s)
		mz_store_close(s);
	if (r < 0)
		tell_error(&ready_fd, *err); /* (a start that failed: see above) */
	if (ready_fd >= 0) /* told on every path: never left open */
		close(ready_fd);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	mz_cpulat_close(&own_lat);
	mz_trace_flush(); /* (a detached supervisor ends with _exit) */
	return r;
}

void mz_domain_cgroup_name(const char *store_root, const char *name, char out[160])
{
	/* Cgroups are host-wide, domain names only store-wide: the name gets a
	 * tag of its store, so two stores' domains "web" never share one.  A
	 * tag, not a secret: FNV-1a (SHA-256 would load libcrypto, 0.6 ms). */
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = store_root; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(out, 160, "%s.%08x", name, (unsigned)(h ^ (h >> 32)));
}

struct sweep {
	mz_store *s;
	size_t taglen;
};

/* Whether the group g ("NAME.TAG") is a domain's that the catalog knows. */
static bool sweep_keep(void *arg, const char *g)
{
	struct sweep *w = arg;
	size_t l = strlen(g) - w->taglen;
	char name[160];
	if (l == 0 || l >= sizeof(name))
		return true; /* not a name of ours */
	memcpy(name, g, l);
	name[l] = '\0';
	struct mz_domain_rec rec;
	mz_error_t err cleanup_error = NULL;
	int r = mz_domain_rec_get(w->s, name, &rec, &err);
	if (r == 0)
		mz_domain_rec_free(&rec);
	return !(r < 0 && err && err->code == ENOENT);
}

int mz_domain_sweep_cgroups(mz_store *s)
{
	char tag[160];
	mz_domain_cgroup_name(mz_store_root(s), "", tag);
	struct sweep w = {.s = s, .taglen = strlen(tag)};
	return mz_cg_sweep(tag, sweep_keep, &w);
}

int mz_domain_proc_of(const char *store_root, const char *name, pid_t init_pid,
		      struct mz_domain_proc *out)
{
	memset(out, 0, sizeof(*out));
	out->pid = init_pid;
	out->pidfd = init_pid > 0 ? (int)syscall(SYS_pidfd_open, init_pid, 0) : -1;
	/* runtime.h: a domain's cgroups are "mezzo/CGROUP_NAME" in each hierarchy */
	char cg[160];
	mz_domain_cgroup_name(store_root, name, cg);
	snprintf(out->cgroup, sizeof(out->cgroup), "mezzo/%s", cg);
	return out->pid > 0 && out->pidfd < 0 ? -errno : 0;
}

int mz_domain_reap_orphan(const char *store_root, const char *name, mz_error_t *err)
{
	struct mz_domain_proc p;
	mz_domain_proc_of(store_root, name, 0, &p);
	/* SIGKILL through the cgroup reaches every process, init included. */
	mz_domain_kill(&p, SIGKILL, NULL);
	int r = mz_domain_cleanup(&p, err);
	cleanup_free char *dir = mz_domain_run_dir(store_root, name);
	cleanup_free char *mp = xasprintf("%s/root", dir);
	/* an older mezzo's supervisor mounted the tree here, in the host's
	 * mount namespace: its dead mount (ENOTCONN).  Now each supervisor
	 * mounts in a namespace of its own, which dies with it: nothing here */
	umount2(mp, MNT_DETACH);
	return r;
}
