/* Shield policies at run time: what the gateway asks at accept and for each
 * request, and the state that outlives a configuration.
 *
 * Two lifetimes meet here. A shield_t lives as long as the process: the
 * security center (events, bans: secev.h), the WAF threads (waf.h) and, per
 * policy name, the runtime that must survive a reload (limit tables with
 * their buckets and connection counts, the global connection count, event
 * counters). A shield_gen_t is one configuration's compiled policies: the
 * access lists (inline entries and @files), the loaded WAF rule sets, and a
 * link to each policy's runtime. A reload builds a new shield_gen_t beside
 * the running one; a policy that keeps its name and table sizes keeps its
 * runtime, so limits, counters and bans carry over (docs/architecture.md).
 *
 * Threads: shield_gen_new/free and shield_new/free run on the main thread;
 * everything a worker calls (accept, rate, events) is safe from any number
 * of threads and never blocks. */
#ifndef SURETY_SHIELD_POLICY_H
#define SURETY_SHIELD_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/conf.h"
#include "core/str.h"
#include "metrics/prom.h"
#include "shield/acl.h"
#include "shield/limit.h"
#include "shield/secev.h"
#include "shield/waf.h"

/* Why the shield stopped something: name (the event's reason and the
 * metric label), layer, and whether it is a strike toward a ban. Refusals
 * by the lists and of banned addresses are not strikes (they cost the
 * client nothing more to repeat); neither are what only Surety's load
 * causes (waf-overload) or what passed (waf-detect). */
#define SHIELD_REASONS(X)                                                                          \
    X(DENY_LIST, "deny-list", SECEV_CONNECTION, false)                                             \
    X(NOT_ALLOWED, "not-allowed", SECEV_CONNECTION, false)                                         \
    X(BANNED, "banned", SECEV_CONNECTION, false)                                                   \
    X(CONN_MAX, "conn-max", SECEV_CONNECTION, false)                                               \
    X(CONN_PER_IP, "conn-per-ip", SECEV_CONNECTION, true)                                          \
    X(CONN_RATE, "conn-rate", SECEV_CONNECTION, true)                                              \
    X(BAD_REQUEST, "bad-request", SECEV_REQUEST, true)                                             \
    X(SLOW_HEADER, "slow-header", SECEV_REQUEST, true)                                             \
    X(SLOW_BODY, "slow-body", SECEV_REQUEST, true)                                                 \
    X(RATE_LIMIT, "rate-limit", SECEV_REQUEST, true)                                               \
    X(METHOD, "method", SECEV_REQUEST, true)                                                       \
    X(BODY_TOO_LARGE, "body-too-large", SECEV_REQUEST, true)                                       \
    X(WAF, "waf", SECEV_CONTENT, true)                                                             \
    X(WAF_DETECT, "waf-detect", SECEV_CONTENT, false)                                              \
    X(WAF_OVERLOAD, "waf-overload", SECEV_CONTENT, false)

typedef enum {
    SHIELD_OK = 0,
#define SHIELD_ENUM_(id, name, layer, strike) SHIELD_##id,
    SHIELD_REASONS(SHIELD_ENUM_)
#undef SHIELD_ENUM_
        SHIELD_REASON_COUNT,
} shield_reason_t;

const char *shield_reason_name(shield_reason_t r);

typedef struct shield shield_t;
typedef struct shield_gen shield_gen_t;
typedef struct shield_rt shield_rt_t;

/* One compiled policy of one configuration. */
typedef struct {
    const conf_shield_t *conf;
    acl_t *acl;      /* deny entries 0, allow entries 1; NULL: no lists */
    bool allow_only; /* an allow list exists: unlisted addresses are refused */
    waf_t *waf;      /* NULL: no inspection */
    shield_rt_t *rt; /* survives reloads */
    secev_ban_rule_t ban;
} shield_policy_t;

/* The process-wide part, from the first configuration: security log,
 * bans file under data_dir, nftables. NULL with the reason on errs. */
shield_t *shield_new(const conf_t *conf, FILE *errs);
/* After every generation is freed. */
void shield_free(shield_t *s);
sec_t *shield_sec(shield_t *s);
/* The WAF threads; NULL until a policy with `waf` is loaded. */
waf_pool_t *shield_waf_pool(shield_t *s);

/* Compiles conf's policies: reads @files, loads WAF rules, links (or
 * creates) each policy's runtime. s NULL: only check (surety check), no
 * runtime. NULL with every problem on errs ("shield 'x': deny: PATH:LINE:
 * reason", "shield 'x': waf: ..."). */
shield_gen_t *shield_gen_new(shield_t *s, const conf_t *conf, FILE *errs);
void shield_gen_free(shield_gen_t *g);
/* Policy index (conf->shields) -> compiled policy; NULL for SIZE_MAX. */
const shield_policy_t *shield_gen_policy(const shield_gen_t *g, size_t index);
/* True when an @file list read by this generation has changed on disk
 * (mtime, size or inode) or gone since it was read or last reported: time
 * to reload. The new state is remembered, so a change is reported once.
 * Main thread. */
bool shield_gen_files_changed(shield_gen_t *g);

/* ---- connection layer (workers) */

/* Checks a new connection to a listener with policy p: bans, lists, the
 * global cap, per-address concurrency and rate. SHIELD_OK counts the
 * connection: call shield_conn_closed() exactly once when it closes. */
shield_reason_t shield_accept(shield_t *s, const shield_policy_t *p, const struct sockaddr *peer,
                              uint64_t now_ms);
void shield_conn_closed(const shield_policy_t *p, const struct sockaddr *peer);

/* ---- request layer (workers) */

bool shield_method_allowed(const shield_policy_t *p, str_t method);
/* Takes a token from the bucket of key (the bytes that identify the client
 * or route, as rate.key says; for `source`, the address). 0 when allowed,
 * else the ms until a token. */
uint64_t shield_rate_take(const shield_policy_t *p, const struct sockaddr *peer, str_t key,
                          uint64_t now_ms);

/* ---- events */

/* Counts reason for p and posts the event (policy, layer, action and reason
 * filled in here; ev holds the client and what is known of the request);
 * a strike when p has `ban`. Any thread; never blocks. */
void shield_event(shield_t *s, const shield_policy_t *p, shield_reason_t reason, secev_t *ev);

/* Counts one WAF verdict (WAF_PASS/MATCH/ERROR) and its inspection time. */
void shield_waf_observe(const shield_policy_t *p, int verdict, uint64_t elapsed_us);

/* A few lines for `surety status`: events per policy by reason, bans. */
void shield_summary(shield_t *s, const shield_gen_t *g, FILE *out);

/* Metric families of the shield: events by policy, layer and reason; limit
 * tables; WAF queue; bans. */
void shield_metrics_write(shield_t *s, const shield_gen_t *g, prom_t *p);

#endif
