// The request loop shared by fetch.js and http.js: the shape of the investigation leakprobe grew
// from (sequential requests with ~1000-character unique URLs, a short pause between them).
//
// Settings, all from the environment:
//   LEAKPROBE_URL  base URL of the latency server (`leak-client watch` sets it)    required
//   REQUESTS       requests to make                                                 10000
//   PAUSE_MS       pause after each request, in ms                                  5
//   BODY           read | skip | keep: read each response body, never touch it, or   read
//                  read and keep it (fetch.js: an ArrayBuffer, http.js: a Buffer — a
//                  leak outside the V8 heap, in `external`)
//                  (also accepted as the first argument: `node fetch.js skip`)
//   BODY_BYTES     ask the server for bodies of this many bytes (`?bytes=N`)        server's
//   URL_LEN        length of each URL's path                                        1000
//   LEAK_BYTES     plant a leak: keep this many bytes of V8 heap per request       0
//   LINGER_MS      stay idle this long after the loop (readings of what was kept)   0
'use strict';

function int(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name}=${raw}: expected a whole number >= 0`);
    process.exit(2);
  }
  return n;
}

function config() {
  const base = process.env.LEAKPROBE_URL;
  if (!base) {
    console.error('set LEAKPROBE_URL=http://127.0.0.1:PORT/ (leak-client watch sets it)');
    process.exit(2);
  }
  let url;
  try {
    url = new URL(base);
  } catch (_) {
    console.error(`LEAKPROBE_URL=${base}: not a URL`);
    process.exit(2);
  }
  const body = process.argv[2] || process.env.BODY || 'read';
  if (body !== 'read' && body !== 'skip' && body !== 'keep') {
    console.error(`BODY=${body}: expected read, skip or keep`);
    process.exit(2);
  }
  return {
    origin: url.origin,
    path: url.pathname.endsWith('/') ? url.pathname : url.pathname + '/',
    requests: int('REQUESTS', 10000),
    pauseMs: int('PAUSE_MS', 5),
    readBody: body !== 'skip',
    keepBody: body === 'keep',
    bodyBytes: int('BODY_BYTES', 0),
    urlLen: Math.max(16, int('URL_LEN', 1000)),
    leakBytes: int('LEAK_BYTES', 0),
    lingerMs: int('LINGER_MS', 0),
  };
}

// `/<base>/r<i>-aaaa…`, padded to urlLen characters of path: unique per request.
function urlFor(cfg, i) {
  const head = `${cfg.path}r${i}-`;
  const query = cfg.bodyBytes > 0 ? `?bytes=${cfg.bodyBytes}` : '';
  return cfg.origin + head + 'a'.repeat(Math.max(0, cfg.urlLen - head.length)) + query;
}

// The planted leak: LEAK_BYTES of V8 heap kept per request — a flat one-byte string of
// LEAK_BYTES - 16 characters (built from a Buffer, so V8 neither shares nor ropes it), whose
// 12-byte header (rounded to 8) and 4-byte slot in `kept` make up the rest (pointer-compressed
// V8, as in Node's official builds).
const kept = [];
// BODY=keep's bodies.
const bodies = [];
const OVERHEAD = 16;
function plant(cfg, i) {
  if (cfg.leakBytes === 0) return;
  const b = Buffer.alloc(Math.max(4, cfg.leakBytes - OVERHEAD), 97);
  b.writeUInt32LE(i >>> 0, 0);
  kept.push(b.toString('latin1'));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(name, get) {
  const cfg = config();
  const started = Date.now();
  let errors = 0;
  for (let i = 0; i < cfg.requests; i++) {
    try {
      const status = await get(urlFor(cfg, i), cfg.readBody, cfg.keepBody ? bodies : null);
      if (status !== 200) throw new Error(`status ${status}`);
    } catch (e) {
      errors++;
      if (errors <= 3) console.error(`${name}: request ${i}: ${e.message}`);
    }
    plant(cfg, i);
    if (cfg.pauseMs > 0) await sleep(cfg.pauseMs);
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.error(
    `${name}: ${cfg.requests} requests (body ${cfg.keepBody ? 'kept' : cfg.readBody ? 'read' : 'skipped'}), ${errors} errors, ${secs}s` +
      (cfg.leakBytes ? `, kept ${kept.length} x ${cfg.leakBytes} B` : '') +
      (cfg.keepBody ? `, kept ${bodies.length} bodies` : ''),
  );
  if (cfg.lingerMs > 0) await sleep(cfg.lingerMs);
  if (errors === cfg.requests && cfg.requests > 0) process.exitCode = 1;
}

module.exports = { run };
