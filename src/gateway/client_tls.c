/* TLS on a client connection: the handshake and reads in the terms the
 * proxy's state machine speaks (PROGRESS/IDLE/CLOSED), with the listener's
 * statistics; the I/O itself, and its readiness rules, are src/tls/io.c's,
 * shared with upstream connections. Writes go straight to tls_io_send. */
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
    SSL *ssl = tls_server_ssl_new(c->l->tls);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return false;
    }
    tls_conn_start(&c->tls, ssl);
    return true;
}

void client_tls_free(client_t *c)
{
    tls_conn_free(&c->tls);
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

int client_tls_handshake(client_t *c)
{
    int r = tls_io_handshake(&c->tls, &c->ready);
    if (r == 0) {
        STAT_INC(lstats(c)->tls_handshakes);
        if (SSL_session_reused(c->tls.ssl))
            STAT_INC(lstats(c)->tls_resumed);
        return STEP_PROGRESS;
    }
    if (r == -EAGAIN)
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
