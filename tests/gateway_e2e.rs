//! End to end through real sockets on 127.0.0.1: a whole `carbonx` server
//! in-process (journal, engine thread, router, tokio gateway) and clients
//! speaking SoupBinTCP + OUCH. Every wait is bounded by a timeout.

mod support;
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_gateway::client::{Client, ClientError, Received};
use carbonx_gateway::ouch::{CancelOrder, EnterBlock, EnterOrder, Inbound, Outbound, PickOrder, ReplaceOrder};
use carbonx_soup::packet::{Packet, alpha};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

struct Running {
    server: Option<Server>,
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    config: Config,
}

impl Running {
    fn start(config: Config) -> Running {
        let config = config.on_free_ports();
        let dir = tempfile::tempdir().unwrap();
        let server = start_on(&config, dir.path());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Running { server: Some(server), dir, runtime, config }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().order_entry_addr()
    }

    /// A logged-in client (requested sequence 1: the whole day).
    fn login(&self, user: &str) -> Client {
        let addr = self.addr();
        self.runtime.block_on(support::session::login(addr, user, 1))
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Stops the server (returning its final state hash) and starts a new
    /// one on the same data directory and configuration.
    fn restart(&mut self) -> u64 {
        let hash = self.stop();
        self.server = Some(start_on(&self.config, self.dir.path()));
        hash
    }

    /// Stops the server; its final state hash.
    fn stop(&mut self) -> u64 {
        self.server.take().unwrap().shutdown().unwrap().state_hash()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown();
        }
    }
}

fn start_on(config: &Config, dir: &std::path::Path) -> Server {
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(config, &options).unwrap()
}

fn token(text: &str) -> [u8; 14] {
    alpha(text).unwrap()
}

fn order(tok: &str, side: u8, shares: u32, stock: &str, price: u32, firm: &str) -> EnterOrder {
    EnterOrder::limit(tok, side, shares, stock, price, firm)
}

/// The next sequenced message that is not a System Event.
async fn next(client: &mut Client) -> Outbound {
    loop {
        let (_, message) = client.next_message(WAIT).await.unwrap();
        if !matches!(message, Outbound::SystemEvent { .. }) {
            return message;
        }
    }
}

async fn expect_reject(client: &mut Client, message: Inbound, reason: u8) {
    client.send(&message).await.unwrap();
    match next(client).await {
        Outbound::Rejected { reason: got, .. } => assert_eq!(char::from(got), char::from(reason), "{message:?}"),
        other => panic!("expected reject {:?} for {message:?}, got {other:?}", char::from(reason)),
    }
}

#[test]
fn login_good_bad_password_wrong_session_and_second_login() {
    let running = Running::start(Config::demo());
    let addr = running.addr();
    running.block_on(async {
        let mut good = Client::connect(addr).await.unwrap();
        let Received::LoginAccepted { session, sequence } = good.login("DEMO01", "demo", "", 0).await.unwrap() else {
            panic!("not accepted")
        };
        assert!(session.starts_with(b"CX20"), "{:?}", String::from_utf8_lossy(&session));
        assert!(sequence >= 1);
        let mut bad = Client::connect(addr).await.unwrap();
        assert_eq!(bad.login("DEMO02", "wrong", "", 0).await.unwrap(), Received::LoginRejected(b'A'));
        let mut unknown = Client::connect(addr).await.unwrap();
        assert_eq!(unknown.login("NOBODY", "demo", "", 0).await.unwrap(), Received::LoginRejected(b'A'));
        let mut old = Client::connect(addr).await.unwrap();
        assert_eq!(old.login("DEMO02", "demo", "CX19990104", 0).await.unwrap(), Received::LoginRejected(b'S'));
        let mut second = Client::connect(addr).await.unwrap();
        assert_eq!(second.login("DEMO01", "demo", "", 0).await.unwrap(), Received::LoginRejected(b'S'));
        // Naming today's session explicitly works; after a logout the username is free again.
        let name = String::from_utf8_lossy(&session).to_string();
        let mut explicit = Client::connect(addr).await.unwrap();
        assert!(matches!(explicit.login("DEMO03", "demo", &name, 0).await.unwrap(), Received::LoginAccepted { .. }));
        good.send_packet(Packet::LogoutRequest).await.unwrap();
        // The failed logins above are answered after a delay, so the
        // server may have sent heartbeats meanwhile: skip them.
        let mut after_logout = good.recv(WAIT).await;
        for _ in 0..100 {
            if !matches!(after_logout, Ok(Received::Heartbeat)) {
                break;
            }
            after_logout = good.recv(WAIT).await;
        }
        assert!(matches!(after_logout, Err(ClientError::Closed)), "{after_logout:?}");
        let mut again = Client::connect(addr).await.unwrap();
        assert!(matches!(again.login("DEMO01", "demo", "", 0).await.unwrap(), Received::LoginAccepted { .. }));
    });
}

#[test]
fn enter_execute_replace_and_cancel_between_two_users() {
    let running = Running::start(Config::demo());
    let (mut seller, mut buyer) = (running.login("DEMO01"), running.login("DEMO02"));
    running.block_on(async {
        seller.send(&Inbound::Enter(order("S1", b'S', 10, "CEA", 746_300, "0001"))).await.unwrap();
        let Outbound::Accepted(accepted) = next(&mut seller).await else { panic!("no accept") };
        assert_eq!((accepted.token, accepted.shares, accepted.price), (token("S1"), 10, 746_300));
        assert_eq!((accepted.firm, accepted.state, accepted.cross_type), (*b"0001", b'L', b'N'));
        let maker_ref = accepted.order_ref;

        buyer.send(&Inbound::Enter(order("B1", b'B', 4, "CEA", 750_000, "0341"))).await.unwrap();
        assert!(matches!(next(&mut buyer).await, Outbound::Accepted(_)));
        let Outbound::Executed(taker) = next(&mut buyer).await else { panic!("no taker fill") };
        let Outbound::Executed(maker) = next(&mut seller).await else { panic!("no maker fill") };
        assert_eq!((taker.shares, taker.price, taker.liquidity), (4, 746_300, b'R'));
        assert_eq!((maker.token, maker.shares, maker.liquidity), (token("S1"), 4, b'A'));
        assert_eq!(maker.match_number, taker.match_number);

        // Replace down in size at the same price keeps the reference (priority kept).
        let replace = ReplaceOrder {
            existing: token("S1"),
            replacement: token("S1b"),
            shares: 3,
            price: 746_300,
            tif: 99_999,
            display: b'Y',
            iso: b'N',
            min_qty: 0,
        };
        seller.send(&Inbound::Replace(replace)).await.unwrap();
        let Outbound::Replaced(replaced) = next(&mut seller).await else { panic!("no replaced") };
        assert_eq!((replaced.order.token, replaced.previous_token), (token("S1b"), token("S1")));
        assert_eq!((replaced.order.shares, replaced.order.order_ref), (3, maker_ref));

        // Reduce, then cancel the rest, then a cancel of a dead order gets Cancel Reject.
        seller.send(&Inbound::Cancel(CancelOrder { token: token("S1b"), shares: 1 })).await.unwrap();
        assert!(matches!(next(&mut seller).await, Outbound::Canceled { decrement: 2, reason: b'U', .. }));
        seller.send(&Inbound::Cancel(CancelOrder { token: token("S1b"), shares: 0 })).await.unwrap();
        assert!(matches!(next(&mut seller).await, Outbound::Canceled { decrement: 1, reason: b'U', .. }));
        seller.send(&Inbound::Cancel(CancelOrder { token: token("S1b"), shares: 0 })).await.unwrap();
        assert!(matches!(next(&mut seller).await, Outbound::CancelReject { .. }));
    });
}

#[test]
fn ioc_never_rests_self_trade_is_prevented_and_resends_are_ignored() {
    let running = Running::start(Config::demo());
    let mut client = running.login("DEMO01");
    running.block_on(async {
        let mut ioc = order("I1", b'B', 5, "CEA21", 746_300, "0001");
        ioc.tif = 0;
        client.send(&Inbound::Enter(ioc)).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        assert!(matches!(next(&mut client).await, Outbound::Canceled { decrement: 5, reason: b'I', .. }));

        client.send(&Inbound::Enter(order("R1", b'S', 5, "CEA21", 746_300, "0002"))).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        client.send(&Inbound::Enter(order("R2", b'B', 5, "CEA21", 746_300, "0002"))).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        let cancelled = next(&mut client).await;
        assert!(matches!(cancelled, Outbound::Canceled { reason: b'Q', .. }), "{cancelled:?}");

        // A resend of a taken token is ignored without reply: the next reply is the next order's.
        client.send(&Inbound::Enter(order("R1", b'S', 5, "CEA21", 746_300, "0002"))).await.unwrap();
        client.send(&Inbound::Enter(order("R3", b'S', 1, "CEA21", 746_300, "0002"))).await.unwrap();
        let Outbound::Accepted(a) = next(&mut client).await else { panic!("no accept") };
        assert_eq!(a.token, token("R3"));
    });
}

/// A small market where every reject is easy to reach: a poor account, a
/// holding cap, three order slots, a throttle of 30 orders per test.
fn strict_config(dir: &std::path::Path) -> Config {
    let mut config = Config::demo();
    let header = "account,cash_yuan,CEA,CEA21,CEA22,CEA23,CEA24,CEA25,CCER";
    let rows = "0001,100.00,10,0,0,0,0,0,0\n0002,100000000.00,1000000,0,0,0,0,0,0\n0003,1000.00,0,0,0,0,0,0,0";
    std::fs::write(dir.join("accounts.csv"), format!("{header}\n{rows}\n")).unwrap();
    config.accounts.file = Some(dir.join("accounts.csv"));
    config.market.holding_cap = Some(1_000_050);
    config.market.orders_max = 3;
    config.gateway.users.truncate(2);
    config.gateway.drop_copy.clear(); // the demo desk names DEMO03..DEMO10
    config.gateway.users[0].accounts = vec!["0001-0002".into()];
    config.gateway.users[1].accounts = vec!["0003".into()];
    config.gateway.users[1].rate_per_sec = 1;
    config.gateway.users[1].burst = 2;
    config
}

#[test]
fn every_wire_reachable_reject_reason() {
    let setup = tempfile::tempdir().unwrap();
    let running = Running::start(strict_config(setup.path()));
    let mut client = running.login("DEMO01");
    running.block_on(async {
        let ok = || order("X", b'B', 1, "CEA", 746_300, "0002");
        let with = |f: &dyn Fn(&mut EnterOrder)| {
            let mut o = ok();
            f(&mut o);
            Inbound::Enter(o)
        };
        expect_reject(&mut client, with(&|o| o.firm = *b"0003"), b'L').await;
        expect_reject(&mut client, with(&|o| o.side = b'T'), b'i').await;
        expect_reject(&mut client, with(&|o| o.side = b'Q'), b'O').await;
        expect_reject(&mut client, with(&|o| o.shares = 0), b'Z').await;
        expect_reject(&mut client, with(&|o| o.shares = 100_000), b'Z').await;
        expect_reject(&mut client, with(&|o| o.stock = *b"CEA99   "), b'S').await;
        expect_reject(&mut client, with(&|o| o.price = 746_350), b'X').await;
        expect_reject(&mut client, with(&|o| o.price = 0), b'X').await;
        expect_reject(&mut client, with(&|o| o.price = 900_000), b'K').await;
        expect_reject(&mut client, with(&|o| o.tif = 5), b'O').await;
        expect_reject(&mut client, with(&|o| o.display = b'Q'), b'D').await;
        expect_reject(&mut client, with(&|o| o.min_qty = 3), b'N').await;
        expect_reject(&mut client, with(&|o| o.cross_type = b'X'), b'O').await;
        expect_reject(&mut client, with(&|o| o.iso = b'Y'), b'O').await;
        expect_reject(&mut client, with(&|o| o.price = 0x7FFF_FFFF), b'O').await; // market needs IOC
        expect_reject(&mut client, with(&|o| (o.firm, o.shares) = (*b"0001", 2)), b'n').await; // 149.26 > 100 yuan
        expect_reject(&mut client, with(&|o| (o.side, o.firm, o.shares) = (b'S', *b"0001", 11)), b'i').await;
        expect_reject(&mut client, with(&|o| o.shares = 60), b'm').await; // 1,000,000 + 60 > cap
        // Post-only that would trade: rest a sell, then a crossing post-only buy.
        client.send(&Inbound::Enter(order("SELL", b'S', 1, "CEA", 746_300, "0002"))).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        expect_reject(&mut client, with(&|o| (o.display, o.firm) = (b'P', *b"0001")), b'P').await;
        // Replace of an order that is not live; pick of a target that is not pickable.
        let replace = ReplaceOrder {
            existing: token("GONE"),
            replacement: token("NEW"),
            shares: 1,
            price: 746_300,
            tif: 99_999,
            display: b'Y',
            iso: b'N',
            min_qty: 0,
        };
        expect_reject(&mut client, Inbound::Replace(replace), b'U').await;
        let pick = PickOrder {
            token: token("PK"),
            side: b'B',
            shares: 1,
            stock: *b"CEA     ",
            account: *b"0002",
            target: 999,
        };
        expect_reject(&mut client, Inbound::Pick(pick), b'G').await;
        // Capacity: three order slots; the sell above holds one.
        for tok in ["F1", "F2"] {
            client.send(&Inbound::Enter(order(tok, b'B', 1, "CEA", 700_000, "0002"))).await.unwrap();
            assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        }
        expect_reject(&mut client, with(&|o| o.price = 700_000), b'F').await;
        // A block with an unknown counterparty account is an invalid field.
        let block = EnterBlock {
            token: token("BLK"),
            side: b'B',
            shares: 100_000,
            stock: *b"CEA     ",
            price: 746_300,
            account: *b"0002",
            counterparty: *b"ZZZZ",
            deal_id: *b"DEAL0001",
        };
        expect_reject(&mut client, Inbound::Block(block), b'O').await;
        // An unparsable OUCH message inside a valid frame: `O` under its token.
        client.send_packet(Packet::Unsequenced(b"OBADLEN-TOKEN1xx")).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Rejected { reason: b'O', token, .. } if token == *b"BADLEN-TOKEN1x"));

    });
}

/// PROTOCOL §5.2: the first failing field in wire order decides, the
/// intermarket sweep letter (offset 42) and a block order's counterparty
/// included.
#[test]
fn fields_are_checked_in_wire_order() {
    let running = Running::start(Config::demo());
    let mut client = running.login("DEMO01");
    running.block_on(async {
        let with = |f: &dyn Fn(&mut EnterOrder)| {
            let mut o = order("W", b'B', 1, "CEA", 746_300, "0002");
            f(&mut o);
            Inbound::Enter(o)
        };
        // Shares and display come before the sweep letter, minimum quantity after it.
        expect_reject(&mut client, with(&|o| (o.shares, o.iso) = (0, b'Y')), b'Z').await;
        expect_reject(&mut client, with(&|o| (o.display, o.iso) = (b'Q', b'Y')), b'D').await;
        expect_reject(&mut client, with(&|o| (o.iso, o.min_qty) = (b'Y', 3)), b'O').await;
        // A replace's sweep letter sits after its display: the existing token comes first.
        let replace = ReplaceOrder {
            existing: token("GONE"),
            replacement: token("NEW"),
            shares: 1,
            price: 746_300,
            tif: 99_999,
            display: b'Y',
            iso: b'Y',
            min_qty: 0,
        };
        expect_reject(&mut client, Inbound::Replace(replace), b'U').await;
        // A block's counterparty comes after its shares, stock and price.
        let block = EnterBlock {
            token: token("BLK"),
            side: b'B',
            shares: 99_999,
            stock: *b"CEA     ",
            price: 746_300,
            account: *b"0002",
            counterparty: *b"ZZZZ",
            deal_id: *b"DEAL0001",
        };
        expect_reject(&mut client, Inbound::Block(block), b'Z').await;
        expect_reject(&mut client, Inbound::Block(EnterBlock { shares: 100_000, stock: *b"CEA99   ", ..block }), b'S')
            .await;
        expect_reject(&mut client, Inbound::Block(EnterBlock { shares: 100_000, price: 746_350, ..block }), b'X').await;
        expect_reject(&mut client, Inbound::Block(EnterBlock { shares: 100_000, ..block }), b'O').await;
    });
}

/// Every sequenced message a fresh login from `from` receives, until `count` arrived.
async fn stream_from(addr: std::net::SocketAddr, user: &str, from: u64, count: usize) -> (u64, Vec<Outbound>) {
    let mut client = Client::connect(addr).await.unwrap();
    let Received::LoginAccepted { sequence, .. } = client.login(user, "demo", "", from).await.unwrap() else {
        panic!("login")
    };
    let mut messages = Vec::new();
    while messages.len() < count {
        let (seq, message) = client.next_message(WAIT).await.unwrap();
        assert_eq!(seq, sequence + messages.len() as u64, "gap or duplicate");
        messages.push(message);
    }
    logout(client).await;
    (sequence, messages)
}

#[test]
fn replay_after_reconnect_and_after_a_restart_gives_the_same_stream() {
    let mut running = Running::start(Config::demo());
    let mut client = running.login("DEMO04");
    let live: Vec<Outbound> = running.block_on(async {
        let mut live = Vec::new();
        while let Ok((_, message)) = client.next_message(Duration::from_millis(300)).await {
            live.push(message); // the start-of-day System Event
        }
        for n in 0..6u32 {
            let side = if n % 2 == 0 { b'S' } else { b'B' };
            let o = order(&format!("R{n}"), side, 3, "CEA22", 746_300, &format!("{:04}", 1021 + n % 3));
            client.send(&Inbound::Enter(o)).await.unwrap();
        }
        while let Ok((_, message)) = client.next_message(Duration::from_millis(500)).await {
            live.push(message);
        }
        logout(client).await;
        live
    });
    assert!(live.len() >= 10, "{live:?}");
    let total = live.len() as u64;
    let addr = running.addr();
    running.block_on(async {
        for from in [1, 2, 5, total] {
            let (sequence, replayed) = stream_from(addr, "DEMO04", from, (total + 1 - from) as usize).await;
            assert_eq!(sequence, from);
            assert_eq!(replayed[..], live[(from - 1) as usize..], "replay from {from}");
        }
        // 0 = only new messages; past the end = the real next number.
        for from in [0, total + 1, total + 100] {
            let mut c = Client::connect(addr).await.unwrap();
            let answer = c.login("DEMO04", "demo", "", from).await.unwrap();
            assert!(matches!(answer, Received::LoginAccepted { sequence, .. } if sequence == total + 1), "{answer:?}");
            logout(c).await;
        }
    });
    let before = running.restart();
    let addr = running.addr();
    let (_, after_restart) = running.block_on(stream_from(addr, "DEMO04", 1, total as usize));
    assert_eq!(after_restart, live, "the stream rebuilt from the journal differs");
    assert_eq!(running.stop(), before, "state hash changed across a restart");
}

#[test]
fn heartbeats_idle_timeout_and_login_timeout() {
    let mut config = Config::demo();
    (config.gateway.heartbeat_ms, config.gateway.idle_timeout_ms, config.gateway.login_timeout_ms) = (100, 600, 300);
    let running = Running::start(config);
    let addr = running.addr();
    running.block_on(async {
        let mut client = Client::connect(addr).await.unwrap();
        assert!(matches!(client.login("DEMO01", "demo", "", 0).await.unwrap(), Received::LoginAccepted { .. }));
        let started = std::time::Instant::now();
        let mut heartbeats = 0;
        let end = loop {
            match client.recv(WAIT).await {
                Ok(Received::Heartbeat) => heartbeats += 1,
                Ok(_) => {}
                Err(err) => break err,
            }
        };
        assert!(matches!(end, ClientError::Closed), "{end:?}");
        assert!(heartbeats >= 2, "{heartbeats} heartbeats");
        assert!(started.elapsed() >= Duration::from_millis(550), "closed after {:?}", started.elapsed());
        // A client that keeps sending heartbeats stays connected.
        let mut alive = Client::connect(addr).await.unwrap();
        assert!(matches!(alive.login("DEMO01", "demo", "", 0).await.unwrap(), Received::LoginAccepted { .. }));
        for _ in 0..10 {
            alive.send_packet(Packet::ClientHeartbeat).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        alive.send(&Inbound::Enter(order("ALIVE", b'B', 1, "CEA", 746_300, "0001"))).await.unwrap();
        assert!(matches!(next(&mut alive).await, Outbound::Accepted(_)));
        // No login at all: closed after the login timeout.
        let mut silent = Client::connect(addr).await.unwrap();
        assert!(matches!(silent.recv(WAIT).await, Err(ClientError::Closed)));
    });
}

/// The server closed the connection: an orderly end, or a reset when it
/// closed with our bytes still unread in its buffer (the kernel's RST).
fn closed<T>(received: Result<T, ClientError>) -> bool {
    match received {
        Err(ClientError::Closed) => true,
        Err(ClientError::Io(err)) => err.kind() == std::io::ErrorKind::ConnectionReset,
        _ => false,
    }
}

#[test]
fn connection_cap_and_garbage_bytes_close_only_the_offender() {
    let mut config = Config::demo();
    config.gateway.connections_max = 2;
    let running = Running::start(config);
    let addr = running.addr();
    let mut client = running.login("DEMO01");
    running.block_on(async {
        client.send(&Inbound::Enter(order("KEEP", b'S', 7, "CCER", 800_000, "0001"))).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        for garbage in [
            &[0xFF, 0xFF, 1, 2, 3][..],    // length out of range
            &[0, 0][..],                   // zero length
            &[0, 3, b'U', b'O', b'x'][..], // data before login
            &[0, 1, b'Q'][..],             // unknown packet type
        ] {
            let mut bad = Client::connect(addr).await.unwrap();
            bad.send_raw(garbage).await.unwrap();
            assert!(closed(bad.recv(WAIT).await), "{garbage:?}");
        }
        // After login, an unknown packet type closes the connection too.
        // (The closed connections give their permits back as their tasks
        // end, just after the client sees the close: retry, bounded.)
        let mut second = None;
        for _ in 0..50 {
            let mut client = Client::connect(addr).await.unwrap();
            if matches!(client.login("DEMO02", "demo", "", 0).await, Ok(Received::LoginAccepted { .. })) {
                second = Some(client);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut second = second.expect("a second connection within the cap");
        // Two connections are open: a third is closed at once.
        let mut third = Client::connect(addr).await.unwrap();
        assert!(closed(third.recv(WAIT).await));
        second.send_raw(&[0, 1, b'Q']).await.unwrap();
        loop {
            match second.recv(WAIT).await {
                Err(err) => break assert!(matches!(err, ClientError::Closed), "{err:?}"),
                Ok(_) => continue,
            }
        }
        // The accepted order is untouched: it still trades.
        client.send(&Inbound::Enter(order("TAKE", b'B', 7, "CCER", 800_000, "0002"))).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        let mut fills = 0;
        while fills < 2 {
            if let Outbound::Executed(e) = next(&mut client).await {
                assert_eq!(e.shares, 7);
                fills += 1;
            }
        }
    });
}

#[test]
fn the_throttle_rejects_orders_but_never_cancels() {
    let setup = tempfile::tempdir().unwrap();
    let running = Running::start(strict_config(setup.path()));
    let mut throttled = running.login("DEMO02");
    running.block_on(async {
        // Throttle: DEMO02 may send 2 at once; the third is `V`, a cancel is never throttled.
        for tok in ["T1", "T2"] {
            let o = order(tok, b'B', 1, "CEA", 1_000_000, "0003");
            throttled.send(&Inbound::Enter(o)).await.unwrap();
            assert!(matches!(next(&mut throttled).await, Outbound::Rejected { reason: b'K', .. }));
        }
        expect_reject(&mut throttled, Inbound::Enter(order("T3", b'B', 1, "CEA", 746_300, "0003")), b'V').await;
        throttled.send(&Inbound::Cancel(CancelOrder { token: token("T1"), shares: 0 })).await.unwrap();
        assert!(matches!(next(&mut throttled).await, Outbound::CancelReject { .. }));
    });
}

#[test]
fn the_roll_ends_the_session_and_the_next_day_starts_from_one() {
    let running = Running::start(Config::demo());
    let mut client = running.login("DEMO05");
    let addr = running.addr();
    let first_session = running.block_on(async {
        client.send(&Inbound::Enter(order("DAY1", b'B', 2, "CEA", 746_300, "1361"))).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        let mut probe = Client::connect(addr).await.unwrap();
        let Received::LoginAccepted { session, .. } = probe.login("DEMO06", "demo", "", 0).await.unwrap() else {
            panic!("login")
        };
        session
    });
    running.server.as_ref().unwrap().submit(vec![carbonx_engine::Command::Roll]).unwrap();
    running.block_on(async {
        // The resting order expires at the close, end of day follows, then End of Session.
        assert!(matches!(next(&mut client).await, Outbound::Canceled { reason: b'T', .. }));
        let (_, end_of_day) = client.next_message(WAIT).await.unwrap();
        assert_eq!(end_of_day, Outbound::SystemEvent { timestamp: end_of_day_ts(&end_of_day), code: b'E' });
        assert!(matches!(client.next_message(WAIT).await, Err(ClientError::Closed)));
        // The new day: a new session name, its stream starts at 1 with start of day.
        let mut again = Client::connect(addr).await.unwrap();
        let Received::LoginAccepted { session, .. } = again.login("DEMO05", "demo", "", 1).await.unwrap() else {
            panic!("login")
        };
        assert_ne!(session, first_session);
        let (seq, start) = again.next_message(WAIT).await.unwrap();
        assert!(seq == 1 && matches!(start, Outbound::SystemEvent { code: b'S', .. }), "{seq} {start:?}");
    });
}

fn end_of_day_ts(message: &Outbound) -> u64 {
    match message {
        Outbound::SystemEvent { timestamp, .. } => *timestamp,
        _ => 0,
    }
}

/// Logs out and waits until the server has closed the session (a new login
/// of the same username before that is, rightly, a second login).
async fn logout(mut client: Client) {
    client.send_packet(Packet::LogoutRequest).await.unwrap();
    for _ in 0..1_000 {
        if client.recv(WAIT).await.is_err() {
            return;
        }
    }
    panic!("the server did not close the session after a logout");
}

/// PROTOCOL §4.9: a message under a taken token is ignored without reply,
/// whatever the gateway thinks of it (entitlement, side letter, throttle).
#[test]
fn a_resent_token_gets_no_reply_whatever_the_gateway_thinks_of_it() {
    let running = Running::start(Config::demo());
    let mut client = running.login("DEMO02");
    running.block_on(async {
        client.send(&Inbound::Enter(order("PQ1", b'B', 1, "CEA", 746_300, "0341"))).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(a) if a.token == token("PQ1")));
        let not_entitled = order("PQ1", b'B', 1, "CEA", 746_300, "0001");
        let bad_side = order("PQ1", b'Q', 1, "CEA", 746_300, "0341");
        let block = EnterBlock {
            token: token("PQ1"),
            side: b'B',
            shares: 100_000,
            stock: *b"CEA     ",
            price: 746_300,
            account: *b"0001",
            counterparty: *b"0342",
            deal_id: *b"DEAL0001",
        };
        for resend in [Inbound::Enter(not_entitled), Inbound::Enter(bad_side), Inbound::Block(block)] {
            client.send(&resend).await.unwrap();
        }
        // The next reply is the next token's: the resends got none.
        client.send(&Inbound::Enter(order("PQ2", b'B', 1, "CEA", 746_300, "0001"))).await.unwrap();
        let reply = next(&mut client).await;
        assert!(matches!(&reply, Outbound::Rejected { token: t, reason: b'L', .. } if *t == token("PQ2")), "{reply:?}");
    });
    // A throttled resend is ignored too (DEMO02 may send two at once here).
    let setup = tempfile::tempdir().unwrap();
    let running = Running::start(strict_config(setup.path()));
    let mut client = running.login("DEMO02");
    running.block_on(async {
        client.send(&Inbound::Enter(order("T1", b'B', 1, "CEA", 746_300, "0003"))).await.unwrap();
        assert!(matches!(next(&mut client).await, Outbound::Accepted(_)));
        for firm in ["0001", "0003"] {
            client.send(&Inbound::Enter(order("T1", b'B', 1, "CEA", 746_300, firm))).await.unwrap();
        }
        expect_reject(&mut client, Inbound::Enter(order("T2", b'B', 1, "CEA", 746_300, "0003")), b'V').await;
    });
}
