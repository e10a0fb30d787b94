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

// ---- fixed-offset helpers (inlined; offsets are constants at every call) ----

/// The first `N` bytes of `buf` as an array.
///
/// # Panics
/// If `buf` is shorter than `N`: a caller bug (buffers are sized by `LEN`).
#[inline]
fn out<const N: usize>(buf: &mut [u8]) -> &mut [u8; N] {
    let len = buf.len();
    match buf.first_chunk_mut::<N>() {
        Some(out) => out,
        None => panic!("ITCH encode buffer of {len} bytes, message needs {N}"),
    }
}

/// Checks the type byte, then the exact length.
#[inline]
fn check<const N: usize>(bytes: &[u8], kind: u8) -> Result<&[u8; N], DecodeError> {
    let Some(&actual) = bytes.first() else {
        return Err(DecodeError::Empty);
    };
    if actual != kind {
        return Err(DecodeError::WrongType { expected: kind, actual });
    }
    bytes.try_into().map_err(|_| DecodeError::WrongLength { kind, expected: N, actual: bytes.len() })
}

#[inline]
fn put<const N: usize>(o: &mut [u8; N], at: usize, field: &[u8]) {
    o[at..at + field.len()].copy_from_slice(field);
}

#[inline]
fn get<const N: usize, const M: usize>(b: &[u8; N], at: usize) -> [u8; M] {
    let mut field = [0; M];
    field.copy_from_slice(&b[at..at + M]);
    field
}

#[inline]
fn get_u16<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes(get(b, at))
}

#[inline]
fn get_u32<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    u32::from_be_bytes(get(b, at))
}

#[inline]
fn get_u64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    u64::from_be_bytes(get(b, at))
}

#[inline]
fn put_header<const N: usize>(o: &mut [u8; N], kind: u8, h: &Header) {
    assert!(h.timestamp <= TIMESTAMP_MAX, "ITCH timestamp {} does not fit 48 bits", h.timestamp);
    o[0] = kind;
    put(o, 1, &h.locate.to_be_bytes());
    put(o, 3, &h.tracking.to_be_bytes());
    put(o, 5, &h.timestamp.to_be_bytes()[2..]);
}

#[inline]
fn get_header<const N: usize>(b: &[u8; N]) -> Header {
    let mut ts = [0; 8];
    ts[2..].copy_from_slice(&b[5..11]);
    Header { locate: get_u16(b, 1), tracking: get_u16(b, 3), timestamp: u64::from_be_bytes(ts) }
}

/// Generates `TYPE`, `LEN`, `encode` and `decode` from the type's private
/// `write(&self, &mut [u8; LEN])` and `read(&[u8; LEN]) -> Self`.
macro_rules! fixed_codec {
    ($name:ident, $kind:literal, $len:literal) => {
        impl $name {
            /// The message type byte.
            pub const TYPE: u8 = $kind;
            /// Length on the wire, type byte included.
            pub const LEN: usize = $len;

            /// Writes the message into the first [`Self::LEN`] bytes of `buf`
            /// and returns [`Self::LEN`]. Never allocates.
            ///
            /// # Panics
            /// If `buf` is shorter than [`Self::LEN`], or the timestamp exceeds
            /// [`TIMESTAMP_MAX`]: both are caller bugs.
            #[inline]
            pub fn encode(&self, buf: &mut [u8]) -> usize {
                self.write(out::<$len>(buf));
                $len
            }

            /// Decodes exactly one message of this type (check-then-parse).
            ///
            /// # Errors
            /// [`DecodeError`] if `bytes` is empty, has another type byte, or
            /// is not exactly [`Self::LEN`] bytes long.
            #[inline]
            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                check::<$len>(bytes, $kind).map(Self::read)
            }
        }
    };
}

// ---- S System Event (12) ----

/// `S` System Event: start and end of the day's phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SystemEvent {
    /// Header; locate 0.
    pub header: Header,
    /// One of the `SystemEvent::*` event codes.
    pub event_code: u8,
}

impl SystemEvent {
    /// `O`: start of messages.
    pub const START_OF_MESSAGES: u8 = b'O';
    /// `S`: start of system hours.
    pub const START_OF_SYSTEM_HOURS: u8 = b'S';
    /// `Q`: start of market hours.
    pub const START_OF_MARKET_HOURS: u8 = b'Q';
    /// `M`: end of market hours (the close).
    pub const END_OF_MARKET_HOURS: u8 = b'M';
    /// `E`: end of system hours.
    pub const END_OF_SYSTEM_HOURS: u8 = b'E';
    /// `C`: end of messages.
    pub const END_OF_MESSAGES: u8 = b'C';

    fn write(&self, o: &mut [u8; 12]) {
        put_header(o, Self::TYPE, &self.header);
        o[11] = self.event_code;
    }

    fn read(b: &[u8; 12]) -> Self {
        Self { header: get_header(b), event_code: b[11] }
    }
}
fixed_codec!(SystemEvent, b'S', 12);

// ---- R Stock Directory (39) ----

/// `R` Stock Directory: one per instrument at the start of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StockDirectory {
    /// Header; locate = this instrument's locate.
    pub header: Header,
    /// Instrument code, `Alpha` 8.
    pub stock: [u8; 8],
    /// Market category (Nasdaq tier / listing exchange).
    pub market_category: u8,
    /// Financial status indicator.
    pub financial_status: u8,
    /// Round lot size in shares (tonnes here).
    pub round_lot_size: u32,
    /// `Y` only round lots accepted, `N` odd and mixed lots too.
    pub round_lots_only: u8,
    /// Issue classification.
    pub issue_classification: u8,
    /// Issue sub-type, `Alpha` 2.
    pub issue_subtype: [u8; 2],
    /// `P` live/production, `T` test.
    pub authenticity: u8,
    /// Reg SHO short sale threshold indicator (`Y`, `N`, ` `).
    pub short_sale_threshold: u8,
    /// IPO flag (`Y`, `N`, ` `).
    pub ipo_flag: u8,
    /// LULD reference price tier (`1`, `2`, ` `).
    pub luld_tier: u8,
    /// Exchange-traded product flag (`Y`, `N`, ` `).
    pub etp_flag: u8,
    /// ETP leverage factor.
    pub etp_leverage_factor: u32,
    /// Inverse ETP indicator (`Y`, `N`).
    pub inverse_indicator: u8,
}

impl StockDirectory {
    /// The directory entry of a carbon instrument (CEA vintage or CCER):
    ///
    /// | field | value | why |
    /// |---|---|---|
    /// | market category | ` ` | not a Nasdaq or US-exchange listing ("not available") |
    /// | financial status | ` ` | an allowance has no issuer whose finances could be deficient |
    /// | round lot size | 1 | lot is 1 t; every quantity is a round lot |
    /// | round lots only | `N` | no odd-lot restriction to announce |
    /// | issue classification | `Q` | "other securities": allowances are not shares, bonds or units |
    /// | issue sub-type | `Z ` | "not applicable" |
    /// | authenticity | `P` | live/production (a test market may set `T`) |
    /// | short sale threshold | ` ` | Reg SHO does not apply |
    /// | IPO flag | ` ` | not applicable |
    /// | LULD tier | ` ` | US LULD tiers do not apply; our bands come in `J` |
    /// | ETP flag | `N` | not an exchange-traded product |
    /// | ETP leverage factor | 0 | not an ETP |
    /// | inverse indicator | `N` | not an ETP |
    ///
    /// `itchy` accepts every one of these values.
    #[must_use]
    pub const fn carbon(header: Header, stock: [u8; 8]) -> Self {
        Self {
            header,
            stock,
            market_category: b' ',
            financial_status: b' ',
            round_lot_size: 1,
            round_lots_only: b'N',
            issue_classification: b'Q',
            issue_subtype: *b"Z ",
            authenticity: b'P',
            short_sale_threshold: b' ',
            ipo_flag: b' ',
            luld_tier: b' ',
            etp_flag: b'N',
            etp_leverage_factor: 0,
            inverse_indicator: b'N',
        }
    }

    fn write(&self, o: &mut [u8; 39]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.stock);
        o[19] = self.market_category;
        o[20] = self.financial_status;
        put(o, 21, &self.round_lot_size.to_be_bytes());
        o[25] = self.round_lots_only;
        o[26] = self.issue_classification;
        put(o, 27, &self.issue_subtype);
        o[29] = self.authenticity;
        o[30] = self.short_sale_threshold;
        o[31] = self.ipo_flag;
        o[32] = self.luld_tier;
        o[33] = self.etp_flag;
        put(o, 34, &self.etp_leverage_factor.to_be_bytes());
        o[38] = self.inverse_indicator;
    }

    fn read(b: &[u8; 39]) -> Self {
        Self {
            header: get_header(b),
            stock: get(b, 11),
            market_category: b[19],
            financial_status: b[20],
            round_lot_size: get_u32(b, 21),
            round_lots_only: b[25],
            issue_classification: b[26],
            issue_subtype: get(b, 27),
            authenticity: b[29],
            short_sale_threshold: b[30],
            ipo_flag: b[31],
            luld_tier: b[32],
            etp_flag: b[33],
            etp_leverage_factor: get_u32(b, 34),
            inverse_indicator: b[38],
        }
    }
}
fixed_codec!(StockDirectory, b'R', 39);

// ---- H Stock Trading Action (25) ----

/// `H` Stock Trading Action: an instrument's trading state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StockTradingAction {
    /// Header.
    pub header: Header,
    /// Instrument code, `Alpha` 8.
    pub stock: [u8; 8],
    /// `T` trading, `P` paused (lunch break), `H` halted (operator).
    pub trading_state: u8,
    /// Nasdaq's reserved byte; we send `b' '` (an empty `Alpha` 1).
    pub reserved: u8,
    /// Reason, `Alpha` 4.
    pub reason: [u8; 4],
}

impl StockTradingAction {
    /// `T`: trading.
    pub const TRADING: u8 = b'T';
    /// `P`: paused (the lunch break).
    pub const PAUSED: u8 = b'P';
    /// `H`: halted by the operator.
    pub const HALTED: u8 = b'H';

    fn write(&self, o: &mut [u8; 25]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.stock);
        o[19] = self.trading_state;
        o[20] = self.reserved;
        put(o, 21, &self.reason);
    }

    fn read(b: &[u8; 25]) -> Self {
        Self { header: get_header(b), stock: get(b, 11), trading_state: b[19], reserved: b[20], reason: get(b, 21) }
    }
}
fixed_codec!(StockTradingAction, b'H', 25);

// ---- J LULD Auction Collar (35) ----

/// `J` LULD Auction Collar: at the start of the day, the reference price
/// (previous close) and the listing band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LuldAuctionCollar {
    /// Header.
    pub header: Header,
    /// Instrument code, `Alpha` 8.
    pub stock: [u8; 8],
    /// Reference price (previous close), 4 implied decimals.
    pub reference_price: u32,
    /// Upper band edge, 4 implied decimals.
    pub upper_price: u32,
    /// Lower band edge, 4 implied decimals.
    pub lower_price: u32,
    /// Auction collar extension count.
    pub extension: u32,
}

impl LuldAuctionCollar {
    fn write(&self, o: &mut [u8; 35]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.stock);
        put(o, 19, &self.reference_price.to_be_bytes());
        put(o, 23, &self.upper_price.to_be_bytes());
        put(o, 27, &self.lower_price.to_be_bytes());
        put(o, 31, &self.extension.to_be_bytes());
    }

    fn read(b: &[u8; 35]) -> Self {
        Self {
            header: get_header(b),
            stock: get(b, 11),
            reference_price: get_u32(b, 19),
            upper_price: get_u32(b, 23),
            lower_price: get_u32(b, 27),
            extension: get_u32(b, 31),
        }
    }
}
fixed_codec!(LuldAuctionCollar, b'J', 35);

// ---- A Add Order (36) ----

/// `A` Add Order (no MPID attribution): an order now rests on the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddOrder {
    /// Header.
    pub header: Header,
    /// Order reference number, unique for the day.
    pub order_ref: u64,
    /// `B` buy or `S` sell.
    pub side: u8,
    /// Resting quantity.
    pub shares: u32,
    /// Instrument code, `Alpha` 8.
    pub stock: [u8; 8],
    /// Limit price, 4 implied decimals.
    pub price: u32,
}

impl AddOrder {
    /// `B`: buy.
    pub const BUY: u8 = b'B';
    /// `S`: sell.
    pub const SELL: u8 = b'S';

    fn write(&self, o: &mut [u8; 36]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.order_ref.to_be_bytes());
        o[19] = self.side;
        put(o, 20, &self.shares.to_be_bytes());
        put(o, 24, &self.stock);
        put(o, 32, &self.price.to_be_bytes());
    }

    fn read(b: &[u8; 36]) -> Self {
        Self {
            header: get_header(b),
            order_ref: get_u64(b, 11),
            side: b[19],
            shares: get_u32(b, 20),
            stock: get(b, 24),
            price: get_u32(b, 32),
        }
    }
}
fixed_codec!(AddOrder, b'A', 36);

// ---- E Order Executed (31) ----

/// `E` Order Executed: a resting order traded (at its own price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderExecuted {
    /// Header.
    pub header: Header,
    /// Reference of the resting order.
    pub order_ref: u64,
    /// Executed quantity.
    pub shares: u32,
    /// Match number, unique for the day.
    pub match_number: u64,
}

impl OrderExecuted {
    fn write(&self, o: &mut [u8; 31]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.order_ref.to_be_bytes());
        put(o, 19, &self.shares.to_be_bytes());
        put(o, 23, &self.match_number.to_be_bytes());
    }

    fn read(b: &[u8; 31]) -> Self {
        Self { header: get_header(b), order_ref: get_u64(b, 11), shares: get_u32(b, 19), match_number: get_u64(b, 23) }
    }
}
fixed_codec!(OrderExecuted, b'E', 31);

// ---- X Order Cancel (23) ----

/// `X` Order Cancel: a resting order lost part of its quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderCancel {
    /// Header.
    pub header: Header,
    /// Reference of the resting order.
    pub order_ref: u64,
    /// Cancelled quantity (removed from the order).
    pub shares: u32,
}

impl OrderCancel {
    fn write(&self, o: &mut [u8; 23]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.order_ref.to_be_bytes());
        put(o, 19, &self.shares.to_be_bytes());
    }

    fn read(b: &[u8; 23]) -> Self {
        Self { header: get_header(b), order_ref: get_u64(b, 11), shares: get_u32(b, 19) }
    }
}
fixed_codec!(OrderCancel, b'X', 23);

// ---- D Order Delete (19) ----

/// `D` Order Delete: a resting order left the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderDelete {
    /// Header.
    pub header: Header,
    /// Reference of the deleted order.
    pub order_ref: u64,
}

impl OrderDelete {
    fn write(&self, o: &mut [u8; 19]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.order_ref.to_be_bytes());
    }

    fn read(b: &[u8; 19]) -> Self {
        Self { header: get_header(b), order_ref: get_u64(b, 11) }
    }
}
fixed_codec!(OrderDelete, b'D', 19);

// ---- U Order Replace (35) ----

/// `U` Order Replace: an order lost its priority and rests under a new
/// reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderReplace {
    /// Header.
    pub header: Header,
    /// Reference of the replaced order.
    pub original_ref: u64,
    /// New reference, unique for the day.
    pub new_ref: u64,
    /// New resting quantity.
    pub shares: u32,
    /// New price, 4 implied decimals.
    pub price: u32,
}

impl OrderReplace {
    fn write(&self, o: &mut [u8; 35]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.original_ref.to_be_bytes());
        put(o, 19, &self.new_ref.to_be_bytes());
        put(o, 27, &self.shares.to_be_bytes());
        put(o, 31, &self.price.to_be_bytes());
    }

    fn read(b: &[u8; 35]) -> Self {
        Self {
            header: get_header(b),
            original_ref: get_u64(b, 11),
            new_ref: get_u64(b, 19),
            shares: get_u32(b, 27),
            price: get_u32(b, 31),
        }
    }
}
fixed_codec!(OrderReplace, b'U', 35);

// ---- P Trade (non-cross) (44) ----

/// `P` Trade (non-cross): a trade against no displayed order; here every
/// block trade (order reference 0, side `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trade {
    /// Header.
    pub header: Header,
    /// Order reference; 0 for block trades.
    pub order_ref: u64,
    /// Side letter; `B` for block trades.
    pub side: u8,
    /// Traded quantity.
    pub shares: u32,
    /// Instrument code, `Alpha` 8.
    pub stock: [u8; 8],
    /// Trade price, 4 implied decimals.
    pub price: u32,
    /// Match number, unique for the day.
    pub match_number: u64,
}

impl Trade {
    fn write(&self, o: &mut [u8; 44]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.order_ref.to_be_bytes());
        o[19] = self.side;
        put(o, 20, &self.shares.to_be_bytes());
        put(o, 24, &self.stock);
        put(o, 32, &self.price.to_be_bytes());
        put(o, 36, &self.match_number.to_be_bytes());
    }

    fn read(b: &[u8; 44]) -> Self {
        Self {
            header: get_header(b),
            order_ref: get_u64(b, 11),
            side: b[19],
            shares: get_u32(b, 20),
            stock: get(b, 24),
            price: get_u32(b, 32),
            match_number: get_u64(b, 36),
        }
    }
}
fixed_codec!(Trade, b'P', 44);

// ---- Q Cross Trade (40) ----

/// `Q` Cross Trade: the official close (cross type `C`) or an auction's
/// result (cross type `I`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CrossTrade {
    /// Header.
    pub header: Header,
    /// Crossed quantity (8 bytes on the wire).
    pub shares: u64,
    /// Instrument code, `Alpha` 8.
    pub stock: [u8; 8],
    /// Cross price, 4 implied decimals.
    pub price: u32,
    /// Match number.
    pub match_number: u64,
    /// Cross type letter.
    pub cross_type: u8,
}

impl CrossTrade {
    /// `C`: closing cross (the official close).
    pub const CLOSING: u8 = b'C';
    /// `I`: intraday cross (an auction's result).
    pub const INTRADAY: u8 = b'I';

    fn write(&self, o: &mut [u8; 40]) {
        put_header(o, Self::TYPE, &self.header);
        put(o, 11, &self.shares.to_be_bytes());
        put(o, 19, &self.stock);
        put(o, 27, &self.price.to_be_bytes());
        put(o, 31, &self.match_number.to_be_bytes());
        o[39] = self.cross_type;
    }

    fn read(b: &[u8; 40]) -> Self {
        Self {
            header: get_header(b),
            shares: get_u64(b, 11),
            stock: get(b, 19),
            price: get_u32(b, 27),
            match_number: get_u64(b, 31),
            cross_type: b[39],
        }
    }
}
fixed_codec!(CrossTrade, b'Q', 40);

// ---- G End of Snapshot (21, ours) ----

/// `G` End of Snapshot (our extension; no ITCH header): the first feed
/// sequence number NOT reflected in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndOfSnapshot {
    /// First feed sequence number the snapshot does not reflect.
    pub sequence: u64,
}

impl EndOfSnapshot {
    /// The message type byte.
    pub const TYPE: u8 = b'G';
    /// Length on the wire: type 1 + sequence number 20A.
    pub const LEN: usize = 21;

    /// Writes `G` and the sequence number as ASCII decimal, right-justified
    /// and space-padded in 20 bytes, into the first [`Self::LEN`] bytes of
    /// `buf`; returns [`Self::LEN`]. Never allocates.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::LEN`] (a caller bug).
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) -> usize {
        let o = out::<21>(buf);
        o[0] = Self::TYPE;
        let digits = &mut o[1..];
        digits.fill(b' ');
        let mut rest = self.sequence;
        // u64::MAX has 20 digits, so the field always holds the number.
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        Self::LEN
    }

    /// Decodes an End of Snapshot. Like every numeric ASCII field of ours
    /// (PROTOCOL §1), the number is parsed leniently: spaces on
    /// either side are stripped; leading zeros are accepted.
    ///
    /// # Errors
    /// [`DecodeError`] if `bytes` is empty, has another type byte, is not
    /// exactly [`Self::LEN`] bytes, or the field is blank, not decimal or
    /// above `u64::MAX`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b = check::<21>(bytes, Self::TYPE)?;
        let mut field = &b[1..];
        while let [b' ', rest @ ..] = field {
            field = rest;
        }
        while let [rest @ .., b' '] = field {
            field = rest;
        }
        if field.is_empty() {
            return Err(DecodeError::BadSequenceNumber);
        }
        let mut sequence: u64 = 0;
        for &c in field {
            if !c.is_ascii_digit() {
                return Err(DecodeError::BadSequenceNumber);
            }
            sequence = sequence
                .checked_mul(10)
                .and_then(|s| s.checked_add(u64::from(c - b'0')))
                .ok_or(DecodeError::BadSequenceNumber)?;
        }
        Ok(Self { sequence })
    }
}

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
