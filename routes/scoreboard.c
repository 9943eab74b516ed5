/* routes/scoreboard.c — the pool's shared counters (see scoreboard.h). */
#include "routes/scoreboard.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define SB_MAGIC 0x73666c64736230ULL /* "sfldsb0" */

static int sb_fd = -1;

static double wall_now(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + now.tv_nsec / 1e9;
}

#define SB_LAYOUT ((uint64_t)sizeof(struct scoreboard) << 32 | sizeof(struct sb_row))

static size_t sb_size(unsigned nrows)
{
    return sizeof(struct scoreboard) + (size_t)nrows * sizeof(struct sb_row);
}

struct scoreboard *scoreboard_create(unsigned nrows)
{
    struct scoreboard *sb;
    int fd = memfd_create("springfield-scoreboard", 0); /* inherited by a reload's exec */

    if (fd < 0) {
        sf_error("cannot make the scoreboard: memfd_create: %s", strerror(errno));
        return NULL;
    }
    if (ftruncate(fd, (off_t)sb_size(nrows)) < 0) {
        sf_error("cannot make the scoreboard: ftruncate: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    sb = mmap(NULL, sb_size(nrows), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sb == MAP_FAILED) {
        sf_error("cannot map the scoreboard: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    sb->magic = SB_MAGIC;
    sb->layout = SB_LAYOUT;
    sb->start_time = wall_now();
    sb->nrows = nrows;
    sb_fd = fd;
    return sb;
}

struct scoreboard *scoreboard_attach(int fd)
{
    struct scoreboard head, *sb;

    if (pread(fd, &head, sizeof head, 0) != (ssize_t)sizeof head || head.magic != SB_MAGIC) {
        sf_error("descriptor %d is not a springfield scoreboard", fd);
        close(fd);
        return NULL;
    }
    if (head.layout != SB_LAYOUT) {
        sf_warn("the scoreboard of the process being replaced has another layout (an "
                "upgrade): the counters start again from 0");
        close(fd);
        return NULL;
    }
    sb = mmap(NULL, sb_size((unsigned)head.nrows), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sb == MAP_FAILED) {
        sf_error("cannot map the scoreboard: %s", strerror(errno));
        return NULL;
    }
    sb_fd = fd;
    return sb;
}

int scoreboard_fd(const struct scoreboard *sb)
{
    (void)sb;
    return sb_fd;
}

int scoreboard_reserve(struct scoreboard *sb, pid_t holder)
{
    for (uint64_t i = 0; i < sb->nrows; i++) {
        uint64_t free_pid = 0;

        if (__atomic_compare_exchange_n(&sb->rows[i].pid, &free_pid, (uint64_t)holder, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (int)i;
    }
    return -1;
}

void scoreboard_claim(struct scoreboard *sb, unsigned slot, pid_t pid, uint64_t gen)
{
    struct sb_row *row = &sb->rows[slot];

    row->started = wall_now();
    __atomic_store_n(&row->generation, gen, __ATOMIC_RELAXED);
    __atomic_store_n(&row->used, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&row->pid, (uint64_t)pid, __ATOMIC_RELEASE);
}

static void zero_gauges(struct sb_row *row)
{
    __atomic_store_n(&row->engine.connections, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&row->engine.in_flight, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&row->served, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&row->rss_kib, 0, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < SB_BACKENDS; i++) {
        __atomic_store_n(&row->backends[i].pending, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&row->backends[i].queued, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&row->backends[i].breaker_state, 0, __ATOMIC_RELAXED);
    }
}

struct sb_row *scoreboard_row_begin(struct scoreboard *sb, unsigned slot)
{
    zero_gauges(&sb->rows[slot]);
    return &sb->rows[slot];
}

void scoreboard_leave(struct scoreboard *sb, unsigned slot)
{
    zero_gauges(&sb->rows[slot]);
    __atomic_store_n(&sb->rows[slot].pid, 0, __ATOMIC_RELEASE);
}
