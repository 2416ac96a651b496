/* The key table: every configuration key with its type, default, limits,
 * where it is stored and its help text (STYLE 4). It is the single source
 * of truth: walk.c applies it (defaults included, parsed from the text
 * written here), doc.c turns it into docs/configuration.md, and a unit test
 * checks that every default and limit here parses. To add a key: add its
 * field to conf.h, a row here, regenerate the docs
 * (scripts/gen-config-doc.sh), and test it in tests/unit/test_conf.c. */
#include "conf/conf_int.h"

#include <stddef.h>
#include <string.h>

#define FIELD(T, f) .off = offsetof(T, f), .size = sizeof(((T *)0)->f)
#define ADDRESS(T, text, addr) FIELD(T, text), .off2 = offsetof(T, addr)
#define ARRAY(T, arr, count, E)                                                                    \
    .off = offsetof(T, arr), .off2 = offsetof(T, count), .elem_size = sizeof(E)
#define LATER(n, what)                                                                             \
    {                                                                                              \
        .name = n, .type = CONF_T_LATER, .help = what                                              \
    }

const conf_type_info_t conf_type_info[CONF_T_COUNT_] = {
    [CONF_T_MAP] = {"map", "a map of keys"},
    [CONF_T_NAMED] = {"map of names", "a map of names to their settings"},
    [CONF_T_LIST] = {"list", "a list"},
    [CONF_T_INT] = {"integer", "an integer"},
    [CONF_T_BOOL] = {"boolean", "true or false"},
    [CONF_T_ENUM] = {"one of", "one of"},
    [CONF_T_STRING] = {"string", "a string"},
    [CONF_T_DURATION] = {"duration", "a duration like 2s or 250ms"},
    [CONF_T_SIZE] = {"size", "a size like 512, 16k or 8m"},
    [CONF_T_PERCENT] = {"percentage", "a percentage like 99.9%"},
    [CONF_T_RATE] = {"rate", "a rate like 100/s or 6000/m"},
    [CONF_T_ADDRESS] = {"address", "an address like 127.0.0.1:8080, [::1]:8080 or :8080"},
    [CONF_T_REF] = {"name", "a name"},
    [CONF_T_FLAGS] = {"list", "a list"},
    [CONF_T_CUSTOM] = {"", ""}, /* each CUSTOM key says: doc_type, expect */
    [CONF_T_LATER] = {"not supported yet", "nothing"},
};

const double conf_latency_bounds[CONF_LATENCY_NBUCKETS] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1, 2.5, 5, 10,
};

bool conf_latency_is_bound(uint64_t ms)
{
    for (size_t i = 0; i < CONF_LATENCY_NBUCKETS; i++)
        if ((uint64_t)(conf_latency_bounds[i] * 1000 + 0.5) == ms)
            return true;
    return false;
}

/* One row per key, a few fields to a line: the table reads as a table.
 * clang-format would put every field on a line of its own. */
/* clang-format off */
static const char *const client_ip_values[] = {"truncate", "hash", "full", NULL};
/* In the order of conf_balance_t, conf_health_type_t (from 1) and the
 * CONF_RETRY_* bits: the index is what is stored. */
static const char *const balance_values[] = {"round-robin", "least-conn", "p2c-ewma", "hash",
                                             NULL};
static const char *const health_type_values[] = {"http", "tcp", NULL};
static const char *const tls_profile_values[] = {"intermediate", "modern", NULL};
static const char *const tls_version_values[] = {"1.0", "1.1", "1.2", "1.3", NULL};
static const char *const waf_mode_values[] = {"block", "detect", NULL};
static const char *const retry_on_values[] = {"connect", "reset", "timeout", "500", "502", "503",
                                              "504", NULL};

static const conf_key_t admin_tls_keys[] = {
    {.name = "cert", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED,
     FIELD(conf_t, admin_tls.cert), .doc_example = "etc/tls/admin.crt",
     .help = "PEM file with the admin listener's certificate, then its intermediates."},
    {.name = "key", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED,
     FIELD(conf_t, admin_tls.key), .doc_example = "etc/tls/admin.key",
     .help = "PEM file with its private key (not encrypted)."},
    {.name = "client_ca", .type = CONF_T_STRING, FIELD(conf_t, admin_tls.client_ca),
     .doc_example = "etc/tls/operators-ca.crt",
     .help = "PEM file with the authorities whose client certificates are accepted; every "
             "client must then present one (mutual TLS), or its handshake fails. Without it, "
             "no client certificate is asked for."},
    {0},
};

static const conf_key_t admin_keys[] = {
    {.name = "listen", .type = CONF_T_ADDRESS, .flags = CONF_F_OFF, .def = "127.0.0.1:9090",
     ADDRESS(conf_t, admin_listen, admin_addr),
     .help = "Address of the admin listener (metrics at /metrics, health at /healthz, the API "
             "under /api/v1/), or `off` for none. Keep it on loopback or a management network: "
             "it is not meant for the public."},
    {.name = "tls", .type = CONF_T_MAP, .sub = admin_tls_keys, FIELD(conf_t, admin_tls.enabled),
     .help = "HTTPS on the admin listener (TLS 1.2 and 1.3, the `intermediate` profile). "
             "With `client_ca`, only clients with a certificate from those authorities get "
             "past the handshake: the admin API can change pools and bans, so put it behind "
             "client certificates when it is reachable beyond loopback. Read at start and at "
             "each reload. Without it, plain HTTP."},
    {0},
};

static const conf_key_t log_keys[] = {
    {.name = "access", .type = CONF_T_STRING, .flags = CONF_F_OFF, .def = "-",
     FIELD(conf_t, access_log),
     .help = "Where the access log goes, one JSON object per line: a file path, `-` for "
             "standard output, or `off` for no access log."},
    {.name = "client_ip", .type = CONF_T_ENUM, .def = "truncate", .values = client_ip_values,
     FIELD(conf_t, client_ip),
     .help = "How client addresses are written to the access log: `truncate` keeps the network "
             "only (/24 for IPv4, /48 for IPv6), `hash` writes a keyed hash that is stable per "
             "address but cannot be reversed, `full` writes the address as it is."},
    {.name = "query", .type = CONF_T_BOOL, .def = "false", FIELD(conf_t, log_query),
     .help = "Keep the query string of request URIs in the access log. Off by default: query "
             "strings often carry personal data or secrets."},
    {.name = "security", .type = CONF_T_STRING, .flags = CONF_F_OFF, .def = "-",
     FIELD(conf_t, security_log),
     .help = "Where security events go (refused connections, rate limits, WAF blocks, bans), "
             "one JSON object per line: a file path, `-` for standard output, or `off`. It "
             "keeps full client addresses: it is the record an investigation starts from. See "
             "docs/security.md for the format."},
    {0},
};

static const conf_key_t listener_timeout_keys[] = {
    {.name = "header", .type = CONF_T_DURATION, .def = "10s", .min = "1ms", .max = "1d",
     FIELD(conf_listener_t, header_timeout_ms),
     .help = "Longest time from a request's first byte to the end of its head."},
    {.name = "idle", .type = CONF_T_DURATION, .def = "60s", .min = "1ms", .max = "1d",
     FIELD(conf_listener_t, idle_timeout_ms),
     .help = "How long a keep-alive client connection may wait for its next request."},
    {.name = "client", .type = CONF_T_DURATION, .def = "60s", .min = "1ms", .max = "1d",
     FIELD(conf_listener_t, client_timeout_ms),
     .help = "Longest client inactivity in the middle of a request or response (a stalled "
             "body upload or download)."},
    {0},
};

static const conf_key_t listener_limit_keys[] = {
    {.name = "uri", .type = CONF_T_SIZE, .def = "8k", .min = "256", .max = "1m",
     FIELD(conf_listener_t, max_uri),
     .help = "Longest request line; a longer one gets 414."},
    {.name = "headers", .type = CONF_T_INT, .def = "100", .min = "1", .max = "1000",
     FIELD(conf_listener_t, max_headers),
     .help = "Most header fields in a request; more gets 431."},
    {.name = "header_bytes", .type = CONF_T_SIZE, .def = "32k", .min = "1k", .max = "1m",
     FIELD(conf_listener_t, max_header_bytes),
     .help = "Largest request head (request line and header fields); a larger one gets 431. "
             "Must be at least `limits.uri`."},
    {0},
};

static const conf_key_t route_keys[] = {
    {.name = "name", .type = CONF_T_STRING, .flags = CONF_F_INDEX_NAME, FIELD(conf_route_t, name),
     .check = conf_check_name, .doc_example = "api",
     .help = "Name of the route: 1 to 64 of `A-Z a-z 0-9 _ . -`, unique within its listener."},
    {.name = "host", .type = CONF_T_STRING, FIELD(conf_route_t, host), .check = conf_check_host,
     .doc_example = "api.example.com",
     .help = "Match requests for this host name only: an exact name (`api.example.com`) or a "
             "suffix (`*.example.com`, which matches `a.example.com` but not `example.com`). "
             "Letters, digits, `.` and `-`; compared without case; no port. Without it, any "
             "host matches."},
    {.name = "path", .type = CONF_T_STRING, FIELD(conf_route_t, path), .check = conf_check_path,
     .doc_example = "/v1/",
     .help = "Match requests whose path starts with this prefix; it must start with `/`. "
             "Without it, any path matches."},
    {.name = "pool", .type = CONF_T_REF, .flags = CONF_F_REQUIRED, .ref = "pools",
     FIELD(conf_route_t, pool), .doc_example = "api",
     .help = "The pool (a key of `pools`) that serves the requests this route matches."},
    {.name = "shield", .type = CONF_T_REF, .ref = "shield", FIELD(conf_route_t, shield),
     .doc_example = "strict",
     .help = "A security policy (a key of `shield`) for the requests of this route, in place "
             "of the listener's: its request and content layers (methods, rate, limits, waf) "
             "apply; its connection layer cannot, since connections are accepted before any "
             "route is known."},
    {0},
};

static const conf_key_t cert_keys[] = {
    {.name = "cert", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED, FIELD(conf_cert_t, cert),
     .doc_example = "etc/tls/api.crt",
     .help = "PEM file with the certificate, then its intermediates (leaf first)."},
    {.name = "key", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED, FIELD(conf_cert_t, key),
     .doc_example = "etc/tls/api.key", .help = "PEM file with its private key (not encrypted)."},
    {.name = "ocsp", .type = CONF_T_STRING, FIELD(conf_cert_t, ocsp),
     .doc_example = "etc/tls/api.ocsp",
     .help = "DER file with a current OCSP response for this certificate, stapled to the "
             "handshake of clients that ask (as `ocsp` of the default certificate)."},
    {0},
};

static const conf_key_t listener_tls_keys[] = {
    {.name = "cert", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED,
     FIELD(conf_listener_t, tls.cert), .doc_example = "etc/tls/site.crt",
     .help = "PEM file with the default certificate, then its intermediates (leaf first): "
             "served to clients that send no name (SNI) or a name no certificate has."},
    {.name = "key", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED,
     FIELD(conf_listener_t, tls.key), .doc_example = "etc/tls/site.key",
     .help = "PEM file with the default certificate's private key (not encrypted)."},
    {.name = "ocsp", .type = CONF_T_STRING, FIELD(conf_listener_t, tls.ocsp),
     .doc_example = "etc/tls/site.ocsp",
     .help = "DER file with a current OCSP response for the default certificate (what "
             "`openssl ocsp -issuer CHAIN -cert CERT -url URL -respout FILE` writes), stapled "
             "to the handshake of clients that ask, so they need not ask the CA. Surety checks "
             "it at start and reload (it must be about this certificate, `good`, signed for "
             "its issuer and not past nextUpdate) and warns a day before it expires: refresh "
             "it (cron) and reload. The issuer must follow the leaf in `cert`."},
    {.name = "certificates", .type = CONF_T_LIST, .max = "255", .sub = cert_keys,
     .noun = "certificate", ARRAY(conf_listener_t, tls.certs, tls.ncerts, conf_cert_t),
     .help = "More certificates, chosen by the name the client asks for (SNI) among the DNS "
             "names of each certificate's subjectAltName (exact, or `*.example.com` for one "
             "label). An RSA and an ECDSA certificate for the same names are both served: each "
             "client gets the one it supports."},
    {.name = "profile", .type = CONF_T_ENUM, .def = "intermediate", .values = tls_profile_values,
     FIELD(conf_listener_t, tls.profile),
     .help = "Protocol versions and cipher suites: `intermediate` (Mozilla's: TLS 1.2 with "
             "forward-secret AES-GCM and ChaCha20 suites, and TLS 1.3) or `modern` (TLS 1.3 "
             "only)."},
    {.name = "min_version", .type = CONF_T_ENUM, .values = tls_version_values, .enum_base = 10,
     FIELD(conf_listener_t, tls.min_version), .doc_example = "1.2",
     .help = "Lowest protocol version accepted; without it, the profile's (1.2, or 1.3 for "
             "`modern`). `1.0` and `1.1` are refused unless `allow_legacy` is true, and "
             "`surety check` warns about them."},
    {.name = "allow_legacy", .type = CONF_T_BOOL, .def = "false",
     FIELD(conf_listener_t, tls.allow_legacy),
     .help = "Permit `min_version` 1.0 or 1.1, for clients that cannot do better. Weakens "
             "every connection's protection against downgrade; leave it off."},
    {.name = "hsts", .type = CONF_T_DURATION, .def = "0", .min = "0", .max = "730d",
     FIELD(conf_listener_t, tls.hsts_ms), .doc_example = "365d",
     .help = "Add `Strict-Transport-Security: max-age=...` to responses that lack it, so "
             "browsers use only HTTPS for the host for that long; 0 adds nothing. Turn it on "
             "once HTTPS works for every name the listener serves."},
    {.name = "ticket_rotate", .type = CONF_T_DURATION, .def = "12h", .min = "1m", .max = "7d",
     FIELD(conf_listener_t, tls.ticket_rotate_ms),
     .help = "How often the session-ticket key changes; tickets of the previous key still "
             "resume, so a session resumes for up to twice this long."},
    {0},
};

static const conf_key_t listener_keys[] = {
    {.name = "listen", .type = CONF_T_ADDRESS, .flags = CONF_F_REQUIRED,
     ADDRESS(conf_listener_t, listen, addr), .doc_example = "0.0.0.0:8080",
     .help = "Address to accept client connections on. Two listeners, or a listener and "
             "`admin.listen`, cannot share an address (`0.0.0.0` overlaps every IPv4 address "
             "on the same port)."},
    {.name = "timeouts", .type = CONF_T_MAP, .sub = listener_timeout_keys,
     .help = "Client-side timeouts."},
    {.name = "limits", .type = CONF_T_MAP, .sub = listener_limit_keys,
     .help = "Limits on the size of request heads."},
    {.name = "routes", .type = CONF_T_LIST, .min = "1", .max = "1000",
     .sub = route_keys, .noun = "route", ARRAY(conf_listener_t, routes, nroutes, conf_route_t),
     .help = "Routes, tried in order; the first whose `host` and `path` both match serves the "
             "request. A route with neither matches everything, so it belongs last. Required, "
             "unless `redirect_https` answers every request."},
    {.name = "redirect_https", .type = CONF_T_INT, .def = "0", .min = "0", .max = "65535",
     FIELD(conf_listener_t, redirect_https), .doc_example = "443",
     .help = "Answer every request with `308 Permanent Redirect` to the same host and path "
             "over HTTPS on this port (the usual plain-HTTP listener on port 80 beside a TLS "
             "one); 0: off."},
    {.name = "security_headers", .type = CONF_T_BOOL, .def = "false",
     FIELD(conf_listener_t, security_headers),
     .help = "Add `X-Content-Type-Options: nosniff`, `X-Frame-Options: SAMEORIGIN` and "
             "`Referrer-Policy: strict-origin-when-cross-origin` to responses that lack them "
             "(a server's own value is kept). Off by default: an application that is framed "
             "by other sites on purpose would break."},
    {.name = "shield", .type = CONF_T_REF, .ref = "shield", FIELD(conf_listener_t, shield),
     .doc_example = "default",
     .help = "The security policy (a key of `shield`) applied to this listener's connections "
             "and requests. Without it, nothing is filtered."},
    {.name = "tls", .type = CONF_T_MAP, .sub = listener_tls_keys, FIELD(conf_listener_t, tls.enabled),
     .help = "TLS termination: the listener speaks HTTPS with these certificates. Without it, "
             "plain HTTP."},
    {0},
};

static const conf_key_t server_keys[] = {
    {.name = "address", .type = CONF_T_ADDRESS, .flags = CONF_F_REQUIRED,
     ADDRESS(conf_server_t, address, addr), .doc_example = "127.0.0.1:9001",
     .help = "Address of the server; unique within its pool. A list item that is just an "
             "address is the same as a map with only `address`."},
    {.name = "weight", .type = CONF_T_INT, .def = "1", .min = "1", .max = "1000",
     FIELD(conf_server_t, weight),
     .help = "Share of the requests relative to the pool's other servers: a server of weight 3 "
             "gets three times as many as one of weight 1."},
    {.name = "max_inflight", .type = CONF_T_INT, .def = "0", .min = "0", .max = "1000000",
     FIELD(conf_server_t, max_inflight), .doc_example = "64",
     .help = "Most requests the server is sent at once through this pool, counted over all workers "
             "(the same address in two pools has two counts); 0: no limit. "
             "A full server is passed over by the balancer; when every usable server of the "
             "pool is full the request waits up to the pool's `queue_timeout` for a slot, then is "
             "answered 503 with Retry-After: 1 (it is not sent to a backup pool: the pool is "
             "busy, not down), counted in "
             "`surety_pool_busy_total`. In-flight requests near the limit are a `saturation` "
             "event."},
    {0},
};

static const conf_key_t pool_timeout_keys[] = {
    {.name = "connect", .type = CONF_T_DURATION, .def = "3s", .min = "1ms", .max = "1h",
     FIELD(conf_pool_t, connect_timeout_ms),
     .help = "Longest wait for a connection to a server to be established."},
    {.name = "response", .type = CONF_T_DURATION, .def = "30s", .min = "1ms", .max = "1d",
     FIELD(conf_pool_t, response_timeout_ms),
     .help = "Longest wait from the end of sending a request to the server until the head of "
             "its response."},
    {.name = "keepalive", .type = CONF_T_DURATION, .def = "60s", .min = "1ms", .max = "1d",
     FIELD(conf_pool_t, keepalive_timeout_ms),
     .help = "How long an idle connection to a server is kept for reuse. Keep it below the "
             "server's own keep-alive timeout, so the server does not close it first."},
    {0},
};

static const conf_key_t failover_keys[] = {
    {.name = "min_healthy", .type = CONF_T_INT, .def = "1", .min = "1", .max = "1000",
     FIELD(conf_pool_t, failover_min_healthy),
     .help = "The pool fails over to its `backup` when fewer of its servers than this are "
             "healthy (up by the health checks and not ejected). At most the number of servers "
             "of the pool."},
    {.name = "failback_after", .type = CONF_T_DURATION, .def = "30s", .min = "0", .max = "1d",
     FIELD(conf_pool_t, failback_after_ms),
     .help = "After a failover, how long the pool must again have `min_healthy` healthy "
             "servers before requests come back to it, so a flapping server does not bounce "
             "traffic between the pools."},
    {0},
};

static const conf_key_t health_keys[] = {
    {.name = "type", .type = CONF_T_ENUM, .flags = CONF_F_REQUIRED, .values = health_type_values,
     .enum_base = CONF_HEALTH_HTTP, FIELD(conf_pool_t, health.type), .doc_example = "http",
     .help = "What a check is: `http` sends a request and checks the response, `tcp` only "
             "opens a connection. Required when `health` is present; without `health`, no "
             "active checks run and servers are up unless `outlier` ejects them."},
    {.name = "method", .type = CONF_T_STRING, .def = "GET", FIELD(conf_pool_t, health.method),
     .check = conf_check_token, .help = "Method of the check request (`http`)."},
    {.name = "path", .type = CONF_T_STRING, .def = "/", FIELD(conf_pool_t, health.path),
     .check = conf_check_health_path,
     .help = "Path (and query) of the check request (`http`); it must start with `/`."},
    {.name = "host", .type = CONF_T_STRING, FIELD(conf_pool_t, health.host),
     .doc_example = "www.example.com",
     .help = "Host header of the check request (`http`); without it, the server's address."},
    {.name = "expect", .type = CONF_T_CUSTOM, .def = "200-399", .min = "100", .max = "599",
     .off = offsetof(conf_pool_t, health.expect_min), .size = sizeof(unsigned),
     .off2 = offsetof(conf_pool_t, health.expect_max), .parse = conf_parse_status_range,
     .doc_type = "status code or range",
     .expect = "a status code like 200 or a range like 200-399",
     .help = "The response status that passes (`http`): one code (`200`) or a range "
             "(`200-399`), of codes from 100 to 599."},
    {.name = "body", .type = CONF_T_STRING, FIELD(conf_pool_t, health.body), .doc_example = "ok",
     .help = "Text the response body must contain to pass (`http`); without it, the body is "
             "not read."},
    {.name = "interval", .type = CONF_T_DURATION, .def = "2s", .min = "100ms", .max = "1h",
     FIELD(conf_pool_t, health.interval_ms),
     .help = "Time between two checks of a server."},
    {.name = "timeout", .type = CONF_T_DURATION, .def = "1s", .min = "1ms", .max = "1h",
     FIELD(conf_pool_t, health.timeout_ms),
     .help = "Longest a check may take (connecting, and for `http` the whole response) before "
             "it fails. Must be less than `interval`."},
    {.name = "rise", .type = CONF_T_INT, .def = "2", .min = "1", .max = "100",
     FIELD(conf_pool_t, health.rise),
     .help = "Checks in a row that must pass for a down server to be up again."},
    {.name = "fall", .type = CONF_T_INT, .def = "3", .min = "1", .max = "100",
     FIELD(conf_pool_t, health.fall),
     .help = "Checks in a row that must fail for an up server to be down."},
    {0},
};

static const conf_key_t outlier_keys[] = {
    {.name = "consecutive_errors", .type = CONF_T_INT, .def = "5", .min = "0", .max = "1000",
     FIELD(conf_pool_t, outlier.consecutive_errors),
     .help = "Errors in a row (a failed connection, a reset, a timeout, a 5xx from the server) "
             "after which a server is ejected: taken out of the pool for a while. 0 never "
             "ejects."},
    {.name = "ejection", .type = CONF_T_DURATION, .def = "30s", .min = "1s", .max = "1d",
     FIELD(conf_pool_t, outlier.ejection_ms),
     .help = "How long an ejection lasts, times the number of times the server was ejected "
             "in a row."},
    {.name = "max_ejection", .type = CONF_T_DURATION, .def = "5m", .min = "1s", .max = "1d",
     FIELD(conf_pool_t, outlier.max_ejection_ms),
     .help = "Longest ejection, however often the server was ejected. At least `ejection`."},
    {.name = "max_ejected", .type = CONF_T_PERCENT, .def = "50%", .min = "0%",
     .max = "100%", FIELD(conf_pool_t, outlier.max_ejected_ppm),
     .help = "Largest share of the pool's servers ejected at once, so a problem on Surety's "
             "side cannot empty the pool."},
    {0},
};

static const conf_key_t retry_keys[] = {
    {.name = "attempts", .type = CONF_T_INT, .def = "2", .min = "0", .max = "10",
     FIELD(conf_pool_t, retry.attempts),
     .help = "Retries after the first try, each on another server when there is one; 0 never "
             "retries."},
    {.name = "budget", .type = CONF_T_PERCENT, .def = "20%", .min = "0%", .max = "100%",
     FIELD(conf_pool_t, retry.budget_ppm),
     .help = "Retries in flight, as a share of the pool's requests in flight: past it, a "
             "request is not retried, so retries cannot multiply the load on a struggling "
             "pool."},
    {.name = "budget_min", .type = CONF_T_INT, .def = "3", .min = "0", .max = "1000",
     FIELD(conf_pool_t, retry.budget_min),
     .help = "Retries in flight always allowed, whatever `budget` says (for quiet pools)."},
    {.name = "on", .type = CONF_T_FLAGS, .def = "[connect, reset, 502, 503, 504]",
     .values = retry_on_values, FIELD(conf_pool_t, retry.on),
     .help = "What is retried, each at most once in the list: `connect` (the connection "
             "failed), `reset` (closed before any response byte), `timeout` (no response "
             "within `timeouts.response`), or a response status `500`, `502`, `503`, `504`. "
             "Nothing is retried once a byte of the response has gone to the client."},
    {.name = "non_idempotent", .type = CONF_T_BOOL, .def = "false",
     FIELD(conf_pool_t, retry.non_idempotent),
     .help = "Also retry requests whose method is not idempotent (POST, PATCH...), which the "
             "server may have acted on already."},
    {.name = "body", .type = CONF_T_SIZE, .def = "64k", .min = "0", .max = "1m",
     FIELD(conf_pool_t, retry.body),
     .help = "Largest request body kept to be sent again; a request with a larger body, or "
             "a chunked one, is not retried."},
    {0},
};

static const conf_key_t pool_tls_keys[] = {
    {.name = "verify", .type = CONF_T_BOOL, .def = "true", FIELD(conf_pool_t, tls.verify),
     .help = "Check the servers' certificate chain (against `ca`) and name (against `sni`); "
             "a server that fails either gets no request. `false` encrypts without knowing "
             "who is at the other end, and `surety check` warns about it."},
    {.name = "ca", .type = CONF_T_STRING, FIELD(conf_pool_t, tls.ca),
     .doc_example = "etc/tls/internal-ca.crt",
     .help = "PEM file with the certificates of the authorities trusted to sign the servers' "
             "certificates; without it, the system's trusted roots."},
    {.name = "sni", .type = CONF_T_STRING, FIELD(conf_pool_t, tls.sni),
     .doc_example = "api.internal.example",
     .help = "The server name sent in the handshake and checked against the servers' "
             "certificates (an IP address is checked against their IP addresses and not "
             "sent). Required with `verify: true`: without a name to check, any certificate "
             "from the trusted authorities would do."},
    {.name = "cert", .type = CONF_T_STRING, FIELD(conf_pool_t, tls.cert),
     .doc_example = "etc/tls/surety-client.crt",
     .help = "PEM file with a client certificate (then its intermediates) that Surety shows "
             "the servers, for servers that require mutual TLS; with `key`."},
    {.name = "key", .type = CONF_T_STRING, FIELD(conf_pool_t, tls.key),
     .doc_example = "etc/tls/surety-client.key",
     .help = "PEM file with the client certificate's private key (not encrypted)."},
    {0},
};

static const conf_key_t pool_keys[] = {
    {.name = "balance", .type = CONF_T_ENUM, .def = "round-robin", .values = balance_values,
     FIELD(conf_pool_t, balance),
     .help = "How requests are spread over the servers: `round-robin` is smooth weighted "
             "round-robin (weights are respected at every scale, without bursts); `least-conn` "
             "picks the server with the fewest requests in flight for its weight; `p2c-ewma` "
             "picks the better of two random servers by recent latency times requests in "
             "flight; `hash` sends requests with the same `hash` key to the same server "
             "(consistent hashing with bounded load)."},
    {.name = "hash", .type = CONF_T_CUSTOM, FIELD(conf_pool_t, hash),
     .off2 = offsetof(conf_pool_t, hash_name), .parse = conf_parse_hash,
     .doc_type = "`source`, `header:NAME` or `cookie:NAME`",
     .expect = "source, header:NAME or cookie:NAME", .doc_example = "header:X-User",
     .help = "The key of `balance: hash`, required with it and refused without it: the "
             "client's address (`source`), a request header's value (`header:NAME`) or a "
             "cookie's value (`cookie:NAME`); NAME is 1 to 64 letters, digits or "
             "``!#$%&'*+-.^_`|~``."},
    {.name = "servers", .type = CONF_T_LIST, .flags = CONF_F_REQUIRED, .min = "1", .max = "1000",
     .sub = server_keys, .noun = "server", .shorthand = "address",
     ARRAY(conf_pool_t, servers, nservers, conf_server_t),
     .help = "The servers of the pool: each an address, or a map with `address` and `weight`."},
    {.name = "slow_start", .type = CONF_T_DURATION, .def = "0", .min = "0", .max = "1h",
     FIELD(conf_pool_t, slow_start_ms),
     .help = "When a server comes back (up again, or no longer ejected), its weight grows "
             "from almost nothing to its full value over this time, so a cold server is not "
             "flooded; 0 gives it its full weight at once."},
    {.name = "queue_timeout", .type = CONF_T_DURATION, .def = "1s", .min = "0", .max = "1m",
     FIELD(conf_pool_t, queue_timeout_ms),
     .help = "When every usable server of the pool is at its `max_inflight`, a request waits "
             "this long for a slot, first come first served, then is answered 503 with "
             "Retry-After: 1; 0 answers at once. The waiting requests are connections "
             "already counted in `max_connections`: the queue needs no memory of its own. "
             "Without `max_inflight` nothing ever waits."},
    {.name = "timeouts", .type = CONF_T_MAP, .sub = pool_timeout_keys,
     .help = "Server-side timeouts."},
    {.name = "keepalive", .type = CONF_T_INT, .def = "256", .min = "0", .max = "10000",
     FIELD(conf_pool_t, keepalive_max),
     .help = "Idle connections kept open per server and per worker, for reuse by later "
             "requests; 0 opens a new connection for every request."},
    {.name = "backup", .type = CONF_T_REF, .ref = "pools", FIELD(conf_pool_t, backup),
     .doc_example = "site-dr",
     .help = "A disaster-recovery pool (another key of `pools`) that serves this pool's "
             "requests while it has fewer than `failover.min_healthy` healthy servers. A "
             "backup may have its own backup, but a pool cannot be its own backup, directly "
             "or through others."},
    {.name = "failover", .type = CONF_T_MAP, .sub = failover_keys,
     FIELD(conf_pool_t, failover_min_healthy),
     .help = "When to fail over to `backup` and back; only with `backup`."},
    {.name = "health", .type = CONF_T_MAP, .sub = health_keys, FIELD(conf_pool_t, health),
     .help = "Active health checks, run against every server of the pool. Without it, "
             "servers are never checked (the keys below show the values a check would use)."},
    {.name = "outlier", .type = CONF_T_MAP, .sub = outlier_keys, FIELD(conf_pool_t, outlier),
     .help = "Passive health checks: servers that keep failing real requests are ejected "
             "for a while; with `health` checks, `rise` successful checks in a row end an "
             "ejection early."},
    {.name = "retry", .type = CONF_T_MAP, .sub = retry_keys, FIELD(conf_pool_t, retry),
     .help = "Retrying requests that failed, on another server, within a budget."},
    {.name = "tls", .type = CONF_T_MAP, .sub = pool_tls_keys, FIELD(conf_pool_t, tls.enabled),
     .help = "TLS to the servers, for requests and health checks alike; the servers' "
             "certificates are verified unless `verify: false`. Without it, plain HTTP."},
    {0},
};

static const conf_key_t cidr_keys[] = {
    {.name = "entry", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED, FIELD(conf_cidr_t, entry),
     .check = conf_check_cidr, .doc_example = "203.0.113.0/24",
     .help = "A CIDR prefix, or `@PATH` of a file of prefixes."},
    {0},
};

static const conf_key_t word_keys[] = {
    {.name = "word", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED, FIELD(conf_word_t, word),
     .check = conf_check_token, .doc_example = "GET", .help = "A request method."},
    {0},
};

static const conf_key_t shield_conn_keys[] = {
    {.name = "per_ip", .type = CONF_T_INT, .def = "0", .min = "0", .max = "1000000",
     FIELD(conf_shield_t, conn.per_ip),
     .help = "Most connections one client address may have open at once; more are closed at "
             "accept. 0: no limit."},
    {.name = "rate", .type = CONF_T_RATE, .def = "0/s", .max = "1000000/s",
     FIELD(conf_shield_t, conn.rate),
     .help = "Most new connections per client address, like `50/s`, over `burst`; more are "
             "closed at accept. `0/s`: no limit."},
    {.name = "burst", .type = CONF_T_INT, .def = "0", .min = "0", .max = "1000000",
     FIELD(conf_shield_t, conn.burst),
     .help = "New connections an address may open at once before `rate` applies; 0 is the "
             "rate's count (a rate of `50/s` allows bursts of 50)."},
    {.name = "max", .type = CONF_T_INT, .def = "0", .min = "0", .max = "100000000",
     FIELD(conf_shield_t, conn.max),
     .help = "Most connections open at once from all addresses together on the listeners of "
             "this policy; more are closed at accept. 0: no limit (`max_connections` per "
             "worker still applies)."},
    {.name = "table", .type = CONF_T_INT, .def = "100000", .min = "8", .max = "100000000",
     FIELD(conf_shield_t, conn.table),
     .help = "Client addresses tracked for `per_ip` and `rate`: a fixed table of about 32 bytes "
             "an entry, allocated at start; when full, the least recently seen address is "
             "forgotten. Make it larger than the addresses you expect at once."},
    {0},
};

static const conf_key_t shield_rate_keys[] = {
    {.name = "limit", .type = CONF_T_RATE, .flags = CONF_F_REQUIRED, .max = "1000000/s",
     FIELD(conf_shield_t, rate.limit), .doc_example = "100/s",
     .help = "Requests allowed per key, like `100/s` or `6000/m`, refilled continuously (a "
             "token bucket); a request over it gets 429 with `Retry-After`. Required when "
             "`rate` is present."},
    {.name = "burst", .type = CONF_T_INT, .def = "0", .min = "0", .max = "1000000",
     FIELD(conf_shield_t, rate.burst),
     .help = "Requests a key may make at once before `limit` applies (the bucket's size); 0 "
             "is the limit's count."},
    {.name = "key", .type = CONF_T_CUSTOM, .def = "source", FIELD(conf_shield_t, rate.key),
     .off2 = offsetof(conf_shield_t, rate.key_name), .parse = conf_parse_rate_key,
     .doc_type = "`source`, `header:NAME`, `cookie:NAME` or `route`",
     .expect = "source, header:NAME, cookie:NAME or route",
     .help = "What one bucket is for: the client's address (`source`), a request header's "
             "value (`header:NAME`, an API key say; requests without it share one bucket), a "
             "cookie's value (`cookie:NAME`), or the route (`route`: all clients of a route "
             "share its bucket, a cap on what reaches the pool)."},
    {.name = "table", .type = CONF_T_INT, .def = "100000", .min = "8", .max = "100000000",
     FIELD(conf_shield_t, rate.table),
     .help = "Buckets kept: a fixed table of about 32 bytes a bucket, allocated at start, so a "
             "flood from millions of keys cannot grow memory; when full, the least recently "
             "used bucket is forgotten (its key starts again with a full bucket)."},
    {0},
};

static const conf_key_t shield_limit_keys[] = {
    {.name = "body", .type = CONF_T_SIZE, .def = "0", .min = "0", .max = "1024g",
     FIELD(conf_shield_t, limits.body),
     .help = "Largest request body; a larger announced length gets 413 before anything is "
             "forwarded, a chunked body that grows past it is cut. 0: no limit. (The limits "
             "on the request line and head are the listener's `limits`, since they apply "
             "while the head is read, before a route is known.)"},
    {.name = "body_rate", .type = CONF_T_SIZE, .def = "0", .min = "0", .max = "1g",
     FIELD(conf_shield_t, limits.body_rate),
     .help = "Slowest request body, in bytes per second, averaged from the end of the head; "
             "an upload slower than this after its first 5 seconds gets 408 (the slow-POST "
             "form of slowloris). 0: only `timeouts.client` applies."},
    {0},
};

static const conf_key_t shield_waf_keys[] = {
    {.name = "rules", .type = CONF_T_STRING, .def = "/usr/share/modsecurity-crs",
     FIELD(conf_shield_t, waf.rules),
     .help = "The OWASP Core Rule Set directory (with `rules/`), as the Debian package "
             "`modsecurity-crs` installs it."},
    {.name = "paranoia", .type = CONF_T_INT, .def = "1", .min = "1", .max = "4",
     FIELD(conf_shield_t, waf.paranoia),
     .help = "CRS paranoia level: 1 blocks classic attacks with almost no false positives; "
             "each level up adds stricter rules and more false positives to tune away."},
    {.name = "mode", .type = CONF_T_ENUM, .def = "block", .values = waf_mode_values,
     FIELD(conf_shield_t, waf.mode),
     .help = "`block` answers 403 to a request whose anomaly score reaches the threshold; "
             "`detect` lets it through and still records the event (to try rules on real "
             "traffic first)."},
    {.name = "anomaly_threshold", .type = CONF_T_INT, .def = "5", .min = "1", .max = "10000",
     FIELD(conf_shield_t, waf.threshold),
     .help = "Inbound anomaly score at which a request is blocked (a critical rule scores 5, "
             "an error 4, a warning 3, a notice 2)."},
    {.name = "body", .type = CONF_T_SIZE, .def = "64k", .min = "0", .max = "1m",
     FIELD(conf_shield_t, waf.body),
     .help = "Request body bytes inspected; the request is held until they have arrived and "
             "the verdict is known. Bytes past it are not inspected."},
    {0},
};

static const conf_key_t shield_ban_keys[] = {
    {.name = "after", .type = CONF_T_INT, .def = "20", .min = "1", .max = "32",
     FIELD(conf_shield_t, ban.after),
     .help = "Security events (strikes: refused connections, 429s, 4xx from the limits, WAF "
             "matches) from one address within `within` that ban it."},
    {.name = "within", .type = CONF_T_DURATION, .def = "1m", .min = "1s", .max = "1d",
     FIELD(conf_shield_t, ban.within_ms), .help = "The sliding window strikes are counted in."},
    {.name = "for", .type = CONF_T_DURATION, .def = "10m", .min = "1s", .max = "365d",
     FIELD(conf_shield_t, ban.for_ms),
     .help = "How long a first ban lasts; each repeat offence doubles it, up to `max`."},
    {.name = "max", .type = CONF_T_DURATION, .def = "1d", .min = "1s", .max = "365d",
     FIELD(conf_shield_t, ban.max_ms), .help = "Longest ban. At least `for`."},
    {.name = "nftables", .type = CONF_T_BOOL, .def = "false", FIELD(conf_shield_t, ban.nftables),
     .help = "Also put banned addresses into an nftables set (table `inet` "
             "`security.nftables_table`) so the kernel drops their packets. Needs "
             "CAP_NET_ADMIN."},
    {0},
};

static const conf_key_t shield_keys[] = {
    {.name = "deny", .type = CONF_T_LIST, .max = "100000", .sub = cidr_keys, .noun = "entry",
     .shorthand = "entry", ARRAY(conf_shield_t, deny, ndeny, conf_cidr_t),
     .doc_example = "[ 203.0.113.0/24, \"@etc/deny.txt\" ]",
     .help = "Client addresses refused at accept: CIDR prefixes (`203.0.113.0/24`, "
             "`2001:db8::/32`, a bare address) and `@PATH` files of them (one a line, `#` "
             "comments), which are reloaded when they change. The longest matching prefix of "
             "`deny` and `allow` decides."},
    {.name = "allow", .type = CONF_T_LIST, .max = "100000", .sub = cidr_keys, .noun = "entry",
     .shorthand = "entry", ARRAY(conf_shield_t, allow, nallow, conf_cidr_t),
     .doc_example = "[ 10.0.0.0/8 ]",
     .help = "When present, only these addresses are accepted (an allow list); a longer `deny` "
             "prefix inside an allowed one still refuses. Same syntax as `deny`."},
    {.name = "methods", .type = CONF_T_LIST, .max = "100", .sub = word_keys, .noun = "method",
     .shorthand = "word", ARRAY(conf_shield_t, methods, nmethods, conf_word_t),
     .doc_example = "[ GET, HEAD, POST ]",
     .help = "Request methods allowed; others get 405. Without it, any method."},
    {.name = "connections", .type = CONF_T_MAP, .sub = shield_conn_keys,
     .help = "Connection-layer limits, checked at accept."},
    {.name = "rate", .type = CONF_T_MAP, .sub = shield_rate_keys,
     .help = "Request rate limit: a token bucket per key."},
    {.name = "limits", .type = CONF_T_MAP, .sub = shield_limit_keys,
     .help = "Request body size and speed."},
    {.name = "waf", .type = CONF_T_MAP, .sub = shield_waf_keys, FIELD(conf_shield_t, waf.enabled),
     .help = "Inspect requests with ModSecurity and the OWASP Core Rule Set, on the WAF threads "
             "(`security.waf_threads`). Without it, no content inspection."},
    {.name = "ban", .type = CONF_T_MAP, .sub = shield_ban_keys, FIELD(conf_shield_t, ban.enabled),
     .help = "Ban addresses that keep causing security events (fail2ban built in). Bans "
             "persist in `data_dir` across restarts. Without it, nobody is banned "
             "automatically."},
    {0},
};

static const conf_key_t security_keys[] = {
    {.name = "waf_threads", .type = CONF_T_INT, .def = "2", .min = "1", .max = "256",
     FIELD(conf_t, waf_threads),
     .help = "Threads that run WAF inspections, beside the workers, so requests the WAF does "
             "not inspect never wait behind it."},
    {.name = "waf_queue", .type = CONF_T_INT, .def = "1024", .min = "1", .max = "1000000",
     FIELD(conf_t, waf_queue),
     .help = "Requests waiting for a WAF thread; past it, requests to inspect get 503 (and are "
             "counted) rather than queueing without bound."},
    {.name = "events", .type = CONF_T_INT, .def = "1000", .min = "1", .max = "1000000",
     FIELD(conf_t, events_kept),
     .help = "Security events kept in memory for `GET /api/v1/security/events`."},
    {.name = "nftables_table", .type = CONF_T_STRING, .def = "surety", FIELD(conf_t, nft_table),
     .check = conf_check_name,
     .help = "Name of the nftables table (family `inet`) that `ban.nftables` fills."},
    {0},
};

/* ---- monitoring (issue 6): store, monitors, objectives, alerts, maintenance */
static const char *const store_sync_values[] = {"normal", "full", NULL};
static const char *const slo_kind_values[] = {"availability", "latency", NULL};

static const conf_key_t store_retention_keys[] = {
    {.name = "raw", .type = CONF_T_DURATION, .def = "2d", .min = "1h", .max = "3650d",
     FIELD(conf_t, store.retention.raw_ms),
     .help = "How long the 10-second samples of the request counters are kept."},
    {.name = "minute", .type = CONF_T_DURATION, .def = "14d", .min = "1d", .max = "3650d",
     FIELD(conf_t, store.retention.minute_ms),
     .help = "How long the per-minute roll-ups are kept."},
    {.name = "hour", .type = CONF_T_DURATION, .def = "90d", .min = "1d", .max = "3650d",
     FIELD(conf_t, store.retention.hour_ms),
     .help = "How long the per-hour roll-ups are kept."},
    {.name = "day", .type = CONF_T_DURATION, .def = "1095d", .min = "1d", .max = "36500d",
     FIELD(conf_t, store.retention.day_ms),
     .help = "How long the per-day roll-ups are kept (reports over years read them)."},
    {.name = "probes", .type = CONF_T_DURATION, .def = "14d", .min = "1h", .max = "3650d",
     FIELD(conf_t, store.retention.probes_ms),
     .help = "How long the result of every probe is kept."},
    {.name = "events", .type = CONF_T_DURATION, .def = "400d", .min = "1d", .max = "36500d",
     FIELD(conf_t, store.retention.events_ms),
     .help = "How long events (monitor state changes, alerts firing and resolved, "
             "failovers, slow servers, saturation) are kept."},
    {.name = "deliveries", .type = CONF_T_DURATION, .def = "30d", .min = "1d", .max = "3650d",
     FIELD(conf_t, store.retention.deliveries_ms),
     .help = "How long the log of alert deliveries (each webhook call and email) is kept."},
    {0},
};

static const conf_key_t store_keys[] = {
    {.name = "sqlite", .type = CONF_T_STRING, FIELD(conf_t, store.sqlite),
     .doc_example = "var/surety.db",
     .help = "Path of the SQLite database file (WAL mode; the `-wal` and `-shm` files sit "
             "beside it). Without it, `surety.db` in `data_dir` (`var/surety.db` by default)."},
    {.name = "sync", .type = CONF_T_ENUM, .def = "normal", .values = store_sync_values,
     FIELD(conf_t, store.sync),
     .help = "When commits reach the disk: `normal` syncs the WAL at checkpoints only (a "
             "crash of Surety loses nothing; a power loss may lose the last commits), `full` "
             "syncs at every commit."},
    {.name = "queue", .type = CONF_T_INT, .def = "65536", .min = "16", .max = "1048576",
     FIELD(conf_t, store.queue),
     .help = "Writes waiting for the store thread; when it is full, new writes are refused "
             "and counted (`surety_store_dropped_total`), so no other thread ever waits on "
             "the disk."},
    {.name = "retention", .type = CONF_T_MAP, .sub = store_retention_keys,
     .help = "How long each kind of data is kept; older rows are deleted."},
    {0},
};

static const conf_key_t monitor_keys[] = {
    {.name = "http", .type = CONF_T_STRING, FIELD(conf_monitor_t, http),
     .check = conf_check_http_url, .doc_example = "https://www.example.com/healthz",
     .help = "Probe this URL (`http://` or `https://`) with a GET request. A monitor has "
             "exactly one of `http`, `tcp` and `dns`."},
    {.name = "tcp", .type = CONF_T_STRING, FIELD(conf_monitor_t, tcp),
     .check = conf_check_host_port, .doc_example = "db.example.com:5432",
     .help = "Probe by opening a TCP connection to `host:port` (a name, an IPv4 address, or "
             "an IPv6 address in brackets)."},
    {.name = "dns", .type = CONF_T_STRING, FIELD(conf_monitor_t, dns),
     .check = conf_check_dns_name, .doc_example = "www.example.com",
     .help = "Probe by resolving this host name with the system's resolver."},
    {.name = "expect", .type = CONF_T_INT, .def = "200", .min = "100", .max = "599",
     FIELD(conf_monitor_t, expect),
     .help = "The response status that passes (`http` only)."},
    {.name = "body", .type = CONF_T_STRING, FIELD(conf_monitor_t, body), .doc_example = "ok",
     .help = "Text the response body must contain to pass (`http` only)."},
    {.name = "latency", .type = CONF_T_DURATION, .min = "1ms", .max = "1h",
     FIELD(conf_monitor_t, latency_ms), .doc_example = "500ms",
     .help = "A probe slower than this fails, even if it otherwise passed. Without it, only "
             "`timeout` limits the time."},
    {.name = "cert_days", .type = CONF_T_INT, .min = "1", .max = "3650",
     FIELD(conf_monitor_t, cert_days), .doc_example = "14",
     .help = "Fail when the server's certificate expires in fewer days than this (`https://` "
             "URLs only). Without it, only an invalid certificate fails."},
    {.name = "interval", .type = CONF_T_DURATION, .def = "30s", .min = "1s", .max = "1d",
     FIELD(conf_monitor_t, interval_ms), .help = "Time between two probes."},
    {.name = "timeout", .type = CONF_T_DURATION, .def = "5s", .min = "1ms", .max = "1h",
     FIELD(conf_monitor_t, timeout_ms),
     .help = "Longest a probe may take before it fails. Must be less than `interval`; "
             "unwritten with an `interval` of 5s or less, it is half the interval."},
    {.name = "down_after", .type = CONF_T_INT, .def = "2", .min = "1", .max = "100",
     FIELD(conf_monitor_t, down_after),
     .help = "Failed probes in a row before the monitor is down, so one lost probe does not "
             "page anyone."},
    {.name = "up_after", .type = CONF_T_INT, .def = "2", .min = "1", .max = "100",
     FIELD(conf_monitor_t, up_after),
     .help = "Successful probes in a row before a down monitor is up again."},
    {0},
};

static const conf_key_t alert_item_keys[] = {
    {.name = "alert", .type = CONF_T_REF, .flags = CONF_F_REQUIRED, .ref = "alerts",
     FIELD(conf_ref_item_t, index), .doc_example = "ops", .help = "The name of an alert."},
    {0},
};

static const conf_key_t objective_item_keys[] = {
    {.name = "objective", .type = CONF_T_REF, .flags = CONF_F_REQUIRED, .ref = "objectives",
     FIELD(conf_ref_item_t, index), .doc_example = "availability",
     .help = "The name of an objective."},
    {0},
};

static const conf_key_t objective_keys[] = {
    {.name = "source", .type = CONF_T_CUSTOM, .flags = CONF_F_REQUIRED,
     FIELD(conf_objective_t, source), .parse = conf_parse_slo_source,
     .doc_type = "`listener:NAME`, `route:LISTENER/ROUTE` or `monitor:NAME`",
     .expect = "listener:NAME, route:LISTENER/ROUTE or monitor:NAME",
     .doc_example = "listener:web",
     .help = "What is measured: the requests of a listener (`listener:web`), of one route "
             "of a listener (`route:web/api`, by the route's `name`), or the probes of a "
             "monitor (`monitor:homepage`). The name must exist in this file."},
    {.name = "kind", .type = CONF_T_ENUM, .flags = CONF_F_REQUIRED, .values = slo_kind_values,
     FIELD(conf_objective_t, kind), .doc_example = "availability",
     .help = "`availability`: a request is good unless its status is 5xx (a probe: when it "
             "passes); `latency`: a request (a probe) is good when it takes at most "
             "`threshold`."},
    {.name = "threshold", .type = CONF_T_DURATION, .min = "1ms", .max = "1h",
     FIELD(conf_objective_t, threshold_ms), .doc_example = "300ms",
     .help = "The latency a good request stays within; required for `latency`, refused for "
             "`availability`. For a listener or route it must be a bound of the gateway's "
             "latency histogram (1ms 5ms 10ms 25ms 50ms 100ms 200ms 250ms 300ms 500ms 750ms "
             "1s 2500ms 5s 10s), so the objective counts requests exactly; for a monitor, "
             "any duration."},
    {.name = "target", .type = CONF_T_PERCENT, .flags = CONF_F_REQUIRED, .min = "0.0001%",
     .max = "99.9999%", FIELD(conf_objective_t, target_ppm), .doc_example = "99.9%",
     .help = "The share of good requests (probes) promised over `window`. The error budget "
             "is the rest: 99.9% over 30 days allows 0.1% bad, 43.2 minutes' worth."},
    {.name = "window", .type = CONF_T_DURATION, .def = "30d", .min = "1d", .max = "90d",
     FIELD(conf_objective_t, window_ms),
     .help = "The rolling window the objective is measured over. The burn-rate alerts scale "
             "with it (docs/slo.md)."},
    {.name = "maintenance_counts", .type = CONF_T_BOOL, .def = "false",
     FIELD(conf_objective_t, maintenance_counts),
     .help = "Whether requests during a maintenance window of this objective count against "
             "it. By default they are left out of the objective (and its alerts are silenced "
             "either way)."},
    {.name = "alerts", .type = CONF_T_LIST, .min = "1", .max = "100", .sub = alert_item_keys,
     .noun = "item", .shorthand = "alert",
     ARRAY(conf_objective_t, alerts, nalerts, conf_ref_item_t), .doc_example = "[ ops ]",
     .help = "The alerts (keys of `alerts`) notified when the objective's error budget burns "
             "too fast. Without it, every alert."},
    {0},
};

static const conf_key_t email_to_keys[] = {
    {.name = "address", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED,
     FIELD(conf_text_t, word), .check = conf_check_email, .doc_example = "ops@example.com",
     .help = "An email address."},
    {0},
};

static const conf_key_t alert_email_keys[] = {
    {.name = "to", .type = CONF_T_LIST, .flags = CONF_F_REQUIRED, .min = "1", .max = "100",
     .sub = email_to_keys, .noun = "recipient", .shorthand = "address",
     ARRAY(conf_alert_t, email.to, email.nto, conf_text_t),
     .doc_example = "[ ops@example.com ]", .help = "Recipients."},
    {.name = "from", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED,
     FIELD(conf_alert_t, email.from), .check = conf_check_email,
     .doc_example = "surety@example.com", .help = "The sender address."},
    {.name = "smtp", .type = CONF_T_STRING, .flags = CONF_F_REQUIRED,
     FIELD(conf_alert_t, email.smtp), .check = conf_check_smtp_url,
     .doc_example = "smtp://127.0.0.1:25",
     .help = "The mail server: `smtp://host[:port]` (STARTTLS when the server offers it) or "
             "`smtps://host[:port]` (TLS from the start)."},
    {.name = "username", .type = CONF_T_STRING, FIELD(conf_alert_t, email.username),
     .doc_example = "surety", .help = "User name for SMTP authentication; without it, none."},
    {.name = "password_file", .type = CONF_T_STRING, FIELD(conf_alert_t, email.password_file),
     .doc_example = "etc/smtp.password",
     .help = "File holding the SMTP password (with `username`); it must be a readable "
             "regular file when the configuration is checked."},
    {0},
};

static const conf_key_t alert_keys[] = {
    {.name = "webhook", .type = CONF_T_STRING, FIELD(conf_alert_t, webhook),
     .check = conf_check_http_url, .doc_example = "https://hooks.example.com/surety",
     .help = "POST a JSON notification to this URL (`http://` or `https://`), signed with "
             "`secret_file`. An alert has exactly one of `webhook` and `email`."},
    {.name = "secret_file", .type = CONF_T_STRING, FIELD(conf_alert_t, secret_file),
     .doc_example = "etc/hook.secret",
     .help = "File holding the key of the HMAC-SHA256 signature of each webhook call; "
             "required with `webhook`; it must be a readable regular file when the "
             "configuration is checked."},
    {.name = "email", .type = CONF_T_MAP, .sub = alert_email_keys,
     FIELD(conf_alert_t, email_enabled), .help = "Send notifications by email."},
    {.name = "repeat", .type = CONF_T_DURATION, .def = "4h", .min = "1m", .max = "7d",
     FIELD(conf_alert_t, repeat_ms),
     .help = "Least time between two notifications of the same firing alert: one that keeps "
             "firing is repeated this often, never more."},
    {.name = "group_wait", .type = CONF_T_DURATION, .def = "30s", .min = "0", .max = "1h",
     FIELD(conf_alert_t, group_wait_ms),
     .help = "How long a first firing waits for others to send them in one notification."},
    {0},
};

static const conf_key_t maintenance_keys[] = {
    {.name = "start", .type = CONF_T_CUSTOM, .flags = CONF_F_REQUIRED,
     FIELD(conf_maintenance_t, start_s), .parse = conf_parse_timestamp,
     .doc_type = "RFC 3339 UTC time", .expect = "a UTC time like 2026-12-01T02:00:00Z",
     .doc_example = "\"2026-12-01T02:00:00Z\"", .help = "When the window opens (UTC)."},
    {.name = "end", .type = CONF_T_CUSTOM, .flags = CONF_F_REQUIRED,
     FIELD(conf_maintenance_t, end_s), .parse = conf_parse_timestamp,
     .doc_type = "RFC 3339 UTC time", .expect = "a UTC time like 2026-12-01T02:00:00Z",
     .doc_example = "\"2026-12-01T03:00:00Z\"",
     .help = "When the window closes (UTC); after `start`."},
    {.name = "objectives", .type = CONF_T_LIST, .min = "1", .max = "1000",
     .sub = objective_item_keys, .noun = "item", .shorthand = "objective",
     ARRAY(conf_maintenance_t, objectives, nobjectives, conf_ref_item_t),
     .doc_example = "[ availability ]",
     .help = "The objectives (keys of `objectives`) whose alerts the window silences. Without "
             "it, every objective."},
    {0},
};

static const conf_key_t top_keys[] = {
    {.name = "workers", .type = CONF_T_INT, .flags = CONF_F_AUTO, .def = "auto", .min = "1",
     .max = "256", FIELD(conf_t, workers),
     .help = "Number of worker threads, each with its own event loop and its own listening "
             "sockets. `auto` is one per online CPU (at most 256)."},
    {.name = "max_connections", .type = CONF_T_INT, .def = "10000", .min = "1",
     .max = "1000000", FIELD(conf_t, max_connections),
     .help = "Most client connections open at once, per worker."},
    {.name = "buffer_size", .type = CONF_T_SIZE, .def = "16k", .min = "1k", .max = "1m",
     FIELD(conf_t, buffer_size),
     .help = "Size of the buffer for each direction of each connection (client to server, "
             "server to client); memory use grows with it times `max_connections`."},
    {.name = "drain_timeout", .type = CONF_T_DURATION, .def = "30s", .min = "0", .max = "1h",
     FIELD(conf_t, drain_timeout_ms),
     .help = "On SIGTERM, how long in-flight requests may take to finish before Surety stops "
             "anyway; 0 stops at once."},
    {.name = "admin", .type = CONF_T_MAP, .sub = admin_keys,
     .help = "The admin listener: metrics, health and the API."},
    {.name = "log", .type = CONF_T_MAP, .sub = log_keys, .help = "The access and security logs."},
    {.name = "data_dir", .type = CONF_T_STRING, .def = "var", FIELD(conf_t, data_dir),
     .help = "Directory for state kept across restarts (the bans, in `bans`); created when "
             "missing."},
    {.name = "security", .type = CONF_T_MAP, .sub = security_keys,
     .help = "Settings shared by every `shield` policy."},
    {.name = "listeners", .type = CONF_T_NAMED, .flags = CONF_F_REQUIRED, .min = "1",
     .max = "1000", .sub = listener_keys, .noun = "listener", .check = conf_check_name,
     .finish = conf_finish_listener, ARRAY(conf_t, listeners, nlisteners, conf_listener_t),
     .name_off = offsetof(conf_listener_t, name),
     .doc_example = "web",
     .help = "Where clients connect, each under a name of 1 to 64 of `A-Z a-z 0-9 _ . -`. At "
             "least one is required."},
    {.name = "pools", .type = CONF_T_NAMED, .max = "10000", .sub = pool_keys, .noun = "pool",
     .check = conf_check_name, .finish = conf_finish_pool,
     ARRAY(conf_t, pools, npools, conf_pool_t),
     .name_off = offsetof(conf_pool_t, name), .doc_example = "site",
     .help = "Groups of servers that routes send requests to, each under a name of 1 to 64 of "
             "`A-Z a-z 0-9 _ . -`."},
    LATER("tls", "TLS settings shared by listeners."),
    {.name = "shield", .type = CONF_T_NAMED, .max = "1000", .sub = shield_keys, .noun = "shield",
     .check = conf_check_name, .finish = conf_finish_shield,
     ARRAY(conf_t, shields, nshields, conf_shield_t), .name_off = offsetof(conf_shield_t, name),
     .doc_example = "default",
     .help = "Security policies, each under a name of 1 to 64 of `A-Z a-z 0-9 _ . -`, used "
             "by listeners and routes (`shield: NAME`). See docs/security.md."},
    {.name = "store", .type = CONF_T_MAP, .sub = store_keys,
     .help = "The embedded store of the control plane: request statistics, probe results, "
             "events and alert deliveries."},
    {.name = "monitors", .type = CONF_T_NAMED, .max = "10000", .sub = monitor_keys,
     .noun = "monitor", .check = conf_check_name, .finish = conf_finish_monitor,
     ARRAY(conf_t, monitors, nmonitors, conf_monitor_t),
     .name_off = offsetof(conf_monitor_t, name), .doc_example = "homepage",
     .help = "Active probes (HTTP, TCP, DNS) run by the control thread, each under a name of "
             "1 to 64 of `A-Z a-z 0-9 _ . -`."},
    {.name = "objectives", .type = CONF_T_NAMED, .max = "1000", .sub = objective_keys,
     .noun = "objective", .check = conf_check_name, .finish = conf_finish_objective,
     ARRAY(conf_t, objectives, nobjectives, conf_objective_t),
     .name_off = offsetof(conf_objective_t, name), .doc_example = "availability",
     .help = "Service level objectives, each under a name of 1 to 64 of `A-Z a-z 0-9 _ . -`: "
             "a target share of good requests over a rolling window, its error budget, and "
             "burn-rate alerts (docs/slo.md)."},
    {.name = "alerts", .type = CONF_T_NAMED, .max = "100", .sub = alert_keys, .noun = "alert",
     .check = conf_check_name, .finish = conf_finish_alert,
     ARRAY(conf_t, alerts, nalerts, conf_alert_t), .name_off = offsetof(conf_alert_t, name),
     .doc_example = "ops",
     .help = "Where notifications of objectives burning their error budget go (a webhook or "
             "email), each under a name of 1 to 64 of `A-Z a-z 0-9 _ . -`."},
    {.name = "maintenance", .type = CONF_T_NAMED, .max = "1000", .sub = maintenance_keys,
     .noun = "maintenance window", .check = conf_check_name,
     .finish = conf_finish_maintenance,
     ARRAY(conf_t, maintenance, nmaintenance, conf_maintenance_t),
     .name_off = offsetof(conf_maintenance_t, name), .doc_example = "upgrade",
     .help = "Planned maintenance windows, each under a name of 1 to 64 of "
             "`A-Z a-z 0-9 _ . -`: they silence the alerts of their objectives, are reported, "
             "and (unless `maintenance_counts`) leave their requests out of the objectives."},
    {0},
};

/* clang-format on */

const conf_key_t conf_root = {
    .name = "",
    .type = CONF_T_MAP,
    .sub = top_keys,
    .finish = conf_finish_root,
    .help = "The configuration file.",
};

const conf_key_t *conf_key_find(const conf_key_t *keys, const char *name, size_t len)
{
    for (const conf_key_t *k = keys; k->name; k++)
        if (strlen(k->name) == len && memcmp(k->name, name, len) == 0)
            return k;
    return NULL;
}
