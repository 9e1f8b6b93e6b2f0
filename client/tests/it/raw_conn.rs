//! The raw client's connection behaviour against tiny in-test servers on 127.0.0.1:0 that write
//! scripted raw bytes: reuse, reconnects, framing, limits and each error kind.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use leak_client::error::ErrorKind;
use leak_client::raw::conn::RawClient;
use leak_client::variant::{BodyMode, Outcome, Variant, VariantConfig};

/// What the server does with one request.
enum Reply {
    /// Write the bytes and wait for the next request on this connection.
    Keep(Vec<u8>),
    /// Write the bytes, then close the connection.
    Close(Vec<u8>),
    /// Write the bytes, then go silent (until the client leaves, at most a few seconds).
    Hold(Vec<u8>),
}

struct Server {
    base: String,
    accepted: Arc<AtomicUsize>,
    requests: mpsc::Receiver<Vec<u8>>,
}

/// Starts a server whose `reply(connection, request_on_connection)` scripts every answer.
fn serve(reply: impl Fn(usize, usize) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (tx, requests) = mpsc::channel();
    let reply = Arc::new(reply);
    let counter = accepted.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let conn = counter.fetch_add(1, SeqCst);
            let (reply, tx) = (reply.clone(), tx.clone());
            thread::spawn(move || handle(stream, conn, &*reply, &tx));
        }
    });
    Server {
        base,
        accepted,
        requests,
    }
}

fn handle(
    mut s: TcpStream,
    conn: usize,
    reply: &dyn Fn(usize, usize) -> Reply,
    tx: &mpsc::Sender<Vec<u8>>,
) {
    // Bounds every test: a forgotten connection ends on its own.
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut pending = Vec::new();
    for n in 0.. {
        let request = loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break pending.drain(..end + 4).collect::<Vec<u8>>();
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(k) => pending.extend_from_slice(&chunk[..k]),
            }
        };
        let _ = tx.send(request);
        match reply(conn, n) {
            Reply::Keep(bytes) => {
                if s.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Close(bytes) => {
                let _ = s.write_all(&bytes);
                let _ = s.shutdown(Shutdown::Write);
                // Drain until the client closes, so our close is a FIN and not a RST.
                let _ = s.read(&mut [0u8; 64]);
                return;
            }
            Reply::Hold(bytes) => {
                let _ = s.write_all(&bytes);
                let _ = s.read(&mut [0u8; 64]);
                return;
            }
        }
    }
}

fn config(timeout: Duration, body: BodyMode, max_body: u64) -> VariantConfig {
    VariantConfig {
        timeout,
        timeout_mode: leak_client::variant::TimeoutMode::Phases,
        body,
        max_body,
        pool_idle: None,
        connections_opened: Arc::new(AtomicU64::new(0)),
    }
}

fn client() -> (RawClient, Arc<AtomicU64>) {
    client_with(config(Duration::from_secs(5), BodyMode::Read, 1 << 30))
}

fn client_with(cfg: VariantConfig) -> (RawClient, Arc<AtomicU64>) {
    let opened = cfg.connections_opened.clone();
    (RawClient::new(cfg), opened)
}

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn ok(status: u16, body_bytes: u64) -> Outcome {
    Outcome { status, body_bytes }
}

#[test]
fn keep_alive_reuses_one_connection_for_many_requests() {
    let server = serve(|_, _| Reply::Keep(HELLO.to_vec()));
    let (mut c, opened) = client();
    for i in 0..50 {
        let url = format!("{}/unique/{i:04}?q={i}", server.base);
        assert_eq!(c.get(&url), Ok(ok(200, 5)), "request {i}");
    }
    assert_eq!(opened.load(SeqCst), 1);
    assert_eq!(server.accepted.load(SeqCst), 1);
    let first = server.requests.recv().expect("request");
    let host = server.base.trim_start_matches("http://");
    let want = format!(
        "GET /unique/0000?q=0 HTTP/1.1\r\nHost: {host}\r\nUser-Agent: leakprobe-raw/0.1\r\n\
         Accept: */*\r\nConnection: keep-alive\r\n\r\n"
    );
    assert_eq!(String::from_utf8_lossy(&first), want);
}

#[test]
fn server_closing_an_idle_connection_is_retried_silently() {
    // No `Connection: close`: the client believes it may reuse, finds the socket closed, retries.
    let server = serve(|_, _| Reply::Close(HELLO.to_vec()));
    let (mut c, opened) = client();
    for i in 0..10 {
        assert_eq!(
            c.get(&format!("{}/r{i}", server.base)),
            Ok(ok(200, 5)),
            "request {i}"
        );
    }
    assert_eq!(opened.load(SeqCst), 10);
}

#[test]
fn connection_close_opens_a_new_connection_per_request() {
    let resp = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec();
    let server = serve(move |_, _| Reply::Close(resp.clone()));
    let (mut c, opened) = client();
    for i in 0..5 {
        assert_eq!(c.get(&format!("{}/c{i}", server.base)), Ok(ok(200, 2)));
    }
    assert_eq!(opened.load(SeqCst), 5);
    assert_eq!(server.accepted.load(SeqCst), 5);
}

#[test]
fn chunked_bodies_are_decoded_and_the_connection_reused() {
    let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n 123456789\r\n0\r\nT: 1\r\n\r\n"
        .to_vec();
    let server = serve(move |_, _| Reply::Keep(resp.clone()));
    let (mut c, opened) = client();
    for i in 0..3 {
        assert_eq!(c.get(&format!("{}/k{i}", server.base)), Ok(ok(200, 15)));
    }
    assert_eq!(opened.load(SeqCst), 1);
}

#[test]
fn a_large_chunked_body_spanning_many_reads_is_counted() {
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..64 {
        resp.extend_from_slice(b"1000\r\n");
        resp.extend_from_slice(&[b'z'; 0x1000]);
        resp.extend_from_slice(b"\r\n");
    }
    resp.extend_from_slice(b"0\r\n\r\n");
    let server = serve(move |_, _| Reply::Keep(resp.clone()));
    let (mut c, opened) = client();
    for i in 0..3 {
        assert_eq!(
            c.get(&format!("{}/big{i}", server.base)),
            Ok(ok(200, 64 * 4096))
        );
    }
    assert_eq!(opened.load(SeqCst), 1);
}

#[test]
fn close_delimited_bodies_are_read_to_the_end() {
    let server = serve(|_, _| Reply::Close(b"HTTP/1.1 200 OK\r\n\r\nuntil close".to_vec()));
    let (mut c, opened) = client();
    for i in 0..3 {
        assert_eq!(c.get(&format!("{}/e{i}", server.base)), Ok(ok(200, 11)));
    }
    assert_eq!(opened.load(SeqCst), 3);
}

#[test]
fn interim_responses_are_skipped_and_error_statuses_returned() {
    let server = serve(|_, n| {
        Reply::Keep(if n == 0 {
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!".to_vec()
        } else {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnah".to_vec()
        })
    });
    let (mut c, opened) = client();
    assert_eq!(c.get(&format!("{}/a", server.base)), Ok(ok(200, 1)));
    assert_eq!(c.get(&format!("{}/b", server.base)), Ok(ok(404, 3)));
    assert_eq!(opened.load(SeqCst), 1);
}

#[test]
fn a_connection_dropped_without_a_response_is_a_reset() {
    let server = serve(|_, _| Reply::Close(Vec::new()));
    let (mut c, _) = client();
    let e = c
        .get(&format!("{}/x", server.base))
        .expect_err("no response");
    assert_eq!(e.kind, ErrorKind::Reset, "{e}");
}

#[test]
fn a_reused_connection_is_retried_only_once() {
    // First request answered; every later request (on any connection) dropped unanswered.
    let server = serve(|conn, n| {
        Reply::Close(if conn == 0 && n == 0 {
            HELLO.to_vec()
        } else {
            Vec::new()
        })
    });
    let (mut c, opened) = client();
    assert_eq!(c.get(&format!("{}/1", server.base)), Ok(ok(200, 5)));
    let e = c
        .get(&format!("{}/2", server.base))
        .expect_err("dropped twice");
    assert_eq!(e.kind, ErrorKind::Reset, "{e}");
    assert_eq!(opened.load(SeqCst), 2);
}

#[test]
fn eof_mid_body_is_a_reset() {
    let server =
        serve(|_, _| Reply::Close(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec()));
    let (mut c, _) = client();
    let e = c.get(&format!("{}/x", server.base)).expect_err("truncated");
    assert_eq!(e.kind, ErrorKind::Reset, "{e}");
}

#[test]
fn a_silent_server_is_a_timeout() {
    let server = serve(|_, _| Reply::Hold(Vec::new()));
    let (mut c, _) = client_with(config(Duration::from_millis(200), BodyMode::Read, 1 << 20));
    let t0 = Instant::now();
    let e = c.get(&format!("{}/x", server.base)).expect_err("silent");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_stall_mid_body_is_a_timeout() {
    let server = serve(|_, _| {
        Reply::Hold(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec())
    });
    let (mut c, _) = client_with(config(Duration::from_millis(200), BodyMode::Read, 1 << 20));
    let e = c.get(&format!("{}/x", server.base)).expect_err("stalled");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
}

#[test]
fn a_server_dripping_the_body_slower_than_the_timeout_allows_is_a_timeout() {
    // Each byte arrives well within the per-read timeout, but the whole body would take 10 s.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let _ = s.read(&mut [0u8; 4096]);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        for _ in 0..100 {
            thread::sleep(Duration::from_millis(100));
            if s.write_all(b"x").is_err() {
                return;
            }
        }
    });
    let (mut c, _) = client_with(config(Duration::from_millis(400), BodyMode::Read, 1 << 20));
    let t0 = Instant::now();
    let e = c
        .get(&format!("{base}/x"))
        .expect_err("dripped past the deadline");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_head_over_64_kib_is_too_large() {
    let mut resp = b"HTTP/1.1 200 OK\r\n".to_vec();
    while resp.len() < 70 * 1024 {
        resp.extend_from_slice(b"X-Filler: ffffffffffffffffffffffffffffffffffffffffffffffff\r\n");
    }
    resp.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let server = serve(move |_, _| Reply::Hold(resp.clone()));
    let (mut c, _) = client();
    let e = c.get(&format!("{}/x", server.base)).expect_err("huge head");
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
}

#[test]
fn bodies_over_the_limit_are_too_large() {
    let server = serve(|_, n| {
        Reply::Keep(if n % 2 == 0 {
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n".to_vec()
        })
    });
    let (mut c, _) = client_with(config(Duration::from_secs(5), BodyMode::Read, 100));
    for i in 0..2 {
        let e = c
            .get(&format!("{}/{i}", server.base))
            .expect_err("over limit");
        assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    }
}

#[test]
fn malformed_responses_are_errors_and_the_next_request_reconnects() {
    let server = serve(|conn, n| {
        Reply::Keep(if conn == 0 && n == 0 {
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy".to_vec()
        } else {
            HELLO.to_vec()
        })
    });
    let (mut c, opened) = client();
    let e = c
        .get(&format!("{}/bad", server.base))
        .expect_err("conflicting lengths");
    assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
    assert_eq!(c.get(&format!("{}/good", server.base)), Ok(ok(200, 5)));
    assert_eq!(opened.load(SeqCst), 2);
}

#[test]
fn bytes_after_a_response_end_the_connection() {
    let mut resp = HELLO.to_vec();
    resp.extend_from_slice(b"junk");
    let server = serve(move |_, _| Reply::Keep(resp.clone()));
    let (mut c, opened) = client();
    for i in 0..3 {
        assert_eq!(c.get(&format!("{}/{i}", server.base)), Ok(ok(200, 5)));
    }
    assert_eq!(opened.load(SeqCst), 3);
}

#[test]
fn skip_keeps_the_connection_only_when_the_body_was_already_buffered() {
    let small = serve(|_, _| Reply::Keep(HELLO.to_vec()));
    let (mut c, opened) = client_with(config(Duration::from_secs(5), BodyMode::Skip, 1 << 30));
    for i in 0..5 {
        assert_eq!(c.get(&format!("{}/s{i}", small.base)), Ok(ok(200, 0)));
    }
    assert_eq!(opened.load(SeqCst), 1);

    let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".to_vec();
    big.resize(big.len() + (1 << 20), b'b');
    let large = serve(move |_, _| Reply::Keep(big.clone()));
    let (mut c, opened) = client_with(config(Duration::from_secs(5), BodyMode::Skip, 1 << 30));
    for i in 0..3 {
        assert_eq!(c.get(&format!("{}/l{i}", large.base)), Ok(ok(200, 0)));
    }
    assert_eq!(opened.load(SeqCst), 3);
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (mut c, opened) = client();
    let e = c
        .get(&format!("http://127.0.0.1:{port}/x"))
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Connect, "{e}");
    assert_eq!(opened.load(SeqCst), 0);
}

#[test]
fn a_bad_url_is_a_typed_error_without_a_connection() {
    let (mut c, opened) = client();
    let e = c.get("https://127.0.0.1:1/x").expect_err("https");
    assert_eq!(e.kind, ErrorKind::Other, "{e}");
    assert_eq!(opened.load(SeqCst), 0);
}
