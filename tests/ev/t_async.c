/* Async: sends from the loop thread coalesce; sends from another thread,
 * one at a time with a handshake, each produce one callback; priority and
 * ev_async_pending; stop. */
#include "common.h"
#include <pthread.h>
#include <semaphore.h>

static struct ev_loop *L;
static ev_async a, b;
static sem_t ack;
static int got;

static void acb(EV_P_ ev_async *w, int revents) {
  got++;
  if (w->data)
    P("async %s %s pending-flag=%d", (char *)w->data, evt_names(revents), ev_async_pending(w));
  else
    sem_post(&ack);
  if (got == 1000 + 3)
    ev_async_stop(loop, w);
}

static void *sender(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++) {
    ev_async_send(L, &b);
    sem_wait(&ack);
  }
  return 0;
}

int main(void) {
  L = evt_default();
  sem_init(&ack, 0, 0);
  ev_async_init(&a, acb); a.data = "a";
  ev_async_start(L, &a);
  P("== same thread, coalesced");
  ev_async_send(L, &a);
  ev_async_send(L, &a);
  P("async_pending %d", ev_async_pending(&a));
  ev_run(L, EVRUN_ONCE);
  P("got %d", got);
  P("== nothing sent: nowait");
  ev_run(L, EVRUN_NOWAIT);
  P("got %d", got);
  P("== two watchers, priorities");
  ev_async hi;
  ev_async_init(&hi, acb); hi.data = "hi";
  ev_set_priority(&hi, 1);
  ev_async_start(L, &hi);
  ev_async_send(L, &a);
  ev_async_send(L, &hi);
  ev_run(L, EVRUN_ONCE);
  ev_async_stop(L, &hi);
  ev_async_stop(L, &a);

  P("== other thread, 1000 handshakes");
  got = 3;
  ev_async_init(&b, acb); b.data = 0;
  ev_async_start(L, &b);
  pthread_t th;
  pthread_create(&th, 0, sender, 0);
  ev_run(L, 0);
  pthread_join(th, 0);
  P("got %d, b active %d", got - 3, !!ev_is_active(&b));
  ev_verify(L);
  P("done");
  return 0;
}
