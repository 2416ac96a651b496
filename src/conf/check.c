/* The rules that a key's type and range cannot express: what a name, a
 * host or a path may look like, rules between keys of one object (a head
 * limit at least the URI limit, a server listed once per pool), and rules
 * across the whole file (a route names a pool that exists, no two
 * listeners and not the admin listener share an address). The table names
 * these hooks; walk.c calls them with the position of what they check, so
 * every message still has its LINE:COL. */
#include "conf/conf_int.h"
#include "core/cidr.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN 64
#define LIST_NAMES_MAX 10

/* A name for a message, quoted and safe to print (it may be one that was
 * itself reported as invalid). */
#define QNAME(buf, s) (conf_quote(buf, sizeof(buf), s, strlen(s)), buf)

/* The mark of field, or fallback when it was a default. */
static conf_mark_t mark_or(conf_ctx_t *ctx, const void *field, conf_mark_t fallback)
{
    conf_mark_t m;
    return conf_ctx_mark_find(ctx, field, false, &m) ? m : fallback;
}

void conf_check_name(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    size_t len = strlen(value);
    bool ok = len >= 1 && len <= NAME_MAX_LEN;
    char q[CONF_QUOTE_MAX];

    for (size_t i = 0; ok && i < len; i++) {
        char c = value[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    if (ok)
        return;
    conf_quote(q, sizeof(q), value, len);
    conf_ctx_error(ctx, m, "%s: %s is not a valid name: use 1 to %d of A-Z a-z 0-9 _ . -", path, q,
                   NAME_MAX_LEN);
}

void conf_check_host(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    size_t len = strlen(value);
    char q[CONF_QUOTE_MAX];
    conf_quote(q, sizeof(q), value, len);

    if (strchr(value, ':')) {
        conf_ctx_error(ctx, m,
                       "%s: %s has a port; a route matches the host name only, without "
                       "a port",
                       path, q);
        return;
    }
    /* Stored the way requests are compared: lower case, and without the
     * final dot of a fully qualified name (the proxy drops it too). */
    for (size_t i = 0; i < len; i++)
        if (value[i] >= 'A' && value[i] <= 'Z')
            value[i] = (char)(value[i] - 'A' + 'a');
    if (len > 1 && value[len - 1] == '.')
        value[--len] = 0;
    const char *name = value;
    if (len >= 2 && value[0] == '*' && value[1] == '.')
        name += 2;
    bool ok = name[0] != 0 && name[0] != '.' && !strstr(name, "..");
    for (const char *c = name; ok && *c; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '-';
    if (!ok)
        conf_ctx_error(ctx, m,
                       "%s: %s is not a host name: use letters, digits, '.' and '-', optionally "
                       "after a leading '*.'",
                       path, q);
}

void conf_check_path(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    char q[CONF_QUOTE_MAX];
    conf_quote(q, sizeof(q), value, strlen(value));
    if (value[0] != '/')
        conf_ctx_error(ctx, m, "%s: a path prefix must start with '/', got %s", path, q);
    else if (strpbrk(value, " ?#"))
        conf_ctx_error(ctx, m, "%s: a path prefix cannot contain a space, '?' or '#', got %s", path,
                       q);
}

/* RFC 9110 tchar: what a method, a header name and a cookie name are made of. */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_tchar(s[i]))
            return false;
    return len > 0;
}

void conf_check_token(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    char q[CONF_QUOTE_MAX];
    if (is_token(value, strlen(value)))
        return;
    conf_quote(q, sizeof(q), value, strlen(value));
    conf_ctx_error(ctx, m, "%s: %s is not an HTTP token: use letters, digits and !#$%%&'*+-.^_`|~",
                   path, q);
}

void conf_check_health_path(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    char q[CONF_QUOTE_MAX];
    conf_quote(q, sizeof(q), value, strlen(value));
    if (value[0] != '/')
        conf_ctx_error(ctx, m, "%s: must start with '/', got %s", path, q);
    else if (strpbrk(value, " #"))
        conf_ctx_error(ctx, m, "%s: cannot contain a space or '#', got %s", path, q);
}

/* hash: source | header:NAME | cookie:NAME, into the conf_hash_kind_t at
 * k->off and the char * (NAME, NULL for source) at k->off2. */
void conf_parse_hash(conf_ctx_t *ctx, const char *path, const conf_key_t *k, const conf_node_t *v,
                     const char *s, size_t len, void *obj)
{
    static const struct {
        const char *prefix;
        conf_hash_kind_t kind;
    } kinds[] = {{"header:", CONF_HASH_HEADER}, {"cookie:", CONF_HASH_COOKIE}};
    conf_mark_t m = v ? v->mark : (conf_mark_t){0, 0};
    conf_hash_kind_t *kind = (conf_hash_kind_t *)((char *)obj + k->off);
    char **name = (char **)((char *)obj + k->off2), q[CONF_QUOTE_MAX];

    assert(k->size == sizeof(*kind));
    if (len == 6 && memcmp(s, "source", 6) == 0) {
        *kind = CONF_HASH_SOURCE;
        *name = NULL;
        return;
    }
    conf_quote(q, sizeof(q), s, len);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t pl = strlen(kinds[i].prefix);
        if (len < pl || memcmp(s, kinds[i].prefix, pl) != 0)
            continue;
        if (!is_token(s + pl, len - pl) || len - pl > NAME_MAX_LEN) {
            conf_ctx_error(ctx, m,
                           "%s: the name in %s must be 1 to %d letters, digits or "
                           "!#$%%&'*+-.^_`|~",
                           path, q, NAME_MAX_LEN);
            return;
        }
        if (!(*name = conf_arena_strndup(ctx->arena, s + pl, len - pl))) {
            conf_ctx_nomem(ctx);
            return;
        }
        *kind = kinds[i].kind;
        return;
    }
    conf_ctx_error(ctx, m, "%s: expected %s, got %s", path, k->expect, q);
}

/* shield rate.key: what conf_parse_hash takes, or "route". */
void conf_parse_rate_key(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                         const conf_node_t *v, const char *s, size_t len, void *obj)
{
    if (len == 5 && memcmp(s, "route", 5) == 0) {
        *(conf_hash_kind_t *)((char *)obj + k->off) = CONF_HASH_ROUTE;
        *(char **)((char *)obj + k->off2) = NULL;
        return;
    }
    conf_parse_hash(ctx, path, k, v, s, len, obj);
}

/* A deny/allow entry: a CIDR prefix by core/cidr.h's rules, or "@PATH"
 * (the file is read when the policy is built: see src/shield/policy.c). */
void conf_check_cidr(conf_ctx_t *ctx, const char *path, char *value, conf_mark_t m)
{
    char q[CONF_QUOTE_MAX], net[CIDR_TEXT_MAX];
    size_t len = strlen(value);
    const char *why;
    cidr_t p;

    if (value[0] == '@') {
        if (len == 1)
            conf_ctx_error(ctx, m, "%s: '@' must be followed by the path of a list file", path);
        return;
    }
    if (cidr_parse(value, len, &p, &why) == 0)
        return;
    conf_quote(q, sizeof(q), value, len);
    if (why == cidr_why_host_bits) {
        cidr_format(&p, net, sizeof(net));
        conf_ctx_error(ctx, m, "%s: %s in %s (the network is %s)", path, why, q, net);
        return;
    }
    conf_ctx_error(ctx, m,
                   "%s: %s: %s (want a prefix like 203.0.113.0/24 or 2001:db8::/32, or "
                   "@PATH)",
                   path, why, q);
}

void conf_finish_shield(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    conf_shield_t *s = obj;
    conf_mark_t m;

    s->waf.enabled = conf_ctx_mark_find(ctx, &s->waf.enabled, CONF_MARK_MAP, &m);
    s->ban.enabled = conf_ctx_mark_find(ctx, &s->ban.enabled, CONF_MARK_MAP, &m);
    if (s->ban.max_ms < s->ban.for_ms)
        conf_ctx_error(ctx, mark_or(ctx, &s->ban.max_ms, mark_or(ctx, &s->ban.for_ms, where)),
                       "%s: ban.max must be at least ban.for", path);
}

/* A status code, or "LOW-HIGH", into the unsigned at k->off and k->off2;
 * each within k->min..k->max. */
void conf_parse_status_range(conf_ctx_t *ctx, const char *path, const conf_key_t *k,
                             const conf_node_t *v, const char *s, size_t len, void *obj)
{
    conf_mark_t m = v ? v->mark : (conf_mark_t){0, 0};
    const char *dash = memchr(s, '-', len);
    size_t lolen = dash ? (size_t)(dash - s) : len;
    int64_t lo = 0, hi = 0, min = 0, max = INT64_MAX;
    char q[CONF_QUOTE_MAX];

    conf_quote(q, sizeof(q), s, len);
    conf_int_parse(k->min, strlen(k->min), &min);
    conf_int_parse(k->max, strlen(k->max), &max);
    /* A dash needs digits on both sides: "-5" is neither a code nor a range. */
    int rlo = lolen ? conf_int_parse(s, lolen, &lo) : -EINVAL;
    int rhi = dash ? conf_int_parse(dash + 1, len - lolen - 1, &hi) : rlo;
    if (!dash)
        hi = lo;
    if (rlo == -EINVAL || rhi == -EINVAL || (dash && dash + 1 < s + len && dash[1] == '-')) {
        conf_ctx_error(ctx, m, "%s: expected %s, got %s", path, k->expect, q);
        return;
    }
    if (rlo < 0 || rhi < 0 || lo < min || lo > max || hi < min || hi > max) {
        conf_ctx_error(ctx, m, "%s: status codes must be between %s and %s, got %s", path, k->min,
                       k->max, q);
        return;
    }
    if (lo > hi) {
        conf_ctx_error(ctx, m, "%s: the range %s is empty: its first code is above its last", path,
                       q);
        return;
    }
    *(unsigned *)((char *)obj + k->off) = (unsigned)lo;
    *(unsigned *)((char *)obj + k->off2) = (unsigned)hi;
}

/* "32k" rather than "32768" when it is exact, as the file would say it. */
static void size_format(size_t v, char *out, size_t n)
{
    if (v && v % (1u << 20) == 0)
        snprintf(out, n, "%zum", v >> 20);
    else if (v && v % 1024 == 0)
        snprintf(out, n, "%zuk", v >> 10);
    else
        snprintf(out, n, "%zu", v);
}

/* "2s" rather than "2000ms" when it is exact. */
void conf_duration_format(uint64_t ms, char *out, size_t n)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; ms && i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(out, n, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(out, n, "%llu%s", (unsigned long long)ms, ms ? "ms" : "");
}

void conf_finish_root(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    conf_t *c = obj;
    (void)path;
    (void)where;
    if (c->workers == 0) { /* auto */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
    }
    c->admin_enabled = c->admin_listen != NULL;
    conf_mark_t m;
    c->admin_tls.enabled = conf_ctx_mark_find(ctx, &c->admin_tls.enabled, CONF_MARK_MAP, &m);
    if (!c->store.sqlite && c->data_dir) {
        size_t n = strlen(c->data_dir) + sizeof("/surety.db");
        if (!(c->store.sqlite = conf_arena_alloc(ctx->arena, n)))
            conf_ctx_nomem(ctx);
        else
            snprintf(c->store.sqlite, n, "%s/surety.db", c->data_dir);
    }
}

void conf_finish_listener(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    conf_listener_t *l = obj;
    char hb[32], uri[32];
    conf_mark_t m;

    l->tls.enabled = conf_ctx_mark_find(ctx, &l->tls.enabled, CONF_MARK_MAP, &m);
    /* (said only of an otherwise sound file: a routes list written but
     * wrong, or a listener that is not a map, has its own message) */
    if (!l->nroutes && !l->redirect_https && !conf_diag_failed(&ctx->diag))
        conf_ctx_error(ctx, where,
                       "%s: routes: at least one route is required (or "
                       "redirect_https)",
                       path);
    if (l->tls.enabled && l->tls.min_version && l->tls.min_version < 12 && !l->tls.allow_legacy)
        conf_ctx_error(ctx, mark_or(ctx, &l->tls.min_version, where),
                       "%s: tls.min_version 1.%u needs tls.allow_legacy: true (TLS 1.0 and 1.1 "
                       "are broken; think twice)",
                       path, l->tls.min_version - 10);

    if (l->max_header_bytes >= l->max_uri || !l->max_uri || !l->max_header_bytes)
        return;
    /* Point at whichever of the two was written; header_bytes if both. */
    if (!conf_ctx_mark_find(ctx, &l->max_header_bytes, false, &m))
        m = mark_or(ctx, &l->max_uri, where);
    size_format(l->max_header_bytes, hb, sizeof(hb));
    size_format(l->max_uri, uri, sizeof(uri));
    conf_ctx_error(ctx, m, "%s: limits.header_bytes (%s) must be at least limits.uri (%s)", path,
                   hb, uri);
}

static bool addr_equal(const sock_addr_t *a, const sock_addr_t *b)
{
    if (a->ss.ss_family != b->ss.ss_family || sock_addr_port(a) != sock_addr_port(b))
        return false;
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
    if (a->ss.ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                      &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, 16) == 0;
    return false;
}

static bool addr_is_any(const sock_addr_t *a)
{
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    return false;
}

/* Two listening sockets collide when they are the same address, or one is
 * the wildcard of the other's family on the same port (IPv6 sockets are
 * V6ONLY, so 0.0.0.0 and [::] do not). */
static bool addr_overlap(const sock_addr_t *a, const sock_addr_t *b)
{
    if (a->ss.ss_family != b->ss.ss_family || sock_addr_port(a) != sock_addr_port(b))
        return false;
    return addr_equal(a, b) || addr_is_any(a) || addr_is_any(b);
}

typedef struct {
    int (*cmp)(size_t a, size_t b, void *arg);
    void *arg;
} dupsort_t;

static int dupsort_cmp(const void *a, const void *b, void *p)
{
    const dupsort_t *s = p;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = s->cmp(x, y, s->arg);
    if (c)
        return c;
    return x < y ? -1 : x > y; /* equal ones stay in order: the first is first */
}

int conf_find_duplicates(size_t n, int (*cmp)(size_t a, size_t b, void *arg), void *arg,
                         void (*dup)(size_t first, size_t j, void *dup_arg), void *dup_arg)
{
    dupsort_t s = {cmp, arg};
    size_t *idx;

    if (n < 2)
        return 0;
    if (!(idx = malloc(n * sizeof(*idx))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    qsort_r(idx, n, sizeof(*idx), dupsort_cmp, &s);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (cmp(idx[first], idx[i], arg) != 0)
            first = i;
        else
            dup(idx[first], idx[i], dup_arg);
    }
    free(idx);
    return 0;
}

/* Orders addresses: family, then address bytes, then port. */
static int addr_cmp(const sock_addr_t *a, const sock_addr_t *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return a->ss.ss_family < b->ss.ss_family ? -1 : 1;
    if (!addr_equal(a, b)) {
        if (a->ss.ss_family == AF_INET6)
            return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                          &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, 16) < 0
                       ? -1
                       : 1;
        if (a->ss.ss_family == AF_INET) {
            uint32_t x = ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr);
            uint32_t y = ntohl(((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr);
            if (x != y)
                return x < y ? -1 : 1;
        }
    }
    return sock_addr_port(a) - sock_addr_port(b);
}

static int server_cmp(size_t a, size_t b, void *arg)
{
    const conf_pool_t *p = arg;
    const conf_server_t *x = &p->servers[a], *y = &p->servers[b];
    if (!x->address || !y->address)
        return !x->address - !y->address;
    return addr_cmp(&x->addr, &y->addr);
}

typedef struct {
    conf_ctx_t *ctx;
    const conf_pool_t *p;
    const char *path;
    conf_mark_t where;
} server_dup_t;

static void server_dup(size_t first, size_t j, void *arg)
{
    const server_dup_t *d = arg;
    const conf_server_t *a = &d->p->servers[first], *b = &d->p->servers[j];
    if (!b->address)
        return;
    conf_mark_t ma = mark_or(d->ctx, &a->address, d->where);
    conf_mark_t mb = mark_or(d->ctx, &b->address, d->where);
    conf_ctx_error(d->ctx, mb,
                   "%s.servers[%zu]: server %s is already in this pool (first at %d:%d); use "
                   "weight to give it a larger share",
                   d->path, j, b->address, ma.line, ma.col);
}

/* Two durations of one object where the first must be below (strict) or
 * at most the second: reported at whichever was written, the first if
 * both. */
void conf_check_order(conf_ctx_t *ctx, const char *path, conf_mark_t where, const uint64_t *a,
                      const char *aname, const uint64_t *b, const char *bname, bool strict)
{
    char as[32], bs[32];
    conf_mark_t m;
    /* Both have a minimum above 0: 0 is a value already reported. */
    if (*a == 0 || *b == 0 || (strict ? *a < *b : *a <= *b))
        return;
    if (!conf_ctx_mark_find(ctx, a, CONF_MARK_VALUE, &m))
        m = mark_or(ctx, b, where);
    conf_duration_format(*a, as, sizeof(as));
    conf_duration_format(*b, bs, sizeof(bs));
    conf_ctx_error(ctx, m, "%s: %s (%s) must be %s %s (%s)", path, aname, as,
                   strict ? "less than" : "at most", bname, bs);
}

/* Rules between the availability keys of one pool. backup is resolved
 * later (conf_check_all): here only whether it was written matters. */
static void finish_pool_availability(conf_ctx_t *ctx, const char *path, conf_pool_t *p,
                                     conf_mark_t where)
{
    conf_mark_t m;
    bool hash_written = conf_ctx_mark_find(ctx, &p->hash, CONF_MARK_VALUE, &m);

    if (p->balance == CONF_BALANCE_HASH && !hash_written)
        conf_ctx_error(ctx, mark_or(ctx, &p->balance, where),
                       "%s: balance: hash needs a hash key (hash: source, header:NAME or "
                       "cookie:NAME)",
                       path);
    else if (p->balance != CONF_BALANCE_HASH && hash_written)
        conf_ctx_error(ctx, m, "%s: hash is only used with balance: hash", path);
    if (conf_ctx_mark_find(ctx, &p->failover_min_healthy, CONF_MARK_MAP, &m) &&
        !conf_ctx_mark_find(ctx, &p->backup, CONF_MARK_VALUE, &(conf_mark_t){0, 0}))
        conf_ctx_error(ctx, m, "%s: failover needs a backup pool", path);
    if (p->nservers && p->failover_min_healthy > p->nservers)
        conf_ctx_error(ctx, mark_or(ctx, &p->failover_min_healthy, where),
                       "%s: failover.min_healthy (%u) must be at most the number of servers of "
                       "the pool (%zu)",
                       path, p->failover_min_healthy, p->nservers);
    conf_check_order(ctx, path, where, &p->health.timeout_ms, "health.timeout",
                     &p->health.interval_ms, "health.interval", true);
    conf_check_order(ctx, path, where, &p->outlier.ejection_ms, "outlier.ejection",
                     &p->outlier.max_ejection_ms, "outlier.max_ejection", false);
}

/* pools.<name>.tls: what would make verification fail open or a client
 * certificate half there. The files themselves are read by `surety check`
 * and at start (gateway), which name the file and the problem. */
static void finish_pool_tls(conf_ctx_t *ctx, const char *path, conf_pool_t *p)
{
    conf_mark_t m;
    p->tls.enabled = conf_ctx_mark_find(ctx, &p->tls.enabled, CONF_MARK_MAP, &m);
    if (!p->tls.enabled)
        return;
    if (p->tls.verify && (!p->tls.sni || !*p->tls.sni))
        conf_ctx_error(ctx, m,
                       "%s: tls.sni is required with tls.verify: true (the name the servers' "
                       "certificates must carry)",
                       path);
    if (!p->tls.cert != !p->tls.key)
        conf_ctx_error(ctx, mark_or(ctx, p->tls.cert ? (void *)&p->tls.cert : &p->tls.key, m),
                       "%s: tls.cert and tls.key go together (a client certificate needs both)",
                       path);
}

void conf_finish_pool(conf_ctx_t *ctx, const char *path, void *obj, conf_mark_t where)
{
    conf_pool_t *p = obj;
    server_dup_t d = {ctx, p, path, where};
    /* Health and latency state is keyed by pool and server address across
     * reloads, so the same address twice in a pool would share it. */
    if (conf_find_duplicates(p->nservers, server_cmp, p, server_dup, &d) < 0)
        conf_ctx_nomem(ctx);
    finish_pool_availability(ctx, path, p, where);
    finish_pool_tls(ctx, path, p);
}

/* The elements of a top-level NAMED key sorted by name, so each reference
 * is resolved by binary search. */
typedef struct {
    const conf_key_t *key;
    const char *arr;
    size_t n;
    size_t *idx;
} target_t;

static const char *target_name(const target_t *t, size_t i)
{
    return *(char *const *)(t->arr + i * t->key->elem_size + t->key->name_off);
}

static int target_cmp(const void *a, const void *b, void *p)
{
    return strcmp(target_name(p, *(const size_t *)a), target_name(p, *(const size_t *)b));
}

static int target_init(target_t *t, const conf_t *c, const conf_key_t *key)
{
    t->key = key;
    t->arr = *(char *const *)((const char *)c + key->off);
    t->n = *(const size_t *)((const char *)c + key->off2);
    t->idx = malloc((t->n ? t->n : 1) * sizeof(*t->idx));
    if (!t->idx)
        return -ENOMEM;
    for (size_t i = 0; i < t->n; i++)
        t->idx[i] = i;
    qsort_r(t->idx, t->n, sizeof(*t->idx), target_cmp, t);
    return 0;
}

/* The index of the element called name, or -1. */
static ssize_t target_find(const target_t *t, const char *name)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, target_name(t, t->idx[mid]));
        if (c == 0)
            return (ssize_t)t->idx[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static void ref_missing(conf_ctx_t *ctx, const conf_ref_t *r, const target_t *t)
{
    char q[CONF_QUOTE_MAX], names[1024];
    size_t o = 0;

    names[0] = 0;
    for (size_t j = 0; j < t->n && j < LIST_NAMES_MAX && o < sizeof(names); j++) {
        /* Unquoted, as the names are written in the file. */
        conf_quote(q, sizeof(q), target_name(t, j), strlen(target_name(t, j)));
        q[strlen(q) - 1] = 0;
        o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", j ? ", " : "", q + 1);
    }
    if (t->n > LIST_NAMES_MAX && o < sizeof(names))
        snprintf(names + o, sizeof(names) - o, ", ... (%zu in all)", t->n);
    conf_quote(q, sizeof(q), r->name, strlen(r->name));
    if (t->n)
        conf_ctx_error(ctx, r->mark, "%s names %s %s, which does not exist; %ss are: %s", r->owner,
                       t->key->noun, q, t->key->noun, names);
    else
        conf_ctx_error(ctx, r->mark, "%s names %s %s, which does not exist; no %ss are defined",
                       r->owner, t->key->noun, q, t->key->noun);
}

static void check_refs(conf_ctx_t *ctx)
{
    target_t targets[8];
    size_t ntargets = 0;

    for (const conf_ref_t *r = ctx->refs; r; r = r->next) {
        const conf_key_t *key = conf_key_find(conf_root.sub, r->key->ref, strlen(r->key->ref));
        target_t *t = NULL;
        for (size_t i = 0; i < ntargets && !t; i++)
            if (targets[i].key == key)
                t = &targets[i];
        if (!t) {
            assert(ntargets < sizeof(targets) / sizeof(targets[0]));
            t = &targets[ntargets];
            if (target_init(t, ctx->conf, key) < 0) {
                conf_ctx_nomem(ctx);
                break;
            }
            ntargets++;
        }
        ssize_t i = target_find(t, r->name);
        if (i >= 0)
            *r->target = (size_t)i;
        else
            ref_missing(ctx, r, t);
    }
    for (size_t i = 0; i < ntargets; i++)
        free(targets[i].idx);
}

static void check_addresses(conf_ctx_t *ctx)
{
    conf_t *c = ctx->conf;
    conf_mark_t admin_m, m;
    char qa[CONF_QUOTE_MAX], qb[CONF_QUOTE_MAX];
    bool admin_written = conf_ctx_mark_find(ctx, &c->admin_listen, false, &admin_m);

    for (size_t j = 0; j < c->nlisteners; j++) {
        const conf_listener_t *b = &c->listeners[j];
        if (!b->listen)
            continue;
        m = mark_or(ctx, &b->listen, (conf_mark_t){1, 1});
        for (size_t i = 0; i < j; i++) {
            const conf_listener_t *a = &c->listeners[i];
            if (!a->listen || !addr_overlap(&a->addr, &b->addr))
                continue;
            if (addr_equal(&a->addr, &b->addr))
                conf_ctx_error(ctx, m, "listener %s listens on %s, which listener %s already uses",
                               QNAME(qb, b->name), b->listen, QNAME(qa, a->name));
            else
                conf_ctx_error(ctx, m,
                               "listener %s listens on %s, which overlaps listener %s on %s",
                               QNAME(qb, b->name), b->listen, QNAME(qa, a->name), a->listen);
            break;
        }
        if (!c->admin_listen || !addr_overlap(&c->admin_addr, &b->addr))
            continue;
        if (admin_written)
            conf_ctx_error(ctx, admin_m, "admin.listen %s overlaps listener %s on %s",
                           c->admin_listen, QNAME(qb, b->name), b->listen);
        else
            conf_ctx_error(ctx, m,
                           "listener %s listens on %s, which overlaps the default "
                           "admin.listen %s; set admin.listen to another address or off",
                           QNAME(qb, b->name), b->listen, c->admin_listen);
    }
}

/* Reports the cycle of backups through pool j once, at the backup key of
 * its first pool in the file, listing it from there. */
static void backup_cycle(conf_ctx_t *ctx, size_t j)
{
    const conf_t *c = ctx->conf;
    char list[1024], q[CONF_QUOTE_MAX];
    size_t first = j, n = 0, o = 0;

    for (size_t i = c->pools[j].backup; i != j; i = c->pools[i].backup)
        first = i < first ? i : first;
    list[0] = 0;
    size_t i = first;
    do {
        conf_quote(q, sizeof(q), c->pools[i].name, strlen(c->pools[i].name));
        q[strlen(q) - 1] = 0; /* unquoted, as in the file */
        if (n++ < LIST_NAMES_MAX && o < sizeof(list))
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s -> ", q + 1);
        else if (n == LIST_NAMES_MAX + 1 && o < sizeof(list))
            o += (size_t)snprintf(list + o, sizeof(list) - o, "... -> ");
        i = c->pools[i].backup;
    } while (i != first);
    conf_quote(q, sizeof(q), c->pools[first].name, strlen(c->pools[first].name));
    q[strlen(q) - 1] = 0;
    if (o < sizeof(list))
        snprintf(list + o, sizeof(list) - o, "%s", q + 1);
    conf_ctx_error(ctx, mark_or(ctx, &c->pools[first].backup, (conf_mark_t){1, 1}),
                   "backup pools form a cycle: %s", list);
}

/* A backup pool is where a pool fails over to; it may have its own
 * backup (a chain), but a chain must end: a pool that is its own backup,
 * or a loop, would fail over forever. Each pool has at most one backup,
 * so following them from every pool finds each loop in O(pools). */
static void check_backups(conf_ctx_t *ctx)
{
    const conf_t *c = ctx->conf;
    char q[CONF_QUOTE_MAX];
    unsigned char *state = calloc(c->npools ? c->npools : 1, 1); /* 0 new, 1 on path, 2 done */

    if (!state) {
        conf_ctx_nomem(ctx);
        return;
    }
    for (size_t s = 0; s < c->npools; s++) {
        if (c->pools[s].backup == s)
            conf_ctx_error(ctx, mark_or(ctx, &c->pools[s].backup, (conf_mark_t){1, 1}),
                           "pool %s names itself as its backup", QNAME(q, c->pools[s].name));
    }
    for (size_t s = 0; s < c->npools; s++) {
        size_t i = s;
        while (i < c->npools && state[i] == 0 && c->pools[i].backup != i) {
            state[i] = 1;
            i = c->pools[i].backup;
        }
        if (i < c->npools && state[i] == 1)
            backup_cycle(ctx, i);
        for (i = s; i < c->npools && state[i] == 1; i = c->pools[i].backup)
            state[i] = 2;
    }
    free(state);
}

void conf_check_all(conf_ctx_t *ctx)
{
    check_refs(ctx);
    conf_check_objectives(ctx);
    check_backups(ctx);
    check_addresses(ctx);
}
