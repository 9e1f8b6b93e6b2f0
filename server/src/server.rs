//! Starts and stops the server: the dispatcher thread (tiny_http's queue → pool or side
//! thread), the request handler that sleeps and answers, the side thread for instant
//! answers (`503`, `400`, `/__stats`), the reporter, and graceful shutdown.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tiny_http::{HTTPVersion, Request};

use crate::config::Config;
use crate::knobs::Knobs;
use crate::latency::LatencyModel;
use crate::listener;
use crate::pool::{Pool, Refused};
use crate::respond::{Reply, write_reply};
use crate::stats::{Counters, StatsSnapshot, report_line};

/// Largest request body read (and thrown away); a longer one is answered `413` and closed.
pub const MAX_BODY: u64 = 1 << 20;
/// The path of the counters endpoint.
pub const STATS_PATH: &str = "/__stats";
/// `Retry-After` seconds sent with every `503`.
const RETRY_AFTER_SECS: u32 = 1;
/// How often the dispatcher wakes without requests, to notice shutdown.
const TICK: Duration = Duration::from_millis(50);

/// Starts servers; see the crate docs.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds `config.addr` and starts serving on background threads. Returns once the
    /// socket listens: connecting to [`RunningServer::addr`] works at once.
    pub fn start(config: Config) -> io::Result<RunningServer> {
        let listener = listener::bind(config.addr, config.idle_timeout)?;
        let addr = listener.local_addr()?;
        let control = listener.try_clone()?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if !addr.ip().is_loopback() {
            log::warn!(
                "listening on non-loopback {addr}: anyone who can reach it can load this machine"
            );
        }

        let counters = Arc::new(Counters::default());
        let pool = {
            let counters = counters.clone();
            Pool::new(
                "latency-worker",
                config.max_in_flight.max(1),
                config.worker_idle,
                move |job: Job| serve(job, &counters),
            )
        };
        let latency = LatencyModel::new(config.latency, config.jitter, config.seed);
        let report_every = config.report_every;
        let inner = Arc::new(Inner {
            config,
            counters,
            pool,
            http,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
        });

        // Bounded: if the side thread falls behind, the dispatcher waits for it.
        let (side_tx, side_rx) = crossbeam_channel::bounded(1024);
        {
            let inner = inner.clone();
            thread::Builder::new()
                .name("latency-side".into())
                .spawn(move || side_loop(&inner, &side_rx))?;
        }
        {
            let inner = inner.clone();
            thread::Builder::new()
                .name("latency-dispatch".into())
                .spawn(move || dispatch_loop(&inner, &side_tx, latency))?;
        }
        let reporter = match report_every.filter(|d| !d.is_zero()) {
            Some(every) => {
                let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
                let inner = inner.clone();
                thread::Builder::new()
                    .name("latency-report".into())
                    .spawn(move || report_loop(&inner, every, &stop_rx))?;
                Some(stop_tx)
            }
            None => None,
        };
        log::info!(
            "listening on http://{addr} (latency {}{}, max in flight {}, idle timeout {})",
            humantime::format_duration(inner.config.latency),
            if inner.config.jitter.is_zero() {
                String::new()
            } else {
                format!(" ± {}", humantime::format_duration(inner.config.jitter))
            },
            inner.config.max_in_flight,
            humantime::format_duration(inner.config.idle_timeout),
        );
        Ok(RunningServer {
            addr,
            inner,
            control: Some(control),
            reporter,
        })
    }
}

/// A server serving on background threads. Dropping it stops accepting without waiting;
/// [`RunningServer::shutdown`] waits for requests in flight.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    /// A clone of the listening socket, kept to stop accepting; `None` once stopped.
    control: Option<TcpListener>,
    /// Dropping it stops the reporter thread.
    reporter: Option<Sender<()>>,
}

impl RunningServer {
    /// The address the server listens on (the real port when `Config::addr` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL to put paths behind.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Counters and memory now (the same JSON `GET /__stats` serves).
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.snapshot()
    }

    /// Stops accepting connections, answers any further request on open connections with
    /// `503` + `Connection: close`, waits up to `grace` for requests in flight, and returns
    /// the final counters. Connections still open afterwards are closed by the idle timeout
    /// or when their next request arrives; a background thread keeps answering them until
    /// then.
    pub fn shutdown(mut self, grace: Duration) -> StatsSnapshot {
        self.stop(grace)
    }

    fn stop(&mut self, grace: Duration) -> StatsSnapshot {
        if let Some(control) = self.control.take() {
            self.inner.stopping.store(true, Relaxed);
            if let Err(e) = listener::stop_accepting(&control) {
                log::warn!("could not stop accepting on {}: {e}", self.addr);
            }
        }
        self.reporter = None;
        let deadline = Instant::now() + grace;
        while self.inner.pool.busy() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let busy = self.inner.pool.busy();
        if busy > 0 && !grace.is_zero() {
            log::warn!(
                "{busy} requests still in flight after {}; not waiting longer",
                humantime::format_duration(grace)
            );
        }
        self.inner.snapshot()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.control.is_some() {
            self.stop(Duration::ZERO);
        }
    }
}

/// State shared by the server's threads (never by the pool's handler: no cycle).
struct Inner {
    config: Config,
    counters: Arc<Counters>,
    pool: Pool<Job>,
    http: tiny_http::Server,
    started: Instant,
    stopping: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn snapshot(&self) -> StatsSnapshot {
        let heap = heapmeter::snapshot();
        let c = &self.counters;
        StatsSnapshot {
            served: c.served.load(Relaxed),
            in_flight: self.pool.busy() as u64,
            peak_in_flight: self.pool.peak_busy() as u64,
            rejected_503: c.rejected_503.load(Relaxed),
            bad_requests: c.bad_requests.load(Relaxed),
            connections: self.http.num_accepted_connections() as u64,
            open_connections: self.http.num_connections() as u64,
            workers: self.pool.threads() as u64,
            heap_live: heap.installed.then_some(heap.live as u64),
            rss: heapmeter::rss_bytes(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}

/// One request on its way to a worker.
struct Job {
    rq: Request,
    knobs: Knobs,
    latency: Duration,
    seq: u64,
    path_len: usize,
}

/// Answers that need no worker: written by the side thread so the dispatcher never blocks
/// on a socket (a pipelined connection's writer waits for its earlier responses).
enum SideJob {
    Stats(Request),
    BadKnob(Request, String),
    Busy(Request, Refused),
    Stopping(Request),
}

fn dispatch_loop(inner: &Inner, side: &Sender<SideJob>, mut latency: LatencyModel) {
    let mut seq = 0u64;
    let mut drain_until: Option<Instant> = None;
    loop {
        match inner.http.recv_timeout(TICK) {
            Ok(Some(rq)) => dispatch(inner, side, &mut latency, &mut seq, rq),
            Ok(None) => {}
            Err(e) => {
                if !inner.stopping.load(Relaxed) {
                    log::error!("the accept loop ended: {e}; serving open connections only");
                }
            }
        }
        if inner.stopping.load(Relaxed) {
            // Keep answering open connections (503 + close) until they are all gone or the
            // idle timeout has closed every silent one.
            let until = *drain_until.get_or_insert_with(|| {
                Instant::now() + inner.config.idle_timeout + Duration::from_secs(1)
            });
            let quiet = inner.pool.busy() == 0 && inner.http.num_connections() == 0;
            if quiet || Instant::now() >= until {
                while let Ok(Some(rq)) = inner.http.try_recv() {
                    dispatch(inner, side, &mut latency, &mut seq, rq);
                }
                break;
            }
        }
    }
    inner.pool.close();
    log::debug!("dispatcher done");
}

fn dispatch(
    inner: &Inner,
    side: &Sender<SideJob>,
    latency: &mut LatencyModel,
    seq: &mut u64,
    rq: Request,
) {
    let c = &inner.counters;
    if inner.stopping.load(Relaxed) {
        c.rejected_503.fetch_add(1, Relaxed);
        let _ = side.send(SideJob::Stopping(rq));
        return;
    }
    let url = rq.url();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path == STATS_PATH {
        let _ = side.send(SideJob::Stats(rq));
        return;
    }
    let knobs = match Knobs::parse(query) {
        Ok(knobs) => knobs,
        Err(e) => {
            c.bad_requests.fetch_add(1, Relaxed);
            let _ = side.send(SideJob::BadKnob(rq, e.to_string()));
            return;
        }
    };
    *seq += 1;
    let job = Job {
        path_len: path.len(),
        latency: latency.next(knobs.latency),
        knobs,
        seq: *seq,
        rq,
    };
    log::trace!("#{} {} latency {:?}", job.seq, job.rq.method(), job.latency);
    if let Err((job, why)) = inner.pool.try_run(job) {
        c.rejected_503.fetch_add(1, Relaxed);
        let _ = side.send(SideJob::Busy(job.rq, why));
    }
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
        .map(|h| h.value.as_str().to_ascii_lowercase());
    let http10 = *rq.http_version() == HTTPVersion(1, 0);
    let client_closes = match &header {
        Some(v) if v.contains("close") || v.contains("upgrade") => true,
        Some(v) => http10 && !v.contains("keep-alive"),
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

/// The catch-all route, on a worker thread: read the body, sleep, answer as the knobs say.
fn serve(job: Job, counters: &Counters) {
    let Job {
        mut rq,
        knobs,
        latency,
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
    thread::sleep(latency);
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
    let json = format!(
        r#"{{"seq":{seq},"path_len":{path_len},"latency_ms":{}}}"#,
        latency.as_millis()
    );
    let reply = Reply {
        len: knobs.bytes,
        chunked: knobs.chunked,
        drip: knobs.drip,
        ..Reply::new(knobs.status, "application/json", json.as_bytes())
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

fn side_loop(inner: &Inner, jobs: &Receiver<SideJob>) {
    for job in jobs {
        match job {
            SideJob::Stats(rq) => {
                let body = serde_json::to_string(&inner.snapshot()).unwrap_or_default();
                answer(
                    rq,
                    Reply::new(200, "application/json", body.as_bytes()),
                    false,
                );
            }
            SideJob::BadKnob(rq, reason) => {
                let line = format!("{reason}\n");
                answer(rq, Reply::new(400, "text/plain", line.as_bytes()), false);
            }
            SideJob::Busy(rq, why) => {
                let line = match why {
                    Refused::Full => format!(
                        "busy: {} requests in flight (--max-in-flight)\n",
                        inner.config.max_in_flight
                    ),
                    Refused::Unavailable => "busy: no worker thread available\n".to_owned(),
                };
                let reply = Reply {
                    retry_after: Some(RETRY_AFTER_SECS),
                    ..Reply::new(503, "text/plain", line.as_bytes())
                };
                answer(rq, reply, false);
            }
            SideJob::Stopping(rq) => {
                let reply = Reply {
                    retry_after: Some(RETRY_AFTER_SECS),
                    ..Reply::new(503, "text/plain", b"shutting down\n")
                };
                answer(rq, reply, true);
            }
        }
    }
}

fn report_loop(inner: &Inner, every: Duration, stop: &Receiver<()>) {
    let mut before = inner.snapshot();
    let mut at = Instant::now();
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        let now = inner.snapshot();
        log::info!("{}", report_line(&now, &before, at.elapsed()));
        before = now;
        at = Instant::now();
    }
}
