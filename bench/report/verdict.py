"""The question, answered per file workload.

Claim: "io_uring beats epoll by more on file IO than on network IO".  For
each file workload present, triloop's uring backend against its epoll
backend (same program, same run, paired by rep) gives a file ratio "how
many times better uring is"; the echo workload gives the socket ratio the
same way.  The claim holds for a workload when both
  - the file ratio is above 1 (its 95% interval lies above 1), and
  - the file ratio exceeds the socket ratio (the 95% interval of the mean
    file log ratio minus the mean socket log ratio lies above 0).
It fails when either interval lies wholly on the wrong side (file ratio
below 1, or file ratio below the socket ratio); otherwise it is
inconclusive: the data cannot tell."""
import math

from . import stats

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"

# (key, name, point filter).  Names get their block sizes and depths from
# the data (see describe()).
FILE_WORKLOADS = [
    ("cached-rand", "cached random reads", dict(workload="file-read", pattern="rand", direct="0", fsync="0")),
    ("direct-rand", "O_DIRECT random reads", dict(workload="file-read", pattern="rand", direct="1", fsync="0")),
    ("cached-seq", "sequential reads, cached", dict(workload="file-read", pattern="seq", direct="0", fsync="0")),
    ("direct-seq", "sequential reads, O_DIRECT", dict(workload="file-read", pattern="seq", direct="1", fsync="0")),
    ("write", "writes", dict(workload="file-write", fsync="0")),
    ("fsync", "writes + fsync each", dict(workload="file-write", fsync="1")),
]
MEASURES = {"cpu": "CPU per op, epoll ÷ uring", "thr": "throughput, uring ÷ epoll"}
BASE = ("uring", "epoll")


def file_pairs(st, spec, impl="triloop", sides=BASE):
    """[(point, uring rows, epoll rows)] for one file workload."""
    out = []
    for g, urows in st.find(impl=impl, backend=sides[0], **dict(dict(fixed=""), **spec)):
        want = {k: g[k] for k in ("workload", "pattern", "bs", "qd", "direct", "fsync", "threads")}
        erows = st.one(impl=impl, backend=sides[1], **want)
        if erows:
            out.append((g, urows, erows))
    out.sort(key=lambda p: (_int(p[0]["bs"]), _int(p[0]["qd"])))
    return out


def sock_pairs(st, impl="triloop", sides=BASE, other_impl=None):
    """[(point, uring rows, epoll rows)] for echo: every (conns, msg) of the
    echo matrix, one loop."""
    out = []
    for g, urows in st.find(workload="echo", impl=impl, backend=sides[0]):
        if g.get("loops", "") not in ("", "1") or g.get("set", "") == "reuseport":
            continue
        erows = st.one(workload="echo", impl=other_impl or impl, backend=sides[1], conns=g["conns"],
                       msg=g["msg"], loops=g["loops"], set=g["set"])
        if erows:
            out.append((g, urows, erows))
    out.sort(key=lambda p: (_int(p[0]["msg"]), _int(p[0]["conns"])))
    return out


def _int(s):
    try:
        return int(s)
    except (TypeError, ValueError):
        return 0


def _span(vals, unit=""):
    vals = sorted({_int(v) for v in vals if v not in ("", None)})
    if not vals:
        return ""
    f = (lambda v: _size(v)) if unit == "B" else str
    return f(vals[0]) if len(vals) == 1 else f"{f(vals[0])}–{f(vals[-1])}"


def _size(b):
    if b >= 1024 and b % 1024 == 0:
        return f"{b // 1024} KiB"
    return f"{b} B"


def describe(pairs, sock=False):
    """'4 KiB, qd 1–128' or '64 B–16 KiB, 1–1024 conns': what was measured."""
    if not pairs:
        return ""
    if sock:
        return f'{_span([p[0]["msg"] for p in pairs], "B")}, {_span([p[0]["conns"] for p in pairs])} conns'
    return f'{_span([p[0]["bs"] for p in pairs], "B")}, qd {_span([p[0]["qd"] for p in pairs])}'


def judge(file_s, diff):
    """Verdict word and the reason, from a file Summary and the (d, lo, hi)
    log difference file minus socket."""
    if file_s is None or diff is None:
        return None, "not measured"
    d = tuple(math.exp(x) for x in diff)
    ftxt = f"file ratio {file_s.fmt()}"
    dtxt = f"file ÷ socket {d[0]:.2f} [{d[1]:.2f}–{d[2]:.2f}]"
    if file_s.hi < 1:
        return NOT_SUPPORTED, f"{ftxt} lies below 1: uring is not better than epoll here"
    if diff[2] < 0:
        return NOT_SUPPORTED, f"{dtxt} lies below 1: the file edge is smaller than the socket edge"
    if file_s.lo > 1 and diff[1] > 0:
        return SUPPORTED, f"{ftxt} lies above 1 and {dtxt} lies above 1"
    if file_s.lo <= 1:
        return INCONCLUSIVE, f"{ftxt} includes 1"
    return INCONCLUSIVE, f"{dtxt} includes 1: the file and socket ratios cannot be told apart"


class Verdict:
    """Everything the opening and the verdict section print."""

    def __init__(self, st):
        self.st = st
        self.sock = sock_pairs(st)
        self.sock_desc = describe(self.sock, sock=True)
        self.sock_s = {m: stats.summarise([stats.better(u, e, m) for _, u, e in self.sock]) for m in MEASURES}
        self.items = []
        for key, name, spec in FILE_WORKLOADS:
            pairs = file_pairs(st, spec)
            if not pairs:
                continue
            it = {"key": key, "name": name, "desc": describe(pairs), "pairs": pairs}
            for m in MEASURES:
                fl = [stats.better(u, e, m) for _, u, e in pairs]
                sl = [stats.better(u, e, m) for _, u, e in self.sock]
                fs = stats.summarise(fl)
                diff = stats.difference(fl, sl)
                it[m] = (fs, diff) + judge(fs, diff)
            self.items.append(it)
        # CPU per op is the loop's cost on both sides; throughput also
        # measures the client, the device and round-trip latency.  It is
        # the verdict's measure unless the run has no CPU figures.
        pairs = self.sock or [p for it in self.items for p in it["pairs"]]
        has_cpu = any(st.med(u, "cpu_us_per_op") and st.med(e, "cpu_us_per_op") for _, u, e in pairs)
        self.measure = "cpu" if has_cpu else "thr"

    def ready(self):
        return bool(self.items) and self.sock_s[self.measure] is not None
