/* Unit tests for src/core/sock.c: address parsing and formatting (table-
 * driven, the configuration contract's address forms) and a real
 * listen/connect/accept round on loopback with an ephemeral port. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/sock.h"

static void test_sock_addr_parse_accepts_the_documented_forms(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *formatted;
        int family;
        int port;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1:8080", AF_INET, 8080},
        {":8080", "0.0.0.0:8080", AF_INET, 8080},
        {"0.0.0.0:0", "0.0.0.0:0", AF_INET, 0},
        {"[::1]:9090", "[::1]:9090", AF_INET6, 9090},
        {"[::]:65535", "[::]:65535", AF_INET6, 65535},
        {"[2001:db8::1]:443", "[2001:db8::1]:443", AF_INET6, 443},
        {"10.0.0.1:00080", "10.0.0.1:80", AF_INET, 80},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sock_addr_t a;
        char text[SOCK_ADDR_TEXT_MAX];
        assert_int_equal(sock_addr_parse(cases[i].in, strlen(cases[i].in), &a), 0);
        assert_int_equal(a.ss.ss_family, cases[i].family);
        assert_int_equal(sock_addr_port(&a), cases[i].port);
        sock_addr_format(&a, text, sizeof(text));
        assert_string_equal(text, cases[i].formatted);
    }
}

static void test_sock_addr_parse_rejects_malformed_addresses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "8080",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:123456",
        "127.0.0.1:80a",
        "127.0.0.1:-1",
        "127.0.0.1: 80",
        "localhost:80", /* numeric only: no resolution */
        "::1:80",       /* IPv6 needs brackets */
        "[::1]",
        "[::1]:",
        "[::1]80",
        "[::1:80",
        "[]:80",
        "[127.0.0.1]:80",
        "256.0.0.1:80",
        "1.2.3.4:80:90",
        "012345678901234567890123456789012345678901234567890123456789:80", /* too long */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sock_addr_t a;
        a.len = 77;
        assert_int_equal(sock_addr_parse(bad[i], strlen(bad[i]), &a), -EINVAL);
        assert_int_equal(a.len, 77); /* untouched on failure */
    }
}

static void test_sock_addr_parse_reads_only_len_bytes(void **state)
{
    (void)state;
    sock_addr_t a;
    const char text[] = "127.0.0.1:80xyz";
    assert_int_equal(sock_addr_parse(text, 12, &a), 0);
    assert_int_equal(sock_addr_port(&a), 80);
    char ip[SOCK_ADDR_TEXT_MAX];
    sock_addr_format_ip(&a, ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.1");
}

static void bound_addr(int fd, sock_addr_t *a)
{
    a->len = sizeof(a->ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a->ss, &a->len), 0);
}

static bool wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, 2000) == 1;
}

static void test_sock_listen_connect_accept_on_loopback(void **state)
{
    (void)state;
    sock_addr_t a, bound, peer;
    assert_int_equal(sock_addr_parse("127.0.0.1:0", 11, &a), 0);
    int lfd = sock_listen(&a, false, 16);
    assert_true(lfd >= 0);
    assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    bound_addr(lfd, &bound);
    assert_true(sock_addr_port(&bound) > 0);

    assert_int_equal(sock_accept(lfd, &peer), -EAGAIN);

    int cfd = sock_connect(&bound);
    assert_true(cfd >= 0);
    assert_true(wait_fd(cfd, POLLOUT));
    assert_int_equal(sock_error(cfd), 0);
    assert_true(wait_fd(lfd, POLLIN));
    int sfd = sock_accept(lfd, &peer);
    assert_true(sfd >= 0);
    assert_true(fcntl(sfd, F_GETFL) & O_NONBLOCK);
    char ip[SOCK_ADDR_TEXT_MAX];
    sock_addr_format_ip(&peer, ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.1");

    assert_int_equal(write(cfd, "ping", 4), 4);
    assert_true(wait_fd(sfd, POLLIN));
    char got[4];
    assert_int_equal(read(sfd, got, 4), 4);
    assert_memory_equal(got, "ping", 4);

    close(sfd);
    close(cfd);
    close(lfd);
}

static void test_sock_listen_twice_on_a_port_fails_without_reuseport(void **state)
{
    (void)state;
    sock_addr_t a, bound;
    assert_int_equal(sock_addr_parse("127.0.0.1:0", 11, &a), 0);
    int l1 = sock_listen(&a, true, 16);
    assert_true(l1 >= 0);
    bound_addr(l1, &bound);
    int l2 = sock_listen(&bound, true, 16); /* each worker its own socket */
    assert_true(l2 >= 0);
    int l3 = sock_listen(&bound, false, 16);
    assert_int_equal(l3, -EADDRINUSE);
    close(l2);
    close(l1);
}

static void test_sock_connect_to_a_closed_port_reports_refused(void **state)
{
    (void)state;
    sock_addr_t a, bound;
    assert_int_equal(sock_addr_parse("127.0.0.1:0", 11, &a), 0);
    int lfd = sock_listen(&a, false, 1);
    assert_true(lfd >= 0);
    bound_addr(lfd, &bound);
    close(lfd); /* the port is now closed */

    int fd = sock_connect(&bound);
    if (fd == -ECONNREFUSED)
        return; /* refused at once is fine too */
    assert_true(fd >= 0);
    assert_true(wait_fd(fd, POLLOUT));
    assert_int_equal(sock_error(fd), -ECONNREFUSED);
    close(fd);
}

static void test_sock_listen_ipv6_loopback_when_available(void **state)
{
    (void)state;
    sock_addr_t a, bound;
    assert_int_equal(sock_addr_parse("[::1]:0", 7, &a), 0);
    int lfd = sock_listen(&a, false, 16);
    if (lfd == -EADDRNOTAVAIL || lfd == -EAFNOSUPPORT) {
        skip(); /* no IPv6 in this sandbox */
        return;
    }
    assert_true(lfd >= 0);
    bound_addr(lfd, &bound);
    char text[SOCK_ADDR_TEXT_MAX];
    sock_addr_format(&bound, text, sizeof(text));
    assert_memory_equal(text, "[::1]:", 6);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sock_addr_parse_accepts_the_documented_forms),
        cmocka_unit_test(test_sock_addr_parse_rejects_malformed_addresses),
        cmocka_unit_test(test_sock_addr_parse_reads_only_len_bytes),
        cmocka_unit_test(test_sock_listen_connect_accept_on_loopback),
        cmocka_unit_test(test_sock_listen_twice_on_a_port_fails_without_reuseport),
        cmocka_unit_test(test_sock_connect_to_a_closed_port_reports_refused),
        cmocka_unit_test(test_sock_listen_ipv6_loopback_when_available),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
