//! `--bare`: the bare loop, the same client calls as `leak-client` makes, without its harness.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use clap::Parser;
use leak_client::cli::{Cli, Command as ClientCommand};
use leak_client::clients::VariantName;
use leak_client::workload::UrlGen;

use crate::ChildLine;

/// The bare loop: `argv` is a `leak-client ureq|raw` command line (with `--duration`), parsed
/// and resolved exactly as the binary does; then one thread per `--concurrency` calls the
/// variant's `get` on the run's URLs until the duration is over. Prints one JSON line.
pub fn run(argv: &[String]) -> Result<(), String> {
    let cli =
        Cli::try_parse_from(std::iter::once("leak-client").chain(argv.iter().map(|s| s.as_str())))
            .map_err(|e| e.to_string())?;
    let (variant, args) = match cli.command {
        ClientCommand::Raw(a) => (VariantName::Raw, a),
        ClientCommand::Ureq(a) => (VariantName::Ureq, a),
        _ => return Err("--bare takes a `ureq` or `raw` command line".into()),
    };
    let cfg = args.config(variant);
    let duration = cfg.workload.duration.ok_or("--bare needs --duration")?;
    let connections = Arc::new(AtomicU64::new(0));
    let build = variant.builder(&cfg.variant_config(connections.clone()));
    let w = &cfg.workload;
    let urls = UrlGen::new(&cfg.url, w.path_len, w.seed, w.unique);
    let workers = w.concurrency as usize;
    let go = Arc::new(Barrier::new(workers + 1));
    let mut handles = Vec::with_capacity(workers);
    for id in 0..workers {
        let mut client = build();
        let urls = urls.clone();
        let go = go.clone();
        let spawned = thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                let mut url = String::with_capacity(urls.max_len());
                let (mut ok, mut errors) = (0u64, 0u64);
                // Each worker its own share of the sequence numbers: no shared counter.
                let mut seq = id as u64;
                go.wait();
                let deadline = Instant::now() + duration;
                while Instant::now() < deadline {
                    urls.write(seq, &mut url);
                    seq += workers as u64;
                    match client.get(&url) {
                        Ok(o) if o.status < 400 => ok += 1,
                        _ => errors += 1,
                    }
                }
                (ok, errors)
            })
            .map_err(|e| format!("cannot start worker {id}: {e}"))?;
        handles.push(spawned);
    }
    drop(build);
    let before = heapmeter::snapshot();
    go.wait();
    let started = Instant::now();
    let (mut ok, mut errors) = (0, 0);
    for h in handles {
        let (o, e) = h.join().map_err(|_| "a worker panicked")?;
        ok += o;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = heapmeter::snapshot();
    let requests = (ok + errors).max(1) as f64;
    ChildLine {
        requests: ok + errors,
        errors,
        rps: (ok + errors) as f64 / elapsed,
        allocs_per_request: Some(after.allocs.saturating_sub(before.allocs) as f64 / requests),
        bytes_allocated_per_request: Some(
            after.allocated_bytes.saturating_sub(before.allocated_bytes) as f64 / requests,
        ),
    }
    .print()
}
