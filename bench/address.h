/*
 * bench/address.h — the one address syntax of the bench tools,
 * "unix:PATH" or "HOST:PORT" (an IPv6 host in brackets: [::1]:9000),
 * resolved to a socket address.  Shared by fcgi-load (connects) and
 * floor (listens); libc only, like them.
 */
#ifndef SPRINGFIELD_BENCH_ADDRESS_H
#define SPRINGFIELD_BENCH_ADDRESS_H

#include <stdbool.h>
#include <sys/socket.h>

struct bench_address {
    struct sockaddr_storage sa;
    socklen_t len;
    bool is_unix;
    const char *path; /* the unix socket's path (inside the spec), or NULL */
};

/* Parses and resolves spec into *out (passive: for bind).  On failure,
 * returns -1 with a message in err (err_size bytes). */
int bench_address(const char *spec, bool passive, struct bench_address *out, char *err,
                  size_t err_size);

#endif
