//! Our real server against independent implementations: a captured session
//! of `carbonx serve` (in-process) decoded by Wireshark's tshark with no
//! Error expert info and fields equal to what was sent, and the PyPI
//! `nasdaq-protocols` SoupBinTCP client logging in, entering an order and
//! reading its Accepted. Both tools come from `scripts/test.sh`.

mod support;

use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_gateway::client::{Client, Received};
use carbonx_gateway::ouch::{CancelOrder, EnterOrder, Inbound, Outbound, ReplaceOrder};
use carbonx_soup::packet::{Packet, alpha};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::capture::{CaptureProxy, coalesce};

fn start() -> (Server, tempfile::TempDir) {
    let config = Config::demo().on_free_ports();
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { data_dir: dir.path().into(), fsync: FsyncMode::Never, config_dir: ".".into() };
    (Server::start(&config, &options).unwrap(), dir)
}

fn order(token: &str, side: u8, shares: u32, price: u32, firm: &str) -> EnterOrder {
    EnterOrder::limit(token, side, shares, "CEA", price, firm)
}

/// Reads replies until `count` sequenced messages arrived (bounded by time).
async fn read(client: &mut Client, count: usize) -> Vec<Outbound> {
    let mut out = Vec::new();
    while out.len() < count {
        out.push(client.next_message(Duration::from_secs(5)).await.unwrap().1);
    }
    out
}

#[test]
fn tshark_decodes_a_real_session_cleanly() {
    let (server, dir) = start();
    let proxy = CaptureProxy::start(server.order_entry_addr()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut other = Client::connect(server.order_entry_addr()).await.unwrap();
        assert!(matches!(other.login("DEMO02", "demo", "", 0).await.unwrap(), Received::LoginAccepted { .. }));
        other.send(&Inbound::Enter(order("MAKER", b'S', 4, 746_300, "0341"))).await.unwrap();
        read(&mut other, 1).await;
        let mut client = Client::connect(proxy.addr()).await.unwrap();
        assert!(matches!(client.login("DEMO01", "demo", "", 1).await.unwrap(), Received::LoginAccepted { .. }));
        read(&mut client, 1).await; // start of day
        client.send(&Inbound::Enter(order("TSHARK1", b'B', 10, 746_300, "0001"))).await.unwrap();
        read(&mut client, 2).await; // Accepted, Executed 4
        let replace = ReplaceOrder {
            existing: alpha("TSHARK1").unwrap(),
            replacement: alpha("TSHARK2").unwrap(),
            shares: 5,
            price: 740_000,
            tif: 99_999,
            display: b'Y',
            iso: b'N',
            min_qty: 0,
        };
        client.send(&Inbound::Replace(replace)).await.unwrap();
        read(&mut client, 1).await;
        client.send(&Inbound::Cancel(CancelOrder { token: alpha("TSHARK2").unwrap(), shares: 0 })).await.unwrap();
        client.send(&Inbound::Cancel(CancelOrder { token: alpha("TSHARK2").unwrap(), shares: 0 })).await.unwrap();
        client.send(&Inbound::Enter(order("BAD", b'B', 0, 746_300, "0001"))).await.unwrap();
        read(&mut client, 3).await; // Canceled, Cancel Reject, Rejected
        client.send_packet(Packet::ClientHeartbeat).await.unwrap();
        client.send_packet(Packet::LogoutRequest).await.unwrap();
        let _ = client.recv(Duration::from_secs(5)).await;
    });
    let chunks = proxy.finish();
    let path = dir.path().join("session.pcap");
    support::pcap::write_soup_pcap(&path, 7001, &coalesce(&chunks)).unwrap();
    let decoded = support::tshark::assert_tshark_clean(&path, 7001);
    let accepted = decoded.ouch_of_type('A').find(|p| p.ouch_text("ouch.order_token") == "TSHARK1").unwrap();
    assert_eq!(accepted.ouch_num("ouch.price"), 746_300);
    assert_eq!(accepted.ouch_num("ouch.shares"), 10);
    assert_eq!(accepted.ouch_text("ouch.stock"), "CEA");
    assert_eq!(accepted.ouch_char("ouch.buy_sell_indicator"), 'B');
    let executed = decoded.ouch_of_type('E').next().unwrap();
    assert_eq!((executed.ouch_num("ouch.executed_shares"), executed.ouch_num("ouch.execution_price")), (4, 746_300));
    for kind in ['U', 'C', 'I', 'J'] {
        assert!(decoded.ouch_of_type(kind).next().is_some(), "no {kind} decoded");
    }
    drop(server.shutdown());
}

#[test]
fn the_nasdaq_protocols_client_logs_in_and_reads_its_accepted() {
    let (server, dir) = start();
    let proxy = CaptureProxy::start(server.order_entry_addr()).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let client = Command::new(support::tshark::python_path())
        .arg(root.join("tests/python/ouch_client.py"))
        .args(["127.0.0.1", &proxy.port().to_string(), "PYORDER1"])
        .output()
        .expect("run ouch_client.py");
    let stdout = String::from_utf8_lossy(&client.stdout).to_string();
    assert!(client.status.success(), "{}\n{stdout}{}", client.status, String::from_utf8_lossy(&client.stderr));
    let json = support::tshark::Json::parse(stdout.trim()).expect("one JSON line");
    let field = |k: &str| json.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    assert_eq!(
        (field("type"), field("token"), field("price"), field("firm")),
        ("A".into(), "PYORDER1".into(), "746300".into(), "0001".into())
    );
    let path = dir.path().join("python.pcap");
    support::pcap::write_soup_pcap(&path, 7001, &coalesce(&proxy.finish())).unwrap();
    // nasdaq-protocols left-justifies the requested sequence number, which
    // tshark 4.0 flags; PROTOCOL §1 tells servers to accept it.
    support::tshark::assert_tshark_clean_allowing(&path, 7001, &["soupbintcp.req_seq_num.invalid"]);
    drop(server.shutdown());
}
