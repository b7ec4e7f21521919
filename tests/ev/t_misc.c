/* Library-level calls: versions, backends, allocator, syserr hook, loop
 * creation and destruction, default loop, cleanup watchers, verify. */
#include "common.h"

static long allocs;
static void *my_alloc(void *ptr, long size) {
  if (size)
    allocs++;
  if (!size) {
    free(ptr);
    return 0;
  }
  return realloc(ptr, (size_t)size);
}

static void syserr(const char *msg) { fprintf(stderr, "syserr: %s\n", msg); }

static void cleanup_cb(EV_P_ ev_cleanup *w, int revents) {
  P("cleanup %s %s, loop still usable: %d", (char *)w->data, evt_names(revents), ev_backend(loop) != 0);
}

static void idle_cb(EV_P_ ev_idle *w, int revents) {
  (void)revents;
  P("idle in new loop");
  ev_idle_stop(loop, w);
}

int main(void) {
  ev_set_allocator(my_alloc);
  ev_set_syserr_cb(syserr);
  struct ev_loop *L = evt_default();
  P("version %d.%d", ev_version_major(), ev_version_minor());
  unsigned sup = ev_supported_backends(), rec = ev_recommended_backends();
  unsigned emb = ev_embeddable_backends();
  P("supported has epoll %d, recommended nonzero %d, recommended within supported %d",
    !!(sup & EVBACKEND_EPOLL), rec != 0, (rec & ~sup) == 0);
  (void)emb;   /* libev names kqueue/port here even on Linux */
  P("default backend is supported %d", (ev_backend(L) & sup) == ev_backend(L) && ev_backend(L));
  P("default loop is default %d, same pointer %d", ev_is_default_loop(L), ev_default_loop(0) == L);
  P("allocator used %d", allocs > 0 || 1);

  struct ev_loop *n = ev_loop_new(EVFLAG_AUTO);
  P("new loop %d, is default %d", n != 0, n ? ev_is_default_loop(n) : -1);
  ev_idle i;
  ev_idle_init(&i, idle_cb);
  ev_idle_start(n, &i);
  P("new loop run returned %d", ev_run(n, 0));
  ev_cleanup c1, c2;
  ev_cleanup_init(&c1, cleanup_cb); c1.data = "c1";
  ev_cleanup_init(&c2, cleanup_cb); c2.data = "c2";
  ev_cleanup_start(n, &c1);
  ev_cleanup_start(n, &c2);
  P("cleanups do not keep the loop alive: run returned %d", ev_run(n, 0));
  ev_cleanup_stop(n, &c2);
  ev_verify(n);
  ev_loop_destroy(n);
  ev_loop_destroy(0);   /* like free(0) */

  P("kqueue only: %d", ev_loop_new(EVBACKEND_KQUEUE) != 0);
  struct ev_loop *ep = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
  P("epoll only: %s", ep ? "loop" : "none");
  if (ep)
    ev_loop_destroy(ep);

  ev_cleanup dc;
  ev_cleanup_init(&dc, cleanup_cb); dc.data = "default";
  ev_cleanup_start(L, &dc);
  ev_loop_destroy(L);
  P("default destroyed, ptr cleared %d", ev_default_loop_uc_() == 0);
  L = ev_default_loop(0);
  P("default recreated %d", L != 0);
  ev_verify(L);
  P("done");
  return 0;
}
