//! [`Engine`]: the state and the one entry point, [`Engine::apply`], which
//! dispatches each command to a small handler. Matching, validation, the
//! trading day and inspection live in sibling modules as further `impl
//! Engine` blocks, so that control flow stays in this one `match`.

use crate::accounts::AccountTable;
use crate::book::{Ladder, Order, Slab};
use crate::calendar::{Calendar, Phase};
use crate::command::{Asset, Cancel, Command, GatewayReject, NewOrder, Replace, Transfer};
use crate::config::{ConfigError, EngineConfig};
use crate::event::{CancelReason, Event, EventSink, OrderInfo, TradingState};
use crate::index::{IndexKey, SlotIndex, keyed};
use crate::types::{InstrumentId, OrderId, Price, Qty, Side, StockCode, Timestamp, Token, UserId};

/// The day's running statistics of one book's listing trades.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    /// First trade's price.
    pub open: Option<Price>,
    /// Highest trade.
    pub high: Option<Price>,
    /// Lowest trade.
    pub low: Option<Price>,
    /// Tonnes traded.
    pub volume: u64,
    /// Sum of price × tonnes, in fen.
    pub turnover: u128,
    /// Fills.
    pub trades: u64,
}

/// One instrument's listing book and its day.
pub(crate) struct Book {
    /// Directory index.
    pub instrument: InstrumentId,
    /// The previous close: today's reference.
    pub reference: Price,
    /// Lowest listing price allowed today.
    pub lower: Price,
    /// Highest listing price allowed today.
    pub upper: Price,
    /// Resting buys.
    pub bids: Ladder,
    /// Resting sells.
    pub asks: Ladder,
    /// Halted by the operator.
    pub halted: bool,
    /// Delisted (RULES §1.3): new orders rejected `S`, announced halted.
    pub delisted: bool,
    /// The trading state last announced, so that only changes are emitted.
    pub announced: Option<TradingState>,
    /// Today's listing statistics.
    pub stats: Stats,
    /// Today's block-trade statistics (never mixed into the listing ones).
    pub block_stats: Stats,
    /// Today's auction-trade statistics (never mixed into the listing ones).
    pub auction_stats: Stats,
}

impl Book {
    /// The ladder of `side`.
    pub fn side(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// The ladder of `side`, mutably.
    pub fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }
}

/// Every resting order and the index onto it.
///
/// Only by token: cancels and replaces name orders so. There is no index
/// by public reference: the one command that names an order by reference,
/// a pick, may only pick within the best five levels, which are searched
/// instead; keeping a second index cost every order an insert and a removal
/// (and a replace, which takes a new reference, both).
pub(crate) struct Orders {
    /// The slab.
    pub slab: Slab,
    /// Live orders by (user, token).
    pub by_token: SlotIndex,
    /// The secret of the index hashes (the configuration's `index_key`).
    pub key: IndexKey,
}

/// The index hash of a (user, token) pair: orders and auction bids are named so.
pub(crate) fn token_hash(key: &IndexKey, user: UserId, token: &Token) -> u64 {
    let bytes = token.bytes();
    let a = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(&bytes[8..]);
    b[6..].copy_from_slice(&user.get().to_le_bytes());
    keyed(key, a, u64::from_le_bytes(b))
}

impl Orders {
    /// Room for `capacity` resting orders.
    pub fn with_capacity(capacity: u32, key: IndexKey) -> Orders {
        Orders { slab: Slab::with_capacity(capacity), by_token: SlotIndex::new(capacity), key }
    }

    /// Stores a new resting order and indexes it.
    pub fn insert(&mut self, order: Order) -> u32 {
        let slot = self.slab.insert(order).expect("capacity checked at validation");
        self.by_token.insert(token_hash(&self.key, order.user, &order.token), slot);
        slot
    }

    /// Forgets the order in `slot` (already unlinked from its ladder).
    pub fn remove(&mut self, slot: u32) -> Order {
        let order = *self.slab.get(slot);
        self.by_token.remove(token_hash(&self.key, order.user, &order.token), slot);
        self.slab.remove(slot);
        order
    }

    /// Gives the order in `slot` a new token (a replace).
    pub fn retoken(&mut self, slot: u32, token: Token) {
        let order = self.slab.get_mut(slot);
        let (user, old) = (order.user, std::mem::replace(&mut order.token, token));
        self.by_token.rekey(token_hash(&self.key, user, &old), token_hash(&self.key, user, &token), slot);
    }

    /// Starts loading where [`Orders::find`] will look for `token`.
    pub fn prefetch(&self, user: UserId, token: &Token) {
        self.by_token.prefetch(token_hash(&self.key, user, token));
    }

    /// The slot of a live order named by token.
    pub fn find(&self, user: UserId, token: Token) -> Option<u32> {
        let is = |s: u32| {
            let o = self.slab.get(s);
            o.token == token && o.user == user
        };
        self.by_token.find(token_hash(&self.key, user, &token), is)
    }
}

/// The matching engine of one market: every book, the day, the counters.
///
/// Sans-IO: time, input and output buffers come from the caller, and the
/// engine never allocates in [`Engine::apply`] after [`Engine::new`].
pub struct Engine {
    /// The configuration it was built with.
    pub(crate) config: EngineConfig,
    /// Session calendar.
    pub(crate) calendar: Calendar,
    /// Instrument codes in directory order.
    pub(crate) codes: Vec<StockCode>,
    /// One book per instrument, in directory order.
    pub(crate) books: Vec<Book>,
    /// Resting orders.
    pub(crate) orders: Orders,
    /// The next public order reference (daily counter, from 1).
    pub(crate) next_order_id: u64,
    /// The next match number (daily counter, from 1).
    pub(crate) next_match_id: u64,
    /// The current trading day (days since the epoch), set by the first command.
    pub(crate) session_day: Option<i64>,
    /// The phase last announced.
    pub(crate) phase: Option<Phase>,
    /// True from the close until the roll.
    pub(crate) day_closed: bool,
    /// Accounts for pre-trade risk; `None` runs the book alone.
    pub(crate) accounts: Option<AccountTable>,
    /// Total cash and per-instrument holdings at load: trading conserves them.
    pub(crate) initial_totals: Option<(i128, Vec<i128>)>,
    /// Unmatched block orders, oldest first (preallocated to `blocks_max`).
    pub(crate) blocks: crate::waiting::WaitingBlocks,
    /// Today's auctions in announcement order (preallocated to `auctions_max`).
    pub(crate) auctions: Vec<crate::auction::Auction>,
    /// Bid lists not in use, each reserved to `auction_bids_max` at start.
    pub(crate) bid_pool: Vec<Vec<crate::auction::Bid>>,
    /// Live bids by (user, token); slot = auction index × `auction_bids_max` + position.
    pub(crate) bid_index: SlotIndex,
    /// Listings scheduled for the next roll, in order (room for `instruments_max`).
    pub(crate) pending_listings: Vec<(StockCode, Price)>,
    /// Delistings scheduled for the next roll (room for `instruments_max`).
    pub(crate) pending_delistings: Vec<InstrumentId>,
}

impl Engine {
    /// An engine for `config` with every book empty and all memory reserved.
    ///
    /// # Errors
    /// The [`ConfigError`] of an invalid configuration.
    pub fn new(config: EngineConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
        let room = config.instruments_max as usize;
        let mut engine = Engine {
            calendar: Calendar::new(&config),
            codes: Vec::with_capacity(room),
            books: Vec::with_capacity(room),
            orders: Orders::with_capacity(config.orders_max, config.index_key),
            next_order_id: 1,
            next_match_id: 1,
            session_day: None,
            phase: None,
            day_closed: false,
            accounts: None,
            initial_totals: None,
            blocks: crate::waiting::WaitingBlocks::with_capacity(config.blocks_max, config.index_key),
            auctions: Vec::with_capacity(config.auctions_max as usize),
            bid_pool: (0..config.auctions_max).map(|_| Vec::with_capacity(config.auction_bids_max as usize)).collect(),
            bid_index: SlotIndex::new(config.auctions_max * config.auction_bids_max),
            pending_listings: Vec::with_capacity(room),
            pending_delistings: Vec::with_capacity(room),
            config,
        };
        let directory: Vec<(StockCode, Price)> = engine
            .config
            .instruments
            .iter()
            .filter_map(|i| Some((StockCode::from_text(&i.code)?, i.prev_close)))
            .collect();
        for (code, prev_close) in directory {
            engine.push_book(code, prev_close);
        }
        Ok(engine)
    }

    /// An engine with pre-trade risk over `accounts` (see `risk.rs`).
    ///
    /// # Errors
    /// The [`ConfigError`] of an invalid configuration, or accounts built
    /// for a different number of instruments.
    pub fn with_accounts(config: EngineConfig, accounts: AccountTable) -> Result<Engine, ConfigError> {
        let mut engine = Engine::new(config)?;
        engine.attach_accounts(accounts)?;
        Ok(engine)
    }

    /// Runs pre-trade risk over `accounts`, which must hold every instrument.
    pub(crate) fn attach_accounts(&mut self, accounts: AccountTable) -> Result<(), ConfigError> {
        if accounts.instruments() != self.books.len() {
            return Err(ConfigError::AccountsMismatch(accounts.instruments(), self.books.len()));
        }
        let holdings = self.books.iter().map(|b| accounts.total_holding(b.instrument)).collect();
        self.initial_totals = Some((accounts.total_cash(), holdings));
        self.accounts = Some(accounts);
        Ok(())
    }

    /// Applies one command at time `now`, appending its events to `out`.
    ///
    /// The only way to change the engine. Any auction whose window ended
    /// by `now`, then any session boundary up to `now`, takes effect first. Bad input becomes reject events; it never panics
    /// (a panic is a broken invariant, that is, a bug).
    pub fn apply(&mut self, cmd: &Command, now: Timestamp, out: &mut impl EventSink) {
        self.advance_clock(now, out);
        match cmd {
            Command::NewOrder(order) => self.new_order(order, out),
            Command::Cancel(cancel) => self.cancel(cancel, out),
            Command::Replace(replace) => self.replace(replace, out),
            Command::NewBlock(block) => self.new_block(block, out),
            Command::Pick(pick) => self.pick(pick, out),
            Command::Clock => {}
            Command::Roll => self.roll(now, out),
            Command::Halt(instrument) => self.set_halted(*instrument, true, out),
            Command::Resume(instrument) => self.set_halted(*instrument, false, out),
            Command::CancelAccount(account) => {
                let account = *account;
                self.drain_orders(|o| o.account == account, CancelReason::Supervisory, out);
                self.drain_blocks(|b| b.account == account, CancelReason::Supervisory, out);
                self.drain_bids(|b| b.account == account, CancelReason::Supervisory, out);
            }
            Command::CancelUser(user) => {
                let user = *user;
                self.drain_orders(|o| o.user == user, CancelReason::User, out);
                self.drain_blocks(|b| b.user == user, CancelReason::User, out);
                self.drain_bids(|b| b.user == user, CancelReason::User, out);
            }
            Command::Transfer(transfer) => self.transfer(transfer, out),
            Command::Reject(GatewayReject { user, token, reason, .. }) => {
                out.push(Event::rejected(*user, *token, *reason));
            }
            Command::AnnounceAuction(announce) => self.announce_auction(announce, now, out),
            Command::AuctionBid(bid) => self.auction_bid(bid, now, out),
            Command::List(listing) => self.schedule_listing(listing, out),
            Command::Delist(delisting) => self.schedule_delisting(delisting, out),
        }
    }

    /// A registry transfer: available cash or sellable holding moves in or
    /// out; the conservation invariant's totals move with it.
    fn transfer<O: EventSink>(&mut self, t: &Transfer, out: &mut O) {
        let known = match t.asset {
            Asset::Cash => true,
            Asset::Holding(instrument) => instrument.index() < self.books.len(),
        };
        let applied = known && self.accounts.as_mut().is_some_and(|a| a.transfer(t.account, t.asset, t.amount).is_ok());
        if applied {
            if let Some((cash, holdings)) = &mut self.initial_totals {
                match t.asset {
                    Asset::Cash => *cash += i128::from(t.amount),
                    Asset::Holding(i) => holdings[i.index()] += i128::from(t.amount),
                }
            }
        }
        out.push(Event::Transferred { transfer: *t, accepted: applied });
    }

    /// Takes the next public order reference.
    pub(crate) fn take_order_id(&mut self) -> OrderId {
        let id = OrderId::new(self.next_order_id);
        self.next_order_id += 1;
        id
    }

    fn new_order<O: EventSink>(&mut self, cmd: &NewOrder, out: &mut O) {
        if self.token_live(cmd.user, cmd.token) {
            return; // A live token resent: ignored without reply, as OUCH does.
        }
        let spec = match self.validate_new(cmd) {
            Ok(spec) => spec,
            Err(reason) => {
                return out.push(Event::rejected(cmd.user, cmd.token, reason));
            }
        };
        let id = self.take_order_id();
        let info = OrderInfo {
            method: crate::event::Method::Listing,
            user: cmd.user,
            token: cmd.token,
            id,
            account: cmd.account,
            instrument: spec.instrument,
            side: cmd.side,
            qty: cmd.qty,
            wire_price: cmd.price,
            tif: cmd.tif,
            display: cmd.display,
            capacity: cmd.capacity,
            min_qty: cmd.min_qty,
        };
        let limit = spec.limit.unwrap_or_else(|| self.band_edge(spec.instrument, cmd.side));
        self.lock(&crate::risk::Exposure::of_new(&info, limit));
        if spec.tif == crate::command::TimeInForce::Day && !self.crosses(spec.instrument, cmd.side, limit) {
            // What `execute` would do without a fill, without its walk of the opposite side.
            let added = self.rest(info, limit);
            out.push(Event::Accepted(info));
            return out.push(added);
        }
        out.push(Event::Accepted(info));
        self.execute(info, limit, spec.tif, out);
    }

    fn cancel<O: EventSink>(&mut self, cmd: &Cancel, out: &mut O) {
        let Some(slot) = self.orders.find(cmd.user, cmd.token) else {
            return self.cancel_block_or_reject(cmd, out);
        };
        let order = *self.orders.slab.get(slot);
        if cmd.qty.is_zero() {
            self.cancel_resting(slot, CancelReason::User, out);
        } else if cmd.qty < order.open {
            let decrement = order.open.minus(cmd.qty);
            self.release(&crate::risk::Exposure::of_resting(&order).with_qty(decrement));
            let book = &mut self.books[order.instrument.index()];
            book.side_mut(order.side).reduce(&mut self.orders.slab, slot, decrement);
            let (user, token, id, instrument) = (order.user, order.token, order.id, order.instrument);
            out.push(Event::cancelled(user, token, id, decrement, CancelReason::User));
            out.push(Event::BookReduce { instrument, id, cancelled: decrement });
        } else {
            out.push(Event::CancelRejected { user: cmd.user, token: cmd.token });
        }
    }

    /// Removes a resting order from the book and reports it cancelled in full.
    pub(crate) fn cancel_resting<O: EventSink>(&mut self, slot: u32, reason: CancelReason, out: &mut O) {
        let order = *self.orders.slab.get(slot);
        self.books[order.instrument.index()].side_mut(order.side).unlink(&mut self.orders.slab, slot);
        self.orders.remove(slot);
        self.release(&crate::risk::Exposure::of_resting(&order));
        let (user, token, id, instrument) = (order.user, order.token, order.id, order.instrument);
        out.push(Event::cancelled(user, token, id, order.open, reason));
        out.push(Event::BookDelete { instrument, id });
    }

    /// A cancel naming no listing order: a waiting block order can be
    /// cancelled in full (never reduced), a live auction bid cancelled or
    /// reduced; anything else is a Cancel Reject.
    fn cancel_block_or_reject<O: EventSink>(&mut self, cmd: &Cancel, out: &mut O) {
        if let Some(at) = self.find_bid(cmd.user, cmd.token) {
            return self.cancel_bid(at, cmd, out);
        }
        match self.find_block(cmd.user, cmd.token) {
            Some(index) if cmd.qty.is_zero() => self.cancel_block(index, CancelReason::User, out),
            _ => out.push(Event::CancelRejected { user: cmd.user, token: cmd.token }),
        }
    }

    fn replace<O: EventSink>(&mut self, cmd: &Replace, out: &mut O) {
        let Some(slot) = self.orders.find(cmd.user, cmd.token) else {
            // Block orders and auction bids cannot be replaced (`O`); anything else is not live (`U`).
            let other_method =
                self.find_block(cmd.user, cmd.token).is_some() || self.find_bid(cmd.user, cmd.token).is_some();
            let reason = if other_method {
                crate::event::RejectReason::InvalidField
            } else {
                crate::event::RejectReason::NotLive
            };
            return out.push(Event::rejected(cmd.user, cmd.new_token, reason));
        };
        if cmd.new_token != cmd.token && self.token_live(cmd.user, cmd.new_token) {
            return; // The replacement token is live already: a resend, ignored without reply.
        }
        let order = *self.orders.slab.get(slot);
        let validated = self.validate_replace(cmd, &order).and_then(|spec| {
            let old = crate::risk::Exposure::of_resting(&order);
            let price = spec.limit.expect("replace has a limit price");
            self.relock(&old, &old.with_qty(cmd.qty).with_price(price))?;
            Ok(spec)
        });
        match validated {
            Ok(spec) => self.replace_valid(slot, order, cmd, spec, out),
            Err(reason) => out.push(Event::rejected(cmd.user, cmd.new_token, reason)),
        }
    }

    fn replace_valid<O: EventSink>(
        &mut self,
        slot: u32,
        order: Order,
        cmd: &Replace,
        spec: crate::validate::Spec,
        out: &mut O,
    ) {
        let price = spec.limit.expect("replace has a limit price");
        let keeps_priority =
            spec.tif == crate::command::TimeInForce::Day && price == order.price && cmd.qty < order.open;
        let id = if keeps_priority { order.id } else { self.take_order_id() };
        let info = OrderInfo {
            method: crate::event::Method::Listing,
            user: order.user,
            token: cmd.new_token,
            id,
            account: order.account,
            instrument: order.instrument,
            side: order.side,
            qty: cmd.qty,
            wire_price: cmd.price,
            tif: cmd.tif,
            display: cmd.display,
            capacity: order.capacity,
            min_qty: cmd.min_qty,
        };
        let replaced = Event::Replaced { order: info, previous_token: order.token };
        if keeps_priority {
            out.push(replaced);
            return self.reduce_in_place(slot, &order, cmd.new_token, cmd.qty, out);
        }
        let instrument = order.instrument;
        // Only the opposite side decides whether it crosses: the order's own place does not matter.
        let rests_quietly =
            spec.tif == crate::command::TimeInForce::Day && !self.crosses(instrument, order.side, price);
        if rests_quietly {
            self.requeue(slot, &order, &info, price);
            let qty = cmd.qty;
            out.push(replaced);
            out.push(Event::BookReplace { instrument, old: order.id, new: id, qty, price });
        } else {
            out.push(replaced);
            self.books[instrument.index()].side_mut(order.side).unlink(&mut self.orders.slab, slot);
            self.orders.remove(slot);
            out.push(Event::BookDelete { instrument, id: order.id });
            self.execute(info, price, spec.tif, out);
        }
    }

    /// Moves the resting `order` in `slot` to the back of the queue at
    /// `price` under the token, reference and quantity of `info`, in its own
    /// slot: what a removal and [`Engine::rest`] do, with one index
    /// operation fewer.
    fn requeue(&mut self, slot: u32, order: &Order, info: &OrderInfo, price: Price) {
        let ladder = self.books[order.instrument.index()].side_mut(order.side);
        ladder.unlink(&mut self.orders.slab, slot);
        self.orders.retoken(slot, info.token);
        let moved = self.orders.slab.get_mut(slot);
        (moved.id, moved.price, moved.open) = (info.id, price, info.qty);
        ladder.push_back(&mut self.orders.slab, slot);
    }

    fn reduce_in_place<O: EventSink>(&mut self, slot: u32, order: &Order, token: Token, qty: Qty, out: &mut O) {
        let decrement = order.open.minus(qty);
        let instrument = order.instrument;
        self.books[instrument.index()].side_mut(order.side).reduce(&mut self.orders.slab, slot, decrement);
        self.orders.retoken(slot, token);
        out.push(Event::BookReduce { instrument, id: order.id, cancelled: decrement });
    }

    /// Puts an accepted order (or its remainder) on the book as the newest
    /// at its price; the feed's `BookAdd` that announces it.
    pub(crate) fn rest(&mut self, info: OrderInfo, price: Price) -> Event {
        let order = Order::new(
            info.id,
            info.token,
            info.user,
            info.account,
            info.instrument,
            info.side,
            price,
            info.qty,
            info.capacity,
        );
        let slot = self.orders.insert(order);
        self.books[info.instrument.index()].side_mut(info.side).push_back(&mut self.orders.slab, slot);
        let (instrument, id, side, qty) = (info.instrument, info.id, info.side, info.qty);
        Event::BookAdd { instrument, id, side, qty, price }
    }
}
