use std::process::ExitCode;

use clap::Parser;
use llm_bridge::cli::{Cli, Command};

/// mimalloc: the request path allocates and frees many small buffers; glibc's malloc was a fifth
/// of the gateway's CPU per request on the reference harness.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::CheckConfig => llm_bridge::cli::check_config(&cli),
        Command::Serve => llm_bridge::server::run(&cli),
    }
}
