/* Shared pieces of the HTTP/1.1 parsers: the character-class table, the
 * field-line parser used for request and response heads, the version
 * parser, authority validation and the one pass over the parsed fields that
 * extracts what framing and connection management need. The byte-level work
 * is a single forward pass: table lookups for short runs (names, methods),
 * 16 bytes at a time with SSE2 (8 with word arithmetic elsewhere) for field
 * values and targets, the bulk of a head. The semantic pass then looks only
 * at the few fields whose names it recognises. */
#include "http/parse_common.h"

/* The table is computed by the compiler from these predicates, so the
 * classes read like the RFC grammar instead of 256 magic numbers. */
#define IS_ALPHA(c) (((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z'))
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_TCHAR(c)                                                                                \
    (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' ||         \
     (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' ||          \
     (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define IS_VALUE(c) ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f))
#define IS_TARGET(c) ((c) > 0x20 && (c) != 0x7f && (c) != '#')
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define IS_QDTEXT(c)                                                                               \
    ((c) == '\t' || (c) == ' ' || (c) == 0x21 || ((c) >= 0x23 && (c) <= 0x5b) ||                   \
     ((c) >= 0x5d && (c) <= 0x7e) || (c) >= 0x80)
#define IS_HOST(c)                                                                                 \
    (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' ||         \
     (c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||          \
     (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=' || (c) == '%')
#define CT(c)                                                                                      \
    ((IS_TCHAR(c) ? HTTP_C_TCHAR : 0) | (IS_VALUE(c) ? HTTP_C_VALUE : 0) |                         \
     (IS_TARGET(c) ? HTTP_C_TARGET : 0) | (IS_HEX(c) ? HTTP_C_HEX : 0) |                           \
     (IS_QDTEXT(c) ? HTTP_C_QDTEXT : 0) | (IS_HOST(c) ? HTTP_C_HOST : 0))
#define R4(b) CT(b), CT((b) + 1), CT((b) + 2), CT((b) + 3)
#define R16(b) R4(b), R4((b) + 4), R4((b) + 8), R4((b) + 12)
#define R64(b) R16(b), R16((b) + 16), R16((b) + 32), R16((b) + 48)

const uint8_t http_ctype[256] = {R64(0), R64(64), R64(128), R64(192)};

int http_scan_crlf(const http_scan_t *s, size_t i, http_reject_t *r)
{
    if (s->p[i] == '\n')
        return http_reject(r, HTTP_REJECT_BARE_LF);
    if (i + 1 >= s->end)
        return http_scan_need(s, i + 1, r);
    if (s->p[i + 1] != '\n')
        return http_reject(r, HTTP_REJECT_BARE_CR);
    return 0;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero when some byte of x is below n (n <= 0x80); exact as a yes/no
 * answer, which is all the skip loop needs (Bit Twiddling Hacks, hasless). */
static inline uint64_t has_less(uint64_t x, uint64_t n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t has_byte(uint64_t x, uint64_t b)
{
    uint64_t y = x ^ (ONES * b);
    return (y - ONES) & ~y & HIGHS;
}

#ifdef __SSE2__
#include <emmintrin.h>

/* Bit k set when byte k of the 16 at p may not appear in a field value:
 * below 0x20 but not HTAB, or DEL. Unsigned compare through max_epu8. */
static inline unsigned value_stops16(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i ge = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x20)), v);
    __m128i ok = _mm_or_si128(ge, _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')));
    __m128i bad =
        _mm_or_si128(_mm_xor_si128(ok, _mm_set1_epi8(-1)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    return (unsigned)_mm_movemask_epi8(bad);
}

/* Bit k set when byte k of the 16 at p ends a request-target: <= 0x20, DEL
 * or '#'. */
static inline unsigned target_stops16(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i gt = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x21)), v);
    __m128i bad = _mm_or_si128(_mm_xor_si128(gt, _mm_set1_epi8(-1)),
                               _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
                                            _mm_cmpeq_epi8(v, _mm_set1_epi8('#'))));
    return (unsigned)_mm_movemask_epi8(bad);
}
#endif

/* Values are most of a head's bytes: 16 at a time with SSE2 (every x86-64),
 * then 8 at a time with plain word arithmetic, then one by one. */
size_t http_skip_value(const unsigned char *p, size_t i, size_t end)
{
#ifdef __SSE2__
    while (end - i >= 16) {
        unsigned m = value_stops16(p + i);
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
    for (;;) {
        while (end - i >= 8) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            if (has_less(x, 0x20) | has_byte(x, 0x7f))
                break;
            i += 8;
        }
        /* The word holding a CTL; an HTAB is fine and the skip goes on. */
        size_t stop = end - i > 8 ? i + 8 : end;
        while (i < stop && http_is(p[i], HTTP_C_VALUE))
            i++;
        if (i < stop || i == end)
            return i;
    }
}

size_t http_skip_target(const unsigned char *p, size_t i, size_t end)
{
#ifdef __SSE2__
    while (end - i >= 16) {
        unsigned m = target_stops16(p + i);
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
    while (end - i >= 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (has_less(x, 0x21) | has_byte(x, 0x7f) | has_byte(x, '#'))
            break;
        i += 8;
    }
    while (i < end && http_is(p[i], HTTP_C_TARGET))
        i++;
    return i;
}

/* One field line starting at i (its first byte is known to be there and is
 * not CR, LF, SP or HTAB). On 0, *ret_next is the index after its CRLF. */
static int parse_field_line(const http_scan_t *s, size_t i, http_field_t *f, size_t *ret_next,
                            http_reject_t *r)
{
    const unsigned char *p = s->p;
    size_t start = i;
    int rc;

    i = http_skip_token(p, i, s->end);
    if (i == s->end)
        return http_scan_need(s, i, r);
    if (p[i] != ':') {
        if (i > start && (p[i] == ' ' || p[i] == '\t'))
            return http_reject(r, HTTP_REJECT_SPACE_BEFORE_COLON);
        return http_reject_at(s, i, HTTP_REJECT_BAD_HEADER_NAME, r);
    }
    if (i == start)
        return http_reject(r, HTTP_REJECT_BAD_HEADER_NAME);
    f->name = str_from((const char *)p + start, i - start);

    i++;
    while (i < s->end && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t vstart = i;
    i = http_skip_value(p, i, s->end);
    if (i == s->end)
        return http_scan_need(s, i, r);
    if (p[i] != '\r' && p[i] != '\n')
        return http_reject(r, HTTP_REJECT_BAD_HEADER_VALUE);
    rc = http_scan_crlf(s, i, r);
    if (rc < 0)
        return rc;
    size_t vend = i;
    while (vend > vstart && (p[vend - 1] == ' ' || p[vend - 1] == '\t'))
        vend--;
    f->value = str_from((const char *)p + vstart, vend - vstart);
    *ret_next = i + 2;
    return 0;
}

int http_parse_fields(const http_scan_t *s, size_t *pos, http_field_t *fields, size_t maxf,
                      size_t *ret_n, http_reject_t *r)
{
    size_t i = *pos, n = 0;
    int rc;

    for (;;) {
        if (i >= s->end)
            return http_scan_need(s, i, r);
        unsigned char c = s->p[i];
        if (c == '\r' || c == '\n') {
            rc = http_scan_crlf(s, i, r);
            if (rc < 0)
                return rc;
            *pos = i + 2;
            *ret_n = n;
            return 0;
        }
        /* A line starting with whitespace continues the previous one
         * (obs-fold) or, before the first field, is garbage that some
         * implementations would glue to the start-line: both are refused. */
        if (c == ' ' || c == '\t')
            return http_reject(r, HTTP_REJECT_OBS_FOLD);
        if (n == maxf)
            return http_reject(r, HTTP_REJECT_TOO_MANY_HEADERS);
        rc = parse_field_line(s, i, &fields[n], &i, r);
        if (rc < 0)
            return rc;
        n++;
    }
}

int http_parse_version(const http_scan_t *s, size_t *pos, int *ret_major, int *ret_minor,
                       http_reject_t bad_reason, http_reject_t *r)
{
    static const char pat[] = "HTTP/0.0";
    size_t i = *pos;

    for (size_t k = 0; k < 8; k++, i++) {
        if (i >= s->end)
            return http_scan_need(s, i, r);
        unsigned char c = s->p[i];
        bool ok = (k == 5 || k == 7) ? IS_DIGIT(c) : c == (unsigned char)pat[k];
        if (!ok)
            return http_reject_at(s, i, bad_reason, r);
    }
    *ret_major = s->p[*pos + 5] - '0';
    *ret_minor = s->p[*pos + 7] - '0';
    *pos = i;
    return 0;
}

/* ---- the semantic pass ---- */

/* Case-insensitive match of a field name, token or value against a
 * lowercase literal of letters, digits and '-': OR-ing 0x20 folds case and
 * maps no other byte allowed there (CTLs are gone) onto one of those. Inline,
 * as it runs for most fields of every head. */
static inline bool name_is(str_t n, const char *lower, size_t len)
{
    if (n.len != len)
        return false;
    for (size_t k = 0; k < len; k++)
        if (((unsigned char)n.p[k] | 0x20) != (unsigned char)lower[k])
            return false;
    return true;
}
#define NAME_IS(n, lit) name_is((n), lit, sizeof(lit) - 1)

/* Content-Length: 1#DIGIT, every element the same number (RFC 9110 8.6).
 * Elements are split by hand rather than with str_next_token so that a
 * trailing comma still yields its (empty, refused) element. */
static void info_content_length(http_head_info_t *info, str_t v)
{
    const char *p = v.p, *end = v.p + v.len;
    bool had = info->cl_seen;
    info->cl_seen = true;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *el_end = comma ? comma : end;
        unsigned long long n;
        str_t el = str_trim_ows(str_from(p, (size_t)(el_end - p)));
        if (str_to_u64(el, HTTP_MAX_LENGTH, &n) < 0 || (had && n != info->content_length)) {
            info->cl_bad = true;
            return;
        }
        info->content_length = n;
        had = true;
        if (!comma)
            return;
        p = comma + 1;
    }
}

static size_t skip_ows(str_t v, size_t i)
{
    while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    return i;
}

static size_t skip_token(str_t v, size_t i)
{
    while (i < v.len && http_is((unsigned char)v.p[i], HTTP_C_TCHAR))
        i++;
    return i;
}

/* A quoted-string at v.p[i] == '"'; returns the index after it, or 0. */
static size_t skip_quoted(str_t v, size_t i)
{
    for (i++; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            if (++i == v.len)
                return 0;
            continue; /* the value has no CTL left but HTAB: any byte is fine */
        }
        if (!http_is(c, HTTP_C_QDTEXT))
            return 0;
    }
    return 0;
}

/* transfer-coding = token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )
 * Parses one element at i; returns the index after it, or 0 on a syntax
 * error. *ret_params tells whether it had parameters. */
static size_t te_element(str_t v, size_t i, str_t *ret_name, bool *ret_params)
{
    size_t start = i;
    i = skip_token(v, i);
    if (i == start)
        return 0;
    *ret_name = str_from(v.p + start, i - start);
    *ret_params = false;
    for (;;) {
        size_t j = skip_ows(v, i);
        if (j == v.len || v.p[j] != ';')
            return i;
        *ret_params = true;
        j = skip_ows(v, j + 1);
        size_t name = j;
        j = skip_token(v, j);
        if (j == name)
            return 0;
        j = skip_ows(v, j);
        if (j == v.len || v.p[j] != '=')
            return 0;
        j = skip_ows(v, j + 1);
        if (j < v.len && v.p[j] == '"') {
            j = skip_quoted(v, j);
            if (j == 0)
                return 0;
        } else {
            size_t val = j;
            j = skip_token(v, j);
            if (j == val)
                return 0;
        }
        i = j;
    }
}

/* The codings of all Transfer-Encoding fields form one list, in order. An
 * empty element is refused: a parser that skips it and one that does not
 * can disagree about which coding is last. */
static void info_transfer_encoding(http_head_info_t *info, str_t v)
{
    size_t i = 0;
    info->te_seen = true;
    for (;;) {
        str_t name;
        bool params;
        i = skip_ows(v, i);
        i = te_element(v, i, &name, &params);
        if (i == 0) {
            info->te_bad = true;
            return;
        }
        if (NAME_IS(name, "chunked")) {
            if (info->te_chunked || params) {
                info->te_bad = true;
                return;
            }
            info->te_chunked = true;
            info->te_chunked_last = true;
        } else {
            info->te_other = true;
            info->te_chunked_last = false;
        }
        i = skip_ows(v, i);
        if (i == v.len)
            return;
        if (v.p[i] != ',') {
            info->te_bad = true;
            return;
        }
        i++;
    }
}

static int info_connection(http_head_info_t *info, str_t v, http_reject_t *r)
{
    str_t rest = v;
    while (rest.len) {
        str_t el = str_next_token(&rest, ',');
        if (el.len == 0)
            continue; /* empty list elements are ignored (RFC 9110 5.6.1.2) */
        if (skip_token(el, 0) != el.len)
            return http_reject(r, HTTP_REJECT_BAD_HEADER_VALUE);
        if (NAME_IS(el, "close"))
            info->conn_close = true;
        else if (NAME_IS(el, "keep-alive"))
            info->conn_keep_alive = true;
        else if (NAME_IS(el, "upgrade"))
            info->conn_upgrade = true;
    }
    return 0;
}

int http_head_info(const http_field_t *fields, size_t n, http_head_info_t *info, http_reject_t *r)
{
    memset(info, 0, sizeof(*info));
    for (size_t k = 0; k < n; k++) {
        str_t name = fields[k].name, v = fields[k].value;
        int rc = 0;
        /* Dispatch on the length first: most fields match no length here. */
        switch (name.len) {
        case 4:
            if (NAME_IS(name, "host") && info->nhost++ == 0)
                info->host = v;
            break;
        case 6:
            if (NAME_IS(name, "expect"))
                info->expect_continue = NAME_IS(v, "100-continue");
            break;
        case 7:
            if (NAME_IS(name, "upgrade"))
                info->upgrade_seen = true;
            break;
        case 10:
            if (NAME_IS(name, "connection"))
                rc = info_connection(info, v, r);
            break;
        case 14:
            if (NAME_IS(name, "content-length")) {
                if (!info->cl_bad)
                    info_content_length(info, v);
                info->cl_seen = true;
            }
            break;
        case 17:
            if (NAME_IS(name, "transfer-encoding")) {
                if (!info->te_bad)
                    info_transfer_encoding(info, v);
                info->te_seen = true;
            }
            break;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

bool http_authority_valid(str_t s, bool allow_empty, bool require_port)
{
    size_t i = 0;
    if (s.len == 0)
        return allow_empty && !require_port;
    if (s.p[0] == '[') {
        /* IP-literal: IPv6 (and IPv4-mapped) text; no zone ids. */
        for (i = 1; i < s.len && s.p[i] != ']'; i++)
            if (!IS_HEX((unsigned char)s.p[i]) && s.p[i] != ':' && s.p[i] != '.')
                return false;
        if (i == s.len || i == 1)
            return false;
        i++;
    } else {
        while (i < s.len && http_is((unsigned char)s.p[i], HTTP_C_HOST))
            i++;
        if (i == 0)
            return false;
    }
    if (i == s.len)
        return !require_port;
    if (s.p[i] != ':')
        return false;
    size_t digits = s.len - i - 1;
    if (digits > 5 || (require_port && digits == 0))
        return false;
    for (i++; i < s.len; i++)
        if (!IS_DIGIT((unsigned char)s.p[i]))
            return false;
    return true;
}
