/* Timers: expiry order, repeat, again, remaining, many timers, stops from
 * callbacks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

struct tstate {
  int calls;
  int id;
  int stop_at;             /* stop self on this call */
  int restart;             /* restart self (as a one-shot) this many times */
  tl_timer *stop_other;    /* stop this one on the first call */
  tl_timer *again_other;   /* tl_timer_again it on the first call */
  int *log;                /* appends id here */
  int *nlog;
  tl_tstamp now_seen;
  tl_tstamp remaining_seen;
};

static void timer_cb(tl_loop *loop, tl_timer *w, unsigned revents) {
  struct tstate *s = w->data;
  ck_assert_uint_eq(revents, TL_TIMER);
  s->calls++;
  s->now_seen = tl_now(loop);
  if (s->log)
    s->log[(*s->nlog)++] = s->id;
  if (s->stop_at && s->calls == s->stop_at)
    ck_assert_int_eq(tl_timer_stop(loop, w), 0);
  /* An expired one-shot may already be inactive but still pending: the
   * stop must still keep its callback from running. */
  if (s->stop_other && s->calls == 1)
    ck_assert_int_eq(tl_timer_stop(loop, s->stop_other), 0);
  if (s->again_other && s->calls == 1)
    ck_assert_int_eq(tl_timer_again(loop, s->again_other), 0);
  if (s->restart) {
    s->restart--;
    ck_assert_int_eq(tl_is_active(w), 0);   /* a one-shot is stopped before its callback */
    ck_assert_int_eq(tl_timer_set(w, 0.001, 0), 0);
    ck_assert_int_eq(tl_timer_start(loop, w), 0);
  }
}

static void init_timer(tl_timer *t, struct tstate *s, tl_tstamp after, tl_tstamp repeat) {
  tl_timer_init(t, timer_cb, after, repeat);
  t->data = s;
}

START_TEST(test_timer_fires_once_not_before_its_time) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {0};
  tl_timer t;
  init_timer(&t, &s, 0.01, 0);
  tl_now_update(loop);
  tl_tstamp start = tl_now(loop);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_is_active(&t), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(s.calls, 1);
  ck_assert(s.now_seen >= start + 0.01 - 1e-9);
  ck_assert_int_eq(tl_is_active(&t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(s.calls, 1);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_zero_delay_fires_in_the_next_iteration) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {0};
  tl_timer t;
  init_timer(&t, &s, 0, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(s.calls, 0);   /* never from inside start */
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(s.calls, 1);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_fires_in_order_of_expiry) {
  tl_loop *loop = th_new(_i);
  static const double after[] = {0.04, 0.01, 0.03, 0, 0.02};
  enum { N = sizeof after / sizeof after[0] };
  int log[N], nlog = 0;
  struct tstate s[N];
  tl_timer t[N];
  memset(s, 0, sizeof s);
  for (int k = 0; k < N; k++) {
    s[k].id = k;
    s[k].log = log;
    s[k].nlog = &nlog;
    init_timer(&t[k], &s[k], after[k], 0);
    ck_assert_int_eq(tl_timer_start(loop, &t[k]), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(nlog, N);
  static const int want[N] = {3, 1, 4, 2, 0};
  for (int k = 0; k < N; k++)
    ck_assert_int_eq(log[k], want[k]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_expired_together_still_run_in_expiry_order) {
  tl_loop *loop = th_new(_i);
  enum { N = 6 };
  int log[N], nlog = 0;
  struct tstate s[N];
  tl_timer t[N];
  memset(s, 0, sizeof s);
  for (int k = 0; k < N; k++) {
    s[k].id = k;
    s[k].log = log;
    s[k].nlog = &nlog;
    init_timer(&t[k], &s[k], 0.001 * (N - k), 0);
    ck_assert_int_eq(tl_timer_start(loop, &t[k]), 0);
  }
  th_sleep(0.02);   /* all are due when the loop next looks */
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(nlog, N);
  for (int k = 0; k < N; k++)
    ck_assert_int_eq(log[k], N - 1 - k);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_repeats_until_stopped) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {.stop_at = 5};
  tl_timer t;
  init_timer(&t, &s, 0.001, 0.002);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(s.calls, 5);
  ck_assert_int_eq(tl_is_active(&t), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_again_starts_restarts_and_stops) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {0};
  tl_timer t;
  init_timer(&t, &s, 0, 5.0);
  /* Inactive with a repeat: again starts it at now + repeat. */
  ck_assert_int_eq(tl_timer_again(loop, &t), 0);
  ck_assert_int_eq(tl_is_active(&t), 1);
  tl_tstamp r = tl_timer_remaining(loop, &t);
  ck_assert(r > 4.0 && r <= 5.0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(s.calls, 0);
  /* Repeat 0: again stops it. */
  t.repeat = 0;
  ck_assert_int_eq(tl_timer_again(loop, &t), 0);
  ck_assert_int_eq(tl_is_active(&t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(s.calls, 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_again_pushes_an_active_timer_out) {
  tl_loop *loop = th_new(_i);
  int log[8], nlog = 0;
  struct tstate sa = {.id = 1, .log = log, .nlog = &nlog};
  struct tstate sb = {.id = 2, .log = log, .nlog = &nlog};
  struct tstate sc = {.id = 3, .log = log, .nlog = &nlog};
  tl_timer a, b, c;
  init_timer(&a, &sa, 0.02, 0.3);   /* would fire at 0.02 ... */
  init_timer(&b, &sb, 0.01, 0);     /* ... but b moves it to ~0.31 */
  init_timer(&c, &sc, 0.1, 0);      /* c comes first and stops it */
  sb.again_other = &a;
  sc.stop_other = &a;
  ck_assert_int_eq(tl_timer_start(loop, &a), 0);
  ck_assert_int_eq(tl_timer_start(loop, &b), 0);
  ck_assert_int_eq(tl_timer_start(loop, &c), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(nlog, 2);
  ck_assert_int_eq(log[0], 2);
  ck_assert_int_eq(log[1], 3);
  ck_assert_int_eq(sa.calls, 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_remaining_counts_down_and_is_zero_when_inactive) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {0};
  tl_timer t;
  init_timer(&t, &s, 10.0, 0);
  ck_assert(tl_timer_remaining(loop, &t) == 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  tl_tstamp r1 = tl_timer_remaining(loop, &t);
  ck_assert(r1 > 9.0 && r1 <= 10.0);
  th_sleep(0.01);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  tl_tstamp r2 = tl_timer_remaining(loop, &t);
  ck_assert(r2 < r1 && r2 > 9.0);
  ck_assert_int_eq(tl_timer_stop(loop, &t), 0);
  ck_assert(tl_timer_remaining(loop, &t) == 0);
  th_destroy(loop);
}
END_TEST

#define MANY_TIMERS 5000

struct many {
  tl_timer t;
  int key;       /* expiry rank */
  int calls;
};
static int many_last = -1, many_fired, many_disorder;

static void many_cb(tl_loop *loop, tl_timer *w, unsigned revents) {
  (void)loop;
  (void)revents;
  struct many *m = (struct many *)w;
  m->calls++;
  many_fired++;
  if (m->key < many_last)
    many_disorder++;
  many_last = m->key;
}

START_TEST(test_timer_thousands_fire_in_order) {
  tl_loop *loop = th_new(_i);
  struct many *m = calloc(MANY_TIMERS, sizeof *m);
  ck_assert_ptr_nonnull(m);
  /* Keys are a permutation, so start order differs from expiry order. */
  for (int k = 0; k < MANY_TIMERS; k++)
    m[k].key = (int)(((long)k * 7919) % MANY_TIMERS);
  many_last = -1;
  many_fired = many_disorder = 0;
  for (int k = 0; k < MANY_TIMERS; k++) {
    tl_timer_init(&m[k].t, many_cb, 0.00001 * m[k].key, 0);
    ck_assert_int_eq(tl_timer_start(loop, &m[k].t), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(many_fired, MANY_TIMERS);
  ck_assert_int_eq(many_disorder, 0);
  for (int k = 0; k < MANY_TIMERS; k++)
    ck_assert_int_eq(m[k].calls, 1);
  free(m);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_stopped_by_an_earlier_callback_never_fires) {
  tl_loop *loop = th_new(_i);
  struct tstate sa = {0}, sb = {0};
  tl_timer a, b;
  init_timer(&a, &sa, 0.001, 0);
  init_timer(&b, &sb, 0.002, 0);
  sa.stop_other = &b;
  ck_assert_int_eq(tl_timer_start(loop, &a), 0);
  ck_assert_int_eq(tl_timer_start(loop, &b), 0);
  th_sleep(0.01);   /* both due in the same iteration: b is already pending */
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(sa.calls, 1);
  ck_assert_int_eq(sb.calls, 0);
  ck_assert_int_eq(tl_is_pending(&b), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_repeating_stopped_in_its_callback_fires_once) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {.stop_at = 1};
  tl_timer t;
  init_timer(&t, &s, 0, 0.001);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(s.calls, 1);
  ck_assert_int_eq(tl_is_active(&t), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_restarted_from_its_callback_fires_again) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {.restart = 3};
  tl_timer t;
  init_timer(&t, &s, 0.001, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(s.calls, 4);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_stop_then_start_uses_the_new_values) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {0};
  tl_timer t;
  init_timer(&t, &s, 3600, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_timer_stop(loop, &t), 0);
  ck_assert_int_eq(tl_timer_set(&t, 0.001, 0), 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(s.calls, 1);
  th_destroy(loop);
}
END_TEST

START_TEST(test_timer_start_stop_errors) {
  tl_loop *loop = th_new(_i);
  struct tstate s = {0};
  tl_timer t;
  init_timer(&t, &s, 3600, 0);
  ck_assert_int_eq(tl_timer_stop(loop, &t), -EALREADY);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), -EBUSY);
  ck_assert_int_eq(tl_timer_stop(loop, &t), 0);
  ck_assert_int_eq(tl_timer_stop(loop, &t), -EALREADY);
  ck_assert_int_eq(tl_timer_set(&t, -1, 0), -EINVAL);
  ck_assert_int_eq(tl_timer_set(&t, 0, -1), -EINVAL);
  ck_assert_int_eq(tl_timer_set(&t, NAN, 0), -EINVAL);
  ck_assert_int_eq(tl_timer_set(&t, 0, NAN), -EINVAL);
  /* init cannot report: start does. */
  init_timer(&t, &s, -1, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), -EINVAL);
  ck_assert_int_eq(tl_is_active(&t), 0);
  init_timer(&t, &s, NAN, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), -EINVAL);
  ck_assert_int_eq(tl_is_active(&t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(s.calls, 0);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_timer_fires_once_not_before_its_time);
  TH_ADD(tc, test_timer_zero_delay_fires_in_the_next_iteration);
  TH_ADD(tc, test_timer_fires_in_order_of_expiry);
  TH_ADD(tc, test_timer_expired_together_still_run_in_expiry_order);
  TH_ADD(tc, test_timer_repeats_until_stopped);
  TH_ADD(tc, test_timer_again_starts_restarts_and_stops);
  TH_ADD(tc, test_timer_again_pushes_an_active_timer_out);
  TH_ADD(tc, test_timer_remaining_counts_down_and_is_zero_when_inactive);
  TH_ADD(tc, test_timer_thousands_fire_in_order);
  TH_ADD(tc, test_timer_stopped_by_an_earlier_callback_never_fires);
  TH_ADD(tc, test_timer_repeating_stopped_in_its_callback_fires_once);
  TH_ADD(tc, test_timer_restarted_from_its_callback_fires_again);
  TH_ADD(tc, test_timer_stop_then_start_uses_the_new_values);
  TH_ADD(tc, test_timer_start_stop_errors);
}

int main(void) { return th_main("timer", add); }
