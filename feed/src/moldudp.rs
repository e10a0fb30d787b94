//! MoldUDP64: the UDP framing of the feed.
//!
//! A downstream packet is a 20-byte header (session 10A, sequence number u64
//! of the first message, message count u16) followed by `count` blocks of
//! `u16 length` + message. Count 0 is a heartbeat and 0xFFFF end of session;
//! both carry the next sequence number and no blocks. A re-request is the
//! same 20-byte header sent to the re-request port: session, first sequence
//! number wanted, count wanted.
//!
//! [`Packer`] fills one datagram of at most [`DATAGRAM_MAX`] bytes in a buffer
//! it owns (no allocation per message); [`Datagram::decode`] checks every
//! block of a received packet before handing out any message.

use crate::itch;
use thiserror::Error;

/// Length of the session field, `Alpha` 10.
pub const SESSION_LEN: usize = 10;
/// Length of the packet header (also the whole re-request packet).
pub const HEADER_LEN: usize = 20;
/// Length of the `u16` length in front of every message.
pub const BLOCK_HEADER_LEN: usize = 2;
/// Largest datagram the [`Packer`] produces (fits a 1,500-byte Ethernet MTU
/// after IP and UDP headers, with room to spare).
pub const DATAGRAM_MAX: usize = 1_400;
/// Largest message one datagram can carry.
pub const MESSAGE_LEN_MAX: usize = DATAGRAM_MAX - HEADER_LEN - BLOCK_HEADER_LEN;
/// Message count of a heartbeat.
pub const HEARTBEAT_COUNT: u16 = 0;
/// Message count of an end-of-session packet.
pub const END_OF_SESSION_COUNT: u16 = 0xFFFF;

// Any ITCH message fits, and a full datagram can never reach the count
// reserved for end of session (even with empty messages).
const _: () = assert!(itch::MESSAGE_LEN_MAX <= MESSAGE_LEN_MAX);
const _: () = assert!((DATAGRAM_MAX - HEADER_LEN) / BLOCK_HEADER_LEN < END_OF_SESSION_COUNT as usize);

/// Why a received packet is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MoldError {
    /// Fewer bytes than the 20-byte header.
    #[error("MoldUDP64 packet of {0} bytes is shorter than the 20-byte header")]
    TooShort(usize),
    /// A re-request is exactly 20 bytes.
    #[error("MoldUDP64 re-request must be 20 bytes, got {0}")]
    WrongReRequestLength(usize),
    /// A block's `u16` length field itself runs past the end.
    #[error("MoldUDP64 block {index}: length field runs past the end")]
    TruncatedBlockLength {
        /// 0-based index of the block.
        index: u16,
    },
    /// A block's message runs past the end of the packet.
    #[error("MoldUDP64 block {index}: {len} bytes announced, {remaining} left")]
    BlockOverrun {
        /// 0-based index of the block.
        index: u16,
        /// The announced message length.
        len: usize,
        /// Bytes left in the packet after the length field.
        remaining: usize,
    },
    /// Bytes after the last announced block (or after a heartbeat or
    /// end-of-session header).
    #[error("MoldUDP64 packet has {0} bytes after its last message")]
    TrailingBytes(usize),
}

/// Why a message was not appended to the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PackError {
    /// No room left: send [`Packer::datagram`], [`Packer::clear`], push again.
    #[error("MoldUDP64 datagram full")]
    Full,
    /// The message is longer than [`MESSAGE_LEN_MAX`] and fits no datagram.
    #[error("message of {0} bytes can never fit a MoldUDP64 datagram")]
    TooLarge(usize),
}

/// What a packet is, from its message count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// Count 1..=0xFFFE: carries messages.
    Messages,
    /// Count 0: heartbeat.
    Heartbeat,
    /// Count 0xFFFF: end of session.
    EndOfSession,
}

/// The 20-byte packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Session name, `Alpha` 10.
    pub session: [u8; SESSION_LEN],
    /// Sequence number of the first message (heartbeat and end of session:
    /// the next sequence number).
    pub sequence: u64,
    /// Message count, or [`HEARTBEAT_COUNT`] / [`END_OF_SESSION_COUNT`].
    pub count: u16,
}

impl Header {
    /// The header's 20 bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut o = [0; HEADER_LEN];
        o[..10].copy_from_slice(&self.session);
        o[10..18].copy_from_slice(&self.sequence.to_be_bytes());
        o[18..].copy_from_slice(&self.count.to_be_bytes());
        o
    }

    /// Reads the header at the start of a packet.
    ///
    /// # Errors
    /// [`MoldError::TooShort`] if `bytes` is shorter than [`HEADER_LEN`].
    pub fn decode(bytes: &[u8]) -> Result<Self, MoldError> {
        let Some(b) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(MoldError::TooShort(bytes.len()));
        };
        Ok(Self::read(b))
    }

    fn read(b: &[u8; HEADER_LEN]) -> Self {
        let mut session = [0; SESSION_LEN];
        session.copy_from_slice(&b[..10]);
        let mut sequence = [0; 8];
        sequence.copy_from_slice(&b[10..18]);
        Self { session, sequence: u64::from_be_bytes(sequence), count: u16::from_be_bytes([b[18], b[19]]) }
    }

    /// Heartbeat, end of session, or a packet with messages.
    #[must_use]
    pub const fn kind(&self) -> PacketKind {
        match self.count {
            HEARTBEAT_COUNT => PacketKind::Heartbeat,
            END_OF_SESSION_COUNT => PacketKind::EndOfSession,
            _ => PacketKind::Messages,
        }
    }

    /// Number of message blocks that follow: 0 for heartbeat and end of
    /// session.
    #[must_use]
    pub const fn message_count(&self) -> u16 {
        match self.kind() {
            PacketKind::Messages => self.count,
            PacketKind::Heartbeat | PacketKind::EndOfSession => 0,
        }
    }
}

/// A re-request: asks the re-request server for `count` messages from
/// `sequence` on, in `session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReRequest {
    /// Session the messages belong to.
    pub session: [u8; SESSION_LEN],
    /// First sequence number wanted.
    pub sequence: u64,
    /// Number of messages wanted.
    pub count: u16,
}

impl ReRequest {
    /// The request's 20 bytes (the same layout as a packet header).
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        Header { session: self.session, sequence: self.sequence, count: self.count }.encode()
    }

    /// Decodes a re-request datagram.
    ///
    /// # Errors
    /// [`MoldError::WrongReRequestLength`] unless `bytes` is exactly
    /// [`HEADER_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, MoldError> {
        let b: &[u8; HEADER_LEN] = bytes.try_into().map_err(|_| MoldError::WrongReRequestLength(bytes.len()))?;
        let h = Header::read(b);
        Ok(Self { session: h.session, sequence: h.sequence, count: h.count })
    }
}

/// Splits the block at the start of `rest` into (message, rest after it).
fn split_block(rest: &[u8], index: u16) -> Result<(&[u8], &[u8]), MoldError> {
    let Some((len, rest)) = rest.split_first_chunk::<BLOCK_HEADER_LEN>() else {
        return Err(MoldError::TruncatedBlockLength { index });
    };
    let len = usize::from(u16::from_be_bytes(*len));
    rest.split_at_checked(len).ok_or(MoldError::BlockOverrun { index, len, remaining: rest.len() })
}

/// A received downstream packet whose blocks have all been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    header: Header,
    blocks: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Checks the header and every block (each length within the packet, no
    /// bytes after the last) before anything is handed out. Never panics.
    ///
    /// # Errors
    /// [`MoldError`] for a short header, a block running past the end, or
    /// trailing bytes.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, MoldError> {
        let header = Header::decode(bytes)?;
        let blocks = &bytes[HEADER_LEN..];
        let mut rest = blocks;
        for index in 0..header.message_count() {
            rest = split_block(rest, index)?.1;
        }
        if !rest.is_empty() {
            return Err(MoldError::TrailingBytes(rest.len()));
        }
        Ok(Self { header, blocks })
    }

    /// The packet header.
    #[must_use]
    pub const fn header(&self) -> Header {
        self.header
    }

    /// The messages, in sequence order (the first has
    /// `header().sequence`).
    #[must_use]
    pub const fn messages(&self) -> Messages<'a> {
        Messages { rest: self.blocks, remaining: self.header.message_count() }
    }
}

/// Iterator over the messages of a checked [`Datagram`].
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    remaining: u16,
}

impl<'a> Iterator for Messages<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        // Checked in `Datagram::decode`; a failure here would just end the
        // iteration.
        let (message, rest) = split_block(self.rest, 0).ok()?;
        self.rest = rest;
        self.remaining -= 1;
        Some(message)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.remaining);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Messages<'_> {}

/// Fills MoldUDP64 datagrams in a fixed buffer it owns.
///
/// The buffer always holds a valid packet: an empty packer's
/// [`datagram`](Self::datagram) is a heartbeat. Push messages until
/// [`PackError::Full`], send [`datagram`](Self::datagram),
/// [`clear`](Self::clear), push again.
#[derive(Debug, Clone)]
pub struct Packer {
    buf: [u8; DATAGRAM_MAX],
    len: usize,
    count: u16,
    next_sequence: u64,
}

impl Packer {
    /// A packer for `session` whose first message gets `next_sequence`
    /// (1 at the start of the day).
    #[must_use]
    pub fn new(session: [u8; SESSION_LEN], next_sequence: u64) -> Self {
        let mut packer = Self { buf: [0; DATAGRAM_MAX], len: HEADER_LEN, count: 0, next_sequence };
        packer.buf[..SESSION_LEN].copy_from_slice(&session);
        packer.clear();
        packer
    }

    /// Numbers the next message `next_sequence`: the number its day log
    /// gave it. The feed calls this before packing each batch it logged,
    /// so the datagrams never number on their own past the log (one
    /// numbering for UDP, TCP, re-requests and snapshots). Only between
    /// datagrams: false (and nothing changed) while one is half-filled.
    #[must_use]
    pub fn number_from(&mut self, next_sequence: u64) -> bool {
        if !self.is_empty() {
            return false;
        }
        self.next_sequence = next_sequence;
        self.clear();
        true
    }

    /// Appends one encoded message; returns its sequence number.
    ///
    /// # Errors
    /// [`PackError::Full`] if it does not fit what is left of this datagram
    /// (nothing is written), [`PackError::TooLarge`] if it fits no datagram.
    pub fn push(&mut self, message: &[u8]) -> Result<u64, PackError> {
        let len = message.len();
        let start = self.reserve(len)?;
        self.buf[start..start + len].copy_from_slice(message);
        Ok(self.commit(start + len))
    }

    /// Encodes `message` straight into the datagram (no intermediate copy);
    /// returns its sequence number.
    ///
    /// # Errors
    /// [`PackError::Full`] if it does not fit what is left of this datagram
    /// (nothing is written).
    ///
    /// # Panics
    /// If the message's timestamp exceeds [`itch::TIMESTAMP_MAX`] (a caller
    /// bug).
    pub fn push_itch(&mut self, message: &itch::Message) -> Result<u64, PackError> {
        let start = self.reserve(message.wire_len())?;
        let len = message.encode(&mut self.buf[start..]);
        Ok(self.commit(start + len))
    }

    /// Checks room for a `len`-byte message and writes its block length;
    /// returns where the message goes.
    fn reserve(&mut self, len: usize) -> Result<usize, PackError> {
        if len > MESSAGE_LEN_MAX {
            return Err(PackError::TooLarge(len));
        }
        if BLOCK_HEADER_LEN + len > self.remaining() {
            return Err(PackError::Full);
        }
        // `len <= MESSAGE_LEN_MAX < u16::MAX`, so the cast is exact.
        let block_len = (len as u16).to_be_bytes();
        self.buf[self.len..self.len + BLOCK_HEADER_LEN].copy_from_slice(&block_len);
        Ok(self.len + BLOCK_HEADER_LEN)
    }

    /// Accounts for the message just written, ending at `end`.
    fn commit(&mut self, end: usize) -> u64 {
        self.len = end;
        self.count += 1;
        self.buf[18..20].copy_from_slice(&self.count.to_be_bytes());
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        sequence
    }

    /// The packet so far: header + blocks. An empty packer's is a heartbeat
    /// carrying [`next_sequence`](Self::next_sequence).
    #[must_use]
    pub fn datagram(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Starts the next datagram (after the caller sent this one); sequence
    /// numbers carry on.
    pub fn clear(&mut self) {
        self.len = HEADER_LEN;
        self.count = 0;
        self.buf[10..18].copy_from_slice(&self.next_sequence.to_be_bytes());
        self.buf[18..20].copy_from_slice(&HEARTBEAT_COUNT.to_be_bytes());
    }

    /// Bytes left in this datagram: an `n`-byte message fits if
    /// `BLOCK_HEADER_LEN + n <= remaining()`.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        DATAGRAM_MAX - self.len
    }

    /// Number of messages in this datagram.
    #[must_use]
    pub const fn count(&self) -> u16 {
        self.count
    }

    /// Whether this datagram has no message yet.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Length of this datagram so far, header included.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Sequence number of this datagram's first message (if any).
    #[must_use]
    pub const fn first_sequence(&self) -> u64 {
        self.next_sequence - self.count as u64
    }

    /// Sequence number the next pushed message will get.
    #[must_use]
    pub const fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The session name.
    #[must_use]
    pub fn session(&self) -> [u8; SESSION_LEN] {
        let mut session = [0; SESSION_LEN];
        session.copy_from_slice(&self.buf[..SESSION_LEN]);
        session
    }

    /// A heartbeat (count 0) carrying [`next_sequence`](Self::next_sequence).
    /// Send pending messages first: the heartbeat announces them as sent.
    #[must_use]
    pub fn heartbeat(&self) -> [u8; HEADER_LEN] {
        self.special(HEARTBEAT_COUNT)
    }

    /// An end-of-session packet (count 0xFFFF) carrying
    /// [`next_sequence`](Self::next_sequence). Send pending messages first.
    #[must_use]
    pub fn end_of_session(&self) -> [u8; HEADER_LEN] {
        self.special(END_OF_SESSION_COUNT)
    }

    fn special(&self, count: u16) -> [u8; HEADER_LEN] {
        Header { session: self.session(), sequence: self.next_sequence, count }.encode()
    }
}
