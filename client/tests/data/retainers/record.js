// Records the heap snapshot pair client/tests/it/watch_retainers.rs reads: a planted leak that
// keeps, per "request", one object holding a 1,000-character URL in a module-level store's
// array, beside garbage of the same shape that is not kept.
//   node --expose-gc record.js OUT_DIR [REQUESTS] [clean]
// writes OUT_DIR/first.heapsnapshot after WARM requests and OUT_DIR/second.heapsnapshot after
// REQUESTS more (default 2,000); `clean` keeps nothing.
'use strict';
const v8 = require('v8');
const path = require('path');

const out = process.argv[2];
const requests = Number(process.argv[3] || 2000);
const clean = process.argv[4] === 'clean';
const WARM = 500;
const URL_CHARS = 1000;

class MetricsStore {
  constructor() {
    this.fetchMetrics = [];
  }
}
const store = new MetricsStore();

// A flat one-byte string of URL_CHARS characters, unique per request (built from a Buffer, so V8
// neither shares nor ropes it): 1,000 characters + a 12-byte header, 1,016 bytes on the heap.
function url(i) {
  const b = Buffer.alloc(URL_CHARS, 97);
  b.write('http://127.0.0.1/r' + i + '/', 0, 'latin1');
  return b.toString('latin1');
}

let sink = null;
function request(i) {
  const metric = { url: url(i), start: i, end: i + 1 };
  sink = JSON.stringify(metric).length; // garbage of the same shape
  if (!clean) store.fetchMetrics.push(metric);
}

for (let i = 0; i < WARM; i++) request(i);
gc();
v8.writeHeapSnapshot(path.join(out, 'first.heapsnapshot'));
for (let i = WARM; i < WARM + requests; i++) request(i);
gc();
v8.writeHeapSnapshot(path.join(out, 'second.heapsnapshot'));
console.log(JSON.stringify({ requests, kept: store.fetchMetrics.length, sink }));
