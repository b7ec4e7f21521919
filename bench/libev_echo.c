/*
 * libev_echo: the echo protocol served by real libev, the reference a user
 * would pick instead of triloop.  Readiness style, as libev programs are
 * written: an ev_io read watcher per connection; on readable, read() and
 * write() the bytes back; a short write parks the connection on a write
 * watcher until the rest is out.
 *
 *   --backend epoll|iouring   EVBACKEND_EPOLL or EVBACKEND_IOURING (required)
 *
 * On SIGTERM/SIGINT it stops and prints (stderr, or --stats FILE):
 *   impl=libev-<backend> bytes=.. iterations=.. iterations_per_op=..
 * (libev keeps no syscall counter; an op is --msg bytes echoed).
 */
#include "sock_common.h"

#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>

static const char *prog = "libev_echo";
static size_t bufsize = 65536;
static uint64_t bytes_echoed;

struct conn {
  ev_io rio, wio;
  int fd;
  size_t len, off;
  char buf[];
};

static void conn_end(struct ev_loop *loop, struct conn *c)
{
  ev_io_stop(loop, &c->rio);
  ev_io_stop(loop, &c->wio);
  close(c->fd);
  free(c);
}

/* Writes what is pending; 1 if all of it is out, 0 if it must wait, -1 dead. */
static int flush_out(struct conn *c)
{
  while (c->off < c->len) {
    ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (w > 0) {
      c->off += (size_t)w;
      bytes_echoed += (uint64_t)w;
    } else if (w < 0 && errno == EAGAIN) {
      return 0;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return -1;
    }
  }
  return 1;
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
  struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, wio));
  int r = flush_out(c);
  if (r < 0) {
    conn_end(loop, c);
  } else if (r > 0) {
    ev_io_stop(loop, &c->wio);
    ev_io_start(loop, &c->rio);
  }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
  struct conn *c = (struct conn *)w;
  ssize_t n = recv(c->fd, c->buf, bufsize, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_end(loop, c);
    return;
  }
  c->len = (size_t)n;
  c->off = 0;
  int r = flush_out(c);
  if (r < 0) {
    conn_end(loop, c);
  } else if (r == 0) {
    ev_io_stop(loop, &c->rio);
    ev_io_start(loop, &c->wio);
  }
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
  for (int i = 0; i < 64; i++) {
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        fprintf(stderr, "%s: accept: %s\n", prog, strerror(errno));
      return;
    }
    struct conn *c = malloc(sizeof *c + bufsize);
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    sb_nodelay(fd);
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_io_start(loop, &c->rio);
  }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
  ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
  long port = -1, cpu = 0, msg = 0;
  const char *stats = NULL, *bname = NULL;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--port")) { port = sb_parse_long(prog, a, v, 0, 65535); i++; }
    else if (!strcmp(a, "--backend")) { bname = v; i++; }
    else if (!strcmp(a, "--stats")) { stats = v; i++; if (!v) sb_die(prog, "--stats needs a file"); }
    else if (!strcmp(a, "--cpu")) { cpu = sb_parse_long(prog, a, v, -1, 4096); i++; }
    else if (!strcmp(a, "--msg")) { msg = sb_parse_long(prog, a, v, 1, 1 << 20); i++; }
    else if (!strcmp(a, "--bufsize")) { bufsize = (size_t)sb_parse_long(prog, a, v, 64, 1 << 20); i++; }
    else {
      fprintf(stderr, "usage: %s --port P --backend epoll|iouring [--cpu N|-1] [--stats FILE]"
                      " [--msg BYTES] [--bufsize B]\n", prog);
      sb_die(prog, "unknown option '%s'", a);
    }
  }
  unsigned want;
  if (bname && !strcmp(bname, "epoll"))
    want = EVBACKEND_EPOLL;
  else if (bname && !strcmp(bname, "iouring"))
    want = EVBACKEND_IOURING;
  else
    sb_die(prog, "--backend must be epoll or iouring, got '%s'", bname ? bname : "(nothing)");
  if (port < 0)
    sb_die(prog, "--port is required");

  signal(SIGPIPE, SIG_IGN);
  int pinned = sb_pin((int)cpu);
  if (pinned >= 0)
    fprintf(stderr, "%s: pinned to cpu %d\n", prog, pinned);
  else
    fprintf(stderr, "%s: not pinned\n", prog);

  struct ev_loop *loop = ev_default_loop(want | EVFLAG_NOENV);
  if (!loop || ev_backend(loop) != want)
    sb_die(prog, "libev refused backend %s (supported mask 0x%x)", bname, ev_supported_backends());
  fprintf(stderr, "%s: libev %d.%d backend %s\n", prog, ev_version_major(), ev_version_minor(), bname);

  int lfd = sb_listen((int)port, 0, 4096);
  if (lfd < 0)
    sb_die(prog, "listen on 127.0.0.1:%ld: %s", port, strerror(-lfd));
  fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
  fprintf(stderr, "%s: listening on 127.0.0.1:%d\n", prog, sb_local_port(lfd));

  ev_io aio;
  ev_io_init(&aio, on_accept, lfd, EV_READ);
  ev_io_start(loop, &aio);
  ev_signal s1, s2;
  ev_signal_init(&s1, on_signal, SIGTERM);
  ev_signal_init(&s2, on_signal, SIGINT);
  ev_signal_start(loop, &s1);
  ev_signal_start(loop, &s2);

  ev_run(loop, 0);

  char line[256], per[32] = "-";
  double ops = msg ? (double)bytes_echoed / (double)msg : 0;
  unsigned iters = ev_iteration(loop);
  if (ops > 0)
    snprintf(per, sizeof per, "%.3f", (double)iters / ops);
  snprintf(line, sizeof line, "impl=libev-%s bytes=%llu iterations=%u iterations_per_op=%s syscalls_per_op=-",
           bname, (unsigned long long)bytes_echoed, iters, per);
  sb_write_stats(stats, line);
  return 0;
}
