# Check suite (one behaviour suite over every backend).
# Each program runs all of its cases once per backend that works here
# (TRILOOP_TEST_BACKENDS=uring,epoll narrows the list); exit 77 = SKIP.
TH_TESTS = tests/test_loop tests/test_io tests/test_timer tests/test_watchers \
	tests/test_ops tests/test_errors tests/test_multishot tests/test_fdlife \
	tests/test_server_api tests/test_fixed tests/test_fsops
check_PROGRAMS += $(TH_TESTS)
TESTS += $(TH_TESTS)
TH_SRC = tests/harness.c tests/harness.h
TH_LDADD = libtriloop.la $(CHECK_LIBS) -lm
TH_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

tests_test_loop_SOURCES = tests/test_loop.c $(TH_SRC)
tests_test_loop_LDADD = $(TH_LDADD)
tests_test_loop_CFLAGS = $(TH_CFLAGS)
tests_test_io_SOURCES = tests/test_io.c $(TH_SRC)
tests_test_io_LDADD = $(TH_LDADD)
tests_test_io_CFLAGS = $(TH_CFLAGS)
tests_test_timer_SOURCES = tests/test_timer.c $(TH_SRC)
tests_test_timer_LDADD = $(TH_LDADD)
tests_test_timer_CFLAGS = $(TH_CFLAGS)
tests_test_watchers_SOURCES = tests/test_watchers.c $(TH_SRC)
tests_test_watchers_LDADD = $(TH_LDADD)
tests_test_watchers_CFLAGS = $(TH_CFLAGS)
tests_test_ops_SOURCES = tests/test_ops.c $(TH_SRC)
tests_test_ops_LDADD = $(TH_LDADD)
tests_test_ops_CFLAGS = $(TH_CFLAGS)
tests_test_fdlife_SOURCES = tests/test_fdlife.c $(TH_SRC)
tests_test_fdlife_LDADD = $(TH_LDADD)
tests_test_fdlife_CFLAGS = $(TH_CFLAGS)
tests_test_errors_SOURCES = tests/test_errors.c $(TH_SRC)
tests_test_errors_LDADD = $(TH_LDADD)
tests_test_errors_CFLAGS = $(TH_CFLAGS)
tests_test_fixed_SOURCES = tests/test_fixed.c $(TH_SRC)
tests_test_fixed_LDADD = $(TH_LDADD)
tests_test_fixed_CFLAGS = $(TH_CFLAGS)
tests_test_multishot_SOURCES = tests/test_multishot.c $(TH_SRC)
tests_test_multishot_LDADD = $(TH_LDADD)
tests_test_multishot_CFLAGS = $(TH_CFLAGS)
tests_test_server_api_SOURCES = tests/test_server_api.c $(TH_SRC)
tests_test_server_api_LDADD = $(TH_LDADD)
tests_test_server_api_CFLAGS = $(TH_CFLAGS)
tests_test_fsops_SOURCES = tests/test_fsops.c $(TH_SRC)
tests_test_fsops_LDADD = $(TH_LDADD)
tests_test_fsops_CFLAGS = $(TH_CFLAGS)

# setuid programs ignore the TRILOOP_* variables (tests/env_secure.sh).
check_PROGRAMS += tests/env_secure
tests_env_secure_SOURCES = tests/env_secure.c
tests_env_secure_LDADD = libtriloop.la
tests_env_secure_LDFLAGS = -static
TESTS += tests/env_secure.sh
dist_noinst_SCRIPTS += tests/env_secure.sh
