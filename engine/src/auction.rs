//! One-way bidding auctions (单向竞价, RULES §2.4).
//!
//! The operator announces an auction: one seller offers at least 100,000 t
//! of one instrument, locked from its sellable holding at once. During the
//! window `[start, end)` buyers send sealed bids (never on the public book)
//! priced on the tick within `[floor, cap]`, each locking `price × qty` of
//! cash like a listing buy. A bid may be cancelled or reduced (the standard
//! Cancel: the quantity it keeps; a reduce keeps its time priority) until
//! the window ends.
//!
//! The end is driven by time: the first command whose timestamp is at or
//! after `end` allocates the auction before that command is handled (see
//! `Engine::advance_clock`), and [`Engine::clock_due`] tells the sequencer
//! to journal a clock command then, so the allocation sits at the same
//! point of the command stream in every replay.
//!
//! Allocation: live bids ranked by price (highest first), then time
//! (earliest first); they fill until the offered quantity is used up, the
//! marginal bid partly. Uniform pricing: every winner pays the lowest
//! winning price; pay-as-bid: each pays its own. What did not win is
//! cancelled (`T`: the window was the bid's time in force) and its cash
//! released; the unsold quantity returns to the seller's sellable holding.
//! An auction still open at the close expires the same way with no fill.
//!
//! Memory: each auction's bid list is taken from a pool reserved at start
//! (`auctions_max` lists of `auction_bids_max` bids) and returned at the
//! roll. A cancelled bid stays in its list with no quantity (so positions,
//! and the token index onto them, stay stable), so `auction_bids_max`
//! counts every bid entered into one auction, cancelled ones included.

use crate::command::{AnnounceAuction, AuctionBid, Cancel, Pricing, TIF_DAY};
use crate::engine::{Engine, token_hash};
use crate::event::{
    AuctionInfo, AuctionRefusal, AuctionResult, CancelReason, Event, EventSink, Execution, Method, OrderInfo, Party,
    RejectReason,
};
use crate::risk::Exposure;
use crate::types::{AccountId, AuctionId, InstrumentId, MatchId, OrderId, Price, Qty, Side, Timestamp, Token, UserId};
use std::cmp::Reverse;

/// One bid; `qty` zero once cancelled in full (the entry stays, see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bid {
    /// Public reference (daily order counter): also its time priority.
    pub id: OrderId,
    /// Whose.
    pub user: UserId,
    /// Its token.
    pub token: Token,
    /// The buying account.
    pub account: AccountId,
    /// Open tonnes (zero: cancelled, or the auction has ended).
    pub qty: Qty,
    /// Bid price: also the price its cash is locked at.
    pub price: Price,
    /// Tonnes as entered (kept for the ranked list after the end).
    pub entered: Qty,
    /// Tonnes the bidder (or the kill switch) cancelled before the end.
    pub withdrawn: Qty,
    /// Tonnes allocated at the end.
    pub filled: Qty,
    /// What a filled bid pays per tonne (its own or the uniform price).
    pub paid: Price,
}

impl Bid {
    /// What the bid holds locked.
    pub fn exposure(&self, instrument: InstrumentId) -> Exposure {
        Exposure { account: self.account, instrument, side: Side::Buy, qty: self.qty, lock_price: self.price }
    }

    fn party(&self) -> Party {
        Party { user: self.user, token: self.token, id: self.id, account: self.account }
    }

    /// What the operator's ranked list shows of this bid.
    fn report(&self) -> RankedBid {
        RankedBid {
            id: self.id,
            user: self.user,
            account: self.account,
            price: self.price,
            entered: self.entered,
            withdrawn: self.withdrawn,
            filled: self.filled,
            paid: (!self.filled.is_zero()).then_some(self.paid),
        }
    }

    /// True unless cancelled in full.
    pub fn live(&self) -> bool {
        !self.qty.is_zero()
    }
}

/// An announced auction and its bids.
#[derive(Debug)]
pub(crate) struct Auction {
    /// What was announced.
    pub info: AuctionInfo,
    /// Bids in arrival order while open; ranked by price then time, none
    /// live, once ended (kept until the roll for the operator's view).
    pub bids: Vec<Bid>,
    /// True once allocated or expired.
    pub ended: bool,
    /// The outcome, once ended.
    pub result: Option<AuctionResult>,
}

/// One bid in an ended auction's ranked list (the operator's `auction show`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankedBid {
    /// The bid's order reference (its time priority).
    pub id: OrderId,
    /// Who sent it.
    pub user: UserId,
    /// The buying account.
    pub account: AccountId,
    /// Bid price.
    pub price: Price,
    /// Tonnes as entered.
    pub entered: Qty,
    /// Tonnes cancelled before the end.
    pub withdrawn: Qty,
    /// Tonnes allocated.
    pub filled: Qty,
    /// The price paid per tonne, when anything was allocated.
    pub paid: Option<Price>,
}

impl Auction {
    /// What the seller holds locked while the auction is open.
    pub fn seller_exposure(&self) -> Exposure {
        let info = &self.info;
        let (account, instrument, qty, lock_price) = (info.seller, info.instrument, info.qty, info.floor);
        Exposure { account, instrument, side: Side::Sell, qty, lock_price }
    }

    fn seller_party(&self) -> Party {
        Party {
            user: self.info.seller_user,
            token: self.info.id.token(),
            id: self.info.order_id,
            account: self.info.seller,
        }
    }

    /// True when bids are taken at `now`.
    fn open_at(&self, now: Timestamp) -> bool {
        !self.ended && self.info.start <= now && now < self.info.end
    }
}

/// Where a bid lives: auction index and position in its list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BidAt {
    /// Index in `Engine::auctions`.
    pub auction: usize,
    /// Position in that auction's bid list.
    pub pos: usize,
}

/// What an allocation works out before anything moves.
struct Outcome {
    sold: Qty,
    clearing: Option<Price>,
    turnover: u128,
    winners: u32,
    bids: u32,
}

impl Engine {
    /// The token-index slot of a bid position.
    fn bid_slot(&self, at: BidAt) -> u32 {
        let slot = at.auction * self.config.auction_bids_max as usize + at.pos;
        u32::try_from(slot).expect("auctions_max × auction_bids_max fits u32")
    }

    /// The live bid named by token.
    pub(crate) fn find_bid(&self, user: UserId, token: Token) -> Option<BidAt> {
        if self.bid_index.len() == 0 {
            return None; // the usual case: every order asks
        }
        let per = self.config.auction_bids_max as usize;
        let is = |slot: u32| {
            let b = &self.auctions[slot as usize / per].bids[slot as usize % per];
            b.user == user && b.token == token
        };
        let slot = self.bid_index.find(token_hash(&self.orders.key, user, &token), is)? as usize;
        Some(BidAt { auction: slot / per, pos: slot % per })
    }

    /// An operator's announcement: validate, lock the seller's quantity, open.
    pub(crate) fn announce_auction<O: EventSink>(&mut self, cmd: &AnnounceAuction, now: Timestamp, out: &mut O) {
        let instrument = match self.validate_announcement(cmd, now) {
            Ok(instrument) => instrument,
            Err(reason) => return out.push(Event::AuctionRefused { id: cmd.id, reason }),
        };
        let book = &self.books[instrument.index()];
        // RULES §2.4: floor and cap are their own settings, not the listing band.
        let (below, _) = crate::validate::band(book.reference, self.config.auction_floor_pct);
        let (_, cap) = crate::validate::band(book.reference, self.config.auction_cap_pct);
        let floor = match cmd.floor {
            crate::command::FloorRule::PreviousClose => book.reference,
            crate::command::FloorRule::PreviousCloseMinus10 => below,
        };
        let info = AuctionInfo {
            id: cmd.id,
            order_id: self.take_order_id(),
            instrument,
            seller: cmd.seller,
            seller_user: cmd.seller_user,
            qty: cmd.qty,
            start: cmd.start,
            end: cmd.end,
            pricing: cmd.pricing,
            floor_rule: cmd.floor,
            floor,
            cap,
        };
        let bids = self.bid_pool.pop().expect("one bid list per auction of the day");
        let auction = Auction { info, bids, ended: false, result: None };
        self.lock(&auction.seller_exposure());
        self.auctions.push(auction);
        out.push(Event::AuctionAnnounced(info));
    }

    /// The refusals in a fixed order: closed day, duplicate id, stock,
    /// account, quantity, window, holdings, the day's capacity.
    fn validate_announcement(&self, cmd: &AnnounceAuction, now: Timestamp) -> Result<InstrumentId, AuctionRefusal> {
        if self.day_closed {
            return Err(AuctionRefusal::Closed);
        }
        if self.auctions.iter().any(|a| a.info.id == cmd.id) {
            return Err(AuctionRefusal::DuplicateId);
        }
        let instrument = self.tradable(cmd.stock).ok_or(AuctionRefusal::UnknownStock)?;
        if !self.account_known(cmd.seller) {
            return Err(AuctionRefusal::UnknownAccount);
        }
        if cmd.qty < self.config.auction_qty_min {
            return Err(AuctionRefusal::InvalidQty);
        }
        if cmd.end <= cmd.start || cmd.end <= now {
            return Err(AuctionRefusal::BadWindow);
        }
        let (account, qty, lock_price) = (cmd.seller, cmd.qty, self.books[instrument.index()].reference);
        if self.check_risk(&Exposure { account, instrument, side: Side::Sell, qty, lock_price }).is_err() {
            return Err(AuctionRefusal::Holdings);
        }
        if self.auctions.len() >= self.config.auctions_max as usize {
            return Err(AuctionRefusal::CapacityFull);
        }
        Ok(instrument)
    }

    /// A bid: validate, accept, lock its cash, queue it in arrival order.
    pub(crate) fn auction_bid<O: EventSink>(&mut self, cmd: &AuctionBid, now: Timestamp, out: &mut O) {
        if self.token_live(cmd.user, cmd.token) {
            return; // A live token resent: ignored without reply, as OUCH does.
        }
        let (index, price) = match self.validate_bid(cmd, now) {
            Ok(valid) => valid,
            Err(reason) => return out.push(Event::rejected(cmd.user, cmd.token, reason)),
        };
        let instrument = self.auctions[index].info.instrument;
        let id = self.take_order_id();
        let (user, token, account, qty) = (cmd.user, cmd.token, cmd.account, cmd.qty);
        let none = Qty::ZERO;
        let bid =
            Bid { id, user, token, account, qty, price, entered: qty, withdrawn: none, filled: none, paid: price };
        out.push(Event::Accepted(OrderInfo {
            method: Method::Auction,
            user: cmd.user,
            token: cmd.token,
            id,
            account: cmd.account,
            instrument,
            side: Side::Buy,
            qty: cmd.qty,
            wire_price: cmd.price,
            tif: TIF_DAY[1],
            display: b'Y',
            capacity: b'A',
            min_qty: 0,
        }));
        self.lock(&bid.exposure(instrument));
        let at = BidAt { auction: index, pos: self.auctions[index].bids.len() };
        self.auctions[index].bids.push(bid);
        self.bid_index.insert(token_hash(&self.orders.key, bid.user, &bid.token), self.bid_slot(at));
    }

    /// Fields in wire order (shares `Z`, stock `S`, price `X`), the
    /// auction (`O`: none open under that id for that stock now, or the
    /// seller's own account), halt `H`, floor and cap `K`, holding cap `m`,
    /// funds `n`, capacity `F`.
    fn validate_bid(&self, cmd: &AuctionBid, now: Timestamp) -> Result<(usize, Price), RejectReason> {
        if !self.account_known(cmd.account) {
            return Err(RejectReason::NotEntitled);
        }
        if cmd.qty.is_zero() || cmd.qty < self.config.auction_bid_qty_min {
            return Err(RejectReason::InvalidQty);
        }
        let instrument = self.tradable(cmd.stock).ok_or(RejectReason::UnknownStock)?;
        let price = crate::validate::check_price(cmd.price, false)?.ok_or(RejectReason::InvalidPrice)?;
        let index = self
            .auctions
            .iter()
            .position(|a| a.info.id == cmd.auction && a.info.instrument == instrument && a.open_at(now))
            .filter(|_| !self.day_closed)
            .ok_or(RejectReason::InvalidField)?;
        let auction = &self.auctions[index];
        if auction.info.seller == cmd.account {
            return Err(RejectReason::InvalidField); // No wash trades: the seller cannot buy its own offer.
        }
        if self.books[instrument.index()].halted {
            return Err(RejectReason::Halted);
        }
        if price < auction.info.floor || price > auction.info.cap {
            return Err(RejectReason::OutsideBand);
        }
        let (account, qty) = (cmd.account, cmd.qty);
        self.check_risk(&Exposure { account, instrument, side: Side::Buy, qty, lock_price: price })?;
        if auction.bids.len() >= self.config.auction_bids_max as usize {
            return Err(RejectReason::CapacityFull);
        }
        Ok((index, price))
    }

    /// A Cancel naming a live bid: 0 cancels it, a smaller quantity reduces
    /// it (keeping its time priority) and releases the difference; anything
    /// else is a Cancel Reject.
    pub(crate) fn cancel_bid<O: EventSink>(&mut self, at: BidAt, cmd: &Cancel, out: &mut O) {
        let bid = self.auctions[at.auction].bids[at.pos];
        if !cmd.qty.is_zero() && cmd.qty >= bid.qty {
            return out.push(Event::CancelRejected { user: cmd.user, token: cmd.token });
        }
        self.take_from_bid(at, bid.qty.minus(cmd.qty), CancelReason::User, out);
    }

    /// Cancels `decrement` tonnes of a live bid, releasing their cash; a
    /// bid left with nothing leaves the token index.
    fn take_from_bid<O: EventSink>(&mut self, at: BidAt, decrement: Qty, reason: CancelReason, out: &mut O) {
        let instrument = self.auctions[at.auction].info.instrument;
        let bid = self.auctions[at.auction].bids[at.pos];
        debug_assert!(!self.auctions[at.auction].ended, "bid {:?} cancelled after its auction ended", bid.id);
        debug_assert!(!decrement.is_zero() && decrement <= bid.qty, "taking {decrement:?} of bid {:?}", bid.id);
        self.release(&bid.exposure(instrument).with_qty(decrement));
        let left = bid.qty.minus(decrement);
        let stored = &mut self.auctions[at.auction].bids[at.pos];
        stored.qty = left;
        stored.withdrawn = Qty::new(bid.withdrawn.tonnes() + decrement.tonnes());
        if left.is_zero() {
            let slot = self.bid_slot(at);
            self.bid_index.remove(token_hash(&self.orders.key, bid.user, &bid.token), slot);
        }
        out.push(Event::cancelled(bid.user, bid.token, bid.id, decrement, reason));
    }

    /// Cancels every live bid that `pred` selects (kill switch, cancel on disconnect).
    pub(crate) fn drain_bids<O: EventSink>(&mut self, pred: impl Fn(&Bid) -> bool, reason: CancelReason, out: &mut O) {
        for auction in 0..self.auctions.len() {
            for pos in 0..self.auctions[auction].bids.len() {
                let bid = self.auctions[auction].bids[pos];
                if bid.live() && pred(&bid) {
                    self.take_from_bid(BidAt { auction, pos }, bid.qty, reason, out);
                }
            }
        }
    }

    /// True when an open auction's window has ended by `now`.
    pub(crate) fn auction_due(&self, now: Timestamp) -> bool {
        self.auctions.iter().any(|a| !a.ended && a.info.end <= now)
    }

    /// Allocates, in announcement order, every open auction whose window
    /// ended at or before `horizon`.
    pub(crate) fn end_auctions<O: EventSink>(&mut self, horizon: Timestamp, out: &mut O) {
        for index in 0..self.auctions.len() {
            let auction = &self.auctions[index];
            if !auction.ended && auction.info.end <= horizon {
                self.allocate(index, out);
            }
        }
    }

    /// The close: every auction still open expires, its bids cancelled
    /// (`T`) and the seller's quantity released.
    pub(crate) fn expire_auctions<O: EventSink>(&mut self, out: &mut O) {
        for index in 0..self.auctions.len() {
            if !self.auctions[index].ended {
                let bids = self.unindex_bids(index);
                let outcome = Outcome { sold: Qty::ZERO, clearing: None, turnover: 0, winners: 0, bids };
                self.emit_result(index, &outcome, true, out);
                self.finish(index, self.auctions[index].info.qty.tonnes(), out);
            }
        }
    }

    /// Removes an auction's live bids from the token index (before its
    /// list is reordered); returns how many there are.
    fn unindex_bids(&mut self, index: usize) -> u32 {
        let mut live = 0;
        for pos in 0..self.auctions[index].bids.len() {
            let bid = self.auctions[index].bids[pos];
            if bid.live() {
                let slot = self.bid_slot(BidAt { auction: index, pos });
                self.bid_index.remove(token_hash(&self.orders.key, bid.user, &bid.token), slot);
                live += 1;
            }
        }
        live
    }

    /// Ranks the bids, reports the result, settles each fill, cancels the rest.
    fn allocate<O: EventSink>(&mut self, index: usize, out: &mut O) {
        let live = self.unindex_bids(index);
        let auction = &mut self.auctions[index];
        auction.bids.sort_unstable_by_key(|b| (Reverse(b.price), b.id));
        let outcome = rank(&auction.bids, auction.info.qty, auction.info.pricing, live);
        let info = &auction.info;
        assert!(outcome.sold <= info.qty, "auction {:?} sold more than offered", info.id);
        assert!(
            outcome.clearing.is_none_or(|p| info.floor <= p && p <= info.cap),
            "auction {:?} cleared outside its floor and cap",
            info.id
        );
        self.emit_result(index, &outcome, false, out);
        let uniform = outcome.clearing.filter(|_| self.auctions[index].info.pricing == Pricing::Uniform);
        let offered = self.auctions[index].info.qty;
        let mut left = offered;
        for pos in 0..self.auctions[index].bids.len() {
            let bid = self.auctions[index].bids[pos];
            let fill = bid.qty.min(left);
            if !fill.is_zero() {
                left = left.minus(fill);
                self.fill_bid(BidAt { auction: index, pos }, fill, uniform.unwrap_or(bid.price), out);
            }
        }
        // What was allocated is what the result reported, never more than offered.
        assert!(offered.minus(left) == outcome.sold, "auction allocation differs from its result {:?}", outcome.sold);
        self.finish(index, left.tonnes(), out);
    }

    /// One winning bid's fill at `price`: settlement, statistics, the execution report.
    fn fill_bid<O: EventSink>(&mut self, at: BidAt, qty: Qty, price: Price, out: &mut O) {
        let auction = &self.auctions[at.auction];
        let bid = auction.bids[at.pos];
        debug_assert!(!qty.is_zero() && qty <= bid.qty, "filling {qty:?} of bid {:?} open {:?}", bid.id, bid.qty);
        // A winner never pays more than it bid, nor less than the floor.
        debug_assert!(auction.info.floor <= price && price <= bid.price, "bid {:?} pays {price:?}", bid.id);
        let (instrument, seller, seller_party) =
            (auction.info.instrument, auction.seller_exposure(), auction.seller_party());
        self.settle(&seller, &bid.exposure(instrument), qty, price);
        self.books[instrument.index()].auction_stats.record(price, qty);
        let stored = &mut self.auctions[at.auction].bids[at.pos];
        (stored.qty, stored.filled, stored.paid) = (bid.qty.minus(qty), qty, price);
        let match_id = MatchId::new(self.next_match_id);
        self.next_match_id += 1;
        let execution = Execution {
            method: Method::Auction,
            instrument,
            match_id,
            price,
            qty,
            taker_side: Side::Buy,
            maker: seller_party,
            taker: bid.party(),
        };
        out.push(Event::Executed(execution));
    }

    /// Cancels (`T`) what is left of every bid, returns `unsold` tonnes to
    /// the seller and closes the auction; the bids stay, none live.
    fn finish<O: EventSink>(&mut self, index: usize, unsold: u32, out: &mut O) {
        let instrument = self.auctions[index].info.instrument;
        for pos in 0..self.auctions[index].bids.len() {
            let bid = self.auctions[index].bids[pos];
            if bid.live() {
                self.release(&bid.exposure(instrument));
                self.auctions[index].bids[pos].qty = Qty::ZERO;
                out.push(Event::cancelled(bid.user, bid.token, bid.id, bid.qty, CancelReason::Expired));
            }
        }
        let offered = self.auctions[index].info.qty;
        assert!(
            unsold <= offered.tonnes(),
            "auction {:?} returns {unsold} t of {offered:?}",
            self.auctions[index].info.id
        );
        let seller = self.auctions[index].seller_exposure().with_qty(Qty::new(unsold));
        self.release(&seller);
        self.auctions[index].ended = true;
    }

    fn emit_result<O: EventSink>(&mut self, index: usize, o: &Outcome, expired: bool, out: &mut O) {
        let info = &self.auctions[index].info;
        let price = match info.pricing {
            Pricing::Uniform => o.clearing,
            Pricing::PayAsBid => crate::day::vwap(o.turnover, u64::from(o.sold.tonnes())),
        };
        let result = AuctionResult {
            id: info.id,
            instrument: info.instrument,
            pricing: info.pricing,
            offered: info.qty,
            sold: o.sold,
            price,
            turnover: o.turnover,
            winners: o.winners,
            bids: o.bids,
            expired,
        };
        self.auctions[index].result = Some(result);
        out.push(Event::AuctionResult(result));
    }

    /// Returns the bid lists to the pool at the roll (every auction has ended by then).
    pub(crate) fn clear_auctions(&mut self) {
        for mut auction in self.auctions.drain(..) {
            assert!(auction.ended, "auction {:?} still open at the roll", auction.info.id);
            auction.bids.clear();
            self.bid_pool.push(auction.bids);
        }
    }

    /// Every exposure the auctions hold: open auctions' sellers and live bids.
    pub(crate) fn auction_exposures(&self) -> impl Iterator<Item = Exposure> + '_ {
        self.auctions.iter().filter(|a| !a.ended).flat_map(|a| {
            let bids = a.bids.iter().filter(|b| b.live()).map(|b| b.exposure(a.info.instrument));
            std::iter::once(a.seller_exposure()).chain(bids)
        })
    }

    /// Checks the auctions: bids within floor and cap, the token index
    /// agreeing with the live bids, ended auctions holding nothing.
    ///
    /// # Errors
    /// Naming the auction on any breach.
    pub(crate) fn check_auction_invariants(&self) -> Result<(), crate::inspect::Breach> {
        let mut live = 0;
        for (index, a) in self.auctions.iter().enumerate() {
            ensure!(!a.ended || !a.bids.iter().any(Bid::live), "ended auction {:?} holds bids", a.info.id);
            ensure_eq!(a.ended, a.result.is_some(), "auction {:?} result", a.info.id);
            for b in &a.bids {
                let accounted = [b.qty, b.withdrawn, b.filled].iter().map(|q| u64::from(q.tonnes())).sum::<u64>();
                let entered = u64::from(b.entered.tonnes());
                // Open: every tonne is open, withdrawn or (never yet) filled;
                // ended: the rest expired.
                ensure!(accounted == entered || (a.ended && accounted < entered), "bid {:?} tonnes", b.id);
            }
            ensure!(a.bids.len() <= self.config.auction_bids_max as usize, "auction {:?} over capacity", a.info.id);
            ensure!(a.info.floor <= a.info.cap && a.info.start < a.info.end, "auction {:?} window or range", a.info.id);
            for (pos, b) in a.bids.iter().enumerate().filter(|(_, b)| b.live()) {
                ensure!(a.info.floor <= b.price && b.price <= a.info.cap, "bid {:?} outside floor and cap", b.id);
                let at = self.find_bid(b.user, b.token).map(|at| (at.auction, at.pos));
                ensure_eq!(at, Some((index, pos)), "token index disagrees for bid {:?}", b.id);
                live += 1;
            }
        }
        ensure_eq!(live, self.bid_index.len(), "bid index size");
        ensure_eq!(self.auctions.len() + self.bid_pool.len(), self.config.auctions_max as usize, "bid lists lost");
        Ok(())
    }

    /// Hashes every auction and bid (for [`Engine::state_hash`]).
    pub(crate) fn hash_auctions(&self, h: &mut impl std::hash::Hasher) {
        for a in &self.auctions {
            let i = &a.info;
            h.write(i.id.bytes());
            h.write_u64(i.order_id.get());
            h.write_u8(i.instrument.index() as u8);
            h.write_u32(i.seller.get());
            h.write_u16(i.seller_user.get());
            h.write_u32(i.qty.tonnes());
            h.write_u64(i.start.nanos());
            h.write_u64(i.end.nanos());
            h.write_u8(u8::from(i.pricing == Pricing::Uniform));
            h.write_u32(i.floor.fen());
            h.write_u32(i.cap.fen());
            h.write_u8(u8::from(a.ended));
            for b in &a.bids {
                h.write_u64(b.id.get());
                h.write(b.token.bytes());
                h.write_u16(b.user.get());
                h.write_u32(b.account.get());
                h.write_u32(b.qty.tonnes());
                h.write_u32(b.price.fen());
                for q in [b.entered, b.withdrawn, b.filled] {
                    h.write_u32(q.tonnes());
                }
                h.write_u32(b.paid.fen());
            }
        }
    }

    /// The auctions announced today in announcement order, each with
    /// whether it has ended and its number of live bids (for tools and tests).
    pub fn auctions(&self) -> impl Iterator<Item = (AuctionInfo, bool, usize)> + '_ {
        self.auctions.iter().map(|a| (a.info, a.ended, a.bids.iter().filter(|b| b.live()).count()))
    }

    /// The announcement of auction `id`, if it was announced today.
    pub fn auction(&self, id: AuctionId) -> Option<AuctionInfo> {
        self.find_auction(id).map(|a| a.info)
    }

    /// The outcome of auction `id` once it has ended.
    pub fn auction_result(&self, id: AuctionId) -> Option<AuctionResult> {
        self.find_auction(id).and_then(|a| a.result)
    }

    /// An ended auction's bids ranked by price then time, with what each
    /// was allocated; empty while the auction is open (bids are sealed).
    pub fn ranked_bids(&self, id: AuctionId) -> impl Iterator<Item = RankedBid> + '_ {
        let ended = self.find_auction(id).filter(|a| a.ended);
        ended.into_iter().flat_map(|a| a.bids.iter().map(Bid::report))
    }

    fn find_auction(&self, id: AuctionId) -> Option<&Auction> {
        self.auctions.iter().find(|a| a.info.id == id)
    }
}

/// Works out an allocation over bids already ranked: the quantity sold,
/// the clearing (lowest winning) price, the turnover and the counts.
fn rank(bids: &[Bid], offered: Qty, pricing: Pricing, live: u32) -> Outcome {
    let (mut left, mut clearing, mut own_price_turnover, mut winners) = (offered, None, 0u128, 0u32);
    for bid in bids.iter().filter(|b| b.live()) {
        if left.is_zero() {
            break;
        }
        let fill = bid.qty.min(left);
        left = left.minus(fill);
        clearing = Some(bid.price);
        own_price_turnover += u128::from(bid.price.fen()) * u128::from(fill.tonnes());
        winners += 1;
    }
    let sold = offered.minus(left);
    let turnover = match (pricing, clearing) {
        (Pricing::Uniform, Some(price)) => u128::from(price.fen()) * u128::from(sold.tonnes()),
        _ => own_price_turnover,
    };
    Outcome { sold, clearing, turnover, winners, bids: live }
}
