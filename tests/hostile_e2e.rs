//! Hostile clients end to end: a whole server in-process and clients that
//! break the rules on purpose (bytes chosen to break the operator's pages,
//! a client that never reads its replies). Each test checks that one such
//! client harms neither the operator's view nor the other users. Every wait
//! is bounded.

mod support;
use carbonx::admin::client::{AdminAction, AdminClient, AdminError, AuctionAction};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_soup::packet::Packet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::session::login;

fn start(dir: &Path, config: &Config) -> Server {
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(config, &options).unwrap()
}

fn admin(server: &Server) -> AdminClient {
    AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), carbonx::config::DEMO_ADMIN_TOKEN)
}

/// Runs the official Python client's OpenMetrics parser over `text`:
/// its `(name, labels, value)` samples as lines `name|label=value,...|value`,
/// or the parser's complaint.
fn parse_with_prometheus_client(text: &str) -> Result<String, String> {
    let python = std::env::var("CARBONX_PYTHON")
        .expect("CARBONX_PYTHON is not set: run scripts/test.sh, which installs prometheus-client in .venv-test");
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       labels = ','.join(k + '=' + v for k, v in sorted(s.labels.items()))\n\
        \x20       print(s.name + '|' + labels + '|' + str(s.value))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn unknown_message_types_cannot_inject_into_the_metrics_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &Config::demo().on_free_ports());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        for payload in [&b"\""[..], b"\n", b"\\", b"}", b"\xff x"] {
            client.send_packet(Packet::Unsequenced(payload)).await.unwrap();
        }
        // Each is answered (a reject): wait for the five answers, bounded.
        for _ in 0..5 {
            client.next_message(Duration::from_secs(5)).await.unwrap();
        }
    });
    let text = admin(&server).run(&AdminAction::Metrics).unwrap();
    server.shutdown().unwrap();
    let samples = parse_with_prometheus_client(&text)
        .unwrap_or_else(|err| panic!("the OpenMetrics parser refused /metrics: {err}\n{text}"));
    assert!(samples.contains("carbonx_gateway_messages_in_total|type=other|5\n"), "{samples}");
}

#[test]
fn a_window_time_with_a_multibyte_character_is_refused_400_and_the_endpoint_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &Config::demo().on_free_ports());
    let admin = admin(&server);
    for end in ["+é", "+5\u{1F600}", "1é:00"] {
        let announce = AuctionAction::Announce {
            id: "H1".into(),
            stock: "CEA".into(),
            qty: 200_000,
            seller: "0001".into(),
            user: "DEMO01".into(),
            start: "now".into(),
            end: end.into(),
            pricing: "uniform".into(),
            floor: "close".into(),
        };
        match admin.run(&AdminAction::Auction { action: announce }) {
            Err(AdminError::Refused { status: 400, message }) => assert!(message.contains("time"), "{message}"),
            other => panic!("{end:?}: expected a 400 refusal, got {other:?}"),
        }
    }
    // Still serving.
    admin.run(&AdminAction::Sessions).unwrap();
    server.shutdown().unwrap();
}
