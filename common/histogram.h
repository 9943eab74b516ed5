/*
 * common/histogram.h — a latency histogram of fixed buckets, cheap enough
 * to count every request and every backend operation.
 *
 * The upper bounds (seconds) are the same for every histogram, so they can
 * be summed across processes and shown as Prometheus/OpenMetrics buckets:
 * 0.1 ms ... 10 s, then +Inf.  Counts are per bucket (not cumulative); the
 * exposition makes them cumulative.  One writer per histogram (the loop of
 * one process); readers in other processes may read at any time: every
 * field is written with a relaxed atomic store.
 */
#ifndef SPRINGFIELD_COMMON_HISTOGRAM_H
#define SPRINGFIELD_COMMON_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_BOUNDS 15

/* The upper bound of bucket i < HISTOGRAM_BOUNDS, in seconds ("le"). */
static inline double histogram_bound(unsigned i)
{
    static const double bound_s[HISTOGRAM_BOUNDS] = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,   0.1,     0.25,   0.5,   1,      2.5,   10,
    };

    return bound_s[i];
}

struct histogram {
    uint64_t bucket[HISTOGRAM_BOUNDS + 1]; /* the last: over every bound (+Inf) */
    uint64_t count;
    uint64_t sum_us; /* microseconds, so integer sums stay exact */
};

/* A counter of one writer, readable by others. */
static inline void stat_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline uint64_t stat_read(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static inline void histogram_add(struct histogram *h, double seconds)
{
    unsigned i = 0;

    if (seconds < 0)
        seconds = 0;
    while (i < HISTOGRAM_BOUNDS && seconds > histogram_bound(i))
        i++;
    stat_add(&h->bucket[i], 1);
    stat_add(&h->count, 1);
    stat_add(&h->sum_us, (uint64_t)(seconds * 1e6 + 0.5));
}

/* to += from, for the sums across processes. */
static inline void histogram_sum(struct histogram *to, const struct histogram *from)
{
    for (unsigned i = 0; i <= HISTOGRAM_BOUNDS; i++)
        to->bucket[i] += stat_read(&from->bucket[i]);
    to->count += stat_read(&from->count);
    to->sum_us += stat_read(&from->sum_us);
}

#endif
