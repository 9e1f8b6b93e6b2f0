//! `parse_head` on the valid responses, every prefix of them, the malformed heads and the limit.

use super::cases::{VALID, dechunk, head_len};
use crate::error::ErrorKind;
use crate::raw::wire::head::parse_head;
use crate::raw::wire::types::Framing::{Chunked, CloseDelimited, ContentLength as Cl, NoBody};
use crate::raw::wire::types::{MAX_HEAD, Status, WireError};

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
