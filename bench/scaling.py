"""How cost grows (issue 18), and berth's deterministic instruction count.

Three curves, each measured for every runtime under the same conditions as bench.py:
lifecycle time against the number of bind mounts in the config, lifecycle time against the
number of containers already running, and exec latency against the number of processes in
the container. Written as a table and one SVG line chart per curve.
"""

import glob
import json
import os
import shutil
import statistics
import subprocess

COLORS = {"berth": "#2a7ab0", "runc": "#999999", "crun": "#e0a030"}
FAILURES = []  # runtimes that could not run a scaling config, with why


def instruction_count(valgrind, berth, base, tmp):
    """Instructions the berth process executes in one `run` of /bin/true (callgrind).

    The count is the parent's: config, plan, state, cgroups, clone, sync, wait, teardown.
    The init stub's own instructions are not in it: callgrind writes no profile for a
    process that ends in execve, and the stub is mostly system calls.

    What valgrind 3.24 can run: it lacks the new mount API (fsopen) berth mounts with, so
    the config has no mount namespace (berth then only chroots) and no rlimits (valgrind
    guards its own fd limit) but keeps the pid, ipc, uts and network namespaces, cgroups and
    the whole parent side. berth re-executes itself unless its image is on a read-only mount;
    valgrind reports the client's binary as /proc/self/exe, so a read-only bind of a copy keeps
    the run in one image. Needs the private mount namespace bench/run.sh provides.
    """
    ro = os.path.join(tmp, "ro")
    os.makedirs(ro, exist_ok=True)
    shutil.copy2(berth, os.path.join(ro, "berth"))
    subprocess.run(["mount", "--bind", ro, ro], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    rootfs = os.path.join(base, "rootfs")
    cfg["root"] = {"path": rootfs}
    cfg["process"]["args"] = ["/bin/true"]
    cfg["process"].pop("rlimits", None)
    cfg["mounts"] = []
    for k in ("maskedPaths", "readonlyPaths", "devices"):
        cfg["linux"].pop(k, None)
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                  if n["type"] in ("pid", "ipc", "uts", "network")]
    bundle = os.path.join(tmp, "vg-bundle")
    os.makedirs(bundle, exist_ok=True)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    counts = []
    for attempt in range(2):
        out = os.path.join(tmp, f"cg{attempt}")
        os.makedirs(out, exist_ok=True)
        p = subprocess.run(
            [valgrind, "--tool=callgrind", "--vgdb=no", "--trace-children=yes",
             "--trace-children-skip=*/true", f"--callgrind-out-file={out}/cg.%p",
             os.path.join(ro, "berth"), "--root", os.path.join(tmp, "root-vg"), "run",
             "--bundle", bundle, f"vg{attempt}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            print(f"callgrind run failed: {p.stderr[-2000:]}")
            return None
        total = 0
        for f in glob.glob(os.path.join(out, "cg.*")):
            with open(f) as fh:
                for line in fh:
                    if line.startswith(("summary:", "totals:")):
                        total += int(line.split()[1])
                        break
        counts.append(total)
    spread = max(counts) - min(counts)
    return min(counts), spread


def bundle_with(base, dest, args, mounts=0):
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"] = {"path": os.path.join(base, "rootfs"), "readonly": True}
    cfg["process"]["args"] = args
    src = os.path.join(dest, "src")
    os.makedirs(src, exist_ok=True)
    # Under /tmp, the config's own tmpfs: mount points are made there, not in the rootfs.
    cfg["mounts"] += [{"destination": f"/tmp/m{i}", "type": "bind", "source": src,
                       "options": ["rbind", "ro"]} for i in range(mounts)]
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f)
    return dest


def run_all(runtimes, base, tmp, quick, lifecycle, timed):
    k = 1 if quick else 7
    axes = {
        "mounts": [2] if quick else [10, 100, 1000],
        "running": [0, 2] if quick else [0, 100, 500],
        "processes": [0, 5] if quick else [0, 100, 1000],
    }
    res = {axis: {rt.name: {} for rt in runtimes} for axis in axes}
    seq = [0]

    def cid(tag):
        seq[0] += 1
        return f"s{tag}{seq[0]}"

    true_b = bundle_with(base, os.path.join(tmp, "sc-true"), ["true"])
    sleep_b = bundle_with(base, os.path.join(tmp, "sc-sleep"), ["sleep", "100000"])
    for n in axes["mounts"]:
        b = bundle_with(base, os.path.join(tmp, f"sc-m{n}"), ["true"], mounts=n)
        times = {rt.name: [] for rt in runtimes}
        for _ in range(k):
            for rt in runtimes:
                if times[rt.name] is None:
                    continue
                c = cid("m")
                try:
                    times[rt.name].append(lifecycle(rt, b, c)[0])
                except RuntimeError as e:
                    # A runtime that cannot run the config (crun: EMFILE at 1000 mounts).
                    print(f"scaling: {rt.name} with {n} mounts: {e}")
                    why = next((ln for ln in str(e).splitlines() if "exit" in ln), str(e))
                    FAILURES.append(f"{rt.name} with {n} bind mounts: {why.split(': ', 1)[-1][-160:]}")
                    subprocess.run(rt.cmd("delete", "--force", c), capture_output=True)
                    times[rt.name] = None
        for rt in runtimes:
            if times[rt.name]:
                res["mounts"][rt.name][n] = statistics.median(times[rt.name]) * 1000
    for rt in runtimes:
        for n in axes["running"]:
            ids = [cid("r") for _ in range(n)]
            for c in ids:
                timed(rt.cmd("run", "--detach", "--bundle", sleep_b, c))
            t = [lifecycle(rt, true_b, cid("l"))[0] for _ in range(k)]
            res["running"][rt.name][n] = statistics.median(t) * 1000
            for c in ids:
                timed(rt.cmd("delete", "--force", c))
    for n in axes["processes"]:
        b = bundle_with(base, os.path.join(tmp, f"sc-p{n}"),
                        ["sh", "-c", f"for i in $(seq {n}); do sleep 100000 & done; exec sleep 100000"])
        for rt in runtimes:
            c = cid("p")
            timed(rt.cmd("run", "--detach", "--bundle", b, c))
            t = [timed(rt.cmd("exec", c, "true"))[0] for _ in range(k)]
            res["processes"][rt.name][n] = statistics.median(t) * 1000
            timed(rt.cmd("delete", "--force", c))
    return res


TITLES = {
    "mounts": ("lifecycle ms against bind mounts in the config", "bind mounts (log scale)"),
    "running": ("lifecycle ms against containers already running", "containers running"),
    "processes": ("exec ms against processes in the container", "processes in the container (0, then log scale)"),
}


def svg_lines(series, title, xlabel, path):
    xs = sorted({x for s in series.values() for x in s})
    ymax = max((v for s in series.values() for v in s.values()), default=1) or 1
    w, h, left, top = 520, 220, 60, 30
    def px(i):
        return left + (w * i / max(1, len(xs) - 1))
    def py(v):
        return top + h - h * v / ymax
    parts = [f'<text x="5" y="18" font-size="14">{title}</text>',
             f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#000"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#000"/>',
             f'<text x="{left - 5}" y="{top + 4}" font-size="10" text-anchor="end">{ymax:.0f}</text>',
             f'<text x="{left + w / 2}" y="{top + h + 32}" font-size="11" text-anchor="middle">{xlabel}</text>']
    for i, x in enumerate(xs):
        parts.append(f'<text x="{px(i)}" y="{top + h + 14}" font-size="10" text-anchor="middle">{x}</text>')
    for j, (name, s) in enumerate(series.items()):
        pts = " ".join(f"{px(xs.index(x))},{py(v)}" for x, v in sorted(s.items()))
        color = COLORS.get(name, "#444")
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{left + w + 8}" y="{top + 14 * (j + 1)}" font-size="11" fill="{color}">{name}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w + 70}" height="{top + h + 45}" '
           f'font-family="sans-serif">{"".join(parts)}</svg>\n')
    with open(path, "w") as f:
        f.write(svg)


def report(res, out):
    lines = []
    for axis, series in res.items():
        title, xlabel = TITLES[axis]
        xs = sorted({x for s in series.values() for x in s})
        lines += ["", f"{title}:", "", "| runtime | " + " | ".join(f"{x}" for x in xs) + " |",
                  "|---|" + "---|" * len(xs)]
        for name, s in series.items():
            lines.append(f"| {name} | " + " | ".join(f"{s[x]:.1f}" if x in s else "fails"
                                                     for x in xs) + " |")
        chart = f"scaling-{axis}.svg"
        svg_lines(series, title, xlabel, os.path.join(out, chart))
        lines += ["", f"![{title}]({chart})"]
    if FAILURES:
        lines += ["", "Could not run: " + "; ".join(FAILURES) + "."]
    return lines
