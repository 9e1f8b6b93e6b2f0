//! The raw variant's connection layer: URL splitting, one keep-alive `TcpStream`, request
//! writing, response reading through `wire`, reconnect-and-retry; it must not parse HTTP itself
//! (that is `wire`) nor allocate in steady state.
//!
//! Steady state is one write and a few reads per request into buffers owned by the client, so
//! the control variant makes ~0 heap allocations per request (see `tests/raw_alloc.rs`). Only a
//! new host (first request), a reconnect's address lookup, and the error path allocate.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::wire::{self, ChunkedDecoder, Framing, MAX_HEAD, Status};
use crate::error::{ErrorKind, RequestError, kind_of_io};
use crate::variant::{BodyMode, Outcome, Variant, VariantConfig};

/// First size of the read buffer; it grows (once, and stays grown) only for heads that need it.
const INITIAL_BUF: usize = 8 * 1024;

/// The pieces of an `http://host[:port][/path][?query]` URL, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Url<'a> {
    /// `host[:port]` exactly as written: the `Host` header's value.
    pub authority: &'a str,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: &'a str,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and query as written (possibly empty, or starting with `?`); fragment removed.
    pub target: &'a str,
}

/// Splits an absolute `http://` URL without allocating. Only plain http is supported: the raw
/// client is the control, not a general client. Bytes that could split the request (controls,
/// whitespace, non-ASCII) are refused rather than encoded.
pub fn parse_url(url: &str) -> Result<Url<'_>, RequestError> {
    let bad =
        |why: &str| RequestError::new(ErrorKind::Other, format!("invalid url {url:?}: {why}"));
    let scheme_ok = url
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
    if !scheme_ok {
        return Err(bad("only http:// URLs are supported"));
    }
    let rest = &url[7..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let target = tail.split_once('#').map_or(tail, |(before, _)| before);
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') {
        return Err(bad("user info is not supported"));
    }
    if !authority
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b))
    {
        return Err(bad("invalid character in host"));
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "path must be ASCII without spaces or control characters",
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(bad("invalid port")),
        },
    };
    Ok(Url {
        authority,
        host,
        port,
        target,
    })
}

/// The server a client talks to, resolved once.
struct Endpoint {
    authority: String,
    addrs: Vec<SocketAddr>,
}

impl Endpoint {
    fn resolve(url: &Url<'_>) -> Result<Endpoint, RequestError> {
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
    fn build_request(&mut self, url: &Url<'_>) {
        let req = &mut self.req;
        req.clear();
        req.extend_from_slice(b"GET ");
        if !url.target.starts_with('/') {
            req.push(b'/');
        }
        req.extend_from_slice(url.target.as_bytes());
        req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        req.extend_from_slice(url.authority.as_bytes());
        req.extend_from_slice(
            b"\r\nUser-Agent: leakprobe-raw/0.1\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
        );
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

        // Head: read until the parser is satisfied. The buffer holds nothing from earlier
        // responses (a response that leaves bytes behind ends its connection).
        let mut end = 0;
        let (head_len, head) = loop {
            if end > 0 {
                if let Status::Complete(n, head) = wire::parse_head(&buf[..end], false)? {
                    break (n, head);
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
        };

        let read_body = cfg.body == BodyMode::Read;
        let mut keep = head.keep_alive;
        // Bytes of this connection's stream not yet accounted for: buf[start..end].
        let mut start = head_len;
        let mut body_bytes = 0u64;
        match head.framing {
            Framing::NoBody => {}
            Framing::ContentLength(len) => {
                if read_body && len > cfg.max_body {
                    return Err(wire::WireError::BodyTooLarge.into());
                }
                let buffered = (end - start) as u64;
                if buffered >= len {
                    // Whole body already here: consuming it is free, even when skipping.
                    start += len as usize;
                    if read_body {
                        body_bytes = len;
                    }
                } else if !read_body {
                    // Not reading the rest means the connection's stream is unusable.
                    keep = false;
                } else {
                    let mut remaining = len - buffered;
                    start = end;
                    while remaining > 0 {
                        let n = read_more(conn, buf, "read body", deadline)?;
                        let take = remaining.min(n as u64);
                        remaining -= take;
                        (start, end) = (take as usize, n);
                    }
                    body_bytes = len;
                }
            }
            Framing::Chunked => {
                let max = if read_body { cfg.max_body } else { u64::MAX };
                let mut decoder = ChunkedDecoder::new(max);
                start += decoder.feed(&buf[start..end], |_| {})?;
                if read_body {
                    while !decoder.is_done() {
                        let n = read_more(conn, buf, "read chunked body", deadline)?;
                        (start, end) = (decoder.feed(&buf[..n], |_| {})?, n);
                    }
                    body_bytes = decoder.body_len();
                } else if !decoder.is_done() {
                    keep = false;
                }
            }
            Framing::CloseDelimited => {
                keep = false;
                if read_body {
                    body_bytes = (end - start) as u64;
                    loop {
                        if body_bytes > cfg.max_body {
                            return Err(wire::WireError::BodyTooLarge.into());
                        }
                        match conn.read(buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                body_bytes += n as u64;
                                check_deadline(deadline)?;
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(io_failure(&e, "read body")),
                        }
                    }
                }
                start = end;
            }
        }
        // HTTP/1.1 without pipelining: bytes past the response are the server misbehaving, and
        // would be misread as the next response.
        if start != end || !keep {
            *stream = None;
        }
        Ok(Outcome {
            status: head.status,
            body_bytes,
        })
    }
}

/// Reads at least one byte into the start of `buf`; EOF is an error (the body is incomplete).
fn read_more(
    conn: &mut TcpStream,
    buf: &mut [u8],
    during: &str,
    deadline: Option<Instant>,
) -> Result<usize, Failure> {
    loop {
        match conn.read(buf) {
            Ok(0) => return Err(reset("connection closed mid-body")),
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
        let parsed = parse_url(url)?;
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
    fn urls_split_into_authority_host_port_and_target() {
        let cases: &[(&str, &str, &str, u16, &str)] = &[
            (
                "http://127.0.0.1:8080/a/b?c=d",
                "127.0.0.1:8080",
                "127.0.0.1",
                8080,
                "/a/b?c=d",
            ),
            ("HTTP://example.com", "example.com", "example.com", 80, ""),
            ("http://h:1?q", "h:1", "h", 1, "?q"),
            ("http://h/p#frag", "h", "h", 80, "/p"),
            ("http://[::1]:9/x", "[::1]:9", "::1", 9, "/x"),
            ("http://[::1]", "[::1]", "::1", 80, ""),
        ];
        for &(url, authority, host, port, target) in cases {
            let got = parse_url(url).expect(url);
            assert_eq!(
                got,
                Url {
                    authority,
                    host,
                    port,
                    target
                },
                "{url}"
            );
        }
    }

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
            let e = parse_url(url).expect_err(url);
            assert_eq!(e.kind, ErrorKind::Other, "{url}");
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
        c.build_request(&parse_url("http://h:1?q=1").expect("url"));
        assert_eq!(
            c.req,
            b"GET /?q=1 HTTP/1.1\r\nHost: h:1\r\nUser-Agent: leakprobe-raw/0.1\r\nAccept: */*\r\n\
              Connection: keep-alive\r\n\r\n"
        );
    }
}
