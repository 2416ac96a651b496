/* The configuration: one immutable generation of everything the YAML file
 * says, validated whole before anything uses it.
 *
 * conf_load() reads the file with libfyaml, walks it against the key table
 * (schema.c: name, type, default, limits, help for every key; the same
 * table generates docs/configuration.md), resolves names (a route's pool),
 * and either returns a complete conf_t or reports every error it found as
 * FILE:LINE:COL: message and returns NULL. A conf_t is never half-built.
 *
 * Diagnostics: one line per error, "FILE:LINE:COL: message\n", LINE and COL
 * 1-based and pointing at the offending key or value (a missing key: at the
 * key of the map that lacks it), sorted in document order. An error about
 * the file as a whole, which has no position, is "FILE: message\n": the
 * file cannot be read ("FILE: cannot read: No such file or directory") or
 * is larger than 16 MiB. After 1000 errors the rest are counted in one
 * last "FILE: N more errors not shown" line.
 *
 * Ownership: a conf_t and everything it points to is one allocation family
 * freed by conf_unref() when the last reference goes (workers hold one each
 * while they use the generation; hot reload swaps generations). After
 * conf_load() returns, a conf_t is read-only and may be shared by threads. */
#ifndef SURETY_CONF_CONF_H
#define SURETY_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/sock.h"

/* A rate: count events per per_ms milliseconds. */
typedef struct {
    uint64_t count;
    uint64_t per_ms;
} conf_rate_t;

typedef enum {
    CONF_BALANCE_ROUND_ROBIN, /* smooth weighted round-robin */
    CONF_BALANCE_LEAST_CONN,  /* weighted least in-flight requests */
    CONF_BALANCE_P2C_EWMA,    /* power of two choices over peak-EWMA latency x in-flight */
    CONF_BALANCE_HASH,        /* consistent hashing with bounded load */
} conf_balance_t;

typedef enum {
    CONF_HASH_SOURCE, /* the client's address */
    CONF_HASH_HEADER, /* a request header's value (hash: header:NAME) */
    CONF_HASH_COOKIE, /* a cookie's value (hash: cookie:NAME) */
    CONF_HASH_ROUTE,  /* the route (shield rate.key only: one bucket per route) */
} conf_hash_kind_t;

typedef enum {
    CONF_HEALTH_NONE, /* no active checks: servers are up unless ejected */
    CONF_HEALTH_HTTP,
    CONF_HEALTH_TCP,
} conf_health_type_t;

/* pools.<name>.health: active checks, run by the control thread. */
typedef struct {
    conf_health_type_t type; /* health.type: http | tcp; the key absent: NONE */
    char *method;            /* health.method, default "GET" */
    char *path;              /* health.path, default "/" */
    char *host;              /* health.host: Host header; NULL: the server's address */
    unsigned expect_min;     /* health.expect: 200 or a range "200-399"; default 200-399 */
    unsigned expect_max;
    char *body;              /* health.body: substring the response body must hold; NULL */
    uint64_t interval_ms;    /* health.interval, default 2s */
    uint64_t timeout_ms;     /* health.timeout, default 1s */
    unsigned rise;           /* health.rise, default 2 */
    unsigned fall;           /* health.fall, default 3 */
} conf_health_t;

/* pools.<name>.outlier: passive ejection by the workers. */
typedef struct {
    unsigned consecutive_errors; /* default 5; 0 disables */
    uint64_t ejection_ms;        /* base ejection time, default 30s (x times ejected) */
    uint64_t max_ejection_ms;    /* cap on ejection_ms x n, default 5m */
    uint32_t max_ejected_ppm;    /* max_ejected: share of the pool, default 50% (500000) */
} conf_outlier_t;

/* pools.<name>.retry */
enum {
    CONF_RETRY_CONNECT = 1u << 0, /* connect refused or timed out */
    CONF_RETRY_RESET = 1u << 1,   /* connection reset/closed before any response byte */
    CONF_RETRY_TIMEOUT = 1u << 2, /* response timeout before any response byte */
    CONF_RETRY_500 = 1u << 3,
    CONF_RETRY_502 = 1u << 4,
    CONF_RETRY_503 = 1u << 5,
    CONF_RETRY_504 = 1u << 6,
};
typedef struct {
    unsigned attempts;    /* retry.attempts: retries after the first try, default 2; 0 off */
    uint32_t budget_ppm;  /* retry.budget: retries in flight vs active requests, 20% */
    unsigned budget_min;  /* retry.budget_min: retries always allowed in flight, 3 */
    unsigned on;          /* retry.on: CONF_RETRY_* bits, default connect|reset|502|503|504 */
    bool non_idempotent;  /* retry.non_idempotent: also POST/PATCH..., default false */
    size_t body;          /* retry.body: largest request body kept for replay, 64k */
} conf_retry_t;

typedef enum {
    CONF_CLIENT_IP_TRUNCATE, /* /24 for IPv4, /48 for IPv6 (default) */
    CONF_CLIENT_IP_HASH,     /* keyed hash: stable per address, not reversible */
    CONF_CLIENT_IP_FULL,
} conf_client_ip_t;

typedef struct {
    char *address; /* as written: "127.0.0.1:9001" */
    sock_addr_t addr;
    unsigned weight; /* 1..1000, default 1 */
    unsigned max_inflight; /* requests at the server at once, all workers; 0: no limit */
} conf_server_t;

/* pools.<name>.tls: TLS to the pool's servers (requests and health checks). */
typedef struct {
    bool enabled;     /* tls: written */
    bool verify;      /* tls.verify: check the servers' chain and name, default true */
    char *ca;         /* tls.ca: PEM file of trusted roots; NULL: the system's */
    char *sni;        /* tls.sni: the name sent and checked; NULL: none */
    char *cert, *key; /* tls.cert / tls.key: client certificate (mutual TLS); NULL: none */
} conf_pool_tls_t;

typedef struct {
    char *name;
    conf_server_t *servers;
    size_t nservers; /* >= 1 */
    conf_balance_t balance;
    uint64_t connect_timeout_ms;   /* timeouts.connect, default 3s */
    uint64_t response_timeout_ms;  /* timeouts.response: request sent -> response head, 30s */
    uint64_t keepalive_timeout_ms; /* timeouts.keepalive: idle upstream connection, 60s */
    unsigned keepalive_max;        /* keepalive: idle connections kept per server per worker, 256 */
    conf_hash_kind_t hash;         /* hash: source | header:NAME | cookie:NAME (balance: hash) */
    char *hash_name;               /* NAME of header:/cookie:; NULL for source */
    uint64_t slow_start_ms;        /* slow_start: weight ramp after a server comes back, 0 off */
    uint64_t queue_timeout_ms;     /* queue_timeout: wait for a max_inflight slot, 0: none */
    size_t backup;                 /* backup: index of the DR pool; SIZE_MAX when none */
    unsigned failover_min_healthy; /* failover.min_healthy, default 1 */
    uint64_t failback_after_ms;    /* failover.failback_after, default 30s */
    conf_health_t health;
    conf_outlier_t outlier;
    conf_retry_t retry;
    conf_pool_tls_t tls;
} conf_pool_t;

typedef struct {
    char *name;         /* name: ..., default "<index>" within its listener */
    char *host;         /* NULL: any host; "*.example.com": suffix; else exact; lower case */
    char *path;         /* path prefix; NULL: any */
    size_t pool;        /* index into conf_t.pools */
    size_t shield;      /* shield: index into conf_t.shields; SIZE_MAX: the listener's */
} conf_route_t;

/* One entry of a shield's deny or allow list: a CIDR prefix, or "@PATH" of
 * a file with one prefix per line. */
typedef struct {
    char *entry;
} conf_cidr_t;

/* One word of a list of words (shield methods). */
typedef struct {
    char *word;
} conf_word_t;

typedef enum {
    CONF_WAF_BLOCK,  /* a request over the anomaly threshold gets 403 */
    CONF_WAF_DETECT, /* it passes; the event is still recorded */
} conf_waf_mode_t;

/* shield.<name>: one security policy (docs/security.md). */
typedef struct {
    char *name;
    conf_cidr_t *deny;    /* deny: refused at accept */
    size_t ndeny;
    conf_cidr_t *allow;   /* allow: when present, only these (and not denied) */
    size_t nallow;
    conf_word_t *methods; /* methods: allowed request methods; none: any */
    size_t nmethods;
    struct {
        unsigned per_ip;   /* connections.per_ip: open at once per address, 0 none */
        conf_rate_t rate;  /* connections.rate: new per address; count 0 none */
        unsigned burst;    /* connections.burst: 0: the rate's count */
        unsigned max;      /* connections.max: open at once, all addresses, 0 none */
        size_t table;      /* connections.table: addresses tracked */
    } conn;
    struct {
        conf_rate_t limit;          /* rate.limit; count 0: no rate limit */
        unsigned burst;             /* rate.burst: 0: the limit's count */
        conf_hash_kind_t key;       /* rate.key: source | header:NAME | cookie:NAME | route */
        char *key_name;
        size_t table;               /* rate.table: buckets kept */
    } rate;
    struct {
        uint64_t body;      /* limits.body: largest request body, 0 none (413) */
        uint64_t body_rate; /* limits.body_rate: slowest request body, bytes/s, 0 none */
    } limits;
    struct {
        bool enabled;       /* waf: written */
        char *rules;        /* waf.rules: the CRS directory */
        unsigned paranoia;  /* waf.paranoia: 1..4 */
        conf_waf_mode_t mode;
        unsigned threshold; /* waf.anomaly_threshold */
        size_t body;        /* waf.body: request body bytes inspected */
    } waf;
    struct {
        bool enabled;       /* ban: written */
        unsigned after;     /* ban.after: strikes... */
        uint64_t within_ms; /* ban.within: ...within this window */
        uint64_t for_ms;    /* ban.for: first ban; doubles for each repeat */
        uint64_t max_ms;    /* ban.max: longest ban */
        bool nftables;      /* ban.nftables: also drop in the kernel */
    } ban;
} conf_shield_t;

/* One certificate of a TLS listener: PEM chain (leaf first) and key. */
typedef struct {
    char *cert;
    char *key;
    char *ocsp; /* DER OCSP response to staple; NULL: none */
} conf_cert_t;

typedef enum {
    CONF_TLS_INTERMEDIATE, /* Mozilla "intermediate": TLS 1.2 (FS suites) and 1.3 */
    CONF_TLS_MODERN,       /* TLS 1.3 only */
} conf_tls_profile_t;

/* listeners.<name>.tls */
typedef struct {
    bool enabled;            /* tls: written */
    char *cert, *key;        /* tls.cert / tls.key: the default certificate */
    char *ocsp;              /* tls.ocsp: its OCSP response to staple; NULL: none */
    conf_cert_t *certs;      /* tls.certificates: more, chosen by SNI */
    size_t ncerts;
    conf_tls_profile_t profile;
    unsigned min_version;    /* tls.min_version: 0 (profile's), 10, 11, 12, 13 */
    bool allow_legacy;       /* tls.allow_legacy: permits 1.0 / 1.1 */
    uint64_t hsts_ms;        /* tls.hsts: Strict-Transport-Security max-age, 0 off */
    uint64_t ticket_rotate_ms; /* tls.ticket_rotate, default 12h */
} conf_tls_t;

typedef struct {
    char *name;
    char *listen; /* as written */
    sock_addr_t addr;
    uint64_t header_timeout_ms; /* timeouts.header: first byte to end of head, default 10s */
    uint64_t idle_timeout_ms;   /* timeouts.idle: keep-alive wait between requests, 60s */
    uint64_t client_timeout_ms; /* timeouts.client: client inactivity mid-request, 60s */
    size_t max_uri;             /* limits.uri: request-line bytes, 8k (414) */
    size_t max_headers;         /* limits.headers: field count, 100 (431) */
    size_t max_header_bytes;    /* limits.header_bytes: whole head, 32k (431) */
    size_t shield;              /* shield: index into conf_t.shields; SIZE_MAX none */
    conf_tls_t tls;
    unsigned redirect_https;    /* redirect_https: port to send clients to over HTTPS; 0 off */
    bool security_headers;      /* security_headers: add nosniff, SAMEORIGIN, Referrer-Policy */
    conf_route_t *routes;
    size_t nroutes; /* >= 1 */
} conf_listener_t;

/* admin.tls: HTTPS on the admin listener, optionally with client certificates. */
typedef struct {
    bool enabled;     /* admin.tls written */
    char *cert, *key; /* the admin listener's certificate and key */
    char *client_ca;  /* admin.tls.client_ca: clients must present a certificate from these */
} conf_admin_tls_t;
/* The upper bounds, in seconds, of the request latency histogram buckets
 * (the last bucket, +Inf, is implied). The gateway's histograms and the
 * latency objectives share them: a gateway latency objective's threshold
 * must be one of them, so its SLI is an exact count of buckets. */
#define CONF_LATENCY_NBUCKETS 15
extern const double conf_latency_bounds[CONF_LATENCY_NBUCKETS];
/* Whether ms is one of conf_latency_bounds, compared in whole milliseconds. */
bool conf_latency_is_bound(uint64_t ms);

/* The largest secret_file / password_file the process reads, in bytes. */
#define CONF_SECRET_MAX 4096

/* One name of a list of names (alerts of an objective...), resolved. */
typedef struct {
    size_t index; /* into the conf_t array the name belongs to */
} conf_ref_item_t;

/* One word of a list of text values (email recipients). */
typedef struct {
    char *word;
} conf_text_t;

typedef enum {
    CONF_STORE_SYNC_NORMAL, /* WAL, synchronous=NORMAL: a power loss may drop the last commits */
    CONF_STORE_SYNC_FULL,   /* synchronous=FULL: fsync at every commit */
} conf_store_sync_t;

/* store: the embedded SQLite store of the control plane. */
typedef struct {
    char *sqlite;           /* store.sqlite; default DATA_DIR/surety.db */
    conf_store_sync_t sync; /* store.sync, default normal */
    unsigned queue;         /* store.queue: writes waiting for the store thread, 65536 */
    struct {                /* store.retention.*: how long each kind of row is kept */
        uint64_t raw_ms;        /* 10 s samples, 2d */
        uint64_t minute_ms;     /* 14d */
        uint64_t hour_ms;       /* 90d */
        uint64_t day_ms;        /* 1095d */
        uint64_t probes_ms;     /* probe results, 14d */
        uint64_t events_ms;     /* events (state changes, alerts), 400d */
        uint64_t deliveries_ms; /* alert delivery log, 30d */
    } retention;
} conf_store_t;

typedef enum {
    CONF_MONITOR_HTTP, /* http: URL (http:// or https://) */
    CONF_MONITOR_TCP,  /* tcp: "host:port" */
    CONF_MONITOR_DNS,  /* dns: NAME resolves */
} conf_monitor_kind_t;

/* monitors.<name>: one active probe, run by the control thread. */
typedef struct {
    char *name;
    conf_monitor_kind_t kind;
    char *target;        /* the URL, "host:port" or DNS name (one of the three below) */
    char *http, *tcp, *dns; /* as written; exactly one is set */
    bool https;          /* http: the URL is https:// */
    unsigned expect;     /* expect: status that passes (http), default 200 */
    char *body;          /* body: substring the response must hold (http); NULL */
    uint64_t latency_ms; /* latency: slower is a failure; 0: none */
    unsigned cert_days;  /* cert_days: fail when the certificate expires sooner (https); 0 */
    uint64_t interval_ms; /* interval, default 30s, >= 1s */
    uint64_t timeout_ms;  /* timeout, default 5s, < interval */
    unsigned down_after;  /* failures in a row before down, default 2 */
    unsigned up_after;    /* successes in a row before up, default 2 */
} conf_monitor_t;

typedef enum {
    CONF_SLO_SOURCE_LISTENER, /* source: listener:NAME */
    CONF_SLO_SOURCE_ROUTE,    /* source: route:LISTENER/ROUTE */
    CONF_SLO_SOURCE_MONITOR,  /* source: monitor:NAME */
} conf_slo_source_t;

typedef enum {
    CONF_SLO_AVAILABILITY, /* good: not 5xx, or a successful probe */
    CONF_SLO_LATENCY,      /* good: at most threshold */
} conf_slo_kind_t;

/* objectives.<name>: a service level objective over a rolling window. */
typedef struct {
    char *name;
    char *source;                  /* as written: "listener:web" */
    conf_slo_source_t source_kind; /* resolved: */
    size_t listener;               /* listener index (listener, route); else SIZE_MAX */
    size_t route;                  /* route index within it (route); else SIZE_MAX */
    size_t monitor;                /* monitor index (monitor); else SIZE_MAX */
    conf_slo_kind_t kind;
    uint64_t threshold_ms;         /* latency: good is <= this; 0 for availability */
    uint32_t target_ppm;           /* target as written: 99.9% is 999000 */
    double target;                 /* the same as a fraction: 0.999 */
    uint64_t window_ms;            /* window, default 30d, 1d..90d */
    bool maintenance_counts;       /* requests in maintenance count, default false */
    conf_ref_item_t *alerts;       /* alerts: indexes into conf_t.alerts; */
    size_t nalerts;                /* none written: every alert (alerts_all) */
    bool alerts_all;
} conf_objective_t;

typedef enum {
    CONF_ALERT_WEBHOOK, /* webhook: URL, signed with secret_file */
    CONF_ALERT_EMAIL,   /* email: through SMTP */
} conf_alert_kind_t;

/* alerts.<name>: where notifications go. */
typedef struct {
    char *name;
    conf_alert_kind_t kind;
    char *webhook;     /* webhook: http:// or https:// URL */
    char *secret_file; /* secret_file: HMAC-SHA256 key of the webhook */
    bool email_enabled; /* email: written */
    struct {
        conf_text_t *to; /* email.to: recipients, at least one */
        size_t nto;
        char *from;          /* email.from */
        char *smtp;          /* email.smtp: smtp:// or smtps:// URL */
        char *username;      /* email.username; NULL: no authentication */
        char *password_file; /* email.password_file (with username) */
    } email;
    uint64_t repeat_ms;     /* repeat: least time between two notifications of one alert, 4h */
    uint64_t group_wait_ms; /* group_wait: firings gathered into one notification, 30s */
} conf_alert_t;

/* maintenance.<name>: a planned window; alerts are silenced in it. */
typedef struct {
    char *name;
    int64_t start_s;             /* start: unix seconds (UTC) */
    int64_t end_s;               /* end: > start */
    conf_ref_item_t *objectives; /* objectives: indexes into conf_t.objectives; */
    size_t nobjectives;          /* none written: every objective (objectives_all) */
    bool objectives_all;
} conf_maintenance_t;

typedef struct conf {
    char *path;        /* the file this generation came from */
    unsigned workers;  /* resolved: "auto" is the number of online CPUs */
    bool admin_enabled;
    char *admin_listen;
    sock_addr_t admin_addr;
    conf_admin_tls_t admin_tls;
    char *access_log;  /* path, "-" for stdout, NULL when "off" */
    conf_client_ip_t client_ip;
    bool log_query;    /* log.query: keep the query string in the access log; false */
    char *security_log; /* log.security: path, "-" for stdout, NULL when "off" */
    char *data_dir;     /* data_dir: persistent state (bans), default "var" */
    unsigned waf_threads;   /* security.waf_threads, default 2 */
    unsigned waf_queue;     /* security.waf_queue, default 1024 */
    unsigned events_kept;   /* security.events: kept in memory for the API, 1000 */
    char *nft_table;        /* security.nftables_table, default "surety" */
    uint64_t drain_timeout_ms;  /* drain_timeout: SIGTERM waits this long for in-flight, 30s */
    unsigned max_connections;   /* max_connections: client connections per worker, 10000 */
    size_t buffer_size;         /* buffer_size: per direction per connection, 16k */
    conf_listener_t *listeners;
    size_t nlisteners;
    conf_pool_t *pools;
    size_t npools;
    conf_shield_t *shields;
    size_t nshields;
    conf_store_t store;
    conf_monitor_t *monitors;
    size_t nmonitors;
    conf_objective_t *objectives;
    size_t nobjectives;
    conf_alert_t *alerts;
    size_t nalerts;
    conf_maintenance_t *maintenance;
    size_t nmaintenance;

    /* private */
    int refs;
    void *arena;
} conf_t;

/* Loads and validates path. On success returns a conf_t with one reference.
 * On failure writes each error as "FILE:LINE:COL: message\n" to errs (in
 * document order) and returns NULL. Never prints anything else. */
conf_t *conf_load(const char *path, FILE *errs);
/* Same, from memory; name is what the diagnostics call the file. */
conf_t *conf_load_string(const char *name, const char *text, size_t len, FILE *errs);
conf_t *conf_ref(conf_t *c);
void conf_unref(conf_t *c); /* accepts NULL */

/* Writes docs/configuration.md (Markdown) from the key table. */
void conf_doc_write(FILE *out);

/* The value syntaxes of the configuration, for anything else that takes
 * such values (command-line flags, the admin API). Each returns 0 and sets
 * *ret, or -EINVAL (not that syntax) or -ERANGE (does not fit); *ret is
 * untouched on failure. Text is a view: it need not be NUL-terminated. */

/* "0" or a whole number and one unit: ms s m h d. "250ms", "2s", "30d". */
int conf_duration_parse(const char *s, size_t len, uint64_t *ret_ms);
/* Bytes, a whole number with an optional k m g (or K M G), powers of 1024:
 * "512", "16k", "8m", "1g". */
int conf_size_parse(const char *s, size_t len, uint64_t *ret_bytes);
/* "99.9%": 0% to 100% with at most 4 decimals, in parts per million
 * (100% is 1000000, 99.9% is 999000). */
int conf_percent_parse(const char *s, size_t len, uint32_t *ret_ppm);

/* A whole number, '/', and one unit s m h: "100/s", "6000/m". */
int conf_rate_parse(const char *s, size_t len, conf_rate_t *ret);

#endif
