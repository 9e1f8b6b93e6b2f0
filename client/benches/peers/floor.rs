//! `--floor`: the blocking floor, the cheapest client of the raw variant's design.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::ChildLine;

/// The blocking floor: `CONNS` threads, each on one keep-alive connection to 127.0.0.1:`PORT`,
/// write the same request (the raw variant's bytes for a `PATH_LEN`-character path) and read the
/// response to its length, learned from the first response, for `SECS` seconds. Prints the same
/// JSON line as the bare loop.
pub fn run(argv: &[String]) -> Result<(), String> {
    let [port, conns, secs] = argv else {
        return Err("--floor takes PORT CONNS SECS".into());
    };
    let bad = |what: &str| format!("--floor: bad {what}");
    let port: u16 = port.parse().map_err(|_| bad("PORT"))?;
    let conns: usize = conns.parse().map_err(|_| bad("CONNS"))?;
    let secs: u64 = secs.parse().map_err(|_| bad("SECS"))?;
    let mut request = Vec::new();
    leak_client::raw::wire::write_request(
        &mut request,
        &format!("/{}", "a".repeat(bench_anchors::PATH_LEN - 1)),
        &format!("127.0.0.1:{port}"),
    );
    let response_len = floor_response_len(port, &request)?;
    let duration = Duration::from_secs(secs);
    let go = Arc::new(Barrier::new(conns + 1));
    let mut handles = Vec::with_capacity(conns);
    for id in 0..conns {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("floor connection {id}: {e}"))?;
        conn.set_nodelay(true).map_err(|e| e.to_string())?;
        let (go, request) = (go.clone(), request.clone());
        let worker = move || -> Result<u64, String> {
            use std::io::{Read, Write};
            let mut buf = vec![0u8; response_len.max(8192)];
            let mut done = 0u64;
            go.wait();
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                conn.write_all(&request)
                    .map_err(|e| format!("write: {e}"))?;
                let mut got = 0;
                while got < response_len {
                    match conn.read(&mut buf[got..]) {
                        Ok(0) => return Err("the server closed the connection".into()),
                        Ok(n) => got += n,
                        Err(e) => return Err(format!("read: {e}")),
                    }
                }
                if got != response_len {
                    return Err(format!("a response of {got} bytes, not {response_len}"));
                }
                done += 1;
            }
            Ok(done)
        };
        let spawned = thread::Builder::new()
            .name(format!("floor-{id}"))
            .spawn(worker)
            .map_err(|e| format!("cannot start floor thread {id}: {e}"))?;
        handles.push(spawned);
    }
    go.wait();
    let started = Instant::now();
    let mut requests = 0;
    for h in handles {
        requests += h.join().map_err(|_| "a floor thread panicked")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    ChildLine {
        requests,
        errors: 0,
        rps: requests as f64 / elapsed,
        allocs_per_request: None,
        bytes_allocated_per_request: None,
    }
    .print()
}

/// The length of the server's whole response to `request` (head and a Content-Length body),
/// read once with the raw variant's parser, so the floor's loop can read without parsing.
fn floor_response_len(port: u16, request: &[u8]) -> Result<usize, String> {
    use leak_client::raw::wire::{Framing, Status, parse_head};
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("floor: connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    conn.write_all(request)
        .map_err(|e| format!("floor: write: {e}"))?;
    let mut buf = vec![0u8; 8192];
    let mut got = 0;
    loop {
        match conn.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return Err("floor: no complete response head".into()),
            Ok(n) => got += n,
        }
        if let Ok(Status::Complete(head_len, head)) = parse_head(&buf[..got], false) {
            return match head.framing {
                Framing::ContentLength(n) if head.status == 200 && head.keep_alive => {
                    Ok(head_len + n as usize)
                }
                _ => Err("floor: the server's answer is not a keep-alive 200 with a length".into()),
            };
        }
        if got == buf.len() {
            return Err("floor: response head too large".into());
        }
    }
}
