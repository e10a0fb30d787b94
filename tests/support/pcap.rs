//! A classic libpcap writer for tests: turns the two byte streams of one TCP
//! conversation into a capture file that Wireshark/tshark reads as a real
//! session (Ethernet, IPv4, TCP with handshake, data and close).
//!
//! Pure std. Include it from an integration test with
//! `#[path = "support/pcap.rs"] mod pcap;` or through `mod support;`.
#![allow(dead_code)]

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

/// Which way a chunk of bytes went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (what the client wrote).
    ToServer,
    /// Server to client (what the server wrote).
    ToClient,
}

/// Largest TCP payload put in one captured segment; longer chunks are split.
pub const MAX_SEGMENT: usize = 1400;

/// `LINKTYPE_ETHERNET` in the pcap global header.
const LINKTYPE_ETHERNET: u32 = 1;
/// TCP flag bits.
const FIN: u8 = 0x01;
/// TCP flag bits.
const SYN: u8 = 0x02;
/// TCP flag bits.
const PSH: u8 = 0x08;
/// TCP flag bits.
const ACK: u8 = 0x10;

/// How the byte chunks are cut into TCP segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segmenting {
    /// Each chunk on its own, cut every [`MAX_SEGMENT`] bytes wherever that
    /// falls.
    Raw,
    /// Each direction's stream re-cut so that every segment holds whole
    /// SoupBinTCP packets (as many as fit in [`MAX_SEGMENT`]; only a packet
    /// longer than that is split). The bytes are the same, only segment
    /// boundaries move. Needed for Wireshark 4.x: its SoupBinTCP dissector
    /// creates a new conversation at the frame holding Login Accepted, so
    /// TCP reassembly restarts after that frame and a packet straddling
    /// its end is lost (and every packet after it mis-framed).
    SoupPackets,
}

/// The endpoints and clock of a synthetic TCP conversation.
#[derive(Clone, Debug)]
pub struct TcpConversation {
    /// Client address.
    pub client_ip: Ipv4Addr,
    /// Client (ephemeral) port.
    pub client_port: u16,
    /// Server address.
    pub server_ip: Ipv4Addr,
    /// Server port, e.g. 7001 for SoupBinTCP order entry.
    pub server_port: u16,
    /// Timestamp of the first packet, microseconds since the Unix epoch.
    pub start_micros: u64,
    /// Time between two consecutive packets, microseconds.
    pub step_micros: u64,
    /// Whether to end the capture with a FIN exchange.
    pub close: bool,
    /// How chunks become segments.
    pub segmenting: Segmenting,
}

impl TcpConversation {
    /// A loopback conversation 127.0.0.1:50000 -> 127.0.0.1:`server_port`,
    /// starting 2026-11-24 09:30:00 Asia/Shanghai, 100 µs between packets.
    pub fn new(server_port: u16) -> Self {
        Self {
            client_ip: Ipv4Addr::LOCALHOST,
            client_port: 50_000,
            server_ip: Ipv4Addr::LOCALHOST,
            server_port,
            start_micros: (1_795_478_400 - 8 * 3_600 + 9 * 3_600 + 30 * 60) * 1_000_000,
            step_micros: 100,
            close: true,
            segmenting: Segmenting::Raw,
        }
    }

    /// [`Self::new`] with [`Segmenting::SoupPackets`]: use this for
    /// SoupBinTCP captures that tshark will read.
    pub fn soup(server_port: u16) -> Self {
        Self { segmenting: Segmenting::SoupPackets, ..Self::new(server_port) }
    }

    /// The TCP segments to send, in order.
    fn segments<B: AsRef<[u8]>>(&self, chunks: &[(Direction, B)]) -> Vec<(Direction, Vec<u8>)> {
        let mut out = Vec::new();
        if self.segmenting == Segmenting::Raw {
            for (dir, bytes) in chunks {
                out.extend(bytes.as_ref().chunks(MAX_SEGMENT).map(|c| (*dir, c.to_vec())));
            }
            return out;
        }
        // Bytes of an incomplete packet, per direction (to server, to client).
        let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        for (dir, bytes) in chunks {
            let buf = &mut pending[usize::from(*dir == Direction::ToClient)];
            buf.extend_from_slice(bytes.as_ref());
            let mut segment: Vec<u8> = Vec::new();
            let mut at = 0;
            while buf.len() - at >= 2 {
                let len = 2 + usize::from(u16::from_be_bytes([buf[at], buf[at + 1]]));
                if buf.len() - at < len {
                    break;
                }
                let packet = &buf[at..at + len];
                if !segment.is_empty() && segment.len() + len > MAX_SEGMENT {
                    out.push((*dir, std::mem::take(&mut segment)));
                }
                if len > MAX_SEGMENT {
                    out.extend(packet.chunks(MAX_SEGMENT).map(|c| (*dir, c.to_vec())));
                } else {
                    segment.extend_from_slice(packet);
                }
                at += len;
            }
            if !segment.is_empty() {
                out.push((*dir, segment));
            }
            buf.drain(..at);
        }
        for (k, rest) in pending.iter().enumerate() {
            let dir = if k == 0 { Direction::ToServer } else { Direction::ToClient };
            out.extend(rest.chunks(MAX_SEGMENT).map(|c| (dir, c.to_vec())));
        }
        out
    }

    /// The whole pcap file for `segments`, in order: a three-way handshake,
    /// the chunks as PSH/ACK segments of at most [`MAX_SEGMENT`] bytes (cut
    /// as `segmenting` says) with correct sequence and acknowledgement
    /// numbers and checksums, then (if `close`) FIN/ACK both ways and a
    /// last ACK.
    pub fn pcap<B: AsRef<[u8]>>(&self, segments: &[(Direction, B)]) -> Vec<u8> {
        let mut w = Writer::new(self.clone());
        // Initial sequence numbers: arbitrary but fixed, so files are reproducible.
        let (client_isn, server_isn) = (0x1000_0000u32, 0x2000_0000u32);
        w.packet(Direction::ToServer, client_isn, 0, SYN, &[]);
        w.packet(Direction::ToClient, server_isn, client_isn.wrapping_add(1), SYN | ACK, &[]);
        let mut client_next = client_isn.wrapping_add(1);
        let mut server_next = server_isn.wrapping_add(1);
        w.packet(Direction::ToServer, client_next, server_next, ACK, &[]);
        for (dir, chunk) in self.segments(segments) {
            let len = chunk.len() as u32;
            match dir {
                Direction::ToServer => {
                    w.packet(dir, client_next, server_next, PSH | ACK, &chunk);
                    client_next = client_next.wrapping_add(len);
                }
                Direction::ToClient => {
                    w.packet(dir, server_next, client_next, PSH | ACK, &chunk);
                    server_next = server_next.wrapping_add(len);
                }
            }
        }
        if self.close {
            w.packet(Direction::ToServer, client_next, server_next, FIN | ACK, &[]);
            client_next = client_next.wrapping_add(1);
            w.packet(Direction::ToClient, server_next, client_next, FIN | ACK, &[]);
            server_next = server_next.wrapping_add(1);
            w.packet(Direction::ToServer, client_next, server_next, ACK, &[]);
        }
        w.out
    }

    /// Writes [`Self::pcap`] to `path`.
    pub fn write<B: AsRef<[u8]>>(&self, path: &Path, segments: &[(Direction, B)]) -> io::Result<()> {
        fs::write(path, self.pcap(segments))
    }
}

/// Writes a pcap of one TCP conversation with the server on `server_port`,
/// chunks cut every [`MAX_SEGMENT`] bytes ([`Segmenting::Raw`]).
pub fn write_tcp_pcap<B: AsRef<[u8]>>(path: &Path, server_port: u16, segments: &[(Direction, B)]) -> io::Result<()> {
    TcpConversation::new(server_port).write(path, segments)
}

/// Writes a pcap of one SoupBinTCP conversation with the server on
/// `server_port`, segments holding whole packets
/// ([`Segmenting::SoupPackets`], which Wireshark needs): the one to use
/// with `tshark::assert_tshark_clean`.
pub fn write_soup_pcap<B: AsRef<[u8]>>(path: &Path, server_port: u16, segments: &[(Direction, B)]) -> io::Result<()> {
    TcpConversation::soup(server_port).write(path, segments)
}

/// Builds the file: global header, then one record per packet.
struct Writer {
    /// Endpoints and clock.
    conv: TcpConversation,
    /// The file so far.
    out: Vec<u8>,
    /// Packets written so far.
    count: u64,
    /// IPv4 identification, per direction (client, server).
    ip_id: [u16; 2],
}

impl Writer {
    /// A file holding only the pcap global header.
    fn new(conv: TcpConversation) -> Self {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microsecond timestamps
        out.extend_from_slice(&2u16.to_le_bytes()); // version major
        out.extend_from_slice(&4u16.to_le_bytes()); // version minor
        out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        Self { conv, out, count: 0, ip_id: [1, 1] }
    }

    /// Appends one Ethernet/IPv4/TCP packet.
    fn packet(&mut self, dir: Direction, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        let c = &self.conv;
        let (src, sport, dst, dport, id) = match dir {
            Direction::ToServer => (c.client_ip, c.client_port, c.server_ip, c.server_port, &mut self.ip_id[0]),
            Direction::ToClient => (c.server_ip, c.server_port, c.client_ip, c.client_port, &mut self.ip_id[1]),
        };
        let ip_id = *id;
        *id = id.wrapping_add(1);

        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend_from_slice(&sport.to_be_bytes());
        tcp.extend_from_slice(&dport.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&if flags & ACK != 0 { ack } else { 0 }.to_be_bytes());
        tcp.push(5 << 4); // data offset: 20 bytes, no options
        tcp.push(flags);
        tcp.extend_from_slice(&65_535u16.to_be_bytes()); // window
        tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum (below), urgent pointer
        tcp.extend_from_slice(payload);
        let mut pseudo = Vec::with_capacity(12 + tcp.len());
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&tcp);
        let sum = checksum(&pseudo);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());

        let mut ip = Vec::with_capacity(20);
        ip.push(0x45); // IPv4, 5 words of header
        ip.push(0); // DSCP/ECN
        ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&ip_id.to_be_bytes());
        ip.extend_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
        ip.push(64); // TTL
        ip.push(6); // TCP
        ip.extend_from_slice(&[0, 0]); // checksum (below)
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());

        let (src_mac, dst_mac) = match dir {
            Direction::ToServer => (CLIENT_MAC, SERVER_MAC),
            Direction::ToClient => (SERVER_MAC, CLIENT_MAC),
        };
        let mut frame = Vec::with_capacity(14 + ip.len() + tcp.len());
        frame.extend_from_slice(&dst_mac);
        frame.extend_from_slice(&src_mac);
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&tcp);

        let t = self.conv.start_micros + self.count * self.conv.step_micros;
        self.count += 1;
        self.out.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
        self.out.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        self.out.extend_from_slice(&(frame.len() as u32).to_le_bytes()); // captured length
        self.out.extend_from_slice(&(frame.len() as u32).to_le_bytes()); // original length
        self.out.extend_from_slice(&frame);
    }
}

/// Locally administered MAC of the client side.
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Locally administered MAC of the server side.
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
