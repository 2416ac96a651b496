/* String views: pointer + length, never NUL-dependent (STYLE 9).
 *
 * Every parser in Surety hands out str_t views into the buffer it parsed;
 * a view is valid exactly as long as that buffer is, and owns nothing. */
#ifndef SURETY_CORE_STR_H
#define SURETY_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t len;
} str_t;

#define STR_LIT(s) ((str_t){(s), sizeof(s) - 1})
#define STR_NULL ((str_t){NULL, 0})
/* printf("%.*s", STR_FMT(v)) */
#define STR_FMT(s) (int)(s).len, (s).p

static inline str_t str_from(const char *p, size_t len)
{
    return (str_t){p, len};
}

static inline str_t str_cstr(const char *s)
{
    return (str_t){s, s ? strlen(s) : 0};
}

static inline bool str_eq(str_t a, str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ASCII case-insensitive comparison (HTTP field names, tokens). */
bool str_case_eq(str_t a, str_t b);
bool str_has_prefix(str_t s, str_t prefix);
bool str_case_has_suffix(str_t s, str_t suffix);
/* Trims SP and HTAB at both ends (HTTP OWS). */
str_t str_trim_ows(str_t s);
/* Splits off the next element of a comma-separated list (HTTP #rule): returns
 * the trimmed element and advances *rest past the comma. Empty elements are
 * returned as empty views; the caller decides whether they are allowed. */
str_t str_next_token(str_t *rest, char sep);
/* Parses a non-negative decimal made only of digits, at most max.
 * Returns 0, or -EINVAL (empty, non-digit) or -ERANGE (> max). */
int str_to_u64(str_t s, unsigned long long max, unsigned long long *ret);

/* The length of the valid UTF-8 character at s[0, n) (n >= 1), 0 when there
 * is none: overlong forms, surrogates, code points past U+10FFFF and stray
 * continuation bytes are all invalid. NUL is a valid character (1). */
size_t str_utf8_len(const unsigned char *s, size_t n);

#endif
