/* Internal types of the data plane, shared by the files of src/gateway/:
 * a worker (one thread, one loop), its client connections and its upstream
 * connections. Not for use outside src/gateway/. */
#ifndef SURETY_GATEWAY_WORKER_H
#define SURETY_GATEWAY_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/list.h"
#include "core/loop.h"
#include "core/sock.h"
#include "gateway/access_log.h"
#include "gateway/balance.h"
#include "gateway/head.h"
#include "gateway/state.h"
#include "gateway/stats.h"
#include "http/http.h"
#include "shield/policy.h"
#include "tls/tls.h"

typedef struct worker worker_t;
typedef struct client client_t;
typedef struct upstream upstream_t;

/* Most fields a head may have that the proxy will look at; the listener's
 * limits.headers is capped to this. */
#define GW_MAX_FIELDS 1000
/* Response heads from servers are trusted more but still bounded. */
#define GW_RESPONSE_MAX_FIELDS 256

/* One listening socket of one worker. */
typedef struct {
    loop_io_t io;
    worker_t *w;
    size_t index; /* into conf->listeners */
    http_limits_t limits;
    bool accepting;
    const shield_policy_t *policy;         /* the listener's shield; NULL none */
    const shield_policy_t **route_policy;  /* [route]: the route's, else the listener's */
    tls_server_t *tls;                     /* TLS termination; NULL: plain HTTP */
    char hsts[48];                         /* "max-age=N" for tls.hsts */
    head_added_t added;                    /* HSTS, security_headers: added when missing */
} listener_t;

/* One server of one pool, as this worker sees it. */
typedef struct {
    size_t pool, index;
    list_t idle;         /* upstream_t.link, most recently used first */
    unsigned nidle;
    stats_server_t *stats;
    char label[SOCK_ADDR_TEXT_MAX]; /* "127.0.0.1:9001" for logs */
    uint64_t log_at;                /* start of the current one-second log window */
    unsigned log_count;             /* lines in it; past the limit they are only counted */
    SSL_SESSION *tls_session;       /* pool with tls: the latest resumable session, owned */
} server_t;

typedef struct {
    server_t *servers;
    balance_rr_t rr;          /* round-robin scores; least-conn's tie-break */
    unsigned *inflight;       /* [server]: this worker's requests in flight */
    unsigned *eff_weight;     /* [server]: scratch, weights after slow start */
    balance_ewma_t *ewma;     /* [server]: p2c-ewma latency estimates */
    balance_ring_t *ring;     /* balance: hash */
    SSL_CTX *tls;             /* the pool's tls: client context (the generation's); NULL: plain */
    unsigned active;   /* transactions of this worker attached to the pool */
    unsigned retrying; /* of those, the ones on a retry (the budget) */
} pool_t;

/* Servers a transaction may try: the first and every retry. */
#define GW_MAX_TRIES 8

struct worker {
    unsigned id;
    pthread_t thread;
    loop_t *loop;
    conf_t *conf;
    stats_t *stats;
    listener_t *listeners;
    pool_t *pools;
    loop_async_t wake; /* drain requests from the main thread */
    loop_timer_t drain_timer;
    loop_timer_t resume_timer; /* accepts paused after EMFILE */
    bool draining;
    bool gentle; /* draining for a reload: see worker_drain() */
    bool drain_requested; /* set by the main thread (atomic) */
    bool drain_gentle;    /* likewise: a reload's drain */
    bool stopped;         /* the thread has finished (atomic) */
    bool wake_ready;
    bool started;
    uint64_t reqid_prefix;
    uint64_t rng;             /* p2c draws */
    unsigned nclients;
    list_t clients; /* client_t.link */
    list_t queued;  /* client_t.qlink: waiting for a max_inflight slot, oldest first */
    unsigned nqueued;
    loop_timer_t queue_timer; /* armed while anything waits: client_queue_pass() */
    access_log_writer_t alog;
    uint64_t reqid_seed, reqid_counter;
    unsigned **weights;      /* [pool][server], for the balancer */
    state_t *state;          /* shared runtime state (health, ejection, failover) */
    bool *usable;            /* scratch: [most servers of a pool] */
    buf_cache_t *client_in;  /* [listener]: max(buffer_size, limits.header_bytes) */
    buf_cache_t client_out;  /* response heads and proxy-made answers */
    buf_cache_t up_in;       /* response heads and response body */
    buf_cache_t up_out;      /* rewritten request heads */
    http_limits_t resp_limits;
    shield_t *shield;
    const shield_gen_t *sg;
    /* WAF verdicts come back from the WAF threads through this list */
    loop_async_t waf_wake;
    bool waf_wake_ready;
    pthread_mutex_t waf_lock;
    waf_job_t *waf_done;     /* under waf_lock */
    unsigned waf_inflight;   /* jobs submitted, not yet handed back (atomic) */
    http_field_t fields[GW_MAX_FIELDS]; /* scratch for the head being parsed */
};

enum upstream_state {
    UP_CONNECTING,
    UP_ACTIVE,
    UP_IDLE,
};

struct upstream {
    loop_io_t io;
    worker_t *w;
    server_t *srv;
    client_t *client; /* attached client, NULL when idle */
    enum upstream_state state;
    loop_ready_t ready;
    bool eof;
    bool reused;       /* has carried an earlier request */
    bool session_kept; /* its TLS session was offered to srv->tls_session */
    tls_conn_t tls;    /* pool with tls: the session; tls.ssl NULL in clear */
    buf_t in;          /* bytes from the server */
    buf_t out;         /* the rewritten request head */
    loop_timer_t timer;
    list_t link; /* in server_t.idle */
};

enum client_state {
    CL_HEAD,     /* waiting for (the rest of) a request head */
    CL_PROXY,    /* request forwarded, body and response in flight */
    CL_TUNNEL,   /* after 101 Switching Protocols: bytes both ways */
    CL_CLOSING,  /* flushing a final answer, then close */
    CL_WAF,      /* request head (and body prefix) held for the WAF's verdict */
    CL_QUEUED,   /* request head held until a server of the pool has room (max_inflight) */
};

/* Body framing progress of one direction. */
typedef struct {
    http_body_kind_t kind;
    uint64_t remaining; /* HTTP_BODY_LENGTH */
    size_t pending;     /* bytes at the front of the source buffer known to be body, unsent */
    http_chunked_t chunked;
    bool dechunk; /* decode in place: the client speaks HTTP/1.0 */
    bool done;
} body_t;

struct client {
    loop_io_t io;
    worker_t *w;
    listener_t *l;
    sock_addr_t peer;
    char peer_ip[SOCK_ADDR_TEXT_MAX]; /* formatted once, for forwarding fields */
    uint8_t peer_ip_len;
    enum client_state state;
    loop_ready_t ready;
    bool eof;
    bool keep_alive;      /* may carry another request after this one */
    buf_t in;             /* request bytes: heads and request body */
    buf_t out;            /* bytes for the client: response heads, errors */
    loop_timer_t timer;
    upstream_t *up;
    list_t link;
    list_t qlink;          /* in worker_t.queued while CL_QUEUED, else linked to itself */
    const shield_policy_t *conn_policy; /* counted by the shield at accept: release */
    tls_conn_t tls;       /* TLS listeners: the session; tls.ssl NULL for plain HTTP */
    bool tls_trim_due;    /* idle: the timer first trims TLS buffers, then waits idle_left_ms */
    uint64_t idle_left_ms;
    unsigned requests;  /* served on this connection */
    size_t parsed_len;  /* buffered bytes already found to be an incomplete head */
    bool idle_counted;  /* counted in conns_idle */
    bool shut;          /* lingering close: our side is shut down */

    /* the transaction in flight */
    struct {
        uint64_t start_ms;
        int status;                /* sent to the client; 0 until the head went */
        int route;                 /* -1 before routing */
        bool head_method;
        bool upgrade;
        bool response_started;     /* response head copied to out */
        bool retried;
        bool got_1xx;
        bool stop_request;     /* server answered early: send no more request body */
        bool up_keep_alive;    /* the server keeps its connection after this response */
        bool tunnel_logged;
        int minor;             /* client's HTTP/1.<minor> */
        server_t *server;
        size_t pool;            /* the pool the route names (retry and outlier settings) */
        server_t *tried[GW_MAX_TRIES];
        unsigned ntried;
        unsigned retries;       /* retries done (the first try is not one) */
        bool counted_active;    /* counted in pool_t.active of tx.server's pool */
        bool counted_retrying;
        bool replayable;        /* no body, or one small enough to keep: can be retried */
        buf_t replay;           /* request body bytes sent so far (retry.body bounds it) */
        size_t head_up_len;     /* length of the rewritten head at the start of up->out */
        size_t skip_pool;       /* 1 + a pool whose retry budget refused this retry; 0 none */
        bool busy;              /* no server chosen: every open one was at max_inflight */
        uint64_t queued_ms;     /* when it first waited for a max_inflight slot; 0: never */
        uint64_t queue_wait_ms; /* from then to when it last left the queue (access log) */
        uint64_t hash_key;      /* balance: hash, computed from the request head */
        uint64_t sent_ms;       /* when the request went to the current server (p2c-ewma) */
        size_t req_head_sent;  /* bytes of up->out already sent */
        size_t resp_parsed_len;
        http_reject_t reject;
        const shield_policy_t *policy; /* request and content layers; NULL none */
        bool shield_passed;     /* request layer and WAF done: the head is parsed again */
        bool waf_submitted;
        waf_job_t *waf_job;     /* in flight at the WAF threads */
        size_t waf_need;        /* buffered bytes (head + body prefix) the WAF inspects */
        uint64_t body_start_ms; /* limits.body_rate: when the body began */
        uint64_t body_seen;     /* request body bytes received (limits.body, body_rate) */
        uint64_t last_read_ms;  /* last request body bytes from the client */
        char extra[48];         /* more header lines for a proxy-made answer */
        body_t req_body, resp_body;
        uint64_t bytes_in, bytes_out;
        char method[16];
        char path[256];
        size_t path_len;
        char request_id[40];
        size_t request_id_len;
    } tx;
};

/* worker.c */
/* A warning about one server, at most a few per second per server and
 * worker: a dead server must not turn every refused request into a log line.
 * Lines past the limit are counted and the count is reported with the next
 * line that gets through. */
void worker_server_warn(worker_t *w, server_t *srv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A client connection ended; when draining, the last one stops the loop. */
void worker_client_closed(worker_t *w);
/* 32 hex digits, unique per process with overwhelming probability. */
void worker_make_request_id(worker_t *w, char out[33]);

/* What a step of a connection's state machine achieved. */
enum { STEP_IDLE = 0, STEP_PROGRESS = 1, STEP_CLOSED = -1 };

/* worker.c: a WAF thread finished job (job->owner is the worker). */
void worker_waf_job_done(waf_job_t *job);

/* client.c */
/* Answers with a proxy-made error (c->tx.extra adds header lines), then
 * closes once it is written. */
int client_fail(client_t *c, int status);
/* Reads more request bytes into c->in; a step result. */
int client_read(client_t *c);
/* Writes what c->out holds; a step result. */
int client_flush_out(client_t *c);
/* The bytes a `source | header:NAME | cookie:NAME | route` key names in
 * req (balance: hash, shield rate.key); empty when absent, and for source,
 * which is the client's address. */
str_t client_request_key(const client_t *c, const http_request_t *req, conf_hash_kind_t kind,
                         const char *name);
/* The next run of chunk data in p[0, len), framing skipped (see client.c). */
int client_dechunk_next(http_chunked_t *ch, const char *p, size_t len, size_t *ret_used,
                        size_t *ret_off, size_t *ret_len, http_reject_t *ret_reason);

/* client_queue.c: requests waiting for a max_inflight slot. */
/* Every usable server of c's pool is at max_inflight: holds c's request
 * (its head stays in c->in) until the pool has room, or answers 503 with
 * Retry-After once queue_timeout has passed since it first waited (at once
 * with queue_timeout 0). A step result. */
int client_queue_wait(client_t *c);
/* Takes c out of the queue (closing, or its wait ended). */
void client_queue_remove(client_t *c);
/* queue_timer: hands waiting requests, oldest first, to pools with room. */
void client_queue_timer_cb(loop_t *loop, loop_timer_t *t);
/* A slot of a server of this worker came free: look at the queue soon. */
void client_queue_kick(worker_t *w);
/* c's timer fired while it waited (queue_timeout): 503. A step result. */
int client_queue_expired(client_t *c);

/* client_tls.c: TLS on the client side (see there for readiness rules). */
bool client_tls_start(client_t *c, int fd);
void client_tls_free(client_t *c);
int client_tls_handshake(client_t *c);

/* client_shield.c: the shield's request and content layers. */
void client_shield_event(client_t *c, const shield_policy_t *p, shield_reason_t reason, int status,
                         const waf_job_t *job);
/* After routing: rate, methods, body size, then the WAF. True when the
 * request was answered or is held (*ret: the step result); false: go on. */
bool client_shield_request(client_t *c, const http_request_t *req, int *ret);
/* n more request body bytes went through: limits.body. A step result. */
int client_shield_body(client_t *c, size_t n);
/* limits.body_rate: true when the body arrives too slowly. */
bool client_shield_body_too_slow(client_t *c);
/* CL_WAF */
int client_waf_step(client_t *c);
/* A WAF verdict for the client that submitted job (worker thread). */
void client_waf_done(client_t *c, waf_job_t *job);
/* counted: the shield counted the connection (release it on close). */
void client_accept(worker_t *w, listener_t *l, int fd, const sock_addr_t *peer, bool counted);
void client_close(client_t *c);
/* Drives the connection as far as it can go without blocking. */
void client_run(client_t *c);
/* Drain: close when idle, else close after the current response. */
void client_drain(client_t *c);
/* The attached upstream's connect or response timer fired. */
void client_upstream_timeout(client_t *c);

/* upstream.c */
/* An idle connection to srv, or a new one (connecting). NULL + *ret_err. */
upstream_t *upstream_acquire(worker_t *w, server_t *srv, int *ret_err);
/* Gives the connection back: kept idle when reusable, else closed. */
void upstream_release(upstream_t *u, bool reusable);
void upstream_close(upstream_t *u);
/* A connecting upstream, one step further: the TCP connect's outcome, then
 * the pool's TLS handshake. 0: ready for the request (UP_ACTIVE), -EAGAIN:
 * wait for the next event, -errno: failed, with the reason in why (for the
 * server's warning). Counts in the server's statistics. */
int upstream_connect_step(upstream_t *u, char *why, size_t whylen);
/* Bytes to and from the server, in clear or through the pool's TLS (see
 * stream.c). */
int upstream_send(upstream_t *u, const char *a, size_t alen, const char *b, size_t blen,
                  size_t *ret_sent);
int upstream_read(upstream_t *u, int *ret_err);

#endif
