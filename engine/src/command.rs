//! Commands: everything that can change the engine's state or any client's
//! stream. Each is journaled before it is applied, so a replay of the
//! journal reproduces every event byte for byte.
//!
//! Order fields arrive as they were on the wire (OUCH's price with four
//! implied decimals, time in force, display, minimum quantity, cross type)
//! so that the engine alone decides every reject, in the one check order
//! PROTOCOL §5.2 fixes. The gateway decides only what it must: throttle,
//! entitlement and the side letter, sent as [`Command::Reject`].

use crate::event::RejectReason;
use crate::types::{
    AccountId, AuctionId, InstrumentId, OrderId, Price, Qty, Side, StockCode, Timestamp, Token, UserId,
};

/// OUCH's price value for a market (price-protected) order.
pub const MARKET_PRICE: u32 = 0x7FFF_FFFF;
/// OUCH time in force: immediate or cancel.
pub const TIF_IOC: u32 = 0;
/// OUCH time in force values meaning "day" (market hours / system hours).
pub const TIF_DAY: [u32; 2] = [99_998, 99_999];
/// Wire price units per fen (four implied decimals, two of them past the tick).
pub const WIRE_PER_FEN: u32 = 100;

/// One input to [`crate::Engine::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Enter a listing order.
    NewOrder(NewOrder),
    /// Cancel an order in full or reduce it.
    Cancel(Cancel),
    /// Replace an order's price and/or quantity under a new token.
    Replace(Replace),
    /// Enter a block agreement order.
    NewBlock(NewBlock),
    /// Pick one resting order within the opposite best `pick_levels` (5) levels.
    Pick(Pick),
    /// Time passes: the engine allocates every auction whose window ended
    /// and applies any session boundary up to `now`.
    /// The sequencer journals one at each boundary so that the close
    /// happens at the same point of the stream in every replay.
    Clock,
    /// End of the trading day: closes the day if still open, makes each
    /// close the next reference and starts the next day's counters.
    Roll,
    /// Operator: halt an instrument (new orders rejected `H`, cancels accepted).
    Halt(InstrumentId),
    /// Operator: lift a halt.
    Resume(InstrumentId),
    /// Operator kill switch: cancel every live order of an account (`S`).
    CancelAccount(AccountId),
    /// Cancel-on-disconnect: cancel every live order a user entered (`U`).
    CancelUser(UserId),
    /// Operator: a registry transfer into (positive) or out of (negative)
    /// an account's available cash or sellable holding.
    Transfer(Transfer),
    /// A reject the gateway decided (throttle, entitlement, side), journaled
    /// so that the user's sequenced stream replays identically.
    Reject(GatewayReject),
    /// Operator: announce a one-way bidding auction (RULES §2.4).
    /// The seller's quantity is locked at once; the auction is allocated by
    /// the first command whose time is at or after the window's end.
    AnnounceAuction(AnnounceAuction),
    /// A sealed bid in an open auction (OUCH extension `a`). Cancelled or
    /// reduced by the standard [`Command::Cancel`] with its token.
    AuctionBid(AuctionBid),
    /// Operator: list a new instrument from the next trading day (RULES
    /// §1.3): at the next roll it joins the directory, last, with this
    /// previous close, and every account holds 0 t of it.
    List(Listing),
    /// Operator: delist an instrument from the next trading day: from the
    /// next roll new orders for it are rejected `S`.
    Delist(Delisting),
}

/// An operator's listing of a new instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The operator's request number, echoed in [`crate::Event::ReferenceData`].
    pub request: u64,
    /// The new code.
    pub stock: StockCode,
    /// The reference of its first trading day.
    pub prev_close: Price,
}

/// An operator's delisting of an instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delisting {
    /// The operator's request number, echoed in [`crate::Event::ReferenceData`].
    pub request: u64,
    /// The code.
    pub stock: StockCode,
}

impl Command {
    /// A visible day limit order (see [`NewOrder::limit`]) by user 0 for
    /// CEA, the first instrument of [`crate::EngineConfig::demo`], at `fen`
    /// fen: the one-line order of tests, benches and examples, so that they
    /// do not each build their own.
    ///
    /// # Panics
    /// If `token` is longer than 14 bytes.
    pub fn demo_order(token: &str, account: u32, side: Side, qty: u32, fen: u32) -> Command {
        let token = Token::from_text(token).expect("a token of at most 14 bytes");
        let stock = StockCode::from_text("CEA").expect("CEA is a valid stock code");
        Command::NewOrder(NewOrder::limit(UserId::new(0), token, AccountId::new(account), side, qty, stock, fen))
    }
}

/// A new listing order, fields as the wire carried them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Who sent it: replies go to this user's stream.
    pub user: UserId,
    /// The client's token for it.
    pub token: Token,
    /// The trading account (already checked for entitlement).
    pub account: AccountId,
    /// Buy or sell.
    pub side: Side,
    /// Tonnes.
    pub qty: Qty,
    /// Instrument code; an unknown one is rejected `S`.
    pub stock: StockCode,
    /// Price with four implied decimals, or [`MARKET_PRICE`].
    pub price: u32,
    /// Time in force: [`TIF_IOC`] or one of [`TIF_DAY`].
    pub tif: u32,
    /// `A`/`Y` visible, `P` post-only.
    pub display: u8,
    /// Capacity: accepted and echoed.
    pub capacity: u8,
    /// Intermarket sweep eligibility: must be `N` (`O`), checked after the
    /// display as it sits on the wire.
    pub iso: u8,
    /// 0, or equal to `qty` with IOC for fill-or-kill.
    pub min_qty: u32,
    /// Must be `N`.
    pub cross_type: u8,
}

impl NewOrder {
    /// A visible day limit order at `fen` fen, the common case in tests and tools.
    pub fn limit(
        user: UserId,
        token: Token,
        account: AccountId,
        side: Side,
        qty: u32,
        stock: StockCode,
        fen: u32,
    ) -> NewOrder {
        NewOrder {
            user,
            token,
            account,
            side,
            qty: Qty::new(qty),
            stock,
            price: fen.saturating_mul(WIRE_PER_FEN),
            tif: TIF_DAY[1],
            display: b'Y',
            capacity: b'A',
            iso: b'N',
            min_qty: 0,
            cross_type: b'N',
        }
    }
}

/// A block agreement order (OUCH extension `b`), fields as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewBlock {
    /// Who sent it.
    pub user: UserId,
    /// The client's token.
    pub token: Token,
    /// Its own account (checked for entitlement).
    pub account: AccountId,
    /// The account it agrees to trade with; `None` when the code on the
    /// wire names no account (`O`, checked after shares, stock and price).
    pub counterparty: Option<AccountId>,
    /// Buy or sell.
    pub side: Side,
    /// Tonnes, at least the block minimum.
    pub qty: Qty,
    /// Instrument code.
    pub stock: StockCode,
    /// Price, four implied decimals, inside the block band.
    pub price: u32,
    /// The deal both sides name.
    pub deal_id: [u8; 8],
}

/// A pick order (OUCH extension `p`): trade against one named resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// Who sent it.
    pub user: UserId,
    /// The client's token.
    pub token: Token,
    /// Its account.
    pub account: AccountId,
    /// Buy or sell (the target rests on the other side).
    pub side: Side,
    /// Tonnes wanted; what the target cannot fill is cancelled (`I`).
    pub qty: Qty,
    /// Instrument code.
    pub stock: StockCode,
    /// The public reference of the resting order to trade against.
    pub target: OrderId,
}

/// Cancel (to zero) or reduce an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancel {
    /// The order's user.
    pub user: UserId,
    /// The order's current token.
    pub token: Token,
    /// The open quantity the order keeps; 0 cancels it.
    pub qty: Qty,
}

/// Replace an order, fields as the wire carried them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replace {
    /// The order's user.
    pub user: UserId,
    /// The order's current token.
    pub token: Token,
    /// The token the order has after the replace.
    pub new_token: Token,
    /// The open quantity the order will have (0 is rejected `Z`).
    pub qty: Qty,
    /// New price, four implied decimals ([`MARKET_PRICE`] is rejected `X`).
    pub price: u32,
    /// Time in force, as in [`NewOrder::tif`].
    pub tif: u32,
    /// Display, as in [`NewOrder::display`].
    pub display: u8,
    /// Intermarket sweep eligibility, as in [`NewOrder::iso`].
    pub iso: u8,
    /// Minimum quantity, as in [`NewOrder::min_qty`].
    pub min_qty: u32,
}

/// A reject decided before the engine, replayed through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayReject {
    /// The user whose stream receives it.
    pub user: UserId,
    /// The token of the rejected order or replace.
    pub token: Token,
    /// Why.
    pub reason: RejectReason,
    /// True when `token` is the new token the rejected message named (an
    /// order's, block's, pick's or bid's own, a replace's replacement): the
    /// sequencer then ignores the reject when that token is taken today,
    /// as it ignores the message itself (PROTOCOL §4.9). False for a
    /// message too malformed to name one.
    pub names_new_token: bool,
}

/// What the engine should do with a token ([`NewOrder::tif`] etc. decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Rests until filled, cancelled or the close.
    Day,
    /// Fills what it can; the rest is cancelled (`I`).
    Ioc,
    /// Fills completely at once or is cancelled whole (`I`).
    Fok,
}

/// Helpers shared by the engine and anyone building commands.
impl StockCode {
    /// Looks the code up in a directory; `None` is an unknown stock.
    pub fn find_in(&self, codes: &[StockCode]) -> Option<InstrumentId> {
        let pos = codes.iter().position(|c| c == self)?;
        u8::try_from(pos).ok().map(InstrumentId::new)
    }
}

/// What a transfer moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Asset {
    /// Cash, in fen.
    Cash,
    /// Holdings of an instrument, in tonnes.
    Holding(InstrumentId),
}

/// A deposit or withdrawal (a registry transfer), journaled like every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The operator's request number, echoed in [`crate::Event::Transferred`].
    pub request: u64,
    /// The account.
    pub account: AccountId,
    /// Cash or an instrument.
    pub asset: Asset,
    /// Fen or tonnes: positive deposits, negative withdraws.
    pub amount: i64,
}

/// How an auction's winners pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pricing {
    /// Every winner pays the lowest winning bid's price.
    Uniform,
    /// Each winner pays its own bid's price.
    PayAsBid,
}

/// Where an auction's floor (lowest acceptable bid) lies. The cap is
/// always previous close + `auction_cap_pct` (10%).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloorRule {
    /// The previous close.
    PreviousClose,
    /// Previous close − `auction_floor_pct` (10%): ceil(previous close ×
    /// (100 − pct) / 100). The name keeps the default's wording, which
    /// the admin API and journal use.
    PreviousCloseMinus10,
}

/// The operator's announcement of a one-way bidding auction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceAuction {
    /// The auction's id, unique for the trading day.
    pub id: AuctionId,
    /// Instrument code; an unknown one is refused.
    pub stock: StockCode,
    /// The selling account: the quantity is locked from its sellable holding.
    pub seller: AccountId,
    /// The username whose stream receives the seller's fills.
    pub seller_user: UserId,
    /// Tonnes offered, at least the auction minimum (100,000 t).
    pub qty: Qty,
    /// The window opens at this time (bids before it are rejected `O`).
    pub start: Timestamp,
    /// The window ends at this time: the first command at or after it
    /// allocates the auction before it is handled.
    pub end: Timestamp,
    /// Uniform or pay-as-bid.
    pub pricing: Pricing,
    /// The floor rule.
    pub floor: FloorRule,
}

/// A bid in an auction (OUCH extension `a`), fields as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuctionBid {
    /// Who sent it: replies go to this user's stream.
    pub user: UserId,
    /// The client's token for it.
    pub token: Token,
    /// The buying account (already checked for entitlement).
    pub account: AccountId,
    /// Tonnes, at least the configured bid minimum (1 t).
    pub qty: Qty,
    /// Instrument code; it must be the auction's.
    pub stock: StockCode,
    /// Price with four implied decimals, on the tick, within [floor, cap].
    pub price: u32,
    /// The auction bid in.
    pub auction: AuctionId,
}
