//! Live run == replay, for seeded random sessions: every command goes
//! through the sequencer into real journal files; a fresh sequencer that
//! recovers from those files must publish exactly the same events and end
//! in the same state hash. Sessions include replaces, cancels, halts and
//! rolls (so replay crosses journal files and trading days).

use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::sequencer::{ManualClock, Publisher, Sequencer};
use carbonx_engine::{
    AccountId, Cancel, Command, Engine, Event, InstrumentId, NewOrder, Qty, Replace, Side, StockCode, Timestamp, Token,
    UserId,
};
use carbonx_testkit::Rng;
use std::path::Path;
use std::time::Duration;

#[derive(Default)]
struct Recorder(Vec<(Timestamp, Event)>, Vec<u32>);

impl Publisher for Recorder {
    fn publish(&mut self, now: Timestamp, events: &[Event]) {
        self.0.extend(events.iter().map(|e| (now, *e)));
    }
    fn new_day(&mut self, date: u32) {
        self.1.push(date);
    }
}

fn engine() -> Engine {
    let mut config = carbonx::config::Config::demo();
    (config.market.orders_max, config.accounts.demo_count) = (8_192, 40);
    config.build_engine(Path::new(".")).unwrap()
}

fn command(rng: &mut Rng, n: u64) -> Command {
    let user = UserId::new(rng.below(2) as u16);
    let old = Token::from_text(&format!("t{}", rng.below(n.max(1)))).unwrap();
    let token = Token::from_text(&format!("t{n}")).unwrap();
    let stock = StockCode::from_text(["CEA", "CEA22", "CCER"][rng.below(3) as usize]).unwrap();
    let fen = if stock.as_str() == "CCER" { 7_970 } else { 7_440 } + rng.below(50) as u32;
    match rng.below(100) {
        0 => Command::Roll,
        1 => Command::Halt(InstrumentId::new(rng.below(7) as u8)),
        2..=4 => Command::Resume(InstrumentId::new(rng.below(7) as u8)),
        5..=19 => Command::Cancel(Cancel { user, token: old, qty: Qty::new(rng.below(3) as u32) }),
        20..=34 => Command::Replace(Replace {
            user,
            token: old,
            new_token: token,
            qty: Qty::new(1 + rng.below(40) as u32),
            price: fen * 100,
            tif: 99_999,
            display: b'Y',
            iso: b'N',
            min_qty: 0,
        }),
        _ => {
            let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
            let mut order = NewOrder::limit(
                user,
                token,
                AccountId::new(rng.below(40) as u32),
                side,
                1 + rng.below(40) as u32,
                stock,
                fen,
            );
            if rng.below(5) == 0 {
                order.tif = 0;
            }
            Command::NewOrder(order)
        }
    }
}

#[test]
fn live_events_equal_replayed_events_for_seeded_sessions() {
    let base = carbonx_testkit::seed("replay property, 40 sessions from", 0x5EED);
    for seed in base..base + 40 {
        let mut rng = Rng::new(seed);
        let tmp = tempfile::tempdir().unwrap();
        let mut live = Sequencer::new(engine(), Recorder::default(), Some(tmp.path().into()), FsyncMode::Never);
        let clock = ManualClock::new(Timestamp::from_nanos(1_795_485_600 * 1_000_000_000), Duration::from_micros(250));
        let mut n = 0;
        for _ in 0..200 {
            let batch: Vec<Command> = (0..1 + rng.below(12))
                .map(|_| {
                    n += 1;
                    command(&mut rng, n)
                })
                .collect();
            live.process(&batch, &clock).unwrap();
        }
        let mut replayed = Sequencer::new(engine(), Recorder::default(), Some(tmp.path().into()), FsyncMode::Never);
        assert_eq!(replayed.recover().unwrap(), n, "seed {seed}: records");
        replayed.engine().check_invariants();
        assert_eq!(replayed.publisher().1, live.publisher().1, "seed {seed}: trading days");
        assert_eq!(replayed.publisher().0.len(), live.publisher().0.len(), "seed {seed}: event count");
        for (i, (a, b)) in live.publisher().0.iter().zip(&replayed.publisher().0).enumerate() {
            assert_eq!(a, b, "seed {seed}: event {i} differs");
        }
        assert_eq!(replayed.engine().state_hash(), live.engine().state_hash(), "seed {seed}: state");
    }
}
