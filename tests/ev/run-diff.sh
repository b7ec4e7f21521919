#!/bin/sh
# Differential suite for libtriloop-ev: each tests/ev/t_*.libev (linked to
# libev, the oracle) and t_*.tl (linked to libtriloop-ev) must print the same
# transcript, on every backend.  A backend that does not work here (the .tl
# program exits 77) is reported as skipped.  Prints a diff on mismatch.
# Usage: run-diff.sh [program...]   (default: all; run from the build dir)
: "${EVT_BACKENDS:=epoll uring threadpool}"
: "${EVT_TIMEOUT:=60}"
dir=tests/ev
progs="$*"
[ -n "$progs" ] || progs="t_order t_timer t_io t_misc t_signal t_async t_child t_stat t_embed t_fork t_backend t_thread"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
ran=0
for p in $progs; do
  # The oracle is libev itself: LeakSanitizer's findings there are libev's.
  env -u LIBEV_FLAGS ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    timeout "$EVT_TIMEOUT" "$dir/$p.libev" >"$tmp/$p.want" 2>"$tmp/$p.err"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL $p: the libev oracle exited $rc"; cat "$tmp/$p.err"; fail=1; continue
  fi
  for b in $EVT_BACKENDS; do
    env -u LIBEV_FLAGS TRILOOP_BACKEND=$b timeout "$EVT_TIMEOUT" "$dir/$p.tl" >"$tmp/$p.$b" 2>"$tmp/$p.$b.err"
    rc=$?
    if [ $rc -eq 77 ]; then
      echo "SKIP $p $b: $(cat "$tmp/$p.$b.err")"; continue
    fi
    if [ $rc -ne 0 ]; then
      echo "FAIL $p $b: exited $rc"; cat "$tmp/$p.$b.err"; fail=1; continue
    fi
    if ! diff -u "$tmp/$p.want" "$tmp/$p.$b" >"$tmp/diff"; then
      echo "FAIL $p $b: transcript differs from libev"; cat "$tmp/diff"; fail=1; continue
    fi
    ran=$((ran + 1))
    echo "PASS $p $b"
  done
done
[ $fail -eq 0 ] || exit 1
[ $ran -gt 0 ] || exit 77
exit 0
