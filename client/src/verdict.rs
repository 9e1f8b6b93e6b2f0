//! The verdict: from a run's memory series, is there a leak, and how many bytes per request?
//! Pure functions over plain data (no I/O, no clock): table-tested on synthetic series.

/// One memory reading of a measured process, as the verdict sees it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Completed requests (ok + errors) when the reading was taken: the x axis.
    pub requests: u64,
    /// Live heap bytes (the counting allocator): the y axis the verdict judges.
    pub live: u64,
    /// Resident set size in bytes, when known.
    pub rss: Option<u64>,
    /// Taken while every worker was idle (between rounds, during linger, at the end).
    pub quiescent: bool,
    /// 0-based round the reading belongs to (`--rounds`).
    pub round: u32,
}
