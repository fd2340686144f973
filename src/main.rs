#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use llm_bridge::cli::{Cli, Command};

/// mimalloc: glibc's malloc and free were a quarter of the instructions of a proxied request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::CheckConfig => llm_bridge::cli::check_config(&cli),
        Command::Serve => llm_bridge::server::run(&cli),
    }
}
