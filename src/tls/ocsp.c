/* OCSP stapling: a listener certificate may come with a DER OCSP response
 * (`ocsp:` beside `cert:`), which is sent to every client that asks for
 * the certificate's status, so browsers need not ask the CA themselves (a
 * privacy leak and a delay) and a revoked certificate cannot be served as
 * good. As with HAProxy's `.ocsp` files, fetching the response is left to
 * the operator's tooling (`openssl ocsp ... -respout`, a cron job); Surety
 * reads it at start and at each reload, and refuses one that does not
 * belong to the certificate, is not "good", does not verify against the
 * issuer, or has expired. A response that will expire within a day loads
 * with a warning: it is time to fetch a new one. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "tls/tls_int.h"

/* A response larger than this is not an OCSP response for one certificate. */
#define OCSP_MAX (64 * 1024)
/* Clock skew allowed on thisUpdate, seconds. */
#define OCSP_SKEW_S 300

static int read_der(const char *file, unsigned char **ret, size_t *ret_len, char *err,
                    size_t errlen)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        int e = errno;
        tls_err(err, errlen, "%s: cannot read: %s", file, strerror(e));
        return -e;
    }
    unsigned char *buf = malloc(OCSP_MAX + 1);
    size_t n = buf ? fread(buf, 1, OCSP_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > OCSP_MAX) {
        free(buf);
        tls_err(err, errlen, "%s: %s", file,
                !buf ? "out of memory" : n ? "larger than 64 KiB: not an OCSP response" : "empty");
        return -EINVAL;
    }
    *ret = buf;
    *ret_len = n;
    return 0;
}

/* Checks resp for c: successful, about c's leaf, good, signed by (or for)
 * the issuer, current. 0 or -EINVAL with the reason in err. */
static int check(tls_cert_t *c, OCSP_RESPONSE *resp, const char *file, int64_t now_s,
                 tls_warn_cb warn, void *warn_arg, char *err, size_t errlen)
{
    int r = -EINVAL, status, reason;
    OCSP_BASICRESP *bs = NULL;
    OCSP_CERTID *id = NULL;
    X509_STORE *store = NULL;
    ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
    X509 *issuer = c->chain && sk_X509_num(c->chain) ? sk_X509_value(c->chain, 0) : NULL;

    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        tls_err(err, errlen, "%s: the OCSP response is an error (%s)", file,
                OCSP_response_status_str(OCSP_response_status(resp)));
        goto out;
    }
    if (!issuer) {
        tls_err(err, errlen, "%s: stapling needs the issuer's certificate after the leaf in %s",
                file, c->file);
        goto out;
    }
    if (!(bs = OCSP_response_get1_basic(resp)) || !(id = OCSP_cert_to_id(NULL, c->leaf, issuer)) ||
        !(store = X509_STORE_new()) || X509_STORE_add_cert(store, issuer) != 1) {
        tls_err_ossl(err, errlen, "%s: cannot read the OCSP response", file);
        goto out;
    }
    if (OCSP_basic_verify(bs, c->chain, store, OCSP_TRUSTOTHER | OCSP_PARTIAL_CHAIN) <= 0) {
        tls_err_ossl(err, errlen, "%s: the OCSP response's signature does not verify", file);
        goto out;
    }
    if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd) != 1) {
        tls_err(err, errlen, "%s: the OCSP response is not about %s", file, c->file);
        goto out;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        tls_err(err, errlen, "%s: the OCSP response says %s is %s", file, c->file,
                OCSP_cert_status_str(status));
        goto out;
    }
    if (!nextupd) {
        tls_err(err, errlen, "%s: the OCSP response has no nextUpdate: clients cannot tell "
                             "when it is stale", file);
        goto out;
    }
    int64_t next = 0;
    struct tm tm;
    if (ASN1_TIME_to_tm(nextupd, &tm) == 1)
        next = (int64_t)timegm(&tm);
    int64_t this_s = 0;
    if (ASN1_TIME_to_tm(thisupd, &tm) == 1)
        this_s = (int64_t)timegm(&tm);
    if (next <= now_s || this_s > now_s + OCSP_SKEW_S) {
        tls_err(err, errlen, "%s: the OCSP response is %s", file,
                next <= now_s ? "out of date (nextUpdate has passed): fetch a new one"
                              : "not valid yet (thisUpdate is in the future)");
        goto out;
    }
    if (next - now_s < 86400 && warn) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s: the OCSP response expires in %lld hours: fetch a new one",
                 file, (long long)((next - now_s) / 3600));
        warn(warn_arg, msg);
    }
    c->ocsp_next_update_s = next;
    r = 0;
out:
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    X509_STORE_free(store);
    ERR_clear_error();
    return r;
}

int tls_ocsp_load(tls_cert_t *c, const char *file, int64_t now_s, tls_warn_cb warn, void *warn_arg,
                  char *err, size_t errlen)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int r = read_der(file, &der, &len, err, errlen);
    if (r < 0)
        return r;
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (!resp) {
        tls_err_ossl(err, errlen, "%s: not a DER OCSP response", file);
        free(der);
        return -EINVAL;
    }
    r = check(c, resp, file, now_s, warn, warn_arg, err, errlen);
    OCSP_RESPONSE_free(resp);
    if (r < 0) {
        free(der);
        return r;
    }
    c->ocsp_der = der;
    c->ocsp_len = len;
    return 0;
}
