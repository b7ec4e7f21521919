#!/bin/sh
# Builds the libFuzzer target tests/fuzz/fuzz_api.c with clang, straight from
# the sources (no configure needed), out of tree: everything goes into
# build/fuzz/ under the top source dir, or into $FUZZ_OUT.
#
#   tests/fuzz/build.sh            -> build/fuzz/fuzz_api
#
# Needs clang with libFuzzer (Debian 12: clang-14 and libclang-rt-14-dev) and
# liburing-dev.  CC overrides the compiler; FUZZ_CFLAGS adds flags.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-$top/build/fuzz}
if [ -z "${CC:-}" ]; then
  if command -v clang-14 >/dev/null 2>&1; then CC=clang-14; else CC=clang; fi
fi
version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$top/configure.ac")
mkdir -p "$out"

uring_cflags=$(pkg-config --cflags liburing 2>/dev/null || true)
uring_libs=$(pkg-config --libs liburing 2>/dev/null || echo -luring)

# The library is built with the sanitizers and coverage too (fuzzer-no-link),
# so ASan sees its heap and libFuzzer sees its branches.
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
common="-std=gnu11 -g -O1 -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror -pthread
        -D_GNU_SOURCE -DPACKAGE_VERSION=\"${version:-0}\"
        -I$top/include -I$top/src $uring_cflags ${FUZZ_CFLAGS:-}"

# The library's sources as automake lists them (fault.c only belongs to
# --enable-fault-injection builds, which wrap syscalls at link time).
srcs=$(sed -n -E 's/^(libtlcore|libtriloop)_la_SOURCES *\+?= *//p' \
         "$top/src/local.mk" "$top/backends/local.mk" | tr ' \t' '\n\n' |
       grep '\.c$' | grep -v '^src/fault\.c$')
objs=""
for rel in $srcs; do
  src=$top/$rel
  obj="$out/$(basename "$(dirname "$src")")_$(basename "$src" .c).o"
  # shellcheck disable=SC2086
  $CC $common $san -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  objs="$objs $obj"
done
# shellcheck disable=SC2086
$CC $common $san -fsanitize=fuzzer "$top/tests/fuzz/fuzz_api.c" $objs \
  $uring_libs -lpthread -lm -o "$out/fuzz_api"
echo "built $out/fuzz_api ($CC)"
