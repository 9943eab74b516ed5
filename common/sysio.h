/*
 * common/sysio.h — read(2) and write(2) for the event loop's sockets,
 * made straight through syscall(2).
 *
 * Once a process has a second thread (the log writer, the store's
 * workers), glibc's read and write are cancellation points: each call
 * turns asynchronous cancellation on and off around the system call, a
 * cost measured at about 1.4 % of the CPU under bench/app.sh depth 8.
 * springfield never cancels a thread, and a non-blocking socket call
 * never waits, so the loop's own calls skip it.  Errors are as read and
 * write give them: -1 and errno.
 */
#ifndef SPRINGFIELD_COMMON_SYSIO_H
#define SPRINGFIELD_COMMON_SYSIO_H

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static inline ssize_t sys_read(int fd, void *buf, size_t len)
{
    return (ssize_t)syscall(SYS_read, fd, buf, len);
}

static inline ssize_t sys_write(int fd, const void *buf, size_t len)
{
    return (ssize_t)syscall(SYS_write, fd, buf, len);
}

#endif
