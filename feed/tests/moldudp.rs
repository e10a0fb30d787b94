//! MoldUDP64: packer edge cases, our datagram decoder, and cross-checks with
//! the independent `moldudp` crate (its zero-copy `Packet` view over bytes,
//! and its client and server over 127.0.0.1 sockets).

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use carbonx_feed::itch::{AddOrder, Header as ItchHeader, Message};
use carbonx_feed::moldudp::{
    DATAGRAM_MAX, Datagram, HEADER_LEN, Header, MESSAGE_LEN_MAX, MoldError, PackError, Packer, PacketKind, ReRequest,
};
use common::{encoded, hex, samples};

const SESSION: [u8; 10] = *b"CX20250102";
const SESSION_HEX: &str = "43583230323530313032";
/// Every socket wait is bounded by this.
const WAIT: Duration = Duration::from_secs(5);

fn add_order(order_ref: u64) -> Message {
    AddOrder {
        header: ItchHeader::new(6, common::T_OPEN),
        order_ref,
        side: b'B',
        shares: 10,
        stock: common::CEA25,
        price: 746_300,
    }
    .into()
}

#[test]
fn packer_datagram_decodes_with_the_moldudp_crate() {
    let mut packer = Packer::new(SESSION, 1);
    let samples = samples();
    for (i, m) in samples.iter().enumerate() {
        assert_eq!(packer.push_itch(m), Ok(1 + i as u64));
    }
    let packet = moldudp::Packet::new(packer.datagram());
    assert_eq!(packet.session_ident(), "CX20250102");
    assert_eq!(packet.seq_num(), 1);
    assert_eq!(usize::from(packet.msg_count()), samples.len());
    assert!(matches!(packet.packet_kind(), moldudp::PacketKind::Standard));
    let theirs: Vec<&[u8]> = packet.iter().map(|block| block.data()).collect();
    assert_eq!(theirs.len(), samples.len());
    for (block, m) in theirs.iter().zip(&samples) {
        assert_eq!(*block, encoded(m).as_slice());
        assert_eq!(Message::decode(block), Ok(*m));
    }
    for (block, m) in packet.iter().zip(&samples) {
        assert_eq!(usize::from(block.length()), m.wire_len());
    }
}

#[test]
fn our_decoder_reads_the_packer_datagram() {
    let mut packer = Packer::new(SESSION, 100);
    for m in samples() {
        packer.push_itch(&m).unwrap();
    }
    let datagram = Datagram::decode(packer.datagram()).unwrap();
    assert_eq!(datagram.header(), Header { session: SESSION, sequence: 100, count: 12 });
    assert_eq!(datagram.header().kind(), PacketKind::Messages);
    let decoded: Vec<Message> = datagram.messages().map(|b| Message::decode(b).unwrap()).collect();
    assert_eq!(decoded, samples());
    assert_eq!(datagram.messages().len(), 12);
}

#[test]
fn hand_built_datagram_matches_the_packer() {
    let delete = common::encoded(&samples()[7]); // D, 19 bytes
    let wire = hex(&format!(
        "{SESSION_HEX} {} {} {} {}",
        "0000000000000009", // sequence number 9
        "0002",             // two messages
        "0013",             // block length 19
        "44 0006 0000 1f1aced9f07b 00000000000004d2 0013 44 0006 0000 1f1aced9f07b 00000000000004d2",
    ));
    // The block bodies above are the hand-built `D` of the ITCH vectors.
    assert_eq!(&wire[22..41], delete.as_slice());
    let mut packer = Packer::new(SESSION, 9);
    packer.push(&delete).unwrap();
    packer.push_itch(&samples()[7]).unwrap();
    assert_eq!(packer.datagram(), wire.as_slice());
}

#[test]
fn exactly_full_datagram() {
    let mut packer = Packer::new(SESSION, 1);
    // 36 Add Orders of 2 + 36 bytes use 1,368 of the 1,380 payload bytes.
    for i in 0..36 {
        packer.push_itch(&add_order(i)).unwrap();
    }
    assert_eq!(packer.len(), HEADER_LEN + 36 * 38);
    assert_eq!(packer.remaining(), 12);
    // A 10-byte message fills the datagram to the byte.
    assert_eq!(packer.push(&[b'x'; 10]), Ok(37));
    assert_eq!(packer.len(), DATAGRAM_MAX);
    assert_eq!(packer.remaining(), 0);
    // Not even an empty message fits now.
    assert_eq!(packer.push(&[]), Err(PackError::Full));
    let datagram = Datagram::decode(packer.datagram()).unwrap();
    assert_eq!(datagram.messages().len(), 37);
    assert_eq!(datagram.messages().last(), Some(&[b'x'; 10][..]));
    assert_eq!(moldudp::Packet::new(packer.datagram()).iter().count(), 37);
}

#[test]
fn largest_message_fills_an_empty_datagram() {
    let mut packer = Packer::new(SESSION, 1);
    let big = vec![7u8; MESSAGE_LEN_MAX];
    assert_eq!(packer.push(&big), Ok(1));
    assert_eq!(packer.datagram().len(), DATAGRAM_MAX);
    let too_big = vec![7u8; MESSAGE_LEN_MAX + 1];
    packer.clear();
    assert_eq!(packer.push(&too_big), Err(PackError::TooLarge(MESSAGE_LEN_MAX + 1)));
    assert!(packer.is_empty());
}

#[test]
fn a_message_that_does_not_fit_changes_nothing() {
    let mut packer = Packer::new(SESSION, 1);
    for i in 0..36 {
        packer.push_itch(&add_order(i)).unwrap();
    }
    let before = packer.datagram().to_vec();
    // 12 bytes left: an Add Order needs 38.
    assert_eq!(packer.push_itch(&add_order(99)), Err(PackError::Full));
    assert_eq!(packer.push(&[0; 11]), Err(PackError::Full));
    assert_eq!(packer.datagram(), before.as_slice());
    assert_eq!(packer.count(), 36);
    assert_eq!(packer.next_sequence(), 37);
    // The caller sends this datagram, clears, and the message goes first in
    // the next one with the next sequence number.
    packer.clear();
    assert_eq!(packer.push_itch(&add_order(99)), Ok(37));
    assert_eq!(packer.first_sequence(), 37);
    let next = Datagram::decode(packer.datagram()).unwrap();
    assert_eq!(next.header().sequence, 37);
    assert_eq!(next.header().count, 1);
}

#[test]
fn heartbeat_and_end_of_session_bytes() {
    let mut packer = Packer::new(SESSION, 1);
    for m in &samples()[..3] {
        packer.push_itch(m).unwrap();
    }
    packer.clear();
    let heartbeat = hex(&format!("{SESSION_HEX} 0000000000000004 0000"));
    let end = hex(&format!("{SESSION_HEX} 0000000000000004 ffff"));
    assert_eq!(packer.heartbeat().as_slice(), heartbeat.as_slice());
    assert_eq!(packer.end_of_session().as_slice(), end.as_slice());
    // An empty packer's datagram is itself a heartbeat.
    assert_eq!(packer.datagram(), heartbeat.as_slice());

    let hb = Datagram::decode(&heartbeat).unwrap();
    assert_eq!(hb.header().kind(), PacketKind::Heartbeat);
    assert_eq!(hb.messages().count(), 0);
    let eos = Datagram::decode(&end).unwrap();
    assert_eq!(eos.header().kind(), PacketKind::EndOfSession);
    assert_eq!(eos.header().sequence, 4);
    assert_eq!(eos.messages().count(), 0);

    let theirs = moldudp::Packet::new(&heartbeat);
    assert!(matches!(theirs.packet_kind(), moldudp::PacketKind::Heartbeat));
    assert_eq!(theirs.seq_num(), 4);
    let theirs = moldudp::Packet::new(&end);
    assert!(matches!(theirs.packet_kind(), moldudp::PacketKind::EndOfSession));
    assert_eq!(theirs.seq_num(), 4);
}

#[test]
fn malformed_datagrams_are_errors() {
    let d = hex("44 0006 0000 1f1aced9f07b 00000000000004d2"); // 19-byte D
    let header = |count: &str| hex(&format!("{SESSION_HEX} 0000000000000001 {count}"));
    let with = |count: &str, tail: &[u8]| [header(count), tail.to_vec()].concat();
    let block = [&[0, 19][..], &d].concat();

    assert_eq!(Datagram::decode(&header("0001")[..19]), Err(MoldError::TooShort(19)));
    assert_eq!(Datagram::decode(&[]), Err(MoldError::TooShort(0)));
    assert_eq!(
        Datagram::decode(&with("0001", &block[..20])),
        Err(MoldError::BlockOverrun { index: 0, len: 19, remaining: 18 })
    );
    assert_eq!(
        Datagram::decode(&with("0002", &[&block[..], &[0]].concat())),
        Err(MoldError::TruncatedBlockLength { index: 1 })
    );
    assert_eq!(
        Datagram::decode(&with("0003", &[&block[..], &block].concat())),
        Err(MoldError::TruncatedBlockLength { index: 2 })
    );
    assert_eq!(Datagram::decode(&with("0001", &[&block[..], &[9]].concat())), Err(MoldError::TrailingBytes(1)));
    assert_eq!(Datagram::decode(&with("0000", &block)), Err(MoldError::TrailingBytes(21)));
    assert_eq!(Datagram::decode(&with("ffff", &[1])), Err(MoldError::TrailingBytes(1)));
    // A block length of 0xFFFF runs past any datagram.
    assert_eq!(
        Datagram::decode(&with("0001", &[0xff, 0xff, 1, 2])),
        Err(MoldError::BlockOverrun { index: 0, len: 0xffff, remaining: 2 })
    );
    assert!(Datagram::decode(&with("0001", &block)).is_ok());
}

#[test]
fn re_request_bytes() {
    let wire = hex(&format!("{SESSION_HEX} 0000000000000005 0004"));
    let request = ReRequest { session: SESSION, sequence: 5, count: 4 };
    assert_eq!(request.encode().as_slice(), wire.as_slice());
    assert_eq!(ReRequest::decode(&wire), Ok(request));
    assert_eq!(ReRequest::decode(&wire[..19]), Err(MoldError::WrongReRequestLength(19)));
    let long = [&wire[..], &[0]].concat();
    assert_eq!(ReRequest::decode(&long), Err(MoldError::WrongReRequestLength(21)));
}

fn loopback() -> UdpSocket {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
}

fn v4(socket: &UdpSocket) -> SocketAddrV4 {
    match socket.local_addr().unwrap() {
        SocketAddr::V4(addr) => addr,
        SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
    }
}

/// The `moldudp` client sees our datagram skip sequence numbers 1..=4,
/// re-requests them from our re-request socket (we decode its request), and
/// accepts our answer.
#[test]
fn moldudp_client_re_requests_a_gap_in_our_feed() {
    let client_down = loopback();
    let client_down_addr = v4(&client_down);
    let our_rereq = loopback();
    let publisher = loopback();
    let client = moldudp::MoldUDP64::builder()
        .multicast_addr(client_down_addr)
        .interface_addr(Ipv4Addr::LOCALHOST)
        .rerequest_server_addrs(vec![SocketAddr::V4(v4(&our_rereq))])
        .expected_session_ident("CX20250102".to_string())
        .expected_seq_num(1)
        .build();
    let (rx, _requests) =
        client.start_with_sockets(client_down, loopback(), &[SocketAddr::V4(v4(&our_rereq))]).unwrap();

    let samples = samples();
    let mut live = Packer::new(SESSION, 5);
    live.push_itch(&samples[4]).unwrap();
    live.push_itch(&samples[5]).unwrap();
    publisher.send_to(live.datagram(), client_down_addr).unwrap();

    let received = rx.recv_timeout(WAIT).expect("client forwarded our datagram");
    assert_eq!(received.bytes(), live.datagram());

    let mut buf = [0u8; 64];
    let (n, peer) = our_rereq.recv_from(&mut buf).expect("client re-requested the gap");
    let request = ReRequest::decode(&buf[..n]).unwrap();
    assert_eq!(request, ReRequest { session: SESSION, sequence: 1, count: 4 });

    let mut answer = Packer::new(SESSION, request.sequence);
    for m in &samples[..usize::from(request.count)] {
        answer.push_itch(m).unwrap();
    }
    our_rereq.send_to(answer.datagram(), peer).unwrap();
    let retransmitted = rx.recv_timeout(WAIT).expect("client forwarded the retransmission");
    assert_eq!(retransmitted.bytes(), answer.datagram());
    let packet = moldudp::Packet::new(retransmitted.bytes());
    assert_eq!((packet.seq_num(), packet.msg_count()), (1, 4));
}

/// Receives from `socket` until `wanted` accepts a datagram; at most 100
/// datagrams, each wait bounded by [`WAIT`].
fn receive_until(socket: &UdpSocket, wanted: impl Fn(&Datagram<'_>) -> bool) -> Vec<u8> {
    let mut buf = [0u8; 2_048];
    for _ in 0..100 {
        let n = socket.recv(&mut buf).expect("datagram within the wait");
        let datagram = Datagram::decode(&buf[..n]).expect("their packet decodes");
        if wanted(&datagram) {
            return buf[..n].to_vec();
        }
    }
    panic!("wanted datagram not seen in 100 datagrams");
}

/// The `moldudp` server's packets (live, heartbeat, end of session,
/// retransmission) decode with our decoder, and it answers our re-request.
#[test]
fn moldudp_server_packets_decode_and_it_answers_our_re_request() {
    let listener = loopback();
    let server_rereq = loopback();
    let server_rereq_addr = server_rereq.local_addr().unwrap();
    let server = moldudp::MoldUDP64Server::builder()
        .multicast_addr(v4(&listener))
        .rerequest_bind_addr(server_rereq_addr)
        .session("CX20250102".to_string())
        .heartbeat_interval(Duration::from_millis(20))
        .build();
    let handle = server.start_with_sockets(loopback(), server_rereq).unwrap();
    let samples = &samples()[..11];
    handle.send(samples.iter().map(encoded).collect());

    let live = receive_until(&listener, |d| d.header().kind() == PacketKind::Messages);
    let live = Datagram::decode(&live).unwrap();
    assert_eq!(live.header(), Header { session: SESSION, sequence: 1, count: 11 });
    let decoded: Vec<Message> = live.messages().map(|b| Message::decode(b).unwrap()).collect();
    assert_eq!(decoded, samples);

    let heartbeat = receive_until(&listener, |d| d.header().kind() == PacketKind::Heartbeat);
    assert_eq!(Datagram::decode(&heartbeat).unwrap().header().sequence, 12);

    let requester = loopback();
    let request = ReRequest { session: SESSION, sequence: 3, count: 2 };
    requester.send_to(&request.encode(), server_rereq_addr).unwrap();
    let answer = receive_until(&requester, |_| true);
    let answer = Datagram::decode(&answer).unwrap();
    assert_eq!(answer.header(), Header { session: SESSION, sequence: 3, count: 2 });
    let resent: Vec<Message> = answer.messages().map(|b| Message::decode(b).unwrap()).collect();
    assert_eq!(resent, &samples[2..4]);

    handle.shutdown();
    let end = receive_until(&listener, |d| d.header().kind() == PacketKind::EndOfSession);
    assert_eq!(Datagram::decode(&end).unwrap().header().sequence, 12);
}
