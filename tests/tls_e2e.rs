//! TLS on the order-entry and drop-copy ports, end to end, with
//! certificates made at test time: our OUCH client, a client that is not
//! ours (Python's `ssl` module speaking SoupBinTCP by hand), `carbonx load
//! --tls`, client-certificate authentication, and the refusals (plain TCP
//! to a TLS port, a certificate file that is not one). The TCP feed and
//! the snapshot service under TLS: consumers rebuild the engine's books,
//! a snapshot ends with End of Session, a plain client gets nothing, and
//! `carbonx watch --tls` prints the book. The admin endpoint under TLS:
//! `carbonx admin --tls-ca` reaches it, plain HTTP and an untrusted
//! certificate do not. Every wait is bounded.

mod support;
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeError, ServeOptions, Server};
use carbonx_feed::book::BookBuilder;
use carbonx_feed::watch::{Credentials, Follower, load_snapshot_with};
use carbonx_gateway::client::{Client, Received};
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use carbonx_soup::client::{Client as SoupClient, Received as SoupReceived};
use carbonx_soup::stream::{TlsClient, TlsFiles};
use carbonx_testkit::tls::Pki;
use std::path::Path;
use std::time::Duration;
use support::books::{engine_book, feed_book};

const WAIT: Duration = Duration::from_secs(5);

fn server_files(pki: &Pki) -> TlsFiles {
    TlsFiles { cert: pki.server_cert.clone(), key: pki.server_key.clone(), client_ca: None }
}

/// The demo market on free ports, TLS on order entry (and drop copy).
fn tls_config(pki: &Pki, client_ca: bool) -> Config {
    let mut config = Config::demo().on_free_ports();
    let files = server_files(pki);
    config.gateway.drop_copy_tls = Some(files.clone());
    config.gateway.tls = Some(TlsFiles { client_ca: client_ca.then(|| pki.ca.clone()), ..files });
    config
}

fn try_start(dir: &Path, config: &Config) -> Result<Server, ServeError> {
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(config, &options)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Logs in as DEMO01 over `tls`, enters one order, and returns what
/// answered it.
async fn order_over(addr: std::net::SocketAddr, tls: &TlsClient) -> Outbound {
    let mut client = Client::connect_with(addr, Some(tls)).await.unwrap();
    let answer = client.login("DEMO01", "demo", "", 0).await.unwrap();
    assert!(matches!(answer, Received::LoginAccepted { .. }), "{answer:?}");
    let order = EnterOrder::limit("TLS1", b'B', 10, "CEA", 746_300, "0001");
    client.send(&Inbound::Enter(order)).await.unwrap();
    client.next_message(WAIT).await.unwrap().1
}

#[test]
fn our_client_trades_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "t");
    let server = try_start(dir.path(), &tls_config(&pki, false)).unwrap();
    let tls = TlsClient::new(&pki.ca, "127.0.0.1", None).unwrap();
    let answer = runtime().block_on(order_over(server.order_entry_addr(), &tls));
    server.shutdown().unwrap();
    assert!(matches!(answer, Outbound::Accepted(_)), "{answer:?}");
}

#[test]
fn a_plain_client_gets_no_session_on_a_tls_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "p");
    let server = try_start(dir.path(), &tls_config(&pki, false)).unwrap();
    let answer = runtime().block_on(async {
        let mut client = Client::connect(server.order_entry_addr()).await.unwrap();
        client.login("DEMO01", "demo", "", 0).await
    });
    server.shutdown().unwrap();
    assert!(!matches!(answer, Ok(Received::LoginAccepted { .. })), "{answer:?}");
}

#[test]
fn a_client_certificate_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "m");
    let server = try_start(dir.path(), &tls_config(&pki, true)).unwrap();
    let addr = server.order_entry_addr();
    let runtime = runtime();
    let with_cert = TlsClient::new(&pki.ca, "127.0.0.1", Some((&pki.client_cert, &pki.client_key))).unwrap();
    let answer = runtime.block_on(order_over(addr, &with_cert));
    assert!(matches!(answer, Outbound::Accepted(_)), "{answer:?}");

    let without = TlsClient::new(&pki.ca, "127.0.0.1", None).unwrap();
    let refused = runtime.block_on(async {
        let mut client = Client::connect_with(addr, Some(&without)).await?;
        client.login("DEMO02", "demo", "", 0).await
    });
    server.shutdown().unwrap();
    assert!(!matches!(refused, Ok(Received::LoginAccepted { .. })), "{refused:?}");
}

#[test]
fn a_drop_copy_desk_reads_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "d");
    let server = try_start(dir.path(), &tls_config(&pki, false)).unwrap();
    let tls = TlsClient::new(&pki.ca, "localhost", None).unwrap();
    let answer = runtime().block_on(async {
        let mut desk = Client::connect_with(server.drop_copy_addr().unwrap(), Some(&tls)).await.unwrap();
        desk.login("RISK01", "demo", "", 0).await.unwrap()
    });
    server.shutdown().unwrap();
    assert!(matches!(answer, Received::LoginAccepted { .. }), "{answer:?}");
}

#[test]
fn a_certificate_file_that_is_not_one_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "b");
    let bogus = dir.path().join("not-a-cert.pem");
    std::fs::write(&bogus, "hello").unwrap();
    let mut config = tls_config(&pki, false);
    config.gateway.tls = Some(TlsFiles { cert: bogus, ..server_files(&pki) });
    let err = try_start(dir.path(), &config).err().expect("the start must fail").to_string();
    assert!(err.contains("not-a-cert.pem") && err.contains("order-entry"), "{err}");
}

/// SoupBinTCP and OUCH by hand over Python's `ssl` module: log in as
/// DEMO01, enter one order, print the answer's OUCH type letter.
const PYTHON_TLS_CLIENT: &str = r#"
import json, socket, ssl, struct, sys
args = json.loads(sys.stdin.read())
context = ssl.create_default_context(cafile=args["ca"])
raw = socket.create_connection(("127.0.0.1", args["port"]), timeout=5)
sock = context.wrap_socket(raw, server_hostname="localhost")
def send(kind, payload):
    sock.sendall(struct.pack("!H", len(payload) + 1) + kind + payload)
def exactly(n):
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            print("closed by the server after " + repr(data)); sys.exit(5)
        data += more
    return data
def packet():
    (length,) = struct.unpack("!H", exactly(2))
    body = exactly(length)
    return body[:1], body[1:]
send(b"L", b"DEMO01" + b"demo".ljust(10) + b" " * 10 + b"0".rjust(20))
kind, _ = packet()
if kind != b"A":
    print("login refused: " + kind.decode()); sys.exit(3)
order = (b"O" + b"PY1".ljust(14) + b"B" + struct.pack("!I", 10) + b"CEA".ljust(8)
    + struct.pack("!I", 746300) + struct.pack("!I", 99999) + b"0001" + b"Y" + b"A" + b"N"
    + struct.pack("!I", 0) + b"N" + b"R")
send(b"U", order)
for _ in range(100):
    kind, payload = packet()
    # OUCH Accepted and Rejected: type, timestamp (8), then the token.
    if kind == b"S" and payload[9:23].rstrip() == b"PY1":
        print("ouch " + chr(payload[0]) + " version " + sock.version())
        send(b"O", b"")
        sys.exit(0)
print("no answer"); sys.exit(4)
"#;

#[test]
fn a_client_that_is_not_ours_logs_in_and_trades_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "y");
    let server = try_start(dir.path(), &tls_config(&pki, false)).unwrap();
    let input =
        format!(r#"{{"ca": {:?}, "port": {}}}"#, pki.ca.display().to_string(), server.order_entry_addr().port());
    let out = support::python::run(PYTHON_TLS_CLIENT, &input);
    server.shutdown().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("ouch A version TLSv1.3"), "{stdout}");
}

/// Runs the `carbonx load` binary against `addr` (over TLS when `ca` is
/// given) with `args`: its JSON report.
fn carbonx_load(addr: std::net::SocketAddr, ca: Option<&Path>, args: &[&str], out: &Path) -> serde_json::Value {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_carbonx"));
    command.args(["load", "--connect", &addr.to_string(), "--json", "--out"]).arg(out).args(args);
    if let Some(ca) = ca {
        command.args(["--tls", "--tls-ca"]).arg(ca);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn carbonx_load_runs_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "l");
    let server = try_start(dir.path(), &tls_config(&pki, false)).unwrap();
    let args = ["--users", "DEMO01", "--rate", "2k", "--duration", "1s", "--warmup", "0s"];
    let report = carbonx_load(server.order_entry_addr(), Some(&pki.ca), &args, &dir.path().join("load"));
    server.shutdown().unwrap();
    assert!(report["answers"]["accepted"].as_u64().is_some_and(|n| n > 0), "no accepted orders over TLS: {report}");
    assert_eq!(report["answers"]["unanswered"].as_i64(), Some(0), "{report}");
}

/// The cost of TLS (run by hand, printed, not asserted): `carbonx load` at
/// the same rate against a plain and a TLS server, alternately, twice.
/// `cargo test --test tls_e2e figure_ -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
fn figure_carbonx_load_with_and_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "f");
    let plain = try_start(&dir.path().join("plain"), &Config::demo().on_free_ports()).unwrap();
    let tls = try_start(&dir.path().join("tls"), &tls_config(&pki, false)).unwrap();
    let args = ["--users", "DEMO01,DEMO02,DEMO03,DEMO04", "--rate", "5k", "--duration", "3s", "--warmup", "1s"];
    for round in 0..2 {
        for (name, server, ca) in [("plain", &plain, None), ("tls", &tls, Some(pki.ca.as_path()))] {
            let out = dir.path().join(format!("{name}{round}"));
            let report = carbonx_load(server.order_entry_addr(), ca, &args, &out);
            let accepted = &report["accepted_ns"];
            println!(
                "{name:5} throughput {:>9.0} msg/s  Accepted p50 {:>7.1} us  p99 {:>8.1} us  unanswered {}",
                report["throughput"].as_f64().unwrap_or(0.0),
                accepted["p50"].as_u64().unwrap_or(0) as f64 / 1e3,
                accepted["p99"].as_u64().unwrap_or(0) as f64 / 1e3,
                report["answers"]["unanswered"]
            );
        }
    }
    plain.shutdown().unwrap();
    tls.shutdown().unwrap();
}

/// The demo market on free ports, TLS on the TCP feed and the snapshot
/// service only (order entry plain, to drive the book).
fn feed_tls_config(pki: &Pki) -> Config {
    let mut config = Config::demo().on_free_ports();
    config.feed.tls = Some(server_files(pki));
    config.feed.snapshot_tls = Some(server_files(pki));
    config
}

/// Enters `count` orders as DEMO01 over plain TCP: resting buys and sells
/// that cross some of them, so the feed carries adds, executions and a book.
async fn make_a_book(addr: std::net::SocketAddr, count: u32) {
    let mut client = Client::connect(addr).await.unwrap();
    let answer = client.login("DEMO01", "demo", "", 0).await.unwrap();
    assert!(matches!(answer, Received::LoginAccepted { .. }), "{answer:?}");
    for i in 0..count {
        let (side, qty) = if i % 3 == 2 { (b'S', 5) } else { (b'B', 10 + i) };
        let order = EnterOrder::limit(&format!("F{i}"), side, qty, "CEA", 746_300, "0001");
        client.send(&Inbound::Enter(order)).await.unwrap();
        client.next_message(WAIT).await.unwrap();
    }
}

#[test]
fn tls_feed_and_snapshot_consumers_rebuild_the_engines_books() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "f");
    let server = try_start(dir.path(), &feed_tls_config(&pki)).unwrap();
    let (tcp, snapshot) = (server.tcp_feed_addr().unwrap(), server.snapshot_addr().unwrap());
    let tls = TlsClient::new(&pki.ca, "127.0.0.1", None).unwrap();
    let who = Credentials::default();
    let (late, from_start) = runtime().block_on(async {
        make_a_book(server.order_entry_addr(), 30).await;
        let book = load_snapshot_with(snapshot, &who, Some(&tls)).await.unwrap();
        assert!(book.next_seq() > 1 && !book.orders().is_empty());
        let mut late = Follower::start_with(tcp, book, &who, Some(&tls)).await.unwrap();
        let mut from_start = Follower::start_with(tcp, BookBuilder::new(), &who, Some(&tls)).await.unwrap();
        while late.poll(Duration::from_millis(300)).await.unwrap() > 0 {}
        while from_start.poll(Duration::from_millis(300)).await.unwrap() > 0 {}
        (late.book, from_start.book)
    });
    let engine = server.shutdown().unwrap();
    let expected = engine_book(&engine);
    assert!(expected.len() > 5, "the session should leave a book ({})", expected.len());
    assert_eq!(feed_book(&late), expected, "snapshot + TCP feed over TLS");
    assert_eq!(feed_book(&from_start), expected, "TCP feed from 1 over TLS");
}

#[test]
fn a_tls_snapshot_ends_with_end_of_session() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "s");
    let server = try_start(dir.path(), &feed_tls_config(&pki)).unwrap();
    let tls = TlsClient::new(&pki.ca, "localhost", None).unwrap();
    let ended = runtime().block_on(async {
        make_a_book(server.order_entry_addr(), 6).await;
        let mut client = SoupClient::connect_with(server.snapshot_addr().unwrap(), Some(&tls)).await.unwrap();
        let answer = client.login("WATCH", "watch", "", 1).await.unwrap();
        assert!(matches!(answer, SoupReceived::LoginAccepted { .. }), "{answer:?}");
        for _ in 0..10_000 {
            match client.recv(WAIT).await.unwrap() {
                SoupReceived::EndOfSession => return true,
                _ => continue,
            }
        }
        false
    });
    server.shutdown().unwrap();
    assert!(ended, "no End of Session on the TLS snapshot");
}

#[test]
fn a_plain_client_gets_no_data_from_a_tls_feed_and_the_feed_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "n");
    let server = try_start(dir.path(), &feed_tls_config(&pki)).unwrap();
    let (tcp, snapshot) = (server.tcp_feed_addr().unwrap(), server.snapshot_addr().unwrap());
    let tls = TlsClient::new(&pki.ca, "127.0.0.1", None).unwrap();
    let (plain_feed, plain_snapshot, still_up) = runtime().block_on(async {
        make_a_book(server.order_entry_addr(), 6).await;
        let plain = |addr| async move {
            let mut client = SoupClient::connect(addr).await?;
            client.login("WATCH", "watch", "", 1).await
        };
        let (feed, snap) = (plain(tcp).await, plain(snapshot).await);
        let up = load_snapshot_with(snapshot, &Credentials::default(), Some(&tls)).await.map(|b| b.orders().len());
        (feed, snap, up)
    });
    server.shutdown().unwrap();
    assert!(!matches!(plain_feed, Ok(SoupReceived::LoginAccepted { .. })), "{plain_feed:?}");
    assert!(!matches!(plain_snapshot, Ok(SoupReceived::LoginAccepted { .. })), "{plain_snapshot:?}");
    assert!(matches!(still_up, Ok(orders) if orders > 0), "{still_up:?}");
}

#[test]
fn carbonx_watch_prints_the_book_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "w");
    // The admin endpoint under TLS too: watch reads its public auction list
    // trusting the same CA.
    let mut config = feed_tls_config(&pki);
    config.admin.tls = Some(server_files(&pki));
    let server = try_start(dir.path(), &config).unwrap();
    runtime().block_on(make_a_book(server.order_entry_addr(), 6));
    let (tcp, snapshot) = (server.tcp_feed_addr().unwrap().to_string(), server.snapshot_addr().unwrap().to_string());
    let admin = server.admin_addr().unwrap().to_string();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_carbonx"))
            .args(["watch", "--feed", &tcp, "--snapshot", &snapshot, "--admin", &admin, "--once", "--tls"])
            .arg("--tls-ca")
            .arg(&pki.ca)
            .args(extra)
            .output()
            .unwrap()
    };
    let (replay, joined) = (run(&[]), run(&["--from-snapshot"]));
    server.shutdown().unwrap();
    for (what, out) in [("replay", replay), ("--from-snapshot", joined)] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{what}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("CEA") && stdout.contains("74.63"), "{what}: {stdout}");
        assert!(stdout.contains("auctions: none today"), "{what}: the public auction list over TLS: {stdout}");
    }
}

#[test]
fn the_admin_endpoint_serves_https_to_carbonx_admin_and_nothing_to_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path(), "a");
    let mut config = Config::demo().on_free_ports();
    config.admin.tls = Some(server_files(&pki));
    let server = try_start(dir.path(), &config).unwrap();
    let addr = server.admin_addr().unwrap();
    let run = |url: String, ca: Option<&Path>, action: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_carbonx"));
        command.args(["admin", "--url", &url]);
        if let Some(ca) = ca {
            command.arg("--tls-ca").arg(ca);
        }
        command.args(action.split(' ')).output().unwrap()
    };
    let halted = run(format!("https://{addr}"), Some(&pki.ca), "halt CEA");
    let sessions = run(format!("https://localhost:{}", addr.port()), Some(&pki.ca), "sessions");
    // Plain HTTP to the TLS port, and HTTPS without trusting our CA.
    let plain = run(format!("http://{addr}"), None, "sessions");
    let untrusted = run(format!("https://{addr}"), None, "sessions");
    let still_up = run(format!("https://{addr}"), Some(&pki.ca), "resume CEA");
    server.shutdown().unwrap();
    let text = |out: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    assert!(halted.status.success() && text(&halted).contains("halted"), "{}", text(&halted));
    assert!(sessions.status.success() && text(&sessions).contains("DEMO01"), "{}", text(&sessions));
    assert_eq!(plain.status.code(), Some(2), "plain HTTP to a TLS port: {}", text(&plain));
    assert_eq!(untrusted.status.code(), Some(2), "a certificate not trusted: {}", text(&untrusted));
    assert!(still_up.status.success() && text(&still_up).contains("trading"), "{}", text(&still_up));
}
