/* The command-line client of the admin API: see cli.h.
 *
 * With admin.tls the client speaks TLS and trusts exactly the certificate
 * the configuration names (the admin listener's own: a private or
 * self-signed one works, and no other certificate does, whatever name it
 * carries). With admin.tls.client_ca it shows the client certificate from
 * SURETY_ADMIN_CERT / SURETY_ADMIN_KEY. Blocking I/O with socket timeouts:
 * this is a one-shot command, not a worker. */
#include "admin/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "core/buf.h"
#include "http/http.h"
#include "tls/tls.h"

#define CLI_MAX_RESPONSE (16u << 20)
#define CLI_TIMEOUT_MS 5000

/* Connects to addr and turns the socket blocking with CLI_TIMEOUT_MS on
 * every read and write. fd or -errno. */
static int connect_blocking(const sock_addr_t *addr)
{
    int fd = sock_connect(addr);
    if (fd < 0)
        return fd;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r = poll(&p, 1, CLI_TIMEOUT_MS);
    int err = r > 0 ? sock_error(fd) : r == 0 ? -ETIMEDOUT : -errno;
    struct timeval tv = {CLI_TIMEOUT_MS / 1000, 0};
    if (err == 0 && (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
                     setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
                     setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0))
        err = -errno;
    if (err < 0) {
        close(fd);
        return err;
    }
    return fd;
}

/* e: the OpenSSL error that ended the session (0: none known, then the
 * thread's queue is asked). */
static void tls_refused(const conf_t *conf, unsigned long e, FILE *errs)
{
    if (!e)
        e = ERR_peek_last_error();
    char text[256] = "refused";
    if (e)
        ERR_error_string_n(e, text, sizeof(text));
    fprintf(errs, "admin: TLS: %s%s\n", text,
            conf->admin_tls.client_ca && !getenv("SURETY_ADMIN_CERT")
                ? " (the admin listener wants a client certificate: set SURETY_ADMIN_CERT "
                  "and SURETY_ADMIN_KEY)"
                : "");
    ERR_clear_error();
}

/* Trusts the first certificate of file, the admin listener's own, and
 * nothing else: not the intermediates or root the file may also hold,
 * which would admit any certificate they signed. */
static int trust_leaf(SSL_CTX *ctx, const char *file)
{
    FILE *f = fopen(file, "r");
    X509 *leaf = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    int ok = leaf && X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), leaf) == 1;
    X509_free(leaf);
    return ok ? 0 : -EINVAL;
}

/* A TLS session on fd trusting only the admin listener's certificate. */
static SSL *tls_open(const conf_t *conf, int fd, FILE *errs)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    const char *cert = getenv("SURETY_ADMIN_CERT"), *key = getenv("SURETY_ADMIN_KEY");
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        trust_leaf(ctx, conf->admin_tls.cert) < 0) {
        fprintf(errs, "admin: cannot trust %s\n", conf->admin_tls.cert);
        goto out;
    }
    /* the leaf itself is the trust anchor: no chain to a root needed */
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
                 SSL_CTX_use_PrivateKey_file(ctx, key ? key : cert, SSL_FILETYPE_PEM) != 1)) {
        fprintf(errs, "admin: cannot use the client certificate %s (SURETY_ADMIN_CERT)\n", cert);
        goto out;
    }
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
        long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (v != X509_V_OK)
            fprintf(errs, "admin: TLS: the admin listener's certificate is not %s: %s\n",
                    conf->admin_tls.cert, X509_verify_cert_error_string(v));
        else
            tls_refused(conf, 0, errs);
        SSL_free(ssl);
        ssl = NULL;
    }
out:
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    ERR_clear_error();
    return ssl;
}

/* Blocking I/O through the stream layer every connection uses: the socket
 * is always "ready" (it blocks instead), so the flags are set before each
 * call; a timeout shows as nothing read or sent. */
static int send_all(int fd, tls_conn_t *t, const char *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        loop_ready_t r = {true, true, false};
        size_t sent = 0;
        int e = tls_stream_send(fd, t, &r, p + off, n - off, NULL, 0, &sent);
        if (e < 0)
            return e == -EAGAIN ? -ETIMEDOUT : e;
        off += sent;
    }
    return 0;
}

/* Everything until the end of the stream into b: 0, -ETIMEDOUT, -errno. */
static int read_all(int fd, tls_conn_t *t, buf_t *b)
{
    for (;;) {
        loop_ready_t r = {true, true, false};
        bool eof = false;
        int err = 0;
        if (!tls_stream_read(fd, t, b, &r, &eof, &err))
            return buf_free_space(b) ? -ETIMEDOUT : -ENOSPC;
        if (err)
            return err;
        if (eof)
            return 0;
    }
}

int admin_cli_request(const conf_t *conf, const char *method, const char *path, FILE *out)
{
    buf_t b;
    buf_init(&b, CLI_MAX_RESPONSE);
    tls_conn_t tls = {0};
    int rc;
    int fd = connect_blocking(&conf->admin_addr);
    if (fd < 0)
        return fd;
    if (conf->admin_tls.enabled && !(tls.ssl = tls_open(conf, fd, stderr))) {
        rc = -EPROTO;
        goto out;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: surety\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                     method, path);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        rc = -EINVAL;
        goto out;
    }
    /* Connection: close: the body ends with the stream */
    if ((rc = send_all(fd, &tls, req, (size_t)n)) < 0 || (rc = read_all(fd, &tls, &b)) < 0) {
        if (tls.ssl && tls.dead) {
            /* TLS 1.3 checks the client's certificate after the handshake
             * "succeeded" here: a refusal arrives as an alert on the read */
            tls_refused(conf, tls.error, stderr);
            rc = -EPROTO;
        }
        goto out;
    }
    http_field_t fields[64];
    http_response_t res;
    http_limits_t lim = {65536, 65536, 64};
    http_reject_t why;
    if (http_parse_response(&res, buf_rptr(&b), buf_len(&b), &lim, false, fields, 64, &why) < 0) {
        rc = -EPROTO;
        goto out;
    }
    if (out)
        fwrite(buf_rptr(&b) + res.head_len, 1, buf_len(&b) - res.head_len, out);
    rc = res.status;
out:
    if (tls.ssl) {
        tls_io_close_notify(&tls);
        tls_conn_free(&tls);
    }
    close(fd);
    buf_deinit(&b);
    return rc;
}
