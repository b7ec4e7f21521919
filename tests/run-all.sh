#!/bin/bash
# Builds triloop and runs every test: the plain build with -Werror (and
# make distcheck), then the whole suite again under ASan+UBSan, and the pool
# tests under TSan.  Each build lives in its own directory under build/.
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
step() { printf '\n==== %s ====\n' "$*" >&2; }

step "autoreconf"
autoreconf -fi >/dev/null

build() {  # build <dir> <configure args...>
  local dir=$1; shift
  mkdir -p "build/$dir"
  (cd "build/$dir" && "$top/configure" -q --enable-werror "$@" && make -j"$jobs" >/dev/null)
}

check() {  # check <dir> [make args...]
  local dir=$1; shift
  if ! (cd "build/$dir" && make -j"$jobs" check "$@"); then
    find "build/$dir" -name '*.log' -path '*tests*' -newer "build/$dir/Makefile" \
      -exec grep -l -E '^(FAIL|ERROR)|Failures: [1-9]|Errors: [1-9]' {} + 2>/dev/null |
      while read -r f; do echo "---- $f"; tail -40 "$f"; done
    return 1
  fi
}

step "build + make check (gcc, -Wall -Wextra -Werror)"
build plain
check plain

step "ASan + UBSan: make check"
build asan --disable-rust-refs CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  check asan

step "TSan: thread pool and threadpool backend"
build tsan --disable-rust-refs CFLAGS="-O1 -g -fsanitize=thread" --disable-shared
TSAN_OPTIONS=halt_on_error=1 TRILOOP_TEST_BACKENDS=threadpool,epoll \
  check tsan TESTS="tests/test_pool tests/test_ops"

# Further stages (fault injection, fuzzing, soak, ...): one script each in
# tests/ci/, run from the top directory with TOP and JOBS set; each builds
# what it needs under build/<its name>/, bounds its own time, and exits
# non-zero on failure.
for stage in tests/ci/*.sh; do
  [ -e "$stage" ] || continue
  step "stage $(basename "$stage" .sh)"
  TOP=$top JOBS=$jobs bash "$stage"
done

step "make distcheck"
(cd build/plain && make -j"$jobs" distcheck >/dev/null)

step "all tests passed"
