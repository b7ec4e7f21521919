/*
 * echo_client: the load generator for every echo server in the study.
 *
 * N connections play ping-pong: each sends one message, waits for the whole
 * echo, records the round trip and sends again.  One thread on plain
 * level-triggered epoll, so the client costs the same whatever server it
 * drives.  After a warm-up it measures for --secs and prints ONE line:
 *   workload=echo impl=.. backend=.. conns=.. msg=.. loops=.. ops=.. secs=..
 *   ops_per_s=.. cpu_us_per_op=.. p50_us=.. p99_us=.. client_cpu_us_per_op=..
 * cpu_us_per_op is the SERVER's user+sys time per round trip (read from
 * /proc/<--server-pid>/stat over the window), "-" without --server-pid.
 */
#include "sock_common.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/epoll.h>

static const char *prog = "echo_client";

/* Log-linear latency histogram: 32 sub-buckets per power of two of the
 * nanosecond value, about 3% resolution from 32 ns to minutes. */
#define SUB 32
#define NBUCKETS (64 * SUB)
static uint64_t hist[NBUCKETS];
static uint64_t hist_n;

static int bucket_of(uint64_t v)
{
  if (v < SUB)
    return (int)v;
  int e = 63 - __builtin_clzll(v);          /* e >= 5 */
  return (e - 4) * SUB + (int)((v >> (e - 5)) & (SUB - 1));
}

/* Middle of a bucket, in ns. */
static double bucket_mid(int b)
{
  if (b < SUB)
    return b;
  int e = b / SUB + 4;
  uint64_t sub = (uint64_t)(b % SUB);
  double lo = ldexp((double)(SUB + sub), e - 5);
  return lo + ldexp(1.0, e - 5) / 2;
}

static double percentile(double p)
{
  if (hist_n == 0)
    return 0;
  uint64_t want = (uint64_t)ceil(p * (double)hist_n);
  if (want < 1)
    want = 1;
  uint64_t seen = 0;
  for (int b = 0; b < NBUCKETS; b++) {
    seen += hist[b];
    if (seen >= want)
      return bucket_mid(b);
  }
  return bucket_mid(NBUCKETS - 1);
}

struct conn {
  int fd;
  size_t sent, got;
  uint64_t t0;
  int want_out;
};

static struct conn *c;
static char *out;
static long msg = 64;
static int ep = -1;

/* Sends what is left of conn i's message, watching for EPOLLOUT while some
 * of it is still to go. */
static void pump_send(long i)
{
  struct conn *k = &c[i];
  while (k->sent < (size_t)msg) {
    ssize_t w = send(k->fd, out + k->sent, (size_t)msg - k->sent, MSG_NOSIGNAL);
    if (w > 0) {
      k->sent += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EAGAIN)
      break;
    sb_die(prog, "send (conn %ld): %s", i, w < 0 ? strerror(errno) : "0 bytes");
  }
  int want = k->sent < (size_t)msg;
  if (want != k->want_out) {
    struct epoll_event mev = { .events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.u64 = (uint64_t)i };
    epoll_ctl(ep, EPOLL_CTL_MOD, k->fd, &mev);
    k->want_out = want;
  }
}

static void usage(void)
{
  fprintf(stderr,
          "usage: %s --port P [--conns N] [--msg BYTES] [--secs S] [--warmup S]\n"
          "          [--impl LABEL] [--backend LABEL] [--loops N] [--server-pid PID]\n"
          "          [--cpu N|-1]\n"
          "Ping-pong load on 127.0.0.1:P; prints one key=value result line.\n", prog);
}

int main(int argc, char **argv)
{
  long conns = 1, port = -1, loops = 1, server_pid = 0, cpu = 1;
  double secs = 1.0, warmup = 0.2;
  const char *impl = "-", *backend = "-";

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
    else if (!strcmp(a, "--conns")) { conns = sb_parse_long(prog, a, v, 1, 30000); i++; }
    else if (!strcmp(a, "--msg")) { msg = sb_parse_long(prog, a, v, 1, 1 << 20); i++; }
    else if (!strcmp(a, "--secs")) { secs = sb_parse_double(prog, a, v, 0.01, 3600); i++; }
    else if (!strcmp(a, "--warmup")) { warmup = sb_parse_double(prog, a, v, 0, 60); i++; }
    else if (!strcmp(a, "--port")) { port = sb_parse_long(prog, a, v, 1, 65535); i++; }
    else if (!strcmp(a, "--loops")) { loops = sb_parse_long(prog, a, v, 1, 1024); i++; }
    else if (!strcmp(a, "--server-pid")) { server_pid = sb_parse_long(prog, a, v, 1, INT_MAX); i++; }
    else if (!strcmp(a, "--cpu")) { cpu = sb_parse_long(prog, a, v, -1, 4096); i++; }
    else if (!strcmp(a, "--impl")) { impl = sb_parse_label(prog, a, v); i++; }
    else if (!strcmp(a, "--backend")) { backend = sb_parse_label(prog, a, v); i++; }
    else { usage(); sb_die(prog, "unknown option '%s'", a); }
  }
  if (port < 0) { usage(); sb_die(prog, "--port is required"); }

  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 64) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)conns + 64 ? rl.rlim_max : (rlim_t)conns + 64;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int pinned = sb_pin((int)cpu);
  if (pinned >= 0)
    fprintf(stderr, "%s: pinned to cpu %d\n", prog, pinned);
  else
    fprintf(stderr, "%s: not pinned\n", prog);

  c = calloc((size_t)conns, sizeof *c);
  out = malloc((size_t)msg);
  char *in = malloc((size_t)msg);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (!c || !out || !in || ep < 0)
    sb_die(prog, "setup: %s", strerror(errno));
  for (long i = 0; i < msg; i++)
    out[i] = (char)('a' + i % 26);

  for (long i = 0; i < conns; i++) {
    int fd = -1;
    /* The server may still be starting: retry refused connects briefly. */
    for (int tries = 0; tries < 200; tries++) {
      fd = sb_connect((int)port);
      if (fd != -ECONNREFUSED)
        break;
      usleep(10000);
    }
    if (fd < 0)
      sb_die(prog, "connect to 127.0.0.1:%ld (conn %ld): %s", port, i, strerror(-fd));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c[i].fd = fd;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)i };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
      sb_die(prog, "epoll_ctl: %s", strerror(errno));
  }

  uint64_t done = 0;           /* round trips in the window */
  int measuring = 0;
  double t_start = sb_now(), t_meas = 0, t_end = 0, t_last_progress = t_start;
  double scpu0 = 0, ccpu0 = 0;


  for (long i = 0; i < conns; i++) {
    c[i].t0 = sb_now_ns();
    pump_send(i);
  }

  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0 && errno != EINTR)
      sb_die(prog, "epoll_wait: %s", strerror(errno));
    for (int j = 0; j < n; j++) {
      long i = (long)evs[j].data.u64;
      struct conn *k = &c[i];
      if (evs[j].events & EPOLLOUT)
        pump_send(i);
      if (!(evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        continue;
      for (;;) {
        ssize_t r = recv(k->fd, in, (size_t)msg - k->got, 0);
        if (r > 0) {
          k->got += (size_t)r;
          if (k->got > k->sent)
            sb_die(prog, "server sent more than it was sent (conn %ld)", i);
          if (k->got < (size_t)msg)
            continue;
          uint64_t t = sb_now_ns();
          if (measuring) {
            hist[bucket_of(t - k->t0)]++;
            hist_n++;
            done++;
          }
          k->got = k->sent = 0;
          k->t0 = t;
          pump_send(i);
          break;
        }
        if (r < 0 && errno == EAGAIN)
          break;
        sb_die(prog, "recv (conn %ld): %s", i, r < 0 ? strerror(errno) : "server closed the connection");
      }
    }
    double now = sb_now();
    if (n > 0)
      t_last_progress = now;
    else if (now - t_last_progress > 5.0)
      sb_die(prog, "no progress for 5 s: is the server alive?");
    if (!measuring && now - t_start >= warmup) {
      measuring = 1;
      t_meas = now;
      scpu0 = server_pid ? sb_proc_cpu((int)server_pid) : 0;
      ccpu0 = sb_cpu(RUSAGE_SELF);
    } else if (measuring && now - t_meas >= secs) {
      t_end = now;
      break;
    }
  }
  double el = t_end - t_meas;
  double scpu = server_pid ? sb_proc_cpu((int)server_pid) - scpu0 : -1;
  double ccpu = sb_cpu(RUSAGE_SELF) - ccpu0;
  char scpu_s[32] = "-";
  if (server_pid && scpu >= 0 && done)
    snprintf(scpu_s, sizeof scpu_s, "%.3f", scpu * 1e6 / (double)done);
  printf("workload=echo impl=%s backend=%s conns=%ld msg=%ld loops=%ld ops=%llu secs=%.3f "
         "ops_per_s=%.0f cpu_us_per_op=%s p50_us=%.1f p99_us=%.1f client_cpu_us_per_op=%.3f\n",
         impl, backend, conns, msg, loops, (unsigned long long)done, el,
         el > 0 ? (double)done / el : 0.0, scpu_s, percentile(0.50) / 1e3,
         percentile(0.99) / 1e3, done ? ccpu * 1e6 / (double)done : 0.0);
  fflush(stdout);
  for (long i = 0; i < conns; i++)
    close(c[i].fd);
  close(ep);
  free(c);
  free(in);
  free(out);
  return 0;
}
