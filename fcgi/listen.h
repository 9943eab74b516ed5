/*
 * fcgi/listen.h — where the listening socket comes from.
 *
 * Either inherited on fd 0 (spawn-fcgi, Apache mod_fcgid, systemd socket
 * activation: FCGI_LISTENSOCK_FILENO), or made from an address:
 * "unix:/path/to.sock" or "HOST:PORT" ("[::1]:9000" for IPv6).
 */
#ifndef SPRINGFIELD_FCGI_LISTEN_H
#define SPRINGFIELD_FCGI_LISTEN_H

/* True when fd 0 is a listening socket. */
int listen_inherited(void);

/*
 * Opens a listening socket on addr.  For unix sockets, a stale socket file
 * left by a dead process is replaced, a live one is an error; the file
 * gets socket_mode.  Returns the fd, or -1 after logging why.
 */
int listen_open(const char *addr, unsigned socket_mode, int backlog);

/* Removes the socket file of a "unix:" address (at exit). */
void listen_cleanup(const char *addr);

#endif
