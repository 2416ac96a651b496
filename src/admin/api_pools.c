/* The pools API of the admin listener: what every server of every pool is
 * doing (GET /api/v1/pools, JSON or ?format=text for `surety status`), and
 * maintenance without a reload (POST /api/v1/servers/{drain,disable,enable}
 * ?pool=NAME&server=ADDRESS). Runs on the control thread. */
#include "admin/api_pools.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

static const char *health_name(uint8_t h)
{
    return h == SRV_UP ? "up" : "down";
}

static const char *admin_name(uint8_t a)
{
    return a == SRV_ENABLED ? "enabled" : a == SRV_DRAINING ? "draining" : "disabled";
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void api_pools_event(api_pools_t *a, const char *text)
{
    api_event_t *e = &a->events[a->nevents++ % API_EVENTS];
    e->wall_ms = loop_wall_ms(a->loop);
    snprintf(e->text, sizeof(e->text), "%s", text);
}

static void format_time(uint64_t wall_ms, char *out, size_t n)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t o = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + o, n - o, ".%03uZ", (unsigned)(wall_ms % 1000));
}

/* Calls fn for each recorded event, oldest first. */
static void each_event(const api_pools_t *a, void (*fn)(const api_event_t *, void *), void *ud)
{
    size_t first = a->nevents > API_EVENTS ? a->nevents - API_EVENTS : 0;
    for (size_t i = first; i < a->nevents; i++)
        fn(&a->events[i % API_EVENTS], ud);
}

static void event_text(const api_event_t *e, void *ud)
{
    char ts[40];
    format_time(e->wall_ms, ts, sizeof(ts));
    admin_response_printf(ud, "  %s  %s\n", ts, e->text);
}

static void event_json(const api_event_t *e, void *ud)
{
    char ts[40];
    format_time(e->wall_ms, ts, sizeof(ts));
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "event", json_string(e->text));
    json_array_append_new(ud, o);
}

static json_t *server_json(const api_pools_t *a, size_t p, size_t i, uint64_t now)
{
    const server_state_t *s = &a->state->pools[p].servers[i];
    uint64_t ejected_until = LOAD(s->ejected_until);
    json_t *o = json_object();
    json_object_set_new(o, "address", json_string(s->address));
    json_object_set_new(o, "weight", json_integer(s->weight));
    json_object_set_new(o, "health", json_string(health_name(LOAD(s->health))));
    json_object_set_new(o, "admin", json_string(admin_name(LOAD(s->admin))));
    json_object_set_new(o, "usable", json_boolean(state_server_usable(s, now)));
    json_object_set_new(o, "inflight", json_integer(gateway_server_inflight(a->gateway, a->state, p, i)));
    unsigned max = a->conf->pools[p].servers[i].max_inflight;
    json_object_set_new(o, "max_inflight", max ? json_integer(max) : json_null());
    json_object_set_new(o, "ewma_ms", json_real((double)LOAD(s->ewma_us) / 1000.0));
    json_object_set_new(o, "ejected_for_ms",
                        json_integer(ejected_until > now ? (json_int_t)(ejected_until - now) : 0));
    json_object_set_new(o, "ejections", json_integer(LOAD(s->ejections)));
    json_object_set_new(o, "consecutive_errors", json_integer(LOAD(s->consecutive_errors)));
    if (s->last_check) {
        json_t *c = json_object();
        json_object_set_new(c, "ago_ms", json_integer((json_int_t)(now - s->last_check)));
        json_object_set_new(c, "status", json_integer(s->last_status));
        json_object_set_new(c, "error", json_string(s->last_error));
        json_object_set_new(o, "last_check", c);
    } else {
        json_object_set_new(o, "last_check", json_null());
    }
    return o;
}

static int write_text(const api_pools_t *a, admin_response_t *res, uint64_t now)
{
    const conf_t *conf = a->conf;
    for (size_t p = 0; p < conf->npools; p++) {
        const pool_state_t *ps = &a->state->pools[p];
        size_t serving = LOAD(ps->serving);
        admin_response_printf(res, "pool %s: %zu/%zu usable", ps->name,
                              state_pool_usable(ps, now), ps->nservers);
        if (serving != p)
            admin_response_printf(res, ", FAILED OVER to %s", conf->pools[serving].name);
        int64_t queued = gateway_pool_queued(a->gateway, a->state, p);
        if (queued)
            admin_response_printf(res, ", %lld waiting for a max_inflight slot", (long long)queued);
        if (conf->pools[p].backup != SIZE_MAX)
            admin_response_printf(res, " (backup %s, %llu failovers/failbacks)",
                                  conf->pools[conf->pools[p].backup].name,
                                  (unsigned long long)ps->failovers);
        admin_response_printf(res, "\n  %-24s %6s %-5s %-9s %-6s %8s %8s %9s  %s\n", "SERVER",
                              "WEIGHT", "STATE", "ADMIN", "USABLE", "INFLIGHT", "EWMA", "EJECTED",
                              "LAST CHECK");
        for (size_t i = 0; i < ps->nservers; i++) {
            const server_state_t *s = &ps->servers[i];
            uint64_t until = LOAD(s->ejected_until);
            char ej[32] = "-", chk[160] = "-", ewma[32] = "-", infl[32];
            long long n = (long long)gateway_server_inflight(a->gateway, a->state, p, i);
            unsigned max = conf->pools[p].servers[i].max_inflight;
            if (max) /* the limit beside the count: "3/64" */
                snprintf(infl, sizeof(infl), "%lld/%u", n, max);
            else
                snprintf(infl, sizeof(infl), "%lld", n);
            uint64_t e_us = LOAD(s->ewma_us);
            if (e_us)
                snprintf(ewma, sizeof(ewma), "%.1fms", (double)e_us / 1000.0);
            if (until > now)
                snprintf(ej, sizeof(ej), "%llus", (unsigned long long)((until - now + 999) / 1000));
            if (s->last_check)
                snprintf(chk, sizeof(chk), "%llums ago: %s", (unsigned long long)(now - s->last_check),
                         s->last_error[0] ? s->last_error : "ok");
            admin_response_printf(res, "  %-24s %6u %-5s %-9s %-6s %8s %8s %9s  %s\n",
                                  s->address, s->weight, health_name(LOAD(s->health)),
                                  admin_name(LOAD(s->admin)),
                                  state_server_usable(s, now) ? "yes" : "no", infl, ewma, ej,
                                  chk);
        }
    }
    if (a->nevents) {
        admin_response_printf(res, "recent failovers and failbacks:\n");
        each_event(a, event_text, res);
    }
    if (a->conf->nshields) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
            return -ENOMEM;
        gateway_shield_summary(a->gateway, f);
        fclose(f);
        int r = text ? admin_response_append(res, text, len) : -ENOMEM;
        free(text);
        return r;
    }
    return 0;
}

int api_pools_get(const admin_request_t *req, admin_response_t *res, void *ud)
{
    const api_pools_t *a = ud;
    uint64_t now = loop_now(a->loop);
    if (str_eq(admin_query_param(req->query, "format"), STR_LIT("text")))
        return write_text(a, res, now);
    json_t *pools = json_array();
    for (size_t p = 0; p < a->conf->npools; p++) {
        const pool_state_t *ps = &a->state->pools[p];
        const conf_pool_t *pc = &a->conf->pools[p];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(ps->name));
        json_object_set_new(o, "serving", json_string(a->conf->pools[LOAD(ps->serving)].name));
        json_object_set_new(o, "backup", pc->backup == SIZE_MAX
                                             ? json_null()
                                             : json_string(a->conf->pools[pc->backup].name));
        json_object_set_new(o, "failovers", json_integer((json_int_t)ps->failovers));
        json_object_set_new(o, "usable", json_integer((json_int_t)state_pool_usable(ps, now)));
        json_object_set_new(o, "queued",
                            json_integer(gateway_pool_queued(a->gateway, a->state, p)));
        json_t *servers = json_array();
        for (size_t i = 0; i < ps->nservers; i++)
            json_array_append_new(servers, server_json(a, p, i, now));
        json_object_set_new(o, "servers", servers);
        json_array_append_new(pools, o);
    }
    json_t *root = json_object();
    json_object_set_new(root, "pools", pools);
    json_t *events = json_array();
    each_event(a, event_json, events);
    json_object_set_new(root, "events", events);
    char *text = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    if (!text)
        return -ENOMEM;
    admin_response_type(res, "application/json");
    int r = admin_response_append(res, text, strlen(text));
    free(text);
    return r < 0 ? r : admin_response_append(res, "\n", 1);
}

static server_state_t *find_server(const api_pools_t *a, str_t pool, str_t server)
{
    for (size_t p = 0; p < a->state->npools; p++) {
        pool_state_t *ps = &a->state->pools[p];
        if (!str_eq(str_cstr(ps->name), pool))
            continue;
        for (size_t i = 0; i < ps->nservers; i++)
            if (str_eq(str_cstr(ps->servers[i].address), server))
                return &ps->servers[i];
    }
    return NULL;
}

static int set_admin(const admin_request_t *req, admin_response_t *res, const api_pools_t *a,
                     uint8_t to)
{
    str_t pool = admin_query_param(req->query, "pool"), server = admin_query_param(req->query, "server");
    if (!pool.len || !server.len)
        return admin_response_error(res, 400, "give ?pool=NAME&server=ADDRESS");
    server_state_t *s = find_server(a, pool, server);
    if (!s)
        return admin_response_error(res, 404, "no such pool and server");
    uint8_t was = __atomic_exchange_n(&s->admin, to, __ATOMIC_RELAXED);
    if (to == SRV_ENABLED && was != SRV_ENABLED)
        __atomic_store_n(&s->back_since, loop_now(a->loop), __ATOMIC_RELAXED);
    log_info("admin: pool %s server %s: %s -> %s", s->pool, s->address, admin_name(was),
             admin_name(to));
    admin_response_type(res, "application/json");
    return admin_response_printf(res, "{\"pool\": \"%s\", \"server\": \"%s\", \"admin\": \"%s\"}\n",
                                 s->pool, s->address, admin_name(to));
}

int api_servers_drain(const admin_request_t *req, admin_response_t *res, void *ud)
{
    return set_admin(req, res, ud, SRV_DRAINING);
}

int api_servers_disable(const admin_request_t *req, admin_response_t *res, void *ud)
{
    return set_admin(req, res, ud, SRV_DISABLED);
}

int api_servers_enable(const admin_request_t *req, admin_response_t *res, void *ud)
{
    return set_admin(req, res, ud, SRV_ENABLED);
}
