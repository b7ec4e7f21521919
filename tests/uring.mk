# The io_uring backend's own tests (seccomp denial, tiny rings, cancel
# races, destroy with thousands of ops in flight, fork).  The behaviour
# suite in tests/test_*.c covers the rest on every backend.
check_PROGRAMS += tests/test_uring
TESTS += tests/test_uring
tests_test_uring_SOURCES = tests/test_uring.c tests/harness.c tests/harness.h
tests_test_uring_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(SECCOMP_CFLAGS)
tests_test_uring_LDADD = libtriloop.la $(CHECK_LIBS) $(SECCOMP_LIBS) -lm
