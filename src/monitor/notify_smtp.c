/* Email notifications through libcurl's SMTP: the RFC 5322 message (plain
 * text, UTF-8, CRLF line ends) and the transfer that uploads it. curl adds
 * the dot-stuffing and the final "." itself.
 *
 * TLS: smtps:// speaks TLS from the first byte. smtp:// upgrades with
 * STARTTLS when the server offers it (CURLUSESSL_TRY) and otherwise sends
 * in clear, which is what a relay on localhost usually needs; but when a
 * username is set STARTTLS is required (CURLUSESSL_ALL), so a password is
 * never sent in clear. Peer verification is never turned off. */
#include "monitor/notify_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"

/* Header and per-alert bound of the message: every field of an alert is a
 * bounded array, so a message never exceeds these. */
#define SMTP_HEAD_MAX (4096 + 512 * 16)
#define SMTP_ALERT_MAX 2048

int notify_smtp_addr(const char *s, char *out, size_t outlen)
{
    const char *lt = strchr(s, '<'), *p = lt ? lt + 1 : s;
    size_t n = lt ? strcspn(p, ">") : strlen(p);
    while (n && p[0] == ' ')
        p++, n--;
    while (n && p[n - 1] == ' ')
        n--;
    if (!n)
        return -EINVAL;
    if (n + 3 > outlen)
        return -ENAMETOOLONG;
    snprintf(out, outlen, "<%.*s>", (int)n, p);
    return 0;
}

/* "Sun, 29 Nov 2026 16:34:27 +0000", locale-free. */
static void rfc5322_date(int64_t t, char *out, size_t outlen)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The Subject: "[FIRING] <summary or key of the first alert>", and
 * " (+N more)" for a group. Non-ASCII bytes become '?' (no RFC 2047
 * encoding: the body carries the exact text). */
static void subject(const notify_msg_t *m, char *out, size_t outlen)
{
    bool firing = false;
    for (size_t i = 0; i < m->nalerts; i++)
        firing |= m->alerts[i]->state == NOTIFY_FIRING;
    const notify_alert_t *a = m->alerts[0];
    int n = snprintf(out, outlen, "[%s] %s", firing ? "FIRING" : "RESOLVED",
                     a->summary[0] ? a->summary : a->key);
    if (m->nalerts > 1 && n >= 0 && (size_t)n < outlen)
        snprintf(out + n, outlen - (size_t)n, " (+%zu more)", m->nalerts - 1);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

static int append_alert(buf_t *b, const notify_alert_t *a)
{
    char since[24];
    int ret = buf_appendf(b, "\r\n[%s] %s\r\n", a->state == NOTIFY_FIRING ? "FIRING" : "RESOLVED",
                          a->key);
    if (!ret && a->summary[0])
        ret = buf_appendf(b, "  summary: %s\r\n", a->summary);
    if (!ret && a->objective[0])
        ret = buf_appendf(b, "  objective: %s\r\n", a->objective);
    if (!ret && a->severity[0])
        ret = buf_appendf(b, "  severity: %s\r\n", a->severity);
    if (!ret && a->since > 0) {
        notify_time_rfc3339(a->since, since);
        ret = buf_appendf(b, "  since: %s\r\n", since);
    }
    for (unsigned i = 0; !ret && i < a->nlabels && i < NOTIFY_LABELS_MAX; i++)
        if (a->labels[i].name[0])
            ret = buf_appendf(b, "  %s: %s\r\n", a->labels[i].name, a->labels[i].value);
    for (unsigned i = 0; !ret && i < a->nvalues && i < NOTIFY_VALUES_MAX; i++)
        if (a->values[i].name[0])
            ret = buf_appendf(b, isfinite(a->values[i].value) ? "  %s: %.6g\r\n" : "  %s: -\r\n",
                              a->values[i].name, a->values[i].value);
    return ret;
}

/* The message headers. From and To are written as configured (notify_new
 * refused CR and LF in them). */
static int append_head(buf_t *b, const notify_msg_t *m)
{
    const notify_rcv_conf_t *rc = m->rc;
    char date[48], subj[200];
    const char *at = strrchr(rc->from, '@');
    size_t dlen = at ? strcspn(at + 1, "> ") : 0;
    rfc5322_date(m->now, date, sizeof(date));
    subject(m, subj, sizeof(subj));
    int ret = buf_appendf(b, "Date: %s\r\nFrom: %s\r\nTo: ", date, rc->from);
    for (size_t i = 0; !ret && i < rc->nto; i++)
        ret = buf_appendf(b, "%s%s", i ? ",\r\n " : "", rc->to[i]);
    if (!ret)
        ret = buf_appendf(b,
                          "\r\nSubject: %s\r\nMessage-ID: <%s@%.*s>\r\nX-Surety-Delivery: %s\r\n"
                          "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: 8bit\r\n\r\n",
                          subj, m->id, (int)(dlen ? dlen : 6), dlen ? at + 1 : "surety", m->id);
    return ret;
}

char *notify_smtp_message(const notify_msg_t *m, size_t *ret_len)
{
    buf_t b;
    size_t firing = 0;
    buf_init(&b, SMTP_HEAD_MAX + m->nalerts * SMTP_ALERT_MAX);
    for (size_t i = 0; i < m->nalerts; i++)
        firing += m->alerts[i]->state == NOTIFY_FIRING;
    int ret = buf_alloc(&b);
    if (!ret)
        ret = append_head(&b, m);
    if (!ret)
        ret = buf_appendf(&b, "Surety alerts for receiver %s: %zu firing, %zu resolved.\r\n",
                          m->rc->name, firing, m->nalerts - firing);
    for (size_t i = 0; !ret && i < m->nalerts; i++)
        ret = append_alert(&b, m->alerts[i]);
    if (ret) {
        buf_deinit(&b);
        return NULL;
    }
    *ret_len = buf_len(&b);
    return b.data; /* head is 0: nothing was consumed */
}

/* curl pulls the message from here. */
static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    notify_payload_t *msg = ud;
    size_t n = size * nmemb, left = msg->len - msg->off;
    if (n > left)
        n = left;
    memcpy(ptr, msg->data + msg->off, n);
    msg->off += n;
    return n;
}

int notify_smtp_setup(CURL *e, const notify_rcv_conf_t *rc, notify_payload_t *msg,
                      struct curl_slist **ret_rcpt)
{
    char addr[320];
    struct curl_slist *r = NULL, *l;
    int ret = -ENOMEM;
    for (size_t i = 0; i < rc->nto; i++) {
        if ((ret = notify_smtp_addr(rc->to[i], addr, sizeof(addr))) < 0)
            goto out;
        if (!(l = curl_slist_append(r, addr))) {
            ret = -ENOMEM;
            goto out;
        }
        r = l;
    }
    if ((ret = notify_smtp_addr(rc->from, addr, sizeof(addr))) < 0)
        goto out;
    ret = -ENOMEM;
    msg->off = 0;
    if (curl_easy_setopt(e, CURLOPT_URL, rc->smtp_url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, addr) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_MAIL_RCPT, r) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USE_SSL,
                         rc->username ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_READDATA, msg) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg->len) != CURLE_OK)
        goto out;
    if (rc->username &&
        (curl_easy_setopt(e, CURLOPT_USERNAME, rc->username) != CURLE_OK ||
         curl_easy_setopt(e, CURLOPT_PASSWORD, rc->password ? rc->password : "") != CURLE_OK))
        goto out;
    *ret_rcpt = r;
    r = NULL;
    ret = 0;
out:
    curl_slist_free_all(r);
    return ret;
}
