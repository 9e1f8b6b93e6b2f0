//! Pure HTTP/1.1 response reader (head parser + body reader) over `&[u8]`; it must not touch
//! sockets, clocks or the heap.
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

/// Parses the response head at the start of `buf`, skipping interim 1xx responses.
///
/// Returns `Partial` while the final head is incomplete (a valid prefix never yields an error),
/// `Complete(n, head)` where `n` counts every head byte including interim responses, or an error.
/// `head_request` says the request was HEAD, whose response never has a body.
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Status<Head>, WireError> {
    let mut pos = 0;
    loop {
        let Status::Complete(n, head) = parse_one_head(&buf[pos..], head_request)? else {
            // A head still incomplete past the limit can never become acceptable.
            return if buf.len() > MAX_HEAD {
                Err(WireError::HeadTooLarge)
            } else {
                Ok(Status::Partial)
            };
        };
        let end = pos + n;
        if end > MAX_HEAD {
            return Err(WireError::HeadTooLarge);
        }
        match head.status {
            // We never send `Upgrade`, so a 101 means the peer is no longer speaking HTTP to us.
            101 => return Err(WireError::UnexpectedUpgrade),
            100..=199 => pos = end,
            _ => return Ok(Status::Complete(end, head)),
        }
    }
}

/// Which kind of field the previous header line was: decides whether obs-fold may follow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    StatusLine,
    Framing,
    Other,
}

/// What the header fields said about framing and persistence.
#[derive(Default)]
struct Fields {
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked_last: bool,
    chunked_count: u32,
    close: bool,
    keep_alive: bool,
}

fn parse_one_head(buf: &[u8], head_request: bool) -> Result<Status<Head>, WireError> {
    // RFC 9112 §2.2 asks only servers to skip empty lines before a message, but doing so costs
    // nothing and llhttp does it for responses too.
    let mut pos = 0;
    loop {
        match buf.get(pos) {
            Some(b'\n') => pos += 1,
            Some(b'\r') => match buf.get(pos + 1) {
                Some(b'\n') => pos += 2,
                Some(_) => return Err(WireError::BareCr),
                None => return Ok(Status::Partial),
            },
            _ => break,
        }
    }
    // Reject garbage as soon as it cannot start a status line, rather than waiting for a line end.
    let rest = &buf[pos..];
    let k = rest.len().min(5);
    if rest[..k] != b"HTTP/"[..k] {
        return Err(WireError::StatusLine);
    }
    let Some((line, next)) = next_line(buf, pos)? else {
        return Ok(Status::Partial);
    };
    let (minor, status) = parse_status_line(line)?;
    pos = next;

    let mut fields = Fields::default();
    let mut prev = Prev::StatusLine;
    loop {
        let Some((line, next)) = next_line(buf, pos)? else {
            return Ok(Status::Partial);
        };
        pos = next;
        let Some(&first) = line.first() else { break };
        if first == b' ' || first == b'\t' {
            // obs-fold: RFC 9112 §5.2 has a user agent replace it with SP. We store no values, so
            // unfolding is just validating; a folded framing field is refused instead of
            // reassembled, as its meaning would then depend on our unfolding.
            match prev {
                Prev::StatusLine | Prev::Framing => return Err(WireError::ObsFold),
                Prev::Other => {
                    check_value(line)?;
                    continue;
                }
            }
        }
        prev = parse_field(line, &mut fields)?;
    }

    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::NoBody
    } else if fields.transfer_encoding {
        if minor == 0 {
            // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; the framing is faulty.
            return Err(WireError::TransferEncoding);
        }
        if fields.chunked_last {
            Framing::Chunked
        } else {
            // RFC 9112 §6.3 rule 4: in a response, a final coding other than chunked means the
            // body runs until close.
            Framing::CloseDelimited
        }
    } else if let Some(n) = fields.content_length {
        Framing::ContentLength(n)
    } else {
        Framing::CloseDelimited
    };
    let mut keep_alive = if minor == 0 {
        fields.keep_alive && !fields.close
    } else {
        !fields.close
    };
    if framing == Framing::CloseDelimited
        || (framing == Framing::Chunked && fields.content_length.is_some())
    {
        keep_alive = false;
    }
    Ok(Status::Complete(
        pos,
        Head {
            status,
            minor,
            framing,
            keep_alive,
        },
    ))
}

/// The line starting at `from` without its terminator, and the offset after it; `None` if no LF
/// has arrived yet. CRLF and bare LF both end a line (RFC 9112 §2.2 allows a recipient to accept
/// LF); a CR anywhere else is an error, as it is a known request-smuggling vector.
fn next_line(buf: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, WireError> {
    let rest = &buf[from..];
    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let line = match &rest[..lf] {
        [line @ .., b'\r'] => line,
        line => line,
    };
    if line.contains(&b'\r') {
        return Err(WireError::BareCr);
    }
    Ok(Some((line, from + lf + 1)))
}

/// `HTTP/1.x SSS[ reason]` → (minor version, status).
fn parse_status_line(line: &[u8]) -> Result<(u8, u16), WireError> {
    let [b'H', b'T', b'T', b'P', b'/', major, b'.', minor, rest @ ..] = line else {
        return Err(WireError::StatusLine);
    };
    if !major.is_ascii_digit() || !minor.is_ascii_digit() {
        return Err(WireError::StatusLine);
    }
    if *major != b'1' {
        return Err(WireError::Version);
    }
    // Exactly one SP, then 3DIGIT; the reason (and the SP before it) may be absent, as
    // httparse, llhttp and Go accept.
    let [b' ', d0, d1, d2, tail @ ..] = rest else {
        return Err(WireError::StatusLine);
    };
    if ![d0, d1, d2].iter().all(|d| d.is_ascii_digit()) {
        return Err(WireError::StatusLine);
    }
    let status = u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0');
    if status < 100 {
        return Err(WireError::StatusLine);
    }
    match tail {
        [] => {}
        [b' ', reason @ ..] if reason.iter().all(|&b| is_value_byte(b)) => {}
        _ => return Err(WireError::StatusLine),
    }
    Ok((minor - b'0', status))
}

/// Validates one `name: value` line and records what matters for framing.
fn parse_field(line: &[u8], fields: &mut Fields) -> Result<Prev, WireError> {
    let name_len = line
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(line.len());
    // No whitespace may sit between name and colon (RFC 9112 §5.1): it is what lets one parser
    // see `Content-Length` where another sees an unknown field.
    if name_len == 0 || line.get(name_len) != Some(&b':') {
        return Err(WireError::HeaderName);
    }
    let (name, raw_value) = (&line[..name_len], &line[name_len + 1..]);
    check_value(raw_value)?;
    let value = trim_ows(raw_value);
    if name.eq_ignore_ascii_case(b"content-length") {
        // RFC 9110 §8.6: a list of identical values may be taken as that value; anything else
        // is unrecoverable framing.
        for item in value.split(|&b| b == b',') {
            let n = parse_decimal(trim_ows(item)).ok_or(WireError::ContentLength)?;
            match fields.content_length {
                Some(prev) if prev != n => return Err(WireError::ContentLength),
                _ => fields.content_length = Some(n),
            }
        }
        Ok(Prev::Framing)
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        fields.transfer_encoding = true;
        for coding in list_items(value) {
            let chunked = coding.eq_ignore_ascii_case(b"chunked");
            fields.chunked_count += u32::from(chunked);
            fields.chunked_last = chunked;
        }
        // RFC 9112 §7: a sender must not apply chunked more than once.
        if fields.chunked_count > 1 {
            return Err(WireError::TransferEncoding);
        }
        Ok(Prev::Framing)
    } else if name.eq_ignore_ascii_case(b"connection") {
        for option in list_items(value) {
            fields.close |= option.eq_ignore_ascii_case(b"close");
            fields.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
        }
        Ok(Prev::Framing)
    } else {
        Ok(Prev::Other)
    }
}

/// Non-empty, OWS-trimmed elements of a comma-separated list (RFC 9110 §5.6.1).
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

fn check_value(value: &[u8]) -> Result<(), WireError> {
    if value.iter().all(|&b| is_value_byte(b)) {
        Ok(())
    } else {
        Err(WireError::HeaderValue)
    }
}

/// `1*DIGIT` without overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// field-vchar, SP or HTAB (RFC 9110 §5.5); obs-text included.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80
}

/// qdtext (RFC 9110 §5.6.4).
fn is_qdtext(b: u8) -> bool {
    b == b'\t'
        || b == b' '
        || b == 0x21
        || (0x23..=0x5b).contains(&b)
        || (0x5d..=0x7e).contains(&b)
        || b >= 0x80
}

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

/// One step of [`BodyReader::decode`] or [`ChunkedDecoder::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes consumed (framing and data).
    pub consumed: usize,
    /// Where decoded body data sits in the input (may be empty).
    pub data: Range<usize>,
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
/// [`parse_head`] reads the head: a pure state machine over `&[u8]` that never buffers (body
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed response and what reading it must yield.
    struct Valid {
        name: &'static str,
        raw: &'static [u8],
        head_request: bool,
        status: u16,
        framing: Framing,
        keep_alive: bool,
        /// Decoded body (for close-delimited: everything after the head).
        body: &'static [u8],
    }

    const fn ok(
        name: &'static str,
        raw: &'static [u8],
        status: u16,
        framing: Framing,
        keep_alive: bool,
        body: &'static [u8],
    ) -> Valid {
        Valid {
            name,
            raw,
            head_request: false,
            status,
            framing,
            keep_alive,
            body,
        }
    }

    use Framing::{Chunked, CloseDelimited, ContentLength as Cl, NoBody};

    const VALID: &[Valid] = &[
        ok("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, Cl(5), true, b"hello"),
        ok("content-length zero", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, Cl(0), true, b""),
        ok(
            "header names case-insensitive, ows around value",
            b"HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh:\t 3 \t\r\nX-A:b\r\n\r\nabc",
            200,
            Cl(3),
            true,
            b"abc",
        ),
        ok("leading zeros", b"HTTP/1.1 200 OK\r\nContent-Length: 003\r\n\r\nabc", 200, Cl(3), true, b"abc"),
        ok(
            "identical repeated content-length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
            200,
            Cl(2),
            true,
            b"hi",
        ),
        ok(
            "identical content-length list",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi",
            200,
            Cl(2),
            true,
            b"hi",
        ),
        ok(
            "content-length-x is another field",
            b"HTTP/1.1 200 OK\r\nContent-Length-X: 9\r\nContent-Length: 1\r\n\r\nx",
            200,
            Cl(1),
            true,
            b"x",
        ),
        ok(
            "chunked, extensions, trailers, both hex cases",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;a=b ; c=\"q;\\\"x\"\r\nhello\r\nA\r\n0123456789\r\n1b\r\nabcdefghijklmnopqrstuvwxyz!\r\n\
              0; last\r\nVary: *\r\nX-T: 1\r\n\r\n",
            200,
            Chunked,
            true,
            b"hello0123456789abcdefghijklmnopqrstuvwxyz!",
        ),
        ok(
            "chunked empty",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n000\r\n\r\n",
            200,
            Chunked,
            true,
            b"",
        ),
        ok(
            "chunked wins over content-length, no reuse",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            200,
            Chunked,
            false,
            b"ok",
        ),
        ok(
            "non-chunked final coding is close-delimited",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzz",
            200,
            CloseDelimited,
            false,
            b"zz",
        ),
        ok("close-delimited", b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nuntil close", 200, CloseDelimited, false, b"until close"),
        ok("no reason, no space", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 200, Cl(0), true, b""),
        ok("empty reason", b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", 404, Cl(0), true, b""),
        ok(
            "obs-text reason",
            b"HTTP/1.1 500 Ori\xc3\xabntatie \xff\r\nContent-Length: 0\r\n\r\n",
            500,
            Cl(0),
            true,
            b"",
        ),
        ok("bare lf", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, Cl(2), true, b"ok"),
        ok("leading empty lines", b"\r\n\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, Cl(0), true, b""),
        ok("http/1.2 is 1.1", b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", 200, Cl(0), true, b""),
        ok(
            "100 continue skipped",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n!",
            201,
            Cl(1),
            true,
            b"!",
        ),
        ok(
            "several 1xx skipped",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            200,
            Cl(0),
            true,
            b"",
        ),
        ok("204", b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 204, NoBody, true, b""),
        ok("304 with te", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 304, NoBody, true, b""),
        ok("connection close", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 200, Cl(0), false, b""),
        ok(
            "connection list with close",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive, Close\r\n\r\n",
            200,
            Cl(0),
            false,
            b"",
        ),
        ok("http/1.0 default close", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, Cl(0), false, b""),
        ok(
            "http/1.0 keep-alive",
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n",
            200,
            Cl(0),
            true,
            b"",
        ),
        ok(
            "http/1.0 keep-alive without length",
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody",
            200,
            CloseDelimited,
            false,
            b"body",
        ),
        ok(
            "obs-fold in an ordinary field",
            b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\tc\r\nContent-Length: 0\r\n\r\n",
            200,
            Cl(0),
            true,
            b"",
        ),
        ok("empty value", b"HTTP/1.1 200 OK\r\nPragma:\r\nContent-Length: 0\r\n\r\n", 200, Cl(0), true, b""),
        Valid {
            name: "response to head",
            raw: b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
            head_request: true,
            status: 200,
            framing: NoBody,
            keep_alive: true,
            body: b"",
        },
    ];

    fn head_len(v: &Valid) -> (usize, Head) {
        match parse_head(v.raw, v.head_request) {
            Ok(Status::Complete(n, head)) => (n, head),
            other => panic!("{}: {other:?}", v.name),
        }
    }

    /// Decodes a chunked body fed in pieces of `step` bytes; returns (body, consumed).
    fn dechunk(body: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), WireError> {
        let mut dec = ChunkedDecoder::new(u64::MAX);
        let mut out = Vec::new();
        let mut used = 0;
        for piece in body.chunks(step.max(1)) {
            let n = dec.feed(piece, |d| out.extend_from_slice(d))?;
            used += n;
            if dec.is_done() {
                break;
            }
        }
        assert_eq!(dec.body_len(), out.len() as u64);
        Ok((out, used, dec.is_done()))
    }

    #[test]
    fn valid_responses_parse_to_their_status_framing_and_body() {
        for v in VALID {
            let (n, head) = head_len(v);
            assert_eq!(head.status, v.status, "{}", v.name);
            assert_eq!(head.framing, v.framing, "{}", v.name);
            assert_eq!(head.keep_alive, v.keep_alive, "{}", v.name);
            let rest = &v.raw[n..];
            let body = match head.framing {
                NoBody => {
                    assert!(rest.is_empty(), "{}", v.name);
                    Vec::new()
                }
                Cl(len) => {
                    assert_eq!(rest.len() as u64, len, "{}", v.name);
                    rest.to_vec()
                }
                Chunked => {
                    let (body, used, done) = dechunk(rest, rest.len()).expect(v.name);
                    assert!(done && used == rest.len(), "{}", v.name);
                    body
                }
                CloseDelimited => rest.to_vec(),
            };
            assert_eq!(body, v.body, "{}", v.name);
        }
    }

    #[test]
    fn every_prefix_of_a_valid_head_is_partial_and_never_an_error() {
        for v in VALID {
            let (n, head) = head_len(v);
            for i in 0..n {
                assert_eq!(
                    parse_head(&v.raw[..i], v.head_request),
                    Ok(Status::Partial),
                    "{}: prefix of {i} bytes",
                    v.name
                );
            }
            for i in n..=v.raw.len() {
                assert_eq!(
                    parse_head(&v.raw[..i], v.head_request),
                    Ok(Status::Complete(n, head)),
                    "{}: {i} bytes",
                    v.name
                );
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_identically_in_any_pieces() {
        for v in VALID.iter().filter(|v| v.framing == Chunked) {
            let (n, _) = head_len(v);
            let rest = &v.raw[n..];
            for step in 1..=rest.len() {
                let (body, used, done) = dechunk(rest, step).expect(v.name);
                assert!(done, "{}: step {step}", v.name);
                assert_eq!(used, rest.len(), "{}: step {step}", v.name);
                assert_eq!(body, v.body, "{}: step {step}", v.name);
            }
            // Every prefix of the body leaves the decoder waiting, never done and never failing.
            for i in 0..rest.len() {
                let (_, used, done) = dechunk(&rest[..i], 1).expect(v.name);
                assert!(!done && used == i, "{}: body prefix {i}", v.name);
            }
        }
    }

    #[test]
    fn chunked_decoder_stops_at_the_end_of_the_body() {
        let mut dec = ChunkedDecoder::new(u64::MAX);
        let input = b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK";
        let mut body = Vec::new();
        let used = dec
            .feed(input, |d| body.extend_from_slice(d))
            .expect("valid");
        assert!(dec.is_done());
        assert_eq!(used, input.len() - b"HTTP/1.1 200 OK".len());
        assert_eq!(body, b"abc");
        assert_eq!(dec.decode(b"more").expect("done").consumed, 0);
    }

    #[test]
    fn malformed_heads_are_rejected_with_their_error() {
        use WireError::*;
        let table: &[(&str, &[u8], WireError)] = &[
            ("garbage", b"\x16\x03\x01\x02\x00", StatusLine),
            ("lowercase name", b"http/1.1 200 OK\r\n\r\n", StatusLine),
            ("bad protocol", b"HTTPER/1.1 200 OK\r\n\r\n", StatusLine),
            ("http/2", b"HTTP/2.0 200 OK\r\n\r\n", Version),
            ("http/5.6", b"HTTP/5.6 200 OK\r\n\r\n", Version),
            ("no minor", b"HTTP/1 200 OK\r\n\r\n", StatusLine),
            (
                "two spaces before code",
                b"HTTP/1.1  200 OK\r\n\r\n",
                StatusLine,
            ),
            ("one-digit code", b"HTTP/1.1 2 OK\r\n\r\n", StatusLine),
            ("four-digit code", b"HTTP/1.1 2000 OK\r\n\r\n", StatusLine),
            ("code below 100", b"HTTP/1.1 099 OK\r\n\r\n", StatusLine),
            ("ctl in reason", b"HTTP/1.1 200 O\x01K\r\n\r\n", StatusLine),
            (
                "bare cr in status line",
                b"HTTP/1.1 200\rOK\r\n\r\n",
                BareCr,
            ),
            (
                "bare cr between headers",
                b"HTTP/1.1 200 OK\r\nFoo: 1\rBar: 2\r\n\r\n",
                BareCr,
            ),
            ("bare cr leading", b"\rHTTP/1.1 200 OK\r\n\r\n", BareCr),
            (
                "space in name",
                b"HTTP/1.1 200 OK\r\nen-US Content-Type: x\r\n\r\n",
                HeaderName,
            ),
            (
                "space before colon",
                b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
                HeaderName,
            ),
            (
                "no colon",
                b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Credentials\r\n\r\n",
                HeaderName,
            ),
            ("empty name", b"HTTP/1.1 200 OK\r\n: x\r\n\r\n", HeaderName),
            (
                "nul in value",
                b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
                HeaderValue,
            ),
            (
                "fold after status line",
                b"HTTP/1.1 200 OK\r\n Host: foo\r\n\r\n",
                ObsFold,
            ),
            (
                "folded content-length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 2\r\n\r\n",
                ObsFold,
            ),
            (
                "conflicting cl",
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 7\r\n\r\n",
                ContentLength,
            ),
            (
                "conflicting cl list",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                ContentLength,
            ),
            (
                "empty cl",
                b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
                ContentLength,
            ),
            (
                "signed cl",
                b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
                ContentLength,
            ),
            (
                "hex cl",
                b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n",
                ContentLength,
            ),
            (
                "cl overflow",
                b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
                ContentLength,
            ),
            (
                "cl on 204 still checked",
                b"HTTP/1.1 204 OK\r\nContent-Length: x\r\n\r\n",
                ContentLength,
            ),
            (
                "te on http/1.0",
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                TransferEncoding,
            ),
            (
                "chunked twice",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                TransferEncoding,
            ),
            (
                "101",
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                UnexpectedUpgrade,
            ),
            (
                "101 after 100",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n",
                UnexpectedUpgrade,
            ),
        ];
        for (name, raw, want) in table {
            assert_eq!(parse_head(raw, false), Err(*want), "{name}");
        }
    }

    #[test]
    fn heads_over_64_kib_are_too_large_even_while_partial() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        while raw.len() <= MAX_HEAD {
            raw.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(parse_head(&raw, false), Err(WireError::HeadTooLarge));
        raw.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&raw, false), Err(WireError::HeadTooLarge));
        assert_eq!(WireError::HeadTooLarge.kind(), ErrorKind::TooLarge);
        assert_eq!(WireError::StatusLine.kind(), ErrorKind::Malformed);
    }

    #[test]
    fn head_of_exactly_the_limit_is_accepted() {
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        raw.resize(MAX_HEAD - 4, b'v');
        raw.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(
            parse_head(&raw, false),
            Ok(Status::Complete(MAX_HEAD, _))
        ));
    }

    #[test]
    fn malformed_chunked_bodies_are_rejected_in_any_pieces() {
        use WireError::*;
        let table: &[(&str, &[u8], WireError)] = &[
            ("no size", b"\r\n", ChunkSize),
            ("not hex", b"g\r\n", ChunkSize),
            (
                "size then junk",
                b"2 erfrferferf\r\naa\r\n0\r\n\r\n",
                ChunkSize,
            ),
            ("trailing spaces without extension", b"25  \r\n", ChunkSize),
            ("negative", b"-1\r\n", ChunkSize),
            (
                "overflow 17 hex digits",
                b"1ffffffffffffffff\r\nabc",
                ChunkSize,
            ),
            (
                "unterminated quote",
                b"5;a=\"abc\r\nhello\r\n0\r\n\r\n",
                ChunkExtension,
            ),
            (
                "extension without name",
                b"5;=x\r\nhello\r\n0\r\n\r\n",
                ChunkExtension,
            ),
            (
                "space inside extension name",
                b"5;a b\r\nhello\r\n0\r\n\r\n",
                ChunkExtension,
            ),
            (
                "double semicolon",
                b"5;;a\r\nhello\r\n0\r\n\r\n",
                ChunkExtension,
            ),
            ("bare cr after size", b"5\r\r;ABCD\r\n", BareCr),
            ("data without crlf", b"5\r\nABCDE0\r\n", ChunkEnd),
            ("data with junk terminator", b"3\r\nxxx__1a\r\n", ChunkEnd),
            ("bad trailer", b"0\r\nno colon here\r\n\r\n", Trailer),
            (
                "fold as first trailer line",
                b"0\r\n folded\r\n\r\n",
                Trailer,
            ),
            ("bare cr after last chunk", b"0\r\n\rX", BareCr),
        ];
        for (name, body, want) in table {
            for step in [1, 2, 3, body.len()] {
                assert_eq!(
                    dechunk(body, step).map(|_| ()),
                    Err(*want),
                    "{name} (pieces of {step})"
                );
            }
        }
    }

    #[test]
    fn chunked_limits_are_enforced() {
        let over = ChunkedDecoder::new(10).feed(b"5\r\nhello\r\n6\r\n", |_| ());
        assert_eq!(over, Err(WireError::BodyTooLarge));
        let fits = ChunkedDecoder::new(10).feed(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", |_| ());
        assert!(fits.is_ok());
        // The size alone is checked before any data: a 2^64-1 chunk never waits for its bytes.
        let huge = ChunkedDecoder::new(1 << 20).feed(b"ffffffffffffffff\r\nabc", |_| ());
        assert_eq!(huge, Err(WireError::BodyTooLarge));

        let mut long_ext = b"1;".to_vec();
        long_ext.resize(MAX_CHUNK_LINE + 10, b'a');
        assert_eq!(
            ChunkedDecoder::new(u64::MAX).feed(&long_ext, |_| ()),
            Err(WireError::LineTooLong)
        );
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() <= MAX_TRAILERS + 10 {
            trailers.extend_from_slice(b"X-Trailer: value\r\n");
        }
        assert_eq!(
            ChunkedDecoder::new(u64::MAX).feed(&trailers, |_| ()),
            Err(WireError::LineTooLong)
        );
    }

    #[test]
    fn mutated_messages_never_panic_or_overrun() {
        // A deterministic poor man's fuzzer: flip, insert and drop bytes of every valid message;
        // the reader may accept or reject, but must never panic, and a `Complete` length must lie
        // within the input.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        const BYTES: &[u8] = b"\r\n :;=\"\\\t0aAfFzZ\x00\x7f\xff,";
        for v in VALID {
            for _ in 0..500 {
                let mut m = v.raw.to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % (m.len() as u64 + 1)) as usize;
                    let b = BYTES[(next() % BYTES.len() as u64) as usize];
                    match next() % 3 {
                        0 if at < m.len() => m[at] = b,
                        1 => m.insert(at, b),
                        _ if at < m.len() => {
                            m.remove(at);
                        }
                        _ => {}
                    }
                }
                if let Ok(Status::Complete(n, _)) = parse_head(&m, v.head_request) {
                    assert!(n <= m.len(), "{}: {m:?}", v.name);
                    let _ = dechunk(&m[n..], 1 + (next() % 7) as usize);
                }
            }
        }
    }

    #[test]
    fn wire_errors_become_request_errors_of_their_kind() {
        let e: RequestError = WireError::ChunkSize.into();
        assert_eq!(e.kind, ErrorKind::Malformed);
        assert_eq!(e.to_string(), "malformed: invalid chunk size");
        let e: RequestError = WireError::BodyTooLarge.into();
        assert_eq!(e.kind, ErrorKind::TooLarge);
        let e: RequestError = WireError::Truncated.into();
        assert_eq!(e.kind, ErrorKind::Reset);
        assert_eq!(e.to_string(), "reset: connection closed mid-body");
    }

    /// What reading a body yielded: the data, the input consumed, and whether it was done.
    #[derive(Debug, PartialEq)]
    struct Read {
        body: Vec<u8>,
        consumed: usize,
        done: bool,
    }

    /// Reads `input` through a [`BodyReader`] in pieces of `step` bytes, then (if `eof`) ends the
    /// connection; checks that each piece's `Progress` agrees with the data handed out.
    fn read_body(
        framing: Framing,
        max_body: u64,
        input: &[u8],
        step: usize,
        eof: bool,
    ) -> Result<Read, WireError> {
        let mut reader = BodyReader::new(framing, max_body);
        let mut read = Read {
            body: Vec::new(),
            consumed: 0,
            done: reader.is_done(),
        };
        let mut pieces = input.chunks(step.max(1)).peekable();
        // An empty input is still fed once: that is when a Content-Length over the limit fails.
        if pieces.peek().is_none() {
            read.done = reader.feed(&[], |_| {})?.done;
        }
        for piece in pieces {
            let before = read.body.len();
            let p = reader.feed(piece, |d| read.body.extend_from_slice(d))?;
            assert_eq!(p.body, (read.body.len() - before) as u64);
            assert!(p.consumed <= piece.len());
            assert!(
                p.consumed == piece.len() || p.done,
                "stopped early without being done"
            );
            assert_eq!(p.done, reader.is_done());
            read.consumed += p.consumed;
            read.done = p.done;
            if p.done {
                break;
            }
        }
        if eof {
            reader.finish()?;
            assert!(reader.is_done());
            read.done = true;
        }
        assert_eq!(reader.body_len(), read.body.len() as u64);
        assert!(reader.body_len() <= max_body);
        Ok(read)
    }

    #[test]
    fn bodies_of_every_framing_read_identically_in_any_pieces() {
        for v in VALID {
            let (n, head) = head_len(v);
            let rest = &v.raw[n..];
            // Only a close-delimited body needs the end of the connection to be complete.
            let eof = head.framing == CloseDelimited;
            for step in 1..=rest.len().max(1) {
                let read = read_body(head.framing, u64::MAX, rest, step, eof).expect(v.name);
                let want = Read {
                    body: v.body.to_vec(),
                    consumed: rest.len(),
                    done: true,
                };
                assert_eq!(read, want, "{}: pieces of {step}", v.name);
            }
        }
    }

    #[test]
    fn every_prefix_of_a_body_waits_and_ending_there_is_truncation() {
        for v in VALID {
            let (n, head) = head_len(v);
            let rest = &v.raw[n..];
            for i in 0..rest.len() {
                let prefix = &rest[..i];
                let read = read_body(head.framing, u64::MAX, prefix, 1, false).expect(v.name);
                assert!(
                    !read.done,
                    "{}: done after {i} of {} bytes",
                    v.name,
                    rest.len()
                );
                assert_eq!(read.consumed, i, "{}: prefix {i}", v.name);
                let at_eof = read_body(head.framing, u64::MAX, prefix, prefix.len(), true);
                match head.framing {
                    CloseDelimited => {
                        assert_eq!(at_eof.map(|r| r.body), Ok(prefix.to_vec()), "{}", v.name)
                    }
                    _ => assert_eq!(
                        at_eof,
                        Err(WireError::Truncated),
                        "{}: eof after {i}",
                        v.name
                    ),
                }
            }
        }
    }

    #[test]
    fn bytes_after_a_body_are_left_for_the_caller() {
        let next = b"HTTP/1.1 200 OK\r\n\r\n";
        for v in VALID
            .iter()
            .filter(|v| !matches!(head_len(v).1.framing, CloseDelimited))
        {
            let (n, head) = head_len(v);
            let mut input = v.raw[n..].to_vec();
            input.extend_from_slice(next);
            for step in [1, 2, 7, input.len()] {
                let read = read_body(head.framing, u64::MAX, &input, step, false).expect(v.name);
                assert!(read.done, "{}", v.name);
                assert_eq!(read.consumed, input.len() - next.len(), "{}", v.name);
                assert_eq!(read.body, v.body, "{}", v.name);
            }
        }
        // Once done, a reader takes nothing more and the end of the connection changes nothing.
        let mut reader = BodyReader::new(Cl(2), 10);
        assert_eq!(
            reader.feed(b"okHTTP", |_| {}),
            Ok(Progress {
                consumed: 2,
                body: 2,
                done: true
            })
        );
        assert_eq!(
            reader.feed(b"more", |_| {}),
            Ok(Progress {
                consumed: 0,
                body: 0,
                done: true
            })
        );
        assert_eq!(reader.finish(), Ok(()));
        assert_eq!(reader.body_len(), 2);
    }

    #[test]
    fn body_errors_by_framing() {
        use WireError::*;
        /// (name, framing, limit, input, end of connection after it, error)
        type Case = (&'static str, Framing, u64, &'static [u8], bool, WireError);
        let table: &[Case] = &[
            (
                "length over limit, before any byte",
                Cl(11),
                10,
                b"",
                false,
                BodyTooLarge,
            ),
            (
                "length over limit, bytes here",
                Cl(11),
                10,
                b"hello world",
                false,
                BodyTooLarge,
            ),
            ("length cut short", Cl(5), 10, b"hel", true, Truncated),
            ("length, nothing arrived", Cl(5), 10, b"", true, Truncated),
            (
                "chunk over limit",
                Chunked,
                4,
                b"5\r\nhello\r\n0\r\n\r\n",
                false,
                BodyTooLarge,
            ),
            (
                "chunks over limit together",
                Chunked,
                8,
                b"5\r\nhello\r\n5\r\n",
                false,
                BodyTooLarge,
            ),
            (
                "chunked cut in data",
                Chunked,
                10,
                b"5\r\nhel",
                true,
                Truncated,
            ),
            (
                "chunked cut before trailers end",
                Chunked,
                10,
                b"0\r\nX: 1\r\n",
                true,
                Truncated,
            ),
            ("chunked cut in size", Chunked, 10, b"5", true, Truncated),
            ("chunked bad size", Chunked, 10, b"z\r\n", false, ChunkSize),
            (
                "until close over limit",
                CloseDelimited,
                4,
                b"hello",
                false,
                BodyTooLarge,
            ),
            (
                "until close over limit at eof",
                CloseDelimited,
                4,
                b"hello",
                true,
                BodyTooLarge,
            ),
        ];
        for &(name, framing, max, input, eof, want) in table {
            for step in [1, 2, input.len().max(1)] {
                assert_eq!(
                    read_body(framing, max, input, step, eof),
                    Err(want),
                    "{name} (pieces of {step})"
                );
            }
        }
        // At the limit exactly is fine, for every framing.
        for (framing, input) in [
            (Cl(5), &b"hello"[..]),
            (Chunked, b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"),
            (CloseDelimited, b"hello"),
        ] {
            let read = read_body(framing, 5, input, 1, framing == CloseDelimited);
            assert_eq!(read.map(|r| r.body), Ok(b"hello".to_vec()), "{framing:?}");
        }
        // No body: done before any byte, and the end of the connection is no error.
        let read = read_body(NoBody, 0, b"", 1, true).expect("no body");
        assert_eq!((read.body.len(), read.done), (0, true));
    }

    #[test]
    fn malformed_chunked_bodies_fail_the_same_through_the_body_reader() {
        // The chunked table above, through `BodyReader` instead of the bare decoder.
        for body in [
            &b"g\r\n"[..],
            b"5;=x\r\nhello\r\n0\r\n\r\n",
            b"5\r\r;ABCD\r\n",
            b"5\r\nABCDE0\r\n",
            b"0\r\nno colon here\r\n\r\n",
        ] {
            let direct = dechunk(body, 1).map(|_| ());
            assert!(direct.is_err());
            for step in [1, 3, body.len()] {
                assert_eq!(
                    read_body(Chunked, u64::MAX, body, step, false).map(|_| ()),
                    direct,
                    "{body:?}"
                );
            }
        }
    }
}
