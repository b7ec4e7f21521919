/*
 * Micro-benchmarks for libtriloop-ev against libev: the same source is
 * linked to each library (src/ev/bench/run.sh runs both and prints ratios).
 *   evbench timer  - start/stop churn over 10000 timers, one NOWAIT run per 1000 ops
 *   evbench io     - io watcher stop/set/start churn over 64 socketpairs, a run per round
 *   evbench async  - ping-pong of ev_async_send between two loops in two threads
 *   evbench echo   - 64-byte echo over 32 TCP loopback connections, one loop
 * Prints "<name> <ops per second>".
 */
#include <ev.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nop_timer(EV_P_ ev_timer *w, int r) { (void)loop; (void)w; (void)r; }
static void nop_io(EV_P_ ev_io *w, int r) { (void)loop; (void)w; (void)r; }

static double bench_timer(struct ev_loop *loop, long n) {
  enum { T = 10000 };
  static ev_timer t[T];
  for (int i = 0; i < T; i++) {
    ev_timer_init(&t[i], nop_timer, 10. + (i * 7919 % 1000) * 0.01, 0.);
    ev_timer_start(loop, &t[i]);
  }
  double t0 = now();
  unsigned x = 1;
  for (long i = 0; i < n; i++) {
    ev_timer *w = &t[i % T];
    ev_timer_stop(loop, w);
    x = x * 1103515245u + 12345u;
    ev_timer_set(w, 10. + (x >> 16) % 1000 * 0.01, 0.);
    ev_timer_start(loop, w);
    if (i % 1000 == 0)
      ev_run(loop, EVRUN_NOWAIT);
  }
  double dt = now() - t0;
  for (int i = 0; i < T; i++)
    ev_timer_stop(loop, &t[i]);
  return n / dt;
}

static double bench_io(struct ev_loop *loop, long n) {
  enum { S = 64 };
  static ev_io w[S];
  int sv[S][2];
  for (int i = 0; i < S; i++) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]) < 0)
      abort();
    ev_io_init(&w[i], nop_io, sv[i][0], EV_READ);
    ev_io_start(loop, &w[i]);
  }
  ev_run(loop, EVRUN_NOWAIT);
  double t0 = now();
  long ops = 0;
  for (long r = 0; ops < n; r++) {
    for (int i = 0; i < S; i++, ops++) {
      ev_io_stop(loop, &w[i]);
      ev_io_set(&w[i], sv[i][0], (r & 1) ? EV_READ : EV_READ | EV_WRITE);
      ev_io_start(loop, &w[i]);
    }
    ev_run(loop, EVRUN_NOWAIT);
  }
  double dt = now() - t0;
  for (int i = 0; i < S; i++) {
    ev_io_stop(loop, &w[i]);
    close(sv[i][0]);
    close(sv[i][1]);
  }
  ev_run(loop, EVRUN_NOWAIT);
  return ops / dt;
}

struct side {
  struct ev_loop *loop;
  ev_async in;
  struct side *peer;
  long left;
};

static void pong(EV_P_ ev_async *w, int r) {
  (void)r;
  struct side *s = (struct side *)((char *)w - offsetof(struct side, in));
  if (s->left-- <= 0) {
    ev_async_stop(loop, w);
    ev_async_send(s->peer->loop, &s->peer->in);
    return;
  }
  ev_async_send(s->peer->loop, &s->peer->in);
}

static void *run_side(void *arg) {
  struct side *s = arg;
  ev_run(s->loop, 0);
  return NULL;
}

static double bench_async(long n) {
  struct side a = { .loop = ev_loop_new(0) }, b = { .loop = ev_loop_new(0) };
  a.peer = &b; b.peer = &a;
  a.left = b.left = n;
  ev_async_init(&a.in, pong); ev_async_start(a.loop, &a.in);
  ev_async_init(&b.in, pong); ev_async_start(b.loop, &b.in);
  pthread_t th;
  double t0 = now();
  pthread_create(&th, NULL, run_side, &b);
  ev_async_send(a.loop, &a.in);
  ev_run(a.loop, 0);
  /* b may still wait for its last message */
  ev_async_send(b.loop, &b.in);
  pthread_join(th, NULL);
  double dt = now() - t0;
  ev_loop_destroy(a.loop);
  ev_loop_destroy(b.loop);
  return n / dt;
}

struct conn {
  ev_io io;
  int fd;
  long left;   /* client side: round trips to go; -1 on the server side */
};

static long echo_done;
static void echo_cb(EV_P_ ev_io *w, int r) {
  (void)r;
  struct conn *c = (struct conn *)w;
  char buf[64];
  ssize_t k = read(c->fd, buf, sizeof buf);
  if (k <= 0) {
    ev_io_stop(loop, w);
    return;
  }
  if (c->left < 0) {
    if (write(c->fd, buf, (size_t)k) != k)
      abort();
    return;
  }
  echo_done++;
  if (--c->left == 0) {
    ev_io_stop(loop, w);
    shutdown(c->fd, SHUT_WR);
    return;
  }
  if (write(c->fd, buf, (size_t)k) != k)
    abort();
}

static double bench_echo(struct ev_loop *loop, long n) {
  enum { C = 32 };
  static struct conn cl[C], sv[C];
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t sl = sizeof sa;
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, C) < 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &sl) < 0)
    abort();
  char msg[64];
  memset(msg, 'e', sizeof msg);
  for (int i = 0; i < C; i++) {
    int one = 1;
    cl[i].fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cl[i].fd, (struct sockaddr *)&sa, sizeof sa) < 0)
      abort();
    sv[i].fd = accept(ls, NULL, NULL);
    setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sv[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    cl[i].left = n / C;
    sv[i].left = -1;
    ev_io_init(&cl[i].io, echo_cb, cl[i].fd, EV_READ);
    ev_io_init(&sv[i].io, echo_cb, sv[i].fd, EV_READ);
    ev_io_start(loop, &cl[i].io);
    ev_io_start(loop, &sv[i].io);
  }
  double t0 = now();
  for (int i = 0; i < C; i++)
    if (write(cl[i].fd, msg, sizeof msg) != sizeof msg)
      abort();
  ev_run(loop, 0);
  double dt = now() - t0;
  for (int i = 0; i < C; i++) {
    close(cl[i].fd);
    close(sv[i].fd);
  }
  close(ls);
  return echo_done / dt;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "timer";
  long n = argc > 2 ? atol(argv[2]) : 0;
  struct ev_loop *loop = ev_default_loop(0);
  if (!loop)
    return 77;
  double r;
  if (!strcmp(what, "timer"))
    r = bench_timer(loop, n ? n : 3000000);
  else if (!strcmp(what, "io"))
    r = bench_io(loop, n ? n : 2000000);
  else if (!strcmp(what, "async"))
    r = bench_async(n ? n : 100000);
  else if (!strcmp(what, "echo"))
    r = bench_echo(loop, n ? n : 400000);
  else
    return 2;
  printf("%s %.0f\n", what, r);
  return 0;
}
