/* Webhook notifications: the JSON body and the signed POST that carries it
 * (docs/alerts.md has the format and the signature scheme). The body is
 * built once per notification and kept by the transfer; each attempt signs
 * it again with the attempt's timestamp, so a retry a minute later is not
 * refused by a receiver that checks the timestamp's age. */
#include "monitor/notify_int.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Sets key to the string s unless it is empty; -1 when out of memory. */
static int put_str(json_t *o, const char *key, const char *s)
{
    return *s ? json_object_set_new(o, key, json_string(s)) : 0;
}

static json_t *alert_json(const notify_alert_t *a)
{
    char since[24];
    json_t *o = json_object(), *labels = json_object(), *values = json_object();
    int bad = !o || !labels || !values;
    bad |= json_object_set_new(o, "key", json_string(a->key));
    bad |= json_object_set_new(o, "status", json_string(notify_state_name(a->state)));
    bad |= put_str(o, "objective", a->objective);
    bad |= put_str(o, "severity", a->severity);
    bad |= put_str(o, "summary", a->summary);
    if (a->since > 0) {
        notify_time_rfc3339(a->since, since);
        bad |= json_object_set_new(o, "since", json_string(since));
    }
    for (unsigned i = 0; i < a->nlabels && i < NOTIFY_LABELS_MAX; i++)
        if (a->labels[i].name[0])
            bad |= json_object_set_new(labels, a->labels[i].name, json_string(a->labels[i].value));
    for (unsigned i = 0; i < a->nvalues && i < NOTIFY_VALUES_MAX; i++) {
        double v = a->values[i].value;
        if (a->values[i].name[0])
            bad |= json_object_set_new(values, a->values[i].name,
                                       isfinite(v) ? json_real(v) : json_null());
    }
    if (!bad && json_object_size(labels))
        bad |= json_object_set(o, "labels", labels);
    if (!bad && json_object_size(values))
        bad |= json_object_set(o, "values", values);
    json_decref(labels);
    json_decref(values);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *notify_webhook_body(const notify_msg_t *m, size_t *ret_len)
{
    char now[24];
    char *text = NULL;
    bool firing = false;
    json_t *root = json_object(), *alerts = json_array();
    int bad = !root || !alerts;
    for (size_t i = 0; !bad && i < m->nalerts; i++) {
        firing |= m->alerts[i]->state == NOTIFY_FIRING;
        json_t *a = alert_json(m->alerts[i]);
        bad |= !a || json_array_append_new(alerts, a);
    }
    notify_time_rfc3339(m->now, now);
    bad |= json_object_set_new(root, "version", json_integer(1));
    bad |= json_object_set_new(root, "id", json_string(m->id));
    bad |= json_object_set_new(root, "receiver", json_string(m->rc->name));
    bad |= json_object_set_new(
        root, "status", json_string(notify_state_name(firing ? NOTIFY_FIRING : NOTIFY_RESOLVED)));
    bad |= json_object_set_new(root, "time", json_string(now));
    bad |= json_object_set(root, "alerts", alerts);
    if (!bad)
        text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(alerts);
    json_decref(root);
    if (text)
        *ret_len = strlen(text);
    return text;
}

/* Response bodies are read and thrown away: the status says it all. */
static size_t discard_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* Appends "name: value" to *list; -ENOMEM. */
static int header_add(struct curl_slist **list, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return -ENOMEM;
    *list = l;
    return 0;
}

int notify_webhook_setup(CURL *e, const notify_rcv_conf_t *rc, const char *id, int64_t now,
                         const notify_payload_t *body, struct curl_slist **ret_headers)
{
    char ts[24], sig[NOTIFY_SIG_MAX];
    struct curl_slist *h = NULL;
    int ret;
    snprintf(ts, sizeof(ts), "%" PRId64, now);
    /* "Expect:" off: curl 7.x would wait for 100-continue on bodies over
     * 1 KiB, a round trip for nothing. */
    if ((ret = header_add(&h, "Content-Type", "application/json")) < 0 ||
        (ret = header_add(&h, "User-Agent", "surety-notify/1")) < 0 ||
        (ret = header_add(&h, "X-Surety-Delivery", id)) < 0 ||
        (ret = header_add(&h, "X-Surety-Timestamp", ts)) < 0 ||
        (ret = header_add(&h, "Expect", "")) < 0)
        goto out;
    if (rc->secret_len) {
        ret = notify_hmac_sign(rc->secret, rc->secret_len, ts, body->data, body->len, sig);
        if (ret < 0 || (ret = header_add(&h, "X-Surety-Signature", sig)) < 0)
            goto out;
    }
    ret = -ENOMEM;
    if (curl_easy_setopt(e, CURLOPT_URL, rc->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body->data) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_cb) != CURLE_OK)
        goto out;
    *ret_headers = h;
    h = NULL;
    ret = 0;
out:
    curl_slist_free_all(h);
    return ret;
}
