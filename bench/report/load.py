"""What a study directory holds: results.csv (or raw.txt, the programs'
key=value lines, from which results.csv is written), facts.txt / facts.json,
notes.txt (tab-separated: kind, text)."""
import csv
import json
import os
import statistics

LEAD = ["rep", "workload", "impl", "backend", "pattern", "bs", "qd", "direct", "fsync",
        "conns", "msg", "loops", "ops", "secs", "ops_per_s", "cpu_us_per_op",
        "syscalls_per_op", "p50_us", "p99_us", "mbps", "res_before", "res_after"]
# What identifies a point (everything but the measurements).  Columns a
# run adds beyond these (measurements or settings) are told apart when rows
# of one point clash: see Study.
KEY = ["workload", "impl", "backend", "threads", "threads_rule", "fixed", "pattern", "bs", "qd",
       "direct", "fsync", "conns", "msg", "loops", "set", "op"]
# fixed= (registered buffers and file) as each program runs by default:
# a row at its program's default is keyed as if it had no fixed column, so
# rows of older runs (no column) and newer ones (the default spelled out)
# are the same point.
FIXED_DEFAULT = {"raw-uring": "1"}


def keyval(r, k):
    v = r.get(k, "") or ""
    if k == "fixed" and v == FIXED_DEFAULT.get(r.get("impl", ""), "0"):
        return ""
    return v


# Columns that are measured (they differ from rep to rep), never settings.
MEASURED = {"rep", "workers", "blocking_max", "pinned", "ops", "secs", "ops_per_s", "cpu_us_per_op",
            "syscalls_per_op", "p50_us", "p99_us",
            "mbps", "res_before", "res_after", "iters_per_op", "iterations_per_op", "client_cpu_us_per_op",
            "cpu_us_per_mb", "ns_per_op", "lat_kind", "cmd", "steal", "steal_pct", "wakeups_per_op",
            "threads_max", "cpu"}


def parse_kv(line):
    """A result line: key=value pairs, and last, cmd=<the command>, whose
    value is the rest of the line (it has spaces and '=' of its own)."""
    line = line.rstrip("\n")
    head, sep, cmd = line.partition(" cmd=")
    if not sep and line.startswith("cmd="):
        head, cmd, sep = "", line[4:], "cmd="
    row = {}
    for tok in head.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            row[k] = v
    if sep:
        row["cmd"] = cmd
    return row


def num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x == x else None


def fio2kv(path, engine, direct, fsync):
    """fio's JSON -> one key=value line like the bench programs print."""
    with open(path) as f:
        d = json.load(f)
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
    return (f"workload={workload} impl=fio-{engine} backend=- ops={ops} secs={runtime_s:.4f} "
            f"ops_per_s={ops / runtime_s:.1f} cpu_us_per_op={cpu_s * 1e6 / max(ops, 1):.3f} "
            f"qd={qd} bs={bs} pattern={pattern} direct={direct} fsync={fsync} "
            f"mbps={ops * bs / runtime_s / 1e6:.1f} p50_us={p50:.1f} p99_us={p99:.1f} lat_kind={lat_kind}")


def _flatten(prefix, v, out):
    if isinstance(v, dict):
        for k in v:
            _flatten(f"{prefix}.{k}" if prefix else str(k), v[k], out)
    elif isinstance(v, list):
        out[prefix] = ", ".join(str(x) for x in v)
    else:
        out[prefix] = "" if v is None else str(v)


def read_facts(out):
    """facts.json (nested keys joined by '.'), which holds every fact of
    facts.txt too; facts.txt (key=value) where there is no facts.json."""
    facts = {}
    p = os.path.join(out, "facts.json")
    if os.path.exists(p):
        with open(p) as f:
            _flatten("", json.load(f), facts)
        return facts
    p = os.path.join(out, "facts.txt")
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    facts.setdefault(k, v)
    return facts


def read_rows(out):
    """Rows from results.csv; a directory that has only raw.txt (the
    programs' lines as printed) gets its results.csv written from it."""
    p = os.path.join(out, "results.csv")
    raw = os.path.join(out, "raw.txt")
    rows = []
    if not os.path.exists(p) and os.path.exists(raw):
        with open(raw) as f:
            for line in f:
                r = parse_kv(line)
                if "workload" in r:
                    r.setdefault("rep", "1")
                    rows.append(r)
        write_csv(p, rows)
        return rows
    if not os.path.exists(p):
        raise FileNotFoundError(f"{out}: neither results.csv nor raw.txt")
    with open(p, newline="") as f:
        for r in csv.DictReader(f):
            r = {k: (v if v is not None else "") for k, v in r.items() if k is not None}
            if r.get("workload"):
                r["rep"] = r.get("rep") or "1"
                rows.append(r)
    return rows


def write_csv(path, rows):
    keys = list(LEAD)
    for r in rows:
        for k in r:
            if k not in keys and k not in ("cmd", "extra"):
                keys.append(k)
    if any("cmd" in r for r in rows):
        keys.append("cmd")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, restval="", extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def read_notes(out):
    p = os.path.join(out, "notes.txt")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [tuple(l.rstrip("\n").split("\t", 1)) for l in f if "\t" in l]


def label(d):
    """How a point's implementation is named in tables and legends."""
    s = d.get("impl", "")
    if d.get("backend", "") not in ("", "-"):
        s += " " + d["backend"]
    if d.get("fixed"):
        s += " fixed" if d["fixed"] == "1" else " (plain READ)" if d["fixed"] == "0" else f' fixed={d["fixed"]}'
    if d.get("extra"):
        s += f' [{d["extra"]}]'
    if d.get("threads_rule"):
        s += f', threads={d["threads_rule"]}'
    elif (d.get("threads") and d.get("impl") != "libuv" and not s.startswith("triloop")
            and not (d.get("impl") == "raw-pool" and d.get("threads") == d.get("qd"))):
        s += f' ({d["threads"]} thr)'
    return s


class Study:
    def __init__(self, out, rows=None, facts=None, notes=None):
        self.out = out
        self.rows = read_rows(out) if rows is None else rows
        self.facts = read_facts(out) if facts is None else facts
        self.notes = read_notes(out) if notes is None else notes
        self.groups = {}
        for r in self.rows:
            self.groups.setdefault(tuple(keyval(r, k) for k in KEY), []).append(r)
        self._split_clashes()

    def _split_clashes(self):
        """A point with two rows for one rep was measured under some setting
        KEY does not name (a new column): split it by the columns that
        tell its rows apart and are not measurements, so each part is a
        point of its own; the setting is then named in its label."""
        for k, rows in list(self.groups.items()):
            reps = [r.get("rep", "1") for r in rows]
            if len(set(reps)) == len(reps):
                continue
            cols = sorted({c for r in rows for c in r if c not in KEY and c not in MEASURED
                           and len({x.get(c, "") for x in rows}) > 1})
            if not cols:
                continue
            del self.groups[k]
            for r in rows:
                r["extra"] = " ".join(f"{c}={r.get(c, '')}" for c in cols)
                self.groups.setdefault(tuple(keyval(r, c) for c in KEY) + (r["extra"],), []).append(r)
        n = len(KEY)
        self.groups = {(k + ("",) if len(k) == n else k): v for k, v in self.groups.items()}

    def find(self, **want):
        """(point, rows) of every point whose key matches each given field;
        a field given as a tuple matches any of its values."""
        out = []
        for k, rows in self.groups.items():
            d = dict(zip(KEY + ["extra"], k))
            if all(d.get(f, "") in v if isinstance(v, tuple) else d.get(f, "") == str(v)
                   for f, v in want.items()):
                out.append((d, rows))
        return out

    def one(self, **want):
        g = self.find(**want)
        return g[0][1] if g else None

    def has(self, field):
        return any(r.get(field) not in (None, "") for r in self.rows)

    @staticmethod
    def med(rows, field="ops_per_s"):
        vals = [num(r.get(field)) for r in rows or []]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None
