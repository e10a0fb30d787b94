//! Cancel-on-disconnect end to end: a whole server in-process, clients on
//! real sockets. A username configured for it loses its live orders
//! (Canceled `U`, on its own stream and on the feed) whenever its
//! connection ends: a dropped socket, a logout, the operator's disconnect;
//! a username without it keeps them. The cancels are journaled (a restart
//! keeps them cancelled), and they never touch the orders of the
//! username's next connection. Every wait is bounded.

mod support;
use carbonx::admin::client::{AdminAction, AdminClient};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_feed::book::BookBuilder;
use carbonx_feed::watch::Follower;
use carbonx_gateway::client::Client;
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use carbonx_soup::packet::Packet;
use std::path::Path;
use std::time::Duration;
use support::session::login_again;

const WAIT: Duration = Duration::from_secs(5);

fn start(dir: &Path) -> Server {
    let mut config = Config::demo().on_free_ports();
    config.gateway.users[0].cancel_on_disconnect = true; // DEMO01; DEMO02 keeps the default (off)
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(&config, &options).unwrap()
}

/// Enters a resting buy and waits for its Accepted (the username's stream
/// may first carry the cancels of its previous connection's orders).
async fn rest(client: &mut Client, token: &str, price: u32, firm: &str) {
    client.send(&Inbound::Enter(EnterOrder::limit(token, b'B', 10, "CEA", price, firm))).await.unwrap();
    loop {
        match client.next_message(WAIT).await.unwrap().1 {
            Outbound::Accepted(a) => return assert_eq!(&a.token[..token.len()], token.as_bytes()),
            Outbound::SystemEvent { .. } | Outbound::Canceled { reason: b'U', .. } => {}
            other => panic!("{token}: {other:?}"),
        }
    }
}

/// Every Canceled in a username's stream from sequence 1: (token, reason).
async fn cancels(server: &Server, user: &str) -> Vec<(String, char)> {
    let mut client = login_again(server.order_entry_addr(), user, 1).await;
    let mut seen = Vec::new();
    while let Ok((_, message)) = client.next_message(Duration::from_millis(300)).await {
        if let Outbound::Canceled { token, reason, .. } = message {
            seen.push((String::from_utf8_lossy(&token).trim_end().to_string(), char::from(reason)));
        }
    }
    seen
}

/// Polls the feed until it shows `n` resting orders (bounded).
async fn feed_shows(follower: &mut Follower, n: usize) -> bool {
    for _ in 0..100 {
        if follower.book.orders().len() == n {
            return true;
        }
        follower.poll(Duration::from_millis(50)).await.unwrap();
    }
    follower.book.orders().len() == n
}

#[test]
fn a_dropped_logged_out_or_kicked_session_loses_its_orders_only_when_configured_and_a_restart_keeps_that() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let admin =
        AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), carbonx::config::DEMO_ADMIN_TOKEN);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut follower = Follower::start(server.tcp_feed_addr().unwrap(), BookBuilder::new()).await.unwrap();
        let mut keeper = login_again(server.order_entry_addr(), "DEMO02", 0).await;
        rest(&mut keeper, "K1", 700_000, "0341").await;
        // A dropped socket.
        let mut one = login_again(server.order_entry_addr(), "DEMO01", 0).await;
        rest(&mut one, "D1", 700_100, "0001").await;
        rest(&mut one, "D2", 700_200, "0002").await;
        assert!(feed_shows(&mut follower, 3).await);
        drop(one);
        assert!(feed_shows(&mut follower, 1).await, "the dropped session's orders are still on the feed");
        // A logout; then reconnecting at once: the new connection's order stays.
        let mut two = login_again(server.order_entry_addr(), "DEMO01", 0).await;
        rest(&mut two, "L1", 700_300, "0003").await;
        two.send_packet(Packet::LogoutRequest).await.unwrap();
        let mut three = login_again(server.order_entry_addr(), "DEMO01", 0).await;
        rest(&mut three, "N1", 700_400, "0004").await;
        // The operator's disconnect.
        admin.run(&AdminAction::Disconnect { user: "DEMO01".into() }).unwrap();
        assert!(feed_shows(&mut follower, 1).await, "the kicked session's order is still on the feed");
        let seen = cancels(&server, "DEMO01").await;
        // A connection's orders are cancelled in book priority (D2 bids higher than D1).
        let expected: Vec<(String, char)> = ["D2", "D1", "L1", "N1"].iter().map(|t| (t.to_string(), 'U')).collect();
        assert_eq!(seen, expected, "each cancel once, after its own connection ended");
        drop(keeper);
        // DEMO02 (not configured) keeps its order after its connection ends.
        tokio::time::sleep(Duration::from_millis(200)).await;
        follower.poll(Duration::from_millis(200)).await.unwrap();
        assert_eq!(follower.book.orders().len(), 1);
    });
    // The cancels were journaled: after a restart only K1 rests.
    let engine = server.shutdown().unwrap();
    let before = engine.state_hash();
    // DEMO01's last connection above (reading its stream) ended too, with nothing to cancel.
    assert_eq!(engine.resting_count(), 1);
    let server = start(dir.path());
    let engine = server.shutdown().unwrap();
    assert_eq!(engine.resting_count(), 1);
    assert_eq!(engine.state_hash(), before, "a restart reproduces the cancels");
}
