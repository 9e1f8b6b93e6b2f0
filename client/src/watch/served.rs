//! The server's count of requests served, as a watch reads it: the in-process latency server's
//! counter, or a running latency-server's `/__stats` over HTTP; and the small HTTP client watch's
//! own requests (`/__stats`, `--ready`, `--kick`) go through. Reads counts only: it starts and
//! signals no process.

use std::time::{Duration, Instant};

/// How often the served count is recorded (and the watch loop turns).
pub const TICK: Duration = Duration::from_millis(5);
/// How often a `--url` server's `/__stats` is read.
const REMOTE_POLL: Duration = Duration::from_millis(20);
/// How long the final count waits for the server's requests in flight.
const SETTLE: Duration = Duration::from_secs(1);

/// A count of requests served since the watch began.
pub trait ServedCount {
    /// The count now (a remote server's as of its last poll).
    fn read(&mut self) -> u64;
    /// The final count, once the program has stopped: read now (not a cached poll), after the
    /// requests still in flight at the server have been answered (waiting at most a second),
    /// so the last requests the program sent are all counted.
    fn settle(&mut self) -> u64;
}

/// Where the served count comes from.
pub enum Served<'a> {
    /// The latency server in this process (none: nothing is ever served).
    InProcess(Option<&'a latency_server::RunningServer>),
    /// A running latency-server's `/__stats`, minus its count when the watch began, read every
    /// 20 ms at most.
    Remote {
        /// Keeps one connection to the server alive across polls.
        agent: ureq::Agent,
        /// `http://ADDR/__stats`.
        stats: String,
        base: u64,
        last: u64,
        next: Instant,
    },
}

impl Served<'_> {
    /// The running latency-server at `authority` (`HOST:PORT`), its count now the watch's zero;
    /// an error names the URL that did not answer.
    pub fn remote(authority: &str) -> Result<Served<'static>, String> {
        let agent = agent(Duration::from_secs(2));
        let stats = format!("http://{authority}{}", latency_server::STATS_PATH);
        let (base, _) = stats_counts(&agent, &stats).ok_or_else(|| {
            format!("no latency-server answers {stats} (watch needs its served count)")
        })?;
        Ok(Served::Remote {
            agent,
            stats,
            base,
            last: 0,
            next: Instant::now(),
        })
    }
}

impl ServedCount for Served<'_> {
    fn read(&mut self) -> u64 {
        match self {
            // Every tick (5 ms): the counter alone, not a whole snapshot with its RSS read.
            Served::InProcess(server) => server.map_or(0, |s| s.served()),
            Served::Remote {
                agent,
                stats,
                base,
                last,
                next,
            } => {
                if Instant::now() >= *next {
                    *next = Instant::now() + REMOTE_POLL;
                    if let Some((n, _)) = stats_counts(agent, stats) {
                        *last = n.saturating_sub(*base);
                    }
                }
                *last
            }
        }
    }

    fn settle(&mut self) -> u64 {
        let until = Instant::now() + SETTLE;
        loop {
            let (served, in_flight) = match self {
                Served::InProcess(server) => match server {
                    Some(s) => {
                        let st = s.stats();
                        (st.served, st.in_flight)
                    }
                    None => return 0,
                },
                Served::Remote {
                    agent,
                    stats,
                    base,
                    last,
                    ..
                } => match stats_counts(agent, stats) {
                    Some((n, in_flight)) => {
                        *last = n.saturating_sub(*base);
                        (*last, in_flight)
                    }
                    None => return *last,
                },
            };
            if in_flight == 0 || Instant::now() >= until {
                return served;
            }
            std::thread::sleep(TICK);
        }
    }
}

/// `(served, in_flight)` from a latency-server's `/__stats`.
fn stats_counts(agent: &ureq::Agent, stats: &str) -> Option<(u64, u64)> {
    let (status, body) = http_get(agent, stats).ok()?;
    if status != 200 {
        return None;
    }
    // The two fields read, not a `serde_json::Value` map of all of them: this runs every poll.
    #[derive(serde::Deserialize)]
    struct Counts {
        served: u64,
        in_flight: u64,
    }
    let c: Counts = serde_json::from_str(&body).ok()?;
    Some((c.served, c.in_flight))
}

/// An agent for watch's own requests (`/__stats` polls, `--ready`, `--kick`): any status is a
/// response, each phase of an exchange bounded by `timeout` (no resolver thread per request).
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .build()
        .into()
}

/// `GET url`: the status and the body.
pub fn http_get(agent: &ureq::Agent, url: &str) -> Result<(u16, String), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> latency_server::RunningServer {
        latency_server::Server::start(latency_server::Config {
            addr: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            latency: Duration::ZERO,
            report_every: None,
            ..latency_server::Config::default()
        })
        .expect("the latency server starts")
    }

    fn get(agent: &ureq::Agent, server: &latency_server::RunningServer, n: u32) {
        for _ in 0..n {
            let url = format!("http://{}/x", server.addr());
            assert_eq!(http_get(agent, &url).map(|(s, _)| s), Ok(200));
        }
    }

    #[test]
    fn the_in_process_count_is_the_servers_and_none_is_zero() {
        let s = server();
        get(&agent(Duration::from_secs(5)), &s, 3);
        let mut served = Served::InProcess(Some(&s));
        assert_eq!((served.read(), served.settle()), (3, 3));
        let mut none = Served::InProcess(None);
        assert_eq!((none.read(), none.settle()), (0, 0));
        s.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn a_remote_count_starts_at_zero_when_the_watch_begins() {
        let s = server();
        let client = agent(Duration::from_secs(5));
        get(&client, &s, 2);
        let mut served = Served::remote(&s.addr().to_string()).expect("a latency-server");
        assert_eq!(served.read(), 0, "the two before the watch are not counted");
        get(&client, &s, 3);
        assert_eq!(served.settle(), 3);
        assert_eq!(served.read(), 3, "the settled count is the last");
        s.shutdown(Duration::from_secs(1));
    }

    #[test]
    fn a_url_with_no_latency_server_is_an_error_naming_its_stats() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let Err(e) = Served::remote(&format!("127.0.0.1:{port}")) else {
            panic!("nothing listens on {port}");
        };
        assert_eq!(
            e,
            format!(
                "no latency-server answers http://127.0.0.1:{port}/__stats (watch needs its \
                 served count)"
            )
        );
    }
}
