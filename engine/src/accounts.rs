//! Accounts for pre-trade risk: cash in fen and holdings in tonnes per
//! instrument, each split into what is available, what open orders have
//! locked, and (for holdings) what was bought today and becomes sellable
//! only at the roll (T+1).
//!
//! Full pre-funding, no short selling, no credit (RULES §6.2): a buy locks
//! `price × qty`, a sell locks `qty` of sellable holdings; a fill moves cash
//! and holdings between the two accounts and releases any price
//! improvement. All arithmetic is checked: an overflow is a reject, never a
//! wrap. The table is preallocated; nothing here allocates after loading.

use crate::command::Asset;
use crate::types::{AccountId, InstrumentId};

/// Fen per yuan.
const FEN_PER_YUAN: i64 = 100;

/// One account's holding of one instrument, in tonnes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holding {
    /// Sellable now.
    pub available: i64,
    /// Locked by open sell orders.
    pub locked: i64,
    /// Bought today: owned, not sellable until the roll.
    pub bought_today: i64,
    /// Tonnes of open buy orders, counted against the holding cap.
    pub open_buy: i64,
}

impl Holding {
    /// Everything owned (for the holding cap and conservation).
    pub fn owned(&self) -> i64 {
        self.available + self.locked + self.bought_today
    }
}

/// One account's cash, in fen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cash {
    /// Usable for new buys.
    pub available: i64,
    /// Locked by open buy orders.
    pub locked: i64,
}

/// A risk failure: the OUCH reject letters `n`, `i`, `m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskError {
    /// `n`: not enough available cash (or the amount overflows).
    Funds,
    /// `i`: not enough sellable holdings.
    Holdings,
    /// `m`: the buy could take the account over its holding cap.
    Cap,
}

/// Every account's cash and holdings, preallocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountTable {
    codes: Vec<[u8; 4]>,
    cash: Vec<Cash>,
    holdings: Vec<Holding>,
    instruments: usize,
}

/// An accounts file that cannot be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountsError {
    /// The header is not `account,cash_yuan,<every instrument in order>`.
    #[error("line 1: header must be {expected:?}")]
    Header {
        /// The header this market needs.
        expected: String,
    },
    /// A row with the wrong number of fields.
    #[error("line {line}: expected {expected} fields, found {found}")]
    FieldCount {
        /// 1-based line.
        line: usize,
        /// Fields needed.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// An account code that is not 4 ASCII letters or digits, or repeated.
    #[error("line {line}: account {code:?} must be 4 letters or digits and unique")]
    Code {
        /// 1-based line.
        line: usize,
        /// The code.
        code: String,
    },
    /// A cash or holding value that is not a non-negative number.
    #[error("line {line}: {field} value {value:?} must be a non-negative amount")]
    Value {
        /// 1-based line.
        line: usize,
        /// The column.
        field: String,
        /// The text.
        value: String,
    },
    /// Text that is not CSV (an unclosed quote, bytes that are not UTF-8).
    #[error("line {line}: not CSV: {reason}")]
    Malformed {
        /// 1-based line.
        line: usize,
        /// What the CSV reader said.
        reason: String,
    },
}

impl AccountsError {
    /// The CSV reader's error, at the line where it happened.
    fn malformed(text: &str, err: &csv::Error) -> AccountsError {
        AccountsError::Malformed { line: line_at(text, err.position()), reason: err.to_string() }
    }
}

/// The 1-based line of `text` where a record at `position` starts.
///
/// The `csv` crate's own line numbers skip blank lines and count a CRLF
/// oddly, and its byte offset is where the previous record ended; so the
/// line is counted here from that offset, past any line ends.
fn line_at(text: &str, position: Option<&csv::Position>) -> usize {
    let from = position.map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX)).min(text.len());
    let start = from + text[from..].bytes().take_while(|b| matches!(b, b'\r' | b'\n')).count();
    1 + text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count()
}

impl AccountTable {
    /// An empty table for a market of `instruments` instruments.
    pub fn new(instruments: usize) -> AccountTable {
        AccountTable { codes: Vec::new(), cash: Vec::new(), holdings: Vec::new(), instruments }
    }

    /// The demo accounts of RULES §13: `0001` .. `count` (4 digits), each with
    /// 100,000,000.00 yuan and 2,000,000 t of every instrument, all sellable.
    pub fn demo(instruments: usize, count: u32) -> AccountTable {
        let mut table = AccountTable::new(instruments);
        for n in 1..=count.min(9_999) {
            let code: [u8; 4] = format!("{n:04}").as_bytes().try_into().expect("4 digits");
            table.push(code, 100_000_000 * FEN_PER_YUAN, &vec![2_000_000; instruments]);
        }
        table
    }

    /// Parses an accounts CSV: `account,cash_yuan,<instrument codes in directory order>`.
    ///
    /// Read with the `csv` crate so that a registry's export loads as it
    /// comes: a UTF-8 byte-order mark, CRLF line ends, quoted fields and
    /// blank lines are all accepted, and spaces around fields are trimmed.
    /// The text is already in memory: the engine still does no IO.
    ///
    /// # Errors
    /// An [`AccountsError`] naming the line and field.
    pub fn from_csv(text: &str, instruments: &[&str]) -> Result<AccountTable, AccountsError> {
        let expected = format!("account,cash_yuan,{}", instruments.join(","));
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut rows = reader.records().filter(|row| row.as_ref().map_or(true, |r| r.iter().any(|f| !f.is_empty())));
        match rows.next().transpose() {
            Ok(Some(header)) if header.iter().map(|f| f.replace(' ', "")).eq(expected.split(',').map(String::from)) => {
            }
            Ok(_) => return Err(AccountsError::Header { expected }),
            Err(err) => return Err(AccountsError::malformed(text, &err)),
        }
        let mut table = AccountTable::new(instruments.len());
        for row in rows {
            let row = row.map_err(|err| AccountsError::malformed(text, &err))?;
            let fields: Vec<&str> = row.iter().collect();
            table.parse_row(line_at(text, row.position()), &fields, instruments)?;
        }
        Ok(table)
    }

    fn parse_row(&mut self, line: usize, fields: &[&str], instruments: &[&str]) -> Result<(), AccountsError> {
        if fields.len() != 2 + instruments.len() {
            return Err(AccountsError::FieldCount { line, expected: 2 + instruments.len(), found: fields.len() });
        }
        let code = <[u8; 4]>::try_from(fields[0].as_bytes())
            .ok()
            .filter(|c| c.iter().all(u8::is_ascii_alphanumeric) && self.find(c).is_none())
            .ok_or_else(|| AccountsError::Code { line, code: fields[0].to_string() })?;
        let bad = |field: &str, value: &str| AccountsError::Value { line, field: field.into(), value: value.into() };
        let cash = parse_yuan_to_fen(fields[1]).ok_or_else(|| bad("cash_yuan", fields[1]))?;
        let mut holdings = Vec::with_capacity(instruments.len());
        for (name, value) in instruments.iter().zip(&fields[2..]) {
            holdings.push(value.parse::<u32>().map_err(|_| bad(name, value))?.into());
        }
        self.push(code, cash, &holdings);
        Ok(())
    }

    fn push(&mut self, code: [u8; 4], cash: i64, holdings: &[i64]) {
        self.codes.push(code);
        self.cash.push(Cash { available: cash, locked: 0 });
        self.holdings.extend(holdings.iter().map(|&t| Holding { available: t, ..Holding::default() }));
    }

    /// Number of instruments each account holds.
    pub fn instruments(&self) -> usize {
        self.instruments
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True without accounts.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The account with this 4-character code.
    pub fn find(&self, code: &[u8; 4]) -> Option<AccountId> {
        let index = self.codes.iter().position(|c| c == code)?;
        u32::try_from(index).ok().map(AccountId::new)
    }

    /// An account's code.
    pub fn code(&self, account: AccountId) -> Option<&[u8; 4]> {
        self.codes.get(account.get() as usize)
    }

    /// An account's cash, if the account exists.
    pub fn cash(&self, account: AccountId) -> Option<&Cash> {
        self.cash.get(account.get() as usize)
    }

    /// An account's holding of an instrument, if the account exists.
    pub fn holding(&self, account: AccountId, instrument: InstrumentId) -> Option<&Holding> {
        self.holdings.get(self.slot(account, instrument)?)
    }

    /// Every account as (code, cash, holdings in directory order), for a snapshot.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (&[u8; 4], Cash, &[Holding])> + '_ {
        let per = self.instruments.max(1);
        self.codes.iter().zip(&self.cash).zip(self.holdings.chunks(per)).map(|((code, cash), h)| (code, *cash, h))
    }

    /// A table from a snapshot's rows; `None` when a row does not have one
    /// holding per instrument or a code repeats.
    pub(crate) fn from_rows(instruments: usize, rows: Vec<([u8; 4], Cash, Vec<Holding>)>) -> Option<AccountTable> {
        let mut table = AccountTable::new(instruments);
        for (code, cash, holdings) in rows {
            if holdings.len() != instruments || table.codes.contains(&code) {
                return None;
            }
            table.codes.push(code);
            table.cash.push(cash);
            table.holdings.extend(holdings);
        }
        Some(table)
    }

    fn slot(&self, account: AccountId, instrument: InstrumentId) -> Option<usize> {
        let a = account.get() as usize;
        (a < self.codes.len() && instrument.index() < self.instruments)
            .then(|| a * self.instruments + instrument.index())
    }

    /// Locks `amount` fen of `account`'s cash for a buy.
    ///
    /// # Errors
    /// [`RiskError::Funds`] when it is not available (the account is unchanged).
    pub fn lock_cash(&mut self, account: AccountId, amount: i64) -> Result<(), RiskError> {
        let cash = self.cash.get_mut(account.get() as usize).ok_or(RiskError::Funds)?;
        if amount < 0 || cash.available < amount {
            return Err(RiskError::Funds);
        }
        cash.available -= amount;
        cash.locked += amount;
        Ok(())
    }

    /// Releases `amount` fen of locked cash back to available.
    pub fn release_cash(&mut self, account: AccountId, amount: i64) {
        let cash = &mut self.cash[account.get() as usize];
        assert!(0 <= amount && amount <= cash.locked, "releasing {amount} of {} locked", cash.locked);
        cash.locked -= amount;
        cash.available += amount;
    }

    /// Checks the holding cap and counts `qty` as an open buy.
    ///
    /// # Errors
    /// [`RiskError::Cap`] when holdings + open buys + `qty` would pass `cap`.
    pub fn open_buy(
        &mut self,
        account: AccountId,
        instrument: InstrumentId,
        qty: i64,
        cap: Option<i64>,
    ) -> Result<(), RiskError> {
        let slot = self.slot(account, instrument).ok_or(RiskError::Funds)?;
        let h = &mut self.holdings[slot];
        let after = h.owned().checked_add(h.open_buy).and_then(|t| t.checked_add(qty)).ok_or(RiskError::Cap)?;
        if cap.is_some_and(|cap| after > cap) {
            return Err(RiskError::Cap);
        }
        h.open_buy += qty;
        Ok(())
    }

    /// Forgets `qty` tonnes of open buys (cancel, expiry, fill).
    pub fn close_buy(&mut self, account: AccountId, instrument: InstrumentId, qty: i64) {
        let slot = self.slot(account, instrument).expect("known account");
        let h = &mut self.holdings[slot];
        assert!(qty <= h.open_buy, "closing {qty} t of {} t open buys", h.open_buy);
        h.open_buy -= qty;
    }

    /// Locks `qty` sellable tonnes for a sell.
    ///
    /// # Errors
    /// [`RiskError::Holdings`] when not that many are sellable (bought-today ones are not).
    pub fn lock_holding(&mut self, account: AccountId, instrument: InstrumentId, qty: i64) -> Result<(), RiskError> {
        let slot = self.slot(account, instrument).ok_or(RiskError::Holdings)?;
        let h = &mut self.holdings[slot];
        if qty < 0 || h.available < qty {
            return Err(RiskError::Holdings);
        }
        h.available -= qty;
        h.locked += qty;
        Ok(())
    }

    /// Releases `qty` locked tonnes back to sellable.
    pub fn release_holding(&mut self, account: AccountId, instrument: InstrumentId, qty: i64) {
        let slot = self.slot(account, instrument).expect("known account");
        let h = &mut self.holdings[slot];
        assert!(0 <= qty && qty <= h.locked, "releasing {qty} t of {} t locked", h.locked);
        h.locked -= qty;
        h.available += qty;
    }

    /// Settles a fill of `qty` t at `price_fen`: the buyer pays from the cash
    /// it locked at `buyer_lock_price` (any improvement returns to
    /// available) and receives bought-today holdings; the seller delivers
    /// locked holdings and receives available cash.
    ///
    /// # Panics
    /// When a lock is too small for the fill, or when an amount overflows
    /// (RULES §6: checked arithmetic; the engine stops rather than wrap).
    /// Every amount is computed, checked, before anything changes.
    pub fn settle(&mut self, fill: Settlement) {
        let Settlement { buyer, seller, instrument, qty, price_fen, buyer_lock_price } = fill;
        let overflow = || panic!("settlement overflow: {fill:?}");
        let paid = price_fen.checked_mul(qty).unwrap_or_else(overflow);
        let locked = buyer_lock_price.checked_mul(qty).unwrap_or_else(overflow);
        let (b, s) = (buyer.get() as usize, seller.get() as usize);
        assert!(locked <= self.cash[b].locked && paid <= locked, "buyer lock too small for a fill");
        let buyer_available = self.cash[b].available.checked_add(locked - paid).unwrap_or_else(overflow);
        let seller_available = self.cash[s].available.checked_add(paid).unwrap_or_else(overflow);
        let (buyer_slot, seller_slot) = (
            self.slot(buyer, instrument).expect("known account"),
            self.slot(seller, instrument).expect("known account"),
        );
        let bought_today = self.holdings[buyer_slot].bought_today.checked_add(qty).unwrap_or_else(overflow);
        assert!(qty <= self.holdings[seller_slot].locked, "seller lock too small for a fill");
        assert!(qty <= self.holdings[buyer_slot].open_buy, "buyer's open buys too small for a fill");
        assert!(b != s, "settling a trade of account {b} with itself");
        self.cash[b].locked -= locked;
        self.cash[b].available = buyer_available;
        self.cash[s].available = seller_available;
        self.close_buy(buyer, instrument, qty);
        self.holdings[buyer_slot].bought_today = bought_today;
        self.holdings[seller_slot].locked -= qty;
    }

    /// A registry transfer into (positive) or out of (negative) available
    /// cash or sellable holdings.
    ///
    /// # Errors
    /// Unknown account or instrument, not enough available, or an overflow;
    /// nothing changes.
    pub fn transfer(&mut self, account: AccountId, asset: Asset, amount: i64) -> Result<(), RiskError> {
        let balance = match asset {
            Asset::Cash => &mut self.cash.get_mut(account.get() as usize).ok_or(RiskError::Funds)?.available,
            Asset::Holding(instrument) => {
                let slot = self.slot(account, instrument).ok_or(RiskError::Holdings)?;
                &mut self.holdings[slot].available
            }
        };
        let after = balance.checked_add(amount).filter(|v| *v >= 0).ok_or(RiskError::Funds)?;
        *balance = after;
        Ok(())
    }

    /// A newly listed instrument (RULES §1.3), last in the directory:
    /// every account gets a holding of 0 t. Rebuilds the holdings table (at
    /// the roll, not on the hot path).
    pub(crate) fn add_instrument(&mut self) {
        let per = self.instruments;
        let mut holdings = Vec::with_capacity(self.codes.len() * (per + 1));
        for row in 0..self.codes.len() {
            holdings.extend_from_slice(&self.holdings[row * per..(row + 1) * per]);
            holdings.push(Holding::default());
        }
        self.holdings = holdings;
        self.instruments = per + 1;
    }

    /// The roll: every bought-today tonne becomes sellable (T+1).
    pub fn settle_day(&mut self) {
        for h in &mut self.holdings {
            h.available += std::mem::take(&mut h.bought_today);
        }
    }

    /// Total cash (available + locked) over all accounts.
    pub fn total_cash(&self) -> i128 {
        self.cash.iter().map(|c| i128::from(c.available) + i128::from(c.locked)).sum()
    }

    /// Total tonnes owned of one instrument over all accounts.
    pub fn total_holding(&self, instrument: InstrumentId) -> i128 {
        self.holdings
            .iter()
            .skip(instrument.index())
            .step_by(self.instruments.max(1))
            .map(|h| i128::from(h.owned()))
            .sum()
    }

    /// Checks that nothing is negative anywhere.
    ///
    /// # Errors
    /// Naming the account when a balance is negative.
    pub fn check_invariants(&self) -> Result<(), crate::inspect::Breach> {
        for (i, c) in self.cash.iter().enumerate() {
            ensure!(c.available >= 0 && c.locked >= 0, "account {i} cash negative: {c:?}");
        }
        for (i, h) in self.holdings.iter().enumerate() {
            let ok = h.available >= 0 && h.locked >= 0 && h.bought_today >= 0 && h.open_buy >= 0;
            ensure!(ok, "account {} holding {} negative: {h:?}", i / self.instruments, i % self.instruments);
        }
        Ok(())
    }
}

/// One fill to settle between two accounts.
#[derive(Clone, Copy, Debug)]
pub struct Settlement {
    /// The buying account.
    pub buyer: AccountId,
    /// The selling account.
    pub seller: AccountId,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Tonnes.
    pub qty: i64,
    /// The trade price in fen.
    pub price_fen: i64,
    /// The price the buyer's cash was locked at (its limit, or the band edge).
    pub buyer_lock_price: i64,
}

/// `"100000000.00"` yuan → fen; at most two decimals, non-negative; `None`
/// for anything else or an overflow.
pub fn parse_yuan_to_fen(text: &str) -> Option<i64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || frac.len() > 2 || !digits(frac) {
        return None;
    }
    let cents: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    whole.parse::<i64>().ok()?.checked_mul(FEN_PER_YUAN)?.checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODES: [&str; 2] = ["CEA", "CCER"];

    #[test]
    fn csv_loads_and_names_bad_lines() {
        let text = "account,cash_yuan,CEA,CCER\n0001,1000.5,10,0\nA002,0,0,7\n";
        let t = AccountTable::from_csv(text, &CODES).unwrap();
        assert_eq!(t.len(), 2);
        let a = t.find(b"0001").unwrap();
        assert_eq!(t.cash(a).unwrap().available, 100_050);
        assert_eq!(t.holding(a, InstrumentId::new(0)).unwrap().available, 10);
        let bad_header = AccountTable::from_csv("account,cash,CEA,CCER\n", &CODES).unwrap_err();
        assert!(matches!(bad_header, AccountsError::Header { .. }));
        let dup = AccountTable::from_csv("account,cash_yuan,CEA,CCER\n0001,1,1,1\n0001,1,1,1\n", &CODES);
        assert_eq!(dup.unwrap_err(), AccountsError::Code { line: 3, code: "0001".into() });
        let neg = AccountTable::from_csv("account,cash_yuan,CEA,CCER\n0001,-1,1,1\n", &CODES).unwrap_err();
        assert!(neg.to_string().contains("line 2"), "{neg}");
        let short = AccountTable::from_csv("account,cash_yuan,CEA,CCER\n0001,1,1\n", &CODES).unwrap_err();
        assert!(matches!(short, AccountsError::FieldCount { line: 2, expected: 4, found: 3 }));
    }

    #[test]
    fn a_registry_export_with_bom_crlf_quotes_and_blank_lines_loads() {
        let text = "\u{feff}\"account\",\"cash_yuan\",\"CEA\",\"CCER\"\r\n\r\n\"0001\",\"1000.50\",\"10\",0\r\n 0002 , 7 ,\"3\",\"4\"\r\n";
        let t = AccountTable::from_csv(text, &CODES).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.cash(t.find(b"0001").unwrap()).unwrap().available, 100_050);
        assert_eq!(t.holding(t.find(b"0002").unwrap(), InstrumentId::new(1)).unwrap().available, 4);
    }

    #[test]
    fn a_bad_row_of_a_crlf_export_names_its_line() {
        let text = "account,cash_yuan,CEA,CCER\r\n0001,1,1,1\r\n\r\n0002,\"x\",1,1\r\n";
        let err = AccountTable::from_csv(text, &CODES).unwrap_err();
        assert_eq!(err, AccountsError::Value { line: 4, field: "cash_yuan".into(), value: "x".into() });
        let unclosed = AccountTable::from_csv("account,cash_yuan,CEA,CCER\n0001,1,1,1\n0002,\"1,1,1\n", &CODES);
        assert!(matches!(unclosed, Err(AccountsError::FieldCount { line: 3, .. } | AccountsError::Malformed { .. })));
        let bytes = AccountTable::from_csv("account,cash_yuan,CEA,CCER\n0001,1,1\n", &CODES).unwrap_err();
        assert!(bytes.to_string().starts_with("line 2:"), "{bytes}");
    }

    #[test]
    fn demo_has_the_rules_balances() {
        let t = AccountTable::demo(7, 3_400);
        assert_eq!(t.len(), 3_400);
        let last = t.find(b"3400").unwrap();
        assert_eq!(t.cash(last).unwrap().available, 10_000_000_000);
        assert_eq!(t.holding(last, InstrumentId::new(6)).unwrap().available, 2_000_000);
        assert_eq!(t.code(AccountId::new(0)), Some(b"0001"));
    }

    #[test]
    fn a_fill_moves_cash_and_holdings_and_conserves_totals() {
        let mut t = AccountTable::from_csv("account,cash_yuan,CEA,CCER\n0001,1000,0,0\n0002,0,50,0\n", &CODES).unwrap();
        let (buyer, seller, cea) = (AccountId::new(0), AccountId::new(1), InstrumentId::new(0));
        let (cash0, cea0) = (t.total_cash(), t.total_holding(cea));
        t.lock_cash(buyer, 10 * 8_000).unwrap();
        t.open_buy(buyer, cea, 10, Some(10)).unwrap();
        assert_eq!(t.open_buy(buyer, cea, 1, Some(10)), Err(RiskError::Cap));
        t.lock_holding(seller, cea, 10).unwrap();
        assert_eq!(t.lock_holding(seller, cea, 41), Err(RiskError::Holdings));
        t.settle(Settlement { buyer, seller, instrument: cea, qty: 10, price_fen: 7_500, buyer_lock_price: 8_000 });
        assert_eq!(*t.cash(buyer).unwrap(), Cash { available: 100_000 - 75_000, locked: 0 });
        assert_eq!(t.cash(seller).unwrap().available, 75_000);
        assert_eq!(t.holding(buyer, cea).unwrap().bought_today, 10);
        assert_eq!(t.lock_holding(buyer, cea, 1), Err(RiskError::Holdings), "T+1: not sellable today");
        assert_eq!((t.total_cash(), t.total_holding(cea)), (cash0, cea0));
        t.settle_day();
        assert_eq!(t.holding(buyer, cea).unwrap().available, 10);
        t.check_invariants().unwrap();
        assert_eq!(t.lock_cash(buyer, i64::MAX), Err(RiskError::Funds));
    }

    /// RULES §6: money arithmetic is checked; an overflow stops, never wraps
    /// (in a release build too). The seller already holds the most cash an
    /// i64 can count, and a sale would add to it.
    #[test]
    #[should_panic(expected = "settlement overflow")]
    fn a_settlement_that_would_overflow_stops_and_never_wraps() {
        let csv = "account,cash_yuan,CEA,CCER\n0001,1000,0,0\n0002,92233720368547758.07,50,0\n";
        let mut t = AccountTable::from_csv(csv, &CODES).unwrap();
        let (buyer, seller, cea) = (AccountId::new(0), AccountId::new(1), InstrumentId::new(0));
        assert_eq!(t.cash(seller).unwrap().available, i64::MAX);
        t.lock_cash(buyer, 10 * 8_000).unwrap();
        t.open_buy(buyer, cea, 10, None).unwrap();
        t.lock_holding(seller, cea, 10).unwrap();
        t.settle(Settlement { buyer, seller, instrument: cea, qty: 10, price_fen: 7_500, buyer_lock_price: 8_000 });
    }

    #[test]
    #[should_panic(expected = "settlement overflow")]
    fn a_price_times_quantity_that_overflows_stops() {
        let mut t = AccountTable::from_csv("account,cash_yuan,CEA,CCER\n0001,0,0,0\n0002,0,0,0\n", &CODES).unwrap();
        let (buyer, seller, cea) = (AccountId::new(0), AccountId::new(1), InstrumentId::new(0));
        t.settle(Settlement { buyer, seller, instrument: cea, qty: i64::MAX, price_fen: 2, buyer_lock_price: 2 });
    }
}
