/*
 * fcgi/fd_reserve.h — a descriptor kept in reserve for the moment the
 * process has none left.
 *
 * At the open-file limit accept() fails with EMFILE (ENFILE: the
 * system's table is full) and the connection stays in the listen backlog:
 * its client has connected and waits for an answer that never comes.
 * With one descriptor held back, the server can still take such a
 * connection and close it at once: the front server sees a refusal (a
 * reset) instead of a hang, and tries elsewhere or answers 502 now.
 */
#ifndef SPRINGFIELD_FCGI_FD_RESERVE_H
#define SPRINGFIELD_FCGI_FD_RESERVE_H

struct fd_reserve {
    int fd; /* -1 while not held */
};

/* Takes the reserve descriptor (/dev/null) if it is not held; 0 when it is
 * held, -1 when no descriptor could be had. */
int fd_reserve_take(struct fd_reserve *r);

/*
 * Out of descriptors: gives the reserve up, accepts one connection from
 * listen_fd and closes it at once (a reset, for TCP), then takes the
 * reserve again.  1 when a connection was refused, 0 when none was
 * waiting, -1 when there was no reserve to give up or the accept still
 * failed (the caller waits and tries again).
 */
int fd_reserve_refuse_one(struct fd_reserve *r, int listen_fd);

/* Closes the reserve descriptor. */
void fd_reserve_release(struct fd_reserve *r);

#endif
