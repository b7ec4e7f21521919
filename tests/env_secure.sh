#!/bin/sh
# setuid programs ignore TRILOOP_* variables (getauxval(AT_SECURE)), even a
# bad number that makes a plain program's tl_loop_new fail with -EINVAL.
# Needs root (to make a binary setuid to nobody) and a mount without nosuid.
[ "$(id -u)" = 0 ] || { echo "SKIP: not root"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "SKIP: no user nobody"; exit 77; }
dir=$(mktemp -d /tmp/tl-secure.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
cp tests/env_secure "$dir/plain" && cp tests/env_secure "$dir/suid" || exit 1
chown nobody "$dir/suid" && chmod 4755 "$dir/suid" || exit 1
fail=0 ran=0
for b in uring epoll threadpool; do
  # Control: without setuid the bad number is an error.
  out=$(TRILOOP_THREADS=abc timeout 60 "$dir/plain" $b); rc=$?
  case "$out" in *"secure=0 loop=-22"*) ;; *) echo "FAIL $b plain: $out (exit $rc)"; fail=1; continue ;; esac
  out=$(TRILOOP_THREADS=abc TRILOOP_URING_ENTRIES=-5 timeout 60 "$dir/suid" $b 2>"$dir/err"); rc=$?
  case "$out" in
    *"secure=0"*) echo "SKIP $b: setuid has no effect here (nosuid mount?)"; continue ;;
  esac
  # LeakSanitizer cannot run in a setuid process (an ASan build).
  if [ -z "$out" ] && grep -q Sanitizer "$dir/err"; then
    echo "SKIP $b: $(head -1 "$dir/err")"; continue
  fi
  if [ $rc -eq 0 ] && [ "${out##*env_check=}" = 0 ]; then
    echo "PASS $b: $out"; ran=$((ran + 1))
  elif ! timeout 60 "$dir/plain" $b >/dev/null 2>&1; then
    echo "SKIP $b: no loop here even without variables"
  else
    echo "FAIL $b setuid: $out (exit $rc)"; fail=1
  fi
done
[ $fail -eq 0 ] || exit 1
[ $ran -gt 0 ] || exit 77
exit 0
