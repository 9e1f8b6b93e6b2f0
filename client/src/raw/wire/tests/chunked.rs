//! `ChunkedDecoder` on its own: bodies in any pieces, where it stops, malformed bodies, limits.

use super::cases::{VALID, dechunk, head_len};
use crate::raw::wire::chunked::ChunkedDecoder;
use crate::raw::wire::types::Framing::Chunked;
use crate::raw::wire::types::{MAX_CHUNK_LINE, MAX_TRAILERS, WireError};

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
