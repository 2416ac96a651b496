/* Unit tests of src/shield/waf.c with the real OWASP CRS 3.3.4 and
 * libmodsecurity 3 (no mocks): classic attacks are blocked by the rule
 * families meant for them, ordinary browser and API traffic passes without
 * a single rule, detect mode and paranoia levels, the body limit, rule IDs
 * that a request cannot forge, load errors, and the pool (one done() per
 * job, -EAGAIN on a full queue, queued jobs completed with WAF_ERROR, the
 * same verdicts on several threads as on one). The .c is included to reach
 * the message parser and the pool's state.
 *
 * WAF_STRESS=N sets the number of requests of the multi-thread comparison
 * (default 160, which takes a few seconds under ASan). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shield/waf.c"

/* LeakSanitizer asks the program for suppressions at exit (ASan builds):
 * the leak of libmodsecurity's parser after a syntax error in an included
 * file, which test_load_reports_the_parse_error_with_file_and_line causes.
 * The same entries, with the why, are in tests/unit/lsan.supp. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:yy_scan_buffer\nleak:yy_scan_bytes\n";
}

#define BROWSER                                                                                    \
    "Host: example.com\r\n"                                                                        \
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"       \
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"                  \
    "Accept-Language: en-US,en;q=0.5\r\n"                                                          \
    "Accept-Encoding: gzip, deflate, br\r\n"
#define API                                                                                        \
    "Host: example.com\r\n"                                                                        \
    "User-Agent: okhttp/4.9.3\r\n"                                                                 \
    "Accept: application/json\r\n"

typedef struct {
    const char *name;
    const char *head;
    const char *body; /* NULL: none */
    size_t body_len;  /* 0: strlen(body) */
    unsigned family;  /* attacks: rule ID / 1000 of the first rule expected */
} req_t;

#define MP_TEXT                                                                                    \
    "--XyZ\r\n"                                                                                    \
    "Content-Disposition: form-data; name=\"title\"\r\n\r\n"                                       \
    "Holiday notes\r\n"                                                                            \
    "--XyZ\r\n"                                                                                    \
    "Content-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n"                    \
    "Content-Type: text/plain\r\n\r\n"                                                             \
    "Shopping list: milk, eggs, bread.\r\n"                                                        \
    "--XyZ--\r\n"
/* A PNG signature and IHDR chunk, NULs included. */
#define MP_PNG                                                                                     \
    "--XyZ\r\n"                                                                                    \
    "Content-Disposition: form-data; name=\"file\"; filename=\"pixel.png\"\r\n"                    \
    "Content-Type: image/png\r\n\r\n"                                                              \
    "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89"              \
    "\0\0\0\nIDATx\x9c\x63\0\x01\0\0\x05\0\x01\r\n-\xb4\0\0\0\0IEND\xae\x42\x60\x82\r\n"           \
    "--XyZ--\r\n"

/* Designated initialisers: the fields left out are zero. */
#define ATTACK(n, h, b, f)                                                                         \
    {                                                                                              \
        .name = (n), .head = (h), .body = (b), .family = (f)                                       \
    }
#define BENIGN(n, h, b)                                                                            \
    {                                                                                              \
        .name = (n), .head = (h), .body = (b)                                                      \
    }

static const req_t attacks[] = {
    ATTACK("sqli in the query", "GET /?id=1'+OR+'1'='1 HTTP/1.1\r\n" BROWSER "\r\n", NULL, 942),
    ATTACK("sqli in a form body",
           "POST /login HTTP/1.1\r\n" BROWSER
           "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 48\r\n\r\n",
           "user=admin&id=1 union select password from users", 942),
    ATTACK("xss in the query",
           "GET /search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E HTTP/1.1\r\n" BROWSER "\r\n", NULL,
           941),
    ATTACK("xss in a json body",
           "POST /api/comments HTTP/1.1\r\n" API "Content-Type: application/json\r\n"
           "Content-Length: 47\r\n\r\n",
           "{\"comment\":\"<script>alert(1)</script>\",\"id\":7}", 941),
    ATTACK("path traversal", "GET /../../etc/passwd HTTP/1.1\r\n" BROWSER "\r\n", NULL, 930),
    ATTACK("command injection with ;cat",
           "GET /ping?host=127.0.0.1;cat%20/etc/passwd HTTP/1.1\r\n" BROWSER "\r\n", NULL, 930),
    ATTACK("command injection with $(id)", "GET /ping?host=$(id) HTTP/1.1\r\n" BROWSER "\r\n", NULL,
           932),
    ATTACK(
        "xss in an xml body",
        "POST /soap HTTP/1.1\r\n" API "Content-Type: text/xml\r\nContent-Length: 79\r\n\r\n",
        "<?xml version=\"1.0\"?><order><item>&lt;script&gt;alert(1)&lt;/script&gt;</item></order>",
        941),
    ATTACK("sqlmap",
           "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: sqlmap/1.7.2#stable "
           "(https://sqlmap.org)\r\nAccept: */*\r\n\r\n",
           NULL, 913),
    ATTACK("nikto",
           "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.00 (Nikto/2.1.6) "
           "(Evasions:None) (Test:000003)\r\nAccept: */*\r\n\r\n",
           NULL, 913),
};

static const req_t benign[] = {
    BENIGN("plain get",
           "GET /products?category=shoes&page=2&sort=price_asc HTTP/1.1\r\n" BROWSER "\r\n", NULL),
    BENIGN("search", "GET /search?q=how+to+bake+bread&lang=en HTTP/1.1\r\n" BROWSER "\r\n", NULL),
    BENIGN("static file",
           "GET /assets/app.3f9a1c.js HTTP/1.1\r\n" BROWSER "Referer: https://example.com/\r\n\r\n",
           NULL),
    BENIGN("login form",
           "POST /login HTTP/1.1\r\n" BROWSER
           "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 48\r\n\r\n",
           "username=alice&password=S3cret%21pass&remember=1"),
    BENIGN("json post",
           "POST /api/v1/orders HTTP/1.1\r\n" API "Content-Type: application/json\r\n"
           "Content-Length: 67\r\n\r\n",
           "{\"item\":\"book\",\"quantity\":2,\"note\":\"gift wrap please\",\"price\":12.5}"),
    BENIGN("json put",
           "PUT /api/v1/orders/42 HTTP/1.1\r\n" API "Content-Type: application/json\r\n"
           "Content-Length: 39\r\n\r\n",
           "{\"status\":\"shipped\",\"tracking\":\"1Z999\"}"),
    BENIGN("xml post",
           "POST /soap HTTP/1.1\r\n" API
           "Content-Type: application/xml\r\nContent-Length: 65\r\n\r\n",
           "<?xml version=\"1.0\"?><order><item>book</item><qty>2</qty></order>"),
    BENIGN("json delete", "DELETE /api/v1/orders/42 HTTP/1.1\r\n" API "\r\n", NULL),
    BENIGN("multipart text upload",
           "POST /upload HTTP/1.1\r\n" BROWSER
           "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 225\r\n\r\n",
           MP_TEXT),
    {.name = "multipart png upload",
     .head = "POST /upload HTTP/1.1\r\n" BROWSER
             "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 200\r\n\r\n",
     .body = MP_PNG,
     .body_len = sizeof(MP_PNG) - 1},
    BENIGN("cookies and browser headers",
           "GET /account HTTP/1.1\r\n" BROWSER
           "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234.17000\r\n"
           "Referer: https://example.com/home\r\nDNT: 1\r\nConnection: keep-alive\r\n"
           "Upgrade-Insecure-Requests: 1\r\nCache-Control: max-age=0\r\n\r\n",
           NULL),
    BENIGN("http/1.0", "GET /index.html HTTP/1.0\r\n" BROWSER "\r\n", NULL),
};

#define NATTACKS (sizeof(attacks) / sizeof(attacks[0]))
#define NBENIGN (sizeof(benign) / sizeof(benign[0]))

static waf_t *load(unsigned paranoia, waf_mode_t mode, size_t body_limit)
{
    char err[512];
    waf_conf_t c = {.paranoia = paranoia,
                    .anomaly_threshold = WAF_THRESHOLD_DEFAULT,
                    .mode = mode,
                    .body_limit = body_limit};
    waf_t *w = waf_load(&c, err, sizeof(err));
    if (!w)
        fail_msg("waf_load: %s", err);
    return w;
}

static waf_job_t *job_of(const waf_t *w, const req_t *r)
{
    size_t blen = r->body ? (r->body_len ? r->body_len : strlen(r->body)) : 0;
    waf_job_t *j = waf_job_new(w, r->head, strlen(r->head), r->body, blen, false);
    assert_non_null(j);
    return j;
}

static waf_job_t *inspect(const waf_t *w, const req_t *r)
{
    waf_job_t *j = job_of(w, r);
    waf_inspect(j);
    return j;
}

static bool has_rule(const waf_job_t *j, unsigned id)
{
    for (unsigned i = 0; i < j->nrules; i++)
        if (j->rules[i] == id)
            return true;
    return false;
}

static void print_rules(const char *what, const waf_job_t *j)
{
    print_message("%s: verdict %d status %d score %u rules", what, j->verdict, j->status, j->score);
    for (unsigned i = 0; i < j->nrules; i++)
        print_message(" %u", j->rules[i]);
    print_message(" msg \"%s\"\n", j->msg);
}

static void test_load_names_the_missing_file(void **state)
{
    (void)state;
    char err[512];
    waf_conf_t c = {.rules = "/nonexistent/crs", .paranoia = 1, .anomaly_threshold = 5};
    assert_null(waf_load(&c, err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/crs/rules: No such file or directory");
    c.rules = NULL;
    c.setup = "/nonexistent/crs-setup.conf";
    assert_null(waf_load(&c, err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/crs-setup.conf: No such file or directory");
}

static void test_load_rejects_settings_out_of_range(void **state)
{
    (void)state;
    char err[512];
    waf_conf_t c = {.paranoia = 5, .anomaly_threshold = 5};
    assert_null(waf_load(&c, err, sizeof(err)));
    assert_string_equal(err, "paranoia: 5 is not in 1..4");
    c.paranoia = 0;
    assert_null(waf_load(&c, err, sizeof(err)));
    c.paranoia = 1;
    c.anomaly_threshold = 0;
    assert_null(waf_load(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "anomaly threshold"));
    c.anomaly_threshold = 5;
    c.methods = "GET' POST";
    assert_null(waf_load(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "methods"));
    c.methods = NULL;
    c.rules = "/usr/share/modsecurity crs";
    assert_null(waf_load(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "not supported"));
}

/* A crs-setup.conf with a syntax error: ModSecurity's message, with the
 * file and line, reaches the caller. */
static void test_load_reports_the_parse_error_with_file_and_line(void **state)
{
    (void)state;
    char path[] = "/tmp/test_waf_setup.XXXXXX", err[512];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] =
        "SecAction \"id:900990,phase:1,pass,nolog,setvar:tx.crs_setup_version=334\"\n"
        "SecRule ARGS \"@rx x\" \"id:1,phase:2,frobnicate\"\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    waf_conf_t c = {.setup = path, .paranoia = 1, .anomaly_threshold = 5};
    waf_t *w = waf_load(&c, err, sizeof(err));
    unlink(path);
    assert_null(w);
    print_message("parse error: %s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "Line: 2"));
    assert_null(strchr(err, '\n'));
}

static void test_classic_attacks_match_with_403_and_their_rule_family(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
        waf_job_t *j = inspect(w, &attacks[i]);
        print_rules(attacks[i].name, j);
        assert_int_equal(j->verdict, WAF_MATCH);
        assert_int_equal(j->status, 403);
        assert_true(j->nrules >= 2);
        assert_int_equal(j->rules[0] / 1000, attacks[i].family);
        assert_int_equal(j->rules[j->nrules - 1], 949110);
        assert_true(j->score >= 5);
        assert_true(j->msg[0] != '\0');
        assert_true(j->elapsed_us > 0);
        waf_job_free(j);
    }
    waf_free(w);
}

static void test_benign_requests_pass_without_a_single_rule(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    for (size_t i = 0; i < sizeof(benign) / sizeof(benign[0]); i++) {
        waf_job_t *j = inspect(w, &benign[i]);
        print_rules(benign[i].name, j);
        assert_int_equal(j->verdict, WAF_PASS);
        assert_int_equal(j->status, 0);
        assert_int_equal(j->nrules, 0);
        assert_int_equal(j->score, 0);
        waf_job_free(j);
    }
    waf_free(w);
}

/* What the gateway sees from curl on loopback: CRS 920350 scores a
 * numeric Host (3, a warning), which passes at the default threshold. */
static void test_numeric_host_scores_920350_but_passes(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    req_t r = BENIGN("curl on loopback",
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                     "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
                     NULL);
    waf_job_t *j = inspect(w, &r);
    print_rules(r.name, j);
    assert_int_equal(j->verdict, WAF_PASS);
    assert_int_equal(j->nrules, 1);
    assert_int_equal(j->rules[0], 920350);
    /* the score is reported for a MATCH only (949110's message): a rule
     * logging every scored pass would cost each such request ~4% */
    assert_int_equal(j->score, 0);
    assert_string_equal(j->msg, "Host header is a numeric IP address");
    waf_job_free(j);
    waf_free(w);
}

/* Methods outside WAF_METHODS_DEFAULT reach the threshold alone (911100). */
static void test_methods_outside_the_allowed_list_match(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    req_t r = ATTACK("propfind", "PROPFIND /dav/ HTTP/1.1\r\n" BROWSER "\r\n", NULL, 911);
    waf_job_t *j = inspect(w, &r);
    assert_int_equal(j->verdict, WAF_MATCH);
    assert_int_equal(j->rules[0], 911100);
    waf_job_free(j);
    waf_free(w);
}

static void test_detect_mode_reports_the_same_verdicts(void **state)
{
    (void)state;
    waf_t *block = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    waf_t *detect = load(1, WAF_MODE_DETECT, WAF_BODY_LIMIT_DEFAULT);
    assert_int_equal(waf_mode(detect), WAF_MODE_DETECT);
    assert_int_equal(waf_mode(block), WAF_MODE_BLOCK);
    const req_t *sets[] = {attacks, benign};
    size_t sizes[] = {sizeof(attacks) / sizeof(attacks[0]), sizeof(benign) / sizeof(benign[0])};
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizes[s]; i++) {
            waf_job_t *a = inspect(block, &sets[s][i]), *b = inspect(detect, &sets[s][i]);
            assert_int_equal(a->verdict, b->verdict);
            assert_int_equal(a->status, b->status);
            assert_int_equal(a->score, b->score);
            assert_int_equal(a->nrules, b->nrules);
            assert_memory_equal(a->rules, b->rules, a->nrules * sizeof(a->rules[0]));
            waf_job_free(a);
            waf_job_free(b);
        }
    }
    waf_free(block);
    waf_free(detect);
}

/* A link to another site in a parameter is remote file inclusion only to
 * paranoia 2 (931130). */
static void test_paranoia_2_flags_what_paranoia_1_lets_pass(void **state)
{
    (void)state;
    waf_t *pl1 = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    waf_t *pl2 = load(2, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    req_t r =
        ATTACK("off-domain link",
               "GET /go?redirect=http://evil.example/ HTTP/1.1\r\n" BROWSER "\r\n", NULL, 931);
    waf_job_t *a = inspect(pl1, &r), *b = inspect(pl2, &r);
    print_rules("paranoia 1", a);
    print_rules("paranoia 2", b);
    assert_int_equal(a->verdict, WAF_PASS);
    assert_int_equal(a->nrules, 0);
    assert_int_equal(b->verdict, WAF_MATCH);
    assert_int_equal(b->status, 403);
    assert_int_equal(b->rules[0], 931130);
    waf_job_free(a);
    waf_job_free(b);
    waf_free(pl1);
    waf_free(pl2);
}

#define FORM_HEAD                                                                                  \
    "POST /form HTTP/1.1\r\n" BROWSER                                                              \
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
#define PAD64 "a=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_body_past_the_limit_is_not_inspected(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, 64);
#define ATTACK_Q "q=1' union select password from users--"
    const char *after = PAD64 "&" ATTACK_Q, *before = ATTACK_Q "&" PAD64;
#undef ATTACK_Q

    assert_int_equal(strlen(PAD64), 64);
    waf_job_t *j = waf_job_new(w, FORM_HEAD, strlen(FORM_HEAD), after, strlen(after), false);
    assert_int_equal(j->body_len, 64);
    assert_true(j->body_truncated);
    waf_inspect(j);
    assert_int_equal(j->verdict, WAF_PASS);
    assert_int_equal(j->nrules, 0);
    waf_job_free(j);

    j = waf_job_new(w, FORM_HEAD, strlen(FORM_HEAD), before, strlen(before), false);
    assert_true(j->body_truncated);
    waf_inspect(j);
    assert_int_equal(j->verdict, WAF_MATCH);
    assert_int_equal(j->rules[0] / 1000, 942);
    waf_job_free(j);

    /* The caller's own truncation flag is kept. */
    j = waf_job_new(w, FORM_HEAD, strlen(FORM_HEAD), "a=b", 3, true);
    assert_true(j->body_truncated);
    waf_job_free(j);
    waf_free(w);
}

#define JSON_HEAD                                                                                  \
    "POST /api HTTP/1.1\r\n" API "Content-Type: application/json\r\nContent-Length: 300\r\n\r\n"

/* Malformed JSON would hide what follows the error from the rules, so it
 * is refused (400, 200002); JSON cut by the body limit is not malformed. */
static void test_malformed_json_is_refused_but_truncated_json_passes(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, 64);
    const char *bad = "{\"a\":\"b\", oops <script>alert(1)</script>}";
    waf_job_t *j = waf_job_new(w, JSON_HEAD, strlen(JSON_HEAD), bad, strlen(bad), false);
    waf_inspect(j);
    print_rules("malformed json", j);
    assert_int_equal(j->verdict, WAF_MATCH);
    assert_int_equal(j->status, 400);
    assert_true(has_rule(j, WAF_RULE_BODY_ERROR));
    assert_non_null(strstr(j->msg, "Failed to parse request body"));
    waf_job_free(j);

    const char *longer =
        "{\"a\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}";
    j = waf_job_new(w, JSON_HEAD, strlen(JSON_HEAD), longer, strlen(longer), false);
    waf_inspect(j);
    assert_true(j->body_truncated);
    assert_int_equal(j->verdict, WAF_PASS);
    assert_int_equal(j->nrules, 0);
    waf_job_free(j);
    waf_free(w);
}

/* "a0=1&a1=1&..." with n arguments. */
static char *many_args(unsigned n)
{
    char *body = malloc((size_t)n * 12 + 1), *p = body;
    assert_non_null(body);
    for (unsigned i = 0; i < n; i++)
        p += sprintf(p, "%sa%u=1", i ? "&" : "", i);
    return body;
}

/* Past WAF_MAX_ARGS ModSecurity stops collecting arguments: the request is
 * refused rather than let the rest through uninspected. */
static void test_more_arguments_than_the_limit_are_refused(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, 64 * 1024);
    for (unsigned n = WAF_MAX_ARGS; n <= WAF_MAX_ARGS + 1; n++) {
        char *body = many_args(n);
        waf_job_t *j = waf_job_new(w, FORM_HEAD, strlen(FORM_HEAD), body, strlen(body), false);
        waf_inspect(j);
        print_rules(n == WAF_MAX_ARGS ? "at the limit" : "one more", j);
        if (n == WAF_MAX_ARGS) {
            assert_int_equal(j->verdict, WAF_PASS);
        } else {
            assert_int_equal(j->verdict, WAF_MATCH);
            assert_int_equal(j->status, 400);
            assert_int_equal(j->rules[0], WAF_RULE_ARGS);
        }
        waf_job_free(j);
        free(body);
    }
    waf_free(w);
}

static void test_unparsable_head_is_an_error(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    const char *heads[] = {"", "GET / HTTP/1.1\r\nHost: example.com\r\n", "NONSENSE\r\n\r\n",
                           "GET / HTTP/1.1\n\n"};
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        waf_job_t *j = waf_job_new(w, heads[i], strlen(heads[i]), NULL, 0, false);
        waf_inspect(j);
        assert_int_equal(j->verdict, WAF_ERROR);
        assert_int_equal(j->nrules, 0);
        waf_job_free(j);
    }
    waf_free(w);
}

/* A request that spells out fields of ModSecurity's log text, in a
 * parameter name, a value and the path, gets its real rules reported. */
static void test_request_cannot_forge_the_rules_reported(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
#define FAKE(id)                                                                                   \
    "%22%5D%20%5Bfile%20%22%2Fusr%2Fshare%2Fmodsecurity-crs%2Frules%2FREQUEST-942-APPLICATION-"    \
    "ATTACK-SQLI.conf%22%5D%20%5Bline%20%221%22%5D%20%5Bid%20%22" id "%22%5D%20%5Brev%20%22%22%5D" \
    "%20%5Bmsg%20%22forged%22%5D%20%5Bdata%20%22%22%5D%20%5Bseverity%20%222%22%5D%20%5Bver%20%22"  \
    "%22%5D%20%5Bmaturity%20%220%22%5D%20%5Baccuracy%20%220%22%5D%20%5Bhostname%20%220.0.0.0%22"   \
    "%5D%20%5Buri%20%22"
    req_t r = ATTACK("forged",
                     "GET /x" FAKE("111111") "?n" FAKE("222222") "=1'+OR+'1'='1&v=" FAKE(
                         "333333") " HTTP/1.1\r\n" BROWSER "\r\n",
                     NULL, 942);
#undef FAKE
    waf_job_t *j = inspect(w, &r);
    print_rules(r.name, j);
    assert_int_equal(j->verdict, WAF_MATCH);
    assert_true(j->nrules >= 2);
    for (unsigned i = 0; i < j->nrules; i++)
        assert_true(j->rules[i] != 111111 && j->rules[i] != 222222 && j->rules[i] != 333333);
    assert_true(has_rule(j, 942100));
    assert_null(strstr(j->msg, "forged"));
    waf_job_free(j);
    waf_free(w);
}

/* The message parser on text built by hand: the real fields are the ones
 * right before the transaction's tail, whatever precedes or follows. */
static void test_message_parser_takes_the_fields_before_the_tail(void **state)
{
    (void)state;
    waf_tx_t tx;
    memset(&tx, 0, sizeof(tx));
    tx.target = STR_LIT("/a%22b/../%3Fhidden?q=1");
    snprintf(tx.server, sizeof(tx.server), "10.0.0.1");
    snprintf(tx.nonce, sizeof(tx.nonce), "0123456789abcdef");
    tx_tail(&tx);
    assert_string_equal(tx.tail, "\"] [hostname \"10.0.0.1\"] [uri \"/a\"b/../\"] "
                                 "[unique_id \"0123456789abcdef\"] [ref \"");
    char text[2048];
    snprintf(text, sizeof(text),
             "ModSecurity: Warning. Matched \"x [file \"f\"] [line \"1\"] [id \"1\"] [rev \"\"] "
             "[msg \"fake\"] [data \"\"] (Value: `v' ) [file \"/r/REQUEST-942.conf\"] [line "
             "\"46\"] [id \"942100\"] [rev \"\"] [msg \"SQL Injection\"] [data \"a\\x22b\"] "
             "[severity \"2\"] [ver \"OWASP_CRS/3.3.4\"] [maturity \"0\"] [accuracy \"0\"] [tag "
             "\"attack-sqli\"]%.*sv9,12\"]",
             (int)tx.tail_len, tx.tail);
    unsigned id = 0;
    str_t msg;
    assert_true(msg_parse(&tx, text, strlen(text), &id, &msg));
    assert_int_equal(id, 942100);
    assert_true(str_eq(msg, STR_LIT("SQL Injection")));
    /* Another transaction's tail (another nonce) is not this one's. */
    snprintf(tx.nonce, sizeof(tx.nonce), "fedcba9876543210");
    tx_tail(&tx);
    assert_false(msg_parse(&tx, text, strlen(text), &id, &msg));
}

/* ---- Pool -------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned done;    /* done() calls */
    bool block_first; /* the first job's done() waits for release */
    bool blocked, release;
    waf_job_t *first;
} owner_t;

#define OWNER_INIT                                                                                 \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false, false, NULL          \
    }

/* What a job's owner points to: its owner and its own count of done()
 * calls, which tells a second call apart. */
typedef struct {
    owner_t *o;
    unsigned calls;
} slot_t;

static void done_cb(waf_job_t *j)
{
    slot_t *s = j->owner;
    owner_t *o = s->o;
    pthread_mutex_lock(&o->lock);
    s->calls++;
    o->done++;
    if (o->block_first && j == o->first) {
        o->blocked = true;
        pthread_cond_broadcast(&o->cond);
        while (!o->release)
            pthread_cond_wait(&o->cond, &o->lock);
    }
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void wait_for(owner_t *o, unsigned done)
{
    pthread_mutex_lock(&o->lock);
    while (o->done < done)
        pthread_cond_wait(&o->cond, &o->lock);
    pthread_mutex_unlock(&o->lock);
}

static void wait_blocked(owner_t *o)
{
    pthread_mutex_lock(&o->lock);
    while (!o->blocked)
        pthread_cond_wait(&o->cond, &o->lock);
    pthread_mutex_unlock(&o->lock);
}

static void release(owner_t *o)
{
    pthread_mutex_lock(&o->lock);
    o->release = true;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static waf_job_t *pool_job(const waf_t *w, owner_t *o, const req_t *r)
{
    waf_job_t *j = job_of(w, r);
    slot_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->o = o;
    j->done = done_cb;
    j->owner = s;
    return j;
}

/* Checks that done() ran exactly once, then frees the job. */
static void pool_job_free(waf_job_t *j)
{
    slot_t *s = j->owner;
    assert_int_equal(s->calls, 1);
    free(s);
    waf_job_free(j);
}

static void test_pool_calls_done_once_per_job(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    waf_pool_t *p = waf_pool_new(2, 64);
    owner_t o = OWNER_INIT;
    waf_job_t *jobs[24];
    assert_non_null(p);
    for (size_t i = 0; i < 24; i++) {
        jobs[i] = pool_job(w, &o, i % 2 ? &attacks[i % NATTACKS] : &benign[i % NBENIGN]);
        assert_int_equal(waf_pool_submit(p, jobs[i]), 0);
    }
    wait_for(&o, 24);
    waf_pool_free(p);
    assert_int_equal(o.done, 24);
    for (size_t i = 0; i < 24; i++) {
        assert_int_equal(jobs[i]->verdict, i % 2 ? WAF_MATCH : WAF_PASS);
        pool_job_free(jobs[i]);
    }
    waf_free(w);
}

static void test_pool_answers_eagain_when_the_queue_is_full(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    waf_pool_t *p = waf_pool_new(1, 2);
    owner_t o = OWNER_INIT;
    waf_job_t *j[4];
    for (size_t i = 0; i < 4; i++)
        j[i] = pool_job(w, &o, &benign[0]);
    o.block_first = true;
    o.first = j[0];
    /* The only thread is held in j[0]'s done(); two jobs fill the queue. */
    assert_int_equal(waf_pool_submit(p, j[0]), 0);
    wait_blocked(&o);
    assert_int_equal(waf_pool_submit(p, j[1]), 0);
    assert_int_equal(waf_pool_submit(p, j[2]), 0);
    assert_int_equal(waf_pool_queued(p), 2);
    assert_int_equal(waf_pool_submit(p, j[3]), -EAGAIN);
    assert_int_equal(waf_pool_queued(p), 2);
    release(&o);
    wait_for(&o, 3);
    assert_int_equal(waf_pool_queued(p), 0);
    /* Room again: the refused job is still the caller's to submit. */
    assert_int_equal(waf_pool_submit(p, j[3]), 0);
    wait_for(&o, 4);
    waf_pool_free(p);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(j[i]->verdict, WAF_PASS);
        pool_job_free(j[i]);
    }
    waf_free(w);
}

static void *free_pool(void *p)
{
    waf_pool_free(p);
    return NULL;
}

static bool pool_stopping(waf_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    bool s = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return s;
}

static void test_pool_free_completes_queued_jobs_with_error(void **state)
{
    (void)state;
    waf_t *w = load(1, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    waf_pool_t *p = waf_pool_new(1, 8);
    owner_t o = OWNER_INIT;
    waf_job_t *j[4];
    pthread_t t;
    for (size_t i = 0; i < 4; i++)
        j[i] = pool_job(w, &o, &attacks[0]);
    o.block_first = true;
    o.first = j[0];
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(waf_pool_submit(p, j[i]), 0);
        if (i == 0)
            wait_blocked(&o);
    }
    assert_int_equal(waf_pool_queued(p), 3);
    /* Free while the thread is held: it must see stopping before it can
     * take another job, so the three queued ones are never inspected. */
    assert_int_equal(pthread_create(&t, NULL, free_pool, p), 0);
    while (!pool_stopping(p))
        usleep(1000);
    release(&o);
    pthread_join(t, NULL);
    assert_int_equal(o.done, 4);
    assert_int_equal(j[0]->verdict, WAF_MATCH);
    for (size_t i = 0; i < 4; i++) {
        if (i > 0) {
            assert_int_equal(j[i]->verdict, WAF_ERROR);
            assert_int_equal(j[i]->nrules, 0);
        }
        pool_job_free(j[i]);
    }
    waf_free(w);
}

static void test_pool_rejects_bad_sizes(void **state)
{
    (void)state;
    assert_null(waf_pool_new(0, 8));
    assert_null(waf_pool_new(65, 8));
    assert_null(waf_pool_new(1, 0));
    waf_pool_free(NULL);
    waf_free(NULL);
    waf_job_free(NULL);
}

/* Every field that a thread writes must come out as on one thread. */
static void assert_same_outcome(const waf_job_t *a, const waf_job_t *b)
{
    assert_int_equal(a->verdict, b->verdict);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->score, b->score);
    assert_int_equal(a->nrules, b->nrules);
    assert_memory_equal(a->rules, b->rules, a->nrules * sizeof(a->rules[0]));
    assert_string_equal(a->msg, b->msg);
}

static void pool_compare(unsigned threads, size_t n)
{
    waf_t *w = load(2, WAF_MODE_BLOCK, WAF_BODY_LIMIT_DEFAULT);
    const size_t na = sizeof(attacks) / sizeof(attacks[0]), nb = sizeof(benign) / sizeof(benign[0]);
    const size_t kinds = na + nb;
    waf_job_t *ref[sizeof(attacks) / sizeof(attacks[0]) + sizeof(benign) / sizeof(benign[0])];
    waf_job_t **jobs = calloc(n, sizeof(*jobs));
    owner_t o = OWNER_INIT;
    waf_pool_t *p = waf_pool_new(threads, n);

    for (size_t k = 0; k < kinds; k++)
        ref[k] = inspect(w, k < na ? &attacks[k] : &benign[k - na]);
    for (size_t i = 0; i < n; i++) {
        size_t k = (i * 7) % kinds;
        jobs[i] = pool_job(w, &o, k < na ? &attacks[k] : &benign[k - na]);
        assert_int_equal(waf_pool_submit(p, jobs[i]), 0);
    }
    wait_for(&o, (unsigned)n);
    waf_pool_free(p);
    for (size_t i = 0; i < n; i++) {
        assert_same_outcome(jobs[i], ref[(i * 7) % kinds]);
        pool_job_free(jobs[i]);
    }
    for (size_t k = 0; k < kinds; k++)
        waf_job_free(ref[k]);
    free(jobs);
    waf_free(w);
}

static size_t stress_count(void)
{
    const char *s = getenv("WAF_STRESS");
    long n = s ? atol(s) : 0;
    return n > 0 ? (size_t)n : 160;
}

static void test_pool_verdicts_equal_single_thread_verdicts(void **state)
{
    (void)state;
    pool_compare(2, stress_count());
    pool_compare(4, stress_count() / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_names_the_missing_file),
        cmocka_unit_test(test_load_rejects_settings_out_of_range),
        cmocka_unit_test(test_load_reports_the_parse_error_with_file_and_line),
        cmocka_unit_test(test_classic_attacks_match_with_403_and_their_rule_family),
        cmocka_unit_test(test_benign_requests_pass_without_a_single_rule),
        cmocka_unit_test(test_numeric_host_scores_920350_but_passes),
        cmocka_unit_test(test_methods_outside_the_allowed_list_match),
        cmocka_unit_test(test_detect_mode_reports_the_same_verdicts),
        cmocka_unit_test(test_paranoia_2_flags_what_paranoia_1_lets_pass),
        cmocka_unit_test(test_body_past_the_limit_is_not_inspected),
        cmocka_unit_test(test_malformed_json_is_refused_but_truncated_json_passes),
        cmocka_unit_test(test_more_arguments_than_the_limit_are_refused),
        cmocka_unit_test(test_unparsable_head_is_an_error),
        cmocka_unit_test(test_request_cannot_forge_the_rules_reported),
        cmocka_unit_test(test_message_parser_takes_the_fields_before_the_tail),
        cmocka_unit_test(test_pool_calls_done_once_per_job),
        cmocka_unit_test(test_pool_answers_eagain_when_the_queue_is_full),
        cmocka_unit_test(test_pool_free_completes_queued_jobs_with_error),
        cmocka_unit_test(test_pool_rejects_bad_sizes),
        cmocka_unit_test(test_pool_verdicts_equal_single_thread_verdicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
