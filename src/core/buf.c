/* Bounded byte buffers: see buf.h. */
#include "core/buf.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int buf_cache_init(buf_cache_t *c, size_t size, size_t max)
{
    c->size = size;
    c->n = 0;
    c->max = max;
    c->blocks = calloc(max ? max : 1, sizeof(*c->blocks));
    return c->blocks ? 0 : -ENOMEM;
}

void buf_cache_deinit(buf_cache_t *c)
{
    while (c->n)
        free(c->blocks[--c->n]);
    free(c->blocks);
    c->blocks = NULL;
}

int buf_alloc(buf_t *b)
{
    if (b->data)
        return 0;
    if (b->cache && b->cache->n) {
        b->data = b->cache->blocks[--b->cache->n];
        b->head = b->tail = 0;
        return 0;
    }
    b->data = malloc(b->cap);
    if (!b->data)
        return -ENOMEM;
    b->head = b->tail = 0;
    return 0;
}

void buf_release(buf_t *b)
{
    assert(buf_len(b) == 0);
    buf_deinit(b);
}

void buf_deinit(buf_t *b)
{
    if (b->data && b->cache && b->cache->n < b->cache->max) {
        b->cache->blocks[b->cache->n++] = b->data;
        b->data = NULL;
    }
    free(b->data);
    b->data = NULL;
    b->head = b->tail = 0;
}

void buf_consume(buf_t *b, size_t n)
{
    assert(n <= buf_len(b));
    b->head += n;
    if (b->head == b->tail)
        b->head = b->tail = 0;
}

void buf_compact(buf_t *b)
{
    if (b->head == 0)
        return;
    size_t n = buf_len(b);
    if (n)
        memmove(b->data, b->data + b->head, n);
    b->head = 0;
    b->tail = n;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    if (buf_alloc(b) < 0)
        return -ENOMEM;
    if (n > buf_free_space(b))
        return -ENOSPC;
    if (n == 0)
        return 0; /* p may be NULL (STR_NULL): memcpy must not see it */
    if (n > buf_room(b))
        buf_compact(b);
    memcpy(b->data + b->tail, p, n);
    b->tail += n;
    return 0;
}

int buf_appendf(buf_t *b, const char *fmt, ...)
{
    if (buf_alloc(b) < 0)
        return -ENOMEM;
    buf_compact(b);
    size_t room = b->cap - b->tail;
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(b->data + b->tail, room, fmt, ap);
    va_end(ap);
    int err = 0;
    if (n < 0) {
        err = -EINVAL;
    } else if ((size_t)n < room) {
        b->tail += (size_t)n;
    } else if ((size_t)n == room) {
        /* It fits exactly, but vsnprintf kept the last byte for its NUL:
         * format again where there is room for one, then copy. */
        char *tmp = malloc((size_t)n + 1);
        if (!tmp) {
            err = -ENOMEM;
        } else {
            vsnprintf(tmp, (size_t)n + 1, fmt, again);
            memcpy(b->data + b->tail, tmp, (size_t)n);
            b->tail += (size_t)n;
            free(tmp);
        }
    } else {
        err = -ENOSPC;
    }
    va_end(again);
    return err;
}

ssize_t buf_read_fd(buf_t *b, int fd)
{
    if (buf_alloc(b) < 0)
        return -ENOMEM;
    if (buf_room(b) == 0)
        buf_compact(b);
    if (buf_room(b) == 0)
        return -ENOSPC;
    ssize_t n;
    /* recv(2) skips the file-position bookkeeping of read(2); pipes and
     * files (ENOTSOCK) take the read(2) path. */
    do
        n = recv(fd, b->data + b->tail, buf_room(b), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK) {
        do
            n = read(fd, b->data + b->tail, buf_room(b));
        while (n < 0 && errno == EINTR);
    }
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    b->tail += (size_t)n;
    return n;
}

ssize_t buf_write_fd(buf_t *b, int fd)
{
    if (buf_len(b) == 0)
        return 0;
    ssize_t n;
    /* send() for MSG_NOSIGNAL (EPIPE instead of SIGPIPE on sockets); write()
     * for pipes and files, on which send() fails with ENOTSOCK. */
    do {
        n = send(fd, buf_rptr(b), buf_len(b), MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, buf_rptr(b), buf_len(b));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    buf_consume(b, (size_t)n);
    return n;
}
