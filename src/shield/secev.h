/* Security events and the security center (issue 4).
 *
 * The shield decides on worker threads, whose event loops must never
 * block, that a connection is refused, a request blocked or a WAF rule
 * matched. Each decision becomes a secev_t that the worker hands to the
 * security center, sec_t, through a bounded lock-free queue (full: the
 * event is dropped and counted, the worker never waits). On its own thread
 * the center then:
 *   - writes the event as one JSON line to the security log, with the full
 *     client address: it is a security record, and fail2ban-like tools
 *     need the address;
 *   - keeps the last N events in memory for the admin API;
 *   - when the event came with a ban rule, counts it as a strike of the
 *     client address (ban.h: a sliding window, "ban after 5 strikes within
 *     10 minutes"), and bans the address when it reaches the count: for
 *     for_ms, doubled for each earlier ban of the address remembered (a
 *     day after it ended), at most max_ms;
 *   - lifts bans when they expire, saves the bans to a file a few times a
 *     second at most when they changed, and optionally mirrors them into an
 *     nftables set (nft.h) so that the kernel drops a banned client's
 *     packets before the gateway sees them.
 * Bans and lifts are events too (layer "ban"), logged and kept like the
 * others. Workers ask sec_banned() on every accepted connection: one
 * relaxed atomic load while nobody is banned, a read lock and a hash
 * lookup otherwise, never a syscall.
 *
 * Everything is bounded: the queue and the ring (sec_conf_t), the strike
 * table and offence memory (BAN_STRIKERS_MAX, BAN_OFFENDERS_MAX) and the
 * bans (BAN_MAX; past it a new ban replaces the one closest to expiry,
 * counted in bans_replaced). */
#ifndef SURETY_SHIELD_SECEV_H
#define SURETY_SHIELD_SECEV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sock.h"

/* Where the decision was taken. Names: "connection", "request", "content",
 * "ban". */
typedef enum { SECEV_CONNECTION, SECEV_REQUEST, SECEV_CONTENT, SECEV_BAN } secev_layer_t;
/* What was done. Names: "refuse" (closed at accept), "block" (answered with
 * an error status), "detect" (let through, recorded), "ban", "lift". */
typedef enum { SECEV_REFUSE, SECEV_BLOCK, SECEV_DETECT, SECEV_BANNED, SECEV_LIFTED } secev_action_t;

/* The name of a layer or action, "?" when out of range. */
const char *secev_layer_name(unsigned layer);
const char *secev_action_name(unsigned action);

#define SECEV_MAX_RULES 8

/* One event. Strings are NUL-terminated when shorter than their array and
 * may fill it (the center cuts them); empty ones are left out of the JSON.
 * About 620 bytes: the queue and the ring hold events by value. */
typedef struct {
    uint64_t wall_ms;   /* ms since the epoch; sec_post sets it when 0 */
    sock_addr_t client; /* the port is not recorded */
    char policy[65];    /* shield policy name */
    uint8_t layer;      /* secev_layer_t */
    uint8_t action;     /* secev_action_t */
    char reason[32];    /* a short token: "deny-list", "conn-rate", "rate-limit", "waf",
                           "body-too-large", ... (the gateway decides) */
    uint16_t status;    /* HTTP status answered, 0 for the connection layer */
    uint32_t rules[SECEV_MAX_RULES]; /* WAF rule IDs */
    uint8_t nrules;
    char request_id[33], method[16], path[128], detail[160];
} secev_t;

/* Ban a client after `after` strikes (at most BAN_STRIKES_MAX, 32) less
 * than within_ms old, for for_ms doubled for each earlier ban remembered,
 * at most max_ms (0: at most BAN_FOR_MAX_MS, a year). after 0, within_ms 0
 * or for_ms 0: the event does not count. */
typedef struct {
    unsigned after;
    uint64_t within_ms, for_ms, max_ms;
} secev_ban_rule_t;

/* The event as a JSON object, keys in this order and empty ones left out:
 * {"time":"2026-11-29T14:05:19.123Z","client":"127.0.0.5","policy":"default",
 *  "layer":"content","action":"block","reason":"waf","status":403,
 *  "rules":[942100,949110],"request_id":"...","method":"GET","path":"/?id=...",
 *  "detail":"SQL Injection..."}
 * An IPv4-mapped client is written as the IPv4 address. Bytes that are not
 * UTF-8 are written as the text \xNN (request paths come from clients).
 * NULL when out of memory; the caller json_decref()s. */
json_t *secev_json(const secev_t *ev);

typedef struct {
    const char *log_path;       /* JSON lines, appended; "-": stdout; NULL: no log */
    size_t ring;                /* events kept for the API; 0: 1000; at most SEC_RING_MAX */
    size_t queue;               /* the queue from posting threads, rounded up to a power of two;
                                   0: 8192; at most SEC_QUEUE_MAX */
    const char *bans_path;      /* the ban file (e.g. var/bans); NULL: bans not persisted */
    bool nftables;              /* mirror bans into nftables (needs CAP_NET_ADMIN) */
    const char *nft_table;      /* table inet NAME; NULL: "surety" */
    uint64_t (*clock_ms)(void); /* wall clock, ms since the epoch; NULL: CLOCK_REALTIME.
                                   Tests inject theirs. */
} sec_conf_t;

/* Memory: a ring slot is an event (624 bytes), a queue slot an event and a
 * rule (about 680 bytes); the defaults take 0.6 MB and 5.6 MB, the maxima
 * 62 MB and 45 MB. */
#define SEC_RING_MAX 100000
#define SEC_QUEUE_MAX (1u << 16)
/* Bans are saved at most this often (and at sec_free). */
#define SEC_SAVE_INTERVAL_MS 250

typedef struct sec sec_t;

/* Opens the log, loads the ban file (dropping expired bans, skipping
 * corrupt lines with a warning) and saves it back at once, which creates
 * its directory and proves it writable; sets up nftables when asked and
 * adds the loaded bans to it; starts the thread. NULL on failure with the
 * reason in err ("bans var/bans: cannot write: Permission denied",
 * "nftables: cache initialization failed: Operation not permitted
 * (managing nftables needs CAP_NET_ADMIN)"). Strings in c are copied.
 * The caller frees it with sec_free() after every thread that posts or
 * asks has stopped. */
sec_t *sec_new(const sec_conf_t *c, char *err, size_t errlen);
/* Processes what is queued, writes the log, saves the bans, stops the
 * thread and frees. nftables keeps its elements, which expire by
 * themselves. NULL is fine. */
void sec_free(sec_t *s);

/* Any thread, never blocks: copies ev (and rule, when not NULL) into the
 * queue, lock-free; a full queue drops the event and counts it. The only
 * syscall is a write(2) to an eventfd, and only when the center's thread
 * is asleep. rule NULL: the event does not count toward a ban. Events with
 * layer SECEV_BAN are recorded like any other; they do not ban anybody. */
void sec_post(sec_t *s, const secev_t *ev, const secev_ban_rule_t *rule);

/* Any thread, fast (see above): true when sa's address is banned now. An
 * IPv4-mapped IPv6 address is the IPv4 address. s NULL: false. */
bool sec_banned(sec_t *s, const struct sockaddr *sa);

/* Admin (control thread; blocks on nftables for a few ms). Bans address
 * for for_ms (at most a year) with reason (NULL or empty: "manual"; bytes
 * other than printable ASCII become '?'). A manual ban counts as an
 * offence of the address, so a later automatic ban is longer, but its own
 * length is for_ms exactly. An address already banned gets the new ban.
 * Records a ban event (queued like a worker's: a full queue drops it, not
 * the ban). 0, -EINVAL (not an address, or for_ms 0) or -ENOMEM. A failure
 * to update nftables is logged and counted, not returned: the gateway
 * refuses the address at accept anyway. */
int sec_ban_add(sec_t *s, const char *address, uint64_t for_ms, const char *reason);
/* Lifts address's ban and records a lift event (reason "manual"). 0,
 * -EINVAL (not an address) or -ENOENT (not banned). */
int sec_ban_lift(sec_t *s, const char *address);

/* For the admin API, any thread; the caller json_decref()s; NULL when out
 * of memory. The bans, most recent first: [{"address":"192.0.2.1",
 * "since":"2026-...Z","until":"2026-...Z","offences":2,"reason":"strikes",
 * "policy":"default"}] (policy left out when empty). */
json_t *sec_bans_json(sec_t *s);
/* The last events, newest first: at most limit (0: all kept), only those
 * of client when not NULL (an address as text, either form of an IPv4
 * address; text that is no address matches nothing). */
json_t *sec_events_json(sec_t *s, size_t limit, const char *client);

/* Counters for metrics (relaxed atomics). posted: events queued; dropped:
 * events refused by a full queue; bans_active: bans now; bans_total: bans
 * made since start (automatic and manual); bans_replaced: bans dropped to
 * make room at BAN_MAX; log_errors: failed log writes; nft_errors: failed
 * nftables updates. */
typedef struct {
    uint64_t posted, dropped, bans_active, bans_total, bans_replaced, log_errors, nft_errors;
} sec_counters_t;
void sec_counters(sec_t *s, sec_counters_t *out);

/* logrotate: any thread. Wakes the center's thread, which reopens the log
 * (same path) before it writes another line. */
void sec_reopen_log(sec_t *s);

/* Waits until every event posted before the call has been processed, bans
 * that expired by the clock have been lifted and their events written to
 * the log (tests, shutdown). False when timeout_ms passed first. */
bool sec_sync(sec_t *s, uint64_t timeout_ms);

#endif
