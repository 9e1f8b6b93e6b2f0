//! The raw variant's connection layer: one keep-alive `TcpStream`, request writing, deadlines,
//! reconnect-and-retry, feeding the socket's bytes to `wire`; it must not make or parse HTTP or
//! URLs itself (that is `wire` and `workload::split_url`) nor allocate in steady state.
//!
//! Steady state is one write and a few reads per request into buffers owned by the client, so
//! the control variant makes ~0 heap allocations per request (see `tests/raw_alloc.rs`). Only a
//! new host (first request), a reconnect's address lookup, and the error path allocate.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::wire::{self, BodyReader, Framing, Head, MAX_HEAD, Status};
use crate::error::{ErrorKind, RequestError, kind_of_io};
use crate::variant::{BodyMode, Outcome, Variant, VariantConfig};
use crate::workload::{UrlParts, split_url};

/// First size of the read buffer; it grows (once, and stays grown) only for heads that need it.
const INITIAL_BUF: usize = 8 * 1024;

/// Splits a request URL (allocating only for the error).
fn split(url: &str) -> Result<UrlParts<'_>, RequestError> {
    split_url(url)
        .map_err(|e| RequestError::new(ErrorKind::Other, format!("invalid url {url:?}: {e}")))
}

/// The server a client talks to, resolved once.
struct Endpoint {
    authority: String,
    addrs: Vec<SocketAddr>,
}

impl Endpoint {
    fn resolve(url: &UrlParts<'_>) -> Result<Endpoint, RequestError> {
        let addrs = match url.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, url.port)],
            Err(_) => (url.host, url.port)
                .to_socket_addrs()
                .map_err(|e| {
                    RequestError::new(ErrorKind::Connect, format!("resolve {}: {e}", url.host))
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(RequestError::new(
                ErrorKind::Connect,
                format!("resolve {}: no addresses", url.host),
            ));
        }
        Ok(Endpoint {
            authority: url.authority.to_owned(),
            addrs,
        })
    }
}

/// Why one attempt failed.
enum Failure {
    /// The connection ended before a single response byte arrived: on a reused connection this
    /// is the server having closed it while idle, so the request is retried.
    Stale(String),
    Request(RequestError),
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Self {
        Failure::Request(e)
    }
}

impl From<wire::WireError> for Failure {
    fn from(e: wire::WireError) -> Self {
        Failure::Request(e.into())
    }
}

fn io_failure(e: &io::Error, during: &str) -> Failure {
    Failure::Request(RequestError::new(kind_of_io(e), format!("{during}: {e}")))
}

fn reset(detail: &str) -> Failure {
    Failure::Request(RequestError::new(ErrorKind::Reset, detail))
}

/// Errors that mean the peer closed or reset the connection.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// The hand-rolled HTTP/1.1 client: one keep-alive connection, reused buffers.
pub struct RawClient {
    cfg: VariantConfig,
    endpoint: Option<Endpoint>,
    stream: Option<TcpStream>,
    /// The request being sent; rebuilt in place for every request.
    req: Vec<u8>,
    /// Read buffer; its whole length is usable (it is zero-filled once, never shrunk).
    buf: Vec<u8>,
}

impl fmt::Debug for RawClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawClient")
            .field("endpoint", &self.endpoint.as_ref().map(|e| &e.authority))
            .field("connected", &self.stream.is_some())
            .field("buf", &self.buf.len())
            .finish()
    }
}

impl RawClient {
    /// A client for one worker thread. Nothing is connected or resolved until the first `get`.
    pub fn new(cfg: VariantConfig) -> RawClient {
        RawClient {
            cfg,
            endpoint: None,
            stream: None,
            req: Vec::new(),
            buf: vec![0; INITIAL_BUF],
        }
    }

    /// Writes the request for `url` into the reused request buffer.
    fn build_request(&mut self, url: &UrlParts<'_>) {
        wire::write_request(&mut self.req, url.target, url.authority);
    }

    fn connect(&mut self) -> Result<TcpStream, RequestError> {
        let Some(endpoint) = &self.endpoint else {
            return Err(RequestError::new(ErrorKind::Other, "no endpoint"));
        };
        // A zero timeout means none: std refuses zero durations.
        let timeout = Some(self.cfg.timeout).filter(|t| !t.is_zero());
        let mut last = None;
        for addr in &endpoint.addrs {
            let attempt = match timeout {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => {
                    self.cfg.connections_opened.fetch_add(1, Relaxed);
                    configure(&stream, timeout).map_err(|e| {
                        RequestError::new(ErrorKind::Other, format!("socket options: {e}"))
                    })?;
                    return Ok(stream);
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        Err(match last {
            Some((addr, e)) => {
                let kind = match kind_of_io(&e) {
                    ErrorKind::Timeout => ErrorKind::Timeout,
                    _ => ErrorKind::Connect,
                };
                RequestError::new(kind, format!("connect {addr}: {e}"))
            }
            None => RequestError::new(ErrorKind::Connect, "no address"),
        })
    }

    /// One request/response on the current connection (opening one if there is none).
    fn exchange(&mut self) -> Result<Outcome, Failure> {
        if self.stream.is_none() {
            self.stream = Some(self.connect()?);
        }
        let RawClient {
            cfg,
            stream,
            req,
            buf,
            ..
        } = self;
        let Some(conn) = stream.as_mut() else {
            return Err(Failure::Request(RequestError::new(
                ErrorKind::Other,
                "no connection",
            )));
        };

        // Each read and write has the socket timeout; the whole exchange has this deadline too,
        // so a server dripping one byte per timeout cannot hold a worker forever.
        let deadline = Some(cfg.timeout)
            .filter(|t| !t.is_zero())
            .map(|t| Instant::now() + t);
        if let Err(e) = conn.write_all(req) {
            return Err(if is_closed(&e) {
                Failure::Stale(format!("write: {e}"))
            } else {
                io_failure(&e, "write request")
            });
        }

        let (head_len, mut end, head) = read_head(conn, buf, deadline)?;

        // Body: `wire` decides where it ends; this only supplies bytes and the end of the stream.
        // Skipping reads nothing more, so it needs no limit: what is already here is free.
        let read_body = cfg.body == BodyMode::Read;
        let max_body = if read_body { cfg.max_body } else { u64::MAX };
        let mut body = BodyReader::new(head.framing, max_body);
        // Bytes of this connection's stream not yet accounted for: buf[start..end].
        let mut start = head_len + body.feed(&buf[head_len..end], |_| {})?.consumed;
        let mut keep = head.keep_alive;
        if read_body {
            let during = match head.framing {
                Framing::Chunked => "read chunked body",
                _ => "read body",
            };
            while !body.is_done() {
                match read_some(conn, buf, during, deadline)? {
                    0 => body.finish()?,
                    n => (start, end) = (body.feed(&buf[..n], |_| {})?.consumed, n),
                }
            }
        } else if !body.is_done() {
            // Not reading the rest means the connection's stream is unusable.
            keep = false;
        }
        // HTTP/1.1 without pipelining: bytes past the response are the server misbehaving, and
        // would be misread as the next response.
        if start != end || !keep {
            *stream = None;
        }
        Ok(Outcome {
            status: head.status,
            body_bytes: if read_body { body.body_len() } else { 0 },
        })
    }
}

/// Reads until the bytes at the start of `buf` hold a complete response head: returns the head's
/// length, the bytes read (`buf[..end]`, body bytes possibly included) and the head. The buffer
/// grows (and stays grown) only for heads that need it, up to just past [`MAX_HEAD`].
fn read_head(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Option<Instant>,
) -> Result<(usize, usize, Head), Failure> {
    // The buffer holds nothing from earlier responses (a response that leaves bytes behind ends
    // its connection).
    let mut end = 0;
    loop {
        if end > 0 {
            if let Status::Complete(n, head) = wire::parse_head(&buf[..end], false)? {
                return Ok((n, end, head));
            }
        }
        if end == buf.len() {
            // parse_head refuses anything past MAX_HEAD, so this stops at MAX_HEAD + 1.
            let grown = (buf.len() * 2).min(MAX_HEAD + 1);
            if grown == buf.len() {
                return Err(wire::WireError::HeadTooLarge.into());
            }
            buf.resize(grown, 0);
        }
        match conn.read(&mut buf[end..]) {
            Ok(0) if end == 0 => return Err(Failure::Stale("closed before responding".into())),
            Ok(0) => return Err(reset("connection closed in the response head")),
            Ok(n) => {
                end += n;
                check_deadline(deadline)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if end == 0 && is_closed(&e) => {
                return Err(Failure::Stale(format!("read: {e}")));
            }
            Err(e) => return Err(io_failure(&e, "read response head")),
        }
    }
}

/// Reads into the start of `buf`: the byte count, 0 at the end of the stream.
fn read_some(
    conn: &mut TcpStream,
    buf: &mut [u8],
    during: &str,
    deadline: Option<Instant>,
) -> Result<usize, Failure> {
    loop {
        match conn.read(buf) {
            Ok(0) => return Ok(0),
            Ok(n) => {
                check_deadline(deadline)?;
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(&e, during)),
        }
    }
}

/// A response still arriving past the request's deadline is a timeout.
fn check_deadline(deadline: Option<Instant>) -> Result<(), Failure> {
    match deadline {
        Some(d) if Instant::now() > d => Err(Failure::Request(RequestError::new(
            ErrorKind::Timeout,
            "response still arriving after the request timeout",
        ))),
        _ => Ok(()),
    }
}

fn configure(stream: &TcpStream, timeout: Option<Duration>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)
}

impl Variant for RawClient {
    fn get(&mut self, url: &str) -> Result<Outcome, RequestError> {
        let parsed = split(url)?;
        // Every request has a new URL, but nearly always the same server: a string compare.
        if self.endpoint.as_ref().map(|e| e.authority.as_str()) != Some(parsed.authority) {
            self.stream = None;
            self.endpoint = None;
            self.endpoint = Some(Endpoint::resolve(&parsed)?);
        }
        self.build_request(&parsed);
        let reused = self.stream.is_some();
        let mut result = self.exchange();
        if reused && matches!(result, Err(Failure::Stale(_))) {
            log::debug!("raw: kept-alive connection closed by the server; retrying on a new one");
            self.stream = None;
            result = self.exchange();
        }
        result.map_err(|failure| {
            self.stream = None;
            match failure {
                Failure::Stale(detail) => RequestError::new(ErrorKind::Reset, detail),
                Failure::Request(e) => e,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_typed_errors() {
        for url in [
            "https://h/",
            "ftp://h/",
            "http://",
            "http:///x",
            "http://h:/x",
            "http://h:0/x",
            "http://h:99999/x",
            "http://h:+1/x",
            "http://u@h/x",
            "http://h/a b",
            "http://h/a\r\nX: y",
            "http://h/\u{e9}",
            "http://[::1/x",
            "http://[::1]x/",
            "http:/h",
        ] {
            let e = split(url).expect_err(url);
            assert_eq!(e.kind, ErrorKind::Other, "{url}");
            assert!(e.to_string().contains("invalid url"), "{e}");
        }
    }

    #[test]
    fn requests_are_written_exactly() {
        let mut c = RawClient::new(VariantConfig {
            timeout: Duration::from_secs(1),
            timeout_mode: crate::variant::TimeoutMode::Phases,
            body: BodyMode::Read,
            max_body: 1 << 20,
            pool_idle: None,
            connections_opened: Default::default(),
        });
        c.build_request(&split("http://h:1?q=1").expect("url"));
        assert_eq!(
            c.req,
            b"GET /?q=1 HTTP/1.1\r\nHost: h:1\r\nUser-Agent: leakprobe-raw/0.1\r\nAccept: */*\r\n\
              Connection: keep-alive\r\n\r\n"
        );
    }
}
