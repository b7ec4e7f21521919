#!/bin/bash
# Real programs from Debian, unchanged binaries linked to libev.so.4, run with
# LD_PRELOAD of libtriloop-ev on every backend: nghttpd (HTTP/2 server,
# nghttp2-server) serves a file on loopback and h2load (load generator,
# nghttp2-client) fetches it N times; h2load's own counters must say every
# request succeeded.  We also check that the server really runs on our
# library and on the requested backend (its mapped libraries and its
# anon-inode fds).  Skips (77) when the packages are not installed.
: "${EVT_BACKENDS:=epoll uring threadpool}"
N=${EVT_H2_REQUESTS:-20000}
lib=$PWD/.libs/libtriloop-ev.so
command -v h2load >/dev/null && command -v nghttpd >/dev/null ||
  { echo "SKIP: apt-get install nghttp2-client nghttp2-server"; exit 77; }
[ -f "$lib" ] || { echo "no $lib"; exit 99; }
ldd "$(command -v h2load)" | grep -q 'libev\.so\.4' || { echo "SKIP: h2load not linked to libev"; exit 77; }
# A sanitizer build cannot be preloaded into an uninstrumented binary (the
# ASan runtime must come first); the plain build runs this test.
ldd "$lib" | grep -qE 'lib(a|t)san' && { echo "SKIP: sanitizer build"; exit 77; }

tmp=$(mktemp -d) || exit 99
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
head -c 8192 /dev/urandom >"$tmp/file.bin"

fail=0 ran=0
for b in $EVT_BACKENDS; do
  # a random port may be taken (by a test running in parallel): retry
  for _ in 1 2 3 4 5; do
    # below the ephemeral range (32768+), where other tests' connections live
    port=$((12000 + (RANDOM % 10000)))
    LD_PRELOAD=$lib TRILOOP_BACKEND=$b nghttpd --no-tls -d "$tmp" "$port" >"$tmp/srv.log" 2>&1 &
    srv=$!
    up=0
    for _ in $(seq 300); do
      (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && { up=1; break; }
      kill -0 $srv 2>/dev/null || break
      sleep 0.1
    done
    [ $up = 1 ] && break
    grep -qi 'address already in use' "$tmp/srv.log" || break
    kill $srv 2>/dev/null; wait $srv 2>/dev/null
  done
  if [ $up = 0 ]; then
    if grep -qi 'backend\|uring\|no.*loop' "$tmp/srv.log"; then
      echo "FAIL $b: nghttpd did not start:"; cat "$tmp/srv.log"; fail=1
    else
      echo "FAIL $b: nghttpd did not listen on $port"; cat "$tmp/srv.log"; fail=1
    fi
    kill $srv 2>/dev/null; wait $srv 2>/dev/null; srv=; continue
  fi
  # the server must really be on our library and on backend $b
  maps=$(cat /proc/$srv/maps)
  fds=$(ls -l /proc/$srv/fd 2>/dev/null)
  grep -q libtriloop-ev <<<"$maps" || { echo "FAIL $b: nghttpd did not load libtriloop-ev"; fail=1; }
  case $b in
    uring) grep -q 'io_uring' <<<"$fds" || { echo "FAIL $b: no io_uring fd in nghttpd"; fail=1; } ;;
    epoll) grep -q 'eventpoll' <<<"$fds" || { echo "FAIL $b: no epoll fd in nghttpd"; fail=1; } ;;
  esac
  out=$(LD_PRELOAD=$lib TRILOOP_BACKEND=$b timeout 120 h2load -n "$N" -c 16 -m 8 -t 2 \
        "http://127.0.0.1:$port/file.bin" 2>&1)
  rc=$?
  line=$(grep '^requests:' <<<"$out")
  echo "$b: $line"
  if [ $rc -ne 0 ] || ! grep -q "requests: $N total, $N started, $N done, $N succeeded, 0 failed, 0 errored, 0 timeout" <<<"$line" ||
     ! grep -q "status codes: $N 2xx" <<<"$out"; then
    echo "FAIL $b: h2load (exit $rc):"; echo "$out" | tail -15; fail=1
  else
    ran=$((ran + 1))
  fi
  kill $srv; wait $srv 2>/dev/null; srv=
done
[ $fail -eq 0 ] || exit 1
[ $ran -gt 0 ] || exit 77
echo "PASS: nghttpd + h2load under LD_PRELOAD on: $EVT_BACKENDS"
