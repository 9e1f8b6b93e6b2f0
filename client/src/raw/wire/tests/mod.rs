//! The wire's unit tests: `cases` holds the valid responses every part is checked against;
//! `head`, `chunked` and `body` test one part each; here, what crosses the parts (mutated
//! messages, the error mapping).

mod body;
mod cases;
mod chunked;
mod head;

use crate::error::{ErrorKind, RequestError};
use crate::raw::wire::head::parse_head;
use crate::raw::wire::types::{Status, WireError};
use cases::{VALID, dechunk};

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
