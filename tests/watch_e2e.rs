//! `carbonx watch --once` against a running server: a listing trade, a
//! resting order, a block trade and an auction, then the binary's frame
//! must show the band, the last trade, the volume by method, the top
//! levels and the auction (from the feed and the public list). Also
//! `--from-snapshot`, and a clear failure when the feed is unreachable.
//! Every wait is bounded.

mod support;
use carbonx::admin::client::{AdminAction, AdminClient, AuctionAction};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_gateway::client::Client;
use carbonx_gateway::ouch::{AuctionBid, EnterBlock, EnterOrder, Inbound, Outbound};
use std::process::Command;
use std::time::{Duration, Instant};
use support::session::login;

const WAIT: Duration = Duration::from_secs(5);

fn start(dir: &std::path::Path) -> Server {
    let config = Config::demo().on_free_ports();
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(&config, &options).unwrap()
}

fn pad<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    out[..text.len()].copy_from_slice(text.as_bytes());
    out
}

/// Sends and waits for the Accepted.
async fn accepted(client: &mut Client, message: Inbound) {
    client.send(&message).await.unwrap();
    loop {
        match client.next_message(WAIT).await.unwrap().1 {
            Outbound::Accepted(_) => return,
            Outbound::Rejected { reason, .. } => panic!("rejected {}", char::from(reason)),
            _ => {}
        }
    }
}

fn block(token: &str, side: u8, account: &str, counterparty: &str) -> Inbound {
    Inbound::Block(EnterBlock {
        token: pad(token),
        side,
        shares: 100_000,
        stock: pad("CEA"),
        price: 750_000,
        account: pad(account),
        counterparty: pad(counterparty),
        deal_id: pad("DEAL1"),
    })
}

/// Runs `carbonx watch` with `args`: (exit code, stdout, stderr).
fn watch(server: &Server, args: &[&str]) -> (i32, String, String) {
    let feed = server.tcp_feed_addr().unwrap().to_string();
    let snapshot = server.snapshot_addr().unwrap().to_string();
    let admin = server.admin_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["watch", "--feed", &feed, "--snapshot", &snapshot, "--admin", &admin])
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn watch_once_shows_band_last_trade_volumes_levels_and_the_auction() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let admin =
        AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), carbonx::config::DEMO_ADMIN_TOKEN);
    let announce = AuctionAction::Announce {
        id: "A1".into(),
        stock: "CEA".into(),
        qty: 200_000,
        seller: "0001".into(),
        user: "DEMO01".into(),
        start: "now".into(),
        end: "+2s".into(),
        pricing: "uniform".into(),
        floor: "close".into(),
    };
    admin.run(&AdminAction::Auction { action: announce }).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (mut one, mut two) =
            (login(server.order_entry_addr(), "DEMO01", 0).await, login(server.order_entry_addr(), "DEMO02", 0).await);
        accepted(&mut one, Inbound::Enter(EnterOrder::limit("S1", b'S', 10, "CEA", 746_300, "0002"))).await;
        accepted(&mut two, Inbound::Enter(EnterOrder::limit("B1", b'B', 10, "CEA", 746_300, "0341"))).await;
        accepted(&mut two, Inbound::Enter(EnterOrder::limit("B2", b'B', 5, "CEA", 740_000, "0342"))).await;
        accepted(&mut one, block("K1", b'S', "0003", "0343")).await;
        accepted(&mut two, block("K2", b'B', "0343", "0003")).await;
        let bid = AuctionBid {
            token: pad("A1BID"),
            shares: 60_000,
            stock: pad("CEA"),
            price: 750_000,
            account: pad("0344"),
            auction: pad("A1"),
        };
        accepted(&mut two, Inbound::Bid(bid)).await;
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while !admin.run(&AdminAction::Auction { action: AuctionAction::List }).unwrap().contains("\"ended\"") {
        assert!(Instant::now() < deadline, "the auction did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out, err) = watch(&server, &["--once"]);
    assert_eq!(code, 0, "{out}{err}");
    let cea = out.lines().find(|l| l.starts_with("CEA ")).unwrap_or_else(|| panic!("no CEA line:\n{out}"));
    for expected in [
        "[T]",
        "ref 74.63  band 67.17..82.09",
        "last 74.63 x 10 t",
        "volume 10 t (block 100000 t, auction 60000 t)",
        "auction sold 60000 t @ 75.00",
    ] {
        assert!(cea.contains(expected), "{expected:?} missing in {cea:?}\n{out}");
    }
    let turnover = "turnover 746.30 yuan (block 7500000.00 yuan, auction 4500000.00 yuan)";
    assert!(out.lines().any(|l| l.trim_start() == turnover), "{turnover:?} missing:\n{out}");
    assert!(out.contains("5 t @    74.00"), "the resting bid is not in the levels:\n{out}");
    let auction = out.lines().find(|l| l.trim_start().starts_with("A1 ")).unwrap_or_else(|| panic!("{out}"));
    assert!(auction.contains("ended") && auction.contains("sold 60000 t @ 75.00"), "{auction}");
    // Late join: the book is the same, the volumes count from the join.
    let (code, late, _) = watch(&server, &["--once", "--from-snapshot"]);
    assert_eq!(code, 0);
    assert!(late.contains("joined from a snapshot") && late.contains("5 t @    74.00"), "{late}");
    assert!(late.contains("volume 0 t"), "{late}");
    let (code, err) = watch_into_closed_pipe(&server);
    assert_eq!(code, 0, "a reader that went away ends the watch quietly: {err}");
    assert!(!err.contains("panicked"), "{err}");
    drop(server.shutdown().unwrap());
    let (code, _, err) = watch_unreachable();
    assert_ne!(code, 0);
    assert!(err.contains("carbonx: watch:"), "{err}");
}

/// `carbonx watch --once | head -0`: standard output is a pipe whose reader
/// has gone before the frame is written. (exit code, stderr)
fn watch_into_closed_pipe(server: &Server) -> (i32, String) {
    let feed = server.tcp_feed_addr().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["watch", "--once", "--feed", &feed])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `carbonx watch` against a port nobody listens on.
fn watch_unreachable() -> (i32, String, String) {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let out =
        Command::new(env!("CARGO_BIN_EXE_carbonx")).args(["watch", "--once", "--feed", &unused]).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}
