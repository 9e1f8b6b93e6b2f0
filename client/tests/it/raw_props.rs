//! Property tests of the raw client's pure reader (`parse_head` and `BodyReader`): generated
//! valid responses read back to what was generated, whatever pieces they arrive in; arbitrary
//! bytes never panic, are judged the same in any pieces, and never make the reader wait past its
//! documented limits.
//!
//! Each property runs `PROPTEST_CASES` cases (proptest's default, 256, in the normal suite);
//! `just fuzz DURATION` runs them again and again with more cases and fresh seeds.

use crate::raw_gen;

use leak_client::raw::wire::testing::{self, Read};
use leak_client::raw::wire::{
    self, Framing, MAX_CHUNK_LINE, MAX_HEAD, MAX_TRAILERS, Status, WireError,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use raw_gen::Generated;

/// The shared harness (`wire::testing::read_body`, the one the wire's unit tests use too); a
/// promise the reader breaks fails the case.
fn read_body(
    framing: Framing,
    max_body: u64,
    input: &[u8],
    pieces: &[usize],
    eof: bool,
) -> Result<Result<Read, WireError>, TestCaseError> {
    testing::read_body(framing, max_body, input, pieces, eof).map_err(TestCaseError::fail)
}

fn pieces() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![1usize..4, 1usize..64, 1usize..2048], 1..8)
}

/// The head and the body of a generated response read back to what was generated.
fn check_generated(g: &Generated, cuts: &[Index], pieces: &[usize]) -> Result<(), TestCaseError> {
    let n = g.head_len;
    let head = wire::parse_head(&g.raw, g.head_request);
    prop_assert_eq!(
        head,
        Ok(Status::Complete(n, g.head)),
        "{:?}",
        String::from_utf8_lossy(&g.raw)
    );
    for cut in cuts {
        let m = cut.index(n);
        prop_assert_eq!(
            wire::parse_head(&g.raw[..m], g.head_request),
            Ok(Status::Partial),
            "prefix of {} bytes",
            m
        );
    }

    // A body that does not end with the connection leaves the next response's bytes alone.
    let close = g.head.framing == Framing::CloseDelimited;
    let next = b"HTTP/1.1 200 OK\r\n";
    let mut input = g.raw[n..].to_vec();
    if !close {
        input.extend_from_slice(next);
    }
    let read = read_body(g.head.framing, u64::MAX, &input, pieces, close)?;
    let consumed = if close {
        input.len()
    } else {
        input.len() - next.len()
    };
    prop_assert_eq!(
        read,
        Ok(Read {
            body: g.body.clone(),
            consumed,
            done: true,
        })
    );
    // At a limit of exactly its size the body still fits; one byte less and it does not.
    let size = g.body.len() as u64;
    let fits = read_body(g.head.framing, size, &input, pieces, close)?;
    prop_assert!(fits.is_ok(), "{:?}", fits);
    if size > 0 {
        let over = read_body(g.head.framing, size - 1, &input, pieces, close)?;
        prop_assert_eq!(over.map(|r| r.body.len()), Err(WireError::BodyTooLarge));
    }
    Ok(())
}

/// `parse_head` on any bytes: no panic; a `Complete` head lies within the input and the limit
/// and every shorter prefix of it is `Partial`; `Partial` only within the limit, and then every
/// prefix is `Partial` too (a valid prefix is never an error).
fn check_head_bytes(bytes: &[u8], head_request: bool, cuts: &[Index]) -> Result<(), TestCaseError> {
    match wire::parse_head(bytes, head_request) {
        Ok(Status::Complete(n, head)) => {
            prop_assert!(n <= bytes.len() && n <= MAX_HEAD);
            for cut in cuts {
                let m = cut.index(bytes.len() + 1);
                let want = if m < n {
                    Ok(Status::Partial)
                } else {
                    Ok(Status::Complete(n, head))
                };
                prop_assert_eq!(
                    wire::parse_head(&bytes[..m], head_request),
                    want,
                    "prefix {}",
                    m
                );
            }
        }
        Ok(Status::Partial) => {
            prop_assert!(bytes.len() <= MAX_HEAD);
            for cut in cuts {
                let m = cut.index(bytes.len() + 1);
                prop_assert_eq!(
                    wire::parse_head(&bytes[..m], head_request),
                    Ok(Status::Partial),
                    "prefix {}",
                    m
                );
            }
        }
        Err(_) => {}
    }
    Ok(())
}

proptest! {
    #[test]
    fn generated_responses_read_back_to_what_was_generated(
        g in raw_gen::response(),
        cuts in vec(any::<Index>(), 0..12),
        pieces in pieces(),
    ) {
        check_generated(&g, &cuts, &pieces)?;
    }

    #[test]
    fn any_bytes_as_a_head_never_panic_and_prefixes_agree(
        bytes in raw_gen::mostly_invalid(),
        head_request in prop::bool::weighted(0.1),
        cuts in vec(any::<Index>(), 0..12),
    ) {
        check_head_bytes(&bytes, head_request, &cuts)?;
    }

    #[test]
    fn any_bytes_as_a_body_are_judged_the_same_in_any_pieces(
        framing in raw_gen::framing(),
        max_body in prop_oneof![Just(u64::MAX), 0u64..600],
        input in raw_gen::mostly_invalid_body(),
        pieces in pieces(),
        eof in any::<bool>(),
    ) {
        let whole = read_body(framing, max_body, &input, &[usize::MAX], eof)?;
        let split = read_body(framing, max_body, &input, &pieces, eof)?;
        prop_assert_eq!(&whole, &split);
        if let Ok(read) = &whole {
            prop_assert!(read.done || read.consumed == input.len());
        }
    }

    #[test]
    fn heads_past_the_limit_are_refused_never_awaited(
        len in (MAX_HEAD - 64)..(MAX_HEAD + 64),
        filler in raw_gen::value_of_len(64),
        end_head in any::<bool>(),
    ) {
        // One long field: complete (if it ends) within the limit, refused past it.
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        while raw.len() < len {
            let take = filler.len().min(len - raw.len());
            raw.extend_from_slice(&filler[..take]);
        }
        if end_head {
            raw.extend_from_slice(b"\r\n\r\n");
        }
        match (raw.len() <= MAX_HEAD, end_head, wire::parse_head(&raw, false)) {
            (true, true, Ok(Status::Complete(n, _))) => prop_assert_eq!(n, raw.len()),
            (true, false, Ok(Status::Partial)) | (false, _, Err(WireError::HeadTooLarge)) => {}
            (_, _, got) => {
                return Err(TestCaseError::fail(format!(
                    "{} bytes (ended: {end_head}): {got:?}",
                    raw.len()
                )));
            }
        }
    }

    #[test]
    fn chunk_lines_and_trailers_are_refused_past_their_limits(
        line_len in (MAX_CHUNK_LINE - 32)..(MAX_CHUNK_LINE + 32),
        trailer_len in (MAX_TRAILERS - 32)..(MAX_TRAILERS + 32),
        ended in any::<bool>(),
        pieces in pieces(),
    ) {
        // A chunk-size line of exactly `line_len` bytes, CRLF included (or never ended).
        let mut line = b"1;x=".to_vec();
        line.resize(line_len - 2, b'a');
        line.extend_from_slice(if ended { b"\r\n" } else { b"aa" });
        let got = read_body(Framing::Chunked, u64::MAX, &line, &pieces, false)?;
        if line_len > MAX_CHUNK_LINE {
            prop_assert_eq!(got, Err(WireError::LineTooLong));
        } else {
            prop_assert_eq!(got.map(|r| r.consumed), Ok(line_len));
        }
        // A trailer section of exactly `trailer_len` bytes after the last chunk, final CRLF
        // included (or never ended).
        let mut body = b"0\r\n".to_vec();
        let start = body.len();
        while body.len() - start + 26 <= trailer_len {
            body.extend_from_slice(b"X-T: 0123456789abc\r\n");
        }
        let pad = trailer_len - (body.len() - start) - 6;
        body.extend_from_slice(b"Y:");
        body.resize(body.len() + pad, b'v');
        body.extend_from_slice(if ended { b"\r\n\r\n" } else { b"vvvv" });
        prop_assert_eq!(body.len() - start, trailer_len);
        let got = read_body(Framing::Chunked, u64::MAX, &body, &pieces, false)?;
        if trailer_len > MAX_TRAILERS {
            prop_assert_eq!(got, Err(WireError::LineTooLong));
        } else {
            prop_assert_eq!(got, Ok(Read { body: Vec::new(), consumed: body.len(), done: ended }));
        }
    }
}
