#!/bin/sh
# Runs each evbench workload against libev and libtriloop-ev, alternating,
# best of $REPS, and prints ops/s and the ratio (libtriloop-ev / libev).
# Our side runs on $TRILOOP_BACKEND (default epoll); libev on its default
# (epoll here).  Run from the build dir: sh src/ev/bench/run.sh
: "${REPS:=5}"
: "${TRILOOP_BACKEND:=epoll}"
export TRILOOP_BACKEND
b=src/ev/bench
printf '%-8s %14s %14s %7s   (triloop backend: %s)\n' workload libev libtriloop-ev ratio "$TRILOOP_BACKEND"
for w in timer io async echo; do
  best_ev=0 best_tl=0
  for _ in $(seq "$REPS"); do
    v=$(env -u LIBEV_FLAGS "$b/evbench.libev" $w | awk '{print $2}')
    [ "${v:-0}" -gt "$best_ev" ] && best_ev=$v
    v=$("$b/evbench.tl" $w | awk '{print $2}')
    [ "${v:-0}" -gt "$best_tl" ] && best_tl=$v
  done
  printf '%-8s %14s %14s %7s\n' $w $best_ev $best_tl \
    "$(awk -v a="$best_tl" -v b="$best_ev" 'BEGIN { printf "%.2fx", b ? a / b : 0 }')"
done
