//! Snapshots end to end: a server trades over three trading days (two
//! rolls through `carbonx admin roll`); each roll leaves a start-of-day
//! snapshot. A restart then replays at most one day: with the first day's
//! journal deleted it still recovers the same state hash, the same session
//! and feed sequence numbers, and `carbonx replay` agrees. A corrupt newest
//! snapshot falls back to the one before; the operator's on-demand
//! snapshot replays to the same hash. Every wait is bounded.

use carbonx::admin::client::{AdminAction, AdminClient};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_gateway::client::{Client, Received};
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn start(dir: &Path) -> Server {
    start_or_none(dir).expect("the server starts")
}

fn admin(server: &Server) -> AdminClient {
    AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), carbonx::config::DEMO_ADMIN_TOKEN)
}

/// DEMO01 logged in to a session not in `seen` (then added): right after a
/// roll the router may not have started the new day's streams yet, and a
/// login then lands in the old session, which ends at once (bounded retries).
async fn login_to_new_day(server: &Server, seen: &mut Vec<[u8; 10]>) -> Client {
    for _ in 0..100 {
        let mut client = Client::connect(server.order_entry_addr()).await.unwrap();
        let Received::LoginAccepted { session, .. } = client.login("DEMO01", "demo", "", 0).await.unwrap() else {
            panic!("login refused");
        };
        if !seen.contains(&session) {
            seen.push(session);
            return client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no new day's session");
}

/// A sell and a crossing buy (one trade), and a resting bid, on one day.
fn trade(server: &Server, day: u32, seen: &mut Vec<[u8; 10]>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = login_to_new_day(server, seen).await;
        for (n, (side, price, firm)) in
            [(b'S', 746_300, "0001"), (b'B', 746_300, "0002"), (b'B', 700_000, "0003")].into_iter().enumerate()
        {
            let token = format!("D{day}N{n}");
            client.send(&Inbound::Enter(EnterOrder::limit(&token, side, 10, "CEA", price, firm))).await.unwrap();
            loop {
                match client.next_message(WAIT).await.unwrap().1 {
                    Outbound::Accepted(_) => break,
                    Outbound::Rejected { reason, .. } => panic!("{token} rejected {}", char::from(reason)),
                    _ => {}
                }
            }
        }
    });
}

/// A resend of a token taken before the on-demand snapshot (ignored, as
/// the snapshot's taken tokens must make a replay from it ignore it too),
/// then a new order.
fn resend_after_the_snapshot(server: &Server) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = Client::connect(server.order_entry_addr()).await.unwrap();
        assert!(matches!(client.login("DEMO01", "demo", "", 0).await.unwrap(), Received::LoginAccepted { .. }));
        client.send(&Inbound::Enter(EnterOrder::limit("D3N0", b'S', 10, "CEA", 746_300, "0001"))).await.unwrap();
        client.send(&Inbound::Enter(EnterOrder::limit("AFTER", b'B', 10, "CEA", 700_100, "0004"))).await.unwrap();
        match client.next_message(WAIT).await.unwrap().1 {
            Outbound::Accepted(a) => assert!(a.token.starts_with(b"AFTER"), "the resend was answered"),
            other => panic!("{other:?}"),
        }
    });
}

/// (state hash, DEMO01's next sequence number, the feed's next sequence number).
/// The numbers once the router and the feed thread have caught up: a
/// client's last Accepted can arrive before the feed thread has taken the
/// same batch, so one reading can lag; two equal readings 50 ms apart do not.
fn observe(server: &Server) -> (String, String) {
    let mut last = read_numbers(server);
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = read_numbers(server);
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the session and feed numbers kept changing: {last:?}");
}

fn read_numbers(server: &Server) -> (String, String) {
    let admin = admin(server);
    let sessions = admin.run(&AdminAction::Sessions).unwrap();
    let demo01 = sessions.split("\"DEMO01\"").nth(1).and_then(|rest| rest.split("\"next_seq\": ").nth(1));
    let next_seq = demo01.and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next()).unwrap().to_string();
    let metrics = admin.run(&AdminAction::Metrics).unwrap();
    let feed = metrics.lines().find(|l| l.starts_with("carbonx_feed_next_sequence ")).unwrap().to_string();
    (next_seq, feed)
}

fn replay(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["replay", "--data-dir"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// A server that traded three days: two rolls, two start-of-day snapshots.
fn three_days(data: &Path) -> Server {
    let server = start(data);
    let mut seen = Vec::new();
    for day in 1..=3 {
        if day > 1 {
            admin(&server).run(&AdminAction::Roll).unwrap();
        }
        trade(&server, day, &mut seen);
    }
    server
}

fn hash_line(report: &str) -> String {
    report.lines().find(|l| l.starts_with("state hash:")).unwrap().to_string()
}

#[test]
fn a_restart_replays_at_most_one_day_and_continues_every_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let server = three_days(data);
    let on_demand = admin(&server).run(&AdminAction::Snapshot).unwrap();
    let on_demand = on_demand.split("\"snapshot\": \"").nth(1).and_then(|t| t.split('"').next()).unwrap().to_string();
    resend_after_the_snapshot(&server);
    let before = observe(&server);
    let hash = server.shutdown().unwrap().state_hash();
    let snapshots = carbonx::serve::snapshot_file::roll_snapshots(data).unwrap();
    assert_eq!(snapshots.len(), 2, "one start-of-day snapshot per roll: {snapshots:?}");
    let full = replay(data, &["--full"]);
    assert!(full.contains(&format!("{hash:#018x}")), "{full}");

    // The first day's journal is gone: recovery must not need it.
    let mut journals = carbonx::serve::journal_file::journal_files(data).unwrap();
    assert_eq!(journals.len(), 3);
    std::fs::remove_file(journals.remove(0)).unwrap();
    let server = start(data);
    assert_eq!(observe(&server), before, "sessions and the feed continue their numbers");
    let replayed = server.replayed();
    assert_eq!(server.shutdown().unwrap().state_hash(), hash, "the restart from the snapshot");
    assert!(replayed <= 6, "replayed {replayed} records: the last roll and the third day only");
    let latest = replay(data, &[]);
    assert!(latest.contains(&snapshots[0].display().to_string()), "{latest}");
    assert_eq!(hash_line(&latest), hash_line(&full));
    let from_now = replay(data, &["--snapshot", &on_demand]);
    assert_eq!(hash_line(&from_now), hash_line(&full), "{from_now}");

    // A corrupt newest snapshot: the one before it is used (it needs the
    // first day's last record, which is gone: so restore that journal first).
    std::fs::write(&snapshots[0], b"carbonx-snapshot 1 5 00000000\nbroken").unwrap();
    let err = Command::new(env!("CARGO_BIN_EXE_carbonx")).args(["replay", "--data-dir"]).arg(data).output().unwrap();
    assert!(!err.status.success(), "without the first day's journal nothing can replay the second day");
    let server = start_or_none(data);
    assert!(server.is_none(), "no usable start: the server refuses to start rather than lose state");
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let server = three_days(data);
    let before = observe(&server);
    let hash = server.shutdown().unwrap().state_hash();
    let snapshots = carbonx::serve::snapshot_file::roll_snapshots(data).unwrap();
    let mut bytes = std::fs::read(&snapshots[0]).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(&snapshots[0], bytes).unwrap();
    let server = start(data);
    assert_eq!(observe(&server), before);
    let replayed = server.replayed();
    assert_eq!(server.shutdown().unwrap().state_hash(), hash);
    assert!(replayed > 6, "the older snapshot replays two days: {replayed}");
    let report = replay(data, &[]);
    assert!(report.contains(&snapshots[1].display().to_string()), "{report}");
}

fn start_or_none(dir: &Path) -> Option<Server> {
    let config = Config::demo().on_free_ports();
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Batch, config_dir: ".".into() };
    Server::start(&config, &options).ok()
}

/// Every file of an end-of-day directory, by name.
fn eod_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// A power cut while a day's end-of-day files were written can leave
/// `positions.csv` empty or missing, `trades.csv` still partial and no
/// `statistics.csv`: recovery must not trust that day's snapshot, and
/// replays the day from the one before, writing the same set again.
#[test]
fn an_incomplete_end_of_day_set_is_written_again_identically_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let hash = three_days(data).shutdown().unwrap().state_hash();
    let mut days: Vec<_> = std::fs::read_dir(data.join("eod")).unwrap().map(|e| e.unwrap().path()).collect();
    days.sort();
    assert_eq!(days.len(), 3, "{days:?}");
    let second = &days[1];
    let complete = eod_files(second);
    let names: Vec<_> = complete.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["positions.csv", "statistics.csv", "trades.csv", "transfers.csv"]);

    std::fs::remove_file(second.join("statistics.csv")).unwrap();
    std::fs::write(second.join("positions.csv"), b"").unwrap();
    std::fs::rename(second.join("trades.csv"), second.join("trades.csv.partial")).unwrap();
    std::fs::remove_file(second.join("transfers.csv")).unwrap();
    let server = start(data);
    let replayed = server.replayed();
    assert_eq!(server.shutdown().unwrap().state_hash(), hash);
    assert!(replayed > 6, "the second day is replayed from the first day's snapshot: {replayed}");
    assert_eq!(eod_files(second), complete, "the second day's files are written again, identically");
    let third = eod_files(&days[2]);
    assert_eq!(third.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["trades.csv.partial"]);
}
