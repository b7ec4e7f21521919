/*
 * The shared blocking pool (src/pool.c) and the threadpool backend.
 *
 * Every case runs in its own child (Check's fork mode, forced below): the
 * pool is process-global and reads TRILOOP_THREADS* when first used, so each
 * case sets its variables before that and starts from an empty pool.
 *
 * The first cases drive the pool directly through its internal API with a
 * bare struct tl__base (an eventfd and the post list), which is why this
 * program links the static library.  The others use the public API on the
 * threadpool backend.
 *
 * No timing assertions: figures (cancel latency, growth) are printed, and
 * the only time bounds are generous deadlines that turn a hang into a named
 * failure.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "pool.h"
#include "triloop.h"

#define CASE_TIMEOUT 30

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

static struct tl_pool_stats stats(void) {
  struct tl_pool_stats st;
  tl_pool_stats(&st);
  return st;
}

/* Waits (loosely) until cond holds; a deadline turns a hang into a message. */
#define WAIT_FOR(cond, secs)                                              \
  do {                                                                    \
    double wf__end = now() + (secs);                                      \
    while (!(cond)) {                                                     \
      ck_assert_msg(now() < wf__end, "gave up waiting for %s", #cond);    \
      sleep_ms(2);                                                        \
    }                                                                     \
  } while (0)

static long raise_nofile(long n) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if ((long)rl.rlim_cur < n) {
    rl.rlim_cur = (rlim_t)n;
    if ((long)rl.rlim_max < n)
      rl.rlim_max = (rlim_t)n;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
      getrlimit(RLIMIT_NOFILE, &rl);
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return (long)rl.rlim_cur;
}

/* ------------------------------------------------------------------ */
/* The pool alone, with a bare base                                    */
/* ------------------------------------------------------------------ */

static struct tl__base B;

static void base_up(void) {
  memset(&B, 0, sizeof B);
  B.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ck_assert_int_ge(B.wakefd, 0);
  pthread_mutex_init(&B.post_lock, NULL);
}

/* Runs done() of posted jobs for up to ms milliseconds (one wait). */
static void base_pump(int ms) {
  struct pollfd p = { .fd = B.wakefd, .events = POLLIN };
  if (poll(&p, 1, ms) > 0)
    tl__base_drain(&B);
}

struct tjob {
  struct tl__job job;
  int fd;              /* < 0: no wait */
  int timeout_ms;
  int64_t wait_res;    /* what tl__pool_wait returned */
  int done;            /* done() calls, loop thread */
};

static void tjob_work(struct tl__job *j) {
  struct tjob *t = (struct tjob *)j;
  t->wait_res = t->fd >= 0 ? tl__pool_wait(j, t->fd, POLLIN, t->timeout_ms) : 0;
  j->res = t->wait_res;
}

static int ndone;
static void tjob_done(struct tl__job *j) {
  ((struct tjob *)j)->done++;
  ndone++;
}

static void tjob_init(struct tjob *t, int fd, int timeout_ms) {
  memset(t, 0, sizeof *t);
  t->job.work = tjob_work;
  t->job.done = tjob_done;
  t->job.base = &B;
  t->fd = fd;
  t->timeout_ms = timeout_ms;
}

START_TEST(pool_runs_every_job_of_batches_once) {
  enum { N = 20000, BATCH = 32 };
  base_up();
  static struct tjob jobs[N];
  ndone = 0;
  for (int i = 0; i < N; i += BATCH) {
    for (int k = 0; k < BATCH; k++) {
      tjob_init(&jobs[i + k], -1, 0);
      jobs[i + k].job.next = k + 1 < BATCH ? &jobs[i + k + 1].job : NULL;
    }
    ck_assert_int_eq(tl__pool_submit_batch(&jobs[i].job, &jobs[i + BATCH - 1].job, BATCH), 0);
    if (i % 1024 == 0)
      base_pump(0);
  }
  double end = now() + CASE_TIMEOUT - 5;
  while (ndone < N && now() < end)
    base_pump(100);
  ck_assert_int_eq(ndone, N);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(jobs[i].done, 1);
  struct tl_pool_stats st = stats();
  ck_assert_uint_eq(st.completed, N);
  ck_assert_uint_eq(st.queued, 0);
  ck_assert_uint_le(st.threads, st.max_threads);
  printf("pool: %d jobs in batches of %d: %u threads, %u idle\n", N, BATCH,
         st.threads, st.idle);
}
END_TEST

START_TEST(pool_cancel_queued_running_and_finished) {
  setenv("TRILOOP_THREADS_MAX", "1", 1);
  setenv("TRILOOP_THREADS", "1", 1);
  base_up();
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  struct tjob a, b2, c;
  tjob_init(&a, p[0], -1);
  tjob_init(&b2, -1, 0);
  ndone = 0;
  ck_assert_int_eq(tl__pool_submit(&a.job), 0);
  WAIT_FOR(stats().busy == 1, 10);
  ck_assert_int_eq(tl__pool_submit(&b2.job), 0);
  ck_assert_uint_eq(stats().queued, 1);

  /* Queued: removed, never run, never posted. */
  ck_assert_int_eq(tl__pool_cancel(&b2.job), 1);
  ck_assert_uint_eq(stats().queued, 0);
  ck_assert_int_eq(tl__pool_cancel(&b2.job), -ENOENT);

  /* Running and blocked on an fd that stays quiet: interrupted. */
  double t0 = now();
  ck_assert_int_eq(tl__pool_cancel(&a.job), 0);
  while (!a.done && now() < t0 + 10)
    base_pump(100);
  printf("pool: cancel of a blocked wait came back after %.3f ms\n", (now() - t0) * 1e3);
  ck_assert_int_eq(a.done, 1);
  ck_assert_int_eq(a.wait_res, -ECANCELED);
  ck_assert_int_eq(tl__pool_cancel(&a.job), -ENOENT);

  /* The same (only) worker: the cancel's kick must not leak into the next
   * job's wait, which times out normally.  The worker posts a's completion
   * before it returns to the idle stack, so wait for it there first: a wait
   * job submitted while no worker is idle gets a thread of its own. */
  WAIT_FOR(stats().idle == 1, 10);
  tjob_init(&c, p[0], 50);
  ck_assert_int_eq(tl__pool_submit(&c.job), 0);
  while (!c.done && now() < t0 + 20)
    base_pump(100);
  ck_assert_int_eq(c.done, 1);
  ck_assert_int_eq(c.wait_res, 0);
  ck_assert_int_eq(b2.done, 0);
  ck_assert_int_eq(ndone, 2);
  ck_assert_uint_eq(stats().threads, 1);
  close(p[0]);
  close(p[1]);
}
END_TEST

/* Short jobs run on at most TRILOOP_THREADS_EAGER workers (src/pool.c), so
 * two jobs stuck in a call that never returns could hold every slot: the
 * monitor must see that nothing completes and start the next job anyway. */
START_TEST(pool_stuck_eager_workers_do_not_hold_the_queue) {
  setenv("TRILOOP_THREADS_EAGER", "2", 1);
  setenv("TRILOOP_THREADS_MAX", "64", 1);
  setenv("TRILOOP_THREADS", "1", 1);
  base_up();
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  static struct tjob stuck[2], quick;
  ndone = 0;
  for (int i = 0; i < 2; i++) {
    tjob_init(&stuck[i], p[0], -1);
    ck_assert_int_eq(tl__pool_submit(&stuck[i].job), 0);
  }
  WAIT_FOR(stats().busy == 2, 10);
  double t0 = now();
  tjob_init(&quick, -1, 0);
  ck_assert_int_eq(tl__pool_submit(&quick.job), 0);
  while (!quick.done && now() < t0 + 10)
    base_pump(100);
  printf("pool: a job behind 2 stuck eager workers ran after %.1f ms\n", (now() - t0) * 1e3);
  ck_assert_int_eq(quick.done, 1);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(tl__pool_cancel(&stuck[i].job), 0);
  while (ndone < 3 && now() < t0 + 20)
    base_pump(100);
  ck_assert_int_eq(ndone, 3);
  close(p[0]);
  close(p[1]);
}
END_TEST

/* Long jobs (a device read, an fsync) each get a worker: the eager limit
 * holds only while jobs are short. */
static atomic_int running, peak;
struct ljob {
  struct tl__job job;
  int done;
};
static void ljob_work(struct tl__job *j) {
  int r = atomic_fetch_add(&running, 1) + 1;
  int pk = atomic_load(&peak);
  while (r > pk && !atomic_compare_exchange_weak(&peak, &pk, r))
    ;
  sleep_ms(5);
  atomic_fetch_sub(&running, 1);
}
static void ljob_done(struct tl__job *j) {
  ((struct ljob *)j)->done++;
  ndone++;
}

START_TEST(pool_long_jobs_run_side_by_side) {
  enum { N = 48 };
  setenv("TRILOOP_THREADS_EAGER", "2", 1);
  setenv("TRILOOP_THREADS_MAX", "64", 1);
  base_up();
  static struct ljob jobs[N];
  ndone = 0;
  atomic_store(&peak, 0);
  for (int i = 0; i < N; i++) {
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].job.work = ljob_work;
    jobs[i].job.done = ljob_done;
    jobs[i].job.base = &B;
    jobs[i].job.next = i + 1 < N ? &jobs[i + 1].job : NULL;
  }
  ck_assert_int_eq(tl__pool_submit_batch(&jobs[0].job, &jobs[N - 1].job, N), 0);
  double end = now() + CASE_TIMEOUT - 5;
  while (ndone < N && now() < end)
    base_pump(100);
  ck_assert_int_eq(ndone, N);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(jobs[i].done, 1);
  printf("pool: %d jobs of 5 ms with 2 eager workers: at most %d ran at once\n", N,
         atomic_load(&peak));
  ck_assert_int_ge(atomic_load(&peak), 8);
  ck_assert_uint_le(stats().threads, 64);
}
END_TEST

START_TEST(pool_wait_reports_readiness) {
  base_up();
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  struct tjob a;
  tjob_init(&a, p[0], -1);
  ck_assert_int_eq(tl__pool_submit(&a.job), 0);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  double end = now() + 10;
  while (!a.done && now() < end)
    base_pump(100);
  ck_assert_int_eq(a.done, 1);
  ck_assert(a.wait_res & POLLIN);
  /* Outside a worker there is nothing to wait with. */
  ck_assert_int_eq(tl__pool_wait(&a.job, p[0], POLLIN, 0), -EINVAL);
  close(p[0]);
  close(p[1]);
}
END_TEST

START_TEST(pool_grows_then_retires_idle_workers_after_keepalive) {
  enum { N = 40 };
  setenv("TRILOOP_THREADS", "2", 1);
  setenv("TRILOOP_THREADS_MAX", "64", 1);
  setenv("TRILOOP_THREADS_KEEPALIVE_MS", "100", 1);
  base_up();
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  static struct tjob jobs[N];
  ndone = 0;
  for (int i = 0; i < N; i++) {
    tjob_init(&jobs[i], p[0], -1);
    ck_assert_int_eq(tl__pool_submit(&jobs[i].job), 0);
  }
  WAIT_FOR(stats().busy == N, 10);
  ck_assert_uint_eq(stats().threads, N);
  ck_assert_int_eq(write(p[1], "x", 1), 1);   /* a pipe stays readable for all */
  double end = now() + 10;
  while (ndone < N && now() < end)
    base_pump(100);
  ck_assert_int_eq(ndone, N);
  double t0 = now();
  WAIT_FOR(stats().threads == 2, 10);
  printf("pool: %d workers shrank to 2 in %.0f ms (keep-alive 100 ms)\n", N,
         (now() - t0) * 1e3);
  /* A worker posts its job's completion before it goes back to the idle
   * stack: on a busy machine the last of them can still be on its way
   * there (neither busy nor idle) when the others have retired.  It must
   * arrive, and the warm minimum must not shrink further. */
  WAIT_FOR(stats().idle == 2, 10);
  ck_assert_uint_eq(stats().threads, 2);
  ck_assert_uint_eq(stats().busy, 0);
  close(p[0]);
  close(p[1]);
}
END_TEST

START_TEST(pool_saturated_queues_and_reports_it) {
  setenv("TRILOOP_THREADS_MAX", "4", 1);
  setenv("TRILOOP_THREADS", "1", 1);
  base_up();
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  struct tjob jobs[6];
  ndone = 0;
  for (int i = 0; i < 6; i++) {
    tjob_init(&jobs[i], p[0], -1);
    ck_assert_int_eq(tl__pool_submit(&jobs[i].job), 0);
  }
  WAIT_FOR(stats().busy == 4, 10);
  struct tl_pool_stats st = stats();
  ck_assert_uint_eq(st.threads, 4);
  ck_assert_uint_eq(st.queued, 2);
  ck_assert_uint_eq(st.max_threads, 4);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  double end = now() + 10;
  while (ndone < 6 && now() < end)
    base_pump(100);
  ck_assert_int_eq(ndone, 6);
  close(p[0]);
  close(p[1]);
}
END_TEST

/* Wait jobs (readiness waits) do not count against TRILOOP_THREADS_MAX: more
 * quiet waits than the bound still leave room for work jobs, and work jobs
 * keep their bound. */
START_TEST(pool_wait_jobs_do_not_hold_work_slots) {
  enum { NW = 6 };
  setenv("TRILOOP_THREADS_MAX", "2", 1);
  setenv("TRILOOP_THREADS", "1", 1);
  base_up();
  int p[2], q[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  ck_assert_int_eq(pipe2(q, O_CLOEXEC), 0);
  static struct tjob waits[NW], work[3], quick;
  ndone = 0;
  for (int i = 0; i < NW; i++) {
    tjob_init(&waits[i], p[0], -1);
    waits[i].job.next = i + 1 < NW ? &waits[i + 1].job : NULL;
  }
  struct tl__pool_list wl = { &waits[0].job, &waits[NW - 1].job, NW };
  ck_assert_int_eq(tl__pool_submit_lists(NULL, &wl), 0);
  WAIT_FOR(stats().busy == NW, 10);
  ck_assert_uint_eq(stats().queued, 0);
  /* Work jobs that block: two run (the bound), the third queues. */
  for (int i = 0; i < 3; i++) {
    tjob_init(&work[i], q[0], -1);
    ck_assert_int_eq(tl__pool_submit(&work[i].job), 0);
  }
  WAIT_FOR(stats().busy == NW + 2, 10);
  struct tl_pool_stats st = stats();
  ck_assert_uint_eq(st.queued, 1);
  ck_assert_uint_eq(st.threads, NW + 2);
  /* A wait job submitted now still gets a thread of its own. */
  struct tjob extra;
  tjob_init(&extra, p[0], -1);
  struct tl__pool_list one = { &extra.job, &extra.job, 1 };
  ck_assert_int_eq(tl__pool_submit_lists(NULL, &one), 0);
  WAIT_FOR(stats().busy == NW + 3, 10);
  ck_assert_uint_eq(stats().queued, 1);
  /* Freeing work slots runs the queued work job and a quick one. */
  ck_assert_int_eq(tl__pool_cancel(&work[0].job), 0);
  tjob_init(&quick, -1, 0);
  ck_assert_int_eq(tl__pool_submit(&quick.job), 0);
  ck_assert_int_eq(tl__pool_cancel(&work[1].job), 0);
  double end = now() + 10;
  while (!quick.done && now() < end)
    base_pump(100);
  ck_assert_int_eq(quick.done, 1);
  ck_assert_int_eq(work[0].wait_res, -ECANCELED);
  WAIT_FOR(stats().queued == 0, 10);
  /* The waits see their fd; the last work job its own. */
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  ck_assert_int_eq(write(q[1], "x", 1), 1);
  end = now() + 10;
  while (ndone < NW + 5 && now() < end)
    base_pump(100);
  ck_assert_int_eq(ndone, NW + 5);
  for (int i = 0; i < NW; i++)
    ck_assert(waits[i].wait_res & POLLIN);
  ck_assert(extra.wait_res & POLLIN);
  ck_assert(work[2].wait_res & POLLIN);
  close(p[0]);
  close(p[1]);
  close(q[0]);
  close(q[1]);
}
END_TEST

/* No thread can start (RLIMIT_NPROC 0 for an unprivileged user): the submit
 * fails and hands the job back. */
START_TEST(pool_spawn_failure_with_no_worker_returns_the_error) {
  if (geteuid() == 0) {
    /* Root ignores RLIMIT_NPROC: become nobody. */
    struct passwd *pw = getpwnam("nobody");
    uid_t uid = pw ? pw->pw_uid : 65534;
    gid_t gid = pw ? pw->pw_gid : 65534;
    ck_assert_int_eq(setgid(gid), 0);
    ck_assert_int_eq(setuid(uid), 0);
  }
  struct rlimit rl;
  ck_assert_int_eq(getrlimit(RLIMIT_NPROC, &rl), 0);
  rl.rlim_cur = 0;
  ck_assert_int_eq(setrlimit(RLIMIT_NPROC, &rl), 0);
  base_up();
  struct tjob a;
  tjob_init(&a, -1, 0);
  int r = tl__pool_submit(&a.job);
  ck_assert_int_eq(r, -EAGAIN);
  struct tl_pool_stats st = stats();
  ck_assert_uint_eq(st.threads, 0);
  ck_assert_uint_eq(st.queued, 0);
  ck_assert_uint_ge(st.spawn_failures, 1);
  ck_assert_int_eq(tl__pool_cancel(&a.job), -ENOENT);
  /* The same job can go again once threads can start. */
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NPROC, &rl) == 0) {
    ck_assert_int_eq(tl__pool_submit(&a.job), 0);
    double end = now() + 10;
    while (!a.done && now() < end)
      base_pump(100);
    ck_assert_int_eq(a.done, 1);
  }
}
END_TEST

START_TEST(pool_child_after_fork_forgets_parent_workers) {
  /* One eager worker: the second stuck job needs the monitor, which then
   * waits for more work when the fork comes. */
  setenv("TRILOOP_THREADS_EAGER", "1", 1);
  base_up();
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  struct tjob a, a2;
  tjob_init(&a, p[0], -1);
  tjob_init(&a2, p[0], -1);
  ndone = 0;
  ck_assert_int_eq(tl__pool_submit(&a.job), 0);
  WAIT_FOR(stats().busy == 1, 10);
  ck_assert_int_eq(tl__pool_submit(&a2.job), 0);
  WAIT_FOR(stats().busy == 2, 10);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    struct tl_pool_stats st = stats();
    int bad = st.threads != 0 || st.busy != 0 || st.queued != 0;
#if defined(__SANITIZE_THREAD__)
    /* TSan cannot start threads in the child of a multithreaded fork. */
    _exit(bad);
#endif
    /* The child's pool starts afresh, monitor included: a job behind a
     * stuck eager worker still runs. */
    close(B.wakefd);
    base_up();
    struct tjob x, c;
    tjob_init(&x, p[0], -1);
    tjob_init(&c, -1, 0);
    ndone = 0;
    bad |= tl__pool_submit(&x.job) != 0;
    double busy_by = now() + 10;
    while (stats().busy != 1 && now() < busy_by)
      sleep_ms(2);
    bad |= tl__pool_submit(&c.job) != 0;
    double end = now() + 10;
    while (!c.done && now() < end)
      base_pump(100);
    bad |= c.done != 1;
    _exit(bad);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  ck_assert_int_eq(tl__pool_cancel(&a.job), 0);
  ck_assert_int_eq(tl__pool_cancel(&a2.job), 0);
  double end = now() + 10;
  while (!(a.done && a2.done) && now() < end)
    base_pump(100);
  ck_assert_int_eq(a.wait_res, -ECANCELED);
  ck_assert_int_eq(a2.wait_res, -ECANCELED);
  close(p[0]);
  close(p[1]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The threadpool backend through the public API                       */
/* ------------------------------------------------------------------ */

static tl_loop *tp_loop(void) {
  tl_loop *loop = NULL;
  int r = tl_loop_new(&loop, TL_BACKEND_THREADPOOL);
  ck_assert_msg(r == 0, "tl_loop_new(threadpool): %s", tl_strerror(r));
  ck_assert_str_eq(tl_backend_name(loop), "threadpool");
  return loop;
}

struct res {
  int calls;
  int64_t res;
  double at;
};

static void op_cb(tl_loop *loop, tl_op *op, int64_t r) {
  struct res *x = op->data;
  x->calls++;
  x->res = r;
  x->at = now();
}

static void run_until(tl_loop *loop, int *cond_counter, int target, double secs) {
  double end = now() + secs;
  while (*cond_counter < target) {
    int r = tl_run(loop, TL_RUN_ONCE);
    ck_assert_msg(r >= 0, "tl_run: %s", tl_strerror(r));
    ck_assert_msg(now() < end, "gave up: %d of %d", *cond_counter, target);
  }
}

static int counted;
static void count_cb(tl_loop *loop, tl_op *op, int64_t r) {
  struct res *x = op->data;
  x->calls++;
  x->res = r;
  counted++;
}

START_TEST(tp_thousand_blocked_readers_grow_complete_and_shrink) {
  enum { N = 1000 };
  setenv("TRILOOP_THREADS_MAX", "1100", 1);
  setenv("TRILOOP_THREADS", "2", 1);
  setenv("TRILOOP_THREADS_KEEPALIVE_MS", "200", 1);
  /* 2 fds per socketpair, and every blocked worker holds its own eventfd. */
  if (raise_nofile(3 * N + 256) < 3 * N + 256) {
    printf("SKIP tp_thousand_blocked_readers: RLIMIT_NOFILE too low\n");
    return;
  }
  tl_loop *loop = tp_loop();
  static int sv[N][2];
  static tl_op ops[N];
  static struct res rs[N];
  static char bufs[N][8];
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
    memset(&ops[i], 0, sizeof ops[i]);
    ops[i].data = &rs[i];
    ck_assert_int_eq(tl_recv(loop, &ops[i], sv[i][0], bufs[i], sizeof bufs[i], 0, count_cb), 0);
  }
  counted = 0;
  double t0 = now();
  tl_run(loop, TL_RUN_NOWAIT);          /* hands the batch to the pool */
  WAIT_FOR(stats().busy >= N, 20);
  struct tl_pool_stats st = stats();
  printf("threadpool: %d blocked recvs -> %u threads (%u busy) in %.0f ms\n", N,
         st.threads, st.busy, (now() - t0) * 1e3);
  ck_assert_uint_ge(st.threads, N);
  ck_assert_uint_le(st.threads, 1100);
  ck_assert_int_eq(counted, 0);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(write(sv[i][1], "hello", 5), 5);
  run_until(loop, &counted, N, 20);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(rs[i].calls, 1);
    ck_assert_int_eq(rs[i].res, 5);
    ck_assert(memcmp(bufs[i], "hello", 5) == 0);
  }
  t0 = now();
  WAIT_FOR(stats().threads <= 2, 20);
  printf("threadpool: shrank to %u threads %.0f ms after the last completion "
         "(keep-alive 200 ms)\n", stats().threads, (now() - t0) * 1e3);
  ck_assert_uint_eq(tl_ops_in_flight(loop), 0);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  for (int i = 0; i < N; i++) {
    close(sv[i][0]);
    close(sv[i][1]);
  }
}
END_TEST

START_TEST(tp_cancel_of_a_blocked_recv_calls_back_promptly) {
  tl_loop *loop = tp_loop();
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  tl_op op;
  struct res r = { 0 };
  char buf[16];
  memset(&op, 0, sizeof op);
  op.data = &r;
  ck_assert_int_eq(tl_recv(loop, &op, sv[0], buf, sizeof buf, 0, op_cb), 0);
  tl_run(loop, TL_RUN_NOWAIT);
  WAIT_FOR(stats().busy >= 1, 10);
  sleep_ms(20);                          /* let it settle into its poll */
  double t0 = now();
  ck_assert_int_eq(tl_op_cancel(loop, &op), 0);
  run_until(loop, &r.calls, 1, 10);
  double ms = (r.at - t0) * 1e3;
  printf("threadpool: cancel of a blocked recv called back in %.3f ms\n", ms);
  ck_assert_int_eq(r.res, -ECANCELED);
  ck_assert_msg(ms < 2000, "cancel took %.0f ms", ms);
  /* The fd is still usable and its flags are the user's. */
  ck_assert_int_eq(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
  ck_assert_int_eq(write(sv[1], "x", 1), 1);
  r.calls = 0;
  ck_assert_int_eq(tl_recv(loop, &op, sv[0], buf, sizeof buf, 0, op_cb), 0);
  run_until(loop, &r.calls, 1, 10);
  ck_assert_int_eq(r.res, 1);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

static int io_calls;
static unsigned io_last;
static void io_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  io_calls++;
  io_last = revents;
}

START_TEST(tp_destroy_with_blocked_workers_returns) {
  enum { N = 8 };
  tl_loop *loop = tp_loop();
  int sv[N][2];
  tl_op ops[N];
  struct res rs[N];
  char buf[N][4];
  tl_io io;
  counted = 0;
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
    memset(&ops[i], 0, sizeof ops[i]);
    memset(&rs[i], 0, sizeof rs[i]);
    ops[i].data = &rs[i];
    ck_assert_int_eq(tl_recv(loop, &ops[i], sv[i][0], buf[i], sizeof buf[i], 0, count_cb), 0);
  }
  tl_io_init(&io, io_cb, sv[0][1], TL_READ);
  ck_assert_int_eq(tl_io_start(loop, &io), 0);
  tl_run(loop, TL_RUN_NOWAIT);
  WAIT_FOR(stats().busy >= N + 1, 10);
  /* One more op that never reaches the pool before destroy. */
  tl_op late;
  struct res lr = { 0 };
  memset(&late, 0, sizeof late);
  late.data = &lr;
  ck_assert_int_eq(tl_recv(loop, &late, sv[1][1], buf[0], 1, 0, op_cb), 0);
  double t0 = now();
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  printf("threadpool: destroy with %d blocked workers took %.3f ms\n", N + 1,
         (now() - t0) * 1e3);
  ck_assert_int_eq(counted, N);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(rs[i].res, -ECANCELED);
  ck_assert_int_eq(lr.calls, 1);
  ck_assert_int_eq(lr.res, -ECANCELED);
  ck_assert_int_eq(io_calls, 0);
  WAIT_FOR(stats().busy == 0, 10);
  for (int i = 0; i < N; i++) {
    close(sv[i][0]);
    close(sv[i][1]);
  }
}
END_TEST

START_TEST(tp_io_watcher_is_level_triggered_and_stops) {
  tl_loop *loop = tp_loop();
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  tl_io io;
  io_calls = 0;
  tl_io_init(&io, io_cb, sv[0], TL_READ);
  ck_assert_int_eq(tl_io_start(loop, &io), 0);
  ck_assert_int_eq(write(sv[1], "x", 1), 1);
  /* Not consumed: it keeps being reported, once per iteration at most. */
  for (int i = 0; i < 5; i++) {
    int before = io_calls;
    double end = now() + 10;
    while (io_calls == before) {
      ck_assert_int_ge(tl_run(loop, TL_RUN_ONCE), 0);
      ck_assert(now() < end);
    }
    ck_assert_int_eq(io_calls, before + 1);
    ck_assert(io_last & TL_READ);
  }
  char c;
  ck_assert_int_eq(read(sv[0], &c, 1), 1);
  /* Quiet fd: switch to write interest, which is ready at once. */
  ck_assert_int_eq(tl_io_set(loop, &io, TL_WRITE), 0);
  int before = io_calls;
  double end = now() + 10;
  while (io_calls == before) {
    ck_assert_int_ge(tl_run(loop, TL_RUN_ONCE), 0);
    ck_assert(now() < end);
  }
  ck_assert(io_last & TL_WRITE);
  ck_assert_int_eq(tl_io_stop(loop, &io), 0);
  /* Closed fd: modify refuses it synchronously. */
  int dead = dup(sv[0]);
  close(dead);
  tl_io io2;
  tl_io_init(&io2, io_cb, dead, TL_READ);
  ck_assert_int_eq(tl_io_start(loop, &io2), -EBADF);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

START_TEST(tp_file_read_and_tcp_connect_accept) {
  tl_loop *loop = tp_loop();
  char path[] = "/tmp/triloop-pool-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  ck_assert_int_eq(pwrite(fd, "0123456789", 10, 0), 10);
  tl_op op;
  struct res r = { 0 };
  char buf[16];
  memset(&op, 0, sizeof op);
  op.data = &r;
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 4, 3, op_cb), 0);
  run_until(loop, &r.calls, 1, 10);
  ck_assert_int_eq(r.res, 4);
  ck_assert(memcmp(buf, "3456", 4) == 0);
  close(fd);

  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t alen = sizeof a;
  ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(ls, 8), 0);
  ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
  int cs = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  tl_op aop, cop;
  struct res ar = { 0 }, cr = { 0 };
  memset(&aop, 0, sizeof aop);
  memset(&cop, 0, sizeof cop);
  aop.data = &ar;
  cop.data = &cr;
  ck_assert_int_eq(tl_accept(loop, &aop, ls, NULL, NULL, 0, op_cb), 0);
  ck_assert_int_eq(tl_connect(loop, &cop, cs, (struct sockaddr *)&a, sizeof a, op_cb), 0);
  double end = now() + 10;
  while (!(ar.calls && cr.calls)) {
    ck_assert_int_ge(tl_run(loop, TL_RUN_ONCE), 0);
    ck_assert(now() < end);
  }
  ck_assert_int_eq(cr.res, 0);
  ck_assert_int_ge(ar.res, 0);
  close((int)ar.res);
  close(cs);
  close(ls);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
}
END_TEST

static void drain_stop_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  char c;
  io_calls++;
  io_last = revents;
  ck_assert_int_eq(read(w->fd, &c, 1), 1);
  ck_assert_int_eq(tl_io_stop(loop, w), 0);
}

/* More quiet watched fds than TRILOOP_THREADS_MAX: every one that becomes
 * readable is still reported, and a file op still runs meanwhile. */
START_TEST(tp_watchers_beyond_max_threads_all_fire) {
  enum { N = 40 };
  setenv("TRILOOP_THREADS_MAX", "4", 1);
  setenv("TRILOOP_THREADS", "1", 1);
  if (raise_nofile(4 * N + 64) < 4 * N + 64) {
    printf("SKIP tp_watchers_beyond_max_threads: RLIMIT_NOFILE too low\n");
    return;
  }
  tl_loop *loop = tp_loop();
  static int p[N][2];
  static tl_io io[N];
  io_calls = 0;
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(pipe2(p[i], O_CLOEXEC), 0);
    tl_io_init(&io[i], drain_stop_cb, p[i][0], TL_READ);
    ck_assert_int_eq(tl_io_start(loop, &io[i]), 0);
  }
  tl_run(loop, TL_RUN_NOWAIT);              /* every watcher is armed, all quiet */
  WAIT_FOR(stats().busy >= N, 10);
  /* A file read is not stuck behind the waits. */
  char path[] = "/tmp/triloop-pool-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  ck_assert_int_eq(pwrite(fd, "abcd", 4, 0), 4);
  tl_op op;
  struct res r = { 0 };
  char buf[4];
  memset(&op, 0, sizeof op);
  op.data = &r;
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 4, 0, op_cb), 0);
  run_until(loop, &r.calls, 1, 10);
  ck_assert_int_eq(r.res, 4);
  close(fd);
  /* Every other pipe becomes readable: the callback drains it and stops. */
  ck_assert_int_eq(io_calls, 0);
  for (int i = 0; i < N; i += 2)
    ck_assert_int_eq(write(p[i][1], "x", 1), 1);
  run_until(loop, &io_calls, N / 2, 10);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(tl_is_active(&io[i]), i % 2);
  printf("threadpool: %d quiet watchers with TRILOOP_THREADS_MAX=4: %u threads\n",
         N, stats().threads);
  for (int i = 1; i < N; i += 2)
    ck_assert_int_eq(tl_io_stop(loop, &io[i]), 0);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  for (int i = 0; i < N; i++) {
    close(p[i][0]);
    close(p[i][1]);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, CASE_TIMEOUT);
  tcase_add_test(tc, pool_runs_every_job_of_batches_once);
  tcase_add_test(tc, pool_cancel_queued_running_and_finished);
  tcase_add_test(tc, pool_wait_reports_readiness);
  tcase_add_test(tc, pool_stuck_eager_workers_do_not_hold_the_queue);
  tcase_add_test(tc, pool_long_jobs_run_side_by_side);
  tcase_add_test(tc, pool_grows_then_retires_idle_workers_after_keepalive);
  tcase_add_test(tc, pool_saturated_queues_and_reports_it);
  tcase_add_test(tc, pool_wait_jobs_do_not_hold_work_slots);
  tcase_add_test(tc, pool_spawn_failure_with_no_worker_returns_the_error);
  tcase_add_test(tc, pool_child_after_fork_forgets_parent_workers);
  suite_add_tcase(s, tc);
  TCase *tp = tcase_create("threadpool");
  tcase_set_timeout(tp, CASE_TIMEOUT);
  tcase_add_test(tp, tp_thousand_blocked_readers_grow_complete_and_shrink);
  tcase_add_test(tp, tp_cancel_of_a_blocked_recv_calls_back_promptly);
  tcase_add_test(tp, tp_destroy_with_blocked_workers_returns);
  tcase_add_test(tp, tp_io_watcher_is_level_triggered_and_stops);
  tcase_add_test(tp, tp_file_read_and_tcp_connect_accept);
  tcase_add_test(tp, tp_watchers_beyond_max_threads_all_fire);
  suite_add_tcase(s, tp);
  SRunner *sr = srunner_create(s);
  /* Every case needs a process of its own (the pool is process-global). */
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
