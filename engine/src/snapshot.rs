//! The engine's whole state as plain data, and an engine rebuilt from it.
//!
//! [`Engine::snapshot`] copies out every book (resting orders in priority
//! order), the counters, the day and its phase, every account, the waiting
//! block orders and the day's auctions with their bids; [`Engine::restore`]
//! builds an engine for the same configuration and puts all of it back,
//! rebuilding the indexes, then checks the invariants and that the state
//! hash equals the one recorded. Sans-IO: the file format (and its
//! checksum) is the caller's; the state derives `serde` so that any format
//! will do. Fields are primitives on purpose: the snapshot is an external
//! format that must outlive refactorings of the engine's internal types.

use crate::accounts::{AccountTable, Cash, Holding};
use crate::auction::{Auction, Bid};
use crate::block::BlockOrder;
use crate::book::Order;
use crate::calendar::Phase;
use crate::command::{FloorRule, Pricing};
use crate::config::EngineConfig;
use crate::engine::{Engine, Stats, token_hash};
use crate::event::{AuctionInfo, AuctionResult, TradingState};
use crate::types::{
    AccountId, AuctionId, InstrumentId, OrderId, Price, Qty, Side, StockCode, Timestamp, Token, UserId,
};
use serde::{Deserialize, Serialize};

/// The version of [`Snapshot`]'s layout; a restore refuses any other.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Why a snapshot cannot become an engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Written by another layout version.
    #[error("snapshot version {0}, this build reads version {SNAPSHOT_VERSION}")]
    Version(u32),
    /// Taken of a market with other instruments.
    #[error("snapshot instruments {found:?} differ from the configuration's {expected:?}")]
    Instruments {
        /// In the configuration.
        expected: Vec<String>,
        /// In the snapshot.
        found: Vec<String>,
    },
    /// A value out of range, or a structure that does not fit the configuration.
    #[error("snapshot field {0} is invalid")]
    Invalid(&'static str),
    /// The engine could not be built for the configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// Restored, the state does not hash to what was recorded.
    #[error("restored state hash {restored:#018x} differs from the recorded {recorded:#018x}")]
    Hash {
        /// Recorded at snapshot time.
        recorded: u64,
        /// Of the restored engine.
        restored: u64,
    },
}

/// One day's statistics of one method.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsState {
    /// Open, high, low in fen (0 = none yet).
    pub open_high_low: [u32; 3],
    /// Tonnes.
    pub volume: u64,
    /// Fen, as decimal text (it can pass 2^64 in theory).
    pub turnover: String,
    /// Fills.
    pub trades: u64,
}

/// A resting listing order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// Public reference.
    pub id: u64,
    /// Token bytes.
    pub token: [u8; 14],
    /// User id.
    pub user: u16,
    /// Account id.
    pub account: u32,
    /// Price in fen.
    pub price: u32,
    /// Open tonnes.
    pub open: u32,
    /// Capacity letter.
    pub capacity: u8,
}

/// One instrument's book and day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookState {
    /// Reference, lower and upper band edges in fen.
    pub reference_lower_upper: [u32; 3],
    /// Halted by the operator.
    pub halted: bool,
    /// Delisted (RULES §1.3); absent in snapshots from before delisting.
    #[serde(default)]
    pub delisted: bool,
    /// Last announced trading state: 0 none, 1 trading, 2 paused, 3 halted.
    pub announced: u8,
    /// Listing, block, auction statistics.
    pub stats: [StatsState; 3],
    /// Bids, best first, each level oldest first.
    pub bids: Vec<OrderState>,
    /// Asks, best first, each level oldest first.
    pub asks: Vec<OrderState>,
}

/// One account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// Code.
    pub code: [u8; 4],
    /// Cash available and locked, in fen.
    pub cash: [i64; 2],
    /// Per instrument: available, locked, bought today, open buys (tonnes).
    pub holdings: Vec<[i64; 4]>,
}

/// A waiting block order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockState {
    /// Public reference.
    pub id: u64,
    /// Token bytes.
    pub token: [u8; 14],
    /// User id.
    pub user: u16,
    /// Its account and the counterparty's.
    pub accounts: [u32; 2],
    /// Instrument index.
    pub instrument: u8,
    /// True for a buy.
    pub buy: bool,
    /// Tonnes.
    pub qty: u32,
    /// Price in fen.
    pub price: u32,
    /// Deal id bytes.
    pub deal_id: [u8; 8],
}

/// One bid of an auction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidState {
    /// Public reference.
    pub id: u64,
    /// Token bytes.
    pub token: [u8; 14],
    /// User id.
    pub user: u16,
    /// Account id.
    pub account: u32,
    /// Open, entered, withdrawn, filled tonnes.
    pub tonnes: [u32; 4],
    /// Bid price and price paid, in fen.
    pub price_paid: [u32; 2],
}

/// One auction of the day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionState {
    /// Id bytes.
    pub id: [u8; 8],
    /// The seller's order reference.
    pub order_id: u64,
    /// Instrument index.
    pub instrument: u8,
    /// Seller account and the user receiving its fills.
    pub seller: u32,
    /// The seller's user id.
    pub seller_user: u16,
    /// Tonnes offered.
    pub qty: u32,
    /// Window start and end (ns since the epoch).
    pub window: [u64; 2],
    /// True for uniform pricing.
    pub uniform: bool,
    /// True for the minus-10% floor rule.
    pub floor_minus10: bool,
    /// Floor and cap in fen.
    pub floor_cap: [u32; 2],
    /// Bids, in list order.
    pub bids: Vec<BidState>,
    /// Ended (allocated or expired).
    pub ended: bool,
    /// Once ended: sold tonnes, price (0 none), turnover (decimal text),
    /// winners, bids, expired.
    pub result: Option<(u32, u32, String, u32, u32, bool)>,
}

/// The whole engine state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Instrument codes in directory order: the configuration's, then those
    /// the operator listed since (RULES §1.3).
    pub instruments: Vec<String>,
    /// Listings scheduled for the next roll: code and previous close in fen.
    #[serde(default)]
    pub pending_listings: Vec<(String, u32)>,
    /// Delistings scheduled for the next roll: instrument indexes.
    #[serde(default)]
    pub pending_delistings: Vec<u8>,
    /// Next order reference and match number.
    pub counters: [u64; 2],
    /// Trading day (days since the epoch), if started.
    pub session_day: Option<i64>,
    /// Current phase.
    pub phase: Option<Phase>,
    /// From the close until the roll.
    pub day_closed: bool,
    /// Books in directory order.
    pub books: Vec<BookState>,
    /// Accounts, when the engine runs pre-trade risk.
    pub accounts: Option<Vec<AccountState>>,
    /// Conservation totals (cash, then each instrument), decimal text.
    pub totals: Option<Vec<String>>,
    /// Waiting block orders, oldest first.
    pub blocks: Vec<BlockState>,
    /// The day's auctions in announcement order.
    pub auctions: Vec<AuctionState>,
    /// [`Engine::state_hash`] when taken.
    pub state_hash: u64,
}

fn stats_state(s: &Stats) -> StatsState {
    let fen = |p: Option<Price>| p.map_or(0, Price::fen);
    StatsState {
        open_high_low: [fen(s.open), fen(s.high), fen(s.low)],
        volume: s.volume,
        turnover: s.turnover.to_string(),
        trades: s.trades,
    }
}

fn order_state(o: &Order) -> OrderState {
    OrderState {
        id: o.id.get(),
        token: *o.token.bytes(),
        user: o.user.get(),
        account: o.account.get(),
        price: o.price.fen(),
        open: o.open.tonnes(),
        capacity: o.capacity,
    }
}

fn announced_code(state: Option<TradingState>) -> u8 {
    match state {
        None => 0,
        Some(TradingState::Trading) => 1,
        Some(TradingState::Paused) => 2,
        Some(TradingState::Halted) => 3,
    }
}

fn block_state(b: &BlockOrder) -> BlockState {
    BlockState {
        id: b.id.get(),
        token: *b.token.bytes(),
        user: b.user.get(),
        accounts: [b.account.get(), b.counterparty.get()],
        instrument: b.instrument.index() as u8,
        buy: b.side == Side::Buy,
        qty: b.qty.tonnes(),
        price: b.price.fen(),
        deal_id: b.deal_id,
    }
}

fn auction_state(a: &Auction) -> AuctionState {
    let i = &a.info;
    let bid = |b: &Bid| BidState {
        id: b.id.get(),
        token: *b.token.bytes(),
        user: b.user.get(),
        account: b.account.get(),
        tonnes: [b.qty, b.entered, b.withdrawn, b.filled].map(Qty::tonnes),
        price_paid: [b.price.fen(), b.paid.fen()],
    };
    AuctionState {
        id: *i.id.bytes(),
        order_id: i.order_id.get(),
        instrument: i.instrument.index() as u8,
        seller: i.seller.get(),
        seller_user: i.seller_user.get(),
        qty: i.qty.tonnes(),
        window: [i.start.nanos(), i.end.nanos()],
        uniform: i.pricing == Pricing::Uniform,
        floor_minus10: i.floor_rule == FloorRule::PreviousCloseMinus10,
        floor_cap: [i.floor.fen(), i.cap.fen()],
        bids: a.bids.iter().map(bid).collect(),
        ended: a.ended,
        result: a.result.map(|r| {
            let price = r.price.map_or(0, Price::fen);
            (r.sold.tonnes(), price, r.turnover.to_string(), r.winners, r.bids, r.expired)
        }),
    }
}

impl Engine {
    /// The whole state as plain data (not on the hot path: it allocates).
    pub fn snapshot(&self) -> Snapshot {
        let books = self
            .books
            .iter()
            .map(|b| {
                let side = |side| self.resting_with_accounts(b.instrument, side).map(|o| order_state(&o)).collect();
                BookState {
                    reference_lower_upper: [b.reference, b.lower, b.upper].map(Price::fen),
                    halted: b.halted,
                    delisted: b.delisted,
                    announced: announced_code(b.announced),
                    stats: [stats_state(&b.stats), stats_state(&b.block_stats), stats_state(&b.auction_stats)],
                    bids: side(Side::Buy),
                    asks: side(Side::Sell),
                }
            })
            .collect();
        let accounts = self.accounts.as_ref().map(|table| {
            table
                .rows()
                .map(|(code, cash, holdings)| AccountState {
                    code: *code,
                    cash: [cash.available, cash.locked],
                    holdings: holdings.iter().map(|h| [h.available, h.locked, h.bought_today, h.open_buy]).collect(),
                })
                .collect()
        });
        let totals = self
            .initial_totals
            .as_ref()
            .map(|(cash, holdings)| std::iter::once(cash).chain(holdings).map(ToString::to_string).collect());
        Snapshot {
            version: SNAPSHOT_VERSION,
            instruments: self.codes.iter().map(ToString::to_string).collect(),
            pending_listings: self.pending_listings.iter().map(|(c, p)| (c.to_string(), p.fen())).collect(),
            pending_delistings: self.pending_delistings.iter().map(|i| i.index() as u8).collect(),
            counters: [self.next_order_id, self.next_match_id],
            session_day: self.session_day,
            phase: self.phase,
            day_closed: self.day_closed,
            books,
            accounts,
            totals,
            blocks: self.blocks.iter().map(block_state).collect(),
            auctions: self.auctions.iter().map(auction_state).collect(),
            state_hash: self.state_hash(),
        }
    }

    /// An engine for `config` in exactly the state of `snapshot`.
    ///
    /// # Errors
    /// A [`SnapshotError`]: another version or market, a value out of
    /// range, or a state that does not hash to the recorded hash.
    pub fn restore(config: EngineConfig, snapshot: &Snapshot) -> Result<Engine, SnapshotError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(snapshot.version));
        }
        let expected: Vec<String> = config.instruments.iter().map(|i| i.code.clone()).collect();
        if !snapshot.instruments.starts_with(&expected) || snapshot.books.len() != snapshot.instruments.len() {
            return Err(SnapshotError::Instruments { expected, found: snapshot.instruments.clone() });
        }
        let mut engine = Engine::new(config).map_err(|e| SnapshotError::Config(e.to_string()))?;
        engine.restore_directory(snapshot, expected.len())?;
        if let Some(rows) = &snapshot.accounts {
            let table = accounts_table(snapshot.instruments.len(), rows)?;
            engine.attach_accounts(table).map_err(|e| SnapshotError::Config(e.to_string()))?;
        }
        [engine.next_order_id, engine.next_match_id] = snapshot.counters;
        engine.session_day = snapshot.session_day;
        engine.phase = snapshot.phase;
        engine.day_closed = snapshot.day_closed;
        engine.initial_totals = totals(snapshot.totals.as_deref(), snapshot.instruments.len())?;
        for (index, book) in snapshot.books.iter().enumerate() {
            engine.restore_book(InstrumentId::new(index as u8), book)?;
        }
        for block in &snapshot.blocks {
            engine.restore_block(block)?;
        }
        for auction in &snapshot.auctions {
            engine.restore_auction(auction)?;
        }
        let restored = engine.state_hash();
        if restored != snapshot.state_hash {
            return Err(SnapshotError::Hash { recorded: snapshot.state_hash, restored });
        }
        // A snapshot that breaks an invariant is refused, never a panic.
        engine.verify_invariants().map_err(|_| SnapshotError::Invalid("invariants (locks, conservation, indexes)"))?;
        Ok(engine)
    }

    /// The instruments listed after the configuration's (their books are
    /// filled by `restore_book`) and the scheduled listings and delistings.
    fn restore_directory(&mut self, snapshot: &Snapshot, configured: usize) -> Result<(), SnapshotError> {
        let invalid = || SnapshotError::Invalid("instrument listed since the start");
        let room = self.config.instruments_max as usize;
        if snapshot.instruments.len() + snapshot.pending_listings.len() > room {
            return Err(SnapshotError::Invalid("directory beyond market.instruments_max"));
        }
        for (code, book) in snapshot.instruments.iter().zip(&snapshot.books).skip(configured) {
            let code = StockCode::from_text(code).filter(|c| c.find_in(&self.codes).is_none()).ok_or_else(invalid)?;
            let prev_close = Price::from_fen(book.reference_lower_upper[0]).ok_or_else(invalid)?;
            self.push_book(code, prev_close);
        }
        for (code, fen) in &snapshot.pending_listings {
            let code = StockCode::from_text(code).ok_or(SnapshotError::Invalid("scheduled listing"))?;
            let price = Price::from_fen(*fen).ok_or(SnapshotError::Invalid("scheduled listing"))?;
            self.pending_listings.push((code, price));
        }
        for &index in &snapshot.pending_delistings {
            if usize::from(index) >= self.books.len() {
                return Err(SnapshotError::Invalid("scheduled delisting"));
            }
            self.pending_delistings.push(InstrumentId::new(index));
        }
        Ok(())
    }

    fn restore_book(&mut self, instrument: InstrumentId, state: &BookState) -> Result<(), SnapshotError> {
        let [reference, lower, upper] = state.reference_lower_upper.map(Price::from_fen);
        let (Some(reference), Some(lower), Some(upper)) = (reference, lower, upper) else {
            return Err(SnapshotError::Invalid("book reference or band"));
        };
        // The band brackets the reference and is no wider than the listing
        // band this market gives it: the ladders' memory is the band's width.
        let (listing_lower, listing_upper) = self.listing_band(reference);
        let widest = listing_upper.fen() - listing_lower.fen();
        if !(lower <= reference && reference <= upper && upper.fen() - lower.fen() <= widest) {
            return Err(SnapshotError::Invalid("book band"));
        }
        let book = &mut self.books[instrument.index()];
        (book.reference, book.lower, book.upper) = (reference, lower, upper);
        book.bids.reset(lower, upper);
        book.asks.reset(lower, upper);
        book.halted = state.halted;
        book.delisted = state.delisted;
        book.announced = match state.announced {
            0 => None,
            1 => Some(TradingState::Trading),
            2 => Some(TradingState::Paused),
            3 => Some(TradingState::Halted),
            _ => return Err(SnapshotError::Invalid("announced trading state")),
        };
        [book.stats, book.block_stats, book.auction_stats] =
            [stats(&state.stats[0])?, stats(&state.stats[1])?, stats(&state.stats[2])?];
        for (side, orders) in [(Side::Buy, &state.bids), (Side::Sell, &state.asks)] {
            for o in orders {
                self.restore_order(instrument, side, o)?;
            }
        }
        Ok(())
    }

    fn restore_order(&mut self, instrument: InstrumentId, side: Side, o: &OrderState) -> Result<(), SnapshotError> {
        let price = Price::from_fen(o.price).filter(|p| {
            let book = &self.books[instrument.index()];
            book.lower <= *p && *p <= book.upper
        });
        let (Some(price), false, false) = (price, o.open == 0, self.orders.slab.is_full()) else {
            return Err(SnapshotError::Invalid("resting order"));
        };
        let (id, token, user, account) =
            (OrderId::new(o.id), Token::from_bytes(o.token), UserId::new(o.user), AccountId::new(o.account));
        let order = Order::new(id, token, user, account, instrument, side, price, Qty::new(o.open), o.capacity);
        let slot = self.orders.insert(order);
        self.books[instrument.index()].side_mut(side).push_back(&mut self.orders.slab, slot);
        Ok(())
    }

    fn restore_block(&mut self, b: &BlockState) -> Result<(), SnapshotError> {
        let price = Price::from_fen(b.price).ok_or(SnapshotError::Invalid("block price"))?;
        let (user, token, account) = (UserId::new(b.user), Token::from_bytes(b.token), AccountId::new(b.accounts[0]));
        let already_waiting =
            self.blocks.find_token(user, token).is_some() || self.blocks.find_deal(account, &b.deal_id).is_some();
        if usize::from(b.instrument) >= self.books.len()
            || self.blocks.len() >= self.config.blocks_max as usize
            || already_waiting
        {
            return Err(SnapshotError::Invalid("block order"));
        }
        let order = BlockOrder {
            id: OrderId::new(b.id),
            user,
            token,
            account,
            counterparty: AccountId::new(b.accounts[1]),
            instrument: InstrumentId::new(b.instrument),
            side: if b.buy { Side::Buy } else { Side::Sell },
            qty: Qty::new(b.qty),
            price,
            deal_id: b.deal_id,
        };
        self.blocks.push(order);
        Ok(())
    }

    fn restore_auction(&mut self, a: &AuctionState) -> Result<(), SnapshotError> {
        let invalid = || SnapshotError::Invalid("auction");
        let [floor, cap] = a.floor_cap.map(Price::from_fen);
        let (Some(floor), Some(cap)) = (floor, cap) else { return Err(invalid()) };
        if usize::from(a.instrument) >= self.books.len() || a.bids.len() > self.config.auction_bids_max as usize {
            return Err(invalid());
        }
        let info = AuctionInfo {
            id: AuctionId::from_bytes(a.id),
            order_id: OrderId::new(a.order_id),
            instrument: InstrumentId::new(a.instrument),
            seller: AccountId::new(a.seller),
            seller_user: UserId::new(a.seller_user),
            qty: Qty::new(a.qty),
            start: Timestamp::from_nanos(a.window[0]),
            end: Timestamp::from_nanos(a.window[1]),
            pricing: if a.uniform { Pricing::Uniform } else { Pricing::PayAsBid },
            floor_rule: if a.floor_minus10 { FloorRule::PreviousCloseMinus10 } else { FloorRule::PreviousClose },
            floor,
            cap,
        };
        let mut bids = self.bid_pool.pop().ok_or_else(invalid)?;
        for b in &a.bids {
            bids.push(bid(b).ok_or_else(invalid)?);
        }
        let result = a.result.as_ref().map(|r| auction_result(&info, r)).transpose()?;
        let index = self.auctions.len();
        for (pos, b) in bids.iter().enumerate().filter(|(_, b)| b.live() && !a.ended) {
            let slot = u32::try_from(index * self.config.auction_bids_max as usize + pos).map_err(|_| invalid())?;
            self.bid_index.insert(token_hash(&self.orders.key, b.user, &b.token), slot);
        }
        self.auctions.push(Auction { info, bids, ended: a.ended, result });
        Ok(())
    }
}

fn bid(b: &BidState) -> Option<Bid> {
    let [open, entered, withdrawn, filled] = b.tonnes.map(Qty::new);
    Some(Bid {
        id: OrderId::new(b.id),
        user: UserId::new(b.user),
        token: Token::from_bytes(b.token),
        account: AccountId::new(b.account),
        qty: open,
        price: Price::from_fen(b.price_paid[0])?,
        entered,
        withdrawn,
        filled,
        paid: Price::from_fen(b.price_paid[1])?,
    })
}

fn auction_result(info: &AuctionInfo, r: &(u32, u32, String, u32, u32, bool)) -> Result<AuctionResult, SnapshotError> {
    let turnover = canonical(&r.2).ok_or(SnapshotError::Invalid("auction turnover"))?;
    Ok(AuctionResult {
        id: info.id,
        instrument: info.instrument,
        pricing: info.pricing,
        offered: info.qty,
        sold: Qty::new(r.0),
        price: Price::from_fen(r.1),
        turnover,
        winners: r.3,
        bids: r.4,
        expired: r.5,
    })
}

fn stats(s: &StatsState) -> Result<Stats, SnapshotError> {
    let [open, high, low] = s.open_high_low.map(Price::from_fen);
    let turnover = canonical(&s.turnover).ok_or(SnapshotError::Invalid("statistics turnover"))?;
    Ok(Stats { open, high, low, volume: s.volume, turnover, trades: s.trades })
}

fn accounts_table(instruments: usize, rows: &[AccountState]) -> Result<AccountTable, SnapshotError> {
    let rows = rows
        .iter()
        .map(|a| {
            let holdings = a
                .holdings
                .iter()
                .map(|&[available, locked, bought_today, open_buy]| Holding {
                    available,
                    locked,
                    bought_today,
                    open_buy,
                })
                .collect();
            (a.code, Cash { available: a.cash[0], locked: a.cash[1] }, holdings)
        })
        .collect();
    AccountTable::from_rows(instruments, rows).ok_or(SnapshotError::Invalid("accounts"))
}

/// A number written as the snapshot writes it (no sign, no leading
/// zeros), so that a restored snapshot writes back the same bytes.
fn canonical<T: std::str::FromStr + ToString>(text: &str) -> Option<T> {
    text.parse().ok().filter(|value: &T| value.to_string() == text)
}

fn totals(text: Option<&[String]>, instruments: usize) -> Result<Option<(i128, Vec<i128>)>, SnapshotError> {
    let Some(text) = text else { return Ok(None) };
    let values: Vec<i128> =
        text.iter().map(|t| canonical(t)).collect::<Option<_>>().ok_or(SnapshotError::Invalid("totals"))?;
    match values.split_first() {
        Some((cash, holdings)) if holdings.len() == instruments => Ok(Some((*cash, holdings.to_vec()))),
        _ => Err(SnapshotError::Invalid("totals")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, NewOrder};
    use crate::types::StockCode;

    fn trading_engine() -> Engine {
        let mut engine = Engine::with_accounts(EngineConfig::demo(), AccountTable::demo(7, 20)).unwrap();
        let cea = StockCode::from_text("CEA").unwrap();
        let mut out = Vec::new();
        for (n, (side, fen)) in [(Side::Buy, 7_400), (Side::Buy, 7_410), (Side::Sell, 7_500)].into_iter().enumerate() {
            let token = Token::from_text(&format!("o{n}")).unwrap();
            let order = NewOrder::limit(UserId::new(0), token, AccountId::new(n as u32), side, 10, cea, fen);
            engine.apply(&Command::NewOrder(order), Timestamp::from_nanos(1 + n as u64), &mut out);
        }
        engine
    }

    #[test]
    fn a_snapshot_restores_to_the_same_state_and_refuses_what_does_not_fit() {
        let engine = trading_engine();
        let snapshot = engine.snapshot();
        assert_eq!(snapshot.books[0].bids.len(), 2);
        assert_eq!(snapshot.books[0].bids[0].price, 7_410, "best first");
        let restored = Engine::restore(EngineConfig::demo(), &snapshot).unwrap();
        assert_eq!(restored.state_hash(), engine.state_hash());
        assert_eq!(restored.accounts(), engine.accounts());
        let refuse = |change: &dyn Fn(&mut Snapshot)| {
            let mut bad = snapshot.clone();
            change(&mut bad);
            Engine::restore(EngineConfig::demo(), &bad).unwrap_err()
        };
        assert_eq!(refuse(&|s| s.version = 2), SnapshotError::Version(2));
        assert!(matches!(refuse(&|s| s.instruments.pop().map_or((), drop)), SnapshotError::Instruments { .. }));
        assert!(matches!(refuse(&|s| s.books[0].bids[0].open = 9), SnapshotError::Hash { .. }));
        assert!(matches!(refuse(&|s| s.books[0].announced = 9), SnapshotError::Invalid(_)));
        assert!(matches!(refuse(&|s| s.books[0].bids[0].price = 1), SnapshotError::Invalid(_)));
        // Locks that do not match the resting orders: refused, not a panic.
        let unlocked = refuse(&|s| s.accounts.as_mut().unwrap()[0].cash = [10_000_000_000, 0]);
        assert!(matches!(unlocked, SnapshotError::Invalid(_)), "{unlocked:?}");
    }
}
