/*
 * loop_overhead: what the loop itself costs, one result line per workload.
 * Backend from TRILOOP_BACKEND; --impl libev-epoll|libev-iouring runs the
 * workloads libev has the same shape for (idle_iter, start_poll_stop,
 * timer_churn, io_churn) on real libev instead, as the reference column.
 *
 *   timer_churn      start N timers (spread deadlines, none fires), stop
 *                    them all; op = one start + one stop
 *   io_churn         K read watchers on idle sockets: start all, one
 *                    nonblocking iteration, stop all, one iteration; op =
 *                    one start + one stop, with the kernel registration
 *                    each implies (iterations amortized over K)
 *   async            another thread (pinned to the other cpu) sends, waits
 *                    until the loop's callback ran, sends again; op = one
 *                    wakeup delivered (triloop only)
 *   idle_iter        one idle watcher; op = one loop iteration
 *   start_poll_stop  io watcher start + one TL_RUN_NOWAIT iteration + stop
 *
 * Each line: workload=.. impl=.. backend=.. ops=.. secs=.. ops_per_s=..
 * cpu_us_per_op=.. ns_per_op=.. syscalls_per_op=.. (triloop's counters).
 */
#include "sock_common.h"

#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "triloop.h"

static const char *prog = "loop_overhead";
static double secs = 0.5;
static long ntimers = 1000, nfds = 100;
static const char *impl = "triloop";
static char bname[16] = "-";
static int cpu = 0;

static void report(const char *wl, uint64_t ops, double el, double cpu_s, const char *sper, const char *extra)
{
  printf("workload=%s impl=%s backend=%s ops=%llu secs=%.3f ops_per_s=%.0f cpu_us_per_op=%.4f "
         "ns_per_op=%.1f syscalls_per_op=%s%s%s\n",
         wl, impl, bname, (unsigned long long)ops, el, ops ? (double)ops / el : 0.0,
         ops ? cpu_s * 1e6 / (double)ops : 0.0, ops ? el * 1e9 / (double)ops : 0.0, sper,
         extra ? " " : "", extra ? extra : "");
  fflush(stdout);
}

static void per_op(char *out, size_t n, const struct tl_loop_stats *a, const struct tl_loop_stats *b, uint64_t ops)
{
  if (ops)
    snprintf(out, n, "%.4f", (double)(b->syscalls - a->syscalls) / (double)ops);
  else
    snprintf(out, n, "-");
}

static int *make_sockets(long n)
{
  int *fds = malloc(sizeof(int) * (size_t)n * 2);
  if (!fds)
    sb_die(prog, "out of memory");
  for (long i = 0; i < n; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
      sb_die(prog, "socketpair: %s", strerror(errno));
    fds[2 * i] = sv[0];
    fds[2 * i + 1] = sv[1];
  }
  return fds;
}

static void close_sockets(int *fds, long n)
{
  for (long i = 0; i < 2 * n; i++)
    close(fds[i]);
  free(fds);
}

/* ---------------------------------------------------------------- triloop */

static void timer_cb(tl_loop *l, tl_timer *w, unsigned ev) { }
static void io_cb(tl_loop *l, tl_io *w, unsigned ev) { }

static void tl_timer_churn(tl_loop *loop)
{
  tl_timer *t = calloc((size_t)ntimers, sizeof *t);
  if (!t)
    sb_die(prog, "out of memory");
  for (long i = 0; i < ntimers; i++)
    tl_timer_init(&t[i], timer_cb, 100.0 + (double)((i * 7919) % ntimers) * 1e-3, 0);
  struct tl_loop_stats a, b;
  tl_loop_stats(loop, &a);
  uint64_t ops = 0;
  double t0 = sb_now(), c0 = sb_cpu(RUSAGE_THREAD), now;
  do {
    for (long i = 0; i < ntimers; i++)
      if (tl_timer_start(loop, &t[i]) < 0)
        sb_die(prog, "tl_timer_start failed");
    for (long i = 0; i < ntimers; i++)
      tl_timer_stop(loop, &t[i]);
    ops += (uint64_t)ntimers;
  } while ((now = sb_now()) - t0 < secs);
  double c1 = sb_cpu(RUSAGE_THREAD);
  tl_loop_stats(loop, &b);
  char sper[32], extra[32];
  per_op(sper, sizeof sper, &a, &b, ops);
  snprintf(extra, sizeof extra, "timers=%ld", ntimers);
  report("timer_churn", ops, now - t0, c1 - c0, sper, extra);
  free(t);
}

static void tl_io_churn(tl_loop *loop)
{
  int *fds = make_sockets(nfds);
  tl_io *w = calloc((size_t)nfds, sizeof *w);
  if (!w)
    sb_die(prog, "out of memory");
  for (long i = 0; i < nfds; i++)
    tl_io_init(&w[i], io_cb, fds[2 * i], TL_READ);
  struct tl_loop_stats a, b;
  tl_loop_stats(loop, &a);
  uint64_t ops = 0;
  double t0 = sb_now(), c0 = sb_cpu(RUSAGE_THREAD), now;
  do {
    for (long i = 0; i < nfds; i++)
      if (tl_io_start(loop, &w[i]) < 0)
        sb_die(prog, "tl_io_start failed");
    tl_run(loop, TL_RUN_NOWAIT);
    for (long i = 0; i < nfds; i++)
      tl_io_stop(loop, &w[i]);
    tl_run(loop, TL_RUN_NOWAIT);
    ops += (uint64_t)nfds;
  } while ((now = sb_now()) - t0 < secs);
  double c1 = sb_cpu(RUSAGE_THREAD);
  tl_loop_stats(loop, &b);
  char sper[32], extra[32];
  per_op(sper, sizeof sper, &a, &b, ops);
  snprintf(extra, sizeof extra, "fds=%ld", nfds);
  report("io_churn", ops, now - t0, c1 - c0, sper, extra);
  free(w);
  close_sockets(fds, nfds);
}

static void tl_start_poll_stop(tl_loop *loop)
{
  int *fds = make_sockets(1);
  tl_io w;
  tl_io_init(&w, io_cb, fds[0], TL_READ);
  struct tl_loop_stats a, b;
  tl_loop_stats(loop, &a);
  uint64_t ops = 0;
  double t0 = sb_now(), c0 = sb_cpu(RUSAGE_THREAD), now;
  do {
    for (int i = 0; i < 256; i++) {
      tl_io_start(loop, &w);
      tl_run(loop, TL_RUN_NOWAIT);
      tl_io_stop(loop, &w);
    }
    ops += 256;
  } while ((now = sb_now()) - t0 < secs);
  double c1 = sb_cpu(RUSAGE_THREAD);
  tl_loop_stats(loop, &b);
  char sper[32];
  per_op(sper, sizeof sper, &a, &b, ops);
  report("start_poll_stop", ops, now - t0, c1 - c0, sper, NULL);
  tl_run(loop, TL_RUN_NOWAIT);
  close_sockets(fds, 1);
}

static uint64_t idle_count;
static double idle_t0;

static void idle_cb(tl_loop *loop, tl_idle *w, unsigned ev)
{
  if ((++idle_count & 1023) == 0 && sb_now() - idle_t0 >= secs)
    tl_break(loop);
}

static void tl_idle_iter(tl_loop *loop)
{
  tl_idle w;
  tl_idle_init(&w, idle_cb);
  tl_idle_start(loop, &w);
  struct tl_loop_stats a, b;
  tl_loop_stats(loop, &a);
  idle_count = 0;
  idle_t0 = sb_now();
  double c0 = sb_cpu(RUSAGE_THREAD);
  tl_run(loop, TL_RUN_DEFAULT);
  double now = sb_now(), c1 = sb_cpu(RUSAGE_THREAD);
  tl_loop_stats(loop, &b);
  tl_idle_stop(loop, &w);
  uint64_t iters = b.iterations - a.iterations;
  char sper[32], extra[64];
  per_op(sper, sizeof sper, &a, &b, idle_count);
  snprintf(extra, sizeof extra, "iterations_per_op=%.3f", idle_count ? (double)iters / (double)idle_count : 0.0);
  report("idle_iter", idle_count, now - idle_t0, c1 - c0, sper, extra);
}

struct async_ctx {
  tl_loop *loop;
  tl_async w;
  atomic_ulong handled;
  atomic_int done;
  int sender_cpu;
};

static void async_cb(tl_loop *loop, tl_async *w, unsigned ev)
{
  struct async_ctx *ax = w->data;
  atomic_fetch_add_explicit(&ax->handled, 1, memory_order_release);
  if (atomic_load_explicit(&ax->done, memory_order_acquire))
    tl_break(loop);
}

static void *async_sender(void *arg)
{
  struct async_ctx *ax = arg;
  if (ax->sender_cpu >= 0)
    sb_pin(ax->sender_cpu);
  double t0 = sb_now(), end = t0 + secs;
  unsigned spins = 0;
  while (sb_now() < end) {
    unsigned long seen = atomic_load_explicit(&ax->handled, memory_order_acquire);
    tl_async_send(ax->loop, &ax->w);
    while (atomic_load_explicit(&ax->handled, memory_order_acquire) == seen) {
      if (++spins % 4096 == 0) {
        if (sb_now() > end + 5.0) {
          fprintf(stderr, "%s: async: a wakeup got lost (no callback in 5 s)\n", prog);
          break;
        }
        sched_yield();
      }
    }
  }
  atomic_store_explicit(&ax->done, 1, memory_order_release);
  tl_async_send(ax->loop, &ax->w);
  return NULL;
}

static void tl_async_bench(tl_loop *loop)
{
  struct async_ctx ax;
  memset(&ax, 0, sizeof ax);
  ax.loop = loop;
  atomic_init(&ax.handled, 0);
  atomic_init(&ax.done, 0);
  ax.sender_cpu = cpu < 0 ? -1 : cpu + 1;
  tl_async_init(&ax.w, async_cb);
  ax.w.data = &ax;
  if (tl_async_start(loop, &ax.w) < 0)
    sb_die(prog, "tl_async_start failed");
  struct tl_loop_stats a, b;
  tl_loop_stats(loop, &a);
  double t0 = sb_now(), c0 = sb_cpu(RUSAGE_THREAD);
  pthread_t tid;
  if (pthread_create(&tid, NULL, async_sender, &ax) != 0)
    sb_die(prog, "pthread_create: %s", strerror(errno));
  while (!atomic_load(&ax.done) && tl_run(loop, TL_RUN_DEFAULT) > 0)
    ;
  double now = sb_now(), c1 = sb_cpu(RUSAGE_THREAD);
  pthread_join(tid, NULL);
  tl_loop_stats(loop, &b);
  tl_async_stop(loop, &ax.w);
  uint64_t ops = atomic_load(&ax.handled);
  char sper[32];
  per_op(sper, sizeof sper, &a, &b, ops);
  report("async", ops, now - t0, c1 - c0, sper, "cpu=loop_thread");
}

/* ------------------------------------------------------------------ libev */

static void ev_idle_cb(struct ev_loop *loop, ev_idle *w, int ev)
{
  if ((++idle_count & 1023) == 0 && sb_now() - idle_t0 >= secs)
    ev_break(loop, EVBREAK_ALL);
}

static void ev_io_cb(struct ev_loop *loop, ev_io *w, int ev) { }
static void ev_timer_cb(struct ev_loop *loop, ev_timer *w, int ev) { }

static void ev_idle_iter(struct ev_loop *loop)
{
  ev_idle w;
  ev_idle_init(&w, ev_idle_cb);
  ev_idle_start(loop, &w);
  idle_count = 0;
  unsigned i0 = ev_iteration(loop);
  idle_t0 = sb_now();
  double c0 = sb_cpu(RUSAGE_THREAD);
  ev_run(loop, 0);
  double now = sb_now(), c1 = sb_cpu(RUSAGE_THREAD);
  ev_idle_stop(loop, &w);
  char extra[64];
  snprintf(extra, sizeof extra, "iterations_per_op=%.3f",
           idle_count ? (double)(ev_iteration(loop) - i0) / (double)idle_count : 0.0);
  report("idle_iter", idle_count, now - idle_t0, c1 - c0, "-", extra);
}

static void ev_start_poll_stop(struct ev_loop *loop)
{
  int *fds = make_sockets(1);
  ev_io w;
  ev_io_init(&w, ev_io_cb, fds[0], EV_READ);
  uint64_t ops = 0;
  double t0 = sb_now(), c0 = sb_cpu(RUSAGE_THREAD), now;
  do {
    for (int i = 0; i < 256; i++) {
      ev_io_start(loop, &w);
      ev_run(loop, EVRUN_NOWAIT);
      ev_io_stop(loop, &w);
    }
    ops += 256;
  } while ((now = sb_now()) - t0 < secs);
  double c1 = sb_cpu(RUSAGE_THREAD);
  report("start_poll_stop", ops, now - t0, c1 - c0, "-", NULL);
  ev_run(loop, EVRUN_NOWAIT);
  close_sockets(fds, 1);
}

static void ev_timer_churn(struct ev_loop *loop)
{
  ev_timer *t = calloc((size_t)ntimers, sizeof *t);
  if (!t)
    sb_die(prog, "out of memory");
  for (long i = 0; i < ntimers; i++)
    ev_timer_init(&t[i], ev_timer_cb, 100.0 + (double)((i * 7919) % ntimers) * 1e-3, 0);
  uint64_t ops = 0;
  double t0 = sb_now(), c0 = sb_cpu(RUSAGE_THREAD), now;
  do {
    for (long i = 0; i < ntimers; i++)
      ev_timer_start(loop, &t[i]);
    for (long i = 0; i < ntimers; i++)
      ev_timer_stop(loop, &t[i]);
    ops += (uint64_t)ntimers;
  } while ((now = sb_now()) - t0 < secs);
  double c1 = sb_cpu(RUSAGE_THREAD);
  char extra[32];
  snprintf(extra, sizeof extra, "timers=%ld", ntimers);
  report("timer_churn", ops, now - t0, c1 - c0, "-", extra);
  free(t);
}

static void ev_io_churn(struct ev_loop *loop)
{
  int *fds = make_sockets(nfds);
  ev_io *w = calloc((size_t)nfds, sizeof *w);
  if (!w)
    sb_die(prog, "out of memory");
  for (long i = 0; i < nfds; i++)
    ev_io_init(&w[i], ev_io_cb, fds[2 * i], EV_READ);
  uint64_t ops = 0;
  double t0 = sb_now(), c0 = sb_cpu(RUSAGE_THREAD), now;
  do {
    for (long i = 0; i < nfds; i++)
      ev_io_start(loop, &w[i]);
    ev_run(loop, EVRUN_NOWAIT);
    for (long i = 0; i < nfds; i++)
      ev_io_stop(loop, &w[i]);
    ev_run(loop, EVRUN_NOWAIT);
    ops += (uint64_t)nfds;
  } while ((now = sb_now()) - t0 < secs);
  double c1 = sb_cpu(RUSAGE_THREAD);
  char extra[32];
  snprintf(extra, sizeof extra, "fds=%ld", nfds);
  report("io_churn", ops, now - t0, c1 - c0, "-", extra);
  free(w);
  close_sockets(fds, nfds);
}

/* ------------------------------------------------------------------- main */

static const char *all_workloads = "timer_churn,io_churn,async,idle_iter,start_poll_stop";

int main(int argc, char **argv)
{
  const char *wls = all_workloads;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--secs")) { secs = sb_parse_double(prog, a, v, 0.01, 3600); i++; }
    else if (!strcmp(a, "--timers")) { ntimers = sb_parse_long(prog, a, v, 1, 10000000); i++; }
    else if (!strcmp(a, "--fds")) { nfds = sb_parse_long(prog, a, v, 1, 10000); i++; }
    else if (!strcmp(a, "--cpu")) { cpu = (int)sb_parse_long(prog, a, v, -1, 4096); i++; }
    else if (!strcmp(a, "--workloads")) { wls = v; i++; if (!v) sb_die(prog, "--workloads needs a list"); }
    else if (!strcmp(a, "--impl")) {
      impl = v; i++;
      if (!v || (strcmp(v, "triloop") && strcmp(v, "libev-epoll") && strcmp(v, "libev-iouring")))
        sb_die(prog, "--impl must be triloop, libev-epoll or libev-iouring, got '%s'", v ? v : "(nothing)");
    } else {
      fprintf(stderr, "usage: %s [--secs S] [--workloads %s] [--timers N] [--fds N] [--cpu N|-1]\n"
                      "          [--impl triloop|libev-epoll|libev-iouring]\n", prog, all_workloads);
      sb_die(prog, "unknown option '%s'", a);
    }
  }
  /* Check the whole list before running anything. */
  char *list = strdup(wls), *save = NULL;
  int n = 0;
  const char *picked[16];
  for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    static const char *const known[] = { "timer_churn", "io_churn", "async", "idle_iter", "start_poll_stop" };
    int ok = 0;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
      ok |= !strcmp(known[k], t);
    if (!ok)
      sb_die(prog, "unknown workload '%s' (known: %s)", t, all_workloads);
    if (n < 16)
      picked[n++] = t;
  }
  if (!n)
    sb_die(prog, "no workloads given");
  signal(SIGPIPE, SIG_IGN);
  int c = sb_pin(cpu);
  fprintf(stderr, "%s: %s%d\n", prog, c >= 0 ? "pinned to cpu " : "not pinned", c >= 0 ? c : 0);

  if (!strcmp(impl, "triloop")) {
    tl_loop *loop;
    int r = tl_loop_new(&loop, 0);
    if (r < 0)
      sb_die(prog, "tl_loop_new: %s", tl_strerror(r));
    snprintf(bname, sizeof bname, "%s", tl_backend_name(loop));
    fprintf(stderr, "%s: triloop backend %s\n", prog, bname);
    for (int i = 0; i < n; i++) {
      if (!strcmp(picked[i], "timer_churn")) tl_timer_churn(loop);
      else if (!strcmp(picked[i], "io_churn")) tl_io_churn(loop);
      else if (!strcmp(picked[i], "async")) tl_async_bench(loop);
      else if (!strcmp(picked[i], "idle_iter")) tl_idle_iter(loop);
      else if (!strcmp(picked[i], "start_poll_stop")) tl_start_poll_stop(loop);
    }
    r = tl_loop_destroy(loop);
    if (r < 0)
      sb_die(prog, "tl_loop_destroy: %s", tl_strerror(r));
  } else {
    unsigned want = !strcmp(impl, "libev-epoll") ? EVBACKEND_EPOLL : EVBACKEND_IOURING;
    struct ev_loop *loop = ev_loop_new(want | EVFLAG_NOENV);
    if (!loop || ev_backend(loop) != want)
      sb_die(prog, "libev refused backend %s", impl);
    snprintf(bname, sizeof bname, "-");
    for (int i = 0; i < n; i++) {
      if (!strcmp(picked[i], "timer_churn")) ev_timer_churn(loop);
      else if (!strcmp(picked[i], "io_churn") && want == EVBACKEND_IOURING)
        /* libev 4.33 aborts here: "io_uring_enter did not consume all sqes" */
        fprintf(stderr, "%s: io_churn: skipped on libev-iouring (libev 4.33 asserts in iouring_enter)\n", prog);
      else if (!strcmp(picked[i], "io_churn")) ev_io_churn(loop);
      else if (!strcmp(picked[i], "idle_iter")) ev_idle_iter(loop);
      else if (!strcmp(picked[i], "start_poll_stop")) ev_start_poll_stop(loop);
      else fprintf(stderr, "%s: %s: no libev version, skipped\n", prog, picked[i]);
    }
    ev_loop_destroy(loop);
  }
  free(list);
  return 0;
}
