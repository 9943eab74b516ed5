/*
 * fcgi/listen.h — where the listening socket comes from.
 *
 * Passed by systemd (socket activation: LISTEN_FDS, fd 3), inherited on
 * fd 0 (spawn-fcgi, Apache mod_fcgid, lighttpd's bin-path, or systemd with
 * StandardInput=socket: FCGI_LISTENSOCK_FILENO), or made from an address:
 * "unix:/path/to.sock" or "HOST:PORT" ("[::1]:9000" for IPv6).
 */
#ifndef SPRINGFIELD_FCGI_LISTEN_H
#define SPRINGFIELD_FCGI_LISTEN_H

#include <stdbool.h>
#include <sys/types.h>

/* The socket file springfield made: removed at exit only while it is
 * still the same file (device and inode), never another instance's. */
struct listen_file {
    char *path;   /* NULL: no file (TCP, inherited) */
    dev_t dev;
    ino_t ino;
    bool missing; /* found removed or replaced (said once) */
};

/* True when fd 0 is a listening socket. */
int listen_inherited(void);

/* The first descriptor systemd passes (SD_LISTEN_FDS_START). */
#define LISTEN_FDS_START 3

/*
 * Socket activation (sd_listen_fds(3), read here without libsystemd):
 * when LISTEN_PID is this process and LISTEN_FDS is 1 or more, systemd
 * passed listening sockets from fd 3 on.  With use true, returns fd 3,
 * checked to be a listening socket and made close-on-exec; any further
 * ones are closed (springfield serves one socket; said in the log).  With
 * use false (--listen wins), they are all closed and that is said.
 * LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are unset in every case, so no
 * child takes them for its own.  Returns the fd, -1 when nothing was
 * passed to this process, -2 on an error (logged: LISTEN_FDS is not a
 * number, fd 3 is not a listening socket).
 */
int listen_activated(bool use);

/*
 * Opens a listening socket on addr.  For unix sockets, a stale socket file
 * left by a dead process is replaced, a live one is an error (the check
 * connects without blocking and waits at most a second); the file gets
 * socket_mode and is described in *file.  Returns the fd, or -1 after
 * logging why.
 */
int listen_open(const char *addr, unsigned socket_mode, int backlog, struct listen_file *file);

/*
 * Checks that the socket file is still ours.  Returns 0 when it is, -1
 * when it was removed or replaced (logged once, with what it means: new
 * connections through that path no longer reach this process).
 */
int listen_file_check(struct listen_file *file);

/* Removes the socket file if it is still ours, and forgets it. */
void listen_cleanup(struct listen_file *file);

/* Forgets the socket file without removing it: another process (a
 * reload's successor) serves it now. */
void listen_file_forget(struct listen_file *file);

/* A reload's successor takes over the socket file of addr (when it is
 * unix:PATH) as it is now, to check and remove it as its own. */
void listen_file_adopt(const char *addr, struct listen_file *file);

#endif
