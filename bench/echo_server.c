/*
 * echo_server: the echo protocol on triloop's completion ops, on whatever
 * backend TRILOOP_BACKEND names (uring, epoll, threadpool; auto if unset).
 *
 * Per connection one tl_op that alternates: tl_recv into the connection's
 * buffer, tl_send of what came in (again for the rest after a short send),
 * tl_recv again.  Accepts go through tl_accept, one op in flight per loop.
 *
 *   --multishot one tl_recv_multishot per connection into a per-loop
 *               tl_bufring (--ring-bufs buffers of --bufsize bytes, default
 *               1024 x 4 KiB) and a tl_send straight from the buffer that
 *               came in, recycled when the send completes (PITFALLS 7's
 *               last step: no recv submit per message, no copy).
 *   --loops N   N threads, each with its own loop and its own listening
 *               socket on the same port (SO_REUSEPORT: the kernel spreads
 *               new connections over them).  Thread i is pinned to cpu
 *               (--cpu + i) modulo the cpus available; --cpu -1: no pinning.
 *
 * SIGTERM/SIGINT stop it cleanly: the main thread waits for the signal
 * (blocked in every thread) and wakes each loop with tl_async_send; each
 * loop breaks, is destroyed (cancelling and calling back its ops in flight),
 * and the totals from tl_loop_stats are printed to stderr or --stats FILE:
 *   impl=triloop backend=.. loops=.. bytes=.. iterations=.. syscalls=..
 *   ops_completed=.. syscalls_per_op=.. iterations_per_op=..
 * where an op is --msg bytes echoed (one round trip of the client).
 */
#include "sock_common.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>

#include "triloop.h"

static const char *prog = "echo_server";
static size_t bufsize = 65536;

struct lctx {
  pthread_t tid;
  int idx, cpu, lfd;
  tl_loop *loop;
  tl_async stop;
  tl_op accept_op;
  int stopping;
  int err;
  uint64_t bytes;
  struct tl_loop_stats st;
  char backend[16];
  sem_t *ready;
  tl_bufring *ring;          /* --multishot */
  int *bnext;                /* per buffer: next in its conn's send FIFO */
  unsigned *blen;
};

static int multishot;
static unsigned ring_bufs = 1024;

struct conn {
  tl_op op;
  struct lctx *lc;
  int fd;
  size_t len, off;
  /* --multishot: op is the send; msop the armed receive; received buffers
   * wait in a FIFO (head is being sent). */
  tl_op msop;
  int head, tail;
  int armed, sending;
  char buf[];
};

static void on_io(tl_loop *loop, tl_op *op, int64_t res);
static void ms_on_recv(tl_loop *loop, tl_op *op, int64_t res);

static void conn_end(struct conn *c)
{
  /* The conn's only op has just called back: nothing of ours is in flight
   * on this fd, so a plain close is safe. */
  close(c->fd);
  free(c);
}

static void on_io(tl_loop *loop, tl_op *op, int64_t res)
{
  struct conn *c = (struct conn *)op;
  int r;
  if (res <= 0) {          /* EOF, error, or -ECANCELED at shutdown */
    conn_end(c);
    return;
  }
  if (op->type == TL_OP_RECV) {
    c->len = (size_t)res;
    c->off = 0;
  } else {
    c->off += (size_t)res;
    c->lc->bytes += (uint64_t)res;
    if (c->off >= c->len) {
      r = tl_recv(loop, op, c->fd, c->buf, bufsize, 0, on_io);
      if (r < 0)
        conn_end(c);
      return;
    }
  }
  r = tl_send(loop, op, c->fd, c->buf + c->off, c->len - c->off, 0, on_io);
  if (r < 0)
    conn_end(c);
}

static void on_accept(tl_loop *loop, tl_op *op, int64_t res)
{
  struct lctx *lc = op->data;
  if (res >= 0 && multishot) {
    struct conn *c = malloc(sizeof *c);
    if (!c) {
      close((int)res);
    } else {
      memset(c, 0, sizeof *c);
      c->lc = lc;
      c->fd = (int)res;
      c->head = c->tail = -1;
      sb_nodelay(c->fd);
      if (tl_recv_multishot(loop, &c->msop, c->fd, lc->ring, 0, ms_on_recv) < 0)
        conn_end(c);
      else
        c->armed = 1;
    }
  } else if (res >= 0) {
    struct conn *c = malloc(sizeof *c + bufsize);
    if (!c) {
      close((int)res);
    } else {
      memset(&c->op, 0, sizeof c->op);
      c->lc = lc;
      c->fd = (int)res;
      sb_nodelay(c->fd);
      if (tl_recv(loop, &c->op, c->fd, c->buf, bufsize, 0, on_io) < 0)
        conn_end(c);
    }
  } else if (res == -ECANCELED || lc->stopping) {
    return;
  } else if (res != -EINTR && res != -ECONNABORTED && res != -EAGAIN) {
    fprintf(stderr, "%s: loop %d: accept: %s\n", prog, lc->idx, tl_strerror((int)res));
    if (res == -EMFILE || res == -ENFILE)
      usleep(1000);   /* do not spin on a full fd table */
  }
  int r = tl_accept(loop, op, lc->lfd, NULL, NULL, 0, on_accept);
  if (r < 0 && !lc->stopping)
    fprintf(stderr, "%s: loop %d: accept submit: %s\n", prog, lc->idx, tl_strerror(r));
}

/* --multishot */
static void ms_on_send(tl_loop *loop, tl_op *op, int64_t res);

static void ms_send_head(tl_loop *loop, struct conn *c)
{
  char *p = tl_bufring_buf(c->lc->ring, (unsigned)c->head);
  int r = tl_send(loop, &c->op, c->fd, p + c->off, c->lc->blen[c->head] - c->off, 0, ms_on_send);
  c->sending = r == 0;
  if (r < 0 && c->armed)
    tl_op_cancel(loop, &c->msop);   /* its final callback ends the conn */
}

/* Ends the conn once neither op is in flight. */
static void ms_maybe_end(struct conn *c)
{
  if (c->armed || c->sending)
    return;
  while (c->head >= 0) {
    int next = c->lc->bnext[c->head];
    tl_bufring_recycle(c->lc->ring, (unsigned)c->head);
    c->head = next;
  }
  conn_end(c);
}

static void ms_on_send(tl_loop *loop, tl_op *op, int64_t res)
{
  struct conn *c = (struct conn *)op;
  struct lctx *lc = c->lc;
  c->sending = 0;
  if (res <= 0) {
    if (c->armed)
      tl_op_cancel(loop, &c->msop);
    ms_maybe_end(c);
    return;
  }
  c->off += (size_t)res;
  lc->bytes += (uint64_t)res;
  if (c->off < lc->blen[c->head]) {
    ms_send_head(loop, c);
    return;
  }
  int done = c->head;
  c->head = lc->bnext[done];
  c->off = 0;
  tl_bufring_recycle(lc->ring, (unsigned)done);
  if (c->head >= 0)
    ms_send_head(loop, c);
  else
    ms_maybe_end(c);
}

static void ms_on_recv(tl_loop *loop, tl_op *op, int64_t res)
{
  struct conn *c = (struct conn *)((char *)op - offsetof(struct conn, msop));
  struct lctx *lc = c->lc;
  if (res > 0) {
    int bid = (int)tl_op_bufid(op);
    lc->blen[bid] = (unsigned)res;
    lc->bnext[bid] = -1;
    if (c->head < 0) {
      c->head = c->tail = bid;
      c->off = 0;
      ms_send_head(loop, c);
    } else {
      lc->bnext[c->tail] = bid;
      c->tail = bid;
    }
    return;
  }
  /* The final callback.  -ENOBUFS: every buffer is queued for sending in
   * some conn; rearm if one came back meanwhile, else give up this conn. */
  c->armed = 0;
  if (res == -ENOBUFS && !lc->stopping &&
      tl_recv_multishot(loop, &c->msop, c->fd, lc->ring, 0, ms_on_recv) == 0) {
    c->armed = 1;
    return;
  }
  if (c->sending)
    tl_op_cancel(loop, &c->op);
  ms_maybe_end(c);
}

static void on_stop(tl_loop *loop, tl_async *w, unsigned revents)
{
  struct lctx *lc = w->data;
  lc->stopping = 1;
  tl_break(loop);
}

static void *loop_thread(void *arg)
{
  struct lctx *lc = arg;
  int r = tl_loop_new(&lc->loop, 0);
  if (r < 0) {
    lc->err = r;
    lc->loop = NULL;
    sem_post(lc->ready);
    return NULL;
  }
  snprintf(lc->backend, sizeof lc->backend, "%s", tl_backend_name(lc->loop));
  if (lc->cpu >= 0)
    lc->cpu = sb_pin(lc->cpu);
  if (multishot) {
    lc->bnext = calloc(ring_bufs, sizeof *lc->bnext);
    lc->blen = calloc(ring_bufs, sizeof *lc->blen);
    if (!lc->bnext || !lc->blen)
      r = -ENOMEM;
    else
      r = tl_bufring_new(lc->loop, &lc->ring, ring_bufs, bufsize);
    if (r < 0) {
      lc->err = r;
      tl_loop_destroy(lc->loop);
      lc->loop = NULL;
      sem_post(lc->ready);
      return NULL;
    }
    fprintf(stderr, "%s: loop %d: multishot recv, %u buffers of %zu bytes, %s\n", prog, lc->idx,
            ring_bufs, bufsize, tl_bufring_kernel(lc->ring) ? "kernel buffer ring" : "emulated");
  }
  tl_async_init(&lc->stop, on_stop);
  lc->stop.data = lc;
  memset(&lc->accept_op, 0, sizeof lc->accept_op);
  lc->accept_op.data = lc;
  if ((r = tl_async_start(lc->loop, &lc->stop)) < 0 ||
      (r = tl_accept(lc->loop, &lc->accept_op, lc->lfd, NULL, NULL, 0, on_accept)) < 0) {
    lc->err = r;
    tl_loop_destroy(lc->loop);
    lc->loop = NULL;
    sem_post(lc->ready);
    return NULL;
  }
  sem_post(lc->ready);
  while (!lc->stopping) {
    r = tl_run(lc->loop, TL_RUN_DEFAULT);
    if (r < 0) {
      fprintf(stderr, "%s: loop %d: tl_run: %s\n", prog, lc->idx, tl_strerror(r));
      lc->err = r;
      break;
    }
    if (r == 0)
      break;
  }
  tl_loop_stats(lc->loop, &lc->st);
  r = tl_loop_destroy(lc->loop);
  if (r < 0)
    fprintf(stderr, "%s: loop %d: tl_loop_destroy: %s\n", prog, lc->idx, tl_strerror(r));
  free(lc->bnext);
  free(lc->blen);
  return NULL;
}

int main(int argc, char **argv)
{
  long port = -1, loops = 1, cpu = 0, msg = 0;
  int bufsize_set = 0;
  const char *stats = NULL;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--port")) { port = sb_parse_long(prog, a, v, 0, 65535); i++; }
    else if (!strcmp(a, "--loops")) { loops = sb_parse_long(prog, a, v, 1, 256); i++; }
    else if (!strcmp(a, "--stats")) { stats = v; i++; if (!v) sb_die(prog, "--stats needs a file"); }
    else if (!strcmp(a, "--cpu")) { cpu = sb_parse_long(prog, a, v, -1, 4096); i++; }
    else if (!strcmp(a, "--msg")) { msg = sb_parse_long(prog, a, v, 1, 1 << 20); i++; }
    else if (!strcmp(a, "--bufsize")) { bufsize = (size_t)sb_parse_long(prog, a, v, 64, 1 << 20); i++; bufsize_set = 1; }
    else if (!strcmp(a, "--multishot")) multishot = 1;
    else if (!strcmp(a, "--ring-bufs")) { ring_bufs = (unsigned)sb_parse_long(prog, a, v, 1, 32768); i++; }
    else {
      fprintf(stderr, "usage: %s --port P [--loops N] [--cpu N|-1] [--stats FILE] [--msg BYTES]"
                      " [--bufsize B] [--multishot [--ring-bufs N]]\n(backend from TRILOOP_BACKEND: %s)\n", prog, tl_backend_names());
      sb_die(prog, "unknown option '%s'", a);
    }
  }
  if (port < 0)
    sb_die(prog, "--port is required");
  if (multishot && (ring_bufs & (ring_bufs - 1)))
    sb_die(prog, "--ring-bufs must be a power of two");
  if (multishot && !bufsize_set)
    bufsize = 4096;

  /* Every thread inherits this mask; only sigwait below sees the signals. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct lctx *lcs = calloc((size_t)loops, sizeof *lcs);
  sem_t ready;
  sem_init(&ready, 0, 0);
  if (!lcs)
    sb_die(prog, "out of memory");
  for (long i = 0; i < loops; i++) {
    int fd = sb_listen((int)port, loops > 1, 4096);
    if (fd < 0)
      sb_die(prog, "listen on 127.0.0.1:%ld: %s", port, strerror(-fd));
    if (port == 0)
      port = sb_local_port(fd);       /* the other loops join this port */
    lcs[i].idx = (int)i;
    lcs[i].lfd = fd;
    lcs[i].cpu = cpu < 0 ? -1 : (int)(cpu + i);
    lcs[i].ready = &ready;
  }
  for (long i = 0; i < loops; i++) {
    if (pthread_create(&lcs[i].tid, NULL, loop_thread, &lcs[i]) != 0)
      sb_die(prog, "pthread_create: %s", strerror(errno));
  }
  int failed = 0;
  for (long i = 0; i < loops; i++)
    sem_wait(&ready);
  for (long i = 0; i < loops; i++) {
    if (lcs[i].err) {
      fprintf(stderr, "%s: loop %ld: %s\n", prog, i, tl_strerror(lcs[i].err));
      failed = 1;
    }
  }
  if (failed)
    _exit(1);
  for (long i = 0; i < loops; i++)
    fprintf(stderr, "%s: loop %ld backend %s, %s%d\n", prog, i, lcs[i].backend,
            lcs[i].cpu >= 0 ? "pinned to cpu " : "not pinned", lcs[i].cpu >= 0 ? lcs[i].cpu : 0);
  fprintf(stderr, "%s: listening on 127.0.0.1:%ld with %ld loop%s\n", prog, port, loops,
          loops > 1 ? "s (SO_REUSEPORT)" : "");

  int sig = 0;
  sigwait(&set, &sig);
  for (long i = 0; i < loops; i++)
    tl_async_send(lcs[i].loop, &lcs[i].stop);

  uint64_t bytes = 0, iters = 0, sys = 0, opsc = 0;
  for (long i = 0; i < loops; i++) {
    pthread_join(lcs[i].tid, NULL);
    bytes += lcs[i].bytes;
    iters += lcs[i].st.iterations;
    sys += lcs[i].st.syscalls;
    opsc += lcs[i].st.ops_completed;
    close(lcs[i].lfd);
  }
  char line[384], sper[32] = "-", iper[32] = "-";
  double ops = msg ? (double)bytes / (double)msg : 0;
  if (ops > 0) {
    snprintf(sper, sizeof sper, "%.3f", (double)sys / ops);
    snprintf(iper, sizeof iper, "%.3f", (double)iters / ops);
  }
  snprintf(line, sizeof line,
           "impl=%s backend=%s loops=%ld bytes=%llu iterations=%llu syscalls=%llu ops_completed=%llu "
           "syscalls_per_op=%s iterations_per_op=%s",
           multishot ? "triloop-ms" : "triloop", lcs[0].backend, loops, (unsigned long long)bytes, (unsigned long long)iters,
           (unsigned long long)sys, (unsigned long long)opsc, sper, iper);
  sb_write_stats(stats, line);
  free(lcs);
  return 0;
}
