/* Stat watchers: change detection (size), removal (nlink 0), creation,
 * ev_stat_stat, stop, and their reference counting.  Then, with the default
 * interval (libev: 5 s of polling where inotify cannot watch): an append
 * and an unlink soon after are two callbacks well within a deadline, and so
 * is a missing file's creation (libev watches the parent directory). */
#include "common.h"
#include <fcntl.h>

static struct ev_loop *L;
static char path[64];
static int step;

static void stcb(EV_P_ ev_stat *w, int revents) {
  P("stat %s prev size %ld nlink %d, attr size %ld nlink %d", evt_names(revents),
    (long)w->prev.st_size, (int)w->prev.st_nlink, (long)w->attr.st_size, (int)w->attr.st_nlink);
  step++;
  if (step == 1) {
    unlink(path);
  } else if (step == 2) {
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (write(fd, "abcdefgh", 8) != 8) abort();
    close(fd);
  } else {
    ev_stat_stop(loop, w);
  }
}

static void grow(EV_P_ ev_timer *t, int revents) {
  (void)loop; (void)t; (void)revents;
  int fd = open(path, O_WRONLY | O_APPEND);
  if (write(fd, "xyz", 3) != 3) abort();
  close(fd);
}

/* The prompt part: every step must call back long before the default
 * interval's poll would; the deadline ends the run if one does not. */
static ev_stat q;
static ev_timer deadline, act;
static int qstep;
static char qpath[64];

static void qact(EV_P_ ev_timer *t, int revents) {
  (void)t; (void)revents;
  if (qstep == 0) {
    int fd = open(qpath, O_WRONLY | O_APPEND);
    if (write(fd, "more", 4) != 4) abort();
    close(fd);
  } else if (qstep == 1) {
    unlink(qpath);
  } else if (qstep == 3) {
    int fd = open(qpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (write(fd, "new", 3) != 3) abort();
    close(fd);
  }
  (void)loop;
}

static void qcb(EV_P_ ev_stat *w, int revents) {
  qstep++;
  P("prompt stat %d %s prev size %ld nlink %d, attr size %ld nlink %d", qstep,
    evt_names(revents), (long)w->prev.st_size, (int)w->prev.st_nlink, (long)w->attr.st_size,
    (int)w->attr.st_nlink);
  if (qstep == 2) {
    /* now watch a path that does not exist yet, and create it */
    ev_stat_stop(loop, w);
    ev_stat_set(w, qpath, 0.);
    ev_stat_start(loop, w);
    qstep = 3;
  }
  if (qstep == 4) {
    ev_stat_stop(loop, w);
    ev_timer_stop(loop, &deadline);
    return;
  }
  ev_timer_set(&act, 0.05, 0.);
  ev_timer_start(loop, &act);
}

static void qdeadline(EV_P_ ev_timer *t, int revents) {
  (void)t; (void)revents;
  P("deadline passed after %d prompt callbacks", qstep);
  ev_stat_stop(loop, &q);
  ev_timer_stop(loop, &act);
}

static void prompt(EV_P) {
  snprintf(qpath, sizeof qpath, "/tmp/evt-stat-q-%d", (int)getpid());
  int fd = open(qpath, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (write(fd, "12", 2) != 2) abort();
  close(fd);
  ev_stat_init(&q, qcb, qpath, 0.);
  ev_stat_start(loop, &q);
  ev_timer_init(&act, qact, 0.05, 0.);
  ev_timer_start(loop, &act);
  /* below the 5 s default interval, far above inotify's latency */
  ev_timer_init(&deadline, qdeadline, 3., 0.);
  ev_timer_start(loop, &deadline);
  P("prompt run returned %d", ev_run(loop, 0));
  unlink(qpath);
}

int main(void) {
  L = evt_default();
  snprintf(path, sizeof path, "/tmp/evt-stat-%d", (int)getpid());
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (write(fd, "1234", 4) != 4) return 1;
  close(fd);
  ev_stat s;
  ev_stat_init(&s, stcb, path, 0.01);
  ev_stat_start(L, &s);
  P("interval raised to the minimum %d", s.interval > 0.1);
  P("initial attr size %ld nlink %d", (long)s.attr.st_size, (int)s.attr.st_nlink);
  ev_timer t;
  ev_timer_init(&t, grow, 0.05, 0.);
  ev_timer_start(L, &t);
  P("run returned %d", ev_run(L, 0));
  ev_stat_stat(L, &s);
  P("stat_stat size %ld", (long)s.attr.st_size);
  unlink(path);
  ev_stat_stat(L, &s);
  P("stat_stat after unlink nlink %d", (int)s.attr.st_nlink);
  ev_verify(L);
  prompt(L);
  ev_verify(L);
  P("done");
  return 0;
}
