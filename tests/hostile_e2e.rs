//! Hostile clients end to end: a whole server in-process and clients that
//! break the rules on purpose (bytes chosen to break the operator's pages,
//! a client that never reads its replies). Each test checks that one such
//! client harms neither the operator's view nor the other users. Every wait
//! is bounded.

mod support;
use carbonx::admin::api::{SessionRow, SessionsAnswer};
use carbonx::admin::client::{AdminAction, AdminClient, AdminError, AuctionAction};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_gateway::client::Client;
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use carbonx_soup::client::{Client as FeedClient, Received as FeedReceived};
use carbonx_soup::packet::Packet;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;
use support::session::{login, login_again};

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
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       labels = ','.join(k + '=' + v for k, v in sorted(s.labels.items()))\n\
        \x20       print(s.name + '|' + labels + '|' + str(s.value))\n";
    let out = support::python::run(script, text);
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

/// `user`'s row of `carbonx admin sessions`.
fn session_row(admin: &AdminClient, user: &str) -> SessionRow {
    let text = admin.run(&AdminAction::Sessions).unwrap();
    let answer: SessionsAnswer = serde_json::from_str(&text).unwrap();
    answer.sessions.into_iter().find(|row| row.user == user).unwrap()
}

/// The most bytes the kernel queues on one loopback connection's sending
/// side (`tcp_wmem`'s maximum; 4 MiB, Linux's default, elsewhere).
fn send_buffer_max() -> usize {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").unwrap_or_default();
    text.split_whitespace().nth(2).and_then(|n| n.parse().ok()).unwrap_or(4 << 20)
}

/// Logs in as `user` with a 4 KiB receive buffer and rests one buy `R1`:
/// the client and the sequence number of R1's Accepted.
async fn small_window_client(server: &Server, admin: &AdminClient, user: &str) -> (Client, u64) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.order_entry_addr()).await.unwrap();
    let mut client = Client::from_stream(stream).unwrap();
    let answer = client.login(user, "demo", "", 0).await.unwrap();
    assert!(matches!(answer, carbonx_gateway::client::Received::LoginAccepted { .. }), "{answer:?}");
    let start = session_row(admin, user).next_seq;
    client.send(&Inbound::Enter(EnterOrder::limit("R1", b'B', 1, "CEA", 700_000, "0001"))).await.unwrap();
    (client, start)
}

/// IOC buys that do not trade (each answered by Accepted and Canceled, at
/// least 69 bytes) until their answers are more than the kernel can buffer
/// on both sides: how many were sent, or the send error (the server may
/// close the connection meanwhile).
async fn flood(client: &mut Client) -> Result<u64, carbonx_gateway::client::ClientError> {
    let iocs = (2 * send_buffer_max() + (1 << 20)) / 69;
    for n in 0..iocs {
        let mut ioc = EnterOrder::limit(&format!("I{n}"), b'B', 1, "CEA", 700_000, "0001");
        ioc.tif = 0;
        client.queue(&Inbound::Enter(ioc));
        if n % 1_000 == 999 {
            client.flush().await?;
        }
    }
    client.flush().await?;
    Ok(iocs as u64)
}

/// A client that never reads: [`small_window_client`], then a [`flood`].
/// Returns the client (unread) and the stream's next sequence number once
/// the server has answered everything: its writer is stuck in a write.
async fn stuck_client(server: &Server, admin: &AdminClient, user: &str) -> (Client, u64) {
    let (mut client, start) = small_window_client(server, admin, user).await;
    let iocs = flood(&mut client).await.unwrap();
    // R1's Accepted, then Accepted and Canceled per IOC (bounded wait).
    let expected = start + 1 + 2 * iocs;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = start;
    while next < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        next = session_row(admin, user).next_seq;
    }
    assert_eq!(next, expected, "the server did not answer every order in time");
    (client, next)
}

/// The first message of `user`'s stream from `from` on: R1's cancel.
async fn expect_r1_cancelled(server: &Server, user: &str, from: u64) {
    let mut client = login_again(server.order_entry_addr(), user, from).await;
    let (_, message) = client.next_message(Duration::from_secs(5)).await.unwrap();
    let Outbound::Canceled { token, reason, .. } = message else { panic!("expected R1's cancel, got {message:?}") };
    assert_eq!((&token[..2], reason), (&b"R1"[..], b'U'));
}

#[test]
fn the_operators_disconnect_ends_a_client_that_does_not_read_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    config.gateway.users[0].cancel_on_disconnect = true; // DEMO01
    let server = start(dir.path(), &config);
    let admin = admin(&server);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (stuck, next) = stuck_client(&server, &admin, "DEMO01").await;
        assert!(session_row(&admin, "DEMO01").connected);
        let asked = Instant::now();
        admin.run(&AdminAction::Disconnect { user: "DEMO01".into() }).unwrap();
        while session_row(&admin, "DEMO01").connected && asked.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = asked.elapsed();
        assert!(!session_row(&admin, "DEMO01").connected, "still logged in {took:?} after the disconnect");
        assert!(took < Duration::from_millis(1_500), "the disconnect took {took:?}");
        // The username is free for a new login, and cancel-on-disconnect
        // cancelled the resting order.
        expect_r1_cancelled(&server, "DEMO01", next).await;
        drop(stuck);
    });
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_does_not_read_is_cut_off_after_the_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    config.gateway.users[0].cancel_on_disconnect = true; // DEMO01
    config.gateway.write_timeout_ms = 1_000;
    let server = start(dir.path(), &config);
    let admin = admin(&server);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (mut stuck, _) = small_window_client(&server, &admin, "DEMO01").await;
        let book = || admin.run(&AdminAction::Book { stock: "CEA".into(), levels: 5 }).unwrap();
        for _ in 0..100 {
            if book().contains("70.00") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(book().contains("70.00"), "R1 does not rest:\n{}", book());
        // The server may cut the client off while it still sends.
        let _ = flood(&mut stuck).await;
        // The idle timeout (15 s) is not what ends it: the write deadline is.
        let sent = Instant::now();
        while session_row(&admin, "DEMO01").connected && sent.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!session_row(&admin, "DEMO01").connected, "still logged in {:?} after the flood", sent.elapsed());
        drop(login_again(server.order_entry_addr(), "DEMO01", 0).await);
        // Cancel-on-disconnect took R1 off the book (bounded wait).
        // The table shows R1's price 70.00 only while R1 rests.
        let mut table = book();
        for _ in 0..100 {
            if !table.contains("70.00") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            table = book();
        }
        panic!("R1 still rests:\n{table}");
    });
    server.shutdown().unwrap();
}

/// A connection to `server`'s order-entry port from `source` (any address of
/// 127.0.0.0/8 is this machine's loopback).
async fn connect_from(server: &Server, source: [u8; 4]) -> tokio::net::TcpStream {
    connect_to(server.order_entry_addr(), source).await
}

/// A connection to `addr` from `source`.
async fn connect_to(addr: std::net::SocketAddr, source: [u8; 4]) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// True when the server closes `stream` within `wait` (it sends nothing
/// before a login).
async fn closed_within(mut stream: tokio::net::TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(wait, tokio::io::AsyncReadExt::read(&mut stream, &mut byte)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[test]
fn connections_that_never_log_in_from_one_address_cannot_lock_out_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    (config.gateway.connections_max, config.gateway.login_timeout_ms) = (24, 30_000);
    let server = start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // 40 connections from 127.0.0.2 that never log in: more than
        // connections_max, but only the address's share stays open.
        let mut flood = Vec::new();
        for _ in 0..40 {
            flood.push(connect_from(&server, [127, 0, 0, 2]).await);
        }
        let mut checks = tokio::task::JoinSet::new();
        for stream in flood {
            checks.spawn(closed_within(stream, Duration::from_millis(1_500)));
        }
        // Meanwhile a broker on 127.0.0.3 logs in.
        let socket = connect_from(&server, [127, 0, 0, 3]).await;
        let mut broker = Client::from_stream(socket).unwrap();
        let answer = broker.login("DEMO02", "demo", "", 0).await.expect("the broker's login was not answered");
        assert!(matches!(answer, carbonx_gateway::client::Received::LoginAccepted { .. }), "{answer:?}");
        let closed = checks.join_all().await.into_iter().filter(|closed| *closed).count();
        assert_eq!(closed, 40 - carbonx_gateway::config::PRELOGIN_PER_ADDRESS_MAX, "flood connections closed at once");
    });
    server.shutdown().unwrap();
}

/// Logs in as `user` with `password` from `source`: the reject reason, or
/// `None` when accepted.
async fn login_from(server: &Server, source: [u8; 4], user: &str, password: &str) -> Option<u8> {
    let mut client = Client::from_stream(connect_from(server, source).await).unwrap();
    match client.login(user, password, "", 0).await.expect("the login was not answered") {
        carbonx_gateway::client::Received::LoginAccepted { .. } => None,
        carbonx_gateway::client::Received::LoginRejected(reason) => Some(reason),
        other => panic!("{user}: {other:?}"),
    }
}

/// The value of an unlabelled sample of `/metrics`.
fn metric(server: &Server, name: &str) -> Option<u64> {
    let text = admin(server).run(&AdminAction::Metrics).unwrap();
    let line = text.lines().find(|line| line.starts_with(&format!("{name} ")))?;
    line.rsplit(' ').next()?.parse().ok()
}

#[test]
fn failed_logins_are_delayed_counted_and_locked_out_per_username_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    config.gateway.login_failures_max = 3;
    config.gateway.login_failure_delay_ms = 200;
    config.gateway.login_lockout_ms = 600_000;
    let server = start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for _ in 0..3 {
            let asked = Instant::now();
            assert_eq!(login_from(&server, [127, 0, 0, 2], "DEMO01", "guess").await, Some(b'A'));
            // A lower bound only: a failure is never answered before its delay.
            assert!(asked.elapsed() >= Duration::from_millis(200), "answered early: {:?}", asked.elapsed());
        }
        // DEMO01 is locked from every address, even with its password ...
        assert_eq!(login_from(&server, [127, 0, 0, 3], "DEMO01", "demo").await, Some(b'A'));
        // ... and 127.0.0.2 for every username.
        assert_eq!(login_from(&server, [127, 0, 0, 2], "DEMO02", "demo").await, Some(b'A'));
        // Another user from another address is not affected.
        assert_eq!(login_from(&server, [127, 0, 0, 4], "DEMO02", "demo").await, None);
    });
    assert_eq!(metric(&server, "carbonx_gateway_login_failures_total"), Some(5));
    server.shutdown().unwrap();
}

#[test]
fn logins_check_argon2_hashes_and_a_plain_text_password_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    config.gateway.users[0].password_hash = carbonx_soup::secret::hash_password(b"s3cret").unwrap();
    let server = start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        assert_eq!(login_from(&server, [127, 0, 0, 5], "DEMO01", "s3cret").await, None);
        // The demo logins of RULES §13 keep working from their stored hash.
        assert_eq!(login_from(&server, [127, 0, 0, 5], "DEMO02", "demo").await, None);
        assert_eq!(login_from(&server, [127, 0, 0, 5], "DEMO03", "demo2").await, Some(b'A'));
    });
    server.shutdown().unwrap();
    let mut plain = Config::demo().on_free_ports();
    plain.gateway.users[0].password_hash = "demo".into();
    let options = ServeOptions { data_dir: dir.path().join("plain"), fsync: FsyncMode::Never, config_dir: ".".into() };
    let err = Server::start(&plain, &options).err().expect("a plain-text password must not start").to_string();
    assert!(err.contains("DEMO01") && err.contains("carbonx passwd"), "{err}");
}

/// Runs the `carbonx` binary with `args` and `stdin`: exit success, stdout, stderr.
fn carbonx(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_shipped_config_holds_no_secret_and_the_printed_one_redacts_them() {
    let (ok, _, err) = carbonx(&["config", "carbonx.toml"], "");
    assert!(!ok && err.contains("[admin] token"), "the shipped file must be refused until secrets are set: {err}");
    let (ok, demo, _) = carbonx(&["config"], "");
    assert!(ok);
    assert!(!demo.contains(carbonx::config::DEMO_ADMIN_TOKEN) && !demo.contains("$argon2"), "{demo}");
    assert!(demo.contains("password_hash = \"<redacted>\""), "{demo}");
    let (ok, hash, err) = carbonx(&["passwd"], "s3cret\n");
    assert!(ok, "{err}");
    assert!(carbonx_soup::secret::verify_password(hash.trim(), b"s3cret"), "{hash}");
    assert!(!carbonx(&["passwd"], "much-too-long\n").0);
}

/// The next answer of `client` that is not `U`-sequenced noise: its type
/// letter and reject reason (if a reject).
async fn answer(client: &mut Client) -> (u8, Option<u8>) {
    match client.next_message(Duration::from_secs(5)).await.expect("an answer").1 {
        Outbound::Rejected { reason, .. } => (b'J', Some(reason)),
        Outbound::Accepted(_) => (b'A', None),
        other => (other.token().map_or(b'?', |_| b'*'), None),
    }
}

#[test]
fn the_throttle_covers_cancels_and_malformed_messages_and_a_flood_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    (config.gateway.users[0].rate_per_sec, config.gateway.users[0].burst) = (1, 3);
    config.gateway.throttle_rejects_max = 10;
    let server = start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        for n in 0..3 {
            client
                .send(&Inbound::Enter(EnterOrder::limit(&format!("O{n}"), b'B', 10, "CEA", 700_000, "0001")))
                .await
                .unwrap();
            assert_eq!(answer(&mut client).await, (b'A', None));
        }
        // The bucket is empty: a malformed message is throttled too, a
        // cancel never is (PROTOCOL §4: a member can always pull its orders).
        let cancel = carbonx_gateway::ouch::CancelOrder { token: *b"O0            ", shares: 0 };
        client.send(&Inbound::Cancel(cancel)).await.unwrap();
        assert_eq!(answer(&mut client).await, (b'*', None), "a cancel past the limit still cancels");
        client.send_packet(Packet::Unsequenced(b"Q")).await.unwrap();
        assert_eq!(answer(&mut client).await, (b'J', Some(b'V')), "a malformed message past the limit is rejected V");
        // Keep sending: after 10 rejects in a row the connection is closed.
        for n in 0..40 {
            client.queue(&Inbound::Enter(EnterOrder::limit(&format!("F{n}"), b'B', 10, "CEA", 700_000, "0001")));
        }
        let _ = client.flush().await;
        let mut rejects = 1;
        let closed = loop {
            match client.next_message(Duration::from_secs(5)).await {
                Ok((_, Outbound::Rejected { reason: b'V', .. })) => rejects += 1,
                Ok(_) => {}
                Err(carbonx_gateway::client::ClientError::Closed | carbonx_gateway::client::ClientError::Io(_)) => {
                    break true;
                }
                Err(_) => break false,
            }
            assert!(rejects <= 41, "bounded");
        };
        assert!(closed, "a user that keeps sending past its throttle is disconnected");
        // The reader stops at the 10th reject in a row: the rest are never read.
        assert!(rejects <= 10, "closed after the configured rejects, not at the end: {rejects}");
        // Another user is not affected.
        let mut other = login(server.order_entry_addr(), "DEMO02", 0).await;
        other.send(&Inbound::Enter(EnterOrder::limit("Q1", b'B', 10, "CEA", 700_000, "0341"))).await.unwrap();
        assert_eq!(answer(&mut other).await, (b'A', None));
    });
    assert_eq!(metric(&server, "carbonx_gateway_throttle_disconnects_total"), Some(1));
    server.shutdown().unwrap();
}

/// Sends `count` orders of `user` one at a time, each after the answer to
/// the previous: how many were accepted, and the median round trip.
async fn one_at_a_time(server: &Server, user: &str, firm: &str, prefix: &str, count: u32) -> (u32, Duration) {
    let mut client = login(server.order_entry_addr(), user, 0).await;
    let (mut accepted, mut trips) = (0, Vec::new());
    for n in 0..count {
        let sent = Instant::now();
        client
            .send(&Inbound::Enter(EnterOrder::limit(&format!("{prefix}{n}"), b'B', 10, "CEA", 700_000, firm)))
            .await
            .unwrap();
        if answer(&mut client).await == (b'A', None) {
            accepted += 1;
        }
        trips.push(sent.elapsed());
    }
    trips.sort();
    (accepted, trips[trips.len() / 2])
}

#[test]
fn a_flood_of_one_user_leaves_every_order_of_another_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &Config::demo().on_free_ports());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (_, alone) = one_at_a_time(&server, "DEMO02", "0341", "ALONE", 50).await;
        let flooder = login(server.order_entry_addr(), "DEMO01", 0).await;
        let (mut reader, mut writer) = flooder.into_split();
        const FLOOD: u32 = 100_000;
        let flood = tokio::spawn(async move {
            for chunk in 0..FLOOD / 1_000 {
                for n in 0..1_000 {
                    let token = format!("F{}", chunk * 1_000 + n);
                    writer.queue(&Inbound::Enter(EnterOrder::limit(&token, b'S', 10, "CEA", 800_000, "0001")));
                }
                writer.flush().await.unwrap();
            }
            writer
        });
        let drain = tokio::spawn(async move {
            let mut answers = 0u32;
            while answers < FLOOD && reader.next_message(Duration::from_secs(30)).await.is_ok() {
                answers += 1;
            }
            answers
        });
        let (accepted, flooded) = one_at_a_time(&server, "DEMO02", "0341", "FLOOD", 50).await;
        assert_eq!(accepted, 50, "every order of the quiet user is accepted during the flood");
        let _writer = flood.await.unwrap();
        assert_eq!(drain.await.unwrap(), FLOOD, "the flooder's orders are all answered too");
        // A figure, not an assertion (machine speed): see BENCHMARKS.md.
        eprintln!("quiet user's median round trip: alone {alone:?}, during a {FLOOD}-order flood {flooded:?}");
    });
    server.shutdown().unwrap();
}

// ---- The TCP feed and the snapshot service (issue 20, items 1 and 5) ----

/// A feed or snapshot login from `source` as `user`, the socket's receive
/// buffer `receive_buffer` bytes when given: the client, or the reject reason.
async fn feed_login(
    addr: std::net::SocketAddr,
    source: [u8; 4],
    (user, password): (&str, &str),
    receive_buffer: Option<u32>,
) -> Result<FeedClient, u8> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes).unwrap();
    }
    socket.bind((source, 0).into()).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut client = FeedClient::from_stream(stream).unwrap();
    match client.login(user, password, "", 1).await.unwrap() {
        FeedReceived::LoginAccepted { .. } => Ok(client),
        FeedReceived::LoginRejected(reason) => Err(reason),
        other => panic!("{user}: {other:?}"),
    }
}

/// The demo market on free ports with these feed users (name, password),
/// their passwords stored as argon2 PHC strings.
fn with_feed_users(users: &[(&str, &str)]) -> Config {
    let mut config = Config::demo().on_free_ports();
    config.feed.users = users
        .iter()
        .map(|(name, password)| carbonx::config::FeedUser {
            name: (*name).to_string(),
            password_hash: carbonx_soup::secret::hash_password(password.as_bytes()).unwrap(),
        })
        .collect();
    config
}

/// Reads a snapshot to its End of Session: how many messages, the last
/// being `G`.
async fn read_snapshot(client: &mut FeedClient) -> usize {
    let mut messages = 0;
    for _ in 0..10_000_000 {
        match client.recv(Duration::from_secs(10)).await.unwrap() {
            FeedReceived::Sequenced(_, bytes) => {
                messages += 1;
                assert!(messages > 1 || bytes[0] == b'R', "a snapshot starts with the directory");
            }
            FeedReceived::EndOfSession => return messages,
            _ => {}
        }
    }
    panic!("the snapshot did not end");
}

const LOCAL: [u8; 4] = [127, 0, 0, 1];

#[test]
fn feed_and_snapshot_logins_need_a_listed_user_and_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &with_feed_users(&[("MM01", "mm01pass"), ("MM02", "mm02pass")]));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for addr in [server.tcp_feed_addr().unwrap(), server.snapshot_addr().unwrap()] {
            for wrong in [("MM01", "mm02pass"), ("MM03", "mm01pass"), ("MM01", ""), ("WATCH", "watch")] {
                let refused = feed_login(addr, LOCAL, wrong, None).await.err();
                assert_eq!(refused, Some(b'A'), "{wrong:?} on {addr}");
            }
            assert!(feed_login(addr, LOCAL, ("MM02", "mm02pass"), None).await.is_ok(), "MM02 on {addr}");
        }
        let mut snapshot =
            feed_login(server.snapshot_addr().unwrap(), LOCAL, ("MM01", "mm01pass"), None).await.unwrap();
        assert!(read_snapshot(&mut snapshot).await > 7);
    });
    let metrics = admin(&server).run(&AdminAction::Metrics).unwrap();
    assert!(metrics.contains("carbonx_feed_logins_refused_total 8\n"), "{metrics}");
    server.shutdown().unwrap();
}

#[test]
fn feed_slots_are_counted_per_user_and_an_address_that_never_logs_in_locks_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = with_feed_users(&[("MM01", "mm01pass"), ("MM02", "mm02pass")]);
    (config.feed.connections_per_user_max, config.feed.prelogin_per_address_max) = (2, 4);
    config.gateway.login_timeout_ms = 30_000;
    let server = start(dir.path(), &config);
    let tcp = server.tcp_feed_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // MM01's two connections, kept alive by heartbeats, are all it gets.
        let first = feed_login(tcp, LOCAL, ("MM01", "mm01pass"), None).await.unwrap();
        let _second = feed_login(tcp, LOCAL, ("MM01", "mm01pass"), None).await.unwrap();
        assert_eq!(feed_login(tcp, LOCAL, ("MM01", "mm01pass"), None).await.err(), Some(b'S'));
        assert!(feed_login(tcp, LOCAL, ("MM02", "mm02pass"), None).await.is_ok(), "MM02 locked out by MM01");
        // A closed connection gives its place back (bounded retries).
        drop(first);
        let mut again = Err(b'S');
        for _ in 0..100 {
            again = feed_login(tcp, LOCAL, ("MM01", "mm01pass"), None).await.map(drop);
            if again.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(again, Ok(()), "MM01's closed connection kept its place");
        // 40 connections from 127.0.0.2 that never log in: only the
        // address's share stays open, and MM02 on 127.0.0.3 logs in.
        let mut flood = Vec::new();
        for _ in 0..40 {
            flood.push(connect_to(tcp, [127, 0, 0, 2]).await);
        }
        let mut checks = tokio::task::JoinSet::new();
        for stream in flood {
            checks.spawn(closed_within(stream, Duration::from_millis(1_500)));
        }
        assert!(feed_login(tcp, [127, 0, 0, 3], ("MM02", "mm02pass"), None).await.is_ok());
        let closed = checks.join_all().await.into_iter().filter(|closed| *closed).count();
        assert_eq!(closed, 40 - 4, "flood connections closed at once");
    });
    server.shutdown().unwrap();
}

// ---- MoldUDP64 re-requests (issue 20, item 6) ----

/// A UDP socket on `source` asking the re-request server, with a short read timeout.
fn rerequester(server: &Server, source: [u8; 4]) -> std::net::UdpSocket {
    let socket = std::net::UdpSocket::bind(std::net::SocketAddr::from((source, 0))).unwrap();
    socket.connect(server.rerequest_addr().unwrap()).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    socket
}

#[test]
fn rerequests_are_limited_in_bytes_per_source_and_other_sessions_get_nothing() {
    use carbonx_feed::moldudp::{DATAGRAM_MAX, Datagram, ReRequest};
    let dir = tempfile::tempdir().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = Config::demo().on_free_ports();
    config.feed.publish_to = vec![udp.local_addr().unwrap()];
    config.feed.rerequest_bytes_per_second = 10 * DATAGRAM_MAX as u64;
    let server = start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        for n in 0..200 {
            client.queue(&Inbound::Enter(EnterOrder::limit(&format!("Q{n}"), b'B', 1, "CEA", 700_000, "0001")));
        }
        client.flush().await.unwrap();
        for _ in 0..200 {
            client.next_message(Duration::from_secs(5)).await.unwrap();
        }
    });
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut first = [0u8; 2_048];
    let len = udp.recv(&mut first).unwrap();
    let session = Datagram::decode(&first[..len]).unwrap().header().session;
    let wanted = ReRequest { session, sequence: 1, count: 200 };
    // 100 requests at once from 127.0.0.2: one second's worth (10 full
    // datagrams) is answered, plus what refills while they arrive.
    let flooder = rerequester(&server, [127, 0, 0, 2]);
    let started = Instant::now();
    for _ in 0..100 {
        flooder.send(&wanted.encode()).unwrap();
    }
    let mut answers = 0u64;
    let mut buf = [0u8; 2_048];
    while answers < 100 && flooder.recv(&mut buf).is_ok() {
        answers += 1;
    }
    let refill = (started.elapsed().as_secs_f64() * 10.0).ceil() as u64;
    assert!(answers >= 10 && answers <= 10 + refill, "{answers} answers (refill allowance {refill})");
    // Another source is not limited by the first one's flood.
    let other = rerequester(&server, [127, 0, 0, 3]);
    other.send(&wanted.encode()).unwrap();
    let len = other.recv(&mut buf).unwrap();
    let answer = Datagram::decode(&buf[..len]).unwrap().header();
    assert_eq!((answer.session, answer.sequence), (session, 1));
    // Another session: nothing, counted as dropped.
    let stranger = rerequester(&server, [127, 0, 0, 4]);
    stranger.send(&ReRequest { session: *b"CX19990104", ..wanted }.encode()).unwrap();
    assert!(stranger.recv(&mut buf).is_err(), "a request for another session was answered");
    assert_eq!(metric(&server, "carbonx_feed_rerequests_total{outcome=\"dropped\"}").unwrap(), 1);
    let limited = metric(&server, "carbonx_feed_rerequests_total{outcome=\"limited\"}").unwrap();
    assert_eq!(limited, 100 - answers, "every request over the limit is counted");
    server.shutdown().unwrap();
}

// ---- Snapshot loops and consumers that never read, during load (issue 20, item 1) ----

/// This process's resident memory in KiB (`VmRSS`): the server runs in it.
fn vm_rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// A figure of `/proc/self/status` in KiB (`VmRSS:`, `VmHWM:`).
fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Rests `per_user` buys (DEMO01) and `per_user` sells (DEMO02) that do not
/// cross: a book whose snapshot (about 39 bytes an order) is more than a
/// feed socket's kernel buffers hold.
async fn rest_deep_book(server: &Server, per_user: u32) {
    for (user, side, base, account) in [("DEMO01", b'B', 700_000, 1), ("DEMO02", b'S', 800_000, 341)] {
        let mut client = login(server.order_entry_addr(), user, 0).await;
        for n in 0..per_user {
            let firm = format!("{:04}", account + n % 340);
            let price = if side == b'B' { base - (n % 50) * 100 } else { base + (n % 50) * 100 };
            client.queue(&Inbound::Enter(EnterOrder::limit(&format!("D{n}"), side, 1, "CEA", price, &firm)));
        }
        client.flush().await.unwrap();
        for n in 0..per_user {
            let (_, answer) = client.next_message(Duration::from_secs(10)).await.unwrap();
            assert!(matches!(answer, Outbound::Accepted { .. }), "{user} order {n}: {answer:?}");
        }
    }
}

/// Takes one snapshot from `source` as `user`, reading the raw bytes to
/// the server's close without decoding them (64 of these loop at once):
/// how many bytes, which end with End of Session.
async fn take_snapshot(addr: std::net::SocketAddr, source: [u8; 4], user: &str) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect_to(addr, source).await;
    let login = carbonx_soup::packet::LoginRequest {
        username: carbonx_soup::packet::alpha(user).unwrap(),
        password: carbonx_soup::packet::alpha("x").unwrap(),
        session: [b' '; 10],
        sequence: 1,
    };
    let mut bytes = Vec::new();
    Packet::LoginRequest(login).encode(&mut bytes);
    stream.write_all(&bytes).await.unwrap();
    let (mut buf, mut total, mut last) = (vec![0u8; 1 << 16], 0, [0u8; 3]);
    for _ in 0..1_000_000 {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await.unwrap().unwrap();
        if n == 0 {
            break;
        }
        total += n;
        let joined: Vec<u8> = last.iter().chain(&buf[..n]).copied().collect();
        last.copy_from_slice(&joined[joined.len() - 3..]);
    }
    assert_eq!(last, [0, 1, b'Z'], "{user}: the snapshot did not end with End of Session after {total} bytes");
    total
}

/// The hostile clients: 256 that log in and never read again (half on the
/// TCP feed from sequence 1, half on the snapshot port, 4 KiB receive
/// windows), and 64 that take snapshots in a loop, each from its own
/// loopback address and username.
struct Hostile {
    idle: Vec<FeedClient>,
    loops: Vec<tokio::task::JoinHandle<u64>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Hostile {
    async fn start(server: &Server) -> Hostile {
        let (tcp, snapshot) = (server.tcp_feed_addr().unwrap(), server.snapshot_addr().unwrap());
        let mut idle = Vec::new();
        for i in 0..256u32 {
            let source = [127, 1, (i / 200) as u8, (2 + i % 200) as u8];
            let addr = if i % 2 == 0 { tcp } else { snapshot };
            idle.push(feed_login(addr, source, (&format!("N{i:03}"), "x"), Some(4_096)).await.unwrap());
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let loops = (0..64u8)
            .map(|i| {
                let stop = std::sync::Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut taken = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && taken < 100_000 {
                        take_snapshot(snapshot, [127, 2, 0, 2 + i], &format!("S{i:02}")).await;
                        taken += 1;
                    }
                    taken
                })
            })
            .collect();
        Hostile { idle, loops, stop }
    }

    /// Stops the loops: how many snapshots each took.
    async fn stop_loops(&mut self) -> Vec<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut taken = Vec::new();
        for task in self.loops.drain(..) {
            taken.push(task.await.unwrap());
        }
        taken
    }
}

/// `carbonx load` against `server`: DEMO03..DEMO06 at `rate` messages a second.
async fn load(server: &Server, rate: u64, seconds: u64) -> carbonx::tools::load::LoadReport {
    let options = carbonx::tools::load::LoadOptions {
        connect: server.order_entry_addr(),
        users: (3..=6).map(|n| format!("DEMO{n:02}")).collect(),
        password: "demo".into(),
        rate: Some(rate),
        in_flight: 1,
        duration: Duration::from_secs(seconds),
        warmup: Duration::from_millis(500),
        seed: 20,
        progress: false,
        tls: None,
    };
    carbonx::tools::load::run(&options).await.unwrap()
}

/// Waits (bounded) until the server has `feed` TCP feed consumers and
/// `snapshot` snapshot consumers logged in; what it has at the end.
fn wait_for_connections(server: &Server, feed: u64, snapshot: u64) -> (u64, u64) {
    let now = || {
        let feed = metric(server, "carbonx_feed_connections{service=\"feed\"}").unwrap();
        (feed, metric(server, "carbonx_feed_connections{service=\"snapshot\"}").unwrap())
    };
    for _ in 0..300 {
        if now() == (feed, snapshot) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    now()
}

/// A TCP feed consumer from sequence 1 on its own thread, logging in again
/// from its next number if it is ever cut off (as PROTOCOL §9 says a
/// consumer does), until `stop`; its book at the end.
fn follow(
    tcp: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<carbonx_feed::book::BookBuilder> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut book = carbonx_feed::book::BookBuilder::new();
            for _ in 0..1_000 {
                let mut follower = carbonx_feed::watch::Follower::start(tcp, book).await.unwrap();
                let mut quiet_after_stop = false;
                for _ in 0..100_000 {
                    match follower.poll(Duration::from_millis(200)).await {
                        Ok(0) if stop.load(std::sync::atomic::Ordering::Relaxed) => {
                            quiet_after_stop = true;
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                book = follower.book;
                if quiet_after_stop {
                    return book;
                }
            }
            panic!("the follower kept being cut off");
        })
    })
}

/// What a load run beside hostile clients measured: the load's report,
/// the snapshots each loop took, how much the process grew (KiB), and the
/// clients that never read, still open (with their runtime).
struct Beside {
    report: carbonx::tools::load::LoadReport,
    taken: Vec<u64>,
    grown: u64,
    _idle: (tokio::runtime::Runtime, Vec<FeedClient>),
}

/// Runs `carbonx load` on its own runtime, with the hostile clients on
/// another when `hostile` (the loops stopped after the load, the clients
/// that never read kept open).
fn load_beside_hostile_clients(server: &Server, hostile: bool) -> Beside {
    let clients = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let before = vm_rss_kib();
    let mut attack = hostile.then(|| clients.block_on(Hostile::start(server)));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let report = runtime.block_on(load(server, 2_000, 3));
    let grown = vm_rss_kib().saturating_sub(before);
    let taken = attack.as_mut().map(|attack| clients.block_on(attack.stop_loops())).unwrap_or_default();
    Beside { report, taken, grown, _idle: (clients, attack.map(|attack| attack.idle).unwrap_or_default()) }
}

#[test]
fn snapshot_loops_and_consumers_that_never_read_stop_neither_order_entry_nor_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    config.feed.write_timeout_ms = 1_000;
    let server = start(dir.path(), &config);
    let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    setup.block_on(rest_deep_book(&server, 15_000));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = follow(server.tcp_feed_addr().unwrap(), std::sync::Arc::clone(&stop));
    let Beside { report, taken, grown, _idle: idle } = load_beside_hostile_clients(&server, true);
    // Order entry kept working: every order, replace and cancel answered.
    assert!(report.sent.orders > 0 && report.unanswered() == 0, "{} unanswered", report.unanswered());
    assert!(taken.iter().all(|&n| n > 0), "a snapshot loop never got a snapshot: {taken:?}");
    assert!(grown < 1 << 20, "the process grew by {grown} KiB");
    // Every consumer that does not read is cut off by the write deadline;
    // only the follower is left.
    assert_eq!(wait_for_connections(&server, 1, 0), (1, 0), "consumers that never read are still connected");
    drop(idle);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let book = follower.join().unwrap();
    let engine = server.shutdown().unwrap();
    // The feed kept flowing: the follower has exactly the engine's books.
    assert_eq!(support::books::feed_book(&book), support::books::engine_book(&engine));
}

/// The figure of issue 20 item 1 (run by hand, printed, not asserted):
/// order-entry latency p99 and the process's memory with and without the
/// hostile clients, each on a fresh server. Memory is only comparable
/// between processes: `CARBONX_HOSTILE=0` or `1` runs one of the two, and
/// the peak (`VmHWM`) is what to compare.
/// `CARBONX_HOSTILE=0 cargo test --test hostile_e2e figure_ -- --ignored --nocapture`
/// (then `=1`; the test profile is optimised, opt-level 2)
#[test]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
fn figure_order_entry_p99_and_memory_with_and_without_hostile_feed_clients() {
    let modes: Vec<bool> = match std::env::var("CARBONX_HOSTILE").as_deref() {
        Ok("0") => vec![false],
        Ok("1") => vec![true],
        _ => vec![false, true],
    };
    for hostile in modes {
        let dir = tempfile::tempdir().unwrap();
        let server = start(dir.path(), &Config::demo().on_free_ports());
        let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        setup.block_on(rest_deep_book(&server, 15_000));
        let Beside { report, taken, grown, .. } = load_beside_hostile_clients(&server, hostile);
        let p99 = report.accepted.value_at_quantile(0.99);
        let (rss, peak) = (vm_rss_kib(), status_kib("VmHWM:"));
        println!(
            "hostile clients: {hostile:5}  accepted p99 {:>8.1} us  unanswered {}  snapshots {}  grew {grown} KiB  VmRSS {rss} KiB  VmHWM {peak} KiB",
            p99 as f64 / 1e3,
            report.unanswered(),
            taken.iter().sum::<u64>()
        );
        server.shutdown().unwrap();
    }
}

/// Sends one raw HTTP/1.1 request to the admin endpoint; the status line's code.
async fn raw_status(server: &Server, request: Vec<u8>) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.admin_addr().unwrap()).await.ok()?;
    stream.write_all(&request).await.ok()?;
    let mut head = vec![0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&head[..read]).to_string();
    text.split(' ').nth(1)?.parse().ok()
}

#[test]
fn a_flood_of_public_auction_reads_does_not_crowd_out_the_kill_switch() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    // Room for the whole flood: this test is about the operator queue, the
    // connection caps have their own below.
    (config.admin.connections_max, config.admin.per_address_max) = (512, 512);
    let server = start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let addr = server.admin_addr().unwrap();
    let statuses = runtime.block_on(async {
        let mut flood = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let request = format!("GET /public/auctions HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            let server_addr = addr;
            flood.spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut stream = tokio::net::TcpStream::connect(server_addr).await.ok()?;
                stream.write_all(request.as_bytes()).await.ok()?;
                let mut head = vec![0u8; 64];
                let read = stream.read(&mut head).await.ok()?;
                String::from_utf8_lossy(&head[..read]).split(' ').nth(1)?.parse::<u16>().ok()
            });
        }
        // The kill switch, asked while the flood is under way.
        let operator = admin(&server);
        let kill = tokio::task::spawn_blocking(move || operator.run(&AdminAction::Kill { account: "0002".into() }));
        (flood.join_all().await, kill.await.unwrap())
    });
    let (statuses, kill) = statuses;
    assert!(kill.is_ok(), "the kill switch was crowded out: {kill:?}");
    // Not one public read was refused for a full operator queue.
    assert!(statuses.iter().all(|status| *status == Some(200)), "{statuses:?}");
    server.shutdown().unwrap();
}

#[test]
fn a_request_body_over_the_limit_is_refused_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &Config::demo().on_free_ports());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let body = vec![b' '; carbonx::admin::BODY_MAX + 1024];
    let mut request = format!(
        "POST /transfer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        carbonx::config::DEMO_ADMIN_TOKEN,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let status = runtime.block_on(raw_status(&server, request));
    assert_eq!(status, Some(413));
    server.shutdown().unwrap();
}

/// A connection to the admin endpoint from `source`.
async fn admin_from(server: &Server, source: [u8; 4]) -> tokio::net::TcpStream {
    connect_to(server.admin_addr().unwrap(), source).await
}

/// Everything the server sends on `stream` until it closes it, and whether
/// it did so within `wait`.
async fn read_to_close(stream: &mut tokio::net::TcpStream, wait: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut text = Vec::new();
    let closed = tokio::time::timeout(wait, async {
        let mut chunk = [0u8; 512];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => text.extend_from_slice(&chunk[..read]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&text).into_owned(), closed)
}

#[test]
fn admin_connections_from_one_address_are_capped_and_the_operator_still_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    (config.admin.connections_max, config.admin.per_address_max) = (32, 8);
    config.admin.header_timeout_ms = 30_000;
    let server = start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // 20 silent connections from 127.0.0.2: 8 are held (their head may
        // take 30 s), the other 12 are answered 503 and closed at once.
        let mut silent = Vec::new();
        for _ in 0..20 {
            silent.push(admin_from(&server, [127, 0, 0, 2]).await);
        }
        // Read all of them at once for up to 3 s: the refused ones close
        // within it, the held ones stay open (and are kept open below).
        let mut reads = tokio::task::JoinSet::new();
        for mut stream in silent {
            reads.spawn(async move {
                let (text, closed) = read_to_close(&mut stream, Duration::from_secs(3)).await;
                (stream, text, closed)
            });
        }
        let (mut refused, mut held) = (0, Vec::new());
        for (stream, text, closed) in reads.join_all().await {
            if closed {
                assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
                assert!(text.contains("too many admin connections"), "{text:?}");
                refused += 1;
            } else {
                assert!(text.is_empty(), "a held connection was sent {text:?}");
                held.push(stream);
            }
        }
        assert_eq!((refused, held.len()), (12, 8), "connections past per_address_max are refused");
        // The operator, on another address, is not crowded out.
        let operator = admin(&server);
        let kill = tokio::task::spawn_blocking(move || operator.run(&AdminAction::Kill { account: "0002".into() }));
        let kill = tokio::time::timeout(Duration::from_secs(10), kill).await.expect("the kill switch hung").unwrap();
        assert!(kill.is_ok(), "the kill switch was crowded out: {kill:?}");
    });
    server.shutdown().unwrap();
}

#[test]
fn admin_connections_that_trickle_or_idle_are_closed_on_time() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::demo().on_free_ports();
    (config.admin.header_timeout_ms, config.admin.connection_timeout_ms) = (300, 1_500);
    let server = start(dir.path(), &config);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // Silent: closed after the header timeout, with nothing sent.
        let mut silent = admin_from(&server, [127, 0, 0, 1]).await;
        let (text, closed) = read_to_close(&mut silent, Duration::from_secs(3)).await;
        assert!(closed && !text.starts_with("HTTP/1.1 200"), "a silent connection stayed open: {text:?}");

        // A head sent a byte every 100 ms never completes within 300 ms.
        let mut slow_head = admin_from(&server, [127, 0, 0, 1]).await;
        let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        let trickle = async {
            for byte in head {
                if slow_head.write_all(&[*byte]).await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        };
        let cut = tokio::time::timeout(Duration::from_secs(6), trickle).await.unwrap_or(false);
        let (text, closed) = read_to_close(&mut slow_head, Duration::from_secs(3)).await;
        assert!(cut || (closed && !text.contains("alive")), "a trickled head was served: {text:?}");

        // A body sent a byte every 100 ms: closed at connection_timeout_ms.
        let mut slow_body = admin_from(&server, [127, 0, 0, 1]).await;
        let head = format!(
            "POST /transfer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
            carbonx::config::DEMO_ADMIN_TOKEN
        );
        slow_body.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let trickle = async {
            for _ in 0..100 {
                if slow_body.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(6), trickle).await;
        let (_, closed) = read_to_close(&mut slow_body, Duration::from_secs(3)).await;
        assert!(closed, "a trickled body kept its connection");
        assert!(started.elapsed() < Duration::from_secs(6), "closed only after {:?}", started.elapsed());

        // Kept alive after an answer: closed once idle past the header timeout.
        let mut kept = admin_from(&server, [127, 0, 0, 1]).await;
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let (text, closed) = read_to_close(&mut kept, Duration::from_secs(3)).await;
        assert!(text.starts_with("HTTP/1.1 200") && text.contains("alive"), "{text:?}");
        assert!(closed, "an idle kept-alive connection stayed open");
    });
    server.shutdown().unwrap();
}

#[test]
fn an_admin_request_head_over_the_limit_is_refused_431() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &Config::demo().on_free_ports());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let padding = "x".repeat(Config::demo().admin.header_bytes_max + 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\nConnection: close\r\n\r\n");
    let status = runtime.block_on(raw_status(&server, request.into_bytes()));
    assert_eq!(status, Some(431));
    // Within the limit, the same request is served.
    let request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(runtime.block_on(raw_status(&server, request.as_bytes().to_vec())), Some(200));
    server.shutdown().unwrap();
}
