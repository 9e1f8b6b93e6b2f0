//! The wire's vocabulary, shared by its parts: the limits it enforces, a parse step's `Status`,
//! what a head says (`Head`, `Framing`), a decode step (`Decoded`), and `WireError` with the
//! request-error kind each maps to.

use std::fmt;
use std::ops::Range;

use crate::error::{ErrorKind, RequestError};

/// Largest response head accepted (interim 1xx heads included).
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest chunk-size line (size plus extensions) accepted.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Largest trailer section accepted.
pub const MAX_TRAILERS: usize = 64 * 1024;

/// Result of an incremental parse step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// More bytes are needed; call again with a longer buffer.
    Partial,
    /// Complete: the first `usize` bytes of the buffer were the head(s); the body starts there.
    Complete(usize, T),
}

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: 1xx, 204, 304, or a response to HEAD.
    NoBody,
    /// Exactly this many bytes follow the head.
    ContentLength(u64),
    /// `Transfer-Encoding: chunked` (RFC 9112 §7.1).
    Chunked,
    /// The body runs until the server closes the connection.
    CloseDelimited,
}

/// What the connection layer needs to know about a final response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Final status code (interim 1xx responses are skipped).
    pub status: u16,
    /// Minor HTTP version (`HTTP/1.0` → 0; 1 and above mean HTTP/1.1 semantics).
    pub minor: u8,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another request after this response's body.
    pub keep_alive: bool,
}

/// Why a response was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The status line is not `HTTP/1.x SSS [reason]`.
    StatusLine,
    /// A well-formed version that is not HTTP/1.x.
    Version,
    /// A header line without a field name directly followed by `:`.
    HeaderName,
    /// A field value containing NUL or another control character.
    HeaderValue,
    /// A CR not followed by LF.
    BareCr,
    /// A continuation line (obs-fold) that cannot be unfolded: right after the status line, or
    /// inside a framing field (`Content-Length`, `Transfer-Encoding`, `Connection`).
    ObsFold,
    /// `Content-Length` empty, not a number, overflowing, or conflicting with another one.
    ContentLength,
    /// `Transfer-Encoding` in an HTTP/1.0 response, or `chunked` applied twice.
    TransferEncoding,
    /// A `101 Switching Protocols` that the client never asked for.
    UnexpectedUpgrade,
    /// A chunk size that is missing, not hex, overflowing, or followed by junk.
    ChunkSize,
    /// A malformed chunk extension.
    ChunkExtension,
    /// Chunk data not followed by a line end.
    ChunkEnd,
    /// A malformed trailer field.
    Trailer,
    /// The response head exceeds [`MAX_HEAD`].
    HeadTooLarge,
    /// A chunk-size line or the trailer section exceeds its bound.
    LineTooLong,
    /// The body exceeds the configured limit.
    BodyTooLarge,
    /// The connection ended before the body did (Content-Length or chunked framing).
    Truncated,
}

impl WireError {
    /// The request-error kind this maps to in the run summary.
    pub fn kind(self) -> ErrorKind {
        match self {
            WireError::HeadTooLarge | WireError::LineTooLong | WireError::BodyTooLarge => {
                ErrorKind::TooLarge
            }
            WireError::Truncated => ErrorKind::Reset,
            _ => ErrorKind::Malformed,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            WireError::StatusLine => "malformed status line",
            WireError::Version => "unsupported http version",
            WireError::HeaderName => "malformed header name",
            WireError::HeaderValue => "invalid byte in header value",
            WireError::BareCr => "bare cr",
            WireError::ObsFold => "obs-fold where it cannot be unfolded",
            WireError::ContentLength => "invalid or conflicting content-length",
            WireError::TransferEncoding => "invalid transfer-encoding",
            WireError::UnexpectedUpgrade => "unsolicited 101 switching protocols",
            WireError::ChunkSize => "invalid chunk size",
            WireError::ChunkExtension => "malformed chunk extension",
            WireError::ChunkEnd => "chunk data not followed by crlf",
            WireError::Trailer => "malformed trailer field",
            WireError::HeadTooLarge => "response head over 64 KiB",
            WireError::LineTooLong => "chunk line or trailers over limit",
            WireError::BodyTooLarge => "body over limit",
            WireError::Truncated => "connection closed mid-body",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for WireError {}

impl From<WireError> for RequestError {
    fn from(e: WireError) -> Self {
        RequestError::new(e.kind(), e.as_str())
    }
}

/// One step of [`BodyReader::decode`](super::BodyReader::decode) or
/// [`ChunkedDecoder::decode`](super::ChunkedDecoder::decode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes consumed (framing and data).
    pub consumed: usize,
    /// Where decoded body data sits in the input (may be empty).
    pub data: Range<usize>,
}
