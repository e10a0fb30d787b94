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

/// A local time of day, to the second: a session boundary or the roll.
/// In configuration files it is a string `"HH:MM"` or `"HH:MM:SS"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u32);

impl TimeOfDay {
    /// `hh:mm:ss`, or `None` when it is not a time of day (24:00 is not).
    pub const fn hms(hours: u32, minutes: u32, seconds: u32) -> Option<TimeOfDay> {
        if hours < 24 && minutes < 60 && seconds < 60 {
            Some(TimeOfDay(hours * 3600 + minutes * 60 + seconds))
        } else {
            None
        }
    }

    /// `hh:mm`, for constants.
    ///
    /// # Panics
    /// When it is not a time of day (at compile time in a `const`).
    pub const fn hm(hours: u32, minutes: u32) -> TimeOfDay {
        match TimeOfDay::hms(hours, minutes, 0) {
            Some(t) => t,
            None => panic!("not a time of day"),
        }
    }

    /// Seconds since local midnight.
    pub const fn seconds(self) -> i64 {
        self.0 as i64
    }

    /// Parses `HH:MM` or `HH:MM:SS` (two digits each).
    pub fn parse(text: &str) -> Option<TimeOfDay> {
        let mut parts = text.split(':');
        let mut field = || -> Option<u32> {
            let part = parts.next()?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (hours, minutes) = (field()?, field()?);
        let seconds = if text.len() > 5 { field()? } else { 0 };
        if parts.next().is_some() {
            return None;
        }
        TimeOfDay::hms(hours, minutes, seconds)
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if s == 0 { write!(f, "{h:02}:{m:02}") } else { write!(f, "{h:02}:{m:02}:{s:02}") }
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TimeOfDay, D::Error> {
        let text = String::deserialize(d)?;
        TimeOfDay::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not a local time of day \"HH:MM\" or \"HH:MM:SS\" (00:00 to 23:59:59)"
            ))
        })
    }
}

/// The session hours of a calendar-mode day, local time (RULES §4):
/// the morning and afternoon sessions, and the roll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionHours {
    /// Start of the morning session (09:30).
    pub morning_open: TimeOfDay,
    /// End of the morning session, start of the lunch break (11:30).
    pub morning_close: TimeOfDay,
    /// End of the lunch break (13:00).
    pub afternoon_open: TimeOfDay,
    /// The close (15:00).
    pub afternoon_close: TimeOfDay,
    /// The end-of-day roll (15:30).
    pub roll_at: TimeOfDay,
}

impl SessionHours {
    /// RULES §4's hours: 09:30-11:30, 13:00-15:00, roll at 15:30.
    pub const DEFAULT: SessionHours = SessionHours {
        morning_open: TimeOfDay::hm(9, 30),
        morning_close: TimeOfDay::hm(11, 30),
        afternoon_open: TimeOfDay::hm(13, 0),
        afternoon_close: TimeOfDay::hm(15, 0),
        roll_at: TimeOfDay::hm(15, 30),
    };

    /// True when every boundary follows the one before it: open < lunch <=
    /// afternoon open < close <= roll.
    pub fn in_order(&self) -> bool {
        self.morning_open < self.morning_close
            && self.morning_close <= self.afternoon_open
            && self.afternoon_open < self.afternoon_close
            && self.afternoon_close <= self.roll_at
    }

    /// The phase of a trading day at `secs` seconds after local midnight.
    fn phase_of_second(&self, secs: i64) -> Phase {
        match secs {
            s if s < self.morning_open.seconds() => Phase::PreOpen,
            s if s < self.morning_close.seconds() => Phase::Morning,
            s if s < self.afternoon_open.seconds() => Phase::Lunch,
            s if s < self.afternoon_close.seconds() => Phase::Afternoon,
            _ => Phase::Closed,
        }
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

/// The calendar of one market: local offset, holidays, mode, hours.
#[derive(Clone, Debug)]
pub struct Calendar {
    mode: SessionMode,
    utc_offset_secs: i64,
    holidays: Vec<i64>,
    hours: SessionHours,
}

impl Calendar {
    /// The calendar a configuration describes (holidays must be validated).
    pub fn new(config: &EngineConfig) -> Calendar {
        let mut holidays: Vec<i64> = config.holidays.iter().filter_map(|&d| days_from_yyyymmdd(d)).collect();
        holidays.sort_unstable();
        Calendar {
            mode: config.session,
            utc_offset_secs: config.utc_offset_secs,
            holidays,
            hours: config.session_hours(),
        }
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

    /// The trading day a market starting at `now` trades first: today if
    /// today is a trading day and its close has not passed, else the next
    /// trading day.
    pub fn next_session_day(&self, now: Timestamp) -> i64 {
        let (day, secs) = self.local(now);
        let past_close = self.mode == SessionMode::Calendar && secs >= self.hours.afternoon_close.seconds();
        self.trading_day_on_or_after(if past_close { day + 1 } else { day })
    }

    /// The trading day that follows a roll of `previous` at `now`. In
    /// calendar mode the next trading day after `previous`, whatever the
    /// time: a server that was down rolls each missed day in turn (RULES
    /// §4.3). In always-open mode the operator's roll starts the day of
    /// `now` (or the next trading day after `previous`, if later).
    pub fn day_after_roll(&self, previous: i64, now: Timestamp) -> i64 {
        match self.mode {
            SessionMode::Calendar => self.trading_day_on_or_after(previous + 1),
            SessionMode::AlwaysOpen => self.trading_day_on_or_after(self.next_session_day(now).max(previous + 1)),
        }
    }

    /// The instant the calendar closes `session_day`; `None` in always-open
    /// mode, where only the operator's roll closes the day.
    pub fn close_instant(&self, session_day: i64) -> Option<Timestamp> {
        self.instant(session_day, self.hours.afternoon_close)
    }

    /// The instant the clock rolls `session_day` (`roll_at`); `None` in
    /// always-open mode, where the operator rolls.
    pub fn roll_instant(&self, session_day: i64) -> Option<Timestamp> {
        self.instant(session_day, self.hours.roll_at)
    }

    /// `at` local time on `day` in calendar mode.
    fn instant(&self, day: i64, at: TimeOfDay) -> Option<Timestamp> {
        if self.mode == SessionMode::AlwaysOpen {
            return None;
        }
        let secs = day * SECS_PER_DAY + at.seconds() - self.utc_offset_secs;
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
            std::cmp::Ordering::Equal => self.hours.phase_of_second(secs),
        }
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
        let h = SessionHours::DEFAULT;
        let at = |t: TimeOfDay| h.phase_of_second(t.seconds());
        assert_eq!(h.phase_of_second(h.morning_open.seconds() - 1), Phase::PreOpen);
        assert_eq!(at(h.morning_open), Phase::Morning);
        assert_eq!(at(h.morning_close), Phase::Lunch);
        assert_eq!(at(h.afternoon_open), Phase::Afternoon);
        assert_eq!(h.phase_of_second(h.afternoon_close.seconds() - 1), Phase::Afternoon);
        assert_eq!(at(h.afternoon_close), Phase::Closed);
    }

    #[test]
    fn times_of_day_parse_and_print_back() {
        assert_eq!(TimeOfDay::parse("09:30"), Some(TimeOfDay::hm(9, 30)));
        assert_eq!(TimeOfDay::parse("15:30:05"), TimeOfDay::hms(15, 30, 5));
        for bad in ["24:00", "9:30", "09:60", "09:30:60", "09:30:", "0930", "", "09:30:00:00", "ab:cd"] {
            assert_eq!(TimeOfDay::parse(bad), None, "{bad:?}");
        }
        assert_eq!(TimeOfDay::hm(9, 30).to_string(), "09:30");
        assert_eq!(TimeOfDay::hms(15, 30, 5).unwrap().to_string(), "15:30:05");
    }

    #[test]
    fn a_calendar_roll_steps_one_trading_day_whatever_the_time() {
        let mut config = EngineConfig::demo();
        config.session = SessionMode::Calendar;
        config.holidays = vec![20261130];
        let cal = Calendar::new(&config);
        let day = |d| days_from_yyyymmdd(d).unwrap();
        // Friday 27th rolled on Wednesday 2 December: Monday 30th is a holiday, so Tuesday.
        let wednesday = cal.instant(day(20261202), TimeOfDay::hm(10, 0)).unwrap();
        assert_eq!(cal.day_after_roll(day(20261127), wednesday), day(20261201));
        assert_eq!(cal.roll_instant(day(20261127)), cal.instant(day(20261127), TimeOfDay::hm(15, 30)));
        config.session = SessionMode::AlwaysOpen;
        let open = Calendar::new(&config);
        assert_eq!(open.day_after_roll(day(20261127), wednesday), day(20261202));
        assert_eq!(open.roll_instant(day(20261127)), None);
    }
}
