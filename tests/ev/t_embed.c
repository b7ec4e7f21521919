/* Embedding one loop in another: automatic sweeps (no callback) and the
 * callback form with ev_embed_sweep; fd readiness of the embedded loop
 * wakes the embedding loop. */
#include "common.h"

static struct ev_loop *outer, *inner;
static int p[2];

static void icb(EV_P_ ev_io *w, int revents) {
  char c;
  P("inner io %s, in inner loop %d", evt_names(revents), loop == inner);
  if (read(w->fd, &c, 1) != 1) abort();
  ev_io_stop(loop, w);
}

static ev_embed e;
static void ecb(EV_P_ ev_embed *w, int revents) {
  P("embed %s, in outer loop %d", evt_names(revents), loop == outer);
  ev_embed_sweep(loop, w);
  ev_embed_stop(loop, w);
}

static void later(EV_P_ ev_timer *t, int revents) {
  (void)loop; (void)t; (void)revents;
  P("outer timer writes");
  if (write(p[1], "e", 1) != 1) abort();
}

int main(void) {
  outer = evt_default();
  inner = ev_loop_new(0);
  if (!inner) return 77;
  if (pipe(p) < 0) return 1;
  ev_io io;
  ev_io_init(&io, icb, p[0], EV_READ);
  ev_io_start(inner, &io);

  P("== automatic sweep");
  ev_embed_init(&e, 0, inner);
  ev_embed_start(outer, &e);
  P("embed active %d", !!ev_is_active(&e));
  ev_timer t;
  ev_timer_init(&t, later, 0.01, 0.);
  ev_timer_start(outer, &t);
  ev_run(outer, EVRUN_ONCE);   /* the timer */
  /* The embedded fd: usually the next iteration, but a backend whose
   * readiness comes from a worker thread may need a few on a loaded box. */
  for (int k = 0; k < 100 && ev_is_active(&io); k++)
    ev_run(outer, EVRUN_ONCE);
  ev_embed_stop(outer, &e);
  P("embed active %d, inner io active %d", !!ev_is_active(&e), !!ev_is_active(&io));

  P("== callback and ev_embed_sweep");
  ev_io_start(inner, &io);
  ev_embed_init(&e, ecb, inner);
  ev_embed_start(outer, &e);
  ev_timer_start(outer, &t);
  ev_run(outer, 0);
  P("inner io active %d", !!ev_is_active(&io));
  ev_loop_destroy(inner);

  /* The libev manual's idiom: embed a loop of a backend that can be
   * embedded and is recommended, if there is one. */
  P("== the manual's idiom");
  unsigned can = ev_embeddable_backends() & ev_recommended_backends();
  P("embeddable and recommended backends exist %d", can != 0);
  inner = can ? ev_loop_new(can) : 0;
  P("embeddable loop %d, its backend embeddable %d", inner != 0,
    inner && (ev_backend(inner) & ev_embeddable_backends()) != 0);
  if (inner) {
    ev_io_start(inner, &io);
    ev_embed_init(&e, 0, inner);
    ev_embed_start(outer, &e);
    ev_timer_start(outer, &t);
    ev_run(outer, EVRUN_ONCE);
    for (int k = 0; k < 100 && ev_is_active(&io); k++)
      ev_run(outer, EVRUN_ONCE);
    ev_embed_stop(outer, &e);
    P("inner io active %d", !!ev_is_active(&io));
    ev_loop_destroy(inner);
  }
  P("done");
  return 0;
}
