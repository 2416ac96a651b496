/* Unit tests for src/core/loop.c: timer order and re-arming, the heap under
 * random start/stop, async wake-ups from another thread, edge-triggered I/O
 * on a socketpair, level-triggered I/O with changing events, and the
 * removal of a descriptor whose event is pending in the batch being
 * dispatched. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

typedef struct {
    loop_timer_t t;
    int id;
    int *log;
    size_t *nlog;
    int rearm; /* times to re-arm itself */
    uint64_t rearm_ms;
    loop_timer_t *stop_other;
    bool stop_loop;
} tt_t;

static void tt_cb(loop_t *loop, loop_timer_t *t)
{
    tt_t *x = container_of(t, tt_t, t);
    x->log[(*x->nlog)++] = x->id;
    assert_false(loop_timer_active(t)); /* disarmed before its callback */
    if (x->stop_other)
        loop_timer_stop(loop, x->stop_other);
    if (x->rearm > 0) {
        x->rearm--;
        assert_int_equal(loop_timer_start(loop, t, x->rearm_ms), 0);
    }
    if (x->stop_loop)
        loop_stop(loop);
}

static void tt_init(tt_t *x, int id, int *log, size_t *nlog)
{
    memset(x, 0, sizeof(*x));
    loop_timer_init(&x->t, tt_cb);
    x->id = id;
    x->log = log;
    x->nlog = nlog;
}

static void test_loop_timers_fire_in_due_order_then_arming_order(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    assert_non_null(loop);
    int log[16];
    size_t n = 0;
    tt_t t[6];
    static const uint64_t ms[] = {30, 10, 20, 10, 0, 10};
    for (int i = 0; i < 6; i++) {
        tt_init(&t[i], i, log, &n);
        assert_int_equal(loop_timer_start(loop, &t[i].t, ms[i]), 0);
        assert_true(loop_timer_active(&t[i].t));
    }
    t[0].stop_loop = true;
    uint64_t start = loop_now(loop);
    assert_int_equal(loop_run(loop), 0);
    assert_true(loop_now(loop) - start >= 30);
    static const int want[] = {4, 1, 3, 5, 2, 0};
    assert_int_equal(n, 6);
    assert_memory_equal(log, want, sizeof(want));
    for (int i = 0; i < 6; i++)
        assert_false(loop_timer_active(&t[i].t));
    loop_free(loop);
}

static void test_loop_timer_stop_and_restart(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    int log[16];
    size_t n = 0;
    tt_t a, b, c, end;
    tt_init(&a, 1, log, &n);
    tt_init(&b, 2, log, &n);
    tt_init(&c, 3, log, &n);
    tt_init(&end, 9, log, &n);
    end.stop_loop = true;

    assert_int_equal(loop_timer_start(loop, &a.t, 5), 0);
    loop_timer_stop(loop, &a.t);
    assert_false(loop_timer_active(&a.t));
    loop_timer_stop(loop, &a.t); /* stopping a stopped timer is a no-op */
    assert_int_equal(loop_timer_start(loop, &a.t, 30), 0);
    assert_int_equal(loop_timer_start(loop, &b.t, 30), 0);
    assert_int_equal(loop_timer_start(loop, &b.t, 5), 0); /* re-arm earlier */
    /* c re-arms itself twice; a stops victim before it is due. */
    c.rearm = 2;
    c.rearm_ms = 1;
    assert_int_equal(loop_timer_start(loop, &c.t, 8), 0);
    assert_int_equal(loop_timer_start(loop, &end.t, 50), 0);
    tt_t victim;
    tt_init(&victim, 7, log, &n);
    assert_int_equal(loop_timer_start(loop, &victim.t, 35), 0);
    a.stop_other = &victim.t;

    assert_int_equal(loop_run(loop), 0);
    /* Expected: 2 3 3 3 1 9. Only what holds however late the loop wakes is
     * asserted: first firings in due order, c three times, victim never. */
    assert_int_equal(n, 6);
    assert_int_equal(log[0], 2);
    assert_int_equal(log[1], 3);
    assert_int_equal(log[5], 9);
    int threes = 0, ones = 0;
    for (size_t i = 0; i < n; i++) {
        threes += log[i] == 3;
        ones += log[i] == 1;
        assert_int_not_equal(log[i], 7);
    }
    assert_int_equal(threes, 3);
    assert_int_equal(ones, 1);
    loop_free(loop);
}

typedef struct {
    loop_timer_t t;
    int fired;
    int idles;
    int idles_at_fire[4];
} spin_t;

static void spin_cb(loop_t *loop, loop_timer_t *t)
{
    spin_t *s = container_of(t, spin_t, t);
    s->idles_at_fire[s->fired++] = s->idles;
    if (s->fired < 4)
        assert_int_equal(loop_timer_start(loop, t, 0), 0);
    else
        loop_stop(loop);
}

static void spin_idle(loop_t *loop, void *data)
{
    (void)loop;
    ((spin_t *)data)->idles++;
}

static void test_loop_zero_ms_rearm_runs_on_the_next_iteration(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    spin_t s = {0};
    loop_timer_init(&s.t, spin_cb);
    loop_set_idle(loop, spin_idle, &s);
    assert_int_equal(loop_timer_start(loop, &s.t, 0), 0);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(s.fired, 4);
    /* One firing per iteration: the idle callback ran in between each. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(s.idles_at_fire[i], i);
    loop_free(loop);
}

#define NRAND 300

typedef struct {
    loop_timer_t t;
    bool stopped;
    bool fired;
} rt_t;

static uint64_t last_due;
static int nfired;

static void rand_cb(loop_t *loop, loop_timer_t *t)
{
    (void)loop;
    rt_t *r = container_of(t, rt_t, t);
    assert_false(r->stopped);
    assert_false(r->fired);
    assert_true(t->due >= last_due); /* never out of order */
    assert_true(t->due <= loop_now(loop));
    last_due = t->due;
    r->fired = true;
    nfired++;
}

static void stop_cb(loop_t *loop, loop_timer_t *t)
{
    (void)t;
    loop_stop(loop);
}

static void test_loop_timer_heap_survives_random_start_stop(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    rt_t *r = calloc(NRAND, sizeof(*r));
    srand(42);
    for (int i = 0; i < NRAND; i++) {
        loop_timer_init(&r[i].t, rand_cb);
        assert_int_equal(loop_timer_start(loop, &r[i].t, (uint64_t)(rand() % 40)), 0);
    }
    int expected = NRAND;
    for (int i = 0; i < NRAND; i++) {
        int k = rand() % NRAND;
        switch (rand() % 3) {
        case 0: /* stop */
            if (!r[k].stopped) {
                loop_timer_stop(loop, &r[k].t);
                r[k].stopped = true;
                expected--;
            }
            break;
        case 1: /* re-arm (also revives a stopped one) */
            assert_int_equal(loop_timer_start(loop, &r[k].t, (uint64_t)(rand() % 40)), 0);
            if (r[k].stopped) {
                r[k].stopped = false;
                expected++;
            }
            break;
        default:
            break;
        }
    }
    loop_timer_t end;
    loop_timer_init(&end, stop_cb);
    assert_int_equal(loop_timer_start(loop, &end, 60), 0);
    last_due = 0;
    nfired = 0;
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(nfired, expected);
    free(r);
    loop_free(loop);
}

typedef struct {
    loop_async_t a;
    int calls;
    atomic_bool sent;    /* set by the other thread before its first send */
    bool sent_at_wakeup; /* what the callback saw */
} async_t;

static void async_cb(loop_t *loop, loop_async_t *a)
{
    async_t *x = container_of(a, async_t, a);
    x->calls++;
    x->sent_at_wakeup = atomic_load(&x->sent);
    loop_stop(loop);
}

static void *async_thread(void *arg)
{
    async_t *x = arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&x->sent, true);
    for (int i = 0; i < 3; i++)
        loop_async_send(&x->a);
    return NULL;
}

static void test_loop_async_from_another_thread_wakes_the_loop(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    async_t x = {.calls = 0};
    atomic_init(&x.sent, false);
    assert_int_equal(loop_async_init(loop, &x.a, async_cb), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, async_thread, &x), 0);
    /* No timer: without the wake-up this would sleep forever. */
    assert_int_equal(loop_run(loop), 0);
    pthread_join(th, NULL);
    assert_true(x.sent_at_wakeup); /* woken by the send, not before it */
    assert_true(x.calls >= 1);
    /* Sends coalesce: three sends before the wake-up make one callback. */
    int before = x.calls;
    loop_async_send(&x.a);
    loop_async_send(&x.a);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(x.calls, before + 1);
    loop_async_deinit(loop, &x.a);
    loop_async_deinit(loop, &x.a); /* twice is fine */
    loop_free(loop);
}

typedef struct {
    loop_io_t io;
    uint32_t seen;
    char got[16];
    size_t ngot;
    int calls;
    bool eof;
} io_t;

static void io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    io_t *x = container_of(io, io_t, io);
    x->seen |= events;
    x->calls++;
    if (events & EPOLLIN) {
        for (;;) { /* edge-triggered: until EAGAIN */
            ssize_t n = read(io->fd, x->got + x->ngot, sizeof(x->got) - x->ngot);
            if (n > 0) {
                x->ngot += (size_t)n;
                continue;
            }
            if (n == 0)
                x->eof = true;
            break;
        }
    }
    if (x->eof || x->ngot >= 5)
        loop_stop(loop);
}

static void test_loop_io_callback_on_a_socketpair(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    io_t x = {0};
    assert_int_equal(loop_io_add(loop, &x.io, sv[0], io_cb), 0);
    assert_int_equal(x.io.fd, sv[0]);
    assert_int_equal(write(sv[1], "hello", 5), 5);
    assert_int_equal(loop_run(loop), 0);
    assert_true(x.seen & EPOLLIN);
    assert_true(x.seen & EPOLLOUT); /* registered for both directions */
    assert_int_equal(x.ngot, 5);
    assert_memory_equal(x.got, "hello", 5);

    close(sv[1]); /* the peer hangs up */
    assert_int_equal(loop_run(loop), 0);
    assert_true(x.eof);
    assert_true(x.seen & EPOLLRDHUP);

    loop_io_del(loop, &x.io);
    close(sv[0]);
    loop_free(loop);
}

typedef struct {
    loop_io_t io;
    int calls;
} pair_t;

static pair_t *pairs[2];
static int pair_fds[2][2];

static void pair_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)events;
    pair_t *me = container_of(io, pair_t, io);
    me->calls++;
    /* Both are readable in the same batch: remove and free the other. */
    pair_t *other = pairs[0] == me ? pairs[1] : pairs[0];
    if (other) {
        loop_io_del(loop, &other->io);
        close(other->io.fd);
        free(other);
        if (pairs[0] == other)
            pairs[0] = NULL;
        else
            pairs[1] = NULL;
    }
    loop_stop(loop);
}

static void test_loop_io_del_drops_pending_events_of_the_batch(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    for (int i = 0; i < 2; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair_fds[i]), 0);
        pairs[i] = calloc(1, sizeof(pair_t));
        assert_int_equal(loop_io_add(loop, &pairs[i]->io, pair_fds[i][0], pair_cb), 0);
        assert_int_equal(write(pair_fds[i][1], "x", 1), 1);
    }
    assert_int_equal(loop_run(loop), 0); /* ASan reports the use-after-free, if any */
    pair_t *left = pairs[0] ? pairs[0] : pairs[1];
    assert_non_null(left);
    assert_int_equal(left->calls, 1);
    loop_io_del(loop, &left->io);
    close(left->io.fd);
    free(left);
    close(pair_fds[0][1]);
    close(pair_fds[1][1]);
    loop_free(loop);
}

typedef struct {
    loop_io_t io;
    int calls, in_calls, out_calls;
    size_t got;
    int stop_after;
} lvl_t;

/* Reads one byte per call: only level-triggered readiness calls it again. */
static void lvl_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    lvl_t *x = container_of(io, lvl_t, io);
    x->calls++;
    if (events & EPOLLIN) {
        char c;
        x->in_calls++;
        if (read(io->fd, &c, 1) == 1)
            x->got++;
    }
    if (events & EPOLLOUT)
        x->out_calls++;
    if (x->calls >= x->stop_after)
        loop_stop(loop);
}

static void test_loop_level_io_repeats_until_drained_and_mod_changes_events(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    lvl_t x = {.stop_after = 5};
    assert_int_equal(loop_io_add_level(loop, &x.io, sv[0], EPOLLIN, lvl_cb), 0);
    assert_int_equal(write(sv[1], "abcde", 5), 5);
    assert_int_equal(loop_run(loop), 0);
    /* five calls for five bytes, and never EPOLLOUT (not asked for) */
    assert_int_equal(x.got, 5);
    assert_int_equal(x.in_calls, 5);
    assert_int_equal(x.out_calls, 0);

    /* Writable only: pending input no longer calls it. */
    assert_int_equal(write(sv[1], "fg", 2), 2);
    x = (lvl_t){.io = x.io, .stop_after = 3};
    assert_int_equal(loop_io_mod(loop, &x.io, EPOLLOUT), 0);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(x.out_calls, 3); /* level: again and again while writable */
    assert_int_equal(x.in_calls, 0);
    assert_int_equal(x.got, 0);

    /* Nothing wanted: no call until a timer ends the run. */
    x = (lvl_t){.io = x.io, .stop_after = 1};
    assert_int_equal(loop_io_mod(loop, &x.io, 0), 0);
    loop_timer_t end;
    loop_timer_init(&end, stop_cb);
    assert_int_equal(loop_timer_start(loop, &end, 20), 0);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(x.calls, 0);

    /* Back to input: the two bytes still pending are read. */
    x = (lvl_t){.io = x.io, .stop_after = 2};
    assert_int_equal(loop_io_mod(loop, &x.io, EPOLLIN), 0);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(x.got, 2);

    loop_io_del(loop, &x.io);
    close(sv[0]);
    close(sv[1]);
    loop_free(loop);
}

static void test_loop_clocks_are_cached_and_sane(void **state)
{
    (void)state;
    loop_t *loop = loop_new();
    uint64_t a = loop_now(loop);
    assert_int_equal(loop_now(loop), a);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000;
    assert_true(loop_wall_ms(loop) + 5000 > wall && loop_wall_ms(loop) < wall + 5000);
    struct timespec d = {0, 5 * 1000 * 1000};
    nanosleep(&d, NULL);
    assert_int_equal(loop_now(loop), a); /* cached until updated */
    loop_update_time(loop);
    assert_true(loop_now(loop) >= a + 5);
    loop_free(loop);
    loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_timers_fire_in_due_order_then_arming_order),
        cmocka_unit_test(test_loop_timer_stop_and_restart),
        cmocka_unit_test(test_loop_zero_ms_rearm_runs_on_the_next_iteration),
        cmocka_unit_test(test_loop_timer_heap_survives_random_start_stop),
        cmocka_unit_test(test_loop_async_from_another_thread_wakes_the_loop),
        cmocka_unit_test(test_loop_io_callback_on_a_socketpair),
        cmocka_unit_test(test_loop_io_del_drops_pending_events_of_the_batch),
        cmocka_unit_test(test_loop_level_io_repeats_until_drained_and_mod_changes_events),
        cmocka_unit_test(test_loop_clocks_are_cached_and_sane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
