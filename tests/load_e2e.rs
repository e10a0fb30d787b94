//! `carbonx load` end to end: a short open-loop run against an in-process
//! server; the counts must add up and the outputs must be written and well
//! formed. With several addresses (`--connect A,B,C`, a cluster's nodes) a
//! session logs in to the one that takes it, and when its server goes away
//! mid-run it logs in to the next one from where it was, counting nothing twice.

use carbonx::admin::client::{AdminAction, AdminClient};
use carbonx::config::{Config, DEMO_ADMIN_TOKEN};
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx::tools::load::{LoadOptions, run};
use carbonx_gateway::client::{Client, Login, Received};
use carbonx_gateway::ouch::Outbound;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Held by each test that runs a load: on a small machine two runs at
/// once would starve each other and the servers they drive.
static ONE_LOAD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_load_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_LOAD_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn start(config: &Config, data_dir: &Path) -> Server {
    let options = ServeOptions { data_dir: data_dir.to_path_buf(), fsync: FsyncMode::Batch, config_dir: ".".into() };
    Server::start(config, &options).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// An address nothing listens on: connections to it are refused.
fn dead_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A cluster follower as order entry sees it: every Login Request is
/// answered Login Rejected `S` at once.
async fn follower() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut login = [0u8; 49]; // length, type, the request's 46 bytes
            if socket.read_exact(&mut login).await.is_ok() && login[2] == b'L' {
                let _ = socket.write_all(&[0, 2, b'J', b'S']).await;
            }
        }
    });
    addr
}

#[test]
fn the_login_to_the_leader_passes_a_dead_node_and_a_follower() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&Config::demo().on_free_ports(), dir.path());
    let runtime = runtime();
    let found = runtime.block_on(async {
        let addrs = [dead_addr(), follower().await, server.order_entry_addr()];
        let login = Login { user: "DEMO07", password: "demo", session: "", sequence: 1 };
        Client::login_to_leader(&addrs, None, &login, Duration::from_secs(20)).await.unwrap()
    });
    assert_eq!((found.addr, found.sequence), (server.order_entry_addr(), 1));
    let wrong = runtime.block_on(async {
        let addrs = [follower().await, server.order_entry_addr()];
        let login = Login { user: "DEMO08", password: "wrong", session: "", sequence: 1 };
        Client::login_to_leader(&addrs, None, &login, Duration::from_secs(20)).await.map(|l| l.addr)
    });
    let refused = format!("{:?}", wrong.unwrap_err());
    assert!(refused.contains("Rejected") && refused.contains("reason: 65"), "{refused}");
    drop(runtime);
    server.shutdown().unwrap();
}

#[test]
fn carbonx_load_connect_passes_a_dead_address() {
    let _alone = one_load_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let server = start(&Config::demo().on_free_ports(), &dir.path().join("data"));
    let connect = format!("{},{}", dead_addr(), server.order_entry_addr());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["load", "--connect", &connect, "--users", "DEMO05", "--rate", "2k", "--duration", "1s"])
        .args(["--warmup", "0s", "--json", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    server.shutdown().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(report["answers"]["accepted"].as_u64().is_some_and(|n| n > 1_000), "{report}");
    assert_eq!(report["answers"]["unanswered"], 0, "{report}");
    assert_eq!(report["reconnects"], 0, "{report}");
}

/// The sum of the `/metrics` lines of `name` (every label).
fn metric_sum(server: &Server, name: &str) -> u64 {
    let admin = AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), DEMO_ADMIN_TOKEN);
    let text = admin.run(&AdminAction::Metrics).unwrap_or_default();
    let values = text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    values.sum()
}

/// Each user's last sequence number on a server started on `data_dir`
/// (free ports, not one the load run knows) and stopped again.
fn stream_ends(data_dir: &Path, users: &[&str]) -> Vec<u64> {
    let server = start(&Config::demo().on_free_ports(), data_dir);
    let runtime = runtime();
    let ends = users
        .iter()
        .map(|user| {
            runtime.block_on(async {
                let mut client = Client::connect(server.order_entry_addr()).await.unwrap();
                match client.login(user, "demo", "", 0).await.unwrap() {
                    Received::LoginAccepted { sequence, .. } => sequence - 1,
                    other => panic!("{user}: {other:?}"),
                }
            })
        })
        .collect();
    drop(runtime);
    server.shutdown().unwrap();
    ends
}

/// `user`'s whole stream on `addr`: each Accepted's sequence number.
async fn accepted_numbers(addr: SocketAddr, user: &str) -> Vec<u64> {
    let mut client = Client::connect(addr).await.unwrap();
    assert!(matches!(client.login(user, "demo", "", 1).await.unwrap(), Received::LoginAccepted { .. }));
    let mut numbers = Vec::new();
    while let Ok((seq, message)) = client.next_message(Duration::from_millis(500)).await {
        if matches!(message, Outbound::Accepted(_)) {
            numbers.push(seq);
        }
    }
    numbers
}

/// The server a run started on goes away; the same market (its data
/// directory) comes back at the run's second address, as a cluster's new
/// leader would. The sessions log in there from where they were and carry on.
#[test]
fn a_load_run_follows_its_server_to_the_next_address() {
    let _alone = one_load_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = start(&Config::demo().on_free_ports(), &data);
    let mut second_config = Config::demo().on_free_ports();
    second_config.gateway.listen = dead_addr();
    let users = ["DEMO03", "DEMO04"];
    let load = LoadOptions {
        connect: vec![first.order_entry_addr(), second_config.gateway.listen],
        users: users.iter().map(ToString::to_string).collect(),
        password: "demo".into(),
        rate: Some(2_000),
        in_flight: 64,
        duration: Duration::from_secs(7),
        warmup: Duration::from_millis(200),
        seed: 11,
        progress: false,
        tls: None,
    };
    let runtime = runtime();
    let running = runtime.spawn(async move { run(&load).await });
    // The run is under way once the server has taken some of its orders;
    // the move takes about a second, the run goes on for six more.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric_sum(&first, "carbonx_gateway_messages_in") < 100 {
        assert!(Instant::now() < deadline, "the load run sent nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.shutdown().unwrap();
    let ends = stream_ends(&data, &users);
    let second = start(&second_config, &data);
    let report = runtime.block_on(running).unwrap().unwrap();
    assert!(report.reconnects >= users.len() as u64, "{report}");
    assert!(report.unanswered() >= 0, "an answer counted twice: {report}");
    assert!(report.to_json().contains("\"reconnects\":"), "{}", report.to_json());
    let mut stream_accepted = 0;
    for (user, end) in users.iter().zip(ends) {
        let numbers = runtime.block_on(accepted_numbers(second.order_entry_addr(), user));
        let after_the_move = numbers.iter().filter(|&&seq| seq > end).count();
        assert!(after_the_move > 0, "{user}: nothing accepted after the move; {report}");
        stream_accepted += numbers.len() as u64;
    }
    let answers = report.answers;
    assert!(answers.accepted <= stream_accepted, "replayed Accepted counted twice: {report}");
    assert!(
        (stream_accepted - answers.accepted) as i64 <= report.unanswered(),
        "an Accepted missed and not reported unanswered: {stream_accepted} in the streams; {report}"
    );
    drop(runtime);
    second.shutdown().unwrap();
}

#[test]
fn a_short_load_accounts_for_every_message_and_writes_its_outputs() {
    let _alone = one_load_at_a_time();
    let config = Config::demo().on_free_ports();
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { data_dir: dir.path().join("data"), fsync: FsyncMode::Batch, config_dir: ".".into() };
    let server = Server::start(&config, &options).unwrap();
    let load = LoadOptions {
        connect: vec![server.order_entry_addr()],
        users: vec!["DEMO01".into(), "DEMO02".into()],
        password: "demo".into(),
        rate: Some(4_000),
        in_flight: 64,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(300),
        seed: 7,
        progress: false,
        tls: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(run(&load)).unwrap();
    let (sent, answers) = (report.sent, report.answers);
    assert!(sent.orders > 3_000, "{sent:?}");
    assert_eq!(report.unanswered(), 0, "{report}");
    assert_eq!(sent.orders + sent.replaces, answers.accepted + answers.replaced + answers.rejected, "{report}");
    assert_eq!(sent.cancels, answers.cancelled_by_user + answers.cancel_rejects, "{report}");
    assert_eq!(answers.fills_maker, answers.fills_taker, "both sides of every listing fill");
    assert!(answers.fills_taker > 0 && answers.fills_block % 2 == 0, "{report}");
    assert_eq!(report.rejects.values().sum::<u64>(), answers.rejected);
    assert!(report.accepted.len() > 1_000 && !report.ping.is_empty());
    assert!((report.throughput() - 4_000.0).abs() < 400.0, "throughput {}", report.throughput());
    let out = dir.path().join("out");
    let written = report.write_outputs(&out, "t-").unwrap();
    assert_eq!(written.len(), 4);
    let hgrm = std::fs::read_to_string(out.join("t-accepted.hgrm")).unwrap();
    assert!(hgrm.contains("Percentile") && hgrm.contains("Total count"), "{hgrm}");
    for svg in ["t-latency.svg", "t-throughput.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{svg}");
    }
    let json = report.to_json();
    assert!(json.starts_with('{') && json.ends_with('}') && json.contains("\"unanswered\":0"), "{json}");
    assert_eq!(json.matches('{').count(), json.matches('}').count());
    // A second run the same day (a ladder's next step, or an operator
    // running the load again) must not reuse the first run's tokens: the
    // server would ignore those orders as resends and they would go unanswered.
    let closed_loop = LoadOptions { rate: None, duration: Duration::from_millis(500), ..load };
    let again = runtime.block_on(run(&closed_loop)).unwrap();
    assert!(again.sent.orders > 100, "{again}");
    assert_eq!(again.unanswered(), 0, "{again}");
    drop(runtime);
    server.shutdown().unwrap();
}
