"""Markdown tables: per-workload figures, comparisons of two
implementations (paired by rep, geometric mean [95% interval]), and the
per-point ratio tables of the appendix."""
import statistics

from . import stats
from .load import KEY, label, num
from .stats import fmt, spread

# Table and legend order; unknown names sort after these, alphabetically.
IMPL_ORDER = ["triloop uring", "triloop uring fixed", "triloop epoll", "triloop epoll+nowait",
              "triloop threadpool", "tokio-ct", "tokio-mt", "tokio-fs-ct", "tokio-fs-mt", "smol",
              "libev-epoll", "libev-iouring", "raw-uring", "raw-pool",
              "pread", "libuv", "fio-io_uring", "fio-libaio", "fio-psync"]
# Fields that make two implementations' points "the same point".
SAME = ["workload", "pattern", "bs", "qd", "direct", "fsync", "conns", "msg", "loops", "set"]


def impl_rank(lbl):
    for i, name in enumerate(IMPL_ORDER):
        if lbl == name:
            return (i, 0, lbl)
    for i, name in enumerate(IMPL_ORDER):
        if lbl.startswith(name):
            return (i, 1, lbl)
    return (len(IMPL_ORDER), 0, lbl)


def esc(s):
    return str(s).replace("|", "\\|")


def residency(d, rows):
    bef = [num(r.get("res_before")) for r in rows if r.get("res_before")]
    aft = [num(r.get("res_after")) for r in rows if r.get("res_after")]
    bef, aft = [x for x in bef if x is not None], [x for x in aft if x is not None]
    if bef and aft:
        s = f"{min(bef):.0f}%→{min(aft):.0f}%"
        worst = None
        for r in rows:
            b, a = num(r.get("res_before")), num(r.get("res_after"))
            if b is not None and a is not None and (a < 99.0 or a < b - 0.5):
                worst = (b, a) if worst is None or a < worst[1] else worst
        if worst:
            s += f" **residency fell {worst[0]:.1f}%→{worst[1]:.1f}%**"
        return s
    if d.get("direct") == "1":
        return "n/a (O_DIRECT)"
    if d.get("workload") == "file-write":
        return "n/a (writes)"
    return "not measured"


def clat_mark(d, rows):
    """'†' for fio rows whose percentiles are completion-only (clat)."""
    if not d["impl"].startswith("fio-"):
        return ""
    return "†" if any(r.get("lat_kind", "clat") == "clat" for r in rows) else ""


def busy(rows):
    """Median CPU the run used, in cores (ops/s x CPU s/op)."""
    v = [num(r.get("ops_per_s")) * num(r.get("cpu_us_per_op")) / 1e6 for r in rows
         if num(r.get("ops_per_s")) is not None and num(r.get("cpu_us_per_op")) is not None]
    return f"{statistics.median(v):.2f}" if v else "–"


def sysc(st, rows):
    return fmt(st.med(rows, "syscalls_per_op"), 3) if any(r.get("syscalls_per_op") for r in rows) else "–"


def file_table(st, L, title, groups):
    if not groups:
        return
    thr = any(g.get("threads") for g, _ in groups)
    L.append(f"### {title}\n")
    L.append("| qd | implementation | " + ("threads | " if thr else "") +
             "ops/s median [min–max] | MB/s | CPU µs/op | cores busy | syscalls/op | p50 µs | p99 µs | residency |")
    L.append("|---:|---|" + ("---:|" if thr else "") + "---|---:|---:|---:|---:|---:|---:|---|")
    groups = sorted(groups, key=lambda g: (int(g[0]["qd"] or 0), impl_rank(label(g[0])), g[0].get("threads", "")))
    for d, rows in groups:
        m = clat_mark(d, rows)
        L.append(f'| {d["qd"]} | {esc(label(d))} | ' + (f'{d.get("threads") or "–"} | ' if thr else "") +
                 f'{spread([num(r.get("ops_per_s")) for r in rows])} | '
                 f'{fmt(st.med(rows, "mbps"))} | {fmt(st.med(rows, "cpu_us_per_op"), 2)} | {busy(rows)} | '
                 f'{sysc(st, rows)} | {fmt(st.med(rows, "p50_us"), 1)}{m} | {fmt(st.med(rows, "p99_us"), 1)}{m} | '
                 f'{residency(d, rows)} |')
    if any(clat_mark(d, rows) for d, rows in groups):
        L.append("")
        L.append("† fio completion latency only (clat: submission excluded); the other rows measure "
                 "submit to completion.")
    L.append("")


def echo_table(st, L, title, groups):
    if not groups:
        return
    thr = any(g.get("threads") for g, _ in groups)
    L.append(f"### {title}\n")
    L.append("| conns | implementation | " + ("threads | " if thr else "") +
             "round trips/s median [min–max] | server CPU µs/op | syscalls/op | p50 µs | p99 µs |")
    L.append("|---:|---|" + ("---:|" if thr else "") + "---|---:|---:|---:|---:|")
    for g, rows in sorted(groups, key=lambda g: (int(g[0]["conns"] or 0), impl_rank(label(g[0])))):
        L.append(f'| {g["conns"]} | {esc(label(g))} | ' + (f'{g.get("threads") or "–"} | ' if thr else "") +
                 f'{spread([num(r.get("ops_per_s")) for r in rows])} | '
                 f'{fmt(st.med(rows, "cpu_us_per_op"), 2)} | {sysc(st, rows)} | '
                 f'{fmt(st.med(rows, "p50_us"), 1)} | {fmt(st.med(rows, "p99_us"), 1)} |')
    L.append("")


def generic_table(st, L, wl, gs):
    params = [k for k in KEY[3:] if k != "set" and any(g.get(k) for g, _ in gs)]
    has_mb = any(r.get("mbps") for _, rows in gs for r in rows)
    L.append(f"### {wl}\n")
    L.append("| implementation | " + "".join(p + " | " for p in params) + "ops/s median [min–max] | "
             + ("MB/s | " if has_mb else "") + "CPU µs/op | syscalls/op |")
    L.append("|---|" + "---:|" * len(params) + "---|" + ("---:|" if has_mb else "") + "---:|---:|")
    for g, rows in sorted(gs, key=lambda g: (impl_rank(label(g[0])), [g[0].get(k, "") for k in params])):
        L.append(f"| {esc(label(g))} | " + "".join((g.get(k, "") or "–") + " | " for k in params) +
                 f'{spread([num(r.get("ops_per_s")) for r in rows])} | '
                 + (f'{fmt(st.med(rows, "mbps"))} | ' if has_mb else "") +
                 f'{fmt(st.med(rows, "cpu_us_per_op"), 2)} | {sysc(st, rows)} |')
    L.append("")


def by_label(st, lbl, **want):
    return [(g, r) for g, r in st.find(**want) if label(g) == lbl]


def matched(st, a_lbl, b_lbl, **want):
    """[(point, a rows, b rows)]: points both implementations ran."""
    bs = {}
    for g, r in by_label(st, b_lbl, **want):
        bs.setdefault(tuple(g.get(k, "") for k in SAME), r)
    out = []
    for g, r in by_label(st, a_lbl, **want):
        b = bs.get(tuple(g.get(k, "") for k in SAME))
        if b:
            out.append((g, r, b))
    return out


def compare(pairs):
    """(CPU per op b ÷ a, throughput a ÷ b) Summaries over matched pairs."""
    return (stats.summarise([stats.better(a, b, "cpu") for _, a, b in pairs]),
            stats.summarise([stats.better(a, b, "thr") for _, a, b in pairs]))


def sfmt(s):
    return s.fmt() if s else "–"


def ratio_table(L, title, pairs):
    """Appendix: per point, per-rep ratios a/b (geometric mean [min–max])."""
    rows = []
    for desc, a, b in pairs:
        t = stats.point_summary(stats.better(a, b, "thr"))
        c = stats.point_summary(stats.better(a, b, "cpu"))
        if t or c:
            n = len(stats.better(a, b, "thr"))
            rows.append(f"| {esc(desc)} | {_pfmt(t)} | {_pfmt(c)} | {n} |")
    if not rows:
        return
    L.append(f"### {title}\n")
    L.append("| a / b | throughput a ÷ b [min–max] | CPU per op b ÷ a [min–max] | reps |")
    L.append("|---|---|---|---:|")
    L.extend(rows)
    L.append("")


def _pfmt(p):
    return f"{p[0]:.2f} [{p[1]:.2f}–{p[2]:.2f}]" if p else "–"
