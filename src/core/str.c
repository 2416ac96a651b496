/* String view helpers used by the parsers and the configuration loader. */
#include "core/str.h"

#include <errno.h>

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

bool str_case_eq(str_t a, str_t b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
            return false;
    return true;
}

bool str_has_prefix(str_t s, str_t prefix)
{
    /* prefix.len == 0 first: a NULL view must not reach memcmp (UB, UBSan). */
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.p, prefix.p, prefix.len) == 0);
}

bool str_case_has_suffix(str_t s, str_t suffix)
{
    if (s.len < suffix.len)
        return false;
    return str_case_eq(str_from(s.p + s.len - suffix.len, suffix.len), suffix);
}

str_t str_trim_ows(str_t s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

str_t str_next_token(str_t *rest, char sep)
{
    const char *c = rest->len ? memchr(rest->p, sep, rest->len) : NULL;
    str_t tok;
    if (c) {
        tok = str_from(rest->p, (size_t)(c - rest->p));
        rest->len -= tok.len + 1;
        rest->p = c + 1;
    } else {
        tok = *rest;
        rest->p += rest->len;
        rest->len = 0;
    }
    return str_trim_ows(tok);
}

int str_to_u64(str_t s, unsigned long long max, unsigned long long *ret)
{
    unsigned long long v = 0;
    if (s.len == 0)
        return -EINVAL;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9)
            return -EINVAL;
        /* d > max first: max - d would wrap and let "7" pass a max of 5. */
        if (d > max || v > (max - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *ret = v;
    return 0;
}
