// Node's native fetch (undici) in the loop of loop.js.
//   LEAKPROBE_URL=http://127.0.0.1:PORT/ node examples/node/fetch.js [read|skip|keep]
'use strict';
require('./loop').run('fetch', async (url, readBody, keep) => {
  const res = await fetch(url);
  // skip: never touch the body, as a loop that only looks at the status does.
  if (readBody) {
    const body = await res.arrayBuffer();
    // keep: the body stays reachable, outside the V8 heap (an ArrayBuffer's contents).
    if (keep) keep.push(body);
  }
  return res.status;
});
