/*
 * File helper for the study:
 *   residency --file F [--create BYTES] [--warm] [--check-direct]
 * --create makes F at least BYTES long with non-zero data (so reads are not
 * of holes), --warm reads it whole into the page cache, --check-direct tries
 * an O_DIRECT open and one aligned 4 KiB read.  Then prints one line:
 *   resident_pct=<% of pages in the page cache per mincore> [direct=0|1 direct_why=...]
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static void create(const char *path, uint64_t size) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) bench_die(2, "residency: cannot create %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) bench_die(1, "residency: fstat: %s", strerror(errno));
  if ((uint64_t)st.st_size >= size) {
    close(fd);
    return;
  }
  uint64_t *buf = bench_buf(CHUNK), rng = 0x9e3779b97f4a7c15ull;
  for (uint64_t off = 0; off < size; off += CHUNK) {
    size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
    for (size_t i = 0; i < CHUNK / 8; i++) buf[i] = bench_rand(&rng);
    ssize_t w = pwrite(fd, buf, n, (off_t)off);
    if (w != (ssize_t)n)
      bench_die(1, "residency: writing %s: %s", path, w < 0 ? strerror(errno) : "short write");
  }
  if (fsync(fd) < 0) bench_die(1, "residency: fsync %s: %s", path, strerror(errno));
  free(buf);
  close(fd);
}

static void warm(int fd) {
  char *buf = bench_buf(CHUNK);
  ssize_t n;
  off_t off = 0;
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  while ((n = pread(fd, buf, CHUNK, off)) > 0) off += n;
  if (n < 0) bench_die(1, "residency: reading: %s", strerror(errno));
  free(buf);
}

static double resident(int fd, const char *path) {
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size == 0) return 0;
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) bench_die(1, "residency: mmap %s: %s", path, strerror(errno));
  long pg = sysconf(_SC_PAGESIZE);
  size_t pages = ((size_t)st.st_size + (size_t)pg - 1) / (size_t)pg, in = 0;
  unsigned char *vec = malloc(pages);
  if (!vec) bench_die(1, "residency: out of memory");
  if (mincore(map, (size_t)st.st_size, vec) < 0)
    bench_die(1, "residency: mincore: %s", strerror(errno));
  for (size_t i = 0; i < pages; i++) in += vec[i] & 1;
  free(vec);
  munmap(map, (size_t)st.st_size);
  return 100.0 * (double)in / (double)pages;
}

static void check_direct(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    printf(" direct=0 direct_why=open(O_DIRECT):%s", strerror(errno));
    return;
  }
  void *buf = bench_buf(4096);
  ssize_t n = pread(fd, buf, 4096, 0);
  if (n != 4096)
    printf(" direct=0 direct_why=aligned_4KiB_read:%s", n < 0 ? strerror(errno) : "short");
  else
    printf(" direct=1");
  free(buf);
  close(fd);
}

int main(int argc, char **argv) {
  const char *path = NULL;
  uint64_t size = 0;
  int do_warm = 0, do_direct = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--file") && i + 1 < argc) path = argv[++i];
    else if (!strcmp(argv[i], "--create") && i + 1 < argc) {
      char *end;
      size = strtoull(argv[++i], &end, 0);
      if (*end || size < 65536) bench_die(2, "residency: --create wants bytes >= 65536");
    } else if (!strcmp(argv[i], "--warm")) do_warm = 1;
    else if (!strcmp(argv[i], "--check-direct")) do_direct = 1;
    else bench_die(2, "usage: residency --file F [--create BYTES] [--warm] [--check-direct]");
  }
  if (!path) bench_die(2, "residency: --file PATH is required");
  if (size) create(path, size);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) bench_die(2, "residency: cannot open %s: %s", path, strerror(errno));
  if (do_warm) warm(fd);
  printf("resident_pct=%.1f", resident(fd, path));
  close(fd);
  if (do_direct) check_direct(path);
  putchar('\n');
  return 0;
}
