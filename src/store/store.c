/* The store's life cycle and what it reports: options and their defaults,
 * store_open() (file, schema, read connection, thread), store_close() (a
 * bounded drain), the statistics and their Prometheus exposition. See
 * store.h for the contract and store_int.h for how the files divide. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

#define DAY_S (24 * 3600)

const double store_commit_bounds[STORE_COMMIT_NBOUNDS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};

static const char *const kind_names[STORE_KIND_N] = {"sli", "probe", "state", "event", "delivery"};

const char *store_kind_name(store_kind_t k)
{
    return (unsigned)k < STORE_KIND_N ? kind_names[k] : "?";
}

void store_opts_init(store_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->sync = STORE_SYNC_NORMAL;
    o->busy_timeout_ms = 5000;
    o->queue_max = 65536;
    o->queue_bytes_max = 64u << 20;
    o->batch_max = 4096;
    o->commit_ms = 100;
    o->close_timeout_ms = 5000;
    o->retention = (store_retention_t){
        .raw = 2 * DAY_S,
        .minute = 14 * DAY_S,
        .hour = 90 * DAY_S,
        .day = 1095 * DAY_S,
        .probes = 14 * DAY_S,
        .states = 400 * DAY_S,
        .events = 400 * DAY_S,
        .deliveries = 30 * DAY_S,
    };
    o->retention_every_s = 300;
    o->retention_batch = 1000;
}

static int check_opts(const store_opts_t *o, char *err, size_t errlen)
{
    const char *what = NULL;
    if (!o->path || !o->path[0])
        what = "no path";
    else if (o->nbuckets < 1 || o->nbuckets > STORE_BUCKETS_MAX || !o->bucket_bounds)
        what = "bucket count out of range";
    else if (o->queue_max < 1 || o->queue_max > STORE_QUEUE_MAX || o->batch_max < 1 ||
             o->batch_max > STORE_QUEUE_MAX || o->queue_bytes_max < 1 || o->retention_batch < 1)
        what = "queue, batch or retention batch size out of range";
    for (size_t i = 1; !what && i < o->nbuckets; i++)
        if (!(o->bucket_bounds[i] > o->bucket_bounds[i - 1]))
            what = "bucket bounds not strictly increasing";
    if (!what)
        return 0;
    snprintf(err, errlen, "store %s: %s", o->path ? o->path : "(null)", what);
    return -EINVAL;
}

static int init_sync(store_t *s)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_mutex_init(&s->mu, NULL) || pthread_mutex_init(&s->rmu, NULL) ||
                     pthread_cond_init(&s->cv, &ca) || pthread_cond_init(&s->ack_cv, &ca)
                 ? -ENOMEM
                 : 0;
    pthread_condattr_destroy(&ca);
    return rc;
}

/* One writing process per store file: two would each keep their own
 * objectives' minutes and interleave rollups, and their retention passes
 * would race. SQLite's own locks only serialise the writes, so the file
 * gets an exclusive flock() on PATH.lock for as long as it is open; the
 * kernel drops it when the process ends, however it ends (kill -9
 * included), so nothing stale is left behind. The lock file holds the
 * owner's pid, for the error message. Returns the descriptor or -1 with
 * the reason in err. */
static int lock_store(const char *path, char *err, size_t errlen)
{
    char name[4096];
    if ((size_t)snprintf(name, sizeof(name), "%s.lock", path) >= sizeof(name)) {
        snprintf(err, errlen, "store %s: path too long", path);
        return -1;
    }
    int fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) /* as the database itself would say */
            snprintf(err, errlen, "store %s: directory %s does not exist", path, dirname(name));
        else
            snprintf(err, errlen, "store %s: cannot create %s: %s", path, name, strerror(e));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            snprintf(err, errlen,
                     "store %s: in use by another surety (pid %s); one process per store file: "
                     "give this one its own `store.sqlite` or `data_dir`",
                     path, pid[0] ? pid : "unknown");
        else
            snprintf(err, errlen, "store %s: cannot lock %s: %s", path, name, strerror(e));
        close(fd);
        return -1;
    }
    char pid[24];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* the pid is only for the message: the lock holds without it */
    }
    return fd;
}

/* Frees what store_open() made; the thread has stopped. */
static void store_free(store_t *s)
{
    store_db_close(s);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    for (size_t i = 0; s->ring && i < s->cap; i++)
        store_rec_free(s->ring[i]);
    free(s->ring);
    free(s->batch);
    free(s->path);
    pthread_cond_destroy(&s->ack_cv);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->rmu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

store_t *store_open(const store_opts_t *opts, char *err, size_t errlen)
{
    store_t *s = NULL;
    err[0] = '\0';
    if (check_opts(opts, err, errlen) != 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s || init_sync(s) != 0) {
        free(s);
        snprintf(err, errlen, "store %s: out of memory", opts->path);
        return NULL;
    }
    s->lock_fd = lock_store(opts->path, err, errlen);
    if (s->lock_fd < 0) {
        store_free(s);
        return NULL;
    }
    s->o = *opts;
    memcpy(s->bounds, opts->bucket_bounds, opts->nbuckets * sizeof(double));
    s->o.bucket_bounds = s->bounds;
    s->path = strdup(opts->path);
    s->o.path = s->path;
    s->cap = opts->queue_max;
    s->ring = calloc(s->cap, sizeof(*s->ring));
    s->batch = calloc(opts->batch_max, sizeof(*s->batch));
    if (!s->path || !s->ring || !s->batch) {
        snprintf(err, errlen, "store %s: out of memory", opts->path);
        goto fail;
    }
    if (store_db_open_writer(s, err, errlen) != 0 || store_db_open_reader(s, err, errlen) != 0)
        goto fail;
    if (pthread_create(&s->thread, NULL, store_thread_main, s) != 0) {
        snprintf(err, errlen, "store %s: cannot start its thread", opts->path);
        goto fail;
    }
    s->started = true;
    return s;
fail:
    store_free(s);
    return NULL;
}

void store_close(store_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    s->stop = true;
    s->close_deadline_ns = store_mono_ns() + (uint64_t)s->o.close_timeout_ms * 1000000ull;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thread, NULL);
    store_free(s);
}

static int64_t file_size(const char *path, const char *suffix)
{
    char name[4096];
    struct stat sb;
    snprintf(name, sizeof(name), "%s%s", path, suffix);
    return stat(name, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void store_stats_get(store_t *s, store_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->mu);
    out->queued = s->count;
    out->queued_bytes = s->bytes;
    pthread_mutex_unlock(&s->mu);
    out->submitted = LOAD(s->n.submitted);
    out->dropped = LOAD(s->n.dropped);
    out->lost = LOAD(s->n.lost);
    out->acked = store_acked(s);
    out->commits = LOAD(s->n.commits);
    out->commit_errors = LOAD(s->n.commit_errors);
    for (int k = 0; k < STORE_KIND_N; k++)
        out->rows[k] = LOAD(s->n.rows[k]);
    for (int b = 0; b <= STORE_COMMIT_NBOUNDS; b++)
        out->commit_buckets[b] = LOAD(s->n.commit_buckets[b]);
    out->commit_seconds = (double)LOAD(s->n.commit_ns) / 1e9;
    out->retention_runs = LOAD(s->n.retention_runs);
    out->retention_deleted = LOAD(s->n.retention_deleted);
    out->file_bytes = file_size(s->path, "") + file_size(s->path, "-wal");
}

void store_metrics_write(store_t *s, prom_t *p)
{
    store_stats_t st;
    store_stats_get(s, &st);
    prom_family(p, "surety_store_queue_depth", PROM_GAUGE, "Records waiting in the store's queue.");
    prom_gauge_u64(p, "surety_store_queue_depth", NULL, 0, st.queued);
    prom_family(p, "surety_store_dropped_total", PROM_COUNTER,
                "Records refused because the store's queue was full.");
    prom_counter(p, "surety_store_dropped_total", NULL, 0, st.dropped);
    prom_family(p, "surety_store_commits_total", PROM_COUNTER, "Store transactions committed.");
    prom_counter(p, "surety_store_commits_total", NULL, 0, st.commits);
    prom_family(p, "surety_store_commit_errors_total", PROM_COUNTER,
                "Store transactions rolled back (retried).");
    prom_counter(p, "surety_store_commit_errors_total", NULL, 0, st.commit_errors);
    prom_family(p, "surety_store_commit_seconds", PROM_HISTOGRAM,
                "Time to write and commit one batch.");
    prom_histogram(p, "surety_store_commit_seconds", NULL, 0, store_commit_bounds,
                   st.commit_buckets, STORE_COMMIT_NBOUNDS, st.commit_seconds, st.commits);
    prom_family(p, "surety_store_rows_written_total", PROM_COUNTER,
                "Rows committed, by kind (an SLI sample also updates three rollup rows).");
    for (int k = 0; k < STORE_KIND_N; k++)
        prom_counter(p, "surety_store_rows_written_total",
                     PROM_LABELS({"kind", store_kind_name((store_kind_t)k)}), st.rows[k]);
    prom_family(p, "surety_store_retention_deleted_total", PROM_COUNTER,
                "Rows deleted by retention.");
    prom_counter(p, "surety_store_retention_deleted_total", NULL, 0, st.retention_deleted);
    prom_family(p, "surety_store_file_bytes", PROM_GAUGE,
                "Size of the store's database file plus its write-ahead log.");
    prom_gauge_u64(p, "surety_store_file_bytes", NULL, 0, (uint64_t)st.file_bytes);
}
