/* Text for every value a tl_ function returns. */
#include <errno.h>
#include <string.h>

#include "triloop.h"

/* The plain strerror text: op results carry the kernel's errnos, and an
 * EINVAL or ENOENT from a read or an open means what it always means.  What
 * a value means when the API itself returns it is in the header, and why a
 * backend cannot be used is in tl_backend_probe()'s and tl_backend_auto()'s
 * why text. */
const char *tl_strerror(int err) {
  if (err >= 0)
    return "success";
  if (err < -4095)   /* not an errno; also keeps -INT_MIN from being negated */
    return "unknown error";
  return strerror(-err);
}
