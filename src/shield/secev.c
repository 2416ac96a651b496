/* Security events and the security center (see secev.h for the contract).
 *
 * The queue is Dmitry Vyukov's bounded MPMC queue used with one consumer:
 * each cell carries a sequence number that says whether it is free for the
 * producer of ticket `pos` (seq == pos) or holds that producer's event
 * (seq == pos + 1). A producer claims a ticket with one compare-and-swap,
 * copies its event and publishes it with a release store; a full queue is
 * a cell still holding an event one lap behind, and the producer drops. No
 * lock, no wait, and a producer preempted in the middle delays only the
 * consumer.
 *
 * The thread sleeps in poll() on an eventfd with a timeout (the next ban
 * expiry, the next save, at most a second). Producers write the eventfd
 * only when the thread said it is going to sleep (`idle`): the thread
 * stores idle, then looks at the queue; a producer publishes, then looks
 * at idle; with a full fence on each side one of them sees the other
 * (Dekker), so no event waits for the timeout and a busy thread costs
 * producers no syscall.
 *
 * Ban changes come from this thread (strikes, expiry) and from the control
 * thread (sec_ban_add, sec_ban_lift). ban_mu serializes them together with
 * their nftables update, so the kernel set follows the table in order.
 * Events are recorded (log, ring) only by this thread: the control thread
 * posts the events of its changes like any worker. */
#include "core/str.h"
#include "shield/secev.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "shield/ban.h"
#include "shield/nft.h"

#define SEC_RING_DEFAULT 1000
#define SEC_QUEUE_DEFAULT 8192
#define SEC_LOG_BUF (64 * 1024)
/* Events handled between two looks at the clock, expiries and saves. */
#define SEC_DRAIN_BATCH 4096
#define SEC_EXPIRE_BATCH 64
/* The longest sleep: bans expire within this of their time. */
#define SEC_TICK_MS 1000
#define SEC_DROP_WARN_MS 10000
/* Events copied out of the ring per lock for the API. */
#define SEC_COPY_CHUNK 256

typedef struct {
    atomic_size_t seq;
    bool has_rule;
    secev_ban_rule_t rule;
    secev_t ev;
} cell_t;

struct sec {
    /* The queue. tail is the producers' ticket counter, head the thread's
     * own; the padding keeps them off each other's cache line. */
    cell_t *cells;
    size_t mask;
    char pad0[64];
    atomic_size_t tail;
    char pad1[64];
    size_t head;
    atomic_int idle; /* the thread is about to sleep: producers wake it */
    int efd;

    uint64_t (*clock)(void);
    pthread_t thread;
    bool started;
    atomic_bool stop;

    /* The log: this thread only, but for the reopen request. */
    char *log_path; /* NULL: stdout */
    int log_fd;     /* -1: no log */
    atomic_int reopen;
    char *logbuf;
    size_t loglen;
    bool log_failing;

    /* The ring of recent events, read by the control thread. total counts
     * every event ever put: event k sits at k % cap while k >= total - n. */
    pthread_mutex_t ring_mu;
    secev_t *ring;
    size_t ring_cap, ring_n;
    uint64_t ring_total;

    /* Bans. strikes belongs to this thread; ban_mu is held across a change
     * of the table and its nftables update. */
    pthread_mutex_t ban_mu;
    ban_table_t *bans;
    ban_strikes_t *strikes;
    nftset_t *nft;
    char *bans_path;
    atomic_int dirty;
    uint64_t last_save; /* CLOCK_MONOTONIC ms */
    bool save_failing;

    /* sec_sync: callers bump sync_req; the thread answers with sync_done. */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    atomic_uint_fast64_t sync_req;
    uint64_t sync_done;

    uint64_t dropped_seen, drop_warned; /* this thread */
    struct {
        atomic_uint_fast64_t posted, dropped, bans_total, bans_replaced, log_errors, nft_errors;
    } n;
};

static const char *const layer_names[] = {"connection", "request", "content", "ban"};
static const char *const action_names[] = {"refuse", "block", "detect", "ban", "lift"};

const char *secev_layer_name(unsigned layer)
{
    return layer < sizeof(layer_names) / sizeof(layer_names[0]) ? layer_names[layer] : "?";
}

const char *secev_action_name(unsigned action)
{
    return action < sizeof(action_names) / sizeof(action_names[0]) ? action_names[action] : "?";
}

static uint64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- JSON ---- */

/* A JSON string of s[0, strnlen(s, max)), max <= sizeof(secev_t.detail),
 * with each byte that is not UTF-8 written as the text \xNN (jansson wants
 * valid UTF-8, and a path with a stray byte is evidence to keep). */
static json_t *json_text(const char *s, size_t max)
{
    char out[4 * sizeof(((secev_t *)0)->detail)];
    size_t n = strnlen(s, max), o = 0;
    for (size_t i = 0; i < n && o + 4 <= sizeof(out);) {
        size_t k = str_utf8_len((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            snprintf(out + o, 5, "\\x%02x", (unsigned char)s[i++]);
            o += 4;
        }
    }
    return json_stringn(out, o);
}

/* Sets key to the text of field unless it is empty; -1 out of memory. */
static int put_text(json_t *o, const char *key, const char *field, size_t size)
{
    if (size == 0 || field[0] == '\0')
        return 0;
    return json_object_set_new(o, key, json_text(field, size));
}

/* "2026-11-29T14:05:19.123Z" */
static void format_time(uint64_t ms, char *out, size_t n)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}

static bool client_text(const sock_addr_t *c, char *out, size_t n)
{
    ban_addr_t a;
    if (!ban_addr_from_sockaddr((const struct sockaddr *)&c->ss, &a))
        return false;
    ban_addr_format(&a, out, n);
    return true;
}

json_t *secev_json(const secev_t *ev)
{
    char text[BAN_ADDR_TEXT_MAX > 32 ? BAN_ADDR_TEXT_MAX : 32];
    json_t *o = json_object();
    int bad = 0;
    if (!o)
        return NULL;
    format_time(ev->wall_ms, text, sizeof(text));
    bad |= json_object_set_new(o, "time", json_string(text));
    if (client_text(&ev->client, text, sizeof(text)))
        bad |= json_object_set_new(o, "client", json_string(text));
    bad |= put_text(o, "policy", ev->policy, sizeof(ev->policy));
    bad |= json_object_set_new(o, "layer", json_string(secev_layer_name(ev->layer)));
    bad |= json_object_set_new(o, "action", json_string(secev_action_name(ev->action)));
    bad |= put_text(o, "reason", ev->reason, sizeof(ev->reason));
    if (ev->status)
        bad |= json_object_set_new(o, "status", json_integer(ev->status));
    if (ev->nrules) {
        json_t *rules = json_array();
        unsigned n = ev->nrules < SECEV_MAX_RULES ? ev->nrules : SECEV_MAX_RULES;
        for (unsigned i = 0; rules && i < n; i++)
            bad |= json_array_append_new(rules, json_integer(ev->rules[i]));
        bad |= json_object_set_new(o, "rules", rules);
    }
    bad |= put_text(o, "request_id", ev->request_id, sizeof(ev->request_id));
    bad |= put_text(o, "method", ev->method, sizeof(ev->method));
    bad |= put_text(o, "path", ev->path, sizeof(ev->path));
    bad |= put_text(o, "detail", ev->detail, sizeof(ev->detail));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- the queue ---- */

static void wake(sec_t *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->efd, &one, sizeof(one));
    (void)w; /* EAGAIN: the counter is full, the thread is woken anyway */
}

void sec_post(sec_t *s, const secev_t *ev, const secev_ban_rule_t *rule)
{
    if (!s)
        return;
    uint64_t wall = ev->wall_ms ? ev->wall_ms : s->clock();
    size_t pos = atomic_load_explicit(&s->tail, memory_order_relaxed);
    cell_t *c;
    for (;;) {
        c = &s->cells[pos & s->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            /* On failure pos is reloaded with the current tail. */
            if (atomic_compare_exchange_weak_explicit(&s->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            atomic_fetch_add_explicit(&s->n.dropped, 1, memory_order_relaxed);
            return;
        } else {
            pos = atomic_load_explicit(&s->tail, memory_order_relaxed);
        }
    }
    c->ev = *ev;
    c->ev.wall_ms = wall;
    c->has_rule = rule != NULL;
    if (rule)
        c->rule = *rule;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    atomic_fetch_add_explicit(&s->n.posted, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->idle, memory_order_relaxed) &&
        atomic_exchange_explicit(&s->idle, 0, memory_order_relaxed))
        wake(s);
}

/* The cell the thread takes next, when a producer has published it. */
static cell_t *queue_peek(sec_t *s)
{
    cell_t *c = &s->cells[s->head & s->mask];
    return atomic_load_explicit(&c->seq, memory_order_acquire) == s->head + 1 ? c : NULL;
}

/* Gives the cell back to producers for the next lap. */
static void queue_release(sec_t *s, cell_t *c)
{
    atomic_store_explicit(&c->seq, s->head + s->mask + 1, memory_order_release);
    s->head++;
}

/* ---- recording: log and ring (this thread) ---- */

static void log_reopen(sec_t *s)
{
    if (!atomic_exchange_explicit(&s->reopen, 0, memory_order_acq_rel) || !s->log_path)
        return;
    int fd = open(s->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_error("security log: cannot reopen %s: %s", s->log_path, strerror(errno));
        return;
    }
    close(s->log_fd);
    s->log_fd = fd;
}

static void log_flush(sec_t *s)
{
    size_t off = 0;
    while (off < s->loglen) {
        ssize_t w = write(s->log_fd, s->logbuf + off, s->loglen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            atomic_fetch_add_explicit(&s->n.log_errors, 1, memory_order_relaxed);
            /* Once per failing spell: a full disk would flood stderr. */
            if (!s->log_failing)
                log_error("security log: write failed: %s", strerror(errno));
            s->log_failing = true;
            s->loglen = 0;
            return;
        }
        off += (size_t)w;
    }
    if (s->log_failing && s->loglen)
        log_info("security log: writing again");
    s->log_failing = false;
    s->loglen = 0;
}

static void log_add(sec_t *s, const secev_t *ev)
{
    json_t *o = secev_json(ev);
    if (!o) {
        atomic_fetch_add_explicit(&s->n.log_errors, 1, memory_order_relaxed);
        return;
    }
    size_t need = json_dumpb(o, NULL, 0, JSON_COMPACT) + 1;
    if (s->loglen + need > SEC_LOG_BUF)
        log_flush(s);
    if (need == 1 || need > SEC_LOG_BUF) {
        atomic_fetch_add_explicit(&s->n.log_errors, 1, memory_order_relaxed);
    } else {
        s->loglen += json_dumpb(o, s->logbuf + s->loglen, SEC_LOG_BUF - s->loglen, JSON_COMPACT);
        s->logbuf[s->loglen++] = '\n';
    }
    json_decref(o);
}

/* Logs ev and keeps it in the ring. Strings are cut to their arrays first,
 * so that every later reader may treat them as C strings. */
static void record(sec_t *s, secev_t *ev)
{
    ev->policy[sizeof(ev->policy) - 1] = '\0';
    ev->reason[sizeof(ev->reason) - 1] = '\0';
    ev->request_id[sizeof(ev->request_id) - 1] = '\0';
    ev->method[sizeof(ev->method) - 1] = '\0';
    ev->path[sizeof(ev->path) - 1] = '\0';
    ev->detail[sizeof(ev->detail) - 1] = '\0';
    if (ev->nrules > SECEV_MAX_RULES)
        ev->nrules = SECEV_MAX_RULES;
    if (s->log_fd >= 0)
        log_add(s, ev);
    pthread_mutex_lock(&s->ring_mu);
    s->ring[s->ring_total % s->ring_cap] = *ev;
    s->ring_total++;
    if (s->ring_n < s->ring_cap)
        s->ring_n++;
    pthread_mutex_unlock(&s->ring_mu);
}

/* The center whose thread this is, NULL on any other thread. */
static _Thread_local sec_t *sec_self;

/* Records ev from this thread, or queues it from any other. */
static void emit(sec_t *s, secev_t *ev)
{
    if (sec_self == s)
        record(s, ev);
    else
        sec_post(s, ev, NULL);
}

/* ---- bans ---- */

static void addr_to_sock(const ban_addr_t *a, sock_addr_t *out)
{
    memset(out, 0, sizeof(*out));
    if (ban_addr_is_v4(a)) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a->b + 12, 4);
        out->len = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a->b, 16);
        out->len = sizeof(*s6);
    }
}

/* "1d2h3m4s", "10m", "250ms": the largest units, no zero parts. */
static void format_duration(uint64_t ms, char *out, size_t n)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    size_t o = 0;
    out[0] = '\0';
    if (ms < 1000) {
        snprintf(out, n, "%llums", (unsigned long long)ms);
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && o < n; i++) {
        uint64_t k = ms / units[i].ms;
        ms %= units[i].ms;
        if (k)
            o += (size_t)snprintf(out + o, n - o, "%llu%s", (unsigned long long)k, units[i].unit);
    }
}

/* Records a ban (action ban) or a lift (action lift, with its reason). */
static void emit_ban(sec_t *s, const ban_t *b, uint8_t action, const char *reason)
{
    secev_t ev;
    char len[48];
    memset(&ev, 0, sizeof(ev));
    ev.wall_ms = s->clock();
    addr_to_sock(&b->addr, &ev.client);
    snprintf(ev.policy, sizeof(ev.policy), "%s", b->policy);
    ev.layer = SECEV_BAN;
    ev.action = action;
    snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    format_duration(b->until - b->since, len, sizeof(len));
    snprintf(ev.detail, sizeof(ev.detail), "%s %s, offence %u",
             action == SECEV_BANNED ? "for" : "ban of", len, b->offences);
    emit(s, &ev);
}

static void nft_failed(sec_t *s, const char *err)
{
    atomic_fetch_add_explicit(&s->n.nft_errors, 1, memory_order_relaxed);
    log_error("security: %s", err);
}

/* Mirrors b into nftables with what is left of it. ban_mu held. */
static void nft_put(sec_t *s, const ban_t *b, uint64_t now)
{
    char addr[BAN_ADDR_TEXT_MAX], err[256];
    if (!s->nft || b->until <= now)
        return;
    ban_addr_format(&b->addr, addr, sizeof(addr));
    nftset_elem_t e = {addr, b->until - now};
    if (nftset_add(s->nft, &e, 1, err, sizeof(err)) < 0)
        nft_failed(s, err);
}

static void nft_drop(sec_t *s, const ban_t *b)
{
    char addr[BAN_ADDR_TEXT_MAX], err[256];
    if (!s->nft)
        return;
    ban_addr_format(&b->addr, addr, sizeof(addr));
    if (nftset_del(s->nft, addr, err, sizeof(err)) < 0)
        nft_failed(s, err);
}

/* Puts b in the table and nftables and records it. ban_mu held. */
static int apply_ban(sec_t *s, const ban_t *b, uint64_t now)
{
    ban_t old;
    int r = ban_table_put(s->bans, b, &old);
    if (r < 0)
        return r;
    atomic_fetch_add_explicit(&s->n.bans_total, 1, memory_order_relaxed);
    if (r == BAN_PUT_REPLACED) {
        atomic_fetch_add_explicit(&s->n.bans_replaced, 1, memory_order_relaxed);
        nft_drop(s, &old);
        emit_ban(s, &old, SECEV_LIFTED, "replaced");
    }
    nft_put(s, b, now);
    emit_ban(s, b, SECEV_BANNED, b->reason);
    atomic_store_explicit(&s->dirty, 1, memory_order_release);
    return 0;
}

/* Counts ev as a strike of its client under rule; bans at the count. */
static void strike(sec_t *s, const secev_t *ev, const secev_ban_rule_t *rule)
{
    ban_addr_t a;
    if (rule->after == 0 || rule->within_ms == 0 || rule->for_ms == 0 ||
        !ban_addr_from_sockaddr((const struct sockaddr *)&ev->client.ss, &a))
        return;
    uint64_t now = s->clock();
    /* A banned client's events are the ban working, not new offences. */
    if (ban_table_until(s->bans, &a) > now)
        return;
    if (!ban_strikes_add(s->strikes, &a, ev->wall_ms, rule->after, rule->within_ms))
        return;
    ban_t b;
    memset(&b, 0, sizeof(b));
    b.addr = a;
    snprintf(b.reason, sizeof(b.reason), "strikes");
    snprintf(b.policy, sizeof(b.policy), "%s", ev->policy);
    pthread_mutex_lock(&s->ban_mu);
    /* Checked again under the lock: an admin may have just banned it, and
     * that ban must not be replaced by this one. */
    if (ban_table_until(s->bans, &a) <= now) {
        b.offences = ban_table_offences(s->bans, &a, now) + 1;
        b.since = now;
        b.until = now + ban_duration(rule->for_ms, rule->max_ms, b.offences);
        if (apply_ban(s, &b, now) < 0)
            log_error("security: cannot ban a client: out of memory");
    }
    pthread_mutex_unlock(&s->ban_mu);
}

/* Lifts the bans whose time has come. */
static void expire(sec_t *s)
{
    ban_t out[SEC_EXPIRE_BATCH];
    uint64_t now = s->clock();
    size_t k;
    if (ban_table_count(s->bans) == 0)
        return;
    pthread_mutex_lock(&s->ban_mu);
    do {
        k = ban_table_expire(s->bans, now, out, SEC_EXPIRE_BATCH);
        for (size_t i = 0; i < k; i++) {
            /* The kernel's timeout has normally removed it already; not if
             * the clock jumped or the element was re-added late. */
            nft_drop(s, &out[i]);
            emit_ban(s, &out[i], SECEV_LIFTED, "expired");
        }
        if (k)
            atomic_store_explicit(&s->dirty, 1, memory_order_release);
    } while (k == SEC_EXPIRE_BATCH);
    pthread_mutex_unlock(&s->ban_mu);
}

/* Saves the bans when they changed and the last save is old enough (or
 * always when force). A failure is logged once and retried. */
static void save(sec_t *s, bool force)
{
    char err[512];
    ban_t *bans;
    size_t n;
    if (!s->bans_path || !atomic_load_explicit(&s->dirty, memory_order_acquire))
        return;
    uint64_t mono = mono_ms();
    if (!force && mono - s->last_save < SEC_SAVE_INTERVAL_MS)
        return;
    /* Cleared before the snapshot: a change after it saves again. */
    atomic_store_explicit(&s->dirty, 0, memory_order_release);
    s->last_save = mono;
    int r = ban_table_snapshot(s->bans, &bans, &n);
    if (r == 0) {
        r = ban_file_save(s->bans_path, bans, n, err, sizeof(err));
        free(bans);
    } else {
        snprintf(err, sizeof(err), "out of memory");
    }
    if (r < 0) {
        atomic_store_explicit(&s->dirty, 1, memory_order_release);
        if (!s->save_failing)
            log_error("security: cannot save the bans: %s", err);
        s->save_failing = true;
    } else if (s->save_failing) {
        log_info("security: bans saved again to %s", s->bans_path);
        s->save_failing = false;
    }
}

/* ---- the thread ---- */

/* Handles up to SEC_DRAIN_BATCH queued events; true when it stopped at
 * the batch limit rather than at an empty queue. */
static bool drain(sec_t *s)
{
    for (int i = 0; i < SEC_DRAIN_BATCH; i++) {
        cell_t *c = queue_peek(s);
        if (!c)
            return false;
        secev_t ev = c->ev;
        secev_ban_rule_t rule = c->rule;
        bool has_rule = c->has_rule;
        queue_release(s, c);
        record(s, &ev);
        if (has_rule)
            strike(s, &ev, &rule);
    }
    return true;
}

/* Drains until every ticket below target is handled: a producer may have
 * taken one before a sync call and not published it yet. Tickets taken
 * later do not count, or a flood would keep this going for ever. */
static void drain_to(sec_t *s, size_t target)
{
    while ((intptr_t)(target - s->head) > 0)
        if (!drain(s) && (intptr_t)(target - s->head) > 0)
            sched_yield();
}

static void warn_drops(sec_t *s)
{
    uint64_t d = atomic_load_explicit(&s->n.dropped, memory_order_relaxed);
    uint64_t mono = mono_ms();
    if (d == s->dropped_seen || mono - s->drop_warned < SEC_DROP_WARN_MS)
        return;
    log_warn("security: %llu events dropped, the queue was full",
             (unsigned long long)(d - s->dropped_seen));
    s->dropped_seen = d;
    s->drop_warned = mono;
}

/* How long the thread may sleep: until the next expiry or save, at most a
 * tick. The clock may be a test's, so never trust it for more. */
static int sleep_ms(sec_t *s)
{
    uint64_t wait = SEC_TICK_MS;
    uint64_t next = ban_table_next_expiry(s->bans), now = s->clock();
    if (next != UINT64_MAX)
        wait = next > now ? next - now : 0;
    if (s->bans_path && atomic_load_explicit(&s->dirty, memory_order_acquire)) {
        uint64_t since = mono_ms() - s->last_save;
        uint64_t due = since < SEC_SAVE_INTERVAL_MS ? SEC_SAVE_INTERVAL_MS - since : 0;
        wait = due < wait ? due : wait;
    }
    return (int)(wait < SEC_TICK_MS ? wait : SEC_TICK_MS);
}

/* Sleeps unless there is work; see the Dekker note at the top. */
static void nap(sec_t *s, uint64_t req)
{
    atomic_store_explicit(&s->idle, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!queue_peek(s) && atomic_load(&s->sync_req) == req && !atomic_load(&s->stop) &&
        !atomic_load(&s->reopen)) {
        struct pollfd p = {.fd = s->efd, .events = POLLIN};
        uint64_t v;
        if (poll(&p, 1, sleep_ms(s)) > 0) {
            ssize_t r = read(s->efd, &v, sizeof(v));
            (void)r; /* EAGAIN only: we are the only reader */
        }
    }
    atomic_store_explicit(&s->idle, 0, memory_order_relaxed);
}

static void *sec_main(void *arg)
{
    sec_t *s = arg;
    sec_self = s;
    for (;;) {
        uint64_t req = atomic_load_explicit(&s->sync_req, memory_order_acquire);
        bool stop = atomic_load_explicit(&s->stop, memory_order_acquire);
        bool more = drain(s);
        if (stop || req != s->sync_done)
            drain_to(s, atomic_load_explicit(&s->tail, memory_order_acquire));
        log_reopen(s);
        expire(s);
        if (s->log_fd >= 0)
            log_flush(s);
        save(s, stop);
        warn_drops(s);
        if (req != s->sync_done) {
            pthread_mutex_lock(&s->sync_mu);
            s->sync_done = req;
            pthread_cond_broadcast(&s->sync_cv);
            pthread_mutex_unlock(&s->sync_mu);
        }
        if (stop)
            break;
        if (!more)
            nap(s, req);
    }
    return NULL;
}

/* ---- life cycle ---- */

/* The pieces that need no file, no kernel and no thread. */
static sec_t *sec_alloc(const sec_conf_t *c)
{
    sec_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->ring_mu, NULL);
    pthread_mutex_init(&s->ban_mu, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->sync_cv, &ca);
    pthread_condattr_destroy(&ca);
    s->efd = -1;
    s->log_fd = -1;
    s->clock = c->clock_ms ? c->clock_ms : realtime_ms;
    size_t q = c->queue ? c->queue : SEC_QUEUE_DEFAULT, cap = 2;
    q = q < SEC_QUEUE_MAX ? q : SEC_QUEUE_MAX;
    while (cap < q)
        cap *= 2;
    s->mask = cap - 1;
    s->ring_cap = c->ring ? c->ring : SEC_RING_DEFAULT;
    s->ring_cap = s->ring_cap < SEC_RING_MAX ? s->ring_cap : SEC_RING_MAX;
    s->cells = calloc(cap, sizeof(*s->cells));
    s->ring = calloc(s->ring_cap, sizeof(*s->ring));
    s->logbuf = malloc(SEC_LOG_BUF);
    s->bans = ban_table_new();
    s->strikes = ban_strikes_new();
    if (!s->cells || !s->ring || !s->logbuf || !s->bans || !s->strikes) {
        sec_free(s);
        return NULL;
    }
    for (size_t i = 0; i < cap; i++)
        atomic_init(&s->cells[i].seq, i);
    return s;
}

static int open_log(sec_t *s, const char *path, char *err, size_t errlen)
{
    if (!path)
        return 0;
    if (strcmp(path, "-") == 0) {
        s->log_fd = STDOUT_FILENO;
        return 0;
    }
    s->log_path = strdup(path);
    if (!s->log_path)
        return -ENOMEM;
    s->log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (s->log_fd < 0) {
        int r = -errno;
        snprintf(err, errlen, "security log %s: %s", path, strerror(-r));
        return r;
    }
    return 0;
}

/* Loads the ban file and writes it back at once: expired bans leave the
 * file, and a directory we cannot write is an error now rather than at
 * the first ban. */
static int load_bans(sec_t *s, const char *path, char *err, size_t errlen)
{
    char why[512];
    ban_t *bans;
    size_t n;
    if (!path)
        return 0;
    s->bans_path = strdup(path);
    if (!s->bans_path)
        return -ENOMEM;
    int r = ban_file_load(s->bans, path, s->clock(), why, sizeof(why));
    if (r == 0)
        r = ban_table_snapshot(s->bans, &bans, &n);
    if (r == 0) {
        r = ban_file_save(path, bans, n, why, sizeof(why));
        free(bans);
    }
    if (r < 0)
        snprintf(err, errlen, "bans %s", r == -ENOMEM ? "out of memory" : why);
    s->last_save = mono_ms();
    return r;
}

/* Sets up the nftables table and adds the loaded bans to it, with what
 * is left of each. */
static int open_nft(sec_t *s, const char *table, char *err, size_t errlen)
{
    char(*text)[BAN_ADDR_TEXT_MAX] = NULL;
    nftset_elem_t *elems = NULL;
    ban_t *bans = NULL;
    size_t n = 0, k = 0;
    int r = -ENOMEM;

    s->nft = nftset_open(table ? table : "surety", err, errlen);
    if (!s->nft)
        return -EIO;
    if (ban_table_snapshot(s->bans, &bans, &n) < 0)
        goto out;
    text = malloc((n ? n : 1) * sizeof(*text));
    elems = malloc((n ? n : 1) * sizeof(*elems));
    if (!text || !elems)
        goto out;
    uint64_t now = s->clock();
    for (size_t i = 0; i < n; i++) {
        if (bans[i].until <= now)
            continue;
        ban_addr_format(&bans[i].addr, text[k], sizeof(text[k]));
        elems[k].addr = text[k];
        elems[k].timeout_ms = bans[i].until - now;
        k++;
    }
    r = nftset_add(s->nft, elems, k, err, errlen);
out:
    if (r == -ENOMEM)
        snprintf(err, errlen, "nftables: out of memory");
    free(text);
    free(elems);
    free(bans);
    return r;
}

sec_t *sec_new(const sec_conf_t *c, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    sec_t *s = sec_alloc(c);
    if (!s) {
        snprintf(err, errlen, "security: out of memory");
        return NULL;
    }
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        snprintf(err, errlen, "security: eventfd: %s", strerror(errno));
        goto fail;
    }
    if (open_log(s, c->log_path, err, errlen) < 0 || load_bans(s, c->bans_path, err, errlen) < 0)
        goto fail;
    if (c->nftables && open_nft(s, c->nft_table, err, errlen) < 0)
        goto fail;
    if (pthread_create(&s->thread, NULL, sec_main, s) != 0) {
        snprintf(err, errlen, "security: cannot start the thread");
        goto fail;
    }
    s->started = true;
    return s;
fail:
    if (!err[0])
        snprintf(err, errlen, "security: out of memory");
    sec_free(s);
    return NULL;
}

void sec_free(sec_t *s)
{
    if (!s)
        return;
    if (s->started) {
        atomic_store(&s->stop, true);
        wake(s);
        pthread_join(s->thread, NULL);
    }
    pthread_mutex_destroy(&s->ring_mu);
    pthread_mutex_destroy(&s->ban_mu);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_cond_destroy(&s->sync_cv);
    if (s->efd >= 0)
        close(s->efd);
    if (s->log_fd > STDERR_FILENO)
        close(s->log_fd);
    nftset_close(s->nft);
    ban_table_free(s->bans);
    ban_strikes_free(s->strikes);
    free(s->log_path);
    free(s->bans_path);
    free(s->logbuf);
    free(s->ring);
    free(s->cells);
    free(s);
}

/* ---- admin ---- */

/* Copies a manual reason as a token: printable ASCII only. */
static void copy_reason(char *out, size_t n, const char *reason)
{
    size_t i = 0;
    for (; reason && reason[i] && i + 1 < n; i++)
        out[i] = reason[i] >= 0x20 && reason[i] < 0x7f ? reason[i] : '?';
    out[i] = '\0';
    if (i == 0)
        snprintf(out, n, "manual");
}

int sec_ban_add(sec_t *s, const char *address, uint64_t for_ms, const char *reason)
{
    ban_addr_t a;
    ban_t b;
    if (ban_addr_parse(address, &a) < 0 || for_ms == 0)
        return -EINVAL;
    memset(&b, 0, sizeof(b));
    b.addr = a;
    copy_reason(b.reason, sizeof(b.reason), reason);
    pthread_mutex_lock(&s->ban_mu);
    uint64_t now = s->clock();
    b.offences = ban_table_offences(s->bans, &a, now) + 1;
    b.since = now;
    b.until = now + (for_ms < BAN_FOR_MAX_MS ? for_ms : BAN_FOR_MAX_MS);
    int r = apply_ban(s, &b, now);
    pthread_mutex_unlock(&s->ban_mu);
    return r;
}

int sec_ban_lift(sec_t *s, const char *address)
{
    ban_addr_t a;
    ban_t old;
    int r = -ENOENT;
    if (ban_addr_parse(address, &a) < 0)
        return -EINVAL;
    pthread_mutex_lock(&s->ban_mu);
    /* A ban past its time is not a ban any more, whether or not the
     * thread has got round to lifting it. */
    if (ban_table_until(s->bans, &a) > s->clock() && ban_table_lift(s->bans, &a, &old) == 0) {
        nft_drop(s, &old);
        emit_ban(s, &old, SECEV_LIFTED, "manual");
        atomic_store_explicit(&s->dirty, 1, memory_order_release);
        r = 0;
    }
    pthread_mutex_unlock(&s->ban_mu);
    return r;
}

bool sec_banned(sec_t *s, const struct sockaddr *sa)
{
    ban_addr_t a;
    if (!s || !sa || ban_table_count(s->bans) == 0 || !ban_addr_from_sockaddr(sa, &a))
        return false;
    uint64_t until = ban_table_until(s->bans, &a);
    return until != 0 && until > s->clock();
}

static int ban_newest_first(const void *pa, const void *pb)
{
    const ban_t *a = pa, *b = pb;
    if (a->since != b->since)
        return a->since < b->since ? 1 : -1;
    return memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

static json_t *ban_json(const ban_t *b)
{
    char text[BAN_ADDR_TEXT_MAX > 32 ? BAN_ADDR_TEXT_MAX : 32];
    json_t *o = json_object();
    int bad = !o;
    if (bad)
        return NULL;
    ban_addr_format(&b->addr, text, sizeof(text));
    bad |= json_object_set_new(o, "address", json_string(text));
    format_time(b->since, text, sizeof(text));
    bad |= json_object_set_new(o, "since", json_string(text));
    format_time(b->until, text, sizeof(text));
    bad |= json_object_set_new(o, "until", json_string(text));
    bad |= json_object_set_new(o, "offences", json_integer(b->offences));
    bad |= put_text(o, "reason", b->reason, sizeof(b->reason));
    bad |= put_text(o, "policy", b->policy, sizeof(b->policy));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sec_bans_json(sec_t *s)
{
    ban_t *bans;
    size_t n;
    json_t *arr = json_array();
    if (!arr || ban_table_snapshot(s->bans, &bans, &n) < 0) {
        json_decref(arr);
        return NULL;
    }
    if (n)
        qsort(bans, n, sizeof(*bans), ban_newest_first);
    for (size_t i = 0; i < n && arr; i++) {
        if (json_array_append_new(arr, ban_json(&bans[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    free(bans);
    return arr;
}

/* Copies up to max events of the ring, newest first starting at sequence
 * number *next (UINT64_MAX: the newest), that match want (NULL: all), and
 * moves *next past them; stops at events overwritten meanwhile. */
static size_t ring_copy(sec_t *s, uint64_t *next, const ban_addr_t *want, secev_t *out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&s->ring_mu);
    uint64_t oldest = s->ring_total - s->ring_n;
    size_t scanned = 0;
    if (*next == UINT64_MAX)
        *next = s->ring_total;
    /* A filter that rarely matches must not hold the lock for the whole
     * ring either. */
    for (; *next > oldest && k < max && scanned < 16 * SEC_COPY_CHUNK; (*next)--, scanned++) {
        const secev_t *ev = &s->ring[(*next - 1) % s->ring_cap];
        ban_addr_t a;
        if (want && (!ban_addr_from_sockaddr((const struct sockaddr *)&ev->client.ss, &a) ||
                     memcmp(&a, want, sizeof(a)) != 0))
            continue;
        out[k++] = *ev;
    }
    if (*next <= oldest)
        *next = 0;
    pthread_mutex_unlock(&s->ring_mu);
    return k;
}

json_t *sec_events_json(sec_t *s, size_t limit, const char *client)
{
    ban_addr_t want;
    uint64_t next = UINT64_MAX;
    size_t done = 0;
    json_t *arr = json_array();
    secev_t *chunk = malloc(SEC_COPY_CHUNK * sizeof(*chunk));
    if (!arr || !chunk)
        goto fail;
    if (client && ban_addr_parse(client, &want) < 0)
        goto out; /* no address: nothing matches */
    if (limit == 0 || limit > s->ring_cap)
        limit = s->ring_cap;
    /* In chunks, so that the thread is never kept from the ring for long
     * and the copy stays small whatever the ring's size. */
    while (done < limit && next != 0) {
        size_t want_n = limit - done < SEC_COPY_CHUNK ? limit - done : SEC_COPY_CHUNK;
        size_t k = ring_copy(s, &next, client ? &want : NULL, chunk, want_n);
        for (size_t i = 0; i < k; i++)
            if (json_array_append_new(arr, secev_json(&chunk[i])) < 0)
                goto fail;
        done += k;
    }
out:
    free(chunk);
    return arr;
fail:
    free(chunk);
    json_decref(arr);
    return NULL;
}

void sec_counters(sec_t *s, sec_counters_t *out)
{
    out->posted = atomic_load_explicit(&s->n.posted, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&s->n.dropped, memory_order_relaxed);
    out->bans_active = ban_table_count(s->bans);
    out->bans_total = atomic_load_explicit(&s->n.bans_total, memory_order_relaxed);
    out->bans_replaced = atomic_load_explicit(&s->n.bans_replaced, memory_order_relaxed);
    out->log_errors = atomic_load_explicit(&s->n.log_errors, memory_order_relaxed);
    out->nft_errors = atomic_load_explicit(&s->n.nft_errors, memory_order_relaxed);
}

void sec_reopen_log(sec_t *s)
{
    atomic_store_explicit(&s->reopen, 1, memory_order_release);
    wake(s);
}

bool sec_sync(sec_t *s, uint64_t timeout_ms)
{
    uint64_t want = atomic_fetch_add(&s->sync_req, 1) + 1;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += (time_t)(timeout_ms / 1000);
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    wake(s);
    pthread_mutex_lock(&s->sync_mu);
    while (s->sync_done < want)
        if (pthread_cond_timedwait(&s->sync_cv, &s->sync_mu, &dl) == ETIMEDOUT)
            break;
    bool ok = s->sync_done >= want;
    pthread_mutex_unlock(&s->sync_mu);
    return ok;
}
