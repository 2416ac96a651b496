/* Session-ticket keys that rotate. A ticket is the client's copy of its
 * session, encrypted and authenticated with a key only this listener has;
 * bringing it back resumes the session without a full handshake. A key
 * that never changes would let whoever steals it decrypt every recorded
 * TLS 1.2 session ever resumed with it, so the key ring keeps two keys: the
 * current one encrypts new tickets, the previous one only decrypts, and
 * every period the current one becomes the previous and a fresh random key
 * the current. A ticket thus resumes for between one and two periods, and
 * a stolen key opens at most two periods of tickets.
 *
 * Rotation is checked when a key is used (each ticket issued or presented),
 * against the injected wall clock, so no timer is needed and an idle
 * listener that wakes after two periods starts over with no old key. The
 * callbacks run on worker threads during handshakes: they hold the ring's
 * mutex for a compare and a copy (plus, once per period, 80 bytes from
 * RAND_bytes), and do the cipher setup outside it. */
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "tls/tls_int.h"

static int key_fresh(tls_ticket_key_t *k, uint64_t now_ms)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    k->since_ms = now_ms;
    k->live = true;
    return 0;
}

int tls_ticket_ring_init(tls_ticket_ring_t *r, uint64_t period_ms, uint64_t (*clock_ms)(void))
{
    memset(r, 0, sizeof(*r));
    r->period_ms = period_ms ? period_ms : TLS_TICKET_ROTATE_DEFAULT_MS;
    r->clock_ms = clock_ms;
    r->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (!r->cipher) {
        ERR_clear_error();
        return -ENOSYS;
    }
    if (key_fresh(&r->cur, tls_now_ms(clock_ms)) < 0) {
        EVP_CIPHER_free(r->cipher);
        return -EIO;
    }
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        EVP_CIPHER_free(r->cipher);
        OPENSSL_cleanse(r, sizeof(*r));
        return -ENOMEM;
    }
    return 0;
}

void tls_ticket_ring_deinit(tls_ticket_ring_t *r)
{
    if (!r || !r->cipher)
        return;
    pthread_mutex_destroy(&r->lock);
    EVP_CIPHER_free(r->cipher);
    OPENSSL_cleanse(r, sizeof(*r));
}

/* Under the lock: rotates as many periods as have passed since the current
 * key became current. One period moves the current key to previous; two or
 * more also retire it, since its tickets are too old to resume. A clock
 * that went back rotates nothing. A failure of RAND_bytes keeps the old
 * keys: resumption a little longer is better than none. */
static void ring_rotate(tls_ticket_ring_t *r, uint64_t now_ms)
{
    if (now_ms < r->cur.since_ms || now_ms - r->cur.since_ms < r->period_ms)
        return;
    uint64_t periods = (now_ms - r->cur.since_ms) / r->period_ms;
    tls_ticket_key_t next;
    if (key_fresh(&next, now_ms) < 0)
        return;
    r->prev = r->cur;
    if (periods >= 2)
        OPENSSL_cleanse(&r->prev, sizeof(r->prev));
    r->cur = next;
    OPENSSL_cleanse(&next, sizeof(next));
}

/* Copies the key to use into *out: the current one to encrypt, the one
 * named key_name to decrypt. Returns 1 (current), 2 (previous: the ticket
 * resumes and gets replaced by one under the current key) or 0 (unknown or
 * retired key: a full handshake). */
static int ring_pick(tls_ticket_ring_t *r, const unsigned char *key_name, int enc,
                     tls_ticket_key_t *out)
{
    int found = 0;

    pthread_mutex_lock(&r->lock);
    ring_rotate(r, tls_now_ms(r->clock_ms));
    if (enc || memcmp(key_name, r->cur.name, sizeof(r->cur.name)) == 0) {
        *out = r->cur;
        found = 1;
    } else if (r->prev.live && memcmp(key_name, r->prev.name, sizeof(r->prev.name)) == 0) {
        *out = r->prev;
        found = 2;
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb's contract: with enc, fill key_name
 * and iv and set up cctx/hctx to encrypt (1); without, set them up for the
 * key named key_name (1 or 2, see ring_pick) or answer 0 for a full
 * handshake; -1 fails the handshake, kept for a failure of OpenSSL itself. */
int tls_ticket_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                  EVP_MAC_CTX *hctx, int enc)
{
    tls_ticket_ring_t *r = tls_ctx_ring(ssl);
    tls_ticket_key_t k;
    int ret = -1;

    if (!r)
        return -1;
    int found = ring_pick(r, key_name, enc, &k);
    if (found == 0)
        return 0;
    int ivlen = EVP_CIPHER_get_iv_length(r->cipher);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        goto out;
    if (enc) {
        memcpy(key_name, k.name, sizeof(k.name));
        if (RAND_bytes(iv, ivlen) != 1 ||
            EVP_EncryptInit_ex2(cctx, r->cipher, k.aes, iv, NULL) != 1)
            goto out;
    } else if (EVP_DecryptInit_ex2(cctx, r->cipher, k.aes, iv, NULL) != 1) {
        goto out;
    }
    ret = found;
out:
    if (ret < 0)
        ERR_clear_error();
    OPENSSL_cleanse(&k, sizeof(k));
    return ret;
}
