/*
 * The tl_* front end: watchers, the timer heap, pending queues, completion
 * op bookkeeping and the run loop.  It never names a backend: everything
 * kernel-facing goes through loop->base.be (src/base.h).
 *
 * Shape follows libev: watchers are caller-owned, "active" doubles as the
 * watcher's index in whichever array holds it (heap slot, idle array, ...)
 * plus one, "pending" likewise indexes the pending array of its priority.
 * Nothing here allocates per start or per submit; arrays grow geometrically.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "pool.h"

#define NPRI (TL_MAXPRI - TL_MINPRI + 1)
#define MAX_BLOCK 59.743          /* as libev: wake now and then regardless */
#define MAX_RW 0x7ffff000u        /* the kernel's MAX_RW_COUNT; io_uring's len is 32-bit */
#define HEAP_ARITY 4

/* Op states.  The magic keeps a never-submitted op with garbage fields from
 * looking like one in flight. */
#define OP_MAGIC 0x7a5e1f00u
#define OP_INFLIGHT (OP_MAGIC | 1u)
#define OP_DONE (OP_MAGIC | 2u)
#define OP_DEFERRED (OP_MAGIC | 3u) /* a close waiting for the fd's other ops */
#define OP_CANCEL_REQ 0x80u       /* or'ed into an in-flight state */
#define OP_MS 0x40u               /* or'ed: a multishot recv (tl_recv_multishot) */
#define OP_TIMEDOUT 0x20u         /* or'ed: its deadline asked the cancel */
#define OP_FIXBUF 0x10u           /* or'ed: counted in fixed.bufs_busy */
#define OP_FIXFILE 0x08u          /* or'ed: counted in fixed.files_busy */
#define OP_FLAGS (OP_CANCEL_REQ | OP_MS | OP_TIMEDOUT | OP_FIXBUF | OP_FIXFILE)
#define OP_STATE(op) ((op)->tl__state & ~OP_FLAGS)

struct fdent {
  tl_io *head;          /* watchers on this fd */
  unsigned registered;  /* what the backend has been told */
  unsigned char queued; /* in fdchanges */
};

struct pend {
  tl_watcher *w;
  unsigned events;
};

/* A growable array of watcher pointers (idle, prepare, check, async). */
struct wvec {
  tl_watcher **v;
  int n, max;
};

struct tl_loop {
  struct tl__base base;
  tl_tstamp now;
  int activecnt;          /* ref'd active watchers + ops in flight */
  int loop_done;
  int in_run;
  int destroying;
  void *userdata;
  uint64_t ops_submitted, ops_completed;

  struct fdent *fds;
  int nfds;
  int *fdchanges;
  int nfdchanges, maxfdchanges;

  struct pend *pend[NPRI];
  int npend[NPRI], maxpend[NPRI];

  tl_timer **heap;
  int nheap, maxheap;

  struct wvec idles, prepares, checks, asyncs;

  tl_signal *sigw[NSIG];
  atomic_int sigpending[NSIG];
  int sigrefs[NSIG];      /* signal watchers + (children ? 1 : 0) for SIGCHLD */
  int nsigs;              /* signals with sigrefs > 0 */
  tl_child *children;

  tl_op *ops;             /* in flight: submitted, callback not yet started */
  unsigned nops;
  tl_op *done_head, *done_tail;
  tl_op *closes;          /* deferred closes, linked through tl__qnext */
  /* Messages of multishot ops waiting for their callbacks, in arrival
   * order, linked through the rings' per-buffer records. */
  tl_bufring *mq_head, *mq_tail;
  uint32_t mq_hbid, mq_tbid;
  tl_bufring *rings;
};

/* Stands in for a watcher whose pending entry was cleared. */
static tl_watcher pending_dummy;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int grow(void **arr, int *max, int need, size_t elem) {
  if (need <= *max)
    return 0;
  int n = *max ? *max : 16;
  while (n < need)
    n *= 2;
  void *p = realloc(*arr, (size_t)n * elem);
  if (!p)
    return -ENOMEM;
  *arr = p;
  *max = n;
  return 0;
}

static int pri_index(const tl_watcher *w) {
  int p = w->priority;
  if (p < TL_MINPRI) p = TL_MINPRI;
  if (p > TL_MAXPRI) p = TL_MAXPRI;
  return p - TL_MINPRI;
}

static void feed(tl_loop *loop, tl_watcher *w, unsigned revents) {
  if (w->pending) {
    loop->pend[pri_index(w)][w->pending - 1].events |= revents;
    return;
  }
  int pri = pri_index(w);
  /* Pending arrays only grow at feed time; on ENOMEM the event is dropped
   * rather than crashing, which is what a level-triggered source repeats. */
  if (grow((void **)&loop->pend[pri], &loop->maxpend[pri], loop->npend[pri] + 1,
           sizeof(struct pend)) < 0)
    return;
  loop->pend[pri][loop->npend[pri]] = (struct pend){ w, revents };
  w->pending = ++loop->npend[pri];
}

static unsigned clear_pending(tl_loop *loop, tl_watcher *w) {
  if (!w->pending)
    return 0;
  struct pend *p = &loop->pend[pri_index(w)][w->pending - 1];
  unsigned ev = p->events;
  p->w = &pending_dummy;
  p->events = 0;
  w->pending = 0;
  return ev;
}

static void start_common(tl_loop *loop, tl_watcher *w, int active) {
  w->active = active;
  loop->activecnt++;
}

static void stop_common(tl_loop *loop, tl_watcher *w) {
  w->active = 0;
  loop->activecnt--;
}

static int wvec_add(tl_loop *loop, struct wvec *v, tl_watcher *w) {
  if (w->active)
    return -EBUSY;
  if (grow((void **)&v->v, &v->max, v->n + 1, sizeof *v->v) < 0)
    return -ENOMEM;
  v->v[v->n++] = w;
  start_common(loop, w, v->n);
  return 0;
}

static int wvec_del(tl_loop *loop, struct wvec *v, tl_watcher *w) {
  int pending = clear_pending(loop, w) != 0;
  if (!w->active)
    return pending ? 0 : -EALREADY;
  int i = w->active - 1;
  v->v[i] = v->v[--v->n];
  v->v[i]->active = i + 1;
  stop_common(loop, w);
  return 0;
}

static void wvec_feed_all(tl_loop *loop, struct wvec *v, unsigned ev) {
  for (int i = 0; i < v->n; i++)
    feed(loop, v->v[i], ev);
}

/* ------------------------------------------------------------------ */
/* Loop life                                                           */
/* ------------------------------------------------------------------ */

static void on_fd(struct tl__base *b, int fd, unsigned revents);
static void on_op(struct tl__base *b, tl_op *op, int64_t res);
static void on_more(struct tl__base *b, tl_op *op, int64_t res, unsigned bid);
static void ms_cancel(tl_loop *loop, tl_op *op);
static int ms_arm(tl_loop *loop, tl_op *op);
static void on_wake(struct tl__base *b);
static void sig_unregister(tl_loop *loop, int signum);

const char *tl_version(void) { return PACKAGE_VERSION; }

/* A write op on a socket whose peer has gone raises SIGPIPE, and on
 * io_uring no MSG_NOSIGNAL can be had for IORING_OP_WRITE: so, as Node and
 * libev's documentation advise, SIGPIPE is ignored unless the program chose
 * a disposition of its own.  The op then completes with -EPIPE. */
static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
      !(sa.sa_flags & SA_SIGINFO)) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

int tl_loop_new(tl_loop **loopp, unsigned flags) {
  if (!loopp)
    return -EINVAL;
  *loopp = NULL;
  tl_loop *loop = calloc(1, sizeof *loop);
  if (!loop)
    return -ENOMEM;
  loop->base.owner = loop;
  loop->base.on_fd = on_fd;
  loop->base.on_op = on_op;
  loop->base.on_wake = on_wake;
  loop->base.on_more = on_more;
  for (int i = 0; i < NSIG; i++)
    atomic_init(&loop->sigpending[i], 0);
  int r = tl__base_init(&loop->base, flags);
  if (r < 0) {
    free(loop);
    return r;
  }
  ignore_sigpipe();
  loop->now = tl__time();
  *loopp = loop;
  return 0;
}

static int invoke_done_ops(tl_loop *loop, int budget);
static int fd_busy(const tl_loop *loop, const tl_op *close);
static int work_cancel(tl_loop *loop, tl_op *op);
static int work_submit(tl_loop *loop, tl_op *op);
static void limit_disarm(tl_loop *loop, tl_op *op);

/* Cancels one op for destroy; may be asked again for the same op. */
static void destroy_cancel(tl_loop *loop, tl_op *op) {
  if (op->type == TL_OP_WORK)
    work_cancel(loop, op);
  else if ((op->tl__state & OP_MS) && !op->u.ms.ring->native)
    ms_cancel(loop, op);   /* completes it at once */
  else
    loop->base.be->cancel(&loop->base, op);
}

/* Seconds destroy waits for ops in flight to be answered, then for pool
 * workers to hand back what they finish once the backend has failed. */
#define DESTROY_WAIT 10.0
#define DESTROY_GRACE 0.5

int tl_loop_destroy(tl_loop *loop) {
  if (!loop)
    return -EINVAL;
  if (loop->in_run || loop->destroying)
    return -EBUSY;
  loop->destroying = 1;

  /* Rule 5 of the header: every op in flight is cancelled and called back
   * before we return; nothing the kernel or a worker may still write into
   * is released before its callback.  Close ops are not cancelled: the
   * caller meant the fd to go, and a cancelled close would leak it. */
  for (tl_op *op = loop->ops; op; op = op->tl__next)
    if (!(op->tl__state & OP_CANCEL_REQ) && OP_STATE(op) == OP_INFLIGHT &&
        op->type != TL_OP_CLOSE) {
      op->tl__state |= OP_CANCEL_REQ;
      destroy_cancel(loop, op);
    }
  /* The backend may never answer: its poll can fail for good (a seccomp
   * filter that denies io_uring_enter, a single-issuer ring destroyed from
   * a thread other than its own), or the kernel may hold an op past any
   * cancel.  Then destroy gives up, as its callers cannot wait forever:
   * after a grace in which pool workers can still hand back what they
   * finish, every op left is called back with -ECANCELED. */
  double deadline = tl__time() + DESTROY_WAIT, grace = 0;
  while (loop->nops) {
    invoke_done_ops(loop, INT_MAX);
    /* tl_close's order holds here too: a deferred close runs once its fd's
     * other ops are called back (found by tests/fuzz), and really closes
     * the fd, here and now, since the backend is going away. */
    for (tl_op **pp = &loop->closes; *pp;) {
      tl_op *op = *pp;
      if (fd_busy(loop, op)) {
        pp = &op->tl__qnext;
        continue;
      }
      *pp = op->tl__qnext;
      on_op(&loop->base, op, close(op->fd) < 0 ? -errno : 0);
    }
    if (!loop->nops)
      break;
    /* A cancel can miss (io_uring may hand a send to a kernel worker just
     * after the cancel looked for it: found by tests/fuzz as a destroy that
     * waited forever); the backend keeps asking from its poll (src/base.h). */
    if (loop->done_head)
      continue;
    if (!grace) {
      int r = loop->base.be->poll(&loop->base, 0.05);
      if ((r < 0 && r != -EINTR) || tl__time() >= deadline)
        grace = tl__time() + DESTROY_GRACE;
      continue;
    }
    if (tl__time() < grace) {
      tl__base_drain(&loop->base);   /* completions posted by pool workers */
      if (!loop->done_head) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
      }
      continue;
    }
    /* Deferred closes still close (rule 5); the rest are given up. */
    for (tl_op *op = loop->closes, *next; op; op = next) {
      next = op->tl__qnext;
      on_op(&loop->base, op, close(op->fd) < 0 ? -errno : 0);
    }
    loop->closes = NULL;
    for (tl_op *op = loop->ops; op; op = op->tl__next)
      if (OP_STATE(op) == OP_INFLIGHT)
        on_op(&loop->base, op, -ECANCELED);
  }

  for (int s = 1; s < NSIG; s++)
    if (loop->sigrefs[s]) {
      loop->sigrefs[s] = 0;
      sig_unregister(loop, s);
    }
  while (loop->rings)
    tl_bufring_free(loop, loop->rings);
  tl__base_destroy(&loop->base);
  for (int i = 0; i < NPRI; i++)
    free(loop->pend[i]);
  free(loop->fds);
  free(loop->fdchanges);
  free(loop->heap);
  free(loop->idles.v);
  free(loop->prepares.v);
  free(loop->checks.v);
  free(loop->asyncs.v);
  free(loop);
  return 0;
}

const char *tl_backend_name(const tl_loop *loop) { return loop->base.be->name; }
enum tl_backend_id tl_backend(const tl_loop *loop) { return loop->base.be->id; }

int tl_loop_describe(const tl_loop *loop, char *buf, size_t len) {
  const struct tl__backend *be = loop->base.be;
  struct tl__base *b = (struct tl__base *)&loop->base;
  return snprintf(buf, len, "%s", be->describe ? be->describe(b) : be->name);
}

int tl_loop_fork(tl_loop *loop) {
  int r = tl__base_fork(&loop->base);
  if (r < 0)
    return r;
  /* Signals that arrived in the parent are the parent's. */
  for (int s = 1; s < NSIG; s++)
    atomic_store(&loop->sigpending[s], 0);
  /* So are the ops in flight: the kernel or a pool worker serves them in the
   * parent, and the backends forgot them in fork.  The child's copies
   * complete with -ECANCELED, so the exactly-once rule holds in both. */
  for (tl_op *op = loop->ops; op; op = op->tl__next)
    if (OP_STATE(op) == OP_INFLIGHT)
      on_op(&loop->base, op, -ECANCELED);
  return 0;
}

void tl_set_userdata(tl_loop *loop, void *data) { loop->userdata = data; }
void *tl_userdata(const tl_loop *loop) { return loop->userdata; }

void tl_loop_stats(const tl_loop *loop, struct tl_loop_stats *st) {
  st->iterations = loop->base.iterations;
  st->syscalls = loop->base.syscalls;
  st->ops_submitted = loop->ops_submitted;
  st->ops_completed = loop->ops_completed;
}

tl_tstamp tl_now(const tl_loop *loop) { return loop->now; }
void tl_now_update(tl_loop *loop) { loop->now = tl__time(); }
void tl_ref(tl_loop *loop) { loop->activecnt++; }
void tl_unref(tl_loop *loop) { loop->activecnt--; }
void tl_break(tl_loop *loop) { loop->loop_done = 1; }
unsigned tl_ops_in_flight(const tl_loop *loop) { return loop->nops; }

/* ------------------------------------------------------------------ */
/* Generic watcher calls                                               */
/* ------------------------------------------------------------------ */

int tl_set_priority(void *watcher, int priority) {
  tl_watcher *w = watcher;
  if (w->active || w->pending)
    return -EBUSY;
  if (priority < TL_MINPRI) priority = TL_MINPRI;
  if (priority > TL_MAXPRI) priority = TL_MAXPRI;
  w->priority = priority;
  return 0;
}

int tl_is_active(const void *w) { return ((const tl_watcher *)w)->active != 0; }
int tl_is_pending(const void *w) { return ((const tl_watcher *)w)->pending != 0; }

unsigned tl_clear_pending(tl_loop *loop, void *w) { return clear_pending(loop, w); }

void tl_feed_event(tl_loop *loop, void *w, unsigned revents) { feed(loop, w, revents); }

static void init_common(tl_watcher *w, void *cb) {
  w->active = w->pending = w->priority = 0;
  w->data = NULL;
  memcpy(&w->cb, &cb, sizeof w->cb);
}

/* ------------------------------------------------------------------ */
/* io watchers                                                         */
/* ------------------------------------------------------------------ */

void tl_io_init(tl_io *w, tl_io_cb cb, int fd, unsigned events) {
  init_common((tl_watcher *)w, (void *)cb);
  w->fd = fd;
  w->events = events;
  w->tl__next = NULL;
  w->tl__fdset = 1;
}

static int fd_grow(tl_loop *loop, int fd) {
  if (fd < loop->nfds)
    return 0;
  /* Only open fds size the table: fd INT_MAX must not allocate 2^31 slots. */
  if (fcntl(fd, F_GETFD) < 0)
    return -errno;
  int n = loop->nfds ? loop->nfds : 64;
  while (n <= fd)
    n *= 2;
  struct fdent *p = realloc(loop->fds, (size_t)n * sizeof *p);
  if (!p)
    return -ENOMEM;
  memset(p + loop->nfds, 0, (size_t)(n - loop->nfds) * sizeof *p);
  loop->fds = p;
  loop->nfds = n;
  return 0;
}

/* Interest changes are batched until the next wait, as libev does: a
 * watcher started and stopped within one iteration costs no syscall. */
static int fd_change(tl_loop *loop, int fd) {
  struct fdent *e = &loop->fds[fd];
  if (e->queued)
    return 0;
  if (grow((void **)&loop->fdchanges, &loop->maxfdchanges, loop->nfdchanges + 1,
           sizeof *loop->fdchanges) < 0)
    return -ENOMEM;
  e->queued = 1;
  loop->fdchanges[loop->nfdchanges++] = fd;
  return 0;
}

static void fd_kill(tl_loop *loop, int fd);

static void fd_reify(tl_loop *loop) {
  for (int i = 0; i < loop->nfdchanges; i++) {
    int fd = loop->fdchanges[i];
    struct fdent *e = &loop->fds[fd];
    e->queued = 0;
    unsigned want = 0;
    for (tl_io *w = e->head; w; w = w->tl__next)
      want |= w->events;
    if (want == e->registered)
      continue;
    int r = loop->base.be->modify(&loop->base, fd, e->registered, want);
    if (r < 0) {
      /* The kernel refused the fd (closed behind our back, or a kind it
       * cannot watch): its watchers learn it through TL_ERROR. */
      e->registered = 0;
      fd_kill(loop, fd);
    } else {
      e->registered = want;
    }
  }
  loop->nfdchanges = 0;
}

static int io_unlink(tl_loop *loop, tl_io *w) {
  tl_io **pp = &loop->fds[w->fd].head;
  while (*pp && *pp != w)
    pp = &(*pp)->tl__next;
  if (!*pp)
    return -ENOENT;
  *pp = w->tl__next;
  w->tl__next = NULL;
  return 0;
}

static void fd_kill(tl_loop *loop, int fd) {
  tl_io *w;
  while ((w = loop->fds[fd].head)) {
    io_unlink(loop, w);
    clear_pending(loop, (tl_watcher *)w);
    stop_common(loop, (tl_watcher *)w);
    feed(loop, (tl_watcher *)w, TL_ERROR | w->events);
  }
}

int tl_io_start(tl_loop *loop, tl_io *w) {
  if (w->active)
    return -EBUSY;
  if (w->fd < 0)
    return -EBADF;
  if (!(w->events & (TL_READ | TL_WRITE)) || (w->events & ~(TL_READ | TL_WRITE)))
    return -EINVAL;
  int r = fd_grow(loop, w->fd);
  if (r < 0)
    return r;
  struct fdent *e = &loop->fds[w->fd];
  if (!e->registered && !e->head) {
    /* First watcher on this fd: tell the backend now, so a bad fd is an
     * error from start rather than a TL_ERROR later.  Further changes are
     * batched until the next wait. */
    r = loop->base.be->modify(&loop->base, w->fd, 0,
                              w->events | (w->tl__fdset ? 0 : TL__SAME_FILE));
    if (r < 0)
      return r;
    e->registered = w->events;
  } else if (fd_change(loop, w->fd) < 0) {
    return -ENOMEM;
  }
  w->tl__fdset = 0;
  w->tl__next = e->head;
  e->head = w;
  start_common(loop, (tl_watcher *)w, 1);
  return 0;
}

int tl_io_stop(tl_loop *loop, tl_io *w) {
  int pending = clear_pending(loop, (tl_watcher *)w) != 0;
  if (!w->active)
    return pending ? 0 : -EALREADY;
  io_unlink(loop, w);
  struct fdent *e = &loop->fds[w->fd];
  if (!e->head && e->registered) {
    /* Last watcher gone: tell the backend now (epoll defers the syscall,
     * io_uring must drop its poll, which pins the file).  A watcher started
     * later on this fd number, maybe a new file by then, registers afresh. */
    loop->base.be->modify(&loop->base, w->fd, e->registered, 0);
    e->registered = 0;
  } else {
    fd_change(loop, w->fd);
  }
  stop_common(loop, (tl_watcher *)w);
  return 0;
}

int tl_io_set(tl_loop *loop, tl_io *w, unsigned events) {
  if (!(events & (TL_READ | TL_WRITE)) || (events & ~(TL_READ | TL_WRITE)))
    return -EINVAL;
  w->events = events;
  if (w->active && fd_change(loop, w->fd) < 0)
    return -ENOMEM;
  return 0;
}

static void on_fd(struct tl__base *b, int fd, unsigned revents) {
  tl_loop *loop = b->owner;
  if (fd < 0 || fd >= loop->nfds)
    return;
  if (revents & TL_ERROR) {
    loop->fds[fd].registered = 0;
    fd_kill(loop, fd);
    return;
  }
  for (tl_io *w = loop->fds[fd].head; w; w = w->tl__next) {
    unsigned ev = w->events & revents;
    if (ev)
      feed(loop, (tl_watcher *)w, ev);
  }
}

/* ------------------------------------------------------------------ */
/* Timers: a 4-ary min-heap on expiry; active is the heap slot + 1      */
/* ------------------------------------------------------------------ */

static void heap_set(tl_loop *loop, int i, tl_timer *w) {
  loop->heap[i] = w;
  w->active = i + 1;
}

static void heap_up(tl_loop *loop, int i) {
  tl_timer *w = loop->heap[i];
  while (i > 0) {
    int p = (i - 1) / HEAP_ARITY;
    if (loop->heap[p]->at <= w->at)
      break;
    heap_set(loop, i, loop->heap[p]);
    i = p;
  }
  heap_set(loop, i, w);
}

static void heap_down(tl_loop *loop, int i) {
  tl_timer *w = loop->heap[i];
  for (;;) {
    int c = i * HEAP_ARITY + 1, best = -1;
    for (int k = c; k < c + HEAP_ARITY && k < loop->nheap; k++)
      if (loop->heap[k]->at < (best < 0 ? w->at : loop->heap[best]->at))
        best = k;
    if (best < 0)
      break;
    heap_set(loop, i, loop->heap[best]);
    i = best;
  }
  heap_set(loop, i, w);
}

static void heap_adjust(tl_loop *loop, int i) {
  if (i > 0 && loop->heap[i]->at < loop->heap[(i - 1) / HEAP_ARITY]->at)
    heap_up(loop, i);
  else
    heap_down(loop, i);
}

static int bad_time(tl_tstamp t) { return isnan(t) || t < 0 || isinf(t); }

void tl_timer_init(tl_timer *w, tl_timer_cb cb, tl_tstamp after, tl_tstamp repeat) {
  init_common((tl_watcher *)w, (void *)cb);
  w->at = after;
  w->repeat = repeat;
}

int tl_timer_set(tl_timer *w, tl_tstamp after, tl_tstamp repeat) {
  if (w->active)
    return -EBUSY;
  if (bad_time(after) || bad_time(repeat))
    return -EINVAL;
  w->at = after;
  w->repeat = repeat;
  return 0;
}

int tl_timer_start(tl_loop *loop, tl_timer *w) {
  if (w->active)
    return -EBUSY;
  if (bad_time(w->at) || bad_time(w->repeat))
    return -EINVAL;
  if (grow((void **)&loop->heap, &loop->maxheap, loop->nheap + 1, sizeof *loop->heap) < 0)
    return -ENOMEM;
  w->at += loop->now;
  loop->activecnt++;
  loop->heap[loop->nheap++] = w;
  heap_up(loop, loop->nheap - 1);
  return 0;
}

static void timer_remove(tl_loop *loop, tl_timer *w) {
  int i = w->active - 1;
  tl_timer *last = loop->heap[--loop->nheap];
  if (i < loop->nheap) {
    heap_set(loop, i, last);
    heap_adjust(loop, i);
  }
  w->at -= loop->now;   /* back to relative, as libev leaves it */
  stop_common(loop, (tl_watcher *)w);
}

int tl_timer_stop(tl_loop *loop, tl_timer *w) {
  int pending = clear_pending(loop, (tl_watcher *)w) != 0;
  if (!w->active)
    return pending ? 0 : -EALREADY;
  timer_remove(loop, w);
  return 0;
}

int tl_timer_again(tl_loop *loop, tl_timer *w) {
  clear_pending(loop, (tl_watcher *)w);
  if (bad_time(w->repeat))
    return -EINVAL;
  if (w->active) {
    if (w->repeat > 0) {
      w->at = loop->now + w->repeat;
      heap_adjust(loop, w->active - 1);
    } else {
      timer_remove(loop, w);
    }
  } else if (w->repeat > 0) {
    w->at = w->repeat;
    return tl_timer_start(loop, w);
  }
  return 0;
}

tl_tstamp tl_timer_remaining(const tl_loop *loop, const tl_timer *w) {
  return w->active ? w->at - loop->now : 0;
}

/* Reverses what was fed since start[], so LIFO invocation runs it in
 * feeding order. */
static void pending_reverse_since(tl_loop *loop, const int *start) {
  for (int pri = 0; pri < NPRI; pri++)
    for (int i = start[pri], j = loop->npend[pri] - 1; i < j; i++, j--) {
      struct pend t = loop->pend[pri][i];
      loop->pend[pri][i] = loop->pend[pri][j];
      loop->pend[pri][j] = t;
      if (loop->pend[pri][i].w != &pending_dummy)
        loop->pend[pri][i].w->pending = i + 1;
      if (loop->pend[pri][j].w != &pending_dummy)
        loop->pend[pri][j].w->pending = j + 1;
    }
}

static void timers_reify(tl_loop *loop) {
  int start[NPRI];
  if (!loop->nheap || loop->heap[0]->at > loop->now)
    return;
  memcpy(start, loop->npend, sizeof start);
  while (loop->nheap && loop->heap[0]->at <= loop->now) {
    tl_timer *w = loop->heap[0];
    if (w->repeat > 0) {
      w->at += w->repeat;
      if (w->at < loop->now)
        w->at = loop->now;
      heap_down(loop, 0);
    } else {
      timer_remove(loop, w);
    }
    feed(loop, (tl_watcher *)w, TL_TIMER);
  }
  pending_reverse_since(loop, start);
}

/* ------------------------------------------------------------------ */
/* Signals and children                                                */
/* ------------------------------------------------------------------ */

/*
 * Several loops may watch one signal.  The handler is async-signal-safe: it
 * marks the signal pending in every registered loop and wakes it through its
 * eventfd.  Loops register in fixed slots; a loop leaving waits until no
 * handler is running, so a handler never touches a freed loop.
 */
#define SIG_SLOTS 16
static _Atomic(tl_loop *) sig_loops[NSIG][SIG_SLOTS];
static atomic_int sig_handlers_running;
static int sig_installed[NSIG];
static struct sigaction sig_old[NSIG];
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;

static void sig_handler(int signum) {
  int saved = errno;
  atomic_fetch_add(&sig_handlers_running, 1);
  for (int i = 0; i < SIG_SLOTS; i++) {
    tl_loop *loop = atomic_load(&sig_loops[signum][i]);
    if (loop) {
      atomic_store(&loop->sigpending[signum], 1);
      tl__base_wake(&loop->base);
    }
  }
  atomic_fetch_sub(&sig_handlers_running, 1);
  errno = saved;
}

static int sig_register(tl_loop *loop, int signum) {
  int r = -EAGAIN;
  pthread_mutex_lock(&sig_lock);
  for (int i = 0; i < SIG_SLOTS; i++) {
    tl_loop *expect = NULL;
    if (atomic_compare_exchange_strong(&sig_loops[signum][i], &expect, loop)) {
      r = 0;
      break;
    }
  }
  if (r == 0 && !sig_installed[signum]) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sig_handler;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(signum, &sa, &sig_old[signum]) < 0) {
      r = -errno;
      for (int i = 0; i < SIG_SLOTS; i++) {
        tl_loop *expect = loop;
        atomic_compare_exchange_strong(&sig_loops[signum][i], &expect, NULL);
      }
    } else {
      sig_installed[signum] = 1;
      /* A handler installed while the signal is blocked in this thread
       * still runs on another thread or when unblocked. */
    }
  }
  pthread_mutex_unlock(&sig_lock);
  return r;
}

static void sig_unregister(tl_loop *loop, int signum) {
  pthread_mutex_lock(&sig_lock);
  int left = 0;
  for (int i = 0; i < SIG_SLOTS; i++) {
    tl_loop *expect = loop;
    atomic_compare_exchange_strong(&sig_loops[signum][i], &expect, NULL);
    if (atomic_load(&sig_loops[signum][i]))
      left = 1;
  }
  if (!left && sig_installed[signum]) {
    sigaction(signum, &sig_old[signum], NULL);
    sig_installed[signum] = 0;
  }
  pthread_mutex_unlock(&sig_lock);
  while (atomic_load(&sig_handlers_running))
    sched_yield();
}

static int sig_ref(tl_loop *loop, int signum) {
  if (loop->sigrefs[signum]++ == 0) {
    int r = sig_register(loop, signum);
    if (r < 0) {
      loop->sigrefs[signum] = 0;
      return r;
    }
    loop->nsigs++;
  }
  return 0;
}

static void sig_unref(tl_loop *loop, int signum) {
  if (--loop->sigrefs[signum] == 0) {
    loop->nsigs--;
    sig_unregister(loop, signum);
  }
}

void tl_signal_init(tl_signal *w, tl_signal_cb cb, int signum) {
  init_common((tl_watcher *)w, (void *)cb);
  w->signum = signum;
  w->tl__next = NULL;
}

int tl_signal_start(tl_loop *loop, tl_signal *w) {
  if (w->active)
    return -EBUSY;
  if (w->signum <= 0 || w->signum >= NSIG || w->signum == SIGKILL || w->signum == SIGSTOP)
    return -EINVAL;
  int r = sig_ref(loop, w->signum);
  if (r < 0)
    return r;
  w->tl__next = loop->sigw[w->signum];
  loop->sigw[w->signum] = w;
  start_common(loop, (tl_watcher *)w, 1);
  return 0;
}

int tl_signal_stop(tl_loop *loop, tl_signal *w) {
  int pending = clear_pending(loop, (tl_watcher *)w) != 0;
  if (!w->active)
    return pending ? 0 : -EALREADY;
  tl_signal **pp = &loop->sigw[w->signum];
  while (*pp != w)
    pp = &(*pp)->tl__next;
  *pp = w->tl__next;
  stop_common(loop, (tl_watcher *)w);
  sig_unref(loop, w->signum);
  return 0;
}

void tl_child_init(tl_child *w, tl_child_cb cb, int pid) {
  init_common((tl_watcher *)w, (void *)cb);
  w->pid = pid;
  w->rpid = w->rstatus = 0;
  w->tl__next = NULL;
}

int tl_child_start(tl_loop *loop, tl_child *w) {
  if (w->active)
    return -EBUSY;
  if (w->pid < 0)
    return -EINVAL;
  if (!loop->children) {
    int r = sig_ref(loop, SIGCHLD);
    if (r < 0)
      return r;
  }
  w->tl__next = loop->children;
  loop->children = w;
  start_common(loop, (tl_watcher *)w, 1);
  /* The child may have exited before we watched: look once anyway. */
  atomic_store(&loop->sigpending[SIGCHLD], 1);
  tl__base_wake(&loop->base);
  return 0;
}

int tl_child_stop(tl_loop *loop, tl_child *w) {
  int pending = clear_pending(loop, (tl_watcher *)w) != 0;
  if (!w->active)
    return pending ? 0 : -EALREADY;
  tl_child **pp = &loop->children;
  while (*pp != w)
    pp = &(*pp)->tl__next;
  *pp = w->tl__next;
  stop_common(loop, (tl_watcher *)w);
  if (!loop->children)
    sig_unref(loop, SIGCHLD);
  return 0;
}

static void child_feed(tl_loop *loop, int pid, int status) {
  for (tl_child *w = loop->children; w; w = w->tl__next)
    if (w->pid == pid || w->pid == 0) {
      w->rpid = pid;
      w->rstatus = status;
      feed(loop, (tl_watcher *)w, TL_CHILD);
    }
}

/* Reaps only the pids watched here (waitpid(-1) only when a watcher asked for
 * any child), so children of other loops or of system() are left alone. */
static void children_reap(tl_loop *loop) {
  int any = 0, status;
  for (tl_child *w = loop->children; w; w = w->tl__next) {
    if (w->pid == 0) {
      any = 1;
      continue;
    }
    if (w->pending)
      continue;
    int pid = waitpid(w->pid, &status, WNOHANG);
    if (pid > 0)
      child_feed(loop, pid, status);
  }
  if (any) {
    int pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
      child_feed(loop, pid, status);
  }
}

/* ------------------------------------------------------------------ */
/* async, idle, prepare, check                                         */
/* ------------------------------------------------------------------ */

void tl_async_init(tl_async *w, tl_async_cb cb) {
  init_common((tl_watcher *)w, (void *)cb);
  w->tl__sent = 0;
}

int tl_async_start(tl_loop *loop, tl_async *w) {
  w->tl__sent = 0;
  return wvec_add(loop, &loop->asyncs, (tl_watcher *)w);
}

int tl_async_stop(tl_loop *loop, tl_async *w) {
  return wvec_del(loop, &loop->asyncs, (tl_watcher *)w);
}

int tl_async_send(tl_loop *loop, tl_async *w) {
  if (!loop || !w)
    return -EINVAL;
  /* Coalesce: only the first send after the callback wakes the loop. */
  if (__atomic_exchange_n(&w->tl__sent, 1, __ATOMIC_ACQ_REL) == 0)
    tl__base_wake(&loop->base);
  return 0;
}

int tl_async_pending(const tl_async *w) {
  return __atomic_load_n(&w->tl__sent, __ATOMIC_ACQUIRE);
}

static void on_wake(struct tl__base *b) {
  tl_loop *loop = b->owner;
  for (int i = 0; i < loop->asyncs.n; i++) {
    tl_async *w = (tl_async *)loop->asyncs.v[i];
    if (__atomic_exchange_n(&w->tl__sent, 0, __ATOMIC_ACQ_REL))
      feed(loop, (tl_watcher *)w, TL_ASYNC);
  }
  for (int s = 1; loop->nsigs && s < NSIG; s++) {
    if (!loop->sigrefs[s] || !atomic_exchange(&loop->sigpending[s], 0))
      continue;
    for (tl_signal *w = loop->sigw[s]; w; w = w->tl__next)
      feed(loop, (tl_watcher *)w, TL_SIGNAL);
    if (s == SIGCHLD && loop->children)
      children_reap(loop);
  }
}

#define SIMPLE_WATCHER(kind, vec, T)                                       \
  void tl_##kind##_init(tl_##kind *w, tl_##kind##_cb cb) {                 \
    init_common((tl_watcher *)w, (void *)cb);                              \
  }                                                                        \
  int tl_##kind##_start(tl_loop *loop, tl_##kind *w) {                     \
    return wvec_add(loop, &loop->vec, (tl_watcher *)w);                    \
  }                                                                        \
  int tl_##kind##_stop(tl_loop *loop, tl_##kind *w) {                      \
    return wvec_del(loop, &loop->vec, (tl_watcher *)w);                    \
  }

SIMPLE_WATCHER(idle, idles, TL_IDLE)
SIMPLE_WATCHER(prepare, prepares, TL_PREPARE)
SIMPLE_WATCHER(check, checks, TL_CHECK)

/* ------------------------------------------------------------------ */
/* Completion ops                                                      */
/* ------------------------------------------------------------------ */

static void op_unlink(tl_loop *loop, tl_op *op) {
  if (op->tl__prev)
    op->tl__prev->tl__next = op->tl__next;
  else
    loop->ops = op->tl__next;
  if (op->tl__next)
    op->tl__next->tl__prev = op->tl__prev;
  op->tl__next = op->tl__prev = NULL;
  loop->nops--;
  loop->activecnt--;
}

static int is_rw(int type) {
  return type == TL_OP_READ || type == TL_OP_WRITE || type == TL_OP_READ_FIXED ||
         type == TL_OP_WRITE_FIXED;
}

/* Ops whose fd is a directory their path is resolved against (AT_FDCWD
 * allowed), not a file they work on: closing or cancelling that fd does
 * not concern them. */
static int is_dirfd_op(int type) {
  return type == TL_OP_OPENAT || type == TL_OP_STATX || type == TL_OP_UNLINKAT ||
         type == TL_OP_MKDIRAT || type == TL_OP_RENAMEAT;
}

static int op_validate(const tl_op *op) {
  if (op->type <= TL_OP_NONE || op->type >= TL_OP__COUNT || !op->cb)
    return -EINVAL;
  if (op->fd < 0 && !(is_dirfd_op(op->type) && op->fd == AT_FDCWD) &&
      op->type != TL_OP_WORK)
    return -EBADF;
  switch (op->type) {
  case TL_OP_STATX:
    if (!op->u.statx.path || !op->u.statx.buf)
      return -EINVAL;
    break;
  case TL_OP_UNLINKAT: case TL_OP_MKDIRAT:
    if (!op->u.path.path)
      return -EINVAL;
    break;
  case TL_OP_RENAMEAT:
    if (!op->u.rename.oldpath || !op->u.rename.newpath)
      return -EINVAL;
    if (op->u.rename.newdirfd < 0 && op->u.rename.newdirfd != AT_FDCWD)
      return -EBADF;
    break;
  case TL_OP_SENDMSG: case TL_OP_RECVMSG:
    if (!op->u.msghdr.msg)
      return -EINVAL;
    break;
  case TL_OP_SPLICE:
    if (op->u.splice.fd_out < 0)
      return -EBADF;
    if (op->u.splice.off_in < -1 || op->u.splice.off_out < -1 || op->u.splice.len > SSIZE_MAX)
      return -EINVAL;
    break;
  case TL_OP_WORK:
    if (!op->u.work.fn)
      return -EINVAL;
    break;
  case TL_OP_READ: case TL_OP_WRITE: case TL_OP_READ_FIXED: case TL_OP_WRITE_FIXED:
    if (!op->u.rw.buf && op->u.rw.len)
      return -EINVAL;
    if (op->u.rw.len > SSIZE_MAX || op->u.rw.off < -1)
      return -EINVAL;
    break;
  case TL_OP_RECV: case TL_OP_SEND: case TL_OP_SEND_ZC:
    if ((!op->u.msg.buf && op->u.msg.len) || op->u.msg.len > SSIZE_MAX)
      return -EINVAL;
    break;
  case TL_OP_READV: case TL_OP_WRITEV:
    if (op->u.rwv.iovcnt < 0 || op->u.rwv.iovcnt > IOV_MAX ||
        (!op->u.rwv.iov && op->u.rwv.iovcnt) || op->u.rwv.off < -1)
      return -EINVAL;
    break;
  case TL_OP_OPENAT:
    if (!op->u.open.path)
      return -EINVAL;
    break;
  case TL_OP_CONNECT:
    if (!op->u.connect.addr)
      return -EINVAL;
    break;
  case TL_OP_ACCEPT:
    if (op->u.accept.addr && !op->u.accept.addrlen)
      return -EINVAL;
    break;
  }
  return 0;
}

static void op_link(tl_loop *loop, tl_op *op, unsigned state) {
  op->tl__state = state;
  op->tl__loop = loop;
  op->tl__res = 0;
  op->tl__qnext = NULL;
  op->tl__prev = NULL;
  op->tl__next = loop->ops;
  if (loop->ops)
    loop->ops->tl__prev = op;
  loop->ops = op;
  loop->nops++;
  loop->activecnt++;
}

/* Does another op on close's fd still wait for its completion? */
static int fd_busy(const tl_loop *loop, const tl_op *close) {
  for (const tl_op *op = loop->ops; op; op = op->tl__next)
    if (op != close && op->fd == close->fd && !is_dirfd_op(op->type) &&
        OP_STATE(op) == OP_INFLIGHT)
      return 1;
  return 0;
}

/* Submits the deferred closes whose fds have gone quiet. */
static void flush_closes(tl_loop *loop) {
  tl_op **pp = &loop->closes;
  while (*pp) {
    tl_op *op = *pp;
    if (fd_busy(loop, op)) {
      pp = &op->tl__qnext;
      continue;
    }
    *pp = op->tl__qnext;
    op->tl__qnext = NULL;
    op->tl__state = OP_INFLIGHT | (op->tl__state & (OP_CANCEL_REQ | OP_TIMEDOUT));
    int r = loop->base.be->submit(&loop->base, op);
    if (r < 0)
      on_op(&loop->base, op, r);
  }
}

static int op_submit(tl_loop *loop, tl_op *op);
static void limit_arm(tl_loop *loop, tl_op *op);
/* Ops that use registered buffers or files hold them: unregistering
 * waits (-EBUSY) until they are called back.  dir 1 at submit, -1 when
 * the op completes or its submit fails. */
static void fixed_count(tl_loop *loop, tl_op *op, int dir) {
  struct tl__fixed *f = &loop->base.fixed;
  if (dir > 0) {
    if (op->type == TL_OP_READ_FIXED || op->type == TL_OP_WRITE_FIXED) {
      op->tl__state |= OP_FIXBUF;
      f->bufs_busy++;
    }
    if (f->nfiles && tl__op_uses_fixed_file(op->type) && tl__fixed_file(f, op->fd) >= 0) {
      op->tl__state |= OP_FIXFILE;
      f->files_busy++;
    }
    return;
  }
  if (op->tl__state & OP_FIXBUF)
    f->bufs_busy--;
  if (op->tl__state & OP_FIXFILE)
    f->files_busy--;
  op->tl__state &= ~(OP_FIXBUF | OP_FIXFILE);
}

static tl_tstamp limit_rel(const tl_loop *loop, const tl_op *op);

/* A backend that can time the op out itself (uring: a linked timeout) is
 * offered the limit through the base and says whether it took it; if not,
 * the loop's timer heap and a cancel do it. */
int tl_op_submit(tl_loop *loop, tl_op *op) {
  int limited = loop && op && op->tl__limit > 0;
  if (limited) {
    loop->base.op_limit = limit_rel(loop, op);
    loop->base.op_limit_taken = 0;
  }
  int r = op_submit(loop, op);
  if (limited) {
    loop->base.op_limit = -1;
    if (r == 0 && !loop->base.op_limit_taken)
      limit_arm(loop, op);
  }
  return r;
}

static int op_submit(tl_loop *loop, tl_op *op) {
  if (!loop || !op)
    return -EINVAL;
  if (loop->destroying)
    return -ESHUTDOWN;
  if (tl_op_in_flight(op))
    return -EBUSY;
  int r = op_validate(op);
  if (r == 0 && (op->type == TL_OP_READ_FIXED || op->type == TL_OP_WRITE_FIXED))
    r = tl__fixed_check(&loop->base.fixed, op);
  if (r < 0)
    return r;
  /* The kernel caps one read or write at MAX_RW_COUNT anyway (a short
   * count, as read(2) documents); clamping keeps io_uring's 32-bit length
   * from wrapping. */
  if (is_rw(op->type) && op->u.rw.len > MAX_RW)
    op->u.rw.len = MAX_RW;
  if ((op->type == TL_OP_RECV || op->type == TL_OP_SEND || op->type == TL_OP_SEND_ZC) &&
      op->u.msg.len > MAX_RW)
    op->u.msg.len = MAX_RW;
  if (op->type == TL_OP_SPLICE && op->u.splice.len > MAX_RW)
    op->u.splice.len = MAX_RW;

  op_link(loop, op, OP_INFLIGHT);
  if (op->type == TL_OP_RECV_MULTISHOT) {
    r = ms_arm(loop, op);
    if (r < 0) {
      op_unlink(loop, op);
      op->tl__state = 0;
      op->tl__loop = NULL;
      return r;
    }
    loop->ops_submitted++;
    return 0;
  }
  if (op->type == TL_OP_WORK) {
    r = work_submit(loop, op);
    if (r < 0) {
      op_unlink(loop, op);
      op->tl__state = 0;
      op->tl__loop = NULL;
      return r;
    }
    loop->ops_submitted++;
    return 0;
  }
  if (op->type == TL_OP_CLOSE && fd_busy(loop, op)) {
    /* tl_close's promise: the fd's other ops are called back first.  On
     * io_uring their cancellation is asynchronous, so the close waits. */
    op->tl__state = OP_DEFERRED;
    op->tl__qnext = loop->closes;
    loop->closes = op;
    loop->ops_submitted++;
    return 0;
  }
  fixed_count(loop, op, 1);
  r = loop->base.be->submit(&loop->base, op);
  if (r < 0) {
    fixed_count(loop, op, -1);
    op_unlink(loop, op);
    op->tl__state = 0;
    op->tl__loop = NULL;
    return r;
  }
  loop->ops_submitted++;
  return 0;
}

static void on_op(struct tl__base *b, tl_op *op, int64_t res) {
  tl_loop *loop = b->owner;
  limit_disarm(loop, op);
  if ((op->tl__state & OP_TIMEDOUT) && res == -ECANCELED)
    res = -ETIMEDOUT;
  fixed_count(loop, op, -1);
  op->tl__res = res;
  op->tl__state = OP_DONE | (op->tl__state & OP_FLAGS);
  op->tl__qnext = NULL;
  /* An emulated multishot's readiness watcher ends with the op. */
  if ((op->tl__state & OP_MS) && !op->u.ms.ring->native)
    tl_io_stop(loop, &op->tl__io);
  if (loop->done_tail)
    loop->done_tail->tl__qnext = op;
  else
    loop->done_head = op;
  loop->done_tail = op;
  loop->ops_completed++;
}

/* Delivers the queued multishot messages. */
static void ms_deliver(tl_loop *loop) {
  tl_bufring *r = loop->mq_head;
  uint32_t bid = loop->mq_hbid;
  loop->mq_head = loop->mq_tail = NULL;
  while (r) {
    struct tl__msrec *rec = &r->rec[bid];
    tl_bufring *nr = rec->nring;
    uint32_t nbid = rec->nbid;
    tl_op *mop = rec->op;
    mop->u.ms.bid = bid;
    mop->cb(loop, mop, rec->len);
    r = nr;
    bid = nbid;
  }
}

/* Runs the callbacks of finished ops, oldest first, up to budget of them.
 * Ops that finish while these callbacks run (a resubmitted recv or send
 * that completes at once) are called back in the same call while the
 * budget lasts: no empty wait just to report them. */
static int invoke_done_ops(tl_loop *loop, int budget) {
  /* Messages of multishot ops first: a final callback always comes after
   * every message of its op that arrived before it. */
  ms_deliver(loop);
  int n = 0;
  while (loop->done_head && n < budget) {
    tl_op *op = loop->done_head;
    loop->done_head = op->tl__qnext;
    if (!loop->done_head)
      loop->done_tail = NULL;
    op_unlink(loop, op);
    if (op->tl__state & OP_MS)
      op->u.ms.ring->users--;
    op->tl__state = 0;
    op->tl__qnext = NULL;
    op->cb(loop, op, op->tl__res);
    n++;
  }
  return n;
}

int tl_op_cancel(tl_loop *loop, tl_op *op) {
  if (!loop || !op || op->tl__loop != loop || !tl_op_in_flight(op))
    return -ENOENT;
  if (op->tl__state & OP_CANCEL_REQ)
    return -EALREADY;
  if (OP_STATE(op) == OP_DEFERRED) {
    tl_op **pp = &loop->closes;
    while (*pp != op)
      pp = &(*pp)->tl__qnext;
    *pp = op->tl__qnext;
    on_op(&loop->base, op, -ECANCELED);
    return 0;
  }
  op->tl__state |= OP_CANCEL_REQ;
  if (OP_STATE(op) == OP_INFLIGHT && op->type == TL_OP_WORK) {
    work_cancel(loop, op);
  } else if (OP_STATE(op) == OP_INFLIGHT && (op->tl__state & OP_MS) && !op->u.ms.ring->native) {
    ms_cancel(loop, op);
  } else if (OP_STATE(op) == OP_INFLIGHT) {
    int r = loop->base.be->cancel(&loop->base, op);
    if (r < 0) {
      /* Could not ask: the op finishes on its own, uncancelled. */
      op->tl__state &= ~OP_CANCEL_REQ;
      return r;
    }
  }
  return 0;
}

int tl_cancel_fd(tl_loop *loop, int fd) {
  if (!loop || fd < 0)
    return -EBADF;
  int n = 0;
  for (tl_op *op = loop->ops; op; op = op->tl__next)
    if (op->fd == fd && !is_dirfd_op(op->type) && op->type != TL_OP_CLOSE &&
        OP_STATE(op) == OP_INFLIGHT && !(op->tl__state & OP_CANCEL_REQ))
      if (tl_op_cancel(loop, op) == 0)
        n++;
  /* The fd is about to be closed: the backend forgets what it keeps for it
   * (see modify in src/base.h), so a reused fd number starts clean. */
  tl__fixed_forget_fd(&loop->base, fd);
  if (fd >= loop->nfds || (!loop->fds[fd].head && !loop->fds[fd].registered))
    loop->base.be->modify(&loop->base, fd, 0, 0);
  return n;
}

int tl_op_in_flight(const tl_op *op) {
  unsigned st = OP_STATE(op);
  return op->tl__loop && (st == OP_INFLIGHT || st == OP_DONE || st == OP_DEFERRED);
}

/* ---- deadlines ---------------------------------------------------- */

/* tl__limit_abs bits. */
#define LIMIT_ABS 1
#define LIMIT_ARMED 2

static int limit_set(tl_op *op, tl_tstamp t, int abs) {
  if (!op)
    return -EINVAL;
  if (tl_op_in_flight(op))
    return -EBUSY;
  if (isnan(t) || isinf(t) || t < 0)
    return -EINVAL;
  op->tl__limit = t;
  op->tl__limit_abs = abs ? LIMIT_ABS : 0;
  return 0;
}

int tl_op_set_timeout(tl_op *op, tl_tstamp after) { return limit_set(op, after, 0); }
int tl_op_set_deadline(tl_op *op, tl_tstamp at) { return limit_set(op, at, 1); }

/* The limit has passed: ask the cancel, unless the op has finished (its
 * real result stands) or the caller already asked one. */
static void limit_cb(tl_loop *loop, tl_timer *t, unsigned revents) {
  (void)revents;
  tl_op *op = (tl_op *)((char *)t - offsetof(tl_op, tl__limit_timer));
  op->tl__limit_abs &= ~LIMIT_ARMED;
  loop->activecnt++;   /* the timer's own count was given back at arming */
  unsigned st = OP_STATE(op);
  if ((st != OP_INFLIGHT && st != OP_DEFERRED) || (op->tl__state & OP_CANCEL_REQ))
    return;
  op->tl__state |= OP_TIMEDOUT;
  if (tl_op_cancel(loop, op) < 0)
    op->tl__state &= ~OP_TIMEDOUT;
}

/* The timer does not keep the loop alive: the op in flight already does. */
static tl_tstamp limit_rel(const tl_loop *loop, const tl_op *op) {
  tl_tstamp after = op->tl__limit;
  if (op->tl__limit_abs & LIMIT_ABS)
    after = after > loop->now ? after - loop->now : 0;
  return after;
}

static void limit_arm(tl_loop *loop, tl_op *op) {
  unsigned st = OP_STATE(op);
  if (st != OP_INFLIGHT && st != OP_DEFERRED)
    return;   /* completed during the submit */
  tl_tstamp after = limit_rel(loop, op);
  tl_timer_init(&op->tl__limit_timer, limit_cb, after, 0);
  if (tl_timer_start(loop, &op->tl__limit_timer) < 0)
    return;   /* no memory for the heap: the op runs without its limit */
  loop->activecnt--;
  op->tl__limit_abs |= LIMIT_ARMED;
}

static void limit_disarm(tl_loop *loop, tl_op *op) {
  if (!(op->tl__limit_abs & LIMIT_ARMED))
    return;
  op->tl__limit_abs &= ~LIMIT_ARMED;
  loop->activecnt++;
  tl_timer_stop(loop, &op->tl__limit_timer);   /* also drops a pending fire */
}

/* ---- work on the pool ---------------------------------------------- */

static void work_run(struct tl__job *job) {
  tl_op *op = (tl_op *)((char *)job - offsetof(tl_op, tl__job));
  job->res = op->u.work.fn(op);
}

static void work_done(struct tl__job *job) {
  tl_op *op = (tl_op *)((char *)job - offsetof(tl_op, tl__job));
  tl__base_op_done(job->base, op, job->res);
}

static int work_submit(tl_loop *loop, tl_op *op) {
  struct tl__job *j = &op->tl__job;
  memset(j, 0, sizeof *j);
  j->work = work_run;
  j->done = work_done;
  j->base = &loop->base;
  return tl__pool_submit(j);
}

/* A queued job is taken back and completes now; a running one reports
 * what fn returns. */
static int work_cancel(tl_loop *loop, tl_op *op) {
  if (tl__pool_cancel(&op->tl__job) == 1)
    on_op(&loop->base, op, -ECANCELED);
  return 0;
}

int tl_work(tl_loop *loop, tl_op *op, tl_work_fn fn, tl_op_cb cb) {
  if (!op)
    return -EINVAL;
  if (tl_op_in_flight(op))
    return -EBUSY;
  op->type = TL_OP_WORK;
  op->fd = -1;
  op->cb = cb;
  op->u.work.fn = fn;
  return tl_op_submit(loop, op);
}

static int prep(tl_loop *loop, tl_op *op, int type, int fd, tl_op_cb cb) {
  if (!op)
    return -EINVAL;
  if (tl_op_in_flight(op))
    return -EBUSY;
  op->type = type;
  op->fd = fd;
  op->cb = cb;
  return 0;
}

#define PREP(type)                        \
  do {                                    \
    int r_ = prep(loop, op, type, fd, cb); \
    if (r_ < 0)                           \
      return r_;                          \
  } while (0)

int tl_read(tl_loop *loop, tl_op *op, int fd, void *buf, size_t len, int64_t off, tl_op_cb cb) {
  PREP(TL_OP_READ);
  op->u.rw.buf = buf; op->u.rw.len = len; op->u.rw.off = off;
  return tl_op_submit(loop, op);
}

int tl_write(tl_loop *loop, tl_op *op, int fd, const void *buf, size_t len, int64_t off, tl_op_cb cb) {
  PREP(TL_OP_WRITE);
  op->u.rw.buf = (void *)buf; op->u.rw.len = len; op->u.rw.off = off;
  return tl_op_submit(loop, op);
}

int tl_readv(tl_loop *loop, tl_op *op, int fd, const struct iovec *iov, int iovcnt, int64_t off, tl_op_cb cb) {
  PREP(TL_OP_READV);
  op->u.rwv.iov = iov; op->u.rwv.iovcnt = iovcnt; op->u.rwv.off = off;
  return tl_op_submit(loop, op);
}

int tl_writev(tl_loop *loop, tl_op *op, int fd, const struct iovec *iov, int iovcnt, int64_t off, tl_op_cb cb) {
  PREP(TL_OP_WRITEV);
  op->u.rwv.iov = iov; op->u.rwv.iovcnt = iovcnt; op->u.rwv.off = off;
  return tl_op_submit(loop, op);
}

int tl_fsync(tl_loop *loop, tl_op *op, int fd, tl_op_cb cb) {
  PREP(TL_OP_FSYNC);
  return tl_op_submit(loop, op);
}

int tl_fdatasync(tl_loop *loop, tl_op *op, int fd, tl_op_cb cb) {
  PREP(TL_OP_FDATASYNC);
  return tl_op_submit(loop, op);
}

int tl_openat(tl_loop *loop, tl_op *op, int fd, const char *path, int flags, mode_t mode, tl_op_cb cb) {
  PREP(TL_OP_OPENAT);
  op->u.open.path = path; op->u.open.flags = flags; op->u.open.mode = mode;
  return tl_op_submit(loop, op);
}

int tl_close(tl_loop *loop, tl_op *op, int fd, tl_op_cb cb) {
  PREP(TL_OP_CLOSE);
  if (!loop || loop->destroying)
    return loop ? -ESHUTDOWN : -EINVAL;
  if (fd >= 0)
    tl_cancel_fd(loop, fd);
  return tl_op_submit(loop, op);
}

int tl_accept(tl_loop *loop, tl_op *op, int fd, struct sockaddr *addr, socklen_t *addrlen, int flags, tl_op_cb cb) {
  PREP(TL_OP_ACCEPT);
  op->u.accept.addr = addr; op->u.accept.addrlen = addrlen; op->u.accept.flags = flags;
  return tl_op_submit(loop, op);
}

int tl_connect(tl_loop *loop, tl_op *op, int fd, const struct sockaddr *addr, socklen_t addrlen, tl_op_cb cb) {
  PREP(TL_OP_CONNECT);
  op->u.connect.addr = addr; op->u.connect.addrlen = addrlen;
  return tl_op_submit(loop, op);
}

int tl_recv(tl_loop *loop, tl_op *op, int fd, void *buf, size_t len, int flags, tl_op_cb cb) {
  PREP(TL_OP_RECV);
  op->u.msg.buf = buf; op->u.msg.len = len; op->u.msg.flags = flags;
  return tl_op_submit(loop, op);
}

int tl_send(tl_loop *loop, tl_op *op, int fd, const void *buf, size_t len, int flags, tl_op_cb cb) {
  PREP(TL_OP_SEND);
  op->u.msg.buf = (void *)buf; op->u.msg.len = len; op->u.msg.flags = flags;
  return tl_op_submit(loop, op);
}

int tl_shutdown(tl_loop *loop, tl_op *op, int fd, int how, tl_op_cb cb) {
  PREP(TL_OP_SHUTDOWN);
  op->u.shut.how = how;
  return tl_op_submit(loop, op);
}

int tl_sendmsg(tl_loop *loop, tl_op *op, int fd, const struct msghdr *msg, int flags, tl_op_cb cb) {
  PREP(TL_OP_SENDMSG);
  op->u.msghdr.msg = (struct msghdr *)msg; op->u.msghdr.flags = flags;
  return tl_op_submit(loop, op);
}

int tl_recvmsg(tl_loop *loop, tl_op *op, int fd, struct msghdr *msg, int flags, tl_op_cb cb) {
  PREP(TL_OP_RECVMSG);
  op->u.msghdr.msg = msg; op->u.msghdr.flags = flags;
  return tl_op_submit(loop, op);
}

int tl_send_zc(tl_loop *loop, tl_op *op, int fd, const void *buf, size_t len, int flags, tl_op_cb cb) {
  PREP(TL_OP_SEND_ZC);
  op->u.msg.buf = (void *)buf; op->u.msg.len = len; op->u.msg.flags = flags;
  return tl_op_submit(loop, op);
}

int tl_statx(tl_loop *loop, tl_op *op, int fd, const char *path, int flags, unsigned mask,
             struct statx *buf, tl_op_cb cb) {
  PREP(TL_OP_STATX);
  op->u.statx.path = path; op->u.statx.flags = flags; op->u.statx.mask = mask;
  op->u.statx.buf = buf;
  return tl_op_submit(loop, op);
}

int tl_ftruncate(tl_loop *loop, tl_op *op, int fd, int64_t len, tl_op_cb cb) {
  PREP(TL_OP_FTRUNCATE);
  op->u.trunc.len = len;
  return tl_op_submit(loop, op);
}

int tl_fallocate(tl_loop *loop, tl_op *op, int fd, int mode, int64_t off, int64_t len, tl_op_cb cb) {
  PREP(TL_OP_FALLOCATE);
  op->u.falloc.mode = mode; op->u.falloc.off = off; op->u.falloc.len = len;
  return tl_op_submit(loop, op);
}

int tl_unlinkat(tl_loop *loop, tl_op *op, int fd, const char *path, int flags, tl_op_cb cb) {
  PREP(TL_OP_UNLINKAT);
  op->u.path.path = path; op->u.path.flags = flags; op->u.path.mode = 0;
  return tl_op_submit(loop, op);
}

int tl_mkdirat(tl_loop *loop, tl_op *op, int fd, const char *path, mode_t mode, tl_op_cb cb) {
  PREP(TL_OP_MKDIRAT);
  op->u.path.path = path; op->u.path.flags = 0; op->u.path.mode = mode;
  return tl_op_submit(loop, op);
}

int tl_renameat(tl_loop *loop, tl_op *op, int fd, const char *oldpath, int newdirfd,
                const char *newpath, unsigned flags, tl_op_cb cb) {
  PREP(TL_OP_RENAMEAT);
  op->u.rename.oldpath = oldpath; op->u.rename.newpath = newpath;
  op->u.rename.newdirfd = newdirfd; op->u.rename.flags = flags;
  return tl_op_submit(loop, op);
}

int tl_splice(tl_loop *loop, tl_op *op, int fd, int64_t off_in, int fd_out, int64_t off_out,
              size_t len, unsigned flags, tl_op_cb cb) {
  PREP(TL_OP_SPLICE);
  op->u.splice.fd_out = fd_out; op->u.splice.flags = flags;
  op->u.splice.off_in = off_in; op->u.splice.off_out = off_out; op->u.splice.len = len;
  return tl_op_submit(loop, op);
}

/* ------------------------------------------------------------------ */
/* Registered buffers and files (src/fixed.c)                          */
/* ------------------------------------------------------------------ */

int tl_read_fixed(tl_loop *loop, tl_op *op, int fd, void *buf, size_t len, int64_t off,
                  unsigned buf_index, tl_op_cb cb) {
  PREP(TL_OP_READ_FIXED);
  op->u.rw.buf = buf; op->u.rw.len = len; op->u.rw.off = off;
  op->u.rw.buf_index = buf_index;
  return tl_op_submit(loop, op);
}

int tl_write_fixed(tl_loop *loop, tl_op *op, int fd, const void *buf, size_t len,
                   int64_t off, unsigned buf_index, tl_op_cb cb) {
  PREP(TL_OP_WRITE_FIXED);
  op->u.rw.buf = (void *)buf; op->u.rw.len = len; op->u.rw.off = off;
  op->u.rw.buf_index = buf_index;
  return tl_op_submit(loop, op);
}

#define FIXED_CALL(call)                    \
  do {                                      \
    if (!loop)                              \
      return -EINVAL;                       \
    if (loop->destroying)                   \
      return -ESHUTDOWN;                    \
    return call;                            \
  } while (0)

int tl_register_buffers(tl_loop *loop, const struct iovec *iov, unsigned n) {
  FIXED_CALL(tl__fixed_register_buffers(&loop->base, iov, n));
}

int tl_unregister_buffers(tl_loop *loop) {
  FIXED_CALL(tl__fixed_unregister_buffers(&loop->base));
}

int tl_register_files(tl_loop *loop, const int *fds, unsigned n) {
  FIXED_CALL(tl__fixed_register_files(&loop->base, fds, n));
}

int tl_update_files(tl_loop *loop, unsigned off, const int *fds, unsigned n) {
  FIXED_CALL(tl__fixed_update_files(&loop->base, off, fds, n));
}

int tl_unregister_files(tl_loop *loop) {
  FIXED_CALL(tl__fixed_unregister_files(&loop->base));
}

/* ------------------------------------------------------------------ */
/* Multishot receive and provided-buffer rings                         */
/* ------------------------------------------------------------------ */

/* Queues a message for its callback.  The buffer is the caller's from now:
 * neither the kernel nor the emulation can hand it out again until it is
 * recycled, so its record cannot be overwritten while queued. */
static void ms_push(tl_loop *loop, tl_op *op, tl_bufring *r, unsigned bid, int64_t res) {
  struct tl__msrec *rec = &r->rec[bid];
  r->user[bid] = 1;
  r->avail--;
  rec->op = op;
  rec->len = (int32_t)res;
  rec->nring = NULL;
  rec->nbid = 0;
  if (loop->mq_tail) {
    loop->mq_tail->rec[loop->mq_tbid].nring = r;
    loop->mq_tail->rec[loop->mq_tbid].nbid = bid;
  } else {
    loop->mq_head = r;
    loop->mq_hbid = bid;
  }
  loop->mq_tail = r;
  loop->mq_tbid = bid;
}

static void on_more(struct tl__base *b, tl_op *op, int64_t res, unsigned bid) {
  tl_bufring *r = op->u.ms.ring;
  /* A bid we did not give the kernel would be a backend bug; dropping it
   * beats handing the caller a buffer twice. */
  if (bid >= r->nbufs || r->user[bid] || res <= 0)
    return;
  ms_push(b->owner, op, r, bid, res);
}

/* The emulation: readiness, then one nonblocking recv into a free buffer.
 * A buffer is only taken when data is there, as the kernel does. */
static void ms_io_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  tl_op *op = (tl_op *)((char *)w - offsetof(tl_op, tl__io));
  tl_bufring *r = op->u.ms.ring;
  if (revents & TL_ERROR) {
    on_op(&loop->base, op, -EBADF);
    return;
  }
  if (!r->nfree) {
    on_op(&loop->base, op, -ENOBUFS);
    return;
  }
  uint32_t bid = r->freelist[r->nfree - 1];
  ssize_t n = recv(op->fd, r->mem + (size_t)bid * r->bufsize, r->bufsize,
                   op->u.ms.flags | MSG_DONTWAIT);
  loop->base.syscalls++;
  if (n > 0) {
    r->nfree--;
    ms_push(loop, op, r, bid, n);
  } else if (n == 0) {
    on_op(&loop->base, op, 0);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    on_op(&loop->base, op, -errno);
  }
}

/* Ends an emulated multishot at once (it is not in the backend). */
static void ms_cancel(tl_loop *loop, tl_op *op) {
  on_op(&loop->base, op, -ECANCELED);
}

static int ms_arm(tl_loop *loop, tl_op *op) {
  tl_bufring *r = op->u.ms.ring;
  if (!r || r->base != &loop->base)
    return -EINVAL;
  if (!r->avail)
    return -ENOBUFS;
  op->tl__state |= OP_MS;
  if (r->native) {
    int e = loop->base.be->submit(&loop->base, op);
    if (e < 0)
      return e;
  } else {
    tl_io_init(&op->tl__io, ms_io_cb, op->fd, TL_READ);
    int e = tl_io_start(loop, &op->tl__io);
    if (e < 0)
      return e;
  }
  r->users++;
  return 0;
}

int tl_bufring_new(tl_loop *loop, tl_bufring **ringp, unsigned nbufs, size_t bufsize) {
  if (!loop || !ringp)
    return -EINVAL;
  *ringp = NULL;
  if (!nbufs || nbufs > 32768 || (nbufs & (nbufs - 1)) || !bufsize || bufsize > INT32_MAX)
    return -EINVAL;
  if ((size_t)nbufs * bufsize > SIZE_MAX / 2)
    return -EINVAL;
  tl_bufring *r = calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  long pg = sysconf(_SC_PAGESIZE);
  r->memsize = ((size_t)nbufs * bufsize + (size_t)pg - 1) & ~((size_t)pg - 1);
  r->mem = mmap(NULL, r->memsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  r->user = calloc(nbufs, 1);
  r->freelist = malloc(nbufs * sizeof *r->freelist);
  r->rec = calloc(nbufs, sizeof *r->rec);
  if (r->mem == MAP_FAILED || !r->user || !r->freelist || !r->rec) {
    if (r->mem != MAP_FAILED)
      munmap(r->mem, r->memsize);
    free(r->user);
    free(r->freelist);
    free(r->rec);
    free(r);
    return -ENOMEM;
  }
  r->base = &loop->base;
  r->bufsize = bufsize;
  r->nbufs = nbufs;
  r->avail = nbufs;
  /* A stack, bid 0 on top: the emulation reuses the warmest buffer. */
  for (unsigned i = 0; i < nbufs; i++)
    r->freelist[i] = nbufs - 1 - i;
  r->nfree = nbufs;
  const struct tl__backend *be = loop->base.be;
  r->native = be->bufring_setup && be->bufring_setup(&loop->base, r) == 0;
  r->next = loop->rings;
  if (r->next)
    r->next->prev = r;
  loop->rings = r;
  *ringp = r;
  return 0;
}

int tl_bufring_free(tl_loop *loop, tl_bufring *r) {
  if (!loop || !r || r->base != &loop->base)
    return -EINVAL;
  if (r->users)
    return -EBUSY;
  if (r->prev)
    r->prev->next = r->next;
  else
    loop->rings = r->next;
  if (r->next)
    r->next->prev = r->prev;
  if (r->native && loop->base.be->bufring_free)
    loop->base.be->bufring_free(&loop->base, r);
  munmap(r->mem, r->memsize);
  free(r->user);
  free(r->freelist);
  free(r->rec);
  free(r);
  return 0;
}

void *tl_bufring_buf(const tl_bufring *r, unsigned bid) {
  return r && bid < r->nbufs ? r->mem + (size_t)bid * r->bufsize : NULL;
}

size_t tl_bufring_bufsize(const tl_bufring *r) { return r ? r->bufsize : 0; }
int tl_bufring_kernel(const tl_bufring *r) { return r ? r->native : 0; }
unsigned tl_bufring_avail(const tl_bufring *r) { return r ? r->avail : 0; }

int tl_bufring_recycle(tl_bufring *r, unsigned bid) {
  if (!r || bid >= r->nbufs)
    return -EINVAL;
  if (!r->user[bid])
    return -EALREADY;
  r->user[bid] = 0;
  r->avail++;
  if (r->native)
    r->base->be->bufring_recycle(r->base, r, bid);
  else
    r->freelist[r->nfree++] = bid;
  return 0;
}

unsigned tl_op_bufid(const tl_op *op) { return op->u.ms.bid; }

int tl_recv_multishot(tl_loop *loop, tl_op *op, int fd, tl_bufring *ring, int flags, tl_op_cb cb) {
  PREP(TL_OP_RECV_MULTISHOT);
  op->u.ms.buf = NULL;
  op->u.ms.len = 0;
  op->u.ms.flags = flags;
  op->u.ms.bid = 0;
  op->u.ms.ring = ring;
  return tl_op_submit(loop, op);
}

/* ------------------------------------------------------------------ */
/* The run loop                                                        */
/* ------------------------------------------------------------------ */

static int any_pending(const tl_loop *loop) {
  for (int i = 0; i < NPRI; i++)
    if (loop->npend[i])
      return 1;
  return loop->done_head != NULL || loop->mq_head != NULL;
}

/*
 * libev's order: highest priority first and, within a priority, the most
 * recently fed first (so check watchers, fed last, run before the io
 * callbacks of their iteration; timers are fed in reverse so that they run
 * in expiry order).  Entries fed by a callback run in the same call.
 */
/* Op callbacks per iteration, tokio's budget: an op that completes inline
 * is called back in the same iteration, but one connection whose ops
 * always complete at once cannot hold the loop away from the others'
 * readiness and from timers for more than this many callbacks. */
#define OP_BUDGET 128

static void invoke_pending(tl_loop *loop) {
  int ops_done = 0, budget = OP_BUDGET;
  int again;
  do {
    for (int pri = NPRI - 1; pri >= 0; pri--) {
      while (loop->npend[pri]) {
        struct pend p = loop->pend[pri][--loop->npend[pri]];
        if (p.w == &pending_dummy)
          continue;
        p.w->pending = 0;
        p.w->cb(loop, p.w, p.events);
      }
    }
    /* Op callbacks after the watchers, within the iteration's budget. */
    if (!ops_done || (budget > 0 && (loop->done_head || loop->closes))) {
      ops_done = 1;
      budget -= invoke_done_ops(loop, budget);
      if (loop->closes)
        flush_closes(loop);
    }
    again = budget > 0 && loop->done_head;
    for (int pri = 0; pri < NPRI; pri++)
      again |= loop->npend[pri] != 0;
    /* A watcher may have queued multishot messages (the emulation). */
    if (!again && loop->mq_head) {
      ms_deliver(loop);
      for (int pri = 0; pri < NPRI; pri++)
        again |= loop->npend[pri] != 0;
    }
  } while (again);
}

int tl_run(tl_loop *loop, int mode) {
  if (!loop || mode < TL_RUN_DEFAULT || mode > TL_RUN_NOWAIT)
    return -EINVAL;
  if (loop->in_run || loop->destroying)
    return -EBUSY;
  loop->in_run = 1;
  loop->loop_done = 0;
  int err = 0;
  do {
    if (loop->prepares.n) {
      wvec_feed_all(loop, &loop->prepares, TL_PREPARE);
      invoke_pending(loop);
    }
    if (loop->loop_done)
      break;
    fd_reify(loop);

    double timeout = 0;
    if (mode != TL_RUN_NOWAIT && loop->activecnt > 0 && !loop->idles.n && !any_pending(loop)) {
      tl_now_update(loop);
      timeout = MAX_BLOCK;
      if (loop->nheap) {
        double t = loop->heap[0]->at - loop->now;
        timeout = t < 0 ? 0 : t < timeout ? t : timeout;
      }
    }
    loop->base.iterations++;
    int r = loop->base.be->poll(&loop->base, timeout);
    if (r < 0 && r != -EINTR)
      err = r;
    tl_now_update(loop);
    timers_reify(loop);
    if (loop->idles.n && !any_pending(loop))
      wvec_feed_all(loop, &loop->idles, TL_IDLE);
    wvec_feed_all(loop, &loop->checks, TL_CHECK);
    invoke_pending(loop);
    if (err)
      break;
  } while (loop->activecnt > 0 && !loop->loop_done && mode == TL_RUN_DEFAULT);
  loop->in_run = 0;
  loop->loop_done = 0;
  if (err)
    return err;
  return loop->activecnt > 0;
}
