/*
 * The epoll backend, tokio-style.
 *
 * Readiness watchers: epoll, level-triggered, as libev.
 * Socket ops (recv, send, accept, connect, and read/write on pipes and
 * sockets): the nonblocking syscall first; only on EAGAIN the op waits in a
 * per-fd queue until epoll says the fd is ready, then it is retried.  An fd
 * that only ever serves ops is registered once, edge-triggered for both
 * directions, and stays registered: a steady echo costs no epoll_ctl.
 * Per fd, a direction that said EAGAIN or gave a short transfer (stream
 * sockets) is not tried again until epoll reports an edge (tokio's rule).
 * All of this is kept per fd number until the user closes it by the
 * header's rule 7 (modify(fd, 0, 0) then forgets it).
 * File ops (regular files, block devices, fsync, openat): blocking calls on
 * the shared pool, handed over in one batch per iteration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base.h"
#include "pool.h"

#define MAX_EVENTS 256

/* What an fd is, cached per slot until the user closes it through the loop
 * (tl_close, or tl_cancel_fd before close(2): the header's rule 7), so a
 * file op costs no fstat and a short recv no getsockopt. */
enum { KIND_UNKNOWN = 0, KIND_FILE, KIND_STREAM, KIND_OTHER, KIND_NOTFILE };

/* Where an op is, in op->tl__gen. */
enum { AT_NONE = 0, AT_READQ, AT_WRITEQ, AT_BATCH, AT_POOL };

struct fdslot {
  unsigned core;        /* the front end's interest (TL_READ|TL_WRITE) */
  uint32_t reg;         /* epoll mask registered, 0 = not registered */
  uint32_t gen;         /* bumped at every ADD, carried in epoll data */
  unsigned char opfd;   /* ops have waited here: keep the ET registration */
  unsigned char file;   /* epoll refused it (EPERM): always ready */
  /* Ops' readiness (tokio's rule, with the ET registration): a direction
   * is known not ready after EAGAIN or a short read/write and is then not
   * tried until epoll reports an edge.  0 = try the syscall. */
  unsigned char rblocked, wblocked;
  unsigned char kind;   /* 0 unknown, KIND_FILE, KIND_STREAM, KIND_OTHER */
  unsigned char nonblock;   /* we set O_NONBLOCK (accept, connect, read, write need it) */
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

/* The fd is about to be closed: what we learnt about it goes too. */
static void forget(struct fdslot *f) {
  f->rblocked = f->wblocked = 0;
  f->kind = KIND_UNKNOWN;
  f->nonblock = 0;
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
  /* A start (oev 0) must ask epoll whether the registration we kept since
   * the stop still stands, unless the front end vouches that fd still names
   * that file (TL__SAME_FILE: libev's rule, a watcher restarted without
   * tl_io_init).  Then a kept registration with the same mask costs
   * nothing: start + poll + stop is one epoll_wait, as in libev. */
  int same = (nev & TL__SAME_FILE) != 0;
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
      forget(f);
    }
    return 0;
  }
  /* Interest dropped: leave the registration (lazy, as libev) and take it
   * off only if it fires; watcher churn then costs one epoll_ctl a start. */
  if (!nev)
    return 0;
  int r = update(b, fd, f, !oev && !(same && f->reg));
  if (r < 0)
    f->core = 0;
  return r;
}

/* ---- ops ---- */

/* Is fd a regular file or block device?  Asked once per slot. */
static int slot_is_file(struct tl__base *b, struct fdslot *f, int fd) {
  if (f->kind == KIND_UNKNOWN) {
    b->syscalls++;
    int r = tl__fd_is_file(fd);
    if (r < 0)
      return r;
    f->kind = r ? KIND_FILE : KIND_NOTFILE;
  }
  return f->kind == KIND_FILE;
}

/* Is fd a stream socket?  There a short read means the receive queue is
 * empty; a datagram shorter than the buffer says nothing (tokio 5866). */
static int slot_is_stream(struct tl__base *b, struct fdslot *f, int fd) {
  if (f->kind == KIND_UNKNOWN && slot_is_file(b, f, fd) != 0)
    return 0;
  if (f->kind == KIND_NOTFILE) {
    int t = 0;
    socklen_t l = sizeof t;
    b->syscalls++;
    f->kind = getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) == 0 && t == SOCK_STREAM
                  ? KIND_STREAM : KIND_OTHER;
  }
  return f->kind == KIND_STREAM;
}

/* After op ran with result r: is its direction now known not ready?
 * EAGAIN, or a short transfer on a stream (the kernel gave all it had, or
 * took all it could).  A peek leaves the data queued, so no edge would
 * come for it: never a reason to stop trying. */
static int drained(struct tl__base *b, struct fdslot *f, int fd, const tl_op *op, int64_t r) {
  if (r == -EAGAIN)
    return 1;
  if (r <= 0)
    return 0;
  switch (op->type) {
  case TL_OP_RECV:
    return (size_t)r < op->u.msg.len && !(op->u.msg.flags & MSG_PEEK) &&
           slot_is_stream(b, f, fd);
  case TL_OP_SEND:
    return (size_t)r < op->u.msg.len && slot_is_stream(b, f, fd);
  case TL_OP_READ: case TL_OP_READ_FIXED:
  case TL_OP_WRITE: case TL_OP_WRITE_FIXED:
    return (size_t)r < op->u.rw.len && slot_is_stream(b, f, fd);
  }
  return 0;
}

/* The same policy as the other backends' pool paths (src/ops_sync.c).  Only
 * regular files and block devices reach the pool as reads and writes. */
static void job_work(struct tl__job *job) {
  tl_op *op = (tl_op *)((char *)job - offsetof(tl_op, tl__job));
  job->res = tl__op_run_on_worker(job, op, 1);
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
  if (tl__op_pool_class(op) == TL__POOL_WAIT) {
    /* A splice may wait for its pipe forever: a wait job, outside the
     * work bound, so that it never keeps file ops queued.  Rare enough to
     * go now rather than through the batch. */
    struct tl__pool_list wait = { j, j, 1 };
    op->tl__gen = AT_POOL;
    int r = tl__pool_submit_lists(NULL, &wait);
    if (r < 0) {
      j->res = r;
      job_done(j);
    }
    return;
  }
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

/* Runs the waiting ops of one queue until the direction is drained. */
static void retry(struct tl__base *b, int fd, struct fdslot *f, int write_side) {
  tl_op **head = write_side ? &f->wq : &f->rq, **tail = write_side ? &f->wq_tail : &f->rq_tail;
  unsigned char *blocked = write_side ? &f->wblocked : &f->rblocked;
  *blocked = 0;
  while (*head) {
    tl_op *op = *head;
    b->syscalls++;
    int64_t r = tl__op_try(op, f->nonblock);
    int d = drained(b, f, fd, op, r);
    if (r == -EAGAIN) {
      *blocked = 1;
      return;
    }
    *head = op->tl__qnext;
    if (!*head)
      *tail = NULL;
    op->tl__gen = AT_NONE;
    tl__base_op_done(b, op, r);
    if (d) {
      *blocked = 1;
      return;
    }
  }
}

static int submit(struct tl__base *b, tl_op *op) {
  struct epstate *s = ST(b);
  int fd = op->fd;
  switch (op->type) {
  case TL_OP_FSYNC: case TL_OP_FDATASYNC: case TL_OP_OPENAT: case TL_OP_SPLICE:
  case TL_OP_STATX: case TL_OP_FTRUNCATE: case TL_OP_FALLOCATE:
  case TL_OP_UNLINKAT: case TL_OP_MKDIRAT: case TL_OP_RENAMEAT:
    to_pool(b, op);
    return 0;
  case TL_OP_SHUTDOWN:
    /* Never blocks: done here, no pool round trip. */
    b->syscalls++;
    tl__base_op_done(b, op, tl__op_run_blocking(op));
    return 0;
  case TL_OP_CLOSE: {
    tl__base_nowait_forget(b, fd);
    struct fdslot *f = slot(s, fd);
    if (!f)
      return -ENOMEM;
    int file = slot_is_file(b, f, fd);
    if (!f->core) {
      f->opfd = 0;
      f->file = 0;
      update(b, fd, f, 0);
      forget(f);
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
    struct fdslot *f = slot(s, fd);
    if (!f)
      return -ENOMEM;
    int file = slot_is_file(b, f, fd);
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
  unsigned char *blocked = write_side ? &f->wblocked : &f->rblocked;
  /* Try the syscall only when the direction may be ready: with the
   * edge-triggered registration a known-drained direction would only say
   * EAGAIN, and epoll reports the next edge.  Under a watcher's
   * level-triggered registration readiness is not tracked: always try. */
  if (!f->nonblock && op->type != TL_OP_RECV && op->type != TL_OP_SEND) {
    /* recv and send say MSG_DONTWAIT; the others need the fd's flag, set
     * once per fd rather than asked for with fcntl per op. */
    b->syscalls += 2;
    if (tl__set_nonblock(fd) == 0)
      f->nonblock = 1;
  }
  if (!*head && (!*blocked || f->core)) {
    b->syscalls++;
    int64_t r = tl__op_try(op, f->nonblock);
    if (r != -EAGAIN) {
      *blocked = (unsigned char)drained(b, f, fd, op, r);
      tl__base_op_done(b, op, r);
      return 0;
    }
    *blocked = 1;
  }
  /* Once registered, the fd stays registered: no epoll_ctl per wait.  A
   * number closed and reused behind the loop's back would keep a stale
   * record; the header's rule 7 (tl_close, or tl_cancel_fd before
   * close(2)) makes the loop forget it first. */
  enqueue(head, tail, op);
  op->tl__gen = write_side ? AT_WRITEQ : AT_READQ;
  f->opfd = 1;
  int r = update(b, fd, f, 0);
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
    if (rev & TL_READ)
      retry(b, fd, f, 0);
    if (rev & TL_WRITE)
      retry(b, fd, f, 1);
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
