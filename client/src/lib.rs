//! leak-client: drives one HTTP workload through several client variants, logs heap usage at
//! intervals and judges whether memory grows per request.
//!
//! Layers, lowest first (a module imports only from layers below it):
//! data (`units`, `error`, `stop`, `sample`, `trend`, `progress`, `jsonl`, `runtime`, `workload`, `variant`, `exit`,
//! `private_dir`) →
//! clients (`raw`, `ureq_client`, `clients`) → configuration (`cli`, then `config`) →
//! measuring (`counters`, `sites`, `monitor`, `run`) → analysis (`verdict`, `summary`) → `watch` (any
//! program's process tree and runtime probe, judged with `verdict`) →
//! outputs (`plot`, `child`, `report`) → `commands`.
#![forbid(unsafe_code)]

pub mod child;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod config;
pub mod counters;
pub mod error;
pub mod exit;
pub mod jsonl;
pub mod monitor;
pub mod plot;
pub mod private_dir;
pub mod progress;
pub mod raw;
pub mod report;
pub mod run;
pub mod runtime;
pub mod sample;
pub mod sites;
pub mod stop;
pub mod summary;
pub mod trend;
pub mod units;
pub mod ureq_client;
pub mod variant;
pub mod verdict;
pub mod watch;
pub mod workload;
