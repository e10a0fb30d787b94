//! The model's accounts: cash and holdings per account in plain vectors,
//! written again from RULES §6, and what
//! each order locks.

use super::*;

/// One account's holding of one instrument, in tonnes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RefHolding {
    pub(crate) available: i64,
    pub(crate) locked: i64,
    pub(crate) bought_today: i64,
    pub(crate) open_buy: i64,
}

/// What one order holds: a buy `price × qty` of cash and `qty` against the
/// cap, a sell `qty` of sellable tonnes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lock {
    pub(crate) account: u32,
    pub(crate) book: usize,
    pub(crate) side: Side,
    pub(crate) qty: u32,
    pub(crate) price: u32,
}

/// Cash (fen) and holdings per account, kept the plainest way.
pub(crate) struct RefAccounts {
    pub(crate) cash: Vec<(i64, i64)>,
    pub(crate) holdings: Vec<Vec<RefHolding>>,
    pub(crate) cap: Option<i64>,
    /// Totals at load, moved only by transfers.
    pub(crate) total_cash: i128,
    pub(crate) total_holdings: Vec<i128>,
}

impl RefAccounts {
    /// `cash[a]` fen and `holdings[a][book]` sellable tonnes per account.
    pub(crate) fn new(cash: &[i64], holdings: &[Vec<i64>], cap: Option<u32>) -> RefAccounts {
        let holdings: Vec<Vec<RefHolding>> = holdings
            .iter()
            .map(|h| h.iter().map(|&available| RefHolding { available, ..RefHolding::default() }).collect())
            .collect();
        let books = holdings.first().map_or(0, Vec::len);
        let total_holdings = (0..books).map(|b| holdings.iter().map(|h| i128::from(h[b].available)).sum()).collect();
        RefAccounts {
            cash: cash.iter().map(|&c| (c, 0)).collect(),
            holdings,
            cap: cap.map(i64::from),
            total_cash: cash.iter().map(|&c| i128::from(c)).sum(),
            total_holdings,
        }
    }

    fn known(&self, account: u32) -> bool {
        (account as usize) < self.cash.len()
    }

    /// The order of PROTOCOL §5.2: holdings `i` for a sell; cap `m`, then funds `n` for a buy.
    fn check(&self, l: &Lock) -> Result<(), RejectReason> {
        if !self.known(l.account) {
            return Err(RejectReason::NotEntitled);
        }
        let h = self.holdings[l.account as usize][l.book];
        let qty = i64::from(l.qty);
        match l.side {
            Side::Sell if h.available < qty => Err(RejectReason::ShortSale),
            Side::Sell => Ok(()),
            Side::Buy => {
                let owned = h.available + h.locked + h.bought_today;
                if self.cap.is_some_and(|cap| owned + h.open_buy + qty > cap) {
                    return Err(RejectReason::HoldingCap);
                }
                if i64::from(l.price) * qty > self.cash[l.account as usize].0 {
                    return Err(RejectReason::InsufficientFunds);
                }
                Ok(())
            }
        }
    }

    /// Takes (`sign` 1) or gives back (`sign` -1) what `l` holds.
    fn hold(&mut self, l: &Lock, sign: i64) {
        let qty = sign * i64::from(l.qty);
        let h = &mut self.holdings[l.account as usize][l.book];
        match l.side {
            Side::Sell => {
                h.available -= qty;
                h.locked += qty;
            }
            Side::Buy => {
                h.open_buy += qty;
                let cash = &mut self.cash[l.account as usize];
                cash.0 -= i64::from(l.price) * qty;
                cash.1 += i64::from(l.price) * qty;
            }
        }
    }

    /// One fill of `qty` at `price` between two orders' locks.
    pub(crate) fn settle(&mut self, a: &Lock, b: &Lock, qty: u32, price: u32) {
        let (buyer, seller) = if a.side == Side::Buy { (a, b) } else { (b, a) };
        let (qty, paid, locked) =
            (i64::from(qty), i64::from(price) * i64::from(qty), i64::from(buyer.price) * i64::from(qty));
        let cash = &mut self.cash[buyer.account as usize];
        cash.1 -= locked;
        cash.0 += locked - paid;
        self.cash[seller.account as usize].0 += paid;
        let h = &mut self.holdings[buyer.account as usize][buyer.book];
        h.open_buy -= qty;
        h.bought_today += qty;
        self.holdings[seller.account as usize][seller.book].locked -= qty;
    }

    /// T+1: what was bought today becomes sellable at the roll.
    pub(crate) fn settle_day(&mut self) {
        for h in self.holdings.iter_mut().flatten() {
            h.available += std::mem::take(&mut h.bought_today);
        }
    }

    /// A registry transfer into or out of available cash or sellable tonnes.
    pub(crate) fn transfer(&mut self, t: &Transfer) -> bool {
        if !self.known(t.account.get()) {
            return false;
        }
        let a = t.account.get() as usize;
        let (balance, total) = match t.asset {
            Asset::Cash => (&mut self.cash[a].0, &mut self.total_cash),
            Asset::Holding(i) if i.index() < self.total_holdings.len() => {
                (&mut self.holdings[a][i.index()].available, &mut self.total_holdings[i.index()])
            }
            Asset::Holding(_) => return false,
        };
        match balance.checked_add(t.amount).filter(|v| *v >= 0) {
            Some(after) => {
                *balance = after;
                *total += i128::from(t.amount);
                true
            }
            None => false,
        }
    }

    /// Conservation and nothing negative, then equality with the engine's table.
    pub(crate) fn check_against(&self, table: &carbonx_engine::accounts::AccountTable) {
        let cash: i128 = self.cash.iter().map(|&(a, l)| i128::from(a) + i128::from(l)).sum();
        assert_eq!(cash, self.total_cash, "reference: total cash not conserved");
        for (b, total) in self.total_holdings.iter().enumerate() {
            let owned: i128 =
                self.holdings.iter().map(|h| i128::from(h[b].available + h[b].locked + h[b].bought_today)).sum();
            assert_eq!(owned, *total, "reference: holdings of book {b} not conserved");
        }
        for (a, (&(available, locked), holdings)) in self.cash.iter().zip(&self.holdings).enumerate() {
            let account = AccountId::new(a as u32);
            assert!(available >= 0 && locked >= 0, "account {a} cash negative");
            let c = table.cash(account).unwrap();
            assert_eq!((c.available, c.locked), (available, locked), "account {a}: cash");
            for (b, h) in holdings.iter().enumerate() {
                assert!(h.available >= 0 && h.locked >= 0 && h.bought_today >= 0 && h.open_buy >= 0);
                let e = table.holding(account, InstrumentId::new(b as u8)).unwrap();
                let engine = RefHolding {
                    available: e.available,
                    locked: e.locked,
                    bought_today: e.bought_today,
                    open_buy: e.open_buy,
                };
                assert_eq!(engine, *h, "account {a} book {b}: holding");
            }
        }
    }
}

impl Model {
    /// Every lock helper is a no-op without accounts (the book alone).
    pub(crate) fn risk(&self, l: &Lock) -> Result<(), RejectReason> {
        self.accounts.as_ref().map_or(Ok(()), |a| a.check(l))
    }

    pub(crate) fn lock(&mut self, l: &Lock) {
        if let Some(a) = &mut self.accounts {
            a.hold(l, 1);
        }
    }

    pub(crate) fn release(&mut self, l: &Lock) {
        if let Some(a) = &mut self.accounts {
            a.hold(l, -1);
        }
    }

    pub(crate) fn known(&self, account: u32) -> bool {
        self.accounts.as_ref().is_none_or(|a| a.known(account))
    }
}
