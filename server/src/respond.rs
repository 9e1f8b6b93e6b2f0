//! Writes whole HTTP/1.1 responses as bytes to any `Write`: status line, headers, and a body
//! that may be sized, chunked, dripped or cut short. Knows nothing of sockets or tiny_http.

use std::cell::Cell;
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Into how many slices at most a dripped body is cut (each preceded by a pause).
pub(crate) const DRIP_SLICES: u64 = 16;
/// Largest write handed to the writer at once when streaming a big body.
const PIECE: usize = 16 * 1024;
static SPACES: [u8; PIECE] = [b' '; PIECE];

/// What goes on the wire, decided by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply<'a> {
    pub status: u16,
    pub content_type: &'static str,
    /// The natural body; see `len` for padding and truncation.
    pub body: &'a [u8],
    /// Exact body length: `body` padded with spaces or cut to it. `None`: `body.len()`.
    pub len: Option<u64>,
    pub chunked: bool,
    /// Send `Connection: close` (the caller closes the connection afterwards).
    pub close: bool,
    /// Send `Connection: keep-alive` (an HTTP/1.0 client asked for it).
    pub keep_alive_header: bool,
    /// A `HEAD` request: headers as for `GET`, no body.
    pub head: bool,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
    /// Pause before each of up to [`DRIP_SLICES`] body slices.
    pub drip: Option<Duration>,
    /// `Set-Cookie` header values, one header each, e.g. `session=abc; Path=/`.
    pub cookies: &'a [String],
    /// Also `Set-Cookie: leakprobe=<this>; Path=/` (the `cookie=1` knob).
    pub seq_cookie: Option<u64>,
}

impl<'a> Reply<'a> {
    pub(crate) fn new(status: u16, content_type: &'static str, body: &'a [u8]) -> Self {
        Reply {
            status,
            content_type,
            body,
            len: None,
            chunked: false,
            close: false,
            keep_alive_header: false,
            head: false,
            retry_after: None,
            drip: None,
            cookies: &[],
            seq_cookie: None,
        }
    }

    fn body_len(&self) -> u64 {
        self.len.unwrap_or(self.body.len() as u64)
    }

    /// 1xx, 204 and 304 responses never carry a body or its framing.
    fn bodyless_status(&self) -> bool {
        matches!(self.status, 100..=199 | 204 | 304)
    }

    /// The body bytes from `offset`, at most `max` of them (never empty before the end).
    fn slice(&self, offset: u64, max: usize) -> &[u8] {
        let total = self.body_len();
        let want = (total - offset).min(max as u64) as usize;
        match usize::try_from(offset) {
            Ok(o) if o < self.body.len() => &self.body[o..(o + want).min(self.body.len())],
            _ => &SPACES[..want.min(PIECE)],
        }
    }
}

/// Writes `reply` to `w` and flushes; `pause` is called before each dripped slice (tests
/// pass a no-op, the server sleeps).
///
/// A response without a streamed body (not dripped, at most 16 KiB) goes out in one write:
/// one segment, no Nagle/delayed-ACK stall. Up to [`STACK`] bytes it is assembled on the
/// stack, so the common small answer allocates nothing.
pub(crate) fn write_reply<W: Write + ?Sized>(
    w: &mut W,
    reply: &Reply<'_>,
    mut pause: impl FnMut(Duration),
) -> io::Result<()> {
    let bodyless = reply.bodyless_status();
    let chunked = reply.chunked && !bodyless;
    let send_body = !bodyless && !reply.head;
    let total = reply.body_len();

    if !send_body || (reply.drip.is_none() && total <= PIECE as u64) {
        let mut stack = [0u8; STACK];
        let mut on_stack = io::Cursor::new(&mut stack[..]);
        if write_whole(&mut on_stack, reply, send_body, chunked).is_ok() {
            let n = on_stack.position() as usize;
            w.write_all(&stack[..n])?;
        } else {
            let mut heap = Vec::with_capacity(total as usize + 512);
            write_whole(&mut heap, reply, send_body, chunked)?;
            w.write_all(&heap)?;
        }
        return w.flush();
    }

    write_head(w, reply, chunked)?;
    let slice_len = match reply.drip {
        Some(_) => total.div_ceil(DRIP_SLICES).max(1).min(PIECE as u64) as usize,
        None => PIECE,
    };
    let mut offset = 0;
    let mut slices = 0u64;
    while offset < total {
        if let Some(d) = reply.drip {
            // Past DRIP_SLICES pauses the rest streams at full speed, so the total delay
            // stays at most 16 × drip_ms whatever the size.
            if slices < DRIP_SLICES {
                w.flush()?;
                pause(d);
            }
        }
        let s = reply.slice(offset, slice_len);
        if chunked {
            write!(w, "{:x}\r\n", s.len())?;
            w.write_all(s)?;
            w.write_all(b"\r\n")?;
        } else {
            w.write_all(s)?;
        }
        offset += s.len() as u64;
        slices += 1;
    }
    if chunked {
        w.write_all(b"0\r\n\r\n")?;
    }
    w.flush()
}

/// Bytes of a response assembled on the stack before falling back to a heap buffer.
const STACK: usize = 1024;

/// The whole response (head, and the body unless `!send_body`) into `out`, for one write.
fn write_whole<W: Write + ?Sized>(
    out: &mut W,
    reply: &Reply<'_>,
    send_body: bool,
    chunked: bool,
) -> io::Result<()> {
    write_head(out, reply, chunked)?;
    if !send_body {
        return Ok(());
    }
    let total = reply.body_len();
    if chunked && total > 0 {
        write!(out, "{total:x}\r\n")?;
    }
    let mut offset = 0;
    while offset < total {
        let s = reply.slice(offset, PIECE);
        out.write_all(s)?;
        offset += s.len() as u64;
    }
    if chunked {
        if total > 0 {
            out.write_all(b"\r\n")?;
        }
        out.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
}

/// Status line and headers, up to and including the empty line.
fn write_head<W: Write + ?Sized>(out: &mut W, reply: &Reply<'_>, chunked: bool) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {} {}\r\nDate: ",
        reply.status,
        reason(reply.status)
    )?;
    out.write_all(&http_date())?;
    out.write_all(b"\r\n")?;
    if !reply.bodyless_status() {
        write!(out, "Content-Type: {}\r\n", reply.content_type)?;
        if chunked {
            out.write_all(b"Transfer-Encoding: chunked\r\n")?;
        } else {
            write!(out, "Content-Length: {}\r\n", reply.body_len())?;
        }
    }
    if reply.close {
        out.write_all(b"Connection: close\r\n")?;
    } else if reply.keep_alive_header {
        out.write_all(b"Connection: keep-alive\r\n")?;
    }
    if let Some(secs) = reply.retry_after {
        write!(out, "Retry-After: {secs}\r\n")?;
    }
    for cookie in reply.cookies {
        write!(out, "Set-Cookie: {cookie}\r\n")?;
    }
    if let Some(seq) = reply.seq_cookie {
        write!(out, "Set-Cookie: {SEQ_COOKIE}={seq}; Path=/\r\n")?;
    }
    out.write_all(b"\r\n")
}

/// The name of the cookie the `cookie=1` knob sets.
pub(crate) const SEQ_COOKIE: &str = "leakprobe";

/// Bytes of an HTTP date: `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;

/// Now as an HTTP date, formatted at most once a second per thread.
fn http_date() -> [u8; DATE_LEN] {
    thread_local! {
        static LAST: Cell<(u64, [u8; DATE_LEN])> = const { Cell::new((u64::MAX, [0; DATE_LEN])) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (at, text) = LAST.get();
    if at == secs {
        return text;
    }
    let mut text = [b' '; DATE_LEN];
    let _ = write!(
        io::Cursor::new(&mut text[..]),
        "{}",
        httpdate::HttpDate::from(now)
    );
    LAST.set((secs, text));
    text
}

/// The reason phrase for a status line (clients ignore it; humans read it).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(reply: &Reply<'_>) -> (String, Vec<u8>, u32) {
        let mut out = Vec::new();
        let mut pauses = 0;
        write_reply(&mut out, reply, |_| pauses += 1).expect("vec write");
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of head")
            + 4;
        let head = String::from_utf8(out[..split].to_vec()).expect("ascii head");
        (head, out[split..].to_vec(), pauses)
    }

    fn dechunk(mut body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let nl = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("size line");
            let size = usize::from_str_radix(std::str::from_utf8(&body[..nl]).expect("hex"), 16)
                .expect("hex size");
            body = &body[nl + 2..];
            if size == 0 {
                assert_eq!(body, b"\r\n");
                return out;
            }
            out.extend_from_slice(&body[..size]);
            assert_eq!(&body[size..size + 2], b"\r\n");
            body = &body[size + 2..];
        }
    }

    const JSON: &[u8] = br#"{"seq":1}"#;

    #[test]
    fn plain_reply_has_length_and_type() {
        let (head, body, _) = render(&Reply::new(200, "application/json", JSON));
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: application/json\r\n"));
        assert!(head.contains("Content-Length: 9\r\n"));
        assert!(head.contains("Date: "));
        assert!(!head.contains("Connection"));
        assert_eq!(body, JSON);
    }

    #[test]
    fn bytes_pads_with_spaces_or_cuts() {
        for len in [0u64, 3, 9, 10, 100_000] {
            let reply = Reply {
                len: Some(len),
                ..Reply::new(200, "application/json", JSON)
            };
            let (head, body, _) = render(&reply);
            assert!(head.contains(&format!("Content-Length: {len}\r\n")));
            assert_eq!(body.len() as u64, len);
            let n = JSON.len().min(len as usize);
            assert_eq!(&body[..n], &JSON[..n]);
            assert!(body[n..].iter().all(|b| *b == b' '));
        }
    }

    #[test]
    fn chunked_bodies_decode_to_the_same_bytes() {
        for len in [0u64, 9, 20_000, 100_000] {
            let reply = Reply {
                len: Some(len),
                chunked: true,
                ..Reply::new(200, "application/json", JSON)
            };
            let (head, body, _) = render(&reply);
            assert!(head.contains("Transfer-Encoding: chunked\r\n"));
            assert!(!head.contains("Content-Length"));
            assert_eq!(dechunk(&body).len() as u64, len);
        }
    }

    #[test]
    fn drip_pauses_at_most_sixteen_times() {
        for (len, want) in [(9u64, 9), (16, 16), (1000, 16), (1_000_000, 16), (0, 0)] {
            let reply = Reply {
                len: Some(len),
                drip: Some(Duration::from_millis(5)),
                ..Reply::new(200, "application/json", JSON)
            };
            let (_, body, pauses) = render(&reply);
            assert_eq!(body.len() as u64, len);
            assert_eq!(pauses, want, "len {len}");
        }
    }

    #[test]
    fn bodyless_statuses_and_head_send_no_body() {
        for status in [204u16, 304] {
            let (head, body, _) = render(&Reply {
                chunked: true,
                ..Reply::new(status, "application/json", JSON)
            });
            assert!(!head.contains("Content-Length") && !head.contains("Transfer-Encoding"));
            assert!(body.is_empty());
        }
        let (head, body, _) = render(&Reply {
            head: true,
            ..Reply::new(200, "application/json", JSON)
        });
        assert!(head.contains("Content-Length: 9\r\n"));
        assert!(body.is_empty());
    }

    #[test]
    fn connection_and_retry_headers() {
        let (head, _, _) = render(&Reply {
            close: true,
            retry_after: Some(1),
            ..Reply::new(503, "text/plain", b"busy\n")
        });
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(head.contains("Connection: close\r\n") && head.contains("Retry-After: 1\r\n"));
        let (head, _, _) = render(&Reply {
            keep_alive_header: true,
            ..Reply::new(200, "text/plain", b"")
        });
        assert!(head.contains("Connection: keep-alive\r\n"));
    }

    #[test]
    fn cookies_each_get_a_set_cookie_header() {
        let cookies = ["a=1; Path=/".to_owned(), "b=2; Path=/".to_owned()];
        let (head, body, _) = render(&Reply {
            cookies: &cookies,
            seq_cookie: Some(7),
            ..Reply::new(200, "application/json", JSON)
        });
        assert!(head.contains("Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\n"));
        assert!(head.contains("Set-Cookie: leakprobe=7; Path=/\r\n"));
        assert_eq!(body, JSON);
        let (head, _, _) = render(&Reply::new(200, "application/json", JSON));
        assert!(!head.contains("Set-Cookie"));
    }
}
