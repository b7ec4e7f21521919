#!/usr/bin/env python3
"""Runs examples/ and the README's example on every backend that works here,
each against a scripted client, with bounded waits (run from the build
directory; tests/examples.sh is the automake entry point).

TRILOOP_TEST_BACKENDS=uring,epoll narrows the list.  Exit 77 if no backend
works (automake's SKIP)."""
import os, random, signal, socket, subprocess, sys, tempfile, time

DEADLINE = 30          # seconds any one wait may take before it is a failure
failures = []


def backends():
    want = os.environ.get("TRILOOP_TEST_BACKENDS", "uring,epoll,threadpool").split(",")
    out = subprocess.run(["./triloop-info"], capture_output=True, text=True, timeout=DEADLINE,
                         env=clean_env()).stdout
    works = {l.split()[0] for l in out.splitlines() if l.startswith("  ") and
             l.split()[1].startswith("works")}
    for b in want:
        if b not in works:
            print(f"SKIP {b}: {out}")
    return [b for b in want if b in works]


def clean_env(backend=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRILOOP_")}
    if backend:
        env["TRILOOP_BACKEND"] = backend
    return env


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Server:
    """A server example on an ephemeral port; stop() wants a clean exit."""

    def __init__(self, backend, argv):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=clean_env(backend))
        line = self.p.stdout.readline()   # "listening on PORT (backend NAME)"
        check(line.startswith("listening on "), f"{argv[0]} said {line!r}: "
              f"{self.p.stderr.read() if self.p.poll() is not None else ''}")
        check(f"backend {backend}" in line, f"{argv[0]} runs on the wrong backend: {line!r}")
        self.port = int(line.split()[2])

    def connect(self):
        s = Sock(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(DEADLINE)
        s.connect(("127.0.0.1", self.port))
        return s

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise AssertionError("did not stop on SIGTERM")
        err = self.p.stderr.read()
        check(rc == 0, f"exit status {rc} after SIGTERM: {err}")


def recv_until(s, pred):
    data = b""
    while not pred(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def http_get(s, path, method="GET", extra=""):
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    return read_response(s, method == "HEAD")


def read_response(s, head_only=False):
    """Reads one response through a buffered reader kept on the socket, so
    that bytes of a pipelined next response are not lost."""
    if not hasattr(s, "_rd"):
        s._rd = s.makefile("rb")
    status = s._rd.readline()
    check(status.startswith(b"HTTP/1.1 "), f"bad status line {status!r}")
    code = int(status.split()[1])
    hdrs = {}
    while True:
        line = s._rd.readline()
        check(line.endswith(b"\r\n"), f"header cut short: {line!r}")
        if line == b"\r\n":
            break
        k, v = line.decode().split(":", 1)
        hdrs[k.lower()] = v.strip()
    n = 0 if head_only else int(hdrs["content-length"])
    body = s._rd.read(n) if n else b""
    check(len(body) == n, f"body cut short at {len(body)} of {n}")
    return code, hdrs, body


class Sock(socket.socket):
    """A socket that can carry the buffered reader read_response keeps."""


def test_httpd(backend, tmp):
    root = os.path.join(tmp, "www")
    os.makedirs(os.path.join(root, "sub"), exist_ok=True)
    big = random.randbytes(3 * 1024 * 1024 + 17)
    files = {"index.html": b"<h1>hello</h1>\n", "big.bin": big, "sub/empty": b""}
    for name, content in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(content)
    srv = Server(backend, ["examples/httpd", "-t", "1", root])
    try:
        with srv.connect() as s:
            # Keep-alive: several requests on one connection.
            code, _, body = http_get(s, "/")
            check(code == 200 and body == files["index.html"], f"GET /: {code} {body!r}")
            code, _, body = http_get(s, "/big.bin")
            check(code == 200 and body == big, f"GET /big.bin: {code}, {len(body)} bytes")
            code, hdrs, _ = http_get(s, "/big.bin", "HEAD")
            check(code == 200 and int(hdrs["content-length"]) == len(big), f"HEAD: {code}")
            code, _, body = http_get(s, "/sub/empty")
            check(code == 200 and body == b"", f"GET /sub/empty: {code}")
            code, _, _ = http_get(s, "/missing")
            check(code == 404, f"GET /missing: {code}")
            code, _, _ = http_get(s, "/../etc/passwd")
            check(code == 403, f"GET /../etc/passwd: {code}")
            # Two pipelined requests in one write.
            s.sendall(b"GET /index.html HTTP/1.1\r\n\r\nGET /sub/empty HTTP/1.1\r\n\r\n")
            c1, _, b1 = read_response(s)
            c2, _, b2 = read_response(s)
            check((c1, b1, c2, b2) == (200, files["index.html"], 200, b""), "pipelined")
            code, _, _ = http_get(s, "/", extra="Connection: close\r\n")
            check(code == 200, "Connection: close")
            check(s._rd.read(1) == b"", "the connection stays open after Connection: close")
        # Idle timeout (1 s): a silent connection is closed by the server.
        with srv.connect() as s:
            t0 = time.monotonic()
            check(s.recv(1) == b"", "idle connection got data")
            check(time.monotonic() - t0 < DEADLINE, "idle connection was not closed")
        # Many clients at once, each fetching the big file.
        socks = [srv.connect() for _ in range(8)]
        for s in socks:
            s.sendall(b"GET /big.bin HTTP/1.1\r\n\r\n")
        for s in socks:
            code, _, body = read_response(s)
            check(code == 200 and body == big, "concurrent GET /big.bin")
        # Stop with connections still open: they are closed and freed.
        srv.stop()
        for s in socks:
            s.close()
    finally:
        if srv.p.poll() is None:
            srv.p.kill()


def test_copy(backend, tmp):
    for size in (0, 1, 1000003, 2 * 1024 * 1024 + 4095):
        src, dst = os.path.join(tmp, "src"), os.path.join(tmp, "dst")
        data = random.randbytes(size)
        with open(src, "wb") as f:
            f.write(data)
        for args in ([], ["-d", "-j", "16", "-b", "64"], ["-j", "1", "-b", "4"]):
            with open(dst, "wb") as f:
                f.write(b"stale contents that must go" * 1000)
            r = subprocess.run(["examples/copy"] + args + [src, dst], capture_output=True,
                               text=True, timeout=DEADLINE, env=clean_env(backend))
            check(r.returncode == 0, f"copy {args} of {size} bytes: {r.stderr}")
            with open(dst, "rb") as f:
                check(f.read() == data, f"copy {args} of {size} bytes: contents differ")
    r = subprocess.run(["examples/copy", os.path.join(tmp, "nope"), dst], capture_output=True,
                       text=True, timeout=DEADLINE, env=clean_env(backend))
    check(r.returncode == 1 and "nope" in r.stderr, f"copy of a missing file: {r.stderr}")


def lines(s, n):
    data = recv_until(s, lambda d: d.count(b"\n") >= n)
    return data.decode().splitlines()


def test_chat(backend, tmp):
    srv = Server(backend, ["examples/chat", "-t", "2"])
    try:
        a, b = srv.connect(), srv.connect()
        check(lines(a, 1) == ["welcome, you are #1"], "welcome a")
        check(lines(b, 1) == ["welcome, you are #2"], "welcome b")
        a.sendall(b"hello from a\n")
        check(lines(b, 1) == ["#1: hello from a"], "b hears a")
        b.sendall(b"one\ntwo\n")
        check(lines(a, 2) == ["#2: one", "#2: two"], "a hears b's two lines")
        # A line in two pieces is sent once it is complete.
        a.sendall(b"split ")
        time.sleep(0.1)
        a.sendall(b"line\n")
        check(lines(b, 1) == ["#1: split line"], "b hears the joined line")
        # Idle timeout: a silent client is told and disconnected.
        c = srv.connect()
        t0 = time.monotonic()
        got = recv_until(c, lambda d: False).decode().splitlines()
        check(got == ["welcome, you are #3", "bye: idle"], f"idle client got {got}")
        check(time.monotonic() - t0 < DEADLINE, "idle client was not disconnected")
        c.close()
        # a and b were quiet as long: they are gone too by now (or soon).
        a.settimeout(DEADLINE)
        rest = recv_until(a, lambda d: False).decode().splitlines()
        check(rest[-1:] == ["bye: idle"], f"a got {rest}")
        a.close()
        b.close()
        # Stop with a client connected: it is closed and freed.
        d = srv.connect()
        check(lines(d, 1) == ["welcome, you are #4"], "welcome d")
        srv.stop()
        check(recv_until(d, lambda _: False) == b"", "d still open after the server stopped")
        d.close()
    finally:
        if srv.p.poll() is None:
            srv.p.kill()


def test_readme_example(backend, tmp):
    path = os.path.join(tmp, "hello.txt")
    with open(path, "wb") as f:
        f.write(b"x" * 123)
    r = subprocess.run(["tests/readme_example", path], capture_output=True, text=True,
                       timeout=DEADLINE, env=clean_env(backend))
    check(r.returncode == 0 and r.stdout == "read 123 bytes\n",
          f"exit {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}")


def main():
    bs = backends()
    if not bs:
        sys.exit(77)
    tests = [test_readme_example, test_copy, test_httpd, test_chat]
    only = os.environ.get("EXAMPLES_ONLY")
    for backend in bs:
        for t in tests:
            if only and only not in t.__name__:
                continue
            with tempfile.TemporaryDirectory(dir=".") as tmp:
                t0 = time.monotonic()
                try:
                    t(backend, tmp)
                    print(f"PASS {backend} {t.__name__} ({time.monotonic() - t0:.1f} s)")
                except Exception as e:   # noqa: BLE001 -- report every failure
                    print(f"FAIL {backend} {t.__name__}: {type(e).__name__}: {e}")
                    failures.append((backend, t.__name__))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
