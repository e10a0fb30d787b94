//! The sequencer: the one thread that owns the engine. It takes commands
//! from the gateway's bounded queue in batches, numbers and timestamps
//! them, journals the batch (group commit), applies it, and only then
//! publishes the events: no reply and no market data leaves before its
//! command is durable (docs/ARCHITECTURE.md).
//!
//! It also keeps the day's taken order tokens: an order or replace whose
//! token was already accepted today is ignored without reply (PROTOCOL §4.9).
//! The check runs at apply time, so a replay of the journal makes exactly
//! the same decisions.
//!
//! # Layout
//! - `mod.rs`: the [`Sequencer`] itself, what it publishes to and its
//!   errors, and applying one command (shared by the live loop and replay).
//! - `live.rs`: the live loop: batching, journaling (group commit),
//!   applying, publishing, the operator's requests and snapshots.
//! - `recovery.rs`: restoring a snapshot and replaying the journal after it.
//! - `roll.rs`: the roll in calendar mode, a clock event at `roll_at`, and
//!   the catch-up of missed trading days at start.
//! - [`clock`]: where timestamps come from: [`SystemClock`], [`ManualClock`].

pub mod clock;
mod live;
mod recovery;
mod replica;
mod roll;

pub use clock::{Clock, ManualClock, SystemClock};
pub use live::SnapshotError;
pub use recovery::{DayFiles, RestoreError};
pub use replica::{Replica, Replication};

use crate::serve::journal_file::{FsyncMode, JournalWriter, RecoveryError};
use crate::serve::metrics::SequencerMetrics;
use crate::serve::taken::TakenTokens;
use carbonx_engine::{Command, Engine, Event, Timestamp, Token, UserId};
use carbonx_soup::failstop::{FailStop, PanicHook};
use carbonx_soup::files::FileModes;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Most commands journaled and applied as one batch by default.
pub const BATCH_MAX: usize = 4_096;

/// How the sequencer forms group commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// Stop adding to a batch at this many commands.
    pub max_commands: usize,
    /// Wait at most this long for more commands before committing (zero:
    /// commit what is queued at once; the batch is then what arrived during
    /// the previous `fdatasync`).
    pub window: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { max_commands: BATCH_MAX, window: Duration::ZERO }
    }
}

/// How many commands ahead the taken-token slot is prefetched: enough for
/// a memory load to arrive while the commands in between are applied.
const PREFETCH_AHEAD: usize = 4;

/// Where the sequencer's output goes: the gateway's sessions and the feed.
pub trait Publisher {
    /// The events of one command, applied at `now`, in order. They must
    /// only be held: a batch's journal sync may still be running (see
    /// `sync_timing`), so nothing may leave the process before
    /// [`Publisher::flush`] (or a day's start or end).
    fn publish(&mut self, now: Timestamp, events: &[Event]);
    /// The end of a batch, now durable: push what was published out.
    fn flush(&mut self) {}
    /// The trading day ended; `engine` holds its final state (before the
    /// next day's first event).
    fn day_ended(&mut self, _engine: &Engine) {}
    /// A trading day (`YYYYMMDD`) starts: what follows belongs to it.
    fn new_day(&mut self, _date: u32) {}
    /// Replay only (recovery and `carbonx replay`): journal record `seq`,
    /// stamped `timestamp`, is about to be applied; its events follow (none
    /// when it resends a taken token). Lets the audit pair each command
    /// with its result.
    fn replaying(&mut self, _seq: u64, _timestamp: Timestamp, _command: &Command) {}
    /// The events that follow come from commands this node sequenced
    /// (`true`: a single node, a cluster's leader) or from entries a
    /// cluster leader sequenced (`false`). Said between two batches, only
    /// when it changes. The feed sends MoldUDP64 for its own only.
    fn sequenced_here(&mut self, _own: bool) {}
    /// Event batches waiting in the (order-entry, market-data) queues.
    fn queue_depths(&self) -> (usize, usize) {
        (0, 0)
    }
}

/// A request from the operator (the admin endpoint) to the engine thread.
pub enum OperatorRequest {
    /// Journal and apply a command like any other; the reply carries its
    /// events once they are durable and published.
    Command(Command, tokio::sync::oneshot::Sender<Vec<Event>>),
    /// Read the engine between two batches: no state change, not journaled.
    Inspect(Box<dyn FnOnce(&Engine) + Send>),
    /// Write an on-demand snapshot between two batches; the answer is its
    /// path or why not.
    Snapshot(tokio::sync::oneshot::Sender<Result<PathBuf, SnapshotError>>),
}

/// An operator command of the batch being formed: its index in the batch
/// and where its events go.
type PendingReply = (usize, tokio::sync::oneshot::Sender<Vec<Event>>);

/// A failure that stops the exchange: nothing can be acknowledged any more.
#[derive(Debug, thiserror::Error)]
pub enum SequencerError {
    /// The journal could not be written or synced.
    #[error("journal {path}: {source}")]
    Journal {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Recovery found a bad journal.
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    /// The journal file a snapshot continues with is missing.
    #[error("{path}: missing, but the snapshot it would start from continues with it")]
    MissingJournal {
        /// The file.
        path: PathBuf,
    },
    /// Another stage threw the fail-stop switch: no batch is taken after it.
    #[error("stopped: {reason}")]
    FailStop {
        /// The first failure, as the stage that threw the switch gave it.
        reason: String,
    },
    /// A committed Raft log entry whose records do not decode.
    #[error("raft log entry {index}: {reason}")]
    BadEntry {
        /// The entry's log index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// A journal file's sequence numbers have a gap.
    #[error("{path}: record {found} follows {expected_before}: the journal has a gap")]
    Gap {
        /// The file.
        path: PathBuf,
        /// The sequence number found.
        found: u64,
        /// The one it should have followed.
        expected_before: u64,
    },
}

/// Opens the journal of a trading day (`dir`, `YYYYMMDD`, mode).
pub type JournalOpener = Box<dyn FnMut(&Path, u32, FsyncMode) -> std::io::Result<JournalWriter> + Send>;

/// The engine thread's state.
pub struct Sequencer<P: Publisher> {
    engine: Engine,
    publisher: P,
    data_dir: Option<PathBuf>,
    fsync: FsyncMode,
    journal: Option<JournalWriter>,
    open_journal: JournalOpener,
    batching: Batching,
    taken: TakenTokens,
    /// Room the day's taken set starts with when a new day begins: zero
    /// (start small, grow) except while a replay knows the day's journal.
    taken_room: usize,
    next_seq: u64,
    last_ts: u64,
    events: Vec<Event>,
    replies: Vec<PendingReply>,
    metrics: Option<SequencerMetrics>,
    /// The permissions of the snapshots it writes.
    file_modes: FileModes,
    /// Recovery from a snapshot taken before a roll: the roll's old-day
    /// events were published before the crash (and that day's files
    /// written), so they are not published again; the new day's are.
    mute_until_new_day: bool,
    /// Thrown by any stage on a storage failure or a panic; thrown by this
    /// one on a journal failure.
    failstop: Arc<FailStop>,
    /// The test-only panic hook (`CARBONX_TEST_PANIC=sequencer:N`: the
    /// Nth batch panics after it is applied, before its sync is finished).
    panic_hook: PanicHook,
    /// In a cluster: Raft instead of the journal files (`replica.rs`).
    replica: Option<Replica>,
}

/// Where a replay starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayStart {
    /// The snapshot file restored, if any.
    pub snapshot: Option<PathBuf>,
    /// The first journal file replayed (`YYYYMMDD`) and the first record in it.
    pub from: Option<(u32, u64)>,
}

impl<P: Publisher> Sequencer<P> {
    /// A sequencer over `engine`; with a data directory it journals there.
    pub fn new(engine: Engine, publisher: P, data_dir: Option<PathBuf>, fsync: FsyncMode) -> Sequencer<P> {
        Sequencer {
            engine,
            publisher,
            data_dir,
            fsync,
            journal: None,
            open_journal: Box::new(|dir, date, mode| JournalWriter::open(dir, date, mode, FileModes::default())),
            batching: Batching::default(),
            taken: TakenTokens::new(),
            taken_room: 0,
            next_seq: 1,
            last_ts: 0,
            events: Vec::with_capacity(1 << 16),
            replies: Vec::new(),
            metrics: None,
            mute_until_new_day: false,
            file_modes: FileModes::default(),
            failstop: FailStop::new(),
            panic_hook: PanicHook::default(),
            replica: None,
        }
    }

    /// Shares the server's fail-stop switch, and arms the stage-panic hook
    /// when the environment asks for it (tests only).
    pub fn with_failstop(mut self, failstop: Arc<FailStop>) -> Sequencer<P> {
        self.failstop = failstop;
        self.panic_hook = PanicHook::for_stage("sequencer");
        self
    }

    /// Panics on the `n`th batch, after applying it and before its sync is
    /// finished (the in-process fail-stop test's hook).
    pub fn with_panic_after(mut self, n: u64) -> Sequencer<P> {
        self.panic_hook = PanicHook::after("sequencer", n);
        self
    }

    /// The fail-stop switch it shares.
    pub fn failstop(&self) -> &Arc<FailStop> {
        &self.failstop
    }

    /// Creates the journal files and snapshots with `modes` (default: owner only).
    pub fn with_file_modes(mut self, modes: FileModes) -> Sequencer<P> {
        self.file_modes = modes;
        self.open_journal = Box::new(move |dir, date, mode| JournalWriter::open(dir, date, mode, modes));
        self
    }

    /// Sets the group-commit limits.
    pub fn with_batching(mut self, batching: Batching) -> Sequencer<P> {
        self.batching = batching;
        self
    }

    /// Records batch sizes, `fdatasync` and apply times, queue depths.
    pub fn with_metrics(mut self, metrics: SequencerMetrics) -> Sequencer<P> {
        self.metrics = Some(metrics);
        self
    }

    /// Journals through `opener` instead of files (the power-cut test's simulated disk).
    pub fn with_journal_opener(mut self, opener: JournalOpener) -> Sequencer<P> {
        self.open_journal = opener;
        self
    }

    /// The engine (for queries after recovery and in tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, dropping the publisher (which closes the stages' input).
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// The publisher.
    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// The publisher, to change (an audit seeds its book from the restored engine).
    pub fn publisher_mut(&mut self) -> &mut P {
        &mut self.publisher
    }

    /// Applies one command (unless it resends a taken token) and publishes its events.
    fn apply_one(&mut self, command: &Command, ts: Timestamp) {
        self.events.clear();
        if self.resends_taken_token(command) {
            return;
        }
        let day_before = self.engine.session_day();
        self.engine.apply(command, ts, &mut self.events);
        for event in &self.events {
            match event {
                Event::Accepted(o) | Event::Replaced { order: o, .. } => {
                    self.taken.insert(o.user, &o.token);
                }
                _ => {}
            }
        }
        match self.engine.session_day() {
            Some(day) if Some(day) != day_before => {
                let date = carbonx_engine::calendar::yyyymmdd_from_days(day);
                // Tokens are unique per day: whatever changed the day.
                self.taken.clear_with_room(self.taken_room);
                // A new day starts with its instruments' references: what
                // comes before them (the old day's close) belongs to the old day.
                let split = self.events.iter().position(|e| matches!(e, Event::Reference(_))).unwrap_or(0);
                if !std::mem::take(&mut self.mute_until_new_day) {
                    self.publisher.publish(ts, &self.events[..split]);
                    if day_before.is_some() {
                        self.publisher.day_ended(&self.engine);
                    }
                }
                self.publisher.new_day(date);
                self.publisher.publish(ts, &self.events[split..]);
            }
            _ if self.mute_until_new_day => {}
            _ => self.publisher.publish(ts, &self.events),
        }
    }

    fn resends_taken_token(&self, command: &Command) -> bool {
        new_token(command).is_some_and(|(user, token)| self.taken.contains(user, token))
    }

    /// Starts loading what the command `PREFETCH_AHEAD` places after
    /// `commands[i]` will look up: its token's slot in the taken set (see
    /// [`TakenTokens::prefetch`]) and in the engine's order index.
    fn prefetch_ahead<'a>(&self, commands: impl Fn(usize) -> Option<&'a Command>, i: usize) {
        if let Some((user, token)) = commands(i + PREFETCH_AHEAD).and_then(new_token) {
            self.taken.prefetch(user, token);
            self.engine.prefetch_token(user, token);
        }
    }
}

/// The new token a command would take, if it takes one; for the gateway's
/// reject of such a message, the token the message named.
fn new_token(command: &Command) -> Option<(UserId, &Token)> {
    match command {
        Command::NewOrder(o) => Some((o.user, &o.token)),
        Command::Replace(r) => Some((r.user, &r.new_token)),
        Command::NewBlock(b) => Some((b.user, &b.token)),
        Command::Pick(p) => Some((p.user, &p.token)),
        Command::AuctionBid(b) => Some((b.user, &b.token)),
        Command::Reject(r) if r.names_new_token => Some((r.user, &r.token)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::journal_file::{self, TornTail};
    use carbonx_engine::{EngineConfig, Side};
    use recovery::REPLAY_BATCH;

    /// Records every event it is given.
    #[derive(Default)]
    struct Recorder(Vec<Event>);

    impl Publisher for Recorder {
        fn publish(&mut self, _now: Timestamp, events: &[Event]) {
            self.0.extend_from_slice(events);
        }
    }

    /// A clock that starts at 2026-11-24 10:00 Shanghai and ticks a millisecond a reading.
    fn clock() -> ManualClock {
        ManualClock::new(Timestamp::from_nanos(1_795_485_600 * 1_000_000_000), Duration::from_millis(1))
    }

    fn order(token: &str, account: u32, side: Side, qty: u32) -> Command {
        Command::demo_order(token, account, side, qty, 7_463)
    }

    fn sequencer(dir: &Path) -> Sequencer<Recorder> {
        let engine = Engine::new(EngineConfig::demo()).unwrap();
        Sequencer::new(engine, Recorder::default(), Some(dir.to_path_buf()), FsyncMode::Batch)
    }

    #[test]
    fn restart_replays_the_journal_to_the_same_state_and_events() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut live = sequencer(&dir);
        let batch = [order("s1", 1, Side::Sell, 10), order("b1", 2, Side::Buy, 4), order("b2", 3, Side::Buy, 3)];
        live.process(&batch, &clock()).unwrap();
        live.process(&[order("s2", 4, Side::Sell, 1)], &clock()).unwrap();
        let mut restarted = sequencer(&dir);
        assert_eq!(restarted.recover().unwrap(), 4);
        assert_eq!(restarted.engine().state_hash(), live.engine().state_hash());
        assert_eq!(restarted.publisher().0, live.publisher().0);
        assert!(live.publisher().0.iter().any(|e| matches!(e, Event::Executed(_))));
    }

    #[test]
    fn a_taken_token_is_ignored_without_reply_even_after_the_order_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut seq = sequencer(&dir);
        seq.process(&[order("s1", 1, Side::Sell, 10), order("b1", 2, Side::Buy, 10)], &clock()).unwrap();
        let before = seq.publisher().0.len();
        // b1 filled completely and is gone from the book; its resend must not trade again.
        seq.process(&[order("b1", 2, Side::Buy, 10)], &clock()).unwrap();
        assert_eq!(seq.publisher().0.len(), before, "a resend produced events");
        // A rejected order's token may be used again.
        let mut bad = order("b9", 2, Side::Buy, 0);
        seq.process(std::slice::from_ref(&bad), &clock()).unwrap();
        if let Command::NewOrder(o) = &mut bad {
            o.qty = carbonx_engine::Qty::new(5);
        }
        seq.process(&[bad], &clock()).unwrap();
        assert!(matches!(seq.publisher().0.last(), Some(Event::Accepted(_)) | Some(Event::BookAdd { .. })));
    }

    #[test]
    fn a_roll_starts_the_next_days_journal_and_replays_across_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut live = sequencer(&dir);
        live.process(&[order("s1", 1, Side::Sell, 10), order("b1", 2, Side::Buy, 4), Command::Roll], &clock()).unwrap();
        live.process(&[order("s1", 1, Side::Sell, 10)], &clock()).unwrap();
        let files = journal_file::journal_files(&dir).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        let mut restarted = sequencer(&dir);
        assert_eq!(restarted.recover().unwrap(), 4);
        assert_eq!(restarted.engine().state_hash(), live.engine().state_hash());
    }

    #[test]
    fn a_replay_from_a_snapshot_deep_in_a_long_journal_matches_the_live_run() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut live = sequencer(&dir);
        let orders: Vec<Command> = (0..1_000u32)
            .map(|i| order(&format!("o{i}"), i % 40, if i % 3 == 0 { Side::Sell } else { Side::Buy }, 1 + i % 7))
            .collect();
        let (before, after) = orders.split_at(650);
        for chunk in before.chunks(100) {
            live.process(chunk, &clock()).unwrap();
        }
        // The snapshot names a record in the journal's third replay batch.
        let snapshot = live.snapshot_now().unwrap();
        let published_before = live.publisher().0.len();
        for chunk in after.chunks(100) {
            live.process(chunk, &clock()).unwrap();
        }
        let mut restarted = sequencer(&dir);
        let start = restarted.try_restore(&snapshot, &dir, DayFiles::NotNeeded).unwrap();
        assert!(start.from.is_some_and(|(_, seq)| seq as usize > 2 * REPLAY_BATCH), "{start:?}");
        assert_eq!(restarted.replay_from(TornTail::Keep, &start).unwrap(), 350);
        assert_eq!(restarted.engine().state_hash(), live.engine().state_hash());
        assert_eq!(restarted.publisher().0, live.publisher().0[published_before..]);
        // Tokens taken before the snapshot and in the replayed part stay taken.
        let published = restarted.publisher().0.len();
        restarted.process(&[orders[3].clone(), orders[900].clone()], &clock()).unwrap();
        assert_eq!(restarted.publisher().0.len(), published, "a resend produced events");
    }
}
