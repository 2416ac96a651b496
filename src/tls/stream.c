/* A byte stream over a non-blocking socket, in clear or through TLS: a
 * read into a buffer, or a write of two pieces (a head and body bytes) at
 * once. Every connection Surety serves or opens moves its bytes here (the
 * gateway's clients and upstreams, health checks, the admin listener), so
 * TLS on any of them needs nothing of its own in their state machines.
 *
 * Readiness (loop_ready_t): in clear, a short read or write means the
 * socket is drained or full and the flag is cleared until the next edge;
 * through TLS only OpenSSL's WANT_READ / WANT_WRITE clear them (see
 * src/tls/io.c for why). */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "tls/tls.h"

static int read_plain(int fd, buf_t *b, loop_ready_t *r, bool *ret_eof, int *ret_err)
{
    size_t room_before = b->data ? buf_room(b) : b->cap;
    ssize_t n = buf_read_fd(b, fd);
    if (n > 0) {
        /* A short read drained the socket: the next edge will tell us. Not
         * after a FIN was signalled: no edge follows that one, so read on
         * until read() itself says end of stream. */
        if ((size_t)n < room_before && !r->hup)
            r->readable = false;
        return 1;
    }
    if (n == 0) {
        *ret_eof = true;
        return 1;
    }
    if (n == -EAGAIN) {
        r->readable = false;
        return 0;
    }
    *ret_err = (int)n;
    *ret_eof = true;
    return 1;
}

static int read_tls(tls_conn_t *t, buf_t *b, loop_ready_t *r, bool *ret_eof, int *ret_err)
{
    if (buf_alloc(b) < 0) {
        *ret_err = -ENOMEM;
        *ret_eof = true;
        return 1;
    }
    if (buf_room(b) == 0)
        buf_compact(b);
    size_t n;
    int e = tls_io_read(t, r, b->data + b->tail, buf_room(b), &n);
    if (e == -EAGAIN)
        return 0;
    if (e < 0)
        *ret_err = e;
    if (e < 0 || n == 0) {
        *ret_eof = true;
        return 1;
    }
    b->tail += n;
    return 1;
}

int tls_stream_read(int fd, tls_conn_t *tls, buf_t *b, loop_ready_t *r, bool *ret_eof, int *ret_err)
{
    if (!r->readable || *ret_eof)
        return 0;
    if (b->data && buf_free_space(b) == 0)
        return 0;
    if (tls && tls->ssl)
        return read_tls(tls, b, r, ret_eof, ret_err);
    return read_plain(fd, b, r, ret_eof, ret_err);
}

/* One sendmsg of a[0,alen) then b[0,blen). */
static int send_plain(int fd, bool *writable, const char *a, size_t alen, const char *b,
                      size_t blen, size_t *ret_sent)
{
    struct iovec iov[2];
    size_t n = 0;
    if (alen)
        iov[n++] = (struct iovec){(void *)a, alen};
    if (blen)
        iov[n++] = (struct iovec){(void *)b, blen};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
    ssize_t w;
    do
        w = n == 1 ? send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
                   : sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN) {
            *writable = false;
            return -EAGAIN;
        }
        return -errno;
    }
    if ((size_t)w < alen + blen)
        *writable = false;
    *ret_sent = (size_t)w;
    return 0;
}

int tls_stream_send(int fd, tls_conn_t *tls, loop_ready_t *r, const char *a, size_t alen,
                const char *b, size_t blen, size_t *ret_sent)
{
    *ret_sent = 0;
    if (alen + blen == 0)
        return 0;
    if (!r->writable)
        return -EAGAIN;
    if (tls && tls->ssl)
        return tls_io_send(tls, r, a, alen, b, blen, ret_sent);
    return send_plain(fd, &r->writable, a, alen, b, blen, ret_sent);
}
