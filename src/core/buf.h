/* Bounded byte buffers (STYLE 9).
 *
 * A buf_t has a capacity fixed when it is created and never grows past it:
 * every buffer reachable from the network is bounded by configuration. The
 * storage is allocated lazily (buf_alloc) and can be dropped while a
 * connection idles (buf_release), which is what keeps 10,000 idle keep-alive
 * connections cheap. Bytes live in data[head, tail). */
#ifndef SURETY_CORE_BUF_H
#define SURETY_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/str.h"

/* A free list of storage blocks of one size, for one thread. Connections
 * take and give back their buffers at every request (idle ones hold none),
 * and a short list of warm blocks saves the allocator round trip and the
 * cache misses of fresh memory. At most max blocks are kept; the rest are
 * freed. Not thread-safe: one per worker. */
typedef struct {
    size_t size;
    void **blocks;
    size_t n, max;
} buf_cache_t;

/* 0 or -ENOMEM. Freed by buf_cache_deinit(), after every buffer using it. */
int buf_cache_init(buf_cache_t *c, size_t size, size_t max);
void buf_cache_deinit(buf_cache_t *c);

typedef struct {
    char *data;
    size_t head; /* first unread byte */
    size_t tail; /* one past the last written byte */
    size_t cap;  /* fixed maximum */
    buf_cache_t *cache; /* where storage comes from and goes back to; NULL: malloc */
} buf_t;

/* Sets the capacity; allocates nothing yet. */
static inline void buf_init(buf_t *b, size_t cap)
{
    b->data = NULL;
    b->head = b->tail = 0;
    b->cap = cap;
    b->cache = NULL;
}

/* Same, with storage from (and back to) cache; the capacity is its size. */
static inline void buf_init_cached(buf_t *b, buf_cache_t *cache)
{
    buf_init(b, cache->size);
    b->cache = cache;
}
/* Allocates the storage if it is not there. 0 or -ENOMEM. */
int buf_alloc(buf_t *b);
/* Frees the storage; only when the buffer is empty (asserted). */
void buf_release(buf_t *b);
/* Frees the storage whatever it holds. Accepts a never-allocated buffer. */
void buf_deinit(buf_t *b);

static inline size_t buf_len(const buf_t *b)
{
    return b->tail - b->head;
}
static inline char *buf_rptr(const buf_t *b)
{
    return b->data + b->head;
}
static inline str_t buf_str(const buf_t *b)
{
    return str_from(b->data + b->head, b->tail - b->head);
}
/* Free space after tail, without compacting. */
static inline size_t buf_room(const buf_t *b)
{
    return b->data ? b->cap - b->tail : 0;
}
/* Free space in all, counting what a compaction would reclaim. */
static inline size_t buf_free_space(const buf_t *b)
{
    return b->cap - buf_len(b);
}
/* Drops n bytes from the front; an emptied buffer rewinds to offset 0. */
void buf_consume(buf_t *b, size_t n);
/* Moves the unread bytes to the front so that all free space is at the end. */
void buf_compact(buf_t *b);
/* Appends; compacts if needed. 0, or -ENOSPC (nothing written). */
int buf_append(buf_t *b, const void *p, size_t n);
static inline int buf_append_str(buf_t *b, str_t s)
{
    return buf_append(b, s.p, s.len);
}
int buf_appendf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* read(2) into the free space (compacting first when the end is full).
 * Returns bytes read (>0), 0 at EOF, -EAGAIN, -ENOSPC when full, or -errno. */
ssize_t buf_read_fd(buf_t *b, int fd);
/* write(2) the unread bytes, consuming what was written.
 * Returns bytes written (>=0), -EAGAIN, or -errno. */
ssize_t buf_write_fd(buf_t *b, int fd);

#endif
