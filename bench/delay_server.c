/*
 * bench/delay_server.c — an HTTP/1.1 server that answers every request
 * with a fixed weather document after a fixed delay, for bench/maggie.sh.
 *
 *   delay_server PORT [DELAY_MS]        (default 100 ms)
 *
 * One libev loop, keep-alive, one timer per waiting request: thousands of
 * requests a second each wait exactly DELAY_MS without the server becoming
 * the bottleneck (a Python server of the same kind lagged by ~5 % at
 * 2000 req/s).
 * Built by bench/maggie.sh; not part of springfield.
 */
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char answer[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 85\r\n\r\n"
    "{\"query\":{\"results\":{\"channel\":{\"item\":{\"condition\":"
    "{\"temp\":\"72\",\"text\":\"Sunny\"}}}}}}";

static double delay;

struct client {
    ev_io io;
    ev_timer timer;
    char buf[8192];
    size_t len;
    unsigned owed; /* requests read, answers not yet sent */
};

static void drop(struct ev_loop *loop, struct client *c)
{
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    close(c->io.fd);
    free(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct client *c = w->data;

    (void)revents;
    for (; c->owed; c->owed--)
        if (write(c->io.fd, answer, sizeof answer - 1) < 0) {
            drop(loop, c);
            return;
        }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = w->data;
    ssize_t n = read(w->fd, c->buf + c->len, sizeof c->buf - c->len);
    char *end;

    (void)revents;
    if (n <= 0) {
        drop(loop, c);
        return;
    }
    c->len += (size_t)n;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
        size_t used = (size_t)(end + 4 - c->buf);

        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if (c->owed++ == 0) {
            ev_timer_set(&c->timer, delay, 0);
            ev_timer_start(loop, &c->timer);
        }
    }
    if (c->len == sizeof c->buf)
        drop(loop, c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    int fd = accept(w->fd, NULL, NULL);
    struct client *c;

    (void)revents;
    if (fd < 0)
        return;
    c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    ev_io_init(&c->io, on_read, fd, EV_READ);
    ev_init(&c->timer, on_timer);
    c->io.data = c->timer.data = c;
    ev_io_start(loop, &c->io);
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct ev_loop *loop = ev_default_loop(0);
    int fd, one = 1;
    ev_io accept_w;

    if (argc < 2) {
        fprintf(stderr, "usage: delay_server PORT [DELAY_MS]\n");
        return 2;
    }
    delay = (argc > 2 ? atof(argv[2]) : 100.0) / 1000;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0) {
        perror("delay_server");
        return 1;
    }
    ev_io_init(&accept_w, on_accept, fd, EV_READ);
    ev_io_start(loop, &accept_w);
    ev_run(loop, 0);
    return 0;
}
