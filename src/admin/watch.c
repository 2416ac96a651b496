/* See watch.h. */
#include "admin/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "admin/api_security.h"
#include "core/clock.h"
#include "core/log.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ---- the notifier ---------------------------------------------------------- */


/* A small file read whole (secrets, passwords): malloc'd, NUL-terminated,
 * one trailing newline dropped. NULL with errno (EFBIG: over SECRET_MAX). */
static char *file_read(const char *path, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    /* CONF_SECRET_MAX, and a newline after it */
    char *buf = malloc(CONF_SECRET_MAX + 3);
    ssize_t n = 0, r = 0;
    while (buf && n <= CONF_SECRET_MAX + 1 &&
           (r = read(fd, buf + n, (size_t)(CONF_SECRET_MAX + 2 - n))) > 0)
        n += r;
    int e = !buf ? ENOMEM : r < 0 ? errno : n > CONF_SECRET_MAX + 1 ? EFBIG : 0;
    close(fd);
    if (e) {
        free(buf);
        errno = e;
        return NULL;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > CONF_SECRET_MAX) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    *ret_len = (size_t)n;
    return buf;
}

static void delivery_cb(void *ud, const notify_delivery_t *d)
{
    watch_t *w = ud;
    if (!w->store)
        return;
    static const char *const kinds[] = {"webhook", "email"};
    char response[192];
    snprintf(response, sizeof(response), "%ld %s", d->status, d->error);
    store_delivery_t sd = {.ts = d->time,
                           .alert = str_cstr(d->receiver_name),
                           .channel = str_cstr(kinds[d->kind & 1]),
                           .status = str_cstr(notify_result_name(d->result)),
                           .attempt = d->attempt,
                           .response = str_cstr(response)};
    (void)store_delivery_submit(w->store, &sd, NULL); /* thread-safe; a full queue drops it */
}

static notify_t *notify_build(watch_t *w, const conf_t *conf, FILE *errs)
{
    size_t n = conf->nalerts;
    if (!n)
        return NULL;
    notify_receiver_t *rc = calloc(n, sizeof(*rc));
    char **secrets = calloc(n, sizeof(*secrets));
    const char ***tos = calloc(n, sizeof(*tos));
    notify_t *nt = NULL;
    if (!rc || !secrets || !tos)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const conf_alert_t *a = &conf->alerts[i];
        size_t len = 0;
        rc[i] = (notify_receiver_t){.name = a->name,
                                    .repeat_s = a->repeat_ms / 1000,
                                    .group_wait_s = a->group_wait_ms / 1000};
        const char *file = a->kind == CONF_ALERT_WEBHOOK ? a->secret_file : a->email.password_file;
        if (file && !(secrets[i] = file_read(file, &len))) {
            fprintf(errs, "alerts.%s: cannot read %s: %s\n", a->name, file, strerror(errno));
            goto out;
        }
        if (a->kind == CONF_ALERT_WEBHOOK) {
            rc[i].kind = NOTIFY_WEBHOOK;
            rc[i].url = a->webhook;
            rc[i].secret = secrets[i];
            rc[i].secret_len = len;
            continue;
        }
        rc[i].kind = NOTIFY_EMAIL;
        rc[i].smtp_url = a->email.smtp;
        rc[i].from = a->email.from;
        if (!(tos[i] = calloc(a->email.nto, sizeof(*tos[i]))))
            goto out;
        for (size_t k = 0; k < a->email.nto; k++)
            tos[i][k] = a->email.to[k].word;
        rc[i].to = tos[i];
        rc[i].nto = a->email.nto;
        rc[i].username = a->email.username;
        rc[i].password = secrets[i];
    }
    notify_conf_t nc = {.receivers = rc,
                        .nreceivers = n,
                        .now_unix = clock_unix,
                        .on_delivery = delivery_cb,
                        .ud = w};
    char err[256] = "";
    if (!(nt = notify_new(&nc, err, sizeof(err))))
        fprintf(errs, "alerts: %s\n", err);
out:
    for (size_t i = 0; i < n; i++) {
        if (secrets && secrets[i]) {
            explicit_bzero(secrets[i], strlen(secrets[i]));
            free(secrets[i]);
        }
        if (tos)
            free(tos[i]);
    }
    free(secrets);
    free(tos);
    free(rc);
    return nt;
}

/* SHA-256 over every alert's secret (secret_file / password_file), so a
 * reload notices a rotated secret in a file of the same name. -errno when
 * one cannot be read (the notifier build then says which). */
static int secrets_digest(const conf_t *conf, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int r = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < conf->nalerts; i++) {
        const conf_alert_t *a = &conf->alerts[i];
        const char *file = a->kind == CONF_ALERT_WEBHOOK ? a->secret_file : a->email.password_file;
        size_t len = 0;
        char *secret = file ? file_read(file, &len) : NULL;
        if (file && !secret) {
            r = -errno;
            break;
        }
        EVP_DigestUpdate(md, &len, sizeof(len)); /* framing: no two lists hash alike */
        EVP_DigestUpdate(md, secret ? secret : "", len);
        if (secret) {
            explicit_bzero(secret, len);
            free(secret);
        }
    }
    if (r == 0 && EVP_DigestFinal_ex(md, out, NULL) != 1)
        r = -EINVAL;
    EVP_MD_CTX_free(md);
    return r;
}

/* Whether two `alerts:` sections say the same (then the notifier stays). */
static bool alerts_same(const conf_t *a, const conf_t *b)
{
#define SAME(x, y) ((!(x) && !(y)) || ((x) && (y) && !strcmp((x), (y))))
    if (a->nalerts != b->nalerts)
        return false;
    for (size_t i = 0; i < a->nalerts; i++) {
        const conf_alert_t *x = &a->alerts[i], *y = &b->alerts[i];
        if (!SAME(x->name, y->name) || x->kind != y->kind || !SAME(x->webhook, y->webhook) ||
            !SAME(x->secret_file, y->secret_file) || !SAME(x->email.smtp, y->email.smtp) ||
            !SAME(x->email.from, y->email.from) || !SAME(x->email.username, y->email.username) ||
            !SAME(x->email.password_file, y->email.password_file) ||
            x->email.nto != y->email.nto || x->repeat_ms != y->repeat_ms ||
            x->group_wait_ms != y->group_wait_ms)
            return false;
        for (size_t k = 0; k < x->email.nto; k++)
            if (!SAME(x->email.to[k].word, y->email.to[k].word))
                return false;
    }
    return true;
#undef SAME
}

/* ---- the collection tick --------------------------------------------------- */

static void fault_cb(void *ud, const char *kind, const char *subject, const char *detail)
{
    watch_event(ud, kind, subject, detail);
}

static void tick_cb(loop_t *loop, loop_timer_t *t)
{
    watch_t *w = container_of(t, watch_t, tick);
    clock_refresh();
    size_t n = gateway_sli_read(w->gateway, w->sli, w->sli_cap);
    if (n > w->sli_cap) { /* routes were added by a reload: grow and read again */
        gateway_sli_t *bigger = realloc(w->sli, n * sizeof(*bigger));
        if (bigger) {
            w->sli = bigger;
            w->sli_cap = n;
            n = gateway_sli_read(w->gateway, w->sli, w->sli_cap);
        }
        if (n > w->sli_cap)
            n = w->sli_cap;
    }
    monitor_tick(w->monitor, w->sli, n);
    faults_tick(&w->faults, w->gateway, gateway_state(w->gateway), loop_now(loop), fault_cb, w);
    (void)loop_timer_start(loop, t, w->tick_ms);
}

/* SURETY_TEST_TICK_MS when it is a whole number of 1 ms to a day, else
 * the product's tick. */
static uint64_t test_tick_ms(void)
{
    const char *t = getenv("SURETY_TEST_TICK_MS");
    char *end = NULL;
    errno = 0;
    unsigned long long v = t && *t ? strtoull(t, &end, 10) : 0;
    if (errno || !end || *end || v < 1 || v > 86400000ULL)
        return MONITOR_TICK_MS;
    return v;
}

int watch_init(watch_t *w, loop_t *loop, gateway_t *g, conf_t *conf, store_t *store,
               FILE *errs)
{
    memset(w, 0, sizeof(*w));
    w->loop = loop;
    w->gateway = g;
    w->conf = conf_ref(conf);
    w->store = store;
    w->tick_ms = test_tick_ms();
    clock_refresh();
    if (conf->nalerts && !(w->notify = notify_build(w, conf, errs)))
        return -EINVAL;
    (void)secrets_digest(conf, w->secrets_digest);
    monitor_opts_t mo = {.loop = loop, .conf = conf, .store = store, .notify = w->notify};
    int err = faults_reset(&w->faults, conf);
    if (err < 0)
        return err;
    if (!(w->monitor = monitor_new(&mo, NULL, &err))) {
        fprintf(errs, "monitors: cannot start: %s\n", strerror(-err));
        return err;
    }
    loop_timer_init(&w->tick, tick_cb);
    return loop_timer_start(loop, &w->tick, w->tick_ms);
}

void watch_reload(watch_t *w, conf_t *conf)
{
    notify_t *nt = w->notify;
    /* the gateway's state has the new shape now, whatever happens below */
    if (faults_reset(&w->faults, conf) < 0)
        log_error("reload: fault detection is off: out of memory");
    unsigned char digest[32] = {0};
    bool same_secrets = secrets_digest(conf, digest) == 0 &&
                        !memcmp(digest, w->secrets_digest, sizeof(digest));
    if (!alerts_same(w->conf, conf) || !same_secrets) {
        nt = conf->nalerts ? notify_build(w, conf, stderr) : NULL;
        if (conf->nalerts && !nt)
            log_error("reload: alerts: the notifier cannot start (above): no alert is sent "
                      "until a reload fixes it");
    }
    monitor_opts_t mo = {.loop = w->loop, .conf = conf, .store = w->store, .notify = nt};
    int err = 0;
    monitor_t *m = monitor_new(&mo, w->monitor, &err);
    if (!m) {
        log_error("reload: monitors cannot start: %s; keeping the previous watch", strerror(-err));
        if (nt != w->notify)
            notify_free(nt);
        return;
    }
    monitor_free(w->monitor); /* before the notifier it may post to */
    w->monitor = m;
    if (nt != w->notify)
        notify_free(w->notify);
    w->notify = nt;
    memcpy(w->secrets_digest, digest, sizeof(digest));
    conf_unref(w->conf);
    w->conf = conf_ref(conf);
}

void watch_deinit(watch_t *w)
{
    if (w->loop)
        loop_timer_stop(w->loop, &w->tick);
    monitor_free(w->monitor); /* before the notifier: nothing posts after */
    faults_deinit(&w->faults);
    notify_free(w->notify);
    free(w->sli);
    conf_unref(w->conf);
    memset(w, 0, sizeof(*w));
}

void watch_event(watch_t *w, const char *kind, const char *subject, const char *detail_json)
{
    if (w->monitor)
        monitor_event(w->monitor, kind, subject, detail_json);
}

/* ---- admin routes ---------------------------------------------------------- */

int watch_objectives_get(watch_t *w, const admin_request_t *req, admin_response_t *res)
{
    if (str_eq(admin_query_param(req->query, "format"), STR_LIT("text"))) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
            return -ENOMEM;
        monitor_status_text(w->monitor, f);
        fclose(f);
        int r = admin_response_append(res, text, len);
        free(text);
        return r;
    }
    return api_send_json(res, monitor_objectives_json(w->monitor));
}

int watch_monitors_get(watch_t *w, const admin_request_t *req, admin_response_t *res)
{
    (void)req;
    return api_send_json(res, monitor_monitors_json(w->monitor));
}

/* ?limit=N (default 100, at most MONITOR_EVENTS_KEPT) &kind=KIND */
int watch_events_get(watch_t *w, const admin_request_t *req, admin_response_t *res)
{
    str_t l = admin_query_param(req->query, "limit"), k = admin_query_param(req->query, "kind");
    size_t limit = 100;
    if (l.len) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%.*s", (int)(l.len < 15 ? l.len : 15), l.p);
        long v = strtol(buf, NULL, 10);
        limit = v < 1 ? 1 : v > MONITOR_EVENTS_KEPT ? MONITOR_EVENTS_KEPT : (size_t)v;
    }
    char kind[32] = "";
    if (k.len && k.len < sizeof(kind)) {
        memcpy(kind, k.p, k.len);
        kind[k.len] = '\0';
    }
    return api_send_json(res, monitor_events_json(w->monitor, limit, kind));
}

int watch_deliveries_get(watch_t *w, const admin_request_t *req, admin_response_t *res)
{
    (void)req;
    json_t *d = w->notify ? notify_deliveries_json(w->notify, 100) : json_array();
    return api_send_json(res, json_pack("{s:o}", "deliveries", d ? d : json_array()));
}

void watch_metrics_write(watch_t *w, prom_t *p)
{
    if (w->monitor)
        monitor_metrics_write(w->monitor, p);
}

/* ---- the store ------------------------------------------------------------- */

store_t *watch_store_open(const conf_t *conf, FILE *errs)
{
    static double bounds[CONF_LATENCY_NBUCKETS + 1];
    memcpy(bounds, conf_latency_bounds, sizeof(conf_latency_bounds));
    bounds[CONF_LATENCY_NBUCKETS] = INFINITY;
    const char *path = conf->store.sqlite;
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) { /* one level, as data_dir */
        char dir[4096];
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
            fprintf(errs, "store: cannot create %s: %s\n", dir, strerror(errno));
            return NULL;
        }
    }
    store_opts_t o;
    store_opts_init(&o);
    o.path = path;
    o.sync = conf->store.sync == CONF_STORE_SYNC_FULL ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
    o.queue_max = conf->store.queue;
    o.bucket_bounds = bounds;
    o.nbuckets = CONF_LATENCY_NBUCKETS + 1;
    o.retention = (store_retention_t){.raw = (int64_t)(conf->store.retention.raw_ms / 1000),
                                      .minute = (int64_t)(conf->store.retention.minute_ms / 1000),
                                      .hour = (int64_t)(conf->store.retention.hour_ms / 1000),
                                      .day = (int64_t)(conf->store.retention.day_ms / 1000),
                                      .probes = (int64_t)(conf->store.retention.probes_ms / 1000),
                                      .states = (int64_t)(conf->store.retention.events_ms / 1000),
                                      .events = (int64_t)(conf->store.retention.events_ms / 1000),
                                      .deliveries =
                                          (int64_t)(conf->store.retention.deliveries_ms / 1000)};
    char err[512] = "";
    store_t *s = store_open(&o, err, sizeof(err));
    if (!s)
        fprintf(errs, "store: %s\n", err);
    return s;
}
