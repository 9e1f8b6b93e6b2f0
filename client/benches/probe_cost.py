#!/usr/bin/env python3
"""The probes' cost (`just bench-probe`): a Node fetch loop and a Python loop under
`leak-client watch`, without a probe and with it at its default, interleaved and repeated; then
the planted 1 KiB leaks judged at the default.

    python3 client/benches/probe_cost.py LEAK_CLIENT [--secs 3] [--repeats 5] [--no-leaks]

Each run is `watch --latency 0s` of the loop (CPU-bound: the worst case for a probe) through a
wrapper that measures a window of SECS, starting 0.5 s after the first request was served
(start-up and the first JIT work left out): the served count's rate (the server's `/__stats`) and
the loop process's CPU time per request (`/proc/PID/stat`, all its threads, the probe's
included), and the share of the window the probe's readings took (in CPU time, what it paces
itself by, and in wall time); then it ends the loop. A ratio is with/without within one repeat
(the modes of a repeat run back to back, their order rotated each repeat), reported as the median
and the min-max over repeats: on a machine shared with other work the spread says how far to
trust the median.
Python's exact mode (`--probe-tracemalloc`) is measured the same way, and `--sites` (V8's sampling
heap profiler read at every reading; tracemalloc with 16 frames and its totals per traceback),
whose ratio is against the probe alone (the `vs` column).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# WRAP OUT SECS COMMAND...: runs the loop, waits for its first request (the server's /__stats)
# and 0.5 s more, then measures SECS: served requests per second, the loop's CPU seconds per
# request, and the share of the window its probe's readings took in CPU time (`cost_us`, what the
# probe paces itself by: a forced reading's CPU time, a third of a Node measurement's wall time)
# and in wall time (`gc_us`: a forced collection's, preemption by other work included; a Node
# measurement's, from the call to its result, the program running meanwhile) — the probe's lines in the window, whose `t` is CLOCK_MONOTONIC like time.monotonic() — written to
# OUT as JSON; then ends the loop. Run with -E -S: no probe in it.
WRAP = """
import json, os, subprocess, sys, time, urllib.request
out, secs, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
stats = os.environ["LEAKPROBE_URL"].rstrip("/") + "/__stats"
tick = os.sysconf("SC_CLK_TCK")
p = subprocess.Popen(cmd)
def served():
    with urllib.request.urlopen(stats, timeout=10) as r:
        return json.load(r)["served"]
def now():
    with open("/proc/%d/stat" % p.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return time.monotonic(), served(), (int(fields[11]) + int(fields[12])) / tick
try:
    while served() == 0 and p.poll() is None:
        time.sleep(0.02)
    time.sleep(0.5)
    t1, s1, c1 = now()
    time.sleep(secs)
    t2, s2, c2 = now()
    share = None
    if os.environ.get("LEAKPROBE_PROBE_OUT"):
        share = [0.0, 0.0]
        with open(os.environ["LEAKPROBE_PROBE_OUT"]) as f:
            for line in f:
                r = json.loads(line)
                if t1 <= r["t"] / 1e9 <= t2:
                    share[0] += r["cost_us"] / 1e6 / (t2 - t1)
                    share[1] += r["gc_us"] / 1e6 / (t2 - t1)
    with open(out, "w") as f:
        json.dump({"rate": (s2 - s1) / (t2 - t1), "cpu": (c2 - c1) / max(1, s2 - s1),
                   "share": share}, f)
finally:
    p.terminate()
    p.wait()
"""

NODE = ["node", os.path.join(ROOT, "examples/node/fetch.js")]
PYTHON = ["python3", os.path.join(ROOT, "examples/python/loop.py")]

# (program, command, environment, [(mode, watch flags)]): the first mode is the reference, but
# for the modes REFERENCE names (`--sites` beside the probe alone).
CASES = [
    ("node fetch", NODE, {"PAUSE_MS": "0"}, [
        ("without", []),
        ("--probe node", ["--probe", "node"]),
        ("--probe node --sites", ["--probe", "node", "--sites"]),
    ]),
    ("python loop", PYTHON, {}, [
        ("without", []),
        ("--probe python", ["--probe", "python"]),
        ("--probe python --probe-tracemalloc", ["--probe", "python", "--probe-tracemalloc"]),
        ("--probe python --sites", ["--probe", "python", "--sites"]),
    ]),
]

# The mode a mode's ratio is against, when not its program's first.
REFERENCE = {
    "--probe node --sites": "--probe node",
    "--probe python --sites": "--probe python",
}

# (name, command, environment, watch flags, bytes kept per request): judged once each.
LEAKS = [
    ("node fetch, 1 KiB string kept", NODE,
     {"PAUSE_MS": "0", "REQUESTS": "10000", "LEAK_BYTES": "1024"}, ["--probe", "node"], 1024),
    ("node fetch, 1 KiB body kept (ArrayBuffer)", NODE,
     {"PAUSE_MS": "0", "REQUESTS": "10000", "BODY": "keep", "BODY_BYTES": "1024"},
     ["--probe", "node"], 1024),
    ("python loop, 1 KiB bytearray kept", PYTHON,
     {"REQUESTS": "10000", "LEAK_BYTES": "1024"}, ["--probe", "python"], 1024),
    ("python loop, clean", PYTHON, {"REQUESTS": "10000"}, ["--probe", "python"], 0),
]


def watch(exe, flags, command, env):
    """Runs one watch of COMMAND; returns its summary."""
    argv = [exe, "watch", "--quiet", "--json", "--latency", "0s", *flags, "--", *command]
    out = subprocess.run(argv, env={**os.environ, **env}, cwd=ROOT, capture_output=True,
                         text=True, check=False)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        sys.exit("no summary from `%s`:\n%s" % (" ".join(argv), out.stderr[-2000:]))


def measured(exe, flags, command, env, secs, tmp):
    """One throughput run over the wrapper's window: (requests/s, CPU µs per request, the share
    of the window the probe's readings took as [CPU, wall], or None without a probe)."""
    out = os.path.join(tmp, "window.json")
    if os.path.exists(out):
        os.remove(out)
    wrapped = [sys.executable, "-E", "-S", "-c", WRAP, out, str(secs), *command]
    watch(exe, flags, wrapped, {"REQUESTS": "1000000000", **env})
    try:
        with open(out) as f:
            w = json.load(f)
        return w["rate"], w["cpu"] * 1e6, w["share"]
    except (OSError, ValueError, KeyError):
        return float("nan"), float("nan"), None


def spread(values, fmt):
    v = [x for x in values if x == x]
    if not v:
        return "?"
    return "%s (%s–%s)" % (fmt(statistics.median(v)), fmt(min(v)), fmt(max(v)))


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("exe", help="the leak-client binary (a release build)")
    ap.add_argument("--secs", type=float, default=3.0, help="seconds measured per run (default 3)")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of every mode (default 5)")
    ap.add_argument("--no-leaks", action="store_true", help="skip the planted-leak verdicts")
    ap.add_argument("--leak-repeats", type=int, default=3,
                    help="runs of every planted case (default 3): a verdict is a draw, and one "
                         "run says little about how often it comes out so")
    ap.add_argument("--only", choices=["node", "python"],
                    help="only this runtime's loop and planted cases")
    args = ap.parse_args()
    keep = lambda name: args.only is None or name.startswith(args.only)
    version = lambda c: subprocess.run(c, capture_output=True, text=True).stdout.strip()
    print("node %s, %s, %d CPUs; load average at start %s" % (
        version(["node", "--version"]), version(["python3", "--version"]), os.cpu_count(), load()))
    with tempfile.TemporaryDirectory(prefix="leakprobe-bench-probe-") as tmp:
        # results[program][mode] = [(requests/s, CPU µs per request), ...], one per repeat
        cases = [c for c in CASES if keep(c[0])]
        results = {p: {m: [] for m, _ in modes} for p, _, _, modes in cases}
        for r in range(args.repeats):
            for program, command, env, modes in cases:
                k = r % len(modes)
                for mode, flags in modes[k:] + modes[:k]:
                    rate, cpu_us, share = measured(args.exe, flags, command, env, args.secs, tmp)
                    results[program][mode].append((rate, cpu_us, share))
                    print("repeat %d  %-12s %-36s %8.0f req/s  %6.1f µs CPU/request  probe %s"
                          % (r + 1, program, mode, rate, cpu_us,
                             "–" if share is None else "CPU %.1f%%, wall %.1f%%"
                             % (share[0] * 100, share[1] * 100)),
                          file=sys.stderr, flush=True)
        print()
        print("%d × %gs per mode, interleaved; ratio = with / without in the same repeat "
              "(median, min–max); load average at the end %s" % (args.repeats, args.secs, load()))
        print()
        print("| program | mode | requests/s | ratio | vs | CPU µs/request | CPU ratio "
              "| probe's readings: CPU | wall |")
        print("|---|---|---|---|---|---|---|---|---|")
        for program, _, _, modes in cases:
            for mode, _ in modes:
                ref = REFERENCE.get(mode, modes[0][0])
                base = results[program][ref]
                runs = results[program][mode]
                ratio = [a[0] / b[0] for a, b in zip(runs, base)]
                cpu_ratio = [a[1] / b[1] for a, b in zip(runs, base)]
                cpu_share = [x[2][0] * 100 for x in runs if x[2] is not None]
                wall_share = [x[2][1] * 100 for x in runs if x[2] is not None]
                pct = lambda v: "%.1f%%" % v
                print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    program, mode,
                    spread([x[0] for x in runs], lambda v: "{:,.0f}".format(v)),
                    spread(ratio, lambda v: "%.2f×" % v), ref,
                    spread([x[1] for x in runs], lambda v: "%.0f" % v),
                    spread(cpu_ratio, lambda v: "%.2f×" % v),
                    spread(cpu_share, pct) if cpu_share else "–",
                    spread(wall_share, pct) if wall_share else "–"))
        if args.no_leaks:
            return
        print()
        print("| planted | runs | verdicts | B/request (median, min–max) | split (median) "
              "| readings | a reason (the last run's) |")
        print("|---|---|---|---|---|---|---|")
        for name, command, env, flags, kept in LEAKS:
            if not keep(name):
                continue
            runs = [watch(args.exe, flags, command, env) for _ in range(args.leak_repeats)]
            classes = {}
            slopes, heaps, externals = [], [], []
            for s in runs:
                v = s["judged"]["verdict"]
                classes[v["class"]] = classes.get(v["class"], 0) + 1
                slope = (v.get("slope") or {}).get("bytes_per_request")
                if slope is not None:
                    slopes.append(slope)
                split = s["judged"].get("split") or {}
                if split.get("heap") and split.get("external"):
                    heaps.append(split["heap"]["bytes_per_request"])
                    externals.append(split["external"]["bytes_per_request"])
            off = lambda v: " (%+.0f%% of %d)" % ((v / kept - 1) * 100, kept) if kept else ""
            print("| %s | %d | %s | %s | %s | %s | %s |" % (
                name, len(runs),
                ", ".join("%d %s" % (n, c) for c, n in sorted(classes.items())),
                spread(slopes, lambda v: "{:,.0f}".format(v))
                + off(statistics.median(slopes)) if slopes else "?",
                "heap %+.0f, external %+.0f" % (statistics.median(heaps),
                                                statistics.median(externals)) if heaps else "–",
                spread([s["probe_readings"] for s in runs], lambda v: "%d" % v),
                runs[-1]["judged"]["verdict"]["reason"][:90]))


if __name__ == "__main__":
    main()
