/* Route selection: see route.h. */
#include "gateway/route.h"

#include <string.h>

static str_t host_without_port(str_t host)
{
    if (host.len && host.p[0] == '[') { /* [v6]:port */
        const char *end = memchr(host.p, ']', host.len);
        return end ? str_from(host.p, (size_t)(end - host.p) + 1) : host;
    }
    const char *colon = host.len ? memchr(host.p, ':', host.len) : NULL;
    if (colon)
        host.len = (size_t)(colon - host.p);
    /* A fully qualified "example.com." names the same host. */
    if (host.len && host.p[host.len - 1] == '.')
        host.len--;
    return host;
}

static bool host_matches(const char *pattern, str_t host)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        str_t suffix = str_cstr(pattern + 1); /* ".example.com" */
        return host.len > suffix.len && str_case_has_suffix(host, suffix);
    }
    return str_case_eq(host, str_cstr(pattern));
}

int route_match(const conf_listener_t *l, str_t host, str_t path)
{
    host = host_without_port(host);
    for (size_t i = 0; i < l->nroutes; i++) {
        const conf_route_t *r = &l->routes[i];
        if (r->host && !host_matches(r->host, host))
            continue;
        if (r->path && !str_has_prefix(path, str_cstr(r->path)))
            continue;
        return (int)i;
    }
    return -1;
}
