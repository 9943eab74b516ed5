/* fcgi/handover.c — starting a successor from the binary on disk (handover.h). */
#include "fcgi/handover.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "common/log.h"

#define HANDOVER_ENV "_SPRINGFIELD_HANDOVER"

extern char **environ;

static char binary[PATH_MAX];
static char **arguments;
static int ready_to_tell = -1; /* in a successor: the pipe's write end */

void handover_init(int argc, char **argv)
{
    ssize_t n = readlink("/proc/self/exe", binary, sizeof binary - 1);

    (void)argc;
    arguments = argv;
    if (n <= 0) {
        /* no /proc: the name it was started by, found again on PATH by execvp */
        snprintf(binary, sizeof binary, "%s", argv[0]);
        return;
    }
    binary[n] = '\0';
}

static bool parse_fd(const char *s, const char *name, int *fd)
{
    const char *p = strstr(s, name);
    char *end;
    long v;

    if (!p)
        return false;
    p += strlen(name);
    errno = 0;
    v = strtol(p, &end, 10);
    if (errno || end == p || v < 0 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0)
        return false;
    *fd = (int)v;
    return true;
}

bool handover_inherited(int *listen_fd, int *keep_fd)
{
    const char *v = getenv(HANDOVER_ENV);
    int ready = -1;

    *listen_fd = *keep_fd = -1;
    if (!v)
        return false;
    if (!parse_fd(v, "listen=", listen_fd) || !parse_fd(v, "ready=", &ready)) {
        sf_error("%s='%.64s' names no open descriptors; starting afresh", HANDOVER_ENV, v);
        *listen_fd = -1;
        unsetenv(HANDOVER_ENV);
        return false;
    }
    if (!parse_fd(v, "keep=", keep_fd))
        *keep_fd = -1;
    unsetenv(HANDOVER_ENV);
    /* neither goes on to a process this one starts */
    fcntl(*listen_fd, F_SETFD, FD_CLOEXEC);
    if (*keep_fd >= 0)
        fcntl(*keep_fd, F_SETFD, FD_CLOEXEC);
    fcntl(ready, F_SETFD, FD_CLOEXEC);
    ready_to_tell = ready;
    return true;
}

void handover_ready(void)
{
    ssize_t n;

    if (ready_to_tell < 0)
        return;
    do
        n = write(ready_to_tell, "R", 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        sf_warn("cannot tell the process being replaced that this one serves: %s",
                strerror(errno));
    close(ready_to_tell);
    ready_to_tell = -1;
}

/* environ plus HANDOVER_ENV=value, made before the fork: the child of a
 * process with threads may only call async-signal-safe functions. */
static char **environment_with(const char *value)
{
    size_t n = 0, i, k = 0;
    char **env;

    while (environ[n])
        n++;
    env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    for (i = 0; i < n; i++)
        if (strncmp(environ[i], HANDOVER_ENV "=", sizeof HANDOVER_ENV) != 0)
            env[k++] = environ[i];
    env[k++] = (char *)value;
    env[k] = NULL;
    return env;
}

pid_t handover_start(int listen_fd, int keep_fd, int *ready_fd)
{
    char value[128];
    char **env;
    sigset_t none;
    int p[2];
    pid_t pid;

    if (!arguments) {
        sf_error("reload: handover_init was not called");
        return -1;
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        sf_error("reload: pipe: %s", strerror(errno));
        return -1;
    }
    snprintf(value, sizeof value, HANDOVER_ENV "=listen=%d keep=%d ready=%d", listen_fd, keep_fd,
             p[1]);
    env = environment_with(value);
    if (!env) {
        sf_error("reload: out of memory");
        close(p[0]);
        close(p[1]);
        return -1;
    }
    sigemptyset(&none);
    pid = fork();
    if (pid == 0) {
        /* Only what is handed over survives the exec. */
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        fcntl(listen_fd, F_SETFD, 0);
        if (keep_fd >= 0)
            fcntl(keep_fd, F_SETFD, 0);
        fcntl(p[1], F_SETFD, 0);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(binary, arguments, env);
        if (strchr(binary, '/') == NULL)
            execvpe(binary, arguments, env);
        _exit(127); /* the pipe's end of file tells the predecessor */
    }
    free(env);
    close(p[1]);
    if (pid < 0) {
        sf_error("reload: fork: %s", strerror(errno));
        close(p[0]);
        return -1;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *ready_fd = p[0];
    sf_info("reload: started %s as process %d; it takes over once it serves", binary, (int)pid);
    return pid;
}

int handover_poll(int *ready_fd)
{
    char c;
    ssize_t n = read(*ready_fd, &c, 1);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -1;
    close(*ready_fd);
    *ready_fd = -1;
    return n == 1 && c == 'R';
}
