/* Prometheus text exposition writer: see prom.h.
 *
 * The output is one contiguous buffer that doubles up to its maximum; a
 * scrape page is written once and sent as is, so nothing is cheaper than a
 * flat array. The families already written are remembered as (hash, offset,
 * length) where the offset points at the name inside the output itself (in
 * the "# HELP" line), so remembering them copies no string. */
#include "metrics/prom.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    size_t off; /* of the name in the output */
    size_t len;
} family_t;

struct prom {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int err; /* sticky: 0 or the first -errno */

    family_t *fams;
    size_t nfams;
    size_t cfams;
    bool open; /* fams[nfams - 1] is the open family */
    prom_type_t open_type;
};

static const char *const type_names[] = {
    [PROM_COUNTER] = "counter",
    [PROM_GAUGE] = "gauge",
    [PROM_HISTOGRAM] = "histogram",
    [PROM_UNTYPED] = "untyped",
};

prom_t *prom_new(size_t max_bytes)
{
    prom_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->max = max_bytes;
    return p;
}

void prom_free(prom_t *p)
{
    if (!p)
        return;
    free(p->data);
    free(p->fams);
    free(p);
}

void prom_reset(prom_t *p)
{
    p->len = 0;
    p->err = 0;
    p->nfams = 0;
    p->open = false;
}

int prom_error(const prom_t *p)
{
    return p->err;
}

str_t prom_str(const prom_t *p)
{
    return str_from(p->data, p->len);
}

static int fail(prom_t *p, int err)
{
    if (!p->err)
        p->err = err;
    return p->err;
}

/* Room for n more bytes, growing by doubling up to the maximum. */
static bool reserve(prom_t *p, size_t n)
{
    if (p->err)
        return false;
    if (n > p->max - p->len) {
        fail(p, -ENOSPC);
        return false;
    }
    if (p->len + n <= p->cap)
        return true;
    size_t cap = p->cap ? p->cap : 4096;
    while (cap < p->len + n)
        cap = cap > p->max / 2 ? p->max : cap * 2;
    if (cap > p->max)
        cap = p->max;
    char *d = realloc(p->data, cap);
    if (!d) {
        fail(p, -ENOMEM);
        return false;
    }
    p->data = d;
    p->cap = cap;
    return true;
}

static void put(prom_t *p, const char *s, size_t n)
{
    if (n && reserve(p, n)) {
        memcpy(p->data + p->len, s, n);
        p->len += n;
    }
}

static void puts_(prom_t *p, const char *s)
{
    put(p, s, strlen(s));
}

static void put_u64(prom_t *p, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    put(p, tmp, (size_t)n);
}

static void put_double(prom_t *p, double v)
{
    char tmp[PROM_DOUBLE_MAX];
    put(p, tmp, prom_format_double(v, tmp));
}

/* Copies s with backslash and newline escaped, and the double quote too
 * inside a label value (quote); runs of ordinary bytes go in one copy. */
static void put_escaped(prom_t *p, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        else
            continue;
        put(p, run, (size_t)(s - run));
        put(p, esc, 2);
        run = s + 1;
    }
    put(p, run, (size_t)(s - run));
}

bool prom_name_valid(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *c = name; *c; c++) {
        bool alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' || *c == ':';
        if (!alpha && !(c != name && *c >= '0' && *c <= '9'))
            return false;
    }
    return true;
}

static bool label_name_valid(const char *name)
{
    return prom_name_valid(name) && !strchr(name, ':') && strncmp(name, "__", 2) != 0;
}

size_t prom_format_double(double v, char *out)
{
    int n;
    if (isnan(v))
        n = snprintf(out, PROM_DOUBLE_MAX, "NaN");
    else if (isinf(v))
        n = snprintf(out, PROM_DOUBLE_MAX, v > 0 ? "+Inf" : "-Inf");
    else if (v == trunc(v) && fabs(v) < 1e15)
        n = snprintf(out, PROM_DOUBLE_MAX, "%.0f", v);
    else {
        /* The shortest %g that reads back exactly: "0.1", not the
         * "0.10000000000000001" of %.17g, so le labels stay readable. */
        for (int prec = 1;; prec++) {
            n = snprintf(out, PROM_DOUBLE_MAX, "%.*g", prec, v);
            if (prec >= 17 || strtod(out, NULL) == v)
                break;
        }
    }
    return (size_t)n;
}

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static bool family_is(const prom_t *p, const family_t *f, const char *name, size_t n, uint64_t h)
{
    return f->hash == h && f->len == n && memcmp(p->data + f->off, name, n) == 0;
}

static int remember_family(prom_t *p, uint64_t h, size_t off, size_t n)
{
    if (p->nfams == p->cfams) {
        size_t c = p->cfams ? p->cfams * 2 : 32;
        family_t *f = realloc(p->fams, c * sizeof(*f));
        if (!f)
            return fail(p, -ENOMEM);
        p->fams = f;
        p->cfams = c;
    }
    p->fams[p->nfams++] = (family_t){.hash = h, .off = off, .len = n};
    return 0;
}

int prom_family(prom_t *p, const char *name, prom_type_t type, const char *help)
{
    assert(prom_name_valid(name));
    assert(type >= PROM_COUNTER && type <= PROM_UNTYPED);
    assert(help);
    if (p->err)
        return p->err;

    size_t n = strlen(name);
    uint64_t h = hash_name(name, n);
    if (p->open && family_is(p, &p->fams[p->nfams - 1], name, n, h)) {
        assert(type == p->open_type);
        return 0;
    }
    for (size_t i = 0; i < p->nfams; i++)
        if (family_is(p, &p->fams[i], name, n, h))
            return fail(p, -EEXIST);

    p->open = false;
    puts_(p, "# HELP ");
    size_t off = p->len;
    put(p, name, n);
    put(p, " ", 1);
    put_escaped(p, help, false);
    puts_(p, "\n# TYPE ");
    put(p, name, n);
    put(p, " ", 1);
    puts_(p, type_names[type]);
    put(p, "\n", 1);
    if (p->err || remember_family(p, h, off, n) < 0)
        return p->err;
    p->open = true;
    p->open_type = type;
    return 0;
}

/* A sample belongs to the open family, of the type its writer implies. */
static bool sample_ok(const prom_t *p, const char *name, prom_type_t type)
{
    if (!p->open)
        return false;
    const family_t *f = &p->fams[p->nfams - 1];
    return p->open_type == type && strlen(name) == f->len &&
           memcmp(p->data + f->off, name, f->len) == 0;
}

/* name[suffix]{k="v",...[,le="le"]} -- the value follows. */
static void put_series(prom_t *p, const char *name, const char *suffix, const prom_label_t *labels,
                       size_t nlabels, const char *le)
{
    puts_(p, name);
    if (suffix)
        puts_(p, suffix);
    if (nlabels == 0 && !le)
        return;
    put(p, "{", 1);
    for (size_t i = 0; i < nlabels; i++) {
        assert(label_name_valid(labels[i].key));
        assert(labels[i].value);
        if (i)
            put(p, ",", 1);
        puts_(p, labels[i].key);
        put(p, "=\"", 2);
        put_escaped(p, labels[i].value, true);
        put(p, "\"", 1);
    }
    if (le) {
        if (nlabels)
            put(p, ",", 1);
        puts_(p, "le=\"");
        puts_(p, le);
        put(p, "\"", 1);
    }
    put(p, "}", 1);
}

static int sample_u64(prom_t *p, prom_type_t type, const char *name, const prom_label_t *labels,
                      size_t nlabels, uint64_t v)
{
    assert(sample_ok(p, name, type) || p->err);
    put_series(p, name, NULL, labels, nlabels, NULL);
    put(p, " ", 1);
    put_u64(p, v);
    put(p, "\n", 1);
    return p->err;
}

static int sample_double(prom_t *p, prom_type_t type, const char *name, const prom_label_t *labels,
                         size_t nlabels, double v)
{
    assert(sample_ok(p, name, type) || p->err);
    put_series(p, name, NULL, labels, nlabels, NULL);
    put(p, " ", 1);
    put_double(p, v);
    put(p, "\n", 1);
    return p->err;
}

int prom_counter(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
                 uint64_t value)
{
    return sample_u64(p, PROM_COUNTER, name, labels, nlabels, value);
}

int prom_counter_double(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
                        double value)
{
    return sample_double(p, PROM_COUNTER, name, labels, nlabels, value);
}

int prom_gauge(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
               double value)
{
    return sample_double(p, PROM_GAUGE, name, labels, nlabels, value);
}

int prom_gauge_u64(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
                   uint64_t value)
{
    return sample_u64(p, PROM_GAUGE, name, labels, nlabels, value);
}

int prom_histogram(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
                   const double *bounds, const uint64_t *bucket_counts, size_t nbounds, double sum,
                   uint64_t count)
{
    assert(sample_ok(p, name, PROM_HISTOGRAM) || p->err);
    for (size_t i = 0; i < nlabels; i++)
        assert(strcmp(labels[i].key, "le") != 0);

    uint64_t cum = 0;
    char le[PROM_DOUBLE_MAX];
    for (size_t i = 0; i < nbounds; i++) {
        assert(!isnan(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]));
        if (isinf(bounds[i]) && bounds[i] > 0)
            break; /* the +Inf bucket below holds these */
        cum += bucket_counts[i];
        prom_format_double(bounds[i], le);
        put_series(p, name, "_bucket", labels, nlabels, le);
        put(p, " ", 1);
        put_u64(p, cum);
        put(p, "\n", 1);
    }
    if (nbounds && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0)
        cum += bucket_counts[nbounds - 1];
    if (count < cum)
        count = cum;
    put_series(p, name, "_bucket", labels, nlabels, "+Inf");
    put(p, " ", 1);
    put_u64(p, count);
    put(p, "\n", 1);

    put_series(p, name, "_sum", labels, nlabels, NULL);
    put(p, " ", 1);
    put_double(p, sum);
    put(p, "\n", 1);

    put_series(p, name, "_count", labels, nlabels, NULL);
    put(p, " ", 1);
    put_u64(p, count);
    put(p, "\n", 1);
    return p->err;
}
