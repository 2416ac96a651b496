/* CIDR access lists as path-compressed binary tries (see acl.h for the
 * contract). Each family has its own trie over 128-bit keys (IPv4 keys sit
 * in the top 32 bits, so one implementation serves both). A node carries a
 * whole prefix (key and length) rather than one bit: a chain of one-child
 * nodes is never stored, so the trie holds at most two nodes per entry (the
 * entry and one branching "glue" node) however long the prefixes are. Nodes
 * live in one array addressed by 32-bit index, which halves the size of a
 * child link, keeps them close in memory and makes acl_free() one call.
 *
 * A binary trie walks up to 33 (IPv4) or 129 (IPv6) nodes where a multibit
 * trie would walk a handful, but it needs no prefix expansion: 100,000
 * entries stay 100,000 entries, and with path compression a lookup in such a
 * list visits about log2(n) + a few nodes (17 on average for 100,000
 * random prefixes), each a 128-bit compare: about a hundred nanoseconds,
 * most of it cache misses in the last levels, which the depth-first
 * re-layout after a file load (trie_compact) keeps on neighbouring lines. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/cidr.h"
#include "shield/acl.h"

#define ACL_NONE UINT32_MAX
#define ACL_LINE_MAX 1024

/* 128 bits, most significant first (core/cidr.h). */
typedef cidr_key_t acl_key_t;

typedef struct {
    acl_key_t key;     /* bits past plen are zero */
    uint32_t child[2]; /* by the bit at position plen; ACL_NONE when absent */
    int32_t value;     /* -1: a glue node, which only branches */
    uint8_t plen;
} acl_node_t;

typedef struct {
    acl_node_t *nodes;
    uint32_t n, cap;
    uint32_t root;
    uint32_t entries; /* nodes with a value */
    uint8_t maxbits;  /* 32 or 128 */
} acl_trie_t;

struct acl {
    acl_trie_t v4, v6;
};

/* The bit at position i (0 = most significant); i < 128. */
static inline unsigned key_bit(const acl_key_t *k, unsigned i)
{
    return i < 64 ? (unsigned)(k->w[0] >> (63 - i)) & 1 : (unsigned)(k->w[1] >> (127 - i)) & 1;
}

static void trie_init(acl_trie_t *t, uint8_t maxbits)
{
    t->nodes = NULL;
    t->n = t->cap = t->entries = 0;
    t->root = ACL_NONE;
    t->maxbits = maxbits;
}

/* Makes room for two more nodes, the most one insert creates, so that the
 * links an insert holds into the array stay valid while it runs. */
static int trie_reserve(acl_trie_t *t)
{
    if (t->cap - t->n >= 2)
        return 0;
    /* n entries need at most 2n - 1 nodes (each glue node branches two
     * ways), so this cap leaves room for the insert that finds the list
     * full and answers -ENOSPC. */
    uint32_t max = 2 * ACL_MAX_ENTRIES + 2;
    if (t->cap >= max)
        return -ENOSPC;
    uint32_t cap = t->cap ? t->cap * 2 : 64;
    if (cap > max)
        cap = max;
    acl_node_t *nodes = realloc(t->nodes, (size_t)cap * sizeof(*nodes));
    if (!nodes)
        return -ENOMEM;
    t->nodes = nodes;
    t->cap = cap;
    return 0;
}

static uint32_t trie_node(acl_trie_t *t, acl_key_t key, unsigned plen, int value)
{
    assert(t->n < t->cap);
    acl_node_t *n = &t->nodes[t->n];
    n->key = key;
    n->plen = (uint8_t)plen;
    n->value = value;
    n->child[0] = n->child[1] = ACL_NONE;
    return t->n++;
}

/* Inserts key/plen (host bits already clear) with value. Walks down from
 * the root until the prefix is found (update), falls off the trie (new
 * leaf), or diverges from a node (a new node above it, or a glue node
 * branching to both). Iterative: the depth is bounded by maxbits + 1. */
static int trie_insert(acl_trie_t *t, acl_key_t key, unsigned plen, int value)
{
    int r = trie_reserve(t);
    if (r < 0)
        return r;
    uint32_t *link = &t->root;
    for (;;) {
        if (*link == ACL_NONE) {
            if (t->entries >= ACL_MAX_ENTRIES)
                return -ENOSPC;
            *link = trie_node(t, key, plen, value);
            t->entries++;
            return 0;
        }
        acl_node_t *n = &t->nodes[*link];
        unsigned common = cidr_key_common(&key, &n->key);
        if (common > plen)
            common = plen;
        if (common > n->plen)
            common = n->plen;
        if (common == n->plen) {
            if (plen == n->plen) {
                if (n->value < 0) {
                    if (t->entries >= ACL_MAX_ENTRIES)
                        return -ENOSPC;
                    t->entries++;
                }
                n->value = value;
                return 0;
            }
            link = &n->child[key_bit(&key, n->plen)];
            continue;
        }
        /* The new prefix leaves n's path at bit common < n->plen. */
        if (t->entries >= ACL_MAX_ENTRIES)
            return -ENOSPC;
        uint32_t below = *link;
        unsigned nbit = key_bit(&n->key, common);
        uint32_t up;
        if (common == plen) {
            up = trie_node(t, key, plen, value);
        } else {
            up = trie_node(t, cidr_key_mask(key, common), common, -1);
            t->nodes[up].child[!nbit] = trie_node(t, key, plen, value);
        }
        t->nodes[up].child[nbit] = below;
        *link = up;
        t->entries++;
        return 0;
    }
}

/* Every node on the way down contains the previous one, so the last node
 * with a value that contains key is the longest match. The prefix length
 * grows at each step, which bounds the loop by maxbits + 1. */
static int trie_lookup(const acl_trie_t *t, const acl_key_t *key)
{
    int best = -1;
    uint32_t i = t->root;
    while (i != ACL_NONE) {
        const acl_node_t *n = &t->nodes[i];
        if (cidr_key_common(key, &n->key) < n->plen)
            break;
        if (n->value >= 0)
            best = n->value;
        if (n->plen >= t->maxbits)
            break;
        i = n->child[key_bit(key, n->plen)];
    }
    return best;
}

/* Rewrites the node array in depth-first order, so that a subtree sits in
 * consecutive nodes: the last steps of a lookup, which miss the cache in a
 * large list, then fall on neighbouring cache lines. Worth it after a bulk
 * load, when insertion order has scattered every path. -ENOMEM leaves the
 * trie as it was. */
static int trie_compact(acl_trie_t *t)
{
    struct {
        uint32_t old, parent;
        unsigned side;
    } stack[2 * 129 + 2];
    size_t top = 0;
    uint32_t k = 0;

    if (t->n < 2)
        return 0;
    acl_node_t *out = malloc((size_t)t->cap * sizeof(*out));
    if (!out)
        return -ENOMEM;
    stack[top].old = t->root;
    stack[top].parent = ACL_NONE;
    stack[top++].side = 0;
    while (top > 0) {
        top--;
        uint32_t old = stack[top].old, parent = stack[top].parent;
        unsigned side = stack[top].side;
        out[k] = t->nodes[old];
        if (parent != ACL_NONE)
            out[parent].child[side] = k;
        for (unsigned c = 2; c-- > 0;) {
            if (out[k].child[c] == ACL_NONE)
                continue;
            assert(top < sizeof(stack) / sizeof(stack[0]));
            stack[top].old = out[k].child[c];
            stack[top].parent = k;
            stack[top++].side = c;
        }
        k++;
    }
    assert(k == t->n);
    free(t->nodes);
    t->nodes = out;
    t->root = 0;
    return 0;
}

acl_t *acl_new(void)
{
    acl_t *acl = malloc(sizeof(*acl));
    if (!acl)
        return NULL;
    trie_init(&acl->v4, 32);
    trie_init(&acl->v6, 128);
    return acl;
}

void acl_free(acl_t *acl)
{
    if (!acl)
        return;
    free(acl->v4.nodes);
    free(acl->v6.nodes);
    free(acl);
}

int acl_add(acl_t *acl, const char *cidr, size_t len, int value)
{
    cidr_t p;
    const char *why;

    assert(acl && (cidr || len == 0));
    if (value < 0 || cidr_parse(cidr, len, &p, &why) < 0)
        return -EINVAL;
    return trie_insert(p.v6 ? &acl->v6 : &acl->v4, p.key, p.plen, value);
}

int acl_lookup(const acl_t *acl, const struct sockaddr *sa)
{
    acl_key_t k;
    bool v6;

    assert(acl && sa);
    if (!cidr_key_from_sockaddr(sa, &k, &v6))
        return -1;
    return trie_lookup(v6 ? &acl->v6 : &acl->v4, &k);
}

size_t acl_count(const acl_t *acl)
{
    assert(acl);
    return (size_t)acl->v4.entries + acl->v6.entries;
}

/* The entry of one line: what is left after cutting the comment and
 * trimming blanks; *len is 0 for a line with no entry. */
static const char *line_entry(const char *line, size_t *len)
{
    const char *end = memchr(line, '#', *len);
    const char *p = line;
    if (!end)
        end = line + *len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    *len = (size_t)(end - p);
    return p;
}

/* Formats "PATH:LINE: why" into err for the entry s[0, len) that failed
 * with r, naming the prefix meant when only host bits were wrong. */
static void line_error(char *err, size_t errlen, const char *path, unsigned long lineno,
                       const char *s, size_t len, int r, const char *why, const cidr_t *p)
{
    if (!err || errlen == 0)
        return;
    if (r == -ENOSPC || r == -ENOMEM) {
        snprintf(err, errlen, "%s:%lu: %s", path, lineno,
                 r == -ENOSPC ? "too many entries" : "out of memory");
        return;
    }
    int shown = len > 64 ? 64 : (int)len;
    if (why == cidr_why_host_bits) {
        char net[CIDR_TEXT_MAX];
        cidr_format(p, net, sizeof(net));
        snprintf(err, errlen, "%s:%lu: %s in \"%.*s\" (the network is %s)", path, lineno, why,
                 shown, s, net);
        return;
    }
    snprintf(err, errlen, "%s:%lu: %s: \"%.*s\"", path, lineno, why, shown, s);
}

/* Reads one line of at most ACL_LINE_MAX - 1 bytes (without its '\n') into
 * buf. Returns its length, -1 at end of file, -ENAMETOOLONG when the line
 * is longer (the rest of it is consumed) or -EIO on a read error. */
static long read_line(FILE *f, char *buf)
{
    size_t n = 0;
    bool too_long = false;
    int c;

    while ((c = getc_unlocked(f)) != EOF && c != '\n') {
        if (n < ACL_LINE_MAX - 1)
            buf[n++] = (char)c;
        else
            too_long = true;
    }
    if (ferror(f))
        return -EIO;
    if (c == EOF && n == 0 && !too_long)
        return -1;
    return too_long ? -ENAMETOOLONG : (long)n;
}

int acl_load_file(acl_t *acl, const char *path, int value, char *err, size_t errlen)
{
    char line[ACL_LINE_MAX];
    unsigned long lineno = 0;
    int r = 0;

    assert(acl && path);
    if (value < 0)
        return -EINVAL;
    FILE *f = fopen(path, "re");
    if (!f) {
        r = -errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    for (;;) {
        long got = read_line(f, line);
        if (got == -1)
            break;
        lineno++;
        if (got < 0) {
            r = got == -EIO ? -EIO : -EINVAL;
            if (err && errlen)
                snprintf(err, errlen,
                         got == -EIO ? "%s:%lu: read error" : "%s:%lu: line longer than %d bytes",
                         path, lineno, ACL_LINE_MAX - 1);
            goto out;
        }
        size_t len = (size_t)got;
        const char *s = line_entry(line, &len);
        if (len == 0)
            continue;
        cidr_t p = {false, {{0, 0}}, 0};
        const char *why = NULL;
        r = cidr_parse(s, len, &p, &why);
        if (r == 0)
            r = trie_insert(p.v6 ? &acl->v6 : &acl->v4, p.key, p.plen, value);
        if (r < 0) {
            line_error(err, errlen, path, lineno, s, len, r, why, &p);
            goto out;
        }
    }
    /* A failure here costs speed, not correctness. */
    (void)trie_compact(&acl->v4);
    (void)trie_compact(&acl->v6);
out:
    fclose(f);
    return r;
}
