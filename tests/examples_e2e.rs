//! The programs in `examples/` against a real server: what the README tells
//! a newcomer to run must work. Cargo builds the examples before it runs
//! the tests, next to the test binaries (`target/<profile>/examples/`).

use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.parent().unwrap().join("examples").join(name);
    assert!(path.exists(), "{} is not built: run the tests with cargo test", path.display());
    path
}

/// Runs `place_order` against `server`: (exit code, stdout, stderr).
fn place_order(server: &Server, args: &[&str]) -> (i32, String, String) {
    let connect = server.order_entry_addr().to_string();
    let out = Command::new(example("place_order")).args(args).args(["--connect", &connect]).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn place_order_trades_against_a_resting_order_and_shows_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { data_dir: dir.path().to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    let server = Server::start(&Config::demo().on_free_ports(), &options).unwrap();
    let (code, out, err) =
        place_order(&server, &["SELL", "40", "CEA", "74.50", "0341", "--user", "DEMO02", "--token", "S1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Accepted  S1 order reference 1 price 74.50"), "{out}");
    let (code, out, err) = place_order(&server, &["BUY", "100", "CEA", "74.50", "0001", "--token", "B1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Accepted  B1"), "{out}");
    assert!(out.contains("Executed  B1 40 t at 74.50 match 1 (R)"), "{out}");
    // Outside the ±10% band (RULES §3), and an account DEMO01 may not trade (RULES §6.6).
    let (_, out, _) = place_order(&server, &["BUY", "1", "CEA", "99.50", "0001", "--token", "B2"]);
    assert!(out.contains("Rejected  B2, reason K"), "{out}");
    let (_, out, _) = place_order(&server, &["BUY", "1", "CEA", "74.50", "0999", "--token", "B3"]);
    assert!(out.contains("Rejected  B3, reason L"), "{out}");
    // Bad input is a usage error, not a panic.
    let (code, _, err) = place_order(&server, &["BUY", "1", "CEA", "74.505", "0001"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at most two decimals"), "{err}");
    drop(server.shutdown().unwrap());
}
