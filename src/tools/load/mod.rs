//! `carbonx load`: the operators' load benchmark. Drives a running server
//! (by default an embedded one) over real SoupBinTCP/OUCH sessions with a
//! seeded order mix, and measures order→Accepted and order→Executed
//! latency from each message's *planned* send time (open loop at a target
//! rate, so that a stall shows up as latency instead of hiding as fewer
//! sends: the coordinated-omission correction of exchange-core's harness).
//! `--rate max` runs closed loop with a bounded number of orders in flight.
//!
//! It also measures a raw TCP ping-pong on loopback in the same run and
//! reports the gateway's p50 and p99 as multiples of it.
//!
//! Given a cluster's nodes, each session logs in to the one that leads, and
//! follows the leader when it changes mid-run.
//!
//! # Layout
//! - `mod.rs`: the options, [`run`], the sessions' logins and the loopback
//!   ping-pong.
//! - `follow.rs`: following the leader (logging in again after a drop, and
//!   handing the sender the new connection).
//! - `mix.rs`: what orders are sent (the seeded mix and its tokens).
//! - `pacer.rs`: when they are sent (planned send times, open and closed loop).
//! - `report.rs`: what was found ([`LoadReport`]: counts, HDR percentiles,
//!   text, JSON and files).

mod follow;
mod mix;
mod pacer;
mod report;

pub use follow::LEADER_PATIENCE;
pub use pacer::IN_FLIGHT_DEFAULT;
pub use report::{Answers, LoadReport, Reject, Sent, hgrm};

use carbonx_gateway::client::{ClientError, Leader, LeaderError};
use carbonx_testkit::Rng;
use follow::Route;
use hdrhistogram::Histogram;
use mix::{Mix, run_tag};
use pacer::{Loop, Pacer, Session};
use report::histogram;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The server's order-entry address, or a cluster's nodes' (each
    /// session logs in to the one that takes the login, and follows it).
    pub connect: Vec<SocketAddr>,
    /// Usernames (password `demo` unless `password` says otherwise), one session each.
    pub users: Vec<String>,
    /// Password of every user.
    pub password: String,
    /// Messages per second across all sessions; `None` = closed loop, as fast as possible.
    pub rate: Option<u64>,
    /// Orders in flight per session in closed loop.
    pub in_flight: u64,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Seed of the order mix.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
    /// Connect under TLS with these settings; plain TCP when `None`.
    pub tls: Option<carbonx_soup::stream::TlsClient>,
}

/// Why a load run could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The loopback TCP ping-pong, the run's reference, failed.
    #[error("loopback ping-pong: {0}")]
    Ping(#[source] std::io::Error),
    /// A session could not write.
    #[error("{user}: {source}")]
    Session {
        /// The username.
        user: String,
        /// Why.
        source: ClientError,
    },
    /// No node took a session's login (at the start, or after a drop), or
    /// one refused it.
    #[error("{user}: login: {source}")]
    Login {
        /// The username.
        user: String,
        /// Why.
        source: LeaderError,
    },
    /// A session's task failed.
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs one measurement.
///
/// # Errors
/// A [`LoadError`]: a session could not connect, log in or write.
pub async fn run(options: &LoadOptions) -> Result<LoadReport, LoadError> {
    let ping = loopback_ping(20_000).await.map_err(LoadError::Ping)?;
    let sessions = options.users.len().max(1) as u64;
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    let progress = options.progress.then(|| progress_bar(options));
    let sent_counter = Arc::new(AtomicU64::new(0));
    let pacer = Pacer::start(if options.rate.is_some() { Loop::Open } else { Loop::Closed });
    let run_tag = run_tag().await;
    let addrs: Arc<[SocketAddr]> = options.connect.clone().into();
    for (i, user) in options.users.iter().enumerate() {
        let route = Route {
            addrs: Arc::clone(&addrs),
            tls: options.tls.clone(),
            user: user.clone(),
            password: options.password.clone(),
        };
        let leader = log_in(&route).await?;
        let rng = Rng::new(options.seed ^ ((i as u64 + 1) * 0x9E37));
        let mix = Mix::new(rng, i as u8, run_tag, user_first_account(user));
        let session = Session {
            route,
            mix,
            rate: options.rate.map(|r| (r / sessions).max(1)),
            in_flight: options.in_flight,
            start,
            warmup: options.warmup,
            end: options.warmup + options.duration,
            sent_counter: Arc::clone(&sent_counter),
            pacer: Arc::clone(&pacer.tick),
        };
        tasks.push(tokio::spawn(session.run(leader)));
    }
    if let Some(bar) = &progress {
        tokio::spawn(show_live_rate(bar.clone(), Arc::clone(&sent_counter), start, options.warmup + options.duration));
    }
    let mut report = LoadReport {
        rate: options.rate,
        seconds: options.duration.as_secs_f64(),
        sent: Sent::default(),
        answers: Answers::default(),
        rejects: BTreeMap::new(),
        accepted: histogram(),
        executed: histogram(),
        per_second: Vec::new(),
        reconnects: 0,
        ping,
    };
    for task in tasks {
        let result = task.await??;
        report::merge(&mut report, result);
    }
    drop(pacer);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(report)
}

/// A session logged in (for new messages only) to the node that takes it.
async fn log_in(route: &Route) -> Result<Leader, LoadError> {
    route.log_in(0).await.map_err(|source| LoadError::Login { user: route.user.clone(), source })
}

/// Updates the progress bar with the rate sent over the last 250 ms.
async fn show_live_rate(bar: indicatif::ProgressBar, counter: Arc<AtomicU64>, start: Instant, total: Duration) {
    let mut last = 0;
    while start.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = counter.load(Ordering::Relaxed);
        bar.set_position(start.elapsed().as_millis() as u64);
        bar.set_message(format!("{:>10.0} msg/s", (now - last) as f64 * 4.0));
        last = now;
    }
}

/// The progress bar over the whole run, warm-up included.
fn progress_bar(options: &LoadOptions) -> indicatif::ProgressBar {
    let total = (options.warmup + options.duration).as_millis() as u64;
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {elapsed}/{duration} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// DEMOnn's first account (`(nn-1) * 340 + 1`); other names start at 1.
fn user_first_account(user: &str) -> u32 {
    user.strip_prefix("DEMO").and_then(|n| n.parse::<u32>().ok()).map_or(1, |n| (n.max(1) - 1) * 340 + 1)
}

/// Round trips of a 64-byte message over a loopback TCP connection.
async fn loopback_ping(rounds: usize) -> std::io::Result<Histogram<u64>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let echo = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        loop {
            if socket.read_exact(&mut buf).await.is_err() {
                return Ok::<(), std::io::Error>(());
            }
            socket.write_all(&buf).await?;
        }
    });
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let mut hist = histogram();
    let mut buf = [7u8; 64];
    for _ in 0..rounds {
        let t = Instant::now();
        socket.write_all(&buf).await?;
        socket.read_exact(&mut buf).await?;
        let _ = hist.record((t.elapsed().as_nanos() as u64).max(1));
    }
    drop(socket);
    let _ = echo.await;
    Ok(hist)
}
