#!/usr/bin/env python3
"""Statistics and report for the study (bench/run-study).

  report.py fio2kv FIO.json ENGINE DIRECT FSYNC   fio JSON -> one key=value line
  report.py report OUTDIR                          raw.txt -> results.csv, report.md, PNGs

Method: every point runs `reps` times, repetitions outermost; a figure is the
median over reps with min and max beside it.  Ratios are taken pair by pair
within a rep (a_r / b_r for the same rep r), then summarised the same way, so
slow drift of the shared machine cancels instead of widening the spread.
"""
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys

LEAD = ["rep", "workload", "impl", "backend", "pattern", "bs", "qd", "direct", "fsync",
        "conns", "msg", "loops", "ops", "secs", "ops_per_s", "cpu_us_per_op",
        "syscalls_per_op", "p50_us", "p99_us", "mbps", "res_before", "res_after"]
# What identifies a point (everything but the measurements).
KEY = ["workload", "impl", "backend", "pattern", "bs", "qd", "direct", "fsync",
       "conns", "msg", "loops", "set"]


def fio2kv(path, engine, direct, fsync):
    d = json.load(open(path))
    j = d["jobs"][0]
    opt = j.get("job options", {})
    glob = d.get("global options", {})
    rw = opt.get("rw", glob.get("rw", "randread"))
    side = j["write"] if "write" in rw else j["read"]
    bs = int(str(opt.get("bs", "4096")).rstrip("kK") or 4096)
    if str(opt.get("bs", "")).lower().endswith("k"):
        bs *= 1024
    qd = int(opt.get("iodepth", 1))
    runtime_s = side["runtime"] / 1000.0 or 1e-9
    ops = side["total_ios"] if side.get("total_ios") else side["io_kbytes"] * 1024 // bs
    cpu_s = (j["usr_cpu"] + j["sys_cpu"]) / 100.0 * (j.get("job_runtime", side["runtime"]) / 1000.0)
    # Total latency (submit to completion, as our programs measure) needs
    # fio's --lat_percentiles=1; without it only completion latency (clat)
    # has percentiles, which on cached io_uring reads is ~0.1 us.
    pct = side.get("clat_ns", {}).get("percentile", {})
    lat_kind = "clat"
    if "lat_ns" in side and side["lat_ns"].get("percentile"):
        pct = side["lat_ns"]["percentile"]
        lat_kind = "lat"
    p50 = pct.get("50.000000", 0) / 1000.0
    p99 = pct.get("99.000000", 0) / 1000.0
    workload = "file-write" if "write" in rw else "file-read"
    pattern = "rand" if rw.startswith("rand") else "seq"
    print(f"workload={workload} impl=fio-{engine} backend=- ops={ops} secs={runtime_s:.4f} "
          f"ops_per_s={ops / runtime_s:.1f} cpu_us_per_op={cpu_s * 1e6 / max(ops, 1):.3f} "
          f"qd={qd} bs={bs} pattern={pattern} direct={direct} fsync={fsync} "
          f"mbps={ops * bs / runtime_s / 1e6:.1f} p50_us={p50:.1f} p99_us={p99:.1f} lat_kind={lat_kind}")


def parse_kv(line):
    row = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            row[k] = v
    return row


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(x, digits=None):
    if x is None:
        return "–"
    if digits is not None:
        return f"{x:.{digits}f}"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.0f}k"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.1f}k"
    if abs(x) >= 10:
        return f"{x:.0f}"
    return f"{x:.2f}"


def spread(vals, digits=None):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    return f"{fmt(statistics.median(vals), digits)} [{fmt(min(vals), digits)}–{fmt(max(vals), digits)}]"


class Study:
    def __init__(self, out):
        self.out = out
        self.rows = []
        with open(os.path.join(out, "raw.txt")) as f:
            for line in f:
                r = parse_kv(line)
                if "workload" in r:
                    r.setdefault("rep", "1")
                    self.rows.append(r)
        self.facts = {}
        for line in open(os.path.join(out, "facts.txt")):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                self.facts.setdefault(k, v)
        self.notes = []
        p = os.path.join(out, "notes.txt")
        if os.path.exists(p):
            self.notes = [l.rstrip("\n").split("\t", 1) for l in open(p) if "\t" in l]
        self.groups = {}
        for r in self.rows:
            self.groups.setdefault(self.key(r), []).append(r)

    @staticmethod
    def key(r):
        return tuple(r.get(k, "") for k in KEY)

    def write_csv(self):
        keys = list(LEAD)
        for r in self.rows:
            for k in r:
                if k not in keys:
                    keys.append(k)
        with open(os.path.join(self.out, "results.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys, restval="")
            w.writeheader()
            for r in self.rows:
                w.writerow(r)

    def find(self, **want):
        """Groups whose key matches every given field."""
        out = []
        for k, rows in self.groups.items():
            d = dict(zip(KEY, k))
            if all(d.get(f, "") == str(v) for f, v in want.items()):
                out.append((d, rows))
        return out

    def one(self, **want):
        g = self.find(**want)
        return g[0][1] if g else None

    @staticmethod
    def med(rows, field="ops_per_s"):
        vals = [num(r.get(field)) for r in rows]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    @staticmethod
    def ratios(a_rows, b_rows, field="ops_per_s"):
        """Per-rep ratios a_r / b_r over the reps both have."""
        b_by = {r["rep"]: num(r.get(field)) for r in b_rows}
        out = []
        for r in a_rows:
            a, b = num(r.get(field)), b_by.get(r["rep"])
            if a is not None and b:
                out.append(a / b)
        return out


def label(d):
    return d["impl"] if d["backend"] in ("", "-") else f'{d["impl"]} {d["backend"]}'


IMPL_ORDER = ["triloop uring", "triloop epoll", "triloop threadpool", "raw-uring", "raw-pool",
              "pread", "libuv", "fio-io_uring", "fio-libaio", "fio-psync",
              "libev-epoll", "libev-iouring", "libev epoll", "libev iouring"]


def impl_rank(lbl):
    return (IMPL_ORDER.index(lbl) if lbl in IMPL_ORDER else len(IMPL_ORDER), lbl)


def residency_flag(rows):
    """'' or a note when a cached figure's file residency fell during a run."""
    worst = None
    for r in rows:
        b, a = num(r.get("res_before")), num(r.get("res_after"))
        if b is None or a is None:
            continue
        if a < 99.0 or a < b - 0.5:
            worst = (b, a) if worst is None or a < worst[1] else worst
    if worst:
        return f"residency fell {worst[0]:.1f}%→{worst[1]:.1f}%"
    return ""


def clat_mark(d, rows):
    """'†' for fio rows whose percentiles are completion-only (clat)."""
    if not d["impl"].startswith("fio-"):
        return ""
    return "†" if any(r.get("lat_kind", "clat") == "clat" for r in rows) else ""


def busy(rows):
    """Median CPU the run used, in cores (ops/s x CPU s/op): well under 1 for
    a CPU-bound single-threaded run means the shared machine starved it."""
    v = [num(r.get("ops_per_s")) * num(r.get("cpu_us_per_op")) / 1e6 for r in rows
         if num(r.get("ops_per_s")) is not None and num(r.get("cpu_us_per_op")) is not None]
    return f"{statistics.median(v):.2f}" if v else "–"


def file_table(st, lines, title, want, plots):
    groups = st.find(**want)
    if not groups:
        return
    lines.append(f"### {title}\n")
    lines.append("| qd | implementation | ops/s median [min–max] | MB/s | CPU µs/op | cores busy | syscalls/op | p50 µs | p99 µs | residency |")
    lines.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---|")
    groups.sort(key=lambda g: (int(g[0]["qd"] or 0), impl_rank(label(g[0]))))
    series = {}
    for d, rows in groups:
        res = ""
        bef = [num(r.get("res_before")) for r in rows if r.get("res_before")]
        aft = [num(r.get("res_after")) for r in rows if r.get("res_after")]
        if bef:
            res = f"{min(bef):.0f}%→{min(aft):.0f}%"
            flag = residency_flag(rows)
            if flag:
                res += f" **{flag}**"
        elif d.get("direct") == "1":
            res = "n/a (O_DIRECT)"
        elif d["workload"] == "file-write":
            res = "n/a (writes)"
        else:
            res = "**not measured**"
        lines.append(f'| {d["qd"]} | {label(d)} | {spread([num(r["ops_per_s"]) for r in rows])} | '
                     f'{fmt(st.med(rows, "mbps"))} | {fmt(st.med(rows, "cpu_us_per_op"), 2)} | {busy(rows)} | '
                     f'{fmt(st.med(rows, "syscalls_per_op"), 3) if rows[0].get("syscalls_per_op") else "–"} | '
                     f'{fmt(st.med(rows, "p50_us"), 1)}{clat_mark(d, rows)} | {fmt(st.med(rows, "p99_us"), 1)}{clat_mark(d, rows)} | {res} |')
        series.setdefault(label(d), []).append((int(d["qd"]), st.med(rows)))
    if any(clat_mark(d, rows) for d, rows in groups):
        lines.append("")
        lines.append("† fio completion latency only (clat: submission excluded); the other rows measure "
                     "submit to completion.")
    lines.append("")
    if plots is not None and series:
        plots.append((title, "queue depth", "ops/s", series))


def ratio_rows(st, lines, title, pairs):
    """pairs: (description, a_rows, b_rows).  Two ratios per pair, each per
    rep: throughput a/b, and CPU per op b/a (so above 1 means a is better on
    both)."""
    have = [(desc, st.ratios(a, b), st.ratios(b, a, "cpu_us_per_op")) for desc, a, b in pairs if a and b]
    have = [h for h in have if h[1]]
    if not have:
        return
    lines.append(f"### {title}\n")
    lines.append("| a / b | throughput a/b median [min–max] | CPU per op b/a median [min–max] | reps |")
    lines.append("|---|---|---|---:|")
    for desc, r, c in have:
        lines.append(f"| {desc} | {spread(r, 2)} | {spread(c, 2)} | {len(r)} |")
    lines.append("")


# (ours, reference, point filter) pairs named in the summary: each triloop
# backend against what a user would pick instead for the same job.
FILE_COUNTERPARTS = [
    ("triloop uring", "raw-uring", None), ("triloop uring", "fio-io_uring", None),
    ("triloop uring", "fio-libaio", None), ("triloop epoll", "raw-pool", None),
    ("triloop epoll", "libuv", None), ("triloop threadpool", "raw-pool", None),
    ("triloop threadpool", "libuv", None), ("triloop uring", "pread", "1"),
    ("triloop epoll", "pread", "1"), ("triloop threadpool", "pread", "1"),
    ("triloop uring", "fio-psync", "1"), ("triloop epoll", "fio-psync", "1"),
    ("triloop threadpool", "fio-psync", "1"),
    ("triloop epoll", "triloop-pool4 epoll", None), ("triloop-pool4 epoll", "libuv", None),
]
ECHO_COUNTERPARTS = [
    ("triloop uring", "raw-uring"), ("triloop uring", "raw-uring-plain"),
    ("triloop uring", "libev-iouring"), ("triloop epoll", "libev-epoll"),
    ("triloop threadpool", "libev-epoll"),
    ("triloop-watch uring", "libev-iouring"), ("triloop-watch epoll", "libev-epoll"),
    ("triloop-ms uring", "raw-uring-ms"), ("triloop-ms uring", "raw-uring"),
]


def pooled_pair(st, pairs):
    """pairs: [(a_rows, b_rows)] -> (throughput a/b summary, CPU b/a summary)."""
    return (pooled([st.ratios(a, b) for a, b in pairs]),
            pooled([st.ratios(b, a, "cpu_us_per_op") for a, b in pairs]))


def sfmt(t):
    return f"{t[0]:.2f} [{t[1]:.2f}–{t[2]:.2f}]" if t else "–"


def reference_summary(st, L):
    """Our ratio to each reference, pooled over the points both ran."""
    out = []
    for d, name in (("0", "page-cached"), ("1", "O_DIRECT")):
        for ours, ref, qd in FILE_COUNTERPARTS:
            pairs, qds = [], []
            for g, rrows in st.find(workload="file-read", pattern="rand", bs="4096", direct=d, fsync="0"):
                if label(g) != ref or (qd and g["qd"] != qd):
                    continue
                imp, be = ours.split(" ")
                orows = st.one(workload="file-read", impl=imp, backend=be, pattern="rand", bs="4096",
                               direct=d, fsync="0", qd=g["qd"])
                if orows:
                    pairs.append((orows, rrows))
                    qds.append(int(g["qd"]))
            if pairs:
                t, c = pooled_pair(st, pairs)
                out.append(f"| 4 KiB random reads, {name} | {ours} / {ref} | qd {','.join(map(str, sorted(qds)))} | "
                           f"{sfmt(t)} | {sfmt(c)} |")
    for ours, ref in ECHO_COUNTERPARTS:
        pairs, pts = [], []
        for g, rrows in st.find(workload="echo", set="matrix"):
            if label(g) != ref:
                continue
            imp, be = ours.split(" ")
            orows = st.one(workload="echo", impl=imp, backend=be, conns=g["conns"], msg=g["msg"],
                           loops=g["loops"], set="matrix")
            if orows:
                pairs.append((orows, rrows))
                pts.append(g)
        if pairs:
            t, c = pooled_pair(st, pairs)
            out.append(f"| echo, every conns × msg | {ours} / {ref} | {len(pts)} points | {sfmt(t)} | {sfmt(c)} |")
    if not out:
        return
    L.append("## Our ratio to each reference (summary)\n")
    L.append("Each triloop backend against what a user would pick instead, measured in the same run; "
             "median of the per-point medians [min–max of every per-rep ratio]. Above 1 triloop is better: "
             "throughput ours ÷ theirs, CPU per op theirs ÷ ours. Per-point tables follow in the file and "
             "socket sections.\n")
    L.append("| workload | ours / reference | points | throughput | CPU per op |")
    L.append("|---|---|---|---|---|")
    L.extend(out)
    L.append("")


def readiness_table(st, L):
    """triloop's completion ops (echo_server) against its readiness
    watchers (echo_server_watch) on each backend, per point."""
    rows = []
    summary = []
    for be in ("uring", "epoll", "threadpool"):
        pairs = []
        for g, crows in st.find(workload="echo", impl="triloop", backend=be, set="matrix"):
            wrows = st.one(workload="echo", impl="triloop-watch", backend=be, conns=g["conns"],
                           msg=g["msg"], loops=g["loops"], set="matrix")
            if not wrows:
                continue
            pairs.append((crows, wrows))
            rows.append((be, int(g["conns"]), int(g["msg"]),
                         f'| {be} | {g["conns"]} | {g["msg"]} | {fmt(st.med(crows, "cpu_us_per_op"), 2)} | '
                         f'{fmt(st.med(wrows, "cpu_us_per_op"), 2)} | {spread(st.ratios(wrows, crows, "cpu_us_per_op"), 2)} | '
                         f'{spread(st.ratios(crows, wrows), 2)} | '
                         f'{fmt(st.med(crows, "syscalls_per_op"), 2)} / {fmt(st.med(wrows, "syscalls_per_op"), 2)} |'))
        if pairs:
            t, c = pooled_pair(st, pairs)
            summary.append(f"| {be} | {len(pairs)} | {sfmt(c)} | {sfmt(t)} |")
    if not rows:
        return
    L.append("### Readiness versus completion on each backend (echo)\n")
    L.append("The same echo protocol written two ways on triloop: completion ops (`tl_recv`/`tl_send`, "
             "bench/echo_server.c) and readiness watchers (`tl_io` + nonblocking `recv`/`send`, "
             "bench/echo_server_watch.c, written like the libev server). Above 1 completion is better: "
             "CPU per op readiness ÷ completion, throughput completion ÷ readiness. syscalls/op of the "
             "readiness server include its own recv/send/accept.\n")
    L.append("| backend | points | CPU per op, readiness ÷ completion | throughput, completion ÷ readiness |")
    L.append("|---|---:|---|---|")
    L.extend(summary)
    L.append("")
    L.append("| backend | conns | msg | completion CPU µs/op | readiness CPU µs/op | CPU ratio | throughput ratio | syscalls/op completion / readiness |")
    L.append("|---|---:|---:|---:|---:|---|---|---|")
    rows.sort(key=lambda r: (["uring", "epoll", "threadpool"].index(r[0]), r[1], r[2]))
    L.extend(r[3] for r in rows)
    L.append("")


def plot(st, idx, title, xlabel, ylabel, series):
    gp = shutil.which("gnuplot")
    if not gp:
        return None
    base = f"plot{idx}"
    dat = os.path.join(st.out, base + ".dat")
    names = sorted(series, key=impl_rank)
    # Thousands on the axis: gnuplot's %c prefixes print 1.0M and 1.2M alike.
    ys = [y for n in names for _, y in series[n] if y is not None]
    scale = 1000.0 if ys and max(ys) >= 1e4 else 1.0
    if scale != 1.0:
        ylabel += " (thousands)"
    with open(dat, "w") as f:
        for n in names:
            f.write(f"# {n}\n")
            for x, y in sorted(series[n]):
                if y is not None:
                    f.write(f"{x} {y / scale:.6g}\n")
            f.write("\n\n")
    png = base + ".png"
    cmds = [
        "set terminal pngcairo size 900,560 noenhanced" if pngcairo_ok() else "set terminal png size 900,560 noenhanced",
        f"set output '{os.path.join(st.out, png)}'",
        f"set title '{title}'",
        f"set xlabel '{xlabel}'", f"set ylabel '{ylabel}'",
        "set logscale x 2", "set grid", "set offsets graph 0.03, graph 0.03, graph 0.06, 0", "set key outside right top", "set format y '%g'",
        "set yrange [0:*]",
        "plot " + ", ".join(
            f"'{dat}' index {i} with linespoints lw {3 if n.startswith('triloop') else 1.5} "
            f"dt {1 if n.startswith('triloop ') else (4 if n.startswith('triloop') else 2)} "
            f"lc rgb '{COLORS[i % len(COLORS)]}' "
            f"pt {POINTS[i % len(POINTS)]} ps 1.3 title '{n}'" for i, n in enumerate(names)),
    ]
    try:
        subprocess.run([gp], input="\n".join(cmds), text=True, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except subprocess.CalledProcessError as e:
        sys.stderr.write(f"report.py: gnuplot failed: {e.stderr}\n")
        return None
    return png


_pngcairo = None
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#393b79", "#637939", "#843c39"]
POINTS = [7, 5, 9, 11, 13, 4, 6, 8, 10, 12, 14, 1, 2, 3]


def pngcairo_ok():
    global _pngcairo
    if _pngcairo is None:
        try:
            p = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
            _pngcairo = "pngcairo" in (p.stdout + p.stderr)
        except OSError:
            _pngcairo = False
    return _pngcairo


def pooled(ratio_lists):
    """Summary over points: median of the per-point medians; spread = min/max
    over every per-rep ratio of every point."""
    meds = [statistics.median(r) for r in ratio_lists if r]
    allr = [x for r in ratio_lists for x in r]
    if not meds:
        return None
    return statistics.median(meds), min(allr), max(allr), len(meds), len(allr)


def verdict_word(f, s):
    """supported / not supported / mixed, and why, from two pooled summaries."""
    fm, flo, fhi = f[0], f[1], f[2]
    sm, slo, shi = s[0], s[1], s[2]
    if fm > sm and flo > shi:
        return "supported", (f"the file ratio {fm:.2f} (range {flo:.2f}–{fhi:.2f}) lies wholly above "
                             f"the socket ratio {sm:.2f} (range {slo:.2f}–{shi:.2f})")
    if fm <= sm and fhi < slo:
        return "not supported", (f"the file ratio {fm:.2f} (range {flo:.2f}–{fhi:.2f}) lies wholly below "
                                 f"the socket ratio {sm:.2f} (range {slo:.2f}–{shi:.2f})")
    side = "above" if fm > sm else "below"
    return "mixed", (f"the file ratio's median {fm:.2f} is {side} the socket ratio's {sm:.2f}, but their "
                     f"ranges overlap (file {flo:.2f}–{fhi:.2f}, socket {slo:.2f}–{shi:.2f})")


def report(out):
    st = Study(out)
    st.write_csv()
    L = []
    F = st.facts
    L.append("# triloop study: file IO versus socket IO on io_uring, epoll and a thread pool\n")
    L.append(f'Run {F.get("date", "?")}, mode **{F.get("mode", "?")}** '
             f'(each point: {F.get("warmup", "?")} s warm-up, then {F.get("reps", "?")} repetitions of {F.get("secs", "?")} s; figures are medians '
             f'with [min–max] over reps; ratios are per-rep pairs).\n')
    L.append("## Machine\n")
    L.append("| fact | value |\n|---|---|")
    for k in ["kernel", "cores", "cpu", "memory", "fs", "file", "file_size", "direct",
              "io_uring_disabled", "liburing", "libev", "libuv", "fio", "gnuplot", "triloop_info",
              "loadavg_start", "loadavg_end", "elapsed_s"]:
        if k in F:
            L.append(f"| {k} | {F[k].replace('|', chr(92) + '|')} |")
    L.append("")
    loads = []
    for k in ("loadavg_start", "loadavg_end"):
        try:
            loads.append(float(F.get(k, "").split()[0]))
        except (ValueError, IndexError):
            pass
    try:
        ncores = int(F.get("cores", "0"))
    except ValueError:
        ncores = 0
    if loads and ncores and max(loads) > ncores:
        st.notes.append(("load", f"the machine was busy with other work: 1-minute load average "
                         f"{' → '.join(f'{x:.1f}' for x in loads)} (start → end) on {ncores} cores. Absolute "
                         "figures are depressed and noisy; ratios taken pair by pair, and CPU per op, much less so."))
    unavailable = [n[1] for n in st.notes if n[0] == "unavailable"]
    other = [n for n in st.notes if n[0] != "unavailable"]
    if unavailable or other:
        L.append("## Notes\n")
        for u in sorted(set(unavailable)):
            L.append(f"- unavailable: {u}")
        for k, v in other:
            L.append(f"- {k}: {v}")
        L.append("")

    # ------------------------------------------------------------- verdict
    file_pairs = {}
    for d in ("0", "1"):
        file_pairs[d] = []
        for g, urows in st.find(workload="file-read", impl="triloop", backend="uring",
                                pattern="rand", bs="4096", direct=d):
            if int(g["qd"]) < 8:
                continue
            erows = st.one(workload="file-read", impl="triloop", backend="epoll",
                           pattern="rand", bs="4096", direct=d, qd=g["qd"])
            if erows:
                file_pairs[d].append((urows, erows))
    sock_pairs = []
    sock_pts = []
    for g, urows in st.find(workload="echo", impl="triloop", backend="uring"):
        if g.get("loops", "") not in ("", "1") or g.get("set", "") == "reuseport":
            continue
        erows = st.one(workload="echo", impl="triloop", backend="epoll", conns=g["conns"],
                       msg=g["msg"], loops=g["loops"], set=g["set"])
        if erows:
            sock_pairs.append((urows, erows))
            sock_pts.append(f'{g["conns"]}×{g["msg"]} B')
    # Both measures on both sides: throughput uring/epoll, and CPU per op
    # epoll/uring (above 1: uring is cheaper per op).
    summ = {"thr": {}, "cpu": {}}
    for d in ("0", "1"):
        summ["thr"]["file" + d] = pooled([st.ratios(u, e) for u, e in file_pairs[d]])
        summ["cpu"]["file" + d] = pooled([st.ratios(e, u, "cpu_us_per_op") for u, e in file_pairs[d]])
    summ["thr"]["sock"] = pooled([st.ratios(u, e) for u, e in sock_pairs])
    summ["cpu"]["sock"] = pooled([st.ratios(e, u, "cpu_us_per_op") for u, e in sock_pairs])
    # Which measure the socket data supports: when the load generator's own
    # core is (nearly) full, round trips/s measure the client, not the server.
    util = []
    for u, e in sock_pairs:
        for r in u + e:
            ops, ccpu = num(r.get("ops_per_s")), num(r.get("client_cpu_us_per_op"))
            if ops and ccpu:
                util.append(ops * ccpu / 1e6)
    sat = sum(1 for x in util if x >= 0.8)
    # Steadiness: the median over points of each point's relative spread
    # (max-min)/median of its per-rep ratios; one outlier rep cannot decide it.
    def steadiness(lists):
        sp = [(max(r) - min(r)) / statistics.median(r) for r in lists if len(r) > 1 and statistics.median(r)]
        return statistics.median(sp) if sp else None
    wthr = steadiness([st.ratios(u, e) for u, e in sock_pairs])
    wcpu = steadiness([st.ratios(e, u, "cpu_us_per_op") for u, e in sock_pairs])
    # The verdict compares the file ranges with the socket range, so the
    # measure must keep all of them narrow: sum of relative widths
    # (max-min)/median of the summaries the verdict reads.
    def widths(m):
        w = [(t[2] - t[1]) / t[0] for t in (summ[m]["file0"], summ[m]["file1"], summ[m]["sock"]) if t and t[0]]
        return sum(w) if w else None
    athr, acpu = widths("thr"), widths("cpu")
    # CPU per op is the measure of a loop's cost on both sides: O_DIRECT
    # throughput is bounded by the device, echo throughput by the one-thread
    # client and by round-trip latency, on every backend alike.  Throughput
    # is the verdict only when this run has no CPU figures.
    use = "cpu" if summ["cpu"]["sock"] and (summ["cpu"]["file0"] or summ["cpu"]["file1"]) else "thr"
    mname = {"thr": "throughput (ops/s, uring ÷ epoll)",
             "cpu": "CPU per op (µs, epoll ÷ uring)"}
    L.append("## Verdict: \"io_uring beats epoll by more on file IO than on network IO\"\n")
    L.append("Compared: triloop's uring backend against its epoll backend (same program, same "
             "run, pair by pair per rep). File IO: 4 KiB random reads at queue depth ≥ 8. Socket IO: "
             "echo round trips at every connection count and message size measured "
             f'({", ".join(sorted(set(sock_pts), key=lambda s: (int(s.split("×")[0]), s))) or "none"}). '
             "Two measures, both as \"how many times better uring is\": throughput uring ÷ epoll, and "
             "CPU per op epoll ÷ uring (user+sys of the whole process: the file program's threads, the "
             "echo server). Summary = median of the per-point medians; range = min–max of every per-rep ratio.\n")
    L.append("| uring vs epoll | throughput ratio | range | CPU/op ratio | range | points | pairs |")
    L.append("|---|---:|---|---:|---|---:|---:|")
    for key, name in (("file0", "file, page-cached"), ("file1", "file, O_DIRECT"), ("sock", "socket echo")):
        t, c = summ["thr"][key], summ["cpu"][key]
        if t:
            L.append(f"| {name} | {t[0]:.2f} | {t[1]:.2f}–{t[2]:.2f} | "
                     f"{(f'{c[0]:.2f}') if c else '–'} | {(f'{c[1]:.2f}–{c[2]:.2f}') if c else '–'} | {t[3]} | {t[4]} |")
        else:
            L.append(f"| {name} | – | not measured | – | – | 0 | 0 |")
    L.append("")
    if util:
        why_measure = (f"The load generator (one thread, one core) ran at a median "
                       f"{100 * statistics.median(util):.0f}% of its core during the uring/epoll echo runs "
                       f"({sat} of {len(util)} runs at 80% or more)")
        if wthr is not None and wcpu is not None:
            why_measure += (f"; the typical spread of a socket point's per-rep uring/epoll ratios was "
                            f"{100 * wthr:.0f}% for round trips/s and {100 * wcpu:.0f}% for CPU per round trip")
        if athr is not None and acpu is not None:
            why_measure += (f"; the verdict's ranges (file cached, file O_DIRECT, socket) have relative widths "
                            f"summing to {athr:.2f} for throughput and {acpu:.2f} for CPU per op")
        if use == "cpu":
            why_measure += (". Round trips/s are bounded by the client (one thread; its core full at high "
                            "connection counts), by round-trip latency at few connections, and swing with "
                            "whatever else the shared machine runs; O_DIRECT reads are bounded by the device. "
                            "None of that is the loop's cost, and the server's CPU per op does not depend on "
                            "it. The verdict therefore uses **CPU per op** on both sides (the same unit for "
                            "files and sockets); the throughput verdict is listed beside it")
            if wthr is not None and wcpu is not None and wthr < wcpu:
                why_measure += (". (In this run round trips/s happened to be the steadier socket ratio; it is "
                                "still a measure of the client and the wire, not of the server's cost.)")
        else:
            why_measure += (". The client was rarely saturated and throughput gave the narrower ranges, "
                            "so the verdict uses **throughput** on both sides; the CPU-per-op verdict is "
                            "listed beside it")
        why_measure += "."
        L.append(why_measure + "\n")
    words = []
    verdict_parts = []
    if summ[use]["sock"]:
        for key, name in (("file0", "page-cached"), ("file1", "O_DIRECT")):
            if summ[use][key]:
                w, why = verdict_word(summ[use][key], summ[use]["sock"])
                words.append(w)
                verdict_parts.append((name, w, why))
    if words:
        overall = words[0] if all(w == words[0] for w in words) else "mixed"
        if len(set(words)) > 1:
            reason = ", while ".join(
                f"for {name} reads it is {w} ({why})" for (name, w, why) in verdict_parts)
        else:
            reason = "; ".join(f"for {name} reads {why}" for (name, _, why) in verdict_parts)
        L.append(f"**io_uring beats epoll by more on file IO than on network IO: {overall}** "
                 f"(measured by {mname[use]}), because {reason}.\n")
        other = "thr" if use == "cpu" else "cpu"
        for key, name in (("file0", "page-cached"), ("file1", "O_DIRECT")):
            if summ[use][key]:
                w, why = verdict_word(summ[use][key], summ[use]["sock"])
                L.append(f"- {name} file reads vs socket echo, by {mname[use]}: **{w}**: {why}.")
            if summ[other][key] and summ[other]["sock"]:
                w, why = verdict_word(summ[other][key], summ[other]["sock"])
                L.append(f"- {name} file reads vs socket echo, by {mname[other]}: {w}: {why}.")
        L.append("")
        L.append("On O_DIRECT reads the device bounds throughput on every backend, so their throughput "
                 "ratio says little about the loop; CPU per op is what differs there (epoll and the "
                 "thread pool pay a worker hand-off per read, io_uring does not).\n")
    else:
        L.append("**No verdict**: the file or the socket uring/epoll pairs are missing from this run "
                 "(see Notes).\n")
    # Same question asked of the reference implementations.
    ref = []
    for d in ("0", "1"):
        lists = []
        for g, urows in st.find(workload="file-read", impl="raw-uring", pattern="rand", bs="4096", direct=d):
            prow = st.one(workload="file-read", impl="raw-pool", pattern="rand", bs="4096", direct=d, qd=g["qd"])
            if prow and int(g["qd"]) >= 8:
                lists.append((urows, prow))
        t = pooled([st.ratios(u, p) for u, p in lists])
        c = pooled([st.ratios(p, u, "cpu_us_per_op") for u, p in lists])
        if t:
            ref.append(f'raw liburing reader / raw blocking pool, {"O_DIRECT" if d == "1" else "cached"}: '
                       f"throughput {t[0]:.2f} [{t[1]:.2f}–{t[2]:.2f}], CPU/op {c[0]:.2f} [{c[1]:.2f}–{c[2]:.2f}]")
    lists = []
    for g, urows in st.find(workload="echo", impl="raw-uring", set="matrix"):
        lrows = st.one(workload="echo", impl="libev-epoll", conns=g["conns"], msg=g["msg"], set=g["set"])
        if lrows:
            lists.append((urows, lrows))
    t = pooled([st.ratios(u, p) for u, p in lists])
    c = pooled([st.ratios(p, u, "cpu_us_per_op") for u, p in lists])
    if t:
        ref.append(f"raw liburing echo / libev on epoll: throughput {t[0]:.2f} [{t[1]:.2f}–{t[2]:.2f}], "
                   f"CPU/op {c[0]:.2f} [{c[1]:.2f}–{c[2]:.2f}]")
    if ref:
        L.append("The same question asked of the reference implementations (no triloop in the path; "
                 "CPU/op as reference-b ÷ reference-a): " + "; ".join(ref) + ".\n")
    reference_summary(st, L)

    # ------------------------------------------------------------- files
    plots = []
    L.append("## File IO\n")
    file_table(st, L, "4 KiB random reads, page-cached",
               dict(workload="file-read", pattern="rand", bs="4096", direct="0", fsync="0"), plots)
    file_table(st, L, "4 KiB random reads, O_DIRECT",
               dict(workload="file-read", pattern="rand", bs="4096", direct="1", fsync="0"), plots)
    file_table(st, L, "128 KiB sequential reads, page-cached",
               dict(workload="file-read", pattern="seq", bs="131072", direct="0", fsync="0"), plots)
    file_table(st, L, "128 KiB sequential reads, O_DIRECT",
               dict(workload="file-read", pattern="seq", bs="131072", direct="1", fsync="0"), plots)
    file_table(st, L, "4 KiB random writes (page cache)",
               dict(workload="file-write", fsync="0"), None)
    file_table(st, L, "4 KiB random writes, fsync after each",
               dict(workload="file-write", fsync="1"), None)

    # ratios of triloop to every reference at the same point
    pairs_by_title = {}
    for g, trows in st.find(impl="triloop"):
        if not g["workload"].startswith("file-"):
            continue
        same = dict(workload=g["workload"], pattern=g["pattern"], bs=g["bs"], qd=g["qd"],
                    direct=g["direct"], fsync=g["fsync"])
        what = (f'{g["workload"]} {g["pattern"]} {int(g["bs"]) // 1024} KiB direct={g["direct"]}'
                f'{" fsync" if g["fsync"] == "1" else ""}')
        pt = pairs_by_title.setdefault(what, [])
        for gg, rrows in st.find(**same):
            if gg["impl"] == "triloop":
                if g["backend"] == "uring" and gg["backend"] != "uring":
                    pt.append((int(g["qd"]), f'qd={g["qd"]}: triloop uring / triloop {gg["backend"]}', trows, rrows))
                continue
            pt.append((int(g["qd"]), f'qd={g["qd"]}: triloop {g["backend"]} / {label(gg)}', trows, rrows))
    if pairs_by_title:
        L.append("### Our ratio to each reference (file IO, same point, same run)\n")
        L.append("Above 1: triloop is faster. Below 1: the reference is faster.\n")
        for what in sorted(pairs_by_title):
            ps = sorted(pairs_by_title[what], key=lambda p: (p[0], p[1]))
            ratio_rows(st, L, what, [(d, a, b) for _, d, a, b in ps])

    # ------------------------------------------------------------- sockets
    L.append("## Socket IO (loopback)\n")
    echo = [(g, r) for g, r in st.find(workload="echo") if g.get("set", "") != "reuseport"]
    if not echo:
        L.append("No socket rows in this run (see Notes).\n")
    else:
        for msg in sorted({g["msg"] for g, _ in echo}, key=lambda m: int(m or 0)):
            gs = [(g, r) for g, r in echo if g["msg"] == msg and g.get("loops", "") in ("", "1")]
            if not gs:
                continue
            L.append(f"### Echo ping-pong, {msg} B messages (round trips/s)\n")
            L.append("| conns | implementation | round trips/s median [min–max] | server CPU µs/op | syscalls/op | p50 µs | p99 µs |")
            L.append("|---:|---|---|---:|---:|---:|---:|")
            gs.sort(key=lambda g: (int(g[0]["conns"] or 0), impl_rank(label(g[0]))))
            series = {}
            for g, rows in gs:
                L.append(f'| {g["conns"]} | {label(g)} | {spread([num(r["ops_per_s"]) for r in rows])} | '
                         f'{fmt(st.med(rows, "cpu_us_per_op"), 2)} | '
                         f'{fmt(st.med(rows, "syscalls_per_op"), 3) if rows[0].get("syscalls_per_op") else "–"} | '
                         f'{fmt(st.med(rows, "p50_us"), 1)} | {fmt(st.med(rows, "p99_us"), 1)} |')
                series.setdefault(label(g), []).append((int(g["conns"]), st.med(rows)))
            L.append("")
            plots.append((f"Echo round trips/s, {msg} B messages", "connections", "round trips/s", series))
            cseries = {}
            for g, rows in gs:
                cseries.setdefault(label(g), []).append((int(g["conns"]), st.med(rows, "cpu_us_per_op")))
            plots.append((f"Echo server CPU per round trip (lower is better), {msg} B messages",
                          "connections", "server CPU µs per round trip", cseries))
            # triloop (each style, each backend) against every reference;
            # within triloop only uring against the others of its style.
            pairs = []
            for g, trows in gs:
                if not g["impl"].startswith("triloop"):
                    continue
                for gg, rrows in gs:
                    if gg["conns"] != g["conns"] or gg is g:
                        continue
                    if gg["impl"].startswith("triloop") and not (
                            gg["impl"] == g["impl"] and g["backend"] == "uring"):
                        continue
                    pairs.append((int(g["conns"]), f'conns={g["conns"]}: {label(g)} / {label(gg)}',
                                  trows, rrows))
            pairs.sort(key=lambda p: (p[0], p[1]))
            ratio_rows(st, L, f"Our ratio to each reference (echo {msg} B)", [(d, a, b) for _, d, a, b in pairs])
    readiness_table(st, L)
    # other socket / loop workloads: a generic table each
    others = sorted({k[0] for k in st.groups if not k[0].startswith("file-") and k[0] != "echo"})
    for wl in others:
        gs = st.find(workload=wl)
        params = [k for k in KEY[3:] if k != "set" and any(g.get(k) for g, _ in gs)]
        L.append(f"### {wl}\n")
        has_mb = any(r.get("mbps") for _, rows in gs for r in rows)
        L.append("| implementation | " + "".join(p + " | " for p in params) + "ops/s median [min–max] | "
                 + ("MB/s | " if has_mb else "") + "CPU µs/op | syscalls/op |")
        L.append("|---|" + "---:|" * len(params) + "---|" + ("---:|" if has_mb else "") + "---:|---:|")
        gs.sort(key=lambda g: (impl_rank(label(g[0])), [g[0].get(k, "") for k in params]))
        for g, rows in gs:
            L.append(f"| {label(g)} | " + "".join((g.get(k, "") or "–") + " | " for k in params) +
                     f'{spread([num(r["ops_per_s"]) for r in rows])} | '
                     + (f'{fmt(st.med(rows, "mbps"))} | ' if has_mb else "") +
                     f'{fmt(st.med(rows, "cpu_us_per_op"), 2)} | '
                     f'{fmt(st.med(rows, "syscalls_per_op"), 3) if rows[0].get("syscalls_per_op") else "–"} |')
        L.append("")

    L.append("## Scaling out (SO_REUSEPORT, one loop per thread)\n")
    multi = [(g, r) for g, r in st.find(workload="echo", set="reuseport")]
    if not multi:
        L.append("Missing: no SO_REUSEPORT echo rows (set=reuseport) in this run.\n")
    else:
        L.append("| implementation | conns | msg | loops | round trips/s median [min–max] | vs 1 loop | server CPU µs/op | p50 µs | p99 µs |")
        L.append("|---|---:|---:|---:|---|---|---:|---:|---:|")
        for g, rows in sorted(multi, key=lambda x: (impl_rank(label(x[0])), int(x[0]["conns"] or 0), x[0]["loops"])):
            one = st.one(workload="echo", impl=g["impl"], backend=g["backend"], conns=g["conns"],
                         msg=g["msg"], loops="1", set="reuseport")
            rat = spread(st.ratios(rows, one), 2) if one else "–"
            L.append(f'| {label(g)} | {g["conns"]} | {g["msg"]} | {g["loops"]} | '
                     f'{spread([num(r["ops_per_s"]) for r in rows])} | {rat} | {fmt(st.med(rows, "cpu_us_per_op"), 2)} | '
                     f'{fmt(st.med(rows, "p50_us"), 1)} | {fmt(st.med(rows, "p99_us"), 1)} |')
        L.append("")
        one = [r for g, rows in multi if g["loops"] == "1" for r in rows]
        mat = [r for g, rows in st.find(workload="echo", impl="triloop", set="matrix")
               if g["msg"] == "64" and g["conns"] in {gg["conns"] for gg, _ in multi} and g["backend"] != "threadpool"
               for r in rows]
        o, m = st.med(one), st.med(mat)
        if o and m and o < 0.5 * m:
            L.append(f"**Caution:** the 1-loop runs of this section reached a median {fmt(o)} round trips/s "
                     f"against {fmt(m)} for the same servers at the same points in the echo matrix of this "
                     "run, with p99 latencies of tens of milliseconds at a p50 of microseconds: the pinned "
                     "server and client were held off their cores by other load on the shared machine "
                     "(a pinned process cannot move away; the unpinned client of the 2-loop runs can). The "
                     "\"vs 1 loop\" ratios here measure that, not the server's scaling; server CPU per op "
                     "is the figure to compare.\n")
        L.append(f'On this {F.get("cores", "?")}-core machine the 1-loop runs pin the server to one core and '
                 "the load generator to the other; the 2-loop runs pin a loop to each core and leave the "
                 "client unpinned, so server and client then compete for the same two cores. A gain near "
                 "2× here therefore says the 1-loop figure was limited by more than the server (the "
                 "client's one core, scheduling), not that the server scales perfectly; compare server CPU "
                 "per op across the rows. On more cores the same program runs one loop per core "
                 "(--loops N), the kernel spreads connections over the listeners, and the client needs "
                 "cores of its own.\n")

    # ------------------------------------------------------------- plots
    if plots:
        L.append("## Plots\n")
        for i, (title, xl, yl, series) in enumerate(plots, 1):
            png = plot(st, i, title, xl, yl, series)
            if png:
                L.append(f"![{title}]({png})\n")
            else:
                L.append(f"- {title}: no plot (gnuplot missing or failed)\n")
    L.append("## Method and caveats\n")
    L.append("- Every program prints one `key=value` line; `results.csv` has every rep of every point "
             "(column `rep`). `raw.txt` is the same data unparsed; `stderr.log` collects diagnostics.")
    L.append("- CPU µs/op is user+sys (getrusage, all threads of the process, io_uring's io-wq workers "
             "included) over the measured window. syscalls/op counts the loop thread's syscalls "
             "(tl_loop_stats for triloop; io_uring_enter for the raw reader; eventfd reads for the "
             "raw pool — its workers' preads and futex calls are not counted).")
    L.append("- Page-cached runs: the file is read whole right before each run and its residency "
             "(mincore) reported before→after; a figure whose residency fell is marked.")
    L.append("- fio runs with `--invalidate=0` (it would drop the cache otherwise) and `--ramp_time` "
             "as warm-up; its psync engine is synchronous (depth 1), libaio on cached files is "
             "synchronous in the submit call.")
    L.append("- raw-pool runs one thread per op in flight (the policy of a pool that grows on demand, "
             "as tokio's blocking pool); libuv runs its default 4 threads; triloop-pool4 is triloop's "
             "pool capped at 4 threads. Fewer threads win on cached reads, more on O_DIRECT. triloop's "
             "own pool runs short ops on at most TRILOOP_THREADS_EAGER workers (default: cores) and "
             "gives long ones a worker each (src/pool.c).")
    L.append("- \"cores busy\" = ops/s × CPU s/op: how much CPU the run got. A single-threaded run that is "
             "CPU-bound but shows well under 1.00 was starved by other load on the shared machine; its "
             "throughput is low while its CPU per op stays right, which is why CPU per op is the steadier "
             "comparison.")
    L.append("- Echo servers' CPU is read from /proc/<pid>/stat (10 ms ticks): at 0.3–0.4 s quick-mode "
             "points one tick is a few percent, so quick-mode CPU ratios carry that much quantisation.")
    L.append("- The echo load generator is one thread on plain epoll, pinned to the other core; where its "
             "core is full it caps every server's round trips/s alike (its utilisation in this run is in the "
             "verdict section; client_cpu_us_per_op per run is in results.csv).")
    L.append("- The machine is shared and noisy: trust ratios (taken pair by pair) more than absolute figures.")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == "fio2kv":
        fio2kv(*sys.argv[2:6])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
