//! OUCH 4.2 inbound messages (inside SoupBinTCP `U`): Enter, Replace and
//! Cancel Order, and the carbon extensions block `b`, pick `p` and auction bid `a`.

use super::{OuchError, R, W, pad};

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
    /// Every inbound message type letter, in [`Inbound::decode`]'s order.
    pub const TYPES: &'static [u8] = b"OUXbpa";

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
