/* Socket helpers: see sock.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, memrchr; meson passes -D_GNU_SOURCE */
#endif
#include "core/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sock_addr_parse(const char *text, size_t len, sock_addr_t *ret)
{
    char host[64];
    const char *colon;
    sock_addr_t a;
    memset(&a, 0, sizeof(a));

    /* !text also tells GCC that text is not NULL past here: under UBSan it
     * otherwise warns (-Wnonnull, an error with -Werror) about memrchr. */
    if (!text || len == 0 || len >= sizeof(host))
        return -EINVAL;
    if (text[0] == '[') {
        const char *end = memchr(text, ']', len);
        if (!end || end + 1 >= text + len || end[1] != ':')
            return -EINVAL;
        size_t hl = (size_t)(end - text - 1);
        memcpy(host, text + 1, hl);
        host[hl] = 0;
        colon = end + 1;
    } else {
        colon = memrchr(text, ':', len);
        if (!colon)
            return -EINVAL;
        size_t hl = (size_t)(colon - text);
        memcpy(host, text, hl);
        host[hl] = 0;
        if (memchr(host, ':', hl))
            return -EINVAL; /* IPv6 needs brackets */
    }
    size_t plen = (size_t)(text + len - colon - 1);
    if (plen == 0 || plen > 5)
        return -EINVAL;
    unsigned port = 0;
    for (size_t i = 0; i < plen; i++) {
        unsigned d = (unsigned char)colon[1 + i] - '0';
        if (d > 9)
            return -EINVAL;
        port = port * 10 + d;
    }
    if (port > 65535)
        return -EINVAL;

    if (text[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -EINVAL;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        a.len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
        if (host[0] == 0)
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return -EINVAL;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        a.len = sizeof(*s4);
    }
    *ret = a;
    return 0;
}

void sock_addr_format_ip(const sock_addr_t *a, char *out, size_t n)
{
    if (a->ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, out, (socklen_t)n);
    else if (a->ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, out, (socklen_t)n);
    else
        snprintf(out, n, "unknown");
}

int sock_addr_port(const sock_addr_t *a)
{
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

void sock_addr_format(const sock_addr_t *a, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    sock_addr_format_ip(a, ip, sizeof(ip));
    if (a->ss.ss_family == AF_INET6)
        snprintf(out, n, "[%s]:%d", ip, sock_addr_port(a));
    else
        snprintf(out, n, "%s:%d", ip, sock_addr_port(a));
}

int sock_listen(const sock_addr_t *a, bool reuseport, int backlog)
{
    int one = 1;
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
        goto fail;
    if (listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

int sock_connect(const sock_addr_t *a)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    sock_set_nodelay(fd);
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int sock_accept(int lfd, sock_addr_t *peer)
{
    peer->len = sizeof(peer->ss);
    int fd = accept4(lfd, (struct sockaddr *)&peer->ss, &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return fd;
}

int sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

void sock_set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
