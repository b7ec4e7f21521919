/* Placeholder until the uring backend lands: refuses with -ENOSYS. */
#include <errno.h>
#include <stdio.h>
#include "base.h"

static int init(struct tl__base *b) {
  snprintf(b->why, sizeof b->why, "the uring backend is not built yet");
  return -ENOSYS;
}

const struct tl__backend tl__backend_uring = {
  .name = "uring", .id = TL_BACKEND_URING, .init = init,
};
