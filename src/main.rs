//! `carbonx`: the command line of the exchange core (see the library's
//! `# Layout` in `lib.rs` for the parts).

use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx::tools::watch::{Frames as WatchFrames, Source as WatchSource};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
        /// A configuration file (default: the embedded demo market of docs/RULES.md §13).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the journal and the session day logs live.
        #[arg(long, default_value = "./carbonx-data")]
        data_dir: PathBuf,
        /// Journal durability, overriding the configuration's `[journal] fsync`.
        #[arg(long, value_enum)]
        fsync: Option<FsyncMode>,
        /// The log lines on stderr: `text` for people, `json` (one object a line) for log shippers.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Follows the market data: every instrument's book, last trade, volume, band and the auctions,
    /// refreshed in place every second. Replays the day's TCP feed from sequence 1, so that the
    /// day's figures are exact (`--from-snapshot` joins late: figures count from then on).
    Watch {
        /// The snapshot service (with `--from-snapshot`).
        #[arg(long, default_value = "127.0.0.1:7003")]
        snapshot: std::net::SocketAddr,
        /// The TCP feed.
        #[arg(long, default_value = "127.0.0.1:7002")]
        feed: std::net::SocketAddr,
        /// The admin endpoint, for the public list of auctions (omitted when unreachable).
        #[arg(long, default_value = "127.0.0.1:7010")]
        admin: std::net::SocketAddr,
        /// Price levels per side.
        #[arg(long, default_value_t = 5)]
        levels: usize,
        /// Stop after this long, e.g. `30s`, `5m` (default: until interrupted).
        #[arg(long, value_parser = carbonx::config::parse_duration)]
        duration: Option<Duration>,
        /// Catch up, print one frame and exit.
        #[arg(long)]
        once: bool,
        /// Start from the snapshot service instead of replaying the day.
        #[arg(long)]
        from_snapshot: bool,
        /// The feed user (one of `[[feed.users]]`; the demo market accepts any).
        #[arg(long, default_value = "WATCH")]
        user: String,
        /// Its password.
        #[arg(long, env = "CARBONX_FEED_PASSWORD", default_value = "watch", hide_env_values = true)]
        password: String,
        /// TLS to the TCP feed and the snapshot service (`[feed] tls`, `snapshot_tls`).
        #[command(flatten)]
        tls: carbonx::tools::tls::TlsArgs,
    },
    /// Load benchmark: drives a server over SoupBinTCP/OUCH and reports latency percentiles.
    Load {
        /// A running server's order-entry address, or a cluster's nodes' as
        /// `A,B,C`: each session logs in to the node that takes it (the
        /// leader), and after a dropped connection logs in again from its next
        /// sequence number, following a new leader (default: start an embedded
        /// demo server).
        #[arg(long, value_delimiter = ',')]
        connect: Vec<std::net::SocketAddr>,
        /// Comma-separated usernames, one session each.
        #[arg(long, default_value = "DEMO01,DEMO02,DEMO03,DEMO04")]
        users: String,
        /// Password of every user.
        #[arg(long, default_value = "demo")]
        password: String,
        /// Target messages per second across all sessions (`100k`, `1m`), or `max` (closed loop).
        #[arg(long, default_value = "100k")]
        rate: String,
        /// A rate ladder instead of one rate: `100k,200k,400k`.
        #[arg(long)]
        steps: Option<String>,
        /// Orders in flight per session with `--rate max`.
        #[arg(long, default_value_t = carbonx::tools::load::IN_FLIGHT_DEFAULT)]
        in_flight: u64,
        /// Measured time per step, e.g. `10s`, `500ms`, `1m`.
        #[arg(long, default_value = "10s", value_parser = carbonx::config::parse_duration)]
        duration: Duration,
        /// Unmeasured time before each step.
        #[arg(long, default_value = "2s", value_parser = carbonx::config::parse_duration)]
        warmup: Duration,
        /// Seed of the order mix.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON object per step instead of the table.
        #[arg(long)]
        json: bool,
        /// Where the .hgrm files and SVG plots go.
        #[arg(long, default_value = "./carbonx-load")]
        out: PathBuf,
        /// Embedded server: journal durability.
        #[arg(long, value_enum, default_value_t = FsyncMode::Batch)]
        fsync: FsyncMode,
        /// Embedded server: run without the market-data feeds.
        #[arg(long)]
        no_feed: bool,
        /// TLS to a server whose order-entry port has it.
        #[command(flatten)]
        tls: carbonx::tools::tls::TlsArgs,
    },
    /// Prints a configuration as TOML (secrets redacted): the embedded demo market, or FILE after validating it.
    Config {
        /// A configuration file to check and print instead of the demo market.
        file: Option<PathBuf>,
    },
    /// Reads a password (at most 10 ASCII characters, one line) on stdin
    /// and prints its argon2 hash for `password_hash` in a configuration.
    Passwd,
    /// Operator commands through a running server's admin endpoint.
    Admin {
        /// The admin endpoint.
        #[arg(long, default_value = "http://127.0.0.1:7010")]
        url: String,
        /// The admin token (default: the demo market's).
        #[arg(long, env = "CARBONX_ADMIN_TOKEN", default_value = carbonx::config::DEMO_ADMIN_TOKEN)]
        token: String,
        /// The CA (PEM) an `https://` endpoint's certificate must chain to (`[admin] tls`).
        #[arg(long, value_name = "PEM")]
        tls_ca: Option<PathBuf>,
        /// What to do.
        #[command(subcommand)]
        action: carbonx::admin::client::AdminAction,
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
        /// Start from the first journal file, ignoring the start-of-day snapshots.
        #[arg(long, conflicts_with = "snapshot")]
        full: bool,
        /// Start from this snapshot file (start-of-day or on-demand).
        #[arg(long)]
        snapshot: Option<PathBuf>,
        /// The audit: print every journal record and its result as a JSON line
        /// (`seq`, `date`, `time`, `command`, `result`), filtered by the options below.
        #[command(flatten)]
        audit: AuditArgs,
    },
}

/// `carbonx replay --events` and `--book`: what happened, from the journal alone.
#[derive(clap::Args, Debug)]
struct AuditArgs {
    /// Print the events as JSON lines instead of the totals.
    #[arg(long)]
    events: bool,
    /// Only lines involving this account code (as sender or any party).
    #[arg(long, requires = "events")]
    account: Option<String>,
    /// Only lines involving this username.
    #[arg(long, requires = "events")]
    user: Option<String>,
    /// Only lines involving this order token.
    #[arg(long, requires = "events")]
    token: Option<String>,
    /// Only lines involving this instrument.
    #[arg(long, requires = "events")]
    instrument: Option<String>,
    /// Only records at or after this local time of day (HH:MM[:SS[.fraction]]).
    #[arg(long, requires = "events", value_parser = parse_time_of_day)]
    from: Option<u64>,
    /// Only records before this local time of day.
    #[arg(long, requires = "events", value_parser = parse_time_of_day)]
    to: Option<u64>,
    /// Print this instrument's book (JSON) at `--at` instead of the totals.
    #[arg(long, requires = "at", conflicts_with = "events")]
    book: Option<String>,
    /// The local time of day of `--book` (HH:MM[:SS[.fraction]]).
    #[arg(long, requires = "book", value_parser = parse_time_of_day)]
    at: Option<u64>,
    /// The date of `--book`, YYYYMMDD (default: the last day in the journal).
    #[arg(long, requires = "book")]
    date: Option<u32>,
}

impl AuditArgs {
    /// The audit asked for, if any.
    fn options(&self) -> Option<carbonx::tools::replay::AuditOptions> {
        use carbonx::tools::audit::{BookRequest, Filter};
        let book = match (&self.book, self.at) {
            (Some(instrument), Some(at)) => Some(BookRequest { instrument: instrument.clone(), at, date: self.date }),
            _ => None,
        };
        if !self.events && book.is_none() {
            return None;
        }
        let filter = Filter {
            account: self.account.clone(),
            user: self.user.clone(),
            token: self.token.clone(),
            instrument: self.instrument.clone(),
            from: self.from,
            to: self.to,
        };
        Some(carbonx::tools::replay::AuditOptions { filter, book })
    }
}

fn parse_time_of_day(text: &str) -> Result<u64, String> {
    carbonx::tools::audit::parse_time_of_day(text).ok_or_else(|| format!("{text:?} is not a time of day (HH:MM[:SS])"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { config, data_dir, fsync, log_format } => serve(config.as_deref(), data_dir, fsync, log_format),
        Cmd::Watch { snapshot, feed, admin, levels, duration, once, from_snapshot, user, password, tls } => {
            let seconds = duration.map(|d| d.as_secs().max(1));
            let source = if from_snapshot { WatchSource::Snapshot(snapshot) } else { WatchSource::Replay };
            let frames = if once { WatchFrames::Once } else { WatchFrames::Every(seconds) };
            let credentials = carbonx_feed::watch::Credentials { user, password };
            watch(&carbonx::tools::watch::WatchOptions { feed, source, admin, levels, frames, credentials, tls })
        }
        Cmd::Load {
            connect,
            users,
            password,
            rate,
            steps,
            in_flight,
            duration,
            warmup,
            seed,
            json,
            out,
            fsync,
            no_feed,
            tls,
        } => {
            let plan = LoadPlan {
                connect,
                users,
                password,
                rate,
                steps,
                in_flight,
                duration,
                warmup,
                seed,
                json,
                out,
                fsync,
                feed: if no_feed { Feeds::Off } else { Feeds::On },
                tls,
            };
            run_load(&plan)
        }
        Cmd::Admin { url, token, tls_ca, action } => admin(&url, &token, tls_ca.as_deref(), &action),
        Cmd::Replay { data_dir, config, verify, full, snapshot, audit } => {
            let from = match (full, snapshot) {
                (true, _) => carbonx::tools::replay::ReplayFrom::Full,
                (false, Some(path)) => carbonx::tools::replay::ReplayFrom::Snapshot(path),
                (false, None) => carbonx::tools::replay::ReplayFrom::Latest,
            };
            match audit.options() {
                Some(options) => replay_audit(&data_dir, config.as_deref(), &from, &options),
                None => replay(&data_dir, config.as_deref(), verify.as_deref(), &from),
            }
        }
        Cmd::Config { file } => print_config(file.as_deref()),
        Cmd::Passwd => passwd(),
    }
}

/// `carbonx passwd`: the argon2 hash of the password on standard input.
fn passwd() -> ExitCode {
    match carbonx::config::password_hash_from(std::io::stdin().lock()) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("carbonx passwd: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `carbonx config`: the configuration as TOML (default: the demo market).
fn print_config(file: Option<&std::path::Path>) -> ExitCode {
    let config = match file {
        None => Ok(Config::demo()),
        Some(path) => Config::load(path),
    };
    match config {
        Ok(config) => {
            print!("{}", config.to_toml_redacted());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("carbonx: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Exit codes: 0 done, 1 refused (the server's message on stderr), 2 unreachable.
fn admin(
    url: &str,
    token: &str,
    tls_ca: Option<&std::path::Path>,
    action: &carbonx::admin::client::AdminAction,
) -> ExitCode {
    use carbonx::admin::client::{AdminClient, AdminError};
    let client = match tls_ca {
        None => Ok(AdminClient::new(url, token)),
        Some(ca) => AdminClient::with_ca(url, token, ca),
    };
    match client.and_then(|client| client.run(action)) {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(err @ AdminError::Refused { .. }) => {
            eprintln!("carbonx admin: {err}");
            ExitCode::from(1)
        }
        Err(err @ AdminError::Unreachable { .. }) => {
            eprintln!("carbonx admin: {err}");
            ExitCode::from(2)
        }
    }
}

fn replay(
    data_dir: &std::path::Path,
    config: Option<&std::path::Path>,
    verify: Option<&str>,
    from: &carbonx::tools::replay::ReplayFrom,
) -> ExitCode {
    let loaded = match config {
        None => Ok((Config::demo(), PathBuf::from("."))),
        Some(path) => Config::load(path).map(|c| (c, path.parent().map_or(PathBuf::from("."), PathBuf::from))),
    };
    let report = loaded
        .map_err(carbonx::tools::replay::ReplayError::from)
        .and_then(|(c, base)| carbonx::tools::replay::replay(&c, &base, data_dir, from));
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
    match carbonx::tools::replay::parse_hash(expected) {
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

/// `carbonx replay --events` / `--book`: JSON lines, or the book as one JSON object.
fn replay_audit(
    data_dir: &std::path::Path,
    config: Option<&std::path::Path>,
    from: &carbonx::tools::replay::ReplayFrom,
    options: &carbonx::tools::replay::AuditOptions,
) -> ExitCode {
    let out = Box::new(std::io::BufWriter::new(std::io::stdout()));
    let result = load(config)
        .map_err(carbonx::tools::replay::ReplayError::from)
        .and_then(|(c, base)| carbonx::tools::replay::audit(&c, &base, data_dir, from, options, out));
    match result {
        Ok(Some(book)) => {
            println!("{}", serde_json::to_string(&book).expect("a book serialises"));
            ExitCode::SUCCESS
        }
        Ok(None) if options.book.is_some() => {
            eprintln!("carbonx: replay of {}: no journal record on that date", data_dir.display());
            ExitCode::FAILURE
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("carbonx: replay of {}: {err}", data_dir.display());
            ExitCode::FAILURE
        }
    }
}

/// How `serve` writes its log lines (stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line (tracing-subscriber's JSON output), for log shippers.
    Json,
}

/// Starts the log: `RUST_LOG` filters (default `info`), to stderr.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A command-line value that does not parse.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    /// Not a load rate.
    #[error("{0:?} is not a rate (e.g. 50000, 100k, 1m, max)")]
    Rate(String),
}

fn load(config: Option<&std::path::Path>) -> Result<(Config, PathBuf), carbonx::config::ConfigFileError> {
    match config {
        None => Ok((Config::demo(), PathBuf::from("."))),
        Some(path) => Config::load(path).map(|c| (c, path.parent().map_or(PathBuf::from("."), PathBuf::from))),
    }
}

fn serve(config: Option<&std::path::Path>, data_dir: PathBuf, fsync: Option<FsyncMode>, log: LogFormat) -> ExitCode {
    init_logging(log);
    let (config, config_dir) = match load(config) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("carbonx: {err}");
            return ExitCode::FAILURE;
        }
    };
    let source = if fsync.is_some() { "--fsync never" } else { "[journal] fsync = \"never\"" };
    let fsync = fsync.unwrap_or(config.journal.fsync);
    if fsync == FsyncMode::Never {
        eprintln!("carbonx: {}", fsync_never_warning(source));
    }
    let options = ServeOptions { data_dir: data_dir.clone(), fsync, config_dir };
    let server = match Server::start(&config, &options) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("carbonx: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", carbonx::serve::banner(&config, &server, &data_dir));
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

/// What `serve` warns at start-up when the journal is never synced
/// (`source`: the flag or the configuration key that said so). `carbonx
/// load`'s embedded server does not warn: it is a benchmark.
fn fsync_never_warning(source: &str) -> String {
    format!(
        "WARNING: {source}: the journal is never synced to disk. A crash of this process loses nothing, \
         but on a power cut or kernel crash, acknowledged orders since the last OS writeback can be lost. \
         Use fsync = \"batch\" or \"always\" for a real market."
    )
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
                _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                    if server.has_failed() {
                        return "fail-stop: a stage stopped";
                    }
                }
            }
        }
    })
}

fn watch(options: &carbonx::tools::watch::WatchOptions) -> ExitCode {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("carbonx: cannot start a runtime");
        return ExitCode::FAILURE;
    };
    match runtime.block_on(carbonx::tools::watch::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("carbonx: watch: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `carbonx load`'s arguments.
struct LoadPlan {
    /// Empty: an embedded server.
    connect: Vec<std::net::SocketAddr>,
    users: String,
    password: String,
    rate: String,
    steps: Option<String>,
    in_flight: u64,
    duration: Duration,
    warmup: Duration,
    seed: u64,
    json: bool,
    out: PathBuf,
    fsync: FsyncMode,
    feed: Feeds,
    tls: carbonx::tools::tls::TlsArgs,
}

/// `100k` → 100,000; `1m` → 1,000,000; `max` → `None`.
fn parse_rate(text: &str) -> Result<Option<u64>, ArgError> {
    let text = text.trim().to_ascii_lowercase();
    if text == "max" {
        return Ok(None);
    }
    let (digits, scale) = match text.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => text.strip_suffix('m').map_or((text.as_str(), 1), |d| (d, 1_000_000)),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n * scale)),
        _ => Err(ArgError::Rate(text)),
    }
}

fn run_load(plan: &LoadPlan) -> ExitCode {
    let rates: Result<Vec<Option<u64>>, ArgError> =
        plan.steps.as_deref().unwrap_or(&plan.rate).split(',').map(parse_rate).collect();
    let rates = match rates {
        Ok(rates) => rates,
        Err(err) => {
            eprintln!("carbonx: load: {err}");
            return ExitCode::FAILURE;
        }
    };
    let embedded = match plan.connect.is_empty() {
        false => None,
        true => match EmbeddedServer::start(plan.fsync, plan.feed) {
            Ok(server) => Some(server),
            Err(err) => {
                eprintln!("carbonx: load: cannot start the embedded server: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    let connect = match &embedded {
        Some(embedded) => vec![embedded.server.order_entry_addr()],
        None => plan.connect.clone(),
    };
    let settings = match &embedded {
        Some(_) => format!("embedded server, fsync={:?}, feeds {}", plan.fsync, plan.feed.name()),
        None => format!("server at {}", connect.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    };
    let code = run_steps(plan, &rates, &connect, &settings);
    if let Some(embedded) = embedded {
        embedded.stop();
    }
    code
}

/// Runs each rate step against `connect` (one address, or a cluster's nodes).
fn run_steps(plan: &LoadPlan, rates: &[Option<u64>], connect: &[std::net::SocketAddr], settings: &str) -> ExitCode {
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() else {
        return ExitCode::FAILURE;
    };
    let Some(&first) = connect.first() else {
        eprintln!("carbonx: load: no address to connect to");
        return ExitCode::FAILURE;
    };
    // One TLS name for every node: the first address's, unless --tls-name gives the one their certificates share.
    let tls = match plan.tls.client(first) {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("carbonx: load: {err}");
            return ExitCode::FAILURE;
        }
    };
    if !plan.json {
        let over = if tls.is_some() { ", over TLS" } else { "" };
        println!("carbonx load: {settings}{over}; users {}", plan.users);
    }
    for (step, rate) in rates.iter().enumerate() {
        let options = carbonx::tools::load::LoadOptions {
            connect: connect.to_vec(),
            users: plan.users.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect(),
            password: plan.password.clone(),
            rate: *rate,
            in_flight: plan.in_flight,
            duration: plan.duration.max(Duration::from_millis(100)),
            warmup: plan.warmup,
            seed: plan.seed.wrapping_add(step as u64),
            progress: !plan.json,
            tls: tls.clone(),
        };
        let report = match runtime.block_on(carbonx::tools::load::run(&options)) {
            Ok(report) => report,
            Err(err) => {
                eprintln!("carbonx: load: {err}");
                return ExitCode::FAILURE;
            }
        };
        let tag = format!("step{step}-");
        let written = report.write_outputs(&plan.out, &tag);
        if plan.json {
            println!("{}", report.to_json());
        } else {
            print!("{report}");
            match written {
                Ok(paths) => {
                    println!("wrote {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))
                }
                Err(err) => eprintln!("carbonx: load: cannot write outputs: {err}"),
            }
        }
    }
    ExitCode::SUCCESS
}

/// Whether the embedded server of a load run publishes market data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feeds {
    /// The feeds run, as in production.
    On,
    /// No feeds: order entry alone.
    Off,
}

impl Feeds {
    fn name(self) -> &'static str {
        match self {
            Feeds::On => "on",
            Feeds::Off => "off",
        }
    }
}

/// A demo server started for a load run, on free ports and a temp data directory.
struct EmbeddedServer {
    server: Server,
    data_dir: PathBuf,
}

impl EmbeddedServer {
    fn start(fsync: FsyncMode, feed: Feeds) -> Result<EmbeddedServer, carbonx::serve::ServeError> {
        let mut config = Config::demo().on_free_ports();
        config.feed.enabled = feed == Feeds::On;
        let data_dir = std::env::temp_dir().join(format!("carbonx-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let options = ServeOptions { data_dir: data_dir.clone(), fsync, config_dir: PathBuf::from(".") };
        Ok(EmbeddedServer { server: Server::start(&config, &options)?, data_dir })
    }

    fn stop(self) {
        let _ = self.server.shutdown();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
