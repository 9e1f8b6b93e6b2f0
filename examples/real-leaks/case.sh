#!/bin/sh
# Runs a real leak of a popular HTTP client beside its fixed release under `leak-client watch`,
# installing each release on first use into its own folder of examples/real-leaks/.cache.
#
#   examples/real-leaks/case.sh NAME [N]          (`just case NAME [N]` builds leak-client first)
#     NAME  got | aiohttp        the leaking release, then the fixed one
#           got@12.5.2 | got@12.5.3 | aiohttp@3.12.2 | aiohttp@3.12.3 | any other release
#     N     requests at most     default: got 10000, aiohttp 20000 (each run stops once its verdict
#                                 is settled: --until-verdict)
#
# Environment: SITES=1 adds --sites (growth per allocation site; Node also writes
# NAME@VERSION.heapprofile beside the series); LEAK_CLIENT (default
# $CARGO_TARGET_DIR/release/leak-client, else target/…);
# REAL_LEAKS_CACHE (default examples/real-leaks/.cache); OUT (default leak-report/cases), where
# each run's --jsonl series and --json summary are written as NAME@VERSION.jsonl / .json.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${REAL_LEAKS_CACHE:-$HERE/.cache}
OUT=${OUT:-leak-report/cases}
BIN=${LEAK_CLIENT:-${CARGO_TARGET_DIR:-target}/release/leak-client}

usage() {
    echo "usage: case.sh got|aiohttp|got@VERSION|aiohttp@VERSION [N]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
N=${2:-}
case $N in *[!0-9]*) echo "case.sh: N must be a whole number, not $N" >&2; exit 2 ;; esac
case $1 in
    got) set -- got@12.5.2 got@12.5.3 ;;
    aiohttp) set -- aiohttp@3.12.2 aiohttp@3.12.3 ;;
    got@*|aiohttp@*) set -- "$1" ;;
    *) usage ;;
esac
sites=
case ${SITES:-} in 1) sites=--sites ;; ''|0) ;; *) echo "case.sh: SITES must be 1 or 0, not $SITES" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "case.sh: no leak-client at $BIN (cargo build --release -p leak-client)" >&2; exit 1; }
mkdir -p "$OUT"

for release in "$@"; do
    name=${release%@*}
    version=${release#*@}
    case $version in *[!0-9A-Za-z.-]*|'') echo "case.sh: not a version: $version" >&2; exit 2 ;; esac
    dir=$CACHE/$name-$version
    case $name in
        got)
            command -v npm >/dev/null || { echo "case.sh: npm not found" >&2; exit 1; }
            if [ ! -f "$dir/node_modules/got/package.json" ]; then
                echo "case.sh: installing got@$version into $dir (first use)" >&2
                mkdir -p "$dir"
                printf '{ "name": "leakprobe-real-leak-got", "private": true, "type": "module" }\n' > "$dir/package.json"
                (cd "$dir" && npm install --no-audit --no-fund --no-package-lock --loglevel=error "got@$version") >&2
            fi
            # ESM resolves `got` from the program's own folder: run a copy placed beside it.
            cp "$HERE/got-abort-signal.mjs" "$dir/"
            set -- --probe node $sites -- node "$dir/got-abort-signal.mjs"
            requests=${N:-10000}
            ;;
        aiohttp)
            if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import aiohttp' 2>/dev/null; then
                echo "case.sh: installing aiohttp==$version into a venv at $dir (first use)" >&2
                python3 -m venv "$dir"
                "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "aiohttp==$version" >&2
            fi
            set -- --probe python $sites --addr localhost:0 --set-cookie session=leakprobe \
                -- "$dir/bin/python" "$HERE/aiohttp-cookie-paths.py"
            requests=${N:-20000}
            ;;
    esac
    echo "case.sh: $release, $requests requests" >&2
    REQUESTS=$requests "$BIN" watch --quiet --until-verdict --jsonl "$OUT/$release.jsonl" --json "$@" > "$OUT/$release.json"
    echo "case.sh: $release: series $OUT/$release.jsonl, summary $OUT/$release.json" >&2
done
