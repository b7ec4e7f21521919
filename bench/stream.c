/*
 * stream: one-way streaming throughput over loopback TCP.
 *
 * A forked client (pinned to another cpu) sends --msg byte chunks with
 * blocking send() as fast as it can for --secs, then closes.  The server,
 * this process, accepts with tl_accept and reads with tl_recv into one
 * --bufsize buffer until EOF, counting bytes; backend from TRILOOP_BACKEND.
 * --impl plain-recv serves the same with a blocking recv() loop instead, the
 * floor no event loop can beat.
 * --zc 0|1 turns the stream around: this process sends --msg chunks with
 * tl_send (0) or tl_send_zc (1) for --secs, one op in flight, and the
 * client drains with blocking recv().  impl is then triloop-send or
 * triloop-send-zc and ops counts sends.  One result line:
 *   workload=stream impl=.. backend=.. msg=.. bufsize=.. ops=<recvs> secs=..
 *   ops_per_s=.. cpu_us_per_op=.. mbps=.. cpu_us_per_mb=.. syscalls_per_op=..
 * (MB = 10^6 bytes; CPU is the server's.)
 */
#include "sock_common.h"

#include <signal.h>
#include <sys/wait.h>

#include "triloop.h"

static const char *prog = "stream";

static char *buf;
static size_t bufsize = 65536;
static uint64_t bytes, recvs;
static double t_first, t_last, cpu_first;
static int lfd, cfd = -1, failed;
static tl_op rop, aop;
static int zc = -1;            /* --zc: -1 receive, 0 tl_send, 1 tl_send_zc */
static long send_msg;
static double send_end, send_secs;

static int send_next(tl_loop *loop, tl_op *op);

static void on_send(tl_loop *loop, tl_op *op, int64_t res)
{
  if (res > 0) {
    bytes += (uint64_t)res;
    recvs++;
    if (sb_now() < send_end) {
      int r = send_next(loop, op);
      if (r == 0)
        return;
      res = r;
    }
  }
  t_last = sb_now();
  if (res < 0 && res != -ECANCELED && res != -ESHUTDOWN) {
    fprintf(stderr, "%s: send: %s\n", prog, tl_strerror((int)res));
    failed = 1;
  }
  shutdown(cfd, SHUT_WR);
  tl_break(loop);
}

static int send_next(tl_loop *loop, tl_op *op)
{
  return zc ? tl_send_zc(loop, op, cfd, buf, (size_t)send_msg, 0, on_send)
            : tl_send(loop, op, cfd, buf, (size_t)send_msg, 0, on_send);
}

static void on_recv(tl_loop *loop, tl_op *op, int64_t res)
{
  if (res > 0) {
    if (!bytes) {
      t_first = sb_now();
      cpu_first = sb_cpu(RUSAGE_SELF);
    }
    bytes += (uint64_t)res;
    recvs++;
    int r = tl_recv(loop, op, cfd, buf, bufsize, 0, on_recv);
    if (r == 0)
      return;
    res = r;
  }
  t_last = sb_now();
  if (res < 0 && res != -ECANCELED && res != -ESHUTDOWN) {
    fprintf(stderr, "%s: recv: %s\n", prog, tl_strerror((int)res));
    failed = 1;
  }
  tl_break(loop);
}

static void on_accept(tl_loop *loop, tl_op *op, int64_t res)
{
  if (res < 0) {
    if (res != -ECANCELED)
      fprintf(stderr, "%s: accept: %s\n", prog, tl_strerror((int)res));
    failed = 1;
    tl_break(loop);
    return;
  }
  cfd = (int)res;
  int r;
  if (zc >= 0) {
    t_first = sb_now();
    cpu_first = sb_cpu(RUSAGE_SELF);
    send_end = t_first + send_secs;
    r = send_next(loop, &rop);
  } else {
    r = tl_recv(loop, &rop, cfd, buf, bufsize, 0, on_recv);
  }
  if (r < 0) {
    fprintf(stderr, "%s: recv submit: %s\n", prog, tl_strerror(r));
    failed = 1;
    tl_break(loop);
  }
}

static void on_deadline(tl_loop *loop, tl_timer *w, unsigned revents)
{
  fprintf(stderr, "%s: the client never finished; giving up\n", prog);
  failed = 1;
  tl_break(loop);
}

static void client(int port, long msg, double secs, int cpu)
{
  int c = sb_pin(cpu);
  fprintf(stderr, "%s: client %s%d\n", prog, c >= 0 ? "pinned to cpu " : "not pinned", c >= 0 ? c : 0);
  int fd = sb_connect(port);
  if (fd < 0) {
    fprintf(stderr, "%s: client connect: %s\n", prog, strerror(-fd));
    _exit(1);
  }
  char *out = malloc((size_t)msg);
  if (!out)
    _exit(1);
  if (zc >= 0) {   /* the server sends: drain until EOF */
    for (;;) {
      ssize_t n = recv(fd, out, (size_t)msg, 0);
      if (n > 0 || (n < 0 && errno == EINTR))
        continue;
      _exit(n < 0 ? 1 : 0);
    }
  }
  memset(out, 'x', (size_t)msg);
  double end = sb_now() + secs;
  unsigned n = 0;
  do {
    for (int i = 0; i < 16; i++, n++) {
      ssize_t w = send(fd, out, (size_t)msg, MSG_NOSIGNAL);
      if (w < 0 && errno != EINTR) {
        fprintf(stderr, "%s: client send: %s\n", prog, strerror(errno));
        _exit(1);
      }
    }
  } while (sb_now() < end);
  close(fd);
  _exit(0);
}

int main(int argc, char **argv)
{
  long msg = 65536, cpu = 0;
  double secs = 1.0;
  const char *impl = "triloop";

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--secs")) { secs = sb_parse_double(prog, a, v, 0.01, 3600); i++; }
    else if (!strcmp(a, "--msg")) { msg = sb_parse_long(prog, a, v, 1, 16 << 20); i++; }
    else if (!strcmp(a, "--bufsize")) { bufsize = (size_t)sb_parse_long(prog, a, v, 1, 16 << 20); i++; }
    else if (!strcmp(a, "--cpu")) { cpu = sb_parse_long(prog, a, v, -1, 4096); i++; }
    else if (!strcmp(a, "--zc")) { zc = (int)sb_parse_long(prog, a, v, 0, 1); i++; }
    else if (!strcmp(a, "--impl")) {
      impl = v; i++;
      if (!v || (strcmp(v, "triloop") && strcmp(v, "plain-recv")))
        sb_die(prog, "--impl must be triloop or plain-recv, got '%s'", v ? v : "(nothing)");
    } else {
      fprintf(stderr, "usage: %s [--secs S] [--msg CHUNK] [--bufsize B] [--cpu N|-1]"
                      " [--impl triloop|plain-recv] [--zc 0|1]\n", prog);
      sb_die(prog, "unknown option '%s'", a);
    }
  }
  if (zc >= 0 && strcmp(impl, "triloop"))
    sb_die(prog, "--zc measures triloop's sends: not with --impl %s", impl);
  if (zc >= 0 && bufsize < (size_t)msg)
    bufsize = (size_t)msg;
  send_msg = msg;
  signal(SIGPIPE, SIG_IGN);
  buf = malloc(bufsize);
  if (!buf)
    sb_die(prog, "out of memory");
  lfd = sb_listen(0, 0, 16);
  if (lfd < 0)
    sb_die(prog, "listen: %s", strerror(-lfd));
  int port = sb_local_port(lfd);

  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    sb_die(prog, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(lfd);
    client(port, msg, secs, (int)(cpu < 0 ? -1 : cpu + 1));
  }
  /* The loop is created after fork so the child never shares its ring. */
  int triloop = !strcmp(impl, "triloop");
  tl_loop *loop = NULL;
  const char *bname = "-";
  if (triloop) {
    int r = tl_loop_new(&loop, 0);
    if (r < 0) {
      kill(pid, SIGKILL);
      sb_die(prog, "tl_loop_new: %s", tl_strerror(r));
    }
    bname = tl_backend_name(loop);
  }
  int c = sb_pin((int)cpu);
  fprintf(stderr, "%s: server (%s, backend %s) %s%d\n", prog, impl, bname,
          c >= 0 ? "pinned to cpu " : "not pinned", c >= 0 ? c : 0);

  struct tl_loop_stats st0 = {0}, st1 = {0};
  if (triloop) {
    tl_timer deadline;
    tl_timer_init(&deadline, on_deadline, secs + 10, 0);
    tl_timer_start(loop, &deadline);
    memset(buf, 'y', bufsize);
    send_secs = secs;
    int r = tl_accept(loop, &aop, lfd, NULL, NULL, 0, on_accept);
    if (r < 0)
      sb_die(prog, "accept submit: %s", tl_strerror(r));
    tl_loop_stats(loop, &st0);
    tl_run(loop, TL_RUN_DEFAULT);
    tl_loop_stats(loop, &st1);
    tl_timer_stop(loop, &deadline);
    tl_loop_destroy(loop);
  } else {
    cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
      sb_die(prog, "accept: %s", strerror(errno));
    for (;;) {
      ssize_t n = recv(cfd, buf, bufsize, 0);
      if (n > 0) {
        if (!bytes) {
          t_first = sb_now();
          cpu_first = sb_cpu(RUSAGE_SELF);
        }
        bytes += (uint64_t)n;
        recvs++;
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        fprintf(stderr, "%s: recv: %s\n", prog, strerror(errno));
        failed = 1;
      }
      break;
    }
    t_last = sb_now();
  }
  double cpu_used = sb_cpu(RUSAGE_SELF) - cpu_first;
  if (cfd >= 0)
    close(cfd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || recvs == 0)
    sb_die(prog, "run failed (client status %d)", status);

  double el = t_last - t_first, mb = (double)bytes / 1e6;
  char sper[32] = "-";
  if (triloop)
    snprintf(sper, sizeof sper, "%.3f", (double)(st1.syscalls - st0.syscalls) / (double)recvs);
  if (zc >= 0)
    impl = zc ? "triloop-send-zc" : "triloop-send";
  printf("workload=stream impl=%s backend=%s msg=%ld bufsize=%zu ops=%llu secs=%.3f ops_per_s=%.0f "
         "cpu_us_per_op=%.3f mbps=%.1f cpu_us_per_mb=%.2f syscalls_per_op=%s\n",
         impl, bname, msg, bufsize, (unsigned long long)recvs, el, (double)recvs / el,
         cpu_used * 1e6 / (double)recvs, mb / el, cpu_used * 1e6 / mb, sper);
  return 0;
}
