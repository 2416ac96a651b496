/* The access log: see access_log.h. */
#include "gateway/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

struct access_log {
    char *path; /* NULL: stdout */
    int fd;
    int pipe_rd, pipe_wr;
    pthread_t thread;
    conf_client_ip_t client_ip;
    bool query;
    unsigned char key[32];
    int reopen; /* set by access_log_reopen, read by the writer thread */
};

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

/* The writer thread: blocking reads from the pipe, blocking writes to the
 * file. EOF on the pipe (all workers gone, write end closed) ends it. */
static void *writer_main(void *arg)
{
    access_log_t *log = arg;
    char buf[65536];
    for (;;) {
        ssize_t n = read(log->pipe_rd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (log->path && __atomic_exchange_n(&log->reopen, 0, __ATOMIC_ACQ_REL)) {
            int fd = open_file(log->path);
            if (fd >= 0) {
                close(log->fd);
                log->fd = fd;
            } else {
                log_error("access log: cannot reopen %s: %s", log->path, strerror(-fd));
            }
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(log->fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                log_error("access log: write failed: %s", strerror(errno));
                break;
            }
            off += w;
        }
    }
    return NULL;
}

access_log_t *access_log_open(const conf_t *conf, int *ret_err)
{
    *ret_err = 0;
    if (!conf->access_log)
        return NULL;
    access_log_t *log = calloc(1, sizeof(*log));
    int fds[2] = {-1, -1};
    if (!log) {
        *ret_err = -ENOMEM;
        return NULL;
    }
    log->client_ip = conf->client_ip;
    log->query = conf->log_query;
    log->fd = 1;
    if (RAND_bytes(log->key, sizeof(log->key)) != 1) {
        *ret_err = -EIO;
        goto fail;
    }
    if (strcmp(conf->access_log, "-") != 0) {
        log->path = strdup(conf->access_log);
        if (!log->path) {
            *ret_err = -ENOMEM;
            goto fail;
        }
        log->fd = open_file(log->path);
        if (log->fd < 0) {
            *ret_err = log->fd;
            goto fail;
        }
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        *ret_err = -errno;
        goto fail;
    }
    /* Only the workers' side is non-blocking: they drop, the writer waits. */
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    log->pipe_rd = fds[0];
    log->pipe_wr = fds[1];
    if (pthread_create(&log->thread, NULL, writer_main, log) != 0) {
        *ret_err = -EAGAIN;
        goto fail;
    }
    return log;
fail:
    if (fds[0] >= 0) {
        close(fds[0]);
        close(fds[1]);
    }
    if (log->path && log->fd > 2)
        close(log->fd);
    free(log->path);
    free(log);
    return NULL;
}

void access_log_close(access_log_t *log)
{
    if (!log)
        return;
    close(log->pipe_wr);
    pthread_join(log->thread, NULL);
    close(log->pipe_rd);
    if (log->path)
        close(log->fd);
    free(log->path);
    free(log);
}

void access_log_reopen(access_log_t *log)
{
    if (!log)
        return;
    /* The writer reopens before it writes its next batch: until a line comes
     * there is nothing to write to the old file either. */
    __atomic_store_n(&log->reopen, 1, __ATOMIC_RELEASE);
}

void access_log_writer_init(access_log_writer_t *w, access_log_t *log, uint64_t *dropped)
{
    w->log = log;
    w->len = 0;
    w->dropped = dropped;
}

void access_log_format_client(const access_log_t *log, const sock_addr_t *a, char *out, size_t n)
{
    sock_addr_t t = *a;
    if (log->client_ip == CONF_CLIENT_IP_HASH) {
        const void *ip;
        size_t iplen;
        if (a->ss.ss_family == AF_INET6) {
            ip = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
            iplen = 16;
        } else {
            ip = &((const struct sockaddr_in *)&a->ss)->sin_addr;
            iplen = 4;
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        HMAC(EVP_sha256(), log->key, sizeof(log->key), ip, iplen, md, &mdlen);
        size_t o = 0;
        for (unsigned i = 0; i < 8 && o + 3 <= n; i++)
            o += (size_t)snprintf(out + o, n - o, "%02x", md[i]);
        return;
    }
    if (log->client_ip == CONF_CLIENT_IP_TRUNCATE) {
        if (t.ss.ss_family == AF_INET6) {
            unsigned char *b = ((struct sockaddr_in6 *)&t.ss)->sin6_addr.s6_addr;
            memset(b + 6, 0, 10); /* keep /48 */
        } else {
            unsigned char *b = (unsigned char *)&((struct sockaddr_in *)&t.ss)->sin_addr;
            b[3] = 0; /* keep /24 */
        }
    }
    sock_addr_format_ip(&t, out, n);
}

/* Appends s as the inside of a JSON string, escaping what JSON requires and
 * anything that is not printable ASCII (paths are attacker-controlled). */
static size_t json_escape(char *out, size_t room, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            if (o + 1 >= room)
                break;
            out[o++] = (char)ch;
        } else {
            if (o + 6 >= room)
                break;
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    return o;
}

static void put_str(char *line, size_t *o, size_t cap, const char *key, const char *v, size_t len)
{
    if (*o + strlen(key) + 8 >= cap)
        return;
    *o += (size_t)snprintf(line + *o, cap - *o, ",\"%s\":\"", key);
    *o += json_escape(line + *o, cap - *o - 2, v, len);
    line[(*o)++] = '"';
}

void access_log_add(access_log_writer_t *w, const access_log_entry_t *e)
{
    if (!w->log)
        return;
    char line[1536];
    size_t cap = sizeof(line) - 2; /* room for "}\n" */
    char client[72];
    time_t secs = (time_t)(e->wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t o = strftime(line, cap, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    o += (size_t)snprintf(line + o, cap - o, ".%03uZ\"", (unsigned)(e->wall_ms % 1000));

    if (e->listener)
        put_str(line, &o, cap, "listener", e->listener, strlen(e->listener));
    if (e->route)
        put_str(line, &o, cap, "route", e->route, strlen(e->route));
    if (e->pool)
        put_str(line, &o, cap, "pool", e->pool, strlen(e->pool));
    if (e->server)
        put_str(line, &o, cap, "server", e->server, strlen(e->server));
    access_log_format_client(w->log, e->client, client, sizeof(client));
    put_str(line, &o, cap, "client", client, strlen(client));
    if (e->method && e->method[0])
        put_str(line, &o, cap, "method", e->method, strlen(e->method));
    if (e->path && e->path_len) {
        size_t plen = e->path_len;
        const char *q = memchr(e->path, '?', plen);
        if (q && !w->log->query)
            plen = (size_t)(q - e->path);
        put_str(line, &o, cap, "path", e->path, plen);
    }
    if (o + 120 < cap)
        o += (size_t)snprintf(line + o, cap - o,
                              ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu"
                              ",\"duration_s\":%.6f",
                              e->status, (unsigned long long)e->bytes_in,
                              (unsigned long long)e->bytes_out, (double)e->duration_us / 1e6);
    if (e->queued && o + 40 < cap)
        o += (size_t)snprintf(line + o, cap - o, ",\"queue_s\":%.3f", (double)e->queue_ms / 1e3);
    if (e->request_id && e->request_id[0])
        put_str(line, &o, cap, "request_id", e->request_id, strlen(e->request_id));
    if (e->reject)
        put_str(line, &o, cap, "reject", e->reject, strlen(e->reject));
    line[o++] = '}';
    line[o++] = '\n';

    if (w->len + o > sizeof(w->buf))
        access_log_flush(w);
    memcpy(w->buf + w->len, line, o);
    w->len += o;
}

void access_log_flush(access_log_writer_t *w)
{
    if (!w->log || w->len == 0)
        return;
    ssize_t n;
    do
        n = write(w->log->pipe_wr, w->buf, w->len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        /* Pipe full: the disk is behind. Count the lines we lose. */
        uint64_t lines = 0;
        for (size_t i = 0; i < w->len; i++)
            lines += w->buf[i] == '\n';
        __atomic_store_n(w->dropped, __atomic_load_n(w->dropped, __ATOMIC_RELAXED) + lines,
                         __ATOMIC_RELAXED);
    }
    w->len = 0;
}
