/* Intrusive circular doubly-linked list (as in the Linux kernel and libuv's
 * queue): O(1) insert and remove with no allocation, for connection lists. */
#ifndef SURETY_CORE_LIST_H
#define SURETY_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list {
    struct list *prev, *next;
} list_t;

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(list_t *l)
{
    l->prev = l->next = l;
}
static inline bool list_empty(const list_t *l)
{
    return l->next == l;
}
static inline void list_insert_head(list_t *l, list_t *e)
{
    e->next = l->next;
    e->prev = l;
    l->next->prev = e;
    l->next = e;
}
static inline void list_insert_tail(list_t *l, list_t *e)
{
    list_insert_head(l->prev, e);
}
static inline void list_remove(list_t *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}
#define list_foreach_safe(pos, tmp, head)                                                          \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
