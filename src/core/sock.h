/* Socket helpers: address parsing and formatting, non-blocking listen,
 * connect and accept. Every descriptor is created O_NONBLOCK|O_CLOEXEC. */
#ifndef SURETY_CORE_SOCK_H
#define SURETY_CORE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
} sock_addr_t;

/* Longest text sock_addr_format writes: "[v6]:port" plus NUL. */
#define SOCK_ADDR_TEXT_MAX 64

/* Parses "127.0.0.1:8080", "[::1]:8080" or ":8080" (all IPv4 addresses).
 * Numeric only: name resolution would block. 0 or -EINVAL. */
int sock_addr_parse(const char *text, size_t len, sock_addr_t *ret);
/* "ip:port" or "[ip]:port" into out (SOCK_ADDR_TEXT_MAX bytes). */
void sock_addr_format(const sock_addr_t *a, char *out, size_t n);
/* Only the IP, without port or brackets. */
void sock_addr_format_ip(const sock_addr_t *a, char *out, size_t n);
int sock_addr_port(const sock_addr_t *a);

/* A listening socket with SO_REUSEADDR and, when reuseport, SO_REUSEPORT
 * (each worker has its own and the kernel spreads connections). fd or -errno. */
int sock_listen(const sock_addr_t *a, bool reuseport, int backlog);
/* Starts a non-blocking connect with TCP_NODELAY. fd (connect may still be in
 * progress: wait for writability, then sock_error) or -errno. */
int sock_connect(const sock_addr_t *a);
/* accept4 non-blocking. fd, -EAGAIN, or -errno. */
int sock_accept(int lfd, sock_addr_t *peer);
/* The pending SO_ERROR as -errno, or 0. */
int sock_error(int fd);
void sock_set_nodelay(int fd);

#endif
