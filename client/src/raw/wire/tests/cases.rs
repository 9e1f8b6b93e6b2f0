//! The valid responses every part of the wire is checked against, and the two readers the tests
//! share: a head's length and a chunked body decoded in pieces.

use crate::raw::wire::chunked::ChunkedDecoder;
use crate::raw::wire::head::parse_head;
use crate::raw::wire::types::Framing::{Chunked, CloseDelimited, ContentLength as Cl, NoBody};
use crate::raw::wire::types::{Framing, Head, Status, WireError};

/// A well-formed response and what reading it must yield.
pub(super) struct Valid {
    pub(super) name: &'static str,
    pub(super) raw: &'static [u8],
    pub(super) head_request: bool,
    pub(super) status: u16,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
    /// Decoded body (for close-delimited: everything after the head).
    pub(super) body: &'static [u8],
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

pub(super) const VALID: &[Valid] = &[
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

pub(super) fn head_len(v: &Valid) -> (usize, Head) {
    match parse_head(v.raw, v.head_request) {
        Ok(Status::Complete(n, head)) => (n, head),
        other => panic!("{}: {other:?}", v.name),
    }
}

/// Decodes a chunked body fed in pieces of `step` bytes; returns (body, consumed).
pub(super) fn dechunk(body: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), WireError> {
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
