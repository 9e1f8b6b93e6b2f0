//! Binds the listening socket with the options accepted connections inherit on Linux:
//! a deep backlog, `SO_REUSEADDR`, `TCP_NODELAY`, and receive/send timeouts (the idle timeout).

use std::io;
use std::net::{SocketAddr, TcpListener};
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

/// Stops `listener` accepting: `shutdown(SHUT_RD)` on a listening socket wakes a blocked
/// `accept` with `EINVAL` and refuses new connections, also through its clones.
pub(crate) fn stop_accepting(listener: &TcpListener) -> io::Result<()> {
    socket2::SockRef::from(listener).shutdown(std::net::Shutdown::Read)
}
