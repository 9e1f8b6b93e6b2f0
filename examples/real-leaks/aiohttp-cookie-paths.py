"""aiohttp with one ClientSession whose cookie jar holds a cookie, requesting distinct paths.

aiohttp 3.10.0-3.12.2's CookieJar.filter_cookies() makes an empty entry for every (domain, path)
prefix of every URL it filters once the jar holds any cookie, and keeps them for the life of the
session (aio-libs/aiohttp#11052; fixed in 3.12.3 by PR #11054). The jar keeps cookies only for
host names (not IP addresses), so LEAKPROBE_URL must name `localhost` and the server must set a
cookie: `leak-client watch --addr localhost:0 --set-cookie session=1` (case.sh does).

    LEAKPROBE_URL=http://localhost:PORT/ python aiohttp-cookie-paths.py

Settings, from the environment: REQUESTS (default 20000).
"""

import asyncio
import os
import sys

import aiohttp


def setting(name, default):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit():
        sys.exit(f"{name}={raw}: expected a whole number >= 0")
    return int(raw)


async def main():
    base = os.environ.get("LEAKPROBE_URL")
    if not base:
        sys.exit("set LEAKPROBE_URL=http://localhost:PORT/ (leak-client watch sets it)")
    requests = setting("REQUESTS", 20000)
    origin = base.rstrip("/")
    async with aiohttp.ClientSession() as session:
        for i in range(requests):
            async with session.get(f"{origin}/items/{i}/detail") as response:
                await response.read()
                if response.status != 200:
                    sys.exit(f"request {i}: status {response.status}")
            if i == 0 and len(session.cookie_jar) == 0:
                sys.exit(
                    f"the cookie jar is empty after the first answer from {origin}: "
                    "the server must set a cookie and the URL must name a host, not an IP"
                )


asyncio.run(main())
