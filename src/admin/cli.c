/* The command-line client of the admin API: see cli.h. */
#include "admin/cli.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "http/http.h"

#define CLI_MAX_RESPONSE (16u << 20)
#define CLI_TIMEOUT_MS 5000

static int wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, CLI_TIMEOUT_MS);
    return r > 0 ? 0 : r == 0 ? -ETIMEDOUT : -errno;
}

int admin_cli_request(const sock_addr_t *addr, const char *method, const char *path, FILE *out)
{
    buf_t b;
    buf_init(&b, CLI_MAX_RESPONSE);
    int rc;
    int fd = sock_connect(addr);
    if (fd < 0)
        return fd;
    if ((rc = wait_fd(fd, POLLOUT)) < 0 || (rc = sock_error(fd)) < 0)
        goto out;
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: surety\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                     method, path);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        rc = -EINVAL;
        goto out;
    }
    for (int off = 0; off < n;) {
        if ((rc = wait_fd(fd, POLLOUT)) < 0)
            goto out;
        ssize_t w = write(fd, req + off, (size_t)(n - off));
        if (w < 0 && errno != EAGAIN) {
            rc = -errno;
            goto out;
        }
        off += w > 0 ? (int)w : 0;
    }
    for (;;) { /* Connection: close: the body ends with the stream */
        if ((rc = wait_fd(fd, POLLIN)) < 0)
            goto out;
        ssize_t r = buf_read_fd(&b, fd);
        if (r == 0)
            break;
        if (r < 0 && r != -EAGAIN) {
            rc = (int)r;
            goto out;
        }
    }
    http_field_t fields[64];
    http_response_t res;
    http_limits_t lim = {65536, 65536, 64};
    http_reject_t why;
    if (http_parse_response(&res, buf_rptr(&b), buf_len(&b), &lim, false, fields, 64, &why) < 0) {
        rc = -EPROTO;
        goto out;
    }
    if (out)
        fwrite(buf_rptr(&b) + res.head_len, 1, buf_len(&b) - res.head_len, out);
    rc = res.status;
out:
    close(fd);
    buf_deinit(&b);
    return rc;
}
