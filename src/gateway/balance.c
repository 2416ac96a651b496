/* Smooth weighted round-robin: see balance.h. */
#include "gateway/balance.h"

#include <errno.h>
#include <stdlib.h>

int balance_rr_init(balance_rr_t *rr, size_t n)
{
    rr->n = n;
    rr->current = calloc(n ? n : 1, sizeof(*rr->current));
    return rr->current ? 0 : -ENOMEM;
}

void balance_rr_deinit(balance_rr_t *rr)
{
    free(rr->current);
    rr->current = NULL;
}

int balance_rr_pick(balance_rr_t *rr, const unsigned *weights, const bool *usable)
{
    int best = -1;
    int total = 0;
    for (size_t i = 0; i < rr->n; i++) {
        if (usable && !usable[i])
            continue;
        rr->current[i] += (int)weights[i];
        total += (int)weights[i];
        if (best < 0 || rr->current[i] > rr->current[best])
            best = (int)i;
    }
    if (best >= 0)
        rr->current[best] -= total;
    return best;
}
