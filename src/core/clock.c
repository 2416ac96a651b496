/* See clock.h. */
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t offset_s; /* atomic: the test offset (see clock.h) */

int64_t clock_unix(void)
{
    return (int64_t)time(NULL) + __atomic_load_n(&offset_s, __ATOMIC_RELAXED);
}

void clock_refresh(void)
{
    const char *path = getenv("SURETY_TEST_CLOCK");
    if (!path || !*path)
        return;
    long long v = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lld", &v) != 1)
            v = 0;
        fclose(f);
    }
    __atomic_store_n(&offset_s, (int64_t)v, __ATOMIC_RELAXED);
}
