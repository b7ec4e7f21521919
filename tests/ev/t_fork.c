/* Fork: ev_loop_fork in the child, fork watchers run before the next
 * iteration, timers, io and stat watchers keep working in the child, the
 * parent is not disturbed. */
#include "common.h"
#include <fcntl.h>
#include <sys/wait.h>

static struct ev_loop *L;
static int p[2];

static void fcb(EV_P_ ev_fork *w, int revents) {
  (void)loop;
  P("fork watcher %s in %s", evt_names(revents), (char *)w->data);
  ev_fork_stop(loop, w);
}
static char path[64];
static void tcb(EV_P_ ev_timer *w, int revents) {
  (void)loop;
  P("timer %s in %s", evt_names(revents), (char *)w->data);
  int fd = open(path, O_WRONLY | O_APPEND);   /* for the stat watcher */
  if (write(fd, "t", 1) != 1) abort();
  close(fd);
}
static void scb(EV_P_ ev_stat *w, int revents) {
  P("stat %s size %ld in %s", evt_names(revents), (long)w->attr.st_size, (char *)w->data);
  ev_stat_stop(loop, w);
}
static void icb(EV_P_ ev_io *w, int revents) {
  char c;
  if (read(w->fd, &c, 1) != 1) abort();
  P("io %s got %c in %s", evt_names(revents), c, (char *)w->data);
  ev_io_stop(loop, w);
}
static void acb(EV_P_ ev_async *w, int revents) {
  P("async %s in %s", evt_names(revents), (char *)w->data);
  ev_async_stop(loop, w);
}

int main(void) {
  L = evt_default();
  if (pipe(p) < 0) return 1;
  ev_fork f;
  ev_fork_init(&f, fcb); f.data = "parent";
  ev_fork_start(L, &f);
  ev_io io;
  ev_io_init(&io, icb, p[0], EV_READ); io.data = "parent";
  ev_io_start(L, &io);
  ev_async as;
  ev_async_init(&as, acb); as.data = "parent";
  ev_async_start(L, &as);
  snprintf(path, sizeof path, "/tmp/evt-fork-%d", (int)getpid());
  close(open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600));
  ev_stat st_w;
  ev_stat_init(&st_w, scb, path, 0.);
  st_w.data = "parent";
  ev_stat_start(L, &st_w);
  ev_run(L, EVRUN_NOWAIT);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    f.data = io.data = as.data = st_w.data = "child";
    ev_loop_fork(L);
    ev_timer t;
    ev_timer_init(&t, tcb, 0.2, 0.); t.data = "child";  /* after the io: no race */
    ev_timer_start(L, &t);
    ev_async_send(L, &as);
    if (write(p[1], "c", 1) != 1) abort();
    ev_run(L, 0);
    P("child done, fork watcher active %d", !!ev_is_active(&f));
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  P("child exit %d", WEXITSTATUS(st));
  ev_stat_stop(L, &st_w);
  unlink(path);
  ev_fork_stop(L, &f);
  if (write(p[1], "p", 1) != 1) abort();
  ev_async_send(L, &as);
  ev_run(L, 0);
  P("parent done");
  return 0;
}
