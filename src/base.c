/*
 * Backend selection and the per-loop wake channel shared by both front ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "pool.h"

static const struct tl__backend *const backends[TL_BACKEND_COUNT] = {
  [TL_BACKEND_URING] = &tl__backend_uring,
  [TL_BACKEND_EPOLL] = &tl__backend_epoll,
  [TL_BACKEND_THREADPOOL] = &tl__backend_threadpool,
};

static const char *const names[TL_BACKEND_COUNT] = {
  [TL_BACKEND_AUTO] = "auto",
  [TL_BACKEND_URING] = "uring",
  [TL_BACKEND_EPOLL] = "epoll",
  [TL_BACKEND_THREADPOOL] = "threadpool",
};

const char *tl_backend_names(void) { return "uring|epoll|threadpool|auto"; }

const char *tl_backend_id_name(int id) {
  return id >= 0 && id < TL_BACKEND_COUNT ? names[id] : NULL;
}

int tl_backend_from_name(const char *name) {
  if (!name)
    return -EINVAL;
  for (int i = 0; i < TL_BACKEND_COUNT; i++)
    if (!strcmp(name, names[i]))
      return i;
  return -EINVAL;
}

/* libev ignores LIBEV_FLAGS in setuid programs; so do we, for the same
 * reason (libuv's CVE-2024-22017 was io_uring chosen in a setuid process). */
const char *tl__getenv(const char *name) {
  if (getauxval(AT_SECURE))
    return NULL;
  return getenv(name);
}

const char *tl__base_getenv(const struct tl__base *b, const char *name) {
  return b->flags & TL_FLAG_NOENV ? NULL : tl__getenv(name);
}

int tl__env_uint(const char *name, unsigned long lo, unsigned long hi, unsigned long *out,
                 char *why, size_t whylen) {
  const char *s = tl__getenv(name);
  if (!s || !*s)
    return 0;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  /* strtoul takes "-1", " 7" and "+7"; a number here is digits only. */
  if (s[0] < '0' || s[0] > '9' || *end || errno || v < lo || v > hi) {
    if (why && whylen)
      snprintf(why, whylen, "%s=%.24s is not a number in %lu..%lu", name, s, lo, hi);
    return -EINVAL;
  }
  *out = v;
  return 0;
}

/* The ranges are those of the readers (src/pool.c, backends/uring.c): a value
 * they would have clamped or ignored is an error here, never a surprise. */
int tl__env_check(char *why, size_t whylen) {
  static const struct { const char *name; unsigned long lo, hi; } vars[] = {
    { "TRILOOP_THREADS", 1, 65536 },
    { "TRILOOP_THREADS_MAX", 1, 65536 },
    { "TRILOOP_THREADS_EAGER", 1, 65536 },
    { "TRILOOP_THREADS_KEEPALIVE_MS", 1, 86400000 },
    { "TRILOOP_URING_ENTRIES", 1, 32768 },
    { "TRILOOP_URING_IOWQ_MAX", 0, 1 << 20 },
    { "TRILOOP_FILE_NOWAIT", 0, 1 },
    { "TRILOOP_FILE_NOWAIT_BUDGET", 1, 1 << 20 },
  };
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    unsigned long v;
    int r = tl__env_uint(vars[i].name, vars[i].lo, vars[i].hi, &v, why, whylen);
    if (r < 0)
      return r;
  }
  return 0;
}

int tl_env_check(char *why, size_t whylen) {
  if (why && whylen)
    why[0] = 0;
  return tl__env_check(why, whylen);
}

double tl__time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int tl__fd_is_file(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
}

int tl__set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0)
    return -errno;
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  return 0;
}

/* Sets up one backend on b; the wakefd must exist already. */
static int backend_setup(struct tl__base *b, int id) {
  b->be = backends[id];
  b->why[0] = 0;
  int r = b->be->init(b);
  if (r < 0) {
    if (!b->why[0])
      snprintf(b->why, sizeof b->why, "%s: %s", names[id], strerror(-r));
    b->be = NULL;
    return r;
  }
  r = b->be->modify(b, b->wakefd, 0, TL_READ);
  if (r < 0) {
    snprintf(b->why, sizeof b->why, "%s: cannot watch the wake eventfd: %s",
             names[id], strerror(-r));
    b->be->destroy(b);
    b->be = NULL;
  }
  return r;
}

/* auto: uring when a ring really comes up here, epoll otherwise; the reason
 * for falling back stays in b->why for triloop-info. */
static int setup_auto(struct tl__base *b) {
  char reason[sizeof b->why];
  if (backend_setup(b, TL_BACKEND_URING) == 0) {
    snprintf(b->why, sizeof b->why, "auto chose uring: io_uring works here");
    return 0;
  }
  snprintf(reason, sizeof reason, "%s", b->why);
  int r = backend_setup(b, TL_BACKEND_EPOLL);
  if (r == 0)
    snprintf(b->why, sizeof b->why, "auto chose epoll: %.140s", reason);
  return r;
}

int tl__base_init(struct tl__base *b, unsigned flags) {
  unsigned id = flags & TL_FLAG_BACKEND_MASK;
  if (id >= TL_BACKEND_COUNT ||
      (flags & ~(TL_FLAG_BACKEND_MASK | TL_FLAG_NOENV | TL_FLAG_FILE_NOWAIT))) {
    snprintf(b->why, sizeof b->why, "bad loop flags 0x%x", flags);
    return -EINVAL;
  }
  b->flags = flags;
  if (!(flags & TL_FLAG_NOENV)) {
    int r = tl__env_check(b->why, sizeof b->why);
    if (r < 0)
      return r;
    unsigned long v = 0;
    tl__env_uint("TRILOOP_FILE_NOWAIT", 0, 1, &v, NULL, 0);
    if (v)
      flags |= TL_FLAG_FILE_NOWAIT;
    b->flags = flags;
  }
  b->nowait_budget = 4;   /* measured: see TL_FLAG_FILE_NOWAIT in triloop.h */
  if (flags & TL_FLAG_FILE_NOWAIT) {
    unsigned long v = b->nowait_budget;
    if (!(flags & TL_FLAG_NOENV))
      tl__env_uint("TRILOOP_FILE_NOWAIT_BUDGET", 1, 1 << 20, &v, NULL, 0);
    b->nowait_budget = (unsigned)v;
  }
  b->nowait_left = b->nowait_budget;   /* ops submitted before the first poll */
  b->nowait_fd = NULL;
  b->nnowait_fd = 0;
  if (id == TL_BACKEND_AUTO && !(flags & TL_FLAG_NOENV)) {
    const char *env = tl__getenv("TRILOOP_BACKEND");
    if (env && *env) {
      int e = tl_backend_from_name(env);
      if (e < 0) {
        snprintf(b->why, sizeof b->why,
                 "TRILOOP_BACKEND=%.40s is not a backend; valid: %s", env,
                 tl_backend_names());
        return -EINVAL;
      }
      id = (unsigned)e;
    }
  }

  b->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (b->wakefd < 0) {
    int r = -errno;
    snprintf(b->why, sizeof b->why, "eventfd: %s", strerror(errno));
    return r;
  }
  atomic_init(&b->wake_pending, 0);
  atomic_init(&b->async_pending, 0);
  atomic_init(&b->nposted, 0);
  pthread_mutex_init(&b->post_lock, NULL);
  b->post_head = b->post_tail = NULL;
  memset(&b->fixed, 0, sizeof b->fixed);
  b->op_limit = -1;

  int r = id == TL_BACKEND_AUTO ? setup_auto(b) : backend_setup(b, (int)id);
  if (r < 0) {
    pthread_mutex_destroy(&b->post_lock);
    close(b->wakefd);
    b->wakefd = -1;
  }
  return r;
}

void tl__base_destroy(struct tl__base *b) {
  if (b->be) {
    b->be->destroy(b);
    b->be = NULL;
  }
  tl__fixed_free(b);
  free(b->nowait_fd);
  b->nowait_fd = NULL;
  b->nnowait_fd = 0;
  /* The last poster may still be inside its critical section. */
  pthread_mutex_lock(&b->post_lock);
  pthread_mutex_unlock(&b->post_lock);
  if (b->wakefd >= 0)
    close(b->wakefd);
  b->wakefd = -1;
  pthread_mutex_destroy(&b->post_lock);
}

int tl__base_fork(struct tl__base *b) {
  /* The eventfd is shared with the parent after fork: a wake in one would
   * wake the other.  Take a fresh one before the backend re-registers fds. */
  int nfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (nfd < 0)
    return -errno;
  if (dup3(nfd, b->wakefd, O_CLOEXEC) < 0) {
    int r = -errno;
    close(nfd);
    return r;
  }
  close(nfd);
  atomic_store(&b->wake_pending, 0);
  pthread_mutex_init(&b->post_lock, NULL);
  b->post_head = b->post_tail = NULL;   /* the parent's workers are gone */
  atomic_store(&b->nposted, 0);
  return b->be->fork ? b->be->fork(b) : 0;
}

void tl__base_wake(struct tl__base *b) {
  atomic_store_explicit(&b->async_pending, 1, memory_order_release);
  if (atomic_exchange(&b->wake_pending, 1) == 0) {
    uint64_t one = 1;
    ssize_t n = write(b->wakefd, &one, sizeof one);
    (void)n;   /* EAGAIN means the counter is already non-zero: awake */
  }
}

void tl__base_post(struct tl__base *b, struct tl__job *job) {
  job->next = NULL;
  pthread_mutex_lock(&b->post_lock);
  int was_empty = b->post_head == NULL;
  if (b->post_tail)
    b->post_tail->next = job;
  else
    b->post_head = job;
  b->post_tail = job;
  atomic_fetch_add(&b->nposted, 1);   /* seq_cst: read after the flag in drain */
  /* One eventfd write per batch: the loop drains the whole list when woken.
   * Written under the lock: once we unlock, the loop may drain this job,
   * finish and free b. */
  if (was_empty && atomic_exchange(&b->wake_pending, 1) == 0) {
    uint64_t one = 1;
    ssize_t n = write(b->wakefd, &one, sizeof one);
    (void)n;
  }
  pthread_mutex_unlock(&b->post_lock);
}

void tl__base_drain(struct tl__base *b) {
  uint64_t v;
  /* Consume the eventfd first, then clear the flag, then look at the list.
   * A poster that still found the flag set did not write, but its job is
   * already listed and is seen below; one that comes after the clear
   * writes, and wakes the next wait.  (The other order lost wake-ups: a
   * post between the clear and the read wrote, the read ate that write, and
   * the flag stayed set with nothing in the eventfd, so every later post
   * and async send skipped its write.  Found as a rare hang of
   * tests/test_process's signal storm.) */
  if (read(b->wakefd, &v, sizeof v) >= 0)
    b->syscalls++;
  atomic_store(&b->wake_pending, 0);
  /* Most wakes are async sends or signals with nothing posted: no lock. */
  struct tl__job *j = NULL;
  if (atomic_load(&b->nposted)) {
    pthread_mutex_lock(&b->post_lock);
    j = b->post_head;
    b->post_head = b->post_tail = NULL;
    atomic_store_explicit(&b->nposted, 0, memory_order_relaxed);
    pthread_mutex_unlock(&b->post_lock);
  }
  while (j) {
    struct tl__job *next = j->next;
    j->done(j);
    j = next;
  }
  if (atomic_exchange(&b->async_pending, 0) && b->on_wake)
    b->on_wake(b);
}

void tl__base_fd_event(struct tl__base *b, int fd, unsigned revents) {
  if (fd == b->wakefd)
    tl__base_drain(b);
  else
    b->on_fd(b, fd, revents);
}

int tl_backend_probe(int id, char *why, size_t whylen) {
  if (id <= TL_BACKEND_AUTO || id >= TL_BACKEND_COUNT) {
    if (why && whylen)
      snprintf(why, whylen, "no backend with id %d; valid: %s", id, tl_backend_names());
    return -EINVAL;
  }
  struct tl__base b;
  memset(&b, 0, sizeof b);
  b.on_fd = NULL;
  /* An explicit id overrides TRILOOP_BACKEND; TRILOOP_URING_* still count,
   * so the probe answers for the loops this environment would create. */
  int r = tl__base_init(&b, (unsigned)id);
  if (why && whylen)
    snprintf(why, whylen, "%s", r == 0 ? (b.be->describe ? b.be->describe(&b) : "works") : b.why);
  if (r == 0)
    tl__base_destroy(&b);
  return r;
}

int tl_backend_auto(char *why, size_t whylen) {
  struct tl__base b;
  memset(&b, 0, sizeof b);
  int r = tl__base_init(&b, TL_BACKEND_AUTO | TL_FLAG_NOENV);
  if (why && whylen)
    snprintf(why, whylen, "%s", b.why);
  if (r < 0)
    return r;
  r = b.be->id;
  tl__base_destroy(&b);
  return r;
}

/* The per-fd answer is kept until the fd is closed through the loop
 * (tl__base_nowait_forget): one fstat and one fcntl per fd, not per op. */
enum { NW_UNKNOWN = 0, NW_YES = 1, NW_NO = 2 };

int tl__base_nowait_fd(struct tl__base *b, int fd) {
  if (fd < 0)
    return 0;
  if ((unsigned)fd >= b->nnowait_fd) {
    unsigned n = b->nnowait_fd ? b->nnowait_fd : 64;
    while (n <= (unsigned)fd)
      n *= 2;
    unsigned char *p = realloc(b->nowait_fd, n);
    if (!p)
      return 0;
    memset(p + b->nnowait_fd, 0, n - b->nnowait_fd);
    b->nowait_fd = p;
    b->nnowait_fd = n;
  }
  unsigned char *c = &b->nowait_fd[fd];
  if (*c == NW_UNKNOWN) {
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    /* Regular files only: O_DIRECT would wait for the device on the loop
     * thread (or fail), and a block device's page cache is rarely warm. */
    *c = fl >= 0 && !(fl & O_DIRECT) && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? NW_YES
                                                                                   : NW_NO;
  }
  return *c == NW_YES;
}

void tl__base_nowait_forget(struct tl__base *b, int fd) {
  if (fd >= 0 && (unsigned)fd < b->nnowait_fd)
    b->nowait_fd[fd] = NW_UNKNOWN;
}

int tl__base_try_nowait(struct tl__base *b, tl_op *op) {
  if (!b->nowait_left || !tl__base_nowait_fd(b, op->fd))
    return 0;
  b->syscalls++;
  int64_t r = tl__op_run_nowait(op);
  if (r == -EAGAIN) {
    tl__pool_count_nowait(0);
    return 0;
  }
  if (r == -EOPNOTSUPP || r == -EINVAL)
    return 0;   /* an old kernel without RWF_NOWAIT for this file: the pool */
  b->nowait_left--;
  tl__pool_count_nowait(1);
  tl__base_op_done(b, op, r);
  return 1;
}
