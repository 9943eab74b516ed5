/* fcgi/listen.c — opening or inheriting the listening socket. */
#include <errno.h>
#include <fastcgi.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcgi/listen.h"
#include "common/log.h"
#include "common/setting.h"

static bool is_listening(int fd);

int listen_inherited(void)
{
    return is_listening(FCGI_LISTENSOCK_FILENO);
}

static bool is_listening(int fd)
{
    int listening = 0;
    socklen_t len = sizeof listening;

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening;
}

int listen_activated(bool use)
{
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    unsigned long long pid = 0, fds = 0;
    char why[SETTING_WHY_MAX];
    int fd, rc = -1;

    if (!pid_s && !fds_s)
        return -1;
    if (!pid_s || setting_number("LISTEN_PID", pid_s, 10, 1, INT_MAX, &pid, why) < 0 ||
        pid != (unsigned long long)getpid()) {
        /* not for this process (a parent's, left in the environment) */
        goto out;
    }
    if (!fds_s || setting_number("LISTEN_FDS", fds_s, 10, 0, 4096, &fds, why) < 0) {
        sf_error("socket activation: %s", fds_s ? why : "LISTEN_PID without LISTEN_FDS");
        rc = -2;
        goto out;
    }
    if (fds == 0)
        goto out;
    for (fd = LISTEN_FDS_START + (use ? 1 : 0); fd < LISTEN_FDS_START + (int)fds; fd++)
        close(fd);
    if (!use) {
        sf_info("--listen given: the %llu socket(s) systemd passed (LISTEN_FDS) are closed",
                fds);
        goto out;
    }
    if (fds > 1)
        sf_warn("systemd passed %llu sockets (LISTEN_FDS); serving the first, fd %d, and "
                "closing the others", fds, LISTEN_FDS_START);
    if (!is_listening(LISTEN_FDS_START)) {
        sf_error("socket activation: fd %d, which systemd passed, is not a listening socket",
                 LISTEN_FDS_START);
        rc = -2;
        goto out;
    }
    fcntl(LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
    rc = LISTEN_FDS_START;
out:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return rc;
}

/*
 * Whether something accepts connections on the socket file at sa.  The
 * connect does not block: a live server whose backlog is full answers
 * EAGAIN at once (a blocking connect would wait for ever), and anything
 * slower is given at most PROBE_MS.  1 in use, 0 stale, -1 unknown.
 */
#define PROBE_MS 1000

static int socket_in_use(const struct sockaddr_un *sa, const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc = -1;

    if (fd < 0) {
        sf_error("socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0) {
        rc = 1;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        rc = 1; /* listening, backlog full */
    } else if (errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof err;

        if (poll(&pfd, 1, PROBE_MS) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
            rc = err == 0 ? 1 : 0;
        else
            rc = 1; /* it did not refuse: something is there */
    } else if (errno == ECONNREFUSED || errno == ENOENT) {
        rc = 0;
    } else {
        sf_error("cannot check whether %s is in use: %s", path, strerror(errno));
    }
    close(fd);
    return rc;
}

static int open_unix(const char *path, unsigned mode, int backlog, struct listen_file *file)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof sa.sun_path) {
        sf_error("unix socket path too long (max %zu bytes): %s", sizeof sa.sun_path - 1, path);
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);

    if (lstat(path, &st) == 0) {
        int used;

        if (!S_ISSOCK(st.st_mode)) {
            sf_error("%s exists and is not a socket; not replacing it", path);
            return -1;
        }
        used = socket_in_use(&sa, path);
        if (used != 0) {
            if (used > 0)
                sf_error("%s is in use by another process", path);
            return -1;
        }
        unlink(path); /* stale: its server is gone */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sf_error("socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        sf_error("cannot bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (chmod(path, mode) < 0 || lstat(path, &st) < 0) {
        /* sun_path, the same bytes: GCC's UBSan build thinks path may be NULL */
        sf_error("cannot set mode %04o on %s: %s", mode, sa.sun_path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    if (listen(fd, backlog) < 0) {
        sf_error("cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    file->path = strdup(path);
    if (!file->path) {
        sf_error("out of memory");
        close(fd);
        unlink(path);
        return -1;
    }
    file->dev = st.st_dev;
    file->ino = st.st_ino;
    file->missing = false;
    return fd;
}

static int open_tcp(const char *addr, int backlog)
{
    char host[256];
    const char *colon = strrchr(addr, ':'), *port;
    struct addrinfo hints, *res = NULL, *ai;
    size_t hlen;
    int fd = -1, rc, one = 1;

    if (!colon || colon == addr || !colon[1]) {
        sf_error("listen address '%s' is neither unix:PATH nor HOST:PORT", addr);
        return -1;
    }
    port = colon + 1;
    hlen = (size_t)(colon - addr);
    if (addr[0] == '[' && colon[-1] == ']') { /* [::1]:9000 */
        addr++;
        hlen -= 2;
    }
    if (hlen >= sizeof host) {
        sf_error("listen host too long: %s", addr);
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        sf_error("cannot resolve listen address %s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
            break;
        sf_error("cannot listen on %s:%s: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int listen_open(const char *addr, unsigned socket_mode, int backlog, struct listen_file *file)
{
    memset(file, 0, sizeof *file);
    if (!strncmp(addr, "unix:", 5))
        return open_unix(addr + 5, socket_mode, backlog, file);
    return open_tcp(addr, backlog);
}

static bool still_ours(const struct listen_file *file)
{
    struct stat st;

    return lstat(file->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == file->dev &&
           st.st_ino == file->ino;
}

int listen_file_check(struct listen_file *file)
{
    if (!file->path || file->missing)
        return file->missing ? -1 : 0;
    if (still_ours(file))
        return 0;
    file->missing = true;
    sf_error("socket file %s was removed or replaced: new connections through that path "
             "no longer reach this process (connections already open go on); restart "
             "springfield to listen there again", file->path);
    return -1;
}

void listen_cleanup(struct listen_file *file)
{
    if (!file->path)
        return;
    if (still_ours(file))
        unlink(file->path);
    else if (!file->missing)
        sf_info("socket file %s is not ours any more; left in place", file->path);
    free(file->path);
    file->path = NULL;
}

void listen_file_forget(struct listen_file *file)
{
    free(file->path);
    file->path = NULL;
}

void listen_file_adopt(const char *addr, struct listen_file *file)
{
    struct stat st;

    file->path = NULL;
    file->missing = false;
    if (!addr || strncmp(addr, "unix:", 5) != 0 || stat(addr + 5, &st) < 0 || !S_ISSOCK(st.st_mode))
        return;
    file->path = strdup(addr + 5);
    file->dev = st.st_dev;
    file->ino = st.st_ino;
}
