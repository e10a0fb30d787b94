//! Every file and directory `carbonx serve` creates in its data directory
//! (journal, day logs, feed log, snapshots, end-of-day files) is readable
//! by the owner only (`0600` / `0700`), or has the modes of `[data]
//! file_mode`. A whole server in-process trades, rolls and takes an
//! on-demand snapshot; then the mode of every entry is checked.

mod support;
use carbonx::admin::client::{AdminAction, AdminClient};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::session::login;

const WAIT: Duration = Duration::from_secs(5);

/// Runs a day with one trade, rolls, snapshots and stops, on `data`.
fn trade_roll_and_stop(config: &Config, data: &Path) {
    let options = ServeOptions { data_dir: data.to_path_buf(), fsync: FsyncMode::Batch, config_dir: ".".into() };
    let server = Server::start(config, &options).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        for (token, side, firm) in [("S1", b'S', "0001"), ("B1", b'B', "0002")] {
            client.send(&Inbound::Enter(EnterOrder::limit(token, side, 10, "CEA", 746_300, firm))).await.unwrap();
            loop {
                match client.next_message(WAIT).await.unwrap().1 {
                    Outbound::Accepted(_) => break,
                    Outbound::Rejected { reason, .. } => panic!("{token} rejected {}", char::from(reason)),
                    _ => {}
                }
            }
        }
    });
    let admin = AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), &config.admin.token);
    admin.run(&AdminAction::Roll).unwrap();
    admin.run(&AdminAction::Snapshot).unwrap();
    server.shutdown().unwrap();
}

/// Every entry under `dir` (not `dir` itself), with its permission bits.
fn modes_under(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path.clone());
            }
            found.push((path, meta.is_dir(), meta.permissions().mode() & 0o7777));
        }
    }
    found.sort();
    found
}

/// The process umask (it removes bits from every mode asked for).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"));
    line.and_then(|m| u32::from_str_radix(m.trim(), 8).ok()).unwrap_or(0o022)
}

/// Checks `data` itself and everything in it, and that every kind of file was made.
fn check(data: &Path, file: u32, dir: u32) {
    let (file, dir) = (file & !umask(), dir & !umask());
    let mut entries = modes_under(data);
    entries.push((data.to_path_buf(), true, std::fs::metadata(data).unwrap().permissions().mode() & 0o7777));
    for (path, is_dir, mode) in &entries {
        let want = if *is_dir { dir } else { file };
        assert_eq!(*mode, want, "{}: {mode:04o}, expected {want:04o}", path.display());
    }
    let names: Vec<String> = entries.iter().map(|(p, _, _)| p.display().to_string()).collect();
    for kind in
        [".cxj", ".ouch", ".dropcopy", "itch-", ".snap", "now-", "statistics.csv", "positions.csv", "trades.csv"]
    {
        assert!(names.iter().any(|n| n.contains(kind)), "no {kind} file among {names:#?}");
    }
}

#[test]
fn every_file_the_server_creates_is_the_owners_only_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    trade_roll_and_stop(&Config::demo().on_free_ports(), &data);
    check(&data, 0o600, 0o700);
}

#[test]
fn the_configured_file_mode_applies_to_every_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = Config::demo().on_free_ports().to_toml().replace("file_mode = \"0600\"", "file_mode = \"0640\"");
    let config = Config::parse(&demo, "test.toml").unwrap();
    trade_roll_and_stop(&config, &data);
    check(&data, 0o640, 0o750);
}
