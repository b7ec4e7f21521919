/*
 * httpd: a small HTTP/1.1 static file server on triloop.
 *
 *   httpd [-a ADDR] [-p PORT] [-t IDLE_SECONDS] [ROOT]
 *
 * Serves GET and HEAD for the regular files under ROOT (default: the current
 * directory), with keep-alive and pipelined requests, one request at a time
 * per connection.  A connection that makes no progress for IDLE_SECONDS
 * (default 30) is closed.  Prints "listening on PORT" once it accepts
 * connections (-p 0, the default, picks a free port).  SIGINT or SIGTERM
 * stops it cleanly.
 *
 * Each connection has one tl_op, so at most one operation is in flight for
 * it: receive the request, open the file, send the header, then read a
 * chunk and send it until the file is done, then close the file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <triloop.h>

struct conn {
  tl_op op;                /* the connection's one op (zeroed by calloc) */
  tl_timer idle;           /* closes a connection that makes no progress */
  int fd;                  /* the client socket */
  int file;                /* the file being sent, or -1 */
  int keep_alive;
  int head_only;           /* a HEAD request: the header, no body */
  int closing;             /* no more ops: close at the next callback */
  char req[8192];          /* request bytes received so far */
  size_t reqlen;
  size_t reqend;           /* length of the current request's head */
  char path[1024];         /* tl_openat reads it while the open is in flight */
  char head[512];          /* response header */
  char buf[64 * 1024];     /* one chunk of the file */
  const char *out;         /* what send_all is sending */
  size_t outlen, outsent;
  void (*after_send)(tl_loop *loop, struct conn *c);
  int64_t off, size;       /* position in the file, and its size */
};

static int rootfd;
static double idle_timeout = 30;
static int nconns;

static void start_recv(tl_loop *loop, struct conn *c);
static void try_request(tl_loop *loop, struct conn *c);

/* Frees the connection once its socket is closed. */
static void on_closed(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop; (void)res;
  struct conn *c = op->data;
  free(c);
  nconns--;
}

/* Called only from the connection's op callback (the op is ours again) or
 * when no op is in flight. */
static void conn_close(tl_loop *loop, struct conn *c) {
  tl_timer_stop(loop, &c->idle);
  if (c->file >= 0)
    close(c->file);          /* no op of ours is on it any more */
  c->file = -1;
  if (tl_close(loop, &c->op, c->fd, on_closed) < 0) {
    /* The loop is being destroyed and takes no new ops: close it here. */
    close(c->fd);
    on_closed(loop, &c->op, 0);
  }
}

/* The idle timer: interrupt whatever the connection is waiting for.  The
 * op's callback then sees -ECANCELED (or its real result) and closes. */
static void on_idle(tl_loop *loop, tl_timer *w, unsigned revents) {
  (void)revents;
  struct conn *c = w->data;
  c->closing = 1;
  tl_op_cancel(loop, &c->op);
}

static void progress(tl_loop *loop, struct conn *c) {
  tl_timer_again(loop, &c->idle);
}

/* Sends out[0..len) in as many sends as it takes, then calls then(). */
static void on_sent(tl_loop *loop, tl_op *op, int64_t res) {
  struct conn *c = op->data;
  if (res < 0 || c->closing) {
    conn_close(loop, c);
    return;
  }
  progress(loop, c);
  c->outsent += (size_t)res;
  if (c->outsent < c->outlen) {
    if (tl_send(loop, &c->op, c->fd, c->out + c->outsent, c->outlen - c->outsent, 0,
                on_sent) < 0)
      conn_close(loop, c);
    return;
  }
  c->after_send(loop, c);
}

static void send_all(tl_loop *loop, struct conn *c, const char *p, size_t len,
                     void (*then)(tl_loop *, struct conn *)) {
  c->out = p;
  c->outlen = len;
  c->outsent = 0;
  c->after_send = then;
  if (tl_send(loop, &c->op, c->fd, p, len, 0, on_sent) < 0)
    conn_close(loop, c);
}

/* The response is out: drop the request and go on with the next one. */
static void response_done(tl_loop *loop, struct conn *c) {
  if (!c->keep_alive) {
    conn_close(loop, c);
    return;
  }
  memmove(c->req, c->req + c->reqend, c->reqlen - c->reqend);
  c->reqlen -= c->reqend;
  c->reqend = 0;
  try_request(loop, c);
}

static void on_file_closed(tl_loop *loop, tl_op *op, int64_t res) {
  (void)res;
  struct conn *c = op->data;
  c->file = -1;
  if (c->closing)
    conn_close(loop, c);
  else
    response_done(loop, c);
}

static void send_next_chunk(tl_loop *loop, struct conn *c);

static void on_file_read(tl_loop *loop, tl_op *op, int64_t res) {
  struct conn *c = op->data;
  if (res <= 0 || c->closing) {
    /* An error, or the file shrank: the header promised more bytes than
     * we can send, so the connection cannot go on. */
    conn_close(loop, c);
    return;
  }
  c->off += res;
  send_all(loop, c, c->buf, (size_t)res, send_next_chunk);
}

static void send_next_chunk(tl_loop *loop, struct conn *c) {
  int r;
  if (c->off >= c->size) {
    r = tl_close(loop, &c->op, c->file, on_file_closed);
  } else {
    int64_t left = c->size - c->off;
    size_t n = left < (int64_t)sizeof c->buf ? (size_t)left : sizeof c->buf;
    r = tl_read(loop, &c->op, c->file, c->buf, n, c->off, on_file_read);
  }
  if (r < 0)
    conn_close(loop, c);
}

static void send_error(tl_loop *loop, struct conn *c, int code, const char *text) {
  int n = snprintf(c->head, sizeof c->head,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                   "%s\r\n%s\n",
                   code, text, strlen(text) + 1, c->keep_alive ? "" : "Connection: close\r\n",
                   text);
  send_all(loop, c, c->head, (size_t)n, response_done);
}

static void on_open(tl_loop *loop, tl_op *op, int64_t res) {
  struct conn *c = op->data;
  if (c->closing) {
    if (res >= 0)
      close((int)res);
    conn_close(loop, c);
    return;
  }
  if (res < 0) {
    send_error(loop, c, res == -ENOENT || res == -ENOTDIR ? 404 : 403,
               res == -ENOENT || res == -ENOTDIR ? "Not Found" : "Forbidden");
    return;
  }
  c->file = (int)res;
  struct stat st;
  if (fstat(c->file, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(c->file);
    c->file = -1;
    send_error(loop, c, 404, "Not Found");
    return;
  }
  c->off = 0;
  c->size = st.st_size;
  int n = snprintf(c->head, sizeof c->head,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Length: %lld\r\n%s\r\n",
                   (long long)c->size, c->keep_alive ? "" : "Connection: close\r\n");
  if (c->head_only)
    c->size = 0;             /* the header only; send_next_chunk closes the file */
  send_all(loop, c, c->head, (size_t)n, send_next_chunk);
}

/* Handles the request at the start of c->req if its head is complete. */
static void try_request(tl_loop *loop, struct conn *c) {
  c->req[c->reqlen] = 0;
  char *end = strstr(c->req, "\r\n\r\n");
  if (!end) {
    if (c->reqlen >= sizeof c->req - 1) {
      c->keep_alive = 0;
      send_error(loop, c, 431, "Request Header Fields Too Large");
    } else {
      start_recv(loop, c);
    }
    return;
  }
  c->reqend = (size_t)(end - c->req) + 4;
  *end = 0;

  char method[16], target[1024], version[16];
  if (sscanf(c->req, "%15s %1023s %15s", method, target, version) != 3) {
    c->keep_alive = 0;
    send_error(loop, c, 400, "Bad Request");
    return;
  }
  /* HTTP/1.1 keeps the connection unless told otherwise; 1.0 does not. */
  c->keep_alive = !strcmp(version, "HTTP/1.1") && !strcasestr(c->req, "\nConnection: close");
  c->head_only = !strcmp(method, "HEAD");
  if (strcmp(method, "GET") && !c->head_only) {
    c->keep_alive = 0;       /* we would have to skip a body we do not parse */
    send_error(loop, c, 405, "Method Not Allowed");
    return;
  }
  target[strcspn(target, "?#")] = 0;
  if (target[0] != '/' || strstr(target, "..")) {
    send_error(loop, c, 403, "Forbidden");
    return;
  }
  snprintf(c->path, sizeof c->path, "%s", target[1] ? target + 1 : "index.html");
  if (tl_openat(loop, &c->op, rootfd, c->path, O_RDONLY | O_CLOEXEC, 0, on_open) < 0)
    conn_close(loop, c);
}

static void on_recv(tl_loop *loop, tl_op *op, int64_t res) {
  struct conn *c = op->data;
  if (res <= 0 || c->closing) {    /* 0: the client closed; <0: an error */
    conn_close(loop, c);
    return;
  }
  progress(loop, c);
  c->reqlen += (size_t)res;
  try_request(loop, c);
}

static void start_recv(tl_loop *loop, struct conn *c) {
  if (tl_recv(loop, &c->op, c->fd, c->req + c->reqlen, sizeof c->req - 1 - c->reqlen, 0,
              on_recv) < 0)
    conn_close(loop, c);
}

static tl_op accept_op;

static void on_accept(tl_loop *loop, tl_op *op, int64_t res) {
  if (res == -ECANCELED)
    return;                  /* the loop is being destroyed */
  if (res >= 0) {
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
      close((int)res);
    } else {
      nconns++;
      c->fd = (int)res;
      c->file = -1;
      c->op.data = c;
      tl_timer_init(&c->idle, on_idle, 0, idle_timeout);
      c->idle.data = c;
      tl_timer_again(loop, &c->idle);
      start_recv(loop, c);
    }
  } else {
    fprintf(stderr, "httpd: accept: %s\n", tl_strerror((int)res));
  }
  int r = tl_accept(loop, op, op->fd, NULL, NULL, 0, on_accept);
  if (r < 0)
    fprintf(stderr, "httpd: accept: %s\n", tl_strerror(r));
}

static void on_signal(tl_loop *loop, tl_signal *w, unsigned revents) {
  (void)w; (void)revents;
  tl_break(loop);
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1", *root = ".";
  int port = 0, opt;
  while ((opt = getopt(argc, argv, "a:p:t:")) != -1) {
    switch (opt) {
    case 'a': addr = optarg; break;
    case 'p': port = atoi(optarg); break;
    case 't': idle_timeout = atof(optarg); break;
    default:
      fprintf(stderr, "usage: httpd [-a ADDR] [-p PORT] [-t IDLE_SECONDS] [ROOT]\n");
      return 2;
    }
  }
  if (optind < argc)
    root = argv[optind];
  rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    perror(root);
    return 1;
  }

  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t slen = sizeof sin;
  if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
    fprintf(stderr, "httpd: bad address %s\n", addr);
    return 2;
  }
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 128) < 0 ||
      getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0) {
    perror("httpd: listen");
    return 1;
  }

  tl_loop *loop;
  int r = tl_loop_new(&loop, TL_BACKEND_AUTO);
  if (r < 0) {
    fprintf(stderr, "httpd: tl_loop_new: %s\n", tl_strerror(r));
    return 1;
  }
  tl_signal sigint, sigterm;
  tl_signal_init(&sigint, on_signal, SIGINT);
  tl_signal_init(&sigterm, on_signal, SIGTERM);
  tl_signal_start(loop, &sigint);
  tl_signal_start(loop, &sigterm);
  r = tl_accept(loop, &accept_op, lfd, NULL, NULL, 0, on_accept);
  if (r < 0) {
    fprintf(stderr, "httpd: accept: %s\n", tl_strerror(r));
    return 1;
  }
  printf("listening on %d (backend %s)\n", ntohs(sin.sin_port), tl_backend_name(loop));
  fflush(stdout);

  r = tl_run(loop, TL_RUN_DEFAULT);
  if (r < 0)
    fprintf(stderr, "httpd: tl_run: %s\n", tl_strerror(r));
  /* Cancels the accept and every connection's op; their callbacks close
   * and free the connections before this returns. */
  tl_loop_destroy(loop);
  close(lfd);
  close(rootfd);
  if (nconns != 0) {
    fprintf(stderr, "httpd: %d connections leaked\n", nconns);
    return 1;
  }
  return r < 0 ? 1 : 0;
}
