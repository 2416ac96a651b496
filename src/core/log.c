/* Diagnostic log: see log.h. Each message is formatted into one stack line
 * and written with a single write(2) to fd 2; lines are at most PIPE_BUF
 * bytes, so writes from several threads to a pipe never interleave, and no
 * lock or stdio buffer is involved. Longer messages are truncated. */
#include "core/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX PIPE_BUF

/* Set by main before threads start, read everywhere: relaxed is enough, the
 * atomic only keeps the concurrent reads well-defined. */
static atomic_int log_threshold = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(int level)
{
    if (level < LOG_ERROR)
        level = LOG_ERROR;
    if (level > LOG_DEBUG)
        level = LOG_DEBUG;
    atomic_store_explicit(&log_threshold, level, memory_order_relaxed);
}

int log_level(void)
{
    return atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

/* "2026-11-29T11:45:04.123Z " into out; returns its length. */
static size_t format_time(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int len =
        snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    return len < 0 ? 0 : (size_t)len >= n ? n - 1 : (size_t)len;
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > log_level())
        return;
    if (level < LOG_ERROR)
        level = LOG_ERROR;
    if (level > LOG_DEBUG)
        level = LOG_DEBUG;

    int saved_errno = errno; /* callers may log and then look at errno */
    char line[LOG_LINE_MAX];
    size_t len = format_time(line, sizeof(line));
    int n = snprintf(line + len, sizeof(line) - len, "%s ", level_names[level]);
    if (n > 0)
        len += (size_t)n;

    /* Leave room for the newline; vsnprintf truncates the rest. */
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    va_end(ap);
    if (n > 0) {
        size_t start = len;
        len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n : sizeof(line) - len - 2;
        /* One message, one line: embedded newlines would forge log lines. */
        for (size_t i = start; i < len; i++)
            if (line[i] == '\n' || line[i] == '\r')
                line[i] = ' ';
    }
    line[len++] = '\n';

    ssize_t w;
    do
        w = write(STDERR_FILENO, line, len);
    while (w < 0 && errno == EINTR);
    errno = saved_errno;
}
