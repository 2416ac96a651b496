/* Bans in the kernel through libnftables (see nft.h for the contract).
 *
 * Every operation is nft command text run by nft_run_cmd_from_buffer, with
 * output and errors buffered in the context so that a failure comes back as
 * nft's own message rather than lines on our stderr. Text is safe here
 * only because everything spliced into it is checked first: the table name
 * against a strict pattern, addresses by inet_pton and written back by
 * inet_ntop, timeouts by us.
 *
 * nft refuses to update the timeout of an element that exists, and refuses
 * to delete one that does not. Both are worked around with the idiom nft's
 * own documentation uses for tables: add (a no-op when present), delete,
 * then add with the new timeout, all in one transaction, so the kernel
 * never sees the element missing. */
#include "shield/nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for one element in a command: the address three times, a timeout
 * ("365d23h59m59s999ms") and separators. */
#define ELEM_TEXT_MAX (3 * INET6_ADDRSTRLEN + 40)

struct nftset {
    struct nft_ctx *ctx;
    char table[NFTSET_NAME_MAX + 1];
};

typedef struct {
    char text[INET6_ADDRSTRLEN];
    char timeout[32]; /* " timeout 1d2h", or empty */
    bool v6;
} elem_t;

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NFTSET_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Checks addr and writes it back canonical into e. An IPv4-mapped IPv6
 * address goes to the IPv4 set, which is where the kernel matches such a
 * client's packets. -EINVAL when addr is not an address. */
static int elem_parse(const char *addr, elem_t *e)
{
    struct in6_addr a6;
    struct in_addr a4;
    e->v6 = false;
    if (!addr)
        return -EINVAL;
    if (inet_pton(AF_INET, addr, &a4) == 1) {
        inet_ntop(AF_INET, &a4, e->text, sizeof(e->text));
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return -EINVAL;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        inet_ntop(AF_INET, &a6.s6_addr[12], e->text, sizeof(e->text));
        return 0;
    }
    inet_ntop(AF_INET6, &a6, e->text, sizeof(e->text));
    e->v6 = true;
    return 0;
}

/* " timeout 1d2h3m4s5ms" for ms > 0, in units: nft reads a bare number of
 * milliseconds into 32 bits and refuses anything past 49 days. */
static void format_timeout(uint64_t ms, char *out, size_t n)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    size_t o;
    out[0] = '\0';
    if (ms == 0)
        return;
    if (ms > NFTSET_TIMEOUT_MAX_MS)
        ms = NFTSET_TIMEOUT_MAX_MS;
    o = (size_t)snprintf(out, n, " timeout ");
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && o < n; i++) {
        uint64_t k = ms / units[i].ms;
        ms %= units[i].ms;
        if (k)
            o += (size_t)snprintf(out + o, n - o, "%llu%s", (unsigned long long)k, units[i].unit);
    }
}

/* Runs cmd in one transaction. 0, or a negative errno guessed from nft's
 * message, with the message's first line in err. */
static int run(nftset_t *n, const char *cmd, char *err, size_t errlen)
{
    int rc = nft_run_cmd_from_buffer(n->ctx, cmd);
    /* Reading a buffer also empties it for the next command. */
    (void)nft_ctx_get_output_buffer(n->ctx);
    const char *msg = nft_ctx_get_error_buffer(n->ctx);
    if (rc == 0)
        return 0;
    if (!msg || !msg[0])
        msg = "command failed";
    if (strncmp(msg, "netlink: ", 9) == 0)
        msg += 9;
    if (strncmp(msg, "Error: ", 7) == 0)
        msg += 7;
    int len = (int)strcspn(msg, "\n");
    int r = -EIO;
    const char *hint = "";
    if (strstr(msg, strerror(EPERM))) {
        r = -EPERM;
        hint = " (managing nftables needs CAP_NET_ADMIN)";
    } else if (strstr(msg, strerror(ENOENT))) {
        r = -ENOENT;
    }
    if (err && errlen)
        snprintf(err, errlen, "nftables: %.*s%s", len > 200 ? 200 : len, msg, hint);
    return r;
}

nftset_t *nftset_open(const char *table, char *err, size_t errlen)
{
    char cmd[1024];
    nftset_t *n = NULL;

    if (!name_ok(table)) {
        if (err && errlen)
            snprintf(err, errlen,
                     "nftables: bad table name (want 1 to %d of A-Z a-z 0-9 _, "
                     "not starting with a digit)",
                     NFTSET_NAME_MAX);
        return NULL;
    }
    n = calloc(1, sizeof(*n));
    if (!n || !(n->ctx = nft_ctx_new(NFT_CTX_DEFAULT)))
        goto nomem;
    snprintf(n->table, sizeof(n->table), "%s", table);
    if (nft_ctx_buffer_output(n->ctx) != 0 || nft_ctx_buffer_error(n->ctx) != 0)
        goto nomem;
    /* "add" first so that "delete" cannot fail on a first run. */
    snprintf(cmd, sizeof(cmd),
             "add table inet %1$s\n"
             "delete table inet %1$s\n"
             "table inet %1$s {\n"
             "  set ban4 { type ipv4_addr; flags timeout; }\n"
             "  set ban6 { type ipv6_addr; flags timeout; }\n"
             "  chain input {\n"
             "    type filter hook input priority filter - 10; policy accept;\n"
             "    ip saddr @ban4 counter drop\n"
             "    ip6 saddr @ban6 counter drop\n"
             "  }\n"
             "}\n",
             n->table);
    if (run(n, cmd, err, errlen) < 0) {
        nftset_close(n);
        return NULL;
    }
    return n;
nomem:
    if (err && errlen)
        snprintf(err, errlen, "nftables: cannot create a context (out of memory)");
    nftset_close(n);
    return NULL;
}

void nftset_close(nftset_t *n)
{
    if (!n)
        return;
    if (n->ctx)
        nft_ctx_free(n->ctx);
    free(n);
}

const char *nftset_table(const nftset_t *n)
{
    return n->table;
}

/* Appends "VERB element inet T SET { e1, e2 }\n" for the elements of one
 * family, with their timeouts when `timeouts`. */
static size_t put_cmd(char *out, size_t room, const nftset_t *n, const char *verb, bool v6,
                      const elem_t *e, size_t count, bool timeouts)
{
    size_t o = 0;
    bool any = false;
    for (size_t i = 0; i < count && o < room; i++) {
        if (e[i].v6 != v6)
            continue;
        if (!any)
            o += (size_t)snprintf(out + o, room - o, "%s element inet %s %s { ", verb, n->table,
                                  v6 ? "ban6" : "ban4");
        if (o < room)
            o += (size_t)snprintf(out + o, room - o, "%s%s%s", any ? ", " : "", e[i].text,
                                  timeouts ? e[i].timeout : "");
        any = true;
    }
    if (any && o < room)
        o += (size_t)snprintf(out + o, room - o, " }\n");
    return o < room ? o : room;
}

/* Sends one batch: per family, add / delete / add with timeouts. */
static int add_batch(nftset_t *n, const elem_t *e, size_t count, char *err, size_t errlen)
{
    size_t room = 3 * count * ELEM_TEXT_MAX + 6 * 128;
    char *cmd = malloc(room);
    size_t o = 0;
    if (!cmd)
        return -ENOMEM;
    for (int fam = 0; fam < 2; fam++) {
        o += put_cmd(cmd + o, room - o, n, "add", fam, e, count, false);
        o += put_cmd(cmd + o, room - o, n, "delete", fam, e, count, false);
        o += put_cmd(cmd + o, room - o, n, "add", fam, e, count, true);
    }
    cmd[o < room ? o : room - 1] = '\0';
    int r = run(n, cmd, err, errlen);
    free(cmd);
    return r;
}

int nftset_add(nftset_t *n, const nftset_elem_t *elems, size_t count, char *err, size_t errlen)
{
    elem_t *e = count ? calloc(count, sizeof(*e)) : NULL;
    int r = 0;
    if (count && !e)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        if (elem_parse(elems[i].addr, &e[i]) < 0) {
            if (err && errlen)
                snprintf(err, errlen, "nftables: not an address: \"%.64s\"",
                         elems[i].addr ? elems[i].addr : "");
            r = -EINVAL;
            goto out;
        }
        format_timeout(elems[i].timeout_ms, e[i].timeout, sizeof(e[i].timeout));
    }
    for (size_t i = 0; i < count && r == 0; i += NFTSET_BATCH)
        r = add_batch(n, e + i, count - i < NFTSET_BATCH ? count - i : NFTSET_BATCH, err, errlen);
out:
    free(e);
    return r;
}

int nftset_del(nftset_t *n, const char *addr, char *err, size_t errlen)
{
    char cmd[512];
    elem_t e;
    if (elem_parse(addr, &e) < 0)
        return -EINVAL;
    const char *set = e.v6 ? "ban6" : "ban4";
    snprintf(cmd, sizeof(cmd),
             "add element inet %1$s %2$s { %3$s }\ndelete element inet %1$s %2$s { %3$s }\n",
             n->table, set, e.text);
    return run(n, cmd, err, errlen);
}

int nftset_has(nftset_t *n, const char *addr)
{
    char cmd[256];
    elem_t e;
    if (elem_parse(addr, &e) < 0)
        return -EINVAL;
    snprintf(cmd, sizeof(cmd), "get element inet %s %s { %s }", n->table, e.v6 ? "ban6" : "ban4",
             e.text);
    int r = run(n, cmd, NULL, 0);
    return r == 0 ? 1 : r == -ENOENT ? 0 : r;
}
