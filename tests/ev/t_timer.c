/* Timers (monotonic) and periodics (wall clock): expiry order, repeat,
 * again, remaining, equal timeouts, stop inside callbacks, reschedule
 * callbacks, suspend/resume, now caching, collect intervals. */
#include "common.h"

static struct ev_loop *L;
static int fired, quiet;

static void tcb(EV_P_ ev_timer *w, int revents) {
  fired++;
  if (!quiet) P("timer %s %s active=%d", (char *)w->data, evt_names(revents), !!ev_is_active(w));
}

static ev_timer peer;
static void kill_peer_cb(EV_P_ ev_timer *w, int revents) {
  (void)w; (void)revents;
  P("killer runs; peer pending=%d", !!ev_is_pending(&peer));
  ev_timer_stop(loop, &peer);
}

static int reps;
static void repeat_cb(EV_P_ ev_timer *w, int revents) {
  (void)revents;
  reps++;
  P("repeat %d active=%d", reps, !!ev_is_active(w));
  if (reps == 3) {
    w->repeat = 0.;
    ev_timer_again(loop, w);   /* repeat 0 and active: stops */
    P("after again with repeat 0: active=%d", !!ev_is_active(w));
  }
}

static ev_tstamp resched(ev_periodic *w, ev_tstamp now) {
  (void)w;
  return now + 0.01;
}

static int pfired;
static void pcb(EV_P_ ev_periodic *w, int revents) {
  pfired++;
  P("periodic %s %s active=%d", (char *)w->data, evt_names(revents), !!ev_is_active(w));
  if (pfired >= 3 && w->reschedule_cb)
    ev_periodic_stop(loop, w);
  if (w->interval > 0. && pfired >= 5)
    ev_periodic_stop(loop, w);
}

int main(void) {
  L = evt_default();

  P("== expiry order");
  ev_timer a, b, c, d, e;
  ev_timer_init(&a, tcb, 0.030, 0.); a.data = "a30";
  ev_timer_init(&b, tcb, 0.010, 0.); b.data = "b10";
  ev_timer_init(&c, tcb, 0.020, 0.); c.data = "c20";
  ev_timer_init(&d, tcb, 0.010, 0.); d.data = "d10";
  ev_timer_init(&e, tcb, 0.010, 0.); e.data = "e10";
  ev_timer_start(L, &a); ev_timer_start(L, &b); ev_timer_start(L, &c);
  ev_timer_start(L, &d); ev_timer_start(L, &e);
  ev_sleep(0.040);   /* all due in the same iteration */
  ev_run(L, EVRUN_ONCE);
  P("fired %d", fired);

  P("== stop a pending peer");
  ev_timer k;
  ev_timer_init(&k, kill_peer_cb, 0.001, 0.);
  ev_timer_init(&peer, tcb, 0.001, 0.); peer.data = "peer";
  ev_timer_start(L, &peer);
  ev_timer_start(L, &k);
  ev_sleep(0.005);
  ev_run(L, 0);

  P("== repeat and again");
  ev_timer r;
  ev_timer_init(&r, repeat_cb, 0.001, 0.001);
  ev_timer_start(L, &r);
  ev_run(L, 0);
  P("run ended, reps=%d", reps);

  ev_timer g;
  ev_timer_init(&g, tcb, 5., 0.); g.data = "g";
  P("remaining before start %.3f", ev_timer_remaining(L, &g));
  ev_timer_start(L, &g);
  ev_tstamp rem = ev_timer_remaining(L, &g);
  P("remaining after start in (4.9,5] %d", rem > 4.9 && rem <= 5.);
  ev_timer_stop(L, &g);
  rem = ev_timer_remaining(L, &g);
  P("remaining after stop in (4.9,5] %d", rem > 4.9 && rem <= 5.);
  g.repeat = 2.;
  ev_timer_again(L, &g);   /* inactive with repeat: starts with repeat */
  rem = ev_timer_remaining(L, &g);
  P("again started=%d remaining in (1.9,2] %d", !!ev_is_active(&g), rem > 1.9 && rem <= 2.);
  g.repeat = 3.;
  ev_timer_again(L, &g);   /* active: restarts with the new repeat */
  rem = ev_timer_remaining(L, &g);
  P("again restarted remaining in (2.9,3] %d", rem > 2.9 && rem <= 3.);
  ev_timer_stop(L, &g);
  g.repeat = 0.;
  ev_timer_again(L, &g);
  P("again with repeat 0 inactive: active=%d", !!ev_is_active(&g));

  P("== many timers");
  enum { N = 200 };
  static ev_timer many[N];
  fired = 0;
  quiet = 1;
  for (int i = 0; i < N; i++) {
    ev_timer_init(&many[i], tcb, 0.001 * (1 + (i * 7919) % 13), 0.);
    many[i].data = "m";
    ev_timer_start(L, &many[i]);
  }
  for (int i = 0; i < N; i += 3)
    ev_timer_stop(L, &many[i]);
  ev_verify(L);
  int n = 0;
  for (int i = 0; i < N; i++) n += !!ev_is_active(&many[i]);
  P("active %d", n);
  ev_run(L, 0);
  quiet = 0;
  P("many fired %d", fired);

  P("== periodics");
  ev_periodic p1, p2, p3, p4;
  ev_tstamp now = ev_now(L);
  ev_periodic_init(&p1, pcb, now + 0.02, 0., 0); p1.data = "abs";
  ev_periodic_start(L, &p1);
  P("abs at == offset %d", ev_periodic_at(&p1) == now + 0.02);
  ev_run(L, 0);
  ev_periodic_init(&p2, pcb, 0., 0.005, 0); p2.data = "interval";
  pfired = 0;
  ev_periodic_start(L, &p2);
  P("interval at > now %d, at - now <= interval %d", ev_periodic_at(&p2) > ev_now(L),
    ev_periodic_at(&p2) - ev_now(L) <= 0.005 + 1e-9);
  ev_run(L, 0);
  ev_periodic_init(&p3, pcb, 0., 0., resched); p3.data = "resched";
  pfired = 0;
  ev_periodic_start(L, &p3);
  ev_run(L, 0);
  /* again: stop + start, recomputing from offset */
  ev_periodic_init(&p4, pcb, ev_now(L) + 100., 0., 0); p4.data = "never";
  ev_periodic_start(L, &p4);
  p4.offset = ev_now(L) + 0.005;
  ev_periodic_again(L, &p4);
  P("again moved it: %d", ev_periodic_at(&p4) < ev_now(L) + 1.);
  pfired = 0;
  ev_run(L, 0);

  P("== now, time, suspend, resume, collect intervals");
  ev_now_update(L);
  ev_tstamp t1 = ev_now(L), t2 = ev_time();
  P("now ~ time: %d", t2 - t1 >= -0.01 && t2 - t1 < 0.5);
  ev_timer s;
  ev_timer_init(&s, tcb, 0.05, 0.); s.data = "suspended";
  ev_timer_start(L, &s);
  ev_suspend(L);
  ev_sleep(0.1);
  ev_resume(L);
  rem = ev_timer_remaining(L, &s);
  P("suspend time does not count: remaining > 0.03 %d", rem > 0.03);
  ev_set_timeout_collect_interval(L, 0.001);
  ev_set_io_collect_interval(L, 0.001);
  ev_run(L, 0);
  ev_set_timeout_collect_interval(L, 0.);
  ev_set_io_collect_interval(L, 0.);
  /* a cached now stays put inside a callback-free stretch */
  t1 = ev_now(L);
  ev_sleep(0.01);
  P("now cached: %d", ev_now(L) == t1);
  ev_now_update(L);
  P("now updated: %d", ev_now(L) > t1);
  ev_verify(L);
  P("done");
  return 0;
}
