//! The workload: the target URL and the request URLs generated from it (unique, padded to a
//! length, repeatable from a seed). Pure: no I/O, no clock, no allocation per URL.

use std::fmt;

use rand::{Rng, SeedableRng, rngs::SmallRng};

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
    pub fn parse(s: &str) -> Result<Target, String> {
        let uri: ureq::http::Uri = s
            .trim()
            .parse()
            .map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(format!("only http:// URLs are supported, not {other}://")),
            None => return Err(format!("`{s}` has no scheme: write http://{s}")),
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{s}` has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let path = match uri.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Ok(Target {
            authority,
            host,
            port,
            path,
            query: uri.query().map(str::to_string),
        })
    }
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

const ALPHANUMERIC: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

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
            for _ in used..self.path_len {
                out.push(ALPHANUMERIC[rng.gen_range(0..ALPHANUMERIC.len())] as char);
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
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert!(a.len() <= g.max_len());
        let other_seed = UrlGen::new(&t, 1000, 8, true);
        let mut d = String::new();
        other_seed.write(1, &mut d);
        assert_ne!(a, d);
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
