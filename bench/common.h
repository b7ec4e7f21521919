/*
 * Shared helpers for the bench programs: clock and CPU time, a latency
 * histogram, options for the file workloads, and the one result line every
 * program prints (space-separated key=value pairs on stdout; everything else
 * goes to stderr).
 */
#ifndef TL_BENCH_COMMON_H
#define TL_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock, seconds. */
double bench_now(void);
/* user+sys CPU time of the whole process (all threads), seconds. */
double bench_cpu(void);

/* Stop with a message on stderr: exit status 2 (bad usage) or 1. */
void bench_die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * Latency histogram: log2 buckets split into 16 linear sub-buckets, so a
 * percentile is within ~6% of the true value and recording costs a few
 * instructions (no per-sample memory, which matters at millions of ops/s).
 */
#define BENCH_HIST_SUB 16
#define BENCH_HIST_BUCKETS (64 * BENCH_HIST_SUB)
struct bench_hist {
  uint64_t n;
  uint64_t count[BENCH_HIST_BUCKETS];
};
void bench_hist_add(struct bench_hist *h, uint64_t ns);
/* p in [0,100]; returns microseconds (0 if empty). */
double bench_hist_pct(const struct bench_hist *h, double p);
uint64_t bench_ns(void);   /* monotonic nanoseconds, for latencies */

/* Measurement window: wall time and process CPU time. */
struct bench_span {
  double t0, c0, t1, c1;
};
void bench_span_begin(struct bench_span *s);
void bench_span_end(struct bench_span *s);

/* xorshift64*: cheap, per-program, seeded. */
static inline uint64_t bench_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Options shared by the file programs. */
struct bench_fopts {
  const char *file;
  size_t bs;
  unsigned qd;
  int rand;          /* 1: random offsets, 0: sequential */
  int direct;        /* O_DIRECT */
  int write;         /* 1: writes instead of reads */
  int fsync;         /* writes: fsync after each write */
  double secs;       /* measured seconds */
  double warmup;     /* seconds run before measuring */
  unsigned threads;  /* pool programs: worker threads (0: program's default) */
  const char *threads_rule; /* --threads qd|cores (NULL: a number or the default) */
  int fixed;         /* registered buffers and file: 1, 0, -1 not given */
  uint64_t size;     /* bytes of the file used (from fstat) */
  int fd;            /* opened file */
};

/*
 * Parses --file --bs --qd --pattern --direct --rw --fsync --fixed --secs
 * --warmup --threads (and --help), validates them and opens the file; stops
 * with a clear message on anything wrong, before any work runs.  allow:
 * BENCH_ALLOW_WRITE (the program supports --rw write and --fsync),
 * BENCH_ALLOW_FIXED (--fixed 0|1: registered buffers and file).
 */
#define BENCH_ALLOW_WRITE 1
#define BENCH_ALLOW_FIXED 2
void bench_fopts_parse(struct bench_fopts *o, int argc, char **argv,
                       const char *prog, int allow_write);

/* Next offset for a slot: random bs-aligned, or the shared sequential
 * cursor (wrapping at the end of the file). */
uint64_t bench_next_off(struct bench_fopts *o, uint64_t *rng, uint64_t *cursor);

/* Aligned buffer (4096) filled with a pattern; stops on failure. */
void *bench_buf(size_t len);

/* Result line.  Writes "workload=... impl=... backend=... ops secs
 * ops_per_s cpu_us_per_op" and the file params, then extra (may be NULL or
 * "" , already formatted "k=v k=v"), then a newline. */
void bench_print_file(const struct bench_fopts *o, const char *impl,
                      const char *backend, uint64_t ops,
                      const struct bench_span *s,
                      const struct bench_hist *h, const char *extra);

#endif
