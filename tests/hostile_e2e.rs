//! Hostile order-entry clients end to end: a whole server in-process and
//! clients that break the rules on purpose (bytes chosen to break the
//! operator's pages, a client that never reads its replies, connections
//! that never log in, guessed passwords, floods). Each test checks that one
//! such client harms neither the operator's view nor the other users. The
//! market-data and admin-endpoint ones are `hostile_feed_e2e.rs` and
//! `hostile_admin_e2e.rs`. Every wait is bounded.

mod support;
use carbonx::admin::api::{SessionRow, SessionsAnswer};
use carbonx::admin::client::{AdminAction, AdminClient};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_gateway::client::Client;
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use carbonx_soup::packet::Packet;
use std::time::Duration;
use std::time::Instant;
use support::hostile::{admin, closed_within, connect_to, metric, start};
use support::session::{login, login_again};

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
