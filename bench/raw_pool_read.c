/*
 * A minimal blocking pool of our own (default: one thread per core), the baseline for the epoll and
 * threadpool backends' file path: N threads take jobs from one locked queue,
 * pread, and hand results back on one locked list; the first result into an
 * empty list writes the one eventfd the loop thread blocks on, so a burst of
 * completions costs one wakeup.
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct job {
  struct job *next;
  uint64_t off, start;
  ssize_t res;
  void *buf;
};

static struct bench_fopts o;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static struct job *qhead, *qtail;
static int quit;
static pthread_mutex_t dlock = PTHREAD_MUTEX_INITIALIZER;
static struct job *dhead;
static int efd;
static uint64_t rng = 0xda942042e4dd58b5ull, cursor, loop_syscalls;

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&qlock);
    while (!qhead && !quit) pthread_cond_wait(&qcond, &qlock);
    if (!qhead) {
      pthread_mutex_unlock(&qlock);
      return NULL;
    }
    struct job *j = qhead;
    qhead = j->next;
    if (!qhead) qtail = NULL;
    pthread_mutex_unlock(&qlock);

    j->res = pread(o.fd, j->buf, o.bs, (off_t)j->off);
    if (j->res < 0) j->res = -errno;

    pthread_mutex_lock(&dlock);
    int was_empty = !dhead;
    j->next = dhead;
    dhead = j;
    pthread_mutex_unlock(&dlock);
    if (was_empty) {
      uint64_t one = 1;
      if (write(efd, &one, sizeof one) < 0) abort();
    }
  }
}

/* Queues a batch under one lock hold. */
static void submit(struct job *head, struct job *tail, unsigned n) {
  pthread_mutex_lock(&qlock);
  if (qtail) qtail->next = head;
  else qhead = head;
  qtail = tail;
  pthread_mutex_unlock(&qlock);
  if (n == 1) pthread_cond_signal(&qcond);
  else pthread_cond_broadcast(&qcond);
}

static void prep(struct job *j) {
  j->next = NULL;
  j->off = bench_next_off(&o, &rng, &cursor);
  j->start = bench_ns();
}

static uint64_t phase(struct job *jobs, double secs, struct bench_hist *h) {
  uint64_t ops = 0;
  unsigned inflight = o.qd;
  double end = bench_now() + secs;
  for (unsigned i = 0; i < o.qd; i++) {
    prep(&jobs[i]);
    if (i) jobs[i - 1].next = &jobs[i];
  }
  submit(&jobs[0], &jobs[o.qd - 1], o.qd);
  while (inflight) {
    uint64_t cnt;
    if (read(efd, &cnt, sizeof cnt) < 0 && errno != EINTR)
      bench_die(1, "raw_pool_read: eventfd read: %s", strerror(errno));
    loop_syscalls++;
    pthread_mutex_lock(&dlock);
    struct job *done = dhead;
    dhead = NULL;
    pthread_mutex_unlock(&dlock);
    struct job *head = NULL, *tail = NULL;
    unsigned n = 0;
    int more = bench_now() < end;
    while (done) {
      struct job *j = done;
      done = j->next;
      if (j->res != (ssize_t)o.bs)
        bench_die(1, "raw_pool_read: pread returned %zd (%s)", j->res,
                  j->res < 0 ? strerror((int)-j->res) : "short read");
      if (h) bench_hist_add(h, bench_ns() - j->start);
      ops++;
      if (!more) {
        inflight--;
        continue;
      }
      prep(j);
      if (tail) tail->next = j;
      else head = j;
      tail = j;
      n++;
    }
    if (n) submit(head, tail, n);
  }
  return ops;
}

int main(int argc, char **argv) {
  bench_fopts_parse(&o, argc, argv, "raw_pool_read", 0);
  /* Default: one thread per core, the best pool for short (page-cached)
   * jobs; --threads qd gives one per queue slot, the old default. */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  const char *rule = o.threads_rule;
  if (!o.threads && !rule) rule = "cores";
  unsigned nthreads = o.threads;
  if (rule && !strcmp(rule, "qd")) nthreads = o.qd > 1024 ? 1024 : o.qd;
  else if (rule) nthreads = (unsigned)ncpu;
  efd = eventfd(0, EFD_CLOEXEC);
  if (efd < 0) bench_die(1, "raw_pool_read: eventfd: %s", strerror(errno));
  struct job *jobs = calloc(o.qd, sizeof *jobs);
  if (!jobs) bench_die(1, "raw_pool_read: out of memory");
  for (unsigned i = 0; i < o.qd; i++) jobs[i].buf = bench_buf(o.bs);
  pthread_t *tids = calloc(nthreads, sizeof *tids);
  if (!tids) bench_die(1, "raw_pool_read: out of memory");
  for (unsigned i = 0; i < nthreads; i++)
    if (pthread_create(&tids[i], NULL, worker, NULL))
      bench_die(1, "raw_pool_read: pthread_create failed");

  if (o.warmup > 0) phase(jobs, o.warmup, NULL);
  static struct bench_hist h;
  struct bench_span s;
  loop_syscalls = 0;
  bench_span_begin(&s);
  uint64_t ops = phase(jobs, o.secs, &h);
  bench_span_end(&s);

  pthread_mutex_lock(&qlock);
  quit = 1;
  pthread_cond_broadcast(&qcond);
  pthread_mutex_unlock(&qlock);
  for (unsigned i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);

  /* syscalls_per_op counts the loop thread's eventfd reads, as the loop's
   * own counter does; the workers' preads and futex calls are not in it. */
  char extra[128];
  snprintf(extra, sizeof extra, "syscalls_per_op=%.3f threads=%u%s%s",
           ops ? (double)loop_syscalls / (double)ops : 0.0, nthreads,
           rule ? " threads_rule=" : "", rule ? rule : "");
  bench_print_file(&o, "raw-pool", "-", ops, &s, &h, extra);
  return 0;
}
