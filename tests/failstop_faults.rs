//! Fault injection through the storage seam (`carbonx_soup::files::check`,
//! which the journal, the session and feed day logs and the end-of-day
//! files pass): an in-process server is traded against by two clients
//! while a seeded fault fails the Nth write or sync of one kind of file
//! (with `ENOSPC` or `EIO`; the disk stays bad after the first failure).
//! After each fault:
//! - the server stops itself: `Server::shutdown` reports a fail-stop whose
//!   reason names a file under the data directory and the OS error;
//! - a restart on a healthy disk rebuilds every session's stream from the
//!   journal, and each stream begins with exactly what its client received
//!   (nothing received is missing, no number given twice or to another
//!   message).
//!
//! Seed: `CARBONX_SEED`; faults per run: `CARBONX_FAULTS` (default 200).
//! Without the fail-stop a day-log fault left a hole (the client missed
//! messages the restarted stream holds under other numbers) and the server
//! never stopped.

use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeError, ServeOptions, Server};
use carbonx_gateway::client::{Client, ClientError, Received};
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use carbonx_soup::files::{FaultPlan, StorageOp, install_faults};
use carbonx_testkit::Rng;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a server whose clients are done gets to notice its fault.
const STOP_WAIT_MS: u64 = 300;
const USERS: [&str; 2] = ["DEMO01", "DEMO02"];
/// Which files a fault hits: a part of their path.
const TARGETS: [&str; 4] = ["journal-", "/sessions/", "/feed/", "/eod/"];

/// Fails the `nth` matching operation and every one after it.
struct Fault {
    dir: PathBuf,
    target: &'static str,
    op: StorageOp,
    errno: i32,
    state: Mutex<u64>,
    fired: AtomicBool,
}

impl Fault {
    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl FaultPlan for Fault {
    fn check(&self, op: StorageOp, path: &Path) -> std::io::Result<()> {
        let hit = op == self.op && path.starts_with(&self.dir) && path.to_string_lossy().contains(self.target);
        if !hit {
            return Ok(());
        }
        let mut left = self.state.lock().unwrap();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.fired.store(true, Ordering::SeqCst);
            Err(std::io::Error::from_raw_os_error(self.errno))
        } else {
            Ok(())
        }
    }
}

fn order(user: usize, n: u32) -> Inbound {
    let side = if n % 2 == 0 { b'B' } else { b'S' };
    let account = format!("{:04}", user as u32 * 340 + 1 + n % 3);
    Inbound::Enter(EnterOrder::limit(&format!("Q{user}N{n}"), side, 1 + n % 5, "CEA", 746_300, &account))
}

/// Orders each client sends at most (the fault points lie well within).
const ORDERS: u32 = 150;

/// Trades until the connection ends, the fault has fired or `ORDERS` are
/// sent; then drains what the server still sends until it ends the session
/// or goes quiet. Returns what arrived, checked gap-free.
async fn trade(addr: SocketAddr, user: usize, fault: Arc<Fault>) -> Vec<Outbound> {
    let mut received = Vec::new();
    let Ok(mut client) = Client::connect(addr).await else { return received };
    let Ok(Received::LoginAccepted { .. }) = client.login(USERS[user], "demo", "", 1).await else { return received };
    let mut n = 0;
    loop {
        let wait = if n < ORDERS && !fault.fired() {
            if client.send(&order(user, n)).await.is_err() {
                break;
            }
            n += 1;
            Duration::from_millis(500)
        } else {
            Duration::from_millis(100)
        };
        // Every order gets at least its Accepted: wait for one message, then take what is there.
        match client.next_message(wait).await {
            Ok((seq, message)) => {
                assert_eq!(seq, received.len() as u64 + 1, "gap or duplicate in the live stream");
                received.push(message);
            }
            Err(ClientError::Timeout) if n >= ORDERS || fault.fired() => break,
            Err(ClientError::Timeout) => continue,
            Err(_) => break,
        }
        while let Ok((seq, message)) = client.next_message(Duration::from_millis(1)).await {
            assert_eq!(seq, received.len() as u64 + 1, "gap or duplicate in the live stream");
            received.push(message);
        }
    }
    received
}

/// The first `want` messages of `user`'s stream after the restart, checked
/// gap-free (fewer if the stream ends before).
async fn whole_stream(addr: SocketAddr, user: &str, want: usize) -> Vec<Outbound> {
    let mut client = Client::connect(addr).await.unwrap();
    let Received::LoginAccepted { .. } = client.login(user, "demo", "", 1).await.unwrap() else {
        panic!("{user}: login refused after the restart")
    };
    let mut stream = Vec::new();
    while stream.len() < want {
        let Ok((seq, message)) = client.next_message(Duration::from_secs(2)).await else { break };
        assert_eq!(seq, stream.len() as u64 + 1, "{user}: gap or duplicate in the rebuilt stream");
        stream.push(message);
    }
    stream
}

fn options(data: &Path) -> ServeOptions {
    ServeOptions { data_dir: data.to_path_buf(), fsync: FsyncMode::Batch, config_dir: PathBuf::from(".") }
}

/// Waits (bounded) until the server stops itself; false if it never does.
fn stopped_itself(server: &Server) -> bool {
    let deadline = Instant::now() + Duration::from_millis(STOP_WAIT_MS);
    while Instant::now() < deadline {
        if server.has_failed() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// One fault; true when it fired (the server stopped), false when the
/// run ended before the Nth operation came.
fn one_fault(run: u64, rng: &mut Rng, runtime: &tokio::runtime::Runtime) -> bool {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = Config::demo().on_free_ports();
    let target = TARGETS[rng.below(TARGETS.len() as u64) as usize];
    let op = if rng.below(3) == 0 { StorageOp::Sync } else { StorageOp::Write };
    let errno = if rng.below(2) == 0 { 28 } else { 5 }; // ENOSPC, EIO
    // End-of-day files are few (four, plus the trades' partial file).
    let nth = 1 + rng.below(if target == "/eod/" { 5 } else { 60 });
    let what = format!("run {run}: {op:?} #{nth} of {target} fails with errno {errno}");
    let fault =
        Arc::new(Fault { dir: data.clone(), target, op, errno, state: Mutex::new(nth), fired: AtomicBool::new(false) });
    install_faults(Some(fault.clone()));
    let mut received = vec![Vec::new(); USERS.len()];
    let started = Instant::now();
    let outcome = match Server::start(&config, &options(&data)) {
        Err(err) => Err(err),
        Ok(server) => {
            let addr = server.order_entry_addr();
            let tasks: Vec<_> = (0..USERS.len()).map(|u| runtime.spawn(trade(addr, u, fault.clone()))).collect();
            for (u, task) in tasks.into_iter().enumerate() {
                let bounded = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(20), task).await });
                received[u] =
                    bounded.unwrap_or_else(|_| panic!("{what}: client {u} still trading after 20 s")).unwrap();
            }
            let fired = stopped_itself(&server);
            let result = server.shutdown();
            // End-of-day files are also written by the stop itself: a fault
            // there fires during `shutdown` and must be reported the same way.
            if !fired && result.is_ok() {
                install_faults(None);
                // A fault that fired must stop the server; one that never
                // came (the run ended first) is not counted.
                assert!(!fault.fired(), "{what}: the fault fired but the server went on and stopped cleanly");
                return false;
            }
            result.map(|_| ())
        }
    };
    install_faults(None);
    match outcome {
        Err(ServeError::FailStop(reason)) => {
            let os_error = format!("os error {errno}");
            assert!(reason.contains(&data.to_string_lossy().to_string()), "{what}: no file named: {reason}");
            assert!(reason.contains(&os_error), "{what}: no OS error: {reason}");
        }
        // A fault during the start (the new day's journal header) refuses
        // the start itself with the file's error: nothing was ever released.
        Err(ServeError::Sequencer(err)) if received.iter().all(Vec::is_empty) => {
            let text = format!("{err:?}");
            assert!(text.contains(&data.to_string_lossy().to_string()), "{what}: no file named: {text}");
            assert!(text.contains(&format!("code: {errno}")), "{what}: no OS error: {text}");
        }
        other => panic!("{what}: expected a fail-stop, got {:?}", other.err()),
    }
    let server = Server::start(&config, &options(&data)).unwrap_or_else(|e| panic!("{what}: restart: {e}"));
    for (u, user) in USERS.iter().enumerate() {
        let rebuilt = whole_stream(server.order_entry_addr(), user, received[u].len());
        let stream = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(20), rebuilt).await })
            .unwrap_or_else(|_| panic!("{what}: {user}: the rebuilt stream stalled"));
        assert!(
            stream.len() >= received[u].len(),
            "{what}: {user} received {}, {} recovered",
            received[u].len(),
            stream.len()
        );
        assert_eq!(&stream[..received[u].len()], &received[u][..], "{what}: {user}: a received message changed");
    }
    server.shutdown().unwrap_or_else(|e| panic!("{what}: stop after the restart: {e}"));
    if std::env::var_os("CARBONX_FAULT_TIMES").is_some() {
        println!("{what}: {:?}", started.elapsed());
    }
    true
}

#[test]
fn every_storage_fault_stops_the_server_and_loses_nothing_a_client_received() {
    let seed = carbonx_testkit::seed("storage faults", 0xFA17_5709);
    let faults: u64 = std::env::var("CARBONX_FAULTS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    println!("{faults} faults (CARBONX_FAULTS)");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rng = Rng::new(seed);
    let (mut fired, mut runs) = (0, 0);
    while fired < faults && runs < faults * 3 {
        runs += 1;
        if one_fault(runs, &mut rng, &runtime) {
            fired += 1;
        }
    }
    println!("{fired} faults fired in {runs} runs");
    assert_eq!(fired, faults, "too few faults fired: the fault points are beyond what a run does");
}
