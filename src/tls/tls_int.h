/* What the files of src/tls share and nobody else sees: a loaded and
 * checked certificate (cert.c), the session-ticket key ring (ticket.c), the
 * common context settings and the ex_data slots that let OpenSSL's
 * callbacks find their listener (context.c, client.c). */
#ifndef SURETY_TLS_TLS_INT_H
#define SURETY_TLS_TLS_INT_H

#include <pthread.h>
#include <stdarg.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls/tls.h"

/* ---- cert.c ---- */

/* One certificate as loaded: the leaf, its chain and key, and the names it
 * serves, lowercased ("a.example.com", or "*.example.com" for a wildcard). */
typedef struct {
    X509 *leaf;
    STACK_OF(X509) * chain; /* the file's certificates after the leaf */
    EVP_PKEY *key;
    int key_type; /* EVP_PKEY_get_base_id(): one SSL_CTX slot per type */
    char **names;
    size_t nnames;
    int64_t not_after_s;
    char *file; /* copy of the certificate file name */
    unsigned char *ocsp_der; /* the OCSP response to staple (ocsp.c); NULL: none */
    size_t ocsp_len;
    int64_t ocsp_next_update_s;
} tls_cert_t;

/* Which extended key usage the chain is checked for. */
typedef enum { TLS_CERT_SERVER, TLS_CERT_CLIENT } tls_cert_use_t;

/* Loads f into c (zeroed first) and runs every check of tls_cert_check.
 * Returns 0, -EINVAL or a negative errno with "FILE: problem" in err; on
 * failure c holds nothing. The caller frees c with tls_cert_deinit. */
int tls_cert_load(tls_cert_t *c, const tls_cert_files_t *f, tls_cert_use_t use, int64_t now_s,
                  tls_warn_cb warn, void *warn_arg, char *err, size_t errlen);
void tls_cert_deinit(tls_cert_t *c);
void tls_cert_info(const tls_cert_t *c, int64_t now_s, tls_cert_info_t *out);

/* ---- ticket.c ---- */

typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    uint64_t since_ms; /* when it became the current key */
    bool live;
} tls_ticket_key_t;

/* The listener's ticket keys: the current one encrypts new tickets, the
 * previous one still decrypts the tickets of the last period. */
typedef struct {
    pthread_mutex_t lock;
    tls_ticket_key_t cur, prev;
    uint64_t period_ms;
    uint64_t (*clock_ms)(void);
    EVP_CIPHER *cipher; /* AES-256-CBC, fetched once */
} tls_ticket_ring_t;

int tls_ticket_ring_init(tls_ticket_ring_t *r, uint64_t period_ms, uint64_t (*clock_ms)(void));
void tls_ticket_ring_deinit(tls_ticket_ring_t *r);
/* The callback for SSL_CTX_set_tlsext_ticket_key_evp_cb; finds its ring
 * through tls_ctx_ring(). */
int tls_ticket_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                  EVP_MAC_CTX *hctx, int enc);

/* ---- context.c ---- */

/* The ticket ring of the listener whose context ssl runs on. */
tls_ticket_ring_t *tls_ctx_ring(SSL *ssl);

/* Applies protocol versions, suites, groups and options common to both
 * sides. min_version is already validated. */
int tls_ctx_protocols(SSL_CTX *ctx, tls_profile_t profile, int min_version, bool legacy, char *err,
                      size_t errlen);

/* The wall clock in ms: clock_ms() or CLOCK_REALTIME. */
uint64_t tls_now_ms(uint64_t (*clock_ms)(void));

/* ---- ocsp.c ---- */

/* Reads file (DER) into c->ocsp_der after checking that it is a good,
 * current, verified response about c's leaf. 0, or -errno with "FILE:
 * problem" in err; a response expiring within a day warns. */
int tls_ocsp_load(tls_cert_t *c, const char *file, int64_t now_s, tls_warn_cb warn, void *warn_arg,
                  char *err, size_t errlen);

/* "prefix: the reason of the oldest OpenSSL error" into err, and clears the
 * thread's error queue so that it cannot confuse a later SSL_get_error. */
void tls_err_ossl(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tls_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
