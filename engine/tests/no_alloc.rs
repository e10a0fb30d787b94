//! Proof that `Engine::apply` never allocates after start-up: a counting
//! global allocator wraps the system one, and a long mixed stream (orders
//! of every type, cancels, reduces, replaces, self-trades, halts, the kill
//! switch, capacity-full rejects, daily rolls, auction announcements,
//! bids and their allocation) runs with the counter watched.
#![allow(unsafe_code)] // The counting allocator implements `GlobalAlloc`, an unsafe trait.

use carbonx_engine::*;
use carbonx_testkit::Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn token(n: u64) -> Token {
    let mut bytes = [b' '; 14];
    let digits = format!("{n:014}");
    bytes.copy_from_slice(digits.as_bytes());
    Token::from_bytes(bytes)
}

/// An announcement (one in ten) or a bid; command `i` runs at `1_000 + i` ns.
fn auction_command(rng: &mut Rng, i: u64) -> Command {
    let id = AuctionId::from_text(["A1", "A2", "A3"][rng.below(3) as usize]).unwrap();
    let stock = StockCode::from_text("CEA").unwrap();
    if rng.below(10) == 0 {
        let (start, end) = (1_000 + i, 1_001 + i + rng.below(2_000));
        return Command::AnnounceAuction(AnnounceAuction {
            id,
            stock,
            seller: AccountId::new(rng.below(20) as u32),
            seller_user: UserId::new(1),
            qty: Qty::new(100_000),
            start: Timestamp::from_nanos(start),
            end: Timestamp::from_nanos(end),
            pricing: if rng.below(2) == 0 { Pricing::Uniform } else { Pricing::PayAsBid },
            floor: FloorRule::PreviousCloseMinus10,
        });
    }
    Command::AuctionBid(AuctionBid {
        user: UserId::new(0),
        token: token(i),
        account: AccountId::new(rng.below(20) as u32),
        qty: Qty::new(1 + rng.below(40_000) as u32),
        stock,
        price: (6_717 + rng.below(1_400) as u32) * 100,
        auction: id,
    })
}

/// Builds the whole command stream up front, so that only `apply` runs while counting.
fn stream(rng: &mut Rng, n: u64) -> Vec<Command> {
    let stocks: Vec<StockCode> = ["CEA", "CCER"].iter().map(|s| StockCode::from_text(s).unwrap()).collect();
    let user = UserId::new(0);
    let mut commands = Vec::with_capacity(n as usize);
    for i in 0..n {
        let live = token(rng.below(i + 1));
        let command = match rng.below(100) {
            50..=54 => auction_command(rng, i),
            0..=49 => {
                let stock = stocks[rng.below(2) as usize];
                let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
                // Buys mostly below sells, so that the book fills up as well as trades.
                let base = if stock.as_str() == "CEA" { 7_300 } else { 7_850 };
                let fen = base + if side == Side::Sell { 150 } else { 0 } + rng.below(180);
                let account = AccountId::new(rng.below(20) as u32);
                let mut order =
                    NewOrder::limit(user, token(i), account, side, 1 + rng.below(500) as u32, stock, fen as u32);
                match rng.below(10) {
                    0 => order.tif = 0,
                    1 => (order.tif, order.min_qty) = (0, order.qty.tonnes()),
                    2 => (order.tif, order.price) = (0, 0x7FFF_FFFF),
                    3 => order.display = b'P',
                    4 => order.price += 1,
                    _ => {}
                }
                Command::NewOrder(order)
            }
            55..=64 => Command::Cancel(Cancel { user, token: live, qty: Qty::new(rng.below(50) as u32) }),
            65..=94 => Command::Replace(Replace {
                user,
                token: live,
                new_token: token(i),
                qty: Qty::new(1 + rng.below(400) as u32),
                price: (7_300 + rng.below(330) as u32) * 100,
                tif: 99_999,
                display: b'Y',
                iso: b'N',
                min_qty: 0,
            }),
            95 => Command::Halt(InstrumentId::new(rng.below(2) as u8)),
            96 => Command::Resume(InstrumentId::new(rng.below(2) as u8)),
            97 => Command::CancelAccount(AccountId::new(rng.below(20) as u32)),
            98 if rng.below(50) == 0 => Command::Roll,
            _ => Command::Clock,
        };
        commands.push(command);
    }
    commands
}

#[test]
fn apply_never_allocates_after_start_up() {
    let mut config = EngineConfig::demo();
    config.orders_max = 300; // small, so that capacity-full rejects happen too
    let mut engine = Engine::new(config).unwrap();
    let mut rng = Rng::new(carbonx_testkit::seed("no-alloc stream", 0x5EED_CA5B_0000_0001));
    let commands = stream(&mut rng, 200_000);
    let mut out: Vec<Event> = Vec::with_capacity(1 << 16);
    let mut count = [0u64; 5];
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for (i, command) in commands.iter().enumerate() {
        out.clear();
        engine.apply(command, Timestamp::from_nanos(1_000 + i as u64), &mut out);
        for event in &out {
            match event {
                Event::Executed(x) if x.method == Method::Auction => count[4] += 1,
                Event::Executed(_) => count[0] += 1,
                Event::Rejected { reason: RejectReason::CapacityFull, .. } => count[1] += 1,
                Event::BookReplace { .. } => count[2] += 1,
                Event::DailyStats(_) => count[3] += 1,
                _ => {}
            }
        }
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    engine.check_invariants();
    assert_eq!(after - before, 0, "apply allocated {} times", after - before);
    // The stream must really have exercised fills, full capacity, replaces, rolls and auction fills.
    assert!(count.iter().all(|&c| c > 0), "stream too tame: {count:?}");
}
