//! The raw client's request bytes, `write_request`: pure (no socket), so the client and the peer
//! bench's blocking floor send the same bytes; written into the caller's buffer, which keeps its
//! capacity, so a steady request allocates nothing.

/// Writes the raw client's GET of `target` (a leading `/` added when it has none) on
/// `authority` into `req`, replacing what it held: the one place its request bytes are made
/// (the client, and the peer bench's blocking floor, which must send the same bytes).
pub fn write_request(req: &mut Vec<u8>, target: &str, authority: &str) {
    req.clear();
    req.extend_from_slice(b"GET ");
    if !target.starts_with('/') {
        req.push(b'/');
    }
    req.extend_from_slice(target.as_bytes());
    req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    req.extend_from_slice(authority.as_bytes());
    req.extend_from_slice(
        b"\r\nUser-Agent: leakprobe-raw/0.1\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
    );
}

#[cfg(test)]
mod tests {
    use super::write_request;

    #[test]
    fn a_request_replaces_what_the_buffer_held_and_gets_a_leading_slash() {
        let mut req = b"left over from the last request".to_vec();
        for target in ["?q=1", "/?q=1"] {
            write_request(&mut req, target, "h:1");
            assert_eq!(
                req,
                b"GET /?q=1 HTTP/1.1\r\nHost: h:1\r\nUser-Agent: leakprobe-raw/0.1\r\nAccept: */*\r\n\
                  Connection: keep-alive\r\n\r\n",
                "{target}"
            );
        }
    }
}
