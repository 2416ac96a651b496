/* Server selection. Smooth weighted round-robin (nginx's algorithm): every
 * pick adds each candidate's weight to its running score, takes the highest
 * score and subtracts the total from it. Weights 5,1,1 give a a b a c a a,
 * spreading the heavy server's turns instead of bunching them.
 *
 * The state is per worker (no sharing, no locks); over many picks each worker
 * keeps the configured ratio, and so does their sum. */
#ifndef SURETY_GATEWAY_BALANCE_H
#define SURETY_GATEWAY_BALANCE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    size_t n;
    int *current; /* running scores, [n] */
} balance_rr_t;

/* 0 or -ENOMEM; freed with balance_rr_deinit(). */
int balance_rr_init(balance_rr_t *rr, size_t n);
void balance_rr_deinit(balance_rr_t *rr);
/* Picks among the servers whose usable[i] is true (NULL: all), with weights[i].
 * Returns the index, or -1 when none is usable. */
int balance_rr_pick(balance_rr_t *rr, const unsigned *weights, const bool *usable);

#endif
