//! The roll in calendar mode (RULES §4.3): a clock event like the session
//! boundaries. The sequencer journals a [`Command::Roll`] once the trading
//! day's `roll_at` has passed, so that the roll sits at the same point of
//! the command stream in the live run and in every replay; a server that
//! starts on a later day (after a weekend, a holiday or an outage) rolls
//! every missed trading day, in order, before it opens. In always-open
//! mode the operator's `carbonx admin roll` ends the day instead, and the
//! engine never reports a roll due.

use super::{Clock, Publisher, Sequencer, SequencerError};
use carbonx_engine::Command;

impl<P: Publisher> Sequencer<P> {
    /// Journals and applies one roll for each trading day whose `roll_at`
    /// has passed, each in its own batch (each ends its day's journal file,
    /// writes its start-of-day snapshot and hands the day to the
    /// publisher's end-of-day files). Returns how many days were rolled.
    ///
    /// Operator replies waiting for the batch being formed are kept for it:
    /// the rolls come before that batch, and answer nobody.
    ///
    /// # Errors
    /// A journal failure.
    pub fn roll_due_days(&mut self, clock: &impl Clock) -> Result<usize, SequencerError> {
        let waiting = std::mem::take(&mut self.replies);
        let mut rolled = 0;
        let mut result = Ok(());
        // Each roll moves the trading day forward, so this ends; the bound
        // only guards against a clock gone mad (ten years of trading days).
        while rolled < ROLLS_AT_ONCE_MAX && self.engine.roll_due(clock.now()) {
            result = self.process(&[Command::Roll], clock);
            if result.is_err() {
                break;
            }
            rolled += 1;
        }
        self.replies = waiting;
        if rolled > 1 {
            tracing::info!(rolled, date = ?self.engine.session_date(), "rolled the missed trading days");
        }
        result.map(|()| rolled)
    }
}

/// Most rolls one call journals: far more trading days than any outage.
const ROLLS_AT_ONCE_MAX: usize = 10 * 366;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::journal_file::{self, FsyncMode};
    use crate::serve::sequencer::{ManualClock, OperatorRequest};
    use carbonx_engine::journal::Record;
    use carbonx_engine::{Engine, EngineConfig, Event, SessionMode, Side, Timestamp};
    use std::path::Path;
    use std::time::Duration;

    /// Records the events and the days it is told about.
    #[derive(Default)]
    struct Days {
        events: Vec<Event>,
        started: Vec<u32>,
        ended: Vec<u32>,
    }

    impl Publisher for Days {
        fn publish(&mut self, _now: Timestamp, events: &[Event]) {
            self.events.extend_from_slice(events);
        }
        fn day_ended(&mut self, _engine: &Engine) {
            // The engine has moved on already; the day ended is the last one started.
            self.ended.push(self.started.last().copied().unwrap_or(0));
        }
        fn new_day(&mut self, date: u32) {
            self.started.push(date);
        }
    }

    /// Unix seconds of local (Asia/Shanghai) `hh:mm` on 2026-11-`day`.
    fn november(day: u64, hh: u64, mm: u64) -> Timestamp {
        // 2026-11-24 00:00 Shanghai is 1_795_449_600.
        let secs = 1_795_449_600 + (day - 24) * 86_400 + hh * 3600 + mm * 60;
        Timestamp::from_nanos(secs * 1_000_000_000)
    }

    /// A calendar-mode market with Monday 2026-11-30 a holiday.
    fn calendar_sequencer(dir: &Path) -> Sequencer<Days> {
        let mut config = EngineConfig::demo();
        config.session = SessionMode::Calendar;
        config.holidays = vec![20261130];
        let engine = Engine::new(config).unwrap();
        Sequencer::new(engine, Days::default(), Some(dir.to_path_buf()), FsyncMode::Batch)
    }

    fn order(token: &str, account: u32, side: Side) -> Command {
        Command::demo_order(token, account, side, 10, 7_463)
    }

    fn journal_dates(dir: &Path) -> Vec<u32> {
        let files = journal_file::journal_files(dir).unwrap();
        let mut dates: Vec<u32> = files.iter().filter_map(|p| journal_file::date_of(p)).collect();
        dates.sort_unstable();
        dates
    }

    fn records(dir: &Path, date: u32) -> Vec<Record> {
        let mut reader = journal_file::RecordReader::open(&journal_file::journal_path(dir, date)).unwrap();
        let mut records = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            assert!(records.len() < 1_000, "a test journal holds a handful of records");
            records.push(record);
        }
        records
    }

    #[test]
    fn the_roll_is_journaled_at_roll_at_and_not_before() {
        let tmp = tempfile::tempdir().unwrap();
        let mut seq = calendar_sequencer(tmp.path());
        let clock = ManualClock::new(november(24, 10, 0), Duration::from_millis(1));
        seq.start_day(&clock).unwrap();
        seq.process(&[order("s1", 1, Side::Sell)], &clock).unwrap();
        // After the close (15:00) but before roll_at (15:30): closed, no roll.
        clock.set(november(24, 15, 29));
        assert_eq!(seq.roll_due_days(&clock).unwrap(), 0);
        assert_eq!(seq.engine().session_date(), Some(20261124));
        clock.set(november(24, 15, 30));
        assert_eq!(seq.roll_due_days(&clock).unwrap(), 1);
        assert_eq!(seq.engine().session_date(), Some(20261125));
        assert_eq!(seq.publisher().ended, [20261124]);
        assert_eq!(journal_dates(tmp.path()), [20261124]);
        let last = records(tmp.path(), 20261124).pop().unwrap();
        assert_eq!(last.command, Command::Roll);
        assert!(last.timestamp >= november(24, 15, 30), "journaled at roll_at, not before");
        // The next day's orders rest: the market opened on its own.
        clock.set(november(25, 9, 30));
        seq.process(&[order("s2", 1, Side::Sell)], &clock).unwrap();
        assert!(matches!(seq.publisher().events.last(), Some(Event::BookAdd { .. })), "{:?}", seq.publisher().events);
    }

    #[test]
    fn the_live_loop_rolls_at_roll_at_before_the_next_batch() {
        let tmp = tempfile::tempdir().unwrap();
        let mut seq = calendar_sequencer(tmp.path());
        let clock = ManualClock::new(november(24, 10, 0), Duration::from_millis(1));
        seq.start_day(&clock).unwrap();
        clock.set(november(24, 15, 45));
        let (tx, rx) = crossbeam::channel::bounded(4);
        let (operator_tx, operator_rx) = crossbeam::channel::bounded::<OperatorRequest>(1);
        tx.send(vec![order("b1", 2, Side::Buy)]).unwrap();
        drop((tx, operator_tx));
        seq.run_with_operator(&rx, &operator_rx, &clock).unwrap();
        assert_eq!(seq.engine().session_date(), Some(20261125));
        assert_eq!(records(tmp.path(), 20261124).last().map(|r| r.command.clone()), Some(Command::Roll));
        // The order came after the roll: it belongs to the 25th (before its open: C).
        assert_eq!(records(tmp.path(), 20261125).len(), 1);
        assert!(matches!(seq.publisher().events.last(), Some(Event::Rejected { .. })));
    }

    #[test]
    fn a_server_started_after_a_weekend_and_a_holiday_rolls_each_missed_day_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(november(27, 10, 0), Duration::from_millis(1));
        let mut live = calendar_sequencer(tmp.path());
        live.start_day(&clock).unwrap();
        live.process(&[order("s1", 1, Side::Sell), order("b1", 2, Side::Buy)], &clock).unwrap();
        let friday_close =
            live.engine().daily_stats(carbonx_engine::InstrumentId::new(0), carbonx_engine::Method::Listing);
        drop(live);
        // Down from Friday 27th until Wednesday 2 December 09:00; Monday 30th is a holiday.
        clock.set(november(32, 9, 0));
        let mut restarted = calendar_sequencer(tmp.path());
        restarted.recover().unwrap();
        assert_eq!(restarted.engine().session_date(), Some(20261127));
        restarted.start_day(&clock).unwrap();
        assert_eq!(restarted.engine().session_date(), Some(20261202));
        // Friday's and Tuesday's rolls, each journaled in its own day's file.
        assert_eq!(journal_dates(tmp.path()), [20261127, 20261201]);
        assert_eq!(records(tmp.path(), 20261127).last().map(|r| r.command.clone()), Some(Command::Roll));
        let tuesday: Vec<Command> = records(tmp.path(), 20261201).into_iter().map(|r| r.command).collect();
        assert_eq!(tuesday, [Command::Roll]);
        assert_eq!(restarted.publisher().ended, [20261127, 20261201]);
        assert_eq!(restarted.publisher().started.last(), Some(&20261202));
        // Friday's close carried through Tuesday to Wednesday's reference.
        let reference = restarted.engine().reference(carbonx_engine::InstrumentId::new(0)).reference;
        assert_eq!(reference, friday_close.close);
        // A second restart replays the catch-up to the same state and rolls nothing more.
        let mut again = calendar_sequencer(tmp.path());
        again.recover().unwrap();
        again.start_day(&clock).unwrap();
        assert_eq!(again.engine().state_hash(), restarted.engine().state_hash());
        assert_eq!(journal_dates(tmp.path()), [20261127, 20261201]);
    }

    #[test]
    fn always_open_mode_never_rolls_on_the_clock() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = Engine::new(EngineConfig::demo()).unwrap();
        let mut seq = Sequencer::new(engine, Days::default(), Some(tmp.path().to_path_buf()), FsyncMode::Batch);
        let clock = ManualClock::new(november(24, 10, 0), Duration::from_millis(1));
        seq.start_day(&clock).unwrap();
        clock.set(november(30, 16, 0));
        assert_eq!(seq.roll_due_days(&clock).unwrap(), 0);
        assert_eq!(seq.engine().session_date(), Some(20261124));
    }
}
