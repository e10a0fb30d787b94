//! The engine benchmarks' command streams, shared by `engine.rs` (carbonx
//! against matchcore) and `latency.rs` (carbonx open loop): engine-neutral
//! operations on order indexes from a seeded generator, their translation
//! into carbonx commands, and the scratch run that learns which orders rest.

use carbonx_engine as cx;
use carbonx_testkit::Rng;
use std::collections::HashMap;

/// CEA's previous close in fen: the band is 67.17 .. 82.09.
pub const REFERENCE: u32 = 7_463;

/// One engine-neutral operation on order index `k`.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Limit { k: u32, buy: bool, price: u32, qty: u32 },
    Ioc { k: u32, buy: bool, price: u32, qty: u32 },
    Cancel { k: u32 },
    Replace { k: u32, price: u32, qty: u32 },
}

pub fn token(k: u32, generation: u32) -> cx::Token {
    let mut bytes = [b' '; 14];
    bytes[..4].copy_from_slice(&k.to_be_bytes());
    bytes[4..8].copy_from_slice(&generation.to_be_bytes());
    cx::Token::from_bytes(bytes)
}

pub fn side(buy: bool) -> cx::Side {
    if buy { cx::Side::Buy } else { cx::Side::Sell }
}

/// Translates operations into carbonx commands; a replace gives the order
/// its next token, so the translator remembers each order's generation.
#[derive(Default)]
pub struct CarbonxTranslator {
    pub generation: HashMap<u32, u32>,
    /// With `Some(n)`, order `k` uses account `k % n` (the demo accounts);
    /// otherwise every order has its own account.
    pub accounts: Option<u32>,
}

impl CarbonxTranslator {
    pub fn translate(&mut self, op: &Op) -> cx::Command {
        let stock = cx::StockCode::from_text("CEA").expect("valid code");
        let user = cx::UserId::new(0);
        let accounts = self.accounts;
        let limit = |k: u32, buy: bool, price: u32, qty: u32| {
            cx::NewOrder::limit(
                user,
                token(k, 0),
                cx::AccountId::new(accounts.map_or(k, |n| k % n)),
                side(buy),
                qty,
                stock,
                price,
            )
        };
        match *op {
            Op::Limit { k, buy, price, qty } => cx::Command::NewOrder(limit(k, buy, price, qty)),
            Op::Ioc { k, buy, price, qty } => {
                cx::Command::NewOrder(cx::NewOrder { tif: 0, ..limit(k, buy, price, qty) })
            }
            Op::Cancel { k } => {
                let token = token(k, *self.generation.entry(k).or_default());
                cx::Command::Cancel(cx::Cancel { user, token, qty: cx::Qty::ZERO })
            }
            Op::Replace { k, price, qty } => {
                let g = self.generation.entry(k).or_default();
                *g += 1;
                cx::Command::Replace(cx::Replace {
                    user,
                    token: token(k, *g - 1),
                    new_token: token(k, *g),
                    qty: cx::Qty::new(qty),
                    price: price * 100,
                    tif: 99_999,
                    display: b'Y',
                    iso: b'N',
                    min_qty: 0,
                })
            }
        }
    }
}

pub fn to_carbonx(ops: &[Op]) -> Vec<cx::Command> {
    let mut translator = CarbonxTranslator::default();
    ops.iter().map(|op| translator.translate(op)).collect()
}

/// Which order indexes rest, learned from a scratch carbonx run's book events.
#[derive(Default)]
pub struct Liveness {
    pub live: Vec<u32>,
    pub position: HashMap<u32, usize>,
    pub open: HashMap<u32, u32>,
    pub k_of: HashMap<u64, u32>,
    pub buy: HashMap<u32, bool>,
}

impl Liveness {
    fn add(&mut self, k: u32, qty: u32) {
        self.position.insert(k, self.live.len());
        self.live.push(k);
        self.open.insert(k, qty);
    }

    fn remove(&mut self, k: u32) {
        if let Some(i) = self.position.remove(&k) {
            self.live.swap_remove(i);
            if let Some(&moved) = self.live.get(i) {
                self.position.insert(moved, i);
            }
        }
    }

    fn observe(&mut self, op: &Op, events: &[cx::Event]) {
        let k_of_op = match *op {
            Op::Limit { k, .. } | Op::Ioc { k, .. } | Op::Cancel { k } | Op::Replace { k, .. } => k,
        };
        for event in events {
            match *event {
                cx::Event::Accepted(o) | cx::Event::Replaced { order: o, .. } => {
                    self.k_of.insert(o.id.get(), k_of_op);
                    self.buy.insert(k_of_op, o.side == cx::Side::Buy);
                }
                cx::Event::BookAdd { id, qty, .. } => self.add(self.k_of[&id.get()], qty.tonnes()),
                cx::Event::BookReplace { new, qty, .. } => {
                    let k = self.k_of[&new.get()];
                    self.open.insert(k, qty.tonnes());
                }
                cx::Event::BookDelete { id, .. } => self.remove(self.k_of[&id.get()]),
                cx::Event::BookReduce { id, cancelled, .. } => {
                    *self.open.get_mut(&self.k_of[&id.get()]).expect("live") -= cancelled.tonnes()
                }
                cx::Event::Executed(x) => {
                    let k = self.k_of[&x.maker.id.get()];
                    let open = self.open.get_mut(&k).expect("maker is live");
                    *open -= x.qty.tonnes();
                    if *open == 0 {
                        self.remove(k);
                    }
                }
                _ => {}
            }
        }
    }
}

pub fn bench_config() -> cx::EngineConfig {
    cx::EngineConfig { orders_max: 1 << 16, ..cx::EngineConfig::demo() }
}

/// Generates `prefill` then a stream of `n` operations, `pick` choosing each
/// from the liveness and the book so far.
pub fn generate(
    prefill: Vec<Op>,
    n: usize,
    seed: u64,
    mut pick: impl FnMut(&mut Rng, &Liveness, &cx::Engine, u32) -> Op,
) -> (Vec<Op>, Vec<Op>) {
    let mut engine = cx::Engine::new(bench_config()).expect("valid config");
    let mut liveness = Liveness::default();
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut translator = CarbonxTranslator::default();
    let mut run = |engine: &mut cx::Engine, op: Op, liveness: &mut Liveness| {
        out.clear();
        engine.apply(&translator.translate(&op), cx::Timestamp::from_nanos(1), &mut out);
        liveness.observe(&op, &out);
    };
    for op in &prefill {
        run(&mut engine, *op, &mut liveness);
    }
    let mut stream = Vec::with_capacity(n);
    for k in (prefill.len() as u32)..(prefill.len() + n) as u32 {
        let op = pick(&mut rng, &liveness, &engine, k);
        run(&mut engine, op, &mut liveness);
        stream.push(op);
    }
    (prefill, stream)
}

/// An IOC for at most what rests at or better than its limit.
///
/// Why the cap: matchcore 0.4.0 matches a crossing limit order as if it had
/// no limit (`submit_crossable_order` calls `match_order` with `None`), so
/// a larger IOC trades through its price there (a buy limited at 74.66
/// fills at 74.67), the books part, and the two engines no longer do the
/// same work.
pub fn ioc_within_limit(engine: &cx::Engine, k: u32, buy: bool, price: u32, qty: u32) -> Op {
    let makers = if buy { cx::Side::Sell } else { cx::Side::Buy };
    let reachable: u64 = engine
        .depth(cx::InstrumentId::new(0), makers, usize::MAX)
        .take_while(|l| if buy { l.price.fen() <= price } else { l.price.fen() >= price })
        .map(|l| l.qty)
        .sum();
    let qty = if reachable == 0 { qty } else { qty.min(reachable as u32) };
    Op::Ioc { k, buy, price, qty }
}

/// A resting limit on its own side of the reference: never crossing.
pub fn passive(rng: &mut Rng, k: u32, spread_ticks: u64) -> Op {
    let buy = rng.below(2) == 0;
    let offset = 1 + rng.below(spread_ticks) as u32;
    let price = if buy { REFERENCE - offset } else { REFERENCE + offset };
    Op::Limit { k, buy, price, qty: 1 + rng.below(100) as u32 }
}

/// The exchange-core mix of 100,000 operations.
pub fn mixed_streams() -> (Vec<Op>, Vec<Op>) {
    mixed_streams_of(100_000)
}

/// The exchange-core mix (9% limit, 3% IOC, 6% cancel, 82% replace) of
/// `n` operations over ~1,000 resting orders across ~750 ticks.
pub fn mixed_streams_of(n: usize) -> (Vec<Op>, Vec<Op>) {
    let mut rng = Rng::new(1);
    let prefill = (0..1_000).map(|k| passive(&mut rng, k, 375)).collect();
    generate(prefill, n, 2, |rng, live, engine, k| {
        let roll = rng.below(100);
        if roll < 9 || live.live.is_empty() {
            return passive(rng, k, 375);
        }
        if roll < 12 {
            let buy = rng.below(2) == 0;
            let price = if buy { REFERENCE + 5 } else { REFERENCE - 5 };
            return ioc_within_limit(engine, k, buy, price, 1 + rng.below(50) as u32);
        }
        let target = live.live[rng.below(live.live.len() as u64) as usize];
        if roll < 18 {
            return Op::Cancel { k: target };
        }
        // A replace moves the order to another price on its own side.
        let offset = 1 + rng.below(375) as u32;
        let price = if live.buy[&target] { REFERENCE - offset } else { REFERENCE + offset };
        Op::Replace { k: target, price, qty: 1 + rng.below(100) as u32 }
    })
}

pub fn deep_streams() -> (Vec<Op>, Vec<Op>) {
    let mut rng = Rng::new(3);
    let prefill = (0..20_000).map(|k| passive(&mut rng, k, 30)).collect();
    generate(prefill, 50_000, 4, |rng, live, engine, k| match rng.below(10) {
        0..=3 => passive(rng, k, 30),
        4..=7 if !live.live.is_empty() => Op::Cancel { k: live.live[rng.below(live.live.len() as u64) as usize] },
        _ => {
            let buy = rng.below(2) == 0;
            let price = if buy { REFERENCE + 3 } else { REFERENCE - 3 };
            ioc_within_limit(engine, k, buy, price, 50 + rng.below(500) as u32)
        }
    })
}

/// The deep book's ~20,000 resting orders, then 50,000 adds and cancels
/// (half each) and no matching: the stream every open engine can run with
/// the same meaning, whatever its matching rules.
pub fn adds_cancels_streams() -> (Vec<Op>, Vec<Op>) {
    let mut rng = Rng::new(3);
    let prefill = (0..20_000).map(|k| passive(&mut rng, k, 30)).collect();
    generate(prefill, 50_000, 5, |rng, live, _, k| match rng.below(2) {
        0 if !live.live.is_empty() => Op::Cancel { k: live.live[rng.below(live.live.len() as u64) as usize] },
        _ => passive(rng, k, 30),
    })
}

pub fn carbonx_book(prefill: &[cx::Command]) -> cx::Engine {
    let mut engine = cx::Engine::new(bench_config()).expect("valid config");
    let mut out = Vec::with_capacity(1 << 12);
    for c in prefill {
        out.clear();
        engine.apply(c, cx::Timestamp::from_nanos(1), &mut out);
    }
    engine
}
