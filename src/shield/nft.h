/* Bans in the kernel: a wrapper around libnftables that keeps one table of
 * our own, `table inet NAME`, with a set of banned IPv4 and a set of banned
 * IPv6 source addresses and an input chain that drops their packets before
 * the usual filters run (issue 4). A banned client then costs the gateway
 * nothing, not even an accept: its SYNs never reach the socket.
 *
 *     table inet NAME {
 *         set ban4 { type ipv4_addr; flags timeout; }
 *         set ban6 { type ipv6_addr; flags timeout; }
 *         chain input {
 *             type filter hook input priority filter - 10; policy accept;
 *             ip saddr @ban4 counter drop
 *             ip6 saddr @ban6 counter drop
 *         }
 *     }
 *
 * Elements carry a timeout equal to what is left of the ban, so the kernel
 * lifts a ban on time even if the gateway is not running; the gateway
 * deletes elements only for bans lifted early. Nothing outside this table
 * is touched. Opening replaces the table (in one transaction), so stale
 * elements of an earlier run go and the caller adds back the bans it kept.
 *
 * The prefix is nftset_ rather than nft_, which is libnftables' own. An
 * nftset_t is used by one thread at a time (the security center serializes
 * its calls); every call is a netlink transaction, milliseconds at worst,
 * so never call it from an event loop. */
#ifndef SURETY_SHIELD_NFT_H
#define SURETY_SHIELD_NFT_H

#include <stddef.h>
#include <stdint.h>

/* Table names: a letter or '_', then letters, digits or '_', at most this
 * many bytes. Anything else could not be quoted safely into a command. */
#define NFTSET_NAME_MAX 64
/* Longer timeouts are cut to this (nft accepts a year comfortably). */
#define NFTSET_TIMEOUT_MAX_MS (365ULL * 24 * 3600 * 1000)
/* Elements per transaction when adding many. */
#define NFTSET_BATCH 256

typedef struct nftset nftset_t;

typedef struct {
    const char *addr;    /* IPv4 or IPv6 text; IPv4-mapped IPv6 counts as IPv4 */
    uint64_t timeout_ms; /* 0: no timeout (the element stays until deleted) */
} nftset_elem_t;

/* Creates (or replaces) table inet `table` as above. NULL on failure, with
 * the reason in err, e.g. "nftables: Operation not permitted (managing
 * nftables needs CAP_NET_ADMIN)". The caller frees it with nftset_close(),
 * which leaves the table and its elements in the kernel. */
nftset_t *nftset_open(const char *table, char *err, size_t errlen);
void nftset_close(nftset_t *n);

/* Adds elems[0, count) to the sets, or gives an element already there the
 * new timeout. Sent in transactions of NFTSET_BATCH elements; a failed one
 * stops there. 0, -EINVAL (an address is not one: nothing is sent), or a
 * negative errno with nft's message in err. */
int nftset_add(nftset_t *n, const nftset_elem_t *elems, size_t count, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Deletes addr's element; an element already gone (expired) is not an
 * error. 0, -EINVAL or a negative errno with nft's message in err. */
int nftset_del(nftset_t *n, const char *addr, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* 1 when addr is in its set, 0 when not, -EINVAL or a negative errno. */
int nftset_has(nftset_t *n, const char *addr);
/* The table's name. */
const char *nftset_table(const nftset_t *n);

#endif
