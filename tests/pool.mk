# The blocking pool's own tests (src/pool.c, backends/threadpool.c).
# Linked with the static library: the first cases call the pool's internal
# tl__pool_* functions, which the shared libtriloop does not export.
#
# CI also runs it under ThreadSanitizer, in a separate build tree:
#   $(top_srcdir)/configure CFLAGS='-O1 -g -fsanitize=thread' \
#       LDFLAGS=-fsanitize=thread && make check TESTS=tests/test_pool
# (TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 makes a report fail
# the case.)
check_PROGRAMS += tests/test_pool
TESTS += tests/test_pool
tests_test_pool_SOURCES = tests/test_pool.c
tests_test_pool_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_pool_LDADD = libtriloop.la $(CHECK_LIBS)
tests_test_pool_LDFLAGS = -static
#
# Once under helgrind (valgrind's default thread limit is too low for the
# 1,000-reader case):
#   CK_TIMEOUT_MULTIPLIER=10 valgrind --tool=helgrind --max-threads=1200 -q \
#       tests/test_pool
# Expected noise: "pthread_cond_signal: dubious: associated lock is not held"
# (the pool signals after unlocking on purpose) and the deliberate
# pthread_create failure of the RLIMIT_NPROC case.
