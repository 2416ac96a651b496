/* The embedded store: one SQLite file in WAL mode that keeps the control
 * plane's history (request SLI samples and their minute/hour/day rollups,
 * probe results, monitor state changes, events, alert deliveries).
 *
 * Writers never wait on the disk: the store_*_submit() functions copy the
 * record into a bounded in-memory queue (a short mutex hold, no I/O) and
 * return its sequence number, or -ENOBUFS when the queue is full. One store
 * thread takes everything queued and writes it in one transaction per batch;
 * store_acked() is the highest sequence number whose transaction has
 * committed. Acknowledged means committed: a kill -9 after that keeps the row
 * (synchronous=normal survives a process crash; synchronous=full also a power
 * loss). Rollups are upserted by the same thread in the same transaction as
 * the raw sample, so the four SLI tables always agree.
 *
 * Reads (start-up reload, admin API) go through a second, read-only
 * connection: in WAL mode it never waits for the writer.
 *
 * Time is the caller's: every record carries its unix-seconds timestamp and
 * retention cuts relative to the newest timestamp submitted (or the `now`
 * given to store_retention_run()); the store never asks the clock for data.
 *
 * The SQL (see docs/store.md) is written to run on PostgreSQL as well:
 * $N placeholders, INSERT ... ON CONFLICT DO UPDATE, no SQLite functions.
 *
 * Thread-safety: submit functions, store_acked() and store_stats_get() from
 * any thread; reads from any thread (serialised on the read connection; meant
 * for the control thread); store_open()/store_close() from the owner. */
#ifndef SURETY_STORE_STORE_H
#define SURETY_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "metrics/prom.h"

/* Latency histogram buckets per SLI sample, at most (columns b0..b23). */
#define STORE_BUCKETS_MAX 24
/* Names (source, monitor, kind, subject, alert, channel, status, states):
 * longer ones are refused with -EMSGSIZE. */
#define STORE_NAME_MAX 256
/* Free text (probe detail, delivery response): cut to this many bytes. */
#define STORE_TEXT_MAX 4096
/* An event's JSON detail: longer is refused with -EMSGSIZE (cutting JSON
 * would make it invalid). */
#define STORE_JSON_MAX 65536
/* Rows one list call returns, at most. */
#define STORE_LIST_MAX 1000
/* Limits of the options. */
#define STORE_QUEUE_MAX (1u << 20)

typedef enum {
    STORE_SYNC_NORMAL, /* fsync at checkpoints only: survives a process crash */
    STORE_SYNC_FULL,   /* fsync the WAL at every commit: survives a power loss */
} store_sync_t;

/* Data kinds, for row counters and retention. */
typedef enum {
    STORE_KIND_SLI,      /* a raw 10 s sample (and its three rollup upserts) */
    STORE_KIND_PROBE,    /* a probe result */
    STORE_KIND_STATE,    /* a monitor state change */
    STORE_KIND_EVENT,    /* an event (alert fired/resolved, failover, bottleneck) */
    STORE_KIND_DELIVERY, /* an alert delivery attempt */
    STORE_KIND_N,
} store_kind_t;

typedef enum {
    STORE_RES_RAW,    /* the samples as submitted */
    STORE_RES_MINUTE, /* ts aligned to 60 s */
    STORE_RES_HOUR,   /* ts aligned to 3600 s */
    STORE_RES_DAY,    /* ts aligned to 86400 s (UTC days) */
    STORE_RES_N,
} store_res_t;

/* How long each kind is kept, in seconds; 0 keeps forever. */
typedef struct {
    int64_t raw, minute, hour, day, probes, states, events, deliveries;
} store_retention_t;

/* Called on the store thread after each commit with the new store_acked();
 * it must not block (e.g. loop_async_send()). */
typedef void (*store_commit_cb)(void *data, uint64_t acked);

typedef struct {
    const char *path;          /* the database file; its directory must exist */
    store_sync_t sync;         /* default STORE_SYNC_NORMAL */
    uint32_t busy_timeout_ms;  /* default 5000 */
    size_t queue_max;          /* records queued at most; default 65536, <= STORE_QUEUE_MAX */
    size_t queue_bytes_max;    /* bytes queued at most (records + text); default 64 MiB */
    size_t batch_max;          /* records per transaction; default 4096, <= STORE_QUEUE_MAX */
    uint32_t commit_ms;        /* a batch waits at most this long for more; default 100 */
    uint32_t close_timeout_ms; /* store_close() drains for at most this long; default 5000 */
    /* Upper bounds of the SLI latency buckets, strictly increasing (the last
     * may be INFINITY); every sample carries nbuckets counts. They are
     * recorded in the file: opening it with other bounds is refused. */
    const double *bucket_bounds;
    size_t nbuckets; /* 1..STORE_BUCKETS_MAX */
    store_retention_t retention;
    int64_t retention_every_s; /* a retention pass every this many seconds of
                                  submitted time; 0: only store_retention_run() */
    size_t retention_batch;    /* rows deleted per statement; default 1000 */
    store_commit_cb commit_cb; /* NULL: none */
    void *commit_data;
} store_opts_t;

/* Defaults: sync normal, retention raw 2d, minute 14d, hour 90d, day 1095d,
 * probes 14d, states 400d, events 400d, deliveries 30d, a pass every 300 s.
 * path and the buckets are left for the caller. */
void store_opts_init(store_opts_t *o);

typedef struct store store_t;

/* Opens or creates the file, sets WAL, synchronous, busy_timeout and
 * foreign_keys, applies the migrations the file lacks (one transaction
 * each), checks the bucket bounds, opens the read connection and starts the
 * store thread. NULL on failure, with the reason naming the path in err
 * ("store var/surety.db: directory var does not exist", "... schema version
 * 7 is newer than this surety knows (1)"). Strings and bounds are copied.
 * Caller thread. The caller frees it with store_close(). */
store_t *store_open(const store_opts_t *opts, char *err, size_t errlen);

/* Writes what is queued (for at most close_timeout_ms; what is left then is
 * counted as lost), stops the thread and closes the file. No submit may run
 * concurrently or after. NULL is fine. Owner thread. */
void store_close(store_t *s);

/* ---- writes: any thread, never block on the disk ----
 * Each returns 0 and sets *ret_seq (may be NULL) to the record's sequence
 * number (1, 2, ... per store_open, increasing in submit order), or
 * -ENOBUFS (queue full: counted in dropped), -EINVAL (missing name, negative
 * ts, bad bucket count), -EMSGSIZE (name or JSON too long), -ENOMEM,
 * -ESHUTDOWN (closing). Text bytes that are not UTF-8, and NULs, are stored
 * as '?' (PostgreSQL refuses them). Strings are copied. */

typedef struct {
    str_t source;            /* "listener:web", "route:api" */
    int64_t ts;              /* unix seconds */
    uint64_t requests;       /* in the interval */
    uint64_t errors;         /* 5xx in the interval */
    const uint64_t *buckets; /* opts.nbuckets counts, each (bounds[i-1], bounds[i]] */
    size_t nbuckets;         /* must equal opts.nbuckets */
} store_sli_t;

typedef struct {
    int64_t id; /* reads only */
    str_t monitor;
    int64_t ts;
    bool ok;
    double latency_ms;
    str_t detail; /* cut to STORE_TEXT_MAX */
} store_probe_t;

typedef struct {
    int64_t id; /* reads only */
    str_t monitor;
    int64_t ts;
    str_t from, to; /* "up", "down", "unknown" */
} store_state_t;

typedef struct {
    int64_t id; /* reads only */
    int64_t ts;
    str_t kind;    /* "alert_fired", "failover", ... */
    str_t subject; /* "objective:availability", "pool:api" */
    str_t detail;  /* JSON text, at most STORE_JSON_MAX; empty: "{}" */
} store_event_t;

typedef struct {
    int64_t id; /* reads only */
    int64_t ts;
    str_t alert, channel, status; /* "ops", "webhook", "ok" / "failed" / ... */
    int64_t attempt;              /* 1, 2, ... */
    str_t response;               /* cut to STORE_TEXT_MAX */
} store_delivery_t;

int store_sli_submit(store_t *s, const store_sli_t *x, uint64_t *ret_seq);
int store_probe_submit(store_t *s, const store_probe_t *x, uint64_t *ret_seq);
int store_state_submit(store_t *s, const store_state_t *x, uint64_t *ret_seq);
int store_event_submit(store_t *s, const store_event_t *x, uint64_t *ret_seq);
int store_delivery_submit(store_t *s, const store_delivery_t *x, uint64_t *ret_seq);

/* Queues a retention pass with this `now` (unix seconds): rows older than
 * now - retention of their kind are deleted, in batches between writes.
 * 0, -ENOMEM, -ESHUTDOWN. Any thread. */
int store_retention_run(store_t *s, int64_t now);

/* The highest sequence number whose transaction has committed (0: none).
 * Any thread; an atomic load. */
uint64_t store_acked(const store_t *s);

/* Blocks until store_acked() >= seq or timeout_ms passes: 0 or -ETIMEDOUT.
 * For tests, tools and shutdown, never for the control thread. */
int store_wait(store_t *s, uint64_t seq, uint32_t timeout_ms);

/* ---- reads: the read-only connection ---- */

/* SLI rows of source with from <= ts < to at resolution res, oldest first,
 * at most max into rows; *ret_n is how many. Buckets past opts.nbuckets are
 * 0. 0, -EINVAL or -EIO. */
typedef struct {
    int64_t ts;
    uint64_t requests, errors;
    uint64_t buckets[STORE_BUCKETS_MAX];
} store_sli_row_t;
int store_sli_load(store_t *s, str_t source, store_res_t res, int64_t from, int64_t to,
                   store_sli_row_t *rows, size_t max, size_t *ret_n);

/* List filters: rows with ts >= since and (until == 0 or ts < until), and
 * when name is not empty, only that kind (events) / monitor (probes,
 * states) / alert (deliveries); newest first, at most limit rows (0 or more
 * than STORE_LIST_MAX: STORE_LIST_MAX). */
typedef struct {
    int64_t since, until;
    str_t name;
    size_t limit;
} store_filter_t;

/* The callbacks get views valid during the call; a non-zero return stops the
 * listing and is returned. Otherwise 0, -EINVAL or -EIO. */
typedef int (*store_probe_cb)(void *data, const store_probe_t *row);
typedef int (*store_state_cb)(void *data, const store_state_t *row);
typedef int (*store_event_cb)(void *data, const store_event_t *row);
typedef int (*store_delivery_cb)(void *data, const store_delivery_t *row);
int store_probes_list(store_t *s, const store_filter_t *f, store_probe_cb cb, void *data);
int store_states_list(store_t *s, const store_filter_t *f, store_state_cb cb, void *data);
int store_events_list(store_t *s, const store_filter_t *f, store_event_cb cb, void *data);
int store_deliveries_list(store_t *s, const store_filter_t *f, store_delivery_cb cb, void *data);

/* ---- statistics ---- */

#define STORE_COMMIT_NBOUNDS 12
extern const double store_commit_bounds[STORE_COMMIT_NBOUNDS];

typedef struct {
    uint64_t queued;        /* records waiting now */
    uint64_t queued_bytes;  /* their bytes (with the batch being written) */
    uint64_t submitted;     /* records accepted by submit */
    uint64_t dropped;       /* refused with -ENOBUFS */
    uint64_t lost;          /* still queued when store_close() gave up */
    uint64_t acked;         /* store_acked() */
    uint64_t commits;       /* transactions committed */
    uint64_t commit_errors; /* batches rolled back (retried) */
    uint64_t rows[STORE_KIND_N];
    uint64_t commit_buckets[STORE_COMMIT_NBOUNDS + 1]; /* per bucket; last: +Inf */
    double commit_seconds;                             /* sum */
    uint64_t retention_runs;                           /* passes finished */
    uint64_t retention_deleted;                        /* rows deleted by them */
    int64_t file_bytes; /* the database file plus its WAL; -1 unknown */
} store_stats_t;

void store_stats_get(store_t *s, store_stats_t *out);
const char *store_kind_name(store_kind_t k);

/* Writes surety_store_queue_depth, surety_store_dropped_total,
 * surety_store_commits_total, surety_store_commit_errors_total,
 * surety_store_commit_seconds (histogram),
 * surety_store_rows_written_total{kind}, surety_store_retention_deleted_total
 * and surety_store_file_bytes. Any thread (the admin's). */
void store_metrics_write(store_t *s, prom_t *p);

#endif
