/*
 * bench/reuseport.c — an LD_PRELOAD library for bench/workers.sh: every
 * TCP socket the program binds gets SO_REUSEPORT first, so that several
 * independent springfield processes can listen on one port, each on a
 * socket of its own, and the kernel spreads the connections over them.
 * That is what "a SO_REUSEPORT socket per worker" would be, measured
 * without teaching springfield's supervisor to open one per worker.
 *
 *   cc -shared -fPIC -o reuseport.so bench/reuseport.c -ldl
 *   LD_PRELOAD=./reuseport.so springfield --listen 127.0.0.1:9000
 *
 * Not part of springfield: built by the script that uses it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    int one = 1, type = 0;
    socklen_t type_len = sizeof type;

    if (!real_bind)
        real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    return real_bind(fd, sa, len);
}
