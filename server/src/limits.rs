//! The process's open-files limit (`RLIMIT_NOFILE`): raised to the hard limit at start and
//! checked against what the process will need, with one log line saying what it is. Only
//! reads and sets that limit; the library never calls it by itself (an embedding process
//! decides), the binaries do at start.

use std::io;

/// Descriptors kept aside for everything that is not a connection: the listener, stdio,
/// log files, `/proc` reads, the odd pipe.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The open-files limit after [`raise_open_files_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    /// The soft limit now in force (what `open`/`accept` hit).
    pub soft: u64,
    /// The hard limit (the most an unprivileged process can raise the soft one to).
    pub hard: u64,
    /// The soft limit before, if it was raised.
    pub raised_from: Option<u64>,
}

impl OpenFilesLimit {
    /// Whether `needed` descriptors fit under the soft limit.
    pub fn fits(&self, needed: u64) -> bool {
        needed <= self.soft
    }
}

/// Descriptors the server needs for `max_in_flight` requests at once: each request in flight
/// holds its connection open, and tiny_http uses two descriptors per connection (it clones
/// the socket for reading and writing); plus [`RESERVED_DESCRIPTORS`]. Idle keep-alive
/// connections need two more each.
pub fn server_descriptors_needed(max_in_flight: u64) -> u64 {
    max_in_flight
        .saturating_mul(2)
        .saturating_add(RESERVED_DESCRIPTORS)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a no-op where there is none), logs
/// the result at info level, and logs a warning when `needed` descriptors still do not
/// fit, naming `what` needs them (e.g. `"--max-in-flight 4096 (two per connection)"`).
pub fn raise_open_files_limit(needed: u64, what: &str) -> io::Result<OpenFilesLimit> {
    let limit = raise()?;
    match limit.raised_from {
        Some(before) => log::info!(
            "open files limit {} (raised from {before}; hard limit {})",
            limit.soft,
            limit.hard
        ),
        None => log::debug!(
            "open files limit {} (hard limit {})",
            limit.soft,
            limit.hard
        ),
    }
    if !limit.fits(needed) {
        log::warn!("{}", binding_warning(&limit, needed, what));
    }
    Ok(limit)
}

#[cfg(unix)]
fn raise() -> io::Result<OpenFilesLimit> {
    let (before, hard) = rlimit::Resource::NOFILE.get()?;
    let soft = rlimit::increase_nofile_limit(hard)?;
    Ok(OpenFilesLimit {
        soft,
        hard,
        raised_from: (soft > before).then_some(before),
    })
}

#[cfg(not(unix))]
fn raise() -> io::Result<OpenFilesLimit> {
    Ok(OpenFilesLimit {
        soft: u64::MAX,
        hard: u64::MAX,
        raised_from: None,
    })
}

/// The warning when the limit still binds: what it is, what is needed, what happens, the fix.
fn binding_warning(limit: &OpenFilesLimit, needed: u64, what: &str) -> String {
    let room = limit.soft.saturating_sub(RESERVED_DESCRIPTORS);
    format!(
        "open files limit {} (hard {}) is below the {needed} descriptors {what} needs: past \
         about {} descriptors in use, new connections fail (EMFILE); raise the hard limit \
         (`ulimit -Hn`, or LimitNOFILE= for a systemd service)",
        limit.soft, limit.hard, room
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_needs_two_descriptors_per_request_in_flight() {
        assert_eq!(server_descriptors_needed(0), RESERVED_DESCRIPTORS);
        assert_eq!(server_descriptors_needed(4096), 8192 + RESERVED_DESCRIPTORS);
        assert_eq!(server_descriptors_needed(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_binding_limit_is_named_with_what_needs_more() {
        let limit = OpenFilesLimit {
            soft: 1024,
            hard: 1024,
            raised_from: None,
        };
        assert!(limit.fits(1024) && !limit.fits(1025));
        let line = binding_warning(&limit, 8256, "--max-in-flight 4096 (two per connection)");
        assert!(line.contains("1024") && line.contains("8256"), "{line}");
        assert!(line.contains("--max-in-flight 4096"), "{line}");
        assert!(line.contains("ulimit -Hn"), "{line}");
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let limit = raise_open_files_limit(0, "nothing").expect("getrlimit works here");
        assert!(limit.soft <= limit.hard);
        #[cfg(unix)]
        {
            let (soft, hard) = rlimit::Resource::NOFILE.get().expect("getrlimit");
            assert_eq!((soft, hard), (limit.soft, limit.hard));
            assert_eq!(soft, hard, "raised to the hard limit");
        }
    }
}
