//! One-way bidding auctions through the public API: allocation by price
//! then time, uniform and pay-as-bid settlement, the window driven by time
//! (before the command that reaches its end, and before a close that comes
//! first), and a long seeded random stream of announcements, bids,
//! cancels, reduces and listing orders with `check_invariants()` (locks
//! against live bids and open auctions, conservation) after every command,
//! an independent tally of every auction's outcome, and a replay compared
//! event by event and by state hash.

use carbonx_engine::accounts::AccountTable;
use carbonx_engine::journal::{Record, decode, encode};
use carbonx_engine::*;
use carbonx_testkit::Rng;

const SEC: u64 = 1_000_000_000;
/// 2026-11-24 10:00 local (Asia/Shanghai), a Tuesday.
const T0: u64 = (1_795_478_400 - 8 * 3600 + 10 * 3600) * SEC;

fn cea() -> StockCode {
    StockCode::from_text("CEA").unwrap()
}

fn demo(config: EngineConfig, accounts: u32) -> Engine {
    Engine::with_accounts(config, AccountTable::demo(7, accounts)).unwrap()
}

fn announce(id: &str, seller: u32, qty: u32, start: u64, end: u64, pricing: Pricing, floor: FloorRule) -> Command {
    Command::AnnounceAuction(AnnounceAuction {
        id: AuctionId::from_text(id).unwrap(),
        stock: cea(),
        seller: AccountId::new(seller),
        seller_user: UserId::new(9),
        qty: Qty::new(qty),
        start: Timestamp::from_nanos(start),
        end: Timestamp::from_nanos(end),
        pricing,
        floor,
    })
}

fn bid(token: &str, account: u32, qty: u32, fen: u32, auction: &str) -> Command {
    Command::AuctionBid(AuctionBid {
        user: UserId::new(u16::try_from(account % 3).unwrap()),
        token: Token::from_text(token).unwrap(),
        account: AccountId::new(account),
        qty: Qty::new(qty),
        stock: cea(),
        price: fen * 100,
        auction: AuctionId::from_text(auction).unwrap(),
    })
}

fn apply(engine: &mut Engine, cmd: &Command, ns: u64) -> Vec<Event> {
    let mut out = Vec::new();
    engine.apply(cmd, Timestamp::from_nanos(ns), &mut out);
    engine.check_invariants();
    out
}

fn fills(events: &[Event]) -> Vec<(u32, u32, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Executed(x) if x.method == Method::Auction => {
                Some((x.price.fen(), x.qty.tonnes(), format!("{:?}", x.taker.token)))
            }
            _ => None,
        })
        .collect()
}

fn cash(engine: &Engine, account: u32) -> (i64, i64) {
    let c = engine.accounts().unwrap().cash(AccountId::new(account)).unwrap();
    (c.available, c.locked)
}

#[test]
fn uniform_fills_by_price_then_time_and_everyone_pays_the_marginal_price() {
    let mut e = demo(EngineConfig::demo(), 10);
    apply(&mut e, &announce("A1", 0, 100_000, T0, T0 + 60 * SEC, Pricing::Uniform, FloorRule::PreviousClose), T0);
    for (i, (token, account, qty, fen)) in
        [("x", 1, 50_000, 7_600), ("y", 2, 40_000, 7_500), ("z", 3, 40_000, 7_500), ("w", 4, 10_000, 7_463)]
            .into_iter()
            .enumerate()
    {
        let out = apply(&mut e, &bid(token, account, qty, fen, "A1"), T0 + 1 + i as u64);
        assert!(matches!(out[0], Event::Accepted(o) if o.method == Method::Auction), "{out:?}");
    }
    let out = apply(&mut e, &Command::Clock, T0 + 60 * SEC);
    let Event::AuctionResult(result) = out[0] else { panic!("result first: {out:?}") };
    assert_eq!((result.sold.tonnes(), result.price.map(Price::fen), result.winners), (100_000, Some(7_500), 3));
    assert_eq!(fills(&out), [(7_500, 50_000, "x".into()), (7_500, 40_000, "y".into()), (7_500, 10_000, "z".into())]);
    // x bid 76.00 and pays 75.00: 50,000 × 1.00 yuan comes back; z keeps nothing locked.
    assert_eq!(cash(&e, 1), (10_000_000_000 - 50_000 * 7_500, 0));
    assert_eq!(cash(&e, 3), (10_000_000_000 - 10_000 * 7_500, 0));
    assert_eq!(cash(&e, 4), (10_000_000_000, 0));
    assert_eq!(cash(&e, 0), (10_000_000_000 + 100_000 * 7_500, 0));
    let stats = e.daily_stats(InstrumentId::new(0), Method::Auction);
    assert_eq!((stats.volume, stats.turnover, stats.trades), (100_000, 100_000 * 7_500, 3));
    let listing = e.daily_stats(InstrumentId::new(0), Method::Listing);
    assert_eq!((listing.volume, listing.close.fen()), (0, 7_463), "auction trades never move the listing close");
}

#[test]
fn an_ended_auction_keeps_its_ranked_bids_and_result_for_the_operator() {
    let mut e = demo(EngineConfig::demo(), 10);
    apply(&mut e, &announce("R1", 0, 100_000, T0, T0 + 60 * SEC, Pricing::Uniform, FloorRule::PreviousClose), T0);
    apply(&mut e, &bid("late", 1, 60_000, 7_500, "R1"), T0 + 1);
    apply(&mut e, &bid("high", 2, 70_000, 7_600, "R1"), T0 + 2);
    apply(&mut e, &bid("gone", 3, 5_000, 7_700, "R1"), T0 + 3);
    apply(&mut e, &bid("cut", 4, 9_000, 7_463, "R1"), T0 + 4);
    let user = UserId::new(1); // account 4 % 3
    // A Cancel names the quantity the bid keeps: 4,000 of 9,000.
    let reduce = Command::Cancel(Cancel { user, token: Token::from_text("cut").unwrap(), qty: Qty::new(4_000) });
    apply(&mut e, &reduce, T0 + 5);
    let cancel =
        Command::Cancel(Cancel { user: UserId::new(0), token: Token::from_text("gone").unwrap(), qty: Qty::ZERO });
    apply(&mut e, &cancel, T0 + 6);
    let id = AuctionId::from_text("R1").unwrap();
    assert_eq!(e.ranked_bids(id).count(), 0, "sealed while open");
    assert_eq!(e.auction_result(id), None);
    apply(&mut e, &Command::Clock, T0 + 60 * SEC);
    let ranked: Vec<_> = e
        .ranked_bids(id)
        .map(|b| {
            let paid = b.paid.map(Price::fen);
            (b.account.get(), b.price.fen(), b.entered.tonnes(), b.withdrawn.tonnes(), b.filled.tonnes(), paid)
        })
        .collect();
    let paid = Some(7_500);
    assert_eq!(
        ranked,
        [
            (3, 7_700, 5_000, 5_000, 0, None),
            (2, 7_600, 70_000, 0, 70_000, paid),
            (1, 7_500, 60_000, 0, 30_000, paid),
            (4, 7_463, 9_000, 5_000, 0, None),
        ]
    );
    let result = e.auction_result(id).unwrap();
    assert_eq!((result.sold.tonnes(), result.winners, result.bids, result.expired), (100_000, 2, 3, false));
}

#[test]
fn pay_as_bid_pays_own_prices_and_returns_the_unsold_quantity() {
    let mut e = demo(EngineConfig::demo(), 10);
    let a = announce("P1", 0, 200_000, T0, T0 + 10 * SEC, Pricing::PayAsBid, FloorRule::PreviousCloseMinus10);
    let out = apply(&mut e, &a, T0);
    let info = out.iter().find_map(|e| if let Event::AuctionAnnounced(i) = e { Some(*i) } else { None }).unwrap();
    assert_eq!((info.floor.fen(), info.cap.fen()), (6_717, 8_209));
    apply(&mut e, &bid("a", 1, 1_000, 6_717, "P1"), T0 + 1);
    apply(&mut e, &bid("b", 2, 2_000, 8_000, "P1"), T0 + 2);
    let out = apply(&mut e, &Command::Clock, T0 + 10 * SEC);
    assert_eq!(fills(&out), [(8_000, 2_000, "b".into()), (6_717, 1_000, "a".into())]);
    let Event::AuctionResult(r) = out[0] else { panic!() };
    // (2,000 × 80.00 + 1,000 × 67.17) / 3,000 = 75.7233 → 75.72.
    assert_eq!((r.sold.tonnes(), r.price.map(Price::fen)), (3_000, Some(7_572)));
    let h = e.accounts().unwrap().holding(AccountId::new(0), InstrumentId::new(0)).unwrap();
    assert_eq!((h.available, h.locked), (2_000_000 - 3_000, 0));
}

#[test]
fn the_allocation_happens_before_the_command_that_reaches_the_window_end() {
    let mut e = demo(EngineConfig::demo(), 10);
    apply(&mut e, &announce("A1", 0, 100_000, T0, T0 + 5 * SEC, Pricing::Uniform, FloorRule::PreviousClose), T0);
    apply(&mut e, &bid("x", 1, 10, 7_500, "A1"), T0 + 1);
    assert!(!e.clock_due(Timestamp::from_nanos(T0 + 5 * SEC - 1)));
    assert!(e.clock_due(Timestamp::from_nanos(T0 + 5 * SEC)), "the sequencer must journal a clock at the end");
    // A cancel at the end is too late: the bid has already filled.
    let cancel =
        Command::Cancel(Cancel { user: UserId::new(1), token: Token::from_text("x").unwrap(), qty: Qty::ZERO });
    let out = apply(&mut e, &cancel, T0 + 5 * SEC);
    assert!(matches!(out[0], Event::AuctionResult(_)), "{out:?}");
    assert!(matches!(out.last(), Some(Event::CancelRejected { .. })), "{out:?}");
    assert_eq!(fills(&out).len(), 1);
}

#[test]
fn an_auction_ending_after_the_close_expires_at_the_close_even_when_no_command_came_between() {
    let mut config = EngineConfig::demo();
    config.session = SessionMode::Calendar;
    let mut e = demo(config, 10);
    let three_pm = T0 + 5 * 3600 * SEC;
    let a = announce("A1", 0, 100_000, T0, three_pm + 1_800 * SEC, Pricing::Uniform, FloorRule::PreviousClose);
    apply(&mut e, &a, T0);
    apply(&mut e, &bid("x", 1, 10, 7_500, "A1"), T0 + 1);
    // The first command after the close comes after the window's end too.
    let out = apply(&mut e, &Command::Clock, three_pm + 3_600 * SEC);
    let Event::AuctionResult(r) = out.iter().find(|e| matches!(e, Event::AuctionResult(_))).copied().unwrap() else {
        unreachable!()
    };
    assert!(r.expired && r.sold.is_zero(), "{r:?}");
    assert!(fills(&out).is_empty());
    assert_eq!(cash(&e, 1), (10_000_000_000, 0));
}

#[test]
fn kill_switch_and_disconnect_cancel_bids_and_the_bid_list_has_a_capacity() {
    let mut config = EngineConfig::demo();
    config.auction_bids_max = 2;
    let mut e = demo(config, 10);
    apply(&mut e, &announce("A1", 0, 100_000, T0, T0 + 5 * SEC, Pricing::Uniform, FloorRule::PreviousClose), T0);
    apply(&mut e, &bid("x", 1, 10, 7_500, "A1"), T0 + 1);
    apply(&mut e, &bid("y", 2, 10, 7_500, "A1"), T0 + 2);
    let out = apply(&mut e, &bid("z", 3, 10, 7_500, "A1"), T0 + 3);
    assert!(matches!(out[0], Event::Rejected { reason: RejectReason::CapacityFull, .. }), "{out:?}");
    let out = apply(&mut e, &Command::CancelAccount(AccountId::new(1)), T0 + 4);
    assert!(matches!(out[0], Event::Cancelled { reason: CancelReason::Supervisory, .. }), "{out:?}");
    let out = apply(&mut e, &Command::CancelUser(UserId::new(2)), T0 + 5);
    assert!(matches!(out[0], Event::Cancelled { reason: CancelReason::User, .. }), "{out:?}");
    // Cancelled bids still count against the list (positions are stable).
    let out = apply(&mut e, &bid("z", 3, 10, 7_500, "A1"), T0 + 6);
    assert!(matches!(out[0], Event::Rejected { reason: RejectReason::CapacityFull, .. }), "{out:?}");
    assert_eq!(cash(&e, 1), (10_000_000_000, 0));
}

#[test]
fn a_resent_bid_token_is_ignored_and_a_bid_cannot_be_replaced() {
    let mut e = demo(EngineConfig::demo(), 10);
    apply(&mut e, &announce("A1", 0, 100_000, T0, T0 + 5 * SEC, Pricing::Uniform, FloorRule::PreviousClose), T0);
    apply(&mut e, &bid("x", 1, 10, 7_500, "A1"), T0 + 1);
    assert!(apply(&mut e, &bid("x", 1, 10, 7_500, "A1"), T0 + 2).is_empty());
    let replace = Command::Replace(Replace {
        user: UserId::new(1),
        token: Token::from_text("x").unwrap(),
        new_token: Token::from_text("x2").unwrap(),
        qty: Qty::new(5),
        price: 750_000,
        tif: 99_999,
        display: b'Y',
        iso: b'N',
        min_qty: 0,
    });
    let out = apply(&mut e, &replace, T0 + 3);
    assert!(matches!(out[0], Event::Rejected { reason: RejectReason::InvalidField, .. }), "{out:?}");
}

/// Accounts with little cash or few tonnes, so that every refusal happens.
const CSV: &str = "account,cash_yuan,CEA,CEA21,CEA22,CEA23,CEA24,CEA25,CCER\n\
    0001,50000000,300000,0,0,0,0,0,0\n\
    0002,2000000,150000,0,0,0,0,0,0\n\
    0003,10000000,0,0,0,0,0,0,0\n\
    0004,500000,1000,0,0,0,0,0,0\n\
    0005,30000000,500000,0,0,0,0,0,0\n\
    0006,1000,0,0,0,0,0,0,0\n";

/// One random command at `now` (local 10:00 onwards, always-open).
fn random_command(rng: &mut Rng, n: u64, now: u64) -> Command {
    let ids = ["A1", "A2", "A3"];
    let account = rng.below(6) as u32;
    let token = format!("t{}", rng.below(n.max(1)));
    match rng.below(100) {
        0..=3 => {
            let start = now - SEC + rng.below(3) * SEC;
            let end = start + rng.below(40) * SEC;
            let pricing = if rng.below(2) == 0 { Pricing::Uniform } else { Pricing::PayAsBid };
            let floor = if rng.below(2) == 0 { FloorRule::PreviousClose } else { FloorRule::PreviousCloseMinus10 };
            let qty = 99_000 + rng.below(300_000) as u32;
            announce(ids[rng.below(3) as usize], account, qty, start, end, pricing, floor)
        }
        4..=49 => {
            let fen = 6_710 + rng.below(1_510) as u32;
            let big = rng.below(4) == 0;
            let qty = 1 + rng.below(if big { 200_000 } else { 5_000 }) as u32;
            let mut c = bid(&token, account, qty, fen, ids[rng.below(3) as usize]);
            if let Command::AuctionBid(b) = &mut c {
                b.user = UserId::new(rng.below(3) as u16);
            }
            c
        }
        50..=64 => Command::Cancel(Cancel {
            user: UserId::new(rng.below(3) as u16),
            token: Token::from_text(&token).unwrap(),
            qty: Qty::new(if rng.below(2) == 0 { 0 } else { rng.below(3_000) as u32 }),
        }),
        65..=89 => {
            let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
            let fen = 7_300 + rng.below(300) as u32;
            let user = UserId::new(rng.below(3) as u16);
            let qty = 1 + rng.below(2_000) as u32;
            Command::NewOrder(NewOrder::limit(
                user,
                Token::from_text(&token).unwrap(),
                AccountId::new(account),
                side,
                qty,
                cea(),
                fen,
            ))
        }
        90..=95 => Command::Clock,
        96..=97 => Command::CancelAccount(AccountId::new(account)),
        98 => Command::CancelUser(UserId::new(rng.below(3) as u16)),
        _ if rng.below(4) == 0 => Command::Roll,
        _ => Command::Clock,
    }
}

/// Checks each auction's events: the result first, fills summing to the
/// quantity sold at the uniform price or at each bid's own price, ranked
/// by price (never rising), and the reported price.
fn check_results(events: &[Event]) {
    let mut i = 0;
    while i < events.len() {
        let Event::AuctionResult(r) = events[i] else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        let (mut sold, mut turnover, mut last) = (0u64, 0u128, u32::MAX);
        while let Some(Event::Executed(x)) =
            events.get(j).filter(|e| matches!(e, Event::Executed(x) if x.method == Method::Auction))
        {
            assert!(x.price.fen() <= last, "fills out of price order");
            last = x.price.fen();
            sold += u64::from(x.qty.tonnes());
            turnover += u128::from(x.price.fen()) * u128::from(x.qty.tonnes());
            if r.pricing == Pricing::Uniform {
                assert_eq!(Some(x.price), r.price, "uniform: everyone pays the clearing price");
            }
            assert_eq!(x.maker.token, r.id.token(), "the seller's fill carries the auction id");
            j += 1;
        }
        assert_eq!(sold, u64::from(r.sold.tonnes()), "{r:?}");
        assert_eq!(turnover, r.turnover, "{r:?}");
        assert!(r.sold <= r.offered);
        if sold == 0 {
            assert_eq!(r.price, None);
        } else if r.pricing == Pricing::PayAsBid {
            let vwap = ((2 * turnover + u128::from(sold)) / (2 * u128::from(sold))) as u32;
            assert_eq!(r.price.map(Price::fen), Some(vwap), "average rounded half-up to the tick");
        }
        i = j;
    }
}

fn run_stream(seed: u64, count: u64) -> (Vec<Command>, Vec<Vec<Event>>, u64) {
    let config = EngineConfig::demo();
    let codes: Vec<&str> = config.instruments.iter().map(|i| i.code.as_str()).collect();
    let table = AccountTable::from_csv(CSV, &codes).unwrap();
    let (cash0, cea0) = (table.total_cash(), table.total_holding(InstrumentId::new(0)));
    let mut engine = Engine::with_accounts(config, table).unwrap();
    let mut rng = Rng::new(seed);
    let (mut commands, mut all) = (Vec::new(), Vec::new());
    let mut now = T0;
    for i in 0..count {
        now += rng.below(2 * SEC / 3);
        let command = random_command(&mut rng, 400, now);
        let mut out = Vec::new();
        engine.apply(&command, Timestamp::from_nanos(now), &mut out);
        engine.check_invariants();
        check_results(&out);
        let t = engine.accounts().unwrap();
        assert_eq!((t.total_cash(), t.total_holding(InstrumentId::new(0))), (cash0, cea0), "seed {seed} command {i}");
        let mut bytes = Vec::new();
        encode(
            &Record { seq: Seq::new(i + 1), timestamp: Timestamp::from_nanos(now), command: command.clone() },
            &mut bytes,
        );
        assert_eq!(decode(&bytes).unwrap().unwrap().0.command, command, "journal round trip");
        commands.push(command);
        all.push(out);
    }
    (commands, all, engine.state_hash())
}

#[test]
fn a_seeded_random_stream_keeps_every_invariant_and_replays_identically() {
    let seed = carbonx_testkit::seed("auction stream", 0x00C0_FFEE);
    let (commands, events, hash) = run_stream(seed, 30_000);
    let count = |pred: &dyn Fn(&Event) -> bool| events.iter().flatten().filter(|e| pred(e)).count();
    let results = count(&|e| matches!(e, Event::AuctionResult(r) if !r.sold.is_zero()));
    let refusals = count(&|e| matches!(e, Event::AuctionRefused { .. }));
    let fills = count(&|e| matches!(e, Event::Executed(x) if x.method == Method::Auction));
    let bid_cancels = count(&|e| matches!(e, Event::Cancelled { reason: CancelReason::Expired, .. }));
    println!("auctions sold {results}, refusals {refusals}, auction fills {fills}, expired bids {bid_cancels}");
    assert!(
        results > 10 && refusals > 10 && fills > 50 && bid_cancels > 10,
        "stream too tame: {results} {refusals} {fills} {bid_cancels}"
    );
    // Replay: the same commands at the same times give the same events and state.
    let config = EngineConfig::demo();
    let codes: Vec<&str> = config.instruments.iter().map(|i| i.code.as_str()).collect();
    let mut replay = Engine::with_accounts(config.clone(), AccountTable::from_csv(CSV, &codes).unwrap()).unwrap();
    let mut rng = Rng::new(seed);
    let mut now = T0;
    for (i, command) in commands.iter().enumerate() {
        now += rng.below(2 * SEC / 3);
        let _ = random_command(&mut rng, 400, now);
        let mut out = Vec::new();
        replay.apply(command, Timestamp::from_nanos(now), &mut out);
        assert_eq!(out, events[i], "replay differs at command {i}");
    }
    assert_eq!(replay.state_hash(), hash);
}

#[test]
fn auction_limits_are_validated() {
    let bad = |f: fn(&mut EngineConfig)| {
        let mut config = EngineConfig::demo();
        f(&mut config);
        Engine::new(config).err()
    };
    assert!(matches!(bad(|c| c.auctions_max = 0), Some(carbonx_engine::config::ConfigError::BadAuctionLimits(0, _))));
    assert!(matches!(
        bad(|c| c.auction_bids_max = 0),
        Some(carbonx_engine::config::ConfigError::BadAuctionLimits(_, 0))
    ));
    assert!(bad(|c| (c.auctions_max, c.auction_bids_max) = (64, 1 << 20)).is_some());
    assert!(bad(|c| c.auction_bid_qty_min = Qty::ZERO).is_some());
    assert!(bad(|c| (c.auctions_max, c.auction_bids_max) = (2, 1 << 10)).is_none());
}
