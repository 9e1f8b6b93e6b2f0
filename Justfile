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

# Throughput, allocations and live heap per variant at concurrency 1, 8, 64 (e.g. `just bench 100k 1,8`).
bench *args:
    cargo bench -p leak-client --bench throughput -- "$@"

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

# Replay the 68-case HTTP/1.1 conformance corpus (../shared/conformance) against the raw client.
conformance *args:
    cargo build --release --locked -p leak-client
    python3 ../shared/conformance/run_raw_corpus.py --bin target/release/leak-client --variants raw --cmd '{bin} {variant} --url {url} --requests {requests} --concurrency 1 --timeout 5s --json' "$@"

# Everything CI does.
ci:
    bash .ci/run
