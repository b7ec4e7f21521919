#!/bin/bash
# libtriloop-ev against libev, side by side in one run.  From the build dir:
#   sh src/ev/bench/run.sh [micro] [echo] [ir]   (default: micro echo)
#
# micro: each evbench workload against libev (epoll) and libtriloop-ev on
#   $TRILOOP_BACKEND (default epoll), runs alternating, the MEDIAN of $REPS
#   (default 5); ops/s, process CPU ns per op, ratio of ops/s (tl / libev).
# echo: the split echo.  The server (the program under test, pinned to CPU 0)
#   runs alone in its process; the client is always evbench.libev on epoll
#   (pinned to CPU 1), so on a 2-core box it is the same load for every
#   server.  The client usually saturates first, so the figure that tells
#   the loops apart is the server's CPU (user+sys, all threads) per echoed
#   message.  Servers: libev io_uring, libev epoll, libtriloop-ev relinked on
#   uring and on epoll, and the libev binary with libtriloop-ev LD_PRELOADed
#   on uring.  Median of $ECHO_REPS (default 5) runs, interleaved.
# ir: noise-free, for a shared box: user-space instructions per op under
#   valgrind --tool=callgrind (kernel work is not counted), libev/epoll
#   against libtriloop-ev on $TRILOOP_BACKEND (epoll: under valgrind 3.19
#   the uring backend's async workload did not finish).
: "${REPS:=5}"
: "${ECHO_REPS:=5}"
: "${ECHO_N:=400000}"
: "${TRILOOP_BACKEND:=epoll}"
b=src/ev/bench
lib=$PWD/.libs/libtriloop-ev.so
what="$*"
[ -n "$what" ] || what="micro echo"
pin0= pin1=
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin0="taskset -c 0" pin1="taskset -c 1"
fi

median() { sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }

micro() {
  printf '%-8s %12s %8s %14s %8s %7s   (median of %d; triloop backend: %s)\n' \
    workload libev ns/op libtriloop-ev ns/op ratio "$REPS" "$TRILOOP_BACKEND"
  for w in timer io io-same async echo; do
    : >/tmp/evb.$$.ev; : >/tmp/evb.$$.tl
    for _ in $(seq "$REPS"); do
      LIBEV_FLAGS=4 "$b/evbench.libev" $w >>/tmp/evb.$$.ev
      env -u LIBEV_FLAGS TRILOOP_BACKEND=$TRILOOP_BACKEND "$b/evbench.tl" $w >>/tmp/evb.$$.tl
    done
    ev=$(awk '{print $2}' /tmp/evb.$$.ev | median) evc=$(awk '{print $3}' /tmp/evb.$$.ev | median)
    tl=$(awk '{print $2}' /tmp/evb.$$.tl | median) tlc=$(awk '{print $3}' /tmp/evb.$$.tl | median)
    printf '%-8s %12s %8s %14s %8s %7s   runs: libev %s | tl %s\n' $w "$ev" "$evc" "$tl" "$tlc" \
      "$(awk -v a="$tl" -v b="$ev" 'BEGIN { printf "%.2fx", b ? a / b : 0 }')" \
      "$(awk '{printf "%s ", $2}' /tmp/evb.$$.ev)" "$(awk '{printf "%s ", $2}' /tmp/evb.$$.tl)"
  done
  rm -f /tmp/evb.$$.ev /tmp/evb.$$.tl
}

# one split-echo run: echo_one <label> <server command...>; appends
# "<round trips/s> <server ns/msg>" to /tmp/evb.$$.<label>
echo_one() {
  local label=$1; shift
  coproc SRV { exec $pin0 "$@" echo-server 32; }
  local port= cl sl
  read -r _ port <&"${SRV[0]}"
  [ -n "$port" ] || { echo "server $label did not start" >&2; return 1; }
  cl=$(env -u LD_PRELOAD -u TRILOOP_BACKEND LIBEV_FLAGS=4 $pin1 "$b/evbench.libev" echo-client "$port" "$ECHO_N" 32)
  read -r sl <&"${SRV[0]}"
  wait "$SRV_PID" 2>/dev/null
  set -- $cl; local rts=$2 done=$3
  set -- $sl; local msgs=$2 ns=$3 be=$4
  [ "$done" = "$msgs" ] || echo "$label: client counted $done, server $msgs" >&2
  echo "$rts $ns $be" >>/tmp/evb.$$.$label
}

echo_split() {
  local labels="libev-uring libev-epoll tl-uring tl-epoll tl-preload-uring"
  for l in $labels; do : >/tmp/evb.$$.$l; done
  for _ in $(seq "$ECHO_REPS"); do
    echo_one libev-uring env LIBEV_FLAGS=128 "$b/evbench.libev"
    echo_one libev-epoll env LIBEV_FLAGS=4 "$b/evbench.libev"
    echo_one tl-uring env -u LIBEV_FLAGS TRILOOP_BACKEND=uring "$b/evbench.tl"
    echo_one tl-epoll env -u LIBEV_FLAGS TRILOOP_BACKEND=epoll "$b/evbench.tl"
    echo_one tl-preload-uring env -u LIBEV_FLAGS LD_PRELOAD="$lib" TRILOOP_BACKEND=uring "$b/evbench.libev"
  done
  printf '\nsplit echo: 32 conns, %d round trips of 64 B, server on cpu0, libev/epoll client on cpu1, median of %d\n' \
    "$ECHO_N" "$ECHO_REPS"
  printf '%-17s %9s %14s %12s   %s\n' server backend 'round trips/s' 'server ns/rt' 'runs (rt/s, ns/rt)'
  for l in $labels; do
    printf '%-17s %9s %14s %12s   %s\n' $l "$(awk '{print $3}' /tmp/evb.$$.$l | sort -u | tr '\n' ' ')" \
      "$(awk '{print $1}' /tmp/evb.$$.$l | median)" "$(awk '{print $2}' /tmp/evb.$$.$l | median)" \
      "$(awk '{printf "%s/%s ", $1, $2}' /tmp/evb.$$.$l)"
    rm -f /tmp/evb.$$.$l
  done
}

ir() {
  command -v valgrind >/dev/null || { echo "ir: no valgrind"; return; }
  printf '\n%-8s %8s %12s %12s %7s   (callgrind Ir per op; triloop backend: %s)\n' \
    workload ops libev libtriloop-ev ratio "$TRILOOP_BACKEND"
  for w in timer:300000 io:64000 io-same:64000 async:20000 echo:64000; do
    n=${w#*:} w=${w%:*}
    a=$(LIBEV_FLAGS=4 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$b/evbench.libev" $w $n 2>&1 | sed -n 's/.*Collected : //p')
    t=$(LD_LIBRARY_PATH=$PWD/.libs env -u LIBEV_FLAGS TRILOOP_BACKEND=$TRILOOP_BACKEND \
        valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$b/.libs/evbench.tl" $w $n 2>&1 | sed -n 's/.*Collected : //p')
    printf '%-8s %8s %12s %12s %7s\n' $w $n "$((a / n))" "$((t / n))" \
      "$(awk -v a="$a" -v t="$t" 'BEGIN { printf "%.2fx", t ? a / t : 0 }')"
  done
}

for w in $what; do
  case $w in
    micro) micro ;;
    echo) echo_split ;;
    ir) ir ;;
    *) echo "usage: run.sh [micro] [echo] [ir]" >&2; exit 2 ;;
  esac
done
