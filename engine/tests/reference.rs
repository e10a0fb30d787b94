//! The differential test: the engine against a naive reference book.
//!
//! The reference is written again from RULES.md and PROTOCOL.md in the
//! plainest way (a `Vec` of resting orders per book, sorted into priority
//! order when needed) and shares no logic with the engine: not its band
//! arithmetic, not its matching, not its hash. It uses the engine's public
//! types only to read commands and to build the events it expects.
//!
//! A seeded generator drives at least 1,000,000 commands per run through
//! both, asserting identical events for every command, the engine's
//! invariants after every command, and equal state hashes every 1,000
//! commands. Reproduce a failure with `CARBONX_SEED=<seed> cargo test -p
//! carbonx-engine --test reference`.

use carbonx_engine::*;

const MARKET: u32 = 0x7FFF_FFFF;

#[derive(Clone, Copy, Debug)]
struct Resting {
    id: u64,
    user: u16,
    token: [u8; 14],
    account: u32,
    side: Side,
    price: u32,
    open: u32,
    capacity: u8,
    /// Time priority: smaller is older.
    seq: u64,
}

#[derive(Default)]
struct Tally {
    open: Option<u32>,
    high: Option<u32>,
    low: Option<u32>,
    volume: u64,
    turnover: u128,
    trades: u64,
}

struct RefBook {
    code: StockCode,
    reference: u32,
    lower: u32,
    upper: u32,
    halted: bool,
    announced: Option<TradingState>,
    orders: Vec<Resting>,
    tally: Tally,
}

/// An incoming order while it trades.
#[derive(Clone, Copy)]
struct Taker {
    user: u16,
    token: [u8; 14],
    id: u64,
    account: u32,
    side: Side,
    limit: u32,
    qty: u32,
    capacity: u8,
}

struct Model {
    books: Vec<RefBook>,
    stp: StpMode,
    band_pct: u32,
    qty_max: u32,
    orders_max: usize,
    next_id: u64,
    next_match: u64,
    next_seq: u64,
    session_day: Option<i64>,
    all_day: bool,
}

// Written out by hand on purpose: the engine uses `div_ceil`, and a
// reference that shares the engine's arithmetic would share its bugs.
#[allow(clippy::manual_div_ceil)]
fn band(reference: u32, pct: u32) -> (u32, u32) {
    let r = u64::from(reference);
    let upper = r * u64::from(100 + pct) / 100; // floor
    let lower = (r * u64::from(100 - pct) + 99) / 100; // ceil
    (lower.clamp(1, 999_999) as u32, upper.clamp(1, 999_999) as u32)
}

fn price(fen: u32) -> Price {
    Price::from_fen(fen).unwrap()
}

fn tok(t: [u8; 14]) -> Token {
    Token::from_bytes(t)
}

fn is_trading_day(day: i64) -> bool {
    (day + 3).rem_euclid(7) < 5
}

fn first_trading_day(from: i64) -> i64 {
    (from..).find(|&d| is_trading_day(d)).unwrap()
}

fn local_day(now: Timestamp) -> i64 {
    (now.nanos() as i64 / 1_000_000_000 + 8 * 3600).div_euclid(86_400)
}

impl Model {
    fn new(config: &EngineConfig) -> Model {
        let books = config
            .instruments
            .iter()
            .map(|i| {
                let reference = i.prev_close.fen();
                let (lower, upper) = band(reference, config.listing_band_pct);
                RefBook {
                    code: StockCode::from_text(&i.code).unwrap(),
                    reference,
                    lower,
                    upper,
                    halted: false,
                    announced: None,
                    orders: Vec::new(),
                    tally: Tally::default(),
                }
            })
            .collect();
        Model {
            books,
            stp: config.stp,
            band_pct: config.listing_band_pct,
            qty_max: config.listing_qty_max.tonnes(),
            orders_max: config.orders_max as usize,
            next_id: 1,
            next_match: 1,
            next_seq: 0,
            session_day: None,
            all_day: false,
        }
    }

    fn apply(&mut self, cmd: &Command, now: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        if self.session_day.is_none() {
            self.session_day = Some(first_trading_day(local_day(now)));
            self.announce_references(&mut out);
        }
        if !self.all_day {
            self.open_day(&mut out);
        }
        match cmd {
            Command::NewOrder(o) => self.new_order(o, &mut out),
            Command::Cancel(c) => self.cancel(c, &mut out),
            Command::Replace(r) => self.replace(r, &mut out),
            Command::Clock => {}
            Command::Roll => self.roll(now, &mut out),
            Command::Halt(i) => self.set_halt(i.index(), true, &mut out),
            Command::Resume(i) => self.set_halt(i.index(), false, &mut out),
            Command::CancelAccount(a) => {
                let a = a.get();
                self.drain(|o| o.account == a, CancelReason::Supervisory, &mut out);
            }
            Command::CancelUser(u) => {
                let u = u.get();
                self.drain(|o| o.user == u, CancelReason::User, &mut out);
            }
            // No accounts in the listing model: every transfer is refused.
            Command::Transfer(t) => out.push(Event::Transferred { transfer: *t, accepted: false }),
            Command::Reject(g) => out.push(Event::Rejected { user: g.user, token: g.token, reason: g.reason }),
            Command::NewBlock(_) | Command::Pick(_) | Command::AnnounceAuction(_) | Command::AuctionBid(_) => {
                panic!("the listing model does not generate these")
            }
        }
        out
    }

    fn announce_references(&self, out: &mut Vec<Event>) {
        for (i, b) in self.books.iter().enumerate() {
            out.push(Event::Reference(Reference {
                instrument: InstrumentId::new(i as u8),
                reference: price(b.reference),
                lower: price(b.lower),
                upper: price(b.upper),
            }));
        }
    }

    fn open_day(&mut self, out: &mut Vec<Event>) {
        self.all_day = true;
        out.push(Event::Phase(Phase::AllDay));
        self.announce_states(out);
    }

    fn announce_states(&mut self, out: &mut Vec<Event>) {
        for (i, b) in self.books.iter_mut().enumerate() {
            let state = if b.halted { TradingState::Halted } else { TradingState::Trading };
            if b.announced != Some(state) {
                b.announced = Some(state);
                out.push(Event::TradingState { instrument: InstrumentId::new(i as u8), state });
            }
        }
    }

    fn set_halt(&mut self, book: usize, halted: bool, out: &mut Vec<Event>) {
        if book < self.books.len() {
            self.books[book].halted = halted;
            self.announce_states(out);
        }
    }

    /// One side of a book in priority order: best price first, then oldest.
    fn priority(&self, book: usize, side: Side) -> Vec<Resting> {
        let mut v: Vec<Resting> = self.books[book].orders.iter().filter(|o| o.side == side).copied().collect();
        v.sort_by_key(|o| (if side == Side::Buy { u32::MAX - o.price } else { o.price }, o.seq));
        v
    }

    fn find(&self, user: u16, token: [u8; 14]) -> Option<(usize, usize)> {
        self.books
            .iter()
            .enumerate()
            .find_map(|(b, book)| book.orders.iter().position(|o| o.user == user && o.token == token).map(|i| (b, i)))
    }

    fn live_count(&self) -> usize {
        self.books.iter().map(|b| b.orders.len()).sum()
    }

    fn validate_fields(
        &self,
        qty: u32,
        wire: u32,
        tif: u32,
        display: u8,
        min_qty: u32,
        market_ok: bool,
    ) -> Result<(Option<u32>, TimeInForce, bool), RejectReason> {
        if qty == 0 || qty > self.qty_max {
            return Err(RejectReason::InvalidQty);
        }
        let limit = if wire == MARKET && market_ok {
            None
        } else if wire % 100 != 0 || wire / 100 == 0 || wire / 100 > 999_999 {
            return Err(RejectReason::InvalidPrice);
        } else {
            Some(wire / 100)
        };
        let day = tif == 99_998 || tif == 99_999;
        if (!day && tif != 0) || (limit.is_none() && day) {
            return Err(RejectReason::InvalidField);
        }
        let post_only = match display {
            b'A' | b'Y' => false,
            b'P' if day => true,
            _ => return Err(RejectReason::InvalidDisplay),
        };
        let tif = match (min_qty, day) {
            (0, true) => TimeInForce::Day,
            (0, false) => TimeInForce::Ioc,
            (m, false) if m == qty => TimeInForce::Fok,
            _ => return Err(RejectReason::InvalidMinQty),
        };
        Ok((limit, tif, post_only))
    }

    fn crosses(&self, book: usize, side: Side, limit: u32) -> bool {
        self.priority(book, side.opposite()).first().is_some_and(|best| match side {
            Side::Buy => limit >= best.price,
            Side::Sell => limit <= best.price,
        })
    }

    fn validate_market(
        &self,
        book: usize,
        side: Side,
        limit: Option<u32>,
        post_only: bool,
    ) -> Result<(), RejectReason> {
        let b = &self.books[book];
        if b.halted {
            return Err(RejectReason::Halted);
        }
        if let Some(p) = limit {
            if p < b.lower || p > b.upper {
                return Err(RejectReason::OutsideBand);
            }
            if post_only && self.crosses(book, side, p) {
                return Err(RejectReason::PostOnlyWouldTrade);
            }
        }
        Ok(())
    }

    fn new_order(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        let token = *o.token.bytes();
        if self.find(o.user.get(), token).is_some() {
            return;
        }
        let checked = self.check_new(o);
        let (book, limit, tif) = match checked {
            Ok(v) => v,
            Err(reason) => {
                return out.push(Event::Rejected { user: o.user, token: o.token, reason });
            }
        };
        let id = self.take_id();
        out.push(Event::Accepted(OrderInfo {
            method: Method::Listing,
            user: o.user,
            token: o.token,
            id: OrderId::new(id),
            account: o.account,
            instrument: InstrumentId::new(book as u8),
            side: o.side,
            qty: o.qty,
            wire_price: o.price,
            tif: o.tif,
            display: o.display,
            capacity: o.capacity,
            min_qty: o.min_qty,
        }));
        let b = &self.books[book];
        let limit = limit.unwrap_or(if o.side == Side::Buy { b.upper } else { b.lower });
        let (user, account, side, qty, capacity) = (o.user.get(), o.account.get(), o.side, o.qty.tonnes(), o.capacity);
        let taker = Taker { user, token, id, account, side, limit, qty, capacity };
        self.execute(book, taker, tif, out);
    }

    fn check_new(&self, o: &NewOrder) -> Result<(usize, Option<u32>, TimeInForce), RejectReason> {
        let qty = o.qty.tonnes();
        if qty == 0 || qty > self.qty_max {
            return Err(RejectReason::InvalidQty);
        }
        let book = self.books.iter().position(|b| b.code == o.stock).ok_or(RejectReason::UnknownStock)?;
        let (limit, tif, post_only) = self.validate_fields(qty, o.price, o.tif, o.display, o.min_qty, true)?;
        if o.cross_type != b'N' {
            return Err(RejectReason::InvalidField);
        }
        self.validate_market(book, o.side, limit, post_only)?;
        if tif == TimeInForce::Day && self.live_count() >= self.orders_max {
            return Err(RejectReason::CapacityFull);
        }
        Ok((book, limit, tif))
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    fn fok_fillable(&self, book: usize, t: &Taker) -> bool {
        let mut needed = u64::from(t.qty);
        for m in self.priority(book, t.side.opposite()) {
            let ok = if t.side == Side::Buy { m.price <= t.limit } else { m.price >= t.limit };
            if !ok || m.account == t.account {
                return false;
            }
            needed = needed.saturating_sub(u64::from(m.open));
            if needed == 0 {
                return true;
            }
        }
        false
    }

    fn cancel_taker(t: &mut Taker, reason: CancelReason, out: &mut Vec<Event>) {
        let decrement = Qty::new(std::mem::take(&mut t.qty));
        out.push(Event::Cancelled {
            user: UserId::new(t.user),
            token: tok(t.token),
            id: OrderId::new(t.id),
            decrement,
            reason,
        });
    }

    fn remove_resting(&mut self, book: usize, id: u64, reason: CancelReason, out: &mut Vec<Event>) {
        let i = self.books[book].orders.iter().position(|o| o.id == id).unwrap();
        let o = self.books[book].orders.remove(i);
        let decrement = Qty::new(o.open);
        out.push(Event::Cancelled {
            user: UserId::new(o.user),
            token: tok(o.token),
            id: OrderId::new(o.id),
            decrement,
            reason,
        });
        out.push(Event::BookDelete { instrument: InstrumentId::new(book as u8), id: OrderId::new(o.id) });
    }

    fn execute(&mut self, book: usize, mut t: Taker, tif: TimeInForce, out: &mut Vec<Event>) {
        if tif == TimeInForce::Fok && !self.fok_fillable(book, &t) {
            return Self::cancel_taker(&mut t, CancelReason::ImmediateOrCancel, out);
        }
        while t.qty > 0 {
            let Some(m) = self.priority(book, t.side.opposite()).first().copied() else {
                break;
            };
            let ok = if t.side == Side::Buy { m.price <= t.limit } else { m.price >= t.limit };
            if !ok {
                break;
            }
            if m.account == t.account {
                match self.stp {
                    StpMode::CancelNewest => {
                        return Self::cancel_taker(&mut t, CancelReason::SelfTrade, out);
                    }
                    StpMode::CancelOldest => {
                        self.remove_resting(book, m.id, CancelReason::SelfTrade, out);
                        continue;
                    }
                    StpMode::CancelBoth => {
                        self.remove_resting(book, m.id, CancelReason::SelfTrade, out);
                        return Self::cancel_taker(&mut t, CancelReason::SelfTrade, out);
                    }
                }
            }
            self.trade(book, &mut t, m, out);
        }
        if t.qty == 0 {
            return;
        }
        if tif == TimeInForce::Day {
            self.rest(book, &t);
            let (instrument, id) = (InstrumentId::new(book as u8), OrderId::new(t.id));
            out.push(Event::BookAdd { instrument, id, side: t.side, qty: Qty::new(t.qty), price: price(t.limit) });
        } else {
            Self::cancel_taker(&mut t, CancelReason::ImmediateOrCancel, out);
        }
    }

    fn rest(&mut self, book: usize, t: &Taker) {
        self.next_seq += 1;
        let (id, user, token, account, side, price, open, capacity) =
            (t.id, t.user, t.token, t.account, t.side, t.limit, t.qty, t.capacity);
        self.books[book].orders.push(Resting {
            id,
            user,
            token,
            account,
            side,
            price,
            open,
            capacity,
            seq: self.next_seq,
        });
    }

    fn trade(&mut self, book: usize, t: &mut Taker, m: Resting, out: &mut Vec<Event>) {
        let qty = t.qty.min(m.open);
        let b = &mut self.books[book];
        let i = b.orders.iter().position(|o| o.id == m.id).unwrap();
        if qty == m.open {
            b.orders.remove(i);
        } else {
            b.orders[i].open -= qty;
        }
        let tally = &mut b.tally;
        tally.open.get_or_insert(m.price);
        tally.high = Some(tally.high.map_or(m.price, |h| h.max(m.price)));
        tally.low = Some(tally.low.map_or(m.price, |l| l.min(m.price)));
        tally.volume += u64::from(qty);
        tally.turnover += u128::from(m.price) * u128::from(qty);
        tally.trades += 1;
        t.qty -= qty;
        let match_id = MatchId::new(self.next_match);
        self.next_match += 1;
        let maker = Party {
            user: UserId::new(m.user),
            token: tok(m.token),
            id: OrderId::new(m.id),
            account: AccountId::new(m.account),
        };
        let taker = Party {
            user: UserId::new(t.user),
            token: tok(t.token),
            id: OrderId::new(t.id),
            account: AccountId::new(t.account),
        };
        out.push(Event::Executed(Execution {
            method: Method::Listing,
            instrument: InstrumentId::new(book as u8),
            match_id,
            price: price(m.price),
            qty: Qty::new(qty),
            taker_side: t.side,
            maker,
            taker,
        }));
    }

    fn cancel(&mut self, c: &Cancel, out: &mut Vec<Event>) {
        let reject = Event::CancelRejected { user: c.user, token: c.token };
        let Some((book, i)) = self.find(c.user.get(), *c.token.bytes()) else {
            return out.push(reject);
        };
        let o = self.books[book].orders[i];
        let keep = c.qty.tonnes();
        if keep == 0 {
            return self.remove_resting(book, o.id, CancelReason::User, out);
        }
        if keep >= o.open {
            return out.push(reject);
        }
        self.books[book].orders[i].open = keep;
        let decrement = Qty::new(o.open - keep);
        let id = OrderId::new(o.id);
        out.push(Event::Cancelled { user: c.user, token: c.token, id, decrement, reason: CancelReason::User });
        out.push(Event::BookReduce { instrument: InstrumentId::new(book as u8), id, cancelled: decrement });
    }

    fn replace(&mut self, r: &Replace, out: &mut Vec<Event>) {
        let Some((book, i)) = self.find(r.user.get(), *r.token.bytes()) else {
            return out.push(Event::Rejected { user: r.user, token: r.new_token, reason: RejectReason::NotLive });
        };
        if r.new_token != r.token && self.find(r.user.get(), *r.new_token.bytes()).is_some() {
            return;
        }
        let old = self.books[book].orders[i];
        let checked = self.validate_fields(r.qty.tonnes(), r.price, r.tif, r.display, r.min_qty, false).and_then(
            |(limit, tif, post)| {
                self.validate_market(book, old.side, limit, post)?;
                Ok((limit.unwrap(), tif))
            },
        );
        let (limit, tif) = match checked {
            Ok(v) => v,
            Err(reason) => {
                return out.push(Event::Rejected { user: r.user, token: r.new_token, reason });
            }
        };
        self.replace_valid(book, old, r, limit, tif, out);
    }

    fn replace_valid(
        &mut self,
        book: usize,
        old: Resting,
        r: &Replace,
        limit: u32,
        tif: TimeInForce,
        out: &mut Vec<Event>,
    ) {
        let qty = r.qty.tonnes();
        let keeps = tif == TimeInForce::Day && limit == old.price && qty < old.open;
        let id = if keeps { old.id } else { self.take_id() };
        out.push(Self::replaced(book, &old, r, id));
        let instrument = InstrumentId::new(book as u8);
        let i = self.books[book].orders.iter().position(|o| o.id == old.id).unwrap();
        if keeps {
            let o = &mut self.books[book].orders[i];
            (o.open, o.token) = (qty, *r.new_token.bytes());
            let cancelled = Qty::new(old.open - qty);
            return out.push(Event::BookReduce { instrument, id: OrderId::new(old.id), cancelled });
        }
        self.books[book].orders.remove(i);
        let (user, token, account, side, capacity) =
            (old.user, *r.new_token.bytes(), old.account, old.side, old.capacity);
        let taker = Taker { user, token, id, account, side, limit, qty, capacity };
        if tif == TimeInForce::Day && !self.crosses(book, side, limit) {
            self.rest(book, &taker);
            let (old, new, qty, price) = (OrderId::new(old.id), OrderId::new(id), r.qty, price(limit));
            return out.push(Event::BookReplace { instrument, old, new, qty, price });
        }
        out.push(Event::BookDelete { instrument, id: OrderId::new(old.id) });
        self.execute(book, taker, tif, out);
    }

    /// The Replaced event: the replace's fields on the old order, under its new token.
    fn replaced(book: usize, old: &Resting, r: &Replace, id: u64) -> Event {
        let order = OrderInfo {
            method: Method::Listing,
            user: r.user,
            token: r.new_token,
            id: OrderId::new(id),
            account: AccountId::new(old.account),
            instrument: InstrumentId::new(book as u8),
            side: old.side,
            qty: r.qty,
            wire_price: r.price,
            tif: r.tif,
            display: r.display,
            capacity: old.capacity,
            min_qty: r.min_qty,
        };
        Event::Replaced { order, previous_token: tok(old.token) }
    }

    /// Cancels matching resting orders: books in order, bids best first, then asks, oldest first.
    fn drain(&mut self, pred: impl Fn(&Resting) -> bool, reason: CancelReason, out: &mut Vec<Event>) {
        for book in 0..self.books.len() {
            for side in [Side::Buy, Side::Sell] {
                for o in self.priority(book, side) {
                    if pred(&o) {
                        self.remove_resting(book, o.id, reason, out);
                    }
                }
            }
        }
    }

    fn close_of(b: &RefBook) -> u32 {
        if b.tally.volume == 0 {
            return b.reference;
        }
        // VWAP rounded half-up: floor(turnover / volume + 1/2).
        let (t, v) = (b.tally.turnover, u128::from(b.tally.volume));
        ((2 * t + v) / (2 * v)) as u32
    }

    fn roll(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        self.drain(|_| true, CancelReason::Expired, out);
        for (i, b) in self.books.iter().enumerate() {
            let instrument = InstrumentId::new(i as u8);
            let t = &b.tally;
            let or_ref = |p: Option<u32>| price(p.unwrap_or(b.reference));
            let (open, high, low, close) = (or_ref(t.open), or_ref(t.high), or_ref(t.low), price(Self::close_of(b)));
            let (volume, turnover, trades) = (t.volume, t.turnover, t.trades);
            out.push(Event::DailyStats(DailyStats {
                method: Method::Listing,
                instrument,
                open,
                high,
                low,
                close,
                volume,
                turnover,
                trades,
            }));
            let r = price(b.reference);
            for method in [Method::Block, Method::Auction] {
                out.push(Event::DailyStats(DailyStats {
                    method,
                    instrument,
                    open: r,
                    high: r,
                    low: r,
                    close: r,
                    volume: 0,
                    turnover: 0,
                    trades: 0,
                }));
            }
        }
        out.push(Event::Phase(Phase::Closed));
        for b in &mut self.books {
            b.reference = Self::close_of(b);
            (b.lower, b.upper) = band(b.reference, self.band_pct);
            b.tally = Tally::default();
        }
        (self.next_id, self.next_match) = (1, 1);
        let previous = self.session_day.unwrap();
        self.session_day = Some(first_trading_day(first_trading_day(local_day(now)).max(previous + 1)));
        self.announce_references(out);
        self.open_day(out);
    }

    /// The engine's state hash, computed independently (FNV-1a 64, little-endian integers).
    fn state_hash(&self) -> u64 {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        h.bytes(&self.next_id.to_le_bytes());
        h.bytes(&self.next_match.to_le_bytes());
        h.bytes(&self.session_day.unwrap_or(i64::MIN).to_le_bytes());
        h.bytes(&[if self.all_day { 5 } else { 255 }, 0]);
        for (i, b) in self.books.iter().enumerate() {
            for v in [b.reference, b.lower, b.upper] {
                h.bytes(&v.to_le_bytes());
            }
            h.bytes(&[u8::from(b.halted)]);
            for p in [b.tally.open, b.tally.high, b.tally.low] {
                h.bytes(&p.unwrap_or(0).to_le_bytes());
            }
            let t = &b.tally;
            // Listing, block and auction tallies (the model has no block or auction trades).
            for (volume, turnover, trades) in [(t.volume, t.turnover, t.trades), (0, 0, 0), (0, 0, 0)] {
                h.bytes(&volume.to_le_bytes());
                h.bytes(&turnover.to_le_bytes());
                h.bytes(&trades.to_le_bytes());
            }
            for side in [Side::Buy, Side::Sell] {
                let mut last = None;
                for o in self.priority(i, side) {
                    if last != Some(o.price) {
                        h.bytes(&o.price.to_le_bytes());
                        last = Some(o.price);
                    }
                    h.bytes(&o.id.to_le_bytes());
                    h.bytes(&o.token);
                    h.bytes(&o.user.to_le_bytes());
                    h.bytes(&o.account.to_le_bytes());
                    h.bytes(&o.open.to_le_bytes());
                }
            }
        }
        h.0
    }

    fn check_uncrossed(&self) {
        for b in 0..self.books.len() {
            let (bid, ask) = (
                self.priority(b, Side::Buy).first().map(|o| o.price),
                self.priority(b, Side::Sell).first().map(|o| o.price),
            );
            if let (Some(bid), Some(ask)) = (bid, ask) {
                assert!(bid < ask, "reference book {b} crossed");
            }
        }
    }
}

struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Builds random commands that reach every rule, using tokens it has sent.
struct Generator {
    rng: Rng,
    sent: Vec<(u16, Token)>,
    /// The live orders' tokens (from the model), so that most cancels and replaces hit.
    live: Vec<(u16, Token, usize)>,
    counter: u64,
    stocks: Vec<StockCode>,
    references: Vec<u32>,
}

impl Generator {
    fn token(&mut self) -> Token {
        self.counter += 1;
        Token::from_text(&format!("t{}", self.counter)).unwrap()
    }

    /// A token to cancel or replace, and the book it is most likely in.
    fn old_token(&mut self) -> (u16, Token, usize) {
        if !self.live.is_empty() && self.rng.chance(75) {
            return self.live[self.rng.below(self.live.len() as u64) as usize];
        }
        let book = self.rng.below(self.stocks.len() as u64) as usize;
        if self.sent.is_empty() || self.rng.chance(3) {
            return (self.rng.below(3) as u16, self.token(), book);
        }
        let recent = self.sent.len().min(400) as u64;
        let (user, token) = self.sent[self.sent.len() - 1 - self.rng.below(recent) as usize];
        (user, token, book)
    }

    fn wire_price(&mut self, book: usize) -> u32 {
        let r = self.references[book];
        let fen = match self.rng.below(100) {
            0 => r * 110 / 100 + 1,          // one tick above the band
            1 => (r * 90).div_ceil(100) - 1, // one tick below
            2 => 0,
            _ => r - 15 + self.rng.below(31) as u32,
        };
        if self.rng.chance(1) { fen * 100 + 37 } else { fen * 100 }
    }

    fn new_order(&mut self) -> Command {
        let book = self.rng.below(self.stocks.len() as u64) as usize;
        let user = self.rng.below(3) as u16;
        let token = self.token();
        self.sent.push((user, token));
        let side = if self.rng.chance(50) { Side::Buy } else { Side::Sell };
        let qty = match self.rng.below(200) {
            0 => 0,
            1 => 100_000,
            2 => 99_999,
            _ => 1 + self.rng.below(60) as u32,
        };
        let mut o = NewOrder::limit(
            UserId::new(user),
            token,
            AccountId::new(self.rng.below(20) as u32),
            side,
            qty,
            self.stocks[book],
            0,
        );
        o.price = self.wire_price(book);
        self.order_type(&mut o);
        o.stock = if self.rng.chance(1) { StockCode::from_text("XYZ").unwrap() } else { o.stock };
        Command::NewOrder(o)
    }

    fn order_type(&mut self, o: &mut NewOrder) {
        match self.rng.below(100) {
            0..=9 => o.tif = 0,
            10..=14 => (o.tif, o.min_qty) = (0, o.qty.tonnes()),
            15..=18 => (o.tif, o.price) = (0, MARKET),
            19..=23 => o.display = b'P',
            24 => o.tif = 7,
            25 => o.display = b'X',
            26 => o.min_qty = 3,
            27 => o.cross_type = b'Y',
            28 => o.price = MARKET,
            _ => {}
        }
    }

    fn replace(&mut self) -> Command {
        let (user, token, book) = self.old_token();
        let new_token = self.token();
        self.sent.push((user, new_token));
        let (tif, min_qty) = match self.rng.below(20) {
            0 => (0, 0),
            1 => (5, 0),
            _ => (99_999, 0),
        };
        let display = if self.rng.chance(5) { b'P' } else { b'Y' };
        let qty = Qty::new(self.rng.below(60) as u32);
        let price = self.wire_price(book);
        Command::Replace(Replace { user: UserId::new(user), token, new_token, qty, price, tif, display, min_qty })
    }

    fn next(&mut self) -> Command {
        match self.rng.below(1000) {
            0..=449 => self.new_order(),
            450..=599 => {
                let (user, token, _) = self.old_token();
                let qty = if self.rng.chance(60) { 0 } else { self.rng.below(40) as u32 };
                Command::Cancel(Cancel { user: UserId::new(user), token, qty: Qty::new(qty) })
            }
            600..=979 => self.replace(),
            980..=981 => Command::Halt(InstrumentId::new(self.rng.below(3) as u8)),
            982..=991 => Command::Resume(InstrumentId::new(self.rng.below(3) as u8)),
            992..=994 => Command::CancelAccount(AccountId::new(self.rng.below(20) as u32)),
            995 => Command::CancelUser(UserId::new(self.rng.below(4) as u16)),
            996 => Command::Roll,
            997 => {
                let (user, token, _) = self.old_token();
                Command::Reject(GatewayReject { user: UserId::new(user), token, reason: RejectReason::Throttled })
            }
            _ => Command::Clock,
        }
    }
}

fn config(stp: StpMode, orders_max: u32) -> EngineConfig {
    let mut config = EngineConfig::demo();
    config.instruments = vec![
        InstrumentConfig { code: "AA".into(), prev_close: price(1_000) },
        InstrumentConfig { code: "BB".into(), prev_close: price(2_000) },
    ];
    config.stp = stp;
    config.orders_max = orders_max;
    config
}

/// Runs `count` commands through engine and model; returns event counts by kind.
fn differential(seed: u64, config: EngineConfig, count: u64) -> std::collections::BTreeMap<String, u64> {
    let mut engine = Engine::new(config.clone()).unwrap();
    let mut model = Model::new(&config);
    let stocks = model.books.iter().map(|b| b.code).collect();
    let references = model.books.iter().map(|b| b.reference).collect();
    let mut generator =
        Generator { rng: Rng(seed), sent: Vec::new(), live: Vec::new(), counter: 0, stocks, references };
    let mut kinds = std::collections::BTreeMap::new();
    let mut got = Vec::new();
    for i in 0..count {
        // Rolls move the references: keep generated prices near them.
        generator.references = model.books.iter().map(|b| b.reference).collect();
        generator.live = model
            .books
            .iter()
            .enumerate()
            .flat_map(|(i, b)| b.orders.iter().map(move |o| (o.user, tok(o.token), i)))
            .collect();
        let command = generator.next();
        let now = Timestamp::from_nanos(1_000 + i);
        got.clear();
        engine.apply(&command, now, &mut got);
        let expected = model.apply(&command, now);
        assert_eq!(got, expected, "seed {seed}, command {i}: {command:?}");
        engine.check_invariants();
        if i % 1_000 == 0 {
            model.check_uncrossed();
            assert_eq!(engine.state_hash(), model.state_hash(), "seed {seed}: state hash after command {i}");
        }
        for e in &got {
            let kind = format!("{e:?}");
            *kinds.entry(kind[..kind.find(['(', ' ', '{']).unwrap_or(kind.len())].to_string()).or_insert(0) += 1;
            if let Event::Rejected { reason, .. } = e {
                *kinds.entry(format!("Rejected {}", reason.letter() as char)).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(engine.state_hash(), model.state_hash(), "seed {seed}: final state hash");
    kinds
}

fn seed() -> u64 {
    std::env::var("CARBONX_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xCA4B_0001)
}

#[test]
fn a_million_commands_agree_with_the_reference_book() {
    let seed = seed();
    println!("seed {seed}");
    let mut totals = std::collections::BTreeMap::new();
    for (k, stp) in [StpMode::CancelNewest, StpMode::CancelOldest, StpMode::CancelBoth].into_iter().enumerate() {
        for (kind, n) in differential(seed + k as u64, config(stp, 1 << 16), 300_000) {
            *totals.entry(kind).or_insert(0) += n;
        }
    }
    for (kind, n) in differential(seed + 3, config(StpMode::CancelNewest, 10), 100_000) {
        *totals.entry(kind).or_insert(0) += n;
    }
    println!("{totals:#?}");
    // The stream must reach every rule, or agreeing proves little.
    for kind in ["Executed", "BookReplace", "BookReduce", "CancelRejected", "DailyStats", "TradingState"] {
        assert!(totals.get(kind).copied().unwrap_or(0) > 100, "too few {kind}: {totals:?}");
    }
    for letter in "ZSXKDNOHPFUV".chars() {
        assert!(totals.get(&format!("Rejected {letter}")).copied().unwrap_or(0) > 0, "no {letter} rejects: {totals:?}");
    }
}
