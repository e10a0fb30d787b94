//! Orders on the book: Add Order `A`, Order Executed `E`, Order Cancel
//! `X`, Order Delete `D`, Order Replace `U`.

use super::wire::*;
use super::{DecodeError, Header};

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
