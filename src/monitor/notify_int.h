/* Internals shared by the notifier's files (not for other modules): the
 * notification payloads (notify_webhook.c: the JSON body and its signed
 * request; notify_smtp.c: the RFC 5322 message and its SMTP transfer), the
 * HMAC (notify_hmac.c) and small text helpers. Everything here runs on the
 * notifier thread, except notify_text_fix which notify_post uses. */
#ifndef SURETY_MONITOR_NOTIFY_INT_H
#define SURETY_MONITOR_NOTIFY_INT_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor/notify.h"

/* A receiver as the notifier keeps it: its own copies of every string. */
typedef struct {
    char *name, *url, *smtp_url, *from, *username, *password, *ca_file;
    unsigned char *secret;
    size_t secret_len;
    char **to;
    size_t nto;
    notify_kind_t kind;
    uint64_t repeat_s, group_wait_s;
} notify_rcv_conf_t;

/* One notification: what notify.c hands to the payload builders. */
typedef struct {
    const notify_rcv_conf_t *rc;
    const char *id; /* 32 hex digits */
    int64_t now;    /* unix s, the injected clock */
    const notify_alert_t *const *alerts;
    size_t nalerts;
} notify_msg_t;

/* A payload being uploaded (email) or posted (webhook); owned by the
 * transfer in notify.c. */
typedef struct {
    char *data;
    size_t len, off;
} notify_payload_t;

/* The signature header value: "sha256=" and the lowercase hex HMAC-SHA256
 * with key of "<timestamp>.<body>". out must hold NOTIFY_SIG_MAX bytes.
 * 0 or -EIO (OpenSSL failed). */
#define NOTIFY_SIG_MAX (7 + 64 + 1)
int notify_hmac_sign(const void *key, size_t keylen, const char *timestamp, const void *body,
                     size_t len, char *out);

/* The webhook body (docs/alerts.md), compact JSON, malloc'ed; NULL when
 * out of memory. */
char *notify_webhook_body(const notify_msg_t *m, size_t *ret_len);
/* Sets e up to POST body (which must outlive the transfer) to the
 * receiver's URL, signed at timestamp now. *ret_headers gets the header
 * list the caller frees after the transfer. 0, -ENOMEM or -EIO. */
int notify_webhook_setup(CURL *e, const notify_rcv_conf_t *rc, const char *id, int64_t now,
                         const notify_payload_t *body, struct curl_slist **ret_headers);

/* The email (RFC 5322, CRLF line ends), malloc'ed; NULL when out of
 * memory. */
char *notify_smtp_message(const notify_msg_t *m, size_t *ret_len);
/* Sets e up to send message (uploaded from *msg, whose off it advances)
 * to the receiver's recipients. *ret_rcpt gets the recipient list the
 * caller frees after the transfer. 0 or -ENOMEM. */
int notify_smtp_setup(CURL *e, const notify_rcv_conf_t *rc, notify_payload_t *msg,
                      struct curl_slist **ret_rcpt);
/* The address inside "Name <addr>" or "addr", as "<addr>" in out (size
 * outlen); -ENAMETOOLONG or -EINVAL (empty). */
int notify_smtp_addr(const char *s, char *out, size_t outlen);

/* Makes s[size] (size >= 1) a clean NUL-terminated string in place: cut at
 * a UTF-8 character boundary when it fills the array, bytes that are not
 * UTF-8 and control characters replaced by '?'. */
void notify_text_fix(char *s, size_t size);
/* "2026-11-29T16:34:27Z" into out[24]. */
void notify_time_rfc3339(int64_t t, char *out);

#endif
