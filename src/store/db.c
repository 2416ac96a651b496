/* The store's connections and schema: opening the file with its pragmas,
 * the versioned migrations, the bucket bounds recorded in `meta`, and the
 * statements the store thread runs.
 *
 * Migrations are a static table of SQL texts, version 1, 2, ...; each one
 * the file lacks runs in its own transaction together with the insert of
 * its version into schema_version, so a crash between two leaves the file
 * at the earlier version, whole. A file whose version is newer than the
 * table is refused: this binary would not know what the newer columns mean.
 * A migration is never edited once released; a change is a new entry.
 *
 * The DDL keeps to types PostgreSQL also accepts (BIGINT, TEXT, SMALLINT,
 * DOUBLE PRECISION); the one difference is `id INTEGER PRIMARY KEY`, SQLite's
 * rowid alias, which a PostgreSQL migration writes as BIGINT GENERATED
 * ALWAYS AS IDENTITY (docs/store.md). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store_int.h"

/* The 24 bucket columns of an SLI table. */
/* clang-format off */
#define B(n) "b" #n " BIGINT NOT NULL DEFAULT 0, "
#define BCOLS                                                                                      \
    B(0) B(1) B(2) B(3) B(4) B(5) B(6) B(7) B(8) B(9) B(10) B(11) B(12) B(13) B(14) B(15) B(16)     \
    B(17) B(18) B(19) B(20) B(21) B(22) B(23)
#define SLI_TABLE(name)                                                                            \
    "CREATE TABLE " name " (source TEXT NOT NULL, ts BIGINT NOT NULL, "                            \
    "requests BIGINT NOT NULL, errors BIGINT NOT NULL, " BCOLS "PRIMARY KEY (source, ts));"        \
    "CREATE INDEX " name "_ts ON " name " (ts);"

static const char *const migrations[STORE_SCHEMA_VERSION] = {
    /* 1: the first schema. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);" SLI_TABLE("sli_raw")
        SLI_TABLE("sli_minute") SLI_TABLE("sli_hour") SLI_TABLE("sli_day")
    "CREATE TABLE probes (id INTEGER PRIMARY KEY, monitor TEXT NOT NULL, ts BIGINT NOT NULL, "
    "ok SMALLINT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX probes_monitor_ts ON probes (monitor, ts);"
    "CREATE INDEX probes_ts ON probes (ts);"
    "CREATE TABLE states (id INTEGER PRIMARY KEY, monitor TEXT NOT NULL, ts BIGINT NOT NULL, "
    "from_state TEXT NOT NULL, to_state TEXT NOT NULL);"
    "CREATE INDEX states_monitor_ts ON states (monitor, ts);"
    "CREATE INDEX states_ts ON states (ts);"
    "CREATE TABLE events (id INTEGER PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL, "
    "subject TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX events_kind_ts ON events (kind, ts);"
    "CREATE INDEX events_ts ON events (ts);"
    "CREATE TABLE deliveries (id INTEGER PRIMARY KEY, ts BIGINT NOT NULL, alert TEXT NOT NULL, "
    "channel TEXT NOT NULL, status TEXT NOT NULL, attempt BIGINT NOT NULL, "
    "response TEXT NOT NULL);"
    "CREATE INDEX deliveries_alert_ts ON deliveries (alert, ts);"
    "CREATE INDEX deliveries_ts ON deliveries (ts);",
};
/* clang-format on */

const char *const store_tables[STORE_NTABLES] = {
    "sli_raw", "sli_minute", "sli_hour", "sli_day", "probes", "states", "events", "deliveries",
};

int64_t store_table_keep(const store_opts_t *o, size_t table)
{
    const store_retention_t *r = &o->retention;
    const int64_t keep[STORE_NTABLES] = {r->raw,    r->minute, r->hour,   r->day,
                                         r->probes, r->states, r->events, r->deliveries};
    return table < STORE_NTABLES ? keep[table] : 0;
}

static int fail(char *err, size_t errlen, int rc, const char *path, const char *fmt,
                const char *arg)
{
    char what[1024];
    snprintf(what, sizeof(what), fmt, arg);
    snprintf(err, errlen, "store %s: %s", path, what);
    return rc;
}

static int db_fail(char *err, size_t errlen, const store_t *s, sqlite3 *db, const char *doing)
{
    char what[256];
    snprintf(what, sizeof(what), "%s: %s", doing, db ? sqlite3_errmsg(db) : "out of memory");
    return fail(err, errlen, -EIO, s->path, "%s", what);
}

int store_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return -EIO;
    /* $N are named parameters to SQLite, numbered by first appearance: the
     * text only means the same on both engines if they appear in order. */
    for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        char want[16];
        const char *name = sqlite3_bind_parameter_name(st, i);
        snprintf(want, sizeof(want), "$%d", i);
        if (!name || strcmp(name, want) != 0) {
            sqlite3_finalize(st);
            return -EINVAL;
        }
    }
    *ret = st;
    return 0;
}

/* The single value of a one-row query as text (copied into out), or "" when
 * there is no row or it is NULL. 0 or -EIO. */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *st = NULL;
    int rc = -EIO;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
    if (step == SQLITE_ROW || step == SQLITE_DONE)
        rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int check_dir(const store_t *s, char *err, size_t errlen)
{
    char *copy = strdup(s->path);
    struct stat sb;
    int rc = 0;
    if (!copy)
        return -ENOMEM;
    const char *dir = dirname(copy);
    if (stat(dir, &sb) != 0)
        rc = fail(err, errlen, -errno, s->path, "directory %s does not exist", dir);
    else if (!S_ISDIR(sb.st_mode))
        rc = fail(err, errlen, -ENOTDIR, s->path, "%s is not a directory", dir);
    free(copy);
    return rc;
}

static int set_pragmas(store_t *s, char *err, size_t errlen)
{
    char mode[32];
    sqlite3 *db = s->wdb;
    sqlite3_busy_timeout(db, (int)s->o.busy_timeout_ms);
    /* The first statement reads the header: a file that is not a database
     * fails here with SQLite's "file is not a database". */
    if (query_text(db, "PRAGMA journal_mode=WAL", mode, sizeof(mode)) != 0)
        return db_fail(err, errlen, s, db, "cannot set WAL mode");
    if (strcmp(mode, "wal") != 0)
        return fail(err, errlen, -EIO, s->path, "journal mode is %s, WAL refused", mode);
    const char *sync =
        s->o.sync == STORE_SYNC_FULL ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    if (sqlite3_exec(db, sync, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(err, errlen, s, db, "pragmas");
    return 0;
}

/* Runs sql and records version, in one transaction. */
static int apply_migration(store_t *s, int version, const char *sql, char *err, size_t errlen)
{
    char ins[96], doing[64];
    snprintf(ins, sizeof(ins), "INSERT INTO schema_version (version) VALUES (%d)", version);
    snprintf(doing, sizeof(doing), "migration %d", version);
    if (sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(err, errlen, s, s->wdb, doing);
    if (sqlite3_exec(s->wdb, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->wdb, ins, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = db_fail(err, errlen, s, s->wdb, doing);
        sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

static int migrate(store_t *s, char *err, size_t errlen)
{
    char text[32];
    if (sqlite3_exec(s->wdb,
                     "CREATE TABLE IF NOT EXISTS schema_version "
                     "(version BIGINT PRIMARY KEY)",
                     NULL, NULL, NULL) != SQLITE_OK ||
        query_text(s->wdb, "SELECT MAX(version) FROM schema_version", text, sizeof(text)) != 0)
        return db_fail(err, errlen, s, s->wdb, "schema version");
    long have = strtol(text, NULL, 10);
    if (have > STORE_SCHEMA_VERSION) {
        snprintf(text, sizeof(text), "%ld", have);
        char what[160];
        snprintf(what, sizeof(what),
                 "schema version %s is newer than this surety knows (%d); "
                 "run the newer surety or restore a backup",
                 text, STORE_SCHEMA_VERSION);
        return fail(err, errlen, -EPROTO, s->path, "%s", what);
    }
    for (long v = have < 0 ? 0 : have; v < STORE_SCHEMA_VERSION; v++) {
        int rc = apply_migration(s, (int)v + 1, migrations[v], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* The bounds as text: "0.001,0.005,...,inf". */
static void bounds_text(const store_t *s, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->o.nbuckets && n < outlen; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%s%.17g", i ? "," : "", s->bounds[i]);
}

static int check_bounds(store_t *s, char *err, size_t errlen)
{
    char want[STORE_BUCKETS_MAX * 26], have[sizeof(want) + 1];
    bounds_text(s, want, sizeof(want));
    if (query_text(s->wdb, "SELECT value FROM meta WHERE key = 'sli_bounds'", have, sizeof(have)) !=
        0)
        return db_fail(err, errlen, s, s->wdb, "reading meta");
    if (have[0] == '\0') {
        char sql[sizeof(want) + 80];
        snprintf(sql, sizeof(sql), "INSERT INTO meta (key, value) VALUES ('sli_bounds', '%s')",
                 want);
        if (sqlite3_exec(s->wdb, sql, NULL, NULL, NULL) != SQLITE_OK)
            return db_fail(err, errlen, s, s->wdb, "writing meta");
        return 0;
    }
    if (strcmp(have, want) != 0)
        return fail(err, errlen, -EINVAL, s->path,
                    "the file's latency buckets (%s) differ from this surety's; "
                    "move the file aside to start a new history",
                    have);
    return 0;
}

/* "INSERT INTO t (source, ts, requests, errors, b0..b23) VALUES ($1..$28)
 *  ON CONFLICT (source, ts) DO UPDATE SET col = t.col + excluded.col, ..." */
static void sli_upsert_sql(const char *t, char *sql, size_t len)
{
    size_t n = (size_t)snprintf(sql, len, "INSERT INTO %s (source, ts, requests, errors", t);
    for (int b = 0; b < STORE_BUCKETS_MAX; b++)
        n += (size_t)snprintf(sql + n, len - n, ", b%d", b);
    n += (size_t)snprintf(sql + n, len - n, ") VALUES ($1, $2, $3, $4");
    for (int b = 0; b < STORE_BUCKETS_MAX; b++)
        n += (size_t)snprintf(sql + n, len - n, ", $%d", b + 5);
    n += (size_t)snprintf(sql + n, len - n,
                          ") ON CONFLICT (source, ts) DO UPDATE SET "
                          "requests = %s.requests + excluded.requests, "
                          "errors = %s.errors + excluded.errors",
                          t, t);
    for (int b = 0; b < STORE_BUCKETS_MAX; b++)
        n += (size_t)snprintf(sql + n, len - n, ", b%d = %s.b%d + excluded.b%d", b, t, b, b);
}

static int prepare_writes(store_t *s, char *err, size_t errlen)
{
    static const char *const fixed[ST_N] = {
        [ST_PROBE] = "INSERT INTO probes (monitor, ts, ok, latency_ms, detail) "
                     "VALUES ($1, $2, $3, $4, $5)",
        [ST_STATE] = "INSERT INTO states (monitor, ts, from_state, to_state) "
                     "VALUES ($1, $2, $3, $4)",
        [ST_EVENT] = "INSERT INTO events (ts, kind, subject, detail) VALUES ($1, $2, $3, $4)",
        [ST_DELIVERY] = "INSERT INTO deliveries (ts, alert, channel, status, attempt, response) "
                        "VALUES ($1, $2, $3, $4, $5, $6)",
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
    };
    char sql[4096];
    for (int i = 0; i < ST_N; i++) {
        const char *text = fixed[i];
        if (i <= ST_SLI_DAY) {
            sli_upsert_sql(store_tables[i], sql, sizeof(sql));
            text = sql;
        }
        if (store_db_prepare(s->wdb, text, &s->st[i]) != 0)
            return db_fail(err, errlen, s, s->wdb, "preparing writes");
    }
    for (size_t t = 0; t < STORE_NTABLES; t++) {
        /* A bounded delete, oldest first, in a form both engines run. */
        if (t <= 3)
            snprintf(sql, sizeof(sql),
                     "DELETE FROM %s WHERE (source, ts) IN (SELECT source, ts FROM %s "
                     "WHERE ts < $1 ORDER BY ts LIMIT $2)",
                     store_tables[t], store_tables[t]);
        else
            snprintf(sql, sizeof(sql),
                     "DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE ts < $1 "
                     "ORDER BY ts LIMIT $2)",
                     store_tables[t], store_tables[t]);
        if (store_db_prepare(s->wdb, sql, &s->del[t]) != 0)
            return db_fail(err, errlen, s, s->wdb, "preparing retention");
    }
    return 0;
}

int store_db_open_writer(store_t *s, char *err, size_t errlen)
{
    int rc = check_dir(s, err, errlen);
    if (rc)
        return rc;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->path, &s->wdb, flags, NULL) != SQLITE_OK)
        return db_fail(err, errlen, s, s->wdb, "cannot open");
    sqlite3_extended_result_codes(s->wdb, 1);
    if ((rc = set_pragmas(s, err, errlen)) != 0 || (rc = migrate(s, err, errlen)) != 0 ||
        (rc = check_bounds(s, err, errlen)) != 0 || (rc = prepare_writes(s, err, errlen)) != 0)
        return rc;
    return 0;
}

int store_db_open_reader(store_t *s, char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(s->path, &s->rdb, flags, NULL) != SQLITE_OK)
        return db_fail(err, errlen, s, s->rdb, "cannot open for reading");
    sqlite3_busy_timeout(s->rdb, (int)s->o.busy_timeout_ms);
    if (sqlite3_exec(s->rdb, "PRAGMA query_only=ON", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(err, errlen, s, s->rdb, "read connection");
    return 0;
}

void store_db_close(store_t *s)
{
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(s->st[i]);
    for (size_t t = 0; t < STORE_NTABLES; t++)
        sqlite3_finalize(s->del[t]);
    /* The reader first: the last connection to close checkpoints the WAL
     * into the database and removes it. */
    sqlite3_close(s->rdb);
    sqlite3_close(s->wdb);
    s->rdb = s->wdb = NULL;
}
