/*
 * The syscalls behind completion ops, for the backends that do them
 * themselves: blocking (pool workers, file ops) and nonblocking (the epoll
 * backend's sockets, the threadpool backend after its wait).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base.h"

unsigned tl__op_wants(const tl_op *op) {
  switch (op->type) {
  case TL_OP_WRITE: case TL_OP_WRITEV: case TL_OP_SEND: case TL_OP_CONNECT:
  case TL_OP_WRITE_FIXED:
    return TL_WRITE;
  default:
    return TL_READ;
  }
}

static int64_t ret(ssize_t n) { return n < 0 ? -errno : n; }

/* read/write.  An offset of -1 uses the file position, as io_uring does;
 * sockets and pipes (positional == 0) ignore the offset. */
static int64_t rw(tl_op *op, int positional) {
  int64_t off = positional ? op->u.rw.off : -1;
  switch (op->type) {
  case TL_OP_READ: case TL_OP_READ_FIXED:   /* registered buffers are plain memory here */
    return ret(off < 0 ? read(op->fd, op->u.rw.buf, op->u.rw.len)
                       : pread(op->fd, op->u.rw.buf, op->u.rw.len, off));
  case TL_OP_WRITE: case TL_OP_WRITE_FIXED:
    return ret(off < 0 ? write(op->fd, op->u.rw.buf, op->u.rw.len)
                       : pwrite(op->fd, op->u.rw.buf, op->u.rw.len, off));
  }
  off = positional ? op->u.rwv.off : -1;
  switch (op->type) {
  case TL_OP_READV:
    return ret(off < 0 ? readv(op->fd, op->u.rwv.iov, op->u.rwv.iovcnt)
                       : preadv(op->fd, op->u.rwv.iov, op->u.rwv.iovcnt, off));
  case TL_OP_WRITEV:
    return ret(off < 0 ? writev(op->fd, op->u.rwv.iov, op->u.rwv.iovcnt)
                       : pwritev(op->fd, op->u.rwv.iov, op->u.rwv.iovcnt, off));
  }
  return -EINVAL;
}

static int64_t connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return -errno;
  return -err;
}

int64_t tl__op_run_blocking(tl_op *op) {
  int64_t r;
  switch (op->type) {
  case TL_OP_READ: case TL_OP_WRITE: case TL_OP_READV: case TL_OP_WRITEV:
  case TL_OP_READ_FIXED: case TL_OP_WRITE_FIXED:
    do r = rw(op, 1); while (r == -EINTR);
    /* Not seekable (a pipe or socket handed to a file op): no offset. */
    if (r == -ESPIPE)
      do r = rw(op, 0); while (r == -EINTR);
    return r;
  case TL_OP_FSYNC:
    return ret(fsync(op->fd));
  case TL_OP_FDATASYNC:
    return ret(fdatasync(op->fd));
  case TL_OP_OPENAT:
    return ret(openat(op->fd, op->u.open.path, op->u.open.flags | O_CLOEXEC,
                      op->u.open.mode));
  case TL_OP_CLOSE:
    /* Linux always releases the fd, even on EINTR: never retry close. */
    return ret(close(op->fd));
  case TL_OP_ACCEPT:
    do r = ret(accept4(op->fd, op->u.accept.addr, op->u.accept.addrlen,
                       op->u.accept.flags | SOCK_CLOEXEC));
    while (r == -EINTR);
    return r;
  case TL_OP_CONNECT:
    r = ret(connect(op->fd, op->u.connect.addr, op->u.connect.addrlen));
    if (r == -EINTR || r == -EINPROGRESS) {
      struct pollfd p = { .fd = op->fd, .events = POLLOUT };
      while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
      return connect_result(op->fd);
    }
    return r;
  case TL_OP_RECV:
    do r = ret(recv(op->fd, op->u.msg.buf, op->u.msg.len, op->u.msg.flags));
    while (r == -EINTR);
    return r;
  case TL_OP_SEND:
    do r = ret(send(op->fd, op->u.msg.buf, op->u.msg.len,
                    op->u.msg.flags | MSG_NOSIGNAL));
    while (r == -EINTR);
    return r;
  }
  return -EINVAL;
}

/*
 * Never blocks.  Sockets: MSG_DONTWAIT, so the user's fd flags stay as they
 * were.  accept/connect and reads of pipes need O_NONBLOCK on the fd itself;
 * the header documents that the loop sets it.
 * A connect op is resumable: the first call starts it (-EAGAIN while in
 * progress, op->tl__res remembers), later calls read SO_ERROR once writable.
 */
int64_t tl__op_run_nonblocking(tl_op *op) {
  int64_t r;
  switch (op->type) {
  case TL_OP_RECV:
    do r = ret(recv(op->fd, op->u.msg.buf, op->u.msg.len, op->u.msg.flags | MSG_DONTWAIT));
    while (r == -EINTR);
    return r;
  case TL_OP_SEND:
    do r = ret(send(op->fd, op->u.msg.buf, op->u.msg.len,
                    op->u.msg.flags | MSG_DONTWAIT | MSG_NOSIGNAL));
    while (r == -EINTR);
    return r;
  case TL_OP_ACCEPT:
    tl__set_nonblock(op->fd);
    do r = ret(accept4(op->fd, op->u.accept.addr, op->u.accept.addrlen,
                       op->u.accept.flags | SOCK_CLOEXEC));
    while (r == -EINTR);
    return r == -EWOULDBLOCK ? -EAGAIN : r;
  case TL_OP_CONNECT:
    if (op->tl__res == -EINPROGRESS) {
      struct pollfd p = { .fd = op->fd, .events = POLLOUT };
      if (poll(&p, 1, 0) == 0)
        return -EAGAIN;
      op->tl__res = 0;
      return connect_result(op->fd);
    }
    tl__set_nonblock(op->fd);
    r = ret(connect(op->fd, op->u.connect.addr, op->u.connect.addrlen));
    if (r == -EINPROGRESS || r == -EINTR) {
      op->tl__res = -EINPROGRESS;
      return -EAGAIN;
    }
    return r;
  case TL_OP_READ: case TL_OP_WRITE: case TL_OP_READV: case TL_OP_WRITEV:
  case TL_OP_READ_FIXED: case TL_OP_WRITE_FIXED:
    tl__set_nonblock(op->fd);
    do r = rw(op, 0); while (r == -EINTR);
    return r == -EWOULDBLOCK ? -EAGAIN : r;
  default:
    return tl__op_run_blocking(op);
  }
}

/* TL_FLAG_FILE_NOWAIT's inline try: the op's read or write with RWF_NOWAIT
 * (page cache only, -EAGAIN if it would wait for the device or a lock).
 * An offset of -1 uses the file position, as the blocking path does. */
int64_t tl__op_run_nowait(tl_op *op) {
  struct iovec one;
  const struct iovec *iov = &one;
  int cnt = 1;
  int64_t off;
  int write_op = 0;
  switch (op->type) {
  case TL_OP_WRITE: case TL_OP_WRITE_FIXED:
    write_op = 1;
    /* fall through */
  case TL_OP_READ: case TL_OP_READ_FIXED:
    one.iov_base = op->u.rw.buf;
    one.iov_len = op->u.rw.len;
    off = op->u.rw.off;
    break;
  case TL_OP_WRITEV:
    write_op = 1;
    /* fall through */
  case TL_OP_READV:
    iov = op->u.rwv.iov;
    cnt = (int)op->u.rwv.iovcnt;
    off = op->u.rwv.off;
    break;
  default:
    return -EAGAIN;
  }
  int64_t r;
  do
    r = ret(write_op ? pwritev2(op->fd, iov, cnt, off < 0 ? -1 : off, RWF_NOWAIT)
                     : preadv2(op->fd, iov, cnt, off < 0 ? -1 : off, RWF_NOWAIT));
  while (r == -EINTR);
  return r == -EWOULDBLOCK ? -EAGAIN : r;
}
