#!/bin/bash
# CI stage: syscall fault injection (issue 7).  Builds build/faults with
# --enable-fault-injection under ASan+UBSan (leak checking on) and runs
# tests/test_faults on every backend.  Budget: about 3 minutes on 2 cores
# (build ~1.5 min, suite < 1 min); the suite is killed after 240 s.
set -uo pipefail
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${JOBS:=2}"
cd "$TOP" || exit 1
mkdir -p build/faults
cd build/faults || exit 1
san="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
if [ ! -f Makefile ] || ! grep -q 'enable-fault-injection' config.status 2>/dev/null; then
  "$TOP/configure" -q --enable-werror --enable-fault-injection --disable-rust-refs CFLAGS="$san" || exit 1
fi
make -j"$JOBS" >/dev/null && make -j"$JOBS" tests/test_faults >/dev/null || exit 1
out=$(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      timeout 240 ./tests/test_faults 2>&1)
rc=$?
echo "$out" | grep -v '^[0-9]*%: Checks' | tail -80
pass=$(echo "$out" | sed -n 's/^faults [a-z]*: \([0-9]*\) passed.*/\1/p' | paste -sd+ | bc 2>/dev/null || echo 0)
fail=$(echo "$out" | sed -n 's/^faults [a-z]*: [0-9]* passed, \([0-9]*\) failed, \([0-9]*\) errors.*/\1+\2/p' | paste -sd+ | bc 2>/dev/null || echo 0)
echo "faults stage: ${pass:-0} passed, ${fail:-0} failed (exit $rc)"
[ "$rc" -eq 0 ] && echo "$out" | grep -q 'delivered.*: equal'
