use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read}; // PATCH (leakprobe, PATCHES.md #7): BufRead

use std::net::SocketAddr;
use std::str::FromStr;

use crate::common::{HTTPVersion, Method};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,
}

/// PATCH (leakprobe, PATCHES.md #4): upstream read request lines and headers without any
/// bound, so one endless line grew a buffer until memory ran out. The request line may be
/// this long (answered `414` past it) and so may all header lines together (`431`).
const MAX_REQUEST_LINE_BYTES: usize = 64 * 1024;
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Why a line of the request head could not be read.
enum LineError {
    Io(IoError),
    NotAscii,
    TooLong,
}

/// PATCH (leakprobe, PATCHES.md #8): the connection a [`crate::RequestHandler`] runs on,
/// seen from its own thread while the handler has the request.
pub struct ConnectionWatch<'a> {
    client: &'a mut ClientConnection,
}

impl<'a> ConnectionWatch<'a> {
    pub(crate) fn new(client: &'a mut ClientConnection) -> ConnectionWatch<'a> {
        ConnectionWatch { client }
    }

    /// Whether the client has sent (or may send) another request on this connection.
    pub fn next_request(&mut self) -> NextRequest<'_> {
        self.client.next_request()
    }
}

/// PATCH (leakprobe, PATCHES.md #8): what a connection holds beyond the request being
/// handled, as [`ConnectionWatch::next_request`] sees it.
#[derive(Debug)]
pub enum NextRequest<'a> {
    /// The request being handled is the connection's last (`Connection: close`, HTTP/1.0):
    /// nothing more will be read from it.
    Last,
    /// Bytes of a next request were read already (the client pipelines), or the request
    /// being handled still holds the connection's reader (its body): the connection's
    /// thread should be free to read on.
    Pending,
    /// Nothing more has been read: the next request's first bytes will arrive on this
    /// socket (wait for it to become readable; do not read from it).
    #[cfg(unix)]
    Socket(std::os::fd::BorrowedFd<'a>),
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// PATCH #4: the request line is longer than `MAX_REQUEST_LINE_BYTES`
    RequestLineTooLong,
    /// PATCH #4: the headers are longer than `MAX_HEADER_BYTES`
    HeadersTooLarge(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();

        // PATCH (leakprobe, PATCHES.md #7): 4 KiB (was 1 KiB) so that a request with a
        // 1000-character path arrives in one `read`
        let mut source =
            SequentialReaderBuilder::new(BufReader::with_capacity(4096, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// PATCH (leakprobe, PATCHES.md #8): what this connection holds beyond the requests
    /// returned so far; see [`NextRequest`].
    pub(crate) fn next_request(&mut self) -> NextRequest<'_> {
        if self.no_more_requests {
            return NextRequest::Last;
        }
        let Some(reader) = self.next_header_source.try_turn() else {
            return NextRequest::Pending;
        };
        if !reader.buffer().is_empty() {
            return NextRequest::Pending;
        }
        #[cfg(unix)]
        if let Some(fd) = reader.get_ref().socket_fd() {
            return NextRequest::Socket(fd);
        }
        NextRequest::Pending
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    /// PATCH #4: reads at most `max` bytes (CRLF included) and reports non-ASCII lines
    /// apart from I/O errors, so that both get a 4xx instead of a silent close.
    /// PATCH (leakprobe, PATCHES.md #7): reads the buffered bytes a slice at a time
    /// (`BufRead::read_until`, which finds the `\n` with `memchr`) instead of one `read` call
    /// per byte; the same bytes end the line (a `\n` right after a `\r`; a lone `\n` stays
    /// part of it) and the same limit applies (more than `max` bytes with the CRLF is too
    /// long).
    fn read_next_line(&mut self, max: usize) -> Result<AsciiString, LineError> {
        // PATCH (leakprobe, PATCHES.md #9): the empty line that ends the head, without
        // allocating
        if max >= 2 {
            match self.next_header_source.fill_buf() {
                Ok(buffered) if buffered.starts_with(b"\r\n") => {
                    self.next_header_source.consume(2);
                    return Ok(AsciiString::new());
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(LineError::Io(e)),
            }
        }
        let mut buf = Vec::new();

        loop {
            let budget = max.saturating_sub(buf.len());
            if budget == 0 {
                return Err(LineError::TooLong);
            }
            let read = (&mut self.next_header_source)
                .take(budget as u64)
                .read_until(b'\n', &mut buf)
                .map_err(LineError::Io)?;
            if read == 0 {
                return Err(LineError::Io(IoError::new(
                    ErrorKind::ConnectionAborted,
                    "Unexpected EOF",
                )));
            }
            if buf.ends_with(b"\r\n") {
                buf.truncate(buf.len() - 2); // removing the CRLF
                return AsciiString::from_ascii(buf).map_err(|_| LineError::NotAscii);
            }
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self
                    .read_next_line(MAX_REQUEST_LINE_BYTES)
                    .map_err(|e| match e {
                        LineError::Io(e) => ReadError::ReadIoError(e),
                        LineError::NotAscii => ReadError::WrongRequestLine,
                        LineError::TooLong => ReadError::RequestLineTooLong,
                    })?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                let mut header_budget = MAX_HEADER_BYTES;
                loop {
                    let line = self.read_next_line(header_budget).map_err(|e| match e {
                        LineError::Io(e) => ReadError::ReadIoError(e),
                        LineError::NotAscii => ReadError::WrongHeader(version.clone()),
                        LineError::TooLong => ReadError::HeadersTooLarge(version.clone()),
                    })?;
                    header_budget = header_budget.saturating_sub(line.len() + 2);

                    if line.is_empty() {
                        break;
                    };
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();
        // PATCH (leakprobe, PATCHES.md #5): lets the request's handler close the connection
        let connection = crate::request::ConnectionHandle::new(self.sink.shared_writer());

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request.with_connection_handle(connection))
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                // PATCH #4: answer an over-long head, then close: the rest of it is unread
                Err(ReadError::RequestLineTooLong) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(414));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None;
                }

                Err(ReadError::HeadersTooLarge(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(431));
                    response.raw_print(writer, ver, &[], false, None).ok();
                    return None;
                }

                Err(ReadError::WrongHeader(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response.raw_print(writer, ver, &[], false, None).ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                    // request timeout
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(408));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(417));
                    response.raw_print(writer, ver, &[], true, None).ok();
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(
                    "This server only supports HTTP versions 1.0 and 1.1".to_owned(),
                )
                .with_status_code(StatusCode(505));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                continue;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
