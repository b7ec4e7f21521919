"""Paired log ratios, geometric means and bootstrap intervals.

A ratio is taken pair by pair within a repetition (a_r / b_r for the same
rep r), so slow drift of a shared machine cancels instead of widening the
spread.  A summary over several points is the geometric mean of every
per-rep ratio of every point (the mean of their logs), with a 95% interval
from a percentile bootstrap over those points x reps.  The bootstrap draws
from a generator seeded with a constant, so the same data always give the
same interval and a regenerated report is identical."""
import math
import random
import statistics

SEED = 20261126
RESAMPLES = 2000
LEVEL = 0.95


def _num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x == x else None


def log_ratios(num_rows, den_rows, field):
    """log(num_r / den_r) for each rep r that both sides have, in rep order."""
    den = {}
    for r in den_rows or []:
        den.setdefault(r.get("rep", "1"), _num(r.get(field)))
    out = []
    for r in sorted(num_rows or [], key=lambda r: _rep_key(r.get("rep", "1"))):
        a, b = _num(r.get(field)), den.get(r.get("rep", "1"))
        if a and b and a > 0 and b > 0:
            out.append(math.log(a / b))
    return out


def _rep_key(rep):
    try:
        return (0, int(rep), "")
    except ValueError:
        return (1, 0, rep)


def better(u_rows, e_rows, measure):
    """How many times better the first side is, as per-rep logs: throughput
    u/e ("thr", ops_per_s) or CPU per op e/u ("cpu", cpu_us_per_op)."""
    if measure == "cpu":
        return log_ratios(e_rows, u_rows, "cpu_us_per_op")
    return log_ratios(u_rows, e_rows, "ops_per_s")


def quantile(sorted_vals, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    n = len(sorted_vals)
    if n == 1:
        return sorted_vals[0]
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def _resample_means(rng, logs, b):
    n = len(logs)
    out = []
    for _ in range(b):
        s = 0.0
        for _ in range(n):
            s += logs[int(rng.random() * n)]
        out.append(s / n)
    return out


class Summary:
    """Geometric mean of ratios with its bootstrap interval (all as ratios,
    not logs); n = number of per-rep ratios, points = number of points."""
    __slots__ = ("gm", "lo", "hi", "n", "points")

    def __init__(self, gm, lo, hi, n, points):
        self.gm, self.lo, self.hi, self.n, self.points = gm, lo, hi, n, points

    def __repr__(self):
        return f"Summary({self.gm:.3f} [{self.lo:.3f}, {self.hi:.3f}] n={self.n} points={self.points})"

    def fmt(self, digits=2):
        return f"{self.gm:.{digits}f} [{self.lo:.{digits}f}–{self.hi:.{digits}f}]"


def summarise(lists, seed=SEED, resamples=RESAMPLES):
    """lists: one list of per-rep log ratios per point -> Summary or None."""
    logs = [x for l in lists for x in l]
    if not logs:
        return None
    rng = random.Random(seed)
    means = sorted(_resample_means(rng, logs, resamples))
    a = (1 - LEVEL) / 2
    return Summary(math.exp(statistics.fmean(logs)), math.exp(quantile(means, a)),
                   math.exp(quantile(means, 1 - a)), len(logs), sum(1 for l in lists if l))


def difference(file_lists, sock_lists, seed=SEED, resamples=RESAMPLES):
    """Mean file log ratio minus mean socket log ratio, with the bootstrap
    interval of that difference (each side resampled on its own) -> (d, lo,
    hi) in log units, or None.  exp(d) is how many times larger the file
    ratio is than the socket ratio."""
    f = [x for l in file_lists for x in l]
    s = [x for l in sock_lists for x in l]
    if not f or not s:
        return None
    rng = random.Random(seed)
    fm = _resample_means(rng, f, resamples)
    sm = _resample_means(rng, s, resamples)
    diffs = sorted(a - b for a, b in zip(fm, sm))
    a = (1 - LEVEL) / 2
    return (statistics.fmean(f) - statistics.fmean(s), quantile(diffs, a), quantile(diffs, 1 - a))


def point_summary(logs):
    """One point: geometric mean of its per-rep ratios, min and max."""
    if not logs:
        return None
    return (math.exp(statistics.fmean(logs)), math.exp(min(logs)), math.exp(max(logs)))


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
    """median [min–max] of raw values (not ratios)."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    return f"{fmt(statistics.median(vals), digits)} [{fmt(min(vals), digits)}–{fmt(max(vals), digits)}]"
