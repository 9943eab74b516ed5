/*
 * fcgi/handover.h — a reload: a new springfield started from the binary on
 * disk, handed the listening socket, that says when it serves.
 *
 * The process being replaced (the predecessor: a supervisor, or a single
 * serving process) forks and executes the binary its path names now -- an
 * upgraded one is picked up -- with the same arguments and environment,
 * plus _SPRINGFIELD_HANDOVER naming the descriptors it keeps: the listening
 * socket, one more of the caller's (the scoreboard), and the write end of
 * a pipe.  Every other descriptor is closed on exec, so no connection of
 * the predecessor (clients, backends) lives on in the successor.  The
 * successor writes one byte on the pipe once it serves; the predecessor
 * then drains and exits.  End of file without that byte means the
 * successor ended first: the reload failed and the predecessor serves on.
 * Connections queued on the socket wait for whichever process accepts
 * next: none is lost.
 */
#ifndef SPRINGFIELD_FCGI_HANDOVER_H
#define SPRINGFIELD_FCGI_HANDOVER_H

#include <stdbool.h>
#include <sys/types.h>

/* At start-up, before anything changes argv or the environment: what to
 * execute at a reload (the path of this binary, these arguments). */
void handover_init(int argc, char **argv);

/* In a successor: the descriptors the predecessor handed over (the
 * variable is removed from the environment).  false, with *listen_fd and
 * *keep_fd -1, when this process was not started by a reload; also when
 * the variable is malformed (logged). */
bool handover_inherited(int *listen_fd, int *keep_fd);

/* In a successor, once it serves: tells the predecessor (once; a no-op in
 * a process that was not started by a reload). */
void handover_ready(void);

/* In the predecessor: starts the successor.  Returns its pid with
 * *ready_fd the pipe's read end (non-blocking, close-on-exec), or -1
 * after logging why. */
pid_t handover_start(int listen_fd, int keep_fd, int *ready_fd);

/*
 * In the predecessor, when *ready_fd is readable: 1 once the successor
 * serves, 0 when it ended before (the pipe's end of file), -1 when there
 * is nothing yet.  The descriptor is closed on 1 and 0.
 */
int handover_poll(int *ready_fd);

#endif
