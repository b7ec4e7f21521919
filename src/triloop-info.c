/* triloop-info: what this machine can run, and what auto picks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "triloop.h"

int main(int argc, char **argv) {
  (void)argc; (void)argv;
  const char *env = getenv("TRILOOP_BACKEND");
  printf("triloop %s\n", tl_version());
  if (env && *env && tl_backend_from_name(env) < 0) {
    fprintf(stderr, "triloop-info: TRILOOP_BACKEND=%s is not a backend; valid values: %s\n",
            env, tl_backend_names());
    return 2;
  }
  char why[1024];
  if (tl_env_check(why, sizeof why) < 0) {
    fprintf(stderr, "triloop-info: %s\n", why);
    return 2;
  }
  for (int id = TL_BACKEND_URING; id < TL_BACKEND_COUNT; id++) {
    int r = tl_backend_probe(id, why, sizeof why);
    int plain = r == 0 && !strcmp(why, "works");
    printf("  %-10s %s%s%s\n", tl_backend_id_name(id), r == 0 ? "works" : "unavailable",
           plain ? "" : ": ", plain ? "" : why);
  }
  int a = tl_backend_auto(why, sizeof why);
  if (a < 0)
    printf("auto: no backend works: %s\n", why);
  else
    printf("auto: %s (%s)\n", tl_backend_id_name(a), why);

  tl_loop *loop;
  int r = tl_loop_new(&loop, TL_BACKEND_AUTO);
  if (r < 0) {
    fprintf(stderr, "triloop-info: cannot create a loop with TRILOOP_BACKEND=%s: %s\n",
            env ? env : "(unset)", tl_strerror(r));
    return r == -EINVAL ? 2 : 1;
  }
  char desc[1024];
  tl_loop_describe(loop, desc, sizeof desc);
  printf("this environment (TRILOOP_BACKEND=%s): %s: %s\n", env ? env : "unset",
         tl_backend_name(loop), desc);
  tl_loop_destroy(loop);
  return 0;
}
