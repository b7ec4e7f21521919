/*
 * Syscall fault injection for tests (./configure --enable-fault-injection).
 *
 * The library's objects are linked with GNU ld --wrap=SYMBOL (src/local.mk),
 * so every call the library makes to SYMBOL lands in __wrap_SYMBOL below,
 * which asks the plan whether to fail it.  The backends' code is untouched:
 * what they see is exactly what the real call can return.  Only the
 * library's own calls are wrapped (the wrap happens when libtriloop.so is
 * linked), never the test program's, nor those made inside libc or liburing.
 *
 * Wrapped symbols
 * ---------------
 *   libc:     read write pread pwrite readv writev preadv pwritev recv send
 *             accept4 connect openat close fsync fdatasync poll eventfd
 *             epoll_create1 epoll_ctl epoll_wait pthread_create calloc realloc
 *   liburing: io_uring_queue_init_params io_uring_enter2 io_uring_register
 *             io_uring_register_ring_fd io_uring_register_iowq_max_workers
 *             io_uring_get_probe_ring
 *   a point:  io_uring_prep_cancel64 is inline, so it is not wrapped: the
 *             uring backend asks tl__fault_uring_cancel_miss() before each
 *             cancel SQE, and any rule that fires makes that cancel miss
 *             (it targets no request, as when the kernel moved the op to
 *             an io-wq worker just before the cancel looked for it)
 * (The uring backend enters the kernel only through io_uring_enter2; it never
 * calls io_uring_submit or io_uring_wait_cqe*.)
 *
 * A failure looks like the real one: -1 and errno for libc calls, -errno for
 * liburing calls, the error number for pthread_create, NULL and ENOMEM for
 * calloc/realloc, NULL for io_uring_get_probe_ring.  close() is always
 * really done first (Linux releases the fd even when close reports EINTR or
 * EIO), then the error is returned.
 *
 * The plan: TRILOOP_FAULT, or tl_fault_set() (src/fault.h)
 * ------------------------------------------------------------
 *   PLAN  := RULE [ "," RULE ]...
 *   RULE  := SYMBOL ":" ACTION [ ":" COND ]...
 *   ACTION:= an errno name (EINTR EAGAIN ENOMEM EMFILE ENFILE EBUSY ENOSPC
 *            EIO EPIPE ECONNRESET ECONNABORTED ENOBUFS EPERM EINVAL EBADF
 *            ENOSYS ETIME) or a number, or "short": reads and writes move
 *            half of what was asked (at least 1 byte; a 1-byte call is left
 *            alone), the other symbols ignore a short rule
 *   COND  := nth=N     only the Nth call that matches the rule (1-based)
 *          | every=N   every Nth matching call
 *          | after=N   every matching call after the Nth
 *          | p=F       with probability F (0..1)
 *          | count=N   at most N injections by this rule
 *          | fd=N      only calls on fd N (the fd argument; epoll_ctl's
 *                      target fd)
 *   Without nth/every/after/p a rule fires on every matching call.  All the
 *   conditions of a rule must hold.  The first rule that fires wins.
 *   TRILOOP_FAULT_SEED=N seeds p= (default 1); TRILOOP_FAULT_LOG=1 prints
 *   each injection to stderr.
 *
 * Not injected: read and write on the library's eventfds (the loop's wakefd
 * and the pool workers' cancel fds, i.e. every fd the wrapped eventfd()
 * returned).  They move one 8-byte counter, which Linux never transfers in
 * part (fewer than 8 bytes is EINVAL) and which, non-blocking, fails only
 * with EAGAIN: on read when the counter is 0 (a spurious wake, which the
 * library takes), on write when it would overflow (never: one write per
 * wake is outstanding at a time).  A faked failure there is one no kernel
 * produces, and it silently loses the wake-up, so every cross-thread
 * completion after it waits forever (the loop drains posts only on the
 * wakefd; a kicked worker waits on its fd).  Creating them (eventfd:...)
 * can still fail.
 * Example:
 *   TRILOOP_FAULT="epoll_wait:EINTR:every=3,read:short:nth=5,pthread_create:EAGAIN:p=0.5"
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "fault.h"

enum {
  S_READ, S_WRITE, S_PREAD, S_PWRITE, S_READV, S_WRITEV, S_PREADV, S_PWRITEV,
  S_RECV, S_SEND, S_ACCEPT4, S_CONNECT, S_OPENAT, S_CLOSE, S_FSYNC,
  S_FDATASYNC, S_POLL, S_EVENTFD, S_EPOLL_CREATE1, S_EPOLL_CTL, S_EPOLL_WAIT,
  S_PTHREAD_CREATE, S_CALLOC, S_REALLOC, S_URING_INIT, S_URING_ENTER2,
  S_URING_REGISTER, S_URING_REGISTER_RING_FD, S_URING_IOWQ_MAX,
  S_URING_PROBE, S_URING_CANCEL, S__COUNT
};

static const char *const sym_names[S__COUNT + 1] = {
  "read", "write", "pread", "pwrite", "readv", "writev", "preadv", "pwritev",
  "recv", "send", "accept4", "connect", "openat", "close", "fsync",
  "fdatasync", "poll", "eventfd", "epoll_create1", "epoll_ctl", "epoll_wait",
  "pthread_create", "calloc", "realloc", "io_uring_queue_init_params",
  "io_uring_enter2", "io_uring_register", "io_uring_register_ring_fd",
  "io_uring_register_iowq_max_workers", "io_uring_get_probe_ring",
  "io_uring_prep_cancel64", NULL
};

static const struct { const char *name; int err; } errnames[] = {
  { "EINTR", EINTR }, { "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM },
  { "EMFILE", EMFILE }, { "ENFILE", ENFILE }, { "EBUSY", EBUSY },
  { "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EPIPE", EPIPE },
  { "ECONNRESET", ECONNRESET }, { "ECONNABORTED", ECONNABORTED },
  { "ENOBUFS", ENOBUFS }, { "EPERM", EPERM }, { "EINVAL", EINVAL },
  { "EBADF", EBADF }, { "ENOSYS", ENOSYS }, { "ETIME", ETIME },
};

#define MAX_RULES 32
#define SHORT (-1)

struct rule {
  int sym;
  int err;                    /* errno to inject, or SHORT */
  int fd;                     /* -1: any */
  uint64_t nth, every, after, count;
  double p;                   /* < 0: no probability condition */
  uint64_t seen, fired;
};

/* One lock for everything: pool workers call in concurrently, and a test
 * build can afford it.  (pthread_mutex_* are not wrapped.) */
static pthread_mutex_t F_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rule F_rules[MAX_RULES];
static int F_nrules;
static int F_loaded;          /* TRILOOP_FAULT read (or a plan was set) */
static int F_log;
static uint64_t F_rand = 1;
static uint64_t F_calls[S__COUNT], F_injected[S__COUNT];

static int sym_index(const char *name, size_t len) {
  for (int i = 0; i < S__COUNT; i++)
    if (strlen(sym_names[i]) == len && !strncmp(sym_names[i], name, len))
      return i;
  return -1;
}

static int parse_u64(const char *s, size_t len, uint64_t *out) {
  if (!len || len > 20)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

static int parse_rule(const char *s, size_t len, struct rule *r) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  r->p = -1;
  const char *end = s + len;
  int field = 0;
  while (s < end) {
    const char *c = memchr(s, ':', (size_t)(end - s));
    size_t n = c ? (size_t)(c - s) : (size_t)(end - s);
    if (field == 0) {
      if ((r->sym = sym_index(s, n)) < 0)
        return -1;
    } else if (field == 1) {
      uint64_t num;
      if (n == 5 && !strncmp(s, "short", 5)) {
        r->err = SHORT;
      } else if (parse_u64(s, n, &num) == 0 && num > 0 && num < 4096) {
        r->err = (int)num;
      } else {
        r->err = 0;
        for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
          if (strlen(errnames[i].name) == n && !strncmp(errnames[i].name, s, n))
            r->err = errnames[i].err;
        if (!r->err)
          return -1;
      }
    } else {
      const char *eq = memchr(s, '=', n);
      if (!eq)
        return -1;
      size_t kn = (size_t)(eq - s), vn = n - kn - 1;
      const char *v = eq + 1;
      uint64_t num = 0;
      if (kn == 1 && *s == 'p') {
        char buf[32];
        if (vn == 0 || vn >= sizeof buf)
          return -1;
        memcpy(buf, v, vn);
        buf[vn] = 0;
        char *e;
        r->p = strtod(buf, &e);
        if (*e || !(r->p >= 0 && r->p <= 1))
          return -1;
      } else if (parse_u64(v, vn, &num) < 0) {
        return -1;
      } else if (kn == 3 && !strncmp(s, "nth", 3) && num > 0) {
        r->nth = num;
      } else if (kn == 5 && !strncmp(s, "every", 5) && num > 0) {
        r->every = num;
      } else if (kn == 5 && !strncmp(s, "after", 5)) {
        r->after = num;
      } else if (kn == 5 && !strncmp(s, "count", 5) && num > 0) {
        r->count = num;
      } else if (kn == 2 && !strncmp(s, "fd", 2) && num < 0x7fffffff) {
        r->fd = (int)num;
      } else {
        return -1;
      }
    }
    field++;
    s += n + (c ? 1 : 0);
    if (c && s == end)
      return -1;     /* a trailing ':' */
  }
  return field >= 2 ? 0 : -1;
}

/* Under F_lock. */
static int parse_plan(const char *plan) {
  struct rule rules[MAX_RULES];
  int n = 0;
  const char *s = plan ? plan : "";
  while (*s) {
    size_t len = strcspn(s, ", ");
    if (len) {
      if (n == MAX_RULES || parse_rule(s, len, &rules[n]) < 0)
        return -EINVAL;
      n++;
    }
    s += len;
    s += strspn(s, ", ");
  }
  memcpy(F_rules, rules, (size_t)n * sizeof rules[0]);
  F_nrules = n;
  memset(F_calls, 0, sizeof F_calls);
  memset(F_injected, 0, sizeof F_injected);
  return 0;
}

/* Under F_lock: the environment, once, unless a test set a plan first. */
static void load_env(void) {
  if (F_loaded)
    return;
  F_loaded = 1;
  const char *v = getenv("TRILOOP_FAULT_LOG");
  F_log = v && *v == '1';
  v = getenv("TRILOOP_FAULT_SEED");
  if (v && *v)
    F_rand = strtoull(v, NULL, 10) | 1;
  v = getenv("TRILOOP_FAULT");
  if (v && parse_plan(v) < 0)
    fprintf(stderr, "triloop: TRILOOP_FAULT does not parse, ignored: %s\n", v);
}

static double next_rand(void) {
  /* xorshift64*: reproducible for a given seed and call order. */
  F_rand ^= F_rand >> 12;
  F_rand ^= F_rand << 25;
  F_rand ^= F_rand >> 27;
  return (double)((F_rand * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/*
 * The decision for one call: 0 to call through, an errno to fail with, or
 * SHORT.  shortable: the call moves a length that can be halved.
 */
static int decide(int sym, int fd, int shortable) {
  pthread_mutex_lock(&F_lock);
  load_env();
  F_calls[sym]++;
  int out = 0;
  for (int i = 0; i < F_nrules && !out; i++) {
    struct rule *r = &F_rules[i];
    if (r->sym != sym || (r->fd >= 0 && r->fd != fd))
      continue;
    if (r->err == SHORT && !shortable)
      continue;
    uint64_t seen = ++r->seen;
    if (r->count && r->fired >= r->count)
      continue;
    if (r->nth && seen != r->nth)
      continue;
    if (r->every && seen % r->every)
      continue;
    if (r->after && seen <= r->after)
      continue;
    if (r->p >= 0 && !(next_rand() < r->p))
      continue;
    r->fired++;
    F_injected[sym]++;
    out = r->err;
  }
  int log = F_log;
  pthread_mutex_unlock(&F_lock);
  if (out && log) {
    char line[128];
    int n = snprintf(line, sizeof line, "triloop fault: %s(fd %d): %s\n", sym_names[sym], fd,
                     out == SHORT ? "short" : strerror(out));
    if (n > 0)
      fputs(line, stderr);
  }
  return out;
}

int tl_fault_set(const char *plan) {
  pthread_mutex_lock(&F_lock);
  if (!F_loaded) {
    load_env();
  }
  int r = parse_plan(plan);
  pthread_mutex_unlock(&F_lock);
  return r;
}

static uint64_t sum(const uint64_t *v, const char *sym) {
  uint64_t n = 0;
  pthread_mutex_lock(&F_lock);
  for (int i = 0; i < S__COUNT; i++)
    if (!sym || !strcmp(sym, sym_names[i]))
      n += v[i];
  pthread_mutex_unlock(&F_lock);
  return n;
}

int tl__fault_uring_cancel_miss(int fd) { return decide(S_URING_CANCEL, fd, 0) != 0; }

uint64_t tl_fault_calls(const char *sym) { return sum(F_calls, sym); }
uint64_t tl_fault_injected(const char *sym) { return sum(F_injected, sym); }
const char *const *tl_fault_symbols(void) { return sym_names; }

/* ------------------------------------------------------------------ */
/* The wrappers                                                        */
/* ------------------------------------------------------------------ */

static size_t half(size_t len) { return len / 2 ? len / 2 : 1; }

/* fds the wrapped eventfd() returned and close() has not released: read and
 * write on them are passed through (see the top of the file).  fds beyond
 * the map are treated as ordinary fds. */
#define EFD_MAP_BITS 65536
static _Atomic unsigned char F_efd[EFD_MAP_BITS / 8];

static void efd_mark(int fd, int on) {
  if (fd < 0 || fd >= EFD_MAP_BITS)
    return;
  unsigned char bit = (unsigned char)(1u << (fd & 7));
  if (on)
    atomic_fetch_or(&F_efd[fd >> 3], bit);
  else
    atomic_fetch_and(&F_efd[fd >> 3], (unsigned char)~bit);
}

static int is_efd(int fd) {
  return fd >= 0 && fd < EFD_MAP_BITS && (atomic_load(&F_efd[fd >> 3]) >> (fd & 7) & 1);
}

/* An iovec array cut down to half its total length, in buf (at most nbuf
 * entries); returns the new count. */
static int iov_half(const struct iovec *iov, int cnt, struct iovec *buf, int nbuf) {
  size_t total = 0;
  for (int i = 0; i < cnt; i++)
    total += iov[i].iov_len;
  size_t want = half(total);
  int n = 0;
  for (int i = 0; i < cnt && n < nbuf && want; i++) {
    buf[n] = iov[i];
    if (buf[n].iov_len > want)
      buf[n].iov_len = want;
    want -= buf[n].iov_len;
    n++;
  }
  return n;
}

static size_t iov_total(const struct iovec *iov, int cnt) {
  size_t t = 0;
  for (int i = 0; i < cnt; i++)
    t += iov[i].iov_len;
  return t;
}

#define FAIL_ERRNO(e) do { errno = (e); return -1; } while (0)

#define RW_WRAP(name, sym, bufty)                                           \
  ssize_t __real_##name(int fd, bufty buf, size_t len);                     \
  ssize_t __wrap_##name(int fd, bufty buf, size_t len);                     \
  ssize_t __wrap_##name(int fd, bufty buf, size_t len) {                    \
    if (is_efd(fd))                                                         \
      return __real_##name(fd, buf, len);                                   \
    int f = decide(sym, fd, len > 1);                                       \
    if (f == SHORT)                                                         \
      return __real_##name(fd, buf, half(len));                             \
    if (f)                                                                  \
      FAIL_ERRNO(f);                                                        \
    return __real_##name(fd, buf, len);                                     \
  }
RW_WRAP(read, S_READ, void *)
RW_WRAP(write, S_WRITE, const void *)

#define PRW_WRAP(name, sym, bufty)                                          \
  ssize_t __real_##name(int fd, bufty buf, size_t len, off_t off);          \
  ssize_t __wrap_##name(int fd, bufty buf, size_t len, off_t off);          \
  ssize_t __wrap_##name(int fd, bufty buf, size_t len, off_t off) {         \
    int f = decide(sym, fd, len > 1);                                       \
    if (f == SHORT)                                                         \
      return __real_##name(fd, buf, half(len), off);                        \
    if (f)                                                                  \
      FAIL_ERRNO(f);                                                        \
    return __real_##name(fd, buf, len, off);                                \
  }
PRW_WRAP(pread, S_PREAD, void *)
PRW_WRAP(pwrite, S_PWRITE, const void *)

#define IOV_MAXCUT 64
#define RWV_WRAP(name, sym)                                                 \
  ssize_t __real_##name(int fd, const struct iovec *iov, int cnt);          \
  ssize_t __wrap_##name(int fd, const struct iovec *iov, int cnt);          \
  ssize_t __wrap_##name(int fd, const struct iovec *iov, int cnt) {         \
    int f = decide(sym, fd, cnt > 0 && iov_total(iov, cnt) > 1);            \
    if (f == SHORT) {                                                       \
      struct iovec cut[IOV_MAXCUT];                                         \
      return __real_##name(fd, cut, iov_half(iov, cnt, cut, IOV_MAXCUT));   \
    }                                                                       \
    if (f)                                                                  \
      FAIL_ERRNO(f);                                                        \
    return __real_##name(fd, iov, cnt);                                     \
  }
RWV_WRAP(readv, S_READV)
RWV_WRAP(writev, S_WRITEV)

#define PRWV_WRAP(name, sym)                                                      \
  ssize_t __real_##name(int fd, const struct iovec *iov, int cnt, off_t off);     \
  ssize_t __wrap_##name(int fd, const struct iovec *iov, int cnt, off_t off);     \
  ssize_t __wrap_##name(int fd, const struct iovec *iov, int cnt, off_t off) {    \
    int f = decide(sym, fd, cnt > 0 && iov_total(iov, cnt) > 1);                  \
    if (f == SHORT) {                                                             \
      struct iovec cut[IOV_MAXCUT];                                               \
      return __real_##name(fd, cut, iov_half(iov, cnt, cut, IOV_MAXCUT), off);    \
    }                                                                             \
    if (f)                                                                        \
      FAIL_ERRNO(f);                                                              \
    return __real_##name(fd, iov, cnt, off);                                      \
  }
PRWV_WRAP(preadv, S_PREADV)
PRWV_WRAP(pwritev, S_PWRITEV)

#define MSG_WRAP(name, sym, bufty)                                          \
  ssize_t __real_##name(int fd, bufty buf, size_t len, int flags);          \
  ssize_t __wrap_##name(int fd, bufty buf, size_t len, int flags);          \
  ssize_t __wrap_##name(int fd, bufty buf, size_t len, int flags) {         \
    int f = decide(sym, fd, len > 1);                                       \
    if (f == SHORT)                                                         \
      return __real_##name(fd, buf, half(len), flags);                      \
    if (f)                                                                  \
      FAIL_ERRNO(f);                                                        \
    return __real_##name(fd, buf, len, flags);                              \
  }
MSG_WRAP(recv, S_RECV, void *)
MSG_WRAP(send, S_SEND, const void *)

int __real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  int f = decide(S_ACCEPT4, fd, 0);
  if (f)
    FAIL_ERRNO(f);
  return __real_accept4(fd, addr, len, flags);
}

int __real_connect(int fd, const struct sockaddr *addr, socklen_t len);
int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len);
int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len) {
  int f = decide(S_CONNECT, fd, 0);
  if (f)
    FAIL_ERRNO(f);
  return __real_connect(fd, addr, len);
}

/* The library always passes a mode (src/ops_sync.c), so taking it from the
 * variadic part reads an argument that is there. */
int __real_openat(int dirfd, const char *path, int flags, ...);
int __wrap_openat(int dirfd, const char *path, int flags, ...);
int __wrap_openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_arg(ap, mode_t);
  va_end(ap);
  int f = decide(S_OPENAT, dirfd, 0);
  if (f)
    FAIL_ERRNO(f);
  return __real_openat(dirfd, path, flags, mode);
}

int __real_close(int fd);
int __wrap_close(int fd);
int __wrap_close(int fd) {
  int f = decide(S_CLOSE, fd, 0);
  /* Before the close: once released, the number may be reused at once. */
  efd_mark(fd, 0);
  int r = __real_close(fd);
  if (f)
    FAIL_ERRNO(f);
  return r;
}

#define SYNC_WRAP(name, sym)                                                \
  int __real_##name(int fd);                                                \
  int __wrap_##name(int fd);                                                \
  int __wrap_##name(int fd) {                                               \
    int f = decide(sym, fd, 0);                                             \
    if (f)                                                                  \
      FAIL_ERRNO(f);                                                        \
    return __real_##name(fd);                                               \
  }
SYNC_WRAP(fsync, S_FSYNC)
SYNC_WRAP(fdatasync, S_FDATASYNC)

int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout) {
  int f = decide(S_POLL, n ? fds[0].fd : -1, 0);
  if (f)
    FAIL_ERRNO(f);
  return __real_poll(fds, n, timeout);
}

int __real_eventfd(unsigned int initval, int flags);
int __wrap_eventfd(unsigned int initval, int flags);
int __wrap_eventfd(unsigned int initval, int flags) {
  int f = decide(S_EVENTFD, -1, 0);
  if (f)
    FAIL_ERRNO(f);
  int fd = __real_eventfd(initval, flags);
  efd_mark(fd, 1);
  return fd;
}

int __real_epoll_create1(int flags);
int __wrap_epoll_create1(int flags);
int __wrap_epoll_create1(int flags) {
  int f = decide(S_EPOLL_CREATE1, -1, 0);
  if (f)
    FAIL_ERRNO(f);
  return __real_epoll_create1(flags);
}

int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
  int f = decide(S_EPOLL_CTL, fd, 0);
  if (f)
    FAIL_ERRNO(f);
  return __real_epoll_ctl(epfd, op, fd, ev);
}

int __real_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout);
int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout);
int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
  int f = decide(S_EPOLL_WAIT, epfd, 0);
  if (f)
    FAIL_ERRNO(f);
  return __real_epoll_wait(epfd, ev, max, timeout);
}

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
  int f = decide(S_PTHREAD_CREATE, -1, 0);
  if (f)
    return f;
  return __real_pthread_create(t, a, fn, arg);
}

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size) {
  int f = decide(S_CALLOC, -1, 0);
  if (f) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_calloc(n, size);
}

void *__real_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size) {
  int f = decide(S_REALLOC, -1, 0);
  if (f) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_realloc(p, size);
}

int __real_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                      struct io_uring_params *p);
int __wrap_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                      struct io_uring_params *p);
int __wrap_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                      struct io_uring_params *p) {
  int f = decide(S_URING_INIT, -1, 0);
  if (f)
    return -f;
  return __real_io_uring_queue_init_params(entries, ring, p);
}

int __real_io_uring_enter2(unsigned fd, unsigned submit, unsigned min, unsigned flags,
                           sigset_t *sig, size_t sz);
int __wrap_io_uring_enter2(unsigned fd, unsigned submit, unsigned min, unsigned flags,
                           sigset_t *sig, size_t sz);
int __wrap_io_uring_enter2(unsigned fd, unsigned submit, unsigned min, unsigned flags,
                           sigset_t *sig, size_t sz) {
  int f = decide(S_URING_ENTER2, -1, 0);
  if (f)
    return -f;
  return __real_io_uring_enter2(fd, submit, min, flags, sig, sz);
}

int __real_io_uring_register(unsigned fd, unsigned opcode, const void *arg, unsigned n);
int __wrap_io_uring_register(unsigned fd, unsigned opcode, const void *arg, unsigned n);
int __wrap_io_uring_register(unsigned fd, unsigned opcode, const void *arg, unsigned n) {
  int f = decide(S_URING_REGISTER, (int)fd, 0);
  if (f)
    return -f;
  return __real_io_uring_register(fd, opcode, arg, n);
}

int __real_io_uring_register_ring_fd(struct io_uring *ring);
int __wrap_io_uring_register_ring_fd(struct io_uring *ring);
int __wrap_io_uring_register_ring_fd(struct io_uring *ring) {
  int f = decide(S_URING_REGISTER_RING_FD, ring->ring_fd, 0);
  if (f)
    return -f;
  return __real_io_uring_register_ring_fd(ring);
}

int __real_io_uring_register_iowq_max_workers(struct io_uring *ring, unsigned *v);
int __wrap_io_uring_register_iowq_max_workers(struct io_uring *ring, unsigned *v);
int __wrap_io_uring_register_iowq_max_workers(struct io_uring *ring, unsigned *v) {
  int f = decide(S_URING_IOWQ_MAX, ring->ring_fd, 0);
  if (f)
    return -f;
  return __real_io_uring_register_iowq_max_workers(ring, v);
}

struct io_uring_probe *__real_io_uring_get_probe_ring(struct io_uring *ring);
struct io_uring_probe *__wrap_io_uring_get_probe_ring(struct io_uring *ring);
struct io_uring_probe *__wrap_io_uring_get_probe_ring(struct io_uring *ring) {
  int f = decide(S_URING_PROBE, ring->ring_fd, 0);
  if (f) {
    errno = f;
    return NULL;
  }
  return __real_io_uring_get_probe_ring(ring);
}
