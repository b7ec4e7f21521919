/*
 * The shared blocking pool.
 *
 * One mutex guards everything: the FIFO of queued jobs, the idle stack and
 * the counters.  The hot path is submit -> run -> post, and with one lock
 * a worker pays a single lock/unlock per job (it marks the finished job done
 * and takes the next one in the same critical section).
 *
 * Idle workers sit on a LIFO stack, each on its own futex word, so a
 * submit wakes exactly as many workers as it has jobs without an idle worker
 * coming for them (never a broadcast), the most recently idle (cache-warm)
 * worker first, and the ones at the bottom of the stack are the ones whose
 * keep-alive runs out.
 *
 * Two classes of jobs, two FIFOs (see pool.h).  Work jobs (ops) may run on at
 * most TRILOOP_THREADS_MAX workers at once; a work job that finds no idle
 * worker starts a thread while fewer run.
 *
 * How many work jobs start at once depends on how long they take.  Short
 * ones (a read from the page cache: microseconds of CPU) gain nothing from
 * more threads than cores, and lose much: a batch of 32 woke 32 workers that
 * fought for 2 cores (3.5x slower than 4 threads, measured).  Long ones (a
 * device read, an fsync) need a thread each to keep the device busy.  So
 * while the smoothed run time of work jobs (ewma_ns) is under SHORT_NS, at
 * most TRILOOP_THREADS_EAGER (default: cores, at least 2) run at once and
 * the rest wait for a running one to take them, as in libuv.  A monitor
 * thread, woken only while jobs are held back, looks every MONITOR_MS: once
 * the jobs are long it starts workers for all of them, and if no job at all
 * completed since its last look (the eager workers are stuck in a slow or
 * hung call) it lifts the cap for every queued job, so nothing waits behind
 * a stuck call for longer than that.  Wait jobs (the threadpool
 * backend's readiness waits, one per watched fd) always get a worker, a new
 * thread if none is idle: each blocks for as long as its fd is quiet, so if
 * they shared the bound, max quiet fds would starve every other watcher and
 * every file op queued behind them.  Threads are therefore bounded by
 * max + (wait jobs in the pool), and the wait jobs are bounded by the
 * watched fds.
 *
 * A worker takes the next job of the class it just ran if there is one (so
 * a finished work job hands its slot straight to the next work job), else a
 * wait job, else a work job if a slot is free.  With that rule the number of
 * jobs that could start now never grows when a worker finishes, and only
 * submit needs to find workers (dispatch_locked).
 *
 * While a job is queued its ->worker field holds the previous job in its
 * FIFO (a queued job has no worker), so a cancel unlinks it in O(1); its
 * state (TL__JOB_QUEUED or TL__JOB_QUEUED_WAIT) says which FIFO.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "pool.h"

enum { W_IDLE, W_WOKEN, W_BUSY };

struct worker {
  atomic_uint wakew;              /* futex word: 1 once a submit woke us (see worker_sleep) */
  int efd;                        /* eventfd: a cancel interrupts tl__pool_wait */
  int state;                      /* W_*, under the lock */
  int kicked;                     /* efd was written for the current job */
  int cls;                        /* TL__POOL_WORK/WAIT: class of the running job */
  struct tl__job *job;            /* running job */
  struct worker *inext, *iprev;   /* idle stack (top = P.idle) */
  struct worker *anext, *aprev;   /* every worker, for fork */
};

static struct {
  pthread_mutex_t lock;
  int started;
  struct fifo {
    struct tl__job *head, *tail;
    unsigned n;
  } q[2];                         /* queued jobs, by class */
  struct worker *idle;            /* top of the idle stack */
  struct worker *all;
  unsigned nidle, nthreads, nbusy;
  unsigned nbusy_work;            /* workers running a TL__POOL_WORK job */
  unsigned eager;                 /* work jobs started at once while they are short */
  unsigned extra;                 /* work slots granted beyond eager by the monitor */
  uint64_t ewma_ns;               /* smoothed run time of work jobs */
  int monitor;                    /* 0 none, 1 running, -1 could not start */
  int monitor_armed;
  uint64_t completed_work;        /* work jobs finished */
  uint64_t monitor_seen;          /* completed_work at the monitor's last look */
  pthread_cond_t monitorcv;
  unsigned npending;              /* woken or starting workers not yet looking at the queue */
  unsigned nstarting;             /* created threads not yet in worker_main */
  pthread_cond_t startedcv;       /* nstarting fell to 0 */
  unsigned min_threads, max_threads;
  unsigned keepalive_ms;
  uint64_t completed, spawn_failures;
  atomic_uint wakers;             /* submitters signalling outside the lock */
} P = { .lock = PTHREAD_MUTEX_INITIALIZER, .startedcv = PTHREAD_COND_INITIALIZER,
        .monitorcv = PTHREAD_COND_INITIALIZER };

enum { SHORT_NS = 50 * 1000, MONITOR_MS = 2 };

static __thread struct worker *self;

/* ms from now on clock c (the workers'
 * futex waits on CLOCK_MONOTONIC; the statically initialised condition
 * variables on CLOCK_REALTIME). */
static void deadline_after(clockid_t c, struct timespec *ts, unsigned ms) {
  clock_gettime(c, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* A fork while a new worker is still starting can hand the child a lock
 * that thread held in the parent: libc's allocator locks are fork-safe, but
 * others are not (GCC 12's ASan allocator, found by tests/test_process: the
 * child hung in its own first spawn).  So fork waits, briefly, for starting
 * workers to reach worker_main. */
static void atfork_prepare(void) {
  pthread_mutex_lock(&P.lock);
  if (P.nstarting) {
    struct timespec until;
    deadline_after(CLOCK_REALTIME, &until, 200);
    while (P.nstarting && pthread_cond_timedwait(&P.startedcv, &P.lock, &until) == 0)
      ;
  }
}
static void atfork_parent(void) { pthread_mutex_unlock(&P.lock); }

/* Only fork's child calls this with the lock held (by the forking thread,
 * which is the child's only thread). */
static void atfork_child(void) {
  pthread_mutex_unlock(&P.lock);
  tl__pool_atfork_child();
}

void tl__pool_atfork_child(void) {
  pthread_mutex_lock(&P.lock);
  /* The workers do not exist here: free what they left. */
  struct worker *w = P.all;
  while (w) {
    struct worker *next = w->anext;
    close(w->efd);
    free(w);
    w = next;
  }
  P.all = P.idle = NULL;
  memset(P.q, 0, sizeof P.q);
  P.nidle = P.nthreads = P.nbusy = P.nbusy_work = P.npending = P.nstarting = 0;
  P.extra = 0;
  P.ewma_ns = 0;
  /* The monitor did not come along, and its condition variable may still
   * record it as a waiter: start both afresh. */
  P.monitor = P.monitor_armed = 0;
  P.monitorcv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
  atomic_store(&P.wakers, 0);
  /* Re-read the environment on the next use: a test harness or a server
   * may fork first and configure the child. */
  P.started = 0;
  P.completed = 0;
  P.spawn_failures = 0;
  pthread_mutex_unlock(&P.lock);
}

static unsigned env_uint(const char *name, unsigned def, unsigned lo, unsigned hi) {
  const char *s = tl__getenv(name);
  if (!s || !*s)
    return def;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || s[0] == '-')
    return def;
  if (v < lo)
    return lo;
  if (v > hi)
    return hi;
  return (unsigned)v;
}

/* Under the lock. */
static void start_locked(void) {
  static int atfork_done;
  if (P.started)
    return;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1)
    ncpu = 1;
  P.max_threads = env_uint("TRILOOP_THREADS_MAX", 256, 1, 65536);
  /* At least one stays: once a worker has existed the pool never drops to
   * zero threads, which is what lets a failed spawn tell "nothing can run
   * this batch" from "a worker will get to it". */
  P.min_threads = env_uint("TRILOOP_THREADS", (unsigned)(2 * ncpu), 1, 65536);
  if (P.min_threads > P.max_threads)
    P.min_threads = P.max_threads;
  P.keepalive_ms = env_uint("TRILOOP_THREADS_KEEPALIVE_MS", 5000, 1, 86400000u);
  P.eager = env_uint("TRILOOP_THREADS_EAGER", ncpu < 2 ? 2 : (unsigned)ncpu, 1, 65536);
  if (!atfork_done) {
    /* Registered once per process; the child keeps the registration. */
    if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0)
      atfork_done = 1;
  }
  P.started = 1;
}

static struct tl__job *fifo_pop(struct fifo *f) {
  struct tl__job *j = f->head;
  if (!j)
    return NULL;
  f->head = j->next;
  if (f->head)
    f->head->worker = NULL;
  else
    f->tail = NULL;
  f->n--;
  return j;
}

/* How many work jobs may run at once now (see the top). */
static unsigned work_limit(void) {
  if (P.ewma_ns >= SHORT_NS || P.eager + P.extra >= P.max_threads)
    return P.max_threads;
  return P.eager + P.extra;
}

/* Can a work job start now (a worker running one would not exceed the limit)? */
static int work_slot_free(void) { return P.nbusy_work < work_limit(); }

/* Jobs that could start right now if there were workers for them. */
static unsigned startable_locked(void) {
  unsigned lim = work_limit();
  unsigned slots = lim > P.nbusy_work ? lim - P.nbusy_work : 0;
  unsigned work = P.q[TL__POOL_WORK].n < slots ? P.q[TL__POOL_WORK].n : slots;
  return P.q[TL__POOL_WAIT].n + work;
}

/* The next job for a worker that last ran a job of class prefer (-1: none);
 * *cls gets the class of the job returned.  See the rule at the top. */
static struct tl__job *pop_locked(int prefer, int *cls) {
  if (prefer == TL__POOL_WORK && P.q[TL__POOL_WORK].head) {
    *cls = TL__POOL_WORK;          /* our slot passes to it */
    return fifo_pop(&P.q[TL__POOL_WORK]);
  }
  if (P.q[TL__POOL_WAIT].head) {
    *cls = TL__POOL_WAIT;
    return fifo_pop(&P.q[TL__POOL_WAIT]);
  }
  if (P.q[TL__POOL_WORK].head && work_slot_free()) {
    *cls = TL__POOL_WORK;
    return fifo_pop(&P.q[TL__POOL_WORK]);
  }
  return NULL;
}

static void idle_push(struct worker *w) {
  w->state = W_IDLE;
  w->iprev = NULL;
  w->inext = P.idle;
  if (P.idle)
    P.idle->iprev = w;
  P.idle = w;
  P.nidle++;
}

static void idle_remove(struct worker *w) {
  if (w->iprev)
    w->iprev->inext = w->inext;
  else
    P.idle = w->inext;
  if (w->inext)
    w->inext->iprev = w->iprev;
  w->inext = w->iprev = NULL;
  P.nidle--;
}

static void all_remove(struct worker *w) {
  if (w->aprev)
    w->aprev->anext = w->anext;
  else
    P.all = w->anext;
  if (w->anext)
    w->anext->aprev = w->aprev;
}

/* Marks the job running on w; under the lock. */
static void run_locked(struct worker *w, struct tl__job *j, int cls) {
  j->state = TL__JOB_RUNNING;
  j->worker = w;
  w->job = j;
  w->cls = cls;
  w->state = W_BUSY;
  P.nbusy++;
  if (cls == TL__POOL_WORK)
    P.nbusy_work++;
}

/*
 * An idle worker sleeps on a futex word of its own rather than a
 * condition variable: glibc's pthread_cond_wait made a third futex call
 * per hand-off (a FUTEX_WAKE of the condvar's internal lock that woke
 * nobody: strace -f -k, cached reads at queue depth 1), so each op on an
 * idle pool cost a wake, a wait and that.  The state under P.lock stays
 * the truth; the word only says "look again".  It is cleared under the
 * lock before sleeping, and a waker sets it only after changing the state
 * under the lock (dispatch_locked), so a wake that comes before the wait
 * makes the wait return at once: none is lost.  A stale one only costs a
 * look at the state.  Called with P.lock held; returns with it held.
 * Returns 1 if the deadline dl (CLOCK_MONOTONIC, NULL: none) passed.
 */
static int worker_sleep(struct worker *w, const struct timespec *dl) {
  atomic_store_explicit(&w->wakew, 0, memory_order_relaxed);
  pthread_mutex_unlock(&P.lock);
  long r = syscall(SYS_futex, &w->wakew, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, dl, NULL,
                   FUTEX_BITSET_MATCH_ANY);
  int timed_out = r < 0 && errno == ETIMEDOUT;
  pthread_mutex_lock(&P.lock);
  return timed_out;
}

/* After w->state left W_IDLE under the lock (the lock may be held or not). */
static void worker_wake(struct worker *w) {
  atomic_store_explicit(&w->wakew, 1, memory_order_release);
  syscall(SYS_futex, &w->wakew, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  self = w;
  pthread_mutex_lock(&P.lock);
  P.npending--;
  if (--P.nstarting == 0)
    pthread_cond_broadcast(&P.startedcv);
  for (;;) {
    int cls;
    struct tl__job *j = pop_locked(-1, &cls);
    if (!j) {
      /* Nothing to do: wait on the idle stack.  Above the warm minimum the
       * wait has a deadline, and a worker still idle then retires. */
      idle_push(w);
      int timed = P.nthreads > P.min_threads;
      struct timespec dl;
      if (timed)
        deadline_after(CLOCK_MONOTONIC, &dl, P.keepalive_ms);
      int expired = 0;
      while (w->state == W_IDLE && !expired)
        expired = worker_sleep(w, timed ? &dl : NULL);
      if (w->state == W_IDLE) {
        idle_remove(w);
        if (P.nthreads > P.min_threads && !startable_locked() &&
            atomic_load_explicit(&P.wakers, memory_order_acquire) == 0)
          break;                       /* retire */
        continue;                      /* stay warm, or take the new job */
      }
      /* Popped by a submit, which counted us in npending. */
      P.npending--;
      continue;
    }

    run_locked(w, j, cls);
    pthread_mutex_unlock(&P.lock);
    for (;;) {
      struct timespec t0, t1;
      if (cls == TL__POOL_WORK)
        clock_gettime(CLOCK_MONOTONIC, &t0);
      j->work(j);
      if (cls == TL__POOL_WORK)
        clock_gettime(CLOCK_MONOTONIC, &t1);
      pthread_mutex_lock(&P.lock);
      j->state = TL__JOB_DONE;
      j->worker = NULL;
      w->job = NULL;
      P.nbusy--;
      if (cls == TL__POOL_WORK) {
        P.nbusy_work--;
        int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
        P.ewma_ns = (P.ewma_ns * 7 + (uint64_t)(ns > 0 ? ns : 0)) / 8;
        P.completed_work++;
        if (!P.q[TL__POOL_WORK].n)
          P.extra = 0;
      }
      P.completed++;
      struct tl__job *next = NULL;
      int kicked = w->kicked;
      /* A cancel that kicked the eventfd for the job just finished must not
       * be seen by the next one's wait: drain it before taking a job. */
      if (!kicked && (next = pop_locked(cls, &cls)) != NULL)
        run_locked(w, next, cls);
      pthread_mutex_unlock(&P.lock);

      /* From here on the job belongs to its loop. */
      tl__base_post((struct tl__base *)j->base, j);

      if (kicked) {
        uint64_t v;
        ssize_t n = read(w->efd, &v, sizeof v);
        (void)n;
        pthread_mutex_lock(&P.lock);
        w->kicked = 0;
        if ((next = pop_locked(cls, &cls)) != NULL)
          run_locked(w, next, cls);
        pthread_mutex_unlock(&P.lock);
      }
      if (!next)
        break;
      j = next;
    }
    pthread_mutex_lock(&P.lock);
  }
  P.nthreads--;
  all_remove(w);
  pthread_mutex_unlock(&P.lock);
  close(w->efd);
  free(w);
  return NULL;
}

/* A detached thread with a small stack and every signal blocked: its work
 * is syscalls and a poll (a thousand blocked readers then cost little
 * address space), a handler must run on the thread the user expects, and a
 * blocking call here must not see EINTR.  0 or pthread_create's error. */
static int start_thread(void *(*fn)(void *), void *arg) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  size_t stack = 256 * 1024;
  if (stack < (size_t)PTHREAD_STACK_MIN)
    stack = PTHREAD_STACK_MIN;
  pthread_attr_setstacksize(&attr, stack);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t tid;
  int e = pthread_create(&tid, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return e;
}

/* Starts one worker; the caller has counted it in nthreads and npending. */
static int spawn(void) {
  struct worker *w = calloc(1, sizeof *w);
  if (!w)
    return -ENOMEM;
  w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->efd < 0) {
    int r = -errno;
    free(w);
    return r;
  }
  atomic_init(&w->wakew, 0);
  w->state = W_WOKEN;

  pthread_mutex_lock(&P.lock);
  w->anext = P.all;
  if (P.all)
    P.all->aprev = w;
  P.all = w;
  P.nstarting++;
  pthread_mutex_unlock(&P.lock);

  int e = start_thread(worker_main, w);
  if (e == 0)
    return 0;

  pthread_mutex_lock(&P.lock);
  all_remove(w);
  if (--P.nstarting == 0)
    pthread_cond_broadcast(&P.startedcv);
  pthread_mutex_unlock(&P.lock);
  close(w->efd);
  free(w);
  return -e;
}

/*
 * Finds a worker for every queued job that has none coming: wakes idle ones
 * first, then reserves new threads.  Under the lock; returns how many
 * threads the caller must start after unlocking.
 *
 * The first WAKE_MAX wakeups are left to the caller, who signals after
 * unlocking: a worker signalled under the lock would wake only to block on
 * the mutex we hold, which costs a second context switch per wakeup.  Until
 * then P.wakers keeps the workers in wake[] from retiring (freeing their
 * futex word).
 */
enum { WAKE_MAX = 16 };

static unsigned dispatch_locked(struct worker **wake, unsigned *nwake, int *start_monitor) {
  unsigned spawn_n = 0;
  *nwake = 0;
  *start_monitor = 0;
  while (startable_locked() > P.npending) {
    struct worker *w = P.idle;
    if (w) {
      idle_remove(w);
      w->state = W_WOKEN;
      P.npending++;
      if (*nwake < WAKE_MAX)
        wake[(*nwake)++] = w;
      else
        worker_wake(w);
    } else {
      /* startable_locked() already keeps work jobs within the bound. */
      P.nthreads++;
      P.npending++;
      spawn_n++;
    }
  }
  if (*nwake)
    atomic_fetch_add_explicit(&P.wakers, 1, memory_order_relaxed);
  /* Work jobs held back by the limit: the monitor must look at them. */
  unsigned lim = work_limit();
  if (lim < P.max_threads && P.q[TL__POOL_WORK].n > (lim > P.nbusy_work ? lim - P.nbusy_work : 0)) {
    if (P.monitor == 0) {
      P.monitor = 1;
      *start_monitor = 1;
    } else if (P.monitor == 1 && !P.monitor_armed) {
      P.monitor_armed = 1;
      pthread_cond_signal(&P.monitorcv);
    }
  }
  return spawn_n;
}

static void *monitor_main(void *arg);
static void unlink_locked(struct tl__job *j);

/* Under the lock, after a spawn failed while other workers exist: the jobs
 * queued beyond the workers coming for them may wait forever (the busy
 * workers can be wait jobs on quiet fds, and a thread that cannot start
 * now, for RLIMIT_NOFILE or RLIMIT_NPROC, will not start later either while
 * they hold their fds).  They complete with the spawn error instead, newest
 * first, wait jobs before work jobs.  Returns them linked through ->next. */
static struct tl__job *fail_unserved_locked(int err) {
  unsigned want = startable_locked();
  struct tl__job *list = NULL;
  while (want > P.npending) {
    struct fifo *f = P.q[TL__POOL_WAIT].tail ? &P.q[TL__POOL_WAIT] : &P.q[TL__POOL_WORK];
    struct tl__job *j = f->tail;
    if (!j)
      break;
    unlink_locked(j);
    j->state = TL__JOB_DONE;
    j->res = err;
    j->cancelled = -1;   /* never ran (pool.h) */
    j->next = list;
    list = j;
    want = startable_locked();
  }
  return list;
}

/* Outside the lock: hands each failed job back to its loop. */
static void post_failed(struct tl__job *j) {
  while (j) {
    struct tl__job *next = j->next;
    tl__base_post((struct tl__base *)j->base, j);
    j = next;
  }
}

/* After a dispatch, outside the lock: signals the workers it chose and
 * starts the threads it reserved (and the monitor, the first time).
 * Returns 0, or the error of a spawn that failed (the caller decides, with
 * fail_unserved_locked(), what becomes of the jobs left without a worker). */
static int dispatch_finish(struct worker **wake, unsigned nwake, unsigned spawn_n,
                           int start_monitor) {
  int nested = 0;
  if (nwake) {
    for (unsigned i = 0; i < nwake; i++)
      worker_wake(wake[i]);
    atomic_fetch_sub_explicit(&P.wakers, 1, memory_order_release);
  }
  if (start_monitor) {
    int e = start_thread(monitor_main, NULL);
    if (e) {
      /* Without the monitor a stuck eager worker could hold the queue:
       * no limit then, as if every job were long. */
      pthread_mutex_lock(&P.lock);
      P.monitor = -1;
      P.eager = P.max_threads;
      unsigned n2;
      int sm;
      struct worker *w2[WAKE_MAX];
      unsigned more = dispatch_locked(w2, &n2, &sm);
      pthread_mutex_unlock(&P.lock);
      nested = dispatch_finish(w2, n2, more, 0);
    }
  }
  for (unsigned i = 0; i < spawn_n; i++) {
    int err = spawn();
    if (err == 0)
      continue;
    pthread_mutex_lock(&P.lock);
    /* Give back this and every other reservation we could not honour: a
     * failing pthread_create fails again right away. */
    unsigned left = spawn_n - i;
    P.nthreads -= left;
    P.npending -= left;
    P.spawn_failures++;
    pthread_mutex_unlock(&P.lock);
    return err;
  }
  return nested;
}

/* See the top: looks at held-back work jobs every MONITOR_MS while there
 * are any, and sleeps on monitorcv otherwise. */
static void *monitor_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&P.lock);
  for (;;) {
    if (P.monitor != 1)
      break;   /* a fork's child: there is no monitor thread there */
    if (!P.q[TL__POOL_WORK].n || work_limit() >= P.max_threads) {
      P.monitor_armed = 0;
      pthread_cond_wait(&P.monitorcv, &P.lock);
      continue;
    }
    P.monitor_armed = 1;
    P.monitor_seen = P.completed_work;
    struct timespec dl;
    deadline_after(CLOCK_REALTIME, &dl, MONITOR_MS);
    while (pthread_cond_timedwait(&P.monitorcv, &P.lock, &dl) == 0)
      ;   /* signalled while armed: keep to the period */
    if (!P.q[TL__POOL_WORK].n)
      continue;
    if (P.completed_work == P.monitor_seen)
      P.extra += P.q[TL__POOL_WORK].n;   /* nothing finished: stuck, not short */
    struct worker *wake[WAKE_MAX];
    unsigned nwake;
    int sm;
    unsigned spawn_n = dispatch_locked(wake, &nwake, &sm);
    pthread_mutex_unlock(&P.lock);
    int err = dispatch_finish(wake, nwake, spawn_n, 0);
    pthread_mutex_lock(&P.lock);
    if (err && P.nthreads != 0) {   /* none: the submit hands its batch back */
      struct tl__job *failed = fail_unserved_locked(err);
      pthread_mutex_unlock(&P.lock);
      post_failed(failed);
      pthread_mutex_lock(&P.lock);
    }
  }
  pthread_mutex_unlock(&P.lock);
  return NULL;
}

/* Unlinks a queued job; under the lock. */
static void unlink_locked(struct tl__job *j) {
  struct fifo *f = &P.q[j->state == TL__JOB_QUEUED_WAIT ? TL__POOL_WAIT : TL__POOL_WORK];
  struct tl__job *prev = j->worker;
  if (prev)
    prev->next = j->next;
  else
    f->head = j->next;
  if (j->next)
    j->next->worker = prev;
  else
    f->tail = prev;
  j->next = NULL;
  j->worker = NULL;
  j->state = TL__JOB_IDLE;
  f->n--;
}

/* Links a list for its FIFO, outside the lock. */
static void list_prep(struct tl__pool_list *l, int state) {
  struct tl__job *prev = NULL;
  for (struct tl__job *j = l->head; ; j = j->next) {
    j->state = state;
    j->cancelled = 0;
    j->worker = prev;
    prev = j;
    if (j == l->tail)
      break;
  }
  l->tail->next = NULL;
}

/* Under the lock. */
static void list_append(struct fifo *f, struct tl__pool_list *l) {
  l->head->worker = f->tail;
  if (f->tail)
    f->tail->next = l->head;
  else
    f->head = l->head;
  f->tail = l->tail;
  f->n += l->n;
}

/* Under the lock: takes back whatever of l is still queued, and leaves l
 * linked head to tail again for the caller to walk. */
static void list_unqueue(struct tl__pool_list *l) {
  struct tl__job *last = NULL;
  for (struct tl__job *j = l->head, *next; j; j = next) {
    next = j == l->tail ? NULL : j->next;
    if (j->state == TL__JOB_QUEUED || j->state == TL__JOB_QUEUED_WAIT)
      unlink_locked(j);
    if (last)
      last->next = j;
    last = j;
  }
  if (last)
    last->next = NULL;
}

int tl__pool_submit_lists(struct tl__pool_list *work, struct tl__pool_list *wait) {
  if (work && (!work->head || !work->n))
    work = NULL;
  if (wait && (!wait->head || !wait->n))
    wait = NULL;
  if (!work && !wait)
    return 0;
  /* Link the lists outside the lock; only their ends touch shared state. */
  if (work)
    list_prep(work, TL__JOB_QUEUED);
  if (wait)
    list_prep(wait, TL__JOB_QUEUED_WAIT);

  pthread_mutex_lock(&P.lock);
  start_locked();
  if (work)
    list_append(&P.q[TL__POOL_WORK], work);
  if (wait)
    list_append(&P.q[TL__POOL_WAIT], wait);
  struct worker *wake[WAKE_MAX];
  unsigned nwake;
  int start_monitor;
  unsigned spawn_n = dispatch_locked(wake, &nwake, &start_monitor);
  pthread_mutex_unlock(&P.lock);
  int err = dispatch_finish(wake, nwake, spawn_n, start_monitor);
  if (err) {
    pthread_mutex_lock(&P.lock);
    if (P.nthreads != 0) {
      /* Workers exist but may all be held: what none of them is coming for
       * completes with the spawn error (nothing here has been failed yet:
       * only this thread fails jobs of this batch). */
      struct tl__job *failed = fail_unserved_locked(err);
      pthread_mutex_unlock(&P.lock);
      post_failed(failed);
      return 0;
    }
    /* Nothing can run them: hand the lists back, nothing is lost.  The
     * jobs are still queued (no thread ever existed to take them). */
    if (work)
      list_unqueue(work);
    if (wait)
      list_unqueue(wait);
    pthread_mutex_unlock(&P.lock);
    return err;
  }
  return 0;
}

int tl__pool_submit_batch(struct tl__job *head, struct tl__job *tail, unsigned n) {
  struct tl__pool_list l = { head, tail, n };
  return tl__pool_submit_lists(&l, NULL);
}

int tl__pool_submit(struct tl__job *job) {
  job->next = NULL;
  return tl__pool_submit_batch(job, job, 1);
}

int tl__pool_cancel(struct tl__job *job) {
  int r;
  pthread_mutex_lock(&P.lock);
  switch (job->state) {
  case TL__JOB_QUEUED:
  case TL__JOB_QUEUED_WAIT:
    unlink_locked(job);
    r = 1;
    break;
  case TL__JOB_RUNNING: {
    struct worker *w = job->worker;
    /* Atomic: the worker reads it without the lock
     * (tl__op_run_on_worker, before it blocks). */
    __atomic_store_n(&job->cancelled, 1, __ATOMIC_RELAXED);
    if (!w->kicked) {
      /* Written under the lock: once unlocked the worker may retire. */
      uint64_t one = 1;
      ssize_t n = write(w->efd, &one, sizeof one);
      (void)n;
      w->kicked = 1;
    }
    r = 0;
    break;
  }
  default:
    r = -ENOENT;
    break;
  }
  pthread_mutex_unlock(&P.lock);
  return r;
}

int tl__pool_wait(struct tl__job *job, int fd, short events, int timeout_ms) {
  struct worker *w = self;
  (void)job;
  if (!w)
    return -EINVAL;   /* not on a pool worker */
  struct pollfd p[2] = {
    { .fd = fd, .events = events },
    { .fd = w->efd, .events = POLLIN },
  };
  struct timespec dl;
  if (timeout_ms > 0)
    deadline_after(CLOCK_MONOTONIC, &dl, (unsigned)timeout_ms);
  for (;;) {
    int n = poll(p, 2, timeout_ms);
    if (n > 0) {
      /* The eventfd stays readable until the job ends, so a cancelled job
       * sees -ECANCELED from every wait, however many it makes. */
      if (p[1].revents)
        return -ECANCELED;
      return p[0].revents;
    }
    if (n == 0)
      return 0;
    if (errno != EINTR)
      return -errno;
    if (timeout_ms > 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long left = (dl.tv_sec - now.tv_sec) * 1000 + (dl.tv_nsec - now.tv_nsec) / 1000000;
      if (left <= 0)
        return 0;
      timeout_ms = (int)left;
    }
  }
}

/* Bumped by loop threads without the pool's lock. */
static _Atomic uint64_t nowait_hits, nowait_eagain;

void tl__pool_count_nowait(int hit) {
  atomic_fetch_add_explicit(hit ? &nowait_hits : &nowait_eagain, 1, memory_order_relaxed);
}

void tl_pool_stats(struct tl_pool_stats *st) {
  pthread_mutex_lock(&P.lock);
  start_locked();
  st->threads = P.nthreads;
  st->busy = P.nbusy;
  st->idle = P.nidle;
  st->queued = P.q[TL__POOL_WORK].n + P.q[TL__POOL_WAIT].n;
  st->max_threads = P.max_threads;
  st->completed = P.completed;
  st->spawn_failures = P.spawn_failures;
  pthread_mutex_unlock(&P.lock);
  st->nowait_hits = atomic_load_explicit(&nowait_hits, memory_order_relaxed);
  st->nowait_eagain = atomic_load_explicit(&nowait_eagain, memory_order_relaxed);
}
