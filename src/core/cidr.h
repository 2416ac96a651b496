/* CIDR prefixes as text: the one parser behind every place an operator
 * writes an address range (the configuration's inline deny/allow entries,
 * list files, the admin API), so that all of them accept exactly the same
 * syntax and say the same thing about a mistake.
 *
 * Keys are 128 bits, most significant first; an IPv4 prefix sits in the top
 * 32 bits of its key, so one trie or table implementation serves both
 * families. IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d/N with N >= 96) are
 * folded into the IPv4 prefix they denote, and so are IPv4-mapped client
 * addresses (cidr_key_from_sockaddr), because that is what a dual-stack
 * socket reports for an IPv4 client. */
#ifndef SURETY_CORE_CIDR_H
#define SURETY_CORE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

typedef struct {
    uint64_t w[2]; /* w[0] holds bits 0-63 */
} cidr_key_t;

typedef struct {
    bool v6;        /* family after folding IPv4-mapped prefixes */
    cidr_key_t key; /* bits past plen are zero */
    unsigned plen;  /* 0..32 or 0..128 */
} cidr_t;

/* The longest text cidr_parse can accept: a full IPv6 address with an
 * IPv4 tail, "/128" and a spare byte. */
#define CIDR_TEXT_MAX (46 + 4)

/* What cidr_parse says when only host bits are wrong ("10.0.0.1/8"): then
 * *ret holds the masked prefix the operator probably meant. */
extern const char cidr_why_host_bits[];

/* Parses s[0, len) (not NUL-terminated): an address as inet_pton() reads it
 * (dotted quad without leading zeros, RFC 4291 text, no zone id), optionally
 * "/N" with N in decimal without leading zeros, at most 32 or 128, and no
 * whitespace. Host bits set past the prefix are an error, not masked: the
 * operator meant something else and should hear about it. 0, or -EINVAL
 * with *why saying what is wrong (a static string). */
int cidr_parse(const char *s, size_t len, cidr_t *ret, const char **why);

/* The key of a client address (AF_INET or AF_INET6, IPv4-mapped folded into
 * IPv4): true, or false for another family. */
bool cidr_key_from_sockaddr(const struct sockaddr *sa, cidr_key_t *ret, bool *ret_v6);

/* "a.b.c.d/N" or "v6/N" for p into out (at least CIDR_TEXT_MAX bytes). */
void cidr_format(const cidr_t *p, char *out, size_t n);

/* The number of leading bits a and b share, 0 to 128. */
static inline unsigned cidr_key_common(const cidr_key_t *a, const cidr_key_t *b)
{
    uint64_t x = a->w[0] ^ b->w[0];
    if (x)
        return (unsigned)__builtin_clzll(x);
    x = a->w[1] ^ b->w[1];
    if (x)
        return 64 + (unsigned)__builtin_clzll(x);
    return 128;
}

/* k with every bit from position plen on cleared. */
cidr_key_t cidr_key_mask(cidr_key_t k, unsigned plen);

#endif
