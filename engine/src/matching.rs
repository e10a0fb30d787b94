//! Continuous matching: an incoming order walks the opposite side in
//! price-time priority and trades at each resting order's price, with
//! self-trade prevention by account; then its remainder rests or is
//! cancelled according to its time in force.

use crate::book::{NIL, Order};
use crate::command::TimeInForce;
use crate::config::StpMode;
use crate::engine::Engine;
use crate::event::{CancelReason, Event, EventSink, Execution, OrderInfo, Party};
use crate::risk::Exposure;
use crate::types::{MatchId, Price, Qty, Side};

/// How an incoming order's walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Walk {
    /// Filled, or no more acceptable prices: the remainder is the caller's.
    Done,
    /// Self-trade prevention cancelled the remainder.
    Stopped,
}

fn acceptable(side: Side, limit: Price, price: Price) -> bool {
    match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

fn party(o: &Order) -> Party {
    Party { user: o.user, token: o.token, id: o.id, account: o.account }
}

impl Engine {
    /// Trades an accepted order (`info.qty` open) up to `limit`, then rests
    /// a day order's remainder or cancels an IOC/FOK remainder (`I`).
    pub(crate) fn execute<O: EventSink>(&mut self, mut info: OrderInfo, limit: Price, tif: TimeInForce, out: &mut O) {
        if tif == TimeInForce::Fok && !self.fok_fillable(&info, limit) {
            return self.cancel_incoming(&mut info, limit, CancelReason::ImmediateOrCancel, out);
        }
        let walk = self.walk(&mut info, limit, out);
        // fok_fillable counted exactly what the walk takes, in the same order.
        debug_assert!(tif != TimeInForce::Fok || info.qty.is_zero(), "a fillable FOK left {:?} open", info.qty);
        if walk == Walk::Stopped || info.qty.is_zero() {
            return;
        }
        debug_assert!(
            !self.crosses(info.instrument, info.side, limit),
            "order {:?} would rest crossing the opposite best price",
            info.id
        );
        if tif == TimeInForce::Day {
            let added = self.rest(info, limit);
            out.push(added);
        } else {
            self.cancel_incoming(&mut info, limit, CancelReason::ImmediateOrCancel, out);
        }
    }

    pub(crate) fn cancel_incoming<O: EventSink>(
        &mut self,
        info: &mut OrderInfo,
        limit: Price,
        reason: CancelReason,
        out: &mut O,
    ) {
        let decrement = std::mem::replace(&mut info.qty, Qty::ZERO);
        self.release(&Exposure::of_new(info, limit).with_qty(decrement));
        let (user, token, id) = (info.user, info.token, info.id);
        out.push(Event::cancelled(user, token, id, decrement, reason));
    }

    /// FOK: the quantity of other accounts' orders at acceptable prices,
    /// counted in priority order up to the first order of its own account.
    fn fok_fillable(&self, info: &OrderInfo, limit: Price) -> bool {
        let mut needed = u64::from(info.qty.tonnes());
        let opposite = self.books[info.instrument.index()].side(info.side.opposite());
        for (price, level) in opposite.levels_best_first() {
            if !acceptable(info.side, limit, price) {
                return false;
            }
            let mut slot = level.head();
            while slot != NIL {
                let maker = self.orders.slab.get(slot);
                if maker.account == info.account {
                    return false;
                }
                needed = needed.saturating_sub(u64::from(maker.open.tonnes()));
                if needed == 0 {
                    return true;
                }
                slot = maker.next();
            }
        }
        false
    }

    fn walk<O: EventSink>(&mut self, info: &mut OrderInfo, limit: Price, out: &mut O) -> Walk {
        let maker_side = info.side.opposite();
        while !info.qty.is_zero() {
            let book = &self.books[info.instrument.index()];
            let ladder = book.side(maker_side);
            let (Some(price), Some(level)) = (ladder.best_price(), ladder.best_level()) else {
                break;
            };
            if !acceptable(info.side, limit, price) {
                break;
            }
            let slot = level.head();
            if self.orders.slab.get(slot).account == info.account {
                if self.prevent_self_trade(info, slot, limit, out) == Walk::Stopped {
                    return Walk::Stopped;
                }
                continue;
            }
            self.fill(info, slot, limit, out);
        }
        Walk::Done
    }

    /// Applies the STP mode when the walk reaches an order of the same account.
    fn prevent_self_trade<O: EventSink>(&mut self, info: &mut OrderInfo, slot: u32, limit: Price, out: &mut O) -> Walk {
        match self.config.stp {
            StpMode::CancelNewest => {
                self.cancel_incoming(info, limit, CancelReason::SelfTrade, out);
                Walk::Stopped
            }
            StpMode::CancelOldest => {
                self.cancel_resting(slot, CancelReason::SelfTrade, out);
                Walk::Done
            }
            StpMode::CancelBoth => {
                self.cancel_resting(slot, CancelReason::SelfTrade, out);
                self.cancel_incoming(info, limit, CancelReason::SelfTrade, out);
                Walk::Stopped
            }
        }
    }

    /// One fill between the incoming order and the maker in `slot`.
    ///
    /// The caller (the walk, a pick) chose a maker of another account on
    /// the opposite side of the same book whose price is within `limit`.
    pub(crate) fn fill<O: EventSink>(&mut self, info: &mut OrderInfo, slot: u32, limit: Price, out: &mut O) {
        let maker = *self.orders.slab.get(slot);
        debug_assert!(
            maker.instrument == info.instrument && maker.side == info.side.opposite(),
            "maker {:?} is not on the opposite side of the taker's book",
            maker.id
        );
        debug_assert!(maker.account != info.account, "self-trade between {:?} and {:?}", maker.id, info.id);
        debug_assert!(
            acceptable(info.side, limit, maker.price),
            "maker price {:?} outside the taker's limit {limit:?}",
            maker.price
        );
        let qty = info.qty.min(maker.open);
        debug_assert!(
            !qty.is_zero(),
            "an empty fill: taker {:?} open {:?}, maker open {:?}",
            info.id,
            info.qty,
            maker.open
        );
        self.settle(&Exposure::of_resting(&maker), &Exposure::of_new(info, limit), qty, maker.price);
        let match_id = MatchId::new(self.next_match_id);
        self.next_match_id += 1;
        let book = &mut self.books[info.instrument.index()];
        let ladder = book.side_mut(maker.side);
        if qty == maker.open {
            ladder.unlink(&mut self.orders.slab, slot);
            self.orders.remove(slot);
        } else {
            ladder.reduce(&mut self.orders.slab, slot, qty);
        }
        book.stats.record(maker.price, qty);
        info.qty = info.qty.minus(qty);
        let taker = Party { user: info.user, token: info.token, id: info.id, account: info.account };
        out.push(Event::Executed(Execution {
            method: crate::event::Method::Listing,
            instrument: info.instrument,
            match_id,
            price: maker.price,
            qty,
            taker_side: info.side,
            maker: party(&maker),
            taker,
        }));
    }

    /// Cancels every resting order that `pred` selects, book by book in
    /// directory order, bids then asks, best level first, oldest first.
    pub(crate) fn drain_orders<O: EventSink>(
        &mut self,
        pred: impl Fn(&Order) -> bool,
        reason: CancelReason,
        out: &mut O,
    ) {
        for index in 0..self.books.len() {
            for side in [Side::Buy, Side::Sell] {
                self.drain_side(index, side, &pred, reason, out);
            }
        }
    }

    fn drain_side<O: EventSink>(
        &mut self,
        book: usize,
        side: Side,
        pred: &impl Fn(&Order) -> bool,
        reason: CancelReason,
        out: &mut O,
    ) {
        let mut level = self.books[book].side(side).best_index();
        while let Some(index) = level {
            let mut slot = self.books[book].side(side).level_at(index).head();
            while slot != NIL {
                let order = *self.orders.slab.get(slot);
                if pred(&order) {
                    self.cancel_resting(slot, reason, out);
                }
                slot = order.next();
            }
            level = self.books[book].side(side).next_worse(index);
        }
    }
}

impl crate::engine::Stats {
    /// Counts one listing fill.
    pub(crate) fn record(&mut self, price: Price, qty: Qty) {
        self.open.get_or_insert(price);
        self.high = Some(self.high.map_or(price, |h| h.max(price)));
        self.low = Some(self.low.map_or(price, |l| l.min(price)));
        self.volume += u64::from(qty.tonnes());
        self.turnover += u128::from(price.fen()) * u128::from(qty.tonnes());
        self.trades += 1;
    }
}
