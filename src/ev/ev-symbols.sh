#!/bin/sh
# Prints the symbols libev 4.33's <ev.h> declares with external linkage, one
# per line, sorted: the functions declared "extern" after preprocessing with
# the header's default configuration (EV_MULTIPLICITY=1 etc.), plus the one
# data symbol ev_default_loop_ptr (declared inside an inline function).
# Usage: ev-symbols.sh [cc]
cc=${1:-${CC:-cc}}
{
  printf '#include <ev.h>\n' | $cc -E -P -x c - |
    tr '\n' ' ' | sed 's/[;{}]/&\n/g' |
    grep -E '^[[:space:]]*extern' |
    grep -v 'ev_default_loop_ptr' |
    grep -oE '\bev_[a-z_0-9]+[[:space:]]*\(' | sed 's/[[:space:]]*($//'
  echo ev_default_loop_ptr
} | sort -u
