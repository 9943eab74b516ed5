/*
 * tests/unit/test_log.c — the process log (common/log.c): the line format,
 * the level filter, and lines dropped while stderr is full, counted
 * exactly when several threads log at once (mongo-c-driver logs from its
 * own threads) and told in the next line that gets through.
 *
 * stderr is pointed at a pipe nobody reads for the duration of a test.
 */
#include "tests/unit/unit.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define THREADS 4
#define LINES_PER_THREAD 5000

static int saved_stderr = -1;
static int pipe_r = -1, pipe_w = -1;

/* stderr becomes the write end of a fresh pipe (blocking, as a shared
 * stderr is). */
static void stderr_to_pipe(void)
{
    int p[2];

    CU_ASSERT_FATAL(pipe(p) == 0);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    CU_ASSERT_FATAL(saved_stderr >= 0);
    CU_ASSERT_FATAL(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
    close(p[1]);
    pipe_r = p[0];
    pipe_w = STDERR_FILENO;
}

static void stderr_back(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    close(pipe_r);
    saved_stderr = pipe_r = -1;
}

/* Fills the pipe until a write would block: poll() then says no room. */
static void fill_pipe(void)
{
    char junk[4096];
    int fl = fcntl(pipe_w, F_GETFL);

    memset(junk, 'j', sizeof junk);
    fcntl(pipe_w, F_SETFL, fl | O_NONBLOCK);
    while (write(pipe_w, junk, sizeof junk) > 0 || write(pipe_w, junk, 1) > 0)
        ;
    fcntl(pipe_w, F_SETFL, fl);
}

/* Empties the pipe; out gets the first size - 1 bytes, NUL-terminated. */
static void drain_pipe(char *out, size_t size)
{
    int fl = fcntl(pipe_r, F_GETFL);
    size_t n = 0;
    char buf[4096];
    ssize_t k;

    fcntl(pipe_r, F_SETFL, fl | O_NONBLOCK);
    while ((k = read(pipe_r, buf, sizeof buf)) > 0) {
        size_t take = (size_t)k < size - 1 - n ? (size_t)k : size - 1 - n;

        memcpy(out + n, buf, take);
        n += take;
    }
    fcntl(pipe_r, F_SETFL, fl);
    out[n] = '\0';
}

static void test_line_format_and_level(void)
{
    char got[8192];

    stderr_to_pipe();
    sf_log_set_level(SF_LOG_WARN);
    sf_info("not %s", "shown");
    sf_warn("shown %d", 42);
    sf_log_set_level(SF_LOG_INFO);
    drain_pipe(got, sizeof got);
    stderr_back();

    CU_ASSERT_PTR_NULL(strstr(got, "not shown"));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, " warn: shown 42\n"));
    /* 2026-11-26T03:24:00Z springfield[pid] level: text */
    CU_ASSERT(strlen(got) > 21 && got[4] == '-' && got[10] == 'T' && got[19] == 'Z');
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "Z springfield["));
}

static void *log_a_lot(void *arg)
{
    (void)arg;
    for (int i = 0; i < LINES_PER_THREAD; i++)
        sf_error("line %d from a thread", i);
    return NULL;
}

static void test_dropped_counted_across_threads(void)
{
    pthread_t t[THREADS];
    char got[8192], want[96];

    stderr_to_pipe();
    fill_pipe();
    for (int i = 0; i < THREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, log_a_lot, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    drain_pipe(got, sizeof got); /* the junk: room again */
    sf_error("after the flood");
    drain_pipe(got, sizeof got);
    stderr_back();

    /* every line was dropped, each counted once, and said in the same
     * write as the next line */
    snprintf(want, sizeof want, "(%d log line(s) dropped: the log had no room)\n",
             THREADS * LINES_PER_THREAD);
    CU_ASSERT_NSTRING_EQUAL(got, want, strlen(want));
    if (strncmp(got, want, strlen(want)) != 0)
        fprintf(stdout, "\n  got: %.120s\n", got);
    CU_ASSERT_PTR_NOT_NULL(strstr(got, " error: after the flood\n"));
    CU_ASSERT_PTR_NULL(strstr(got, "from a thread"));
}

static void test_count_resets(void)
{
    char got[8192];
    const char *first;

    stderr_to_pipe();
    fill_pipe();
    sf_error("dropped");
    drain_pipe(got, sizeof got);
    sf_error("first");
    sf_error("second");
    drain_pipe(got, sizeof got);
    stderr_back();

    CU_ASSERT_NSTRING_EQUAL(got, "(1 log line(s) dropped", 22);
    first = strstr(got, "error: first\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    /* said once: the second line comes alone */
    CU_ASSERT_PTR_NULL(strstr(first, "dropped"));
    CU_ASSERT_PTR_NOT_NULL(strstr(first, "error: second\n"));
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"line format and level filter", test_line_format_and_level},
        {"lines dropped by several threads are counted exactly", test_dropped_counted_across_threads},
        {"the dropped count is told once", test_count_resets},
        {NULL, NULL},
    };
    return unit_run("log", tests, 60);
}
