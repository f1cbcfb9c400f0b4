/*
 * store.c — opening the store, its catalog schema, transactions.
 *
 * SQLite in WAL mode is the catalog: readers never block the one writer, a
 * transaction is atomic across a kill -9 at any point, and with
 * synchronous=NORMAL a commit costs no fsync (mz_store_sync makes it durable
 * when a caller's fsync asks for it).  Every process that touches the store
 * (CLI, tree servers) opens its own connection; busy_timeout serialises writers.
 */
#include "storeInt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/util.h"

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES('schema', 1), ('next_ino', 2);"
	"CREATE TABLE IF NOT EXISTS object("
	/* AUTOINCREMENT: an id is never handed out twice, so a file whose row
	 * went can be unlinked later without hitting a new object's file. */
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  hash BLOB UNIQUE,"               /* NULL while private */
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  refs INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS layer("
	"  id INTEGER PRIMARY KEY,"
	"  parent INTEGER REFERENCES layer(id),"
	"  kind INTEGER NOT NULL,"          /* 1 version, 2 tree */
	"  name TEXT,"
	"  is_image INTEGER NOT NULL DEFAULT 0,"
	"  building INTEGER NOT NULL DEFAULT 0,"
	"  owner_pid INTEGER NOT NULL DEFAULT 0,"
	"  owner_start INTEGER NOT NULL DEFAULT 0,"
	"  root_ino INTEGER NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  depth INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS layer_name ON layer(kind, name) WHERE name IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS layer_parent ON layer(parent);"
	"CREATE TABLE IF NOT EXISTS inode("
	"  layer INTEGER NOT NULL, ino INTEGER NOT NULL,"
	"  mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
	"  nlink INTEGER NOT NULL, rdev INTEGER NOT NULL DEFAULT 0,"
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  atime INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,"
	"  object INTEGER, target BLOB,"
	"  PRIMARY KEY(layer, ino)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS inode_object ON inode(object) WHERE object IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS dentry("
	"  layer INTEGER NOT NULL, parent INTEGER NOT NULL, name BLOB NOT NULL,"
	"  ino INTEGER NOT NULL, type INTEGER NOT NULL,"  /* ino 0: whiteout */
	"  PRIMARY KEY(layer, parent, name)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS xattr("
	"  layer INTEGER NOT NULL, ino INTEGER NOT NULL, name BLOB NOT NULL,"
	"  value BLOB NOT NULL, PRIMARY KEY(layer, ino, name)) WITHOUT ROWID;"
	/* Domains: a tree, an id range (slot), a configuration and, while one
	 * runs, its supervisor. */
	"CREATE TABLE IF NOT EXISTS domain("
	"  name TEXT PRIMARY KEY,"
	"  tree INTEGER NOT NULL REFERENCES layer(id),"
	"  slot INTEGER NOT NULL UNIQUE,"
	"  source TEXT NOT NULL,"
	"  cmd BLOB NOT NULL,"                 /* argv, NUL-separated */
	"  memory INTEGER NOT NULL DEFAULT 0, pids INTEGER NOT NULL DEFAULT 0,"
	"  cpu_weight INTEGER NOT NULL DEFAULT 0, cpu_quota_us INTEGER NOT NULL DEFAULT 0,"
	"  io_weight INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL, started INTEGER NOT NULL DEFAULT 0,"
	"  sup_pid INTEGER NOT NULL DEFAULT 0, sup_start INTEGER NOT NULL DEFAULT 0,"
	"  init_pid INTEGER NOT NULL DEFAULT 0,"
	"  exit_status INTEGER NOT NULL DEFAULT -1,"
	"  services BLOB NOT NULL DEFAULT x'',"  /* see mz_domain_rec */
	"  init_mode INTEGER NOT NULL DEFAULT 0,"
	"  autoremove INTEGER NOT NULL DEFAULT 0);"
	/* Virtual LANs (src/net/): ids are never reused, because they name
	 * bridges and veths in the kernel, where a crash can leave one behind. */
	"CREATE TABLE IF NOT EXISTS lan("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE,"
	"  net4 INTEGER NOT NULL, len4 INTEGER NOT NULL,"   /* host byte order */
	"  net6 BLOB, len6 INTEGER NOT NULL DEFAULT 0,"     /* len6 0: no IPv6 */
	"  nat INTEGER NOT NULL DEFAULT 0, isolated INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL,"
	"  hosts_gen INTEGER NOT NULL DEFAULT 0);"         /* +1 when its leases change */
	/* A domain's address on a LAN, kept until the domain is removed. */
	"CREATE TABLE IF NOT EXISTS lease("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  lan INTEGER NOT NULL REFERENCES lan(id),"
	"  domain TEXT NOT NULL, nic INTEGER NOT NULL,"   /* ethNIC in the domain */
	"  ip4 INTEGER NOT NULL, ip6 BLOB, mac TEXT NOT NULL,"
	"  attached INTEGER NOT NULL DEFAULT 0,"           /* rules may be in the kernel */
	"  veth TEXT,"                                     /* host end, last attached */
	"  rundir TEXT,"                                   /* where its hosts file is */
	"  hosts_gen INTEGER NOT NULL DEFAULT 0,"          /* unused: hosts files are per set of LANs */
	"  rate_in INTEGER NOT NULL DEFAULT 0,"            /* bytes/s, 0: no limit */
	"  rate_out INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE(lan, ip4), UNIQUE(lan, mac), UNIQUE(lan, domain), UNIQUE(domain, nic));"
	"CREATE TABLE IF NOT EXISTS portfwd("
	"  proto INTEGER NOT NULL, host_port INTEGER NOT NULL,"
	"  domain TEXT NOT NULL, domain_port INTEGER NOT NULL,"
	"  PRIMARY KEY(proto, host_port)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS portfwd_domain ON portfwd(domain);"
	/* Refcounts are kept by the database itself, so no code path can forget. */
	"CREATE TRIGGER IF NOT EXISTS inode_ref_ins AFTER INSERT ON inode"
	"  WHEN NEW.object IS NOT NULL BEGIN"
	"  UPDATE object SET refs = refs + 1 WHERE id = NEW.object; END;"
	"CREATE TRIGGER IF NOT EXISTS inode_ref_del AFTER DELETE ON inode"
	"  WHEN OLD.object IS NOT NULL BEGIN"
	"  UPDATE object SET refs = refs - 1 WHERE id = OLD.object; END;"
	"CREATE TRIGGER IF NOT EXISTS inode_ref_upd AFTER UPDATE OF object ON inode"
	"  WHEN OLD.object IS NOT NEW.object BEGIN"
	"  UPDATE object SET refs = refs - 1 WHERE id = OLD.object;"
	"  UPDATE object SET refs = refs + 1 WHERE id = NEW.object; END;";

static void store_flush_unlinks(mz_store *s);
static int store_sync_wal(mz_store *s, mz_error_t *err);

#define MZ_SCHEMA_VERSION 4
#define MZ_SCHEMA_VERSION_STR "4"

/* What a catalog of an older version needs beyond schema_sql (which makes
 * what is missing, but does not change tables that exist): migrations[i]
 * takes version i + 1 to i + 2.  A new catalog is made whole by schema_sql. */
static const char *const migrations[] = {
	/* 1 -> 2: domain services and init mode */
	"ALTER TABLE domain ADD COLUMN services BLOB NOT NULL DEFAULT x'';"
	"ALTER TABLE domain ADD COLUMN init_mode INTEGER NOT NULL DEFAULT 0;",
	/* 2 -> 3: virtual LANs (new tables only: schema_sql makes them) */
	"",
	/* 3 -> 4: domains of `run --rm` (mezzo prune) */
	"ALTER TABLE domain ADD COLUMN autoremove INTEGER NOT NULL DEFAULT 0;",
};

/* PRAGMA user_version: the schema is made once, not parsed at every open. */
static int schema_version(mz_store *s)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

const char *mz_store_default_root(const char *explicit_root)
{
	if (explicit_root != NULL && *explicit_root)
		return explicit_root;
	const char *e = getenv("MEZZO_ROOT");
	if (e != NULL && *e)
		return e;
	return MZ_DEFAULT_ROOT;
}

int store_dberr(mz_store *s, mz_error_t *err, const char *what)
{
	int rc = sqlite3_extended_errcode(s->db);
	int code = EIO;
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		code = EBUSY;
	else if ((rc & 0xff) == SQLITE_FULL)
		code = ENOSPC;
	else if ((rc & 0xff) == SQLITE_CONSTRAINT)
		code = EEXIST;
	else if ((rc & 0xff) == SQLITE_NOMEM)
		code = ENOMEM;
	/* the extended code tells a busy snapshot from a busy lock, say */
	return mz_error(err, code, "catalog: %s: %s (SQLite %d)", what, sqlite3_errmsg(s->db), rc);
}

int store_row(mz_store *s, sqlite3_stmt *st, void (*from_row)(sqlite3_stmt *, void *), void *out,
	      const char *what, mz_error_t *err)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		from_row(st, out);
	int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_dberr(s, err, what);
	sqlite3_reset(st);
	return r;
}

int store_rows(mz_store *s, sqlite3_stmt *st, size_t elem, void (*from_row)(sqlite3_stmt *, void *),
	       void (*free_rows)(void *, size_t), void **out, size_t *n, const char *what,
	       mz_error_t *err)
{
	char *v = NULL;
	size_t k = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap ? 2 * cap : 8;
			v = xrealloc(v, cap * elem);
		}
		from_row(st, v + k++ * elem);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		if (free_rows)
			free_rows(v, k);
		else
			free(v);
		return store_dberr(s, err, what);
	}
	*out = v;
	*n = k;
	return 0;
}

void mz_store_shrink(mz_store *s)
{
	if (s->tx_depth > 0 || s->batch_open)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(s->stmts) && s->stmts[i].sql; i++) {
		sqlite3_finalize(s->stmts[i].st);
		s->stmts[i].st = NULL;
		s->stmts[i].sql = NULL;
	}
	sqlite3_db_release_memory(s->db);
}

/* The cached statement for sql (by address), prepared now if it is not
 * there; NULL if SQLite refuses it or the cache is full. */
static sqlite3_stmt *stmt_cached(mz_store *s, const char *sql, bool *fresh)
{
	size_t i;
	for (i = 0; i < ARRAY_SIZE(s->stmts) && s->stmts[i].sql != NULL; i++)
		if (s->stmts[i].sql == sql) {
			*fresh = false;
			return s->stmts[i].st;
		}
	sqlite3_stmt *st = NULL;
	if (i == ARRAY_SIZE(s->stmts) ||
	    sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	s->stmts[i] = (struct stmt_slot){.sql = sql, .st = st};
	*fresh = true;
	return st;
}

sqlite3_stmt *store_stmt(mz_store *s, const char *sql)
{
	bool fresh;
	sqlite3_stmt *st = stmt_cached(s, sql, &fresh);
	if (st == NULL) {
		/* bad SQL, or more distinct statements than the cache holds: a
		 * programming error */
		fprintf(stderr, "mezzo: internal error: statement not prepared (%s): %s\n",
			sqlite3_errmsg(s->db), sql);
		abort();
	}
	if (!fresh) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return st;
}

int store_exec(mz_store *s, const char *sql, mz_error_t *err)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int r = mz_error(err, EIO, "catalog: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

int store_step_done(mz_store *s, sqlite3_stmt *st, mz_error_t *err, const char *what)
{
	int rc = sqlite3_step(st);
	int r = rc != SQLITE_DONE && rc != SQLITE_ROW ? store_dberr(s, err, what) : 0;
	/* never left unfinished (a row, or SQLITE_BUSY): see store_step_reset */
	sqlite3_reset(st);
	return r;
}

int store_step_reset(mz_store *s, const char *sql)
{
	sqlite3_stmt *st = store_stmt(s, sql);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

static int store_make_dirs(mz_store *s, mz_error_t *err)
{
	int r = mkdir_p(s->root, 0700);
	if (r < 0)
		return mz_error_sys(err, -r, "cannot create store root %s", s->root);
	s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0)
		return mz_error_sys(err, errno, "cannot open store root %s", s->root);
	/* One canonical name: mounts and sockets are found by it. */
	char *canon = realpath(s->root, NULL);
	if (canon) {
		free(s->root);
		s->root = canon;
	}
	if (mkdirat(s->root_fd, "objects", 0700) < 0 && errno != EEXIST)
		return mz_error_sys(err, errno, "cannot create %s/objects", s->root);
	s->objects_fd = openat(s->root_fd, "objects", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->objects_fd < 0)
		return mz_error_sys(err, errno, "cannot open %s/objects", s->root);
	/* ext4 places a directory's files in its block group, and a group with
	 * much create/delete churn makes each new inode cost a scan of recently
	 * deleted ones (measured: 186 us per create against 7 us).  The top-dir
	 * flag has the 256 subdirectories spread over the disk's groups. */
	int fl = 0;
	if (ioctl(s->objects_fd, FS_IOC_GETFLAGS, &fl) == 0 && !(fl & FS_TOPDIR_FL)) {
		fl |= FS_TOPDIR_FL;
		ioctl(s->objects_fd, FS_IOC_SETFLAGS, &fl);
	}
	/* The subdirectories are made last to first: if the last exists, all do
	 * (and `store check` makes any that went missing since). */
	struct stat st;
	for (int i = 255; i >= 0 && fstatat(s->objects_fd, "00", &st, 0) < 0; i--) {
		char d[12];
		snprintf(d, sizeof(d), "%02x", i);
		if (mkdirat(s->objects_fd, d, 0700) < 0 && errno != EEXIST)
			return mz_error_sys(err, errno, "cannot create %s/objects/%s", s->root, d);
	}
	if (mkdirat(s->root_fd, "run", 0700) < 0 && errno != EEXIST)
		return mz_error_sys(err, errno, "cannot create %s/run", s->root);
	return 0;
}

int mz_store_schema_version(void)
{
	return MZ_SCHEMA_VERSION;
}

/* A store opened ahead of need (mz_store_preopen, by a spare of `mezzo
 * serve`) and the identity of its catalog file then. */
static mz_store *preopened;
static struct stat preopened_db;
static pid_t preopened_by;

/* The store opened ahead, if it is the one asked for and its catalog is
 * still the file it opened (not removed and made again since). */
static mz_store *take_preopened(const char *root)
{
	mz_store *p = __atomic_exchange_n(&preopened, NULL, __ATOMIC_ACQ_REL);
	if (p == NULL)
		return NULL;
	/* SQLite's connection is the opening process's alone (its POSIX locks
	 * are not inherited): a fork (a detached supervisor) opens its own, and
	 * leaves this one alone, not even closed. */
	if (getpid() != preopened_by)
		return NULL;
	struct stat want, have, db;
	if (stat(root, &want) == 0 && fstat(p->root_fd, &have) == 0 &&
	    want.st_dev == have.st_dev && want.st_ino == have.st_ino &&
	    fstatat(p->root_fd, "catalog.db", &db, 0) == 0 && db.st_dev == preopened_db.st_dev &&
	    db.st_ino == preopened_db.st_ino)
		return p;
	mz_store_close(p);
	return NULL;
}

/* The program's own image, where the SQL of every statement is (a string
 * literal: the cache's key is its address). */
extern const char __executable_start[], _end[];

void mz_store_preopen(const char *root, const char *const *sql, size_t nsql)
{
	root = mz_store_default_root(root);
	cleanup_free char *dbpath = xasprintf("%s/catalog.db", root);
	struct stat db;
	mz_store *s = NULL;
	/* never make a store here: only open one that exists */
	if (stat(dbpath, &db) < 0 || mz_store_open(root, &s, NULL) < 0)
		return;
	/* Statements that earlier commands prepared, prepared now (10-40 us
	 * each, cold): addresses reported by other forks of this process, so
	 * taken only inside the program's image, and only if SQLite takes them. */
	for (size_t i = 0; i < nsql; i++) {
		const char *q = sql[i];
		bool fresh;
		if (q >= __executable_start && q < _end && memchr(q, '\0', (size_t)(_end - q)))
			stmt_cached(s, q, &fresh);
	}
	preopened_db = db;
	preopened_by = getpid();
	mz_store_close(__atomic_exchange_n(&preopened, s, __ATOMIC_ACQ_REL));
}

/* The statements the stores of this process prepared, as they close. */
static const char *seen_sql[128];
static size_t seen_n;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static void remember_sql(const mz_store *s)
{
	pthread_mutex_lock(&seen_lock);
	for (size_t i = 0; i < ARRAY_SIZE(s->stmts) && s->stmts[i].sql; i++) {
		size_t k = 0;
		while (k < seen_n && seen_sql[k] != s->stmts[i].sql)
			k++;
		if (k == seen_n && seen_n < ARRAY_SIZE(seen_sql))
			seen_sql[seen_n++] = s->stmts[i].sql;
	}
	pthread_mutex_unlock(&seen_lock);
}

size_t mz_store_seen_sql(const char **out, size_t max)
{
	pthread_mutex_lock(&seen_lock);
	size_t n = seen_n < max ? seen_n : max;
	memcpy(out, seen_sql, n * sizeof(*out));
	pthread_mutex_unlock(&seen_lock);
	return n;
}

int mz_store_open(const char *root, mz_store **out, mz_error_t *err)
{
	mz_store *pre = __atomic_load_n(&preopened, __ATOMIC_ACQUIRE) ? take_preopened(mz_store_default_root(root)) : NULL;
	if (pre) {
		mz_debug("store: %s: catalog opened ahead", pre->root);
		*out = pre;
		return 0;
	}
	mz_store *s = xcalloc(1, sizeof(*s));
	s->root_fd = s->objects_fd = -1;
	s->root = xstrdup(mz_store_default_root(root));
	int r = store_make_dirs(s, err);
	if (r < 0) {
		mz_store_close(s);
		return r;
	}
	cleanup_free char *dbpath = xasprintf("%s/catalog.db", s->root);
	if (sqlite3_open_v2(dbpath, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		r = mz_error(err, EIO, "cannot open catalog %s: %s", dbpath,
			     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		mz_store_close(s);
		return r;
	}
	sqlite3_busy_timeout(s->db, MZ_STORE_BUSY_MS);
	r = store_exec(s,
		       "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		       "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-4096;",
		       err);
	/* Many short-lived processes open the catalog (every CLI command, every
	 * supervisor): the last one to close must not checkpoint and delete the
	 * WAL each time, only for the next one to recreate it and fsync the
	 * directory.  Checkpoints still happen as the WAL grows. */
	int one = 1;
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &one);
	int have;
	if (r == 0 && (have = schema_version(s)) != MZ_SCHEMA_VERSION) {
		r = store_exec(s, "BEGIN IMMEDIATE", err);
		/* read again under the lock: another process may have done it */
		if (r == 0 && (have = schema_version(s)) > MZ_SCHEMA_VERSION)
			r = mz_error(err, EPROTO,
				     "the catalog is of schema version %d, newer than this "
				     "mezzo's %d: use a newer mezzo", have, MZ_SCHEMA_VERSION);
		for (int v = have; r == 0 && v >= 1 && v < MZ_SCHEMA_VERSION; v++)
			r = store_exec(s, migrations[v - 1], err);
		if (r == 0) {
			r = store_exec(s, schema_sql, err);
			if (r == 0)
				r = store_exec(s, "PRAGMA user_version = " MZ_SCHEMA_VERSION_STR, err);
			r = r == 0 ? store_exec(s, "COMMIT", err)
				   : (store_exec(s, "ROLLBACK", NULL), r);
		}
	}
	if (r < 0) {
		mz_error_wrap(err, "store %s", s->root);
		mz_store_close(s);
		return r;
	}
	*out = s;
	return 0;
}

/* Every process that finds no other one holding the catalog open rebuilds
 * SQLite's WAL index by reading the whole WAL: after an image import that was
 * 640 page reads, 4 ms, at each of the several opens of a `mezzo run`.  So the
 * process that leaves a big WAL behind folds it into the database and
 * truncates it (a no-op while someone reads; they will meet it again). */
#define WAL_TRIM_BYTES (256 << 10)
static void store_trim_wal(mz_store *s)
{
	struct stat st;
	if (fstatat(s->root_fd, "catalog.db-wal", &st, 0) < 0 || st.st_size < WAL_TRIM_BYTES)
		return;
	sqlite3_busy_timeout(s->db, 0);
	int rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		mz_debug("store: checkpoint at close: %s", sqlite3_errmsg(s->db));
}

/* Blocks kept allocated past the WAL's end (FALLOC_FL_KEEP_SIZE: the file's
 * size, and so SQLite's view of it, stays as it is).  SQLite appends a
 * commit's pages to the WAL and starts again from its beginning after a
 * checkpoint, so with these blocks in place a commit needs no free block:
 * when a domain's writes (which go straight to object files) fill the file
 * system, the changes a tree server has acknowledged still commit, and so do
 * the deletions that free space again (src/fs/space.c).  A truncating
 * checkpoint (store_trim_wal) gives the blocks back; tree servers take them
 * again as they work. */
#define WAL_ROOM (8 << 20)
void mz_store_keep_wal_room(mz_store *s)
{
	cleanup_close int fd = openat(s->root_fd, "catalog.db-wal", O_RDWR | O_CLOEXEC);
	if (fd >= 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, WAL_ROOM) < 0)
		mz_debug("store: cannot keep room for the WAL: %s", strerror(errno));
}

void mz_store_close(mz_store *s)
{
	if (s == NULL)
		return;
	store_pool_free(s);
	if (s->db && s->tx_depth == 0) {
		mz_store_flush(s, NULL);
		store_flush_unlinks(s);
		store_trim_wal(s);
	}
	remember_sql(s);
	for (size_t i = 0; i < ARRAY_SIZE(s->stmts) && s->stmts[i].sql; i++) {
		/* A statement that stepped through a whole table or index is
		 * a listing, a missing index, or a filter SQLite cannot use
		 * one for ("? = 0 OR x = ?", one of which cost a tree server
		 * 12 % of an untar): said under MEZZO_DEBUG. */
		int scans = sqlite3_stmt_status(s->stmts[i].st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0);
		if (scans > 0)
			mz_debug("catalog: %d full-scan steps in: %s", scans, s->stmts[i].sql);
		sqlite3_finalize(s->stmts[i].st);
	}
	if (s->db)
		sqlite3_close(s->db);
	if (s->objects_fd >= 0)
		close(s->objects_fd);
	if (s->root_fd >= 0)
		close(s->root_fd);
	free(s->pending);
	free(s->root);
	free(s);
}

void mz_store_closep(mz_store **s)
{
	mz_store_close(*s);
	*s = NULL;
}

const char *mz_store_root(mz_store *s)
{
	return s->root;
}

int mz_store_objects_dirfd(mz_store *s)
{
	return s->objects_fd;
}

/*
 * Transactions nest: the outermost is BEGIN IMMEDIATE (taking the write lock
 * at once, so it never fails half-way on a lock upgrade), the inner ones are
 * savepoints, so a nested call that fails (say with EEXIST) undoes only its
 * own work and its caller's transaction goes on.
 *
 * In batch mode (a tree server under load) the outermost level is a savepoint
 * too, inside one long transaction that mz_store_flush() commits: many small
 * operations share one commit, as a journaling file system groups its
 * updates.  Each operation stays atomic; what was not flushed is lost by a
 * crash as a whole, never in part, and mz_store_sync() flushes first.
 */
static int tx_exec(mz_store *s, const char *sql, mz_error_t *err)
{
	/* A rollback may undo the catalog's hand-out of our inode block. */
	if (strncmp(sql, "ROLLBACK", 8) == 0)
		s->ino_next = s->ino_end = 0;
	sqlite3_stmt *st = store_stmt(s, sql);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_dberr(s, err, sql);
	return 0;
}

void mz_store_set_batch(mz_store *s, bool on)
{
	if (!on)
		mz_store_flush(s, NULL);
	s->batching = on;
}

int mz_store_begin(mz_store *s, mz_error_t *err)
{
	if (s->tx_depth >= MZ_TX_MAX)
		return mz_error(err, EOVERFLOW, "internal: transactions nested too deep");
	int r;
	if (s->tx_depth == 0 && s->batching && !s->batch_open) {
		if ((r = tx_exec(s, "BEGIN IMMEDIATE", err)) < 0)
			return r;
		s->batch_open = true;
		s->batch_start_ns = mono_ns();
		s->tx_failed = false;
	}
	bool outer = s->tx_depth == 0 && !s->batch_open;
	if ((r = tx_exec(s, outer ? "BEGIN IMMEDIATE" : "SAVEPOINT mz", err)) < 0)
		return r;
	if (outer)
		s->tx_failed = false;
	s->tx_pending[s->tx_depth++] = s->pending_n;
	return 0;
}

/* The real COMMIT of the outermost transaction (or batch). */
static int tx_commit(mz_store *s, mz_error_t *err)
{
	if (s->tx_failed) {
		tx_exec(s, "ROLLBACK", NULL);
		s->pending_n = s->pending_committed;
		return mz_error(err, EIO, "catalog: transaction failed and was rolled back");
	}
	int r = tx_exec(s, "COMMIT", err);
	if (r < 0) {
		tx_exec(s, "ROLLBACK", NULL);
		s->pending_n = s->pending_committed;
		return r;
	}
	s->pending_committed = s->pending_n;
	if (s->pending_n >= 256)
		store_flush_unlinks(s);
	store_pool_reserve(s); /* outside any transaction now: ids for the pool */
	return 0;
}

int mz_store_commit(mz_store *s, mz_error_t *err)
{
	if (s->tx_depth <= 0)
		return mz_error(err, EINVAL, "internal: commit without begin");
	if (--s->tx_depth > 0 || s->batch_open) {
		int r = tx_exec(s, "RELEASE mz", err);
		if (r < 0)
			s->tx_failed = true;
		return r;
	}
	return tx_commit(s, err);
}

void mz_store_rollback(mz_store *s)
{
	if (s->tx_depth <= 0)
		return;
	s->pending_n = s->tx_pending[--s->tx_depth];
	if (s->tx_depth > 0 || s->batch_open) {
		if (tx_exec(s, "ROLLBACK TO mz", NULL) < 0 || tx_exec(s, "RELEASE mz", NULL) < 0)
			s->tx_failed = true;
		return;
	}
	tx_exec(s, "ROLLBACK", NULL);
	s->pending_n = s->pending_committed;
}

int mz_store_flush(mz_store *s, mz_error_t *err)
{
	if (!s->batch_open || s->tx_depth > 0)
		return 0;
	s->batch_open = false;
	return tx_commit(s, err);
}

int64_t mz_store_batch_age_ns(mz_store *s)
{
	return s->batch_open ? mono_ns() - s->batch_start_ns : -1;
}

void store_defer_unlink(mz_store *s, mz_oid id)
{
	if (s->pending_n == s->pending_cap) {
		s->pending_cap = s->pending_cap ? 2 * s->pending_cap : 16;
		s->pending = xrealloc(s->pending, s->pending_cap * sizeof(*s->pending));
	}
	s->pending[s->pending_n++] = id;
}

/*
 * Object files whose rows are gone are unlinked in batches, and only once the
 * commits that dropped their rows are on disk (a WAL sync): after a power cut
 * no row may come back naming a missing file.  A crash before the unlink
 * leaves files without rows, which gc removes.
 */
static void store_flush_unlinks(mz_store *s)
{
	if (s->pending_committed == 0 || store_sync_wal(s, NULL) < 0)
		return;
	sqlite3_stmt *st = store_stmt(s, "SELECT 1 FROM object WHERE id = ?");
	for (size_t i = 0; i < s->pending_committed; i++) {
		/* Never the file of a row that exists (defence in depth). */
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, s->pending[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			continue;
		char rel[32];
		mz_object_relpath(s->pending[i], rel);
		unlinkat(s->objects_fd, rel, 0);
	}
	sqlite3_reset(st);
	memmove(s->pending, s->pending + s->pending_committed,
		(s->pending_n - s->pending_committed) * sizeof(*s->pending));
	s->pending_n -= s->pending_committed;
	s->pending_committed = 0;
}

static int store_sync_wal(mz_store *s, mz_error_t *err)
{
	/* With synchronous=NORMAL a commit is in the WAL but maybe not on disk:
	 * fsync the WAL file itself, which is exactly what FULL would do. */
	cleanup_close int fd = openat(s->root_fd, "catalog.db-wal", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return mz_error_sys(err, errno, "cannot open catalog WAL");
	}
	if (fdatasync(fd) < 0)
		return mz_error_sys(err, errno, "cannot sync catalog WAL");
	return 0;
}

bool mz_store_unlinks_pending(mz_store *s)
{
	return s->pending_n > 0;
}

int mz_store_sync(mz_store *s, mz_error_t *err)
{
	int r = mz_store_flush(s, err);
	if (r < 0)
		return r;
	r = store_sync_wal(s, err);
	if (r == 0 && s->tx_depth == 0)
		store_flush_unlinks(s);
	return r;
}

/* Inode numbers come from the catalog in blocks, so a create does not touch
 * the meta row each time.  A block taken by a transaction that rolls back is
 * forgotten at every rollback (see tx_exec); one taken by a process that
 * dies is skipped (numbers are never reused, only unused). */
int store_alloc_ino(mz_store *s, mz_ino *out, mz_error_t *err)
{
	if (s->ino_next == 0 || s->ino_next >= s->ino_end) {
		sqlite3_stmt *st = store_stmt(
			s, "UPDATE meta SET value = value + 256 WHERE key = 'next_ino' "
			   "RETURNING value - 256");
		if (sqlite3_step(st) != SQLITE_ROW)
			return store_dberr(s, err, "allocate inode");
		s->ino_next = sqlite3_column_int64(st, 0);
		s->ino_end = s->ino_next + 256;
		sqlite3_reset(st);
	}
	*out = s->ino_next++;
	return 0;
}

/* Field 22 of /proc/PID/stat (start time), or -1 if the process is gone or
 * a zombie (dead, only waiting to be reaped). */
int64_t store_pid_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return -1;
	/* p points at the end of field 2; fields are separated by one space. */
	int field = 2;
	for (; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoll(p, NULL, 10);
}

bool store_owner_alive(pid_t pid, int64_t start)
{
	if (pid <= 0)
		return false;
	int64_t st = store_pid_starttime(pid);
	return st >= 0 && st == start;
}
