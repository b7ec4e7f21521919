/*
 * Small helpers shared by the socket and loop-overhead benchmarks
 * (echo servers, echo client, stream, accept rate, loop overhead).
 * Header-only so each program links only what it needs (raw liburing and
 * libev programs do not link libtriloop).
 */
#ifndef TL_BENCH_SOCK_COMMON_H
#define TL_BENCH_SOCK_COMMON_H

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline double sb_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t sb_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* user+sys seconds of RUSAGE_SELF / RUSAGE_THREAD / RUSAGE_CHILDREN */
static inline double sb_cpu(int who)
{
  struct rusage ru;
  if (getrusage(who, &ru) != 0)
    return 0.0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* CPU seconds (all threads) of another process, from /proc; <0 on error.
 * Clock-tick resolution (10 ms), fine over runs of a second. */
static inline double sb_proc_cpu(int pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1.0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* comm may contain spaces and parentheses: fields start after the last ')' */
  char *p = strrchr(buf, ')');
  if (!p)
    return -1.0;
  p += 2;
  unsigned long long ut = 0, st = 0;
  /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt utime(14) stime(15) */
  if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1.0;
  long hz = sysconf(_SC_CLK_TCK);
  return (double)(ut + st) / (double)(hz > 0 ? hz : 100);
}

static inline int sb_ncpu(void)
{
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    return 1;
  return CPU_COUNT(&set);
}

/* Pins the calling thread to cpu (modulo the cpus we may use); returns the
 * cpu pinned to or -1.  On a 1-cpu machine pinning is pointless: -1. */
static inline int sb_pin(int cpu)
{
  cpu_set_t allowed, one;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
    return -1;
  int n = CPU_COUNT(&allowed);
  if (n < 2 || cpu < 0)
    return -1;
  int want = cpu % n, seen = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &allowed))
      continue;
    if (seen++ == want) {
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      if (sched_setaffinity(0, sizeof one, &one) != 0)
        return -1;
      return c;
    }
  }
  return -1;
}

static inline void sb_die(const char *prog, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(2);
}

static inline long sb_parse_long(const char *prog, const char *opt, const char *s, long min, long max)
{
  char *end;
  errno = 0;
  long v = s ? strtol(s, &end, 10) : 0;
  if (!s || errno || end == s || *end || v < min || v > max)
    sb_die(prog, "%s needs an integer in %ld..%ld, got '%s'", opt, min, max, s ? s : "(nothing)");
  return v;
}

static inline double sb_parse_double(const char *prog, const char *opt, const char *s, double min, double max)
{
  char *end;
  errno = 0;
  double v = s ? strtod(s, &end) : 0;
  if (!s || errno || end == s || *end || !(v >= min) || !(v <= max))
    sb_die(prog, "%s needs a number in %g..%g, got '%s'", opt, min, max, s ? s : "(nothing)");
  return v;
}

/* Labels (impl/backend) go verbatim into key=value lines: refuse spaces. */
static inline const char *sb_parse_label(const char *prog, const char *opt, const char *s)
{
  if (!s || !*s || strpbrk(s, " \t\n="))
    sb_die(prog, "%s needs a label without spaces or '=', got '%s'", opt, s ? s : "(nothing)");
  return s;
}

/* Listening TCP socket on 127.0.0.1:port; -errno on failure. */
static inline int sb_listen(int port, int reuseport, int backlog)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, backlog) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

/* Port a bound socket got (for port 0). */
static inline int sb_local_port(int fd)
{
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    return -errno;
  return ntohs(sa.sin_port);
}

/* Blocking connect to 127.0.0.1:port with TCP_NODELAY; -errno on failure. */
static inline int sb_connect(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static inline void sb_nodelay(int fd)
{
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The servers' exit report: key=value pairs, to stderr or to the --stats
 * file (appended, so a driver can read it after the server exits). */
static inline void sb_write_stats(const char *path, const char *line)
{
  FILE *f = path ? fopen(path, "w") : NULL;
  if (path && !f)
    fprintf(stderr, "stats file %s: %s\n", path, strerror(errno));
  fprintf(f ? f : stderr, "%s\n", line);
  if (f)
    fclose(f);
}

#endif
