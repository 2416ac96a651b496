/* Route matching: exact and wildcard hosts, ports, case, path prefixes, order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/route.h"

static conf_route_t routes[] = {
    {.name = "api", .host = "api.example.com", .path = "/v1/", .pool = 0},
    {.name = "wild", .host = "*.example.com", .path = NULL, .pool = 1},
    {.name = "static", .host = NULL, .path = "/static/", .pool = 2},
    {.name = "default", .host = NULL, .path = NULL, .pool = 3},
};
static conf_listener_t listener = {.name = "web", .routes = routes, .nroutes = 4};

static int match(const char *host, const char *path)
{
    return route_match(&listener, str_cstr(host), str_cstr(path));
}

static void test_routes_match_in_order(void **state)
{
    (void)state;
    static const struct {
        const char *host, *path;
        int want;
    } cases[] = {
        {"api.example.com", "/v1/users", 0},
        {"API.Example.COM:8080", "/v1/x", 0},   /* case and port ignored */
        {"api.example.com.", "/v1/x", 0},       /* trailing dot */
        {"api.example.com", "/v2/users", 1},    /* path misses: wildcard next */
        {"a.b.example.com", "/", 1},
        {"example.com", "/", 3},                /* *.example.com excludes the apex */
        {"badexample.com", "/", 3},
        {"other.org", "/static/app.js", 2},
        {"other.org", "/staticx", 3},
        {"", "/", 3},
        {"[::1]:8080", "/static/x", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = match(cases[i].host, cases[i].path);
        if (got != cases[i].want)
            fail_msg("host %s path %s: got %d want %d", cases[i].host, cases[i].path, got,
                     cases[i].want);
    }
}

static void test_no_default_route_gives_minus_one(void **state)
{
    (void)state;
    conf_listener_t l = {.name = "x", .routes = routes, .nroutes = 1};
    assert_int_equal(route_match(&l, STR_LIT("other"), STR_LIT("/")), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_match_in_order),
        cmocka_unit_test(test_no_default_route_gives_minus_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
