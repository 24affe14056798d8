/*
 * store.c: the durable copy of every lease, in SQLite.
 *
 * WAL journal. With synchronous=NORMAL (the default) a commit is in the
 * WAL, in the kernel's hands, before berthd answers: an acknowledged lease
 * survives kill -9 of berthd, and a power loss may take the last commits
 * (after which every pid-owned lease is dead anyway: the boot id changed).
 * With --sync full each commit also waits for fsync of the WAL, so it
 * survives power loss too. The broker batches every mutation of one event
 * loop turn into one transaction (group commit), so that cost is paid once
 * per turn, not once per request. locking_mode=EXCLUSIVE holds the
 * database lock for berthd's whole life: a second berthd on the same file
 * fails at once with "database is locked".
 */
#include "config.h"

#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core.h"

struct store {
	sqlite3		*db;
	sqlite3_stmt	*begin;
	sqlite3_stmt	*commit;
	sqlite3_stmt	*rollback;
	sqlite3_stmt	*put_lease;
	sqlite3_stmt	*del_lease;
	sqlite3_stmt	*put_memo;
	sqlite3_stmt	*del_memo;
	sqlite3_stmt	*put_index;
	sqlite3_stmt	*get_index;
	sqlite3_stmt	*probe;
	sqlite3_stmt	*ping;
};

static const char store_schema[] =
	"CREATE TABLE IF NOT EXISTS leases ("
	" name TEXT PRIMARY KEY,"
	" port INTEGER NOT NULL UNIQUE,"
	" proto INTEGER NOT NULL,"
	" host TEXT NOT NULL,"
	" ttl INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL,"
	" pid INTEGER NOT NULL,"
	" pid_start INTEGER NOT NULL,"
	" boot_id TEXT NOT NULL,"
	" meta TEXT,"
	" token TEXT NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" renewed_at INTEGER NOT NULL,"
	" uid INTEGER,"
	" publish INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS names ("
	" name TEXT PRIMARY KEY,"
	" port INTEGER NOT NULL,"
	" freed_at INTEGER NOT NULL,"
	" token_hash BLOB) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS state ("
	" key TEXT PRIMARY KEY,"
	" value INTEGER NOT NULL) WITHOUT ROWID;";

/*
 * The schema's versions (PRAGMA user_version): 1 had no creator uid and
 * no token hash; 2 adds both, as NULL for what version 1 wrote; 3 adds
 * whether a lease is published to the cluster (no lease was before).
 */
#define STORE_VERSION	3
static const char store_upgrade_1[] =
	"ALTER TABLE leases ADD COLUMN uid INTEGER;"
	"ALTER TABLE names ADD COLUMN token_hash BLOB;";
static const char store_upgrade_2[] =
	"ALTER TABLE leases ADD COLUMN publish INTEGER NOT NULL DEFAULT 0;";

static int	store_full_sync;

const char *
store_sync_mode(void)
{
	return (store_full_sync ? "FULL" : "NORMAL");
}

static int
store_prepare(struct store *s, sqlite3_stmt **st, const char *sql)
{
	return (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    st, NULL) == SQLITE_OK ? 0 : -1);
}

/* Run one statement that returns no rows we need; 0 or -1. */
static int
store_step(sqlite3_stmt *st)
{
	int	rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}

static int
store_exec(struct store *s, const char *sql)
{
	return (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ?
	    0 : -1);
}

/* Refuse a damaged file rather than start empty over it. */
static int
store_check(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	const char	*res;
	int		 rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
		return (-1);
	}
	rc = sqlite3_step(st);
	res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (res == NULL || strcmp(res, "ok") != 0) {
		snprintf(err, errlen, "integrity check failed: %s",
		    res != NULL ? res : sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return (-1);
	}
	sqlite3_finalize(st);
	return (0);
}

/* The files SQLite keeps beside a database, the database itself first. */
static const char *const store_suffixes[] = { "", "-wal", "-shm", "-journal" };

/*
 * Is path a symlink that a user other than berthd's (or root) owns? Then
 * that user chooses where the tokens are written: *uid says who.
 */
static int
store_foreign_symlink(const char *path, uid_t *uid)
{
	struct stat	st;

	if (lstat(path, &st) == -1 || !S_ISLNK(st.st_mode))
		return (0);
	*uid = st.st_uid;
	return (st.st_uid != geteuid() && st.st_uid != 0);
}

/*
 * Before SQLite opens anything: refuse a database path that is another
 * user's symlink, and make the database and its sidecars that exist
 * private. The order matters: SQLite creates the -wal and -shm with the
 * database file's mode (umask or not), so a database others may read
 * would hand them every new token in a fresh WAL. An older WAL or journal
 * left by a crash is made private too. The sidecars sit beside the file
 * the path resolves to, as SQLite puts them.
 */
static int
store_files_private(const char *path, char *err, size_t errlen)
{
	char		 real[PATH_MAX], file[PATH_MAX + 16];
	struct stat	 st;
	size_t		 i;
	uid_t		 uid;

	if (store_foreign_symlink(path, &uid)) {
		snprintf(err, errlen, "%s is a symlink owned by uid %lu, not by "
		    "berthd's user (uid %lu) or root: refusing to follow it",
		    path, (unsigned long)uid, (unsigned long)geteuid());
		return (-1);
	}
	if (realpath(path, real) == NULL)
		snprintf(real, sizeof real, "%s", path);
	for (i = 0; i < sizeof store_suffixes / sizeof store_suffixes[0]; i++) {
		snprintf(file, sizeof file, "%s%s", real, store_suffixes[i]);
		if (i > 0 && store_foreign_symlink(file, &uid)) {
			snprintf(err, errlen, "%s is a symlink owned by uid %lu, "
			    "not by berthd's user or root: refusing to follow "
			    "it", file, (unsigned long)uid);
			return (-1);
		}
		if (stat(file, &st) == -1 || !S_ISREG(st.st_mode) ||
		    (st.st_mode & 077) == 0)
			continue;
		/* Not ours to chmod (a shared group's file): say so, go on. */
		if (chmod(file, st.st_mode & 0700) == -1)
			log_warn("store: %s is open to other users (0%o) and "
			    "chmod failed", file,
			    (unsigned int)(st.st_mode & 0777));
		else
			log_info("store: %s was open to other users; made it "
			    "0%o", file, (unsigned int)(st.st_mode & 0700));
	}
	return (0);
}

static int
store_user_version(struct store *s, int *v)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return (-1);
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return (rc == SQLITE_ROW ? 0 : -1);
}

/* From schema v (0: a new database) to STORE_VERSION, step by step. */
static int
store_schema_upgrade(struct store *s, int v)
{
	if (v == 0)
		return (store_exec(s, store_schema));
	if (v <= 1 && store_exec(s, store_upgrade_1) == -1)
		return (-1);
	if (v <= 2 && store_exec(s, store_upgrade_2) == -1)
		return (-1);
	return (0);
}

/*
 * Create the tables of a new database, or bring an older one up to
 * STORE_VERSION, in one transaction. A newer database is refused: this
 * berthd would not know what it leaves out.
 */
static int
store_schema_apply(struct store *s, char *err, size_t errlen)
{
	char	set[64];
	int	v;

	if (store_user_version(s, &v) == -1)
		goto fail;
	if (v > STORE_VERSION) {
		snprintf(err, errlen, "the database was written by a newer "
		    "berthd (schema %d; this one knows %d)", v, STORE_VERSION);
		return (-1);
	}
	if (v == STORE_VERSION)
		return (0);
	snprintf(set, sizeof set, "PRAGMA user_version = %d", STORE_VERSION);
	if (store_exec(s, "BEGIN IMMEDIATE") == -1)
		goto fail;
	if (store_schema_upgrade(s, v) == -1 || store_exec(s, set) == -1 ||
	    store_exec(s, "COMMIT") == -1) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
		store_exec(s, "ROLLBACK");
		return (-1);
	}
	if (v != 0)
		log_info("store: database upgraded to schema %d", STORE_VERSION);
	return (0);
fail:
	snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
	return (-1);
}

/*
 * Open (creating) the database at path, take its lock and prepare every
 * statement; full_sync selects synchronous=FULL. On failure returns NULL
 * with a message in err.
 */
struct store *
store_open(const char *path, int full_sync, char *err, size_t errlen)
{
	struct store	*s;

	if ((s = calloc(1, sizeof *s)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	if (strcmp(path, ":memory:") != 0 &&
	    store_files_private(path, err, errlen) == -1)
		goto fail;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", s->db != NULL ?
		    sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 0);
	store_full_sync = full_sync;
	/*
	 * secure_delete: an ended lease's row (its token among it) is zeroed
	 * on disk, not left in a free part of its page for anyone who reads
	 * the file later; only the token's hash is kept, in its memo.
	 */
	if (store_exec(s, "PRAGMA locking_mode = EXCLUSIVE") == -1 ||
	    store_exec(s, "PRAGMA secure_delete = ON") == -1 ||
	    store_exec(s, "PRAGMA journal_mode = WAL") == -1 ||
	    store_exec(s, full_sync ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL") == -1 ||
	    store_exec(s, "BEGIN IMMEDIATE") == -1) {
		if (sqlite3_errcode(s->db) == SQLITE_BUSY ||
		    sqlite3_errcode(s->db) == SQLITE_LOCKED)
			snprintf(err, errlen, "database is locked: another "
			    "berthd is using it");
		else
			snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
		goto fail;
	}
	if (store_exec(s, "COMMIT") == -1 || store_check(s, err, errlen) == -1)
		goto fail_msg;
	if (store_schema_apply(s, err, errlen) == -1)
		goto fail_msg;
	if (store_prepare(s, &s->begin, "BEGIN IMMEDIATE") == -1 ||
	    store_prepare(s, &s->commit, "COMMIT") == -1 ||
	    store_prepare(s, &s->rollback, "ROLLBACK") == -1 ||
	    store_prepare(s, &s->put_lease, "INSERT INTO leases (name, port, "
	    "proto, host, ttl, expires_at, pid, pid_start, boot_id, meta, "
	    "token, created_at, renewed_at, uid, publish) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
	    "ON CONFLICT(name) DO UPDATE SET port = ?2, proto = ?3, "
	    "host = ?4, ttl = ?5, expires_at = ?6, pid = ?7, pid_start = ?8, "
	    "boot_id = ?9, meta = ?10, token = ?11, created_at = ?12, "
	    "renewed_at = ?13, uid = ?14, publish = ?15") == -1 ||
	    store_prepare(s, &s->del_lease, "DELETE FROM leases "
	    "WHERE name = ?1") == -1 ||
	    store_prepare(s, &s->put_memo, "INSERT INTO names (name, port, "
	    "freed_at, token_hash) VALUES (?1, ?2, ?3, ?4) "
	    "ON CONFLICT(name) DO UPDATE SET port = ?2, freed_at = ?3, "
	    "token_hash = ?4") == -1 ||
	    store_prepare(s, &s->del_memo, "DELETE FROM names "
	    "WHERE name = ?1") == -1 ||
	    store_prepare(s, &s->put_index, "INSERT INTO state VALUES "
	    "('index', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1") == -1 ||
	    store_prepare(s, &s->get_index, "SELECT value FROM state "
	    "WHERE key = 'index'") == -1 ||
	    store_prepare(s, &s->probe, "INSERT INTO state VALUES "
	    "('probe', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1") == -1 ||
	    store_prepare(s, &s->ping, "SELECT count(*) FROM leases") == -1)
		goto fail_sql;
	return (s);
fail_sql:
	snprintf(err, errlen, "%s", sqlite3_errmsg(s->db));
fail_msg:
fail:
	store_close(s);
	return (NULL);
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	sqlite3_finalize(s->put_lease);
	sqlite3_finalize(s->del_lease);
	sqlite3_finalize(s->put_memo);
	sqlite3_finalize(s->del_memo);
	sqlite3_finalize(s->put_index);
	sqlite3_finalize(s->get_index);
	sqlite3_finalize(s->probe);
	sqlite3_finalize(s->ping);
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(s->db));
	free(s);
}

const char *
store_errmsg(struct store *s)
{
	return (sqlite3_errmsg(s->db));
}

int
store_begin(struct store *s)
{
	return (store_step(s->begin));
}

int
store_commit(struct store *s)
{
	return (store_step(s->commit));
}

void
store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		store_step(s->rollback);
}

int
store_put_lease(struct store *s, const struct lease *l)
{
	sqlite3_stmt	*st = s->put_lease;

	sqlite3_bind_text(st, 1, l->name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, l->port);
	sqlite3_bind_int(st, 3, l->proto);
	sqlite3_bind_text(st, 4, l->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, l->ttl);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)l->expires_at);
	sqlite3_bind_int64(st, 7, l->owner.pid);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)l->owner.start);
	sqlite3_bind_text(st, 9, l->owner.boot_id, -1, SQLITE_STATIC);
	if (l->meta != NULL)
		sqlite3_bind_text(st, 10, l->meta, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 10);
	sqlite3_bind_text(st, 11, l->token, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)l->created_at);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)l->renewed_at);
	if (l->uid >= 0)
		sqlite3_bind_int64(st, 14, l->uid);
	else
		sqlite3_bind_null(st, 14);
	sqlite3_bind_int(st, 15, l->publish);
	return (store_step(st));
}

int
store_delete_lease(struct store *s, const char *name)
{
	sqlite3_bind_text(s->del_lease, 1, name, -1, SQLITE_STATIC);
	return (store_step(s->del_lease));
}

/*
 * Remember the last port of name; freed_at is 0 while a lease holds it;
 * hash is its last token's hash while that lease may be reclaimed (else
 * NULL).
 */
int
store_put_memo(struct store *s, const char *name, uint16_t port,
    uint64_t freed_at, const unsigned char *hash)
{
	sqlite3_bind_text(s->put_memo, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s->put_memo, 2, port);
	sqlite3_bind_int64(s->put_memo, 3, (sqlite3_int64)freed_at);
	if (hash != NULL)
		sqlite3_bind_blob(s->put_memo, 4, hash, BERTH_TOKEN_HASH,
		    SQLITE_STATIC);
	else
		sqlite3_bind_null(s->put_memo, 4);
	return (store_step(s->put_memo));
}

int
store_delete_memo(struct store *s, const char *name)
{
	sqlite3_bind_text(s->del_memo, 1, name, -1, SQLITE_STATIC);
	return (store_step(s->del_memo));
}

int
store_put_index(struct store *s, uint64_t index)
{
	sqlite3_bind_int64(s->put_index, 1, (sqlite3_int64)index);
	return (store_step(s->put_index));
}

int
store_get_index(struct store *s, uint64_t *index)
{
	int	rc;

	*index = 0;
	rc = sqlite3_step(s->get_index);
	if (rc == SQLITE_ROW)
		*index = (uint64_t)sqlite3_column_int64(s->get_index, 0);
	sqlite3_reset(s->get_index);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1);
}

/*
 * Write a value that differs every time (the caller's clock), so that the
 * commit really has to reach the disk: a write of an unchanged value may
 * not, and would not tell whether the disk takes writes.
 */
int
store_probe_write(struct store *s, uint64_t stamp)
{
	sqlite3_bind_int64(s->probe, 1, (sqlite3_int64)stamp);
	return (store_step(s->probe));
}

/* Is the database still answering? Used by /v1/health. */
int
store_ping(struct store *s)
{
	int	rc;

	rc = sqlite3_step(s->ping);
	sqlite3_reset(s->ping);
	return (rc == SQLITE_ROW ? 0 : -1);
}

static struct lease *
store_row_lease(sqlite3_stmt *st)
{
	struct lease	*l;
	const char	*text;

	if ((l = lease_new()) == NULL)
		return (NULL);
	snprintf(l->name, sizeof l->name, "%s", sqlite3_column_text(st, 0));
	l->port = (uint16_t)sqlite3_column_int(st, 1);
	l->proto = (uint8_t)sqlite3_column_int(st, 2);
	l->host = strdup((const char *)sqlite3_column_text(st, 3));
	l->ttl = (uint32_t)sqlite3_column_int64(st, 4);
	l->expires_at = (uint64_t)sqlite3_column_int64(st, 5);
	l->owner.pid = (pid_t)sqlite3_column_int64(st, 6);
	l->owner.start = (uint64_t)sqlite3_column_int64(st, 7);
	snprintf(l->owner.boot_id, sizeof l->owner.boot_id, "%s",
	    sqlite3_column_text(st, 8));
	if ((text = (const char *)sqlite3_column_text(st, 9)) != NULL)
		l->meta = strdup(text);
	snprintf(l->token, sizeof l->token, "%s", sqlite3_column_text(st, 10));
	l->created_at = (uint64_t)sqlite3_column_int64(st, 11);
	l->renewed_at = (uint64_t)sqlite3_column_int64(st, 12);
	l->uid = sqlite3_column_type(st, 13) == SQLITE_NULL ? -1 :
	    (long)sqlite3_column_int64(st, 13);
	l->publish = sqlite3_column_int(st, 14) != 0;
	if (l->host == NULL) {
		lease_free(l);
		return (NULL);
	}
	return (l);
}

/*
 * Hand every stored lease to lease_cb (which takes ownership), then every
 * name memo to memo_cb, oldest release first. A callback's -1 (no memory
 * for it) stops the load with -1.
 */
int
store_load(struct store *s, store_lease_cb lease_cb, store_memo_cb memo_cb,
    void *arg)
{
	sqlite3_stmt	*st;
	struct lease	*l;
	const void	*hash;
	int		 rc;

	if (sqlite3_prepare_v2(s->db, "SELECT name, port, proto, host, ttl, "
	    "expires_at, pid, pid_start, boot_id, meta, token, created_at, "
	    "renewed_at, uid, publish FROM leases", -1, &st, NULL) != SQLITE_OK)
		return (-1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((l = store_row_lease(st)) == NULL) {
			sqlite3_finalize(st);
			return (-1);
		}
		if (lease_cb(l, arg) == -1) {
			sqlite3_finalize(st);
			return (-1);
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return (-1);
	if (sqlite3_prepare_v2(s->db, "SELECT name, port, freed_at, token_hash "
	    "FROM names ORDER BY freed_at", -1, &st, NULL) != SQLITE_OK)
		return (-1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		hash = sqlite3_column_bytes(st, 3) == BERTH_TOKEN_HASH ?
		    sqlite3_column_blob(st, 3) : NULL;
		if (memo_cb((const char *)sqlite3_column_text(st, 0),
		    (uint16_t)sqlite3_column_int(st, 1),
		    (uint64_t)sqlite3_column_int64(st, 2), hash, arg) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}
