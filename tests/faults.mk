# The fault-injection suite (tests/test_faults.c) exists only in this build;
# CI runs it through tests/ci/faults.sh under ASan+UBSan.
if FAULT_INJECTION
check_PROGRAMS += tests/test_faults
TESTS += tests/test_faults
tests_test_faults_SOURCES = tests/test_faults.c tests/harness.c tests/harness.h
tests_test_faults_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_test_faults_LDADD = libtriloop.la $(CHECK_LIBS) -lm
endif
