/* fcgi/pidfile.c — the pid file (pidfile.h). */
#include "fcgi/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

int pidfile_write(const char *path, pid_t pid)
{
    char tmp[4096], line[32];
    int fd, n = snprintf(line, sizeof line, "%d\n", (int)pid);

    if (snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        sf_error("--pid-file %.64s...: path too long", path);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n || close(fd) < 0 || rename(tmp, path) < 0) {
        sf_error("cannot write the pid file %s: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
        return -1;
    }
    return 0;
}

void pidfile_remove(const char *path)
{
    char line[32] = "";
    FILE *f = fopen(path, "r");

    if (!f)
        return;
    if (fgets(line, sizeof line, f) && atoi(line) == (int)getpid())
        unlink(path);
    fclose(f);
}
