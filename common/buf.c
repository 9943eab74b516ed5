/* common/buf.c — growable byte buffer. */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

int buf_grow_to(struct buf *b, size_t cap)
{
    uint8_t *p;

    if (cap <= b->cap)
        return 0;
    p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_reserve(struct buf *b, size_t more)
{
    size_t cap;

    if (more <= b->cap - b->len)
        return 0;
    cap = buf_next_cap(b, more, SIZE_MAX);
    return cap ? buf_grow_to(b, cap) : -1;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (buf_reserve(b, len) < 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
