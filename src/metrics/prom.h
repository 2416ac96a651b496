/* Prometheus text exposition format, version 0.0.4: a writer.
 *
 * The admin's GET /metrics handler builds one page per scrape: for each
 * metric family one prom_family() call (the # HELP and # TYPE lines), then
 * its samples. Output accumulates in a buffer that grows up to a maximum fixed
 * at creation (STYLE 9). The first failure (the page outgrows the maximum,
 * allocation fails, a family is opened twice) is sticky: every later call is
 * a no-op returning the same error, so a handler may write the whole page and
 * check prom_error() once; the admin answers 500 rather than a truncated page.
 *
 * Names (metric and label) come from static tables and are checked with
 * assert(): a bad name is a programming error, not an input error. Label
 * values and HELP text are escaped here; label values must be UTF-8.
 *
 * Thread-safety: a prom_t belongs to the thread writing it. */
#ifndef SURETY_METRICS_PROM_H
#define SURETY_METRICS_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

typedef struct prom prom_t;

typedef enum {
    PROM_COUNTER,
    PROM_GAUGE,
    PROM_HISTOGRAM,
    PROM_UNTYPED,
} prom_type_t;

typedef struct {
    const char *key;   /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
    const char *value; /* any UTF-8; escaped by the writer */
} prom_label_t;

/* Label arguments from a list of pairs:
 *   prom_counter(p, "surety_requests_total", PROM_LABELS({"pool", name}, {"code", "200"}), n);
 * expands to the array and its length. Without labels pass NULL, 0. */
#define PROM_LABELS(...)                                                                           \
    ((const prom_label_t[]){__VA_ARGS__}),                                                         \
        (sizeof((const prom_label_t[]){__VA_ARGS__}) / sizeof(prom_label_t))

/* Content-Type of the output. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A writer whose output may grow to max_bytes. Allocates lazily. Who frees:
 * the caller, with prom_free(); NULL when out of memory. */
prom_t *prom_new(size_t max_bytes);
void prom_free(prom_t *p);
/* Empties the output and forgets the families and the error, keeping the
 * memory: one writer can serve scrape after scrape. */
void prom_reset(prom_t *p);

/* Opens a family: "# HELP name help" and "# TYPE name type". Calling it again
 * for the family that is open is a no-op; reopening an earlier family would
 * split it, which the format forbids: -EEXIST (sticky). Counter names should
 * end in _total (promtool). help is required (escaped here).
 * 0, -ENOSPC (maximum reached), -ENOMEM, -EEXIST. */
int prom_family(prom_t *p, const char *name, prom_type_t type, const char *help);

/* Samples of the open family; name must be the family's name (asserted).
 * Each returns 0 or the sticky error. */
int prom_counter(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
                 uint64_t value);
int prom_counter_double(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
                        double value);
int prom_gauge(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
               double value);
int prom_gauge_u64(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
                   uint64_t value);

/* One histogram series: name_bucket{...,le="b"} for each bound (strictly
 * increasing) and le="+Inf", then name_sum and name_count. bucket_counts[i]
 * counts observations in (bounds[i-1], bounds[i]] only: the writer
 * accumulates. count includes the observations above the last bound; if it
 * is lower than the sum of the buckets (a racy snapshot of live counters) the
 * sum is used, so the output stays a valid histogram. A last bound of +Inf is
 * allowed and not repeated. labels must not contain "le". */
int prom_histogram(prom_t *p, const char *name, const prom_label_t *labels, size_t nlabels,
                   const double *bounds, const uint64_t *bucket_counts, size_t nbounds, double sum,
                   uint64_t count);

/* 0, or the first error. */
int prom_error(const prom_t *p);
/* The output so far; valid until the next call on p. */
str_t prom_str(const prom_t *p);

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
bool prom_name_valid(const char *name);
/* Formats a value as Prometheus parses it: integers without a fraction,
 * otherwise the shortest text that reads back as the same double; "+Inf",
 * "-Inf", "NaN". out must hold PROM_DOUBLE_MAX bytes; returns the length. */
#define PROM_DOUBLE_MAX 32
size_t prom_format_double(double v, char *out);

#endif
