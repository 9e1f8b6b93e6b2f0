// A small client over Node's http module (the default keep-alive agent) in the loop of loop.js.
//   LEAKPROBE_URL=http://127.0.0.1:PORT/ node examples/node/http.js [read|skip|keep]
'use strict';
const http = require('http');

function get(url, readBody, keep) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.on('error', reject);
      if (!readBody) {
        // skip: discard the body unread (the stream must still be drained to free the socket).
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        return;
      }
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        if (keep) keep.push(body);
        resolve(res.statusCode);
      });
    });
    req.on('error', reject);
  });
}

require('./loop').run('http', get);
