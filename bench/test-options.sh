#!/usr/bin/env bash
# bench/test-options.sh: bad options of the study stop it with a clear
# message (exit 2) BEFORE anything runs; good ones pass the checks.
#
#   bench/test-options.sh [BINDIR]
#
# Without BINDIR it runs against stub programs that record every call, so it
# needs no build and measures nothing (seconds); "nothing ran" is checked by
# the stubs' log staying empty and no results directory appearing.  With
# BINDIR (a build's bench/ directory) it also checks the real programs'
# own option errors.  Prints "N passed, M failed"; exit 1 on any failure.
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
study=$here/run-study
sstudy=$here/socket-study.sh
real=${1:-}

tmp=$(mktemp -d /tmp/test-options.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
stub=$tmp/bin
mkdir -p "$stub"
for p in residency file_read raw_uring_read raw_pool_read pread_inline libuv_read \
         echo_client echo_server echo_server_watch raw_uring_echo libev_echo stream \
         accept_rate loop_overhead; do
  printf '#!/bin/sh\necho "%s $*" >> "%s"\nexit 1\n' "$p" "$tmp/ran" > "$stub/$p"
  chmod +x "$stub/$p"
done

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok    $*"; }
bad() { fail=$((fail + 1)); echo "FAIL  $*"; }

# expect_stop DESCRIPTION REGEX ARGS...: run-study must exit 2 with a message
# matching REGEX on stderr, having run no program and created no directory.
expect_stop() {
  local what=$1 re=$2; shift 2
  : > "$tmp/ran"
  local before after rc
  before=$(find "$tmp/work" 2>/dev/null | sort)
  (cd "$tmp/work" && "$study" --bindir "$stub" "$@") > "$tmp/out" 2> "$tmp/err"
  rc=$?
  after=$(find "$tmp/work" 2>/dev/null | sort)
  if [ $rc -ne 2 ]; then bad "$what: exit $rc, want 2 ($(head -c 200 "$tmp/err"))"
  elif ! grep -Eq -e "$re" "$tmp/err"; then bad "$what: message '$(tail -n1 "$tmp/err")' does not match /$re/"
  elif [ -s "$tmp/ran" ]; then bad "$what: ran $(head -n1 "$tmp/ran") before stopping"
  elif [ "$before" != "$after" ]; then bad "$what: created files before stopping: $(comm -13 <(echo "$before") <(echo "$after") | head -3 | tr '\n' ' ')"
  else ok "$what: $(tail -n1 "$tmp/err")"; fi
}

# expect_plan DESCRIPTION REGEX ARGS...: --dry-run passes and prints a plan
# matching REGEX, running nothing.
expect_plan() {
  local what=$1 re=$2; shift 2
  : > "$tmp/ran"
  (cd "$tmp/work" && "$study" --bindir "$stub" --dry-run "$@") > "$tmp/out" 2> "$tmp/err"
  local rc=$?
  if [ $rc -ne 0 ]; then bad "$what: exit $rc ($(tail -n1 "$tmp/err"))"
  elif ! grep -Eq -e "$re" "$tmp/out"; then bad "$what: plan lacks /$re/"
  elif [ -s "$tmp/ran" ]; then bad "$what: dry run ran $(head -n1 "$tmp/ran")"
  elif [ -e "$tmp/work/bench" ]; then bad "$what: dry run created bench/results"
  else ok "$what ($(grep -c '^  ' "$tmp/out") plan lines)"; fi
}

mkdir -p "$tmp/work" "$tmp/ro"
echo x > "$tmp/work/afile"

expect_stop "unknown option" "unknown option '--bogus'" --bogus
expect_stop "unknown workload" "unknown workload 'disk'" --only disk
expect_stop "unknown workload in a list" "unknown workload 'ehco'" --only rand,ehco
expect_stop "empty workload list" "at least one workload" --only ,
expect_stop "unknown implementation" "unknown implementation 'tokyo'" --impl tokio-ct,tokyo
expect_stop "unknown backend" "unknown backend 'kqueue'" --backends epoll,kqueue
expect_stop "depth 0" "queue depth must be an integer in 1..4096, got '0'" --qd 0
expect_stop "depth 0 in a list" "got '0'" --qd 1,0,32
expect_stop "depth too large" "got '5000'" --qd 5000
expect_stop "depth not a number" "got 'x'" --qd x
expect_stop "reps 0" "--reps must be 1..99" --reps 0
expect_stop "secs 0" "--secs must be > 0" --secs 0
expect_stop "secs negative" "--secs must be > 0" --secs -1
expect_stop "size too small" "at least 16 MiB" --size 1000
expect_stop "size not a number" "--size wants bytes" --size 1G
expect_stop "file in a missing directory" "directory of --file .* does not exist" --file /nonexistent/dir/f.dat
expect_stop "file in /proc (root cannot create it)" "cannot create or write the file '/proc/" --file /proc/study.dat
expect_stop "file is a directory" "cannot create or write the file" --file "$tmp/work"
expect_stop "output under a file" "cannot create or write the output directory" --out "$tmp/work/afile/out"
expect_stop "output in /proc" "cannot create or write the output directory" --out /proc/study-out
expect_stop "missing option argument" "--qd needs" --qd
expect_stop "no programs" "no bench programs|lacks residency" --bindir "$tmp/nowhere"

expect_plan "quick plan has every depth" "triloop uring rand qd=128 cached" --quick
expect_plan "full plan has seq O_DIRECT depths" "triloop epoll seq128k qd=8 direct" --full
expect_plan "--qd narrows the depths" "rand qd=4 cached" --qd 4
expect_plan "--only socket plans sockets only" "socket: .*--only echo,reuseport" --only socket
expect_plan "--only parts" "write\+fsync" --only write,echo
expect_plan "--dry-run shows the socket plan" "socket: echo matrix triloop uring conns=1 msg=64" --only echo
expect_plan "--impl selects implementations" "file: raw-pool rand qd=32" --impl raw-pool --only rand
expect_plan "--backends selects triloop backends" "file: triloop epoll rand" --backends epoll --only rand
expect_plan "--file in a writable directory" "triloop" --file "$tmp/ro/f.dat"
[ -e "$tmp/ro/f.dat" ] && bad "--file probe left the file behind" || ok "--file probe leaves nothing"

# socket-study.sh checks its options before starting servers.
for args in "--only bogus" "--backends kqueue" "--reps 0" "--secs 0" "--bogus"; do
  : > "$tmp/ran"
  # shellcheck disable=SC2086
  bash "$sstudy" --bin "$stub" $args > /dev/null 2> "$tmp/err"
  rc=$?
  if [ $rc -eq 2 ] && [ ! -s "$tmp/ran" ] && grep -q 'socket-study:' "$tmp/err"; then
    ok "socket-study.sh $args: $(tail -n1 "$tmp/err")"
  else
    bad "socket-study.sh $args: exit $rc, ran '$(head -n1 "$tmp/ran")'"
  fi
done

# The real programs refuse bad values themselves (exit 2, message).
if [ -n "$real" ]; then
  prog_stop() { # prog args...
    local p=$1; shift
    if [ ! -x "$real/$p" ]; then ok "$p not built here (skipped)"; return; fi
    "$real/$p" "$@" > /dev/null 2> "$tmp/err"
    local rc=$?
    if [ $rc -eq 2 ] && [ -s "$tmp/err" ]; then ok "$p $*: $(tail -n1 "$tmp/err")"
    else bad "$p $*: exit $rc, stderr '$(tail -n1 "$tmp/err")'"; fi
  }
  prog_stop file_read --file "$tmp/work/afile" --qd 0
  prog_stop file_read --file "$tmp/work/afile" --pattern zigzag
  prog_stop raw_uring_read --file "$tmp/work/afile" --qd 0
  prog_stop raw_pool_read --file "$tmp/work/afile" --qd 0
  prog_stop libuv_read --file "$tmp/work/afile" --qd 0
  prog_stop echo_client --port 1 --conns 0
  prog_stop echo_server_watch --bogus
  prog_stop residency --file /proc/nope --create 1048576
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
