//! The server does not leak: after rounds of load (keep-alive, knobs, bad input, clients
//! hanging up) live heap returns to its baseline. Its own test binary, with its own counting
//! allocator, because the test harness allocates too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use latency_server::{Config, RunningServer, Server};

#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

const LINGER: Duration = Duration::from_millis(100);

/// One round: 20 keep-alive connections × 25 requests with assorted knobs, plus bad input.
fn load(addr: SocketAddr) {
    let queries = [
        "",
        "?bytes=5000",
        "?chunked=1",
        "?status=404",
        "?close=1",
        "?bad=1&status=x",
    ];
    let clients: Vec<_> = (0..20)
        .map(|c| {
            thread::spawn(move || {
                let mut tcp = TcpStream::connect(addr).expect("connect");
                tcp.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                let path = format!("/{}", "p".repeat(1000));
                for i in 0..25 {
                    let q = queries[(c + i) % queries.len()];
                    let req =
                        format!("GET {path}{q} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                    // A fresh connection per request: Connection: close, read to EOF.
                    if i > 0 {
                        tcp = TcpStream::connect(addr).expect("connect");
                        tcp.set_read_timeout(Some(Duration::from_secs(10)))
                            .expect("timeout");
                    }
                    tcp.write_all(req.as_bytes()).expect("send");
                    let mut sink = Vec::new();
                    let _ = tcp.read_to_end(&mut sink);
                }
                for raw in [
                    &b"\xff\xfe garbage\r\n\r\n"[..],
                    b"GET /half HTTP/1.1\r\nHo",
                ] {
                    let mut tcp = TcpStream::connect(addr).expect("connect");
                    let _ = tcp.write_all(raw);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
}

/// Waits until nothing is in flight, no connection is open and idle workers retired.
fn quiesce(server: &RunningServer) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = server.stats();
        if s.in_flight == 0 && s.open_connections == 0 && s.workers == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never quiet: {s:?}");
        thread::sleep(Duration::from_millis(20));
    }
    // tiny_http's own idle connection threads hold a few allocations until they retire (5 s);
    // their number is bounded by the peak of connections, so repeat rounds compare equal.
    thread::sleep(LINGER * 3);
    heapmeter::snapshot().live
}

#[test]
fn live_heap_returns_to_baseline_after_load() {
    let server = Server::start(Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        latency: Duration::from_millis(1),
        report_every: None,
        idle_timeout: Duration::from_secs(2),
        worker_idle: LINGER,
        ..Config::default()
    })
    .expect("start");
    let addr = server.addr();
    load(addr); // warm-up: lazily initialised statics, thread pools at their peak
    let baseline = quiesce(&server);
    let mut after = Vec::new();
    for _ in 0..3 {
        load(addr);
        after.push(quiesce(&server));
    }
    eprintln!("live heap: baseline {baseline} B, after each round {after:?}");
    let served = server.stats().served;
    assert!(served >= 4 * 400, "served {served}");
    let worst = after.iter().max().copied().unwrap_or_default();
    // 1500 requests per round: a leak of even 100 bytes per request would add 150 KB a
    // round, and grow across rounds.
    assert!(
        worst <= baseline + 64 * 1024,
        "live heap after load {after:?} vs baseline {baseline}"
    );
    let last = server.shutdown(Duration::from_secs(5));
    assert!(
        last.heap_live.is_some(),
        "the counting allocator is installed"
    );
}
