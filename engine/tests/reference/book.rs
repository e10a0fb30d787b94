//! The model's listing books: a `Vec` of resting orders per book, sorted
//! into priority order when needed; validation, matching, cancel, replace.

use super::*;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Resting {
    pub(crate) id: u64,
    pub(crate) user: u16,
    pub(crate) token: [u8; 14],
    pub(crate) account: u32,
    pub(crate) side: Side,
    pub(crate) price: u32,
    pub(crate) open: u32,
    pub(crate) capacity: u8,
    /// Time priority: smaller is older.
    pub(crate) seq: u64,
}

pub(crate) struct RefBook {
    pub(crate) code: StockCode,
    pub(crate) reference: u32,
    pub(crate) lower: u32,
    pub(crate) upper: u32,
    pub(crate) halted: bool,
    pub(crate) announced: Option<TradingState>,
    pub(crate) orders: Vec<Resting>,
    pub(crate) tally: Tally,
    pub(crate) block_tally: Tally,
    pub(crate) auction_tally: Tally,
}

/// An incoming order while it trades.
#[derive(Clone, Copy)]
pub(crate) struct Taker {
    pub(crate) user: u16,
    pub(crate) token: [u8; 14],
    pub(crate) id: u64,
    pub(crate) account: u32,
    pub(crate) side: Side,
    pub(crate) limit: u32,
    pub(crate) qty: u32,
    pub(crate) capacity: u8,
}

impl Taker {
    fn lock(&self, book: usize) -> Lock {
        Lock { account: self.account, book, side: self.side, qty: self.qty, price: self.limit }
    }
}

impl Resting {
    fn lock(&self, book: usize) -> Lock {
        Lock { account: self.account, book, side: self.side, qty: self.open, price: self.price }
    }
}

impl Model {
    /// One side of a book in priority order: best price first, then oldest.
    pub(crate) fn priority(&self, book: usize, side: Side) -> Vec<Resting> {
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

    pub(crate) fn new_order(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        let token = *o.token.bytes();
        if self.token_live(o.user.get(), token) {
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
        self.lock(&taker.lock(book));
        self.execute(book, taker, tif, out);
    }

    /// A listing order or a waiting block order holds this token.
    pub(crate) fn token_live(&self, user: u16, token: [u8; 14]) -> bool {
        self.find(user, token).is_some()
            || self.blocks.iter().any(|b| b.user == user && b.token == token)
            || self.find_bid(user, token).is_some()
    }

    fn check_new(&self, o: &NewOrder) -> Result<(usize, Option<u32>, TimeInForce), RejectReason> {
        if !self.known(o.account.get()) {
            return Err(RejectReason::NotEntitled);
        }
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
        let b = &self.books[book];
        let lock_price = limit.unwrap_or(if o.side == Side::Buy { b.upper } else { b.lower });
        self.risk(&Lock { account: o.account.get(), book, side: o.side, qty, price: lock_price })?;
        if tif == TimeInForce::Day && self.live_count() >= self.orders_max {
            return Err(RejectReason::CapacityFull);
        }
        Ok((book, limit, tif))
    }

    pub(crate) fn take_id(&mut self) -> u64 {
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

    fn cancel_taker(&mut self, book: usize, t: &mut Taker, reason: CancelReason, out: &mut Vec<Event>) {
        self.release(&t.lock(book));
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
        self.release(&o.lock(book));
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
            return self.cancel_taker(book, &mut t, CancelReason::ImmediateOrCancel, out);
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
                        return self.cancel_taker(book, &mut t, CancelReason::SelfTrade, out);
                    }
                    StpMode::CancelOldest => {
                        self.remove_resting(book, m.id, CancelReason::SelfTrade, out);
                        continue;
                    }
                    StpMode::CancelBoth => {
                        self.remove_resting(book, m.id, CancelReason::SelfTrade, out);
                        return self.cancel_taker(book, &mut t, CancelReason::SelfTrade, out);
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
            self.cancel_taker(book, &mut t, CancelReason::ImmediateOrCancel, out);
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
        record(&mut b.tally, m.price, qty);
        let (maker_lock, taker_lock) = (m.lock(book), t.lock(book));
        if let Some(a) = &mut self.accounts {
            a.settle(&maker_lock, &taker_lock, qty, m.price);
        }
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

    pub(crate) fn cancel(&mut self, c: &Cancel, out: &mut Vec<Event>) {
        let reject = Event::CancelRejected { user: c.user, token: c.token };
        let Some((book, i)) = self.find(c.user.get(), *c.token.bytes()) else {
            return self.cancel_block(c, out);
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
        self.release(&Lock { qty: o.open - keep, ..o.lock(book) });
        let decrement = Qty::new(o.open - keep);
        let id = OrderId::new(o.id);
        out.push(Event::Cancelled { user: c.user, token: c.token, id, decrement, reason: CancelReason::User });
        out.push(Event::BookReduce { instrument: InstrumentId::new(book as u8), id, cancelled: decrement });
    }

    pub(crate) fn replace(&mut self, r: &Replace, out: &mut Vec<Event>) {
        let Some((book, i)) = self.find(r.user.get(), *r.token.bytes()) else {
            // A block order cannot be replaced (`O`); anything else is not live (`U`).
            let block = self.blocks.iter().any(|b| b.user == r.user.get() && b.token == *r.token.bytes())
                || self.find_bid(r.user.get(), *r.token.bytes()).is_some();
            let reason = if block { RejectReason::InvalidField } else { RejectReason::NotLive };
            return out.push(Event::Rejected { user: r.user, token: r.new_token, reason });
        };
        if r.new_token != r.token && self.token_live(r.user.get(), *r.new_token.bytes()) {
            return;
        }
        let old = self.books[book].orders[i];
        let checked = self
            .validate_fields(r.qty.tonnes(), r.price, r.tif, r.display, r.min_qty, false)
            .and_then(|(limit, tif, post)| {
                self.validate_market(book, old.side, limit, post)?;
                Ok((limit.unwrap(), tif))
            })
            .and_then(|(limit, tif)| {
                // The old locks go, the new ones must fit; if not, the old stay.
                let (before, new) = (old.lock(book), Lock { qty: r.qty.tonnes(), price: limit, ..old.lock(book) });
                self.release(&before);
                let fits = self.risk(&new);
                self.lock(if fits.is_ok() { &new } else { &before });
                fits.map(|()| (limit, tif))
            });
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
    pub(crate) fn drain(&mut self, pred: impl Fn(&Resting) -> bool, reason: CancelReason, out: &mut Vec<Event>) {
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

    pub(crate) fn check_uncrossed(&self) {
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
