/* The chunked transfer coding scanner (RFC 9112 section 7.1). The proxy
 * forwards a chunked body as it arrives, unchanged; this state machine runs
 * over the same bytes to find where the body ends and to refuse framing that
 * another implementation could read differently (the heart of request
 * smuggling through chunked bodies). It is resumable at any byte: the state
 * lives in http_chunked_t, so a body split across any number of reads gives
 * the same answer as the whole body at once. Chunk data is skipped in O(1);
 * only size lines and trailers are examined byte by byte. */
#include <assert.h>

#include "http/http.h"
#include "http/parse_common.h"

enum {
    CH_SIZE_START,   /* first hex digit of a chunk-size */
    CH_SIZE,         /* more hex digits, or what follows them */
    CH_SIZE_BWS,     /* whitespace after the size: only ";" may follow */
    CH_EXT_NAME_PRE, /* after ";": BWS, then a chunk-ext-name */
    CH_EXT_NAME,     /* in a chunk-ext-name */
    CH_EXT_NAME_BWS, /* whitespace after a name: "=" or ";" */
    CH_EXT_VAL_PRE,  /* after "=": BWS, then a token or a quoted-string */
    CH_EXT_TOKEN,    /* in a token value */
    CH_EXT_QUOTED,   /* in a quoted-string value */
    CH_EXT_QPAIR,    /* after a backslash in a quoted-string */
    CH_EXT_AFTER,    /* after a quoted-string: ";", whitespace or the line end */
    CH_EXT_BWS,      /* whitespace after a value: only ";" may follow */
    CH_SIZE_LF,      /* CR seen at the end of the size line */
    CH_DATA,         /* remaining bytes of chunk data */
    CH_DATA_CR,      /* the CR after chunk data */
    CH_DATA_LF,      /* the LF after chunk data */
    CH_TR_START,     /* start of a trailer line, or the final CRLF */
    CH_TR_NAME,      /* in a trailer field name */
    CH_TR_VALUE,     /* in a trailer field value */
    CH_TR_LF,        /* CR seen at the end of a trailer line */
    CH_END_LF,       /* CR of the final empty line seen */
    CH_DONE,         /* the body ended */
};
/* A failed scanner keeps its reason as a negative state, so that calling it
 * again reports the same failure instead of resuming in the middle. */

#define MAX_SIZE_DIGITS 16

void http_chunked_init(http_chunked_t *c, size_t max_line, size_t max_trailer)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE_START;
    c->max_line = max_line;
    c->max_trailer = max_trailer;
}

static inline bool is_ws(unsigned char b)
{
    return b == ' ' || b == '\t';
}

/* The end of a size line or a trailer line where a CR would end it. */
static int line_end(unsigned char b, int after_cr, int bad_state)
{
    if (b == '\r')
        return after_cr;
    if (b == '\n')
        return -HTTP_REJECT_BARE_LF;
    return bad_state;
}

/* One byte of a size line (with extensions). Returns the next state, or a
 * negative reason. remaining accumulates the size. */
static int size_line_byte(http_chunked_t *c, unsigned char b)
{
    const int bad_ext = -HTTP_REJECT_BAD_CHUNK_EXT, bad_size = -HTTP_REJECT_BAD_CHUNK_SIZE;

    switch (c->state) {
    case CH_SIZE_START:
    case CH_SIZE:
        if (http_is(b, HTTP_C_HEX)) {
            unsigned d = b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;
            /* line_len counts the digits so far: only digits precede us. */
            if (c->line_len >= MAX_SIZE_DIGITS || c->remaining > (HTTP_MAX_LENGTH - d) >> 4)
                return bad_size;
            c->remaining = c->remaining << 4 | d;
            return CH_SIZE;
        }
        if (c->state == CH_SIZE_START)
            return bad_size; /* empty, sign, leading whitespace... */
        if (b == ';')
            return CH_EXT_NAME_PRE;
        if (is_ws(b))
            return CH_SIZE_BWS;
        return line_end(b, CH_SIZE_LF, bad_size);
    case CH_SIZE_BWS:
        if (is_ws(b))
            return CH_SIZE_BWS;
        return b == ';' ? CH_EXT_NAME_PRE : bad_size;
    case CH_EXT_NAME_PRE:
        if (is_ws(b))
            return CH_EXT_NAME_PRE;
        return http_is(b, HTTP_C_TCHAR) ? CH_EXT_NAME : bad_ext;
    case CH_EXT_NAME:
        if (http_is(b, HTTP_C_TCHAR))
            return CH_EXT_NAME;
        if (b == '=')
            return CH_EXT_VAL_PRE;
        if (b == ';')
            return CH_EXT_NAME_PRE;
        if (is_ws(b))
            return CH_EXT_NAME_BWS;
        return line_end(b, CH_SIZE_LF, bad_ext);
    case CH_EXT_NAME_BWS:
        if (is_ws(b))
            return CH_EXT_NAME_BWS;
        if (b == '=')
            return CH_EXT_VAL_PRE;
        return b == ';' ? CH_EXT_NAME_PRE : bad_ext;
    case CH_EXT_VAL_PRE:
        if (is_ws(b))
            return CH_EXT_VAL_PRE;
        if (b == '"')
            return CH_EXT_QUOTED;
        return http_is(b, HTTP_C_TCHAR) ? CH_EXT_TOKEN : bad_ext;
    case CH_EXT_TOKEN:
        if (http_is(b, HTTP_C_TCHAR))
            return CH_EXT_TOKEN;
        /* A token value ends the way a quoted-string does. */
        /* fall through */
    case CH_EXT_AFTER:
        if (b == ';')
            return CH_EXT_NAME_PRE;
        if (is_ws(b))
            return CH_EXT_BWS;
        return line_end(b, CH_SIZE_LF, bad_ext);
    case CH_EXT_BWS:
        if (is_ws(b))
            return CH_EXT_BWS;
        return b == ';' ? CH_EXT_NAME_PRE : bad_ext;
    case CH_EXT_QUOTED:
        if (b == '"')
            return CH_EXT_AFTER;
        if (b == '\\')
            return CH_EXT_QPAIR;
        return http_is(b, HTTP_C_QDTEXT) ? CH_EXT_QUOTED : bad_ext;
    case CH_EXT_QPAIR:
        /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        return b == '\t' || (b >= 0x20 && b != 0x7f) ? CH_EXT_QUOTED : bad_ext;
    case CH_SIZE_LF:
        if (b != '\n')
            return -HTTP_REJECT_BARE_CR;
        return c->remaining ? CH_DATA : CH_TR_START;
    }
    assert(!"size_line_byte: bad state");
    return bad_size;
}

/* One byte of the trailer section: field lines, then the empty line. */
static int trailer_byte(http_chunked_t *c, unsigned char b)
{
    const int bad = -HTTP_REJECT_BAD_TRAILER;

    switch (c->state) {
    case CH_TR_START:
        if (b == '\r')
            return CH_END_LF;
        if (b == '\n')
            return -HTTP_REJECT_BARE_LF;
        return http_is(b, HTTP_C_TCHAR) ? CH_TR_NAME : bad; /* obs-fold too */
    case CH_TR_NAME:
        if (http_is(b, HTTP_C_TCHAR))
            return CH_TR_NAME;
        return b == ':' ? CH_TR_VALUE : line_end(b, bad, bad);
    case CH_TR_VALUE:
        if (http_is(b, HTTP_C_VALUE))
            return CH_TR_VALUE;
        return line_end(b, CH_TR_LF, bad);
    case CH_TR_LF:
        return b == '\n' ? CH_TR_START : -HTTP_REJECT_BARE_CR;
    case CH_END_LF:
        return b == '\n' ? CH_DONE : -HTTP_REJECT_BARE_CR;
    }
    assert(!"trailer_byte: bad state");
    return bad;
}

static int fail(http_chunked_t *c, int neg_reason, http_reject_t *ret_reason)
{
    c->state = neg_reason;
    if (ret_reason)
        *ret_reason = (http_reject_t)-neg_reason;
    return -EBADMSG;
}

int http_chunked_scan(http_chunked_t *c, const char *p, size_t len, size_t *ret_used,
                      http_reject_t *ret_reason)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    int st;

    if (c->state < 0)
        return fail(c, c->state, ret_reason);
    while (i < len && c->state != CH_DONE) {
        switch (c->state) {
        case CH_DATA: {
            size_t n = len - i;
            if (c->remaining < n)
                n = (size_t)c->remaining;
            i += n;
            c->remaining -= n;
            c->data_total += n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (u[i] != (c->state == CH_DATA_CR ? '\r' : '\n'))
                return fail(c, -HTTP_REJECT_BAD_CHUNK_DATA, ret_reason);
            c->state = c->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE_START;
            c->line_len = 0;
            i++;
            continue;
        case CH_TR_START:
        case CH_TR_NAME:
        case CH_TR_VALUE:
        case CH_TR_LF:
        case CH_END_LF:
            st = trailer_byte(c, u[i]);
            if (st < 0)
                return fail(c, st, ret_reason);
            /* Everything but the final empty line counts against the bound. */
            if (st != CH_END_LF && st != CH_DONE && ++c->trailer_bytes > c->max_trailer)
                return fail(c, -HTTP_REJECT_BAD_TRAILER, ret_reason);
            c->state = st;
            i++;
            continue;
        default:
            st = size_line_byte(c, u[i]);
            if (st < 0)
                return fail(c, st, ret_reason);
            if (++c->line_len > c->max_line) {
                bool digits = st == CH_SIZE;
                return fail(c, digits ? -HTTP_REJECT_BAD_CHUNK_SIZE : -HTTP_REJECT_BAD_CHUNK_EXT,
                            ret_reason);
            }
            c->state = st;
            i++;
            continue;
        }
    }
    if (c->state == CH_DONE) {
        *ret_used = i;
        return 0;
    }
    *ret_used = len;
    return -EAGAIN;
}

bool http_chunked_in_data(const http_chunked_t *c)
{
    return c->state == CH_DATA && c->remaining > 0;
}
