//! `carbonx`: the command line of the exchange core (see the library's
//! `# Layout` in `lib.rs` for the parts).

use carbonx::config::Config;
use carbonx::journal_file::FsyncMode;
use carbonx::server::{ServeOptions, Server};
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
    /// Runs the exchange: order entry, engine, journal (default: the embedded demo market).
    Serve {
        /// A configuration file (default: the embedded demo market of RULES.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the journal and the session day logs live.
        #[arg(long, default_value = "./carbonx-data")]
        data_dir: PathBuf,
        /// Journal durability: `always` (fdatasync per command), `batch` (per group commit), `never`.
        #[arg(long, default_value = "batch", value_parser = parse_fsync)]
        fsync: FsyncMode,
    },
    /// Follows the market data: loads a snapshot, then the TCP feed, and prints the top levels every second.
    Watch {
        /// The snapshot service.
        #[arg(long, default_value = "127.0.0.1:7003")]
        snapshot: std::net::SocketAddr,
        /// The TCP feed.
        #[arg(long, default_value = "127.0.0.1:7002")]
        feed: std::net::SocketAddr,
        /// Price levels per side.
        #[arg(long, default_value_t = 5)]
        levels: usize,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long)]
        seconds: Option<u64>,
    },
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
        Cmd::Serve { config, data_dir, fsync } => serve(config.as_deref(), data_dir, fsync),
        Cmd::Watch { snapshot, feed, levels, seconds } => watch(snapshot, feed, levels, seconds),
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

fn parse_fsync(text: &str) -> Result<FsyncMode, String> {
    match text {
        "always" => Ok(FsyncMode::Always),
        "batch" => Ok(FsyncMode::Batch),
        "never" => Ok(FsyncMode::Never),
        other => Err(format!("{other:?} is not one of always, batch, never")),
    }
}

fn load(config: Option<&std::path::Path>) -> Result<(Config, PathBuf), carbonx::config::ConfigFileError> {
    match config {
        None => Ok((Config::demo(), PathBuf::from("."))),
        Some(path) => Config::load(path).map(|c| (c, path.parent().map_or(PathBuf::from("."), PathBuf::from))),
    }
}

fn serve(config: Option<&std::path::Path>, data_dir: PathBuf, fsync: FsyncMode) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let (config, config_dir) = match load(config) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("carbonx: {err}");
            return ExitCode::FAILURE;
        }
    };
    let options = ServeOptions { data_dir: data_dir.clone(), fsync, config_dir };
    let server = match Server::start(&config, &options) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("carbonx: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", carbonx::server::banner(&config, &server, &data_dir));
    let reason = wait_for_stop(&server);
    tracing::info!(reason, "shutting down");
    match server.shutdown() {
        Ok(engine) => {
            println!("stopped; state hash {:#018x}", engine.state_hash());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("carbonx: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Blocks until SIGINT, SIGTERM, or the engine thread stopping on its own.
fn wait_for_stop(server: &Server) -> &'static str {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return "no signal runtime";
    };
    runtime.block_on(async {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return "no SIGTERM handler";
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "SIGINT",
                _ = term.recv() => return "SIGTERM",
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                    if server.has_failed() {
                        return "the engine thread stopped";
                    }
                }
            }
        }
    })
}

fn watch(snapshot: std::net::SocketAddr, feed: std::net::SocketAddr, levels: usize, seconds: Option<u64>) -> ExitCode {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("carbonx: cannot start a runtime");
        return ExitCode::FAILURE;
    };
    let result: Result<(), carbonx_feed::watch::WatchError> = runtime.block_on(async {
        let book = carbonx_feed::watch::load_snapshot(snapshot).await?;
        let mut follower = carbonx_feed::watch::Follower::start(feed, book).await?;
        let rounds = seconds.unwrap_or(u64::MAX);
        for _ in 0..rounds.max(1) {
            follower.poll(std::time::Duration::from_secs(1)).await?;
            println!("--- feed sequence {}", follower.book.next_seq() - 1);
            print!("{}", carbonx_feed::watch::render(&follower.book, levels));
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("carbonx: watch: {err}");
            ExitCode::FAILURE
        }
    }
}
