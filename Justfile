# leakprobe — every recipe has a plain `cargo` equivalent, shown in README.md.
set positional-arguments

# List the recipes.
default:
    @just --list

# The one-command comparison: starts the latency server in-process, runs ureq and raw side by side, writes leak-report/.
compare *args:
    cargo run --release -p leak-client -- compare "$@"

# Run the latency server on 127.0.0.1:8080 (extra args passed through, e.g. `just server --latency 50ms`).
server *args:
    cargo run --release -p latency-server -- "$@"

# Run the workload through ureq against the server (default http://127.0.0.1:8080).
client-ureq *args:
    cargo run --release -p leak-client -- ureq "$@"

# Run the workload through the hand-rolled HTTP/1.1 client.
client-raw *args:
    cargo run --release -p leak-client -- raw "$@"

# Prove the detector on this machine: injected leaks of 16..4096 B/request, a clean run, a capped cache.
calibrate *args:
    cargo run --release -p leak-client -- calibrate "$@"

# Judge any program, in any language: starts the latency server, runs the command with LEAKPROBE_URL set, samples its process tree (e.g. `just watch --probe node -- node app.js`, `just watch --pid 4242`).
watch *args:
    cargo run --release -p leak-client -- watch "$@"

# Node's native fetch loop (examples/node/fetch.js) under watch with the node probe: the verdict in bytes per request. BODY read|skip; env REQUESTS (default 20000), PAUSE_MS (1), LEAK_BYTES (plant a leak).
watch-node body="read":
    REQUESTS="${REQUESTS:-20000}" PAUSE_MS="${PAUSE_MS:-1}" cargo run --release -p leak-client -- watch --probe node -- node examples/node/fetch.js "$1"

# The original investigation's Next.js app (examples/next-app; npm installs VERSION on first use) under watch with the node probe: one loop of 10,000 requests through ROUTE (start-fetch or start-custom-fetch), under MODE `dev` (`next dev`) or `start` (`next build` + `next start`). 14.2.0-canary.62's start-fetch leaks ~1.5 KB/request; 14.2.35 does not. Env PORT (default 3123).
watch-next version="14.2.0-canary.62" route="start-fetch" mode="dev":
    #!/bin/sh
    set -eu
    port="${PORT:-3123}"
    base="http://127.0.0.1:$port"
    PORT="$port" exec cargo run --release -p leak-client -- watch --probe node --probe-every 1s --latency 5ms --ready "$base/" --kick "$base/api/$2?n=1" --kick "$base/api/$2?n=10000&pause=5" --linger 3s -- examples/next-app/run.sh "$1" "$3"

# A real leak of a popular HTTP client beside its fixed release, under watch (examples/real-leaks: installs each release on first use into examples/real-leaks/.cache): NAME got (12.5.2 vs 12.5.3, AbortSignal listeners) or aiohttp (3.12.2 vs 3.12.3, the cookie jar), or one release as got@VERSION / aiohttp@VERSION; at most N requests (got 10000, aiohttp 20000; each stops once its verdict is settled). Series and summaries in leak-report/cases/.
case name n="":
    cargo build --release --locked -p leak-client
    examples/real-leaks/case.sh "$@"

# Throughput, allocations and live heap per variant at concurrency 1, 8, 64 (e.g. `just bench 100k 1,8`).
bench *args:
    cargo bench -p leak-client --bench throughput -- "$@"

# The cost of --sites: each variant's req/s with sampled allocation sites (the run's default rate, a 10k run's, 512 KiB) over without, interleaved and repeated, median and spread (e.g. `just bench-sites 100k 3`).
bench-sites *args:
    cargo bench -p leak-client --bench throughput -- sites "$@"

# The probes' cost: a Node fetch loop and a Python loop under watch without and with the probe at its default (and Python's --probe-tracemalloc, and --sites against the probe alone), interleaved and repeated, requests/s and CPU ratios; then the planted 1 KiB leaks judged (e.g. `just bench-probe --secs 5 --repeats 3`, `--no-leaks`).
bench-probe *args:
    cargo build --release -q -p leak-client
    python3 client/benches/probe_cost.py "${CARGO_TARGET_DIR:-target}/release/leak-client" "$@"

# The cost of `watch --retainers`' analysis of a heap snapshot pair (the first's ids, the second in full, the paths): seconds and this process's peak RSS per repeat, and the median (e.g. `just bench-retainers --repeats 3 first.heapsnapshot second.heapsnapshot`; without files it records a ~120 MB pair with node).
bench-retainers *args:
    cargo bench -p leak-client --bench retainers -- "$@"

# The latency server beside nginx under wrk, repeated: req/s, CPU µs/request, ratios (e.g. `just bench-server --secs 5 --repeats 3 --callgrind`). Installs nginx and wrk from Debian when missing and root; otherwise those rows are skipped.
bench-server *args:
    -@command -v wrk >/dev/null && command -v nginx >/dev/null || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq nginx wrk >/dev/null; }
    cargo bench -p latency-server --bench peers -- "$@"

# leak-client (raw; ureq with --ureq-timeout phases and global) beside wrk against nginx at 1, 8, 64 connections, each beside a bare loop of the same client calls, plus the server rows of bench-server; repeated, one table (defaults `--secs 3 --repeats 5 --conns 1,8,64`; `--no-server` leaves out the server rows). Installs nginx and wrk from Debian when missing and root; otherwise says so and skips.
bench-peers *args:
    -@command -v wrk >/dev/null && command -v nginx >/dev/null || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq nginx wrk >/dev/null; }
    cargo bench -p leak-client --bench peers -- "$@"

# The allocator's cost: ns per alloc+free for System, the counting wrapper without and with the sampling code (off, on), e.g. `just bench-alloc 9`.
bench-alloc *args:
    cargo bench -p heapmeter --bench alloc -- "$@"

# The test suite (what CI runs).
test:
    cargo test --workspace --locked

# Format the code.
fmt:
    cargo fmt --all

# Formatting check and clippy with warnings as errors (what CI runs).
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Replay the 68-case HTTP/1.1 conformance corpus and the fault modes (client/tests/conformance) against the raw client.
conformance *args:
    cargo build --release --locked -p leak-client
    python3 client/tests/conformance/run_raw_corpus.py --bin "${CARGO_TARGET_DIR:-target}/release/leak-client" --variants raw --cmd '{bin} {variant} --url {url} --requests {requests} --concurrency 1 --timeout 5s --json' "$@"

# Fuzz the raw client's reader on stable: its property tests (client/tests/it/raw_props.rs, client/tests/raw_wire_alloc.rs) in rounds of FUZZ_CASES (default 20000) cases per property, a fresh seed each round, for DURATION (e.g. 90s, 10m, 1h). Stops at the first failure; proptest saves its seed in client/tests/**/*.proptest-regressions, to commit with the fix.
fuzz duration="5m":
    #!/usr/bin/env bash
    set -euo pipefail
    d="$1"
    if ! [[ "$d" =~ ^[0-9]+[smh]?$ ]]; then
        echo "fuzz: DURATION must look like 90, 90s, 10m or 1h, not '$d'" >&2
        exit 2
    fi
    case "$d" in
        *h) secs=$(( ${d%h} * 3600 )) ;;
        *m) secs=$(( ${d%m} * 60 )) ;;
        *) secs=${d%s} ;;
    esac
    cases="${FUZZ_CASES:-20000}"
    # raw_props is a module of the `it` test binary: the filters pick it (and raw_wire_alloc's one test).
    tests=(-p leak-client --test it --test raw_wire_alloc)
    filters=(raw_props:: reading_responses_allocates_nothing)
    cargo test --locked "${tests[@]}" --no-run
    start=$SECONDS
    end=$(( start + secs ))
    rounds=0
    while (( SECONDS < end )); do
        rc=0
        PROPTEST_CASES="$cases" timeout $(( end - SECONDS )) \
            cargo test -q --locked "${tests[@]}" -- "${filters[@]}" >/tmp/leakprobe-fuzz.$$ 2>&1 || rc=$?
        if (( rc == 124 )); then
            break
        elif (( rc != 0 )); then
            cat /tmp/leakprobe-fuzz.$$
            rm -f /tmp/leakprobe-fuzz.$$
            echo "fuzz: FAILED in round $(( rounds + 1 )) after $(( SECONDS - start ))s: the minimal failing input is above" >&2
            exit 1
        fi
        rounds=$(( rounds + 1 ))
        echo "fuzz: round $rounds passed ($(( SECONDS - start ))s of ${secs}s)"
    done
    rm -f /tmp/leakprobe-fuzz.$$
    echo "fuzz: $rounds full rounds x $cases cases per property in $(( SECONDS - start ))s, no failure"

# Check vendor/tiny_http is tiny_http 0.12.0 + leakprobe.patch and run its own tests (`--no-tests`, `--tests`, `--write`: see vendor/tiny_http/PATCHES.md).
vendor-check *args:
    bash vendor/check.sh "$@"

# Everything CI does.
ci:
    bash .ci/run
