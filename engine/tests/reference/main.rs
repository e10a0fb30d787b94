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
//!
//! # Layout
//! - `main.rs`: the [`Model`]'s state, its command dispatcher, the day
//!   (references, roll, daily statistics) and its state hash; the drivers
//!   and the two tests;
//! - `book.rs`: the listing books: validation, matching, cancel, replace;
//! - `accounts.rs`: cash and holdings, what each order locks;
//! - `blocks.rs`: block agreement orders and their mirror matching;
//! - `auction.rs`: one-way bidding auctions and their allocation;
//! - `generator.rs`: the seeded command generator.

mod accounts;
mod auction;
mod blocks;
mod book;
mod generator;

use accounts::{Lock, RefAccounts};
use auction::RefAuction;
use blocks::RefBlock;
use book::RefBook;
use carbonx_engine::*;
use carbonx_testkit::Rng;
use generator::Generator;

const MARKET: u32 = 0x7FFF_FFFF;

#[derive(Default)]
struct Tally {
    open: Option<u32>,
    high: Option<u32>,
    low: Option<u32>,
    volume: u64,
    turnover: u128,
    trades: u64,
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
            Command::List(_) | Command::Delist(_) => panic!("the model does not generate reference data"),
        }
        out
    }

    fn announce_references(&self, out: &mut Vec<Event>) {
        for (i, b) in self.books.iter().enumerate() {
            out.push(Event::Reference(Reference {
                instrument: InstrumentId::new(i as u8),
                stock: b.code,
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
    let mut rng = Rng::new(seed ^ 0xACC0);
    let books = config.instruments.len();
    let cash: Vec<i64> = (0..20).map(|_| 20_000 + rng.below(2_000_000) as i64).collect();
    let holdings: Vec<Vec<i64>> = (0..20).map(|_| (0..books).map(|_| rng.below(400) as i64).collect()).collect();
    let codes: Vec<&str> = config.instruments.iter().map(|i| i.code.as_str()).collect();
    let mut csv = format!("account,cash_yuan,{}\n", codes.join(","));
    for (a, (c, h)) in cash.iter().zip(&holdings).enumerate() {
        let tonnes: Vec<String> = h.iter().map(ToString::to_string).collect();
        csv.push_str(&format!("{:04},{}.{:02},{}\n", a + 1, c / 100, c % 100, tonnes.join(",")));
    }
    let table = carbonx_engine::accounts::AccountTable::from_csv(&csv, &codes).unwrap();
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
    let mut generator = Generator::new(seed, stocks, references, with_accounts);
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

#[test]
fn a_million_commands_agree_with_the_reference_book() {
    let seed = carbonx_testkit::seed("reference book", 0xCA4B_0001);
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
    let seed = carbonx_testkit::seed("reference accounts", 0xCA4B_0001);
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
