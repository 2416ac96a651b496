/* The webhook signature (docs/alerts.md): HMAC-SHA256 keyed with the
 * receiver's secret over "<timestamp>.<body>", the scheme Stripe uses. The
 * timestamp is signed so that a captured request cannot be replayed later
 * with a fresh timestamp header; a receiver rejects timestamps too far from
 * its clock. OpenSSL 3's EVP_MAC, fed in three updates so the body is never
 * copied. */
#include "monitor/notify_int.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

int notify_hmac_sign(const void *key, size_t keylen, const char *timestamp, const void *body,
                     size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    int ret = -EIO;
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    /* EVP_MAC_init refuses a NULL key even when its length is 0. */
    static const unsigned char empty = 0;
    if (!ctx || !EVP_MAC_init(ctx, keylen ? key : &empty, keylen, params))
        goto out;
    if (!EVP_MAC_update(ctx, (const unsigned char *)timestamp, strlen(timestamp)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) || !EVP_MAC_update(ctx, body, len) ||
        !EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) || maclen != 32)
        goto out;
    memcpy(out, "sha256=", 7);
    for (size_t i = 0; i < maclen; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[7 + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[7 + 64] = '\0';
    ret = 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(alg);
    return ret;
}
