/*
 * The seam between the front ends (src/loop.c for tl_*, src/ev/ for ev_*)
 * and the backends (one file each in backends/).
 *
 * A front end embeds one struct tl__base per loop.  The backend sees only the
 * base: it is told the interest set of each fd (modify), waits (poll), runs
 * completion ops (submit/cancel), and reports what happened through
 * tl__base_fd_event() and tl__base_op_done().  Watcher bookkeeping, ordering,
 * timers and the exactly-once rule live in the front ends.
 *
 * The base owns one eventfd (wakefd).  It is how other threads wake the loop:
 * tl__base_wake() (async sends, signal handlers) and tl__base_post() (the
 * blocking pool handing back finished jobs).  The base registers it with the
 * backend like any fd; the backend's poll reports it like any fd and the base
 * handles it without bothering the front end's fd table.
 */
#ifndef TL_BASE_H
#define TL_BASE_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include "triloop.h"

struct tl__base;

#define TL__SAME_FILE 0x40000000u   /* in modify's nev, see there */

struct tl__backend {
  const char *name;
  int id;                    /* enum tl_backend_id */
  /* Sets up kernel state; b->be and b->wakefd are set.  -errno on failure,
   * with a reason in b->why. */
  int (*init)(struct tl__base *b);
  void (*destroy)(struct tl__base *b);
  /* Interest of fd changes from oev to nev (TL_READ|TL_WRITE, 0 = none).
   * Returns 0 or -errno (-EBADF, ...).  modify(b, fd, 0, 0) says the fd is
   * about to be closed by the user: forget whatever is cached for it.
   * With oev 0, nev may carry TL__SAME_FILE: the front end vouches that fd
   * names the file it named when its interest last went to 0 (libev's
   * rule: a watcher restarted without being initialised again), so kernel
   * state kept since then may be reused. */
  int (*modify)(struct tl__base *b, int fd, unsigned oev, unsigned nev);
  /* Submits queued work, waits up to timeout seconds (0: do not block) and
   * reports events.  Returns 0 or -errno (EINTR is not an error). */
  int (*poll)(struct tl__base *b, double timeout);
  /* Completion ops.  submit may complete at once (through
   * tl__base_op_done) or later; cancel asks for an early end, once: a
   * backend whose kernel can miss a cancel keeps asking from poll() until
   * the op completes.  Each submitted op gets exactly one
   * tl__base_op_done. */
  int (*submit)(struct tl__base *b, tl_op *op);
  int (*cancel)(struct tl__base *b, tl_op *op);
  /* In a child after fork: rebuild kernel state, re-register every fd. */
  int (*fork)(struct tl__base *b);
  /* Optional: one line on how the backend is set up (ring flags, ...). */
  const char *(*describe)(struct tl__base *b);
  /* Optional, provided-buffer rings (tl_bufring).  bufring_setup returns 0
   * when the backend takes the ring natively: every buffer starts in the
   * kernel's hands, submit then gets TL_OP_RECV_MULTISHOT ops on it (each
   * non-final completion through tl__base_op_more, the final one through
   * tl__base_op_done with res <= 0), and bufring_recycle hands a buffer
   * back.  Any error, or NULL: the front end emulates with plain
   * TL_OP_RECV ops into buffers it picks. */
  int (*bufring_setup)(struct tl__base *b, tl_bufring *r);
  void (*bufring_free)(struct tl__base *b, tl_bufring *r);
  void (*bufring_recycle)(struct tl__base *b, tl_bufring *r, unsigned bid);
  /* Optional, registered buffers and files (tl_register_buffers, ...).
   * The front end validates every call and every fixed op against its own
   * copy in b->fixed, which is already updated when these run (and put
   * back if they fail); they only hand the tables to the kernel.  n == 0
   * unregisters.  update_files replaces n slots from off.  NULL: nothing
   * to hand over (fixed ops run as plain reads and writes). */
  int (*register_buffers)(struct tl__base *b, const struct iovec *iov, unsigned n);
  int (*register_files)(struct tl__base *b, const int *fds, unsigned n);
  int (*update_files)(struct tl__base *b, unsigned off, const int *fds, unsigned n);
};

/* Registered buffers and files: the front end's copy of what the caller
 * registered.  Every backend validates against it; uring's kernel tables
 * mirror it (and a forked child's ring is given it again). */
struct tl__fixed {
  struct iovec *iov;            /* registered buffers (NULL: none) */
  unsigned nbufs;
  int *fds;                     /* registered files by index, -1: empty */
  unsigned nfiles;
  uint32_t *file_of;            /* per fd: its index + 1, 0: not registered */
  unsigned nfile_of;
  unsigned bufs_busy;           /* fixed-buffer ops in flight */
  unsigned files_busy;          /* ops in flight through a registered file */
};

/* The registered file index of fd (for the ops that use it: read, write,
 * readv, writev, fsync, fdatasync and the fixed variants), or -1. */
static inline int tl__fixed_file(const struct tl__fixed *f, int fd) {
  if ((unsigned)fd >= f->nfile_of)
    return -1;
  return (int)f->file_of[fd] - 1;
}
/* src/fixed.c: tl_register_buffers() and the rest, for any front end.
 * Same returns as the public calls. */
int tl__fixed_register_buffers(struct tl__base *b, const struct iovec *iov, unsigned n);
int tl__fixed_unregister_buffers(struct tl__base *b);
int tl__fixed_register_files(struct tl__base *b, const int *fds, unsigned n);
int tl__fixed_update_files(struct tl__base *b, unsigned off, const int *fds, unsigned n);
int tl__fixed_unregister_files(struct tl__base *b);
/* fd is about to be closed: empty the slots that hold it. */
void tl__fixed_forget_fd(struct tl__base *b, int fd);
/* Frees the copy (tl__base_destroy). */
void tl__fixed_free(struct tl__base *b);

/* A fixed op's buffer: 0, -EINVAL (bad index), -EFAULT (out of range).
 * Inline: it runs on every fixed op. */
static inline int tl__fixed_check(const struct tl__fixed *f, const tl_op *op) {
  unsigned i = op->u.rw.buf_index;
  if (i >= f->nbufs || !f->iov[i].iov_base)
    return -EINVAL;
  uintptr_t lo = (uintptr_t)f->iov[i].iov_base, hi = lo + f->iov[i].iov_len;
  uintptr_t p = (uintptr_t)op->u.rw.buf;
  if (p < lo || p > hi || op->u.rw.len > hi - p)
    return -EFAULT;
  return 0;
}

static inline int tl__op_uses_fixed_file(int type) {
  return type == TL_OP_READ || type == TL_OP_WRITE || type == TL_OP_READV ||
         type == TL_OP_WRITEV || type == TL_OP_FSYNC || type == TL_OP_FDATASYNC ||
         type == TL_OP_READ_FIXED || type == TL_OP_WRITE_FIXED;
}

/* A provided-buffer ring (include/triloop.h).  The front end owns the
 * bookkeeping; a native backend keeps its kernel side in bstate. */
struct tl_bufring {
  struct tl__base *base;
  tl_bufring *next, *prev;      /* the loop's rings (freed at destroy) */
  unsigned char *mem;           /* nbufs * bufsize, page aligned */
  size_t bufsize, memsize;
  unsigned nbufs;
  unsigned avail;               /* buffers in the loop's hands */
  unsigned users;               /* multishot ops armed on it */
  int native;                   /* the backend took it (bufring_setup) */
  void *bstate;
  uint16_t group;               /* the backend's buffer group id */
  unsigned char *user;          /* per bid: 1 while in the caller's hands */
  uint32_t *freelist;           /* emulation: stack of free bids */
  unsigned nfree;
  /* Per bid: a delivered message waiting for its callback, queued in
   * order on the loop (next ring/bid). */
  struct tl__msrec { tl_op *op; tl_bufring *nring; uint32_t nbid; int32_t len; } *rec;
};

extern const struct tl__backend tl__backend_uring;
extern const struct tl__backend tl__backend_epoll;
extern const struct tl__backend tl__backend_threadpool;

struct tl__base {
  const struct tl__backend *be;
  void *bstate;                 /* the backend's private state */
  int wakefd;                   /* eventfd */
  atomic_int wake_pending;      /* an eventfd write is outstanding */
  atomic_int async_pending;     /* tl__base_wake() was called */

  /* Jobs finished by pool workers, handed back to this loop. */
  pthread_mutex_t post_lock;
  struct tl__job *post_head, *post_tail;
  atomic_int nposted;           /* jobs on the list: drain skips the lock at 0 */

  /* The front end's handlers. */
  void *owner;                  /* the tl_loop or ev_loop */
  void (*on_fd)(struct tl__base *b, int fd, unsigned revents);
  void (*on_op)(struct tl__base *b, tl_op *op, int64_t res);
  void (*on_wake)(struct tl__base *b);  /* async/signal wake, may be NULL */
  /* A multishot op delivered res bytes into buffer bid and stays armed. */
  void (*on_more)(struct tl__base *b, tl_op *op, int64_t res, unsigned bid);

  /* Counters (loop thread only). */
  uint64_t iterations, syscalls;

  struct tl__fixed fixed;       /* registered buffers and files */

  /* During a submit only: the op's time limit in seconds from now (< 0:
   * none).  A backend that times the op out by itself (a linked timeout)
   * sets op_limit_taken; otherwise the front end's timer does it. */
  double op_limit;
  int op_limit_taken;

  unsigned flags;               /* the loop's TL_FLAG_* (TRILOOP_FILE_NOWAIT included) */
  /* TL_FLAG_FILE_NOWAIT: inline tries left this iteration, the budget per
   * iteration, and the per-fd cache of tl__base_nowait_fd(). */
  unsigned nowait_left, nowait_budget;
  unsigned char *nowait_fd;
  unsigned nnowait_fd;
  char why[160];                /* last backend setup failure, or auto's reason */
};

/* Chooses and sets up a backend from flags (and the environment unless
 * TL_FLAG_NOENV or AT_SECURE).  On failure b->why says why. */
int tl__base_init(struct tl__base *b, unsigned flags);
/* Tears down the backend and the wakefd.  Ops must be drained first. */
void tl__base_destroy(struct tl__base *b);
int tl__base_fork(struct tl__base *b);

/* Backend side: report readiness of fd (TL_READ|TL_WRITE|TL_ERROR). */
void tl__base_fd_event(struct tl__base *b, int fd, unsigned revents);
/* Backend side: an op finished with res. */
static inline void tl__base_op_done(struct tl__base *b, tl_op *op, int64_t res) {
  b->on_op(b, op, res);
}

/* Backend side: a non-final completion of a TL_OP_RECV_MULTISHOT op (res >
 * 0 bytes in buffer bid of op->u.ms.ring); the op stays in flight. */
static inline void tl__base_op_more(struct tl__base *b, tl_op *op, int64_t res, unsigned bid) {
  b->on_more(b, op, res, bid);
}

/* Any thread, async-signal-safe: make the loop return from its wait. */
void tl__base_wake(struct tl__base *b);
/* Pool workers: hand a finished job back; its done() runs on the loop. */
void tl__base_post(struct tl__base *b, struct tl__job *job);
/* Loop thread: run done() of every posted job (called for wakefd events). */
void tl__base_drain(struct tl__base *b);

/* TL_FLAG_FILE_NOWAIT: is fd a buffered regular file (not O_DIRECT),
 * worth an inline RWF_NOWAIT try?  Cached per fd until
 * tl__base_nowait_forget (the fd is closed through the loop). */
int tl__base_nowait_fd(struct tl__base *b, int fd);
void tl__base_nowait_forget(struct tl__base *b, int fd);
/* The inline try for a read/write op on such an fd, budget permitting:
 * returns 1 when the op completed (tl__base_op_done was called), 0 when it
 * must go to the pool. */
int tl__base_try_nowait(struct tl__base *b, tl_op *op);
/* src/ops_sync.c: the op's syscall with RWF_NOWAIT; -EAGAIN if it would
 * block. */
int64_t tl__op_run_nowait(tl_op *op);
/* src/pool.c: counts an inline hit (hit = 1) or an EAGAIN (hit = 0). */
void tl__pool_count_nowait(int hit);

/* Backend helpers shared by several backends. */
int tl__fd_is_file(int fd);    /* regular file or block device: 1, else 0, -errno */
int tl__set_nonblock(int fd);

/* Blocking syscall for an op, as the pool runs it (src/ops_sync.c).
 * Returns the result or -errno. */
int64_t tl__op_run_blocking(tl_op *op);
/* The same, never blocking: -EAGAIN when the fd is not ready. */
int64_t tl__op_run_nonblocking(tl_op *op);
/* Sendmsg, recvmsg, send_zc and the older socket ops: they may wait for
 * their peer forever, so the pool runs them as cancellable waits. */
int tl__op_is_socket_op(int type);
/* statx, ftruncate, fallocate, unlinkat, mkdirat, renameat: pool work. */
int tl__op_is_fs_op(int type);
/* A splice on a pool worker: nonblocking tries and tl__pool_wait on the
 * side that blocks, so that a cancel interrupts it. */
int64_t tl__op_run_splice_waiting(struct tl__job *job, tl_op *op);
/* The same; nb != 0: the fd is known to be O_NONBLOCK (no fcntl). */
int64_t tl__op_try(tl_op *op, int nb);
/* TL_READ or TL_WRITE: which readiness a socket op waits for. */
unsigned tl__op_wants(const tl_op *op);
/*
 * Running an op on a pool worker, the same on every backend: the op's
 * pool job class, TL__POOL_WAIT (pool.h) for socket ops and splice, which
 * may wait for their peer forever, else TL__POOL_WORK; and the runner, from
 * job->work: -ECANCELED if already cancelled, socket ops, splice and
 * reads/writes of pipes, ttys and sockets as nonblocking tries with a
 * cancellable tl__pool_wait between them (a closed fd: -EBADF), everything
 * else as the blocking syscall.  file: 1 when the caller already knows
 * op->fd is a regular file or block device, -1 to look.
 */
int tl__op_pool_class(const tl_op *op);
int64_t tl__op_run_on_worker(struct tl__job *job, tl_op *op, int file);

/* Monotonic clock in seconds. */
double tl__time(void);

/* Reading environment variables only when not setuid (AT_SECURE). */
const char *tl__getenv(const char *name);
/* The same for one loop: NULL also when it was created with TL_FLAG_NOENV. */
const char *tl__base_getenv(const struct tl__base *b, const char *name);
/* A numeric TRILOOP_* variable: unset or empty leaves *out alone and
 * returns 0; anything but a decimal integer in lo..hi is -EINVAL, with the
 * variable and its range written into why (may be NULL). */
int tl__env_uint(const char *name, unsigned long lo, unsigned long hi, unsigned long *out,
                 char *why, size_t whylen);
/* Every numeric TRILOOP_* variable checked with tl__env_uint: 0 or -EINVAL. */
int tl__env_check(char *why, size_t whylen);

#endif
