/*
 * tests/env_secure.sh runs this setuid (AT_SECURE) and plainly, with a bad
 * number in TRILOOP_THREADS: a setuid program ignores TRILOOP_* variables,
 * so its loop comes up; the plain run must fail with -EINVAL.
 *   env_secure BACKEND  ->  prints "secure=S loop=R", exits 0 if the loop
 *                           came up, 1 if tl_loop_new failed, 2 on misuse.
 */
#include <stdio.h>
#include <sys/auxv.h>

#include "triloop.h"

int main(int argc, char **argv) {
  if (argc != 2 || tl_backend_from_name(argv[1]) <= 0)
    return 2;
  tl_loop *loop = NULL;
  int r = tl_loop_new(&loop, (unsigned)tl_backend_from_name(argv[1]));
  printf("secure=%lu loop=%d env_check=%d\n", getauxval(AT_SECURE), r, tl_env_check(NULL, 0));
  if (r < 0)
    return 1;
  tl_loop_destroy(loop);
  return 0;
}
