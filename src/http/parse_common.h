/* Internals shared by the request parser, the response parser and the chunked
 * scanner: character-class tables, the bounded byte cursor that turns "ran out
 * of bytes" into either -EAGAIN or a limit rejection, the field-line parser
 * and the semantic pass over the framing fields (Content-Length,
 * Transfer-Encoding, Connection...). Not part of the module's API: only
 * src/http/ and its tests include this header.
 *
 * Thread-safety: tables are const; everything else works on caller memory. */
#ifndef SURETY_HTTP_PARSE_COMMON_H
#define SURETY_HTTP_PARSE_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/http.h"

/* Character classes, one bit each, indexed by byte value. */
enum {
    HTTP_C_TCHAR = 1 << 0,  /* token (RFC 9110 5.6.2) */
    HTTP_C_VALUE = 1 << 1,  /* field-vchar, SP, HTAB, obs-text (field values) */
    HTTP_C_TARGET = 1 << 2, /* request-target bytes: > 0x20, not DEL, not '#' */
    HTTP_C_HEX = 1 << 3,    /* hex digit */
    HTTP_C_QDTEXT = 1 << 4, /* quoted-string text (no '"', no '\\') */
    HTTP_C_HOST = 1 << 5,   /* reg-name: unreserved, sub-delims, '%' */
};
extern const uint8_t http_ctype[256];

static inline bool http_is(unsigned char c, unsigned cls)
{
    return (http_ctype[c] & cls) != 0;
}

/* The largest Content-Length or chunk size accepted: what fits in an off_t. */
#define HTTP_MAX_LENGTH ((uint64_t)INT64_MAX)

/* A cursor over buf[0, len) that must not read past lim_end (a limit: the
 * request-line or head bound). end = min(len, lim_end). When the parser needs
 * byte i >= end, http_scan_need() says whether to read more (i < lim_end) or
 * to reject with lim_reason (the limit is already reached). */
typedef struct {
    const unsigned char *p;
    size_t len;
    size_t end;
    size_t lim_end;
    http_reject_t lim_reason;
} http_scan_t;

static inline void http_scan_limit(http_scan_t *s, size_t lim_end, http_reject_t reason)
{
    s->lim_end = lim_end;
    s->lim_reason = reason;
    s->end = s->len < lim_end ? s->len : lim_end;
}

static inline int http_reject(http_reject_t *r, http_reject_t why)
{
    *r = why;
    return -EBADMSG;
}

/* Byte i (>= end) is needed: -EAGAIN, or -EBADMSG with the limit's reason. */
static inline int http_scan_need(const http_scan_t *s, size_t i, http_reject_t *r)
{
    if (i >= s->lim_end)
        return http_reject(r, s->lim_reason);
    return -EAGAIN;
}

/* p[i] is CR or LF. Returns 0 when p[i, i+2) is CRLF; otherwise BARE_LF,
 * BARE_CR, or -EAGAIN when the byte after the CR has not arrived. Callers at a
 * place where no line may end turn the 0 into their own reason, so a bare CR
 * or LF is reported as such wherever it appears in a head. */
int http_scan_crlf(const http_scan_t *s, size_t i, http_reject_t *r);

/* p[i] is a byte where the grammar allows neither it nor a line end: reject
 * with why, unless it is a bare CR or LF (reported as such) or a CR whose
 * next byte has not arrived (-EAGAIN, so the reason never depends on how
 * the bytes were split). */
static inline int http_reject_at(const http_scan_t *s, size_t i, http_reject_t why,
                                 http_reject_t *r)
{
    if (s->p[i] == '\r' || s->p[i] == '\n') {
        int rc = http_scan_crlf(s, i, r);
        if (rc < 0)
            return rc;
    }
    return http_reject(r, why);
}

/* Skips token bytes from i; returns the index of the first other byte, or
 * end. Four lookups per branch: names are short, so no vector set-up. */
static inline size_t http_skip_token(const unsigned char *p, size_t i, size_t end)
{
    while (end - i >= 4) {
        if (!(http_ctype[p[i]] & http_ctype[p[i + 1]] & http_ctype[p[i + 2]] &
              http_ctype[p[i + 3]] & HTTP_C_TCHAR))
            break;
        i += 4;
    }
    while (i < end && http_is(p[i], HTTP_C_TCHAR))
        i++;
    return i;
}

/* Skips request-target bytes (HTTP_C_TARGET) from i; returns the index of
 * the first other byte, or end. */
size_t http_skip_target(const unsigned char *p, size_t i, size_t end);

/* Skips field-value bytes (HTTP_C_VALUE) from i; returns the index of the
 * first other byte, or end. Eight bytes at a time while no byte is a CTL. */
size_t http_skip_value(const unsigned char *p, size_t i, size_t end);

/* Parses field lines from *pos up to and including the empty line ending the
 * head. Fills fields[0, *ret_n) with views into the buffer (values OWS
 * trimmed), at most maxf of them. On 0, *pos is the index after the final
 * CRLF. Rejects obs-fold, space before colon, bad names or values, bare CR
 * and LF, more than maxf fields; limits through the cursor. */
int http_parse_fields(const http_scan_t *s, size_t *pos, http_field_t *fields, size_t maxf,
                      size_t *ret_n, http_reject_t *r);

/* What the framing and connection fields of a head say, collected in one
 * pass over the parsed fields. Request and response parsers each apply
 * their own rules to it. */
typedef struct {
    size_t nhost;
    str_t host;              /* the first Host value */
    bool cl_seen;            /* at least one Content-Length field */
    bool cl_bad;             /* malformed or differing values */
    uint64_t content_length; /* the (single) value when cl_seen && !cl_bad */
    bool te_seen;            /* at least one Transfer-Encoding field */
    bool te_bad;             /* syntax error, empty list or element, chunked twice */
    bool te_chunked;         /* chunked appears (once) */
    bool te_chunked_last;    /* ... and is the final coding */
    bool te_other;           /* some coding other than chunked */
    bool conn_close;         /* Connection: close */
    bool conn_keep_alive;    /* Connection: keep-alive */
    bool conn_upgrade;       /* Connection: upgrade */
    bool upgrade_seen;       /* an Upgrade field */
    bool expect_continue;    /* Expect: 100-continue */
} http_head_info_t;

/* Fills *info from fields. Returns 0, or -EBADMSG for a Connection value
 * that is not a list of tokens (BAD_HEADER_VALUE). Content-Length and
 * Transfer-Encoding problems are only recorded: the caller decides their
 * order and reasons. */
int http_head_info(const http_field_t *fields, size_t n, http_head_info_t *info, http_reject_t *r);

/* Parses "HTTP/" DIGIT "." DIGIT at p[*pos]. Returns 0 with the digits, or
 * -EBADMSG with bad_reason (bare CR/LF reported as such), or -EAGAIN / limit
 * via the cursor. */
int http_parse_version(const http_scan_t *s, size_t *pos, int *ret_major, int *ret_minor,
                       http_reject_t bad_reason, http_reject_t *r);

/* Validates a Host value or an authority: uri-host [ ":" port ], uri-host a
 * reg-name or an IP literal in brackets, port at most 5 digits. An empty
 * host is allowed only when allow_empty (a Host field for a URI without
 * authority); require_port demands ":" and digits (CONNECT). */
bool http_authority_valid(str_t s, bool allow_empty, bool require_port);

#endif
