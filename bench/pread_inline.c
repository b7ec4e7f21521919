/*
 * The floor: a plain pread (or pwrite [+ fsync]) loop on the calling thread,
 * no loop, no queue.  Depth is 1 by construction.
 */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct bench_fopts o;
static uint64_t rng = 0x2b992ddfa23249d6ull, cursor, syscalls;

static uint64_t phase(void *buf, double secs, struct bench_hist *h) {
  uint64_t ops = 0;
  double end = bench_now() + secs;
  /* Checking the clock every op would add a vDSO call to a loop this
   * short; the latency stamp already reads it, so reuse that. */
  for (;;) {
    uint64_t t0 = bench_ns();
    if ((double)t0 * 1e-9 >= end) break;
    uint64_t off = bench_next_off(&o, &rng, &cursor);
    ssize_t r = o.write ? pwrite(o.fd, buf, o.bs, (off_t)off)
                        : pread(o.fd, buf, o.bs, (off_t)off);
    syscalls++;
    if (r != (ssize_t)o.bs)
      bench_die(1, "pread_inline: %s returned %zd (%s)", o.write ? "pwrite" : "pread", r,
                r < 0 ? strerror(errno) : "short");
    if (o.fsync) {
      if (fsync(o.fd) < 0) bench_die(1, "pread_inline: fsync: %s", strerror(errno));
      syscalls++;
    }
    if (h) bench_hist_add(h, bench_ns() - t0);
    ops++;
  }
  return ops;
}

int main(int argc, char **argv) {
  bench_fopts_parse(&o, argc, argv, "pread_inline", 1);
  if (o.qd != 1) bench_die(2, "pread_inline: runs at --qd 1 only (got %u)", o.qd);
  void *buf = bench_buf(o.bs);
  if (o.warmup > 0) phase(buf, o.warmup, NULL);
  static struct bench_hist h;
  struct bench_span s;
  syscalls = 0;
  bench_span_begin(&s);
  uint64_t ops = phase(buf, o.secs, &h);
  bench_span_end(&s);
  char extra[64];
  snprintf(extra, sizeof extra, "syscalls_per_op=%.3f", ops ? (double)syscalls / (double)ops : 0.0);
  bench_print_file(&o, "pread", "-", ops, &s, &h, extra);
  free(buf);
  return 0;
}
