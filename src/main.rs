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
    /// Replays a data directory's journal offline: state hash, counts, statistics.
    Replay {
        /// The data directory holding the journal files.
        #[arg(long, default_value = "./carbonx-data")]
        data_dir: PathBuf,
        /// The configuration the server ran with (default: the demo market).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A recorded state hash (hex): exit with failure unless the replay reproduces it.
        #[arg(long)]
        verify: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Replay { data_dir, config, verify } => replay(&data_dir, config.as_deref(), verify.as_deref()),
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

fn replay(data_dir: &std::path::Path, config: Option<&std::path::Path>, verify: Option<&str>) -> ExitCode {
    let loaded = match config {
        None => Ok((Config::demo(), PathBuf::from("."))),
        Some(path) => Config::load(path).map(|c| (c, path.parent().map_or(PathBuf::from("."), PathBuf::from))),
    };
    let report = loaded
        .map_err(carbonx::replay::ReplayError::from)
        .and_then(|(c, base)| carbonx::replay::replay(&c, &base, data_dir));
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            eprintln!("carbonx: replay of {}: {err}", data_dir.display());
            return ExitCode::FAILURE;
        }
    };
    print!("{report}");
    let Some(expected) = verify else {
        return ExitCode::SUCCESS;
    };
    match carbonx::replay::parse_hash(expected) {
        Some(hash) if hash == report.state_hash => {
            println!("verified: the journal reproduces {hash:#018x}");
            ExitCode::SUCCESS
        }
        Some(hash) => {
            eprintln!("carbonx: MISMATCH: the journal gives {:#018x}, expected {hash:#018x}", report.state_hash);
            ExitCode::FAILURE
        }
        None => {
            eprintln!("carbonx: --verify takes a hex state hash, not {expected:?}");
            ExitCode::FAILURE
        }
    }
}
