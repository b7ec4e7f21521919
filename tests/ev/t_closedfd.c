/*
 * libtriloop-ev only (not differential): what happens to an ev_io whose fd
 * is closed behind the loop's back.  man 3 ev: EV_ERROR means "the watcher
 * has been stopped", e.g. because "a file descriptor was found to be
 * closed"; and the loop learns that an fd may name a new file only through
 * ev_io_set ("The special problem of disappearing file descriptors").
 * So, on every backend:
 *   A  close, then ev_io_set + start on the same number: one callback with
 *      EV_ERROR, the watcher stopped, ev_run returns (nothing else active);
 *   B  every watcher of that fd gets it, not just the one restarted;
 *   C  close inside the callback without telling the loop, fd readable:
 *      no abort and no spin; at most one more callback, and that one is
 *      EV_ERROR with the watcher stopped (epoll just forgets the fd, as
 *      libev on epoll does; uring and threadpool see EBADF/POLLNVAL);
 *   D  ev_io_start on a number that is not open: EV_ERROR, stopped;
 *   E  the number reused by another file, announced with ev_io_set: events
 *      of the new file arrive, none of the old one (even when the old file
 *      is still open under another number and readable);
 *   F  the number reused across kinds: a regular file (always ready, as
 *      poll(2) says) replaced by an idle socket must go quiet, and an idle
 *      socket replaced by a regular file must report READ.
 * Exit 0 when all hold; prints "not ok" lines otherwise.
 */
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failed;
#define CHECK(c, ...)                                                         \
  do {                                                                        \
    if (!(c)) {                                                               \
      printf("not ok: " __VA_ARGS__);                                         \
      printf("  (%s, line %d)\n", #c, __LINE__);                              \
      failed = 1;                                                             \
    }                                                                         \
  } while (0)

struct rec {
  ev_io io;
  int calls, last, errors, reads;
  int close_in_cb;       /* C: close the fd in the first callback */
  int active_in_cb;      /* ev_is_active inside the EV_ERROR callback */
};

static void io_cb(EV_P_ ev_io *w, int revents) {
  (void)loop;
  struct rec *r = (struct rec *)w;
  r->calls++;
  r->last = revents;
  if (revents & EV_ERROR) {
    r->errors++;
    r->active_in_cb = ev_is_active(w);
  } else if (revents & EV_READ) {
    r->reads++;
  }
  if (r->close_in_cb == 1) {
    r->close_in_cb = 2;
    close(w->fd);      /* behind the loop's back: no ev_io_stop */
  }
}

static void stop_cb(EV_P_ ev_timer *t, int revents) {
  (void)revents;
  ev_timer_stop(loop, t);
  ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until nothing is active, or at most secs. */
static void run_for(struct ev_loop *loop, double secs) {
  ev_timer t;
  ev_timer_init(&t, stop_cb, secs, 0.);
  ev_timer_start(loop, &t);
  ev_run(loop, 0);
  ev_timer_stop(loop, &t);
}

static void pair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
    perror("socketpair");
    exit(99);
  }
}

static void case_a(struct ev_loop *loop) {
  int sv[2];
  pair(sv);
  struct rec r = { 0 };
  ev_io_init(&r.io, io_cb, sv[0], EV_READ);
  ev_io_start(loop, &r.io);
  ev_run(loop, EVRUN_NOWAIT);              /* registered with the backend */
  close(sv[0]);
  ev_io_stop(loop, &r.io);
  ev_io_set(&r.io, sv[0], EV_READ);        /* "may be a new file" */
  ev_io_start(loop, &r.io);
  ev_run(loop, 0);                         /* returns: the watcher is stopped */
  CHECK(r.calls == 1, "A: %d callbacks, want 1\n", r.calls);
  CHECK(r.errors == 1 && (r.last & EV_ERROR), "A: revents 0x%x, want EV_ERROR\n", r.last);
  CHECK(!r.active_in_cb && !ev_is_active(&r.io), "A: watcher still active\n");
  CHECK(!ev_is_pending(&r.io), "A: watcher still pending\n");
  close(sv[1]);
}

static void case_b(struct ev_loop *loop) {
  int sv[2];
  pair(sv);
  struct rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
  ev_io_init(&r1.io, io_cb, sv[0], EV_READ);
  ev_io_init(&r2.io, io_cb, sv[0], EV_WRITE);
  ev_io_init(&r3.io, io_cb, sv[0], EV_READ);
  ev_io_start(loop, &r1.io);
  ev_io_start(loop, &r2.io);
  ev_io_start(loop, &r3.io);
  ev_run(loop, EVRUN_NOWAIT);
  r1.calls = r2.calls = r3.calls = 0;      /* r2 saw WRITE readiness */
  r2.reads = r2.errors = 0;
  close(sv[0]);
  ev_io_stop(loop, &r1.io);
  ev_io_set(&r1.io, sv[0], EV_READ);
  ev_io_start(loop, &r1.io);
  run_for(loop, 2.);
  CHECK(r1.errors == 1 && r2.errors == 1 && r3.errors == 1,
        "B: EV_ERROR counts %d %d %d, want 1 1 1\n", r1.errors, r2.errors, r3.errors);
  CHECK(!ev_is_active(&r1.io) && !ev_is_active(&r2.io) && !ev_is_active(&r3.io),
        "B: a watcher is still active\n");
  close(sv[1]);
}

static void case_c(struct ev_loop *loop) {
  int sv[2];
  pair(sv);
  if (write(sv[1], "x", 1) != 1)
    exit(99);
  struct rec r = { .close_in_cb = 1 };
  ev_io_init(&r.io, io_cb, sv[0], EV_READ);
  ev_io_start(loop, &r.io);
  unsigned it0 = ev_iteration(loop);
  run_for(loop, 0.3);
  unsigned iters = ev_iteration(loop) - it0;
  CHECK(r.calls >= 1 && r.calls <= 2, "C: %d callbacks, want 1 or 2\n", r.calls);
  if (r.calls == 2) {
    CHECK(r.last & EV_ERROR, "C: second callback 0x%x without EV_ERROR\n", r.last);
    CHECK(!ev_is_active(&r.io), "C: EV_ERROR but watcher active\n");
  }
  /* a loop spinning on the dead fd would iterate thousands of times */
  CHECK(iters < 1000, "C: %u iterations in 0.3 s: spinning\n", iters);
  printf("C: %d callback(s)%s, %u iterations\n", r.calls,
         r.calls == 2 ? " (second EV_ERROR)" : " (fd forgotten)", iters);
  if (ev_is_active(&r.io))
    ev_io_stop(loop, &r.io);
  close(sv[1]);
}

static void case_d(struct ev_loop *loop) {
  int fd = dup(0 <= fcntl(0, F_GETFD) ? 0 : 1);
  if (fd < 0)
    fd = 100;
  close(fd);                               /* a number that is not open */
  struct rec r = { 0 };
  ev_io_init(&r.io, io_cb, fd, EV_READ);
  ev_io_start(loop, &r.io);
  ev_run(loop, 0);
  CHECK(r.calls == 1 && r.errors == 1, "D: %d callbacks, %d errors, want 1 1\n", r.calls, r.errors);
  CHECK(!ev_is_active(&r.io), "D: watcher still active\n");
}

/* keep_old: the old file stays open under another number, and readable */
static void case_e(struct ev_loop *loop, int keep_old) {
  int old[2], nw[2];
  pair(old);
  pair(nw);
  int n = old[0];
  struct rec r = { 0 };
  ev_io_init(&r.io, io_cb, n, EV_READ);
  ev_io_start(loop, &r.io);
  ev_run(loop, EVRUN_NOWAIT);
  int keep = keep_old ? dup(n) : -1;
  if (dup2(nw[0], n) < 0)                  /* n now names the new file */
    exit(99);
  close(nw[0]);
  if (keep_old && write(old[1], "o", 1) != 1)
    exit(99);
  ev_io_stop(loop, &r.io);
  ev_io_set(&r.io, n, EV_READ);
  ev_io_start(loop, &r.io);
  run_for(loop, 0.2);
  CHECK(r.calls == 0, "E%d: %d callbacks before the new file had data (revents 0x%x)\n",
        keep_old, r.calls, r.last);
  if (write(nw[1], "n", 1) != 1)
    exit(99);
  ev_run(loop, EVRUN_ONCE);
  CHECK(r.reads == 1 && r.errors == 0, "E%d: %d reads %d errors, want 1 0\n", keep_old, r.reads, r.errors);
  CHECK(ev_is_active(&r.io), "E%d: watcher stopped\n", keep_old);
  ev_io_stop(loop, &r.io);
  close(n);
  close(nw[1]);
  close(old[1]);
  if (keep >= 0)
    close(keep);
}

static int regular_file(void) {
  char path[] = "/tmp/t_closedfd.XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    perror("mkstemp");
    exit(99);
  }
  unlink(path);
  return fd;
}

static void once_cb(EV_P_ ev_io *w, int revents) {
  io_cb(loop, w, revents);
  ev_break(loop, EVBREAK_ONE);
}

static void case_f(struct ev_loop *loop) {
  /* file -> socket */
  int sv[2];
  pair(sv);
  int n = regular_file();
  struct rec r = { 0 };
  ev_io_init(&r.io, once_cb, n, EV_READ);
  ev_io_start(loop, &r.io);
  ev_run(loop, 0);                         /* the file is ready at once */
  CHECK(r.reads == 1, "F1: %d reads from a regular file, want 1\n", r.reads);
  if (dup2(sv[0], n) < 0)
    exit(99);
  close(sv[0]);
  ev_io_stop(loop, &r.io);
  ev_io_set(&r.io, n, EV_READ);
  ev_io_start(loop, &r.io);
  r.calls = r.reads = 0;
  ev_set_cb(&r.io, io_cb);
  run_for(loop, 0.2);
  CHECK(r.calls == 0, "F1: %d callbacks (0x%x) from an idle socket that replaced a file\n",
        r.calls, r.last);
  ev_io_stop(loop, &r.io);
  close(n);
  close(sv[1]);

  /* socket -> file */
  pair(sv);
  n = sv[0];
  struct rec q = { 0 };
  ev_io_init(&q.io, once_cb, n, EV_READ);
  ev_io_start(loop, &q.io);
  ev_run(loop, EVRUN_NOWAIT);
  int f = regular_file();
  if (dup2(f, n) < 0)
    exit(99);
  close(f);
  ev_io_stop(loop, &q.io);
  ev_io_set(&q.io, n, EV_READ);
  ev_io_start(loop, &q.io);
  run_for(loop, 2.);                       /* once_cb breaks at the first READ */
  CHECK(q.reads == 1 && q.errors == 0, "F2: %d reads %d errors from a file that replaced a socket, want 1 0\n",
        q.reads, q.errors);
  ev_io_stop(loop, &q.io);
  close(n);
  close(sv[1]);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct ev_loop *loop = ev_default_loop(0);
  if (!loop) {
    fprintf(stderr, "SKIP: no default loop (backend unavailable)\n");
    return 77;
  }
  case_a(loop);
  case_b(loop);
  case_c(loop);
  case_d(loop);
  case_e(loop, 0);
  case_e(loop, 1);
  case_f(loop);
  printf("%s (backend 0x%x)\n", failed ? "FAIL" : "PASS", ev_backend(loop));
  return failed;
}
