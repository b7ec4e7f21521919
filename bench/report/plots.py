"""PNG plots through gnuplot: the uring/epoll ratio with error bars, and
CPU per op.  Each plot has a title, axes with units, and at most
MAX_SERIES legend entries (the rest are in the tables)."""
import os
import shutil
import subprocess
import sys
import tempfile

MAX_SERIES = 6
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
POINTS = [7, 5, 9, 11, 13, 4]


def available():
    return shutil.which("gnuplot") is not None


def _terminal():
    try:
        p = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
        cairo = "pngcairo" in (p.stdout + p.stderr)
    except OSError:
        cairo = False
    return ("set terminal pngcairo size 1000,620 noenhanced font ',10'" if cairo
            else "set terminal png size 1000,620 noenhanced")


def _q(s):
    return "'" + s.replace("'", "''") + "'"


def _panel(tmp, name, p, cmds):
    """One panel: p = dict(title, xlabel, ylabel, series=[(name, [(x, y, lo, hi)])], logy, ref1)."""
    series = p["series"][:MAX_SERIES]
    plots = []
    for i, (sname, pts) in enumerate(series):
        dat = os.path.join(tmp, f"{name}-{i}.dat")
        with open(dat, "w") as f:
            for x, y, lo, hi in sorted(pts):
                f.write(f"{x} {y:.6g} {lo if lo is not None else y:.6g} {hi if hi is not None else y:.6g}\n")
        style = f"lc rgb '{COLORS[i]}' pt {POINTS[i]} ps 1.2"
        if p.get("errorbars"):
            plots.append(f"{_q(dat)} using 1:2 with lines lw 2 {style} notitle")
            plots.append(f"{_q(dat)} using 1:2:3:4 with yerrorbars lw 1.5 {style} title {_q(sname)}")
        else:
            plots.append(f"{_q(dat)} using 1:2 with linespoints lw 2 {style} title {_q(sname)}")
    if p.get("ref1"):
        plots.append("1 with lines lc rgb '#888888' dt 2 notitle")
    cmds += [f"set title {_q(p['title'])}", f"set xlabel {_q(p['xlabel'])}",
             f"set ylabel {_q(p['ylabel'])}", "set logscale x 2", "set grid",
             "set key below maxrows 3 width -2", "set bmargin 10", "set format y '%g'",
             "set offsets graph 0.04, graph 0.04, 0, 0"]
    cmds.append("set logscale y 10" if p.get("logy") else "unset logscale y")
    if p.get("yrange"):
        cmds.append(f"set yrange [{p['yrange'][0]:.4g}:{p['yrange'][1]:.4g}]")
    else:
        cmds.append("set yrange [*:*]" if p.get("logy") else "set yrange [0:*]")
    cmds.append("plot " + ", ".join(plots))


def draw(out, png, panels):
    """Draw one PNG of one or more side-by-side panels; True when drawn."""
    panels = [p for p in panels if p and p["series"]]
    if not panels:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        cmds = [_terminal(), f"set output {_q(os.path.join(out, png))}"]
        if len(panels) > 1:
            cmds.append(f"set multiplot layout 1,{len(panels)}")
        for i, p in enumerate(panels):
            _panel(tmp, f"p{i}", p, cmds)
        if len(panels) > 1:
            cmds.append("unset multiplot")
        try:
            subprocess.run(["gnuplot"], input="\n".join(cmds) + "\n", text=True, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (OSError, subprocess.CalledProcessError) as e:
            sys.stderr.write(f"report.py: gnuplot failed on {png}: {getattr(e, 'stderr', e)}\n")
            return False
    return True
