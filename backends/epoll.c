/*
 * The epoll backend, tokio-style.
 *
 * Readiness watchers: epoll, level-triggered, as libev.
 * Socket ops (recv, send, accept, connect, and read/write on pipes and
 * sockets): the nonblocking syscall first; only on EAGAIN the op waits in a
 * per-fd queue until epoll says the fd is ready, then it is retried.  An fd
 * that only ever serves ops is registered once, edge-triggered for both
 * directions, and stays registered: a steady echo costs no epoll_ctl.
 * File ops (regular files, block devices, fsync, openat): blocking calls on
 * the shared pool, handed over in one batch per iteration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base.h"
#include "pool.h"

#define MAX_EVENTS 256

/* Where an op is, in op->tl__gen. */
enum { AT_NONE = 0, AT_READQ, AT_WRITEQ, AT_BATCH, AT_POOL };

struct fdslot {
  unsigned core;        /* the front end's interest (TL_READ|TL_WRITE) */
  uint32_t reg;         /* epoll mask registered, 0 = not registered */
  uint32_t gen;         /* bumped at every ADD, carried in epoll data */
  unsigned char opfd;   /* ops have waited here: keep the ET registration */
  unsigned char file;   /* epoll refused it (EPERM): always ready */
  tl_op *rq, *rq_tail;  /* ops waiting to read */
  tl_op *wq, *wq_tail;  /* ops waiting to write */
};

struct epstate {
  int epfd;
  struct fdslot *fds;
  int nfds;
  int nfiles;           /* slots with file set and core interest */
  struct tl__job *batch, *batch_tail;
  unsigned nbatch;
  struct epoll_event ev[MAX_EVENTS];
};

#define ST(b) ((struct epstate *)(b)->bstate)

static __attribute__((noinline)) struct fdslot *slot_grow(struct epstate *s, int fd) {
  int n = s->nfds ? s->nfds : 64;
  while (n <= fd)
    n *= 2;
  struct fdslot *p = realloc(s->fds, (size_t)n * sizeof *p);
  if (!p)
    return NULL;
  memset(p + s->nfds, 0, (size_t)(n - s->nfds) * sizeof *p);
  s->fds = p;
  s->nfds = n;
  return &s->fds[fd];
}

static inline struct fdslot *slot(struct epstate *s, int fd) {
  return fd < s->nfds ? &s->fds[fd] : slot_grow(s, fd);
}

static inline uint32_t wanted(const struct fdslot *f) {
  if (f->core)
    return (f->core & TL_READ || f->rq ? EPOLLIN : 0) |
           (f->core & TL_WRITE || f->wq ? EPOLLOUT : 0);
  if (f->rq || f->wq || f->opfd)
    return EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  return 0;
}

/* Brings the kernel's registration of fd in line with what is wanted.
 * force: the fd may have been closed and reopened since we registered it
 * (the kernel drops a closed fd silently), so ask the kernel even if our
 * record says it is already registered. */
static int update(struct tl__base *b, int fd, struct fdslot *f, int force) {
  struct epstate *s = ST(b);
  uint32_t want = wanted(f);
  if (f->file || (want == f->reg && !force))
    return 0;
  struct epoll_event ev = { .events = want };
  int r;
  b->syscalls++;
  if (!want) {
    r = epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, &ev);
    f->reg = 0;
    return 0;   /* ENOENT/EBADF: the kernel forgot it already on close */
  }
  if (f->reg && !force) {
    ev.data.u64 = (uint64_t)f->gen << 32 | (uint32_t)fd;
    r = epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (r == 0 || errno != ENOENT)
      goto out;
    b->syscalls++;   /* closed and reopened behind us: add it afresh */
  }
  /* A forced re-register asks "is this still the file we registered?":
   * ADD answers it (epoll keys on file and number) and, when the answer
   * is yes with the same mask, costs only a lookup, where MOD would
   * re-poll the file (libev's epoll_modify does the same). */
  uint32_t old_gen = f->gen;
  f->gen++;
  ev.data.u64 = (uint64_t)f->gen << 32 | (uint32_t)fd;
  r = epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
  if (r < 0 && errno == EEXIST) {
    f->gen = old_gen;
    if (f->reg == want) {
      r = 0;
      goto out;
    }
    b->syscalls++;
    ev.data.u64 = (uint64_t)f->gen << 32 | (uint32_t)fd;
    r = epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
  }
out:
  if (r < 0) {
    int e = errno;
    f->reg = 0;
    if (e == EPERM) {
      /* Regular files: epoll refuses them, poll(2) calls them always
       * ready, and so do we. */
      f->file = 1;
      if (f->core)
        s->nfiles++;
      return 0;
    }
    return -e;
  }
  f->reg = want;
  return 0;
}

static int init(struct tl__base *b) {
  struct epstate *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (s->epfd < 0) {
    int r = -errno;
    snprintf(b->why, sizeof b->why, "epoll_create1: %s", strerror(errno));
    free(s);
    return r;
  }
  b->bstate = s;
  return 0;
}

static void destroy(struct tl__base *b) {
  struct epstate *s = ST(b);
  if (!s)
    return;
  close(s->epfd);
  free(s->fds);
  free(s);
  b->bstate = NULL;
}

static int modify(struct tl__base *b, int fd, unsigned oev, unsigned nev) {
  struct epstate *s = ST(b);
  /* TL__SAME_FILE is no use here: a start always asks epoll, which drops
   * a registration when its file closes. */
  nev &= TL_READ | TL_WRITE;
  if (!oev && !nev)
    tl__base_nowait_forget(b, fd);   /* about to be closed */
  struct fdslot *f = slot(s, fd);
  if (!f)
    return -ENOMEM;
  if (f->file) {
    /* Always-ready files need no kernel state: just count them. */
    s->nfiles += !!nev - !!f->core;
    f->core = nev;
    if (!nev)
      f->file = 0;
    return 0;
  }
  f->core = nev;
  if (!oev && !nev) {
    /* The front end is about to let fd be closed: forget it. */
    if (!f->rq && !f->wq) {
      f->opfd = 0;
      update(b, fd, f, 0);
    }
    return 0;
  }
  /* Interest dropped: leave the registration (lazy, as libev) and take it
   * off only if it fires; watcher churn then costs one epoll_ctl a start. */
  if (!nev)
    return 0;
  int r = update(b, fd, f, !oev);
  if (r < 0)
    f->core = 0;
  return r;
}

/* ---- ops ---- */

static void job_work(struct tl__job *job) {
  tl_op *op = (tl_op *)((char *)job - offsetof(tl_op, tl__job));
  job->res = tl__op_run_blocking(op);
}

static void job_done(struct tl__job *job) {
  tl_op *op = (tl_op *)((char *)job - offsetof(tl_op, tl__job));
  op->tl__gen = AT_NONE;
  tl__base_op_done(job->base, op, job->res);
}

static void to_pool(struct tl__base *b, tl_op *op) {
  struct epstate *s = ST(b);
  struct tl__job *j = &op->tl__job;
  j->work = job_work;
  j->done = job_done;
  j->base = b;
  j->next = NULL;
  j->cancelled = 0;
  op->tl__gen = AT_BATCH;
  if (s->batch_tail)
    s->batch_tail->next = j;
  else
    s->batch = j;
  s->batch_tail = j;
  s->nbatch++;
}

/* Hands the batch to the pool.  Returns 1 when it could not and failed
 * the ops instead: their callbacks are then due now, so poll must not
 * block (the front end chose its timeout before they completed). */
static int flush_batch(struct tl__base *b) {
  struct epstate *s = ST(b);
  if (!s->batch)
    return 0;
  struct tl__job *head = s->batch, *tail = s->batch_tail;
  unsigned n = s->nbatch;
  s->batch = s->batch_tail = NULL;
  s->nbatch = 0;
  for (struct tl__job *j = head; j; j = j->next)
    ((tl_op *)((char *)j - offsetof(tl_op, tl__job)))->tl__gen = AT_POOL;
  int r = tl__pool_submit_batch(head, tail, n);
  if (r < 0) {
    /* No worker can start at all: the ops fail, none is lost. */
    while (head) {
      struct tl__job *next = head->next;
      head->res = r;
      job_done(head);
      head = next;
    }
    return 1;
  }
  return 0;
}

static void enqueue(tl_op **head, tl_op **tail, tl_op *op) {
  op->tl__qnext = NULL;
  if (*tail)
    (*tail)->tl__qnext = op;
  else
    *head = op;
  *tail = op;
}

static int unqueue(tl_op **head, tl_op **tail, tl_op *op) {
  tl_op *prev = NULL;
  for (tl_op *o = *head; o; prev = o, o = o->tl__qnext) {
    if (o != op)
      continue;
    if (prev)
      prev->tl__qnext = o->tl__qnext;
    else
      *head = o->tl__qnext;
    if (*tail == o)
      *tail = prev;
    o->tl__qnext = NULL;
    return 1;
  }
  return 0;
}

/* Runs the waiting ops of one queue until one would block. */
static void retry(struct tl__base *b, tl_op **head, tl_op **tail) {
  while (*head) {
    tl_op *op = *head;
    b->syscalls++;
    int64_t r = tl__op_run_nonblocking(op);
    if (r == -EAGAIN)
      return;
    *head = op->tl__qnext;
    if (!*head)
      *tail = NULL;
    op->tl__gen = AT_NONE;
    tl__base_op_done(b, op, r);
  }
}

static int submit(struct tl__base *b, tl_op *op) {
  struct epstate *s = ST(b);
  int fd = op->fd;
  switch (op->type) {
  case TL_OP_FSYNC: case TL_OP_FDATASYNC: case TL_OP_OPENAT:
    to_pool(b, op);
    return 0;
  case TL_OP_CLOSE: {
    tl__base_nowait_forget(b, fd);
    b->syscalls++;
    int file = tl__fd_is_file(fd);
    struct fdslot *f = fd < s->nfds ? &s->fds[fd] : NULL;
    if (f && !f->core) {
      f->opfd = 0;
      f->file = 0;
      update(b, fd, f, 0);
    }
    if (file > 0) {
      to_pool(b, op);
    } else {
      b->syscalls++;
      tl__base_op_done(b, op, close(fd) < 0 ? -errno : 0);
    }
    return 0;
  }
  case TL_OP_READ: case TL_OP_WRITE: case TL_OP_READV: case TL_OP_WRITEV:
  case TL_OP_READ_FIXED: case TL_OP_WRITE_FIXED: {
    b->syscalls++;
    int file = tl__fd_is_file(fd);
    if (file < 0) {
      tl__base_op_done(b, op, file);
      return 0;
    }
    if (file) {
      if ((b->flags & TL_FLAG_FILE_NOWAIT) && tl__base_try_nowait(b, op))
        return 0;
      to_pool(b, op);
      return 0;
    }
    break;
  }
  default:
    break;
  }

  /* Sockets and pipes: try now, wait for readiness only on EAGAIN, and
   * never let an op overtake one queued before it on the same side. */
  struct fdslot *f = slot(s, fd);
  if (!f)
    return -ENOMEM;
  int write_side = tl__op_wants(op) == TL_WRITE;
  tl_op **head = write_side ? &f->wq : &f->rq, **tail = write_side ? &f->wq_tail : &f->rq_tail;
  if (!*head) {
    b->syscalls++;
    int64_t r = tl__op_run_nonblocking(op);
    if (r != -EAGAIN) {
      tl__base_op_done(b, op, r);
      return 0;
    }
  }
  /* The first op to wait on an fd asks the kernel even if our record says
   * it is registered: the user may have closed the fd with close(2) since
   * (the kernel then drops it silently) and the number now names a new
   * socket.  One epoll_ctl per wait is the price of that safety. */
  int verify = !f->rq && !f->wq && !f->core;
  enqueue(head, tail, op);
  op->tl__gen = write_side ? AT_WRITEQ : AT_READQ;
  f->opfd = 1;
  int r = update(b, fd, f, verify);
  if (r < 0) {
    unqueue(head, tail, op);
    op->tl__gen = AT_NONE;
    tl__base_op_done(b, op, r);
  }
  return 0;
}

static int cancel(struct tl__base *b, tl_op *op) {
  struct epstate *s = ST(b);
  switch (op->tl__gen) {
  case AT_READQ: case AT_WRITEQ: {
    struct fdslot *f = &s->fds[op->fd];
    if (op->tl__gen == AT_READQ)
      unqueue(&f->rq, &f->rq_tail, op);
    else
      unqueue(&f->wq, &f->wq_tail, op);
    op->tl__gen = AT_NONE;
    tl__base_op_done(b, op, -ECANCELED);
    return 0;
  }
  case AT_BATCH: {
    /* Not handed to the pool yet: take it out of the batch. */
    struct tl__job *prev = NULL;
    for (struct tl__job *j = s->batch; j; prev = j, j = j->next)
      if (j == &op->tl__job) {
        if (prev)
          prev->next = j->next;
        else
          s->batch = j->next;
        if (s->batch_tail == j)
          s->batch_tail = prev;
        s->nbatch--;
        break;
      }
    op->tl__gen = AT_NONE;
    tl__base_op_done(b, op, -ECANCELED);
    return 0;
  }
  case AT_POOL:
    if (tl__pool_cancel(&op->tl__job) == 1) {
      op->tl__gen = AT_NONE;
      tl__base_op_done(b, op, -ECANCELED);
    }
    /* Running: a file op finishes and reports its real result. */
    return 0;
  }
  return 0;
}

static int poll_(struct tl__base *b, double timeout) {
  struct epstate *s = ST(b);
  b->nowait_left = b->nowait_budget;
  if (flush_batch(b) || s->nfiles)
    timeout = 0;
  int ms = timeout <= 0 ? 0 : (int)(timeout * 1e3 + 0.999);
  b->syscalls++;
  int n = epoll_wait(s->epfd, s->ev, MAX_EVENTS, ms);
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    int fd = (int)(uint32_t)s->ev[i].data.u64;
    uint32_t gen = (uint32_t)(s->ev[i].data.u64 >> 32);
    if (fd >= s->nfds)
      continue;
    struct fdslot *f = &s->fds[fd];
    if (gen != f->gen || !f->reg)
      continue;   /* an event for an fd number since reused */
    uint32_t e = s->ev[i].events;
    unsigned rev = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
      rev |= TL_READ;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
      rev |= TL_WRITE;
    if ((rev & TL_READ) && f->rq)
      retry(b, &f->rq, &f->rq_tail);
    if ((rev & TL_WRITE) && f->wq)
      retry(b, &f->wq, &f->wq_tail);
    if (f->core & rev)
      tl__base_fd_event(b, fd, rev);
    /* Level-triggered bits nobody waits for any more would fire forever. */
    if (wanted(f) != f->reg)
      update(b, fd, f, 0);
  }
  if (s->nfiles)
    for (int fd = 0; fd < s->nfds; fd++)
      if (s->fds[fd].file && s->fds[fd].core)
        tl__base_fd_event(b, fd, s->fds[fd].core);
  return 0;
}

static int fork_(struct tl__base *b) {
  struct epstate *s = ST(b);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    return -errno;
  close(s->epfd);
  s->epfd = ep;
  /* The parent's pool jobs are gone with its threads. */
  s->batch = s->batch_tail = NULL;
  s->nbatch = 0;
  for (int fd = 0; fd < s->nfds; fd++) {
    /* Waiting ops belong to the parent; the front end cancels the child's
     * copies. */
    s->fds[fd].rq = s->fds[fd].rq_tail = s->fds[fd].wq = s->fds[fd].wq_tail = NULL;
    s->fds[fd].reg = 0;
    if (wanted(&s->fds[fd]))
      update(b, fd, &s->fds[fd], 0);
  }
  return 0;
}

const struct tl__backend tl__backend_epoll = {
  .name = "epoll",
  .id = TL_BACKEND_EPOLL,
  .init = init,
  .destroy = destroy,
  .modify = modify,
  .poll = poll_,
  .submit = submit,
  .cancel = cancel,
  .fork = fork_,
};
