//! The command line: `llm-bridge [serve]`, `llm-bridge check-config`, and the flags that override
//! the configuration file and the environment.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{CliOverrides, Config, env::ProcessEnv};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "llm-bridge",
    version,
    about = "An OpenAI-compatible gateway to many LLM providers, with a web console."
)]
pub struct Cli {
    /// TOML configuration file [env: LLM_BRIDGE_CONFIG]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on [env: LLM_BRIDGE_LISTEN] [default: 127.0.0.1:3000]
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory of the embedded store [env: LLM_BRIDGE_DATA_DIR] [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Redis URL; stats live in Redis instead of the embedded store [env: REDIS_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the gateway and its console (the default).
    Serve,
    /// Validate the configuration and print it with secrets masked.
    CheckConfig,
}

impl Cli {
    pub fn overrides(&self) -> CliOverrides {
        CliOverrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            redis_url: self.redis_url.clone(),
        }
    }

    pub fn load_config(&self) -> Result<(Config, Option<PathBuf>), crate::config::ConfigError> {
        Config::load(&self.overrides(), &ProcessEnv)
    }
}

pub fn check_config(cli: &Cli) -> ExitCode {
    match cli.load_config() {
        Ok((config, file)) => {
            let source = file.map_or_else(
                || "no file; defaults and environment".to_string(),
                |f| f.display().to_string(),
            );
            println!("# configuration is valid ({source})");
            print!("{}", config.to_masked_toml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
