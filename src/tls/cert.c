/* Certificates as the operator hands them over: PEM files read, checked and
 * turned into what a context needs (leaf, chain, key, the names it serves).
 * Every check that can fail at load is here, so that `surety check` and a
 * listener starting give the same message, always naming the file: the
 * certificate and key must match, the key must be strong enough for the
 * security level the contexts run at, the chain must verify, the leaf must
 * be valid now. Expiry within TLS_EXPIRY_WARN_DAYS, a self-signed leaf and a
 * private root are warnings, not errors: they are legitimate choices that an
 * operator should still hear about. Main thread only; loading reads files
 * and the system's trust store, which may block. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"

#define TLS_NAME_MAX 253 /* a DNS name's text, RFC 1035 */

static void warnf(tls_warn_cb warn, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warnf(tls_warn_cb warn, void *arg, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!warn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    warn(arg, msg);
}

/* Returns a passphrase of length 0: an encrypted key then fails to load
 * instead of OpenSSL prompting on a terminal nobody watches. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static BIO *open_file(const char *path, char *err, size_t errlen, int *r)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        *r = -errno;
        tls_err(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    BIO *b = BIO_new_fp(f, BIO_CLOSE);
    if (!b) {
        fclose(f);
        *r = -ENOMEM;
        tls_err(err, errlen, "%s: out of memory", path);
    }
    return b;
}

/* True when the error queue's last entry is PEM's "no more PEM blocks",
 * which is how a read of the certificate after the last one ends. */
static bool pem_at_end(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

static int read_certs(tls_cert_t *c, const char *path, char *err, size_t errlen)
{
    int r = 0;
    BIO *b = open_file(path, err, errlen, &r);
    if (!b)
        return r;
    c->leaf = PEM_read_bio_X509(b, NULL, no_passphrase_cb, NULL);
    if (!c->leaf) {
        r = -EINVAL;
        tls_err(err, errlen, "%s: not a PEM certificate", path);
        goto out;
    }
    c->chain = sk_X509_new_null();
    if (!c->chain) {
        r = -ENOMEM;
        tls_err(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase_cb, NULL);
        if (!x)
            break;
        if (!sk_X509_push(c->chain, x)) {
            X509_free(x);
            r = -ENOMEM;
            tls_err(err, errlen, "%s: out of memory", path);
            goto out;
        }
    }
    if (!pem_at_end()) {
        r = -EINVAL;
        tls_err(err, errlen, "%s: certificate %d of the chain is not a PEM certificate", path,
                sk_X509_num(c->chain) + 2);
    }
out:
    ERR_clear_error();
    BIO_free(b);
    return r;
}

static int read_key(tls_cert_t *c, const char *path, char *err, size_t errlen)
{
    int r = 0;
    BIO *b = open_file(path, err, errlen, &r);
    if (!b)
        return r;
    c->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase_cb, NULL);
    if (!c->key) {
        unsigned long e = ERR_peek_last_error();
        bool encrypted =
            ERR_GET_LIB(e) == ERR_LIB_PEM && (ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ ||
                                              ERR_GET_REASON(e) == PEM_R_PROBLEMS_GETTING_PASSWORD);
        r = -EINVAL;
        tls_err(err, errlen,
                encrypted ? "%s: private key is encrypted (give it without a passphrase)"
                          : "%s: not a PEM private key",
                path);
    }
    ERR_clear_error();
    BIO_free(b);
    return r;
}

static const char *key_type_name(int type)
{
    switch (type) {
    case EVP_PKEY_RSA:
        return "RSA";
    case EVP_PKEY_RSA_PSS:
        return "RSA-PSS";
    case EVP_PKEY_EC:
        return "EC";
    case EVP_PKEY_ED25519:
        return "ED25519";
    case EVP_PKEY_ED448:
        return "ED448";
    default:
        return OBJ_nid2sn(type) ? OBJ_nid2sn(type) : "?";
    }
}

/* Security level 2, what the contexts run at: 112-bit keys. Checked here
 * so that the message names the file and the size. */
static int check_key(tls_cert_t *c, const tls_cert_files_t *f, char *err, size_t errlen)
{
    int bits = EVP_PKEY_get_bits(c->key);

    c->key_type = EVP_PKEY_get_base_id(c->key);
    switch (c->key_type) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        if (bits < 2048)
            goto weak;
        break;
    case EVP_PKEY_EC:
        if (bits < 256)
            goto weak;
        break;
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
        break;
    default:
        tls_err(err, errlen, "%s: unsupported key type %s", f->key, key_type_name(c->key_type));
        return -EINVAL;
    }
    if (X509_check_private_key(c->leaf, c->key) != 1) {
        ERR_clear_error();
        tls_err(err, errlen, "%s: certificate and key %s do not match", f->cert, f->key);
        return -EINVAL;
    }
    return 0;
weak:
    tls_err(err, errlen, "%s: %s key of %d bits is too weak (at least %d)", f->key,
            key_type_name(c->key_type), bits, c->key_type == EVP_PKEY_EC ? 256 : 2048);
    return -EINVAL;
}

static int64_t asn1_time_s(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void format_date(int64_t s, char *buf, size_t len)
{
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "@%lld", (long long)s);
}

static int check_validity(tls_cert_t *c, const char *file, int64_t now_s, tls_warn_cb warn,
                          void *arg, char *err, size_t errlen)
{
    char date[64];
    int64_t not_before = asn1_time_s(X509_get0_notBefore(c->leaf));

    c->not_after_s = asn1_time_s(X509_get0_notAfter(c->leaf));
    if (c->not_after_s <= now_s) {
        format_date(c->not_after_s, date, sizeof(date));
        tls_err(err, errlen, "%s: certificate expired on %s", file, date);
        return -EINVAL;
    }
    if (not_before > now_s) {
        format_date(not_before, date, sizeof(date));
        tls_err(err, errlen, "%s: certificate is not valid before %s", file, date);
        return -EINVAL;
    }
    int64_t days = (c->not_after_s - now_s) / 86400;
    if (days < TLS_EXPIRY_WARN_DAYS) {
        format_date(c->not_after_s, date, sizeof(date));
        warnf(warn, arg, "%s: certificate expires in %lld days (%s)", file, (long long)days, date);
    }
    return 0;
}

static bool self_signed(X509 *x)
{
    return X509_check_issued(x, x) == X509_V_OK;
}

/* Verifies the leaf against the system store plus, when private is set,
 * the self-signed certificates of the file as roots. Returns the X509_V_
 * result; *top receives the last certificate of the built chain. */
static int verify_chain(tls_cert_t *c, tls_cert_use_t use, int64_t now_s, bool private, X509 **top)
{
    int result = X509_V_ERR_OUT_OF_MEM;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();

    *top = NULL;
    if (!store || !vctx || X509_STORE_set_default_paths(store) != 1)
        goto out;
    if (private) {
        if (self_signed(c->leaf) && X509_STORE_add_cert(store, c->leaf) != 1)
            goto out;
        for (int i = 0; i < sk_X509_num(c->chain); i++) {
            X509 *x = sk_X509_value(c->chain, i);
            if (self_signed(x) && X509_STORE_add_cert(store, x) != 1)
                goto out;
        }
    }
    if (X509_STORE_CTX_init(vctx, store, c->leaf, c->chain) != 1)
        goto out;
    X509_STORE_CTX_set_purpose(vctx, use == TLS_CERT_SERVER ? X509_PURPOSE_SSL_SERVER
                                                            : X509_PURPOSE_SSL_CLIENT);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(vctx), (time_t)now_s);
    if (X509_verify_cert(vctx) == 1) {
        STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(vctx);
        *top = sk_X509_value(built, sk_X509_num(built) - 1);
        result = X509_V_OK;
    } else {
        result = X509_STORE_CTX_get_error(vctx);
    }
out:
    ERR_clear_error();
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    return result;
}

/* The chain must verify against the system's roots; failing that, against
 * a self-signed certificate from the file, with a warning (see tls.h). The
 * second try's error is the one reported, since it is the more specific. A
 * client certificate's chain is only warned about: it usually comes from a
 * private CA that only the upstream knows, and the upstream decides. */
static int check_chain(tls_cert_t *c, const char *file, tls_cert_use_t use, int64_t now_s,
                       tls_warn_cb warn, void *arg, char *err, size_t errlen)
{
    X509 *top;
    int v = verify_chain(c, use, now_s, false, &top);
    if (v == X509_V_OK)
        return 0;
    if (v == X509_V_ERR_OUT_OF_MEM)
        goto fail;
    v = verify_chain(c, use, now_s, true, &top);
    if (v != X509_V_OK)
        goto fail;
    if (top == c->leaf || X509_cmp(top, c->leaf) == 0) {
        warnf(warn, arg, "%s: self-signed certificate: clients must be told to trust it", file);
    } else {
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(top), subject, sizeof(subject));
        warnf(warn, arg, "%s: chain ends at %s, a root not in the system's trust store", file,
              subject);
    }
    return 0;
fail:
    if (use == TLS_CERT_CLIENT && v != X509_V_ERR_OUT_OF_MEM) {
        warnf(warn, arg, "%s: chain does not verify here: %s", file,
              X509_verify_cert_error_string(v));
        return 0;
    }
    tls_err(err, errlen, "%s: chain does not verify: %s", file, X509_verify_cert_error_string(v));
    return v == X509_V_ERR_OUT_OF_MEM ? -ENOMEM : -EINVAL;
}

/* A lowercased copy of the DNS name s[0, len), or NULL when it is not one a
 * client could ask for: letters, digits, '-', '.', and a wildcard only as
 * the whole first label of a name of at least two more labels. */
static char *name_dup(const unsigned char *s, size_t len)
{
    if (len == 0 || len > TLS_NAME_MAX || s[0] == '.' || s[len - 1] == '.')
        return NULL;
    size_t from = 0;
    if (s[0] == '*') {
        if (len < 3 || s[1] != '.' || !memchr(s + 2, '.', len - 2))
            return NULL;
        from = 2;
    }
    for (size_t i = from; i < len; i++) {
        if (!isalnum(s[i]) && s[i] != '-' && s[i] != '.')
            return NULL;
        if (s[i] == '.' && s[i - 1] == '.')
            return NULL;
    }
    char *n = malloc(len + 1);
    if (!n)
        return NULL;
    for (size_t i = 0; i < len; i++)
        n[i] = (char)tolower(s[i]);
    n[len] = '\0';
    return n;
}

static int add_name(tls_cert_t *c, const char *file, const ASN1_STRING *a, tls_warn_cb warn,
                    void *arg)
{
    const unsigned char *s = ASN1_STRING_get0_data(a);
    size_t len = (size_t)ASN1_STRING_length(a);
    char *n = name_dup(s, len);

    if (!n) {
        warnf(warn, arg, "%s: ignoring name \"%.*s\": not a host name or wildcard", file,
              (int)(len > 80 ? 80 : len), (const char *)s);
        return 0;
    }
    char **names = realloc(c->names, (c->nnames + 1) * sizeof(*names));
    if (!names) {
        free(n);
        return -ENOMEM;
    }
    c->names = names;
    c->names[c->nnames++] = n;
    return 0;
}

/* The names a client can reach this certificate by: the DNS entries of its
 * subjectAltName, or its CN when it has no subjectAltName at all (what
 * clients themselves check since RFC 6125). */
static int collect_names(tls_cert_t *c, const char *file, tls_warn_cb warn, void *arg)
{
    int r = 0;
    GENERAL_NAMES *san = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);

    if (san) {
        for (int i = 0; r == 0 && i < sk_GENERAL_NAME_num(san); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
            if (g->type == GEN_DNS)
                r = add_name(c, file, g->d.dNSName, warn, arg);
        }
        GENERAL_NAMES_free(san);
    } else {
        X509_NAME *subj = X509_get_subject_name(c->leaf);
        int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
        if (i >= 0)
            r = add_name(c, file, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)), warn,
                         arg);
    }
    ERR_clear_error();
    if (r == 0 && c->nnames == 0)
        warnf(warn, arg, "%s: certificate has no DNS name: it can only be the default", file);
    return r;
}

int tls_cert_load(tls_cert_t *c, const tls_cert_files_t *f, tls_cert_use_t use, int64_t now_s,
                  tls_warn_cb warn, void *warn_arg, char *err, size_t errlen)
{
    int r;

    memset(c, 0, sizeof(*c));
    if (!f->cert || !f->key) {
        tls_err(err, errlen, "%s: certificate and key files are both needed",
                f->cert  ? f->cert
                : f->key ? f->key
                         : "tls");
        return -EINVAL;
    }
    r = read_certs(c, f->cert, err, errlen);
    if (r == 0)
        r = read_key(c, f->key, err, errlen);
    if (r == 0)
        r = check_key(c, f, err, errlen);
    if (r == 0)
        r = check_validity(c, f->cert, now_s, warn, warn_arg, err, errlen);
    if (r == 0)
        r = check_chain(c, f->cert, use, now_s, warn, warn_arg, err, errlen);
    if (r == 0)
        r = collect_names(c, f->cert, warn, warn_arg);
    if (r == 0 && !(c->file = strdup(f->cert)))
        r = -ENOMEM;
    if (r == 0 && f->ocsp)
        r = tls_ocsp_load(c, f->ocsp, now_s, warn, warn_arg, err, errlen);
    if (r == -ENOMEM)
        tls_err(err, errlen, "%s: out of memory", f->cert);
    if (r < 0)
        tls_cert_deinit(c);
    return r;
}

void tls_cert_deinit(tls_cert_t *c)
{
    if (!c)
        return;
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    free(c->ocsp_der);
    EVP_PKEY_free(c->key);
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i]);
    free(c->names);
    free(c->file);
    memset(c, 0, sizeof(*c));
}

void tls_cert_info(const tls_cert_t *c, int64_t now_s, tls_cert_info_t *out)
{
    int64_t left = c->not_after_s - now_s;

    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", c->nnames ? c->names[0] : "");
    snprintf(out->file, sizeof(out->file), "%s", c->file ? c->file : "");
    snprintf(out->key_type, sizeof(out->key_type), "%s", key_type_name(c->key_type));
    out->not_after_s = c->not_after_s;
    /* Floor, also below zero: an expired certificate shows -1 on its day. */
    out->days_left = (int)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
}

int tls_cert_check(const tls_cert_files_t *f, uint64_t now_ms, tls_warn_cb warn, void *warn_arg,
                   tls_cert_info_t *ret_info, char *err, size_t errlen)
{
    tls_cert_t c;
    int64_t now_s = (int64_t)((now_ms ? now_ms : tls_now_ms(NULL)) / 1000);
    int r = tls_cert_load(&c, f, TLS_CERT_SERVER, now_s, warn, warn_arg, err, errlen);
    if (r < 0)
        return r;
    if (ret_info)
        tls_cert_info(&c, now_s, ret_info);
    tls_cert_deinit(&c);
    return 0;
}
