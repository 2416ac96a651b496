/* The security API, on the control thread:
 *   GET  /api/v1/security/events?limit=N&client=ADDRESS  newest first
 *   GET  /api/v1/bans
 *   POST /api/v1/bans       {"address": "198.51.100.7", "for": "1h", "reason": "..."}
 *   POST /api/v1/bans/lift  {"address": "198.51.100.7"}
 * POST bodies may also be given as query parameters (?address=...&for=...),
 * which is handier from curl. The security center (src/shield/secev.h) does
 * the work; this file only translates. */
#include "admin/api_security.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/api_pools.h"
#include "gateway/gateway.h"

#define EVENTS_DEFAULT 100

int api_send_json(admin_response_t *res, json_t *o)
{
    if (!o)
        return -ENOMEM;
    char *text = json_dumps(o, JSON_INDENT(1));
    json_decref(o);
    if (!text)
        return -ENOMEM;
    admin_response_type(res, "application/json");
    int r = admin_response_printf(res, "%s\n", text);
    free(text);
    return r;
}

/* A parameter from the JSON body, else from the query; NUL-terminated
 * into out. False when absent or too long. */
static bool param(const admin_request_t *req, json_t *body, const char *name, char *out, size_t n)
{
    const char *v = body ? json_string_value(json_object_get(body, name)) : NULL;
    if (v) {
        if (strlen(v) >= n)
            return false;
        snprintf(out, n, "%s", v);
        return true;
    }
    str_t q = admin_query_param(req->query, name);
    if (!q.len || q.len >= n)
        return false;
    memcpy(out, q.p, q.len);
    out[q.len] = 0;
    return true;
}

int api_security_events(const admin_request_t *req, admin_response_t *res, void *ud)
{
    gateway_t *g = ((const api_pools_t *)ud)->gateway;
    char client[64] = "", lim[16] = "";
    size_t limit = EVENTS_DEFAULT;
    if (param(req, NULL, "limit", lim, sizeof(lim))) {
        char *end;
        unsigned long v = strtoul(lim, &end, 10);
        if (*end || v == 0)
            return admin_response_error(res, 400, "limit must be a positive whole number");
        limit = v;
    }
    param(req, NULL, "client", client, sizeof(client));
    json_t *v = sec_events_json(shield_sec(gateway_shield(g)), limit, client[0] ? client : NULL);
    return api_send_json(res, v ? json_pack("{s:o}", "events", v) : NULL);
}

int api_bans_get(const admin_request_t *req, admin_response_t *res, void *ud)
{
    (void)req;
    gateway_t *g = ((const api_pools_t *)ud)->gateway;
    json_t *v = sec_bans_json(shield_sec(gateway_shield(g)));
    return api_send_json(res, v ? json_pack("{s:o}", "bans", v) : NULL);
}

static json_t *body_json(const admin_request_t *req)
{
    if (!req->body.len)
        return NULL;
    return json_loadb(req->body.p, req->body.len, 0, NULL);
}

int api_bans_add(const admin_request_t *req, admin_response_t *res, void *ud)
{
    gateway_t *g = ((const api_pools_t *)ud)->gateway;
    json_t *body = body_json(req);
    char addr[64], dur[32] = "1h", reason[128] = "manual";
    uint64_t for_ms;
    int r;
    if (req->body.len && !body)
        return admin_response_error(res, 400, "the body must be a JSON object");
    if (!param(req, body, "address", addr, sizeof(addr))) {
        r = admin_response_error(res, 400, "give the address to ban: {\"address\": \"...\"}");
        goto out;
    }
    param(req, body, "for", dur, sizeof(dur));
    param(req, body, "reason", reason, sizeof(reason));
    if (conf_duration_parse(dur, strlen(dur), &for_ms) < 0 || for_ms == 0) {
        r = admin_response_error(res, 400, "for must be a duration like 10m, 1h or 30d");
        goto out;
    }
    r = sec_ban_add(shield_sec(gateway_shield(g)), addr, for_ms, reason);
    if (r == -EINVAL) {
        r = admin_response_error(res, 400, "not an IPv4 or IPv6 address");
        goto out;
    }
    if (r < 0)
        goto out;
    admin_response_status(res, 201);
    r = api_send_json(res, json_pack("{s:s, s:I}", "banned", addr, "for_ms", (json_int_t)for_ms));
out:
    json_decref(body);
    return r;
}

int api_bans_lift(const admin_request_t *req, admin_response_t *res, void *ud)
{
    gateway_t *g = ((const api_pools_t *)ud)->gateway;
    json_t *body = body_json(req);
    char addr[64];
    int r;
    if (req->body.len && !body)
        return admin_response_error(res, 400, "the body must be a JSON object");
    if (!param(req, body, "address", addr, sizeof(addr))) {
        json_decref(body);
        return admin_response_error(res, 400, "give the address: {\"address\": \"...\"}");
    }
    r = sec_ban_lift(shield_sec(gateway_shield(g)), addr);
    if (r == -EINVAL)
        r = admin_response_error(res, 400, "not an IPv4 or IPv6 address");
    else if (r == -ENOENT)
        r = admin_response_error(res, 404, "that address is not banned");
    else if (r == 0)
        r = api_send_json(res, json_pack("{s:s}", "lifted", addr));
    json_decref(body);
    return r;
}
