// Node's native fetch (undici) in the loop of loop.js.
//   LEAKPROBE_URL=http://127.0.0.1:PORT/ node examples/node/fetch.js [read|skip]
'use strict';
require('./loop').run('fetch', async (url, readBody) => {
  const res = await fetch(url);
  // skip: never touch the body, as a loop that only looks at the status does.
  if (readBody) await res.arrayBuffer();
  return res.status;
});
