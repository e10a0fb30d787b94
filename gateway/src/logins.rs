//! Failed logins: counted per username and per source address in a fixed
//! window; past the configured count, logins of that username, or from that
//! address, are refused without checking the password until the window
//! ends. Every failure is answered late (the configured delay) and logged,
//! at most [`LOG_LINES_PER_SEC`] lines a second (the rest are summed into
//! the next line), so that a password guesser can neither guess fast, nor
//! burn the exchange's CPU on argon2, nor flood its log.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Log lines about failed logins per second at most.
pub const LOG_LINES_PER_SEC: u32 = 10;
/// Usernames or addresses remembered at most per table: beyond it, the
/// windows that ended are dropped, and a new key is not tracked until
/// there is room (its logins still get the delay).
const KEYS_MAX: usize = 65_536;

/// Failures of one key in its current window.
#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failure windows by key.
#[derive(Debug)]
struct Table<K> {
    windows: Mutex<FxHashMap<K, Window>>,
}

impl<K: Hash + Eq + Copy> Table<K> {
    fn new() -> Table<K> {
        Table { windows: Mutex::new(FxHashMap::default()) }
    }

    fn failures(&self, key: &K, now: Instant, window: Duration) -> u32 {
        let windows = self.windows.lock();
        windows.get(key).filter(|w| now.duration_since(w.started) < window).map_or(0, |w| w.failures)
    }

    fn fail(&self, key: K, now: Instant, window: Duration) {
        let mut windows = self.windows.lock();
        if windows.len() >= KEYS_MAX && !windows.contains_key(&key) {
            windows.retain(|_, w| now.duration_since(w.started) < window);
            if windows.len() >= KEYS_MAX {
                return;
            }
        }
        let entry = windows.entry(key).or_insert(Window { started: now, failures: 0 });
        if now.duration_since(entry.started) >= window {
            *entry = Window { started: now, failures: 0 };
        }
        entry.failures = entry.failures.saturating_add(1);
    }
}

/// Failed logins of a listener (order entry and drop copy share one, as
/// they share usernames).
#[derive(Debug)]
pub struct LoginFailures {
    max: u32,
    window: Duration,
    delay: Duration,
    by_name: Table<[u8; 6]>,
    by_address: Table<IpAddr>,
    log: LogBudget,
}

impl LoginFailures {
    /// At most `max` failures per username and per address in `window`;
    /// each answered after `delay`.
    pub fn new(max: u32, window: Duration, delay: Duration) -> LoginFailures {
        LoginFailures { max, window, delay, by_name: Table::new(), by_address: Table::new(), log: LogBudget::default() }
    }

    /// Whether a login of `name` from `address` is refused unchecked at
    /// `now`: one of them has failed `max` times in its window.
    pub fn locked_out(&self, name: &[u8; 6], address: IpAddr, now: Instant) -> bool {
        self.by_name.failures(name, now, self.window) >= self.max
            || self.by_address.failures(&address, now, self.window) >= self.max
    }

    /// Records a failed login. `known_name`: the username exists (an
    /// unknown one is counted by address only, so that guessed names
    /// cannot fill the table).
    pub fn failed(&self, name: &[u8; 6], known_name: bool, address: IpAddr, now: Instant) {
        if known_name {
            self.by_name.fail(*name, now, self.window);
        }
        self.by_address.fail(address, now, self.window);
    }

    /// How long a failed login waits before its reject.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Whether a log line about a failure may be written at `now`, and if
    /// so how many earlier ones were left out.
    pub fn may_log(&self, now: Instant) -> Option<u64> {
        self.log.take(now)
    }
}

/// At most [`LOG_LINES_PER_SEC`] lines a second; the ones left out are counted.
#[derive(Debug, Default)]
struct LogBudget {
    state: Mutex<(Option<Instant>, u32, u64)>,
}

impl LogBudget {
    fn take(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock();
        let (second, lines, skipped) = &mut *state;
        if second.is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1)) {
            (*second, *lines) = (Some(now), 0);
        }
        if *lines < LOG_LINES_PER_SEC {
            *lines += 1;
            Some(std::mem::take(skipped))
        } else {
            *skipped += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_a_name_and_an_address_until_the_window_ends() {
        let failures = LoginFailures::new(3, Duration::from_secs(60), Duration::ZERO);
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        let t0 = Instant::now();
        for _ in 0..2 {
            failures.failed(b"BROKR1", true, a, t0);
        }
        assert!(!failures.locked_out(b"BROKR1", a, t0));
        failures.failed(b"BROKR1", true, a, t0);
        // The name is locked from every address, the address for every name.
        assert!(failures.locked_out(b"BROKR1", b, t0));
        assert!(failures.locked_out(b"BROKR2", a, t0));
        assert!(!failures.locked_out(b"BROKR2", b, t0));
        assert!(!failures.locked_out(b"BROKR1", a, t0 + Duration::from_secs(60)));
        // Unknown names count by address only.
        for _ in 0..3 {
            failures.failed(b"NOBODY", false, b, t0);
        }
        assert!(failures.locked_out(b"BROKR2", b, t0));
        assert!(!failures.locked_out(b"NOBODY", [127, 0, 0, 4].into(), t0));
    }

    #[test]
    fn logs_at_a_bounded_rate_and_counts_what_it_left_out() {
        let budget = LogBudget::default();
        let t0 = Instant::now();
        let logged = (0..100).filter(|_| budget.take(t0).is_some()).count();
        assert_eq!(logged, LOG_LINES_PER_SEC as usize);
        assert_eq!(budget.take(t0 + Duration::from_secs(1)), Some(90));
    }
}
