//! Validation of orders and replaces in the one check order PROTOCOL §5.2
//! fixes: fields in wire order (shares, stock, price, time in force,
//! display, intermarket sweep, minimum quantity, cross type), then
//! session, halt, band, post-only, and last capacity. The first failing
//! check decides.

use crate::book::Order;
use crate::command::{MARKET_PRICE, NewOrder, Replace, TIF_DAY, TIF_IOC, TimeInForce, WIRE_PER_FEN};
use crate::engine::Engine;
use crate::event::RejectReason;
use crate::risk::Exposure;
use crate::types::{InstrumentId, Price, Qty, Side};

/// A validated order's meaning.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    /// Book.
    pub instrument: InstrumentId,
    /// Limit price; `None` for a market order.
    pub limit: Option<Price>,
    /// How long it lives.
    pub tif: TimeInForce,
    /// Post-only: rejected rather than trading on arrival.
    pub post_only: bool,
}

type Check<T> = Result<T, RejectReason>;

pub(crate) fn check_price(wire: u32, market_allowed: bool) -> Check<Option<Price>> {
    if wire == MARKET_PRICE && market_allowed {
        return Ok(None);
    }
    if wire % WIRE_PER_FEN != 0 {
        return Err(RejectReason::InvalidPrice);
    }
    Price::from_fen(wire / WIRE_PER_FEN).map(Some).ok_or(RejectReason::InvalidPrice)
}

fn check_tif(tif: u32, is_market: bool) -> Check<bool> {
    let day = TIF_DAY.contains(&tif);
    if !day && tif != TIF_IOC || is_market && day {
        return Err(RejectReason::InvalidField);
    }
    Ok(day)
}

fn check_display(display: u8, day: bool) -> Check<bool> {
    match display {
        b'A' | b'Y' => Ok(false),
        b'P' if day => Ok(true),
        _ => Err(RejectReason::InvalidDisplay),
    }
}

/// Intermarket sweep eligibility: this market has no other market to sweep.
fn check_iso(iso: u8) -> Check<()> {
    if iso == b'N' { Ok(()) } else { Err(RejectReason::InvalidField) }
}

fn check_min_qty(min_qty: u32, qty: Qty, day: bool) -> Check<TimeInForce> {
    match (min_qty, day) {
        (0, true) => Ok(TimeInForce::Day),
        (0, false) => Ok(TimeInForce::Ioc),
        (m, false) if m == qty.tonnes() => Ok(TimeInForce::Fok),
        _ => Err(RejectReason::InvalidMinQty),
    }
}

/// The listing band around `reference`: upper = floor(ref × (100 + pct) / 100),
/// lower = ceil(ref × (100 − pct) / 100), clamped to the legal price range.
pub(crate) fn band(reference: Price, pct: u32) -> (Price, Price) {
    let r = u64::from(reference.fen());
    let upper = r * u64::from(100 + pct) / 100;
    let lower = (r * u64::from(100 - pct)).div_ceil(100);
    let clamp = |fen: u64| {
        let fen = u32::try_from(fen).unwrap_or(u32::MAX).clamp(Price::MIN.fen(), Price::MAX.fen());
        Price::from_fen(fen).expect("clamped into range")
    };
    (clamp(lower), clamp(upper))
}

impl Engine {
    /// The listing band for a reference, as this market configures it.
    pub(crate) fn listing_band(&self, reference: Price) -> (Price, Price) {
        band(reference, self.config.listing_band_pct)
    }

    /// The farthest price a market order of `side` may trade at.
    pub(crate) fn band_edge(&self, instrument: InstrumentId, side: Side) -> Price {
        let book = &self.books[instrument.index()];
        match side {
            Side::Buy => book.upper,
            Side::Sell => book.lower,
        }
    }

    /// True when an order of `side` at `limit` would meet the opposite best.
    pub(crate) fn crosses(&self, instrument: InstrumentId, side: Side, limit: Price) -> bool {
        let opposite = self.books[instrument.index()].side(side.opposite());
        opposite.best_price().is_some_and(|best| match side {
            Side::Buy => limit >= best,
            Side::Sell => limit <= best,
        })
    }

    fn check_qty(&self, qty: Qty) -> Check<()> {
        if qty.is_zero() || qty > self.config.listing_qty_max {
            return Err(RejectReason::InvalidQty);
        }
        Ok(())
    }

    /// Session, halt, band, post-only: the checks after the fields.
    fn check_market(&self, spec: &Spec, side: Side) -> Check<()> {
        let book = &self.books[spec.instrument.index()];
        if !self.phase.is_some_and(|p| p.listing_open()) || self.day_closed {
            return Err(RejectReason::Closed);
        }
        if book.halted {
            return Err(RejectReason::Halted);
        }
        if let Some(price) = spec.limit {
            if price < book.lower || price > book.upper {
                return Err(RejectReason::OutsideBand);
            }
            if spec.post_only && self.crosses(spec.instrument, side, price) {
                return Err(RejectReason::PostOnlyWouldTrade);
            }
        }
        Ok(())
    }

    /// Validates a new listing order.
    pub(crate) fn validate_new(&self, cmd: &NewOrder) -> Check<Spec> {
        if !self.account_known(cmd.account) {
            return Err(RejectReason::NotEntitled);
        }
        self.check_qty(cmd.qty)?;
        let instrument = self.tradable(cmd.stock).ok_or(RejectReason::UnknownStock)?;
        let limit = check_price(cmd.price, true)?;
        let day = check_tif(cmd.tif, limit.is_none())?;
        let post_only = check_display(cmd.display, day)?;
        check_iso(cmd.iso)?;
        let tif = check_min_qty(cmd.min_qty, cmd.qty, day)?;
        if cmd.cross_type != b'N' {
            return Err(RejectReason::InvalidField);
        }
        let spec = Spec { instrument, limit, tif, post_only };
        self.check_market(&spec, cmd.side)?;
        let lock_price = limit.unwrap_or_else(|| self.band_edge(instrument, cmd.side));
        self.check_risk(&Exposure { account: cmd.account, instrument, side: cmd.side, qty: cmd.qty, lock_price })?;
        if tif == TimeInForce::Day && self.orders.slab.is_full() {
            return Err(RejectReason::CapacityFull);
        }
        Ok(spec)
    }

    /// Validates a replace of the live `order`. No capacity check: the
    /// replaced order gives up its slot before it needs one.
    pub(crate) fn validate_replace(&self, cmd: &Replace, order: &Order) -> Check<Spec> {
        self.check_qty(cmd.qty)?;
        let limit = check_price(cmd.price, false)?;
        let day = check_tif(cmd.tif, false)?;
        let post_only = check_display(cmd.display, day)?;
        check_iso(cmd.iso)?;
        let tif = check_min_qty(cmd.min_qty, cmd.qty, day)?;
        let spec = Spec { instrument: order.instrument, limit, tif, post_only };
        self.check_market(&spec, order.side)?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(fen: u32) -> Price {
        Price::from_fen(fen).unwrap()
    }

    #[test]
    fn band_edges_round_inward() {
        // 74.63 × 1.1 = 82.093 → 82.09; 74.63 × 0.9 = 67.167 → 67.17.
        assert_eq!(band(p(7_463), 10), (p(6_717), p(8_209)));
        assert_eq!(band(p(8_000), 10), (p(7_200), p(8_800)));
        assert_eq!(band(p(7_463), 30), (p(5_225), p(9_701)));
        assert_eq!(band(p(1), 10), (p(1), p(1)));
        assert_eq!(band(Price::MAX, 10), (p(900_000), Price::MAX));
    }

    #[test]
    fn wire_fields_decode_in_order() {
        assert_eq!(check_price(746_300, true), Ok(Some(p(7_463))));
        assert_eq!(check_price(746_301, true), Err(RejectReason::InvalidPrice));
        assert_eq!(check_price(0, true), Err(RejectReason::InvalidPrice));
        assert_eq!(check_price(MARKET_PRICE, true), Ok(None));
        assert_eq!(check_price(MARKET_PRICE, false), Err(RejectReason::InvalidPrice));
        assert_eq!(check_tif(0, true), Ok(false));
        assert_eq!(check_tif(99_999, true), Err(RejectReason::InvalidField));
        assert_eq!(check_tif(5, false), Err(RejectReason::InvalidField));
        assert_eq!(check_display(b'P', false), Err(RejectReason::InvalidDisplay));
        assert_eq!(check_iso(b'N'), Ok(()));
        assert_eq!(check_iso(b'Y'), Err(RejectReason::InvalidField));
        assert_eq!(check_min_qty(10, Qty::new(10), false), Ok(TimeInForce::Fok));
        assert_eq!(check_min_qty(10, Qty::new(10), true), Err(RejectReason::InvalidMinQty));
        assert_eq!(check_min_qty(5, Qty::new(10), false), Err(RejectReason::InvalidMinQty));
    }
}
