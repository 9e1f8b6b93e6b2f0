//! `leak-client`: parses the command line, installs the measuring allocator and the logger,
//! runs the chosen command and maps its outcome to an exit code. Logic lives in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use leak_client::cli::{Cli, Command};
use leak_client::clients::VariantName;
use leak_client::commands;

/// The only allocator of the process: counts every byte the client under test holds, and caps
/// it at `--mem-limit`.
#[global_allocator]
static ALLOC: heapmeter::MeteredAlloc =
    heapmeter::MeteredAlloc::new(heapmeter::counting(), usize::MAX);

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logger();
    raise_open_files_limit(&cli.command);
    if let Some(limit) = server_mem_limit(&cli.command) {
        // The in-process server shares this process's allocator: its cap is the process's.
        if let Err(e) = ALLOC.set_limit(usize::try_from(limit).unwrap_or(usize::MAX)) {
            eprintln!("error: cannot set --server-mem-limit: {e:?}");
            return ExitCode::from(leak_client::exit::FAILURE);
        }
    }
    let code = match cli.command {
        Command::Ureq(args) => commands::run_variant(VariantName::Ureq, &args, &ALLOC),
        Command::Raw(args) => commands::run_variant(VariantName::Raw, &args, &ALLOC),
        Command::Compare(args) => commands::compare(args),
        Command::Calibrate(args) => commands::calibrate(&args),
        Command::Watch(args) => commands::watch(&args),
    };
    ExitCode::from(code)
}

/// `--server-mem-limit` of the commands that start the latency server in-process.
fn server_mem_limit(command: &Command) -> Option<u64> {
    match command {
        Command::Compare(a) if a.server.url.is_none() => a.server.embedded.mem_limit,
        Command::Watch(a) if a.server.url.is_none() => a.server.embedded.mem_limit,
        _ => None,
    }
}

fn init_logger() {
    use std::io::Write;
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
            .format(|buf, record| {
                let ts = buf.timestamp_seconds();
                writeln!(buf, "{ts} {:<5} {}", record.level(), record.args())
            })
            .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(AroundTheBar(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// The logger, writing each line with the progress bar (if one is shown) cleared first and
/// redrawn after, so a line never lands in the middle of the bar.
struct AroundTheBar(env_logger::Logger);

impl log::Log for AroundTheBar {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.0.matches(record) {
            leak_client::progress::suspend(|| self.0.log(record));
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Raises the soft open-files limit to the hard one, warning if what this command needs still
/// does not fit: one socket per worker, plus the in-process server's (two per connection) for
/// the commands that start one.
fn raise_open_files_limit(command: &Command) {
    let (concurrency, serves) = match command {
        Command::Ureq(a) | Command::Raw(a) => (a.workload.concurrency, false),
        Command::Compare(a) => (a.workload.concurrency, a.server.url.is_none()),
        Command::Watch(a) => (1, a.server.url.is_none()),
        Command::Calibrate(a) => (a.workload.concurrency, true),
    };
    let own = u64::from(concurrency) + latency_server::limits::RESERVED_DESCRIPTORS;
    let server = if serves {
        latency_server::server_descriptors_needed(u64::from(concurrency))
    } else {
        0
    };
    let what = format!(
        "--concurrency {concurrency} (one socket each, and the server's two per connection when in-process)"
    );
    if let Err(e) = latency_server::raise_open_files_limit(own + server, &what) {
        log::warn!("cannot read or raise the open files limit: {e}");
    }
}
