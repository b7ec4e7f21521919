/* Signals: delivery through the loop, several watchers on one signal,
 * ev_feed_signal, ev_feed_signal_event, order against timers (the wake
 * watcher runs at the highest priority, so signal callbacks come before
 * same-priority timers of the same iteration), stop restoring SIG_DFL. */
#include "common.h"
#include <signal.h>

static struct ev_loop *L;

static void scb(EV_P_ ev_signal *w, int revents) {
  P("signal %s signum=%d %s", (char *)w->data, w->signum, evt_names(revents));
}
static void tcb(EV_P_ ev_timer *w, int revents) {
  (void)w;
  P("timer %s", evt_names(revents));
}

int main(void) {
  L = evt_default();
  ev_signal s1, s2, s3;
  ev_signal_init(&s1, scb, SIGUSR1); s1.data = "s1";
  ev_signal_init(&s2, scb, SIGUSR1); s2.data = "s2";
  ev_signal_init(&s3, scb, SIGUSR2); s3.data = "s3";
  ev_signal_start(L, &s1);
  ev_signal_start(L, &s2);
  ev_signal_start(L, &s3);

  P("== raise outside the loop");
  raise(SIGUSR1);
  ev_run(L, EVRUN_ONCE);
  P("== both signals");
  raise(SIGUSR2);
  raise(SIGUSR1);
  ev_run(L, EVRUN_ONCE);

  P("== signal and due timer in one iteration");
  ev_timer t;
  ev_timer_init(&t, tcb, 0., 0.);
  ev_timer_start(L, &t);
  ev_sleep(0.002);
  raise(SIGUSR2);
  ev_run(L, EVRUN_ONCE);

  P("== feed");
  ev_feed_signal(SIGUSR1);
  ev_run(L, EVRUN_ONCE);
  ev_feed_signal_event(L, SIGUSR2);
  P("s3 pending %d", !!ev_is_pending(&s3));
  ev_invoke_pending(L);
  ev_feed_signal_event(L, SIGHUP);   /* nobody waits: nothing */
  P("pending after unowned feed %u", ev_pending_count(L));

  P("== other loop cannot feed our signal");
  struct ev_loop *n = ev_loop_new(0);
  ev_feed_signal_event(n, SIGUSR1);
  P("pending in other loop %u", ev_pending_count(n));
  ev_loop_destroy(n);

  P("== stop");
  ev_signal_stop(L, &s1);
  raise(SIGUSR1);
  ev_run(L, EVRUN_ONCE);
  ev_signal_stop(L, &s2);
  struct sigaction sa;
  sigaction(SIGUSR1, 0, &sa);
  P("handler back to default %d", sa.sa_handler == SIG_DFL);
  ev_signal_stop(L, &s3);
  P("run returned %d", ev_run(L, 0));
  ev_verify(L);
  P("done");
  return 0;
}
