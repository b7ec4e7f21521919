/* Order of callbacks within an iteration, priorities, the pending queue,
 * ev_run's flags and return value, ref/unref, break, depth, iteration,
 * custom invoke_pending and release/acquire hooks, userdata. */
#include "common.h"

static struct ev_loop *L;
static int fds[2];

static void io_cb(EV_P_ ev_io *w, int revents) {
  P("io %s pri=%d", (char *)w->data, ev_priority(w));
  (void)revents;
  ev_io_stop(loop, w);
}
static void timer_cb(EV_P_ ev_timer *w, int revents) {
  P("timer %s %s pri=%d active=%d", (char *)w->data, evt_names(revents), ev_priority(w), !!ev_is_active(w));
}
static void prepare_cb(EV_P_ ev_prepare *w, int revents) { P("prepare %s %s", (char *)w->data, evt_names(revents)); }
static void check_cb(EV_P_ ev_check *w, int revents) { P("check %s %s", (char *)w->data, evt_names(revents)); }
static int idles;
static void idle_cb(EV_P_ ev_idle *w, int revents) {
  idles++;
  P("idle %s %s pri=%d", (char *)w->data, evt_names(revents), ev_priority(w));
}

static void scenario_iteration(void) {
  P("== iteration order");
  ev_io r1, r2, rlo, wr;
  ev_timer t0, thi, tlo;
  ev_prepare pr1, pr2;
  ev_check ck1, ck2;
  ev_idle id0, idlo;
  ev_io_init(&r1, io_cb, fds[0], EV_READ); r1.data = "r1";
  ev_io_init(&r2, io_cb, fds[0], EV_READ); r2.data = "r2";
  ev_io_init(&rlo, io_cb, fds[0], EV_READ); rlo.data = "rlo"; ev_set_priority(&rlo, -1);
  ev_io_init(&wr, io_cb, fds[1], EV_WRITE); wr.data = "wr"; ev_set_priority(&wr, 1);
  ev_timer_init(&t0, timer_cb, 0., 0.); t0.data = "t0";
  ev_timer_init(&thi, timer_cb, 0., 0.); thi.data = "thi"; ev_set_priority(&thi, 2);
  ev_timer_init(&tlo, timer_cb, 0., 0.); tlo.data = "tlo"; ev_set_priority(&tlo, -2);
  ev_prepare_init(&pr1, prepare_cb); pr1.data = "pr1";
  ev_prepare_init(&pr2, prepare_cb); pr2.data = "pr2";
  ev_check_init(&ck1, check_cb); ck1.data = "ck1";
  ev_check_init(&ck2, check_cb); ck2.data = "ck2";
  ev_idle_init(&id0, idle_cb); id0.data = "id0";
  ev_idle_init(&idlo, idle_cb); idlo.data = "idlo"; ev_set_priority(&idlo, -2);
  ev_io_start(L, &r1); ev_io_start(L, &r2); ev_io_start(L, &rlo); ev_io_start(L, &wr);
  ev_timer_start(L, &t0); ev_timer_start(L, &thi); ev_timer_start(L, &tlo);
  ev_prepare_start(L, &pr1); ev_prepare_start(L, &pr2);
  ev_check_start(L, &ck1); ev_check_start(L, &ck2);
  ev_idle_start(L, &id0); ev_idle_start(L, &idlo);
  /* out-of-range priorities are clamped at start */
  P("priorities clamped: %d %d", ev_priority(&thi), ev_priority(&tlo));
  char c = 'x';
  if (write(fds[1], &c, 1) != 1) abort();
  ev_sleep(0.002);   /* the zero timers are due before the first poll */
  for (int i = 0; i < 4; i++) {
    P("-- run once %d", i);
    int r = ev_run(L, EVRUN_ONCE);
    P("ev_run returned %d", r);
  }
  if (read(fds[0], &c, 1) != 1) abort();
  ev_prepare_stop(L, &pr1); ev_prepare_stop(L, &pr2);
  ev_check_stop(L, &ck1); ev_check_stop(L, &ck2);
  ev_idle_stop(L, &id0); ev_idle_stop(L, &idlo);
  P("after stops: ev_run nowait returned %d", ev_run(L, EVRUN_NOWAIT));
  ev_verify(L);
}

static int custom_invoked;
static void custom_cb(EV_P_ ev_idle *w, int revents) {
  custom_invoked++;
  P("custom %s %s pending=%d", (char *)w->data, evt_names(revents), !!ev_is_pending(w));
}

static void my_invoke(EV_P) {
  P("my_invoke_pending: %u pending, depth %u", ev_pending_count(loop), ev_depth(loop));
  ev_invoke_pending(loop);
}

static void scenario_pending(void) {
  P("== pending queue");
  ev_idle a, b;
  ev_timer t;
  ev_idle_init(&a, custom_cb); a.data = "a";
  ev_idle_init(&b, custom_cb); b.data = "b"; ev_set_priority(&b, 1);
  ev_feed_event(L, &a, EV_CUSTOM);
  P("a pending=%d active=%d count=%u", !!ev_is_pending(&a), !!ev_is_active(&a), ev_pending_count(L));
  ev_feed_event(L, &a, EV_READ);
  int got = ev_clear_pending(L, &a);
  P("clear_pending returned %s, a pending=%d, count=%u", evt_names(got), !!ev_is_pending(&a), ev_pending_count(L));
  P("clear_pending again returned %d", ev_clear_pending(L, &a));
  ev_invoke_pending(L);
  P("after invoke_pending count=%u invoked=%d", ev_pending_count(L), custom_invoked);
  ev_feed_event(L, &a, EV_CUSTOM);
  ev_feed_event(L, &b, EV_CUSTOM);
  ev_feed_event(L, &a, EV_WRITE);
  ev_invoke_pending(L);
  ev_invoke(L, &a, EV_TIMER);
  /* a stopped watcher is never invoked, even when it was pending */
  ev_timer_init(&t, timer_cb, 10., 0.); t.data = "never";
  ev_timer_start(L, &t);
  ev_feed_event(L, &t, EV_TIMER);
  ev_timer_stop(L, &t);
  P("stopped timer pending=%d count=%u", !!ev_is_pending(&t), ev_pending_count(L));
  ev_invoke_pending(L);
  /* custom invoke_pending hook */
  ev_set_invoke_pending_cb(L, my_invoke);
  ev_feed_event(L, &a, EV_CUSTOM);
  ev_feed_event(L, &b, EV_CUSTOM);
  ev_run(L, EVRUN_NOWAIT);
  ev_set_invoke_pending_cb(L, ev_invoke_pending);
  ev_run(L, EVRUN_NOWAIT);
}

static int ticks;
static struct ev_loop *nested_loop;
static void break_one_cb(EV_P_ ev_timer *w, int revents) {
  (void)w; (void)revents;
  if (++ticks == 3) {
    P("tick %d depth %u: break one", ticks, ev_depth(loop));
    ev_break(loop, EVBREAK_ONE);
  }
}
static void inner_break_cb(EV_P_ ev_timer *w, int revents) {
  (void)revents;
  P("inner timer depth %u: break all", ev_depth(loop));
  ev_timer_stop(loop, w);
  ev_break(loop, EVBREAK_ALL);
}
static void outer_cb(EV_P_ ev_timer *w, int revents) {
  (void)revents;
  ev_timer inner;
  P("outer timer depth %u", ev_depth(loop));
  ev_timer_init(&inner, inner_break_cb, 0.001, 0.);
  ev_timer_start(loop, &inner);
  int r = ev_run(loop, 0);
  P("nested ev_run returned %d, depth %u", r, ev_depth(loop));
  ev_timer_stop(loop, &inner);
  ev_timer_stop(loop, w);
  (void)nested_loop;
}
static int rel, acq;
static void release_cb(EV_P) { (void)loop; rel++; }
static void acquire_cb(EV_P) { (void)loop; acq++; }

static void scenario_run(void) {
  P("== run, ref, break");
  P("empty loop: nowait %d once %d default %d", ev_run(L, EVRUN_NOWAIT), ev_run(L, EVRUN_ONCE), ev_run(L, 0));
  ev_idle i;
  ev_idle_init(&i, idle_cb); i.data = "unref";
  idles = 0;
  ev_idle_start(L, &i);
  ev_unref(L);
  int r = ev_run(L, 0);
  P("unref'd idle: run returned %d after %d idle calls", r, idles);
  ev_ref(L);
  ev_idle_stop(L, &i);
  ev_timer t;
  ev_timer_init(&t, break_one_cb, 0.001, 0.001);
  ev_timer_start(L, &t);
  r = ev_run(L, 0);
  P("after break one: run returned %d, depth %u, ticks %d", r, ev_depth(L), ticks);
  ev_timer_stop(L, &t);
  ev_timer o;
  ev_timer_init(&o, outer_cb, 0.001, 0.);
  ev_timer_start(L, &o);
  r = ev_run(L, 0);
  P("after break all: outer run returned %d", r);
  unsigned it = ev_iteration(L);
  ev_run(L, EVRUN_NOWAIT);
  ev_run(L, EVRUN_ONCE);
  P("iterations for nowait+once: %u", ev_iteration(L) - it);
  ev_set_loop_release_cb(L, release_cb, acquire_cb);
  it = ev_iteration(L);
  ev_run(L, EVRUN_NOWAIT);
  ev_run(L, EVRUN_NOWAIT);
  P("release %d acquire %d iterations %u", rel, acq, ev_iteration(L) - it);
  ev_set_loop_release_cb(L, 0, 0);
  int data = 42;
  ev_set_userdata(L, &data);
  P("userdata %d", *(int *)ev_userdata(L));
  ev_set_userdata(L, 0);
  P("userdata cleared %d", ev_userdata(L) == 0);
}

int main(void) {
  L = evt_default();
  if (pipe(fds) < 0)
    return 1;
  scenario_iteration();
  scenario_pending();
  scenario_run();
  ev_verify(L);
  ev_loop_destroy(L);
  P("done");
  return 0;
}
