//! The `Transfer-Encoding: chunked` decoder, `ChunkedDecoder`: a byte-driven state machine over
//! chunk sizes, extensions and trailers (validated, bounded, ignored) that reports data as ranges
//! of the caller's input and never buffers.

use super::syntax::{is_qdtext, is_tchar, is_value_byte};
use super::types::{Decoded, MAX_CHUNK_LINE, MAX_TRAILERS, WireError};

/// Where the chunked decoder is within the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a chunk size (`digits` so far).
    Size {
        digits: u32,
    },
    /// Whitespace after the size: only `;` may follow (BWS before an extension).
    SizeWs,
    /// After `;`, before an extension name.
    ExtStart,
    ExtName,
    /// Whitespace after an extension name.
    ExtNameWs,
    /// After `=`, before the value.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// After a complete extension value.
    ExtValueEnd,
    /// CR seen at the end of a chunk-size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Right after chunk data: CRLF (or LF) must follow.
    DataEnd,
    /// CR seen after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    /// CR seen at the end of a trailer line.
    TrailerLf,
    /// CR seen on the final empty line.
    EndLf,
    Done,
}

/// Incremental decoder of a `Transfer-Encoding: chunked` body (RFC 9112 §7.1): chunk sizes in
/// either hex case, extensions (validated, ignored), trailers (validated, ignored), bounded lines.
/// Never buffers: data is reported as ranges of the caller's input.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: Chunk,
    /// Size being parsed, then data bytes left in the current chunk.
    remaining: u64,
    /// Bytes of the current chunk-size line.
    line_len: usize,
    /// Bytes of the trailer section so far.
    trailer_len: usize,
    /// Whether a trailer field line has been seen (obs-fold may follow only one).
    trailer_field: bool,
    /// Decoded body bytes so far.
    body: u64,
    max_body: u64,
}

impl ChunkedDecoder {
    /// A decoder that fails with [`WireError::BodyTooLarge`] once the decoded body would exceed
    /// `max_body` bytes (checked when a chunk size is read, before its data arrives).
    pub fn new(max_body: u64) -> Self {
        ChunkedDecoder {
            state: Chunk::Size { digits: 0 },
            remaining: 0,
            line_len: 0,
            trailer_len: 0,
            trailer_field: false,
            body: 0,
            max_body,
        }
    }

    /// Whether the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decoded body bytes so far.
    pub fn body_len(&self) -> u64 {
        self.body
    }

    /// Consumes framing bytes from `input` until it reaches chunk data (returned as a range, with
    /// `consumed` just past it), the end of the input, or the end of the body. Bytes after the end
    /// of the body are left unconsumed.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, WireError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                Chunk::Done => break,
                Chunk::Data => {
                    let avail = input.len() - i;
                    let n = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                    self.remaining -= n as u64;
                    self.body += n as u64;
                    if self.remaining == 0 {
                        self.state = Chunk::DataEnd;
                    }
                    return Ok(Decoded {
                        consumed: i + n,
                        data: i..i + n,
                    });
                }
                _ => {
                    self.step(input[i])?;
                    i += 1;
                }
            }
        }
        Ok(Decoded {
            consumed: i,
            data: i..i,
        })
    }

    /// Decodes as much of `input` as belongs to the body, handing each data slice to `on_data`;
    /// returns the bytes consumed (less than `input.len()` only once the body is done).
    pub fn feed(
        &mut self,
        mut input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<usize, WireError> {
        let mut total = 0;
        loop {
            let step = self.decode(input)?;
            if !step.data.is_empty() {
                on_data(&input[step.data]);
            }
            total += step.consumed;
            input = &input[step.consumed..];
            if input.is_empty() || self.is_done() {
                return Ok(total);
            }
        }
    }

    /// Advances the framing state machine by one byte.
    fn step(&mut self, b: u8) -> Result<(), WireError> {
        use Chunk::*;
        if matches!(
            self.state,
            Size { .. }
                | SizeWs
                | ExtStart
                | ExtName
                | ExtNameWs
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedEscape
                | ExtValueEnd
                | SizeLf
        ) {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return Err(WireError::LineTooLong);
            }
        } else if matches!(
            self.state,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | EndLf
        ) {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILERS {
                return Err(WireError::LineTooLong);
            }
        }
        let is_ws = b == b' ' || b == b'\t';
        self.state = match (self.state, b) {
            (Size { digits }, _) if b.is_ascii_hexdigit() => {
                let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                self.remaining = self
                    .remaining
                    .checked_mul(16)
                    .and_then(|n| n.checked_add(digit))
                    .ok_or(WireError::ChunkSize)?;
                Size { digits: digits + 1 }
            }
            (Size { digits: 0 }, _) => return Err(WireError::ChunkSize),
            (Size { .. }, b';') => ExtStart,
            // Whitespace after the size is only BWS before an extension (RFC 9112 §7.1.1).
            (Size { .. }, _) if is_ws => SizeWs,
            (Size { .. } | ExtName | ExtNameWs | ExtToken | ExtValueEnd, b'\r') => SizeLf,
            (Size { .. } | ExtName | ExtNameWs | ExtToken | ExtValueEnd, b'\n')
            | (SizeLf, b'\n') => self.end_size_line()?,
            (Size { .. }, _) => return Err(WireError::ChunkSize),
            (SizeWs, b';') => ExtStart,
            (SizeWs, _) if is_ws => SizeWs,
            (SizeWs, _) => return Err(WireError::ChunkSize),
            (ExtStart, _) if is_ws => ExtStart,
            (ExtStart, _) if is_tchar(b) => ExtName,
            (ExtName, _) if is_tchar(b) => ExtName,
            (ExtName | ExtNameWs | ExtToken | ExtValueEnd, b';') => ExtStart,
            (ExtName | ExtNameWs, _) if is_ws => ExtNameWs,
            (ExtValueStart, _) if is_ws => ExtValueStart,
            (ExtName | ExtNameWs, b'=') => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtToken | ExtValueEnd, _) if is_ws => ExtValueEnd,
            (ExtQuoted, b'"') => ExtValueEnd,
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted, _) if is_qdtext(b) => ExtQuoted,
            (ExtQuotedEscape, _) if is_value_byte(b) => ExtQuoted,
            (SizeLf, _) => return Err(WireError::BareCr),
            (
                ExtStart | ExtName | ExtNameWs | ExtValueStart | ExtToken | ExtQuoted
                | ExtQuotedEscape | ExtValueEnd,
                _,
            ) => return Err(WireError::ChunkExtension),
            // Lenient like the head: LF alone may end the data; anything else is smuggling bait.
            (DataEnd, b'\r') => DataLf,
            (DataEnd | DataLf, b'\n') => self.start_size_line(),
            (DataEnd | DataLf, _) => return Err(WireError::ChunkEnd),
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart, b'\n') | (EndLf, b'\n') => Done,
            (TrailerStart, _) if is_tchar(b) => TrailerName,
            (TrailerStart, _) if is_ws && self.trailer_field => TrailerValue,
            (TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => {
                self.trailer_field = true;
                TrailerValue
            }
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, b'\n') | (TrailerLf, b'\n') => TrailerStart,
            (TrailerValue, _) if is_value_byte(b) => TrailerValue,
            (TrailerLf | EndLf, _) => return Err(WireError::BareCr),
            (TrailerStart | TrailerName | TrailerValue, _) => return Err(WireError::Trailer),
            // `decode` handles these states without calling `step`.
            (Data | Done, _) => self.state,
        };
        Ok(())
    }

    fn start_size_line(&mut self) -> Chunk {
        self.remaining = 0;
        self.line_len = 0;
        Chunk::Size { digits: 0 }
    }

    fn end_size_line(&mut self) -> Result<Chunk, WireError> {
        if self.remaining == 0 {
            return Ok(Chunk::TrailerStart);
        }
        match self.body.checked_add(self.remaining) {
            Some(total) if total <= self.max_body => Ok(Chunk::Data),
            _ => Err(WireError::BodyTooLarge),
        }
    }
}
