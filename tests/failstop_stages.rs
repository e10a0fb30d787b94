//! Every stage is watched (issue 19): a panic in the sequencer, the
//! order-entry router, the feed or the end-of-day writer, injected through
//! the test-only hook `CARBONX_TEST_PANIC=<stage>:<n>`, stops `carbonx
//! serve` with a non-zero exit and one clear `FAIL-STOP` line naming the
//! stage; a restart on the same data directory recovers exactly: every
//! message a client received is in its rebuilt stream, numbering goes on
//! from there, and the state hash equals an offline replay's.
//!
//! Without the fix a router, feed or end-of-day panic logged "stage
//! stopped" and trading went on: the server never exited.

mod support;

use carbonx::config::Config;
use carbonx_gateway::client::{Client, ClientError, Received};
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use support::disk::SmallDisk;
use support::flow::take_answers;

const USERS: [&str; 2] = ["DEMO01", "DEMO02"];

struct Serve {
    child: Child,
    addr: Option<SocketAddr>,
    stdout: BufReader<ChildStdout>,
    /// Reads stderr as it comes (a full pipe would block the server's logging).
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// Starts `serve`; `addr` is `None` when it stopped before listening.
fn serve(config: &Path, data: &Path, panic: Option<&str>) -> Serve {
    let mut command = Command::new(env!("CARGO_BIN_EXE_carbonx"));
    command.args(["serve", "--fsync", "batch", "--config"]).arg(config).arg("--data-dir").arg(data);
    command.env("RUST_LOG", "warn").env_remove(carbonx_soup::failstop::TEST_PANIC_ENV);
    if let Some(spec) = panic {
        command.env(carbonx_soup::failstop::TEST_PANIC_ENV, spec);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let stderr = Some(std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    }));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..20 {
        line.clear();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(addr) = line.split("OUCH 4.2): ").nth(1) {
            return Serve { child, addr: Some(addr.trim().parse().unwrap()), stdout, stderr };
        }
    }
    Serve { child, addr: None, stdout, stderr }
}

/// Logs in from sequence 1 and reads the whole stream so far.
async fn whole_stream(addr: SocketAddr, user: &str) -> (Client, Vec<Outbound>) {
    let mut client = Client::connect(addr).await.unwrap();
    let Received::LoginAccepted { .. } = client.login(user, "demo", "", 1).await.unwrap() else {
        panic!("{user}: login refused")
    };
    let mut stream = Vec::new();
    while let Ok((seq, message)) = client.next_message(Duration::from_millis(200)).await {
        assert_eq!(seq, stream.len() as u64 + 1, "{user}: gap or duplicate in the replay");
        stream.push(message);
    }
    (client, stream)
}

fn order(token: &str, side: u8, price: u32, account: u32) -> Inbound {
    Inbound::Enter(EnterOrder::limit(token, side, 1, "CEA", price, &format!("{account:04}")))
}

/// Trades (crossing orders) until the connection ends or 3,000 orders;
/// returns every message received, checking there is no gap.
async fn trade(mut client: Client, user: usize, mut received: Vec<Outbound>) -> Vec<Outbound> {
    for n in 0..1_000u32 {
        let side = if n % 2 == 0 { b'B' } else { b'S' };
        let message = order(&format!("F{user}N{n}"), side, 746_300, user as u32 * 340 + 1 + n % 3);
        let wait = Duration::from_millis(5);
        if client.send(&message).await.is_err() || !take_answers(&mut client, &mut received, wait).await {
            break;
        }
    }
    while let Ok((seq, message)) = client.next_message(Duration::from_millis(100)).await {
        assert_eq!(seq, received.len() as u64 + 1, "gap or duplicate in the live stream");
        received.push(message);
    }
    received
}

/// Waits (bounded) for the child to exit on its own; its status and stderr.
fn wait_for_exit(server: &mut Serve) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.child.kill();
            let _ = server.child.wait();
            let stderr = server.stderr.take().map(|t| t.join().unwrap()).unwrap_or_default();
            panic!("the server did not stop after the injected panic\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = server.stderr.take().map(|t| t.join().unwrap()).unwrap_or_default();
    (status, stderr)
}

/// One stage: panic it, check the stop, restart, check the recovery.
fn panic_stops_the_server(stage: &str, spec: &str, message: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (config_path, data) = (tmp.path().join("carbonx.toml"), tmp.path().join("data"));
    std::fs::write(&config_path, Config::demo().on_free_ports().to_toml()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut server = serve(&config_path, &data, Some(spec));
    let mut received = vec![Vec::new(); USERS.len()];
    if let Some(addr) = server.addr {
        let tasks: Vec<_> = USERS
            .iter()
            .enumerate()
            .map(|(i, user)| {
                runtime.spawn(async move {
                    let Ok(mut client) = Client::connect(addr).await else { return Vec::new() };
                    match client.login(user, "demo", "", 1).await {
                        Ok(Received::LoginAccepted { .. }) => trade(client, i, Vec::new()).await,
                        _ => Vec::new(),
                    }
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            received[i] = runtime.block_on(task).unwrap();
        }
    }
    let (status, stderr) = wait_for_exit(&mut server);
    assert!(!status.success(), "{stage}: the server exited successfully after a panic\n{stderr}");
    assert!(stderr.contains("FAIL-STOP") && stderr.contains(message), "{stage}: no clear error\n{stderr}");
    // A restart recovers: every received message is in the rebuilt stream,
    // and the numbering goes on from its end.
    let mut server = serve(&config_path, &data, None);
    let addr = server.addr.unwrap_or_else(|| panic!("{stage}: the restart failed"));
    for (i, user) in USERS.iter().enumerate() {
        let (client, stream) = runtime.block_on(whole_stream(addr, user));
        assert!(stream.len() >= received[i].len(), "{stage} {user}: messages lost");
        assert_eq!(&stream[..received[i].len()], &received[i][..], "{stage} {user}: a message changed");
        let after = runtime.block_on(trade_one(client, i, stream.len() as u64));
        assert!(after, "{stage} {user}: the stream did not continue from its end");
    }
    stop_and_verify(&mut server, &config_path, &data);
}

/// One order after the restart: its reply carries the stream's next number.
async fn trade_one(mut client: Client, user: usize, last: u64) -> bool {
    client.send(&order(&format!("AFTER{user}"), b'B', 746_000, user as u32 * 340 + 1)).await.unwrap();
    matches!(client.next_message(Duration::from_secs(10)).await, Ok((seq, _)) if seq == last + 1)
}

/// SIGTERM: the final hash must equal an offline replay of the journal.
fn stop_and_verify(server: &mut Serve, config: &Path, data: &Path) {
    assert!(Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status().unwrap().success());
    let mut out = String::new();
    let mut line = String::new();
    while server.stdout.read_line(&mut line).unwrap() > 0 {
        out.push_str(&line);
        line.clear();
    }
    assert!(server.child.wait().unwrap().success(), "{out}");
    let hash = out.split("state hash ").nth(1).expect(&out).trim().to_string();
    let replay = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["replay", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(["--verify", &hash])
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}{}",
        String::from_utf8_lossy(&replay.stdout),
        String::from_utf8_lossy(&replay.stderr)
    );
}

#[test]
fn an_end_of_day_panic_stops_the_server_and_a_restart_recovers() {
    // The end-of-day writer's first input is the day's start.
    panic_stops_the_server("eod", "eod:1", "end-of-day stage panicked");
}

#[test]
fn a_sequencer_panic_stops_the_server_and_a_restart_recovers() {
    // Its first batch (the day's start) runs before the engine thread does.
    panic_stops_the_server("sequencer", "sequencer:4", "sequencer stage panicked");
}

#[test]
fn a_router_panic_stops_the_server_and_a_restart_recovers() {
    panic_stops_the_server("router", "router:4", "router stage panicked");
}

#[test]
fn a_feed_panic_stops_the_server_and_a_restart_recovers() {
    panic_stops_the_server("feed", "feed:4", "feed stage panicked");
}

// ---- A disk that fills up under load (issue 19) ----

/// Floods as `user` in waves of 200 crossing orders until the connection
/// ends (or 100,000 orders): every message received, checked gap-free.
async fn flood(mut client: Client, user: usize) -> Vec<Outbound> {
    let mut received = Vec::new();
    for wave in 0..500u32 {
        for n in wave * 200..(wave + 1) * 200 {
            let side = if n % 2 == 0 { b'B' } else { b'S' };
            client.queue(&order(&format!("D{user}N{n}"), side, 746_300, user as u32 * 340 + 1 + n % 3));
        }
        let sent = client.flush().await.is_ok();
        loop {
            match client.next_message(Duration::from_millis(50)).await {
                Ok((seq, message)) => {
                    assert_eq!(seq, received.len() as u64 + 1, "gap or duplicate in the live stream");
                    received.push(message);
                }
                Err(ClientError::Timeout) if sent => break,
                Err(_) => return received,
            }
        }
    }
    received
}

/// Copies a directory tree (the data directory, to a larger disk).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_disk_that_fills_under_load_stops_the_server_and_a_copy_on_a_larger_disk_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount_or_skip(&tmp.path().join("small"), "1m") else { return };
    let config_path = tmp.path().join("carbonx.toml");
    std::fs::write(&config_path, Config::demo().on_free_ports().to_toml()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut server = serve(&config_path, &disk.dir, None);
    let addr = server.addr.expect("the server starts on the small disk");
    let tasks: Vec<_> = USERS
        .iter()
        .enumerate()
        .map(|(i, user)| {
            runtime.spawn(async move {
                let mut client = Client::connect(addr).await.unwrap();
                let answer = client.login(user, "demo", "", 1).await.unwrap();
                assert!(matches!(answer, Received::LoginAccepted { .. }), "{answer:?}");
                flood(client, i).await
            })
        })
        .collect();
    let received: Vec<Vec<Outbound>> = tasks.into_iter().map(|task| runtime.block_on(task).unwrap()).collect();
    let (status, stderr) = wait_for_exit(&mut server);
    assert!(!status.success(), "the server exited successfully on a full disk\n{stderr}");
    let named = stderr.lines().any(|line| {
        line.contains("FAIL-STOP") && line.contains(&disk.dir.display().to_string()) && line.contains("os error 28")
    });
    assert!(named, "no FAIL-STOP line naming the file and ENOSPC\n{stderr}");
    let accepted: usize =
        received.iter().map(|r| r.iter().filter(|m| matches!(m, Outbound::Accepted(_))).count()).sum();
    assert!(accepted > 100, "the disk filled before any real load: {accepted} accepted");
    eprintln!("the disk filled after {accepted} Accepted");
    // The data directory, copied to a larger disk, recovers: every message
    // a client received (each Accepted among them) is in its rebuilt
    // stream, and the journal replays to the final state.
    let larger = tmp.path().join("larger");
    copy_tree(&disk.dir, &larger);
    drop(disk);
    let mut server = serve(&config_path, &larger, None);
    let addr = server.addr.expect("the restart on the larger disk failed");
    for (i, user) in USERS.iter().enumerate() {
        let (client, stream) = runtime.block_on(whole_stream(addr, user));
        assert!(
            stream.len() >= received[i].len(),
            "{user}: {} received, {} recovered",
            received[i].len(),
            stream.len()
        );
        assert_eq!(&stream[..received[i].len()], &received[i][..], "{user}: a received message changed");
        assert!(runtime.block_on(trade_one(client, i, stream.len() as u64)), "{user}: numbering did not go on");
    }
    stop_and_verify(&mut server, &config_path, &larger);
}
