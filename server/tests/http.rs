//! End-to-end tests over real TCP on port 0, written with raw sockets: what a client sees
//! byte for byte, including the misbehaviour knobs, limits, bad input and shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use latency_server::{Config, RunningServer, Server, StatsSnapshot};

const MS: Duration = Duration::from_millis(1);
/// No socket read in these tests waits longer than this: a hang fails, it never stalls CI.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Tests whose assertions are about timing under load take turns, so they never compete
/// with each other for the two cores.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn start(config: Config) -> RunningServer {
    Server::start(Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        report_every: None,
        ..config
    })
    .expect("server starts")
}

fn start_with_latency(latency: Duration) -> RunningServer {
    start(Config {
        latency,
        ..Config::default()
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    tcp.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    tcp
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// One parsed response, as bytes arrived.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Reads one response from `r` (Content-Length, chunked, or until EOF); `None` on EOF
/// before any byte.
fn read_response(r: &mut impl BufRead, head_request: bool) -> Option<Response> {
    let mut line = String::new();
    if r.read_line(&mut line).expect("status line") == 0 {
        return None;
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header colon");
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head_request || matches!(status, 204 | 304) {
        return Some(response);
    }
    if response.header("Transfer-Encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                break;
            }
            response.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = response.header("Content-Length") {
        let mut body = vec![0; len.parse().expect("length")];
        r.read_exact(&mut body).expect("body");
        response.body = body;
    } else {
        r.read_to_end(&mut response.body).expect("body to EOF");
    }
    Some(response)
}

/// Sends `raw` on a new connection and reads one response.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut tcp = connect(addr);
    tcp.write_all(raw).expect("send");
    read_response(&mut BufReader::new(tcp), false).expect("a response")
}

/// True when the peer closes `tcp` (EOF or reset) without sending any byte.
fn closed_without_bytes(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match tcp.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn wait_until_idle(server: &RunningServer) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.stats().in_flight > 0 {
        assert!(Instant::now() < deadline, "requests never finished");
        thread::sleep(MS);
    }
}

fn stats_over_http(addr: SocketAddr) -> StatsSnapshot {
    let r = exchange(addr, get("/__stats").as_bytes());
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).expect("stats JSON")
}

#[test]
fn a_1000_char_path_and_a_16_kib_path_get_200_with_json() {
    let server = start_with_latency(Duration::ZERO);
    for len in [1000, 16 * 1024, 60 * 1024] {
        let path = format!("/{}", "a".repeat(len - 1));
        let r = exchange(server.addr(), get(&path).as_bytes());
        assert_eq!(r.status, 200, "path of {len}");
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.json()["path_len"], len, "path of {len}");
    }
}

#[test]
fn latency_is_honoured_and_reported() {
    let server = start_with_latency(150 * MS);
    let t = Instant::now();
    let r = exchange(server.addr(), get("/x").as_bytes());
    assert!(t.elapsed() >= 150 * MS, "answered after {:?}", t.elapsed());
    assert_eq!(r.json()["latency_ms"], 150);
    assert_eq!(r.json()["seq"], 1);
}

#[test]
fn a_hundred_concurrent_requests_overlap_instead_of_queueing() {
    let _turn = heavy();
    let server = start_with_latency(300 * MS);
    let addr = server.addr();
    let barrier = Arc::new(Barrier::new(100));
    let t = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                exchange(addr, get(&format!("/c/{i}")).as_bytes()).status
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().expect("client"), 200);
    }
    // Serially this takes 30 s; concurrently about 0.3 s. 10 s leaves room for a slow CI.
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert!(server.stats().peak_in_flight <= 100);
    assert_eq!(server.stats().served, 100);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = start_with_latency(Duration::ZERO);
    let tcp = connect(server.addr());
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    let mut writer = tcp;
    for seq in 1..=5 {
        writer.write_all(get("/k").as_bytes()).expect("send");
        let r = read_response(&mut reader, false).expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Connection"), None);
        assert_eq!(r.json()["seq"], seq);
    }
    assert_eq!(server.stats().connections, 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = start_with_latency(Duration::ZERO);
    let tcp = connect(server.addr());
    let mut writer = tcp.try_clone().expect("clone");
    // The first sleeps longer than the second: responses must still come in order.
    let both = format!("{}{}", get("/1?latency_ms=200"), get("/22?latency_ms=0"));
    writer.write_all(both.as_bytes()).expect("send");
    let mut reader = BufReader::new(tcp);
    let first = read_response(&mut reader, false).expect("first");
    let second = read_response(&mut reader, false).expect("second");
    assert_eq!(first.json()["path_len"], 2);
    assert_eq!(second.json()["path_len"], 3);
}

#[test]
fn pipelined_requests_sleep_at_the_same_time_not_one_after_another() {
    let _turn = heavy();
    let server = start_with_latency(Duration::from_secs(1));
    let tcp = connect(server.addr());
    let mut writer = tcp.try_clone().expect("clone");
    let three = format!("{}{}{}", get("/a"), get("/bb"), get("/ccc"));
    let t = Instant::now();
    writer.write_all(three.as_bytes()).expect("send");
    let mut reader = BufReader::new(tcp);
    for path_len in [2, 3, 4] {
        let r = read_response(&mut reader, false).expect("response");
        assert_eq!(r.json()["path_len"], path_len, "in order");
    }
    // One after another this takes 3 s; at the same time about 1 s.
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(server.stats().served, 3);
    assert_eq!(
        server.served(),
        3,
        "the counter alone agrees with the snapshot"
    );
}

#[test]
fn a_request_sent_while_another_sleeps_on_its_connection_starts_sleeping_at_once() {
    let _turn = heavy();
    let server = start_with_latency(Duration::from_millis(1500));
    let tcp = connect(server.addr());
    let mut writer = tcp.try_clone().expect("clone");
    let t = Instant::now();
    writer.write_all(get("/first").as_bytes()).expect("send");
    thread::sleep(300 * MS);
    writer.write_all(get("/second").as_bytes()).expect("send");
    let mut reader = BufReader::new(tcp);
    let first = read_response(&mut reader, false).expect("first");
    let second = read_response(&mut reader, false).expect("second");
    assert_eq!(first.json()["path_len"], 6);
    assert_eq!(second.json()["path_len"], 7);
    assert!(
        t.elapsed() >= 1800 * MS,
        "second answered after {:?}",
        t.elapsed()
    );
    // Waiting for the first to finish first, the second would end after 3 s.
    assert!(
        t.elapsed() < Duration::from_millis(2700),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn a_client_that_closes_its_side_after_the_request_still_gets_the_response() {
    let server = start_with_latency(200 * MS);
    let mut tcp = connect(server.addr());
    tcp.write_all(get("/half").as_bytes()).expect("send");
    tcp.shutdown(std::net::Shutdown::Write).expect("half-close");
    let t = Instant::now();
    let r = read_response(&mut BufReader::new(tcp), false).expect("response");
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= 150 * MS, "answered after {:?}", t.elapsed());
}

#[test]
fn http10_without_keep_alive_is_closed_and_with_it_is_kept() {
    let server = start_with_latency(Duration::ZERO);
    let mut tcp = connect(server.addr());
    tcp.write_all(b"GET /a HTTP/1.0\r\n\r\n").expect("send");
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    let r = read_response(&mut reader, false).expect("response");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(read_response(&mut reader, false).is_none(), "closed after");

    let mut tcp = connect(server.addr());
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    for _ in 0..2 {
        tcp.write_all(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .expect("send");
        let r = read_response(&mut reader, false).expect("response");
        assert_eq!(r.header("Connection"), Some("keep-alive"));
    }
}

#[test]
fn any_method_is_served_and_head_gets_no_body() {
    let server = start_with_latency(Duration::ZERO);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let raw = format!("{method} /m HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(
            exchange(server.addr(), raw.as_bytes()).status,
            200,
            "{method}"
        );
    }
    let mut tcp = connect(server.addr());
    tcp.write_all(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    let r = read_response(&mut reader, true).expect("head response");
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Length").is_some());
    // The next response on the connection starts right after the head: no body in between.
    tcp.write_all(get("/after-head").as_bytes()).expect("send");
    assert_eq!(read_response(&mut reader, false).expect("next").status, 200);
}

#[test]
fn request_bodies_are_consumed_so_keep_alive_stays_in_sync() {
    let server = start_with_latency(Duration::ZERO);
    let tcp = connect(server.addr());
    let mut writer = tcp.try_clone().expect("clone");
    let mut reader = BufReader::new(tcp);
    let big = "x".repeat(100_000);
    let raw = format!(
        "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    writer.write_all(raw.as_bytes()).expect("send");
    assert_eq!(read_response(&mut reader, false).expect("r").status, 200);
    let chunked =
        "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    writer.write_all(chunked.as_bytes()).expect("send");
    assert_eq!(read_response(&mut reader, false).expect("r").status, 200);
    writer.write_all(get("/next").as_bytes()).expect("send");
    assert_eq!(
        read_response(&mut reader, false).expect("r").json()["path_len"],
        5
    );
}

#[test]
fn a_body_over_one_mib_gets_413_and_a_close() {
    let server = start_with_latency(Duration::ZERO);
    let mut tcp = connect(server.addr());
    tcp.write_all(b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000000\r\n\r\nxx")
        .expect("send");
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    let r = read_response(&mut reader, false).expect("response");
    assert_eq!(r.status, 413);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(read_response(&mut reader, false).is_none());
    assert_eq!(server.stats().bad_requests, 1);
}

#[test]
fn status_knob_sets_the_status() {
    let server = start_with_latency(Duration::ZERO);
    for code in [201u16, 404, 500, 503, 599] {
        let r = exchange(server.addr(), get(&format!("/s?status={code}")).as_bytes());
        assert_eq!(r.status, code);
        assert!(r.json()["seq"].as_u64().is_some());
    }
    let r = exchange(server.addr(), get("/s?status=204").as_bytes());
    assert_eq!((r.status, r.body.len()), (204, 0));
}

#[test]
fn bytes_knob_sizes_the_body_exactly() {
    let server = start_with_latency(Duration::ZERO);
    for n in [0usize, 5, 100, 1 << 20] {
        let r = exchange(server.addr(), get(&format!("/b?bytes={n}")).as_bytes());
        assert_eq!(r.body.len(), n);
        assert_eq!(r.header("Content-Length"), Some(n.to_string().as_str()));
        if n >= 100 {
            assert_eq!(r.json()["path_len"], 2, "padded JSON stays valid");
        }
    }
}

#[test]
fn chunked_knob_uses_chunked_framing() {
    let server = start_with_latency(Duration::ZERO);
    let r = exchange(server.addr(), get("/c?chunked=1&bytes=70000").as_bytes());
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.body.len(), 70000);
    let r = exchange(server.addr(), get("/c?chunked=1").as_bytes());
    assert_eq!(r.json()["path_len"], 2);
}

#[test]
fn close_knob_answers_then_closes_the_connection() {
    let server = start_with_latency(Duration::ZERO);
    let mut tcp = connect(server.addr());
    tcp.write_all(get("/c?close=1").as_bytes()).expect("send");
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    let r = read_response(&mut reader, false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    // The server closes it: the next read sees EOF without the client closing first.
    assert!(read_response(&mut reader, false).is_none());
    let _ = tcp.write_all(get("/again").as_bytes());
}

#[test]
fn drop_knob_closes_without_any_response_after_the_latency() {
    let server = start_with_latency(Duration::ZERO);
    let mut tcp = connect(server.addr());
    let t = Instant::now();
    tcp.write_all(get("/d?drop=1&latency_ms=100").as_bytes())
        .expect("send");
    assert!(closed_without_bytes(&mut tcp));
    assert!(t.elapsed() >= 100 * MS);
    // The server is fine afterwards.
    assert_eq!(exchange(server.addr(), get("/ok").as_bytes()).status, 200);
}

#[test]
fn drip_knob_slows_the_body_down() {
    let server = start_with_latency(Duration::ZERO);
    let t = Instant::now();
    let r = exchange(server.addr(), get("/d?drip_ms=20&bytes=1600").as_bytes());
    assert_eq!(r.body.len(), 1600);
    // 16 pauses of 20 ms.
    assert!(t.elapsed() >= 16 * 20 * MS, "took {:?}", t.elapsed());
    let r = exchange(
        server.addr(),
        get("/d?drip_ms=5&chunked=1&bytes=50").as_bytes(),
    );
    assert_eq!(r.body.len(), 50);
}

#[test]
fn latency_ms_overrides_the_configured_latency() {
    let server = start_with_latency(Duration::from_secs(30));
    let t = Instant::now();
    let r = exchange(server.addr(), get("/l?latency_ms=10").as_bytes());
    assert_eq!(r.json()["latency_ms"], 10);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn invalid_knobs_get_400_with_one_line_and_unknown_ones_are_ignored() {
    let server = start_with_latency(Duration::ZERO);
    for query in [
        "status=abc",
        "bytes=-1",
        "chunked=2",
        "drip_ms=x",
        "latency_ms=9999999",
    ] {
        let r = exchange(server.addr(), get(&format!("/k?{query}")).as_bytes());
        assert_eq!(r.status, 400, "{query}");
        let text = r.text();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.starts_with("invalid "), "{text:?}");
    }
    let r = exchange(server.addr(), get("/k?color=blue&x").as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(server.stats().bad_requests, 5);
}

#[test]
fn past_max_in_flight_the_server_answers_503_at_once() {
    let server = start(Config {
        latency: Duration::from_secs(2),
        max_in_flight: 2,
        ..Config::default()
    });
    let addr = server.addr();
    let mut sleepers: Vec<_> = (0..2)
        .map(|_| {
            let mut tcp = connect(addr);
            tcp.write_all(get("/slow").as_bytes()).expect("send");
            tcp
        })
        .collect();
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.stats().in_flight < 2 {
        assert!(Instant::now() < deadline, "requests never went in flight");
        thread::sleep(5 * MS);
    }
    let t = Instant::now();
    let r = exchange(addr, get("/one-too-many").as_bytes());
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "503 took {:?}",
        t.elapsed()
    );
    let s = server.stats();
    assert_eq!((s.in_flight, s.rejected_503, s.peak_in_flight), (2, 1, 2));
    for tcp in &mut sleepers {
        let r = read_response(&mut BufReader::new(tcp), false).expect("slow response");
        assert_eq!(r.status, 200);
    }
}

#[test]
fn malformed_input_gets_4xx_and_the_next_client_is_served() {
    let server = start_with_latency(Duration::ZERO);
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(70 * 1024));
    let many_headers = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        "X-Filler: 0123456789abcdef\r\n".repeat(3000)
    );
    let table: &[(&[u8], u16)] = &[
        (b"\x00\x01\x02garbage\xff\xfe\r\n\r\n", 400),
        (b"NOT A REQUEST\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX-Bin: \xff\xfe\r\n\r\n", 400),
        (long_line.as_bytes(), 414),
        (many_headers.as_bytes(), 431),
    ];
    for (raw, want) in table {
        let r = exchange(server.addr(), raw);
        assert_eq!(
            r.status,
            *want,
            "for {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        );
        assert_eq!(exchange(server.addr(), get("/next").as_bytes()).status, 200);
    }
}

#[test]
fn clients_vanishing_mid_request_or_mid_sleep_hurt_no_one() {
    let server = start_with_latency(200 * MS);
    let addr = server.addr();
    for raw in [
        &b"GET /half"[..],
        b"GET /half HTTP/1.1\r\nHost:",
        b"GET /gone HTTP/1.1\r\n\r\n",
    ] {
        let mut tcp = connect(addr);
        tcp.write_all(raw).expect("send");
        drop(tcp);
    }
    // A client that hangs up during the sleep: its worker finds the socket gone.
    let r = exchange(addr, get("/fine").as_bytes());
    assert_eq!(r.status, 200);
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.stats().in_flight > 0 {
        assert!(Instant::now() < deadline);
        thread::sleep(5 * MS);
    }
    assert_eq!(exchange(addr, get("/fine").as_bytes()).status, 200);
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    // Pins that accepted sockets inherit SO_RCVTIMEO from the listener.
    let server = start(Config {
        latency: Duration::ZERO,
        idle_timeout: 300 * MS,
        ..Config::default()
    });
    let t = Instant::now();
    let mut silent = connect(server.addr());
    let mut half = connect(server.addr());
    half.write_all(b"GET /half-written HTTP/1.1\r\nHo")
        .expect("send");
    assert!(closed_without_bytes(&mut silent));
    assert!(closed_without_bytes(&mut half));
    let waited = t.elapsed();
    assert!(
        waited >= 250 * MS && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.stats().open_connections > 0 {
        assert!(Instant::now() < deadline, "connection threads never ended");
        thread::sleep(5 * MS);
    }
}

#[test]
fn a_silent_keep_alive_connection_waits_one_idle_timeout_not_more() {
    let _turn = heavy();
    let server = start(Config {
        latency: Duration::ZERO,
        idle_timeout: Duration::from_secs(1),
        ..Config::default()
    });
    let tcp = connect(server.addr());
    let mut writer = tcp.try_clone().expect("clone");
    let mut reader = BufReader::new(tcp);
    writer.write_all(get("/once").as_bytes()).expect("send");
    assert_eq!(
        read_response(&mut reader, false).expect("response").status,
        200
    );
    let t = Instant::now();
    assert!(
        read_response(&mut reader, false).is_none(),
        "closed, no bytes"
    );
    // Two timeouts in a row (one per read attempt) would take 2 s.
    let waited = t.elapsed();
    assert!(
        waited >= 900 * MS && waited < 1900 * MS,
        "closed after {waited:?}"
    );
}

#[test]
fn stats_endpoint_counts_right() {
    let before_start = Instant::now();
    let server = start(Config {
        latency: Duration::ZERO,
        max_in_flight: 1,
        ..Config::default()
    });
    let after_start = Instant::now();
    let addr = server.addr();
    for _ in 0..3 {
        assert_eq!(exchange(addr, get("/ok").as_bytes()).status, 200);
        // A worker counts as in flight until it is back in the pool, a moment after its
        // response left: with a limit of 1, wait for it before the next request.
        wait_until_idle(&server);
    }
    assert_eq!(exchange(addr, get("/bad?status=1").as_bytes()).status, 400);
    let mut sleeper = connect(addr);
    sleeper
        .write_all(get("/sleep?latency_ms=1000").as_bytes())
        .expect("send");
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.stats().in_flight < 1 {
        assert!(Instant::now() < deadline);
        thread::sleep(5 * MS);
    }
    assert_eq!(exchange(addr, get("/busy").as_bytes()).status, 503);

    let asked = Instant::now();
    let s = stats_over_http(addr);
    let answered = before_start.elapsed();
    assert_eq!(s.served, 3);
    assert_eq!(s.in_flight, 1);
    assert_eq!(s.peak_in_flight, 1);
    assert_eq!(s.rejected_503, 1);
    assert_eq!(s.bad_requests, 1);
    assert!(s.connections >= 7, "{s:?}");
    assert!(s.open_connections >= 2, "{s:?}");
    assert!(s.workers >= 1);
    assert_eq!(
        s.heap_live, None,
        "no counting allocator in this test binary"
    );
    assert!(s.rss.is_some_and(|r| r > 0));
    // The server's clock starts inside `start`: its uptime at the answer is at least the time
    // from `start`'s return to the request, and at most the time from before `start` to the
    // answer (both whole milliseconds, truncated alike). `> 0` failed on a fast machine, where
    // all of the above took under a millisecond.
    let at_least = asked.duration_since(after_start).as_millis() as u64;
    let at_most = answered.as_millis() as u64;
    assert!(
        (at_least..=at_most).contains(&s.uptime_ms),
        "uptime {} ms, not within {at_least}..={at_most} ms",
        s.uptime_ms
    );
    assert_eq!(
        read_response(&mut BufReader::new(sleeper), false)
            .expect("r")
            .status,
        200
    );
    assert_eq!(server.stats().served, 4);
}

#[test]
fn graceful_shutdown_finishes_requests_in_flight_and_stops_accepting() {
    let server = start_with_latency(Duration::ZERO);
    let addr = server.addr();
    let idle = connect(addr);
    let mut idle_writer = idle.try_clone().expect("clone");
    let mut idle_reader = BufReader::new(idle);
    idle_writer
        .write_all(get("/first").as_bytes())
        .expect("send");
    assert_eq!(
        read_response(&mut idle_reader, false)
            .expect("first")
            .status,
        200
    );
    // The first job counts as in flight until its worker is back: wait for that.
    wait_until_idle(&server);
    let mut inflight = connect(addr);
    inflight
        .write_all(get("/in-flight?latency_ms=300").as_bytes())
        .expect("send");
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.stats().in_flight < 1 {
        assert!(Instant::now() < deadline, "request never went in flight");
        thread::sleep(5 * MS);
    }

    let last = server.shutdown(Duration::from_secs(5));
    assert_eq!(last.in_flight, 0);
    assert_eq!(last.served, 2);
    let r = read_response(&mut BufReader::new(inflight), false).expect("in-flight response");
    assert_eq!(r.status, 200);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );

    // A keep-alive connection that speaks again is told to go away, then closed.
    idle_writer
        .write_all(get("/late").as_bytes())
        .expect("send");
    let r = read_response(&mut idle_reader, false).expect("late response");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(read_response(&mut idle_reader, false).is_none());
}

#[test]
fn a_burst_of_200_keep_alive_connections_all_get_a_first_response_within_2s() {
    let _turn = heavy();
    let server = start_with_latency(50 * MS);
    let addr = server.addr();
    let n = 200;
    let barrier = Arc::new(Barrier::new(n));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, answered) = (barrier.clone(), answered.clone());
            thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let tcp = connect(addr);
                let mut writer = tcp.try_clone().expect("clone");
                let mut reader = BufReader::new(tcp);
                let mut first = None;
                // Every connection keeps its connection busy until all have been answered
                // (or 3 s passed): a connection parked behind busy ones would starve.
                while first.is_none()
                    || (answered.load(Relaxed) < n && start.elapsed() < Duration::from_secs(3))
                {
                    writer
                        .write_all(get(&format!("/burst/{i}")).as_bytes())
                        .expect("send");
                    let r = read_response(&mut reader, false).expect("response");
                    assert_eq!(r.status, 200);
                    if first.is_none() {
                        first = Some(start.elapsed());
                        answered.fetch_add(1, Relaxed);
                    }
                }
                first.unwrap_or_default()
            })
        })
        .collect();
    let firsts: Vec<Duration> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    let slowest = firsts.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(2),
        "slowest first response {slowest:?}"
    );
    assert!(server.stats().connections >= n as u64);
}

#[test]
fn cookie_knob_and_set_cookie_flag_send_set_cookie_headers() {
    let server = start(Config {
        latency: Duration::ZERO,
        set_cookies: vec!["session=abc".into(), "theme=dark".into()],
        ..Config::default()
    });
    let r = exchange(server.addr(), get("/c/1").as_bytes());
    let cookies: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Set-Cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["session=abc; Path=/", "theme=dark; Path=/"]);

    let plain = start_with_latency(Duration::ZERO);
    assert_eq!(
        exchange(plain.addr(), get("/c/1").as_bytes()).header("Set-Cookie"),
        None
    );
    let r = exchange(plain.addr(), get("/c/2?cookie=1").as_bytes());
    let seq = r.json()["seq"].as_u64().expect("seq");
    assert_eq!(
        r.header("Set-Cookie"),
        Some(format!("leakprobe={seq}; Path=/").as_str())
    );
    let r = exchange(plain.addr(), get("/c/3?cookie=maybe").as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("invalid cookie="), "{}", r.text());
}

/// Whether this machine has an IPv6 loopback address, from `/proc/net/if_inet6` (Linux).
fn ipv6_loopback_configured() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|t| {
        t.lines()
            .any(|l| l.starts_with("00000000000000000000000000000001"))
    })
}

#[test]
fn localhost_serves_on_127_0_0_1_and_on_ipv6_loopback_at_one_port() {
    assert!(
        ipv6_loopback_configured(),
        "this test needs ::1 on the loopback interface (`ip -6 addr show lo` lists none): \
         enable IPv6 (`sysctl net.ipv6.conf.lo.disable_ipv6=0`) to run it"
    );
    let server = start(Config {
        localhost: true,
        latency: Duration::ZERO,
        ..Config::default()
    });
    let addrs = server.addrs().to_vec();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_eq!(addrs[0].ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_eq!(addrs[1].ip(), std::net::Ipv6Addr::LOCALHOST);
    assert_eq!(addrs[0].port(), addrs[1].port());
    assert_ne!(addrs[0].port(), 0);
    assert_eq!(
        server.url(),
        format!("http://localhost:{}", addrs[0].port())
    );
    for (i, addr) in addrs.iter().enumerate() {
        let r = exchange(*addr, get(&format!("/family/{i}")).as_bytes());
        assert_eq!(r.status, 200, "{addr}");
        assert_eq!(
            r.json()["seq"],
            i as u64 + 1,
            "one counter for both: {addr}"
        );
    }
    // Both families' connections in one set of counters.
    let stats = stats_over_http(addrs[1]);
    assert_eq!(stats.served, 2);
    assert!(stats.connections >= 3, "{stats:?}");
    // Shutdown stops both listeners.
    let ports: Vec<SocketAddr> = addrs.clone();
    server.shutdown(Duration::from_secs(1));
    for addr in ports {
        assert!(TcpStream::connect(addr).is_err(), "{addr} still accepts");
    }
}

#[test]
fn localhost_needs_the_ipv4_loopback_address() {
    let err = Server::start(Config {
        addr: "0.0.0.0:0".parse().expect("addr"),
        localhost: true,
        report_every: None,
        ..Config::default()
    })
    .expect_err("localhost on 0.0.0.0");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}
