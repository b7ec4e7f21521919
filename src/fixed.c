/*
 * Registered buffers and files (include/triloop.h): the front end's copy
 * of the tables, which every backend validates against, and the calls
 * that hand them to a backend that wants them (uring).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define MAX_BUFS 16384u             /* the kernel's IORING_MAX_REG_BUFFERS */
#define MAX_BUF_LEN (1ul << 30)     /* and its limit on one buffer */
#define MAX_FILES 32768u            /* what kernels since 5.5 all take */

int tl__fixed_register_buffers(struct tl__base *b, const struct iovec *iov, unsigned n) {
  struct tl__fixed *f = &b->fixed;
  if (f->iov)
    return -EBUSY;
  if (!iov || n == 0 || n > MAX_BUFS)
    return -EINVAL;
  for (unsigned i = 0; i < n; i++)
    if (iov[i].iov_len > MAX_BUF_LEN || (!iov[i].iov_base && iov[i].iov_len))
      return -EFAULT;
  struct iovec *copy = malloc(n * sizeof *copy);
  if (!copy)
    return -ENOMEM;
  memcpy(copy, iov, n * sizeof *copy);
  f->iov = copy;
  f->nbufs = n;
  if (b->be->register_buffers) {
    int r = b->be->register_buffers(b, copy, n);
    if (r < 0) {
      f->iov = NULL;
      f->nbufs = 0;
      free(copy);
      return r;
    }
  }
  return 0;
}

int tl__fixed_unregister_buffers(struct tl__base *b) {
  struct tl__fixed *f = &b->fixed;
  if (!f->iov)
    return -ENXIO;
  if (f->bufs_busy)
    return -EBUSY;
  if (b->be->register_buffers) {
    int r = b->be->register_buffers(b, NULL, 0);
    if (r < 0)
      return r;
  }
  free(f->iov);
  f->iov = NULL;
  f->nbufs = 0;
  return 0;
}

static int map_fd(struct tl__fixed *f, int fd, unsigned idx) {
  if ((unsigned)fd >= f->nfile_of) {
    unsigned n = f->nfile_of ? f->nfile_of : 64;
    while (n <= (unsigned)fd)
      n *= 2;
    uint32_t *m = realloc(f->file_of, n * sizeof *m);
    if (!m)
      return -ENOMEM;
    memset(m + f->nfile_of, 0, (n - f->nfile_of) * sizeof *m);
    f->file_of = m;
    f->nfile_of = n;
  }
  if (!f->file_of[fd])   /* an fd registered twice: its first index */
    f->file_of[fd] = idx + 1;
  return 0;
}

/* Rebuilds fd -> index from the table (after any change; the table is
 * small next to the cost of the register syscall that goes with it). */
static int remap(struct tl__fixed *f) {
  if (f->file_of)
    memset(f->file_of, 0, f->nfile_of * sizeof *f->file_of);
  for (unsigned i = 0; i < f->nfiles; i++)
    if (f->fds[i] >= 0 && map_fd(f, f->fds[i], i) < 0)
      return -ENOMEM;
  return 0;
}

static int check_fds(const int *fds, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    if (fds[i] < -1 || (fds[i] >= 0 && fcntl(fds[i], F_GETFD) < 0))
      return -EBADF;
  return 0;
}

int tl__fixed_register_files(struct tl__base *b, const int *fds, unsigned n) {
  struct tl__fixed *f = &b->fixed;
  if (f->fds)
    return -EBUSY;
  if (!fds || n == 0 || n > MAX_FILES)
    return -EINVAL;
  int r = check_fds(fds, n);
  if (r < 0)
    return r;
  int *copy = malloc(n * sizeof *copy);
  if (!copy)
    return -ENOMEM;
  memcpy(copy, fds, n * sizeof *copy);
  f->fds = copy;
  f->nfiles = n;
  r = remap(f);
  if (r == 0 && b->be->register_files)
    r = b->be->register_files(b, copy, n);
  if (r < 0) {
    f->fds = NULL;
    f->nfiles = 0;
    free(copy);
    remap(f);
  }
  return r;
}

int tl__fixed_update_files(struct tl__base *b, unsigned off, const int *fds, unsigned n) {
  struct tl__fixed *f = &b->fixed;
  if (!f->fds)
    return -ENXIO;
  if (!fds || n == 0 || off > f->nfiles || n > f->nfiles - off)
    return -EINVAL;
  int r = check_fds(fds, n);
  if (r < 0)
    return r;
  int *old = malloc(n * sizeof *old);
  if (!old)
    return -ENOMEM;
  memcpy(old, f->fds + off, n * sizeof *old);
  memcpy(f->fds + off, fds, n * sizeof *old);
  r = remap(f);
  if (r == 0 && b->be->update_files)
    r = b->be->update_files(b, off, fds, n);
  if (r < 0) {
    memcpy(f->fds + off, old, n * sizeof *old);
    remap(f);
  }
  free(old);
  return r;
}

int tl__fixed_unregister_files(struct tl__base *b) {
  struct tl__fixed *f = &b->fixed;
  if (!f->fds)
    return -ENXIO;
  if (f->files_busy)
    return -EBUSY;
  if (b->be->register_files) {
    int r = b->be->register_files(b, NULL, 0);
    if (r < 0)
      return r;
  }
  free(f->fds);
  f->fds = NULL;
  f->nfiles = 0;
  remap(f);
  return 0;
}

/* fd is about to be closed: every slot that holds it becomes empty, so
 * that the number, once reused, is not taken for the old file. */
void tl__fixed_forget_fd(struct tl__base *b, int fd) {
  struct tl__fixed *f = &b->fixed;
  static const int empty = -1;
  while (tl__fixed_file(f, fd) >= 0) {
    unsigned i = (unsigned)tl__fixed_file(f, fd);
    if (tl__fixed_update_files(b, i, &empty, 1) < 0) {
      /* The kernel refused: at least never use the slot for fd again. */
      f->fds[i] = -1;
      f->file_of[fd] = 0;
      remap(f);
    }
  }
}

/* At destroy, after the last callback (the backend's tables go with its
 * kernel state). */
void tl__fixed_free(struct tl__base *b) {
  struct tl__fixed *f = &b->fixed;
  free(f->iov);
  free(f->fds);
  free(f->file_of);
  memset(f, 0, sizeof *f);
}
