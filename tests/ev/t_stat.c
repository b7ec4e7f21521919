/* Stat watchers: change detection (size), removal (nlink 0), creation,
 * ev_stat_stat, stop, and their reference counting. */
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
  P("done");
  return 0;
}
