/* fcgi/fd_reserve.c — refusing connections at the descriptor limit (fd_reserve.h). */
#include "fcgi/fd_reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

int fd_reserve_take(struct fd_reserve *r)
{
    if (r->fd < 0)
        r->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return r->fd < 0 ? -1 : 0;
}

int fd_reserve_refuse_one(struct fd_reserve *r, int listen_fd)
{
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    int fd, err;

    if (r->fd < 0)
        return -1;
    close(r->fd);
    r->fd = -1;
    do
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    while (fd < 0 && (errno == EINTR || errno == ECONNABORTED || errno == EPROTO));
    err = errno;
    if (fd >= 0) {
        /* closed with a reset (TCP): the peer learns at once; fails
         * harmlessly on unix sockets, whose peer reads the end */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fd);
    }
    /* a thread of the process may have taken the descriptor meanwhile:
     * then there is no reserve until the next try */
    fd_reserve_take(r);
    if (fd >= 0)
        return 1;
    return err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
}

void fd_reserve_release(struct fd_reserve *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}
