/*
 * lans.c — the catalog records of virtual LANs: LANs, leases, port forwards.
 *
 * The catalog is the one memory of which address belongs to whom, so it is
 * where addresses are handed out: inside a write transaction (BEGIN
 * IMMEDIATE takes the catalog's write lock), two mezzo processes can never
 * pick one address, and UNIQUE constraints would refuse it if they did.  A
 * lease lives as long as its domain, so a domain keeps its addresses and MAC
 * across restarts and a restart never hands out a live address.
 *
 * Addresses are kept as numbers (IPv4 in host byte order, IPv6 as 16 bytes)
 * so that "the lowest free address" is one indexed query.  The kernel side
 * of all this (bridges, veths, nftables) is src/net/.
 */
#include "storeInt.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/util.h"

/* ---- LANs ------------------------------------------------------------- */

#define LAN_COLS "id, name, net4, len4, net6, len6, nat, isolated, created, hosts_gen"

static void lan_from_row(sqlite3_stmt *st, void *row)
{
	struct mz_lan_rec *r = row;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	snprintf(r->name, sizeof(r->name), "%s", (const char *)sqlite3_column_text(st, 1));
	r->net4 = (uint32_t)sqlite3_column_int64(st, 2);
	r->len4 = sqlite3_column_int(st, 3);
	if (sqlite3_column_bytes(st, 4) == 16)
		memcpy(r->net6, sqlite3_column_blob(st, 4), 16);
	r->len6 = sqlite3_column_int(st, 5);
	if (sqlite3_column_bytes(st, 4) != 16)
		r->len6 = 0;
	r->nat = sqlite3_column_int(st, 6) != 0;
	r->isolated = sqlite3_column_int(st, 7) != 0;
	r->created_ns = sqlite3_column_int64(st, 8);
	r->hosts_gen = sqlite3_column_int64(st, 9);
}

int mz_lan_rec_create(mz_store *s, struct mz_lan_rec *r, mz_error_t *err)
{
	int rc = mz_store_begin(s, err);
	if (rc < 0)
		return rc;
	struct mz_lan_rec old;
	if (mz_lan_rec_get(s, r->name, &old, NULL) == 0) {
		mz_store_rollback(s);
		return mz_error(err, EEXIST, "a LAN named '%s' already exists", r->name);
	}
	r->created_ns = now_ns();
	sqlite3_stmt *st = store_stmt(
		s, "INSERT INTO lan(name, net4, len4, net6, len6, nat, isolated, created) "
		   "VALUES (?,?,?,?,?,?,?,?) RETURNING id");
	sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->net4);
	sqlite3_bind_int(st, 3, r->len4);
	if (r->len6)
		sqlite3_bind_blob(st, 4, r->net6, 16, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->len6);
	sqlite3_bind_int(st, 6, r->nat);
	sqlite3_bind_int(st, 7, r->isolated);
	sqlite3_bind_int64(st, 8, r->created_ns);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_dberr(s, err, "insert LAN");
		sqlite3_reset(st);
		mz_store_rollback(s);
		return rc;
	}
	r->id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return mz_store_commit(s, err);
}

static int lan_get(mz_store *s, sqlite3_stmt *st, struct mz_lan_rec *out, mz_error_t *err,
		   const char *what)
{
	int r = store_row(s, st, lan_from_row, out, "read LAN", err);
	if (r == 0)
		return mz_error(err, ENOENT, "no LAN %s (see 'mezzo net ls')", what);
	return r < 0 ? r : 0;
}

int mz_lan_rec_get(mz_store *s, const char *name, struct mz_lan_rec *out, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT " LAN_COLS " FROM lan WHERE name = ?");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	char what[64];
	snprintf(what, sizeof(what), "named '%.40s'", name);
	return lan_get(s, st, out, err, what);
}

int mz_lan_rec_get_id(mz_store *s, int64_t id, struct mz_lan_rec *out, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT " LAN_COLS " FROM lan WHERE id = ?");
	sqlite3_bind_int64(st, 1, id);
	char what[32];
	snprintf(what, sizeof(what), "with id %lld", (long long)id);
	return lan_get(s, st, out, err, what);
}

int mz_lan_rec_list(mz_store *s, struct mz_lan_rec **out, size_t *n, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT " LAN_COLS " FROM lan ORDER BY name");
	return store_rows(s, st, sizeof(**out), lan_from_row, NULL, (void **)out, n, "list LANs",
			  err);
}

int mz_lan_rec_remove(mz_store *s, int64_t id, mz_error_t *err)
{
	int rc = mz_store_begin(s, err);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = store_stmt(s, "DELETE FROM lease WHERE lan = ?");
	sqlite3_bind_int64(st, 1, id);
	if ((rc = store_step_done(s, st, err, "delete the LAN's leases")) == 0) {
		st = store_stmt(s, "DELETE FROM lan WHERE id = ?");
		sqlite3_bind_int64(st, 1, id);
		rc = store_step_done(s, st, err, "delete LAN");
	}
	/* Its members' hosts files on their other LANs change: rare enough
	 * to have every LAN's members rewrite theirs. */
	if (rc == 0)
		rc = store_exec(s, "UPDATE lan SET hosts_gen = hosts_gen + 1", err);
	if (rc < 0) {
		mz_store_rollback(s);
		return rc;
	}
	return mz_store_commit(s, err);
}

/* ---- leases ----------------------------------------------------------- */

#define LEASE_COLS                                                                      \
	"l.id, l.lan, l.domain, l.nic, l.ip4, l.ip6, l.mac, l.attached, l.rundir, "       \
	"l.veth, l.rate_in, l.rate_out"
#define LEASE_FROM " FROM lease l "

static void lease_from_row(sqlite3_stmt *st, void *row)
{
	struct mz_lease_rec *r = row;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	r->lan = sqlite3_column_int64(st, 1);
	snprintf(r->domain, sizeof(r->domain), "%s", (const char *)sqlite3_column_text(st, 2));
	r->nic = sqlite3_column_int(st, 3);
	r->ip4 = (uint32_t)sqlite3_column_int64(st, 4);
	if (sqlite3_column_bytes(st, 5) == 16) {
		memcpy(r->ip6, sqlite3_column_blob(st, 5), 16);
		r->has_ip6 = true;
	}
	unsigned m[6];
	const char *mac = (const char *)sqlite3_column_text(st, 6);
	if (mac && sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6)
		for (int i = 0; i < 6; i++)
			r->mac[i] = (uint8_t)m[i];
	r->attached = sqlite3_column_int(st, 7) != 0;
	const char *rd = (const char *)sqlite3_column_text(st, 8);
	r->rundir = rd ? xstrdup(rd) : NULL;
	const char *veth = (const char *)sqlite3_column_text(st, 9);
	snprintf(r->veth, sizeof(r->veth), "%s", veth ? veth : "");
	r->rate_in = sqlite3_column_int64(st, 10);
	r->rate_out = sqlite3_column_int64(st, 11);
}

void mz_lease_recs_free(struct mz_lease_rec *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].rundir);
	free(v);
}

/* Is there a lease matching a one-parameter-pair query? */
static int lease_exists(mz_store *s, sqlite3_stmt *st, bool *yes, mz_error_t *err)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_dberr(s, err, "read leases");
	*yes = rc == SQLITE_ROW;
	return 0;
}

static int lease_alloc_tx(mz_store *s, const struct mz_lan_rec *lan, const char *domain,
			  int nic, struct mz_lease_rec *out, mz_error_t *err)
{
	bool taken = false;
	sqlite3_stmt *st = store_stmt(s, "SELECT 1 FROM lease WHERE lan = ? AND domain = ?");
	sqlite3_bind_int64(st, 1, lan->id);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	int rc = lease_exists(s, st, &taken, err);
	if (rc < 0)
		return rc;
	if (taken)
		return mz_error(err, EEXIST, "domain '%s' is on LAN '%s' already", domain, lan->name);
	st = store_stmt(s, "SELECT 1 FROM lease WHERE domain = ? AND nic = ?");
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, nic);
	if ((rc = lease_exists(s, st, &taken, err)) < 0)
		return rc;
	if (taken)
		return mz_error(err, EEXIST, "domain '%s' has an eth%d already", domain, nic);

	/* .0 is the network, .1 the host's bridge, the last the broadcast. */
	uint64_t size = 1ull << (32 - lan->len4);
	int64_t first = (int64_t)lan->net4 + 2, last = (int64_t)lan->net4 + (int64_t)size - 2;
	/* The lowest free address: the first if free, else the lowest one
	 * after a taken one that is free (the leases' UNIQUE(lan, ip4) index
	 * makes both lookups cheap). */
	st = store_stmt(s, "SELECT CASE WHEN NOT EXISTS "
			   "(SELECT 1 FROM lease WHERE lan = ?1 AND ip4 = ?2) THEN ?2 "
			   "ELSE (SELECT MIN(l.ip4) + 1 FROM lease l WHERE l.lan = ?1 AND "
			   "NOT EXISTS (SELECT 1 FROM lease m WHERE m.lan = ?1 AND "
			   "m.ip4 = l.ip4 + 1)) END");
	sqlite3_bind_int64(st, 1, lan->id);
	sqlite3_bind_int64(st, 2, first);
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_dberr(s, err, "find a free address");
	int64_t ip = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (ip < first || ip > last)
		return mz_error(err, ENOSPC, "LAN '%s' is full: all %lld addresses are leased",
				lan->name, (long long)(last - first + 1));

	memset(out, 0, sizeof(*out));
	out->lan = lan->id;
	snprintf(out->domain, sizeof(out->domain), "%s", domain);
	out->nic = nic;
	out->ip4 = (uint32_t)ip;
	/* The IPv6 address has the IPv4 address's host number, the MAC its
	 * four bytes behind 02:6d ("m", locally administered): unique on the
	 * LAN because the IPv4 address is, and readable. */
	if (lan->len6) {
		uint64_t carry = out->ip4 - lan->net4;
		memcpy(out->ip6, lan->net6, 16);
		for (int i = 15; i >= 0 && carry; i--) {
			carry += out->ip6[i];
			out->ip6[i] = (uint8_t)carry;
			carry >>= 8;
		}
		out->has_ip6 = true;
	}
	uint8_t mac[6] = {0x02, 0x6d, (uint8_t)(ip >> 24), (uint8_t)(ip >> 16), (uint8_t)(ip >> 8),
			  (uint8_t)ip};
	memcpy(out->mac, mac, 6);
	char mactxt[18];
	snprintf(mactxt, sizeof(mactxt), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);

	st = store_stmt(s, "INSERT INTO lease(lan, domain, nic, ip4, ip6, mac) "
			   "VALUES (?,?,?,?,?,?) RETURNING id");
	sqlite3_bind_int64(st, 1, lan->id);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, nic);
	sqlite3_bind_int64(st, 4, out->ip4);
	if (out->has_ip6)
		sqlite3_bind_blob(st, 5, out->ip6, 16, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, mactxt, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = store_dberr(s, err, "insert lease");
		sqlite3_reset(st);
		return rc;
	}
	out->id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	st = store_stmt(s, "UPDATE lan SET hosts_gen = hosts_gen + 1 WHERE id = ?");
	sqlite3_bind_int64(st, 1, lan->id);
	return store_step_done(s, st, err, "update LAN");
}

int mz_lease_alloc(mz_store *s, const struct mz_lan_rec *lan, const char *domain, int nic,
		   struct mz_lease_rec *out, mz_error_t *err)
{
	if (lan->len4 < 8 || lan->len4 > 30)
		return mz_error(err, EINVAL, "LAN '%s' has a bad prefix length /%d", lan->name,
				lan->len4);
	int rc = mz_store_begin(s, err);
	if (rc < 0)
		return rc;
	if ((rc = lease_alloc_tx(s, lan, domain, nic, out, err)) < 0) {
		mz_store_rollback(s);
		return rc;
	}
	return mz_store_commit(s, err);
}

static void leases_free(void *v, size_t n)
{
	mz_lease_recs_free(v, n);
}

static int lease_rows(mz_store *s, sqlite3_stmt *st, struct mz_lease_rec **out, size_t *n,
		      mz_error_t *err)
{
	return store_rows(s, st, sizeof(**out), lease_from_row, leases_free, (void **)out, n,
			  "list leases", err);
}

int mz_lease_list(mz_store *s, const char *domain, int64_t lan, struct mz_lease_rec **out,
		  size_t *n, mz_error_t *err)
{
	/* One statement per filter, not "(?1 IS NULL OR l.domain = ?1) AND
	 * ...": SQLite plans that as a scan of every lease (EXPLAIN QUERY
	 * PLAN), where these search the (domain, nic) and (lan, domain)
	 * indexes; a start on a LAN of N members lists leases several times. */
	static const char *const sql[4] = {
		"SELECT " LEASE_COLS LEASE_FROM "ORDER BY l.domain, l.nic",
		"SELECT " LEASE_COLS LEASE_FROM "WHERE l.domain = ?1 ORDER BY l.domain, l.nic",
		"SELECT " LEASE_COLS LEASE_FROM "WHERE l.lan = ?2 ORDER BY l.domain, l.nic",
		"SELECT " LEASE_COLS LEASE_FROM
		"WHERE l.domain = ?1 AND l.lan = ?2 ORDER BY l.domain, l.nic",
	};
	sqlite3_stmt *st = store_stmt(s, sql[(domain ? 1 : 0) | (lan ? 2 : 0)]);
	if (domain)
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	if (lan)
		sqlite3_bind_int64(st, 2, lan);
	return lease_rows(s, st, out, n, err);
}

int mz_lease_attach(mz_store *s, int64_t id, const char *veth, const char *rundir,
		    mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(
		s, "UPDATE lease SET attached = 1, veth = ?, rundir = ? WHERE id = ?");
	sqlite3_bind_text(st, 1, veth, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rundir, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	return store_step_done(s, st, err, "attach lease");
}

int mz_lease_detach(mz_store *s, int64_t id, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "UPDATE lease SET attached = 0 WHERE id = ?");
	sqlite3_bind_int64(st, 1, id);
	return store_step_done(s, st, err, "detach lease");
}

int mz_lease_set_rates(mz_store *s, const char *domain, int64_t in, int64_t out,
		       mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "UPDATE lease SET rate_in = ?, rate_out = ? WHERE domain = ?");
	sqlite3_bind_int64(st, 1, in);
	sqlite3_bind_int64(st, 2, out);
	sqlite3_bind_text(st, 3, domain, -1, SQLITE_STATIC);
	return store_step_done(s, st, err, "set rates");
}

int mz_lease_any(mz_store *s, const char *domain, mz_error_t *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT EXISTS(SELECT 1 FROM lease WHERE domain = ?1) "
					 "OR EXISTS(SELECT 1 FROM portfwd WHERE domain = ?1)");
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		return store_dberr(s, err, "look for leases");
	int any = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return any;
}

int mz_lease_forget(mz_store *s, const char *domain, mz_error_t *err)
{
	int rc = mz_store_begin(s, err);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = store_stmt(s, "UPDATE lan SET hosts_gen = hosts_gen + 1 WHERE id IN "
					 "(SELECT lan FROM lease WHERE domain = ?)");
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	if ((rc = store_step_done(s, st, err, "update LANs")) == 0) {
		st = store_stmt(s, "DELETE FROM lease WHERE domain = ?");
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
		rc = store_step_done(s, st, err, "delete leases");
	}
	if (rc == 0) {
		st = store_stmt(s, "DELETE FROM portfwd WHERE domain = ?");
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
		rc = store_step_done(s, st, err, "delete port forwards");
	}
	if (rc < 0) {
		mz_store_rollback(s);
		return rc;
	}
	return mz_store_commit(s, err);
}

/* ---- port forwards ---------------------------------------------------- */

static const char *proto_name(int proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

int mz_fwd_add(mz_store *s, const struct mz_fwd_rec *f, mz_error_t *err)
{
	int rc = mz_store_begin(s, err);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = store_stmt(s, "SELECT domain FROM portfwd WHERE proto = ? AND host_port = ?");
	sqlite3_bind_int(st, 1, f->proto);
	sqlite3_bind_int(st, 2, f->host_port);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = mz_error(err, EEXIST, "host port %d/%s is forwarded to domain '%s' already",
			      f->host_port, proto_name(f->proto), (const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		mz_store_rollback(s);
		return rc;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = store_dberr(s, err, "read port forwards");
		mz_store_rollback(s);
		return rc;
	}
	st = store_stmt(s, "INSERT INTO portfwd(proto, host_port, domain, domain_port) "
			   "VALUES (?,?,?,?)");
	sqlite3_bind_int(st, 1, f->proto);
	sqlite3_bind_int(st, 2, f->host_port);
	sqlite3_bind_text(st, 3, f->domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, f->domain_port);
	if ((rc = store_step_done(s, st, err, "insert port forward")) < 0) {
		mz_store_rollback(s);
		return rc;
	}
	return mz_store_commit(s, err);
}

static void fwd_from_row(sqlite3_stmt *st, void *row)
{
	struct mz_fwd_rec *f = row;
	memset(f, 0, sizeof(*f));
	snprintf(f->domain, sizeof(f->domain), "%s", (const char *)sqlite3_column_text(st, 0));
	f->proto = sqlite3_column_int(st, 1);
	f->host_port = sqlite3_column_int(st, 2);
	f->domain_port = sqlite3_column_int(st, 3);
}

int mz_fwd_list(mz_store *s, const char *domain, struct mz_fwd_rec **out, size_t *n,
		mz_error_t *err)
{
	/* Two statements, for the portfwd_domain index (see mz_lease_list). */
	sqlite3_stmt *st = store_stmt(
		s, domain ? "SELECT domain, proto, host_port, domain_port FROM portfwd "
			    "WHERE domain = ?1 ORDER BY proto, host_port"
			  : "SELECT domain, proto, host_port, domain_port FROM portfwd "
			    "ORDER BY proto, host_port");
	if (domain)
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	return store_rows(s, st, sizeof(**out), fwd_from_row, NULL, (void **)out, n,
			  "list port forwards", err);
}
