/* A loop run by one thread, then (after that thread was joined) by another,
 * as libev allows: io and timer watchers keep working in the second thread,
 * and in the first one again.  glibc gives the second thread the first
 * one's pthread_t. */
#include "common.h"
#include <pthread.h>

static struct ev_loop *L;
static int p[2];
static const char *who;
static ev_io io;

static void icb(EV_P_ ev_io *w, int revents) {
  char c;
  if (read(w->fd, &c, 1) != 1) abort();
  P("io %s got %c in %s", evt_names(revents), c, who);
  ev_io_stop(loop, w);
}
static void tcb(EV_P_ ev_timer *w, int revents) {
  (void)loop; (void)w;
  P("timer %s in %s", evt_names(revents), who);
}

static int once;
static void *run(void *arg) {
  who = arg;
  ev_run(L, once ? EVRUN_ONCE : 0);
  P("run returned in %s, io active %d", who, !!ev_is_active(&io));
  return NULL;
}

int main(void) {
  L = evt_default();
  if (pipe(p) < 0) return 1;
  ev_io_init(&io, icb, p[0], EV_READ);
  ev_timer t;
  ev_timer_init(&t, tcb, 0.01, 0.);
  /* Thread A: the io watcher armed without data, one iteration (the
   * timer's). */
  ev_io_start(L, &io);
  ev_timer_start(L, &t);
  pthread_t a;
  once = 1;
  if (pthread_create(&a, NULL, run, "thread A") != 0) return 1;
  pthread_join(a, NULL);
  once = 0;
  /* Thread B (A's pthread_t again): the data arrives for the watcher A
   * armed. */
  if (write(p[1], "b", 1) != 1) abort();
  if (pthread_create(&a, NULL, run, "thread B") != 0) return 1;
  pthread_join(a, NULL);
  /* Thread C: the watcher started again, with a timer. */
  ev_io_start(L, &io);
  ev_timer_start(L, &t);
  if (write(p[1], "c", 1) != 1) abort();
  if (pthread_create(&a, NULL, run, "thread C") != 0) return 1;
  pthread_join(a, NULL);
  /* And the main thread. */
  ev_io_start(L, &io);
  if (write(p[1], "m", 1) != 1) abort();
  run("main");
  P("done");
  return 0;
}
