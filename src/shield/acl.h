/* CIDR access lists: the first check the shield makes on a connection, at
 * accept, before anything is allocated for it (issue 4, connection layer).
 *
 * An acl_t maps IPv4 and IPv6 prefixes ("203.0.113.0/24", "2001:db8::/32",
 * or a bare address meaning /32 or /128) to a small non-negative value that
 * the caller gives a meaning (allow, deny, a policy index). A lookup answers
 * the value of the longest prefix that contains the address, which is what
 * lets an operator deny a /16 and allow one /24 inside it. Each family is a
 * path-compressed binary (patricia) trie in one array of nodes, so memory is
 * at most two nodes per entry and a lookup is a loop of at most 33 or 129
 * steps, with no recursion and no allocation.
 *
 * An acl_t is built by one thread and then only read: lookups from any
 * number of threads are safe once nothing adds to it. Reloading a list means
 * building a new acl_t and swapping the pointer, never adding to a live one. */
#ifndef SURETY_SHIELD_ACL_H
#define SURETY_SHIELD_ACL_H

#include <stddef.h>

struct sockaddr;

typedef struct acl acl_t;

/* At most this many distinct prefixes per address family; acl_add answers
 * -ENOSPC past it. It bounds the memory a list from a file nobody looked at
 * can take: two 32-byte nodes per entry at most, and the node array grows by
 * doubling, so under 128 bytes per entry, 512 MiB per family at the cap. */
#define ACL_MAX_ENTRIES (1u << 22)

/* An empty list, or NULL when out of memory. The caller frees it with
 * acl_free() once no thread can be looking up in it any more. */
acl_t *acl_new(void);
void acl_free(acl_t *acl);

/* Adds the prefix cidr[0, len) (not NUL-terminated) with value >= 0. A
 * prefix already present takes the new value (last one wins). The syntax is
 * strict, since a typo in a deny list is a hole: an address as inet_pton()
 * reads it (dotted quad with no leading zeros, RFC 4291 text, no zone id),
 * optionally "/N" with N in decimal without leading zeros, at most 32 or
 * 128, and no whitespace. Host bits set past the prefix ("10.0.0.1/8") are
 * rejected rather than masked: the operator meant something else, and
 * should hear about it. An IPv6 prefix inside ::ffff:0:0/96 is stored as the
 * IPv4 prefix it denotes, so that it matches IPv4 clients.
 * Returns 0, -EINVAL (bad syntax or value < 0), -ENOSPC or -ENOMEM; on
 * failure the list is unchanged. */
int acl_add(acl_t *acl, const char *cidr, size_t len, int value)
    __attribute__((warn_unused_result));

/* The value of the longest prefix containing sa's address, or -1 when none
 * does (or sa is neither AF_INET nor AF_INET6). An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4 client) is
 * looked up as the IPv4 address a.b.c.d; IPv6 prefixes shorter than /96,
 * ::/0 included, do not match it. Does not allocate; safe from any thread
 * while nobody adds. */
int acl_lookup(const acl_t *acl, const struct sockaddr *sa);

/* The number of distinct prefixes, both families. */
size_t acl_count(const acl_t *acl);

/* Adds every entry of the file at path, one per line, all with value. A '#'
 * starts a comment that runs to the end of the line; spaces, tabs and a
 * trailing CR around an entry are ignored, and so are lines left empty.
 * Lines are at most 1023 bytes. On a bad line, returns -EINVAL with
 * "PATH:LINE: reason" in err (when err is not NULL); when the file cannot be
 * read, the negative errno with "PATH: reason". On failure the entries read
 * before the error stay in acl: load into a fresh list and discard it. On
 * success the tries are laid out again in depth-first order (one copy of
 * the node array), which makes lookups in a large list about twice as fast
 * as after the same entries given one by one to acl_add. */
int acl_load_file(acl_t *acl, const char *path, int value, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
