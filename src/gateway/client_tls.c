/* TLS on a client connection: the handshake, then reads and writes through
 * OpenSSL on the same non-blocking socket, in the terms the proxy's state
 * machine already speaks (remembered readiness, PROGRESS/IDLE/CLOSED).
 *
 * Readiness: a socket read edge may carry half a record, and a record may
 * hold more than the buffer takes, so `readable` is cleared only when
 * OpenSSL says it wants to read (SSL_ERROR_WANT_READ), never on a short
 * read. OpenSSL may also need to write while we read (TLS 1.3 sends its
 * session tickets after the handshake): then `writable` is cleared and the
 * read is tried again on the next writable edge, `readable` untouched.
 * Writes use partial-write mode, so a full socket buffer takes what fits. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/log.h"
#include "gateway/worker.h"

const char *const stats_tls_fail_names[TLS_FAIL_COUNT] = {
    [TLS_FAIL_VERSION] = "version", [TLS_FAIL_CIPHER] = "cipher", [TLS_FAIL_NOT_TLS] = "not-tls",
    [TLS_FAIL_CLOSED] = "closed",   [TLS_FAIL_OTHER] = "other",
};

static stats_listener_t *lstats(const client_t *c)
{
    return &c->w->stats->listeners[c->l->index];
}

bool client_tls_start(client_t *c, int fd)
{
    c->ssl = tls_server_ssl_new(c->l->tls);
    if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        return false;
    }
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read what the socket has, not one record header then one record body
     * per read(2): a handshake took 9 reads without it. */
    SSL_set_read_ahead(c->ssl, 1);
    c->tls_handshaking = true;
    return true;
}

void client_tls_free(client_t *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
}

/* Why a handshake failed, from OpenSSL's error queue. */
static int fail_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    if (!e)
        return TLS_FAIL_CLOSED;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return TLS_FAIL_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
        return TLS_FAIL_CIPHER;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
        return TLS_FAIL_NOT_TLS;
    default:
        return TLS_FAIL_OTHER;
    }
}

/* OpenSSL waits on the socket (WANT_READ / WANT_WRITE): the readiness it
 * needs is not there; true then, with the flag cleared for the next edge. */
static bool tls_blocked(client_t *c, int ssl_error)
{
    if (ssl_error == SSL_ERROR_WANT_READ)
        c->ready.readable = false;
    else if (ssl_error == SSL_ERROR_WANT_WRITE)
        c->ready.writable = false;
    else
        return false;
    return true;
}

int client_tls_handshake(client_t *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls_handshaking = false;
        STAT_INC(lstats(c)->tls_handshakes);
        if (SSL_session_reused(c->ssl))
            STAT_INC(lstats(c)->tls_resumed);
        return STEP_PROGRESS;
    }
    if (tls_blocked(c, SSL_get_error(c->ssl, r)))
        return STEP_IDLE;
    int why = fail_reason();
    STAT_INC(lstats(c)->tls_failures[why]);
    if (why != TLS_FAIL_CLOSED) {
        char text[256];
        ERR_error_string_n(ERR_peek_last_error(), text, sizeof(text));
        log_debug("listener %s: TLS handshake with %s failed: %s",
                  c->w->conf->listeners[c->l->index].name, c->peer_ip, text);
    }
    ERR_clear_error();
    client_close(c);
    return STEP_CLOSED;
}

int client_tls_read(client_t *c, buf_t *b, int *ret_err)
{
    if (!c->ready.readable || c->eof)
        return STEP_IDLE;
    if (buf_alloc(b) < 0) {
        *ret_err = -ENOMEM;
        c->eof = true;
        return STEP_PROGRESS;
    }
    if (buf_room(b) == 0)
        buf_compact(b);
    if (buf_room(b) == 0)
        return STEP_IDLE;
    ERR_clear_error();
    size_t n = 0;
    int r = SSL_read_ex(c->ssl, b->data + b->tail, buf_room(b), &n);
    if (r == 1) {
        b->tail += n;
        return STEP_PROGRESS;
    }
    int e = SSL_get_error(c->ssl, r);
    if (tls_blocked(c, e))
        return STEP_IDLE;
    switch (e) {
    case SSL_ERROR_ZERO_RETURN: /* close_notify: a clean end */
        c->eof = true;
        return STEP_PROGRESS;
    default: /* a cut without close_notify, or a bad record */
        ERR_clear_error();
        c->tls_dead = true;
        *ret_err = -ECONNRESET;
        c->eof = true;
        return STEP_PROGRESS;
    }
}

/* SSL_writes of p[0, len) until all of it went or the socket is full: 0
 * with *ret_sent (maybe partial), -EAGAIN (nothing went), -EPIPE. In
 * partial-write mode SSL_write returns after each record (16 KiB), which
 * says nothing about the socket: only WANT_WRITE does. */
static int write_one(client_t *c, const char *p, size_t len, size_t *ret_sent)
{
    *ret_sent = 0;
    while (*ret_sent < len) {
        ERR_clear_error();
        size_t n = 0;
        int r = SSL_write_ex(c->ssl, p + *ret_sent, len - *ret_sent, &n);
        if (r == 1) {
            *ret_sent += n;
            continue;
        }
        if (tls_blocked(c, SSL_get_error(c->ssl, r)))
            return *ret_sent ? 0 : -EAGAIN;
        ERR_clear_error();
        c->tls_dead = true;
        return *ret_sent ? 0 : -EPIPE;
    }
    return 0;
}

int client_tls_send(client_t *c, const char *a, size_t alen, const char *b, size_t blen,
                    size_t *ret_sent)
{
    size_t sent = 0, n;
    *ret_sent = 0;
    if (alen + blen == 0)
        return 0;
    if (!c->ready.writable)
        return -EAGAIN;
    if (alen) {
        int r = write_one(c, a, alen, &n);
        if (r < 0)
            return r;
        sent = n;
        if (n < alen) {
            *ret_sent = sent;
            return 0;
        }
    }
    if (blen && c->ready.writable) {
        int r = write_one(c, b, blen, &n);
        if (r < 0 && sent == 0)
            return r;
        if (r == 0)
            sent += n;
    }
    *ret_sent = sent;
    return 0;
}

void client_tls_close_notify(client_t *c)
{
    /* OpenSSL 3 clients call a close without close_notify "unexpected EOF"
     * (a possible truncation attack), so every orderly close sends it; not
     * after a fatal error, where SSL_shutdown is not allowed. Once is
     * enough: a second call would wait for the peer's. */
    if (c->ssl && !c->tls_handshaking && !c->tls_dead && !c->tls_notified) {
        c->tls_notified = true;
        ERR_clear_error();
        SSL_shutdown(c->ssl); /* best effort: the socket is non-blocking */
        ERR_clear_error();
    }
}
