#!/usr/bin/env python3
"""Writes the source-map fixtures of `watch::source_maps` and `tests/watch_sites.rs`: one
"minified" one-line script (what a bundler emits) with its map three ways: named by its comment
(leak.min.js + leak.min.js.map), inline as a data: URL (inline.min.js), and a .map beside a
script without a comment (beside.min.js + beside.min.js.map). The original source is
../src/leak.ts (not shipped: a map needs only its name). Run it from this folder."""
import base64, json

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

def vlq(n):
    n = (-n << 1) | 1 if n < 0 else n << 1
    out = ""
    while True:
        d = n & 31
        n >>= 5
        if n:
            d |= 32
        out += B64[d]
        if not n:
            return out

CODE = ('"use strict";const k=[];function n(i){k.push(Buffer.alloc(1008,97).toString("latin1")+i)}'
        'async function r(){const u=process.env.LEAKPROBE_URL,c=Number(process.env.REQUESTS||6000);'
        'for(let i=0;i<c;i++){const s=await fetch(u+"r"+i+"-"+"a".repeat(900));await s.arrayBuffer();n(i)}}r();')
# leak.ts, 0-based lines:
#   2: export function plantLeak(i: number) {     6 (5 0-based): async function run() {
def col(pat):
    return CODE.index(pat)
# (generated column, source line, source column, name or None), in order.
TOKENS = [
    (col("function n"), 2, 7, None),
    (col("function n") + 9, 2, 16, "plantLeak"),
    (col("function n") + 10, 2, 25, None),
    (col("k.push"), 3, 2, None),
    (col("async function r"), 5, 0, None),
    (col("async function r") + 15, 5, 15, "run"),
    (col("async function r") + 16, 5, 18, None),
    (col("const u"), 6, 2, None),
]
names = [t[3] for t in TOKENS if t[3]]
segs, prev = [], [0, 0, 0, 0, 0]
for gen, line, c, name in TOKENS:
    seg = [gen - prev[0], 0, line - prev[2], c - prev[3]]
    prev[0], prev[2], prev[3] = gen, line, c
    if name:
        i = names.index(name)
        seg.append(i - prev[4])
        prev[4] = i
    segs.append("".join(vlq(x) for x in seg))
MAP = {"version": 3, "sources": ["../src/leak.ts"], "names": names, "mappings": ",".join(segs)}
text = json.dumps(MAP)
open("leak.min.js", "w").write(CODE + "\n//# sourceMappingURL=leak.min.js.map\n")
open("leak.min.js.map", "w").write(text + "\n")
inline = base64.b64encode(text.encode()).decode()
open("inline.min.js", "w").write(CODE + "\n//# sourceMappingURL=data:application/json;charset=utf-8;base64," + inline + "\n")
open("beside.min.js", "w").write(CODE + "\n")
open("beside.min.js.map", "w").write(text + "\n")
