//! The trading calendar: which phase of the day a timestamp falls in.
//!
//! Pure date arithmetic on the caller's timestamps (no clock, no time-zone
//! database: the exchange's offset is a fixed setting, Asia/Shanghai has no
//! daylight saving). Sessions are half-open intervals.

use crate::config::{EngineConfig, SessionMode};
use crate::types::Timestamp;
use serde::{Deserialize, Serialize};

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
const MORNING_OPEN: i64 = 9 * 3600 + 30 * 60;
const MORNING_CLOSE: i64 = 11 * 3600 + 30 * 60;
const AFTERNOON_OPEN: i64 = 13 * 3600;
const AFTERNOON_CLOSE: i64 = 15 * 3600;

/// Where the market is in its day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Before 09:30 of the trading day: new orders rejected.
    PreOpen,
    /// 09:30-11:30: continuous listing trading.
    Morning,
    /// 11:30-13:00: resting orders stay, new orders rejected, cancels accepted.
    Lunch,
    /// 13:00-15:00: continuous listing trading and block trades.
    Afternoon,
    /// From 15:00 until the roll: closed, every day order expired.
    Closed,
    /// Always-open mode: both methods open until the operator's roll.
    AllDay,
}

impl Phase {
    /// True when listing orders may be entered.
    pub const fn listing_open(self) -> bool {
        matches!(self, Phase::Morning | Phase::Afternoon | Phase::AllDay)
    }
    /// True when block orders may be entered.
    pub const fn block_open(self) -> bool {
        matches!(self, Phase::Afternoon | Phase::AllDay)
    }
}

/// Days since 1970-01-01 for a `YYYYMMDD` date, `None` when it is not a date.
pub fn days_from_yyyymmdd(date: u32) -> Option<i64> {
    let (y, m, d) = (i64::from(date / 10_000), i64::from(date / 100 % 100), i64::from(date % 100));
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `YYYYMMDD` of a day number (the inverse of [`days_from_yyyymmdd`]).
pub fn yyyymmdd_from_days(days: i64) -> u32 {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    u32::try_from(y * 10_000 + m * 100 + d).unwrap_or(0)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The calendar of one market: local offset, holidays, mode.
#[derive(Clone, Debug)]
pub struct Calendar {
    mode: SessionMode,
    utc_offset_secs: i64,
    holidays: Vec<i64>,
}

impl Calendar {
    /// The calendar a configuration describes (holidays must be validated).
    pub fn new(config: &EngineConfig) -> Calendar {
        let mut holidays: Vec<i64> = config.holidays.iter().filter_map(|&d| days_from_yyyymmdd(d)).collect();
        holidays.sort_unstable();
        Calendar { mode: config.session, utc_offset_secs: config.utc_offset_secs, holidays }
    }

    /// Local date (days since the epoch) and seconds since local midnight.
    pub fn local(&self, now: Timestamp) -> (i64, i64) {
        let secs = i64::try_from(now.nanos() / 1_000_000_000).unwrap_or(i64::MAX / 2);
        let local = secs + self.utc_offset_secs;
        (local.div_euclid(SECS_PER_DAY), local.rem_euclid(SECS_PER_DAY))
    }

    /// Nanoseconds since local midnight: the timestamp OUCH and ITCH carry.
    pub fn nanos_since_midnight(&self, now: Timestamp) -> u64 {
        let (_, secs) = self.local(now);
        let sub = now.nanos() % 1_000_000_000;
        u64::try_from(secs * NANOS_PER_SEC).unwrap_or(0) + sub
    }

    /// True on weekdays that are not holidays.
    pub fn is_trading_day(&self, day: i64) -> bool {
        let weekday = (day + 3).rem_euclid(7); // 0 = Monday; 1970-01-01 was a Thursday.
        weekday < 5 && self.holidays.binary_search(&day).is_err()
    }

    /// The first trading day on or after `day`.
    pub fn trading_day_on_or_after(&self, day: i64) -> i64 {
        (day..day + 366).find(|&d| self.is_trading_day(d)).unwrap_or(day)
    }

    /// The trading day a market starting (or rolling) at `now` trades next:
    /// today if today is a trading day and its close has not passed, else
    /// the next trading day.
    pub fn next_session_day(&self, now: Timestamp) -> i64 {
        let (day, secs) = self.local(now);
        let past_close = self.mode == SessionMode::Calendar && secs >= AFTERNOON_CLOSE;
        self.trading_day_on_or_after(if past_close { day + 1 } else { day })
    }

    /// The instant the calendar closes `session_day` (15:00 local); `None`
    /// in always-open mode, where only the operator's roll closes the day.
    pub fn close_instant(&self, session_day: i64) -> Option<Timestamp> {
        if self.mode == SessionMode::AlwaysOpen {
            return None;
        }
        let secs = session_day * SECS_PER_DAY + AFTERNOON_CLOSE - self.utc_offset_secs;
        let nanos = secs.checked_mul(NANOS_PER_SEC).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        Some(Timestamp::from_nanos(nanos))
    }

    /// The phase at `now` for a market whose current trading day is `session_day`.
    pub fn phase(&self, session_day: i64, now: Timestamp) -> Phase {
        if self.mode == SessionMode::AlwaysOpen {
            return Phase::AllDay;
        }
        let (day, secs) = self.local(now);
        match day.cmp(&session_day) {
            std::cmp::Ordering::Less => Phase::PreOpen,
            std::cmp::Ordering::Greater => Phase::Closed,
            std::cmp::Ordering::Equal => phase_of_second(secs),
        }
    }
}

fn phase_of_second(secs: i64) -> Phase {
    match secs {
        s if s < MORNING_OPEN => Phase::PreOpen,
        s if s < MORNING_CLOSE => Phase::Morning,
        s if s < AFTERNOON_OPEN => Phase::Lunch,
        s if s < AFTERNOON_CLOSE => Phase::Afternoon,
        _ => Phase::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for date in [19700101, 20000229, 20241231, 20261124, 21000301] {
            let days = days_from_yyyymmdd(date).unwrap();
            assert_eq!(yyyymmdd_from_days(days), date);
        }
        assert_eq!(days_from_yyyymmdd(19700101), Some(0));
        assert_eq!(days_from_yyyymmdd(20230229), None);
        assert_eq!(days_from_yyyymmdd(20261301), None);
    }

    #[test]
    fn weekends_and_holidays_are_not_trading_days() {
        let mut config = EngineConfig::demo();
        config.holidays = vec![20261001];
        let cal = Calendar::new(&config);
        let day = |d| days_from_yyyymmdd(d).unwrap();
        assert!(cal.is_trading_day(day(20261124))); // Tuesday
        assert!(!cal.is_trading_day(day(20261128))); // Saturday
        assert!(!cal.is_trading_day(day(20261129))); // Sunday
        assert!(!cal.is_trading_day(day(20261001))); // holiday
        assert_eq!(cal.trading_day_on_or_after(day(20261128)), day(20261130));
    }

    #[test]
    fn session_boundaries_are_half_open() {
        assert_eq!(phase_of_second(MORNING_OPEN - 1), Phase::PreOpen);
        assert_eq!(phase_of_second(MORNING_OPEN), Phase::Morning);
        assert_eq!(phase_of_second(MORNING_CLOSE), Phase::Lunch);
        assert_eq!(phase_of_second(AFTERNOON_OPEN), Phase::Afternoon);
        assert_eq!(phase_of_second(AFTERNOON_CLOSE - 1), Phase::Afternoon);
        assert_eq!(phase_of_second(AFTERNOON_CLOSE), Phase::Closed);
    }
}
