//! OUCH 4.2 outbound messages (inside SoupBinTCP `S`): System Event,
//! Accepted, Replaced, Canceled, Executed, Rejected and Cancel Reject.

use super::{OuchError, R, W};

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

    /// Every outbound message type letter, in [`Outbound::decode`]'s order.
    pub const TYPES: &'static [u8] = b"SAUCEJI";

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
