//! OUCH 4.2 messages and the carbon extensions (`b` block, `p` pick), byte
//! layouts exactly as PROTOCOL §3, §4 and §6 give them. Fields are carried raw (side
//! letters, display, cross type...): deciding what a value means is the
//! engine's job, in the one check order of PROTOCOL §5.2, so the codec only
//! checks the type byte and the exact length, then reads fixed offsets.
//!
//! Encoding writes into a fixed-size array and never allocates; decoding
//! never panics on any input.

use thiserror::Error;

/// Why bytes are not an OUCH message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OuchError {
    /// No type byte.
    #[error("empty OUCH message")]
    Empty,
    /// The type byte is not one we accept in this direction.
    #[error("unknown OUCH message type {0:#04x}")]
    UnknownType(u8),
    /// The length does not match the type's fixed length.
    #[error("OUCH message type {kind:?} is {expected} bytes, got {actual}")]
    WrongLength {
        /// The type letter.
        kind: char,
        /// Its fixed length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
}

/// Longest OUCH message either way (Replaced, 80 bytes).
pub const MESSAGE_LEN_MAX: usize = 80;

/// Fixed-offset writer over an array.
struct W<const N: usize> {
    buf: [u8; N],
    at: usize,
}

impl<const N: usize> W<N> {
    #[inline(always)]
    fn new(kind: u8) -> Self {
        let mut buf = [b' '; N];
        buf[0] = kind;
        W { buf, at: 1 }
    }
    #[inline(always)]
    fn bytes(&mut self, field: &[u8]) -> &mut Self {
        self.buf[self.at..self.at + field.len()].copy_from_slice(field);
        self.at += field.len();
        self
    }
    #[inline(always)]
    fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }
    #[inline(always)]
    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    #[inline(always)]
    fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    #[inline(always)]
    fn done(&self) -> [u8; N] {
        debug_assert_eq!(self.at, N, "OUCH layout length");
        self.buf
    }
}

/// Fixed-offset reader over a checked array.
struct R<'a, const N: usize> {
    buf: &'a [u8; N],
    at: usize,
}

impl<'a, const N: usize> R<'a, N> {
    fn new(bytes: &'a [u8], kind: u8) -> Result<Self, OuchError> {
        let buf: &[u8; N] = bytes.try_into().map_err(|_| OuchError::WrongLength {
            kind: char::from(kind),
            expected: N,
            actual: bytes.len(),
        })?;
        Ok(R { buf, at: 1 })
    }
    fn arr<const M: usize>(&mut self) -> [u8; M] {
        let mut out = [0; M];
        out.copy_from_slice(&self.buf[self.at..self.at + M]);
        self.at += M;
        out
    }
    fn u8(&mut self) -> u8 {
        self.arr::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.arr())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.arr())
    }
}

/// `text` left-justified in an `N`-byte space-padded field, cut to fit.
pub fn pad<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [b' '; N];
    let len = text.len().min(N);
    field[..len].copy_from_slice(&text.as_bytes()[..len]);
    field
}

// ---------------------------------------------------------------- inbound

/// Enter Order `O`, 49 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnterOrder {
    /// Order token.
    pub token: [u8; 14],
    /// `B`, `S` (`T`/`E` short sales are rejected).
    pub side: u8,
    /// Tonnes.
    pub shares: u32,
    /// Instrument code.
    pub stock: [u8; 8],
    /// Price, 4 implied decimals; `0x7FFFFFFF` = market.
    pub price: u32,
    /// 0 IOC, 99998/99999 day.
    pub tif: u32,
    /// Trading account code.
    pub firm: [u8; 4],
    /// `A`/`Y` visible, `P` post-only.
    pub display: u8,
    /// Capacity, echoed.
    pub capacity: u8,
    /// Intermarket sweep, `N`.
    pub iso: u8,
    /// Minimum quantity.
    pub min_qty: u32,
    /// Cross type, `N`.
    pub cross_type: u8,
    /// Customer type, echoed nowhere (OUCH 4.2 Accepted has no such field).
    pub customer_type: u8,
}

impl EnterOrder {
    /// Wire length.
    pub const LEN: usize = 49;

    /// A visible day limit order (capacity `A`, no minimum, cross `N`,
    /// customer `R`): the common case in tools and tests. Text fields are
    /// space-padded; longer text is cut to the field.
    pub fn limit(token: &str, side: u8, shares: u32, stock: &str, price: u32, firm: &str) -> EnterOrder {
        EnterOrder {
            token: pad(token),
            side,
            shares,
            stock: pad(stock),
            price,
            tif: 99_999,
            firm: pad(firm),
            display: b'Y',
            capacity: b'A',
            iso: b'N',
            min_qty: 0,
            cross_type: b'N',
            customer_type: b'R',
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        W::new(b'O')
            .bytes(&self.token)
            .u8(self.side)
            .u32(self.shares)
            .bytes(&self.stock)
            .u32(self.price)
            .u32(self.tif)
            .bytes(&self.firm)
            .u8(self.display)
            .u8(self.capacity)
            .u8(self.iso)
            .u32(self.min_qty)
            .u8(self.cross_type)
            .u8(self.customer_type)
            .done()
    }

    fn decode(bytes: &[u8]) -> Result<Self, OuchError> {
        let mut r = R::<{ Self::LEN }>::new(bytes, b'O')?;
        Ok(EnterOrder {
            token: r.arr(),
            side: r.u8(),
            shares: r.u32(),
            stock: r.arr(),
            price: r.u32(),
            tif: r.u32(),
            firm: r.arr(),
            display: r.u8(),
            capacity: r.u8(),
            iso: r.u8(),
            min_qty: r.u32(),
            cross_type: r.u8(),
            customer_type: r.u8(),
        })
    }
}

/// Replace Order `U`, 47 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaceOrder {
    /// The order's current token.
    pub existing: [u8; 14],
    /// The token it will have.
    pub replacement: [u8; 14],
    /// Open quantity after the replace.
    pub shares: u32,
    /// New price.
    pub price: u32,
    /// Time in force.
    pub tif: u32,
    /// Display.
    pub display: u8,
    /// Intermarket sweep.
    pub iso: u8,
    /// Minimum quantity.
    pub min_qty: u32,
}

impl ReplaceOrder {
    /// Wire length.
    pub const LEN: usize = 47;

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        W::new(b'U')
            .bytes(&self.existing)
            .bytes(&self.replacement)
            .u32(self.shares)
            .u32(self.price)
            .u32(self.tif)
            .u8(self.display)
            .u8(self.iso)
            .u32(self.min_qty)
            .done()
    }

    fn decode(bytes: &[u8]) -> Result<Self, OuchError> {
        let mut r = R::<{ Self::LEN }>::new(bytes, b'U')?;
        Ok(ReplaceOrder {
            existing: r.arr(),
            replacement: r.arr(),
            shares: r.u32(),
            price: r.u32(),
            tif: r.u32(),
            display: r.u8(),
            iso: r.u8(),
            min_qty: r.u32(),
        })
    }
}

/// Cancel Order `X`, 19 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOrder {
    /// The order's token.
    pub token: [u8; 14],
    /// Open quantity after the cancel; 0 cancels all.
    pub shares: u32,
}

impl CancelOrder {
    /// Wire length.
    pub const LEN: usize = 19;

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        W::new(b'X').bytes(&self.token).u32(self.shares).done()
    }

    fn decode(bytes: &[u8]) -> Result<Self, OuchError> {
        let mut r = R::<{ Self::LEN }>::new(bytes, b'X')?;
        Ok(CancelOrder { token: r.arr(), shares: r.u32() })
    }
}

/// Enter Block Order `b`, 48 bytes (carbon extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnterBlock {
    /// Order token.
    pub token: [u8; 14],
    /// `B` or `S`.
    pub side: u8,
    /// Tonnes (at least 100,000).
    pub shares: u32,
    /// Instrument code.
    pub stock: [u8; 8],
    /// Price, 4 implied decimals.
    pub price: u32,
    /// Own account code.
    pub account: [u8; 4],
    /// The counterparty's account code.
    pub counterparty: [u8; 4],
    /// The deal id both sides name.
    pub deal_id: [u8; 8],
}

impl EnterBlock {
    /// Wire length.
    pub const LEN: usize = 48;

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        W::new(b'b')
            .bytes(&self.token)
            .u8(self.side)
            .u32(self.shares)
            .bytes(&self.stock)
            .u32(self.price)
            .bytes(&self.account)
            .bytes(&self.counterparty)
            .bytes(&self.deal_id)
            .done()
    }

    fn decode(bytes: &[u8]) -> Result<Self, OuchError> {
        let mut r = R::<{ Self::LEN }>::new(bytes, b'b')?;
        Ok(EnterBlock {
            token: r.arr(),
            side: r.u8(),
            shares: r.u32(),
            stock: r.arr(),
            price: r.u32(),
            account: r.arr(),
            counterparty: r.arr(),
            deal_id: r.arr(),
        })
    }
}

/// Pick Order `p`, 40 bytes (carbon extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickOrder {
    /// Order token.
    pub token: [u8; 14],
    /// `B` or `S`.
    pub side: u8,
    /// Tonnes wanted.
    pub shares: u32,
    /// Instrument code.
    pub stock: [u8; 8],
    /// Own account code.
    pub account: [u8; 4],
    /// The target's order reference number.
    pub target: u64,
}

impl PickOrder {
    /// Wire length.
    pub const LEN: usize = 40;

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        W::new(b'p')
            .bytes(&self.token)
            .u8(self.side)
            .u32(self.shares)
            .bytes(&self.stock)
            .bytes(&self.account)
            .u64(self.target)
            .done()
    }

    fn decode(bytes: &[u8]) -> Result<Self, OuchError> {
        let mut r = R::<{ Self::LEN }>::new(bytes, b'p')?;
        Ok(PickOrder {
            token: r.arr(),
            side: r.u8(),
            shares: r.u32(),
            stock: r.arr(),
            account: r.arr(),
            target: r.u64(),
        })
    }
}

/// Auction Bid `a`, 43 bytes (carbon extension): a sealed bid in a
/// one-way bidding auction. Cancelled with the standard Cancel Order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuctionBid {
    /// Order token.
    pub token: [u8; 14],
    /// Tonnes bid for.
    pub shares: u32,
    /// Instrument code.
    pub stock: [u8; 8],
    /// Bid price, 4 implied decimals.
    pub price: u32,
    /// Own account code.
    pub account: [u8; 4],
    /// The auction's id from its announcement.
    pub auction: [u8; 8],
}

impl AuctionBid {
    /// Wire length.
    pub const LEN: usize = 43;

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        W::new(b'a')
            .bytes(&self.token)
            .u32(self.shares)
            .bytes(&self.stock)
            .u32(self.price)
            .bytes(&self.account)
            .bytes(&self.auction)
            .done()
    }

    fn decode(bytes: &[u8]) -> Result<Self, OuchError> {
        let mut r = R::<{ Self::LEN }>::new(bytes, b'a')?;
        Ok(AuctionBid {
            token: r.arr(),
            shares: r.u32(),
            stock: r.arr(),
            price: r.u32(),
            account: r.arr(),
            auction: r.arr(),
        })
    }
}

/// A message from a client (inside SoupBinTCP `U`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// `O`.
    Enter(EnterOrder),
    /// `U`.
    Replace(ReplaceOrder),
    /// `X`.
    Cancel(CancelOrder),
    /// `b`.
    Block(EnterBlock),
    /// `p`.
    Pick(PickOrder),
    /// `a`.
    Bid(AuctionBid),
}

impl Inbound {
    /// Decodes one inbound message.
    ///
    /// # Errors
    /// Empty, unknown type, or the wrong length for the type.
    pub fn decode(bytes: &[u8]) -> Result<Inbound, OuchError> {
        match bytes.first() {
            None => Err(OuchError::Empty),
            Some(b'O') => EnterOrder::decode(bytes).map(Inbound::Enter),
            Some(b'U') => ReplaceOrder::decode(bytes).map(Inbound::Replace),
            Some(b'X') => CancelOrder::decode(bytes).map(Inbound::Cancel),
            Some(b'b') => EnterBlock::decode(bytes).map(Inbound::Block),
            Some(b'p') => PickOrder::decode(bytes).map(Inbound::Pick),
            Some(b'a') => AuctionBid::decode(bytes).map(Inbound::Bid),
            Some(&other) => Err(OuchError::UnknownType(other)),
        }
    }

    /// Appends the wire bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Inbound::Enter(m) => out.extend_from_slice(&m.encode()),
            Inbound::Replace(m) => out.extend_from_slice(&m.encode()),
            Inbound::Cancel(m) => out.extend_from_slice(&m.encode()),
            Inbound::Block(m) => out.extend_from_slice(&m.encode()),
            Inbound::Pick(m) => out.extend_from_slice(&m.encode()),
            Inbound::Bid(m) => out.extend_from_slice(&m.encode()),
        }
    }
}

// ---------------------------------------------------------------- outbound

/// Accepted `A`, 66 bytes (and the first 65 bytes of Replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Nanoseconds since midnight, Asia/Shanghai.
    pub timestamp: u64,
    /// Order token.
    pub token: [u8; 14],
    /// `B` or `S`.
    pub side: u8,
    /// Tonnes.
    pub shares: u32,
    /// Instrument code.
    pub stock: [u8; 8],
    /// Price as entered (market orders echo `0x7FFFFFFF`).
    pub price: u32,
    /// Time in force.
    pub tif: u32,
    /// Account code.
    pub firm: [u8; 4],
    /// Display.
    pub display: u8,
    /// Order reference number (public, on the feed too).
    pub order_ref: u64,
    /// Capacity.
    pub capacity: u8,
    /// Intermarket sweep.
    pub iso: u8,
    /// Minimum quantity.
    pub min_qty: u32,
    /// Cross type: `N` listing, `B` block.
    pub cross_type: u8,
    /// Always `L` (live).
    pub state: u8,
    /// BBO weight indicator (we send a space: not applicable).
    pub bbo_weight: u8,
}

impl Accepted {
    /// Wire length.
    pub const LEN: usize = 66;

    fn write<const N: usize>(&self, kind: u8) -> W<N> {
        let mut w = W::new(kind);
        w.u64(self.timestamp)
            .bytes(&self.token)
            .u8(self.side)
            .u32(self.shares)
            .bytes(&self.stock)
            .u32(self.price)
            .u32(self.tif)
            .bytes(&self.firm)
            .u8(self.display)
            .u64(self.order_ref)
            .u8(self.capacity)
            .u8(self.iso)
            .u32(self.min_qty)
            .u8(self.cross_type)
            .u8(self.state);
        w
    }

    fn read<const N: usize>(r: &mut R<'_, N>) -> Accepted {
        let mut a = Accepted {
            timestamp: r.u64(),
            token: r.arr(),
            side: r.u8(),
            shares: r.u32(),
            stock: r.arr(),
            price: r.u32(),
            tif: r.u32(),
            firm: r.arr(),
            display: r.u8(),
            order_ref: r.u64(),
            capacity: r.u8(),
            iso: r.u8(),
            min_qty: r.u32(),
            cross_type: r.u8(),
            state: r.u8(),
            bbo_weight: b' ',
        };
        if N == Self::LEN {
            a.bbo_weight = r.u8();
        }
        a
    }

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        self.write::<{ Self::LEN }>(b'A').u8(self.bbo_weight).done()
    }
}

/// Replaced `U`, 80 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    /// The order after the replace (replacement token, current reference).
    pub order: Accepted,
    /// The token it had before.
    pub previous_token: [u8; 14],
}

impl Replaced {
    /// Wire length.
    pub const LEN: usize = 80;

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        self.order.write::<{ Self::LEN }>(b'U').bytes(&self.previous_token).u8(self.order.bbo_weight).done()
    }
}

/// Executed `E`, 40 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Executed {
    /// Nanoseconds since midnight, Asia/Shanghai.
    pub timestamp: u64,
    /// Order token.
    pub token: [u8; 14],
    /// Tonnes filled.
    pub shares: u32,
    /// Price, 4 implied decimals.
    pub price: u32,
    /// `A` maker, `R` taker, `B` block.
    pub liquidity: u8,
    /// Match number (the same on the feed).
    pub match_number: u64,
}

impl Executed {
    /// Wire length.
    pub const LEN: usize = 40;

    /// The wire bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        W::new(b'E')
            .u64(self.timestamp)
            .bytes(&self.token)
            .u32(self.shares)
            .u32(self.price)
            .u8(self.liquidity)
            .u64(self.match_number)
            .done()
    }
}

/// One message to a client (inside SoupBinTCP `S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// `S` System Event, 10 bytes: `S` start of day, `E` end of day.
    SystemEvent {
        /// Nanoseconds since midnight.
        timestamp: u64,
        /// Event code.
        code: u8,
    },
    /// `A`.
    Accepted(Accepted),
    /// `U`.
    Replaced(Replaced),
    /// `C` Canceled, 28 bytes.
    Canceled {
        /// Nanoseconds since midnight.
        timestamp: u64,
        /// Order token.
        token: [u8; 14],
        /// Tonnes taken off.
        decrement: u32,
        /// Cancel reason letter.
        reason: u8,
    },
    /// `E`.
    Executed(Executed),
    /// `J` Rejected, 24 bytes.
    Rejected {
        /// Nanoseconds since midnight.
        timestamp: u64,
        /// Token of the rejected order or replacement.
        token: [u8; 14],
        /// Reject reason letter.
        reason: u8,
    },
    /// `I` Cancel Reject, 23 bytes.
    CancelReject {
        /// Nanoseconds since midnight.
        timestamp: u64,
        /// The token named.
        token: [u8; 14],
    },
}

impl Outbound {
    /// Appends the wire bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match *self {
            Outbound::SystemEvent { timestamp, code } => {
                out.extend_from_slice(&W::<10>::new(b'S').u64(timestamp).u8(code).done());
            }
            Outbound::Accepted(a) => out.extend_from_slice(&a.encode()),
            Outbound::Replaced(r) => out.extend_from_slice(&r.encode()),
            Outbound::Canceled { timestamp, token, decrement, reason } => {
                out.extend_from_slice(&W::<28>::new(b'C').u64(timestamp).bytes(&token).u32(decrement).u8(reason).done())
            }
            Outbound::Executed(e) => out.extend_from_slice(&e.encode()),
            Outbound::Rejected { timestamp, token, reason } => {
                out.extend_from_slice(&W::<24>::new(b'J').u64(timestamp).bytes(&token).u8(reason).done());
            }
            Outbound::CancelReject { timestamp, token } => {
                out.extend_from_slice(&W::<23>::new(b'I').u64(timestamp).bytes(&token).done());
            }
        }
    }

    /// Decodes one outbound message (clients, the load generator, tests).
    ///
    /// # Errors
    /// Empty, unknown type, or the wrong length for the type.
    pub fn decode(bytes: &[u8]) -> Result<Outbound, OuchError> {
        let Some(&kind) = bytes.first() else {
            return Err(OuchError::Empty);
        };
        Ok(match kind {
            b'S' => {
                let mut r = R::<10>::new(bytes, kind)?;
                Outbound::SystemEvent { timestamp: r.u64(), code: r.u8() }
            }
            b'A' => Outbound::Accepted(Accepted::read(&mut R::<{ Accepted::LEN }>::new(bytes, kind)?)),
            b'U' => {
                let mut r = R::<{ Replaced::LEN }>::new(bytes, kind)?;
                let mut order = Accepted::read(&mut r);
                let previous_token = r.arr();
                order.bbo_weight = r.u8();
                Outbound::Replaced(Replaced { order, previous_token })
            }
            b'C' => {
                let mut r = R::<28>::new(bytes, kind)?;
                Outbound::Canceled { timestamp: r.u64(), token: r.arr(), decrement: r.u32(), reason: r.u8() }
            }
            b'E' => {
                let mut r = R::<{ Executed::LEN }>::new(bytes, kind)?;
                let (timestamp, token, shares, price) = (r.u64(), r.arr(), r.u32(), r.u32());
                Outbound::Executed(Executed {
                    timestamp,
                    token,
                    shares,
                    price,
                    liquidity: r.u8(),
                    match_number: r.u64(),
                })
            }
            b'J' => {
                let mut r = R::<24>::new(bytes, kind)?;
                Outbound::Rejected { timestamp: r.u64(), token: r.arr(), reason: r.u8() }
            }
            b'I' => {
                let mut r = R::<23>::new(bytes, kind)?;
                Outbound::CancelReject { timestamp: r.u64(), token: r.arr() }
            }
            other => return Err(OuchError::UnknownType(other)),
        })
    }

    /// The token this message is about (`None` for system events).
    pub fn token(&self) -> Option<[u8; 14]> {
        match self {
            Outbound::SystemEvent { .. } => None,
            Outbound::Accepted(a) => Some(a.token),
            Outbound::Replaced(r) => Some(r.order.token),
            Outbound::Executed(e) => Some(e.token),
            Outbound::Canceled { token, .. }
            | Outbound::Rejected { token, .. }
            | Outbound::CancelReject { token, .. } => Some(*token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> [u8; 14] {
        crate::soup::alpha(text).unwrap()
    }

    /// Concatenates hand-written fields into the expected wire bytes.
    fn wire(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn enter() -> EnterOrder {
        EnterOrder::limit("ORD1", b'B', 10, "CEA", 746_300, "0001")
    }

    #[test]
    fn enter_order_by_hand() {
        let expected = wire(&[
            b"O",
            b"ORD1          ",
            b"B",
            &[0, 0, 0, 10],
            b"CEA     ",
            &746_300u32.to_be_bytes(),
            &99_999u32.to_be_bytes(),
            b"0001",
            b"YAN",
            &[0, 0, 0, 0],
            b"NR",
        ]);
        assert_eq!(expected.len(), 49);
        assert_eq!(enter().encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Enter(enter())));
    }

    #[test]
    fn replace_cancel_block_pick_by_hand() {
        let replace = ReplaceOrder {
            existing: token("ORD1"),
            replacement: token("ORD2"),
            shares: 5,
            price: 740_000,
            tif: 99_999,
            display: b'Y',
            iso: b'N',
            min_qty: 0,
        };
        let expected = wire(&[
            b"U",
            b"ORD1          ",
            b"ORD2          ",
            &[0, 0, 0, 5],
            &740_000u32.to_be_bytes(),
            &99_999u32.to_be_bytes(),
            b"YN",
            &[0; 4],
        ]);
        assert_eq!(replace.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Replace(replace)));

        let cancel = CancelOrder { token: token("ORD2"), shares: 0 };
        let expected = wire(&[b"X", b"ORD2          ", &[0; 4]]);
        assert_eq!(cancel.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Cancel(cancel)));

        let block = EnterBlock {
            token: token("BLK1"),
            side: b'S',
            shares: 100_000,
            stock: *b"CEA23   ",
            price: 800_000,
            account: *b"0002",
            counterparty: *b"0341",
            deal_id: *b"DEAL0001",
        };
        let expected = wire(&[
            b"b",
            b"BLK1          ",
            b"S",
            &100_000u32.to_be_bytes(),
            b"CEA23   ",
            &800_000u32.to_be_bytes(),
            b"0002",
            b"0341",
            b"DEAL0001",
        ]);
        assert_eq!(block.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Block(block)));

        let pick = PickOrder {
            token: token("PK1"),
            side: b'B',
            shares: 7,
            stock: *b"CCER    ",
            account: *b"0003",
            target: 99,
        };
        let expected =
            wire(&[b"p", b"PK1           ", b"B", &[0, 0, 0, 7], b"CCER    ", b"0003", &99u64.to_be_bytes()]);
        assert_eq!(pick.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Pick(pick)));
    }

    #[test]
    fn auction_bid_by_hand() {
        let bid = AuctionBid {
            token: token("BID1"),
            shares: 5_000,
            stock: *b"CEA     ",
            price: 760_000,
            account: *b"0007",
            auction: *b"AUC00001",
        };
        let expected = wire(&[
            b"a",
            b"BID1          ",
            &5_000u32.to_be_bytes(),
            b"CEA     ",
            &760_000u32.to_be_bytes(),
            b"0007",
            b"AUC00001",
        ]);
        assert_eq!(expected.len(), AuctionBid::LEN);
        assert_eq!(bid.encode().to_vec(), expected);
        assert_eq!(Inbound::decode(&expected), Ok(Inbound::Bid(bid)));
    }

    fn accepted() -> Accepted {
        Accepted {
            timestamp: 36_000_000_000_000,
            token: token("ORD1"),
            side: b'B',
            shares: 10,
            stock: *b"CEA     ",
            price: 746_300,
            tif: 99_999,
            firm: *b"0001",
            display: b'Y',
            order_ref: 7,
            capacity: b'A',
            iso: b'N',
            min_qty: 0,
            cross_type: b'N',
            state: b'L',
            bbo_weight: b' ',
        }
    }

    #[test]
    fn accepted_and_replaced_by_hand() {
        let ts = 36_000_000_000_000u64.to_be_bytes();
        let first_65 = wire(&[
            b"A",
            &ts,
            b"ORD1          ",
            b"B",
            &[0, 0, 0, 10],
            b"CEA     ",
            &746_300u32.to_be_bytes(),
            &99_999u32.to_be_bytes(),
            b"0001",
            b"Y",
            &7u64.to_be_bytes(),
            b"AN",
            &[0; 4],
            b"NL",
        ]);
        let expected = wire(&[&first_65, b" "]);
        let mut out = Vec::new();
        Outbound::Accepted(accepted()).encode_into(&mut out);
        assert_eq!(out, expected);
        assert_eq!(Outbound::decode(&out), Ok(Outbound::Accepted(accepted())));

        let replaced = Replaced { order: accepted(), previous_token: token("ORD0") };
        let mut expected = wire(&[&first_65, b"ORD0          ", b" "]);
        expected[0] = b'U';
        let mut out = Vec::new();
        Outbound::Replaced(replaced).encode_into(&mut out);
        assert_eq!(out, expected);
        assert_eq!(Outbound::decode(&out), Ok(Outbound::Replaced(replaced)));
    }

    #[test]
    fn small_outbound_messages_by_hand() {
        let ts = 5u64.to_be_bytes();
        let t = token("T1");
        let cases = [
            (Outbound::SystemEvent { timestamp: 5, code: b'S' }, wire(&[b"S", &ts, b"S"])),
            (
                Outbound::Canceled { timestamp: 5, token: t, decrement: 3, reason: b'U' },
                wire(&[b"C", &ts, b"T1            ", &[0, 0, 0, 3], b"U"]),
            ),
            (
                Outbound::Executed(Executed {
                    timestamp: 5,
                    token: t,
                    shares: 4,
                    price: 746_300,
                    liquidity: b'R',
                    match_number: 11,
                }),
                wire(&[
                    b"E",
                    &ts,
                    b"T1            ",
                    &[0, 0, 0, 4],
                    &746_300u32.to_be_bytes(),
                    b"R",
                    &11u64.to_be_bytes(),
                ]),
            ),
            (Outbound::Rejected { timestamp: 5, token: t, reason: b'K' }, wire(&[b"J", &ts, b"T1            ", b"K"])),
            (Outbound::CancelReject { timestamp: 5, token: t }, wire(&[b"I", &ts, b"T1            "])),
        ];
        for ((message, expected), len) in cases.into_iter().zip([10, 28, 40, 24, 23]) {
            assert_eq!(expected.len(), len, "PROTOCOL §4 length of {message:?}");
            let mut out = Vec::new();
            message.encode_into(&mut out);
            assert_eq!(out, expected, "{message:?}");
            assert_eq!(Outbound::decode(&out), Ok(message));
        }
    }

    #[test]
    fn bad_lengths_and_types_are_errors_not_panics() {
        let good = enter().encode();
        assert!(matches!(Inbound::decode(&good[..48]), Err(OuchError::WrongLength { expected: 49, .. })));
        assert_eq!(Inbound::decode(&[]), Err(OuchError::Empty));
        assert_eq!(Inbound::decode(b"Q"), Err(OuchError::UnknownType(b'Q')));
        for len in 0..100 {
            for kind in [b'O', b'U', b'X', b'b', b'p', b'a', b'A', b'E', b'C', b'J', b'I', b'S'] {
                let mut bytes = vec![0xA5; len];
                if let Some(first) = bytes.first_mut() {
                    *first = kind;
                }
                let _ = Inbound::decode(&bytes);
                let _ = Outbound::decode(&bytes);
            }
        }
    }
}
