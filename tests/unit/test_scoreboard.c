/* tests/unit/test_scoreboard.c — the shared scoreboard: slots, counters
 * seen across fork, histogram buckets. */
#include "tests/unit/unit.h"
#include <sys/wait.h>
#include <unistd.h>

#include "common/histogram.h"
#include "routes/scoreboard.h"

static void test_slots(void)
{
    struct scoreboard *sb = scoreboard_create(3);

    CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
    CU_ASSERT_EQUAL(scoreboard_reserve(sb, 99), 0);
    CU_ASSERT_EQUAL(sb->rows[0].pid, 99); /* held by its starter until claimed */
    scoreboard_claim(sb, 0, 100, 0);
    CU_ASSERT_EQUAL(scoreboard_reserve(sb, 99), 1);
    scoreboard_claim(sb, 1, 101, 0);
    CU_ASSERT_EQUAL(scoreboard_reserve(sb, 99), 2);
    scoreboard_claim(sb, 2, 102, 0);
    CU_ASSERT_EQUAL(scoreboard_reserve(sb, 99), -1); /* all held */
    stat_add(&sb->rows[1].engine.answered, 7);
    stat_add(&sb->rows[1].engine.in_flight, 2);
    scoreboard_leave(sb, 1);
    CU_ASSERT_EQUAL(sb->rows[1].pid, 0);
    /* a gauge is the leaver's; a counter carries on for the next holder */
    CU_ASSERT_EQUAL(sb->rows[1].engine.in_flight, 0);
    CU_ASSERT_EQUAL(sb->rows[1].engine.answered, 7);
    CU_ASSERT_EQUAL(scoreboard_reserve(sb, 99), 1);
    scoreboard_claim(sb, 1, 103, 1);
    scoreboard_row_begin(sb, 1);
    CU_ASSERT_EQUAL(sb->rows[1].pid, 103);
    CU_ASSERT_EQUAL(sb->rows[1].generation, 1);
    CU_ASSERT_EQUAL(sb->rows[1].engine.answered, 7);
}

/* A child's counting is seen by the parent, and through a second mapping
 * of the same descriptor (what a reload's new process gets). */
static void test_shared_across_fork_and_attach(void)
{
    struct scoreboard *sb = scoreboard_create(2), *again;
    pid_t pid;
    int status;

    CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct sb_row *row = scoreboard_row_begin(sb, 1);

        for (int i = 0; i < 1000; i++)
            stat_add(&row->engine.answered, 1);
        _exit(0);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_EQUAL(sb->rows[1].engine.answered, 1000);
    again = scoreboard_attach(scoreboard_fd(sb));
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    CU_ASSERT_EQUAL(again->nrows, 2);
    CU_ASSERT_EQUAL(again->rows[1].engine.answered, 1000);
    {
        int other = dup(0);

        CU_ASSERT_PTR_NULL(scoreboard_attach(other)); /* not a scoreboard (closed) */
    }
}

static void test_histogram_buckets(void)
{
    struct histogram h = {{0}, 0, 0}, sum = {{0}, 0, 0};

    histogram_add(&h, 0);          /* <= 0.1 ms */
    histogram_add(&h, 0.0001);     /* on the bound: still the first bucket */
    histogram_add(&h, 0.00011);    /* the second */
    histogram_add(&h, 0.3);        /* <= 0.5 s */
    histogram_add(&h, 11);         /* over every bound */
    histogram_add(&h, -1);         /* a clock step: counted as 0 */
    CU_ASSERT_EQUAL(h.bucket[0], 3);
    CU_ASSERT_EQUAL(h.bucket[1], 1);
    CU_ASSERT_DOUBLE_EQUAL(histogram_bound(11), 0.5, 1e-12);
    CU_ASSERT_EQUAL(h.bucket[11], 1);
    CU_ASSERT_EQUAL(h.bucket[HISTOGRAM_BOUNDS], 1);
    CU_ASSERT_EQUAL(h.count, 6);
    CU_ASSERT_EQUAL(h.sum_us, 100 + 110 + 300000 + 11000000);
    histogram_sum(&sum, &h);
    histogram_sum(&sum, &h);
    CU_ASSERT_EQUAL(sum.count, 12);
    CU_ASSERT_EQUAL(sum.bucket[0], 6);
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"slots: claim, leave, counters carry on", test_slots},
        {"shared across fork and a second mapping", test_shared_across_fork_and_attach},
        {"histogram buckets and sums", test_histogram_buckets},
        {NULL, NULL},
    };

    return unit_run("scoreboard", tests, 300);
}
