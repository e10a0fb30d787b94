//! Drop copy end to end: a risk desk logs in on the read-only drop-copy
//! port and receives, in one sequenced stream, byte for byte every OUCH
//! message of the usernames assigned to it and nothing of the others;
//! it replays from any sequence number without gap or duplicate, a wrong
//! password is refused, and a desk that sends an order is disconnected
//! without the order reaching the market. Every wait is bounded.

mod support;
use carbonx::admin::client::{AdminAction, AdminClient};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_gateway::client::{Client, ClientError, Received};
use carbonx_gateway::config::DropCopyConfig;
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use carbonx_soup::packet::Packet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::session::{login, try_login};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(400);

fn start(dir: &Path) -> Server {
    let mut config = Config::demo().on_free_ports();
    config.gateway.drop_copy = vec![DropCopyConfig {
        name: "RISK01".into(),
        password_hash: carbonx_soup::secret::hash_password(b"desk").unwrap(),
        users: vec!["DEMO01".into(), "DEMO02".into()],
    }];
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(&config, &options).unwrap()
}

/// Sends an order and waits for its answer (skipping fills of earlier orders).
async fn enter(client: &mut Client, token: &str, side: u8, price: u32, firm: &str) {
    client.send(&Inbound::Enter(EnterOrder::limit(token, side, 10, "CEA", price, firm))).await.unwrap();
    loop {
        match client.next_message(WAIT).await.unwrap().1 {
            Outbound::Accepted(a) if a.token.starts_with(token.as_bytes()) => return,
            Outbound::Rejected { .. } => panic!("{token} rejected"),
            _ => {}
        }
    }
}

/// Every sequenced message from `from` until the stream goes quiet: (sequence, bytes).
async fn read_raw(addr: SocketAddr, user: &str, password: &str, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut client = try_login(addr, user, password, from).await.unwrap().0.into_soup();
    let mut seen = Vec::new();
    while let Ok(received) = client.recv(QUIET).await {
        if let carbonx_soup::client::Received::Sequenced(seq, bytes) = received {
            seen.push((seq, bytes.to_vec()));
        }
    }
    let _ = client.send_packet(Packet::LogoutRequest).await;
    seen
}

/// True when `merged` is an interleaving of `a` and `b`, each in its order.
fn interleaves(merged: &[Vec<u8>], a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    let (mut i, mut j) = (0, 0);
    for message in merged {
        if a.get(i) == Some(message) {
            i += 1;
        } else if b.get(j) == Some(message) {
            j += 1;
        } else {
            return false;
        }
    }
    i == a.len() && j == b.len()
}

fn payloads(stream: &[(u64, Vec<u8>)]) -> Vec<Vec<u8>> {
    stream.iter().map(|(_, bytes)| bytes.clone()).collect()
}

#[test]
fn a_desk_gets_exactly_its_users_messages_replays_from_any_number_and_cannot_trade() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (entry, desk) = (server.order_entry_addr(), server.drop_copy_addr().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        assert_eq!(try_login(desk, "RISK01", "wrong", 1).await.err(), Some(b'A'), "wrong password");
        assert_eq!(try_login(desk, "DEMO01", "demo", 1).await.err(), Some(b'A'), "a user is not a desk");
        assert_eq!(try_login(entry, "RISK01", "desk", 1).await.err(), Some(b'A'), "a desk cannot enter orders");
        let mut live_desk = try_login(desk, "RISK01", "desk", 1).await.unwrap().0;
        let (mut one, mut two) = (login(entry, "DEMO01", 0).await, login(entry, "DEMO02", 0).await);
        let mut three = login(entry, "DEMO03", 0).await;
        enter(&mut one, "A1", b'S', 746_300, "0001").await;
        enter(&mut two, "B1", b'B', 746_300, "0341").await; // trades with A1
        enter(&mut two, "B2", b'B', 740_000, "0342").await;
        enter(&mut three, "C1", b'B', 740_000, "0681").await; // not copied
        enter(&mut three, "C2", b'S', 740_000, "0682").await; // trades with B2 (older): DEMO02's fill is copied
        enter(&mut one, "A2", b'B', 700_000, "0002").await;
        // The live desk receives while trading happens.
        let mut live = 0;
        while let Ok(received) = live_desk.recv(QUIET).await {
            live += usize::from(matches!(received, Received::Sequenced(..)));
        }
        // The desk cannot enter orders on its port: it is disconnected.
        live_desk.send(&Inbound::Enter(EnterOrder::limit("X1", b'B', 10, "CEA", 700_000, "0001"))).await.unwrap();
        let closed = loop {
            match live_desk.recv(WAIT).await {
                Err(ClientError::Closed | ClientError::Io(_)) => break true,
                Err(_) => break false,
                Ok(_) => {}
            }
        };
        assert!(closed, "a desk that sends data is disconnected");
        drop((one, two, three));
        let copied = read_raw(desk, "RISK01", "desk", 1).await;
        assert_eq!(live, copied.len(), "the live desk and the replay see the same stream");
        let numbers: Vec<u64> = copied.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(numbers, (1..=copied.len() as u64).collect::<Vec<_>>(), "one sequence, no gap");
        let (a, b) = (read_raw(entry, "DEMO01", "demo", 1).await, read_raw(entry, "DEMO02", "demo", 1).await);
        assert!(interleaves(&payloads(&copied), &payloads(&a), &payloads(&b)), "not a byte-exact copy");
        let others = read_raw(entry, "DEMO03", "demo", 1).await;
        let theirs: Vec<_> = others.iter().filter(|(_, m)| m[0] != b'S').map(|(_, m)| m.clone()).collect();
        assert!(!theirs.is_empty() && theirs.iter().all(|m| !payloads(&copied).contains(m)), "DEMO03 leaked");
        // Replay from the middle: exactly the rest.
        let middle = copied.len() as u64 / 2;
        let rest = read_raw(desk, "RISK01", "desk", middle).await;
        assert_eq!(rest, copied[middle as usize - 1..].to_vec());
    });
    let sessions =
        AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), carbonx::config::DEMO_ADMIN_TOKEN)
            .run(&AdminAction::Sessions)
            .unwrap();
    assert!(sessions.contains("\"RISK01\"") && sessions.contains("\"drop_copy\": true"), "{sessions}");
    // A desk has a stream like a user's: the operator can end its connection.
    let kicked = runtime.block_on(async {
        let mut desk = try_login(desk, "RISK01", "desk", 0).await.unwrap().0;
        let admin =
            AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), carbonx::config::DEMO_ADMIN_TOKEN);
        tokio::task::spawn_blocking(move || admin.run(&AdminAction::Disconnect { user: "RISK01".into() }))
            .await
            .unwrap()
            .unwrap();
        loop {
            match desk.recv(WAIT).await {
                Err(ClientError::Timeout) => break false,
                Err(_) => break true,
                Ok(_) => {}
            }
        }
    });
    assert!(kicked, "the operator's disconnect did not end the desk's connection");
    let engine = server.shutdown().unwrap();
    // X1 never reached the market: C1's order (0681) and A2 rest, nothing of 0001 bought at 70.00 but A2 (0002).
    assert_eq!(engine.resting_count(), 2);
}
