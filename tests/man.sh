#!/bin/sh
# Every man page renders without a warning from man/groff at 80 columns,
# and names the functions of its group in NAME (so apropos finds them).
command -v man >/dev/null 2>&1 || { echo "SKIP: no man"; exit 77; }
dir="${srcdir:-.}/man"
fail=0 n=0
for page in "$dir"/*.[1-9]; do
  n=$((n + 1))
  err=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  if [ -n "$err" ]; then
    echo "FAIL $page:"; echo "$err"; fail=1
  else
    echo "PASS $page"
  fi
done
[ $n -gt 0 ] || { echo "FAIL: no man pages in $dir"; exit 1; }
# Every public function of the header appears in the NAME section of a page.
hdr="${srcdir:-.}/include/triloop.h"
names=$(sed -n '/^\.SH NAME/,/^\.SH SYNOPSIS/p' "$dir"/*.3 | tr -c 'a-z0-9_' '\n' | sort -u)
for fn in $(sed -n 's/^[a-z].*[ *]\(tl_[a-z0-9_]*\)(.*/\1/p' "$hdr" | sort -u); do
  echo "$names" | grep -qx "$fn" || { echo "FAIL: $fn is in no man page's NAME"; fail=1; }
done
exit $fail
