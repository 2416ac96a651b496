/* CIDR text and keys (see cidr.h). */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

const char cidr_why_host_bits[] = "host bits set past the prefix length";
static const char why_address[] = "not an IPv4 or IPv6 address";

cidr_key_t cidr_key_mask(cidr_key_t k, unsigned plen)
{
    if (plen == 0) {
        k.w[0] = 0;
        k.w[1] = 0;
    } else if (plen < 64) {
        k.w[0] &= ~UINT64_C(0) << (64 - plen);
        k.w[1] = 0;
    } else if (plen == 64) {
        k.w[1] = 0;
    } else if (plen < 128) {
        k.w[1] &= ~UINT64_C(0) << (128 - plen);
    }
    return k;
}

static cidr_key_t key_from_v4(const struct in_addr *a)
{
    cidr_key_t k = {{(uint64_t)ntohl(a->s_addr) << 32, 0}};
    return k;
}

static cidr_key_t key_from_v6(const struct in6_addr *a)
{
    cidr_key_t k = {{0, 0}};
    for (int i = 0; i < 8; i++) {
        k.w[0] = k.w[0] << 8 | a->s6_addr[i];
        k.w[1] = k.w[1] << 8 | a->s6_addr[8 + i];
    }
    return k;
}

/* ::ffff:0:0/96, the IPv4-mapped range (RFC 4291 2.5.5.2). */
static bool key_is_v4_mapped(const cidr_key_t *k)
{
    return k->w[0] == 0 && (k->w[1] >> 32) == 0xffff;
}

static unsigned parse_plen(const char *d, size_t nd, unsigned maxbits, bool *ok)
{
    unsigned v = 0;
    *ok = nd >= 1 && nd <= 3 && !(nd > 1 && d[0] == '0');
    for (size_t i = 0; *ok && i < nd; i++) {
        *ok = d[i] >= '0' && d[i] <= '9';
        v = v * 10 + (unsigned)(d[i] - '0');
    }
    *ok = *ok && v <= maxbits;
    return v;
}

int cidr_parse(const char *s, size_t len, cidr_t *ret, const char **why)
{
    char text[CIDR_TEXT_MAX];
    const char *slash = len ? memchr(s, '/', len) : NULL;
    size_t alen = slash ? (size_t)(slash - s) : len;
    cidr_t p = {false, {{0, 0}}, 0};
    unsigned maxbits;
    struct in6_addr a6;
    struct in_addr a4;

    /* inet_pton wants a C string, and would stop at a NUL in the view. */
    *why = why_address;
    if (alen == 0 || alen >= sizeof(text) || memchr(s, '\0', alen))
        return -EINVAL;
    memcpy(text, s, alen);
    text[alen] = '\0';
    if (memchr(text, ':', alen)) {
        if (inet_pton(AF_INET6, text, &a6) != 1)
            return -EINVAL;
        p.v6 = true;
        p.key = key_from_v6(&a6);
        maxbits = 128;
    } else {
        if (inet_pton(AF_INET, text, &a4) != 1)
            return -EINVAL;
        p.key = key_from_v4(&a4);
        maxbits = 32;
    }
    p.plen = maxbits;
    if (slash) {
        bool ok;
        p.plen = parse_plen(slash + 1, (size_t)(s + len - slash - 1), maxbits, &ok);
        if (!ok) {
            *why = maxbits == 32 ? "bad prefix length (want /0 to /32)"
                                 : "bad prefix length (want /0 to /128)";
            return -EINVAL;
        }
    }
    cidr_key_t masked = cidr_key_mask(p.key, p.plen);
    if (cidr_key_common(&masked, &p.key) < 128) {
        p.key = masked;
        *ret = p;
        *why = cidr_why_host_bits;
        return -EINVAL;
    }
    /* Fold ::ffff:a.b.c.d/N (N >= 96) into IPv4, where lookups of mapped
     * addresses go. */
    if (p.v6 && p.plen >= 96 && key_is_v4_mapped(&p.key)) {
        p.v6 = false;
        p.key.w[0] = p.key.w[1] << 32;
        p.key.w[1] = 0;
        p.plen -= 96;
    }
    *ret = p;
    *why = NULL;
    return 0;
}

bool cidr_key_from_sockaddr(const struct sockaddr *sa, cidr_key_t *ret, bool *ret_v6)
{
    if (sa->sa_family == AF_INET) {
        *ret = key_from_v4(&((const struct sockaddr_in *)(const void *)sa)->sin_addr);
        *ret_v6 = false;
        return true;
    }
    if (sa->sa_family != AF_INET6)
        return false;
    *ret = key_from_v6(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
    *ret_v6 = !key_is_v4_mapped(ret);
    if (!*ret_v6) {
        ret->w[0] = ret->w[1] << 32;
        ret->w[1] = 0;
    }
    return true;
}

void cidr_format(const cidr_t *p, char *out, size_t n)
{
    char addr[INET6_ADDRSTRLEN];
    uint32_t v4 = htonl((uint32_t)(p->key.w[0] >> 32));
    uint8_t v6[16];
    for (int i = 0; i < 8; i++) {
        v6[i] = (uint8_t)(p->key.w[0] >> (56 - 8 * i));
        v6[8 + i] = (uint8_t)(p->key.w[1] >> (56 - 8 * i));
    }
    inet_ntop(p->v6 ? AF_INET6 : AF_INET, p->v6 ? (void *)v6 : (void *)&v4, addr, sizeof(addr));
    snprintf(out, n, "%s/%u", addr, p->plen);
}
