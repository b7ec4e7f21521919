/*
 * The threadpool backend (smol's `blocking` model): no readiness multiplexer
 * over many fds.  Every op and every readiness watcher is a blocking wait on
 * a pool worker; the loop thread only sleeps in poll(2) on its own wake
 * eventfd (with the nearest timer as the timeout) and runs callbacks.
 *
 * Ops.  Files (regular, block devices), fsync, openat and close run as the
 * plain blocking syscall, as TL__POOL_WORK jobs (bounded by
 * TRILOOP_THREADS_MAX).  recv, send, accept and connect, which may wait on
 * their peer forever, are TL__POOL_WAIT jobs like readiness waits: a thread
 * each, outside that bound (smol's model: a thread per blocked call).  Sockets and pipes: the worker tries the call
 * without blocking, and when it would block waits in tl__pool_wait() on the
 * fd plus the worker's eventfd, so a cancel (or a destroy) interrupts a recv
 * or accept that would otherwise block forever.  The user's fd flags: recv
 * and send use MSG_DONTWAIT and leave them alone; accept, connect and
 * read/write on a pipe or socket set O_NONBLOCK on the fd, exactly as the
 * epoll backend does (tl__op_run_nonblocking).
 *
 * Readiness.  One pool job per fd with interest waits for that fd, as a
 * TL__POOL_WAIT job: those do not count against TRILOOP_THREADS_MAX (see
 * src/pool.h).  Each blocks for as long as its fd stays quiet, so with the
 * bound shared, 256 quiet fds (a server's idle connections, 2,000 pipes of
 * which half never get written) would hold every worker: the other fds'
 * readiness would never be seen and no file op would run again.  A wait
 * job costs a thread (small stack) and the worker's eventfd, and there is
 * at most one per watched fd; ops keep the bound.  When it
 * comes back the fd is reported, and the fd is re-armed at the next poll()
 * (after the front end ran the callbacks): level-triggered without spinning
 * a worker on an fd that stays ready.  Arming starts with one zero-timeout
 * poll(2) on the loop thread over the fds to arm, so an fd that is still
 * (or already) ready is reported by that same poll() with no worker round
 * trip; only quiet fds get a blocking job.  An interest change cancels the job;
 * each arming carries a generation, and a result from an older one is
 * dropped.  Regular files are always ready and get no job.
 *
 * Ops and watcher jobs queue locally and reach the pool in one batch per
 * poll(): one pool lock per loop iteration.  An op cancelled while still in
 * the local batch is taken out of it and completed (-ECANCELED) at once,
 * from cancel itself: the front end only queues the completion and sees it
 * pending, so its next poll() does not block, and the op never reaches a
 * worker (nothing consumed, nothing to interrupt).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "pool.h"

#define container_of(p, type, member) \
  ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* op->tl__gen: in the local batch or wait list (before the pool), or in
 * the pool. */
enum { OP_LOCAL = 1, OP_LOCAL_WAIT = 2, OP_POOL = 3 };

struct watch {
  struct tl__job job;
  struct tl__base *b;
  int fd;
  unsigned interest;          /* TL_READ|TL_WRITE, loop thread */
  uint32_t gen;               /* bumped at every interest change */
  uint32_t job_gen;           /* gen the job in the pool was armed with */
  short job_events;           /* what the job polls for (set before submit) */
  unsigned busy : 1;          /* the job is in the pool */
  unsigned rearm : 1;         /* on the rearm list */
  unsigned file : 1;          /* always ready: on the file list, no job */
  unsigned ready_ev;          /* found ready by poll()'s own check */
  uint32_t ready_gen;
  struct watch *rnext;        /* rearm list */
  struct watch *dnext;        /* ready list */
  struct watch *fnext, *fprev;/* file list */
};

struct tp {
  struct watch **w;           /* by fd */
  int nw;
  /* Ops for the next poll(); while local, job->worker is the previous op,
   * so a cancel unlinks in O(1). */
  struct tl__job *bhead, *btail;
  unsigned bn;
  /* Watcher jobs armed by this poll(), built by arm_watchers(). */
  struct tl__pool_list wl;
  struct watch *rearm;        /* watchers to arm at the next poll() */
  struct watch *ready;        /* found ready without a job, reported by poll() */
  struct pollfd *pf;          /* poll()'s check of the watchers to arm */
  struct watch **pw;
  unsigned npf;
  struct watch *files;        /* regular files with interest */
  unsigned outstanding;       /* jobs in the pool, not yet done() */
  /* Per fd: KIND_FILE or KIND_OTHER once asked (fstat), 0 unknown.  Kept
   * until the user closes the fd by the header's rule 7 (tl_close, or
   * tl_cancel_fd before close(2): modify(fd, 0, 0)), so a file op costs no
   * fstat. */
  unsigned char *kind;
  int nkind;
};

enum { KIND_UNKNOWN = 0, KIND_FILE, KIND_OTHER };

static struct tp *TP(struct tl__base *b) { return b->bstate; }

static void batch_add(struct tp *t, struct tl__job *j) {
  j->next = NULL;
  j->worker = t->btail;
  if (t->btail)
    t->btail->next = j;
  else
    t->bhead = j;
  t->btail = j;
  t->bn++;
}

static void batch_unlink(struct tp *t, struct tl__job *j) {
  struct tl__job *prev = j->worker;
  if (prev)
    prev->next = j->next;
  else
    t->bhead = j->next;
  if (j->next)
    j->next->worker = prev;
  else
    t->btail = prev;
  j->next = NULL;
  j->worker = NULL;
  t->bn--;
}

static void wait_add(struct tp *t, struct tl__job *j) {
  j->next = NULL;
  if (t->wl.tail)
    t->wl.tail->next = j;
  else
    t->wl.head = j;
  t->wl.tail = j;
  t->wl.n++;
}

/* ---------------------------------------------------------------- ops */

/* The same policy as the other backends' pool paths (src/ops_sync.c). */
static void op_work(struct tl__job *job) {
  tl_op *op = container_of(job, tl_op, tl__job);
  int file = -1;               /* reads/writes: what submit found, 1 file, 0 not */
  switch (op->type) {
  case TL_OP_READ: case TL_OP_WRITE: case TL_OP_READV: case TL_OP_WRITEV:
  case TL_OP_READ_FIXED: case TL_OP_WRITE_FIXED:
    if (job->res >= 0)
      file = (int)job->res;
    break;
  default:
    break;
  }
  job->res = tl__op_run_on_worker(job, op, file);
}

static void op_done_job(struct tl__job *job) {
  tl_op *op = container_of(job, tl_op, tl__job);
  struct tl__base *b = job->base;
  TP(b)->outstanding--;
  op->tl__gen = 0;
  tl__base_op_done(b, op, job->res);
}

/* fd is a regular file or block device (1), not (0), or -errno: asked
 * once per fd, on the loop thread. */
static int fd_kind(struct tp *t, int fd) {
  if (fd >= t->nkind) {
    int n = t->nkind ? t->nkind : 64;
    while (n <= fd)
      n *= 2;
    unsigned char *k = realloc(t->kind, (size_t)n);
    if (!k)
      return tl__fd_is_file(fd);
    memset(k + t->nkind, 0, (size_t)(n - t->nkind));
    t->kind = k;
    t->nkind = n;
  }
  if (t->kind[fd] == KIND_UNKNOWN) {
    int r = tl__fd_is_file(fd);
    if (r < 0)
      return r;
    t->kind[fd] = r ? KIND_FILE : KIND_OTHER;
  }
  return t->kind[fd] == KIND_FILE;
}

static void fd_forget(struct tp *t, int fd) {
  if (fd >= 0 && fd < t->nkind)
    t->kind[fd] = KIND_UNKNOWN;
}

static int tp_submit(struct tl__base *b, tl_op *op) {
  struct tl__job *j = &op->tl__job;
  j->work = op_work;
  j->done = op_done_job;
  j->base = b;
  j->res = 0;
  j->state = TL__JOB_IDLE;
  switch (op->type) {
  case TL_OP_READ: case TL_OP_WRITE: case TL_OP_READV: case TL_OP_WRITEV:
  case TL_OP_READ_FIXED: case TL_OP_WRITE_FIXED:
    /* A page-cached file op done here costs the syscall, not a worker
     * round trip (TL_FLAG_FILE_NOWAIT). */
    if ((b->flags & TL_FLAG_FILE_NOWAIT) && tl__base_try_nowait(b, op))
      return 0;
    j->res = fd_kind(TP(b), op->fd);
    break;
  case TL_OP_CLOSE:
    tl__base_nowait_forget(b, op->fd);
    fd_forget(TP(b), op->fd);
    break;
  default:
    break;
  }
  switch (op->type) {
  case TL_OP_SHUTDOWN:
    /* Never blocks: done here, no pool round trip. */
    op->tl__gen = 0;
    b->syscalls++;
    tl__base_op_done(b, op, tl__op_run_blocking(op));
    return 0;
  default:
    if (tl__op_pool_class(op) == TL__POOL_WAIT) {
      /* Socket ops may wait for their peer as long as it likes: they are
       * waits, like readiness jobs, so 2,000 idle connections' recvs do not
       * hold every op slot while accepts and file ops queue behind them. */
      op->tl__gen = OP_LOCAL_WAIT;
      wait_add(TP(b), j);
    } else {
      op->tl__gen = OP_LOCAL;
      batch_add(TP(b), j);
    }
  }
  return 0;
}

/* Takes a job out of the local wait list (not yet in the pool). */
static void wait_unlink(struct tp *t, struct tl__job *j) {
  struct tl__job *prev = NULL;
  for (struct tl__job *x = t->wl.head; x; prev = x, x = x->next) {
    if (x != j)
      continue;
    if (prev)
      prev->next = x->next;
    else
      t->wl.head = x->next;
    if (t->wl.tail == x)
      t->wl.tail = prev;
    t->wl.n--;
    x->next = NULL;
    return;
  }
}

static int tp_cancel(struct tl__base *b, tl_op *op) {
  switch (op->tl__gen) {
  case OP_LOCAL:
  case OP_LOCAL_WAIT:
    /* Still ours: it never reaches the pool. */
    if (op->tl__gen == OP_LOCAL)
      batch_unlink(TP(b), &op->tl__job);
    else
      wait_unlink(TP(b), &op->tl__job);
    op->tl__gen = 0;
    tl__base_op_done(b, op, -ECANCELED);
    return 0;
  case OP_POOL: {
    int r = tl__pool_cancel(&op->tl__job);
    if (r == 1) {
      TP(b)->outstanding--;
      op->tl__gen = 0;
      tl__base_op_done(b, op, -ECANCELED);
    }
    /* 0: running, interrupted if it waits; -ENOENT: finished, posted. */
    return 0;
  }
  default:
    return -ENOENT;
  }
}

/* ---------------------------------------------------------- readiness */

static unsigned poll_to_tl(int re) {
  unsigned r = 0;
  if (re & (POLLIN | POLLHUP | POLLERR | POLLPRI))
    r |= TL_READ;
  if (re & (POLLOUT | POLLHUP | POLLERR))
    r |= TL_WRITE;
  if (re & POLLNVAL)
    r |= TL_ERROR;
  return r;
}

static void watch_work(struct tl__job *job) {
  struct watch *w = container_of(job, struct watch, job);
  int r;
  do
    r = tl__pool_wait(job, w->fd, w->job_events, -1);
  while (r == 0);
  job->res = r;
}

static void rearm_add(struct tp *t, struct watch *w) {
  if (w->rearm || w->file)
    return;
  w->rearm = 1;
  w->rnext = t->rearm;
  t->rearm = w;
}

static void watch_done(struct tl__job *job) {
  struct watch *w = container_of(job, struct watch, job);
  struct tl__base *b = w->b;
  struct tp *t = TP(b);
  t->outstanding--;
  w->busy = 0;
  if (job->cancelled == -1) {
    /* The pool could not start a thread for the wait: no event, the wait
     * is asked for again at the next poll. */
    if (w->interest)
      rearm_add(t, w);
  } else if (w->job_gen == w->gen && w->interest) {
    int64_t r = job->res;
    unsigned ev = r > 0 ? poll_to_tl((int)r) : TL_ERROR;
    rearm_add(t, w);
    tl__base_fd_event(b, w->fd, ev);
  } else if (w->interest) {
    rearm_add(t, w);
  }
}

static struct watch *watch_get(struct tp *t, struct tl__base *b, int fd) {
  if (fd >= t->nw) {
    int n = t->nw ? t->nw : 64;
    while (n <= fd)
      n *= 2;
    struct watch **nw = realloc(t->w, (size_t)n * sizeof *nw);
    if (!nw)
      return NULL;
    memset(nw + t->nw, 0, (size_t)(n - t->nw) * sizeof *nw);
    t->w = nw;
    t->nw = n;
  }
  if (!t->w[fd]) {
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
      return NULL;
    w->b = b;
    w->fd = fd;
    w->job.work = watch_work;
    w->job.done = watch_done;
    w->job.base = b;
    t->w[fd] = w;
  }
  return t->w[fd];
}

static void file_unlink(struct tp *t, struct watch *w) {
  if (w->fprev)
    w->fprev->fnext = w->fnext;
  else
    t->files = w->fnext;
  if (w->fnext)
    w->fnext->fprev = w->fprev;
  w->fnext = w->fprev = NULL;
  w->file = 0;
}

/* Ends the job of w, if any; a result still on its way is dropped by the
 * generation check in watch_done(). */
static void watch_stop_job(struct tp *t, struct watch *w) {
  if (w->busy && tl__pool_cancel(&w->job) == 1) {
    w->busy = 0;
    t->outstanding--;
  }
}

static int tp_modify(struct tl__base *b, int fd, unsigned oev, unsigned nev) {
  struct tp *t = TP(b);
  if (!oev && !(nev & (TL_READ | TL_WRITE)))
    tl__base_nowait_forget(b, fd);   /* about to be closed */
  if (fd == b->wakefd)
    return 0;                   /* poll() itself sleeps on it */
  if (fd < 0)
    return -EBADF;
  nev &= TL_READ | TL_WRITE;
  if (!oev && !nev)
    fd_forget(t, fd);   /* about to be closed: the number may name a new file */
  struct watch *w = fd < t->nw ? t->w[fd] : NULL;
  unsigned was = w ? w->interest : 0;
  if (was == nev)
    return 0;
  int file = 0;
  if (!was) {
    if (fcntl(fd, F_GETFD) < 0)
      return -errno;
    file = tl__fd_is_file(fd);
    if (file < 0)
      return file;
    if (!w && !(w = watch_get(t, b, fd)))
      return -ENOMEM;
  }
  w->gen++;
  w->interest = nev;
  if (w->file) {
    if (!nev)
      file_unlink(t, w);
    return 0;
  }
  if (file) {
    w->file = 1;
    w->fprev = NULL;
    w->fnext = t->files;
    if (t->files)
      t->files->fprev = w;
    t->files = w;
    return 0;
  }
  /* The job waiting for the old events cannot change what it polls for: it
   * ends, and a fresh one is armed at the next poll() if interest remains. */
  watch_stop_job(t, w);
  if (nev)
    rearm_add(t, w);
  return 0;
}

/* Grows the arrays of poll()'s own checks; -ENOMEM leaves them as they were. */
static int pf_grow(struct tp *t) {
  unsigned n = t->npf ? 2 * t->npf : 64;
  struct pollfd *pf = realloc(t->pf, n * sizeof *pf);
  if (!pf)
    return -ENOMEM;
  t->pf = pf;
  struct watch **pw = realloc(t->pw, n * sizeof *pw);
  if (!pw)
    return -ENOMEM;
  t->pw = pw;
  t->npf = n;
  return 0;
}

/*
 * Arms the watchers on the rearm list.  One poll(2) with a zero timeout
 * over them first: an fd that is ready already (typically one the front end
 * was just told about and did not drain) is reported by this very poll()
 * without a round trip through a worker, so readiness is level-triggered
 * exactly as epoll reports it, even for a poll() that must not block.  The
 * others get a job that blocks on them.
 */
static void arm_watchers(struct tl__base *b) {
  struct tp *t = TP(b);
  unsigned k = 0;
  struct watch *w = t->rearm;
  t->rearm = NULL;
  for (struct watch *next; w; w = next) {
    next = w->rnext;
    w->rearm = 0;
    if (!w->interest || w->busy || w->file)
      continue;
    if (k == t->npf)
      pf_grow(t);
    short ev = (short)(((w->interest & TL_READ) ? POLLIN : 0) |
                       ((w->interest & TL_WRITE) ? POLLOUT : 0));
    if (k < t->npf) {
      t->pf[k] = (struct pollfd){ .fd = w->fd, .events = ev };
      t->pw[k++] = w;
    } else {
      w->job_gen = w->gen;     /* out of memory for the check: just arm */
      w->job_events = ev;
      w->busy = 1;
      wait_add(t, &w->job);
    }
  }
  if (!k)
    return;
  int n = poll(t->pf, k, 0);
  b->syscalls++;
  for (unsigned i = 0; i < k; i++) {
    w = t->pw[i];
    if (n > 0 && t->pf[i].revents) {
      w->ready_ev = poll_to_tl(t->pf[i].revents);
      w->ready_gen = w->gen;
      w->dnext = t->ready;
      t->ready = w;
    } else {
      w->job_gen = w->gen;
      w->job_events = t->pf[i].events;
      w->busy = 1;
      wait_add(t, &w->job);
    }
  }
}

/* One zero-timeout poll(2) over the watchers whose job is in a worker. */
static void check_busy(struct tl__base *b) {
  struct tp *t = TP(b);
  unsigned k = 0;
  for (int fd = 0; fd < t->nw; fd++) {
    struct watch *w = t->w[fd];
    if (!w || !w->busy || !w->interest || w->file)
      continue;
    if (k == t->npf && pf_grow(t) < 0)
      break;
    t->pf[k] = (struct pollfd){ .fd = fd, .events = w->job_events };
    t->pw[k++] = w;
  }
  if (!k)
    return;
  int n = poll(t->pf, k, 0);
  b->syscalls++;
  for (unsigned i = 0; n > 0 && i < k; i++)
    if (t->pf[i].revents) {
      struct watch *w = t->pw[i];
      w->ready_ev = poll_to_tl(t->pf[i].revents);
      w->ready_gen = w->gen;
      w->dnext = t->ready;
      t->ready = w;
    }
}

/* Moves the rearm list and the op batch to the pool, one lock for all. */
static int flush(struct tl__base *b) {
  struct tp *t = TP(b);
  arm_watchers(b);

  struct tl__pool_list ops = { t->bhead, t->btail, t->bn };
  struct tl__pool_list waits = t->wl;
  t->bhead = t->btail = NULL;
  t->bn = 0;
  t->wl = (struct tl__pool_list){ NULL, NULL, 0 };
  if (!ops.n && !waits.n)
    return 0;
  for (struct tl__job *j = ops.head; j; j = j->next)
    container_of(j, tl_op, tl__job)->tl__gen = OP_POOL;
  for (struct tl__job *j = waits.head; j; j = j->next)
    if (j->work == op_work)
      container_of(j, tl_op, tl__job)->tl__gen = OP_POOL;
  int r = tl__pool_submit_lists(&ops, &waits);
  if (r == 0) {
    t->outstanding += ops.n + waits.n;
    return 0;
  }
  /* No worker exists and none can start: ops fail with that error (they
   * were accepted, so they still get their one completion); watchers stay
   * armed-to-be and are retried at the next poll. */
  for (struct tl__job *j = ops.head, *next; j; j = next) {
    next = j->next;
    tl_op *op = container_of(j, tl_op, tl__job);
    op->tl__gen = 0;
    tl__base_op_done(b, op, r);
  }
  for (struct tl__job *j = waits.head, *next; j; j = next) {
    next = j->next;
    if (j->work == op_work) {
      tl_op *op = container_of(j, tl_op, tl__job);
      op->tl__gen = 0;
      tl__base_op_done(b, op, r);
      continue;
    }
    struct watch *ww = container_of(j, struct watch, job);
    ww->busy = 0;
    rearm_add(t, ww);
  }
  return r;
}

static int tp_poll(struct tl__base *b, double timeout) {
  struct tp *t = TP(b);
  b->nowait_left = b->nowait_budget;
  int r = flush(b);
  int ms;
  if (t->files || t->ready || r < 0)
    ms = 0;
  else if (!(timeout > 0))
    ms = 0;                     /* also an overdue timer's negative timeout */
  else if (timeout >= 86400.0 * 24)
    ms = -1;
  else
    ms = (int)ceil(timeout * 1e3);
  struct pollfd p = { .fd = b->wakefd, .events = POLLIN };
  int n = poll(&p, 1, ms);
  b->syscalls++;
  if (n < 0 && errno != EINTR)
    return -errno;
  if (n > 0 && (p.revents & POLLIN))
    tl__base_fd_event(b, b->wakefd, TL_READ);
  /* A job that just came back (say, cancelled by an interest change while
   * it was blocked) leaves its fd to re-arm: check it now, so an fd that is
   * ready for its new interest is reported by this poll(), as epoll would,
   * and not one wake-up later.  Jobs it needs reach the pool next time. */
  if (t->rearm)
    arm_watchers(b);
  /* A poll() that must not block still owes every ready fd (the seam's
   * level-triggered promise, what EVRUN_NOWAIT and ev_embed_sweep rely on):
   * an fd whose job is blocked in a worker may be ready with the post still
   * on its way, so look at those too.  A blocking poll() need not: the job
   * will wake it. */
  if (!(timeout > 0))
    check_busy(b);
  /* Reported after the wake so that one poll() hands over one batch. */
  struct watch *w = t->ready;
  t->ready = NULL;
  for (struct watch *next; w; w = next) {
    next = w->dnext;
    if (w->ready_gen != w->gen || !w->interest)
      continue;               /* changed by a callback run from the drain */
    rearm_add(t, w);
    tl__base_fd_event(b, w->fd, w->ready_ev);
  }
  for (w = t->files; w; ) {
    struct watch *next = w->fnext;   /* the front end may drop this fd's interest */
    tl__base_fd_event(b, w->fd, TL_READ | TL_WRITE);
    w = next;
  }
  return r;
}

/* ------------------------------------------------------------ lifecycle */

static int tp_init(struct tl__base *b) {
  struct tp *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(b->why, sizeof b->why, "threadpool: out of memory");
    return -ENOMEM;
  }
  b->bstate = t;
  return 0;
}

static void tp_destroy(struct tl__base *b) {
  struct tp *t = TP(b);
  if (!t)
    return;
  /* Ops were drained by the front end.  Watcher jobs still in the pool point
   * at this loop: cancel them and wait until each came back. */
  for (int fd = 0; fd < t->nw; fd++) {
    struct watch *w = t->w[fd];
    if (!w)
      continue;
    w->interest = 0;
    w->gen++;
    watch_stop_job(t, w);
  }
  /* Anything still local never reached the pool (the front end cancelled
   * every op, which took them out already; this is a safety net). */
  for (struct tl__job *j = t->bhead, *next; j; j = next) {
    next = j->next;
    tl_op *op = container_of(j, tl_op, tl__job);
    op->tl__gen = 0;
    tl__base_op_done(b, op, -ECANCELED);
  }
  t->bhead = t->btail = NULL;
  t->bn = 0;
  while (t->outstanding) {
    struct pollfd p = { .fd = b->wakefd, .events = POLLIN };
    /* The timeout only guards against a lost wake; a post always writes. */
    poll(&p, 1, 100);
    tl__base_drain(b);
  }
  for (int fd = 0; fd < t->nw; fd++)
    free(t->w[fd]);
  free(t->w);
  free(t->pf);
  free(t->pw);
  free(t->kind);
  free(t);
  b->bstate = NULL;
}

static int tp_fork(struct tl__base *b) {
  /* The parent's workers do not exist in the child and the pool forgot their
   * jobs: every watcher with interest is armed afresh.  Ops that were in the
   * pool at fork time are lost with the workers. */
  struct tp *t = TP(b);
  t->outstanding = 0;
  t->bhead = t->btail = NULL;   /* ops: the front end cancels them in the child */
  t->bn = 0;
  t->wl = (struct tl__pool_list){ NULL, NULL, 0 };
  t->rearm = NULL;
  t->ready = NULL;
  for (int fd = 0; fd < t->nw; fd++) {
    struct watch *w = t->w[fd];
    if (!w)
      continue;
    w->rearm = 0;
    w->gen++;
    w->busy = 0;
    if (w->interest)
      rearm_add(t, w);
  }
  return 0;
}

const struct tl__backend tl__backend_threadpool = {
  .name = "threadpool",
  .id = TL_BACKEND_THREADPOOL,
  .init = tp_init,
  .destroy = tp_destroy,
  .modify = tp_modify,
  .poll = tp_poll,
  .submit = tp_submit,
  .cancel = tp_cancel,
  .fork = tp_fork,
};
