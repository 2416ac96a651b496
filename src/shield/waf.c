/* The WAF: libmodsecurity 3 with the OWASP CRS behind a bounded thread pool
 * (see waf.h for the contract). What was checked in libmodsecurity 3.0.9
 * (Debian 3.0.9-1+deb12u2) and CRS 3.3.4, and what follows from it:
 *
 * One engine for the process. msc_init() creates the persistent
 * collections and calls xmlInitParser() and curl_global_init(); its
 * cleanup calls xmlCleanupParser() and curl_global_cleanup(), which must
 * not run while another thread may be using libxml2 (an XML body being
 * parsed with the next rule set, after a reload). So the engine is created
 * once, by the first waf_load(), and lives until the process exits; each
 * waf_t is only a RulesSet. The log callback is set on that engine and
 * tells transactions apart by the pointer given to msc_new_transaction.
 *
 * Loading is serialised. The rule parser (flex/bison) keeps global state
 * even across RulesSets (ModSecurity issues #2536, #3138): two loads at
 * once corrupt each other, so waf_load() holds a process-wide mutex.
 *
 * Inspecting is concurrent. The maintainers' position is that a loaded
 * RulesSet is shared by concurrent transactions (issues #1726, #3215), and
 * the 3.0.9 sources agree for what the CRS uses: @rx builds its match data
 * per call, @pm's Aho-Corasick tree is finished at load and only walked,
 * libinjection and the transformations keep no state, and rules and
 * operators are not written during evaluation. The one known race of 3.0.9
 * is in the in-memory persistent collections (IP, GLOBAL...): reads take
 * no lock while writes do (issue #3054, fixed in 3.0.13). The CRS 3.3.4
 * request rules only read them (901321's initcol stores nothing); they
 * write them only for IP reputation and DoS protection (910, 912), which
 * need settings Surety never generates. Checked: 6000 mixed requests
 * (JSON, XML, multipart, attacks) on 2 and 4 threads under ASan give the
 * verdicts, rule lists and scores of one thread (test_waf with
 * WAF_STRESS=4000), and helgrind, which sees inside the uninstrumented
 * library, reports no race on its data (only glibc and PCRE2-JIT lock
 * internals). If a configuration ever enables 910/912 writes on 3.0.9,
 * each thread needs its own engine (the collections live in the engine,
 * not in the RulesSet); a copy of the CRS costs 0.1 s and 14 MiB.
 *
 * Rule IDs come from the text of ModSecurity's log messages (the C API has
 * no structured form). That text mixes attacker-controlled bytes with the
 * fields: the matched variable's name and value come before the [file]
 * [line] [id] fields, the decoded path ([uri]) after them, and neither is
 * escaped. A naive search for "[id" would let a request name the rules
 * reported for it. msg_parse() avoids that by anchoring on the exact tail
 * of the message, which holds the transaction's unique_id: a random nonce
 * chosen here, which the client cannot know (see tx_tail). */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>

#include "http/http.h"
#include "shield/waf.h"

/* Surety's own rules around the CRS. 200000-200002 and 200007 are rules of
 * ModSecurity's modsecurity.conf-recommended, under the IDs operators know
 * them by. (A rule reporting the score of every request that scored but
 * passed cost such requests about 4%: the score is reported for a MATCH
 * only, from 949110's message.) */
#define WAF_RULE_XML 200000
#define WAF_RULE_JSON 200001
#define WAF_RULE_BODY_ERROR 200002
#define WAF_RULE_ARGS 200007
#define WAF_RULE_BLOCKING 949110

/* Arguments (query and body) a request may have. Every CRS rule walks all
 * of them, and ModSecurity 3.0.9 stores repeated names in a way that is
 * quadratic: 64 KiB of "a=&a=&..." (21,000 arguments) takes 4.7 s of a WAF
 * thread, 20,000 distinct names 1.1 s. ModSecurity stops collecting at
 * SecArgumentsLimit, after which the rest would go uninspected, so the
 * request is refused (400, 200007), as modsecurity.conf-recommended does;
 * 1000 arguments cost about 70 ms. */
#define WAF_MAX_ARGS 1000

#define WAF_NONCE_LEN 16
/* The [uri] field is the decoded path cut at 200 bytes plus a note of the
 * rest, each unprintable byte shown as 4; with the other tail fields and
 * the note, 1 KiB is enough. */
#define WAF_TAIL_MAX 1024
#define WAF_URI_SHOWN 200

struct waf {
    RulesSet *rules;
    waf_mode_t mode;
    size_t body_limit;
};

static pthread_mutex_t waf_load_lock = PTHREAD_MUTEX_INITIALIZER;
static ModSecurity *waf_engine; /* written under waf_load_lock, then only read */

/* One transaction, as the log callback sees it. */
typedef struct {
    waf_job_t *job;
    str_t target; /* request-target as received */
    char server[INET6_ADDRSTRLEN];
    char nonce[WAF_NONCE_LEN + 1];
    char tail[WAF_TAIL_MAX]; /* built on the first message */
    size_t tail_len;
    bool body_error;
    bool msg_attack; /* job->msg comes from an attack rule */
    char body_error_msg[sizeof(((waf_job_t *)0)->msg)];
} waf_tx_t;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- Messages ---------------------------------------------------------- */

/* Appends c to buf[*n] as ModSecurity's toHexIfNeeded() prints it: bytes
 * outside 32..126 as \xNN (lowercase), the rest as they are. */
static void tail_put(char *buf, size_t *n, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    if (c >= 32 && c <= 126) {
        buf[(*n)++] = (char)c;
        return;
    }
    buf[(*n)++] = '\\';
    buf[(*n)++] = 'x';
    buf[(*n)++] = hex[c >> 4];
    buf[(*n)++] = hex[c & 15];
}

static void tail_puts(char *buf, size_t *n, const char *s)
{
    while (*s)
        tail_put(buf, n, (unsigned char)*s++);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Builds the text every message about this transaction ends with, up to
 * the [ref] value:
 *   "] [hostname "SERVER"] [uri "URI"] [unique_id "NONCE"] [ref "
 * URI is what ModSecurity 3.0.9 prints (Transaction::processURI,
 * utils::uri_decode, RuleMessage::_details): the target cut at '#',
 * %XX-decoded where both digits are hex, cut at the first '?' of the
 * decoded text, limited to 200 bytes with " (N characters omitted)". Only
 * the real tail holds the nonce, so its position is known exactly even
 * when the URI holds text that looks like fields. */
static void tx_tail(waf_tx_t *tx)
{
    const char *s = tx->target.p;
    size_t len = tx->target.len, n = 0, shown = 0, total = 0;
    const char *hash = memchr(s, '#', len);
    char *b = tx->tail;

    if (hash)
        len = (size_t)(hash - s);
    tail_puts(b, &n, "\"] [hostname \"");
    tail_puts(b, &n, tx->server);
    tail_puts(b, &n, "\"] [uri \"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi, lo;
        if (c == '%' && i + 2 < len && (hi = hex_value(s[i + 1])) >= 0 &&
            (lo = hex_value(s[i + 2])) >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '?')
            break;
        total++;
        if (shown < WAF_URI_SHOWN) {
            tail_put(b, &n, c);
            shown++;
        }
    }
    if (total > shown)
        n += (size_t)snprintf(b + n, WAF_TAIL_MAX - n, " (%zu characters omitted)", total - shown);
    tail_puts(b, &n, "\"] [unique_id \"");
    tail_puts(b, &n, tx->nonce);
    tail_puts(b, &n, "\"] [ref \"");
    assert(n < WAF_TAIL_MAX);
    tx->tail_len = n;
}

/* The last occurrence of needle in s[0, len), or NULL. */
static const char *mem_last(const char *s, size_t len, const char *needle, size_t nlen)
{
    const char *found = NULL, *p = s, *end = s + len;
    while ((p = memmem(p, (size_t)(end - p), needle, nlen)) != NULL) {
        found = p;
        p++;
    }
    return found;
}

/* Consumes the literal lit at *p (before end). */
static bool take(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/* Consumes a field value without '"' up to the closing quote. */
static bool take_value(const char **p, const char *end, bool digits, unsigned long *ret)
{
    const char *q = memchr(*p, '"', (size_t)(end - *p));
    unsigned long v = 0;
    if (!q || (digits && q == *p))
        return false;
    for (const char *c = *p; digits && c < q; c++) {
        if (*c < '0' || *c > '9' || v > UINT_MAX / 10)
            return false;
        v = v * 10 + (unsigned long)(*c - '0');
    }
    if (ret)
        *ret = v;
    *p = q;
    return true;
}

/* Finds the rule ID and msg in one message of this transaction:
 *   ... [file "F"] [line "L"] [id "I"] [rev "R"] [msg "M"] [data "D"]
 *   [severity ...] ... [tag "T"]... TAIL R"]
 * Between the [file] of the real fields and the tail, every value but M is
 * either Surety's (paths, numbers) or escaped by ModSecurity (rev, data,
 * ver and tags have '"' as \x22), so the nearest ' [file "' before the
 * tail opens the real fields, and the last '"] [data "' before it closes
 * M. Only a msg that quotes request text (921170 at paranoia 3) could
 * still hold a forged field. */
static bool msg_parse(const waf_tx_t *tx, const char *s, size_t len, unsigned *ret_id,
                      str_t *ret_msg)
{
    static const char file[] = " [file \"", data[] = "\"] [data \"";
    const char *tail = mem_last(s, len, tx->tail, tx->tail_len);
    unsigned long id;

    if (!tail)
        return false;
    const char *p = mem_last(s, (size_t)(tail - s), file, sizeof(file) - 1);
    const char *m_end = mem_last(s, (size_t)(tail - s), data, sizeof(data) - 1);
    if (!p || !m_end || m_end < p)
        return false;
    p += sizeof(file) - 1;
    if (!take_value(&p, tail, false, NULL) || !take(&p, tail, "\"] [line \"") ||
        !take_value(&p, tail, true, NULL) || !take(&p, tail, "\"] [id \"") ||
        !take_value(&p, tail, true, &id) || !take(&p, tail, "\"] [rev \"") ||
        !take_value(&p, tail, false, NULL) || !take(&p, tail, "\"] [msg \"") || p > m_end)
        return false;
    *ret_id = (unsigned)id;
    *ret_msg = str_from(p, (size_t)(m_end - p));
    return true;
}

/* The number after the last non-digit of s ("Total Score: 10" -> 10). */
static unsigned msg_number(str_t s)
{
    size_t i = s.len;
    unsigned v = 0;
    while (i > 0 && !(s.p[i - 1] >= '0' && s.p[i - 1] <= '9'))
        i--;
    size_t end = i;
    while (i > 0 && s.p[i - 1] >= '0' && s.p[i - 1] <= '9')
        i--;
    for (; i < end && v < 100000000u; i++)
        v = v * 10 + (unsigned)(s.p[i] - '0');
    return v;
}

/* Copies msg into dst[size] without the newline that parser errors end in
 * (printed as "\x0a"). */
static void copy_msg(char *dst, size_t size, str_t msg)
{
    while (msg.len >= 4 && memcmp(msg.p + msg.len - 4, "\\x0a", 4) == 0)
        msg.len -= 4;
    size_t n = msg.len < size - 1 ? msg.len : size - 1;
    memcpy(dst, msg.p, n);
    dst[n] = '\0';
}

static void job_add_rule(waf_job_t *j, unsigned id)
{
    for (unsigned i = 0; i < j->nrules; i++)
        if (j->rules[i] == id)
            return;
    if (j->nrules < WAF_MAX_RULES)
        j->rules[j->nrules++] = id;
}

/* CRS attack families: scanners (913) and the 930-944 application attacks. */
static bool is_attack(unsigned id)
{
    unsigned f = id / 1000;
    return f == 913 || (f >= 930 && f <= 944);
}

/* Records one message (a rule that matched with "log", or the log of the
 * intervention) into the job. */
static void tx_record(waf_tx_t *tx, const char *text, size_t len)
{
    waf_job_t *j = tx->job;
    unsigned id;
    str_t msg;

    if (tx->tail_len == 0)
        tx_tail(tx);
    if (!msg_parse(tx, text, len, &id, &msg))
        return;
    if (id == WAF_RULE_BODY_ERROR) {
        tx->body_error = true;
        copy_msg(tx->body_error_msg, sizeof(tx->body_error_msg), msg);
        return;
    }
    if (id == WAF_RULE_BLOCKING) {
        j->score = msg_number(msg);
    } else if (id / 1000 != 949 && (j->msg[0] == '\0' || (!tx->msg_attack && is_attack(id)))) {
        /* the event should name the attack (942100, SQL injection), not a
         * protocol remark that matched first (920350, numeric Host) */
        copy_msg(j->msg, sizeof(j->msg), msg);
        tx->msg_attack = is_attack(id);
    }
    job_add_rule(j, id);
}

/* ModSecurity's log callback (TextLogProperty: text is a C string), on the
 * thread running the transaction. data is its waf_tx_t. */
static void waf_log_cb(void *data, const void *text)
{
    if (data && text)
        tx_record(data, text, strlen(text));
}

/* ---- Loading ----------------------------------------------------------- */

/* Paths go into Include lines, which ModSecurity cannot quote when they
 * hold a wildcard, and into message fields that msg_parse() reads. */
static bool path_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '\'' || *s == '\\' || *s == 0x7f)
            return false;
    return true;
}

/* Method tokens separated by single spaces: they go into a quoted setvar. */
static bool methods_ok(const char *s)
{
    bool token = false;
    for (; *s; s++) {
        if (*s == ' ' && token) {
            token = false;
        } else if ((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_') {
            token = true;
        } else {
            return false;
        }
    }
    return token;
}

static int check_conf(const waf_conf_t *c, const char *rules, const char *setup,
                      const char *methods, char *err, size_t errlen)
{
    if (c->paranoia < 1 || c->paranoia > 4) {
        snprintf(err, errlen, "paranoia: %u is not in 1..4", c->paranoia);
        return -EINVAL;
    }
    if (c->anomaly_threshold < 1 || c->anomaly_threshold > 100000) {
        snprintf(err, errlen, "anomaly threshold: %u is not in 1..100000", c->anomaly_threshold);
        return -EINVAL;
    }
    if (c->mode != WAF_MODE_BLOCK && c->mode != WAF_MODE_DETECT) {
        snprintf(err, errlen, "mode: unknown (%d)", (int)c->mode);
        return -EINVAL;
    }
    if (!path_ok(rules) || !path_ok(setup) || strlen(rules) > PATH_MAX / 2 ||
        strlen(setup) > PATH_MAX / 2) {
        snprintf(err, errlen, "%.200s: paths with blanks, quotes or backslashes are not supported",
                 path_ok(rules) ? setup : rules);
        return -EINVAL;
    }
    if (!methods_ok(methods)) {
        snprintf(err, errlen, "methods: \"%.100s\" is not a space-separated list of methods",
                 methods);
        return -EINVAL;
    }
    return 0;
}

/* 0, or the negative errno of path with "PATH: reason" in err. */
static int check_readable(const char *path, int mode, char *err, size_t errlen)
{
    if (access(path, mode) == 0)
        return 0;
    int r = -errno;
    snprintf(err, errlen, "%s: %s", path, strerror(-r));
    return r;
}

/* The configuration text: engine settings, Surety's rules, the CRS
 * settings as crs-setup.conf.example documents them (900000...), then
 * crs-setup.conf (Debian's holds the SecDefaultActions that make "block"
 * mean "add to the score", and 900990, without which 901001 denies every
 * request), the operator's exclusions, the REQUEST rules, and last the
 * score report. Returns a malloc'd string, or NULL. */
static char *conf_text(const waf_conf_t *c, const char *rules, const char *setup,
                       const char *exclusions, const char *methods)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return NULL;
    fputs("SecRuleEngine On\n"
          "SecAuditEngine Off\n"
          "SecResponseBodyAccess Off\n",
          f);
    if (c->body_limit > 0)
        fprintf(f,
                "SecRequestBodyAccess On\n"
                "SecRequestBodyLimit %zu\n"
                "SecRequestBodyLimitAction ProcessPartial\n",
                c->body_limit);
    else
        fputs("SecRequestBodyAccess Off\n", f);
    fprintf(f,
            /* Without these a JSON or XML body is one opaque REQUEST_BODY,
             * which few CRS rules look at. */
            "SecRule REQUEST_HEADERS:Content-Type \"@rx ^(?:application(?:/soap\\+|/)|text/)xml\" "
            "\"id:%d,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n"
            "SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/json\" "
            "\"id:%d,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n"
            /* A body the parser gave up on was not inspected past that
             * point; waf_inspect() decides (truncated bodies fail too). */
            "SecRule REQBODY_ERROR \"!@eq 0\" "
            "\"id:%d,phase:2,t:none,pass,log,msg:'Failed to parse request body: "
            "%%{REQBODY_ERROR_MSG}'\"\n"
            /* One more than allowed, to tell "too many" from "exactly". */
            "SecArgumentsLimit %d\n"
            "SecRule &ARGS \"@gt %d\" \"id:%d,phase:2,t:none,log,deny,status:400,"
            "msg:'Failed to fully parse request body due to large argument count'\"\n"
            "SecAction \"id:900000,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=%u\"\n"
            "SecAction \"id:900001,phase:1,pass,nolog,t:none,"
            "setvar:tx.executing_paranoia_level=%u\"\n"
            "SecAction \"id:900110,phase:1,pass,nolog,t:none,"
            "setvar:tx.inbound_anomaly_score_threshold=%u,"
            "setvar:tx.outbound_anomaly_score_threshold=4\"\n"
            "SecAction \"id:900200,phase:1,pass,nolog,t:none,setvar:'tx.allowed_methods=%s'\"\n"
            "Include %s\n",
            WAF_RULE_XML, WAF_RULE_JSON, WAF_RULE_BODY_ERROR, WAF_MAX_ARGS + 1, WAF_MAX_ARGS,
            WAF_RULE_ARGS, c->paranoia, c->paranoia, c->anomaly_threshold, methods, setup);
    if (exclusions)
        fprintf(f, "Include %s\n", exclusions);
    fprintf(f, "Include %s/rules/REQUEST-*.conf\n", rules);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* The engine, created on first use; called with waf_load_lock held. */
static ModSecurity *engine_get(void)
{
    if (!waf_engine) {
        waf_engine = msc_init();
        if (waf_engine) {
            msc_set_connector_info(waf_engine, "Surety");
            msc_set_log_cb(waf_engine, waf_log_cb);
        }
    }
    return waf_engine;
}

/* "DIR/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf" for setup "DIR/x",
 * malloc'd, or NULL when there is no such file. */
static char *exclusions_path(const char *setup)
{
    const char *slash = strrchr(setup, '/');
    int dir = slash ? (int)(slash - setup) : 1;
    char *path = NULL;
    if (asprintf(&path, "%.*s/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf", dir,
                 slash ? setup : ".") < 0)
        return NULL;
    if (access(path, R_OK) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

waf_t *waf_load(const waf_conf_t *c, char *err, size_t errlen)
{
    const char *rules = c->rules ? c->rules : WAF_RULES_DEFAULT;
    const char *setup = c->setup ? c->setup : WAF_SETUP_DEFAULT;
    const char *methods = c->methods ? c->methods : WAF_METHODS_DEFAULT;
    char dir[PATH_MAX], scratch[1];
    char *text = NULL, *exclusions = NULL;
    const char *msc_err = NULL;
    waf_t *w = NULL;

    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    if (check_conf(c, rules, setup, methods, err, errlen) < 0)
        return NULL;
    snprintf(dir, sizeof(dir), "%s/rules", rules);
    if (check_readable(dir, R_OK | X_OK, err, errlen) < 0 ||
        check_readable(setup, R_OK, err, errlen) < 0)
        return NULL;
    exclusions = exclusions_path(setup);
    text = conf_text(c, rules, setup, exclusions, methods);
    w = calloc(1, sizeof(*w));
    if (!text || !w) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->mode = c->mode;
    w->body_limit = c->body_limit;
    pthread_mutex_lock(&waf_load_lock);
    if (engine_get())
        w->rules = msc_create_rules_set();
    int n = w->rules ? msc_rules_add(w->rules, text, &msc_err) : -1;
    pthread_mutex_unlock(&waf_load_lock);
    if (n < 0) {
        /* ModSecurity's text ends in a newline; strdup'd for the caller. */
        const char *why = msc_err ? msc_err : "cannot initialise libmodsecurity";
        int len = (int)strcspn(why, "\n");
        snprintf(err, errlen, "%.*s", len, why);
        free((char *)msc_err);
        goto fail;
    }
    free(text);
    free(exclusions);
    return w;
fail:
    free(text);
    free(exclusions);
    waf_free(w);
    return NULL;
}

void waf_free(waf_t *w)
{
    if (!w)
        return;
    if (w->rules)
        msc_rules_cleanup(w->rules);
    free(w);
}

waf_mode_t waf_mode(const waf_t *w)
{
    return w->mode;
}

size_t waf_body_limit(const waf_t *w)
{
    return w->body_limit;
}

/* ---- Jobs and inspection ----------------------------------------------- */

waf_job_t *waf_job_new(const waf_t *w, const char *head, size_t head_len, const char *body,
                       size_t body_len, bool truncated)
{
    assert(w && (head || head_len == 0) && (body || body_len == 0));
    if (body_len > w->body_limit) {
        body_len = w->body_limit;
        truncated = true;
    }
    /* The NULs are for nobody: they only make the copies printable in a
     * debugger. */
    waf_job_t *j = calloc(1, sizeof(*j) + head_len + 1 + body_len + 1);
    if (!j)
        return NULL;
    char *h = (char *)(j + 1), *b = h + head_len + 1;
    if (head_len)
        memcpy(h, head, head_len);
    if (body_len)
        memcpy(b, body, body_len);
    j->waf = w;
    j->head = h;
    j->head_len = head_len;
    j->body = b;
    j->body_len = body_len;
    j->body_truncated = truncated;
    return j;
}

void waf_job_free(waf_job_t *j)
{
    free(j);
}

static void job_reset(waf_job_t *j, int verdict)
{
    j->verdict = verdict;
    j->status = 0;
    j->nrules = 0;
    j->score = 0;
    j->msg[0] = '\0';
    j->elapsed_us = 0;
}

/* A random unique_id for the transaction, which only this process knows
 * (see tx_tail). getrandom() does not fail for 8 bytes once the pool is
 * initialised; if it ever did, the clock keeps the IDs unique, at the cost
 * of the rule IDs becoming forgeable by a patient client. */
static void tx_nonce(waf_tx_t *tx)
{
    uint64_t r;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = now_us() * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)tx;
    snprintf(tx->nonce, sizeof(tx->nonce), "%016llx", (unsigned long long)r);
}

static void addr_text(const sock_addr_t *a, char *ip, size_t n, int *port)
{
    if (a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6) {
        sock_addr_format_ip(a, ip, n);
        *port = sock_addr_port(a);
    } else {
        snprintf(ip, n, "0.0.0.0");
        *port = 0;
    }
}

/* Takes the intervention, if any: the verdict, and the message of the rule
 * that denied (949110, 200007), which 3.0.9 gives only here, never to the
 * log callback. True when there was one. */
static bool tx_intervention(waf_tx_t *tx, Transaction *t)
{
    ModSecurityIntervention it = {.status = 200};
    if (!msc_intervention(t, &it))
        return false;
    if (it.log)
        tx_record(tx, it.log, strlen(it.log));
    tx->job->verdict = WAF_MATCH;
    tx->job->status = it.status;
    free(it.log);
    free(it.url);
    return true;
}

/* Runs the phases of one request (ModSecurity's phases 1 and 2; there is
 * no response, and logging is off); an intervention makes the job a MATCH.
 * scratch has room for the method and the target with their NULs. */
static void tx_run(waf_tx_t *tx, Transaction *t, const http_request_t *req, char *scratch)
{
    waf_job_t *j = tx->job;
    char client[INET6_ADDRSTRLEN];
    int cport, sport;

    addr_text(&j->client, client, sizeof(client), &cport);
    addr_text(&j->local, tx->server, sizeof(tx->server), &sport);
    msc_process_connection(t, client, cport, tx->server, sport);
    /* processURI wants C strings. */
    char *method = scratch, *target = scratch + req->method.len + 1;
    memcpy(method, req->method.p, req->method.len);
    method[req->method.len] = '\0';
    memcpy(target, req->target.p, req->target.len);
    target[req->target.len] = '\0';
    msc_process_uri(t, target, method, req->minor == 0 ? "1.0" : "1.1");
    for (size_t i = 0; i < req->nfields; i++) {
        const http_field_t *f = &req->fields[i];
        msc_add_n_request_header(t, (const unsigned char *)f->name.p, f->name.len,
                                 (const unsigned char *)f->value.p, f->value.len);
    }
    /* The 3.0.9 calls return whether to go on, which only an exceeded body
     * limit makes false; the outcome is read from the intervention. */
    msc_process_request_headers(t);
    if (tx_intervention(tx, t))
        return;
    if (j->body_len > 0)
        msc_append_request_body(t, (const unsigned char *)j->body, j->body_len);
    msc_process_request_body(t);
    tx_intervention(tx, t);
}

/* After the rules: a body the parser rejected was inspected only up to the
 * error, which is a way around the rules, so it is refused the way
 * modsecurity.conf-recommended does (400), unless it failed because only a
 * prefix was given. */
static void tx_body_error(waf_tx_t *tx)
{
    waf_job_t *j = tx->job;
    if (!tx->body_error || j->body_truncated || j->verdict == WAF_MATCH)
        return;
    j->verdict = WAF_MATCH;
    j->status = 400;
    job_add_rule(j, WAF_RULE_BODY_ERROR);
    if (j->msg[0] == '\0')
        memcpy(j->msg, tx->body_error_msg, sizeof(j->msg));
}

void waf_inspect(waf_job_t *j)
{
    uint64_t start = now_us();
    http_request_t req;
    http_reject_t reason;
    waf_tx_t tx;
    size_t lines = 1;

    assert(j && j->waf && waf_engine);
    job_reset(j, WAF_ERROR);
    for (const char *p = j->head, *end = j->head + j->head_len;
         (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        lines++;
    /* Field array for every line, then room for C-string copies of the
     * method and target: one allocation, freed below. */
    http_field_t *fields = malloc(lines * sizeof(*fields) + j->head_len + 2);
    if (!fields)
        goto out;
    http_limits_t lim = {j->head_len, j->head_len, lines};
    if (http_parse_request(&req, j->head, j->head_len, &lim, fields, lines, &reason) != 0)
        goto out;
    memset(&tx, 0, sizeof(tx));
    tx.job = j;
    tx.target = req.target;
    tx_nonce(&tx);
    Transaction *t = msc_new_transaction_with_id(waf_engine, j->waf->rules, tx.nonce, &tx);
    if (!t)
        goto out;
    j->verdict = WAF_PASS;
    tx_run(&tx, t, &req, (char *)(fields + lines));
    msc_transaction_cleanup(t);
    tx_body_error(&tx);
out:
    free(fields);
    j->elapsed_us = now_us() - start;
}

/* ---- Pool -------------------------------------------------------------- */

#define WAF_POOL_MAX_THREADS 64

struct waf_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a job was queued, or stopping was set */
    waf_job_t *first, *last;
    size_t queued, queue_max;
    bool stopping;
    unsigned nthreads;
    pthread_t threads[];
};

/* A WAF thread: takes jobs until stopping is set, leaving the queue to
 * waf_pool_free(). */
/* Verdicts finished while more jobs wait are handed back together, at most
 * this long after the first of them: each hand-back wakes the worker, and
 * on a CPU shared with it every wake-up is two context switches (in a VM,
 * tens of microseconds each). With an empty queue they go at once. */
#define WAF_BATCH_US 1000

static void hand_back(waf_job_t *held)
{
    while (held) {
        waf_job_t *next = held->next;
        held->next = NULL;
        held->done(held); /* may reuse next */
        held = next;
    }
}

static void *pool_main(void *arg)
{
    waf_pool_t *p = arg;
    waf_job_t *held = NULL, **tail = &held;
    uint64_t held_since = 0;

    /* SCHED_BATCH: a WAF thread does not preempt the worker it shares a
     * CPU with when it wakes; it runs when the worker waits. */
    struct sched_param sp = {0};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (held && (!p->first || p->stopping || now_us() - held_since >= WAF_BATCH_US)) {
            pthread_mutex_unlock(&p->lock);
            hand_back(held);
            held = NULL;
            tail = &held;
            pthread_mutex_lock(&p->lock);
            continue;
        }
        while (!p->first && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stopping)
            break;
        waf_job_t *j = p->first;
        p->first = j->next;
        if (!p->first)
            p->last = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->lock);
        j->next = NULL;
        waf_inspect(j);
        if (!held)
            held_since = now_us();
        *tail = j;
        tail = &j->next;
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    hand_back(held); /* not reached with jobs held: they go before stopping */
    return NULL;
}

/* Stops and joins the first n threads. */
static void pool_stop(waf_pool_t *p, unsigned n)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(p->threads[i], NULL);
}

waf_pool_t *waf_pool_new(unsigned threads, size_t queue_max)
{
    sigset_t all, old;
    unsigned started = 0;

    if (threads < 1 || threads > WAF_POOL_MAX_THREADS || queue_max < 1)
        return NULL;
    waf_pool_t *p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->queue_max = queue_max;
    p->nthreads = threads;
    /* Threads inherit the creator's mask: with every signal blocked, the
     * gateway's signals keep going to the threads that handle them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; started < threads; started++) {
        char name[16];
        if (pthread_create(&p->threads[started], NULL, pool_main, p) != 0)
            break;
        snprintf(name, sizeof(name), "waf/%u", started);
        pthread_setname_np(p->threads[started], name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < threads) {
        pool_stop(p, started);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

int waf_pool_submit(waf_pool_t *p, waf_job_t *j)
{
    assert(p && j && j->waf && j->done);
    pthread_mutex_lock(&p->lock);
    assert(!p->stopping);
    if (p->queued >= p->queue_max) {
        pthread_mutex_unlock(&p->lock);
        return -EAGAIN;
    }
    j->next = NULL;
    if (p->last)
        p->last->next = j;
    else
        p->first = j;
    p->last = j;
    p->queued++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

size_t waf_pool_queued(waf_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->queued;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void waf_pool_free(waf_pool_t *p)
{
    if (!p)
        return;
    pool_stop(p, p->nthreads);
    /* The threads are gone: what is left in the queue is only ours. */
    waf_job_t *j = p->first;
    while (j) {
        waf_job_t *next = j->next;
        j->next = NULL;
        job_reset(j, WAF_ERROR);
        j->done(j);
        j = next;
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
