#!/bin/bash
# socket-study.sh: the socket and loop-overhead half of the study (issue 6).
#
# INTERFACE (for bench/run-study)
#   bench/socket-study.sh [--quick|--full] [--bin DIR] [--reps N] [--secs S]
#                         [--only LIST] [--backends LIST]
#     --quick      (default) echo at conns 1,16,256 x msg 64,4096, 1 rep,
#                  0.6 s per point; finishes in about a minute.
#     --full       conns 1,16,256,1024 x msg 64,4096,16384, 3 reps, 1 s.
#     --bin DIR    where the built bench programs are (the build tree's
#                  bench/ directory); default: $TL_BENCH_BIN, else this
#                  script's directory, else ./bench.
#     --reps N, --secs S   override the mode's repetitions / seconds per point.
#     --only LIST  comma list of parts: echo,reuseport,stream,accept,overhead
#                  (default all).
#     --backends LIST  triloop backends to run (default uring,epoll,threadpool).
#     --impl LIST  implementations to run (default all; names as impl= below;
#                  others in the list are ignored here).
#     --rust DIR   where the tokio/smol programs are (default
#                  BIN/rust-target/release); missing: their rows are skipped.
#     --dry-run    print the echo plan, run nothing.
#   stdout: result lines only, one per run, space-separated key=value, each
#     with rep=<1..N> added.  Keys always present: workload impl backend ops
#     secs ops_per_s cpu_us_per_op rep.  workload is one of echo, stream,
#     accept, timer_churn, io_churn, async, idle_iter, start_poll_stop.
#     impl: triloop (completion ops), triloop-watch (tl_io readiness),
#     triloop-ms (tl_recv_multishot + tl_bufring; kernel buffer ring on uring,
#     emulated elsewhere), raw-uring, raw-uring-plain, raw-uring-ms (multishot
#     recv + provided buffer ring), libev-epoll, libev-iouring, tokio-ct,
#     tokio-mt (tokio_echo, current-/multi-thread runtime), smol (smol_echo),
#     plain-recv (stream floor).  Echo lines add conns msg loops p50_us p99_us
#     client_cpu_us_per_op syscalls_per_op iterations_per_op (server-side
#     counters; "-" where the server has none); cpu_us_per_op is the server's;
#     the tokio/smol servers add workers= blocking_max= pinned=.  Last on
#     every echo line: cmd=<server command> | <client command>.
#     Lines of the SO_REUSEPORT scaling runs carry set=reuseport (loops=1|2);
#     the plain matrix lines carry set=matrix.  Stream lines add mbps.
#   stderr: progress, pinning, skipped backends with the reason.
#   exit: 0 when it ran (an unavailable backend is skipped, not an error),
#     2 on bad options or missing programs (before anything runs).
#
# Servers and the load generator are separate processes: server on cpu 0,
# client on cpu 1 (with --loops 2 the server threads take cpus 0 and 1 and
# the client floats).  Only 127.0.0.1.
set -u

mode=quick reps= secs= only=echo,reuseport,stream,accept,overhead
backends=uring,epoll,threadpool
bin=${TL_BENCH_BIN:-}
impls= rust= dry=0

die() { echo "socket-study: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --bin) [ $# -ge 2 ] || die "--bin needs a directory"; bin=$2; shift ;;
    --reps) [ $# -ge 2 ] || die "--reps needs a number"; reps=$2; shift
            [[ $reps =~ ^[1-9][0-9]?$ ]] || die "--reps must be 1..99, got '$reps'" ;;
    --secs) [ $# -ge 2 ] || die "--secs needs a number"; secs=$2; shift
            [[ $secs =~ ^[0-9]*\.?[0-9]+$ ]] && awk "BEGIN{exit !($secs>=0.05 && $secs<=600)}" \
              || die "--secs must be a number in 0.05..600, got '$secs'" ;;
    --only) [ $# -ge 2 ] || die "--only needs a list"; only=$2; shift ;;
    --backends) [ $# -ge 2 ] || die "--backends needs a list"; backends=$2; shift ;;
    --impl) [ $# -ge 2 ] || die "--impl needs a list"; impls=$2; shift ;;
    --rust) [ $# -ge 2 ] || die "--rust needs a directory"; rust=$2; shift ;;
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (try --help)" ;;
  esac
  shift
done

for p in ${only//,/ }; do
  case $p in echo|reuseport|stream|accept|overhead) ;; *) die "unknown part '$p' in --only (echo,reuseport,stream,accept,overhead)" ;; esac
done
for b in ${backends//,/ }; do
  case $b in uring|epoll|threadpool) ;; *) die "unknown backend '$b' in --backends (uring,epoll,threadpool)" ;; esac
done

if [ "$mode" = quick ]; then
  conns_list="1 16 256"; msg_list="64 4096"; : "${reps:=1}"; : "${secs:=0.6}"; warmup=0.15
  rp_conns="16 256"; ovh_secs=0.2; side_secs=0.5
else
  conns_list="1 16 256 1024"; msg_list="64 4096 16384"; : "${reps:=3}"; : "${secs:=1}"; warmup=0.3
  rp_conns="16 256 1024"; ovh_secs=0.5; side_secs=1
fi

if [ -z "$bin" ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  if [ -x "$here/echo_client" ]; then bin=$here; else bin=./bench; fi
fi
for p in echo_client echo_server echo_server_watch raw_uring_echo libev_echo stream accept_rate loop_overhead; do
  [ $dry = 1 ] || [ -x "$bin/$p" ] || die "missing $bin/$p: build first (make) or pass --bin <build>/bench"
done
: "${rust:=$bin/rust-target/release}"
wanti() { [ -z "${impls//,/}" ] || [[ ",$impls," == *",$1,"* ]]; }
rust_impls=
if [ -x "$rust/tokio_echo" ] && [ -x "$rust/smol_echo" ]; then rust_impls="tokio-ct tokio-mt smol"
else echo "socket-study: SKIP tokio and smol: no tokio_echo/smol_echo in $rust (cargo missing at configure, or --disable-rust-refs)" >&2; fi

has() { [[ ",$only," == *",$1,"* ]]; }
tmp=$(mktemp -d /tmp/socket-study.XXXXXX) || die "mktemp failed"
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A unavailable=()

# start_server IMPL BACKEND MSG LOOPS: sets server_pid and port, or returns 1.
start_server() {
  local impl=$1 be=$2 msg=$3 loops=$4 cmd
  rm -f "$tmp/stats"
  : >"$tmp/server.err"
  case $impl in
    triloop) cmd=(env TRILOOP_BACKEND="$be" "$bin/echo_server" --loops "$loops") ;;
    triloop-watch) cmd=(env TRILOOP_BACKEND="$be" "$bin/echo_server_watch") ;;
    triloop-ms) cmd=(env TRILOOP_BACKEND="$be" "$bin/echo_server" --multishot --loops "$loops") ;;
    raw-uring-ms) cmd=("$bin/raw_uring_echo" --multishot) ;;
    raw-uring) cmd=("$bin/raw_uring_echo") ;;
    raw-uring-plain) cmd=("$bin/raw_uring_echo" --plain) ;;
    libev-epoll) cmd=("$bin/libev_echo" --backend epoll) ;;
    libev-iouring) cmd=("$bin/libev_echo" --backend iouring) ;;
    tokio-ct) cmd=("$rust/tokio_echo" --runtime ct) ;;
    tokio-mt) cmd=("$rust/tokio_echo" --runtime mt) ;;
    smol) cmd=("$rust/smol_echo") ;;
  esac
  server_cmd="${cmd[*]} --port 0 --cpu 0 --msg $msg"
  "${cmd[@]}" --port 0 --cpu 0 --msg "$msg" --stats "$tmp/stats" 2>>"$tmp/server.err" &
  server_pid=$!
  port=
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.err" | head -1)
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.01
  done
  kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null
  server_pid=
  unavailable[$impl/$be]=$(grep -v pinned "$tmp/server.err" | tail -1)
  echo "socket-study: SKIP $impl${be:+ backend $be}: ${unavailable[$impl/$be]}" >&2
  return 1
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=
}

# echo_point SET IMPL BACKEND CONNS MSG LOOPS REP
echo_point() {
  local set=$1 impl=$2 be=$3 conns=$4 msg=$5 loops=$6 rep=$7 ccpu=1 line extra=
  [ -n "${unavailable[$impl/$be]+x}" ] && return 0
  wanti "$impl" || return 0
  if [ $dry = 1 ]; then echo "echo $set $impl${be:+ $be} conns=$conns msg=$msg loops=$loops rep=$rep"; return 0; fi
  start_server "$impl" "$be" "$msg" "$loops" || return 0
  [ "$loops" -gt 1 ] && ccpu=-1
  local client=("$bin/echo_client" --port "$port" \
           --conns "$conns" --msg "$msg" --secs "$secs" --warmup "$warmup" --server-pid "$server_pid" \
           --impl "$impl" --backend "${be:--}" --loops "$loops" --cpu $ccpu)
  line=$(timeout $(awk "BEGIN{print int($secs+$warmup+60)}") "${client[@]}" 2>"$tmp/client.err")
  local rc=$?
  stop_server
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    echo "socket-study: echo $impl ${be:--} conns=$conns msg=$msg failed: $(tail -1 "$tmp/client.err")" >&2
    return 0
  fi
  if [ -s "$tmp/stats" ]; then
    local k
    for k in syscalls_per_op iterations_per_op flags workers blocking_max pinned; do
      v=$(tr ' ' '\n' <"$tmp/stats" | sed -n "s/^$k=//p" | head -1)
      [ "$k" = flags ] && k=ring_flags
      [ -n "$v" ] && extra="$extra $k=$v"
    done
  fi
  [[ $extra == *syscalls_per_op=* ]] || extra="$extra syscalls_per_op=-"
  [[ $extra == *iterations_per_op=* ]] || extra="$extra iterations_per_op=-"
  echo "$line$extra set=$set rep=$rep cmd=${be:+TRILOOP_BACKEND=$be }$server_cmd | ${client[*]}"
  echo "socket-study:   $(echo "$line" | grep -o 'impl=[^ ]* backend=[^ ]* conns=[^ ]* msg=[^ ]*') $(echo "$line" | grep -o 'ops_per_s=[^ ]*')" >&2
}

# run_lines REP PROG ARGS...: runs a one-process benchmark, adds rep=.
run_lines() {
  local rep=$1; shift
  local out
  # The one-process benchmarks are triloop's (with their libev and
  # plain-recv baselines): part of the run when --impl names triloop.
  wanti triloop || return 0
  if [ $dry = 1 ]; then echo "${TRILOOP_BACKEND:+TRILOOP_BACKEND=$TRILOOP_BACKEND }${1##*/} ${*:2} rep=$rep"; return 0; fi
  out=$(timeout 120 "$@" 2>"$tmp/prog.err")
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "socket-study: SKIP ${TRILOOP_BACKEND:+TRILOOP_BACKEND=$TRILOOP_BACKEND }${*##*/}: $(grep -v pinned "$tmp/prog.err" | tail -1)" >&2
  fi
  [ -n "$out" ] && echo "$out" | awk -v r="$rep" -v c="${TRILOOP_BACKEND:+TRILOOP_BACKEND=$TRILOOP_BACKEND }$*" '{print $0 " rep=" r " cmd=" c}'
  return 0
}

start=$(date +%s)
tl_backends=${backends//,/ }
echo "socket-study: $mode mode, $reps rep(s), ${secs}s per echo point, programs in $bin" >&2

if has echo; then
  echo "socket-study: echo matrix: conns {$conns_list} x msg {$msg_list}" >&2
  for rep in $(seq 1 "$reps"); do
    for conns in $conns_list; do
      for msg in $msg_list; do
        # Interleaved so that the machine's drift hits every impl alike.
        for be in $tl_backends; do echo_point matrix triloop "$be" "$conns" "$msg" 1 "$rep"; done
        # Readiness style (tl_io + recv/send) on every backend.
        for be in $tl_backends; do echo_point matrix triloop-watch "$be" "$conns" "$msg" 1 "$rep"; done
        # PITFALLS 7's last step: multishot recv into a provided buffer ring.
        for be in $tl_backends; do echo_point matrix triloop-ms "$be" "$conns" "$msg" 1 "$rep"; done
        for impl in raw-uring raw-uring-plain raw-uring-ms libev-epoll libev-iouring $rust_impls; do
          echo_point matrix "$impl" "" "$conns" "$msg" 1 "$rep"
        done
      done
    done
  done
fi

if has reuseport; then
  echo "socket-study: SO_REUSEPORT scaling: 1 and 2 loops, conns {$rp_conns}, msg 64" >&2
  for rep in $(seq 1 "$reps"); do
    for conns in $rp_conns; do
      for be in $tl_backends; do
        [ "$be" = threadpool ] && continue
        for loops in 1 2; do echo_point reuseport triloop "$be" "$conns" 64 "$loops" "$rep"; done
      done
    done
  done
fi

if has stream; then
  echo "socket-study: stream (one-way, 64 KiB sends)" >&2
  for rep in $(seq 1 "$reps"); do
    for be in $tl_backends; do
      TRILOOP_BACKEND=$be run_lines "$rep" "$bin/stream" --secs "$side_secs"
    done
    run_lines "$rep" "$bin/stream" --secs "$side_secs" --impl plain-recv
  done
fi

if has accept; then
  echo "socket-study: accept rate" >&2
  for rep in $(seq 1 "$reps"); do
    for be in $tl_backends; do
      TRILOOP_BACKEND=$be run_lines "$rep" "$bin/accept_rate" --secs "$side_secs"
    done
  done
fi

if has overhead; then
  echo "socket-study: loop overhead" >&2
  for rep in $(seq 1 "$reps"); do
    for be in $tl_backends; do
      TRILOOP_BACKEND=$be run_lines "$rep" "$bin/loop_overhead" --secs "$ovh_secs"
    done
    run_lines "$rep" "$bin/loop_overhead" --secs "$ovh_secs" --impl libev-epoll
    run_lines "$rep" "$bin/loop_overhead" --secs "$ovh_secs" --impl libev-iouring
  done
fi

echo "socket-study: done in $(( $(date +%s) - start )) s" >&2
