//! The raw client's HTTP/1.1 wire format, pure over byte slices: the request it writes and the
//! response reader (head parser + body reader); it must not touch sockets, clocks or the heap.
//!
//! The API follows httparse: [`parse_head`] is called again with a longer buffer until it returns
//! [`Status::Complete`], and reports only what the connection layer needs — the final status,
//! the body [`Framing`] and whether the connection may be reused. Header fields are validated and
//! interpreted in place; none is stored. [`BodyReader`] then reads the body of any framing
//! (Content-Length, chunked through the byte-driven [`ChunkedDecoder`], or until the connection
//! closes) from input handed to it in arbitrary pieces, with the end of the connection as an
//! explicit input.
//!
//! Policy, following RFC 9110/9112 and the conformance corpus (`client/tests/conformance`):
//! - Lenient where the RFC allows a recipient to be (bare-LF line ends, leading empty lines,
//!   a missing reason phrase, `HTTP/1.x` with any minor version, obs-fold in ordinary fields,
//!   identical repeated `Content-Length` values).
//! - Strict wherever framing could be confused (bare CR, whitespace before a colon, invalid field
//!   names or values, conflicting or overflowing `Content-Length`, obs-fold inside a framing field,
//!   a chunk-size line outside the grammar, chunk data not followed by a line end).
//! - `Transfer-Encoding` wins over `Content-Length` (RFC 9112 §6.3 rule 3); such a response is read
//!   but its connection is not reused, since it smells of response splitting.
//! - Bounded: a head over [`MAX_HEAD`], a chunk-size line over [`MAX_CHUNK_LINE`], trailers over
//!   [`MAX_TRAILERS`] or a body over the caller's limit is an error, never a longer wait.
//!
//! Its parts, each depending only on those before it: `types` (limits, [`Status`], [`Head`],
//! [`Framing`], [`Decoded`], [`WireError`]), `syntax` (RFC 9110's byte classes), `head`
//! ([`parse_head`]), `chunked` ([`ChunkedDecoder`]), `body` ([`BodyReader`]); and, apart,
//! `request` ([`write_request`], the request bytes, written into the caller's reused buffer).

mod body;
mod chunked;
mod head;
mod request;
mod syntax;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
mod types;

pub use body::{BodyReader, Progress};
pub use chunked::ChunkedDecoder;
pub use head::parse_head;
pub use request::write_request;
pub use types::{
    Decoded, Framing, Head, MAX_CHUNK_LINE, MAX_HEAD, MAX_TRAILERS, Status, WireError,
};
