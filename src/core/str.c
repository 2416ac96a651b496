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

size_t str_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp, min;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}
