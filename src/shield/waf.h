/* The WAF: request inspection with libmodsecurity 3 and the OWASP Core Rule
 * Set (issue 4, request layer), on a small pool of threads of its own.
 *
 * ModSecurity with the CRS costs hundreds of microseconds to milliseconds
 * per request, far too much for a gateway event loop, so inspection never
 * runs there. A worker copies what the WAF needs (the request head as
 * received and a bounded prefix of the body) into one waf_job_t, submits it
 * to a waf_pool_t and gets the job back through job->done() on a WAF thread;
 * forwarding that back to its own loop is the worker's business, this module
 * knows nothing about event loops. The pool's queue is bounded and
 * waf_pool_submit() never blocks: a full queue is the caller's 503.
 *
 * A waf_t is one loaded rule set (the CRS with Surety's settings), built by
 * waf_load() and read-only afterwards: any number of threads inspect with it
 * at once (see waf.c for what was checked in libmodsecurity 3.0.9 to say
 * so). Loading is slow (about 0.1 s for the CRS) and serialised inside
 * this module, because ModSecurity's rule parser is not reentrant even
 * across rule sets. A reload loads a new waf_t, points new jobs at it and
 * frees the old one once no job refers to it.
 *
 * Verdicts: the CRS runs in anomaly scoring mode: attack rules add to an
 * inbound score and rule 949110 denies (403) at the end of phase 2 when the
 * score reaches the threshold. Both modes run the rules the same way and
 * report the same verdict; in WAF_MODE_DETECT the caller logs it and lets
 * the request pass. Surety adds two refusals (400) for what the rules could
 * not see: a body its parser rejected (malformed JSON, XML, multipart;
 * rule 200002) unless only a prefix was given, and more than 1000
 * arguments (200007). Responses are not inspected.
 *
 * Cost (bench/waf_bench.c, release build, one core): about 0.9 ms per
 * request at paranoia 1, 1.1 ms at paranoia 2, benign or attack alike;
 * much more for requests with many arguments or cookies (a 30 KB Cookie
 * header of 3000 cookies: 0.26 s), which the gateway's header limits
 * bound. */
#ifndef SURETY_SHIELD_WAF_H
#define SURETY_SHIELD_WAF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sock.h"

typedef enum {
    WAF_MODE_BLOCK,  /* a MATCH is answered with its status */
    WAF_MODE_DETECT, /* a MATCH is reported, the request passes */
} waf_mode_t;

/* Debian's layout (packages modsecurity-crs 3.3.x): the rules under
 * /usr/share, the settings (and the operator's exclusions) under /etc. */
#define WAF_RULES_DEFAULT "/usr/share/modsecurity-crs"
#define WAF_SETUP_DEFAULT "/etc/modsecurity/crs/crs-setup.conf"
/* The CRS allows GET HEAD POST OPTIONS; an API gateway also carries these.
 * Anything else scores 5 (rule 911100), which alone reaches threshold 5. */
#define WAF_METHODS_DEFAULT "GET HEAD POST OPTIONS PUT PATCH DELETE"
#define WAF_THRESHOLD_DEFAULT 5
#define WAF_BODY_LIMIT_DEFAULT (128 * 1024)

typedef struct {
    /* CRS root: its rules/REQUEST-*.conf are loaded (never RESPONSE-*);
     * NULL for WAF_RULES_DEFAULT. */
    const char *rules;
    /* crs-setup.conf, NULL for WAF_SETUP_DEFAULT. When
     * REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf sits next to it (Debian
     * ships an empty one there), it is loaded too: that is where an
     * operator writes exclusions for false positives. */
    const char *setup;
    /* 1..4: tx.paranoia_level and tx.executing_paranoia_level (the CRS
     * 3.3 names; CRS 4 calls them blocking_/detection_paranoia_level). */
    unsigned paranoia;
    /* Inbound anomaly score at which 949110 denies, >= 1 (CRS: 5, the
     * score of one critical rule). */
    unsigned anomaly_threshold;
    waf_mode_t mode;
    /* Bytes of request body inspected (SecRequestBodyLimit with
     * ProcessPartial); jobs copy no more than this. 0: bodies are not
     * inspected at all. */
    size_t body_limit;
    /* tx.allowed_methods, space-separated; NULL for WAF_METHODS_DEFAULT. */
    const char *methods;
} waf_conf_t;

/* One loaded rule set; immutable after waf_load(). */
typedef struct waf waf_t;

/* Loads the CRS with the settings of c. Returns NULL on failure with a
 * readable reason in err: "PATH: No such file or directory", "paranoia: 7
 * is not in 1..4", or ModSecurity's parse error with file and line. Safe to
 * call from any thread (loads are serialised); takes about 0.1 s and 14 MiB
 * (the first load 18 MiB, with the engine). The caller frees the result
 * with waf_free() once no job refers to it. */
waf_t *waf_load(const waf_conf_t *c, char *err, size_t errlen);
void waf_free(waf_t *w);

waf_mode_t waf_mode(const waf_t *w);
size_t waf_body_limit(const waf_t *w);

enum {
    WAF_PASS,  /* nothing reached the threshold */
    WAF_MATCH, /* the rule set would block: status says with what */
    WAF_ERROR, /* not inspected (unparsable head, ModSecurity failure, pool
                * shut down): the caller's policy decides, fail open or not */
};

#define WAF_MAX_RULES 16

typedef struct waf_job {
    /* In. waf_job_new() copies head and body into the job's own
     * allocation; the caller sets client and local afterwards. */
    const waf_t *waf;
    const char *head; /* the request head exactly as received, final CRLF
                       * included, already accepted by http_parse_request() */
    size_t head_len;
    const char *body; /* the first body bytes (decoded, for a chunked request) */
    size_t body_len;
    bool body_truncated; /* more body followed, not inspected */
    sock_addr_t client;  /* zeroed: inspected as 0.0.0.0 */
    sock_addr_t local;

    /* Out, written before done(). */
    int verdict;                   /* WAF_PASS, WAF_MATCH, WAF_ERROR */
    int status;                    /* of a MATCH: 403 (400: unparsable body); 0 otherwise */
    unsigned rules[WAF_MAX_RULES]; /* IDs of the rules that matched, in order,
                                    * each once: attack rules (942100...),
                                    * then 949110 when it blocked */
    unsigned nrules;               /* capped at WAF_MAX_RULES */
    unsigned score;                /* inbound anomaly score of a MATCH, else 0 */
    char msg[160];                 /* msg of the first attack rule that matched */
    uint64_t elapsed_us;           /* time spent in waf_inspect() */

    /* Completion: done() is called exactly once per submitted job, on a
     * WAF thread (or, for jobs still queued, on the thread calling
     * waf_pool_free()). It must be quick and must not block: it hands the
     * job back to its owner, who frees it. */
    void (*done)(struct waf_job *job);
    void *owner;
    void *tag;            /* the owner's, untouched here (the gateway: the client) */
    struct waf_job *next; /* private to the pool */
} waf_job_t;

/* A job for w, with copies of head[0, head_len) and of at most
 * waf_body_limit(w) bytes of body[0, body_len); body_truncated is set when
 * truncated is or when body_len is over the limit. Everything else is
 * zero. One malloc; NULL when out of memory. The caller owns the job until
 * it submits it, and again from done() on; it frees it with waf_job_free(). */
waf_job_t *waf_job_new(const waf_t *w, const char *head, size_t head_len, const char *body,
                       size_t body_len, bool truncated);
void waf_job_free(waf_job_t *j);

/* Inspects j on the calling thread and fills its out fields (done() is not
 * called). This is what a pool thread runs; tests and tools may call it
 * directly. Takes milliseconds: never on an event loop. */
void waf_inspect(waf_job_t *j);

typedef struct waf_pool waf_pool_t;

/* Starts threads (1..64) WAF threads, named "waf/N", with every signal
 * blocked; at most queue_max (>= 1) jobs wait for one. NULL on failure
 * (bad arguments, out of memory, pthread_create failing). The caller frees
 * it with waf_pool_free(). */
waf_pool_t *waf_pool_new(unsigned threads, size_t queue_max);

/* Queues j (j->waf and j->done set). Never blocks. 0: j belongs to the
 * pool until done(j); -EAGAIN: queue_max jobs are already waiting, j is
 * still the caller's (who answers 503 and counts it). Any thread. */
int waf_pool_submit(waf_pool_t *p, waf_job_t *j) __attribute__((warn_unused_result));

/* Jobs waiting for a thread (those being inspected not included). */
size_t waf_pool_queued(waf_pool_t *p);

/* Stops the threads: jobs being inspected finish normally, jobs still
 * queued complete with WAF_ERROR on the calling thread, so done() is called
 * exactly once for every submitted job before this returns. Nothing may be
 * submitted once it has started. Accepts NULL. */
void waf_pool_free(waf_pool_t *p);

#endif
