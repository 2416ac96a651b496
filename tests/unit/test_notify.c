/* Unit tests of src/monitor/notify*.c, the alert notifier with its real
 * thread, against real receivers run by the test on 127.0.0.1: an HTTP
 * server that records each request and answers with scripted statuses, and
 * a minimal SMTP server (220, EHLO, MAIL, RCPT, DATA, ".", QUIT) that
 * records the envelope and the message.
 *
 * The clock is injected: time moves only when a test says so, and
 * notify_sync() makes the thread catch up (apply posts, start what is due,
 * finish attempts in flight), so group_wait, repeat and backoff are tested
 * in full without sleeping through them. Covered: the signature (recomputed
 * here with OpenSSL's one-shot HMAC), group_wait, grouping of two alerts
 * into one body, de-duplication within repeat and the reminder after it,
 * resolved after firing, never-notified and flapping alerts kept quiet,
 * retries with backoff (500, 500, 200) under one delivery id, permanent
 * 4xx failure, giving up after max_attempts, refused and silent receivers
 * (the per-attempt timeout; posting meanwhile stays quick), email envelope
 * and headers,
 * a full queue dropping and counting, metrics, configuration errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "monitor/notify.h"
#include "monitor/notify_int.h"

#define T0 1795000000LL
#define SYNC_MS 10000
#define SECRET "s3cret-for-tests"

/* ---- the injected clock ---- */

static atomic_int_fast64_t fake_now = T0;
/* While closed, the notifier thread stops in its next clock reading (the
 * test's own thread reads it in notify_post): a test can then fill the
 * queue knowing nobody drains it. */
static atomic_bool gate_closed, gate_blocked;
static pthread_t main_thread;

static int64_t test_clock(void)
{
    if (atomic_load(&gate_closed) && !pthread_equal(pthread_self(), main_thread)) {
        atomic_store(&gate_blocked, true);
        while (atomic_load(&gate_closed))
            usleep(1000);
        atomic_store(&gate_blocked, false);
    }
    return atomic_load(&fake_now);
}

/* ---- a listening socket on 127.0.0.1 ---- */

static int listen_any(unsigned short *ret_port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *ret_port = ntohs(sa.sin_port);
    return fd;
}

/* Accepts one connection, or -1 after 50 ms without one. */
static int accept_wait(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, 50) != 1)
        return -1;
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* ---- the HTTP receiver ---- */

#define HTTP_MAX_REQ 16
#define HTTP_MAX_BYTES 65536

typedef struct {
    int lfd;
    unsigned short port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t mu;
    int statuses[8]; /* answers in order; 0 (and past the end): 200 */
    size_t nreq;
    char *head[HTTP_MAX_REQ], *body[HTTP_MAX_REQ];
} http_srv_t;

/* Reads one request (head and Content-Length body) from fd. */
static bool http_read(int fd, char *buf, size_t *ret_head, size_t *ret_len)
{
    size_t len = 0, need = SIZE_MAX;
    while (len < need && len < HTTP_MAX_BYTES - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1)
            return false;
        ssize_t r = read(fd, buf + len, HTTP_MAX_BYTES - 1 - len);
        if (r <= 0)
            return false;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && need == SIZE_MAX) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            *ret_head = (size_t)(end - buf) + 4;
            need = *ret_head + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
    }
    *ret_len = len;
    return len == need;
}

static void *http_main(void *arg)
{
    http_srv_t *s = arg;
    char *buf = malloc(HTTP_MAX_BYTES);
    while (!atomic_load(&s->stop)) {
        size_t hlen = 0, len = 0;
        int fd = accept_wait(s->lfd);
        if (fd < 0)
            continue;
        if (http_read(fd, buf, &hlen, &len)) {
            pthread_mutex_lock(&s->mu);
            int status = s->nreq < 8 && s->statuses[s->nreq] ? s->statuses[s->nreq] : 200;
            if (s->nreq < HTTP_MAX_REQ) {
                s->head[s->nreq] = strndup(buf, hlen);
                s->body[s->nreq] = strndup(buf + hlen, len - hlen);
                s->nreq++;
            }
            pthread_mutex_unlock(&s->mu);
            char resp[128];
            int n = snprintf(resp, sizeof(resp),
                             "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                             status);
            assert_int_equal(write(fd, resp, (size_t)n), n);
        }
        close(fd);
    }
    free(buf);
    return NULL;
}

static http_srv_t *http_start(const int *statuses, size_t n)
{
    http_srv_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    for (size_t i = 0; i < n && i < 8; i++)
        s->statuses[i] = statuses[i];
    s->lfd = listen_any(&s->port);
    assert_int_equal(pthread_create(&s->thread, NULL, http_main, s), 0);
    return s;
}

static void http_stop(http_srv_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    for (size_t i = 0; i < s->nreq; i++) {
        free(s->head[i]);
        free(s->body[i]);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static size_t http_count(http_srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nreq;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* The value of header name in request i (copied into out), or NULL. */
static const char *http_header(http_srv_t *s, size_t i, const char *name, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\r\n%s:", name);
    const char *h = strcasestr(s->head[i], pat);
    if (!h)
        return NULL;
    h += strlen(pat);
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, "\r");
    snprintf(out, outlen, "%.*s", (int)n, h);
    return out;
}

/* ---- the SMTP receiver ---- */

typedef struct {
    int lfd;
    unsigned short port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t mu;
    size_t nmail;
    char from[128], rcpt[4][128];
    size_t nrcpt;
    char *data; /* the last message */
    bool saw_auth;
    const char *reject_rcpt; /* answered 550 */
} smtp_srv_t;

/* Reads one CRLF line into line[size]; false at EOF, error or timeout. */
static bool smtp_line(int fd, char *line, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;
        if (poll(&p, 1, 5000) != 1 || read(fd, &c, 1) != 1)
            return false;
        line[n++] = c;
        if (c == '\n')
            break;
    }
    line[n] = '\0';
    return true;
}

static void smtp_say(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void smtp_session(smtp_srv_t *s, int fd)
{
    char line[1024], from[128] = "", rcpt[4][128];
    size_t nrcpt = 0;
    smtp_say(fd, "220 localhost test ESMTP\r\n");
    while (smtp_line(fd, line, sizeof(line))) {
        if (!strncasecmp(line, "EHLO", 4)) {
            smtp_say(fd, "250-localhost\r\n250 8BITMIME\r\n");
        } else if (!strncasecmp(line, "MAIL FROM:", 10)) {
            snprintf(from, sizeof(from), "%.*s", (int)strcspn(line + 10, " \r"), line + 10);
            smtp_say(fd, "250 OK\r\n");
        } else if (!strncasecmp(line, "RCPT TO:", 8)) {
            if (s->reject_rcpt && strstr(line, s->reject_rcpt)) {
                smtp_say(fd, "550 no such mailbox\r\n");
                continue;
            }
            if (nrcpt < 4)
                snprintf(rcpt[nrcpt++], 128, "%.*s", (int)strcspn(line + 8, " \r"), line + 8);
            smtp_say(fd, "250 OK\r\n");
        } else if (!strncasecmp(line, "DATA", 4)) {
            smtp_say(fd, "354 go ahead\r\n");
            char *data = calloc(1, 65536);
            size_t len = 0;
            while (smtp_line(fd, line, sizeof(line)) && strcmp(line, ".\r\n")) {
                size_t l = strlen(line);
                if (len + l < 65535)
                    memcpy(data + len, line, l), len += l;
            }
            pthread_mutex_lock(&s->mu);
            free(s->data);
            s->data = data;
            memcpy(s->from, from, sizeof(from));
            memcpy(s->rcpt, rcpt, sizeof(rcpt));
            s->nrcpt = nrcpt;
            s->nmail++;
            pthread_mutex_unlock(&s->mu);
            smtp_say(fd, "250 queued\r\n");
        } else if (!strncasecmp(line, "AUTH", 4)) {
            pthread_mutex_lock(&s->mu);
            s->saw_auth = true;
            pthread_mutex_unlock(&s->mu);
            smtp_say(fd, "535 no\r\n");
        } else if (!strncasecmp(line, "QUIT", 4)) {
            smtp_say(fd, "221 bye\r\n");
            break;
        } else {
            smtp_say(fd, "502 not here\r\n");
        }
    }
}

static void *smtp_main(void *arg)
{
    smtp_srv_t *s = arg;
    while (!atomic_load(&s->stop)) {
        int fd = accept_wait(s->lfd);
        if (fd < 0)
            continue;
        smtp_session(s, fd);
        close(fd);
    }
    return NULL;
}

static smtp_srv_t *smtp_start(void)
{
    smtp_srv_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = listen_any(&s->port);
    assert_int_equal(pthread_create(&s->thread, NULL, smtp_main, s), 0);
    return s;
}

static void smtp_stop(smtp_srv_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    free(s->data);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- helpers ---- */

static atomic_uint hook_calls;

static void hook(void *ud, const notify_delivery_t *d)
{
    (void)ud;
    assert_true(d->attempt >= 1);
    atomic_fetch_add(&hook_calls, 1);
}

static int setup(void **state)
{
    (void)state;
    atomic_store(&fake_now, T0);
    atomic_store(&hook_calls, 0);
    return 0;
}

/* A notifier with one webhook receiver "ops" pointing at s. */
static notify_t *webhook_notifier(http_srv_t *s, notify_conf_t c)
{
    static char url[64];
    char err[256] = "";
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", s->port);
    notify_receiver_t r = {.name = "ops",
                           .kind = NOTIFY_WEBHOOK,
                           .url = url,
                           .secret = SECRET,
                           .secret_len = strlen(SECRET),
                           .repeat_s = 3600,
                           .group_wait_s = 30};
    c.receivers = &r;
    c.nreceivers = 1;
    c.now_unix = test_clock;
    c.on_delivery = hook;
    notify_t *n = notify_new(&c, err, sizeof(err));
    if (!n)
        fail_msg("notify_new: %s", err);
    return n;
}

static notify_alert_t alert(const char *key, notify_state_t state)
{
    notify_alert_t a = {.receiver = 0, .state = (uint8_t)state, .since = T0 - 60};
    snprintf(a.key, sizeof(a.key), "%s", key);
    snprintf(a.objective, sizeof(a.objective), "availability");
    snprintf(a.severity, sizeof(a.severity), "page");
    snprintf(a.summary, sizeof(a.summary), "%s is burning its budget", key);
    a.nvalues = 2;
    snprintf(a.values[0].name, sizeof(a.values[0].name), "sli");
    a.values[0].value = 0.995;
    snprintf(a.values[1].name, sizeof(a.values[1].name), "burn_rate_1h");
    a.values[1].value = 14.4;
    a.nlabels = 1;
    snprintf(a.labels[0].name, sizeof(a.labels[0].name), "source");
    snprintf(a.labels[0].value, sizeof(a.labels[0].value), "listener:web");
    return a;
}

static void post(notify_t *n, const char *key, notify_state_t state)
{
    notify_alert_t a = alert(key, state);
    assert_int_equal(notify_post(n, &a), 0);
}

/* Moves the clock by s seconds and lets the thread catch up. */
static void advance(notify_t *n, int64_t s)
{
    atomic_fetch_add(&fake_now, s);
    assert_true(notify_sync(n, SYNC_MS));
}

static json_t *body_json(http_srv_t *s, size_t i)
{
    json_error_t e;
    json_t *j = json_loads(s->body[i], 0, &e);
    if (!j)
        fail_msg("body %zu is not JSON: %s: %s", i, e.text, s->body[i]);
    return j;
}

static const char *jstr(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

/* ---- webhooks ---- */

static void test_webhook_waits_group_wait_and_is_signed(void **state)
{
    (void)state;
    http_srv_t *s = http_start(NULL, 0);
    notify_t *n = webhook_notifier(s, (notify_conf_t){0});
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 0);
    advance(n, 29);
    assert_int_equal(http_count(s), 0);
    advance(n, 1);
    assert_int_equal(http_count(s), 1);

    char ts[32], sig[128], id[64], ct[64], expect[NOTIFY_SIG_MAX] = "sha256=";
    assert_non_null(http_header(s, 0, "X-Surety-Timestamp", ts, sizeof(ts)));
    assert_non_null(http_header(s, 0, "X-Surety-Signature", sig, sizeof(sig)));
    assert_non_null(http_header(s, 0, "X-Surety-Delivery", id, sizeof(id)));
    assert_non_null(http_header(s, 0, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    assert_int_equal(strtoll(ts, NULL, 10), T0 + 30);
    assert_int_equal(strlen(id), 32);
    assert_true(!strncmp(s->head[0], "POST /hook HTTP/1.1\r\n", 21));

    /* The receiver's side: HMAC-SHA256(secret, timestamp "." body). */
    char signed_text[HTTP_MAX_BYTES];
    int len = snprintf(signed_text, sizeof(signed_text), "%s.%s", ts, s->body[0]);
    unsigned char mac[32];
    unsigned maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)signed_text,
                         (size_t)len, mac, &maclen));
    assert_int_equal(maclen, 32);
    for (unsigned i = 0; i < 32; i++)
        snprintf(expect + 7 + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(sig, expect);

    json_t *j = body_json(s, 0);
    assert_string_equal(jstr(j, "status", NULL), "firing");
    assert_string_equal(jstr(j, "receiver", NULL), "ops");
    assert_string_equal(jstr(j, "id", NULL), id);
    json_t *alerts = json_object_get(j, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    json_t *a = json_array_get(alerts, 0);
    assert_string_equal(jstr(a, "key", NULL), "objective:availability:page");
    assert_string_equal(jstr(a, "status", NULL), "firing");
    assert_string_equal(jstr(a, "severity", NULL), "page");
    assert_string_equal(jstr(a, "labels", "source"), "listener:web");
    assert_true(json_real_value(json_object_get(json_object_get(a, "values"), "burn_rate_1h")) ==
                14.4);
    json_decref(j);

    notify_delivery_t d[4];
    assert_int_equal(notify_deliveries(n, d, 4), 1);
    assert_int_equal(d[0].result, NOTIFY_SENT);
    assert_int_equal(d[0].status, 200);
    assert_int_equal(d[0].attempt, 1);
    assert_int_equal(d[0].nalerts, 1);
    assert_string_equal(d[0].id, id);
    assert_string_equal(d[0].receiver_name, "ops");
    assert_int_equal(atomic_load(&hook_calls), 1);
    notify_free(n);
    http_stop(s);
}

static void test_two_alerts_posted_together_are_one_notification(void **state)
{
    (void)state;
    http_srv_t *s = http_start(NULL, 0);
    notify_t *n = webhook_notifier(s, (notify_conf_t){0});
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 10);
    post(n, "objective:latency:ticket", NOTIFY_FIRING);
    advance(n, 20);
    assert_int_equal(http_count(s), 1);
    json_t *j = body_json(s, 0);
    json_t *alerts = json_object_get(j, "alerts");
    assert_int_equal(json_array_size(alerts), 2);
    assert_string_equal(jstr(json_array_get(alerts, 0), "key", NULL),
                        "objective:availability:page");
    assert_string_equal(jstr(json_array_get(alerts, 1), "key", NULL), "objective:latency:ticket");
    json_decref(j);
    notify_free(n);
    http_stop(s);
}

static void test_repost_within_repeat_is_silent_then_reminds(void **state)
{
    (void)state;
    http_srv_t *s = http_start(NULL, 0);
    notify_t *n = webhook_notifier(s, (notify_conf_t){0});
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 30);
    assert_int_equal(http_count(s), 1);
    /* The control thread re-posts every cycle; nothing until repeat (1 h). */
    for (int i = 0; i < 5; i++) {
        advance(n, 10);
        post(n, "objective:availability:page", NOTIFY_FIRING);
    }
    advance(n, 3540);
    assert_int_equal(http_count(s), 1);
    /* Now 3590 s after the notification: still within repeat. */
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 10);
    assert_int_equal(http_count(s), 1);
    post(n, "objective:availability:page", NOTIFY_FIRING); /* 3600 s: the reminder */
    advance(n, 29);
    assert_int_equal(http_count(s), 1);
    advance(n, 1);
    assert_int_equal(http_count(s), 2);
    json_t *j = body_json(s, 1);
    assert_string_equal(jstr(j, "status", NULL), "firing");
    json_decref(j);
    notify_free(n);
    http_stop(s);
}

static void test_resolved_after_firing_notifies_once(void **state)
{
    (void)state;
    http_srv_t *s = http_start(NULL, 0);
    notify_t *n = webhook_notifier(s, (notify_conf_t){0});
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 30);
    post(n, "objective:availability:page", NOTIFY_RESOLVED);
    advance(n, 29);
    assert_int_equal(http_count(s), 1);
    advance(n, 1);
    assert_int_equal(http_count(s), 2);
    json_t *j = body_json(s, 1);
    assert_string_equal(jstr(j, "status", NULL), "resolved");
    assert_string_equal(jstr(json_array_get(json_object_get(j, "alerts"), 0), "status", NULL),
                        "resolved");
    json_decref(j);
    /* Resolved again and again: forgotten, nothing more. */
    post(n, "objective:availability:page", NOTIFY_RESOLVED);
    advance(n, 60);
    assert_int_equal(http_count(s), 2);
    notify_free(n);
    http_stop(s);
}

static void test_unnotified_and_flapping_alerts_stay_quiet(void **state)
{
    (void)state;
    http_srv_t *s = http_start(NULL, 0);
    notify_t *n = webhook_notifier(s, (notify_conf_t){0});
    /* Fires and resolves within group_wait: never sent either way. */
    post(n, "objective:latency:ticket", NOTIFY_FIRING);
    advance(n, 10);
    post(n, "objective:latency:ticket", NOTIFY_RESOLVED);
    advance(n, 60);
    assert_int_equal(http_count(s), 0);
    /* Notified firing, then a resolve taken back within group_wait. */
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 30);
    assert_int_equal(http_count(s), 1);
    post(n, "objective:availability:page", NOTIFY_RESOLVED);
    advance(n, 10);
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 60);
    assert_int_equal(http_count(s), 1);
    notify_free(n);
    http_stop(s);
}

static void test_retries_with_backoff_until_2xx(void **state)
{
    (void)state;
    static const int statuses[] = {500, 500, 200};
    http_srv_t *s = http_start(statuses, 3);
    notify_t *n = webhook_notifier(s, (notify_conf_t){0});
    notify_delivery_t d[4];
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 30);
    assert_int_equal(http_count(s), 1);
    assert_int_equal(notify_deliveries(n, d, 4), 1);
    assert_int_equal(d[0].result, NOTIFY_RETRY);
    assert_int_equal(d[0].status, 500);
    assert_string_equal(d[0].error, "HTTP 500");
    assert_int_equal(d[0].retry_at, T0 + 31); /* 1 s */
    advance(n, 0);
    assert_int_equal(http_count(s), 1);
    advance(n, 1);
    assert_int_equal(http_count(s), 2);
    assert_int_equal(notify_deliveries(n, d, 4), 2);
    assert_int_equal(d[0].attempt, 2);
    assert_int_equal(d[0].retry_at, T0 + 33); /* then 2 s */
    advance(n, 1);
    assert_int_equal(http_count(s), 2);
    advance(n, 1);
    assert_int_equal(http_count(s), 3);
    assert_int_equal(notify_deliveries(n, d, 4), 3);
    assert_int_equal(d[0].result, NOTIFY_SENT);
    assert_int_equal(d[0].attempt, 3);
    assert_string_equal(d[0].error, "");
    /* One notification: the same id and body every time, signed anew. */
    char id0[64], id2[64], ts0[32], ts2[32];
    http_header(s, 0, "X-Surety-Delivery", id0, sizeof(id0));
    http_header(s, 2, "X-Surety-Delivery", id2, sizeof(id2));
    http_header(s, 0, "X-Surety-Timestamp", ts0, sizeof(ts0));
    http_header(s, 2, "X-Surety-Timestamp", ts2, sizeof(ts2));
    assert_string_equal(id0, id2);
    assert_string_equal(s->body[0], s->body[2]);
    assert_int_equal(strtoll(ts2, NULL, 10) - strtoll(ts0, NULL, 10), 3);
    json_t *log = notify_deliveries_json(n, 0);
    assert_int_equal(json_array_size(log), 3);
    assert_string_equal(jstr(json_array_get(log, 0), "result", NULL), "sent");
    assert_null(json_object_get(json_array_get(log, 0), "error"));
    assert_string_equal(jstr(json_array_get(log, 1), "result", NULL), "retry");
    assert_string_equal(jstr(json_array_get(log, 1), "error", NULL), "HTTP 500");
    assert_string_equal(jstr(json_array_get(log, 1), "retry_at", NULL), "2026-11-18T11:07:13Z");
    assert_string_equal(jstr(json_array_get(log, 2), "id", NULL), id0);
    json_decref(log);
    log = notify_deliveries_json(n, 1);
    assert_int_equal(json_array_size(log), 1);
    json_decref(log);
    notify_counters_t c;
    notify_counters(n, &c);
    assert_int_equal(c.sent, 1);
    assert_int_equal(c.retried, 2);
    assert_int_equal(c.failed, 0);
    notify_free(n);
    http_stop(s);
}

static void test_4xx_fails_at_once_and_attempts_are_capped(void **state)
{
    (void)state;
    static const int statuses[] = {400, 503, 503};
    http_srv_t *s = http_start(statuses, 3);
    notify_t *n = webhook_notifier(s, (notify_conf_t){.max_attempts = 2, .backoff_s = 5});
    notify_delivery_t d[4];
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 30);
    assert_int_equal(notify_deliveries(n, d, 4), 1);
    assert_int_equal(d[0].result, NOTIFY_FAILED);
    assert_int_equal(d[0].status, 400);
    /* The next notification: 503, retried after 5 s, 503 again, given up. */
    post(n, "objective:availability:page", NOTIFY_RESOLVED);
    advance(n, 30);
    assert_int_equal(notify_deliveries(n, d, 4), 2);
    assert_int_equal(d[0].result, NOTIFY_RETRY);
    assert_int_equal(d[0].retry_at, T0 + 65);
    advance(n, 5);
    assert_int_equal(notify_deliveries(n, d, 4), 3);
    assert_int_equal(d[0].result, NOTIFY_FAILED);
    assert_int_equal(d[0].attempt, 2);
    advance(n, 600);
    assert_int_equal(http_count(s), 3);
    notify_free(n);
    http_stop(s);
}

static void test_unreachable_webhook_is_retried(void **state)
{
    (void)state;
    unsigned short port;
    int fd = listen_any(&port);
    close(fd); /* nobody listens there now: connection refused */
    char url[64], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    notify_receiver_t r = {.name = "gone", .kind = NOTIFY_WEBHOOK, .url = url};
    notify_conf_t c = {.receivers = &r, .nreceivers = 1, .now_unix = test_clock};
    notify_t *n = notify_new(&c, err, sizeof(err));
    assert_non_null(n);
    post(n, "k", NOTIFY_FIRING);
    advance(n, 30); /* the default group_wait */
    notify_delivery_t d;
    assert_int_equal(notify_deliveries(n, &d, 1), 1);
    assert_int_equal(d.result, NOTIFY_RETRY);
    assert_int_equal(d.status, 0);
    assert_true(strlen(d.error) > 0);
    notify_free(n);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A receiver that never answers (the kernel accepts, nobody reads): the
 * attempt ends at the per-attempt timeout, and posting meanwhile does not
 * wait for it. */
static void test_silent_webhook_times_out_and_posts_do_not_wait(void **state)
{
    (void)state;
    unsigned short port;
    int lfd = listen_any(&port);
    char url[64], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    notify_receiver_t r = {.name = "slow", .kind = NOTIFY_WEBHOOK, .url = url};
    notify_conf_t c = {.receivers = &r, .nreceivers = 1, .now_unix = test_clock, .timeout_ms = 300};
    notify_t *n = notify_new(&c, err, sizeof(err));
    assert_non_null(n);
    post(n, "k", NOTIFY_FIRING);
    atomic_fetch_add(&fake_now, 30);
    notify_tick(n);
    usleep(50 * 1000); /* the attempt is in flight now */
    double t = mono_now();
    for (int i = 0; i < 100; i++)
        post(n, "k", NOTIFY_FIRING);
    assert_true(mono_now() - t < 0.1);
    assert_true(notify_sync(n, SYNC_MS));
    double took = mono_now() - t;
    notify_delivery_t d;
    assert_int_equal(notify_deliveries(n, &d, 1), 1);
    assert_int_equal(d.result, NOTIFY_RETRY);
    assert_true(d.seconds >= 0.25 && d.seconds < 5);
    assert_true(took < 5);
    assert_non_null(strcasestr(d.error, "timed out"));
    notify_free(n);
    close(lfd);
}

/* ---- email ---- */

static void test_email_has_envelope_subject_and_headers(void **state)
{
    (void)state;
    smtp_srv_t *s = smtp_start();
    char url[64], err[256] = "";
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%u/surety.test", s->port);
    const char *to[] = {"Ops <ops@example.com>", "oncall@example.com"};
    notify_receiver_t r = {.name = "mail",
                           .kind = NOTIFY_EMAIL,
                           .smtp_url = url,
                           .from = "Surety <alerts@example.com>",
                           .to = to,
                           .nto = 2,
                           .group_wait_s = 30};
    notify_conf_t c = {.receivers = &r, .nreceivers = 1, .now_unix = test_clock};
    notify_t *n = notify_new(&c, err, sizeof(err));
    if (!n)
        fail_msg("notify_new: %s", err);
    post(n, "objective:availability:page", NOTIFY_FIRING);
    advance(n, 30);
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->nmail, 1);
    assert_string_equal(s->from, "<alerts@example.com>");
    assert_int_equal(s->nrcpt, 2);
    assert_string_equal(s->rcpt[0], "<ops@example.com>");
    assert_string_equal(s->rcpt[1], "<oncall@example.com>");
    assert_non_null(
        strstr(s->data, "Subject: [FIRING] objective:availability:page is burning its budget\r\n"));
    assert_non_null(strstr(s->data, "From: Surety <alerts@example.com>\r\n"));
    assert_non_null(strstr(s->data, "To: Ops <ops@example.com>,\r\n oncall@example.com\r\n"));
    assert_non_null(strstr(s->data, "Date: Wed, 18 Nov 2026 11:07:10 +0000\r\n"));
    assert_non_null(strstr(s->data, "@example.com>\r\n"));
    assert_non_null(strstr(s->data, "Message-ID: <"));
    assert_non_null(strstr(s->data, "\r\n\r\nSurety alerts for receiver mail: 1 firing"));
    assert_non_null(strstr(s->data, "  burn_rate_1h: 14.4\r\n"));
    pthread_mutex_unlock(&s->mu);

    post(n, "objective:availability:page", NOTIFY_RESOLVED);
    advance(n, 30);
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->nmail, 2);
    assert_non_null(strstr(s->data, "Subject: [RESOLVED] objective:availability:page"));
    pthread_mutex_unlock(&s->mu);
    notify_delivery_t d;
    assert_int_equal(notify_deliveries(n, &d, 1), 1);
    assert_int_equal(d.result, NOTIFY_SENT);
    assert_int_equal(d.kind, NOTIFY_EMAIL);
    notify_free(n);
    smtp_stop(s);
}

/* A username on smtp:// requires STARTTLS: a server without it gets no
 * password (and no mail); an SMTP 5xx is permanent, not retried. */
static void test_email_password_never_in_clear_and_5xx_not_retried(void **state)
{
    (void)state;
    smtp_srv_t *s = smtp_start();
    s->reject_rcpt = "nobody@";
    char url[64], err[256] = "";
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%u", s->port);
    const char *to1[] = {"ops@example.com"}, *to2[] = {"nobody@example.com"};
    notify_receiver_t r[] = {
        {.name = "auth",
         .kind = NOTIFY_EMAIL,
         .smtp_url = url,
         .from = "a@example.com",
         .to = to1,
         .nto = 1,
         .username = "surety",
         .password = "pw"},
        {.name = "reject",
         .kind = NOTIFY_EMAIL,
         .smtp_url = url,
         .from = "a@example.com",
         .to = to2,
         .nto = 1},
    };
    notify_conf_t c = {.receivers = r, .nreceivers = 2, .now_unix = test_clock};
    notify_t *n = notify_new(&c, err, sizeof(err));
    if (!n)
        fail_msg("notify_new: %s", err);
    notify_alert_t a = alert("k", NOTIFY_FIRING);
    assert_int_equal(notify_post(n, &a), 0);
    advance(n, 30);
    notify_delivery_t d;
    assert_int_equal(notify_deliveries(n, &d, 1), 1);
    assert_string_equal(d.receiver_name, "auth");
    assert_int_equal(d.result, NOTIFY_RETRY);
    assert_non_null(strstr(d.error, "STARTTLS"));

    a.receiver = 1;
    assert_int_equal(notify_post(n, &a), 0);
    advance(n, 30);
    /* "auth" retried meanwhile: find "reject"'s attempt among the latest. */
    notify_delivery_t all[8];
    size_t k = notify_deliveries(n, all, 8), i = 0;
    while (i < k && strcmp(all[i].receiver_name, "reject"))
        i++;
    assert_true(i < k);
    d = all[i];
    assert_int_equal(d.result, NOTIFY_FAILED);
    assert_int_equal(d.status, 550);
    assert_int_equal(d.attempt, 1);
    pthread_mutex_lock(&s->mu);
    assert_false(s->saw_auth);
    assert_int_equal(s->nmail, 0);
    pthread_mutex_unlock(&s->mu);
    notify_free(n);
    smtp_stop(s);
}

/* ---- queue, metrics, configuration ---- */

static void test_full_queue_drops_and_counts(void **state)
{
    (void)state;
    http_srv_t *s = http_start(NULL, 0);
    notify_t *n = webhook_notifier(s, (notify_conf_t){.queue = 4});
    atomic_store(&gate_closed, true);
    notify_tick(n);
    while (!atomic_load(&gate_blocked))
        usleep(1000);
    int ok = 0, full = 0;
    for (int i = 0; i < 10; i++) {
        char key[32];
        snprintf(key, sizeof(key), "alert-%d", i);
        notify_alert_t a = alert(key, NOTIFY_FIRING);
        int r = notify_post(n, &a);
        ok += r == 0;
        full += r == -ENOBUFS;
    }
    atomic_store(&gate_closed, false);
    assert_int_equal(ok, 4);
    assert_int_equal(full, 6);
    advance(n, 30);
    assert_int_equal(http_count(s), 1);
    json_t *j = body_json(s, 0);
    assert_int_equal(json_array_size(json_object_get(j, "alerts")), 4);
    json_decref(j);

    notify_counters_t c;
    notify_counters(n, &c);
    assert_int_equal(c.posted, 4);
    assert_int_equal(c.dropped, 6);
    prom_t *p = prom_new(1 << 16);
    notify_metrics_write(n, p);
    assert_int_equal(prom_error(p), 0);
    str_t out = prom_str(p);
    char *text = strndup(out.p, out.len);
    assert_non_null(strstr(text, "\nsurety_alert_queue_dropped_total 6\n"));
    assert_non_null(
        strstr(text, "surety_alert_notifications_total{receiver=\"ops\",result=\"sent\"} 1\n"));
    assert_non_null(
        strstr(text, "surety_alert_notifications_total{receiver=\"ops\",result=\"retry\"} 0\n"));
    assert_non_null(strstr(text, "\nsurety_alert_delivery_seconds_count 1\n"));
    assert_non_null(strstr(text, "# TYPE surety_alert_delivery_seconds histogram\n"));
    free(text);
    prom_free(p);
    notify_free(n);
    http_stop(s);
}

static void test_receiver_remembers_at_most_conf_alerts(void **state)
{
    (void)state;
    http_srv_t *s = http_start(NULL, 0);
    notify_t *n = webhook_notifier(s, (notify_conf_t){.alerts = 3});
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof(key), "alert-%d", i);
        post(n, key, NOTIFY_FIRING);
    }
    advance(n, 30);
    notify_counters_t c;
    notify_counters(n, &c);
    assert_int_equal(c.forgotten, 2);
    json_t *j = body_json(s, 0);
    assert_int_equal(json_array_size(json_object_get(j, "alerts")), 3);
    json_decref(j);
    notify_free(n);
    http_stop(s);
}

static void test_bad_configuration_and_posts_are_refused(void **state)
{
    (void)state;
    char err[256];
    const char *to[] = {"ops@example.com"};
    notify_receiver_t bad[] = {
        {.name = "a", .kind = NOTIFY_WEBHOOK, .url = "ftp://x/"},
        {.name = "b",
         .kind = NOTIFY_EMAIL,
         .smtp_url = "http://x/",
         .from = "a@b",
         .to = to,
         .nto = 1},
        {.name = "c", .kind = NOTIFY_EMAIL, .smtp_url = "smtp://x/", .from = "a@b"},
        {.name = "d",
         .kind = NOTIFY_EMAIL,
         .smtp_url = "smtp://x/",
         .from = "a@b\r\nBcc: x",
         .to = to,
         .nto = 1},
        {.name = "", .kind = NOTIFY_WEBHOOK, .url = "http://x/"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        notify_conf_t c = {.receivers = &bad[i], .nreceivers = 1};
        err[0] = '\0';
        assert_null(notify_new(&c, err, sizeof(err)));
        assert_true(!strncmp(err, "alerts", 6));
    }
    notify_conf_t c = {.receivers = bad, .nreceivers = 1};
    assert_null(notify_new(&c, err, sizeof(err)));
    assert_string_equal(err, "alerts.a: webhook URL must be http:// or https://");

    http_srv_t *s = http_start(NULL, 0);
    notify_t *n = webhook_notifier(s, (notify_conf_t){0});
    notify_alert_t a = alert("k", NOTIFY_FIRING);
    a.receiver = 1;
    assert_int_equal(notify_post(n, &a), -EINVAL);
    a = alert("", NOTIFY_FIRING);
    assert_int_equal(notify_post(n, &a), -EINVAL);
    a = alert("k", NOTIFY_FIRING);
    a.state = 7;
    assert_int_equal(notify_post(n, &a), -EINVAL);
    notify_free(n);
    http_stop(s);
}

static void test_text_is_cut_at_a_character_and_cleaned(void **state)
{
    (void)state;
    char s[8];
    memcpy(s, "abcde\xc3\xa9x", 8); /* full array, "é" at 5..6 */
    notify_text_fix(s, sizeof(s));
    assert_string_equal(s, "abcde\xc3\xa9");
    memcpy(s, "abcdef\xc3\xa9", 8); /* the cut would split "é" */
    notify_text_fix(s, sizeof(s));
    assert_string_equal(s, "abcdef");
    memcpy(s, "a\nb\xff", 5);
    notify_text_fix(s, sizeof(s));
    assert_string_equal(s, "a?b?");
}

int main(void)
{
    main_thread = pthread_self();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_webhook_waits_group_wait_and_is_signed, setup),
        cmocka_unit_test_setup(test_two_alerts_posted_together_are_one_notification, setup),
        cmocka_unit_test_setup(test_repost_within_repeat_is_silent_then_reminds, setup),
        cmocka_unit_test_setup(test_resolved_after_firing_notifies_once, setup),
        cmocka_unit_test_setup(test_unnotified_and_flapping_alerts_stay_quiet, setup),
        cmocka_unit_test_setup(test_retries_with_backoff_until_2xx, setup),
        cmocka_unit_test_setup(test_4xx_fails_at_once_and_attempts_are_capped, setup),
        cmocka_unit_test_setup(test_unreachable_webhook_is_retried, setup),
        cmocka_unit_test_setup(test_silent_webhook_times_out_and_posts_do_not_wait, setup),
        cmocka_unit_test_setup(test_email_has_envelope_subject_and_headers, setup),
        cmocka_unit_test_setup(test_email_password_never_in_clear_and_5xx_not_retried, setup),
        cmocka_unit_test_setup(test_full_queue_drops_and_counts, setup),
        cmocka_unit_test_setup(test_receiver_remembers_at_most_conf_alerts, setup),
        cmocka_unit_test_setup(test_bad_configuration_and_posts_are_refused, setup),
        cmocka_unit_test(test_text_is_cut_at_a_character_and_cleaned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
