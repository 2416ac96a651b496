/* libFuzzer target for the CIDR parser (src/core/cidr.c) and the trie
 * (src/shield/acl.c, included to reach its internals). The input is split into lines, each
 * given to acl_add with its line number as value. Properties beyond "no
 * crash, no leak, no undefined behaviour": an accepted entry prints back
 * (inet_ntop + "/N") to text that parses to the same prefix; acl_count
 * counts distinct prefixes; and acl_lookup agrees with a linear scan of the
 * accepted entries for addresses near every entry (its network address with
 * random bits flipped), random addresses, and the IPv4-mapped IPv6 forms of
 * the IPv4 ones, before and after the depth-first re-layout that
 * acl_load_file applies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shield/acl.c"

#define MAX_LINES 256

/* ::ffff:0:0/96 */
static bool key_is_v4_mapped(const acl_key_t *k)
{
    return k->w[0] == 0 && (k->w[1] >> 32) == 0xffff;
}

typedef struct {
    cidr_t p;
    int value;
} ref_t;

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The longest match among ref[0, n) for key in the given family. */
static int scan(const ref_t *ref, size_t n, bool v6, const acl_key_t *key)
{
    int best = -1, blen = -1;
    for (size_t i = 0; i < n; i++) {
        if (ref[i].p.v6 != v6 || (int)ref[i].p.plen <= blen)
            continue;
        if (cidr_key_common(key, &ref[i].p.key) >= ref[i].p.plen) {
            best = ref[i].value;
            blen = ref[i].p.plen;
        }
    }
    return best;
}

static void check(const acl_t *acl, const ref_t *ref, size_t n, bool v6, acl_key_t key)
{
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    int want;

    if (v6) {
        for (int i = 0; i < 8; i++) {
            s6.sin6_addr.s6_addr[i] = (uint8_t)(key.w[0] >> (56 - 8 * i));
            s6.sin6_addr.s6_addr[8 + i] = (uint8_t)(key.w[1] >> (56 - 8 * i));
        }
        /* A v4-mapped address is looked up as IPv4. */
        if (key_is_v4_mapped(&key)) {
            acl_key_t k4 = {{key.w[1] << 32, 0}};
            want = scan(ref, n, false, &k4);
        } else {
            want = scan(ref, n, true, &key);
        }
        if (acl_lookup(acl, (const struct sockaddr *)&s6) != want)
            abort();
        return;
    }
    key.w[0] &= UINT64_C(0xffffffff00000000);
    key.w[1] = 0;
    s4.sin_addr.s_addr = htonl((uint32_t)(key.w[0] >> 32));
    want = scan(ref, n, false, &key);
    if (acl_lookup(acl, (const struct sockaddr *)&s4) != want)
        abort();
    /* The same client as a dual-stack socket reports it. */
    memset(&s6.sin6_addr, 0, sizeof(s6.sin6_addr));
    s6.sin6_addr.s6_addr[10] = s6.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&s6.sin6_addr.s6_addr[12], &s4.sin_addr, 4);
    if (acl_lookup(acl, (const struct sockaddr *)&s6) != want)
        abort();
}

/* Prints p back as text and parses that again: it must be the same. */
static void round_trip(const cidr_t *p)
{
    uint8_t b[16];
    char addr[INET6_ADDRSTRLEN], text[CIDR_TEXT_MAX + 8];
    cidr_t again;
    const char *why;

    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(p->key.w[0] >> (56 - 8 * i));
        b[8 + i] = (uint8_t)(p->key.w[1] >> (56 - 8 * i));
    }
    if (!inet_ntop(p->v6 ? AF_INET6 : AF_INET, b, addr, sizeof(addr)))
        abort();
    int len = snprintf(text, sizeof(text), "%s/%u", addr, p->plen);
    if (cidr_parse(text, (size_t)len, &again, &why) != 0 || again.v6 != p->v6 ||
        again.plen != p->plen || cidr_key_common(&again.key, &p->key) < 128)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ref_t ref[MAX_LINES];
    size_t n = 0;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    const char *s = (const char *)data, *end = s + size;

    acl_t *acl = acl_new();
    if (!acl)
        return 0;
    for (int line = 0; line < MAX_LINES && s <= end; line++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        for (size_t i = 0; i < len; i++)
            seed = (seed ^ (uint8_t)s[i]) * 0x100000001b3u;
        cidr_t p;
        const char *why;
        int parsed = cidr_parse(s, len, &p, &why);
        int r = acl_add(acl, s, len, line);
        if ((parsed == 0) != (r == 0))
            abort();
        if (r == 0) {
            round_trip(&p);
            size_t j;
            for (j = 0; j < n; j++)
                if (ref[j].p.v6 == p.v6 && ref[j].p.plen == p.plen &&
                    cidr_key_common(&ref[j].p.key, &p.key) == 128)
                    break;
            if (j == n)
                n++;
            ref[j].p = p;
            ref[j].value = line;
        }
        if (!nl)
            break;
        s = nl + 1;
    }
    if (acl_count(acl) != n)
        abort();

    seed |= 1;
    /* The second round runs on the depth-first layout acl_load_file leaves. */
    for (int round = 0; round < 2; round++) {
        if (round == 1 && (trie_compact(&acl->v4) < 0 || trie_compact(&acl->v6) < 0))
            break;
        for (size_t i = 0; i < n; i++) {
            for (int k = 0; k < 4; k++) {
                acl_key_t key = ref[i].p.key;
                unsigned bits = ref[i].p.v6 ? 128 : 32;
                unsigned bit = (unsigned)(next(&seed) % bits);
                if (bit < 64)
                    key.w[0] ^= UINT64_C(1) << (63 - bit);
                else
                    key.w[1] ^= UINT64_C(1) << (127 - bit);
                check(acl, ref, n, ref[i].p.v6, k == 0 ? ref[i].p.key : key);
            }
        }
        for (int k = 0; k < 16; k++) {
            acl_key_t key = {{next(&seed), next(&seed)}};
            check(acl, ref, n, k & 1, key);
        }
    }
    acl_free(acl);
    return 0;
}
