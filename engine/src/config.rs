//! Engine configuration: the market's numbers (docs/RULES.md) and capacities.
//!
//! Every number of the rules is a setting here, never a constant buried in
//! code. [`EngineConfig::demo`] is the embedded demo market of RULES §13.

use crate::types::{Price, Qty, StockCode};
use serde::{Deserialize, Serialize};

/// Hard ceiling on resting orders across all books; `orders_max` must stay
/// within it so that slab indices fit a `u32` with room for the nil marker.
pub const ORDERS_MAX_LIMIT: u32 = 1 << 26;
/// Hard ceiling on price levels per side of one book: the widest listing
/// band over the whole legal price range, (2 × 10% of 9,999.99 yuan) + 1.
pub const LEVELS_MAX: u32 = 200_001;
/// Hard ceiling on instruments (ITCH stock locate is a u16; we keep it small).
pub const INSTRUMENTS_MAX: usize = 64;
/// Hard ceiling on `auctions_max` (auctions announced per trading day).
pub const AUCTIONS_MAX_LIMIT: u32 = 64;
/// Hard ceiling on `auction_bids_max` (bids per auction).
pub const AUCTION_BIDS_MAX_LIMIT: u32 = 1 << 20;
/// Hard ceiling on `auctions_max × auction_bids_max`: every bid list is
/// reserved at start (about 40 bytes a bid, 160 MB at this ceiling).
pub const AUCTION_BIDS_TOTAL_LIMIT: u64 = 1 << 22;

const _: () = assert!(ORDERS_MAX_LIMIT < u32::MAX / 2);
const _: () = assert!(LEVELS_MAX > Price::MAX.fen() / 5);
const _: () = assert!(INSTRUMENTS_MAX <= u8::MAX as usize);
// Every bid of a day fits the bid token index (sized like the order indexes).
const _: () = assert!(AUCTION_BIDS_TOTAL_LIMIT <= ORDERS_MAX_LIMIT as u64);

/// How the trading day is cut into sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionMode {
    /// The real calendar: 09:30-11:30 and 13:00-15:00 local time on
    /// weekdays that are not holidays; block trades only in the afternoon.
    Calendar,
    /// Both methods open at every hour; the day ends only at the roll.
    AlwaysOpen,
}

/// What happens when an incoming order reaches a resting order of its own
/// account (RULES §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StpMode {
    /// The incoming order's remainder is cancelled; the resting order stays.
    CancelNewest,
    /// The resting order is cancelled and matching goes on.
    CancelOldest,
    /// Both are cancelled, the resting order first.
    CancelBoth,
}

/// One instrument of the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// The code (`CEA`, `CEA21` .. `CEA25`, `CCER`), at most 8 characters.
    pub code: String,
    /// The previous close in fen: the reference for the first day's bands.
    pub prev_close: Price,
}

/// Everything the engine needs to know at start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// The directory, in stock-locate order.
    pub instruments: Vec<InstrumentConfig>,
    /// Calendar or always-open.
    pub session: SessionMode,
    /// Self-trade prevention mode.
    pub stp: StpMode,
    /// Listing band, percent either side of the reference (10).
    pub listing_band_pct: u32,
    /// Block band, percent either side of the reference (30).
    pub block_band_pct: u32,
    /// Largest listing order (99,999 t).
    pub listing_qty_max: Qty,
    /// Smallest block order (100,000 t).
    pub block_qty_min: Qty,
    /// Offset of local time (Asia/Shanghai) from UTC in seconds (28,800).
    pub utc_offset_secs: i64,
    /// Exchange holidays as `YYYYMMDD`; the calendar skips them and weekends.
    pub holidays: Vec<u32>,
    /// How many orders may rest across all books at once.
    pub orders_max: u32,
    /// Most tonnes an account may own of one instrument, counting open
    /// buys (`m` reject beyond); `None` for no cap.
    #[serde(default)]
    pub holding_cap: Option<u32>,
    /// How many unmatched block orders may wait at once (`F` beyond).
    #[serde(default = "default_blocks_max")]
    pub blocks_max: u32,
    /// Smallest quantity a one-way bidding auction may offer (100,000 t).
    #[serde(default = "default_auction_qty_min")]
    pub auction_qty_min: Qty,
    /// Smallest auction bid (1 t; `Z` below).
    #[serde(default = "default_auction_bid_qty_min")]
    pub auction_bid_qty_min: Qty,
    /// How many auctions may be announced per trading day (refused `F`
    /// beyond); each one's bid list is reserved at start.
    #[serde(default = "default_auctions_max")]
    pub auctions_max: u32,
    /// How many bids one auction may hold live at once (`F` beyond).
    #[serde(default = "default_auction_bids_max")]
    pub auction_bids_max: u32,
    /// The secret of the engine's hash indexes (orders and bids by token,
    /// blocks by deal): the server draws one at start, so that clients
    /// cannot choose tokens that collide. Never in a file (a file's is
    /// zero); nothing the engine outputs depends on it, so a replay with
    /// another key reproduces the same events and state hash.
    #[serde(skip)]
    pub index_key: crate::index::IndexKey,
}

fn default_blocks_max() -> u32 {
    10_000
}

fn default_auction_qty_min() -> Qty {
    Qty::new(100_000)
}

fn default_auction_bid_qty_min() -> Qty {
    Qty::new(1)
}

fn default_auctions_max() -> u32 {
    4
}

fn default_auction_bids_max() -> u32 {
    10_000
}

/// A configuration the engine cannot run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// No instrument configured.
    #[error("no instruments configured")]
    NoInstruments,
    /// More instruments than [`INSTRUMENTS_MAX`].
    #[error("{0} instruments configured, at most {INSTRUMENTS_MAX} allowed")]
    TooManyInstruments(usize),
    /// An instrument code that is empty, too long or not alphanumeric.
    #[error("instrument code {0:?} must be 1-8 ASCII letters or digits")]
    BadCode(String),
    /// The same code twice.
    #[error("instrument {0} is configured twice")]
    DuplicateCode(String),
    /// A band percentage outside 1..=99 or a listing band wider than the block band.
    #[error("band percentages must satisfy 1 <= listing ({0}) <= block ({1}) <= 99")]
    BadBand(u32, u32),
    /// Listing and block sizes overlap or are zero.
    #[error("listing maximum {0} t must be >= 1 and below the block minimum {1} t")]
    BadSizes(u32, u32),
    /// `orders_max` of zero or above [`ORDERS_MAX_LIMIT`].
    #[error("orders_max {0} must be in 1..={ORDERS_MAX_LIMIT}")]
    BadOrdersMax(u32),
    /// An accounts table built for another number of instruments.
    #[error("accounts carry {0} instruments but the market has {1}")]
    AccountsMismatch(usize, usize),
    /// A holiday that is not a real `YYYYMMDD` date.
    #[error("holiday {0} is not a YYYYMMDD date")]
    BadHoliday(u32),
    /// Auction limits out of range: `auctions_max` in 1..=64,
    /// `auction_bids_max` in 1..=2^20, their product at most 2^22, both
    /// minimum quantities at least 1 t.
    #[error(
        "auction settings out of range: auctions_max {0} (1..={AUCTIONS_MAX_LIMIT}), \
         auction_bids_max {1} (1..={AUCTION_BIDS_MAX_LIMIT}), their product <= {AUCTION_BIDS_TOTAL_LIMIT}, \
         minimum quantities >= 1 t"
    )]
    BadAuctionLimits(u32, u32),
}

impl EngineConfig {
    /// The demo market of RULES §13: always-open, the seven instruments at
    /// their default previous closes, cancel-newest STP.
    pub fn demo() -> EngineConfig {
        let instrument = |code: &str, fen| InstrumentConfig {
            code: code.to_string(),
            prev_close: Price::from_fen(fen).expect("demo price in range"),
        };
        EngineConfig {
            instruments: vec![
                instrument("CEA", 7_463),
                instrument("CEA21", 7_463),
                instrument("CEA22", 7_463),
                instrument("CEA23", 7_463),
                instrument("CEA24", 7_463),
                instrument("CEA25", 7_463),
                instrument("CCER", 8_000),
            ],
            session: SessionMode::AlwaysOpen,
            stp: StpMode::CancelNewest,
            listing_band_pct: 10,
            block_band_pct: 30,
            listing_qty_max: Qty::new(99_999),
            block_qty_min: Qty::new(100_000),
            utc_offset_secs: 8 * 3600,
            holidays: Vec::new(),
            orders_max: 1 << 20,
            holding_cap: None,
            blocks_max: default_blocks_max(),
            auction_qty_min: default_auction_qty_min(),
            auction_bid_qty_min: default_auction_bid_qty_min(),
            auctions_max: default_auctions_max(),
            auction_bids_max: default_auction_bids_max(),
            index_key: [0; 2],
        }
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_instruments()?;
        let (listing, block) = (self.listing_band_pct, self.block_band_pct);
        if !(1 <= listing && listing <= block && block <= 99) {
            return Err(ConfigError::BadBand(listing, block));
        }
        let (max, min) = (self.listing_qty_max.tonnes(), self.block_qty_min.tonnes());
        if max == 0 || max >= min {
            return Err(ConfigError::BadSizes(max, min));
        }
        if self.orders_max == 0 || self.orders_max > ORDERS_MAX_LIMIT {
            return Err(ConfigError::BadOrdersMax(self.orders_max));
        }
        let (auctions, bids) = (self.auctions_max, self.auction_bids_max);
        let sizes_ok = !self.auction_qty_min.is_zero() && !self.auction_bid_qty_min.is_zero();
        let total_ok = u64::from(auctions) * u64::from(bids) <= AUCTION_BIDS_TOTAL_LIMIT;
        if !(1..=AUCTIONS_MAX_LIMIT).contains(&auctions)
            || !(1..=AUCTION_BIDS_MAX_LIMIT).contains(&bids)
            || !sizes_ok
            || !total_ok
        {
            return Err(ConfigError::BadAuctionLimits(auctions, bids));
        }
        match self.holidays.iter().find(|&&d| crate::calendar::days_from_yyyymmdd(d).is_none()) {
            Some(&bad) => Err(ConfigError::BadHoliday(bad)),
            None => Ok(()),
        }
    }

    fn validate_instruments(&self) -> Result<(), ConfigError> {
        if self.instruments.is_empty() {
            return Err(ConfigError::NoInstruments);
        }
        if self.instruments.len() > INSTRUMENTS_MAX {
            return Err(ConfigError::TooManyInstruments(self.instruments.len()));
        }
        for (i, inst) in self.instruments.iter().enumerate() {
            if StockCode::from_text(&inst.code).is_none() {
                return Err(ConfigError::BadCode(inst.code.clone()));
            }
            if self.instruments[..i].iter().any(|other| other.code == inst.code) {
                return Err(ConfigError::DuplicateCode(inst.code.clone()));
            }
        }
        Ok(())
    }
}
