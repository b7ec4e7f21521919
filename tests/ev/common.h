/*
 * Shared bits of the differential programs.  Each program is compiled twice
 * from the same source, against libev and against libtriloop-ev, and must
 * print the same transcript on every backend: print only what libev's
 * documentation fixes (order, revents, counts, states), never fds, times or
 * anything a scheduler could change.
 */
#ifndef EVT_COMMON_H
#define EVT_COMMON_H

#include <ev.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P(...) do { printf(__VA_ARGS__); putchar('\n'); fflush(stdout); } while (0)

/* revents as names, so a diff reads well */
static inline const char *evt_names(int ev) {
  static char buf[256];
  static const struct { int bit; const char *name; } names[] = {
    { EV_READ, "READ" }, { EV_WRITE, "WRITE" }, { EV_TIMER, "TIMER" },
    { EV_PERIODIC, "PERIODIC" }, { EV_SIGNAL, "SIGNAL" }, { EV_CHILD, "CHILD" },
    { EV_STAT, "STAT" }, { EV_IDLE, "IDLE" }, { EV_PREPARE, "PREPARE" },
    { EV_CHECK, "CHECK" }, { EV_EMBED, "EMBED" }, { EV_FORK, "FORK" },
    { EV_CLEANUP, "CLEANUP" }, { EV_ASYNC, "ASYNC" }, { EV_CUSTOM, "CUSTOM" },
    { EV_ERROR, "ERROR" },
  };
  buf[0] = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (ev & names[i].bit) {
      if (buf[0])
        strcat(buf, "|");
      strcat(buf, names[i].name);
      ev &= ~names[i].bit;
    }
  if (ev)
    sprintf(buf + strlen(buf), "%s0x%x", buf[0] ? "|" : "", (unsigned)ev);
  if (!buf[0])
    strcpy(buf, "0");
  return buf;
}

/* The loop under test: the default loop with flags 0, so TRILOOP_BACKEND
 * picks our backend.  A backend that does not work here is a skip. */
static inline struct ev_loop *evt_default(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct ev_loop *loop = ev_default_loop(0);
  if (!loop) {
    fprintf(stderr, "SKIP: no default loop (backend unavailable)\n");
    exit(77);
  }
  return loop;
}

#endif
