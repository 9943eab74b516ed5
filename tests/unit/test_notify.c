/*
 * tests/unit/test_notify.c — fcgi/notify.c's messages, as systemd would
 * receive them on a NOTIFY_SOCKET the test binds: the state machine of
 * notify.h (READY=1 once, STATUS= on change, RELOADING=1, STOPPING=1 as
 * the last word), a reload that hands the main process over (MAINPID=
 * with READY=1, then silence; a successor that does not say READY=1), and
 * the worker pool (READY=1 once every worker reported, summed STATUS=).
 *
 * notify.c keeps its state in one static: each test runs in a child
 * process of its own (fork), so that every test starts from scratch.
 */
#include "tests/unit/unit.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fcgi/notify.h"

static int bind_notify(char *path, size_t size)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    snprintf(path, size, "/tmp/sf-test-notify-%d.sock", (int)getpid());
    unlink(path);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return -1;
    setenv("NOTIFY_SOCKET", path, 1);
    return fd;
}

/* The next datagram (NUL-terminated into buf), or "" when none comes
 * within wait_ms. */
static const char *next(int fd, char *buf, size_t size, int wait_ms)
{
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    ssize_t n;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    n = recv(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Runs body in a child; the test fails when the child's checks failed
 * (CHECK below: CUnit's own asserts count in the parent only). */
static void in_child(void (*body)(int fd))
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        char path[108];
        int fd = bind_notify(path, sizeof path);

        if (fd < 0)
            _exit(2);
        body(fd); /* CHECK exits 1 on a failure */
        unlink(path);
        _exit(0);
    }
    CU_ASSERT_FATAL(pid > 0);
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Inside a child: a check that fails makes the child exit 1. */
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "test_notify: %s (line %d)\n", #cond, __LINE__);             \
            _exit(1);                                                                     \
        }                                                                                 \
    } while (0)

static void single_body(int fd)
{
    char m[1024], pidline[32];

    sf_notify_init();
    CHECK(sf_notify_enabled());
    CHECK(getenv("NOTIFY_SOCKET") != NULL); /* kept for a reload's successor */
    sf_notify_serving(0, "");
    next(fd, m, sizeof m, 1000);
    snprintf(pidline, sizeof pidline, "MAINPID=%d", (int)getpid());
    CHECK(!strncmp(m, "READY=1\n", 8));
    CHECK(strstr(m, "\nSTATUS=serving; 0 requests in flight; backends down: none\n"));
    CHECK(strstr(m, pidline));
    /* the same status again: nothing; a change: STATUS= alone */
    sf_notify_serving(0, "");
    CHECK(!*next(fd, m, sizeof m, 100));
    sf_notify_serving(1, "redis (marges)");
    CHECK(!strcmp(next(fd, m, sizeof m, 1000),
                  "STATUS=serving; 1 request in flight; backends down: redis (marges)"));
    /* a reload within the process: RELOADING=1 with the clock, READY=1 again */
    sf_notify_reloading();
    next(fd, m, sizeof m, 1000);
    CHECK(!strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27));
    sf_notify_ready();
    CHECK(!strncmp(next(fd, m, sizeof m, 1000), "READY=1\n", 8));
    sf_notify_status("hello %d", 42);
    CHECK(!strcmp(next(fd, m, sizeof m, 1000), "STATUS=hello 42"));
    sf_notify_stopping();
    CHECK(!strncmp(next(fd, m, sizeof m, 1000), "STOPPING=1\n", 11));
    /* after STOPPING=1: no READY=1, no second STOPPING=1; STATUS= still */
    sf_notify_ready();
    sf_notify_stopping();
    sf_notify_reloading();
    sf_notify_serving(3, "");
    CHECK(!strcmp(next(fd, m, sizeof m, 1000),
                  "STATUS=stopping; 3 requests in flight; backends down: none"));
    CHECK(!*next(fd, m, sizeof m, 100));
}

static void test_single_process(void)
{
    in_child(single_body);
}

static void handover_body(int fd)
{
    char m[1024];

    sf_notify_init();
    sf_notify_serving(0, "");
    CHECK(!strncmp(next(fd, m, sizeof m, 1000), "READY=1\n", 8));
    sf_notify_reloading();
    CHECK(!strncmp(next(fd, m, sizeof m, 1000), "RELOADING=1\n", 12));
    sf_notify_handed_over(4242);
    CHECK(!strcmp(next(fd, m, sizeof m, 1000),
                  "MAINPID=4242\nREADY=1\nSTATUS=reloaded: process 4242 serves"));
    /* the predecessor drains in silence: the service is not stopping */
    sf_notify_stopping();
    sf_notify_serving(1, "");
    sf_notify_status("x");
    CHECK(!*next(fd, m, sizeof m, 100));
}

static void test_reload_that_hands_over(void)
{
    in_child(handover_body);
}

static void successor_body(int fd)
{
    char m[1024];

    sf_notify_init();
    sf_notify_successor();
    sf_notify_serving(0, ""); /* serving, but not the main process yet */
    CHECK(!*next(fd, m, sizeof m, 200));
    /* once it is (its predecessor said MAINPID=), it speaks as any */
    sf_notify_serving(2, "");
    CHECK(!strcmp(next(fd, m, sizeof m, 1000),
                  "STATUS=serving; 2 requests in flight; backends down: none"));
    sf_notify_stopping();
    CHECK(!strncmp(next(fd, m, sizeof m, 1000), "STOPPING=1\n", 11));
}

static void test_successor(void)
{
    in_child(successor_body);
}

/* A worker, forked after sf_notify_pool_open: reports, never notifies. */
static void worker(unsigned long in_flight, const char *down, bool stay)
{
    sf_notify_pool_child();
    sf_notify_ready(); /* muted in a worker */
    sf_notify_serving(in_flight, down);
    if (stay)
        pause();
    _exit(0);
}

static void pool_body(int fd)
{
    char m[1024];
    sigset_t io;
    pid_t a, b;

    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    sigprocmask(SIG_BLOCK, &io, NULL); /* as the supervisor does */
    sf_notify_init();
    sf_notify_pool_open(2);
    CHECK(sf_notify_pool_fd() >= 0);
    sf_notify_pool_read(); /* nobody yet: a status, no READY=1 */
    CHECK(!strcmp(next(fd, m, sizeof m, 1000),
                  "STATUS=0 of 2 workers serving; 0 requests in flight; backends down: none"));
    if ((a = fork()) == 0)
        worker(1, "redis (marges)", true);
    usleep(200 * 1000);
    sf_notify_pool_read(); /* one of two: not ready */
    next(fd, m, sizeof m, 1000);
    CHECK(!strcmp(m, "STATUS=1 of 2 workers serving; 1 request in flight; "
                     "backends down: redis (marges)"));
    CHECK(!*next(fd, m, sizeof m, 100));
    if ((b = fork()) == 0)
        worker(2, "redis (marges), weather (maggie)", true);
    usleep(200 * 1000);
    sf_notify_pool_read();
    next(fd, m, sizeof m, 1000);
    CHECK(!strncmp(m, "READY=1\n", 8));
    CHECK(strstr(m, "\nSTATUS=2 of 2 workers serving; 3 requests in flight; "
                    "backends down: redis (marges), weather (maggie)\n"));
    CHECK(!*next(fd, m, sizeof m, 100)); /* the workers said nothing to systemd */
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    sf_notify_pool_read();
    sf_notify_pool_gone(a);
    sf_notify_pool_read();
    CHECK(!strcmp(next(fd, m, sizeof m, 1000),
                  "STATUS=1 of 2 workers serving; 2 requests in flight; "
                  "backends down: redis (marges), weather (maggie)"));
    kill(b, SIGKILL);
    waitpid(b, NULL, 0);
}

static void test_pool(void)
{
    in_child(pool_body);
}

static void test_without_notify_socket(void)
{
    unsetenv("NOTIFY_SOCKET");
    sf_notify_init();
    CU_ASSERT_FALSE(sf_notify_enabled());
    sf_notify_serving(0, ""); /* nothing to send, nothing to crash */
    sf_notify_stopping();
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    sf_notify_init();
    CU_ASSERT_FALSE(sf_notify_enabled());
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"single process: READY=1, STATUS= on change, RELOADING=1, STOPPING=1 last",
         test_single_process},
        {"a reload that hands over: MAINPID= and READY=1, then silence",
         test_reload_that_hands_over},
        {"a reload's successor does not say READY=1 itself", test_successor},
        {"the pool: READY=1 once every worker reported, STATUS= summed", test_pool},
        {"no NOTIFY_SOCKET, or a bad one: nothing", test_without_notify_socket},
        {NULL, NULL},
    };
    return unit_run("notify", tests, 60);
}
