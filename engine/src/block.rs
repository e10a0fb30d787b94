//! Block agreement trades (大宗协议) and pick orders (点选).
//!
//! A block order names its own account, the counterparty's account and a
//! deal id. It waits silently (it is never on the public book) until the
//! counterparty's mirror order arrives: same stock, price, quantity and
//! deal id, opposite side, each naming the other. When several could match,
//! the earliest live one does. Unmatched block orders expire at the close.
//!
//! A pick order names one resting listing order by its public reference and
//! trades against it at its price when it sits within the opposite side's
//! best five levels, ignoring time priority inside the level.

use crate::command::{NewBlock, Pick, TIF_DAY, TIF_IOC, WIRE_PER_FEN};
use crate::engine::Engine;
use crate::event::{CancelReason, Event, EventSink, Execution, Method, OrderInfo, Party, RejectReason};
use crate::risk::Exposure;
use crate::types::{AccountId, InstrumentId, MatchId, OrderId, Price, Qty, Side, Token, UserId};

/// An unmatched block order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockOrder {
    /// Public reference (from the daily order counter).
    pub id: OrderId,
    /// Whose.
    pub user: UserId,
    /// Its token.
    pub token: Token,
    /// Its account.
    pub account: AccountId,
    /// The account it agreed to trade with.
    pub counterparty: AccountId,
    /// Book.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Tonnes.
    pub qty: Qty,
    /// Agreed price.
    pub price: Price,
    /// Agreed deal id.
    pub deal_id: [u8; 8],
}

impl BlockOrder {
    fn exposure(&self) -> Exposure {
        let (account, instrument, side, qty, lock_price) =
            (self.account, self.instrument, self.side, self.qty, self.price);
        Exposure { account, instrument, side, qty, lock_price }
    }

    fn party(&self) -> Party {
        Party { user: self.user, token: self.token, id: self.id, account: self.account }
    }

    /// True when `other` is this order's mirror.
    fn mirrors(&self, other: &BlockOrder) -> bool {
        self.instrument == other.instrument
            && self.price == other.price
            && self.qty == other.qty
            && self.deal_id == other.deal_id
            && self.side == other.side.opposite()
            && self.account == other.counterparty
            && self.counterparty == other.account
    }
}

impl Engine {
    /// The slot of a live block order named by token.
    pub(crate) fn find_block(&self, user: UserId, token: Token) -> Option<u32> {
        self.blocks.find_token(user, token)
    }

    /// A hint for a caller that knows a command a few places ahead (the
    /// sequencer in its batch): starts loading the part of the order index
    /// where `apply` will check that the command's new token is not live,
    /// a cache miss on a busy book otherwise. Changes nothing.
    pub fn prefetch_token(&self, user: UserId, token: &Token) {
        self.orders.prefetch(user, token);
    }

    /// True when the token names any live order: listing, block or auction bid.
    pub(crate) fn token_live(&self, user: UserId, token: Token) -> bool {
        self.orders.find(user, token).is_some()
            || self.find_block(user, token).is_some()
            || self.find_bid(user, token).is_some()
    }

    /// Enters a block order: validate, accept, lock, then match or wait.
    pub(crate) fn new_block<O: EventSink>(&mut self, cmd: &NewBlock, out: &mut O) {
        if self.token_live(cmd.user, cmd.token) {
            return; // A live token resent: ignored without reply.
        }
        let (instrument, price, counterparty) = match self.validate_block(cmd) {
            Ok(valid) => valid,
            Err(reason) => {
                return out.push(Event::rejected(cmd.user, cmd.token, reason));
            }
        };
        let id = self.take_order_id();
        let (user, token, account, side, qty) = (cmd.user, cmd.token, cmd.account, cmd.side, cmd.qty);
        let info = OrderInfo {
            method: Method::Block,
            user,
            token,
            id,
            account,
            instrument,
            side,
            qty,
            wire_price: cmd.price,
            tif: TIF_DAY[1],
            display: b'Y',
            capacity: b'A',
            min_qty: 0,
        };
        out.push(Event::Accepted(info));
        let order =
            BlockOrder { id, user, token, account, counterparty, instrument, side, qty, price, deal_id: cmd.deal_id };
        debug_assert!(counterparty != account && qty >= self.config.block_qty_min, "block {id:?} validated");
        self.lock(&order.exposure());
        // At most one order of the counterparty's account waits for this deal.
        let mirror = self.blocks.find_deal(order.counterparty, &order.deal_id);
        match mirror.filter(|&slot| self.blocks.get(slot).mirrors(&order)) {
            Some(slot) => self.trade_blocks(slot, &order, out),
            None => _ = self.blocks.push(order),
        }
    }

    /// Fields in wire order, then the deal, session, halt, block band, risk, capacity.
    fn validate_block(&self, cmd: &NewBlock) -> Result<(InstrumentId, Price, AccountId), RejectReason> {
        if !self.account_known(cmd.account) {
            return Err(RejectReason::NotEntitled);
        }
        if cmd.qty < self.config.block_qty_min {
            return Err(RejectReason::InvalidQty);
        }
        let instrument = self.tradable(cmd.stock).ok_or(RejectReason::UnknownStock)?;
        let price = crate::validate::check_price(cmd.price, false)?.ok_or(RejectReason::InvalidPrice)?;
        let duplicate = self.blocks.find_deal(cmd.account, &cmd.deal_id).is_some();
        // Unknown to the directory, unknown to the engine, or the own account.
        let counterparty = cmd.counterparty.filter(|&c| c != cmd.account && self.account_known(c));
        let Some(counterparty) = counterparty.filter(|_| !duplicate) else {
            return Err(RejectReason::InvalidField);
        };
        let book = &self.books[instrument.index()];
        if !self.phase.is_some_and(|p| p.block_open()) || self.day_closed {
            return Err(RejectReason::Closed);
        }
        if book.halted {
            return Err(RejectReason::Halted);
        }
        let (lower, upper) = crate::validate::band(book.reference, self.config.block_band_pct);
        if price < lower || price > upper {
            return Err(RejectReason::OutsideBand);
        }
        let (account, side, qty) = (cmd.account, cmd.side, cmd.qty);
        self.check_risk(&Exposure { account, instrument, side, qty, lock_price: price })?;
        if self.blocks.len() >= self.config.blocks_max as usize {
            return Err(RejectReason::CapacityFull);
        }
        Ok((instrument, price, counterparty))
    }

    /// The block trade between the waiting order in `slot` and its mirror.
    fn trade_blocks<O: EventSink>(&mut self, slot: u32, taker: &BlockOrder, out: &mut O) {
        let maker = self.blocks.remove(slot);
        // Opposite sides, each naming the other's account, same deal, price
        // and quantity: the one rule of a block trade, so checked always.
        assert!(maker.mirrors(taker), "block {:?} traded with {:?}, not its mirror", maker.id, taker.id);
        assert!(maker.account != taker.account, "block {:?} traded with its own account", maker.id);
        let match_id = MatchId::new(self.next_match_id);
        self.next_match_id += 1;
        self.settle(&maker.exposure(), &taker.exposure(), taker.qty, taker.price);
        self.books[taker.instrument.index()].block_stats.record(taker.price, taker.qty);
        out.push(Event::Executed(Execution {
            method: Method::Block,
            instrument: taker.instrument,
            match_id,
            price: taker.price,
            qty: taker.qty,
            taker_side: taker.side,
            maker: maker.party(),
            taker: taker.party(),
        }));
    }

    /// Cancels the waiting block order in `slot` in full.
    pub(crate) fn cancel_block<O: EventSink>(&mut self, slot: u32, reason: CancelReason, out: &mut O) {
        let order = self.blocks.remove(slot);
        self.release(&order.exposure());
        let (user, token, id, decrement) = (order.user, order.token, order.id, order.qty);
        out.push(Event::cancelled(user, token, id, decrement, reason));
    }

    /// Cancels every waiting block order that `pred` selects, oldest first.
    pub(crate) fn drain_blocks<O: EventSink>(
        &mut self,
        pred: impl Fn(&BlockOrder) -> bool,
        reason: CancelReason,
        out: &mut O,
    ) {
        let mut cursor = self.blocks.oldest();
        while let Some(slot) = cursor {
            cursor = self.blocks.newer(slot);
            if pred(self.blocks.get(slot)) {
                self.cancel_block(slot, reason, out);
            }
        }
    }

    /// A pick order: validate, accept, trade against the target, cancel the rest.
    pub(crate) fn pick<O: EventSink>(&mut self, cmd: &Pick, out: &mut O) {
        if self.token_live(cmd.user, cmd.token) {
            return;
        }
        let (instrument, slot, price) = match self.validate_pick(cmd) {
            Ok(valid) => valid,
            Err(reason) => {
                return out.push(Event::rejected(cmd.user, cmd.token, reason));
            }
        };
        let mut info = OrderInfo {
            method: Method::Listing,
            user: cmd.user,
            token: cmd.token,
            id: self.take_order_id(),
            account: cmd.account,
            instrument,
            side: cmd.side,
            qty: cmd.qty,
            wire_price: price.fen() * WIRE_PER_FEN,
            tif: TIF_IOC,
            display: b'Y',
            capacity: b'A',
            min_qty: 0,
        };
        out.push(Event::Accepted(info));
        self.lock(&Exposure::of_new(&info, price));
        let open = info.qty;
        self.fill(&mut info, slot, price, out);
        debug_assert!(info.qty < open, "pick {:?} did not trade", info.id);
        if !info.qty.is_zero() {
            self.cancel_incoming(&mut info, price, CancelReason::ImmediateOrCancel, out);
        }
    }

    /// Quantity, stock, session, halt, the target (`G`), then risk at the target's price.
    fn validate_pick(&self, cmd: &Pick) -> Result<(InstrumentId, u32, Price), RejectReason> {
        if !self.account_known(cmd.account) {
            return Err(RejectReason::NotEntitled);
        }
        if cmd.qty.is_zero() || cmd.qty > self.config.listing_qty_max {
            return Err(RejectReason::InvalidQty);
        }
        let instrument = self.tradable(cmd.stock).ok_or(RejectReason::UnknownStock)?;
        if !self.phase.is_some_and(|p| p.listing_open()) || self.day_closed {
            return Err(RejectReason::Closed);
        }
        if self.books[instrument.index()].halted {
            return Err(RejectReason::Halted);
        }
        let ladder = self.books[instrument.index()].side(cmd.side.opposite());
        let slot = ladder
            .find_in_best(&self.orders.slab, self.config.pick_levels as usize, cmd.target)
            .ok_or(RejectReason::NotPickable)?;
        let target = *self.orders.slab.get(slot);
        if target.account == cmd.account {
            return Err(RejectReason::NotPickable);
        }
        let (account, side, qty) = (cmd.account, cmd.side, cmd.qty);
        self.check_risk(&Exposure { account, instrument, side, qty, lock_price: target.price })?;
        Ok((instrument, slot, target.price))
    }

    /// Every waiting block order's exposure (for the account invariants).
    pub(crate) fn block_exposures(&self) -> impl Iterator<Item = Exposure> + '_ {
        self.blocks.iter().map(BlockOrder::exposure)
    }
}
