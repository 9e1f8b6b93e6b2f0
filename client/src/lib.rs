//! leak-client: drives one HTTP workload through several client variants, logs heap usage at
//! intervals and judges whether memory grows per request.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod compare;
pub mod error;
pub mod monitor;
pub mod plot;
pub mod raw;
pub mod report;
pub mod run;
pub mod sample;
pub mod summary;
pub mod units;
pub mod ureq_client;
pub mod variant;
pub mod verdict;
pub mod watch;
pub mod workload;
