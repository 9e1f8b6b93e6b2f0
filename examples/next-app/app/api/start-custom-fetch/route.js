// GET /api/start-custom-fetch?n=10000&pause=5&body=read — the same loop through a small client
// over Node's http module (default keep-alive agent), which Next does not patch.
import http from 'node:http';
import { runLoop } from '../../../lib/loop';

export const dynamic = 'force-dynamic';

function get(url, readBody) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.on('error', reject);
      if (!readBody) {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
  });
}

export async function GET(request) {
  return runLoop(request, 'start-custom-fetch', get);
}
