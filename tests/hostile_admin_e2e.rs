//! Hostile clients of the admin endpoint end to end: request fields that
//! could panic a parser, public reads that could crowd out the kill switch,
//! bodies and heads over their limits, connections held, trickled or left
//! idle. Each test checks that the operator still gets in and the endpoint
//! stays up. Every wait is bounded.

mod support;
use carbonx::admin::client::{AdminAction, AdminError, AuctionAction};
use carbonx::config::Config;
use carbonx::serve::Server;
use std::time::Duration;
use std::time::Instant;
use support::hostile::{admin, connect_to, start};

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
