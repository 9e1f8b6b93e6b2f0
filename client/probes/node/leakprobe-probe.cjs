// leakprobe's Node probe. leak-client watch --probe node starts the command with
//   NODE_OPTIONS="... --expose-gc --require <this file>"
// so it is preloaded into every node process of the watched tree (and every worker thread).
// At load, then on its own timer, it reads the heap just after a full collection and appends one
// JSON line with process.memoryUsage() to the file named by LEAKPROBE_PROBE_OUT; leakprobe tails
// that file and pairs each line's CLOCK_MONOTONIC time `t` with the server's count of requests
// served.
//
// Which collection ("how" in the line):
// - "measure" (the timer's readings): vm.measureMemory({execution: 'eager'}), V8's own memory
//   measurement. It starts an ordinary full collection now, marked incrementally and on V8's
//   helper threads, and resolves when it is done; the heap is read then. It is not a *forced*
//   collection: gc() is, and a forced full collection also discards the optimized code that
//   embeds objects it frees, which the program then pays for by running slower until it is
//   optimized again. Measured on a CPU-bound fetch loop (node --trace-deopt, 15,000 requests,
//   a reading every 100 ms): gc() 953 deoptimizations ("weak objects") and 1.5x the run's time;
//   vm.measureMemory 2, and the run's time unchanged. The line's "js_estimate" is the
//   measurement's own result, jsMemoryEstimate: the bytes of the objects its marking found live
//   and could attribute to a JavaScript context (the program's objects and the contents of their
//   ArrayBuffers; not V8's unattributed part: compiled code, internal tables, 0.2-1.2 MB here).
//   It, less array_buffers (counted in external), is the heap the verdict follows, not heapUsed
//   read when the result came: objects allocated while the marking ran are counted as
//   live by heapUsed until the next collection (garbage, ~0.3 MB of noise at got 12.5.2's pace)
//   but never visited by the marking, so not in the estimate. On got 12.5.2 (24 KB/request) the
//   readings' scatter around the line fell from 308-385 KB (heapUsed) to 68-117 KB (estimate).
// - "forced": gc() then the read, synchronously: the load and exit readings (an exit handler
//   cannot wait), and every reading where vm.measureMemory is missing or fails.
//
// When: every LEAKPROBE_PROBE_INTERVAL_MS milliseconds if it is set (at least 10); otherwise the
// interval follows the readings' own cost (`cost_us` in the line), so that they take at most
// 1/20 (5%) of the process's time: 20 x the mean cost of its last 5 readings, at least 20 ms. A
// forced reading's cost is its CPU time (not wall time: a loaded machine's preemption is not the
// probe's); a measurement's, a third of its wall time from the call to its result (MEASURE_COST
// below, measured). The mean, not the median, so that a slow collection now and then counts in
// full. But while the heap grows, sooner: by the time the heap (as judged: the estimate less
// arrayBuffers, or heapUsed) plus external, at the rate it grew over the last readings, will
// have grown by 1% since the last one. A growing
// heap makes each reading dearer, and the budget alone would space them out just when they
// matter (got 12.5.2, 24 KB per request: 12 readings in 3,000 requests); one reading per 1% of
// growth is ~70 per doubling of the heap, and their cost a geometric sum: ~100x the last one's,
// however long the run. A planted 1 KiB/request leak over 10,000 requests (~3 s) got ~38
// readings at 3% and was called 4 times in 5, ~41 at 2% (5 in 6), ~59 at 1% (6 in 6; the rest
// `inconclusive`); at 1% the leaking loop ran at ~0.9x its speed without the probe. A flat heap
// is read on the budget alone.
//
// Sites (LEAKPROBE_PROBE_SITES=<bytes>, `watch --sites`): leakprobeSites() below opens an
// in-process inspector session (node:inspector, no port, no debugger), runs V8's sampling heap
// profiler at one sample per that many bytes, and at each reading (after the full GC) appends the
// live samples to sites-<pid>-<tid>.jsonl beside LEAKPROBE_PROBE_OUT: each stack once, as a
// tree ({"ev":"stack","id","parent","frame":[function,url,line,column,scriptId]}), then per
// reading {"ev":"sites","seq","t","rate","s":[stack,bytes,ordinal,...]} (bytes: V8's estimate of
// what the sample stands for; ordinal: the sample's id, so the watcher matches samples between
// readings). session.post runs synchronously in-process; the session holds no handle.
//
// Promises: it never keeps the process alive (the timer is unref'd, no handles are opened but one
// file descriptor), never throws into the program (any failure stops the probe silently), and
// does nothing at all when LEAKPROBE_PROBE_OUT is unset. Each line is one write(2) to a file
// opened O_APPEND, so lines of many processes never interleave.
//
// With LEAKPROBE_PROBE_CTL set (leak-client watch --retainers) it also writes V8 heap snapshots
// when the watcher asks: see snapshots() below.
'use strict';
(function leakprobeProbe() {
  const out = process.env.LEAKPROBE_PROBE_OUT;
  if (!out) return;
  let fs, threadId;
  try {
    fs = require('fs');
    threadId = require('worker_threads').threadId | 0;
  } catch (_) {
    return;
  }
  const fixed = Number(process.env.LEAKPROBE_PROBE_INTERVAL_MS);
  const every = Number.isFinite(fixed) && fixed > 0 ? Math.max(10, fixed) : 0;
  // The adaptive interval: BUDGET x the mean of the last COSTS readings' CPU times, >= FLOOR ms.
  const BUDGET = 20;
  const FLOOR = 20;
  const COSTS = 5;
  // What a measurement costs the program, as a share of its wall time from the call to its
  // result: its marking runs in steps between the program's own work and on V8's helper threads.
  // Measured on a CPU-bound fetch loop (2 cores): measurements back to back, so that a marking
  // ran all the time, cost it 1.3x its time; one every 50 ms (~20% of the time marking), nothing
  // measurable. A third is that upper bound, so a measurement of 10 ms is followed by the next
  // ~70 ms later.
  const MEASURE_COST = 1 / 3;
  const costs = [];
  // The growth rule: a reading by the time the heap will have grown GROWTH, at the rate it grew
  // over the last GROWTH_SPAN readings (time in ms, bytes).
  const GROWTH = 0.01;
  const GROWTH_SPAN = 4;
  const held = [];
  // Taken now, before the program can replace or delete the global.
  let gc = typeof globalThis.gc === 'function' ? globalThis.gc : null;
  if (gc === null) {
    // A process whose NODE_OPTIONS lost --expose-gc (some launchers rewrite it): expose gc to this
    // file only, not to the program.
    try {
      require('v8').setFlagsFromString('--expose-gc');
      gc = require('vm').runInNewContext('gc');
    } catch (_) {
      gc = null;
    }
  }
  // The timer's collections: V8's memory measurement when this node has it (see above).
  let measure = null;
  try {
    const vm = require('vm');
    if (typeof vm.measureMemory === 'function') measure = vm.measureMemory;
  } catch (_) {
    measure = null;
  }
  let firstMeasure = true;
  const sites = leakprobeSites(out, threadId);
  let fd = -1;
  let seq = 0;
  let timer = null;
  let stopped = false;

  function stop() {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    if (sites !== null) sites.stop();
    if (fd >= 0) {
      try {
        fs.closeSync(fd);
      } catch (_) {
        // already gone
      }
    }
    fd = -1;
  }

  // A forced reading: gc(), then the heap, synchronously.
  function sample(ev) {
    if (stopped) return;
    try {
      const c0 = process.cpuUsage();
      const t = process.hrtime.bigint();
      // Before the collection too: the sawtooth a program without the probe would show.
      const before = process.memoryUsage().heapUsed;
      if (gc !== null) gc();
      const gcUs = (process.hrtime.bigint() - t) / 1000n;
      write(ev, gc !== null ? 'forced' : 'none', t, gcUs, before, c0, null, null);
    } catch (_) {
      stop();
    }
  }

  // A measured reading: the heap when V8's measurement (a full collection it starts now) is
  // done; then `then(true)`, or `then(false)` if the measurement failed (the caller reads by
  // gc(), and so does every later reading).
  function measured(then) {
    if (stopped) return;
    let pending;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const before = process.memoryUsage().heapUsed;
    // Node warns once, on the first call, that vm.measureMemory is experimental: that warning
    // is the probe's, not the program's, so it is not printed (nor seen by 'warning' handlers).
    const emitWarning = process.emitWarning;
    if (firstMeasure) {
      firstMeasure = false;
      process.emitWarning = function leakprobeQuiet(w, type) {
        // emitWarning(warning, type) or emitWarning(warning, { type }).
        const kind = type !== null && typeof type === 'object' ? type.type : type;
        const text = String((w && w.message) || w);
        if (kind === 'ExperimentalWarning' && text.indexOf('vm.measureMemory') >= 0) return;
        return emitWarning.apply(process, arguments);
      };
    }
    try {
      pending = measure({ mode: 'summary', execution: 'eager' });
    } catch (_) {
      measure = null;
      then(false);
      return;
    } finally {
      process.emitWarning = emitWarning;
    }
    pending.then(
      function leakprobeMeasured(result) {
        if (stopped) return;
        const t = process.hrtime.bigint();
        const us = (t - t0) / 1000n;
        const total = result !== null && typeof result === 'object' ? result.total : null;
        const estimate =
          total && typeof total.jsMemoryEstimate === 'number' && total.jsMemoryEstimate >= 0
            ? Math.round(total.jsMemoryEstimate)
            : null;
        if (estimate === null) {
          // A result of another shape (a V8 that changed it): read by gc() from now on, so that
          // the series is one kind of reading.
          measure = null;
          then(false);
          return;
        }
        try {
          const cost = (Number(us) / 1000) * MEASURE_COST;
          write('tick', 'measure', t, us, before, c0, cost, estimate);
        } catch (_) {
          stop();
          return;
        }
        then(true);
      },
      function leakprobeUnmeasured() {
        measure = null;
        if (!stopped) then(false);
      },
    );
  }

  // Appends the line of a reading whose collection started at `t` (a measurement: ended) and
  // took `gcUs`; `costMs` is what the pacing counts (null: the reading's CPU time since `c0`);
  // `estimate`, a measurement's jsMemoryEstimate (null: none, the heap is heapUsed).
  function write(ev, how, t, gcUs, before, c0, costMs, estimate) {
    const m = process.memoryUsage();
    // After the heap was read: the profile read allocates, and is garbage by the next reading.
    if (sites !== null) sites.read(seq, t);
    const c = process.cpuUsage(c0);
    const cpuUs = c.user + c.system;
    const cost = costMs !== null ? costMs : cpuUs / 1000;
    const line =
      '{"rt":"node","ev":"' + ev + '","pid":' + process.pid + ',"tid":' + threadId +
      ',"seq":' + seq++ + ',"t":' + t + ',"gc":' + (how !== 'none') + ',"how":"' + how +
      '","gc_us":' + gcUs + ',"cpu_us":' + cpuUs + ',"cost_us":' + Math.round(cost * 1000) +
      ',"heap_used_before_gc":' + before +
      ',"rss":' + m.rss + ',"heap_used":' + m.heapUsed + ',"heap_total":' + m.heapTotal +
      ',"external":' + m.external + ',"array_buffers":' + m.arrayBuffers +
      (estimate !== null ? ',"js_estimate":' + estimate : '') + '}\n';
    if (fd < 0) fd = fs.openSync(out, 'a');
    fs.writeSync(fd, line);
    if (held.length === GROWTH_SPAN) held.shift();
    // The estimate counts ArrayBuffers' contents, which external counts too.
    const heap = estimate !== null ? Math.max(0, estimate - m.arrayBuffers) : m.heapUsed;
    held.push({ ms: Number(t) / 1e6, bytes: heap + m.external });
    if (costs.length === COSTS) costs.shift();
    costs.push(cost);
  }

  // Milliseconds until the next reading.
  function next() {
    if (every > 0) return every;
    const mean = costs.length > 0 ? costs.reduce((a, b) => a + b, 0) / costs.length : 0;
    let wait = BUDGET * mean;
    if (held.length >= 2 && held[held.length - 1].ms > held[0].ms) {
      const a = held[0];
      const b = held[held.length - 1];
      const rate = (b.bytes - a.bytes) / (b.ms - a.ms);
      // Counted from that reading's own time: its collection took some of the wait already.
      const since = Number(process.hrtime.bigint()) / 1e6 - b.ms;
      if (rate > 0) wait = Math.min(wait, (GROWTH * b.bytes) / rate - since);
    }
    return Math.max(FLOOR, Math.ceil(wait));
  }

  function tick() {
    timer = null;
    if (measure !== null) {
      measured(function (ok) {
        if (!ok) sample('tick');
        ticked();
      });
    } else {
      sample('tick');
      ticked();
    }
  }

  function ticked() {
    if (snapshot !== null) snapshot();
    schedule();
  }

  function schedule() {
    if (stopped) return;
    timer = setTimeout(tick, next());
    if (typeof timer.unref === 'function') timer.unref();
  }

  // --retainers: heap snapshots when the watcher asks (see snapshots() below).
  const snapshot = snapshots();

  sample('start');
  schedule();
  // leak-client watch --retainers (client/src/watch/retainers/control.rs): the watcher writes a
  // request number into the file named by LEAKPROBE_PROBE_CTL. At each reading, right after its
  // full GC, the probe stats that file (one system call); when it changed and holds a number
  // above the last one answered, it writes a heap snapshot to "<ctl>-<pid>-<n>.heapsnapshot"
  // and appends one line saying so to "<ctl>.jsonl". Main threads only (a worker's isolate is
  // not the process's heap). Returns the function the timer calls, or null without the variable.
  function snapshots() {
    const ctl = process.env.LEAKPROBE_PROBE_CTL;
    if (!ctl || threadId !== 0) return null;
    let v8;
    try {
      v8 = require('v8');
    } catch (_) {
      return null;
    }
    let seenIno = -1;
    let seenMtime = -1;
    let answered = 0;
    return function snapshot() {
      try {
        const st = fs.statSync(ctl, { throwIfNoEntry: false });
        if (!st || (st.ino === seenIno && st.mtimeMs === seenMtime)) return;
        seenIno = st.ino;
        seenMtime = st.mtimeMs;
        const n = parseInt(fs.readFileSync(ctl, 'latin1'), 10);
        if (!(n > answered)) return;
        answered = n;
        const file = ctl + '-' + process.pid + '-' + n + '.heapsnapshot';
        const t = process.hrtime.bigint();
        let result;
        try {
          v8.writeHeapSnapshot(file);
          result = ',"bytes":' + fs.statSync(file).size + ',"path":' + JSON.stringify(file);
        } catch (e) {
          result = ',"error":' + JSON.stringify(String((e && e.message) || e));
        }
        const ms = (process.hrtime.bigint() - t) / 1000000n;
        fs.appendFileSync(
          ctl + '.jsonl',
          '{"rt":"node","ev":"snapshot","pid":' + process.pid + ',"n":' + n + ',"t":' + t +
            ',"ms":' + ms + result + '}\n',
        );
      } catch (_) {
        // The watcher's folder is gone: no more snapshots, the readings go on.
      }
    };
  }

  process.on('exit', function leakprobeExit() {
    sample('exit');
    stop();
  });

  // `watch --sites`: V8's sampling heap profiler in an in-process inspector session, read at each
  // reading. Kept apart from the rest of the probe; returns null (no sites) when off or when the
  // inspector is unavailable, and stops itself on any failure without touching the readings.
  function leakprobeSites(out, threadId) {
    const rate = Number(process.env.LEAKPROBE_PROBE_SITES);
    if (!Number.isInteger(rate) || rate <= 0) return null;
    let session, fd = -1, path;
    try {
      const inspector = require('inspector');
      path = require('path').join(
        require('path').dirname(out), 'sites-' + process.pid + '-' + threadId + '.jsonl');
      session = new inspector.Session();
      session.connect();
      let failed = null;
      session.post('HeapProfiler.startSampling', { samplingInterval: rate }, function (e) {
        failed = e;
      });
      if (failed) throw failed;
    } catch (_) {
      return null;
    }
    // Stack ids by "parent id|frame": each stack is written once, as its parent plus one frame.
    const stacks = new Map();
    let nextStack = 0;
    let dead = false;
    function stop() {
      if (dead) return;
      dead = true;
      try {
        session.disconnect();
      } catch (_) {
        // already gone
      }
      if (fd >= 0) {
        try {
          fs.closeSync(fd);
        } catch (_) {
          // already gone
        }
      }
      fd = -1;
    }
    function read(seq, t) {
      if (dead) return;
      try {
        let profile = null;
        session.post('HeapProfiler.getSamplingProfile', function (e, r) {
          if (!e && r) profile = r.profile;
        });
        if (profile === null) throw new Error('no profile');
        const byNode = new Map();
        const fresh = [];
        const todo = [[profile.head, -1]];
        while (todo.length > 0) {
          const [node, parent] = todo.pop();
          const f = node.callFrame;
          const key = parent + '|' + f.functionName + '|' + f.scriptId + '|' + f.url + '|' +
            f.lineNumber + '|' + f.columnNumber;
          let id = stacks.get(key);
          if (id === undefined) {
            id = nextStack++;
            stacks.set(key, id);
            fresh.push(JSON.stringify({
              ev: 'stack', id: id, parent: parent,
              frame: [f.functionName, f.url, f.lineNumber, f.columnNumber, String(f.scriptId)],
            }));
          }
          byNode.set(node.id, id);
          for (const c of node.children) todo.push([c, id]);
        }
        const s = [];
        for (const x of profile.samples) {
          const id = byNode.get(x.nodeId);
          if (id !== undefined) s.push(id, x.size, x.ordinal);
        }
        fresh.push('{"ev":"sites","seq":' + seq + ',"t":' + t + ',"rate":' + rate + ',"s":[' +
          s.join(',') + ']}');
        if (fd < 0) fd = fs.openSync(path, 'a');
        fs.writeSync(fd, fresh.join('\n') + '\n');
      } catch (_) {
        stop();
      }
    }
    return { read: read, stop: stop };
  }
})();
