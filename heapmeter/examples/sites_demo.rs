//! Sampled allocation sites on a toy request loop: a cache that leaks 256 B per request, a pool
//! that fills once, and per-request buffers that are freed. Prints the growing and the largest
//! flat sites between two quiescent readings and writes a DHAT profile for `dh_view.html`.
//!
//! `cargo run --release -p heapmeter --example sites_demo -- [REQUESTS] [dhat-heap.json]`

use std::collections::HashMap;

use heapmeter::sites::{self, Trim};

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

/// The demo's own loop, trimmed from the bottom of every stack.
const HARNESS: Trim<'static> = Trim {
    harness: &["sites_demo::main", "sites_demo::run"],
};

struct Server {
    cache: HashMap<u64, Vec<u8>>,
    pool: Vec<Vec<u8>>,
}

impl Server {
    #[inline(never)]
    fn handle(&mut self, id: u64) -> usize {
        let body = self.render(id);
        self.remember(id);
        if self.pool.len() < 64 {
            self.pool.push(vec![0u8; 64 * 1024]);
        }
        body.len()
    }

    /// The leak: one 256-byte entry per request, never evicted.
    #[inline(never)]
    fn remember(&mut self, id: u64) {
        self.cache.insert(id, vec![7u8; 256]);
    }

    /// Churn: a response body grown by pushes, dropped by the caller.
    #[inline(never)]
    fn render(&self, id: u64) -> String {
        let mut s = String::new();
        for i in 0..400 {
            s.push_str(&format!("{{\"id\":{id},\"i\":{i}}},"));
        }
        s
    }
}

#[inline(never)]
fn run(server: &mut Server, from: u64, to: u64) -> usize {
    (from..to).map(|id| server.handle(id)).sum()
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let requests: u64 = match args.next().map(|a| a.parse()) {
        None => 20_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("error: REQUESTS: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let path = args.next().unwrap_or_else(|| "dhat-heap.json".to_owned());

    if let Err(e) = sites::enable() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let mut server = Server {
        cache: HashMap::new(),
        pool: Vec::new(),
    };
    let warmup = requests / 10;
    run(&mut server, 0, warmup);
    let first = sites::snapshot();
    let bytes = run(&mut server, warmup, requests);
    let last = sites::snapshot();
    let measured = requests - warmup;

    println!(
        "{measured} requests ({bytes} response bytes); sampling: one per {} KiB",
        sites::sample_rate() / 1024
    );
    let reports = sites::grouped_growth(&first, &last, measured, &HARNESS);
    println!("growing sites (z = {}):", sites::GROWTH_Z);
    for r in reports
        .iter()
        .filter(|r| r.growth.is_growing(sites::GROWTH_Z))
    {
        let (lo, hi) = r
            .growth
            .interval_per_request(2.0)
            .unwrap_or((f64::NAN, f64::NAN));
        println!(
            "  {:>8.1} B/request [{lo:.1}, {hi:.1}] from {} samples  {}",
            r.growth.per_request().unwrap_or(0.0),
            r.growth.new_samples,
            sites::headline(&r.frames).map_or_else(String::new, ToString::to_string)
        );
    }
    println!("largest flat sites:");
    let mut flat: Vec<_> = reports
        .iter()
        .filter(|r| !r.growth.is_growing(sites::GROWTH_Z))
        .collect();
    flat.sort_by(|a, b| b.growth.last_bytes.total_cmp(&a.growth.last_bytes));
    for r in flat.iter().take(3) {
        println!(
            "  {:>10.0} B live  {}",
            r.growth.last_bytes,
            sites::headline(&r.frames).map_or_else(String::new, ToString::to_string)
        );
    }

    let cmd = std::env::args().collect::<Vec<_>>().join(" ");
    let opts = sites::DhatOptions {
        cmd: &cmd,
        trim: HARNESS,
    };
    if let Err(e) = sites::write_dhat_file(path.as_ref(), &sites::profile(), &opts) {
        eprintln!("error: writing {path}: {e}");
        return std::process::ExitCode::FAILURE;
    }
    println!("DHAT profile: {path} (open it with dh_view.html's Load… button)");
    std::process::ExitCode::SUCCESS
}
