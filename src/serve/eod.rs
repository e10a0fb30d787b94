//! End-of-day files for the registry's settlement and the operator, in
//! `DATA_DIR/eod/YYYYMMDD/`, CSV with a header row:
//! - `trades.csv`: every trade of the day, both accounts, the method and
//!   the match number; appended while the day runs, a batch of up to
//!   [`crate::serve::fanout::SETTLEMENT_BATCH`] events at a time (as
//!   `trades.csv.partial`, so memory stays bounded however busy the day)
//!   and renamed when the day ends;
//! - `positions.csv`: every account's closing cash and holdings (owned:
//!   available + locked + bought today), in the accounts-file format of
//!   RULES §6.1 (`account,cash_yuan,CEA,...`), so it loads as the next
//!   day's accounts;
//! - `transfers.csv`: the day's registry transfers (deposits positive,
//!   withdrawals negative), so that opening positions + trades + transfers
//!   = closing positions for every account, from these files alone;
//! - `statistics.csv`: per instrument and method: open, high, low, close,
//!   volume, turnover, trades. Written last: its presence means the day's
//!   files are complete (recovery from a snapshot relies on it).
//!
//! Each file is written durably when the day ends
//! ([`carbonx_soup::files`]: a temporary name, `fsync`, rename, the
//! directory's `fsync`), `statistics.csv` last, so that a power cut never
//! leaves `statistics.csv` beside an empty or missing file. A start-up that
//! finds no `statistics.csv` for a day replays that day from an older
//! snapshot (or the first journal file), which writes the set again.
//!
//! The writer is its own stage on its own thread, fed by the sequencer's
//! fan-out like the gateway and the feed, so file I/O never slows the
//! engine; it is woken once per few thousand events and at each day's
//! boundaries rather than after every sequencer batch. The positions are a
//! copy of the account table the sequencer takes once per day, when the day
//! ends. A replay at start-up rewrites the files of replayed days with the
//! same content.

use crate::admin::fen_text;
use carbonx_engine::accounts::AccountTable;
use carbonx_engine::{AccountId, Asset, DailyStats, Event, InstrumentId, Side, StockCode, Timestamp};
use carbonx_soup::failstop::{FailStop, PanicHook};
use carbonx_soup::files;
use crossbeam::channel::Receiver;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the end-of-day writer receives.
#[derive(Debug)]
pub enum EodInput {
    /// Durable events (trades and statistics) in stream order.
    Events(Vec<(Timestamp, Event)>),
    /// The day that ended: a copy of every account, after its last command.
    DayEnded(Box<AccountTable>),
    /// A trading day (`YYYYMMDD`) starts.
    Day(u32),
}

/// The end-of-day writer.
pub struct EodWriter {
    /// The data directory; the files go under its `eod/`.
    data_dir: PathBuf,
    stocks: Vec<StockCode>,
    accounts: Vec<[u8; 4]>,
    date: Option<u32>,
    trades: Option<std::io::BufWriter<files::CheckedFile>>,
    stats: Vec<DailyStats>,
    transfers: String,
    /// The permissions of new files and directories.
    modes: files::FileModes,
    /// Thrown when a file cannot be written (fail-stop).
    failstop: Arc<FailStop>,
}

const TRADES_HEADER: &str =
    "match,timestamp_ns,instrument,method,price_yuan,qty_t,buy_account,sell_account,buy_order,sell_order,aggressor\n";
const TRANSFERS_HEADER: &str = "request,timestamp_ns,account,asset,amount\n";
const STATS_HEADER: &str = "date,instrument,method,open,high,low,close,volume_t,turnover_yuan,trades\n";

impl EodWriter {
    /// Writes under `data_dir/eod`; `accounts` are the account codes in account order.
    /// New files and directories get `modes`.
    pub fn new(data_dir: &Path, stocks: Vec<StockCode>, accounts: Vec<[u8; 4]>, modes: files::FileModes) -> EodWriter {
        EodWriter {
            data_dir: data_dir.to_path_buf(),
            stocks,
            accounts,
            date: None,
            trades: None,
            stats: Vec::new(),
            transfers: String::from(TRANSFERS_HEADER),
            modes,
            failstop: FailStop::new(),
        }
    }

    /// Shares the server's fail-stop switch.
    #[must_use]
    pub fn with_failstop(mut self, failstop: Arc<FailStop>) -> EodWriter {
        self.failstop = failstop;
        self
    }

    /// Runs until the input closes. A file that cannot be written throws
    /// the fail-stop switch and ends the thread: the registry must never
    /// receive a day's files with rows missing (a restart regenerates them
    /// from the journal).
    pub fn run(mut self, input: &Receiver<EodInput>) {
        let _watch = self.failstop.watch("end-of-day");
        let mut hook = PanicHook::for_stage("eod");
        for message in input {
            hook.tick();
            if let Err(err) = self.handle(message) {
                self.failstop.trip(format_args!("end-of-day file: {err}"));
                return;
            }
        }
        if let Some(mut trades) = self.trades.take() {
            let _ = trades.flush();
        }
    }

    /// Handles one input.
    ///
    /// # Errors
    /// A file could not be written.
    pub fn handle(&mut self, message: EodInput) -> std::io::Result<()> {
        match message {
            EodInput::Events(batch) => self.events(&batch),
            EodInput::DayEnded(accounts) => self.day_ended(&accounts),
            EodInput::Day(date) => self.start(date),
        }
    }

    fn day_dir(&self, date: u32) -> PathBuf {
        day_dir(&self.data_dir, date)
    }

    fn start(&mut self, date: u32) -> std::io::Result<()> {
        let dir = self.day_dir(date);
        let partial = dir.join("trades.csv.partial");
        let file = files::create_file(
            &partial,
            std::fs::OpenOptions::new().create(true).write(true).truncate(true),
            self.modes,
        )?;
        let mut trades = std::io::BufWriter::new(files::CheckedFile::new(file, &partial));
        trades.write_all(TRADES_HEADER.as_bytes())?;
        (self.date, self.trades) = (Some(date), Some(trades));
        self.stats.clear();
        self.transfers = String::from(TRANSFERS_HEADER);
        Ok(())
    }

    fn events(&mut self, batch: &[(Timestamp, Event)]) -> std::io::Result<()> {
        for (ts, event) in batch {
            match event {
                Event::Executed(x) => {
                    let Some(trades) = self.trades.as_mut() else { continue };
                    let (buy, sell) = if x.taker_side == Side::Buy { (x.taker, x.maker) } else { (x.maker, x.taker) };
                    let code = |a: AccountId| AccountCode(&self.accounts, a);
                    writeln!(
                        trades,
                        "{},{},{},{},{},{},{},{},{},{},{}",
                        x.match_id.get(),
                        ts.nanos(),
                        Stock(&self.stocks, x.instrument),
                        x.method.name(),
                        x.price,
                        x.qty.tonnes(),
                        code(buy.account),
                        code(sell.account),
                        buy.id.get(),
                        sell.id.get(),
                        if x.taker_side == Side::Buy { "buy" } else { "sell" },
                    )?;
                }
                Event::DailyStats(d) => self.stats.push(*d),
                // An instrument listed at the roll (RULES §1.3) joins the
                // directory last; the day's references name it.
                Event::Reference(r) if r.instrument.index() == self.stocks.len() => self.stocks.push(r.stock),
                Event::Transferred { transfer: t, accepted: true } => {
                    let (asset, amount) = match t.asset {
                        Asset::Cash => ("cash".to_string(), fen_text(i128::from(t.amount))),
                        Asset::Holding(i) => (Stock(&self.stocks, i).to_string(), t.amount.to_string()),
                    };
                    let account = AccountCode(&self.accounts, t.account);
                    self.transfers.push_str(&format!("{},{},{account},{asset},{amount}\n", t.request, ts.nanos()));
                }
                _ => {}
            }
        }
        if let Some(trades) = self.trades.as_mut() {
            trades.flush()?;
        }
        Ok(())
    }

    /// Writes the day's files, each durably (temporary name, sync,
    /// rename, directory sync), `statistics.csv` last: after a power cut
    /// at any moment its presence still means every other file is whole.
    fn day_ended(&mut self, accounts: &AccountTable) -> std::io::Result<()> {
        let Some(date) = self.date.take() else { return Ok(()) };
        let dir = self.day_dir(date);
        if let Some(trades) = self.trades.take() {
            let file = trades.into_inner().map_err(std::io::IntoInnerError::into_error)?;
            files::commit_file(file.file(), &dir.join("trades.csv.partial"), &dir.join("trades.csv"))?;
        }
        files::write_atomically(
            &dir.join("positions.csv"),
            positions_csv(accounts, &self.stocks).as_bytes(),
            self.modes,
        )?;
        files::write_atomically(&dir.join("transfers.csv"), self.transfers.as_bytes(), self.modes)?;
        files::write_atomically(
            &statistics_path(&self.data_dir, date),
            self.statistics_csv(date).as_bytes(),
            self.modes,
        )?;
        tracing::info!(dir = %dir.display(), "end-of-day files written");
        Ok(())
    }

    fn statistics_csv(&self, date: u32) -> String {
        let mut text = String::from(STATS_HEADER);
        for d in &self.stats {
            text.push_str(&format!(
                "{date},{},{},{},{},{},{},{},{},{}\n",
                Stock(&self.stocks, d.instrument),
                d.method.name(),
                d.open,
                d.high,
                d.low,
                d.close,
                d.volume,
                fen_text(i128::try_from(d.turnover).unwrap_or(i128::MAX)),
                d.trades
            ));
        }
        text
    }
}

/// An instrument's code, or `#N` if it is not in the directory: written
/// in place (a trade line allocates nothing).
struct Stock<'a>(&'a [StockCode], InstrumentId);

impl fmt::Display for Stock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.get(self.1.index()) {
            Some(code) => code.fmt(f),
            None => write!(f, "#{}", self.1.index()),
        }
    }
}

/// Every account's owned cash and holdings, in the accounts-file format.
pub fn positions_csv(accounts: &AccountTable, stocks: &[StockCode]) -> String {
    let mut text = String::from("account,cash_yuan");
    for s in stocks {
        text.push(',');
        text.push_str(&s.to_string());
    }
    text.push('\n');
    for n in 0..accounts.len() {
        let id = AccountId::new(u32::try_from(n).unwrap_or(u32::MAX));
        let (Some(code), Some(cash)) = (accounts.code(id), accounts.cash(id)) else { continue };
        text.push_str(&String::from_utf8_lossy(code));
        text.push(',');
        text.push_str(&fen_text(i128::from(cash.available) + i128::from(cash.locked)));
        for i in 0..stocks.len() {
            let owned = accounts.holding(id, InstrumentId::new(i as u8)).map_or(0, |h| h.owned());
            text.push_str(&format!(",{owned}"));
        }
        text.push('\n');
    }
    text
}

/// The directory of day `date`'s files under data directory `data_dir`.
fn day_dir(data_dir: &Path, date: u32) -> PathBuf {
    data_dir.join("eod").join(format!("{date:08}"))
}

/// Day `date`'s `statistics.csv`, written last: its presence means the
/// day's files are complete.
pub fn statistics_path(data_dir: &Path, date: u32) -> PathBuf {
    day_dir(data_dir, date).join("statistics.csv")
}

/// An account's code (`0001`), or its number if it has none: written in
/// place (a trade line allocates nothing).
struct AccountCode<'a>(&'a [[u8; 4]], AccountId);

impl fmt::Display for AccountCode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.get(self.1.get() as usize) {
            Some(code) => f.write_str(&String::from_utf8_lossy(code)),
            None => write!(f, "{}", self.1.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonx_soup::files::dir_syncs_on_this_thread;

    #[test]
    fn a_new_day_syncs_the_new_directories_and_the_partial_trades_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EodWriter::new(dir.path(), Vec::new(), Vec::new(), files::FileModes::default());
        let before = dir_syncs_on_this_thread();
        writer.handle(EodInput::Day(20261124)).unwrap();
        // `eod` in the data directory, `20261124` in `eod`, the file in `20261124`.
        assert_eq!(dir_syncs_on_this_thread() - before, 3);
        assert!(day_dir(dir.path(), 20261124).join("trades.csv.partial").exists());
    }
}
