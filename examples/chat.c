/*
 * chat: a line-based chat server on triloop, with idle timeouts.
 *
 *   chat [-a ADDR] [-p PORT] [-t IDLE_SECONDS]
 *
 * Every line a client sends goes to every other client as "#ID: line".
 * A client that sends nothing for IDLE_SECONDS (default 300) is told
 * "bye: idle" and disconnected.  Prints "listening on PORT" once it accepts
 * connections (-p 0, the default, picks a free port).  SIGINT or SIGTERM
 * stops it cleanly.  Try it with a few `nc 127.0.0.1 PORT`.
 *
 * A client has a receive and a send in flight at the same time, on one fd.
 * To close it, tl_close() completes both (their callbacks see -ECANCELED)
 * before it closes the fd and calls back; only then is the client freed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <triloop.h>

#define MAX_QUEUED (1 << 20)   /* a client that reads slower than this is dropped */

struct client {
  struct client *next, *prev;
  int id, fd;
  tl_op recv_op, send_op, close_op;   /* zeroed by calloc */
  tl_timer idle;
  int ops;                 /* ops in flight: the client is freed at 0 */
  int closing;             /* on its way out: no new ops except the close */
  int closed;              /* the fd is closed */
  int bye;                 /* close once the queued output is sent */
  char in[4096];           /* received bytes not yet broadcast */
  size_t inlen;
  char *out;               /* queued for sending, not yet handed to the loop */
  size_t outlen, outcap;
  char *wire;              /* handed to the loop by the send in flight */
  size_t wirelen, wiresent;
};

static struct client *clients;
static int next_id = 1, nclients;
static double idle_timeout = 300;

static void client_close(tl_loop *loop, struct client *c);

static void maybe_free(struct client *c) {
  if (!c->closed || c->ops > 0)
    return;
  free(c->out);
  free(c->wire);
  free(c);
  nclients--;
}

static void on_sent(tl_loop *loop, tl_op *op, int64_t res);

/* Hands the queued output to the loop, unless a send is in flight. */
static void flush(tl_loop *loop, struct client *c) {
  if (c->closing || c->wire)
    return;
  if (c->outlen == 0) {
    if (c->bye)
      client_close(loop, c);
    return;
  }
  c->wire = c->out;          /* the loop owns it until on_sent */
  c->wirelen = c->outlen;
  c->wiresent = 0;
  c->out = NULL;
  c->outlen = c->outcap = 0;
  int r = tl_send(loop, &c->send_op, c->fd, c->wire, c->wirelen, 0, on_sent);
  if (r < 0)
    client_close(loop, c);
  else
    c->ops++;
}

static void on_sent(tl_loop *loop, tl_op *op, int64_t res) {
  struct client *c = op->data;
  c->ops--;
  if (res < 0 || c->closing) {
    if (!c->closing)
      client_close(loop, c);
    maybe_free(c);
    return;
  }
  c->wiresent += (size_t)res;
  if (c->wiresent < c->wirelen) {
    int r = tl_send(loop, op, c->fd, c->wire + c->wiresent, c->wirelen - c->wiresent, 0,
                    on_sent);
    if (r < 0)
      client_close(loop, c);
    else
      c->ops++;
    return;
  }
  free(c->wire);
  c->wire = NULL;
  flush(loop, c);
}

/* Appends text to the client's queue and sends it when it can. */
static void enqueue(tl_loop *loop, struct client *c, const char *p, size_t len) {
  if (c->closing)
    return;
  if (c->outlen + len > c->outcap) {
    if (c->outlen + len > MAX_QUEUED) {
      client_close(loop, c);
      return;
    }
    size_t cap = c->outcap ? c->outcap * 2 : 1024;
    while (cap < c->outlen + len)
      cap *= 2;
    char *n = realloc(c->out, cap);
    if (!n) {
      client_close(loop, c);
      return;
    }
    c->out = n;
    c->outcap = cap;
  }
  memcpy(c->out + c->outlen, p, len);
  c->outlen += len;
  flush(loop, c);
}

/* Sends a line to every client but from. */
static void broadcast(tl_loop *loop, struct client *from, const char *line, size_t len) {
  char head[32];
  int n = snprintf(head, sizeof head, "#%d: ", from->id);
  for (struct client *c = clients, *next; c; c = next) {
    next = c->next;          /* enqueue may close c, which unlinks it */
    if (c == from)
      continue;
    enqueue(loop, c, head, (size_t)n);
    enqueue(loop, c, line, len);
  }
}

static void on_closed(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop; (void)res;
  struct client *c = op->data;
  c->ops--;
  c->closed = 1;
  maybe_free(c);
}

static void client_close(tl_loop *loop, struct client *c) {
  if (c->closing)
    return;
  c->closing = 1;
  tl_timer_stop(loop, &c->idle);
  if (c->prev)
    c->prev->next = c->next;
  else
    clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  /* Completes the recv and send in flight first, then closes the fd. */
  if (tl_close(loop, &c->close_op, c->fd, on_closed) == 0) {
    c->ops++;
  } else {
    /* The loop is being destroyed and takes no new ops; its destroy calls
     * back the ops still in flight, and the last one frees the client. */
    close(c->fd);
    c->closed = 1;
    maybe_free(c);
  }
}

static void on_recv(tl_loop *loop, tl_op *op, int64_t res);

static void start_recv(tl_loop *loop, struct client *c) {
  int r = tl_recv(loop, &c->recv_op, c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0,
                  on_recv);
  if (r < 0)
    client_close(loop, c);
  else
    c->ops++;
}

static void on_recv(tl_loop *loop, tl_op *op, int64_t res) {
  struct client *c = op->data;
  c->ops--;
  if (c->closing || c->bye) {  /* cancelled by client_close or the idle timer */
    maybe_free(c);
    return;
  }
  if (res <= 0) {            /* 0: the client hung up */
    char msg[64];
    int n = snprintf(msg, sizeof msg, "#%d left\n", c->id);
    client_close(loop, c);
    broadcast(loop, c, msg, (size_t)n);
    maybe_free(c);
    return;
  }
  tl_timer_again(loop, &c->idle);
  c->inlen += (size_t)res;
  /* Broadcast every complete line; a full buffer counts as one line. */
  char *start = c->in, *nl;
  while ((nl = memchr(start, '\n', c->inlen - (size_t)(start - c->in))) != NULL) {
    broadcast(loop, c, start, (size_t)(nl - start) + 1);
    start = nl + 1;
  }
  c->inlen -= (size_t)(start - c->in);
  memmove(c->in, start, c->inlen);
  if (c->inlen == sizeof c->in) {
    broadcast(loop, c, c->in, c->inlen);
    broadcast(loop, c, "\n", 1);
    c->inlen = 0;
  }
  if (!c->closing)
    start_recv(loop, c);
}

/* Nothing from this client for idle_timeout seconds. */
static void on_idle(tl_loop *loop, tl_timer *w, unsigned revents) {
  (void)revents;
  struct client *c = w->data;
  c->bye = 1;                /* on_recv will not receive again */
  tl_op_cancel(loop, &c->recv_op);
  const char *msg = "bye: idle\n";
  enqueue(loop, c, msg, strlen(msg));   /* flush closes the client once it is sent */
}

static tl_op accept_op;

static void on_accept(tl_loop *loop, tl_op *op, int64_t res) {
  if (res == -ECANCELED)
    return;                  /* the loop is being destroyed */
  if (res < 0) {
    fprintf(stderr, "chat: accept: %s\n", tl_strerror((int)res));
  } else {
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
      close((int)res);
    } else {
      c->fd = (int)res;
      c->id = next_id++;
      c->recv_op.data = c->send_op.data = c->close_op.data = c;
      c->next = clients;
      if (clients)
        clients->prev = c;
      clients = c;
      nclients++;
      tl_timer_init(&c->idle, on_idle, 0, idle_timeout);
      c->idle.data = c;
      tl_timer_again(loop, &c->idle);
      char hello[64];
      int n = snprintf(hello, sizeof hello, "welcome, you are #%d\n", c->id);
      enqueue(loop, c, hello, (size_t)n);
      start_recv(loop, c);
    }
  }
  int r = tl_accept(loop, op, op->fd, NULL, NULL, 0, on_accept);
  if (r < 0)
    fprintf(stderr, "chat: accept: %s\n", tl_strerror(r));
}

static void on_signal(tl_loop *loop, tl_signal *w, unsigned revents) {
  (void)w; (void)revents;
  tl_break(loop);
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1";
  int port = 0, opt;
  while ((opt = getopt(argc, argv, "a:p:t:")) != -1) {
    switch (opt) {
    case 'a': addr = optarg; break;
    case 'p': port = atoi(optarg); break;
    case 't': idle_timeout = atof(optarg); break;
    default:
      fprintf(stderr, "usage: chat [-a ADDR] [-p PORT] [-t IDLE_SECONDS]\n");
      return 2;
    }
  }
  if (!(idle_timeout > 0)) {
    fprintf(stderr, "chat: the idle timeout must be > 0\n");
    return 2;
  }

  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t slen = sizeof sin;
  if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
    fprintf(stderr, "chat: bad address %s\n", addr);
    return 2;
  }
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 128) < 0 ||
      getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0) {
    perror("chat: listen");
    return 1;
  }

  tl_loop *loop;
  int r = tl_loop_new(&loop, TL_BACKEND_AUTO);
  if (r < 0) {
    fprintf(stderr, "chat: tl_loop_new: %s\n", tl_strerror(r));
    return 1;
  }
  tl_signal sigint, sigterm;
  tl_signal_init(&sigint, on_signal, SIGINT);
  tl_signal_init(&sigterm, on_signal, SIGTERM);
  tl_signal_start(loop, &sigint);
  tl_signal_start(loop, &sigterm);
  r = tl_accept(loop, &accept_op, lfd, NULL, NULL, 0, on_accept);
  if (r < 0) {
    fprintf(stderr, "chat: accept: %s\n", tl_strerror(r));
    return 1;
  }
  printf("listening on %d (backend %s)\n", ntohs(sin.sin_port), tl_backend_name(loop));
  fflush(stdout);

  r = tl_run(loop, TL_RUN_DEFAULT);
  if (r < 0)
    fprintf(stderr, "chat: tl_run: %s\n", tl_strerror(r));
  /* Close every client, then let destroy call back what is in flight. */
  while (clients)
    client_close(loop, clients);
  tl_loop_destroy(loop);
  close(lfd);
  if (nclients != 0) {
    fprintf(stderr, "chat: %d clients leaked\n", nclients);
    return 1;
  }
  return r < 0 ? 1 : 0;
}
