/* Loop life cycle, run modes, break, ref/unref, time, userdata, backend
 * selection. */
#include <math.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"

struct tcount {
  int calls;
  int break_at;
  int stop_at;
  tl_tstamp now_seen;
  int run_ret, destroy_ret;
  int *seq;
  int order;
};

static void count_timer_cb(tl_loop *loop, tl_timer *w, unsigned revents) {
  struct tcount *c = w->data;
  ck_assert_uint_eq(revents, TL_TIMER);
  c->calls++;
  c->now_seen = tl_now(loop);
  if (c->seq)
    c->order = ++*c->seq;
  if (c->break_at && c->calls == c->break_at)
    tl_break(loop);
  if (c->stop_at && c->calls == c->stop_at)
    ck_assert_int_eq(tl_timer_stop(loop, w), 0);
}

START_TEST(test_loop_new_reports_requested_backend) {
  tl_loop *loop = th_new(_i);
  ck_assert_int_eq(tl_backend(loop), th_id(_i));
  ck_assert_str_eq(tl_backend_name(loop), th_name(_i));
  ck_assert_int_eq(tl_backend_from_name(tl_backend_name(loop)), th_id(_i));
  th_destroy(loop);
}
END_TEST

START_TEST(test_loop_run_without_work_returns_zero_in_every_mode) {
  tl_loop *loop = th_new(_i);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_loop_run_default_returns_when_last_watcher_ends) {
  tl_loop *loop = th_new(_i);
  struct tcount c = {0};
  tl_timer t;
  tl_timer_init(&t, count_timer_cb, 0.001, 0);
  t.data = &c;
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_int_eq(tl_is_active(&t), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_loop_run_nowait_does_not_block) {
  tl_loop *loop = th_new(_i);
  struct tcount c = {0};
  tl_timer t;
  /* Far beyond the case timeout: a blocking NOWAIT is a timeout failure. */
  tl_timer_init(&t, count_timer_cb, 3600, 0);
  t.data = &c;
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(c.calls, 0);
  ck_assert_int_eq(tl_timer_stop(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_loop_run_once_blocks_until_the_timer_fires) {
  tl_loop *loop = th_new(_i);
  struct tcount c = {0};
  tl_timer t;
  tl_timer_init(&t, count_timer_cb, 0.02, 0);
  t.data = &c;
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  /* One iteration waits as long as the timer needs, so it fires. */
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 0);
  ck_assert_int_eq(c.calls, 1);
  th_destroy(loop);
}
END_TEST

START_TEST(test_loop_break_makes_run_return_with_work_left) {
  tl_loop *loop = th_new(_i);
  struct tcount c = {.break_at = 3};
  tl_timer t;
  tl_timer_init(&t, count_timer_cb, 0.001, 0.001);
  t.data = &c;
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 1);
  ck_assert_int_eq(c.calls, 3);
  ck_assert_int_eq(tl_is_active(&t), 1);
  /* The break is consumed: the next run goes on. */
  c.break_at = 0;
  c.stop_at = 5;
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 5);
  th_destroy(loop);
}
END_TEST

START_TEST(test_loop_unref_watcher_does_not_keep_run_alive) {
  tl_loop *loop = th_new(_i);
  struct tcount c = {0};
  tl_timer t;
  tl_timer_init(&t, count_timer_cb, 3600, 0);
  t.data = &c;
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  tl_unref(loop);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 0);
  ck_assert_int_eq(tl_is_active(&t), 1);
  tl_ref(loop);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_timer_stop(loop, &t), 0);
  th_destroy(loop);
}
END_TEST

static void reref_timer_cb(tl_loop *loop, tl_timer *w, unsigned revents) {
  /* libev's rule: ref again before an unref'd watcher stops (a one-shot
   * timer stops itself just before its callback). */
  tl_ref(loop);
  count_timer_cb(loop, w, revents);
}

START_TEST(test_loop_unref_watcher_still_fires_while_loop_runs) {
  tl_loop *loop = th_new(_i);
  int seq = 0;
  struct tcount a = {.seq = &seq}, b = {.seq = &seq};
  tl_timer ta, tb;
  tl_timer_init(&ta, reref_timer_cb, 0, 0);
  tl_timer_init(&tb, count_timer_cb, 0.02, 0);
  ta.data = &a;
  tb.data = &b;
  ck_assert_int_eq(tl_timer_start(loop, &ta), 0);
  tl_unref(loop);
  ck_assert_int_eq(tl_timer_start(loop, &tb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(a.calls, 1);
  ck_assert_int_eq(b.calls, 1);
  ck_assert_int_eq(a.order, 1);
  ck_assert_int_eq(b.order, 2);
  th_destroy(loop);
}
END_TEST

START_TEST(test_loop_now_is_cached_and_advances) {
  tl_loop *loop = th_new(_i);
  tl_now_update(loop);
  tl_tstamp t0 = tl_now(loop);
  ck_assert(isfinite(t0));
  th_sleep(0.002);
  /* Cached: unchanged until the next iteration or tl_now_update. */
  ck_assert(tl_now(loop) == t0);
  tl_now_update(loop);
  ck_assert(tl_now(loop) > t0);

  tl_tstamp t1 = tl_now(loop);
  struct tcount c = {0};
  tl_timer t;
  tl_timer_init(&t, count_timer_cb, 0.01, 0);
  t.data = &c;
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 1);
  /* A timer never fires before its time, as the loop's clock sees it. */
  ck_assert(c.now_seen >= t1 + 0.01 - 1e-9);
  ck_assert(tl_now(loop) >= c.now_seen);
  th_destroy(loop);
}
END_TEST

START_TEST(test_loop_userdata_round_trips) {
  tl_loop *loop = th_new(_i);
  int x;
  ck_assert_ptr_null(tl_userdata(loop));
  tl_set_userdata(loop, &x);
  ck_assert_ptr_eq(tl_userdata(loop), &x);
  tl_set_userdata(loop, NULL);
  ck_assert_ptr_null(tl_userdata(loop));
  th_destroy(loop);
}
END_TEST

static void recursive_cb(tl_loop *loop, tl_timer *w, unsigned revents) {
  struct tcount *c = w->data;
  c->calls++;
  c->run_ret = tl_run(loop, TL_RUN_NOWAIT);
  c->destroy_ret = tl_loop_destroy(loop);
}

START_TEST(test_loop_run_and_destroy_inside_a_callback_return_ebusy) {
  tl_loop *loop = th_new(_i);
  struct tcount c = {0};
  tl_timer t;
  tl_timer_init(&t, recursive_cb, 0, 0);
  t.data = &c;
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_int_eq(c.run_ret, -EBUSY);
  ck_assert_int_eq(c.destroy_ret, -EBUSY);
  th_destroy(loop);
}
END_TEST

static void nop_op_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  (void)res;
  ++*(int *)op->data;
}

START_TEST(test_loop_stats_count_ops_and_iterations) {
  tl_loop *loop = th_new(_i);
  struct tl_loop_stats st0, st;
  tl_loop_stats(loop, &st0);
  ck_assert_uint_eq(st0.ops_submitted, 0);
  ck_assert_uint_eq(st0.ops_completed, 0);
  int fd = th_tmpfile("abc", 3);
  char buf[3];
  tl_op op;
  int calls = 0;
  memset(&op, 0, sizeof op);
  op.data = &calls;
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, sizeof buf, 0, nop_op_cb), 0);
  tl_loop_stats(loop, &st);
  ck_assert_uint_eq(st.ops_submitted, 1);
  ck_assert_uint_eq(tl_ops_in_flight(loop), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(calls, 1);
  for (int k = 0; k < 3; k++)
    tl_run(loop, TL_RUN_NOWAIT);
  tl_loop_stats(loop, &st);
  ck_assert_uint_eq(st.ops_submitted, 1);
  ck_assert_uint_eq(st.ops_completed, 1);
  ck_assert_uint_ge(st.iterations, st0.iterations + 1);
  close(fd);
  th_destroy(loop);
}
END_TEST

/* Backend selection through the environment. */

static const char *other_backend_name(int id) {
  return id == TL_BACKEND_EPOLL ? "threadpool" : "epoll";
}

START_TEST(test_loop_env_picks_the_backend) {
  int id = th_id(_i);
  setenv("TRILOOP_BACKEND", th_name(_i), 1);
  tl_loop *loop = NULL;
  ck_assert_int_eq(tl_loop_new(&loop, TL_BACKEND_AUTO), 0);
  ck_assert_int_eq(tl_backend(loop), id);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  unsetenv("TRILOOP_BACKEND");
}
END_TEST

START_TEST(test_loop_env_nonsense_gives_einval) {
  setenv("TRILOOP_BACKEND", "nonsense", 1);
  tl_loop *loop = NULL;
  ck_assert_int_eq(tl_loop_new(&loop, TL_BACKEND_AUTO), -EINVAL);
  /* An explicit backend does not look at the variable. */
  loop = th_new(_i);
  th_destroy(loop);
  /* Neither does NOENV. */
  ck_assert_int_eq(tl_loop_new(&loop, TL_FLAG_NOENV), 0);
  ck_assert_int_eq(tl_backend(loop), tl_backend_auto(NULL, 0));
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  unsetenv("TRILOOP_BACKEND");
}
END_TEST

/* A bad number in a TRILOOP_* variable is an error that names it, never a
 * silent default: on an explicit backend, from tl_env_check and the probe
 * alike.  TL_FLAG_NOENV does not read them. */
START_TEST(test_loop_env_bad_number_gives_einval_naming_it) {
  static const char *const vars[] = {
    "TRILOOP_THREADS", "TRILOOP_THREADS_MAX", "TRILOOP_THREADS_EAGER",
    "TRILOOP_THREADS_KEEPALIVE_MS", "TRILOOP_URING_ENTRIES", "TRILOOP_URING_IOWQ_MAX",
  };
  static const char *const bad[] = {"abc", "-1", "12x", " 5", "+5", "0x10",
                                    "99999999999999999999", "4294967296"};
  char why[256];
  for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++) {
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
      setenv(vars[v], bad[k], 1);
      tl_loop *loop = NULL;
      ck_assert_msg(tl_loop_new(&loop, (unsigned)th_id(_i)) == -EINVAL,
                    "%s=%s: tl_loop_new did not fail with -EINVAL", vars[v], bad[k]);
      ck_assert_ptr_null(loop);
      ck_assert_int_eq(tl_env_check(why, sizeof why), -EINVAL);
      ck_assert_msg(strstr(why, vars[v]) != NULL, "why '%s' does not name %s", why, vars[v]);
      ck_assert_int_eq(tl_backend_probe(th_id(_i), why, sizeof why), -EINVAL);
      ck_assert_msg(strstr(why, vars[v]) != NULL, "probe '%s' does not name %s", why, vars[v]);
      ck_assert_int_eq(tl_loop_new(&loop, (unsigned)th_id(_i) | TL_FLAG_NOENV), 0);
      ck_assert_int_eq(tl_loop_destroy(loop), 0);
    }
    /* Out of the variable's range is bad too (0 workers, a ring of 0). */
    if (strcmp(vars[v], "TRILOOP_URING_IOWQ_MAX") != 0) {
      setenv(vars[v], "0", 1);
      ck_assert_int_eq(tl_env_check(why, sizeof why), -EINVAL);
      ck_assert_msg(strstr(why, vars[v]) != NULL, "why '%s' does not name %s", why, vars[v]);
    }
    /* Empty means the default, and a number in range is fine. */
    setenv(vars[v], "", 1);
    ck_assert_int_eq(tl_env_check(why, sizeof why), 0);
    setenv(vars[v], "8", 1);
    ck_assert_int_eq(tl_env_check(why, sizeof why), 0);
    unsetenv(vars[v]);
  }
}
END_TEST

START_TEST(test_loop_explicit_flag_overrides_env) {
  setenv("TRILOOP_BACKEND", other_backend_name(th_id(_i)), 1);
  tl_loop *loop = th_new(_i);
  ck_assert_int_eq(tl_backend(loop), th_id(_i));
  th_destroy(loop);
  unsetenv("TRILOOP_BACKEND");
}
END_TEST

START_TEST(test_loop_noenv_ignores_env) {
  int autoid = tl_backend_auto(NULL, 0);
  ck_assert_int_gt(autoid, TL_BACKEND_AUTO);
  ck_assert_int_lt(autoid, TL_BACKEND_COUNT);
  /* Ask the environment for something auto would not pick. */
  const char *envname = th_id(_i) != autoid ? th_name(_i) : other_backend_name(autoid);
  setenv("TRILOOP_BACKEND", envname, 1);
  tl_loop *loop = NULL;
  ck_assert_int_eq(tl_loop_new(&loop, TL_FLAG_NOENV), 0);
  ck_assert_int_eq(tl_backend(loop), autoid);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  unsetenv("TRILOOP_BACKEND");
}
END_TEST

START_TEST(test_loop_env_auto_means_auto) {
  setenv("TRILOOP_BACKEND", "auto", 1);
  tl_loop *loop = NULL;
  ck_assert_int_eq(tl_loop_new(&loop, TL_BACKEND_AUTO), 0);
  ck_assert_int_eq(tl_backend(loop), tl_backend_auto(NULL, 0));
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  unsetenv("TRILOOP_BACKEND");
}
END_TEST

START_TEST(test_loop_backend_names_map_both_ways) {
  (void)_i;
  ck_assert_int_eq(tl_backend_from_name("uring"), TL_BACKEND_URING);
  ck_assert_int_eq(tl_backend_from_name("epoll"), TL_BACKEND_EPOLL);
  ck_assert_int_eq(tl_backend_from_name("threadpool"), TL_BACKEND_THREADPOOL);
  ck_assert_int_eq(tl_backend_from_name("auto"), TL_BACKEND_AUTO);
  ck_assert_int_eq(tl_backend_from_name("nonsense"), -EINVAL);
  ck_assert_int_eq(tl_backend_from_name(""), -EINVAL);
  for (int id = TL_BACKEND_URING; id < TL_BACKEND_COUNT; id++) {
    const char *n = tl_backend_id_name(id);
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(tl_backend_from_name(n), id);
    ck_assert_ptr_nonnull(strstr(tl_backend_names(), n));
  }
  ck_assert_ptr_null(tl_backend_id_name(TL_BACKEND_COUNT));
  ck_assert_ptr_null(tl_backend_id_name(-1));
  ck_assert_ptr_nonnull(strstr(tl_backend_names(), "auto"));
  char why[128] = "";
  ck_assert_int_eq(tl_backend_probe(th_id(_i), why, sizeof why), 0);
  ck_assert_ptr_nonnull(tl_version());
  ck_assert_str_ne(tl_version(), "");
}
END_TEST

/* A loop run by one thread, then (after that thread was joined) by another:
 * glibc gives the second thread the first one's pthread_t, so a backend
 * that tells threads apart by it mistakes the second for the first. */
struct handover {
  tl_loop *loop;
  int fd;
  int run_ret;
  int runs;
  struct th_opres *r;
};

static void *handover_first(void *p) {
  struct handover *h = p;
  h->run_ret = tl_run(h->loop, TL_RUN_NOWAIT);
  return NULL;
}

static void *handover_second(void *p) {
  struct handover *h = p;
  double end = th_time() + 5;
  h->run_ret = 1;
  while (!h->r->calls && h->run_ret >= 0 && th_time() < end) {
    h->run_ret = tl_run(h->loop, TL_RUN_ONCE);
    h->runs++;
  }
  return NULL;
}

START_TEST(test_loop_run_by_a_second_thread_after_the_first_was_joined) {
  tl_loop *loop = th_new(_i);
  int s[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  char buf[8] = {0};
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  struct handover h = { .loop = loop, .fd = s[0], .r = &r };
  pthread_t a, b;
  ck_assert_int_eq(pthread_create(&a, NULL, handover_first, &h), 0);
  ck_assert_int_eq(pthread_join(a, NULL), 0);
  ck_assert_int_eq(h.run_ret, 1);
  ck_assert_int_eq(r.calls, 0);
  ck_assert_int_eq(write(s[1], "ping", 4), 4);
  ck_assert_int_eq(pthread_create(&b, NULL, handover_second, &h), 0);
  ck_assert_int_eq(pthread_join(b, NULL), 0);
  char desc[512];
  tl_loop_describe(loop, desc, sizeof desc);
  if (th_id(_i) == TL_BACKEND_URING && strstr(desc, "single_issuer")) {
    /* A single-issuer ring belongs to the thread that first ran the loop
     * and the kernel refuses any other (documented at tl_run): -EEXIST,
     * and destroy still returns, the recv called back once. */
    ck_assert_int_eq(h.run_ret, -EEXIST);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(tl_loop_destroy(loop), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.res, -ECANCELED);
    close(s[0]);
    close(s[1]);
    return;
  }
  ck_assert_msg(h.run_ret >= 0, "tl_run in the second thread: %s (%d)",
                tl_strerror(h.run_ret), h.run_ret);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 4);
  ck_assert_mem_eq(buf, "ping", 4);
  /* And back to the main thread. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(write(s[1], "pong", 4), 4);
  TH_RUN_UNTIL(loop, r.calls == 1);
  ck_assert_int_eq(r.res, 4);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

static void *run_once_in_worker(void *p) {
  struct handover *h = p;
  h->run_ret = tl_run(h->loop, TL_RUN_NOWAIT);
  return NULL;
}

/* Created in main, run in a worker thread, destroyed from main with a recv
 * still in flight: destroy returns and the recv is called back once, on
 * every backend (on uring the ring may refuse the main thread). */
START_TEST(test_loop_destroy_from_main_after_a_worker_ran_it_returns) {
  tl_loop *loop = th_new(_i);
  int s[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  char buf[8];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  struct handover h = { .loop = loop, .fd = s[0], .r = &r };
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, run_once_in_worker, &h), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(h.run_ret, 1);
  double t0 = th_time();
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, -ECANCELED);
  ck_assert_msg(th_time() - t0 < 5, "destroy took %.1f s", th_time() - t0);
  close(s[0]);
  close(s[1]);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_loop_new_reports_requested_backend);
  TH_ADD(tc, test_loop_run_without_work_returns_zero_in_every_mode);
  TH_ADD(tc, test_loop_run_default_returns_when_last_watcher_ends);
  TH_ADD(tc, test_loop_run_nowait_does_not_block);
  TH_ADD(tc, test_loop_run_once_blocks_until_the_timer_fires);
  TH_ADD(tc, test_loop_break_makes_run_return_with_work_left);
  TH_ADD(tc, test_loop_unref_watcher_does_not_keep_run_alive);
  TH_ADD(tc, test_loop_unref_watcher_still_fires_while_loop_runs);
  TH_ADD(tc, test_loop_now_is_cached_and_advances);
  TH_ADD(tc, test_loop_userdata_round_trips);
  TH_ADD(tc, test_loop_run_and_destroy_inside_a_callback_return_ebusy);
  TH_ADD(tc, test_loop_stats_count_ops_and_iterations);
  TH_ADD(tc, test_loop_env_picks_the_backend);
  TH_ADD(tc, test_loop_env_nonsense_gives_einval);
  TH_ADD(tc, test_loop_env_bad_number_gives_einval_naming_it);
  TH_ADD(tc, test_loop_explicit_flag_overrides_env);
  TH_ADD(tc, test_loop_noenv_ignores_env);
  TH_ADD(tc, test_loop_env_auto_means_auto);
  TH_ADD(tc, test_loop_backend_names_map_both_ways);
  TH_ADD(tc, test_loop_run_by_a_second_thread_after_the_first_was_joined);
  TH_ADD(tc, test_loop_destroy_from_main_after_a_worker_ran_it_returns);
}

int main(void) { return th_main("loop", add); }
