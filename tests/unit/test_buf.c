/* Unit tests for src/core/buf.c: bounded buffers never grow past their
 * capacity, fail without writing anything, and move bytes to and from
 * non-blocking descriptors (sockets and pipes) with -EAGAIN as a plain result. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"

static void assert_buf(const buf_t *b, const char *want)
{
    assert_int_equal(buf_len(b), strlen(want));
    assert_memory_equal(buf_rptr(b), want, strlen(want));
}

static void test_buf_allocates_lazily_and_releases_when_empty(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 16);
    assert_null(b.data);
    assert_int_equal(buf_room(&b), 0);
    assert_int_equal(buf_free_space(&b), 16);
    assert_int_equal(buf_alloc(&b), 0);
    assert_non_null(b.data);
    assert_int_equal(buf_room(&b), 16);
    buf_release(&b);
    assert_null(b.data);
    assert_int_equal(buf_append(&b, "abc", 3), 0); /* allocates again */
    assert_buf(&b, "abc");
    buf_deinit(&b);
    buf_deinit(&b); /* twice is fine */
}

static void test_buf_append_refuses_overflow_without_writing(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345", 5), 0);
    assert_int_equal(buf_append(&b, "6789", 4), -ENOSPC);
    assert_buf(&b, "12345");
    assert_int_equal(buf_append(&b, "678", 3), 0);
    assert_buf(&b, "12345678");
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_append_str(&b, STR_NULL), 0); /* UBSan: no memcpy from NULL */
    assert_int_equal(buf_append(&b, "x", 1), -ENOSPC);
    buf_deinit(&b);
}

static void test_buf_consume_rewinds_and_append_compacts(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    buf_consume(&b, 4);
    assert_buf(&b, "ef");
    assert_int_equal(buf_room(&b), 2);
    assert_int_equal(buf_free_space(&b), 6);
    /* Needs the 4 consumed bytes: append compacts first. */
    assert_int_equal(buf_append(&b, "ghijk", 5), 0);
    assert_buf(&b, "efghijk");
    assert_int_equal(b.head, 0);
    buf_consume(&b, 7);
    assert_int_equal(b.head, 0);
    assert_int_equal(b.tail, 0);
    buf_deinit(&b);
}

static void test_buf_appendf_fills_exactly_and_fails_whole(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 8);
    assert_int_equal(buf_appendf(&b, "%d-%s", 12, "ab"), 0);
    assert_buf(&b, "12-ab");
    /* Exactly the 3 bytes left: vsnprintf wants one more for its NUL. */
    assert_int_equal(buf_appendf(&b, "%s", "xyz"), 0);
    assert_buf(&b, "12-abxyz");
    buf_consume(&b, 3);
    assert_int_equal(buf_appendf(&b, "%s", "1234"), -ENOSPC);
    assert_buf(&b, "abxyz"); /* nothing written, compaction is harmless */
    assert_int_equal(buf_appendf(&b, "%s", "123"), 0);
    assert_buf(&b, "abxyz123");
    buf_deinit(&b);
}

static void test_buf_read_and_write_fd_over_a_socketpair(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    buf_t in, out;
    buf_init(&in, 4);
    buf_init(&out, 64);

    assert_int_equal(buf_read_fd(&in, sv[0]), -EAGAIN);
    assert_int_equal(buf_write_fd(&out, sv[1]), 0); /* nothing to write */
    assert_int_equal(buf_append(&out, "hello", 5), 0);
    assert_int_equal(buf_write_fd(&out, sv[1]), 5);
    assert_int_equal(buf_len(&out), 0);

    assert_int_equal(buf_read_fd(&in, sv[0]), 4);
    assert_buf(&in, "hell");
    assert_int_equal(buf_read_fd(&in, sv[0]), -ENOSPC);
    buf_consume(&in, 1);
    assert_int_equal(buf_read_fd(&in, sv[0]), 1); /* compacts to make room */
    assert_buf(&in, "ello");

    close(sv[1]);
    buf_consume(&in, 4);
    assert_int_equal(buf_read_fd(&in, sv[0]), 0); /* EOF */
    close(sv[0]);
    buf_deinit(&in);
    buf_deinit(&out);
}

static void test_buf_write_fd_works_on_pipes(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    buf_t b;
    buf_init(&b, 16);
    assert_int_equal(buf_append(&b, "line\n", 5), 0);
    assert_int_equal(buf_write_fd(&b, p[1]), 5);
    char got[8];
    assert_int_equal(read(p[0], got, sizeof(got)), 5);
    assert_memory_equal(got, "line\n", 5);
    close(p[0]);
    close(p[1]);
    buf_deinit(&b);
}

static void test_buf_write_fd_reports_errors_as_negative_errno(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[0]);
    buf_t b;
    buf_init(&b, 16);
    assert_int_equal(buf_append(&b, "x", 1), 0);
    /* MSG_NOSIGNAL: EPIPE comes back instead of killing the process. */
    assert_int_equal(buf_write_fd(&b, sv[1]), -EPIPE);
    assert_int_equal(buf_len(&b), 1);
    close(sv[1]);
    buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_allocates_lazily_and_releases_when_empty),
        cmocka_unit_test(test_buf_append_refuses_overflow_without_writing),
        cmocka_unit_test(test_buf_consume_rewinds_and_append_compacts),
        cmocka_unit_test(test_buf_appendf_fills_exactly_and_fails_whole),
        cmocka_unit_test(test_buf_read_and_write_fd_over_a_socketpair),
        cmocka_unit_test(test_buf_write_fd_works_on_pipes),
        cmocka_unit_test(test_buf_write_fd_reports_errors_as_negative_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
