/* The upstream side: one client SSL_CTX per pool with `tls:` (issue 5,
 * item 4). It fails closed: with verify (the default the caller must give),
 * the upstream's chain is checked against the pool's CA file or the
 * system's roots, and its certificate's names against the pool's sni,
 * which OpenSSL does during the handshake through the context's
 * X509_VERIFY_PARAM, so a connection needs nothing but tls_client_ssl_new.
 * The server name to send is kept with the context (ex_data) because
 * OpenSSL keeps SNI per connection only. Health checks use the same
 * context as the pool's requests, so they prove what requests will get. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_sni = -1;

static void sni_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void ex_init(void)
{
    ex_sni = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_free_cb);
}

static bool is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Chain and name checks; the name is a host name or an IP address. */
static int client_verify(SSL_CTX *ctx, const tls_client_conf_t *c, char *err, size_t errlen)
{
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);

    if (c->ca && SSL_CTX_load_verify_file(ctx, c->ca) != 1) {
        tls_err_ossl(err, errlen, "%s: cannot load trusted certificates", c->ca);
        return -EINVAL;
    }
    if (!c->ca && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tls_err_ossl(err, errlen, "tls: cannot load the system's trusted certificates");
        return -EINVAL;
    }
    /* "*.example.com" covers one whole label, as on the server side. */
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = is_ip_literal(c->sni) ? X509_VERIFY_PARAM_set1_ip_asc(param, c->sni)
                                   : X509_VERIFY_PARAM_set1_host(param, c->sni, 0);
    if (ok != 1) {
        tls_err_ossl(err, errlen, "tls: cannot check the name \"%s\"", c->sni);
        return -EINVAL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

static int client_cert(SSL_CTX *ctx, const tls_client_conf_t *c, char *err, size_t errlen)
{
    tls_cert_files_t f = {.cert = c->cert, .key = c->key};
    tls_cert_t cert;
    int64_t now_s = (int64_t)(tls_now_ms(NULL) / 1000);
    int r = tls_cert_load(&cert, &f, TLS_CERT_CLIENT, now_s, c->warn, c->warn_arg, err, errlen);
    if (r < 0)
        return r;
    if (SSL_CTX_use_cert_and_key(ctx, cert.leaf, cert.key, cert.chain, 1) != 1) {
        tls_err_ossl(err, errlen, "%s: cannot use the certificate", c->cert);
        r = -EINVAL;
    }
    tls_cert_deinit(&cert);
    return r;
}

/* Keeps a copy of the name to send, unless it is an IP address, which
 * RFC 6066 does not allow in SNI. */
static int client_sni(SSL_CTX *ctx, const tls_client_conf_t *c, char *err, size_t errlen)
{
    if (!c->sni || !*c->sni || is_ip_literal(c->sni))
        return 0;
    char *dup = strdup(c->sni);
    if (!dup || SSL_CTX_set_ex_data(ctx, ex_sni, dup) != 1) {
        free(dup);
        tls_err(err, errlen, "tls: out of memory");
        return -ENOMEM;
    }
    return 0;
}

SSL_CTX *tls_client_ctx_new(const tls_client_conf_t *c, char *err, size_t errlen)
{
    static const unsigned char alpn[] = "\x08http/1.1";

    pthread_once(&ex_once, ex_init);
    if (ex_sni < 0) {
        tls_err(err, errlen, "tls: out of memory");
        return NULL;
    }
    if (c->verify && (!c->sni || !*c->sni)) {
        tls_err(err, errlen, "tls: verify needs a name (sni) to check the certificate against");
        return NULL;
    }
    if (!c->cert != !c->key) {
        tls_err(err, errlen, "%s: a client certificate needs both cert and key",
                c->cert ? c->cert : c->key);
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        tls_err_ossl(err, errlen, "tls: cannot create a context");
        return NULL;
    }
    if (tls_ctx_protocols(ctx, TLS_PROFILE_INTERMEDIATE, TLS1_2_VERSION, false, err, errlen) < 0)
        goto fail;
    /* Upstream connections stay busy or idle in a pool bounded by
     * `keepalive`: buffers kept, as on the listeners (see context.c). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Returns 0 on success, unlike the rest of OpenSSL. */
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        tls_err_ossl(err, errlen, "tls: cannot set ALPN");
        goto fail;
    }
    if (!c->verify)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    else if (client_verify(ctx, c, err, errlen) < 0)
        goto fail;
    if (c->cert && client_cert(ctx, c, err, errlen) < 0)
        goto fail;
    if (client_sni(ctx, c, err, errlen) < 0)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    const char *sni = ex_sni >= 0 ? SSL_CTX_get_ex_data(ctx, ex_sni) : NULL;
    if (sni && SSL_set_tlsext_host_name(ssl, sni) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}
