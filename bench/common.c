#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t bench_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

void bench_die(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(status);
}

/* Bucket = (position of the top bit) * SUB + the next 4 bits below it;
 * values below SUB get their own exact buckets. */
static unsigned hist_index(uint64_t v) {
  if (v < BENCH_HIST_SUB) return (unsigned)v;
  unsigned top = 63u - (unsigned)__builtin_clzll(v);
  unsigned sub = (unsigned)(v >> (top - 4)) & (BENCH_HIST_SUB - 1);
  return (top - 3) * BENCH_HIST_SUB + sub;
}

static double hist_value(unsigned idx) {
  if (idx < BENCH_HIST_SUB) return idx;
  unsigned top = idx / BENCH_HIST_SUB + 3, sub = idx % BENCH_HIST_SUB;
  double lo = (double)(1ull << top) + (double)sub * (double)(1ull << (top - 4));
  return lo + (double)(1ull << (top - 4)) / 2;   /* middle of the bucket */
}

void bench_hist_add(struct bench_hist *h, uint64_t ns) {
  h->count[hist_index(ns)]++;
  h->n++;
}

double bench_hist_pct(const struct bench_hist *h, double p) {
  if (!h->n) return 0;
  uint64_t want = (uint64_t)((double)h->n * p / 100.0);
  if (want >= h->n) want = h->n - 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
    seen += h->count[i];
    if (seen > want) return hist_value(i) / 1000.0;
  }
  return 0;
}

void bench_span_begin(struct bench_span *s) {
  s->c0 = bench_cpu();
  s->t0 = bench_now();
}

void bench_span_end(struct bench_span *s) {
  s->t1 = bench_now();
  s->c1 = bench_cpu();
}

static void usage(const char *prog, int allow) {
  fprintf(stderr,
          "usage: %s --file PATH [--bs BYTES] [--qd N] [--pattern rand|seq]\n"
          "       [--direct 0|1] [--secs S] [--warmup S] [--threads N|qd|cores]%s%s\n",
          prog, allow & BENCH_ALLOW_WRITE ? " [--rw read|write] [--fsync 0|1]" : "",
          allow & BENCH_ALLOW_FIXED ? " [--fixed [0|1]]" : "");
}

static unsigned long long num(const char *prog, const char *opt, const char *v) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 0);
  if (errno || end == v || *end || v[0] == '-')
    bench_die(2, "%s: %s wants a non-negative integer, got '%s'", prog, opt, v);
  return x;
}

static double fnum(const char *prog, const char *opt, const char *v) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || *end || !(x >= 0) || x > 1e6)
    bench_die(2, "%s: %s wants seconds >= 0, got '%s'", prog, opt, v);
  return x;
}

void bench_fopts_parse(struct bench_fopts *o, int argc, char **argv,
                       const char *prog, int allow) {
  memset(o, 0, sizeof *o);
  o->bs = 4096;
  o->qd = 1;
  o->rand = 1;
  o->secs = 1;
  o->warmup = 0.2;
  o->fd = -1;
  o->fixed = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(prog, allow);
      exit(0);
    }
    /* A bare --fixed means --fixed 1. */
    if (!strcmp(a, "--fixed") && (allow & BENCH_ALLOW_FIXED) &&
        (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
      o->fixed = 1;
      continue;
    }
    if (strncmp(a, "--", 2) || i + 1 >= argc) {
      usage(prog, allow);
      bench_die(2, "%s: bad or incomplete option '%s'", prog, a);
    }
    const char *v = argv[++i];
    if (!strcmp(a, "--file")) o->file = v;
    else if (!strcmp(a, "--bs")) o->bs = num(prog, a, v);
    else if (!strcmp(a, "--qd")) o->qd = (unsigned)num(prog, a, v);
    else if (!strcmp(a, "--threads")) {
      /* "qd": one thread per queue slot; "cores": one per online CPU. */
      if (!strcmp(v, "qd")) o->threads_rule = "qd";
      else if (!strcmp(v, "cores")) o->threads_rule = "cores";
      else {
        o->threads = (unsigned)num(prog, a, v);
        o->threads_rule = NULL;
      }
    }
    else if (!strcmp(a, "--direct")) o->direct = (int)num(prog, a, v);
    else if (!strcmp(a, "--fsync")) o->fsync = (int)num(prog, a, v);
    else if (!strcmp(a, "--secs")) o->secs = fnum(prog, a, v);
    else if (!strcmp(a, "--warmup")) o->warmup = fnum(prog, a, v);
    else if (!strcmp(a, "--pattern")) {
      if (!strcmp(v, "rand")) o->rand = 1;
      else if (!strcmp(v, "seq")) o->rand = 0;
      else bench_die(2, "%s: unknown pattern '%s' (rand or seq)", prog, v);
    } else if (!strcmp(a, "--fixed") && (allow & BENCH_ALLOW_FIXED)) {
      o->fixed = (int)num(prog, a, v);
      if (o->fixed > 1) bench_die(2, "%s: --fixed takes 0 or 1", prog);
    } else if (!strcmp(a, "--rw") && (allow & BENCH_ALLOW_WRITE)) {
      if (!strcmp(v, "read")) o->write = 0;
      else if (!strcmp(v, "write")) o->write = 1;
      else bench_die(2, "%s: unknown workload '%s' (read or write)", prog, v);
    } else {
      usage(prog, allow);
      bench_die(2, "%s: unknown option '%s'", prog, a);
    }
  }
  if (!o->file) bench_die(2, "%s: --file PATH is required", prog);
  if (o->qd == 0 || o->qd > 4096)
    bench_die(2, "%s: --qd must be 1..4096, got %u", prog, o->qd);
  if (o->bs == 0 || o->bs > (64u << 20) || o->bs % 512)
    bench_die(2, "%s: --bs must be a multiple of 512 up to 64 MiB, got %zu", prog, o->bs);
  if (o->direct > 1 || o->fsync > 1)
    bench_die(2, "%s: --direct and --fsync take 0 or 1", prog);
  if (o->direct && o->bs % 4096)
    bench_die(2, "%s: --direct 1 wants --bs a multiple of 4096", prog);
  if (o->fsync && !o->write)
    bench_die(2, "%s: --fsync 1 only applies to --rw write", prog);
  if (o->secs <= 0) bench_die(2, "%s: --secs must be > 0", prog);
  if (o->threads > 1024) bench_die(2, "%s: --threads must be <= 1024", prog);

  int flags = (o->write ? O_RDWR : O_RDONLY) | O_CLOEXEC | (o->direct ? O_DIRECT : 0);
  o->fd = open(o->file, flags);
  if (o->fd < 0)
    bench_die(2, "%s: cannot open %s%s for %s: %s", prog, o->file,
              o->direct ? " with O_DIRECT" : "", o->write ? "writing" : "reading",
              strerror(errno));
  struct stat st;
  if (fstat(o->fd, &st) < 0) bench_die(1, "%s: fstat %s: %s", prog, o->file, strerror(errno));
  if (!S_ISREG(st.st_mode)) bench_die(2, "%s: %s is not a regular file", prog, o->file);
  o->size = (uint64_t)st.st_size / o->bs * o->bs;
  if (o->size < o->bs * 2)
    bench_die(2, "%s: %s is too small (%lld bytes) for --bs %zu; create it first "
              "(residency --create)", prog, o->file, (long long)st.st_size, o->bs);
}

uint64_t bench_next_off(struct bench_fopts *o, uint64_t *rng, uint64_t *cursor) {
  if (o->rand) return bench_rand(rng) % (o->size / o->bs) * o->bs;
  uint64_t off = *cursor;
  *cursor = off + o->bs >= o->size ? 0 : off + o->bs;
  return off;
}

void *bench_buf(size_t len) {
  void *p;
  if (posix_memalign(&p, 4096, len)) bench_die(1, "out of memory (%zu bytes)", len);
  memset(p, 0x5a, len);
  return p;
}

void bench_print_file(const struct bench_fopts *o, const char *impl,
                      const char *backend, uint64_t ops,
                      const struct bench_span *s,
                      const struct bench_hist *h, const char *extra) {
  double secs = s->t1 - s->t0, cpu = s->c1 - s->c0;
  if (secs <= 0) secs = 1e-9;
  printf("workload=%s impl=%s backend=%s ops=%llu secs=%.4f ops_per_s=%.1f "
         "cpu_us_per_op=%.3f qd=%u bs=%zu pattern=%s direct=%d fsync=%d "
         "mbps=%.1f",
         o->write ? "file-write" : "file-read", impl, backend,
         (unsigned long long)ops, secs, (double)ops / secs,
         ops ? cpu * 1e6 / (double)ops : 0.0, o->qd, o->bs,
         o->rand ? "rand" : "seq", o->direct, o->fsync,
         (double)ops * (double)o->bs / secs / 1e6);
  if (h && h->n)
    printf(" p50_us=%.1f p99_us=%.1f", bench_hist_pct(h, 50), bench_hist_pct(h, 99));
  if (extra && *extra) printf(" %s", extra);
  putchar('\n');
  fflush(stdout);
}
