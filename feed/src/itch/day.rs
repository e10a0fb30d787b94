//! The day and its instruments: System Event `S`, Stock Directory `R`,
//! Stock Trading Action `H`, LULD Auction Collar `J`.

use super::wire::*;
use super::{DecodeError, Header};

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
