//! Test support, not API: the one `read_body` harness that the wire's unit tests and
//! `tests/it/raw_props.rs` both read bodies through; it allocates, and the client never calls it.

use super::body::BodyReader;
use super::types::{Framing, WireError};

/// What reading a body yielded: the data, the input consumed, and whether it was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub body: Vec<u8>,
    pub consumed: usize,
    pub done: bool,
}

/// Returns `Err` with the message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Feeds `input` to a fresh [`BodyReader`] in pieces whose sizes cycle through `pieces` (a 0
/// counts as 1; an empty input is still fed once, which is when a Content-Length over the limit
/// fails), stopping once the body is done; then, if `eof`, ends the connection.
///
/// `Ok(result)` is what the reader made of the input. `Err` names a promise the reader broke,
/// checked after every piece whatever the input: progress agrees with the data handed out,
/// nothing past the piece is claimed, the reader stops early only when done and says so, the body
/// never exceeds `max_body`; and the end of the connection fails only with `Truncated`, only for
/// a body that is neither done nor close-delimited, and otherwise leaves the reader done.
pub fn read_body(
    framing: Framing,
    max_body: u64,
    input: &[u8],
    pieces: &[usize],
    eof: bool,
) -> Result<Result<Read, WireError>, String> {
    let mut reader = BodyReader::new(framing, max_body);
    let mut read = Read {
        body: Vec::new(),
        consumed: 0,
        done: reader.is_done(),
    };
    let mut sizes = pieces.iter().copied().map(|n| n.max(1)).cycle();
    let mut rest = input;
    loop {
        let size = sizes.next().unwrap_or(1).min(rest.len());
        let (piece, after) = rest.split_at(size);
        let before = read.body.len();
        let p = match reader.feed(piece, |d| read.body.extend_from_slice(d)) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let handed_out = (read.body.len() - before) as u64;
        ensure!(
            p.body == handed_out,
            "progress counts {} body bytes, {handed_out} were handed out",
            p.body
        );
        ensure!(
            p.consumed <= piece.len(),
            "consumed {} bytes of a {}-byte piece",
            p.consumed,
            piece.len()
        );
        ensure!(
            p.consumed == piece.len() || p.done,
            "stopped early without being done"
        );
        ensure!(
            p.done == reader.is_done(),
            "progress says done: {}, the reader {}",
            p.done,
            reader.is_done()
        );
        read.consumed += p.consumed;
        read.done = p.done;
        check_len(&reader, &read, max_body)?;
        rest = after;
        if p.done || rest.is_empty() {
            break;
        }
    }
    if eof {
        match reader.finish() {
            Ok(()) => {
                ensure!(reader.is_done(), "not done after the end of the connection");
                read.done = true;
            }
            Err(e) => {
                ensure!(
                    e == WireError::Truncated,
                    "the end of the connection failed with {e:?}"
                );
                ensure!(
                    !read.done && framing != Framing::CloseDelimited,
                    "truncated, yet done: {}, framing {framing:?}",
                    read.done
                );
                return Ok(Err(e));
            }
        }
    }
    check_len(&reader, &read, max_body)?;
    Ok(Ok(read))
}

/// The reader's body length is what it handed out, and within the limit.
fn check_len(reader: &BodyReader, read: &Read, max_body: u64) -> Result<(), String> {
    ensure!(
        reader.body_len() == read.body.len() as u64,
        "body_len {} after handing out {} bytes",
        reader.body_len(),
        read.body.len()
    );
    ensure!(
        reader.body_len() <= max_body,
        "body_len {} over the limit {max_body}",
        reader.body_len()
    );
    Ok(())
}
