//! leak-client's integration tests that need no process of their own, as modules of one test
//! binary (ripgrep's and oha's layout): one link of the crate and its dependencies instead of
//! one per file, which is most of a cold `cargo test`'s build time and `target/`'s size.
//!
//! What stays a binary of its own (`client/tests/*.rs`), and why:
//! - `heap_*.rs`, `raw_alloc.rs`, `raw_wire_alloc.rs`, `watch_heap.rs`, `heap_progress.rs`: each
//!   declares heapmeter's `#[global_allocator]` and reads the process's counters (live bytes,
//!   allocation counts, the sites sampler), so nothing else may run in its process — another
//!   test's allocations would be read as the measured code's (dhat-rs's rule: one heap test per
//!   file).
//!
//! A test added here must not change process-global state either: no `#[global_allocator]`, no
//! environment variable set (`std::env::set_var`; a child's `Command::env` is fine), no signal
//! handler, no `prctl` (a subreaper), no `std::env::set_current_dir`, no reading of the process's
//! own heap. Those go in a file of their own beside this folder. Children, sockets on port 0 and
//! folders named after the test are fine: the modules run in parallel threads, as the files'
//! tests did.

#[path = "../common/mod.rs"]
mod common;
#[path = "../raw_gen/mod.rs"]
mod raw_gen;

mod cli;
mod e2e;
mod layers;
mod raw_conn;
mod raw_props;
mod raw_wire;
mod readme;
mod sites_cli;
mod support;
mod watch_cmd;
mod watch_probe;
mod watch_proctree;
mod watch_retainers;
mod watch_sites;
mod watch_verdict;
