//! Integer newtypes for every unit and identifier the engine handles.
//!
//! Why newtypes: a price in fen, a quantity in tonnes and an order reference
//! are all integers, and mixing them up is the classic matching-engine bug.
//! The fields are private; constructors document what a value means.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A price in fen (0.01 yuan), the market's tick. Always positive.
/// In configuration files it is written in yuan as a string: `"74.63"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(u32);

impl Serialize for Price {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
        let text = String::deserialize(d)?;
        Price::parse_yuan(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a price in yuan between 0.01 and 9999.99 on the 0.01 tick"
            ))
        })
    }
}

impl Price {
    /// Lowest price the market accepts: 0.01 yuan.
    pub const MIN: Price = Price(1);
    /// Highest price the market accepts: 9,999.99 yuan.
    pub const MAX: Price = Price(999_999);

    /// A price of `fen` fen, or `None` when outside [`Price::MIN`]..=[`Price::MAX`].
    pub const fn from_fen(fen: u32) -> Option<Price> {
        if fen >= Self::MIN.0 && fen <= Self::MAX.0 { Some(Price(fen)) } else { None }
    }

    /// Parses yuan with at most two decimals (`"74.63"`, `"80"`, `"0.5"`).
    pub fn parse_yuan(text: &str) -> Option<Price> {
        let text = text.trim();
        let (whole, frac) = match text.split_once('.') {
            Some((whole, frac)) => (whole, Some(frac)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.len() <= 7 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || frac.is_some_and(|f| f.len() > 2 || !digits(f)) {
            return None;
        }
        let frac = frac.unwrap_or("");
        let cents = match frac.len() {
            0 => 0,
            1 => frac.parse::<u32>().ok()? * 10,
            _ => frac.parse::<u32>().ok()?,
        };
        Price::from_fen(whole.parse::<u32>().ok()?.checked_mul(100)?.checked_add(cents)?)
    }

    /// The price in fen.
    pub const fn fen(self) -> u32 {
        self.0
    }

    /// The price in the wire's 4-implied-decimal form (1 fen = 100).
    pub const fn to_wire(self) -> u32 {
        self.0 * 100
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// A quantity in tonnes of CO2e (the lot is 1 t).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Qty(u32);

impl Qty {
    /// Zero tonnes.
    pub const ZERO: Qty = Qty(0);

    /// `t` tonnes.
    pub const fn new(t: u32) -> Qty {
        Qty(t)
    }

    /// The quantity in tonnes.
    pub const fn tonnes(self) -> u32 {
        self.0
    }

    /// True for zero tonnes.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self - other`; callers guarantee `other <= self` (a broken invariant panics).
    pub fn minus(self, other: Qty) -> Qty {
        Qty(self.0.checked_sub(other.0).expect("quantity underflow"))
    }
}

/// The public order reference number: unique for the trading day, the
/// number OUCH Accepted and every ITCH order message carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(u64);

impl OrderId {
    /// Order reference `n`.
    pub const fn new(n: u64) -> OrderId {
        OrderId(n)
    }
    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// The match number shared by both sides of one fill (one daily counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MatchId(u64);

impl MatchId {
    /// Match number `n`.
    pub const fn new(n: u64) -> MatchId {
        MatchId(n)
    }
    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A trading account, dense from 0 in the order of the accounts table.
/// The 4-character code that OUCH carries is mapped to it at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(u32);

impl AccountId {
    /// Account number `n`.
    pub const fn new(n: u32) -> AccountId {
        AccountId(n)
    }
    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// An order-entry username, dense from 0 in config order. Orders remember
/// it so that every reply finds its way back to the right session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(u16);

impl UserId {
    /// User number `n`.
    pub const fn new(n: u16) -> UserId {
        UserId(n)
    }
    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

/// A client's order token (OUCH's 14 ASCII bytes), unique per user per day.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Token([u8; 14]);

impl Token {
    /// The token with these exact wire bytes.
    pub const fn from_bytes(bytes: [u8; 14]) -> Token {
        Token(bytes)
    }

    /// A token from text, left-justified and space-padded; `None` when longer than 14 bytes.
    pub fn from_text(text: &str) -> Option<Token> {
        let src = text.as_bytes();
        if src.len() > 14 {
            return None;
        }
        let mut bytes = [b' '; 14];
        bytes[..src.len()].copy_from_slice(src);
        Some(Token(bytes))
    }

    /// The wire bytes.
    pub const fn bytes(&self) -> &[u8; 14] {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.0).trim_end())
    }
}

/// A sequence number: of the journal, a session's outbound stream or the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(u64);

impl Seq {
    /// Sequence number `n`.
    pub const fn new(n: u64) -> Seq {
        Seq(n)
    }
    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Nanoseconds since the Unix epoch (UTC), given by the caller with every
/// command: the engine never reads a clock, so a replay sees the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// `ns` nanoseconds since the epoch.
    pub const fn from_nanos(ns: u64) -> Timestamp {
        Timestamp(ns)
    }
    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> u64 {
        self.0
    }
}

/// An instrument's index in the configured directory (0-based; ITCH's stock
/// locate is this plus one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstrumentId(u8);

impl InstrumentId {
    /// Instrument number `n`.
    pub const fn new(n: u8) -> InstrumentId {
        InstrumentId(n)
    }
    /// The index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// The other side.
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    /// The wire letter: `B` or `S`.
    pub const fn letter(self) -> u8 {
        match self {
            Side::Buy => b'B',
            Side::Sell => b'S',
        }
    }
}

/// An 8-byte instrument code as ITCH and OUCH carry it (`CEA21   `).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StockCode([u8; 8]);

impl StockCode {
    /// The code for `text`; `None` when empty, longer than 8 bytes or not ASCII alphanumeric.
    pub fn from_text(text: &str) -> Option<StockCode> {
        let src = text.as_bytes();
        if src.is_empty() || src.len() > 8 || !src.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let mut bytes = [b' '; 8];
        bytes[..src.len()].copy_from_slice(src);
        Some(StockCode(bytes))
    }
    /// The code with these exact wire bytes (not validated: a journal or a
    /// wire message may carry an unknown stock, which the engine rejects `S`).
    pub const fn from_bytes(bytes: [u8; 8]) -> StockCode {
        StockCode(bytes)
    }
    /// The space-padded wire bytes.
    pub const fn bytes(&self) -> &[u8; 8] {
        &self.0
    }
    /// The code without padding.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("?").trim_end()
    }
}

impl fmt::Debug for StockCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for StockCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A one-way bidding auction's id: the 8 ASCII bytes the operator names it
/// by and OUCH's Auction Bid `a` carries (`A1      `). The seller's fills
/// carry it as their token (see [`AuctionId::token`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuctionId([u8; 8]);

impl AuctionId {
    /// The id for `text`, left-justified and space-padded; `None` when
    /// empty, longer than 8 bytes or not printable ASCII without spaces.
    pub fn from_text(text: &str) -> Option<AuctionId> {
        let src = text.as_bytes();
        if src.is_empty() || src.len() > 8 || !src.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut bytes = [b' '; 8];
        bytes[..src.len()].copy_from_slice(src);
        Some(AuctionId(bytes))
    }
    /// The id with these exact wire bytes (not validated).
    pub const fn from_bytes(bytes: [u8; 8]) -> AuctionId {
        AuctionId(bytes)
    }
    /// The space-padded wire bytes.
    pub const fn bytes(&self) -> &[u8; 8] {
        &self.0
    }
    /// The seller's order token for this auction: the id, space-padded to 14 bytes.
    pub fn token(&self) -> Token {
        let mut bytes = [b' '; 14];
        bytes[..8].copy_from_slice(&self.0);
        Token::from_bytes(bytes)
    }
}

impl fmt::Debug for AuctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(String::from_utf8_lossy(&self.0).trim_end())
    }
}

impl fmt::Display for AuctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_parse_and_print() {
        assert_eq!(Price::parse_yuan("74.63"), Price::from_fen(7_463));
        assert_eq!(Price::parse_yuan("80"), Price::from_fen(8_000));
        assert_eq!(Price::parse_yuan("0.5"), Price::from_fen(50));
        assert_eq!(Price::parse_yuan("9999.99"), Some(Price::MAX));
        for bad in ["", "0", "0.00", "10000", "1.234", "-1", "1.", ".5", "abc", "1e3"] {
            assert_eq!(Price::parse_yuan(bad), None, "{bad:?}");
        }
        assert_eq!(Price::from_fen(7_405).unwrap().to_string(), "74.05");
    }
}
