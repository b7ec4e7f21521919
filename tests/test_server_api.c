/* What a server reaches for beyond plain ops: deadlines on ops (exactly
 * one callback, the real result or -ETIMEDOUT) and work on the pool
 * (tl_work: cancel while queued, destroy, the pool's statistics). */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"

static void mksocks(int s[2]) {
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
}

/* ---- deadlines ------------------------------------------------------ */

START_TEST(test_deadline_times_out_a_quiet_recv_once_with_etimedout) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  char buf[8];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_op_set_timeout(&op, 0.05), 0);
  double t0 = th_time();
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  TH_RUN_UNTIL(loop, r.calls == 1);
  ck_assert_int_eq(r.res, -ETIMEDOUT);
  ck_assert(th_time() - t0 >= 0.045);   /* never early */
  /* Nothing is left behind: no second callback, the loop has no work. */
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(r.calls, 1);
  /* The setting stays with the op: a resubmit times out again, and data
   * that arrives in time wins. */
  r.calls = 0;
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  TH_RUN_UNTIL(loop, r.calls == 1);
  ck_assert_int_eq(r.res, -ETIMEDOUT);
  ck_assert_int_eq(tl_op_set_timeout(&op, 5), 0);
  r.calls = 0;
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(write(s[1], "hey", 3), 3);
  TH_RUN_UNTIL(loop, r.calls == 1);
  ck_assert_int_eq(r.res, 3);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_deadline_does_not_keep_the_loop_alive_after_the_op_completed) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  char buf[8];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_op_set_timeout(&op, 30), 0);
  ck_assert_int_eq(write(s[1], "x", 1), 1);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  double t0 = th_time();
  /* Returns once the recv is called back; a deadline timer still armed
   * would hold it for 30 s (Check's timeout fails that first). */
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 1);
  ck_assert(th_time() - t0 < 5);
  /* The old limit is gone with its op: a new one takes effect. */
  ck_assert_int_eq(tl_op_set_timeout(&op, 0.02), 0);
  r.calls = 0;
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  TH_RUN_UNTIL(loop, r.calls == 1);
  ck_assert_int_eq(r.res, -ETIMEDOUT);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_deadline_already_past_times_out_on_the_next_iteration) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  char buf[8];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_op_set_deadline(&op, tl_now(loop) - 1), 0);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  TH_RUN_UNTIL(loop, r.calls == 1);
  ck_assert_int_eq(r.res, -ETIMEDOUT);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

/* Data ready and the deadline due in the same iteration, many times: each
 * round has exactly one callback, with the data or with -ETIMEDOUT. */
START_TEST(test_deadline_racing_a_completion_gives_exactly_one_callback) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  char buf[8];
  int got_data = 0, got_timeout = 0;
  for (int round = 0; round < 200; round++) {
    tl_op op;
    struct th_opres r;
    th_op_prep(&op, &r);
    ck_assert_int_eq(tl_op_set_deadline(&op, tl_now(loop)), 0);
    ck_assert_int_eq(write(s[1], "ab", 2), 2);
    ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
    TH_RUN_UNTIL(loop, r.calls >= 1);
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_msg(r.res == 2 || r.res == -ETIMEDOUT, "round %d: %lld", round, (long long)r.res);
    if (r.res == 2) {
      got_data++;
    } else {
      got_timeout++;   /* the bytes stay in the socket: drain them */
      ck_assert_int_eq(recv(s[0], buf, sizeof buf, 0), 2);
    }
  }
  ck_assert_int_eq(got_data + got_timeout, 200);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_deadline_rejects_bad_values_and_ops_in_flight) {
  tl_loop *loop = th_new(_i);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_op_set_timeout(&op, -1), -EINVAL);
  ck_assert_int_eq(tl_op_set_timeout(&op, NAN), -EINVAL);
  ck_assert_int_eq(tl_op_set_deadline(&op, INFINITY), -EINVAL);
  ck_assert_int_eq(tl_op_set_timeout(NULL, 1), -EINVAL);
  int s[2];
  mksocks(s);
  char buf[4];
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_op_set_timeout(&op, 1), -EBUSY);
  ck_assert_int_eq(tl_op_cancel(loop, &op), 0);
  TH_RUN_UNTIL(loop, r.calls == 1);
  ck_assert_int_eq(r.res, -ECANCELED);   /* no deadline was set: a plain cancel */
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

/* A cancel the caller asked for stays -ECANCELED when the deadline passes
 * afterwards; destroy cancels (-ECANCELED) ops whose deadline is armed. */
START_TEST(test_deadline_user_cancel_and_destroy_report_ecanceled) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  char buf[4];
  tl_op a, b;
  struct th_opres ra, rb;
  th_op_prep(&a, &ra);
  th_op_prep(&b, &rb);
  ck_assert_int_eq(tl_op_set_timeout(&a, 0.001), 0);
  ck_assert_int_eq(tl_op_set_timeout(&b, 60), 0);
  ck_assert_int_eq(tl_recv(loop, &a, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_op_cancel(loop, &a), 0);
  TH_RUN_UNTIL(loop, ra.calls == 1);
  ck_assert_int_eq(ra.res, -ECANCELED);
  ck_assert_int_eq(tl_recv(loop, &b, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  ck_assert_int_eq(rb.calls, 1);
  ck_assert_int_eq(rb.res, -ECANCELED);
  close(s[0]);
  close(s[1]);
}
END_TEST

/* ---- tl_work --------------------------------------------------------- */

struct job {
  pthread_t ran_on;
  atomic_int ran;
  int efd;   /* >= 0: wait for it before returning */
  int64_t ret;
};

/* op->data is the th_opres; the job rides in the wrapper beside it. */
struct work {
  tl_op op;
  struct th_opres r;
  struct job j;
};

static int64_t work_fn(tl_op *op) {
  struct work *w = (struct work *)op;
  w->j.ran_on = pthread_self();
  atomic_store(&w->j.ran, 1);
  if (w->j.efd >= 0) {
    uint64_t v;
    ck_assert_int_eq(read(w->j.efd, &v, sizeof v), (ssize_t)sizeof v);
  }
  return w->j.ret;
}

static void work_prep(struct work *w, int efd, int64_t ret) {
  memset(w, 0, sizeof *w);
  th_op_prep(&w->op, &w->r);
  w->j.efd = efd;
  w->j.ret = ret;
}

START_TEST(test_work_runs_on_a_worker_and_calls_back_on_the_loop_thread) {
  tl_loop *loop = th_new(_i);
  struct tl_pool_stats before, after;
  tl_pool_stats(&before);
  struct work w;
  work_prep(&w, -1, 42);
  ck_assert_int_eq(tl_work(loop, &w.op, work_fn, th_op_cb), 0);
  ck_assert(tl_op_in_flight(&w.op));
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(w.r.calls, 1);
  ck_assert_int_eq(w.r.res, 42);
  ck_assert(atomic_load(&w.j.ran));
  ck_assert(!pthread_equal(w.j.ran_on, pthread_self()));
  tl_pool_stats(&after);
  ck_assert(after.completed >= before.completed + 1);
  /* Errors travel as results too. */
  work_prep(&w, -1, -ENOENT);
  ck_assert_int_eq(tl_work(loop, &w.op, work_fn, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(w.r.res, -ENOENT);
  th_destroy(loop);
}
END_TEST

START_TEST(test_work_rejects_bad_arguments_and_double_submit) {
  tl_loop *loop = th_new(_i);
  struct work w;
  work_prep(&w, -1, 0);
  ck_assert_int_eq(tl_work(loop, &w.op, NULL, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_work(loop, &w.op, work_fn, NULL), -EINVAL);
  ck_assert_int_eq(tl_work(loop, NULL, work_fn, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_work(loop, &w.op, work_fn, th_op_cb), 0);
  ck_assert_int_eq(tl_work(loop, &w.op, work_fn, th_op_cb), -EBUSY);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(w.r.calls, 1);
  th_destroy(loop);
}
END_TEST

/* The pool runs at most TRILOOP_THREADS_MAX (2, set in main) work jobs at
 * once: two blocked jobs make the third wait in the queue, where a cancel
 * takes it back before it ever runs. */
START_TEST(test_work_cancel_while_queued_completes_ecanceled_and_never_runs) {
  tl_loop *loop = th_new(_i);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
  ck_assert_int_ge(efd, 0);
  struct work blk[2], queued;
  for (int k = 0; k < 2; k++) {
    work_prep(&blk[k], efd, k);
    ck_assert_int_eq(tl_work(loop, &blk[k].op, work_fn, th_op_cb), 0);
  }
  double end = th_time() + 8;
  while (!(atomic_load(&blk[0].j.ran) && atomic_load(&blk[1].j.ran)) && th_time() < end)
    th_sleep(0.001);
  ck_assert(atomic_load(&blk[0].j.ran) && atomic_load(&blk[1].j.ran));
  work_prep(&queued, -1, 7);
  ck_assert_int_eq(tl_work(loop, &queued.op, work_fn, th_op_cb), 0);
  th_sleep(0.02);   /* it must stay queued: both workers are blocked */
  ck_assert_int_eq(tl_op_cancel(loop, &queued.op), 0);
  TH_RUN_UNTIL(loop, queued.r.calls == 1);
  ck_assert_int_eq(queued.r.res, -ECANCELED);
  ck_assert(!atomic_load(&queued.j.ran));
  /* A running job is not interrupted: it reports what fn returned. */
  ck_assert_int_eq(tl_op_cancel(loop, &blk[0].op), 0);
  uint64_t two = 2;
  ck_assert_int_eq(write(efd, &two, sizeof two), (ssize_t)sizeof two);
  TH_RUN_UNTIL(loop, blk[0].r.calls == 1 && blk[1].r.calls == 1);
  ck_assert_int_eq(blk[0].r.res, 0);
  ck_assert_int_eq(blk[1].r.res, 1);
  close(efd);
  th_destroy(loop);
}
END_TEST

static void *release_later(void *arg) {
  th_sleep(0.05);
  uint64_t two = 2;
  ck_assert_int_eq(write(*(int *)arg, &two, sizeof two), (ssize_t)sizeof two);
  return NULL;
}

/* Destroy cancels the queued job and waits for the running ones: each gets
 * exactly one callback, before destroy returns. */
START_TEST(test_work_destroy_waits_for_running_and_cancels_queued) {
  tl_loop *loop = th_new(_i);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
  struct work blk[2], queued;
  for (int k = 0; k < 2; k++) {
    work_prep(&blk[k], efd, 10 + k);
    ck_assert_int_eq(tl_work(loop, &blk[k].op, work_fn, th_op_cb), 0);
  }
  double end = th_time() + 8;
  while (!(atomic_load(&blk[0].j.ran) && atomic_load(&blk[1].j.ran)) && th_time() < end)
    th_sleep(0.001);
  work_prep(&queued, -1, 7);
  ck_assert_int_eq(tl_work(loop, &queued.op, work_fn, th_op_cb), 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, release_later, &efd), 0);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  pthread_join(t, NULL);
  ck_assert_int_eq(blk[0].r.calls, 1);
  ck_assert_int_eq(blk[1].r.calls, 1);
  ck_assert_int_eq(blk[0].r.res, 10);
  ck_assert_int_eq(blk[1].r.res, 11);
  ck_assert_int_eq(queued.r.calls, 1);
  ck_assert_int_eq(queued.r.res, -ECANCELED);
  ck_assert(!atomic_load(&queued.j.ran));
  close(efd);
}
END_TEST

/* A deadline on running work cannot interrupt it: the real result, late. */
START_TEST(test_work_deadline_gives_the_real_result_of_running_work) {
  tl_loop *loop = th_new(_i);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
  struct work w;
  work_prep(&w, efd, 5);
  ck_assert_int_eq(tl_op_set_timeout(&w.op, 0.01), 0);
  ck_assert_int_eq(tl_work(loop, &w.op, work_fn, th_op_cb), 0);
  double end = th_time() + 8;
  while (!atomic_load(&w.j.ran) && th_time() < end)
    th_sleep(0.001);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, release_later, &efd), 0);
  TH_RUN_UNTIL(loop, w.r.calls == 1);
  pthread_join(t, NULL);
  ck_assert_int_eq(w.r.res, 5);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(w.r.calls, 1);
  close(efd);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_deadline_times_out_a_quiet_recv_once_with_etimedout);
  TH_ADD(tc, test_deadline_does_not_keep_the_loop_alive_after_the_op_completed);
  TH_ADD(tc, test_deadline_already_past_times_out_on_the_next_iteration);
  TH_ADD(tc, test_deadline_racing_a_completion_gives_exactly_one_callback);
  TH_ADD(tc, test_deadline_rejects_bad_values_and_ops_in_flight);
  TH_ADD(tc, test_deadline_user_cancel_and_destroy_report_ecanceled);
  TH_ADD(tc, test_work_runs_on_a_worker_and_calls_back_on_the_loop_thread);
  TH_ADD(tc, test_work_rejects_bad_arguments_and_double_submit);
  TH_ADD(tc, test_work_cancel_while_queued_completes_ecanceled_and_never_runs);
  TH_ADD(tc, test_work_destroy_waits_for_running_and_cancels_queued);
  TH_ADD(tc, test_work_deadline_gives_the_real_result_of_running_work);
}

int main(void) {
  /* Two work jobs at once, so a third one queues (the cancel cases).
   * Before any loop exists: the pool reads it when it starts. */
  setenv("TRILOOP_THREADS_MAX", "2", 1);
  return th_main("server_api", add);
}
