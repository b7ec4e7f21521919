#!/bin/bash
# valgrind memcheck over the behaviour suite, one run per program and
# backend, in a normal (non-sanitizer) build.  A documented command, not a
# CI stage (about 2 minutes for epoll and threadpool; see below for uring):
#
#   cd <build dir> && bash <source dir>/tests/valgrind.sh [backends...]
#
# Each case runs in its own child (CK_FORK=yes); valgrind follows the
# fork, so an error or definite leak in a case makes that child exit 1 and
# Check names the case.  Logs: vg-logs/<program>.<backend>.log.<pid>.
#
# Known findings (see the reports in the log):
#  - test_ops test_op_huge_lengths_are_clamped_like_the_syscalls: passes a
#    64-byte buffer with a huge length on purpose (the kernel clamps);
#    memcheck reports "Syscall param pread64(buf)/recvfrom(buf) points to
#    unaddressable byte(s)" and the case exits 1.  Expected, not a bug.
#  - uring under valgrind 3.19: a signal does not interrupt the wait in
#    io_uring_enter, so the signal/child watcher cases of test_watchers
#    sit in io_cqring_wait until Check's (multiplied) timeout.
set -u
backends=${*:-epoll threadpool uring}
mkdir -p vg-logs
fail=0 pass=0
for be in $backends; do
  for t in test_loop test_io test_timer test_watchers test_ops test_errors; do
    log=vg-logs/$t.$be
    TRILOOP_TEST_BACKENDS=$be CK_FORK=yes CK_TIMEOUT_MULTIPLIER=20 \
      ./libtool --mode=execute valgrind -q --error-exitcode=1 --leak-check=full \
      --errors-for-leak-kinds=definite --show-leak-kinds=definite --max-threads=3000 \
      --log-file="$log.log.%p" "tests/$t" >"$log.out" 2>&1
    rc=$?
    echo "$t $be: exit $rc: $(grep -E '^[0-9]+%' "$log.out" | tail -1)"
    if [ $rc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
  done
done
echo "valgrind: $pass passed, $fail failed"
[ $fail -eq 0 ]
