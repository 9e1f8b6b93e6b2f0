//! The parts of `leak-client watch` that judge any process: the memory of a process tree from
//! `/proc` ([`proctree`]), the runtime probes and their output ([`probe`]), the server's count of
//! requests served ([`served`]) and the pairing of timestamped readings with it ([`pair`], on
//! [`clock`]'s clock), the verdict on what was read ([`judge`]), growth per allocation site
//! under `--sites` ([`sites`], its frames read through [`source_maps`]), what holds the objects
//! new between two heap snapshots (`--retainers`, [`retainers`]), what a run writes
//! ([`summary`]), and one watch from its first reading to its summary ([`session`]). Nothing here
//! starts, signals or waits on the watched command; that is the command's wiring
//! (`commands::watch`).
//!
//! A watch run, in the order the wiring does it (steps 2–4 are [`session::Session`]'s):
//! 1. [`probe::Probe::install`] writes the probe into the run's folder (with `--probe`), and
//!    [`probe::Probe::env`] gives the variables to start the command with (plus `LEAKPROBE_URL`).
//! 2. Every few milliseconds the watcher records the server's served count in a
//!    [`pair::ServedLog`] (stamped with [`clock::monotonic_ns`]).
//! 3. Every sample: [`proctree::TreeSampler::sample`] reads the tree's memory (paired with the
//!    served count read at the same moment), and [`probe::ProbeReader::poll`] returns the probe
//!    lines written since the last sample, each paired through [`pair::ServedLog::served_at`]
//!    with the count at its own timestamp; [`probe::ProbeTotals`] sums them over processes.
//! 4. Once the command has stopped, [`served::ServedCount::settle`] takes the final count and
//!    [`judge::judge`] the verdict, into a [`summary::WatchSummary`].

pub mod clock;
pub mod judge;
pub mod pair;
pub mod probe;
pub mod proctree;
pub mod retainers;
pub mod served;
pub mod session;
pub mod sites;
pub mod source_maps;
pub mod summary;
