/* Unit tests of src/tls: real OpenSSL end to end, no mocks. The group setup
 * makes a private CA and certificates signed by it (exact, wildcard, RSA and
 * ECDSA for one name, expired, expiring in 10 days, self-signed, a leaf
 * without its issuer) with the OpenSSL API and writes them to a temporary
 * directory. Load-time checks are tested through tls_cert_check and
 * tls_server_new; everything else through full handshakes between a server
 * context and a client SSL_CTX configured per test, over an in-memory BIO
 * pair driven in one thread. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

#define DAY (24L * 3600)

static char dir[64];
static EVP_PKEY *k_ca, *k_ca2, *k_rsa, *k_ec;
static X509 *ca, *ca2;
static char warnings[8192];
static uint64_t fake_now_ms;

static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t fake_clock(void)
{
    return fake_now_ms;
}

static void collect_warning(void *arg, const char *msg)
{
    (void)arg;
    size_t n = strlen(warnings);
    snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
}

/* The file name in the test directory; a few live at once. */
static const char *path(const char *name)
{
    static char buf[8][256];
    static unsigned next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

/* ---- fixtures ---- */

static void add_ext(X509 *x, X509V3_CTX *v, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for key, valid from now+from_s to now+to_s, signed by
 * issuer/ikey or self-signed when issuer is NULL. san like "DNS:a,DNS:b". */
static X509 *make_cert(const char *cn, const char *san, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
                       long from_s, long to_s, bool is_ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509V3_CTX v;

    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &v, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca)
        add_ext(x, &v, NID_key_usage, "critical,keyCertSign,cRLSign");
    else
        add_ext(x, &v, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(x, &v, NID_subject_key_identifier, "hash");
    add_ext(x, &v, NID_authority_key_identifier, "keyid:always");
    if (san)
        add_ext(x, &v, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer ? ikey : key, EVP_sha256()) > 0);
    return x;
}

/* Writes leaf, then chain (may be NULL), to name. Takes leaf. */
static void write_cert(const char *name, X509 *leaf, X509 *chain)
{
    FILE *f = fopen(path(name), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, leaf), 1);
    if (chain)
        assert_int_equal(PEM_write_X509(f, chain), 1);
    fclose(f);
    X509_free(leaf);
}

static void write_key(const char *name, EVP_PKEY *k)
{
    FILE *f = fopen(path(name), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *const files[] = {
    "ca.crt",   "ca2.crt",      "rsa.key",     "ec.key",      "ca.key",     "a.crt",
    "wild.crt", "both-rsa.crt", "both-ec.crt", "expired.crt", "soon.crt",   "leafonly.crt",
    "self.crt", "garbage.crt",  "garbage.key", "nocn.crt",    "client.crt",
};

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/surety-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    k_ca = EVP_RSA_gen(2048);
    k_rsa = EVP_RSA_gen(2048);
    k_ec = EVP_EC_gen("P-256");
    k_ca2 = EVP_EC_gen("P-256");
    assert_true(k_ca && k_rsa && k_ec && k_ca2);
    ca = make_cert("Surety Test CA", NULL, k_ca, NULL, NULL, -DAY, 3650 * DAY, true);
    ca2 = make_cert("Other CA", NULL, k_ca2, NULL, NULL, -DAY, 3650 * DAY, true);
    X509_up_ref(ca);
    write_cert("ca.crt", ca, NULL);
    X509_up_ref(ca2);
    write_cert("ca2.crt", ca2, NULL);
    write_key("rsa.key", k_rsa);
    write_key("ec.key", k_ec);
    write_key("ca.key", k_ca);

    long y = 365 * DAY;
    write_cert("a.crt",
               make_cert("a.example.com", "DNS:a.example.com", k_rsa, ca, k_ca, -DAY, y, 0), ca);
    write_cert("wild.crt", make_cert("wild", "DNS:*.example.com", k_rsa, ca, k_ca, -DAY, y, 0), ca);
    write_cert("both-rsa.crt",
               make_cert("both-rsa", "DNS:both.example.com", k_rsa, ca, k_ca, -DAY, y, 0), ca);
    write_cert("both-ec.crt",
               make_cert("both-ec", "DNS:both.example.com", k_ec, ca, k_ca, -DAY, y, 0), ca);
    write_cert("expired.crt",
               make_cert("expired", "DNS:old.example.com", k_rsa, ca, k_ca, -30 * DAY, -DAY, 0),
               ca);
    write_cert("soon.crt",
               make_cert("soon", "DNS:soon.example.com", k_rsa, ca, k_ca, -DAY, 10 * DAY, 0), ca);
    write_cert("leafonly.crt",
               make_cert("leafonly", "DNS:lone.example.com", k_rsa, ca, k_ca, -DAY, y, 0), NULL);
    write_cert("self.crt", make_cert("self", "DNS:self.example.com", k_rsa, NULL, NULL, -DAY, y, 0),
               NULL);
    /* No SAN: the CN is the name. */
    write_cert("nocn.crt", make_cert("cn.example.com", NULL, k_rsa, ca, k_ca, -DAY, y, 0), ca);
    write_cert("client.crt", make_cert("client", NULL, k_ec, ca, k_ca, -DAY, y, 0), ca);
    write_text("garbage.crt", "this is not a certificate\n");
    write_text("garbage.key",
               "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(path(files[i]));
    rmdir(dir);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(k_ca);
    EVP_PKEY_free(k_ca2);
    EVP_PKEY_free(k_rsa);
    EVP_PKEY_free(k_ec);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    warnings[0] = '\0';
    fake_now_ms = real_ms();
    ERR_clear_error();
    return 0;
}

/* ---- servers, clients, handshakes ---- */

typedef struct {
    const char *cert, *key;
} pair_t;

static tls_server_t *server_ex(const pair_t *p, size_t n, tls_profile_t profile, int min_version,
                               bool legacy, char *err)
{
    tls_cert_files_t certs[8] = {0};
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        certs[i].cert = path(p[i].cert);
        certs[i].key = path(p[i].key);
    }
    tls_server_conf_t c = {
        .certs = certs,
        .ncerts = n,
        .profile = profile,
        .min_version = min_version,
        .allow_legacy = legacy,
        .clock_ms = fake_clock,
        .warn = collect_warning,
    };
    return tls_server_new(&c, err, 512);
}

static tls_server_t *server(const pair_t *p, size_t n)
{
    char err[512] = "";
    tls_server_t *s = server_ex(p, n, TLS_PROFILE_INTERMEDIATE, 0, false, err);
    if (!s)
        fail_msg("tls_server_new: %s", err);
    return s;
}

/* A client that checks nothing, limited to [minv, maxv]; ciphers (TLS 1.2
 * list) and sigalgs narrow what it offers when not NULL. */
static SSL_CTX *client(int minv, int maxv, const char *ciphers, const char *sigalgs)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (minv < TLS1_2_VERSION) {
        /* Otherwise the client itself would not even offer TLS 1.0. */
        SSL_CTX_set_security_level(ctx, 0);
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"), 1);
    }
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, minv), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, maxv), 1);
    if (ciphers)
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    if (sigalgs)
        assert_int_equal(SSL_CTX_set1_sigalgs_list(ctx, sigalgs), 1);
    return ctx;
}

typedef struct {
    SSL *cli, *srv;
    bool ok;
    int srv_reason, cli_reason; /* ERR_GET_REASON of each side's failure */
} conn_t;

/* One handshake step for one side: true when it is over (done or failed). */
static bool step(SSL *ssl, bool *done, int *reason)
{
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        *done = true;
        return true;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return false;
    *reason = ERR_GET_REASON(ERR_peek_error());
    ERR_clear_error();
    return true;
}

/* Handshakes cli with srv over a BIO pair; on success, one byte from the
 * server, so that the client reads the TLS 1.3 tickets that follow the
 * handshake. */
static conn_t handshake(SSL *cli, SSL *srv)
{
    conn_t c = {cli, srv, false, 0, 0};
    BIO *bc, *bs;
    bool cdone = false, sdone = false, cover = false, sover = false;

    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(cli, bc, bc);
    SSL_set_bio(srv, bs, bs);
    for (int i = 0; i < 50 && !(cover && sover); i++) {
        if (!cover)
            cover = step(cli, &cdone, &c.cli_reason);
        if (!sover)
            sover = step(srv, &sdone, &c.srv_reason);
        if ((cover && !cdone) || (sover && !sdone))
            break;
    }
    c.ok = cdone && sdone;
    if (c.ok) {
        char b;
        assert_int_equal(SSL_write(srv, "x", 1), 1);
        assert_int_equal(SSL_read(cli, &b, 1), 1);
    }
    ERR_clear_error();
    return c;
}

static conn_t connect_sni(tls_server_t *s, SSL_CTX *cctx, const char *sni, SSL_SESSION *sess)
{
    SSL *srv = tls_server_ssl_new(s);
    SSL *cli = SSL_new(cctx);
    assert_non_null(srv);
    assert_non_null(cli);
    SSL_set_connect_state(cli);
    if (sni)
        assert_int_equal(SSL_set_tlsext_host_name(cli, sni), 1);
    if (sess)
        assert_int_equal(SSL_set_session(cli, sess), 1);
    return handshake(cli, srv);
}

/* Closes cleanly when the handshake succeeded: OpenSSL marks the session
 * of a client SSL freed without close_notify as not resumable. */
static void conn_close(conn_t *c)
{
    if (c->ok) {
        SSL_shutdown(c->cli);
        SSL_shutdown(c->srv);
    }
    SSL_free(c->cli);
    SSL_free(c->srv);
}

/* The CN of the certificate the server presented. */
static const char *peer_cn(const conn_t *c)
{
    static char cn[256];
    X509 *x = SSL_get0_peer_certificate(c->cli);
    assert_non_null(x);
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0);
    return cn;
}

/* ---- load-time checks ---- */

static int check(const char *cert, const char *key, char *err)
{
    char c[256], k[256];
    snprintf(c, sizeof(c), "%s", path(cert));
    snprintf(k, sizeof(k), "%s", path(key));
    tls_cert_files_t f = {.cert = c, .key = k};
    err[0] = '\0';
    return tls_cert_check(&f, 0, collect_warning, NULL, NULL, err, 512);
}

static void test_cert_and_key_that_do_not_match_are_rejected_naming_both_files(void **state)
{
    char err[512], want[600];
    (void)state;
    assert_int_equal(check("a.crt", "ca.key", err), -EINVAL);
    snprintf(want, sizeof(want), "%s: certificate and key %s do not match", path("a.crt"),
             path("ca.key"));
    assert_string_equal(err, want);
    assert_int_equal(check("a.crt", "ec.key", err), -EINVAL);
    assert_non_null(strstr(err, "do not match"));
    assert_non_null(strstr(err, path("ec.key")));
}

static void test_garbage_files_are_rejected_as_not_pem(void **state)
{
    char err[512], want[600];
    (void)state;
    assert_int_equal(check("garbage.crt", "rsa.key", err), -EINVAL);
    snprintf(want, sizeof(want), "%s: not a PEM certificate", path("garbage.crt"));
    assert_string_equal(err, want);
    assert_int_equal(check("a.crt", "garbage.key", err), -EINVAL);
    snprintf(want, sizeof(want), "%s: not a PEM private key", path("garbage.key"));
    assert_string_equal(err, want);
    assert_int_equal(check("missing.crt", "rsa.key", err), -ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", path("missing.crt"));
    assert_string_equal(err, want);
}

static void test_expired_certificate_is_rejected(void **state)
{
    char err[512];
    (void)state;
    assert_int_equal(check("expired.crt", "rsa.key", err), -EINVAL);
    assert_non_null(strstr(err, path("expired.crt")));
    assert_non_null(strstr(err, ": certificate expired on "));

    pair_t p = {"expired.crt", "rsa.key"};
    assert_null(server_ex(&p, 1, TLS_PROFILE_INTERMEDIATE, 0, false, err));
    assert_non_null(strstr(err, "certificate expired on"));
}

static void test_certificate_expiring_within_30_days_loads_with_a_warning(void **state)
{
    char err[512];
    (void)state;
    assert_int_equal(check("soon.crt", "rsa.key", err), 0);
    assert_non_null(strstr(warnings, path("soon.crt")));
    /* 9 or 10: the certificate was made less than a second ago. */
    if (!strstr(warnings, ": certificate expires in 9 days") &&
        !strstr(warnings, ": certificate expires in 10 days"))
        fail_msg("warnings: %s", warnings);

    warnings[0] = '\0';
    pair_t p[] = {{"a.crt", "rsa.key"}, {"soon.crt", "rsa.key"}};
    tls_server_t *s = server(p, 2);
    assert_non_null(strstr(warnings, "soon.crt: certificate expires in "));
    tls_cert_info_t info[3];
    assert_int_equal(tls_server_certs(s, info, 3), 2);
    assert_string_equal(info[0].name, "a.example.com");
    assert_string_equal(info[0].key_type, "RSA");
    assert_string_equal(info[1].name, "soon.example.com");
    assert_string_equal(info[1].file, path("soon.crt"));
    assert_true(info[1].days_left == 9 || info[1].days_left == 10);
    int64_t left = info[1].not_after_s - (int64_t)(real_ms() / 1000);
    assert_true(left > 9 * DAY && left <= 10 * DAY);
    tls_server_free(s);
}

static void test_chain_without_its_issuer_does_not_verify(void **state)
{
    char err[512], want[600];
    (void)state;
    assert_int_equal(check("leafonly.crt", "rsa.key", err), -EINVAL);
    snprintf(want, sizeof(want),
             "%s: chain does not verify: unable to get local issuer certificate",
             path("leafonly.crt"));
    assert_string_equal(err, want);
}

static void test_self_signed_leaf_and_private_root_load_with_a_warning(void **state)
{
    char err[512];
    (void)state;
    assert_int_equal(check("self.crt", "rsa.key", err), 0);
    assert_non_null(strstr(warnings, "self-signed certificate"));
    warnings[0] = '\0';
    assert_int_equal(check("a.crt", "rsa.key", err), 0);
    assert_non_null(strstr(warnings, "Surety Test CA, a root not in the system's trust store"));
}

static void test_certificate_without_san_is_reached_by_its_cn(void **state)
{
    (void)state;
    pair_t p[] = {{"a.crt", "rsa.key"}, {"nocn.crt", "rsa.key"}};
    tls_server_t *s = server(p, 2);
    SSL_CTX *cc = client(TLS1_2_VERSION, TLS1_3_VERSION, NULL, NULL);
    conn_t c = connect_sni(s, cc, "cn.example.com", NULL);
    assert_true(c.ok);
    assert_string_equal(peer_cn(&c), "cn.example.com");
    conn_close(&c);
    SSL_CTX_free(cc);
    tls_server_free(s);
}

static void test_bad_version_settings_are_rejected(void **state)
{
    char err[512];
    pair_t p = {"a.crt", "rsa.key"};
    (void)state;
    assert_null(server_ex(&p, 1, TLS_PROFILE_INTERMEDIATE, TLS1_1_VERSION, false, err));
    assert_string_equal(err, "tls: min_version below TLS 1.2 needs the legacy override");
    assert_null(server_ex(&p, 1, TLS_PROFILE_MODERN, TLS1_2_VERSION, false, err));
    assert_string_equal(err, "tls: the modern profile is TLS 1.3 only");
    assert_null(server_ex(&p, 1, TLS_PROFILE_INTERMEDIATE, 0x0200, false, err));
    assert_null(server_ex(&p, 0, TLS_PROFILE_INTERMEDIATE, 0, false, err));
}

/* ---- protocol versions and suites ---- */

static void test_tls10_and_tls11_clients_are_refused(void **state)
{
    static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION};
    pair_t p = {"a.crt", "rsa.key"};
    char err[512];
    (void)state;
    tls_server_t *s = server(&p, 1);
    tls_server_t *legacy = server_ex(&p, 1, TLS_PROFILE_INTERMEDIATE, TLS1_VERSION, true, err);
    assert_non_null(legacy);
    assert_non_null(strstr(warnings, "legacy override"));
    for (size_t i = 0; i < 2; i++) {
        SSL_CTX *cc = client(versions[i], versions[i], NULL, NULL);
        conn_t c = connect_sni(s, cc, NULL, NULL);
        assert_false(c.ok);
        assert_int_equal(c.srv_reason, SSL_R_UNSUPPORTED_PROTOCOL);
        conn_close(&c);
        /* The same client gets through to a listener with the override,
         * so the refusal above is the server's doing. */
        c = connect_sni(legacy, cc, NULL, NULL);
        assert_true(c.ok);
        assert_int_equal(SSL_version(c.cli), versions[i]);
        conn_close(&c);
        SSL_CTX_free(cc);
    }
    tls_server_free(legacy);
    tls_server_free(s);
}

static void test_tls12_and_tls13_clients_are_accepted(void **state)
{
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    pair_t p = {"a.crt", "rsa.key"};
    (void)state;
    tls_server_t *s = server(&p, 1);
    for (size_t i = 0; i < 2; i++) {
        SSL_CTX *cc = client(versions[i], versions[i], NULL, NULL);
        conn_t c = connect_sni(s, cc, NULL, NULL);
        assert_true(c.ok);
        assert_int_equal(SSL_version(c.cli), versions[i]);
        conn_close(&c);
        SSL_CTX_free(cc);
    }
    tls_server_free(s);
}

static void test_modern_profile_refuses_tls12(void **state)
{
    pair_t p = {"a.crt", "rsa.key"};
    char err[512];
    (void)state;
    tls_server_t *s = server_ex(&p, 1, TLS_PROFILE_MODERN, 0, false, err);
    assert_non_null(s);
    SSL_CTX *cc = client(TLS1_2_VERSION, TLS1_2_VERSION, NULL, NULL);
    conn_t c = connect_sni(s, cc, NULL, NULL);
    assert_false(c.ok);
    assert_int_equal(c.srv_reason, SSL_R_UNSUPPORTED_PROTOCOL);
    conn_close(&c);
    SSL_CTX_free(cc);
    cc = client(TLS1_2_VERSION, TLS1_3_VERSION, NULL, NULL);
    c = connect_sni(s, cc, NULL, NULL);
    assert_true(c.ok);
    assert_int_equal(SSL_version(c.cli), TLS1_3_VERSION);
    conn_close(&c);
    SSL_CTX_free(cc);
    tls_server_free(s);
}

static void test_suites_without_forward_secrecy_are_refused(void **state)
{
    static const char *const suites[] = {"AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256",
                                         "DHE-RSA-AES128-GCM-SHA256"};
    pair_t p = {"a.crt", "rsa.key"};
    (void)state;
    tls_server_t *s = server(&p, 1);
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        SSL_CTX *cc = client(TLS1_2_VERSION, TLS1_2_VERSION, suites[i], NULL);
        conn_t c = connect_sni(s, cc, NULL, NULL);
        if (c.ok)
            fail_msg("%s was accepted", suites[i]);
        assert_int_equal(c.srv_reason, SSL_R_NO_SHARED_CIPHER);
        conn_close(&c);
        SSL_CTX_free(cc);
    }
    tls_server_free(s);
}

static void test_tls12_suite_is_the_servers_choice(void **state)
{
    pair_t p = {"a.crt", "rsa.key"};
    (void)state;
    tls_server_t *s = server(&p, 1);
    SSL_CTX *cc = client(TLS1_2_VERSION, TLS1_2_VERSION,
                         "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256", NULL);
    conn_t c = connect_sni(s, cc, NULL, NULL);
    assert_true(c.ok);
    assert_string_equal(SSL_get_cipher_name(c.cli), "ECDHE-RSA-AES128-GCM-SHA256");
    assert_int_equal(SSL_get_negotiated_group(c.cli), NID_X25519);
    conn_close(&c);
    SSL_CTX_free(cc);
    tls_server_free(s);
}

/* ---- certificate choice ---- */

static void test_sni_picks_the_certificate_for_each_name(void **state)
{
    static const struct {
        const char *sni, *cn;
    } cases[] = {
        {"a.example.com", "a.example.com"},
        {"A.Example.COM", "a.example.com"},
        {"x.example.com", "wild"},
        {"both.example.com", "both-rsa"},
        {"x.y.example.com", "a.example.com"}, /* a wildcard covers one label */
        {"example.com", "a.example.com"},
        {"unknown.org", "a.example.com"},
        {NULL, "a.example.com"},
    };
    pair_t p[] = {{"a.crt", "rsa.key"}, {"wild.crt", "rsa.key"}, {"both-rsa.crt", "rsa.key"}};
    (void)state;
    tls_server_t *s = server(p, 3);
    SSL_CTX *cc = client(TLS1_2_VERSION, TLS1_3_VERSION, NULL, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conn_t c = connect_sni(s, cc, cases[i].sni, NULL);
        assert_true(c.ok);
        if (strcmp(peer_cn(&c), cases[i].cn) != 0)
            fail_msg("SNI %s: got %s, want %s", cases[i].sni ? cases[i].sni : "(none)", peer_cn(&c),
                     cases[i].cn);
        conn_close(&c);
    }
    SSL_CTX_free(cc);
    tls_server_free(s);
}

static void test_rsa_and_ecdsa_certificates_go_to_the_clients_that_support_each(void **state)
{
    static const struct {
        int version;
        const char *ciphers, *sigalgs, *cn;
    } cases[] = {
        {TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", NULL, "both-ec"},
        {TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256", NULL, "both-rsa"},
        {TLS1_3_VERSION, NULL, "ecdsa_secp256r1_sha256", "both-ec"},
        {TLS1_3_VERSION, NULL, "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384", "both-rsa"},
    };
    pair_t p[] = {{"a.crt", "rsa.key"}, {"both-rsa.crt", "rsa.key"}, {"both-ec.crt", "ec.key"}};
    (void)state;
    tls_server_t *s = server(p, 3);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SSL_CTX *cc =
            client(cases[i].version, cases[i].version, cases[i].ciphers, cases[i].sigalgs);
        conn_t c = connect_sni(s, cc, "both.example.com", NULL);
        if (!c.ok)
            fail_msg("case %zu: handshake failed (server reason %d)", i, c.srv_reason);
        assert_string_equal(peer_cn(&c), cases[i].cn);
        conn_close(&c);
        SSL_CTX_free(cc);
    }
    tls_server_free(s);
}

static void test_alpn_selects_http11_and_never_h2(void **state)
{
    static const struct {
        const char *offer; /* wire format */
        size_t len;
        const char *want;
    } cases[] = {
        {"\x02h2\x08http/1.1", 12, "http/1.1"},
        {"\x08http/1.1\x02h2", 12, "http/1.1"},
        {"\x02h2", 3, ""},
        {NULL, 0, ""},
    };
    pair_t p = {"a.crt", "rsa.key"};
    (void)state;
    tls_server_t *s = server(&p, 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SSL_CTX *cc = client(TLS1_2_VERSION, TLS1_3_VERSION, NULL, NULL);
        if (cases[i].offer)
            assert_int_equal(SSL_CTX_set_alpn_protos(cc, (const unsigned char *)cases[i].offer,
                                                     (unsigned)cases[i].len),
                             0);
        conn_t c = connect_sni(s, cc, "a.example.com", NULL);
        assert_true(c.ok);
        const unsigned char *got;
        unsigned int len;
        SSL_get0_alpn_selected(c.cli, &got, &len);
        assert_int_equal(len, strlen(cases[i].want));
        assert_memory_equal(got ? (const char *)got : "", cases[i].want, len);
        conn_close(&c);
        SSL_CTX_free(cc);
    }
    tls_server_free(s);
}

/* ---- resumption ---- */

static void test_ticket_resumes_after_one_key_rotation_not_two(void **state)
{
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    pair_t p = {"a.crt", "rsa.key"};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        fake_now_ms = real_ms();
        tls_server_t *s = server(&p, 1);
        SSL_CTX *cc = client(versions[i], versions[i], NULL, NULL);
        conn_t c = connect_sni(s, cc, NULL, NULL);
        assert_true(c.ok);
        assert_false(SSL_session_reused(c.cli));
        SSL_SESSION *sess = SSL_get1_session(c.cli);
        assert_non_null(sess);
        assert_true(SSL_SESSION_is_resumable(sess));
        conn_close(&c);

        c = connect_sni(s, cc, NULL, sess);
        assert_true(SSL_session_reused(c.cli));
        assert_true(SSL_session_reused(c.cli));
        assert_true(SSL_session_reused(c.srv));
        conn_close(&c);

        fake_now_ms += TLS_TICKET_ROTATE_DEFAULT_MS; /* the ticket's key is now the previous */
        c = connect_sni(s, cc, NULL, sess);
        assert_true(c.ok);
        assert_true(SSL_session_reused(c.cli));
        conn_close(&c);

        fake_now_ms += TLS_TICKET_ROTATE_DEFAULT_MS; /* and now retired */
        c = connect_sni(s, cc, NULL, sess);
        assert_true(c.ok);
        assert_false(SSL_session_reused(c.cli));
        conn_close(&c);

        SSL_SESSION_free(sess);
        SSL_CTX_free(cc);
        tls_server_free(s);
    }
}

static void test_idle_listener_retires_both_keys_after_two_periods(void **state)
{
    pair_t p = {"a.crt", "rsa.key"};
    (void)state;
    tls_server_t *s = server(&p, 1);
    SSL_CTX *cc = client(TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL);
    conn_t c = connect_sni(s, cc, NULL, NULL);
    assert_true(c.ok);
    SSL_SESSION *sess = SSL_get1_session(c.cli);
    conn_close(&c);
    /* Nobody connects for two periods: the first use rotates twice. */
    fake_now_ms += 2 * TLS_TICKET_ROTATE_DEFAULT_MS;
    c = connect_sni(s, cc, NULL, sess);
    assert_true(c.ok);
    assert_false(SSL_session_reused(c.cli));
    conn_close(&c);
    SSL_SESSION_free(sess);
    SSL_CTX_free(cc);
    tls_server_free(s);
}

/* ---- lifetime ---- */

static void test_connection_outlives_tls_server_free(void **state)
{
    pair_t p[] = {{"a.crt", "rsa.key"}, {"wild.crt", "rsa.key"}};
    (void)state;
    tls_server_t *s = server(p, 2);
    SSL *srv = tls_server_ssl_new(s);
    tls_server_free(s); /* a reload while the connection is in its handshake */
    SSL_CTX *cc = client(TLS1_2_VERSION, TLS1_3_VERSION, NULL, NULL);
    SSL *cli = SSL_new(cc);
    SSL_set_connect_state(cli);
    SSL_set_tlsext_host_name(cli, "x.example.com");
    conn_t c = handshake(cli, srv);
    assert_true(c.ok);
    assert_string_equal(peer_cn(&c), "wild");
    conn_close(&c); /* frees the listener: ASan would see a leak or a use after free */
    SSL_CTX_free(cc);
}

/* ---- upstream side ---- */

static conn_t connect_upstream(tls_server_t *s, const tls_client_conf_t *cc_conf)
{
    char err[512] = "";
    SSL_CTX *cc = tls_client_ctx_new(cc_conf, err, sizeof(err));
    if (!cc)
        fail_msg("tls_client_ctx_new: %s", err);
    SSL *cli = tls_client_ssl_new(cc);
    assert_non_null(cli);
    SSL_CTX_free(cc); /* the SSL holds its own reference */
    return handshake(cli, tls_server_ssl_new(s));
}

static void test_client_ctx_verifies_the_ca_and_the_name(void **state)
{
    static const struct {
        bool verify;
        const char *ca, *sni;
        bool ok;
        const char *cn;
    } cases[] = {
        {true, "ca.crt", "a.example.com", true, "a.example.com"},
        {true, "ca.crt", "x.example.com", true, "wild"},
        {true, "ca2.crt", "a.example.com", false, NULL},  /* wrong CA */
        {true, "ca.crt", "b.example.org", false, NULL},   /* wrong name */
        {true, "ca.crt", "x.y.example.com", false, NULL}, /* wildcard: one label */
        {true, "ca.crt", "127.0.0.1", false, NULL},       /* no IP in the SAN */
        {true, NULL, "a.example.com", false, NULL},       /* system store */
        {false, NULL, "b.example.org", true, "a.example.com"},
    };
    pair_t p[] = {{"a.crt", "rsa.key"}, {"wild.crt", "rsa.key"}};
    (void)state;
    tls_server_t *s = server(p, 2);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char ca_path[256];
        snprintf(ca_path, sizeof(ca_path), "%s", cases[i].ca ? path(cases[i].ca) : "");
        tls_client_conf_t conf = {
            .verify = cases[i].verify, .ca = cases[i].ca ? ca_path : NULL, .sni = cases[i].sni};
        conn_t c = connect_upstream(s, &conf);
        if (c.ok != cases[i].ok)
            fail_msg("case %zu (%s): ok %d, want %d", i, cases[i].sni, c.ok, cases[i].ok);
        if (c.ok) {
            assert_string_equal(peer_cn(&c), cases[i].cn);
            const unsigned char *alpn;
            unsigned int len;
            SSL_get0_alpn_selected(c.cli, &alpn, &len);
            assert_int_equal(len, 8);
        } else {
            assert_int_equal(c.cli_reason, SSL_R_CERTIFICATE_VERIFY_FAILED);
        }
        conn_close(&c);
    }
    tls_server_free(s);
}

static void test_client_ctx_fails_closed_on_bad_settings(void **state)
{
    char err[512], cert[256], key[256], want[600];
    (void)state;
    tls_client_conf_t conf = {.verify = true};
    assert_null(tls_client_ctx_new(&conf, err, sizeof(err)));
    assert_string_equal(err, "tls: verify needs a name (sni) to check the certificate against");

    snprintf(cert, sizeof(cert), "%s", path("client.crt"));
    snprintf(key, sizeof(key), "%s", path("rsa.key"));
    conf = (tls_client_conf_t){.verify = false, .cert = cert, .key = key};
    assert_null(tls_client_ctx_new(&conf, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s: certificate and key %s do not match", cert, key);
    assert_string_equal(err, want);

    snprintf(key, sizeof(key), "%s", path("ec.key"));
    SSL_CTX *cc = tls_client_ctx_new(&conf, err, sizeof(err));
    assert_non_null(cc);
    SSL_CTX_free(cc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup(f, test_setup)
        T(test_cert_and_key_that_do_not_match_are_rejected_naming_both_files),
        T(test_garbage_files_are_rejected_as_not_pem),
        T(test_expired_certificate_is_rejected),
        T(test_certificate_expiring_within_30_days_loads_with_a_warning),
        T(test_chain_without_its_issuer_does_not_verify),
        T(test_self_signed_leaf_and_private_root_load_with_a_warning),
        T(test_certificate_without_san_is_reached_by_its_cn),
        T(test_bad_version_settings_are_rejected),
        T(test_tls10_and_tls11_clients_are_refused),
        T(test_tls12_and_tls13_clients_are_accepted),
        T(test_modern_profile_refuses_tls12),
        T(test_suites_without_forward_secrecy_are_refused),
        T(test_tls12_suite_is_the_servers_choice),
        T(test_sni_picks_the_certificate_for_each_name),
        T(test_rsa_and_ecdsa_certificates_go_to_the_clients_that_support_each),
        T(test_alpn_selects_http11_and_never_h2),
        T(test_ticket_resumes_after_one_key_rotation_not_two),
        T(test_idle_listener_retires_both_keys_after_two_periods),
        T(test_connection_outlives_tls_server_free),
        T(test_client_ctx_verifies_the_ca_and_the_name),
        T(test_client_ctx_fails_closed_on_bad_settings),
#undef T
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
