/*
 * Shared helpers for the behaviour suite.
 *
 * Every test program runs the same cases over every backend that works on
 * this machine.  Each backend gets its own TCase named after it, and every
 * case is a Check loop test whose index is the backend to use (th_id(_i)),
 * so a failure line reads "...:F:epoll:test_io_xxx:2: ...".
 *
 * TRILOOP_TEST_BACKENDS=uring,epoll restricts the list (default: all
 * three).  A backend that does not work prints "SKIP <name>: <reason>" and is
 * left out; if none is left the program exits 77 (automake's SKIP).
 */
#ifndef TL_TEST_HARNESS_H
#define TL_TEST_HARNESS_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "triloop.h"

/* In a forked child Check's assertions cannot report: say what failed on
 * stderr and exit non-zero; the parent asserts a clean exit. */
#define CHILD_CHECK(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "child: %s:%d: %s failed\n", __FILE__, __LINE__, #cond); \
      _exit(1);                                                                \
    }                                                                          \
  } while (0)

/* Seconds Check gives every case before it counts as a (named) failure. */
#define TH_CASE_TIMEOUT 10

/* Backend id for the loop index of a loop test. */
int th_id(int i);
const char *th_name(int i);

/* A new loop on backend th_id(i); asserts success and that the loop reports
 * that backend. */
tl_loop *th_new(int i);

/* Ends every case: nothing in flight, destroy returns 0. */
void th_destroy(tl_loop *loop);

/* Monotonic seconds, independent of the library's clock. */
double th_time(void);
void th_sleep(double seconds);

/* An unlinked temporary file opened O_RDWR, optionally filled. */
int th_tmpfile(const void *content, size_t len);
/* A fresh temporary directory; its path is written into buf. */
void th_tmpdir(char *buf, size_t len);
/* Removes a directory made by th_tmpdir and the files in it. */
void th_rmdir(const char *path);

/* An fd number that is not open (a high one: the library opens fds of its
 * own lazily, which would take a freshly closed low number). */
int th_closed_fd(void);

/* A listening TCP socket on 127.0.0.1 with an ephemeral port (blocking). */
int th_listener(struct sockaddr_storage *addr, socklen_t *addrlen);

/* Raises RLIMIT_NOFILE to at least n; returns the soft limit now in force. */
long th_raise_nofile(long n);

/*
 * Runs TL_RUN_ONCE iterations until cond holds.  Fails (with the condition's
 * text) if the loop runs out of work first, tl_run fails, or nothing
 * happens for a long time (a generous deadline, not a timing assertion: it
 * only turns a hang into a message before Check's timeout).
 */
#define TH_RUN_UNTIL(loop, cond)                                              \
  do {                                                                        \
    double th__end = th_time() + (TH_CASE_TIMEOUT - 2);                       \
    while (!(cond)) {                                                         \
      int th__r = tl_run((loop), TL_RUN_ONCE);                                \
      ck_assert_msg(th__r >= 0, "tl_run: %s (%d) while waiting for %s",       \
                    tl_strerror(th__r), th__r, #cond);                        \
      if (cond)                                                               \
        break;                                                                \
      ck_assert_msg(th__r == 1, "the loop ran out of work before %s", #cond); \
      ck_assert_msg(th_time() < th__end, "gave up waiting for %s", #cond);    \
    }                                                                         \
  } while (0)

/* The callback-counting op most op tests use: op->data points at one. */
struct th_opres {
  int calls;
  int64_t res;
  int order;            /* value of *seq when the callback ran */
  int *seq;             /* optional shared sequence counter */
  int in_flight_in_cb;  /* tl_op_in_flight(op) seen inside the callback */
};
void th_op_cb(tl_loop *loop, tl_op *op, int64_t res);
/* Zeroes op and r and links them. */
void th_op_prep(tl_op *op, struct th_opres *r);

/*
 * Builds the suite: calls add(tc) once per working backend with a TCase named
 * after it; add registers its cases with TH_ADD.  Runs it (fork mode, as
 * configured by CK_FORK), prints per-backend counts and returns the exit
 * status (0 pass, 1 failures, 77 nothing to run).
 */
int th_main(const char *suite, void (*add)(TCase *tc));

/* The loop index range of the TCase being built by th_main. */
extern int th__lo;
#define TH_ADD(tc, fn) tcase_add_loop_test((tc), (fn), th__lo, th__lo + 1)

#endif
