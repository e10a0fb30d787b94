//! The operator's kit through the real binary: `serve --log-format json`
//! writes JSON log lines; choices are enums that `--help` lists; every
//! duration flag takes the one duration syntax.

use carbonx::config::Config;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn carbonx(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carbonx")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Starts `carbonx serve` on free ports with `args`, waits for its banner,
/// stops it and returns its standard error.
fn stderr_of_serve(dir: &Path, args: &[&str]) -> String {
    let path = dir.join("carbonx.toml");
    std::fs::write(&path, Config::demo().on_free_ports().to_toml()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["serve", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env("RUST_LOG", "info")
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
    let stderr = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    assert!(started, "serve did not start: {stderr}");
    stderr
}

#[test]
fn serve_with_log_format_json_writes_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = stderr_of_serve(dir.path(), &["--log-format", "json"]);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines at info");
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["level"].is_string() && value["fields"].is_object(), "{line}");
    }
    // The default stays text: the same start-up is not JSON.
    let text = stderr_of_serve(tempfile::tempdir().unwrap().path(), &[]);
    let first = text.lines().next().expect("a log line");
    let leveled = ["INFO", "WARN"].iter().any(|level| first.contains(level));
    assert!(serde_json::from_str::<serde_json::Value>(first).is_err() && leveled, "{first}");
}

#[test]
fn help_lists_the_choices_of_every_enum_flag() {
    let (ok, help, _) = carbonx(&["serve", "--help"]);
    assert!(ok);
    for listed in ["always", "batch", "never", "--log-format", "text", "json"] {
        assert!(help.contains(listed), "{listed} missing from:\n{help}");
    }
    let (ok, help, _) = carbonx(&["admin", "auction", "announce", "--help"]);
    assert!(ok && help.contains("pay-as-bid") && help.contains("minus10"), "{help}");
    let (ok, _, err) = carbonx(&["load", "--fsync", "sometimes"]);
    assert!(!ok && err.contains("sometimes") && err.contains("always, batch, never"), "{err}");
}

#[test]
fn duration_flags_take_the_one_syntax_and_refuse_a_bare_number() {
    for args in [["load", "--duration", "10"], ["load", "--warmup", "ten"], ["watch", "--duration", "5"]] {
        let (ok, _, err) = carbonx(&args);
        assert!(!ok && err.contains("not a duration such as 500ms"), "{args:?}: {err}");
    }
    let (ok, help, _) = carbonx(&["load", "--help"]);
    assert!(ok && help.contains("[default: 10s]") && help.contains("[default: 2s]"), "{help}");
}
