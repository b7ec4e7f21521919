/*
 * The syscalls behind completion ops, for the backends that do them
 * themselves: blocking (pool workers, file ops) and nonblocking (the epoll
 * backend's sockets, the threadpool backend after its wait).  At the end,
 * the one policy all three backends follow to run an op on a pool worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base.h"
#include "pool.h"

unsigned tl__op_wants(const tl_op *op) {
  switch (op->type) {
  case TL_OP_WRITE: case TL_OP_WRITEV: case TL_OP_SEND: case TL_OP_CONNECT:
  case TL_OP_WRITE_FIXED: case TL_OP_SENDMSG: case TL_OP_SEND_ZC:
    return TL_WRITE;
  default:
    return TL_READ;
  }
}

static int64_t ret(ssize_t n) { return n < 0 ? -errno : n; }

static int64_t do_splice(tl_op *op, unsigned extra) {
  loff_t in = op->u.splice.off_in, out = op->u.splice.off_out;
  return ret(splice(op->fd, in < 0 ? NULL : &in, op->u.splice.fd_out, out < 0 ? NULL : &out,
                    op->u.splice.len, op->u.splice.flags | extra));
}

int tl__op_is_socket_op(int type) {
  return type == TL_OP_RECV || type == TL_OP_SEND || type == TL_OP_ACCEPT ||
         type == TL_OP_CONNECT || type == TL_OP_SENDMSG || type == TL_OP_RECVMSG ||
         type == TL_OP_SEND_ZC;
}

int tl__op_is_fs_op(int type) {
  return type == TL_OP_STATX || type == TL_OP_FTRUNCATE || type == TL_OP_FALLOCATE ||
         type == TL_OP_UNLINKAT || type == TL_OP_MKDIRAT || type == TL_OP_RENAMEAT;
}

/* A splice may wait on either side: the pipe it reads from (empty) or the
 * pipe it writes to (full), and EAGAIN does not say which.  A regular file
 * never waits, so the other side is the one; between two waitable fds the
 * wait alternates, so a full fd_out is noticed after one empty wake-up. */
int64_t tl__op_run_splice_waiting(struct tl__job *job, tl_op *op) {
  int in_file = tl__fd_is_file(op->fd) > 0;
  int out_file = tl__fd_is_file(op->u.splice.fd_out) > 0;
  int side = 0;
  for (;;) {
    int64_t r;
    do r = do_splice(op, SPLICE_F_NONBLOCK); while (r == -EINTR);
    if (r != -EAGAIN)
      return r;
    int wait_out = in_file ? 1 : out_file ? 0 : side;
    side ^= 1;
    int w = tl__pool_wait(job, wait_out ? op->u.splice.fd_out : op->fd,
                          wait_out ? POLLOUT : POLLIN, -1);
    if (w < 0)
      return w;
    if (w & POLLNVAL)
      return -EBADF;
  }
}

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
  case TL_OP_SEND: case TL_OP_SEND_ZC:
    do r = ret(send(op->fd, op->u.msg.buf, op->u.msg.len,
                    op->u.msg.flags | MSG_NOSIGNAL));
    while (r == -EINTR);
    return r;
  case TL_OP_SENDMSG:
    do r = ret(sendmsg(op->fd, op->u.msghdr.msg, op->u.msghdr.flags | MSG_NOSIGNAL));
    while (r == -EINTR);
    return r;
  case TL_OP_RECVMSG:
    do r = ret(recvmsg(op->fd, op->u.msghdr.msg, op->u.msghdr.flags));
    while (r == -EINTR);
    return r;
  case TL_OP_SHUTDOWN:
    return ret(shutdown(op->fd, op->u.shut.how));
  case TL_OP_STATX:
    return ret(statx(op->fd, op->u.statx.path, op->u.statx.flags, op->u.statx.mask,
                     op->u.statx.buf));
  case TL_OP_FTRUNCATE:
    do r = ret(ftruncate(op->fd, op->u.trunc.len)); while (r == -EINTR);
    return r;
  case TL_OP_FALLOCATE:
    do r = ret(fallocate(op->fd, op->u.falloc.mode, op->u.falloc.off, op->u.falloc.len));
    while (r == -EINTR);
    return r;
  case TL_OP_UNLINKAT:
    return ret(unlinkat(op->fd, op->u.path.path, op->u.path.flags));
  case TL_OP_MKDIRAT:
    return ret(mkdirat(op->fd, op->u.path.path, op->u.path.mode));
  case TL_OP_RENAMEAT:
    return ret(renameat2(op->fd, op->u.rename.oldpath, op->u.rename.newdirfd,
                         op->u.rename.newpath, op->u.rename.flags));
  case TL_OP_SPLICE:
    do r = do_splice(op, 0); while (r == -EINTR);
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
int64_t tl__op_run_nonblocking(tl_op *op) { return tl__op_try(op, 0); }

/* nb: the caller knows the fd is O_NONBLOCK already (it set it once and
 * keeps that per fd until the fd is closed by the loop's rule), so no
 * fcntl per op. */
int64_t tl__op_try(tl_op *op, int nb) {
  int64_t r;
  switch (op->type) {
  case TL_OP_RECV:
    do r = ret(recv(op->fd, op->u.msg.buf, op->u.msg.len, op->u.msg.flags | MSG_DONTWAIT));
    while (r == -EINTR);
    return r;
  case TL_OP_SEND: case TL_OP_SEND_ZC:
    do r = ret(send(op->fd, op->u.msg.buf, op->u.msg.len,
                    op->u.msg.flags | MSG_DONTWAIT | MSG_NOSIGNAL));
    while (r == -EINTR);
    return r;
  case TL_OP_SENDMSG:
    do r = ret(sendmsg(op->fd, op->u.msghdr.msg,
                       op->u.msghdr.flags | MSG_DONTWAIT | MSG_NOSIGNAL));
    while (r == -EINTR);
    return r;
  case TL_OP_RECVMSG:
    do r = ret(recvmsg(op->fd, op->u.msghdr.msg, op->u.msghdr.flags | MSG_DONTWAIT));
    while (r == -EINTR);
    return r == -EWOULDBLOCK ? -EAGAIN : r;
  case TL_OP_SPLICE:
    do r = do_splice(op, SPLICE_F_NONBLOCK); while (r == -EINTR);
    return r;
  case TL_OP_ACCEPT:
    if (!nb)
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
    /* Never a blocking connect on a worker (it could wait minutes for a
     * SYN answer, out of reach of a cancel or a destroy): without
     * O_NONBLOCK on the socket, no connect at all.  nb: known set. */
    if (!nb) {
      r = tl__set_nonblock(op->fd);
      if (r < 0)
        return r;
    }
    r = ret(connect(op->fd, op->u.connect.addr, op->u.connect.addrlen));
    if (r == -EINPROGRESS || r == -EINTR) {
      op->tl__res = -EINPROGRESS;
      return -EAGAIN;
    }
    return r;
  case TL_OP_READ: case TL_OP_WRITE: case TL_OP_READV: case TL_OP_WRITEV:
  case TL_OP_READ_FIXED: case TL_OP_WRITE_FIXED:
    if (!nb)
      tl__set_nonblock(op->fd);
    do r = rw(op, 0); while (r == -EINTR);
    return r == -EWOULDBLOCK ? -EAGAIN : r;
  default:
    return tl__op_run_blocking(op);
  }
}

/* ------------------------------------------------------------------ */
/* The one policy for running an op on a pool worker                  */
/* ------------------------------------------------------------------ */

int tl__op_pool_class(const tl_op *op) {
  /* A socket op or a splice may wait for its peer as long as the peer
   * likes: as a work job it would hold one of TRILOOP_THREADS_MAX slots, and
   * that many idle connections would keep every file op queued forever. */
  if (tl__op_is_socket_op(op->type) || op->type == TL_OP_SPLICE)
    return TL__POOL_WAIT;
  return TL__POOL_WORK;
}

/* Nonblocking tries, and a wait for readiness between them, so that a
 * cancel (or a destroy) interrupts an op that would block forever. */
static int64_t run_waiting(struct tl__job *job, tl_op *op) {
  short ev = tl__op_wants(op) == TL_WRITE ? POLLOUT : POLLIN;
  for (;;) {
    int64_t r = tl__op_run_nonblocking(op);
    if (r != -EAGAIN)
      return r;
    int w = tl__pool_wait(job, op->fd, ev, -1);
    if (w < 0)
      return w;                /* -ECANCELED: a cancel or a destroy */
    /* The fd was closed under the op: trying again could reach another
     * file that took its number. */
    if (w & POLLNVAL)
      return -EBADF;
    /* POLLERR/POLLHUP: the call itself reports what happened. */
  }
}

int64_t tl__op_run_on_worker(struct tl__job *job, tl_op *op, int file) {
  /* Cancelled between the dequeue and now: nothing is consumed yet.  No
   * lock: tl__pool_cancel stores it atomically; a cancel that comes later
   * interrupts the wait instead. */
  if (__atomic_load_n(&job->cancelled, __ATOMIC_RELAXED))
    return -ECANCELED;
  switch (op->type) {
  case TL_OP_RECV: case TL_OP_SEND: case TL_OP_ACCEPT: case TL_OP_CONNECT:
  case TL_OP_SENDMSG: case TL_OP_RECVMSG: case TL_OP_SEND_ZC:
    op->tl__res = 0;           /* tl__op_run_nonblocking's connect state */
    return run_waiting(job, op);
  case TL_OP_SPLICE:
    return tl__op_run_splice_waiting(job, op);
  case TL_OP_READ: case TL_OP_WRITE: case TL_OP_READV: case TL_OP_WRITEV:
  case TL_OP_READ_FIXED: case TL_OP_WRITE_FIXED:
    /* Pipes, ttys and sockets can block forever: they wait, so that a
     * cancel works.  Files never wait. */
    if (file < 0)
      file = tl__fd_is_file(op->fd);
    if (file < 0)
      return file;
    return file ? tl__op_run_blocking(op) : run_waiting(job, op);
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
