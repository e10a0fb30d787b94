//! Looking at the engine without changing it: invariants, the state hash,
//! and read-only queries for snapshots, tools and tests.

use crate::book::NIL;
use crate::calendar::Phase;
use crate::engine::Engine;
use crate::event::{DailyStats, Reference};
use crate::types::{InstrumentId, OrderId, Price, Qty, Side, StockCode};
use std::hash::Hasher;

/// FNV-1a, 64 bits: a tiny, fixed, platform-independent hash so that a
/// state hash means the same thing on every machine and in every version.
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    // Integers little-endian on every platform (std's defaults are native-endian).
    fn write_u16(&mut self, n: u16) {
        self.write(&n.to_le_bytes());
    }
    fn write_u32(&mut self, n: u32) {
        self.write(&n.to_le_bytes());
    }
    fn write_u64(&mut self, n: u64) {
        self.write(&n.to_le_bytes());
    }
    fn write_u128(&mut self, n: u128) {
        self.write(&n.to_le_bytes());
    }
    fn write_i64(&mut self, n: i64) {
        self.write(&n.to_le_bytes());
    }
}

/// A resting order as the public sees it (no account, no token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestingOrder {
    /// Public reference.
    pub id: OrderId,
    /// Side.
    pub side: Side,
    /// Open quantity.
    pub qty: Qty,
    /// Price.
    pub price: Price,
}

/// One aggregated price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelView {
    /// Price.
    pub price: Price,
    /// Total open tonnes.
    pub qty: u64,
    /// Number of orders.
    pub orders: u32,
}

/// A broken engine invariant: which one and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Breach(pub String);

impl Engine {
    /// Checks every structural invariant; panics naming the first breach.
    /// Tests call it after every command.
    ///
    /// # Panics
    /// When [`Engine::verify_invariants`] finds a breach.
    pub fn check_invariants(&self) {
        if let Err(breach) = self.verify_invariants() {
            panic!("engine invariant broken: {breach}");
        }
    }

    /// Every structural invariant, without panicking (a restored snapshot
    /// is input: one that breaks them is refused, never a panic).
    ///
    /// # Errors
    /// The first [`Breach`]: a book crossed, a level total or link wrong,
    /// a zero-quantity order resting, a stale best price, an index that
    /// disagrees with the books, or an account lock or total that does not
    /// add up.
    pub fn verify_invariants(&self) -> Result<(), Breach> {
        let mut resting = 0usize;
        for book in &self.books {
            resting += book.bids.check_invariants(&self.orders.slab, book.instrument)?;
            resting += book.asks.check_invariants(&self.orders.slab, book.instrument)?;
            if let (Some(bid), Some(ask)) = (book.bids.best_price(), book.asks.best_price()) {
                ensure!(bid < ask, "book {:?} crossed: {bid} >= {ask}", book.instrument);
            }
        }
        ensure_eq!(resting, self.orders.slab.len(), "slab holds orders outside the books");
        ensure_eq!(resting, self.orders.by_token.len(), "token index size");
        for slot in self.orders.by_token.slots() {
            let o = self.orders.slab.get(slot);
            ensure_eq!(self.orders.find(o.user, o.token), Some(slot), "token index disagrees for {:?}", o.id);
        }
        ensure!(self.blocks.indexes_agree(), "the waiting block orders' indexes disagree with their list");
        self.check_auction_invariants()?;
        self.check_account_invariants()
    }

    /// Every resting order of one side in priority order, owners included.
    pub(crate) fn resting_with_accounts(
        &self,
        instrument: InstrumentId,
        side: Side,
    ) -> impl Iterator<Item = crate::book::Order> + '_ {
        let ladder = self.books[instrument.index()].side(side);
        ladder.levels_best_first().flat_map(move |(_, level)| {
            let mut slot = level.head();
            std::iter::from_fn(move || {
                if slot == NIL {
                    return None;
                }
                let o = *self.orders.slab.get(slot);
                slot = o.next();
                Some(o)
            })
        })
    }

    /// A hash of the whole observable state: references, bands, halts,
    /// statistics, counters, the day, and every resting order in priority
    /// order with its owner. Equal hashes after a replay mean equal engines.
    pub fn state_hash(&self) -> u64 {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        h.write_u64(self.next_order_id);
        h.write_u64(self.next_match_id);
        h.write_i64(self.session_day.unwrap_or(i64::MIN));
        h.write_u8(self.phase.map_or(255, |p| p as u8));
        h.write_u8(u8::from(self.day_closed));
        for book in &self.books {
            for fen in [book.reference, book.lower, book.upper].map(Price::fen) {
                h.write_u32(fen);
            }
            h.write_u8(u8::from(book.halted) | u8::from(book.delisted) << 1);
            let s = &book.stats;
            for price in [s.open, s.high, s.low] {
                h.write_u32(price.map_or(0, Price::fen));
            }
            for s in [s, &book.block_stats, &book.auction_stats] {
                h.write_u64(s.volume);
                h.write_u128(s.turnover);
                h.write_u64(s.trades);
            }
            for side in [Side::Buy, Side::Sell] {
                self.hash_side(&mut h, book.instrument, side);
            }
        }
        for (code, price) in &self.pending_listings {
            h.write(code.bytes());
            h.write_u32(price.fen());
        }
        for i in &self.pending_delistings {
            h.write_u8(i.index() as u8);
        }
        for b in self.blocks.iter() {
            h.write_u64(b.id.get());
            h.write(b.token.bytes());
            h.write_u16(b.user.get());
            h.write_u32(b.account.get());
            h.write_u32(b.counterparty.get());
            h.write_u32(b.price.fen());
            h.write_u32(b.qty.tonnes());
            h.write(&b.deal_id);
        }
        self.hash_auctions(&mut h);
        h.finish()
    }

    fn hash_side(&self, h: &mut Fnv, instrument: InstrumentId, side: Side) {
        let ladder = self.books[instrument.index()].side(side);
        for (price, level) in ladder.levels_best_first() {
            h.write_u32(price.fen());
            let mut slot = level.head();
            while slot != NIL {
                let o = self.orders.slab.get(slot);
                h.write_u64(o.id.get());
                h.write(o.token.bytes());
                h.write_u16(o.user.get());
                h.write_u32(o.account.get());
                h.write_u32(o.open.tonnes());
                slot = o.next();
            }
        }
    }

    /// The instrument codes in directory order.
    pub fn instruments(&self) -> &[StockCode] {
        &self.codes
    }

    /// The current trading day as `YYYYMMDD` (`None` before the first command).
    pub fn session_date(&self) -> Option<u32> {
        self.session_day.map(crate::calendar::yyyymmdd_from_days)
    }

    /// The current trading day as a day number (days since 1970-01-01):
    /// what a caller compares after every command to see whether the day
    /// changed, without [`Engine::session_date`]'s calendar arithmetic.
    pub fn session_day(&self) -> Option<i64> {
        self.session_day
    }

    /// The trading day (`YYYYMMDD`) the next command at `now` belongs to:
    /// the current one, or before the first command the one it will start.
    pub fn upcoming_session_date(&self, now: crate::types::Timestamp) -> u32 {
        let day = self.session_day.unwrap_or_else(|| self.calendar.next_session_day(now));
        crate::calendar::yyyymmdd_from_days(day)
    }

    /// True when a session boundary or an auction's window end has passed
    /// by `now` that no command has applied yet: the sequencer then
    /// journals a [`crate::Command::Clock`], so that the boundary (or the
    /// allocation) takes effect at a fixed point of the stream.
    pub fn clock_due(&self, now: crate::types::Timestamp) -> bool {
        self.session_day.is_some_and(|day| self.pending_phase(day, now).is_some()) || self.auction_due(now)
    }

    /// True in calendar mode once `now` has reached the current trading
    /// day's `roll_at`: the sequencer then journals a [`crate::Command::Roll`]
    /// (and again after it while the next day's roll has passed too: a
    /// server that was down rolls every missed trading day in order).
    pub fn roll_due(&self, now: crate::types::Timestamp) -> bool {
        self.session_day.and_then(|day| self.calendar.roll_instant(day)).is_some_and(|at| now >= at)
    }

    /// The current phase of the day (`None` before the first command).
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// An instrument's reference and listing band.
    pub fn reference(&self, instrument: InstrumentId) -> Reference {
        let b = &self.books[instrument.index()];
        Reference {
            instrument,
            stock: self.codes[instrument.index()],
            reference: b.reference,
            lower: b.lower,
            upper: b.upper,
        }
    }

    /// An instrument's statistics so far today for one method.
    pub fn daily_stats(&self, instrument: InstrumentId, method: crate::event::Method) -> DailyStats {
        let b = &self.books[instrument.index()];
        let stats = match method {
            crate::event::Method::Listing => &b.stats,
            crate::event::Method::Block => &b.block_stats,
            crate::event::Method::Auction => &b.auction_stats,
        };
        crate::day::daily_stats(method, instrument, b.reference, stats)
    }

    /// Number of block orders waiting for their counterparty.
    pub fn waiting_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// True when the operator halted the instrument.
    pub fn is_halted(&self, instrument: InstrumentId) -> bool {
        self.books[instrument.index()].halted
    }

    /// The best `n` levels of one side, best first.
    pub fn depth(&self, instrument: InstrumentId, side: Side, n: usize) -> impl Iterator<Item = LevelView> + '_ {
        let ladder = self.books[instrument.index()].side(side);
        ladder.levels_best_first().take(n).map(|(price, l)| LevelView { price, qty: l.qty, orders: l.count })
    }

    /// Every resting order of one side in priority order (for snapshots).
    pub fn resting(&self, instrument: InstrumentId, side: Side) -> impl Iterator<Item = RestingOrder> + '_ {
        self.resting_with_accounts(instrument, side).map(|o| RestingOrder {
            id: o.id,
            side: o.side,
            qty: o.open,
            price: o.price,
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &crate::config::EngineConfig {
        &self.config
    }

    /// The accounts, when the engine runs with pre-trade risk.
    pub fn accounts(&self) -> Option<&crate::accounts::AccountTable> {
        self.accounts.as_ref()
    }

    /// Number of resting orders across all books.
    pub fn resting_count(&self) -> usize {
        self.orders.slab.len()
    }
}

impl std::fmt::Debug for Engine {
    /// A summary, not the whole state: the books can hold millions of orders.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("instruments", &self.codes)
            .field("session_date", &self.session_date())
            .field("phase", &self.phase)
            .field("resting", &self.resting_count())
            .field("accounts", &self.accounts.as_ref().map(crate::accounts::AccountTable::len))
            .field("state_hash", &format_args!("{:#018x}", self.state_hash()))
            .finish()
    }
}
