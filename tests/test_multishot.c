/* Multishot receive into a provided-buffer ring (tl_recv_multishot): many
 * callbacks per arm, buffers handed out and recycled, the one final
 * callback (EOF, -ENOBUFS, -ECANCELED, errors), destroy and close with an
 * armed op, tl_bufring_free while busy, bad arguments.  On uring the kernel
 * picks the buffers (Linux >= 6.0); elsewhere the loop emulates: the
 * contract is the same, and so are these cases. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"

static void mksocks(int s[2]) {
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
}

/* What one multishot op saw. */
struct ms {
  tl_bufring *ring;
  int msgs;              /* data callbacks */
  int finals;            /* final callbacks (must end at 1) */
  int64_t final_res;
  int data_after_final;  /* a data callback after the final one */
  int in_flight_in_data; /* tl_op_in_flight() was 1 in every data callback */
  int in_flight_in_final;
  int recycle;           /* recycle each buffer inside the callback */
  int cancel_at;         /* tl_op_cancel from the data callback of message n */
  int free_in_final;     /* tl_bufring_free from the final callback */
  int free_res;
  size_t bytes;
  char got[4096];        /* concatenated data */
  unsigned held[64];     /* buffers kept (not recycled) */
  int nheld;
};

static void ms_cb(tl_loop *loop, tl_op *op, int64_t res) {
  struct ms *m = op->data;
  if (res > 0) {
    if (m->finals)
      m->data_after_final++;
    m->msgs++;
    m->in_flight_in_data += tl_op_in_flight(op) ? 0 : 1000;
    unsigned bid = tl_op_bufid(op);
    const char *p = tl_bufring_buf(m->ring, bid);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_le((size_t)res, tl_bufring_bufsize(m->ring));
    if (m->bytes + (size_t)res <= sizeof m->got)
      memcpy(m->got + m->bytes, p, (size_t)res);
    m->bytes += (size_t)res;
    if (m->recycle) {
      ck_assert_int_eq(tl_bufring_recycle(m->ring, bid), 0);
      ck_assert_int_eq(tl_bufring_recycle(m->ring, bid), -EALREADY);
    } else if (m->nheld < 64) {
      m->held[m->nheld++] = bid;
    }
    if (m->cancel_at && m->msgs == m->cancel_at)
      ck_assert_int_eq(tl_op_cancel(loop, op), 0);
    return;
  }
  m->finals++;
  m->final_res = res;
  m->in_flight_in_final = tl_op_in_flight(op);
  if (m->free_in_final)
    m->free_res = tl_bufring_free(loop, m->ring);
}

static void ms_init(struct ms *m, tl_op *op, tl_bufring *ring) {
  memset(m, 0, sizeof *m);
  memset(op, 0, sizeof *op);
  m->ring = ring;
  m->recycle = 1;
  op->data = m;
}

START_TEST(test_ms_many_messages_one_arm_then_eof) {
  tl_loop *loop = th_new(_i);
  tl_bufring *ring;
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 4, 64), 0);
  if (tl_backend(loop) != TL_BACKEND_URING)
    ck_assert_int_eq(tl_bufring_kernel(ring), 0);
  ck_assert_uint_eq(tl_bufring_avail(ring), 4);
  int s[2];
  mksocks(s);
  tl_op op;
  struct ms m;
  ms_init(&m, &op, ring);
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), 0);
  ck_assert(tl_op_in_flight(&op));
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), -EBUSY);
  /* More messages than buffers: recycling keeps it armed. */
  char want[4096];
  size_t wl = 0;
  for (int i = 0; i < 50; i++) {
    char msg[32];
    int n = snprintf(msg, sizeof msg, "message %d;", i);
    ck_assert_int_eq(write(s[1], msg, (size_t)n), n);
    memcpy(want + wl, msg, (size_t)n);
    wl += (size_t)n;
    TH_RUN_UNTIL(loop, m.bytes == wl);
  }
  ck_assert_int_eq(memcmp(m.got, want, wl), 0);
  ck_assert_int_ge(m.msgs, 50);
  ck_assert_int_eq(m.finals, 0);
  ck_assert_int_eq(m.in_flight_in_data, 0);
  ck_assert_uint_eq(tl_bufring_avail(ring), 4);
  ck_assert_int_eq(tl_ops_in_flight(loop), 1);

  /* A message bigger than a buffer arrives in buffer-sized pieces. */
  char big[200];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)('a' + i % 26);
  ck_assert_int_eq(write(s[1], big, sizeof big), (ssize_t)sizeof big);
  TH_RUN_UNTIL(loop, m.bytes == wl + sizeof big);
  ck_assert_int_eq(memcmp(m.got + wl, big, sizeof big), 0);

  /* EOF: the one final callback, with 0, and the op is the caller's. */
  close(s[1]);
  TH_RUN_UNTIL(loop, m.finals == 1);
  ck_assert_int_eq(m.final_res, 0);
  ck_assert_int_eq(m.in_flight_in_final, 0);
  ck_assert_int_eq(tl_op_in_flight(&op), 0);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(m.finals, 1);
  ck_assert_int_eq(m.data_after_final, 0);
  ck_assert_int_eq(tl_bufring_free(loop, ring), 0);
  close(s[0]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_ms_exhaustion_ends_with_enobufs_and_rearm_loses_nothing) {
  tl_loop *loop = th_new(_i);
  tl_bufring *ring;
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 2, 16), 0);
  int s[2];
  mksocks(s);
  tl_op op;
  struct ms m;
  ms_init(&m, &op, ring);
  m.recycle = 0;   /* keep every buffer */
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), 0);
  ck_assert_int_eq(write(s[1], "one", 3), 3);
  TH_RUN_UNTIL(loop, m.msgs == 1);
  ck_assert_int_eq(write(s[1], "two", 3), 3);
  TH_RUN_UNTIL(loop, m.msgs == 2);
  ck_assert_uint_eq(tl_bufring_avail(ring), 0);
  /* The kernel may end it as soon as it looks for a third buffer; the
   * emulation when the third message is there.  Either way: -ENOBUFS. */
  ck_assert_int_eq(write(s[1], "three", 5), 5);
  TH_RUN_UNTIL(loop, m.finals == 1);
  ck_assert_int_eq(m.final_res, -ENOBUFS);
  ck_assert_int_eq(m.msgs, 2);
  ck_assert_int_eq(memcmp(m.got, "onetwo", 6), 0);
  ck_assert_int_eq(tl_op_in_flight(&op), 0);
  /* No buffer: nothing to arm with. */
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), -ENOBUFS);
  ck_assert_int_eq(tl_op_in_flight(&op), 0);
  /* Recycle later, outside any callback, and rearm: the data waited in
   * the socket. */
  ck_assert_int_eq(m.nheld, 2);
  ck_assert_int_eq(tl_bufring_recycle(ring, m.held[0]), 0);
  ck_assert_int_eq(tl_bufring_recycle(ring, m.held[1]), 0);
  ck_assert_int_eq(tl_bufring_recycle(ring, m.held[1]), -EALREADY);
  ck_assert_uint_eq(tl_bufring_avail(ring), 2);
  m.recycle = 1;
  m.finals = 0;
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), 0);
  TH_RUN_UNTIL(loop, m.bytes == 11);
  ck_assert_int_eq(memcmp(m.got, "onetwothree", 11), 0);
  ck_assert_int_eq(tl_op_cancel(loop, &op), 0);
  TH_RUN_UNTIL(loop, m.finals == 1);
  ck_assert_int_eq(m.final_res, -ECANCELED);
  ck_assert_int_eq(tl_bufring_free(loop, ring), 0);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

START_TEST(test_ms_cancel_gives_one_final_ecanceled) {
  tl_loop *loop = th_new(_i);
  tl_bufring *ring;
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 8, 128), 0);
  int s[2];
  mksocks(s);
  tl_op op;
  struct ms m;
  ms_init(&m, &op, ring);
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), 0);
  /* Cancel right after the submit. */
  ck_assert_int_eq(tl_op_cancel(loop, &op), 0);
  ck_assert_int_eq(tl_op_cancel(loop, &op), -EALREADY);
  ck_assert_int_eq(tl_bufring_free(loop, ring), -EBUSY);
  TH_RUN_UNTIL(loop, m.finals == 1);
  ck_assert_int_eq(m.final_res, -ECANCELED);
  ck_assert_int_eq(tl_op_cancel(loop, &op), -ENOENT);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(m.finals, 1);

  /* Cancel from inside a data callback, with more data queued: messages
   * delivered before the final are fine, none after it. */
  ms_init(&m, &op, ring);
  m.cancel_at = 2;
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), 0);
  ck_assert_int_eq(write(s[1], "a", 1), 1);
  TH_RUN_UNTIL(loop, m.msgs == 1);
  ck_assert_int_eq(write(s[1], "b", 1), 1);
  TH_RUN_UNTIL(loop, m.finals == 1);
  ck_assert_int_eq(m.final_res, -ECANCELED);
  ck_assert_int_eq(m.data_after_final, 0);
  ck_assert_int_eq(m.msgs, 2);
  ck_assert_uint_eq(tl_bufring_avail(ring), 8);
  ck_assert_int_eq(tl_run(loop, TL_RUN_NOWAIT), 0);
  ck_assert_int_eq(tl_bufring_free(loop, ring), 0);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

static int close_cb_calls;
static int close_cb_saw_final;
static struct ms *close_ms;
static void close_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  (void)op;
  ck_assert_int_eq(res, 0);
  close_cb_calls++;
  close_cb_saw_final = close_ms->finals;
}

START_TEST(test_ms_close_completes_the_armed_op_first) {
  tl_loop *loop = th_new(_i);
  tl_bufring *ring;
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 4, 64), 0);
  int s[2];
  mksocks(s);
  tl_op op, cop;
  struct ms m;
  ms_init(&m, &op, ring);
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), 0);
  ck_assert_int_eq(write(s[1], "x", 1), 1);
  TH_RUN_UNTIL(loop, m.msgs == 1);
  memset(&cop, 0, sizeof cop);
  close_cb_calls = 0;
  close_ms = &m;
  ck_assert_int_eq(tl_close(loop, &cop, s[0], close_cb), 0);
  TH_RUN_UNTIL(loop, close_cb_calls == 1);
  ck_assert_int_eq(m.finals, 1);
  ck_assert_int_eq(close_cb_saw_final, 1);
  ck_assert_int_eq(m.final_res, -ECANCELED);
  close(s[1]);
  ck_assert_int_eq(tl_bufring_free(loop, ring), 0);
  th_destroy(loop);
}
END_TEST

START_TEST(test_ms_destroy_with_an_armed_op) {
  tl_loop *loop = th_new(_i);
  tl_bufring *ring, *ring2;
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 4, 64), 0);
  ck_assert_int_eq(tl_bufring_new(loop, &ring2, 2, 32), 0);   /* left to destroy */
  int s[2], t[2];
  mksocks(s);
  mksocks(t);
  tl_op op, op2;
  struct ms m, m2;
  ms_init(&m, &op, ring);
  ms_init(&m2, &op2, ring);   /* two ops share one ring */
  m.free_in_final = 1;
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), 0);
  ck_assert_int_eq(tl_recv_multishot(loop, &op2, t[0], ring, 0, ms_cb), 0);
  ck_assert_int_eq(write(s[1], "hello", 5), 5);
  ck_assert_int_eq(write(t[1], "world", 5), 5);
  TH_RUN_UNTIL(loop, m.bytes == 5 && m2.bytes == 5);
  ck_assert_int_eq(memcmp(m.got, "hello", 5), 0);
  ck_assert_int_eq(memcmp(m2.got, "world", 5), 0);
  ck_assert_int_eq(tl_loop_destroy(loop), 0);
  ck_assert_int_eq(m.finals, 1);
  ck_assert_int_eq(m2.finals, 1);
  ck_assert_int_eq(m.final_res, -ECANCELED);
  ck_assert_int_eq(m2.final_res, -ECANCELED);
  /* Busy if the other op's final was still to come; destroy frees what
   * is left either way (ASan sees no leak). */
  ck_assert(m.free_res == 0 || m.free_res == -EBUSY);
  close(s[0]); close(s[1]); close(t[0]); close(t[1]);
}
END_TEST

START_TEST(test_ms_free_in_final_and_busy) {
  tl_loop *loop = th_new(_i);
  tl_bufring *ring;
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 4, 64), 0);
  int s[2];
  mksocks(s);
  tl_op op;
  struct ms m;
  ms_init(&m, &op, ring);
  m.free_in_final = 1;
  m.recycle = 0;
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, ms_cb), 0);
  ck_assert_int_eq(tl_bufring_free(loop, ring), -EBUSY);
  ck_assert_int_eq(write(s[1], "data", 4), 4);
  TH_RUN_UNTIL(loop, m.msgs == 1);
  ck_assert_int_eq(tl_bufring_free(loop, ring), -EBUSY);
  shutdown(s[1], SHUT_WR);
  TH_RUN_UNTIL(loop, m.finals == 1);
  ck_assert_int_eq(m.final_res, 0);
  /* Freed from its final callback, with a buffer still in our hands. */
  ck_assert_int_eq(m.free_res, 0);
  close(s[0]);
  close(s[1]);
  th_destroy(loop);
}
END_TEST

static void never_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop; (void)op; (void)res;
  ck_abort_msg("a callback for an op that was never armed");
}

START_TEST(test_ms_bad_args) {
  tl_loop *loop = th_new(_i);
  tl_loop *other = th_new(_i);
  tl_bufring *ring = (tl_bufring *)1, *oring;
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 0, 64), -EINVAL);
  ck_assert_ptr_null(ring);
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 3, 64), -EINVAL);
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 65536, 64), -EINVAL);
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 4, 0), -EINVAL);
  ck_assert_int_eq(tl_bufring_new(loop, NULL, 4, 64), -EINVAL);
  ck_assert_int_eq(tl_bufring_new(NULL, &ring, 4, 64), -EINVAL);
  ck_assert_int_eq(tl_bufring_new(loop, &ring, 4, 64), 0);
  ck_assert_int_eq(tl_bufring_new(other, &oring, 4, 64), 0);
  ck_assert_ptr_null(tl_bufring_buf(ring, 4));
  ck_assert_ptr_nonnull(tl_bufring_buf(ring, 3));
  /* Page aligned, buffers back to back. */
  ck_assert_uint_eq((uintptr_t)tl_bufring_buf(ring, 0) % 4096, 0);
  ck_assert_ptr_eq((char *)tl_bufring_buf(ring, 1), (char *)tl_bufring_buf(ring, 0) + 64);
  ck_assert_int_eq(tl_bufring_recycle(ring, 4), -EINVAL);
  ck_assert_int_eq(tl_bufring_recycle(ring, 0), -EALREADY);   /* never handed out */
  ck_assert_int_eq(tl_bufring_recycle(NULL, 0), -EINVAL);

  int s[2];
  mksocks(s);
  tl_op op;
  memset(&op, 0, sizeof op);
  ck_assert_int_eq(tl_recv_multishot(loop, &op, -1, ring, 0, never_cb), -EBADF);
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], NULL, 0, never_cb), -EINVAL);
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], ring, 0, NULL), -EINVAL);
  ck_assert_int_eq(tl_recv_multishot(loop, &op, s[0], oring, 0, never_cb), -EINVAL);
  ck_assert_int_eq(tl_recv_multishot(loop, NULL, s[0], ring, 0, never_cb), -EINVAL);
  ck_assert_int_eq(tl_op_in_flight(&op), 0);
  ck_assert_uint_eq(tl_ops_in_flight(loop), 0);
  ck_assert_int_eq(tl_bufring_free(loop, oring), -EINVAL);
  ck_assert_int_eq(tl_bufring_free(loop, NULL), -EINVAL);

  /* A closed fd: refused at once (emulation) or a final -EBADF (uring). */
  struct ms m;
  ms_init(&m, &op, ring);
  int r = tl_recv_multishot(loop, &op, th_closed_fd(), ring, 0, ms_cb);
  if (r == 0) {
    TH_RUN_UNTIL(loop, m.finals == 1);
    ck_assert_int_eq(m.final_res, -EBADF);
  } else {
    ck_assert_int_eq(r, -EBADF);
  }
  ck_assert_int_eq(m.msgs, 0);
  ck_assert_int_eq(tl_bufring_free(other, oring), 0);
  ck_assert_int_eq(tl_bufring_free(loop, ring), 0);
  close(s[0]);
  close(s[1]);
  th_destroy(other);
  th_destroy(loop);
}
END_TEST

static void add(TCase *tc) {
  TH_ADD(tc, test_ms_many_messages_one_arm_then_eof);
  TH_ADD(tc, test_ms_exhaustion_ends_with_enobufs_and_rearm_loses_nothing);
  TH_ADD(tc, test_ms_cancel_gives_one_final_ecanceled);
  TH_ADD(tc, test_ms_close_completes_the_armed_op_first);
  TH_ADD(tc, test_ms_destroy_with_an_armed_op);
  TH_ADD(tc, test_ms_free_in_final_and_busy);
  TH_ADD(tc, test_ms_bad_args);
}

int main(void) { return th_main("multishot", add); }
