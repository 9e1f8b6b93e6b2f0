//! Binds the listening sockets (one, or `127.0.0.1` and `[::1]` on one port for `localhost`)
//! with the options accepted connections inherit on Linux: a deep backlog, `SO_REUSEADDR`,
//! `TCP_NODELAY`, and receive/send timeouts (the idle timeout).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues before accept (clamped to `net.core.somaxconn`).
/// std's `TcpListener::bind` uses 128: a burst of connections overflows it, SYNs are
/// dropped and those clients retry only after about a second.
pub(crate) const BACKLOG: i32 = 4096;

/// A listening socket on `addr`. `idle_timeout` is set as `SO_RCVTIMEO`/`SO_SNDTIMEO`:
/// Linux copies both into every accepted socket (`sk_clone_lock` copies the whole sock),
/// so every connection thread's read or write gives up after that long without progress,
/// and `accept` itself wakes up that often.
pub(crate) fn bind(addr: SocketAddr, idle_timeout: Duration) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // The IPv4 side has a socket of its own, whatever net.ipv6.bindv6only says.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    // A zero timeout means "block forever" to the kernel; keep at least a millisecond.
    let timeout = Some(idle_timeout.max(Duration::from_millis(1)));
    socket.set_read_timeout(timeout)?;
    socket.set_write_timeout(timeout)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Free ports tried for `localhost:0` when `[::1]` already has the port `127.0.0.1` got.
const PORT_TRIES: usize = 16;

/// The listening sockets of `addr`: itself alone, or with `localhost` (where `addr` must be
/// `127.0.0.1`) also `[::1]` on the same port; for port 0, a port free on both.
pub(crate) fn bind_all(
    addr: SocketAddr,
    localhost: bool,
    idle_timeout: Duration,
) -> io::Result<Vec<TcpListener>> {
    if !localhost {
        return Ok(vec![bind(addr, idle_timeout)?]);
    }
    if addr.ip() != Ipv4Addr::LOCALHOST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "localhost listens on 127.0.0.1 and [::1], not {}",
                addr.ip()
            ),
        ));
    }
    let tries = if addr.port() == 0 { PORT_TRIES } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let v4 = bind(addr, idle_timeout)?;
        let port = v4.local_addr()?.port();
        match bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port)), idle_timeout) {
            Ok(v6) => return Ok(vec![v4, v6]),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                last = Some(io::Error::new(e.kind(), format!("[::1]:{port}: {e}")));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot listen on [::1]:{port} for localhost ({e}); \
                         is IPv6 loopback configured (`ip -6 addr show lo`)?"
                    ),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// Stops `listener` accepting: `shutdown(SHUT_RD)` on a listening socket wakes a blocked
/// `accept` with `EINVAL` and refuses new connections, also through its clones.
pub(crate) fn stop_accepting(listener: &TcpListener) -> io::Result<()> {
    socket2::SockRef::from(listener).shutdown(std::net::Shutdown::Read)
}
