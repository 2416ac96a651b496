/* The rules of the monitoring keys (issue 6) that a key's type and range
 * cannot express: what a probe target, a URL, an email address and a
 * maintenance time look like; rules between the keys of one monitor,
 * objective, alert or maintenance window (exactly one probe target, a
 * threshold only for latency, a webhook with its secret); and, once the
 * whole file is known, each objective's source resolved to a listener, a
 * route or a monitor, with a gateway latency threshold checked against the
 * histogram bounds so the objective's SLI is an exact count. Like check.c,
 * every message carries the LINE:COL of what it objects to. */
#include "conf/conf_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LIST_NAMES_MAX 10
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63

#define QNAME(buf, s) (conf_quote(buf, sizeof(buf), s, strlen(s)), buf)

static conf_mark_t mark_or(conf_ctx_t *ctx, const void *field, conf_mark_t fallback)
{
    conf_mark_t m;
    return conf_ctx_mark_find(ctx, field, CONF_MARK_VALUE, &m) ? m : fallback;
}

static bool written(conf_ctx_t *ctx, const void *field)
{
    conf_mark_t m;
    return conf_ctx_mark_find(ctx, field, CONF_MARK_VALUE, &m);
}

static bool is_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return len > 0;
}

/* A port: 1 to 65535, decimal. */
static bool port_ok(const char *s, size_t len)
{
    if (!is_digits(s, len) || len > 5)
        return false;
    unsigned long v = strtoul(s, NULL, 10);
    return v >= 1 && v <= 65535;
}

/* A host name (or a dotted IPv4 address): labels of letters, digits, '-'
 * and '_' (service names like _sip._tcp), 1 to 63 bytes each, at most 253
 * in all; a final dot is allowed. */
static bool dns_name_ok(const char *s, size_t len)
{
    size_t label = 0;
    if (len && s[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
        if (++label > DNS_LABEL_MAX)
            return false;
    }
    return label > 0;
}

/* host:port where host is a name, an IPv4 address or [IPv6]. */
static bool host_port_ok(const char *s, size_t len)
{
    const char *colon = memrchr(s, ':', len);
    if (!colon || !port_ok(colon + 1, len - (size_t)(colon - s) - 1))
        return false;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[') {
        if (s[hlen - 1] != ']' || hlen < 4)
            return false;
        for (size_t i = 1; i + 1 < hlen; i++)
            if (!strchr("0123456789abcdefABCDEF:.", s[i]))
                return false;
        return memchr(s + 1, ':', hlen - 2) != NULL;
    }
    return dns_name_ok(s, hlen);
}

/* scheme://authority[/rest], the authority a host with an optional port;
 * no user information (credentials belong in files, not in URLs). */
static bool url_ok(const char *value, const char *const *schemes, const char **why)
{
    const char *rest = NULL;
    for (size_t i = 0; schemes[i] && !rest; i++)
        if (strncmp(value, schemes[i], strlen(schemes[i])) == 0)
            rest = value + strlen(schemes[i]);
    if (!rest) {
        *why = "scheme";
        return false;
    }
    if (strpbrk(value, " \t")) {
        *why = "a space";
        return false;
    }
    size_t alen = strcspn(rest, "/?#");
    if (memchr(rest, '@', alen)) {
        *why = "user information";
        return false;
    }
    const char *colon = memrchr(rest, ':', alen);
    bool v6 = alen && rest[0] == '[';
    bool ok;
    if (colon && (!v6 || colon[-1] == ']'))
        ok = host_port_ok(rest, alen); /* with a port */
    else if (v6)
        ok = alen >= 4 && rest[alen - 1] == ']';
    else
        ok = dns_name_ok(rest, alen);
    if (!ok)
        *why = "host";
    return ok;
}

static void check_url(conf_ctx_t *ctx, const char *path, const char *value, conf_mark_t m,
                      const char *const *schemes, const char *want)
{
    char q[CONF_QUOTE_MAX];
    const char *why = NULL;
    if (url_ok(value, schemes, &why))
        return;
    conf_quote(q, sizeof(q), value, strlen(value));
    if (strcmp(why, "scheme") == 0)
        conf_ctx_error(ctx, m, "%s: expected %s, got %s", path, want, q);
    else if (strcmp(why, "host") == 0)
        conf_ctx_error(ctx, m, "%s: %s has no valid host (and optional port)", path, q);
    else
        conf_ctx_error(ctx, m, "%s: %s must not contain %s", path, q, why);
}

void conf_check_http_url(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    static const char *const schemes[] = {"http://", "https://", NULL};
    check_url(ctx, path, value, m, schemes, "an http:// or https:// URL");
}

void conf_check_smtp_url(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    static const char *const schemes[] = {"smtp://", "smtps://", NULL};
    check_url(ctx, path, value, m, schemes, "an smtp:// or smtps:// URL");
}

void conf_check_host_port(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    char q[CONF_QUOTE_MAX];
    if (host_port_ok(value, strlen(value)))
        return;
    conf_ctx_error(ctx, m, "%s: expected host:port like db.example.com:5432 or [::1]:5432, got %s",
                   path, QNAME(q, value));
}

void conf_check_dns_name(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    char q[CONF_QUOTE_MAX];
    if (dns_name_ok(value, strlen(value)))
        return;
    conf_ctx_error(ctx, m,
                   "%s: %s is not a host name: labels of letters, digits, '-' and '_', "
                   "separated by '.'",
                   path, QNAME(q, value));
}

void conf_check_email(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    char q[CONF_QUOTE_MAX];
    const char *at = strchr(value, '@');
    bool ok = at && at > value && !strchr(at + 1, '@') && !strpbrk(value, " <>\"(),;:\\[]") &&
              dns_name_ok(at + 1, strlen(at + 1));
    if (!ok)
        conf_ctx_error(ctx, m, "%s: expected an email address like ops@example.com, got %s", path,
                       QNAME(q, value));
}

/* "listener:NAME", "route:LISTENER/ROUTE" or "monitor:NAME": the syntax
 * here; the names are resolved by conf_check_objectives. */
void conf_parse_slo_source(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                           const conf_node_t *v, const char *s, size_t len, void *obj)
{
    static const struct {
        const char *prefix;
        conf_slo_source_t kind;
    } kinds[] = {{"listener:", CONF_SLO_SOURCE_LISTENER},
                 {"route:", CONF_SLO_SOURCE_ROUTE},
                 {"monitor:", CONF_SLO_SOURCE_MONITOR}};
    conf_objective_t *o = obj;
    conf_mark_t m = v ? v->mark : (conf_mark_t){0, 0};
    char q[CONF_QUOTE_MAX];

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t pl = strlen(kinds[i].prefix);
        if (len <= pl || memcmp(s, kinds[i].prefix, pl) != 0)
            continue;
        const char *slash = memchr(s + pl, '/', len - pl);
        bool route = kinds[i].kind == CONF_SLO_SOURCE_ROUTE;
        if (route != (slash != NULL) || (slash && (slash == s + pl || slash == s + len - 1)))
            break;
        if (memchr(s, 0, len))
            break;
        if (!(o->source = conf_arena_strndup(ctx->arena, s, len))) {
            conf_ctx_nomem(ctx);
            return;
        }
        o->source_kind = kinds[i].kind;
        return;
    }
    conf_quote(q, sizeof(q), s, len);
    conf_ctx_error(ctx, m, "%s: expected %s, got %s", path, k->expect, q);
}

/* The number written by s[0, n), which the caller checked are digits. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* "2026-12-01T02:00:00Z" exactly: RFC 3339 in UTC, whole seconds, into
 * the int64_t at k->off (unix seconds). */
void conf_parse_timestamp(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                          const conf_node_t *v, const char *s, size_t len, void *obj)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    conf_mark_t m = v ? v->mark : (conf_mark_t){0, 0};
    char q[CONF_QUOTE_MAX];
    struct tm tm = {0}, back;
    bool ok = len == sizeof(shape) - 1;

    for (size_t i = 0; ok && i < len; i++)
        ok = shape[i] == 'd' ? s[i] >= '0' && s[i] <= '9' : s[i] == shape[i];
    if (ok) {
        tm.tm_year = digits(s, 4) - 1900;
        tm.tm_mon = digits(s + 5, 2) - 1;
        tm.tm_mday = digits(s + 8, 2);
        tm.tm_hour = digits(s + 11, 2);
        tm.tm_min = digits(s + 14, 2);
        tm.tm_sec = digits(s + 17, 2);
        back = tm;
        time_t t = timegm(&back);
        /* timegm normalises 02-30 into March: a round trip tells. */
        ok = tm.tm_year >= 70 && back.tm_mon == tm.tm_mon && back.tm_mday == tm.tm_mday &&
             back.tm_hour == tm.tm_hour && back.tm_min == tm.tm_min && back.tm_sec == tm.tm_sec;
        if (ok) {
            int64_t secs = (int64_t)t;
            memcpy((char *)obj + k->off, &secs, sizeof(secs));
            return;
        }
    }
    conf_quote(q, sizeof(q), s, len);
    conf_ctx_error(ctx, m, "%s: expected %s, got %s", path, k->expect, q);
}

/* The file at path must be a readable regular file now (a secret the
 * process reads later). It is not opened: a check must not have the side
 * effects opening a device can have. */
static void check_readable(conf_ctx_t *ctx, const char *path, const char *key, const char *file,
                           conf_mark_t m)
{
    char q[CONF_QUOTE_MAX];
    struct stat st;
    int err = 0;

    if (stat(file, &st) < 0)
        err = errno;
    else if (!S_ISREG(st.st_mode))
        conf_ctx_error(ctx, m, "%s.%s: %s is not a regular file", path, key, QNAME(q, file));
    else if (st.st_size > CONF_SECRET_MAX + 1) /* + 1: a trailing newline is dropped */
        conf_ctx_error(ctx, m, "%s.%s: %s is larger than %d bytes: a secret, not a document",
                       path, key, QNAME(q, file), CONF_SECRET_MAX);
    else if (access(file, R_OK) < 0)
        err = errno;
    if (err)
        conf_ctx_error(ctx, m, "%s.%s: cannot read %s: %s", path, key, QNAME(q, file),
                       strerror(err));
}

void conf_finish_monitor(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    conf_monitor_t *mo = obj;
    char **const targets[] = {&mo->http, &mo->tcp, &mo->dns};
    static const char *const names[] = {"http", "tcp", "dns"};
    size_t n = 0, first = 0;

    for (size_t i = 0; i < 3; i++) {
        if (!*targets[i])
            continue;
        if (n++ == 0) {
            first = i;
            continue;
        }
        conf_ctx_error(ctx, mark_or(ctx, targets[i], where),
                       "%s: %s and %s cannot both be set: a monitor probes one target", path,
                       names[first], names[i]);
    }
    if (n == 0 && !written(ctx, &mo->http) && !written(ctx, &mo->tcp) && !written(ctx, &mo->dns))
        conf_ctx_error(ctx, where, "%s: one of http, tcp or dns is required", path);
    mo->kind = (conf_monitor_kind_t)first;
    mo->target = *targets[first];
    mo->https = mo->http && strncmp(mo->http, "https://", 8) == 0;
    if (mo->kind != CONF_MONITOR_HTTP || !mo->http) {
        if (written(ctx, &mo->expect))
            conf_ctx_error(ctx, mark_or(ctx, &mo->expect, where),
                           "%s: expect is only for http monitors", path);
        if (written(ctx, &mo->body))
            conf_ctx_error(ctx, mark_or(ctx, &mo->body, where),
                           "%s: body is only for http monitors", path);
    }
    if (written(ctx, &mo->cert_days) && !mo->https && n == 1)
        conf_ctx_error(ctx, mark_or(ctx, &mo->cert_days, where),
                       "%s: cert_days is only for https:// URLs", path);
    /* the default timeout fits any interval: half of a short one */
    if (!written(ctx, &mo->timeout_ms) && mo->timeout_ms >= mo->interval_ms)
        mo->timeout_ms = mo->interval_ms / 2;
    conf_check_order(ctx, path, where, &mo->timeout_ms, "timeout", &mo->interval_ms, "interval",
                     true);
}

void conf_finish_objective(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    conf_objective_t *o = obj;

    o->target = o->target_ppm / 1e6;
    o->alerts_all = o->nalerts == 0;
    o->listener = o->route = o->monitor = SIZE_MAX;
    if (!written(ctx, &o->kind))
        return; /* missing or wrong: already reported */
    if (o->kind == CONF_SLO_LATENCY && !written(ctx, &o->threshold_ms))
        conf_ctx_error(ctx, mark_or(ctx, &o->kind, where), "%s: kind: latency needs a threshold",
                       path);
    if (o->kind == CONF_SLO_AVAILABILITY && written(ctx, &o->threshold_ms))
        conf_ctx_error(ctx, mark_or(ctx, &o->threshold_ms, where),
                       "%s: threshold is only used with kind: latency", path);
}

static void finish_email(conf_ctx_t *ctx, const char *path, conf_alert_t *a, conf_mark_t where)
{
    if (a->email.username && !a->email.password_file)
        conf_ctx_error(ctx, mark_or(ctx, &a->email.username, where),
                       "%s: email.username needs email.password_file", path);
    if (a->email.password_file && !a->email.username)
        conf_ctx_error(ctx, mark_or(ctx, &a->email.password_file, where),
                       "%s: email.password_file is only used with email.username", path);
    if (a->email.password_file)
        check_readable(ctx, path, "email.password_file", a->email.password_file,
                       mark_or(ctx, &a->email.password_file, where));
}

void conf_finish_alert(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    conf_alert_t *a = obj;
    conf_mark_t email_m;

    a->email_enabled = conf_ctx_mark_find(ctx, &a->email_enabled, CONF_MARK_MAP, &email_m);
    a->kind = a->email_enabled ? CONF_ALERT_EMAIL : CONF_ALERT_WEBHOOK;
    if (a->email_enabled)
        finish_email(ctx, path, a, where);
    if (a->email_enabled && written(ctx, &a->webhook))
        conf_ctx_error(ctx, email_m, "%s: webhook and email cannot both be set: define two alerts",
                       path);
    else if (!a->email_enabled && !written(ctx, &a->webhook))
        conf_ctx_error(ctx, where, "%s: one of webhook or email is required", path);
    if (a->webhook && !a->secret_file && !written(ctx, &a->secret_file))
        conf_ctx_error(ctx, mark_or(ctx, &a->webhook, where),
                       "%s: webhook needs secret_file (the key that signs each call)", path);
    if (a->secret_file && !written(ctx, &a->webhook))
        conf_ctx_error(ctx, mark_or(ctx, &a->secret_file, where),
                       "%s: secret_file is only used with webhook", path);
    else if (a->secret_file)
        check_readable(ctx, path, "secret_file", a->secret_file,
                       mark_or(ctx, &a->secret_file, where));
}

void conf_finish_maintenance(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    conf_maintenance_t *w = obj;
    (void)where;

    w->objectives_all = w->nobjectives == 0;
    /* Only when both parsed: a bad one has its own message. */
    if (w->start_s && w->end_s && w->end_s <= w->start_s)
        conf_ctx_error(ctx, mark_or(ctx, &w->end_s, where), "%s: end must be after start", path);
}

/* ---- objective sources, once every name is known */

typedef const char *(*name_at_cb)(const void *arr, size_t i);

static const char *listener_name_cb(const void *arr, size_t i)
{
    return ((const conf_listener_t *)arr)[i].name;
}

static const char *route_name_cb(const void *arr, size_t i)
{
    return ((const conf_route_t *)arr)[i].name;
}

static const char *monitor_name_cb(const void *arr, size_t i)
{
    return ((const conf_monitor_t *)arr)[i].name;
}

/* Index of name (name[0..len)) among n elements, or SIZE_MAX. Linear:
 * objectives are few, and this runs once per load. */
static size_t find_name(const void *arr, size_t n, name_at_cb at, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = at(arr, i);
        if (s && strlen(s) == len && memcmp(s, name, len) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* "a, b, c" (at most LIST_NAMES_MAX, then "... (N in all)"). */
static void names_list(const void *arr, size_t n, name_at_cb at, char *out, size_t size)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && i < LIST_NAMES_MAX && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? ", " : "", at(arr, i));
    if (n > LIST_NAMES_MAX && o < size)
        snprintf(out + o, size - o, ", ... (%zu in all)", n);
}

static void source_missing(conf_ctx_t *ctx, const conf_objective_t *o, conf_mark_t m,
                           const char *what, const char *name, size_t len, const void *arr,
                           size_t n, name_at_cb at, const char *in)
{
    char qo[CONF_QUOTE_MAX], qn[CONF_QUOTE_MAX], names[1024];
    conf_quote(qn, sizeof(qn), name, len);
    names_list(arr, n, at, names, sizeof(names));
    if (n)
        conf_ctx_error(ctx, m, "objective %s names %s %s, which does not exist; %ss%s are: %s",
                       QNAME(qo, o->name), what, qn, what, in, names);
    else
        conf_ctx_error(ctx, m,
                       "objective %s names %s %s, which does not exist; no %ss%s are "
                       "defined",
                       QNAME(qo, o->name), what, qn, what, in);
}

static void resolve_source(conf_ctx_t *ctx, conf_objective_t *o, conf_mark_t m)
{
    const conf_t *c = ctx->conf;
    const char *name = strchr(o->source, ':') + 1;
    const char *slash = strchr(name, '/');
    char in[CONF_QUOTE_MAX + 16], q[CONF_QUOTE_MAX];

    switch (o->source_kind) {
    case CONF_SLO_SOURCE_LISTENER:
    case CONF_SLO_SOURCE_ROUTE: {
        size_t llen = slash ? (size_t)(slash - name) : strlen(name);
        o->listener = find_name(c->listeners, c->nlisteners, listener_name_cb, name, llen);
        if (o->listener == SIZE_MAX) {
            source_missing(ctx, o, m, "listener", name, llen, c->listeners, c->nlisteners,
                           listener_name_cb, "");
            return;
        }
        if (!slash)
            return;
        const conf_listener_t *l = &c->listeners[o->listener];
        o->route = find_name(l->routes, l->nroutes, route_name_cb, slash + 1, strlen(slash + 1));
        if (o->route == SIZE_MAX) {
            snprintf(in, sizeof(in), " of listener %s", QNAME(q, l->name));
            source_missing(ctx, o, m, "route", slash + 1, strlen(slash + 1), l->routes, l->nroutes,
                           route_name_cb, in);
        }
        return;
    }
    case CONF_SLO_SOURCE_MONITOR:
        o->monitor = find_name(c->monitors, c->nmonitors, monitor_name_cb, name, strlen(name));
        if (o->monitor == SIZE_MAX)
            source_missing(ctx, o, m, "monitor", name, strlen(name), c->monitors, c->nmonitors,
                           monitor_name_cb, "");
        return;
    }
}

/* A gateway latency SLI counts the requests in buckets whose upper bound
 * is at most the threshold: exact only when the threshold is a bound. */
static void check_threshold(conf_ctx_t *ctx, const conf_objective_t *o, conf_mark_t m)
{
    char allowed[512], t[32], qo[CONF_QUOTE_MAX];
    size_t off = 0;

    if (conf_latency_is_bound(o->threshold_ms))
        return;
    for (size_t i = 0; i < CONF_LATENCY_NBUCKETS; i++) {
        uint64_t ms = (uint64_t)(conf_latency_bounds[i] * 1000 + 0.5);
        conf_duration_format(ms, t, sizeof(t));
        off += (size_t)snprintf(allowed + off, sizeof(allowed) - off, "%s%s", i ? ", " : "", t);
    }
    conf_duration_format(o->threshold_ms, t, sizeof(t));
    conf_ctx_error(ctx, m,
                   "objective %s: threshold %s is not a bound of the gateway's latency "
                   "histogram, so requests could not be counted exactly; use one of %s",
                   QNAME(qo, o->name), t, allowed);
}

void conf_check_objectives(conf_ctx_t *ctx)
{
    conf_t *c = ctx->conf;
    for (size_t i = 0; i < c->nobjectives; i++) {
        conf_objective_t *o = &c->objectives[i];
        conf_mark_t where = {0, 0};
        conf_ctx_mark_find(ctx, o, CONF_MARK_ELEM, &where);
        if (!o->source)
            continue; /* missing or wrong: already reported */
        resolve_source(ctx, o, mark_or(ctx, &o->source, where));
        if (o->source_kind != CONF_SLO_SOURCE_MONITOR && o->kind == CONF_SLO_LATENCY &&
            o->threshold_ms)
            check_threshold(ctx, o, mark_or(ctx, &o->threshold_ms, where));
    }
}
