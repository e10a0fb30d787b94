//! The market-data feed end to end: a whole server in-process, orders
//! through the gateway, and three consumers that must each rebuild exactly
//! the engine's books: MoldUDP64 on a UDP socket (with a datagram dropped on
//! purpose and recovered through the re-request server), the TCP feed
//! replayed from sequence 1, and a late joiner that loads a snapshot and
//! follows the TCP feed from the snapshot's `G`.

mod support;
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_engine::{InstrumentId, Side};
use carbonx_feed::book::BookBuilder;
use carbonx_feed::itch::Message;
use carbonx_feed::moldudp::{Datagram, PacketKind, ReRequest};
use carbonx_feed::watch::{Follower, load_snapshot};
use carbonx_gateway::client::{Client, Received};
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use std::net::UdpSocket;
use std::time::Duration;
use support::books::{engine_book, feed_book};

const STOCKS: [&str; 3] = ["CEA", "CEA23", "CCER"];

fn order(n: u32, user_index: u32) -> Inbound {
    let stock = STOCKS[(n % 3) as usize];
    let reference = if stock == "CCER" { 800_000 } else { 746_300 };
    let side = if (n / 3) % 2 == 0 { b'B' } else { b'S' };
    let price = reference + ((n * 7) % 9) * 100 - 400;
    let firm = format!("{:04}", user_index * 340 + 1 + n % 7);
    Inbound::Enter(EnterOrder::limit(&format!("F{n}"), side, 1 + (n * 13) % 40, stock, price, &firm))
}

/// Sends orders `range` as DEMO01 and waits until each is answered
/// (Accepted or Rejected; its executions travel in the same batch).
async fn trade(client: &mut Client, range: std::ops::Range<u32>) {
    let count = range.len();
    for n in range {
        client.queue(&order(n, 0));
    }
    client.flush().await.unwrap();
    let mut answered = 0;
    for _ in 0..count * 20 {
        if answered == count {
            break;
        }
        let (_, message) = client.next_message(Duration::from_secs(30)).await.expect("an answer");
        if matches!(message, Outbound::Accepted(_) | Outbound::Rejected { .. }) {
            answered += 1;
        }
    }
    assert_eq!(answered, count, "every order is answered");
}

/// Polls `follower` until its book has every message before `next` (the
/// feed's number once settled), within a bound.
async fn follow_to(follower: &mut Follower, next: u64) {
    for _ in 0..3_000 {
        if follower.book.next_seq() >= next {
            break;
        }
        follower.poll(Duration::from_millis(100)).await.unwrap();
    }
    assert_eq!(follower.book.next_seq(), next, "the follower fell short of the feed");
}

/// Reads datagrams until one reaches sequence number `next` (the feed's
/// next number once settled), within a bound.
fn receive_to(socket: &UdpSocket, next: u64) -> Vec<Vec<u8>> {
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut datagrams = Vec::new();
    let mut buf = [0u8; 2_048];
    for _ in 0..100_000 {
        let n = socket.recv(&mut buf).expect("the feed's datagrams up to its settled number");
        let header = Datagram::decode(&buf[..n]).unwrap().header();
        datagrams.push(buf[..n].to_vec());
        if header.sequence + u64::from(header.message_count()) >= next {
            break;
        }
    }
    datagrams
}

/// Applies the messages of a datagram; on a gap, asks the re-request server
/// for the missing numbers (bounded attempts) and applies its answers first.
fn apply_udp(book: &mut BookBuilder, bytes: &[u8], rerequest: &UdpSocket, session: [u8; 10]) -> u32 {
    let datagram = Datagram::decode(bytes).unwrap();
    let first = datagram.header().sequence;
    let mut recovered = 0;
    for _ in 0..1_000 {
        if book.next_seq() >= first {
            break;
        }
        let wanted = ReRequest { session, sequence: book.next_seq(), count: (first - book.next_seq()) as u16 };
        rerequest.send(&wanted.encode()).unwrap();
        let mut buf = [0u8; 2_048];
        let n = rerequest.recv(&mut buf).unwrap();
        let answer = Datagram::decode(&buf[..n]).unwrap();
        assert_eq!(answer.header().sequence, book.next_seq());
        for (i, message) in answer.messages().enumerate() {
            book.apply(answer.header().sequence + i as u64, &Message::decode(message).unwrap()).unwrap();
        }
        recovered += 1;
    }
    for (i, message) in datagram.messages().enumerate() {
        book.apply(first + i as u64, &Message::decode(message).unwrap()).unwrap();
    }
    recovered
}

#[test]
fn udp_tcp_and_snapshot_consumers_rebuild_the_engines_books() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = Config::demo().on_free_ports();
    config.feed.publish_to = vec![udp.local_addr().unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { data_dir: dir.path().into(), fsync: FsyncMode::Never, config_dir: ".".into() };
    let server = Server::start(&config, &options).unwrap();
    let (tcp, snapshot) = (server.tcp_feed_addr().unwrap(), server.snapshot_addr().unwrap());
    let rerequest = UdpSocket::bind("127.0.0.1:0").unwrap();
    rerequest.connect(server.rerequest_addr().unwrap()).unwrap();
    rerequest.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let late_joiner = runtime.block_on(async {
        let mut client = Client::connect(server.order_entry_addr()).await.unwrap();
        assert!(matches!(client.login("DEMO01", "demo", "", 0).await.unwrap(), Received::LoginAccepted { .. }));
        trade(&mut client, 0..600).await;
        // A late joiner: snapshot now, then the TCP feed from the snapshot's G.
        let book = load_snapshot(snapshot).await.unwrap();
        assert!(book.next_seq() > 1 && !book.orders().is_empty());
        let mut follower = Follower::start(tcp, book).await.unwrap();
        trade(&mut client, 600..1_200).await;
        follow_to(&mut follower, server.settle_feed().unwrap()).await;
        follower.book
    });
    let next = server.settle_feed().unwrap();
    // The TCP feed from sequence 1.
    let from_start = runtime.block_on(async {
        let mut follower = Follower::start(tcp, BookBuilder::new()).await.unwrap();
        follow_to(&mut follower, next).await;
        follower.book
    });
    // MoldUDP64, with the third datagram dropped on purpose.
    let datagrams = receive_to(&udp, next);
    assert!(datagrams.len() > 10, "{} datagrams", datagrams.len());
    let session = Datagram::decode(&datagrams[0]).unwrap().header().session;
    let mut udp_book = BookBuilder::new();
    let mut recovered = 0;
    for (i, bytes) in datagrams.iter().enumerate() {
        let count = Datagram::decode(bytes).unwrap().header().message_count();
        if i == 2 || count == 0 {
            continue; // dropped, or a heartbeat
        }
        recovered += apply_udp(&mut udp_book, bytes, &rerequest, session);
    }
    assert!(recovered >= 1, "the dropped datagram was never re-requested");
    // Garbage to the re-request port is dropped; the server keeps answering.
    rerequest.send(b"garbage").unwrap();
    let engine = server.shutdown().unwrap();
    let expected = engine_book(&engine);
    assert!(expected.len() > 100, "the session should leave a real book ({})", expected.len());
    assert_eq!(feed_book(&late_joiner), expected, "snapshot + TCP feed");
    assert_eq!(feed_book(&from_start), expected, "TCP feed from 1");
    assert_eq!(feed_book(&udp_book), expected, "MoldUDP64 with a re-request");
    assert_eq!(from_start.next_seq(), udp_book.next_seq());
    // Top of book agrees level by level with the engine's depth.
    for (i, _) in engine.instruments().iter().enumerate() {
        let engine_bids: Vec<(u32, u64)> =
            engine.depth(InstrumentId::new(i as u8), Side::Buy, 5).map(|l| (l.price.to_wire(), l.qty)).collect();
        let feed_bids: Vec<(u32, u64)> =
            late_joiner.top(i as u16 + 1, b'B', 5).iter().map(|l| (l.price, l.shares)).collect();
        assert_eq!(feed_bids, engine_bids, "instrument {i}");
    }
}

#[test]
fn a_consumer_that_stops_reading_is_cut_off_and_nobody_else_waits() {
    let mut config = Config::demo().on_free_ports();
    config.feed.backlog_max_bytes = 512 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { data_dir: dir.path().into(), fsync: FsyncMode::Never, config_dir: ".".into() };
    let server = Server::start(&config, &options).unwrap();
    let tcp = server.tcp_feed_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let orders = 60_000u32; // about 2.4 MB of Add Order packets
    let (slow_bytes, follower) = runtime.block_on(async {
        // The slow consumer: a tiny receive buffer, logs in from 1, never reads.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4_096).unwrap();
        let mut slow = socket.connect(tcp).await.unwrap();
        let mut login = Vec::new();
        let request = carbonx_soup::packet::LoginRequest {
            username: *b"SLOW  ",
            password: *b"x         ",
            session: [b' '; 10],
            sequence: 1,
        };
        carbonx_soup::packet::Packet::LoginRequest(request).encode(&mut login);
        tokio::io::AsyncWriteExt::write_all(&mut slow, &login).await.unwrap();
        let mut follower = Follower::start(tcp, BookBuilder::new()).await.unwrap();
        let mut client = Client::connect(server.order_entry_addr()).await.unwrap();
        assert!(matches!(client.login("DEMO01", "demo", "", 0).await.unwrap(), Received::LoginAccepted { .. }));
        for n in 0..orders {
            let (side, price) = if n % 2 == 0 { (b'B', 700_000) } else { (b'S', 800_000) };
            let firm = format!("{:04}", 1 + n % 340);
            client.queue(&Inbound::Enter(EnterOrder::limit(&format!("W{n}"), side, 1, "CEA", price, &firm)));
            if n % 1_000 == 999 {
                client.flush().await.unwrap();
                follower.poll(Duration::from_millis(1)).await.unwrap();
            }
        }
        client.flush().await.unwrap();
        // The fast consumer gets every message while the slow one is stuck.
        for _ in 0..3_000 {
            if follower.book.orders().len() == orders as usize {
                break;
            }
            follower.poll(Duration::from_millis(100)).await.unwrap();
        }
        // The slow consumer was cut off: what it can still read ends in EOF,
        // short of the whole feed.
        let mut received = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let read_all = async {
            loop {
                match tokio::io::AsyncReadExt::read(&mut slow, &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received += n,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read_all)
            .await
            .expect("the slow consumer was never disconnected");
        (received, follower)
    });
    let engine = server.shutdown().unwrap();
    assert_eq!(feed_book(&follower.book), engine_book(&engine), "the fast consumer missed messages");
    assert_eq!(follower.book.orders().len(), orders as usize);
    let whole_feed = orders as usize * 39;
    assert!(slow_bytes < whole_feed, "the slow consumer got everything ({slow_bytes} bytes)");
}

#[test]
fn heartbeats_when_idle_and_end_of_session_after_the_close() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = Config::demo().on_free_ports();
    config.feed.publish_to = vec![udp.local_addr().unwrap()];
    config.gateway.heartbeat_ms = 100;
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { data_dir: dir.path().into(), fsync: FsyncMode::Never, config_dir: ".".into() };
    let server = Server::start(&config, &options).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 2_048];
    // The start of the day, then heartbeats carrying the next number.
    let (mut next, mut heartbeats, mut session) = (1, 0, [0u8; 10]);
    for _ in 0..1_000 {
        let n = udp.recv(&mut buf).unwrap();
        let datagram = Datagram::decode(&buf[..n]).unwrap();
        let header = datagram.header();
        session = header.session;
        if header.kind() == PacketKind::Heartbeat {
            assert_eq!(header.sequence, next, "a heartbeat carries the next sequence number");
            heartbeats += 1;
            if heartbeats == 3 {
                break;
            }
        } else {
            next = header.sequence + u64::from(header.message_count());
        }
    }
    assert_eq!(heartbeats, 3);
    // The roll closes the day: M, E, C, then end of session three times.
    server.submit(vec![carbonx_engine::Command::Roll]).unwrap();
    let (mut codes, mut ends) = (String::new(), 0);
    for _ in 0..1_000 {
        let n = udp.recv(&mut buf).unwrap();
        let datagram = Datagram::decode(&buf[..n]).unwrap();
        let header = datagram.header();
        if header.session != session {
            // The next day starts at 1 with Start of Messages.
            assert_eq!(header.sequence, 1);
            let first = Message::decode(datagram.messages().next().unwrap()).unwrap();
            assert!(matches!(first, Message::SystemEvent(s) if s.event_code == b'O'));
            break;
        }
        if header.kind() == PacketKind::EndOfSession {
            ends += 1;
            continue;
        }
        for message in datagram.messages() {
            if let Message::SystemEvent(s) = Message::decode(message).unwrap() {
                codes.push(char::from(s.event_code));
            }
        }
    }
    assert!(codes.ends_with("MEC"), "{codes}");
    assert!(ends >= 1, "no end of session before the next day");
    server.shutdown().unwrap();
}
