/*
 * Fault injection (issue 7): every case on every backend where the fault
 * applies.  Built only by ./configure --enable-fault-injection, where the
 * library's syscalls go through src/fault.c (tl_fault_set()).
 *
 * For each fault kind a case shows that the loop reports the error to the
 * right place (tl_loop_new, tl_run, a start, the op's callback) or retries
 * transparently where that is the contract (EINTR, EAGAIN on sockets, EBUSY
 * from io_uring_enter), that it keeps running (a following op or timer
 * works), and that it leaks nothing: the open fds after destroy are the ones
 * before creation (plus one eventfd per pool worker started meanwhile: the
 * pool is per process and keeps its workers), and the heap is checked by
 * the CI stage under ASan with detect_leaks=1.
 *
 * The invariant printed at the end: callbacks owed (successful submits)
 * versus delivered, and duplicates (a second callback for one submit).
 * Each case appends its figures to a file shared by the forked cases.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "fault.h"

static int stats_fd = -1;

/* ------------------------------------------------------------ bookkeeping */

static long g_owed, g_delivered, g_dups;

struct top {
  tl_op op;
  int calls;
  int64_t res;
};

static void top_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct top *t = (struct top *)op;
  if (t->calls++)
    g_dups++;
  t->res = res;
  g_delivered++;
}

static void top_init(struct top *t) { memset(t, 0, sizeof *t); }

/* Counts a submit that handed the op over. */
static int owed(int r) {
  if (r == 0)
    g_owed++;
  return r;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1;   /* the directory's own fd */
}

static unsigned pool_threads(void) {
  struct tl_pool_stats st;
  tl_pool_stats(&st);
  return st.threads;
}

struct fx {
  int fds0;
  unsigned thr0;
  long owed0, delivered0;
};

static void fx_begin(struct fx *f) {
  tl_fault_set(NULL);
  f->fds0 = count_fds();
  f->thr0 = pool_threads();
  f->owed0 = g_owed;
  f->delivered0 = g_delivered;
}

/* No fd leaked since fx_begin (pool workers keep one eventfd each). */
static void fx_check_fds(struct fx *f, const char *what) {
  int now = count_fds();
  unsigned thr = pool_threads();
  /* The pool counts a thread before it has opened its eventfd (and after it
   * has closed it): workers may still be starting or retiring after
   * destroy, so give the counts up to 5 s to agree before calling it a leak. */
  for (int k = 0; k < 500 && now - f->fds0 != (int)thr - (int)f->thr0; k++) {
    usleep(10 * 1000);
    now = count_fds();
    thr = pool_threads();
  }
  ck_assert_msg(now - f->fds0 == (int)thr - (int)f->thr0,
                "%s: %d fds before, %d after (pool threads %u -> %u)", what, f->fds0, now,
                f->thr0, thr);
}

/* Appends "backend kind injected owed delivered dups" for main's table. */
static void record(int i, const char *kind, uint64_t injected, struct fx *f) {
  char line[256];
  int n = snprintf(line, sizeof line, "%s %s %llu %ld %ld %ld\n", th_name(i), kind,
                   (unsigned long long)injected, g_owed - f->owed0,
                   g_delivered - f->delivered0, g_dups);
  if (stats_fd >= 0 && n > 0)
    ck_assert_int_eq(write(stats_fd, line, (size_t)n), n);
  ck_assert_msg(g_owed - f->owed0 == g_delivered - f->delivered0 && g_dups == 0,
                "%s: callbacks owed %ld, delivered %ld, duplicated %ld", kind,
                g_owed - f->owed0, g_delivered - f->delivered0, g_dups);
}

static void set_plan(const char *plan) {
  int r = tl_fault_set(plan);
  ck_assert_msg(r == 0, "plan does not parse: %s", plan);
}

/* The loop's own wait, per backend. */
static const char *wait_sym(int i) {
  switch (th_id(i)) {
  case TL_BACKEND_URING: return "io_uring_enter2";
  case TL_BACKEND_EPOLL: return "epoll_wait";
  default: return "poll";
  }
}

/* Op-level faults hit the syscalls the library makes itself; the uring
 * backend does native ops in the kernel, so there they apply only to the
 * ops it routes to the pool: route them all. */
static tl_loop *new_loop_pooled(int i) {
  if (th_id(i) == TL_BACKEND_URING)
    setenv("TRILOOP_URING_POOL_OPS", "all", 1);
  tl_loop *loop = th_new(i);
  unsetenv("TRILOOP_URING_POOL_OPS");
  return loop;
}

/* The fd number the next open will get (the loop's wakefd, for the
 * threadpool backend, whose init opens nothing else). */
static int next_fd(void) {
  int fd = dup(0);
  ck_assert_int_ge(fd, 0);
  close(fd);
  return fd;
}

static int timer_hits;
static void timer_cb(tl_loop *loop, tl_timer *w, unsigned ev) {
  (void)loop;
  (void)w;
  ck_assert_uint_eq(ev, TL_TIMER);
  timer_hits++;
}

/* Proof that the loop still works: a timer fires and a file read op
 * completes with the right bytes. */
static void still_works(tl_loop *loop) {
  tl_fault_set(NULL);
  tl_timer t;
  timer_hits = 0;
  tl_timer_init(&t, timer_cb, 0.001, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  int fd = th_tmpfile("hello", 5);
  char buf[8] = {0};
  struct top op;
  top_init(&op);
  ck_assert_int_eq(owed(tl_read(loop, &op.op, fd, buf, 5, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, timer_hits == 1 && op.calls == 1);
  ck_assert_int_eq(op.res, 5);
  ck_assert_mem_eq(buf, "hello", 5);
  close(fd);
}

/* ------------------------------------------------------------ creation */

static void expect_create_fails(int i, const char *plan, int err, struct fx *f) {
  set_plan(plan);
  tl_loop *loop = NULL;
  int r = tl_loop_new(&loop, (unsigned)th_id(i));
  uint64_t inj = tl_fault_injected(NULL);
  tl_fault_set(NULL);
  ck_assert_msg(r == -err, "%s: tl_loop_new gave %d (%s), want %d", plan, r, tl_strerror(r), -err);
  ck_assert_ptr_null(loop);
  ck_assert_uint_ge(inj, 1);
  fx_check_fds(f, plan);
  record(i, plan, inj, f);
}

START_TEST(test_faults_loop_creation_fails_cleanly) {
  struct fx f;
  fx_begin(&f);
  expect_create_fails(_i, "eventfd:EMFILE", EMFILE, &f);
  expect_create_fails(_i, "calloc:ENOMEM:nth=1", ENOMEM, &f);
  if (th_id(_i) == TL_BACKEND_EPOLL) {
    expect_create_fails(_i, "epoll_create1:EMFILE", EMFILE, &f);
    expect_create_fails(_i, "epoll_create1:ENFILE", ENFILE, &f);
  }
  if (th_id(_i) == TL_BACKEND_URING) {
    expect_create_fails(_i, "io_uring_queue_init_params:ENOMEM", ENOMEM, &f);
    expect_create_fails(_i, "io_uring_queue_init_params:EMFILE", EMFILE, &f);
  }
  tl_loop *loop = th_new(_i);
  still_works(loop);
  th_destroy(loop);
  fx_check_fds(&f, "after a good loop");
}
END_TEST

/* Fails the Nth allocation (or the Nth use of another setup call) for
 * N = 1, 2, ... until creation and a small workload no longer reach it:
 * each run either fails cleanly or works. */
static void sweep(int i, const char *sym, const char *err, int errnum) {
  struct fx f;
  fx_begin(&f);
  uint64_t total = 0;
  for (int n = 1; n < 200; n++) {
    char plan[96];
    snprintf(plan, sizeof plan, "%s:%s:nth=%d", sym, err, n);
    set_plan(plan);
    tl_loop *loop = NULL;
    int r = tl_loop_new(&loop, (unsigned)th_id(i));
    if (r < 0) {
      ck_assert_msg(r == -errnum, "%s: tl_loop_new gave %s", plan, tl_strerror(r));
      total += tl_fault_injected(NULL);
      tl_fault_set(NULL);
      fx_check_fds(&f, plan);
      continue;
    }
    /* A workload that touches the fd table, the backend's tables and the
     * pool: watchers on a high fd, a timer, a file op. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    int hi = dup2(p[0], 300);
    tl_io w;
    tl_io_init(&w, NULL, hi, TL_READ);
    int s = tl_io_start(loop, &w);
    ck_assert_msg(s == 0 || s == -errnum, "%s: tl_io_start gave %s", plan, tl_strerror(s));
    if (s == 0)
      tl_io_stop(loop, &w);
    int fd = th_tmpfile("abc", 3);
    char buf[4];
    struct top op;
    top_init(&op);
    r = owed(tl_read(loop, &op.op, fd, buf, 3, 0, top_cb));
    for (int k = 0; k < 200 && r == 0 && !op.calls; k++)
      tl_run(loop, TL_RUN_ONCE);
    uint64_t reached = tl_fault_calls(sym);
    total += tl_fault_injected(NULL);
    tl_fault_set(NULL);
    if (r == 0) {
      TH_RUN_UNTIL(loop, op.calls == 1);
      ck_assert_msg(op.res == 3 || op.res == -errnum, "%s: read op gave %lld", plan,
                    (long long)op.res);
    }
    still_works(loop);
    th_destroy(loop);
    close(fd);
    close(hi);
    close(p[0]);
    close(p[1]);
    fx_check_fds(&f, plan);
    if (reached < (uint64_t)n)
      break;     /* the Nth call never came: swept through */
  }
  char kind[96];
  snprintf(kind, sizeof kind, "%s:%s:nth=1..", sym, err);
  record(i, kind, total, &f);
}

START_TEST(test_faults_allocation_sweep) {
  sweep(_i, "calloc", "ENOMEM", ENOMEM);
  sweep(_i, "realloc", "ENOMEM", ENOMEM);
}
END_TEST

START_TEST(test_faults_uring_setup_sweep) {
  if (th_id(_i) != TL_BACKEND_URING)
    return;
  /* Registration and probing are optimisations: failing them must leave a
   * working loop, not a failed one. */
  static const char *const plans[] = {
    "io_uring_register_ring_fd:ENOMEM", "io_uring_register_iowq_max_workers:EINVAL",
    "io_uring_get_probe_ring:ENOMEM",
  };
  for (size_t k = 0; k < sizeof plans / sizeof plans[0]; k++) {
    struct fx f;
    fx_begin(&f);
    set_plan(plans[k]);
    tl_loop *loop = th_new(_i);
    tl_timer t;
    timer_hits = 0;
    tl_timer_init(&t, timer_cb, 0.001, 0);
    ck_assert_int_eq(tl_timer_start(loop, &t), 0);
    TH_RUN_UNTIL(loop, timer_hits == 1);
    uint64_t inj = tl_fault_injected(NULL);
    still_works(loop);
    th_destroy(loop);
    fx_check_fds(&f, plans[k]);
    record(_i, plans[k], inj, &f);
  }
}
END_TEST

/* A ring created disabled (single issuer) is enabled by the first thread
 * that enters it.  If that fails there is no ring to run on: tl_run says so
 * with the kernel's error, and the next run tries again, so the loop works
 * once the kernel lets it. */
START_TEST(test_faults_uring_enable_fails_then_recovers) {
  if (th_id(_i) != TL_BACKEND_URING)
    return;
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = th_new(_i);
  tl_timer t;
  timer_hits = 0;
  tl_timer_init(&t, timer_cb, 0.001, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  set_plan("io_uring_register:EINVAL");
  int r = tl_run(loop, TL_RUN_ONCE);
  uint64_t inj = tl_fault_injected("io_uring_register");
  tl_fault_set(NULL);
  char desc[512];
  tl_loop_describe(loop, desc, sizeof desc);
  if (strstr(desc, "single_issuer")) {
    ck_assert_msg(inj >= 1, "a disabled ring was never enabled");
    ck_assert_int_eq(r, -EINVAL);
  } else {
    ck_assert_int_ge(r, 0);   /* enabled at creation: nothing to fail */
  }
  TH_RUN_UNTIL(loop, timer_hits == 1);
  still_works(loop);
  th_destroy(loop);
  fx_check_fds(&f, "enable-rings fails");
  record(_i, "io_uring_register(ENABLE_RINGS):EINVAL", inj, &f);
}
END_TEST

/* A cancel that finds nothing while its op is still in flight (the kernel
 * handed the op to an io-wq worker just after the cancel looked) is asked
 * again until the op completes: by tl_op_cancel, and by destroy. */
START_TEST(test_faults_uring_missed_cancels_are_asked_again) {
  if (th_id(_i) != TL_BACKEND_URING)
    return;
  enum { N = 16 };
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = th_new(_i);
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  char buf[N][16];
  struct top ops[N];
  for (int k = 0; k < N; k++) {
    top_init(&ops[k]);
    ck_assert_int_eq(owed(tl_recv(loop, &ops[k].op, sv[0], buf[k], sizeof buf[k], 0, top_cb)), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);   /* in the kernel now */

  /* The first three asks miss. */
  set_plan("io_uring_prep_cancel64:EIO:count=3");
  ck_assert_int_eq(tl_op_cancel(loop, &ops[0].op), 0);
  TH_RUN_UNTIL(loop, ops[0].calls == 1);
  uint64_t inj = tl_fault_injected("io_uring_prep_cancel64");
  ck_assert_int_eq(ops[0].res, -ECANCELED);
  ck_assert_uint_eq(inj, 3);
  ck_assert_int_eq(ops[1].calls, 0);

  /* Destroy: every first ask misses. */
  set_plan("io_uring_prep_cancel64:EIO:count=15");
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  inj += tl_fault_injected("io_uring_prep_cancel64");
  tl_fault_set(NULL);
  for (int k = 1; k < N; k++) {
    ck_assert_int_eq(ops[k].calls, 1);
    ck_assert_int_eq(ops[k].res, -ECANCELED);
  }
  close(sv[0]);
  close(sv[1]);
  fx_check_fds(&f, "missed cancels");
  record(_i, "io_uring_prep_cancel64(miss)", inj, &f);
}
END_TEST

/* ------------------------------------------------------------ the wait */

START_TEST(test_faults_wait_eintr_is_transparent) {
  struct fx f;
  fx_begin(&f);
  int wake = next_fd();
  tl_loop *loop = th_new(_i);
  char plan[96];
  if (th_id(_i) == TL_BACKEND_THREADPOOL)
    snprintf(plan, sizeof plan, "poll:EINTR:every=2:fd=%d", wake);
  else
    snprintf(plan, sizeof plan, "%s:EINTR:every=2", wait_sym(_i));
  set_plan(plan);
  tl_timer t;
  timer_hits = 0;
  tl_timer_init(&t, timer_cb, 0.001, 0.001);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  char buf[4] = {0};
  struct top op;
  top_init(&op);
  ck_assert_int_eq(owed(tl_read(loop, &op.op, p[0], buf, 3, -1, top_cb)), 0);
  while (timer_hits < 20) {
    int r = tl_run(loop, TL_RUN_ONCE);
    ck_assert_msg(r >= 0, "tl_run: %s under %s", tl_strerror(r), plan);
    if (timer_hits == 10 && op.calls == 0)
      ck_assert_int_eq(write(p[1], "xyz", 3), 3);
  }
  tl_timer_stop(loop, &t);
  TH_RUN_UNTIL(loop, op.calls == 1);
  ck_assert_int_eq(op.res, 3);
  ck_assert_mem_eq(buf, "xyz", 3);
  uint64_t inj = tl_fault_injected(NULL);
  ck_assert_uint_ge(inj, 1);
  still_works(loop);
  th_destroy(loop);
  close(p[0]);
  close(p[1]);
  fx_check_fds(&f, plan);
  record(_i, "wait:EINTR:every=2", inj, &f);
}
END_TEST

START_TEST(test_faults_wait_error_reaches_tl_run_then_recovers) {
  struct fx f;
  fx_begin(&f);
  int wake = next_fd();
  tl_loop *loop = th_new(_i);
  tl_timer t;
  timer_hits = 0;
  tl_timer_init(&t, timer_cb, 0.002, 0);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  char plan[96];
  if (th_id(_i) == TL_BACKEND_THREADPOOL)
    snprintf(plan, sizeof plan, "poll:ENOMEM:count=1:fd=%d", wake);
  else
    snprintf(plan, sizeof plan, "%s:ENOMEM:count=1", wait_sym(_i));
  set_plan(plan);
  int r = tl_run(loop, TL_RUN_ONCE);
  uint64_t inj = tl_fault_injected(NULL);
  ck_assert_uint_eq(inj, 1);
  ck_assert_msg(r == -ENOMEM, "tl_run gave %d (%s), want -ENOMEM under %s", r, tl_strerror(r),
                plan);
  TH_RUN_UNTIL(loop, timer_hits == 1);
  still_works(loop);
  th_destroy(loop);
  fx_check_fds(&f, plan);
  record(_i, "wait:ENOMEM:count=1", inj, &f);
}
END_TEST

/* ------------------------------------------------------------ io_uring */

static void mark_cb(tl_loop *loop, tl_io *w, unsigned ev) {
  (void)loop;
  if (w->data && (ev & TL_READ))
    *(int *)w->data = 1;
}

/* Many ops and ready fds at once: file reads and readiness of pipes. */
static uint64_t flood(tl_loop *loop, const char *plan, int nops, int npipes, int expect_clean) {
  int fd = th_tmpfile("0123456789abcdef", 16);
  struct top *ops = calloc((size_t)nops, sizeof *ops);
  char (*bufs)[4] = calloc((size_t)nops, 4);
  int (*p)[2] = calloc((size_t)npipes, sizeof *p);
  tl_io *w = calloc((size_t)npipes, sizeof *w);
  int *seen = calloc((size_t)npipes, sizeof *seen);
  ck_assert(ops && bufs && p && w && seen);
  for (int k = 0; k < npipes; k++) {
    ck_assert_int_eq(pipe(p[k]), 0);
    ck_assert_int_eq(write(p[k][1], "x", 1), 1);
    tl_io_init(&w[k], mark_cb, p[k][0], TL_READ);
    w[k].data = &seen[k];
  }
  set_plan(plan);
  int fired = 0;
  for (int k = 0; k < npipes; k++)
    ck_assert_int_eq(tl_io_start(loop, &w[k]), 0);
  int submitted = 0;
  for (int k = 0; k < nops; k++) {
    top_init(&ops[k]);
    int r = owed(tl_read(loop, &ops[k].op, fd, bufs[k], 4, k % 12, top_cb));
    ck_assert_msg(r == 0, "submit %d: %s under %s", k, tl_strerror(r), plan);
    submitted++;
  }
  double end = th_time() + 8;
  int done = 0;
  while (done < submitted || fired < npipes) {
    int r = tl_run(loop, TL_RUN_NOWAIT);
    if (expect_clean)
      ck_assert_msg(r >= 0, "tl_run: %s under %s", tl_strerror(r), plan);
    fired = 0;
    for (int k = 0; k < npipes; k++)
      fired += seen[k];
    done = 0;
    for (int k = 0; k < nops; k++)
      done += ops[k].calls;
    ck_assert_msg(th_time() < end, "%d of %d ops, %d of %d fds under %s", done, submitted,
                  fired, npipes, plan);
  }
  for (int k = 0; k < nops; k++) {
    ck_assert_int_eq(ops[k].calls, 1);
    int off = k % 12;
    ck_assert_int_eq(ops[k].res, 4);
    ck_assert_mem_eq(bufs[k], "0123456789abcdef" + off, 4);
  }
  for (int k = 0; k < npipes; k++) {
    tl_io_stop(loop, &w[k]);
    close(p[k][0]);
    close(p[k][1]);
  }
  uint64_t inj = tl_fault_injected(NULL);
  tl_fault_set(NULL);
  close(fd);
  free(ops);
  free(bufs);
  free(p);
  free(w);
  free(seen);
  return inj;
}

START_TEST(test_faults_enter_busy_again_retried) {
  if (th_id(_i) != TL_BACKEND_URING)
    return;
  static const char *const plans[] = {
    "io_uring_enter2:EBUSY:every=2", "io_uring_enter2:EAGAIN:every=3",
    "io_uring_enter2:EINTR:every=2",
  };
  for (size_t k = 0; k < sizeof plans / sizeof plans[0]; k++) {
    struct fx f;
    fx_begin(&f);
    tl_loop *loop = th_new(_i);
    uint64_t inj = flood(loop, plans[k], 64, 8, 1);
    still_works(loop);
    th_destroy(loop);
    fx_check_fds(&f, plans[k]);
    record(_i, plans[k], inj, &f);
  }
}
END_TEST

/* A tiny ring: the CQ (8 entries for TRILOOP_URING_ENTRIES=2) overflows
 * many times over.  The other backends run the same flood. */
START_TEST(test_faults_tiny_ring_overflows_cq) {
  struct fx f;
  fx_begin(&f);
  setenv("TRILOOP_URING_ENTRIES", "2", 1);
  tl_loop *loop = th_new(_i);
  unsetenv("TRILOOP_URING_ENTRIES");
  flood(loop, "", 256, 32, 1);
  still_works(loop);
  th_destroy(loop);
  fx_check_fds(&f, "tiny ring");
  record(_i, "tiny-ring(entries=2)", 0, &f);

  fx_begin(&f);
  setenv("TRILOOP_URING_ENTRIES", "2", 1);
  loop = th_new(_i);
  unsetenv("TRILOOP_URING_ENTRIES");
  char plan[96];
  snprintf(plan, sizeof plan, "%s:%s:every=3",
           wait_sym(_i), th_id(_i) == TL_BACKEND_URING ? "EBUSY" : "EINTR");
  uint64_t inj = flood(loop, th_id(_i) == TL_BACKEND_THREADPOOL ? "" : plan, 256, 32, 1);
  still_works(loop);
  th_destroy(loop);
  fx_check_fds(&f, "tiny ring + faults");
  record(_i, "tiny-ring+wait-faults", inj, &f);
}
END_TEST

/* ------------------------------------------------------------ ops */

static void sockpair(int sv[2]) {
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

START_TEST(test_faults_short_counts_reach_the_callback) {
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = new_loop_pooled(_i);
  char data[4096], buf[4096];
  for (size_t k = 0; k < sizeof data; k++)
    data[k] = (char)('a' + k % 26);
  int fd = th_tmpfile(data, sizeof data);
  struct top op;
  uint64_t inj = 0;

  /* A file read: half comes back; the next op reads the rest. */
  set_plan("pread:short:count=1");
  top_init(&op);
  ck_assert_int_eq(owed(tl_read(loop, &op.op, fd, buf, 4096, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, op.calls == 1);
  ck_assert_int_eq(op.res, 2048);
  ck_assert_mem_eq(buf, data, 2048);
  top_init(&op);
  ck_assert_int_eq(owed(tl_read(loop, &op.op, fd, buf + 2048, 2048, 2048, top_cb)), 0);
  TH_RUN_UNTIL(loop, op.calls == 1);
  ck_assert_int_eq(op.res, 2048);
  ck_assert_mem_eq(buf, data, 4096);
  inj += tl_fault_injected(NULL);

  /* A file write. */
  set_plan("pwrite:short:count=1");
  top_init(&op);
  ck_assert_int_eq(owed(tl_write(loop, &op.op, fd, "ABCDEFGH", 8, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, op.calls == 1);
  ck_assert_int_eq(op.res, 4);
  inj += tl_fault_injected(NULL);

  /* Vectored. */
  set_plan("preadv:short:count=1");
  struct iovec iov[2] = {{buf, 100}, {buf + 100, 100}};
  top_init(&op);
  ck_assert_int_eq(owed(tl_readv(loop, &op.op, fd, iov, 2, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, op.calls == 1);
  ck_assert_int_eq(op.res, 100);
  inj += tl_fault_injected(NULL);

  /* A socket: recv and send. */
  int sv[2];
  sockpair(sv);
  ck_assert_int_eq(write(sv[1], data, 1000), 1000);
  set_plan("recv:short:count=1,send:short:count=1");
  top_init(&op);
  ck_assert_int_eq(owed(tl_recv(loop, &op.op, sv[0], buf, 1000, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, op.calls == 1);
  ck_assert_int_eq(op.res, 500);
  ck_assert_mem_eq(buf, data, 500);
  top_init(&op);
  ck_assert_int_eq(owed(tl_send(loop, &op.op, sv[0], data, 600, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, op.calls == 1);
  ck_assert_int_eq(op.res, 300);
  ck_assert_int_eq(read(sv[1], buf, sizeof buf), 300);
  inj += tl_fault_injected(NULL);
  ck_assert_uint_eq(inj, 5);

  still_works(loop);
  th_destroy(loop);
  close(fd);
  close(sv[0]);
  close(sv[1]);
  fx_check_fds(&f, "short counts");
  record(_i, "read/write:short", inj, &f);
}
END_TEST

/* One op under one fault: the callback gets want (0: the real result). */
static uint64_t one_op(tl_loop *loop, const char *plan, tl_op *op, int64_t want_res) {
  set_plan(plan);
  struct top *t = (struct top *)op;
  ck_assert_int_eq(owed(tl_op_submit(loop, op)), 0);
  TH_RUN_UNTIL(loop, t->calls == 1);
  uint64_t inj = tl_fault_injected(NULL);
  tl_fault_set(NULL);
  ck_assert_msg(inj >= 1, "%s: nothing injected", plan);
  ck_assert_msg(t->res == want_res, "%s: callback got %lld (%s), want %lld", plan,
                (long long)t->res, tl_strerror((int)t->res), (long long)want_res);
  return inj;
}

static void prep_read(struct top *t, int type, int fd, void *buf, size_t len, int64_t off) {
  top_init(t);
  t->op.type = type;
  t->op.fd = fd;
  t->op.cb = top_cb;
  if (type == TL_OP_RECV || type == TL_OP_SEND) {
    t->op.u.msg.buf = buf;
    t->op.u.msg.len = len;
  } else {
    t->op.u.rw.buf = buf;
    t->op.u.rw.len = len;
    t->op.u.rw.off = off;
  }
}

START_TEST(test_faults_op_errors_reach_the_callback) {
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = new_loop_pooled(_i);
  int fd = th_tmpfile("0123456789", 10);
  char buf[64];
  struct top t;
  uint64_t inj = 0;

  prep_read(&t, TL_OP_READ, fd, buf, 10, 0);
  inj += one_op(loop, "pread:EIO:count=1", &t.op, -EIO);
  prep_read(&t, TL_OP_READ, fd, buf, 10, 0);
  inj += one_op(loop, "pread:ENOMEM:count=1", &t.op, -ENOMEM);
  prep_read(&t, TL_OP_WRITE, fd, "xy", 2, 0);
  inj += one_op(loop, "pwrite:ENOSPC:count=1", &t.op, -ENOSPC);
  top_init(&t);
  set_plan("fsync:EIO:count=1");
  ck_assert_int_eq(owed(tl_fsync(loop, &t.op, fd, top_cb)), 0);
  TH_RUN_UNTIL(loop, t.calls == 1);
  inj += tl_fault_injected(NULL);
  ck_assert_int_eq(t.res, -EIO);
  top_init(&t);
  set_plan("openat:EMFILE:count=1");
  ck_assert_int_eq(owed(tl_openat(loop, &t.op, AT_FDCWD, "/dev/null", O_RDONLY, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, t.calls == 1);
  inj += tl_fault_injected(NULL);
  ck_assert_int_eq(t.res, -EMFILE);

  int sv[2];
  sockpair(sv);
  ck_assert_int_eq(write(sv[1], "hello", 5), 5);
  prep_read(&t, TL_OP_RECV, sv[0], buf, 5, 0);
  inj += one_op(loop, "recv:ECONNRESET:count=1", &t.op, -ECONNRESET);
  prep_read(&t, TL_OP_SEND, sv[0], "abc", 3, 0);
  inj += one_op(loop, "send:ENOBUFS:count=1", &t.op, -ENOBUFS);
  /* The socket still works: the data sent before the faults is there. */
  prep_read(&t, TL_OP_RECV, sv[0], buf, 5, 0);
  ck_assert_int_eq(owed(tl_op_submit(loop, &t.op)), 0);
  TH_RUN_UNTIL(loop, t.calls == 1);
  ck_assert_int_eq(t.res, 5);

  /* accept: EMFILE to the callback, and the pending connection is still
   * there for the next accept. */
  struct sockaddr_storage sa;
  socklen_t salen;
  int lfd = th_listener(&sa, &salen);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, salen), 0);
  top_init(&t);
  set_plan("accept4:EMFILE:count=1");
  ck_assert_int_eq(owed(tl_accept(loop, &t.op, lfd, NULL, NULL, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, t.calls == 1);
  inj += tl_fault_injected(NULL);
  ck_assert_int_eq(t.res, -EMFILE);
  tl_fault_set(NULL);
  top_init(&t);
  ck_assert_int_eq(owed(tl_accept(loop, &t.op, lfd, NULL, NULL, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, t.calls == 1);
  ck_assert_int_ge(t.res, 0);
  close((int)t.res);

  /* connect: the error of the connect call itself. */
  int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  top_init(&t);
  set_plan("connect:ENOBUFS:count=1");
  ck_assert_int_eq(owed(tl_connect(loop, &t.op, c2, (struct sockaddr *)&sa, salen, top_cb)), 0);
  TH_RUN_UNTIL(loop, t.calls == 1);
  inj += tl_fault_injected(NULL);
  ck_assert_int_eq(t.res, -ENOBUFS);

  still_works(loop);
  th_destroy(loop);
  close(c2);
  close(c);
  close(lfd);
  close(fd);
  close(sv[0]);
  close(sv[1]);
  fx_check_fds(&f, "op errors");
  record(_i, "op-errors(EIO,ENOMEM,ENOSPC,EMFILE,ECONNRESET,ENOBUFS)", inj, &f);
}
END_TEST

START_TEST(test_faults_op_eintr_eagain_are_retried) {
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = new_loop_pooled(_i);
  int fd = th_tmpfile("0123456789", 10);
  char buf[64];
  struct top t;
  uint64_t inj = 0;

  prep_read(&t, TL_OP_READ, fd, buf, 10, 0);
  inj += one_op(loop, "pread:EINTR:count=3", &t.op, 10);
  ck_assert_mem_eq(buf, "0123456789", 10);
  int sv[2];
  sockpair(sv);
  ck_assert_int_eq(write(sv[1], "hello", 5), 5);
  /* The epoll backend waits for sockets edge-triggered (EPOLLET), which is
   * right for a real EAGAIN (a later edge is guaranteed) but never sees an
   * injected one on a socket that is already ready: no EAGAIN there. */
  int et = th_id(_i) == TL_BACKEND_EPOLL;
  prep_read(&t, TL_OP_RECV, sv[0], buf, 5, 0);
  inj += one_op(loop, et ? "recv:EINTR:count=2" : "recv:EAGAIN:count=2", &t.op, 5);
  ck_assert_int_eq(write(sv[1], "world", 5), 5);
  prep_read(&t, TL_OP_RECV, sv[0], buf, 5, 0);
  inj += one_op(loop, "recv:EINTR:count=2", &t.op, 5);
  ck_assert_mem_eq(buf, "world", 5);
  prep_read(&t, TL_OP_SEND, sv[0], "abcdef", 6, 0);
  inj += one_op(loop, et ? "send:EINTR:count=2" : "send:EAGAIN:count=1,send:EINTR:count=1",
                &t.op, 6);
  ck_assert_int_eq(read(sv[1], buf, sizeof buf), 6);

  struct sockaddr_storage sa;
  socklen_t salen;
  int lfd = th_listener(&sa, &salen);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, salen), 0);
  top_init(&t);
  set_plan(et ? "accept4:EINTR:count=2" : "accept4:EINTR:count=1,accept4:EAGAIN:count=1");
  ck_assert_int_eq(owed(tl_accept(loop, &t.op, lfd, NULL, NULL, 0, top_cb)), 0);
  TH_RUN_UNTIL(loop, t.calls == 1);
  inj += tl_fault_injected(NULL);
  ck_assert_int_ge(t.res, 0);
  close((int)t.res);

  still_works(loop);
  th_destroy(loop);
  close(c);
  close(lfd);
  close(fd);
  close(sv[0]);
  close(sv[1]);
  fx_check_fds(&f, "retries");
  record(_i, "op-EINTR/EAGAIN(retried)", inj, &f);
}
END_TEST

/* A pool op whose fd is closed between its try (EAGAIN) and its wait:
 * the wait's poll sees POLLNVAL and the op fails with -EBADF, on every
 * backend, rather than trying again (by then the number may name another
 * file).  Injected: a recv on a closed fd says EAGAIN every time, as a
 * socket does that is closed just after its try. */
START_TEST(test_faults_pool_wait_on_a_closed_fd_is_ebadf) {
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = new_loop_pooled(_i);
  int bad = th_closed_fd();
  char buf[8], plan[64];
  struct top t;
  prep_read(&t, TL_OP_RECV, bad, buf, sizeof buf, 0);
  snprintf(plan, sizeof plan, "recv:EAGAIN:fd=%d", bad);
  uint64_t inj = one_op(loop, plan, &t.op, -EBADF);
  still_works(loop);
  th_destroy(loop);
  fx_check_fds(&f, "closed fd under a pool wait");
  record(_i, "pool-wait-POLLNVAL(EBADF)", inj, &f);
}
END_TEST

/* ------------------------------------------------------------ threads */

START_TEST(test_faults_thread_creation_fails) {
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = new_loop_pooled(_i);
  int fd = th_tmpfile("0123456789", 10);
  char buf[16][4];
  struct top t[16];
  set_plan("pthread_create:EAGAIN");
  int accepted = 0, refused = 0;
  for (int k = 0; k < 16; k++) {
    top_init(&t[k]);
    int r = owed(tl_read(loop, &t[k].op, fd, buf[k], 4, k % 6, top_cb));
    /* Rule 6: with no worker to run it, the submit hands nothing over. */
    ck_assert_msg(r == 0 || r == -EAGAIN, "submit: %s", tl_strerror(r));
    if (r == 0)
      accepted++;
    else
      refused++;
  }
  /* A watcher on an fd that is not ready yet needs a waiter thread on the
   * threadpool backend. */
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  tl_io w;
  int seen = 0;
  tl_io_init(&w, mark_cb, p[0], TL_READ);
  w.data = &seen;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  for (int k = 0; k < 20; k++) {
    int r = tl_run(loop, TL_RUN_NOWAIT);
    ck_assert_msg(r >= 0 || r == -EAGAIN, "tl_run: %s", tl_strerror(r));
  }
  uint64_t inj = tl_fault_injected(NULL);
  tl_fault_set(NULL);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  for (int k = 0; k < 16; k++)
    if (t[k].op.tl__loop || t[k].calls)
      TH_RUN_UNTIL(loop, t[k].calls == 1);
  /* An accepted op whose batch found no thread is told so itself. */
  for (int k = 0; k < 16; k++)
    if (t[k].calls)
      ck_assert_msg(t[k].res == 4 || t[k].res == -EAGAIN, "op %d: %lld", k, (long long)t[k].res);
  /* Thread creation works again: the watcher fires and refused ops go. */
  TH_RUN_UNTIL(loop, seen);
  tl_io_stop(loop, &w);
  for (int k = 0; k < 16; k++) {
    if (t[k].calls)
      continue;
    ck_assert_int_eq(owed(tl_read(loop, &t[k].op, fd, buf[k], 4, 0, top_cb)), 0);
    TH_RUN_UNTIL(loop, t[k].calls == 1);
    ck_assert_int_eq(t[k].res, 4);
  }
  printf("%s: pthread_create failing: %d submits accepted, %d refused with -EAGAIN\n",
         th_name(_i), accepted, refused);
  still_works(loop);
  th_destroy(loop);
  close(fd);
  close(p[0]);
  close(p[1]);
  fx_check_fds(&f, "pthread_create");
  record(_i, "pthread_create:EAGAIN", inj, &f);
}
END_TEST

/* Regression (epoll): a batch the pool refuses (no worker exists and none
 * can start) fails its ops inside poll(), after the front end chose how
 * long to block, and epoll then slept with their callbacks queued (up to
 * MAX_BLOCK, 59.7 s): the allocation sweep's hang, where a failed calloc
 * left the pool without a thread.  The callbacks are due at once: one
 * tl_run(TL_RUN_ONCE) delivers them, long before a 5 s timer.  Forked, so
 * the pool really has no thread (fork's child starts it afresh). */

START_TEST(test_faults_refused_batch_does_not_block) {
  int fd = th_tmpfile("abc", 3);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    tl_loop *loop = NULL;
    if (th_id(_i) == TL_BACKEND_URING)
      setenv("TRILOOP_URING_POOL_OPS", "all", 1);
    CHILD_CHECK(tl_loop_new(&loop, (unsigned)th_id(_i)) == 0);
    tl_timer t;
    timer_hits = 0;
    tl_timer_init(&t, timer_cb, 5.0, 0);
    CHILD_CHECK(tl_timer_start(loop, &t) == 0);
    CHILD_CHECK(tl_fault_set("pthread_create:EAGAIN") == 0);
    char buf[4];
    struct top op;
    top_init(&op);
    int r = tl_read(loop, &op.op, fd, buf, 3, 0, top_cb);
    /* uring hands its pool ops over in submit: refused there, no callback. */
    CHILD_CHECK(r == 0 || r == -EAGAIN);
    if (r == 0) {
      /* The threadpool backend also reports the refusal from tl_run. */
      r = tl_run(loop, TL_RUN_ONCE);
      CHILD_CHECK(r >= 0 || r == -EAGAIN);
      CHILD_CHECK(op.calls == 1);
      CHILD_CHECK(op.res == -EAGAIN);
      CHILD_CHECK(timer_hits == 0);
    }
    tl_fault_set(NULL);
    tl_timer_stop(loop, &t);
    CHILD_CHECK(tl_loop_destroy(loop) == 0);
    _exit(0);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  close(fd);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "child failed (status 0x%x), see its message on stderr", st);
}
END_TEST

/* ------------------------------------------------------------ watchers */

static unsigned io_ev;
static void io_cb(tl_loop *loop, tl_io *w, unsigned ev) {
  (void)loop;
  (void)w;
  io_ev |= ev;
}

START_TEST(test_faults_registration_errors) {
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = th_new(_i);
  int p[2];
  ck_assert_int_eq(pipe(p), 0);
  int hi = dup2(p[0], 400);
  tl_io w;
  tl_io_init(&w, io_cb, hi, TL_READ);
  uint64_t inj = 0;
  /* Growing the tables for a high fd. */
  set_plan("realloc:ENOMEM:count=1");
  ck_assert_int_eq(tl_io_start(loop, &w), -ENOMEM);
  inj += tl_fault_injected(NULL);
  ck_assert(!tl_is_active(&w));
  tl_fault_set(NULL);
  if (th_id(_i) == TL_BACKEND_EPOLL) {
    set_plan("epoll_ctl:ENOMEM:count=1");
    ck_assert_int_eq(tl_io_start(loop, &w), -ENOMEM);
    inj += tl_fault_injected(NULL);
    ck_assert(!tl_is_active(&w));
    tl_fault_set(NULL);
  }
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  io_ev = 0;
  TH_RUN_UNTIL(loop, io_ev & TL_READ);
  if (th_id(_i) == TL_BACKEND_EPOLL) {
    /* A change applied at the next wait: the refusal reaches the
     * watcher's callback as TL_ERROR, and the watcher stops. */
    set_plan("epoll_ctl:ENOSPC:count=1");
    ck_assert_int_eq(tl_io_set(loop, &w, TL_READ | TL_WRITE), 0);
    io_ev = 0;
    TH_RUN_UNTIL(loop, io_ev & TL_ERROR);
    inj += tl_fault_injected(NULL);
    ck_assert(!tl_is_active(&w));
    tl_fault_set(NULL);
    tl_io_set(loop, &w, TL_READ);
    ck_assert_int_eq(tl_io_start(loop, &w), 0);
    io_ev = 0;
    TH_RUN_UNTIL(loop, io_ev & TL_READ);
  }
  tl_io_stop(loop, &w);
  still_works(loop);
  th_destroy(loop);
  close(hi);
  close(p[0]);
  close(p[1]);
  fx_check_fds(&f, "registration");
  record(_i, "registration(realloc,epoll_ctl)", inj, &f);
}
END_TEST

/* ------------------------------------------------------------ random mix */

/* Echo traffic over socketpairs with ops, file ops and timers while the
 * library's syscalls fail at random.  Any result is allowed; what must
 * hold: every submit is called back once, the loop ends, nothing leaks. */
START_TEST(test_faults_random_mix) {
  struct fx f;
  fx_begin(&f);
  tl_loop *loop = new_loop_pooled(_i);
  enum { N = 8, ROUNDS = 150 };
  int sv[N][2];
  char out[N][64], in[N][64];
  struct top snd[N], rcv[N], fop[N];
  int fd = th_tmpfile("0123456789abcdef", 16);
  char fbuf[N][8];
  for (int k = 0; k < N; k++) {
    sockpair(sv[k]);
    memset(out[k], 'a' + k, sizeof out[k]);
    top_init(&snd[k]);
    top_init(&rcv[k]);
    top_init(&fop[k]);
    snd[k].calls = rcv[k].calls = fop[k].calls = 1;   /* "idle" */
  }
  tl_timer t;
  timer_hits = 0;
  tl_timer_init(&t, timer_cb, 0.001, 0.001);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  const char *plan = th_id(_i) == TL_BACKEND_EPOLL ?
      "read:EINTR:p=0.05,read:short:p=0.05,write:short:p=0.05,"
      "pread:EIO:p=0.03,pread:short:p=0.05,pread:EINTR:p=0.05,"
      "recv:EINTR:p=0.05,recv:short:p=0.1,recv:ECONNRESET:p=0.01,"
      "send:short:p=0.1,send:ENOBUFS:p=0.01,epoll_wait:EINTR:p=0.1,epoll_ctl:ENOMEM:p=0.01,"
      "pthread_create:EAGAIN:p=0.3,calloc:ENOMEM:p=0.02,realloc:ENOMEM:p=0.02" :
      "read:EINTR:p=0.05,read:short:p=0.05,write:short:p=0.05,"
      "pread:EIO:p=0.03,pread:short:p=0.05,pread:EINTR:p=0.05,"
      "recv:EAGAIN:p=0.1,recv:EINTR:p=0.05,recv:short:p=0.1,recv:ECONNRESET:p=0.01,"
      "send:EAGAIN:p=0.1,send:short:p=0.1,send:ENOBUFS:p=0.01,"
      "epoll_wait:EINTR:p=0.1,io_uring_enter2:EBUSY:p=0.05,io_uring_enter2:EINTR:p=0.05,"
      "io_uring_enter2:EAGAIN:p=0.05,epoll_ctl:ENOMEM:p=0.01,"
      "pthread_create:EAGAIN:p=0.3,calloc:ENOMEM:p=0.02,realloc:ENOMEM:p=0.02";
  set_plan(plan);
  long errors = 0, runs_failed = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (int k = 0; k < N; k++) {
      if (snd[k].calls) {
        if (snd[k].res < 0)
          errors++;
        top_init(&snd[k]);
        if (owed(tl_send(loop, &snd[k].op, sv[k][0], out[k], 1 + (size_t)(round * 7 + k) % 64,
                         0, top_cb)) < 0)
          snd[k].calls = 1;
      }
      if (rcv[k].calls) {
        if (rcv[k].res < 0)
          errors++;
        top_init(&rcv[k]);
        if (owed(tl_recv(loop, &rcv[k].op, sv[k][1], in[k], sizeof in[k], 0, top_cb)) < 0)
          rcv[k].calls = 1;
      }
      if (fop[k].calls) {
        if (fop[k].res < 0)
          errors++;
        top_init(&fop[k]);
        if (owed(tl_read(loop, &fop[k].op, fd, fbuf[k], 8, k, top_cb)) < 0)
          fop[k].calls = 1;
      }
    }
    int r = tl_run(loop, TL_RUN_ONCE);
    if (r < 0)
      runs_failed++;
  }
  uint64_t inj = tl_fault_injected(NULL);
  printf("%s random mix: %llu faults injected over %llu wrapped calls, %ld op errors, "
         "%ld failed tl_run\n", th_name(_i), (unsigned long long)inj,
         (unsigned long long)tl_fault_calls(NULL), errors, runs_failed);
  fflush(stdout);
  tl_fault_set(NULL);
  /* Drain: cancel what is still waiting (recvs with nothing to read). */
  for (int k = 0; k < N; k++) {
    tl_op_cancel(loop, &rcv[k].op);
    tl_op_cancel(loop, &snd[k].op);
    tl_op_cancel(loop, &fop[k].op);
  }
  tl_timer_stop(loop, &t);
  TH_RUN_UNTIL(loop, tl_ops_in_flight(loop) == 0);
  for (int k = 0; k < N; k++)
    ck_assert(snd[k].calls == 1 && rcv[k].calls == 1 && fop[k].calls == 1);
  still_works(loop);
  th_destroy(loop);
  for (int k = 0; k < N; k++) {
    close(sv[k][0]);
    close(sv[k][1]);
  }
  close(fd);
  fx_check_fds(&f, "random mix");
  record(_i, "random-mix", inj, &f);
}
END_TEST

/* ------------------------------------------------------------ main */

/* Every worker the pool has is held by a recv on a quiet socket, and no
 * new thread can start: a recv submitted then (its peer has sent) must
 * still call back, with its data or the spawn error, and every recv is
 * called back once by destroy.  (The pool used to leave it queued "for a
 * worker that will get to it", which never came.)  Forked: a fresh pool. */
#define NQUIET 8
START_TEST(test_faults_blocked_workers_and_no_new_thread_every_op_calls_back) {
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    alarm(TH_CASE_TIMEOUT - 2);
    setenv("TRILOOP_THREADS", "2", 1);
    if (th_id(_i) == TL_BACKEND_URING)
      setenv("TRILOOP_URING_POOL_OPS", "all", 1);
    tl_loop *loop = NULL;
    CHILD_CHECK(tl_loop_new(&loop, (unsigned)th_id(_i)) == 0);
    static int sv[NQUIET + 1][2];
    static char buf[NQUIET + 1][8];
    static struct top t[NQUIET + 1];
    for (int k = 0; k <= NQUIET; k++)
      CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[k]) == 0);
    for (int k = 0; k < NQUIET; k++) {
      top_init(&t[k]);
      CHILD_CHECK(tl_recv(loop, &t[k].op, sv[k][0], buf[k], sizeof buf[k], 0, top_cb) == 0);
    }
    /* Let the workers start and block in their recvs. */
    for (int k = 0; k < 5; k++) {
      CHILD_CHECK(tl_run(loop, TL_RUN_NOWAIT) >= 0);
      th_sleep(0.02);
    }
    CHILD_CHECK(tl_fault_set("pthread_create:EAGAIN") == 0);
    CHILD_CHECK(write(sv[NQUIET][1], "data", 4) == 4);
    top_init(&t[NQUIET]);
    int r = tl_recv(loop, &t[NQUIET].op, sv[NQUIET][0], buf[NQUIET], 8, 0, top_cb);
    CHILD_CHECK(r == 0 || r == -EAGAIN);
    if (r == 0) {
      double end = th_time() + 5;
      while (!t[NQUIET].calls && th_time() < end) {
        int rr = tl_run(loop, TL_RUN_ONCE);
        CHILD_CHECK(rr >= 0 || rr == -EAGAIN);
      }
      if (!t[NQUIET].calls)
        fprintf(stderr, "child: the recv with data never called back\n");
      CHILD_CHECK(t[NQUIET].calls == 1);
      CHILD_CHECK(t[NQUIET].res == 4 || t[NQUIET].res == -EAGAIN);
    }
    for (int k = 0; k < NQUIET; k++)
      CHILD_CHECK(t[k].calls == 0 || t[k].res == -EAGAIN);
    tl_fault_set(NULL);
    CHILD_CHECK(tl_loop_destroy(loop) == 0);
    for (int k = 0; k <= NQUIET; k++) {
      CHILD_CHECK(t[k].calls == (k < NQUIET || r == 0));
      close(sv[k][0]);
      close(sv[k][1]);
    }
    _exit(0);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "child failed (status 0x%x), see its message on stderr", st);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_faults_loop_creation_fails_cleanly);
  TH_ADD(tc, test_faults_allocation_sweep);
  TH_ADD(tc, test_faults_uring_setup_sweep);
  TH_ADD(tc, test_faults_uring_enable_fails_then_recovers);
  TH_ADD(tc, test_faults_uring_missed_cancels_are_asked_again);
  TH_ADD(tc, test_faults_wait_eintr_is_transparent);
  TH_ADD(tc, test_faults_wait_error_reaches_tl_run_then_recovers);
  TH_ADD(tc, test_faults_enter_busy_again_retried);
  TH_ADD(tc, test_faults_tiny_ring_overflows_cq);
  TH_ADD(tc, test_faults_short_counts_reach_the_callback);
  TH_ADD(tc, test_faults_op_errors_reach_the_callback);
  TH_ADD(tc, test_faults_op_eintr_eagain_are_retried);
  TH_ADD(tc, test_faults_pool_wait_on_a_closed_fd_is_ebadf);
  TH_ADD(tc, test_faults_thread_creation_fails);
  TH_ADD(tc, test_faults_refused_batch_does_not_block);
  TH_ADD(tc, test_faults_blocked_workers_and_no_new_thread_every_op_calls_back);
  TH_ADD(tc, test_faults_registration_errors);
  TH_ADD(tc, test_faults_random_mix);
}

/* Sums the figures the cases appended: per backend and kind. */
static void print_table(void) {
  if (stats_fd < 0)
    return;
  lseek(stats_fd, 0, SEEK_SET);
  FILE *fp = fdopen(dup(stats_fd), "r");
  if (!fp)
    return;
  char be[32], kind[128];
  unsigned long long inj;
  long o, d, dup;
  long to = 0, td = 0, tdup = 0;
  unsigned long long tinj = 0;
  printf("%-11s %-56s %9s %7s %9s %5s\n", "backend", "fault", "injected", "owed", "delivered",
         "dups");
  while (fscanf(fp, "%31s %127s %llu %ld %ld %ld", be, kind, &inj, &o, &d, &dup) == 6) {
    printf("%-11s %-56s %9llu %7ld %9ld %5ld\n", be, kind, inj, o, d, dup);
    to += o;
    td += d;
    tdup += dup;
    tinj += inj;
  }
  fclose(fp);
  printf("faults: %llu injected and survived; callbacks owed %ld, delivered %ld, "
         "duplicated %ld: %s\n", tinj, to, td, tdup,
         to == td && tdup == 0 ? "equal" : "NOT EQUAL");
}

int main(void) {
  /* Warm pool workers never retire during a case, so the fd count after a
   * case differs from the one before by exactly the workers started. */
  setenv("TRILOOP_THREADS", "64", 1);
  unsetenv("TRILOOP_FAULT");
  char path[] = "/tmp/triloop-faults-XXXXXX";
  stats_fd = mkstemp(path);
  if (stats_fd >= 0) {
    unlink(path);
    int fl = fcntl(stats_fd, F_GETFL);
    fcntl(stats_fd, F_SETFL, fl | O_APPEND);
  }
  int r = th_main("faults", add);
  print_table();
  if (stats_fd >= 0)
    close(stats_fd);
  return r;
}
