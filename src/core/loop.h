/* The event loop: one per thread, epoll plus a binary min-heap of timers.
 *
 * Descriptors are registered once, edge-triggered, for both directions
 * (loop_io_add); the owner keeps its own "readable"/"writable" flags and
 * performs I/O until -EAGAIN, as nginx does. That costs no epoll_ctl per
 * state change, which is where a level-triggered proxy spends its time.
 *
 * Time: loop_now() is a monotonic millisecond clock cached once per
 * iteration, so every timer started in one iteration shares one "now".
 *
 * Thread-safety: a loop and everything registered on it belong to the thread
 * that runs it. The only cross-thread entry is loop_async_send(). */
#ifndef SURETY_CORE_LOOP_H
#define SURETY_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

typedef struct loop loop_t;
typedef struct loop_io loop_io_t;
typedef struct loop_timer loop_timer_t;
typedef struct loop_async loop_async_t;

/* events: EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP as epoll reports them. */
typedef void (*loop_io_cb)(loop_t *loop, loop_io_t *io, uint32_t events);
typedef void (*loop_timer_cb)(loop_t *loop, loop_timer_t *t);
typedef void (*loop_async_cb)(loop_t *loop, loop_async_t *a);
/* Runs once after each iteration's events and timers (batched flushes). */
typedef void (*loop_idle_cb)(loop_t *loop, void *data);

struct loop_io {
    int fd;
    loop_io_cb cb;
};

struct loop_timer {
    uint64_t due;  /* loop_now() value at which it fires */
    size_t slot;   /* position in the heap + 1; 0 when not armed */
    loop_timer_cb cb;
};

struct loop_async {
    loop_io_t io; /* eventfd */
    loop_async_cb cb;
};

/* What an edge-triggered owner remembers between events: set from each
 * event, cleared by the owner on -EAGAIN or a short read/write. hup: the
 * peer's FIN or an error was signalled; no further edge will come, so the
 * owner must read until read() itself reports the end. */
typedef struct {
    bool readable, writable, hup;
} loop_ready_t;

static inline void loop_ready_update(loop_ready_t *r, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        r->readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        r->hup = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        r->writable = true;
}

/* A new loop; freed with loop_free() by the thread that made it. NULL on failure. */
loop_t *loop_new(void);
void loop_free(loop_t *loop);

/* Registers fd edge-triggered for in, out and hang-up. 0 or -errno. */
int loop_io_add(loop_t *loop, loop_io_t *io, int fd, loop_io_cb cb);
/* Removes it (before close; close alone would also do). */
void loop_io_del(loop_t *loop, loop_io_t *io);
/* Registers a listening socket level-triggered for EPOLLIN only, so that a
 * worker that stops accepting (at its connection cap) can deregister it. */
int loop_io_add_listener(loop_t *loop, loop_io_t *io, int fd, loop_io_cb cb);
/* Registers fd level-triggered for events (EPOLLIN and/or EPOLLOUT, or 0:
 * errors and hang-ups only), for owners that do not read or write until
 * -EAGAIN and instead say what they wait for (libcurl's socket callback): the
 * callback runs at every iteration while the descriptor is ready. 0 or -errno. */
int loop_io_add_level(loop_t *loop, loop_io_t *io, int fd, uint32_t events, loop_io_cb cb);
/* Changes what an io registered with loop_io_add_level waits for (same
 * events as there; it stays level-triggered). 0 or -errno. */
int loop_io_mod(loop_t *loop, loop_io_t *io, uint32_t events);

static inline void loop_timer_init(loop_timer_t *t, loop_timer_cb cb)
{
    t->due = 0;
    t->slot = 0;
    t->cb = cb;
}
/* (Re)arms t to fire after ms milliseconds. 0 or -ENOMEM. */
int loop_timer_start(loop_t *loop, loop_timer_t *t, uint64_t ms);
void loop_timer_stop(loop_t *loop, loop_timer_t *t);
static inline bool loop_timer_active(const loop_timer_t *t)
{
    return t->slot != 0;
}

/* Cached monotonic time in milliseconds. */
uint64_t loop_now(const loop_t *loop);
/* Wall-clock time, cached with loop_now, in milliseconds since the epoch. */
uint64_t loop_wall_ms(const loop_t *loop);
/* Refreshes the cached clocks (after a long computation). */
void loop_update_time(loop_t *loop);

/* An eventfd that another thread can poke; cb runs on the loop's thread. */
int loop_async_init(loop_t *loop, loop_async_t *a, loop_async_cb cb);
void loop_async_deinit(loop_t *loop, loop_async_t *a);
/* Any thread; async-signal-safe. */
void loop_async_send(loop_async_t *a);

void loop_set_idle(loop_t *loop, loop_idle_cb cb, void *data);
/* Runs until loop_stop(). 0 or -errno if epoll fails. */
int loop_run(loop_t *loop);
void loop_stop(loop_t *loop);

#endif
