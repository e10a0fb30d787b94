//! Engine configuration: the market's numbers (docs/RULES.md) and capacities.
//!
//! Every number of the rules is a setting here, never a constant buried in
//! code. [`EngineConfig::demo`] is the embedded demo market of RULES §13.

use crate::calendar::{SessionHours, TimeOfDay};
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
/// Hard ceiling on `pick_levels`: a pick searches that many levels order
/// by order, so the depth stays small.
pub const PICK_LEVELS_LIMIT: u32 = 100;
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
    /// Calendar mode: start of the morning session, local time (09:30).
    #[serde(default = "default_morning_open")]
    pub morning_open: TimeOfDay,
    /// Calendar mode: start of the lunch break (11:30).
    #[serde(default = "default_morning_close")]
    pub morning_close: TimeOfDay,
    /// Calendar mode: end of the lunch break (13:00).
    #[serde(default = "default_afternoon_open")]
    pub afternoon_open: TimeOfDay,
    /// Calendar mode: the close (15:00).
    #[serde(default = "default_afternoon_close")]
    pub afternoon_close: TimeOfDay,
    /// Calendar mode: the end-of-day roll the sequencer journals (15:30).
    #[serde(default = "default_roll_at")]
    pub roll_at: TimeOfDay,
    /// How many of the opposite side's best levels a pick order may
    /// reach (5; `N` beyond).
    #[serde(default = "default_pick_levels")]
    pub pick_levels: u32,
    /// An auction's floor under the "previous close −N%" rule, in percent
    /// below the previous close (10).
    #[serde(default = "default_auction_floor_pct")]
    pub auction_floor_pct: u32,
    /// An auction's cap, in percent above the previous close (10).
    #[serde(default = "default_auction_cap_pct")]
    pub auction_cap_pct: u32,
    /// How many instruments the directory may hold, the configured ones and
    /// those the operator lists later (RULES §1.3) together (16; at most
    /// [`INSTRUMENTS_MAX`]); a listing beyond it is refused.
    #[serde(default = "default_instruments_max")]
    pub instruments_max: u32,
    /// The secret of the engine's hash indexes (orders and bids by token,
    /// blocks by deal): the server draws one at start, so that clients
    /// cannot choose tokens that collide. Never in a file (a file's is
    /// zero); nothing the engine outputs depends on it, so a replay with
    /// another key reproduces the same events and state hash.
    #[serde(skip)]
    pub index_key: crate::index::IndexKey,
}

fn default_instruments_max() -> u32 {
    16
}

fn default_morning_open() -> TimeOfDay {
    SessionHours::DEFAULT.morning_open
}

fn default_morning_close() -> TimeOfDay {
    SessionHours::DEFAULT.morning_close
}

fn default_afternoon_open() -> TimeOfDay {
    SessionHours::DEFAULT.afternoon_open
}

fn default_afternoon_close() -> TimeOfDay {
    SessionHours::DEFAULT.afternoon_close
}

fn default_roll_at() -> TimeOfDay {
    SessionHours::DEFAULT.roll_at
}

fn default_pick_levels() -> u32 {
    5
}

fn default_auction_floor_pct() -> u32 {
    10
}

fn default_auction_cap_pct() -> u32 {
    10
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
    /// Session boundaries out of order.
    #[error(
        "session hours out of order: need morning_open ({0}) < morning_close ({1}) <= afternoon_open ({2}) \
         < afternoon_close ({3}) <= roll_at ({4})"
    )]
    BadSessionHours(TimeOfDay, TimeOfDay, TimeOfDay, TimeOfDay, TimeOfDay),
    /// `pick_levels` of zero or above [`PICK_LEVELS_LIMIT`].
    #[error("pick_levels {0} must be in 1..={PICK_LEVELS_LIMIT}")]
    BadPickLevels(u32),
    /// `instruments_max` below the configured directory or above [`INSTRUMENTS_MAX`].
    #[error("instruments_max {0} must be at least the {1} instruments configured and at most {INSTRUMENTS_MAX}")]
    BadInstrumentsMax(u32, usize),
    /// An auction floor or cap percentage above 99.
    #[error("auction_floor_pct ({0}) and auction_cap_pct ({1}) must each be in 0..=99")]
    BadAuctionRange(u32, u32),
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
            morning_open: default_morning_open(),
            morning_close: default_morning_close(),
            afternoon_open: default_afternoon_open(),
            afternoon_close: default_afternoon_close(),
            roll_at: default_roll_at(),
            pick_levels: default_pick_levels(),
            auction_floor_pct: default_auction_floor_pct(),
            auction_cap_pct: default_auction_cap_pct(),
            instruments_max: default_instruments_max(),
            index_key: [0; 2],
        }
    }

    /// The calendar-mode session hours these settings name.
    pub fn session_hours(&self) -> SessionHours {
        SessionHours {
            morning_open: self.morning_open,
            morning_close: self.morning_close,
            afternoon_open: self.afternoon_open,
            afternoon_close: self.afternoon_close,
            roll_at: self.roll_at,
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
        self.validate_day_and_methods()?;
        match self.holidays.iter().find(|&&d| crate::calendar::days_from_yyyymmdd(d).is_none()) {
            Some(&bad) => Err(ConfigError::BadHoliday(bad)),
            None => Ok(()),
        }
    }

    /// Session hours, pick depth, auction floor and cap.
    fn validate_day_and_methods(&self) -> Result<(), ConfigError> {
        let hours = self.session_hours();
        if !hours.in_order() {
            let h = hours;
            return Err(ConfigError::BadSessionHours(
                h.morning_open,
                h.morning_close,
                h.afternoon_open,
                h.afternoon_close,
                h.roll_at,
            ));
        }
        if !(1..=PICK_LEVELS_LIMIT).contains(&self.pick_levels) {
            return Err(ConfigError::BadPickLevels(self.pick_levels));
        }
        if self.auction_floor_pct > 99 || self.auction_cap_pct > 99 {
            return Err(ConfigError::BadAuctionRange(self.auction_floor_pct, self.auction_cap_pct));
        }
        Ok(())
    }

    fn validate_instruments(&self) -> Result<(), ConfigError> {
        if self.instruments.is_empty() {
            return Err(ConfigError::NoInstruments);
        }
        if self.instruments.len() > INSTRUMENTS_MAX {
            return Err(ConfigError::TooManyInstruments(self.instruments.len()));
        }
        let max = self.instruments_max as usize;
        if max < self.instruments.len() || max > INSTRUMENTS_MAX {
            return Err(ConfigError::BadInstrumentsMax(self.instruments_max, self.instruments.len()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hours_out_of_order_are_refused() {
        let mut config = EngineConfig::demo();
        config.roll_at = TimeOfDay::hm(14, 59);
        assert!(matches!(config.validate(), Err(ConfigError::BadSessionHours(..))));
        let mut config = EngineConfig::demo();
        (config.morning_open, config.morning_close) = (TimeOfDay::hm(11, 30), TimeOfDay::hm(11, 30));
        assert!(matches!(config.validate(), Err(ConfigError::BadSessionHours(..))));
        let mut config = EngineConfig::demo();
        config.afternoon_open = TimeOfDay::hm(11, 0);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("morning_close (11:30) <= afternoon_open (11:00)"), "{err}");
        // A lunch break of zero length is allowed.
        let mut config = EngineConfig::demo();
        config.afternoon_open = config.morning_close;
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn pick_depth_and_auction_range_are_checked() {
        let mut config = EngineConfig::demo();
        config.pick_levels = 0;
        assert_eq!(config.validate(), Err(ConfigError::BadPickLevels(0)));
        config.pick_levels = PICK_LEVELS_LIMIT + 1;
        assert_eq!(config.validate(), Err(ConfigError::BadPickLevels(PICK_LEVELS_LIMIT + 1)));
        config.pick_levels = PICK_LEVELS_LIMIT;
        assert_eq!(config.validate(), Ok(()));
        config.auction_cap_pct = 100;
        assert_eq!(config.validate(), Err(ConfigError::BadAuctionRange(10, 100)));
        (config.auction_cap_pct, config.auction_floor_pct) = (0, 100);
        assert_eq!(config.validate(), Err(ConfigError::BadAuctionRange(100, 0)));
    }

    #[test]
    fn the_defaults_are_the_rules_numbers_and_a_bad_time_says_why() {
        let demo = EngineConfig::demo();
        assert_eq!(demo.session_hours(), SessionHours::DEFAULT);
        assert_eq!((demo.pick_levels, demo.auction_floor_pct, demo.auction_cap_pct), (5, 10, 10));
        // Omitted keys take the defaults; a time that is not HH:MM is a clear error.
        let mut table = toml::Table::try_from(&demo).unwrap();
        for key in ["morning_open", "roll_at", "pick_levels", "auction_cap_pct"] {
            table.remove(key);
        }
        assert_eq!(table.clone().try_into::<EngineConfig>().unwrap(), demo);
        table.insert("roll_at".into(), toml::Value::String("25:00".into()));
        let err = table.try_into::<EngineConfig>().unwrap_err().to_string();
        assert!(err.contains("\"25:00\" is not a local time of day"), "{err}");
    }
}
