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
