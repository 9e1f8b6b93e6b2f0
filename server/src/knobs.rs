//! The misbehaviour knobs of a request's query string (`status`, `bytes`, `chunked`, `close`,
//! `drop`, `drip_ms`, `latency_ms`, `cookie`), parsed and checked. Pure: no I/O.

use std::fmt;
use std::time::Duration;

/// Largest `bytes=N` accepted (1 GiB): a body is streamed, never held in memory.
pub const MAX_BYTES: u64 = 1 << 30;
/// Largest `latency_ms=N` and `drip_ms=N` accepted (10 minutes).
pub const MAX_MS: u64 = 600_000;

/// What a request asked the server to do; defaults mean "behave".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// `status=CODE` (200..=599): the response's status code.
    pub status: u16,
    /// `bytes=N`: a body of exactly N bytes (the JSON padded with spaces, or cut short).
    pub bytes: Option<u64>,
    /// `chunked=1`: `Transfer-Encoding: chunked` instead of `Content-Length`.
    pub chunked: bool,
    /// `close=1`: answer with `Connection: close`, then close the connection.
    pub close: bool,
    /// `drop=1`: after the latency, close the connection without any response.
    pub drop: bool,
    /// `drip_ms=N`: write the body in up to 16 slices, pausing N ms before each.
    pub drip: Option<Duration>,
    /// `latency_ms=N`: this request's latency instead of the configured one.
    pub latency: Option<Duration>,
    /// `cookie=1`: the response sets a cookie, `leakprobe=<seq>; Path=/` (always the same
    /// name, a new value each time: a cookie jar should hold one).
    pub cookie: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            status: 200,
            bytes: None,
            chunked: false,
            close: false,
            drop: false,
            drip: None,
            latency: None,
            cookie: false,
        }
    }
}

/// Why a query string was refused; its `Display` is the one-line reason of the `400`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnobError {
    knob: &'static str,
    value: String,
    expected: &'static str,
}

impl fmt::Display for KnobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value comes from the network: show it escaped and shortened, on one line.
        let mut shown: String = self.value.chars().take(40).collect();
        if self.value.chars().count() > 40 {
            shown.push('…');
        }
        write!(
            f,
            "invalid {}={:?}: expected {}",
            self.knob, shown, self.expected
        )
    }
}

impl std::error::Error for KnobError {}

impl Knobs {
    /// Parses the part of a request target after `?` (without the `?`). Unknown keys are
    /// ignored; a later repeat of a key wins; `close`, `chunked` and `drop` alone mean `=1`.
    pub fn parse(query: &str) -> Result<Knobs, KnobError> {
        let mut knobs = Knobs::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            match key {
                "status" => {
                    knobs.status =
                        number("status", value, 200, 599, "a status code 200..=599")? as u16
                }
                "bytes" => {
                    knobs.bytes = Some(number(
                        "bytes",
                        value,
                        0,
                        MAX_BYTES,
                        "a byte count 0..=1073741824",
                    )?)
                }
                "chunked" => knobs.chunked = flag("chunked", value)?,
                "close" => knobs.close = flag("close", value)?,
                "drop" => knobs.drop = flag("drop", value)?,
                "cookie" => knobs.cookie = flag("cookie", value)?,
                "drip_ms" => knobs.drip = Some(millis("drip_ms", value)?).filter(|d| !d.is_zero()),
                "latency_ms" => knobs.latency = Some(millis("latency_ms", value)?),
                _ => {}
            }
        }
        Ok(knobs)
    }
}

fn number(
    knob: &'static str,
    value: Option<&str>,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Result<u64, KnobError> {
    let raw = value.unwrap_or("");
    // `parse` alone would accept a leading `+`: insist on plain digits.
    let parsed = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<u64>().ok()
    } else {
        None
    };
    parsed
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| KnobError {
            knob,
            value: raw.to_owned(),
            expected,
        })
}

fn millis(knob: &'static str, value: Option<&str>) -> Result<Duration, KnobError> {
    number(knob, value, 0, MAX_MS, "milliseconds 0..=600000").map(Duration::from_millis)
}

fn flag(knob: &'static str, value: Option<&str>) -> Result<bool, KnobError> {
    match value {
        None | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(other) => Err(KnobError {
            knob,
            value: other.to_owned(),
            expected: "1 or 0",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn accepted_queries() {
        let d = Knobs::default();
        let table: &[(&str, Knobs)] = &[
            ("", d),
            ("a=b&&c", d),
            ("status=503", Knobs { status: 503, ..d }),
            ("status=200&status=404", Knobs { status: 404, ..d }),
            (
                "bytes=0",
                Knobs {
                    bytes: Some(0),
                    ..d
                },
            ),
            (
                "bytes=1048576",
                Knobs {
                    bytes: Some(1 << 20),
                    ..d
                },
            ),
            ("chunked=1", Knobs { chunked: true, ..d }),
            ("chunked", Knobs { chunked: true, ..d }),
            ("chunked=0", d),
            ("close=true", Knobs { close: true, ..d }),
            ("drop=1", Knobs { drop: true, ..d }),
            ("cookie=1", Knobs { cookie: true, ..d }),
            ("cookie", Knobs { cookie: true, ..d }),
            ("cookie=0", d),
            (
                "drip_ms=5",
                Knobs {
                    drip: Some(5 * MS),
                    ..d
                },
            ),
            ("drip_ms=0", d),
            (
                "latency_ms=0",
                Knobs {
                    latency: Some(Duration::ZERO),
                    ..d
                },
            ),
            (
                "latency_ms=250&unknown=%ff",
                Knobs {
                    latency: Some(250 * MS),
                    ..d
                },
            ),
        ];
        for (query, want) in table {
            assert_eq!(Knobs::parse(query).as_ref(), Ok(want), "query {query:?}");
        }
    }

    #[test]
    fn refused_queries_name_the_knob() {
        let table: &[(&str, &str)] = &[
            ("status=abc", "status"),
            ("status=99", "status"),
            ("status=600", "status"),
            ("status=", "status"),
            ("status", "status"),
            ("bytes=-1", "bytes"),
            ("bytes=+5", "bytes"),
            ("bytes=1073741825", "bytes"),
            ("bytes=99999999999999999999999", "bytes"),
            ("chunked=yes", "chunked"),
            ("close=2", "close"),
            ("drop=x", "drop"),
            ("cookie=yes", "cookie"),
            ("drip_ms=1.5", "drip_ms"),
            ("latency_ms=600001", "latency_ms"),
        ];
        for (query, knob) in table {
            let err = Knobs::parse(query).expect_err(query);
            let line = err.to_string();
            assert!(
                line.starts_with(&format!("invalid {knob}=")),
                "{query}: {line}"
            );
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn reason_shortens_hostile_values() {
        let long = format!("status={}\r\n", "9".repeat(10_000));
        let line = Knobs::parse(&long).expect_err("too long").to_string();
        assert!(line.len() < 120, "{line}");
        assert!(!line.contains('\r') && !line.contains('\n'));
    }
}
