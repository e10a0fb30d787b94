//! Trades that are not executions of a displayed order: Trade `P` and
//! Cross Trade `Q`.

use super::wire::*;
use super::{DecodeError, Header};

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
