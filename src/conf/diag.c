/* Diagnostics of one load: every error is collected with its position and
 * written at the end, sorted, so an operator sees all of a file's mistakes
 * at once and in the order they appear, whichever pass found them (the
 * YAML reader, the key walk, the checks across keys). Also the helpers
 * that make messages readable: quoting values safely and guessing what a
 * mistyped key meant. */
#include "conf/conf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void conf_diag_init(conf_diag_t *d, const char *file)
{
    memset(d, 0, sizeof(*d));
    d->file = file;
}

void conf_diag_deinit(conf_diag_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].msg);
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

void conf_diag_vadd(conf_diag_t *d, conf_mark_t m, const char *fmt, va_list ap)
{
    char *msg = NULL;

    if (d->n == CONF_MAX_ERRORS)
        goto drop;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        conf_diag_entry_t *v = realloc(d->v, cap * sizeof(*v));
        if (!v)
            goto drop;
        d->v = v;
        d->cap = cap;
    }
    if (vasprintf(&msg, fmt, ap) < 0)
        goto drop;
    d->v[d->n] = (conf_diag_entry_t){.mark = m, .seq = d->n, .msg = msg};
    d->n++;
    return;
drop:
    /* Still counted, so a load that ran out of memory while reporting
     * cannot look like a success. */
    d->dropped++;
}

void conf_diag_add(conf_diag_t *d, conf_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_diag_vadd(d, m, fmt, ap);
    va_end(ap);
}

static int entry_cmp(const void *a, const void *b)
{
    const conf_diag_entry_t *x = a, *y = b;
    if (x->mark.line != y->mark.line)
        return x->mark.line < y->mark.line ? -1 : 1;
    if (x->mark.col != y->mark.col)
        return x->mark.col < y->mark.col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void conf_diag_write(conf_diag_t *d, FILE *errs)
{
    if (d->n)
        qsort(d->v, d->n, sizeof(d->v[0]), entry_cmp);
    if (!errs)
        return;
    for (size_t i = 0; i < d->n; i++) {
        const conf_diag_entry_t *e = &d->v[i];
        if (e->mark.line > 0)
            fprintf(errs, "%s:%d:%d: %s\n", d->file, e->mark.line, e->mark.col, e->msg);
        else
            fprintf(errs, "%s: %s\n", d->file, e->msg);
    }
    if (d->dropped)
        fprintf(errs, "%s: %zu more error%s not shown\n", d->file, d->dropped,
                d->dropped == 1 ? "" : "s");
}

void conf_quote(char *out, size_t n, const char *s, size_t len)
{
    const size_t shown = 60;
    size_t o = 0;

    if (n < 2) {
        if (n)
            out[0] = 0;
        return;
    }
    /* Room is kept for the longest escape, "...", the quote and the NUL. */
    out[o++] = '\'';
    for (size_t i = 0; i < len && o + 10 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == shown) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o++] = '\'';
    out[o] = 0;
}

size_t conf_edit_distance(const char *a, size_t alen, const char *b, size_t blen, size_t cap)
{
    /* Keys are short; longer words cannot be a typo of one anyway. */
    enum { MAXW = 64 };
    size_t d[3][MAXW + 1];
    size_t *pp = d[0], *prev = d[1], *cur = d[2];

    if (alen > MAXW || blen > MAXW)
        return alen == blen && memcmp(a, b, alen) == 0 ? 0 : cap + 1;
    for (size_t j = 0; j <= blen; j++)
        prev[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        size_t rowmin;
        cur[0] = rowmin = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = prev[j - 1] + cost;
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
            if (v < rowmin)
                rowmin = v;
        }
        if (rowmin > cap)
            return cap + 1;
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[blen] > cap ? cap + 1 : prev[blen];
}

const char *conf_suggest(const char *word, size_t len, const char *const *cands, size_t n)
{
    /* One edit for short words, two for longer ones: "listners" finds
     * "listeners", but "foo" does not find "log". */
    size_t cap = len <= 4 ? 1 : 2;
    const char *best = NULL;
    size_t bestd = cap + 1;

    for (size_t i = 0; i < n; i++) {
        size_t d = conf_edit_distance(word, len, cands[i], strlen(cands[i]), cap);
        if (d < bestd) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}
