/*
 * libFuzzer target: the input is a script of tl_* calls over a small fixed
 * world (pipes, socketpairs, a file, a unix listener, watchers of every kind
 * but signal/child, op slots), and after every step the target checks what
 * the header promises:
 *
 *  - every submitted op gets its callback exactly once, never for an op that
 *    is not in flight, and tl_ops_in_flight() equals our own count;
 *  - tl_close() calls back the fd's other ops before its own callback;
 *  - a stopped watcher's callback never runs; tl_is_active()/tl_is_pending()
 *    match our own model between steps;
 *  - tl_loop_destroy() leaves nothing in flight, and every fd we did not close
 *    is still open and still the same file (no double close);
 *  - ops' memory (the tl_op itself, buffers, iovecs, paths, sockaddrs) is
 *    malloc'ed per submit and freed in the callback, and stopped watchers may
 *    be freed at once, so any access by the library after it handed them
 *    back is a heap-use-after-free for ASan.
 * Any violation calls abort() after printing what broke.
 *
 * The first input byte picks the backend (uring, epoll, threadpool) unless
 * TRILOOP_FUZZ_BACKEND=uring|epoll|threadpool pins it (the byte is consumed
 * either way, so one corpus serves all three).
 *
 * Build and short runs: tests/fuzz/build.sh, tests/ci/fuzz.sh (60 s per
 * backend).  The longer run, one backend per core, as many hours as you like:
 *
 *   tests/fuzz/build.sh && mkdir -p build/fuzz/corpus-uring &&
 *   TRILOOP_FUZZ_BACKEND=uring build/fuzz/fuzz_api -max_total_time=3600 \
 *     -timeout=20 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
 *     -artifact_prefix=build/fuzz/ build/fuzz/corpus-uring tests/fuzz/corpus
 *
 * (same with epoll and threadpool).  New corpus entries land in the first
 * directory; tests/fuzz/corpus stays the small committed seed set.  Replay a
 * crash with: TRILOOP_FUZZ_BACKEND=... build/fuzz/fuzz_api <crash-file>, and
 * TRILOOP_FUZZ_TRACE=1 prints the script step by step.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "triloop.h"

/* ------------------------------------------------------------------ */
/* The world                                                           */
/* ------------------------------------------------------------------ */

#define NPIPE 2
#define NSOCK 2
#define NOBJ (NPIPE + NSOCK + 2)
#define OBJ_FILE (NPIPE + NSOCK)
#define OBJ_LISTEN (NPIPE + NSOCK + 1)
#define NEP (2 * NPIPE + 2 * NSOCK + 2)
#define EP_FILE (2 * NPIPE + 2 * NSOCK)
#define EP_LISTEN (EP_FILE + 1)

#define NSLOT 8
#define MAX_STEPS 400
#define REACT_BUDGET 48

enum { ST_CLOSED, ST_OPEN, ST_CLOSING, ST_OPENING };
enum { W_IO, W_TIMER, W_IDLE, W_PREPARE, W_CHECK, W_ASYNC };
enum {
  K_READ, K_WRITE, K_READV, K_WRITEV, K_RECV, K_SEND, K_FSYNC, K_FDATASYNC,
  K_ACCEPT, K_CONNECT, K__COUNT
};

/* An internal op: a close of an endpoint or the reopen of the file. */
struct iop {
  tl_op op;
  int ep;
  int cancel_possible;
  int user_cancelled;
  char *path;
};

struct ep {
  int fd;
  int state;
  dev_t dev;
  ino_t ino;
  int accmode;
  int alias;          /* pipes: the same end opened again, O_NONBLOCK */
  unsigned gen;       /* bumped for every new file recorded here */
  int ops;            /* slot ops in flight on fd */
  struct iop *iop;    /* close or openat in flight */
};

struct slot {
  tl_op *op;          /* in flight, else NULL */
  int kind, ep;
  size_t total;
  void *buf;
  struct iovec *iov;
  int iovcnt;
  int connfd;
  ino_t connino;
  struct sockaddr_un *addr;
  socklen_t *alen;
  unsigned char react;
  int cancel_possible;
  unsigned long submitted, delivered;
};

static const int wkind[] = { W_IO, W_IO, W_IO, W_IO, W_TIMER, W_TIMER, W_TIMER,
                             W_IDLE, W_PREPARE, W_CHECK, W_ASYNC, W_ASYNC };
#define NW ((int)(sizeof wkind / sizeof wkind[0]))

struct wm {
  tl_watcher *w;
  int active;         /* our model: started and not stopped */
  int fed;            /* a fed event not yet delivered */
  int ep;             /* io: endpoint it watches */
  unsigned epgen;     /* io: that endpoint's file (ep.gen) at the last start */
  unsigned char react;
};

static struct {
  int backend;        /* pinned by env, or 0 */
  int trace;
  char path[128];     /* the file */
  char lname[64];     /* listener's abstract name (without the NUL) */
  unsigned lgen;
  tl_loop *loop;
  int cur_backend;
  const uint8_t *p;
  size_t n;
  int eof;
  int destroying;
  int in_run_default;
  int budget;
  int inflight;
  struct ep ep[NEP];
  struct slot s[NSLOT];
  struct wm w[NW];
  tl_timer *guard;
  int guard_armed;
  int fd_baseline;
  int usable[TL_BACKEND_COUNT];
} F;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_api: INVARIANT BROKEN (%s backend): ",
          F.loop ? tl_backend_name(F.loop) : "?");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static void trace(const char *fmt, ...) {
  if (!F.trace)
    return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static unsigned next(void) {
  if (!F.n) {
    F.eof = 1;
    return 0;
  }
  F.n--;
  return *F.p++;
}

static int ep_first(int o) { return o < NPIPE + NSOCK ? 2 * o : o == OBJ_FILE ? EP_FILE : EP_LISTEN; }
static int ep_count(int o) { return o < NPIPE + NSOCK ? 2 : 1; }
static int is_pipe(int o) { return o < NPIPE; }
static int is_sock(int o) { return o >= NPIPE && o < NPIPE + NSOCK; }

/* ------------------------------------------------------------------ */
/* fds: identity, creation, the checks                                 */
/* ------------------------------------------------------------------ */

static void ep_record(int e, int fd) {
  struct stat st;
  struct ep *p = &F.ep[e];
  CHECK(fstat(fd, &st) == 0, "fstat of new fd %d: %s", fd, strerror(errno));
  static unsigned gens;
  p->gen = ++gens;
  p->fd = fd;
  p->dev = st.st_dev;
  p->ino = st.st_ino;
  p->accmode = fcntl(fd, F_GETFL) & O_ACCMODE;
  p->state = ST_OPEN;
  p->ops = 0;
  p->iop = NULL;
}

/* Is fd still the file endpoint e recorded? */
static int ep_same(int e) {
  struct stat st;
  struct ep *p = &F.ep[e];
  if (fstat(p->fd, &st) < 0)
    return 0;
  return st.st_dev == p->dev && st.st_ino == p->ino &&
         (fcntl(p->fd, F_GETFL) & O_ACCMODE) == p->accmode;
}

static void listener_addr(struct sockaddr_un *a, socklen_t *len) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  size_t n = strlen(F.lname);
  memcpy(a->sun_path + 1, F.lname, n);   /* abstract: leading NUL */
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* Creates object o with plain syscalls (the file: a plain open). */
static void obj_create(int o) {
  int e = ep_first(o);
  if (is_pipe(o)) {
    int pf[2];
    if (pipe2(pf, O_CLOEXEC) < 0)
      return;
    ep_record(e, pf[0]);
    ep_record(e + 1, pf[1]);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", pf[0]);
    F.ep[e].alias = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/self/fd/%d", pf[1]);
    F.ep[e + 1].alias = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    CHECK(F.ep[e].alias >= 0 && F.ep[e + 1].alias >= 0, "pipe alias: %s", strerror(errno));
  } else if (is_sock(o)) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
      return;
    ep_record(e, sv[0]);
    ep_record(e + 1, sv[1]);
  } else if (o == OBJ_FILE) {
    int fd = open(F.path, O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0, "open %s: %s", F.path, strerror(errno));
    ep_record(e, fd);
  } else {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return;
    struct sockaddr_un a;
    socklen_t len;
    snprintf(F.lname, sizeof F.lname, "triloop-fuzz-%d-%u", (int)getpid(), F.lgen++);
    listener_addr(&a, &len);
    if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, 8) < 0) {
      close(fd);
      return;
    }
    ep_record(e, fd);
  }
}

static void aliases_close(int o) {
  for (int e = ep_first(o); e < ep_first(o) + ep_count(o); e++)
    if (F.ep[e].alias >= 0) {
      close(F.ep[e].alias);
      F.ep[e].alias = -1;
    }
}

static void on_open(tl_loop *loop, tl_op *op, int64_t res);

/* Objects whose endpoints are all closed come back: the file through
 * tl_openat (its path is the caller's memory until the callback), the others
 * with plain syscalls. */
static void objs_revive(void) {
  for (int o = 0; o < NOBJ; o++) {
    int e0 = ep_first(o), all_closed = 1;
    for (int e = e0; e < e0 + ep_count(o); e++)
      all_closed &= F.ep[e].state == ST_CLOSED;
    if (!all_closed)
      continue;
    aliases_close(o);
    if (o != OBJ_FILE || !F.loop) {
      obj_create(o);
      continue;
    }
    struct iop *io = calloc(1, sizeof *io);
    io->ep = e0;
    io->path = strdup(F.path);
    io->op.data = io;
    int r = tl_openat(F.loop, &io->op, AT_FDCWD, io->path, O_RDWR | O_CLOEXEC, 0, on_open);
    if (r < 0) {
      CHECK(r != -EBUSY, "openat of a fresh op: -EBUSY");
      free(io->path);
      free(io);
      continue;
    }
    F.ep[e0].state = ST_OPENING;
    F.ep[e0].iop = io;
    F.inflight++;
  }
}

static void fds_check(void) {
  for (int e = 0; e < NEP; e++) {
    struct ep *p = &F.ep[e];
    if (p->state == ST_OPEN)
      CHECK(ep_same(e), "endpoint %d fd %d was closed or replaced behind our back "
            "(double close?)", e, p->fd);
    if (p->alias >= 0)
      CHECK(fcntl(p->alias, F_GETFD) >= 0, "alias fd %d of endpoint %d closed", p->alias, e);
  }
  for (int i = 0; i < NSLOT; i++) {
    struct slot *s = &F.s[i];
    struct stat st;
    if (s->op && s->kind == K_CONNECT)
      CHECK(fstat(s->connfd, &st) == 0 && st.st_ino == s->connino,
            "connect socket fd %d of slot %d closed behind our back", s->connfd, i);
  }
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* ------------------------------------------------------------------ */
/* Watchers                                                            */
/* ------------------------------------------------------------------ */

static const double afters[] = { 0, 0.0001, 0.0005, 0.001, 0.002 };
static const double repeats[] = { 0, 0, 0.0002, 0.001 };

static void on_w(tl_loop *loop, tl_watcher *w, unsigned revents);
static void react(unsigned char r, int self_w, int self_slot);

static void w_alloc(int i) {
  static const size_t sz[] = { sizeof(tl_io), sizeof(tl_timer), sizeof(tl_idle),
                               sizeof(tl_prepare), sizeof(tl_check), sizeof(tl_async) };
  int k = wkind[i];
  void *w = malloc(sz[k]);
  switch (k) {
  case W_IO: tl_io_init(w, (tl_io_cb)on_w, -1, TL_READ); break;
  case W_TIMER: tl_timer_init(w, (tl_timer_cb)on_w, 0, 0); break;
  case W_IDLE: tl_idle_init(w, (tl_idle_cb)on_w); break;
  case W_PREPARE: tl_prepare_init(w, (tl_prepare_cb)on_w); break;
  case W_CHECK: tl_check_init(w, (tl_check_cb)on_w); break;
  case W_ASYNC: tl_async_init(w, (tl_async_cb)on_w); break;
  }
  ((tl_watcher *)w)->data = (void *)(intptr_t)i;
  F.w[i] = (struct wm){ .w = w, .ep = -1 };
}

static int w_stop_raw(int i) {
  void *w = F.w[i].w;
  switch (wkind[i]) {
  case W_IO: return tl_io_stop(F.loop, w);
  case W_TIMER: return tl_timer_stop(F.loop, w);
  case W_IDLE: return tl_idle_stop(F.loop, w);
  case W_PREPARE: return tl_prepare_stop(F.loop, w);
  case W_CHECK: return tl_check_stop(F.loop, w);
  default: return tl_async_stop(F.loop, w);
  }
}

static void w_stop(int i, unsigned flags) {
  struct wm *m = &F.w[i];
  int want = (m->active || m->fed) ? 0 : -EALREADY;
  int r = w_stop_raw(i);
  trace("  stop w%d -> %d", i, r);
  CHECK(r == want, "stop of watcher %d (kind %d, model active %d fed %d) returned %d, "
        "expected %d", i, wkind[i], m->active, m->fed, r, want);
  m->active = m->fed = 0;
  CHECK(!tl_is_active(m->w) && !tl_is_pending(m->w), "watcher %d active/pending after stop", i);
  if (flags & 1) {
    /* A stopped watcher is the caller's memory again (libev's rule). */
    free(m->w);
    w_alloc(i);
  }
}

static void w_start(int i, unsigned arg, unsigned char rb) {
  struct wm *m = &F.w[i];
  void *w = m->w;
  int r;
  if (tl_is_active(w)) {
    switch (wkind[i]) {
    case W_IO: r = tl_io_start(F.loop, w); break;
    case W_TIMER: r = tl_timer_start(F.loop, w); break;
    case W_IDLE: r = tl_idle_start(F.loop, w); break;
    case W_PREPARE: r = tl_prepare_start(F.loop, w); break;
    case W_CHECK: r = tl_check_start(F.loop, w); break;
    default: r = tl_async_start(F.loop, w); break;
    }
    CHECK(r == -EBUSY, "start of active watcher %d returned %d", i, r);
    return;
  }
  m->react = rb;
  switch (wkind[i]) {
  case W_IO: {
    int e = (int)(arg % NEP);
    if (F.ep[e].state != ST_OPEN)
      return;
    tl_io *io = w;
    unsigned events = 1 + (arg >> 4) % 3;
    if (m->ep != e || m->epgen != F.ep[e].gen) {
      /* Another file than at its last start: the API's rule (libev's for
       * ev_io_set) is to initialise it again, which a pending watcher
       * must not be. */
      if (tl_is_pending(w))
        return;
      int pri = io->priority;
      void *data = io->data;
      tl_io_init(io, (tl_io_cb)on_w, F.ep[e].fd, events);
      io->priority = pri;
      io->data = data;
    } else {
      io->events = events;
    }
    r = tl_io_start(F.loop, io);
    trace("  io_start w%d ep%d fd %d ev %u -> %d", i, e, io->fd, io->events, r);
    if (r < 0) {
      CHECK(r != -EBUSY && !tl_is_active(w), "io start failed %d but active", r);
      return;
    }
    m->ep = e;
    m->epgen = F.ep[e].gen;
    break;
  }
  case W_TIMER:
    r = tl_timer_set(w, afters[arg % 5], repeats[(arg >> 3) % 4]);
    CHECK(r == 0, "timer_set on inactive timer: %d", r);
    r = tl_timer_start(F.loop, w);
    break;
  case W_IDLE: r = tl_idle_start(F.loop, w); break;
  case W_PREPARE: r = tl_prepare_start(F.loop, w); break;
  case W_CHECK: r = tl_check_start(F.loop, w); break;
  default: r = tl_async_start(F.loop, w); break;
  }
  trace("  start w%d -> %d", i, r);
  CHECK(r == 0, "start of inactive watcher %d (kind %d) returned %d", i, wkind[i], r);
  CHECK(tl_is_active(w), "watcher %d inactive after start", i);
  m->active = 1;
}

static void w_change(int i, unsigned arg) {
  struct wm *m = &F.w[i];
  void *w = m->w;
  int r;
  if ((arg & 0x80) || wkind[i] > W_TIMER) {
    int want = (tl_is_active(w) || tl_is_pending(w)) ? -EBUSY : 0;
    CHECK(want == ((m->active || m->fed) ? -EBUSY : 0), "watcher %d: model active %d fed %d, "
          "library active %d pending %d", i, m->active, m->fed, tl_is_active(w), tl_is_pending(w));
    r = tl_set_priority(w, (int)(arg % 5) - 2);
    CHECK(r == want, "set_priority of watcher %d returned %d, expected %d", i, r, want);
    return;
  }
  if (wkind[i] == W_IO) {
    r = tl_io_set(F.loop, w, 1 + arg % 3);
    CHECK(r == 0, "io_set returned %d", r);
  } else {
    ((tl_timer *)w)->repeat = repeats[arg % 4];
    r = tl_timer_again(F.loop, w);
    CHECK(r == 0, "timer_again returned %d", r);
    m->active = ((tl_timer *)w)->repeat > 0;
    m->fed = 0;
  }
  trace("  change w%d arg %u", i, arg);
}

static void w_feed(int i, unsigned arg) {
  static const unsigned natural[] = { TL_READ, TL_TIMER, TL_IDLE, TL_PREPARE, TL_CHECK, TL_ASYNC };
  unsigned ev = (arg & 1) ? (arg << 8) | (arg & 0x3) : natural[wkind[i]];
  if (!ev)
    ev = TL_READ;
  trace("  feed w%d %#x", i, ev);
  tl_feed_event(F.loop, F.w[i].w, ev);
  F.w[i].fed = 1;
  CHECK(tl_is_pending(F.w[i].w), "watcher %d not pending after feed", i);
}

static void on_w(tl_loop *loop, tl_watcher *w, unsigned revents) {
  int i = (int)(intptr_t)w->data;
  CHECK(loop == F.loop, "watcher callback from a loop that is not ours");
  CHECK(i >= 0 && i < NW && F.w[i].w == w, "callback for an unknown watcher %p", (void *)w);
  struct wm *m = &F.w[i];
  trace("  cb w%d revents %#x (model active %d fed %d)", i, revents, m->active, m->fed);
  CHECK(m->active || m->fed, "callback of watcher %d (kind %d) after it was stopped, "
        "revents %#x", i, wkind[i], revents);
  CHECK(!tl_is_pending(w), "watcher %d still pending inside its callback", i);
  if (!m->fed) {
    static const unsigned natural[] = { TL_READ | TL_WRITE | TL_ERROR, TL_TIMER, TL_IDLE,
                                        TL_PREPARE, TL_CHECK, TL_ASYNC };
    CHECK(revents && !(revents & ~natural[wkind[i]]), "watcher %d (kind %d) got revents %#x",
          i, wkind[i], revents);
    if (wkind[i] == W_IO && !(revents & TL_ERROR))
      CHECK(!(revents & ~((tl_io *)w)->events), "io watcher %d wants %#x, got %#x", i,
            ((tl_io *)w)->events, revents);
  }
  m->fed = 0;
  /* Expiry of a one-shot timer and a bad fd are the library's decisions. */
  if (wkind[i] == W_TIMER || (wkind[i] == W_IO && (revents & TL_ERROR)))
    m->active = tl_is_active(w);
  react(m->react, i, -1);   /* may free w: last */
}

static void on_guard(tl_loop *loop, tl_timer *w, unsigned revents) {
  CHECK(F.guard_armed, "guard timer callback while not armed");
  F.guard_armed = 0;
  if (F.in_run_default)
    tl_break(loop);
}

static void ws_check(void) {
  for (int i = 0; i < NW; i++) {
    struct wm *m = &F.w[i];
    CHECK(!!tl_is_active(m->w) == m->active, "watcher %d (kind %d): library active %d, "
          "model %d", i, wkind[i], tl_is_active(m->w), m->active);
    CHECK(!!tl_is_pending(m->w) == m->fed, "watcher %d (kind %d): library pending %d, "
          "model %d", i, wkind[i], tl_is_pending(m->w), m->fed);
  }
}

/* Stops every io watcher on endpoint e (before its fd goes away). */
static void ep_unwatch(int e) {
  for (int i = 0; i < NW; i++)
    if (wkind[i] == W_IO && F.w[i].ep == e && (F.w[i].active || F.w[i].fed ||
                                              tl_is_active(F.w[i].w)))
      w_stop(i, 0);
}

/* ------------------------------------------------------------------ */
/* Ops                                                                 */
/* ------------------------------------------------------------------ */

static const size_t lens[] = { 0, 1, 16, 100, 512, 4096, 8192, 70000 };

static void slot_free_mem(struct slot *s) {
  free(s->buf);
  if (s->iov)
    for (int j = 0; j < s->iovcnt; j++)
      free(s->iov[j].iov_base);
  free(s->iov);
  free(s->addr);
  free(s->alen);
  if (s->connfd >= 0) {
    /* Rule 7 of the header: the loop forgets the fd before its number can
     * be reused (the backends cache per-fd state, such as O_NONBLOCK). */
    if (F.loop)
      (void)tl_cancel_fd(F.loop, s->connfd);
    close(s->connfd);
  }
  s->buf = NULL;
  s->iov = NULL;
  s->addr = NULL;
  s->alen = NULL;
  s->connfd = -1;
}

static void on_slot(tl_loop *loop, tl_op *op, int64_t res);

static int slot_submit_op(struct slot *s, tl_op *op) {
  int r = tl_op_submit(F.loop, op);
  if (F.destroying)
    CHECK(r == -ESHUTDOWN, "submit during destroy returned %d", r);
  if (r < 0)
    return r;
  s->op = op;
  s->submitted++;
  s->cancel_possible = 0;
  F.inflight++;
  if (s->ep >= 0)
    F.ep[s->ep].ops++;
  return 0;
}

static void op_submit(int si, unsigned eb, unsigned kb, unsigned szb, unsigned char rb) {
  struct slot *s = &F.s[si];
  if (s->op) {
    /* Rule: an op in flight is the loop's; a second submit is refused and
     * changes nothing. */
    int r = tl_op_submit(F.loop, s->op);
    CHECK(r == -EBUSY, "second submit of op in flight (slot %d) returned %d", si, r);
    return;
  }
  int kind = (int)(kb % K__COUNT);
  int e = (int)(eb % NEP);
  if (kind == K_ACCEPT && (eb & 0x30))
    e = EP_LISTEN;
  if (kind == K_CONNECT)
    e = -1;
  else if (F.ep[e].state != ST_OPEN)
    return;
  int fd = e >= 0 ? F.ep[e].fd : -1;
  size_t len = lens[szb & 7];
  int64_t off = (szb >> 3) == 31 ? -1 : (int64_t)(szb >> 3) * 97;
  tl_op *op = calloc(1, sizeof *op);
  op->data = s;
  s->kind = kind;
  s->ep = e;
  s->react = rb;
  s->connfd = -1;
  s->total = len;
  int r;
  switch (kind) {
  case K_READ: case K_RECV:
    s->buf = malloc(len ? len : 1);
    r = kind == K_READ ? tl_read(F.loop, op, fd, s->buf, len, off, on_slot)
                       : tl_recv(F.loop, op, fd, s->buf, len, (szb & 0x80) ? MSG_DONTWAIT : 0, on_slot);
    break;
  case K_WRITE: case K_SEND:
    s->buf = malloc(len ? len : 1);
    memset(s->buf, 'a' + si, len);
    r = kind == K_WRITE ? tl_write(F.loop, op, fd, s->buf, len, off, on_slot)
                        : tl_send(F.loop, op, fd, s->buf, len, 0, on_slot);
    break;
  case K_READV: case K_WRITEV: {
    int n = 1 + (int)((szb >> 3) % 4);
    s->iov = calloc((size_t)n, sizeof *s->iov);
    s->iovcnt = n;
    s->total = 0;
    for (int j = 0; j < n; j++) {
      size_t l = len / (size_t)n + (size_t)j;
      s->iov[j].iov_base = malloc(l ? l : 1);
      s->iov[j].iov_len = l;
      memset(s->iov[j].iov_base, 'A' + si, l);
      s->total += l;
    }
    r = kind == K_READV ? tl_readv(F.loop, op, fd, s->iov, n, (szb & 0x80) ? -1 : 13, on_slot)
                        : tl_writev(F.loop, op, fd, s->iov, n, (szb & 0x80) ? -1 : 13, on_slot);
    break;
  }
  case K_FSYNC: r = tl_fsync(F.loop, op, fd, on_slot); break;
  case K_FDATASYNC: r = tl_fdatasync(F.loop, op, fd, on_slot); break;
  case K_ACCEPT:
    if (szb & 1) {
      s->addr = calloc(1, sizeof *s->addr);
      s->alen = malloc(sizeof *s->alen);
      *s->alen = sizeof *s->addr;
    }
    r = tl_accept(F.loop, op, fd, (struct sockaddr *)s->addr, s->alen,
                  (szb & 2) ? SOCK_NONBLOCK : 0, on_slot);
    break;
  default: {
    struct stat st;
    /* Blocking and nonblocking sockets alike (a blocking AF_UNIX connect to
     * a full backlog once made uring's destroy hang; connect ops now set
     * O_NONBLOCK on every backend). */
    int nb = (szb & 2) != 0;
    s->connfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);
    if (s->connfd < 0) {
      free(op);
      return;
    }
    fstat(s->connfd, &st);
    s->connino = st.st_ino;
    s->addr = calloc(1, sizeof *s->addr);
    socklen_t alen;
    listener_addr(s->addr, &alen);
    r = tl_connect(F.loop, op, s->connfd, (struct sockaddr *)s->addr, alen, on_slot);
    break;
  }
  }
  if (r == 0) {
    s->op = op;
    s->submitted++;
    s->cancel_possible = 0;
    F.inflight++;
    if (e >= 0)
      F.ep[e].ops++;
  } else {
    if (F.destroying)
      CHECK(r == -ESHUTDOWN, "submit during destroy returned %d", r);
    CHECK(r != -EBUSY, "submit of an idle op returned -EBUSY");
    slot_free_mem(s);
    free(op);
  }
  trace("  submit slot %d kind %d ep %d len %zu -> %d (inflight %d)", si, kind, e, s->total, r,
        F.inflight);
}

static void on_slot(tl_loop *loop, tl_op *op, int64_t res) {
  struct slot *s = op->data;
  int si = (int)(s - F.s);
  CHECK(loop == F.loop, "op callback from a loop that is not ours");
  CHECK(si >= 0 && si < NSLOT, "op callback with foreign data");
  trace("  cb slot %d kind %d res %lld", si, s->kind, (long long)res);
  CHECK(s->op == op, "callback for slot %d, which is not in flight (duplicate callback?)", si);
  s->delivered++;
  CHECK(s->delivered == s->submitted, "slot %d: %lu submitted, %lu delivered", si,
        s->submitted, s->delivered);
  s->op = NULL;
  F.inflight--;
  if (s->ep >= 0)
    F.ep[s->ep].ops--;
  CHECK(tl_ops_in_flight(loop) == (unsigned)F.inflight, "in a callback: tl_ops_in_flight %u, "
        "ours %d", tl_ops_in_flight(loop), F.inflight);
  CHECK(!tl_op_in_flight(op), "op in flight inside its own callback");
  CHECK(tl_op_cancel(loop, op) == -ENOENT, "cancel of an op whose callback runs is not -ENOENT");
  CHECK(res >= -4095, "slot %d: result %lld", si, (long long)res);
  CHECK(res != -ECANCELED || s->cancel_possible, "slot %d (kind %d): -ECANCELED without a "
        "cancel", si, s->kind);
  switch (s->kind) {
  case K_READ: case K_WRITE: case K_READV: case K_WRITEV: case K_RECV: case K_SEND:
    CHECK(res <= (int64_t)s->total, "slot %d: %lld bytes for a %zu-byte request", si,
          (long long)res, s->total);
    break;
  case K_ACCEPT:
    if (res >= 0) {
      struct stat st;
      CHECK(fstat((int)res, &st) == 0 && S_ISSOCK(st.st_mode), "accept gave fd %lld, not a "
            "socket", (long long)res);
      (void)tl_cancel_fd(loop, (int)res);   /* rule 7, as for the connect sockets */
      close((int)res);
    }
    break;
  default:
    CHECK(res <= 0, "slot %d (kind %d): result %lld", si, s->kind, (long long)res);
  }
  /* Rule 3: the callback may resubmit the same op with the same memory. */
  if ((s->react & 7) == 6 && s->kind != K_CONNECT && F.budget > 0 &&
      (s->ep < 0 || F.ep[s->ep].state == ST_OPEN)) {
    F.budget--;
    if (slot_submit_op(s, op) == 0) {
      trace("  resubmit slot %d", si);
      return;
    }
  }
  slot_free_mem(s);
  free(op);
  react(s->react, -1, si);
}

static void on_close(tl_loop *loop, tl_op *op, int64_t res) {
  struct iop *io = op->data;
  int e = io->ep;
  struct ep *p = &F.ep[e];
  trace("  cb close ep%d fd %d res %lld", e, p->fd, (long long)res);
  CHECK(p->state == ST_CLOSING && p->iop == io, "close callback for endpoint %d not closing", e);
  /* tl_close's promise (the fd's other ops first) is about the close; one
   * the caller cancelled itself may end at once (the header promises no
   * order for it). */
  CHECK(p->ops == 0 || io->user_cancelled, "close of endpoint %d called back before its %d "
        "other ops", e, p->ops);
  F.inflight--;
  CHECK(tl_ops_in_flight(loop) == (unsigned)F.inflight, "in close callback: tl_ops_in_flight %u,"
        " ours %d", tl_ops_in_flight(loop), F.inflight);
  CHECK(res <= 0 && res >= -4095, "close result %lld", (long long)res);
  CHECK(res != -ECANCELED || io->cancel_possible, "close of ep %d: -ECANCELED without a cancel", e);
  p->iop = NULL;
  if (res == 0)
    CHECK(!ep_same(e), "close of endpoint %d (fd %d) reported 0 but the fd is still open", e,
          p->fd);
  /* A failed or cancelled close may or may not have closed it: look. */
  p->state = (res < 0 && ep_same(e)) ? ST_OPEN : ST_CLOSED;
  free(io);
}

static void on_open(tl_loop *loop, tl_op *op, int64_t res) {
  struct iop *io = op->data;
  struct ep *p = &F.ep[io->ep];
  trace("  cb openat res %lld", (long long)res);
  CHECK(p->state == ST_OPENING && p->iop == io, "openat callback while not opening");
  F.inflight--;
  CHECK(res != -ECANCELED || io->cancel_possible, "openat: -ECANCELED without a cancel");
  if (res >= 0) {
    struct stat st;
    CHECK(fstat((int)res, &st) == 0 && S_ISREG(st.st_mode), "openat gave fd %lld, not the file",
          (long long)res);
    ep_record(io->ep, (int)res);
  } else {
    p->state = ST_CLOSED;
    p->iop = NULL;
  }
  free(io->path);
  free(io);
}

static void obj_close(int o) {
  for (int e = ep_first(o); e < ep_first(o) + ep_count(o); e++) {
    struct ep *p = &F.ep[e];
    if (p->state != ST_OPEN)
      continue;
    ep_unwatch(e);
    struct iop *io = calloc(1, sizeof *io);
    io->ep = e;
    io->op.data = io;
    io->cancel_possible = F.destroying;
    int r = tl_close(F.loop, &io->op, p->fd, on_close);
    trace("  tl_close ep%d fd %d -> %d", e, p->fd, r);
    if (r < 0) {
      CHECK(F.destroying && r == -ESHUTDOWN, "tl_close returned %d", r);
      free(io);
      continue;
    }
    for (int i = 0; i < NSLOT; i++)
      if (F.s[i].op && F.s[i].ep == e)
        F.s[i].cancel_possible = 1;
    p->state = ST_CLOSING;
    p->iop = io;
    F.inflight++;
  }
}

static void op_cancel(unsigned idx) {
  idx %= NSLOT + NEP;
  if (idx < NSLOT) {
    struct slot *s = &F.s[idx];
    if (!s->op) {
      tl_op never;
      memset(&never, 0, sizeof never);
      CHECK(tl_op_cancel(F.loop, &never) == -ENOENT, "cancel of a never-submitted op");
      return;
    }
    int r = tl_op_cancel(F.loop, s->op);
    trace("  cancel slot %d -> %d", idx, r);
    CHECK(r != -ENOENT, "cancel of slot %d in flight: -ENOENT", idx);
    s->cancel_possible = 1;
    return;
  }
  struct ep *p = &F.ep[idx - NSLOT];
  if (!p->iop)
    return;
  int r = tl_op_cancel(F.loop, &p->iop->op);
  trace("  cancel iop of ep%d -> %d", idx - NSLOT, r);
  CHECK(r != -ENOENT, "cancel of close/openat in flight: -ENOENT");
  p->iop->cancel_possible = 1;
  p->iop->user_cancelled = 1;
}

static void op_cancel_fd(int e) {
  struct ep *p = &F.ep[e];
  if (p->state != ST_OPEN)
    return;
  int r = tl_cancel_fd(F.loop, p->fd);
  trace("  cancel_fd ep%d -> %d", e, r);
  CHECK(r >= 0 && r <= p->ops, "tl_cancel_fd on endpoint %d with %d ops returned %d", e,
        p->ops, r);
  for (int i = 0; i < NSLOT; i++)
    if (F.s[i].op && F.s[i].ep == e)
      F.s[i].cancel_possible = 1;
}

/* ------------------------------------------------------------------ */
/* The peer side: data in and out behind the loop's back               */
/* ------------------------------------------------------------------ */

static void peer(int o, unsigned arg) {
  static char buf[1 << 16];
  size_t n = 1 + (arg >> 2) * 97;
  int e = ep_first(o);
  if (is_pipe(o)) {
    if (arg & 1) {
      if (F.ep[e + 1].alias >= 0)
        (void)!write(F.ep[e + 1].alias, buf, n);
    } else if (F.ep[e].alias >= 0) {
      for (int k = 0; k < 8 && read(F.ep[e].alias, buf, sizeof buf) > 0; k++)
        ;
    }
  } else if (is_sock(o)) {
    struct ep *p = &F.ep[e + ((arg >> 1) & 1)];
    if (p->state != ST_OPEN)
      return;
    if ((arg >> 2) == 63)
      shutdown(p->fd, SHUT_WR);
    else if (arg & 1)
      (void)!send(p->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    else
      for (int k = 0; k < 8 && recv(p->fd, buf, sizeof buf, MSG_DONTWAIT) > 0; k++)
        ;
  } else if (o == OBJ_FILE) {
    if (F.ep[e].state == ST_OPEN)
      (void)!ftruncate(F.ep[e].fd, (off_t)arg * 61);
  } else if (arg & 1) {
    struct sockaddr_un a;
    socklen_t len;
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    listener_addr(&a, &len);
    if (c >= 0) {
      (void)!connect(c, (struct sockaddr *)&a, len);
      if (arg & 2)
        (void)!send(c, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
      close(c);
    }
  } else if (F.ep[e].state == ST_OPEN && !F.ep[e].ops) {
    /* The listener may be blocking (the loop decides its flags): poll, and
     * only while no accept op (a pool worker) could take the connection. */
    struct pollfd pf = { .fd = F.ep[e].fd, .events = POLLIN };
    int c;
    while (poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN) &&
           (c = accept4(F.ep[e].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
      close(c);
  }
}

/* ------------------------------------------------------------------ */
/* Reactions: what a callback does (one byte chosen when it started)  */
/* ------------------------------------------------------------------ */

static void react(unsigned char r, int self_w, int self_slot) {
  if (F.budget <= 0)
    return;
  unsigned a = r & 7, arg = r >> 3;
  if (a < 2)
    return;
  F.budget--;
  switch (a) {
  case 2:
    if (!F.s[arg % NSLOT].op)
      op_submit((int)(arg % NSLOT), arg * 7, arg, arg >> 1, 0);
    break;
  case 3: tl_break(F.loop); break;
  case 4: w_stop((int)(arg % NW), 0); break;
  case 5: op_cancel(arg % NSLOT); break;
  case 6:
    if (self_w >= 0)
      w_stop(self_w, arg & 1);   /* may free the running watcher */
    break;
  case 7:
    if (arg & 16)
      w_feed((int)(arg % NW), 0);
    else
      w_start((int)(arg % NW), arg * 5, 0);
    break;
  }
}

/* ------------------------------------------------------------------ */
/* Loop life                                                           */
/* ------------------------------------------------------------------ */

static void world_new_loop(void) {
  int r = tl_loop_new(&F.loop, (unsigned)F.cur_backend | TL_FLAG_NOENV);
  CHECK(r == 0, "tl_loop_new(%d): %d", F.cur_backend, r);
  for (int i = 0; i < NW; i++)
    w_alloc(i);
  F.guard = malloc(sizeof *F.guard);
  tl_timer_init(F.guard, on_guard, 0, 0);
  F.guard_armed = 0;
}

static void world_destroy_loop(void) {
  F.destroying = 1;
  for (int i = 0; i < NSLOT; i++)
    F.s[i].cancel_possible = 1;
  for (int e = 0; e < NEP; e++)
    if (F.ep[e].iop)
      F.ep[e].iop->cancel_possible = 1;
  int r = tl_loop_destroy(F.loop);
  CHECK(r == 0, "tl_loop_destroy returned %d", r);
  F.destroying = 0;
  CHECK(F.inflight == 0, "destroy returned with %d ops not called back", F.inflight);
  for (int i = 0; i < NSLOT; i++)
    CHECK(!F.s[i].op && F.s[i].submitted == F.s[i].delivered, "slot %d: %lu submitted, %lu "
          "delivered after destroy", i, F.s[i].submitted, F.s[i].delivered);
  for (int e = 0; e < NEP; e++)
    CHECK(F.ep[e].state == ST_OPEN || F.ep[e].state == ST_CLOSED, "endpoint %d still "
          "closing/opening after destroy", e);
  /* Active watchers are forgotten: their memory is ours again. */
  for (int i = 0; i < NW; i++)
    free(F.w[i].w);
  free(F.guard);
  F.loop = NULL;
  fds_check();
}

static void run(unsigned arg) {
  int mode = (int)(arg % 3);
  if (mode != TL_RUN_NOWAIT) {
    /* ONCE and DEFAULT would block on an idle pipe: a short guard timer
     * bounds the wait (and breaks DEFAULT). */
    tl_timer_set(F.guard, mode == TL_RUN_ONCE ? 0.0005 : 0.001, 0);
    CHECK(tl_timer_start(F.loop, F.guard) == 0, "guard start");
    F.guard_armed = 1;
  }
  F.in_run_default = mode == TL_RUN_DEFAULT;
  int r = tl_run(F.loop, mode);
  F.in_run_default = 0;
  trace("  run mode %d -> %d", mode, r);
  CHECK(r >= 0, "tl_run(%d) returned %d", mode, r);
  if (F.guard_armed) {
    tl_timer_stop(F.loop, F.guard);
    F.guard_armed = 0;
  }
  CHECK(!tl_is_active(F.guard) && !tl_is_pending(F.guard), "guard still armed after stop");
}

static void step(void) {
  unsigned op = next();
  if (F.eof)
    return;
  unsigned a = next(), b = next();
  F.budget = REACT_BUDGET;
  objs_revive();
  trace("step %u a=%u b=%u", op % 16, a, b);
  switch (op % 16) {
  case 0: case 1: w_start((int)(a % NW), b, (unsigned char)next()); break;
  case 2: w_stop((int)(a % NW), b); break;
  case 3: w_change((int)(a % NW), b); break;
  case 4: w_feed((int)(a % NW), b); break;
  case 5: case 6: op_submit((int)(a % NSLOT), b, next(), next(), (unsigned char)next()); break;
  case 7: op_cancel(a); break;
  case 8: op_cancel_fd((int)(a % NEP)); break;
  case 9: obj_close((int)(a % NOBJ)); break;
  case 10: peer((int)(a % NOBJ), b); break;
  case 11:
    if (wkind[a % NW] == W_ASYNC)
      CHECK(tl_async_send(F.loop, (tl_async *)F.w[a % NW].w) == 0, "async_send");
    else
      tl_break(F.loop);
    break;
  case 12: case 13: case 14: run(a); break;
  case 15:
    if (b & 1) {
      world_destroy_loop();
      world_new_loop();
    } else {
      run(TL_RUN_NOWAIT);
    }
    break;
  }
  if (!F.loop)
    return;
  CHECK(tl_ops_in_flight(F.loop) == (unsigned)F.inflight, "tl_ops_in_flight %u, ours %d",
        tl_ops_in_flight(F.loop), F.inflight);
  for (int i = 0; i < NSLOT; i++)
    if (F.s[i].op)
      CHECK(tl_op_in_flight(F.s[i].op), "slot %d: tl_op_in_flight 0 before its callback", i);
  ws_check();
  fds_check();
}

static const char *backend_name(int id) { return tl_backend_id_name(id); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *b = getenv("TRILOOP_FUZZ_BACKEND");
  F.trace = getenv("TRILOOP_FUZZ_TRACE") != NULL;
  if (b && *b) {
    int id = tl_backend_from_name(b);
    if (id <= 0) {
      fprintf(stderr, "fuzz_api: TRILOOP_FUZZ_BACKEND=%s: not uring|epoll|threadpool\n", b);
      exit(2);
    }
    char why[160];
    if (tl_backend_probe(id, why, sizeof why) < 0) {
      fprintf(stderr, "fuzz_api: backend %s unusable here: %s\n", b, why);
      exit(2);
    }
    F.backend = id;
  }
  for (int id = TL_BACKEND_URING; id < TL_BACKEND_COUNT; id++)
    F.usable[id] = tl_backend_probe(id, NULL, 0) == 0;
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(F.path, sizeof F.path, "%s/triloop-fuzz-%d", dir, (int)getpid());
  int fd = open(F.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "fuzz_api: %s: %s\n", F.path, strerror(errno));
    exit(2);
  }
  close(fd);
  for (int e = 0; e < NEP; e++)
    F.ep[e].alias = -1;
  return 0;
}

__attribute__((destructor)) static void cleanup(void) {
  if (F.path[0])
    unlink(F.path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  F.p = data;
  F.n = size;
  F.eof = 0;
  unsigned b0 = next();
  F.cur_backend = F.backend ? F.backend : TL_BACKEND_URING + (int)(b0 % 3);
  if (!F.usable[F.cur_backend])
    return 0;
  trace("input: %zu bytes, backend %s", size, backend_name(F.cur_backend));
  memset(F.s, 0, sizeof F.s);
  for (int i = 0; i < NSLOT; i++)
    F.s[i].connfd = -1;
  F.inflight = 0;
  for (int o = 0; o < NOBJ; o++)
    obj_create(o);
  world_new_loop();
  for (int k = 0; k < MAX_STEPS && !F.eof; k++)
    step();
  world_destroy_loop();
  for (int e = 0; e < NEP; e++) {
    if (F.ep[e].state == ST_OPEN)
      close(F.ep[e].fd);
    F.ep[e].state = ST_CLOSED;
    if (F.ep[e].alias >= 0)
      close(F.ep[e].alias);
    F.ep[e].alias = -1;
  }
  /* Nothing of ours is open now; the library may keep a few fds of its own
   * (pool workers), but not a growing number. */
  int nfd = count_fds();
  if (!F.fd_baseline)
    F.fd_baseline = nfd;
  CHECK(nfd <= F.fd_baseline + 32, "fd leak: %d fds open, %d after the first input", nfd,
        F.fd_baseline);
  return 0;
}
