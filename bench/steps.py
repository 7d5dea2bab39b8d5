#!/usr/bin/env python3
"""Where berth's time goes, step by step (issue 18): the per-step profile behind the cuts.

Runs berth's verbs many times with `--debug --log FILE` and places every `step` line (they
carry CLOCK_MONOTONIC, the clock time.perf_counter reads) against the moment this script
spawned the command: so the cost of starting berth, of the sealed re-exec, of the init stub's
steps and of the wait after the last step are all visible, not only the offsets one process
sees from its own start. Prints one Markdown table per verb: the median time at which each
step is reached, and the median gap from the step before it. bench/run.sh --steps runs it
inside the benchmark's namespace; it asserts nothing.
"""

import argparse
import ctypes
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import bench

STEP = re.compile(r"step (.+?) \+\d+us \(pid (\d+)\) mono (\d+)")


def run_logged(cmd, log):
    """Runs cmd with its debug log in `log`; returns (spawn µs, end µs, [(step, µs)])."""
    if os.path.exists(log):
        os.unlink(log)
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as errf:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
        t1 = time.perf_counter()
        if p.returncode != 0:
            errf.seek(0)
            raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {errf.read().decode().strip()}")
    steps, seen = [], {}
    with open(log) as f:
        for line in f:
            m = STEP.search(line)
            if not m:
                continue
            name = m.group(1)
            # The sealed re-exec runs the verb's first steps twice: number the repeats.
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} (#{seen[name]})"
            steps.append((name, int(m.group(3))))
    return t0 * 1e6, t1 * 1e6, steps


def collect(samples, spawn, end, steps):
    """Adds one run's step offsets (µs after spawn) to `samples`, keeping first-seen order."""
    for name, mono in steps:
        samples.setdefault(name, []).append(mono - spawn)
    samples.setdefault("(command returned)", []).append(end - spawn)


def table(title, samples, n):
    rows = [f"\n{title} (medians of {n} runs, µs after the command was spawned)\n",
            "| step | at | gap |", "|---|---|---|"]
    prev = 0.0
    ordered = sorted(samples.items(), key=lambda kv: statistics.median(kv[1]))
    for name, xs in ordered:
        at = statistics.median(xs)
        rows.append(f"| {name} | {at:,.0f} | {at - prev:,.0f} |")
        prev = at
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=os.path.join(bench.REPO, "target/x86_64-unknown-linux-gnu/release/berth"))
    ap.add_argument("-n", type=int, default=30)
    a = ap.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: lifecycle reaps the inits
    tmp = tempfile.mkdtemp(prefix="berth-steps-")
    base = os.path.join(tmp, "base")
    bench.sh(["bash", os.path.join(bench.REPO, "test-bundles/make-bundle.sh"), base])
    true_b = bench.make_bundle(base, os.path.join(tmp, "true"), ["true"])
    sleep_b = bench.make_bundle(base, os.path.join(tmp, "sleep"), ["sleep", "1000"])
    root, log = os.path.join(tmp, "root"), os.path.join(tmp, "log")
    b = [a.berth, "--root", root, "--debug", "--log", log]
    verbs = {v: {} for v in ("run", "create", "start", "delete", "exec")}
    for i in range(a.n):
        collect(verbs["run"], *run_logged(b + ["run", "--bundle", true_b, f"r{i}"], log))
        pidfile = os.path.join(tmp, "pid")
        collect(verbs["create"], *run_logged(b + ["create", "--bundle", true_b, "--pid-file", pidfile, f"c{i}"], log))
        collect(verbs["start"], *run_logged(b + ["start", f"c{i}"], log))
        with open(pidfile) as f:
            bench.reap(int(f.read().strip()))
        collect(verbs["delete"], *run_logged(b + ["delete", f"c{i}"], log))
    # Not bench.sh: the detached container would hold its stderr pipe open.
    run_logged(b + ["run", "--detach", "--bundle", sleep_b, "ex"], log)
    for i in range(a.n):
        collect(verbs["exec"], *run_logged(b + ["exec", "ex", "true"], log))
    run_logged(b + ["delete", "--force", "ex"], log)
    for v, samples in verbs.items():
        print(table(f"berth {v}", samples, a.n))
    # A log format change must not leave the profile silently empty.
    empty = [v for v, samples in verbs.items() if len(samples) < 2]
    if empty:
        print(f"steps: no --debug step lines found for {', '.join(empty)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
