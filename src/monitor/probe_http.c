/* HTTP(S) and TCP probes through libcurl (see probe.h), and the pieces they
 * need: the streaming body matcher and the certificate date parser.
 *
 * Each probe gets a fresh easy handle on the probe_t's curl_loop_t, and a
 * fresh connection (no reuse, no DNS cache): a monitor must see what a new
 * user sees, not a warm connection. Redirects are not followed (a 301 is a
 * result), certificates are verified, the body is read through a matcher
 * and dropped, and the download stops after PROBE_BODY_READ_MAX bytes.
 * libcurl's own timeout bounds the whole probe. TCP probes are
 * CURLOPT_CONNECT_ONLY transfers: done once connected. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "monitor/probe_int.h"

#ifndef SURETY_VERSION
#define SURETY_VERSION "dev"
#endif
#define PROBE_USER_AGENT "surety-probe/" SURETY_VERSION

/* ---- body matcher ---- */

int probe_match_init(probe_match_t *m, const char *needle)
{
    memset(m, 0, sizeof(*m));
    if (!needle)
        return 0;
    m->needle = needle;
    m->len = strlen(needle);
    if (!m->len) {
        m->found = true; /* the empty string is in every body */
        return 0;
    }
    m->fail = calloc(m->len, sizeof(*m->fail));
    if (!m->fail)
        return -ENOMEM;
    for (size_t i = 1, k = 0; i < m->len; i++) {
        while (k > 0 && needle[i] != needle[k])
            k = m->fail[k - 1];
        if (needle[i] == needle[k])
            k++;
        m->fail[i] = k;
    }
    return 0;
}

void probe_match_deinit(probe_match_t *m)
{
    free(m->fail);
    m->fail = NULL;
}

void probe_match_reset(probe_match_t *m)
{
    m->matched = 0;
    m->found = m->needle && m->len == 0;
}

void probe_match_feed(probe_match_t *m, const char *p, size_t n)
{
    if (!m->needle || m->found)
        return;
    size_t k = m->matched;
    for (size_t i = 0; i < n; i++) {
        while (k > 0 && p[i] != m->needle[k])
            k = m->fail[k - 1];
        if (p[i] == m->needle[k])
            k++;
        if (k == m->len) {
            m->found = true;
            return;
        }
    }
    m->matched = k;
}

/* ---- certificate dates ---- */

static int month_parse(const char *s)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (strncmp(s, names + 3 * i, 3) == 0)
            return i;
    return -1;
}

int probe_cert_time_parse(const char *text, int64_t *ret_unix)
{
    struct tm tm = {0};
    char mon[4];
    int end = 0;
    while (*text == ' ')
        text++;
    if (sscanf(text, "%3s %d %d:%d:%d %d%n", mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
               &tm.tm_year, &end) == 6 &&
        end > 0) {
        tm.tm_mon = month_parse(mon);
    } else if (sscanf(text, "%d-%d-%d %d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &end) == 6 &&
               end > 0) {
        tm.tm_mon--;
    } else {
        return -EINVAL;
    }
    const char *rest = text + end;
    while (*rest == ' ')
        rest++;
    if (*rest && strcmp(rest, "GMT") != 0 && strcmp(rest, "UTC") != 0)
        return -EINVAL;
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1950 || tm.tm_hour < 0 || tm.tm_min < 0 ||
        tm.tm_sec < 0 || tm.tm_year > 9999)
        return -EINVAL;
    tm.tm_year -= 1900;
    *ret_unix = (int64_t)timegm(&tm);
    return 0;
}

/* The earliest "Expire date" of the chain libcurl saw; 0 when none. */
static int64_t cert_expiry(CURL *e)
{
    struct curl_certinfo *ci = NULL;
    int64_t earliest = 0;
    if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci)
        return 0;
    for (int i = 0; i < ci->num_of_certs; i++) {
        for (struct curl_slist *l = ci->certinfo[i]; l; l = l->next) {
            int64_t t;
            if (strncmp(l->data, "Expire date:", 12) != 0 ||
                probe_cert_time_parse(l->data + 12, &t) < 0)
                continue;
            if (!earliest || t < earliest)
                earliest = t;
        }
    }
    return earliest;
}

/* ---- transfers ---- */

static bool is_https(const probe_mon_t *m)
{
    return m->spec.kind == PROBE_HTTP && strncasecmp(m->spec.target, "https://", 8) == 0;
}

int probe_http_prepare(probe_mon_t *m)
{
    int err = probe_match_init(&m->match, m->spec.body);
    if (err < 0)
        return err;
    if (m->spec.kind == PROBE_TCP) {
        /* CONNECT_ONLY with an http:// URL connects and stops there. */
        if (asprintf(&m->url, "http://%s/", m->spec.target) < 0) {
            m->url = NULL;
            return -ENOMEM;
        }
    } else if (!(m->url = strdup(m->spec.target))) {
        return -ENOMEM;
    }
    return 0;
}

/* CURLOPT_WRITEFUNCTION: feeds the matcher, keeps nothing. Returning less
 * than given stops the transfer (CURLE_WRITE_ERROR, recognised by
 * body_capped) once PROBE_BODY_READ_MAX bytes have been read. */
static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    probe_mon_t *m = ud;
    size_t n = size * nmemb;
    size_t room = PROBE_BODY_READ_MAX - m->body_seen;
    size_t take = n < room ? n : room;
    probe_match_feed(&m->match, ptr, take);
    m->body_seen += take;
    if (take < n)
        m->body_capped = true;
    return take;
}

static int easy_setup(probe_mon_t *m, CURL *e)
{
    const probe_spec_t *s = &m->spec;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_URL, m->url);
    SET(CURLOPT_PRIVATE, m);
    SET(CURLOPT_ERRORBUFFER, m->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_FORBID_REUSE, 1L);
    SET(CURLOPT_DNS_CACHE_TIMEOUT, 0L);
    /* A transfer ended while its name is still resolving would otherwise
     * join the resolver thread, blocking the control thread until
     * getaddrinfo returns: detach it instead (it frees itself). */
    SET(CURLOPT_QUICK_EXIT, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, PROBE_USER_AGENT);
    if (s->kind == PROBE_TCP) {
        SET(CURLOPT_PROTOCOLS_STR, "http");
        SET(CURLOPT_CONNECT_ONLY, 1L);
    } else {
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_WRITEFUNCTION, write_cb);
        SET(CURLOPT_WRITEDATA, m);
        if (is_https(m))
            SET(CURLOPT_CERTINFO, 1L);
        if (s->ca_file)
            SET(CURLOPT_CAINFO, s->ca_file);
    }
#undef SET
    return rc == CURLE_OK ? 0 : rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

void probe_http_start(probe_mon_t *m)
{
    CURL *e = curl_easy_init();
    int err = e ? easy_setup(m, e) : -ENOMEM;
    m->errbuf[0] = '\0';
    m->body_seen = 0;
    m->body_capped = false;
    probe_match_reset(&m->match);
    if (err == 0)
        err = curl_loop_add(m->p->curl, e);
    if (err < 0) {
        curl_easy_cleanup(e);
        probe_fail(m, 0, 0, "internal: %s", strerror(-err));
        return;
    }
    m->easy = e;
}

void probe_http_cancel(probe_mon_t *m)
{
    if (!m->easy)
        return;
    curl_loop_remove(m->p->curl, m->easy);
    curl_easy_cleanup(m->easy);
    m->easy = NULL;
    m->running = false;
}

/* Why the transfer failed, in the words of probe.h's examples. */
static void curl_error_detail(probe_mon_t *m, CURL *e, CURLcode rc, probe_result_t *r)
{
    long os_errno = 0;
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(r->detail, sizeof(r->detail), "timeout after %u ms", m->spec.timeout_ms);
    else if (rc == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED)
        snprintf(r->detail, sizeof(r->detail), "connection refused");
    else if (rc == CURLE_COULDNT_CONNECT && os_errno)
        snprintf(r->detail, sizeof(r->detail), "connect: %s", strerror((int)os_errno));
    else
        snprintf(r->detail, sizeof(r->detail), "%.*s", PROBE_DETAIL_MAX - 1,
                 m->errbuf[0] ? m->errbuf : curl_easy_strerror(rc));
}

/* Status, body, latency, certificate: the first that fails names the result. */
static void http_judge(probe_mon_t *m, CURL *e, probe_result_t *r, int64_t now)
{
    const probe_spec_t *s = &m->spec;
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    r->status = (int)code;
    if (is_https(m))
        r->cert_expiry = cert_expiry(e);
    int64_t left = r->cert_expiry - now;
    if ((unsigned long)code != s->expect_status) {
        snprintf(r->detail, sizeof(r->detail), "status %ld", code);
    } else if (s->body && !m->match.found) {
        snprintf(r->detail, sizeof(r->detail), "body does not contain \"%.48s\"%s%s", s->body,
                 strlen(s->body) > 48 ? "..." : "", m->body_capped ? " in its first 64 KiB" : "");
    } else if (s->latency_ms && r->latency_ms > s->latency_ms) {
        snprintf(r->detail, sizeof(r->detail), "latency %u ms over %u ms", r->latency_ms,
                 s->latency_ms);
    } else if (s->cert_days && !r->cert_expiry) {
        snprintf(r->detail, sizeof(r->detail), "no certificate expiry date");
    } else if (s->cert_days && left < (int64_t)s->cert_days * 86400) {
        snprintf(r->detail, sizeof(r->detail), "certificate expires in %lld days",
                 (long long)(left < 0 ? -((-left + 86399) / 86400) : left / 86400));
    } else {
        r->ok = true;
        snprintf(r->detail, sizeof(r->detail), "status %ld", code);
    }
}

static void tcp_judge(probe_mon_t *m, CURL *e, probe_result_t *r)
{
    char *ip = NULL;
    long port = 0;
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
    if (m->spec.latency_ms && r->latency_ms > m->spec.latency_ms) {
        snprintf(r->detail, sizeof(r->detail), "latency %u ms over %u ms", r->latency_ms,
                 m->spec.latency_ms);
        return;
    }
    r->ok = true;
    snprintf(r->detail, sizeof(r->detail), "connected to %s port %ld", ip ? ip : "?", port);
}

/* The curl_loop done callback of the probe_t: every HTTP and TCP probe
 * ends here (or in probe_http_cancel). */
void probe_curl_done(curl_loop_t *cl, CURL *easy, CURLcode result, void *ud)
{
    (void)cl;
    (void)ud;
    probe_mon_t *m = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&m);
    probe_result_t r = {0};
    curl_off_t us = 0;
    curl_easy_getinfo(
        easy, m->spec.kind == PROBE_TCP ? CURLINFO_CONNECT_TIME_T : CURLINFO_TOTAL_TIME_T, &us);
    r.latency_ms = us / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(us / 1000);
    if (result != CURLE_OK && !(result == CURLE_WRITE_ERROR && m->body_capped))
        curl_error_detail(m, easy, result, &r);
    else if (m->spec.kind == PROBE_TCP)
        tcp_judge(m, easy, &r);
    else
        http_judge(m, easy, &r, probe_now_unix(m->p));
    m->easy = NULL;
    curl_easy_cleanup(easy);
    probe_finish(m, &r);
}
