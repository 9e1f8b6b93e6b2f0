// The loop both routes run: N sequential GETs of ~1000-character unique URLs to LEAKPROBE_URL,
// PAUSE ms apart — the investigation's sync loop. `get(url, readBody)` resolves to a status.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function whole(params, name, fallback) {
  const raw = params.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

export async function runLoop(request, name, get) {
  const base = process.env.LEAKPROBE_URL;
  if (!base) {
    return Response.json({ error: 'LEAKPROBE_URL is not set (leak-client watch sets it)' }, { status: 500 });
  }
  const params = new URL(request.url).searchParams;
  const n = whole(params, 'n', 10000);
  const pause = whole(params, 'pause', 5);
  const urlLen = whole(params, 'url_len', 1000);
  const body = params.get('body') ?? 'read';
  if (n === null || pause === null || urlLen === null || (body !== 'read' && body !== 'skip')) {
    return Response.json({ error: 'n, pause, url_len: whole numbers >= 0; body: read or skip' }, { status: 400 });
  }
  const { origin, pathname } = new URL(base);
  const prefix = origin + (pathname.endsWith('/') ? pathname : pathname + '/');
  const started = Date.now();
  let errors = 0;
  for (let i = 0; i < n; i++) {
    const head = `r${i}-`;
    const url = prefix + head + 'a'.repeat(Math.max(0, urlLen - head.length - 1));
    try {
      const status = await get(url, body === 'read');
      if (status !== 200) errors++;
    } catch (_) {
      errors++;
    }
    if (pause > 0) await sleep(pause);
  }
  const ms = Date.now() - started;
  return Response.json({ route: name, n, errors, ms, pid: process.pid });
}
