# Socket and loop-overhead half of the study (issue 6), included from
# bench/local.mk.  Driven by bench/socket-study.sh.  Header-only helpers in
# bench/sock_common.h, so the reference servers link nothing of ours.
noinst_PROGRAMS += bench/echo_client bench/raw_uring_echo \
	bench/echo_server bench/echo_server_watch bench/stream bench/accept_rate

# The load generator: plain epoll, the same for every server.
bench_echo_client_SOURCES = bench/echo_client.c bench/sock_common.h
bench_echo_client_LDADD = -lm

# Through triloop; backend from TRILOOP_BACKEND.
bench_echo_server_SOURCES = bench/echo_server.c bench/sock_common.h
bench_echo_server_LDADD = libtriloop.la -lpthread

# The same protocol on triloop's readiness watchers (tl_io + recv/send).
bench_echo_server_watch_SOURCES = bench/echo_server_watch.c bench/sock_common.h
bench_echo_server_watch_LDADD = libtriloop.la

bench_stream_SOURCES = bench/stream.c bench/sock_common.h
bench_stream_LDADD = libtriloop.la

bench_accept_rate_SOURCES = bench/accept_rate.c bench/sock_common.h
bench_accept_rate_LDADD = libtriloop.la

# Reference column: hand-written liburing.
bench_raw_uring_echo_SOURCES = bench/raw_uring_echo.c bench/sock_common.h
bench_raw_uring_echo_CFLAGS = $(AM_CFLAGS) $(URING_CFLAGS)
bench_raw_uring_echo_LDADD = $(URING_LIBS)

# libev too: its idle/start-poll-stop/churn figures are the reference column.
# These two need libev's library (configure's HAVE_LIBEV).
if HAVE_LIBEV
noinst_PROGRAMS += bench/loop_overhead bench/libev_echo
bench_loop_overhead_SOURCES = bench/loop_overhead.c bench/sock_common.h
bench_loop_overhead_LDADD = libtriloop.la $(LIBEV_LIBS) -lpthread

# Reference column: real libev.
bench_libev_echo_SOURCES = bench/libev_echo.c bench/sock_common.h
bench_libev_echo_LDADD = $(LIBEV_LIBS)
endif

dist_noinst_SCRIPTS += bench/socket-study.sh
