/* The wall clock of the control plane: what objective windows, maintenance
 * windows and alert grouping read (never the data plane's timers, which use
 * the loop's monotonic clock).
 *
 * Tests move it: when the environment variable SURETY_TEST_CLOCK names a
 * file, that file holds a number of seconds added to the real time, re-read
 * by clock_refresh() (the control thread calls it at each collection tick),
 * so an integration test can jump hours ahead without waiting for them. In
 * production the variable is unset and the clock is time().
 *
 * Global state: one atomic offset, written by clock_refresh() and read by
 * any thread; that is the whole of it. */
#ifndef SURETY_CORE_CLOCK_H
#define SURETY_CORE_CLOCK_H

#include <stdint.h>

/* Unix seconds, plus the test offset. Any thread. */
int64_t clock_unix(void);
/* Re-reads SURETY_TEST_CLOCK's file when the variable is set (a missing or
 * unreadable file means no offset). Any thread; nothing when unset. */
void clock_refresh(void);

#endif
