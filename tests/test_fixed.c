/* Registered buffers and files: tl_register_buffers/files, the fixed
 * variants of read and write, their validation (the same on every
 * backend), the in-flight rule, tl_close's slot, destroy and fork. */
#include <fcntl.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"

static void *page_buf(size_t len) {
  void *p = NULL;
  ck_assert_int_eq(posix_memalign(&p, 4096, len), 0);
  memset(p, 0, len);
  return p;
}

static void mkpipe(int p[2]) { ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0); }

START_TEST(test_fixed_register_unregister_and_double_register) {
  tl_loop *loop = th_new(_i);
  char *a = page_buf(8192);
  struct iovec iov[2] = { { a, 4096 }, { a + 4096, 4096 } };
  ck_assert_int_eq(tl_unregister_buffers(loop), -ENXIO);
  ck_assert_int_eq(tl_register_buffers(loop, iov, 2), 0);
  /* The kernel's rule: a second table only after the first is gone. */
  ck_assert_int_eq(tl_register_buffers(loop, iov, 2), -EBUSY);
  ck_assert_int_eq(tl_unregister_buffers(loop), 0);
  ck_assert_int_eq(tl_unregister_buffers(loop), -ENXIO);
  ck_assert_int_eq(tl_register_buffers(loop, iov, 1), 0);
  ck_assert_int_eq(tl_unregister_buffers(loop), 0);

  int fd = th_tmpfile("x", 1);
  int fds[3] = { fd, -1, fd };
  ck_assert_int_eq(tl_unregister_files(loop), -ENXIO);
  ck_assert_int_eq(tl_register_files(loop, fds, 3), 0);
  ck_assert_int_eq(tl_register_files(loop, fds, 1), -EBUSY);
  ck_assert_int_eq(tl_unregister_files(loop), 0);
  ck_assert_int_eq(tl_unregister_files(loop), -ENXIO);
  ck_assert_int_eq(tl_register_files(loop, fds, 1), 0);
  ck_assert_int_eq(tl_unregister_files(loop), 0);
  close(fd);
  free(a);
  th_destroy(loop);
}
END_TEST

START_TEST(test_fixed_bad_tables_are_refused_and_change_nothing) {
  tl_loop *loop = th_new(_i);
  char *a = page_buf(4096);
  struct iovec iov[2] = { { a, 4096 }, { NULL, 4096 } };
  ck_assert_int_eq(tl_register_buffers(loop, NULL, 1), -EINVAL);
  ck_assert_int_eq(tl_register_buffers(loop, iov, 0), -EINVAL);
  ck_assert_int_eq(tl_register_buffers(loop, iov, 100000), -EINVAL);
  ck_assert_int_eq(tl_register_buffers(loop, iov, 2), -EFAULT);   /* NULL with a length */
  struct iovec big = { a, (size_t)2 << 30 };
  ck_assert_int_eq(tl_register_buffers(loop, &big, 1), -EFAULT);
  ck_assert_int_eq(tl_unregister_buffers(loop), -ENXIO);          /* nothing was kept */

  int closed = th_closed_fd(), neg = -2;
  ck_assert_int_eq(tl_register_files(loop, NULL, 1), -EINVAL);
  ck_assert_int_eq(tl_register_files(loop, &closed, 1), -EBADF);
  ck_assert_int_eq(tl_register_files(loop, &neg, 1), -EBADF);
  ck_assert_int_eq(tl_unregister_files(loop), -ENXIO);
  ck_assert_int_eq(tl_update_files(loop, 0, &neg, 1), -ENXIO);
  ck_assert_int_eq(tl_register_buffers(NULL, iov, 1), -EINVAL);
  free(a);
  th_destroy(loop);
}
END_TEST

/* Write from one registered buffer, read back into a piece of another,
 * through a registered file, then the plain ops on the same fd. */
START_TEST(test_fixed_write_then_read_round_trip) {
  tl_loop *loop = th_new(_i);
  char *a = page_buf(8192);
  struct iovec iov[2] = { { a, 4096 }, { a + 4096, 4096 } };
  ck_assert_int_eq(tl_register_buffers(loop, iov, 2), 0);
  int fd = th_tmpfile(NULL, 0);
  ck_assert_int_eq(tl_register_files(loop, &fd, 1), 0);

  memcpy(a, "registered buffers", 18);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_write_fixed(loop, &op, fd, a, 18, 100, 0, th_op_cb), 0);
  ck_assert_int_eq(op.type, TL_OP_WRITE_FIXED);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 18);

  th_op_prep(&op, &r);
  char *dst = a + 4096 + 1000;   /* inside buffer 1, not at its start */
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, dst, 10, 100 + 11, 1, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.res, 7);    /* short at the end of the file */
  ck_assert_int_eq(memcmp(dst, "buffers", 7), 0);

  /* The last byte of a buffer is still inside it. */
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a + 4095, 1, 100, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 1);
  ck_assert_int_eq(a[4095], 'r');

  /* Plain ops on a registered fd go through its registered file too. */
  char buf[8] = "";
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 8, 100, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 8);
  ck_assert_int_eq(memcmp(buf, "register", 8), 0);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_fsync(loop, &op, fd, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 0);

  /* Generic submit of a filled-in fixed op. */
  memset(&op, 0, sizeof op);
  th_op_prep(&op, &r);
  op.type = TL_OP_READ_FIXED;
  op.fd = fd;
  op.cb = th_op_cb;
  op.u.rw.buf = a + 4096;
  op.u.rw.len = 4;
  op.u.rw.off = 100;
  op.u.rw.buf_index = 1;
  ck_assert_int_eq(tl_op_submit(loop, &op), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 4);
  ck_assert_int_eq(memcmp(a + 4096, "regi", 4), 0);

  ck_assert_int_eq(tl_unregister_files(loop), 0);
  ck_assert_int_eq(tl_unregister_buffers(loop), 0);
  close(fd);
  free(a);
  th_destroy(loop);
}
END_TEST

START_TEST(test_fixed_bad_index_is_einval_and_out_of_range_is_efault) {
  tl_loop *loop = th_new(_i);
  char *a = page_buf(3 * 4096);
  int fd = th_tmpfile("0123456789", 10);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  /* Nothing registered yet: no index is valid. */
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a, 10, 0, 0, th_op_cb), -EINVAL);
  /* Buffer 0 is the middle page; slot 1 is empty. */
  struct iovec iov[2] = { { a + 4096, 4096 }, { NULL, 0 } };
  ck_assert_int_eq(tl_register_buffers(loop, iov, 2), 0);
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a + 4096, 10, 0, 2, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a + 4096, 10, 0, 1, th_op_cb), -EINVAL);
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a + 4096, 10, 0, 1u << 31, th_op_cb), -EINVAL);
  /* Starts before the buffer, ends after it, lies wholly outside it. */
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a + 4095, 10, 0, 0, th_op_cb), -EFAULT);
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a + 8190, 10, 0, 0, th_op_cb), -EFAULT);
  ck_assert_int_eq(tl_write_fixed(loop, &op, fd, a + 8192, 1, 0, 0, th_op_cb), -EFAULT);
  ck_assert_int_eq(tl_write_fixed(loop, &op, fd, a, 4096, 0, 0, th_op_cb), -EFAULT);
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a + 4096, 4097, 0, 0, th_op_cb), -EFAULT);
  /* Nothing was handed over. */
  ck_assert_int_eq(tl_op_in_flight(&op), 0);
  ck_assert_uint_eq(tl_ops_in_flight(loop), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(r.calls, 0);
  /* The whole buffer is fine. */
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a + 4096, 4096, 0, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 10);
  ck_assert_int_eq(memcmp(a + 4096, "0123456789", 10), 0);
  close(fd);
  free(a);
  th_destroy(loop);
}
END_TEST

/* Unregistering while an op uses the table: -EBUSY until its callback. */
START_TEST(test_fixed_unregister_with_ops_in_flight_is_ebusy) {
  tl_loop *loop = th_new(_i);
  char *a = page_buf(4096);
  struct iovec iov = { a, 4096 };
  int p[2], q[2];
  mkpipe(p);
  mkpipe(q);
  ck_assert_int_eq(tl_register_buffers(loop, &iov, 1), 0);
  ck_assert_int_eq(tl_register_files(loop, &q[0], 1), 0);
  tl_op op1, op2;
  struct th_opres r1, r2;
  th_op_prep(&op1, &r1);
  th_op_prep(&op2, &r2);
  char plain[8];
  /* A fixed read on an empty pipe, and a plain read through a registered
   * file: both wait for data. */
  ck_assert_int_eq(tl_read_fixed(loop, &op1, p[0], a, 16, -1, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_read(loop, &op2, q[0], plain, sizeof plain, -1, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_unregister_buffers(loop), -EBUSY);
  ck_assert_int_eq(tl_unregister_files(loop), -EBUSY);
  ck_assert_int_eq(write(p[1], "abc", 3), 3);
  TH_RUN_UNTIL(loop, r1.calls == 1);
  ck_assert_int_eq(r1.res, 3);
  ck_assert_int_eq(memcmp(a, "abc", 3), 0);
  ck_assert_int_eq(tl_unregister_buffers(loop), 0);
  ck_assert_int_eq(tl_unregister_files(loop), -EBUSY);
  /* A cancelled op holds the table until it has completed (some backends
   * complete a cancelled op at once, uring only when the kernel answers),
   * and never past its callback. */
  ck_assert_int_eq(tl_op_cancel(loop, &op2), 0);
  int u = tl_unregister_files(loop);
  ck_assert_msg(u == 0 || u == -EBUSY, "unregister: %d", u);
  TH_RUN_UNTIL(loop, r2.calls == 1);
  ck_assert_int_eq(r2.res, -ECANCELED);
  if (u == -EBUSY)
    ck_assert_int_eq(tl_unregister_files(loop), 0);
  close(p[0]);
  close(p[1]);
  close(q[0]);
  close(q[1]);
  free(a);
  th_destroy(loop);
}
END_TEST

static void count_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct th_opres *r = op->data;
  r->calls++;
  r->res = res;
}

/* Destroy with buffers and files registered and fixed ops in flight: every
 * callback runs, nothing leaks (the ASan build checks). */
START_TEST(test_fixed_destroy_with_registered_buffers_and_ops_in_flight) {
  tl_loop *loop = th_new(_i);
  char *a = page_buf(2 * 4096);
  struct iovec iov[2] = { { a, 4096 }, { a + 4096, 4096 } };
  int p[2];
  mkpipe(p);
  ck_assert_int_eq(tl_register_buffers(loop, iov, 2), 0);
  ck_assert_int_eq(tl_register_files(loop, &p[0], 1), 0);
  tl_op op[2];
  struct th_opres r[2];
  for (int i = 0; i < 2; i++) {
    th_op_prep(&op[i], &r[i]);
    ck_assert_int_eq(tl_read_fixed(loop, &op[i], p[0], a + 4096 * i, 4096, -1, (unsigned)i,
                                   count_cb), 0);
  }
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 1);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(r[i].calls, 1);
    ck_assert_int_eq(r[i].res, -ECANCELED);
  }
  /* The memory is the caller's again. */
  free(a);
  close(p[0]);
  close(p[1]);

  /* And with nothing in flight at all. */
  loop = th_new(_i);
  a = page_buf(4096);
  iov[0].iov_base = a;
  ck_assert_int_eq(tl_register_buffers(loop, iov, 1), 0);
  int fd = th_tmpfile("z", 1);
  ck_assert_int_eq(tl_register_files(loop, &fd, 1), 0);
  th_destroy(loop);
  free(a);
  close(fd);
}
END_TEST

/* tl_close of a registered fd empties its slot: once the number names
 * another file, ops on it read that file, not the one registered. */
START_TEST(test_fixed_close_takes_the_fd_out_of_the_table) {
  tl_loop *loop = th_new(_i);
  int fd = th_tmpfile("old file", 8);
  int fds[2] = { -1, fd };
  ck_assert_int_eq(tl_register_files(loop, fds, 2), 0);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_close(loop, &op, fd, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 0);
  int other = th_tmpfile("new file", 8);   /* most likely fd's number already */
  if (other != fd) {
    ck_assert_int_eq(dup2(other, fd), fd);
    close(other);
  }
  char buf[8] = "";
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 8, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 8);
  ck_assert_int_eq(memcmp(buf, "new file", 8), 0);
  /* The table itself stays registered. */
  ck_assert_int_eq(tl_unregister_files(loop), 0);
  close(fd);
  th_destroy(loop);
}
END_TEST

/* tl_update_files fills and empties slots; the fd's ops follow. */
START_TEST(test_fixed_update_files) {
  tl_loop *loop = th_new(_i);
  int empty[2] = { -1, -1 };
  ck_assert_int_eq(tl_register_files(loop, empty, 2), 0);
  int fd = th_tmpfile("updated", 7);
  ck_assert_int_eq(tl_update_files(loop, 1, &fd, 1), 0);
  ck_assert_int_eq(tl_update_files(loop, 2, &fd, 1), -EINVAL);
  ck_assert_int_eq(tl_update_files(loop, 1, &fd, 2), -EINVAL);
  ck_assert_int_eq(tl_update_files(loop, 0, NULL, 1), -EINVAL);
  int closed = th_closed_fd();
  ck_assert_int_eq(tl_update_files(loop, 0, &closed, 1), -EBADF);
  char buf[8] = "";
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 7, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 7);
  ck_assert_int_eq(memcmp(buf, "updated", 7), 0);
  ck_assert_int_eq(tl_update_files(loop, 1, &empty[0], 1), 0);
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read(loop, &op, fd, buf, 7, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 7);
  close(fd);
  th_destroy(loop);
}
END_TEST

/*
 * On uring an op on a registered fd goes through the registered file, not
 * the fd table: swap another file under the fd number with dup2 (behind
 * the loop's back, which the header warns against) and a read still sees
 * the registered one.  The other backends read whatever the fd names.
 */
START_TEST(test_fixed_registered_file_is_what_uring_reads) {
  tl_loop *loop = th_new(_i);
  char *a = page_buf(4096);
  struct iovec iov = { a, 4096 };
  ck_assert_int_eq(tl_register_buffers(loop, &iov, 1), 0);
  int fd = th_tmpfile("registered", 10);
  ck_assert_int_eq(tl_register_files(loop, &fd, 1), 0);
  int other = th_tmpfile("swapped in", 10);
  ck_assert_int_eq(dup2(other, fd), fd);
  close(other);
  tl_op op;
  struct th_opres r;
  th_op_prep(&op, &r);
  ck_assert_int_eq(tl_read_fixed(loop, &op, fd, a, 10, 0, 0, th_op_cb), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_DEFAULT), 0);
  ck_assert_int_eq(r.res, 10);
  const char *want = th_id(_i) == TL_BACKEND_URING ? "registered" : "swapped in";
  ck_assert_msg(!memcmp(a, want, 10), "read '%.10s', wanted '%s'", a, want);
  ck_assert_int_eq(tl_unregister_files(loop), 0);
  close(fd);
  free(a);
  th_destroy(loop);
}
END_TEST

/* A child's new ring gets the same registrations (tl_loop_fork). */
START_TEST(test_fixed_fork_registers_again_in_the_child) {
  tl_loop *loop = th_new(_i);
  char *a = page_buf(4096);
  struct iovec iov = { a, 4096 };
  ck_assert_int_eq(tl_register_buffers(loop, &iov, 1), 0);
  int fd = th_tmpfile("forked", 6);
  ck_assert_int_eq(tl_register_files(loop, &fd, 1), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int ok = tl_loop_fork(loop) == 0;
    tl_op op;
    struct th_opres r;
    th_op_prep(&op, &r);
    ok = ok && tl_read_fixed(loop, &op, fd, a, 6, 0, 0, th_op_cb) == 0;
    ok = ok && tl_run(loop, TL_RUN_DEFAULT) == 0 && r.res == 6 && !memcmp(a, "forked", 6);
    ok = ok && tl_unregister_buffers(loop) == 0 && tl_unregister_files(loop) == 0;
    _exit(ok ? 0 : 1);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert(WIFEXITED(st));
  ck_assert_int_eq(WEXITSTATUS(st), 0);
  close(fd);
  free(a);
  th_destroy(loop);
}
END_TEST

/* Without CAP_IPC_LOCK, uring charges registered buffers to RLIMIT_MEMLOCK
 * (every kernel): over it, -ENOMEM, and the loop keeps working.  The other
 * backends pin nothing. */
static int drop_ipc_lock(void) {
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &h, d) < 0)
    return -1;
  d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  return (int)syscall(SYS_capset, &h, d);
}

START_TEST(test_fixed_over_rlimit_memlock_is_enomem_on_uring) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    struct rlimit rl = { 64 << 10, 64 << 10 };
    if (drop_ipc_lock() < 0 || setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
      _exit(3);
    tl_loop *loop;
    if (tl_loop_new(&loop, (unsigned)th_id(_i) | TL_FLAG_NOENV) < 0)
      _exit(4);
    size_t big = 1 << 20;
    char *a = page_buf(big);
    struct iovec iov = { a, big };
    int want = th_id(_i) == TL_BACKEND_URING ? -ENOMEM : 0;
    int r = tl_register_buffers(loop, &iov, 1);
    if (r != want)
      _exit(5);
    if (r == 0 && tl_unregister_buffers(loop) != 0)
      _exit(6);
    iov.iov_len = 16 << 10;   /* under the limit */
    if (tl_register_buffers(loop, &iov, 1) != 0)
      _exit(7);
    tl_loop_destroy(loop);
    _exit(0);
  }
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert(WIFEXITED(st));
  ck_assert_msg(WEXITSTATUS(st) == 0, "child step %d failed", WEXITSTATUS(st));
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_fixed_register_unregister_and_double_register);
  TH_ADD(tc, test_fixed_bad_tables_are_refused_and_change_nothing);
  TH_ADD(tc, test_fixed_write_then_read_round_trip);
  TH_ADD(tc, test_fixed_bad_index_is_einval_and_out_of_range_is_efault);
  TH_ADD(tc, test_fixed_unregister_with_ops_in_flight_is_ebusy);
  TH_ADD(tc, test_fixed_destroy_with_registered_buffers_and_ops_in_flight);
  TH_ADD(tc, test_fixed_close_takes_the_fd_out_of_the_table);
  TH_ADD(tc, test_fixed_update_files);
  TH_ADD(tc, test_fixed_registered_file_is_what_uring_reads);
  TH_ADD(tc, test_fixed_fork_registers_again_in_the_child);
  TH_ADD(tc, test_fixed_over_rlimit_memlock_is_enomem_on_uring);
}

int main(void) { return th_main("fixed", add); }
