//! leak-client: drives one HTTP workload through several client variants, logs heap usage at
//! intervals and judges whether memory grows per request.
#![forbid(unsafe_code)]

pub mod error;
pub mod raw;
pub mod variant;
pub mod verdict;
