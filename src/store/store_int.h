/* Internals of the store shared by its files: the store object, the queued
 * record and the functions one file offers the others.
 *
 *   store.c   options, open/close, statistics, metrics
 *   db.c      connections, pragmas, migrations, statement preparation
 *   queue.c   records, the bounded queue, submit, acknowledgement
 *   writer.c  the store thread: batches, rollups, retention
 *   read.c    reads on the read-only connection
 *
 * Locking: `mu` guards the queue, `bytes`, `stop`, the retention request
 * and the close deadline; `acked` and the counters are atomics; the write
 * connection and its statements belong to the store thread (to the opener
 * until the thread starts); `rmu` guards the read connection. */
#ifndef SURETY_STORE_STORE_INT_H
#define SURETY_STORE_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "store/store.h"

/* The schema this binary writes; db.c's migration table ends here. */
#define STORE_SCHEMA_VERSION 1

/* What a queued record is. RETENTION carries a pass request, not a row. */
typedef enum {
    REC_SLI = STORE_KIND_SLI,
    REC_PROBE = STORE_KIND_PROBE,
    REC_STATE = STORE_KIND_STATE,
    REC_EVENT = STORE_KIND_EVENT,
    REC_DELIVERY = STORE_KIND_DELIVERY,
    REC_RETENTION,
} store_rec_kind_t;

/* A queued record: one allocation, the text copied behind the struct.
 * Text fields by kind: SLI source; PROBE monitor, detail; STATE monitor,
 * from, to; EVENT kind, subject, detail; DELIVERY alert, channel, status,
 * response. */
typedef struct {
    store_rec_kind_t kind;
    uint64_t seq;
    size_t size; /* of the allocation, for the byte budget */
    int64_t ts;
    union {
        struct {
            uint64_t requests, errors;
            uint64_t buckets[STORE_BUCKETS_MAX];
        } sli;
        struct {
            bool ok;
            double latency_ms;
        } probe;
        int64_t attempt;
    } u;
    str_t text[4];
    char data[];
} store_rec_t;

/* Prepared statements of the write connection. */
enum {
    ST_SLI_RAW,
    ST_SLI_MINUTE,
    ST_SLI_HOUR,
    ST_SLI_DAY,
    ST_PROBE,
    ST_STATE,
    ST_EVENT,
    ST_DELIVERY,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_N,
};

/* Tables with retention, in the order a pass visits them. */
#define STORE_NTABLES 8

struct store {
    store_opts_t o; /* path and bounds point at the copies below */
    char *path;
    int lock_fd; /* PATH.lock, flock()ed while open: one process per file */
    double bounds[STORE_BUCKETS_MAX];

    sqlite3 *wdb; /* store thread */
    sqlite3_stmt *st[ST_N];
    sqlite3_stmt *del[STORE_NTABLES]; /* retention, one per table */
    sqlite3 *rdb;                     /* under rmu */
    pthread_mutex_t rmu;

    /* The queue: a ring of record pointers. */
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* the thread waits for records or stop */
    pthread_cond_t ack_cv; /* store_wait() waits for commits */
    store_rec_t **ring;
    size_t cap, head, count;
    size_t bytes; /* queued + in the batch being written */
    uint64_t last_seq;
    bool stop, closing;
    uint64_t close_deadline_ns; /* CLOCK_MONOTONIC */

    pthread_t thread;
    bool started;

    /* Store thread only. */
    store_rec_t **batch;
    int64_t max_ts, last_pass_ts;
    bool pass_active;
    int64_t pass_now;
    size_t pass_table;
    bool failing;

    _Atomic uint64_t acked;
    struct {
        _Atomic uint64_t submitted, dropped, lost, commits, commit_errors, retention_runs,
            retention_deleted;
        _Atomic uint64_t rows[STORE_KIND_N];
        _Atomic uint64_t commit_buckets[STORE_COMMIT_NBOUNDS + 1];
        _Atomic uint64_t commit_ns;
    } n;
};

/* db.c: opens the write connection with its pragmas, migrates, checks the
 * bounds, prepares the write statements. Caller thread, before the store
 * thread starts. 0 or -errno with the reason in err. */
int store_db_open_writer(store_t *s, char *err, size_t errlen);
/* db.c: the read-only connection. 0 or -errno with the reason in err. */
int store_db_open_reader(store_t *s, char *err, size_t errlen);
/* db.c: finalizes the statements and closes both connections. */
void store_db_close(store_t *s);
/* db.c: prepares sql, whose parameters must be $1, $2, ... in order of first
 * appearance (so the text runs unchanged on PostgreSQL); 0 or -EINVAL/-EIO. */
int store_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret);
/* db.c: the retention tables: name, and the option member of the kind. */
extern const char *const store_tables[STORE_NTABLES];
int64_t store_table_keep(const store_opts_t *o, size_t table);

/* writer.c: the thread's body. */
void *store_thread_main(void *arg);

/* queue.c: frees a record (NULL fine). */
void store_rec_free(store_rec_t *r);
/* queue.c: takes up to max records off the queue into out (mu held). */
size_t store_queue_take(store_t *s, store_rec_t **out, size_t max);

uint64_t store_mono_ns(void);

#endif
