/* Backends a libev program may ask for: select and poll, which libev always
 * has on Linux, by flags and by LIBEV_FLAGS (the default loop too); what
 * ev_backend() and the backend sets then say; and io, a regular file and a
 * timer on such loops. */
#include "common.h"
#include <fcntl.h>

/* Which of two ready fds calls back first is the backend's business (libev's
 * select and poll differ), so each watcher notes its events and they are
 * printed in a fixed order afterwards. */
static void iocb(EV_P_ ev_io *w, int revents) {
  *(int *)w->data = revents;
  ev_io_stop(loop, w);
}

static void tcb(EV_P_ ev_timer *w, int revents) {
  (void)loop; (void)w;
  P("  timer %s", evt_names(revents));
}

/* A pipe read, a regular file (always ready, as poll says) and a timer. */
static void exercise(struct ev_loop *l) {
  int p[2];
  if (pipe(p) < 0) abort();
  char path[64];
  snprintf(path, sizeof path, "/tmp/evt-backend-%d", (int)getpid());
  int f = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
  if (f < 0) abort();
  unlink(path);
  ev_io r, rf;
  int got_r = 0, got_rf = 0;
  ev_io_init(&r, iocb, p[0], EV_READ);
  r.data = &got_r;
  ev_io_start(l, &r);
  ev_io_init(&rf, iocb, f, EV_READ | EV_WRITE);
  rf.data = &got_rf;
  ev_io_start(l, &rf);
  if (write(p[1], "x", 1) != 1) abort();
  for (int k = 0; k < 100 && (ev_is_active(&r) || ev_is_active(&rf)); k++)
    ev_run(l, EVRUN_ONCE);
  P("  pipe %s", evt_names(got_r));
  P("  regular file %s", evt_names(got_rf));
  ev_timer t;
  ev_timer_init(&t, tcb, 0.01, 0.);
  ev_timer_start(l, &t);
  P("  run returned %d", ev_run(l, 0));
  close(p[0]); close(p[1]); close(f);
}

static const char *bname(unsigned b) {
  switch (b) {
  case EVBACKEND_SELECT: return "select";
  case EVBACKEND_POLL: return "poll";
  default: return "other";
  }
}

static void try_new(const char *what, unsigned flags, unsigned want) {
  struct ev_loop *l = ev_loop_new(flags);
  P("%s: loop %d, backend %s, as asked %d", what, l != 0, l ? bname(ev_backend(l)) : "-",
    l && ev_backend(l) == want);
  if (l) {
    exercise(l);
    ev_loop_destroy(l);
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  setenv("LIBEV_FLAGS", "2", 1);
  struct ev_loop *d = ev_default_loop(0);
  unsetenv("LIBEV_FLAGS");
  if (!d) {
    struct ev_loop *any = ev_loop_new(0);
    if (!any) {
      fprintf(stderr, "SKIP: no loop at all (backend unavailable)\n");
      return 77;
    }
    ev_loop_destroy(any);
  }
  P("default loop with LIBEV_FLAGS=2: loop %d, backend %s", d != 0, d ? bname(ev_backend(d)) : "-");
  if (d)
    exercise(d);

  setenv("LIBEV_FLAGS", "1", 1);
  try_new("new loop with LIBEV_FLAGS=1", 0, EVBACKEND_SELECT);
  unsetenv("LIBEV_FLAGS");
  try_new("EVBACKEND_SELECT", EVBACKEND_SELECT, EVBACKEND_SELECT);
  try_new("EVBACKEND_POLL", EVBACKEND_POLL, EVBACKEND_POLL);
  try_new("EVBACKEND_SELECT|EVBACKEND_POLL", EVBACKEND_SELECT | EVBACKEND_POLL, EVBACKEND_POLL);

  unsigned both = EVBACKEND_SELECT | EVBACKEND_POLL;
  P("supported has select and poll %d, recommended has them %d",
    (ev_supported_backends() & both) == both, (ev_recommended_backends() & both) == both);
  P("done");
  return 0;
}
