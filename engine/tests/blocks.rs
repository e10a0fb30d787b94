//! Block agreement trades and pick orders, through the public API with
//! accounts on: matching rules and every mismatch, the block band and size,
//! the afternoon-only window, expiry, cancel, replace, duplicate deals,
//! statistics kept apart from listing, and pick orders inside and outside
//! the best five levels.

use carbonx_engine::accounts::AccountTable;
use carbonx_engine::*;

const CEA: &str = "CEA";

fn engine(config: EngineConfig) -> Engine {
    Engine::with_accounts(config, AccountTable::demo(7, 10)).unwrap()
}

fn block(token: &str, account: u32, counterparty: u32, side: Side, qty: u32, fen: u32, deal: &str) -> Command {
    let mut deal_id = [b' '; 8];
    deal_id[..deal.len()].copy_from_slice(deal.as_bytes());
    Command::NewBlock(NewBlock {
        user: UserId::new(0),
        token: Token::from_text(token).unwrap(),
        account: AccountId::new(account),
        counterparty: Some(AccountId::new(counterparty)),
        side,
        qty: Qty::new(qty),
        stock: StockCode::from_text(CEA).unwrap(),
        price: fen * 100,
        deal_id,
    })
}

fn limit(token: &str, account: u32, side: Side, qty: u32, fen: u32) -> Command {
    let stock = StockCode::from_text(CEA).unwrap();
    let token = Token::from_text(token).unwrap();
    Command::NewOrder(NewOrder::limit(UserId::new(0), token, AccountId::new(account), side, qty, stock, fen))
}

fn pick(token: &str, account: u32, side: Side, qty: u32, target: u64) -> Command {
    Command::Pick(Pick {
        user: UserId::new(0),
        token: Token::from_text(token).unwrap(),
        account: AccountId::new(account),
        side,
        qty: Qty::new(qty),
        stock: StockCode::from_text(CEA).unwrap(),
        target: OrderId::new(target),
    })
}

fn cancel(token: &str, qty: u32) -> Command {
    Command::Cancel(Cancel { user: UserId::new(0), token: Token::from_text(token).unwrap(), qty: Qty::new(qty) })
}

/// Applies commands at 14:00 Shanghai on 2026-11-24 (afternoon: both methods open).
fn run(e: &mut Engine, commands: &[Command]) -> Vec<Event> {
    run_at(e, commands, 1_795_500_000)
}

fn run_at(e: &mut Engine, commands: &[Command], unix_secs: u64) -> Vec<Event> {
    let mut out = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        e.apply(c, Timestamp::from_nanos(unix_secs * 1_000_000_000 + i as u64), &mut out);
        e.check_invariants();
    }
    out
}

fn trades(events: &[Event]) -> Vec<(Method, u32, u32)> {
    let f = |e: &Event| match e {
        Event::Executed(x) => Some((x.method, x.qty.tonnes(), x.price.fen())),
        _ => None,
    };
    events.iter().filter_map(f).collect()
}

fn rejects(events: &[Event]) -> String {
    let f = |e: &Event| match e {
        Event::Rejected { reason, .. } => Some(reason.letter() as char),
        _ => None,
    };
    events.iter().filter_map(f).collect()
}

#[test]
fn mirror_orders_trade_once_and_move_cash_and_holdings() {
    let mut e = engine(EngineConfig::demo());
    let out = run(
        &mut e,
        &[block("s", 1, 2, Side::Sell, 150_000, 8_000, "D1"), block("b", 2, 1, Side::Buy, 150_000, 8_000, "D1")],
    );
    assert_eq!(trades(&out), vec![(Method::Block, 150_000, 8_000)]);
    let accepted: Vec<_> =
        out.iter().filter_map(|e| if let Event::Accepted(o) = e { Some(o.method) } else { None }).collect();
    assert_eq!(accepted, vec![Method::Block, Method::Block]);
    assert!(
        !out.iter().any(|e| matches!(e, Event::BookAdd { .. } | Event::BookDelete { .. })),
        "blocks are never on the book"
    );
    let table = e.accounts().unwrap();
    let cea = InstrumentId::new(0);
    assert_eq!(table.holding(AccountId::new(2), cea).unwrap().bought_today, 150_000);
    assert_eq!(table.cash(AccountId::new(1)).unwrap().available, 10_000_000_000 + 150_000 * 8_000);
    assert_eq!(e.waiting_blocks(), 0);
}

#[test]
fn every_mismatch_waits_silently() {
    let base = block("s", 1, 2, Side::Sell, 150_000, 8_000, "D1");
    let mismatches = [
        block("b", 2, 1, Side::Buy, 150_000, 8_001, "D1"),  // price
        block("b", 2, 1, Side::Buy, 150_001, 8_000, "D1"),  // quantity
        block("b", 2, 1, Side::Buy, 150_000, 8_000, "D2"),  // deal id
        block("b", 2, 3, Side::Buy, 150_000, 8_000, "D1"),  // names the wrong counterparty
        block("b", 3, 1, Side::Buy, 150_000, 8_000, "D1"),  // not the account the seller named
        block("b", 2, 1, Side::Sell, 150_000, 8_000, "D1"), // same side
    ];
    for (i, other) in mismatches.into_iter().enumerate() {
        let mut e = engine(EngineConfig::demo());
        let out = run(&mut e, &[base.clone(), other]);
        assert_eq!((trades(&out), rejects(&out)), (vec![], String::new()), "case {i}");
        assert_eq!(e.waiting_blocks(), 2, "case {i}");
    }
}

#[test]
fn size_band_deal_and_counterparty_rejects() {
    let mut e = engine(EngineConfig::demo());
    // CEA reference 74.63: block band ceil(74.63 × 0.7) = 52.25 .. floor(74.63 × 1.3) = 97.01.
    let out = run(
        &mut e,
        &[
            block("z", 1, 2, Side::Sell, 99_999, 8_000, "A"),     // below 100,000 t
            block("k1", 1, 2, Side::Sell, 100_000, 9_702, "B"),   // one tick above the band
            block("k2", 1, 2, Side::Sell, 100_000, 5_224, "C"),   // one tick below
            block("ok1", 1, 2, Side::Sell, 100_000, 9_701, "D"),  // at the upper edge
            block("ok2", 1, 2, Side::Sell, 100_000, 5_225, "E"),  // at the lower edge
            block("dup", 1, 3, Side::Sell, 100_000, 8_000, "D"),  // same account, same live deal
            block("self", 1, 1, Side::Sell, 100_000, 8_000, "F"), // names itself
            block("i", 9, 2, Side::Sell, 2_000_001, 8_000, "G"),  // more than it holds
        ],
    );
    assert_eq!(rejects(&out), "ZKKOOi");
    assert_eq!(e.waiting_blocks(), 2);
}

#[test]
fn blocks_trade_only_in_the_afternoon_and_expire_at_the_close() {
    let mut config = EngineConfig::demo();
    config.session = SessionMode::Calendar;
    let mut e = engine(config);
    let morning = 1_795_500_000 - 4 * 3_600; // 10:00 Shanghai
    let out = run_at(&mut e, &[block("m", 1, 2, Side::Sell, 100_000, 8_000, "D")], morning);
    assert_eq!(rejects(&out), "C");
    let out = run(&mut e, &[block("a", 1, 2, Side::Sell, 100_000, 8_000, "D")]);
    assert_eq!(rejects(&out), "");
    let after_close = 1_795_500_000 + 3_600 + 1; // 15:00:01
    let out = run_at(&mut e, &[Command::Clock], after_close);
    let expired = out.iter().any(|e| matches!(e, Event::Cancelled { reason: CancelReason::Expired, decrement, .. } if decrement.tonnes() == 100_000));
    assert!(expired, "{out:?}");
    assert_eq!(e.waiting_blocks(), 0);
    assert_eq!(e.accounts().unwrap().holding(AccountId::new(1), InstrumentId::new(0)).unwrap().locked, 0);
}

#[test]
fn a_block_can_be_cancelled_but_not_reduced_or_replaced() {
    let mut e = engine(EngineConfig::demo());
    run(&mut e, &[block("s", 1, 2, Side::Sell, 150_000, 8_000, "D1")]);
    let replace = Command::Replace(Replace {
        user: UserId::new(0),
        token: Token::from_text("s").unwrap(),
        new_token: Token::from_text("s2").unwrap(),
        qty: Qty::new(150_000),
        price: 810_000,
        tif: 99_999,
        display: b'Y',
        iso: b'N',
        min_qty: 0,
    });
    let out = run(&mut e, &[cancel("s", 100_000), replace, cancel("s", 0)]);
    assert!(matches!(out[0], Event::CancelRejected { .. }));
    assert_eq!(rejects(&out), "O");
    assert!(matches!(out.last(), Some(Event::Cancelled { reason: CancelReason::User, .. })));
    assert_eq!(e.waiting_blocks(), 0);
}

#[test]
fn block_trades_stay_out_of_the_listing_statistics() {
    let mut e = engine(EngineConfig::demo());
    run(&mut e, &[limit("s", 3, Side::Sell, 10, 7_500), limit("b", 4, Side::Buy, 10, 7_500)]);
    run(
        &mut e,
        &[block("bs", 1, 2, Side::Sell, 150_000, 9_000, "D1"), block("bb", 2, 1, Side::Buy, 150_000, 9_000, "D1")],
    );
    let cea = InstrumentId::new(0);
    let listing = e.daily_stats(cea, Method::Listing);
    assert_eq!((listing.high.fen(), listing.close.fen(), listing.volume), (7_500, 7_500, 10));
    let blocks = e.daily_stats(cea, Method::Block);
    assert_eq!((blocks.volume, blocks.turnover), (150_000, 150_000 * 9_000));
    let out = run(&mut e, &[Command::Roll]);
    let stats: Vec<_> = out
        .iter()
        .filter_map(|e| if let Event::DailyStats(s) = e { Some((s.instrument, s.method)) } else { None })
        .collect();
    assert_eq!(stats.len(), 21, "listing, block and auction statistics for each of the seven instruments");
    assert_eq!(e.reference(cea).reference.fen(), 7_500, "the close ignores the block trade");
}

#[test]
fn pick_trades_a_named_order_within_the_best_five_levels() {
    let mut e = engine(EngineConfig::demo());
    // Six ask levels 75.00 .. 75.05, two orders at the best.
    let mut setup = vec![limit("a0", 1, Side::Sell, 10, 7_500)];
    setup.extend((0..6).map(|i| limit(&format!("a{}", i + 1), 1, Side::Sell, 10, 7_500 + i)));
    run(&mut e, &setup);
    // Ref 2 is the second order at 75.00: a pick skips time priority inside the level.
    let out = run(&mut e, &[pick("p1", 2, Side::Buy, 15, 2)]);
    let fills: Vec<_> = out
        .iter()
        .filter_map(|e| {
            if let Event::Executed(x) = e { Some((x.maker.id.get(), x.qty.tonnes(), x.price.fen())) } else { None }
        })
        .collect();
    assert_eq!(fills, vec![(2, 10, 7_500)]);
    assert!(
        matches!(out.last(), Some(Event::Cancelled { reason: CancelReason::ImmediateOrCancel, decrement, .. }) if decrement.tonnes() == 5)
    );
    // Level 6 (75.05, ref 7) is outside the best five; own account, same side and unknown refs are not pickable.
    let out = run(
        &mut e,
        &[
            pick("p2", 2, Side::Buy, 1, 7),
            pick("p3", 1, Side::Buy, 1, 3),
            pick("p4", 2, Side::Sell, 1, 3),
            pick("p5", 2, Side::Buy, 1, 99),
        ],
    );
    assert_eq!(rejects(&out), "GGGG");
    let out = run(&mut e, &[pick("p6", 2, Side::Buy, 10, 6)]); // level 5 (75.04)
    assert_eq!(trades(&out), vec![(Method::Listing, 10, 7_504)]);
}

#[test]
fn the_kill_switch_also_cancels_waiting_blocks() {
    let mut e = engine(EngineConfig::demo());
    run(&mut e, &[block("s", 1, 2, Side::Sell, 150_000, 8_000, "D1"), limit("l", 1, Side::Sell, 10, 7_600)]);
    let out = run(&mut e, &[Command::CancelAccount(AccountId::new(1))]);
    let cancelled =
        out.iter().filter(|e| matches!(e, Event::Cancelled { reason: CancelReason::Supervisory, .. })).count();
    assert_eq!(cancelled, 2);
    assert_eq!((e.waiting_blocks(), e.resting_count()), (0, 0));
}
