#!/bin/bash
# Long reliability runs that CI can't afford, per backend:
#  - fuzz: the libFuzzer target (tests/fuzz/fuzz_api.c, ASan+UBSan, its
#    invariants checked after every step) until N executions or T seconds;
#  - soak: tests/soak (plain build) for M minutes with thousands of loopback
#    connections.
# Everything is built under build/long-run/ (plain/ by configure, fuzz/ by
# tests/fuzz/build.sh).  Progress goes to stderr; the figures per backend to
# stdout: executions; callbacks owed = delivered; bytes verified; open fds and
# RSS at the end against the start.  Exits 1 on any loss or failure (and
# says which), 0 otherwise; a backend this machine cannot run, or fuzzing
# without clang's libFuzzer, is reported as SKIP.
#
#   tests/long-run.sh                      # 10M execs (<= 2 h) + 10 min soak, each backend
#   tests/long-run.sh --fuzz-secs 30 --soak-secs 30     # a quick check of the script
#
# Options:
#   --execs N        fuzz executions per backend (default 10000000)
#   --fuzz-secs T    fuzz time bound per backend, seconds (default 7200)
#   --soak-mins M    soak minutes per backend (default 10)
#   --soak-secs S    soak seconds per backend (instead of --soak-mins)
#   --conns C        soak connections (default 2000)
#   --backends LIST  default "uring epoll threadpool"
#   --no-fuzz, --no-soak
#   --jobs J         make -j (default 2)
#   --progress S     seconds between progress lines (default 30)
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
execs=10000000
fuzz_secs=7200
soak_secs=600
conns=2000
backends="uring epoll threadpool"
do_fuzz=1
do_soak=1
jobs=2
progress=30

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --execs) execs=$2; shift ;;
    --fuzz-secs) fuzz_secs=$2; shift ;;
    --soak-mins) soak_secs=$(($2 * 60)); shift ;;
    --soak-secs) soak_secs=$2; shift ;;
    --conns) conns=$2; shift ;;
    --backends) backends=$2; shift ;;
    --no-fuzz) do_fuzz=0 ;;
    --no-soak) do_soak=0 ;;
    --jobs) jobs=$2; shift ;;
    --progress) progress=$2; shift ;;
    *) usage ;;
  esac
  shift || usage
done

for be in $backends; do
  case "$be" in uring|epoll|threadpool) ;; *) echo "long-run: no backend '$be'"; usage ;; esac
done

out=$TOP/build/long-run
mkdir -p "$out"
note() { echo "long-run: $*" >&2; }
failed=0
results=""
result() { results="$results$*"$'\n'; echo "$*"; }

# While $1 (a pid) lives, every $progress seconds, the last line of $3 that
# matches $2, prefixed, on stderr.
watch_progress() {
  local pid=$1 pat=$2 log=$3 tag=$4
  while kill -0 "$pid" 2>/dev/null; do
    sleep "$progress" &
    wait $! 2>/dev/null
    kill -0 "$pid" 2>/dev/null || break
    local line
    line=$(grep -a -E "$pat" "$log" 2>/dev/null | tail -n 1)
    [ -n "$line" ] && echo "$tag: $line" >&2
  done
}

# ---------------------------------------------------------------- plain build
plain=$out/plain
if [ $do_soak -eq 1 ]; then
  note "building the plain tree in $plain"
  if [ ! -x "$TOP/configure" ]; then
    (cd "$TOP" && autoreconf -fi) >&2 || { echo "long-run: autoreconf failed"; exit 1; }
  fi
  mkdir -p "$plain"
  if [ ! -f "$plain/Makefile" ]; then
    (cd "$plain" && "$TOP/configure" -q --enable-werror) >&2 ||
      { echo "long-run: configure failed"; exit 1; }
  fi
  (cd "$plain" && make -j"$jobs" >/dev/null && make -j"$jobs" tests/soak >/dev/null) ||
    { echo "long-run: plain build failed"; exit 1; }
fi

# ----------------------------------------------------------------------- fuzz
if [ $do_fuzz -eq 1 ]; then
  fz=$out/fuzz
  note "building the fuzz target in $fz"
  if ! FUZZ_OUT=$fz "$TOP/tests/fuzz/build.sh" >"$out/fuzz-build.log" 2>&1; then
    if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
         ${CC:-clang} -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
      result "SKIP fuzz: clang with libFuzzer not available (Debian: clang-14 libclang-rt-14-dev)"
      do_fuzz=0
    else
      cat "$out/fuzz-build.log"
      echo "long-run: fuzz build failed"
      exit 1
    fi
  fi
fi
if [ $do_fuzz -eq 1 ]; then
  for be in $backends; do
    corpus=$fz/corpus-$be
    log=$fz/run-$be.log
    mkdir -p "$corpus"
    note "fuzz $be: up to $execs executions or ${fuzz_secs}s (log $log)"
    start=$(date +%s)
    TRILOOP_FUZZ_BACKEND=$be "$fz/fuzz_api" -runs="$execs" -max_total_time="$fuzz_secs" \
      -timeout=20 -rss_limit_mb=2048 -max_len=2048 -print_final_stats=1 \
      -artifact_prefix="$fz/$be-" "$corpus" "$TOP/tests/fuzz/corpus" >"$log" 2>&1 &
    pid=$!
    watch_progress $pid '^#[0-9]+' "$log" "fuzz $be" &
    wpid=$!
    wait $pid
    rc=$?
    kill $wpid 2>/dev/null
    wait $wpid 2>/dev/null
    took=$(($(date +%s) - start))
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -eq 2 ] && grep -q "unusable here" "$log"; then
      result "SKIP fuzz $be: $(grep -m1 'unusable here' "$log")"
    elif [ $rc -eq 0 ] && [ -n "$n" ]; then
      why="$execs executions reached"
      [ "$n" -lt "$execs" ] && why="stopped at the ${fuzz_secs}s bound"
      result "fuzz $be: ${n} executions in ${took}s ($why), every invariant held (owed = delivered per run), corpus $(ls "$corpus" | wc -l) files: PASS"
    else
      failed=1
      result "fuzz $be: FAIL (exit $rc) after ${n:-?} executions in ${took}s; artifacts $fz/$be-*, log $log"
      grep -a -v '^#[0-9]\|^INFO' "$log" | grep -a -v '^    #[1-9][0-9]' | tail -n 30
    fi
  done
fi

# ----------------------------------------------------------------------- soak
if [ $do_soak -eq 1 ]; then
  for be in $backends; do
    log=$out/soak-$be.log
    if ! "$plain/triloop-info" 2>/dev/null | grep -q -E "^ +$be +works"; then
      result "SKIP soak $be: $("$plain/triloop-info" 2>&1 | grep -E "^ +$be " | sed 's/^ *//')"
      continue
    fi
    note "soak $be: ${soak_secs}s, $conns connections (log $log)"
    TRILOOP_BACKEND=$be timeout $((soak_secs + 600)) "$plain/tests/soak" --secs "$soak_secs" \
      --conns "$conns" >"$log" 2>&1 &
    pid=$!
    watch_progress $pid '^[a-z]+: +[0-9]+s msgs' "$log" "soak" &
    wpid=$!
    wait $pid
    rc=$?
    kill $wpid 2>/dev/null
    wait $wpid 2>/dev/null
    # callbacks owed O delivered D (duplicates U, never V; ...)
    read -r owed deliv dup never < <(sed -n -E \
      's/.*callbacks owed ([0-9]+) delivered ([0-9]+) \(duplicates ([0-9]+), never ([0-9]+).*/\1 \2 \3 \4/p' "$log")
    read -r sent verified aborted bad < <(sed -n -E \
      's/.*bytes sent ([0-9]+) verified ([0-9]+) abandoned in aborts ([0-9]+) bad ([0-9]+).*/\1 \2 \3 \4/p' "$log")
    read -r fds0 fds1 pw0 pw1 < <(sed -n -E \
      's/.*open fds start ([0-9]+) end ([0-9]+) \(pool workers ([0-9]+) -> ([0-9]+)\).*/\1 \2 \3 \4/p' "$log")
    read -r rss0 rss1 < <(sed -n -E \
      's/.*RSS start ([0-9.]+) MiB, warm [0-9.]+ MiB, run end [0-9.]+ MiB, after destroy ([0-9.]+) MiB.*/\1 \2/p' "$log")
    secs=$(sed -n -E 's/^[a-z]+: ([0-9.]+) s, [0-9]+ conns.*/\1/p' "$log")
    lost=""
    [ $rc -eq 0 ] && grep -q ": PASS$" "$log" || lost="$lost soak exited $rc;"
    [ -n "${owed:-}" ] && [ "$owed" = "$deliv" ] || lost="$lost owed ${owed:-?} != delivered ${deliv:-?};"
    [ "${dup:-x}" = 0 ] && [ "${never:-x}" = 0 ] || lost="$lost duplicates ${dup:-?}, never ${never:-?};"
    [ "${bad:-x}" = 0 ] || lost="$lost bad bytes ${bad:-?};"
    if [ -z "${fds0:-}" ] || [ $((fds1 - pw1)) -ne $((fds0 - pw0)) ]; then
      lost="$lost fds ${fds0:-?} -> ${fds1:-?};"
    fi
    line="soak $be: ${secs:-?} s, $conns conns: callbacks owed ${owed:-?} = delivered ${deliv:-?}, bytes verified ${verified:-?} (sent ${sent:-?}, abandoned in aborts ${aborted:-?}, bad ${bad:-?}), fds ${fds0:-?} -> ${fds1:-?} (pool workers ${pw0:-?} -> ${pw1:-?}), RSS start ${rss0:-?} MiB, after destroy ${rss1:-?} MiB"
    if [ -z "$lost" ]; then
      result "$line: PASS"
    else
      failed=1
      result "$line: FAIL:$lost log $log"
      grep -a "FAIL" "$log" | tail -n 5
    fi
  done
fi

echo "== long-run summary"
printf '%s' "$results"
if [ $failed -ne 0 ]; then
  echo "long-run: FAILED"
  exit 1
fi
echo "long-run: nothing lost"
exit 0
