//! Where the sequencer's timestamps come from: the engine has no clock, so
//! the caller of [`crate::serve::sequencer::Sequencer::process`] passes one.
//! A server uses [`SystemClock`]; tests use a [`ManualClock`], which makes a
//! run repeatable.

use carbonx_engine::Timestamp;
use std::cell::Cell;
use std::time::Duration;

/// A source of wall-clock time for timestamps (the engine has none).
pub trait Clock {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Timestamp::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

/// A clock that tests set by hand: every reading first advances it by a
/// fixed step (so that consecutive batches get distinct, increasing
/// times, as on a real machine), and [`ManualClock::set`] or
/// [`ManualClock::advance`] move it anywhere in between. Not `Sync`: one
/// test thread drives it.
#[derive(Debug)]
pub struct ManualClock {
    /// Nanoseconds since the Unix epoch of the last reading.
    now: Cell<u64>,
    /// How far each reading advances the clock, in nanoseconds.
    step: u64,
}

impl ManualClock {
    /// A clock at `start` whose readings advance it by `step` each (the
    /// first reading is `start + step`).
    pub fn new(start: Timestamp, step: Duration) -> ManualClock {
        let step = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
        ManualClock { now: Cell::new(start.nanos()), step }
    }

    /// Moves the clock to `at` (the next reading is `at` plus a step).
    pub fn set(&self, at: Timestamp) {
        self.now.set(at.nanos());
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now.set(self.now.get().saturating_add(by));
    }

    /// The time of the last reading (or of the start), without advancing.
    pub fn peek(&self) -> Timestamp {
        Timestamp::from_nanos(self.now.get())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.now.set(self.now.get().saturating_add(self.step));
        Timestamp::from_nanos(self.now.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_steps_on_each_reading_and_moves_when_told() {
        let clock = ManualClock::new(Timestamp::from_nanos(1_000), Duration::from_nanos(10));
        assert_eq!((clock.now().nanos(), clock.now().nanos()), (1_010, 1_020));
        clock.advance(Duration::from_micros(1));
        assert_eq!(clock.peek().nanos(), 2_020);
        clock.set(Timestamp::from_nanos(5));
        assert_eq!(clock.now().nanos(), 15);
    }
}
