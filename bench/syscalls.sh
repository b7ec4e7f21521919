#!/bin/bash
# syscalls.sh: syscalls per operation, by syscall, on the server side.
#
#   bench/syscalls.sh [--secs N] [--bin DIR] [--conns LIST] [--only echo,file]
#                     [--file PATH]
#     --secs N     seconds of load per point (default 1)
#     --bin DIR    the built bench programs (default: $TL_BENCH_BIN, this
#                  script's directory, or ./build/bench)
#     --conns LIST echo connection counts (default 1,16,256)
#     --only LIST  echo and/or file (default both)
#     --file PATH  file for file_read (default: a 64 MiB temporary file)
#
# Echo: bench/echo_server (tl_recv/tl_send) and bench/echo_server_watch
# (tl_io) on the epoll backend, and bench/libev_echo (libev's epoll), 64 B
# messages, bench/echo_client driving the load.  The server's syscalls are
# counted with `perf stat -e 'syscalls:sys_enter_*' -p PID` over the whole
# client run (no warm-up: connection setup is included, a few hundred calls
# against 10^4..10^5 round trips) and divided by the client's round trips.
# strace -c -f is the fallback when perf cannot open the tracepoints (it
# slows the server but counts the same calls).
#
# File: bench/file_read, cached 4 KiB random reads at qd 1 and 32 on epoll
# and threadpool, the whole process (loop and pool threads) counted, per op.
# It shows what a file op costs in syscalls beyond its pread (no fstat, no
# fcntl per op).
#
# One line per point on stdout:
#   workload=echo impl=triloop backend=epoll conns=1 ops=N total_per_op=X
#     epoll_wait=.. recvfrom=.. ...      (each syscall above 0.005 per op)
set -u
secs=1 conns_list=1,16,256 only=echo,file file= bin=${TL_BENCH_BIN:-}
die() { echo "syscalls.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --secs) secs=$2; shift ;;
    --bin) bin=$2; shift ;;
    --conns) conns_list=$2; shift ;;
    --only) only=$2; shift ;;
    --file) file=$2; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1'" ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  if [ -x "$here/echo_client" ]; then bin=$here; else bin=./build/bench; fi
fi
for p in echo_client echo_server echo_server_watch libev_echo file_read; do
  [ -x "$bin/$p" ] || die "missing $bin/$p (build first or pass --bin)"
done

tmp=$(mktemp -d /tmp/syscalls.XXXXXX) || die "mktemp"
server_pid= counter_pid=
cleanup() {
  [ -n "$counter_pid" ] && kill -INT "$counter_pid" 2>/dev/null && wait "$counter_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

use_perf=1
perf stat -e 'syscalls:sys_enter_getpid' -o /dev/null -- true 2>/dev/null || use_perf=0
[ $use_perf = 1 ] || command -v strace >/dev/null || die "neither perf nor strace works here"
[ $use_perf = 1 ] || echo "syscalls.sh: perf unavailable, counting with strace -c -f" >&2

# counts FILE: "name count" lines from a perf or strace output file.
counts() {
  if [ $use_perf = 1 ]; then
    awk '/syscalls:sys_enter_/ { gsub(/,/, "", $1); if ($1+0 > 0) { n=$2; sub(/.*sys_enter_/, "", n); print n, $1 } }' "$1"
  else
    awk '/^[ ]*[0-9.]+[ ]+[0-9.]+[ ]+[0-9]+[ ]+[0-9]+/ { n=$NF; c=($5 ~ /^[0-9]+$/) ? $4 : $4; print n, $4 }' "$1"
  fi
}

# report PREFIX OPS FILE
report() {
  local prefix=$1 ops=$2 f=$3
  [ "$ops" -gt 0 ] 2>/dev/null || { echo "syscalls.sh: $prefix: no ops" >&2; return; }
  counts "$f" | sort -k2,2nr | awk -v ops="$ops" -v p="$prefix" '
    { t += $2; if ($2 / ops >= 0.005) s = s sprintf(" %s=%.3f", $1, $2 / ops) }
    END { printf "%s ops=%d total_per_op=%.3f%s\n", p, ops, t / ops, s }'
}

start_counter() {   # PID OUT
  if [ $use_perf = 1 ]; then
    perf stat -e 'syscalls:sys_enter_*' -p "$1" -o "$2" 2>/dev/null &
  else
    strace -c -f -p "$1" -o "$2" 2>/dev/null &
  fi
  counter_pid=$!
  sleep 0.5   # attaching to a few hundred tracepoints takes a moment
}
stop_counter() {
  kill -INT "$counter_pid" 2>/dev/null
  wait "$counter_pid" 2>/dev/null
  counter_pid=
}

echo_point() {   # IMPL CONNS
  local impl=$1 conns=$2 cmd
  case $impl in
    triloop) cmd=(env TRILOOP_BACKEND=epoll "$bin/echo_server") ;;
    triloop-watch) cmd=(env TRILOOP_BACKEND=epoll "$bin/echo_server_watch") ;;
    libev-epoll) cmd=("$bin/libev_echo" --backend epoll) ;;
  esac
  : >"$tmp/server.err"
  "${cmd[@]}" --port 0 --cpu 0 --msg 64 2>>"$tmp/server.err" &
  server_pid=$!
  local port=
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.err" | head -1)
    [ -n "$port" ] && break
    sleep 0.01
  done
  [ -n "$port" ] || { echo "syscalls.sh: $impl did not start: $(tail -1 "$tmp/server.err")" >&2; return; }
  start_counter "$server_pid" "$tmp/count"
  local line
  line=$("$bin/echo_client" --port "$port" --conns "$conns" --msg 64 --secs "$secs" --warmup 0 \
           --cpu 1 --impl "$impl" --backend epoll 2>/dev/null)
  stop_counter
  kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=
  local ops; ops=$(echo "$line" | tr ' ' '\n' | sed -n 's/^ops=//p')
  report "workload=echo impl=$impl backend=epoll conns=$conns" "${ops:-0}" "$tmp/count"
}

if [[ ",$only," == *,echo,* ]]; then
  for c in ${conns_list//,/ }; do
    for impl in triloop triloop-watch libev-epoll; do echo_point "$impl" "$c"; done
  done
fi

if [[ ",$only," == *,file,* ]]; then
  if [ -z "$file" ]; then
    file=$tmp/file.dat
    head -c $((64 << 20)) /dev/zero >"$file" && cat "$file" >/dev/null
  fi
  for be in epoll threadpool; do
    for qd in 1 32; do
      if [ $use_perf = 1 ]; then
        line=$(TRILOOP_BACKEND=$be perf stat -e 'syscalls:sys_enter_*' -o "$tmp/count" -- \
                 "$bin/file_read" --file "$file" --qd $qd --secs "$secs" --warmup 0 2>/dev/null)
      else
        line=$(TRILOOP_BACKEND=$be strace -c -f -o "$tmp/count" -- \
                 "$bin/file_read" --file "$file" --qd $qd --secs "$secs" --warmup 0 2>/dev/null)
      fi
      ops=$(echo "$line" | tr ' ' '\n' | sed -n 's/^ops=//p')
      report "workload=file-read impl=triloop backend=$be qd=$qd" "${ops:-0}" "$tmp/count"
    done
  done
fi
