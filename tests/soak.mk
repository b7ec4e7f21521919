# Soak/load and process-life tests (issue #7).
#
# tests/test_process: fork with a running loop, signals during every phase,
# SIGPIPE, EINTR everywhere; part of make check, every case on every backend.
#
# tests/soak: thousands of loopback echo connections with random sizes,
# disconnects, cancels and timer churn on one loop, per backend; not part of
# make check (tests/ci/soak.sh runs a short version).  The 10-minute run per
# backend is documented at the top of tests/soak.c.
check_PROGRAMS += tests/test_process tests/soak
TESTS += tests/test_process
tests_test_process_SOURCES = tests/test_process.c tests/harness.c tests/harness.h
tests_test_process_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_process_LDADD = libtriloop.la $(CHECK_LIBS) -lm
tests_soak_SOURCES = tests/soak.c
tests_soak_LDADD = libtriloop.la
EXTRA_DIST += tests/ci/soak.sh
#
# valgrind memcheck of the behaviour suite (a documented command, not a CI
# stage; normal build): cd <build dir> && bash $(top_srcdir)/tests/valgrind.sh
EXTRA_DIST += tests/valgrind.sh
# The long runs, per backend (fuzz + soak; a documented command, not CI).
EXTRA_DIST += tests/long-run.sh
