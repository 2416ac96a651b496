/* A listener's server contexts and how a connection picks one (see tls.h).
 *
 * OpenSSL holds at most one certificate per key type in an SSL_CTX and
 * chooses among them per connection from what the client supports, which is
 * how RSA and ECDSA certificates for one name reach the clients that can use
 * each. A server name therefore selects a set of certificates, one per key
 * type: those whose SAN has the name exactly, in configuration order, then
 * those whose wildcard covers it; the first of each key type wins. Names
 * that select the same set share one SSL_CTX ("group"), so a listener needs
 * as many contexts as distinct sets, usually one or two, not one per name.
 * Group 0 is the default: the set of the first certificate's first name.
 *
 * The servername callback, which runs while the handshake reads the
 * ClientHello, looks the name up in a sorted array (exact name, then the
 * wildcard for its parent) and moves the connection to its group with
 * SSL_set_SSL_CTX. Every group context carries the same settings, because
 * what runs after the switch (ALPN, certificate choice) reads the new one,
 * while session tickets stay with the context the SSL was made from.
 *
 * Lifetime: SSL_new takes a reference on the default context, so the
 * listener's memory (the index and the other groups' contexts, which the
 * callbacks reach) is freed by an ex_data destructor when the last
 * reference to the default context goes, not when tls_server_free runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "tls/tls_int.h"

/* Mozilla "intermediate" for TLS 1.2, without the DHE suites: ECDHE only,
 * AEAD only. TLS 1.3 suites are all forward secret; the list is OpenSSL's
 * default, written out so that a changed default cannot widen it. */
#define TLS12_SUITES                                                                               \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* What TLS 1.0/1.1 clients can use, still forward secret: allow_legacy. */
#define TLS_LEGACY_SUITES                                                                          \
    ":ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"

/* Key types a context can hold at once (RSA, RSA-PSS, EC, Ed25519, Ed448). */
#define TLS_SLOTS 8
/* TLS 1.3 caps a ticket's lifetime at 7 days (RFC 8446, 4.6.1). */
#define TLS_TICKET_LIFETIME_MAX_S (7 * 86400)

typedef struct {
    uint32_t cert[TLS_SLOTS]; /* indices into certs, ascending */
    uint32_t n;
    SSL_CTX *ctx;
} tls_group_t;

typedef struct {
    const char *name; /* owned by a tls_cert_t */
    uint32_t group;
} tls_sni_t;

struct tls_server {
    tls_cert_t *certs;
    size_t ncerts;
    tls_group_t *groups; /* groups[0] is the default */
    size_t ngroups;
    tls_sni_t *sni; /* sorted by name */
    size_t nsni;
    tls_ticket_ring_t ring;
    uint64_t (*clock_ms)(void);
};

/* ---- helpers shared by the files of src/tls ---- */

uint64_t tls_now_ms(uint64_t (*clock_ms)(void))
{
    if (clock_ms)
        return clock_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void tls_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void tls_err_ossl(char *err, size_t errlen, const char *fmt, ...)
{
    unsigned long e = ERR_peek_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        int n = vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < errlen)
            snprintf(err + n, errlen - (size_t)n, ": %s", why ? why : "unknown OpenSSL error");
    }
    ERR_clear_error();
}

int tls_ctx_protocols(SSL_CTX *ctx, tls_profile_t profile, int min_version, bool legacy, char *err,
                      size_t errlen)
{
    (void)profile; /* the TLS 1.2 list does not matter when min is 1.3 */
    if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, legacy ? TLS12_SUITES TLS_LEGACY_SUITES : TLS12_SUITES) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        tls_err_ossl(err, errlen, "tls: cannot set protocols and suites");
        return -EINVAL;
    }
    /* Level 2 (112-bit keys, no SHA-1) is Debian's default too; TLS 1.0 and
     * 1.1 sign with SHA-1, which only level 0 allows. */
    SSL_CTX_set_security_level(ctx, legacy ? 0 : 2);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    return 0;
}

/* ---- ex_data: how callbacks find their listener ---- */

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_server = -1; /* every group context: the tls_server_t */
static int ex_owner = -1;  /* the default context only: frees the tls_server_t */

static void server_destroy(tls_server_t *s, bool with_default);

/* Runs for every SSL_CTX freed in the process, with ptr NULL for all but a
 * listener's default context. */
static void owner_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (ptr)
        server_destroy(ptr, false);
}

static void ex_init(void)
{
    ex_server = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ex_owner = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, owner_free_cb);
}

tls_ticket_ring_t *tls_ctx_ring(SSL *ssl)
{
    tls_server_t *s = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_server);
    return s ? &s->ring : NULL;
}

/* ---- per-connection callbacks ---- */

static int sni_cmp(const void *a, const void *b)
{
    return strcmp(((const tls_sni_t *)a)->name, ((const tls_sni_t *)b)->name);
}

static const tls_sni_t *sni_find(const tls_server_t *s, const char *name)
{
    tls_sni_t key = {name, 0};
    return bsearch(&key, s->sni, s->nsni, sizeof(*s->sni), sni_cmp);
}

/* The group for the client's server name: exact, else the wildcard of its
 * parent ("a.example.com" -> "*.example.com", one label only), else none
 * (NULL: stay on the default). No allocation: names fit on the stack. */
static const tls_group_t *sni_group(const tls_server_t *s, const char *name)
{
    char buf[2 + 256];
    size_t len = strlen(name);

    if (len == 0 || len > 253)
        return NULL;
    buf[0] = '*';
    for (size_t i = 0; i <= len; i++)
        buf[1 + i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    const tls_sni_t *hit = sni_find(s, buf + 1);
    if (!hit) {
        char *dot = strchr(buf + 1, '.');
        if (!dot || dot == buf + 1)
            return NULL;
        dot[-1] = '*';
        hit = sni_find(s, dot - 1);
    }
    return hit ? &s->groups[hit->group] : NULL;
}

static int sni_cb(SSL *ssl, int *al, void *arg)
{
    const tls_server_t *s = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const tls_group_t *g = name ? sni_group(s, name) : NULL;

    if (g && g->ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, g->ctx) != g->ctx) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Selects "http/1.1" when the client offers it. A client that offers only
 * other protocols (h2) gets no ALPN answer rather than an alert, so that it
 * can still fall back to HTTP/1.1 without ALPN. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const char proto[] = "http/1.1";
    (void)ssl, (void)arg;
    for (unsigned int i = 0; i < inlen; i += 1u + in[i]) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == sizeof(proto) - 1 && memcmp(in + i + 1, proto, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* ---- building ---- */

static void server_destroy(tls_server_t *s, bool with_default)
{
    for (size_t i = with_default ? 0 : 1; i < s->ngroups; i++)
        SSL_CTX_free(s->groups[i].ctx);
    for (size_t i = 0; i < s->ncerts; i++)
        tls_cert_deinit(&s->certs[i]);
    free(s->certs);
    free(s->groups);
    free(s->sni);
    tls_ticket_ring_deinit(&s->ring);
    free(s);
}

/* The min_version in effect, or 0 with the reason in err. */
static int server_min_version(const tls_server_conf_t *c, char *err, size_t errlen)
{
    bool modern = c->profile == TLS_PROFILE_MODERN;
    int v = c->min_version ? c->min_version : modern ? TLS1_3_VERSION : TLS1_2_VERSION;

    if (v != TLS1_VERSION && v != TLS1_1_VERSION && v != TLS1_2_VERSION && v != TLS1_3_VERSION) {
        tls_err(err, errlen, "tls: unknown min_version 0x%x", (unsigned)v);
        return 0;
    }
    if (modern && v != TLS1_3_VERSION) {
        tls_err(err, errlen, "tls: the modern profile is TLS 1.3 only");
        return 0;
    }
    if (v < TLS1_2_VERSION && !c->allow_legacy) {
        tls_err(err, errlen, "tls: min_version below TLS 1.2 needs the legacy override");
        return 0;
    }
    if (v < TLS1_2_VERSION && c->warn)
        c->warn(c->warn_arg, "tls: TLS 1.0 and 1.1 are enabled (legacy override): they are "
                             "deprecated (RFC 8996) and weaken the listener's security level");
    return v;
}

static int server_load(tls_server_t *s, const tls_server_conf_t *c, char *err, size_t errlen)
{
    int64_t now_s = (int64_t)(tls_now_ms(c->clock_ms) / 1000);
    size_t names = 0;

    s->certs = calloc(c->ncerts, sizeof(*s->certs));
    if (!s->certs) {
        tls_err(err, errlen, "tls: out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->ncerts; i++) {
        int r = tls_cert_load(&s->certs[i], &c->certs[i], TLS_CERT_SERVER, now_s, c->warn,
                              c->warn_arg, err, errlen);
        if (r < 0)
            return r;
        s->ncerts++;
        names += s->certs[i].nnames;
        if (names > TLS_MAX_NAMES) {
            tls_err(err, errlen, "%s: more than %d names over the listener's certificates",
                    c->certs[i].cert, TLS_MAX_NAMES);
            return -E2BIG;
        }
    }
    return 0;
}

static bool cert_has(const tls_cert_t *c, const char *name)
{
    for (size_t i = 0; i < c->nnames; i++)
        if (strcmp(c->names[i], name) == 0)
            return true;
    return false;
}

/* True when one of c's wildcards covers the exact name. */
static bool cert_covers(const tls_cert_t *c, const char *name)
{
    const char *dot = strchr(name, '.');
    if (name[0] == '*' || !dot || dot == name)
        return false;
    for (size_t i = 0; i < c->nnames; i++)
        if (c->names[i][0] == '*' && strcmp(c->names[i] + 1, dot) == 0)
            return true;
    return false;
}

static void set_add(const tls_server_t *s, tls_group_t *g, uint32_t i)
{
    for (uint32_t k = 0; k < g->n; k++)
        if (s->certs[g->cert[k]].key_type == s->certs[i].key_type)
            return;
    if (g->n < TLS_SLOTS)
        g->cert[g->n++] = i;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The certificate set that name selects (see the file comment). */
static tls_group_t name_set(const tls_server_t *s, const char *name)
{
    tls_group_t g = {{0}, 0, NULL};
    for (uint32_t i = 0; i < s->ncerts; i++)
        if (cert_has(&s->certs[i], name))
            set_add(s, &g, i);
    for (uint32_t i = 0; i < s->ncerts; i++)
        if (cert_covers(&s->certs[i], name))
            set_add(s, &g, i);
    qsort(g.cert, g.n, sizeof(g.cert[0]), u32_cmp);
    return g;
}

/* The index of set in s->groups, added when new. Linear: there are as many
 * groups as distinct sets, a handful, and this runs at load only. */
static long group_of(tls_server_t *s, const tls_group_t *set)
{
    for (size_t i = 0; i < s->ngroups; i++)
        if (s->groups[i].n == set->n &&
            memcmp(s->groups[i].cert, set->cert, set->n * sizeof(set->cert[0])) == 0)
            return (long)i;
    s->groups[s->ngroups] = *set;
    return (long)s->ngroups++;
}

/* Builds the sorted name index and the groups it points to, default first. */
static int server_index(tls_server_t *s)
{
    size_t total = 0;
    for (size_t i = 0; i < s->ncerts; i++)
        total += s->certs[i].nnames;
    s->sni = calloc(total ? total : 1, sizeof(*s->sni));
    s->groups = calloc(total + 1, sizeof(*s->groups));
    if (!s->sni || !s->groups)
        return -ENOMEM;
    for (size_t i = 0; i < s->ncerts; i++)
        for (size_t k = 0; k < s->certs[i].nnames; k++)
            s->sni[s->nsni++].name = s->certs[i].names[k];
    qsort(s->sni, s->nsni, sizeof(*s->sni), sni_cmp);
    size_t n = 0;
    for (size_t i = 0; i < s->nsni; i++)
        if (n == 0 || strcmp(s->sni[n - 1].name, s->sni[i].name) != 0)
            s->sni[n++] = s->sni[i];
    s->nsni = n;

    tls_group_t def = {{0}, 1, NULL};
    if (s->certs[0].nnames)
        def = name_set(s, s->certs[0].names[0]);
    (void)group_of(s, &def);
    for (size_t i = 0; i < s->nsni; i++) {
        tls_group_t set = name_set(s, s->sni[i].name);
        s->sni[i].group = (uint32_t)group_of(s, &set);
    }
    return 0;
}

/* Mutual TLS: a client must show a certificate that chains up to one of
 * the authorities in file, whose names are also sent as the acceptable
 * issuers so a client with several certificates picks the right one. */
static int require_client_cert(SSL_CTX *ctx, const char *file, char *err, size_t errlen)
{
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(file);
    if (!names || SSL_CTX_load_verify_file(ctx, file) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        tls_err_ossl(err, errlen, "%s: cannot load client certificate authorities", file);
        return -EINVAL;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
}

/* SSL_CTX_set_tlsext_status_cb, server side: staples the response of the
 * certificate this connection was given, when the client asked. */
static int ocsp_status_cb(SSL *ssl, void *arg)
{
    tls_server_t *s = arg;
    X509 *leaf = SSL_get_certificate(ssl);
    for (size_t i = 0; leaf && i < s->ncerts; i++) {
        if (s->certs[i].leaf != leaf || !s->certs[i].ocsp_der)
            continue;
        unsigned char *copy = OPENSSL_memdup(s->certs[i].ocsp_der, s->certs[i].ocsp_len);
        if (!copy || SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)s->certs[i].ocsp_len) != 1) {
            OPENSSL_free(copy);
            return SSL_TLSEXT_ERR_NOACK;
        }
        return SSL_TLSEXT_ERR_OK; /* OpenSSL frees copy with the connection */
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *server_ctx_new(tls_server_t *s, const tls_group_t *g, tls_profile_t profile,
                               int min_version, bool legacy, const char *client_ca, char *err,
                               size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_err_ossl(err, errlen, "tls: cannot create a context");
        return NULL;
    }
    if (tls_ctx_protocols(ctx, profile, min_version, legacy, err, errlen) < 0)
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    /* No SSL_MODE_RELEASE_BUFFERS: freeing the buffers after every record
     * cost 15-20% of the CPU per keep-alive request. The gateway frees them
     * (tls_io_trim) on connections that stay idle a while instead. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Tickets only: a stateful cache would be one locked table per context
     * shared by every worker, and tickets resume on any worker anyway. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"surety", 6);
    uint64_t life = 2 * s->ring.period_ms / 1000;
    SSL_CTX_set_timeout(ctx, (long)(life < 1                           ? 1
                                    : life > TLS_TICKET_LIFETIME_MAX_S ? TLS_TICKET_LIFETIME_MAX_S
                                                                       : life));
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, s);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    if (SSL_CTX_set_ex_data(ctx, ex_server, s) != 1) {
        tls_err_ossl(err, errlen, "tls: cannot create a context");
        goto fail;
    }
    for (uint32_t k = 0; k < g->n; k++) {
        tls_cert_t *c = &s->certs[g->cert[k]];
        if (SSL_CTX_use_cert_and_key(ctx, c->leaf, c->key, c->chain, 1) != 1) {
            tls_err_ossl(err, errlen, "%s: cannot use the certificate", c->file);
            goto fail;
        }
    }
    if (client_ca && require_client_cert(ctx, client_ca, err, errlen) < 0)
        goto fail;
    SSL_CTX_set_tlsext_status_cb(ctx, ocsp_status_cb);
    SSL_CTX_set_tlsext_status_arg(ctx, s);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

tls_server_t *tls_server_new(const tls_server_conf_t *c, char *err, size_t errlen)
{
    int r;
    tls_server_t *s = NULL;

    pthread_once(&ex_once, ex_init);
    if (ex_server < 0 || ex_owner < 0) {
        tls_err(err, errlen, "tls: out of memory");
        return NULL;
    }
    if (!c->certs || c->ncerts == 0 || c->ncerts > TLS_MAX_CERTS) {
        tls_err(err, errlen, "tls: a listener needs 1 to %d certificates", TLS_MAX_CERTS);
        return NULL;
    }
    int min_version = server_min_version(c, err, errlen);
    if (min_version == 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s || tls_ticket_ring_init(&s->ring, c->ticket_rotate_ms, c->clock_ms) < 0) {
        free(s);
        tls_err(err, errlen, "tls: cannot set up session-ticket keys");
        return NULL;
    }
    s->clock_ms = c->clock_ms;
    r = server_load(s, c, err, errlen);
    if (r == 0 && (r = server_index(s)) < 0)
        tls_err(err, errlen, "tls: out of memory");
    for (size_t i = 0; r == 0 && i < s->ngroups; i++) {
        s->groups[i].ctx =
            server_ctx_new(s, &s->groups[i], c->profile, min_version, c->allow_legacy,
                           c->client_ca, err, errlen);
        if (!s->groups[i].ctx)
            r = -EINVAL;
    }
    if (r == 0 && SSL_CTX_set_ex_data(s->groups[0].ctx, ex_owner, s) != 1) {
        tls_err_ossl(err, errlen, "tls: cannot create a context");
        r = -ENOMEM;
    }
    if (r < 0) {
        server_destroy(s, true);
        return NULL;
    }
    return s;
}

void tls_server_free(tls_server_t *s)
{
    /* The default context's last reference runs owner_free_cb, which frees
     * s: now, or when the last connection made from it is freed. */
    if (s)
        SSL_CTX_free(s->groups[0].ctx);
}

SSL_CTX *tls_server_ctx(tls_server_t *s)
{
    return s->groups[0].ctx;
}

SSL *tls_server_ssl_new(tls_server_t *s)
{
    SSL *ssl = SSL_new(s->groups[0].ctx);
    if (ssl)
        SSL_set_accept_state(ssl);
    return ssl;
}

size_t tls_server_certs(const tls_server_t *s, tls_cert_info_t *out, size_t max)
{
    int64_t now_s = (int64_t)(tls_now_ms(s->clock_ms) / 1000);
    for (size_t i = 0; i < s->ncerts && i < max; i++)
        tls_cert_info(&s->certs[i], now_s, &out[i]);
    return s->ncerts;
}
