#!/bin/sh
# libtriloop-ev exports every symbol <ev.h> declares (list extracted from the
# system header by src/ev/ev-symbols.sh), nothing outside ev_*, and libev.so.4
# exports none that we lack; and the differential programs call every one of
# the functions at least once.
srcdir=${srcdir:-.}
lib=.libs/libtriloop-ev.so
[ -f "$lib" ] || { echo "no $lib"; exit 99; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
sh "$srcdir/src/ev/ev-symbols.sh" "${CC:-cc}" >"$tmp/want"
n=$(wc -l <"$tmp/want")
echo "ev.h declares $n symbols ($((n - 1)) functions + ev_default_loop_ptr)"
[ "$n" -ge 70 ] || { echo "FAIL: symbol extraction found only $n"; exit 1; }
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDB]$/ {print $3}' | sort -u >"$tmp/have"
fail=0
missing=$(comm -23 "$tmp/want" "$tmp/have")
[ -z "$missing" ] || { echo "FAIL: not exported: $missing"; fail=1; }
sed -n 's/^ *\(ev_[a-z0-9_]*\);.*/\1/p' "$srcdir/src/ev/ev.map" | sort -u >"$tmp/map"
[ "$(cat "$tmp/map")" = "$(cat "$tmp/have")" ] ||
  { echo "FAIL: exports differ from src/ev/ev.map:"; diff "$tmp/map" "$tmp/have"; fail=1; }
extra=$(grep -v '^ev_' "$tmp/have")
[ -z "$extra" ] || { echo "FAIL: exported outside ev_*: $extra"; fail=1; }
libev=$(ls /usr/lib/*/libev.so.4 /usr/lib/libev.so.4 2>/dev/null | head -1)
if [ -n "$libev" ]; then
  nm -D --defined-only "$libev" | awk '$2 ~ /^[TDB]$/ && $3 ~ /^ev_/ {print $3}' | sort -u >"$tmp/libev"
  lack=$(comm -23 "$tmp/libev" "$tmp/have")
  [ -z "$lack" ] || { echo "FAIL: libev.so.4 exports these, we do not: $lack"; fail=1; }
fi
uncalled=""
for s in $(grep -v ev_default_loop_ptr "$tmp/want"); do
  grep -q "\b$s\b" "$srcdir"/tests/ev/t_*.c || uncalled="$uncalled $s"
done
[ -z "$uncalled" ] || { echo "FAIL: no differential program calls:$uncalled"; fail=1; }
[ $fail -eq 0 ] && echo "PASS: all $n exported, every function called by tests/ev"
exit $fail
