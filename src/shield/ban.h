/* Bans: the tables behind the security center's automatic and manual bans
 * (issue 4, see secev.h for the thread that drives them).
 *
 * Three bounded tables keyed by client address. The strike table counts
 * recent offences per address in a sliding window, fail2ban style: an
 * address that reaches `after` strikes less than `within` ms old is to be
 * banned. The ban table holds the active bans; workers look addresses up in
 * it on every accepted connection, so lookups take only a read lock (and
 * nothing at all while no ban exists). Next to the bans, the table
 * remembers for a day after a ban ends how many bans each address earned,
 * so that a repeat offender is banned for longer each time. Last, the ban
 * file keeps the active bans across restarts: one JSON object per line,
 * written atomically.
 *
 * An address is an IPv6 address; an IPv4 address is stored as the
 * IPv4-mapped ::ffff:a.b.c.d, which is also what a dual-stack socket
 * reports for an IPv4 client, so both forms are the same address here and
 * the text form of either is the dotted quad. Times are wall-clock
 * milliseconds since the epoch, given by the caller (tests inject theirs).
 *
 * Threads: the strike table belongs to one thread. The ban table may be
 * read from any thread; its writers must be serialized by the caller (the
 * security center holds one mutex across a change and its nftables
 * update, so that the kernel set and the table never disagree). */
#ifndef SURETY_SHIELD_BAN_H
#define SURETY_SHIELD_BAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Active bans at most; past it a new ban replaces the one that would have
 * expired first. About 170 bytes each with the index, 17 MB at the cap. */
#define BAN_MAX 100000
/* Addresses whose earlier bans are remembered at most, and for how long
 * after a ban ends. Past the cap the soonest-forgotten (of a sample of 8)
 * is forgotten now. */
#define BAN_OFFENDERS_MAX 65536
#define BAN_MEMORY_MS (24ULL * 3600 * 1000)
/* Addresses with strikes counted at most; past it the address struck
 * longest ago (of a sample of 8, as Redis approximates LRU) loses its
 * strikes. Each keeps its last BAN_STRIKES_MAX strike times, which is also
 * the largest `after` (larger values count as BAN_STRIKES_MAX): about
 * 300 bytes an address, 19 MB at the cap. */
#define BAN_STRIKERS_MAX 65536
#define BAN_STRIKES_MAX 32
/* The longest ban: what nftables accepts comfortably as a set element
 * timeout, and longer than any sane policy. */
#define BAN_FOR_MAX_MS (365ULL * 24 * 3600 * 1000)

/* An IPv6 address in network order; IPv4 as ::ffff:a.b.c.d. */
typedef struct {
    uint8_t b[16];
} ban_addr_t;

/* Room for the text of a ban_addr_t with its NUL (INET6_ADDRSTRLEN). */
#define BAN_ADDR_TEXT_MAX 46

/* The address of an AF_INET or AF_INET6 sockaddr (the port is ignored);
 * false for any other family. No allocation, no syscall. */
bool ban_addr_from_sockaddr(const struct sockaddr *sa, ban_addr_t *ret);
/* Parses an IPv4 or IPv6 address as inet_pton reads it (no port, no
 * brackets, no prefix). 0 or -EINVAL; ret untouched on failure. */
int ban_addr_parse(const char *text, ban_addr_t *ret) __attribute__((warn_unused_result));
/* The text form: a dotted quad for IPv4 (mapped or not), RFC 5952 for
 * IPv6. out holds at least BAN_ADDR_TEXT_MAX bytes. */
void ban_addr_format(const ban_addr_t *a, char *out, size_t n);
bool ban_addr_is_v4(const ban_addr_t *a);

/* The length of an automatic ban: for_ms doubled for each earlier offence
 * (offences is 1 for a first ban), at most max_ms when max_ms is not 0, at
 * most BAN_FOR_MAX_MS in any case. */
uint64_t ban_duration(uint64_t for_ms, uint64_t max_ms, uint32_t offences);

/* One ban. reason and policy are NUL-terminated (policy may be empty). */
typedef struct {
    ban_addr_t addr;
    uint64_t since, until; /* until > since */
    uint32_t offences;     /* bans of addr so far, this one included: 1 for a first */
    char reason[32];
    char policy[65];
} ban_t;

typedef struct ban_table ban_table_t;

/* An empty table, or NULL when out of memory. The caller frees it with
 * ban_table_free() once no thread can look up in it any more. */
ban_table_t *ban_table_new(void);
void ban_table_free(ban_table_t *t);

/* Any thread, fast: the `until` of a's ban, 0 when a is not in the table.
 * While the table is empty this is one relaxed atomic load; otherwise a
 * read lock and a hash lookup, never a syscall. The caller compares with
 * its clock: an expired ban stays in the table until ban_table_expire. */
uint64_t ban_table_until(ban_table_t *t, const ban_addr_t *a);
/* The number of bans (relaxed: for metrics and the fast path). */
size_t ban_table_count(ban_table_t *t);

/* The number of earlier bans of a still remembered at now (0 if none):
 * the next ban of a is offence number this + 1. */
uint32_t ban_table_offences(ban_table_t *t, const ban_addr_t *a, uint64_t now);
/* Remembers that a has earned `offences` bans until forget_at (used for
 * bans that expired while the process was down). Writer. */
void ban_table_remember(ban_table_t *t, const ban_addr_t *a, uint32_t offences, uint64_t forget_at);

enum { BAN_PUT_NEW, BAN_PUT_UPDATED, BAN_PUT_REPLACED };
/* Adds b, or replaces the ban of the same address (BAN_PUT_UPDATED). When
 * the table already holds BAN_MAX bans, the one that expires first is
 * dropped to make room and copied to ret_replaced (BAN_PUT_REPLACED). Also
 * remembers b.offences until b.until + BAN_MEMORY_MS. Returns one of the
 * three or -ENOMEM (then the table is unchanged). Writer. */
int ban_table_put(ban_table_t *t, const ban_t *b, ban_t *ret_replaced)
    __attribute__((warn_unused_result));
/* Removes a's ban and copies it to ret_lifted (may be NULL). 0 or -ENOENT.
 * The offence memory is kept. Writer. */
int ban_table_lift(ban_table_t *t, const ban_addr_t *a, ban_t *ret_lifted);
/* Removes up to max bans whose until <= now, soonest first, copying them
 * to out; returns how many. Writer. */
size_t ban_table_expire(ban_table_t *t, uint64_t now, ban_t *out, size_t max);
/* The soonest `until` in the table, UINT64_MAX when empty. */
uint64_t ban_table_next_expiry(ban_table_t *t);
/* A copy of every ban into *ret (malloc'd, the caller frees; NULL when
 * there are none) and their number in *ret_n. 0 or -ENOMEM. Any thread. */
int ban_table_snapshot(ban_table_t *t, ban_t **ret, size_t *ret_n)
    __attribute__((warn_unused_result));

/* Writes bans[0, n) to path atomically: a temporary file next to it,
 * fsync, rename, fsync of the directory, which is created first when
 * missing. One JSON object a line: {"address":"192.0.2.1","since":MS,
 * "until":MS,"offences":N,"reason":"strikes","policy":"default"}. 0 or a
 * negative errno with "PATH: reason" in err. */
int ban_file_save(const char *path, const ban_t *bans, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Loads the ban file at path into t: bans still running at now are added
 * (BAN_PUT_*), expired ones only feed the offence memory. A missing file is
 * an empty list; a line that is not a valid ban is skipped with a
 * log_warn naming PATH:LINE. 0, or a negative errno with "PATH: reason"
 * in err when the file cannot be read. Writer. */
int ban_file_load(ban_table_t *t, const char *path, uint64_t now, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Creates the directory that holds path, and its parents, when missing
 * (mode 0750). 0 or a negative errno. */
int ban_file_mkdir(const char *path) __attribute__((warn_unused_result));

typedef struct ban_strikes ban_strikes_t;

/* An empty strike table, or NULL when out of memory; the caller frees it
 * with ban_strikes_free(). One thread only. */
ban_strikes_t *ban_strikes_new(void);
void ban_strikes_free(ban_strikes_t *st);
/* Counts one strike of a at now. True when a now has at least `after`
 * strikes (clamped to 1..BAN_STRIKES_MAX) less than within_ms old, this
 * one included: the caller bans a, and a's strikes are forgotten so that
 * the count after the ban starts from zero. */
bool ban_strikes_add(ban_strikes_t *st, const ban_addr_t *a, uint64_t now, unsigned after,
                     uint64_t within_ms);
/* The number of addresses with strikes (for tests). */
size_t ban_strikes_count(const ban_strikes_t *st);

#endif
