//! The exit codes of `leak-client`, in one place: the commands return them, `--help` lists them
//! (`cli::EXIT_CODES_HELP`) and the README documents them.

/// The run completed (whatever its error counts).
pub const OK: u8 = 0;
/// The run could not start or could not write its output.
pub const FAILURE: u8 = 1;
/// Command-line misuse. clap exits with it itself; named here for the documentation.
pub const USAGE: u8 = 2;
/// `--fail-on-leak` and the verdict is `leak`.
pub const LEAK: u8 = 3;
/// Interrupted (Ctrl-C, SIGTERM) before every run finished; also a second Ctrl-C.
pub const INTERRUPTED: u8 = 130;
