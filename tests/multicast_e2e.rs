//! Market data beyond loopback (issue 23): the MoldUDP64 publisher sends
//! its A and B copies to two multicast groups from a configured source
//! interface, and a consumer on another machine joins them.
//!
//! "Another machine" is a second network namespace joined to the server's
//! by a veth pair: the server runs in one (its threads inherit the
//! namespace of the thread that starts it), the consumer, a broker entering
//! orders and the TCP feed's follower in the other. The consumer rebuilds
//! every book from the multicast datagrams exactly as the TCP feed does and
//! as the engine holds it. Where namespaces cannot be made (not root, no
//! `ip`), the test says so and passes without running.

mod support;
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_feed::book::BookBuilder;
use carbonx_feed::itch::Message;
use carbonx_feed::moldudp::{Datagram, ReRequest};
use carbonx_feed::watch::Follower;
use carbonx_gateway::client::{Client, Received};
use carbonx_gateway::ouch::{EnterOrder, Inbound};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;
use support::books::{engine_book, feed_book};
use support::netns::{Netns, ip};

/// The server's side of the veth pair, and the consumer's.
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);
const CONSUMER_IP: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 2);
/// The A and B multicast groups.
const GROUP_A: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(239, 231, 0, 1)), 31_001);
const GROUP_B: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(239, 231, 0, 2)), 31_002);

/// Two namespaces joined by a veth pair, `SERVER_IP` in the first and
/// `CONSUMER_IP` in the second.
fn two_hosts() -> Result<(Netns, Netns), String> {
    let (server, consumer) = (Netns::new('s')?, Netns::new('c')?);
    let (a, b) = (format!("{}v", server.name), format!("{}v", consumer.name));
    let (a, b) = (&a[a.len().saturating_sub(15)..], &b[b.len().saturating_sub(15)..]);
    ip(&["link", "add", a, "netns", &server.name, "type", "veth", "peer", "name", b, "netns", &consumer.name])?;
    for (netns, dev, addr) in [(&server, a, SERVER_IP), (&consumer, b, CONSUMER_IP)] {
        ip(&["-n", &netns.name, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
        ip(&["-n", &netns.name, "link", "set", dev, "up"])?;
    }
    Ok((server, consumer))
}

/// The server, started from a thread inside `netns`, every listener on
/// `SERVER_IP`, publishing A and B to the groups by the veth interface.
fn start_in(netns: &Netns, data: &std::path::Path) -> Server {
    let mut config = Config::demo().on_free_ports();
    let any = SocketAddr::from((SERVER_IP, 0));
    (config.gateway.listen, config.feed.tcp, config.feed.snapshot, config.feed.rerequest) = (any, any, any, any);
    config.feed.publish_to = vec![GROUP_A, GROUP_B];
    (config.feed.source_address, config.feed.multicast_ttl, config.feed.multicast_loop) = (Some(SERVER_IP), 1, false);
    let options = ServeOptions { data_dir: data.into(), fsync: FsyncMode::Never, config_dir: ".".into() };
    let name = netns.name.clone();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                Netns { name }.enter_and_forget();
                Server::start(&config, &options).unwrap()
            })
            .join()
            .unwrap()
    })
}

/// A socket in the calling thread's namespace joined to `group` on the
/// consumer's interface.
fn join(group: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, group.port()))).unwrap();
    let std::net::IpAddr::V4(address) = group.ip() else { unreachable!() };
    socket.join_multicast_v4(&address, &CONSUMER_IP).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    socket
}

/// Every datagram that arrives until the group is quiet (bounded).
fn drain(socket: &UdpSocket) -> Vec<Vec<u8>> {
    let mut datagrams = Vec::new();
    let mut buf = [0u8; 2_048];
    for _ in 0..1_000_000 {
        match socket.recv(&mut buf) {
            Ok(n) => datagrams.push(buf[..n].to_vec()),
            Err(_) => break,
        }
    }
    datagrams
}

fn order(n: u32) -> Inbound {
    let stock = ["CEA", "CEA23", "CCER"][(n % 3) as usize];
    let reference = if stock == "CCER" { 800_000 } else { 746_300 };
    let side = if (n / 3) % 2 == 0 { b'B' } else { b'S' };
    let price = reference + ((n * 7) % 9) * 100 - 400;
    Inbound::Enter(EnterOrder::limit(
        &format!("M{n}"),
        side,
        1 + (n * 13) % 40,
        stock,
        price,
        &format!("{:04}", 1 + n % 7),
    ))
}

/// The messages of every datagram of A and B by sequence number (a
/// message lost on one copy is taken from the other, as an arbitrating
/// consumer does); numbers missing from both are re-requested.
fn arbitrate(copies: &[&[Vec<u8>]], rerequest: &UdpSocket) -> BTreeMap<u64, Vec<u8>> {
    let mut messages = BTreeMap::new();
    let mut session = None;
    for datagram in copies.iter().flat_map(|copy| copy.iter()) {
        let decoded = Datagram::decode(datagram).unwrap();
        let first = decoded.header().sequence;
        session = Some(decoded.header().session);
        for (i, message) in decoded.messages().enumerate() {
            messages.entry(first + i as u64).or_insert_with(|| message.to_vec());
        }
    }
    let last = messages.keys().next_back().copied().unwrap_or(0);
    for _ in 0..10_000 {
        let Some(gap) = (1..=last).find(|n| !messages.contains_key(n)) else { break };
        let wanted = ReRequest { session: session.unwrap(), sequence: gap, count: 1 };
        rerequest.send(&wanted.encode()).unwrap();
        let mut buf = [0u8; 2_048];
        let len = rerequest.recv(&mut buf).unwrap();
        let answer = Datagram::decode(&buf[..len]).unwrap();
        messages.insert(gap, answer.messages().next().unwrap().to_vec());
    }
    messages
}

/// What the consumer side sees: the TCP feed's book, the multicast book,
/// and how many datagrams came on A and on B.
struct Seen {
    tcp: BookBuilder,
    udp: BookBuilder,
    a: usize,
    b: usize,
}

/// In the consumer's namespace: join A and B, trade through order entry,
/// follow the TCP feed, rebuild from the multicast copies.
fn consume(consumer: &Netns, server: &Server) -> Seen {
    consumer.enter();
    let (a, b) = (join(GROUP_A), join(GROUP_B));
    let rerequest = UdpSocket::bind(SocketAddr::from((CONSUMER_IP, 0))).unwrap();
    rerequest.connect(server.rerequest_addr().unwrap()).unwrap();
    rerequest.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let readers = [a, b].map(|socket| std::thread::spawn(move || drain(&socket)));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tcp = runtime.block_on(async {
        let mut client = Client::connect(server.order_entry_addr()).await.unwrap();
        assert!(matches!(client.login("DEMO01", "demo", "", 0).await.unwrap(), Received::LoginAccepted { .. }));
        for n in 0..600 {
            client.queue(&order(n));
        }
        client.flush().await.unwrap();
        while client.next_message(Duration::from_millis(400)).await.is_ok() {}
        let mut follower = Follower::start(server.tcp_feed_addr().unwrap(), BookBuilder::new()).await.unwrap();
        while follower.poll(Duration::from_millis(400)).await.unwrap() > 0 {}
        follower.book
    });
    let [a, b] = readers.map(|reader| reader.join().unwrap());
    // A and B carry the same datagrams: wherever both have the one that
    // starts at a number, it is the same bytes.
    let by_first = |copy: &[Vec<u8>]| -> BTreeMap<u64, Vec<u8>> {
        copy.iter().map(|d| (Datagram::decode(d).unwrap().header().sequence, d.clone())).collect()
    };
    let (by_a, by_b) = (by_first(&a), by_first(&b));
    for (first, datagram) in &by_a {
        if let Some(other) = by_b.get(first) {
            let count = |d: &[u8]| Datagram::decode(d).unwrap().header().message_count();
            if count(datagram) > 0 && count(other) > 0 {
                assert_eq!(datagram, other, "A and B differ at {first}");
            }
        }
    }
    let mut udp = BookBuilder::new();
    for (seq, message) in arbitrate(&[&a, &b], &rerequest) {
        udp.apply(seq, &Message::decode(&message).unwrap()).unwrap();
    }
    Seen { tcp, udp, a: a.len(), b: b.len() }
}

#[test]
fn a_consumer_in_another_namespace_rebuilds_every_book_from_the_multicast_a_and_b_copies() {
    let (server_ns, consumer_ns) = match two_hosts() {
        Ok(pair) => pair,
        Err(why) => {
            println!("skipped: cannot make network namespaces joined by a veth pair here ({why})");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(&server_ns, dir.path());
    let seen = std::thread::scope(|scope| scope.spawn(|| consume(&consumer_ns, &server)).join().unwrap());
    let engine = server.shutdown().unwrap();
    let expected = engine_book(&engine);
    assert!(expected.len() > 20, "the session should leave a real book ({})", expected.len());
    assert!(seen.a > 10 && seen.b > 10, "datagrams on A: {}, on B: {}", seen.a, seen.b);
    assert_eq!(feed_book(&seen.tcp), expected, "TCP feed");
    assert_eq!(feed_book(&seen.udp), expected, "multicast A and B");
    assert_eq!(seen.udp.next_seq(), seen.tcp.next_seq());
    drop((server_ns, consumer_ns));
}

#[test]
fn a_destination_that_cannot_be_sent_to_is_counted_in_the_metrics() {
    let mut config = Config::demo().on_free_ports();
    // An IPv6 destination for the IPv4 publisher: every send fails.
    config.feed.publish_to = vec!["[::1]:7004".parse().unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { data_dir: dir.path().into(), fsync: FsyncMode::Never, config_dir: ".".into() };
    let server = Server::start(&config, &options).unwrap();
    let admin = carbonx::admin::client::AdminClient::new(
        &format!("http://{}", server.admin_addr().unwrap()),
        carbonx::config::DEMO_ADMIN_TOKEN,
    );
    let failures = || {
        let text = admin.run(&carbonx::admin::client::AdminAction::Metrics).unwrap();
        let line = text.lines().find(|l| l.starts_with("carbonx_feed_publish_failures_total ")).unwrap().to_string();
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    // The start of day's directory was published (and failed) already;
    // a heartbeat follows within a second of silence (bounded wait).
    for _ in 0..100 {
        if failures() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(failures() > 0, "no send failure counted");
    server.shutdown().unwrap();
}
