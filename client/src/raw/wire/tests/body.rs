//! `BodyReader` over every framing, through the shared harness (`wire::testing::read_body`).

use super::cases::{VALID, dechunk, head_len};
use crate::raw::wire::body::{BodyReader, Progress};
use crate::raw::wire::testing::{self, Read};
use crate::raw::wire::types::Framing::{
    self, Chunked, CloseDelimited, ContentLength as Cl, NoBody,
};
use crate::raw::wire::types::WireError;

/// The shared harness in pieces of `step` bytes; a promise the reader breaks fails the test.
fn read_body(
    framing: Framing,
    max_body: u64,
    input: &[u8],
    step: usize,
    eof: bool,
) -> Result<Read, WireError> {
    testing::read_body(framing, max_body, input, &[step], eof)
        .unwrap_or_else(|broken| panic!("{broken}"))
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
