//! Engine benchmarks: carbonx side by side with `matchcore` 0.4.0 on the
//! same logical command streams.
//!
//! Streams are built once from a seeded generator as neutral operations on
//! order indexes, then translated for each engine (carbonx names orders by
//! token, matchcore by the sequence number that entered them). Every order
//! has its own account, so carbonx's self-trade prevention never fires, and
//! every IOC asks at most what rests within its limit (see
//! [`ioc_within_limit`]), so both engines do the same matching work: the
//! bench checks it (fills, tonnes and rejects, and tonnes per command) and
//! panics if they part. Setup (building and pre-filling
//! a book) is outside the measured routine.
//!
//! - `per_op/*`: operations of one kind on a prepared book: 1,000 adds,
//!   cancels or replaces (to a new price) on a book of 1,000 orders; 700
//!   IOCs each sweeping 1 level, or 70 each sweeping 10 levels, of a ladder
//!   of 700 one-order levels.
//! - `mixed`: the exchange-core mix (9% limit, 3% IOC, 6% cancel, 82%
//!   replace) over ~1,000 resting orders across ~750 ticks.
//! - `deep`: ~20,000 resting orders on ~60 levels, then adds, cancels and
//!   sweeps.
//! - `adds_cancels`: the deep book's ~20,000 resting orders, then 50,000
//!   adds and cancels without matching, carbonx beside matchcore,
//!   `lobster` 0.7.0 and `orderbook-rs` 0.15.3 (`peers/`: their matching
//!   and amends follow other rules, so they join on the stream where every
//!   engine means the same; the bench checks that no command was refused
//!   or traded and that the books end with the same tonnes).
//! - `risk`: the exchange-core mix through carbonx alone, without and with
//!   pre-trade risk over the 3,400 demo accounts.
//! - `auction`: carbonx alone: the allocation of a one-way bidding auction
//!   of 500,000 t with 10,000 sealed bids (1,000,000 t bid) over the demo
//!   accounts: ranking, 5,000 settled fills, the losers' cancellations. The
//!   announcement and the bids are set up outside the measured routine,
//!   which is the one clock command that reaches the window's end.
//!
//! - `blocks`: carbonx alone: 1,000 block agreement pairs, each matched
//!   by its deal, while 9,000 other block orders wait.
//!
//! Run: `cargo bench --bench engine` (add `-- --test` to run each once).

mod peers;
mod streams;

use carbonx_engine as cx;
use carbonx_testkit::Rng;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use lobster as lob;
use matchcore as mc;
use peers::{
    ObrOp, check_lobster, check_orderbook_rs, lobster_book, orderbook_rs_apply, orderbook_rs_book, to_lobster,
    to_orderbook_rs,
};
use std::collections::HashMap;
use std::hint::black_box;
use streams::{
    CarbonxTranslator, Op, REFERENCE, adds_cancels_streams, bench_config, carbonx_book, deep_streams, mixed_streams,
    to_carbonx, token,
};

/// Translates operations into matchcore commands (an order's id is the
/// sequence number that entered it; amends keep it).
fn to_matchcore(ops: &[Op]) -> Vec<mc::Command> {
    let mut ids: HashMap<u32, u64> = HashMap::new();
    let limit = |buy: bool, price: u32, qty: u32, tif| {
        let side = if buy { mc::Side::Buy } else { mc::Side::Sell };
        let quantity = mc::QuantityPolicy::Standard { quantity: mc::Quantity(u64::from(qty)) };
        let order = mc::LimitOrder::new(mc::Price(u64::from(price)), quantity, mc::OrderFlags::new(side, false, tif));
        mc::CommandKind::Submit(mc::SubmitCmd { order: mc::NewOrder::Limit(order) })
    };
    let mut commands = Vec::with_capacity(ops.len());
    for (seq, op) in ops.iter().enumerate() {
        let seq = seq as u64;
        let kind = match *op {
            Op::Limit { k, buy, price, qty } => {
                ids.insert(k, seq);
                limit(buy, price, qty, mc::TimeInForce::Gtc)
            }
            Op::Ioc { buy, price, qty, .. } => limit(buy, price, qty, mc::TimeInForce::Ioc),
            Op::Cancel { k } => mc::CommandKind::Cancel(mc::CancelCmd {
                order_id: mc::OrderId(ids[&k]),
                order_kind: mc::OrderKind::Limit,
            }),
            Op::Replace { k, price, qty } => {
                let quantity = mc::QuantityPolicy::Standard { quantity: mc::Quantity(u64::from(qty)) };
                let patch =
                    mc::LimitOrderPatch::new().with_price(mc::Price(u64::from(price))).with_quantity_policy(quantity);
                mc::CommandKind::Amend(mc::AmendCmd {
                    order_id: mc::OrderId(ids[&k]),
                    patch: mc::AmendPatch::Limit(patch),
                })
            }
        };
        let meta = mc::CommandMeta { sequence_number: mc::SequenceNumber(seq), timestamp: mc::Timestamp(seq) };
        commands.push(mc::Command { meta, kind });
    }
    commands
}

fn matchcore_book(prefill: &[mc::Command]) -> mc::OrderBook {
    let mut book = mc::OrderBook::new("CEA");
    for c in prefill {
        black_box(book.execute(c));
    }
    book
}

/// Fills, tonnes traded and rejects of one engine over a stream.
#[derive(Debug, PartialEq, Eq)]
struct Work {
    fills: u64,
    tonnes: u64,
    rejects: u64,
}

fn carbonx_work(prefill: &[cx::Command], stream: &[cx::Command]) -> Work {
    let mut engine = carbonx_book(prefill);
    let (mut work, mut out) = (Work { fills: 0, tonnes: 0, rejects: 0 }, Vec::new());
    for command in stream {
        out.clear();
        engine.apply(command, cx::Timestamp::from_nanos(2), &mut out);
        for event in &out {
            match event {
                cx::Event::Executed(x) => {
                    (work.fills, work.tonnes) = (work.fills + 1, work.tonnes + u64::from(x.qty.tonnes()))
                }
                cx::Event::Rejected { .. } | cx::Event::CancelRejected { .. } => work.rejects += 1,
                _ => {}
            }
        }
    }
    work
}

fn matchcore_work(prefill: &[mc::Command], stream: &[mc::Command]) -> Work {
    let mut book = matchcore_book(prefill);
    let mut work = Work { fills: 0, tonnes: 0, rejects: 0 };
    for command in stream {
        match book.execute(command) {
            mc::CommandOutcome::Applied(mc::CommandReport::Submit(e) | mc::CommandReport::Amend(e)) => {
                if let Some(m) = e.target_order().match_result() {
                    work.fills += m.trades().len() as u64;
                    work.tonnes += m.executed_quantity().0;
                }
            }
            mc::CommandOutcome::Applied(mc::CommandReport::Cancel) => {}
            mc::CommandOutcome::Rejected(_) => work.rejects += 1,
        }
    }
    work
}

/// The first operation after which the two engines have traded different
/// tonnes, if any: proof that they did the same matching work.
fn first_divergence(ops: &[Op], cx_all: &[cx::Command], mc_all: &[mc::Command]) -> Option<(usize, Op, u64, u64)> {
    let mut engine = cx::Engine::new(bench_config()).expect("valid config");
    let mut book = mc::OrderBook::new("CEA");
    let mut out = Vec::new();
    for (i, (c, m)) in cx_all.iter().zip(mc_all).enumerate() {
        out.clear();
        engine.apply(c, cx::Timestamp::from_nanos(1), &mut out);
        let ours: u64 =
            out.iter().map(|e| if let cx::Event::Executed(x) = e { u64::from(x.qty.tonnes()) } else { 0 }).sum();
        let theirs = match book.execute(m) {
            mc::CommandOutcome::Applied(mc::CommandReport::Submit(e) | mc::CommandReport::Amend(e)) => {
                e.target_order().match_result().map_or(0, |r| r.executed_quantity().0)
            }
            _ => 0,
        };
        if ours != theirs {
            return Some((i, ops[i], ours, theirs));
        }
    }
    None
}

/// Benchmarks both engines on `prefill` then `stream` in one criterion group.
fn compare(c: &mut Criterion, group: &str, name: &str, prefill: &[Op], stream: &[Op]) {
    let all: Vec<Op> = prefill.iter().chain(stream).copied().collect();
    let (cx_all, mc_all) = (to_carbonx(&all), to_matchcore(&all));
    let (cx_pre, cx_stream) = cx_all.split_at(prefill.len());
    let (mc_pre, mc_stream) = mc_all.split_at(prefill.len());
    let (ours, theirs) = (carbonx_work(cx_pre, cx_stream), matchcore_work(mc_pre, mc_stream));
    eprintln!("{group}/{name}: {} ops; carbonx {ours:?}; matchcore {theirs:?}", stream.len());
    // A comparison is only fair while both engines do the same matching
    // work; `cargo bench -- --test` in CI keeps it so.
    if let Some(d) = first_divergence(&all, &cx_all, &mc_all) {
        panic!("{group}/{name}: first divergence (index, op, carbonx t, matchcore t): {d:?}");
    }
    assert_eq!(ours, theirs, "{group}/{name}: the engines did different work");
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(stream.len() as u64));
    bench_carbonx(&mut g, name, cx_pre, cx_stream);
    bench_without_events(&mut g, name, cx_pre, cx_stream);
    bench_matchcore(&mut g, name, mc_pre, mc_stream);
    g.finish();
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// `{name}/carbonx`: `stream` on a book pre-filled with `prefill` (set up
/// outside the measurement), its events into a `Vec` cleared per command.
fn bench_carbonx(g: &mut Group, name: &str, prefill: &[cx::Command], stream: &[cx::Command]) {
    bench_carbonx_into(g, &format!("{name}/carbonx"), prefill, stream, Vec::with_capacity(1 << 12));
}

/// `{name}/carbonx_no_events`: the same into a sink that keeps no event:
/// the most that any layout of the events, or any way of writing them,
/// could save.
fn bench_without_events(g: &mut Group, name: &str, prefill: &[cx::Command], stream: &[cx::Command]) {
    bench_carbonx_into(g, &format!("{name}/carbonx_no_events"), prefill, stream, FillCount(0));
}

/// A sink the bench loop readies before each command.
trait BenchSink: cx::EventSink {
    /// Called before each command.
    fn next_command(&mut self);
}

impl BenchSink for Vec<cx::Event> {
    fn next_command(&mut self) {
        self.clear();
    }
}

/// A sink that keeps no event, only a count of fills.
struct FillCount(u64);

impl cx::EventSink for FillCount {
    #[inline(always)]
    fn push(&mut self, event: cx::Event) {
        self.0 += u64::from(matches!(event, cx::Event::Executed(_)));
    }
}

impl BenchSink for FillCount {
    fn next_command(&mut self) {}
}

fn bench_carbonx_into(
    g: &mut Group,
    id: &str,
    prefill: &[cx::Command],
    stream: &[cx::Command],
    mut out: impl BenchSink,
) {
    g.bench_function(id, |b| {
        b.iter_batched(
            || carbonx_book(prefill),
            |mut engine| {
                for command in stream {
                    out.next_command();
                    engine.apply(black_box(command), cx::Timestamp::from_nanos(2), &mut out);
                }
                engine
            },
            BatchSize::LargeInput,
        );
    });
    black_box(&mut out);
}

/// `{name}/matchcore`: the same for matchcore.
fn bench_matchcore(g: &mut Group, name: &str, prefill: &[mc::Command], stream: &[mc::Command]) {
    g.bench_function(format!("{name}/matchcore"), |b| {
        b.iter_batched(
            || matchcore_book(prefill),
            |mut book| {
                for command in stream {
                    black_box(book.execute(black_box(command)));
                }
                book
            },
            BatchSize::LargeInput,
        );
    });
}

/// One 10 t order per tick on each side (or only sells), moving away from the reference.
fn ladder_prefill(levels: u32, sells_only: bool) -> Vec<Op> {
    (0..levels)
        .flat_map(|i| {
            let sell = Op::Limit { k: 2 * i, buy: false, price: REFERENCE + 1 + i, qty: 10 };
            let buy = Op::Limit { k: 2 * i + 1, buy: true, price: REFERENCE - 1 - i, qty: 10 };
            if sells_only { vec![sell] } else { vec![sell, buy] }
        })
        .collect()
}

fn per_op(c: &mut Criterion) {
    let book = ladder_prefill(500, false);
    let adds: Vec<Op> = (0..1_000)
        .map(|i| Op::Limit {
            k: 10_000 + i,
            buy: i % 2 == 0,
            price: if i % 2 == 0 { REFERENCE - 1 - i % 300 } else { REFERENCE + 1 + i % 300 },
            qty: 5,
        })
        .collect();
    compare(c, "per_op", "add", &book, &adds);
    let cancels: Vec<Op> = (0..1_000).map(|k| Op::Cancel { k }).collect();
    compare(c, "per_op", "cancel", &book, &cancels);
    let replaces: Vec<Op> = (0..1_000)
        .map(|k| Op::Replace {
            k,
            price: if k % 2 == 0 { REFERENCE + 501 + k % 50 } else { REFERENCE - 501 - k % 50 },
            qty: 10,
        })
        .collect();
    compare(c, "per_op", "replace", &book, &replaces);
    // 700 one-order levels above the reference: all inside the band (up to 82.09).
    let sells = ladder_prefill(700, true);
    let sweep1: Vec<Op> =
        (0..700).map(|i| Op::Ioc { k: 10_000 + i, buy: true, price: REFERENCE + 1 + i, qty: 10 }).collect();
    compare(c, "per_op", "sweep_1_level", &sells, &sweep1);
    let sweep10: Vec<Op> =
        (0..70).map(|i| Op::Ioc { k: 10_000 + i, buy: true, price: REFERENCE + 10 * (i + 1), qty: 100 }).collect();
    compare(c, "per_op", "sweep_10_levels", &sells, &sweep10);
}

/// The cost of pre-trade risk: the exchange-core mix through the book
/// alone and through the engine with the 3,400 demo accounts (order `k`
/// trades for account `k % 3400` in both runs, so self-trade prevention is
/// the same; the demo balances are large enough that risk never rejects).
fn risk(c: &mut Criterion, prefill: &[Op], stream: &[Op]) {
    let all: Vec<Op> = prefill.iter().chain(stream).copied().collect();
    let mut translator = CarbonxTranslator { accounts: Some(3_400), ..CarbonxTranslator::default() };
    let commands: Vec<cx::Command> = all.iter().map(|op| translator.translate(op)).collect();
    let (pre, rest) = commands.split_at(prefill.len());
    let mut g = c.benchmark_group("risk");
    g.throughput(Throughput::Elements(stream.len() as u64));
    for with_accounts in [false, true] {
        let name = if with_accounts { "exchange_core_mix/with_risk" } else { "exchange_core_mix/book_alone" };
        g.bench_function(name, |b| {
            let mut out: Vec<cx::Event> = Vec::with_capacity(1 << 12);
            b.iter_batched(
                || {
                    let engine = if with_accounts {
                        cx::Engine::with_accounts(bench_config(), cx::accounts::AccountTable::demo(7, 3_400))
                    } else {
                        cx::Engine::new(bench_config())
                    };
                    let (mut engine, mut warm) = (engine.expect("valid config"), Vec::new());
                    for command in pre {
                        warm.clear();
                        engine.apply(command, cx::Timestamp::from_nanos(1), &mut warm);
                    }
                    engine
                },
                |mut engine| {
                    for command in rest {
                        out.clear();
                        engine.apply(black_box(command), cx::Timestamp::from_nanos(2), &mut out);
                    }
                    engine
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

/// One auction of 500,000 t, 10,000 bids of 100 t at seeded prices within
/// floor (74.63) and cap (82.09); returns the engine and the end time.
fn auction_with_bids(bids: u32) -> (cx::Engine, cx::Timestamp) {
    let mut config = bench_config();
    config.auction_bids_max = bids;
    let mut engine =
        cx::Engine::with_accounts(config, cx::accounts::AccountTable::demo(7, 3_400)).expect("valid config");
    let stock = cx::StockCode::from_text("CEA").expect("valid code");
    let id = cx::AuctionId::from_text("BENCH").expect("valid id");
    let (start, end) = (cx::Timestamp::from_nanos(1), cx::Timestamp::from_nanos(1_000_000));
    let announce = cx::AnnounceAuction {
        id,
        stock,
        seller: cx::AccountId::new(0),
        seller_user: cx::UserId::new(0),
        qty: cx::Qty::new(500_000),
        start,
        end,
        pricing: cx::Pricing::Uniform,
        floor: cx::FloorRule::PreviousClose,
    };
    let mut out = Vec::new();
    engine.apply(&cx::Command::AnnounceAuction(announce), start, &mut out);
    let mut rng = Rng::new(0xA0C7_1011);
    for k in 0..bids {
        let bid = cx::AuctionBid {
            user: cx::UserId::new(1),
            token: token(k, 0),
            account: cx::AccountId::new(1 + k % 3_399),
            qty: cx::Qty::new(100),
            stock,
            price: (REFERENCE + rng.below(747) as u32) * 100,
            auction: id,
        };
        engine.apply(&cx::Command::AuctionBid(bid), cx::Timestamp::from_nanos(2 + u64::from(k)), &mut out);
    }
    assert!(out.iter().all(|e| !matches!(e, cx::Event::Rejected { .. })), "every bench bid is accepted");
    (engine, end)
}

fn auction(c: &mut Criterion) {
    let mut g = c.benchmark_group("auction");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("allocation 10,000 bids", |b| {
        let mut out: Vec<cx::Event> = Vec::with_capacity(1 << 15);
        b.iter_batched(
            || auction_with_bids(10_000),
            |(mut engine, end)| {
                out.clear();
                engine.apply(black_box(&cx::Command::Clock), end, &mut out);
                assert!(matches!(out[0], cx::Event::AuctionResult(r) if r.sold.tonnes() == 500_000));
                engine
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

/// A block agreement order of account `account` for deal `deal` with
/// `counterparty`, 100,000 t of CEA at the reference.
fn block(k: u32, account: u32, counterparty: u32, side: cx::Side, deal: u64) -> cx::Command {
    cx::Command::NewBlock(cx::NewBlock {
        user: cx::UserId::new(0),
        token: cx::Token::from_text(&format!("K{k}")).expect("short token"),
        account: cx::AccountId::new(account),
        counterparty: Some(cx::AccountId::new(counterparty)),
        side,
        qty: cx::Qty::new(100_000),
        stock: cx::StockCode::from_text("CEA").expect("CEA"),
        price: REFERENCE * cx::command::WIRE_PER_FEN,
        deal_id: deal.to_le_bytes(),
    })
}

/// carbonx alone: 1,000 block pairs, each matched by its deal, while
/// `BLOCKS_WAITING` other block orders wait for counterparties that never
/// come (the default capacity is 10,000): the cost of a block order must
/// not grow with the number waiting.
fn blocks(c: &mut Criterion) {
    const BLOCKS_WAITING: u32 = 9_000;
    let waiting: Vec<cx::Command> =
        (0..BLOCKS_WAITING).map(|k| block(k, 10_000 + k, 30_000 + k, cx::Side::Buy, u64::from(k))).collect();
    let pairs: Vec<cx::Command> = (0..1_000u32)
        .flat_map(|k| {
            let (buyer, seller, deal) = (2 * k + 1, 2 * k + 2, 1_000_000 + u64::from(k));
            let id = BLOCKS_WAITING + 2 * k;
            [block(id, buyer, seller, cx::Side::Buy, deal), block(id + 1, seller, buyer, cx::Side::Sell, deal)]
        })
        .collect();
    let mut g = c.benchmark_group("blocks");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("1,000 pairs matched with 9,000 waiting", |b| {
        let mut out: Vec<cx::Event> = Vec::with_capacity(1 << 12);
        b.iter_batched(
            || carbonx_book(&waiting),
            |mut engine| {
                let mut trades = 0;
                for command in &pairs {
                    out.clear();
                    engine.apply(black_box(command), cx::Timestamp::from_nanos(2), &mut out);
                    trades += out.iter().filter(|e| matches!(e, cx::Event::Executed(_))).count();
                }
                assert_eq!((trades, engine.waiting_blocks()), (1_000, BLOCKS_WAITING as usize));
                engine
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn streams(c: &mut Criterion) {
    let (prefill, stream) = mixed_streams();
    compare(c, "mixed", "exchange_core_mix", &prefill, &stream);
    risk(c, &prefill, &stream);
    let (prefill, stream) = deep_streams();
    compare(c, "deep", "deep_book", &prefill, &stream);
    let (prefill, stream) = adds_cancels_streams();
    adds_cancels(c, &prefill, &stream);
}

/// Tonnes resting on each side of carbonx's book.
fn carbonx_resting(engine: &cx::Engine) -> (u64, u64) {
    let side = |s| engine.depth(cx::InstrumentId::new(0), s, usize::MAX).map(|l| l.qty).sum();
    (side(cx::Side::Buy), side(cx::Side::Sell))
}

/// Runs the stream through each engine once and checks they did the same
/// work: nothing refused, nothing traded, the same tonnes left resting.
fn check_adds_cancels(cx_all: &[cx::Command], mc_all: &[mc::Command], peers: (&[lob::OrderType], &[ObrOp])) {
    let ours = carbonx_work(&[], cx_all);
    let theirs = matchcore_work(&[], mc_all);
    let nothing = Work { fills: 0, tonnes: 0, rejects: 0 };
    assert_eq!((&ours, &theirs), (&nothing, &nothing), "adds_cancels: a command traded or was refused");
    let resting = carbonx_resting(&carbonx_book(cx_all));
    check_lobster(peers.0, resting);
    check_orderbook_rs(peers.1, resting);
}

fn adds_cancels(c: &mut Criterion, prefill: &[Op], stream: &[Op]) {
    let all: Vec<Op> = prefill.iter().chain(stream).copied().collect();
    let (cx_all, mc_all) = (to_carbonx(&all), to_matchcore(&all));
    let (lob_all, obr_all) = (to_lobster(&all), to_orderbook_rs(&all));
    check_adds_cancels(&cx_all, &mc_all, (&lob_all, &obr_all));
    eprintln!("adds_cancels: {} ops after {} resting; the four engines did the same work", stream.len(), prefill.len());
    let ((cx_pre, cx_stream), (mc_pre, mc_stream)) = (cx_all.split_at(prefill.len()), mc_all.split_at(prefill.len()));
    let ((lob_pre, lob_stream), (obr_pre, obr_stream)) =
        (lob_all.split_at(prefill.len()), obr_all.split_at(prefill.len()));
    let mut g = c.benchmark_group("adds_cancels");
    g.throughput(Throughput::Elements(stream.len() as u64));
    bench_carbonx(&mut g, "deep_book", cx_pre, cx_stream);
    bench_matchcore(&mut g, "deep_book", mc_pre, mc_stream);
    g.bench_function("deep_book/lobster", |b| {
        b.iter_batched(
            || lobster_book(lob_pre),
            |mut book| {
                for order in lob_stream {
                    black_box(book.execute(black_box(*order)));
                }
                book
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("deep_book/orderbook_rs", |b| {
        b.iter_batched(
            || orderbook_rs_book(obr_pre),
            |book| {
                for op in obr_stream {
                    black_box(orderbook_rs_apply(&book, black_box(op)));
                }
                book
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::per_op, super::streams, super::auction, super::blocks);
}
criterion_main!(group::benches);
