/*
 * common/word.h — the 2, 4 or 8 bytes at p as one word, at any alignment
 * (memcpy, which compilers turn into one load): for comparing bytes with
 * bytes, or with a string literal (word8("REQUEST_") is folded to a
 * constant), a word at a time.  The byte order is the machine's, the
 * same on both sides of a comparison.
 */
#ifndef SPRINGFIELD_COMMON_WORD_H
#define SPRINGFIELD_COMMON_WORD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t word2(const void *p)
{
    uint16_t w;

    memcpy(&w, p, sizeof w);
    return w;
}

static inline uint32_t word4(const void *p)
{
    uint32_t w;

    memcpy(&w, p, sizeof w);
    return w;
}

static inline uint64_t word8(const void *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof w);
    return w;
}

/* Whether a byte of w is below n (n at most 0x80): (w - 0x01..01 * n) &
 * ~w has a high bit set when, and only when, one is (a byte's borrow may
 * mark the one above it too, but never when none is below n). */
static inline bool word8_has_byte_below(uint64_t w, uint8_t n)
{
    const uint64_t ones = 0x0101010101010101;

    return (w - ones * n) & ~w & ones * 0x80;
}

#endif
