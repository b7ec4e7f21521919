/*
 * libtriloop-ev: libev 4.33's API (the system <ev.h>, so every watcher has
 * libev's layout and every macro works) over triloop's backend seam.
 *
 * The bookkeeping follows what libev documents and what programs observe:
 * everything that happens in an iteration is first queued as pending (per
 * priority), then the pending arrays are invoked from the highest priority
 * down, each array from its end (LIFO).  Timers and periodics live in 4-ary
 * heaps whose slot index sits in the watcher's "active" field, expired timers
 * are fed in reverse so the earliest runs first, checks are queued last so
 * they run first, and async/signal wakes arrive through an internal io
 * watcher of the highest priority.  Differences in any of these would show
 * up as a different callback order, so they are kept exactly; the
 * differential suite in tests/ev/ compares transcripts against libev.
 *
 * Nothing is allocated per watcher start: arrays grow (through the
 * ev_set_allocator hook) and are reused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "base.h"

/*
 * Backend bits.  libev's own bits for the backends we have; the thread pool
 * backend gets the highest bit of EVBACKEND_MASK, which libev 4.33 leaves
 * unused (it uses 0x01..0x80), so LIBEV_FLAGS=32768 selects it.
 */
#define EVBACKEND_TL_THREADPOOL 0x00008000U

#define NUMPRI (EV_MAXPRI - EV_MINPRI + 1)
#define ABSPRI(w) (((ev_watcher *)(w))->priority - EV_MINPRI)

#define DHEAP 4
#define HEAP0 (DHEAP - 1)
#define HPARENT(k) ((((k) - HEAP0 - 1) / DHEAP) + HEAP0)

#define MAX_BLOCKTIME 59.743
#define MIN_TIMEJUMP 1.
#define MIN_INTERVAL 0.0001220703125
#define MIN_STAT_INTERVAL 0.1074891
#define DEF_STAT_INTERVAL 5.0074891
#define NFS_STAT_INTERVAL 30.1074891
#define INFY_HASHSIZE 16
#define PID_HASHSIZE 16
#define EV_NSIG NSIG

typedef ev_watcher *W;
typedef ev_watcher_list *WL;
typedef ev_watcher_time *WT;

typedef struct { W w; int events; } ANPENDING;
typedef struct { WT w; ev_tstamp at; } ANHE;
typedef struct {
  WL head;
  unsigned char events;  /* what the backend was last told */
  unsigned char reify;   /* queued in fdchanges; EV__IOFDSET: fd may be new */
} ANFD;

/* Arrays of watcher pointers where active == index + 1. */
struct warr { W *v; int cnt, max; };

struct ev_loop {
  ev_tstamp rt_now, mn_now, now_floor, rtmn_diff;
  ev_tstamp io_blocktime, timeout_blocktime, backend_mintime;

  ANPENDING *pendings[NUMPRI];
  int pendingmax[NUMPRI], pendingcnt[NUMPRI];
  int pendingpri;
  ev_prepare pending_w;  /* stands in for stopped watchers in pendings */

  ANFD *anfds;
  int anfdmax;
  int *fdchanges;
  int fdchangemax, fdchangecnt;

  ANHE *timers;
  int timermax, timercnt;
  ANHE *periodics;
  int periodicmax, periodiccnt;
  W *rfeeds;
  int rfeedmax, rfeedcnt;

  struct warr idles[NUMPRI];
  int idleall;
  struct warr prepares, checks, forks, cleanups, asyncs;

  int activecnt;
  int loop_done;
  unsigned loop_depth, loop_count;
  unsigned origflags;
  pid_t curpid;
  int postfork;

  /* The wake channel (libev's evpipe): the base's eventfd. */
  ev_io pipe_w;
  int evpipe_on;
  atomic_int sig_pending, async_pending;
  atomic_int pipe_write_wanted, pipe_write_skipped;

  void *userdata;
  void (*release_cb)(EV_P);
  void (*acquire_cb)(EV_P);
  ev_loop_callback invoke_cb;

  /* ev_stat through inotify: one fd per loop, read by an internal io
   * watcher; fs_fd is -2 until the first ev_stat_start, -1 if inotify is
   * unavailable (then every ev_stat polls). */
  int fs_fd;
  ev_io fs_w;
  WL fs_hash[INFY_HASHSIZE];  /* watchers by wd */

  unsigned backend;      /* EVBACKEND_* bit reported by ev_backend() */
  int embed_epfd;        /* readiness mirror when embedded, else -1 */
  struct tl__base base;
};

/* ------------------------------------------------------------------ */
/* Globals: allocator, syserr hook, default loop, signals, children.   */

static void *default_alloc(void *ptr, long size) {
  if (size)
    return realloc(ptr, (size_t)size);
  free(ptr);
  return NULL;
}

static void *(*alloc_cb)(void *ptr, long size) = default_alloc;
static void (*syserr_cb)(const char *msg);

struct ev_loop *ev_default_loop_ptr;
static struct ev_loop default_loop_struct;
static ev_signal childev;
static WL childs[PID_HASHSIZE];

typedef struct {
  volatile sig_atomic_t pending;
  _Atomic(struct ev_loop *) loop;
  WL head;
} ANSIG;
static ANSIG signals[EV_NSIG - 1];

/* libev's documented behaviour: allocation failure is fatal unless the
 * program's allocator handles it (it may block and retry). */
static void *ev__realloc(void *ptr, long size) {
  ptr = alloc_cb(ptr, size);
  if (!ptr && size) {
    fprintf(stderr, "(libev) cannot allocate %ld bytes, aborting.", size);
    abort();
  }
  return ptr;
}

#define ev__malloc(size) ev__realloc(NULL, (long)(size))
#define ev__free(ptr) ev__realloc((ptr), 0)

static void ev__syserr(const char *msg) {
  if (syserr_cb) {
    syserr_cb(msg);
  } else {
    perror(msg);
    abort();
  }
}

static void *array_grow(void *base, int *max, int need, size_t elem, int zero) {
  int n = *max ? *max : 4;
  while (n < need)
    n *= 2;
  base = ev__realloc(base, (long)((size_t)n * elem));
  if (zero)
    memset((char *)base + (size_t)*max * elem, 0, (size_t)(n - *max) * elem);
  *max = n;
  return base;
}

#define NEEDSIZE(base, max, need)                                             \
  do {                                                                        \
    if ((need) > (max))                                                       \
      (base) = array_grow((base), &(max), (need), sizeof *(base), 0);         \
  } while (0)

/* ------------------------------------------------------------------ */
/* Version, clocks, backends.                                          */

int ev_version_major(void) { return EV_VERSION_MAJOR; }
int ev_version_minor(void) { return EV_VERSION_MINOR; }

ev_tstamp ev_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (ev_tstamp)ts.tv_sec + (ev_tstamp)ts.tv_nsec * 1e-9;
}

static inline ev_tstamp get_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (ev_tstamp)ts.tv_sec + (ev_tstamp)ts.tv_nsec * 1e-9;
}

void ev_sleep(ev_tstamp delay) {
  if (delay > 0.) {
    struct timespec ts;
    ts.tv_sec = (time_t)delay;
    ts.tv_nsec = (long)((delay - (ev_tstamp)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
      ;
  }
}

static unsigned backend_bit(int id) {
  switch (id) {
  case TL_BACKEND_URING: return EVBACKEND_IOURING;
  case TL_BACKEND_EPOLL: return EVBACKEND_EPOLL;
  case TL_BACKEND_THREADPOOL: return EVBACKEND_TL_THREADPOOL;
  default: return 0;
  }
}

/* What really works here, probed once (a ring is set up for uring).
 * select and poll are always there, as in libev on Linux: they are served
 * by one of ours (see choose_backend), so they exist when any of ours does. */
static unsigned supported_cache;  /* 0: not probed yet */

unsigned int ev_supported_backends(void) {
  unsigned s = __atomic_load_n(&supported_cache, __ATOMIC_ACQUIRE);
  if (!s) {
    static const int ids[] = { TL_BACKEND_URING, TL_BACKEND_EPOLL, TL_BACKEND_THREADPOOL };
    s = 0;
    for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++)
      if (tl_backend_probe(ids[i], NULL, 0) == 0)
        s |= backend_bit(ids[i]);
    if (s)
      s |= EVBACKEND_SELECT | EVBACKEND_POLL;
    s |= 0x80000000U;  /* "probed" marker, masked off below */
    __atomic_store_n(&supported_cache, s, __ATOMIC_RELEASE);
  }
  return s & EVBACKEND_MASK;
}

/* All of ours are production backends, unlike libev's io_uring; select and
 * poll are recommended on Linux by libev too. */
unsigned int ev_recommended_backends(void) { return ev_supported_backends(); }

/* No backend exposes a pollable fd through the seam, but ev_embed_start
 * works for a loop on any of them through a readiness mirror (see embed
 * below), so every backend embeds.  libev names epoll (plus kqueue and port)
 * here; answering only epoll would make the manual's idiom
 * (ev_embeddable_backends () & ev_recommended_backends ()) pin embedded
 * loops to epoll for no reason. */
unsigned int ev_embeddable_backends(void) { return ev_supported_backends(); }

void ev_set_allocator(void *(*cb)(void *ptr, long size)) {
  alloc_cb = cb ? cb : default_alloc;
}

void ev_set_syserr_cb(void (*cb)(const char *msg)) { syserr_cb = cb; }

/* ------------------------------------------------------------------ */
/* Pending queue.                                                      */

static void pendingcb(EV_P_ ev_prepare *w, int revents) { (void)loop; (void)w; (void)revents; }

/* Inlined into the per-event paths (fd events, timers, idles): the
 * exported ev_feed_event would cost a call through the PLT and a full
 * prologue per event, a quarter of the echo's front-end instructions. */
static __attribute__((noinline, cold)) void pendings_grow(EV_P_ int pri, int n) {
  loop->pendings[pri] = array_grow(loop->pendings[pri], &loop->pendingmax[pri], n,
                                   sizeof *loop->pendings[pri], 0);
}

static inline __attribute__((always_inline)) void feed_event(EV_P_ W w_, int revents) {
  int pri = ABSPRI(w_);
  if ((unsigned)pri >= NUMPRI) {
    /* never started: libev would index out of bounds; clamp instead */
    w_->priority = pri < 0 ? EV_MINPRI : EV_MAXPRI;
    pri = ABSPRI(w_);
  }
  if (w_->pending) {
    loop->pendings[pri][w_->pending - 1].events |= revents;
  } else {
    int n = ++loop->pendingcnt[pri];
    w_->pending = n;
    if (n > loop->pendingmax[pri])
      pendings_grow(loop, pri, n);
    ANPENDING *p = loop->pendings[pri] + n - 1;
    p->w = w_;
    p->events = revents;
  }
  loop->pendingpri = NUMPRI - 1;
}

void ev_feed_event(EV_P_ void *w, int revents) { feed_event(loop, (W)w, revents); }

static inline void clear_pending(EV_P_ W w) {
  if (w->pending) {
    loop->pendings[ABSPRI(w)][w->pending - 1].w = (W)&loop->pending_w;
    w->pending = 0;
  }
}

int ev_clear_pending(EV_P_ void *w) {
  W w_ = (W)w;
  int pending = w_->pending;
  if (!pending)
    return 0;
  ANPENDING *p = loop->pendings[ABSPRI(w_)] + pending - 1;
  p->w = (W)&loop->pending_w;
  w_->pending = 0;
  return p->events;
}

void ev_invoke_pending(EV_P) {
  loop->pendingpri = NUMPRI;
  do {
    --loop->pendingpri;
    /* a feed from inside a callback resets pendingpri to the top */
    while (loop->pendingcnt[loop->pendingpri]) {
      ANPENDING *p = loop->pendings[loop->pendingpri] + --loop->pendingcnt[loop->pendingpri];
      p->w->pending = 0;
      p->w->cb(loop, p->w, p->events);
    }
  } while (loop->pendingpri);
}

void ev_invoke(EV_P_ void *w, int revents) {
  W w_ = (W)w;
  w_->cb(loop, w_, revents);
}

unsigned int ev_pending_count(EV_P) {
  unsigned n = 0;
  for (int pri = NUMPRI; pri--;)
    n += (unsigned)loop->pendingcnt[pri];
  return n;
}

static void queue_events(EV_P_ W *events, int cnt, int type) {
  for (int i = 0; i < cnt; ++i)
    feed_event(loop, events[i], type);
}

static inline void feed_reverse(EV_P_ W w) {
  NEEDSIZE(loop->rfeeds, loop->rfeedmax, loop->rfeedcnt + 1);
  loop->rfeeds[loop->rfeedcnt++] = w;
}

static inline void feed_reverse_done(EV_P_ int revents) {
  do
    feed_event(loop, loop->rfeeds[--loop->rfeedcnt], revents);
  while (loop->rfeedcnt);
}

/* ------------------------------------------------------------------ */
/* Watcher state.                                                      */

static inline void pri_adjust(W w) {
  int pri = w->priority;
  pri = pri < EV_MINPRI ? EV_MINPRI : pri;
  pri = pri > EV_MAXPRI ? EV_MAXPRI : pri;
  w->priority = pri;
}

static inline void ev__start(EV_P_ W w, int active) {
  pri_adjust(w);
  w->active = active;
  ++loop->activecnt;
}

static inline void ev__stop(EV_P_ W w) {
  --loop->activecnt;
  w->active = 0;
}

void ev_ref(EV_P) { ++loop->activecnt; }
void ev_unref(EV_P) { --loop->activecnt; }

static inline void wlist_add(WL *head, WL elem) {
  elem->next = *head;
  *head = elem;
}

static inline void wlist_del(WL *head, WL elem) {
  while (*head) {
    if (*head == elem) {
      *head = elem->next;
      break;
    }
    head = &(*head)->next;
  }
}

static void warr_start(EV_P_ struct warr *a, W w) {
  ev__start(loop, w, ++a->cnt);
  NEEDSIZE(a->v, a->max, a->cnt);
  a->v[a->cnt - 1] = w;
}

static void warr_del(struct warr *a, W w) {
  int active = w->active;
  a->v[active - 1] = a->v[--a->cnt];
  a->v[active - 1]->active = active;
}

/* ------------------------------------------------------------------ */
/* Time.                                                               */

static void periodics_reschedule(EV_P);

static inline void time_update(EV_P_ ev_tstamp max_block) {
  (void)max_block;
  ev_tstamp odiff = loop->rtmn_diff;
  loop->mn_now = get_clock();
  /* the realtime clock is read only every half MIN_TIMEJUMP; in between it
   * is interpolated from the monotonic one, as libev does */
  if (loop->mn_now - loop->now_floor < MIN_TIMEJUMP * .5) {
    loop->rt_now = loop->rtmn_diff + loop->mn_now;
    return;
  }
  loop->now_floor = loop->mn_now;
  loop->rt_now = ev_time();
  for (int i = 4; --i;) {
    loop->rtmn_diff = loop->rt_now - loop->mn_now;
    ev_tstamp diff = odiff - loop->rtmn_diff;
    if ((diff < 0. ? -diff : diff) < MIN_TIMEJUMP)
      return;
    loop->rt_now = ev_time();
    loop->mn_now = get_clock();
    loop->now_floor = loop->mn_now;
  }
  /* the wall clock jumped: periodics follow it, timers do not */
  periodics_reschedule(loop);
}

ev_tstamp ev_now(EV_P) { return loop->rt_now; }

void ev_now_update(EV_P) { time_update(loop, 1e100); }

/* ------------------------------------------------------------------ */
/* Heaps (4-ary, slot index in ->active, "at" cached in the slot).    */

static inline void downheap(ANHE *heap, int N, int k) {
  ANHE he = heap[k];
  ANHE *E = heap + N + HEAP0;
  for (;;) {
    ev_tstamp minat;
    ANHE *minpos;
    ANHE *pos = heap + DHEAP * (k - HEAP0) + HEAP0 + 1;
    if (pos + DHEAP - 1 < E) {
      minpos = pos + 0, minat = minpos->at;
      if (pos[1].at < minat) minpos = pos + 1, minat = minpos->at;
      if (pos[2].at < minat) minpos = pos + 2, minat = minpos->at;
      if (pos[3].at < minat) minpos = pos + 3, minat = minpos->at;
    } else if (pos < E) {
      minpos = pos + 0, minat = minpos->at;
      if (pos + 1 < E && pos[1].at < minat) minpos = pos + 1, minat = minpos->at;
      if (pos + 2 < E && pos[2].at < minat) minpos = pos + 2, minat = minpos->at;
      if (pos + 3 < E && pos[3].at < minat) minpos = pos + 3, minat = minpos->at;
    } else {
      break;
    }
    if (he.at <= minat)
      break;
    heap[k] = *minpos;
    minpos->w->active = k;
    k = (int)(minpos - heap);
  }
  heap[k] = he;
  he.w->active = k;
}

static inline void upheap(ANHE *heap, int k) {
  ANHE he = heap[k];
  for (;;) {
    int p = HPARENT(k);
    if (p == k || heap[p].at <= he.at)
      break;
    heap[k] = heap[p];
    heap[k].w->active = k;
    k = p;
  }
  heap[k] = he;
  he.w->active = k;
}

static inline void adjustheap(ANHE *heap, int N, int k) {
  if (k > HEAP0 && heap[k].at <= heap[HPARENT(k)].at)
    upheap(heap, k);
  else
    downheap(heap, N, k);
}

static void reheap(ANHE *heap, int N) {
  for (int i = 0; i < N; ++i)
    upheap(heap, i + HEAP0);
}

/* ------------------------------------------------------------------ */
/* Wake channel: async and signals (libev's evpipe).                   */

static void evpipe_init(EV_P) {
  /* The eventfd belongs to the base and is always registered; "starting"
   * the pipe watcher only matters for libev's reference count rules, which
   * leave it at net zero. */
  loop->evpipe_on = 1;
}

static void evpipe_write(EV_P_ atomic_int *flag) {
  if (atomic_load_explicit(flag, memory_order_relaxed))
    return;
  int old_errno = errno;
  atomic_store(flag, 1);
  atomic_store(&loop->pipe_write_skipped, 1);
  /* the loop sets wanted before it decides whether to block and reads
   * skipped after; so either it sees skipped or we see wanted */
  if (atomic_load(&loop->pipe_write_wanted)) {
    atomic_store(&loop->pipe_write_skipped, 0);
    tl__base_wake(&loop->base);
  }
  errno = old_errno;
}

static void pipecb(EV_P_ ev_io *iow, int revents) {
  (void)iow; (void)revents;
  atomic_store(&loop->pipe_write_skipped, 0);
  if (atomic_load(&loop->sig_pending)) {
    atomic_store(&loop->sig_pending, 0);
    for (int i = EV_NSIG - 1; i--;)
      if (signals[i].pending)
        ev_feed_signal_event(loop, i + 1);
  }
  if (atomic_load(&loop->async_pending)) {
    atomic_store(&loop->async_pending, 0);
    for (int i = loop->asyncs.cnt; i--;) {
      ev_async *a = (ev_async *)loop->asyncs.v[i];
      if (a->sent) {
        a->sent = 0;
        atomic_thread_fence(memory_order_release);
        ev_feed_event(loop, a, EV_ASYNC);
      }
    }
  }
}

/* The base drained its eventfd after tl__base_wake(): run pipecb as a
 * pending watcher of the highest priority, where libev runs it. */
static void on_wake(struct tl__base *b) {
  struct ev_loop *loop = b->owner;
  ev_feed_event(loop, &loop->pipe_w, EV_READ);
}

static void on_op(struct tl__base *b, tl_op *op, int64_t res) {
  (void)b; (void)op; (void)res;   /* this front end submits no ops */
}

/* ------------------------------------------------------------------ */
/* fds.                                                                */

static inline void fd_event_nocheck(EV_P_ int fd, int revents) {
  for (ev_io *w = (ev_io *)loop->anfds[fd].head; w; w = (ev_io *)((WL)w)->next) {
    int ev = w->events & revents;
    if (ev)
      feed_event(loop, (W)w, ev);
  }
}

void ev_feed_fd_event(EV_P_ int fd, int revents) {
  if (fd >= 0 && fd < loop->anfdmax)
    fd_event_nocheck(loop, fd, revents);
}

static void fd_kill(EV_P_ int fd) {
  ev_io *w;
  while ((w = (ev_io *)loop->anfds[fd].head)) {
    ev_io_stop(loop, w);
    ev_feed_event(loop, (W)w, EV_ERROR | EV_READ | EV_WRITE);
  }
}

static void on_fd(struct tl__base *b, int fd, unsigned revents) {
  struct ev_loop *loop = b->owner;
  if (fd < 0 || fd >= loop->anfdmax)
    return;
  if (revents & TL_ERROR) {
    fd_kill(loop, fd);
    return;
  }
  /* an fd with queued changes may be a different file by now */
  if (!loop->anfds[fd].reify)
    fd_event_nocheck(loop, fd, (int)(revents & (EV_READ | EV_WRITE)));
}

static inline void fd_change(EV_P_ int fd, int flags) {
  unsigned char reify = loop->anfds[fd].reify;
  loop->anfds[fd].reify = (unsigned char)(reify | flags);
  if (!reify) {
    ++loop->fdchangecnt;
    NEEDSIZE(loop->fdchanges, loop->fdchangemax, loop->fdchangecnt);
    loop->fdchanges[loop->fdchangecnt - 1] = fd;
  }
}

static void mirror_modify(EV_P_ int fd, unsigned nev) {
  struct epoll_event ev = { .events = (nev & EV_READ ? EPOLLIN : 0) | (nev & EV_WRITE ? EPOLLOUT : 0) };
  ev.data.fd = fd;
  if (!nev) {
    epoll_ctl(loop->embed_epfd, EPOLL_CTL_DEL, fd, &ev);
  } else if (epoll_ctl(loop->embed_epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT) {
    epoll_ctl(loop->embed_epfd, EPOLL_CTL_ADD, fd, &ev);
  }
}

static void backend_modify(EV_P_ int fd, unsigned oev, unsigned nev) {
  struct tl__base *b = &loop->base;
  int r;
  if (oev == nev) {
    /* Same interest but ev_io_set() ran: the fd may be a new file behind
     * the same number, which the backend must register afresh. */
    if (!nev)
      return;
    r = b->be->modify(b, fd, oev, 0);
    if (r >= 0)
      r = b->be->modify(b, fd, 0, nev);
  } else {
    r = b->be->modify(b, fd, oev, nev);
  }
  if (r < 0 && nev) {
    loop->anfds[fd].events = 0;
    if (loop->embed_epfd >= 0)
      mirror_modify(loop, fd, 0);
    fd_kill(loop, fd);
    return;
  }
  if (loop->embed_epfd >= 0)
    mirror_modify(loop, fd, nev);
}

static void fd_reify(EV_P) {
  int changecnt = loop->fdchangecnt;
  for (int i = 0; i < changecnt; ++i) {
    int fd = loop->fdchanges[i];
    ANFD *anfd = loop->anfds + fd;
    unsigned char o_events = anfd->events;
    unsigned char o_reify = anfd->reify;
    unsigned char nev = 0;
    anfd->reify = 0;
    for (ev_io *w = (ev_io *)anfd->head; w; w = (ev_io *)((WL)w)->next)
      nev |= (unsigned char)w->events;
    anfd->events = nev;
    if (o_events != nev)
      o_reify = EV__IOFDSET;
    if (o_reify & EV__IOFDSET)
      backend_modify(loop, fd, o_events, nev);
    anfd = NULL;  /* fd_kill may have grown the array */
  }
  /* fd_kill during the loop can queue more changes: keep those */
  if (loop->fdchangecnt != changecnt)
    memmove(loop->fdchanges, loop->fdchanges + changecnt,
            (size_t)(loop->fdchangecnt - changecnt) * sizeof *loop->fdchanges);
  loop->fdchangecnt -= changecnt;
}

void ev_io_start(EV_P_ ev_io *w) {
  int fd = w->fd;
  if (w->active)
    return;
  if (fd < 0 || (w->events & ~(EV__IOFDSET | EV_READ | EV_WRITE)))
    return;   /* libev asserts; we refuse to start it */
  ev__start(loop, (W)w, 1);
  if (fd + 1 > loop->anfdmax)
    loop->anfds = array_grow(loop->anfds, &loop->anfdmax, fd + 1, sizeof *loop->anfds, 1);
  wlist_add(&loop->anfds[fd].head, (WL)w);
  fd_change(loop, fd, (w->events & EV__IOFDSET) | 1);
  w->events &= ~EV__IOFDSET;
}

void ev_io_stop(EV_P_ ev_io *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  if (w->fd < 0 || w->fd >= loop->anfdmax)
    return;
  wlist_del(&loop->anfds[w->fd].head, (WL)w);
  ev__stop(loop, (W)w);
  fd_change(loop, w->fd, 1);
}

/* ------------------------------------------------------------------ */
/* Timers.                                                             */

void ev_timer_start(EV_P_ ev_timer *w) {
  if (w->active)
    return;
  w->at += loop->mn_now;
  ++loop->timercnt;
  ev__start(loop, (W)w, loop->timercnt + HEAP0 - 1);
  NEEDSIZE(loop->timers, loop->timermax, w->active + 1);
  loop->timers[w->active].w = (WT)w;
  loop->timers[w->active].at = w->at;
  upheap(loop->timers, w->active);
}

void ev_timer_stop(EV_P_ ev_timer *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  int active = w->active;
  --loop->timercnt;
  if (active < loop->timercnt + HEAP0) {
    loop->timers[active] = loop->timers[loop->timercnt + HEAP0];
    adjustheap(loop->timers, loop->timercnt, active);
  }
  w->at -= loop->mn_now;
  ev__stop(loop, (W)w);
}

void ev_timer_again(EV_P_ ev_timer *w) {
  clear_pending(loop, (W)w);
  if (w->active) {
    if (w->repeat) {
      w->at = loop->mn_now + w->repeat;
      loop->timers[w->active].at = w->at;
      adjustheap(loop->timers, loop->timercnt, w->active);
    } else {
      ev_timer_stop(loop, w);
    }
  } else if (w->repeat) {
    w->at = w->repeat;
    ev_timer_start(loop, w);
  }
}

ev_tstamp ev_timer_remaining(EV_P_ ev_timer *w) {
  return w->at - (w->active ? loop->mn_now : 0.);
}

static void timers_reify(EV_P) {
  if (loop->timercnt && loop->timers[HEAP0].at < loop->mn_now) {
    do {
      ev_timer *w = (ev_timer *)loop->timers[HEAP0].w;
      if (w->repeat) {
        w->at += w->repeat;
        if (w->at < loop->mn_now)
          w->at = loop->mn_now;
        loop->timers[HEAP0].at = w->at;
        downheap(loop->timers, loop->timercnt, HEAP0);
      } else {
        ev_timer_stop(loop, w);
      }
      feed_reverse(loop, (W)w);
    } while (loop->timercnt && loop->timers[HEAP0].at < loop->mn_now);
    feed_reverse_done(loop, EV_TIMER);
  }
}

static void timers_reschedule(EV_P_ ev_tstamp adjust) {
  for (int i = 0; i < loop->timercnt; ++i) {
    ANHE *he = loop->timers + i + HEAP0;
    he->w->at += adjust;
    he->at = he->w->at;
  }
}

/* ------------------------------------------------------------------ */
/* Periodics.                                                          */

static void periodic_recalc(EV_P_ ev_periodic *w) {
  ev_tstamp interval = w->interval > MIN_INTERVAL ? w->interval : MIN_INTERVAL;
  ev_tstamp at = w->offset + interval * floor((loop->rt_now - w->offset) / interval);
  while (at <= loop->rt_now) {
    ev_tstamp nat = at + w->interval;
    if (nat == at) {   /* resolution fails us */
      at = loop->rt_now;
      break;
    }
    at = nat;
  }
  w->at = at;
}

void ev_periodic_start(EV_P_ ev_periodic *w) {
  if (w->active)
    return;
  if (w->reschedule_cb)
    w->at = w->reschedule_cb(w, loop->rt_now);
  else if (w->interval > 0.)
    periodic_recalc(loop, w);
  else
    w->at = w->offset;
  ++loop->periodiccnt;
  ev__start(loop, (W)w, loop->periodiccnt + HEAP0 - 1);
  NEEDSIZE(loop->periodics, loop->periodicmax, w->active + 1);
  loop->periodics[w->active].w = (WT)w;
  loop->periodics[w->active].at = w->at;
  upheap(loop->periodics, w->active);
}

void ev_periodic_stop(EV_P_ ev_periodic *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  int active = w->active;
  --loop->periodiccnt;
  if (active < loop->periodiccnt + HEAP0) {
    loop->periodics[active] = loop->periodics[loop->periodiccnt + HEAP0];
    adjustheap(loop->periodics, loop->periodiccnt, active);
  }
  ev__stop(loop, (W)w);
}

void ev_periodic_again(EV_P_ ev_periodic *w) {
  ev_periodic_stop(loop, w);
  ev_periodic_start(loop, w);
}

static void periodics_reify(EV_P) {
  while (loop->periodiccnt && loop->periodics[HEAP0].at < loop->rt_now) {
    do {
      ev_periodic *w = (ev_periodic *)loop->periodics[HEAP0].w;
      if (w->reschedule_cb) {
        w->at = w->reschedule_cb(w, loop->rt_now);
        loop->periodics[HEAP0].at = w->at;
        downheap(loop->periodics, loop->periodiccnt, HEAP0);
      } else if (w->interval) {
        periodic_recalc(loop, w);
        loop->periodics[HEAP0].at = w->at;
        downheap(loop->periodics, loop->periodiccnt, HEAP0);
      } else {
        ev_periodic_stop(loop, w);
      }
      feed_reverse(loop, (W)w);
    } while (loop->periodiccnt && loop->periodics[HEAP0].at < loop->rt_now);
    feed_reverse_done(loop, EV_PERIODIC);
  }
}

static void periodics_reschedule(EV_P) {
  for (int i = HEAP0; i < loop->periodiccnt + HEAP0; ++i) {
    ev_periodic *w = (ev_periodic *)loop->periodics[i].w;
    if (w->reschedule_cb)
      w->at = w->reschedule_cb(w, loop->rt_now);
    else if (w->interval)
      periodic_recalc(loop, w);
    loop->periodics[i].at = w->at;
  }
  reheap(loop->periodics, loop->periodiccnt);
}

void ev_suspend(EV_P) { ev_now_update(loop); }

void ev_resume(EV_P) {
  ev_tstamp mn_prev = loop->mn_now;
  ev_now_update(loop);
  timers_reschedule(loop, loop->mn_now - mn_prev);
  periodics_reschedule(loop);
}

/* ------------------------------------------------------------------ */
/* Signals: one loop per signal, as libev.                             */

void ev_feed_signal(int signum) {
  if (signum <= 0 || signum >= EV_NSIG)
    return;
  struct ev_loop *loop = atomic_load_explicit(&signals[signum - 1].loop, memory_order_acquire);
  if (!loop)
    return;
  signals[signum - 1].pending = 1;
  evpipe_write(loop, &loop->sig_pending);
}

static void ev_sighandler(int signum) { ev_feed_signal(signum); }

void ev_feed_signal_event(EV_P_ int signum) {
  if (signum <= 0 || signum >= EV_NSIG)
    return;
  --signum;
  /* feeding a signal to a loop that does not own it is allowed: no-op */
  if (atomic_load(&signals[signum].loop) != loop)
    return;
  signals[signum].pending = 0;
  atomic_thread_fence(memory_order_release);
  for (WL w = signals[signum].head; w; w = w->next)
    ev_feed_event(loop, (W)w, EV_SIGNAL);
}

void ev_signal_start(EV_P_ ev_signal *w) {
  if (w->active)
    return;
  if (w->signum <= 0 || w->signum >= EV_NSIG)
    return;
  struct ev_loop *owner = atomic_load(&signals[w->signum - 1].loop);
  if (owner && owner != loop)
    return;   /* a signal belongs to one loop; libev asserts here */
  atomic_store_explicit(&signals[w->signum - 1].loop, loop, memory_order_release);
  ev__start(loop, (W)w, 1);
  wlist_add(&signals[w->signum - 1].head, (WL)w);
  if (!((WL)w)->next) {
    struct sigaction sa;
    evpipe_init(loop);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ev_sighandler;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(w->signum, &sa, NULL);
    if (!(loop->origflags & EVFLAG_NOSIGMASK)) {
      sigemptyset(&sa.sa_mask);
      sigaddset(&sa.sa_mask, w->signum);
      sigprocmask(SIG_UNBLOCK, &sa.sa_mask, NULL);
    }
  }
}

void ev_signal_stop(EV_P_ ev_signal *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  wlist_del(&signals[w->signum - 1].head, (WL)w);
  ev__stop(loop, (W)w);
  if (!signals[w->signum - 1].head) {
    atomic_store(&signals[w->signum - 1].loop, NULL);
    signal(w->signum, SIG_DFL);
  }
}

/* ------------------------------------------------------------------ */
/* Children (default loop; SIGCHLD through childev).                   */

static void child_reap(EV_P_ int chain, int pid, int status) {
  int traced = WIFSTOPPED(status) || WIFCONTINUED(status);
  for (ev_child *w = (ev_child *)childs[chain & (PID_HASHSIZE - 1)]; w;
       w = (ev_child *)((WL)w)->next) {
    if ((w->pid == pid || !w->pid) && (!traced || (w->flags & 1))) {
      /* must match childev's priority, libev does the same */
      ev_set_priority(w, EV_MAXPRI);
      w->rpid = pid;
      w->rstatus = status;
      ev_feed_event(loop, (W)w, EV_CHILD);
    }
  }
}

static void childcb(EV_P_ ev_signal *sw, int revents) {
  (void)revents;
  int pid, status;
  if ((pid = waitpid(-1, &status, WNOHANG | WUNTRACED | WCONTINUED)) <= 0)
    if (errno != EINVAL || (pid = waitpid(-1, &status, WNOHANG | WUNTRACED)) <= 0)
      return;
  /* come back until every child is reaped, before anything else runs */
  ev_feed_event(loop, (W)sw, EV_SIGNAL);
  child_reap(loop, pid, pid, status);
  child_reap(loop, 0, pid, status);
}

void ev_child_start(EV_P_ ev_child *w) {
  if (loop != ev_default_loop_ptr)
    return;   /* libev asserts: child watchers need the default loop */
  if (w->active)
    return;
  ev__start(loop, (W)w, 1);
  wlist_add(&childs[w->pid & (PID_HASHSIZE - 1)], (WL)w);
}

void ev_child_stop(EV_P_ ev_child *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  wlist_del(&childs[w->pid & (PID_HASHSIZE - 1)], (WL)w);
  ev__stop(loop, (W)w);
}

/* ------------------------------------------------------------------ */
/* Stat: as libev does it on Linux.  Each watcher gets an inotify watch on
 * its path (or, while the path is missing or unreadable, on the nearest
 * parent directory that can be watched, as a hint that it may have
 * appeared); any event on a watch re-stats the watchers on it.  The
 * watcher's own timer still polls where inotify cannot be trusted: always
 * when inotify failed, and on filesystems not known to be local (remote
 * changes raise no inotify event), at the watcher's interval or a reduced
 * default.  On a known local filesystem the timer stays stopped.  The
 * events, masks and intervals are libev's, so callbacks come as often and
 * as soon as there. */

void ev_stat_stat(EV_P_ ev_stat *w) {
  (void)loop;
  if (lstat(w->path, &w->attr) < 0)
    w->attr.st_nlink = 0;
  else if (!w->attr.st_nlink)
    w->attr.st_nlink = 1;
}

static void stat_timer_cb(EV_P_ ev_timer *w_, int revents);

static int fs_local(const char *path) {
  struct statfs sfs;
  if (statfs(path, &sfs) < 0)
    return 0;
  switch ((unsigned long)sfs.f_type) {
  case 0x1373:      /* devfs */
  case 0x4006:      /* fat */
  case 0x4d44:      /* msdos */
  case 0xEF53:      /* ext2/3/4 */
  case 0x72b6:      /* jffs2 */
  case 0x858458f6:  /* ramfs */
  case 0x5346544e:  /* ntfs */
  case 0x3153464a:  /* jfs */
  case 0x9123683e:  /* btrfs */
  case 0x52654973:  /* reiser3 */
  case 0x01021994:  /* tmpfs */
  case 0x58465342:  /* xfs */
    return 1;
  default:
    return 0;
  }
}

static void infy_add(EV_P_ ev_stat *w) {
  w->wd = inotify_add_watch(loop->fs_fd, w->path,
                            IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_MODIFY | IN_CREATE |
                            IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DONT_FOLLOW |
                            IN_MASK_ADD);
  if (w->wd >= 0) {
    if (fs_local(w->path))
      w->timer.repeat = 0.;
    else
      w->timer.repeat = w->interval ? w->interval : NFS_STAT_INTERVAL;
  } else {
    w->timer.repeat = w->interval ? w->interval : DEF_STAT_INTERVAL;
    /* Watch the nearest parent that can be watched, for the path's
     * appearance (or its permissions changing); a path too long for the
     * buffer only loses that hint, the timer still polls. */
    if ((errno == ENOENT || errno == EACCES) && strlen(w->path) < 4096) {
      char path[4096];
      strcpy(path, w->path);
      do {
        unsigned mask = IN_MASK_ADD | IN_DELETE_SELF | IN_MOVE_SELF |
                        (errno == EACCES ? IN_ATTRIB : IN_CREATE | IN_MOVED_TO);
        char *pend = strrchr(path, '/');
        if (!pend || pend == path)
          break;
        *pend = 0;
        w->wd = inotify_add_watch(loop->fs_fd, path, mask);
      } while (w->wd < 0 && (errno == ENOENT || errno == EACCES));
    }
  }
  if (w->wd >= 0)
    wlist_add(&loop->fs_hash[w->wd & (INFY_HASHSIZE - 1)], (WL)w);
  /* re-arm the timer with its new repeat (0 stops it) */
  if (ev_is_active(&w->timer))
    ev_ref(loop);
  ev_timer_again(loop, &w->timer);
  if (ev_is_active(&w->timer))
    ev_unref(loop);
}

static void infy_del(EV_P_ ev_stat *w) {
  int wd = w->wd;
  if (wd < 0)
    return;
  w->wd = -2;
  wlist_del(&loop->fs_hash[wd & (INFY_HASHSIZE - 1)], (WL)w);
  /* other watchers on the same watch get IN_IGNORED and add it again */
  inotify_rm_watch(loop->fs_fd, wd);
}

static void infy_wd(EV_P_ int slot, int wd, struct inotify_event *ev) {
  if (slot < 0) {
    /* queue overflow (wd -1): every watcher looks */
    for (slot = 0; slot < INFY_HASHSIZE; slot++)
      infy_wd(loop, slot, wd, ev);
    return;
  }
  WL *head = &loop->fs_hash[slot & (INFY_HASHSIZE - 1)];
  for (WL w_ = *head; w_;) {
    ev_stat *w = (ev_stat *)w_;
    w_ = w_->next;  /* the callback below may take w off this list */
    if (w->wd == wd || wd == -1) {
      if (ev->mask & (IN_IGNORED | IN_UNMOUNT | IN_DELETE_SELF)) {
        wlist_del(head, (WL)w);
        w->wd = -1;
        infy_add(loop, w);  /* the watch is gone: take a new one */
      }
      stat_timer_cb(loop, &w->timer, 0);
    }
  }
}

/* One read of libev's size per wake, as libev does: a burst of events is
 * taken over as many iterations, and the callbacks come in the same ones. */
#define INFY_BUFSIZE (sizeof(struct inotify_event) * 2 + NAME_MAX)

static void infy_cb(EV_P_ ev_io *w, int revents) {
  (void)w; (void)revents;
  _Alignas(struct inotify_event) char buf[INFY_BUFSIZE];
  ssize_t len = read(loop->fs_fd, buf, sizeof buf);
  for (ssize_t ofs = 0; ofs < len;) {
    struct inotify_event *ev = (struct inotify_event *)(buf + ofs);
    infy_wd(loop, ev->wd, ev->wd, ev);
    ofs += (ssize_t)(sizeof(struct inotify_event) + ev->len);
  }
}

static void infy_start_fd(EV_P) {
  loop->fs_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (loop->fs_fd < 0)
    return;
  ev_io_init(&loop->fs_w, infy_cb, loop->fs_fd, EV_READ);
  ev_set_priority(&loop->fs_w, EV_MAXPRI);
  ev_io_start(loop, &loop->fs_w);
  ev_unref(loop);  /* the internal watcher does not keep the loop alive */
}

static void infy_init(EV_P) {
  if (loop->fs_fd != -2)
    return;
  infy_start_fd(loop);
}

/* After fork the inotify fd is shared with the parent: take a new one and
 * watch every path again (or poll, if that fails). */
static void infy_fork(EV_P) {
  if (loop->fs_fd < 0)
    return;
  ev_ref(loop);
  ev_io_stop(loop, &loop->fs_w);
  close(loop->fs_fd);
  infy_start_fd(loop);
  for (int slot = 0; slot < INFY_HASHSIZE; slot++) {
    WL w_ = loop->fs_hash[slot];
    loop->fs_hash[slot] = NULL;
    while (w_) {
      ev_stat *w = (ev_stat *)w_;
      w_ = w_->next;
      w->wd = -1;
      if (loop->fs_fd >= 0) {
        infy_add(loop, w);
      } else {
        w->timer.repeat = w->interval ? w->interval : DEF_STAT_INTERVAL;
        if (ev_is_active(&w->timer))
          ev_ref(loop);
        ev_timer_again(loop, &w->timer);
        if (ev_is_active(&w->timer))
          ev_unref(loop);
      }
    }
  }
}

static void stat_timer_cb(EV_P_ ev_timer *w_, int revents) {
  (void)revents;
  ev_stat *w = (ev_stat *)((char *)w_ - offsetof(ev_stat, timer));
  ev_statdata prev = w->attr;
  ev_stat_stat(loop, w);
  if (prev.st_dev != w->attr.st_dev || prev.st_ino != w->attr.st_ino ||
      prev.st_mode != w->attr.st_mode || prev.st_nlink != w->attr.st_nlink ||
      prev.st_uid != w->attr.st_uid || prev.st_gid != w->attr.st_gid ||
      prev.st_rdev != w->attr.st_rdev || prev.st_size != w->attr.st_size ||
      prev.st_atime != w->attr.st_atime || prev.st_mtime != w->attr.st_mtime ||
      prev.st_ctime != w->attr.st_ctime) {
    /* prev changes only on a difference, so prev != attr always holds */
    w->prev = prev;
    if (loop->fs_fd >= 0) {
      /* the path may now name another file (or none): watch afresh, and
       * stat again for what changed in between */
      infy_del(loop, w);
      infy_add(loop, w);
      ev_stat_stat(loop, w);
    }
    ev_feed_event(loop, w, EV_STAT);
  }
}

void ev_stat_start(EV_P_ ev_stat *w) {
  if (w->active)
    return;
  ev_stat_stat(loop, w);
  if (w->interval < MIN_STAT_INTERVAL && w->interval)
    w->interval = MIN_STAT_INTERVAL;
  ev_timer_init(&w->timer, stat_timer_cb, 0., w->interval ? w->interval : DEF_STAT_INTERVAL);
  ev_set_priority(&w->timer, ev_priority(w));
  infy_init(loop);
  if (loop->fs_fd >= 0) {
    infy_add(loop, w);
  } else {
    ev_timer_again(loop, &w->timer);
    ev_unref(loop);
  }
  ev__start(loop, (W)w, 1);
}

void ev_stat_stop(EV_P_ ev_stat *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  infy_del(loop, w);
  if (ev_is_active(&w->timer)) {
    ev_ref(loop);
    ev_timer_stop(loop, &w->timer);
  }
  ev__stop(loop, (W)w);
}

/* ------------------------------------------------------------------ */
/* Idle, prepare, check, fork, cleanup, async.                         */

void ev_idle_start(EV_P_ ev_idle *w) {
  if (w->active)
    return;
  pri_adjust((W)w);
  warr_start(loop, &loop->idles[ABSPRI(w)], (W)w);
  ++loop->idleall;
}

void ev_idle_stop(EV_P_ ev_idle *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  warr_del(&loop->idles[ABSPRI(w)], (W)w);
  ev__stop(loop, (W)w);
  --loop->idleall;
}

#define SIMPLE_WATCHER(type, arr)                                             \
  void ev_##type##_start(EV_P_ ev_##type *w) {                                \
    if (w->active)                                                            \
      return;                                                                 \
    warr_start(loop, &loop->arr, (W)w);                                       \
  }                                                                           \
  void ev_##type##_stop(EV_P_ ev_##type *w) {                                 \
    clear_pending(loop, (W)w);                                                \
    if (!w->active)                                                           \
      return;                                                                 \
    warr_del(&loop->arr, (W)w);                                               \
    ev__stop(loop, (W)w);                                                     \
  }

SIMPLE_WATCHER(prepare, prepares)
SIMPLE_WATCHER(check, checks)
SIMPLE_WATCHER(fork, forks)

/* Cleanup watchers never keep the loop alive. */
void ev_cleanup_start(EV_P_ ev_cleanup *w) {
  if (w->active)
    return;
  warr_start(loop, &loop->cleanups, (W)w);
  ev_unref(loop);
}

void ev_cleanup_stop(EV_P_ ev_cleanup *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  ev_ref(loop);
  warr_del(&loop->cleanups, (W)w);
  ev__stop(loop, (W)w);
}

void ev_async_start(EV_P_ ev_async *w) {
  if (w->active)
    return;
  w->sent = 0;
  evpipe_init(loop);
  warr_start(loop, &loop->asyncs, (W)w);
}

void ev_async_stop(EV_P_ ev_async *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  warr_del(&loop->asyncs, (W)w);
  ev__stop(loop, (W)w);
}

void ev_async_send(EV_P_ ev_async *w) {
  w->sent = 1;
  evpipe_write(loop, &loop->async_pending);
}

/* ------------------------------------------------------------------ */
/* Embed.  No backend hands out a pollable fd, so an embedded loop gets a
 * private epoll set mirroring its fd interest (and its wake eventfd); the
 * embedding loop watches that, exactly where libev watches the embedded
 * loop's backend fd.  Like libev, the embedded loop's timers run only when
 * it is swept. */

static int embed_fd(struct ev_loop *inner) {
  if (inner->embed_epfd >= 0)
    return inner->embed_epfd;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    return -1;
  inner->embed_epfd = ep;
  struct epoll_event ev = { .events = EPOLLIN };
  ev.data.fd = inner->base.wakefd;
  epoll_ctl(ep, EPOLL_CTL_ADD, inner->base.wakefd, &ev);
  for (int fd = 0; fd < inner->anfdmax; fd++)
    if (inner->anfds[fd].events)
      mirror_modify(inner, fd, inner->anfds[fd].events);
  return ep;
}

static void embed_io_cb(EV_P_ ev_io *io, int revents) {
  (void)revents;
  ev_embed *w = (ev_embed *)((char *)io - offsetof(ev_embed, io));
  if (w->cb)
    ev_feed_event(loop, (W)w, EV_EMBED);
  else
    ev_run(w->other, EVRUN_NOWAIT);
}

static void embed_prepare_cb(EV_P_ ev_prepare *prepare, int revents) {
  (void)loop; (void)revents;
  ev_embed *w = (ev_embed *)((char *)prepare - offsetof(ev_embed, prepare));
  struct ev_loop *inner = w->other;
  while (inner->fdchangecnt) {
    fd_reify(inner);
    ev_run(inner, EVRUN_NOWAIT);
  }
}

static void embed_fork_cb(EV_P_ ev_fork *fork_w, int revents) {
  (void)revents;
  ev_embed *w = (ev_embed *)((char *)fork_w - offsetof(ev_embed, fork));
  ev_embed_stop(loop, w);
  ev_loop_fork(w->other);
  ev_run(w->other, EVRUN_NOWAIT);
  ev_embed_start(loop, w);
}

void ev_embed_start(EV_P_ ev_embed *w) {
  if (w->active || !w->other)
    return;
  int fd = embed_fd(w->other);
  if (fd < 0)
    return;
  ev_io_init(&w->io, embed_io_cb, fd, EV_READ);
  ev_set_priority(&w->io, ev_priority(w));
  ev_io_start(loop, &w->io);
  ev_prepare_init(&w->prepare, embed_prepare_cb);
  ev_set_priority(&w->prepare, EV_MINPRI);
  ev_prepare_start(loop, &w->prepare);
  ev_fork_init(&w->fork, embed_fork_cb);
  ev_fork_start(loop, &w->fork);
  ev__start(loop, (W)w, 1);
}

void ev_embed_stop(EV_P_ ev_embed *w) {
  clear_pending(loop, (W)w);
  if (!w->active)
    return;
  ev_io_stop(loop, &w->io);
  ev_prepare_stop(loop, &w->prepare);
  ev_fork_stop(loop, &w->fork);
  ev__stop(loop, (W)w);
}

void ev_embed_sweep(EV_P_ ev_embed *w) {
  (void)loop;
  ev_run(w->other, EVRUN_NOWAIT);
}

/* ------------------------------------------------------------------ */
/* ev_once.                                                            */

struct ev_once {
  ev_io io;
  ev_timer to;
  void (*cb)(int revents, void *arg);
  void *arg;
};

static void once_cb(EV_P_ struct ev_once *once, int revents) {
  void (*cb)(int revents, void *arg) = once->cb;
  void *arg = once->arg;
  ev_io_stop(loop, &once->io);
  ev_timer_stop(loop, &once->to);
  ev__free(once);
  cb(revents, arg);
}

static void once_cb_io(EV_P_ ev_io *w, int revents) {
  struct ev_once *once = (struct ev_once *)((char *)w - offsetof(struct ev_once, io));
  once_cb(loop, once, revents | ev_clear_pending(loop, &once->to));
}

static void once_cb_to(EV_P_ ev_timer *w, int revents) {
  struct ev_once *once = (struct ev_once *)((char *)w - offsetof(struct ev_once, to));
  once_cb(loop, once, revents | ev_clear_pending(loop, &once->io));
}

void ev_once(EV_P_ int fd, int events, ev_tstamp timeout, void (*cb)(int revents, void *arg), void *arg) {
  struct ev_once *once = ev__malloc(sizeof *once);
  once->cb = cb;
  once->arg = arg;
  ev_init(&once->io, once_cb_io);
  if (fd >= 0) {
    ev_io_set(&once->io, fd, events);
    ev_io_start(loop, &once->io);
  }
  ev_init(&once->to, once_cb_to);
  if (timeout >= 0.) {
    ev_timer_set(&once->to, timeout, 0.);
    ev_timer_start(loop, &once->to);
  }
}

/* ------------------------------------------------------------------ */
/* Loops.                                                              */

/*
 * Backend choice, in this order:
 *  1. LIBEV_FLAGS (unless EVFLAG_NOENV or a setuid/setgid process) replaces
 *     the program's flags entirely, as in libev.
 *  2. If the flags name exactly one backend we have (EVBACKEND_EPOLL,
 *     EVBACKEND_IOURING, or 0x8000 for the thread pool), that one, and the
 *     environment is not consulted further.
 *  3. If they name several of ours, or none at all (0 / EVFLAG_AUTO),
 *     TRILOOP_BACKEND decides (unless EVFLAG_NOENV), else the first of
 *     io_uring, epoll, thread pool among those named, else auto (uring if a
 *     ring really works here, else epoll).
 *  4. If they name none of ours but select or poll, which libev always has
 *     on Linux: TRILOOP_BACKEND decides (unless EVFLAG_NOENV), else epoll,
 *     the closest to poll (a readiness syscall per wait, no ring).  All of
 *     ours give what a program asking for poll relies on: level-triggered
 *     readiness, any fd type (a regular file is always ready, as poll says),
 *     fds closed and reused while watched.  ev_backend() then reports the
 *     bit the program asked for (poll if it named both, libev's preference),
 *     so a program that checks it sees what it chose.
 *  5. If they name only backends we lack (kqueue, devpoll, port, linuxaio),
 *     there is no loop: ev_loop_new and ev_default_loop return 0, as libev
 *     does when no requested backend is available.
 * Returns tl flags, or -1 for "no backend"; *report is the bit ev_backend()
 * reports, or 0 for "the backend that runs the loop".
 */
static int choose_backend(unsigned flags, unsigned *report) {
  int noenv = (flags & EVFLAG_NOENV) != 0;
  unsigned want = flags & EVBACKEND_MASK;
  *report = 0;
  if (!want)
    return (int)(TL_BACKEND_AUTO | (noenv ? TL_FLAG_NOENV : 0));
  unsigned mine = EVBACKEND_IOURING | EVBACKEND_EPOLL | EVBACKEND_TL_THREADPOOL;
  unsigned have = want & mine;
  if (!have) {
    unsigned served = want & ev_supported_backends() & (EVBACKEND_POLL | EVBACKEND_SELECT);
    if (!served)
      return -1;
    *report = served & EVBACKEND_POLL ? EVBACKEND_POLL : EVBACKEND_SELECT;
    const char *env = noenv ? NULL : tl__getenv("TRILOOP_BACKEND");
    if ((env && *env) || !(ev_supported_backends() & EVBACKEND_EPOLL))
      return (int)(TL_BACKEND_AUTO | (noenv ? TL_FLAG_NOENV : 0));
    return TL_BACKEND_EPOLL | TL_FLAG_NOENV;
  }
  if (__builtin_popcount(have) > 1) {
    const char *env = noenv ? NULL : tl__getenv("TRILOOP_BACKEND");
    if (env && *env)
      return TL_BACKEND_AUTO;
    have &= ev_supported_backends();
    if (!have)
      return -1;
  }
  if (have & EVBACKEND_IOURING)
    return TL_BACKEND_URING | TL_FLAG_NOENV;
  if (have & EVBACKEND_EPOLL)
    return TL_BACKEND_EPOLL | TL_FLAG_NOENV;
  return TL_BACKEND_THREADPOOL | TL_FLAG_NOENV;
}

static int loop_init(EV_P_ unsigned flags) {
  loop->origflags = flags;
  if (flags & EVFLAG_FORKCHECK)
    loop->curpid = getpid();
  if (!(flags & EVFLAG_NOENV)) {
    const char *env = tl__getenv("LIBEV_FLAGS");
    if (env)
      flags = (unsigned)atoi(env);
  }
  loop->rt_now = ev_time();
  loop->mn_now = get_clock();
  loop->now_floor = loop->mn_now;
  loop->rtmn_diff = loop->rt_now - loop->mn_now;
  loop->invoke_cb = ev_invoke_pending;
  loop->backend_mintime = 1e-3;
  loop->embed_epfd = -1;
  loop->fs_fd = -2;
  atomic_init(&loop->sig_pending, 0);
  atomic_init(&loop->async_pending, 0);
  atomic_init(&loop->pipe_write_wanted, 0);
  atomic_init(&loop->pipe_write_skipped, 0);

  unsigned report;
  int tlflags = choose_backend(flags, &report);
  if (tlflags < 0)
    return -1;
  loop->base.owner = loop;
  loop->base.on_fd = on_fd;
  loop->base.on_op = on_op;
  loop->base.on_wake = on_wake;
  loop->base.wakefd = -1;
  if (tl__base_init(&loop->base, (unsigned)tlflags) < 0)
    return -1;
  loop->backend = report ? report : backend_bit(loop->base.be->id);

  ev_prepare_init(&loop->pending_w, pendingcb);
  ev_init(&loop->pipe_w, pipecb);
  ev_set_priority(&loop->pipe_w, EV_MAXPRI);
  return 0;
}

struct ev_loop *ev_loop_new(unsigned int flags) {
  struct ev_loop *loop = ev__malloc(sizeof *loop);
  memset(loop, 0, sizeof *loop);
  if (loop_init(loop, flags) == 0)
    return loop;
  ev__free(loop);
  return NULL;
}

struct ev_loop *ev_default_loop(unsigned int flags) {
  if (!ev_default_loop_ptr) {
    struct ev_loop *loop = &default_loop_struct;
    memset(loop, 0, sizeof *loop);
    if (loop_init(loop, flags) < 0)
      return NULL;
    ev_default_loop_ptr = loop;
    ev_signal_init(&childev, childcb, SIGCHLD);
    ev_set_priority(&childev, EV_MAXPRI);
    ev_signal_start(loop, &childev);
    ev_unref(loop);   /* the child watcher does not keep the loop alive */
  }
  return ev_default_loop_ptr;
}

static void free_arrays(EV_P) {
  for (int i = NUMPRI; i--;) {
    ev__free(loop->pendings[i]);
    ev__free(loop->idles[i].v);
  }
  ev__free(loop->anfds);
  ev__free(loop->rfeeds);
  ev__free(loop->fdchanges);
  ev__free(loop->timers);
  ev__free(loop->periodics);
  ev__free(loop->forks.v);
  ev__free(loop->cleanups.v);
  ev__free(loop->prepares.v);
  ev__free(loop->checks.v);
  ev__free(loop->asyncs.v);
}

void ev_loop_destroy(EV_P) {
  if (!loop)
    return;
  if (loop->cleanups.cnt) {
    queue_events(loop, loop->cleanups.v, loop->cleanups.cnt, EV_CLEANUP);
    loop->invoke_cb(loop);
  }
  if (loop == ev_default_loop_ptr && ev_is_active(&childev)) {
    ev_ref(loop);
    ev_signal_stop(loop, &childev);
  }
  /* Unlike libev, detach signals still owned by this loop, so a late
   * signal cannot reach freed memory. */
  for (int i = 0; i < EV_NSIG - 1; i++) {
    if (atomic_load(&signals[i].loop) == loop) {
      atomic_store(&signals[i].loop, NULL);
      signals[i].head = NULL;
      signal(i + 1, SIG_DFL);
    }
  }
  if (loop->embed_epfd >= 0)
    close(loop->embed_epfd);
  tl__base_destroy(&loop->base);
  /* after the backend is gone, so no backend thread still waits on it */
  if (loop->fs_fd >= 0)
    close(loop->fs_fd);
  free_arrays(loop);
  loop->backend = 0;
  if (loop == ev_default_loop_ptr)
    ev_default_loop_ptr = NULL;
  else
    ev__free(loop);
}

void ev_loop_fork(EV_P) { loop->postfork = 1; }

static void loop_fork(EV_P) {
  if (tl__base_fork(&loop->base) < 0)
    ev__syserr("(libev) cannot recreate the backend after fork");
  infy_fork(loop);
  if (loop->embed_epfd >= 0) {
    /* the mirror is shared with the parent: take a private one */
    close(loop->embed_epfd);
    loop->embed_epfd = -1;
    embed_fd(loop);
  }
  if (loop->evpipe_on) {
    /* look at everything, in case a wake was lost across the fork */
    ev_feed_event(loop, &loop->pipe_w, EV_CUSTOM);
  }
  loop->postfork = 0;
}

unsigned int ev_backend(EV_P) { return loop->backend; }
unsigned int ev_iteration(EV_P) { return loop->loop_count; }
unsigned int ev_depth(EV_P) { return loop->loop_depth; }
void ev_set_io_collect_interval(EV_P_ ev_tstamp interval) { loop->io_blocktime = interval; }
void ev_set_timeout_collect_interval(EV_P_ ev_tstamp interval) { loop->timeout_blocktime = interval; }
void ev_set_userdata(EV_P_ void *data) { loop->userdata = data; }
void *ev_userdata(EV_P) { return loop->userdata; }
void ev_set_invoke_pending_cb(EV_P_ ev_loop_callback cb) { loop->invoke_cb = cb; }

void ev_set_loop_release_cb(EV_P_ void (*release)(EV_P), void (*acquire)(EV_P)) {
  loop->release_cb = release;
  loop->acquire_cb = acquire;
}

void ev_break(EV_P_ int how) { loop->loop_done = how; }

static void idle_reify(EV_P) {
  if (loop->idleall) {
    for (int pri = NUMPRI; pri--;) {
      if (loop->pendingcnt[pri])
        break;
      if (loop->idles[pri].cnt) {
        queue_events(loop, loop->idles[pri].v, loop->idles[pri].cnt, EV_IDLE);
        break;
      }
    }
  }
}

int ev_run(EV_P_ int flags) {
  ++loop->loop_depth;
  loop->loop_done = EVBREAK_CANCEL;
  loop->invoke_cb(loop);   /* when recursing, keep the order clean */

  do {
    if (loop->curpid && getpid() != loop->curpid) {
      loop->curpid = getpid();
      loop->postfork = 1;
    }
    if (loop->postfork && loop->forks.cnt) {
      queue_events(loop, loop->forks.v, loop->forks.cnt, EV_FORK);
      loop->invoke_cb(loop);
    }
    if (loop->prepares.cnt) {
      queue_events(loop, loop->prepares.v, loop->prepares.cnt, EV_PREPARE);
      loop->invoke_cb(loop);
    }
    if (loop->loop_done)
      break;
    if (loop->postfork)
      loop_fork(loop);
    fd_reify(loop);

    {
      ev_tstamp waittime = 0., sleeptime = 0.;
      ev_tstamp prev_mn_now = loop->mn_now;
      time_update(loop, 1e100);
      atomic_store(&loop->pipe_write_wanted, 1);
      if (!((flags & EVRUN_NOWAIT) || loop->idleall || !loop->activecnt ||
            atomic_load(&loop->pipe_write_skipped))) {
        waittime = MAX_BLOCKTIME;
        if (loop->timercnt) {
          ev_tstamp to = loop->timers[HEAP0].at - loop->mn_now;
          if (waittime > to)
            waittime = to;
        }
        if (loop->periodiccnt) {
          ev_tstamp to = loop->periodics[HEAP0].at - loop->rt_now;
          if (waittime > to)
            waittime = to;
        }
        if (waittime < loop->timeout_blocktime)
          waittime = loop->timeout_blocktime;
        if (waittime < loop->backend_mintime)
          waittime = waittime <= 0. ? 0. : loop->backend_mintime;
        if (loop->io_blocktime) {
          sleeptime = loop->io_blocktime - (loop->mn_now - prev_mn_now);
          if (sleeptime > waittime - loop->backend_mintime)
            sleeptime = waittime - loop->backend_mintime;
          if (sleeptime > 0.) {
            ev_sleep(sleeptime);
            waittime -= sleeptime;
          }
        }
      }

      ++loop->loop_count;
      ++loop->base.iterations;
      if (loop->release_cb)
        loop->release_cb(loop);
      int r = loop->base.be->poll(&loop->base, waittime);
      if (r == -EEXIST && loop->base.be->fork) {
        /* A single-issuer io_uring belongs to the thread that first ran the
         * loop; libev lets any thread run it (one at a time).  The backend's
         * fork hook gives the loop a ring of this thread and re-arms every
         * fd watcher (the drop-in has no ops in the ring to lose). */
        r = loop->base.be->fork(&loop->base);
        if (r == 0)
          r = loop->base.be->poll(&loop->base, waittime);
      }
      if (loop->acquire_cb)
        loop->acquire_cb(loop);
      if (r < 0 && r != -EINTR) {
        errno = -r;
        ev__syserr("(libev) backend poll");
      }
      atomic_store(&loop->pipe_write_wanted, 0);
      if (atomic_load(&loop->pipe_write_skipped))
        ev_feed_event(loop, &loop->pipe_w, EV_CUSTOM);
      time_update(loop, waittime + sleeptime);
    }

    timers_reify(loop);     /* relative timers run last */
    periodics_reify(loop);  /* absolute ones first */
    idle_reify(loop);
    if (loop->checks.cnt)   /* queued last so they run first */
      queue_events(loop, loop->checks.v, loop->checks.cnt, EV_CHECK);
    loop->invoke_cb(loop);
  } while (loop->activecnt && !loop->loop_done && !(flags & (EVRUN_ONCE | EVRUN_NOWAIT)));

  if (loop->loop_done == EVBREAK_ONE)
    loop->loop_done = EVBREAK_CANCEL;
  --loop->loop_depth;
  return loop->activecnt;
}

/* ------------------------------------------------------------------ */
/* ev_verify: the documented use is "abort if loop data corrupted".    */

static void verify_fail(const char *what) {
  fprintf(stderr, "libev: %s\n", what);
  abort();
}

static void verify_watcher(EV_P_ W w) {
  if (ABSPRI(w) < 0 || ABSPRI(w) >= NUMPRI)
    verify_fail("watcher has invalid priority");
  if (w->pending && loop->pendings[ABSPRI(w)][w->pending - 1].w != w)
    verify_fail("pending watcher not on pending queue");
}

static void verify_heap(EV_P_ ANHE *heap, int N) {
  for (int i = HEAP0; i < N + HEAP0; ++i) {
    if (heap[i].w->active != i)
      verify_fail("active index mismatch in heap");
    if (i != HEAP0 && heap[HPARENT(i)].at > heap[i].at)
      verify_fail("heap condition violated");
    if (heap[i].at != heap[i].w->at)
      verify_fail("heap at cache mismatch");
    verify_watcher(loop, (W)heap[i].w);
  }
}

static void verify_warr(EV_P_ struct warr *a) {
  if (a->cnt > a->max && a->cnt)
    verify_fail("array overflow");
  for (int i = 0; i < a->cnt; i++) {
    if (a->v[i]->active != i + 1)
      verify_fail("active index mismatch");
    verify_watcher(loop, a->v[i]);
  }
}

void ev_verify(EV_P) {
  for (int i = 0; i < loop->fdchangecnt; ++i)
    if (loop->fdchanges[i] < 0)
      verify_fail("negative fd in fdchanges");
  for (int fd = 0; fd < loop->anfdmax; ++fd) {
    int n = 0;
    for (WL w = loop->anfds[fd].head; w; w = w->next) {
      verify_watcher(loop, (W)w);
      if (w->active != 1)
        verify_fail("inactive fd watcher on anfd list");
      if (((ev_io *)w)->fd != fd)
        verify_fail("fd mismatch between watcher and anfd");
      if (++n > 1 << 24)
        verify_fail("io watcher list contains a loop");
    }
  }
  verify_heap(loop, loop->timers, loop->timercnt);
  verify_heap(loop, loop->periodics, loop->periodiccnt);
  int idle = 0;
  for (int i = NUMPRI; i--;) {
    if (loop->pendingcnt[i] > loop->pendingmax[i])
      verify_fail("pending array overflow");
    verify_warr(loop, &loop->idles[i]);
    idle += loop->idles[i].cnt;
  }
  if (idle != loop->idleall)
    verify_fail("idle count mismatch");
  verify_warr(loop, &loop->forks);
  verify_warr(loop, &loop->cleanups);
  verify_warr(loop, &loop->asyncs);
  verify_warr(loop, &loop->prepares);
  verify_warr(loop, &loop->checks);
}
