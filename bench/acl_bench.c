/* Load and lookup speed of the shield's CIDR lists (src/shield/acl.c),
 * against issue 4's targets: 100,000 entries load in under a second and a
 * lookup takes well under a microsecond. Writes N random prefixes (half
 * IPv4 /8-/32, half IPv6 /16-/128, host bits clear) to a temporary file,
 * times acl_load_file() on it, then times L lookups in four classes: network
 * addresses of listed prefixes (hits that walk down to their entry) and
 * random addresses, for each family. Random IPv4 addresses mostly hit too,
 * since some of the /8 to /12 prefixes cover most of the space. Build it in a release build without
 * sanitizers:
 *
 *   meson setup build-rel --buildtype=release && ninja -C build-rel acl_bench
 *   ./build-rel/acl_bench [N [L]]          (defaults 100000 and 10000000) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shield/acl.h"

#define PROBES 65536 /* a power of two, cycled through */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Clears the bits of a[0, bytes) past the first len. */
static void mask(uint8_t *a, size_t bytes, unsigned len)
{
    for (size_t i = 0; i < bytes; i++) {
        unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * (unsigned)i : 0;
        a[i] &= (uint8_t)(0xff00u >> keep);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long lookups = argc > 2 ? atol(argv[2]) : 10000000;
    char path[] = "/tmp/acl_bench.XXXXXX", err[256];
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        perror("acl_bench: temporary file");
        return 1;
    }
    /* Listed prefixes, kept to aim half of the probes inside them. */
    struct sockaddr_storage *listed = calloc((size_t)n, sizeof(*listed));
    struct sockaddr_storage *probes = calloc(PROBES, sizeof(*probes));
    if (!listed || !probes) {
        perror("acl_bench");
        return 1;
    }
    for (long i = 0; i < n; i++) {
        char text[INET6_ADDRSTRLEN];
        if (i % 2 == 0) {
            struct sockaddr_in *s = (struct sockaddr_in *)&listed[i];
            unsigned len = 8 + (unsigned)(next() % 25);
            uint32_t a = (uint32_t)next();
            s->sin_family = AF_INET;
            memcpy(&s->sin_addr, &a, 4);
            mask((uint8_t *)&s->sin_addr, 4, len);
            inet_ntop(AF_INET, &s->sin_addr, text, sizeof(text));
            fprintf(f, "%s/%u\n", text, len);
        } else {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&listed[i];
            unsigned len = 16 + (unsigned)(next() % 113);
            uint64_t w[2] = {next(), next()};
            s->sin6_family = AF_INET6;
            memcpy(&s->sin6_addr, w, 16);
            s->sin6_addr.s6_addr[0] = 0x20; /* global unicast, never v4-mapped */
            mask(s->sin6_addr.s6_addr, 16, len);
            inet_ntop(AF_INET6, &s->sin6_addr, text, sizeof(text));
            fprintf(f, "%s/%u\n", text, len);
        }
    }
    if (fclose(f) != 0) {
        perror("acl_bench: write");
        return 1;
    }

    acl_t *acl = acl_new();
    if (!acl)
        return 1;
    double t0 = now();
    int r = acl_load_file(acl, path, 1, err, sizeof(err));
    double load = now() - t0;
    unlink(path);
    if (r < 0) {
        fprintf(stderr, "acl_bench: %s\n", err);
        return 1;
    }

    /* Four classes of PROBES/4 addresses each, timed apart: the network
     * address of a listed IPv4 prefix (a hit, walking to its entry), a
     * random IPv4 address, the same two for IPv6. */
    static const char *const names[4] = {"v4 listed", "v4 random", "v6 listed", "v6 random"};
    const long per = PROBES / 4;
    for (long i = 0; i < PROBES; i++) {
        struct sockaddr_storage *p = &probes[i];
        int cls = (int)(i / per), v6 = cls >= 2;
        if (cls % 2 == 0) {
            long j = (long)(next() % (uint64_t)((n + 1) / 2)) * 2 + v6;
            *p = listed[j < n ? j : 0];
        } else {
            uint64_t w[2] = {next(), next()};
            if (!v6) {
                p->ss_family = AF_INET;
                memcpy(&((struct sockaddr_in *)p)->sin_addr, w, 4);
            } else {
                p->ss_family = AF_INET6;
                memcpy(&((struct sockaddr_in6 *)p)->sin6_addr, w, 16);
                ((struct sockaddr_in6 *)p)->sin6_addr.s6_addr[0] = 0x20;
            }
        }
    }
    printf("entries   %zu distinct of %ld written\n", acl_count(acl), n);
    printf("load      %.1f ms (acl_load_file, parsing included)\n", load * 1e3);
    double total = 0;
    long hits_all = 0;
    for (int cls = 0; cls < 4; cls++) {
        const struct sockaddr_storage *base = probes + cls * per;
        long hits = 0, count = lookups / 4;
        t0 = now();
        for (long i = 0; i < count; i++)
            hits += acl_lookup(acl, (const struct sockaddr *)&base[i % per]) >= 0;
        double look = now() - t0;
        total += look;
        hits_all += hits;
        printf("%-9s %ld lookups: %.1f ns each, %.1f%% hits\n", names[cls], count,
               look * 1e9 / (double)count, 100.0 * (double)hits / (double)count);
    }
    printf("all       %ld lookups in %.1f ms: %.1f ns each, %.1f%% hits\n", lookups / 4 * 4,
           total * 1e3, total * 1e9 / (double)(lookups / 4 * 4),
           100.0 * (double)hits_all / (double)(lookups / 4 * 4));
    acl_free(acl);
    free(listed);
    free(probes);
    return 0;
}
