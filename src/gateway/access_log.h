/* The access log: one JSON object per request, private by default.
 *
 * Workers never touch the disk. Each worker formats lines into its own
 * 4 KiB batch and, once per loop iteration, writes the batch into a shared
 * non-blocking pipe with one write(2) (at most PIPE_BUF bytes, so batches
 * from several workers never interleave). A writer thread drains the pipe
 * into the file. When the disk cannot keep up the pipe fills, the batch is
 * dropped and counted (surety_access_log_dropped_total): requests are never
 * slowed down by logging.
 *
 * Privacy: the client address is truncated to its /24 or /48 network, or
 * replaced by a keyed hash (HMAC-SHA256 with a key drawn at start, so the
 * same address gives the same value for the life of the process and cannot
 * be reversed), unless log.client_ip is "full"; the query string is dropped
 * unless log.query is true; no header value is ever logged. */
#ifndef SURETY_GATEWAY_ACCESS_LOG_H
#define SURETY_GATEWAY_ACCESS_LOG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/sock.h"

typedef struct access_log access_log_t;

/* One worker's batch. */
typedef struct {
    access_log_t *log; /* NULL: logging off */
    char buf[PIPE_BUF];
    size_t len;
    uint64_t *dropped; /* the worker's counter */
} access_log_writer_t;

/* Everything the log line says about one request. */
typedef struct {
    uint64_t wall_ms;
    const char *listener, *route, *pool, *server; /* NULL: absent */
    const sock_addr_t *client;
    const char *method;
    const char *path; /* may include "?query"; cut here unless log.query */
    size_t path_len;
    int status;
    uint64_t bytes_in, bytes_out;
    uint64_t duration_us;
    bool queued;       /* it waited for a max_inflight slot ... */
    uint64_t queue_ms; /* ... this long in all */
    const char *request_id;
    const char *reject; /* parser rejection reason, or NULL */
} access_log_entry_t;

/* Opens conf->access_log and starts the writer thread; NULL when logging is
 * off (*ret_err = 0) or on failure (*ret_err = -errno). Freed by
 * access_log_close(), after every worker stopped. */
access_log_t *access_log_open(const conf_t *conf, int *ret_err);
void access_log_close(access_log_t *log);
/* Reopens the file (after logrotate moved it); any thread. */
void access_log_reopen(access_log_t *log);

void access_log_writer_init(access_log_writer_t *w, access_log_t *log, uint64_t *dropped);
void access_log_add(access_log_writer_t *w, const access_log_entry_t *e);
/* Sends the batch to the writer thread; at the end of each loop iteration. */
void access_log_flush(access_log_writer_t *w);

/* Formats the client address per log.client_ip into out (>= 65 bytes). */
void access_log_format_client(const access_log_t *log, const sock_addr_t *a, char *out,
                              size_t n);

#endif
