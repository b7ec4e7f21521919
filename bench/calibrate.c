/*
 * calibrate: what the basic kernel crossings cost on this machine, measured
 * at the start of the study so that the report can say how much of a CPU
 * per op difference is "syscalls avoided x syscall cost" (and a reader can
 * predict the ratio on a machine with cheaper syscalls: mitigations and
 * virtualisation move these by several times).
 *
 *   null_syscall  syscall(SYS_getppid): the entry/exit cost alone
 *   recv_eagain   recv on an empty nonblocking socket: a readiness loop's
 *                 wasted try
 *   epoll_wait0   epoll_wait, one fd registered, nothing ready, timeout 0
 *   eventfd_rtt   write an eventfd that another thread blocks on, which
 *                 writes one back: two cross-thread wake-ups (a pool hop)
 *
 * One line per op: workload=calibrate impl=calibrate backend=- op=NAME
 * ops= secs= ns_per_op= (wall) cpu_us_per_op= (user+sys of the process,
 * both threads for eventfd_rtt).  --secs S per op (default 0.2).
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static double secs = 0.2;
static int sp[2], ep, efd_go, efd_back;

static void report(const char *op, uint64_t n, const struct bench_span *s) {
  double w = s->t1 - s->t0, c = s->c1 - s->c0;
  printf("workload=calibrate impl=calibrate backend=- op=%s ops=%llu secs=%.4f ns_per_op=%.1f "
         "cpu_us_per_op=%.4f\n", op, (unsigned long long)n, w, n ? w * 1e9 / (double)n : 0.0,
         n ? c * 1e6 / (double)n : 0.0);
  fflush(stdout);
}

/* Runs fn in batches of 1024 until secs have passed. */
static void measure(const char *op, void (*fn)(void)) {
  for (int i = 0; i < 1024; i++) fn();   /* warm */
  struct bench_span s;
  uint64_t n = 0;
  bench_span_begin(&s);
  double end = s.t0 + secs;
  do {
    for (int i = 0; i < 1024; i++) fn();
    n += 1024;
  } while (bench_now() < end);
  bench_span_end(&s);
  report(op, n, &s);
}

static void null_syscall(void) { (void)syscall(SYS_getppid); }

static void recv_eagain(void) {
  char c;
  if (recv(sp[0], &c, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
    bench_die(1, "calibrate: recv on an empty socket did not fail with EAGAIN");
}

static void epoll_wait0(void) {
  struct epoll_event ev[4];
  if (epoll_wait(ep, ev, 4, 0) != 0) bench_die(1, "calibrate: epoll_wait: %s", strerror(errno));
}

static void *echo_thread(void *arg) {
  (void)arg;
  uint64_t v;
  for (;;) {
    if (read(efd_go, &v, sizeof v) != sizeof v) return NULL;
    if (v == UINT64_MAX - 1) return NULL;   /* stop */
    v = 1;
    if (write(efd_back, &v, sizeof v) != sizeof v) return NULL;
  }
}

static void eventfd_rtt(void) {
  uint64_t v = 1;
  if (write(efd_go, &v, sizeof v) != sizeof v || read(efd_back, &v, sizeof v) != sizeof v)
    bench_die(1, "calibrate: eventfd: %s", strerror(errno));
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--secs") && i + 1 < argc) {
      char *end;
      secs = strtod(argv[++i], &end);
      if (*end || !(secs > 0) || secs > 60) bench_die(2, "calibrate: --secs wants 0 < S <= 60");
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fprintf(stderr, "usage: calibrate [--secs S]\n");
      return 0;
    } else {
      bench_die(2, "calibrate: unknown option '%s' (usage: calibrate [--secs S])", argv[i]);
    }
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
    bench_die(1, "calibrate: socketpair: %s", strerror(errno));
  if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) bench_die(1, "calibrate: epoll_create1: %s", strerror(errno));
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = sp[0]};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, sp[0], &ev) < 0) bench_die(1, "calibrate: epoll_ctl: %s", strerror(errno));
  efd_go = eventfd(0, EFD_CLOEXEC);
  efd_back = eventfd(0, EFD_CLOEXEC);
  if (efd_go < 0 || efd_back < 0) bench_die(1, "calibrate: eventfd: %s", strerror(errno));

  measure("null_syscall", null_syscall);
  measure("recv_eagain", recv_eagain);
  measure("epoll_wait0", epoll_wait0);
  pthread_t t;
  if (pthread_create(&t, NULL, echo_thread, NULL)) bench_die(1, "calibrate: pthread_create failed");
  measure("eventfd_rtt", eventfd_rtt);
  uint64_t stop = UINT64_MAX - 1;
  if (write(efd_go, &stop, sizeof stop) != sizeof stop) bench_die(1, "calibrate: eventfd stop");
  pthread_join(t, NULL);
  return 0;
}
