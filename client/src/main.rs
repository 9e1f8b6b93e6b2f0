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
    let code = match cli.command {
        Command::Ureq(args) => commands::run_variant(VariantName::Ureq, &args, &ALLOC),
        Command::Raw(args) => commands::run_variant(VariantName::Raw, &args, &ALLOC),
        Command::Compare(args) => commands::compare(args),
        Command::Calibrate(args) => commands::calibrate(&args),
    };
    ExitCode::from(code)
}

fn init_logger() {
    use std::io::Write;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let ts = buf.timestamp_seconds();
            writeln!(buf, "{ts} {:<5} {}", record.level(), record.args())
        })
        .init();
}
