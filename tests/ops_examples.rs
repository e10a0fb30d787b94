//! The operator's examples stay true: every metric the Grafana dashboard
//! queries is exported by a running server's `/metrics`, and the systemd
//! unit passes `systemd-analyze verify` (where systemd is installed), and the
//! example cluster's node files load as documented.

use carbonx::admin::client::{AdminAction, AdminClient};
use carbonx::config::{Config, DEMO_ADMIN_TOKEN};
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(path)
}

/// Every `carbonx_*` name in the dashboard's queries (panel targets and variables).
fn queried_metrics(dashboard: &serde_json::Value) -> BTreeSet<String> {
    let mut queries: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let targets = panel["targets"].as_array().expect("every panel queries something");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        queries.extend(targets.iter().map(|t| t["expr"].as_str().expect("a PromQL expr").to_string()));
    }
    for variable in dashboard["templating"]["list"].as_array().expect("variables") {
        queries.extend(variable["definition"].as_str().map(String::from));
    }
    let mut names = BTreeSet::new();
    for query in &queries {
        for (start, _) in query.match_indices("carbonx_") {
            let name: String = query[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            names.insert(name);
        }
    }
    names
}

/// The sample names a scrape can contain: each family's `# TYPE` with the
/// suffixes of its type (a family may have no sample yet, such as a
/// consumer's backlog with no consumer).
fn exported_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            if let Some(name) = line.split(['{', ' ']).next().filter(|n| !n.starts_with('#') && !n.is_empty()) {
                names.insert(name.to_string());
            }
            continue;
        };
        let (family, kind) = rest.split_once(' ').expect("# TYPE name kind");
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
    }
    names
}

#[test]
fn every_metric_the_grafana_dashboard_queries_is_exported() {
    let text = std::fs::read_to_string(example("grafana/carbonx.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "carbonx-exchange");
    let queried = queried_metrics(&dashboard);
    for wanted in [
        "carbonx_gateway_messages_in_total",
        "carbonx_gateway_rejects_total",
        "carbonx_gateway_sessions_connected",
        "carbonx_queue_commands_depth",
        "carbonx_journal_fdatasync_seconds_bucket",
        "carbonx_engine_apply_seconds_bucket",
        "carbonx_feed_consumer_backlog_bytes",
    ] {
        assert!(queried.contains(wanted), "the dashboard should show {wanted}");
    }
    let dir = tempfile::tempdir().unwrap();
    let options =
        ServeOptions { data_dir: dir.path().join("data"), fsync: FsyncMode::Never, config_dir: PathBuf::from(".") };
    let server = Server::start(&Config::demo().on_free_ports(), &options).unwrap();
    let url = format!("http://{}", server.admin_addr().expect("the admin endpoint runs"));
    let scrape = AdminClient::new(&url, DEMO_ADMIN_TOKEN).run(&AdminAction::Metrics).unwrap();
    server.shutdown().unwrap();
    let exported = exported_metrics(&scrape);
    let missing: Vec<&String> = queried.difference(&exported).collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}\n{scrape}");
}

#[test]
fn the_systemd_unit_verifies_and_runs_as_a_user_with_a_data_directory() {
    let unit = std::fs::read_to_string(example("systemd/carbonx.service")).unwrap();
    let line = |key: &str| unit.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key}"));
    assert_eq!(line("Restart="), "on-failure");
    assert!(!["root", "0"].contains(&line("User=")), "a non-root user");
    let exec = line("ExecStart=");
    assert!(
        exec.contains(" serve ")
            && exec.contains("--config /etc/carbonx/")
            && exec.contains("--data-dir /var/lib/carbonx")
    );
    assert_eq!(line("StateDirectory="), "carbonx");
    let Ok(version) = std::process::Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed; the unit's keys were checked, not verified");
        return;
    };
    assert!(version.status.success());
    // `verify` checks that ExecStart's program exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("carbonx.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/carbonx", env!("CARGO_BIN_EXE_carbonx"))).unwrap();
    let out = std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It exits 0 on a key it ignores, but says so: any complaint about the unit fails.
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("carbonx.service")).collect();
    assert!(out.status.success() && complaints.is_empty(), "systemd-analyze verify:\n{stderr}");
}

/// The example cluster (`examples/cluster/`): each node file loads, is the
/// demo market, names the same three members, and puts node k on the demo
/// ports plus 100 × (k − 1), its data under `cluster-data/node<k>`.
#[test]
fn the_example_cluster_files_load_with_node_k_on_the_demo_ports_plus_100_k() {
    let demo = Config::demo();
    let mut members = None;
    for k in 1..=3u16 {
        let config = Config::load(&example(&format!("cluster/node{k}.toml"))).unwrap();
        let cluster = config.cluster.as_ref().expect("[cluster]");
        assert_eq!(cluster.node, u64::from(k));
        assert!(config.demo && config.market == demo.market && config.gateway.users == demo.gateway.users);
        let offset = 100 * (k - 1);
        assert_eq!(config.gateway.listen.port(), 7001 + offset);
        assert_eq!(config.admin.listen.port(), 7010 + offset);
        assert_eq!(config.feed.tcp.port(), 7002 + offset);
        assert_eq!(cluster.me().unwrap().raft.port(), 7011 + offset);
        assert_eq!(members.get_or_insert_with(|| cluster.members.clone()), &cluster.members);
    }
    let start = std::fs::read_to_string(example("cluster/start.sh")).unwrap();
    assert!(start.contains("cluster-data/node$k"), "start.sh keeps node k's data in cluster-data/node<k>");
}
