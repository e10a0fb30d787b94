//! Crash and recovery through real processes: `carbonx serve` on a temp
//! data directory, driven by several clients, killed with SIGKILL at seeded
//! random moments, restarted, reconnected. After every restart each user's
//! stream (rebuilt from the journal) must begin with exactly the messages
//! that user received before the kill: no acknowledged order, fill or
//! cancel is lost, changed or duplicated. At the end the server's final
//! state hash must equal an offline `carbonx replay` of the same journal,
//! whose invariant check (books, accounts, conservation) must pass.
//!
//! Seed: `CARBONX_SEED` (printed); kills: `CARBONX_CRASH_KILLS` (default 20).

mod support;

use carbonx::config::Config;
use carbonx_gateway::client::{Client, Received};
use carbonx_gateway::ouch::Outbound;
use carbonx_testkit::Rng;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;
use support::flow::{Flow, check_prefix, trade};

const USERS: [&str; 4] = ["DEMO01", "DEMO02", "DEMO03", "DEMO04"];

struct Serve {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<ChildStdout>,
}

fn serve(config: &Path, data: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["serve", "--fsync", "batch", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..20 {
        line.clear();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(addr) = line.split("OUCH 4.2): ").nth(1) {
            let addr = addr.trim().parse().unwrap();
            return Serve { child, addr, stdout };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not print its order-entry address");
}

/// Logs in from sequence 1 and reads the whole stream so far.
async fn whole_stream(addr: SocketAddr, user: &str) -> (Client, Vec<Outbound>) {
    let mut client = Client::connect(addr).await.unwrap();
    let Received::LoginAccepted { sequence, .. } = client.login(user, "demo", "", 1).await.unwrap() else {
        panic!("{user}: login refused")
    };
    assert_eq!(sequence, 1);
    let mut stream = Vec::new();
    // The replayed part ends where live traffic would start; nothing is live yet.
    while let Ok((seq, message)) = client.next_message(Duration::from_millis(200)).await {
        assert_eq!(seq, stream.len() as u64 + 1, "{user}: gap or duplicate in the replay");
        stream.push(message);
    }
    (client, stream)
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_message() {
    let seed = carbonx_testkit::seed("crash test", 0x5EED_C0DE);
    let kills: usize = std::env::var("CARBONX_CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    println!("{kills} kills (CARBONX_CRASH_KILLS)");
    let tmp = tempfile::tempdir().unwrap();
    let (config_path, data) = (tmp.path().join("carbonx.toml"), tmp.path().join("data"));
    let config = Config::demo().on_free_ports();
    std::fs::write(&config_path, config.to_toml()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rng = Rng::new(seed);
    let mut acked: HashMap<&str, Vec<Outbound>> = USERS.iter().map(|u| (*u, Vec::new())).collect();
    for round in 0..kills {
        let mut server = serve(&config_path, &data);
        let addr = server.addr;
        let logins: Vec<_> = USERS.iter().map(|user| runtime.spawn(whole_stream(addr, user))).collect();
        let mut tasks = Vec::new();
        for (i, (user, login)) in USERS.iter().zip(logins).enumerate() {
            let (client, stream) = runtime.block_on(login).unwrap();
            check_prefix(user, &acked[user], &stream);
            let task_seed = rng.next_u64();
            let flow = Flow { tag: 'K', user_index: i, round, messages: 20_000 };
            tasks.push(runtime.spawn(trade(client, flow, task_seed, stream)));
        }
        std::thread::sleep(Duration::from_millis(30 + rng.below(250)));
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for (user, task) in USERS.iter().zip(tasks) {
            let received = runtime.block_on(task).unwrap();
            acked.insert(user, received);
        }
    }
    // The final restart: every acked message present, each fill reported once per side.
    let mut server = serve(&config_path, &data);
    let mut fills: HashMap<u64, u32> = HashMap::new();
    for user in USERS {
        let (_, stream) = runtime.block_on(whole_stream(server.addr, user));
        check_prefix(user, &acked[user], &stream);
        for message in &stream {
            if let Outbound::Executed(e) = message {
                *fills.entry(e.match_number).or_default() += 1;
            }
        }
    }
    assert!(!fills.is_empty(), "the clients never traded");
    assert!(fills.values().all(|&n| n == 2), "a fill reported other than once per side");
    let total: usize = acked.values().map(Vec::len).sum();
    println!("{total} acknowledged messages survived {kills} kills; {} matches", fills.len());
    // Graceful stop prints the final hash; the offline replay must reproduce it.
    assert!(Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status().unwrap().success());
    let mut out = String::new();
    let mut line = String::new();
    while server.stdout.read_line(&mut line).unwrap() > 0 {
        out.push_str(&line);
        line.clear();
    }
    assert!(server.child.wait().unwrap().success(), "{out}");
    let live_hash = out.split("state hash ").nth(1).expect(&out).trim().to_string();
    let replay = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["replay", "--config"])
        .arg(&config_path)
        .arg("--data-dir")
        .arg(&data)
        .args(["--verify", &live_hash])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{report}{}", String::from_utf8_lossy(&replay.stderr));
    assert!(report.contains("invariants:       hold"), "{report}");
}
