/* Text for every value a tl_ function returns. */
#include <errno.h>
#include <string.h>

#include "triloop.h"

const char *tl_strerror(int err) {
  if (err >= 0)
    return "success";
  if (err < -4095)   /* not an errno; also keeps -INT_MIN out of the switch */
    return "unknown error";
  switch (-err) {
  case EINVAL:
    return "invalid argument (backend names: uring|epoll|threadpool|auto; or a bad TRILOOP_* number: see tl_env_check)";
  case EBUSY:
    return "already active, in flight, or called from inside the loop";
  case EALREADY:
    return "already stopped, or cancel already requested";
  case ENOENT:
    return "not in flight on this loop";
  case ESHUTDOWN:
    return "loop is being destroyed";
  case ECANCELED:
    return "operation cancelled";
  case EPERM:
    return "operation not permitted (for uring: seccomp or kernel.io_uring_disabled)";
  case ENOSYS:
    return "not supported by this kernel or backend";
  default:
    return strerror(-err);
  }
}
