//! The commands as the binary runs them, one file each (`variant`: `ureq`/`raw`, `compare`,
//! `calibrate`, `watch`, with `reaper` for the processes `watch`'s command leaves), and what they share: signal handling, the allocator cap, the server the
//! orchestrating commands start. Kept out of `main.rs` so tests can run a whole command
//! in-process. Exit codes are `crate::exit`'s.

pub mod calibrate;
pub mod compare;
mod reaper;
mod shared;
pub mod variant;
pub mod watch;

pub use calibrate::calibrate;
pub use compare::compare;
pub use shared::{Cap, install_signal_handler};
pub use variant::run_variant;
pub use watch::watch;
