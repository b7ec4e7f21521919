#!/usr/bin/env bash
# CI stage: the study's option checks (bench/test-options.sh).  Bad options
# (unknown workload, depth 0, a path it cannot create, ...) must stop
# bench/run-study and bench/socket-study.sh with a clear message before
# anything runs.  Runs against stub programs: no build, no measurement.
# Budget: a few seconds (timeout 120 s).
set -u
: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$TOP" || exit 1
timeout 120 bash bench/test-options.sh
