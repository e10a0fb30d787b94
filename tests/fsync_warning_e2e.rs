//! `carbonx serve` warns at start-up when the journal is never synced,
//! whether `fsync = "never"` comes from the configuration file or from
//! `--fsync`, and says what a power cut loses; it does not warn otherwise.

use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const WARNING: &str = "acknowledged orders since the last OS writeback can be lost";

/// Starts `carbonx serve` with a configuration whose `[journal] fsync` is
/// `configured` and the extra arguments, waits for its banner (it started),
/// stops it and returns its standard error.
fn stderr_of_serve(dir: &Path, configured: FsyncMode, args: &[&str]) -> String {
    let mut config = Config::demo().on_free_ports();
    config.journal.fsync = configured;
    let path = dir.join(format!("carbonx-{configured:?}-{}.toml", args.len()));
    std::fs::write(&path, config.to_toml()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["serve", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join(format!("data-{configured:?}-{}", args.len())))
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut started = false;
    for _ in 0..20 {
        line.clear();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.contains("OUCH 4.2): ") {
            started = true;
            break;
        }
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(started, "serve did not start: {stderr}");
    stderr
}

#[test]
fn serve_warns_when_the_journal_is_never_synced_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = stderr_of_serve(dir.path(), FsyncMode::Never, &[]);
    assert!(from_file.contains(WARNING) && from_file.contains("[journal] fsync"), "{from_file}");
    let from_flag = stderr_of_serve(dir.path(), FsyncMode::Batch, &["--fsync", "never"]);
    assert!(from_flag.contains(WARNING) && from_flag.contains("--fsync never"), "{from_flag}");
    let overridden = stderr_of_serve(dir.path(), FsyncMode::Never, &["--fsync", "batch"]);
    assert!(!overridden.contains(WARNING), "{overridden}");
    let batch = stderr_of_serve(dir.path(), FsyncMode::Batch, &[]);
    assert!(!batch.contains(WARNING), "{batch}");
}
