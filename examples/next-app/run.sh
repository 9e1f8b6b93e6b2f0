#!/bin/sh
# Starts the example app under a chosen Next.js version, installing that version on first use.
#
#   examples/next-app/run.sh [VERSION] [dev|start]
#     VERSION  a Next.js version from npm             default 14.2.0-canary.62 (leaks), or 14.2.35 (fixed)
#     dev      `next dev`                             (default)
#     start    `next build` (once per version and source change), then `next start`
#
# Environment: PORT (default 3000); LEAKPROBE_URL must be set for the routes to work
# (`leak-client watch` sets it); NEXT_APP_CACHE, where versions are installed
# (default examples/next-app/.cache). Each version is installed with npm into its own folder
# there, with a copy of the app's sources, and the server is exec'd (this shell is replaced, so
# signals reach Next directly).
#
# Then: curl 'http://127.0.0.1:3000/api/start-fetch?n=10000'   (or start-custom-fetch)
set -eu

VERSION=${1:-14.2.0-canary.62}
MODE=${2:-dev}
PORT=${PORT:-3000}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${NEXT_APP_CACHE:-$HERE/.cache}
DIR=$CACHE/next-$VERSION

case $MODE in dev|start) ;; *) echo "run.sh: mode must be dev or start, not $MODE" >&2; exit 2 ;; esac
case $VERSION in *[!0-9A-Za-z.-]*|'') echo "run.sh: not a version: $VERSION" >&2; exit 2 ;; esac
command -v npm >/dev/null || { echo "run.sh: npm not found (Node.js 18.17+ is needed)" >&2; exit 1; }

export NEXT_TELEMETRY_DISABLED=1
mkdir -p "$DIR"
if [ ! -x "$DIR/node_modules/.bin/next" ]; then
    echo "run.sh: installing next@$VERSION into $DIR (first use)" >&2
    printf '{ "name": "leakprobe-next-app", "private": true }\n' > "$DIR/package.json"
    (cd "$DIR" && npm install --no-audit --no-fund --no-package-lock --loglevel=error \
        "next@$VERSION" react@18.2.0 react-dom@18.2.0) >&2
fi

# The app's sources, copied fresh: the installed folder is where Next resolves modules from.
rm -rf "$DIR/app" "$DIR/lib"
cp -R "$HERE/app" "$HERE/lib" "$HERE/next.config.js" "$DIR/"

cd "$DIR"
if [ "$MODE" = start ]; then
    sum=$(cat app/*.js app/*/*/*.js lib/*.js next.config.js | cksum)
    if [ ! -f .next/BUILD_ID ] || [ "$(cat .source-sum 2>/dev/null)" != "$sum" ]; then
        echo "run.sh: next build (next@$VERSION)" >&2
        ./node_modules/.bin/next build >&2
        echo "$sum" > .source-sum
    fi
    exec ./node_modules/.bin/next start -p "$PORT" -H 127.0.0.1
fi
exec ./node_modules/.bin/next dev -p "$PORT" -H 127.0.0.1
