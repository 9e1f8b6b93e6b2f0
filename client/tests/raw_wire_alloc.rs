//! The raw client's pure reader makes no heap allocation: `parse_head` and `BodyReader` over
//! generated valid responses and mostly-invalid bytes, counted by the real counting allocator
//! (one heap test per file: the test harness allocates too). Generating the inputs allocates;
//! only the reading is inside the counted window.

#[allow(dead_code)]
mod raw_gen;

use leak_client::raw::wire::{self, BodyReader, Status};
use proptest::prelude::*;

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

/// Reads a whole response as the raw client would, the body in pieces of `step` bytes, then the
/// end of the connection; returns the body bytes seen (so nothing is optimised away).
fn read_response(bytes: &[u8], head_request: bool, step: usize, max_body: u64) -> u64 {
    let Ok(Status::Complete(n, head)) = wire::parse_head(bytes, head_request) else {
        return 0;
    };
    let mut body = BodyReader::new(head.framing, max_body);
    let mut seen = 0;
    for piece in bytes[n..].chunks(step) {
        match body.feed(piece, |d| seen += d.len() as u64) {
            Ok(p) if p.done => break,
            Ok(_) => {}
            Err(_) => return seen,
        }
    }
    let _ = body.finish();
    seen
}

proptest! {
    #[test]
    fn reading_responses_allocates_nothing(
        (bytes, head_request) in prop_oneof![
            raw_gen::response().prop_map(|g| (g.raw, g.head_request)),
            raw_gen::mostly_invalid().prop_map(|b| (b, false)),
        ],
        step in 1usize..64,
        max_body in prop_oneof![Just(u64::MAX), 0u64..200],
    ) {
        let before = heapmeter::snapshot();
        let seen = read_response(&bytes, head_request, step, max_body);
        let after = heapmeter::snapshot();
        prop_assert!(before.installed);
        prop_assert_eq!(after.allocs - before.allocs, 0, "allocations reading {} bytes", bytes.len());
        prop_assert!(std::hint::black_box(seen) <= bytes.len() as u64);
    }
}
