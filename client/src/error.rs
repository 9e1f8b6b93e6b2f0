//! The client's typed request errors: one small enum of kinds, counted per kind in the summary.
//! Must not depend on any particular HTTP implementation.

use std::fmt;

/// What went wrong with one request. Every failure a variant can see maps to exactly one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection could not be established (refused, unreachable, DNS).
    Connect,
    /// The request did not complete within `--timeout` (connect, write or read).
    Timeout,
    /// The peer reset or closed the connection before a complete response.
    Reset,
    /// The response violated HTTP/1.1 (status line, headers, framing, chunk sizes).
    Malformed,
    /// The response head or body exceeded a limit (64 KiB head, body limit).
    TooLarge,
    /// A complete response whose status is 4xx or 5xx.
    Status,
    /// Any other I/O or library error.
    Other,
}

impl ErrorKind {
    /// Every kind, in display order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Malformed,
        ErrorKind::TooLarge,
        ErrorKind::Status,
        ErrorKind::Other,
    ];

    /// Position in [`ErrorKind::ALL`] (declaration order): an index for per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lowercase name, as used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Malformed => "malformed",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Status => "status",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request: its kind plus a short human detail (only built on the error path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl RequestError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        RequestError {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for RequestError {}

/// Maps an I/O error from a socket operation to a kind.
pub fn kind_of_io(e: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
        K::ConnectionRefused | K::AddrNotAvailable | K::HostUnreachable | K::NetworkUnreachable => {
            ErrorKind::Connect
        }
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        K::InvalidData => ErrorKind::Malformed,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_indexes_its_own_slot() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k}");
        }
    }
}
