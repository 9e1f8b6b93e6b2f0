//! A request's latency slept on its connection's own thread: until its deadline, or until
//! the client sends more on that connection, whichever comes first (then another thread
//! sleeps the rest, so the connection can read on). The only place that polls a socket;
//! it never reads from one.

use std::thread;
use std::time::Instant;

use tiny_http::{ConnectionWatch, NextRequest};

/// How [`sleep_watching`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slept {
    /// The deadline has passed.
    Done,
    /// The connection has more to read (or is closing, or cannot be watched from here):
    /// the deadline has not passed, and the connection's thread must read on.
    Interrupted,
}

/// Sleeps until `until` unless the connection behind `watch` has, or gets, more to read.
pub(crate) fn sleep_watching(watch: &mut ConnectionWatch<'_>, until: Instant) -> Slept {
    if Instant::now() >= until {
        return Slept::Done;
    }
    match watch.next_request() {
        NextRequest::Last => {
            sleep_until(until);
            Slept::Done
        }
        NextRequest::Pending => Slept::Interrupted,
        #[cfg(unix)]
        NextRequest::Socket(fd) => poll_until(fd, until),
    }
}

fn sleep_until(until: Instant) {
    thread::sleep(until.saturating_duration_since(Instant::now()));
}

/// `ppoll` for readability with the time left as its timeout (a precise hrtimer, as
/// `nanosleep` has): data, EOF or an error on the socket all end the wait early.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn poll_until(fd: std::os::fd::BorrowedFd<'_>, until: Instant) -> Slept {
    use nix::errno::Errno;
    use nix::poll::{PollFd, PollFlags, ppoll};
    use nix::sys::time::TimeSpec;

    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Slept::Done;
        }
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
            // Timed out: the loop re-checks the clock.
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Slept::Interrupted,
            Err(e) => {
                log::debug!("cannot watch a connection ({e}); sleeping without watching");
                sleep_until(until);
                return Slept::Done;
            }
        }
    }
}

/// Without `ppoll`, every request that sleeps is handed to a worker, as before.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn poll_until(_fd: std::os::fd::BorrowedFd<'_>, _until: Instant) -> Slept {
    Slept::Interrupted
}
