/* Placeholder until the threadpool backend lands: refuses with -ENOSYS. */
#include <errno.h>
#include <stdio.h>
#include "base.h"

static int init(struct tl__base *b) {
  snprintf(b->why, sizeof b->why, "the threadpool backend is not built yet");
  return -ENOSYS;
}

const struct tl__backend tl__backend_threadpool = {
  .name = "threadpool", .id = TL_BACKEND_THREADPOOL, .init = init,
};
