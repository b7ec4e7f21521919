#!/bin/sh
# Stands in for the suite when configure did not find what the tests need.
echo "FAIL: the tests need packages configure did not find:${TESTMISSING:-?}" >&2
echo "  On Debian: apt-get install -y ${TESTMISSING:-} (or run ./bootstrap-debian.sh), then ./configure again" >&2
exit 1
