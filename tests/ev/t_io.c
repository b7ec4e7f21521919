/* io watchers: readiness, several watchers on one fd, modify via stop/set/
 * start, closed fds (EV_ERROR), fd reuse, ev_feed_fd_event, ev_once. */
#include "common.h"
#include <fcntl.h>
#include <sys/socket.h>

static struct ev_loop *L;
static int sv[2];

static void cb(EV_P_ ev_io *w, int revents) {
  P("io %s %s", (char *)w->data, evt_names(revents));
  if (!(revents & EV_ERROR))
    ev_io_stop(loop, w);
}

static int echoes;
static void echo_cb(EV_P_ ev_io *w, int revents) {
  char buf[64];
  (void)revents;
  ssize_t n = read(w->fd, buf, sizeof buf);
  if (n <= 0) {
    P("echo eof");
    ev_io_stop(loop, w);
    return;
  }
  echoes++;
  if (echoes == 100)
    ev_io_stop(loop, w);
}

static void once_cb(int revents, void *arg) {
  P("once %s %s", (char *)arg, evt_names(revents));
}

int main(void) {
  L = evt_default();
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return 1;

  P("== readiness");
  ev_io r, w1, w2, rw;
  ev_io_init(&r, cb, sv[0], EV_READ); r.data = "r";
  ev_io_init(&w1, cb, sv[0], EV_WRITE); w1.data = "w1";
  ev_io_init(&w2, cb, sv[0], EV_WRITE); w2.data = "w2";
  ev_io_init(&rw, cb, sv[0], EV_READ | EV_WRITE); rw.data = "rw";
  ev_io_start(L, &r); ev_io_start(L, &w1); ev_io_start(L, &w2); ev_io_start(L, &rw);
  ev_run(L, EVRUN_ONCE);   /* writable only */
  P("r active=%d rw active=%d", !!ev_is_active(&r), !!ev_is_active(&rw));
  if (write(sv[1], "x", 1) != 1) return 1;
  ev_run(L, 0);
  char c;
  if (read(sv[0], &c, 1) != 1) return 1;

  P("== modify events with stop/set/start");
  ev_io m;
  ev_io_init(&m, cb, sv[0], EV_READ); m.data = "m";
  ev_io_start(L, &m);
  ev_run(L, EVRUN_NOWAIT);
  P("m still active (nothing to read) %d", !!ev_is_active(&m));
  ev_io_stop(L, &m);
  ev_io_set(&m, sv[0], EV_WRITE);
  ev_io_start(L, &m);
  ev_run(L, EVRUN_ONCE);

  P("== many messages");
  ev_io e;
  ev_io_init(&e, echo_cb, sv[0], EV_READ);
  ev_io_start(L, &e);
  for (int i = 0; i < 100; i++) {
    if (write(sv[1], "y", 1) != 1) return 1;
    ev_run(L, EVRUN_ONCE);
  }
  P("echoes %d active %d", echoes, !!ev_is_active(&e));

  /* An fd closed before ev_io_start is not tested here: Debian's libev
   * asserts on it (EBADF from epoll_ctl), which the documentation leaves
   * undefined; libtriloop-ev stops the watcher and reports EV_ERROR. */

  P("== fd reuse after close");
  int q[2];
  if (pipe(q) < 0) return 1;
  ev_io reuse;
  ev_io_init(&reuse, cb, q[0], EV_READ); reuse.data = "reuse-old";
  ev_io_start(L, &reuse);
  ev_run(L, EVRUN_NOWAIT);
  ev_io_stop(L, &reuse);
  close(q[0]);
  close(q[1]);
  int q2[2];
  if (pipe(q2) < 0) return 1;
  if (q2[0] != q[0]) {   /* keep the number the same */
    dup2(q2[0], q[0]);
    close(q2[0]);
    q2[0] = q[0];
  }
  ev_io_set(&reuse, q2[0], EV_READ);
  reuse.data = "reuse-new";
  ev_io_start(L, &reuse);
  if (write(q2[1], "z", 1) != 1) return 1;
  ev_run(L, 0);

  P("== regular files are always ready");
  int f = open("/proc/self/exe", O_RDONLY);
  ev_io file;
  ev_io_init(&file, cb, f, EV_READ); file.data = "file";
  ev_io_start(L, &file);
  ev_run(L, 0);
  close(f);

  P("== feed_fd_event");
  ev_io fa, fb;
  ev_io_init(&fa, cb, sv[0], EV_READ); fa.data = "fa";
  ev_io_init(&fb, cb, sv[0], EV_WRITE); fb.data = "fb";
  ev_io_start(L, &fa); ev_io_start(L, &fb);
  ev_feed_fd_event(L, sv[0], EV_READ);
  ev_feed_fd_event(L, 100000, EV_READ);   /* unknown fd: ignored */
  P("pending fa=%d fb=%d", !!ev_is_pending(&fa), !!ev_is_pending(&fb));
  ev_invoke_pending(L);
  ev_io_stop(L, &fb);

  P("== once");
  ev_once(L, -1, 0, 0.001, once_cb, "timeout-only");
  ev_run(L, 0);
  ev_once(L, sv[0], EV_WRITE, 10., once_cb, "writable");
  ev_run(L, 0);
  ev_once(L, sv[0], EV_READ, 0.001, once_cb, "not-readable");
  ev_run(L, 0);
  ev_verify(L);
  P("done");
  return 0;
}
