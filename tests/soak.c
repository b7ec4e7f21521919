/*
 * Soak and load: one process, one loop, an echo server and thousands of
 * loopback client connections on the same loop, for a set time per backend.
 *
 *   tests/soak [--secs N] [--conns N] [--timers N] [--seed S] [--quiet]
 *
 * The backend comes from TRILOOP_BACKEND; without it every backend that
 * works here is soaked in turn.  The 10-minute figure per backend:
 *
 *   for b in uring epoll threadpool; do
 *     TRILOOP_BACKEND=$b tests/soak --secs 600 --conns 2000
 *   done
 *
 * (The threadpool backend runs every blocking recv on a pool worker, and
 * those count against TRILOOP_THREADS_MAX: with 2,000 connections both ends
 * of a connection can sit behind 256 busy workers and nothing moves.  The
 * soak therefore raises TRILOOP_THREADS_MAX, unless it is set, above the
 * number of ops that can block at once.  With TRILOOP_THREADS_MAX=256 and
 * 2,000 connections it stalls: 416 accepts, 133 messages, then nothing.)
 *
 * What runs:
 *  - clients connect, send messages of random size (1 B to 64 KiB) whose
 *    bytes come from a per-connection PRNG stream, and verify every echoed
 *    byte against the same stream; after a message they go on, close
 *    cleanly, or (from the churn tick) are torn down mid-message through
 *    tl_close (half of those with SO_LINGER 0: an RST), then reconnect;
 *  - the server accepts with several accept ops in flight and echoes;
 *  - a 1 ms churn tick cancels random in-flight recvs on both sides (the
 *    cancelled op must call back exactly once; -ECANCELED is resubmitted,
 *    a real result is used, so no byte may be lost either way) and starts,
 *    stops and re-arms random timers out of thousands;
 *  - at the deadline every client is closed through the loop, and the loop
 *    is destroyed with the server's ops still in flight.
 *
 * What it checks (any mismatch fails the backend):
 *  - callbacks owed (one per successful submit) == callbacks delivered,
 *    after destroy, and no op ever called back twice or while not in flight;
 *  - every echoed byte matches the stream; a connection closed cleanly got
 *    back exactly what it sent;
 *  - no timer callback while the timer was stopped;
 *  - open fds at the end == at the start (less the shared pool's worker
 *    eventfds, which outlive a loop by design), RSS growth in the steady
 *    state bounded;
 *  - progress: messages keep completing (a 10 s stall fails).
 * SIGPIPE stays at its default disposition throughout: a send to a reset
 * peer must come back as -EPIPE/-ECONNRESET, never kill the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "triloop.h"

#define MSG_MAX 65536
#define RX_CHUNK 16384
#define SRV_CHUNK 16384
#define NACCEPT 32
#define CHURN_TICK 0.001
#define STALL_SECS 10.0
#define RSS_SLACK (64.0 * 1024 * 1024)
#define RSS_PER_THREAD (512.0 * 1024)

/* ------------------------------------------------------------------ */
/* Options, counters                                                   */

static unsigned pool_threads_now(void) {
  struct tl_pool_stats st;
  tl_pool_stats(&st);
  return st.threads;
}

static double opt_secs = 10;
static int opt_conns = 2000;
static int opt_timers = 4000;
static uint64_t opt_seed = 1;
static int opt_quiet;

struct counts {
  uint64_t owed, delivered, dup, stray;
  uint64_t bytes_sent, bytes_verified, bytes_abandoned, bad_bytes;
  uint64_t msgs, clean_closes, aborts, rsts, connects, connect_fail;
  uint64_t accepts, accept_err, srv_full;
  uint64_t cancels_asked, cancels_took, cancels_lost_race;
  uint64_t srv_send_err, epipe;
  uint64_t timer_fires, timer_bad, timer_ops;
  uint64_t unexpected;    /* results nothing should produce */
  uint64_t short_clean;   /* clean close with sent != verified */
  uint64_t submit_fail;
};
static struct counts C;
static char first_error[256];

static void fail(const char *fmt, ...) {
  if (first_error[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(first_error, sizeof first_error, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------------ */
/* The byte stream: byte i of stream s, stateless so either side can
 * check any position. */

static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void stream_fill(uint64_t seed, uint64_t pos, unsigned char *p, size_t n) {
  while (n) {
    uint64_t w = mix64(seed ^ mix64(pos >> 3));
    unsigned k = (unsigned)(pos & 7);
    for (; k < 8 && n; k++, n--, pos++)
      *p++ = (unsigned char)(w >> (k * 8));
  }
}

static int stream_check(uint64_t seed, uint64_t pos, const unsigned char *p, size_t n) {
  unsigned char tmp[256];
  while (n) {
    size_t k = n < sizeof tmp ? n : sizeof tmp;
    stream_fill(seed, pos, tmp, k);
    if (memcmp(tmp, p, k))
      return -1;
    p += k;
    pos += k;
    n -= k;
  }
  return 0;
}

/* The test's own PRNG (decisions), separate from the data streams. */
static uint64_t rng_state;
static uint64_t rnd(void) { return mix64(rng_state++); }
static unsigned rnd_below(unsigned n) { return (unsigned)(rnd() % n); }
static int chance(unsigned permille) { return rnd_below(1000) < permille; }

/* ------------------------------------------------------------------ */
/* Ops with exactly-once bookkeeping                                   */

struct xop {
  tl_op op;
  int inflight;
  int cancel_asked;
};

static void owe(struct xop *x, int r) {
  if (r == 0) {
    if (x->inflight)
      fail("submit of an op already marked in flight");
    x->inflight = 1;
    C.owed++;
  } else {
    C.submit_fail++;
  }
}

/* First thing in every op callback. */
static void got(struct xop *x) {
  C.delivered++;
  if (!x->inflight) {
    C.dup++;
    fail("op callback for an op not in flight (duplicate?) type %d", x->op.type);
  }
  x->inflight = 0;
  x->cancel_asked = 0;
}

/* ------------------------------------------------------------------ */
/* State                                                               */

enum { CL_IDLE, CL_CONNECTING, CL_UP, CL_CLOSING };

struct client {
  int idx, fd, state;
  int closing_clean;     /* closing after a complete message */
  uint64_t seed, incarnation;
  uint64_t msg_start;    /* stream position of sbuf[0] */
  uint64_t tx_pos;       /* stream bytes handed to send (message end) */
  uint64_t tx_done;      /* stream bytes send confirmed */
  uint64_t rx_pos;       /* stream bytes received and verified */
  int want_rx;           /* a recv should be in flight while up */
  struct xop ctl, snd, rcv;
  unsigned char *sbuf, *rbuf;
  struct sockaddr_in addr;
};

enum { SV_FREE, SV_UP, SV_CLOSING };

struct sconn {
  int fd, state;
  size_t have, sent;
  struct xop rcv, snd, ctl;
  unsigned char *buf;
  struct sconn *next_free;
};

struct acceptor {
  struct xop x;
};

static tl_loop *L;
static int lfd = -1;
static struct sockaddr_in srv_addr;
static struct client *cl;
static struct sconn *sv;
static int nsv;
static struct sconn *sv_free;
static struct acceptor acc[NACCEPT];
static int stopping, destroying;

struct ttimer {
  tl_timer t;
  int mine_active;
};
static struct ttimer *tms;
static tl_timer churn;
static uint64_t last_msgs;
static double last_progress;

static void client_start(struct client *c);
static void client_close(struct client *c, int clean);
static void srv_close(struct sconn *s);

/* ------------------------------------------------------------------ */
/* Server                                                              */

static void srv_recv_cb(tl_loop *loop, tl_op *op, int64_t res);

static void srv_post_recv(struct sconn *s) {
  int r = tl_recv(L, &s->rcv.op, s->fd, s->buf, SRV_CHUNK, 0, srv_recv_cb);
  owe(&s->rcv, r);
  if (r < 0) {
    if (r != -ESHUTDOWN)
      fail("server tl_recv: %s", tl_strerror(r));
  }
}

static void srv_send_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct sconn *s = op->data;
  got(&s->snd);
  if (s->state != SV_UP)
    return;
  if (res < 0) {
    if (res == -EPIPE)
      C.epipe++;
    else if (res != -ECONNRESET && res != -ECANCELED)
      C.srv_send_err++;
    srv_close(s);
    return;
  }
  s->sent += (size_t)res;
  if (s->sent < s->have) {
    int r = tl_send(L, &s->snd.op, s->fd, s->buf + s->sent, s->have - s->sent, 0, srv_send_cb);
    owe(&s->snd, r);
    if (r < 0)
      srv_close(s);
    return;
  }
  srv_post_recv(s);
}

static void srv_recv_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct sconn *s = op->data;
  got(&s->rcv);
  if (s->state != SV_UP)
    return;
  if (res == -ECANCELED) {
    if (destroying)
      return;
    C.cancels_took++;
    srv_post_recv(s);
    return;
  }
  if (res <= 0) {
    if (res < 0 && res != -ECONNRESET) {
      C.unexpected++;
      fail("server recv: %s", tl_strerror((int)res));
    }
    srv_close(s);
    return;
  }
  s->have = (size_t)res;
  s->sent = 0;
  int r = tl_send(L, &s->snd.op, s->fd, s->buf, s->have, 0, srv_send_cb);
  owe(&s->snd, r);
  if (r < 0)
    srv_close(s);
}

static void srv_close_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct sconn *s = op->data;
  got(&s->ctl);
  if (res == -ECANCELED && destroying) {
    /* Destroy cancelled the close before it ran: the fd is still open
     * and is closed after the loop is gone. */
    return;
  }
  if (res < 0) {
    C.unexpected++;
    fail("server close: %s", tl_strerror((int)res));
  }
  s->fd = -1;
  s->state = SV_FREE;
  s->next_free = sv_free;
  sv_free = s;
}

static void srv_close(struct sconn *s) {
  if (s->state != SV_UP)
    return;
  s->state = SV_CLOSING;
  int r = tl_close(L, &s->ctl.op, s->fd, srv_close_cb);
  owe(&s->ctl, r);
  if (r < 0) {
    /* Only in destroy: the fd is closed after the loop is gone. */
    if (r != -ESHUTDOWN)
      fail("server tl_close: %s", tl_strerror(r));
  }
}

static void accept_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct acceptor *a = op->data;
  got(&a->x);
  if (res >= 0) {
    C.accepts++;
    int fd = (int)res;
    if (destroying || !sv_free) {
      if (!destroying)
        C.srv_full++;
      close(fd);
    } else {
      struct sconn *s = sv_free;
      sv_free = s->next_free;
      s->fd = fd;
      s->state = SV_UP;
      s->have = s->sent = 0;
      srv_post_recv(s);
    }
  } else if (res != -ECANCELED) {
    C.accept_err++;
  }
  if (destroying || (stopping && res == -ECANCELED))
    return;
  int r = tl_accept(L, &a->x.op, lfd, NULL, NULL, 0, accept_cb);
  owe(&a->x, r);
}

/* ------------------------------------------------------------------ */
/* Clients                                                             */

static void cl_recv_cb(tl_loop *loop, tl_op *op, int64_t res);
static void cl_send_cb(tl_loop *loop, tl_op *op, int64_t res);

static void cl_post_recv(struct client *c) {
  size_t want = (size_t)(c->tx_pos - c->rx_pos);
  if (want > RX_CHUNK)
    want = RX_CHUNK;
  /* A recv stays posted even between messages (want 0 would be a no-op
   * recv): ask for a full chunk, the peer never sends more than we sent. */
  if (want == 0)
    want = RX_CHUNK;
  int r = tl_recv(L, &c->rcv.op, c->fd, c->rbuf, want, 0, cl_recv_cb);
  owe(&c->rcv, r);
  if (r < 0)
    fail("client tl_recv: %s", tl_strerror(r));
}

static void cl_send_msg(struct client *c) {
  /* Log-uniform size: many small, some full 64 KiB. */
  unsigned bits = rnd_below(17);
  size_t n = 1 + (size_t)(rnd() % ((size_t)1 << bits));
  if (n > MSG_MAX)
    n = MSG_MAX;
  stream_fill(c->seed, c->tx_pos, c->sbuf, n);
  c->msg_start = c->tx_pos;
  c->tx_pos += n;
  int r = tl_send(L, &c->snd.op, c->fd, c->sbuf, n, 0, cl_send_cb);
  owe(&c->snd, r);
  if (r < 0)
    fail("client tl_send: %s", tl_strerror(r));
}

static void cl_send_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct client *c = op->data;
  got(&c->snd);
  if (c->state != CL_UP)
    return;
  if (res < 0) {
    C.unexpected++;
    fail("client send: %s", tl_strerror((int)res));
    client_close(c, 0);
    return;
  }
  C.bytes_sent += (uint64_t)res;
  c->tx_done += (uint64_t)res;
  if (c->tx_done < c->tx_pos) {
    /* A short send: sbuf[0] is the message's first byte, msg_start. */
    size_t off = (size_t)(c->tx_done - c->msg_start);
    int r = tl_send(L, &c->snd.op, c->fd, c->sbuf + off, (size_t)(c->tx_pos - c->tx_done), 0,
                    cl_send_cb);
    owe(&c->snd, r);
    if (r < 0)
      fail("client tl_send (rest): %s", tl_strerror(r));
  }
}

static void cl_recv_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct client *c = op->data;
  got(&c->rcv);
  if (c->state != CL_UP)
    return;
  if (res == -ECANCELED) {
    C.cancels_took++;
    cl_post_recv(c);
    return;
  }
  if (res <= 0) {
    C.unexpected++;
    fail("client %d recv: %s", c->idx, res == 0 ? "EOF from the server" : tl_strerror((int)res));
    client_close(c, 0);
    return;
  }
  if (c->rx_pos + (uint64_t)res > c->tx_pos) {
    C.bad_bytes += (uint64_t)res;
    fail("client %d got %lld bytes beyond what it sent", c->idx, (long long)res);
    client_close(c, 0);
    return;
  }
  if (stream_check(c->seed, c->rx_pos, c->rbuf, (size_t)res)) {
    C.bad_bytes += (uint64_t)res;
    fail("client %d: echoed bytes at %llu do not match the stream", c->idx,
         (unsigned long long)c->rx_pos);
    client_close(c, 0);
    return;
  }
  c->rx_pos += (uint64_t)res;
  C.bytes_verified += (uint64_t)res;
  if (c->rx_pos == c->tx_pos && c->tx_done == c->tx_pos) {
    C.msgs++;
    if (stopping) {
      client_close(c, 1);
      return;
    }
    if (chance(15)) {
      client_close(c, 1);
      return;
    }
    cl_send_msg(c);
  }
  cl_post_recv(c);
}

static void cl_close_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct client *c = op->data;
  got(&c->ctl);
  if (res == -ECANCELED && destroying)
    return;   /* not closed: closed after the loop is gone */
  if (res < 0) {
    C.unexpected++;
    fail("client close: %s", tl_strerror((int)res));
  }
  c->fd = -1;
  c->state = CL_IDLE;
  if (!stopping)
    client_start(c);
}

static void client_close(struct client *c, int clean) {
  if (c->state != CL_UP && c->state != CL_CONNECTING)
    return;
  if (clean) {
    C.clean_closes++;
    if (c->rx_pos != c->tx_pos || c->tx_done != c->tx_pos) {
      C.short_clean++;
      fail("client %d closed cleanly with %llu sent, %llu verified", c->idx,
           (unsigned long long)c->tx_done, (unsigned long long)c->rx_pos);
    }
  } else {
    C.aborts++;
    C.bytes_abandoned += c->tx_done - c->rx_pos;
    if (chance(500)) {
      struct linger lg = {1, 0};
      setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      C.rsts++;
    }
  }
  c->state = CL_CLOSING;
  int r = tl_close(L, &c->ctl.op, c->fd, cl_close_cb);
  owe(&c->ctl, r);
  if (r < 0)
    fail("client tl_close: %s", tl_strerror(r));
}

static void cl_connect_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct client *c = op->data;
  got(&c->ctl);
  if (res < 0) {
    /* Ephemeral ports or the backlog can run out under this load: not a
     * library fault.  Close and try again. */
    C.connect_fail++;
    c->state = CL_CLOSING;
    int r = tl_close(L, &c->ctl.op, c->fd, cl_close_cb);
    owe(&c->ctl, r);
    if (r < 0)
      fail("client tl_close: %s", tl_strerror(r));
    return;
  }
  C.connects++;
  if (stopping) {
    c->state = CL_UP;
    client_close(c, 1);
    return;
  }
  c->state = CL_UP;
  cl_send_msg(c);
  cl_post_recv(c);
}

static void client_start(struct client *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    fail("socket: %s", strerror(errno));
    return;
  }
  c->incarnation++;
  c->seed = mix64(opt_seed ^ mix64(((uint64_t)c->idx << 32) ^ c->incarnation));
  c->tx_pos = c->tx_done = c->rx_pos = 0;
  c->state = CL_CONNECTING;
  int r = tl_connect(L, &c->ctl.op, c->fd, (struct sockaddr *)&srv_addr, sizeof srv_addr,
                     cl_connect_cb);
  owe(&c->ctl, r);
  if (r < 0) {
    fail("tl_connect: %s", tl_strerror(r));
    close(c->fd);
    c->fd = -1;
    c->state = CL_IDLE;
  }
}

/* ------------------------------------------------------------------ */
/* Timers and the churn tick                                           */

static void tm_cb(tl_loop *loop, tl_timer *w, unsigned ev) {
  struct ttimer *t = (struct ttimer *)w;
  (void)ev;
  C.timer_fires++;
  if (!t->mine_active) {
    C.timer_bad++;
    fail("timer %ld fired while stopped", (long)(t - tms));
  }
  /* A one-shot timer is stopped when it fires, unless it was started
   * again while its expiry was pending (then it is active once more). */
  if (w->repeat == 0)
    t->mine_active = tl_is_active(w);
  if (!stopping && chance(300) && !tl_is_active(w)) {
    tl_timer_set(w, (double)rnd_below(20000) * 1e-6, chance(500) ? 0.001 * (1 + rnd_below(20)) : 0);
    if (tl_timer_start(loop, w) == 0)
      t->mine_active = 1;
  }
}

static void timer_churn(void) {
  for (int k = 0; k < 200 && opt_timers > 0; k++) {
    struct ttimer *t = &tms[rnd_below((unsigned)opt_timers)];
    C.timer_ops++;
    switch (rnd_below(4)) {
    case 0:
      if (!tl_is_active(&t->t)) {
        tl_timer_set(&t->t, (double)rnd_below(50000) * 1e-6,
                     chance(300) ? 0.001 * (1 + rnd_below(20)) : 0);
        if (tl_timer_start(L, &t->t) == 0)
          t->mine_active = 1;
        else
          fail("tl_timer_start of an inactive timer failed");
      }
      break;
    case 1: {
      int r = tl_timer_stop(L, &t->t);
      if (r != 0 && r != -EALREADY)
        fail("tl_timer_stop: %s", tl_strerror(r));
      t->mine_active = 0;
      break;
    }
    case 2:
      t->t.repeat = chance(500) ? 0.001 * (1 + rnd_below(20)) : 0;
      tl_timer_again(L, &t->t);
      t->mine_active = t->t.repeat > 0;
      break;
    default:
      /* Restart with a new expiry. */
      tl_timer_stop(L, &t->t);
      tl_timer_set(&t->t, (double)rnd_below(30000) * 1e-6, 0);
      t->mine_active = tl_timer_start(L, &t->t) == 0;
      break;
    }
  }
}

static void churn_cb(tl_loop *loop, tl_timer *w, unsigned ev) {
  (void)w;
  (void)ev;
  if (stopping)
    return;
  timer_churn();
  /* Cancel random in-flight recvs on both sides. */
  for (int k = 0; k < 20; k++) {
    struct client *c = &cl[rnd_below((unsigned)opt_conns)];
    if (c->state == CL_UP && c->rcv.inflight && !c->rcv.cancel_asked) {
      c->rcv.cancel_asked = 1;
      C.cancels_asked++;
      int r = tl_op_cancel(loop, &c->rcv.op);
      if (r != 0)
        fail("tl_op_cancel of an in-flight recv: %s", tl_strerror(r));
    }
    struct sconn *s = &sv[rnd_below((unsigned)nsv)];
    if (s->state == SV_UP && s->rcv.inflight && !s->rcv.cancel_asked) {
      s->rcv.cancel_asked = 1;
      C.cancels_asked++;
      int r = tl_op_cancel(loop, &s->rcv.op);
      if (r != 0)
        fail("tl_op_cancel of an in-flight server recv: %s", tl_strerror(r));
    }
  }
  /* Tear a few connections down mid-flight. */
  for (int k = 0; k < 2; k++) {
    struct client *c = &cl[rnd_below((unsigned)opt_conns)];
    if (c->state == CL_UP)
      client_close(c, 0);
  }
  double now = tl_now(loop);
  if (C.msgs != last_msgs) {
    last_msgs = C.msgs;
    last_progress = now;
  } else if (now - last_progress > STALL_SECS) {
    fail("no message completed for %.0f s (stall)", STALL_SECS);
  }
}

/* ------------------------------------------------------------------ */
/* Process figures                                                     */

static double rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
      res = 0;
    fclose(f);
  }
  return (double)res * (double)sysconf(_SC_PAGESIZE);
}

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n - 3;   /* ".", "..", and the directory's own fd */
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Workers hold an eventfd each and outlive a loop (some are kept warm).
 * A retiring worker leaves the count before it closes its eventfd, so give
 * the two figures up to 10 s (the soak sets a 100 ms keep-alive) to agree:
 * fds less workers now == at the start. */
static void settle_fds(int fds0, unsigned threads0, int *fds1, unsigned *threads1) {
  struct tl_pool_stats ps;
  double end = now_s() + 10;
  /* First let the keep-alive retire the workers beyond the warm ones
   * (TRILOOP_THREADS, default 2 per core), so the end figure means
   * something; then the accounting. */
  long warm = 2 * sysconf(_SC_NPROCESSORS_ONLN);
  const char *tw = getenv("TRILOOP_THREADS");
  if (tw && atol(tw) > 0)
    warm = atol(tw);
  if (warm < (long)threads0)
    warm = (long)threads0;
  for (;;) {
    tl_pool_stats(&ps);
    if ((long)ps.threads <= warm || now_s() > end)
      break;
    usleep(50000);
  }
  for (;;) {
    tl_pool_stats(&ps);
    *threads1 = ps.threads;
    *fds1 = open_fds();
    if (*fds1 - (int)ps.threads == fds0 - (int)threads0 || now_s() > end)
      return;
    usleep(50000);
  }
}

/* ------------------------------------------------------------------ */
/* One backend                                                         */

static int soak_one(int id) {
  memset(&C, 0, sizeof C);
  first_error[0] = 0;
  stopping = destroying = 0;
  rng_state = mix64(opt_seed + (uint64_t)id);
  const char *name = tl_backend_id_name(id);

  struct tl_pool_stats ps0;
  tl_pool_stats(&ps0);
  int fds0 = open_fds();
  double rss0 = rss_bytes();

  int r = tl_loop_new(&L, (unsigned)id);
  if (r < 0) {
    printf("%s: tl_loop_new: %s\n", name, tl_strerror(r));
    return -1;
  }
  char desc[256];
  tl_loop_describe(L, desc, sizeof desc);

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&srv_addr, 0, sizeof srv_addr);
  srv_addr.sin_family = AF_INET;
  srv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t al = sizeof srv_addr;
  if (bind(lfd, (struct sockaddr *)&srv_addr, sizeof srv_addr) || listen(lfd, 4096) ||
      getsockname(lfd, (struct sockaddr *)&srv_addr, &al)) {
    printf("%s: listener: %s\n", name, strerror(errno));
    return -1;
  }

  nsv = opt_conns * 2;
  cl = calloc((size_t)opt_conns, sizeof *cl);
  sv = calloc((size_t)nsv, sizeof *sv);
  tms = calloc((size_t)(opt_timers ? opt_timers : 1), sizeof *tms);
  unsigned char *mem = malloc((size_t)opt_conns * (MSG_MAX + RX_CHUNK) + (size_t)nsv * SRV_CHUNK);
  if (!cl || !sv || !tms || !mem) {
    printf("%s: out of memory\n", name);
    return -1;
  }
  /* Touch everything now, so RSS growth later is the library's. */
  memset(mem, 0xa5, (size_t)opt_conns * (MSG_MAX + RX_CHUNK) + (size_t)nsv * SRV_CHUNK);
  unsigned char *p = mem;
  for (int i = 0; i < opt_conns; i++) {
    struct client *c = &cl[i];
    c->idx = i;
    c->fd = -1;
    c->sbuf = p;
    p += MSG_MAX;
    c->rbuf = p;
    p += RX_CHUNK;
    c->ctl.op.data = c->snd.op.data = c->rcv.op.data = c;
  }
  sv_free = NULL;
  for (int i = nsv - 1; i >= 0; i--) {
    struct sconn *s = &sv[i];
    s->fd = -1;
    s->buf = p;
    p += SRV_CHUNK;
    s->rcv.op.data = s->snd.op.data = s->ctl.op.data = s;
    s->next_free = sv_free;
    sv_free = s;
  }
  for (int i = 0; i < opt_timers; i++)
    tl_timer_init(&tms[i].t, tm_cb, 0, 0);

  for (int i = 0; i < NACCEPT; i++) {
    memset(&acc[i], 0, sizeof acc[i]);
    acc[i].x.op.data = &acc[i];
    owe(&acc[i].x, tl_accept(L, &acc[i].x.op, lfd, NULL, NULL, 0, accept_cb));
  }
  for (int i = 0; i < opt_conns; i++)
    client_start(&cl[i]);
  tl_timer_init(&churn, churn_cb, CHURN_TICK, CHURN_TICK);
  tl_timer_start(L, &churn);

  double t0 = now_s(), end = t0 + opt_secs, next_report = t0 + 10;
  unsigned threads_warm = 0;
  double rss_warm = -1, warm_at = t0 + (opt_secs > 6 ? 3 : opt_secs / 2);
  last_progress = tl_now(L);
  while (!first_error[0]) {
    r = tl_run(L, TL_RUN_ONCE);
    if (r < 0) {
      fail("tl_run: %s", tl_strerror(r));
      break;
    }
    double t = now_s();
    if (rss_warm < 0 && t >= warm_at) {
      rss_warm = rss_bytes();
      threads_warm = pool_threads_now();
    }
    if (t >= end)
      break;
    if (!opt_quiet && t >= next_report) {
      printf("%s: %4.0fs msgs %llu verified %.1f MiB owed %llu delivered %llu in flight %u\n",
             name, t - t0, (unsigned long long)C.msgs, (double)C.bytes_verified / 1048576.0,
             (unsigned long long)C.owed, (unsigned long long)C.delivered, tl_ops_in_flight(L));
      fflush(stdout);
      next_report += 10;
    }
  }
  double rss_run_end = rss_bytes();
  unsigned threads_end = pool_threads_now();
  if (rss_warm < 0) {
    rss_warm = rss_run_end;
    threads_warm = threads_end;
  }
  double secs = now_s() - t0;

  /* Wind down: clients close through the loop; timers stop. */
  stopping = 1;
  tl_timer_stop(L, &churn);
  for (int i = 0; i < opt_timers; i++) {
    tl_timer_stop(L, &tms[i].t);
    tms[i].mine_active = 0;
  }
  for (int i = 0; i < opt_conns; i++)
    if (cl[i].state == CL_UP)
      client_close(&cl[i], 0);
  double wind_end = now_s() + 20;
  for (;;) {
    int busy = 0;
    for (int i = 0; i < opt_conns && !busy; i++)
      busy = cl[i].state != CL_IDLE;
    if (!busy)
      break;
    if (now_s() > wind_end) {
      fail("clients did not finish closing within 20 s");
      break;
    }
    r = tl_run(L, TL_RUN_ONCE);
    if (r < 0) {
      fail("tl_run (wind-down): %s", tl_strerror(r));
      break;
    }
  }
  /* Destroy with the server's recvs (waiting for EOFs) and the accepts
   * still in flight: every one of them is owed its callback from destroy. */
  unsigned left = tl_ops_in_flight(L);
  destroying = 1;
  r = tl_loop_destroy(L);
  if (r != 0)
    fail("tl_loop_destroy: %s", tl_strerror(r));
  L = NULL;
  for (int i = 0; i < nsv; i++)
    if (sv[i].fd >= 0)
      close(sv[i].fd);
  for (int i = 0; i < opt_conns; i++)
    if (cl[i].fd >= 0)
      close(cl[i].fd);
  close(lfd);
  lfd = -1;

  /* Anything still marked in flight never got its callback. */
  uint64_t never = 0;
  for (int i = 0; i < opt_conns; i++)
    never += (uint64_t)(cl[i].ctl.inflight + cl[i].snd.inflight + cl[i].rcv.inflight);
  for (int i = 0; i < nsv; i++)
    never += (uint64_t)(sv[i].ctl.inflight + sv[i].snd.inflight + sv[i].rcv.inflight);
  for (int i = 0; i < NACCEPT; i++)
    never += (uint64_t)acc[i].x.inflight;

  free(mem);
  free(cl);
  free(sv);
  free(tms);
  cl = NULL;
  sv = NULL;
  tms = NULL;

  unsigned pool_end;
  int fds1;
  settle_fds(fds0, ps0.threads, &fds1, &pool_end);
  double rss1 = rss_bytes();

  if (C.owed != C.delivered)
    fail("callbacks owed %llu != delivered %llu", (unsigned long long)C.owed,
         (unsigned long long)C.delivered);
  if (never)
    fail("%llu ops never called back", (unsigned long long)never);
  if (fds1 - (int)pool_end != fds0 - (int)ps0.threads)
    fail("open fds %d -> %d (pool workers %u -> %u)", fds0, fds1, ps0.threads, pool_end);
  /* Pool threads come and go with the blocked calls (threadpool backend):
   * each extra one may hold its stack and, under ASan, its allocator cache
   * and fake stacks; only growth beyond that counts. */
  double thread_slack = threads_end > threads_warm
                            ? (double)(threads_end - threads_warm) * RSS_PER_THREAD : 0;
  if (rss_run_end > rss_warm + RSS_SLACK + thread_slack)
    fail("RSS grew %.1f MiB during the run (pool threads %u -> %u)",
         (rss_run_end - rss_warm) / 1048576.0, threads_warm, threads_end);
  if (C.msgs == 0)
    fail("no message completed");

  printf("%s: %s\n", name, desc);
  printf("%s: %.1f s, %d conns, %d timers\n", name, secs, opt_conns, opt_timers);
  printf("%s: callbacks owed %llu delivered %llu (duplicates %llu, never %llu; %u in flight at destroy)\n",
         name, (unsigned long long)C.owed, (unsigned long long)C.delivered,
         (unsigned long long)C.dup, (unsigned long long)never, left);
  printf("%s: bytes sent %llu verified %llu abandoned in aborts %llu bad %llu\n", name,
         (unsigned long long)C.bytes_sent, (unsigned long long)C.bytes_verified,
         (unsigned long long)C.bytes_abandoned, (unsigned long long)C.bad_bytes);
  printf("%s: messages %llu, connects %llu (failed %llu), clean closes %llu, aborts %llu (RST %llu), accepts %llu\n",
         name, (unsigned long long)C.msgs, (unsigned long long)C.connects,
         (unsigned long long)C.connect_fail, (unsigned long long)C.clean_closes,
         (unsigned long long)C.aborts, (unsigned long long)C.rsts, (unsigned long long)C.accepts);
  printf("%s: recv cancels asked %llu, -ECANCELED %llu; server send EPIPE %llu, other errors %llu\n",
         name, (unsigned long long)C.cancels_asked, (unsigned long long)C.cancels_took,
         (unsigned long long)C.epipe, (unsigned long long)C.srv_send_err);
  printf("%s: timer ops %llu, fires %llu, fired while stopped %llu\n", name,
         (unsigned long long)C.timer_ops, (unsigned long long)C.timer_fires,
         (unsigned long long)C.timer_bad);
  printf("%s: RSS start %.1f MiB, warm %.1f MiB, run end %.1f MiB, after destroy %.1f MiB\n",
         name, rss0 / 1048576.0, rss_warm / 1048576.0, rss_run_end / 1048576.0, rss1 / 1048576.0);
  printf("%s: open fds start %d end %d (pool workers %u -> %u)\n", name, fds0, fds1,
         ps0.threads, pool_end);
  if (first_error[0]) {
    printf("%s: FAIL: %s\n", name, first_error);
    return -1;
  }
  printf("%s: PASS\n", name);
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--secs") && v)
      opt_secs = atof(v), i++;
    else if (!strcmp(a, "--conns") && v)
      opt_conns = atoi(v), i++;
    else if (!strcmp(a, "--timers") && v)
      opt_timers = atoi(v), i++;
    else if (!strcmp(a, "--seed") && v)
      opt_seed = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "--quiet"))
      opt_quiet = 1;
    else {
      fprintf(stderr, "usage: %s [--secs N] [--conns N] [--timers N] [--seed S] [--quiet]\n",
              argv[0]);
      return 2;
    }
  }
  if (opt_conns < 1 || opt_timers < 0 || !(opt_secs > 0)) {
    fprintf(stderr, "soak: bad option value\n");
    return 2;
  }
  /* SIGPIPE stays at its default: the library must never raise it. */
  signal(SIGPIPE, SIG_DFL);
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* Two fds per connection, the server's, pool workers' eventfds. */
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t want = (rlim_t)opt_conns * 8 + 1024;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
      rl.rlim_max = want;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      getrlimit(RLIMIT_NOFILE, &rl);
      fprintf(stderr, "soak: RLIMIT_NOFILE is %llu, want %llu: use fewer --conns\n",
              (unsigned long long)rl.rlim_cur, (unsigned long long)want);
      return 2;
    }
  }
  /* Retire idle pool workers fast so the fd count settles at the end. */
  setenv("TRILOOP_THREADS_KEEPALIVE_MS", "100", 0);
  /* Every blocking recv on the threadpool backend holds a work slot. */
  char tmax[32];
  snprintf(tmax, sizeof tmax, "%d", opt_conns * 4 + NACCEPT + 64);
  setenv("TRILOOP_THREADS_MAX", tmax, 0);

  int ids[TL_BACKEND_COUNT], n = 0;
  const char *env = getenv("TRILOOP_BACKEND");
  if (env && *env && strcmp(env, "auto")) {
    int id = tl_backend_from_name(env);
    if (id <= 0) {
      fprintf(stderr, "soak: TRILOOP_BACKEND=%s: valid: %s\n", env, tl_backend_names());
      return 2;
    }
    ids[n++] = id;
  } else {
    static const int all[] = {TL_BACKEND_URING, TL_BACKEND_EPOLL, TL_BACKEND_THREADPOOL};
    for (int k = 0; k < 3; k++) {
      char why[256] = "";
      if (tl_backend_probe(all[k], why, sizeof why) == 0)
        ids[n++] = all[k];
      else
        printf("SKIP %s: %s\n", tl_backend_id_name(all[k]), why);
    }
  }
  int passed = 0, failed = 0;
  for (int k = 0; k < n; k++) {
    if (soak_one(ids[k]) == 0)
      passed++;
    else
      failed++;
  }
  printf("soak: %d passed, %d failed\n", passed, failed);
  if (n == 0)
    return 77;
  return failed ? 1 : 0;
}
