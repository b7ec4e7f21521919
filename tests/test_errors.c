/* Bad input gets a clear error and loses nothing: every refused call leaves
 * the loop, its watchers and its ops exactly as they were. */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"

static void ok_text(int v) {
  const char *t = tl_strerror(v);
  ck_assert_msg(t != NULL, "tl_strerror(%d) is NULL", v);
  ck_assert_msg(t[0] != 0, "tl_strerror(%d) is empty", v);
}

START_TEST(test_strerror_describes_every_value) {
  (void)_i;
  static const int errs[] = {EINVAL, EBADF, EBUSY, EALREADY, ENOENT, ECANCELED,
                             ESHUTDOWN, ENOSYS, EPERM, ENOMEM, EPIPE, EAGAIN,
                             ECONNREFUSED, ENOTSOCK, EEXIST, EFAULT};
  for (size_t k = 0; k < sizeof errs / sizeof errs[0]; k++) {
    ok_text(-errs[k]);
    for (size_t j = 0; j < k; j++)
      ck_assert_msg(strcmp(tl_strerror(-errs[k]), tl_strerror(-errs[j])) != 0,
                    "errno %d and %d share the text \"%s\"", errs[k], errs[j],
                    tl_strerror(-errs[k]));
  }
  ok_text(0);
  ok_text(1);        /* counts are values too */
  ok_text(12345);
  ok_text(-4095);
  ok_text(-99999);
  ok_text(INT_MIN);
  ok_text(INT_MAX);
  /* Op results carry the kernel's errnos: their text is the kernel's (a
   * missing file is not "not in flight", an EINVAL names no backends). */
  for (size_t k = 0; k < sizeof errs / sizeof errs[0]; k++)
    ck_assert_str_eq(tl_strerror(-errs[k]), strerror(errs[k]));
  ck_assert_str_ne(tl_strerror(0), tl_strerror(-EINVAL));
}
END_TEST

START_TEST(test_errors_bad_loop_flags_are_einval) {
  tl_loop *loop = (tl_loop *)&loop;   /* must not be trusted or freed */
  ck_assert_int_eq(tl_loop_new(&loop, TL_BACKEND_COUNT), -EINVAL);
  ck_assert_int_eq(tl_loop_new(&loop, TL_FLAG_BACKEND_MASK), -EINVAL);
  ck_assert_int_eq(tl_loop_new(&loop, (unsigned)th_id(_i) | 0x4000u), -EINVAL);
  ck_assert_int_eq(tl_loop_new(&loop, (unsigned)th_id(_i) | 0x80000000u), -EINVAL);
  char why[64];
  ck_assert_int_eq(tl_backend_probe(TL_BACKEND_COUNT, why, sizeof why), -EINVAL);
  ck_assert_int_eq(tl_backend_probe(-1, NULL, 0), -EINVAL);
  /* A tiny why buffer is truncated, not overrun. */
  char tiny[4] = "zzz";
  tl_backend_probe(th_id(_i), tiny, 1);
  ck_assert_int_eq(tiny[1], 'z');
  /* The good flags still work. */
  loop = th_new(_i);
  th_destroy(loop);
  ck_assert_int_eq(tl_loop_new(&loop, (unsigned)th_id(_i) | TL_FLAG_NOENV), 0);
  ck_assert_int_eq(tl_backend(loop), th_id(_i));
  th_destroy(loop);
}
END_TEST

static int timer_calls;
static void count_timer(tl_loop *loop, tl_timer *w, unsigned revents) {
  (void)loop;
  (void)w;
  (void)revents;
  timer_calls++;
}

START_TEST(test_errors_bad_run_mode_is_einval) {
  tl_loop *loop = th_new(_i);
  tl_timer t;
  timer_calls = 0;
  tl_timer_init(&t, count_timer, 0, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, 3), -EINVAL);
  ck_assert_int_eq(tl_run(loop, -1), -EINVAL);
  ck_assert_int_eq(timer_calls, 0);
  ck_assert_int_eq(tl_is_active(&t), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(timer_calls, 1);
  th_destroy(loop);
}
END_TEST

struct iocount {
  int calls;
  unsigned revents;
};
static void io_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  struct iocount *c = w->data;
  c->calls++;
  c->revents = revents;
  ck_assert_int_eq(tl_io_stop(loop, w), 0);
}

START_TEST(test_errors_bad_io_input_loses_nothing) {
  tl_loop *loop = th_new(_i);
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  struct iocount good = {0}, bad = {0};
  tl_io g, b;
  tl_io_init(&g, io_cb, p[1], TL_WRITE);
  g.data = &good;
  ck_assert_int_eq(tl_io_start(loop, &g), 0);

  tl_io_init(&b, io_cb, p[0], 0);
  b.data = &bad;
  ck_assert_int_eq(tl_io_start(loop, &b), -EINVAL);
  tl_io_init(&b, io_cb, p[0], TL_TIMER);   /* no READ or WRITE */
  b.data = &bad;
  ck_assert_int_eq(tl_io_start(loop, &b), -EINVAL);
  tl_io_init(&b, io_cb, -1, TL_READ);
  b.data = &bad;
  ck_assert_int_eq(tl_io_start(loop, &b), -EBADF);
  tl_io_init(&b, io_cb, INT_MAX, TL_READ);
  b.data = &bad;
  ck_assert_int_eq(tl_io_start(loop, &b), -EBADF);
  ck_assert_int_eq(tl_is_active(&b), 0);
  ck_assert_int_eq(tl_io_stop(loop, &b), -EALREADY);

  /* Bad events for an active watcher: refused, it keeps what it had. */
  ck_assert_int_eq(tl_io_set(loop, &g, 0), -EINVAL);
  ck_assert_uint_eq(g.events, TL_WRITE);
  ck_assert_int_eq(tl_is_active(&g), 1);
  ck_assert_int_eq(tl_io_start(loop, &g), -EBUSY);

  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(good.calls, 1);
  ck_assert_uint_eq(good.revents, TL_WRITE);
  ck_assert_int_eq(bad.calls, 0);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_errors_bad_timer_input_loses_nothing) {
  tl_loop *loop = th_new(_i);
  tl_timer t;
  timer_calls = 0;
  tl_timer_init(&t, count_timer, 0.001, 0);
  ck_assert_int_eq(tl_timer_set(&t, -0.5, 0), -EINVAL);
  ck_assert_int_eq(tl_timer_set(&t, NAN, 0), -EINVAL);
  ck_assert_int_eq(tl_timer_set(&t, 0, -0.5), -EINVAL);
  ck_assert_int_eq(tl_timer_set(&t, 0, NAN), -EINVAL);
  /* The refused sets kept the old values. */
  ck_assert(t.repeat == 0);
  ck_assert_int_eq(tl_timer_stop(loop, &t), -EALREADY);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), -EBUSY);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(timer_calls, 1);
  th_destroy(loop);
}
END_TEST

static void nop_idle(tl_loop *l, tl_idle *w, unsigned e) { (void)l; (void)w; (void)e; }
static void nop_prepare(tl_loop *l, tl_prepare *w, unsigned e) { (void)l; (void)w; (void)e; }
static void nop_check(tl_loop *l, tl_check *w, unsigned e) { (void)l; (void)w; (void)e; }
static void nop_async(tl_loop *l, tl_async *w, unsigned e) { (void)l; (void)w; (void)e; }
static void nop_child(tl_loop *l, tl_child *w, unsigned e) { (void)l; (void)w; (void)e; }
static void nop_signal(tl_loop *l, tl_signal *w, unsigned e) { (void)l; (void)w; (void)e; }

START_TEST(test_errors_double_start_is_ebusy_and_idle_stop_is_ealready_for_every_watcher) {
  tl_loop *loop = th_new(_i);
  tl_idle i;
  tl_prepare p;
  tl_check c;
  tl_async a;
  tl_child ch;
  tl_signal s;
  tl_idle_init(&i, nop_idle);
  tl_prepare_init(&p, nop_prepare);
  tl_check_init(&c, nop_check);
  tl_async_init(&a, nop_async);
  tl_child_init(&ch, nop_child, 0);
  tl_signal_init(&s, nop_signal, SIGUSR1);

  ck_assert_int_eq(tl_idle_stop(loop, &i), -EALREADY);
  ck_assert_int_eq(tl_prepare_stop(loop, &p), -EALREADY);
  ck_assert_int_eq(tl_check_stop(loop, &c), -EALREADY);
  ck_assert_int_eq(tl_async_stop(loop, &a), -EALREADY);
  ck_assert_int_eq(tl_child_stop(loop, &ch), -EALREADY);
  ck_assert_int_eq(tl_signal_stop(loop, &s), -EALREADY);

  ck_assert_int_eq(tl_idle_start(loop, &i), 0);
  ck_assert_int_eq(tl_prepare_start(loop, &p), 0);
  ck_assert_int_eq(tl_check_start(loop, &c), 0);
  ck_assert_int_eq(tl_async_start(loop, &a), 0);
  ck_assert_int_eq(tl_child_start(loop, &ch), 0);
  ck_assert_int_eq(tl_signal_start(loop, &s), 0);

  ck_assert_int_eq(tl_idle_start(loop, &i), -EBUSY);
  ck_assert_int_eq(tl_prepare_start(loop, &p), -EBUSY);
  ck_assert_int_eq(tl_check_start(loop, &c), -EBUSY);
  ck_assert_int_eq(tl_async_start(loop, &a), -EBUSY);
  ck_assert_int_eq(tl_child_start(loop, &ch), -EBUSY);
  ck_assert_int_eq(tl_signal_start(loop, &s), -EBUSY);

  /* Priority of an active watcher cannot change. */
  ck_assert_int_eq(tl_set_priority(&i, 1), -EBUSY);
  ck_assert_int_eq(i.priority, 0);

  ck_assert_int_eq(tl_idle_stop(loop, &i), 0);
  ck_assert_int_eq(tl_prepare_stop(loop, &p), 0);
  ck_assert_int_eq(tl_check_stop(loop, &c), 0);
  ck_assert_int_eq(tl_async_stop(loop, &a), 0);
  ck_assert_int_eq(tl_child_stop(loop, &ch), 0);
  ck_assert_int_eq(tl_signal_stop(loop, &s), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_errors_bad_signal_start_does_not_disturb_others) {
  tl_loop *loop = th_new(_i);
  tl_signal good, bad;
  tl_signal_init(&good, nop_signal, SIGUSR2);
  ck_assert_int_eq(tl_signal_start(loop, &good), 0);
  tl_signal_init(&bad, nop_signal, SIGKILL);
  ck_assert_int_eq(tl_signal_start(loop, &bad), -EINVAL);
  tl_signal_init(&bad, nop_signal, 0);
  ck_assert_int_eq(tl_signal_start(loop, &bad), -EINVAL);
  tl_signal_init(&bad, nop_signal, _NSIG);
  ck_assert_int_eq(tl_signal_start(loop, &bad), -EINVAL);
  ck_assert_int_eq(tl_is_active(&bad), 0);
  ck_assert_int_eq(tl_is_active(&good), 1);
  ck_assert_int_eq(tl_signal_stop(loop, &good), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_errors_refused_submits_do_not_disturb_ops_in_flight) {
  tl_loop *loop = th_new(_i);
  int s[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  char buf[8] = "", other[8];
  tl_op op, bad;
  struct th_opres r, rb;
  th_op_prep(&op, &r);
  th_op_prep(&bad, &rb);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);

  ck_assert_int_eq(tl_recv(loop, &op, s[0], other, sizeof other, 0, th_op_cb), -EBUSY);
  ck_assert_int_eq(tl_recv(loop, &bad, -1, other, sizeof other, 0, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_recv(loop, &bad, s[0], NULL, 4, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_recv(loop, &bad, s[0], other, (size_t)SSIZE_MAX + 1, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_op_cancel(loop, &bad), -ENOENT);
  ck_assert_int_eq(tl_op_in_flight(&bad), 0);
  ck_assert(tl_op_in_flight(&op));
  ck_assert_uint_eq(tl_ops_in_flight(loop), 1);
  /* The buffer and fd of the op in flight are what it was submitted with. */
  ck_assert_int_eq(op.fd, s[0]);
  ck_assert_ptr_eq(op.u.msg.buf, buf);

  ck_assert_int_eq(write(s[1], "data", 4), 4);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 4);
  ck_assert_int_eq(memcmp(buf, "data", 4), 0);
  ck_assert_int_eq(rb.calls, 0);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_strerror_describes_every_value);
  TH_ADD(tc, test_errors_bad_loop_flags_are_einval);
  TH_ADD(tc, test_errors_bad_run_mode_is_einval);
  TH_ADD(tc, test_errors_bad_io_input_loses_nothing);
  TH_ADD(tc, test_errors_bad_timer_input_loses_nothing);
  TH_ADD(tc, test_errors_double_start_is_ebusy_and_idle_stop_is_ealready_for_every_watcher);
  TH_ADD(tc, test_errors_bad_signal_start_does_not_disturb_others);
  TH_ADD(tc, test_errors_refused_submits_do_not_disturb_ops_in_flight);
}

int main(void) { return th_main("errors", add); }
