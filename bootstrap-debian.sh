#!/bin/sh
# Installs what triloop needs on Debian 12 (run as root).  Idempotent: only
# missing packages are installed.  Add a package here, nowhere else.
set -eu
PKGS="build-essential autoconf automake libtool pkg-config git
      liburing-dev libev-dev libev4 check libseccomp-dev libuv1-dev
      fio gnuplot-nox python3 cargo rustc librust-tokio-dev librust-smol-dev librust-libc-dev procps util-linux valgrind
      nghttp2-client nghttp2-server nghttp2-proxy clang-14 libclang-rt-14-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "bootstrap: installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
else
  echo "bootstrap: all packages present" >&2
fi
