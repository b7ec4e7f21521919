/*
 * File IO through triloop: qd ops in flight through tl_read (or tl_write,
 * optionally followed by tl_fsync), each resubmitted from its own callback
 * until the deadline.  The backend comes from TRILOOP_BACKEND (uring, epoll,
 * threadpool).  --fixed 1 registers the slots' buffers and the file with the
 * loop and uses tl_read_fixed / tl_write_fixed (on uring: READ_FIXED on a
 * registered file; elsewhere the same plain preads).  A backend that cannot start here exits 77 with
 * "unavailable: <reason>" on stderr, which the driver reports.
 */
#include "common.h"
#include "triloop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
  tl_op op;
  void *buf;
  uint64_t start;
  unsigned index;    /* its registered buffer (--fixed 1) */
  int syncing;
};

static struct bench_fopts o;
static struct bench_hist *hist;
static uint64_t rng = 0x9fb21c651e98df25ull, cursor, ops;
static double deadline;
static unsigned inflight;

static void on_done(tl_loop *loop, tl_op *op, int64_t res);

static void start(tl_loop *loop, struct slot *s) {
  uint64_t off = bench_next_off(&o, &rng, &cursor);
  s->syncing = 0;
  s->start = bench_ns();
  unsigned i = s->index;
  int r;
  if (o.fixed > 0)
    r = o.write ? tl_write_fixed(loop, &s->op, o.fd, s->buf, o.bs, (int64_t)off, i, on_done)
                : tl_read_fixed(loop, &s->op, o.fd, s->buf, o.bs, (int64_t)off, i, on_done);
  else
    r = o.write ? tl_write(loop, &s->op, o.fd, s->buf, o.bs, (int64_t)off, on_done)
                : tl_read(loop, &s->op, o.fd, s->buf, o.bs, (int64_t)off, on_done);
  if (r < 0) bench_die(1, "file_read: submit: %s", tl_strerror(r));
}

static void on_done(tl_loop *loop, tl_op *op, int64_t res) {
  struct slot *s = op->data;
  if (s->syncing ? res != 0 : res != (int64_t)o.bs)
    bench_die(1, "file_read: %s returned %lld (%s)",
              s->syncing ? "fsync" : o.write ? "write" : "read", (long long)res,
              res < 0 ? tl_strerror((int)res) : "short");
  if (o.fsync && !s->syncing) {
    s->syncing = 1;
    int r = tl_fsync(loop, op, o.fd, on_done);
    if (r < 0) bench_die(1, "file_read: tl_fsync: %s", tl_strerror(r));
    return;
  }
  uint64_t now = bench_ns();
  if (hist) bench_hist_add(hist, now - s->start);
  ops++;
  if ((double)now * 1e-9 < deadline) start(loop, s);
  else inflight--;
}

static uint64_t phase(tl_loop *loop, struct slot *slots, double secs, struct bench_hist *h) {
  hist = h;
  ops = 0;
  inflight = o.qd;
  deadline = bench_now() + secs;
  for (unsigned i = 0; i < o.qd; i++) start(loop, &slots[i]);
  while (inflight) {
    int r = tl_run(loop, TL_RUN_DEFAULT);
    if (r < 0) bench_die(1, "file_read: tl_run: %s", tl_strerror(r));
    if (r == 0 && inflight) bench_die(1, "file_read: loop ran dry with %u ops owed", inflight);
  }
  return ops;
}

int main(int argc, char **argv) {
  bench_fopts_parse(&o, argc, argv, "file_read", BENCH_ALLOW_WRITE | BENCH_ALLOW_FIXED);
  tl_loop *loop;
  int r = tl_loop_new(&loop, 0);
  if (r < 0) {
    const char *want = getenv("TRILOOP_BACKEND");
    char why[200] = "";
    int id = want ? tl_backend_from_name(want) : -1;
    if (id >= 0) tl_backend_probe(id, why, sizeof why);
    fprintf(stderr, "unavailable: %s%s%s\n", tl_strerror(r), *why ? ": " : "", why);
    return 77;
  }
  struct slot *slots = calloc(o.qd, sizeof *slots);
  if (!slots) bench_die(1, "file_read: out of memory");
  for (unsigned i = 0; i < o.qd; i++) {
    slots[i].buf = bench_buf(o.bs);
    slots[i].op.data = &slots[i];
    slots[i].index = i;
  }
  if (o.fixed > 0) {
    struct iovec *iov = calloc(o.qd, sizeof *iov);
    if (!iov) bench_die(1, "file_read: out of memory");
    for (unsigned i = 0; i < o.qd; i++) {
      iov[i].iov_base = slots[i].buf;
      iov[i].iov_len = o.bs;
    }
    if ((r = tl_register_buffers(loop, iov, o.qd)) < 0)
      bench_die(1, "file_read: tl_register_buffers: %s%s", tl_strerror(r),
                r == -ENOMEM ? " (RLIMIT_MEMLOCK? see ulimit -l)" : "");
    if ((r = tl_register_files(loop, &o.fd, 1)) < 0)
      bench_die(1, "file_read: tl_register_files: %s", tl_strerror(r));
    free(iov);
  }
  if (o.warmup > 0) phase(loop, slots, o.warmup, NULL);

  static struct bench_hist h;
  struct tl_loop_stats st0, st1;
  struct bench_span s;
  tl_loop_stats(loop, &st0);
  bench_span_begin(&s);
  uint64_t n = phase(loop, slots, o.secs, &h);
  bench_span_end(&s);
  tl_loop_stats(loop, &st1);

  struct tl_pool_stats ps;
  tl_pool_stats(&ps);
  char extra[192];
  snprintf(extra, sizeof extra,
           "syscalls_per_op=%.3f iters_per_op=%.3f fixed=%d nowait_hits=%llu nowait_eagain=%llu",
           n ? (double)(st1.syscalls - st0.syscalls) / (double)n : 0.0,
           n ? (double)(st1.iterations - st0.iterations) / (double)n : 0.0, o.fixed > 0,
           (unsigned long long)ps.nowait_hits, (unsigned long long)ps.nowait_eagain);
  /* TRILOOP_FILE_NOWAIT=1 on a backend that uses it: its own row. */
  const char *nw = getenv("TRILOOP_FILE_NOWAIT");
  char bname[48];
  snprintf(bname, sizeof bname, "%s%s", tl_backend_name(loop),
           nw && !strcmp(nw, "1") && tl_backend(loop) != TL_BACKEND_URING ? "+nowait" : "");
  /* The study runs variants (a smaller pool, say) under their own name. */
  const char *impl = getenv("TRILOOP_BENCH_IMPL");
  bench_print_file(&o, impl && *impl ? impl : "triloop", bname, n, &s, &h, extra);
  r = tl_loop_destroy(loop);
  if (r < 0) bench_die(1, "file_read: tl_loop_destroy: %s", tl_strerror(r));
  return 0;
}
