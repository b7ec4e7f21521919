/* Signals, children, async, idle/prepare/check, priorities, feed_event,
 * clear_pending. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"

/* A callback log shared by every watcher type: each watcher's data points
 * at one of these. */
struct wlog {
  int calls;
  unsigned revents;
  char tag;          /* appended to the shared trace */
  char *trace;       /* optional: shared trace string */
  int stop;          /* stop self (via the stop function below) */
  int stop_at;
  int break_loop;
};

static void trace(struct wlog *l, unsigned revents) {
  l->calls++;
  l->revents = revents;
  if (l->trace) {
    size_t n = strlen(l->trace);
    l->trace[n] = l->tag;
    l->trace[n + 1] = 0;
  }
}

/* ---------------------------------------------------------------- signals */

static void sig_cb(tl_loop *loop, tl_signal *w, unsigned revents) {
  struct wlog *l = w->data;
  trace(l, revents);
  if (l->stop)
    ck_assert_int_eq(tl_signal_stop(loop, w), 0);
}

START_TEST(test_signal_is_delivered_on_the_loop_thread) {
  tl_loop *loop = th_new(_i);
  struct wlog l = {.stop = 1};
  tl_signal w;
  tl_signal_init(&w, sig_cb, SIGUSR1);
  w.data = &l;
  ck_assert_int_eq(tl_signal_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(l.calls, 0);
  ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(l.calls, 1);
  ck_assert_uint_eq(l.revents, TL_SIGNAL);
  th_destroy(loop);
}
END_TEST

struct killer {
  int signum;
  double delay;
};

static void *killer_thread(void *arg) {
  struct killer *k = arg;
  th_sleep(k->delay);
  kill(getpid(), k->signum);
  return NULL;
}

START_TEST(test_signal_wakes_a_blocked_loop) {
  tl_loop *loop = th_new(_i);
  struct wlog l = {.stop = 1};
  tl_signal w;
  tl_signal_init(&w, sig_cb, SIGUSR2);
  w.data = &l;
  ck_assert_int_eq(tl_signal_start(loop, &w), 0);
  struct killer k = {SIGUSR2, 0.02};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, killer_thread, &k), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(l.calls, 1);
  th_destroy(loop);
}
END_TEST

START_TEST(test_signal_reaches_every_loop_watching_it) {
  tl_loop *a = th_new(_i), *b = th_new(_i);
  struct wlog la = {.stop = 1}, lb = {.stop = 1};
  tl_signal wa, wb;
  tl_signal_init(&wa, sig_cb, SIGUSR1);
  tl_signal_init(&wb, sig_cb, SIGUSR1);
  wa.data = &la;
  wb.data = &lb;
  ck_assert_int_eq(tl_signal_start(a, &wa), 0);
  ck_assert_int_eq(tl_signal_start(b, &wb), 0);
  ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
  ck_assert_int_eq(tl_run(a, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(tl_run(b, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(la.calls, 1);
  ck_assert_int_eq(lb.calls, 1);
  /* Stopping one loop's watcher leaves the other's in place. */
  ck_assert_int_eq(tl_signal_start(a, &wa), 0);
  ck_assert_int_eq(tl_signal_start(b, &wb), 0);
  ck_assert_int_eq(tl_signal_stop(a, &wa), 0);
  ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
  ck_assert_int_eq(tl_run(b, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(lb.calls, 2);
  ck_assert_int_eq(la.calls, 1);
  th_destroy(a);
  th_destroy(b);
}
END_TEST

START_TEST(test_signal_two_watchers_in_one_loop_both_fire) {
  tl_loop *loop = th_new(_i);
  struct wlog l1 = {.stop = 1}, l2 = {.stop = 1};
  tl_signal w1, w2;
  tl_signal_init(&w1, sig_cb, SIGUSR1);
  tl_signal_init(&w2, sig_cb, SIGUSR1);
  w1.data = &l1;
  w2.data = &l2;
  ck_assert_int_eq(tl_signal_start(loop, &w1), 0);
  ck_assert_int_eq(tl_signal_start(loop, &w2), 0);
  ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(l1.calls, 1);
  ck_assert_int_eq(l2.calls, 1);
  th_destroy(loop);
}
END_TEST

START_TEST(test_signal_bad_numbers_are_einval) {
  tl_loop *loop = th_new(_i);
  tl_signal w;
  static const int bad[] = {0, -1, SIGKILL, SIGSTOP, 65, 1000};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    tl_signal_init(&w, sig_cb, bad[k]);
    ck_assert_msg(tl_signal_start(loop, &w) == -EINVAL, "signal %d", bad[k]);
    ck_assert_int_eq(tl_is_active(&w), 0);
  }
  tl_signal_init(&w, sig_cb, SIGUSR1);
  ck_assert_int_eq(tl_signal_stop(loop, &w), -EALREADY);
  ck_assert_int_eq(tl_signal_start(loop, &w), 0);
  ck_assert_int_eq(tl_signal_start(loop, &w), -EBUSY);
  ck_assert_int_eq(tl_signal_stop(loop, &w), 0);
  th_destroy(loop);
}
END_TEST

/* --------------------------------------------------------------- children */

static void child_cb(tl_loop *loop, tl_child *w, unsigned revents) {
  struct wlog *l = w->data;
  trace(l, revents);
  ck_assert_int_eq(tl_child_stop(loop, w), 0);
}

static pid_t spawn_exit(int code) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(code);
  return pid;
}

START_TEST(test_child_exit_is_reported_with_its_status) {
  tl_loop *loop = th_new(_i);
  struct wlog l = {0};
  tl_child w;
  pid_t pid = spawn_exit(7);
  tl_child_init(&w, child_cb, pid);
  w.data = &l;
  ck_assert_int_eq(tl_child_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(l.calls, 1);
  ck_assert_uint_eq(l.revents, TL_CHILD);
  ck_assert_int_eq(w.rpid, pid);
  ck_assert(WIFEXITED(w.rstatus));
  ck_assert_int_eq(WEXITSTATUS(w.rstatus), 7);
  /* Reaped: no zombie left. */
  ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1);
  th_destroy(loop);
}
END_TEST

START_TEST(test_child_any_pid_watcher_sees_each_child) {
  tl_loop *loop = th_new(_i);
  struct wlog l1 = {0}, l2 = {0};
  tl_child w1, w2;
  /* Start watching before the children exist, so no exit is missed. */
  tl_child_init(&w1, child_cb, 0);
  w1.data = &l1;
  ck_assert_int_eq(tl_child_start(loop, &w1), 0);
  pid_t p1 = spawn_exit(3);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(l1.calls, 1);
  ck_assert_int_eq(w1.rpid, p1);
  ck_assert_int_eq(WEXITSTATUS(w1.rstatus), 3);

  tl_child_init(&w2, child_cb, 0);
  w2.data = &l2;
  ck_assert_int_eq(tl_child_start(loop, &w2), 0);
  pid_t p2 = spawn_exit(4);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(l2.calls, 1);
  ck_assert_int_eq(w2.rpid, p2);
  ck_assert_int_eq(WEXITSTATUS(w2.rstatus), 4);
  th_destroy(loop);
}
END_TEST

START_TEST(test_child_killed_by_a_signal_reports_it) {
  tl_loop *loop = th_new(_i);
  struct wlog l = {0};
  tl_child w;
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    for (;;)
      pause();
  }
  tl_child_init(&w, child_cb, pid);
  w.data = &l;
  ck_assert_int_eq(tl_child_start(loop, &w), 0);
  /* SIGKILL: the child inherits Check's SIGTERM handler, which signals the group. */
  ck_assert_int_eq(kill(pid, SIGKILL), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(l.calls, 1);
  ck_assert_int_eq(w.rpid, pid);
  ck_assert(WIFSIGNALED(w.rstatus));
  ck_assert_int_eq(WTERMSIG(w.rstatus), SIGKILL);
  th_destroy(loop);
}
END_TEST

/* ------------------------------------------------------------------ async */

struct asyncstate {
  tl_loop *loop;
  tl_async w;
  atomic_int calls;
  int stop_at;
  int n;             /* sends the thread makes */
  double delay;
};

static void async_cb(tl_loop *loop, tl_async *w, unsigned revents) {
  struct asyncstate *a = w->data;
  ck_assert_uint_eq(revents, TL_ASYNC);
  int c = atomic_fetch_add(&a->calls, 1) + 1;
  if (a->stop_at && c == a->stop_at)
    ck_assert_int_eq(tl_async_stop(loop, w), 0);
}

static void *async_sender(void *arg) {
  struct asyncstate *a = arg;
  if (a->delay > 0)
    th_sleep(a->delay);
  for (int k = 0; k < a->n; k++) {
    tl_async_send(a->loop, &a->w);
    /* Ping-pong: wait for the callback so every send counts. */
    while (a->n > 1 && atomic_load(&a->calls) <= k)
      sched_yield();
  }
  return NULL;
}

START_TEST(test_async_send_from_another_thread_wakes_the_loop) {
  tl_loop *loop = th_new(_i);
  struct asyncstate a = {.loop = loop, .stop_at = 1, .n = 1, .delay = 0.02};
  tl_async_init(&a.w, async_cb);
  a.w.data = &a;
  ck_assert_int_eq(tl_async_start(loop, &a.w), 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, async_sender, &a), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(atomic_load(&a.calls), 1);
  th_destroy(loop);
}
END_TEST

START_TEST(test_async_sends_coalesce_until_the_callback) {
  tl_loop *loop = th_new(_i);
  struct asyncstate a = {.loop = loop};
  tl_async_init(&a.w, async_cb);
  a.w.data = &a;
  ck_assert_int_eq(tl_async_start(loop, &a.w), 0);
  ck_assert_int_eq(tl_async_pending(&a.w), 0);
  for (int k = 0; k < 100; k++)
    ck_assert_int_eq(tl_async_send(loop, &a.w), 0);
  ck_assert(tl_async_pending(&a.w));
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(atomic_load(&a.calls), 1);
  ck_assert_int_eq(tl_async_pending(&a.w), 0);
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(atomic_load(&a.calls), 1);
  /* Sends from a thread coalesce the same way. */
  a.n = 1;
  a.delay = 0;
  pthread_t th[4];
  for (int k = 0; k < 4; k++)
    ck_assert_int_eq(pthread_create(&th[k], NULL, async_sender, &a), 0);
  for (int k = 0; k < 4; k++)
    pthread_join(th[k], NULL);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(atomic_load(&a.calls), 2);
  ck_assert_int_eq(tl_async_stop(loop, &a.w), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_async_every_acknowledged_send_gets_a_callback) {
  tl_loop *loop = th_new(_i);
  struct asyncstate a = {.loop = loop, .stop_at = 1000, .n = 1000};
  tl_async_init(&a.w, async_cb);
  a.w.data = &a;
  ck_assert_int_eq(tl_async_start(loop, &a.w), 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, async_sender, &a), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(atomic_load(&a.calls), 1000);
  th_destroy(loop);
}
END_TEST

/* Senders that never wait for the loop, each on its own watcher: every
 * drain of the loop's wake eventfd then races with another watcher's
 * write, and a wake-up lost there leaves the loop asleep for good (posted
 * completions and async sends then never get their callbacks).  Each
 * sender ends with one send after counting itself finished, so a callback
 * must follow the last count. */
enum { NFLOOD = 3 };
struct flood {
  tl_async w[NFLOOD];
  atomic_int finished;
  atomic_int go;
  int seen_all;
  double secs;
  tl_loop *loop;
};
struct flood_arg { struct flood *f; int k; };

static void *flood_sender(void *arg) {
  struct flood_arg *a = arg;
  struct flood *f = a->f;
  while (!atomic_load(&f->go))
    sched_yield();
  double end = th_time() + f->secs;
  while (th_time() < end)
    tl_async_send(f->loop, &f->w[a->k]);
  atomic_fetch_add(&f->finished, 1);
  tl_async_send(f->loop, &f->w[a->k]);
  return NULL;
}

static void flood_cb(tl_loop *loop, tl_async *w, unsigned revents) {
  (void)revents;
  struct flood *f = w->data;
  if (atomic_load(&f->finished) == NFLOOD) {
    f->seen_all = 1;
    for (int k = 0; k < NFLOOD; k++)
      tl_async_stop(loop, &f->w[k]);
  }
}

static int flood_stalled;
static void flood_watchdog(tl_loop *loop, tl_timer *t, unsigned revents) {
  (void)revents;
  (void)t;
  flood_stalled = 1;
  tl_break(loop);
}

START_TEST(test_async_free_running_senders_never_stall_the_loop) {
  tl_loop *loop = th_new(_i);
  static struct flood f;
  memset(&f, 0, sizeof f);
  f.secs = 0.5;
  f.loop = loop;
  for (int k = 0; k < NFLOOD; k++) {
    tl_async_init(&f.w[k], flood_cb);
    f.w[k].data = &f;
    ck_assert_int_eq(tl_async_start(loop, &f.w[k]), 0);
  }
  tl_timer dog;
  flood_stalled = 0;
  tl_timer_init(&dog, flood_watchdog, TH_CASE_TIMEOUT - 3, 0);
  ck_assert_int_eq(tl_timer_start(loop, &dog), 0);
  tl_unref(loop);   /* the watchdog alone does not keep the loop running */
  pthread_t th[NFLOOD];
  struct flood_arg args[NFLOOD];
  for (int k = 0; k < NFLOOD; k++) {
    args[k] = (struct flood_arg){ &f, k };
    ck_assert_int_eq(pthread_create(&th[k], NULL, flood_sender, &args[k]), 0);
  }
  atomic_store(&f.go, 1);
  tl_run(loop, TL_RUN_DEFAULT);
  for (int k = 0; k < NFLOOD; k++)
    pthread_join(th[k], NULL);
  ck_assert_msg(!flood_stalled, "the loop slept through async sends (a lost wake-up)");
  ck_assert_int_eq(f.seen_all, 1);
  tl_ref(loop);
  tl_timer_stop(loop, &dog);
  th_destroy(loop);
}
END_TEST

START_TEST(test_async_stopped_watcher_gets_no_callback) {
  tl_loop *loop = th_new(_i);
  struct asyncstate a = {.loop = loop};
  tl_async_init(&a.w, async_cb);
  a.w.data = &a;
  ck_assert_int_eq(tl_async_start(loop, &a.w), 0);
  ck_assert_int_eq(tl_async_send(loop, &a.w), 0);
  ck_assert_int_eq(tl_async_stop(loop, &a.w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(atomic_load(&a.calls), 0);
  ck_assert_int_eq(tl_async_stop(loop, &a.w), -EALREADY);
  th_destroy(loop);
}
END_TEST

/* ----------------------------------------------------- idle/prepare/check */

static void idle_cb(tl_loop *loop, tl_idle *w, unsigned revents) {
  struct wlog *l = w->data;
  trace(l, revents);
  ck_assert_uint_eq(revents, TL_IDLE);
  if (l->stop_at && l->calls == l->stop_at)
    ck_assert_int_eq(tl_idle_stop(loop, w), 0);
}
static void prepare_cb(tl_loop *loop, tl_prepare *w, unsigned revents) {
  (void)loop;
  trace(w->data, revents);
  ck_assert_uint_eq(revents, TL_PREPARE);
}
static void check_cb(tl_loop *loop, tl_check *w, unsigned revents) {
  (void)loop;
  trace(w->data, revents);
  ck_assert_uint_eq(revents, TL_CHECK);
}

START_TEST(test_hooks_run_prepare_then_check_then_idle) {
  tl_loop *loop = th_new(_i);
  char tr[64] = "";
  struct wlog lp = {.tag = 'P', .trace = tr}, lc = {.tag = 'C', .trace = tr},
              li = {.tag = 'I', .trace = tr};
  tl_prepare p;
  tl_check c;
  tl_idle i;
  tl_prepare_init(&p, prepare_cb);
  tl_check_init(&c, check_cb);
  tl_idle_init(&i, idle_cb);
  p.data = &lp;
  c.data = &lc;
  i.data = &li;
  ck_assert_int_eq(tl_idle_start(loop, &i), 0);
  ck_assert_int_eq(tl_check_start(loop, &c), 0);
  ck_assert_int_eq(tl_prepare_start(loop, &p), 0);
  /* The idle watcher keeps ONCE from blocking. */
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_str_eq(tr, "PCIPCI");
  ck_assert_int_eq(tl_idle_stop(loop, &i), 0);
  ck_assert_int_eq(tl_check_stop(loop, &c), 0);
  ck_assert_int_eq(tl_prepare_stop(loop, &p), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_str_eq(tr, "PCIPCI");
  th_destroy(loop);
}
END_TEST


static void check_io_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  (void)loop;
  trace(w->data, revents);
}

START_TEST(test_check_runs_before_other_callbacks_of_its_iteration) {
  tl_loop *loop = th_new(_i);
  char tr[64] = "";
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  ck_assert_int_eq(write(p[1], "x", 1), 1);   /* stays readable */
  struct wlog lc = {.tag = 'C', .trace = tr}, lr = {.tag = 'R', .trace = tr};
  tl_check c;
  tl_io io;
  tl_check_init(&c, check_cb);
  c.data = &lc;
  tl_io_init(&io, check_io_cb, p[0], TL_READ);
  io.data = &lr;
  ck_assert_int_eq(tl_io_start(loop, &io), 0);
  ck_assert_int_eq(tl_check_start(loop, &c), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  /* libev: "ev_check watchers will be invoked before any other watchers of
   * the same or lower priority within an event loop iteration". */
  ck_assert_str_eq(tr, "CRCR");
  ck_assert_int_eq(tl_check_stop(loop, &c), 0);
  ck_assert_int_eq(tl_io_stop(loop, &io), 0);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

static void drain_io_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  struct wlog *l = w->data;
  trace(l, revents);
  char buf[64];
  while (read(w->fd, buf, sizeof buf) > 0) {
  }
  (void)loop;
}

START_TEST(test_idle_waits_while_other_events_are_pending) {
  tl_loop *loop = th_new(_i);
  char tr[64] = "";
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  struct wlog lio = {.tag = 'R', .trace = tr}, li = {.tag = 'I', .trace = tr, .stop_at = 1};
  tl_io io;
  tl_idle i;
  tl_io_init(&io, drain_io_cb, p[0], TL_READ);
  io.data = &lio;
  tl_idle_init(&i, idle_cb);
  i.data = &li;
  ck_assert_int_eq(tl_io_start(loop, &io), 0);
  ck_assert_int_eq(tl_idle_start(loop, &i), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_str_eq(tr, "R");
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_str_eq(tr, "RI");
  ck_assert_int_eq(tl_io_stop(loop, &io), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

/* ------------------------------------------------------------- priorities */

static void prio_timer_cb(tl_loop *loop, tl_timer *w, unsigned revents) {
  (void)loop;
  trace(w->data, revents);
}

START_TEST(test_priorities_order_pending_callbacks) {
  tl_loop *loop = th_new(_i);
  char tr[64] = "";
  enum { N = TL_MAXPRI - TL_MINPRI + 1 };
  struct wlog l[N];
  tl_timer t[N];
  memset(l, 0, sizeof l);
  /* Started lowest priority first, all due at once: highest runs first. */
  for (int k = 0; k < N; k++) {
    l[k].tag = (char)('a' + k);   /* a = MINPRI ... e = MAXPRI */
    l[k].trace = tr;
    tl_timer_init(&t[k], prio_timer_cb, 0, 0);
    t[k].data = &l[k];
    ck_assert_int_eq(tl_set_priority(&t[k], TL_MINPRI + k), 0);
    ck_assert_int_eq(t[k].priority, TL_MINPRI + k);
    ck_assert_int_eq(tl_timer_start(loop, &t[k]), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_str_eq(tr, "edcba");
  th_destroy(loop);
}
END_TEST

static void prio_io_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  trace(w->data, revents);
  ck_assert_int_eq(tl_io_stop(loop, w), 0);
}

START_TEST(test_priorities_order_io_callbacks_on_one_fd) {
  tl_loop *loop = th_new(_i);
  char tr[64] = "";
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  static const int prio[] = {0, -2, 2, 1, -1};
  enum { N = sizeof prio / sizeof prio[0] };
  struct wlog l[N];
  tl_io w[N];
  memset(l, 0, sizeof l);
  for (int k = 0; k < N; k++) {
    l[k].tag = (char)('0' + prio[k] + 2);   /* '0' = MINPRI ... '4' = MAXPRI */
    l[k].trace = tr;
    tl_io_init(&w[k], prio_io_cb, p[0], TL_READ);
    w[k].data = &l[k];
    ck_assert_int_eq(tl_set_priority(&w[k], prio[k]), 0);
    ck_assert_int_eq(tl_io_start(loop, &w[k]), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_str_eq(tr, "43210");
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_priority_is_clamped_and_locked_while_active) {
  tl_loop *loop = th_new(_i);
  struct wlog l = {0};
  tl_timer t;
  tl_timer_init(&t, prio_timer_cb, 3600, 0);
  t.data = &l;
  ck_assert_int_eq(tl_set_priority(&t, 100), 0);
  ck_assert_int_eq(t.priority, TL_MAXPRI);
  ck_assert_int_eq(tl_set_priority(&t, -100), 0);
  ck_assert_int_eq(t.priority, TL_MINPRI);
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_int_eq(tl_set_priority(&t, 1), -EBUSY);
  ck_assert_int_eq(t.priority, TL_MINPRI);
  ck_assert_int_eq(tl_timer_stop(loop, &t), 0);
  ck_assert_int_eq(tl_set_priority(&t, 1), 0);
  ck_assert_int_eq(t.priority, 1);
  th_destroy(loop);
}
END_TEST

/* ------------------------------------------------ feed_event / pending */

static void feed_io_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  (void)loop;
  trace(w->data, revents);
}

START_TEST(test_feed_event_queues_a_callback_with_those_events) {
  tl_loop *loop = th_new(_i);
  int s[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  struct wlog l = {0};
  tl_io w;
  tl_io_init(&w, feed_io_cb, s[0], TL_READ);   /* never really readable */
  w.data = &l;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  tl_feed_event(loop, &w, TL_READ);
  ck_assert_int_eq(l.calls, 0);   /* queued, not called */
  ck_assert(tl_is_pending(&w));
  tl_feed_event(loop, &w, TL_WRITE);   /* merges into the pending one */
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(l.calls, 1);
  ck_assert_uint_eq(l.revents, TL_READ | TL_WRITE);
  ck_assert_int_eq(tl_is_pending(&w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(l.calls, 1);
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_clear_pending_returns_events_and_drops_the_callback) {
  tl_loop *loop = th_new(_i);
  struct wlog l = {0};
  tl_timer t;
  tl_timer_init(&t, prio_timer_cb, 3600, 0);
  t.data = &l;
  ck_assert_int_eq(tl_timer_start(loop, &t), 0);
  ck_assert_uint_eq(tl_clear_pending(loop, &t), 0);
  tl_feed_event(loop, &t, TL_TIMER);
  ck_assert(tl_is_pending(&t));
  ck_assert_uint_eq(tl_clear_pending(loop, &t), TL_TIMER);
  ck_assert_int_eq(tl_is_pending(&t), 0);
  ck_assert_uint_eq(tl_clear_pending(loop, &t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(l.calls, 0);
  ck_assert_int_eq(tl_is_active(&t), 1);
  /* Stopping a pending watcher clears it as well. */
  tl_feed_event(loop, &t, TL_TIMER);
  ck_assert_int_eq(tl_timer_stop(loop, &t), 0);
  ck_assert_int_eq(tl_is_pending(&t), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(l.calls, 0);
  th_destroy(loop);
}
END_TEST

struct feeder {
  struct wlog l;
  tl_timer *target;
};

static void feeder_cb(tl_loop *loop, tl_idle *w, unsigned revents) {
  struct feeder *f = w->data;
  trace(&f->l, revents);
  tl_feed_event(loop, f->target, TL_TIMER);
  ck_assert_int_eq(tl_idle_stop(loop, w), 0);
}

START_TEST(test_feed_event_from_a_callback_runs_in_the_same_iteration) {
  tl_loop *loop = th_new(_i);
  char tr[16] = "";
  struct feeder f = {.l = {.tag = 'a', .trace = tr}};
  struct wlog lb = {.tag = 'b', .trace = tr};
  tl_idle a;
  tl_timer b;
  tl_timer_init(&b, prio_timer_cb, 3600, 0);
  b.data = &lb;
  f.target = &b;
  tl_idle_init(&a, feeder_cb);
  a.data = &f;
  ck_assert_int_eq(tl_timer_start(loop, &b), 0);
  ck_assert_int_eq(tl_idle_start(loop, &a), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_str_eq(tr, "ab");
  ck_assert_uint_eq(lb.revents, TL_TIMER);
  ck_assert_int_eq(tl_timer_stop(loop, &b), 0);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_signal_is_delivered_on_the_loop_thread);
  TH_ADD(tc, test_signal_wakes_a_blocked_loop);
  TH_ADD(tc, test_signal_reaches_every_loop_watching_it);
  TH_ADD(tc, test_signal_two_watchers_in_one_loop_both_fire);
  TH_ADD(tc, test_signal_bad_numbers_are_einval);
  TH_ADD(tc, test_child_exit_is_reported_with_its_status);
  TH_ADD(tc, test_child_any_pid_watcher_sees_each_child);
  TH_ADD(tc, test_child_killed_by_a_signal_reports_it);
  TH_ADD(tc, test_async_send_from_another_thread_wakes_the_loop);
  TH_ADD(tc, test_async_sends_coalesce_until_the_callback);
  TH_ADD(tc, test_async_every_acknowledged_send_gets_a_callback);
  TH_ADD(tc, test_async_stopped_watcher_gets_no_callback);
  TH_ADD(tc, test_async_free_running_senders_never_stall_the_loop);
  TH_ADD(tc, test_hooks_run_prepare_then_check_then_idle);
  TH_ADD(tc, test_check_runs_before_other_callbacks_of_its_iteration);
  TH_ADD(tc, test_idle_waits_while_other_events_are_pending);
  TH_ADD(tc, test_priorities_order_pending_callbacks);
  TH_ADD(tc, test_priorities_order_io_callbacks_on_one_fd);
  TH_ADD(tc, test_priority_is_clamped_and_locked_while_active);
  TH_ADD(tc, test_feed_event_queues_a_callback_with_those_events);
  TH_ADD(tc, test_clear_pending_returns_events_and_drops_the_callback);
  TH_ADD(tc, test_feed_event_from_a_callback_runs_in_the_same_iteration);
}

int main(void) { return th_main("watchers", add); }
