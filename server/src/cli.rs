//! The `latency-server` command line: flags ([`ServerArgs`], which leak-client's `watch` and
//! `compare` flatten for their in-process server), their parsers and `--help`, turned once
//! into a checked [`Config`]. Nothing else reads flags.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser};

use crate::config::Config;
use crate::latency;

const KNOBS_HELP: &str = "\
QUERY KNOBS (any method, any path; unknown keys ignored; an invalid value gets 400 + a one-line reason):
  status=CODE    answer with CODE (200..=599); 204 and 304 carry no body
  bytes=N        body of exactly N bytes: the JSON padded with spaces, or cut short (N <= 1 GiB)
  chunked=1      Transfer-Encoding: chunked instead of Content-Length
  close=1        send `Connection: close`, then shut the socket down after the response
  drop=1         after the latency, shut the socket down without any response (client sees EOF)
  drip_ms=N      write the body in up to 16 slices, pausing N ms before each
  latency_ms=N   this request's latency instead of --latency/--jitter (N <= 600000)
  cookie=1       also `Set-Cookie: leakprobe=<seq>; Path=/` (one name, a new value each time)
  GET /__stats   counters as JSON, answered at once

  e.g. curl -v 'http://127.0.0.1:8080/some/long/path?status=503&bytes=100000&chunked=1'

HOW THIS DIFFERS FROM A HAND-WRITTEN SERVER (tiny_http underneath):
  close=1 and drop=1 shut the socket down (FIN), they never reset it (RST).
  Malformed request lines or headers get 400 from tiny_http, a request line over 64 KiB 414,
  headers over 64 KiB 431; each closes the connection. Bodies over 1 MiB get 413 + close.
  A connection silent for --idle-timeout (idle keep-alive, or a half-sent request) is closed
  without a response; a request whose latency exceeds it is still answered (and, if the
  client pipelined more requests behind it meanwhile, the connection is closed afterwards).
  Every open connection holds one thread, which also sleeps for its request; a request
  pipelined behind another on the same connection (or dripping its body) gets one more.

  RUST_LOG=debug (or trace) shows more; logs go to stderr.";

/// A test server with simulated latency and misbehaviour knobs, for HTTP clients under load.
///
/// Answers any method on any path (long paths welcome) with a small JSON body such as
/// {"seq":123,"path_len":1003,"latency_ms":100} after sleeping the latency. Each request in
/// flight has its own thread, so N concurrent clients see about one latency, not N.
/// Logs a line of counters and memory every --report-every; Ctrl-C or SIGTERM stops
/// accepting, lets requests in flight finish and prints the final counters.
#[derive(Debug, Clone, Parser)]
#[command(name = "latency-server", version, after_long_help = KNOBS_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub server: ServerArgs,
}

impl Cli {
    /// The server configuration these flags ask for, drawing `--latency-random` with `seed`.
    pub fn config(&self, seed: u64) -> Config {
        self.server.config(seed)
    }
}

/// Every flag of the server: the `latency-server` binary's, and those of the server that
/// leak-client's `watch` and `compare` start in-process (which flatten this struct, renaming
/// `--seed`, `--report-every` and `--mem-limit` to `--server-…` beside their own; the ids
/// `server_seed`, `server_report_every`, `server_mem_limit` say so).
#[derive(Debug, Clone, Args)]
#[group(id = "latency_server_args")]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port (the log says which). `localhost:PORT`
    /// listens on both 127.0.0.1 and [::1] at one port, and the server's URL names
    /// `localhost`. A non-loopback address gets a warning.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub addr: ListenAddr,

    /// Latency of every request, e.g. `100ms`, `1s`, `0s`.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration, allow_hyphen_values = true)]
    pub latency: Duration,

    /// Uniform jitter: each request sleeps a draw from latency ± jitter (never below 0).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub jitter: Duration,

    /// Draw one latency per process, uniformly from MIN..MAX, and use it for every request
    /// (the original Express server did this with 100ms..300ms).
    #[arg(
        long,
        value_name = "MIN..MAX",
        value_parser = parse_range,
        allow_hyphen_values = true,
        conflicts_with_all = ["latency", "jitter"]
    )]
    pub latency_random: Option<RangeInclusive<Duration>>,

    /// Seed for --jitter and --latency-random; the same seed repeats the same latencies.
    /// Default: a fresh seed, logged at start.
    #[arg(id = "server_seed", long = "seed", value_name = "U64", value_parser = parse_seed, allow_hyphen_values = true)]
    pub seed: Option<u64>,

    /// Most requests in flight at once (each holds a thread); past it the server answers
    /// 503 with `Retry-After: 1` at once.
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = parse_max_in_flight, allow_hyphen_values = true)]
    pub max_in_flight: u32,

    /// Interval of the info line with requests served, rate, in flight, live heap and RSS;
    /// `0s` turns it off.
    #[arg(id = "server_report_every", long = "report-every", value_name = "DURATION", default_value = "1s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub report_every: Duration,

    /// Close a connection that sent nothing for this long (idle keep-alive or a half-sent
    /// request); also the longest a blocked write waits.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub idle_timeout: Duration,

    /// Hard cap on the server's heap, e.g. `512MiB`, `2GB`; an allocation past it aborts
    /// the process. kB, MB, GB are powers of 1000 and KiB, MiB, GiB powers of 1024 (`1GB`
    /// is 10^9 bytes, `1GiB` 2^30); a bare number is bytes. Default: no cap.
    #[arg(id = "server_mem_limit", long = "mem-limit", value_name = "SIZE", value_parser = parse_size, allow_hyphen_values = true)]
    pub mem_limit: Option<u64>,

    /// Set this cookie on every answer (repeatable): `Set-Cookie: NAME=VALUE; Path=/`. Cookie
    /// jars are a classic leak; the `cookie=1` query knob sets one per request instead.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_cookie)]
    pub set_cookie: Vec<String>,
}

/// Where to listen: one socket address, or `localhost:PORT` (127.0.0.1 and [::1]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    /// The address to bind (`127.0.0.1:PORT` for `localhost`).
    pub addr: SocketAddr,
    /// Also `[::1]` on the same port, and name the server `localhost`.
    pub localhost: bool,
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.localhost {
            write!(f, "localhost:{}", self.addr.port())
        } else {
            write!(f, "{}", self.addr)
        }
    }
}

impl ServerArgs {
    /// `--seed`, or a fresh seed that differs between runs (log it so a run can repeat).
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(fresh_seed)
    }

    /// The server configuration these flags ask for, drawing `--latency-random` with `seed`.
    pub fn config(&self, seed: u64) -> Config {
        let latency = match &self.latency_random {
            Some(range) => latency::draw_once(range, seed),
            None => self.latency,
        };
        Config {
            addr: self.addr.addr,
            localhost: self.addr.localhost,
            latency,
            jitter: if self.latency_random.is_some() {
                Duration::ZERO
            } else {
                self.jitter
            },
            seed,
            max_in_flight: self.max_in_flight as usize,
            report_every: Some(self.report_every).filter(|d| !d.is_zero()),
            idle_timeout: self.idle_timeout,
            set_cookies: self.set_cookie.clone(),
            ..Config::default()
        }
    }
}

/// A seed that differs between runs: enough for jitter, and logged so a run can repeat.
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{s}`: expected localhost:PORT with PORT 0..=65535"))?;
        return Ok(ListenAddr {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            localhost: true,
        });
    }
    let addr = s
        .parse()
        .map_err(|_| format!("`{s}`: expected IP:PORT (e.g. 127.0.0.1:8080) or localhost:PORT"))?;
    Ok(ListenAddr {
        addr,
        localhost: false,
    })
}

/// `NAME=VALUE` with a token NAME and a VALUE of RFC 6265 cookie-octets.
fn parse_cookie(s: &str) -> Result<String, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))?;
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "`{name}`: a cookie NAME is letters, digits and !#$%&'*+-.^_`|~"
        ));
    }
    let octet = |c: char| c.is_ascii_graphic() && !"\",;\\".contains(c);
    if !value.chars().all(octet) {
        return Err(format!(
            "`{value}`: a cookie VALUE has no spaces, quotes, commas, semicolons or backslashes"
        ));
    }
    Ok(s.to_owned())
}

// The value parsers. clap prefixes each error with the flag and the value ("invalid value '-5'
// for '--max-in-flight <N>': "), so a message says only the form expected, never a Rust
// parser's ("invalid digit found in string"); `allow_hyphen_values` on each of these flags lets
// a negative value reach its parser instead of being taken for an unknown flag.

/// What [`parse_duration`] accepts.
const DURATION_FORM: &str = "expected a duration like 0s, 5ms, 100ms or 1s";

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|_| DURATION_FORM.into())
}

fn parse_range(s: &str) -> Result<RangeInclusive<Duration>, String> {
    let form = "expected MIN..MAX with MIN ≤ MAX, like 100ms..300ms";
    let (lo, hi) = s.split_once("..").ok_or_else(|| form.to_string())?;
    let lo = humantime::parse_duration(lo.trim()).map_err(|_| form.to_string())?;
    let hi = humantime::parse_duration(hi.trim().trim_start_matches('='))
        .map_err(|_| form.to_string())?;
    if lo > hi {
        return Err(form.into());
    }
    Ok(lo..=hi)
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if d >= Duration::from_millis(1) => Ok(d),
        _ => Err("expected a duration of at least 1ms, like 500ms or 60s".into()),
    }
}

fn parse_seed(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected a whole number from 0 to {}", u64::MAX))
}

fn parse_max_in_flight(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err("expected a whole number from 1 to 1000000".into()),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let bytes = heapmeter::parse_size(s).map_err(|_| {
        "expected a size like 512MiB or 2GB (kB, MB, GB: powers of 1000; KiB, MiB, GiB: of 1024)"
            .to_string()
    })?;
    if bytes < 1 << 20 {
        return Err(format!(
            "{bytes} bytes is too small to run the server (at least 1 MiB)"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("latency-server").chain(args.iter().copied()))
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn defaults_match_the_library_defaults() {
        let cli = parse(&[]).expect("no flags");
        let config = cli.config(0);
        let d = Config::default();
        assert_eq!(config.addr, d.addr);
        assert_eq!(config.latency, d.latency);
        assert_eq!(config.jitter, d.jitter);
        assert_eq!(config.max_in_flight, d.max_in_flight);
        assert_eq!(config.report_every, d.report_every);
        assert_eq!(config.idle_timeout, d.idle_timeout);
        assert_eq!(cli.server.mem_limit, None);
        assert!(!config.localhost && config.set_cookies.is_empty());
    }

    #[test]
    fn flags_with_units() {
        let cli = parse(&[
            "--addr",
            "127.0.0.1:0",
            "--latency",
            "50ms",
            "--jitter",
            "1s",
            "--max-in-flight",
            "10",
            "--report-every",
            "0s",
            "--idle-timeout",
            "2s",
            "--mem-limit",
            "512MiB",
            "--seed",
            "7",
        ])
        .expect("valid flags");
        let config = cli.config(cli.server.seed.unwrap_or_default());
        assert_eq!(config.addr.port(), 0);
        assert_eq!(config.latency, 50 * MS);
        assert_eq!(config.jitter, 1000 * MS);
        assert_eq!(config.max_in_flight, 10);
        assert_eq!(config.report_every, None);
        assert_eq!(config.idle_timeout, 2000 * MS);
        assert_eq!(config.seed, 7);
        assert_eq!(cli.server.mem_limit, Some(512 << 20));
    }

    #[test]
    fn mem_limit_units_follow_the_one_size_rule() {
        for (text, want) in [
            ("1GB", 1_000_000_000),
            ("1GiB", 1 << 30),
            ("2MB", 2_000_000),
            ("2MiB", 2 << 20),
            ("1048576", 1 << 20),
        ] {
            let cli = parse(&["--mem-limit", text]).expect(text);
            assert_eq!(cli.server.mem_limit, Some(want), "{text}");
        }
    }

    #[test]
    fn latency_random_draws_once_in_range() {
        let cli = parse(&["--latency-random", "100ms..300ms"]).expect("range");
        for seed in 0..20 {
            let config = cli.config(seed);
            assert!((100 * MS..=300 * MS).contains(&config.latency));
            assert_eq!(config.jitter, Duration::ZERO);
        }
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        let table: &[&[&str]] = &[
            &["--latency", "fast"],
            &["--latency-random", "300ms..100ms"],
            &["--latency-random", "100ms"],
            &["--latency-random", "1ms..2ms", "--latency", "5ms"],
            &["--latency-random", "1ms..2ms", "--jitter", "5ms"],
            &["--max-in-flight", "0"],
            &["--mem-limit", "lots"],
            &["--mem-limit", "10KiB"],
            &["--addr", "localhost"],
            &["--addr", "localhost:http"],
            &["--addr", "localhost:70000"],
            &["--set-cookie", "novalue"],
            &["--set-cookie", "=v"],
            &["--set-cookie", "a b=v"],
            &["--set-cookie", "a=v;w"],
            &["--set-cookie", "a=v w"],
            &["--idle-timeout", "0s"],
            &["--frobnicate"],
        ];
        for args in table {
            let err = parse(args).expect_err(&format!("{args:?} must fail"));
            assert_ne!(err.kind(), ErrorKind::DisplayHelp);
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn localhost_listens_on_both_loopbacks_at_one_port_and_cookies_are_kept() {
        let cli = parse(&[
            "--addr",
            "localhost:0",
            "--set-cookie",
            "session=abc",
            "--set-cookie",
            "b=",
        ])
        .expect("valid flags");
        let config = cli.config(0);
        assert_eq!(config.addr, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        assert!(config.localhost);
        assert_eq!(config.set_cookies, ["session=abc", "b="]);
        assert_eq!(cli.server.addr.to_string(), "localhost:0");
        let ip = parse(&["--addr", "[::1]:80"]).expect("v6");
        assert!(!ip.server.addr.localhost);
        assert_eq!(ip.server.addr.to_string(), "[::1]:80");
    }

    #[test]
    fn bad_numbers_name_the_flag_and_the_expected_form() {
        let table: &[(&[&str], &str)] = &[
            (
                &["--latency", "-5ms"],
                "invalid value '-5ms' for '--latency <DURATION>': expected a duration like",
            ),
            (&["--jitter", "fast"], "expected a duration like 0s, 5ms"),
            (
                &["--max-in-flight", "-5"],
                "invalid value '-5' for '--max-in-flight <N>': expected a whole number from 1 to 1000000",
            ),
            (
                &["--max-in-flight", "0"],
                "expected a whole number from 1 to 1000000",
            ),
            (&["--seed", "-1"], "expected a whole number from 0 to"),
            (
                &["--mem-limit", "1XB"],
                "invalid value '1XB' for '--mem-limit <SIZE>': expected a size like 512MiB",
            ),
            (&["--mem-limit", "-1GiB"], "expected a size like"),
            (
                &["--idle-timeout", "-1s"],
                "expected a duration of at least 1ms",
            ),
            (
                &["--latency-random", "-1ms..5ms"],
                "expected MIN..MAX with MIN ≤ MAX",
            ),
            (
                &["--latency-random", "300ms..100ms"],
                "expected MIN..MAX with MIN ≤ MAX",
            ),
        ];
        for (args, want) in table {
            let err = parse(args).expect_err(&format!("{args:?} must fail"));
            assert_eq!(err.exit_code(), 2, "{args:?}");
            let text = err.render().to_string();
            assert!(text.contains(want), "{args:?}: want {want:?} in:\n{text}");
            for internal in ["invalid digit", "unexpected argument", "expected number at"] {
                assert!(
                    !text.contains(internal),
                    "{args:?}: {internal:?} in:\n{text}"
                );
            }
        }
    }

    #[test]
    fn help_documents_every_knob() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for word in [
            "status=",
            "bytes=",
            "chunked=",
            "close=",
            "drop=",
            "drip_ms=",
            "latency_ms=",
            "cookie=",
            "/__stats",
            "--mem-limit",
            "--set-cookie",
        ] {
            assert!(help.contains(word), "--help lacks {word}");
        }
    }
}
