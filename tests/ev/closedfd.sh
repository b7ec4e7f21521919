#!/bin/sh
# tests/ev/t_closedfd (libtriloop-ev only: libev asserts or differs by
# backend here) on every backend: an ev_io whose fd is closed behind the
# loop's back gets EV_ERROR and is stopped, without an abort or a spin.
: "${EVT_BACKENDS:=epoll uring threadpool}"
fail=0 ran=0
for b in $EVT_BACKENDS; do
  env -u LIBEV_FLAGS TRILOOP_BACKEND=$b timeout 60 tests/ev/t_closedfd >closedfd.$b.log 2>&1
  rc=$?
  case $rc in
    0) echo "PASS $b: $(tail -1 closedfd.$b.log)"; ran=$((ran + 1)) ;;
    77) echo "SKIP $b: $(cat closedfd.$b.log)" ;;
    *) echo "FAIL $b (exit $rc):"; cat closedfd.$b.log; fail=1 ;;
  esac
  rm -f closedfd.$b.log
done
[ $fail -eq 0 ] || exit 1
[ $ran -gt 0 ] || exit 77
exit 0
