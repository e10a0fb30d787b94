//! Independent-decoder check of the wire layouts in docs/PROTOCOL.md (§2 to §6): SoupBinTCP
//! 3.0 frames and OUCH 4.2 messages built here by hand, byte by byte from
//! the tables (not with the gateway's codecs), written to a pcap and decoded
//! by Wireshark's `tshark`. Every field tshark shows must be the value sent,
//! and tshark must report no error.
//!
//! Needs tshark: run `scripts/test.sh` (it installs it and exports
//! `CARBONX_TSHARK`). Without it these tests fail, they do not skip.

mod frames;
#[path = "../support/mod.rs"]
mod support;

use frames::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::capture::{CaptureProxy, coalesce};
use support::pcap::{Direction, MAX_SEGMENT, TcpConversation, write_soup_pcap, write_tcp_pcap};
use support::tshark::{Decoded, Pdu, assert_tshark_clean, decode, python_path, tshark_path};

/// The order-entry port of PROTOCOL §2.
const PORT: u16 = 7001;

/// A fresh file name for a capture under the target's temp directory.
fn pcap_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tshark_conformance");
    std::fs::create_dir_all(&dir).expect("create capture dir");
    dir.join(format!("{name}.pcap"))
}

/// The one packet carrying an OUCH message of type `t` whose token field
/// `field` is `token` (`U` is looked up outbound: Replaced).
fn find<'a>(d: &'a Decoded, t: char, field: &str, token: &str) -> &'a Pdu {
    let inbound_field = field == "ouch.existing_order_token";
    let mut it = d
        .ouch_of_type(t)
        .filter(|p| t != 'U' || p.to_server == inbound_field)
        .filter(|p| p.ouch_field(field) == Some(token));
    let p = it.next().unwrap_or_else(|| panic!("no OUCH {t} with {field}={token} in {:#?}", d.pdus));
    assert!(it.next().is_none(), "two OUCH {t} with {field}={token}");
    p
}

/// Writes `segments` as a capture named `name` and checks it with tshark.
fn clean(name: &str, segments: &[(Direction, Vec<u8>)]) -> Decoded {
    let path = pcap_path(name);
    write_soup_pcap(&path, PORT, segments).expect("write pcap");
    assert_tshark_clean(&path, PORT)
}

/// Checks every field of an Accepted (or the first 65 bytes of a Replaced,
/// whose token is the replacement token) against the order it echoes.
fn check_accepted_fields(p: &Pdu, token_field: &str, o: &EnterOrder, order_ref: u64) {
    assert_eq!(p.ouch_text(token_field), o.token);
    assert_eq!(p.ouch("ouch.timestamp"), "9:30:00.000000123");
    assert_eq!(p.ouch_char("ouch.buy_sell_indicator"), o.side as char);
    assert_eq!(p.ouch_num("ouch.shares"), u64::from(o.shares));
    assert_eq!(p.ouch_text("ouch.stock"), o.stock);
    assert_eq!(p.ouch_num("ouch.price"), u64::from(o.price));
    assert_eq!(p.ouch_num("ouch.tif"), u64::from(o.tif));
    assert_eq!(p.ouch_text("ouch.firm"), o.firm);
    assert_eq!(p.ouch_char("ouch.display"), o.display as char);
    assert_eq!(p.ouch_num("ouch.order_reference_number"), order_ref);
    assert_eq!(p.ouch_char("ouch.capacity"), o.capacity as char);
    assert_eq!(p.ouch_char("ouch.iso_eligible"), o.iso as char);
    assert_eq!(p.ouch_num("ouch.min_quantity"), u64::from(o.min_qty));
    assert_eq!(p.ouch_char("ouch.cross_type"), o.cross as char);
    assert_eq!(p.ouch_char("ouch.order_state"), 'L');
    assert_eq!(p.ouch_char("ouch.bbo_weight_indicator"), ' ');
}

#[test]
fn tshark_is_installed() {
    let out = Command::new(tshark_path()).arg("--version").output().expect("run tshark --version");
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with("TShark"), "{v}");
}

/// Without tshark the tests fail with a message that says what to do.
#[test]
fn missing_tshark_fails_with_a_hint() {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "tshark_is_installed", "--test-threads=1"])
        .env("CARBONX_TSHARK", "")
        .env("PATH", "/nonexistent")
        .output()
        .expect("rerun this test binary");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "passed without tshark:\n{all}");
    assert!(all.contains("run scripts/test.sh"), "{all}");
}

#[test]
fn soupbintcp_session_frames_decode_as_sent() {
    let d = clean("full_session", &full_session());
    let kinds: String = d.pdus.iter().map(|p| p.soup_type()).collect();
    assert_eq!(kinds, "LASUSRHUUSSSSUSSOZ");
    let dirs: Vec<bool> = d.pdus.iter().map(|p| p.to_server).collect();
    assert_eq!(
        dirs,
        [
            true, false, false, true, false, true, false, true, true, false, false, false, false, true, false, false,
            true, false
        ]
    );

    let login = &d.pdus[0];
    assert_eq!(login.soup_field("soupbintcp.packet_length"), Some("47"));
    assert_eq!(login.soup_field("soupbintcp.username"), Some("DEMO01"));
    assert_eq!(login.soup_field("soupbintcp.password"), Some("demo      "));
    assert_eq!(login.soup_field("soupbintcp.session"), Some("          "));
    assert_eq!(login.seq_num, Some(1), "requested sequence number");

    let accepted = &d.pdus[1];
    assert_eq!(accepted.soup_field("soupbintcp.packet_length"), Some("31"));
    assert_eq!(accepted.soup_field("soupbintcp.session"), Some("CX20261124"));
    assert_eq!(accepted.seq_num, Some(1), "next sequence number");

    // Wireshark numbers Sequenced Data from the Login Accepted on.
    let seqs: Vec<u64> = d.pdus.iter().filter(|p| p.soup_type() == 'S').map(|p| p.seq_num.unwrap()).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    for p in d.pdus.iter().filter(|p| "RHOZ".contains(p.soup_type())) {
        assert_eq!(p.soup_field("soupbintcp.packet_length"), Some("1"), "{p:?}");
    }
}

#[test]
fn ouch_inbound_messages_decode_as_sent() {
    let d = clean("inbound", &full_session());
    let buy = demo_order("B1");
    let p = find(&d, 'O', "ouch.order_token", "B1            ");
    assert!(p.to_server);
    assert_eq!(p.payload_len(), Some(49));
    assert_eq!(p.ouch_char("ouch.buy_sell_indicator"), 'B');
    assert_eq!(p.ouch_num("ouch.shares"), 10);
    assert_eq!(p.ouch_text("ouch.stock"), "CEA");
    assert_eq!(p.ouch_num("ouch.price"), 746_300);
    assert_eq!(p.ouch_num("ouch.tif"), 99_999);
    assert_eq!(p.ouch_text("ouch.firm"), buy.firm);
    assert_eq!(p.ouch_char("ouch.display"), 'Y');
    assert_eq!(p.ouch_char("ouch.capacity"), 'A');
    assert_eq!(p.ouch_char("ouch.iso_eligible"), 'N');
    assert_eq!(p.ouch_num("ouch.min_quantity"), 0);
    assert_eq!(p.ouch_char("ouch.cross_type"), 'N');
    assert_eq!(p.ouch_char("ouch.customer_type"), 'R');

    let s = find(&d, 'O', "ouch.order_token", "S1            ");
    assert_eq!(s.ouch_char("ouch.buy_sell_indicator"), 'S');
    assert_eq!(s.ouch_num("ouch.shares"), 25);
    assert_eq!(s.ouch_num("ouch.price"), 746_200);
    assert_eq!(s.ouch_text("ouch.firm"), "0002");
    // Two packets in one TCP segment: both decoded.
    let r = find(&d, 'U', "ouch.existing_order_token", "B1            ");
    assert_eq!(r.frame, s.frame, "Enter Order and Replace Order were sent in one segment");
    assert!(r.to_server);
    assert_eq!(r.payload_len(), Some(47));
    assert_eq!(r.ouch_text("ouch.replacement_order_token"), "B2");
    assert_eq!(r.ouch_num("ouch.shares"), 6);
    assert_eq!(r.ouch_num("ouch.price"), 746_400);
    assert_eq!(r.ouch_num("ouch.tif"), 99_999);
    assert_eq!(r.ouch_char("ouch.display"), 'Y');
    assert_eq!(r.ouch_char("ouch.iso_eligible"), 'N');
    assert_eq!(r.ouch_num("ouch.min_quantity"), 0);

    let x = find(&d, 'X', "ouch.order_token", "B2            ");
    assert_eq!(x.payload_len(), Some(19));
    assert_eq!(x.ouch_num("ouch.shares"), 0);
}

#[test]
fn ouch_outbound_messages_decode_as_sent() {
    let d = clean("outbound", &full_session());
    for p in d.pdus.iter().filter(|p| p.has_ouch && !p.to_server) {
        assert_eq!(p.ouch("ouch.timestamp"), "9:30:00.000000123", "{p:?}");
    }
    let ev = d.ouch_of_type('S').next().expect("system event");
    assert_eq!(ev.ouch_char("ouch.event_code"), 'S');

    let a = find(&d, 'A', "ouch.order_token", "B1            ");
    assert_eq!(a.payload_len(), Some(66));
    check_accepted_fields(a, "ouch.order_token", &demo_order("B1"), 7);
    let sell = EnterOrder { token: "S1", side: b'S', shares: 25, price: 746_200, firm: "0002", ..demo_order("S1") };
    check_accepted_fields(find(&d, 'A', "ouch.order_token", "S1            "), "ouch.order_token", &sell, 8);

    let e = find(&d, 'E', "ouch.order_token", "S1            ");
    assert_eq!(e.payload_len(), Some(40));
    assert_eq!(e.ouch_num("ouch.executed_shares"), 4);
    assert_eq!(e.ouch_num("ouch.execution_price"), 746_300);
    assert_eq!(e.ouch_char("ouch.liquidity_flag"), 'R');
    assert_eq!(e.ouch_num("ouch.match_number"), 3);

    let u = find(&d, 'U', "ouch.replacement_order_token", "B2            ");
    assert!(!u.to_server);
    assert_eq!(u.payload_len(), Some(80));
    let rep = EnterOrder { token: "B2", shares: 6, price: 746_400, ..demo_order("B2") };
    check_accepted_fields(u, "ouch.replacement_order_token", &rep, 9);
    assert_eq!(u.ouch_text("ouch.previous_order_token"), "B1");

    let j = find(&d, 'J', "ouch.order_token", "S9            ");
    assert_eq!(j.payload_len(), Some(24));
    assert_eq!(j.ouch_char("ouch.reject_reason"), 'X');

    let c = find(&d, 'C', "ouch.order_token", "B2            ");
    assert_eq!(c.payload_len(), Some(28));
    assert_eq!(c.ouch_num("ouch.decrement_shares"), 6);
    assert_eq!(c.ouch_char("ouch.cancel_reason"), 'U');

    let i = find(&d, 'I', "ouch.order_token", "B7            ");
    assert_eq!(i.payload_len(), Some(23));
}

/// Every reject, cancel and liquidity letter of PROTOCOL §4.5, §5.1 and §5.3, and the market
/// price, decode without error (letters OUCH does not define show as
/// "Unknown" in Wireshark, which is not an error).
#[test]
fn every_protocol_letter_decodes_cleanly() {
    use Direction::{ToClient, ToServer};
    let mut segs = vec![
        (ToServer, login_request("DEMO01", "demo", "", &numeric(0, 20))),
        (ToClient, login_accepted("CX20261124", 41)),
    ];
    let market = EnterOrder { price: 0x7FFF_FFFF, tif: 0, ..demo_order("M1") };
    segs.push((ToServer, soup(b'U', &market.bytes())));
    segs.push((ToClient, soup(b'S', &accepted(&market, 1))));
    let rejects = b"SXKZNDOinmCHLPUGFV";
    for (k, r) in rejects.iter().enumerate() {
        segs.push((ToClient, soup(b'S', &rejected(&format!("R{k}"), *r))));
    }
    for (k, r) in b"UITQSZ".iter().enumerate() {
        segs.push((ToClient, soup(b'S', &canceled(&format!("C{k}"), 1, *r))));
    }
    for (k, f) in b"ARBH".iter().enumerate() {
        segs.push((ToClient, soup(b'S', &executed(&format!("E{k}"), 1, 746_300, *f, k as u64 + 1))));
    }
    segs.push((ToClient, soup(b'S', &system_event(b'E'))));
    let d = clean("letters", &segs);
    assert_eq!(d.pdus[0].seq_num, Some(0));
    let got: String = d.ouch_of_type('J').map(|p| p.ouch_char("ouch.reject_reason")).collect();
    assert_eq!(got.as_bytes(), rejects);
    let got: String = d.ouch_of_type('C').map(|p| p.ouch_char("ouch.cancel_reason")).collect();
    assert_eq!(got, "UITQSZ");
    let got: String = d.ouch_of_type('E').map(|p| p.ouch_char("ouch.liquidity_flag")).collect();
    assert_eq!(got, "ARBH");
    let a = find(&d, 'A', "ouch.order_token", "M1            ");
    assert_eq!(a.ouch_num("ouch.price"), 0x7FFF_FFFF);
    assert_eq!(a.ouch_num("ouch.tif"), 0);
    let seqs: Vec<u64> = d.pdus.iter().filter(|p| p.soup_type() == 'S').map(|p| p.seq_num.unwrap()).collect();
    assert_eq!(seqs, (41..41 + seqs.len() as u64).collect::<Vec<_>>());
}

/// A carbon extension message (lowercase type) is not OUCH: tshark shows
/// it as data, and that is allowed inbound only.
#[test]
fn extension_messages_are_allowed_inbound() {
    use Direction::{ToClient, ToServer};
    let block = [
        vec![b'b'],
        alpha("K1", 14),
        vec![b'B'],
        150_000u32.to_be_bytes().to_vec(),
        alpha("CEA", 8),
        800_000u32.to_be_bytes().to_vec(),
        alpha("0001", 4),
        alpha("0002", 4),
        alpha("D1", 8),
    ]
    .concat();
    assert_eq!(block.len(), 48);
    let segs = vec![
        (ToServer, login_request("DEMO01", "demo", "", &numeric(1, 20))),
        (ToClient, login_accepted("CX20261124", 1)),
        (ToServer, soup(b'U', &block)),
    ];
    let d = clean("extension", &segs);
    assert_eq!(d.pdus[2].data.as_deref(), Some(&block[..]));
    // The same bytes outbound are not a message of PROTOCOL §4.
    let path = pcap_path("extension_outbound");
    write_soup_pcap(&path, PORT, &[segs[0].clone(), segs[1].clone(), (ToClient, soup(b'S', &block))]).unwrap();
    let problems = decode(&path, PORT).problems(&[]);
    assert_eq!(problems.len(), 1, "{problems:?}");
}

/// The checker is not vacuous: each of these is caught.
#[test]
fn tshark_catches_broken_frames() {
    use Direction::{ToClient, ToServer};
    let login = (ToServer, login_request("DEMO01", "demo", "", &numeric(1, 20)));
    let cases: Vec<(&str, Segments, &str)> = vec![
        // Numeric fields must be right-justified: Wireshark 4.x rejects trailing spaces (and all blanks).
        (
            "left_justified_login",
            vec![(ToServer, login_request("DEMO01", "demo", "", b"1                   "))],
            "soupbintcp.req_seq_num.invalid",
        ),
        (
            "blank_login",
            vec![(ToServer, login_request("DEMO01", "demo", "", &[b' '; 20]))],
            "soupbintcp.req_seq_num.invalid",
        ),
        (
            "left_justified_accept",
            vec![login.clone(), (ToClient, soup(b'A', &[alpha("CX20261124", 10), alpha("1", 20)].concat()))],
            "soupbintcp.next_seq_num.invalid",
        ),
        ("zero_length", vec![login.clone(), (ToClient, vec![0, 0])], "malformed"),
        (
            "ouch41_accepted",
            vec![login.clone(), (ToClient, soup(b'S', &accepted(&demo_order("B1"), 1)[..65]))],
            "not an OUCH 4.2",
        ),
        (
            "ouch40_enter",
            vec![login.clone(), (ToServer, soup(b'U', &demo_order("B1").bytes()[..48]))],
            "not an OUCH 4.2",
        ),
        (
            "replaced_inbound",
            vec![login.clone(), (ToServer, soup(b'U', &replaced(&demo_order("B2"), 1, "B1")))],
            "not an OUCH 4.2",
        ),
        (
            "bad_length",
            vec![login.clone(), (ToClient, soup(b'S', &executed("B1", 1, 1, b'A', 1)[..39]))],
            "not decoded as OUCH",
        ),
        ("sequenced_to_server", vec![login.clone(), (ToServer, soup(b'S', &rejected("B1", b'X')))], "wrong direction"),
    ];
    for (name, segs, expect) in cases {
        let path = pcap_path(name);
        write_soup_pcap(&path, PORT, &segs).unwrap();
        let problems = decode(&path, PORT).problems(&[]);
        assert!(problems.iter().any(|p| p.contains(expect)), "{name}: expected {expect:?} in {problems:?}");
    }
}

/// Login Accepted and 300 Accepted in one write: 21 KB cut into segments
/// of at most MAX_SEGMENT bytes that hold whole SoupBinTCP packets. tshark
/// decodes all of them with the right sequence numbers (so the writer's TCP
/// sequence and acknowledgement numbers and checksums are right).
#[test]
fn pcap_writer_splits_long_writes_into_whole_packets() {
    let (segs, n) = burst_session(300);
    let path = pcap_path("burst");
    let file = TcpConversation::soup(PORT).pcap(&segs);
    std::fs::write(&path, &file).unwrap();
    // Handshake, login, LA + 19 Accepted, then 20 Accepted (1380 bytes) a
    // segment, the heartbeat, closing.
    let data_segments = 1 + 1 + (n - 19).div_ceil(20) + 1;
    assert_eq!(count_records(&file), 3 + data_segments + 3);
    let d = assert_tshark_clean(&path, PORT);
    let refs: Vec<u64> = d.ouch_of_type('A').map(|p| p.ouch_num("ouch.order_reference_number")).collect();
    assert_eq!(refs, (1..=n as u64).collect::<Vec<_>>());
    let seqs: Vec<u64> = d.ouch_of_type('A').map(|p| p.seq_num.unwrap()).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>());
    assert_eq!(d.pdus.last().map(|p| (p.soup_type(), p.to_server)), Some(('R', true)));
    // No TCP analysis complaint (lost segments, bad ACKs) either.
    let bad: Vec<_> = d.experts.iter().filter(|e| e.severity == "Warning" || e.severity == "Error").collect();
    assert!(bad.is_empty(), "{bad:?}");

    // Raw cutting works too once Login Accepted ends its segment: packets
    // straddle the later segment boundaries and tshark reassembles them.
    let mut raw = segs.clone();
    let burst = raw[1].1.split_off(33);
    raw.insert(2, (Direction::ToClient, burst));
    let path = pcap_path("burst_raw");
    write_tcp_pcap(&path, PORT, &raw).unwrap();
    let d = assert_tshark_clean(&path, PORT);
    assert_eq!(d.ouch_of_type('A').count(), n);

    // Wireshark 4.0 loses the packet that straddles the end of the Login
    // Accepted frame (see Segmenting::SoupPackets). Reported, not asserted:
    // a fixed Wireshark is no failure.
    let path = pcap_path("burst_raw_joined");
    write_tcp_pcap(&path, PORT, &segs).unwrap();
    let problems = decode(&path, PORT).problems(&[]);
    if problems.is_empty() {
        eprintln!("note: this tshark reassembles across the Login Accepted frame; Segmenting::SoupPackets is optional");
    }
}

/// Login, then Login Accepted and `n` Accepted in one write, then a client
/// heartbeat.
fn burst_session(n: usize) -> (Segments, usize) {
    use Direction::{ToClient, ToServer};
    let mut burst = login_accepted("CX20261124", 1);
    for k in 0..n {
        burst.extend(soup(b'S', &accepted(&demo_order("T"), k as u64 + 1)));
    }
    assert!(burst.len() > 10 * MAX_SEGMENT);
    (
        vec![
            (ToServer, login_request("DEMO01", "demo", "", &numeric(1, 20))),
            (ToClient, burst),
            (ToServer, soup(b'R', &[])),
        ],
        n,
    )
}

/// Number of packet records in a classic pcap file.
fn count_records(file: &[u8]) -> usize {
    assert_eq!(&file[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let (mut at, mut n) = (24, 0);
    while at < file.len() {
        let incl = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + incl;
        n += 1;
    }
    assert_eq!(at, file.len());
    n
}

#[test]
fn internet_checksum_matches_rfc1071_example() {
    // RFC 1071, section 3: the sum of these words is ddf2, so the checksum is 220d.
    assert_eq!(support::pcap::checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
    assert_eq!(support::pcap::checksum(&[0xff]), 0x00ff);
}

/// A real TCP conversation through the capture proxy: a server thread
/// writes hand-built frames in odd-sized pieces, the proxy records, and the
/// recording is a clean capture.
#[test]
fn capture_proxy_records_a_clean_conversation() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut login = [0u8; 49];
        s.read_exact(&mut login).unwrap();
        assert_eq!(&login[..3], b"\x00\x2fL");
        let mut reply = login_accepted("CX20261124", 1);
        let mut enter = [0u8; 52];
        s.write_all(&reply).unwrap();
        s.read_exact(&mut enter).unwrap();
        reply = soup(b'S', &accepted(&demo_order("P1"), 5));
        reply.extend(soup(b'S', &executed("P1", 10, 746_300, b'A', 1)));
        for piece in reply.chunks(7) {
            s.write_all(piece).unwrap();
            s.flush().unwrap();
        }
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, soup(b'O', &[]));
    });
    let proxy = CaptureProxy::start(upstream).unwrap();
    let mut c = TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(&login_request("DEMO01", "demo", "", &numeric(1, 20))).unwrap();
    let mut accepted_login = [0u8; 33];
    c.read_exact(&mut accepted_login).unwrap();
    c.write_all(&soup(b'U', &demo_order("P1").bytes())).unwrap();
    let mut replies = [0u8; 69 + 43];
    c.read_exact(&mut replies).unwrap();
    c.write_all(&soup(b'O', &[])).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    server.join().unwrap();
    let chunks = proxy.finish();
    let path = pcap_path("proxy");
    write_soup_pcap(&path, PORT, &coalesce(&chunks)).unwrap();
    let d = assert_tshark_clean(&path, PORT);
    let kinds: String = d.pdus.iter().map(|p| p.soup_type()).collect();
    assert_eq!(kinds, "LAUSSO");
    check_accepted_fields(
        find(&d, 'A', "ouch.order_token", "P1            "),
        "ouch.order_token",
        &demo_order("P1"),
        5,
    );
}

/// A child process killed if the test ends early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tests/python/ouch_client.py` (PyPI nasdaq-protocols) against
/// `tests/python/fake_server.py`, through the capture proxy: the client
/// prints the Accepted, and tshark decodes the conversation.
#[test]
fn python_client_against_fake_server() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = python_path();
    let mut server = KillOnDrop(
        Command::new(&python)
            .arg(root.join("tests/python/fake_server.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start fake_server.py"),
    );
    let mut line = String::new();
    let mut out = std::io::BufReader::new(server.0.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let port: u16 = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("PORT line");
    let proxy = CaptureProxy::start(([127, 0, 0, 1], port).into()).unwrap();
    let started = Instant::now();
    let client = Command::new(&python)
        .arg(root.join("tests/python/ouch_client.py"))
        .args(["127.0.0.1", &proxy.port().to_string(), "PY1"])
        .output()
        .expect("run ouch_client.py");
    assert!(started.elapsed() < Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&client.stdout);
    let mut server_log = String::new();
    let status = server.0.wait().unwrap();
    server.0.stderr.take().unwrap().read_to_string(&mut server_log).unwrap();
    assert!(
        client.status.success(),
        "ouch_client.py failed: {}\n{stdout}{}\nfake_server.py:\n{server_log}",
        client.status,
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(status.success(), "fake_server.py: {status}\n{server_log}");
    let json = support::tshark::Json::parse(stdout.trim()).expect("client prints one JSON line");
    let field =
        |k: &str| json.get(k).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("no {k} in {stdout}")).to_string();
    assert_eq!(field("type"), "A");
    assert_eq!(field("token"), "PY1");
    assert_eq!(field("side"), "B");
    assert_eq!(field("shares"), "10");
    assert_eq!(field("stock"), "CEA");
    assert_eq!(field("price"), "746300");
    assert_eq!(field("tif"), "99999");
    assert_eq!(field("firm"), "0001");
    assert_eq!(field("state"), "L");

    let chunks = proxy.finish();
    let path = pcap_path("python_client");
    write_soup_pcap(&path, PORT, &coalesce(&chunks)).unwrap();
    // nasdaq-protocols left-justifies the requested sequence number, which
    // Wireshark flags; everything else must be clean.
    let d = support::tshark::assert_tshark_clean_allowing(&path, PORT, &["soupbintcp.req_seq_num.invalid"]);
    assert!(
        d.experts.iter().any(|e| e.field == "soupbintcp.req_seq_num.invalid"),
        "nasdaq-protocols now right-justifies: drop the allowance"
    );
    let o = find(&d, 'O', "ouch.order_token", "PY1           ");
    assert_eq!(o.ouch_num("ouch.price"), 746_300);
    assert_eq!(o.ouch_char("ouch.customer_type"), 'R');
    check_accepted_fields(
        find(&d, 'A', "ouch.order_token", "PY1           "),
        "ouch.order_token",
        &demo_order("PY1"),
        101,
    );
    assert_eq!(d.pdus.last().map(|p| p.soup_type()), Some('O'), "client logs out");
}
