//! The trading day: session boundaries from the caller's timestamps, halts,
//! the close (expiry and statistics) and the roll to the next day.

use crate::calendar::Phase;
use crate::engine::{Engine, Stats};
use crate::event::{CancelReason, DailyStats, Event, EventSink, Method, Reference, TradingState};
use crate::types::{InstrumentId, Price, Timestamp};

/// Order of the phases within a day, so that time never runs backwards.
fn rank(phase: Phase) -> u8 {
    match phase {
        Phase::PreOpen => 0,
        Phase::Morning | Phase::AllDay => 1,
        Phase::Lunch => 2,
        Phase::Afternoon => 3,
        Phase::Closed => 4,
    }
}

/// VWAP rounded half-up to the tick; `None` without volume.
pub(crate) fn vwap(turnover: u128, volume: u64) -> Option<Price> {
    let volume = u128::from(volume);
    if volume == 0 {
        return None;
    }
    let fen = (2 * turnover + volume) / (2 * volume);
    Price::from_fen(u32::try_from(fen).ok()?)
}

impl Engine {
    /// Applies any session boundary between the last command and `now`.
    pub(crate) fn advance_clock<O: EventSink>(&mut self, now: Timestamp, out: &mut O) {
        let session_day = match self.session_day {
            Some(day) => day,
            None => self.start_day(now, out),
        };
        let pending = self.pending_phase(session_day, now);
        // Auctions whose window ended by now are allocated first, unless the
        // close came before their end: those expire at the close instead.
        let close = self.calendar.close_instant(session_day).filter(|_| pending == Some(Phase::Closed));
        self.end_auctions(close.map_or(now, |close| close.min(now)), out);
        if let Some(phase) = pending {
            self.enter_phase(phase, out);
        }
    }

    /// The phase `now` moves the market into, if it is a later one.
    pub(crate) fn pending_phase(&self, session_day: i64, now: Timestamp) -> Option<Phase> {
        if self.day_closed {
            return None;
        }
        let phase = self.calendar.phase(session_day, now);
        match self.phase {
            Some(current) if rank(phase) <= rank(current) => None,
            _ => Some(phase),
        }
    }

    /// Fixes the trading day on the first command (or after a roll) and
    /// announces each instrument's reference and bands.
    fn start_day<O: EventSink>(&mut self, now: Timestamp, out: &mut O) -> i64 {
        let day = match self.session_day {
            Some(previous) => self.calendar.day_after_roll(previous, now),
            None => self.calendar.next_session_day(now),
        };
        self.session_day = Some(day);
        for (book, &stock) in self.books.iter().zip(&self.codes) {
            let (instrument, reference, lower, upper) = (book.instrument, book.reference, book.lower, book.upper);
            out.push(Event::Reference(Reference { instrument, stock, reference, lower, upper }));
        }
        day
    }

    fn enter_phase<O: EventSink>(&mut self, phase: Phase, out: &mut O) {
        if phase == Phase::Closed {
            self.close_day(out);
        }
        self.phase = Some(phase);
        out.push(Event::Phase(phase));
        self.announce_states(out);
    }

    /// The close: every resting order expires (`T`), then each book's statistics.
    fn close_day<O: EventSink>(&mut self, out: &mut O) {
        self.drain_orders(|_| true, CancelReason::Expired, out);
        self.drain_blocks(|_| true, CancelReason::Expired, out);
        self.expire_auctions(out);
        for book in &self.books {
            let methods = [
                (Method::Listing, &book.stats),
                (Method::Block, &book.block_stats),
                (Method::Auction, &book.auction_stats),
            ];
            for (method, stats) in methods {
                out.push(Event::DailyStats(daily_stats(method, book.instrument, book.reference, stats)));
            }
        }
        self.day_closed = true;
    }

    /// End of day: close if still open, make each close the next reference,
    /// recompute the bands, restart the daily counters, start the next day.
    pub(crate) fn roll<O: EventSink>(&mut self, now: Timestamp, out: &mut O) {
        if !self.day_closed {
            self.enter_phase(Phase::Closed, out);
        }
        let pct = self.config.listing_band_pct;
        for book in &mut self.books {
            let close = daily_stats(Method::Listing, book.instrument, book.reference, &book.stats).close;
            let (lower, upper) = crate::validate::band(close, pct);
            book.reference = close;
            (book.lower, book.upper) = (lower, upper);
            book.bids.reset(lower, upper);
            book.asks.reset(lower, upper);
            book.stats = Stats::default();
            book.block_stats = Stats::default();
            book.auction_stats = Stats::default();
        }
        self.clear_auctions();
        if let Some(accounts) = &mut self.accounts {
            accounts.settle_day();
        }
        if !self.pending_listings.is_empty() || !self.pending_delistings.is_empty() {
            self.apply_reference_changes();
        }
        self.next_order_id = 1;
        self.next_match_id = 1;
        self.day_closed = false;
        self.phase = None;
        self.start_day(now, out);
        self.advance_clock(now, out);
    }

    /// Operator halt or resume; a no-op when already in that state.
    pub(crate) fn set_halted<O: EventSink>(&mut self, instrument: InstrumentId, halted: bool, out: &mut O) {
        if let Some(book) = self.books.get_mut(instrument.index()) {
            book.halted = halted;
            self.announce_states(out);
        }
    }

    /// Emits a trading state for every instrument whose state changed.
    fn announce_states<O: EventSink>(&mut self, out: &mut O) {
        let phase = self.phase;
        for book in &mut self.books {
            let state = match phase {
                None | Some(Phase::Closed) => continue,
                Some(_) if book.halted || book.delisted => TradingState::Halted,
                Some(p) if p.listing_open() => TradingState::Trading,
                Some(_) => TradingState::Paused,
            };
            if book.announced != Some(state) {
                book.announced = Some(state);
                out.push(Event::TradingState { instrument: book.instrument, state });
            }
        }
    }
}

/// A book's statistics for the day; without trades every price is the reference.
pub(crate) fn daily_stats(method: Method, instrument: InstrumentId, reference: Price, stats: &Stats) -> DailyStats {
    DailyStats {
        method,
        instrument,
        open: stats.open.unwrap_or(reference),
        high: stats.high.unwrap_or(reference),
        low: stats.low.unwrap_or(reference),
        close: vwap(stats.turnover, stats.volume).unwrap_or(reference),
        volume: stats.volume,
        turnover: stats.turnover,
        trades: stats.trades,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vwap_rounds_half_up_to_the_tick() {
        assert_eq!(vwap(0, 0), None);
        // (7463 × 1 + 7464 × 1) / 2 = 7463.5 → 7464.
        assert_eq!(vwap(7_463 + 7_464, 2), Price::from_fen(7_464));
        // (7463 × 2 + 7464) / 3 = 7463.33 → 7463.
        assert_eq!(vwap(7_463 * 2 + 7_464, 3), Price::from_fen(7_463));
        // (7463 + 7464 × 2) / 3 = 7463.67 → 7464.
        assert_eq!(vwap(7_463 + 7_464 * 2, 3), Price::from_fen(7_464));
    }
}
