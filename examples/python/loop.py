"""A tiny stdlib request loop (http.client, one keep-alive connection), with an optional planted leak.

    LEAKPROBE_URL=http://127.0.0.1:PORT/ python3 examples/python/loop.py

Settings, all from the environment:
  LEAKPROBE_URL  base URL of the latency server (leak-client watch sets it)     required
  REQUESTS       requests to make                                                8000
  PAUSE_MS       pause after each request, in ms                                 0
  BODY           read | skip (skip still drains the body: the connection is reused) read
  URL_LEN        length of each URL's path                                       1000
  LEAK_BYTES     plant a leak: keep a bytearray of this many bytes per request   0
"""

import http.client
import os
import sys
import time
import urllib.parse


def setting(name, default):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        sys.exit(f"{name}={raw}: expected a whole number >= 0")
    return value


def main():
    base = os.environ.get("LEAKPROBE_URL")
    if not base:
        sys.exit("set LEAKPROBE_URL=http://127.0.0.1:PORT/ (leak-client watch sets it)")
    url = urllib.parse.urlsplit(base)
    if url.scheme != "http" or not url.hostname:
        sys.exit(f"LEAKPROBE_URL={base}: expected http://HOST:PORT/")
    body = os.environ.get("BODY", "read")
    if body not in ("read", "skip"):
        sys.exit(f"BODY={body}: expected read or skip")
    requests = setting("REQUESTS", 8000)
    pause = setting("PAUSE_MS", 0) / 1000.0
    url_len = max(16, setting("URL_LEN", 1000))
    leak = setting("LEAK_BYTES", 0)
    path = url.path if url.path.endswith("/") else url.path + "/"

    kept = []
    conn = None
    errors = 0
    started = time.monotonic()
    for i in range(requests):
        head = f"{path}r{i}-"
        target = head + "a" * max(0, url_len - len(head))
        try:
            if conn is None:
                conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
            conn.request("GET", target)
            res = conn.getresponse()
            data = res.read()  # drained either way, so the connection can be reused
            if body == "read":
                data.decode("utf-8")
            if res.status != 200:
                raise OSError(f"status {res.status}")
        except (OSError, http.client.HTTPException) as e:
            errors += 1
            if errors <= 3:
                print(f"loop.py: request {i}: {e}", file=sys.stderr)
            if conn is not None:
                conn.close()
            conn = None
        if leak:
            kept.append(bytearray(leak))
        if pause:
            time.sleep(pause)
    secs = time.monotonic() - started
    print(f"loop.py: {requests} requests, {errors} errors, {secs:.1f}s"
          + (f", kept {len(kept)} x {leak} B" if leak else ""), file=sys.stderr)
    if requests and errors == requests:
        sys.exit(1)


if __name__ == "__main__":
    main()
