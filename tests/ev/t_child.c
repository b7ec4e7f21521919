/* Child watchers (default loop): a watcher for one pid, one for any pid,
 * exit statuses, stop inside the callback. */
#include "common.h"
#include <sys/wait.h>

static struct ev_loop *L;

static void ccb(EV_P_ ev_child *w, int revents) {
  P("child %s %s same pid %d exit %d pri %d", (char *)w->data, evt_names(revents),
    w->rpid == *(int *)ev_userdata(loop), WEXITSTATUS(w->rstatus), ev_priority(w));
  ev_child_stop(loop, w);
}

static int spawn(int code) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0)
    _exit(code);
  return pid;
}

int main(void) {
  L = evt_default();
  int pid;
  ev_set_userdata(L, &pid);
  for (int i = 0; i < 3; i++) {
    ev_child c, any;
    pid = spawn(10 + i);
    ev_child_init(&c, ccb, pid, 0); c.data = "pid";
    ev_child_init(&any, ccb, 0, 0); any.data = "any";
    /* one watcher per child: with both, their order would depend on
     * whether pid hashes to chain 0 */
    ev_child_start(L, i == 1 ? &any : &c);
    P("run returned %d", ev_run(L, 0));
  }
  P("== traced flag");
  ev_child t;
  pid = spawn(7);
  ev_child_init(&t, ccb, pid, 1); t.data = "trace";
  ev_child_start(L, &t);
  ev_run(L, 0);
  ev_verify(L);
  P("done");
  return 0;
}
