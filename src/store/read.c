/* Reads for start-up and the admin API, on the store's read-only
 * connection. In WAL mode a reader sees the last committed state and never
 * waits for the store thread; rmu only keeps two callers of these functions
 * off the one connection at a time. Every query has a LIMIT, so a reply's
 * size is bounded whatever the file holds. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

static const char *const res_tables[STORE_RES_N] = {"sli_raw", "sli_minute", "sli_hour", "sli_day"};

static str_t col_str(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return str_from(p ? p : "", p ? (size_t)sqlite3_column_bytes(st, i) : 0);
}

static void bind_str(sqlite3_stmt *st, int i, str_t v)
{
    sqlite3_bind_text(st, i, v.len ? v.p : "", (int)v.len, SQLITE_STATIC);
}

int store_sli_load(store_t *s, str_t source, store_res_t res, int64_t from, int64_t to,
                   store_sli_row_t *rows, size_t max, size_t *ret_n)
{
    char sql[640];
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    int rc = -EIO, step;
    if ((unsigned)res >= STORE_RES_N || source.len == 0 || source.len > STORE_NAME_MAX)
        return -EINVAL;
    int len = snprintf(sql, sizeof(sql), "SELECT ts, requests, errors");
    for (int b = 0; b < STORE_BUCKETS_MAX; b++)
        len += snprintf(sql + len, sizeof(sql) - (size_t)len, ", b%d", b);
    snprintf(sql + len, sizeof(sql) - (size_t)len,
             " FROM %s WHERE source = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4",
             res_tables[res]);
    pthread_mutex_lock(&s->rmu);
    if (store_db_prepare(s->rdb, sql, &st) != 0)
        goto out;
    bind_str(st, 1, source);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
    while (n < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
        store_sli_row_t *r = &rows[n++];
        memset(r, 0, sizeof(*r));
        r->ts = sqlite3_column_int64(st, 0);
        r->requests = (uint64_t)sqlite3_column_int64(st, 1);
        r->errors = (uint64_t)sqlite3_column_int64(st, 2);
        for (size_t b = 0; b < s->o.nbuckets; b++)
            r->buckets[b] = (uint64_t)sqlite3_column_int64(st, 3 + (int)b);
    }
    if (n == max || step == SQLITE_DONE) {
        *ret_n = n;
        rc = 0;
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* What one list needs: its columns, its table, its name column. */
typedef struct {
    const char *cols, *table, *name_col;
} list_t;

/* Runs the bounded, filtered, newest-first query of l and calls row(st)
 * for each row; holds rmu throughout. */
static int list_run(store_t *s, const list_t *l, const store_filter_t *f,
                    int (*row)(sqlite3_stmt *st, void *cb, void *data), void *cb, void *data)
{
    char sql[512];
    sqlite3_stmt *st = NULL;
    int rc = -EIO, step;
    size_t limit = f->limit == 0 || f->limit > STORE_LIST_MAX ? STORE_LIST_MAX : f->limit;
    bool named = f->name.len > 0;
    if (f->name.len > STORE_NAME_MAX)
        return -EINVAL;
    /* The parameters keep their numbers whichever filters are on. */
    snprintf(sql, sizeof(sql),
             "SELECT id, %s FROM %s WHERE ts >= $1 AND ts < $2%s%s%s "
             "ORDER BY ts DESC, id DESC LIMIT $%d",
             l->cols, l->table, named ? " AND " : "", named ? l->name_col : "",
             named ? " = $3" : "", named ? 4 : 3);
    pthread_mutex_lock(&s->rmu);
    if (store_db_prepare(s->rdb, sql, &st) != 0)
        goto out;
    sqlite3_bind_int64(st, 1, f->since);
    sqlite3_bind_int64(st, 2, f->until > 0 ? f->until : INT64_MAX);
    if (named)
        bind_str(st, 3, f->name);
    sqlite3_bind_int64(st, named ? 4 : 3, (sqlite3_int64)limit);
    rc = 0;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = row(st, cb, data);
    if (rc == 0 && step != SQLITE_DONE)
        rc = -EIO;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static int probe_row(sqlite3_stmt *st, void *cb, void *data)
{
    store_probe_t r = {
        .id = sqlite3_column_int64(st, 0),
        .monitor = col_str(st, 1),
        .ts = sqlite3_column_int64(st, 2),
        .ok = sqlite3_column_int(st, 3) != 0,
        .latency_ms = sqlite3_column_double(st, 4),
        .detail = col_str(st, 5),
    };
    return ((store_probe_cb)cb)(data, &r);
}

static int state_row(sqlite3_stmt *st, void *cb, void *data)
{
    store_state_t r = {
        .id = sqlite3_column_int64(st, 0),
        .monitor = col_str(st, 1),
        .ts = sqlite3_column_int64(st, 2),
        .from = col_str(st, 3),
        .to = col_str(st, 4),
    };
    return ((store_state_cb)cb)(data, &r);
}

static int event_row(sqlite3_stmt *st, void *cb, void *data)
{
    store_event_t r = {
        .id = sqlite3_column_int64(st, 0),
        .ts = sqlite3_column_int64(st, 1),
        .kind = col_str(st, 2),
        .subject = col_str(st, 3),
        .detail = col_str(st, 4),
    };
    return ((store_event_cb)cb)(data, &r);
}

static int delivery_row(sqlite3_stmt *st, void *cb, void *data)
{
    store_delivery_t r = {
        .id = sqlite3_column_int64(st, 0),
        .ts = sqlite3_column_int64(st, 1),
        .alert = col_str(st, 2),
        .channel = col_str(st, 3),
        .status = col_str(st, 4),
        .attempt = sqlite3_column_int64(st, 5),
        .response = col_str(st, 6),
    };
    return ((store_delivery_cb)cb)(data, &r);
}

int store_probes_list(store_t *s, const store_filter_t *f, store_probe_cb cb, void *data)
{
    static const list_t l = {"monitor, ts, ok, latency_ms, detail", "probes", "monitor"};
    return list_run(s, &l, f, probe_row, (void *)cb, data);
}

int store_states_list(store_t *s, const store_filter_t *f, store_state_cb cb, void *data)
{
    static const list_t l = {"monitor, ts, from_state, to_state", "states", "monitor"};
    return list_run(s, &l, f, state_row, (void *)cb, data);
}

int store_events_list(store_t *s, const store_filter_t *f, store_event_cb cb, void *data)
{
    static const list_t l = {"ts, kind, subject, detail", "events", "kind"};
    return list_run(s, &l, f, event_row, (void *)cb, data);
}

int store_deliveries_list(store_t *s, const store_filter_t *f, store_delivery_cb cb, void *data)
{
    static const list_t l = {"ts, alert, channel, status, attempt, response", "deliveries",
                             "alert"};
    return list_run(s, &l, f, delivery_row, (void *)cb, data);
}
