# The study (issue 6): one program per workload, and the driver
# bench/run-study that runs them all and writes bench/results/<timestamp>/.
# Built by plain `make` (noinst), never installed.
noinst_LTLIBRARIES += bench/libbench.la
bench_libbench_la_SOURCES = bench/common.c bench/common.h

BENCH_LIBS = bench/libbench.la

noinst_PROGRAMS += bench/residency bench/file_read bench/raw_uring_read \
	bench/raw_pool_read bench/pread_inline bench/calibrate

# What a null syscall, an EAGAIN recv, an empty epoll_wait and a
# cross-thread eventfd wake-up cost here (run at the start of the study).
bench_calibrate_SOURCES = bench/calibrate.c
bench_calibrate_LDADD = $(BENCH_LIBS) -lpthread

bench_residency_SOURCES = bench/residency.c
bench_residency_LDADD = $(BENCH_LIBS)

# Through triloop; backend from TRILOOP_BACKEND.
bench_file_read_SOURCES = bench/file_read.c
bench_file_read_LDADD = $(BENCH_LIBS) libtriloop.la

# Reference columns.
bench_raw_uring_read_SOURCES = bench/raw_uring_read.c
bench_raw_uring_read_CFLAGS = $(AM_CFLAGS) $(URING_CFLAGS)
bench_raw_uring_read_LDADD = $(BENCH_LIBS) $(URING_LIBS)

bench_raw_pool_read_SOURCES = bench/raw_pool_read.c
bench_raw_pool_read_LDADD = $(BENCH_LIBS) -lpthread

bench_pread_inline_SOURCES = bench/pread_inline.c
bench_pread_inline_LDADD = $(BENCH_LIBS)

if HAVE_LIBUV
noinst_PROGRAMS += bench/libuv_read
bench_libuv_read_SOURCES = bench/libuv_read.c
bench_libuv_read_CFLAGS = $(AM_CFLAGS) $(LIBUV_CFLAGS)
bench_libuv_read_LDADD = $(BENCH_LIBS) $(LIBUV_LIBS)
endif

dist_noinst_SCRIPTS += bench/run-study bench/test-options.sh
# The report: bench/report.py DIR, its parts in bench/report/, their unit
# tests (CI stage tests/ci/report.sh, which also regenerates the committed
# reports under bench/reports/ and compares).
EXTRA_DIST += bench/report.py bench/README.md bench/report/__init__.py bench/report/load.py \
	bench/report/stats.py bench/report/verdict.py bench/report/tables.py bench/report/plots.py \
	bench/report/document.py bench/report/test_report.py tests/ci/report.sh

# tokio and smol reference programs (bench/rust): cargo, offline, from
# Debian's registry (bench/rust/.cargo/config.toml); binaries land in
# bench/rust-target/release/ of the build directory, where run-study looks.
EXTRA_DIST += bench/rust/Cargo.toml bench/rust/Cargo.lock bench/rust/.cargo/config.toml \
	bench/rust/src/lib.rs bench/rust/src/bin/tokio_read.rs bench/rust/src/bin/tokio_echo.rs \
	bench/rust/src/bin/smol_read.rs bench/rust/src/bin/smol_echo.rs
if HAVE_RUST_REFS
RUST_REFS_SRC = $(srcdir)/bench/rust/Cargo.toml $(srcdir)/bench/rust/src/lib.rs \
	$(srcdir)/bench/rust/src/bin/tokio_read.rs $(srcdir)/bench/rust/src/bin/tokio_echo.rs \
	$(srcdir)/bench/rust/src/bin/smol_read.rs $(srcdir)/bench/rust/src/bin/smol_echo.rs
bench/rust-target/release/tokio_read: $(RUST_REFS_SRC)
	cd $(srcdir)/bench/rust && CARGO_TARGET_DIR=$(abs_builddir)/bench/rust-target \
	  $(CARGO) build --release --offline --quiet
	touch $@
all-local: bench/rust-target/release/tokio_read
clean-local:
	rm -rf bench/rust-target
endif

# Socket and loop-overhead programs (the other half of the study).
include bench/socket.mk
