/*
 * common/list.h — an intrusive doubly linked list, and container_of.
 *
 * The node is embedded in the object it links (as libev's watchers are),
 * so linking allocates nothing and unlinking is O(1) from the object
 * alone.  A list is a sentinel node, circular: empty when it points at
 * itself.  A node that is on no list has next == NULL (list_node_init, or
 * after list_remove), so list_linked() tells whether it is on one.
 *
 *   struct conn { struct list_node link; ... };
 *   struct list_node conns;                 list_init(&conns);
 *   list_insert_tail(&conns, &c->link);
 *   struct conn *oldest = list_first(&conns, struct conn, link);
 *   list_remove(&c->link);
 */
#ifndef SPRINGFIELD_COMMON_LIST_H
#define SPRINGFIELD_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The struct of type `type` whose member `member` is at ptr. */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct list_node {
    struct list_node *prev, *next;
};

static inline void list_init(struct list_node *head)
{
    head->prev = head->next = head;
}

static inline void list_node_init(struct list_node *n)
{
    n->prev = n->next = NULL;
}

static inline bool list_empty(const struct list_node *head)
{
    return head->next == head;
}

static inline bool list_linked(const struct list_node *n)
{
    return n->next != NULL;
}

static inline void list_insert_tail(struct list_node *head, struct list_node *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void list_remove(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Moves n (on the list head) to its tail. */
static inline void list_move_tail(struct list_node *head, struct list_node *n)
{
    if (head->prev != n) {
        list_remove(n);
        list_insert_tail(head, n);
    }
}

/* The first object on the list, or NULL when it is empty. */
#define list_first(head, type, member) \
    (list_empty(head) ? NULL : container_of((head)->next, type, member))

/* The object after obj on the list head, or NULL at its end. */
#define list_next(head, obj, type, member) \
    ((obj)->member.next == (head) ? NULL : container_of((obj)->member.next, type, member))

#endif
