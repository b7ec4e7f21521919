/*
 * triloop: one event reactor, three backends (io_uring, epoll, thread pool).
 *
 * Conventions
 * -----------
 * - Every function that can fail returns 0 (or a non-negative count) on
 *   success and a negative errno on failure.  There is no global error state.
 *   tl_strerror() turns any return value into text.
 * - Watchers (tl_io, tl_timer, ...) and operation requests (tl_op) are
 *   allocated by the caller and embedded wherever the caller likes.  The loop
 *   never allocates per start or per submit on its hot paths.  Fields whose
 *   names start with "tl__" are private.
 * - A loop is used from one thread.  The only functions that may be called
 *   from other threads are tl_async_send() and tl_pool_stats().
 *
 * Ownership of operations and their buffers (the contract every backend is
 * tested against)
 * ---------------------------------------------------------------------------
 * 1. A successful submit (tl_read(), tl_recv(), ... returned 0) hands the
 *    tl_op and everything it points at (buffer, iovec array and the buffers it
 *    names, path, sockaddr) to the loop.  The caller must not touch, move or
 *    free any of it until the op's callback runs.
 * 2. The callback runs exactly once per successful submit, on the loop's
 *    thread, from inside tl_run() or tl_loop_destroy().  The result is the
 *    syscall's (bytes, fd, 0) or a negative errno.
 * 3. When the callback starts, the op and its memory belong to the caller
 *    again: the callback may free them, or resubmit the same op.
 * 4. tl_op_cancel() never skips the callback: it comes exactly once, with
 *    -ECANCELED, or with the real result if the op had already finished.
 * 5. tl_loop_destroy() with ops in flight cancels them and runs every
 *    callback (most with -ECANCELED) before it returns.  Close ops are the
 *    exception: they still close their fd (and report its result), after
 *    the fd's other ops.  Callbacks that run during destroy cannot submit
 *    new ops (submit returns -ESHUTDOWN).
 * 6. A failed submit (negative return) hands nothing over: no callback will
 *    run and the caller keeps its memory.
 * 7. Closing an fd that has served ops: close it through tl_close(), or call
 *    tl_cancel_fd() before close(2), even with no op in flight.  Both
 *    complete every op in flight on that fd and make the loop forget what it
 *    keeps for the fd number (the epoll backend's registration and
 *    readiness, whether it is a file), so that the number may name a new
 *    file.  Closing it behind the loop's back with close(2) is undefined:
 *    io_uring keeps its own reference to the file (an op may never finish),
 *    and ops on a new file that reuses the number may wait forever on
 *    epoll.  (libuv's uv_close and tokio's registrations make the same
 *    demand.)
 *
 * Watchers follow libev's rules: start/stop are O(1) (timers O(log n)), a
 * stopped watcher never has its callback invoked, stopping a pending watcher
 * clears its pending state (and returns 0 even if it was no longer active,
 * e.g. an expired one-shot timer).  Starting an active watcher returns
 * -EBUSY; stopping an inactive, non-pending one returns -EALREADY and
 * changes nothing.  Within one iteration callbacks run by priority, and
 * within a priority in libev's order (most recently queued first; timers in
 * expiry order); op callbacks run after the watchers of their iteration.
 */
#ifndef TRILOOP_H
#define TRILOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TL_VERSION_MAJOR 0
#define TL_VERSION_MINOR 1
#define TL_VERSION_PATCH 0

/** Library version as a string, e.g. "0.1.0". */
const char *tl_version(void);

/** Seconds, as libev counts them. */
typedef double tl_tstamp;

typedef struct tl_loop tl_loop;

/* ------------------------------------------------------------------ */
/* Backends and loop creation                                          */
/* ------------------------------------------------------------------ */

enum tl_backend_id {
  TL_BACKEND_AUTO = 0,       /* uring if it really works here, else epoll */
  TL_BACKEND_URING = 1,
  TL_BACKEND_EPOLL = 2,
  TL_BACKEND_THREADPOOL = 3,
  TL_BACKEND_COUNT = 4
};

/* Loop flags: the low 4 bits hold a tl_backend_id. */
#define TL_FLAG_BACKEND_MASK 0x0fu
/* Ignore TRILOOP_* environment variables (they are always ignored in
 * setuid/setgid processes, where getauxval(AT_SECURE) is set). */
#define TL_FLAG_NOENV 0x100u
/* epoll and threadpool backends: try each read and write of a buffered
 * regular file once on the loop thread with preadv2/pwritev2(RWF_NOWAIT)
 * before handing it to the pool.  A page-cached op then completes at the
 * cost of the syscall (a short result is the op's result: the part that
 * was cached); only an op that would block (EAGAIN) goes to the pool.
 * Never for O_DIRECT files (the flag is read once per fd and remembered
 * until the fd is closed through the loop).  At most
 * TRILOOP_FILE_NOWAIT_BUDGET (default 4) ops are done inline per loop
 * iteration; the rest go to the pool, so the loop thread is not the only
 * one doing the reads at high queue depth.  Off by default (tokio and
 * libuv never read on the loop thread: a cache miss costs the loop one
 * EAGAIN, a few microseconds).  Also set by TRILOOP_FILE_NOWAIT=1.
 * Counted in tl_pool_stats (nowait_hits, nowait_eagain).  The uring
 * backend accepts the flag and ignores it (io_uring does this itself). */
#define TL_FLAG_FILE_NOWAIT 0x200u

/*
 * Creates a loop.  Backend choice: an explicit backend in flags wins; with
 * TL_BACKEND_AUTO the environment variable TRILOOP_BACKEND (uring, epoll,
 * threadpool, auto) decides; otherwise auto.
 * Side effect: if SIGPIPE still has its default disposition, it is set to
 * SIG_IGN (a write op to a socket whose peer closed then fails with -EPIPE
 * instead of killing the process; io_uring's write has no MSG_NOSIGNAL).
 * A program that installed its own SIGPIPE disposition keeps it.
 * Errors: -EINVAL for an unknown TRILOOP_BACKEND value, a bad number in a
 * TRILOOP_* variable (tl_env_check() names it; with TL_FLAG_NOENV they are
 * not read) or bad flags (the valid names are in tl_backend_names()), the
 * errno that made an explicitly requested backend unusable (-EPERM when
 * io_uring is forbidden by seccomp or sysctl, -ENOSYS, -ENOMEM for
 * RLIMIT_MEMLOCK), -ENOMEM.
 */
int tl_loop_new(tl_loop **loopp, unsigned flags);

/*
 * Destroys a loop.  Ops in flight are cancelled and their callbacks run
 * before this returns.  Active watchers are simply forgotten (their memory is
 * the caller's).  Returns 0, or -EBUSY when called from inside tl_run().
 */
int tl_loop_destroy(tl_loop *loop);

/* Name of the loop's backend: "uring", "epoll" or "threadpool". */
const char *tl_backend_name(const tl_loop *loop);
enum tl_backend_id tl_backend(const tl_loop *loop);

/* One line on how the loop's backend is set up (for uring: ring size and
 * the setup flags the kernel accepted).  Returns the length written, as
 * snprintf. */
int tl_loop_describe(const tl_loop *loop, char *buf, size_t len);

/* "uring|epoll|threadpool|auto" */
const char *tl_backend_names(void);

/* Maps a name to an id; -EINVAL for an unknown name. */
int tl_backend_from_name(const char *name);

/* Name for an id, or NULL. */
const char *tl_backend_id_name(int id);

/*
 * Probes whether a backend works on this machine right now (for uring: a
 * ring is really set up).  Returns 0 or the negative errno, and writes a
 * human-readable reason into why (may be NULL).
 */
int tl_backend_probe(int id, char *why, size_t whylen);

/*
 * What TL_BACKEND_AUTO picks here; writes why into why (may be NULL).
 * Honours neither flags nor the environment.
 */
int tl_backend_auto(char *why, size_t whylen);

/*
 * Checks the numeric TRILOOP_* variables (TRILOOP_THREADS,
 * TRILOOP_THREADS_MAX, TRILOOP_THREADS_EAGER, TRILOOP_THREADS_KEEPALIVE_MS,
 * TRILOOP_URING_ENTRIES, TRILOOP_URING_IOWQ_MAX) as tl_loop_new() does:
 * returns 0, or -EINVAL with the first bad one and its valid range written
 * into why (may be NULL).  Empty or unset means the default; anything else
 * that is not a decimal number in range is bad.  tl_backend_probe() reports
 * the same reason.  In setuid/setgid processes (AT_SECURE) the variables are
 * ignored and this returns 0.
 */
int tl_env_check(char *why, size_t whylen);

/*
 * Re-creates the backend's kernel state in a child after fork() (libev's
 * ev_loop_fork).  Call it in the child before using the loop there.  Ops that
 * were in flight at fork() belong to the parent: in the child their
 * callbacks run with -ECANCELED at the next tl_run().
 */
int tl_loop_fork(tl_loop *loop);

void tl_set_userdata(tl_loop *loop, void *data);
void *tl_userdata(const tl_loop *loop);

/* Counters the benchmarks print. */
struct tl_loop_stats {
  uint64_t iterations;     /* loop iterations (backend waits) */
  uint64_t syscalls;       /* syscalls made by the loop thread in the backend */
  uint64_t ops_submitted;
  uint64_t ops_completed;
};
void tl_loop_stats(const tl_loop *loop, struct tl_loop_stats *st);

/* ------------------------------------------------------------------ */
/* Running                                                             */
/* ------------------------------------------------------------------ */

enum tl_run_mode {
  TL_RUN_DEFAULT = 0,  /* until no active (ref'd) watchers or ops, or tl_break */
  TL_RUN_ONCE = 1,     /* one iteration, blocking for events if needed */
  TL_RUN_NOWAIT = 2    /* one iteration, never blocking */
};

/*
 * Runs the loop.  Returns 1 if active watchers or ops remain, 0 if none, or
 * a negative errno if the backend failed (the loop stays usable).
 * Returns -EBUSY if called recursively or during destroy, -EINVAL for an
 * unknown mode.
 * A loop may be run by different threads one after another (never two at
 * once).  On uring with a single-issuer ring (the default where the kernel
 * has it; see tl_loop_describe()) the kernel ties the ring to the first
 * thread that ran the loop and refuses every other: tl_run() from another
 * thread returns -EEXIST and the loop cannot be run by that thread.  Run such
 * a loop from one thread, or set TRILOOP_URING_NO_SINGLE_ISSUER=1 (or choose
 * another backend) when the loop moves between threads; then ops in flight
 * survive the thread that submitted them exiting.  The libev drop-in handles
 * it itself (it re-creates the ring, as after fork, and re-arms its fds).
 */
int tl_run(tl_loop *loop, int mode);

/* Makes the innermost tl_run() return after the current iteration. */
void tl_break(tl_loop *loop);

/* The time cached at the start of this iteration (monotonic seconds). */
tl_tstamp tl_now(const tl_loop *loop);
/* Re-reads the clock into the cache. */
void tl_now_update(tl_loop *loop);

/*
 * The loop counts its active watchers and ops in flight; tl_run() keeps
 * going (TL_RUN_DEFAULT) and may block (TL_RUN_ONCE) only while that count
 * is above zero.  tl_unref() lowers the count by one and tl_ref() raises it
 * (libev's ev_unref/ev_ref): the usual use is tl_unref() right after starting
 * a watcher that should not keep the loop alive (a signal watcher, a
 * housekeeping timer), and tl_ref() right before stopping it.  The change
 * lasts until undone, across every later tl_run(): while the unref'd
 * watcher is the only work left, TL_RUN_DEFAULT returns 0 at once, and
 * TL_RUN_ONCE does not wait for events (the watcher still runs when its
 * event is there).  An unref without such a watcher makes every later
 * tl_run() stop one item early; tl_run() then returns 0 while that item is
 * still active.
 */
void tl_ref(tl_loop *loop);
void tl_unref(tl_loop *loop);

/* Number of ops submitted and not yet called back. */
unsigned tl_ops_in_flight(const tl_loop *loop);

/* ------------------------------------------------------------------ */
/* Watchers                                                            */
/* ------------------------------------------------------------------ */

/* Event bits passed to watcher callbacks. */
#define TL_READ     0x01u
#define TL_WRITE    0x02u
#define TL_TIMER    0x0100u
#define TL_SIGNAL   0x0400u
#define TL_CHILD    0x0800u
#define TL_IDLE     0x2000u
#define TL_PREPARE  0x4000u
#define TL_CHECK    0x8000u
#define TL_ASYNC    0x80000u
/* The watcher was stopped because its fd is invalid (closed, EBADF, or the
 * kernel refused it); the callback sees TL_ERROR with the fd's events. */
#define TL_ERROR    0x80000000u

#define TL_MINPRI (-2)
#define TL_MAXPRI 2

/* Common head of every watcher.  Public: data, priority (set while
 * inactive), cb.  Read-only: active, pending. */
#define TL__WATCHER(type)                                     \
  int active;                                                 \
  int pending;                                                \
  int priority;                                               \
  void *data;                                                 \
  void (*cb)(tl_loop *loop, struct type *w, unsigned revents)

typedef struct tl_watcher { TL__WATCHER(tl_watcher); } tl_watcher;

typedef struct tl_io {
  TL__WATCHER(tl_io);
  int fd;
  unsigned events;          /* TL_READ | TL_WRITE */
  struct tl_io *tl__next;   /* per-fd list */
  int tl__fdset;            /* fd set by tl_io_init since the last start */
} tl_io;

typedef struct tl_timer {
  TL__WATCHER(tl_timer);
  tl_tstamp at;             /* private while active: expiry */
  tl_tstamp repeat;
} tl_timer;

typedef struct tl_signal {
  TL__WATCHER(tl_signal);
  int signum;
  struct tl_signal *tl__next;
} tl_signal;

typedef struct tl_child {
  TL__WATCHER(tl_child);
  int pid;                  /* pid to watch, 0 for any child */
  int rpid;                 /* set before the callback: pid that changed */
  int rstatus;              /* set before the callback: waitpid status */
  struct tl_child *tl__next;
} tl_child;

typedef struct tl_async {
  TL__WATCHER(tl_async);
  volatile int tl__sent;
} tl_async;

typedef struct tl_idle { TL__WATCHER(tl_idle); } tl_idle;
typedef struct tl_prepare { TL__WATCHER(tl_prepare); } tl_prepare;
typedef struct tl_check { TL__WATCHER(tl_check); } tl_check;

typedef void (*tl_io_cb)(tl_loop *, tl_io *, unsigned);
typedef void (*tl_timer_cb)(tl_loop *, tl_timer *, unsigned);
typedef void (*tl_signal_cb)(tl_loop *, tl_signal *, unsigned);
typedef void (*tl_child_cb)(tl_loop *, tl_child *, unsigned);
typedef void (*tl_async_cb)(tl_loop *, tl_async *, unsigned);
typedef void (*tl_idle_cb)(tl_loop *, tl_idle *, unsigned);
typedef void (*tl_prepare_cb)(tl_loop *, tl_prepare *, unsigned);
typedef void (*tl_check_cb)(tl_loop *, tl_check *, unsigned);

/* Sets the priority of an inactive watcher (clamped to MINPRI..MAXPRI).
 * Returns -EBUSY if it is active or pending. */
int tl_set_priority(void *watcher, int priority);

/* Is the watcher started / pending? */
int tl_is_active(const void *watcher);
int tl_is_pending(const void *watcher);

/* Clears a pending watcher; returns the events it had pending (0 if none). */
unsigned tl_clear_pending(tl_loop *loop, void *watcher);

/* Queues events for a watcher as if they had happened (libev feed_event). */
void tl_feed_event(tl_loop *loop, void *watcher, unsigned revents);

/* io: level-triggered readiness.  -EBADF for fd < 0 or an fd the backend
 * refuses, -EINVAL for events without TL_READ|TL_WRITE.
 * Stop an fd's watchers before closing it.  As in libev (ev_io_set), a
 * watcher started again without tl_io_init is taken to watch the same file
 * as before, which lets the uring backend keep its poll across a stop and
 * restart; if the fd was closed meanwhile and its number reused, call
 * tl_io_init again before tl_io_start. */
void tl_io_init(tl_io *w, tl_io_cb cb, int fd, unsigned events);
int tl_io_start(tl_loop *loop, tl_io *w);
int tl_io_stop(tl_loop *loop, tl_io *w);
/* Changes the events of an active or inactive watcher. */
int tl_io_set(tl_loop *loop, tl_io *w, unsigned events);

/* timers: after seconds from now, then every repeat seconds (0: once).
 * -EINVAL for negative or NaN values. */
void tl_timer_init(tl_timer *w, tl_timer_cb cb, tl_tstamp after, tl_tstamp repeat);
int tl_timer_set(tl_timer *w, tl_tstamp after, tl_tstamp repeat);
int tl_timer_start(tl_loop *loop, tl_timer *w);
int tl_timer_stop(tl_loop *loop, tl_timer *w);
/* libev ev_timer_again: restart a repeating timer at now + repeat, or stop
 * it if repeat is 0. */
int tl_timer_again(tl_loop *loop, tl_timer *w);
/* Seconds until an active timer fires (0 if inactive). */
tl_tstamp tl_timer_remaining(const tl_loop *loop, const tl_timer *w);

/* signals: delivered on the loop thread.  Several loops may watch one signal;
 * each gets it.  -EINVAL for a bad signal number or SIGKILL/SIGSTOP. */
void tl_signal_init(tl_signal *w, tl_signal_cb cb, int signum);
int tl_signal_start(tl_loop *loop, tl_signal *w);
int tl_signal_stop(tl_loop *loop, tl_signal *w);

/* child exits (pid > 0, or 0 for any child).  Reaps with waitpid. */
void tl_child_init(tl_child *w, tl_child_cb cb, int pid);
int tl_child_start(tl_loop *loop, tl_child *w);
int tl_child_stop(tl_loop *loop, tl_child *w);

/* async: tl_async_send() may be called from any thread or signal handler;
 * sends coalesce until the callback runs. */
void tl_async_init(tl_async *w, tl_async_cb cb);
int tl_async_start(tl_loop *loop, tl_async *w);
int tl_async_stop(tl_loop *loop, tl_async *w);
int tl_async_send(tl_loop *loop, tl_async *w);
int tl_async_pending(const tl_async *w);

/* idle watchers run when nothing else is pending and keep the loop from
 * blocking; prepare before the loop waits; check right after. */
void tl_idle_init(tl_idle *w, tl_idle_cb cb);
int tl_idle_start(tl_loop *loop, tl_idle *w);
int tl_idle_stop(tl_loop *loop, tl_idle *w);
void tl_prepare_init(tl_prepare *w, tl_prepare_cb cb);
int tl_prepare_start(tl_loop *loop, tl_prepare *w);
int tl_prepare_stop(tl_loop *loop, tl_prepare *w);
void tl_check_init(tl_check *w, tl_check_cb cb);
int tl_check_start(tl_loop *loop, tl_check *w);
int tl_check_stop(tl_loop *loop, tl_check *w);

/* ------------------------------------------------------------------ */
/* Completion operations                                               */
/* ------------------------------------------------------------------ */

enum tl_op_type {
  TL_OP_NONE = 0,
  TL_OP_READ, TL_OP_WRITE, TL_OP_READV, TL_OP_WRITEV,
  TL_OP_FSYNC, TL_OP_FDATASYNC, TL_OP_OPENAT, TL_OP_CLOSE,
  TL_OP_ACCEPT, TL_OP_CONNECT, TL_OP_RECV, TL_OP_SEND,
  TL_OP_RECV_MULTISHOT,     /* tl_recv_multishot(): see below */
  TL_OP_WORK,               /* tl_work(): a function of the caller's, on the pool */
  TL_OP_READ_FIXED, TL_OP_WRITE_FIXED,   /* tl_read_fixed(), tl_write_fixed() */
  TL_OP_SHUTDOWN, TL_OP_STATX, TL_OP_FTRUNCATE, TL_OP_FALLOCATE,
  TL_OP_UNLINKAT, TL_OP_MKDIRAT, TL_OP_RENAMEAT,
  TL_OP_SENDMSG, TL_OP_RECVMSG, TL_OP_SEND_ZC, TL_OP_SPLICE,
  TL_OP__COUNT
};

typedef struct tl_op tl_op;
typedef struct tl_bufring tl_bufring;
struct statx;               /* <sys/stat.h> with _GNU_SOURCE, or <linux/stat.h> */
struct msghdr;
typedef void (*tl_op_cb)(tl_loop *loop, tl_op *op, int64_t result);
/* tl_work(): runs on a pool worker; its return value is the op's result. */
typedef int64_t (*tl_work_fn)(tl_op *op);

/* Private: a unit of blocking work for the shared thread pool. */
struct tl__job {
  struct tl__job *next;
  void (*work)(struct tl__job *job);   /* on a worker thread */
  void (*done)(struct tl__job *job);   /* on the loop thread */
  void *base;                          /* the loop that gets done() */
  int64_t res;
  int state;
  int cancelled;
  void *worker;
};

/*
 * A tl_op must be zeroed before its first submit (tl_op op = {0}, calloc,
 * or memset): the submit functions read its private fields to tell an op
 * that is still in flight (-EBUSY), and stack or malloc garbage can look
 * like one.  The submit functions fill in type, fd, cb and u, and leave data
 * alone.  After its callback has started an op may be resubmitted as it is,
 * without zeroing it again; zeroing an op that is in flight is undefined.
 */
struct tl_op {
  void *data;               /* user's */
  tl_op_cb cb;
  int type;                 /* enum tl_op_type */
  int fd;
  union {
    /* READ/WRITE, and READ_FIXED/WRITE_FIXED: buf lies in registered
     * buffer buf_index (ignored by the others). */
    struct { void *buf; size_t len; int64_t off; unsigned buf_index; } rw;
    struct { const struct iovec *iov; int iovcnt; int64_t off; } rwv;
    struct { const char *path; int flags; mode_t mode; } open;      /* fd = dirfd */
    struct { struct sockaddr *addr; socklen_t *addrlen; int flags; } accept;
    struct { const struct sockaddr *addr; socklen_t addrlen; } connect;
    struct { void *buf; size_t len; int flags; } msg;               /* RECV/SEND */
    /* RECV_MULTISHOT: ring and flags are the caller's; bid is the buffer
     * of the current callback (tl_op_bufid); buf and len are private. */
    struct { void *buf; size_t len; int flags; uint32_t bid; tl_bufring *ring; } ms;
    struct { tl_work_fn fn; } work;                                 /* fd = -1 */
    struct { int how; } shut;                                       /* SHUTDOWN */
    /* STATX (fd = dirfd), UNLINKAT and MKDIRAT (path, flags or mode). */
    struct { const char *path; int flags; unsigned mask; struct statx *buf; } statx;
    struct { const char *path; int flags; mode_t mode; } path;      /* fd = dirfd */
    struct { const char *oldpath; const char *newpath; int newdirfd; unsigned flags; } rename;
    struct { int64_t len; } trunc;                                  /* FTRUNCATE */
    struct { int64_t off; int64_t len; int mode; } falloc;          /* FALLOCATE */
    struct { struct msghdr *msg; int flags; } msghdr;               /* SENDMSG/RECVMSG */
    /* SPLICE: fd = fd_in. */
    struct { int fd_out; unsigned flags; int64_t off_in, off_out; size_t len; } splice;
  } u;
  /* private */
  struct tl_op *tl__next, *tl__prev;   /* loop's in-flight list */
  struct tl_op *tl__qnext;             /* backend queues, done queue */
  unsigned tl__state;
  uint32_t tl__gen;
  int64_t tl__res;
  tl_loop *tl__loop;
  tl_tstamp tl__limit;                 /* tl_op_set_timeout/deadline; 0: none */
  int tl__limit_abs;
  tl_timer tl__limit_timer;
  union {
    struct tl__job tl__job;            /* thread-pool path */
    tl_io tl__io;                      /* emulated multishot: readiness */
    int64_t tl__ts[2];                 /* uring: a linked timeout's timespec */
  };
};

/*
 * Submitting.  Offsets: off >= 0 is an absolute file offset; -1 uses and
 * advances the file position (as read(2)); sockets and pipes ignore it.
 * Sockets and pipes: the epoll and threadpool backends set O_NONBLOCK on
 * the fd of an accept, connect, read, write, readv or writev op on a
 * non-regular file (as tokio and libuv do); recv/send use MSG_DONTWAIT
 * there.  Every backend sets O_NONBLOCK on the socket of a connect (io_uring
 * would otherwise run it in a kernel worker where cancel cannot reach it).  send adds MSG_NOSIGNAL, so a closed peer
 * gives -EPIPE, never SIGPIPE.
 * Sync errors (nothing handed over): -EBADF (fd < 0), -EINVAL (NULL buffer
 * with len > 0, len > SSIZE_MAX or INT_MAX iovecs, bad type), -EBUSY (op
 * already in flight), -ESHUTDOWN (loop is being destroyed).
 */
int tl_read(tl_loop *loop, tl_op *op, int fd, void *buf, size_t len, int64_t off, tl_op_cb cb);
int tl_write(tl_loop *loop, tl_op *op, int fd, const void *buf, size_t len, int64_t off, tl_op_cb cb);
int tl_readv(tl_loop *loop, tl_op *op, int fd, const struct iovec *iov, int iovcnt, int64_t off, tl_op_cb cb);
int tl_writev(tl_loop *loop, tl_op *op, int fd, const struct iovec *iov, int iovcnt, int64_t off, tl_op_cb cb);
int tl_fsync(tl_loop *loop, tl_op *op, int fd, tl_op_cb cb);
int tl_fdatasync(tl_loop *loop, tl_op *op, int fd, tl_op_cb cb);
/* result: the new fd.  dirfd may be AT_FDCWD. */
int tl_openat(tl_loop *loop, tl_op *op, int dirfd, const char *path, int flags, mode_t mode, tl_op_cb cb);
/* Completes every other op in flight on fd (-ECANCELED) first, then closes. */
int tl_close(tl_loop *loop, tl_op *op, int fd, tl_op_cb cb);
/* result: the accepted fd (SOCK_CLOEXEC added to flags). addr may be NULL. */
int tl_accept(tl_loop *loop, tl_op *op, int fd, struct sockaddr *addr, socklen_t *addrlen, int flags, tl_op_cb cb);
int tl_connect(tl_loop *loop, tl_op *op, int fd, const struct sockaddr *addr, socklen_t addrlen, tl_op_cb cb);
int tl_recv(tl_loop *loop, tl_op *op, int fd, void *buf, size_t len, int flags, tl_op_cb cb);
int tl_send(tl_loop *loop, tl_op *op, int fd, const void *buf, size_t len, int flags, tl_op_cb cb);

/*
 * Sockets beyond send and recv.
 * tl_shutdown: shutdown(2) (how: SHUT_RD, SHUT_WR, SHUT_RDWR); result 0.
 * tl_sendmsg / tl_recvmsg: sendmsg(2) / recvmsg(2) on any socket, with
 * ancillary data (SCM_RIGHTS, ...): UDP servers, fd passing.  The msghdr
 * and everything it names (name, iovecs and their buffers, control) are
 * the caller's to keep untouched until the callback, as any op's buffer;
 * recvmsg writes msg_namelen, msg_controllen and msg_flags back before the
 * callback.  sendmsg adds MSG_NOSIGNAL; epoll and threadpool add
 * MSG_DONTWAIT, never O_NONBLOCK.  Received fds come with MSG_CMSG_CLOEXEC
 * only if flags says so.  Result: bytes.  Sync errors as tl_send, and
 * -EINVAL for a NULL msg.
 * tl_send_zc: a send that lets the kernel transmit straight from buf
 * (uring, Linux >= 6.0, IORING_OP_SEND_ZC, TCP and UDP sockets).  The
 * callback runs once, after the kernel has let go of buf: from then on buf
 * may be reused (the kernel's separate "buffer released" notification is
 * folded into that one callback; it can come a little later than a plain
 * send's).  Where zero copy is not possible (other backends, older
 * kernels, unix sockets), it is a plain tl_send with the same contract.
 * Result: bytes sent.
 */
int tl_shutdown(tl_loop *loop, tl_op *op, int fd, int how, tl_op_cb cb);
int tl_sendmsg(tl_loop *loop, tl_op *op, int fd, const struct msghdr *msg, int flags, tl_op_cb cb);
int tl_recvmsg(tl_loop *loop, tl_op *op, int fd, struct msghdr *msg, int flags, tl_op_cb cb);
int tl_send_zc(tl_loop *loop, tl_op *op, int fd, const void *buf, size_t len, int flags, tl_op_cb cb);

/*
 * File-system ops, as the syscalls of the same names (result 0, or the
 * syscall's -errno: statx of a missing path is -ENOENT).  On uring they are
 * native ops where the running kernel has the opcode (triloop-info lists
 * them), else they run on the blocking pool, as on epoll and threadpool.
 * Paths: dirfd may be AT_FDCWD.  A path (and statx's buf) stays the
 * caller's to keep untouched until the callback: on uring the kernel may
 * read the path after the submit returned, from a worker.
 * A running fs op cannot be interrupted: a cancel or a deadline that comes
 * too late gets its real result.  tl_statx needs struct statx (glibc 2.28:
 * <sys/stat.h> with _GNU_SOURCE).  tl_renameat's flags: renameat2(2)
 * (RENAME_NOREPLACE, ...).  Sync errors: -EINVAL (NULL path or buf),
 * -EBADF (fd < 0 other than AT_FDCWD for a dirfd), -EBUSY, -ESHUTDOWN.
 */
int tl_statx(tl_loop *loop, tl_op *op, int dirfd, const char *path, int flags, unsigned mask,
             struct statx *buf, tl_op_cb cb);
int tl_ftruncate(tl_loop *loop, tl_op *op, int fd, int64_t len, tl_op_cb cb);
int tl_fallocate(tl_loop *loop, tl_op *op, int fd, int mode, int64_t off, int64_t len, tl_op_cb cb);
int tl_unlinkat(tl_loop *loop, tl_op *op, int dirfd, const char *path, int flags, tl_op_cb cb);
int tl_mkdirat(tl_loop *loop, tl_op *op, int dirfd, const char *path, mode_t mode, tl_op_cb cb);
int tl_renameat(tl_loop *loop, tl_op *op, int olddirfd, const char *oldpath, int newdirfd,
                const char *newpath, unsigned flags, tl_op_cb cb);

/*
 * splice(2): moves up to len bytes from fd_in to fd_out, one of which must
 * be a pipe, without a copy through user memory.  off_in / off_out: -1 for
 * a pipe or the file position, else the offset (as splice's NULL or
 * pointer).  flags: SPLICE_F_MOVE, SPLICE_F_MORE.  A splice waiting on an
 * empty or full pipe can be cancelled on every backend (the pool path
 * waits for the pipe's readiness rather than blocking in splice(2)).
 * uring: IORING_OP_SPLICE (Linux 5.7), which the kernel runs in its io-wq
 * workers: a splice waiting on a pipe holds one of them (bounded by
 * TRILOOP_URING_IOWQ_MAX) until it moves data or is cancelled.
 * tl_close() and tl_cancel_fd() find a splice by fd_in only: cancel it
 * before closing fd_out.  Result: bytes moved, 0 at EOF of fd_in.  Sync
 * errors, besides the usual ones: -EBADF (fd_out < 0), -EINVAL (an offset
 * below -1).
 */
int tl_splice(tl_loop *loop, tl_op *op, int fd_in, int64_t off_in, int fd_out, int64_t off_out,
              size_t len, unsigned flags, tl_op_cb cb);

/* Generic submit of a filled-in op (type, fd, u, cb). */
int tl_op_submit(tl_loop *loop, tl_op *op);

/*
 * Asks for an op to be cancelled.  The callback still runs exactly once
 * (-ECANCELED, or the real result if it had finished).  Returns 0 if the
 * cancel was requested, -EALREADY if it was already requested, -ENOENT if
 * the op is not in flight on this loop (never submitted, or its callback
 * has already started).
 */
int tl_op_cancel(tl_loop *loop, tl_op *op);

/*
 * Deadlines.  tl_op_set_timeout() gives every later submit of op a limit
 * of `after` seconds, counted from that submit; tl_op_set_deadline() an
 * absolute limit against tl_now().  When the limit passes before the op
 * completes, the loop cancels it and its callback gets -ETIMEDOUT instead
 * of -ECANCELED.  On uring an op that runs on the ring carries its limit
 * as a linked timeout (IORING_OP_LINK_TIMEOUT), so the kernel cancels it
 * without a wake-up of the loop; elsewhere (and for close, multishot and
 * pool-run ops) the loop's timer does.  The race with a real completion is
 * decided by which one the kernel (or worker) finishes first: the callback still runs exactly
 * once, with either the op's real result or -ETIMEDOUT, never both.  An op
 * that cannot be interrupted (a tl_work() already running, a close) gets its
 * real result, late.  The setting stays with the op (so a resubmitted recv
 * keeps its idle timeout) until changed; 0 removes it.  A limit already
 * past at submit times the op out on the next iteration.  Call them only
 * while the op is not in flight (-EBUSY otherwise); negative, NaN or
 * infinite values are -EINVAL.  A fresh op must be zeroed (memset or = {0})
 * before its first use, as for every tl_op.
 */
int tl_op_set_timeout(tl_op *op, tl_tstamp after);
int tl_op_set_deadline(tl_op *op, tl_tstamp at);

/*
 * Work on the pool (libuv's uv_queue_work, tokio's spawn_blocking):
 * fn(op) runs on a worker of the shared blocking pool, on every backend;
 * its return value (conventionally >= 0, or -errno) is the result the
 * callback gets, on the loop thread.  The same rules as any op hold: one
 * callback, exactly once; tl_op_cancel() of a job still queued completes it
 * with -ECANCELED (fn never runs), of a running one waits for fn to return
 * and reports its result; tl_loop_destroy() cancels the queued and waits
 * for the running.  fn must not call into the loop (only tl_async_send).
 * op->data is the place for fn's argument.  Counted in tl_pool_stats().
 * Sync errors: -EINVAL (no fn or cb), -EBUSY, -ESHUTDOWN, -EAGAIN or
 * -EMFILE when no pool worker exists and none can start.
 */
int tl_work(tl_loop *loop, tl_op *op, tl_work_fn fn, tl_op_cb cb);

/* Cancels every op in flight on fd; returns how many were asked.  Call it
 * before close(2) on any fd that has served ops (rule 7): the loop forgets
 * what it keeps for the fd number. */
int tl_cancel_fd(tl_loop *loop, int fd);

/* Is the op in flight (submitted, callback not yet started)? */
int tl_op_in_flight(const tl_op *op);

/* ------------------------------------------------------------------ */
/* Registered buffers and files                                        */
/* ------------------------------------------------------------------ */

/*
 * For file IO at high rates: buffers and files registered once, so that
 * the kernel does not pin and unpin the pages of every buffer (O_DIRECT)
 * and take and drop a reference to the file for every op.  On uring these
 * are the ring's registered buffers and files (READ_FIXED / WRITE_FIXED,
 * IOSQE_FIXED_FILE).  On epoll and threadpool they cost nothing and change
 * nothing: the ops run as plain pread/pwrite.  Every backend validates the
 * same way, so a program that works on one works on all.
 *
 * Buffers.  tl_register_buffers() registers n (1..16384) buffers; index i
 * is iov[i] (iov_base NULL with iov_len 0: an empty slot).  The loop keeps
 * a copy of the array; the memory it names stays the caller's and must
 * stay valid until tl_unregister_buffers() or tl_loop_destroy().
 * tl_read_fixed() / tl_write_fixed() then move len bytes at buf, which must
 * lie entirely inside registered buffer buf_index.
 * Errors: -EBUSY (buffers already registered: unregister first, as the
 * kernel wants), -EINVAL (n out of range, NULL iov), -EFAULT (an iov_len
 * over 1 GiB, or a NULL iov_base with iov_len > 0), -ENOMEM (on uring:
 * RLIMIT_MEMLOCK, which the kernel charges registered buffers to unless
 * the process has CAP_IPC_LOCK; raise it with `ulimit -l` or register
 * less), -EOPNOTSUPP (uring: memory the kernel cannot pin, e.g. a mapping
 * of a regular file), -ESHUTDOWN.
 *
 * Files.  tl_register_files() registers n (1..32768) fds; index i is
 * fds[i] (-1: an empty slot, which tl_update_files() may fill later).
 * From then on, every read, write, readv, writev, fsync, fdatasync and
 * fixed op on a registered fd goes through its registered file: the op
 * still names the fd, there is nothing else to pass.  On uring the ring
 * holds its own reference to each registered file, so an fd must leave the
 * table before it is closed: tl_close() and tl_cancel_fd() take it out
 * (its slot becomes empty); closing a registered fd with close(2) without
 * either leaves ops on a reused number reading the old file.
 * Errors: -EBUSY (files already registered), -EINVAL (n out of range, NULL
 * fds, off + n past the table), -EBADF (an fd that is not open, or < -1),
 * -EMFILE (uring: n over RLIMIT_NOFILE), -ENOMEM, -ESHUTDOWN.
 *
 * In flight: tl_unregister_buffers() and tl_unregister_files() return
 * -EBUSY while an op that uses them (a fixed op; an op through a
 * registered file) has not completed: after its callback has started they
 * succeed (cancel it to get there sooner).
 * With nothing registered they return -ENXIO (as the kernel).
 * tl_update_files() may replace slots with ops in flight: those ops keep
 * the file they started with.  tl_loop_destroy() unregisters whatever is
 * still registered, after the last callback.  tl_loop_fork() registers
 * the same buffers and files again in the child's new ring.
 * Like everything else, these are called on the loop's thread.
 */
int tl_register_buffers(tl_loop *loop, const struct iovec *iov, unsigned n);
int tl_unregister_buffers(tl_loop *loop);
int tl_register_files(tl_loop *loop, const int *fds, unsigned n);
/* Replaces slots off..off+n-1 with fds (-1 empties a slot). */
int tl_update_files(tl_loop *loop, unsigned off, const int *fds, unsigned n);
int tl_unregister_files(tl_loop *loop);

/* tl_read / tl_write with buf inside registered buffer buf_index.  Sync
 * errors, besides tl_read's: -EINVAL (buf_index not a registered buffer,
 * or none registered), -EFAULT (buf..buf+len not inside that buffer). */
int tl_read_fixed(tl_loop *loop, tl_op *op, int fd, void *buf, size_t len, int64_t off,
                  unsigned buf_index, tl_op_cb cb);
int tl_write_fixed(tl_loop *loop, tl_op *op, int fd, const void *buf, size_t len,
                   int64_t off, unsigned buf_index, tl_op_cb cb);

/* ------------------------------------------------------------------ */
/* Multishot receive into a ring of provided buffers                   */
/* ------------------------------------------------------------------ */

/*
 * For servers that want the kernel to pick the buffer: one submit, a
 * callback per message, no buffer tied up in a quiet connection.  On uring
 * (kernel >= 6.0) this is a multishot RECV with a registered buffer ring:
 * no syscall per message and no copy through a buffer of ours.  On every
 * other backend (and older kernels) the loop emulates it with the same
 * semantics: on readiness it takes a free buffer and receives into it.
 *
 * A tl_bufring owns nbufs buffers of bufsize bytes each (one page-aligned
 * allocation).  Each buffer is in one of two hands: the loop's (free, or
 * being received into) or the caller's (delivered by a callback, until
 * tl_bufring_recycle() gives it back).  Several multishot ops, on several
 * fds, may share one ring: that is the point, a buffer is only taken when
 * data is there.
 */

/* Creates a ring of nbufs (a power of two, 1..32768) buffers of bufsize
 * bytes (1..2^31-1) for loop.  Errors: -EINVAL (bad sizes, NULL args),
 * -ENOMEM. */
int tl_bufring_new(tl_loop *loop, tl_bufring **ringp, unsigned nbufs, size_t bufsize);

/* Frees the ring and its buffers, including those still in the caller's
 * hands.  -EBUSY while a multishot op is armed on it (from its final
 * callback on it is not).  -EINVAL for NULL or another loop's ring.
 * tl_loop_destroy() frees the rings still alive after the last callback. */
int tl_bufring_free(tl_loop *loop, tl_bufring *ring);

/* Address of buffer bid (NULL for a bid out of range). */
void *tl_bufring_buf(const tl_bufring *ring, unsigned bid);
size_t tl_bufring_bufsize(const tl_bufring *ring);
/* 1 if the kernel picks the buffers (uring with provided buffer rings,
 * Linux >= 6.0), 0 if the loop emulates. */
int tl_bufring_kernel(const tl_bufring *ring);
/* Buffers in the loop's hands right now (free to receive into). */
unsigned tl_bufring_avail(const tl_bufring *ring);

/* Gives buffer bid back to the loop, from a callback or any time later on
 * the loop's thread.  -EINVAL for a bid out of range, -EALREADY for a
 * buffer that is not in the caller's hands. */
int tl_bufring_recycle(tl_bufring *ring, unsigned bid);

/*
 * Arms a multishot receive on socket fd into ring's buffers.  The callback
 * runs once per message while the op stays armed:
 *   result > 0   result bytes are in tl_bufring_buf(ring, tl_op_bufid(op));
 *                that buffer is the caller's until tl_bufring_recycle().
 *                The op is still in flight (tl_op_in_flight() is 1): do not
 *                resubmit or free it.
 *   result <= 0  the final callback, exactly once: 0 at EOF, -ECANCELED
 *                after tl_op_cancel()/tl_close()/tl_loop_destroy(),
 *                -ENOBUFS when the op went to take its next buffer and
 *                every buffer was in the caller's hands (it is not
 *                re-armed by itself: recycling is the caller's pace), or
 *                the recv error.  No buffer comes
 *                with it, and the op is the caller's again (rearm it with
 *                another tl_recv_multishot() after recycling buffers).
 * Every data callback comes before the final one.  flags: recv(2) flags
 * (MSG_DONTWAIT is implied).  Sync errors (nothing armed): -EBADF,
 * -EINVAL (NULL ring or cb, a ring of another loop), -ENOBUFS (no buffer
 * free right now), -EBUSY (op in flight), -ESHUTDOWN.
 */
int tl_recv_multishot(tl_loop *loop, tl_op *op, int fd, tl_bufring *ring, int flags, tl_op_cb cb);

/* In a data callback of a multishot op: the buffer id it delivered. */
unsigned tl_op_bufid(const tl_op *op);

/* ------------------------------------------------------------------ */
/* The shared blocking pool (epoll file ops, threadpool backend)       */
/* ------------------------------------------------------------------ */

struct tl_pool_stats {
  unsigned threads;        /* worker threads alive */
  unsigned busy;           /* workers running a job */
  unsigned idle;           /* workers waiting for a job */
  unsigned queued;         /* jobs waiting for a worker */
  unsigned max_threads;    /* TRILOOP_THREADS_MAX */
  uint64_t completed;      /* jobs finished since start */
  uint64_t spawn_failures; /* pthread_create failures */
  /* TL_FLAG_FILE_NOWAIT, every loop of the process: file ops completed
   * inline on the loop thread, and inline tries that would have blocked
   * (EAGAIN) and went to the pool. */
  uint64_t nowait_hits;
  uint64_t nowait_eagain;
};
void tl_pool_stats(struct tl_pool_stats *st);

/*
 * Text for a value returned by any tl_ function: "success" for values >= 0,
 * otherwise strerror()'s text for the errno (op results carry the kernel's
 * errnos unchanged, so the text says what the kernel meant).  What the API
 * itself means by an errno it returns:
 *   -EINVAL     bad argument: an unknown backend name or flag (valid names:
 *               tl_backend_names()), a bad TRILOOP_* number (tl_env_check()
 *               names it), an unknown run mode
 *   -EBUSY      the watcher is already active, the op already in flight, or
 *               tl_run()/tl_loop_destroy() called from inside the loop
 *   -EALREADY   stopping a watcher that is not active, or a cancel already
 *               requested
 *   -ENOENT     tl_op_cancel() of an op that is not in flight on this loop
 *   -ESHUTDOWN  a submit during tl_loop_destroy()
 *   -ECANCELED  the op was cancelled (tl_op_cancel, tl_cancel_fd, destroy)
 *   -EPERM      io_uring forbidden (seccomp, kernel.io_uring_disabled):
 *               tl_backend_probe()'s why text says which
 *   -ENOSYS     not supported by this kernel or backend
 *   -EEXIST     tl_run() of a single-issuer uring loop from a thread other
 *               than the one that first ran it (see tl_run())
 */
const char *tl_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* TRILOOP_H */
