//! Starts and stops the server: the request handler that tiny_http's connection threads
//! call (answers, and sleeps for, each request on the connection's own thread; hands a
//! request pipelined behind another, or one that drips its body, to a pool worker), the
//! answering itself, the reporter, and graceful shutdown. For `localhost` two tiny_http servers
//! (`127.0.0.1` and `[::1]`, one port) share the one handler, counters and pool.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tiny_http::{ConnectionCounts, ConnectionWatch, HTTPVersion, Request};

use crate::config::Config;
use crate::knobs::Knobs;
use crate::latency::LatencyModel;
use crate::listener;
use crate::pool::{Pool, Refused};
use crate::respond::{Reply, write_reply};
use crate::stats::{Counters, StatsSnapshot, report_line};
use crate::wait::{Slept, sleep_watching};

/// Largest request body read (and thrown away); a longer one is answered `413` and closed.
pub const MAX_BODY: u64 = 1 << 20;
/// The path of the counters endpoint.
pub const STATS_PATH: &str = "/__stats";
/// `Retry-After` seconds sent with every `503`.
const RETRY_AFTER_SECS: u32 = 1;
/// How often the housekeeping thread wakes, to notice shutdown.
const TICK: Duration = Duration::from_millis(50);

/// Starts servers; see the crate docs.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds `config.addr` (and `[::1]` on the same port for `config.localhost`) and starts
    /// serving on background threads. Returns once the sockets listen: connecting to
    /// [`RunningServer::addr`] works at once.
    pub fn start(config: Config) -> io::Result<RunningServer> {
        let listeners = listener::bind_all(config.addr, config.localhost, config.idle_timeout)?;
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let addr = addrs[0];
        let control = listeners
            .iter()
            .map(TcpListener::try_clone)
            .collect::<io::Result<Vec<_>>>()?;
        if !addr.ip().is_loopback() {
            log::warn!(
                "listening on non-loopback {addr}: anyone who can reach it can load this machine"
            );
        }

        let counters = Arc::new(Counters::default());
        let cookies: Arc<[String]> = config
            .set_cookies
            .iter()
            .map(|c| format!("{c}; Path=/"))
            .collect();
        let pool = {
            let counters = counters.clone();
            let cookies = cookies.clone();
            Pool::new(
                "latency-worker",
                config.max_in_flight.max(1),
                config.worker_idle,
                move |job: Job| serve(job, &counters, &cookies),
            )
        };
        let connections = ConnectionCounts::default();
        let report_every = config.report_every;
        let shared = Arc::new(Shared {
            latency: LatencyModel::new(config.latency, config.jitter, config.seed),
            config,
            counters,
            cookies,
            pool,
            connections: connections.clone(),
            seq: AtomicU64::new(0),
            started: Instant::now(),
            stopping: AtomicBool::new(false),
        });
        let handler: tiny_http::RequestHandler = {
            let shared = shared.clone();
            Arc::new(move |rq, watch: &mut ConnectionWatch<'_>| handle(&shared, rq, watch))
        };
        let http = listeners
            .into_iter()
            .map(|listener| {
                tiny_http::Server::from_listener_with_handler(
                    listener,
                    None,
                    connections.clone(),
                    handler.clone(),
                )
                .map_err(|e| io::Error::other(e.to_string()))
            })
            .collect::<io::Result<Vec<_>>>()?;
        let inner = Arc::new(Inner { shared, http });

        {
            let inner = inner.clone();
            thread::Builder::new()
                .name("latency-house".into())
                .spawn(move || housekeeping(&inner))?;
        }
        let reporter = match report_every.filter(|d| !d.is_zero()) {
            Some(every) => {
                let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
                let shared = inner.shared.clone();
                thread::Builder::new()
                    .name("latency-report".into())
                    .spawn(move || report_loop(&shared, every, &stop_rx))?;
                Some(stop_tx)
            }
            None => None,
        };
        let config = &inner.shared.config;
        let url = url_of(addr, config.localhost);
        let also = match addrs.get(1) {
            Some(v6) => format!(" = {addr} and {v6}"),
            None => String::new(),
        };
        log::info!(
            "listening on {url}{also} (latency {}{}, max in flight {}, idle timeout {})",
            humantime::format_duration(config.latency),
            if config.jitter.is_zero() {
                String::new()
            } else {
                format!(" ± {}", humantime::format_duration(config.jitter))
            },
            config.max_in_flight,
            humantime::format_duration(config.idle_timeout),
        );
        Ok(RunningServer {
            addrs,
            url,
            inner,
            control,
            reporter,
        })
    }
}

/// A server serving on background threads. Dropping it stops accepting without waiting;
/// [`RunningServer::shutdown`] waits for requests in flight.
#[derive(Debug)]
pub struct RunningServer {
    /// Every address listened on: `Config::addr`'s first, then `[::1]`'s for `localhost`.
    addrs: Vec<SocketAddr>,
    url: String,
    inner: Arc<Inner>,
    /// A clone of each listening socket, kept to stop accepting; empty once stopped.
    control: Vec<TcpListener>,
    /// Dropping it stops the reporter thread.
    reporter: Option<Sender<()>>,
}

impl RunningServer {
    /// The address the server listens on (the real port when `Config::addr` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every address the server listens on: [`Self::addr`], then `[::1]` on the same port
    /// when `Config::localhost` asked for both loopback families.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `http://ADDR` (`http://localhost:PORT` with `Config::localhost`), the base URL to put
    /// paths behind.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Counters and memory now (the same JSON `GET /__stats` serves).
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.shared.snapshot()
    }

    /// Requests of the catch-all route answered so far: [`Self::stats`]'s `served` alone, one
    /// atomic load (no heap or RSS reading), for callers that poll it often.
    pub fn served(&self) -> u64 {
        self.inner.shared.counters.served.load(Relaxed)
    }

    /// Stops accepting connections, answers any further request on open connections with
    /// `503` + `Connection: close`, waits up to `grace` for requests in flight, and returns
    /// the final counters. Connections still open afterwards are closed by the idle timeout
    /// or when their next request arrives (their own threads answer it).
    pub fn shutdown(mut self, grace: Duration) -> StatsSnapshot {
        self.stop(grace)
    }

    fn stop(&mut self, grace: Duration) -> StatsSnapshot {
        let shared = &self.inner.shared;
        if !self.control.is_empty() {
            shared.stopping.store(true, Relaxed);
        }
        for (control, addr) in self.control.drain(..).zip(&self.addrs) {
            if let Err(e) = listener::stop_accepting(&control) {
                log::warn!("could not stop accepting on {addr}: {e}");
            }
        }
        self.reporter = None;
        let deadline = Instant::now() + grace;
        while shared.pool.busy() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let busy = shared.pool.busy();
        if busy > 0 && !grace.is_zero() {
            log::warn!(
                "{busy} requests still in flight after {}; not waiting longer",
                humantime::format_duration(grace)
            );
        }
        shared.snapshot()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if !self.control.is_empty() {
            self.stop(Duration::ZERO);
        }
    }
}

/// What the request handler needs, shared by every connection thread. It holds no
/// tiny_http server, so the handler tiny_http holds makes no cycle.
struct Shared {
    config: Config,
    counters: Arc<Counters>,
    /// `Set-Cookie` values of every catch-all answer (`Config::set_cookies` with their path).
    cookies: Arc<[String]>,
    pool: Pool<Job>,
    connections: ConnectionCounts,
    latency: LatencyModel,
    /// The last sequence number given to a request of the catch-all route.
    seq: AtomicU64,
    started: Instant,
    stopping: AtomicBool,
}

impl Shared {
    fn snapshot(&self) -> StatsSnapshot {
        let heap = heapmeter::snapshot();
        let c = &self.counters;
        StatsSnapshot {
            served: c.served.load(Relaxed),
            in_flight: self.pool.busy() as u64,
            peak_in_flight: self.pool.peak_busy() as u64,
            rejected_503: c.rejected_503.load(Relaxed),
            bad_requests: c.bad_requests.load(Relaxed),
            connections: self.connections.accepted() as u64,
            open_connections: self.connections.open() as u64,
            workers: (self.pool.threads() + self.pool.claimed()) as u64,
            heap_live: heap.installed.then_some(heap.live as u64),
            rss: heapmeter::rss_bytes(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}

/// The running server: the handler's state and tiny_http's servers (accept thread, queue),
/// one per listening socket.
struct Inner {
    shared: Arc<Shared>,
    http: Vec<tiny_http::Server>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// One request of the catch-all route, answered by whichever thread sleeps for it.
struct Job {
    rq: Request,
    knobs: Knobs,
    latency: Duration,
    /// When the latency is over (the request was read at `wake_at - latency`).
    wake_at: Instant,
    seq: u64,
    path_len: usize,
}

/// Every request, on the thread of the connection it came on.
///
/// Answers at once what needs no sleep (`/__stats`, `400`, `503`, a latency-0 request).
/// A request that sleeps has one thread sleeping for it: first the connection's own,
/// which watches the connection meanwhile; if the client sends more (it pipelines) before
/// the latency is over, a pool worker sleeps the rest and answers, and the connection's
/// thread reads on, so pipelined requests overlap as before. A dripped body is always
/// handed to a worker, so the connection can read on while it drips.
fn handle(s: &Shared, rq: Request, watch: &mut ConnectionWatch<'_>) {
    // A panic must not end the connection's thread; tiny_http answers a request dropped
    // unanswered with `500`.
    let routed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(s, rq, watch)));
    if routed.is_err() {
        log::error!("a request handler panicked; the connection goes on");
    }
}

fn route(s: &Shared, rq: Request, watch: &mut ConnectionWatch<'_>) {
    let c = &s.counters;
    if s.stopping.load(Relaxed) {
        c.rejected_503.fetch_add(1, Relaxed);
        let reply = Reply {
            retry_after: Some(RETRY_AFTER_SECS),
            ..Reply::new(503, "text/plain", b"shutting down\n")
        };
        answer(rq, reply, true);
        return;
    }
    let url = rq.url();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path == STATS_PATH {
        let body = serde_json::to_string(&s.snapshot()).unwrap_or_default();
        answer(
            rq,
            Reply::new(200, "application/json", body.as_bytes()),
            false,
        );
        return;
    }
    let knobs = match Knobs::parse(query) {
        Ok(knobs) => knobs,
        Err(e) => {
            c.bad_requests.fetch_add(1, Relaxed);
            let line = format!("{e}\n");
            answer(rq, Reply::new(400, "text/plain", line.as_bytes()), false);
            return;
        }
    };
    let latency = s.latency.next_shared(knobs.latency);
    let job = Job {
        path_len: path.len(),
        latency,
        wake_at: Instant::now() + latency,
        knobs,
        seq: s.seq.fetch_add(1, Relaxed) + 1,
        rq,
    };
    log::trace!("#{} {} latency {:?}", job.seq, job.rq.method(), job.latency);
    if job.knobs.drip.is_some() {
        if let Err((job, why)) = s.pool.try_run(job) {
            busy(s, job.rq, why);
        }
        return;
    }
    let in_flight = match s.pool.claim() {
        Ok(claim) => claim,
        Err(why) => return busy(s, job.rq, why),
    };
    if sleep_watching(watch, job.wake_at) == Slept::Interrupted {
        match s.pool.run_claimed(in_flight, job) {
            Ok(()) => {}
            // No thread to be had: this one sleeps the rest after all.
            Err((job, _in_flight)) => serve(job, c, &s.cookies),
        }
        return;
    }
    serve(job, c, &s.cookies);
}

/// `503` + `Retry-After` for a request refused a slot.
fn busy(s: &Shared, rq: Request, why: Refused) {
    s.counters.rejected_503.fetch_add(1, Relaxed);
    let line = match why {
        Refused::Full => format!(
            "busy: {} requests in flight (--max-in-flight)\n",
            s.config.max_in_flight
        ),
        Refused::Unavailable => "busy: no worker thread available\n".to_owned(),
    };
    let reply = Reply {
        retry_after: Some(RETRY_AFTER_SECS),
        ..Reply::new(503, "text/plain", line.as_bytes())
    };
    answer(rq, reply, false);
}

/// Watches the accept loop and, once the server is stopping, waits until every connection
/// is gone or the idle timeout has closed every silent one, then retires the pool.
/// Requests arriving meanwhile are answered `503` + close by their connection threads.
fn housekeeping(inner: &Inner) {
    let shared = &inner.shared;
    let mut drain_until: Option<Instant> = None;
    loop {
        // With a request handler, tiny_http's queue only ever carries the accept loop's end.
        for http in &inner.http {
            match http.recv_timeout(TICK / inner.http.len() as u32) {
                Ok(Some(_)) | Ok(None) => {}
                Err(e) => {
                    if !shared.stopping.load(Relaxed) {
                        log::error!("the accept loop ended: {e}; serving open connections only");
                    }
                }
            }
        }
        if shared.stopping.load(Relaxed) {
            let until = *drain_until.get_or_insert_with(|| {
                Instant::now() + shared.config.idle_timeout + Duration::from_secs(1)
            });
            let quiet = shared.pool.busy() == 0 && shared.connections.open() == 0;
            if quiet || Instant::now() >= until {
                break;
            }
        }
    }
    shared.pool.close();
    log::debug!("housekeeping done");
}

/// How the client wants the connection treated after this response.
struct Persistence {
    /// The client will send nothing more (`Connection: close`, or HTTP/1.0 without
    /// keep-alive): say `Connection: close`.
    client_closes: bool,
    /// An HTTP/1.0 client asked for keep-alive: confirm it.
    keep_alive_header: bool,
}

/// Mirrors tiny_http's own decision to read further requests, so the headers tell the truth.
fn persistence(rq: &Request) -> Persistence {
    let header = rq
        .headers()
        .iter()
        .find(|h| h.field.equiv("Connection"))
        .map(|h| h.value.as_str().as_bytes());
    let has = |v: &[u8], word: &str| {
        v.windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    };
    let http10 = *rq.http_version() == HTTPVersion(1, 0);
    let client_closes = match header {
        Some(v) if has(v, "close") || has(v, "upgrade") => true,
        Some(v) => http10 && !has(v, "keep-alive"),
        None => http10,
    };
    Persistence {
        client_closes,
        keep_alive_header: http10 && !client_closes,
    }
}

/// Writes `reply` through the request's raw writer; closes the connection afterwards when
/// `close` (tiny_http itself would keep reading from it).
fn answer(rq: Request, mut reply: Reply<'_>, close: bool) {
    let p = persistence(&rq);
    reply.close = close || p.client_closes;
    reply.keep_alive_header = p.keep_alive_header && !reply.close;
    reply.head = *rq.method() == tiny_http::Method::Head;
    let connection = rq.connection();
    let mut writer = rq.into_writer();
    if let Err(e) = write_reply(&mut *writer, &reply, thread::sleep) {
        log::debug!("client went away while being answered: {e}");
    }
    drop(writer);
    if close {
        if let Some(connection) = connection {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

/// The catch-all route, on whichever thread sleeps for the request: read the body, sleep
/// until its latency is over (maybe already), answer as the knobs say, with `cookies`.
fn serve(job: Job, counters: &Counters, cookies: &[String]) {
    let Job {
        mut rq,
        knobs,
        latency,
        wake_at,
        seq,
        path_len,
    } = job;
    if !drain_body(&mut rq) {
        counters.bad_requests.fetch_add(1, Relaxed);
        // Stop reading first: dropping the request would otherwise read the rest.
        if let Some(connection) = rq.connection() {
            let _ = connection.shutdown(Shutdown::Read);
        }
        let line = format!("request body over {MAX_BODY} bytes\n");
        answer(rq, Reply::new(413, "text/plain", line.as_bytes()), true);
        return;
    }
    thread::sleep(wake_at.saturating_duration_since(Instant::now()));
    counters.served.fetch_add(1, Relaxed);
    if knobs.drop {
        let connection = rq.connection();
        let mut writer = rq.into_writer();
        // Wait for our turn (earlier pipelined responses go out first), write nothing.
        let _ = writer.flush();
        if let Some(connection) = connection {
            let _ = connection.shutdown(Shutdown::Both);
        }
        return;
    }
    // At most 20 + 20 + 39 digits and 37 other bytes: fits, so never cut.
    let mut json = [0u8; 128];
    let mut cursor = io::Cursor::new(&mut json[..]);
    let _ = write!(
        cursor,
        r#"{{"seq":{seq},"path_len":{path_len},"latency_ms":{}}}"#,
        latency.as_millis()
    );
    let json_len = cursor.position() as usize;
    let reply = Reply {
        len: knobs.bytes,
        chunked: knobs.chunked,
        drip: knobs.drip,
        cookies,
        seq_cookie: knobs.cookie.then_some(seq),
        ..Reply::new(knobs.status, "application/json", &json[..json_len])
    };
    answer(rq, reply, knobs.close);
}

/// Reads the request body, if any, and throws it away so the next request on the
/// connection starts at the right byte. False when it is over [`MAX_BODY`].
fn drain_body(rq: &mut Request) -> bool {
    if rq.body_length().is_some_and(|n| n as u64 > MAX_BODY) {
        return false;
    }
    match io::copy(&mut rq.as_reader().take(MAX_BODY + 1), &mut io::sink()) {
        Ok(n) => n <= MAX_BODY,
        // A broken body: the connection is unusable anyway; answer and let it close.
        Err(_) => true,
    }
}

fn report_loop(shared: &Shared, every: Duration, stop: &Receiver<()>) {
    let mut before = shared.snapshot();
    let mut at = Instant::now();
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        let now = shared.snapshot();
        log::info!("{}", report_line(&now, &before, at.elapsed()));
        before = now;
        at = Instant::now();
    }
}

/// The base URL of a server listening on `addr`: named `localhost` when it listens on both
/// loopback families, so a client may pick either.
fn url_of(addr: SocketAddr, localhost: bool) -> String {
    if localhost {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}
