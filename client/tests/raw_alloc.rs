//! Heap allocations per request of the raw client in steady state, through the real counting
//! allocator (one heap test per file: the test harness allocates too).
//!
//! The in-test server is allocation-free after accepting, so the process-wide count is the
//! client's; the test prints the measured allocations per request.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread;
use std::time::Duration;

use leak_client::raw::conn::RawClient;
use leak_client::variant::{BodyMode, Variant, VariantConfig};

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"ok\":true,\"path_len\":1000}";

/// Answers every request on one keep-alive connection with `RESPONSE`, allocating nothing: the
/// end of each request head is found with a 4-byte matcher over a stack buffer.
fn serve_one_connection(listener: TcpListener) {
    let Ok((mut s, _)) = listener.accept() else {
        return;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 8192];
    let mut matched = 0;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            matched = match (matched, b) {
                (0 | 2, b'\r') => matched + 1,
                (1 | 3, b'\n') => matched + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if matched == 4 {
                matched = 0;
                if s.write_all(RESPONSE).is_err() {
                    return;
                }
            }
        }
    }
}

#[test]
fn steady_state_requests_make_almost_no_heap_allocations() {
    const WARMUP: usize = 200;
    const N: usize = 2000;

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = thread::spawn(move || serve_one_connection(listener));

    let mut client = RawClient::new(VariantConfig {
        timeout: Duration::from_secs(5),
        timeout_mode: leak_client::variant::TimeoutMode::Phases,
        body: BodyMode::Read,
        max_body: 1 << 20,
        pool_idle: None,
        connections_opened: Arc::new(AtomicU64::new(0)),
    });
    // Every URL is unique and ~1000 characters, as in the real workload; it is formatted into one
    // reused String so the test's own URL generation allocates nothing either.
    let mut url = String::with_capacity(2048);
    let pad = "p".repeat(950);
    let mut request = |i: usize, url: &mut String| {
        url.clear();
        write!(url, "http://{addr}/leak/{i:010}/{pad}").expect("format");
        let outcome = client.get(url).expect("request");
        assert_eq!((outcome.status, outcome.body_bytes), (200, 27));
    };

    for i in 0..WARMUP {
        request(i, &mut url);
    }
    let before = heapmeter::snapshot();
    for i in WARMUP..WARMUP + N {
        request(i, &mut url);
    }
    let after = heapmeter::snapshot();
    assert!(before.installed);

    let allocs = after.allocs - before.allocs;
    let per_request = allocs as f64 / N as f64;
    let live_growth = after.live as i64 - before.live as i64;
    println!(
        "raw client steady state: {allocs} allocations in {N} requests = {per_request:.4}/request; \
         live bytes {live_growth:+}"
    );
    assert!(per_request < 0.05, "{per_request} allocations per request");

    drop(client);
    server.join().expect("server thread");
}
