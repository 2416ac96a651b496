/* Parsers for the value syntaxes of the configuration: durations, sizes,
 * percentages, rates, integers and booleans. They are strict on purpose (no
 * spaces, no fractions where none are meant, one unit) so that a value
 * means one thing, and they report overflow separately from bad syntax so
 * the loader can say "too large" instead of "not a duration". Pure
 * functions on views; no allocation, no locale. */
#include "conf/conf_int.h"

#include <errno.h>
#include <string.h>

#include "core/str.h"

/* Splits s into its leading decimal digits and the rest. */
static size_t digits_len(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

static int mul_u64(uint64_t a, uint64_t b, uint64_t *ret)
{
    if (__builtin_mul_overflow(a, b, ret))
        return -ERANGE;
    return 0;
}

int conf_duration_parse(const char *s, size_t len, uint64_t *ret_ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    size_t nd = digits_len(s, len);
    unsigned long long v;
    uint64_t ms;

    if (nd == 0)
        return -EINVAL;
    if (nd == len) {
        /* A bare number is ambiguous (seconds? milliseconds?) except 0. */
        if (str_to_u64(str_from(s, nd), UINT64_MAX, &v) < 0 || v != 0)
            return -EINVAL;
        *ret_ms = 0;
        return 0;
    }
    str_t unit = str_from(s + nd, len - nd);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!str_eq(unit, str_cstr(units[i].unit)))
            continue;
        int r = str_to_u64(str_from(s, nd), UINT64_MAX, &v);
        if (r < 0)
            return r;
        if (mul_u64(v, units[i].ms, &ms) < 0)
            return -ERANGE;
        *ret_ms = ms;
        return 0;
    }
    return -EINVAL;
}

int conf_size_parse(const char *s, size_t len, uint64_t *ret_bytes)
{
    size_t nd = digits_len(s, len);
    unsigned long long v;
    uint64_t mult = 1, bytes;

    if (nd == 0 || len - nd > 1)
        return -EINVAL;
    if (len - nd == 1) {
        switch (s[nd]) {
        case 'k':
        case 'K':
            mult = 1ull << 10;
            break;
        case 'm':
        case 'M':
            mult = 1ull << 20;
            break;
        case 'g':
        case 'G':
            mult = 1ull << 30;
            break;
        default:
            return -EINVAL;
        }
    }
    int r = str_to_u64(str_from(s, nd), UINT64_MAX, &v);
    if (r < 0)
        return r;
    if (mul_u64(v, mult, &bytes) < 0)
        return -ERANGE;
    *ret_bytes = bytes;
    return 0;
}

int conf_percent_parse(const char *s, size_t len, uint32_t *ret_ppm)
{
    size_t nd = digits_len(s, len);
    unsigned long long whole;
    uint64_t frac = 0;

    if (nd == 0 || len < nd + 1 || s[len - 1] != '%')
        return -EINVAL;
    size_t rest = len - 1 - nd; /* between the digits and the '%' */
    if (rest > 0) {
        /* ".d" to ".dddd": 99.9999% is the finest an objective needs. */
        if (s[nd] != '.' || rest < 2 || rest > 5 || digits_len(s + nd + 1, rest - 1) != rest - 1)
            return -EINVAL;
        for (size_t i = 0; i < 4; i++)
            frac = frac * 10 + (i < rest - 1 ? (uint64_t)(s[nd + 1 + i] - '0') : 0);
    }
    int r = str_to_u64(str_from(s, nd), UINT64_MAX, &whole);
    if (r < 0)
        return r;
    if (whole > 100 || (whole == 100 && frac > 0))
        return -ERANGE;
    *ret_ppm = (uint32_t)(whole * 10000 + frac);
    return 0;
}

int conf_rate_parse(const char *s, size_t len, conf_rate_t *ret)
{
    size_t nd = digits_len(s, len);
    unsigned long long count;
    uint64_t per_ms;

    if (nd == 0 || len != nd + 2 || s[nd] != '/')
        return -EINVAL;
    switch (s[nd + 1]) {
    case 's':
        per_ms = 1000;
        break;
    case 'm':
        per_ms = 60000;
        break;
    case 'h':
        per_ms = 3600000;
        break;
    default:
        return -EINVAL;
    }
    int r = str_to_u64(str_from(s, nd), UINT64_MAX, &count);
    if (r < 0)
        return r;
    ret->count = count;
    ret->per_ms = per_ms;
    return 0;
}

int conf_int_parse(const char *s, size_t len, int64_t *ret)
{
    bool neg = len > 0 && s[0] == '-';
    unsigned long long v;
    size_t skip = neg ? 1 : 0;

    if (len == skip || digits_len(s + skip, len - skip) != len - skip)
        return -EINVAL;
    int r = str_to_u64(str_from(s + skip, len - skip),
                       neg ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX, &v);
    if (r < 0)
        return r;
    /* -2^63 has no positive twin: negate in unsigned arithmetic. */
    *ret = neg ? (int64_t)(0 - (uint64_t)v) : (int64_t)v;
    return 0;
}

int conf_bool_parse(const char *s, size_t len, bool *ret)
{
    /* The YAML 1.2 core schema's booleans, nothing of YAML 1.1's yes/on. */
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    str_t v = str_from(s, len);

    for (size_t i = 0; i < 3; i++) {
        if (str_eq(v, str_cstr(yes[i]))) {
            *ret = true;
            return 0;
        }
        if (str_eq(v, str_cstr(no[i]))) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}
