//! The parts of `leak-client watch` that judge any process: the memory of a process tree from
//! `/proc` ([`proctree`]), the runtime probes and their output ([`probe`]), and the pairing of
//! timestamped readings with the server's served count ([`pair`]), the verdict on what was read
//! ([`judge`]) and what a run writes ([`summary`]). Nothing here starts, signals or waits on the
//! watched command; that is the command's wiring (`commands::watch`).
//!
//! A watch run, in the order the wiring does it:
//! 1. [`probe::Probe::install`] writes the probe into the run's folder (with `--probe`), and
//!    [`probe::Probe::env`] gives the variables to start the command with (plus `LEAKPROBE_URL`).
//! 2. Every few milliseconds the watcher records the server's served count in a
//!    [`pair::ServedLog`] (stamped with [`clock::monotonic_ns`]).
//! 3. Every sample: [`proctree::TreeSampler::sample`] reads the tree's memory (paired with the
//!    served count read at the same moment), and [`probe::ProbeReader::poll`] returns the probe
//!    lines written since the last sample, each paired through [`pair::ServedLog::served_at`]
//!    with the count at its own timestamp; [`probe::ProbeTotals`] sums them over processes.

pub mod clock;
pub mod judge;
pub mod pair;
pub mod probe;
pub mod proctree;
pub mod summary;
