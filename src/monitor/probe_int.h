/* Internals shared by the probe scheduler (probe.c) and the kinds
 * (probe_http.c: HTTP and TCP through libcurl; probe_dns.c: getaddrinfo_a).
 * A kind starts a probe with its *_start() and, from a loop callback, ends
 * it exactly once with probe_finish(); probe.c cancels one in flight with
 * the kind's *_cancel() (probe_free), which reports nothing. */
#ifndef SURETY_MONITOR_PROBE_INT_H
#define SURETY_MONITOR_PROBE_INT_H

#include <curl/curl.h>

#include "core/loop.h"
#include "monitor/curl_loop.h"
#include "monitor/probe.h"

#ifndef container_of
#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#endif

typedef struct probe_dns_req probe_dns_req_t;
typedef struct probe_dns_hub probe_dns_hub_t;

/* Knuth-Morris-Pratt over a body that arrives in pieces: the state is the
 * length of the needle's prefix matched so far, so a match across a chunk
 * boundary is found without keeping any of the body. */
typedef struct {
    const char *needle;
    size_t len;
    size_t *fail; /* fail[i]: longest proper border of needle[0..i] */
    size_t matched;
    bool found;
} probe_match_t;

int probe_match_init(probe_match_t *m, const char *needle);
void probe_match_deinit(probe_match_t *m);
void probe_match_reset(probe_match_t *m);
void probe_match_feed(probe_match_t *m, const char *p, size_t n);

typedef struct {
    probe_t *p;
    size_t index;
    probe_spec_t spec; /* strings owned */
    loop_timer_t tick;
    bool running;

    /* HTTP and TCP */
    char *url;
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    probe_match_t match;
    size_t body_seen;
    bool body_capped; /* we stopped the download at PROBE_BODY_READ_MAX */

    /* DNS */
    probe_dns_req_t *dns;
    loop_timer_t deadline;
    uint64_t started_us;

    /* state and counters */
    probe_state_t state;
    uint32_t ok_streak, fail_streak;
    int64_t last_change;
    bool has_result;
    probe_result_t last;
    int64_t cert_expiry; /* the last one seen, kept across failed probes */
    uint64_t nok, nfail, nskipped;
} probe_mon_t;

struct probe {
    loop_t *loop;
    probe_hooks_t hooks;
    curl_loop_t *curl;
    probe_dns_hub_t *hub; /* NULL without DNS monitors */
    loop_io_t hub_io;
    uint64_t rng;
    probe_mon_t *mons;
    size_t n;
};

int64_t probe_now_unix(const probe_t *p);
uint64_t probe_mono_us(void);

/* Ends the probe in flight: records r (r->at is set here), applies the
 * state machine, calls the hooks. */
void probe_finish(probe_mon_t *m, probe_result_t *r);
/* A failed result with a printf detail. */
void probe_fail(probe_mon_t *m, uint32_t latency_ms, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* probe_http.c */
void probe_curl_done(curl_loop_t *cl, CURL *easy, CURLcode result, void *ud);
int probe_http_prepare(probe_mon_t *m);
void probe_http_start(probe_mon_t *m);
void probe_http_cancel(probe_mon_t *m);

/* probe_dns.c */
int probe_dns_hub_open(probe_t *p);
void probe_dns_hub_close(probe_t *p);
void probe_dns_start(probe_mon_t *m);
void probe_dns_cancel(probe_mon_t *m);

#endif
