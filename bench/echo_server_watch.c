/*
 * echo_server_watch: the echo protocol on triloop's READINESS interface, on
 * whatever backend TRILOOP_BACKEND names.  Written the way a libev program
 * is (and the same way as bench/libev_echo.c, so the two compare line for
 * line): a tl_io read watcher per connection; when it fires, recv() and
 * send() the bytes back on the nonblocking socket; a short send switches the
 * watcher to TL_WRITE until the rest is out.
 *
 * Beside bench/echo_server.c (completion ops: tl_recv/tl_send) it shows what
 * each style costs on each backend: on epoll readiness is native and the
 * completion ops are emulated; on uring it is the other way round (each
 * readiness event is a poll request on the ring, then the recv and send are
 * plain syscalls).
 *
 * One loop, pinned to --cpu.  SIGTERM/SIGINT (a tl_signal watcher) break the
 * loop; the totals from tl_loop_stats go to stderr or --stats FILE:
 *   impl=triloop-watch backend=.. bytes=.. iterations=.. syscalls=..
 *   syscalls_per_op=.. iterations_per_op=..
 * syscalls counts the loop's backend syscalls PLUS this program's own
 * recv/send/accept calls (they are the price of the readiness style), so the
 * figure compares with echo_server's, where the loop makes them all.
 */
#include "sock_common.h"

#include <fcntl.h>
#include <signal.h>
#include <stddef.h>

#include "triloop.h"

static const char *prog = "echo_server_watch";
static size_t bufsize = 65536;
static uint64_t bytes_echoed, own_syscalls;

struct conn {
  tl_io io;
  int fd;
  size_t len, off;
  char buf[];
};

static void conn_end(tl_loop *loop, struct conn *c)
{
  tl_io_stop(loop, &c->io);
  close(c->fd);
  free(c);
}

/* Writes what is pending; 1 if all of it is out, 0 if it must wait, -1 dead. */
static int flush_out(struct conn *c)
{
  while (c->off < c->len) {
    own_syscalls++;
    ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      c->off += (size_t)w;
      bytes_echoed += (uint64_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 0;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return -1;
    }
  }
  return 1;
}

static void on_conn(tl_loop *loop, tl_io *w, unsigned revents)
{
  struct conn *c = (struct conn *)w;
  int r;
  if (revents & TL_ERROR) {
    conn_end(loop, c);
    return;
  }
  if (w->events & TL_WRITE) {
    r = flush_out(c);
    if (r < 0)
      conn_end(loop, c);
    else if (r > 0 && tl_io_set(loop, w, TL_READ) < 0)
      conn_end(loop, c);
    return;
  }
  own_syscalls++;
  ssize_t n = recv(c->fd, c->buf, bufsize, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0) {
    conn_end(loop, c);
    return;
  }
  c->len = (size_t)n;
  c->off = 0;
  r = flush_out(c);
  if (r < 0 || (r == 0 && tl_io_set(loop, w, TL_WRITE) < 0))
    conn_end(loop, c);
}

static void on_accept(tl_loop *loop, tl_io *w, unsigned revents)
{
  for (int i = 0; i < 64; i++) {
    own_syscalls++;
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE)
        usleep(1000);   /* do not spin on a full fd table */
      else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
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
    tl_io_init(&c->io, on_conn, fd, TL_READ);
    int r = tl_io_start(loop, &c->io);
    if (r < 0) {
      fprintf(stderr, "%s: tl_io_start: %s\n", prog, tl_strerror(r));
      close(fd);
      free(c);
    }
  }
}

static void on_signal(tl_loop *loop, tl_signal *w, unsigned revents)
{
  tl_break(loop);
}

int main(int argc, char **argv)
{
  long port = -1, cpu = 0, msg = 0;
  const char *stats = NULL;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--port")) { port = sb_parse_long(prog, a, v, 0, 65535); i++; }
    else if (!strcmp(a, "--stats")) { stats = v; i++; if (!v) sb_die(prog, "--stats needs a file"); }
    else if (!strcmp(a, "--cpu")) { cpu = sb_parse_long(prog, a, v, -1, 4096); i++; }
    else if (!strcmp(a, "--msg")) { msg = sb_parse_long(prog, a, v, 1, 1 << 20); i++; }
    else if (!strcmp(a, "--bufsize")) { bufsize = (size_t)sb_parse_long(prog, a, v, 64, 1 << 20); i++; }
    else {
      fprintf(stderr, "usage: %s --port P [--cpu N|-1] [--stats FILE] [--msg BYTES] [--bufsize B]\n"
                      "(backend from TRILOOP_BACKEND: %s)\n", prog, tl_backend_names());
      sb_die(prog, "unknown option '%s'", a);
    }
  }
  if (port < 0)
    sb_die(prog, "--port is required");

  signal(SIGPIPE, SIG_IGN);
  int pinned = sb_pin((int)cpu);
  fprintf(stderr, pinned >= 0 ? "%s: pinned to cpu %d\n" : "%s: not pinned\n", prog, pinned);

  tl_loop *loop;
  int r = tl_loop_new(&loop, 0);
  if (r < 0) {
    /* the driver greps the last line as the reason a backend is skipped */
    fprintf(stderr, "%s: tl_loop_new: %s\n", prog, tl_strerror(r));
    return 1;
  }
  int lfd = sb_listen((int)port, 0, 4096);
  if (lfd < 0)
    sb_die(prog, "listen on 127.0.0.1:%ld: %s", port, strerror(-lfd));
  fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);

  tl_io aio;
  tl_signal s1, s2;
  tl_io_init(&aio, on_accept, lfd, TL_READ);
  tl_signal_init(&s1, on_signal, SIGTERM);
  tl_signal_init(&s2, on_signal, SIGINT);
  if ((r = tl_io_start(loop, &aio)) < 0 || (r = tl_signal_start(loop, &s1)) < 0 ||
      (r = tl_signal_start(loop, &s2)) < 0) {
    fprintf(stderr, "%s: watcher start: %s\n", prog, tl_strerror(r));
    return 1;
  }
  fprintf(stderr, "%s: backend %s\n", prog, tl_backend_name(loop));
  fprintf(stderr, "%s: listening on 127.0.0.1:%d\n", prog, sb_local_port(lfd));

  r = tl_run(loop, TL_RUN_DEFAULT);
  if (r < 0)
    fprintf(stderr, "%s: tl_run: %s\n", prog, tl_strerror(r));

  struct tl_loop_stats st;
  tl_loop_stats(loop, &st);
  char line[384], sper[32] = "-", iper[32] = "-";
  double ops = msg ? (double)bytes_echoed / (double)msg : 0;
  uint64_t sys = st.syscalls + own_syscalls;
  if (ops > 0) {
    snprintf(sper, sizeof sper, "%.3f", (double)sys / ops);
    snprintf(iper, sizeof iper, "%.3f", (double)st.iterations / ops);
  }
  snprintf(line, sizeof line,
           "impl=triloop-watch backend=%s bytes=%llu iterations=%llu syscalls=%llu "
           "syscalls_per_op=%s iterations_per_op=%s",
           tl_backend_name(loop), (unsigned long long)bytes_echoed,
           (unsigned long long)st.iterations, (unsigned long long)sys, sper, iper);
  /* Connections still open are the client's to close; the process exits. */
  tl_io_stop(loop, &aio);
  close(lfd);
  tl_loop_destroy(loop);
  sb_write_stats(stats, line);
  return 0;
}
