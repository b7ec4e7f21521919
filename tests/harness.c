#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

static int th_ids[TL_BACKEND_COUNT];
static int th_count;
int th__lo;

int th_id(int i) {
  ck_assert_msg(i >= 0 && i < th_count, "loop index %d out of range", i);
  return th_ids[i];
}

const char *th_name(int i) { return tl_backend_id_name(th_id(i)); }

tl_loop *th_new(int i) {
  tl_loop *loop = NULL;
  int id = th_id(i);
  int r = tl_loop_new(&loop, (unsigned)id);
  ck_assert_msg(r == 0, "tl_loop_new(%s): %s (%d)", tl_backend_id_name(id),
                tl_strerror(r), r);
  ck_assert_ptr_nonnull(loop);
  ck_assert_int_eq(tl_backend(loop), id);
  ck_assert_str_eq(tl_backend_name(loop), tl_backend_id_name(id));
  return loop;
}

void th_destroy(tl_loop *loop) {
  ck_assert_uint_eq(tl_ops_in_flight(loop), 0);
  int r = tl_loop_destroy(loop);
  ck_assert_msg(r == 0, "tl_loop_destroy: %s (%d)", tl_strerror(r), r);
}

double th_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void th_sleep(double seconds) {
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static const char *tmpbase(void) {
  const char *t = getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

int th_tmpfile(const void *content, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/triloop-test-XXXXXX", tmpbase());
  int fd = mkstemp(path);
  ck_assert_msg(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
  unlink(path);
  if (len) {
    ck_assert_int_eq(pwrite(fd, content, len, 0), (ssize_t)len);
  }
  return fd;
}

void th_tmpdir(char *buf, size_t len) {
  snprintf(buf, len, "%s/triloop-test-XXXXXX", tmpbase());
  ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp: %s", strerror(errno));
}

void th_rmdir(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
        unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
  }
  rmdir(path);
}

int th_closed_fd(void) {
  for (int fd = 1000; fd > 500; fd--)
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
      return fd;
  ck_abort_msg("no free fd number between 500 and 1000");
  return -1;
}

int th_listener(struct sockaddr_storage *addr, socklen_t *addrlen) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  ck_assert_int_eq(listen(fd, 64), 0);
  *addrlen = sizeof *addr;
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, addrlen), 0);
  return fd;
}

long th_raise_nofile(long n) {
  struct rlimit rl;
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < n) {
    if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < n)
      rl.rlim_max = (rlim_t)n;   /* works as root; otherwise we use what we have */
    rl.rlim_cur = (rlim_t)n;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      getrlimit(RLIMIT_NOFILE, &rl);
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? n : (long)rl.rlim_cur;
}

void th_op_cb(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop;
  struct th_opres *r = op->data;
  r->calls++;
  r->res = res;
  r->in_flight_in_cb = tl_op_in_flight(op);
  if (r->seq)
    r->order = ++*r->seq;
}

void th_op_prep(tl_op *op, struct th_opres *r) {
  memset(op, 0, sizeof *op);
  memset(r, 0, sizeof *r);
  op->data = r;
}

/* Which backends to run: TRILOOP_TEST_BACKENDS, then what works here. */
static void select_backends(void) {
  int want[TL_BACKEND_COUNT] = {0};
  const char *env = getenv("TRILOOP_TEST_BACKENDS");
  if (env && *env) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", env);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
      int id = tl_backend_from_name(tok);
      if (id <= TL_BACKEND_AUTO || id >= TL_BACKEND_COUNT) {
        printf("SKIP %s: not a backend name (TRILOOP_TEST_BACKENDS; valid: %s)\n",
               tok, tl_backend_names());
        continue;
      }
      want[id] = 1;
    }
  } else {
    want[TL_BACKEND_URING] = want[TL_BACKEND_EPOLL] = want[TL_BACKEND_THREADPOOL] = 1;
  }
  static const int order[] = {TL_BACKEND_URING, TL_BACKEND_EPOLL, TL_BACKEND_THREADPOOL};
  for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
    int id = order[k];
    if (!want[id])
      continue;
    char why[256] = "";
    int r = tl_backend_probe(id, why, sizeof why);
    if (r != 0) {
      printf("SKIP %s: %s (%s)\n", tl_backend_id_name(id), why[0] ? why : "unavailable",
             tl_strerror(r));
      continue;
    }
    th_ids[th_count++] = id;
  }
  fflush(stdout);
}

int th_main(const char *suite, void (*add)(TCase *tc)) {
  /* Tests that expect -EPIPE must die if the library lets SIGPIPE through. */
  signal(SIGPIPE, SIG_DFL);
  select_backends();
  if (th_count == 0) {
    printf("SKIP %s: no backend works here\n", suite);
    return 77;
  }
  Suite *s = suite_create(suite);
  for (int i = 0; i < th_count; i++) {
    TCase *tc = tcase_create(tl_backend_id_name(th_ids[i]));
    tcase_set_timeout(tc, TH_CASE_TIMEOUT);
    th__lo = i;
    add(tc);
    suite_add_tcase(s, tc);
  }
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);

  /* Per-backend counts: the TCase name is the backend. */
  TestResult **res = srunner_results(sr);
  int n = srunner_ntests_run(sr);
  for (int i = 0; i < th_count; i++) {
    const char *name = tl_backend_id_name(th_ids[i]);
    int pass = 0, fail = 0, err = 0;
    for (int k = 0; k < n; k++) {
      if (strcmp(tr_tcname(res[k]), name) != 0)
        continue;
      switch (tr_rtype(res[k])) {
        case CK_PASS: pass++; break;
        case CK_FAILURE: fail++; break;
        default: err++; break;
      }
    }
    printf("%s %s: %d passed, %d failed, %d errors\n", suite, name, pass, fail, err);
  }
  free(res);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
