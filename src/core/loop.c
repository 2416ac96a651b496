/* The event loop: see loop.h. One epoll instance, a binary min-heap of
 * timers and a cached clock; everything here runs on the loop's own thread
 * except loop_async_send().
 *
 * An iteration is: epoll_wait (sleeping until the earliest timer at most),
 * refresh the clocks, dispatch the I/O events, run the timers that are due,
 * call the idle callback. The heap holds {timer, sequence} pairs rather than
 * bare timer pointers: the sequence number, taken when a timer is armed,
 * breaks ties between timers due in the same millisecond (they fire in the
 * order they were armed), and it lets the timer phase skip timers armed while
 * it runs, so a callback that re-arms itself for 0 ms fires on the next
 * iteration instead of spinning forever inside this one (libuv does the same). */
#include "core/loop.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

/* The heap is keyed by its own copy of the due time. A timer pushed later
 * while armed (the common case: an inactivity timeout re-armed on every
 * read) only updates t->due and stays where it is; when its old key comes up
 * it is moved to its real place instead of firing. That saves a heap fix per
 * I/O event, which profiles showed on the proxy's hot path. */
typedef struct {
    loop_timer_t *t;
    uint64_t due; /* heap key: <= t->due */
    uint64_t seq; /* arming order: the tie-break between equal due times */
} heap_entry_t;

struct loop {
    int epfd;
    bool stop;
    uint64_t now;  /* CLOCK_MONOTONIC, ms */
    uint64_t wall; /* CLOCK_REALTIME, ms since the epoch */

    heap_entry_t *heap;
    size_t nheap;
    size_t cheap;
    uint64_t next_seq;

    loop_idle_cb idle_cb;
    void *idle_data;

    /* The batch being dispatched, so that loop_io_del can scrub events still
     * pending for an io that a callback earlier in the batch removed. */
    struct epoll_event events[LOOP_MAX_EVENTS];
    int nevents;
    int cur;
};

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void loop_update_time(loop_t *loop)
{
    loop->now = clock_ms(CLOCK_MONOTONIC);
    loop->wall = clock_ms(CLOCK_REALTIME);
}

uint64_t loop_now(const loop_t *loop)
{
    return loop->now;
}

uint64_t loop_wall_ms(const loop_t *loop)
{
    return loop->wall;
}

/* Who frees: the caller, with loop_free(), on the thread that runs the loop
 * (or before it has started running). */
loop_t *loop_new(void)
{
    loop_t *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop_update_time(loop);
    return loop;
}

/* Timers still armed are disarmed (their owners may look at them afterwards);
 * registered descriptors are not closed: they belong to their owners. */
void loop_free(loop_t *loop)
{
    if (!loop)
        return;
    for (size_t i = 0; i < loop->nheap; i++)
        loop->heap[i].t->slot = 0;
    free(loop->heap);
    close(loop->epfd);
    free(loop);
}

/* ---- I/O ---- */

static int io_register(loop_t *loop, loop_io_t *io, int fd, loop_io_cb cb, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->fd = fd;
    io->cb = cb;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    return 0;
}

int loop_io_add(loop_t *loop, loop_io_t *io, int fd, loop_io_cb cb)
{
    return io_register(loop, io, fd, cb, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

int loop_io_add_listener(loop_t *loop, loop_io_t *io, int fd, loop_io_cb cb)
{
    return io_register(loop, io, fd, cb, EPOLLIN);
}

int loop_io_add_level(loop_t *loop, loop_io_t *io, int fd, uint32_t events, loop_io_cb cb)
{
    assert(!(events & ~(uint32_t)(EPOLLIN | EPOLLOUT)));
    return io_register(loop, io, fd, cb, events);
}

/* An event of the current batch for a direction no longer wanted is still
 * dispatched: level-triggered owners are asked again anyway, and libcurl
 * takes a readiness it did not ask for as a no-op. */
int loop_io_mod(loop_t *loop, loop_io_t *io, uint32_t events)
{
    assert(!(events & ~(uint32_t)(EPOLLIN | EPOLLOUT)));
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -errno;
    return 0;
}

/* Besides deregistering, forgets the events of the current batch that are
 * still to be dispatched for io: a callback may remove and free another
 * connection whose event sits later in the same batch. */
void loop_io_del(loop_t *loop, loop_io_t *io)
{
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    for (int i = loop->cur + 1; i < loop->nevents; i++)
        if (loop->events[i].data.ptr == io)
            loop->events[i].data.ptr = NULL;
}

/* ---- timers: binary min-heap ordered by (due, seq); t->slot = index + 1 ---- */

static bool heap_less(const heap_entry_t *a, const heap_entry_t *b)
{
    if (a->due != b->due)
        return a->due < b->due;
    return a->seq < b->seq;
}

static void heap_set(loop_t *loop, size_t i, heap_entry_t e)
{
    loop->heap[i] = e;
    e.t->slot = i + 1;
}

static void heap_up(loop_t *loop, size_t i)
{
    heap_entry_t e = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&e, &loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, e);
}

static void heap_down(loop_t *loop, size_t i)
{
    heap_entry_t e = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->nheap)
            break;
        if (child + 1 < loop->nheap && heap_less(&loop->heap[child + 1], &loop->heap[child]))
            child++;
        if (!heap_less(&loop->heap[child], &e))
            break;
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, e);
}

/* Moves the entry at i to where its (possibly changed) key belongs. */
static void heap_fix(loop_t *loop, size_t i)
{
    if (i > 0 && heap_less(&loop->heap[i], &loop->heap[(i - 1) / 2]))
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

int loop_timer_start(loop_t *loop, loop_timer_t *t, uint64_t ms)
{
    if (!t->slot && loop->nheap == loop->cheap) {
        size_t n = loop->cheap ? loop->cheap * 2 : 64;
        heap_entry_t *h = realloc(loop->heap, n * sizeof(*h));
        if (!h)
            return -ENOMEM;
        loop->heap = h;
        loop->cheap = n;
    }
    uint64_t due = ms > UINT64_MAX - loop->now ? UINT64_MAX : loop->now + ms;
    if (t->slot && due >= loop->heap[t->slot - 1].due) {
        t->due = due; /* later than its key: settled lazily in run_timers */
        return 0;
    }
    t->due = due;
    heap_entry_t e = {.t = t, .due = due, .seq = loop->next_seq++};
    if (t->slot) {
        size_t i = t->slot - 1;
        loop->heap[i] = e;
        heap_fix(loop, i);
    } else {
        loop->heap[loop->nheap] = e;
        heap_up(loop, loop->nheap++);
    }
    return 0;
}

void loop_timer_stop(loop_t *loop, loop_timer_t *t)
{
    if (!t->slot)
        return;
    size_t i = t->slot - 1;
    assert(i < loop->nheap && loop->heap[i].t == t);
    t->slot = 0;
    loop->nheap--;
    if (i == loop->nheap)
        return;
    loop->heap[i] = loop->heap[loop->nheap];
    heap_fix(loop, i);
}

/* Fires the timers due now that were armed before this phase began. A fired
 * timer is disarmed before its callback runs, so the callback may re-arm it,
 * stop or start others, or free it. */
static void run_timers(loop_t *loop)
{
    uint64_t phase = loop->next_seq;
    while (loop->nheap > 0) {
        heap_entry_t e = loop->heap[0];
        /* The root is the smallest (due, seq): if it was armed during this
         * phase, every older timer still armed is due later than now. */
        if (e.due > loop->now || e.seq >= phase)
            break;
        if (e.t->due != e.due) {
            /* pushed later while armed: move to the real due time first, so
             * that timers still fire in due order */
            loop->heap[0].due = e.t->due;
            heap_fix(loop, 0);
            continue;
        }
        loop_timer_stop(loop, e.t);
        e.t->cb(loop, e.t);
    }
}

/* epoll_wait timeout: until the earliest timer, 0 if one is due, -1 if none. */
static int next_timeout(const loop_t *loop)
{
    if (loop->nheap == 0)
        return -1;
    uint64_t due = loop->heap[0].due;
    if (due <= loop->now)
        return 0;
    uint64_t d = due - loop->now;
    return d > INT_MAX ? INT_MAX : (int)d;
}

/* ---- async wake-ups ---- */

static void async_io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    loop_async_t *a = (loop_async_t *)((char *)io - offsetof(loop_async_t, io));
    uint64_t v;
    ssize_t n;
    (void)events;
    /* One read resets the counter: however many sends, one callback. A
     * read that finds nothing (EAGAIN) means no send: no callback. */
    do
        n = read(io->fd, &v, sizeof(v));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(v))
        a->cb(loop, a);
}

int loop_async_init(loop_t *loop, loop_async_t *a, loop_async_cb cb)
{
    a->io.fd = -1; /* so that loop_async_deinit after a failure is harmless */
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    a->cb = cb;
    /* Readable only: an eventfd is always writable, and EPOLLOUT would only
     * wake the loop for nothing. */
    int err = io_register(loop, &a->io, fd, async_io_cb, EPOLLIN | EPOLLET);
    if (err < 0) {
        close(fd);
        a->io.fd = -1;
        return err;
    }
    return 0;
}

void loop_async_deinit(loop_t *loop, loop_async_t *a)
{
    if (a->io.fd < 0)
        return;
    loop_io_del(loop, &a->io);
    close(a->io.fd);
    a->io.fd = -1;
}

void loop_async_send(loop_async_t *a)
{
    uint64_t one = 1;
    ssize_t n;
    /* EAGAIN means the counter is saturated: a wake-up is pending anyway. */
    do
        n = write(a->io.fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

/* ---- running ---- */

void loop_set_idle(loop_t *loop, loop_idle_cb cb, void *data)
{
    loop->idle_cb = cb;
    loop->idle_data = data;
}

void loop_stop(loop_t *loop)
{
    loop->stop = true;
}

static void dispatch(loop_t *loop)
{
    for (loop->cur = 0; loop->cur < loop->nevents; loop->cur++) {
        loop_io_t *io = loop->events[loop->cur].data.ptr;
        if (io)
            io->cb(loop, io, loop->events[loop->cur].events);
    }
    loop->nevents = 0;
    loop->cur = 0;
}

int loop_run(loop_t *loop)
{
    int err = 0;
    while (!loop->stop) {
        int n = epoll_wait(loop->epfd, loop->events, LOOP_MAX_EVENTS, next_timeout(loop));
        if (n < 0 && errno != EINTR) {
            err = -errno;
            break;
        }
        /* Before dispatch: a callback arming a timeout must not measure it
         * from before a sleep that may have lasted seconds. */
        loop_update_time(loop);
        loop->nevents = n > 0 ? n : 0;
        dispatch(loop);
        run_timers(loop);
        if (loop->idle_cb)
            loop->idle_cb(loop, loop->idle_data);
    }
    loop->stop = false;
    return err;
}
