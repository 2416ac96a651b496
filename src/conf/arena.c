/* The allocation family of one configuration generation (and, separately,
 * of one load's scratch data: the YAML tree). A conf_t holds many small
 * strings and arrays that all die together when its last reference goes;
 * one chain of blocks frees them in one walk and cannot leak one of them.
 * Not thread-safe: an arena is filled by the one thread that loads, then
 * only read. */
#include "conf/conf_int.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 8192
/* Far above any real configuration (CONF_MAX_INPUT of text expands to a
 * few times that at most), so only a bug or an attack reaches it. */
#define ARENA_MAX ((size_t)CONF_MAX_INPUT * 8)

typedef struct block {
    struct block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} block_t;

struct conf_arena {
    block_t *head;
    size_t total;
};

conf_arena_t *conf_arena_new(void)
{
    return calloc(1, sizeof(conf_arena_t));
}

void conf_arena_free(conf_arena_t *a)
{
    if (!a)
        return;
    block_t *b = a->head;
    while (b) {
        block_t *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *conf_arena_alloc(conf_arena_t *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n > ARENA_MAX)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    block_t *b = a->head;
    if (!b || b->cap - b->used < n) {
        /* Big requests get a block of their own so the current block's
         * free tail is not wasted. */
        size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        if (a->total + cap > ARENA_MAX)
            return NULL;
        block_t *nb = malloc(sizeof(*nb) + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        a->total += cap;
        if (b && cap != ARENA_BLOCK) {
            nb->next = b->next; /* keep filling the current block */
            b->next = nb;
            b = nb;
        } else {
            nb->next = b;
            a->head = b = nb;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *conf_arena_strndup(conf_arena_t *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = conf_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}
