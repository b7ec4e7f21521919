/*
 * accept_rate: how many connections per second a loop accepts.
 *
 * A forked client (pinned to another cpu) connects to 127.0.0.1 and closes
 * at once with SO_LINGER 0 (a reset, so no TIME_WAIT piles up), as fast as
 * it can; it stays at most --ahead connections ahead of the server so the
 * listen queue never overflows (an overflow costs the client a 1 s SYN
 * retransmit and would measure the kernel's timer, not the loop).  The
 * server, this process, accepts with tl_accept (one op in flight, resubmitted
 * from its callback) and closes each fd.  After --secs it prints:
 *   workload=accept impl=triloop backend=.. ops=<accepted> secs=.. ops_per_s=..
 *   cpu_us_per_op=<server> syscalls_per_op=<loop's, plus 1 close each>
 */
#include "sock_common.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "triloop.h"

static const char *prog = "accept_rate";

struct shared {
  atomic_ulong accepted;
  atomic_int stop;
};

static struct shared *sh;
static int lfd, failed, stopping;
static double t_first, cpu_first;
static uint64_t accepted;
static tl_op aop;

static void on_accept(tl_loop *loop, tl_op *op, int64_t res)
{
  if (res >= 0) {
    close((int)res);
    if (stopping)
      return;
    if (!accepted++) {
      t_first = sb_now();
      cpu_first = sb_cpu(RUSAGE_SELF);
    }
    atomic_store_explicit(&sh->accepted, accepted, memory_order_release);
  }
  if (stopping || res == -ECANCELED) {
    /* tl_loop_destroy calls us back; an accept that completed first just
     * gets its fd closed above. */
    return;
  }
  if (res < 0 && res != -ECONNABORTED && res != -EINTR && res != -EAGAIN) {
    fprintf(stderr, "%s: accept: %s\n", prog, tl_strerror((int)res));
    failed = 1;
    tl_break(loop);
    return;
  }
  int r = tl_accept(loop, op, lfd, NULL, NULL, 0, on_accept);
  if (r < 0) {
    fprintf(stderr, "%s: accept submit: %s\n", prog, tl_strerror(r));
    failed = 1;
    tl_break(loop);
  }
}

static double secs = 1.0;

static void on_tick(tl_loop *loop, tl_timer *w, unsigned revents)
{
  /* Measure --secs from the first accept; give up if none came in 5 s. */
  double now = sb_now();
  if ((accepted && now - t_first >= secs) || (!accepted && now - *(double *)w->data > 5.0))
    tl_break(loop);
}

static void client(int port, int cpu, long ahead)
{
  int c = sb_pin(cpu);
  fprintf(stderr, "%s: client %s%d\n", prog, c >= 0 ? "pinned to cpu " : "not pinned", c >= 0 ? c : 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };
  unsigned long made = 0, errors = 0;
  double t_start = sb_now();
  while (!atomic_load_explicit(&sh->stop, memory_order_acquire)) {
    if (made - atomic_load_explicit(&sh->accepted, memory_order_acquire) >= (unsigned long)ahead) {
      if (sb_now() - t_start > 30)
        break;
      sched_yield();
      continue;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fprintf(stderr, "%s: client socket: %s\n", prog, strerror(errno));
      _exit(1);
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
      made++;
    } else if (++errors > 1000) {
      fprintf(stderr, "%s: client connect: %s\n", prog, strerror(errno));
      _exit(1);
    }
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
  }
  _exit(0);
}

int main(int argc, char **argv)
{
  long cpu = 0, ahead = 64;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--secs")) { secs = sb_parse_double(prog, a, v, 0.01, 3600); i++; }
    else if (!strcmp(a, "--cpu")) { cpu = sb_parse_long(prog, a, v, -1, 4096); i++; }
    else if (!strcmp(a, "--ahead")) { ahead = sb_parse_long(prog, a, v, 1, 1024); i++; }
    else {
      fprintf(stderr, "usage: %s [--secs S] [--cpu N|-1] [--ahead N]\n", prog);
      sb_die(prog, "unknown option '%s'", a);
    }
  }
  signal(SIGPIPE, SIG_IGN);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED)
    sb_die(prog, "mmap: %s", strerror(errno));
  atomic_init(&sh->accepted, 0);
  atomic_init(&sh->stop, 0);
  lfd = sb_listen(0, 0, 4096);
  if (lfd < 0)
    sb_die(prog, "listen: %s", strerror(-lfd));
  int port = sb_local_port(lfd);

  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    sb_die(prog, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(lfd);
    client(port, cpu < 0 ? -1 : (int)cpu + 1, ahead);
  }
  tl_loop *loop;
  int r = tl_loop_new(&loop, 0);
  if (r < 0) {
    kill(pid, SIGKILL);
    sb_die(prog, "tl_loop_new: %s", tl_strerror(r));
  }
  char bname[16];
  snprintf(bname, sizeof bname, "%s", tl_backend_name(loop));
  int c = sb_pin((int)cpu);
  fprintf(stderr, "%s: server (triloop, backend %s) %s%d\n", prog, bname,
          c >= 0 ? "pinned to cpu " : "not pinned", c >= 0 ? c : 0);

  double t_start = sb_now();
  tl_timer tick;
  tl_timer_init(&tick, on_tick, 0.01, 0.01);
  tick.data = &t_start;
  tl_timer_start(loop, &tick);
  r = tl_accept(loop, &aop, lfd, NULL, NULL, 0, on_accept);
  if (r < 0) {
    kill(pid, SIGKILL);
    sb_die(prog, "accept submit: %s", tl_strerror(r));
  }
  struct tl_loop_stats st0, st1;
  tl_loop_stats(loop, &st0);
  tl_run(loop, TL_RUN_DEFAULT);
  double t_end = sb_now(), cpu_used = sb_cpu(RUSAGE_SELF) - cpu_first;
  tl_loop_stats(loop, &st1);
  atomic_store(&sh->stop, 1);
  tl_timer_stop(loop, &tick);
  stopping = 1;
  tl_loop_destroy(loop);   /* cancels the accept in flight */
  int status = 0;
  waitpid(pid, &status, 0);
  if (failed || accepted < 2 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    sb_die(prog, "run failed (accepted %llu, client status %d)", (unsigned long long)accepted, status);

  /* The counts include the first accept's wait; a second's run swamps it. */
  double el = t_end - t_first;
  printf("workload=accept impl=triloop backend=%s ops=%llu secs=%.3f ops_per_s=%.0f cpu_us_per_op=%.3f "
         "syscalls_per_op=%.3f\n",
         bname, (unsigned long long)accepted, el, (double)accepted / el,
         cpu_used * 1e6 / (double)accepted,
         (double)(st1.syscalls - st0.syscalls) / (double)accepted + 1.0);
  return 0;
}
