/*
 * fcgi/pidfile.h — --pid-file: the process to signal (the supervisor, or
 * the single serving process).  Once a reload's successor serves, its
 * predecessor writes the successor's pid over it; at exit a process
 * removes the file only while it still names that process.
 */
#ifndef SPRINGFIELD_FCGI_PIDFILE_H
#define SPRINGFIELD_FCGI_PIDFILE_H

#include <sys/types.h>

/* Writes pid to path (atomically: a temporary file renamed over it).  0,
 * or -1 after logging why. */
int pidfile_write(const char *path, pid_t pid);

/* Removes path if it names this process. */
void pidfile_remove(const char *path);

#endif
