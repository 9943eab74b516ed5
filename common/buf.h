/*
 * common/buf.h — a growable byte buffer (data, length, capacity).
 *
 * Growth doubles, so appending n bytes in pieces costs O(n).  Every
 * function that can allocate returns -1 on allocation failure and leaves
 * the buffer as it was.
 */
#ifndef SPRINGFIELD_COMMON_BUF_H
#define SPRINGFIELD_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/* Makes room for `more` bytes past len. */
int buf_reserve(struct buf *b, size_t more);
int buf_append(struct buf *b, const void *data, size_t len);
/*
 * The capacity the buffer would grow to for `more` bytes past len: doubled
 * from at least 256 bytes, but never past `limit` when limit alone is
 * enough (a body whose length is known is held in exactly that much).
 * The current capacity when the bytes fit already; 0 on overflow.
 * (Inline: it is asked for every piece of a request's input.)
 */
static inline size_t buf_next_cap(const struct buf *b, size_t more, size_t limit)
{
    size_t want, cap;

    if (more > SIZE_MAX / 2 - b->len)
        return 0;
    want = b->len + more;
    if (want <= b->cap)
        return b->cap;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    if (cap > limit && limit >= want)
        cap = limit;
    return cap;
}

/* Grows the buffer to cap bytes (no-op when it is that large already). */
int buf_grow_to(struct buf *b, size_t cap);

/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);

/* Frees the buffer's memory; it is empty after.  Inline: most buffers
 * freed are empty (a request's body and extra headers), and the call
 * would cost more than the test. */
static inline void buf_free(struct buf *b)
{
    if (b->data)
        free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

#endif
