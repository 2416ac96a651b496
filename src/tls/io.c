/* Non-blocking TLS I/O in the terms the event loop's owners speak: the
 * readiness they remember (loop_ready_t), results 0 / -EAGAIN / -errno. Both
 * ends of the proxy use it: client connections on a TLS listener, and
 * upstream connections to a pool with `tls:`.
 *
 * Readiness: a socket read edge may carry half a record, and a record may
 * hold more than the caller's buffer takes, so `readable` is cleared only
 * when OpenSSL says it wants to read (SSL_ERROR_WANT_READ), never on a short
 * read. OpenSSL may also need to write while we read (TLS 1.3 session
 * tickets after the handshake): then `writable` is cleared and the read is
 * tried again on the next writable edge, `readable` untouched. Writes use
 * partial-write mode, so a full socket buffer takes what fits; SSL_write
 * then returns after each record, which says nothing about the socket: only
 * WANT_WRITE does.
 *
 * A retried SSL_write must offer at least the bytes of the record it left
 * pending (OpenSSL fails a shorter retry with "bad length"). The callers
 * keep unsent bytes and offer them again, only ever with more behind them,
 * and tls_io_send() combines a short head with the body in a way that gives
 * every retry the same first record (see there). */
#include <errno.h>
#include <string.h>

#include <stdio.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/tls.h"

/* A head shorter than this is sent in one record with the start of the
 * body: one record (and one write) for a small response instead of two. */
#define COMBINE_MAX 16384

void tls_conn_start(tls_conn_t *t, SSL *ssl)
{
    *t = (tls_conn_t){.ssl = ssl, .handshaking = true};
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read what the socket has, not one record header then one record body
     * per read(2): a handshake took 9 reads without it. */
    SSL_set_read_ahead(ssl, 1);
}

void tls_conn_free(tls_conn_t *t)
{
    SSL_free(t->ssl);
    t->ssl = NULL;
}

/* OpenSSL waits on the socket: the readiness it needs is not there; true
 * then, with the flag cleared for the next edge. */
static bool blocked(loop_ready_t *r, int ssl_error)
{
    if (ssl_error == SSL_ERROR_WANT_READ)
        r->readable = false;
    else if (ssl_error == SSL_ERROR_WANT_WRITE)
        r->writable = false;
    else
        return false;
    return true;
}

int tls_io_handshake(tls_conn_t *t, loop_ready_t *r)
{
    ERR_clear_error();
    int n = SSL_do_handshake(t->ssl);
    if (n == 1) {
        t->handshaking = false;
        return 0;
    }
    if (blocked(r, SSL_get_error(t->ssl, n)))
        return -EAGAIN;
    t->dead = true; /* no close_notify after a failed handshake */
    return -EPROTO; /* the reason stays in OpenSSL's error queue */
}

int tls_io_read(tls_conn_t *t, loop_ready_t *r, char *p, size_t room, size_t *ret_n)
{
    *ret_n = 0;
    ERR_clear_error();
    int n = SSL_read_ex(t->ssl, p, room, ret_n);
    if (n == 1)
        return 0;
    int e = SSL_get_error(t->ssl, n);
    if (blocked(r, e))
        return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN) /* close_notify: a clean end */
        return 0;
    /* A cut without close_notify, a bad record, or the peer's alert. */
    t->error = ERR_peek_last_error();
    ERR_clear_error();
    t->dead = true;
    return -ECONNRESET;
}

/* SSL_writes of p[0, len) until all of it went or the socket is full: 0
 * with *ret_sent (maybe partial), -EAGAIN (nothing went), -EPIPE. */
static int write_all(tls_conn_t *t, loop_ready_t *r, const char *p, size_t len, size_t *ret_sent)
{
    *ret_sent = 0;
    while (*ret_sent < len) {
        ERR_clear_error();
        size_t n = 0;
        int w = SSL_write_ex(t->ssl, p + *ret_sent, len - *ret_sent, &n);
        if (w == 1) {
            *ret_sent += n;
            continue;
        }
        if (blocked(r, SSL_get_error(t->ssl, w)))
            return *ret_sent ? 0 : -EAGAIN;
        t->error = ERR_peek_last_error();
        ERR_clear_error();
        t->dead = true;
        return *ret_sent ? 0 : -EPIPE;
    }
    return 0;
}

/* The head (all of a) and the first bytes of b, up to COMBINE_MAX, copied
 * into one record. A retry after WANT_WRITE sees the same a and at least as
 * much of b, so it builds the same record again (or a longer one that
 * starts the same), which is what OpenSSL requires. Returns what went, as
 * write_all. */
static int write_combined(tls_conn_t *t, loop_ready_t *r, const char *a, size_t alen,
                          const char *b, size_t blen, size_t *ret_sent)
{
    char rec[COMBINE_MAX];
    size_t take = blen < COMBINE_MAX - alen ? blen : COMBINE_MAX - alen;
    memcpy(rec, a, alen);
    if (take)
        memcpy(rec + alen, b, take);
    return write_all(t, r, rec, alen + take, ret_sent);
}

int tls_io_send(tls_conn_t *t, loop_ready_t *r, const char *a, size_t alen, const char *b,
                size_t blen, size_t *ret_sent)
{
    size_t sent = 0, n;
    *ret_sent = 0;
    if (alen + blen == 0)
        return 0;
    if (!r->writable)
        return -EAGAIN;
    if (alen && alen < COMBINE_MAX) {
        int w = write_combined(t, r, a, alen, b, blen, &n);
        if (w < 0)
            return w;
        sent = n;
        if (n < alen + (blen < COMBINE_MAX - alen ? blen : COMBINE_MAX - alen)) {
            *ret_sent = sent;
            return 0;
        }
    } else if (alen) {
        int w = write_all(t, r, a, alen, &n);
        if (w < 0)
            return w;
        sent = n;
        if (n < alen) {
            *ret_sent = sent;
            return 0;
        }
    }
    size_t from_b = sent > alen ? sent - alen : 0;
    if (blen > from_b && r->writable) {
        int w = write_all(t, r, b + from_b, blen - from_b, &n);
        if (w < 0 && sent == 0)
            return w;
        if (w == 0)
            sent += n;
    }
    *ret_sent = sent;
    return 0;
}

void tls_io_close_notify(tls_conn_t *t)
{
    /* OpenSSL 3 peers call a close without close_notify "unexpected EOF"
     * (a possible truncation attack), so every orderly close sends it; not
     * after a fatal error, where SSL_shutdown is not allowed. Once is
     * enough: a second call would wait for the peer's. */
    if (t->ssl && !t->handshaking && !t->dead && !t->notified) {
        t->notified = true;
        ERR_clear_error();
        SSL_shutdown(t->ssl); /* best effort: the socket is non-blocking */
        ERR_clear_error();
    }
}

bool tls_io_trim(tls_conn_t *t)
{
    /* Only when nothing is buffered inside OpenSSL: SSL_free_buffers
     * refuses otherwise, and a record read ahead must not be lost. */
    if (!t->ssl || t->handshaking || SSL_has_pending(t->ssl))
        return false;
    return SSL_free_buffers(t->ssl) == 1;
}

void tls_io_failure(tls_conn_t *t, char *out, size_t outlen)
{
    long v = t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    if (v != X509_V_OK) {
        snprintf(out, outlen, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    } else if (e) {
        char text[256];
        ERR_error_string_n(e, text, sizeof(text));
        snprintf(out, outlen, "%s", text);
    } else {
        snprintf(out, outlen, "connection closed");
    }
    ERR_clear_error();
}
