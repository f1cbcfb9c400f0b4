/*
 * store.h — the host object store (seed 003, section 3.2.1).
 *
 * The store keeps *objects*: variable-size byte containers with a unique id,
 * kept as plain files under <root>/objects so that the host page cache caches
 * them and FUSE passthrough can hand a domain's I/O straight to them.  A
 * *sealed* object carries a SHA-256 of its content and is immutable: identical
 * content is stored once, however many images, versions and trees use it.  A
 * *private* object belongs to exactly one inode of one mutable tree and may be
 * written in place.
 *
 * Above the objects sits the naming data of every file tree, in *layers*:
 *   - a version layer is immutable; an image is a named version;
 *   - a tree layer is mutable and sits on top of a chain of version layers.
 * Each layer holds only what changed relative to its parent (inode rows,
 * directory entries, whiteouts), so making a tree from a version inserts one
 * row (O(1)) and snapshotting a tree moves only its own rows (O(changes)).
 *
 * The catalog of all of this is one SQLite database in WAL mode
 * (<root>/catalog.db).  Object files are created before the catalog row that
 * names them commits and are removed only after that row is gone, so a crash
 * at any moment leaves at worst an unreferenced file that `store gc` removes.
 */
#ifndef MZ_STORE_H
#define MZ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../lib/error.h"
#include "../lib/hash.h"

#define MZ_DEFAULT_ROOT "/var/lib/mezzo"

typedef struct mz_store mz_store;
typedef int64_t mz_oid;  /* global object id, > 0 */
typedef int64_t mz_ino;  /* store-wide inode number, > 0, never reused */
typedef int64_t mz_lid;  /* layer id, > 0 */

/* ---- opening ---------------------------------------------------------- */

/* Resolve the store root: explicit arg, else $MEZZO_ROOT, else the default. */
const char *mz_store_default_root(const char *explicit_root);
/* Open (and create if missing) the store at root. */
int mz_store_open(const char *root, mz_store **out, mz_error_t *err);
/* The catalog schema this build reads and writes (it upgrades older ones,
 * refuses newer ones). */
int mz_store_schema_version(void);
void mz_store_close(mz_store *s);
/* Open the store at root (if it exists: never make one) ahead of need, in a
 * process that will run a command later (a spare of `mezzo serve`): the next
 * mz_store_open of that root in this process takes it instead of opening
 * the catalog again, if its catalog file is still the same. */
void mz_store_preopen(const char *root, const char *const *sql, size_t nsql);
/* The SQL (addresses of the program's string literals) of the statements
 * the stores of this process prepared and have since closed: what a spare
 * of `mezzo serve` prepares ahead (mz_store_preopen's sql). */
size_t mz_store_seen_sql(const char **out, size_t max);
void mz_store_closep(mz_store **s);
#define cleanup_store __attribute__((cleanup(mz_store_closep)))
const char *mz_store_root(mz_store *s);

/* Explicit transactions.  They nest: only the outermost one commits, and an
 * inner one that rolls back undoes only its own work (a savepoint). */
int mz_store_begin(mz_store *s, mz_error_t *err);
int mz_store_commit(mz_store *s, mz_error_t *err);
void mz_store_rollback(mz_store *s);
/* Group commit: with batch on, the outermost commit keeps the transaction
 * open; mz_store_flush() commits all that is pending (a no-op otherwise). */
void mz_store_set_batch(mz_store *s, bool on);
/* Keep blocks allocated for the catalog's WAL to grow into, so that its
 * commits go on when the file system is full (tree servers, as they work). */
void mz_store_keep_wal_room(mz_store *s);
/* Whether object files wait to be unlinked (mz_store_sync does it). */
bool mz_store_unlinks_pending(mz_store *s);
/* Keep object files made ahead of the creates of this handle, by a thread
 * that ends when they stop coming (pool.c): for a tree server. */
void mz_store_set_pool(mz_store *s, bool on);
int mz_store_flush(mz_store *s, mz_error_t *err);
/* How long the open batch has been open (-1: none). */
int64_t mz_store_batch_age_ns(mz_store *s);
/* Make everything done so far durable: flush the batch, fsync the WAL. */
int mz_store_sync(mz_store *s, mz_error_t *err);
/* Give back what the handle caches (prepared statements, page cache), for a
 * long idle time; no-op inside a transaction.  Statements handed out before
 * must not be used after. */
void mz_store_shrink(mz_store *s);

/* ---- objects ---------------------------------------------------------- */

struct mz_object {
	mz_oid id;
	bool sealed;
	uint8_t hash[MZ_HASH_LEN]; /* valid when sealed */
	int64_t size;              /* sealed: exact; private: as last recorded */
	int64_t refs;              /* inode rows that point at it */
};

/* Open an object's file (flags as for open(2); O_CREAT is refused). */
int mz_object_open(mz_store *s, mz_oid id, int flags, mz_error_t *err);
int mz_object_get(mz_store *s, mz_oid id, struct mz_object *out, mz_error_t *err);
/* Path of an object file relative to the store root's objects directory. */
void mz_object_relpath(mz_oid id, char out[32]);
int mz_store_objects_dirfd(mz_store *s);

/* Start a new object: returns an anonymous (O_TMPFILE) file to fill. */
int mz_object_tmpfile(mz_store *s, mz_error_t *err);
/* Seal a filled tmpfile: hash it (or take hash_or_null, already computed while
 * writing), reuse an existing object with that content or link the file in as
 * a new sealed object.  The fd stays the caller's. */
int mz_object_seal_tmpfile(mz_store *s, int fd, const uint8_t *hash_or_null, mz_oid *out,
			   mz_error_t *err);
/* A new empty private object; *fd_out (if not NULL) gets it opened O_RDWR. */
int mz_object_create_private(mz_store *s, mz_oid *out, int *fd_out, mz_error_t *err);
/* A private copy of src (FICLONE where the file system can, else
 * copy_file_range); copies size bytes at most (-1: all). */
int mz_object_copy(mz_store *s, mz_oid src, int64_t size, mz_oid *out, mz_error_t *err);

/* ---- layers: versions, images and trees ------------------------------- */

enum mz_layer_kind { MZ_LAYER_VERSION = 1, MZ_LAYER_TREE = 2 };

struct mz_layer {
	mz_lid id;
	mz_lid parent;  /* 0 for a root layer */
	enum mz_layer_kind kind;
	char name[256]; /* empty when anonymous */
	bool is_image;
	bool building;  /* an import still in progress (or crashed) */
	mz_ino root_ino;
	int64_t created_ns;
	int depth;      /* chain length below and including this layer */
};

int mz_layer_get(mz_store *s, mz_lid id, struct mz_layer *out, mz_error_t *err);
/* Find a layer by name: "image:N", "version:N", "tree:N", or a bare N that
 * must name exactly one of them. */
int mz_layer_resolve(mz_store *s, const char *spec, struct mz_layer *out, mz_error_t *err);
/* Names must be 1-128 chars of [A-Za-z0-9_.-], not starting with '.' or '-'. */
int mz_name_check(const char *name, const char *what, mz_error_t *err);

/* Start a new version layer to fill (state "building", invisible to
 * resolve); parent 0 makes a root layer with a fresh root directory. */
int mz_version_begin(mz_store *s, mz_lid parent, uint32_t root_mode, mz_lid *out,
		     mz_error_t *err);
/* Publish a building version under name (as an image if is_image). */
int mz_version_publish(mz_store *s, mz_lid id, const char *name, bool is_image,
		       mz_error_t *err);

/* A new tree on top of a version, O(1).  name NULL: anonymous (owned by
 * owner_pid and dropped when that process is gone). */
int mz_tree_create(mz_store *s, mz_lid version, const char *name, pid_t owner_pid,
		   mz_lid *out, mz_error_t *err);
/* Move a tree's changes into a new named version below it, O(changes). */
int mz_tree_snapshot(mz_store *s, mz_lid tree, const char *version_name, mz_lid *out,
		     mz_error_t *err);
/* The same for a live tree: the inodes in hot[] are open for writing, so the
 * version gets a copy of their objects and the tree keeps writing its own. */
int mz_tree_snapshot_hot(mz_store *s, mz_lid tree, const char *version_name,
			 const mz_ino *hot, size_t nhot, mz_lid *out, mz_error_t *err);
/* The process serving a tree (0 when none is alive); set it when mounting. */
int mz_layer_owner(mz_store *s, mz_lid id, pid_t *pid, mz_error_t *err);
int mz_layer_set_owner(mz_store *s, mz_lid id, pid_t pid, mz_error_t *err);
/* Claim tree id for process pid, the one that serves it (a transaction of
 * its own, or part of the caller's); EBUSY if another live process has it. */
int mz_layer_claim(mz_store *s, mz_lid id, pid_t pid, mz_error_t *err);
/* Remove a layer's name (images/versions) or a tree; the data goes when
 * nothing else uses it (see mz_store_gc). */
int mz_layer_remove(mz_store *s, mz_lid id, bool force, mz_error_t *err);

/* Iterate layers (all kinds); cb returns non-zero to stop. */
int mz_layer_foreach(mz_store *s, int (*cb)(const struct mz_layer *, void *), void *arg,
		     mz_error_t *err);

/* ---- file trees: naming over a layer chain ---------------------------- */

/* What a directory entry / inode looks like as the store keeps it.  Ids are
 * those the tree's users see (a domain's own uids), never host ids. */
struct mz_inode {
	mz_ino ino;
	mz_lid layer;     /* layer holding the effective row */
	uint32_t mode;
	uint32_t uid, gid;
	uint32_t nlink;
	uint64_t rdev;
	int64_t size;
	int64_t blocks;   /* 512-byte units actually allocated */
	int64_t atime_ns, mtime_ns, ctime_ns;
	mz_oid object;    /* regular files; 0 otherwise */
	bool object_sealed;
	int64_t object_refs;
};

struct mz_dirent {
	mz_ino ino;
	uint32_t mode; /* file type bits */
	char *name;
};

typedef struct mz_view mz_view;

/* Open a view of a layer and its chain.  Writable only for tree layers. */
int mz_view_open(mz_store *s, mz_lid layer, mz_view **out, mz_error_t *err);
void mz_view_close(mz_view *v);
mz_ino mz_view_root(mz_view *v);
mz_lid mz_view_top(mz_view *v);
bool mz_view_writable(mz_view *v);
mz_store *mz_view_store(mz_view *v);
/* Forget cached inode rows (after a failed batch commit). */
void mz_view_invalidate(mz_view *v);
/* Re-read the layer chain (after a snapshot moved the tree onto a new version). */
int mz_view_reload(mz_view *v, mz_error_t *err);

int mz_view_lookup(mz_view *v, mz_ino dir, const char *name, mz_ino *out, mz_error_t *err);
int mz_view_getattr(mz_view *v, mz_ino ino, struct mz_inode *out, mz_error_t *err);
/* The same without a stat of a file's object: its size, blocks and times
 * are the catalog's, stale for an object written since; the mode, ids,
 * links and object are current.  For callers that need only those (an
 * open), to whom the stat was most of a request's work. */
int mz_view_getattr_row(mz_view *v, mz_ino ino, struct mz_inode *out, mz_error_t *err);
/* mz_view_getattr, with fd an open file of object obj (-1: none): if obj is
 * the inode's object, its size and times are read with fstat(fd), no path
 * walk to the object file. */
int mz_view_getattr_fd(mz_view *v, mz_ino ino, struct mz_inode *out, mz_oid obj, int fd,
		       mz_error_t *err);
/* The whole merged listing of dir, sorted by name (stable for a reader that
 * keeps it).  Free with mz_dirents_free. */
int mz_view_readdir(mz_view *v, mz_ino dir, struct mz_dirent **out, size_t *n,
		    mz_error_t *err);
void mz_dirents_free(struct mz_dirent *d, size_t n);
/* Symlink target (malloc'ed, NUL-terminated). */
int mz_view_readlink(mz_view *v, mz_ino ino, char **out, mz_error_t *err);

/* Create an inode and link it at dir/name.  attr gives mode (with type), uid,
 * gid, rdev, times; object for regular files (0: a new empty private object
 * is made); target for symlinks.  Fails with -EEXIST if name exists. */
int mz_view_create(mz_view *v, mz_ino dir, const char *name, const struct mz_inode *attr,
		   mz_oid object, const char *target, struct mz_inode *out, mz_error_t *err);
int mz_view_link(mz_view *v, mz_ino ino, mz_ino dir, const char *name, mz_error_t *err);
/* Remove dir/name; want_dir selects rmdir semantics.  *gone (optional) gets
 * the inode if its last link went; its object is then released. */
int mz_view_unlink(mz_view *v, mz_ino dir, const char *name, bool want_dir, mz_ino *gone,
		   mz_error_t *err);
#define MZ_RENAME_NOREPLACE 1
#define MZ_RENAME_EXCHANGE 2
int mz_view_rename(mz_view *v, mz_ino d1, const char *n1, mz_ino d2, const char *n2,
		   unsigned flags, mz_ino *replaced, mz_error_t *err);

/* Attribute changes: which fields of attr apply. */
#define MZ_SET_MODE (1u << 0)
#define MZ_SET_UID (1u << 1)
#define MZ_SET_GID (1u << 2)
#define MZ_SET_SIZE (1u << 3)
#define MZ_SET_ATIME (1u << 4)
#define MZ_SET_MTIME (1u << 5)
#define MZ_SET_CTIME (1u << 6)
#define MZ_SET_NLINK (1u << 7)
int mz_view_setattr(mz_view *v, mz_ino ino, const struct mz_inode *attr, unsigned mask,
		    mz_error_t *err);
/* Make ino's object writable by this tree: copies it (CoW) unless it is
 * already private to this tree's own row.  keep_bytes limits the copy (0 for
 * an open with O_TRUNC).  Returns the object to write in *out. */
int mz_view_make_writable(mz_view *v, mz_ino ino, int64_t keep_bytes, mz_oid *out,
			  mz_error_t *err);
/* Drop inode rows of this tree's layer that have no links left (after the
 * last opener closed them, and at mount time to recover from a crash). */
int mz_view_reap(mz_view *v, mz_ino ino, mz_error_t *err);
int mz_view_reap_all(mz_view *v, mz_error_t *err);

/* Extended attributes (value malloc'ed).  Flags as setxattr(2). */
int mz_view_getxattr(mz_view *v, mz_ino ino, const char *name, void **val, size_t *len,
		     mz_error_t *err);
int mz_view_setxattr(mz_view *v, mz_ino ino, const char *name, const void *val, size_t len,
		     int flags, mz_error_t *err);
int mz_view_removexattr(mz_view *v, mz_ino ino, const char *name, mz_error_t *err);
/* All names, each NUL-terminated, concatenated (as listxattr(2)). */
int mz_view_listxattr(mz_view *v, mz_ino ino, char **out, size_t *len, mz_error_t *err);

/* ---- domains: their catalog records -------------------------------------- */

/* Host ids of a domain: its slot's range of 65536 ids. */
#define MZ_DOMAIN_ID_BASE 100000u
#define MZ_DOMAIN_ID_COUNT 65536u
#define MZ_DOMAIN_SLOTS 60000

struct mz_domain_rec {
	char name[129];
	mz_lid tree;
	int slot;
	char source[300];          /* the image or version it was made from */
	char *cmd;                 /* argv, NUL-separated, malloc'ed */
	size_t cmd_len;
	int64_t memory, pids, cpu_weight, cpu_quota_us, io_weight;
	int64_t created_ns, started_ns;
	pid_t sup_pid;             /* its live supervisor, 0 if none */
	pid_t init_pid;            /* host pid of its init, when running */
	int exit_status;           /* of the last run: wait status, -1 none */
	/* Services init keeps running beside (or, with no cmd, instead of) the
	 * main command: for each, its name, NUL, the number of its arguments
	 * in decimal, NUL, then each argument and a NUL.  malloc'ed. */
	char *services;
	size_t services_len;
	int init_mode;             /* MZ_INIT_MEZZO or MZ_INIT_IMAGE */
	/* made by `run --rm`: removed when that run ends, or by `mezzo prune`
	 * once nothing supervises it (the run was killed) */
	bool autoremove;
};
#define MZ_INIT_MEZZO 0 /* pid 1 is mezzo-init, running cmd and the services */
#define MZ_INIT_IMAGE 1 /* pid 1 is cmd itself: the image's own init */

/* Make a domain: its tree from version (O(1)) and a free id slot.  In: name,
 * source, cmd, limits, autoremove, and sup_pid if the caller supervises it
 * from birth (`run`: never a moment unclaimed, for `prune` to take; its
 * tree is then claimed by sup_pid too, in the same commit).  Out:
 * tree, slot, created_ns. */
int mz_domain_rec_create(mz_store *s, mz_lid version, struct mz_domain_rec *r,
			 mz_error_t *err);
int mz_domain_rec_get(mz_store *s, const char *name, struct mz_domain_rec *out,
		      mz_error_t *err);
int mz_domain_rec_list(mz_store *s, struct mz_domain_rec **out, size_t *n, mz_error_t *err);
/* A supervisor claims the domain and its tree (EBUSY if another live
 * process has either); *out gets the record as it was before (freed by
 * the caller, zeroed on failure). */
int mz_domain_rec_claim(mz_store *s, const char *name, pid_t sup, struct mz_domain_rec *out,
			mz_error_t *err);
int mz_domain_rec_set_running(mz_store *s, const char *name, pid_t init_pid, mz_error_t *err);
/* Init exited with this wait status; the supervisor lets go. */
int mz_domain_rec_set_stopped(mz_store *s, const char *name, int status, mz_error_t *err);
/* Forget the domain and remove its tree: EBUSY if a live supervisor other
 * than self (0: any) holds it. */
int mz_domain_rec_remove(mz_store *s, const char *name, pid_t self, mz_error_t *err);
/* The services blob of a record: append one; parse all (-EINVAL if it is
 * malformed); the parsed list points into the blob, which must outlive it. */
struct mz_service_list {
	size_t n;
	const char **names;
	char ***argvs;          /* each NULL-terminated */
};
void mz_domain_services_add(char **blob, size_t *len, const char *name, char *const *argv);
int mz_domain_services_parse(const char *blob, size_t len, struct mz_service_list *out);
void mz_service_list_free(struct mz_service_list *l);
void mz_domain_rec_free(struct mz_domain_rec *r);
void mz_domain_recs_free(struct mz_domain_rec *r, size_t n);

/* ---- virtual LANs: their catalog records (src/net/ makes them real) ---- */

/* A LAN: a subnet (IPv4, and IPv6 unless len6 is 0) and what may leave it. */
struct mz_lan_rec {
	int64_t id;                /* > 0, never reused: it names the bridge */
	char name[33];
	uint32_t net4;             /* host byte order */
	int len4;
	uint8_t net6[16];
	int len6;                  /* 0: no IPv6 */
	bool nat;                  /* outbound traffic is masqueraded */
	bool isolated;             /* no route out at all */
	int64_t created_ns;
	int64_t hosts_gen;         /* grows whenever its set of leases changes: the
				      hosts files of its domains name it */
};

/* Insert r (name, subnets, flags); out: id, created_ns.  EEXIST if the name
 * is taken.  Subnets are the caller's to check (src/net/ does). */
int mz_lan_rec_create(mz_store *s, struct mz_lan_rec *r, mz_error_t *err);
int mz_lan_rec_get(mz_store *s, const char *name, struct mz_lan_rec *out, mz_error_t *err);
int mz_lan_rec_get_id(mz_store *s, int64_t id, struct mz_lan_rec *out, mz_error_t *err);
int mz_lan_rec_list(mz_store *s, struct mz_lan_rec **out, size_t *n, mz_error_t *err);
/* Remove a LAN with its leases. */
int mz_lan_rec_remove(mz_store *s, int64_t id, mz_error_t *err);

/* A domain's address on a LAN: handed out once, kept until the domain is
 * removed, so a domain keeps its addresses and MAC across restarts. */
struct mz_lease_rec {
	int64_t id;                /* > 0, never reused: it names the veth */
	int64_t lan;
	char domain[129];
	int nic;                   /* the domain sees it as eth<nic> */
	uint32_t ip4;              /* host byte order */
	uint8_t ip6[16];
	bool has_ip6;
	uint8_t mac[6];
	bool attached;             /* its filter rules may be in the kernel */
	char veth[16];             /* its host end when last attached ("": never) */
	char *rundir;              /* its domain's run directory when last attached */
	int64_t rate_in, rate_out; /* bandwidth limits, bytes/s (0: none) */
};

/* Hand domain's NIC nic the lowest free address of lan (and the IPv6
 * address and MAC made from it), in a transaction of its own (nested in the
 * caller's, if any): two processes never get one address.  ENOSPC when the
 * LAN is full, EEXIST if the domain is on the LAN already or has that NIC. */
int mz_lease_alloc(mz_store *s, const struct mz_lan_rec *lan, const char *domain, int nic,
		   struct mz_lease_rec *out, mz_error_t *err);
/* Leases of a domain (NULL: any), on a LAN (0: any), by domain and NIC. */
int mz_lease_list(mz_store *s, const char *domain, int64_t lan, struct mz_lease_rec **out,
		  size_t *n, mz_error_t *err);
/* The lease is (or is no longer) attached: its filter rules may be in the
 * kernel, for its host end veth.  Attaching records rundir. */
int mz_lease_attach(mz_store *s, int64_t id, const char *veth, const char *rundir,
		    mz_error_t *err);
int mz_lease_detach(mz_store *s, int64_t id, mz_error_t *err);
/* Bandwidth limits (bytes/s, 0: none) of every lease of a domain. */
int mz_lease_set_rates(mz_store *s, const char *domain, int64_t in, int64_t out,
		       mz_error_t *err);
/* Drop every lease and port forward of a domain. */
int mz_lease_forget(mz_store *s, const char *domain, mz_error_t *err);
/* 1 if the domain has a lease or a port forward, 0 if not, or -errno. */
int mz_lease_any(mz_store *s, const char *domain, mz_error_t *err);
void mz_lease_recs_free(struct mz_lease_rec *v, size_t n);

/* A port of the host forwarded to a port of a domain (on its first NIC). */
struct mz_fwd_rec {
	char domain[129];
	int proto;                 /* IPPROTO_TCP or IPPROTO_UDP */
	int host_port, domain_port;
};
/* EEXIST (naming the domain that has it) if the host port is taken. */
int mz_fwd_add(mz_store *s, const struct mz_fwd_rec *f, mz_error_t *err);
/* Forwards of a domain (NULL: all), by protocol and host port. */
int mz_fwd_list(mz_store *s, const char *domain, struct mz_fwd_rec **out, size_t *n,
		mz_error_t *err);

/* ---- maintenance ------------------------------------------------------ */

struct mz_check_report {
	int problems;   /* inconsistencies found */
	int repaired;   /* of those, fixed */
	int garbage;    /* leftovers of crashed processes: not problems, gc food */
};
/* Verify catalog vs object files vs hashes vs refcounts; print each problem
 * to out.  With repair, fix what can be fixed without losing data. */
int mz_store_check(mz_store *s, bool repair, bool verify_hashes, FILE *out,
		   struct mz_check_report *rep, mz_error_t *err);
struct mz_gc_report {
	int64_t layers, objects, bytes, files;
};
int mz_store_gc(mz_store *s, struct mz_gc_report *rep, mz_error_t *err);
struct mz_dedup_report {
	int64_t examined, merged, bytes_saved;
};
int mz_store_dedup(mz_store *s, struct mz_dedup_report *rep, mz_error_t *err);
/* Root, catalog size, counts of objects and layers. */
int mz_store_info(mz_store *s, bool json, FILE *out, mz_error_t *err);
/* Space per layer: print a table (or JSON) to out. */
int mz_store_df(mz_store *s, bool json, FILE *out, mz_error_t *err);

#endif
