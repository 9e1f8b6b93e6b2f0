//! `just bench-alloc [REPS]`: nanoseconds per alloc+free pair for `System`, the counting wrapper
//! with the sampling hooks compiled out (`Counting<System, false>`: no sampling code at all), the
//! counting wrapper as installed with sampling off, and with sampling on at the default rate;
//! several sizes, one and two threads. Each allocator is called directly (statically
//! dispatched, as a global allocator is), in batches of 16 allocations then 16 frees. Cells are
//! interleaved, their order rotated each repetition, and the best of REPS (default 7) is kept,
//! since the machine is shared (load only ever adds time).
//!
//! Targets (issue 10): "off" ≥ 0.97× the throughput of "no sampling code".

// The bench calls allocators' methods directly.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

use heapmeter::sites;

const BATCH: usize = 16;
/// Pairs per thread per cell: about 20–50 ms each (the 64 KiB pairs are System's slow path).
fn pairs_per_thread(size: usize) -> usize {
    match size {
        ..=1024 => 1_600_000,
        1025..=4096 => 800_000,
        _ => 32_000,
    }
}
const SIZES: [usize; 6] = [16, 64, 256, 1024, 4096, 65536];

#[inline(never)]
fn cycle<A: GlobalAlloc>(a: &A, layout: Layout, iters: usize) {
    let mut ptrs = [std::ptr::null_mut::<u8>(); BATCH];
    for _ in 0..iters {
        for p in &mut ptrs {
            // SAFETY: non-zero size; the block is written within bounds and freed below.
            let q = unsafe { a.alloc(layout) };
            assert!(!q.is_null(), "out of memory");
            // SAFETY: `q` points to at least one writable byte.
            unsafe { q.write(1) };
            *p = black_box(q);
        }
        for &p in &ptrs {
            // SAFETY: allocated above by `a` with `layout`.
            unsafe { a.dealloc(p, layout) };
        }
    }
}

/// ns per alloc+free pair on each of `threads` threads.
fn time<A: GlobalAlloc + Sync>(a: &A, size: usize, threads: usize) -> f64 {
    let layout = Layout::from_size_align(size, 8).expect("layout");
    let iters = pairs_per_thread(size) / BATCH;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| cycle(a, layout, iters));
        }
    });
    start.elapsed().as_nanos() as f64 / (iters * BATCH) as f64
}

#[derive(Clone, Copy)]
enum Kind {
    System,
    NoSamplingCode,
    Off,
    On,
}

const KINDS: [Kind; 4] = [Kind::System, Kind::NoSamplingCode, Kind::Off, Kind::On];

fn run(kind: Kind, size: usize, threads: usize) -> f64 {
    static NO_SAMPLING: heapmeter::Counting<System, false> = heapmeter::counting_without_sites();
    static COUNTING: heapmeter::Counting<System> = heapmeter::counting();
    match kind {
        Kind::System => time(&System, size, threads),
        Kind::NoSamplingCode => time(&NO_SAMPLING, size, threads),
        Kind::Off => {
            sites::disable();
            time(&COUNTING, size, threads)
        }
        Kind::On => {
            if let Err(e) = sites::enable() {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
            let t = time(&COUNTING, size, threads);
            sites::disable();
            t
        }
    }
}

fn main() {
    let reps: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or(Ok(7), |a| a.parse())
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            eprintln!("usage: alloc [REPS]   (REPS: a positive number of repetitions)");
            std::process::exit(2);
        });
    println!(
        "ns per alloc+free pair, best of {reps} (batches of {BATCH}); ratios: throughput vs \
         no-sampling from the best times; sampling on = one sample per {} KiB on average",
        sites::sample_rate() / 1024
    );
    println!(
        "{:>7} {:>7} | {:>8} {:>10} {:>8} {:>8} | {:>13} {:>12}",
        "size", "threads", "System", "no-sampling", "off", "on", "off/no-samp.", "on/no-samp."
    );
    for threads in [1, 2] {
        for size in SIZES {
            let mut times: [Vec<f64>; 4] = Default::default();
            for rep in 0..reps {
                for j in 0..KINDS.len() {
                    let i = (j + rep) % KINDS.len();
                    times[i].push(run(KINDS[i], size, threads));
                }
            }
            let best = |i: usize| times[i].iter().copied().fold(f64::INFINITY, f64::min);
            // Throughput relative to no sampling code, from the best times (load only adds).
            let ratio = |i: usize| best(1) / best(i);
            println!(
                "{size:>7} {threads:>7} | {:>8.1} {:>10.1} {:>8.1} {:>8.1} | {:>12.3}x {:>11.3}x",
                best(0),
                best(1),
                best(2),
                best(3),
                ratio(2),
                ratio(3)
            );
        }
    }
    let st = sites::stats();
    println!(
        "samples taken while on: {}; distinct stacks: {}; live samples now: {}",
        st.samples, st.sites, st.live_samples
    );
}
