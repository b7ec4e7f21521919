#!/bin/bash
# CI stage: the libFuzzer target (tests/fuzz/fuzz_api.c) on every backend.
# Budget: about 1 minute to build, then FUZZ_SECONDS (default 60) per
# backend, run one after another (about 4 minutes in all on 2 cores).
# Each run starts from the committed seeds (tests/fuzz/corpus) plus what
# earlier runs of this stage found (build/fuzz/corpus-<backend>).  Crashes,
# invariant violations, timeouts and OOMs leave their input in build/fuzz/
# (crash-*, timeout-*, oom-*); replay one with
#   TRILOOP_FUZZ_BACKEND=<backend> TRILOOP_FUZZ_TRACE=1 build/fuzz/fuzz_api <file>
# Skips (exit 0, says SKIP) when clang's libFuzzer is not installed; a
# backend this machine cannot run (io_uring forbidden) is a SKIP too.
set -uo pipefail
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TOP"
secs=${FUZZ_SECONDS:-60}
# A fixed seed makes a CI run repeatable (threads aside): a failure here can
# be replayed with the same command; FUZZ_SEED=0 lets libFuzzer pick.
seed=${FUZZ_SEED:-1}
out=build/fuzz

if ! tests/fuzz/build.sh; then
  if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
       ${CC:-clang} -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
    echo "SKIP fuzz: clang with libFuzzer not available (Debian: clang-14 libclang-rt-14-dev)"
    exit 0
  fi
  echo "fuzz: build failed"
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi

passed=0 failed=0 skipped=0
summary=""
for be in uring epoll threadpool; do
  corpus=$out/corpus-$be
  mkdir -p "$corpus"
  log=$out/run-$be.log
  TRILOOP_FUZZ_BACKEND=$be "$out/fuzz_api" -max_total_time="$secs" -timeout=20 -seed="$seed" \
    -rss_limit_mb=2048 -max_len=2048 -print_final_stats=1 \
    -artifact_prefix="$out/$be-" "$corpus" tests/fuzz/corpus >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ $rc -eq 2 ] && grep -q "unusable here" "$log"; then
    echo "SKIP fuzz $be: $(grep 'unusable here' "$log")"
    skipped=$((skipped + 1))
    continue
  fi
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    summary="$summary $be=${execs:-?}"
    echo "fuzz $be: ok, ${execs:-?} executions in ${secs}s, corpus $(ls "$corpus" | wc -l) files"
  else
    failed=$((failed + 1))
    echo "fuzz $be: FAILED (exit $rc) after ${execs:-?} executions; log $log:"
    grep -v '^#[0-9]\|^INFO' "$log" | grep -v '^    #[1-9][0-9]' | tail -n 40
  fi
done
echo "fuzz executions:$summary"
echo "fuzz: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
