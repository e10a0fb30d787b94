//! `carbonx replay` end to end through the real binary: a journal written
//! by the sequencer replays to the live engine's state hash; `--verify`
//! fails on a wrong hash; a torn tail is reported but the file is left as
//! it was; corruption in the middle fails naming the file and offset.

use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::sequencer::{Publisher, Sequencer, SystemClock};
use carbonx_engine::*;
use std::path::Path;
use std::process::Command as Process;

struct Nothing;

impl Publisher for Nothing {
    fn publish(&mut self, _now: Timestamp, _events: &[Event]) {}
}

/// Writes a small day to `dir` and returns the live engine's state hash.
fn write_day(dir: &Path) -> u64 {
    let engine = carbonx::config::Config::demo().build_engine(Path::new(".")).unwrap();
    let mut sequencer = Sequencer::new(engine, Nothing, Some(dir.to_path_buf()), FsyncMode::Batch);
    let batch = [
        Command::demo_order("s1", 1, Side::Sell, 10, 7_500),
        Command::demo_order("b1", 2, Side::Buy, 4, 7_600),
        Command::demo_order("s2", 3, Side::Sell, 5, 7_700),
    ];
    sequencer.process(&batch, &SystemClock).unwrap();
    sequencer.process(&[Command::demo_order("b2", 4, Side::Buy, 6, 7_500)], &SystemClock).unwrap();
    sequencer.engine().state_hash()
}

fn replay(dir: &Path, verify: Option<String>) -> (bool, String) {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_carbonx"));
    cmd.args(["replay", "--data-dir"]).arg(dir);
    if let Some(hash) = verify {
        cmd.args(["--verify", &hash]);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn journal(dir: &Path) -> std::path::PathBuf {
    carbonx::serve::journal_file::journal_files(dir).unwrap().pop().unwrap()
}

#[test]
fn replay_reproduces_the_live_state_hash_and_verify_catches_a_wrong_one() {
    let tmp = tempfile::tempdir().unwrap();
    let hash = write_day(tmp.path());
    let (ok, text) = replay(tmp.path(), Some(format!("{hash:#018x}")));
    assert!(ok, "{text}");
    assert!(text.contains("records replayed: 4") && text.contains("verified"), "{text}");
    assert!(text.contains("executed (listing)"), "{text}");
    let (ok, text) = replay(tmp.path(), Some(format!("{:x}", hash ^ 1)));
    assert!(!ok && text.contains("MISMATCH"), "{text}");
}

#[test]
fn a_torn_tail_is_reported_but_left_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    write_day(tmp.path());
    let path = journal(tmp.path());
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
    let (ok, text) = replay(tmp.path(), None);
    assert!(ok && text.contains("records replayed: 3"), "{text}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len - 5, "replay must not write");
}

#[test]
fn corruption_in_the_middle_fails_naming_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    write_day(tmp.path());
    let path = journal(tmp.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xFF; // inside the first record
    std::fs::write(&path, bytes).unwrap();
    let (ok, text) = replay(tmp.path(), None);
    assert!(!ok && text.contains("corrupt journal record at byte offset 0") && text.contains(".cxj"), "{text}");
}

#[test]
fn an_empty_data_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, text) = replay(tmp.path(), None);
    assert!(!ok && text.contains("no journal files"), "{text}");
}

// ---------------------------------------------------------------------------
// `carbonx replay --events` and `--book`: the audit, from the journal alone.

/// Local (Beijing, UTC+8) 2026-03-02 at `h:m:s`, as the journal stamps it.
fn beijing(h: u64, m: u64, s: u64) -> Timestamp {
    let days = carbonx_engine::calendar::days_from_yyyymmdd(20260302).unwrap() as u64;
    Timestamp::from_nanos(((days * 86_400 + h * 3600 + m * 60 + s) - 8 * 3600) * 1_000_000_000)
}

fn order(user: u16, token: &str, account: u32, side: Side, qty: u32, stock: &str, fen: u32) -> Command {
    let (token, stock) = (Token::from_text(token).unwrap(), StockCode::from_text(stock).unwrap());
    Command::NewOrder(NewOrder::limit(UserId::new(user), token, AccountId::new(account), side, qty, stock, fen))
}

/// A side of a book, best first: (price in fen, tonnes, orders).
type Levels = Vec<(u32, u64, u32)>;

/// Six commands ten seconds apart from 10:00:00 (users 0, 1 are DEMO01,
/// DEMO02; account n is code n+1). Returns the live engine's CEA book
/// (bids, asks as (fen, tonnes, orders)) after each command.
fn write_audited_day(dir: &Path) -> Vec<(Levels, Levels)> {
    let engine = carbonx::config::Config::demo().build_engine(Path::new(".")).unwrap();
    let mut sequencer = Sequencer::new(engine, Nothing, Some(dir.to_path_buf()), FsyncMode::Batch);
    let clock = carbonx::serve::sequencer::ManualClock::new(beijing(10, 0, 0), std::time::Duration::from_nanos(1));
    let cancel =
        Command::Cancel(Cancel { user: UserId::new(1), token: Token::from_text("B2").unwrap(), qty: Qty::ZERO });
    let day = [
        order(0, "S1", 1, Side::Sell, 10, "CEA", 7_500),
        order(1, "B1", 2, Side::Buy, 4, "CEA", 7_600),
        order(0, "S2", 1, Side::Sell, 5, "CEA", 7_700),
        order(1, "B2", 3, Side::Buy, 3, "CEA21", 7_400),
        cancel,
        order(0, "B1", 4, Side::Buy, 1, "CEA", 7_000),
    ];
    let mut books = Vec::new();
    for (n, command) in day.into_iter().enumerate() {
        clock.set(beijing(10, 0, 10 * n as u64));
        sequencer.process(&[command], &clock).unwrap();
        let cea = InstrumentId::new(0);
        let side = |s| sequencer.engine().depth(cea, s, 100).map(|l| (l.price.fen(), l.qty, l.orders)).collect();
        books.push((side(Side::Buy), side(Side::Sell)));
    }
    books
}

fn audit(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Process::new(env!("CARGO_BIN_EXE_carbonx"))
        .arg("replay")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The sequence numbers of the lines `--events` prints with `filters`.
fn events(dir: &Path, filters: &[&str]) -> Vec<u64> {
    let (ok, out, err) = audit(dir, &[&["--events"], filters].concat());
    assert!(ok, "{filters:?}: {err}");
    out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap()).collect()
}

#[test]
fn events_print_every_record_with_its_command_and_result_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    write_audited_day(tmp.path());
    let (ok, out, err) = audit(tmp.path(), &["--events"]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let fill = &lines[1];
    assert_eq!((fill["date"].as_u64(), fill["time"].as_str()), (Some(20260302), Some("10:00:10.000000001")));
    assert_eq!(fill["command"]["type"], "new_order");
    assert_eq!((fill["command"]["user"].as_str(), fill["command"]["account"].as_str()), (Some("DEMO02"), Some("0003")));
    let executed = fill["result"].as_array().unwrap().iter().find(|e| e["type"] == "executed").expect("a fill");
    assert_eq!((executed["qty"].as_u64(), executed["price"].as_str()), (Some(4), Some("75.00")));
    assert_eq!(
        (executed["maker"]["account"].as_str(), executed["maker"]["token"].as_str()),
        (Some("0002"), Some("S1"))
    );
    let cancelled = lines[4]["result"].as_array().unwrap().iter().find(|e| e["type"] == "cancelled").expect("a cancel");
    assert_eq!((cancelled["account"].as_str(), cancelled["instrument"].as_str()), (Some("0004"), Some("CEA21")));
}

#[test]
fn each_filter_keeps_exactly_the_lines_that_involve_it() {
    let tmp = tempfile::tempdir().unwrap();
    write_audited_day(tmp.path());
    let dir = tmp.path();
    // The maker's account is in the fill of line 2, though DEMO02 sent it.
    assert_eq!(events(dir, &["--account", "0002"]), [1, 2, 3]);
    // The cancel names only user and token: its result names the account.
    assert_eq!(events(dir, &["--account", "0004"]), [4, 5]);
    assert_eq!(events(dir, &["--user", "DEMO02"]), [2, 4, 5]);
    assert_eq!(events(dir, &["--user", "DEMO01"]), [1, 2, 3, 6]);
    assert_eq!(events(dir, &["--token", "B1"]), [2, 6]);
    // Filters hold for one party together: DEMO01 never had a B1 in line 2.
    assert_eq!(events(dir, &["--token", "B1", "--user", "DEMO01"]), [6]);
    // The first command opened the day: its result carries every instrument's reference.
    assert_eq!(events(dir, &["--instrument", "CEA21"]), [1, 4, 5]);
    assert_eq!(events(dir, &["--from", "10:00:20", "--to", "10:00:40"]), [3, 4]);
    assert_eq!(events(dir, &["--from", "10:00:50"]), [6]);
    assert_eq!(events(dir, &["--account", "9999"]), Vec::<u64>::new());
}

#[test]
fn the_book_at_a_moment_is_the_live_engines_book_then() {
    let tmp = tempfile::tempdir().unwrap();
    let books = write_audited_day(tmp.path());
    let levels = |v: &serde_json::Value| -> Levels {
        let fen = |p: &str| carbonx_engine::Price::parse_yuan(p).unwrap().fen();
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (fen(l["price"].as_str().unwrap()), l["qty"].as_u64().unwrap(), l["orders"].as_u64().unwrap() as u32)
            })
            .collect()
    };
    // After command n (at 10:00:n0) and before the next one.
    for (n, at) in [(0, "10:00:05"), (1, "10:00:19"), (2, "10:00:29.5"), (5, "12:00:00")] {
        let (ok, out, err) = audit(tmp.path(), &["--book", "CEA", "--at", at]);
        assert!(ok, "{err}");
        let book: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!((levels(&book["bids"]), levels(&book["asks"])), books[n], "at {at}: {out}");
    }
    let (_, out, _) = audit(tmp.path(), &["--book", "CEA", "--at", "10:00:19"]);
    assert!(out.contains("\"asks\":[{\"price\":\"75.00\",\"qty\":6,\"orders\":1}]"), "{out}");
    let (ok, _, err) = audit(tmp.path(), &["--book", "NOPE", "--at", "10:00"]);
    assert!(!ok && err.contains("NOPE"), "{err}");
    let (ok, _, err) = audit(tmp.path(), &["--book", "CEA", "--at", "25:00"]);
    assert!(!ok && err.contains("time of day"), "{err}");
}
