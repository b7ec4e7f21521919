/*
 * raw_uring_echo: the smallest honest io_uring echo server, the practical
 * limit triloop's uring backend is measured against.
 *
 * One thread, one ring; per connection one RECV SQE in flight, then one SEND
 * SQE for what was received (resent on a short send), then RECV again.  All
 * SQEs of an iteration go in with the wait: one io_uring_enter per loop
 * iteration.  Ring flags: single issuer + deferred task running where the
 * kernel accepts them (falling back to cooperative task running, then to
 * none); --plain asks for no flags at all (issue #3 measured 0.73x of epoll
 * for that).
 *
 * --multishot: PITFALLS 7's last step.  Per connection one multishot RECV
 * (armed once, re-armed only when the kernel ends it) picking buffers from a
 * provided buffer ring (--ring-bufs buffers of --bufsize, default 1024 x
 * 4 KiB); each message is sent straight from the buffer the kernel chose,
 * which goes back to the ring when the send completes.
 *
 * On SIGTERM/SIGINT it stops and prints (stderr, or --stats FILE):
 *   impl=raw-uring bytes=.. iterations=.. syscalls=.. syscalls_per_op=..
 * where an op is --msg bytes echoed (a round trip of the client).
 */
#include "sock_common.h"

#include <liburing.h>
#include <signal.h>
#include <sys/mman.h>

static const char *prog = "raw_uring_echo";
static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

enum { K_ACCEPT = 1, K_RECV = 2, K_SEND = 3, K_MSRECV = 4, K_MSSEND = 5 };

struct conn {
  int fd;
  size_t len, off;     /* bytes received, bytes of them sent */
  /* --multishot: buffers received and not yet sent back, a FIFO through
   * bnext[]; the head is being sent (off bytes of blen[head] so far). */
  int head, tail;
  int armed, sending;
  char buf[];
};

static struct io_uring ring;
static size_t bufsize = 65536;
static uint64_t enters, bytes_echoed;
static struct io_uring_buf_ring *br;
static unsigned nbufs = 1024;
static char *bufmem;
static int *bnext;
static unsigned *blen;
#define BGID 7

static struct io_uring_sqe *get_sqe(void)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  while (!sqe) {
    /* SQ full: hand what we have to the kernel and keep going. */
    io_uring_submit(&ring);
    enters++;
    sqe = io_uring_get_sqe(&ring);
  }
  return sqe;
}

static void *tag(void *p, int kind) { return (void *)((uintptr_t)p | (uintptr_t)kind); }

static void queue_recv(struct conn *c)
{
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_recv(sqe, c->fd, c->buf, bufsize, 0);
  io_uring_sqe_set_data(sqe, tag(c, K_RECV));
}

static void queue_send(struct conn *c)
{
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_send(sqe, c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, tag(c, K_SEND));
}

static void queue_accept(int lfd)
{
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data(sqe, tag(NULL, K_ACCEPT));
}

static void conn_end(struct conn *c)
{
  close(c->fd);
  free(c);
}

static void ms_arm(struct conn *c)
{
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BGID;
  io_uring_sqe_set_data(sqe, tag(c, K_MSRECV));
  c->armed = 1;
}

static void ms_send_head(struct conn *c)
{
  struct io_uring_sqe *sqe = get_sqe();
  io_uring_prep_send(sqe, c->fd, bufmem + (size_t)c->head * bufsize + c->off,
                     blen[c->head] - c->off, MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, tag(c, K_MSSEND));
  c->sending = 1;
}

static void ms_recycle(int bid)
{
  io_uring_buf_ring_add(br, bufmem + (size_t)bid * bufsize, (unsigned)bufsize,
                        (unsigned short)bid, io_uring_buf_ring_mask(nbufs), 0);
  io_uring_buf_ring_advance(br, 1);
}

/* Drops the queued buffers; frees the conn once the kernel holds nothing
 * of it (no multishot armed, no send in flight). */
static void ms_maybe_end(struct conn *c)
{
  if (c->armed || c->sending)
    return;
  while (c->head >= 0) {
    int next = bnext[c->head];
    ms_recycle(c->head);
    c->head = next;
  }
  conn_end(c);
}

static void ms_on_recv(struct conn *c, int res, unsigned flags)
{
  if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
    int bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
    blen[bid] = (unsigned)res;
    bnext[bid] = -1;
    if (c->head < 0) {
      c->head = c->tail = bid;
      c->off = 0;
      if (c->armed >= 0)
        ms_send_head(c);
    } else {
      bnext[c->tail] = bid;
      c->tail = bid;
    }
  }
  if (flags & IORING_CQE_F_MORE)
    return;
  c->armed = 0;
  /* Ended without EOF or a hard error: out of buffers, or a CQ overflow. */
  if (res > 0 || res == -ENOBUFS) {
    ms_arm(c);
    return;
  }
  c->armed = -1;      /* EOF or error: finish the sends in flight, then end */
  if (!c->sending) {
    c->armed = 0;
    ms_maybe_end(c);
  }
}

static void ms_on_send(struct conn *c, int res)
{
  c->sending = 0;
  if (res < 0) {
    if (c->armed > 0) {   /* the kernel still holds the recv: cancel it */
      struct io_uring_sqe *sqe = get_sqe();
      io_uring_prep_cancel(sqe, tag(c, K_MSRECV), 0);
      io_uring_sqe_set_data(sqe, NULL);
      c->armed = -1;
      return;
    }
    c->armed = 0;
    ms_maybe_end(c);
    return;
  }
  c->off += (size_t)res;
  bytes_echoed += (uint64_t)res;
  if (c->off < blen[c->head]) {
    ms_send_head(c);
    return;
  }
  int done = c->head;
  c->head = bnext[done];
  c->off = 0;
  ms_recycle(done);
  if (c->head >= 0) {
    ms_send_head(c);
  } else if (c->armed < 0) {
    c->armed = 0;
    ms_maybe_end(c);
  }
}

int main(int argc, char **argv)
{
  long port = -1, cpu = 0, msg = 0, entries = 4096;
  int plain = 0, multishot = 0;
  int bufsize_set = 0;
  const char *stats = NULL;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--port")) { port = sb_parse_long(prog, a, v, 0, 65535); i++; }
    else if (!strcmp(a, "--plain")) plain = 1;
    else if (!strcmp(a, "--multishot")) multishot = 1;
    else if (!strcmp(a, "--ring-bufs")) { nbufs = (unsigned)sb_parse_long(prog, a, v, 1, 32768); i++; }
    else if (!strcmp(a, "--stats")) { stats = v; i++; if (!v) sb_die(prog, "--stats needs a file"); }
    else if (!strcmp(a, "--cpu")) { cpu = sb_parse_long(prog, a, v, -1, 4096); i++; }
    else if (!strcmp(a, "--msg")) { msg = sb_parse_long(prog, a, v, 1, 1 << 20); i++; }
    else if (!strcmp(a, "--bufsize")) { bufsize = (size_t)sb_parse_long(prog, a, v, 64, 1 << 20); i++; bufsize_set = 1; }
    else if (!strcmp(a, "--entries")) { entries = sb_parse_long(prog, a, v, 8, 32768); i++; }
    else {
      fprintf(stderr, "usage: %s --port P [--plain] [--multishot [--ring-bufs N]] [--cpu N|-1] [--stats FILE] [--msg BYTES]"
                      " [--bufsize B] [--entries N]\n", prog);
      sb_die(prog, "unknown option '%s'", a);
    }
  }
  if (port < 0)
    sb_die(prog, "--port is required");
  if (multishot && (nbufs & (nbufs - 1)))
    sb_die(prog, "--ring-bufs must be a power of two");
  if (multishot && !bufsize_set)
    bufsize = 4096;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;        /* no SA_RESTART: io_uring_enter returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int pinned = sb_pin((int)cpu);
  if (pinned >= 0)
    fprintf(stderr, "%s: pinned to cpu %d\n", prog, pinned);
  else
    fprintf(stderr, "%s: not pinned\n", prog);

  struct io_uring_params p;
  static const struct { unsigned flags; const char *name; } tries[] = {
    { IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "single_issuer+defer_taskrun" },
    { IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "coop_taskrun" },
    { 0, "none" },
  };
  int ret = -EINVAL;
  const char *flags_name = "none";
  for (size_t t = plain ? 2 : 0; t < sizeof tries / sizeof tries[0]; t++) {
    memset(&p, 0, sizeof p);
    p.flags = tries[t].flags | IORING_SETUP_CQSIZE;
    p.cq_entries = (unsigned)entries * 4;
    ret = io_uring_queue_init_params((unsigned)entries, &ring, &p);
    if (ret == 0) {
      flags_name = tries[t].name;
      break;
    }
    if (ret != -EINVAL)
      break;
  }
  if (ret < 0)
    sb_die(prog, "io_uring_queue_init: %s", strerror(-ret));
  fprintf(stderr, "%s: ring flags %s\n", prog, flags_name);
  if (multishot) {
    /* liburing 2.3 has no io_uring_setup_buf_ring: map and register it. */
    size_t rsz = nbufs * sizeof(struct io_uring_buf);
    br = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bufmem = mmap(NULL, nbufs * bufsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bnext = calloc(nbufs, sizeof *bnext);
    blen = calloc(nbufs, sizeof *blen);
    if (br == MAP_FAILED || bufmem == MAP_FAILED || !bnext || !blen)
      sb_die(prog, "out of memory for the buffer ring");
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = nbufs;
    reg.bgid = BGID;
    ret = io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret < 0)
      sb_die(prog, "io_uring_register_buf_ring: %s", strerror(-ret));
    for (unsigned i = 0; i < nbufs; i++)
      io_uring_buf_ring_add(br, bufmem + (size_t)i * bufsize, (unsigned)bufsize,
                            (unsigned short)i, io_uring_buf_ring_mask(nbufs), (int)i);
    io_uring_buf_ring_advance(br, (int)nbufs);
    fprintf(stderr, "%s: multishot recv, %u provided buffers of %zu bytes\n", prog, nbufs, bufsize);
  }

  int lfd = sb_listen((int)port, 0, 4096);
  if (lfd < 0)
    sb_die(prog, "listen on 127.0.0.1:%ld: %s", port, strerror(-lfd));
  fprintf(stderr, "%s: listening on 127.0.0.1:%d\n", prog, sb_local_port(lfd));
  queue_accept(lfd);

  while (!stop) {
    ret = io_uring_submit_and_wait(&ring, 1);
    enters++;
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
      sb_die(prog, "io_uring_submit_and_wait: %s", strerror(-ret));
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
      int kind = (int)(ud & 7);
      struct conn *c = (struct conn *)(ud & ~(uintptr_t)7);
      int res = cqe->res;
      if (kind == K_ACCEPT) {
        if (res >= 0) {
          struct conn *nc = malloc(sizeof *nc + (multishot ? 0 : bufsize));
          if (!nc) {
            close(res);
          } else {
            nc->fd = res;
            nc->head = nc->tail = -1;
            nc->armed = nc->sending = 0;
            nc->off = 0;
            sb_nodelay(res);
            if (multishot)
              ms_arm(nc);
            else
              queue_recv(nc);
          }
        } else if (res != -EINTR && res != -ECONNABORTED) {
          fprintf(stderr, "%s: accept: %s\n", prog, strerror(-res));
        }
        queue_accept(lfd);
      } else if (kind == K_RECV) {
        if (res <= 0) {
          conn_end(c);
        } else {
          c->len = (size_t)res;
          c->off = 0;
          queue_send(c);
        }
      } else if (kind == K_MSRECV) {
        ms_on_recv(c, res, cqe->flags);
      } else if (kind == K_MSSEND) {
        ms_on_send(c, res);
      } else if (kind == K_SEND) {
        if (res < 0) {
          conn_end(c);
        } else {
          c->off += (size_t)res;
          bytes_echoed += (uint64_t)res;
          if (c->off < c->len)
            queue_send(c);
          else
            queue_recv(c);
        }
      }
    }
    io_uring_cq_advance(&ring, seen);
  }

  /* Exit without draining: the process goes away with its ring and conns. */
  char line[256], per[32] = "-";
  double ops = msg ? (double)bytes_echoed / (double)msg : 0;
  if (ops > 0)
    snprintf(per, sizeof per, "%.3f", (double)enters / ops);
  snprintf(line, sizeof line, "impl=%s flags=%s bytes=%llu iterations=%llu syscalls=%llu syscalls_per_op=%s",
           multishot ? "raw-uring-ms" : plain ? "raw-uring-plain" : "raw-uring", flags_name, (unsigned long long)bytes_echoed,
           (unsigned long long)enters, (unsigned long long)enters, per);
  sb_write_stats(stats, line);
  io_uring_queue_exit(&ring);
  return 0;
}
