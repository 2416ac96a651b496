/* Unit tests of src/shield/acl.c: longest-prefix answers over nested IPv4
 * and IPv6 prefixes (and the IPv4-mapped addresses a dual-stack socket
 * reports), the same answers whatever the insertion order and against a
 * linear scan, strict rejection of malformed entries, and list files with
 * comments and their error messages. Functional only: the speed is
 * measured by bench/acl_bench.c, not asserted here. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "shield/acl.h"

/* A sockaddr for the textual address s (IPv6 when it has a colon). */
static struct sockaddr_storage addr_of(const char *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(s, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, s, &a->sin_addr), 1);
    }
    return ss;
}

static int lookup(const acl_t *acl, const char *s)
{
    struct sockaddr_storage ss = addr_of(s);
    return acl_lookup(acl, (const struct sockaddr *)&ss);
}

static void add(acl_t *acl, const char *cidr, int value)
{
    int r = acl_add(acl, cidr, strlen(cidr), value);
    if (r != 0)
        fail_msg("acl_add(\"%s\") = %d", cidr, r);
}

typedef struct {
    const char *cidr;
    int value;
} entry_t;

static const entry_t nested[] = {
    {"0.0.0.0/0", 0},
    {"10.0.0.0/8", 1},
    {"10.1.0.0/16", 2},
    {"10.1.2.0/24", 3},
    {"10.1.2.3", 4},
    {"10.1.2.2/31", 5},
    {"128.0.0.0/1", 6},
    {"192.168.0.0/16", 7},
    {"::ffff:198.51.100.0/120", 8},
    {"::/0", 10},
    {"2001:db8::/32", 11},
    {"2001:db8:1::/48", 12},
    {"2001:db8:1::1", 13},
    {"2001:db8:1::/127", 14},
    {"fe80::/10", 15},
    {"::1/128", 16},
};

typedef struct {
    const char *addr;
    int want;
} probe_t;

static const probe_t nested_probes[] = {
    {"10.1.2.3", 4},       /* the /32 beats every shorter prefix */
    {"10.1.2.2", 5},       /* /31 */
    {"10.1.2.4", 3},       /* /24 */
    {"10.1.2.255", 3},
    {"10.1.3.1", 2},       /* /16 */
    {"10.2.0.0", 1},       /* /8 */
    {"10.255.255.255", 1},
    {"9.255.255.255", 0},  /* just below 10/8: only /0 */
    {"11.0.0.0", 0},       /* just above */
    {"127.255.255.255", 0},
    {"128.0.0.0", 6},      /* /1 */
    {"255.255.255.255", 6},
    {"192.168.255.255", 7},
    {"198.51.100.7", 8},   /* the v6-mapped entry matches plain IPv4 */
    {"::ffff:198.51.100.7", 8},
    {"::ffff:10.1.2.3", 4}, /* mapped addresses match IPv4 entries */
    {"::ffff:10.9.9.9", 1},
    {"::ffff:8.8.8.8", 0},  /* ...and the IPv4 /0, not ::/0 */
    {"2001:db8:1::1", 13},  /* /128 */
    {"2001:db8:1::", 14},   /* /127 */
    {"2001:db8:1::2", 12},  /* /48 */
    {"2001:db8:1:ffff:ffff:ffff:ffff:ffff", 12},
    {"2001:db8:2::", 11},   /* /32 */
    {"2001:db9::", 10},     /* only ::/0 */
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 10},
    {"fe80::1", 15},
    {"febf:ffff::", 15},
    {"fec0::", 10},
    {"::1", 16},
    {"::2", 10},
    {"::", 10},
};

static void check_probes(const acl_t *acl, const probe_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = lookup(acl, p[i].addr);
        if (got != p[i].want)
            fail_msg("lookup(%s) = %d, want %d", p[i].addr, got, p[i].want);
    }
}

static void test_lookup_answers_the_longest_matching_prefix(void **state)
{
    (void)state;
    acl_t *acl = acl_new();
    assert_non_null(acl);
    for (size_t i = 0; i < sizeof(nested) / sizeof(nested[0]); i++)
        add(acl, nested[i].cidr, nested[i].value);
    assert_int_equal(acl_count(acl), sizeof(nested) / sizeof(nested[0]));
    check_probes(acl, nested_probes, sizeof(nested_probes) / sizeof(nested_probes[0]));
    acl_free(acl);
}

static void test_lookup_does_not_depend_on_insertion_order(void **state)
{
    (void)state;
    size_t n = sizeof(nested) / sizeof(nested[0]);
    unsigned seed = 12345;
    for (int round = 0; round < 50; round++) {
        entry_t order[sizeof(nested) / sizeof(nested[0])];
        memcpy(order, nested, sizeof(order));
        if (round == 1) {
            for (size_t i = 0; i < n / 2; i++) {
                entry_t t = order[i];
                order[i] = order[n - 1 - i];
                order[n - 1 - i] = t;
            }
        } else if (round > 1) {
            for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t)rand_r(&seed) % (i + 1);
                entry_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        acl_t *acl = acl_new();
        assert_non_null(acl);
        for (size_t i = 0; i < n; i++)
            add(acl, order[i].cidr, order[i].value);
        check_probes(acl, nested_probes, sizeof(nested_probes) / sizeof(nested_probes[0]));
        acl_free(acl);
    }
}

static void test_lookup_misses_without_a_covering_prefix(void **state)
{
    (void)state;
    acl_t *acl = acl_new();
    assert_non_null(acl);
    assert_int_equal(lookup(acl, "10.0.0.1"), -1);
    assert_int_equal(lookup(acl, "2001:db8::1"), -1);
    add(acl, "10.0.0.0/8", 1);
    add(acl, "::/0", 2);
    static const probe_t probes[] = {
        {"10.0.0.1", 1},
        {"11.0.0.1", -1},
        {"::ffff:10.0.0.1", 1},
        {"::ffff:11.0.0.1", -1}, /* an IPv4 client is not matched by ::/0 */
        {"::ffff:0:0", -1},
        {"::fffe:10.0.0.1", 2},  /* outside the mapped range: plain IPv6 */
        {"2001:db8::1", 2},
    };
    check_probes(acl, probes, sizeof(probes) / sizeof(probes[0]));

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_int_equal(acl_lookup(acl, (const struct sockaddr *)&un), -1);
    acl_free(acl);
}

static void test_duplicate_prefix_takes_the_last_value(void **state)
{
    (void)state;
    acl_t *acl = acl_new();
    assert_non_null(acl);
    add(acl, "10.0.0.0/8", 1);
    add(acl, "10.0.0.0/16", 2);
    add(acl, "10.0.0.0/8", 3);
    add(acl, "::ffff:10.0.0.0/104", 4); /* the same prefix, written as IPv6 */
    add(acl, "2001:db8::/32", 5);
    add(acl, "2001:0db8:0000::/32", 6);
    assert_int_equal(acl_count(acl), 3);
    assert_int_equal(lookup(acl, "10.1.0.0"), 4);
    assert_int_equal(lookup(acl, "10.0.1.0"), 2);
    assert_int_equal(lookup(acl, "2001:db8::"), 6);
    acl_free(acl);
}

static void test_add_reads_only_the_given_length(void **state)
{
    (void)state;
    acl_t *acl = acl_new();
    assert_non_null(acl);
    assert_int_equal(acl_add(acl, "10.0.0.0/8 junk", 10, 1), 0);
    assert_int_equal(acl_add(acl, "2001:db8::/32/64", 13, 2), 0);
    assert_int_equal(acl_add(acl, "192.0.2.1xyz", 9, 3), 0);
    assert_int_equal(lookup(acl, "10.2.3.4"), 1);
    assert_int_equal(lookup(acl, "2001:db8:ffff::"), 2);
    assert_int_equal(lookup(acl, "192.0.2.1"), 3);
    assert_int_equal(lookup(acl, "192.0.2.2"), -1);
    acl_free(acl);
}

static void test_add_rejects_malformed_entries(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
        "10.0.0.0/08", "10.0.0.0/1000", "10.0.0.0/8/8", "10.0.0.0/8 ", " 10.0.0.0/8",
        "10.0.0.0 /8", "10.0.0", "10.0.0.256", "010.0.0.1", "1.2.3.4.5", "10.0.0.0/0x8",
        "abc", "localhost", "10.0.0.1/24", "11.0.0.0/7", "0.0.0.1/0", "192.0.2.128/24",
        "2001:db8::/129", "2001:db8::1/32", "2001:db8::/32/1", "fe80::1%eth0", "gggg::",
        "1:2:3:4:5:6:7:8:9", "2001:db8:::1", "::ffff:10.0.0.1/104", "::1/0", "[::1]",
        "2001:db8::/", "10.0.0.0/8\n",
    };
    acl_t *acl = acl_new();
    assert_non_null(acl);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = acl_add(acl, bad[i], strlen(bad[i]), 1);
        if (r != -EINVAL)
            fail_msg("acl_add(\"%s\") = %d, want -EINVAL", bad[i], r);
    }
    /* A NUL inside the view must not cut the text short. */
    assert_int_equal(acl_add(acl, "10.0.0.0\0/8", 11, 1), -EINVAL);
    assert_int_equal(acl_add(acl, "10.0.0.1\0", 9, 1), -EINVAL);
    assert_int_equal(acl_add(acl, NULL, 0, 1), -EINVAL);
    /* Values are non-negative: -1 is the lookup's "no match". */
    assert_int_equal(acl_add(acl, "10.0.0.0/8", 10, -1), -EINVAL);
    assert_int_equal(acl_count(acl), 0);
    assert_int_equal(lookup(acl, "10.0.0.1"), -1);
    acl_free(acl);
}

static void test_add_accepts_every_prefix_length(void **state)
{
    (void)state;
    acl_t *acl = acl_new();
    assert_non_null(acl);
    char text[64];
    for (int len = 0; len <= 32; len++) {
        uint32_t net = len ? 0xffffffffu << (32 - len) : 0;
        struct in_addr a = {htonl(net)};
        char s[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a, s, sizeof(s));
        snprintf(text, sizeof(text), "%s/%d", s, len);
        add(acl, text, len);
    }
    for (int len = 0; len <= 128; len++) {
        struct in6_addr a;
        memset(&a, 0, sizeof(a));
        for (int b = 0; b < len; b++)
            a.s6_addr[b / 8] |= (uint8_t)(0x80 >> (b % 8));
        char s[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a, s, sizeof(s));
        snprintf(text, sizeof(text), "%s/%d", s, len);
        add(acl, text, 100 + len);
    }
    assert_int_equal(acl_count(acl), 33 + 129);
    /* 255.255.0.0 lies in the /1 to /16 prefixes: the /16 is longest. */
    assert_int_equal(lookup(acl, "255.255.0.0"), 16);
    assert_int_equal(lookup(acl, "255.255.255.255"), 32);
    assert_int_equal(lookup(acl, "255.255.255.254"), 31);
    assert_int_equal(lookup(acl, "127.0.0.1"), 0);
    assert_int_equal(lookup(acl, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 228);
    assert_int_equal(lookup(acl, "ffff:ffff:ffff:ffff:7fff::"), 164);
    assert_int_equal(lookup(acl, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 227);
    assert_int_equal(lookup(acl, "::1"), 100);
    acl_free(acl);
}

/* Random prefixes packed into a few narrow ranges, so that they nest and
 * share long paths, checked against a linear scan. */
static void test_lookup_agrees_with_a_linear_scan(void **state)
{
    (void)state;
    enum { N = 3000, PROBES = 20000 };
    static struct {
        uint32_t net;
        int len, value;
    } ref[N];
    unsigned seed = 42;
    acl_t *acl = acl_new();
    assert_non_null(acl);
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        int len = rand_r(&seed) % 33;
        uint32_t a = 0x0a000000u | ((uint32_t)rand_r(&seed) & 0x0000ffffu);
        if (rand_r(&seed) % 4 == 0)
            a = (uint32_t)rand_r(&seed) << 1;
        uint32_t net = len ? a & (0xffffffffu << (32 - len)) : 0;
        struct in_addr ia = {htonl(net)};
        char s[INET_ADDRSTRLEN], text[32];
        inet_ntop(AF_INET, &ia, s, sizeof(s));
        snprintf(text, sizeof(text), "%s/%d", s, len);
        add(acl, text, i);
        size_t j;
        for (j = 0; j < n && !(ref[j].net == net && ref[j].len == len); j++)
            ;
        if (j == n)
            n++;
        ref[j].net = net;
        ref[j].len = len;
        ref[j].value = i;
    }
    assert_int_equal(acl_count(acl), n);

    /* The same entries from a file, which re-lays the trie out after
     * loading, must give the same answers. */
    char path[64], err[256];
    snprintf(path, sizeof(path), "/tmp/test_acl.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    for (size_t j = 0; j < n; j++) {
        struct in_addr ia = {htonl(ref[j].net)};
        char s[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &ia, s, sizeof(s));
        fprintf(f, "%s/%d\n", s, ref[j].len);
    }
    assert_int_equal(fclose(f), 0);
    acl_t *loaded = acl_new();
    assert_non_null(loaded);
    assert_int_equal(acl_load_file(loaded, path, 0, err, sizeof(err)), 0);
    unlink(path);
    assert_int_equal(acl_count(loaded), n);

    for (int i = 0; i < PROBES; i++) {
        uint32_t a = 0x0a000000u | ((uint32_t)rand_r(&seed) & 0x0000ffffu);
        if (i % 3 == 0)
            a = (uint32_t)rand_r(&seed) << 1 ^ (uint32_t)rand_r(&seed);
        int want = -1, wlen = -1;
        for (size_t j = 0; j < n; j++) {
            uint32_t mask = ref[j].len ? 0xffffffffu << (32 - ref[j].len) : 0;
            if ((a & mask) == ref[j].net && ref[j].len > wlen) {
                want = ref[j].value;
                wlen = ref[j].len;
            }
        }
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = {htonl(a)}};
        assert_int_equal(acl_lookup(acl, (const struct sockaddr *)&sin), want);
        assert_int_equal(acl_lookup(loaded, (const struct sockaddr *)&sin), want < 0 ? -1 : 0);
    }
    acl_free(loaded);
    acl_free(acl);
}

/* Writes text to a fresh temporary file and returns its path in path. */
static void write_file(char *path, size_t size, const char *text, size_t len)
{
    snprintf(path, size, "/tmp/test_acl.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void test_load_file_skips_comments_and_blank_lines(void **state)
{
    (void)state;
    static const char text[] = "# deny list for the public listener\n"
                               "\n"
                               "10.0.0.0/8   # RFC 1918\n"
                               "   \t  \n"
                               "   2001:db8::/32\r\n"
                               "\t192.0.2.1\t\n"
                               "#10.9.9.9\n"
                               "198.51.100.0/24"; /* no final newline */
    char path[64], err[256] = "";
    write_file(path, sizeof(path), text, sizeof(text) - 1);
    acl_t *acl = acl_new();
    assert_non_null(acl);
    assert_int_equal(acl_load_file(acl, path, 7, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(acl_count(acl), 4);
    assert_int_equal(lookup(acl, "10.1.2.3"), 7);
    assert_int_equal(lookup(acl, "2001:db8::5"), 7);
    assert_int_equal(lookup(acl, "192.0.2.1"), 7);
    assert_int_equal(lookup(acl, "198.51.100.99"), 7);
    assert_int_equal(lookup(acl, "10.9.9.9"), 7);
    assert_int_equal(lookup(acl, "11.9.9.9"), -1);
    acl_free(acl);
    unlink(path);
}

static void test_load_file_names_path_and_line_of_a_bad_entry(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want; /* after "PATH:" */
    } cases[] = {
        {"10.0.0.0/8\n# fine so far\n\n10.0.0.1/8\n192.0.2.0/24\n",
         "4: host bits set past the prefix length in \"10.0.0.1/8\" (the network is 10.0.0.0/8)"},
        {"2001:db8::1/32 # typo\n",
         "1: host bits set past the prefix length in \"2001:db8::1/32\" "
         "(the network is 2001:db8::/32)"},
        {"10.0.0.0/8\nnot-an-ip\n", "2: not an IPv4 or IPv6 address: \"not-an-ip\""},
        {"10.0.0.0/40\n", "1: bad prefix length (want /0 to /32): \"10.0.0.0/40\""},
        {"\n\n::/129\n", "3: bad prefix length (want /0 to /128): \"::/129\""},
        {"10.0.0.0 10.1.0.0\n", "1: not an IPv4 or IPv6 address: \"10.0.0.0 10.1.0.0\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[64], err[256], want[320];
        write_file(path, sizeof(path), cases[i].text, strlen(cases[i].text));
        acl_t *acl = acl_new();
        assert_non_null(acl);
        assert_int_equal(acl_load_file(acl, path, 1, err, sizeof(err)), -EINVAL);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
        assert_string_equal(err, want);
        acl_free(acl);
        unlink(path);
    }
}

static void test_load_file_reports_unreadable_and_overlong_input(void **state)
{
    (void)state;
    char err[256];
    acl_t *acl = acl_new();
    assert_non_null(acl);
    assert_int_equal(acl_load_file(acl, "/nonexistent/acl.txt", 1, err, sizeof(err)),
                     -ENOENT);
    assert_string_equal(err, "/nonexistent/acl.txt: No such file or directory");

    char path[64], want[128];
    size_t len = 2000;
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, '#', len);
    memcpy(text + len - 11, "\n10.0.0.0/8", 11);
    write_file(path, sizeof(path), text, len);
    assert_int_equal(acl_load_file(acl, path, 1, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:1: line longer than 1023 bytes", path);
    assert_string_equal(err, want);
    unlink(path);

    /* A NUL is not the end of the line. */
    write_file(path, sizeof(path), "10.0.0.1\0/8\n", 12);
    assert_int_equal(acl_load_file(acl, path, 1, NULL, 0), -EINVAL);
    unlink(path);

    /* An empty file is an empty list. */
    write_file(path, sizeof(path), "", 0);
    assert_int_equal(acl_load_file(acl, path, 1, err, sizeof(err)), 0);
    unlink(path);
    assert_int_equal(acl_count(acl), 0);
    free(text);
    acl_free(acl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_answers_the_longest_matching_prefix),
        cmocka_unit_test(test_lookup_does_not_depend_on_insertion_order),
        cmocka_unit_test(test_lookup_misses_without_a_covering_prefix),
        cmocka_unit_test(test_duplicate_prefix_takes_the_last_value),
        cmocka_unit_test(test_add_reads_only_the_given_length),
        cmocka_unit_test(test_add_rejects_malformed_entries),
        cmocka_unit_test(test_add_accepts_every_prefix_length),
        cmocka_unit_test(test_lookup_agrees_with_a_linear_scan),
        cmocka_unit_test(test_load_file_skips_comments_and_blank_lines),
        cmocka_unit_test(test_load_file_names_path_and_line_of_a_bad_entry),
        cmocka_unit_test(test_load_file_reports_unreadable_and_overlong_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
