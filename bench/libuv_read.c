/*
 * What a libuv user gets for file reads: uv_fs_read at the same depth, served
 * by libuv's thread pool (UV_THREADPOOL_SIZE, default 4; libuv 1.44 has no
 * io_uring file path).
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

struct slot {
  uv_fs_t req;
  uv_buf_t buf;
  uint64_t start;
};

static struct bench_fopts o;
static struct bench_hist *hist;
static uint64_t rng = 0x6a09e667f3bcc909ull, cursor, ops;
static double deadline;

static void on_read(uv_fs_t *req);

static void start(uv_loop_t *loop, struct slot *s) {
  s->start = bench_ns();
  int r = uv_fs_read(loop, &s->req, o.fd, &s->buf, 1,
                     (int64_t)bench_next_off(&o, &rng, &cursor), on_read);
  if (r < 0) bench_die(1, "libuv_read: uv_fs_read: %s", uv_strerror(r));
}

static void on_read(uv_fs_t *req) {
  struct slot *s = req->data;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  if (res != (ssize_t)o.bs)
    bench_die(1, "libuv_read: read returned %zd (%s)", res,
              res < 0 ? uv_strerror((int)res) : "short");
  uint64_t now = bench_ns();
  if (hist) bench_hist_add(hist, now - s->start);
  ops++;
  if ((double)now * 1e-9 < deadline) {
    s->req.data = s;
    start(req->loop, s);
  }
}

static uint64_t phase(uv_loop_t *loop, struct slot *slots, double secs, struct bench_hist *h) {
  hist = h;
  ops = 0;
  deadline = bench_now() + secs;
  for (unsigned i = 0; i < o.qd; i++) {
    slots[i].req.data = &slots[i];
    start(loop, &slots[i]);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  return ops;
}

int main(int argc, char **argv) {
  bench_fopts_parse(&o, argc, argv, "libuv_read", 0);
  if (o.threads) {
    char v[16];
    snprintf(v, sizeof v, "%u", o.threads);
    setenv("UV_THREADPOOL_SIZE", v, 1);
  }
  uv_loop_t loop;
  int r = uv_loop_init(&loop);
  if (r < 0) bench_die(1, "libuv_read: uv_loop_init: %s", uv_strerror(r));
  struct slot *slots = calloc(o.qd, sizeof *slots);
  if (!slots) bench_die(1, "libuv_read: out of memory");
  for (unsigned i = 0; i < o.qd; i++) slots[i].buf = uv_buf_init(bench_buf(o.bs), (unsigned)o.bs);
  if (o.warmup > 0) phase(&loop, slots, o.warmup, NULL);
  static struct bench_hist h;
  struct bench_span s;
  bench_span_begin(&s);
  uint64_t n = phase(&loop, slots, o.secs, &h);
  bench_span_end(&s);
  const char *tp = getenv("UV_THREADPOOL_SIZE");
  char extra[64];
  snprintf(extra, sizeof extra, "threads=%s", tp ? tp : "4");
  bench_print_file(&o, "libuv", "-", n, &s, &h, extra);
  uv_loop_close(&loop);
  return 0;
}
