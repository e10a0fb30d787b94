//! The differential test: the engine against a naive reference book.
//!
//! The reference is written again from docs/RULES.md and docs/PROTOCOL.md in the
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
//!
//! With accounts the model also keeps every account's cash and holdings
//! (available, locked, bought today, open buys against the cap) in plain
//! vectors, written again from RULES §6:
//! what an order locks, price improvement given back at each fill, T+1 at
//! the roll, block agreements matched with their mirror, one-way bidding
//! auctions allocated at the window's end, registry transfers. A second
//! run of 300,000 commands over 20 small accounts (so that `n`, `i`, `m`
//! happen) compares every event, checks conservation of cash and of each
//! instrument's tonnes (moved only by transfers) and that nothing goes
//! negative, and compares every balance with the engine's after every
//! command.

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
    block_tally: Tally,
    auction_tally: Tally,
}

/// One account's holding of one instrument, in tonnes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RefHolding {
    available: i64,
    locked: i64,
    bought_today: i64,
    open_buy: i64,
}

/// What one order holds: a buy `price × qty` of cash and `qty` against the
/// cap, a sell `qty` of sellable tonnes.
#[derive(Clone, Copy, Debug)]
struct Lock {
    account: u32,
    book: usize,
    side: Side,
    qty: u32,
    price: u32,
}

/// Cash (fen) and holdings per account, kept the plainest way.
struct RefAccounts {
    cash: Vec<(i64, i64)>,
    holdings: Vec<Vec<RefHolding>>,
    cap: Option<i64>,
    /// Totals at load, moved only by transfers.
    total_cash: i128,
    total_holdings: Vec<i128>,
}

/// A waiting block order.
#[derive(Clone, Copy, Debug)]
struct RefBlock {
    id: u64,
    user: u16,
    token: [u8; 14],
    account: u32,
    counterparty: u32,
    book: usize,
    side: Side,
    qty: u32,
    price: u32,
    deal: [u8; 8],
}

/// One sealed bid (`qty` 0: cancelled or, once the auction ended, done).
#[derive(Clone, Copy, Debug)]
struct RefBid {
    id: u64,
    user: u16,
    token: [u8; 14],
    account: u32,
    qty: u32,
    price: u32,
}

/// A one-way bidding auction.
#[derive(Clone, Debug)]
struct RefAuction {
    info: AuctionInfo,
    book: usize,
    bids: Vec<RefBid>,
    ended: bool,
}

impl RefAuction {
    fn seller_lock(&self, qty: u32) -> Lock {
        let i = &self.info;
        Lock { account: i.seller.get(), book: self.book, side: Side::Sell, qty, price: i.floor.fen() }
    }

    fn bid_lock(&self, b: &RefBid) -> Lock {
        Lock { account: b.account, book: self.book, side: Side::Buy, qty: b.qty, price: b.price }
    }
}

impl RefBlock {
    fn lock(&self) -> Lock {
        Lock { account: self.account, book: self.book, side: self.side, qty: self.qty, price: self.price }
    }
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
    accounts: Option<RefAccounts>,
    blocks: Vec<RefBlock>,
    block_qty_min: u32,
    block_band_pct: u32,
    blocks_max: usize,
    auctions: Vec<RefAuction>,
    auction_qty_min: u32,
    auction_bid_qty_min: u32,
    auctions_max: usize,
    auction_bids_max: usize,
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

impl RefAccounts {
    /// `cash[a]` fen and `holdings[a][book]` sellable tonnes per account.
    fn new(cash: &[i64], holdings: &[Vec<i64>], cap: Option<u32>) -> RefAccounts {
        let holdings: Vec<Vec<RefHolding>> = holdings
            .iter()
            .map(|h| h.iter().map(|&available| RefHolding { available, ..RefHolding::default() }).collect())
            .collect();
        let books = holdings.first().map_or(0, Vec::len);
        let total_holdings = (0..books).map(|b| holdings.iter().map(|h| i128::from(h[b].available)).sum()).collect();
        RefAccounts {
            cash: cash.iter().map(|&c| (c, 0)).collect(),
            holdings,
            cap: cap.map(i64::from),
            total_cash: cash.iter().map(|&c| i128::from(c)).sum(),
            total_holdings,
        }
    }

    fn known(&self, account: u32) -> bool {
        (account as usize) < self.cash.len()
    }

    /// The order of PROTOCOL §5.2: holdings `i` for a sell; cap `m`, then funds `n` for a buy.
    fn check(&self, l: &Lock) -> Result<(), RejectReason> {
        if !self.known(l.account) {
            return Err(RejectReason::NotEntitled);
        }
        let h = self.holdings[l.account as usize][l.book];
        let qty = i64::from(l.qty);
        match l.side {
            Side::Sell if h.available < qty => Err(RejectReason::ShortSale),
            Side::Sell => Ok(()),
            Side::Buy => {
                let owned = h.available + h.locked + h.bought_today;
                if self.cap.is_some_and(|cap| owned + h.open_buy + qty > cap) {
                    return Err(RejectReason::HoldingCap);
                }
                if i64::from(l.price) * qty > self.cash[l.account as usize].0 {
                    return Err(RejectReason::InsufficientFunds);
                }
                Ok(())
            }
        }
    }

    /// Takes (`sign` 1) or gives back (`sign` -1) what `l` holds.
    fn hold(&mut self, l: &Lock, sign: i64) {
        let qty = sign * i64::from(l.qty);
        let h = &mut self.holdings[l.account as usize][l.book];
        match l.side {
            Side::Sell => {
                h.available -= qty;
                h.locked += qty;
            }
            Side::Buy => {
                h.open_buy += qty;
                let cash = &mut self.cash[l.account as usize];
                cash.0 -= i64::from(l.price) * qty;
                cash.1 += i64::from(l.price) * qty;
            }
        }
    }

    /// One fill of `qty` at `price` between two orders' locks.
    fn settle(&mut self, a: &Lock, b: &Lock, qty: u32, price: u32) {
        let (buyer, seller) = if a.side == Side::Buy { (a, b) } else { (b, a) };
        let (qty, paid, locked) =
            (i64::from(qty), i64::from(price) * i64::from(qty), i64::from(buyer.price) * i64::from(qty));
        let cash = &mut self.cash[buyer.account as usize];
        cash.1 -= locked;
        cash.0 += locked - paid;
        self.cash[seller.account as usize].0 += paid;
        let h = &mut self.holdings[buyer.account as usize][buyer.book];
        h.open_buy -= qty;
        h.bought_today += qty;
        self.holdings[seller.account as usize][seller.book].locked -= qty;
    }

    /// T+1: what was bought today becomes sellable at the roll.
    fn settle_day(&mut self) {
        for h in self.holdings.iter_mut().flatten() {
            h.available += std::mem::take(&mut h.bought_today);
        }
    }

    /// A registry transfer into or out of available cash or sellable tonnes.
    fn transfer(&mut self, t: &Transfer) -> bool {
        if !self.known(t.account.get()) {
            return false;
        }
        let a = t.account.get() as usize;
        let (balance, total) = match t.asset {
            Asset::Cash => (&mut self.cash[a].0, &mut self.total_cash),
            Asset::Holding(i) if i.index() < self.total_holdings.len() => {
                (&mut self.holdings[a][i.index()].available, &mut self.total_holdings[i.index()])
            }
            Asset::Holding(_) => return false,
        };
        match balance.checked_add(t.amount).filter(|v| *v >= 0) {
            Some(after) => {
                *balance = after;
                *total += i128::from(t.amount);
                true
            }
            None => false,
        }
    }

    /// Conservation and nothing negative, then equality with the engine's table.
    fn check_against(&self, table: &accounts::AccountTable) {
        let cash: i128 = self.cash.iter().map(|&(a, l)| i128::from(a) + i128::from(l)).sum();
        assert_eq!(cash, self.total_cash, "reference: total cash not conserved");
        for (b, total) in self.total_holdings.iter().enumerate() {
            let owned: i128 =
                self.holdings.iter().map(|h| i128::from(h[b].available + h[b].locked + h[b].bought_today)).sum();
            assert_eq!(owned, *total, "reference: holdings of book {b} not conserved");
        }
        for (a, (&(available, locked), holdings)) in self.cash.iter().zip(&self.holdings).enumerate() {
            let account = AccountId::new(a as u32);
            assert!(available >= 0 && locked >= 0, "account {a} cash negative");
            let c = table.cash(account).unwrap();
            assert_eq!((c.available, c.locked), (available, locked), "account {a}: cash");
            for (b, h) in holdings.iter().enumerate() {
                assert!(h.available >= 0 && h.locked >= 0 && h.bought_today >= 0 && h.open_buy >= 0);
                let e = table.holding(account, InstrumentId::new(b as u8)).unwrap();
                let engine = RefHolding {
                    available: e.available,
                    locked: e.locked,
                    bought_today: e.bought_today,
                    open_buy: e.open_buy,
                };
                assert_eq!(engine, *h, "account {a} book {b}: holding");
            }
        }
    }
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
                    block_tally: Tally::default(),
                    auction_tally: Tally::default(),
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
            accounts: None,
            blocks: Vec::new(),
            block_qty_min: config.block_qty_min.tonnes(),
            block_band_pct: config.block_band_pct,
            blocks_max: config.blocks_max as usize,
            auctions: Vec::new(),
            auction_qty_min: config.auction_qty_min.tonnes(),
            auction_bid_qty_min: config.auction_bid_qty_min.tonnes(),
            auctions_max: config.auctions_max as usize,
            auction_bids_max: config.auction_bids_max as usize,
        }
    }

    /// Every lock helper is a no-op without accounts (the book alone).
    fn risk(&self, l: &Lock) -> Result<(), RejectReason> {
        self.accounts.as_ref().map_or(Ok(()), |a| a.check(l))
    }

    fn lock(&mut self, l: &Lock) {
        if let Some(a) = &mut self.accounts {
            a.hold(l, 1);
        }
    }

    fn release(&mut self, l: &Lock) {
        if let Some(a) = &mut self.accounts {
            a.hold(l, -1);
        }
    }

    fn known(&self, account: u32) -> bool {
        self.accounts.as_ref().is_none_or(|a| a.known(account))
    }

    fn apply(&mut self, cmd: &Command, now: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        if self.session_day.is_none() {
            self.session_day = Some(first_trading_day(local_day(now)));
            self.announce_references(&mut out);
        }
        self.end_auctions(now, &mut out);
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
                self.drain_blocks(|b| b.account == a, CancelReason::Supervisory, &mut out);
                self.drain_bids(|b| b.account == a, CancelReason::Supervisory, &mut out);
            }
            Command::CancelUser(u) => {
                let u = u.get();
                self.drain(|o| o.user == u, CancelReason::User, &mut out);
                self.drain_blocks(|b| b.user == u, CancelReason::User, &mut out);
                self.drain_bids(|b| b.user == u, CancelReason::User, &mut out);
            }
            Command::Transfer(t) => {
                let accepted = self.accounts.as_mut().is_some_and(|a| a.transfer(t));
                out.push(Event::Transferred { transfer: *t, accepted });
            }
            Command::Reject(g) => out.push(Event::Rejected { user: g.user, token: g.token, reason: g.reason }),
            Command::NewBlock(b) => self.new_block(b, &mut out),
            Command::AnnounceAuction(a) => self.announce(a, now, &mut out),
            Command::AuctionBid(b) => self.bid(b, now, &mut out),
            Command::Pick(_) => panic!("the model does not generate pick orders"),
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
    fn token_live(&self, user: u16, token: [u8; 14]) -> bool {
        self.find(user, token).is_some()
            || self.blocks.iter().any(|b| b.user == user && b.token == token)
            || self.find_bid(user, token).is_some()
    }

    /// A live bid: (auction index, bid index).
    fn find_bid(&self, user: u16, token: [u8; 14]) -> Option<(usize, usize)> {
        self.auctions.iter().enumerate().filter(|(_, a)| !a.ended).find_map(|(i, a)| {
            a.bids.iter().position(|b| b.qty > 0 && b.user == user && b.token == token).map(|j| (i, j))
        })
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

    fn cancel(&mut self, c: &Cancel, out: &mut Vec<Event>) {
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

    fn replace(&mut self, r: &Replace, out: &mut Vec<Event>) {
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

    /// A block order: checks in the engine's documented order, accept,
    /// lock, then trade with the earliest waiting mirror or wait.
    fn new_block(&mut self, c: &NewBlock, out: &mut Vec<Event>) {
        let (user, token) = (c.user.get(), *c.token.bytes());
        if self.token_live(user, token) {
            return;
        }
        let (book, price) = match self.check_block(c) {
            Ok(v) => v,
            Err(reason) => return out.push(Event::Rejected { user: c.user, token: c.token, reason }),
        };
        let id = self.take_id();
        out.push(Event::Accepted(OrderInfo {
            method: Method::Block,
            user: c.user,
            token: c.token,
            id: OrderId::new(id),
            account: c.account,
            instrument: InstrumentId::new(book as u8),
            side: c.side,
            qty: c.qty,
            wire_price: c.price,
            tif: 99_999,
            display: b'Y',
            capacity: b'A',
            min_qty: 0,
        }));
        let (account, counterparty, side, qty, deal) =
            (c.account.get(), c.counterparty.get(), c.side, c.qty.tonnes(), c.deal_id);
        let order = RefBlock { id, user, token, account, counterparty, book, side, qty, price, deal };
        self.lock(&order.lock());
        let mirror = |w: &RefBlock| {
            w.book == book
                && w.price == price
                && w.qty == qty
                && w.deal == deal
                && w.side != side
                && w.account == counterparty
                && w.counterparty == account
        };
        match self.blocks.iter().position(mirror) {
            Some(i) => {
                let maker = self.blocks.remove(i);
                self.trade_blocks(&maker, &order, out);
            }
            None => self.blocks.push(order),
        }
    }

    fn check_block(&self, c: &NewBlock) -> Result<(usize, u32), RejectReason> {
        if !self.known(c.account.get()) {
            return Err(RejectReason::NotEntitled);
        }
        if c.qty.tonnes() < self.block_qty_min {
            return Err(RejectReason::InvalidQty);
        }
        let book = self.books.iter().position(|b| b.code == c.stock).ok_or(RejectReason::UnknownStock)?;
        if c.price % 100 != 0 || c.price / 100 == 0 || c.price / 100 > 999_999 {
            return Err(RejectReason::InvalidPrice);
        }
        let price = c.price / 100;
        let duplicate = self.blocks.iter().any(|b| b.account == c.account.get() && b.deal == c.deal_id);
        if c.counterparty == c.account || !self.known(c.counterparty.get()) || duplicate {
            return Err(RejectReason::InvalidField);
        }
        if self.books[book].halted {
            return Err(RejectReason::Halted);
        }
        let (lower, upper) = band(self.books[book].reference, self.block_band_pct);
        if price < lower || price > upper {
            return Err(RejectReason::OutsideBand);
        }
        self.risk(&Lock { account: c.account.get(), book, side: c.side, qty: c.qty.tonnes(), price })?;
        if self.blocks.len() >= self.blocks_max {
            return Err(RejectReason::CapacityFull);
        }
        Ok((book, price))
    }

    fn trade_blocks(&mut self, maker: &RefBlock, taker: &RefBlock, out: &mut Vec<Event>) {
        if let Some(a) = &mut self.accounts {
            a.settle(&maker.lock(), &taker.lock(), taker.qty, taker.price);
        }
        record(&mut self.books[taker.book].block_tally, taker.price, taker.qty);
        let match_id = MatchId::new(self.next_match);
        self.next_match += 1;
        let party = |b: &RefBlock| Party {
            user: UserId::new(b.user),
            token: tok(b.token),
            id: OrderId::new(b.id),
            account: AccountId::new(b.account),
        };
        out.push(Event::Executed(Execution {
            method: Method::Block,
            instrument: InstrumentId::new(taker.book as u8),
            match_id,
            price: price(taker.price),
            qty: Qty::new(taker.qty),
            taker_side: taker.side,
            maker: party(maker),
            taker: party(taker),
        }));
    }

    /// A cancel naming no listing order: a waiting block is cancelled in
    /// full (a reduce is refused); anything else is a Cancel Reject.
    fn cancel_block(&mut self, c: &Cancel, out: &mut Vec<Event>) {
        if let Some((a, j)) = self.find_bid(c.user.get(), *c.token.bytes()) {
            let bid = self.auctions[a].bids[j];
            if c.qty.tonnes() != 0 && c.qty.tonnes() >= bid.qty {
                return out.push(Event::CancelRejected { user: c.user, token: c.token });
            }
            return self.take_from_bid(a, j, bid.qty - c.qty.tonnes(), CancelReason::User, out);
        }
        let found = self.blocks.iter().position(|b| b.user == c.user.get() && b.token == *c.token.bytes());
        match found {
            Some(i) if c.qty.is_zero() => self.remove_block(i, CancelReason::User, out),
            _ => out.push(Event::CancelRejected { user: c.user, token: c.token }),
        }
    }

    fn remove_block(&mut self, i: usize, reason: CancelReason, out: &mut Vec<Event>) {
        let b = self.blocks.remove(i);
        self.release(&b.lock());
        let (user, token, id, decrement) = (UserId::new(b.user), tok(b.token), OrderId::new(b.id), Qty::new(b.qty));
        out.push(Event::Cancelled { user, token, id, decrement, reason });
    }

    /// Cancels matching waiting blocks, oldest first.
    fn drain_blocks(&mut self, pred: impl Fn(&RefBlock) -> bool, reason: CancelReason, out: &mut Vec<Event>) {
        let mut i = 0;
        while i < self.blocks.len() {
            if pred(&self.blocks[i]) {
                self.remove_block(i, reason, out);
            } else {
                i += 1;
            }
        }
    }

    /// An operator's announcement: refusals in the engine's documented
    /// order, then the seller's tonnes locked.
    fn announce(&mut self, a: &AnnounceAuction, now: Timestamp, out: &mut Vec<Event>) {
        let checked = self.check_announcement(a, now);
        let book = match checked {
            Ok(book) => book,
            Err(reason) => return out.push(Event::AuctionRefused { id: a.id, reason }),
        };
        let b = &self.books[book];
        let floor = if a.floor == FloorRule::PreviousClose { b.reference } else { b.lower };
        let info = AuctionInfo {
            id: a.id,
            order_id: OrderId::new(self.take_id()),
            instrument: InstrumentId::new(book as u8),
            seller: a.seller,
            seller_user: a.seller_user,
            qty: a.qty,
            start: a.start,
            end: a.end,
            pricing: a.pricing,
            floor_rule: a.floor,
            floor: price(floor),
            cap: price(self.books[book].upper),
        };
        let auction = RefAuction { info, book, bids: Vec::new(), ended: false };
        self.lock(&auction.seller_lock(a.qty.tonnes()));
        self.auctions.push(auction);
        out.push(Event::AuctionAnnounced(info));
    }

    fn check_announcement(&self, a: &AnnounceAuction, now: Timestamp) -> Result<usize, AuctionRefusal> {
        if self.auctions.iter().any(|x| x.info.id == a.id) {
            return Err(AuctionRefusal::DuplicateId);
        }
        let book = self.books.iter().position(|b| b.code == a.stock).ok_or(AuctionRefusal::UnknownStock)?;
        if !self.known(a.seller.get()) {
            return Err(AuctionRefusal::UnknownAccount);
        }
        if a.qty.tonnes() < self.auction_qty_min {
            return Err(AuctionRefusal::InvalidQty);
        }
        if a.end <= a.start || a.end <= now {
            return Err(AuctionRefusal::BadWindow);
        }
        let sell = Lock { account: a.seller.get(), book, side: Side::Sell, qty: a.qty.tonnes(), price: 0 };
        if self.risk(&sell).is_err() {
            return Err(AuctionRefusal::Holdings);
        }
        if self.auctions.len() >= self.auctions_max {
            return Err(AuctionRefusal::CapacityFull);
        }
        Ok(book)
    }

    /// A sealed bid: checked, accepted with cross type `A`, its cash locked.
    fn bid(&mut self, c: &AuctionBid, now: Timestamp, out: &mut Vec<Event>) {
        let (user, token) = (c.user.get(), *c.token.bytes());
        if self.token_live(user, token) {
            return;
        }
        let (a, fen) = match self.check_bid(c, now) {
            Ok(v) => v,
            Err(reason) => return out.push(Event::Rejected { user: c.user, token: c.token, reason }),
        };
        let id = self.take_id();
        out.push(Event::Accepted(OrderInfo {
            method: Method::Auction,
            user: c.user,
            token: c.token,
            id: OrderId::new(id),
            account: c.account,
            instrument: InstrumentId::new(self.auctions[a].book as u8),
            side: Side::Buy,
            qty: c.qty,
            wire_price: c.price,
            tif: 99_999,
            display: b'Y',
            capacity: b'A',
            min_qty: 0,
        }));
        let bid = RefBid { id, user, token, account: c.account.get(), qty: c.qty.tonnes(), price: fen };
        self.lock(&self.auctions[a].bid_lock(&bid));
        self.auctions[a].bids.push(bid);
    }

    fn check_bid(&self, c: &AuctionBid, now: Timestamp) -> Result<(usize, u32), RejectReason> {
        if !self.known(c.account.get()) {
            return Err(RejectReason::NotEntitled);
        }
        if c.qty.tonnes() == 0 || c.qty.tonnes() < self.auction_bid_qty_min {
            return Err(RejectReason::InvalidQty);
        }
        let book = self.books.iter().position(|b| b.code == c.stock).ok_or(RejectReason::UnknownStock)?;
        if c.price % 100 != 0 || c.price / 100 == 0 || c.price / 100 > 999_999 {
            return Err(RejectReason::InvalidPrice);
        }
        let fen = c.price / 100;
        let open = |x: &RefAuction| {
            x.info.id == c.auction && x.book == book && !x.ended && x.info.start <= now && now < x.info.end
        };
        let a = self.auctions.iter().position(open).ok_or(RejectReason::InvalidField)?;
        let auction = &self.auctions[a];
        if auction.info.seller == c.account {
            return Err(RejectReason::InvalidField);
        }
        if self.books[book].halted {
            return Err(RejectReason::Halted);
        }
        if fen < auction.info.floor.fen() || fen > auction.info.cap.fen() {
            return Err(RejectReason::OutsideBand);
        }
        self.risk(&Lock { account: c.account.get(), book, side: Side::Buy, qty: c.qty.tonnes(), price: fen })?;
        if auction.bids.len() >= self.auction_bids_max {
            return Err(RejectReason::CapacityFull);
        }
        Ok((a, fen))
    }

    /// Cancels `decrement` tonnes of a live bid and gives back their cash.
    fn take_from_bid(&mut self, a: usize, j: usize, decrement: u32, reason: CancelReason, out: &mut Vec<Event>) {
        let bid = self.auctions[a].bids[j];
        let lock = self.auctions[a].bid_lock(&RefBid { qty: decrement, ..bid });
        self.release(&lock);
        self.auctions[a].bids[j].qty -= decrement;
        let (user, token, id) = (UserId::new(bid.user), tok(bid.token), OrderId::new(bid.id));
        out.push(Event::Cancelled { user, token, id, decrement: Qty::new(decrement), reason });
    }

    fn drain_bids(&mut self, pred: impl Fn(&RefBid) -> bool, reason: CancelReason, out: &mut Vec<Event>) {
        for a in 0..self.auctions.len() {
            for j in 0..self.auctions[a].bids.len() {
                let bid = self.auctions[a].bids[j];
                if !self.auctions[a].ended && bid.qty > 0 && pred(&bid) {
                    self.take_from_bid(a, j, bid.qty, reason, out);
                }
            }
        }
    }

    /// Every open auction whose window ended by `now`, in announcement order.
    fn end_auctions(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        for a in 0..self.auctions.len() {
            if !self.auctions[a].ended && self.auctions[a].info.end <= now {
                self.allocate(a, out);
            }
        }
    }

    /// Rank by price, then time; fill up to the offered tonnes (the
    /// marginal bid partly); uniform: everyone pays the lowest winning
    /// price; pay-as-bid: each its own.
    fn allocate(&mut self, a: usize, out: &mut Vec<Event>) {
        let live = self.auctions[a].bids.iter().filter(|b| b.qty > 0).count() as u32;
        self.auctions[a].bids.sort_by_key(|b| (u32::MAX - b.price, b.id));
        let info = self.auctions[a].info;
        let mut fills = Vec::new();
        let mut left = info.qty.tonnes();
        for (j, b) in self.auctions[a].bids.iter().enumerate() {
            let fill = b.qty.min(left);
            if fill > 0 {
                left -= fill;
                fills.push((j, fill, b.price));
            }
        }
        let sold = info.qty.tonnes() - left;
        let clearing = fills.last().map(|&(_, _, p)| p);
        let uniform = info.pricing == Pricing::Uniform;
        let pays = |own: u32| if uniform { clearing.unwrap() } else { own };
        let turnover: u128 = fills.iter().map(|&(_, q, p)| u128::from(pays(p)) * u128::from(q)).sum();
        let average = (sold > 0).then(|| ((2 * turnover + u128::from(sold)) / (2 * u128::from(sold))) as u32);
        let result_price = if uniform { clearing } else { average };
        self.push_result(a, sold, result_price, turnover, fills.len() as u32, live, false, out);
        for &(j, fill, own) in &fills {
            self.fill_bid(a, j, fill, pays(own), out);
        }
        self.finish(a, left, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_result(
        &mut self,
        a: usize,
        sold: u32,
        price_fen: Option<u32>,
        turnover: u128,
        winners: u32,
        bids: u32,
        expired: bool,
        out: &mut Vec<Event>,
    ) {
        let i = self.auctions[a].info;
        out.push(Event::AuctionResult(AuctionResult {
            id: i.id,
            instrument: i.instrument,
            pricing: i.pricing,
            offered: i.qty,
            sold: Qty::new(sold),
            price: price_fen.map(price),
            turnover,
            winners,
            bids,
            expired,
        }));
    }

    fn fill_bid(&mut self, a: usize, j: usize, fill: u32, at: u32, out: &mut Vec<Event>) {
        let auction = &self.auctions[a];
        let bid = auction.bids[j];
        let (seller, buyer) = (auction.seller_lock(fill), auction.bid_lock(&bid));
        let (info, book) = (auction.info, auction.book);
        if let Some(accounts) = &mut self.accounts {
            accounts.settle(&seller, &buyer, fill, at);
        }
        record(&mut self.books[book].auction_tally, at, fill);
        self.auctions[a].bids[j].qty -= fill;
        let match_id = MatchId::new(self.next_match);
        self.next_match += 1;
        let mut seller_token = [b' '; 14];
        seller_token[..8].copy_from_slice(info.id.bytes());
        out.push(Event::Executed(Execution {
            method: Method::Auction,
            instrument: info.instrument,
            match_id,
            price: price(at),
            qty: Qty::new(fill),
            taker_side: Side::Buy,
            maker: Party { user: info.seller_user, token: tok(seller_token), id: info.order_id, account: info.seller },
            taker: Party {
                user: UserId::new(bid.user),
                token: tok(bid.token),
                id: OrderId::new(bid.id),
                account: AccountId::new(bid.account),
            },
        }));
    }

    /// What is left of every bid is cancelled (`T`), the unsold tonnes go back.
    fn finish(&mut self, a: usize, unsold: u32, out: &mut Vec<Event>) {
        for j in 0..self.auctions[a].bids.len() {
            let bid = self.auctions[a].bids[j];
            if bid.qty > 0 {
                self.release(&self.auctions[a].bid_lock(&bid));
                self.auctions[a].bids[j].qty = 0;
                let (user, token, id) = (UserId::new(bid.user), tok(bid.token), OrderId::new(bid.id));
                out.push(Event::Cancelled {
                    user,
                    token,
                    id,
                    decrement: Qty::new(bid.qty),
                    reason: CancelReason::Expired,
                });
            }
        }
        let seller = self.auctions[a].seller_lock(unsold);
        self.release(&seller);
        self.auctions[a].ended = true;
    }

    /// The close came first: no fill, bids cancelled in arrival order.
    fn expire(&mut self, a: usize, out: &mut Vec<Event>) {
        let live = self.auctions[a].bids.iter().filter(|b| b.qty > 0).count() as u32;
        self.push_result(a, 0, None, 0, 0, live, true, out);
        let offered = self.auctions[a].info.qty.tonnes();
        self.finish(a, offered, out);
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
        self.drain_blocks(|_| true, CancelReason::Expired, out);
        for a in 0..self.auctions.len() {
            if !self.auctions[a].ended {
                self.expire(a, out);
            }
        }
        for (i, b) in self.books.iter().enumerate() {
            let instrument = InstrumentId::new(i as u8);
            out.push(Event::DailyStats(daily(Method::Listing, instrument, b.reference, &b.tally)));
            out.push(Event::DailyStats(daily(Method::Block, instrument, b.reference, &b.block_tally)));
            out.push(Event::DailyStats(daily(Method::Auction, instrument, b.reference, &b.auction_tally)));
        }
        out.push(Event::Phase(Phase::Closed));
        for b in &mut self.books {
            b.reference = Self::close_of(b);
            (b.lower, b.upper) = band(b.reference, self.band_pct);
            b.tally = Tally::default();
            b.block_tally = Tally::default();
            b.auction_tally = Tally::default();
        }
        self.auctions.clear();
        if let Some(a) = &mut self.accounts {
            a.settle_day();
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

/// One trade in a day's tally.
fn record(tally: &mut Tally, price: u32, qty: u32) {
    tally.open.get_or_insert(price);
    tally.high = Some(tally.high.map_or(price, |h| h.max(price)));
    tally.low = Some(tally.low.map_or(price, |l| l.min(price)));
    tally.volume += u64::from(qty);
    tally.turnover += u128::from(price) * u128::from(qty);
    tally.trades += 1;
}

/// A day's statistics for one method: without trades every price is the reference.
fn daily(method: Method, instrument: InstrumentId, reference: u32, t: &Tally) -> DailyStats {
    let or_ref = |p: Option<u32>| price(p.unwrap_or(reference));
    // VWAP rounded half-up: floor(turnover / volume + 1/2).
    let close = if t.volume == 0 {
        reference
    } else {
        let v = u128::from(t.volume);
        ((2 * t.turnover + v) / (2 * v)) as u32
    };
    DailyStats {
        method,
        instrument,
        open: or_ref(t.open),
        high: or_ref(t.high),
        low: or_ref(t.low),
        close: price(close),
        volume: t.volume,
        turnover: t.turnover,
        trades: t.trades,
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
    /// With accounts: also block pairs (and mismatches) and registry transfers.
    accounts: bool,
    /// The mirror of the last block order, sent next most of the time.
    pending_block: Option<NewBlock>,
    /// The command's time (ns), for auction windows.
    now: u64,
    /// Announcements sent (id, book): most bids go to a recent one.
    announced: Vec<(AuctionId, usize)>,
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
        let account = if self.accounts { self.account() } else { AccountId::new(self.rng.below(20) as u32) };
        let mut o = NewOrder::limit(UserId::new(user), token, account, side, qty, self.stocks[book], 0);
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
        if self.accounts {
            match self.rng.below(1000) {
                0..=59 => return self.block(),
                60..=69 => return self.transfer(),
                70..=74 => return self.announce(),
                75..=134 => return self.auction_bid(),
                _ => {}
            }
        }
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

impl Generator {
    /// Account ids: mostly the 20 known ones, now and then an unknown one (`L`).
    fn account(&mut self) -> AccountId {
        AccountId::new(if self.rng.chance(1) { 20 } else { self.rng.below(20) as u32 })
    }

    /// A block order: the mirror of the previous one (sometimes spoiled:
    /// another price, quantity or deal), or a new agreement.
    fn block(&mut self) -> Command {
        let token = self.token();
        let user = UserId::new(self.rng.below(3) as u16);
        self.sent.push((user.get(), token));
        if let Some(mut mirror) = self.pending_block.take().filter(|_| self.rng.chance(80)) {
            (mirror.token, mirror.user) = (token, user);
            match self.rng.below(20) {
                0 => mirror.price += 100,
                1 => mirror.qty = Qty::new(mirror.qty.tonnes() + 1),
                2 => mirror.deal_id = *b"OTHER   ",
                _ => {}
            }
            return Command::NewBlock(mirror);
        }
        let book = self.rng.below(self.stocks.len() as u64) as usize;
        let r = self.references[book];
        let fen = r * 65 / 100 + self.rng.below(u64::from(r) * 70 / 100) as u32; // ±35%: some outside ±30%
        let qty = if self.rng.chance(2) { 99 } else { 100 + self.rng.below(100) as u32 };
        let side = if self.rng.chance(50) { Side::Buy } else { Side::Sell };
        let deal_id: [u8; 8] = format!("D{:<7}", self.rng.below(40)).as_bytes().try_into().unwrap();
        let (account, counterparty) = (self.account(), self.account());
        let stock = self.stocks[book];
        let order =
            NewBlock { user, token, account, counterparty, side, qty: Qty::new(qty), stock, price: fen * 100, deal_id };
        self.pending_block =
            Some(NewBlock { side: side.opposite(), account: counterparty, counterparty: account, ..order });
        Command::NewBlock(order)
    }

    fn auction_id(&mut self) -> AuctionId {
        AuctionId::from_text(&format!("A{}", self.rng.below(12))).unwrap()
    }

    /// An announcement: a window of a few hundred commands (the clock is
    /// one nanosecond per command), now and then a bad one.
    fn announce(&mut self) -> Command {
        let book = self.rng.below(self.stocks.len() as u64) as usize;
        let stock = if self.rng.chance(2) { StockCode::from_text("XYZ").unwrap() } else { self.stocks[book] };
        let qty = match self.rng.below(20) {
            0 => 99,
            1 => 5_000,
            _ => 100 + self.rng.below(200) as u32,
        };
        let start = self.now + self.rng.below(30);
        let end = if self.rng.chance(3) { start } else { start + 20 + self.rng.below(400) };
        let id = self.auction_id();
        self.announced.push((id, book));
        Command::AnnounceAuction(AnnounceAuction {
            id,
            stock,
            seller: self.account(),
            seller_user: UserId::new(self.rng.below(3) as u16),
            qty: Qty::new(qty),
            start: Timestamp::from_nanos(start),
            end: Timestamp::from_nanos(end),
            pricing: if self.rng.chance(50) { Pricing::Uniform } else { Pricing::PayAsBid },
            floor: if self.rng.chance(50) { FloorRule::PreviousClose } else { FloorRule::PreviousCloseMinus10 },
        })
    }

    /// A bid around the reference (the floor is the reference or 10% under,
    /// the cap 10% over), in one of the recent auctions.
    fn auction_bid(&mut self) -> Command {
        let recent = self.announced.len().min(3) as u64;
        let (auction, book) = if recent > 0 && self.rng.chance(90) {
            self.announced[self.announced.len() - 1 - self.rng.below(recent) as usize]
        } else {
            (self.auction_id(), self.rng.below(self.stocks.len() as u64) as usize)
        };
        let token = self.token();
        let user = UserId::new(self.rng.below(3) as u16);
        self.sent.push((user.get(), token));
        let r = self.references[book];
        let fen = r * 88 / 100 + self.rng.below(u64::from(r) * 24 / 100) as u32;
        let qty = if self.rng.chance(2) { 0 } else { 1 + self.rng.below(80) as u32 };
        let (account, stock) = (self.account(), self.stocks[book]);
        Command::AuctionBid(AuctionBid { user, token, account, qty: Qty::new(qty), stock, price: fen * 100, auction })
    }

    fn transfer(&mut self) -> Command {
        self.counter += 1;
        let asset = match self.rng.below(10) {
            0..=4 => Asset::Cash,
            9 => Asset::Holding(InstrumentId::new(self.stocks.len() as u8)), // no such instrument
            _ => Asset::Holding(InstrumentId::new(self.rng.below(self.stocks.len() as u64) as u8)),
        };
        let magnitude = if asset == Asset::Cash { 1 + self.rng.below(500_000) } else { 1 + self.rng.below(300) } as i64;
        let amount = if self.rng.chance(50) { magnitude } else { -magnitude };
        Command::Transfer(Transfer { request: self.counter, account: self.account(), asset, amount })
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
    let engine = Engine::new(config.clone()).unwrap();
    drive(seed, engine, Model::new(&config), false, count)
}

/// The same with pre-trade risk over 20 small accounts (so that `n`, `i`
/// and `m` happen), block pairs and transfers: balances compared with the
/// engine's and conservation checked after every command.
fn differential_accounts(seed: u64, config: EngineConfig, count: u64) -> std::collections::BTreeMap<String, u64> {
    let mut rng = Rng(seed ^ 0xACC0);
    let books = config.instruments.len();
    let cash: Vec<i64> = (0..20).map(|_| 20_000 + rng.below(2_000_000) as i64).collect();
    let holdings: Vec<Vec<i64>> = (0..20).map(|_| (0..books).map(|_| rng.below(400) as i64).collect()).collect();
    let codes: Vec<&str> = config.instruments.iter().map(|i| i.code.as_str()).collect();
    let mut csv = format!("account,cash_yuan,{}\n", codes.join(","));
    for (a, (c, h)) in cash.iter().zip(&holdings).enumerate() {
        let tonnes: Vec<String> = h.iter().map(ToString::to_string).collect();
        csv.push_str(&format!("{:04},{}.{:02},{}\n", a + 1, c / 100, c % 100, tonnes.join(",")));
    }
    let table = accounts::AccountTable::from_csv(&csv, &codes).unwrap();
    let engine = Engine::with_accounts(config.clone(), table).unwrap();
    let mut model = Model::new(&config);
    model.accounts = Some(RefAccounts::new(&cash, &holdings, config.holding_cap));
    drive(seed, engine, model, true, count)
}

fn drive(
    seed: u64,
    mut engine: Engine,
    mut model: Model,
    with_accounts: bool,
    count: u64,
) -> std::collections::BTreeMap<String, u64> {
    let stocks = model.books.iter().map(|b| b.code).collect();
    let references = model.books.iter().map(|b| b.reference).collect();
    let mut generator = Generator {
        rng: Rng(seed),
        sent: Vec::new(),
        live: Vec::new(),
        counter: 0,
        stocks,
        references,
        accounts: with_accounts,
        pending_block: None,
        now: 0,
        announced: Vec::new(),
    };
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
        let bids = model
            .auctions
            .iter()
            .filter(|a| !a.ended)
            .flat_map(|a| a.bids.iter().filter(|b| b.qty > 0).map(move |b| (b.user, tok(b.token), a.book)));
        generator.live.extend(bids);
        generator.now = 1_000 + i;
        let command = generator.next();
        let now = Timestamp::from_nanos(1_000 + i);
        if i % SNAPSHOT_EVERY == SNAPSHOT_EVERY - 1 {
            engine = through_a_snapshot(&engine);
        }
        got.clear();
        engine.apply(&command, now, &mut got);
        let expected = model.apply(&command, now);
        assert_eq!(got, expected, "seed {seed}, command {i}: {command:?}");
        engine.check_invariants();
        if let Some(accounts) = &model.accounts {
            accounts.check_against(engine.accounts().unwrap());
        }
        // The model hashes books and counters only: compared without accounts.
        if i % 1_000 == 0 && !with_accounts {
            model.check_uncrossed();
            assert_eq!(engine.state_hash(), model.state_hash(), "seed {seed}: state hash after command {i}");
        }
        count_kinds(&got, &mut kinds);
    }
    if !with_accounts {
        assert_eq!(engine.state_hash(), model.state_hash(), "seed {seed}: final state hash");
    }
    kinds
}

/// Every this many commands the run continues on an engine restored from
/// a snapshot of the current one (through JSON, as a file would carry
/// it): every later command then checks the restore against the model.
const SNAPSHOT_EVERY: u64 = 7_919;

fn through_a_snapshot(engine: &Engine) -> Engine {
    let snapshot = engine.snapshot();
    let text = serde_json::to_string(&snapshot).unwrap();
    let read: snapshot::Snapshot = serde_json::from_str(&text).unwrap();
    let restored = Engine::restore(engine.config().clone(), &read).unwrap();
    assert_eq!(restored.snapshot(), snapshot, "a restored engine snapshots the same");
    restored
}

fn count_kinds(events: &[Event], kinds: &mut std::collections::BTreeMap<String, u64>) {
    for e in events {
        let kind = format!("{e:?}");
        *kinds.entry(kind[..kind.find(['(', ' ', '{']).unwrap_or(kind.len())].to_string()).or_insert(0) += 1;
        match e {
            Event::Rejected { reason, .. } => {
                *kinds.entry(format!("Rejected {}", reason.letter() as char)).or_insert(0) += 1;
            }
            Event::Executed(x) => *kinds.entry(format!("Executed {:?}", x.method)).or_insert(0) += 1,
            Event::Transferred { accepted, .. } => *kinds.entry(format!("Transferred {accepted}")).or_insert(0) += 1,
            _ => {}
        }
    }
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

fn accounts_config(stp: StpMode) -> EngineConfig {
    let mut config = config(stp, 1 << 16);
    config.listing_qty_max = Qty::new(99);
    config.block_qty_min = Qty::new(100);
    config.holding_cap = Some(900);
    config.blocks_max = 8;
    config.auction_qty_min = Qty::new(100);
    config.auctions_max = 4;
    config.auction_bids_max = 24;
    config
}

#[test]
fn risk_blocks_auctions_and_transfers_agree_with_the_reference_accounts() {
    let seed = seed();
    println!("seed {seed}");
    let mut totals = std::collections::BTreeMap::new();
    for (k, stp) in [StpMode::CancelNewest, StpMode::CancelOldest, StpMode::CancelBoth].into_iter().enumerate() {
        for (kind, n) in differential_accounts(seed + 10 + k as u64, accounts_config(stp), 100_000) {
            *totals.entry(kind).or_insert(0) += n;
        }
    }
    println!("{totals:#?}");
    let kinds = [
        "Executed Listing",
        "Executed Block",
        "Executed Auction",
        "AuctionAnnounced",
        "AuctionRefused",
        "AuctionResult",
        "Transferred true",
        "Transferred false",
        "DailyStats",
    ];
    for kind in kinds {
        assert!(totals.get(kind).copied().unwrap_or(0) > 50, "too few {kind}: {totals:?}");
    }
    for letter in "nimLZKOF".chars() {
        assert!(totals.get(&format!("Rejected {letter}")).copied().unwrap_or(0) > 0, "no {letter} rejects: {totals:?}");
    }
}
