//! Hand-made seed inputs: one or a few valid inputs per target, so that
//! each fuzzer starts from the formats instead of discovering them.

use carbonx::config::Config;
use carbonx::serve::snapshot_file::SnapshotFile;
use carbonx_engine::accounts::AccountTable;
use carbonx_engine::journal::{self, Record};
use carbonx_engine::{
    AccountId, AnnounceAuction, Asset, AuctionBid, AuctionId, Cancel, Command, Engine, EngineConfig, FloorRule,
    InstrumentId, NewBlock, OrderId, Pick, Pricing, Qty, Replace, Seq, Side, StockCode, Timestamp, Token, Transfer,
    UserId,
};
use carbonx_feed::moldudp::{Packer, ReRequest};
use carbonx_gateway::ouch::{AuctionBid as OuchBid, CancelOrder, EnterBlock, EnterOrder, Inbound, PickOrder};
use carbonx_gateway::ouch::{ReplaceOrder, pad};
use carbonx_soup::packet::{LoginRequest, Packet, session_name};

/// The seeds of the target called `name`.
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    match name {
        "soup_packet" => vec![packets(&every_packet())],
        "soup_login" => vec![packets(&[Packet::LoginRequest(login()), Packet::Unsequenced(&enter().encode())])],
        "ouch_inbound" => inbound().iter().map(encoded).collect(),
        "gateway_session" => vec![session_script()],
        "moldudp_rerequest" => moldudp(),
        "admin_request" => admin(),
        "journal_record" => journal(),
        "snapshot_file" => snapshot(),
        "config_toml" => {
            vec![Config::demo().to_toml().into_bytes(), std::fs::read("carbonx.toml").expect("carbonx.toml")]
        }
        other => panic!("no seeds for {other}"),
    }
}

fn login() -> LoginRequest {
    LoginRequest { username: *b"DEMO01", password: *b"demo      ", session: [b' '; 10], sequence: 1 }
}

fn enter() -> EnterOrder {
    EnterOrder::limit("T1", b'B', 100, "CEA", 700_000, "0001")
}

fn every_packet() -> Vec<Packet<'static>> {
    vec![
        Packet::LoginRequest(login()),
        Packet::Unsequenced(b"X0123456789abcd\0\0\0\0"),
        Packet::ClientHeartbeat,
        Packet::Debug(b"hello"),
        Packet::LoginAccepted { session: session_name(20_261_124), sequence: 7 },
        Packet::LoginRejected(b'A'),
        Packet::Sequenced(b"S..."),
        Packet::ServerHeartbeat,
        Packet::EndOfSession,
        Packet::LogoutRequest,
    ]
}

fn packets(list: &[Packet<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    list.iter().for_each(|p| p.encode(&mut out));
    out
}

fn inbound() -> Vec<Inbound> {
    let token = pad("T2");
    vec![
        Inbound::Enter(enter()),
        Inbound::Replace(ReplaceOrder {
            existing: pad("T1"),
            replacement: token,
            shares: 50,
            price: 710_000,
            tif: 99_999,
            display: b'Y',
            iso: b'N',
            min_qty: 0,
        }),
        Inbound::Cancel(CancelOrder { token, shares: 0 }),
        Inbound::Block(EnterBlock {
            token,
            side: b'S',
            shares: 150_000,
            stock: pad("CEA"),
            price: 700_000,
            account: *b"0001",
            counterparty: *b"0002",
            deal_id: *b"DEAL0001",
        }),
        Inbound::Pick(PickOrder { token, side: b'B', shares: 10, stock: pad("CEA"), account: *b"0001", target: 42 }),
        Inbound::Bid(OuchBid {
            token,
            shares: 1_000,
            stock: pad("CEA"),
            price: 650_000,
            account: *b"0002",
            auction: *b"A1      ",
        }),
    ]
}

fn encoded(message: &Inbound) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode_into(&mut out);
    out
}

/// Stream next 5; login; each inbound message; two seconds pass; heartbeat; logout.
fn session_script() -> Vec<u8> {
    let mut script = vec![4];
    piece(&mut script, &packets(&[Packet::LoginRequest(login())]));
    for message in inbound() {
        piece(&mut script, &packets(&[Packet::Unsequenced(&encoded(&message))]));
    }
    piece(&mut script, &packets(&[Packet::ClientHeartbeat]));
    script.extend_from_slice(&[2, 20]);
    piece(&mut script, &packets(&[Packet::LogoutRequest]));
    script
}

/// Script steps that receive `bytes`, at most 64 per step.
fn piece(script: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.chunks(64) {
        script.extend_from_slice(&[0, (chunk.len() - 1) as u8]);
        script.extend_from_slice(chunk);
    }
}

fn moldudp() -> Vec<Vec<u8>> {
    let session = session_name(20_261_124);
    let request = ReRequest { session, sequence: 3, count: 2 }.encode().to_vec();
    let mut packer = Packer::new(session, 3);
    for message in [&b"S\0\0\0\0\0\0O"[..], b"A0123456789", b""] {
        packer.push(message).expect("fits");
    }
    vec![request, packer.datagram().to_vec(), packer.heartbeat().to_vec(), packer.end_of_session().to_vec()]
}

fn admin() -> Vec<Vec<u8>> {
    let tagged = |tag: u8, text: &str| [&[tag][..], text.as_bytes()].concat();
    vec![
        tagged(0, r#"{"account":"0001","asset":"cash","amount":"-12.05"}"#),
        tagged(0, r#"{"account":"0002","asset":"CEA","amount":"100"}"#),
        tagged(
            1,
            r#"{"id":"A1","stock":"CEA","seller":"0001","user":"DEMO01","qty":100000,"start":"+90s","end":"10:30:15","pricing":"uniform","floor":"minus10"}"#,
        ),
        tagged(2, "book/CEA?levels=5"),
        tagged(2, "auction/A1"),
        tagged(3, "+10m"),
        tagged(3, "09:59"),
        tagged(3, "1000.5"),
    ]
}

fn commands() -> Vec<Command> {
    let (user, account, stock) = (UserId::new(1), AccountId::new(2), StockCode::from_text("CEA").expect("CEA"));
    let token = Token::from_text("tok-1").expect("a token");
    vec![
        Command::demo_order("tok-1", 2, Side::Buy, 100, 7_463),
        Command::Cancel(Cancel { user, token, qty: Qty::new(4) }),
        Command::Replace(Replace {
            user,
            token,
            new_token: Token::from_text("tok-2").expect("a token"),
            qty: Qty::new(50),
            price: 746_300,
            tif: 99_999,
            display: b'Y',
            iso: b'N',
            min_qty: 0,
        }),
        Command::Clock,
        Command::Roll,
        Command::Halt(InstrumentId::new(1)),
        Command::Resume(InstrumentId::new(1)),
        Command::CancelAccount(account),
        Command::CancelUser(user),
        Command::Transfer(Transfer { request: 9, account, asset: Asset::Cash, amount: -1_205 }),
        Command::NewBlock(NewBlock {
            user,
            token,
            account,
            counterparty: Some(AccountId::new(3)),
            side: Side::Sell,
            qty: Qty::new(150_000),
            stock,
            price: 800_000,
            deal_id: *b"DEAL0001",
        }),
        Command::Pick(Pick {
            user,
            token,
            account,
            side: Side::Buy,
            qty: Qty::new(10),
            stock,
            target: OrderId::new(7),
        }),
        Command::AnnounceAuction(AnnounceAuction {
            id: AuctionId::from_text("A1").expect("an id"),
            stock,
            seller: account,
            seller_user: user,
            qty: Qty::new(100_000),
            start: Timestamp::from_nanos(1),
            end: Timestamp::from_nanos(2),
            pricing: Pricing::PayAsBid,
            floor: FloorRule::PreviousCloseMinus10,
        }),
        Command::AuctionBid(AuctionBid {
            user,
            token,
            account,
            qty: Qty::new(1_000),
            stock,
            price: 650_000,
            auction: AuctionId::from_text("A1").expect("an id"),
        }),
    ]
}

/// The whole journal raw; and each command's body for the framing mode.
fn journal() -> Vec<Vec<u8>> {
    let mut raw = vec![0];
    let mut bodies = vec![1];
    for (n, command) in commands().into_iter().enumerate() {
        let record = Record { seq: Seq::new(n as u64 + 1), timestamp: Timestamp::from_nanos(5), command };
        let start = raw.len();
        let len = journal::encode(&record, &mut raw);
        let body = &raw[start + 20..start + len - 4];
        bodies.push(body.len() as u8);
        bodies.extend_from_slice(body);
    }
    vec![raw, bodies]
}

/// A small market's state after a few orders: raw file and body only.
fn snapshot() -> Vec<Vec<u8>> {
    let config = EngineConfig::demo();
    let mut engine = Engine::with_accounts(config.clone(), AccountTable::demo(config.instruments.len(), 4))
        .expect("the demo market");
    let mut events = Vec::new();
    for (n, (side, fen)) in [(Side::Buy, 7_400), (Side::Sell, 7_500), (Side::Sell, 7_400)].into_iter().enumerate() {
        let command = Command::demo_order(&format!("t{n}"), n as u32, side, 100, fen);
        engine.apply(&command, Timestamp::from_nanos(n as u64 + 1), &mut events);
    }
    let file = SnapshotFile {
        journal_date: 20_261_124,
        next_seq: 4,
        last_ts: 3,
        kind: "on-demand".into(),
        taken: vec![(0, *b"t0            ")],
        engine: engine.snapshot(),
    };
    let body = serde_json::to_vec(&file).expect("serialises");
    let header = format!("carbonx-snapshot 1 {} {:08x}\n", body.len(), crc32c::crc32c(&body));
    vec![[&[0][..], header.as_bytes(), &body].concat(), [&[1][..], &body].concat()]
}
