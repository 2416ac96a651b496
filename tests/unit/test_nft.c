/* Unit tests of src/shield/nft.c and of the security center's use of it,
 * against the real kernel, inside a network namespace that this test
 * creates first thing (unshare(CLONE_NEWNET)): nothing here may touch the
 * firewall of the machine that runs it, so when the namespace cannot be
 * made the test fails, loudly, rather than skip or carry on.
 *
 * In the namespace: the table, its two sets and its input chain as
 * nftables lists them; elements added (with the timeout asked), updated,
 * deleted, listed through libnftables directly; the kernel dropping a TCP
 * connect from a banned 127.0.0.x source while another source connects;
 * the error text without CAP_NET_ADMIN; and sec_t pushing manual and
 * automatic bans, lifting them, and adding the saved bans back at start. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shield/nft.h"
#include "shield/secev.h"

#define TABLE "surety_test"
#define MIN (60 * 1000ULL)

/* ---- looking at the kernel through libnftables, not through nft.c ---- */

/* Runs cmd with JSON output; the parsed output, or NULL when it failed. */
static json_t *nft_json(const char *cmd)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    assert_non_null(ctx);
    nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    json_t *out = NULL;
    if (nft_run_cmd_from_buffer(ctx, cmd) == 0)
        out = json_loads(nft_ctx_get_output_buffer(ctx), 0, NULL);
    nft_ctx_free(ctx);
    return out;
}

static void nft_cmd(const char *cmd)
{
    json_t *j = nft_json(cmd);
    json_decref(j);
}

/* The object under key in the "nftables" array whose "name" is name. */
static json_t *find_obj(json_t *root, const char *key, const char *name)
{
    json_t *arr = json_object_get(root, "nftables"), *item;
    size_t i;
    json_array_foreach(arr, i, item)
    {
        json_t *o = json_object_get(item, key);
        if (o && strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            return o;
    }
    return NULL;
}

/* Whether addr is in table's set, and its timeout in seconds (0 when it
 * has none) in *timeout_s. */
static bool set_has(const char *table, const char *set, const char *addr, long *timeout_s)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "list set inet %s %s", table, set);
    json_t *root = nft_json(cmd);
    assert_non_null(root);
    json_t *s = find_obj(root, "set", set), *e;
    bool found = false;
    size_t i;
    assert_non_null(s);
    json_array_foreach(json_object_get(s, "elem"), i, e)
    {
        json_t *inner = json_object_get(e, "elem");
        const char *val = json_string_value(inner ? json_object_get(inner, "val") : e);
        if (val && strcmp(val, addr) == 0) {
            found = true;
            if (timeout_s)
                *timeout_s = (long)json_integer_value(json_object_get(inner, "timeout"));
        }
    }
    json_decref(root);
    return found;
}

/* ---- the network ---- */

static int lo_up(void)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;
    if (fd < 0)
        return -1;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        r = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    close(fd);
    return r;
}

static int listener_fd, listener_port;

static int setup_listener(void **state)
{
    (void)state;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    listener_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(listener_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(listener_fd, 64), 0);
    assert_int_equal(getsockname(listener_fd, (struct sockaddr *)&a, &len), 0);
    listener_port = ntohs(a.sin_port);
    return 0;
}

static int teardown_listener(void **state)
{
    (void)state;
    close(listener_fd);
    nft_cmd("delete table inet " TABLE);
    nft_cmd("delete table inet surety_sec");
    return 0;
}

/* Whether a TCP connect from src to the listener completes within ms. */
static bool connects_from(const char *src, int ms)
{
    struct sockaddr_in a = {.sin_family = AF_INET}, d = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    inet_pton(AF_INET, src, &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
    d.sin_port = htons((uint16_t)listener_port);
    int r = connect(fd, (struct sockaddr *)&d, sizeof(d));
    assert_true(r == 0 || errno == EINPROGRESS);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    bool ok = r == 0;
    if (!ok && poll(&p, 1, ms) == 1) {
        int err = -1;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        ok = err == 0;
    }
    close(fd);
    return ok;
}

/* ---- nft.c ---- */

static void test_open_creates_the_table_sets_and_chain(void **state)
{
    (void)state;
    char err[256] = "";
    nftset_t *n = nftset_open(TABLE, err, sizeof(err));
    if (!n)
        fail_msg("nftset_open: %s", err);
    assert_string_equal(nftset_table(n), TABLE);
    json_t *root = nft_json("list table inet " TABLE);
    assert_non_null(root);
    static const char *const sets[][2] = {{"ban4", "ipv4_addr"}, {"ban6", "ipv6_addr"}};
    for (int i = 0; i < 2; i++) {
        json_t *s = find_obj(root, "set", sets[i][0]);
        assert_non_null(s);
        assert_string_equal(json_string_value(json_object_get(s, "type")), sets[i][1]);
        assert_string_equal(json_string_value(json_array_get(json_object_get(s, "flags"), 0)),
                            "timeout");
    }
    json_t *c = find_obj(root, "chain", "input");
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "hook")), "input");
    assert_string_equal(json_string_value(json_object_get(c, "policy")), "accept");
    assert_int_equal(json_integer_value(json_object_get(c, "prio")), -10);
    json_decref(root);
    nftset_close(n);
    /* The table outlives the handle. */
    root = nft_json("list table inet " TABLE);
    assert_non_null(root);
    json_decref(root);
}

static void test_elements_are_added_updated_and_deleted(void **state)
{
    (void)state;
    char err[256] = "";
    long timeout = -1;
    nftset_t *n = nftset_open(TABLE, err, sizeof(err));
    assert_non_null(n);
    nftset_elem_t e[] = {
        {"192.0.2.1", MIN},
        {"2001:db8::1", 2 * MIN},
        {"::ffff:192.0.2.2", 0},
        {"192.0.2.3", 1000},
    };
    assert_int_equal(nftset_add(n, e, 4, err, sizeof(err)), 0);
    assert_true(set_has(TABLE, "ban4", "192.0.2.1", &timeout));
    assert_int_equal(timeout, 60);
    assert_true(set_has(TABLE, "ban6", "2001:db8::1", &timeout));
    assert_int_equal(timeout, 120);
    assert_true(set_has(TABLE, "ban4", "192.0.2.2", &timeout)); /* mapped: the IPv4 set */
    assert_int_equal(timeout, 0);
    assert_int_equal(nftset_has(n, "192.0.2.1"), 1);
    assert_int_equal(nftset_has(n, "192.0.2.9"), 0);

    /* Adding again sets the new timeout (nft alone would keep the old). */
    nftset_elem_t longer = {"192.0.2.1", 10 * MIN + 1500};
    assert_int_equal(nftset_add(n, &longer, 1, err, sizeof(err)), 0);
    assert_true(set_has(TABLE, "ban4", "192.0.2.1", &timeout));
    assert_int_equal(timeout, 601);

    assert_int_equal(nftset_del(n, "192.0.2.1", err, sizeof(err)), 0);
    assert_false(set_has(TABLE, "ban4", "192.0.2.1", NULL));
    assert_int_equal(nftset_del(n, "192.0.2.1", err, sizeof(err)), 0); /* gone already: fine */
    assert_int_equal(nftset_del(n, "2001:db8::1", err, sizeof(err)), 0);
    assert_false(set_has(TABLE, "ban6", "2001:db8::1", NULL));
    assert_int_equal(nftset_has(n, "2001:db8::1"), 0);

    /* Many at once, in several transactions. */
    enum { MANY = 2 * NFTSET_BATCH + 10 };
    static char text[MANY][32];
    static nftset_elem_t many[MANY];
    for (int i = 0; i < MANY; i++) {
        snprintf(text[i], sizeof(text[i]), "10.9.%d.%d", i / 256, i % 256);
        many[i] = (nftset_elem_t){text[i], MIN};
    }
    assert_int_equal(nftset_add(n, many, MANY, err, sizeof(err)), 0);
    assert_true(set_has(TABLE, "ban4", "10.9.0.0", NULL));
    assert_true(set_has(TABLE, "ban4", text[MANY - 1], NULL));

    /* Opening again starts from an empty table. */
    nftset_close(n);
    n = nftset_open(TABLE, err, sizeof(err));
    assert_non_null(n);
    assert_false(set_has(TABLE, "ban4", "192.0.2.2", NULL));
    nftset_close(n);
}

static void test_bad_names_and_addresses_are_refused(void **state)
{
    (void)state;
    char err[256] = "", long_name[NFTSET_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    static const char *bad[] = {"", "1abc", "a-b", "a b", "x;flush ruleset", "t\n", NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_null(nftset_open(bad[i], err, sizeof(err)));
        assert_non_null(strstr(err, "bad table name"));
    }
    assert_null(nftset_open(long_name, err, sizeof(err)));
    assert_null(nftset_open(NULL, err, sizeof(err)));

    nftset_t *n = nftset_open(TABLE, err, sizeof(err));
    assert_non_null(n);
    nftset_elem_t e[] = {{"192.0.2.1", MIN}, {"192.0.2.1 }; flush ruleset; {", MIN}};
    assert_int_equal(nftset_add(n, e, 2, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not an address"));
    assert_false(set_has(TABLE, "ban4", "192.0.2.1", NULL)); /* nothing was sent */
    assert_int_equal(nftset_del(n, "nope", err, sizeof(err)), -EINVAL);
    assert_int_equal(nftset_has(n, "192.0.2.0/24"), -EINVAL);
    nftset_close(n);
}

static void test_kernel_drops_a_banned_source(void **state)
{
    (void)state;
    char err[256] = "";
    assert_true(connects_from("127.0.0.5", 300));
    nftset_t *n = nftset_open(TABLE, err, sizeof(err));
    assert_non_null(n);
    nftset_elem_t e = {"127.0.0.5", MIN};
    assert_int_equal(nftset_add(n, &e, 1, err, sizeof(err)), 0);
    assert_false(connects_from("127.0.0.5", 300));
    assert_true(connects_from("127.0.0.6", 300));
    assert_int_equal(nftset_del(n, "127.0.0.5", err, sizeof(err)), 0);
    assert_true(connects_from("127.0.0.5", 300));
    nftset_close(n);
}

/* Drops CAP_NET_ADMIN from this process's effective set. */
static int drop_net_admin(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    return (int)syscall(SYS_capset, &h, d);
}

static void test_without_cap_net_admin_the_error_says_so(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256] = "";
        if (drop_net_admin() != 0)
            _exit(2);
        nftset_t *n = nftset_open(TABLE, err, sizeof(err));
        fprintf(stderr, "without CAP_NET_ADMIN: %s\n", err);
        _exit(!n && strstr(err, "CAP_NET_ADMIN") && strstr(err, "nftables: ") ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- sec_t with nftables ---- */

static void test_security_center_mirrors_bans_into_nftables(void **state)
{
    (void)state;
    char dir[] = "/tmp/surety-nft-XXXXXX", path[64], err[256] = "";
    long timeout = 0;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bans", dir);
    sec_conf_t c = {.bans_path = path, .nftables = true, .nft_table = "surety_sec"};
    sec_t *s = sec_new(&c, err, sizeof(err));
    if (!s)
        fail_msg("sec_new: %s", err);

    /* Manual: in the set with the ban's length, dropped by the kernel. */
    assert_int_equal(sec_ban_add(s, "127.0.0.7", 10 * MIN, "test"), 0);
    assert_true(set_has("surety_sec", "ban4", "127.0.0.7", &timeout));
    assert_true(timeout >= 599 && timeout <= 600);
    assert_false(connects_from("127.0.0.7", 300));
    assert_true(connects_from("127.0.0.8", 300));
    assert_int_equal(sec_ban_lift(s, "127.0.0.7"), 0);
    assert_false(set_has("surety_sec", "ban4", "127.0.0.7", NULL));
    assert_true(connects_from("127.0.0.7", 300));

    /* Automatic. */
    secev_ban_rule_t rule = {.after = 2, .within_ms = MIN, .for_ms = 5 * MIN};
    secev_t ev;
    memset(&ev, 0, sizeof(ev));
    struct sockaddr_in *a = (struct sockaddr_in *)&ev.client.ss;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.9", &a->sin_addr);
    ev.layer = SECEV_REQUEST;
    ev.action = SECEV_BLOCK;
    sec_post(s, &ev, &rule);
    sec_post(s, &ev, &rule);
    assert_true(sec_sync(s, 5000));
    assert_true(set_has("surety_sec", "ban4", "127.0.0.9", &timeout));
    assert_true(timeout >= 299 && timeout <= 300);

    /* Saved bans come back at start, even when the table was lost. */
    assert_int_equal(sec_ban_add(s, "127.0.0.7", 10 * MIN, NULL), 0);
    assert_int_equal(sec_ban_add(s, "2001:db8::7", 10 * MIN, NULL), 0);
    sec_free(s);
    assert_true(set_has("surety_sec", "ban4", "127.0.0.7", NULL)); /* kept while down */
    nft_cmd("delete table inet surety_sec");
    s = sec_new(&c, err, sizeof(err));
    if (!s)
        fail_msg("sec_new again: %s", err);
    assert_true(set_has("surety_sec", "ban4", "127.0.0.7", &timeout));
    assert_true(timeout >= 598 && timeout <= 600);
    assert_true(set_has("surety_sec", "ban4", "127.0.0.9", NULL));
    assert_true(set_has("surety_sec", "ban6", "2001:db8::7", NULL));
    assert_false(connects_from("127.0.0.7", 300));
    sec_counters_t n;
    sec_counters(s, &n);
    assert_int_equal(n.nft_errors, 0);
    sec_free(s);

    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    /* First, before anything: our own network namespace, or nothing. */
    if (unshare(CLONE_NEWNET) != 0) {
        fprintf(stderr,
                "test_nft: FAILED: unshare(CLONE_NEWNET): %s.\n"
                "This test creates nftables tables and must do so in a network namespace of "
                "its own, which needs root (CAP_SYS_ADMIN). It will not run against the "
                "host's firewall.\n",
                strerror(errno));
        return 1;
    }
    if (lo_up() != 0) {
        fprintf(stderr, "test_nft: FAILED: cannot bring lo up in the new namespace: %s\n",
                strerror(errno));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_the_table_sets_and_chain, setup_listener,
                                        teardown_listener),
        cmocka_unit_test_setup_teardown(test_elements_are_added_updated_and_deleted, setup_listener,
                                        teardown_listener),
        cmocka_unit_test_setup_teardown(test_bad_names_and_addresses_are_refused, setup_listener,
                                        teardown_listener),
        cmocka_unit_test_setup_teardown(test_kernel_drops_a_banned_source, setup_listener,
                                        teardown_listener),
        cmocka_unit_test_setup_teardown(test_without_cap_net_admin_the_error_says_so,
                                        setup_listener, teardown_listener),
        cmocka_unit_test_setup_teardown(test_security_center_mirrors_bans_into_nftables,
                                        setup_listener, teardown_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
