/*
 * The practical limit for file reads through io_uring on this machine: a
 * minimal reader with no event loop around it.  qd reads stay in flight;
 * every completion batch is refilled and submitted with the next wait in one
 * io_uring_enter; buffers and the file are registered (READ_FIXED on a fixed
 * file), and the ring is single-issuer with deferred task running when the
 * kernel has it.  --fixed 0 reads into the same buffers with plain READ on
 * the plain fd (the default is --fixed 1).
 */
#include "common.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

struct slot {
  uint64_t start;
};

static struct io_uring ring;
static struct bench_fopts o;
static struct slot *slots;
static struct iovec *iov;
static uint64_t rng = 0x853c49e6748fea9bull, cursor, enters;

static void queue(unsigned i) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  if (!sqe) bench_die(1, "raw_uring_read: SQ full (ring smaller than qd?)");
  if (o.fixed) {
    io_uring_prep_read_fixed(sqe, 0, iov[i].iov_base, (unsigned)o.bs,
                             bench_next_off(&o, &rng, &cursor), (int)i);
    sqe->flags |= IOSQE_FIXED_FILE;
  } else {
    io_uring_prep_read(sqe, o.fd, iov[i].iov_base, (unsigned)o.bs,
                       bench_next_off(&o, &rng, &cursor));
  }
  io_uring_sqe_set_data64(sqe, i);
  slots[i].start = bench_ns();
}

/* Runs for secs; counts completions (and latencies if h) until the ring is
 * drained after the deadline. */
static uint64_t phase(double secs, struct bench_hist *h) {
  uint64_t ops = 0;
  unsigned inflight = o.qd;
  double end = bench_now() + secs;
  for (unsigned i = 0; i < o.qd; i++) queue(i);
  while (inflight) {
    int r = io_uring_submit_and_wait(&ring, 1);
    enters++;
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
      bench_die(1, "raw_uring_read: io_uring_enter: %s", strerror(-r));
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    int more = bench_now() < end;
    io_uring_for_each_cqe(&ring, head, cqe) {
      unsigned i = (unsigned)cqe->user_data;
      if (cqe->res != (int)o.bs)
        bench_die(1, "raw_uring_read: read returned %d (%s)", cqe->res,
                  cqe->res < 0 ? strerror(-cqe->res) : "short read");
      uint64_t now = bench_ns();
      if (h) bench_hist_add(h, now - slots[i].start);
      ops++;
      seen++;
      if (more) queue(i);
      else inflight--;
    }
    io_uring_cq_advance(&ring, seen);
  }
  return ops;
}

int main(int argc, char **argv) {
  bench_fopts_parse(&o, argc, argv, "raw_uring_read", BENCH_ALLOW_FIXED);
  if (o.fixed < 0) o.fixed = 1;
  unsigned entries = o.qd < 8 ? 8 : o.qd;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int r = io_uring_queue_init_params(entries, &ring, &p);
  const char *mode = "single_issuer+defer_taskrun";
  if (r < 0) {
    memset(&p, 0, sizeof p);
    mode = "plain";
    r = io_uring_queue_init_params(entries, &ring, &p);
  }
  if (r < 0) bench_die(1, "raw_uring_read: io_uring_queue_init: %s", strerror(-r));
  slots = calloc(o.qd, sizeof *slots);
  iov = calloc(o.qd, sizeof *iov);
  if (!slots || !iov) bench_die(1, "raw_uring_read: out of memory");
  for (unsigned i = 0; i < o.qd; i++) {
    iov[i].iov_base = bench_buf(o.bs);
    iov[i].iov_len = o.bs;
  }
  if (o.fixed && (r = io_uring_register_buffers(&ring, iov, o.qd)) < 0)
    bench_die(1, "raw_uring_read: register_buffers: %s (RLIMIT_MEMLOCK?)", strerror(-r));
  if (o.fixed && (r = io_uring_register_files(&ring, &o.fd, 1)) < 0)
    bench_die(1, "raw_uring_read: register_files: %s", strerror(-r));
  fprintf(stderr, "raw_uring_read: ring %u entries, %s, %s\n", entries, mode,
          o.fixed ? "registered buffers and file" : "plain buffers and fd");

  if (o.warmup > 0) phase(o.warmup, NULL);
  static struct bench_hist h;
  struct bench_span s;
  enters = 0;
  bench_span_begin(&s);
  uint64_t ops = phase(o.secs, &h);
  bench_span_end(&s);
  char extra[96];
  snprintf(extra, sizeof extra, "syscalls_per_op=%.3f fixed=%d",
           ops ? (double)enters / (double)ops : 0.0, o.fixed);
  bench_print_file(&o, "raw-uring", "-", ops, &s, &h, extra);
  io_uring_queue_exit(&ring);
  return 0;
}
