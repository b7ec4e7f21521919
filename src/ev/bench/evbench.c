/*
 * Micro-benchmarks for libtriloop-ev against libev: the same source is
 * linked to each library (src/ev/bench/run.sh runs both and prints ratios).
 *   evbench timer  - start/stop churn over 10000 timers, one NOWAIT run per 1000 ops
 *   evbench io     - io watcher stop/set/start churn over 64 socketpairs, a run per round
 *   evbench async  - ping-pong of ev_async_send between two loops in two threads
 *   evbench echo   - 64-byte echo over 32 TCP loopback connections, one loop
 *   evbench io-same - like io, but ev_io_set keeps the events (the "fd may be
 *                    a new file" path: libev re-registers, so must we)
 *   evbench echo-server [C]     - echo server in its own process: prints
 *                    "port <n>", serves until its C clients hang up, prints
 *                    "echo-server <msgs> <cpu ns per msg> <backend>" (cpu: user+sys,
 *                    all threads)
 *   evbench echo-client PORT [N] [C] - the load side: C connections, N round
 *                    trips in all, prints "echo-client <round trips/s>"
 * Prints "<name> <ops per second> <cpu ns per op>".
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* user+sys seconds of the whole process (every thread) */
static double cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
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

static double bench_io(struct ev_loop *loop, long n, int same) {
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
      ev_io_set(&w[i], sv[i][0], (r & 1) || same ? EV_READ : EV_READ | EV_WRITE);
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

/* The split echo: the server is the program under test, alone in its
 * process, so its CPU per message says what the loop costs even when the
 * client (the same for every server) is what limits the rate. */
static long srv_msgs;
static int srv_live;
static void srv_cb(EV_P_ ev_io *w, int r) {
  (void)r;
  struct conn *c = (struct conn *)w;
  char buf[64];
  ssize_t k = read(c->fd, buf, sizeof buf);
  if (k <= 0) {
    ev_io_stop(loop, w);
    close(c->fd);
    if (--srv_live == 0)
      ev_break(loop, EVBREAK_ALL);
    return;
  }
  srv_msgs++;
  if (write(c->fd, buf, (size_t)k) != k)
    abort();
}

static struct conn *srv_conns;
static int srv_want, srv_accepted;
static void accept_cb(EV_P_ ev_io *w, int r) {
  (void)r;
  int fd = accept(w->fd, NULL, NULL);
  if (fd < 0)
    return;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct conn *c = &srv_conns[srv_accepted++];
  c->fd = fd;
  c->left = -1;
  srv_live++;
  ev_io_init(&c->io, srv_cb, fd, EV_READ);
  ev_io_start(loop, &c->io);
  if (srv_accepted == srv_want)
    ev_io_stop(loop, w);
}

static int echo_server(struct ev_loop *loop, int nconn) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t sl = sizeof sa;
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, nconn) < 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &sl) < 0)
    abort();
  srv_want = nconn;
  srv_conns = calloc((size_t)nconn, sizeof *srv_conns);
  ev_io lw;
  ev_io_init(&lw, accept_cb, ls, EV_READ);
  ev_io_start(loop, &lw);
  printf("port %d\n", ntohs(sa.sin_port));
  fflush(stdout);
  double c0 = cpu();
  ev_run(loop, 0);
  double c1 = cpu();
  close(ls);
  printf("echo-server %ld %.0f %s\n", srv_msgs, srv_msgs ? (c1 - c0) * 1e9 / srv_msgs : 0.,
         ev_backend(loop) == EVBACKEND_IOURING ? "iouring" : ev_backend(loop) == EVBACKEND_EPOLL ? "epoll" : "other");
  return 0;
}

static int echo_client(struct ev_loop *loop, int port, long n, int nconn) {
  struct conn *cl = calloc((size_t)nconn, sizeof *cl);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((unsigned short)port) };
  char msg[64];
  memset(msg, 'e', sizeof msg);
  for (int i = 0; i < nconn; i++) {
    int one = 1;
    cl[i].fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cl[i].fd, (struct sockaddr *)&sa, sizeof sa) < 0)
      abort();
    setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    cl[i].left = n / nconn;
    ev_io_init(&cl[i].io, echo_cb, cl[i].fd, EV_READ);
    ev_io_start(loop, &cl[i].io);
  }
  double t0 = now();
  for (int i = 0; i < nconn; i++)
    if (write(cl[i].fd, msg, sizeof msg) != sizeof msg)
      abort();
  ev_run(loop, 0);
  double dt = now() - t0;
  for (int i = 0; i < nconn; i++)
    close(cl[i].fd);
  printf("echo-client %.0f %ld\n", echo_done / dt, echo_done);
  return echo_done == n / nconn * nconn ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "timer";
  long n = argc > 2 ? atol(argv[2]) : 0;
  struct ev_loop *loop = ev_default_loop(0);
  if (!loop)
    return 77;
  if (!strcmp(what, "echo-server"))
    return echo_server(loop, n > 0 ? (int)n : 32);
  if (!strcmp(what, "echo-client")) {
    long rt = argc > 3 ? atol(argv[3]) : 400000;
    int c = argc > 4 ? atoi(argv[4]) : 32;
    return echo_client(loop, (int)n, rt, c);
  }
  double r, c0 = cpu();
  long ops;
  if (!strcmp(what, "timer"))
    r = bench_timer(loop, ops = n ? n : 3000000);
  else if (!strcmp(what, "io"))
    r = bench_io(loop, ops = n ? n : 2000000, 0);
  else if (!strcmp(what, "io-same"))
    r = bench_io(loop, ops = n ? n : 2000000, 1);
  else if (!strcmp(what, "async"))
    r = bench_async(ops = n ? n : 100000);
  else if (!strcmp(what, "echo"))
    r = bench_echo(loop, ops = n ? n : 400000);
  else
    return 2;
  printf("%s %.0f %.0f\n", what, r, (cpu() - c0) * 1e9 / ops);
  return 0;
}
