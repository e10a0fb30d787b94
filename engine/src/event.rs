//! Events: everything the engine tells the outside world. The gateway turns
//! the order events into each user's OUCH stream; the feed turns the book
//! and market events into ITCH. Events carry tokens and users, so both
//! translations are pure functions of the event stream.

use crate::calendar::Phase;
use crate::command::{FloorRule, Pricing, Transfer};
use crate::types::{
    AccountId, AuctionId, InstrumentId, MatchId, OrderId, Price, Qty, Side, StockCode, Timestamp, Token, UserId,
};

/// Where [`crate::Engine::apply`] writes its events, in order: the
/// caller's buffer, cleared by the caller between commands.
pub trait EventSink {
    /// Appends `event`.
    fn push(&mut self, event: Event);
}

impl EventSink for Vec<Event> {
    #[inline(always)]
    fn push(&mut self, event: Event) {
        Vec::push(self, event);
    }
}

/// One output of [`crate::Engine::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new order passed validation (always before its fills).
    Accepted(OrderInfo),
    /// An order or replace failed validation; nothing changed.
    Rejected {
        /// Whose.
        user: UserId,
        /// The rejected order's (or replacement's) token.
        token: Token,
        /// Why.
        reason: RejectReason,
    },
    /// A replace took effect; the order now has the token and reference in `order`.
    Replaced {
        /// The order after the replace.
        order: OrderInfo,
        /// The token it had before.
        previous_token: Token,
    },
    /// A fill, reported to both sides under one match number.
    Executed(Execution),
    /// Some or all of an order's open quantity was cancelled.
    Cancelled {
        /// Whose.
        user: UserId,
        /// The order's token.
        token: Token,
        /// The order's reference.
        id: OrderId,
        /// Tonnes taken off.
        decrement: Qty,
        /// Why.
        reason: CancelReason,
    },
    /// A cancel or reduce that changed nothing (order not live, or a reduce
    /// to at or above the open quantity).
    CancelRejected {
        /// Whose.
        user: UserId,
        /// The token named.
        token: Token,
    },
    /// Feed: an order now rests visibly (ITCH `A`).
    BookAdd {
        /// Book.
        instrument: InstrumentId,
        /// Public reference.
        id: OrderId,
        /// Side.
        side: Side,
        /// Resting quantity.
        qty: Qty,
        /// Price.
        price: Price,
    },
    /// Feed: a resting order lost `cancelled` tonnes but keeps its place (ITCH `X`).
    BookReduce {
        /// Book.
        instrument: InstrumentId,
        /// Public reference.
        id: OrderId,
        /// Tonnes removed.
        cancelled: Qty,
    },
    /// Feed: a resting order left the book other than by a fill (ITCH `D`).
    BookDelete {
        /// Book.
        instrument: InstrumentId,
        /// Public reference.
        id: OrderId,
    },
    /// Feed: a resting order moved to a new reference, price and quantity,
    /// at the back of its queue, without trading (ITCH `U`).
    BookReplace {
        /// Book.
        instrument: InstrumentId,
        /// The reference it had.
        old: OrderId,
        /// The reference it has now.
        new: OrderId,
        /// Resting quantity.
        qty: Qty,
        /// Price.
        price: Price,
    },
    /// The market moved to a new phase of its day.
    Phase(Phase),
    /// An instrument's trading state changed.
    TradingState {
        /// Book.
        instrument: InstrumentId,
        /// New state.
        state: TradingState,
    },
    /// End-of-day statistics of one instrument's listing trading, emitted at the close.
    DailyStats(DailyStats),
    /// A new trading day starts for an instrument: its reference and bands.
    Reference(Reference),
    /// A registry transfer was applied (`accepted`) or refused (unknown
    /// account or instrument, not enough available, or an overflow).
    Transferred {
        /// The transfer.
        transfer: Transfer,
        /// True when applied.
        accepted: bool,
    },
    /// An auction was announced: the seller's quantity is locked.
    AuctionAnnounced(AuctionInfo),
    /// An announcement was refused; nothing changed.
    AuctionRefused {
        /// The auction id named.
        id: AuctionId,
        /// Why.
        reason: AuctionRefusal,
    },
    /// An auction ended: emitted before its fills (one [`Event::Executed`]
    /// per winning bid, method [`Method::Auction`]) and before the
    /// cancellation of what did not win, so that the feed can print the
    /// cross (ITCH `Q`, type `I`) and then one trade (`P`) per fill.
    AuctionResult(AuctionResult),
    /// The answer to a listing or delisting (RULES §1.3): scheduled for the
    /// next roll (`refusal` is `None`) or refused, changing nothing.
    ReferenceData {
        /// The operator's request number.
        request: u64,
        /// The code named.
        stock: StockCode,
        /// Listing (with its previous close) or delisting.
        change: ReferenceChange,
        /// Why it was refused, if it was.
        refusal: Option<ReferenceRefusal>,
    },
}

/// A change of the directory, effective at the next roll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReferenceChange {
    /// A new instrument with the reference of its first day.
    List(Price),
    /// No new orders from the next day.
    Delist,
}

/// Why a listing or delisting was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReferenceRefusal {
    /// The code is listed already, or its listing is scheduled.
    AlreadyListed,
    /// The directory would pass `market.instruments_max`.
    DirectoryFull,
    /// No instrument has that code (or its listing is only scheduled).
    UnknownStock,
    /// Delisted already, or its delisting is scheduled.
    AlreadyDelisted,
}

impl ReferenceRefusal {
    /// What the operator is told.
    pub const fn reason(self) -> &'static str {
        match self {
            ReferenceRefusal::AlreadyListed => "the code is listed already or its listing is scheduled",
            ReferenceRefusal::DirectoryFull => "the directory is full (market.instruments_max)",
            ReferenceRefusal::UnknownStock => "no listed instrument has that code",
            ReferenceRefusal::AlreadyDelisted => "the instrument is delisted already or its delisting is scheduled",
        }
    }
}

impl Event {
    /// A reject of the order or replace under `token`.
    pub fn rejected(user: UserId, token: Token, reason: RejectReason) -> Event {
        Event::Rejected { user, token, reason }
    }

    /// `decrement` tonnes of an order cancelled for `reason`.
    pub fn cancelled(user: UserId, token: Token, id: OrderId, decrement: Qty, reason: CancelReason) -> Event {
        Event::Cancelled { user, token, id, decrement, reason }
    }
}

/// The trading method an order, fill or statistic belongs to (RULES §2).
/// Block and auction trades never move the listing open, high, low or close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Listing trading: the continuous book (pick orders included).
    Listing,
    /// Block agreement between two named accounts.
    Block,
    /// One-way bidding auction (OUCH liquidity `H`, ITCH `P` after a `Q`).
    Auction,
}

impl Method {
    /// OUCH's cross type for an Accepted of this method: `N` listing, `B`
    /// block, `A` auction bid.
    pub const fn cross_type(self) -> u8 {
        match self {
            Method::Listing => b'N',
            Method::Block => b'B',
            Method::Auction => b'A',
        }
    }

    /// Every method, in the order reports list them.
    pub const ALL: [Method; 3] = [Method::Listing, Method::Block, Method::Auction];

    /// The method's name in reports and end-of-day files.
    pub const fn name(self) -> &'static str {
        match self {
            Method::Listing => "listing",
            Method::Block => "block",
            Method::Auction => "auction",
        }
    }
}

/// An order as OUCH Accepted and Replaced report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderInfo {
    /// The method: listing, block or auction (a bid).
    pub method: Method,
    /// Whose.
    pub user: UserId,
    /// Current token.
    pub token: Token,
    /// Public reference number.
    pub id: OrderId,
    /// Account.
    pub account: AccountId,
    /// Book.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Open quantity.
    pub qty: Qty,
    /// Price as on the wire (four decimals, or the market sentinel).
    pub wire_price: u32,
    /// Time in force as on the wire.
    pub tif: u32,
    /// Display letter as sent.
    pub display: u8,
    /// Capacity letter as sent.
    pub capacity: u8,
    /// Minimum quantity as sent.
    pub min_qty: u32,
}

/// One side of a fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Party {
    /// Whose.
    pub user: UserId,
    /// The order's token.
    pub token: Token,
    /// The order's public reference.
    pub id: OrderId,
    /// The account.
    pub account: AccountId,
}

/// A fill between a resting maker and an incoming taker (for a block
/// trade: the earlier block order and the one that matched it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Execution {
    /// Listing (OUCH liquidity `A`/`R`, ITCH `E`), block (`B`, ITCH `P`) or
    /// auction (`H`, ITCH `P` after the auction's `Q`; the maker is the
    /// seller, its token the auction id, the taker the winning bid).
    pub method: Method,
    /// Book.
    pub instrument: InstrumentId,
    /// Shared by both sides' reports and by the feed.
    pub match_id: MatchId,
    /// The maker's price.
    pub price: Price,
    /// Tonnes.
    pub qty: Qty,
    /// The taker's side (the maker is on the other).
    pub taker_side: Side,
    /// The resting order.
    pub maker: Party,
    /// The incoming order.
    pub taker: Party,
}

/// Why an order or replace was rejected: the OUCH reject letters of PROTOCOL §5.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// `S` unknown stock.
    UnknownStock,
    /// `X` invalid price: zero, off the tick, out of range.
    InvalidPrice,
    /// `K` outside the price band.
    OutsideBand,
    /// `Z` invalid quantity.
    InvalidQty,
    /// `N` invalid minimum quantity.
    InvalidMinQty,
    /// `D` invalid display value.
    InvalidDisplay,
    /// `O` any other invalid field.
    InvalidField,
    /// `i` short sale or more than the sellable holding.
    ShortSale,
    /// `n` insufficient funds.
    InsufficientFunds,
    /// `m` holding cap exceeded.
    HoldingCap,
    /// `C` market closed for this method now.
    Closed,
    /// `H` instrument halted.
    Halted,
    /// `L` account not entitled.
    NotEntitled,
    /// `P` post-only order would trade.
    PostOnlyWouldTrade,
    /// `U` replace of an order that is not live.
    NotLive,
    /// `G` pick target not pickable.
    NotPickable,
    /// `F` engine capacity full.
    CapacityFull,
    /// `V` throttled.
    Throttled,
}

impl RejectReason {
    /// The OUCH reject letter.
    pub const fn letter(self) -> u8 {
        match self {
            RejectReason::UnknownStock => b'S',
            RejectReason::InvalidPrice => b'X',
            RejectReason::OutsideBand => b'K',
            RejectReason::InvalidQty => b'Z',
            RejectReason::InvalidMinQty => b'N',
            RejectReason::InvalidDisplay => b'D',
            RejectReason::InvalidField => b'O',
            RejectReason::ShortSale => b'i',
            RejectReason::InsufficientFunds => b'n',
            RejectReason::HoldingCap => b'm',
            RejectReason::Closed => b'C',
            RejectReason::Halted => b'H',
            RejectReason::NotEntitled => b'L',
            RejectReason::PostOnlyWouldTrade => b'P',
            RejectReason::NotLive => b'U',
            RejectReason::NotPickable => b'G',
            RejectReason::CapacityFull => b'F',
            RejectReason::Throttled => b'V',
        }
    }

    /// Every reason, for tables and tests.
    pub const ALL: [RejectReason; 18] = [
        RejectReason::UnknownStock,
        RejectReason::InvalidPrice,
        RejectReason::OutsideBand,
        RejectReason::InvalidQty,
        RejectReason::InvalidMinQty,
        RejectReason::InvalidDisplay,
        RejectReason::InvalidField,
        RejectReason::ShortSale,
        RejectReason::InsufficientFunds,
        RejectReason::HoldingCap,
        RejectReason::Closed,
        RejectReason::Halted,
        RejectReason::NotEntitled,
        RejectReason::PostOnlyWouldTrade,
        RejectReason::NotLive,
        RejectReason::NotPickable,
        RejectReason::CapacityFull,
        RejectReason::Throttled,
    ];

    /// The reason for an OUCH letter.
    pub fn from_letter(letter: u8) -> Option<RejectReason> {
        Self::ALL.into_iter().find(|r| r.letter() == letter)
    }
}

/// Why open quantity was cancelled: the OUCH cancel letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// `U` the user asked.
    User,
    /// `I` IOC, FOK or market remainder.
    ImmediateOrCancel,
    /// `T` expired at the close.
    Expired,
    /// `Q` self-trade prevention.
    SelfTrade,
    /// `S` supervisory (kill switch).
    Supervisory,
    /// `Z` system.
    System,
}

impl CancelReason {
    /// The OUCH cancel letter.
    pub const fn letter(self) -> u8 {
        match self {
            CancelReason::User => b'U',
            CancelReason::ImmediateOrCancel => b'I',
            CancelReason::Expired => b'T',
            CancelReason::SelfTrade => b'Q',
            CancelReason::Supervisory => b'S',
            CancelReason::System => b'Z',
        }
    }
}

/// An instrument's trading state, as ITCH `H` reports it. The close is not
/// a state: it is the market's [`crate::Phase::Closed`] (ITCH System Event `M`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TradingState {
    /// Open for trading (`T`).
    Trading,
    /// Paused: the lunch break or before the open (`P`).
    Paused,
    /// Halted by the operator (`H`).
    Halted,
}

/// One instrument's statistics for one method's trades of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DailyStats {
    /// Which trades these are.
    pub method: Method,
    /// Book.
    pub instrument: InstrumentId,
    /// First trade's price, or the previous close without trades.
    pub open: Price,
    /// Highest trade, or the previous close.
    pub high: Price,
    /// Lowest trade, or the previous close.
    pub low: Price,
    /// The official close: VWAP rounded half-up to the tick, or the previous close.
    pub close: Price,
    /// Tonnes traded.
    pub volume: u64,
    /// Turnover in fen (price × tonnes summed).
    pub turnover: u128,
    /// Number of fills.
    pub trades: u64,
}

/// An instrument's reference and bands for a trading day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Book.
    pub instrument: InstrumentId,
    /// Its code: consumers learn an instrument listed at the roll from it.
    pub stock: StockCode,
    /// The previous close.
    pub reference: Price,
    /// Lowest listing price allowed.
    pub lower: Price,
    /// Highest listing price allowed.
    pub upper: Price,
}

/// An announced auction, as [`Event::AuctionAnnounced`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuctionInfo {
    /// The auction's id.
    pub id: AuctionId,
    /// The seller's order reference (from the daily order counter); its
    /// fills carry it with the auction id as token.
    pub order_id: OrderId,
    /// Book.
    pub instrument: InstrumentId,
    /// The selling account.
    pub seller: AccountId,
    /// The username that receives the seller's fills.
    pub seller_user: UserId,
    /// Tonnes offered (locked from the seller's sellable holding).
    pub qty: Qty,
    /// The window opens.
    pub start: Timestamp,
    /// The window ends (allocation).
    pub end: Timestamp,
    /// Uniform or pay-as-bid.
    pub pricing: Pricing,
    /// The floor rule.
    pub floor_rule: FloorRule,
    /// Lowest acceptable bid.
    pub floor: Price,
    /// Highest acceptable bid (previous close + `auction_cap_pct`).
    pub cap: Price,
}

/// Why an announcement was refused (with the OUCH letter closest in meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuctionRefusal {
    /// `S` unknown instrument.
    UnknownStock,
    /// `L` unknown seller account.
    UnknownAccount,
    /// `Z` quantity below the auction minimum.
    InvalidQty,
    /// `i` the seller lacks that many sellable tonnes (T+1 included).
    Holdings,
    /// `O` the window ends at or before its start, or at or before now.
    BadWindow,
    /// `O` the id was already used today.
    DuplicateId,
    /// `C` the trading day is closed (after the close, before the roll).
    Closed,
    /// `F` the day's auctions (`auctions_max`) are used up.
    CapacityFull,
}

impl AuctionRefusal {
    /// The OUCH reject letter closest in meaning.
    pub const fn letter(self) -> u8 {
        match self {
            AuctionRefusal::UnknownStock => b'S',
            AuctionRefusal::UnknownAccount => b'L',
            AuctionRefusal::InvalidQty => b'Z',
            AuctionRefusal::Holdings => b'i',
            AuctionRefusal::BadWindow | AuctionRefusal::DuplicateId => b'O',
            AuctionRefusal::Closed => b'C',
            AuctionRefusal::CapacityFull => b'F',
        }
    }
}

/// An auction's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuctionResult {
    /// The auction's id.
    pub id: AuctionId,
    /// Book.
    pub instrument: InstrumentId,
    /// Uniform or pay-as-bid.
    pub pricing: Pricing,
    /// Tonnes offered.
    pub offered: Qty,
    /// Tonnes sold (the rest returned to the seller's sellable holding).
    pub sold: Qty,
    /// Uniform: the lowest winning bid's price; pay-as-bid: the
    /// quantity-weighted average of the winning prices, rounded half-up to
    /// the tick. `None` when nothing was sold.
    pub price: Option<Price>,
    /// Turnover in fen (what the winners pay in total).
    pub turnover: u128,
    /// Winning bids (one fill each).
    pub winners: u32,
    /// Bids live at the end.
    pub bids: u32,
    /// True when the close ended the auction before its window did: nothing
    /// was sold, every bid expired (`T`).
    pub expired: bool,
}
