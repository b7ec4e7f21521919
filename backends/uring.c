/*
 * The io_uring backend.
 *
 * One ring per loop.  Completion ops become SQEs whose user_data is the tl_op
 * itself, so nothing is allocated per op.  Readiness becomes oneshot
 * POLL_ADDs, re-armed at the start of the next poll() for every fd still
 * interested: a poll armed on an fd that is already ready completes during
 * the submit, so the front end sees level-triggered readiness, as from epoll
 * without EPOLLET.  (Multishot poll is edge-like: it only posts on new
 * wakeups, so data left unread would never be reported again.)
 *
 * Each poll() makes one io_uring_enter that submits everything queued since
 * the previous one and waits with the loop's timeout (EXT_ARG), then reaps
 * the whole CQ in bulk.  submit(), modify() and cancel() only fill SQEs; they
 * enter the kernel only when the SQ is full.
 *
 * user_data carries a tag in its low 3 bits (tl_op is pointer-aligned):
 *   TAG_OP        the tl_op pointer itself
 *   TAG_POLL      fd and the generation of its slot: a completion for an
 *                 abandoned poll (interest removed, fd closed and its number
 *                 reused) carries an old generation and is dropped
 *   TAG_INTERNAL  cancels, poll removals and updates, timeouts: ignored
 * No CQE skipping; the one multishot request (tl_recv_multishot) posts
 * CQEs with IORING_CQE_F_MORE until its last, so an SQE is out until a CQE
 * without F_MORE: that is what sqes_out counts.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"   /* TL_FAULT_INJECTION */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "base.h"
#include "pool.h"
#include "uring.h"
#ifdef TL_FAULT_INJECTION
/* src/fault.c's hook; weak because libtriloop-ev links these objects
 * without fault injection. */
__attribute__((weak)) int tl__fault_uring_cancel_miss(int fd);
#endif

enum { TAG_OP = 0, TAG_POLL = 1, TAG_INTERNAL = 2, TAG_MASK = 7 };
_Static_assert(_Alignof(tl_op) >= 8, "op pointers need 3 free low bits");

#define GEN_MASK 0x1fffffffu       /* 29 bits of generation above a 32-bit fd */
#define MAX_RW 0x7ffff000u         /* the most read(2) moves in one call */
#define CQE_BATCH 64

/* op->tl__gen while in flight: the loop's epoch (a multiple of 32, bumped
 * at each fork) and five bits of our own.  (Not tl__res: the pool's connect
 * path keeps its own state there.) */
enum {
  ROUTE_RING = 0,
  ROUTE_POOL = 1,      /* handed to the blocking pool */
  OP_COUNTED = 2,      /* cancelled; counted in its fd's slot */
  OP_PARKED = 4,       /* a close waiting for the cancelled ops on its fd */
  OP_QCANCEL = 8,      /* on the list of ops being cancelled in the ring */
  OP_ASKED = 16,       /* its cancel SQE went out in the current round */
  OP_LINKED = 32,      /* a LINK_TIMEOUT follows it: -ECANCELED means timed out */
  OP_ZCPLAIN = 64,     /* a send_zc the socket refused: resent as a plain send */
  OP_CANCELLED = 128,  /* the front end asked a cancel (user, close, destroy) */
  EPOCH_STEP = 256
};
#define OP_EPOCH(op) ((op)->tl__gen & ~(uint32_t)(EPOCH_STEP - 1))

struct slot {
  uint32_t gen;
  uint8_t want;      /* interest, TL_READ|TL_WRITE */
  uint8_t armed;     /* mask of the poll the kernel holds (0: none) */
  uint8_t queued;    /* on the dirty list */
  uint8_t failed;    /* the kernel refused the fd: no re-arm until modify */
  uint32_t since;    /* polls counted when the interest went to 0 */
  /* tl_close() cancels every op on the fd, then submits the close, and the
   * cancelled ops must be called back first.  In the ring the close would
   * finish first (inline, while cancellations post through task work), so
   * a close waits here until the cancelled ops of its fd have completed. */
  uint32_t cancelling;
  tl_op *closes;
  uint8_t nonblock;  /* we set O_NONBLOCK on this socket (until forgotten) */
};

struct uring {
  struct io_uring ring;
  unsigned setup_flags, features;
  unsigned enter_fd, enter_flags;  /* registered ring index, or the fd */
  int enabled;                     /* not R_DISABLED (any more) */
  int regring_tried;
  uint64_t owner;                  /* thread_token() of the thread that registered */
  int taskrun_flag;                /* the kernel sets IORING_SQ_TASKRUN */
  int defer;                       /* DEFER_TASKRUN: CQEs need an enter */
  unsigned iowq[2];                /* io-wq bound we set (0: untouched) */
  int iowq_ok;
  unsigned char wish[TL_OP__COUNT];   /* not switched off by the user */
  unsigned char native[TL_OP__COUNT]; /* wished and probed */
  int link_timeout;                /* IORING_OP_LINK_TIMEOUT is there (5.5) */
  uint16_t next_group;             /* buffer group ids handed out so far */
  uint32_t epoch;                  /* += EPOCH_STEP by fork: older ops are dead */
  unsigned sqes_out;               /* SQEs filled whose CQE is not reaped */
  unsigned ops_out;                /* of those, ops */
  int reaping, in_poll, draining;
  unsigned reported;               /* events and ops handed up this poll() */
  uint32_t npolls;                 /* poll() calls so far */
  struct slot *slots;
  unsigned nslots;
  int *dirty;                      /* fds whose poll needs (re)arming */
  unsigned ndirty;
  /* Ring ops with a cancel asked for and no completion yet (OP_QCANCEL),
   * kept until they complete: a cancel can miss (the kernel may hand the
   * request to an io-wq worker just after the cancel looked for it), so
   * the ones still there are asked again at reask_at, backing off. */
  tl_op *cancel_head, *cancel_tail;
  unsigned cancel_unasked;         /* on the list without OP_ASKED */
  double reask_at, reask_gap;
  struct __kernel_timespec ts;     /* timeout SQE's (kernels without EXT_ARG) */
  pid_t pid;
  /* Settings read once from the environment (kept for fork). */
  unsigned entries;
  int no_defer, no_coop, no_single, no_regring;
  long iowq_max;
  char desc[1024];
};

/* ------------------------------------------------------------------ */
/* Settings                                                            */
/* ------------------------------------------------------------------ */

static const char *const op_names[TL_OP__COUNT] = {
  [TL_OP_READ] = "read", [TL_OP_WRITE] = "write", [TL_OP_READV] = "readv",
  [TL_OP_WRITEV] = "writev", [TL_OP_FSYNC] = "fsync",
  [TL_OP_FDATASYNC] = "fdatasync", [TL_OP_OPENAT] = "openat",
  [TL_OP_CLOSE] = "close", [TL_OP_ACCEPT] = "accept",
  [TL_OP_CONNECT] = "connect", [TL_OP_RECV] = "recv", [TL_OP_SEND] = "send",
  [TL_OP_RECV_MULTISHOT] = "recv_multishot",
  [TL_OP_WORK] = "work",   /* never reaches a backend: the loop runs it on the pool */
  [TL_OP_READ_FIXED] = "read_fixed", [TL_OP_WRITE_FIXED] = "write_fixed",
  [TL_OP_SHUTDOWN] = "shutdown", [TL_OP_STATX] = "statx", [TL_OP_FTRUNCATE] = "ftruncate",
  [TL_OP_FALLOCATE] = "fallocate", [TL_OP_UNLINKAT] = "unlinkat", [TL_OP_MKDIRAT] = "mkdirat",
  [TL_OP_RENAMEAT] = "renameat", [TL_OP_SENDMSG] = "sendmsg", [TL_OP_RECVMSG] = "recvmsg",
  [TL_OP_SEND_ZC] = "send_zc", [TL_OP_SPLICE] = "splice",
};

/* IORING_OP_FTRUNCATE (Linux 6.9) is newer than some liburing headers
 * (Debian 12's 2.3).  Opcode numbers are kernel ABI and the probe tells
 * whether the running kernel has it, so the number is safe to name. */
#define TL__OP_FTRUNCATE 55

static const int op_opcode[TL_OP__COUNT] = {
  [TL_OP_READ] = IORING_OP_READ, [TL_OP_WRITE] = IORING_OP_WRITE,
  [TL_OP_READV] = IORING_OP_READV, [TL_OP_WRITEV] = IORING_OP_WRITEV,
  [TL_OP_FSYNC] = IORING_OP_FSYNC, [TL_OP_FDATASYNC] = IORING_OP_FSYNC,
  [TL_OP_OPENAT] = IORING_OP_OPENAT, [TL_OP_CLOSE] = IORING_OP_CLOSE,
  [TL_OP_ACCEPT] = IORING_OP_ACCEPT, [TL_OP_CONNECT] = IORING_OP_CONNECT,
  [TL_OP_RECV] = IORING_OP_RECV, [TL_OP_SEND] = IORING_OP_SEND,
  [TL_OP_RECV_MULTISHOT] = IORING_OP_RECV,
  [TL_OP_WORK] = IORING_OP_NOP,
  [TL_OP_READ_FIXED] = IORING_OP_READ_FIXED, [TL_OP_WRITE_FIXED] = IORING_OP_WRITE_FIXED,
  [TL_OP_SHUTDOWN] = IORING_OP_SHUTDOWN, [TL_OP_STATX] = IORING_OP_STATX,
  [TL_OP_FTRUNCATE] = TL__OP_FTRUNCATE, [TL_OP_FALLOCATE] = IORING_OP_FALLOCATE,
  [TL_OP_UNLINKAT] = IORING_OP_UNLINKAT, [TL_OP_MKDIRAT] = IORING_OP_MKDIRAT,
  [TL_OP_RENAMEAT] = IORING_OP_RENAMEAT, [TL_OP_SENDMSG] = IORING_OP_SENDMSG,
  [TL_OP_RECVMSG] = IORING_OP_RECVMSG, [TL_OP_SEND_ZC] = IORING_OP_SEND_ZC,
  [TL_OP_SPLICE] = IORING_OP_SPLICE,
};

/* "1", "yes", "on": a switch-off variable is set. */
static int env_on(struct tl__base *b, const char *name) {
  const char *v = tl__base_getenv(b, name);
  return v && (*v == '1' || *v == 'y' || *v == 'Y' || !strcmp(v, "on"));
}

static long env_long(struct tl__base *b, const char *name, long dflt, long lo, long hi) {
  const char *v = tl__base_getenv(b, name);
  if (!v || !*v)
    return dflt;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < lo)
    return dflt;
  return n > hi ? hi : n;
}

/* TRILOOP_URING_POOL_OPS=recv,send (or "all"): ops kept off the ring, the
 * per-opcode switch-off for kernels with a bug behind one opcode. */
static void env_pool_ops(struct tl__base *b, struct uring *u) {
  const char *v = tl__base_getenv(b, "TRILOOP_URING_POOL_OPS");
  if (!v)
    return;
  while (*v) {
    size_t n = strcspn(v, ", ");
    for (int t = 1; t < TL_OP__COUNT; t++)
      if ((n == 3 && !strncmp(v, "all", 3)) ||
          (n == strlen(op_names[t]) && !strncmp(v, op_names[t], n)))
        u->wish[t] = 0;
    v += n;
    v += strspn(v, ", ");
  }
}

/* ------------------------------------------------------------------ */
/* Ring setup                                                          */
/* ------------------------------------------------------------------ */

#define F_SINGLE IORING_SETUP_SINGLE_ISSUER
#define F_DEFER IORING_SETUP_DEFER_TASKRUN
#define F_COOP (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG)
#define F_BASE (IORING_SETUP_CLAMP | IORING_SETUP_CQSIZE)

/* Best first; the kernel answers EINVAL for flags it does not know, and we
 * step down.  Single issuer + deferred task running is what makes sockets
 * competitive with epoll (PITFALLS 7); COOP at least avoids the IPIs. */
/* A single-issuer ring belongs to the task that creates it, unless it is
 * created disabled: then to the task that enables it.  libev lets a loop be
 * created in one thread and run in another (h2load does), so we enable at
 * the first enter, from the thread that runs the loop. */
#define F_SINGLE_LATE (F_SINGLE | IORING_SETUP_R_DISABLED)
static const unsigned setup_steps[] = {
  F_SINGLE_LATE | F_DEFER | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL | F_BASE,
  F_SINGLE_LATE | F_DEFER | IORING_SETUP_SUBMIT_ALL | F_BASE,
  F_SINGLE_LATE | F_COOP | IORING_SETUP_SUBMIT_ALL | F_BASE,
  F_COOP | IORING_SETUP_SUBMIT_ALL | F_BASE,
  IORING_SETUP_SUBMIT_ALL | F_BASE,
  F_BASE,
  0,
};

static void explain(struct tl__base *b, struct uring *u, int err) {
  switch (err) {
  case -EPERM: {
    long dis = -1;
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
    if (f) {
      if (fscanf(f, "%ld", &dis) != 1)
        dis = -1;
      fclose(f);
    }
    if (dis == 2)
      snprintf(b->why, sizeof b->why,
               "io_uring_setup: not permitted (kernel.io_uring_disabled=2)");
    else if (dis == 1)
      snprintf(b->why, sizeof b->why,
               "io_uring_setup: not permitted (kernel.io_uring_disabled=1 and "
               "not in kernel.io_uring_group)");
    else
      snprintf(b->why, sizeof b->why,
               "io_uring_setup: not permitted (a seccomp filter, as in "
               "container default profiles; kernel.io_uring_disabled=%ld)", dis);
    break;
  }
  case -ENOSYS:
    snprintf(b->why, sizeof b->why,
             "io_uring_setup: not implemented (kernel without io_uring)");
    break;
  case -ENOMEM: {
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      snprintf(b->why, sizeof b->why,
               "io_uring_setup: no memory for the ring (RLIMIT_MEMLOCK=%llu KiB "
               "is charged on kernels before 5.12; try fewer "
               "TRILOOP_URING_ENTRIES than %u)",
               (unsigned long long)rl.rlim_cur / 1024, u->entries);
    else
      snprintf(b->why, sizeof b->why, "io_uring_setup: no memory for the ring");
    break;
  }
  default:
    snprintf(b->why, sizeof b->why, "io_uring_setup: %s", strerror(-err));
  }
}

static void describe(struct uring *u) {
  static const struct { unsigned f; const char *n; } fl[] = {
    { IORING_SETUP_SINGLE_ISSUER, "single_issuer" },
    { IORING_SETUP_DEFER_TASKRUN, "defer_taskrun" },
    { IORING_SETUP_COOP_TASKRUN, "coop_taskrun" },
    { IORING_SETUP_TASKRUN_FLAG, "taskrun_flag" },
    { IORING_SETUP_SUBMIT_ALL, "submit_all" },
    { IORING_SETUP_CLAMP, "clamp" },
    { IORING_SETUP_CQSIZE, "cqsize" },
  };
  char flags[160] = "", pool[256] = "", native[320] = "";
  size_t n = 0, p = 0, q = 0;
  for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
    if (u->setup_flags & fl[i].f)
      n += (size_t)snprintf(flags + n, sizeof flags - n, "%s%s", n ? "|" : "", fl[i].n);
  for (int t = 1; t < TL_OP__COUNT; t++)
    if (t == TL_OP_WORK)
      continue;
    else if (!u->native[t])
      p += (size_t)snprintf(pool + p, sizeof pool - p, "%s%s", p ? "," : "", op_names[t]);
    else
      q += (size_t)snprintf(native + q, sizeof native - q, "%s%s", q ? "," : "", op_names[t]);
  char iowq[48];
  if (u->iowq_ok)
    snprintf(iowq, sizeof iowq, "%u/%u", u->iowq[0], u->iowq[1]);
  else
    snprintf(iowq, sizeof iowq, "%s", u->iowq_max == 0 ? "kernel default" : "unbounded (refused)");
  snprintf(u->desc, sizeof u->desc,
           "io_uring sq %u cq %u, setup %s, io-wq max %s, %s ring fd, "
           "wait %s, pool ops: %s, native ops: %s",
           u->ring.sq.ring_entries, u->ring.cq.ring_entries,
           n ? flags : "none", iowq,
           u->no_regring ? "plain" : "registered",
           (u->features & IORING_FEAT_EXT_ARG) ? "ext_arg" : "timeout sqe",
           p ? pool : "none", q ? native : "none");
}

/* Creates the ring and everything that hangs off it.  Used by init and by
 * fork (the child's new ring). */
static int ring_setup(struct tl__base *b, struct uring *u) {
  int r = -EINVAL;
  for (size_t i = 0; i < sizeof setup_steps / sizeof setup_steps[0]; i++) {
    unsigned f = setup_steps[i];
    if ((u->no_defer && (f & F_DEFER)) || (u->no_coop && (f & F_COOP)) ||
        (u->no_single && (f & F_SINGLE)))
      continue;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = f;
    /* A generous CQ: readiness, ops and cancels all post CQEs. */
    p.cq_entries = u->entries * 4;
    b->syscalls++;
    r = io_uring_queue_init_params(u->entries, &u->ring, &p);
    if (r == 0) {
      u->setup_flags = p.flags;
      u->features = p.features;
      break;
    }
    if (r != -EINVAL)
      break;    /* EPERM, ENOSYS, ENOMEM: other flags will not help */
  }
  if (r < 0) {
    explain(b, u, r);
    return r;
  }
  u->defer = !!(u->setup_flags & IORING_SETUP_DEFER_TASKRUN);
  u->taskrun_flag = !!(u->setup_flags & IORING_SETUP_TASKRUN_FLAG);
  u->enter_fd = (unsigned)u->ring.ring_fd;
  u->enter_flags = 0;

  u->enabled = !(u->setup_flags & IORING_SETUP_R_DISABLED);
  u->regring_tried = 0;
  u->owner = 0;   /* the next enter registers the new ring fd */

  /* Bound io-wq (PITFALLS 9): buffered writes and unpollable files punted
   * to kernel workers could otherwise spawn hundreds of threads. */
  u->iowq_ok = 0;
  if (u->iowq_max > 0) {
    unsigned v[2] = { (unsigned)u->iowq_max, (unsigned)u->iowq_max };
    b->syscalls++;
    if (io_uring_register_iowq_max_workers(&u->ring, v) == 0) {
      u->iowq[0] = u->iowq[1] = (unsigned)u->iowq_max;
      u->iowq_ok = 1;
    }
  }

  /* Opcodes once; whatever the kernel lacks goes to the blocking pool. */
  b->syscalls++;
  struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
  for (int t = 1; t < TL_OP__COUNT; t++) {
    if (probe)
      u->native[t] = u->wish[t] && io_uring_opcode_supported(probe, op_opcode[t]);
    else   /* before 5.6 there is no probe; only the 5.1 opcodes are sure */
      u->native[t] = u->wish[t] && (t == TL_OP_READV || t == TL_OP_WRITEV ||
                                    t == TL_OP_FSYNC || t == TL_OP_FDATASYNC);
  }
  /* Multishot recv with provided buffer rings came in 6.0, together with
   * SEND_ZC: the opcode is the cheapest version test there is. */
  if (!probe || !io_uring_opcode_supported(probe, IORING_OP_SEND_ZC))
    u->native[TL_OP_RECV_MULTISHOT] = 0;
  /* Deadlines ride on a linked timeout where there is one; otherwise the
   * front end's timer and a cancel. */
  u->link_timeout = probe && io_uring_opcode_supported(probe, IORING_OP_LINK_TIMEOUT);
  if (probe)
    io_uring_free_probe(probe);
  u->pid = getpid();
  return 0;
}

/* ------------------------------------------------------------------ */
/* SQ and CQ                                                           */
/* ------------------------------------------------------------------ */

/* Makes the SQEs filled so far visible to the kernel; returns how many it
 * has not consumed yet. */
static unsigned sq_publish(struct uring *u) {
  struct io_uring_sq *sq = &u->ring.sq;
  if (sq->sqe_head != sq->sqe_tail) {
    sq->sqe_head = sq->sqe_tail;
    io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
  }
  return sq->sqe_tail - IO_URING_READ_ONCE(*sq->khead);
}

/* Threads are told apart by a token of their own, not by pthread_self():
 * glibc hands a joined thread's descriptor (and so its pthread_t) to the
 * next thread it creates, which would then enter with the registered ring
 * index of a thread that is gone (the kernel answers EINVAL).  A fresh
 * thread's TLS starts zeroed, so a new token is drawn on its first enter. */
static _Atomic uint64_t token_next;
static __thread uint64_t token_mine;

static inline uint64_t thread_token(void) {
  uint64_t t = token_mine;
  if (__builtin_expect(!t, 0))
    t = token_mine = ++token_next;
  return t;
}

/* The first enter from a thread: enable a ring created disabled (it becomes
 * this thread's), and register the ring fd for this thread (a registered
 * index is per thread).  A thread that enters later registers the fd for
 * itself in turn (the previous one's index means nothing to it); if that
 * fails it enters by the plain fd. */
static int adopt_thread(struct tl__base *b, struct uring *u) {
  if (!u->enabled) {
    b->syscalls++;
    int r = io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    if (r < 0)
      return r;   /* stays disabled: the next enter tries again */
    u->enabled = 1;
  }
  if (u->regring_tried && u->owner == thread_token())
    return 0;
  u->regring_tried = 1;
  u->owner = thread_token();
  u->enter_fd = (unsigned)u->ring.ring_fd;
  u->enter_flags = 0;
  /* Entering through a registered ring index skips an fget per enter.  It
   * is registered here rather than with liburing's helper, which keeps one
   * index per ring and refuses a second thread's (EEXIST). */
  if (!u->no_regring) {
    struct io_uring_rsrc_update up = { .offset = -1U, .data = (uint64_t)u->ring.ring_fd };
    b->syscalls++;
    if (io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_RING_FDS, &up, 1) == 1) {
      u->enter_fd = up.offset;
      u->enter_flags = IORING_ENTER_REGISTERED_RING;
    }
  }
  return 0;
}

/* A registered ring index holds a reference to the ring until it is
 * unregistered, which only the thread that registered it can do: that
 * thread gives it back when it destroys the loop (any other thread's
 * registration goes when that thread exits). */
static void unregister_ring(struct tl__base *b, struct uring *u) {
  if (!(u->enter_flags & IORING_ENTER_REGISTERED_RING) || u->pid != getpid() ||
      u->owner != thread_token())
    return;
  struct io_uring_rsrc_update up = { .offset = u->enter_fd };
  b->syscalls++;
  io_uring_register((unsigned)u->ring.ring_fd, IORING_UNREGISTER_RING_FDS, &up, 1);
  u->enter_fd = (unsigned)u->ring.ring_fd;
  u->enter_flags = 0;
}

static int enter(struct tl__base *b, struct uring *u, unsigned submit,
                 unsigned min, unsigned flags, void *arg, size_t argsz) {
  if (__builtin_expect(!u->enabled || u->owner != thread_token(), 0)) {
    int r = adopt_thread(b, u);
    if (r < 0)
      return r;
  }
  b->syscalls++;
  int r = io_uring_enter2(u->enter_fd, submit, min, flags | u->enter_flags,
                          arg, argsz);
  return r;
}

static void reap(struct tl__base *b, struct uring *u);
static void ms_ended(struct tl__base *b, struct uring *u, tl_op *op, int res, unsigned flags);
static void op_finished(struct tl__base *b, struct uring *u, tl_op *op, int64_t res);
static void zc_ended(struct tl__base *b, struct uring *u, tl_op *op, int res, unsigned flags);

/* An SQE to fill, flushing the SQ to the kernel when it is full (never
 * dropping anything).  NULL only if the kernel keeps refusing to take
 * SQEs (out of memory for requests, or an old kernel's EBUSY on CQ
 * overflow while we may not reap). */
static struct io_uring_sqe *get_sqe(struct tl__base *b, struct uring *u) {
  struct io_uring_sqe *sqe = _io_uring_get_sqe(&u->ring);
  for (int tries = 0; !sqe && tries < 4; tries++) {
    unsigned n = sq_publish(u);
    /* GETEVENTS also moves overflowed CQEs back into the CQ ring. */
    int r = enter(b, u, n, 0, tries ? IORING_ENTER_GETEVENTS : 0, NULL, _NSIG / 8);
    /* Reaping calls into the front end, which is only safe from poll(). */
    if ((r == -EBUSY || r == -EAGAIN || tries) && u->in_poll && !u->reaping)
      reap(b, u);
    sqe = _io_uring_get_sqe(&u->ring);
  }
  if (sqe)
    u->sqes_out++;
  return sqe;
}

static inline uint64_t poll_ud(int fd, uint32_t gen) {
  return ((uint64_t)(gen & GEN_MASK) << 35) | ((uint64_t)(uint32_t)fd << 3) | TAG_POLL;
}

static inline unsigned poll_mask(unsigned ev) {
  return (ev & TL_READ ? POLLIN : 0) | (ev & TL_WRITE ? POLLOUT : 0);
}

static void queue_dirty(struct uring *u, int fd) {
  struct slot *s = &u->slots[fd];
  if (!s->queued) {
    s->queued = 1;
    u->dirty[u->ndirty++] = fd;   /* capacity is nslots: never overflows */
  }
}

static void on_poll_cqe(struct tl__base *b, struct uring *u, uint64_t ud, int res) {
  int fd = (int)(uint32_t)(ud >> 3);
  uint32_t gen = (uint32_t)(ud >> 35);
  if ((unsigned)fd >= u->nslots || u->slots[fd].gen != gen)
    return;    /* an abandoned poll: interest gone or the fd reused */
  struct slot *s = &u->slots[fd];
  s->armed = 0;
  if (u->draining || !s->want)
    return;    /* a lingering poll (see uring_modify): nobody asked */
  if (res == -ECANCELED) {   /* the kernel dropped it (e.g. task exit work) */
    if (s->want)
      queue_dirty(u, fd);
    return;
  }
  if (res < 0) {
    /* EBADF and the like: the front end stops the fd's watchers.  No
     * re-arm until it changes the interest again. */
    s->failed = 1;
    u->reported++;
    tl__base_fd_event(b, fd, TL_ERROR | s->want);
    return;
  }
  unsigned ev = 0;
  if (res & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))
    ev |= TL_READ;
  if (res & (POLLOUT | POLLHUP | POLLERR))
    ev |= TL_WRITE;
  if (res & POLLNVAL)
    ev = TL_ERROR | s->want;
  /* Re-armed at the next poll(), after the front end has had its chance
   * to consume the readiness: that is what keeps it level-triggered. */
  if (s->want)
    queue_dirty(u, fd);
  if (ev) {
    u->reported++;
    tl__base_fd_event(b, fd, ev);
  }
}

/* Takes the CQEs in batches: copy, hand the slots back to the kernel, then
 * dispatch.  Dispatching calls into the front end, which may fill SQEs or
 * even flush the SQ; none of that can disturb a batch already copied. */
static void reap(struct tl__base *b, struct uring *u) {
  struct { uint64_t ud; int32_t res; uint32_t flags; } batch[CQE_BATCH];
  struct io_uring_cq *cq = &u->ring.cq;
  u->reaping++;
  for (;;) {
    unsigned head = *cq->khead;
    unsigned n = io_uring_smp_load_acquire(cq->ktail) - head;
    if (!n)
      break;
    if (n > CQE_BATCH)
      n = CQE_BATCH;
    for (unsigned i = 0; i < n; i++) {
      const struct io_uring_cqe *c = &cq->cqes[(head + i) & cq->ring_mask];
      batch[i].ud = c->user_data;
      batch[i].res = c->res;
      batch[i].flags = c->flags;
    }
    io_uring_cq_advance(&u->ring, n);
    for (unsigned i = 0; i < n; i++) {
      uint64_t ud = batch[i].ud;
      if (!(batch[i].flags & IORING_CQE_F_MORE))
        u->sqes_out--;
      switch (ud & TAG_MASK) {
      case TAG_OP: {
        tl_op *op = (tl_op *)(uintptr_t)ud;
        if ((batch[i].flags & IORING_CQE_F_MORE) && op->type == TL_OP_SEND_ZC) {
          /* The send's result; the notification that the kernel let go
           * of the buffer follows, and only then may the caller reuse it. */
          op->tl__res = batch[i].res;
          break;
        }
        if (batch[i].flags & IORING_CQE_F_MORE) {
          /* A message of a multishot recv; the op stays armed. */
          if (!u->draining && (batch[i].flags & IORING_CQE_F_BUFFER)) {
            u->reported++;
            tl__base_op_more(b, op, batch[i].res,
                             batch[i].flags >> IORING_CQE_BUFFER_SHIFT);
          }
          break;
        }
        u->ops_out--;
        if (!u->draining) {
          u->reported++;
          if (op->type == TL_OP_RECV_MULTISHOT)
            ms_ended(b, u, op, batch[i].res, batch[i].flags);
          else if (op->type == TL_OP_SEND_ZC)
            zc_ended(b, u, op, batch[i].res, batch[i].flags);
          else
            op_finished(b, u, op, batch[i].res);
        }
        break;
      }
      case TAG_POLL:
        on_poll_cqe(b, u, ud, batch[i].res);
        break;
      default:
        break;    /* cancel, poll remove/update, timeout */
      }
    }
  }
  u->reaping--;
}

/* ------------------------------------------------------------------ */
/* Readiness                                                           */
/* ------------------------------------------------------------------ */

static int grow_slots(struct uring *u, int fd) {
  unsigned n = u->nslots ? u->nslots : 64;
  while (n <= (unsigned)fd)
    n *= 2;
  struct slot *s = realloc(u->slots, n * sizeof *s);
  if (!s)
    return -ENOMEM;
  u->slots = s;
  memset(s + u->nslots, 0, (n - u->nslots) * sizeof *s);
  int *d = realloc(u->dirty, n * sizeof *d);
  if (!d)
    return -ENOMEM;     /* slots grew; nslots did not: still consistent */
  u->dirty = d;
  u->nslots = n;
  return 0;
}

/* Takes the armed poll back from the kernel.  Under a new generation its
 * completion (already posted, or if no SQE could be had) is dropped. */
static void drop_poll(struct tl__base *b, struct uring *u, int fd) {
  struct slot *s = &u->slots[fd];
  struct io_uring_sqe *sqe = get_sqe(b, u);
  if (sqe) {
    io_uring_prep_poll_remove(sqe, poll_ud(fd, s->gen));
    io_uring_sqe_set_data64(sqe, TAG_INTERNAL);
  }
  s->armed = 0;
  s->gen = (s->gen + 1) & GEN_MASK;
}

/*
 * A poll the kernel holds is never updated in place: an update
 * (IORING_POLL_UPDATE_EVENTS) does not look at readiness again, so newly
 * wanted bits that are already ready would never be reported.  A change of
 * interest drops it (POLL_REMOVE) and arms a new one at the next poll().
 *
 * Interest going to 0 (the fd's last watcher stopped) leaves the poll armed
 * for a while, as epoll leaves a registration (libev's lazy removal): a
 * watcher restarted on the same file before then costs no SQE at all.  But
 * an io_uring poll holds its own reference to the file, so a poll left
 * armed after the user closed the fd would keep the file open (a socket's
 * peer would not see the close) and go on watching that file even once the
 * number names another.  So the lingering poll is dropped by the first
 * poll() that will sleep or the second one after the stop, whichever comes
 * first; at once when the front end says the fd is about to be closed
 * (modify(fd, 0, 0)); and it is only reused when the front end vouches for
 * the file (TL__SAME_FILE: a watcher restarted without tl_io_init, libev's
 * rule for ev_io_set).  Telling a reused number apart otherwise would cost
 * an fstat per start, and even that cannot tell two eventfds apart.
 */
static int uring_modify(struct tl__base *b, int fd, unsigned oev, unsigned nev) {
  struct uring *u = b->bstate;
  int same = (nev & TL__SAME_FILE) != 0;
  if (fd < 0)
    return -EBADF;
  nev &= TL_READ | TL_WRITE;
  if (!oev && nev) {
    /* The poll SQE would tell us only at the next poll(); the front end
     * wants EBADF now. */
    b->syscalls++;
    if (fcntl(fd, F_GETFD) < 0)
      return -errno;
  }
  if ((unsigned)fd >= u->nslots) {
    if (!nev)
      return 0;
    int r = grow_slots(u, fd);
    if (r < 0)
      return r;
  }
  struct slot *s = &u->slots[fd];
  s->want = (uint8_t)nev;
  s->failed = 0;
  if (!nev) {
    if (!oev) {
      s->nonblock = 0;   /* about to be closed: the number may name a new file */
      if (s->armed)
        drop_poll(b, u, fd);
    } else if (s->armed) {
      s->since = u->npolls;
      queue_dirty(u, fd);   /* arm_dirty drops it unless wanted again */
    }
    return 0;
  }
  if (s->armed && (s->armed != nev || (!oev && !same)))
    drop_poll(b, u, fd);
  if (!s->armed)
    queue_dirty(u, fd);
  return 0;
}

/* Fills a POLL_ADD for every interested fd without an armed poll, and drops
 * the lingering polls whose time is up (see uring_modify). */
static void arm_dirty(struct tl__base *b, struct uring *u, int will_sleep) {
  unsigned i, kept = 0;
  /* No reaping inside get_sqe here: a poll that fires at once would queue
   * its fd again behind i, be armed again, fire again, and so on without
   * end (a tiny ring on readable pipes).  An fd that gets no SQE waits for
   * the next poll(). */
  u->reaping++;
  for (i = 0; i < u->ndirty; i++) {
    int fd = u->dirty[i];
    struct slot *s = &u->slots[fd];
    if (!s->want) {
      if (s->armed && !will_sleep && u->npolls - s->since < 2) {
        u->dirty[kept++] = fd;   /* may be restarted yet: look again */
        continue;
      }
      if (s->armed)
        drop_poll(b, u, fd);
      s->queued = 0;
      continue;
    }
    if (s->armed || s->failed) {
      s->queued = 0;
      continue;
    }
    struct io_uring_sqe *sqe = get_sqe(b, u);
    if (!sqe)
      break;
    s->queued = 0;
    io_uring_prep_poll_add(sqe, fd, poll_mask(s->want));
    io_uring_sqe_set_data64(sqe, poll_ud(fd, s->gen));
    s->armed = s->want;
  }
  memmove(u->dirty + kept, u->dirty + i, (u->ndirty - i) * sizeof *u->dirty);
  u->ndirty = kept + (u->ndirty - i);
  u->reaping--;
}

/* ------------------------------------------------------------------ */
/* Completion ops                                                      */
/* ------------------------------------------------------------------ */

#define OP_OF_JOB(j) ((tl_op *)((char *)(j) - offsetof(tl_op, tl__job)))

/* The pool path, for ops the kernel cannot do natively: run and classed
 * as on the other backends (tl__op_run_on_worker, tl__op_pool_class). */
static void pool_work(struct tl__job *j) {
  j->res = tl__op_run_on_worker(j, OP_OF_JOB(j), -1);
}

static void pool_done(struct tl__job *j) {
  struct tl__base *b = j->base;
  op_finished(b, b->bstate, OP_OF_JOB(j), j->res);
}

static inline uint32_t u_epoch(struct tl__base *b) {
  return ((struct uring *)b->bstate)->epoch;
}

static int pool_submit(struct tl__base *b, tl_op *op) {
  struct tl__job *j = &op->tl__job;
  memset(j, 0, sizeof *j);
  j->work = pool_work;
  j->done = pool_done;
  j->base = b;
  op->tl__gen = u_epoch(b) | ROUTE_POOL;
  if (tl__op_pool_class(op) == TL__POOL_WORK)
    return tl__pool_submit(j);
  struct tl__pool_list wait = { j, j, 1 };
  return tl__pool_submit_lists(NULL, &wait);
}

static inline unsigned clamp_len(size_t len) {
  return len > MAX_RW ? MAX_RW : (unsigned)len;
}

static int ring_submit(struct tl__base *b, struct uring *u, tl_op *op, double limit);

static int uring_submit(struct tl__base *b, tl_op *op) {
  struct uring *u = b->bstate;
  int t = op->type;
  if (t <= TL_OP_NONE || t >= TL_OP__COUNT)
    return -EINVAL;
  op->tl__gen = u->epoch;
  op->tl__qnext = NULL;
  int native = u->native[t];
  /* Offset -1 means "the file position" only since 5.6 (RW_CUR_POS). */
  if (native && !(u->features & IORING_FEAT_RW_CUR_POS) &&
      (((t == TL_OP_READ || t == TL_OP_WRITE || t == TL_OP_READ_FIXED ||
         t == TL_OP_WRITE_FIXED) && op->u.rw.off < 0) ||
       ((t == TL_OP_READV || t == TL_OP_WRITEV) && op->u.rwv.off < 0)))
    native = 0;
  if (!native && t == TL_OP_SHUTDOWN) {
    /* Never blocks: done here, no pool round trip. */
    b->syscalls++;
    tl__base_op_done(b, op, tl__op_run_blocking(op));
    return 0;
  }
  if (!native)
    return pool_submit(b, op);
  if (t == TL_OP_CLOSE && (unsigned)op->fd < u->nslots && u->slots[op->fd].cancelling) {
    op->tl__gen = u->epoch | OP_PARKED;
    op->tl__qnext = u->slots[op->fd].closes;
    u->slots[op->fd].closes = op;
    return 0;
  }
  /* A close always closes (a timeout must not cancel it), and a multishot
   * re-arms without its submit: both keep the front end's timer. */
  double limit = t == TL_OP_CLOSE || t == TL_OP_RECV_MULTISHOT ? -1 : b->op_limit;
  int r = ring_submit(b, u, op, limit);
  if (r == 0 && (op->tl__gen & OP_LINKED))
    b->op_limit_taken = 1;
  return r;
}

/*
 * Connect runs on a nonblocking socket.  On a blocking one the kernel runs
 * it in an io-wq worker that blocks in the syscall itself (an AF_UNIX
 * connect to a full backlog), where cancel cannot reach it and destroy
 * would wait forever (found by tests/fuzz).  Nonblocking, io_uring waits by
 * polling, which cancels.  Cached per fd slot (forgotten at tl_close and
 * tl_cancel_fd), so the fcntl is paid once per socket.
 */
static void sock_nonblock(struct tl__base *b, struct uring *u, int fd) {
  if ((unsigned)fd < u->nslots && u->slots[fd].nonblock)
    return;
  b->syscalls++;
  if (tl__set_nonblock(fd) < 0)
    return;
  if ((unsigned)fd < u->nslots || grow_slots(u, fd) == 0)
    u->slots[fd].nonblock = 1;
}

static void to_ts(struct __kernel_timespec *ts, double t);

/* limit >= 0: the op's time limit in seconds, as a LINK_TIMEOUT right
 * behind it.  The kernel then cancels the op itself when it expires (its
 * CQE says -ECANCELED, reported as -ETIMEDOUT) and the op's one CQE stays
 * its only completion, so the exactly-once rule needs nothing more.  Both
 * SQEs must reach the kernel in one submit, or the op would go without its
 * timeout: when the SQ has no room for two, the front end's timer does it. */
static int ring_submit(struct tl__base *b, struct uring *u, tl_op *op, double limit) {
  int link = limit >= 0 && u->link_timeout && io_uring_sq_space_left(&u->ring) >= 2;
  struct io_uring_sqe *sqe = get_sqe(b, u);
  if (!sqe)
    return -EAGAIN;
  op->tl__gen = u->epoch | ROUTE_RING | (op->tl__gen & OP_ZCPLAIN);
  switch (op->type) {
  case TL_OP_READ:
    io_uring_prep_read(sqe, op->fd, op->u.rw.buf, clamp_len(op->u.rw.len),
                       (uint64_t)op->u.rw.off);
    break;
  case TL_OP_WRITE:
    io_uring_prep_write(sqe, op->fd, op->u.rw.buf, clamp_len(op->u.rw.len),
                        (uint64_t)op->u.rw.off);
    break;
  case TL_OP_READV:
    io_uring_prep_readv(sqe, op->fd, op->u.rwv.iov, (unsigned)op->u.rwv.iovcnt,
                        (uint64_t)op->u.rwv.off);
    break;
  case TL_OP_WRITEV:
    io_uring_prep_writev(sqe, op->fd, op->u.rwv.iov, (unsigned)op->u.rwv.iovcnt,
                         (uint64_t)op->u.rwv.off);
    break;
  case TL_OP_FSYNC:
    io_uring_prep_fsync(sqe, op->fd, 0);
    break;
  case TL_OP_FDATASYNC:
    io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
    break;
  case TL_OP_OPENAT:
    /* O_CLOEXEC as the blocking path adds it. */
    io_uring_prep_openat(sqe, op->fd, op->u.open.path,
                         op->u.open.flags | O_CLOEXEC, op->u.open.mode);
    break;
  case TL_OP_CLOSE:
    if ((unsigned)op->fd < u->nslots)
      u->slots[op->fd].nonblock = 0;
    io_uring_prep_close(sqe, op->fd);
    break;
  case TL_OP_ACCEPT:
    io_uring_prep_accept(sqe, op->fd, op->u.accept.addr, op->u.accept.addrlen,
                         op->u.accept.flags | SOCK_CLOEXEC);
    break;
  case TL_OP_CONNECT:
    sock_nonblock(b, u, op->fd);
    io_uring_prep_connect(sqe, op->fd, op->u.connect.addr, op->u.connect.addrlen);
    break;
  case TL_OP_RECV:
    io_uring_prep_recv(sqe, op->fd, op->u.msg.buf, clamp_len(op->u.msg.len),
                       op->u.msg.flags);
    break;
  case TL_OP_SEND:
    io_uring_prep_send(sqe, op->fd, op->u.msg.buf, clamp_len(op->u.msg.len),
                       op->u.msg.flags | MSG_NOSIGNAL);
    break;
  case TL_OP_RECV_MULTISHOT:
    io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, op->u.ms.flags);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = op->u.ms.ring->group;
    break;
  case TL_OP_READ_FIXED:
    io_uring_prep_read_fixed(sqe, op->fd, op->u.rw.buf, clamp_len(op->u.rw.len),
                             (uint64_t)op->u.rw.off, (int)op->u.rw.buf_index);
    break;
  case TL_OP_WRITE_FIXED:
    io_uring_prep_write_fixed(sqe, op->fd, op->u.rw.buf, clamp_len(op->u.rw.len),
                              (uint64_t)op->u.rw.off, (int)op->u.rw.buf_index);
    break;
  case TL_OP_SHUTDOWN:
    io_uring_prep_shutdown(sqe, op->fd, op->u.shut.how);
    break;
  case TL_OP_STATX:
    io_uring_prep_statx(sqe, op->fd, op->u.statx.path, op->u.statx.flags, op->u.statx.mask,
                        op->u.statx.buf);
    break;
  case TL_OP_FTRUNCATE:
    /* As liburing's io_uring_prep_ftruncate (2.6): the length in off. */
    io_uring_prep_rw(TL__OP_FTRUNCATE, sqe, op->fd, NULL, 0, (uint64_t)op->u.trunc.len);
    break;
  case TL_OP_FALLOCATE:
    io_uring_prep_fallocate(sqe, op->fd, op->u.falloc.mode, (uint64_t)op->u.falloc.off,
                            (uint64_t)op->u.falloc.len);
    break;
  case TL_OP_UNLINKAT:
    io_uring_prep_unlinkat(sqe, op->fd, op->u.path.path, op->u.path.flags);
    break;
  case TL_OP_MKDIRAT:
    io_uring_prep_mkdirat(sqe, op->fd, op->u.path.path, op->u.path.mode);
    break;
  case TL_OP_RENAMEAT:
    io_uring_prep_renameat(sqe, op->fd, op->u.rename.oldpath, op->u.rename.newdirfd,
                           op->u.rename.newpath, op->u.rename.flags);
    break;
  case TL_OP_SENDMSG:
    io_uring_prep_sendmsg(sqe, op->fd, op->u.msghdr.msg,
                          (unsigned)(op->u.msghdr.flags | MSG_NOSIGNAL));
    break;
  case TL_OP_RECVMSG:
    io_uring_prep_recvmsg(sqe, op->fd, op->u.msghdr.msg, (unsigned)op->u.msghdr.flags);
    break;
  case TL_OP_SEND_ZC:
    if (op->tl__gen & OP_ZCPLAIN)
      io_uring_prep_send(sqe, op->fd, op->u.msg.buf, clamp_len(op->u.msg.len),
                         op->u.msg.flags | MSG_NOSIGNAL);
    else
      io_uring_prep_send_zc(sqe, op->fd, op->u.msg.buf, clamp_len(op->u.msg.len),
                            op->u.msg.flags | MSG_NOSIGNAL, 0);
    break;
  case TL_OP_SPLICE:
    io_uring_prep_splice(sqe, op->fd, op->u.splice.off_in, op->u.splice.fd_out,
                         op->u.splice.off_out, clamp_len(op->u.splice.len),
                         op->u.splice.flags);
    break;
  }
  /* A registered fd goes through its registered file: no fget/fput per op. */
  if (b->fixed.nfiles && tl__op_uses_fixed_file(op->type)) {
    int fi = tl__fixed_file(&b->fixed, op->fd);
    if (fi >= 0) {
      sqe->fd = fi;
      sqe->flags |= IOSQE_FIXED_FILE;
    }
  }
  io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op);
  u->ops_out++;
  if (link) {
    struct io_uring_sqe *ts_sqe = get_sqe(b, u);   /* there is room: never flushes */
    struct __kernel_timespec *ts = (struct __kernel_timespec *)(void *)op->tl__ts;
    to_ts(ts, limit);
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_prep_link_timeout(ts_sqe, ts, 0);
    io_uring_sqe_set_data64(ts_sqe, TAG_INTERNAL);
    op->tl__gen |= OP_LINKED;
  }
  return 0;
}

/* Asks the kernel to cancel; the op's own CQE (-ECANCELED or its real
 * result) is what completes it, so its buffer is never used after the
 * callback.  The cancel's CQE (0, -ENOENT, -EALREADY) is ignored. */
static int cancel_in_ring(struct tl__base *b, struct uring *u, tl_op *op) {
  struct io_uring_sqe *sqe = get_sqe(b, u);
  if (!sqe)
    return -EAGAIN;
  uint64_t target = (uint64_t)(uintptr_t)op;
#ifdef TL_FAULT_INJECTION
  if (tl__fault_uring_cancel_miss && tl__fault_uring_cancel_miss(op->fd))
    target = 0;   /* no request has user_data 0: the cancel finds nothing */
#endif
  io_uring_prep_cancel64(sqe, target, 0);
  io_uring_sqe_set_data64(sqe, TAG_INTERNAL);
  return 0;
}

/* A cancelled op holds back closes of its fd until it completes. */
static void count_cancel(struct uring *u, tl_op *op) {
  int t = op->type;
  if (op->fd < 0 || t == TL_OP_OPENAT || t == TL_OP_CLOSE || t == TL_OP_STATX ||
      t == TL_OP_UNLINKAT || t == TL_OP_MKDIRAT || t == TL_OP_RENAMEAT ||
      (op->tl__gen & OP_COUNTED))
    return;   /* counted once, however often it is asked to cancel */
  if ((unsigned)op->fd >= u->nslots && grow_slots(u, op->fd) < 0)
    return;    /* only the order of callbacks suffers */
  u->slots[op->fd].cancelling++;
  op->tl__gen |= OP_COUNTED;
}

static void unqueue_cancel(struct uring *u, tl_op *op) {
  tl_op **pp = &u->cancel_head, *prev = NULL;
  while (*pp && *pp != op) {
    prev = *pp;
    pp = &(*pp)->tl__qnext;
  }
  if (!*pp)
    return;
  *pp = op->tl__qnext;
  if (u->cancel_tail == op)
    u->cancel_tail = prev;
  op->tl__qnext = NULL;
  if (!(op->tl__gen & OP_ASKED))
    u->cancel_unasked--;
  op->tl__gen &= ~(uint32_t)(OP_QCANCEL | OP_ASKED);
}

/* Every op's one completion passes here, from the ring or the pool. */
static void op_finished(struct tl__base *b, struct uring *u, tl_op *op, int64_t res) {
  /* -ECANCELED that nobody asked for: the thread that submitted the op has
   * exited (the loop moved to another thread), and the kernel drops such a
   * request when its completion would run in the dead thread, without having
   * done it.  Submit it again from this thread. */
  if (__builtin_expect(res == -ECANCELED, 0) &&
      !(op->tl__gen & (OP_COUNTED | OP_QCANCEL | ROUTE_POOL | OP_LINKED | OP_CANCELLED)) &&
      OP_EPOCH(op) == u->epoch && op->type != TL_OP_CLOSE) {
    int r = ring_submit(b, u, op, -1);
    if (r == 0)
      return;
    res = r;
  }
  if (op->tl__gen & OP_QCANCEL)
    unqueue_cancel(u, op);
  /* An op an io-wq worker was blocked in (a splice on an empty pipe) is
   * interrupted by a signal when cancelled, and its CQE carries -EINTR or
   * the kernel-internal restart codes (ERESTARTSYS 512 .. 516): for an op
   * we asked to stop, that is a cancel. */
  if ((op->tl__gen & (OP_LINKED | OP_CANCELLED)) &&
      (res == -EINTR || (res <= -512 && res >= -516)))
    res = -ECANCELED;
  /* Cancelled by its linked timeout, not by a cancel of ours. */
  if ((op->tl__gen & (OP_LINKED | OP_CANCELLED)) == OP_LINKED && res == -ECANCELED)
    res = -ETIMEDOUT;
  if ((op->tl__gen & OP_COUNTED) && OP_EPOCH(op) == u->epoch) {
    struct slot *s = &u->slots[op->fd];
    if (--s->cancelling == 0) {
      tl_op *c = s->closes;
      s->closes = NULL;
      while (c) {
        tl_op *next = c->tl__qnext;
        c->tl__qnext = NULL;
        int r = ring_submit(b, u, c, -1);
        if (r < 0)
          tl__base_op_done(b, c, r);
        c = next;
      }
    }
  }
  tl__base_op_done(b, op, res);
}

/* The kernel ended a multishot recv.  It also does so without an error
 * (a CQ overflow, or a message posted without F_MORE): then the message is
 * delivered and the recv re-armed, unless it was being cancelled.  The
 * caller's final callback only ever carries EOF or an error. */
static void ms_ended(struct tl__base *b, struct uring *u, tl_op *op, int res, unsigned flags) {
  if (res > 0) {
    if (flags & IORING_CQE_F_BUFFER)
      tl__base_op_more(b, op, res, flags >> IORING_CQE_BUFFER_SHIFT);
    if (op->tl__gen & OP_COUNTED)
      res = -ECANCELED;
    else
      res = ring_submit(b, u, op, -1);
    if (res == 0)
      return;
  }
  op_finished(b, u, op, res);
}

/* A send_zc's last CQE: the notification (its result came before, with
 * F_MORE), or the only one (an error before anything was sent).  A socket
 * without zero-copy support (AF_UNIX) refuses it with -EOPNOTSUPP: it is
 * resent as a plain send, as the header promises. */
static void zc_ended(struct tl__base *b, struct uring *u, tl_op *op, int res, unsigned flags) {
  if (flags & IORING_CQE_F_NOTIF)
    res = (int)op->tl__res;
  /* Refused, and a cancel is already asked: the plain send it would have
   * become is cancelled before it starts. */
  if (res == -EOPNOTSUPP && (op->tl__gen & (OP_ZCPLAIN | OP_CANCELLED)) == OP_CANCELLED)
    res = -ECANCELED;
  if (res == -EOPNOTSUPP && !(op->tl__gen & (OP_ZCPLAIN | OP_CANCELLED))) {
    double limit = -1;
    if (op->tl__gen & OP_LINKED) {   /* keep its timeout (restarted) */
      const struct __kernel_timespec *ts = (const void *)op->tl__ts;
      limit = (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
    }
    op->tl__gen |= OP_ZCPLAIN;
    if (ring_submit(b, u, op, limit) == 0) {
      u->reported--;   /* nothing reached the front end yet */
      return;
    }
  }
  op_finished(b, u, op, res);
}

/* Provided-buffer rings: the kernel's ring of buffer descriptors sits in
 * its own page-aligned mapping, registered under a group id of ours. */
static int uring_bufring_setup(struct tl__base *b, tl_bufring *r) {
  struct uring *u = b->bstate;
  if (!u->native[TL_OP_RECV_MULTISHOT] || u->pid != getpid())
    return -EOPNOTSUPP;
  size_t sz = r->nbufs * sizeof(struct io_uring_buf);
  struct io_uring_buf_ring *br = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (br == MAP_FAILED)
    return -ENOMEM;
  io_uring_buf_ring_init(br);
  int ret = -EEXIST;
  /* Group ids are a 16-bit namespace per ring; skip any taken. */
  for (unsigned tries = 0; tries < 65536 && ret == -EEXIST; tries++) {
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = r->nbufs;
    reg.bgid = u->next_group++;
    b->syscalls++;
    ret = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (ret == 0)
      r->group = reg.bgid;
  }
  if (ret < 0) {
    munmap(br, sz);
    return ret;
  }
  int mask = io_uring_buf_ring_mask(r->nbufs);
  for (unsigned i = 0; i < r->nbufs; i++)
    io_uring_buf_ring_add(br, r->mem + (size_t)i * r->bufsize, (unsigned)r->bufsize,
                          (unsigned short)i, mask, (int)i);
  io_uring_buf_ring_advance(br, (int)r->nbufs);
  r->bstate = br;
  return 0;
}

static void uring_bufring_free(struct tl__base *b, tl_bufring *r) {
  struct uring *u = b->bstate;
  if (u->pid == getpid()) {
    b->syscalls++;
    io_uring_unregister_buf_ring(&u->ring, r->group);
  }
  munmap(r->bstate, r->nbufs * sizeof(struct io_uring_buf));
  r->bstate = NULL;
}

static void uring_bufring_recycle(struct tl__base *b, tl_bufring *r, unsigned bid) {
  (void)b;
  struct io_uring_buf_ring *br = r->bstate;
  io_uring_buf_ring_add(br, r->mem + (size_t)bid * r->bufsize, (unsigned)r->bufsize,
                        (unsigned short)bid, io_uring_buf_ring_mask(r->nbufs), 0);
  io_uring_buf_ring_advance(br, 1);
}

/* Registered buffers and files.  Through the plain ring fd, never the
 * registered index (liburing's register calls use the index once the ring
 * fd is registered, and that index only means something on the thread
 * that registered it).  A ring still disabled takes registrations too;
 * a single-issuer ring takes them from its thread only (-EEXIST). */
static int uring_register_buffers(struct tl__base *b, const struct iovec *iov, unsigned n) {
  struct uring *u = b->bstate;
  if (u->pid != getpid())
    return 0;   /* a child before tl_loop_fork: its ring comes with fork */
  b->syscalls++;
  if (n)
    return io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_BUFFERS, iov, n);
  return io_uring_register((unsigned)u->ring.ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
}

static int uring_register_files(struct tl__base *b, const int *fds, unsigned n) {
  struct uring *u = b->bstate;
  if (u->pid != getpid())
    return 0;
  b->syscalls++;
  if (n)
    return io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_FILES, fds, n);
  return io_uring_register((unsigned)u->ring.ring_fd, IORING_UNREGISTER_FILES, NULL, 0);
}

static int uring_update_files(struct tl__base *b, unsigned off, const int *fds, unsigned n) {
  struct uring *u = b->bstate;
  if (u->pid != getpid())
    return 0;
  struct io_uring_files_update up;
  memset(&up, 0, sizeof up);
  up.offset = off;
  up.fds = (uint64_t)(uintptr_t)fds;
  b->syscalls++;
  int r = io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_FILES_UPDATE, &up, n);
  /* It answers how many slots it updated. */
  return r < 0 ? r : (unsigned)r == n ? 0 : -EIO;
}

/* A forked child's new ring gets the parent's registrations again. */
static int reregister(struct tl__base *b) {
  const struct tl__fixed *f = &b->fixed;
  int r = 0;
  if (f->iov)
    r = uring_register_buffers(b, f->iov, f->nbufs);
  if (r == 0 && f->fds)
    r = uring_register_files(b, f->fds, f->nfiles);
  return r;
}

static int uring_cancel(struct tl__base *b, tl_op *op) {
  struct uring *u = b->bstate;
  op->tl__gen |= OP_CANCELLED;
  if (OP_EPOCH(op) != u->epoch) {
    /* Submitted to the parent's ring or pool before fork: nothing in this
     * process will ever complete it. */
    tl__base_op_done(b, op, -ECANCELED);
    return 0;
  }
  if (op->tl__gen & OP_PARKED) {
    tl_op **pp = &u->slots[op->fd].closes;
    while (*pp && *pp != op)
      pp = &(*pp)->tl__qnext;
    if (*pp)
      *pp = op->tl__qnext;
    op->tl__qnext = NULL;
    tl__base_op_done(b, op, -ECANCELED);
    return 0;
  }
  if (op->tl__gen & ROUTE_POOL) {
    if (tl__pool_cancel(&op->tl__job) == 1) {
      tl__base_op_done(b, op, -ECANCELED);
      return 0;
    }
    count_cancel(u, op);   /* running or posted: done() comes later */
    return 0;
  }
  count_cancel(u, op);
  if (op->tl__gen & OP_QCANCEL)
    return 0;   /* already being cancelled: the list asks again if need be */
  if (!u->cancel_head) {
    u->reask_gap = 0.01;
    u->reask_at = tl__time() + u->reask_gap;
  }
  op->tl__qnext = NULL;
  op->tl__gen |= OP_QCANCEL;
  if (u->cancel_tail)
    u->cancel_tail->tl__qnext = op;
  else
    u->cancel_head = op;
  u->cancel_tail = op;
  if (cancel_in_ring(b, u, op) == 0)
    op->tl__gen |= OP_ASKED;
  else
    u->cancel_unasked++;   /* no SQE now: poll() tries again */
  return 0;
}

/* Fills cancel SQEs for the listed ops not asked in this round; a new
 * round (every op asked again) starts when reask_at has passed: 10 ms
 * after the first cancel, then at doubling gaps up to 0.64 s.  An op that
 * completes leaves the list in op_finished. */
static void retry_cancels(struct tl__base *b, struct uring *u) {
  double now = tl__time();
  /* No reaping inside get_sqe here: a completion would move an op off
   * this list (onto the front end's done queue) while we walk it. */
  u->reaping++;
  if (now >= u->reask_at) {
    for (tl_op *op = u->cancel_head; op; op = op->tl__qnext)
      if (op->tl__gen & OP_ASKED) {
        op->tl__gen &= ~(uint32_t)OP_ASKED;
        u->cancel_unasked++;
      }
    if (u->reask_gap < 0.5)
      u->reask_gap *= 2;
    u->reask_at = now + u->reask_gap;
  }
  for (tl_op *op = u->cancel_head; op && u->cancel_unasked; op = op->tl__qnext) {
    if (op->tl__gen & OP_ASKED)
      continue;
    if (cancel_in_ring(b, u, op) < 0)
      break;
    op->tl__gen |= OP_ASKED;
    u->cancel_unasked--;
  }
  u->reaping--;
}

/* ------------------------------------------------------------------ */
/* Waiting                                                             */
/* ------------------------------------------------------------------ */

static void to_ts(struct __kernel_timespec *ts, double t) {
  ts->tv_sec = (long long)t;
  /* Round up: waking a hair early makes the front end spin once more. */
  double ns = (t - (double)ts->tv_sec) * 1e9;
  ts->tv_nsec = (long long)ns;
  if ((double)ts->tv_nsec < ns)
    ts->tv_nsec++;
  if (ts->tv_nsec >= 1000000000) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000;
  }
}

/* Completions the kernel holds back until we enter with GETEVENTS:
 * deferred or cooperative task work, and overflowed CQEs. */
static int kernel_has_work(struct uring *u) {
  unsigned kf = IO_URING_READ_ONCE(*u->ring.sq.kflags);
  if (kf & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN))
    return 1;
  return u->defer && !u->taskrun_flag && u->sqes_out;
}

/* Submits n SQEs and waits for at least one CQE or the timeout (< 0:
 * forever), in one enter where the kernel allows it. */
static int wait_enter(struct tl__base *b, struct uring *u, unsigned n, double timeout) {
  if (timeout < 0)
    return enter(b, u, n, 1, IORING_ENTER_GETEVENTS, NULL, _NSIG / 8);
  if (u->features & IORING_FEAT_EXT_ARG) {
    struct __kernel_timespec ts;
    struct io_uring_getevents_arg arg;
    to_ts(&ts, timeout);
    memset(&arg, 0, sizeof arg);
    arg.ts = (uint64_t)(uintptr_t)&ts;
    return enter(b, u, n, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                 &arg, sizeof arg);
  }
  /* Before 5.11: a timeout SQE ends the wait.  Its CQE is ignored; if
   * events end the wait first, it fires later and costs one spurious
   * wakeup, which the caller absorbs. */
  struct io_uring_sqe *sqe = get_sqe(b, u);
  if (!sqe)
    return enter(b, u, n, 0, IORING_ENTER_GETEVENTS, NULL, _NSIG / 8);
  to_ts(&u->ts, timeout);
  io_uring_prep_timeout(sqe, &u->ts, 0, 0);
  io_uring_sqe_set_data64(sqe, TAG_INTERNAL);
  n = sq_publish(u);
  return enter(b, u, n, 1, IORING_ENTER_GETEVENTS, NULL, _NSIG / 8);
}

static int uring_poll(struct tl__base *b, double timeout) {
  struct uring *u = b->bstate;
  int ret = 0;
  u->in_poll = 1;
  u->npolls++;
  int block = timeout != 0;
  if (u->ndirty)
    arm_dirty(b, u, block);

  int forever = timeout < 0 || timeout >= 1e9;
  double deadline = block && !forever ? tl__time() + timeout : 0;
  u->reported = 0;
  for (;;) {
    /* Cancels still unanswered by a completion cut the wait short, to be
     * asked again: this wait then goes on for the rest of its time. */
    double wait = forever ? -1 : timeout;
    int cut = 0;
    if (u->cancel_head) {
      if (u->cancel_unasked || tl__time() >= u->reask_at)
        retry_cancels(b, u);
      double until = u->reask_at - tl__time();
      if (until < 0)
        until = 0;
      if (wait < 0 || until < wait) {
        wait = until;
        cut = 1;
      }
    }
    unsigned n = sq_publish(u);
    int r = 0;
    if (block && !io_uring_cq_ready(&u->ring)) {
      r = wait_enter(b, u, n, wait);
    } else if (n || kernel_has_work(u)) {
      /* GETEVENTS costs nothing here and runs deferred task work. */
      r = enter(b, u, n, 0, IORING_ENTER_GETEVENTS, NULL, _NSIG / 8);
    }
    if (r == -EBUSY || r == -EAGAIN) {
      /* Old kernels refuse submits while the CQ overflows, and requests
       * can run out of memory: reap, then hand over what we can. */
      reap(b, u);
      n = sq_publish(u);
      r = enter(b, u, n, 0, IORING_ENTER_GETEVENTS, NULL, _NSIG / 8);
      if (r == -EBUSY || r == -EAGAIN)
        r = 0;
    }
    if (r < 0 && r != -EINTR && r != -ETIME)
      ret = r;
    reap(b, u);
    /* Overflowed CQEs come back only through an enter: keep going while
     * the kernel says it holds some, a bounded number of rounds. */
    for (int i = 0; i < 64; i++) {
      if (!(IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW))
        break;
      enter(b, u, 0, 0, IORING_ENTER_GETEVENTS, NULL, _NSIG / 8);
      reap(b, u);
    }
    /* Woken only by our own CQEs (a poll update, a cancel's answer, an
     * old timeout): the front end asked to sleep, so sleep on. */
    if (!block || u->reported || ret < 0 || r == -EINTR || (r == -ETIME && !cut))
      break;
    if (!forever) {
      timeout = deadline - tl__time();
      if (timeout <= 0)
        break;
    }
  }
  u->in_poll = 0;
  return ret;
}

/* ------------------------------------------------------------------ */
/* Lifetime                                                            */
/* ------------------------------------------------------------------ */

/* A ring that comes up does not mean io_uring works: seccomp profiles can
 * allow io_uring_setup and deny io_uring_enter or io_uring_register, and
 * then every tl_run() would fail.  So on a throwaway ring (the loop's own is
 * created disabled, to belong to the thread that first runs it) we make one
 * call of each kind the loop relies on: a register (enabling the ring and
 * registering its fd are registers) and a NOP submitted and waited for. */
static int probe_calls(struct tl__base *b) {
  struct io_uring ring;
  b->syscalls++;
  int r = io_uring_queue_init(2, &ring, 0);
  if (r < 0)
    return 0;     /* ring_setup meets the same refusal and explains it */
  const char *what = "io_uring_register";
  struct io_uring_rsrc_update up = { .offset = -1U, .data = (uint64_t)ring.ring_fd };
  b->syscalls++;
  r = io_uring_register((unsigned)ring.ring_fd, IORING_REGISTER_RING_FDS, &up, 1);
  if (r == 1) {
    /* A registration holds the ring until unregistered (and a thread has
     * 16 slots): give it back at once. */
    b->syscalls++;
    io_uring_register((unsigned)ring.ring_fd, IORING_UNREGISTER_RING_FDS, &up, 1);
  } else if (r == -EINVAL || r == -EBUSY) {
    r = 0;        /* a kernel before 5.18, or this thread's slots all taken:
                   * no ring fd registration, not a denial */
  }
  if (r >= 0) {
    what = "io_uring_enter";
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 1);
    io_uring_smp_store_release(ring.sq.ktail, ring.sq.sqe_tail);
    ring.sq.sqe_head = ring.sq.sqe_tail;
    b->syscalls++;
    r = io_uring_enter((unsigned)ring.ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL);
    struct io_uring_cqe *cqe;
    if (r == 1 && io_uring_peek_cqe(&ring, &cqe) == 0 && cqe->user_data == 1)
      r = cqe->res < 0 ? cqe->res : 0;
    else if (r >= 0)
      r = -EIO;
  }
  io_uring_queue_exit(&ring);
  if (r < 0) {
    if (r == -EPERM)
      snprintf(b->why, sizeof b->why, "%s: not permitted (a seccomp filter allows "
               "io_uring_setup but not %s)", what, what);
    else
      snprintf(b->why, sizeof b->why, "%s: %s", what, strerror(-r));
    return r;
  }
  return 0;
}

static int uring_init(struct tl__base *b) {
  struct uring *u = calloc(1, sizeof *u);
  if (!u) {
    snprintf(b->why, sizeof b->why, "uring: out of memory");
    return -ENOMEM;
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1)
    cores = 1;
  u->entries = (unsigned)env_long(b, "TRILOOP_URING_ENTRIES", 256, 1, 32768);
  u->no_defer = env_on(b, "TRILOOP_URING_NO_DEFER");
  u->no_coop = env_on(b, "TRILOOP_URING_NO_COOP");
  u->no_single = env_on(b, "TRILOOP_URING_NO_SINGLE_ISSUER");
  u->no_regring = env_on(b, "TRILOOP_URING_NO_REGISTER_RING");
  u->iowq_max = env_long(b, "TRILOOP_URING_IOWQ_MAX", cores * 4, 0, 1 << 20);
  for (int t = 1; t < TL_OP__COUNT; t++)
    u->wish[t] = 1;
  env_pool_ops(b, u);

  int r = probe_calls(b);
  if (r == 0)
    r = ring_setup(b, u);
  if (r < 0) {
    free(u);
    return r;
  }
  describe(u);
  b->bstate = u;
  return 0;
}

/* Ops still in the ring at destroy (the front end drains them first, so
 * normally none): cancel and wait a bounded time, so that the kernel is done
 * with their buffers before the caller frees them.  No callbacks. */
static void drain(struct tl__base *b, struct uring *u) {
  u->draining = 1;
  struct io_uring_sqe *sqe = get_sqe(b, u);
  if (sqe) {
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, TAG_INTERNAL);
  }
  double deadline = tl__time() + 1.0;
  while (u->ops_out && tl__time() < deadline) {
    struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
    struct io_uring_getevents_arg arg = { .ts = (uint64_t)(uintptr_t)&ts };
    unsigned n = sq_publish(u);
    if (u->features & IORING_FEAT_EXT_ARG)
      enter(b, u, n, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    else
      enter(b, u, n, 0, IORING_ENTER_GETEVENTS, NULL, _NSIG / 8);
    reap(b, u);
  }
}

static void uring_destroy(struct tl__base *b) {
  struct uring *u = b->bstate;
  if (!u)
    return;
  /* A child that never called fork() must not touch the parent's ring
   * (with SINGLE_ISSUER it could not anyway); just drop its mappings. */
  if (u->ops_out && u->pid == getpid() && u->enabled)
    drain(b, u);
  unregister_ring(b, u);
  io_uring_queue_exit(&u->ring);
  free(u->slots);
  free(u->dirty);
  free(u);
  b->bstate = NULL;
}

static int uring_fork(struct tl__base *b) {
  struct uring *u = b->bstate;
  /* The parent's ring stays the parent's: unmap our copy and close our
   * descriptor, then build a fresh one. */
  unregister_ring(b, u);
  io_uring_queue_exit(&u->ring);
  memset(&u->ring, 0, sizeof u->ring);
  int r = ring_setup(b, u);
  if (r < 0)
    return r;
  describe(u);
  u->epoch += EPOCH_STEP;
  u->sqes_out = u->ops_out = 0;
  u->ndirty = 0;
  /* The front end completes the child's copies of ops in flight itself
   * (-ECANCELED); forget every list they may be on here. */
  u->cancel_head = u->cancel_tail = NULL;
  u->cancel_unasked = 0;
  for (unsigned fd = 0; fd < u->nslots; fd++) {
    struct slot *s = &u->slots[fd];
    s->armed = 0;
    s->queued = 0;
    s->failed = 0;
    s->cancelling = 0;
    s->closes = NULL;   /* the parked closes are old-epoch ops now */
    s->gen = (s->gen + 1) & GEN_MASK;
    if (s->want)
      queue_dirty(u, (int)fd);
  }
  return reregister(b);
}

const char *tl__uring_describe(struct tl__base *b) {
  if (!b || b->be != &tl__backend_uring || !b->bstate)
    return NULL;
  return ((struct uring *)b->bstate)->desc;
}

const struct tl__backend tl__backend_uring = {
  .name = "uring",
  .id = TL_BACKEND_URING,
  .init = uring_init,
  .destroy = uring_destroy,
  .modify = uring_modify,
  .poll = uring_poll,
  .submit = uring_submit,
  .cancel = uring_cancel,
  .fork = uring_fork,
  .describe = tl__uring_describe,
  .bufring_setup = uring_bufring_setup,
  .bufring_free = uring_bufring_free,
  .bufring_recycle = uring_bufring_recycle,
  .register_buffers = uring_register_buffers,
  .register_files = uring_register_files,
  .update_files = uring_update_files,
};
