/* Alert notifications (issue 6, item 6): webhooks and email, on a notifier
 * thread of their own.
 *
 * The control thread evaluates objectives every 10 s and hands each alert
 * state it sees to notify_post(), which copies it into a bounded queue and
 * wakes the notifier thread; it never waits on the network (a full queue
 * drops the post and counts it). The notifier thread owns a libcurl multi
 * handle and applies Alertmanager-like rules per receiver (docs/alerts.md):
 *   - grouping: the first change of a receiver's alerts opens a group that
 *     waits group_wait; every alert changed until then goes out in the same
 *     notification (a webhook body with an "alerts" array, one email);
 *   - de-duplication: re-posting an alert in the state last notified sends
 *     nothing until `repeat` has passed since it was notified; the next post
 *     after that is a reminder (grouped like a change). A change of state
 *     notifies (after group_wait). An alert that resolves before its firing
 *     was notified is never sent, and neither is a flap that returns to the
 *     notified state within group_wait;
 *   - one notification in flight per receiver, retried with exponential
 *     backoff; notifications of a receiver are delivered in order.
 * Every attempt ends in a notify_delivery_t: passed to the on_delivery hook
 * (on the notifier thread) and kept in a small ring for the API.
 *
 * Time: every wait (group_wait, repeat, backoff) is measured on the clock
 * conf.now_unix (default time()). A test replaces it with a fake clock,
 * advances it, then calls notify_sync(), which wakes the thread, lets it
 * catch up with the clock and waits until nothing due is left in flight.
 * Only the per-attempt timeout (curl's) runs on the real clock.
 *
 * Thread-safety: notify_post, notify_tick, notify_sync, notify_deliveries,
 * notify_counters and notify_metrics_write may be called from any thread;
 * notify_new and notify_free from the thread that owns the notifier (main or
 * control), with nobody posting during notify_free. */
#ifndef SURETY_MONITOR_NOTIFY_H
#define SURETY_MONITOR_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/prom.h"

typedef enum { NOTIFY_WEBHOOK, NOTIFY_EMAIL } notify_kind_t;
typedef enum { NOTIFY_FIRING, NOTIFY_RESOLVED } notify_state_t;

/* "firing", "resolved"; "?" when out of range. */
const char *notify_state_name(unsigned state);

#define NOTIFY_LABELS_MAX 4
#define NOTIFY_VALUES_MAX 8

/* One alert state, as the control thread sees it. Posted by value: strings
 * are copied, cut at a UTF-8 character boundary when longer than their
 * array, and bytes that are not UTF-8 (or control characters) become '?'.
 * Empty strings are left out of notifications. About 1.2 KB. */
typedef struct {
    unsigned receiver;  /* index in notify_conf_t.receivers */
    char key[128];      /* identity, e.g. "objective:availability:page"; not empty */
    uint8_t state;      /* notify_state_t */
    char objective[64]; /* "availability" */
    char severity[16];  /* "page" | "ticket" */
    char summary[256];  /* one line for people */
    int64_t since;      /* unix seconds this state began; 0: unknown */
    uint8_t nlabels, nvalues;
    struct {
        char name[32], value[64];
    } labels[NOTIFY_LABELS_MAX]; /* extra labels, e.g. {"source", "listener:web"} */
    struct {
        char name[32]; /* "sli", "burn_rate_1h", "budget_remaining" */
        double value;  /* finite, else written as null */
    } values[NOTIFY_VALUES_MAX];
} notify_alert_t;

/* A receiver. Strings are copied by notify_new. */
typedef struct {
    const char *name; /* for metrics, logs and the body; not empty */
    notify_kind_t kind;
    /* webhook: http:// or https:// URL; the HMAC key (the content of
     * secret_file, read by the caller; may be binary); secret_len 0: the
     * request is not signed. */
    const char *url;
    const void *secret;
    size_t secret_len;
    /* email: smtp:// (STARTTLS when offered; required when a username is
     * set) or smtps:// (TLS from the start); from: "addr" or "Name <addr>";
     * to: at least one, same forms; username NULL: no authentication. */
    const char *smtp_url, *from;
    const char *const *to;
    size_t nto;
    const char *username, *password;
    /* Both: a CA bundle replacing the system's (NULL: system store). TLS
     * peer and host verification are always on. */
    const char *ca_file;
    uint64_t repeat_s;     /* 0: 4 h */
    uint64_t group_wait_s; /* 0: 30 s */
} notify_receiver_t;

/* One attempt to deliver one notification. */
typedef enum { NOTIFY_SENT, NOTIFY_RETRY, NOTIFY_FAILED } notify_result_t;
/* "sent", "retry" (the attempt failed, another is scheduled), "failed"
 * (the last attempt failed, or the failure is permanent); "?" otherwise. */
const char *notify_result_name(unsigned result);

typedef struct {
    char id[33];       /* the notification's id (X-Surety-Delivery), same for every attempt */
    unsigned receiver; /* index */
    char receiver_name[64];
    uint8_t kind;     /* notify_kind_t */
    uint8_t result;   /* notify_result_t */
    uint8_t state;    /* NOTIFY_FIRING when any alert in it fires */
    unsigned attempt; /* 1 for the first */
    unsigned nalerts;
    int64_t time;     /* end of the attempt, on the injected clock (unix s; read once per
                         turn of the thread's loop) */
    int64_t retry_at; /* NOTIFY_RETRY: when the next attempt is due; else 0 */
    long status;      /* HTTP status or last SMTP reply code; 0: none */
    double seconds;   /* duration of the attempt (real clock) */
    char error[128];  /* empty when sent; curl's message or "HTTP 500" */
} notify_delivery_t;

/* Called on the notifier thread after each attempt; d is valid during the
 * call only. It must be thread-safe and fast (e.g. copy into the store's
 * queue); it must not call back into this notifier. */
typedef void (*notify_delivery_cb)(void *ud, const notify_delivery_t *d);

typedef struct {
    const notify_receiver_t *receivers;
    size_t nreceivers;              /* 1..NOTIFY_RECEIVERS_MAX */
    size_t queue;                   /* posts queued; 0: 256; at most NOTIFY_QUEUE_MAX */
    size_t alerts;                  /* alerts remembered per receiver; 0: 256; at most 4096 */
    size_t ring;                    /* deliveries kept for the API; 0: 100; at most 10000 */
    unsigned max_attempts;          /* per notification; 0: 8 */
    uint64_t backoff_s;             /* first retry after this; doubled each time; 0: 1 */
    uint64_t backoff_max_s;         /* 0: 300 */
    uint64_t timeout_ms;            /* per attempt (real clock); 0: 10000 */
    int64_t (*now_unix)(void);      /* the clock of every wait; NULL: time() */
    notify_delivery_cb on_delivery; /* may be NULL */
    void *ud;
} notify_conf_t;

#define NOTIFY_RECEIVERS_MAX 256
#define NOTIFY_QUEUE_MAX 65536

typedef struct notify notify_t;

/* Validates c (err gets "alerts.ops: webhook URL must be http:// or
 * https://" and such), copies it, and starts the notifier thread. Calls
 * curl_global_init (reference counted; thread-safe in libcurl >= 7.84).
 * NULL on failure. Who frees: the caller, with notify_free(), after the last
 * notify_post. */
notify_t *notify_new(const notify_conf_t *c, char *err, size_t errlen);
/* Stops the thread and frees. Notifications waiting for group_wait or a
 * retry, and attempts in flight, are abandoned (a stopping process does not
 * wait minutes for a webhook). NULL is fine. */
void notify_free(notify_t *n);

/* Any thread, never waits on I/O: stamps a with conf.now_unix (a group's
 * wait starts when the change was seen), copies it into the queue (a mutex
 * held for the copy only) and wakes the thread. 0, -EINVAL (receiver out of
 * range, empty key, unknown state) or -ENOBUFS (queue full; counted). */
int notify_post(notify_t *n, const notify_alert_t *a);

/* Any thread: wakes the notifier thread so it reads the clock again (a test
 * that advanced its fake clock). */
void notify_tick(notify_t *n);
/* Any thread (tests, shutdown): wakes the thread and waits until every post
 * made before the call has been applied, every notification due at the
 * clock's current time has been attempted, and no attempt is in flight. A
 * retry scheduled for later is not waited for. False when timeout_ms passed
 * first. */
bool notify_sync(notify_t *n, uint64_t timeout_ms);

/* Any thread: copies up to max of the latest deliveries, newest first, into
 * out; returns how many. */
size_t notify_deliveries(notify_t *n, notify_delivery_t *out, size_t max);

/* The same as JSON for the API, newest first, at most limit (0: all kept):
 * [{"id":"...","receiver":"ops","kind":"webhook","result":"retry",
 *   "state":"firing","attempt":1,"alerts":2,"time":"2026-...Z",
 *   "retry_at":"2026-...Z","status":500,"seconds":0.012,"error":"HTTP 500"}]
 * (retry_at only for a retry, error only when not empty). NULL when out of
 * memory; the caller json_decref()s. */
json_t *notify_deliveries_json(notify_t *n, size_t limit);

/* Relaxed counters. posted: accepted by notify_post; dropped: refused by a
 * full queue; forgotten: posts of a new alert refused because the receiver
 * already remembers conf.alerts alerts; sent/retried/failed: attempts by
 * result, over all receivers. */
typedef struct {
    uint64_t posted, dropped, forgotten, sent, retried, failed;
} notify_counters_t;
void notify_counters(notify_t *n, notify_counters_t *out);

/* Any thread. Writes surety_alert_notifications_total{receiver,result}
 * (attempts by result), surety_alert_queue_dropped_total and the histogram
 * surety_alert_delivery_seconds (attempt durations). Errors stay in p. */
void notify_metrics_write(notify_t *n, prom_t *p);

#endif
