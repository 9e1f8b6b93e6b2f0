//! `just bench-peers`: leakprobe beside the tools people already trust, in one table, each cell
//! repeated (median and min–max). Against nginx (`return 200`, 1000-character paths):
//! - `wrk`, the reference load generator, at 1, 8 and 64 connections, run once beside each
//!   variant (so each ratio compares runs seconds apart);
//! - `leak-client raw` and `leak-client ureq` (`--ureq-timeout phases` and `global`): the real
//!   binary with its monitor, series, histograms and log, as `compare` runs it — requests/s and
//!   its ratio to wrk's in the same repeat;
//! - a bare loop of the same client calls in the same process setup (the same argv parsed into
//!   the same `RunConfig`, the same `VariantName::builder`, `UrlGen` URLs, the counting
//!   allocator, one thread per connection; no monitor, counters, histograms or log): the
//!   harness ratio is leak-client ÷ bare loop;
//! - the blocking floor: the cheapest client of the raw variant's design (one thread blocking on
//!   one keep-alive `TcpStream` per connection) — the same request bytes every time, written
//!   once, the response read to its known length, nothing parsed, counted or generated. No
//!   thread-per-connection client can beat it, so raw ÷ floor is how close the control is to its
//!   design's limit, and floor ÷ wrk is what the design itself costs against an event loop;
//! - per row: CPU µs and context switches per request of the load generator's process,
//!   allocations and bytes allocated per request (the counting allocator), peak RSS (VmHWM).
//!
//! Then the server rows of `just bench-server`: nginx and latency-server under wrk at latency 0
//! / 100 connections, and latency-server at 50 ms / 1000 connections against Little's bound,
//! with the server's CPU µs per request.
//!
//! `cargo bench -p leak-client --bench peers [-- --secs 3 --repeats 5 --conns 1,8,64 --no-server]`
//!
//! This binary also plays three child roles, chosen by its first argument, each in a module of
//! its own: `--bare <leak-client argv>` (the bare loop, `bare.rs`), `--floor PORT CONNS SECS` (the
//! blocking floor, `floor.rs`) and `--serve <latency-server flags>` (the latency-server library
//! in a process of its own, with the same allocator as the `latency-server` binary, `serve.rs`).
//! The bench itself is `bench.rs` (runs the cells) and `bench/table.rs` (prints the table and the
//! targets); the line the children print back is `ChildLine`, here.

mod bare;
mod bench;
mod floor;
mod serve;

use std::process::ExitCode;

/// The allocator of `leak-client` and `latency-server` (their `main.rs`), for the child roles.
#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--bare") => bare::run(&args[1..]),
        Some("--floor") => floor::run(&args[1..]),
        Some("--serve") => serve::run(&args[1..]),
        _ => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-peers: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The one JSON line the bare loop and the blocking floor print on stdout, and the bench reads
/// back (the floor counts no allocations); also what the bench takes from leak-client's summary
/// and from wrk's report.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ChildLine {
    requests: u64,
    errors: u64,
    rps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allocs_per_request: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes_allocated_per_request: Option<f64>,
}

impl ChildLine {
    fn print(&self) -> Result<(), String> {
        let line = serde_json::to_string(self).map_err(|e| e.to_string())?;
        println!("{line}");
        Ok(())
    }
}

/// The last JSON line of a child's stdout, read as a `T`.
fn last_json<T: serde::de::DeserializeOwned>(stdout: &str) -> Option<T> {
    let line = stdout.lines().rev().find(|l| l.starts_with('{'))?;
    serde_json::from_str(line).ok()
}
