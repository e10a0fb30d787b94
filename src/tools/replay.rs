//! `carbonx replay`: replays a data directory's journal offline into a
//! fresh engine and reports what the day came to: the state hash, counts
//! of events by kind, and each instrument's statistics per method. With a
//! recorded hash it verifies that the journal reproduces it. Read-only: a
//! torn tail is reported, never cut. By default it starts from the newest
//! start-of-day snapshot (so it replays at most one day); `--full` starts
//! from the first journal file, `--snapshot FILE` from any snapshot
//! (an on-demand one too), and both must give the same hash.

use crate::config::{Config, ConfigFileError};
use crate::serve::journal_file::TornTail;
use crate::serve::sequencer::{DayFiles, Publisher, ReplayStart, RestoreError, Sequencer, SequencerError};
use crate::tools::audit::{Audit, BookRequest, BookView, Filter, Names, UnknownInstrument};
use carbonx_engine::{DailyStats, Engine, Event, InstrumentId, Method, Timestamp};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Counts events by kind.
#[derive(Default)]
struct Counter(BTreeMap<&'static str, u64>);

fn kind(event: &Event) -> &'static str {
    match event {
        Event::Accepted(_) => "accepted",
        Event::Rejected { .. } => "rejected",
        Event::Replaced { .. } => "replaced",
        Event::Executed(x) if x.method == Method::Block => "executed (block)",
        Event::Executed(x) if x.method == Method::Auction => "executed (auction)",
        Event::Executed(_) => "executed (listing)",
        Event::Cancelled { .. } => "cancelled",
        Event::CancelRejected { .. } => "cancel rejected",
        Event::BookAdd { .. } | Event::BookReduce { .. } | Event::BookDelete { .. } | Event::BookReplace { .. } => {
            "book changes"
        }
        Event::Phase(_) | Event::TradingState { .. } | Event::Reference(_) | Event::DailyStats(_) => "market events",
        Event::Transferred { .. } => "transfers",
        Event::ReferenceData { .. } => "reference data",
        Event::AuctionAnnounced(_) | Event::AuctionRefused { .. } | Event::AuctionResult(_) => "auctions",
    }
}

impl Publisher for Counter {
    fn publish(&mut self, _now: Timestamp, events: &[Event]) {
        for event in events {
            *self.0.entry(kind(event)).or_default() += 1;
        }
    }
}

/// What a replay found.
#[derive(Debug)]
pub struct ReplayReport {
    /// Journal records replayed.
    pub records: u64,
    /// The engine's state hash after the last record.
    pub state_hash: u64,
    /// Events by kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Each instrument's statistics so far today: listing, block, auction.
    pub stats: Vec<(String, DailyStats)>,
    /// Orders resting at the end.
    pub resting: usize,
    /// The snapshot it started from, if any.
    pub snapshot: Option<std::path::PathBuf>,
}

/// Where a replay starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The newest readable start-of-day snapshot, else the first journal file.
    Latest,
    /// The first journal file, ignoring snapshots.
    Full,
    /// This snapshot file.
    Snapshot(std::path::PathBuf),
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The configuration or accounts could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    /// No journal file in the data directory.
    #[error("no journal files (journal-YYYYMMDD.cxj) in {0}")]
    NoJournal(String),
    /// The journal is corrupt or has a gap.
    #[error(transparent)]
    Journal(#[from] SequencerError),
    /// The named snapshot cannot be used.
    #[error("snapshot: {0}")]
    Snapshot(RestoreError),
    /// `--book` names an instrument the market does not have.
    #[error(transparent)]
    Book(#[from] UnknownInstrument),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// The engine `config` describes, or why there is nothing to replay.
fn engine_for(config: &Config, base: &Path, data_dir: &Path) -> Result<Engine, ReplayError> {
    let no_journal = crate::serve::journal_file::journal_files(data_dir).map_or(true, |files| files.is_empty());
    if no_journal && !raft_dir(data_dir).is_dir() {
        return Err(ReplayError::NoJournal(data_dir.display().to_string()));
    }
    Ok(config.build_engine(base)?)
}

/// A cluster node's Raft log (`[cluster]`): its journal.
fn raft_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("raft")
}

/// A read-only sequencer over `data_dir`, restored from where `from` says.
fn restored<P: Publisher>(
    engine: Engine,
    publisher: P,
    data_dir: &Path,
    from: &ReplayFrom,
) -> Result<(Sequencer<P>, ReplayStart), ReplayError> {
    let fsync = crate::serve::journal_file::FsyncMode::Never;
    let mut sequencer = Sequencer::new(engine, publisher, Some(data_dir.to_path_buf()), fsync);
    let start = match from {
        ReplayFrom::Latest => sequencer.restore_latest_snapshot(DayFiles::NotNeeded),
        ReplayFrom::Full => ReplayStart { snapshot: None, from: None },
        ReplayFrom::Snapshot(path) => {
            sequencer.try_restore(path, data_dir, DayFiles::NotNeeded).map_err(ReplayError::Snapshot)?
        }
    };
    Ok((sequencer, start))
}

/// What `carbonx replay --events` prints: the filtered lines, or one book.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// Which lines.
    pub filter: Filter,
    /// Print this book at a moment instead of the lines.
    pub book: Option<BookRequest>,
}

/// Replays the journal printing each record and its events as a JSON line
/// to `out` (see [`crate::tools::audit`]); with a book request, nothing is
/// printed and the book at that moment is returned.
///
/// # Errors
/// A [`ReplayError`]: no journal, a bad one, an unknown instrument, or `out` failing.
pub fn audit(
    config: &Config,
    base: &Path,
    data_dir: &Path,
    from: &ReplayFrom,
    options: &AuditOptions,
    out: Box<dyn std::io::Write>,
) -> Result<Option<BookView>, ReplayError> {
    let engine = engine_for(config, base, data_dir)?;
    let users = config.gateway.users.iter().map(|u| u.name.clone()).collect();
    let audit = Audit::new(&engine, Names::new(&engine, users), options.filter.clone(), out);
    let (mut sequencer, start) = restored(engine, audit, data_dir, from)?;
    if let Some(request) = &options.book {
        let seed = Audit::book_seed(sequencer.engine(), request.clone())?;
        sequencer.publisher_mut().rebuild_book(seed);
    }
    sequencer.replay_from(TornTail::Keep, &start)?;
    sequencer.publisher_mut().finish().map_err(ReplayError::Output)
}

/// Replays every journal file in `data_dir` into an engine built from `config`.
///
/// # Errors
/// A [`ReplayError`] naming what is wrong.
pub fn replay(config: &Config, base: &Path, data_dir: &Path, from: &ReplayFrom) -> Result<ReplayReport, ReplayError> {
    let engine = engine_for(config, base, data_dir)?;
    // A cluster node starts from its Raft snapshot (the day's start and
    // the day's batches), then its committed log.
    let cluster = raft_dir(data_dir).is_dir();
    let from = if cluster { &ReplayFrom::Full } else { from };
    let (mut sequencer, mut start) = restored(engine, Counter::default(), data_dir, from)?;
    let records = if cluster {
        let raft_snapshot = raft_dir(data_dir).join(crate::cluster::state_machine::SNAPSHOT);
        start.snapshot = raft_snapshot.is_file().then_some(raft_snapshot);
        sequencer.replay_raft_log(&raft_dir(data_dir))?
    } else {
        sequencer.replay_from(TornTail::Keep, &start)?
    };
    let engine = sequencer.engine();
    // A broken invariant is a bug, never a report line: it stops the replay.
    engine.check_invariants();
    let mut stats = Vec::new();
    for (i, code) in engine.instruments().iter().enumerate() {
        for method in Method::ALL {
            stats.push((code.to_string(), engine.daily_stats(InstrumentId::new(i as u8), method)));
        }
    }
    Ok(ReplayReport {
        records,
        state_hash: engine.state_hash(),
        events: sequencer.publisher().0.clone(),
        stats,
        resting: engine.resting_count(),
        snapshot: start.snapshot,
    })
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.snapshot {
            Some(path) => writeln!(f, "started from:     snapshot {}", path.display())?,
            None => writeln!(f, "started from:     the first journal file (a cluster node: its log's first entry)")?,
        }
        writeln!(f, "records replayed: {}", self.records)?;
        writeln!(f, "state hash:       {:#018x}", self.state_hash)?;
        writeln!(f, "invariants:       hold (books, accounts, money and holdings conserved)")?;
        writeln!(f, "resting orders:   {}", self.resting)?;
        for (kind, n) in &self.events {
            writeln!(f, "  {kind:<20} {n}")?;
        }
        writeln!(
            f,
            "{:<8} {:<8} {:>9} {:>9} {:>9} {:>9} {:>12} {:>18}",
            "stock", "method", "open", "high", "low", "close", "volume t", "turnover yuan"
        )?;
        for (code, s) in &self.stats {
            let method = s.method.name();
            let turnover = format!("{}.{:02}", s.turnover / 100, s.turnover % 100);
            writeln!(
                f,
                "{code:<8} {method:<8} {:>9} {:>9} {:>9} {:>9} {:>12} {turnover:>18}",
                s.open.to_string(),
                s.high.to_string(),
                s.low.to_string(),
                s.close.to_string(),
                s.volume
            )?;
        }
        Ok(())
    }
}

/// Parses a state hash as printed (`0x` and hex, or plain hex).
pub fn parse_hash(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}
