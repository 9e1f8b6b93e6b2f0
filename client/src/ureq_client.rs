//! The `ureq` variant: one shared `ureq::Agent` (and so one keep-alive pool) cloned into every
//! worker. Owns the mapping of ureq's errors to `ErrorKind`; knows nothing of the run loop.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{ConnectionDetails, Connector, TcpConnector, Transport};

use crate::error::{ErrorKind, RequestError, kind_of_io};
use crate::variant::{BodyMode, Outcome, TimeoutMode, Variant, VariantConfig};

/// A worker's handle on the shared agent.
#[derive(Debug, Clone)]
pub struct UreqClient {
    agent: ureq::Agent,
    body: BodyMode,
    max_body: u64,
}

impl UreqClient {
    /// Builds the agent that all workers share (clone the result into each worker).
    ///
    /// The pool is sized to `concurrency` idle connections unless `cfg.pool_idle` is `None`,
    /// which keeps ureq's defaults (10 idle in all, 3 per host).
    pub fn new(cfg: &VariantConfig) -> UreqClient {
        let mut builder = ureq::Agent::config_builder().http_status_as_error(false);
        builder = match cfg.timeout_mode {
            TimeoutMode::Global => builder.timeout_global(Some(cfg.timeout)),
            // No global, per-call or resolve timeout: ureq then resolves on the calling thread
            // instead of spawning one per request. The phases add up to `--timeout`.
            TimeoutMode::Phases => {
                let t = cfg.timeout;
                builder
                    .timeout_connect(Some(t / 8))
                    .timeout_send_request(Some(t / 8))
                    .timeout_recv_response(Some(t / 2))
                    .timeout_recv_body(Some(t / 4))
            }
        };
        if let Some(n) = cfg.pool_idle {
            builder = builder
                .max_idle_connections(n)
                .max_idle_connections_per_host(n);
        }
        // ureq's default connector chain minus proxies and TLS (plain http on loopback), plus a
        // pass-through link that counts each new TCP connection.
        let connector =
            ().chain(TcpConnector::default())
                .chain(CountConnections(cfg.connections_opened.clone()));
        let agent = ureq::Agent::with_parts(builder.build(), connector, DefaultResolver::default());
        UreqClient {
            agent,
            body: cfg.body,
            max_body: cfg.max_body,
        }
    }
}

impl Variant for UreqClient {
    fn get(&mut self, url: &str) -> Result<Outcome, RequestError> {
        let mut response = self.agent.get(url).call().map_err(map_error)?;
        let status = response.status().as_u16();
        let body_bytes = match self.body {
            BodyMode::Read => {
                let mut reader = response
                    .body_mut()
                    .with_config()
                    .limit(self.max_body)
                    .reader();
                io::copy(&mut reader, &mut io::sink()).map_err(|e| map_body_error(&e))?
            }
            // Dropping the response unread is the point of `skip`: ureq then closes the
            // connection instead of returning it to the pool.
            BodyMode::Skip => 0,
        };
        Ok(Outcome { status, body_bytes })
    }
}

/// Counts connections as they pass through the connector chain; changes nothing.
#[derive(Debug)]
struct CountConnections(Arc<AtomicU64>);

impl<In: Transport> Connector<In> for CountConnections {
    type Out = In;

    fn connect(
        &self,
        _: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<In>, ureq::Error> {
        if chained.is_some() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(chained)
    }
}

fn map_error(e: ureq::Error) -> RequestError {
    use ureq::Error as E;
    let kind = match &e {
        E::Timeout(_) => ErrorKind::Timeout,
        E::Io(io) => kind_of_io(io),
        E::ConnectionFailed | E::HostNotFound => ErrorKind::Connect,
        E::Protocol(_) | E::BadUri(_) | E::Http(_) => ErrorKind::Malformed,
        E::BodyExceedsLimit(_) | E::LargeResponseHeader(..) => ErrorKind::TooLarge,
        E::StatusCode(_) => ErrorKind::Status,
        _ => ErrorKind::Other,
    };
    RequestError::new(kind, e.to_string())
}

/// ureq's body reader reports its own errors wrapped in `io::Error`; unwrap them first.
fn map_body_error(e: &io::Error) -> RequestError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    {
        Some(inner) => {
            let kind = match inner {
                ureq::Error::Timeout(_) => ErrorKind::Timeout,
                ureq::Error::BodyExceedsLimit(_) => ErrorKind::TooLarge,
                ureq::Error::Protocol(_) => ErrorKind::Malformed,
                ureq::Error::Io(io) => kind_of_io(io),
                _ => ErrorKind::Other,
            };
            RequestError::new(kind, inner.to_string())
        }
        None => RequestError::new(kind_of_io(e), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn client(mode: TimeoutMode) -> UreqClient {
        UreqClient::new(&VariantConfig {
            timeout: Duration::from_secs(8),
            timeout_mode: mode,
            body: BodyMode::Read,
            max_body: 1 << 20,
            pool_idle: Some(4),
            connections_opened: Arc::new(AtomicU64::new(0)),
        })
    }

    #[test]
    fn phases_bound_the_exchange_without_a_resolver_thread() {
        let t = client(TimeoutMode::Phases).agent.config().timeouts();
        // ureq spawns a resolver thread whenever a global, per-call or resolve timeout is set.
        assert_eq!((t.global, t.per_call, t.resolve), (None, None, None));
        let phases = [t.connect, t.send_request, t.recv_response, t.recv_body];
        assert!(phases.iter().all(Option::is_some), "{t:?}");
        let sum: Duration = phases.iter().flatten().sum();
        assert!(
            sum <= Duration::from_secs(8) && sum >= Duration::from_secs(7),
            "{sum:?}"
        );
    }

    #[test]
    fn global_is_what_applications_commonly_set() {
        let t = client(TimeoutMode::Global).agent.config().timeouts();
        assert_eq!(t.global, Some(Duration::from_secs(8)));
        assert_eq!((t.connect, t.recv_response), (None, None));
    }
}
