/* Runtime state of every pool and server, shared by the workers (passive
 * outlier detection, balancing) and the control thread (active health
 * checks, failover decisions, the admin API).
 *
 * The state lives as long as the gateway and is keyed by stable names (pool
 * name + server address), so that a reload can carry it over for servers
 * that stay. Every field that more than one thread touches is accessed with
 * __atomic builtins; each field says who writes it. Time is loop_now()
 * milliseconds (CLOCK_MONOTONIC), the same clock on every thread. */
#ifndef SURETY_GATEWAY_STATE_H
#define SURETY_GATEWAY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

enum { SRV_UP = 0, SRV_DOWN = 1 };                                  /* health */
enum { SRV_ENABLED = 0, SRV_DRAINING = 1, SRV_DISABLED = 2 };      /* admin */

typedef struct {
    /* identity */
    char pool[65];
    char address[SOCK_ADDR_TEXT_MAX];
    unsigned weight;

    /* control thread (health checks) writes; everyone reads */
    uint8_t health;          /* SRV_UP until a check says otherwise */
    uint64_t health_since;   /* when health last changed; 0 at start */
    /* control thread only */
    unsigned streak_ok, streak_fail;
    uint64_t last_check;     /* when the last check finished */
    int last_status;         /* HTTP status of the last check, 0 for none/TCP */
    char last_error[96];     /* why the last failed check failed, "" */
    uint64_t ejection_seen;  /* the ejected_until the checks last saw */
    unsigned streak_ejected; /* successful checks since that ejection began */

    /* admin API (control thread) writes; workers read */
    uint8_t admin;

    /* workers write (atomic read-modify-write); everyone reads */
    uint32_t consecutive_errors;
    uint64_t ejected_until;  /* 0: not ejected */
    uint32_t ejections;      /* times ejected, for the growing ejection time */
    uint64_t back_since;     /* when it last became usable (slow start) */
    uint64_t ewma_us;        /* p2c-ewma: the latest latency estimate any worker made,
                              * so that a reload's new workers start from it; 0 none */
    /* max_inflight: requests at the server now, over all workers of this
     * generation (kept only for a server with a limit), and the highest
     * count since the control thread last took it (state_inflight_peak_take) */
    uint32_t inflight, inflight_peak;
} server_state_t;

typedef struct {
    char name[65];
    size_t nservers;
    server_state_t *servers;
    /* control thread writes: the pool that serves this one's traffic now
     * (itself, or a backup down the chain); workers read */
    size_t serving;
    uint64_t primary_ok_since; /* control thread: primaries usable enough since (0: not) */
    uint64_t failovers;        /* control thread: failovers and failbacks, counted */
} pool_state_t;

typedef struct {
    size_t npools;
    pool_state_t *pools; /* same order as conf->pools */
} state_t;

/* Shaped like conf; every server up and enabled. NULL on ENOMEM. Freed by
 * state_free() once no thread uses it. */
state_t *state_new(const conf_t *conf);
void state_free(state_t *s);

/* Copies the runtime state of every server and pool of old that is also in
 * s (same pool name and address): health, checks, admin state, ejection,
 * slow start clock, failover. For a reload; before s is shared. */
void state_carry(state_t *s, const conf_t *conf, const state_t *old);

/* Can a new request go to this server now? */
bool state_server_usable(const server_state_t *s, uint64_t now);
/* Number of usable servers of a pool. */
size_t state_pool_usable(const pool_state_t *p, uint64_t now);

/* Workers: a request to s succeeded / failed (connect error, reset, 5xx,
 * timeout). A failure past outlier.consecutive_errors ejects the server for
 * ejection x times-ejected (capped), unless max_ejected of the pool is out
 * already. Returns true when this call ejected it (the caller logs). */
void state_report_success(server_state_t *s);
bool state_report_failure(pool_state_t *p, server_state_t *s, const conf_outlier_t *o,
                          uint64_t now);

/* Workers: takes one of the server's max slots (max 0: no limit, always
 * true); false when it is full. state_server_release() gives it back. */
bool state_server_reserve(server_state_t *s, unsigned max);
/* Whether a slot is free now (a hint for the pick: reserving is the truth). */
bool state_server_has_room(const server_state_t *s, unsigned max);
void state_server_release(server_state_t *s, unsigned max);
/* Control thread: the most requests the server had at once since the last
 * call, and starts the next period from the count now. */
uint32_t state_inflight_peak_take(server_state_t *s);

/* Control thread: the result of one active check. Returns +1 when the
 * server went up, -1 when it went down, STATE_UNEJECTED when rise successful
 * checks in a row since a passive ejection began ended it early (active
 * checks bring ejected servers back), 0 otherwise. */
#define STATE_UNEJECTED 2
int state_check_result(server_state_t *s, bool ok, unsigned rise, unsigned fall, uint64_t now);

/* Control thread: re-evaluates which pool serves each pool's traffic
 * (failover to the backup chain when fewer than min_healthy primaries are
 * usable; failback once they have been for failback_after). Calls cb for
 * each change. */
typedef void (*state_failover_cb)(const conf_t *conf, size_t pool, size_t from, size_t to,
                                  void *ud);
void state_failover_eval(state_t *s, const conf_t *conf, uint64_t now, state_failover_cb cb,
                         void *ud);

/* Workers: the pool that serves traffic routed to pool p. */
static inline size_t state_serving(const state_t *s, size_t p)
{
    return __atomic_load_n(&s->pools[p].serving, __ATOMIC_RELAXED);
}

#endif
