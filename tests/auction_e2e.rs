//! A one-way bidding auction end to end: announced through the admin
//! endpoint (the `carbonx admin` binary), bids over SoupBinTCP/OUCH from
//! several usernames, the allocation seen on OUCH (bidders and the
//! seller's username), on the ITCH TCP feed (one `Q` cross `I`, one `P`
//! per fill) and in `carbonx admin auction show`. The same auction is run
//! twice, once with a restart in the middle of the window; the allocation
//! must be the same. Every wait is bounded.

mod support;
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_feed::itch::{CrossTrade, Message};
use carbonx_gateway::client::Client;
use carbonx_gateway::ouch::{AuctionBid, CancelOrder, Inbound, Outbound};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::admin::cli;
use support::session::login;

const WAIT: Duration = Duration::from_secs(5);
/// The window: long enough for a restart in the middle, short for CI.
const WINDOW: &str = "+6s";

fn start(dir: &Path) -> Server {
    let config = Config::demo().on_free_ports();
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(&config, &options).unwrap()
}

fn cli_json(server: &Server, args: &[&str]) -> Value {
    let (code, out, err) = cli(server, args);
    assert_eq!(code, 0, "carbonx admin {args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap()
}

fn bid(token: &str, shares: u32, price: u32, account: &str) -> Inbound {
    let pad = |text: &str, out: &mut [u8]| {
        out.fill(b' ');
        out[..text.len()].copy_from_slice(text.as_bytes());
    };
    let mut message = AuctionBid { token: [0; 14], shares, stock: [0; 8], price, account: [0; 4], auction: [0; 8] };
    pad(token, &mut message.token);
    pad("CEA", &mut message.stock);
    pad(account, &mut message.account);
    pad("A1", &mut message.auction);
    Inbound::Bid(message)
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

/// Sends a bid: `None` when accepted (cross type `A`), else the reject reason.
async fn send_bid(client: &mut Client, message: Inbound) -> Option<u8> {
    client.send(&message).await.unwrap();
    match next(client).await {
        Outbound::Accepted(a) => {
            assert_eq!(a.cross_type, b'A', "an auction bid is accepted with cross type A");
            None
        }
        Outbound::Rejected { reason, .. } => Some(reason),
        other => panic!("unexpected {other:?}"),
    }
}

/// Every Executed (token, shares, price, liquidity) and Canceled (token,
/// shares, reason) in a username's stream from sequence 1.
async fn outcome(server: &Server, user: &str) -> Vec<String> {
    let mut client = login(server.order_entry_addr(), user, 1).await;
    let mut seen = Vec::new();
    while let Ok((_, message)) = client.next_message(Duration::from_millis(500)).await {
        let token = |t: &[u8; 14]| String::from_utf8_lossy(t).trim_end().to_string();
        match message {
            Outbound::Executed(x) => {
                seen.push(format!("E {} {} @ {} {}", token(&x.token), x.shares, x.price, char::from(x.liquidity)));
            }
            Outbound::Canceled { token: t, decrement, reason, .. } => {
                seen.push(format!("C {} {} {}", token(&t), decrement, char::from(reason)));
            }
            _ => {}
        }
    }
    seen
}

/// The ITCH feed from sequence 1 until quiet: each `Q` and `P` as text.
async fn feed_prints(server: &Server) -> Vec<String> {
    let mut client = carbonx_soup::client::Client::connect(server.tcp_feed_addr().unwrap()).await.unwrap();
    let answer = client.login("WATCH", "watch", "", 1).await.unwrap();
    assert!(matches!(answer, carbonx_soup::client::Received::LoginAccepted { .. }));
    let mut prints = Vec::new();
    while let Ok(received) = client.recv(Duration::from_millis(500)).await {
        let carbonx_soup::client::Received::Sequenced(_, bytes) = received else { continue };
        match Message::decode(&bytes).unwrap() {
            Message::CrossTrade(q) if q.cross_type == CrossTrade::INTRADAY => {
                prints.push(format!("Q {} @ {} I", q.shares, q.price));
            }
            Message::Trade(p) => prints.push(format!("P {} @ {} {}", p.shares, p.price, char::from(p.side))),
            _ => {}
        }
    }
    prints
}

/// Polls `auction show A1` until the auction has ended (bounded).
fn wait_for_the_end(server: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = cli_json(server, &["auction", "show", "A1"]);
        if shown["status"] == "ended" {
            return shown;
        }
        assert!(Instant::now() < deadline, "the auction did not end: {shown}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What a run of the auction leaves: the ranked bids and result as the
/// operator sees them, each username's fills and cancels, the feed's prints.
struct Outcome {
    shown: Value,
    streams: Vec<Vec<String>>,
    prints: Vec<String>,
}

/// Offered 200,000 t uniform from account 0001 (DEMO01) at a floor of the
/// previous close 74.63: bids of 60,000 @ 76.00, 80,000 @ 75.00, 50,000 @
/// 75.00 (later), a cancelled 10,000 @ 80.00, then 30,000 @ 74.63 (the
/// floor) and 74.62 (one tick below: `K`). Sold 200,000 at 74.63; the
/// marginal bid gets 10,000 of its 30,000.
fn run_auction(restart_in_the_window: bool) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let announce = ["auction", "announce", "A1", "CEA", "200000", "--seller", "0001", "--user", "DEMO01"];
    let announced = cli_json(&server, &[&announce[..], &["--end", WINDOW]].concat());
    assert_eq!((announced["floor"].as_str(), announced["cap"].as_str()), (Some("74.63"), Some("82.09")));
    let (code, _, err) = cli(&server, &[&announce[..], &["--end", WINDOW]].concat());
    assert!(code == 1 && err.contains("already used today"), "a second A1 must be refused: {err}");
    runtime.block_on(async {
        let (mut two, mut three) =
            (login(server.order_entry_addr(), "DEMO02", 0).await, login(server.order_entry_addr(), "DEMO03", 0).await);
        assert_eq!(send_bid(&mut two, bid("B1", 60_000, 760_000, "0341")).await, None);
        assert_eq!(send_bid(&mut three, bid("B2", 80_000, 750_000, "0681")).await, None);
        assert_eq!(send_bid(&mut two, bid("B3", 50_000, 750_000, "0342")).await, None);
        assert_eq!(send_bid(&mut three, bid("B4", 10_000, 800_000, "0682")).await, None);
        assert_eq!(send_bid(&mut three, bid("X1", 10, 800_000, "0001")).await, Some(b'L'), "not DEMO03's account");
        three.send(&Inbound::Cancel(CancelOrder { token: *b"B4            ", shares: 0 })).await.unwrap();
        assert!(matches!(next(&mut three).await, Outbound::Canceled { reason: b'U', .. }));
    });
    let open = cli_json(&server, &["auction", "list"]);
    assert_eq!(
        (open["auctions"][0]["status"].as_str(), open["auctions"][0]["live_bids"].as_u64()),
        (Some("open"), Some(3))
    );
    if restart_in_the_window {
        server.shutdown().unwrap();
        server = start(dir.path());
        let again = cli_json(&server, &["auction", "list"]);
        assert_eq!(again["auctions"][0]["live_bids"], open["auctions"][0]["live_bids"], "{again}");
    }
    runtime.block_on(async {
        let mut three = login(server.order_entry_addr(), "DEMO03", 0).await;
        assert_eq!(send_bid(&mut three, bid("B5", 30_000, 746_300, "0683")).await, None);
        assert_eq!(send_bid(&mut three, bid("B6", 30_000, 746_200, "0684")).await, Some(b'K'));
    });
    let shown = wait_for_the_end(&server);
    let outcome = runtime.block_on(async {
        let mut streams = Vec::new();
        for user in ["DEMO01", "DEMO02", "DEMO03"] {
            streams.push(outcome(&server, user).await);
        }
        Outcome { shown, streams, prints: feed_prints(&server).await }
    });
    let engine = server.shutdown().unwrap();
    engine.check_invariants();
    outcome
}

/// The parts of `auction show` that do not depend on the clock.
fn allocation(shown: &Value) -> Value {
    let mut view = shown.clone();
    for key in ["start", "end", "start_ns", "end_ns"] {
        view.as_object_mut().unwrap().remove(key);
    }
    view
}

#[test]
fn an_auction_over_the_wire_allocates_the_same_with_or_without_a_restart_in_its_window() {
    let straight = run_auction(false);
    let shown = &straight.shown;
    assert_eq!(shown["result"]["sold"], 200_000, "{shown}");
    assert_eq!(shown["result"]["price"], "74.63", "{shown}");
    assert_eq!(shown["result"]["winners"], 4, "{shown}");
    let ranked: Vec<String> = shown["ranked_bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| format!("{} {} {} {} {}", b["account"], b["price"], b["entered"], b["withdrawn"], b["filled"]))
        .collect();
    assert_eq!(
        ranked,
        [
            "\"0682\" \"80.00\" 10000 10000 0",
            "\"0341\" \"76.00\" 60000 0 60000",
            "\"0681\" \"75.00\" 80000 0 80000",
            "\"0342\" \"75.00\" 50000 0 50000",
            "\"0683\" \"74.63\" 30000 0 10000",
        ]
    );
    let [seller, two, three] = &straight.streams[..] else { panic!() };
    assert_eq!(
        seller,
        &["E A1 60000 @ 746300 H", "E A1 80000 @ 746300 H", "E A1 50000 @ 746300 H", "E A1 10000 @ 746300 H"]
    );
    assert_eq!(two, &["E B1 60000 @ 746300 H", "E B3 50000 @ 746300 H"]);
    assert_eq!(three, &["C B4 10000 U", "E B2 80000 @ 746300 H", "E B5 10000 @ 746300 H", "C B5 20000 T"]);
    assert_eq!(
        straight.prints,
        ["Q 200000 @ 746300 I", "P 60000 @ 746300 B", "P 80000 @ 746300 B", "P 50000 @ 746300 B", "P 10000 @ 746300 B"]
    );
    let restarted = run_auction(true);
    assert_eq!(allocation(&restarted.shown), allocation(&straight.shown));
    assert_eq!(restarted.streams, straight.streams);
    assert_eq!(restarted.prints, straight.prints);
}
