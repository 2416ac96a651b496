/* Unit tests of src/conf: a good file gives the expected structs (and the
 * table's defaults), each kind of error gives its exact FILE:LINE:COL
 * message, all errors of a file are reported in document order, JSON is
 * accepted, the key table is consistent, and docs/configuration.md is what
 * the table generates. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf_int.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Loads text as name; returns what was written to errs (malloc'd). */
static char *load_as(const char *name, const char *text, size_t len, conf_t **ret)
{
    char *out = NULL;
    size_t outlen = 0;
    FILE *errs = open_memstream(&out, &outlen);
    assert_non_null(errs);
    *ret = conf_load_string(name, text, len, errs);
    fclose(errs);
    return out;
}

static char *load(const char *text, size_t len, conf_t **ret)
{
    return load_as("t.yaml", text, len, ret);
}

static conf_t *load_ok(const char *text)
{
    conf_t *c;
    char *errs = load(text, strlen(text), &c);
    if (!c || errs[0])
        fail_msg("expected a good config, got:\n%s", errs);
    free(errs);
    return c;
}

/* True when loading text fails with exactly the messages want. */
static bool errors_are(const char *what, const char *text, const char *want)
{
    conf_t *c;
    char *errs = load(text, strlen(text), &c);
    bool ok = !c && strcmp(errs, want) == 0;
    if (!ok)
        print_error("%s:\nwant:\n%sgot%s:\n%s", what, want, c ? " (and it loaded)" : "", errs);
    conf_unref(c);
    free(errs);
    return ok;
}

static void expect_errors(const char *what, const char *text, const char *want)
{
    if (!errors_are(what, text, want))
        fail();
}

static uint16_t port_of(const sock_addr_t *a)
{
    return (uint16_t)sock_addr_port(a);
}

/* ---- good files */

/* The monitoring keys of the documented example. */
static void check_doc_example_monitoring(const conf_t *c)
{
    const uint64_t day = 86400000;
    assert_string_equal(c->store.sqlite, "var/surety.db");
    assert_int_equal(c->store.sync, CONF_STORE_SYNC_NORMAL);
    assert_int_equal(c->store.queue, 65536);
    assert_int_equal(c->store.retention.raw_ms, 2 * day);
    assert_int_equal(c->store.retention.minute_ms, 14 * day);
    assert_int_equal(c->store.retention.hour_ms, 90 * day);
    assert_int_equal(c->store.retention.day_ms, 1095 * day);
    assert_int_equal(c->store.retention.probes_ms, 14 * day);
    assert_int_equal(c->store.retention.events_ms, 400 * day);
    assert_int_equal(c->store.retention.deliveries_ms, 30 * day);

    assert_int_equal(c->nmonitors, 3);
    const conf_monitor_t *hp = &c->monitors[0], *db = &c->monitors[1], *dns = &c->monitors[2];
    assert_string_equal(hp->name, "homepage");
    assert_int_equal(hp->kind, CONF_MONITOR_HTTP);
    assert_string_equal(hp->target, "https://www.example.com/");
    assert_true(hp->https);
    assert_int_equal(hp->expect, 200);
    assert_string_equal(hp->body, "Welcome");
    assert_int_equal(hp->latency_ms, 2000);
    assert_int_equal(hp->cert_days, 14);
    assert_int_equal(hp->interval_ms, 30000);
    assert_int_equal(hp->timeout_ms, 5000);
    assert_int_equal(hp->down_after, 2);
    assert_int_equal(hp->up_after, 2);
    assert_int_equal(db->kind, CONF_MONITOR_TCP);
    assert_string_equal(db->target, "db.example.com:5432");
    assert_int_equal(db->interval_ms, 10000);
    assert_int_equal(db->latency_ms, 0);
    assert_int_equal(db->cert_days, 0);
    assert_int_equal(dns->kind, CONF_MONITOR_DNS);
    assert_string_equal(dns->target, "www.example.com");

    assert_int_equal(c->nobjectives, 3);
    const conf_objective_t *av = &c->objectives[0], *lat = &c->objectives[1];
    const conf_objective_t *mon = &c->objectives[2];
    assert_string_equal(av->name, "availability");
    assert_int_equal(av->source_kind, CONF_SLO_SOURCE_LISTENER);
    assert_int_equal(av->listener, 0);
    assert_int_equal(av->route, SIZE_MAX);
    assert_int_equal(av->monitor, SIZE_MAX);
    assert_int_equal(av->kind, CONF_SLO_AVAILABILITY);
    assert_int_equal(av->threshold_ms, 0);
    assert_int_equal(av->target_ppm, 999000);
    assert_true(av->target > 0.99899999 && av->target < 0.99900001);
    assert_int_equal(av->window_ms, 30 * day);
    assert_false(av->maintenance_counts);
    assert_false(av->alerts_all);
    assert_int_equal(av->nalerts, 1);
    assert_int_equal(av->alerts[0].index, 0);
    assert_int_equal(lat->source_kind, CONF_SLO_SOURCE_ROUTE);
    assert_int_equal(lat->listener, 0);
    assert_int_equal(lat->route, 0);
    assert_int_equal(lat->kind, CONF_SLO_LATENCY);
    assert_int_equal(lat->threshold_ms, 300);
    assert_int_equal(lat->window_ms, 7 * day);
    assert_true(lat->alerts_all);
    assert_int_equal(mon->source_kind, CONF_SLO_SOURCE_MONITOR);
    assert_int_equal(mon->monitor, 0);
    assert_int_equal(mon->listener, SIZE_MAX);

    assert_int_equal(c->nalerts, 1);
    const conf_alert_t *ops = &c->alerts[0];
    assert_int_equal(ops->kind, CONF_ALERT_EMAIL);
    assert_true(ops->email_enabled);
    assert_null(ops->webhook);
    assert_int_equal(ops->email.nto, 1);
    assert_string_equal(ops->email.to[0].word, "ops@example.com");
    assert_string_equal(ops->email.from, "surety@example.com");
    assert_string_equal(ops->email.smtp, "smtp://127.0.0.1:25");
    assert_null(ops->email.username);
    assert_int_equal(ops->repeat_ms, 4 * 3600000);
    assert_int_equal(ops->group_wait_ms, 30000);

    assert_int_equal(c->nmaintenance, 1);
    const conf_maintenance_t *w = &c->maintenance[0];
    assert_int_equal(w->start_s, 1796090400); /* date -d 2026-12-01T02:00:00Z +%s */
    assert_int_equal(w->end_s, 1796090400 + 3600);
    assert_false(w->objectives_all);
    assert_int_equal(w->nobjectives, 1);
    assert_int_equal(w->objectives[0].index, 0);
}

static void test_doc_example_loads_with_every_value(void **state)
{
    (void)state;
    conf_t *c = load_ok(conf_doc_example);

    assert_string_equal(c->path, "t.yaml");
    assert_true(c->workers >= 1 && c->workers <= 256);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->buffer_size, 16384);
    assert_int_equal(c->drain_timeout_ms, 30000);
    assert_true(c->admin_enabled);
    assert_string_equal(c->admin_listen, "127.0.0.1:9090");
    assert_int_equal(port_of(&c->admin_addr), 9090);
    assert_string_equal(c->access_log, "var/access.log");
    assert_int_equal(c->client_ip, CONF_CLIENT_IP_TRUNCATE);
    assert_false(c->log_query);

    assert_int_equal(c->nlisteners, 1);
    const conf_listener_t *l = &c->listeners[0];
    assert_string_equal(l->name, "web");
    assert_string_equal(l->listen, "0.0.0.0:8080");
    assert_int_equal(l->addr.ss.ss_family, AF_INET);
    assert_int_equal(port_of(&l->addr), 8080);
    assert_int_equal(l->header_timeout_ms, 10000);
    assert_int_equal(l->idle_timeout_ms, 60000);
    assert_int_equal(l->client_timeout_ms, 60000);
    assert_int_equal(l->max_uri, 8192);
    assert_int_equal(l->max_headers, 100);
    assert_int_equal(l->max_header_bytes, 32768);
    assert_int_equal(l->nroutes, 3);
    assert_string_equal(l->routes[0].name, "api");
    assert_string_equal(l->routes[0].host, "api.example.com");
    assert_string_equal(l->routes[0].path, "/v1/");
    assert_string_equal(l->routes[1].name, "assets");
    assert_string_equal(l->routes[1].host, "*.example.com");
    assert_string_equal(l->routes[2].name, "2");
    assert_null(l->routes[2].host);
    assert_null(l->routes[2].path);

    assert_int_equal(c->npools, 3);
    const conf_pool_t *site = &c->pools[0], *api = &c->pools[1], *dr = &c->pools[2];
    assert_string_equal(site->name, "site");
    assert_string_equal(api->name, "api");
    assert_int_equal(l->routes[0].pool, 1);
    assert_int_equal(l->routes[1].pool, 0);
    assert_int_equal(l->routes[2].pool, 0);
    assert_int_equal(site->balance, CONF_BALANCE_ROUND_ROBIN);
    assert_int_equal(site->nservers, 2);
    assert_string_equal(site->servers[0].address, "127.0.0.1:9001");
    assert_int_equal(port_of(&site->servers[0].addr), 9001);
    assert_int_equal(site->servers[0].weight, 1);
    assert_string_equal(site->servers[1].address, "127.0.0.1:9002");
    assert_int_equal(site->servers[1].weight, 3);
    assert_int_equal(site->connect_timeout_ms, 3000);
    assert_int_equal(site->response_timeout_ms, 30000);
    assert_int_equal(site->keepalive_timeout_ms, 60000);
    assert_int_equal(site->keepalive_max, 256);
    assert_int_equal(api->nservers, 1);
    assert_string_equal(api->servers[0].address, "[::1]:9101");
    assert_int_equal(api->servers[0].addr.ss.ss_family, AF_INET6);

    assert_int_equal(site->slow_start_ms, 0);
    assert_string_equal(dr->name, "site-dr");
    assert_int_equal(site->backup, 2);
    assert_int_equal(site->failover_min_healthy, 1);
    assert_int_equal(site->failback_after_ms, 30000);
    assert_int_equal(site->health.type, CONF_HEALTH_HTTP);
    assert_string_equal(site->health.method, "GET");
    assert_string_equal(site->health.path, "/healthz");
    assert_string_equal(site->health.host, "www.example.com");
    assert_int_equal(site->health.expect_min, 200);
    assert_int_equal(site->health.expect_max, 399);
    assert_string_equal(site->health.body, "ok");
    assert_int_equal(site->health.interval_ms, 2000);
    assert_int_equal(site->health.timeout_ms, 1000);
    assert_int_equal(site->health.rise, 2);
    assert_int_equal(site->health.fall, 3);
    assert_int_equal(site->outlier.consecutive_errors, 5);
    assert_int_equal(site->outlier.ejection_ms, 30000);
    assert_int_equal(site->outlier.max_ejection_ms, 300000);
    assert_int_equal(site->outlier.max_ejected_ppm, 500000);
    assert_int_equal(site->retry.attempts, 2);
    assert_int_equal(site->retry.budget_ppm, 200000);
    assert_int_equal(site->retry.budget_min, 3);
    assert_int_equal(site->retry.on, CONF_RETRY_CONNECT | CONF_RETRY_RESET | CONF_RETRY_502 |
                                         CONF_RETRY_503 | CONF_RETRY_504);
    assert_false(site->retry.non_idempotent);
    assert_int_equal(site->retry.body, 65536);
    assert_int_equal(api->balance, CONF_BALANCE_HASH);
    assert_int_equal(api->hash, CONF_HASH_HEADER);
    assert_string_equal(api->hash_name, "X-User");
    assert_int_equal(api->health.type, CONF_HEALTH_TCP);
    assert_int_equal(api->backup, SIZE_MAX);
    assert_int_equal(dr->backup, SIZE_MAX);
    assert_int_equal(dr->health.type, CONF_HEALTH_NONE);
    check_doc_example_monitoring(c);
    conf_unref(c);
}

/* The smallest good file; error cases put their mistake above it. */
#define BASE                                                                                       \
    "listeners:\n"                                                                                 \
    "  web:\n"                                                                                     \
    "    listen: 127.0.0.1:8080\n"                                                                 \
    "    routes: [ { pool: site } ]\n"                                                             \
    "pools:\n"                                                                                     \
    "  site:\n"                                                                                    \
    "    servers: [ 127.0.0.1:9001 ]\n"
static const char minimal[] = BASE;

static void test_minimal_file_gets_the_documented_defaults(void **state)
{
    (void)state;
    conf_t *c = load_ok(minimal);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    assert_int_equal(c->workers, ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->buffer_size, 16 * 1024);
    assert_int_equal(c->drain_timeout_ms, 30 * 1000);
    assert_true(c->admin_enabled);
    assert_string_equal(c->admin_listen, "127.0.0.1:9090");
    assert_string_equal(c->access_log, "-");
    assert_int_equal(c->client_ip, CONF_CLIENT_IP_TRUNCATE);
    assert_false(c->log_query);
    const conf_listener_t *l = &c->listeners[0];
    assert_int_equal(l->header_timeout_ms, 10 * 1000);
    assert_int_equal(l->idle_timeout_ms, 60 * 1000);
    assert_int_equal(l->client_timeout_ms, 60 * 1000);
    assert_int_equal(l->max_uri, 8 * 1024);
    assert_int_equal(l->max_headers, 100);
    assert_int_equal(l->max_header_bytes, 32 * 1024);
    assert_string_equal(l->routes[0].name, "0");
    assert_int_equal(l->routes[0].pool, 0);
    const conf_pool_t *p = &c->pools[0];
    assert_int_equal(p->balance, CONF_BALANCE_ROUND_ROBIN);
    assert_int_equal(p->servers[0].weight, 1);
    assert_int_equal(p->connect_timeout_ms, 3 * 1000);
    assert_int_equal(p->response_timeout_ms, 30 * 1000);
    assert_int_equal(p->keepalive_timeout_ms, 60 * 1000);
    assert_int_equal(p->keepalive_max, 256);

    /* Availability: everything at its default, health checks off. */
    assert_int_equal(p->hash, CONF_HASH_SOURCE);
    assert_null(p->hash_name);
    assert_int_equal(p->slow_start_ms, 0);
    assert_int_equal(p->backup, SIZE_MAX);
    assert_int_equal(p->failover_min_healthy, 1);
    assert_int_equal(p->failback_after_ms, 30 * 1000);
    assert_int_equal(p->health.type, CONF_HEALTH_NONE);
    assert_string_equal(p->health.method, "GET");
    assert_string_equal(p->health.path, "/");
    assert_null(p->health.host);
    assert_int_equal(p->health.expect_min, 200);
    assert_int_equal(p->health.expect_max, 399);
    assert_null(p->health.body);
    assert_int_equal(p->health.interval_ms, 2 * 1000);
    assert_int_equal(p->health.timeout_ms, 1000);
    assert_int_equal(p->health.rise, 2);
    assert_int_equal(p->health.fall, 3);
    assert_int_equal(p->outlier.consecutive_errors, 5);
    assert_int_equal(p->outlier.ejection_ms, 30 * 1000);
    assert_int_equal(p->outlier.max_ejection_ms, 5 * 60 * 1000);
    assert_int_equal(p->outlier.max_ejected_ppm, 500000);
    assert_int_equal(p->retry.attempts, 2);
    assert_int_equal(p->retry.budget_ppm, 200000);
    assert_int_equal(p->retry.budget_min, 3);
    assert_int_equal(p->retry.on, CONF_RETRY_CONNECT | CONF_RETRY_RESET | CONF_RETRY_502 |
                                      CONF_RETRY_503 | CONF_RETRY_504);
    assert_false(p->retry.non_idempotent);
    assert_int_equal(p->retry.body, 64 * 1024);

    /* Monitoring: none configured; the store at its defaults. */
    assert_string_equal(c->store.sqlite, "var/surety.db");
    assert_int_equal(c->store.sync, CONF_STORE_SYNC_NORMAL);
    assert_int_equal(c->store.queue, 65536);
    assert_int_equal(c->store.retention.raw_ms, 2 * 86400000ull);
    assert_int_equal(c->store.retention.deliveries_ms, 30 * 86400000ull);
    assert_int_equal(c->nmonitors, 0);
    assert_int_equal(c->nobjectives, 0);
    assert_int_equal(c->nalerts, 0);
    assert_int_equal(c->nmaintenance, 0);
    conf_unref(c);
}

/* A listener in front of pool site; POOLS follows "pools:". */
#define LISTEN_SITE "listeners: { web: { listen: \":80\", routes: [ { pool: site } ] } }\n"
/* A listener with a route named api and a default route named 1: what
 * the monitoring cases name. */
#define MON_BASE                                                                                   \
    "listeners:\n"                                                                                 \
    "  web:\n"                                                                                     \
    "    listen: 127.0.0.1:8080\n"                                                                 \
    "    routes: [ { name: api, path: /api/, pool: site }, { pool: site } ]\n"                     \
    "pools:\n"                                                                                     \
    "  site:\n"                                                                                    \
    "    servers: [ 127.0.0.1:9001 ]\n"

static void test_balance_values_and_hash_keys_are_stored(void **state)
{
    (void)state;
    conf_t *c =
        load_ok(LISTEN_SITE "pools:\n"
                            "  site: { balance: least-conn, servers: [ \":81\" ] }\n"
                            "  b: { balance: p2c-ewma, servers: [ \":81\" ] }\n"
                            "  c: { balance: round-robin, servers: [ \":81\" ] }\n"
                            "  d: { balance: hash, hash: source, servers: [ \":81\" ] }\n"
                            "  e: { balance: hash, hash: \"cookie:sid\", servers: [ \":81\" ] }\n"
                            "  f: { balance: hash, hash: \"header:X-Tenant-Id\",\n"
                            "       servers: [ \":81\" ], slow_start: 1h }\n");
    assert_int_equal(c->pools[0].balance, CONF_BALANCE_LEAST_CONN);
    assert_int_equal(c->pools[1].balance, CONF_BALANCE_P2C_EWMA);
    assert_int_equal(c->pools[2].balance, CONF_BALANCE_ROUND_ROBIN);
    assert_int_equal(c->pools[3].balance, CONF_BALANCE_HASH);
    assert_int_equal(c->pools[3].hash, CONF_HASH_SOURCE);
    assert_null(c->pools[3].hash_name);
    assert_int_equal(c->pools[4].hash, CONF_HASH_COOKIE);
    assert_string_equal(c->pools[4].hash_name, "sid");
    assert_int_equal(c->pools[5].hash, CONF_HASH_HEADER);
    assert_string_equal(c->pools[5].hash_name, "X-Tenant-Id");
    assert_int_equal(c->pools[5].slow_start_ms, 3600 * 1000);
    conf_unref(c);
}

static void test_health_check_values_are_stored(void **state)
{
    (void)state;
    conf_t *c = load_ok(
        LISTEN_SITE "pools:\n"
                    "  site:\n"
                    "    servers: [ \":81\" ]\n"
                    "    health: { type: http, method: HEAD, path: \"/health?deep=1\",\n"
                    "              host: \"h.example:8080\", expect: 204, body: \"all good\",\n"
                    "              interval: 100ms, timeout: 99ms, rise: 1, fall: 100 }\n"
                    "  tcp: { servers: [ \":81\" ], health: { type: tcp, expect: 100-599 } }\n");
    const conf_health_t *h = &c->pools[0].health;
    assert_int_equal(h->type, CONF_HEALTH_HTTP);
    assert_string_equal(h->method, "HEAD");
    assert_string_equal(h->path, "/health?deep=1");
    assert_string_equal(h->host, "h.example:8080");
    assert_int_equal(h->expect_min, 204);
    assert_int_equal(h->expect_max, 204);
    assert_string_equal(h->body, "all good");
    assert_int_equal(h->interval_ms, 100);
    assert_int_equal(h->timeout_ms, 99);
    assert_int_equal(h->rise, 1);
    assert_int_equal(h->fall, 100);
    h = &c->pools[1].health;
    assert_int_equal(h->type, CONF_HEALTH_TCP);
    assert_int_equal(h->expect_min, 100);
    assert_int_equal(h->expect_max, 599);
    assert_string_equal(h->path, "/"); /* the rest at their defaults */
    assert_int_equal(h->interval_ms, 2000);
    conf_unref(c);
}

static void test_backup_chain_and_failover_are_resolved(void **state)
{
    (void)state;
    conf_t *c = load_ok(LISTEN_SITE "pools:\n"
                                    "  site:\n"
                                    "    servers: [ \":81\", \":82\", \":83\" ]\n"
                                    "    backup: dr\n"
                                    "    failover: { min_healthy: 3, failback_after: 0 }\n"
                                    "  last: { servers: [ \":91\" ] }\n"
                                    "  dr: { servers: [ \":90\" ], backup: last }\n");
    assert_int_equal(c->pools[0].backup, 2);
    assert_int_equal(c->pools[0].failover_min_healthy, 3);
    assert_int_equal(c->pools[0].failback_after_ms, 0);
    assert_int_equal(c->pools[2].backup, 1);
    assert_int_equal(c->pools[2].failover_min_healthy, 1);
    assert_int_equal(c->pools[2].failback_after_ms, 30000);
    assert_int_equal(c->pools[1].backup, SIZE_MAX);
    conf_unref(c);
}

static void test_outlier_and_retry_values_are_stored(void **state)
{
    (void)state;
    conf_t *c = load_ok(
        LISTEN_SITE "pools:\n"
                    "  site:\n"
                    "    servers: [ \":81\" ]\n"
                    "    outlier: { consecutive_errors: 0, ejection: 1s, max_ejection: 1s,\n"
                    "               max_ejected: 12.5% }\n"
                    "    retry: { attempts: 10, budget: 100%, budget_min: 0,\n"
                    "             on: [ timeout, 500, 504 ], non_idempotent: true, body: 1m }\n"
                    "  none: { servers: [ \":81\" ], retry: { attempts: 0, on: [], body: 0 } }\n");
    const conf_pool_t *p = &c->pools[0];
    assert_int_equal(p->outlier.consecutive_errors, 0);
    assert_int_equal(p->outlier.ejection_ms, 1000);
    assert_int_equal(p->outlier.max_ejection_ms, 1000);
    assert_int_equal(p->outlier.max_ejected_ppm, 125000);
    assert_int_equal(p->retry.attempts, 10);
    assert_int_equal(p->retry.budget_ppm, 1000000);
    assert_int_equal(p->retry.budget_min, 0);
    assert_int_equal(p->retry.on, CONF_RETRY_TIMEOUT | CONF_RETRY_500 | CONF_RETRY_504);
    assert_true(p->retry.non_idempotent);
    assert_int_equal(p->retry.body, 1 << 20);
    p = &c->pools[1];
    assert_int_equal(p->retry.attempts, 0);
    assert_int_equal(p->retry.on, 0);
    assert_int_equal(p->retry.body, 0);
    assert_int_equal(p->retry.budget_ppm, 200000);
    conf_unref(c);
}

static void test_webhook_alert_and_monitor_objectives_are_resolved(void **state)
{
    (void)state;
    char secret[] = "/tmp/surety-test-secret-XXXXXX", *text = NULL;
    int fd = mkstemp(secret);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "k3y", 3), 3);
    close(fd);
    assert_true(asprintf(&text,
                         "data_dir: /srv/surety\n"
                         "alerts:\n"
                         "  pager: { webhook: \"https://[::1]:8443/hook\", secret_file: %s }\n"
                         "  mail:\n"
                         "    email: { to: [ a@example.com, b@example.com ], from: s@example.com,\n"
                         "             smtp: \"smtps://mail.example.com:465\", username: s,\n"
                         "             password_file: %s }\n"
                         "monitors:\n"
                         "  api: { http: \"http://127.0.0.1:8080/api/\", interval: 1s,\n"
                         "         timeout: 999ms }\n"
                         "  db: { tcp: \"[::1]:5432\" }\n"
                         "objectives:\n"
                         "  probe-latency: { source: monitor:db, kind: latency, threshold: 120ms,\n"
                         "                   target: 99.99%%, window: 1d, alerts: [ mail ] }\n"
                         "  default-route: { source: route:web/1, kind: latency, threshold: 10s,\n"
                         "                   target: 0.0001%%, window: 90d,\n"
                         "                   maintenance_counts: true }\n"
                         "maintenance:\n"
                         "  all: { start: \"2030-01-01T00:00:00Z\",\n"
                         "         end: \"2030-01-01T00:00:01Z\" }\n"
                         "%s",
                         secret, secret, MON_BASE) > 0);
    conf_t *c = load_ok(text);
    assert_string_equal(c->store.sqlite, "/srv/surety/surety.db");
    assert_int_equal(c->alerts[0].kind, CONF_ALERT_WEBHOOK);
    assert_string_equal(c->alerts[0].webhook, "https://[::1]:8443/hook");
    assert_string_equal(c->alerts[0].secret_file, secret);
    assert_false(c->alerts[0].email_enabled);
    assert_int_equal(c->alerts[1].kind, CONF_ALERT_EMAIL);
    assert_int_equal(c->alerts[1].email.nto, 2);
    assert_string_equal(c->alerts[1].email.to[1].word, "b@example.com");
    assert_string_equal(c->alerts[1].email.username, "s");
    const conf_monitor_t *api = &c->monitors[0], *db = &c->monitors[1];
    assert_int_equal(api->kind, CONF_MONITOR_HTTP);
    assert_false(api->https);
    assert_int_equal(api->expect, 200);
    assert_null(api->body);
    assert_int_equal(api->interval_ms, 1000);
    assert_int_equal(api->timeout_ms, 999);
    assert_int_equal(db->kind, CONF_MONITOR_TCP);
    assert_int_equal(db->timeout_ms, 5000);
    assert_int_equal(db->down_after, 2);
    assert_int_equal(db->up_after, 2);
    /* A monitor's latency threshold need not be a histogram bound. */
    const conf_objective_t *pl = &c->objectives[0], *dr = &c->objectives[1];
    assert_int_equal(pl->source_kind, CONF_SLO_SOURCE_MONITOR);
    assert_int_equal(pl->monitor, 1);
    assert_int_equal(pl->threshold_ms, 120);
    assert_int_equal(pl->target_ppm, 999900);
    assert_int_equal(pl->window_ms, 86400000);
    assert_int_equal(pl->nalerts, 1);
    assert_int_equal(pl->alerts[0].index, 1);
    assert_int_equal(dr->source_kind, CONF_SLO_SOURCE_ROUTE);
    assert_int_equal(dr->listener, 0);
    assert_int_equal(dr->route, 1);
    assert_int_equal(dr->threshold_ms, 10000);
    assert_int_equal(dr->target_ppm, 1);
    assert_true(dr->maintenance_counts);
    assert_true(dr->alerts_all);
    assert_true(c->maintenance[0].objectives_all);
    assert_int_equal(c->maintenance[0].end_s - c->maintenance[0].start_s, 1);
    conf_unref(c);
    free(text);
    unlink(secret);
}

static void test_json_file_is_accepted(void **state)
{
    (void)state;
    conf_t *c = load_ok("{\"workers\": 3, \"log\": {\"query\": true, \"access\": null},\n"
                        " \"listeners\": {\"web\": {\"listen\": \":8080\",\n"
                        "   \"routes\": [{\"pool\": \"p\", \"host\": null}]}},\n"
                        " \"pools\": {\"p\": {\"servers\": [\"127.0.0.1:1\",\n"
                        "   {\"address\":\"127.0.0.1:2\",\"weight\":2}]}}}\n");
    assert_int_equal(c->workers, 3);
    assert_true(c->log_query);
    assert_string_equal(c->access_log, "-"); /* null is "left out" */
    assert_string_equal(c->listeners[0].listen, ":8080");
    assert_null(c->listeners[0].routes[0].host);
    assert_int_equal(c->pools[0].nservers, 2);
    assert_int_equal(c->pools[0].servers[1].weight, 2);
    conf_unref(c);
}

static void test_json_errors_have_positions_too(void **state)
{
    (void)state;
    expect_errors("json", "{\"workers\": \"many\", \"listeners\": {}}",
                  "t.yaml:1:13: workers: expected 'auto' or an integer, got 'many'\n"
                  "t.yaml:1:21: listeners: expected 1 to 1000 entries, got 0\n");
}

static void test_off_values_disable_admin_and_access_log(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof(text), "admin: { listen: off }\nlog: { access: off }\n%s", minimal);
    conf_t *c = load_ok(text);
    assert_false(c->admin_enabled);
    assert_null(c->admin_listen);
    assert_null(c->access_log);
    conf_unref(c);
}

static void test_route_host_is_stored_lower_case_without_final_dot(void **state)
{
    (void)state;
    conf_t *c = load_ok("listeners:\n"
                        "  web:\n"
                        "    listen: :8080\n"
                        "    routes:\n"
                        "      - { host: API.Example.COM., pool: p }\n"
                        "      - { host: \"*.Example.com\", pool: p }\n"
                        "pools: { p: { servers: [ \"[::1]:1\" ] } }\n");
    assert_string_equal(c->listeners[0].routes[0].host, "api.example.com");
    assert_string_equal(c->listeners[0].routes[1].host, "*.example.com");
    conf_unref(c);
}

static void test_aliases_share_settings(void **state)
{
    (void)state;
    conf_t *c = load_ok("listeners:\n"
                        "  a: { listen: \":1\", routes: &r [ { pool: p } ] }\n"
                        "  b: { listen: \":2\", routes: *r }\n"
                        "pools:\n"
                        "  p: { servers: &s [ \"127.0.0.1:9\" ], timeouts: &t { connect: 1s } }\n"
                        "  q: { servers: *s, timeouts: *t }\n");
    assert_int_equal(c->listeners[1].nroutes, 1);
    assert_int_equal(c->pools[1].connect_timeout_ms, 1000);
    assert_string_equal(c->pools[1].servers[0].address, "127.0.0.1:9");
    conf_unref(c);
}

static void test_load_reads_a_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_conf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, minimal, strlen(minimal)), (ssize_t)strlen(minimal));
    close(fd);
    conf_t *c = conf_load(path, stderr);
    assert_non_null(c);
    assert_string_equal(c->path, path);
    assert_int_equal(c->nlisteners, 1);
    conf_unref(c);
    unlink(path);
}

static void *ref_unref_many(void *arg)
{
    conf_t *c = arg;
    for (int i = 0; i < 100000; i++)
        conf_unref(conf_ref(c));
    conf_unref(c);
    return NULL;
}

static void test_references_are_counted_across_threads(void **state)
{
    (void)state;
    conf_t *c = load_ok(minimal);
    pthread_t t[4];
    assert_int_equal(c->refs, 1);
    assert_ptr_equal(conf_ref(c), c);
    assert_int_equal(c->refs, 2);
    conf_unref(c);
    for (size_t i = 0; i < N(t); i++)
        assert_int_equal(pthread_create(&t[i], NULL, ref_unref_many, conf_ref(c)), 0);
    for (size_t i = 0; i < N(t); i++)
        pthread_join(t[i], NULL);
    assert_int_equal(c->refs, 1);
    conf_unref(c); /* frees: ASan reports a leak or a double free otherwise */
    conf_unref(NULL);
}

/* ---- errors: one file per kind, with its exact diagnostics */

typedef struct {
    const char *what;
    const char *text;
    const char *want;
} error_case_t;

static const error_case_t error_cases[] = {
    {"unknown top-level key with a suggestion", "wrkers: 4\n" BASE,
     "t.yaml:1:1: unknown key 'wrkers'; did you mean 'workers'?\n"},
    {"unknown top-level key", "frobnicate: 1\n" BASE, "t.yaml:1:1: unknown key 'frobnicate'\n"},
    {"unknown nested key with a suggestion",
     "listeners:\n"
     "  web:\n"
     "    listen: 127.0.0.1:8080\n"
     "    timeout: { header: 5s }\n"
     "    routes: [ { pool: site } ]\n"
     "pools: { site: { servers: [ 127.0.0.1:9001 ] } }\n",
     "t.yaml:4:5: unknown key 'timeout' in listeners.web; did you mean 'timeouts'?\n"},
    {"unknown key in a list item",
     "listeners:\n"
     "  web:\n"
     "    listen: 127.0.0.1:8080\n"
     "    routes: [ { pool: site, hots: a.com } ]\n"
     "pools: { site: { servers: [ 127.0.0.1:9001 ] } }\n",
     "t.yaml:4:29: unknown key 'hots' in listeners.web.routes[0]; did you mean 'host'?\n"},
    {"merge key", "<<: {}\n" BASE,
     "t.yaml:1:1: merge keys ('<<') are not supported; write the keys out\n"},
    {"planned top-level key", "tls: { cert: a }\n" BASE,
     "t.yaml:1:1: 'tls' is not supported yet in this version\n"},
    {"listener without routes",
     "listeners:\n  web: { listen: \":80\" }\npools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:2:3: listeners.web: routes: at least one route is required (or redirect_https)\n"},
    {"listener tls without its certificate",
     "listeners:\n"
     "  web: { listen: \":80\", tls: {}, routes: [ { pool: site } ] }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:2:25: listeners.web.tls: missing required key 'cert'\n"
     "t.yaml:2:25: listeners.web.tls: missing required key 'key'\n"},
    {"legacy TLS without the override",
     "listeners:\n"
     "  web: { listen: \":80\", routes: [ { pool: site } ],\n"
     "         tls: { cert: a.crt, key: a.key, min_version: \"1.1\" } }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:3:55: listeners.web: tls.min_version 1.1 needs tls.allow_legacy: true (TLS 1.0 "
     "and 1.1 are broken; think twice)\n"},
    {"upstream TLS verified without a name",
     "listeners:\n  web: { listen: \":80\", routes: [ { pool: site } ] }\n"
     "pools: { site: { servers: [ \":81\" ], tls: { ca: ca.crt } } }\n",
     "t.yaml:3:38: pools.site: tls.sni is required with tls.verify: true (the name the "
     "servers' certificates must carry)\n"},
    {"upstream client certificate without its key",
     "listeners:\n  web: { listen: \":80\", routes: [ { pool: site } ] }\n"
     "pools: { site: { servers: [ \":81\" ], tls: { verify: false, cert: c.crt } } }\n",
     "t.yaml:3:66: pools.site: tls.cert and tls.key go together (a client certificate needs "
     "both)\n"},
    {"bad duration", "drain_timeout: fast\n" BASE,
     "t.yaml:1:16: drain_timeout: expected a duration like 2s or 250ms, got 'fast'\n"},
    {"bare number as a duration", "drain_timeout: 30\n" BASE,
     "t.yaml:1:16: drain_timeout: expected a duration like 2s or 250ms, got '30'\n"},
    {"bad size", "buffer_size: lots\n" BASE,
     "t.yaml:1:14: buffer_size: expected a size like 512, 16k or 8m, got 'lots'\n"},
    {"bad integer", "max_connections: many\n" BASE,
     "t.yaml:1:18: max_connections: expected an integer, got 'many'\n"},
    {"bad workers", "workers: all\n" BASE,
     "t.yaml:1:10: workers: expected 'auto' or an integer, got 'all'\n"},
    {"bad boolean", "log: { query: yes }\n" BASE,
     "t.yaml:1:15: log.query: expected true or false, got 'yes'\n"},
    {"bad enum with a suggestion", "log: { client_ip: hashed }\n" BASE,
     "t.yaml:1:19: log.client_ip: expected one of truncate, hash, full, got 'hashed'; did you "
     "mean 'hash'?\n"},
    {"bad enum", "log: { client_ip: none }\n" BASE,
     "t.yaml:1:19: log.client_ip: expected one of truncate, hash, full, got 'none'\n"},
    {"integer below range", "workers: 0\n" BASE,
     "t.yaml:1:10: workers: must be between 1 and 256, got '0'\n"},
    {"integer above range", "max_connections: 1000001\n" BASE,
     "t.yaml:1:18: max_connections: must be between 1 and 1000000, got '1000001'\n"},
    {"negative integer", "workers: -4\n" BASE,
     "t.yaml:1:10: workers: must be between 1 and 256, got '-4'\n"},
    {"integer overflow", "max_connections: 99999999999999999999999\n" BASE,
     "t.yaml:1:18: max_connections: must be between 1 and 1000000, got "
     "'99999999999999999999999'\n"},
    {"size below range", "buffer_size: 512\n" BASE,
     "t.yaml:1:14: buffer_size: must be between 1k and 1m, got '512'\n"},
    {"size overflow", "buffer_size: 99999999999999999g\n" BASE,
     "t.yaml:1:14: buffer_size: must be between 1k and 1m, got '99999999999999999g'\n"},
    {"duration above range", "drain_timeout: 2h\n" BASE,
     "t.yaml:1:16: drain_timeout: must be between 0 and 1h, got '2h'\n"},
    {"duration overflow", "drain_timeout: 999999999999999999d\n" BASE,
     "t.yaml:1:16: drain_timeout: must be between 0 and 1h, got '999999999999999999d'\n"},
    {"scalar for a map", "admin: on\n" BASE,
     "t.yaml:1:8: admin: expected a map of keys, got 'on'\n"},
    {"list for a scalar", "drain_timeout: [1s]\n" BASE,
     "t.yaml:1:16: drain_timeout: expected a duration like 2s or 250ms, got a list\n"},
    {"map for a list",
     "listeners:\n"
     "  web:\n"
     "    listen: 127.0.0.1:8080\n"
     "    routes: { pool: site }\n"
     "pools: { site: { servers: [ 127.0.0.1:9001 ] } }\n",
     "t.yaml:4:13: listeners.web.routes: expected a list, got a map\n"},
    {"scalar for a listener",
     "listeners:\n"
     "  web: 127.0.0.1:8080\n"
     "pools: { site: { servers: [ 127.0.0.1:9001 ] } }\n",
     "t.yaml:2:8: listeners.web: expected a map of settings, got '127.0.0.1:8080'\n"},
    {"bad server item",
     "listeners: { web: { listen: \":80\", routes: [ { pool: site } ] } }\n"
     "pools: { site: { servers: [ [ \":81\" ] ] } }\n",
     "t.yaml:2:29: pools.site.servers[0]: expected a map or an address like 127.0.0.1:8080, "
     "[::1]:8080 or :8080, got a list\n"},
    {"bad address", "admin: { listen: 9090 }\n" BASE,
     "t.yaml:1:18: admin.listen: expected an address like 127.0.0.1:8080, [::1]:8080 or :8080 "
     "or off, got '9090'\n"},
    {"host name address", "admin: { listen: \"localhost:9090\" }\n" BASE,
     "t.yaml:1:18: admin.listen: expected a numeric address like 127.0.0.1:8080 (host names "
     "are not resolved), got 'localhost:9090'\n"},
    {"unbracketed IPv6 address",
     "listeners: { web: { listen: \"::1:80\", routes: [ { pool: site } ] } }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:1:29: listeners.web.listen: expected an address like 127.0.0.1:8080, [::1]:8080 "
     "or :8080, got '::1:80'\n"},
    {"port 0",
     "listeners: { web: { listen: \":80\", routes: [ { pool: site } ] } }\n"
     "pools: { site: { servers: [ \"127.0.0.1:0\" ] } }\n",
     "t.yaml:2:29: pools.site.servers[0]: port 0 is not allowed, got '127.0.0.1:0'\n"},
    {"missing top-level key", "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:1:1: missing required key 'listeners'\n"},
    {"empty file", "", "t.yaml:1:1: missing required key 'listeners'\n"},
    {"comment only", "# nothing\n", "t.yaml:1:1: missing required key 'listeners'\n"},
    {"missing nested key",
     "listeners:\n"
     "  web:\n"
     "    routes: [ { pool: site } ]\n"
     "pools:\n"
     "  site: {}\n",
     "t.yaml:2:3: listeners.web: missing required key 'listen'\n"
     "t.yaml:5:3: pools.site: missing required key 'servers'\n"},
    {"missing key in a list item",
     "listeners: { web: { listen: \":80\", routes: [ { host: a.com } ] } }\n",
     "t.yaml:1:46: listeners.web.routes[0]: missing required key 'pool'\n"},
    {"required key without a value",
     "listeners:\n"
     "  web:\n"
     "    listen:\n"
     "    routes: [ { pool: site } ]\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:3:5: listeners.web.listen: a value is required\n"},
    {"no listeners", "listeners: {}\n",
     "t.yaml:1:1: listeners: expected 1 to 1000 entries, got 0\n"},
    {"no routes", "listeners: { web: { listen: \":80\", routes: [] } }\n",
     "t.yaml:1:36: listeners.web.routes: expected 1 to 1000 entries, got 0\n"},
    {"no servers",
     "listeners: { web: { listen: \":80\", routes: [ { pool: site } ] } }\n"
     "pools: { site: { servers: [] } }\n",
     "t.yaml:2:18: pools.site.servers: expected 1 to 1000 entries, got 0\n"},
    {"bad listener name",
     "listeners:\n"
     "  \"web site\": { listen: \":80\", routes: [ { pool: site } ] }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:2:3: listeners: 'web site' is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ . -\n"},
    {"bad route name",
     "listeners: { web: { listen: \":80\", routes: [ { name: a/b, pool: site } ] } }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:1:54: listeners.web.routes[0].name: 'a/b' is not a valid name: use 1 to 64 of A-Z "
     "a-z 0-9 _ . -\n"},
    {"duplicate route names",
     "listeners:\n"
     "  web:\n"
     "    listen: \":80\"\n"
     "    routes:\n"
     "      - { name: api, pool: site }\n"
     "      - { name: api, pool: site }\n"
     "      - { name: \"0\", pool: site }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:6:17: listeners.web.routes[1]: duplicate route name 'api' (first at 5:17)\n"},
    {"default route name taken",
     "listeners:\n"
     "  web:\n"
     "    listen: \":80\"\n"
     "    routes:\n"
     "      - { name: \"1\", pool: site }\n"
     "      - { pool: site }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:6:9: listeners.web.routes[1]: duplicate route name '1' (first at 5:17)\n"},
    {"dangling pool",
     "listeners:\n"
     "  web:\n"
     "    listen: \":80\"\n"
     "    routes: [ { pool: api }, { name: rest, pool: Site } ]\n"
     "pools:\n"
     "  site: { servers: [ \":81\" ] }\n"
     "  site-dr: { servers: [ \":82\" ] }\n",
     "t.yaml:4:23: route 0 of listener 'web' names pool 'api', which does not exist; pools are: "
     "site, site-dr\n"
     "t.yaml:4:50: route 'rest' of listener 'web' names pool 'Site', which does not exist; pools "
     "are: site, site-dr\n"},
    {"dangling pool without pools",
     "listeners: { web: { listen: \":80\", routes: [ { pool: api } ] } }\n",
     "t.yaml:1:54: route 0 of listener 'web' names pool 'api', which does not exist; no pools "
     "are defined\n"},
    {"two listeners on one address",
     "listeners:\n"
     "  a: { listen: \"127.0.0.1:80\", routes: [ { pool: site } ] }\n"
     "  b: { listen: \"127.0.0.1:80\", routes: [ { pool: site } ] }\n"
     "  c: { listen: \"[::1]:80\", routes: [ { pool: site } ] }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:3:16: listener 'b' listens on 127.0.0.1:80, which listener 'a' already uses\n"},
    {"listener overlapping a wildcard",
     "listeners:\n"
     "  a: { listen: \"127.0.0.1:80\", routes: [ { pool: site } ] }\n"
     "  b: { listen: \":80\", routes: [ { pool: site } ] }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:3:16: listener 'b' listens on :80, which overlaps listener 'a' on 127.0.0.1:80\n"},
    {"admin on a listener's address",
     "admin:\n"
     "  listen: 0.0.0.0:8080\n"
     "listeners: { web: { listen: \"127.0.0.1:8080\", routes: [ { pool: site } ] } }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:2:11: admin.listen 0.0.0.0:8080 overlaps listener 'web' on 127.0.0.1:8080\n"},
    {"listener on the default admin address",
     "listeners: { web: { listen: \"127.0.0.1:9090\", routes: [ { pool: site } ] } }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:1:29: listener 'web' listens on 127.0.0.1:9090, which overlaps the default "
     "admin.listen 127.0.0.1:9090; set admin.listen to another address or off\n"},
    {"head limit below the URI limit",
     "listeners:\n"
     "  web:\n"
     "    listen: \":80\"\n"
     "    limits: { uri: 16k, header_bytes: 8k }\n"
     "    routes: [ { pool: site } ]\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:4:39: listeners.web: limits.header_bytes (8k) must be at least limits.uri (16k)\n"},
    {"host with a port",
     "listeners: { web: { listen: \":80\", routes: [ { host: \"a.com:80\", pool: site } ] } }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:1:54: listeners.web.routes[0].host: 'a.com:80' has a port; a route matches the host "
     "name only, without a port\n"},
    {"bad hosts",
     "listeners:\n"
     "  web:\n"
     "    listen: \":80\"\n"
     "    routes:\n"
     "      - { host: a_b.com, pool: site }\n"
     "      - { host: \"*.\", pool: site }\n"
     "      - { host: \"a.*.com\", pool: site }\n"
     "      - { host: \"a..com\", pool: site }\n"
     "      - { host: \"*\", pool: site }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:5:17: listeners.web.routes[0].host: 'a_b.com' is not a host name: use letters, "
     "digits, '.' and '-', optionally after a leading '*.'\n"
     "t.yaml:6:17: listeners.web.routes[1].host: '*.' is not a host name: use letters, digits, "
     "'.' and '-', optionally after a leading '*.'\n"
     "t.yaml:7:17: listeners.web.routes[2].host: 'a.*.com' is not a host name: use letters, "
     "digits, '.' and '-', optionally after a leading '*.'\n"
     "t.yaml:8:17: listeners.web.routes[3].host: 'a..com' is not a host name: use letters, "
     "digits, '.' and '-', optionally after a leading '*.'\n"
     "t.yaml:9:17: listeners.web.routes[4].host: '*' is not a host name: use letters, digits, "
     "'.' and '-', optionally after a leading '*.'\n"},
    {"bad paths",
     "listeners:\n"
     "  web:\n"
     "    listen: \":80\"\n"
     "    routes:\n"
     "      - { path: v1/, pool: site }\n"
     "      - { path: \"/a b\", pool: site }\n"
     "      - { path: \"/a?b\", pool: site }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:5:17: listeners.web.routes[0].path: a path prefix must start with '/', got 'v1/'\n"
     "t.yaml:6:17: listeners.web.routes[1].path: a path prefix cannot contain a space, '?' or "
     "'#', got '/a b'\n"
     "t.yaml:7:17: listeners.web.routes[2].path: a path prefix cannot contain a space, '?' or "
     "'#', got '/a?b'\n"},
    {"empty and control-character strings",
     "log: { access: \"\" }\n"
     "listeners: { web: { listen: \":80\", routes: [ { path: \"/\\x01\", pool: site } ] } }\n"
     "pools: { site: { servers: [ \":81\" ] } }\n",
     "t.yaml:1:16: log.access: must not be empty\n"
     "t.yaml:2:54: listeners.web.routes[0].path: control characters are not allowed, got "
     "'/\\x01'\n"},
    {"same server twice in a pool",
     "listeners: { web: { listen: \":80\", routes: [ { pool: site } ] } }\n"
     "pools:\n"
     "  site:\n"
     "    servers:\n"
     "      - 127.0.0.1:81\n"
     "      - { address: 127.0.0.1:81, weight: 2 }\n",
     "t.yaml:6:20: pools.site.servers[1]: server 127.0.0.1:81 is already in this pool (first at "
     "5:9); use weight to give it a larger share\n"},
    {"same server three times, among others",
     "listeners: { web: { listen: \":80\", routes: [ { pool: site } ] } }\n"
     "pools: { site: { servers: [ \"[::1]:81\", \":81\", \"[::1]:81\", \"[::1]:82\", "
     "\"[::1]:81\" ] } }\n",
     "t.yaml:2:48: pools.site.servers[2]: server [::1]:81 is already in this pool (first at "
     "2:29); use weight to give it a larger share\n"
     "t.yaml:2:72: pools.site.servers[4]: server [::1]:81 is already in this pool (first at "
     "2:29); use weight to give it a larger share\n"},
    /* ---- availability keys of pools */
    {"balance typo", LISTEN_SITE "pools: { site: { balance: least_conn, servers: [ \":81\" ] } }\n",
     "t.yaml:2:27: pools.site.balance: expected one of round-robin, least-conn, p2c-ewma, hash, "
     "got 'least_conn'; did you mean 'least-conn'?\n"},
    {"balance hash without a hash key",
     LISTEN_SITE "pools: { site: { balance: hash, servers: [ \":81\" ] } }\n",
     "t.yaml:2:27: pools.site: balance: hash needs a hash key (hash: source, header:NAME or "
     "cookie:NAME)\n"},
    {"hash key without balance hash",
     LISTEN_SITE "pools:\n  site: { hash: source, servers: [ \":81\" ] }\n"
                 "  b: { balance: least-conn, hash: \"cookie:s\", servers: [ \":81\" ] }\n",
     "t.yaml:3:17: pools.site: hash is only used with balance: hash\n"
     "t.yaml:4:35: pools.b: hash is only used with balance: hash\n"},
    {"bad hash keys",
     LISTEN_SITE
     "pools:\n"
     "  site:\n"
     "    balance: hash\n"
     "    hash: ip\n"
     "    servers: [ \":81\" ]\n"
     "  b: { balance: hash, hash: \"header:\", servers: [ \":81\" ] }\n"
     "  c: { balance: hash, hash: \"cookie:a b\", servers: [ \":81\" ] }\n"
     "  d: { balance: hash, hash: \"header:"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", servers: [ \":81\" ] }\n"
     "  e: { balance: hash, hash: [ source ], servers: [ \":81\" ] }\n",
     "t.yaml:5:11: pools.site.hash: expected source, header:NAME or cookie:NAME, got 'ip'\n"
     "t.yaml:7:29: pools.b.hash: the name in 'header:' must be 1 to 64 letters, digits or "
     "!#$%&'*+-.^_`|~\n"
     "t.yaml:8:29: pools.c.hash: the name in 'cookie:a b' must be 1 to 64 letters, digits or "
     "!#$%&'*+-.^_`|~\n"
     "t.yaml:9:29: pools.d.hash: the name in "
     "'header:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' must be 1 to 64 letters, "
     "digits or !#$%&'*+-.^_`|~\n"
     "t.yaml:10:29: pools.e.hash: expected source, header:NAME or cookie:NAME, got a list\n"},
    {"slow start too long",
     LISTEN_SITE "pools: { site: { slow_start: 2h, servers: [ \":81\" ] } }\n",
     "t.yaml:2:30: pools.site.slow_start: must be between 0 and 1h, got '2h'\n"},
    {"dangling backup",
     LISTEN_SITE "pools:\n  site: { backup: nope, servers: [ \":81\" ] }\n"
                 "  dr: { servers: [ \":82\" ] }\n",
     "t.yaml:3:19: pool 'site' names pool 'nope', which does not exist; pools are: site, dr\n"},
    {"pool is its own backup",
     LISTEN_SITE "pools:\n  site: { backup: site, servers: [ \":81\" ] }\n",
     "t.yaml:3:19: pool 'site' names itself as its backup\n"},
    {"backup cycle of two",
     LISTEN_SITE "pools:\n"
                 "  site: { servers: [ \":81\" ] }\n"
                 "  a: { backup: b, servers: [ \":81\" ] }\n"
                 "  b: { backup: a, servers: [ \":82\" ] }\n",
     "t.yaml:4:16: backup pools form a cycle: a -> b -> a\n"},
    {"backup cycles reached through a chain",
     LISTEN_SITE "pools:\n"
                 "  site: { backup: c, servers: [ \":81\" ] }\n"
                 "  c: { backup: a, servers: [ \":81\" ] }\n"
                 "  a: { backup: b, servers: [ \":81\" ] }\n"
                 "  b: { backup: c, servers: [ \":81\" ] }\n"
                 "  x: { backup: y, servers: [ \":81\" ] }\n"
                 "  y: { backup: x, servers: [ \":81\" ] }\n",
     "t.yaml:4:16: backup pools form a cycle: c -> a -> b -> c\n"
     "t.yaml:7:16: backup pools form a cycle: x -> y -> x\n"},
    {"failover without backup",
     LISTEN_SITE "pools:\n"
                 "  site: { failover: { min_healthy: 1 }, servers: [ \":81\" ] }\n"
                 "  b: { failover: {}, servers: [ \":81\" ] }\n",
     "t.yaml:3:11: pools.site: failover needs a backup pool\n"
     "t.yaml:4:8: pools.b: failover needs a backup pool\n"},
    {"failover needs more healthy servers than the pool has",
     LISTEN_SITE "pools:\n"
                 "  site:\n"
                 "    servers: [ \":81\", \":82\" ]\n"
                 "    backup: dr\n"
                 "    failover: { min_healthy: 3, failback_after: 2d }\n"
                 "  dr: { servers: [ \":90\" ], backup: site, failover: { min_healthy: 0 } }\n",
     "t.yaml:5:13: backup pools form a cycle: site -> dr -> site\n"
     "t.yaml:6:30: pools.site: failover.min_healthy (3) must be at most the number of servers of "
     "the pool (2)\n"
     "t.yaml:6:49: pools.site.failover.failback_after: must be between 0 and 1d, got '2d'\n"
     "t.yaml:7:68: pools.dr.failover.min_healthy: must be between 1 and 1000, got '0'\n"},
    {"health without a type",
     LISTEN_SITE "pools:\n  site: { health: { path: /h }, servers: [ \":81\" ] }\n"
                 "  b: { health: {}, servers: [ \":81\" ] }\n"
                 "  c: { health: { type: }, servers: [ \":81\" ] }\n",
     "t.yaml:3:11: pools.site.health: missing required key 'type'\n"
     "t.yaml:4:8: pools.b.health: missing required key 'type'\n"
     "t.yaml:5:18: pools.c.health.type: a value is required\n"},
    {"bad health values",
     LISTEN_SITE
     "pools:\n"
     "  site:\n"
     "    servers: [ \":81\" ]\n"
     "    health:\n"
     "      type: udp\n"
     "      method: \"GE T\"\n"
     "      path: healthz\n"
     "      interval: 50ms\n"
     "      rise: 0\n"
     "      fall: 101\n"
     "      host: \"\"\n"
     "  b: { health: { type: http, path: \"/a b\", interval: 2h } , servers: [ \":81\" ] }\n",
     "t.yaml:6:13: pools.site.health.type: expected one of http, tcp, got 'udp'\n"
     "t.yaml:7:15: pools.site.health.method: 'GE T' is not an HTTP token: use letters, digits "
     "and !#$%&'*+-.^_`|~\n"
     "t.yaml:8:13: pools.site.health.path: must start with '/', got 'healthz'\n"
     "t.yaml:9:17: pools.site.health.interval: must be between 100ms and 1h, got '50ms'\n"
     "t.yaml:10:13: pools.site.health.rise: must be between 1 and 100, got '0'\n"
     "t.yaml:11:13: pools.site.health.fall: must be between 1 and 100, got '101'\n"
     "t.yaml:12:13: pools.site.health.host: must not be empty\n"
     "t.yaml:13:36: pools.b.health.path: cannot contain a space or '#', got '/a b'\n"
     "t.yaml:13:54: pools.b.health.interval: must be between 100ms and 1h, got '2h'\n"},
    {"bad health expect",
     LISTEN_SITE "pools:\n"
                 "  site: { health: { type: http, expect: 99 }, servers: [ \":81\" ] }\n"
                 "  b: { health: { type: http, expect: 400-200 }, servers: [ \":81\" ] }\n"
                 "  c: { health: { type: http, expect: 2xx }, servers: [ \":81\" ] }\n"
                 "  d: { health: { type: http, expect: \"200-\" }, servers: [ \":81\" ] }\n"
                 "  e: { health: { type: http, expect: 200-600 }, servers: [ \":81\" ] }\n"
                 "  f: { health: { type: http, expect: [ 200 ] }, servers: [ \":81\" ] }\n"
                 "  g: { health: { type: http, expect: \"-200\" }, servers: [ \":81\" ] }\n",
     "t.yaml:3:41: pools.site.health.expect: status codes must be between 100 and 599, got '99'\n"
     "t.yaml:4:38: pools.b.health.expect: the range '400-200' is empty: its first code is above "
     "its last\n"
     "t.yaml:5:38: pools.c.health.expect: expected a status code like 200 or a range like "
     "200-399, got '2xx'\n"
     "t.yaml:6:38: pools.d.health.expect: expected a status code like 200 or a range like "
     "200-399, got '200-'\n"
     "t.yaml:7:38: pools.e.health.expect: status codes must be between 100 and 599, got "
     "'200-600'\n"
     "t.yaml:8:38: pools.f.health.expect: expected a status code like 200 or a range like "
     "200-399, got a list\n"
     "t.yaml:9:38: pools.g.health.expect: expected a status code like 200 or a range like "
     "200-399, got '-200'\n"},
    {"health timeout not below its interval",
     LISTEN_SITE
     "pools:\n"
     "  site: { health: { type: tcp, interval: 1s }, servers: [ \":81\" ] }\n"
     "  b: { health: { type: tcp, interval: 1s, timeout: 1500ms }, servers: [ \":81\" ] }\n",
     "t.yaml:3:42: pools.site: health.timeout (1s) must be less than health.interval (1s)\n"
     "t.yaml:4:52: pools.b: health.timeout (1500ms) must be less than health.interval (1s)\n"},
    {"bad outlier values",
     LISTEN_SITE "pools:\n"
                 "  site:\n"
                 "    servers: [ \":81\" ]\n"
                 "    outlier: { consecutive_errors: 1001, ejection: 500ms, max_ejected: 150% }\n"
                 "  b: { outlier: { max_ejection: 10s }, servers: [ \":81\" ] }\n"
                 "  c: { outlier: { ejection: 2m, max_ejection: 1m }, servers: [ \":81\" ] }\n"
                 "  d: { outlier: { max_ejected: 50 }, servers: [ \":81\" ] }\n",
     "t.yaml:5:36: pools.site.outlier.consecutive_errors: must be between 0 and 1000, got "
     "'1001'\n"
     "t.yaml:5:52: pools.site.outlier.ejection: must be between 1s and 1d, got '500ms'\n"
     "t.yaml:5:72: pools.site.outlier.max_ejected: must be between 0% and 100%, got '150%'\n"
     "t.yaml:6:33: pools.b: outlier.ejection (30s) must be at most outlier.max_ejection (10s)\n"
     "t.yaml:7:29: pools.c: outlier.ejection (2m) must be at most outlier.max_ejection (1m)\n"
     "t.yaml:8:32: pools.d.outlier.max_ejected: expected a percentage like 99.9%, got '50'\n"},
    {"bad retry values",
     LISTEN_SITE "pools:\n"
                 "  site:\n"
                 "    servers: [ \":81\" ]\n"
                 "    retry:\n"
                 "      attempts: 11\n"
                 "      budget: 101%\n"
                 "      budget_min: 1001\n"
                 "      non_idempotent: yes\n"
                 "      body: 2m\n"
                 "  b: { retry: { on: connect }, servers: [ \":81\" ] }\n",
     "t.yaml:6:17: pools.site.retry.attempts: must be between 0 and 10, got '11'\n"
     "t.yaml:7:15: pools.site.retry.budget: must be between 0% and 100%, got '101%'\n"
     "t.yaml:8:19: pools.site.retry.budget_min: must be between 0 and 1000, got '1001'\n"
     "t.yaml:9:23: pools.site.retry.non_idempotent: expected true or false, got 'yes'\n"
     "t.yaml:10:13: pools.site.retry.body: must be between 0 and 1m, got '2m'\n"
     "t.yaml:11:21: pools.b.retry.on: expected a list, each one of connect, reset, timeout, 500, "
     "502, 503, 504, got 'connect'\n"},
    {"bad retry conditions",
     LISTEN_SITE "pools:\n"
                 "  site:\n"
                 "    servers: [ \":81\" ]\n"
                 "    retry: { on: [ connect, 502, rest, 502, 429, { a: 1 }, connect ] }\n",
     "t.yaml:5:34: pools.site.retry.on[2]: expected one of connect, reset, timeout, 500, 502, "
     "503, 504, got 'rest'; did you mean 'reset'?\n"
     "t.yaml:5:40: pools.site.retry.on[3]: '502' is listed twice (first at 5:29)\n"
     "t.yaml:5:45: pools.site.retry.on[4]: expected one of connect, reset, timeout, 500, 502, "
     "503, 504, got '429'\n"
     "t.yaml:5:50: pools.site.retry.on[5]: expected one of connect, reset, timeout, 500, 502, "
     "503, 504, got a map\n"
     "t.yaml:5:60: pools.site.retry.on[6]: 'connect' is listed twice (first at 5:20)\n"},
    /* ---- monitoring: store, monitors, objectives, alerts, maintenance */
    {"bad monitors",
     "monitors:\n"
     "  a: { interval: 10s }\n"
     "  b: { http: \"http://x/\", tcp: \"x:80\", dns: x }\n"
     "  c: { tcp: \"x:80\", expect: 200, body: ok, cert_days: 3 }\n"
     "  d: { http: \"http://x/\", cert_days: 3, timeout: 30s }\n"
     "  e: { http: \"ftp://x/\" }\n"
     "  f: { http: \"http://us:pw@x/\" }\n"
     "  g: { http: \"http:///path\" }\n"
     "  h: { tcp: \"x\" }\n"
     "  i: { tcp: \"[::1]:99999\" }\n"
     "  j: { dns: \"a..b\" }\n"
     "  k: { http: \"http://x/\", interval: 500ms, down_after: 0 }\n"
     "  l: { http: \"http://[::1]:8080/a\" }\n"
     "  m: { tcp: \"[::1]:80\" }\n"
     MON_BASE,
     "t.yaml:2:3: monitors.a: one of http, tcp or dns is required\n"
     "t.yaml:3:32: monitors.b: http and tcp cannot both be set: a monitor probes one target\n"
     "t.yaml:3:45: monitors.b: http and dns cannot both be set: a monitor probes one target\n"
     "t.yaml:4:29: monitors.c: expect is only for http monitors\n"
     "t.yaml:4:40: monitors.c: body is only for http monitors\n"
     "t.yaml:4:55: monitors.c: cert_days is only for https:// URLs\n"
     "t.yaml:5:38: monitors.d: cert_days is only for https:// URLs\n"
     "t.yaml:5:50: monitors.d: timeout (30s) must be less than interval (30s)\n"
     "t.yaml:6:14: monitors.e.http: expected an http:// or https:// URL, got 'ftp://x/'\n"
     "t.yaml:7:14: monitors.f.http: 'http://us:pw@x/' must not contain user information\n"
     "t.yaml:8:14: monitors.g.http: 'http:///path' has no valid host (and optional port)\n"
     "t.yaml:9:13: monitors.h.tcp: expected host:port like db.example.com:5432 or [::1]:5432, "
     "got 'x'\n"
     "t.yaml:10:13: monitors.i.tcp: expected host:port like db.example.com:5432 or [::1]:5432, "
     "got '[::1]:99999'\n"
     "t.yaml:11:13: monitors.j.dns: 'a..b' is not a host name: labels of letters, digits, '-' "
     "and '_', separated by '.'\n"
     "t.yaml:12:37: monitors.k.interval: must be between 1s and 1d, got '500ms'\n"
     "t.yaml:12:56: monitors.k.down_after: must be between 1 and 100, got '0'\n"},
    {"bad objectives",
     "objectives:\n"
     "  a: { source: listener:nope, kind: availability, target: 99.9% }\n"
     "  b: { source: route:web/nope, kind: availability, target: 99.9% }\n"
     "  c: { source: monitor:nope, kind: availability, target: 99.9% }\n"
     "  d: { source: pool:site, kind: availability, target: 99.9% }\n"
     "  e: { source: route:web, kind: availability, target: 99.9% }\n"
     "  f: { source: listener:web, kind: latency, target: 99% }\n"
     "  g: { source: listener:web, kind: availability, threshold: 300ms, target: 99% }\n"
     "  h: { source: route:web/api, kind: latency, threshold: 120ms, target: 99% }\n"
     "  i: { source: listener:web, kind: availability, target: 100% }\n"
     "  j: { source: listener:web, kind: availability, target: 0% }\n"
     "  k: { source: listener:web, kind: availability, target: 99.9%, window: 12h }\n"
     "  l: { source: listener:web, kind: availability, target: 99.9%, window: 91d }\n"
     "  m: { source: listener:web, kind: availability, target: 99.9%, alerts: [ nope ] }\n"
     "  n: { source: listener:web, kind: speed, target: 99.9% }\n"
     "  o: { source: listener:web, target: 99.9% }\n"
     "  p: { source: route:web/1, kind: latency, threshold: 2500ms, target: 99%, alerts: [] }\n"
     "  q: { source: route:nope/1, kind: availability, target: 99% }\n"
     MON_BASE,
     "t.yaml:2:16: objective 'a' names listener 'nope', which does not exist; listeners are: web\n"
     "t.yaml:3:16: objective 'b' names route 'nope', which does not exist; routes of listener "
     "'web' are: api, 1\n"
     "t.yaml:4:16: objective 'c' names monitor 'nope', which does not exist; no monitors are "
     "defined\n"
     "t.yaml:5:16: objectives.d.source: expected listener:NAME, route:LISTENER/ROUTE or "
     "monitor:NAME, got 'pool:site'\n"
     "t.yaml:6:16: objectives.e.source: expected listener:NAME, route:LISTENER/ROUTE or "
     "monitor:NAME, got 'route:web'\n"
     "t.yaml:7:36: objectives.f: kind: latency needs a threshold\n"
     "t.yaml:8:61: objectives.g: threshold is only used with kind: latency\n"
     "t.yaml:9:57: objective 'h': threshold 120ms is not a bound of the gateway's latency "
     "histogram, so requests could not be counted exactly; use one of 1ms, 5ms, 10ms, 25ms, "
     "50ms, 100ms, 200ms, 250ms, 300ms, 500ms, 750ms, 1s, 2500ms, 5s, 10s\n"
     "t.yaml:10:58: objectives.i.target: must be between 0.0001% and 99.9999%, got '100%'\n"
     "t.yaml:11:58: objectives.j.target: must be between 0.0001% and 99.9999%, got '0%'\n"
     "t.yaml:12:73: objectives.k.window: must be between 1d and 90d, got '12h'\n"
     "t.yaml:13:73: objectives.l.window: must be between 1d and 90d, got '91d'\n"
     "t.yaml:14:75: item 0 of objective 'm' names alert 'nope', which does not exist; no alerts "
     "are defined\n"
     "t.yaml:15:36: objectives.n.kind: expected one of availability, latency, got 'speed'\n"
     "t.yaml:16:3: objectives.o: missing required key 'kind'\n"
     "t.yaml:17:76: objectives.p.alerts: expected 1 to 100 entries, got 0\n"
     "t.yaml:18:16: objective 'q' names listener 'nope', which does not exist; listeners are: "
     "web\n"},
    {"bad alerts, maintenance windows and store",
     "alerts:\n"
     "  a: { repeat: 4h }\n"
     "  b: { webhook: \"http://127.0.0.1:5000/hook\" }\n"
     "  c: { webhook: \"http://127.0.0.1:5000/hook\", secret_file: /nonexistent/secret }\n"
     "  d: { webhook: \"http://127.0.0.1:5000/hook\", secret_file: /tmp, email: { to: [ a@b.c ], "
     "from: b@c.d, smtp: \"smtp://x\" } }\n"
     "  e: { secret_file: /dev/null, email: { to: [ a@b.c ], from: b@c.d, smtp: \"smtp://x\" } }\n"
     "  f: { email: { to: [ nobody, \"x@y z\" ], from: b@c.d, smtp: \"http://x\", username: u } }\n"
     "  g: { email: { to: [], from: b@c.d, smtp: \"smtps://x:465\", password_file: /dev/null } }\n"
     "  h: { email: { from: b@c.d } }\n"
     "  i: { webhook: \"http://127.0.0.1:5000/hook\", secret_file: /dev/null, repeat: 10s, "
     "group_wait: 2h }\n"
     "maintenance:\n"
     "  a: { start: \"2026-12-01T02:00:00Z\", end: \"2026-12-01T02:00:00Z\" }\n"
     "  b: { start: \"2026-02-30T02:00:00Z\", end: \"2026-12-01 03:00:00\" }\n"
     "  c: { start: \"2026-12-01T02:00:00+01:00\" }\n"
     "  d: { start: \"2026-12-01T02:00:00Z\", end: \"2026-12-01T03:00:00Z\", objectives: [ nope ] "
     "}\n"
     "store: { sync: fast, queue: 1, retention: { raw: 1m, centuries: 1 } }\n"
     MON_BASE,
     "t.yaml:2:3: alerts.a: one of webhook or email is required\n"
     "t.yaml:3:17: alerts.b: webhook needs secret_file (the key that signs each call)\n"
     "t.yaml:4:60: alerts.c.secret_file: cannot read '/nonexistent/secret': No such file or "
     "directory\n"
     "t.yaml:5:60: alerts.d.secret_file: '/tmp' is not a regular file\n"
     "t.yaml:5:66: alerts.d: webhook and email cannot both be set: define two alerts\n"
     "t.yaml:6:21: alerts.e: secret_file is only used with webhook\n"
     "t.yaml:7:23: alerts.f.email.to[0]: expected an email address like ops@example.com, got "
     "'nobody'\n"
     "t.yaml:7:31: alerts.f.email.to[1]: expected an email address like ops@example.com, got "
     "'x@y z'\n"
     "t.yaml:7:61: alerts.f.email.smtp: expected an smtp:// or smtps:// URL, got 'http://x'\n"
     "t.yaml:7:83: alerts.f: email.username needs email.password_file\n"
     "t.yaml:8:17: alerts.g.email.to: expected 1 to 100 entries, got 0\n"
     "t.yaml:8:76: alerts.g: email.password_file is only used with email.username\n"
     "t.yaml:8:76: alerts.g.email.password_file: '/dev/null' is not a regular file\n"
     "t.yaml:9:8: alerts.h.email: missing required key 'to'\n"
     "t.yaml:9:8: alerts.h.email: missing required key 'smtp'\n"
     "t.yaml:10:60: alerts.i.secret_file: '/dev/null' is not a regular file\n"
     "t.yaml:10:79: alerts.i.repeat: must be between 1m and 7d, got '10s'\n"
     "t.yaml:10:96: alerts.i.group_wait: must be between 0 and 1h, got '2h'\n"
     "t.yaml:12:44: maintenance.a: end must be after start\n"
     "t.yaml:13:15: maintenance.b.start: expected a UTC time like 2026-12-01T02:00:00Z, got "
     "'2026-02-30T02:00:00Z'\n"
     "t.yaml:13:44: maintenance.b.end: expected a UTC time like 2026-12-01T02:00:00Z, got "
     "'2026-12-01 03:00:00'\n"
     "t.yaml:14:3: maintenance.c: missing required key 'end'\n"
     "t.yaml:14:15: maintenance.c.start: expected a UTC time like 2026-12-01T02:00:00Z, got "
     "'2026-12-01T02:00:00+01:00'\n"
     "t.yaml:15:82: item 0 of maintenance window 'd' names objective 'nope', which does not "
     "exist; no objectives are defined\n"
     "t.yaml:16:16: store.sync: expected one of normal, full, got 'fast'\n"
     "t.yaml:16:29: store.queue: must be between 16 and 1048576, got '1'\n"
     "t.yaml:16:50: store.retention.raw: must be between 1h and 3650d, got '1m'\n"
     "t.yaml:16:54: unknown key 'centuries' in store.retention\n"},
    {"duplicate keys",
     "workers: 1\n"
     "listeners:\n"
     "  web: { listen: \":80\", routes: [ { pool: site, pool: other } ] }\n"
     "workers: 2\n"
     "pools:\n"
     "  site: { servers: [ \":81\" ] }\n"
     "  site: { servers: [ \":82\" ] }\n",
     "t.yaml:3:49: duplicate key 'pool' (first at 3:37)\n"
     "t.yaml:4:1: duplicate key 'workers' (first at 1:1)\n"
     "t.yaml:7:3: duplicate key 'site' (first at 6:3)\n"},
    {"non-scalar key", "? [a]\n: 1\n" BASE, "t.yaml:1:3: expected a key name, got a list\n"},
    {"non-scalar nested key", "log: { [a]: 1 }\n" BASE,
     "t.yaml:1:8: log: expected a key name, got a list\n"},
    {"unsupported YAML version", "%YAML 9.9\n---\n" BASE,
     "t.yaml:1:1: unsupport version number 9.9\n"},
    {"UTF-8 byte-order mark", "\xef\xbb\xbfworkers: x\n" BASE,
     "t.yaml:1:10: workers: expected 'auto' or an integer, got 'x'\n"},
    {"top level is a list", "- workers: 1\n",
     "t.yaml:1:1: the top of the file: expected a map of keys, got a list\n"},
    {"top level is a scalar", "hello\n",
     "t.yaml:1:1: the top of the file: expected a map of keys, got 'hello'\n"},
    {"YAML syntax error", "workers: [1, 2\nlisteners: {}\n",
     "t.yaml:3:1: flow sequence without a closing bracket\n"},
    {"YAML syntax error in a block", BASE "  bad\n  - x\n", "t.yaml:8:3: missing ':'\n"},
    {"two documents", BASE "---\nworkers: 2\n",
     "t.yaml:8:1: only one YAML document is allowed in a configuration file\n"},
    {"invalid UTF-8", "log: { access: \"caf\xc3\xa9\" }\n# \xc3\xa9\xd1\n" BASE,
     "t.yaml:2:4: invalid UTF-8 (byte 0xd1): the file must be UTF-8 text\n"},
    {"invalid UTF-8 on a directive line", "%\xd1",
     "t.yaml:1:2: invalid UTF-8 (byte 0xd1): the file must be UTF-8 text\n"},
    {"UTF-16",
     "\xff\xfe"
     "a\0",
     "t.yaml:1:1: invalid UTF-8 (byte 0xff): the file must be UTF-8 text\n"},
    {"overlong UTF-8", "a: \xc0\xaf\n",
     "t.yaml:1:4: invalid UTF-8 (byte 0xc0): the file must be UTF-8 text\n"},
    {"UTF-8 surrogate", "a: \xed\xa0\x80\n",
     "t.yaml:1:4: invalid UTF-8 (byte 0xed): the file must be UTF-8 text\n"},
    {"control character", "workers: 1\x1b[0m\n" BASE,
     "t.yaml:1:11: character U+001B is not allowed in YAML (write it as an escape in a "
     "double-quoted string)\n"},
    {"C1 control character", "log: { access: \"a\xc2\x9b\" }\n" BASE,
     "t.yaml:1:18: character U+009B is not allowed in YAML (write it as an escape in a "
     "double-quoted string)\n"},
    {"tab before a block indicator", "log:\n  ? access:\t?\n",
     "t.yaml:2:12: use spaces, not a tab, between ':' and the indicator that follows it\n"},
    {"tab before a sequence entry", BASE "x: \t- 1\n",
     "t.yaml:8:4: use spaces, not a tab, between ':' and the indicator that follows it\n"},
    {"unknown alias", "workers: *n\n" BASE,
     "t.yaml:1:10: alias 'n' names no anchor defined before it\n"},
};

static void test_each_error_kind_has_its_exact_message(void **state)
{
    (void)state;
    size_t failed = 0;
    for (size_t i = 0; i < N(error_cases); i++)
        failed += !errors_are(error_cases[i].what, error_cases[i].text, error_cases[i].want);
    if (failed)
        fail_msg("%zu of %zu cases failed", failed, N(error_cases));
}

static void test_all_errors_of_a_file_are_reported_in_document_order(void **state)
{
    (void)state;
    expect_errors("many",
                  "listeners:\n"
                  "  web:\n"
                  "    listen: \":80\"\n"
                  "    timeouts: { header: fast, idel: 5s }\n"
                  "    routes: [ { pool: api } ]\n"
                  "workers: 1000\n"
                  "pools:\n"
                  "  site:\n"
                  "    servers: [ \"127.0.0.1\" ]\n"
                  "    keepalive: lots\n"
                  "wrkers: 1\n",
                  "t.yaml:4:25: listeners.web.timeouts.header: expected a duration like 2s or "
                  "250ms, got 'fast'\n"
                  "t.yaml:4:31: unknown key 'idel' in listeners.web.timeouts; did you mean "
                  "'idle'?\n"
                  "t.yaml:5:23: route 0 of listener 'web' names pool 'api', which does not "
                  "exist; pools are: site\n"
                  "t.yaml:6:10: workers: must be between 1 and 256, got '1000'\n"
                  "t.yaml:9:16: pools.site.servers[0]: expected an address like 127.0.0.1:8080, "
                  "[::1]:8080 or :8080, got '127.0.0.1'\n"
                  "t.yaml:10:16: pools.site.keepalive: expected an integer, got 'lots'\n"
                  "t.yaml:11:1: unknown key 'wrkers'; did you mean 'workers'?\n");
}

static void test_error_count_is_capped_with_a_summary(void **state)
{
    (void)state;
    size_t n = CONF_MAX_ERRORS + 5, cap = n * 16 + 64, o = 0;
    char *text = malloc(cap);
    conf_t *c;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "k%zu: 1\n", i);
    char *errs = load(text, o, &c);
    assert_null(c);
    size_t lines = 0;
    for (char *p = errs; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, CONF_MAX_ERRORS + 1);
    assert_non_null(strstr(errs, "\nt.yaml: 6 more errors not shown\n"));
    free(errs);
    free(text);
}

static void test_too_many_routes_are_refused(void **state)
{
    (void)state;
    size_t cap = 1100 * 24 + 256, o = 0;
    char *text = malloc(cap);
    o += (size_t)snprintf(text + o, cap - o,
                          "listeners:\n  web:\n    listen: \":80\"\n"
                          "    routes:\n");
    for (size_t i = 0; i < 1001; i++)
        o += (size_t)snprintf(text + o, cap - o, "      - pool: site\n");
    o += (size_t)snprintf(text + o, cap - o, "pools: { site: { servers: [ \":81\" ] } }\n");
    expect_errors("1001 routes", text,
                  "t.yaml:4:5: listeners.web.routes: expected 1 to 1000 entries, got 1001\n");
    free(text);
}

static void test_routes_resolve_among_many_pools(void **state)
{
    (void)state;
    size_t cap = 1000 * 64 + 256, o = 0;
    char *text = malloc(cap);
    o += (size_t)snprintf(text + o, cap - o,
                          "listeners:\n  web:\n    listen: \":80\"\n"
                          "    routes:\n");
    for (size_t i = 0; i < 1000; i++)
        o += (size_t)snprintf(text + o, cap - o, "      - pool: p%zu\n", 999 - i);
    o += (size_t)snprintf(text + o, cap - o, "pools:\n");
    for (size_t i = 0; i < 1000; i++)
        o +=
            (size_t)snprintf(text + o, cap - o, "  p%zu: { servers: [ \":%zu\" ] }\n", i, 1000 + i);
    conf_t *c = load_ok(text);
    for (size_t i = 0; i < 1000; i++) {
        const conf_route_t *r = &c->listeners[0].routes[i];
        assert_int_equal(r->pool, 999 - i);
        assert_int_equal(atoi(c->pools[r->pool].name + 1), 999 - i);
    }
    conf_unref(c);
    free(text);
}

static void test_alias_bombs_are_refused(void **state)
{
    (void)state;
    conf_t *c;
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    char *errs = load(bomb, strlen(bomb), &c);
    assert_null(c);
    assert_non_null(strstr(errs, "the document expands to more than 1048576 nodes"));
    free(errs);
}

static void test_nul_byte_is_refused_before_libfyaml_sees_it(void **state)
{
    (void)state;
    conf_t *c;
    /* libfyaml 0.7.12 crashes in fy_parser_destroy on this one. */
    char *errs = load("? s:\t\0", 6, &c);
    assert_null(c);
    assert_string_equal(errs, "t.yaml:1:6: character U+0000 is not allowed in YAML (write it as "
                              "an escape in a double-quoted string)\n");
    free(errs);
}

static void test_tabs_elsewhere_are_still_yaml_separators(void **state)
{
    (void)state;
    /* Tab-indented JSON, and tabs before values that are not indicators. */
    conf_t *c = load_ok("{\n\t\"workers\":\t2,\n\t\"listeners\": {\"web\": {\"listen\":\t\":80\",\n"
                        "\t\t\"routes\": [{\"pool\": \"p\"}]}},\n"
                        "\t\"pools\": {\"p\": {\"servers\": [\":81\"], \"keepalive\":\t-0}}\n}\n");
    assert_int_equal(c->workers, 2);
    conf_unref(c);
    c = load_ok("drain_timeout:\t5s\n" BASE);
    assert_int_equal(c->drain_timeout_ms, 5000);
    conf_unref(c);
}

static void test_oversized_input_is_refused_without_parsing(void **state)
{
    (void)state;
    conf_t *c;
    char *errs = load("", (size_t)CONF_MAX_INPUT + 1, &c);
    assert_null(c);
    assert_string_equal(errs, "t.yaml: cannot read: larger than 16 MiB\n");
    free(errs);
}

static void test_unreadable_file_has_no_position(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&out, &len);
    assert_null(conf_load("/nonexistent/surety.yaml", errs));
    assert_null(conf_load("/", errs));
    fclose(errs);
    assert_string_equal(out, "/nonexistent/surety.yaml: cannot read: No such file or directory\n"
                             "/: cannot read: Is a directory\n");
    free(out);
}

static void test_errors_go_nowhere_when_errs_is_null(void **state)
{
    (void)state;
    assert_null(conf_load_string("t.yaml", "workers: x\n", 11, NULL));
    assert_null(conf_load("/nonexistent/surety.yaml", NULL));
}

/* ---- the key table and the docs */

static void check_keys(const char *prefix, const conf_key_t *keys)
{
    size_t n = 0;
    for (const conf_key_t *k = keys; k->name; k++, n++) {
        uint64_t u;
        int64_t s;
        uint32_t ppm;
        conf_rate_t r;
        char path[256];
        snprintf(path, sizeof(path), "%s%s", prefix, k->name);
        assert_non_null(k->help);
        if (k->type == CONF_T_LATER)
            continue;
        const char *texts[] = {k->def, k->min, k->max};
        for (size_t i = 0; i < 3; i++) {
            const char *t = texts[i];
            int rc = 0;
            if (!t)
                continue;
            switch (k->type) {
            case CONF_T_INT:
            case CONF_T_NAMED:
            case CONF_T_LIST:
                rc = (i == 0 && (k->flags & CONF_F_AUTO) && !strcmp(t, "auto"))
                         ? 0
                         : conf_int_parse(t, strlen(t), &s);
                if (rc == 0 && i > 0 && s < 0)
                    fail_msg("%s: negative limit for an unsigned field", path);
                break;
            case CONF_T_DURATION:
                rc = conf_duration_parse(t, strlen(t), &u);
                break;
            case CONF_T_SIZE:
                rc = conf_size_parse(t, strlen(t), &u);
                break;
            case CONF_T_PERCENT:
                rc = conf_percent_parse(t, strlen(t), &ppm);
                break;
            case CONF_T_RATE:
                rc = conf_rate_parse(t, strlen(t), &r);
                break;
            case CONF_T_BOOL:
                rc = conf_bool_parse(t, strlen(t), &(bool){0});
                break;
            case CONF_T_ENUM:
                rc = -EINVAL;
                for (size_t v = 0; k->values[v]; v++)
                    rc = strcmp(k->values[v], t) == 0 ? 0 : rc;
                break;
            case CONF_T_ADDRESS: {
                sock_addr_t a;
                rc = (k->flags & CONF_F_OFF) && !strcmp(t, "off")
                         ? 0
                         : sock_addr_parse(t, strlen(t), &a);
                break;
            }
            default:
                break;
            }
            if (rc != 0)
                fail_msg("%s: '%s' does not parse as its type", path, t);
        }
        if (k->type == CONF_T_INT && k->min)
            assert_true(k->size == sizeof(unsigned) || k->size == sizeof(size_t));
        if (k->type == CONF_T_MAP || k->type == CONF_T_NAMED || k->type == CONF_T_LIST) {
            assert_non_null(k->sub);
            snprintf(path, sizeof(path), "%s%s.", prefix, k->name);
            check_keys(path, k->sub);
        }
        if (k->type == CONF_T_NAMED || k->type == CONF_T_LIST)
            assert_non_null(k->noun);
        if (k->type == CONF_T_CUSTOM) {
            /* Its default is proven by the defaults test, which loads it. */
            assert_non_null(k->parse);
            assert_non_null(k->doc_type);
            assert_non_null(k->expect);
        }
        if (k->type == CONF_T_FLAGS) {
            size_t nv = 0;
            while (k->values[nv])
                nv++;
            assert_true(nv <= 32 && k->size == sizeof(unsigned)); /* one bit each */
        }
        if (k->type == CONF_T_REF) {
            const conf_key_t *t = conf_key_find(conf_root.sub, k->ref, strlen(k->ref));
            assert_non_null(t);
            assert_int_equal(t->type, CONF_T_NAMED);
        }
    }
    assert_true(n <= 32); /* walk.c MAX_KEYS */
}

static void test_every_default_and_limit_in_the_table_parses(void **state)
{
    (void)state;
    check_keys("", conf_root.sub);
}

static void test_generated_reference_matches_docs_configuration_md(void **state)
{
    (void)state;
    const char *root = getenv("SURETY_SOURCE_ROOT");
    char path[4096], *want = NULL, *got = NULL;
    size_t wantlen = 0, gotlen = 0;

    if (!root) {
        print_message("SURETY_SOURCE_ROOT is not set (run through meson test)\n");
        skip();
    }
    snprintf(path, sizeof(path), "%s/docs/configuration.md", root);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s: run scripts/gen-config-doc.sh", path);
    FILE *w = open_memstream(&want, &wantlen);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, w);
    fclose(f);
    fclose(w);
    FILE *g = open_memstream(&got, &gotlen);
    conf_doc_write(g);
    fclose(g);
    if (gotlen != wantlen || memcmp(got, want, gotlen) != 0)
        fail_msg("docs/configuration.md is stale: run scripts/gen-config-doc.sh");
    free(want);
    free(got);
}

static void test_reference_error_example_is_what_check_says(void **state)
{
    (void)state;
    conf_t *c;
    char *errs = load_as("surety.yaml", conf_doc_bad_example, strlen(conf_doc_bad_example), &c);
    assert_null(c);
    assert_string_equal(errs, conf_doc_bad_errors);
    free(errs);
}

static void test_reference_documents_every_key(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "### `workers`",
        "### `admin.listen`",
        "### `log.client_ip`",
        "### `listeners.<name>.timeouts.header`",
        "### `listeners.<name>.limits.header_bytes`",
        "### `listeners.<name>.routes[].pool`",
        "### `pools.<name>.servers[].weight`",
        "### `pools.<name>.keepalive`",
        "- `tls`: ",
        "### `pools.<name>.hash`",
        "### `pools.<name>.slow_start`",
        "### `pools.<name>.backup`",
        "### `pools.<name>.failover.min_healthy`",
        "### `pools.<name>.health.expect`",
        "### `pools.<name>.outlier.max_ejected`",
        "### `pools.<name>.retry.on`",
        "### `store.retention.deliveries`",
        "### `monitors.<name>.cert_days`",
        "### `objectives.<name>.source`",
        "### `objectives.<name>.alerts[].alert`",
        "### `alerts.<name>.email.to[].address`",
        "### `maintenance.<name>.end`",
        "## Complete example",
    };
    char *doc = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&doc, &len);
    conf_doc_write(f);
    fclose(f);
    for (size_t i = 0; i < N(paths); i++)
        if (!strstr(doc, paths[i]))
            fail_msg("the reference lacks %s", paths[i]);
    /* What exists is no longer listed as planned. */
    static const char *const gone[] = {
        "- `pools.<name>.hash`:",     "- `pools.<name>.backup`:",  "- `pools.<name>.failover`:",
        "- `pools.<name>.health`:",   "- `pools.<name>.outlier`:", "- `pools.<name>.retry`:",
        "- `store`:",                 "- `monitors`:",             "- `objectives`:",
        "- `alerts`:",                "- `maintenance`:",
        "planned, not supported yet",
    };
    for (size_t i = 0; i < N(gone); i++)
        if (strstr(doc, gone[i]))
            fail_msg("the reference still says %s", gone[i]);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_example_loads_with_every_value),
        cmocka_unit_test(test_minimal_file_gets_the_documented_defaults),
        cmocka_unit_test(test_balance_values_and_hash_keys_are_stored),
        cmocka_unit_test(test_health_check_values_are_stored),
        cmocka_unit_test(test_backup_chain_and_failover_are_resolved),
        cmocka_unit_test(test_outlier_and_retry_values_are_stored),
        cmocka_unit_test(test_webhook_alert_and_monitor_objectives_are_resolved),
        cmocka_unit_test(test_json_file_is_accepted),
        cmocka_unit_test(test_json_errors_have_positions_too),
        cmocka_unit_test(test_off_values_disable_admin_and_access_log),
        cmocka_unit_test(test_route_host_is_stored_lower_case_without_final_dot),
        cmocka_unit_test(test_aliases_share_settings),
        cmocka_unit_test(test_load_reads_a_file),
        cmocka_unit_test(test_references_are_counted_across_threads),
        cmocka_unit_test(test_each_error_kind_has_its_exact_message),
        cmocka_unit_test(test_all_errors_of_a_file_are_reported_in_document_order),
        cmocka_unit_test(test_error_count_is_capped_with_a_summary),
        cmocka_unit_test(test_too_many_routes_are_refused),
        cmocka_unit_test(test_routes_resolve_among_many_pools),
        cmocka_unit_test(test_alias_bombs_are_refused),
        cmocka_unit_test(test_nul_byte_is_refused_before_libfyaml_sees_it),
        cmocka_unit_test(test_tabs_elsewhere_are_still_yaml_separators),
        cmocka_unit_test(test_oversized_input_is_refused_without_parsing),
        cmocka_unit_test(test_unreadable_file_has_no_position),
        cmocka_unit_test(test_errors_go_nowhere_when_errs_is_null),
        cmocka_unit_test(test_every_default_and_limit_in_the_table_parses),
        cmocka_unit_test(test_generated_reference_matches_docs_configuration_md),
        cmocka_unit_test(test_reference_error_example_is_what_check_says),
        cmocka_unit_test(test_reference_documents_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
