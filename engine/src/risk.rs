//! Pre-trade risk, when the engine has accounts ([`Engine::with_accounts`]):
//! checks in the order of PROTOCOL §5.2 (holdings `i`, holding cap `m`, funds `n`),
//! the locks an order holds while it lives, their release, and the
//! settlement of each fill. Without accounts (the book alone, as in the
//! matchcore comparison) every function here is a no-op.
//!
//! What an order locks: a buy `lock price × open qty` of cash (its limit,
//! or the band's upper edge for a market buy) and `open qty` of open buys
//! against the cap; a sell `open qty` of sellable holdings.

use crate::accounts::{AccountTable, RiskError, Settlement};
use crate::engine::Engine;
use crate::event::RejectReason;
use crate::types::{AccountId, InstrumentId, Price, Qty, Side};

/// What one order needs from its account.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exposure {
    /// The account.
    pub account: AccountId,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// Open tonnes.
    pub qty: Qty,
    /// The price cash is locked at (buys).
    pub lock_price: Price,
}

impl Exposure {
    /// What a just-accepted order locks: its quantity at `lock_price`.
    pub fn of_new(info: &crate::event::OrderInfo, lock_price: Price) -> Exposure {
        Exposure { account: info.account, instrument: info.instrument, side: info.side, qty: info.qty, lock_price }
    }

    /// What a resting order holds locked: its open quantity at its price.
    pub fn of_resting(order: &crate::book::Order) -> Exposure {
        let (account, instrument, side) = (order.account, order.instrument, order.side);
        Exposure { account, instrument, side, qty: order.open, lock_price: order.price }
    }

    /// The same exposure for another quantity.
    pub fn with_qty(self, qty: Qty) -> Exposure {
        Exposure { qty, ..self }
    }

    /// The same exposure at another lock price.
    pub fn with_price(self, lock_price: Price) -> Exposure {
        Exposure { lock_price, ..self }
    }

    fn cash(&self) -> Option<i64> {
        i64::from(self.lock_price.fen()).checked_mul(i64::from(self.qty.tonnes()))
    }
    fn tonnes(&self) -> i64 {
        i64::from(self.qty.tonnes())
    }
}

fn reason(error: RiskError) -> RejectReason {
    match error {
        RiskError::Funds => RejectReason::InsufficientFunds,
        RiskError::Holdings => RejectReason::ShortSale,
        RiskError::Cap => RejectReason::HoldingCap,
    }
}

impl Engine {
    /// True when `account` may be used at all (always, without accounts).
    pub(crate) fn account_known(&self, account: AccountId) -> bool {
        self.accounts.as_ref().is_none_or(|t| t.cash(account).is_some())
    }

    /// Checks, without changing anything, that the account can carry `e`.
    pub(crate) fn check_risk(&self, e: &Exposure) -> Result<(), RejectReason> {
        let Some(table) = &self.accounts else {
            return Ok(());
        };
        let holding = table.holding(e.account, e.instrument).ok_or(RejectReason::NotEntitled)?;
        match e.side {
            Side::Sell if holding.available < e.tonnes() => Err(RejectReason::ShortSale),
            Side::Sell => Ok(()),
            Side::Buy => {
                let cap = self.config.holding_cap.map(i64::from);
                let after = holding.owned().checked_add(holding.open_buy).and_then(|t| t.checked_add(e.tonnes()));
                if after.is_none_or(|after| cap.is_some_and(|cap| after > cap)) {
                    return Err(RejectReason::HoldingCap);
                }
                let cash = table.cash(e.account).ok_or(RejectReason::NotEntitled)?;
                match e.cash() {
                    Some(needed) if needed <= cash.available => Ok(()),
                    _ => Err(RejectReason::InsufficientFunds),
                }
            }
        }
    }

    /// Takes the locks for `e`; [`Engine::check_risk`] passed just before.
    pub(crate) fn lock(&mut self, e: &Exposure) {
        self.lock_within(e, self.config.holding_cap.map(i64::from));
    }

    /// Takes the locks for `e` against `cap` (none: uncapped).
    fn lock_within(&mut self, e: &Exposure, cap: Option<i64>) {
        let Some(table) = &mut self.accounts else {
            return;
        };
        let locked = match e.side {
            Side::Sell => table.lock_holding(e.account, e.instrument, e.tonnes()),
            Side::Buy => table
                .open_buy(e.account, e.instrument, e.tonnes(), cap)
                .and_then(|()| table.lock_cash(e.account, e.cash().ok_or(RiskError::Funds)?)),
        };
        locked.map_err(reason).expect("risk checked before locking");
    }

    /// Releases the locks of `e` (cancel, expiry, IOC remainder, reduce).
    pub(crate) fn release(&mut self, e: &Exposure) {
        let Some(table) = &mut self.accounts else {
            return;
        };
        release_from(table, e);
    }

    /// Replaces the locks of `old` by those of `new`, or leaves `old`
    /// exactly as it was and says why not.
    pub(crate) fn relock(&mut self, old: &Exposure, new: &Exposure) -> Result<(), RejectReason> {
        self.release(old);
        let checked = self.check_risk(new);
        match checked {
            Ok(()) => self.lock(new),
            // Putting back what the order held is never checked against the
            // cap: a deposit since may have taken the account past it, and
            // a refused replace must leave the order exactly as it was.
            Err(_) => self.lock_within(old, None),
        }
        checked
    }

    /// Settles one fill between a resting maker and the incoming order.
    pub(crate) fn settle(&mut self, maker: &Exposure, taker: &Exposure, qty: Qty, price: Price) {
        debug_assert!(
            maker.side == taker.side.opposite() && maker.instrument == taker.instrument,
            "settling {maker:?} against {taker:?}"
        );
        debug_assert!(maker.account != taker.account, "settling a self-trade of {:?}", maker.account);
        debug_assert!(qty <= maker.qty && qty <= taker.qty, "a fill of {qty:?} beyond {maker:?} or {taker:?}");
        let Some(table) = &mut self.accounts else {
            return;
        };
        let (buyer, seller) = if taker.side == Side::Buy { (taker, maker) } else { (maker, taker) };
        // The buyer's lock covers the price: a limit at or above it, or the band's edge.
        debug_assert!(price <= buyer.lock_price, "fill at {price:?} above the buyer's lock {:?}", buyer.lock_price);
        table.settle(Settlement {
            buyer: buyer.account,
            seller: seller.account,
            instrument: taker.instrument,
            qty: i64::from(qty.tonnes()),
            price_fen: i64::from(price.fen()),
            buyer_lock_price: i64::from(buyer.lock_price.fen()),
        });
    }
}

fn release_from(table: &mut AccountTable, e: &Exposure) {
    match e.side {
        Side::Sell => table.release_holding(e.account, e.instrument, e.tonnes()),
        Side::Buy => {
            table.close_buy(e.account, e.instrument, e.tonnes());
            table.release_cash(e.account, e.cash().expect("locked amounts fit i64"));
        }
    }
}

impl Engine {
    /// With accounts: nothing negative, totals conserved since load, and
    /// every lock equal to what the resting orders, waiting block orders,
    /// open auctions (the seller's quantity) and live auction bids hold.
    ///
    /// # Errors
    /// Naming the account and the amounts on any breach.
    pub(crate) fn check_account_invariants(&self) -> Result<(), crate::inspect::Breach> {
        let (Some(table), Some((cash0, holdings0))) = (&self.accounts, &self.initial_totals) else {
            return Ok(());
        };
        table.check_invariants()?;
        ensure_eq!(table.total_cash(), *cash0, "total cash not conserved");
        for book in &self.books {
            let total = table.total_holding(book.instrument);
            ensure_eq!(total, holdings0[book.instrument.index()], "holdings of {:?} not conserved", book.instrument);
        }
        let mut expected: rustc_hash::FxHashMap<(AccountId, usize), (i64, i64, i64)> = Default::default();
        let mut cash: rustc_hash::FxHashMap<AccountId, i64> = Default::default();
        let resting = self.books.iter().flat_map(|book| {
            [Side::Buy, Side::Sell].into_iter().flat_map(move |side| self.resting_with_accounts(book.instrument, side))
        });
        let exposures =
            resting.map(|o| Exposure::of_resting(&o)).chain(self.block_exposures()).chain(self.auction_exposures());
        for e in exposures {
            let entry = expected.entry((e.account, e.instrument.index())).or_default();
            if e.side == Side::Buy {
                entry.1 = entry.1.saturating_add(e.tonnes());
                let locked = e
                    .cash()
                    .ok_or_else(|| crate::inspect::Breach(format!("account {:?}: a lock beyond i64", e.account)))?;
                let sum = cash.entry(e.account).or_default();
                *sum = sum
                    .checked_add(locked)
                    .ok_or_else(|| crate::inspect::Breach(format!("account {:?}: locks overflow", e.account)))?;
            } else {
                entry.0 = entry.0.saturating_add(e.tonnes());
            }
        }
        for a in 0..table.len() {
            let account = AccountId::new(u32::try_from(a).expect("account count fits u32"));
            let locked = table.cash(account).expect("in range").locked;
            ensure_eq!(locked, cash.get(&account).copied().unwrap_or(0), "account {a}: locked cash");
            for book in &self.books {
                let h = table.holding(account, book.instrument).expect("in range");
                let (sells, buys, _) = expected.get(&(account, book.instrument.index())).copied().unwrap_or_default();
                ensure_eq!(
                    (h.locked, h.open_buy),
                    (sells, buys),
                    "account {a} {:?}: locked t, open buys",
                    book.instrument
                );
            }
        }
        Ok(())
    }
}
