/*
 * copy: copies a file with several reads and writes in flight at once.
 *
 *   copy [-d] [-j DEPTH] [-b BLOCK_KIB] SRC DST
 *
 * The file is cut into blocks (default 256 KiB); DEPTH slots (default 4)
 * each read a block and write it at the same offset in DST, then take the
 * next block, so reads and writes of different blocks overlap.  At the end
 * DST is fsynced.
 *
 * -d opens both files with O_DIRECT: the page cache is bypassed, and every
 * buffer, offset and length must be a multiple of the device's logical
 * block size.  Buffers are 4096-byte aligned and blocks are multiples of
 * 4096; the last block is written whole and DST is then truncated to the
 * size of SRC.  A file system without O_DIRECT (tmpfs) makes the open fail
 * with EINVAL: copy then says so and goes through the page cache.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <triloop.h>

#define ALIGN 4096

struct slot {
  tl_op op;                /* zeroed by calloc */
  char *buf;               /* ALIGN-aligned, block bytes */
  int64_t off;             /* where this slot's block starts */
  size_t len;              /* bytes of the block that are data */
  size_t done;             /* bytes of them read (reading) or written (writing) */
};

static struct {
  const char *src_path, *dst_path;
  int direct;
  int src, dst;
  int64_t size;            /* of SRC */
  int64_t next;            /* offset of the next block no slot has taken */
  size_t block;
  int depth, busy;         /* slots, and slots with an op in flight */
  int failed;
  tl_op open_op, sync_op;
  struct slot *slots;
} C = {.src = -1, .dst = -1, .block = 256 * 1024, .depth = 4};

static size_t round_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static void fail(const char *what, int64_t err) {
  fprintf(stderr, "copy: %s: %s\n", what, tl_strerror((int)err));
  C.failed = 1;
}

static void on_read(tl_loop *loop, tl_op *op, int64_t res);
static void on_write(tl_loop *loop, tl_op *op, int64_t res);
static void all_written(tl_loop *loop);

/* Reads the rest of the slot's block (all of it, the first time). */
static void slot_read(tl_loop *loop, struct slot *s) {
  size_t want = s->len - s->done;
  if (C.direct)
    want = round_up(want);   /* O_DIRECT lengths are whole blocks; EOF cuts it short */
  int r = tl_read(loop, &s->op, C.src, s->buf + s->done, want, s->off + (int64_t)s->done,
                  on_read);
  if (r < 0)
    fail("read", r);
  else
    C.busy++;
}

static void slot_write(tl_loop *loop, struct slot *s) {
  size_t len = s->len - s->done;
  if (C.direct)
    len = round_up(len);     /* the tail past s->len is cut off by ftruncate */
  int r = tl_write(loop, &s->op, C.dst, s->buf + s->done, len, s->off + (int64_t)s->done,
                   on_write);
  if (r < 0)
    fail("write", r);
  else
    C.busy++;
}

/* Gives the slot the next block, or leaves it idle when there is none. */
static void slot_next(tl_loop *loop, struct slot *s) {
  if (C.failed || C.next >= C.size) {
    if (C.busy == 0)
      all_written(loop);
    return;
  }
  s->off = C.next;
  s->len = C.size - C.next < (int64_t)C.block ? (size_t)(C.size - C.next) : C.block;
  s->done = 0;
  C.next += (int64_t)s->len;
  slot_read(loop, s);
}

static void on_read(tl_loop *loop, tl_op *op, int64_t res) {
  struct slot *s = op->data;
  C.busy--;
  if (res <= 0) {
    fail("read", res == 0 ? -ENODATA : res);   /* 0: SRC shrank under us */
    slot_next(loop, s);
    return;
  }
  s->done += (size_t)res;
  if (s->done < s->len) {  /* a short read: read the rest */
    slot_read(loop, s);
    return;
  }
  s->done = 0;
  slot_write(loop, s);
}

static void on_write(tl_loop *loop, tl_op *op, int64_t res) {
  struct slot *s = op->data;
  C.busy--;
  if (res <= 0) {
    fail("write", res == 0 ? -EIO : res);
    slot_next(loop, s);
    return;
  }
  s->done += (size_t)res;
  if (s->done < s->len) {  /* a short write: write the rest */
    slot_write(loop, s);
    return;
  }
  slot_next(loop, s);
}

static void on_fsync(tl_loop *loop, tl_op *op, int64_t res) {
  (void)loop; (void)op;
  if (res < 0)
    fail("fsync", res);
}

/* Every slot is idle: make DST exactly as long as SRC and flush it. */
static void all_written(tl_loop *loop) {
  if (C.failed)
    return;
  if (ftruncate(C.dst, C.size) < 0) {
    fail("ftruncate", -errno);
    return;
  }
  int r = tl_fsync(loop, &C.sync_op, C.dst, on_fsync);
  if (r < 0)
    fail("fsync", r);
}

static void start_copy(tl_loop *loop) {
  struct stat st;
  if (fstat(C.src, &st) < 0) {
    fail(C.src_path, -errno);
    return;
  }
  C.size = st.st_size;
  C.slots = calloc((size_t)C.depth, sizeof *C.slots);
  if (!C.slots) {
    fail("calloc", -ENOMEM);
    return;
  }
  for (int i = 0; i < C.depth; i++) {
    struct slot *s = &C.slots[i];
    s->op.data = s;
    if (posix_memalign((void **)&s->buf, ALIGN, C.block) != 0) {
      fail("posix_memalign", -ENOMEM);
      return;
    }
  }
  if (C.size == 0) {
    all_written(loop);
    return;
  }
  for (int i = 0; i < C.depth; i++)
    slot_next(loop, &C.slots[i]);
}

/* Opens SRC, then DST, through the loop (opens can block on slow file
 * systems, so they go through the loop like any other file op). */
static void on_open(tl_loop *loop, tl_op *op, int64_t res) {
  int is_src = C.src < 0;
  const char *path = is_src ? C.src_path : C.dst_path;
  int flags = is_src ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
  if (res == -EINVAL && C.direct) {
    fprintf(stderr, "copy: %s: no O_DIRECT on this file system; using the page cache\n",
            path);
    C.direct = 0;
    if (C.src >= 0) {      /* SRC was opened with O_DIRECT: open it again without */
      close(C.src);
      C.src = -1;
      path = C.src_path;
      flags = O_RDONLY;
    }
    res = tl_openat(loop, op, AT_FDCWD, path, flags | O_CLOEXEC, 0644, on_open);
    if (res < 0)
      fail(path, res);
    return;
  }
  if (res < 0) {
    fail(path, res);
    return;
  }
  if (is_src) {
    C.src = (int)res;
    res = tl_openat(loop, op, AT_FDCWD, C.dst_path,
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (C.direct ? O_DIRECT : 0), 0644,
                    on_open);
    if (res < 0)
      fail(C.dst_path, res);
    return;
  }
  C.dst = (int)res;
  start_copy(loop);
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "dj:b:")) != -1) {
    switch (opt) {
    case 'd': C.direct = 1; break;
    case 'j': C.depth = atoi(optarg); break;
    case 'b': C.block = (size_t)atol(optarg) * 1024; break;
    default: goto usage;
    }
  }
  if (argc - optind != 2 || C.depth < 1 || C.depth > 1024 || C.block == 0 ||
      C.block % ALIGN != 0) {
  usage:
    fprintf(stderr, "usage: copy [-d] [-j DEPTH 1..1024] [-b BLOCK_KIB, a multiple of 4] "
                    "SRC DST\n");
    return 2;
  }
  C.src_path = argv[optind];
  C.dst_path = argv[optind + 1];

  tl_loop *loop;
  int r = tl_loop_new(&loop, TL_BACKEND_AUTO);
  if (r < 0) {
    fprintf(stderr, "copy: tl_loop_new: %s\n", tl_strerror(r));
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  r = tl_openat(loop, &C.open_op, AT_FDCWD, C.src_path,
                O_RDONLY | O_CLOEXEC | (C.direct ? O_DIRECT : 0), 0, on_open);
  if (r < 0)
    fail(C.src_path, r);
  /* Returns when no op is left in flight: done, or stopped by a failure. */
  r = tl_run(loop, TL_RUN_DEFAULT);
  if (r < 0)
    fail("tl_run", r);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  char backend[32];
  snprintf(backend, sizeof backend, "%s", tl_backend_name(loop));
  tl_loop_destroy(loop);

  double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
  if (!C.failed)
    printf("copied %lld bytes in %.3f s (%.1f MB/s, %s, %s backend)\n", (long long)C.size,
           secs, secs > 0 ? C.size / secs / 1e6 : 0.0, C.direct ? "O_DIRECT" : "page cache",
           backend);
  if (C.src >= 0)
    close(C.src);
  if (C.dst >= 0 && close(C.dst) < 0 && !C.failed)
    fail("close", -errno);
  for (int i = 0; C.slots && i < C.depth; i++)
    free(C.slots[i].buf);
  free(C.slots);
  return C.failed ? 1 : 0;
}
