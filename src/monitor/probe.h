/* Active probes (the configuration's monitors): the control thread checks
 * targets from outside, as a user would, and reports each result and each
 * change of state.
 *
 * Kinds: HTTP(S) through libcurl (status, body substring, latency, days left
 * on the certificate), TCP connect through libcurl (CURLOPT_CONNECT_ONLY),
 * DNS resolution through glibc's getaddrinfo_a. Each monitor runs first
 * after a random delay in [0, interval), then every interval, with at most
 * one probe in flight: a tick that finds the previous probe still running
 * is skipped and counted. Every probe ends within its timeout.
 *
 * State: UNKNOWN until decided, then UP or DOWN. down_after consecutive
 * failures turn UNKNOWN or UP into DOWN; up_after consecutive successes turn
 * DOWN into UP. From UNKNOWN the first success decides UP at once (good news
 * pages nobody, and a dashboard need not wait), while DOWN needs
 * down_after failures there too, so that one lost probe at start-up pages
 * nobody either.
 *
 * The module reports and stores nothing itself: results and transitions go
 * to the hooks (the store, objectives and alerts), status and metrics are
 * read on demand.
 *
 * Thread-safety: a probe_t and every call on it belong to the thread that
 * runs its loop (the control thread); hooks run on that thread. */
#ifndef SURETY_MONITOR_PROBE_H
#define SURETY_MONITOR_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "metrics/prom.h"

typedef struct probe probe_t;

typedef enum {
    PROBE_HTTP, /* target: an http:// or https:// URL */
    PROBE_TCP,  /* target: "host:port", "[v6]:port" */
    PROBE_DNS,  /* target: a name to resolve */
} probe_kind_t;

typedef enum {
    PROBE_UNKNOWN,
    PROBE_UP,
    PROBE_DOWN,
} probe_state_t;

/* Longest body substring accepted. */
#define PROBE_BODY_NEEDLE_MAX 1024
/* Bytes of an HTTP response body read at most; the rest is not downloaded. */
#define PROBE_BODY_READ_MAX (64 * 1024)

/* One monitor. Zero fields take the configuration's defaults (noted).
 * probe_new copies the strings. */
typedef struct {
    const char *name;
    probe_kind_t kind;
    const char *target;
    unsigned expect_status; /* HTTP; 0: 200 */
    const char *body;       /* HTTP; substring the body must contain; NULL: none */
    uint32_t latency_ms;    /* any kind; fail above it; 0: no threshold */
    uint32_t cert_days;     /* https only; fail when fewer days remain; 0: no check */
    const char *ca_file;    /* https; PEM bundle to verify with; NULL: the system's */
    uint32_t interval_ms;   /* 0: 30000; the config asks >= 1 s, tests go lower */
    uint32_t timeout_ms;    /* 0: 5000 */
    uint32_t down_after;    /* 0: 2 */
    uint32_t up_after;      /* 0: 2 */
} probe_spec_t;

#define PROBE_DETAIL_MAX 160

typedef struct {
    bool ok;
    uint32_t latency_ms;           /* HTTP: total time; TCP: connect time; DNS: lookup time */
    int status;                    /* HTTP status code; 0 when none */
    int64_t at;                    /* hooks.now_unix() when it ended */
    int64_t cert_expiry;           /* https: earliest notAfter of the chain, unix time; 0 unknown */
    char detail[PROBE_DETAIL_MAX]; /* "status 503", "timeout after 5000 ms", ... */
} probe_result_t;

typedef void (*probe_result_cb)(void *ud, size_t index, const probe_result_t *r);
typedef void (*probe_state_cb)(void *ud, size_t index, probe_state_t from, probe_state_t to);
/* Wall clock, unix seconds (injectable for tests). */
typedef int64_t (*probe_clock_cb)(void *ud);

typedef struct {
    void *ud;
    probe_result_cb on_result; /* each finished probe; NULL: none */
    probe_state_cb on_state;   /* each transition, after on_result; NULL: none */
    probe_clock_cb now_unix;   /* NULL: time() */
} probe_hooks_t;

typedef struct {
    probe_state_t state;
    bool has_result;
    probe_result_t last;
    uint32_t ok_streak, fail_streak; /* consecutive results, the current run */
    int64_t last_change;             /* now_unix() of the last transition; 0: none */
    uint64_t ok, fail, skipped;      /* probes since probe_new */
    bool in_flight;
} probe_status_t;

/* Arms the n monitors of specs on loop; the first probes run once the loop
 * runs. index in the hooks and below is the position in specs. Who frees:
 * the caller, with probe_free(), on the loop's thread, before the loop. NULL
 * on failure with *ret_err = -ENOMEM, or -EINVAL for a spec that cannot run
 * (empty name or target, a TCP target without a port, an HTTP target that
 * is not http(s)://, cert_days without https, a body over
 * PROBE_BODY_NEEDLE_MAX). */
probe_t *probe_new(loop_t *loop, const probe_spec_t *specs, size_t n, const probe_hooks_t *hooks,
                   int *ret_err);
/* Cancels the probes in flight (no result is reported for them) and frees
 * p. Accepts NULL. Not from inside a hook. */
void probe_free(probe_t *p);

/* A reload: gives each monitor of p the state, streaks, last result and
 * counters of the monitor of old with the same name, kind and target (a
 * monitor whose target changed starts UNKNOWN), so that a reload neither
 * forgets a DOWN nor reports transitions that did not happen. Reports
 * nothing. Call it right after probe_new(), before the loop runs p, and
 * then free old. */
void probe_inherit(probe_t *p, const probe_t *old);

size_t probe_count(const probe_t *p);
/* The monitor's name (owned by p). */
const char *probe_name(const probe_t *p, size_t index);
/* 0, or -ENOENT for an index out of range. */
int probe_status(const probe_t *p, size_t index, probe_status_t *ret);

/* "unknown", "up", "down". */
const char *probe_state_name(probe_state_t s);

/* Writes surety_monitor_up{monitor} (decided monitors only),
 * surety_monitor_probes_total{monitor,result="ok|fail"},
 * surety_monitor_probes_skipped_total{monitor},
 * surety_monitor_probe_duration_seconds{monitor} (the last probe's) and
 * surety_monitor_certificate_expiry_seconds{monitor} (https monitors whose
 * certificate has been seen: seconds left, negative once expired). Errors
 * stay in pr (prom_error). */
void probe_metrics_write(const probe_t *p, prom_t *pr);

/* Parses a certificate date as libcurl's CURLINFO_CERTINFO "Expire date:"
 * gives it: OpenSSL's "Nov  9 16:34:27 2027 GMT" or GnuTLS's
 * "2027-11-09 16:34:27 GMT". 0 or -EINVAL. */
int probe_cert_time_parse(const char *text, int64_t *ret_unix);

#endif
