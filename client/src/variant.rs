//! The `Variant` trait: one HTTP client under test, owned by one worker thread.
//! Adding a client is one file implementing this trait plus one arm in `clients::VariantName::builder`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::error::RequestError;

/// What a worker does with a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyMode {
    /// Read the whole body (the normal, well-behaved loop).
    Read,
    /// Drop the response without reading its body (a classic leak trigger).
    Skip,
}

impl BodyMode {
    /// The flag value (`read`, `skip`).
    pub fn as_str(self) -> &'static str {
        match self {
            BodyMode::Read => "read",
            BodyMode::Skip => "skip",
        }
    }
}

/// How the ureq variant bounds a request by `--timeout` (the raw client always uses one
/// deadline for the whole exchange).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutMode {
    /// Per-phase timeouts that add up to `--timeout`: connect ⅛, send the request ⅛, receive
    /// the response head ½, receive the body ¼. No thread per request.
    #[default]
    Phases,
    /// `timeout_global(--timeout)`, as many applications set it. ureq 3 then resolves the host
    /// on a new thread for every request (even an IP literal), which this measures too.
    Global,
}

impl TimeoutMode {
    /// The flag value (`phases`, `global`).
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutMode::Phases => "phases",
            TimeoutMode::Global => "global",
        }
    }
}

/// A completed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Final status code (after any 1xx).
    pub status: u16,
    /// Body bytes read (0 with `BodyMode::Skip`).
    pub body_bytes: u64,
}

/// Settings every variant is built from (parsed once from the CLI).
#[derive(Debug, Clone)]
pub struct VariantConfig {
    /// Per-request timeout: the whole exchange is bounded by it.
    pub timeout: Duration,
    /// How the ureq variant applies `timeout`.
    pub timeout_mode: TimeoutMode,
    pub body: BodyMode,
    /// Largest body accepted before the request fails with `ErrorKind::TooLarge`.
    pub max_body: u64,
    /// Keep-alive connections the variant may keep idle (ureq's pool size); `None` = library default.
    pub pool_idle: Option<usize>,
    /// Count every TCP connection the variant opens here (shared by all workers).
    pub connections_opened: Arc<AtomicU64>,
}

/// One HTTP client under test. `get` is called in a loop by one worker thread; a variant may
/// keep state (connections, buffers) between calls, and should reuse it.
pub trait Variant: Send {
    /// Performs one GET of `url` (absolute `http://host:port/path?query`).
    /// 4xx/5xx statuses are returned as `Ok`: the caller decides how to count them.
    fn get(&mut self, url: &str) -> Result<Outcome, RequestError>;
}
