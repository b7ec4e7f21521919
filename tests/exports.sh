#!/bin/sh
# libtriloop exports exactly the names src/triloop.map lists, both ways: a
# public function missing from the map would not link for users, a name in
# the map the library lacks is a stale line.  (tl_fault_* is a pattern for
# the fault-injection build only.)
srcdir=${srcdir:-.}
lib=.libs/libtriloop.so
[ -f "$lib" ] || { echo "no $lib (static-only build)"; exit 77; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
sed -n 's/^ *\(tl_[a-z0-9_]*\);.*/\1/p' "$srcdir/src/triloop.map" | sort -u >"$tmp/want"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRV]$/ {print $3}' | grep -v '^tl_fault_' | sort -u >"$tmp/have"
fail=0
extra=$(comm -13 "$tmp/want" "$tmp/have")
[ -z "$extra" ] || { echo "FAIL: exported but not in src/triloop.map: $extra"; fail=1; }
missing=$(comm -23 "$tmp/want" "$tmp/have")
[ -z "$missing" ] || { echo "FAIL: in src/triloop.map but not defined: $missing"; fail=1; }
undeclared=""
for s in $(cat "$tmp/have"); do
  grep -q "\b$s\b" "$srcdir/include/triloop.h" || undeclared="$undeclared $s"
done
[ -z "$undeclared" ] || { echo "FAIL: exported but not declared in triloop.h:$undeclared"; fail=1; }
[ $fail -eq 0 ] && echo "PASS: $(wc -l <"$tmp/have") exports, exactly src/triloop.map"
exit $fail
