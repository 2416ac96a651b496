/* The access log: real file, real writer thread; privacy rules and escaping. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/access_log.h"

/* Logs one entry with the given settings and returns the file's content. */
static char *log_one(conf_client_ip_t mode, bool query, const char *ip, const char *path)
{
    static char content[8192];
    char file[] = "/tmp/surety-alog-XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    close(fd);
    conf_t conf = {.access_log = file, .client_ip = mode, .log_query = query};
    int err = 0;
    access_log_t *log = access_log_open(&conf, &err);
    assert_non_null(log);
    uint64_t dropped = 0;
    access_log_writer_t w;
    access_log_writer_init(&w, log, &dropped);
    sock_addr_t a;
    char text[80];
    snprintf(text, sizeof(text), strchr(ip, ':') ? "[%s]:1234" : "%s:1234", ip);
    assert_int_equal(sock_addr_parse(text, strlen(text), &a), 0);
    access_log_entry_t e = {
        .wall_ms = 1795000000123ULL,
        .listener = "web",
        .route = "r1",
        .pool = "site",
        .server = "127.0.0.1:9001",
        .client = &a,
        .method = "GET",
        .path = path,
        .path_len = strlen(path),
        .status = 200,
        .bytes_in = 10,
        .bytes_out = 20,
        .duration_us = 1500,
        .request_id = "abc",
    };
    access_log_add(&w, &e);
    access_log_flush(&w);
    access_log_close(log);
    FILE *f = fopen(file, "r");
    size_t n = fread(content, 1, sizeof(content) - 1, f);
    content[n] = 0;
    fclose(f);
    unlink(file);
    assert_int_equal(dropped, 0);
    return content;
}

static void test_line_is_json_with_every_field(void **state)
{
    (void)state;
    char *line = log_one(CONF_CLIENT_IP_TRUNCATE, false, "203.0.113.77", "/a/b");
    assert_string_equal(line,
                        "{\"ts\":\"2026-11-18T11:06:40.123Z\",\"listener\":\"web\",\"route\":\"r1\","
                        "\"pool\":\"site\",\"server\":\"127.0.0.1:9001\",\"client\":\"203.0.113.0\","
                        "\"method\":\"GET\",\"path\":\"/a/b\",\"status\":200,\"bytes_in\":10,"
                        "\"bytes_out\":20,\"duration_s\":0.001500,\"request_id\":\"abc\"}\n");
}

static void test_ipv6_is_truncated_to_48(void **state)
{
    (void)state;
    char *line = log_one(CONF_CLIENT_IP_TRUNCATE, false, "2001:db8:1234:5678::1", "/");
    assert_non_null(strstr(line, "\"client\":\"2001:db8:1234::\""));
}

static void test_full_and_hash_modes(void **state)
{
    (void)state;
    char *line = log_one(CONF_CLIENT_IP_FULL, false, "203.0.113.77", "/");
    assert_non_null(strstr(line, "\"client\":\"203.0.113.77\""));
    line = log_one(CONF_CLIENT_IP_HASH, false, "203.0.113.77", "/");
    assert_null(strstr(line, "203.0.113"));
    char *c = strstr(line, "\"client\":\"");
    assert_non_null(c);
    c += 10;
    for (int i = 0; i < 16; i++)
        assert_non_null(strchr("0123456789abcdef", c[i]));
    assert_int_equal(c[16], '"');
}

static void test_query_is_dropped_unless_configured(void **state)
{
    (void)state;
    char *line = log_one(CONF_CLIENT_IP_TRUNCATE, false, "10.0.0.1", "/p?token=secret");
    assert_non_null(strstr(line, "\"path\":\"/p\""));
    assert_null(strstr(line, "secret"));
    line = log_one(CONF_CLIENT_IP_TRUNCATE, true, "10.0.0.1", "/p?token=x");
    assert_non_null(strstr(line, "\"path\":\"/p?token=x\""));
}

static void test_hostile_path_is_escaped(void **state)
{
    (void)state;
    char *line = log_one(CONF_CLIENT_IP_TRUNCATE, false, "10.0.0.1", "/\"x\\\x01\xff");
    assert_non_null(strstr(line, "\"path\":\"/\\u0022x\\u005c\\u0001\\u00ff\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_is_json_with_every_field),
        cmocka_unit_test(test_ipv6_is_truncated_to_48),
        cmocka_unit_test(test_full_and_hash_modes),
        cmocka_unit_test(test_query_is_dropped_unless_configured),
        cmocka_unit_test(test_hostile_path_is_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
