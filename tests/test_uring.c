/*
 * What only the io_uring backend has to get right: refusal by seccomp, tiny
 * rings (SQ full, CQ overflow), cancel races in the ring, destroy with
 * thousands of ops in flight, fork, stale poll completions, the fallback to
 * the blocking pool, and batching (syscalls per op).
 *
 * The general behaviour suite (tests/test_*.c) runs over this backend too;
 * these cases are uring-only.  The program exits 77 (SKIP) when io_uring
 * does not work here.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define CASE_TIMEOUT 20

/* In a forked child Check's assertions cannot report: say what failed on
 * stderr and exit non-zero; the parent asserts a clean exit. */
static void wait_child_ok(pid_t pid) {
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "child failed (status 0x%x), see its message on stderr", st);
}

static tl_loop *uring_loop(void) {
  tl_loop *loop = NULL;
  int r = tl_loop_new(&loop, TL_BACKEND_URING);
  ck_assert_msg(r == 0, "tl_loop_new(uring): %s (%d)", tl_strerror(r), r);
  ck_assert_str_eq(tl_backend_name(loop), "uring");
  return loop;
}

static void counting_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct th_opres *r = op->data;
  r->calls++;
  r->res = res;
}

/* ------------------------------------------------------------------ */

START_TEST(test_uring_seccomp_denial_falls_back_to_epoll) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    unsetenv("TRILOOP_BACKEND");
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    CHILD_CHECK(ctx != NULL);
    CHILD_CHECK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0) == 0);
    CHILD_CHECK(seccomp_load(ctx) == 0);
    seccomp_release(ctx);

    tl_loop *loop = NULL;
    int r = tl_loop_new(&loop, TL_BACKEND_URING);
    CHILD_CHECK(r == -EPERM);
    CHILD_CHECK(loop == NULL);

    char why[256] = "";
    r = tl_backend_probe(TL_BACKEND_URING, why, sizeof why);
    CHILD_CHECK(r == -EPERM);
    CHILD_CHECK(strstr(why, "not permitted") != NULL);

    r = tl_loop_new(&loop, TL_BACKEND_AUTO);
    CHILD_CHECK(r == 0);
    CHILD_CHECK(!strcmp(tl_backend_name(loop), "epoll"));
    CHILD_CHECK(tl_loop_destroy(loop) == 0);

    why[0] = 0;
    r = tl_backend_auto(why, sizeof why);
    CHILD_CHECK(r == TL_BACKEND_EPOLL);
    CHILD_CHECK(strstr(why, "epoll") != NULL);
    CHILD_CHECK(strstr(why, "not permitted") != NULL);
    CHILD_CHECK(strstr(why, "seccomp") != NULL || strstr(why, "io_uring_disabled") != NULL);
    _exit(0);
  }
  wait_child_ok(pid);
}
END_TEST


/* A filter that allows io_uring_setup but denies one of the other two
 * calls: auto must not pick uring (every tl_run would fail), and must say
 * why; a recv round trip works on what it picked. */
static void deny_one_then_auto(int sys, const char *name) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    alarm(10);
    unsetenv("TRILOOP_BACKEND");
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    CHILD_CHECK(ctx != NULL);
    CHILD_CHECK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sys, 0) == 0);
    CHILD_CHECK(seccomp_load(ctx) == 0);
    seccomp_release(ctx);

    char why[256] = "";
    int r = tl_backend_auto(why, sizeof why);
    if (r != TL_BACKEND_EPOLL)
      fprintf(stderr, "child: denying %s, auto picked %d: %s\n", name, r, why);
    CHILD_CHECK(r == TL_BACKEND_EPOLL);
    CHILD_CHECK(strstr(why, name) != NULL);
    CHILD_CHECK(tl_backend_probe(TL_BACKEND_URING, why, sizeof why) == -EPERM);

    tl_loop *loop = NULL;
    CHILD_CHECK(tl_loop_new(&loop, TL_BACKEND_AUTO) == 0);
    CHILD_CHECK(!strcmp(tl_backend_name(loop), "epoll"));
    int sv[2];
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    char buf[8];
    tl_op op;
    struct th_opres res;
    memset(&op, 0, sizeof op);
    memset(&res, 0, sizeof res);
    op.data = &res;
    CHILD_CHECK(tl_recv(loop, &op, sv[0], buf, sizeof buf, 0, counting_cb) == 0);
    CHILD_CHECK(write(sv[1], "ping", 4) == 4);
    while (!res.calls)
      CHILD_CHECK(tl_run(loop, TL_RUN_ONCE) >= 0);
    CHILD_CHECK(res.res == 4 && !memcmp(buf, "ping", 4));
    CHILD_CHECK(tl_loop_destroy(loop) == 0);
    _exit(0);
  }
  wait_child_ok(pid);
}

START_TEST(test_uring_seccomp_denying_any_one_call_makes_auto_pick_epoll) {
  deny_one_then_auto(SCMP_SYS(io_uring_setup), "io_uring_setup");
  deny_one_then_auto(SCMP_SYS(io_uring_enter), "io_uring_enter");
  deny_one_then_auto(SCMP_SYS(io_uring_register), "io_uring_register");
}
END_TEST

/* The kernel stops answering after the op went in (a filter installed
 * later denies io_uring_enter): destroy returns, the recv called back. */
START_TEST(test_uring_destroy_returns_when_enter_becomes_denied) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    alarm(10);
    tl_loop *loop = NULL;
    CHILD_CHECK(tl_loop_new(&loop, TL_BACKEND_URING) == 0);
    int sv[2];
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    char buf[8];
    tl_op op;
    struct th_opres res;
    memset(&op, 0, sizeof op);
    memset(&res, 0, sizeof res);
    op.data = &res;
    CHILD_CHECK(tl_recv(loop, &op, sv[0], buf, sizeof buf, 0, counting_cb) == 0);
    CHILD_CHECK(tl_run(loop, TL_RUN_NOWAIT) == 1);   /* submitted */
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    CHILD_CHECK(ctx != NULL);
    CHILD_CHECK(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_enter), 0) == 0);
    CHILD_CHECK(seccomp_load(ctx) == 0);
    seccomp_release(ctx);
    CHILD_CHECK(tl_loop_destroy(loop) == 0);
    CHILD_CHECK(res.calls == 1);
    CHILD_CHECK(res.res == -ECANCELED);
    _exit(0);
  }
  wait_child_ok(pid);
}
END_TEST


/* A thread has 16 registered-ring slots: loops created, run and destroyed
 * one after another must give theirs back (and so must the probe). */
START_TEST(test_uring_forty_loops_one_after_another_each_runs) {
  for (int k = 0; k < 40; k++) {
    tl_loop *loop = uring_loop();
    int fd = th_tmpfile("abcd", 4);
    char buf[4];
    tl_op op;
    struct th_opres r;
    memset(&op, 0, sizeof op);
    memset(&r, 0, sizeof r);
    op.data = &r;
    ck_assert_int_eq(tl_read(loop, &op, fd, buf, 4, 0, counting_cb), 0);
    TH_RUN_UNTIL(loop, r.calls == 1);   /* entered: the ring fd registered */
    ck_assert_int_eq(r.res, 4);
    close(fd);
    char d[512];
    tl_loop_describe(loop, d, sizeof d);
    ck_assert_msg(k || strstr(d, "registered ring fd") || strstr(d, "plain ring fd"), "%s", d);
    ck_assert_int_eq(tl_loop_destroy(loop), 0);
  }
}
END_TEST

/* ------------------------------------------------------------------ */

#define NREADS 1000

START_TEST(test_uring_tiny_ring_1000_file_reads_none_dropped) {
  setenv("TRILOOP_URING_ENTRIES", "4", 1);
  tl_loop *loop = uring_loop();
  unsetenv("TRILOOP_URING_ENTRIES");
  static uint64_t content[NREADS], got[NREADS];
  for (int i = 0; i < NREADS; i++)
    content[i] = 0x1234567800000000ull + (uint64_t)i;
  int fd = th_tmpfile(content, sizeof content);
  static tl_op ops[NREADS];
  static struct th_opres res[NREADS];
  /* With 4 SQEs and 16 CQEs, every fourth submit flushes the SQ, and the
   * reads complete at once: far more CQEs than the CQ holds (overflow). */
  for (int i = 0; i < NREADS; i++) {
    th_op_prep(&ops[i], &res[i]);
    got[i] = 0;
    ck_assert_int_eq(tl_read(loop, &ops[i], fd, &got[i], sizeof got[i],
                             (int64_t)(i * sizeof got[i]), counting_cb), 0);
  }
  ck_assert_uint_eq(tl_ops_in_flight(loop), NREADS);
  int total = 0;
  TH_RUN_UNTIL(loop, tl_ops_in_flight(loop) == 0);
  for (int i = 0; i < NREADS; i++) {
    ck_assert_int_eq(res[i].calls, 1);
    ck_assert_int_eq(res[i].res, 8);
    ck_assert_uint_eq(got[i], content[i]);
    total += res[i].calls;
  }
  ck_assert_int_eq(total, NREADS);
  th_destroy(loop);
  close(fd);
}
END_TEST

START_TEST(test_uring_tiny_ring_1000_pipe_reads_pending_then_burst) {
  setenv("TRILOOP_URING_ENTRIES", "4", 1);
  tl_loop *loop = uring_loop();
  unsetenv("TRILOOP_URING_ENTRIES");
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  static tl_op ops[NREADS];
  static struct th_opres res[NREADS];
  static unsigned char got[NREADS];
  for (int i = 0; i < NREADS; i++) {
    th_op_prep(&ops[i], &res[i]);
    ck_assert_int_eq(tl_read(loop, &ops[i], p[0], &got[i], 1, -1, counting_cb), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  /* All 1000 wake at once: a CQ of 16 overflows many times over. */
  unsigned char buf[NREADS];
  for (int i = 0; i < NREADS; i++)
    buf[i] = (unsigned char)(i % 251);
  ck_assert_int_eq(write(p[1], buf, sizeof buf), (ssize_t)sizeof buf);
  TH_RUN_UNTIL(loop, tl_ops_in_flight(loop) == 0);
  unsigned sum = 0, want = 0;
  for (int i = 0; i < NREADS; i++) {
    ck_assert_int_eq(res[i].calls, 1);
    ck_assert_int_eq(res[i].res, 1);
    sum += got[i];
    want += buf[i];
  }
  ck_assert_uint_eq(sum, want);
  th_destroy(loop);
  close(p[0]);
  close(p[1]);
}
END_TEST

START_TEST(test_uring_tiny_ring_1000_pipe_writes_overflow_cq_nothing_lost) {
  setenv("TRILOOP_URING_ENTRIES", "4", 1);
  tl_loop *loop = uring_loop();
  unsetenv("TRILOOP_URING_ENTRIES");
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  static tl_op ops[NREADS];
  static struct th_opres res[NREADS];
  static unsigned char one[NREADS];
  /* Every write completes during the flush of its batch of 4, long before
   * the loop reaps: the CQ of 16 overflows into the kernel's list. */
  for (int i = 0; i < NREADS; i++) {
    one[i] = 1;
    th_op_prep(&ops[i], &res[i]);
    ck_assert_int_eq(tl_write(loop, &ops[i], p[1], &one[i], 1, -1, counting_cb), 0);
  }
  TH_RUN_UNTIL(loop, tl_ops_in_flight(loop) == 0);
  for (int i = 0; i < NREADS; i++) {
    ck_assert_int_eq(res[i].calls, 1);
    ck_assert_int_eq(res[i].res, 1);
  }
  unsigned char buf[NREADS + 1];
  ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  ck_assert_int_eq(read(p[0], buf, sizeof buf), NREADS);
  th_destroy(loop);
  close(p[0]);
  close(p[1]);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(test_uring_cancel_right_after_submit_gives_ecanceled_once) {
  tl_loop *loop = uring_loop();
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  tl_op op;
  struct th_opres r;
  char buf[16];
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, sv[0], buf, sizeof buf, 0, counting_cb), 0);
  ck_assert_int_eq(tl_op_cancel(loop, &op), 0);
  TH_RUN_UNTIL(loop, r.calls > 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, -ECANCELED);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(r.calls, 1);
  th_destroy(loop);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

START_TEST(test_uring_cancel_of_a_read_that_completes_at_once_gives_one_result) {
  tl_loop *loop = uring_loop();
  int fd = th_tmpfile("abcdefgh", 8);
  tl_op op;
  struct th_opres r;
  char buf[8];
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, sizeof buf, 0, counting_cb), 0);
  ck_assert_int_eq(tl_op_cancel(loop, &op), 0);
  TH_RUN_UNTIL(loop, r.calls > 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_msg(r.res == 8 || r.res == -ECANCELED, "res %lld", (long long)r.res);
  th_destroy(loop);
  close(fd);
}
END_TEST

START_TEST(test_uring_cancel_after_completion_enoent_and_twice_ealready) {
  tl_loop *loop = uring_loop();
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  tl_op op;
  struct th_opres r;
  char buf[16];
  th_op_prep(&op, &r);
  ck_assert_int_eq(send(sv[1], "hi", 2, 0), 2);
  ck_assert_int_eq(tl_recv(loop, &op, sv[0], buf, sizeof buf, 0, counting_cb), 0);
  TH_RUN_UNTIL(loop, r.calls > 0);
  ck_assert_int_eq(r.res, 2);
  ck_assert_int_eq(tl_op_cancel(loop, &op), -ENOENT);

  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, sv[0], buf, sizeof buf, 0, counting_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_op_cancel(loop, &op), 0);
  ck_assert_int_eq(tl_op_cancel(loop, &op), -EALREADY);
  TH_RUN_UNTIL(loop, r.calls > 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, -ECANCELED);
  ck_assert_int_eq(tl_op_cancel(loop, &op), -ENOENT);
  th_destroy(loop);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* ------------------------------------------------------------------ */

#define NDESTROY 2000
#define NPAIRS 50

static int destroy_calls, destroy_canceled;
static void destroy_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  (void)op;
  destroy_calls++;
  if (res == -ECANCELED)
    destroy_canceled++;
}

static void destroy_with_ops_in_flight(const char *entries) {
  if (entries)
    setenv("TRILOOP_URING_ENTRIES", entries, 1);
  tl_loop *loop = uring_loop();
  unsetenv("TRILOOP_URING_ENTRIES");
  static tl_op ops[NDESTROY];
  static char bufs[NDESTROY][8];
  int sv[NPAIRS][2];
  for (int i = 0; i < NPAIRS; i++)
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
  destroy_calls = destroy_canceled = 0;
  for (int i = 0; i < NDESTROY; i++) {
    memset(&ops[i], 0, sizeof ops[i]);
    ck_assert_int_eq(tl_recv(loop, &ops[i], sv[i % NPAIRS][0], bufs[i], sizeof bufs[i], 0,
                             destroy_cb), 0);
    /* Hand a few batches to the kernel along the way, so some are really
     * waiting in the kernel and some are still in the SQ at destroy. */
    if (i % 500 == 499)
      ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  }
  ck_assert_uint_eq(tl_ops_in_flight(loop), NDESTROY);
  ck_assert_int_eq(destroy_calls, 0);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  ck_assert_int_eq(destroy_calls, NDESTROY);
  ck_assert_int_eq(destroy_canceled, NDESTROY);
  for (int i = 0; i < NPAIRS; i++) {
    close(sv[i][0]);
    close(sv[i][1]);
  }
}

START_TEST(test_uring_destroy_with_2000_recvs_in_flight_calls_each_back_once) {
  destroy_with_ops_in_flight(NULL);
}
END_TEST

START_TEST(test_uring_destroy_with_2000_recvs_in_flight_tiny_ring) {
  destroy_with_ops_in_flight("4");
}
END_TEST

/* ------------------------------------------------------------------ */

static int fork_timer_calls;
static void fork_timer_cb(tl_loop *loop, tl_timer *w, unsigned ev) {
  (void)loop;
  (void)w;
  if (ev & TL_TIMER)
    fork_timer_calls++;
}

START_TEST(test_uring_fork_child_rebuilds_ring_parent_keeps_its_own) {
  tl_loop *loop = uring_loop();
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  /* An op in flight across the fork: the parent's, in the parent's ring. */
  tl_op inherited;
  struct th_opres ir;
  char ibuf[8];
  th_op_prep(&inherited, &ir);
  ck_assert_int_eq(tl_recv(loop, &inherited, sv[0], ibuf, sizeof ibuf, 0, counting_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);

  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    CHILD_CHECK(tl_loop_fork(loop) == 0);
    tl_timer t;
    tl_timer_init(&t, fork_timer_cb, 0.01, 0);
    CHILD_CHECK(tl_timer_start(loop, &t) == 0);
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    tl_op rd;
    struct th_opres rr;
    char buf[8];
    th_op_prep(&rd, &rr);
    CHILD_CHECK(tl_read(loop, &rd, p[0], buf, sizeof buf, -1, counting_cb) == 0);
    CHILD_CHECK(write(p[1], "child", 5) == 5);
    double end = th_time() + 5;
    while ((rr.calls == 0 || fork_timer_calls == 0) && th_time() < end)
      CHILD_CHECK(tl_run(loop, TL_RUN_ONCE) >= 0);
    CHILD_CHECK(rr.calls == 1 && rr.res == 5 && !memcmp(buf, "child", 5));
    CHILD_CHECK(fork_timer_calls == 1);
    /* The parent's recv is no business of the child's ring: the child's
     * copy is called back with -ECANCELED, once. */
    CHILD_CHECK(ir.calls == 1 && ir.res == -ECANCELED);
    CHILD_CHECK(tl_loop_destroy(loop) == 0);
    CHILD_CHECK(ir.calls == 1);
    _exit(0);
  }
  wait_child_ok(pid);
  /* The parent's ring and its op are untouched. */
  ck_assert_int_eq(ir.calls, 0);
  ck_assert_int_eq(send(sv[1], "parent", 6, 0), 6);
  TH_RUN_UNTIL(loop, ir.calls > 0);
  ck_assert_int_eq(ir.calls, 1);
  ck_assert_int_eq(ir.res, 6);
  ck_assert_int_eq(memcmp(ibuf, "parent", 6), 0);
  th_destroy(loop);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* ------------------------------------------------------------------ */

static int io_calls;
static unsigned io_last;
static void io_cb(tl_loop *loop, tl_io *w, unsigned ev) {
  (void)loop;
  (void)w;
  io_calls++;
  io_last = ev;
}

START_TEST(test_uring_stale_poll_of_a_closed_and_reused_fd_is_dropped) {
  tl_loop *loop = uring_loop();
  int a[2], b[2];
  ck_assert_int_eq(pipe(a), 0);
  tl_io w;
  tl_io_init(&w, io_cb, a[0], TL_READ);
  io_calls = 0;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);   /* poll armed on a[0] */
  ck_assert_int_eq(io_calls, 0);
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  int old = a[0];
  close(a[0]);
  ck_assert_int_eq(pipe(b), 0);
  if (b[0] != old) {
    /* Make the new pipe's read end take the old number. */
    ck_assert_int_eq(dup2(b[0], old), old);
    close(b[0]);
    b[0] = old;
  }
  /* A different mask, so that the front end hands the backend a change
   * from READ to READ|WRITE on what is, behind its back, another file
   * (a pipe's read end is never writable). */
  tl_io_init(&w, io_cb, b[0], TL_READ | TL_WRITE);
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  /* Readiness of the old pipe must not be reported for the new one. */
  signal(SIGPIPE, SIG_IGN);
  ssize_t n = write(a[1], "x", 1);
  (void)n;
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(io_calls, 0);
  ck_assert_int_eq(write(b[1], "y", 1), 1);
  TH_RUN_UNTIL(loop, io_calls > 0);
  ck_assert_int_eq(io_calls, 1);
  ck_assert_uint_eq(io_last & TL_READ, TL_READ);
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  th_destroy(loop);
  close(a[1]);
  close(b[0]);
  close(b[1]);
}
END_TEST

START_TEST(test_uring_readiness_is_level_triggered_across_iterations) {
  tl_loop *loop = uring_loop();
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  ck_assert_int_eq(write(p[1], "z", 1), 1);
  tl_io w;
  tl_io_init(&w, io_cb, p[0], TL_READ);
  io_calls = 0;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  for (int i = 1; i <= 4; i++) {
    ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
    ck_assert_int_eq(io_calls, i);     /* never read: ready every time */
  }
  /* Switching to READ|WRITE in place, then to WRITE only. */
  ck_assert_int_eq(tl_io_set(loop, &w, TL_READ | TL_WRITE), 0);
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  tl_io_init(&w, io_cb, p[1], TL_WRITE);
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  io_calls = 0;
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(io_calls, 1);
  ck_assert_uint_eq(io_last & TL_WRITE, TL_WRITE);
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  th_destroy(loop);
  close(p[0]);
  close(p[1]);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(test_uring_pool_fallback_for_switched_off_opcodes_still_works) {
  setenv("TRILOOP_URING_POOL_OPS", "all", 1);
  tl_loop *loop = uring_loop();
  unsetenv("TRILOOP_URING_POOL_OPS");
  int fd = th_tmpfile("0123456789", 10);
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  tl_op rd, rv, sd, cx;
  struct th_opres rr, rvr, sr, cr;
  char b1[4], b2[8], b3[8];
  th_op_prep(&rd, &rr);
  th_op_prep(&rv, &rvr);
  th_op_prep(&sd, &sr);
  th_op_prep(&cx, &cr);
  ck_assert_int_eq(tl_read(loop, &rd, fd, b1, sizeof b1, 3, counting_cb), 0);
  ck_assert_int_eq(tl_recv(loop, &rv, sv[0], b2, sizeof b2, 0, counting_cb), 0);
  ck_assert_int_eq(tl_send(loop, &sd, sv[1], "pool", 4, 0, counting_cb), 0);
  TH_RUN_UNTIL(loop, rr.calls && rvr.calls && sr.calls);
  ck_assert_int_eq(rr.res, 4);
  ck_assert_int_eq(memcmp(b1, "3456", 4), 0);
  ck_assert_int_eq(sr.res, 4);
  ck_assert_int_eq(rvr.res, 4);
  ck_assert_int_eq(memcmp(b2, "pool", 4), 0);
  /* A recv blocked in a worker is interrupted by cancel. */
  ck_assert_int_eq(tl_recv(loop, &cx, sv[0], b3, sizeof b3, 0, counting_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_op_cancel(loop, &cx), 0);
  TH_RUN_UNTIL(loop, cr.calls > 0);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert_int_eq(cr.res, -ECANCELED);
  ck_assert_int_eq(rr.calls + rvr.calls + sr.calls, 3);
  th_destroy(loop);
  close(fd);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* Socket ops sent to the pool wait for their peer as long as it likes, so
 * they are pool wait jobs, outside TRILOOP_THREADS_MAX, as on the threadpool
 * backend.  As work jobs, 4 idle recvs took all 4 slots and a 5-byte file
 * read queued behind them until a peer wrote or closed.  In a child: the
 * pool reads TRILOOP_THREADS_MAX once per process, at its first use. */
static void tick_cb(tl_loop *loop, tl_timer *w, unsigned ev) {
  (void)loop;
  (void)w;
  (void)ev;
}

static void pool_recvs_child(void) {
  enum { N = 4 };
  setenv("TRILOOP_URING_POOL_OPS", "recv,read", 1);
  setenv("TRILOOP_THREADS_MAX", "4", 1);
  tl_loop *loop = NULL;
  CHILD_CHECK(tl_loop_new(&loop, TL_BACKEND_URING) == 0);
  /* Bounds every TL_RUN_ONCE below, so a stuck op is a message, not a hang. */
  tl_timer tick;
  tl_timer_init(&tick, tick_cb, 0.05, 0.05);
  CHILD_CHECK(tl_timer_start(loop, &tick) == 0);
  int sv[N][2];
  tl_op rv[N], rd;
  struct th_opres rvr[N], rr;
  char bufs[N][8], b[8];
  for (int i = 0; i < N; i++) {
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]) == 0);
    th_op_prep(&rv[i], &rvr[i]);
    CHILD_CHECK(tl_recv(loop, &rv[i], sv[i][0], bufs[i], sizeof bufs[i], 0, counting_cb) == 0);
  }
  /* Every recv is blocked on a worker before the read comes. */
  double end = th_time() + 5;
  struct tl_pool_stats st;
  do {
    CHILD_CHECK(tl_run(loop, TL_RUN_NOWAIT) >= 0);
    tl_pool_stats(&st);
    CHILD_CHECK(th_time() < end);
  } while (st.busy < N);
  int fd = th_tmpfile("hello", 5);
  th_op_prep(&rd, &rr);
  CHILD_CHECK(tl_read(loop, &rd, fd, b, sizeof b, 0, counting_cb) == 0);
  end = th_time() + 3;
  while (!rr.calls && th_time() < end)
    CHILD_CHECK(tl_run(loop, TL_RUN_ONCE) >= 0);
  if (!rr.calls)
    fprintf(stderr, "child: the file read is stuck behind %d idle recvs\n", N);
  CHILD_CHECK(rr.calls == 1);
  CHILD_CHECK(rr.res == 5 && memcmp(b, "hello", 5) == 0);
  for (int i = 0; i < N; i++)
    CHILD_CHECK(rvr[i].calls == 0);
  /* The recvs still work. */
  for (int i = 0; i < N; i++)
    CHILD_CHECK(write(sv[i][1], "ping", 4) == 4);
  end = th_time() + 5;
  for (int i = 0; i < N; i++) {
    while (!rvr[i].calls && th_time() < end)
      CHILD_CHECK(tl_run(loop, TL_RUN_ONCE) >= 0);
    CHILD_CHECK(rvr[i].calls == 1 && rvr[i].res == 4);
  }
  CHILD_CHECK(tl_timer_stop(loop, &tick) == 0);
  CHILD_CHECK(tl_loop_destroy(loop) == 0);
  close(fd);
  for (int i = 0; i < N; i++) {
    close(sv[i][0]);
    close(sv[i][1]);
  }
  _exit(0);
}

START_TEST(test_uring_idle_pool_recvs_do_not_starve_a_pool_file_read) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    pool_recvs_child();
  wait_child_ok(pid);
}
END_TEST

/* ------------------------------------------------------------------ */

#define QD 32
#define BATCH_OPS 4096
static int batch_done, batch_submitted, batch_fd;
static char batch_buf[QD][512];
static void batch_cb(tl_loop *loop, tl_op *op, int64_t res) {
  ck_assert_int_eq(res, 512);
  batch_done++;
  if (batch_submitted < BATCH_OPS) {
    int slot = (int)(intptr_t)op->data;
    int64_t off = (int64_t)((batch_submitted * 7919) % 64) * 512;
    batch_submitted++;
    ck_assert_int_eq(tl_read(loop, op, batch_fd, batch_buf[slot], 512, off, batch_cb), 0);
  }
}

/* Not a timing assertion: counts syscalls.  Batching means one enter per
 * iteration serves the whole queue depth. */
START_TEST(test_uring_file_reads_at_queue_depth_32_batch_into_few_syscalls) {
  setenv("TRILOOP_URING_ENTRIES", "256", 1);   /* whatever the caller set */
  tl_loop *loop = uring_loop();
  unsetenv("TRILOOP_URING_ENTRIES");
  static char content[64 * 512];
  memset(content, 'q', sizeof content);
  batch_fd = th_tmpfile(content, sizeof content);
  static tl_op ops[QD];
  batch_done = batch_submitted = 0;
  struct tl_loop_stats before, after;
  tl_loop_stats(loop, &before);
  for (int i = 0; i < QD; i++) {
    memset(&ops[i], 0, sizeof ops[i]);
    ops[i].data = (void *)(intptr_t)i;
    batch_submitted++;
    ck_assert_int_eq(tl_read(loop, &ops[i], batch_fd, batch_buf[i], 512, 0, batch_cb), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(batch_done, BATCH_OPS);
  tl_loop_stats(loop, &after);
  uint64_t sys = after.syscalls - before.syscalls;
  uint64_t it = after.iterations - before.iterations;
  fprintf(stderr, "uring: %d reads at QD %d: %llu iterations, %llu syscalls\n",
          BATCH_OPS, QD, (unsigned long long)it, (unsigned long long)sys);
  ck_assert_msg(sys * 4 < BATCH_OPS, "%llu syscalls for %d ops: not batched",
                (unsigned long long)sys, BATCH_OPS);
  th_destroy(loop);
  close(batch_fd);
}
END_TEST

/* ------------------------------------------------------------------ */

/* libev lets a loop be created in one thread and run in another (h2load
 * does): a single-issuer ring must belong to the thread that runs it. */
static void *run_elsewhere(void *arg) {
  tl_loop *loop = arg;
  int fd = th_tmpfile("elsewhere", 9);
  tl_op op;
  struct th_opres r;
  char buf[16];
  th_op_prep(&op, &r);
  intptr_t ok = tl_read(loop, &op, fd, buf, sizeof buf, 0, counting_cb) == 0;
  double end = th_time() + 5;
  while (ok && r.calls == 0 && th_time() < end)
    ok = tl_run(loop, TL_RUN_ONCE) >= 0;
  ok = ok && r.calls == 1 && r.res == 9 && !memcmp(buf, "elsewhere", 9);
  close(fd);
  return (void *)ok;
}

START_TEST(test_uring_loop_created_in_one_thread_runs_in_another) {
  tl_loop *loop = uring_loop();
  pthread_t t;
  void *ok = NULL;
  ck_assert_int_eq(pthread_create(&t, NULL, run_elsewhere, loop), 0);
  ck_assert_int_eq(pthread_join(t, &ok), 0);
  ck_assert_msg(ok == (void *)1, "the read in the other thread failed");
  th_destroy(loop);
}
END_TEST

int main(void) {
  char why[256];
  int r = tl_backend_probe(TL_BACKEND_URING, why, sizeof why);
  if (r < 0) {
    printf("SKIP uring: %s\n", why);
    return 77;
  }
  Suite *s = suite_create("uring");
  struct {
    const char *name;
    const TTest *t;
  } cases[] = {
    { "seccomp", test_uring_seccomp_denial_falls_back_to_epoll },
    { "seccomp", test_uring_seccomp_denying_any_one_call_makes_auto_pick_epoll },
    { "seccomp", test_uring_destroy_returns_when_enter_becomes_denied },
    { "threads", test_uring_forty_loops_one_after_another_each_runs },
    { "tiny_ring", test_uring_tiny_ring_1000_file_reads_none_dropped },
    { "tiny_ring", test_uring_tiny_ring_1000_pipe_reads_pending_then_burst },
    { "tiny_ring", test_uring_tiny_ring_1000_pipe_writes_overflow_cq_nothing_lost },
    { "cancel", test_uring_cancel_right_after_submit_gives_ecanceled_once },
    { "cancel", test_uring_cancel_of_a_read_that_completes_at_once_gives_one_result },
    { "cancel", test_uring_cancel_after_completion_enoent_and_twice_ealready },
    { "destroy", test_uring_destroy_with_2000_recvs_in_flight_calls_each_back_once },
    { "destroy", test_uring_destroy_with_2000_recvs_in_flight_tiny_ring },
    { "fork", test_uring_fork_child_rebuilds_ring_parent_keeps_its_own },
    { "poll", test_uring_stale_poll_of_a_closed_and_reused_fd_is_dropped },
    { "poll", test_uring_readiness_is_level_triggered_across_iterations },
    { "fallback", test_uring_pool_fallback_for_switched_off_opcodes_still_works },
    { "fallback", test_uring_idle_pool_recvs_do_not_starve_a_pool_file_read },
    { "batching", test_uring_file_reads_at_queue_depth_32_batch_into_few_syscalls },
    { "threads", test_uring_loop_created_in_one_thread_runs_in_another },
  };
  TCase *tc = NULL;
  const char *cur = NULL;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (!cur || strcmp(cur, cases[i].name)) {
      cur = cases[i].name;
      tc = tcase_create(cur);
      tcase_set_timeout(tc, CASE_TIMEOUT);
      suite_add_tcase(s, tc);
    }
    tcase_add_test(tc, cases[i].t);
  }
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
