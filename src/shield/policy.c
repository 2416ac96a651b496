/* Shield policies at run time (see policy.h). */
#include "shield/policy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"

static const struct {
    const char *name;
    secev_layer_t layer;
    bool strike;
} reasons[SHIELD_REASON_COUNT] = {[SHIELD_OK] = {"ok", SECEV_CONNECTION, false},
#define SHIELD_ROW_(id, n, l, s) [SHIELD_##id] = {n, l, s},
                                  SHIELD_REASONS(SHIELD_ROW_)
#undef SHIELD_ROW_
};

const char *shield_reason_name(shield_reason_t r)
{
    return r < SHIELD_REASON_COUNT ? reasons[r].name : "?";
}

/* What outlives a configuration, per policy name. A policy whose table
 * sizes change gets a new runtime: a table cannot be resized in place
 * while workers use it. */
struct shield_rt {
    shield_rt_t *next;
    char *name;
    size_t conn_cap, rate_cap;
    limit_table_t *conns;                 /* NULL: the policy limits no connections */
    limit_table_t *rate;                  /* NULL: no rate limit */
    unsigned refs;                        /* generations linking it; main thread */
    uint64_t open;                        /* connections counted for connections.max (atomic) */
    uint64_t events[SHIELD_REASON_COUNT]; /* atomic */
    uint64_t waf_verdicts[3];             /* atomic: by WAF_PASS, WAF_MATCH, WAF_ERROR */
    uint64_t waf_us;                      /* atomic: time spent inspecting */
    uint64_t table_key_seed;
};

struct shield {
    sec_t *sec;
    waf_pool_t *waf_pool;
    unsigned waf_threads, waf_queue;
    shield_rt_t *rts; /* main thread */
};

typedef struct {
    char *path;
    struct stat st;
} watched_t;

struct shield_gen {
    shield_t *s;
    size_t n;
    shield_policy_t *policies;
    watched_t *files;
    size_t nfiles;
    waf_t **wafs; /* loaded rule sets, one per distinct WAF setting */
    size_t nwafs;
};

/* ---- the process-wide part ----------------------------------------------- */

shield_t *shield_new(const conf_t *conf, FILE *errs)
{
    shield_t *s = calloc(1, sizeof(*s));
    char bans[4096], err[512] = "";
    if (!s)
        return NULL;
    bool nft = false;
    for (size_t i = 0; i < conf->nshields; i++)
        nft |= conf->shields[i].ban.enabled && conf->shields[i].ban.nftables;
    snprintf(bans, sizeof(bans), "%s/bans", conf->data_dir);
    sec_conf_t sc = {
        .log_path = conf->security_log,
        .ring = conf->events_kept,
        .queue = 8192,
        .bans_path = bans,
        .nftables = nft,
        .nft_table = conf->nft_table,
    };
    s->sec = sec_new(&sc, err, sizeof(err));
    if (!s->sec) {
        fprintf(errs, "security: %s\n", err);
        free(s);
        return NULL;
    }
    s->waf_threads = conf->waf_threads;
    s->waf_queue = conf->waf_queue;
    return s;
}

void shield_free(shield_t *s)
{
    if (!s)
        return;
    if (s->waf_pool)
        waf_pool_free(s->waf_pool);
    sec_free(s->sec);
    while (s->rts) {
        shield_rt_t *rt = s->rts;
        s->rts = rt->next;
        limit_table_free(rt->conns);
        limit_table_free(rt->rate);
        free(rt->name);
        free(rt);
    }
    free(s);
}

sec_t *shield_sec(shield_t *s)
{
    return s->sec;
}

waf_pool_t *shield_waf_pool(shield_t *s)
{
    return s->waf_pool;
}

static bool limits_conns(const conf_shield_t *c)
{
    return c->conn.per_ip || c->conn.rate.count;
}

/* The runtime of policy c: the running one of the same name and table
 * sizes, or a new one. */
static shield_rt_t *rt_get(shield_t *s, const conf_shield_t *c)
{
    size_t conn_cap = limits_conns(c) ? c->conn.table : 0;
    size_t rate_cap = c->rate.limit.count ? c->rate.table : 0;
    for (shield_rt_t *rt = s->rts; rt; rt = rt->next)
        if (!strcmp(rt->name, c->name) && rt->conn_cap == conn_cap && rt->rate_cap == rate_cap) {
            rt->refs++;
            return rt;
        }
    shield_rt_t *rt = calloc(1, sizeof(*rt));
    if (!rt || !(rt->name = strdup(c->name)))
        goto fail;
    rt->conn_cap = conn_cap;
    rt->rate_cap = rate_cap;
    if ((conn_cap && !(rt->conns = limit_table_new(conn_cap))) ||
        (rate_cap && !(rt->rate = limit_table_new(rate_cap))))
        goto fail;
    rt->refs = 1;
    rt->next = s->rts;
    s->rts = rt;
    return rt;
fail:
    if (rt) {
        limit_table_free(rt->conns);
        free(rt->name);
        free(rt);
    }
    return NULL;
}

static void rt_put(shield_t *s, shield_rt_t *rt)
{
    if (!rt || --rt->refs)
        return;
    for (shield_rt_t **pp = &s->rts; *pp; pp = &(*pp)->next)
        if (*pp == rt) {
            *pp = rt->next;
            break;
        }
    limit_table_free(rt->conns);
    limit_table_free(rt->rate);
    free(rt->name);
    free(rt);
}

/* ---- compiling a configuration ------------------------------------------ */

static int watch(shield_gen_t *g, const char *path)
{
    watched_t *f = realloc(g->files, (g->nfiles + 1) * sizeof(*f));
    if (!f)
        return -ENOMEM;
    g->files = f;
    f = &g->files[g->nfiles];
    memset(f, 0, sizeof(*f));
    if (!(f->path = strdup(path)))
        return -ENOMEM;
    if (stat(path, &f->st) < 0)
        memset(&f->st, 0, sizeof(f->st));
    g->nfiles++;
    return 0;
}

/* Adds the entries of one list (deny: 0, allow: 1) to acl. */
static int load_list(shield_gen_t *g, acl_t *acl, const conf_shield_t *c, const char *list,
                     const conf_cidr_t *v, size_t n, int value, FILE *errs)
{
    char err[1200];
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = v[i].entry;
        if (e[0] == '@') {
            if (watch(g, e + 1) < 0)
                return -ENOMEM;
            if (acl_load_file(acl, e + 1, value, err, sizeof(err)) < 0) {
                fprintf(errs, "shield '%s': %s: %s\n", c->name, list, err);
                bad = -EINVAL;
            }
        } else if (acl_add(acl, e, strlen(e), value) < 0) {
            /* validated by the configuration already: only ENOMEM/ENOSPC */
            fprintf(errs, "shield '%s': %s: cannot add %s\n", c->name, list, e);
            bad = -EINVAL;
        }
    }
    return bad;
}

static bool waf_same(const conf_shield_t *a, const conf_shield_t *b)
{
    return !strcmp(a->waf.rules, b->waf.rules) && a->waf.paranoia == b->waf.paranoia &&
           a->waf.mode == b->waf.mode && a->waf.threshold == b->waf.threshold &&
           a->waf.body == b->waf.body;
}

/* The rule set for c: shared with an earlier policy of the same settings
 * (loading the CRS takes a while and tens of megabytes). */
static waf_t *load_waf(shield_gen_t *g, const conf_t *conf, size_t i, FILE *errs)
{
    const conf_shield_t *c = &conf->shields[i];
    for (size_t k = 0; k < i; k++)
        if (g->policies[k].waf && waf_same(&conf->shields[k], c))
            return g->policies[k].waf;
    waf_conf_t wc = {
        .rules = c->waf.rules,
        .paranoia = c->waf.paranoia,
        .anomaly_threshold = c->waf.threshold,
        .mode = c->waf.mode == CONF_WAF_DETECT ? WAF_MODE_DETECT : WAF_MODE_BLOCK,
        .body_limit = c->waf.body,
    };
    char err[1024] = "";
    waf_t *w = waf_load(&wc, err, sizeof(err));
    if (!w) {
        fprintf(errs, "shield '%s': waf: %s\n", c->name, err);
        return NULL;
    }
    waf_t **v = realloc(g->wafs, (g->nwafs + 1) * sizeof(*v));
    if (!v) {
        waf_free(w);
        return NULL;
    }
    g->wafs = v;
    g->wafs[g->nwafs++] = w;
    return w;
}

static int compile(shield_gen_t *g, const conf_t *conf, size_t i, FILE *errs)
{
    const conf_shield_t *c = &conf->shields[i];
    shield_policy_t *p = &g->policies[i];
    int r = 0;
    p->conf = c;
    if (c->ndeny || c->nallow) {
        if (!(p->acl = acl_new()))
            return -ENOMEM;
        /* allow first: on a prefix in both lists, deny (added last) wins */
        r |= load_list(g, p->acl, c, "allow", c->allow, c->nallow, 1, errs);
        r |= load_list(g, p->acl, c, "deny", c->deny, c->ndeny, 0, errs);
        p->allow_only = c->nallow > 0;
    }
    if (c->waf.enabled && !(p->waf = load_waf(g, conf, i, errs)))
        r = -EINVAL;
    if (c->ban.enabled)
        p->ban = (secev_ban_rule_t){c->ban.after, c->ban.within_ms, c->ban.for_ms, c->ban.max_ms};
    if (g->s && !(p->rt = rt_get(g->s, c)))
        return -ENOMEM;
    return r ? -EINVAL : 0;
}

shield_gen_t *shield_gen_new(shield_t *s, const conf_t *conf, FILE *errs)
{
    shield_gen_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->s = s;
    g->n = conf->nshields;
    g->policies = calloc(g->n ? g->n : 1, sizeof(*g->policies));
    if (!g->policies)
        goto fail;
    bool bad = false, need_waf = false;
    for (size_t i = 0; i < g->n; i++) {
        int r = compile(g, conf, i, errs);
        if (r == -ENOMEM) {
            fprintf(errs, "shield '%s': out of memory\n", conf->shields[i].name);
            goto fail;
        }
        bad |= r < 0;
        need_waf |= conf->shields[i].waf.enabled;
    }
    if (bad)
        goto fail;
    if (s && need_waf && !s->waf_pool &&
        !(s->waf_pool = waf_pool_new(s->waf_threads, s->waf_queue))) {
        fprintf(errs, "security: cannot start the WAF threads\n");
        goto fail;
    }
    return g;
fail:
    shield_gen_free(g);
    return NULL;
}

void shield_gen_free(shield_gen_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->policies && i < g->n; i++) {
        acl_free(g->policies[i].acl);
        if (g->s)
            rt_put(g->s, g->policies[i].rt);
    }
    for (size_t i = 0; i < g->nwafs; i++)
        waf_free(g->wafs[i]);
    for (size_t i = 0; i < g->nfiles; i++)
        free(g->files[i].path);
    free(g->files);
    free(g->wafs);
    free(g->policies);
    free(g);
}

const shield_policy_t *shield_gen_policy(const shield_gen_t *g, size_t index)
{
    return g && index < g->n ? &g->policies[index] : NULL;
}

bool shield_gen_files_changed(shield_gen_t *g)
{
    bool changed = false;
    for (size_t i = 0; g && i < g->nfiles; i++) {
        struct stat st;
        struct stat *old = &g->files[i].st;
        if (stat(g->files[i].path, &st) < 0)
            memset(&st, 0, sizeof(st));
        if (st.st_ino != old->st_ino || st.st_size != old->st_size ||
            st.st_mtim.tv_sec != old->st_mtim.tv_sec ||
            st.st_mtim.tv_nsec != old->st_mtim.tv_nsec) {
            changed = true;
            *old = st;
        }
    }
    return changed;
}

/* ---- connection layer ------------------------------------------------------ */

shield_reason_t shield_accept(shield_t *s, const shield_policy_t *p, const struct sockaddr *peer,
                              uint64_t now_ms)
{
    const conf_shield_t *c = p->conf;
    if (sec_banned(s->sec, peer))
        return SHIELD_BANNED;
    if (p->acl) {
        int v = acl_lookup(p->acl, peer);
        if (v == 0)
            return SHIELD_DENY_LIST;
        if (v < 0 && p->allow_only)
            return SHIELD_NOT_ALLOWED;
    }
    if (c->conn.max) {
        uint64_t n = __atomic_add_fetch(&p->rt->open, 1, __ATOMIC_RELAXED);
        if (n > c->conn.max) {
            __atomic_sub_fetch(&p->rt->open, 1, __ATOMIC_RELAXED);
            return SHIELD_CONN_MAX;
        }
    }
    if (p->rt->conns) {
        limit_key_t k;
        limit_key_from_addr(&k, peer);
        int r = limit_conn_acquire(p->rt->conns, &k, c->conn.per_ip, c->conn.rate,
                                   c->conn.burst ? c->conn.burst : (unsigned)c->conn.rate.count,
                                   now_ms);
        if (r != LIMIT_OK) {
            if (c->conn.max)
                __atomic_sub_fetch(&p->rt->open, 1, __ATOMIC_RELAXED);
            return r == LIMIT_CONCURRENT ? SHIELD_CONN_PER_IP : SHIELD_CONN_RATE;
        }
    }
    return SHIELD_OK;
}

void shield_conn_closed(const shield_policy_t *p, const struct sockaddr *peer)
{
    if (p->conf->conn.max)
        __atomic_sub_fetch(&p->rt->open, 1, __ATOMIC_RELAXED);
    if (p->rt->conns) {
        limit_key_t k;
        limit_key_from_addr(&k, peer);
        limit_conn_release(p->rt->conns, &k);
    }
}

/* ---- request layer --------------------------------------------------------- */

bool shield_method_allowed(const shield_policy_t *p, str_t method)
{
    const conf_shield_t *c = p->conf;
    if (!c->nmethods)
        return true;
    for (size_t i = 0; i < c->nmethods; i++)
        if (str_eq(method, str_from(c->methods[i].word, strlen(c->methods[i].word))))
            return true;
    return false;
}

uint64_t shield_rate_take(const shield_policy_t *p, const struct sockaddr *peer, str_t key,
                          uint64_t now_ms)
{
    const conf_shield_t *c = p->conf;
    limit_key_t k;
    if (!p->rt->rate)
        return 0;
    if (c->rate.key == CONF_HASH_SOURCE)
        limit_key_from_addr(&k, peer);
    else
        limit_key_from_bytes(p->rt->rate, &k, key.p, key.len);
    return limit_take(p->rt->rate, &k, c->rate.limit,
                      c->rate.burst ? c->rate.burst : (unsigned)c->rate.limit.count, now_ms);
}

/* ---- events ---------------------------------------------------------------- */

void shield_event(shield_t *s, const shield_policy_t *p, shield_reason_t reason, secev_t *ev)
{
    if (reason <= SHIELD_OK || reason >= SHIELD_REASON_COUNT)
        return;
    if (p->rt)
        __atomic_add_fetch(&p->rt->events[reason], 1, __ATOMIC_RELAXED);
    snprintf(ev->policy, sizeof(ev->policy), "%s", p->conf->name);
    snprintf(ev->reason, sizeof(ev->reason), "%s", reasons[reason].name);
    ev->layer = (uint8_t)reasons[reason].layer;
    ev->action = reason == SHIELD_WAF_DETECT                 ? SECEV_DETECT
                 : reasons[reason].layer == SECEV_CONNECTION ? SECEV_REFUSE
                                                             : SECEV_BLOCK;
    bool strike = reasons[reason].strike && p->conf->ban.enabled;
    sec_post(s->sec, ev, strike ? &p->ban : NULL);
}

void shield_waf_observe(const shield_policy_t *p, int verdict, uint64_t elapsed_us)
{
    if (!p->rt || verdict < 0 || verdict > 2)
        return;
    __atomic_add_fetch(&p->rt->waf_verdicts[verdict], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->rt->waf_us, elapsed_us, __ATOMIC_RELAXED);
}

static void waf_metrics(prom_t *pr, const shield_gen_t *g)
{
    static const char *const verdicts[3] = {"pass", "match", "error"};
    prom_family(pr, "surety_shield_waf_inspections_total", PROM_COUNTER,
                "Requests the WAF inspected, by policy and verdict (match: the rules would "
                "block; error: not inspected).");
    for (size_t i = 0; i < g->n; i++)
        for (int v = 0; v < 3 && g->policies[i].waf; v++)
            prom_counter(
                pr, "surety_shield_waf_inspections_total",
                PROM_LABELS({"policy", g->policies[i].conf->name}, {"verdict", verdicts[v]}),
                __atomic_load_n(&g->policies[i].rt->waf_verdicts[v], __ATOMIC_RELAXED));
    prom_family(pr, "surety_shield_waf_inspection_seconds_total", PROM_COUNTER,
                "Time the WAF threads spent inspecting the policy's requests (divide by "
                "surety_shield_waf_inspections_total for the mean).");
    for (size_t i = 0; i < g->n; i++)
        if (g->policies[i].waf)
            prom_counter_double(
                pr, "surety_shield_waf_inspection_seconds_total",
                PROM_LABELS({"policy", g->policies[i].conf->name}),
                (double)__atomic_load_n(&g->policies[i].rt->waf_us, __ATOMIC_RELAXED) / 1e6);
}

static const char *const layer_names[] = {"connection", "request", "content", "ban"};

static void table_metrics(prom_t *pr, const shield_gen_t *g)
{
    static const char *const fams[][3] = {
        {"surety_shield_table_entries", "Keys held by a shield limit table.", "gauge"},
        {"surety_shield_table_capacity", "Keys a shield limit table can hold (fixed).", "gauge"},
        {"surety_shield_table_memory_bytes", "Memory of a shield limit table (fixed).", "gauge"},
        {"surety_shield_table_evictions_total",
         "Keys forgotten to make room in a full shield limit table.", "counter"},
    };
    for (size_t f = 0; f < 4; f++) {
        prom_family(pr, fams[f][0], f == 3 ? PROM_COUNTER : PROM_GAUGE, fams[f][1]);
        for (size_t i = 0; i < g->n; i++) {
            const shield_policy_t *p = &g->policies[i];
            limit_table_t *t[2] = {p->rt->conns, p->rt->rate};
            static const char *const tn[2] = {"connections", "rate"};
            for (int k = 0; k < 2; k++) {
                if (!t[k])
                    continue;
                uint64_t v = f == 0   ? limit_table_used(t[k])
                             : f == 1 ? limit_table_capacity(t[k])
                             : f == 2 ? limit_table_memory(t[k])
                                      : limit_table_evictions(t[k]);
                if (f == 3)
                    prom_counter(pr, fams[f][0],
                                 PROM_LABELS({"policy", p->conf->name}, {"table", tn[k]}), v);
                else
                    prom_gauge(pr, fams[f][0],
                               PROM_LABELS({"policy", p->conf->name}, {"table", tn[k]}), (double)v);
            }
        }
    }
}

void shield_metrics_write(shield_t *s, const shield_gen_t *g, prom_t *pr)
{
    prom_family(pr, "surety_shield_events_total", PROM_COUNTER,
                "Connections and requests the shield refused, blocked or flagged, by policy, "
                "layer and reason.");
    for (size_t i = 0; g && i < g->n; i++) {
        const shield_policy_t *p = &g->policies[i];
        for (int r = 1; r < SHIELD_REASON_COUNT; r++)
            prom_counter(pr, "surety_shield_events_total",
                         PROM_LABELS({"policy", p->conf->name},
                                     {"layer", layer_names[reasons[r].layer]},
                                     {"reason", reasons[r].name}),
                         __atomic_load_n(&p->rt->events[r], __ATOMIC_RELAXED));
    }
    if (g) {
        table_metrics(pr, g);
        waf_metrics(pr, g);
    }
    sec_counters_t sc;
    sec_counters(s->sec, &sc);
    prom_family(pr, "surety_security_events_total", PROM_COUNTER,
                "Security events posted to the security log and the event API.");
    prom_counter(pr, "surety_security_events_total", NULL, 0, sc.posted);
    prom_family(pr, "surety_security_events_dropped_total", PROM_COUNTER,
                "Security events dropped because the security thread fell behind (they are "
                "still counted in surety_shield_events_total).");
    prom_counter(pr, "surety_security_events_dropped_total", NULL, 0, sc.dropped);
    prom_family(pr, "surety_bans_active", PROM_GAUGE, "Addresses banned now.");
    prom_gauge(pr, "surety_bans_active", NULL, 0, (double)sc.bans_active);
    prom_family(pr, "surety_bans_total", PROM_COUNTER, "Bans put in place, automatic and manual.");
    prom_counter(pr, "surety_bans_total", NULL, 0, sc.bans_total);
    prom_family(pr, "surety_shield_waf_queue_depth", PROM_GAUGE,
                "Requests waiting for a WAF thread.");
    prom_gauge(pr, "surety_shield_waf_queue_depth", PROM_LABELS(),
               s->waf_pool ? (double)waf_pool_queued(s->waf_pool) : 0);
}

void shield_summary(shield_t *s, const shield_gen_t *g, FILE *out)
{
    for (size_t i = 0; g && i < g->n; i++) {
        const shield_policy_t *p = &g->policies[i];
        uint64_t total = 0;
        for (int r = 1; r < SHIELD_REASON_COUNT; r++)
            total += __atomic_load_n(&p->rt->events[r], __ATOMIC_RELAXED);
        fprintf(out, "shield %s: %llu events", p->conf->name, (unsigned long long)total);
        const char *sep = " (";
        for (int r = 1; r < SHIELD_REASON_COUNT; r++) {
            uint64_t n = __atomic_load_n(&p->rt->events[r], __ATOMIC_RELAXED);
            if (n) {
                fprintf(out, "%s%s %llu", sep, reasons[r].name, (unsigned long long)n);
                sep = ", ";
            }
        }
        fprintf(out, "%s\n", total ? ")" : "");
    }
    sec_counters_t sc;
    sec_counters(s->sec, &sc);
    fprintf(out, "bans: %llu active, %llu since start (GET /api/v1/bans)\n",
            (unsigned long long)sc.bans_active, (unsigned long long)sc.bans_total);
}
