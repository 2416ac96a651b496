/* TLS contexts: everything about a TLS connection that is decided before its
 * bytes flow (issue 5, items 1, 2, 4 and 5). A listener with `tls:` gets a
 * tls_server_t: its certificates loaded and checked, one OpenSSL SSL_CTX per
 * distinct set of certificates that a server name can select, an SNI index
 * from names to those contexts, and a ring of session-ticket keys that
 * rotates. A pool with `tls:` gets a client SSL_CTX that verifies the
 * upstream's certificate and name by default.
 *
 * The defaults are the ones a reviewer should sign off unchanged: TLS 1.2 and
 * 1.3 only, forward-secret suites only (Mozilla "intermediate"; "modern" is
 * TLS 1.3 only), groups X25519, P-256 and P-384, the server's suite order for
 * TLS 1.2, no compression, no renegotiation, no 0-RTT, ALPN "http/1.1" since
 * Surety speaks HTTP/1.1 only.
 *
 * Threads: contexts are built on the main thread and are then read-only, so
 * any number of workers may SSL_new() from them. The only code of this module
 * that runs per connection is OpenSSL's callbacks (SNI, ALPN, session
 * tickets): they do not block, take one short mutex (ticket keys) and
 * allocate nothing but what OpenSSL itself allocates for the connection. The
 * non-blocking I/O around SSL_do_handshake/SSL_read/SSL_write is the
 * gateway's, not this module's. Like the rest of the library code, nothing
 * here logs: errors go to err, warnings to the caller's callback. */
#ifndef SURETY_TLS_TLS_H
#define SURETY_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* At most this many certificates per listener, and names over all of them;
 * more is an error at load. They bound what a configuration nobody read can
 * make the main thread build (one SSL_CTX per distinct certificate set). */
#define TLS_MAX_CERTS 256
#define TLS_MAX_NAMES 16384

/* A certificate that expires within this many days loads with a warning. */
#define TLS_EXPIRY_WARN_DAYS 30

/* Session-ticket keys rotate this often unless the configuration says. */
#define TLS_TICKET_ROTATE_DEFAULT_MS (12ull * 3600 * 1000)

typedef enum {
    TLS_PROFILE_INTERMEDIATE, /* TLS 1.2 (ECDHE + AEAD suites) and 1.3 */
    TLS_PROFILE_MODERN,       /* TLS 1.3 only */
} tls_profile_t;

/* PEM files. cert holds the leaf first, then the intermediates of its chain
 * (a self-signed root at the end is allowed, see tls_cert_check). key holds
 * the unencrypted private key of the leaf (there is nobody to type a
 * passphrase). */
typedef struct {
    const char *cert;
    const char *key;
    const char *ocsp; /* DER OCSP response to staple (server certificates); NULL: none */
} tls_cert_files_t;

/* Receives one warning, formatted like an error ("FILE: problem"); msg lives
 * for the call only. */
typedef void (*tls_warn_cb)(void *arg, const char *msg);

typedef struct {
    /* At least one. The first is the default: it (and the certificates of
     * other key types for its first name) serves clients that send no server
     * name or one no certificate has. */
    const tls_cert_files_t *certs;
    size_t ncerts;
    tls_profile_t profile;
    /* 0 means the profile's: TLS1_2_VERSION (intermediate) or TLS1_3_VERSION
     * (modern, which admits nothing lower). TLS1_VERSION and TLS1_1_VERSION
     * only with allow_legacy, which also adds the ECDHE-CBC-SHA suites and
     * lowers OpenSSL's security level to 0, as TLS 1.0/1.1 need; a warning
     * says so through warn. */
    int min_version;
    bool allow_legacy;
    /* 0 means TLS_TICKET_ROTATE_DEFAULT_MS. A ticket resumes for one to two
     * periods: the period its key was current and the one after. */
    uint64_t ticket_rotate_ms;
    /* Wall clock in ms since the epoch for expiry checks and ticket
     * rotation; NULL means CLOCK_REALTIME. Tests inject their own. */
    uint64_t (*clock_ms)(void);
    /* Warnings (expiry within TLS_EXPIRY_WARN_DAYS, self-signed leaf,
     * private root, names ignored, legacy protocol versions); may be NULL. */
    tls_warn_cb warn;
    void *warn_arg;
    /* PEM file of the authorities whose client certificates are accepted:
     * set, every client must present one that verifies against them, or the
     * handshake fails (mutual TLS). NULL: no client certificates asked. */
    const char *client_ca;
} tls_server_conf_t;

/* One listener's contexts and certificate index. Immutable after creation
 * except for the ticket keys, which rotate under their own lock. */
typedef struct tls_server tls_server_t;

/* What tls_server_certs reports of each certificate, for metrics
 * (surety_tls_certificate_expiry_seconds) and `surety status`. */
typedef struct {
    char name[256];      /* its first DNS name (SAN, else CN), "" if none */
    char file[512];      /* the certificate file */
    char key_type[8];    /* "RSA", "EC", "ED25519", ... */
    int64_t not_after_s; /* seconds since the epoch */
    int days_left;       /* whole days until not_after at the call, floor */
} tls_cert_info_t;

/* Loads and checks every certificate of c, then builds the contexts.
 * Returns NULL on failure with "FILE: problem" in err (when err is not
 * NULL): the file cannot be read, is not PEM, certificate and key do not
 * match, the key is too weak (RSA under 2048 bits, EC under 256), the chain
 * does not verify, the certificate has expired or is not valid yet, or the
 * configuration itself is wrong (no certificates, a bad min_version).
 *
 * The caller frees it with tls_server_free(). Connections may outlive that
 * call: the memory goes when the last SSL made from tls_server_ctx() is
 * freed, which is what lets a reload swap listeners while handshakes in
 * flight finish on the old certificates. Main thread. */
tls_server_t *tls_server_new(const tls_server_conf_t *c, char *err, size_t errlen);
void tls_server_free(tls_server_t *s);

/* The context a connection's SSL comes from (SSL_new, or tls_server_ssl_new).
 * Its servername callback moves the connection to the context that has the
 * certificates for the name the client asks for; never free it. */
SSL_CTX *tls_server_ctx(tls_server_t *s);

/* SSL_new(tls_server_ctx(s)) set to accept: what a worker calls per
 * accepted connection before SSL_set_fd (or its own BIO) and the first
 * SSL_do_handshake. NULL when out of memory. Any thread. */
SSL *tls_server_ssl_new(tls_server_t *s);

/* Fills out[0, max) with the certificates in configuration order and
 * returns how many there are (which may be more than max). */
size_t tls_server_certs(const tls_server_t *s, tls_cert_info_t *out, size_t max);

/* Checks one certificate and key as tls_server_new does, without building a
 * context: what `surety check` runs for each `tls:` entry. now_ms is the
 * wall clock (0: CLOCK_REALTIME). Returns 0, -EINVAL with "FILE: problem" in
 * err, or the negative errno of a file that cannot be read.
 *
 * The chain must verify against the system's trusted roots plus the
 * intermediates in the file. A self-signed leaf, or a chain ending at a
 * self-signed root that is in the file but not in the system store (a
 * private CA), is accepted with a warning: the check is then that the chain
 * links up and its signatures verify, and the clients must be told to trust
 * that root. ret_info (may be NULL) is filled on success. */
int tls_cert_check(const tls_cert_files_t *f, uint64_t now_ms, tls_warn_cb warn, void *warn_arg,
                   tls_cert_info_t *ret_info, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Upstream (client) side, one per pool with `tls:`. */
typedef struct {
    /* Verify the server's chain and name. The caller's default must be
     * true: false is an explicit `verify: false`. */
    bool verify;
    const char *ca;         /* PEM file of trusted roots; NULL: the system store */
    const char *sni;        /* name to send and check; an IP literal is checked
                             * against the certificate's IP addresses and not sent */
    const char *cert, *key; /* client certificate for mTLS; both or neither */
    /* Warnings about the client certificate (expiry within
     * TLS_EXPIRY_WARN_DAYS, a chain that does not verify here: the upstream
     * decides which roots it trusts); may be NULL. */
    tls_warn_cb warn;
    void *warn_arg;
} tls_client_conf_t;

/* A client context: TLS 1.2 and 1.3, the intermediate suites, ALPN
 * "http/1.1" offered, and with verify the chain checked against ca (or the
 * system store) and the certificate's names against sni. verify without
 * sni is an error (nothing to check the name against: fail closed). The
 * caller frees it with SSL_CTX_free() once no SSL made from it is in use
 * (SSL_new holds a reference, so that is any time). Main thread. */
SSL_CTX *tls_client_ctx_new(const tls_client_conf_t *c, char *err, size_t errlen);

/* SSL_new(ctx) set to connect, with the context's SNI set on it (OpenSSL
 * keeps the server name per connection, not per context). ctx must come
 * from tls_client_ctx_new. NULL when out of memory. Any thread. */
SSL *tls_client_ssl_new(SSL_CTX *ctx);

/* ---- io.c: non-blocking I/O on one connection (client or upstream) ---- */

#include "core/loop.h"

typedef struct {
    SSL *ssl;         /* NULL: the connection is plain */
    bool handshaking; /* the handshake is not done yet */
    bool dead;        /* a fatal TLS error: no close_notify may follow */
    bool notified;    /* close_notify sent */
    unsigned long error; /* OpenSSL's error that made it dead (0: none): the reason a
                          * peer's alert gives, e.g. a certificate it required */
} tls_conn_t;

/* Takes ssl (from tls_server_ssl_new or tls_client_ssl_new, its fd set):
 * partial writes, moving write buffers, read-ahead. Freed with
 * tls_conn_free (NULL-safe on a zeroed t). */
void tls_conn_start(tls_conn_t *t, SSL *ssl);
void tls_conn_free(tls_conn_t *t);

/* One step of the handshake: 0 done, -EAGAIN (a readiness flag cleared:
 * wait for its edge), -EPROTO failed (the reason is in OpenSSL's error
 * queue, for the caller to read and clear). */
int tls_io_handshake(tls_conn_t *t, loop_ready_t *r) __attribute__((warn_unused_result));
/* Up to room bytes into p: 0 with *ret_n > 0; 0 with *ret_n == 0 at the
 * peer's close_notify; -EAGAIN; -ECONNRESET (a cut without close_notify or
 * a bad record: t->dead). */
int tls_io_read(tls_conn_t *t, loop_ready_t *r, char *p, size_t room, size_t *ret_n)
    __attribute__((warn_unused_result));
/* a[0, alen) then b[0, blen), as much as the socket takes: 0 with
 * *ret_sent (maybe partial), -EAGAIN (nothing went), -EPIPE. Bytes not
 * sent must be offered again, in the same order, by the next call. */
int tls_io_send(tls_conn_t *t, loop_ready_t *r, const char *a, size_t alen, const char *b,
                size_t blen, size_t *ret_sent) __attribute__((warn_unused_result));
/* Why a handshake failed, in words for a log line (a failed verification
 * names its reason: wrong CA, wrong name, expired...); clears OpenSSL's
 * error queue. */
void tls_io_failure(tls_conn_t *t, char *out, size_t outlen);
/* Sends close_notify once, on an orderly close; not after a fatal error. */
void tls_io_close_notify(tls_conn_t *t);
/* Frees OpenSSL's record buffers of an idle connection (about 34 KiB)
 * when nothing is buffered in them; they come back at the next I/O. */
bool tls_io_trim(tls_conn_t *t);

/* ---- stream.c: a socket's bytes, in clear (tls NULL, or tls->ssl NULL)
 * or through TLS, for the loop's edge-triggered owners ---- */

#include "core/buf.h"

/* Into b, when r says readable and b has room: 1 when bytes came or the
 * stream ended (*ret_eof, and *ret_err if it ended in an error), 0 when
 * nothing can be read now. */
int tls_stream_read(int fd, tls_conn_t *tls, buf_t *b, loop_ready_t *r, bool *ret_eof,
                    int *ret_err);
/* a[0,alen) then b[0,blen), as far as the socket takes now: 0 with
 * *ret_sent, -EAGAIN, -errno. */
int tls_stream_send(int fd, tls_conn_t *tls, loop_ready_t *r, const char *a, size_t alen,
                    const char *b, size_t blen, size_t *ret_sent) __attribute__((warn_unused_result));

#endif
