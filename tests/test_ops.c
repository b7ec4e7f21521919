/* Completion operations: every op type, results, errors, cancel, close,
 * destroy, the exactly-once rule. */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"

static void mksocks(int s[2]) {
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
}

static void mkpipe(int p[2]) { ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0); }

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

START_TEST(test_op_write_then_read_at_offsets) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile(NULL, 0);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_write(loop, &op, fd, "hello world", 11, 0, th_op_cb), 0);
  ck_assert(tl_op_in_flight(&op));
  ck_assert_uint_eq(tl_ops_in_flight(loop), 1);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 11);
  ck_assert_int_eq(r.in_flight_in_cb, 0);   /* the op is the caller's again */
  ck_assert_int_eq(tl_op_in_flight(&op), 0);

  char buf[16] = "";
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 5, 6, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 5);
  ck_assert_int_eq(memcmp(buf, "world", 5), 0);

  /* Writing at an offset past the end extends the file. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_write(loop, &op, fd, "!", 1, 20, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 1);
  struct stat st;
  ck_assert_int_eq(fstat(fd, &st), 0);
  ck_assert_int_eq(st.st_size, 21);
  /* Explicit offsets leave the file position alone. */
  ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_offset_minus_one_uses_and_advances_the_file_position) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile(NULL, 0);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_write(loop, &op, fd, "abc", 3, -1, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 3);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_write(loop, &op, fd, "def", 3, -1, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 3);
  ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 6);
  char buf[8] = "";
  ck_assert_int_eq(pread(fd, buf, sizeof buf, 0), 6);
  ck_assert_int_eq(memcmp(buf, "abcdef", 6), 0);

  ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
  memset(buf, 0, sizeof buf);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 4, -1, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 4);
  ck_assert_int_eq(memcmp(buf, "abcd", 4), 0);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 4, -1, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 2);
  ck_assert_int_eq(memcmp(buf, "ef", 2), 0);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 4, -1, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 0);   /* EOF */
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_readv_and_writev_scatter_and_gather) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile(NULL, 0);
  tl_op op;
  struct th_opres r;
  struct iovec out[3] = {{"one-", 4}, {"two-", 4}, {"three", 5}};
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_writev(loop, &op, fd, out, 3, 2, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 13);
  char whole[32] = "";
  ck_assert_int_eq(pread(fd, whole, sizeof whole, 0), 15);
  ck_assert_int_eq(memcmp(whole + 2, "one-two-three", 13), 0);

  char a[6] = "", b[20] = "";
  struct iovec in[2] = {{a, 6}, {b, 20}};
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_readv(loop, &op, fd, in, 2, 2, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 13);
  ck_assert_int_eq(memcmp(a, "one-tw", 6), 0);
  ck_assert_int_eq(memcmp(b, "o-three", 7), 0);

  /* -1: at the file position, which moves. */
  ck_assert_int_eq(lseek(fd, 0, SEEK_END), 15);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_writev(loop, &op, fd, out, 1, -1, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 4);
  ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 19);
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_fsync_and_fdatasync_succeed) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile("data", 4);
  tl_op a, b;
  struct th_opres ra, rb;
  th_op_prep(&a, &ra);
  th_op_prep(&b, &rb);
  ck_assert_int_eq(tl_fsync(loop, &a, fd, th_op_cb), 0);
  ck_assert_int_eq(tl_fdatasync(loop, &b, fd, th_op_cb), 0);
  ck_assert_uint_eq(tl_ops_in_flight(loop), 2);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(ra.calls, 1);
  ck_assert_int_eq(rb.calls, 1);
  ck_assert_int_eq(ra.res, 0);
  ck_assert_int_eq(rb.res, 0);
  /* Through the callback: fsync of a closed fd number. */
  int closed = th_closed_fd();
  th_op_prep(&a, &ra);
  ck_assert_int_eq(tl_fsync(loop, &a, closed, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(ra.calls, 1);
  ck_assert_int_eq(ra.res, -EBADF);
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_openat_creates_and_close_closes) {
  tl_loop *loop = th_new(_i);
  char dir[4096], path[4200];
  th_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/a", dir);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_openat(loop, &op, AT_FDCWD, path, O_CREAT | O_RDWR | O_CLOEXEC, 0600, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_ge(r.res, 0);
  int fd = (int)r.res;
  ck_assert(fd_is_open(fd));
  ck_assert_int_eq(write(fd, "x", 1), 1);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_size, 1);
  ck_assert_int_eq(st.st_mode & 0777, 0600);

  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_close(loop, &op, fd, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 0);
  ck_assert(!fd_is_open(fd));

  /* Relative to a directory fd. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_ge(dfd, 0);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_openat(loop, &op, dfd, "a", O_RDONLY | O_CLOEXEC, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_ge(r.res, 0);
  char c = 0;
  ck_assert_int_eq(read((int)r.res, &c, 1), 1);
  ck_assert_int_eq(c, 'x');
  close((int)r.res);

  /* Errors come through the callback. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_openat(loop, &op, dfd, "missing", O_RDONLY | O_CLOEXEC, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, -ENOENT);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_openat(loop, &op, dfd, "a", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, -EEXIST);
  close(dfd);
  th_rmdir(dir);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_accept_connect_send_recv_round_trip) {
  tl_loop *loop = th_new(_i);
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int lfd = th_listener(&addr, &addrlen);
  int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(cfd, 0);

  tl_op acc, con;
  struct th_opres racc, rcon;
  struct sockaddr_storage peer;
  socklen_t peerlen = sizeof peer;
  th_op_prep(&acc, &racc);
  th_op_prep(&con, &rcon);
  ck_assert_int_eq(tl_accept(loop, &acc, lfd, (struct sockaddr *)&peer, &peerlen, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(racc.calls, 0);   /* nobody has connected yet */
  ck_assert_int_eq(tl_connect(loop, &con, cfd, (struct sockaddr *)&addr, addrlen, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(racc.calls, 1);
  ck_assert_int_eq(rcon.calls, 1);
  ck_assert_int_eq(rcon.res, 0);
  ck_assert_int_ge(racc.res, 0);
  int afd = (int)racc.res;
  ck_assert(fcntl(afd, F_GETFD) & FD_CLOEXEC);
  ck_assert_int_eq(peer.ss_family, AF_INET);
  ck_assert_int_eq(peerlen, sizeof(struct sockaddr_in));
  struct sockaddr_in local;
  socklen_t locallen = sizeof local;
  ck_assert_int_eq(getsockname(cfd, (struct sockaddr *)&local, &locallen), 0);
  ck_assert_int_eq(((struct sockaddr_in *)&peer)->sin_port, local.sin_port);

  /* ping from the client, pong back */
  char buf[16] = "";
  tl_op snd, rcv;
  struct th_opres rs, rr;
  th_op_prep(&snd, &rs);
  th_op_prep(&rcv, &rr);
  ck_assert_int_eq(tl_recv(loop, &rcv, afd, buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(rr.calls, 0);
  ck_assert_int_eq(tl_send(loop, &snd, cfd, "ping", 4, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(rs.res, 4);
  ck_assert_int_eq(rr.res, 4);
  ck_assert_int_eq(memcmp(buf, "ping", 4), 0);

  th_op_prep(&snd, &rs);
  th_op_prep(&rcv, &rr);
  ck_assert_int_eq(tl_send(loop, &snd, afd, "pong", 4, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_recv(loop, &rcv, cfd, buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(rs.calls + rr.calls, 2);
  ck_assert_int_eq(rr.res, 4);
  ck_assert_int_eq(memcmp(buf, "pong", 4), 0);

  /* Peer closes: recv sees EOF. */
  close(afd);
  th_op_prep(&rcv, &rr);
  ck_assert_int_eq(tl_recv(loop, &rcv, cfd, buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(rr.calls, 1);
  ck_assert_int_eq(rr.res, 0);

  /* accept without an address */
  int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_eq(connect(c2, (struct sockaddr *)&addr, addrlen), 0);
  th_op_prep(&acc, &racc);
  ck_assert_int_eq(tl_accept(loop, &acc, lfd, NULL, NULL, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_ge(racc.res, 0);
  close((int)racc.res);
  close(c2);
  close(cfd);
  close(lfd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_connect_to_a_closed_port_is_refused) {
  tl_loop *loop = th_new(_i);
  /* A port bound but not listening: refused, and (unlike a port just
   * closed) nothing running in parallel can start listening on it. */
  int bfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(bfd, 0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(bfd, (struct sockaddr *)&sin, sizeof sin), 0);
  struct sockaddr_storage addr;
  socklen_t addrlen = sizeof addr;
  ck_assert_int_eq(getsockname(bfd, (struct sockaddr *)&addr, &addrlen), 0);
  int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_connect(loop, &op, cfd, (struct sockaddr *)&addr, addrlen, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, -ECONNREFUSED);
  close(cfd);
  close(bfd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_reads_at_eof_return_zero) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile("abc", 3);
  int p[2], s[2];
  mkpipe(p);
  mksocks(s);
  close(p[1]);
  close(s[1]);
  char buf[8];
  tl_op a, b, c;
  struct th_opres ra, rb, rc;
  th_op_prep(&a, &ra);
  th_op_prep(&b, &rb);
  th_op_prep(&c, &rc);
  ck_assert_int_eq(tl_read(loop, &a, fd, buf, sizeof buf, 3, th_op_cb), 0);
  ck_assert_int_eq(tl_read(loop, &b, p[0], buf, sizeof buf, -1, th_op_cb), 0);
  ck_assert_int_eq(tl_recv(loop, &c, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(ra.calls + rb.calls + rc.calls, 3);
  ck_assert_int_eq(ra.res, 0);
  ck_assert_int_eq(rb.res, 0);
  ck_assert_int_eq(rc.res, 0);
  close(fd);
  close(p[0]);
  close(s[0]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_read_on_an_empty_pipe_waits_without_blocking_the_loop) {
  tl_loop *loop = th_new(_i);
  int p[2];
  mkpipe(p);   /* blocking fds: the loop must not block on them */
  char buf[8] = "";
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, p[0], buf, sizeof buf, -1, th_op_cb), 0);
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(r.calls, 0);
  ck_assert(tl_op_in_flight(&op));
  ck_assert_int_eq(write(p[1], "hi", 2), 2);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 2);
  ck_assert_int_eq(memcmp(buf, "hi", 2), 0);
  /* A pipe ignores the offset. */
  ck_assert_int_eq(write(p[1], "yo", 2), 2);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, p[0], buf, sizeof buf, 5, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 2);
  ck_assert_int_eq(memcmp(buf, "yo", 2), 0);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_write(loop, &op, p[1], "z", 1, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 1);
  close(p[0]);
  close(p[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_errors_arrive_through_the_callback) {
  tl_loop *loop = th_new(_i);
  char dir[4096], path[4200];
  th_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/f", dir);
  int wo = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  int ro = open(path, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(wo, 0);
  ck_assert_int_ge(ro, 0);
  int p[2];
  mkpipe(p);
  int closed = th_closed_fd();
  int closed2 = closed - 1;   /* a different number, so the close cancels nothing */
  ck_assert(!fd_is_open(closed2));
  char buf[8];
  enum { N = 6 };
  tl_op op[N];
  struct th_opres r[N];
  for (int k = 0; k < N; k++)
    th_op_prep(&op[k], &r[k]);
  ck_assert_int_eq(tl_read(loop, &op[0], wo, buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_write(loop, &op[1], ro, "x", 1, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_recv(loop, &op[2], p[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_read(loop, &op[3], closed, buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_close(loop, &op[4], closed2, th_op_cb), 0);
  ck_assert_int_eq(tl_accept(loop, &op[5], ro, NULL, NULL, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  for (int k = 0; k < N; k++)
    ck_assert_msg(r[k].calls == 1, "op %d: %d calls", k, r[k].calls);
  ck_assert_int_eq(r[0].res, -EBADF);
  ck_assert_int_eq(r[1].res, -EBADF);
  ck_assert_int_eq(r[2].res, -ENOTSOCK);
  ck_assert_int_eq(r[3].res, -EBADF);
  ck_assert_int_eq(r[4].res, -EBADF);
  ck_assert_int_eq(r[5].res, -ENOTSOCK);
  close(wo);
  close(ro);
  close(p[0]);
  close(p[1]);
  th_rmdir(dir);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_sync_errors_hand_nothing_over) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile("abc", 3);
  char buf[8];
  struct iovec iov = {buf, sizeof buf};
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, -1, buf, sizeof buf, 0, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_write(loop, &op, -5, buf, sizeof buf, 0, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_recv(loop, &op, -1, buf, sizeof buf, 0, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_send(loop, &op, -1, buf, sizeof buf, 0, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_fsync(loop, &op, -1, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_fdatasync(loop, &op, -1, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_close(loop, &op, -1, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_accept(loop, &op, -1, NULL, NULL, 0, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_readv(loop, &op, -1, &iov, 1, 0, th_op_cb), -EBADF);
  ck_assert_int_eq(tl_read(loop, &op, fd, NULL, 1, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_write(loop, &op, fd, NULL, 1, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_recv(loop, &op, fd, NULL, 1, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_send(loop, &op, fd, NULL, 1, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, (size_t)SSIZE_MAX + 1, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_write(loop, &op, fd, buf, SIZE_MAX, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_readv(loop, &op, fd, &iov, -1, 0, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_readv(loop, &op, fd, NULL, 1, 0, th_op_cb), -EINVAL);
  memset(&op, 0, sizeof op);
  op.data = &r;
  op.type = TL_OP__COUNT;
  op.fd = fd;
  op.cb = th_op_cb;
  ck_assert_int_eq(tl_op_submit(loop, &op), -EINVAL);
  op.type = TL_OP_NONE;
  ck_assert_int_eq(tl_op_submit(loop, &op), -EINVAL);
  op.type = -3;
  ck_assert_int_eq(tl_op_submit(loop, &op), -EINVAL);
  /* Nothing was handed over. */
  ck_assert_int_eq(tl_op_in_flight(&op), 0);
  ck_assert_uint_eq(tl_ops_in_flight(loop), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(r.calls, 0);
  /* The same op still works afterwards; len 0 with a NULL buffer is fine. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, NULL, 0, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 0);
  /* The generic submit of a filled-in op. */
  th_op_prep(&op, &r);
  op.type = TL_OP_READ;
  op.fd = fd;
  op.cb = th_op_cb;
  op.u.rw.buf = buf;
  op.u.rw.len = 3;
  op.u.rw.off = 0;
  ck_assert_int_eq(tl_op_submit(loop, &op), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 3);
  ck_assert_int_eq(memcmp(buf, "abc", 3), 0);
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_resubmit_while_in_flight_is_ebusy) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  char buf[8];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), -EBUSY);
  ck_assert_int_eq(tl_read(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), -EBUSY);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), -EBUSY);
  ck_assert_uint_eq(tl_ops_in_flight(loop), 1);
  /* The refused resubmits did not disturb the op in flight. */
  ck_assert_int_eq(write(s[1], "abc", 3), 3);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 3);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

#define MANY_OPS 128

START_TEST(test_op_every_callback_runs_exactly_once) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile(NULL, 0);
  static tl_op op[MANY_OPS];
  static struct th_opres r[MANY_OPS];
  static char data[MANY_OPS][8], back[MANY_OPS][8];
  for (int k = 0; k < MANY_OPS; k++) {
    snprintf(data[k], sizeof data[k], "%07u", (unsigned)k % 10000000u);
    th_op_prep(&op[k], &r[k]);
    ck_assert_int_eq(tl_write(loop, &op[k], fd, data[k], 8, 8 * k, th_op_cb), 0);
  }
  ck_assert_uint_eq(tl_ops_in_flight(loop), MANY_OPS);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  for (int k = 0; k < MANY_OPS; k++) {
    ck_assert_int_eq(r[k].calls, 1);
    ck_assert_int_eq(r[k].res, 8);
  }
  for (int k = 0; k < MANY_OPS; k++) {
    th_op_prep(&op[k], &r[k]);
    ck_assert_int_eq(tl_read(loop, &op[k], fd, back[k], 8, 8 * k, th_op_cb), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  for (int k = 0; k < MANY_OPS; k++) {
    ck_assert_int_eq(r[k].calls, 1);
    ck_assert_int_eq(r[k].res, 8);
    ck_assert_int_eq(memcmp(back[k], data[k], 8), 0);
  }
  /* Later iterations call nobody again. */
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  for (int k = 0; k < MANY_OPS; k++)
    ck_assert_int_eq(r[k].calls, 1);
  struct tl_loop_stats st;
  tl_loop_stats(loop, &st);
  ck_assert_uint_eq(st.ops_submitted, 2 * MANY_OPS);
  ck_assert_uint_eq(st.ops_completed, 2 * MANY_OPS);
  close(fd);
  th_destroy(loop);
}
END_TEST

/* Cancel a blocked op: either before or after the loop has handed it to the
 * backend. */
static void cancel_blocked(int i, int run_first, int use_pipe) {
  tl_loop *loop = th_new(i);
  int s[2];
  if (use_pipe)
    mkpipe(s);
  else
    mksocks(s);
  char buf[8];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  if (use_pipe)
    ck_assert_int_eq(tl_read(loop, &op, s[0], buf, sizeof buf, -1, th_op_cb), 0);
  else
    ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  if (run_first)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(r.calls, 0);
  ck_assert_int_eq(tl_op_cancel(loop, &op), 0);
  ck_assert_int_eq(tl_op_cancel(loop, &op), -EALREADY);
  ck_assert_int_eq(r.calls, 0);   /* never from inside cancel */
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, -ECANCELED);
  ck_assert_int_eq(tl_op_cancel(loop, &op), -ENOENT);
  /* The fd is still fine and nothing was consumed. */
  ck_assert_int_eq(write(s[1], "q", 1), 1);
  ck_assert_int_eq(read(s[0], buf, 1), 1);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}

START_TEST(test_op_cancel_blocked_recv_gives_ecanceled) { cancel_blocked(_i, 1, 0); }
END_TEST
START_TEST(test_op_cancel_recv_before_it_reaches_the_backend) { cancel_blocked(_i, 0, 0); }
END_TEST
START_TEST(test_op_cancel_blocked_pipe_read_gives_ecanceled) { cancel_blocked(_i, 1, 1); }
END_TEST

static void cancel_self_cb(tl_loop *loop, tl_op *op, int64_t res) {
  th_op_cb(loop, op, res);
  struct th_opres *r = op->data;
  r->order = tl_op_cancel(loop, op);   /* reused as the result slot */
}

START_TEST(test_op_cancel_after_completion_is_enoent) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile("abc", 3);
  char buf[4];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_op_cancel(loop, &op), -ENOENT);   /* never submitted */
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 3, 0, cancel_self_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 3);
  ck_assert_int_eq(r.order, -ENOENT);   /* from inside its own callback */
  ck_assert_int_eq(tl_op_cancel(loop, &op), -ENOENT);
  ck_assert_int_eq(r.calls, 1);
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_cancel_of_a_finished_but_uncalled_op_keeps_its_result) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  ck_assert_int_eq(write(s[1], "abc", 3), 3);
  char buf[8];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  int c = tl_op_cancel(loop, &op);
  ck_assert_int_eq(c, 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  /* Either result is allowed; a cancelled op must not have eaten data. */
  ck_assert_msg(r.res == 3 || r.res == -ECANCELED, "res %lld", (long long)r.res);
  if (r.res == -ECANCELED)
    ck_assert_int_eq(read(s[0], buf, sizeof buf), 3);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_cancel_on_another_loop_is_enoent) {
  tl_loop *a = th_new(_i), *b = th_new(_i);
  int s[2];
  mksocks(s);
  char buf[8];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(a, &op, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_op_cancel(b, &op), -ENOENT);
  ck_assert_int_eq(tl_run(b, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(write(s[1], "z", 1), 1);
  ck_assert_int_eq(tl_run(a, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 1);
  close(s[0]);
  close(s[1]);
  th_destroy(a);
  th_destroy(b);
}
END_TEST

static void close_with_recv(int i, int run_first) {
  tl_loop *loop = th_new(i);
  int s[2];
  mksocks(s);
  char buf[8];
  int seq = 0;
  tl_op rcv, cls;
  struct th_opres rr, rc;
  th_op_prep(&rcv, &rr);
  th_op_prep(&cls, &rc);
  rr.seq = rc.seq = &seq;
  ck_assert_int_eq(tl_recv(loop, &rcv, s[0], buf, sizeof buf, 0, th_op_cb), 0);
  if (run_first)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_close(loop, &cls, s[0], th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(rr.calls, 1);
  ck_assert_int_eq(rc.calls, 1);
  ck_assert_int_eq(rr.res, -ECANCELED);
  ck_assert_int_eq(rc.res, 0);
  ck_assert_int_eq(rr.order, 1);   /* the recv is completed before the close */
  ck_assert_int_eq(rc.order, 2);
  ck_assert(!fd_is_open(s[0]));
  close(s[1]);
  th_destroy(loop);
}

START_TEST(test_op_close_with_a_recv_in_flight_cancels_it_first) { close_with_recv(_i, 1); }
END_TEST
START_TEST(test_op_close_right_after_recv_submit_cancels_it_first) { close_with_recv(_i, 0); }
END_TEST

START_TEST(test_op_cancel_fd_cancels_only_that_fd) {
  tl_loop *loop = th_new(_i);
  int s[2], t[2];
  mksocks(s);
  mksocks(t);
  char b1[8], b2[8], b3[8];
  tl_op o1, o2, o3;
  struct th_opres r1, r2, r3;
  th_op_prep(&o1, &r1);
  th_op_prep(&o2, &r2);
  th_op_prep(&o3, &r3);
  ck_assert_int_eq(tl_recv(loop, &o1, s[0], b1, sizeof b1, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_recv(loop, &o2, s[0], b2, sizeof b2, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_recv(loop, &o3, t[0], b3, sizeof b3, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_cancel_fd(loop, s[0]), 2);
  ck_assert_int_eq(tl_cancel_fd(loop, 12345), 0);
  TH_RUN_UNTIL(loop, r1.calls + r2.calls == 2);
  ck_assert_int_eq(r1.res, -ECANCELED);
  ck_assert_int_eq(r2.res, -ECANCELED);
  ck_assert_int_eq(r3.calls, 0);
  ck_assert(tl_op_in_flight(&o3));
  ck_assert_int_eq(write(t[1], "ok", 2), 2);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r3.calls, 1);
  ck_assert_int_eq(r3.res, 2);
  ck_assert_int_eq(r1.calls + r2.calls, 2);
  close(s[0]);
  close(s[1]);
  close(t[0]);
  close(t[1]);
  th_destroy(loop);
}
END_TEST

/* During destroy, callbacks try to submit again: -ESHUTDOWN. */
struct destroy_res {
  struct th_opres r;
  int resubmit;
  char buf[8];
};
static int destroying, destroy_fd;

static void destroy_cb(tl_loop *loop, tl_op *op, int64_t res) {
  th_op_cb(loop, op, res);
  struct destroy_res *d = op->data;
  if (destroying)
    d->resubmit = tl_read(loop, op, destroy_fd, d->buf, sizeof d->buf, 0, destroy_cb);
}

static void destroy_with_ops(int i, int run_first) {
  tl_loop *loop = th_new(i);
  int s[2], p[2];
  mksocks(s);
  mkpipe(p);
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int lfd = th_listener(&addr, &addrlen);
  int fd = th_tmpfile(NULL, 0);
  enum { N = 4 };
  tl_op op[N];
  struct destroy_res d[N];
  for (int k = 0; k < N; k++) {
    memset(&d[k], 0, sizeof d[k]);
    th_op_prep(&op[k], &d[k].r);
    op[k].data = &d[k];
  }
  ck_assert_int_eq(tl_recv(loop, &op[0], s[0], d[0].buf, sizeof d[0].buf, 0, destroy_cb), 0);
  ck_assert_int_eq(tl_read(loop, &op[1], p[0], d[1].buf, sizeof d[1].buf, -1, destroy_cb), 0);
  ck_assert_int_eq(tl_accept(loop, &op[2], lfd, NULL, NULL, 0, destroy_cb), 0);
  ck_assert_int_eq(tl_write(loop, &op[3], fd, "data", 4, 0, destroy_cb), 0);
  if (run_first)
    ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  for (int k = 0; k < 3; k++)
    ck_assert_int_eq(d[k].r.calls, 0);
  destroying = 1;
  destroy_fd = fd;
  int r = tl_loop_destroy(loop);
  destroying = 0;
  ck_assert_int_eq(r, 0);
  for (int k = 0; k < N; k++) {
    if (run_first && k == 3 && d[k].r.calls == 1 && d[k].r.res == 4)
      continue;   /* it may well have finished in the NOWAIT run */
    ck_assert_msg(d[k].r.calls == 1, "op %d: %d calls", k, d[k].r.calls);
    ck_assert_msg(d[k].resubmit == -ESHUTDOWN, "op %d: resubmit gave %d", k, d[k].resubmit);
  }
  for (int k = 0; k < 3; k++)
    ck_assert_msg(d[k].r.res == -ECANCELED, "op %d: %lld", k, (long long)d[k].r.res);
  ck_assert_msg(d[3].r.res == 4 || d[3].r.res == -ECANCELED, "write: %lld",
                (long long)d[3].r.res);
  /* Nothing was consumed behind our back: the fds are all still usable. */
  ck_assert(fd_is_open(s[0]) && fd_is_open(p[0]) && fd_is_open(lfd));
  close(s[0]);
  close(s[1]);
  close(p[0]);
  close(p[1]);
  close(lfd);
  close(fd);
}

START_TEST(test_op_destroy_runs_every_callback_of_ops_in_the_backend) { destroy_with_ops(_i, 1); }
END_TEST
START_TEST(test_op_destroy_runs_every_callback_of_ops_just_submitted) { destroy_with_ops(_i, 0); }
END_TEST

/* A callback resubmits its own op to read a file chunk by chunk. */
struct chain {
  int fd;
  char *dst;
  size_t got, chunk;
  int calls;
  int64_t last;
};

static void chain_cb(tl_loop *loop, tl_op *op, int64_t res) {
  struct chain *c = op->data;
  c->calls++;
  c->last = res;
  if (res <= 0)
    return;
  c->got += (size_t)res;
  ck_assert_int_eq(tl_read(loop, op, c->fd, c->dst + c->got, c->chunk, (int64_t)c->got, chain_cb), 0);
}

START_TEST(test_op_resubmit_from_the_callback_reads_a_file_in_chunks) {
  tl_loop *loop = th_new(_i);
  enum { SIZE = 64 * 1024, CHUNK = 4096 };
  char *src = malloc(SIZE), *dst = calloc(1, SIZE + CHUNK);
  for (int k = 0; k < SIZE; k++)
    src[k] = (char)(k * 131 + 7);
  int fd = th_tmpfile(src, SIZE);
  struct chain c = {.fd = fd, .dst = dst, .chunk = CHUNK};
  tl_op op;
  memset(&op, 0, sizeof op);
  op.data = &c;
  ck_assert_int_eq(tl_read(loop, &op, fd, dst, CHUNK, 0, chain_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(c.last, 0);
  ck_assert_int_eq(c.got, SIZE);
  ck_assert_int_eq(c.calls, SIZE / CHUNK + 1);
  ck_assert_int_eq(memcmp(src, dst, SIZE), 0);
  free(src);
  free(dst);
  close(fd);
  th_destroy(loop);
}
END_TEST

/* A megabyte through a socketpair, both sides resubmitting from callbacks. */
struct stream {
  int fd;
  char *buf;
  size_t done, total;
  int calls;
  int64_t err;
};

static void send_more_cb(tl_loop *loop, tl_op *op, int64_t res) {
  struct stream *s = op->data;
  s->calls++;
  if (res < 0) {
    s->err = res;
    return;
  }
  s->done += (size_t)res;
  if (s->done < s->total)
    ck_assert_int_eq(tl_send(loop, op, s->fd, s->buf + s->done, s->total - s->done, 0, send_more_cb), 0);
}

static void recv_more_cb(tl_loop *loop, tl_op *op, int64_t res) {
  struct stream *s = op->data;
  s->calls++;
  if (res <= 0) {
    s->err = res ? res : -1;
    return;
  }
  s->done += (size_t)res;
  if (s->done < s->total)
    ck_assert_int_eq(tl_recv(loop, op, s->fd, s->buf + s->done, s->total - s->done, 0, recv_more_cb), 0);
}

START_TEST(test_op_a_megabyte_streams_through_a_socketpair) {
  tl_loop *loop = th_new(_i);
  enum { SIZE = 1 << 20 };
  int sp[2];
  mksocks(sp);
  char *src = malloc(SIZE), *dst = calloc(1, SIZE);
  for (int k = 0; k < SIZE; k++)
    src[k] = (char)(k ^ (k >> 8));
  struct stream tx = {.fd = sp[0], .buf = src, .total = SIZE};
  struct stream rx = {.fd = sp[1], .buf = dst, .total = SIZE};
  tl_op so, ro;
  memset(&so, 0, sizeof so);
  memset(&ro, 0, sizeof ro);
  so.data = &tx;
  ro.data = &rx;
  ck_assert_int_eq(tl_recv(loop, &ro, rx.fd, dst, SIZE, 0, recv_more_cb), 0);
  ck_assert_int_eq(tl_send(loop, &so, tx.fd, src, SIZE, 0, send_more_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(tx.err, 0);
  ck_assert_int_eq(rx.err, 0);
  ck_assert_int_eq(tx.done, SIZE);
  ck_assert_int_eq(rx.done, SIZE);
  ck_assert_int_eq(memcmp(src, dst, SIZE), 0);
  free(src);
  free(dst);
  close(sp[0]);
  close(sp[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_send_to_a_closed_peer_is_epipe_not_sigpipe) {
  tl_loop *loop = th_new(_i);
  int s[2];
  mksocks(s);
  close(s[1]);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  /* SIGPIPE is at its default (the harness sets it): a leak kills us. */
  ck_assert_int_eq(tl_send(loop, &op, s[0], "x", 1, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, -EPIPE);
  close(s[0]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_huge_lengths_are_clamped_like_the_syscalls) {
  tl_loop *loop = th_new(_i);
  /* 4 GiB does not fit the 32-bit length of an SQE: a backend that
   * truncates reads 0 bytes instead of 10. */
  size_t huge = (size_t)1 << 32;
  char *buf = malloc(64);
  int fd = th_tmpfile("0123456789", 10);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, huge, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 10);
  ck_assert_int_eq(memcmp(buf, "0123456789", 10), 0);

  int s[2];
  mksocks(s);
  ck_assert_int_eq(write(s[1], "hello", 5), 5);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, s[0], buf, huge, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 5);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);

  /* SSIZE_MAX itself is legal to ask for. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, (size_t)SSIZE_MAX, 8, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_msg(r.res == 2 || r.res == -EFAULT || r.res == -EINVAL, "res %lld", (long long)r.res);
  free(buf);
  close(fd);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

/* RLIMIT_NOFILE caps the pool's threads (each worker has an eventfd), and
 * on threadpool every recv holds a worker while its peer is quiet.  Recvs
 * beyond what the pool can start must not wait forever: the one whose peer
 * sends calls back (with its data or the spawn error), and every recv is
 * called back exactly once by destroy.  In a child: the limit is its own. */
#define NLIM 20
START_TEST(test_op_recvs_beyond_the_threads_the_fd_limit_allows_all_call_back) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
#define CHK(c) do { if (!(c)) { fprintf(stderr, "child: line %d: %s\n", __LINE__, #c); _exit(1); } } while (0)
    alarm(TH_CASE_TIMEOUT - 2);
    tl_loop *loop = NULL;
    CHK(tl_loop_new(&loop, (unsigned)th_id(_i)) == 0);
    int hi = dup(0);
    CHK(hi >= 0);
    close(hi);
    static int sv[NLIM][2];
    static char buf[NLIM][8];
    static tl_op op[NLIM];
    static struct th_opres r[NLIM];
    /* Room for the socketpairs and a few more: the pool gets a handful
     * of threads at most. */
    struct rlimit rl;
    CHK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rl.rlim_cur = (rlim_t)(hi + 2 * NLIM + 4);
    CHK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    for (int i = 0; i < NLIM; i++) {
      CHK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]) == 0);
      th_op_prep(&op[i], &r[i]);
      CHK(tl_recv(loop, &op[i], sv[i][0], buf[i], sizeof buf[i], 0, th_op_cb) == 0);
    }
    tl_run(loop, TL_RUN_NOWAIT);
    CHK(write(sv[NLIM - 1][1], "last", 4) == 4);
    double end = th_time() + 5;
    while (!r[NLIM - 1].calls && th_time() < end)
      CHK(tl_run(loop, TL_RUN_ONCE) >= 0);
    if (!r[NLIM - 1].calls)
      fprintf(stderr, "child: the recv with data never called back\n");
    CHK(r[NLIM - 1].calls == 1);
    CHK(r[NLIM - 1].res == 4 || r[NLIM - 1].res == -EMFILE || r[NLIM - 1].res == -EAGAIN);
    for (int i = 0; i < NLIM - 1; i++)
      CHK(r[i].calls == 0 || r[i].res == -EMFILE || r[i].res == -EAGAIN);
    CHK(tl_loop_destroy(loop) == 0);
    for (int i = 0; i < NLIM; i++) {
      CHK(r[i].calls == 1);
      close(sv[i][0]);
      close(sv[i][1]);
    }
    _exit(0);
#undef CHK
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "child failed (status 0x%x), see its message on stderr", st);
}
END_TEST

/* In a forked child Check's assertions cannot report: say what failed on
 * stderr and exit non-zero; the parent asserts a clean exit. */
static void tick_cb(tl_loop *loop, tl_timer *w, unsigned ev) {
  (void)loop;
  (void)w;
  (void)ev;
}

/* Runs until *calls is set or secs pass; a repeating timer bounds each
 * TL_RUN_ONCE, so a stuck op ends the wait instead of hanging it. */
static void child_run_until(tl_loop *loop, const int *calls, double secs) {
  double end = th_time() + secs;
  while (!*calls && th_time() < end)
    CHILD_CHECK(tl_run(loop, TL_RUN_ONCE) >= 0);
}

/* Ops that wait for a peer (recv, splice) never hold one of the pool's
 * TRILOOP_THREADS_MAX work slots, on any backend: with a bound of 1, two
 * idle recvs and a splice from an empty pipe must not keep a file read
 * queued.  epoll runs only the splice and the read on the pool; uring is
 * told to (TRILOOP_URING_POOL_OPS).  In a child: the pool reads
 * TRILOOP_THREADS_MAX once per process, at its first use. */
static void idle_waits_child(int id) {
  enum { N = 2 };
  setenv("TRILOOP_URING_POOL_OPS", "recv,splice,read", 1);
  setenv("TRILOOP_THREADS_MAX", "1", 1);
  tl_loop *loop = NULL;
  CHILD_CHECK(tl_loop_new(&loop, id) == 0);
  tl_timer tick;
  tl_timer_init(&tick, tick_cb, 0.05, 0.05);
  CHILD_CHECK(tl_timer_start(loop, &tick) == 0);
  int sv[N][2], in[2], out[2];
  tl_op rv[N], sp, rd;
  struct th_opres rvr[N], spr, rr;
  char bufs[N][8], b[8];
  for (int i = 0; i < N; i++) {
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]) == 0);
    th_op_prep(&rv[i], &rvr[i]);
    CHILD_CHECK(tl_recv(loop, &rv[i], sv[i][0], bufs[i], sizeof bufs[i], 0, th_op_cb) == 0);
  }
  CHILD_CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
  th_op_prep(&sp, &spr);
  CHILD_CHECK(tl_splice(loop, &sp, in[0], -1, out[1], -1, 4, 0, th_op_cb) == 0);
  /* Let every waiting op settle on its worker first. */
  double settle = th_time() + 0.2;
  while (th_time() < settle)
    CHILD_CHECK(tl_run(loop, TL_RUN_ONCE) >= 0);
  int fd = th_tmpfile("hello", 5);
  th_op_prep(&rd, &rr);
  CHILD_CHECK(tl_read(loop, &rd, fd, b, sizeof b, 0, th_op_cb) == 0);
  child_run_until(loop, &rr.calls, 3);
  if (!rr.calls)
    fprintf(stderr, "child (%s): the file read is stuck behind idle recvs and a splice\n",
            tl_backend_id_name(id));
  CHILD_CHECK(rr.calls == 1);
  CHILD_CHECK(rr.res == 5 && memcmp(b, "hello", 5) == 0);
  CHILD_CHECK(spr.calls == 0);
  for (int i = 0; i < N; i++)
    CHILD_CHECK(rvr[i].calls == 0);
  /* The waiting ops still complete. */
  CHILD_CHECK(write(in[1], "pipe", 4) == 4);
  child_run_until(loop, &spr.calls, 5);
  CHILD_CHECK(spr.calls == 1 && spr.res == 4);
  for (int i = 0; i < N; i++) {
    CHILD_CHECK(write(sv[i][1], "ping", 4) == 4);
    child_run_until(loop, &rvr[i].calls, 5);
    CHILD_CHECK(rvr[i].calls == 1 && rvr[i].res == 4);
  }
  CHILD_CHECK(tl_timer_stop(loop, &tick) == 0);
  CHILD_CHECK(tl_loop_destroy(loop) == 0);
  _exit(0);
}

START_TEST(test_op_idle_recvs_and_splice_do_not_starve_a_file_read) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    idle_waits_child(th_id(_i));
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "child failed (status 0x%x), see its message on stderr", st);
}
END_TEST

/* A connection whose recv always completes at once (a peek at data that
 * stays queued) resubmits from its callback forever.  A second connection's
 * recv, with data waiting, must still be called back: the loop bounds the
 * callbacks of inline completions per iteration and goes back to the
 * kernel. */
struct busy {
  tl_op op;
  int fd;
  char buf[1];
  long calls;
  int stop;
};

static void busy_cb(tl_loop *loop, tl_op *op, int64_t res) {
  struct busy *b = (struct busy *)op;
  ck_assert_int_eq(res, 1);
  b->calls++;
  if (!b->stop)
    ck_assert_int_eq(tl_recv(loop, &b->op, b->fd, b->buf, 1, MSG_PEEK, busy_cb), 0);
}

START_TEST(test_ops_inline_completions_do_not_starve_another_connection) {
  tl_loop *loop = th_new(_i);
  int a[2], c[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c), 0);
  ck_assert_int_eq(write(a[1], "x", 1), 1);
  struct busy b;
  memset(&b, 0, sizeof b);
  b.fd = a[0];
  ck_assert_int_eq(tl_recv(loop, &b.op, b.fd, b.buf, 1, MSG_PEEK, busy_cb), 0);
  /* Let the busy connection get going first. */
  TH_RUN_UNTIL(loop, b.calls >= 10);
  tl_op op;
  struct th_opres r;
  char buf[4];
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_recv(loop, &op, c[0], buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(write(c[1], "y", 1), 1);
  TH_RUN_UNTIL(loop, r.calls);
  ck_assert_int_eq(r.res, 1);
  b.stop = 1;
  long at = b.calls;
  TH_RUN_UNTIL(loop, !tl_op_in_flight(&b.op));
  ck_assert_int_ge(b.calls, at);
  close(a[0]);
  close(a[1]);
  close(c[0]);
  close(c[1]);
  th_destroy(loop);
}
END_TEST

/* TL_FLAG_FILE_NOWAIT: a page-cached read completes inline (epoll,
 * threadpool: counted as a hit), an O_DIRECT fd never goes inline, a read
 * of a page that is not cached goes to the pool after an EAGAIN, and every
 * result is the right one.  uring accepts the flag and ignores it. */
static tl_loop *nowait_loop(int i) {
  tl_loop *loop;
  ck_assert_int_eq(tl_loop_new(&loop, (unsigned)th_id(i) | TL_FLAG_FILE_NOWAIT), 0);
  return loop;
}

static int nowait_backend(tl_loop *loop) { return tl_backend(loop) != TL_BACKEND_URING; }

START_TEST(test_op_file_nowait_cached_read_is_inline_and_correct) {
  tl_loop *loop = nowait_loop(_i);
  char src[8192];
  for (size_t k = 0; k < sizeof src; k++)
    src[k] = (char)(k * 7 + 3);
  int fd = th_tmpfile(src, sizeof src);
  struct tl_pool_stats s0, s1;
  tl_pool_stats(&s0);
  char buf[4096];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, sizeof buf, 1000, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, (int64_t)sizeof buf);
  ck_assert_int_eq(memcmp(buf, src + 1000, sizeof buf), 0);
  /* A read across EOF: the short result is the op's result. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, sizeof buf, 6000, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 8192 - 6000);
  ck_assert_int_eq(memcmp(buf, src + 6000, 8192 - 6000), 0);
  /* A write goes inline too where the kernel allows it; either way it lands. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_write(loop, &op, fd, "xyz", 3, 10, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 3);
  ck_assert_int_eq(pread(fd, buf, 3, 10), 3);
  ck_assert_int_eq(memcmp(buf, "xyz", 3), 0);
  tl_pool_stats(&s1);
  if (nowait_backend(loop)) {
    ck_assert_uint_ge(s1.nowait_hits - s0.nowait_hits, 2);
    ck_assert_uint_le(s1.completed - s0.completed, 1);   /* at most the write went to the pool */
  } else {
    ck_assert_uint_eq(s1.nowait_hits, s0.nowait_hits);
  }
  close(fd);
  th_destroy(loop);
}
END_TEST

START_TEST(test_op_file_nowait_never_inline_on_an_o_direct_fd) {
  char dir[4096], path[4200];
  th_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/direct", dir);
  int wfd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ck_assert_int_ge(wfd, 0);
  char *buf;
  ck_assert_int_eq(posix_memalign((void **)&buf, 4096, 8192), 0);
  memset(buf, 'd', 8192);
  ck_assert_int_eq(pwrite(wfd, buf, 8192, 0), 8192);
  close(wfd);
  int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {   /* a filesystem without O_DIRECT (tmpfs): nothing to show */
    free(buf);
    th_rmdir(dir);
    return;
  }
  tl_loop *loop = nowait_loop(_i);
  struct tl_pool_stats s0, s1;
  tl_pool_stats(&s0);
  memset(buf, 0, 8192);
  for (int k = 0; k < 3; k++) {
    tl_op op;
    struct th_opres r;
    th_op_prep(&op, &r);
    ck_assert_int_eq(tl_read(loop, &op, fd, buf, 4096, 4096, th_op_cb), 0);
    ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
    ck_assert_int_eq(r.res, 4096);
    ck_assert_int_eq(buf[0], 'd');
  }
  tl_pool_stats(&s1);
  ck_assert_uint_eq(s1.nowait_hits, s0.nowait_hits);
  ck_assert_uint_eq(s1.nowait_eagain, s0.nowait_eagain);
  if (nowait_backend(loop))
    ck_assert_uint_ge(s1.completed - s0.completed, 3);   /* all three on the pool */
  close(fd);
  th_destroy(loop);
  free(buf);
  th_rmdir(dir);
}
END_TEST

START_TEST(test_op_file_nowait_uncached_read_goes_to_the_pool) {
  char dir[4096], path[4200];
  th_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/cold", dir);
  int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ck_assert_int_ge(fd, 0);
  enum { SIZE = 1 << 20 };
  char *src = malloc(SIZE);
  for (int k = 0; k < SIZE; k++)
    src[k] = (char)(k * 13 + 1);
  ck_assert_int_eq(pwrite(fd, src, SIZE, 0), SIZE);
  ck_assert_int_eq(fdatasync(fd), 0);
  ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  tl_loop *loop = nowait_loop(_i);
  struct tl_pool_stats s0, s1;
  tl_pool_stats(&s0);
  char buf[4096];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, sizeof buf, SIZE / 2, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, (int64_t)sizeof buf);
  ck_assert_int_eq(memcmp(buf, src + SIZE / 2, sizeof buf), 0);
  tl_pool_stats(&s1);
  if (nowait_backend(loop)) {
    /* tmpfs keeps every page: then the read was a hit, which is right too. */
    ck_assert_uint_eq((s1.nowait_eagain - s0.nowait_eagain) + (s1.nowait_hits - s0.nowait_hits), 1);
    if (s1.nowait_eagain > s0.nowait_eagain)
      ck_assert_uint_ge(s1.completed - s0.completed, 1);
  } else {
    ck_assert_uint_eq(s1.nowait_eagain, s0.nowait_eagain);
  }
  close(fd);
  th_destroy(loop);
  free(src);
  th_rmdir(dir);
}
END_TEST

START_TEST(test_op_file_nowait_env_is_checked) {
  setenv("TRILOOP_FILE_NOWAIT", "2", 1);
  tl_loop *loop = NULL;
  ck_assert_int_eq(tl_loop_new(&loop, (unsigned)th_id(_i)), -EINVAL);
  char why[160];
  ck_assert_int_eq(tl_env_check(why, sizeof why), -EINVAL);
  ck_assert_ptr_nonnull(strstr(why, "TRILOOP_FILE_NOWAIT"));
  setenv("TRILOOP_FILE_NOWAIT", "1", 1);
  ck_assert_int_eq(tl_loop_new(&loop, (unsigned)th_id(_i)), 0);
  unsetenv("TRILOOP_FILE_NOWAIT");
  char src[100];
  memset(src, 'q', sizeof src);
  int fd = th_tmpfile(src, sizeof src);
  struct tl_pool_stats s0, s1;
  tl_pool_stats(&s0);
  char buf[100];
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, sizeof buf, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 100);
  tl_pool_stats(&s1);
  ck_assert_uint_eq(s1.nowait_hits - s0.nowait_hits, (nowait_backend(loop) ? 1u : 0u));
  close(fd);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_op_recvs_beyond_the_threads_the_fd_limit_allows_all_call_back);
  TH_ADD(tc, test_op_write_then_read_at_offsets);
  TH_ADD(tc, test_op_offset_minus_one_uses_and_advances_the_file_position);
  TH_ADD(tc, test_op_readv_and_writev_scatter_and_gather);
  TH_ADD(tc, test_op_fsync_and_fdatasync_succeed);
  TH_ADD(tc, test_op_openat_creates_and_close_closes);
  TH_ADD(tc, test_op_accept_connect_send_recv_round_trip);
  TH_ADD(tc, test_op_connect_to_a_closed_port_is_refused);
  TH_ADD(tc, test_op_reads_at_eof_return_zero);
  TH_ADD(tc, test_op_read_on_an_empty_pipe_waits_without_blocking_the_loop);
  TH_ADD(tc, test_op_errors_arrive_through_the_callback);
  TH_ADD(tc, test_op_sync_errors_hand_nothing_over);
  TH_ADD(tc, test_op_resubmit_while_in_flight_is_ebusy);
  TH_ADD(tc, test_op_every_callback_runs_exactly_once);
  TH_ADD(tc, test_op_cancel_blocked_recv_gives_ecanceled);
  TH_ADD(tc, test_op_cancel_recv_before_it_reaches_the_backend);
  TH_ADD(tc, test_op_cancel_blocked_pipe_read_gives_ecanceled);
  TH_ADD(tc, test_op_cancel_after_completion_is_enoent);
  TH_ADD(tc, test_op_cancel_of_a_finished_but_uncalled_op_keeps_its_result);
  TH_ADD(tc, test_op_cancel_on_another_loop_is_enoent);
  TH_ADD(tc, test_op_close_with_a_recv_in_flight_cancels_it_first);
  TH_ADD(tc, test_op_close_right_after_recv_submit_cancels_it_first);
  TH_ADD(tc, test_op_cancel_fd_cancels_only_that_fd);
  TH_ADD(tc, test_op_destroy_runs_every_callback_of_ops_in_the_backend);
  TH_ADD(tc, test_op_destroy_runs_every_callback_of_ops_just_submitted);
  TH_ADD(tc, test_op_resubmit_from_the_callback_reads_a_file_in_chunks);
  TH_ADD(tc, test_op_a_megabyte_streams_through_a_socketpair);
  TH_ADD(tc, test_op_send_to_a_closed_peer_is_epipe_not_sigpipe);
  TH_ADD(tc, test_op_huge_lengths_are_clamped_like_the_syscalls);
  TH_ADD(tc, test_op_idle_recvs_and_splice_do_not_starve_a_file_read);
  TH_ADD(tc, test_ops_inline_completions_do_not_starve_another_connection);
  TH_ADD(tc, test_op_file_nowait_cached_read_is_inline_and_correct);
  TH_ADD(tc, test_op_file_nowait_never_inline_on_an_o_direct_fd);
  TH_ADD(tc, test_op_file_nowait_uncached_read_goes_to_the_pool);
  TH_ADD(tc, test_op_file_nowait_env_is_checked);
}

int main(void) { return th_main("ops", add); }
