/* libcurl's multi interface driven by a surety event loop.
 *
 * A curl_loop_t owns one CURLM and plugs its socket and timer callbacks into
 * a loop_t: every socket libcurl wants watched is registered level-triggered
 * (loop_io_add_level) for exactly the directions libcurl asks for, and
 * libcurl's single timeout is one loop timer. Transfers are added as easy
 * handles; when one finishes, it is removed from the multi handle and the
 * done callback gets it with its result. The caller finds its own context
 * through CURLOPT_PRIVATE. Any control-thread user of libcurl (probes,
 * webhooks, mail) can own one.
 *
 * Thread-safety: a curl_loop_t and every call on it belong to the thread
 * that runs the loop. */
#ifndef SURETY_MONITOR_CURL_LOOP_H
#define SURETY_MONITOR_CURL_LOOP_H

#include <curl/curl.h>

#include "core/loop.h"

typedef struct curl_loop curl_loop_t;

/* A transfer ended (result CURLE_OK or the error). easy is no longer in the
 * multi handle: the callback may clean it up, or reuse and add it again. It
 * must not free the curl_loop_t. */
typedef void (*curl_loop_done_cb)(curl_loop_t *cl, CURL *easy, CURLcode result, void *ud);

/* A multi handle on loop. Calls curl_global_init() (reference-counted by
 * libcurl; main should still call it once before starting threads). Who
 * frees: the caller, with curl_loop_free(), on the loop's thread, before the
 * loop is freed. NULL on failure with *ret_err = -ENOMEM. */
curl_loop_t *curl_loop_new(loop_t *loop, curl_loop_done_cb done, void *ud, int *ret_err);
/* Ends the transfers still running (without calling done: their owners
 * clean up their easy handles afterwards), closes every connection, frees
 * cl. Accepts NULL. Not from inside the done callback. */
void curl_loop_free(curl_loop_t *cl);

/* Starts easy (configured by the caller); it runs from the next loop
 * iteration. 0, -EINVAL (already in a multi handle) or -ENOMEM. */
int curl_loop_add(curl_loop_t *cl, CURL *easy);
/* Cancels a transfer in flight without calling done: its sockets are
 * deregistered and closed. The caller still owns easy. */
void curl_loop_remove(curl_loop_t *cl, CURL *easy);

#endif
