//! The response head parser, `parse_head`: status line and header fields validated in place,
//! interim 1xx heads skipped, the body's framing and the connection's reuse decided; nothing
//! stored, nothing buffered.

use super::syntax::{is_tchar, is_value_byte};
use super::types::{Framing, Head, MAX_HEAD, Status, WireError};

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
