/*
 * Process life, on every backend: fork with a running loop, signals
 * arriving during every phase, SIGPIPE, EINTR everywhere.
 *
 * The harness leaves SIGPIPE at its default disposition, so a SIGPIPE the
 * library lets through kills the case and Check names it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* In a forked child Check's assertions cannot report: say what failed on
 * stderr and exit non-zero; the parent asserts a clean exit. */
static void counting_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct th_opres *r = op->data;
  r->calls++;
  r->res = res;
}

static int timer_calls;
static void timer_cb(tl_loop *loop, tl_timer *w, unsigned ev) {
  (void)loop;
  (void)w;
  if (ev & TL_TIMER)
    timer_calls++;
}

/* ------------------------------------------------------------------ */
/* fork                                                                */

START_TEST(test_fork_child_keeps_working_parent_unaffected) {
  tl_loop *loop = th_new(_i);
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  static const char content[] = "file content for the child";
  int ffd = th_tmpfile(content, sizeof content);

  /* In flight across the fork: a recv (the parent's) and a timer. */
  tl_op inherited;
  struct th_opres ir;
  char ibuf[16];
  th_op_prep(&inherited, &ir);
  ck_assert_int_eq(tl_recv(loop, &inherited, sv[0], ibuf, sizeof ibuf, 0, counting_cb), 0);
  timer_calls = 0;
  tl_timer ptimer;
  tl_timer_init(&ptimer, timer_cb, 0.05, 0);
  ck_assert_int_eq(tl_timer_start(loop, &ptimer), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(ir.calls, 0);
  /* No waiting for the pool here: the threadpool backend has just spawned
   * a worker for the recv, and fork itself must wait for it to be past its
   * start-up (src/pool.c atfork_prepare).  A thread still starting may hold
   * an allocator lock of the sanitizer runtime (GCC 12's ASan does not take
   * its allocator locks around fork) and the child then hung in its first
   * pthread_create or malloc: seen as a timeout of this case under ASan on
   * a loaded machine. */

  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    CHILD_CHECK(tl_loop_fork(loop) == 0);
    /* The inherited recv: -ECANCELED, once, at the next run. */
    tl_timer t;
    tl_timer_init(&t, timer_cb, 0.01, 0);
    CHILD_CHECK(tl_timer_start(loop, &t) == 0);
    int p[2];
    CHILD_CHECK(pipe2(p, O_CLOEXEC) == 0);
    tl_op rd, fr;
    struct th_opres rr, frr;
    char buf[16], fbuf[64];
    th_op_prep(&rd, &rr);
    th_op_prep(&fr, &frr);
    CHILD_CHECK(tl_read(loop, &rd, p[0], buf, sizeof buf, -1, counting_cb) == 0);
    CHILD_CHECK(tl_read(loop, &fr, ffd, fbuf, sizeof fbuf, 0, counting_cb) == 0);
    CHILD_CHECK(write(p[1], "child", 5) == 5);
    double end = th_time() + 8;
    /* The parent's timer (0.05 s) and the child's (0.01 s) are both the
     * child's copies now: both fire here too. */
    while ((rr.calls == 0 || frr.calls == 0 || timer_calls < 2) && th_time() < end)
      CHILD_CHECK(tl_run(loop, TL_RUN_ONCE) >= 0);
    CHILD_CHECK(ir.calls == 1 && ir.res == -ECANCELED);
    CHILD_CHECK(rr.calls == 1 && rr.res == 5 && !memcmp(buf, "child", 5));
    CHILD_CHECK(frr.calls == 1 && frr.res == (int64_t)sizeof content &&
                !memcmp(fbuf, content, sizeof content));
    CHILD_CHECK(timer_calls == 2);
    /* Keep working: a second round on the same fds. */
    CHILD_CHECK(tl_read(loop, &rd, p[0], buf, sizeof buf, -1, counting_cb) == 0);
    CHILD_CHECK(write(p[1], "again", 5) == 5);
    end = th_time() + 8;
    while (rr.calls < 2 && th_time() < end)
      CHILD_CHECK(tl_run(loop, TL_RUN_ONCE) >= 0);
    CHILD_CHECK(rr.calls == 2 && rr.res == 5 && !memcmp(buf, "again", 5));
    CHILD_CHECK(tl_ops_in_flight(loop) == 0);
    CHILD_CHECK(tl_loop_destroy(loop) == 0);
    CHILD_CHECK(ir.calls == 1);
    _exit(0);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "child failed (status 0x%x), see its message on stderr", st);
  /* The parent's recv is still in flight in the parent and gets the data. */
  ck_assert_int_eq(ir.calls, 0);
  ck_assert_int_eq(send(sv[1], "parent", 6, 0), 6);
  TH_RUN_UNTIL(loop, ir.calls > 0 && timer_calls > 0);
  ck_assert_int_eq(ir.calls, 1);
  ck_assert_int_eq(ir.res, 6);
  ck_assert_int_eq(memcmp(ibuf, "parent", 6), 0);
  ck_assert_int_eq(timer_calls, 1);
  th_destroy(loop);
  close(sv[0]);
  close(sv[1]);
  close(ffd);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Signal storm                                                        */

static atomic_ulong usr1_count;
static void usr1_handler(int sig) {
  (void)sig;
  atomic_fetch_add(&usr1_count, 1);
}

struct storm {
  pthread_t target;
  atomic_int stop;
  atomic_ulong usr2_sent;
  tl_loop *loop;
};

static void *storm_main(void *arg) {
  struct storm *s = arg;
  unsigned long n = 0;
  while (!atomic_load(&s->stop)) {
    /* Both the loop thread and the process (any thread: pool workers
     * too, unless they block it). */
    if (n & 1)
      pthread_kill(s->target, SIGUSR1);
    else
      kill(getpid(), SIGUSR1);
    if ((n & 63) == 0) {
      atomic_fetch_add(&s->usr2_sent, 1);
      kill(getpid(), SIGUSR2);
    }
    n++;
    usleep(20);
  }
  return NULL;
}

static unsigned long usr2_seen_sent;  /* usr2_sent read at the callback */
static int usr2_calls;
static struct storm *the_storm;
static void usr2_cb(tl_loop *loop, tl_signal *w, unsigned ev) {
  (void)loop;
  (void)w;
  if (ev & TL_SIGNAL) {
    usr2_calls++;
    usr2_seen_sent = atomic_load(&the_storm->usr2_sent);
  }
}

static void loop_close(tl_loop *loop, int fd) {
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_close(loop, &op, fd, counting_cb), 0);
  TH_RUN_UNTIL(loop, r.calls);
  ck_assert_int_eq(r.res, 0);
}

/* Exchanges data through pipes, a socketpair and a file with ops while
 * something interrupts the loop thread; every result must be exact. */
static void io_rounds(tl_loop *loop, int rounds, const char *what) {
  int p[2], s[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  static char data[4096];
  for (size_t k = 0; k < sizeof data; k++)
    data[k] = (char)(k * 7 + 3);
  int ffd = th_tmpfile(data, sizeof data);
  for (int r = 0; r < rounds; r++) {
    char b1[4096], b2[4096], b3[4096];
    tl_op rd, wr, rv, sd, fr;
    struct th_opres rrd, rwr, rrv, rsd, rfr;
    th_op_prep(&rd, &rrd);
    th_op_prep(&wr, &rwr);
    th_op_prep(&rv, &rrv);
    th_op_prep(&sd, &rsd);
    th_op_prep(&fr, &rfr);
    size_t n = 1 + (size_t)r * 37 % sizeof data;
    /* Reads first, so they wait and can be interrupted. */
    ck_assert_int_eq(tl_read(loop, &rd, p[0], b1, n, -1, counting_cb), 0);
    ck_assert_int_eq(tl_recv(loop, &rv, s[0], b2, n, MSG_WAITALL, counting_cb), 0);
    ck_assert_int_eq(tl_read(loop, &fr, ffd, b3, n, 0, counting_cb), 0);
    timer_calls = 0;
    tl_timer t;
    tl_timer_init(&t, timer_cb, 0.0002, 0);
    ck_assert_int_eq(tl_timer_start(loop, &t), 0);
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT) >= 0, 1);
    ck_assert_int_eq(tl_write(loop, &wr, p[1], data, n, -1, counting_cb), 0);
    ck_assert_int_eq(tl_send(loop, &sd, s[1], data, n, 0, counting_cb), 0);
    double end = th_time() + (TH_CASE_TIMEOUT - 2);
    while (!(rrd.calls && rwr.calls && rrv.calls && rsd.calls && rfr.calls && timer_calls)) {
      struct tl_pool_stats ps;
      tl_pool_stats(&ps);
      ck_assert_msg(th_time() < end,
                    "%s round %d: gave up waiting: pipe read %d, pipe write %d, recv %d, "
                    "send %d, file read %d, timer %d; pool threads %u busy %u idle %u queued %u",
                    what, r, rrd.calls, rwr.calls, rrv.calls, rsd.calls, rfr.calls, timer_calls,
                    ps.threads, ps.busy, ps.idle, ps.queued);
      int rr = tl_run(loop, TL_RUN_ONCE);
      ck_assert_msg(rr >= 0, "tl_run: %s", tl_strerror(rr));
    }
    ck_assert_msg(rrd.calls == 1 && rrd.res == (int64_t)n, "%s round %d: read %d calls, %lld",
                  what, r, rrd.calls, (long long)rrd.res);
    ck_assert_msg(rwr.calls == 1 && rwr.res == (int64_t)n, "%s round %d: write %lld", what, r,
                  (long long)rwr.res);
    /* A stream recv may legally return less than asked (MSG_WAITALL is a
     * request, and a signal may cut it short): never an error. */
    ck_assert_msg(rrv.calls == 1 && rrv.res > 0 && rrv.res <= (int64_t)n,
                  "%s round %d: recv %lld", what, r, (long long)rrv.res);
    ck_assert_msg(rsd.calls == 1 && rsd.res == (int64_t)n, "%s round %d: send %lld", what, r,
                  (long long)rsd.res);
    ck_assert_msg(rfr.calls == 1 && rfr.res == (int64_t)n, "%s round %d: file read %lld", what,
                  r, (long long)rfr.res);
    ck_assert_int_eq(memcmp(b1, data, n), 0);
    ck_assert_int_eq(memcmp(b2, data, (size_t)rrv.res), 0);
    ck_assert_int_eq(memcmp(b3, data, n), 0);
    /* Drain what the short recv left. */
    size_t got = (size_t)rrv.res;
    while (got < n) {
      ssize_t k = recv(s[0], b2, n - got, 0);
      if (k < 0 && errno == EINTR)
        continue;
      ck_assert_int_gt(k, 0);
      ck_assert_int_eq(memcmp(b2, data + got, (size_t)k), 0);
      got += (size_t)k;
    }
    ck_assert_int_eq(timer_calls, 1);
  }
  /* Through the loop: the fds served ops (see the fd-reuse case below). */
  int fds[5] = {p[0], p[1], s[0], s[1], ffd};
  for (int k = 0; k < 5; k++)
    loop_close(loop, fds[k]);
}

START_TEST(test_signal_storm_loses_nothing) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = usr1_handler;   /* no SA_RESTART: every syscall can EINTR */
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
  atomic_store(&usr1_count, 0);

  tl_loop *loop = th_new(_i);
  tl_signal sw;
  tl_signal_init(&sw, usr2_cb, SIGUSR2);
  ck_assert_int_eq(tl_signal_start(loop, &sw), 0);
  usr2_calls = 0;
  usr2_seen_sent = 0;

  struct storm s;
  memset(&s, 0, sizeof s);
  s.target = pthread_self();
  s.loop = loop;
  the_storm = &s;
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, storm_main, &s), 0);
  /* The storm must be blowing before the rounds start: on a loaded machine
   * the new thread may not run for a while, and a storm that had sent
   * nothing by the stop would fail the counts below for no fault of the
   * library. */
  double start_by = th_time() + 8;
  while (atomic_load(&s.usr2_sent) == 0 || atomic_load(&usr1_count) == 0) {
    ck_assert_msg(th_time() < start_by, "the signal thread never started");
    sched_yield();
  }
  io_rounds(loop, 200, "signal storm");
  atomic_store(&s.stop, 1);
  pthread_join(th, NULL);

  /* Signals coalesce, but the last one sent must still be seen: a
   * callback that ran after the final send. */
  unsigned long sent = atomic_load(&s.usr2_sent);
  TH_RUN_UNTIL(loop, usr2_seen_sent == sent);
  ck_assert_int_gt(usr2_calls, 0);
  ck_assert_int_gt(atomic_load(&usr1_count), 0);

  ck_assert_int_eq(tl_signal_stop(loop, &sw), 0);
  th_destroy(loop);
  sigaction(SIGUSR1, &old, NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* EINTR everywhere: ITIMER_REAL every 100 us, no SA_RESTART            */

static atomic_ulong alrm_count;
static void alrm_handler(int sig) {
  (void)sig;
  atomic_fetch_add(&alrm_count, 1);
}

static void itimer(long usec) {
  struct itimerval it;
  memset(&it, 0, sizeof it);
  it.it_interval.tv_usec = usec;
  it.it_value.tv_usec = usec;
  ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

START_TEST(test_eintr_everywhere) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = alrm_handler;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
  atomic_store(&alrm_count, 0);

  tl_loop *loop = th_new(_i);
  itimer(100);

  /* Creation, fd registration and destroy under fire too. */
  for (int k = 0; k < 20; k++) {
    tl_loop *l2 = th_new(_i);
    th_destroy(l2);
  }

  io_rounds(loop, 100, "EINTR");

  /* Accepts and connects under fire. */
  struct sockaddr_storage addr;
  socklen_t alen;
  int lfd = th_listener(&addr, &alen);
  for (int k = 0; k < 50; k++) {
    tl_op ac, cn;
    struct th_opres rac, rcn;
    th_op_prep(&ac, &rac);
    th_op_prep(&cn, &rcn);
    ck_assert_int_eq(tl_accept(loop, &ac, lfd, NULL, NULL, 0, counting_cb), 0);
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT) >= 0, 1);
    int c = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(tl_connect(loop, &cn, c, (struct sockaddr *)&addr, alen, counting_cb), 0);
    double end = th_time() + 5;
    while (!(rac.calls && rcn.calls) && th_time() < end)
      ck_assert_int_ge(tl_run(loop, TL_RUN_ONCE), 0);
    ck_assert_msg(rac.calls && rcn.calls, "round %d: accept %d calls (%lld), connect %d calls (%lld)",
                  k, rac.calls, (long long)rac.res, rcn.calls, (long long)rcn.res);
    ck_assert_msg(rac.calls == 1 && rac.res >= 0, "accept %d: %lld", k, (long long)rac.res);
    ck_assert_msg(rcn.calls == 1 && rcn.res == 0, "connect %d: %lld", k, (long long)rcn.res);
    /* Close through the loop as well. */
    tl_op cl1, cl2;
    struct th_opres rc1, rc2;
    th_op_prep(&cl1, &rc1);
    th_op_prep(&cl2, &rc2);
    ck_assert_int_eq(tl_close(loop, &cl1, (int)rac.res, counting_cb), 0);
    ck_assert_int_eq(tl_close(loop, &cl2, c, counting_cb), 0);
    TH_RUN_UNTIL(loop, rc1.calls && rc2.calls);
    ck_assert_int_eq(rc1.res, 0);
    ck_assert_int_eq(rc2.res, 0);
  }
  loop_close(loop, lfd);

  /* Timers alone: the loop's wait is what gets interrupted. */
  timer_calls = 0;
  tl_timer t;
  tl_timer_init(&t, timer_cb, 0.001, 0.001);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  TH_RUN_UNTIL(loop, timer_calls >= 50);
  ck_assert_int_eq(tl_timer_stop(loop, &t), 0);

  itimer(0);
  ck_assert_int_gt(atomic_load(&alrm_count), 0);
  th_destroy(loop);
  sigaction(SIGALRM, &old, NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* SIGPIPE (default disposition, set by the harness)                   */

START_TEST(test_send_to_closed_peer_is_epipe_not_sigpipe) {
  ck_assert_ptr_eq(signal(SIGPIPE, SIG_DFL), SIG_DFL);
  tl_loop *loop = th_new(_i);
  int s[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  close(s[1]);
  static char big[65536];
  /* Several sends: the first may land in the buffer on some kernels. */
  for (int k = 0; k < 4; k++) {
    tl_op op;
    struct th_opres r;
    th_op_prep(&op, &r);
    ck_assert_int_eq(tl_send(loop, &op, s[0], big, sizeof big, 0, counting_cb), 0);
    TH_RUN_UNTIL(loop, r.calls);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_msg(r.res == -EPIPE, "send %d: %lld (%s)", k, (long long)r.res,
                  tl_strerror((int)r.res));
  }
  close(s[0]);

  /* A TCP peer that reset: send gives -EPIPE or -ECONNRESET, never a signal. */
  struct sockaddr_storage addr;
  socklen_t alen;
  int lfd = th_listener(&addr, &alen);
  int c = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(connect(c, (struct sockaddr *)&addr, alen), 0);
  int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_int_ge(a, 0);
  struct linger lg = {1, 0};
  ck_assert_int_eq(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(a);
  int errors = 0;
  for (int k = 0; k < 8; k++) {
    tl_op op;
    struct th_opres r;
    th_op_prep(&op, &r);
    ck_assert_int_eq(tl_send(loop, &op, c, big, sizeof big, 0, counting_cb), 0);
    TH_RUN_UNTIL(loop, r.calls);
    ck_assert_int_eq(r.calls, 1);
    if (r.res < 0) {
      ck_assert_msg(r.res == -EPIPE || r.res == -ECONNRESET, "send after RST: %s",
                    tl_strerror((int)r.res));
      errors++;
    }
  }
  ck_assert_int_gt(errors, 0);
  close(c);
  close(lfd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_write_to_closed_socket_peer_is_epipe_not_sigpipe) {
  /* tl_write on a socket: the library's write path must not raise SIGPIPE
   * either (send with MSG_NOSIGNAL, or SIGPIPE blocked around write). */
  tl_loop *loop = th_new(_i);
  int s[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  close(s[1]);
  static char buf[1024];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_write(loop, &op, s[0], buf, sizeof buf, -1, counting_cb), 0);
  TH_RUN_UNTIL(loop, r.calls);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_msg(r.res == -EPIPE, "write: %lld", (long long)r.res);
  close(s[0]);
  th_destroy(loop);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Once known bugs, fixed: regression tests                             */

START_TEST(test_fd_closed_after_its_op_then_reused_by_a_listener) {
  /* An fd that served an op (and waited for readiness), closed with
   * close(2) after tl_cancel_fd (the header's rule 7) with nothing in
   * flight; its number is reused by a listener and an accept op waits
   * there.  The epoll backend kept the old edge-triggered registration in
   * its records (the kernel dropped it on close), so it never registered
   * the new file and the accept hung. */
  tl_loop *loop = th_new(_i);
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  char b[4];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, p[0], b, sizeof b, -1, counting_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(write(p[1], "abcd", 4), 4);
  TH_RUN_UNTIL(loop, r.calls);
  int old = p[0];
  tl_cancel_fd(loop, p[0]);
  close(p[0]);
  close(p[1]);
  struct sockaddr_storage addr;
  socklen_t alen;
  int lfd = th_listener(&addr, &alen);
  ck_assert_int_eq(lfd, old);  /* lowest free number */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_accept(loop, &op, lfd, NULL, NULL, 0, counting_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  int c = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(connect(c, (struct sockaddr *)&addr, alen), 0);
  /* A repeating wake-up keeps the loop iterating, so a hung accept ends in
   * TH_RUN_UNTIL's named give-up (after seconds) rather than Check's
   * timeout; it is not a bound on how long the accept may take. */
  tl_timer t;
  timer_calls = 0;
  tl_timer_init(&t, timer_cb, 0.1, 0.1);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  TH_RUN_UNTIL(loop, r.calls);
  ck_assert_msg(r.calls == 1 && r.res >= 0, "accept on the reused fd number: %d calls, %lld",
                r.calls, (long long)r.res);
  tl_timer_stop(loop, &t);
  close((int)r.res);
  close(c);
  close(lfd);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_fork_child_keeps_working_parent_unaffected);
  TH_ADD(tc, test_signal_storm_loses_nothing);
  TH_ADD(tc, test_eintr_everywhere);
  TH_ADD(tc, test_send_to_closed_peer_is_epipe_not_sigpipe);
  TH_ADD(tc, test_write_to_closed_socket_peer_is_epipe_not_sigpipe);
  TH_ADD(tc, test_fd_closed_after_its_op_then_reused_by_a_listener);
}

int main(void) { return th_main("process", add); }
