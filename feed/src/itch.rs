//! ITCH 5.0 market-data messages: plain structs over raw wire fields.
//!
//! Every standard message is byte-exact with Nasdaq's TotalView-ITCH 5.0
//! specification: type 1, stock locate 2, tracking number 2, timestamp 6
//! (48-bit big-endian nanoseconds since midnight), then the body in the
//! specification's field order. Integers are big-endian, `Alpha` fields are
//! ASCII left-justified and space-padded, prices are `u32` with 4 implied
//! decimals (97.49 yuan = `974_900`).
//!
//! The one non-standard message is our End of Snapshot `G`: type + sequence
//! number 20A (ASCII decimal, right-justified, space-padded), no header.
//!
//! Encoding writes into the caller's buffer and returns the length; it never
//! allocates. Decoding is check-then-parse: the type byte and the exact length
//! are checked first, then fields are read at fixed offsets from a fixed-size
//! array, so no input can make it panic. Field values (side letters, event
//! codes...) are carried raw and not validated here: that is the consumer's
//! business, and keeping them raw makes `encode(decode(bytes)) == bytes` hold
//! for every well-formed standard message.
//!
//! # Layout
//! - this file: the header, errors, [`Message`] over every type;
//! - `wire`: the fixed-offset field helpers and the codec macro;
//! - `day`: `S R H J`; `orders`: `A E X D U`; `trades`: `P Q`;
//!   `snapshot`: `G`.

use thiserror::Error;

/// Length of the common header: type 1, stock locate 2, tracking number 2,
/// timestamp 6.
pub const HEADER_LEN: usize = 11;

/// Length of the longest message in this module (Trade `P`, 44 bytes): a
/// buffer this long can hold any [`Message`].
pub const MESSAGE_LEN_MAX: usize = 44;

/// Largest timestamp that fits the 48-bit wire field. A trading day has at
/// most 86,400 s = 8.64e13 ns, well below it.
pub const TIMESTAMP_MAX: u64 = (1 << 48) - 1;

const _: () = assert!(86_400 * 1_000_000_000 <= TIMESTAMP_MAX);

/// Why a byte slice is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The slice is empty: there is no type byte.
    #[error("empty ITCH message")]
    Empty,
    /// The type byte is not one this module knows.
    #[error("unknown ITCH message type {0:#04x}")]
    UnknownType(u8),
    /// A per-type decoder was given a message of another type.
    #[error("expected ITCH message type {expected:#04x}, got {actual:#04x}")]
    WrongType {
        /// The type the decoder handles.
        expected: u8,
        /// The type byte found.
        actual: u8,
    },
    /// The length does not match the fixed length of the type.
    #[error("ITCH message type {kind:#04x} is {expected} bytes, got {actual}")]
    WrongLength {
        /// The type byte.
        kind: u8,
        /// The fixed length of that type.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// The End of Snapshot sequence number is blank, not decimal, or above
    /// `u64::MAX`.
    #[error("End of Snapshot sequence number is not a decimal u64")]
    BadSequenceNumber,
}

/// Left-justifies `text` in an `N`-byte `Alpha` field padded with spaces
/// (stock symbols, session names).
///
/// Returns `None` if `text` is longer than `N` bytes or not printable ASCII.
#[must_use]
pub fn alpha<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() > N || !bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return None;
    }
    let mut field = [b' '; N];
    field[..bytes.len()].copy_from_slice(bytes);
    Some(field)
}

/// The common header of every standard message (everything but the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Stock locate: 1-based instrument index in directory order, 0 for
    /// system messages.
    pub locate: u16,
    /// Nasdaq's tracking number; always 0 on our feed.
    pub tracking: u16,
    /// Nanoseconds since midnight (Asia/Shanghai); only the low 48 bits go on
    /// the wire, and encoding asserts it is at most [`TIMESTAMP_MAX`].
    pub timestamp: u64,
}

impl Header {
    /// A header with tracking number 0.
    #[must_use]
    pub const fn new(locate: u16, timestamp: u64) -> Self {
        Self { locate, tracking: 0, timestamp }
    }
}

mod day;
mod orders;
mod snapshot;
mod trades;
mod wire;

pub use day::{LuldAuctionCollar, StockDirectory, StockTradingAction, SystemEvent};
pub use orders::{AddOrder, OrderCancel, OrderDelete, OrderExecuted, OrderReplace};
pub use snapshot::EndOfSnapshot;
pub use trades::{CrossTrade, Trade};

// ---- the enum over all types ----

/// Any message of our feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// `S` System Event.
    SystemEvent(SystemEvent),
    /// `R` Stock Directory.
    StockDirectory(StockDirectory),
    /// `H` Stock Trading Action.
    StockTradingAction(StockTradingAction),
    /// `J` LULD Auction Collar.
    LuldAuctionCollar(LuldAuctionCollar),
    /// `A` Add Order.
    AddOrder(AddOrder),
    /// `E` Order Executed.
    OrderExecuted(OrderExecuted),
    /// `X` Order Cancel.
    OrderCancel(OrderCancel),
    /// `D` Order Delete.
    OrderDelete(OrderDelete),
    /// `U` Order Replace.
    OrderReplace(OrderReplace),
    /// `P` Trade (non-cross).
    Trade(Trade),
    /// `Q` Cross Trade.
    CrossTrade(CrossTrade),
    /// `G` End of Snapshot (ours).
    EndOfSnapshot(EndOfSnapshot),
}

/// Every type byte with its fixed length, in the table order of PROTOCOL §7.2, then `G` (§10).
pub const MESSAGE_TYPES: [(u8, usize); 12] = [
    (SystemEvent::TYPE, SystemEvent::LEN),
    (StockDirectory::TYPE, StockDirectory::LEN),
    (StockTradingAction::TYPE, StockTradingAction::LEN),
    (LuldAuctionCollar::TYPE, LuldAuctionCollar::LEN),
    (AddOrder::TYPE, AddOrder::LEN),
    (OrderExecuted::TYPE, OrderExecuted::LEN),
    (OrderCancel::TYPE, OrderCancel::LEN),
    (OrderDelete::TYPE, OrderDelete::LEN),
    (OrderReplace::TYPE, OrderReplace::LEN),
    (Trade::TYPE, Trade::LEN),
    (CrossTrade::TYPE, CrossTrade::LEN),
    (EndOfSnapshot::TYPE, EndOfSnapshot::LEN),
];

const _: () = {
    let mut i = 0;
    while i < MESSAGE_TYPES.len() {
        assert!(MESSAGE_TYPES[i].1 <= MESSAGE_LEN_MAX);
        i += 1;
    }
    assert!(Trade::LEN == MESSAGE_LEN_MAX);
};

impl Message {
    /// Decodes one message, dispatching on the type byte (check-then-parse;
    /// never panics).
    ///
    /// # Errors
    /// [`DecodeError::Empty`] for an empty slice,
    /// [`DecodeError::UnknownType`] for a type byte not in
    /// [`MESSAGE_TYPES`], [`DecodeError::WrongLength`] if the length is not
    /// that type's, [`DecodeError::BadSequenceNumber`] for a malformed `G`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Some(&kind) = bytes.first() else {
            return Err(DecodeError::Empty);
        };
        match kind {
            b'S' => SystemEvent::decode(bytes).map(Self::SystemEvent),
            b'R' => StockDirectory::decode(bytes).map(Self::StockDirectory),
            b'H' => StockTradingAction::decode(bytes).map(Self::StockTradingAction),
            b'J' => LuldAuctionCollar::decode(bytes).map(Self::LuldAuctionCollar),
            b'A' => AddOrder::decode(bytes).map(Self::AddOrder),
            b'E' => OrderExecuted::decode(bytes).map(Self::OrderExecuted),
            b'X' => OrderCancel::decode(bytes).map(Self::OrderCancel),
            b'D' => OrderDelete::decode(bytes).map(Self::OrderDelete),
            b'U' => OrderReplace::decode(bytes).map(Self::OrderReplace),
            b'P' => Trade::decode(bytes).map(Self::Trade),
            b'Q' => CrossTrade::decode(bytes).map(Self::CrossTrade),
            b'G' => EndOfSnapshot::decode(bytes).map(Self::EndOfSnapshot),
            _ => Err(DecodeError::UnknownType(kind)),
        }
    }

    /// Writes the message into the start of `buf` and returns its length
    /// ([`Message::wire_len`]). Never allocates.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Message::wire_len`] (a buffer of
    /// [`MESSAGE_LEN_MAX`] always suffices), or a timestamp exceeds
    /// [`TIMESTAMP_MAX`]: both are caller bugs.
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) -> usize {
        match self {
            Self::SystemEvent(m) => m.encode(buf),
            Self::StockDirectory(m) => m.encode(buf),
            Self::StockTradingAction(m) => m.encode(buf),
            Self::LuldAuctionCollar(m) => m.encode(buf),
            Self::AddOrder(m) => m.encode(buf),
            Self::OrderExecuted(m) => m.encode(buf),
            Self::OrderCancel(m) => m.encode(buf),
            Self::OrderDelete(m) => m.encode(buf),
            Self::OrderReplace(m) => m.encode(buf),
            Self::Trade(m) => m.encode(buf),
            Self::CrossTrade(m) => m.encode(buf),
            Self::EndOfSnapshot(m) => m.encode(buf),
        }
    }

    /// The message's type byte.
    #[must_use]
    pub const fn message_type(&self) -> u8 {
        match self {
            Self::SystemEvent(_) => SystemEvent::TYPE,
            Self::StockDirectory(_) => StockDirectory::TYPE,
            Self::StockTradingAction(_) => StockTradingAction::TYPE,
            Self::LuldAuctionCollar(_) => LuldAuctionCollar::TYPE,
            Self::AddOrder(_) => AddOrder::TYPE,
            Self::OrderExecuted(_) => OrderExecuted::TYPE,
            Self::OrderCancel(_) => OrderCancel::TYPE,
            Self::OrderDelete(_) => OrderDelete::TYPE,
            Self::OrderReplace(_) => OrderReplace::TYPE,
            Self::Trade(_) => Trade::TYPE,
            Self::CrossTrade(_) => CrossTrade::TYPE,
            Self::EndOfSnapshot(_) => EndOfSnapshot::TYPE,
        }
    }

    /// The message's length on the wire.
    #[must_use]
    pub const fn wire_len(&self) -> usize {
        match self {
            Self::SystemEvent(_) => SystemEvent::LEN,
            Self::StockDirectory(_) => StockDirectory::LEN,
            Self::StockTradingAction(_) => StockTradingAction::LEN,
            Self::LuldAuctionCollar(_) => LuldAuctionCollar::LEN,
            Self::AddOrder(_) => AddOrder::LEN,
            Self::OrderExecuted(_) => OrderExecuted::LEN,
            Self::OrderCancel(_) => OrderCancel::LEN,
            Self::OrderDelete(_) => OrderDelete::LEN,
            Self::OrderReplace(_) => OrderReplace::LEN,
            Self::Trade(_) => Trade::LEN,
            Self::CrossTrade(_) => CrossTrade::LEN,
            Self::EndOfSnapshot(_) => EndOfSnapshot::LEN,
        }
    }
}

macro_rules! from_variant {
    ($($name:ident),* $(,)?) => {
        $(
            impl From<$name> for Message {
                fn from(m: $name) -> Self {
                    Self::$name(m)
                }
            }
        )*
    };
}
from_variant!(
    SystemEvent,
    StockDirectory,
    StockTradingAction,
    LuldAuctionCollar,
    AddOrder,
    OrderExecuted,
    OrderCancel,
    OrderDelete,
    OrderReplace,
    Trade,
    CrossTrade,
    EndOfSnapshot,
);
