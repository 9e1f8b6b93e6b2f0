// GET /api/start-fetch?n=10000&pause=5&body=read — loops n requests through Next's fetch (the
// global fetch as Next patches it) and answers when done.
import { runLoop } from '../../../lib/loop';

export const dynamic = 'force-dynamic';

export async function GET(request) {
  return runLoop(request, 'start-fetch', async (url, readBody) => {
    const res = await fetch(url, { cache: 'no-store' });
    if (readBody) await res.text();
    return res.status;
  });
}
