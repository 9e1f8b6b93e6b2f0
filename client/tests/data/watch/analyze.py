#!/usr/bin/env python3
"""Slopes of a `leak-client watch --jsonl` recording (or of a JSON recording made by the former
watch_measure harness): Theil–Sen, bytes per request, of the tree's RSS / PSS / anon and of the
probe's post-GC heap, against the server's served count, over the loop (served in (0, max]).

    analyze.py RECORDING.jsonl|json...      one summary line per file
    analyze.py --fixture OUT.json REC.jsonl [key=value...]
                                            write a thinned (<= 500 points) fixture, labelled

A watch JSONL has the probe's sum over processes only (`live`), so `heap_used_main` and
`heap_plus_external` read the same as `heap_used` for it.
"""
import json
import sys


def theil_sen(xs, ys):
    """Median of pairwise slopes; subsampled to ~600 points so it stays quick."""
    pts = sorted(zip(xs, ys))
    if len(pts) > 600:
        step = len(pts) / 600
        pts = [pts[int(i * step)] for i in range(600)]
    slopes = []
    for i in range(len(pts)):
        x0, y0 = pts[i]
        for j in range(i + 1, len(pts)):
            x1, y1 = pts[j]
            if x1 > x0:
                slopes.append((y1 - y0) / (x1 - x0))
    if not slopes:
        return float("nan")
    slopes.sort()
    return slopes[len(slopes) // 2]


def loop_rows(rows, served_of):
    top = max((served_of(r) or 0) for r in rows) if rows else 0
    return [r for r in rows if served_of(r) and 0 < served_of(r) <= top], top


def load(path):
    """A recording: the harness's JSON as is, or a watch JSONL converted to its shape."""
    if not path.endswith(".jsonl"):
        return json.load(open(path))
    rows = [json.loads(line) for line in open(path) if line.strip()]
    tree = [r for r in rows if r["kind"] != "probe"]
    probes = [r for r in rows if r["kind"] == "probe"]
    return {
        "labels": {},
        "command": [],
        "latency_ms": None,
        "served": max((r["requests"] for r in rows), default=0),
        "connections": "?",
        "probe": "node|python" if probes else None,
        "sample_cost_us": "?",
        "kicks": [],
        "tree_columns": ["t_ms", "served", "rss", "pss", "anon", "procs"],
        "tree": [[r["t_ms"], r["requests"], r["rss"], r["pss"], r["anon"], r["procs"]] for r in tree],
        "probe_rows": [
            {"served": r["requests"], "pid": r["pid"], "ev": "Tick", "gc_us": 0,
             "heap_used": r["live"], "sum_heap_used": r["live"], "sum_external": 0}
            for r in probes
        ],
    }


def tree_stats(rec):
    cols = rec["tree_columns"]
    ix = {c: i for i, c in enumerate(cols)}
    rows, top = loop_rows(rec["tree"], lambda r: r[ix["served"]])
    if len(rows) < 3:
        return {}
    out = {"served": top}
    xs = [r[ix["served"]] for r in rows]
    for k in ("rss", "pss", "anon"):
        ys = [r[ix[k]] for r in rows]
        if any(y is None for y in ys):
            continue
        half = [(x, y) for x, y in zip(xs, ys) if x > top / 2]
        out[k] = {
            "start": ys[0],
            "end": ys[-1],
            "max": max(ys),
            "growth": ys[-1] - rec["tree"][0][ix[k]] if rec["tree"][0][ix[k]] is not None else None,
            "slope": theil_sen(xs, ys),
            "slope_2nd_half": theil_sen([h[0] for h in half], [h[1] for h in half]),
        }
    out["procs_max"] = max(r[ix["procs"]] for r in rec["tree"])
    return out


def plus_external(r):
    """heap_used + external summed over processes (older recordings stored it as sum_live)."""
    if "sum_external" in r:
        return r["sum_heap_used"] + r["sum_external"]
    return r["sum_live"]


def main_pid(rows):
    """The loop's process: the one whose post-GC heap moved the most while requests were served
    (a `next build` before `next start` moves more, but before the first request)."""
    span = {}
    for r in [r for r in rows if r.get("served")] or rows:
        lo, hi = span.get(r["pid"], (r["heap_used"], r["heap_used"]))
        span[r["pid"]] = (min(lo, r["heap_used"]), max(hi, r["heap_used"]))
    return max(span, key=lambda p: span[p][1] - span[p][0])


def heap_series(rec):
    """(served, value) per probe tick inside the loop: Node sum of heap_used and of heap_used +
    external over processes, Python traced bytes (or blocks)."""
    rows = [r for r in rec.get("probe_rows", []) if r.get("ev") == "Tick"]
    rows, top = loop_rows(rows, lambda r: r.get("served"))
    series = {}
    if rows and "heap_used" in rows[0]:
        series["heap_used"] = [(r["served"], r["sum_heap_used"]) for r in rows]
        series["heap_plus_external"] = [(r["served"], plus_external(r)) for r in rows]
        main = main_pid(rows)
        series["heap_used_main"] = [(r["served"], r["heap_used"]) for r in rows if r["pid"] == main]
    elif rows:
        series["blocks"] = [(r["served"], r["sum_blocks"]) for r in rows]
        if rows[0].get("traced") is not None:
            series["traced"] = [(r["served"], r["traced"]) for r in rows]
    return series, top


def summary(path):
    rec = load(path)
    t = tree_stats(rec)
    series, _ = heap_series(rec)
    heap = {}
    for k, pts in series.items():
        if len(pts) >= 3:
            top = max(p[0] for p in pts)
            half = [p for p in pts if p[0] > top / 2]
            heap[k] = {
                "slope": theil_sen([p[0] for p in pts], [p[1] for p in pts]),
                "slope_2nd_half": theil_sen([p[0] for p in half], [p[1] for p in half]),
                "first": pts[0][1],
                "last": pts[-1][1],
                "n": len(pts),
            }
    gc = [r["gc_us"] for r in rec.get("probe_rows", []) if r.get("ev") == "Tick" and r["gc_us"]]
    return rec, t, heap, (sorted(gc)[len(gc) // 2] if gc else None)


def mb(v):
    return "-" if v is None else f"{v / 1e6:.1f}"


def line(path):
    rec, t, heap, gc = summary(path)
    rss = t.get("rss", {})
    anon = t.get("anon", {})
    parts = [
        f"{rec['labels'].get('case', path)}",
        f"served={rec['served']}",
        f"conns={rec['connections']}",
        f"procs={t.get('procs_max')}",
        f"rss {mb(rec['tree'][0][2])}->{mb(rss.get('end'))} MB (max {mb(rss.get('max'))})",
        f"rss slope {rss.get('slope', float('nan')):.0f} B/req (2nd half {rss.get('slope_2nd_half', float('nan')):.0f})",
        f"anon slope {anon.get('slope', float('nan')):.0f} (2nd half {anon.get('slope_2nd_half', float('nan')):.0f})",
    ]
    for k, h in heap.items():
        parts.append(f"{k} slope {h['slope']:.1f} (2nd half {h['slope_2nd_half']:.1f}) {mb(h['first'])}->{mb(h['last'])} n={h['n']}")
    if gc is not None:
        parts.append(f"gc median {gc / 1000:.1f} ms")
    parts.append(f"sample {rec['sample_cost_us']} us")
    return " | ".join(parts)


def thin(rows, limit=500):
    if len(rows) <= limit:
        return rows
    step = (len(rows) - 1) / (limit - 1)
    return [rows[round(i * step)] for i in range(limit)]


def fixture(rec_path, out_path, extra):
    rec = load(rec_path)
    rec["labels"].update(extra)
    cols = rec["tree_columns"]
    ix = {c: i for i, c in enumerate(cols)}
    tree = [[r[ix["served"]], r[ix["rss"]], r[ix["pss"]], r[ix["anon"]], r[ix["procs"]]] for r in rec["tree"]]
    series, _ = heap_series(rec)
    # All probe ticks (not only the loop's), summed over processes.
    ticks = [r for r in rec.get("probe_rows", []) if r.get("ev") == "Tick" and r.get("served") is not None]
    loops, at = [], 0
    for k in rec.get("kicks", []):
        n = k.get("kick", "").partition("n=")[2].split("&")[0]
        if n.isdigit() and int(n) > 0:
            loops.append([at, at + int(n)])
            at += int(n)
    out = {
        "labels": rec["labels"],
        "loops": loops or [[0, rec["served"]]],
        "command": rec["command"],
        "latency_ms": rec["latency_ms"],
        "served": rec["served"],
        "probe": rec["probe"],
        "tree_columns": ["requests", "rss", "pss", "anon", "procs"],
        "tree": thin(tree),
    }
    if ticks and "heap_used" in ticks[0]:
        # Sums over processes; the loop's process alone, before and after its collection.
        main = main_pid(ticks)
        out["heap_columns"] = ["requests", "heap_used", "heap_used_plus_external", "main_heap_used", "main_heap_used_before_gc"]
        out["heap"] = thin([[r["served"], r["sum_heap_used"], plus_external(r), r["heap_used"], r.get("heap_used_before_gc")]
                            for r in ticks if r["pid"] == main])
    elif ticks:
        out["heap_columns"] = ["requests", "blocks", "traced"]
        out["heap"] = thin([[r["served"], r["sum_blocks"], r.get("traced")] for r in ticks])
    json.dump(out, open(out_path, "w"), separators=(",", ":"))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--fixture"]:
        extra = dict(a.split("=", 1) for a in args[3:])
        fixture(args[2], args[1], extra)
        args = args[2:3]
    for p in args:
        print(line(p))
