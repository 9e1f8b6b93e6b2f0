//! The body reader, `BodyReader`: one response body of any framing (Content-Length, chunked,
//! until close) from input in arbitrary pieces, with the end of the connection as an input.

use super::chunked::ChunkedDecoder;
use super::types::{Decoded, Framing, WireError};

/// Where a [`BodyReader`] is.
#[derive(Debug, Clone)]
enum Body {
    /// Content-Length: this many bytes still belong to the body.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Everything until the connection ends.
    UntilClose,
    Done,
}

/// What one [`BodyReader::feed`] did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes that belonged to the body, framing included. Less than the input only once
    /// the body is done: the bytes after it are not this response's.
    pub consumed: usize,
    /// Decoded body bytes found in this input.
    pub body: u64,
    /// Whether the body is complete.
    pub done: bool,
}

/// Reads one response body of any [`Framing`] from input handed to it in arbitrary pieces, as
/// [`parse_head`](super::parse_head) reads the head: a pure state machine over `&[u8]` that never buffers (body
/// data is reported as slices of the caller's input) and holds no more than a few counters, so
/// it neither allocates nor grows with its input. The end of the connection is an input too
/// ([`BodyReader::finish`]): it ends a close-delimited body and truncates any other.
///
/// ```
/// use leak_client::raw::wire::{BodyReader, Framing};
///
/// let mut body = BodyReader::new(Framing::Chunked, 1 << 20);
/// let mut data = Vec::new();
/// let p = body.feed(b"3;ext=1\r\nabc\r\n0\r\n", |d| data.extend_from_slice(d)).unwrap();
/// assert!(!p.done);
/// let p = body.feed(b"Trailer: x\r\n\r\nHTTP/1.1", |d| data.extend_from_slice(d)).unwrap();
/// assert_eq!((p.consumed, p.done), (14, true)); // the next response's bytes are left
/// assert_eq!((data.as_slice(), body.body_len()), (&b"abc"[..], 3));
/// ```
#[derive(Debug, Clone)]
pub struct BodyReader {
    state: Body,
    /// Decoded body bytes so far (Content-Length and close-delimited; chunked counts its own).
    body: u64,
    max_body: u64,
}

impl BodyReader {
    /// A reader for a body with this framing, failing with [`WireError::BodyTooLarge`] once the
    /// body would exceed `max_body` bytes: a Content-Length over the limit on the first `feed`,
    /// before any of its bytes; a chunk when its size is read; a close-delimited body as soon as
    /// it has grown past the limit.
    pub fn new(framing: Framing, max_body: u64) -> BodyReader {
        let state = match framing {
            Framing::NoBody | Framing::ContentLength(0) => Body::Done,
            Framing::ContentLength(n) => Body::Length(n),
            Framing::Chunked => Body::Chunked(ChunkedDecoder::new(max_body)),
            Framing::CloseDelimited => Body::UntilClose,
        };
        BodyReader {
            state,
            body: 0,
            max_body,
        }
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        match &self.state {
            Body::Done => true,
            Body::Chunked(dec) => dec.is_done(),
            Body::Length(_) | Body::UntilClose => false,
        }
    }

    /// Decoded body bytes so far.
    pub fn body_len(&self) -> u64 {
        match &self.state {
            Body::Chunked(dec) => dec.body_len(),
            _ => self.body,
        }
    }

    /// Consumes framing bytes from `input` until it reaches body data (returned as a range, with
    /// `consumed` just past it), the end of the input, or the end of the body. Bytes after the
    /// end of the body are left unconsumed.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, WireError> {
        let n = match &mut self.state {
            Body::Done => 0,
            Body::Chunked(dec) => return dec.decode(input),
            Body::Length(remaining) => {
                if self.body.saturating_add(*remaining) > self.max_body {
                    return Err(WireError::BodyTooLarge);
                }
                let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.state = Body::Done;
                }
                n
            }
            Body::UntilClose => {
                let n = input.len();
                if self.body.saturating_add(n as u64) > self.max_body {
                    return Err(WireError::BodyTooLarge);
                }
                n
            }
        };
        self.body += n as u64;
        Ok(Decoded {
            consumed: n,
            data: 0..n,
        })
    }

    /// Reads as much of `input` as belongs to the body, handing each data slice to `on_data`.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Progress, WireError> {
        let mut progress = Progress {
            consumed: 0,
            body: 0,
            done: self.is_done(),
        };
        loop {
            let step = self.decode(input)?;
            if !step.data.is_empty() {
                progress.body += step.data.len() as u64;
                on_data(&input[step.data]);
            }
            progress.consumed += step.consumed;
            input = &input[step.consumed..];
            progress.done = self.is_done();
            if input.is_empty() || progress.done {
                return Ok(progress);
            }
        }
    }

    /// The connection has ended: that completes a close-delimited body, and is
    /// [`WireError::Truncated`] for any other body that is not yet done.
    pub fn finish(&mut self) -> Result<(), WireError> {
        match self.state {
            Body::UntilClose => {
                self.state = Body::Done;
                Ok(())
            }
            _ if self.is_done() => Ok(()),
            _ => Err(WireError::Truncated),
        }
    }
}
