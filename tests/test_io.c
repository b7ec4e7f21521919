/* Readiness watchers (tl_io): level-triggered, as the header promises. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"

struct iocount {
  int calls;
  unsigned revents, all;   /* last revents, OR of all */
  int drain;               /* read what is there */
  int stop;                /* stop self in the callback */
  tl_io *stop_other;       /* stop this watcher in the callback */
  int *seq;
  int order;
};

static void io_cb(tl_loop *loop, tl_io *w, unsigned revents) {
  struct iocount *c = w->data;
  c->calls++;
  c->revents = revents;
  c->all |= revents;
  if (c->seq)
    c->order = ++*c->seq;
  if (c->drain) {
    /* One read: the fds are blocking and the tests write a byte or two. */
    char buf[256];
    ck_assert_int_gt(read(w->fd, buf, sizeof buf), 0);
  }
  if (c->stop)
    ck_assert_int_eq(tl_io_stop(loop, w), 0);
  if (c->stop_other && tl_is_active(c->stop_other))
    ck_assert_int_eq(tl_io_stop(loop, c->stop_other), 0);
}

static void mkpipe(int p[2]) {
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
}

static void mksocks(int s[2]) {
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
}

START_TEST(test_io_readable_pipe_fires_read) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  struct iocount c = {.drain = 1, .stop = 1};
  tl_io w;
  tl_io_init(&w, io_cb, p[0], TL_READ);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_is_active(&w), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_uint_eq(c.revents, TL_READ);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_empty_pipe_does_not_fire_until_written) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  struct iocount c = {.drain = 1};
  tl_io w;
  tl_io_init(&w, io_cb, p[0], TL_READ);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(c.calls, 0);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  TH_RUN_UNTIL(loop, c.calls == 1);
  /* Drained: nothing more to report. */
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_writable_pipe_fires_write) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  struct iocount c = {.stop = 1};
  tl_io w;
  tl_io_init(&w, io_cb, p[1], TL_WRITE);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_uint_eq(c.revents, TL_WRITE);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_undrained_pipe_is_reported_every_iteration) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  struct iocount c = {0};
  tl_io w;
  tl_io_init(&w, io_cb, p[0], TL_READ);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  for (int k = 1; k <= 5; k++) {
    ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
    ck_assert_int_eq(c.calls, k);
    ck_assert_uint_eq(c.revents, TL_READ);
  }
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_revents_are_masked_to_the_interest) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  ck_assert_int_eq(write(s[1], "x", 1), 1);   /* s[0] readable and writable */
  struct iocount cr = {0}, cw = {0}, cb = {0};
  tl_io wr, ww, wb;
  tl_io_init(&wr, io_cb, s[0], TL_READ);
  tl_io_init(&ww, io_cb, s[0], TL_WRITE);
  tl_io_init(&wb, io_cb, s[0], TL_READ | TL_WRITE);
  wr.data = &cr;
  ww.data = &cw;
  wb.data = &cb;
  ck_assert_int_eq(tl_io_start(loop, &wr), 0);
  ck_assert_int_eq(tl_io_start(loop, &ww), 0);
  ck_assert_int_eq(tl_io_start(loop, &wb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(cr.calls, 1);
  ck_assert_int_eq(cw.calls, 1);
  ck_assert_int_eq(cb.calls, 1);
  ck_assert_uint_eq(cr.all, TL_READ);
  ck_assert_uint_eq(cw.all, TL_WRITE);
  ck_assert_uint_eq(cb.all, TL_READ | TL_WRITE);
  ck_assert_int_eq(tl_io_stop(loop, &wr), 0);
  ck_assert_int_eq(tl_io_stop(loop, &ww), 0);
  ck_assert_int_eq(tl_io_stop(loop, &wb), 0);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_set_changes_events_while_active) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  struct iocount c = {0};
  tl_io w;
  tl_io_init(&w, io_cb, s[0], TL_READ);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(c.calls, 0);

  ck_assert_int_eq(tl_io_set(loop, &w, TL_WRITE), 0);
  ck_assert_uint_eq(w.events, TL_WRITE);
  ck_assert_int_eq(tl_is_active(&w), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_uint_eq(c.revents, TL_WRITE);

  /* Back to READ on an empty socket: the writability is no longer reported. */
  ck_assert_int_eq(tl_io_set(loop, &w, TL_READ), 0);
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(c.calls, 1);

  ck_assert_int_eq(write(s[1], "x", 1), 1);
  TH_RUN_UNTIL(loop, c.calls == 2);
  ck_assert_uint_eq(c.revents, TL_READ);

  /* On an inactive watcher, set only records the events. */
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  ck_assert_int_eq(tl_io_set(loop, &w, TL_READ | TL_WRITE), 0);
  ck_assert_int_eq(tl_is_active(&w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(c.calls, 2);
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(c.calls, 3);
  ck_assert_uint_eq(c.revents, TL_READ | TL_WRITE);
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_stop_inside_callback_prevents_further_calls) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  ck_assert_int_eq(write(p[1], "x", 1), 1);   /* stays readable */
  struct iocount c = {.stop = 1};
  tl_io w;
  tl_io_init(&w, io_cb, p[0], TL_READ);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 0);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_int_eq(tl_is_active(&w), 0);
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(c.calls, 1);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_stopping_a_pending_watcher_cancels_its_callback) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  struct iocount ca = {0}, cb = {0};
  tl_io a, b;
  tl_io_init(&a, io_cb, p[0], TL_READ);
  tl_io_init(&b, io_cb, p[0], TL_READ);
  a.data = &ca;
  b.data = &cb;
  ca.stop_other = &b;   /* whichever runs first stops the other */
  cb.stop_other = &a;
  ck_assert_int_eq(tl_io_start(loop, &a), 0);
  ck_assert_int_eq(tl_io_start(loop, &b), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(ca.calls + cb.calls, 1);
  ck_assert_int_eq(tl_is_active(&a) + tl_is_active(&b), 1);
  ck_assert_int_eq(tl_is_pending(&a) + tl_is_pending(&b), 0);
  tl_io *left = tl_is_active(&a) ? &a : &b;
  ck_assert_int_eq(tl_io_stop(loop, left), 0);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

#define MANY_ON_ONE 16

START_TEST(test_io_many_watchers_on_one_fd_each_get_their_events) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  struct iocount c[MANY_ON_ONE];
  tl_io w[MANY_ON_ONE];
  memset(c, 0, sizeof c);
  for (int k = 0; k < MANY_ON_ONE; k++) {
    tl_io_init(&w[k], io_cb, s[0], k % 2 ? TL_WRITE : TL_READ);
    w[k].data = &c[k];
    ck_assert_int_eq(tl_io_start(loop, &w[k]), 0);
  }
  /* Only writable: the READ half stays quiet. */
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  for (int k = 0; k < MANY_ON_ONE; k++) {
    ck_assert_int_eq(c[k].calls, k % 2 ? 1 : 0);
    if (k % 2)
      ck_assert_uint_eq(c[k].revents, TL_WRITE);
  }
  /* Stop the WRITE half; make it readable: the READ half fires once each. */
  for (int k = 1; k < MANY_ON_ONE; k += 2)
    ck_assert_int_eq(tl_io_stop(loop, &w[k]), 0);
  ck_assert_int_eq(write(s[1], "x", 1), 1);
  TH_RUN_UNTIL(loop, c[0].calls == 1);
  for (int k = 0; k < MANY_ON_ONE; k++) {
    ck_assert_int_eq(c[k].calls, 1);
    ck_assert_uint_eq(c[k].revents, k % 2 ? TL_WRITE : TL_READ);
  }
  /* Stop all but the last READ watcher: the fd still reports to it. */
  for (int k = 0; k < MANY_ON_ONE - 2; k += 2)
    ck_assert_int_eq(tl_io_stop(loop, &w[k]), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  for (int k = 0; k < MANY_ON_ONE; k++)
    ck_assert_int_eq(c[k].calls, k == MANY_ON_ONE - 2 ? 2 : 1);
  ck_assert_int_eq(tl_io_stop(loop, &w[MANY_ON_ONE - 2]), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_large_fd_number_works) {
  long lim = th_raise_nofile(5200);
  ck_assert_msg(lim > 5001, "cannot raise RLIMIT_NOFILE above 5001 (have %ld)", lim);
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  ck_assert_int_eq(dup2(p[0], 5000), 5000);
  ck_assert_int_eq(dup2(p[1], 5100), 5100);
  close(p[0]);
  close(p[1]);
  struct iocount cr = {.drain = 1}, cw = {.stop = 1};
  tl_io r, w;
  tl_io_init(&r, io_cb, 5000, TL_READ);
  tl_io_init(&w, io_cb, 5100, TL_WRITE);
  r.data = &cr;
  w.data = &cw;
  ck_assert_int_eq(tl_io_start(loop, &r), 0);
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
  ck_assert_int_eq(cw.calls, 1);
  ck_assert_int_eq(cr.calls, 0);
  ck_assert_int_eq(write(5100, "x", 1), 1);
  TH_RUN_UNTIL(loop, cr.calls == 1);
  ck_assert_uint_eq(cr.revents, TL_READ);
  ck_assert_int_eq(tl_io_stop(loop, &r), 0);
  close(5000);
  close(5100);
  th_destroy(loop);
}
END_TEST

#define THOUSANDS 2000

static int sum_calls(const struct iocount *c, int n) {
  int total = 0;
  for (int k = 0; k < n; k++)
    total += c[k].calls;
  return total;
}

START_TEST(test_io_thousands_of_watchers_each_fire_once) {
  ck_assert_int_gt(th_raise_nofile(3 * THOUSANDS + 256), 3 * THOUSANDS + 64);  /* threadpool: a worker eventfd per quiet fd */
  tl_loop *loop = th_new(_i);
  int (*p)[2] = calloc(THOUSANDS, sizeof *p);
  struct iocount *c = calloc(THOUSANDS, sizeof *c);
  tl_io *w = calloc(THOUSANDS, sizeof *w);
  ck_assert(p && c && w);
  for (int k = 0; k < THOUSANDS; k++) {
    mkpipe(p[k]);
    c[k].drain = 1;
    c[k].stop = 1;
    tl_io_init(&w[k], io_cb, p[k][0], TL_READ);
    w[k].data = &c[k];
    ck_assert_int_eq(tl_io_start(loop, &w[k]), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  for (int k = 0; k < THOUSANDS; k += 2)    /* every other pipe */
    ck_assert_int_eq(write(p[k][1], "x", 1), 1);
  TH_RUN_UNTIL(loop, sum_calls(c, THOUSANDS) == THOUSANDS / 2);
  for (int k = 0; k < THOUSANDS; k++)
    ck_assert_int_eq(c[k].calls, k % 2 ? 0 : 1);
  for (int k = 1; k < THOUSANDS; k += 2)
    ck_assert_int_eq(write(p[k][1], "x", 1), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  for (int k = 0; k < THOUSANDS; k++) {
    ck_assert_int_eq(c[k].calls, 1);
    close(p[k][0]);
    close(p[k][1]);
  }
  free(p);
  free(c);
  free(w);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_start_errors_leave_the_watcher_alone) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  struct iocount c = {0};
  tl_io w;

  tl_io_init(&w, io_cb, -1, TL_READ);
  ck_assert_int_eq(tl_io_start(loop, &w), -EBADF);
  ck_assert_int_eq(tl_is_active(&w), 0);

  int closed = th_closed_fd();
  tl_io_init(&w, io_cb, closed, TL_READ);
  ck_assert_int_eq(tl_io_start(loop, &w), -EBADF);
  ck_assert_int_eq(tl_is_active(&w), 0);
  ck_assert_int_eq(tl_io_stop(loop, &w), -EALREADY);

  tl_io_init(&w, io_cb, p[1], TL_WRITE);
  w.data = &c;
  c.stop = 1;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_io_start(loop, &w), -EBUSY);
  ck_assert_int_eq(tl_is_active(&w), 1);
  /* The refused second start did not break the first. */
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_int_eq(tl_io_stop(loop, &w), -EALREADY);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(c.calls, 1);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_regular_file_is_always_ready) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile("data", 4);
  struct iocount c = {0};
  tl_io w;
  tl_io_init(&w, io_cb, fd, TL_READ | TL_WRITE);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  for (int k = 1; k <= 3; k++) {
    ck_assert_int_eq(tl_run(loop, TL_RUN_ONCE), 1);
    ck_assert_int_eq(c.calls, k);
    ck_assert_uint_eq(c.revents, TL_READ | TL_WRITE);
  }
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  /* /dev/null too: a character device poll(2) calls always ready. */
  int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
  ck_assert_int_ge(nul, 0);
  tl_io_init(&w, io_cb, nul, TL_READ);
  w.data = &c;
  c.stop = 1;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 4);
  ck_assert_uint_eq(c.revents, TL_READ);
  close(nul);
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_hangup_is_reported_as_readable) {
  tl_loop *loop = th_new(_i);
  int p[2], s[2];
  mkpipe(p);
  mksocks(s);
  struct iocount cp = {.stop = 1}, cs = {.stop = 1};
  tl_io wp, ws;
  tl_io_init(&wp, io_cb, p[0], TL_READ);
  tl_io_init(&ws, io_cb, s[0], TL_READ);
  wp.data = &cp;
  ws.data = &cs;
  ck_assert_int_eq(tl_io_start(loop, &wp), 0);
  ck_assert_int_eq(tl_io_start(loop, &ws), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(cp.calls + cs.calls, 0);
  close(p[1]);
  close(s[1]);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(cp.calls, 1);
  ck_assert_int_eq(cs.calls, 1);
  ck_assert(cp.revents & TL_READ);
  ck_assert(cs.revents & TL_READ);
  close(p[0]);
  close(s[0]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_fd_number_reused_after_stop_and_close_works) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  struct iocount c = {0};
  tl_io w;
  tl_io_init(&w, io_cb, p[0], TL_READ);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_io_stop(loop, &w), 0);
  int old = p[0];
  close(p[0]);
  close(p[1]);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  /* The same numbers come back for a new pipe. */
  mkpipe(p);
  ck_assert_int_eq(p[0], old);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  c.drain = c.stop = 1;
  tl_io_init(&w, io_cb, p[0], TL_READ);
  w.data = &c;
  ck_assert_int_eq(tl_io_start(loop, &w), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.calls, 1);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_io_restart_after_stop_fires_again) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);
  ck_assert_int_eq(write(p[1], "x", 1), 1);
  struct iocount c = {.stop = 1};
  tl_io w;
  tl_io_init(&w, io_cb, p[0], TL_READ);
  w.data = &c;
  for (int k = 1; k <= 3; k++) {
    ck_assert_int_eq(tl_io_start(loop, &w), 0);
    ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
    ck_assert_int_eq(c.calls, k);
  }
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_io_readable_pipe_fires_read);
  TH_ADD(tc, test_io_empty_pipe_does_not_fire_until_written);
  TH_ADD(tc, test_io_writable_pipe_fires_write);
  TH_ADD(tc, test_io_undrained_pipe_is_reported_every_iteration);
  TH_ADD(tc, test_io_revents_are_masked_to_the_interest);
  TH_ADD(tc, test_io_set_changes_events_while_active);
  TH_ADD(tc, test_io_stop_inside_callback_prevents_further_calls);
  TH_ADD(tc, test_io_stopping_a_pending_watcher_cancels_its_callback);
  TH_ADD(tc, test_io_many_watchers_on_one_fd_each_get_their_events);
  TH_ADD(tc, test_io_large_fd_number_works);
  TH_ADD(tc, test_io_thousands_of_watchers_each_fire_once);
  TH_ADD(tc, test_io_start_errors_leave_the_watcher_alone);
  TH_ADD(tc, test_io_regular_file_is_always_ready);
  TH_ADD(tc, test_io_hangup_is_reported_as_readable);
  TH_ADD(tc, test_io_fd_number_reused_after_stop_and_close_works);
  TH_ADD(tc, test_io_restart_after_stop_fires_again);
}

int main(void) { return th_main("io", add); }
