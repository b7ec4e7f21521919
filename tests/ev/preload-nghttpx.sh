#!/bin/bash
# A third real program from Debian under LD_PRELOAD of libtriloop-ev, on
# every backend: nghttpx (HTTP/2 reverse proxy, package nghttp2-proxy; a
# master process forking a worker process that runs one libev loop per
# worker thread, with ev_async, ev_signal, ev_child and timers between them) in
# front of nghttpd, with h2load sending N requests through the proxy.
# nghttpx and nghttpd run on our library; h2load's own counters must say
# every request succeeded with a 2xx.  Skips (77) when the packages are not
# installed.
: "${EVT_BACKENDS:=epoll uring threadpool}"
N=${EVT_H2_REQUESTS:-10000}
lib=$PWD/.libs/libtriloop-ev.so
for p in nghttpx nghttpd h2load; do
  command -v $p >/dev/null ||
    { echo "SKIP: apt-get install nghttp2-proxy nghttp2-server nghttp2-client"; exit 77; }
done
[ -f "$lib" ] || { echo "no $lib"; exit 99; }
ldd "$(command -v nghttpx)" | grep -q 'libev\.so\.4' || { echo "SKIP: nghttpx not linked to libev"; exit 77; }
ldd "$lib" | grep -qE 'lib(a|t)san' && { echo "SKIP: sanitizer build"; exit 77; }

tmp=$(mktemp -d) || exit 99
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
head -c 8192 /dev/urandom >"$tmp/file.bin"

wait_port() {   # wait_port <port> <pid>
  for _ in $(seq 300); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

fail=0 ran=0
for b in $EVT_BACKENDS; do
  # random ports may be taken (by a test running in parallel): retry
  for _ in 1 2 3 4 5; do
    # below the ephemeral range (32768+), where other tests' connections live
    bport=$((22000 + (RANDOM % 5000))) fport=$((27000 + (RANDOM % 5000)))
    : >"$tmp/px.log"
    LD_PRELOAD=$lib TRILOOP_BACKEND=$b nghttpd --no-tls -d "$tmp" "$bport" >"$tmp/srv.log" 2>&1 &
    srv=$!
    # --conf=/dev/null: nothing from /etc/nghttpx; two worker threads, so
    # several loops and the cross-thread wakeups run on our library too
    LD_PRELOAD=$lib TRILOOP_BACKEND=$b nghttpx --conf=/dev/null --workers=2 \
      "--frontend=127.0.0.1,$fport;no-tls" "--backend=127.0.0.1,$bport;;proto=h2" \
      --errorlog-file="$tmp/px.log" >"$tmp/px.out" 2>&1 &
    px=$!
    pids="$srv $px"
    wait_port "$bport" "$srv" && wait_port "$fport" "$px" && break
    grep -qi 'address already in use' "$tmp/srv.log" "$tmp/px.log" || break
    kill $srv $px 2>/dev/null; wait 2>/dev/null
  done
  if ! wait_port "$bport" "$srv" || ! wait_port "$fport" "$px"; then
    echo "FAIL $b: nghttpd or nghttpx did not listen"; cat "$tmp/srv.log" "$tmp/px.log" "$tmp/px.out"
    fail=1
  else
    # every nghttpx process (master and worker) must map our library, and
    # the worker must hold the backend's kernel object
    procs="$px $(pgrep -P "$px")"
    for p in $procs; do
      grep -q libtriloop-ev /proc/$p/maps 2>/dev/null ||
        { echo "FAIL $b: nghttpx pid $p did not load libtriloop-ev"; fail=1; }
    done
    fds=$(for p in $procs; do ls -l /proc/$p/fd 2>/dev/null; done)
    case $b in
      uring) grep -q 'io_uring' <<<"$fds" || { echo "FAIL $b: no io_uring fd in nghttpx"; fail=1; } ;;
      epoll) grep -q 'eventpoll' <<<"$fds" || { echo "FAIL $b: no epoll fd in nghttpx"; fail=1; } ;;
    esac
    out=$(LD_PRELOAD=$lib TRILOOP_BACKEND=$b timeout 120 h2load -n "$N" -c 16 -m 8 -t 2 \
          "http://127.0.0.1:$fport/file.bin" 2>&1)
    rc=$?
    line=$(grep '^requests:' <<<"$out")
    echo "$b: $line"
    if [ $rc -ne 0 ] ||
       ! grep -q "requests: $N total, $N started, $N done, $N succeeded, 0 failed, 0 errored, 0 timeout" <<<"$line" ||
       ! grep -q "status codes: $N 2xx" <<<"$out"; then
      echo "FAIL $b: h2load through nghttpx (exit $rc):"; echo "$out" | tail -15
      tail -20 "$tmp/px.log"; fail=1
    else
      ran=$((ran + 1))
    fi
  fi
  # SIGQUIT is nghttpx's graceful stop: the master's ev_signal tells the
  # worker process over a pipe, the worker's threads are stopped through
  # ev_async, the worker exits and the master's ev_child reaps it; libev's
  # signal, child and async paths all have to work for this to end cleanly
  kill -QUIT "$px" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$px" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$px" 2>/dev/null; then
    echo "FAIL $b: nghttpx did not stop on SIGQUIT"; tail -5 "$tmp/px.log"; fail=1; kill -9 "$px"
  elif ! grep -q 'exited normally with status 0x00' "$tmp/px.log"; then
    echo "FAIL $b: nghttpx's worker did not exit cleanly:"; tail -5 "$tmp/px.log"; fail=1
  fi
  kill "$srv" 2>/dev/null
  wait 2>/dev/null
  pids=
done
[ $fail -eq 0 ] || exit 1
[ $ran -gt 0 ] || exit 77
echo "PASS: nghttpx (in front of nghttpd) + h2load under LD_PRELOAD on: $EVT_BACKENDS"
