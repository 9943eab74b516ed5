/* bench/address.c — "unix:PATH" or "HOST:PORT" to a socket address. */
#include "bench/address.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

int bench_address(const char *spec, bool passive, struct bench_address *out, char *err,
                  size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!strncmp(spec, "unix:", 5)) {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
        const char *path = spec + 5;

        if (!*path || strlen(path) >= sizeof un->sun_path) {
            snprintf(err, err_size, "bad unix socket path in '%s'", spec);
            return -1;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, path);
        out->len = sizeof *un;
        out->is_unix = true;
        out->path = path;
        return 0;
    } else {
        char host[256];
        const char *colon = strrchr(spec, ':'), *h = spec;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
        struct addrinfo *ai;
        size_t hl;
        int rc;

        if (!colon || colon == spec || !colon[1]) {
            snprintf(err, err_size, "address '%s' is neither unix:PATH nor HOST:PORT", spec);
            return -1;
        }
        hl = (size_t)(colon - spec);
        if (spec[0] == '[' && colon[-1] == ']') { /* [::1]:9000 */
            h++;
            hl -= 2;
        }
        if (hl >= sizeof host) {
            snprintf(err, err_size, "host name too long in '%s'", spec);
            return -1;
        }
        memcpy(host, h, hl);
        host[hl] = '\0';
        rc = getaddrinfo(host, colon + 1, &hints, &ai);
        if (rc) {
            snprintf(err, err_size, "%s: %s", spec, gai_strerror(rc));
            return -1;
        }
        memcpy(&out->sa, ai->ai_addr, ai->ai_addrlen);
        out->len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
    }
}
