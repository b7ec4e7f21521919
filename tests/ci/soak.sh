#!/bin/bash
# CI stage: process-life tests and a short soak, under ASan+UBSan.
# Budget: ~3 minutes (build ~1 min, tests/test_process ~15 s, the soak 20 s
# per backend with 500 connections, plus wind-down).  The long soak (10
# minutes per backend) is documented at the top of tests/soak.c.
# Run from the top source dir with TOP and JOBS set (tests/run-all.sh does).
set -uo pipefail
TOP=${TOP:-$(pwd)}
JOBS=${JOBS:-2}
SECS=${SOAK_SECS:-20}
CONNS=${SOAK_CONNS:-500}
dir="$TOP/build/soak"
mkdir -p "$dir"
cd "$dir" || exit 1
san="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
if [ ! -f Makefile ]; then
  "$TOP/configure" -q --enable-werror --disable-rust-refs CFLAGS="$san" || exit 1
fi
make -j"$JOBS" >/dev/null || exit 1

# A small quarantine: ASan keeps freed memory (256 MiB by default) and would
# make the soak's RSS-growth check measure ASan, not the library.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

if grep -q 'tests/soak.mk' "$TOP/Makefile.am"; then
  make -j"$JOBS" tests/test_process tests/soak >/dev/null || exit 1
  process=tests/test_process
  soak=tests/soak
else
  # Until Makefile.am includes tests/soak.mk: link them here, statically
  # against the library this tree just built.
  cc=$(sed -n 's/^CC = //p' Makefile)
  libs="$(sed -n 's/^LIBS = //p' Makefile) $(sed -n 's/^URING_LIBS = //p' Makefile)"
  checkl=$(pkg-config --libs check)
  flags="-std=gnu11 -Wall -Wextra -Werror $san -D_GNU_SOURCE -I$TOP/include -I$TOP/src -pthread"
  $cc $flags -o test_process "$TOP/tests/test_process.c" "$TOP/tests/harness.c" \
    .libs/libtriloop.a $libs -luring $checkl -lm || exit 1
  $cc $flags -o soak "$TOP/tests/soak.c" .libs/libtriloop.a $libs -luring -lm || exit 1
  process=./test_process
  soak=./soak
fi

passed=0 failed=0
if timeout 300 "$process"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
for b in uring epoll threadpool; do
  TRILOOP_BACKEND=$b timeout $((SECS + 120)) "$soak" --secs "$SECS" --conns "$CONNS" --quiet
  rc=$?
  if [ $rc -eq 0 ]; then passed=$((passed + 1));
  elif [ $rc -eq 77 ]; then echo "SKIP soak $b";
  else failed=$((failed + 1)); echo "soak $b: exit $rc"; fi
done
echo "soak stage: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
