//! The workload: the target URL, the client's one URL splitter, and the request URLs generated
//! from the target (unique, padded to a length, repeatable from a seed). Pure: no I/O, no clock,
//! no allocation per URL.

use std::fmt;

use rand::{RngCore, SeedableRng, rngs::SmallRng};

/// A checked `http://host:port/path?query` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` as written (the port defaults to 80).
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// Path without the query; at least `/`.
    pub path: String,
    /// Query string without the `?`, if any.
    pub query: Option<String>,
}

impl Target {
    /// Parses and checks a URL: only plain `http` (leakprobe measures on loopback; no TLS).
    /// The URL is split by [`split_url`], the same function the raw client uses per request.
    pub fn parse(s: &str) -> Result<Target, String> {
        let trimmed = s.trim();
        let url = split_url(trimmed).map_err(|e| match e {
            UrlError::NoScheme if trimmed.bytes().all(|b| b.is_ascii_graphic()) => {
                format!("`{s}` has no scheme: write http://{s}")
            }
            UrlError::Scheme => {
                let scheme = trimmed.split_once("://").map_or("", |(scheme, _)| scheme);
                format!(
                    "only http:// URLs are supported, not {}://",
                    scheme.to_ascii_lowercase()
                )
            }
            UrlError::NoHost => format!("`{s}` has no host"),
            e => format!("`{s}` is not a URL: {e}"),
        })?;
        let host = url.host.to_string();
        let port = url.port;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let path = match url.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Ok(Target {
            authority,
            host,
            port,
            path,
            query: url.query().map(str::to_string),
        })
    }
}

/// The pieces of an absolute `http://host[:port][/path][?query][#fragment]` URL, borrowed from
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `host[:port]` exactly as written: the `Host` header's value.
    pub authority: &'a str,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: &'a str,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and query as written (possibly empty, or starting with `?`); fragment removed.
    pub target: &'a str,
}

impl<'a> UrlParts<'a> {
    /// The path without the query (possibly empty).
    pub fn path(&self) -> &'a str {
        self.target
            .split_once('?')
            .map_or(self.target, |(path, _)| path)
    }

    /// The query without the `?`, if there is a `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, query)| query)
    }
}

/// Why [`split_url`] refused a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// The empty string.
    Empty,
    /// No `scheme://` at the start.
    NoScheme,
    /// A scheme other than `http`.
    Scheme,
    /// Nothing between `http://` and the path, or an empty host before a port.
    NoHost,
    /// `user@host`: never needed on loopback, and a way to hide the real host.
    UserInfo,
    /// Whitespace, a control character, non-ASCII or a delimiter in the authority.
    HostChar,
    /// Whitespace, a control character or non-ASCII in the path or query: sent as written, such
    /// bytes could split the request, so they are refused rather than encoded.
    TargetChar,
    /// `[` of an IPv6 literal without its `]`.
    UnclosedBracket,
    /// Something other than `:port` after an IPv6 literal's `]`.
    AfterBracket,
    /// A port that is empty, not decimal digits, 0, or over 65535.
    Port,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Empty => "empty",
            UrlError::NoScheme => "no scheme (only http:// URLs are supported)",
            UrlError::Scheme => "only http:// URLs are supported",
            UrlError::NoHost => "no host",
            UrlError::UserInfo => "user info is not supported",
            UrlError::HostChar => "invalid character in host",
            UrlError::TargetChar => "path must be ASCII without spaces or control characters",
            UrlError::UnclosedBracket => "unclosed [",
            UrlError::AfterBracket => "junk after ]",
            UrlError::Port => "invalid port",
        })
    }
}

impl std::error::Error for UrlError {}

/// Splits an absolute `http://` URL without allocating: the client's one URL parser, used once
/// for the target ([`Target::parse`]) and by the raw client for every request. Only plain http
/// is accepted (the scheme in any case); the fragment is dropped.
pub fn split_url(url: &str) -> Result<UrlParts<'_>, UrlError> {
    if url.is_empty() {
        return Err(UrlError::Empty);
    }
    let rest = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
        _ => {
            return Err(match url.split_once("://") {
                Some((scheme, _)) if is_scheme(scheme) => UrlError::Scheme,
                _ => UrlError::NoScheme,
            });
        }
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let target = tail.split_once('#').map_or(tail, |(before, _)| before);
    if authority.is_empty() {
        return Err(UrlError::NoHost);
    }
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }
    if !authority
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b))
    {
        return Err(UrlError::HostChar);
    }
    if !all_graphic(target.as_bytes()) {
        return Err(UrlError::TargetChar);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(UrlError::UnclosedBracket)?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or(UrlError::AfterBracket)?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(UrlError::Port),
        },
    };
    Ok(UrlParts {
        authority,
        host,
        port,
        target,
    })
}

/// Whether every byte is a visible ASCII character (`!` to `~`): `is_ascii_graphic` over 32-byte
/// blocks without an early exit inside a block, which the compiler vectorizes. The raw client
/// checks every request's 1000-character target: a byte at a time took ~0.4 µs, 3% of its CPU.
fn all_graphic(bytes: &[u8]) -> bool {
    bytes.chunks(32).all(|block| {
        block
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(b'!') < b'~' - b'!' + 1))
    })
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_scheme(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// The URL-safe base64 alphabet (RFC 4648 §5): letters, digits, `-` and `_`, all unreserved in a
/// URL path (RFC 3986 §2.3).
#[cfg(test)]
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `URL_SAFE[v]` for `v < 64`, computed without a table or a branch (so a loop over a buffer
/// vectorizes).
#[inline]
fn url_safe(v: u8) -> u8 {
    let mut c = v.wrapping_add(b'A');
    if v >= 26 {
        c = v.wrapping_add(b'a' - 26);
    }
    if v >= 52 {
        c = v.wrapping_sub(52).wrapping_add(b'0');
    }
    if v == 62 {
        c = b'-';
    }
    if v == 63 {
        c = b'_';
    }
    c
}

/// Builds request URLs into a reused buffer.
#[derive(Debug, Clone)]
pub struct UrlGen {
    prefix: String,
    /// Characters of the path already in `prefix`.
    base_path_len: usize,
    query: Option<String>,
    path_len: usize,
    seed: u64,
    unique: bool,
}

impl UrlGen {
    pub fn new(target: &Target, path_len: usize, seed: u64, unique: bool) -> UrlGen {
        let mut prefix = format!("http://{}{}", target.authority, target.path);
        if path_len > 0 && !prefix.ends_with('/') {
            prefix.push('/');
        }
        let base_path_len = prefix.len() - "http://".len() - target.authority.len();
        UrlGen {
            prefix,
            base_path_len,
            query: target.query.clone(),
            path_len,
            seed,
            unique,
        }
    }

    /// Capacity a buffer needs so that `write` never reallocates.
    pub fn max_len(&self) -> usize {
        self.prefix.len() + self.path_len + 24 + self.query.as_ref().map_or(0, |q| q.len() + 1)
    }

    /// Writes the URL of request `seq` into `out` (cleared first). The same (seed, seq) always
    /// gives the same URL, whichever worker sends it.
    pub fn write(&self, seq: u64, out: &mut String) {
        use std::fmt::Write as _;
        out.clear();
        out.push_str(&self.prefix);
        if self.path_len > 0 {
            let seq = if self.unique { seq } else { 0 };
            let before = out.len();
            // The sequence number makes the URL unique even if two random tails collide.
            let _ = write!(out, "{seq:08}-");
            let mut rng =
                SmallRng::seed_from_u64(self.seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let used = self.base_path_len + (out.len() - before);
            let mut left = self.path_len.saturating_sub(used);
            // Random bytes, six bits of each mapped to the URL-safe base64 alphabet by a
            // branch-free function the compiler vectorizes: a 1000-character path takes ~0.25 µs
            // (one `gen_range` draw per character took 1.9 µs, an eighth of the raw client's CPU
            // per request; a multiply-shift per character 0.75 µs).
            let mut chunk = [0u8; 256];
            while left > 0 {
                let n = left.min(chunk.len());
                rng.fill_bytes(&mut chunk[..n]);
                for c in &mut chunk[..n] {
                    *c = url_safe(*c & 63);
                }
                // ASCII by construction, so this never fails.
                out.push_str(std::str::from_utf8(&chunk[..n]).unwrap_or_default());
                left -= n;
            }
        }
        if let Some(q) = &self.query {
            out.push('?');
            out.push_str(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(url: &str) -> &str {
        let after_scheme = &url["http://".len()..];
        let start = after_scheme.find('/').expect("has a path");
        let path = &after_scheme[start..];
        path.split('?').next().expect("split yields one")
    }

    #[test]
    fn parses_targets_and_rejects_what_it_cannot_measure() {
        let t = Target::parse("http://127.0.0.1:9000/api/sync?latency_ms=5").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9000));
        assert_eq!(t.path, "/api/sync");
        assert_eq!(t.query.as_deref(), Some("latency_ms=5"));
        assert_eq!(t.to_string(), "http://127.0.0.1:9000/api/sync?latency_ms=5");
        assert_eq!(
            Target::parse("http://localhost").expect("valid").authority,
            "localhost:80"
        );
        assert_eq!(
            Target::parse("http://[::1]:81/").expect("valid").authority,
            "[::1]:81"
        );
        for bad in ["https://x", "127.0.0.1:8080", "http://", "not a url", ""] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn target_errors_say_what_is_wrong() {
        let cases = [
            ("https://x", "only http:// URLs are supported, not https://"),
            ("FTP://h/", "only http:// URLs are supported, not ftp://"),
            (
                "127.0.0.1:8080",
                "`127.0.0.1:8080` has no scheme: write http://127.0.0.1:8080",
            ),
            ("http://", "`http://` has no host"),
            ("http://:80/", "`http://:80/` has no host"),
            ("", "`` is not a URL: empty"),
            (
                "not a url",
                "`not a url` is not a URL: no scheme (only http:// URLs are supported)",
            ),
            ("http://h:0/", "`http://h:0/` is not a URL: invalid port"),
            (
                "http://h/a b",
                "`http://h/a b` is not a URL: path must be ASCII without spaces or control \
                 characters",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(Target::parse(url), Err(want.to_string()), "{url}");
        }
    }

    #[test]
    fn targets_take_path_query_and_default_port_from_the_split() {
        let t = Target::parse("  HTTP://h?q=1#frag ").expect("valid");
        assert_eq!(
            (t.authority.as_str(), t.host.as_str(), t.port),
            ("h:80", "h", 80)
        );
        assert_eq!((t.path.as_str(), t.query.as_deref()), ("/", Some("q=1")));
        assert_eq!(t.to_string(), "http://h:80/?q=1");
        let t = Target::parse("http://[::1]/a/b").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(t.to_string(), "http://[::1]:80/a/b");
    }

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
            let got = split_url(url).expect(url);
            assert_eq!(
                got,
                UrlParts {
                    authority,
                    host,
                    port,
                    target
                },
                "{url}"
            );
        }
        let parts = split_url("http://h/a/b?c=d?e").expect("valid");
        assert_eq!((parts.path(), parts.query()), ("/a/b", Some("c=d?e")));
        let parts = split_url("http://h").expect("valid");
        assert_eq!((parts.path(), parts.query()), ("", None));
    }

    #[test]
    fn bad_urls_are_refused_with_their_reason() {
        use UrlError::*;
        let cases = [
            ("", Empty),
            ("https://h/", Scheme),
            ("ftp://h/", Scheme),
            ("h:80/x", NoScheme),
            ("http:/h", NoScheme),
            ("://h", NoScheme),
            ("http:/\u{e9}", NoScheme),
            ("http://", NoHost),
            ("http:///x", NoHost),
            ("http://:8080/x", NoHost),
            ("http://[]:1/", NoHost),
            ("http://u@h/x", UserInfo),
            ("http://h{/x", HostChar),
            ("http://h\t/x", HostChar),
            ("http://h/a b", TargetChar),
            ("http://h/a\r\nX: y", TargetChar),
            ("http://h/\u{e9}", TargetChar),
            ("http://[::1/x", UnclosedBracket),
            ("http://[::1]x/", AfterBracket),
            ("http://h:/x", Port),
            ("http://h:0/x", Port),
            ("http://h:99999/x", Port),
            ("http://h:+1/x", Port),
        ];
        for (url, want) in cases {
            assert_eq!(split_url(url), Err(want), "{url:?}");
        }
    }

    #[test]
    fn urls_are_padded_unique_repeatable_and_keep_the_query() {
        let t = Target::parse("http://127.0.0.1:8080/base?status=500").expect("valid");
        let g = UrlGen::new(&t, 1000, 7, true);
        let (mut a, mut b, mut c) = (String::new(), String::new(), String::new());
        g.write(1, &mut a);
        g.write(2, &mut b);
        g.write(1, &mut c);
        assert_eq!(path_of(&a).len(), 1000);
        assert!(path_of(&a).starts_with("/base/00000001-"));
        assert!(a.ends_with("?status=500"));
        assert_ne!(a, b);
        assert_eq!(a, c, "same seed and sequence number, same URL");
        assert!(
            path_of(&a)["/base/00000001-".len()..]
                .bytes()
                .all(|b| URL_SAFE.contains(&b))
        );
        assert!(a.len() <= g.max_len());
        let other_seed = UrlGen::new(&t, 1000, 8, true);
        let mut d = String::new();
        other_seed.write(1, &mut d);
        assert_ne!(a, d);
    }

    #[test]
    fn all_graphic_agrees_with_is_ascii_graphic_wherever_the_odd_byte_is() {
        for len in [0, 1, 31, 32, 33, 64, 100, 1000] {
            let good = vec![b'a'; len];
            assert!(all_graphic(&good), "{len} graphic bytes");
            for at in 0..len {
                for bad in [0u8, b' ', 0x7f, 0x80, 0xff, b'\t'] {
                    let mut v = good.clone();
                    v[at] = bad;
                    assert!(!all_graphic(&v), "byte {bad:#x} at {at} of {len}");
                }
            }
        }
        for b in 0..=255u8 {
            assert_eq!(all_graphic(&[b]), b.is_ascii_graphic(), "{b:#x}");
        }
    }

    #[test]
    fn url_safe_maps_six_bits_onto_the_alphabet() {
        for v in 0..64u8 {
            assert_eq!(url_safe(v), URL_SAFE[usize::from(v)], "{v}");
        }
    }

    #[test]
    fn the_random_tail_uses_every_url_safe_character_evenly() {
        let t = Target::parse("http://127.0.0.1:8080/").expect("valid");
        let g = UrlGen::new(&t, 1000, 3, true);
        let mut counts = [0u64; 128];
        let mut url = String::new();
        for seq in 0..200 {
            g.write(seq, &mut url);
            for b in path_of(&url)["/00000000-".len()..].bytes() {
                counts[usize::from(b)] += 1;
            }
        }
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / 64.0;
        for &c in URL_SAFE {
            let n = counts[usize::from(c)] as f64;
            assert!(
                (n - expected).abs() < 0.1 * expected,
                "{}: {n} of {total}, expected about {expected:.0}",
                c as char
            );
        }
    }

    #[test]
    fn repeated_and_unpadded_urls() {
        let t = Target::parse("http://127.0.0.1:8080").expect("valid");
        let same = UrlGen::new(&t, 300, 1, false);
        let (mut a, mut b) = (String::new(), String::new());
        same.write(1, &mut a);
        same.write(99, &mut b);
        assert_eq!(a, b);
        assert_eq!(path_of(&a).len(), 300);
        let plain = UrlGen::new(
            &Target::parse("http://h:1/x?y=1").expect("valid"),
            0,
            1,
            true,
        );
        plain.write(5, &mut a);
        assert_eq!(a, "http://h:1/x?y=1");
    }

    #[test]
    fn writing_into_a_sized_buffer_never_reallocates() {
        let g = UrlGen::new(
            &Target::parse("http://127.0.0.1:8080/").expect("valid"),
            1000,
            1,
            true,
        );
        let mut buf = String::with_capacity(g.max_len());
        let cap = buf.capacity();
        for seq in [0, 1, 99_999_999, u64::MAX] {
            g.write(seq, &mut buf);
            assert_eq!(buf.capacity(), cap);
        }
    }
}
