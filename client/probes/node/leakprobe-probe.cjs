// leakprobe's Node probe. leak-client watch --probe node starts the command with
//   NODE_OPTIONS="... --expose-gc --require <this file>"
// so it is preloaded into every node process of the watched tree (and every worker thread).
// Every LEAKPROBE_PROBE_INTERVAL_MS (default 1000) it runs a full GC and appends one JSON line with
// process.memoryUsage() to the file named by LEAKPROBE_PROBE_OUT; leakprobe tails that file and
// pairs each line's CLOCK_MONOTONIC time `t` with the server's count of requests served.
//
// Promises: it never keeps the process alive (the timer is unref'd, no handles are opened but one
// file descriptor), never throws into the program (any failure stops the probe silently), and
// does nothing at all when LEAKPROBE_PROBE_OUT is unset. Each line is one write(2) to a file
// opened O_APPEND, so lines of many processes never interleave.
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
  const every = Math.max(10, Number(process.env.LEAKPROBE_PROBE_INTERVAL_MS) || 1000);
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
  let fd = -1;
  let seq = 0;
  let timer = null;
  let stopped = false;

  function stop() {
    stopped = true;
    if (timer !== null) clearInterval(timer);
    if (fd >= 0) {
      try {
        fs.closeSync(fd);
      } catch (_) {
        // already gone
      }
    }
    fd = -1;
  }

  function sample(ev) {
    if (stopped) return;
    try {
      const t = process.hrtime.bigint();
      // Before the collection too: the sawtooth a program without the probe would show.
      const before = process.memoryUsage().heapUsed;
      if (gc !== null) gc();
      const gcUs = (process.hrtime.bigint() - t) / 1000n;
      const m = process.memoryUsage();
      const line =
        '{"rt":"node","ev":"' + ev + '","pid":' + process.pid + ',"tid":' + threadId +
        ',"seq":' + seq++ + ',"t":' + t + ',"gc":' + (gc !== null) + ',"gc_us":' + gcUs +
        ',"heap_used_before_gc":' + before +
        ',"rss":' + m.rss + ',"heap_used":' + m.heapUsed + ',"heap_total":' + m.heapTotal +
        ',"external":' + m.external + ',"array_buffers":' + m.arrayBuffers + '}\n';
      if (fd < 0) fd = fs.openSync(out, 'a');
      fs.writeSync(fd, line);
    } catch (_) {
      stop();
    }
  }

  sample('start');
  timer = setInterval(sample, every, 'tick');
  if (typeof timer.unref === 'function') timer.unref();
  process.on('exit', function leakprobeExit() {
    sample('exit');
    stop();
  });
})();
