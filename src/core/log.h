/* Diagnostic log (stderr): one line per message, written with one write(2)
 * so lines from several threads never interleave.
 *
 * Format: "2026-11-29T11:45:04.123Z level message". The level threshold is
 * process-wide state set once by main before threads start (the one global
 * outside main.c; documented in docs/architecture.md). */
#ifndef SURETY_CORE_LOG_H
#define SURETY_CORE_LOG_H

enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(int level);
int log_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_level() >= LOG_DEBUG)                                                              \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

#endif
