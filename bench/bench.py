#!/usr/bin/env python3
"""berth's benchmark against runc, crun and the syscall floor (issues 7 and 18).

bench/run.sh starts it inside one private mount namespace with the cgroup2 mount hidden, so
every runtime (crun included) runs under the same conditions without a per-call wrapper.
Runtimes are interleaved run by run so machine drift cancels; medians (with min and max) and
ratios to berth are reported as a Markdown table (bench/results.md) and an SVG chart
(bench/chart.svg); a full run adds berth's callgrind instruction count and the scaling
charts (bench/scaling.py). Nothing here asserts a time: it measures.
"""

import argparse
import concurrent.futures
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import scaling

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def make_bundle(base, dest, args):
    """A bundle sharing the default rootfs, running `args`, without the /out-style extras."""
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"] = {"path": os.path.join(base, "rootfs"), "readonly": True}
    cfg["process"]["args"] = args
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f)
    return dest


class Runtime:
    def __init__(self, name, argv, root):
        self.name, self.argv, self.root = name, argv, root
        os.makedirs(root, exist_ok=True)

    def cmd(self, *args):
        return self.argv + ["--root", self.root] + list(args)


RSS = None  # path of the compiled rss.c launcher


def timed(cmd):
    """Runs cmd; returns (seconds, peak RSS of that process in KiB, via the rss launcher)."""
    full = [RSS] + cmd if RSS else cmd
    # A file, not a pipe: after create the container holds the runtime's stderr open.
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        p = subprocess.run(full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
        dt = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {err.strip()}")
    rss = 0
    for line in err.splitlines():
        if line.startswith("maxrss_kib="):
            rss = int(line.split("=")[1])
    return dt, rss


def reap(pid, timeout=10):
    """Waits for a (re-parented) container init: we are a child subreaper."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            got, _ = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                return
        except ChildProcessError:
            return
        time.sleep(0.0002)


def lifecycle(rt, bundle, cid):
    pidfile = os.path.join(rt.root, f"{cid}.pid")
    t0 = time.perf_counter()
    _, rss = timed(rt.cmd("create", "--bundle", bundle, "--pid-file", pidfile, cid))
    timed(rt.cmd("start", cid))
    with open(pidfile) as f:
        reap(int(f.read().strip()))
    timed(rt.cmd("delete", cid))
    return time.perf_counter() - t0, rss


def try_lifecycle(rt, bundle, cid):
    """One lifecycle for the parallel test: True when every step succeeded."""
    try:
        lifecycle(rt, bundle, cid)
        return True
    except RuntimeError as e:
        print(f"{rt.name}: {e}", file=sys.stderr)
        subprocess.run(rt.cmd("delete", "--force", cid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return False


def run_once(rt, bundle, i):
    return timed(rt.cmd("run", "--bundle", bundle, f"run{i}"))


def median_ms(xs):
    return statistics.median(xs) * 1000 if xs else float("nan")


def svg_chart(rows, path):
    """Grouped horizontal bars: one group per metric, one bar per runtime."""
    colors = {"berth": "#2a7ab0", "runc": "#999999", "crun": "#e0a030", "floor": "#5cb85c"}
    metrics = [m for m in ("lifecycle", "run", "exec") if any(m in r for r in rows.values())]
    names = list(rows)
    bar_h, gap, left, width = 16, 14, 120, 460
    vmax = max((rows[n].get(m, 0) for n in names for m in metrics), default=1) or 1
    y = 30
    parts = []
    for m in metrics:
        parts.append(f'<text x="5" y="{y + 12}" font-size="13" font-weight="bold">{m}</text>')
        for n in names:
            v = rows[n].get(m)
            if v is None:
                continue
            w = max(1, int(width * v / vmax))
            parts.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar_h}" fill="{colors.get(n, "#444")}"/>')
            parts.append(f'<text x="{left + w + 5}" y="{y + 12}" font-size="11">{n} {v:.1f} ms</text>')
            y += bar_h + 3
        y += gap
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="720" height="{y + 10}" font-family="sans-serif">'
           f'<text x="5" y="18" font-size="14">median time, ms (lower is better)</text>{"".join(parts)}</svg>\n')
    with open(path, "w") as f:
        f.write(svg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="few iterations: proves the benchmark works")
    ap.add_argument("--berth", default=os.path.join(REPO, "target/x86_64-unknown-linux-gnu/release/berth"))
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--valgrind", help="valgrind binary for berth's instruction count")
    a = ap.parse_args()
    n = 3 if a.quick else 40
    parallel = 10 if a.quick else 200

    # Orphaned container inits come back to us, so lifecycle can wait for the exit.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    tmp = tempfile.mkdtemp(prefix="berth-bench-")
    global RSS
    rss_bin = os.path.join(tmp, "rss")
    if subprocess.run(["cc", "-O2", "-static", "-o", rss_bin, os.path.join(HERE, "rss.c")]).returncode == 0:
        RSS = rss_bin
    base = os.path.join(tmp, "base")
    sh(["bash", os.path.join(REPO, "test-bundles/make-bundle.sh"), base])
    true_b = make_bundle(base, os.path.join(tmp, "true"), ["true"])
    sleep_b = make_bundle(base, os.path.join(tmp, "sleep"), ["sleep", "1000"])

    runtimes = [Runtime("berth", [a.berth], os.path.join(tmp, "root-berth"))]
    if shutil.which("runc"):
        runtimes.append(Runtime("runc", ["runc"], os.path.join(tmp, "root-runc")))
    if shutil.which("crun"):
        runtimes.append(Runtime("crun", ["crun"], os.path.join(tmp, "root-crun")))

    res = {rt.name: {"lifecycle": [], "run": [], "exec": [], "rss_create": [], "rss_run": []} for rt in runtimes}
    for i in range(n):
        for rt in runtimes:
            dt, rss = lifecycle(rt, true_b, f"lc{i}")
            res[rt.name]["lifecycle"].append(dt)
            res[rt.name]["rss_create"].append(rss)
            dt, rss = run_once(rt, true_b, i)
            res[rt.name]["run"].append(dt)
            res[rt.name]["rss_run"].append(rss)

    for rt in runtimes:
        timed(rt.cmd("run", "--detach", "--bundle", sleep_b, "ex"))
    for i in range(n):
        for rt in runtimes:
            res[rt.name]["exec"].append(timed(rt.cmd("exec", "ex", "true"))[0])
    for rt in runtimes:
        timed(rt.cmd("delete", "--force", "ex"))

    # Parallel lifecycles (create, start, wait, delete) of /bin/true by 8 workers.
    par, par_ok = {}, {}
    for rt in runtimes:
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(lambda i: try_lifecycle(rt, true_b, f"par{i}"), range(parallel)))
        par[rt.name] = time.perf_counter() - t0
        par_ok[rt.name] = sum(outcomes)

    floor = []
    floor_bin = os.path.join(tmp, "floor")
    if subprocess.run(["cc", "-O2", "-o", floor_bin, os.path.join(HERE, "floor.c")]).returncode == 0:
        for _ in range(n):
            floor.append(timed([floor_bin, os.path.join(base, "rootfs")])[0])

    rows, spread = {}, {}
    for rt in runtimes:
        r = res[rt.name]
        rows[rt.name] = {k: median_ms(r[k]) for k in ("lifecycle", "run", "exec")}
        spread[rt.name] = {k: (min(r[k]) * 1000, max(r[k]) * 1000) for k in ("lifecycle", "run", "exec")}
        rows[rt.name]["parallel"] = par[rt.name] * 1000
        rows[rt.name]["rss_create"] = statistics.median(r["rss_create"]) / 1024
        rows[rt.name]["rss_run"] = statistics.median(r["rss_run"]) / 1024
    if floor:
        rows["floor"] = {"run": median_ms(floor)}
        spread["floor"] = {"run": (min(floor) * 1000, max(floor) * 1000)}
    instructions = scaling.instruction_count(a.valgrind, a.berth, base, tmp) if a.valgrind else None
    grow = scaling.run_all(runtimes, base, tmp, quick=a.quick, lifecycle=lifecycle, timed=timed)

    b = rows["berth"]
    size = os.path.getsize(a.berth) / (1 << 20)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {n} interleaved runs each"
        f"{' (quick mode: figures are not meaningful)' if a.quick else ''}; medians, ratio = runtime / berth.",
        "",
        f"| runtime | lifecycle ms | run ms | exec ms | {parallel} parallel lifecycles ms (ok) | peak RSS create MiB | peak RSS run MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    def cell(name, k, fmt="{:.1f}"):
        v = rows[name].get(k)
        if v is None:
            return "–"
        ratio = "" if name == "berth" or k not in b or not b[k] else f" ({v / b[k]:.2f}×)"
        return fmt.format(v) + ratio
    for name in rows:
        ok = f" ({par_ok[name]}/{parallel})" if name in par_ok else ""
        lines.append(f"| {name} | {cell(name, 'lifecycle')} | {cell(name, 'run')} | {cell(name, 'exec')} | "
                     f"{cell(name, 'parallel', '{:.0f}')}{ok} | {cell(name, 'rss_create')} | {cell(name, 'rss_run')} |")
    lines += ["", "min – max, ms:", "", "| runtime | lifecycle | run | exec |", "|---|---|---|---|"]
    for name, sp in spread.items():
        lines.append("| " + name + " | " + " | ".join(
            f"{sp[k][0]:.1f} – {sp[k][1]:.1f}" if k in sp else "–" for k in ("lifecycle", "run", "exec")) + " |")
    lines += ["", f"berth release binary: {size:.2f} MiB. Parallel: {parallel} lifecycles of /bin/true by 8 workers."]
    if instructions:
        count, diff = instructions
        lines += ["", f"Instructions the berth process executes for one minimal `run` of /bin/true "
                      f"(callgrind; the parent side, no mount namespace, see bench/scaling.py): "
                      f"{count:,} (two runs differ by {diff:,})."]
    lines += scaling.report(grow, a.out)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text)
    svg_chart(rows, os.path.join(a.out, "chart.svg"))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
