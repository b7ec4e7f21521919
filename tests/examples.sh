#!/bin/sh
# examples/ and the README's example against scripted clients on every
# backend (tests/examples.py says how); python3 is the client.
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
exec timeout 600 python3 "${srcdir:-.}/tests/examples.py"
