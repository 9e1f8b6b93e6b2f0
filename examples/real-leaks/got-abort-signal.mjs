// got 12 with one long-lived AbortController whose signal goes to every request: got 12.5.2 adds
// an `abort` listener to the signal per request and never removes it, so the signal keeps every
// request (and its buffers) alive (sindresorhus/got#2160; fixed in 12.5.3 by PR #2162).
//
//   LEAKPROBE_URL=http://127.0.0.1:PORT/ node got-abort-signal.mjs   (run by case.sh, beside got)
//
// Settings, from the environment: REQUESTS (default 3000), PAUSE_MS (default 0).
import got from 'got';

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

const base = process.env.LEAKPROBE_URL;
if (!base) {
  console.error('set LEAKPROBE_URL=http://127.0.0.1:PORT/ (leak-client watch sets it)');
  process.exit(2);
}
const requests = int('REQUESTS', 3000);
const pauseMs = int('PAUSE_MS', 0);
const origin = new URL(base).origin;

// One controller for the life of the program, as an app that cancels everything on shutdown has.
const controller = new AbortController();
process.once('SIGTERM', () => controller.abort());

for (let i = 0; i < requests && !controller.signal.aborted; i++) {
  const body = await got(`${origin}/items/${i}`, {
    signal: controller.signal,
    retry: { limit: 0 },
  }).text();
  if (!body.startsWith('{')) throw new Error(`unexpected body: ${body.slice(0, 80)}`);
  if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
}
