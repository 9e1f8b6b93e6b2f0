//! `--serve`: the latency-server library in a process of its own, with the binary's allocator.

use std::thread;

use clap::Parser;

/// latency-server in this process, from its own flags, until SIGTERM.
pub fn run(argv: &[String]) -> Result<(), String> {
    let cli = latency_server::cli::Cli::try_parse_from(
        std::iter::once("latency-server").chain(argv.iter().map(|s| s.as_str())),
    )
    .map_err(|e| e.to_string())?;
    let config = cli.config(cli.server.seed.unwrap_or(1));
    let _server = latency_server::Server::start(config).map_err(|e| e.to_string())?;
    loop {
        thread::park();
    }
}
