//! `carbonx`: the command line of the exchange core (see the library's
//! `# Layout` in `lib.rs` for the parts).

use carbonx::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The exchange core for China's national carbon market (CEA, CCER).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Prints a configuration as TOML: the embedded demo market, or FILE after validating it.
    Config {
        /// A configuration file to check and print instead of the demo market.
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Config { file } => {
            let config = match file {
                None => Ok(Config::demo()),
                Some(path) => Config::load(&path),
            };
            match config {
                Ok(config) => {
                    print!("{}", config.to_toml());
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("carbonx: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
