/* File-system and socket ops beyond read/write: statx, ftruncate,
 * fallocate, mkdirat, renameat, unlinkat, shutdown, splice, sendmsg and
 * recvmsg (UDP, SCM_RIGHTS) and send_zc.  Each: its round trip, its error
 * case, and exactly one callback under cancel and destroy. */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "harness.h"

static void path_in(char *out, size_t n, const char *dir, const char *name) {
  snprintf(out, n, "%s/%s", dir, name);
}

/* Runs op's callback and returns its result (one callback, asserted). */
#define WAIT_ONE(loop, r)                       \
  do {                                          \
    TH_RUN_UNTIL(loop, (r).calls >= 1);         \
    tl_run(loop, TL_RUN_NOWAIT);                \
    ck_assert_int_eq((r).calls, 1);             \
  } while (0)

/* ---- fs ops ---------------------------------------------------------- */

START_TEST(test_fsops_statx_reports_the_size_and_enoent_for_a_missing_path) {
  tl_loop *loop = th_new(_i);
  char dir[256], f[300], missing[300];
  th_tmpdir(dir, sizeof dir);
  path_in(f, sizeof f, dir, "file");
  path_in(missing, sizeof missing, dir, "missing");
  int fd = open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "hello world", 11), 11);
  close(fd);

  tl_op op;
  struct th_opres r;
  struct statx st;
  memset(&st, 0, sizeof st);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_statx(loop, &op, AT_FDCWD, f, 0, STATX_SIZE, &st, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  ck_assert(st.stx_mask & STATX_SIZE);
  ck_assert_int_eq(st.stx_size, 11);

  /* Relative to a dirfd. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  memset(&st, 0, sizeof st);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_statx(loop, &op, dfd, "file", 0, STATX_SIZE, &st, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  ck_assert_int_eq(st.stx_size, 11);

  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_statx(loop, &op, AT_FDCWD, missing, 0, STATX_SIZE, &st, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -ENOENT);

  /* Sync errors: nothing handed over. */
  ck_assert_int_eq(tl_statx(loop, &op, AT_FDCWD, NULL, 0, STATX_SIZE, &st, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_statx(loop, &op, AT_FDCWD, f, 0, STATX_SIZE, NULL, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_statx(loop, &op, -5, f, 0, STATX_SIZE, &st, th_op_cb), -EBADF);
  ck_assert_int_eq(r.calls, 1);
  close(dfd);
  th_rmdir(dir);
  th_destroy(loop);
}
END_TEST

START_TEST(test_fsops_ftruncate_and_fallocate_set_the_size_and_fail_on_a_bad_fd) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile("0123456789", 10);
  tl_op op;
  struct th_opres r;
  struct stat st;

  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_ftruncate(loop, &op, fd, 4, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  ck_assert_int_eq(fstat(fd, &st), 0);
  ck_assert_int_eq(st.st_size, 4);

  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_fallocate(loop, &op, fd, 0, 0, 65536, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  ck_assert_int_eq(fstat(fd, &st), 0);
  ck_assert_int_eq(st.st_size, 65536);
  char buf[4];
  ck_assert_int_eq(pread(fd, buf, 4, 0), 4);
  ck_assert(memcmp(buf, "0123", 4) == 0);

  /* Errors come from the syscall, the same on every backend. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_ftruncate(loop, &op, fd, -1, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EINVAL);
  int bad = th_closed_fd();
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_ftruncate(loop, &op, bad, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EBADF);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_fallocate(loop, &op, bad, 0, 0, 10, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EBADF);
  ck_assert_int_eq(tl_ftruncate(loop, &op, -1, 0, th_op_cb), -EBADF);
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_fsops_mkdirat_renameat_unlinkat_round_trip_and_their_errors) {
  tl_loop *loop = th_new(_i);
  char dir[256], sub[300], a[300], b[300];
  th_tmpdir(dir, sizeof dir);
  path_in(sub, sizeof sub, dir, "sub");
  path_in(a, sizeof a, dir, "a");
  path_in(b, sizeof b, dir, "b");
  tl_op op;
  struct th_opres r;
  struct stat st;

  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_mkdirat(loop, &op, AT_FDCWD, sub, 0700, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  ck_assert_int_eq(stat(sub, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_mkdirat(loop, &op, AT_FDCWD, sub, 0700, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EEXIST);

  int fd = open(a, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ck_assert_int_ge(fd, 0);
  close(fd);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_renameat(loop, &op, dfd, "a", AT_FDCWD, b, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  ck_assert_int_eq(access(a, F_OK), -1);
  ck_assert_int_eq(access(b, F_OK), 0);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_renameat(loop, &op, AT_FDCWD, a, AT_FDCWD, b, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -ENOENT);
  /* renameat2 flags are passed through. */
  fd = open(a, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  close(fd);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_renameat(loop, &op, AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE,
                               th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EEXIST);

  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_unlinkat(loop, &op, dfd, "b", 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  ck_assert_int_eq(access(b, F_OK), -1);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_unlinkat(loop, &op, dfd, "b", 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -ENOENT);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_unlinkat(loop, &op, AT_FDCWD, sub, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EISDIR);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_unlinkat(loop, &op, AT_FDCWD, sub, AT_REMOVEDIR, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  ck_assert_int_eq(access(sub, F_OK), -1);

  ck_assert_int_eq(tl_mkdirat(loop, &op, AT_FDCWD, NULL, 0700, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_renameat(loop, &op, AT_FDCWD, a, -7, b, 0, th_op_cb), -EBADF);
  close(dfd);
  th_rmdir(dir);
  th_destroy(loop);
}
END_TEST

/* ---- sockets ---------------------------------------------------------- */

START_TEST(test_fsops_shutdown_gives_the_peer_eof_and_enotsock_on_a_pipe) {
  tl_loop *loop = th_new(_i);
  int s[2], p[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  int fl = fcntl(s[0], F_GETFL);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_shutdown(loop, &op, s[0], SHUT_WR, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 0);
  char c;
  ck_assert_int_eq(read(s[1], &c, 1), 0);   /* EOF, at once */
  ck_assert_int_eq(fcntl(s[0], F_GETFL), fl);   /* the fd's flags untouched */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_shutdown(loop, &op, p[0], SHUT_RDWR, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -ENOTSOCK);
  close(s[0]);
  close(s[1]);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

static int udp_socket(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
  socklen_t len = sizeof *addr;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
  return fd;
}

/* A UDP echo: the server learns the client's address from recvmsg's
 * msg_name and answers to it with sendmsg. */
START_TEST(test_fsops_udp_echo_with_sendmsg_and_recvmsg) {
  tl_loop *loop = th_new(_i);
  struct sockaddr_in sa, ca;
  int srv = udp_socket(&sa), cli = udp_socket(&ca);
  for (int round = 0; round < 3; round++) {
    /* The server's recvmsg is in flight before the datagram exists. */
    char sbuf[64];
    struct sockaddr_in from;
    struct iovec siov = { sbuf, sizeof sbuf };
    struct msghdr smsg = { .msg_name = &from, .msg_namelen = sizeof from,
                           .msg_iov = &siov, .msg_iovlen = 1 };
    tl_op rop, sop, cop, crop;
    struct th_opres rr, sr, cr, crr;
    th_op_prep(&rop, &rr);
    ck_assert_int_eq(tl_recvmsg(loop, &rop, srv, &smsg, 0, th_op_cb), 0);
    tl_run(loop, TL_RUN_NOWAIT);
    ck_assert_int_eq(rr.calls, 0);

    char msg[32];
    int n = snprintf(msg, sizeof msg, "ping %d", round);
    struct iovec ciov[2] = { { msg, 5 }, { msg + 5, (size_t)n - 5 } };
    struct msghdr cmsg = { .msg_name = &sa, .msg_namelen = sizeof sa,
                           .msg_iov = ciov, .msg_iovlen = 2 };
    th_op_prep(&cop, &cr);
    ck_assert_int_eq(tl_sendmsg(loop, &cop, cli, &cmsg, 0, th_op_cb), 0);
    TH_RUN_UNTIL(loop, rr.calls == 1 && cr.calls == 1);
    ck_assert_int_eq(cr.res, n);
    ck_assert_int_eq(rr.res, n);
    ck_assert(memcmp(sbuf, msg, (size_t)n) == 0);
    ck_assert_int_eq(smsg.msg_namelen, sizeof from);
    ck_assert_int_eq(from.sin_port, ca.sin_port);

    char cbuf[64];
    struct iovec criov = { cbuf, sizeof cbuf };
    struct msghdr crmsg = { .msg_iov = &criov, .msg_iovlen = 1 };
    th_op_prep(&crop, &crr);
    ck_assert_int_eq(tl_recvmsg(loop, &crop, cli, &crmsg, 0, th_op_cb), 0);
    siov.iov_len = (size_t)rr.res;
    smsg.msg_controllen = 0;
    th_op_prep(&sop, &sr);
    ck_assert_int_eq(tl_sendmsg(loop, &sop, srv, &smsg, 0, th_op_cb), 0);
    TH_RUN_UNTIL(loop, crr.calls == 1 && sr.calls == 1);
    ck_assert_int_eq(sr.res, n);
    ck_assert_int_eq(crr.res, n);
    ck_assert(memcmp(cbuf, msg, (size_t)n) == 0);
  }
  /* Errors: a NULL msghdr is refused; a closed fd is the syscall's -EBADF. */
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_sendmsg(loop, &op, cli, NULL, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_recvmsg(loop, &op, cli, NULL, 0, th_op_cb), -EINVAL);
  char x = 'x';
  struct iovec iov = { &x, 1 };
  struct msghdr m = { .msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = &iov,
                      .msg_iovlen = 1 };
  ck_assert_int_eq(tl_sendmsg(loop, &op, th_closed_fd(), &m, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EBADF);
  close(srv);
  close(cli);
  th_destroy(loop);
}
END_TEST

/* The write end of a pipe crosses a unix socketpair as SCM_RIGHTS; what is
 * written through the received fd comes out of the pipe. */
START_TEST(test_fsops_scm_rights_passes_an_fd_over_a_unix_socketpair) {
  tl_loop *loop = th_new(_i);
  int s[2], p[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);

  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } out, in;
  memset(&out, 0, sizeof out);
  memset(&in, 0, sizeof in);
  char tag = 'F', got = 0;
  struct iovec oiov = { &tag, 1 }, iiov = { &got, 1 };
  struct msghdr om = { .msg_iov = &oiov, .msg_iovlen = 1, .msg_control = out.buf,
                       .msg_controllen = sizeof out.buf };
  struct cmsghdr *c = CMSG_FIRSTHDR(&om);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &p[1], sizeof(int));
  struct msghdr im = { .msg_iov = &iiov, .msg_iovlen = 1, .msg_control = in.buf,
                       .msg_controllen = sizeof in.buf };

  tl_op rop, sop;
  struct th_opres rr, sr;
  th_op_prep(&rop, &rr);
  th_op_prep(&sop, &sr);
  ck_assert_int_eq(tl_recvmsg(loop, &rop, s[1], &im, MSG_CMSG_CLOEXEC, th_op_cb), 0);
  ck_assert_int_eq(tl_sendmsg(loop, &sop, s[0], &om, 0, th_op_cb), 0);
  TH_RUN_UNTIL(loop, rr.calls == 1 && sr.calls == 1);
  ck_assert_int_eq(sr.res, 1);
  ck_assert_int_eq(rr.res, 1);
  ck_assert_int_eq(got, 'F');
  ck_assert_int_eq(im.msg_flags & MSG_CTRUNC, 0);
  struct cmsghdr *rc = CMSG_FIRSTHDR(&im);
  ck_assert_ptr_nonnull(rc);
  ck_assert_int_eq(rc->cmsg_level, SOL_SOCKET);
  ck_assert_int_eq(rc->cmsg_type, SCM_RIGHTS);
  int fd;
  memcpy(&fd, CMSG_DATA(rc), sizeof fd);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_ne(fd, p[1]);
  ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ck_assert_int_eq(write(fd, "via", 3), 3);
  char buf[4] = {0};
  ck_assert_int_eq(read(p[0], buf, 3), 3);
  ck_assert_str_eq(buf, "via");
  close(fd);
  close(s[0]);
  close(s[1]);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

/* A connected TCP pair on loopback (zero copy needs an inet socket). */
static void tcp_pair(int s[2]) {
  struct sockaddr_storage a;
  socklen_t alen = sizeof a;
  int l = th_listener(&a, &alen);
  s[0] = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(s[0], 0);
  ck_assert_int_eq(connect(s[0], (struct sockaddr *)&a, alen), 0);
  s[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_int_ge(s[1], 0);
  close(l);
}

struct zc {
  tl_op op;
  int calls;
  int64_t res;
  unsigned char *buf;
};

static void zc_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct zc *z = op->data;
  z->calls++;
  z->res = res;
  /* The buffer is ours again: scribble on it at once.  Bytes the kernel
   * still had to send from it would show the scribble at the peer. */
  memset(z->buf, 0xEE, 65536);
}

/* One send_zc per chunk; after each callback the buffer is overwritten and
 * the peer must still read the chunk's original bytes.  Each submit gets
 * exactly one callback (the notification is folded in).  Over TCP (zero
 * copy on uring) and over a unix socketpair (a plain send everywhere). */
static void zc_round_trip(tl_loop *loop, int s[2]) {
  enum { CHUNK = 65536 };
  unsigned char *buf = malloc(CHUNK), *rbuf = malloc(CHUNK);
  ck_assert_ptr_nonnull(buf);
  ck_assert_ptr_nonnull(rbuf);
  struct zc z;
  memset(&z, 0, sizeof z);
  z.op.data = &z;
  z.buf = buf;
  for (int chunk = 0; chunk < 8; chunk++) {
    memset(buf, chunk + 1, CHUNK);
    z.calls = 0;
    ck_assert_int_eq(tl_send_zc(loop, &z.op, s[0], buf, CHUNK, 0, zc_cb), 0);
    size_t got = 0;
    /* Read on the test's side while the loop runs, so a full socket buffer
     * cannot stall the send. */
    while (z.calls == 0 || got < (size_t)(z.res > 0 ? z.res : 0)) {
      if (z.calls == 0)
        ck_assert_int_ge(tl_run(loop, TL_RUN_NOWAIT), 0);
      ssize_t n = recv(s[1], rbuf + got, CHUNK - got, MSG_DONTWAIT);
      if (n > 0)
        got += (size_t)n;
      if (z.calls && z.res <= 0)
        break;
    }
    ck_assert_int_eq(z.calls, 1);
    ck_assert_int_gt(z.res, 0);
    ck_assert_int_eq(got, (size_t)z.res);
    for (size_t i = 0; i < got; i++)
      ck_assert_msg(rbuf[i] == chunk + 1, "chunk %d byte %zu: %u", chunk, i, rbuf[i]);
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
    ck_assert_int_eq(z.calls, 1);   /* no second callback for the notification */
  }
  free(buf);
  free(rbuf);
}

START_TEST(test_fsops_send_zc_calls_back_once_when_the_buffer_is_free) {
  tl_loop *loop = th_new(_i);
  int s[2];
  tcp_pair(s);
  zc_round_trip(loop, s);
  close(s[0]);
  close(s[1]);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  zc_round_trip(loop, s);
  close(s[0]);
  close(s[1]);
  /* Error case: a peer that is gone is -EPIPE (never SIGPIPE). */
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  close(s[1]);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_send_zc(loop, &op, s[0], "x", 1, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EPIPE);
  close(s[0]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_fsops_splice_moves_pipe_bytes_into_a_file_and_rejects_two_files) {
  tl_loop *loop = th_new(_i);
  int p[2];
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  int fd = th_tmpfile(NULL, 0);
  ck_assert_int_eq(write(p[1], "spliced!", 8), 8);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_splice(loop, &op, p[0], -1, fd, 100, 8, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 8);
  char buf[9] = {0};
  ck_assert_int_eq(pread(fd, buf, 8, 100), 8);
  ck_assert_str_eq(buf, "spliced!");
  /* The other way, file to pipe, with an input offset. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_splice(loop, &op, fd, 102, p[1], -1, 4, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 4);
  ck_assert_int_eq(read(p[0], buf, 4), 4);
  ck_assert(memcmp(buf, "lice", 4) == 0);
  /* Neither side a pipe. */
  int fd2 = th_tmpfile("abc", 3);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_splice(loop, &op, fd2, 0, fd, 0, 3, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -EINVAL);
  ck_assert_int_eq(tl_splice(loop, &op, p[0], -1, -1, -1, 3, 0, th_op_cb), -EBADF);
  close(fd2);
  close(fd);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

/* ---- cancel and destroy -------------------------------------------- */

enum { NOPS = 11 };
struct fleet {
  tl_op op[NOPS];
  struct th_opres r[NOPS];
  int blocks[NOPS];          /* cannot finish by itself: must be -ECANCELED */
  char dir[256], path[300], gone[300], sub[300];
  int file, dfd, quiet[2], full[2], pipe_in[2], pipe_out[2], dgram[2];
  struct statx st;
  char rbuf[16];
  struct iovec riov, siov;
  struct msghdr rmsg, smsg;
  char sbyte;
};

static void fleet_setup(struct fleet *f) {
  memset(f, 0, sizeof *f);
  th_tmpdir(f->dir, sizeof f->dir);
  path_in(f->path, sizeof f->path, f->dir, "f");
  path_in(f->gone, sizeof f->gone, f->dir, "gone");
  path_in(f->sub, sizeof f->sub, f->dir, "d");
  f->file = open(f->path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ck_assert_int_ge(f->file, 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->quiet), 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->full), 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, f->dgram), 0);
  /* Fill full[0]'s send buffer: a send on it then waits. */
  int sz = 4096;
  setsockopt(f->full[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  static char junk[4096];
  while (send(f->full[0], junk, sizeof junk, MSG_DONTWAIT) > 0)
    ;
  ck_assert_int_eq(pipe2(f->pipe_in, O_CLOEXEC), 0);    /* empty: a splice from it waits */
  ck_assert_int_eq(pipe2(f->pipe_out, O_CLOEXEC), 0);
  f->riov = (struct iovec){ f->rbuf, sizeof f->rbuf };
  f->rmsg = (struct msghdr){ .msg_iov = &f->riov, .msg_iovlen = 1 };
  f->sbyte = 's';
  f->siov = (struct iovec){ &f->sbyte, 1 };
  f->smsg = (struct msghdr){ .msg_iov = &f->siov, .msg_iovlen = 1 };
}

static void fleet_submit(tl_loop *loop, struct fleet *f) {
  for (int i = 0; i < NOPS; i++)
    th_op_prep(&f->op[i], &f->r[i]);
  memset(f->blocks, 0, sizeof f->blocks);
  ck_assert_int_eq(tl_statx(loop, &f->op[0], AT_FDCWD, f->path, 0, STATX_SIZE, &f->st,
                            th_op_cb), 0);
  ck_assert_int_eq(tl_ftruncate(loop, &f->op[1], f->file, 100, th_op_cb), 0);
  ck_assert_int_eq(tl_fallocate(loop, &f->op[2], f->file, 0, 0, 4096, th_op_cb), 0);
  ck_assert_int_eq(tl_unlinkat(loop, &f->op[3], AT_FDCWD, f->gone, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_mkdirat(loop, &f->op[4], AT_FDCWD, f->sub, 0700, th_op_cb), 0);
  ck_assert_int_eq(tl_renameat(loop, &f->op[5], AT_FDCWD, f->gone, AT_FDCWD, f->path, 0,
                               th_op_cb), 0);
  ck_assert_int_eq(tl_shutdown(loop, &f->op[6], f->dgram[0], SHUT_RD, th_op_cb), 0);
  ck_assert_int_eq(tl_recvmsg(loop, &f->op[7], f->quiet[0], &f->rmsg, 0, th_op_cb), 0);
  f->blocks[7] = 1;
  ck_assert_int_eq(tl_sendmsg(loop, &f->op[8], f->full[0], &f->smsg, 0, th_op_cb), 0);
  f->blocks[8] = 1;
  ck_assert_int_eq(tl_send_zc(loop, &f->op[9], f->full[0], "z", 1, 0, th_op_cb), 0);
  f->blocks[9] = 1;
  ck_assert_int_eq(tl_splice(loop, &f->op[10], f->pipe_in[0], -1, f->pipe_out[1], -1, 64, 0,
                             th_op_cb), 0);
  f->blocks[10] = 1;
}

static void fleet_check(struct fleet *f) {
  for (int i = 0; i < NOPS; i++) {
    ck_assert_msg(f->r[i].calls == 1, "op %d: %d callbacks", i, f->r[i].calls);
    if (f->blocks[i])
      ck_assert_msg(f->r[i].res == -ECANCELED, "op %d: %lld", i, (long long)f->r[i].res);
  }
}

static void fleet_teardown(struct fleet *f) {
  close(f->file);
  int fds[] = { f->quiet[0], f->quiet[1], f->full[0], f->full[1], f->pipe_in[0],
                f->pipe_in[1], f->pipe_out[0], f->pipe_out[1], f->dgram[0], f->dgram[1] };
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    close(fds[i]);
  rmdir(f->sub);
  th_rmdir(f->dir);
}

START_TEST(test_fsops_cancel_with_each_new_op_in_flight_gives_one_callback) {
  tl_loop *loop = th_new(_i);
  static struct fleet f;
  fleet_setup(&f);
  fleet_submit(loop, &f);
  for (int i = 0; i < NOPS; i++) {
    int r = tl_op_cancel(loop, &f.op[i]);
    ck_assert_msg(r == 0 || r == -ENOENT, "op %d: cancel %d", i, r);
  }
  TH_RUN_UNTIL(loop, tl_ops_in_flight(loop) == 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  fleet_check(&f);
  fleet_teardown(&f);
  th_destroy(loop);
}
END_TEST

START_TEST(test_fsops_destroy_with_each_new_op_in_flight_gives_one_callback) {
  tl_loop *loop = th_new(_i);
  static struct fleet f;
  fleet_setup(&f);
  fleet_submit(loop, &f);
  tl_run(loop, TL_RUN_NOWAIT);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  fleet_check(&f);
  fleet_teardown(&f);
}
END_TEST

/* A deadline on a new op (a quiet recvmsg) times it out once, with
 * -ETIMEDOUT: on uring through a linked timeout. */
START_TEST(test_fsops_deadline_on_recvmsg_times_out_once) {
  tl_loop *loop = th_new(_i);
  int s[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s), 0);
  char buf[8];
  struct iovec iov = { buf, sizeof buf };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_op_set_timeout(&op, 0.03), 0);
  double t0 = th_time();
  ck_assert_int_eq(tl_recvmsg(loop, &op, s[0], &m, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, -ETIMEDOUT);
  ck_assert(th_time() - t0 >= 0.025);
  /* In time, the datagram wins. */
  r.calls = 0;
  ck_assert_int_eq(send(s[1], "hi", 2, 0), 2);
  ck_assert_int_eq(tl_recvmsg(loop, &op, s[0], &m, 0, th_op_cb), 0);
  WAIT_ONE(loop, r);
  ck_assert_int_eq(r.res, 2);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_fsops_statx_reports_the_size_and_enoent_for_a_missing_path);
  TH_ADD(tc, test_fsops_ftruncate_and_fallocate_set_the_size_and_fail_on_a_bad_fd);
  TH_ADD(tc, test_fsops_mkdirat_renameat_unlinkat_round_trip_and_their_errors);
  TH_ADD(tc, test_fsops_shutdown_gives_the_peer_eof_and_enotsock_on_a_pipe);
  TH_ADD(tc, test_fsops_udp_echo_with_sendmsg_and_recvmsg);
  TH_ADD(tc, test_fsops_scm_rights_passes_an_fd_over_a_unix_socketpair);
  TH_ADD(tc, test_fsops_send_zc_calls_back_once_when_the_buffer_is_free);
  TH_ADD(tc, test_fsops_splice_moves_pipe_bytes_into_a_file_and_rejects_two_files);
  TH_ADD(tc, test_fsops_cancel_with_each_new_op_in_flight_gives_one_callback);
  TH_ADD(tc, test_fsops_destroy_with_each_new_op_in_flight_gives_one_callback);
  TH_ADD(tc, test_fsops_deadline_on_recvmsg_times_out_once);
}

int main(void) {
  return th_main("fsops", add);
}
