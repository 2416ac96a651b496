/* libFuzzer target for the chunked body scanner. The input is scanned whole,
 * then again in pieces whose sizes come from a generator seeded by the input,
 * then (for small inputs) one byte at a time: the scanner is resumable at
 * any byte, so every way of feeding it must give the same result, the same
 * end and the same decoded length. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

typedef struct {
    int rc;
    http_reject_t why;
    size_t used;
    uint64_t total;
} outcome_t;

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Feeds p[0, len) in pieces: whole when seed is 0, single bytes when
 * seed is 1, random sizes otherwise. */
static outcome_t run(const char *p, size_t len, uint64_t seed)
{
    http_chunked_t c;
    outcome_t o = {-EAGAIN, HTTP_REJECT_NONE, 0, 0};
    size_t off = 0;

    http_chunked_init(&c, 128, 512);
    do {
        size_t n = len - off;
        if (seed == 1 && n > 1)
            n = 1;
        else if (seed > 1 && n > 1)
            n = 1 + next(&seed) % (n < 32 ? n : 32);
        size_t used = SIZE_MAX;
        o.rc = http_chunked_scan(&c, p + off, n, &used, &o.why);
        if (o.rc == -EAGAIN && used != n)
            abort();
        if (o.rc == 0) {
            if (used > n)
                abort();
            o.used = off + used;
        }
        off += n;
    } while (o.rc == -EAGAIN && off < len);
    if (o.rc == -EBADMSG && (o.why <= HTTP_REJECT_NONE || o.why >= HTTP_REJECT_COUNT))
        abort();
    if (o.rc != 0 && o.rc != -EAGAIN && o.rc != -EBADMSG)
        abort();
    o.total = o.rc == -EBADMSG ? 0 : c.data_total;
    if (o.rc == 0 && o.total > o.used)
        abort();
    return o;
}

static void same(outcome_t a, outcome_t b)
{
    if (a.rc != b.rc || a.used != b.used || a.total != b.total ||
        (a.rc == -EBADMSG && a.why != b.why))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < size && i < 16; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;
    seed |= 2;

    outcome_t whole = run(p, size, 0);
    same(whole, run(p, size, seed));
    if (size <= 4096)
        same(whole, run(p, size, 1));
    return 0;
}
