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

use crate::serve::journal_file::{self, FsyncMode, JournalWriter, RecoveryError};
use crate::serve::metrics::SequencerMetrics;
use crate::serve::snapshot_file::{self, SnapshotFile};
use crate::serve::taken::TakenTokens;
use carbonx_engine::journal::Record;
use carbonx_engine::{Command, Engine, Event, Seq, Timestamp, Token, UserId};
use crossbeam::channel::{Receiver, Sender};
use std::path::{Path, PathBuf};
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
/// Records decoded ahead of the engine in a replay: enough to look
/// [`PREFETCH_AHEAD`] commands ahead, few enough to stay in the cache.
const REPLAY_BATCH: usize = 64;
/// The smallest batch whose `fdatasync` runs while it is applied: a smaller
/// one applies in less time than a thread hand-off takes, and waits alone.
const OVERLAP_MIN: usize = 256;
/// Batches a replay's reader thread may have decoded ahead of the engine.
const READ_AHEAD: usize = 16;
/// How long the sequencer waits for input before it checks the clock.
const IDLE_TICK: Duration = Duration::from_millis(20);

/// Where the sequencer's output goes: the gateway's sessions and the feed.
pub trait Publisher {
    /// The events of one command, applied at `now`, in order. They must
    /// only be held: a batch's journal sync may still be running (see
    /// `may_sync_while_applying`), so nothing may leave the process before
    /// [`Publisher::flush`] (or a day's start or end).
    fn publish(&mut self, now: Timestamp, events: &[Event]);
    /// The end of a batch, now durable: push what was published out.
    fn flush(&mut self) {}
    /// The trading day ended; `engine` holds its final state (before the
    /// next day's first event).
    fn day_ended(&mut self, _engine: &Engine) {}
    /// A trading day (`YYYYMMDD`) starts: what follows belongs to it.
    fn new_day(&mut self, _date: u32) {}
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
    Snapshot(tokio::sync::oneshot::Sender<Result<PathBuf, String>>),
}

/// An operator command of the batch being formed: its index in the batch
/// and where its events go.
type PendingReply = (usize, tokio::sync::oneshot::Sender<Vec<Event>>);

/// A source of wall-clock time for timestamps (the engine has none).
pub trait Clock {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Timestamp::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

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
    /// Recovery from a snapshot taken before a roll: the roll's old-day
    /// events were published before the crash (and that day's files
    /// written), so they are not published again; the new day's are.
    mute_until_new_day: bool,
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
            open_journal: Box::new(JournalWriter::open),
            batching: Batching::default(),
            taken: TakenTokens::new(),
            taken_room: 0,
            next_seq: 1,
            last_ts: 0,
            events: Vec::with_capacity(1 << 16),
            replies: Vec::new(),
            metrics: None,
            mute_until_new_day: false,
        }
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

    /// Replays every journal file in the data directory, oldest first,
    /// publishing as live (so that the sessions' streams are rebuilt).
    /// Returns the number of records replayed.
    ///
    /// # Errors
    /// A corrupt journal or a sequence gap.
    pub fn recover(&mut self) -> Result<u64, SequencerError> {
        let start = self.restore_latest_snapshot(true);
        self.replay_from(true, &start)
    }

    /// Restores the newest start-of-day snapshot that reads, restores and
    /// (with `need_day_files`) whose day's end-of-day files were written;
    /// an unusable one is logged and the next older one tried. Without any,
    /// the replay starts from the first journal file.
    pub fn restore_latest_snapshot(&mut self, need_day_files: bool) -> ReplayStart {
        let none = ReplayStart { snapshot: None, from: None };
        let Some(dir) = self.data_dir.clone() else { return none };
        let files = snapshot_file::roll_snapshots(&dir).unwrap_or_else(|err| {
            tracing::warn!(%err, "cannot list the snapshots; replaying every journal file");
            Vec::new()
        });
        for path in files {
            match self.try_restore(&path, &dir, need_day_files) {
                Ok(start) => return start,
                Err(reason) => tracing::warn!(file = %path.display(), %reason, "snapshot not used"),
            }
        }
        none
    }

    /// Restores `path` if it can be used; the replay's start.
    pub fn try_restore(&mut self, path: &Path, dir: &Path, need_day_files: bool) -> Result<ReplayStart, String> {
        let file = snapshot_file::read(path).map_err(|e| e.to_string())?;
        let statistics = crate::serve::eod::statistics_path(dir, file.journal_date);
        if need_day_files && file.kind == snapshot_file::START_OF_DAY && !statistics.exists() {
            return Err(format!("{} missing: that day is replayed to write it", statistics.display()));
        }
        self.engine = Engine::restore(self.engine.config().clone(), &file.engine).map_err(|e| e.to_string())?;
        self.last_ts = file.last_ts;
        self.taken = file.taken.iter().map(|&(user, token)| (UserId::new(user), Token::from_bytes(token))).collect();
        self.mute_until_new_day = file.kind == snapshot_file::START_OF_DAY;
        tracing::info!(file = %path.display(), date = file.journal_date, from = file.next_seq, "restored a snapshot");
        Ok(ReplayStart { snapshot: Some(path.to_path_buf()), from: Some((file.journal_date, file.next_seq)) })
    }

    /// Replays the journal like [`Sequencer::recover`]; without `truncate`
    /// the files are only read (a torn tail is reported, not cut).
    ///
    /// # Errors
    /// A corrupt journal or a sequence gap.
    pub fn replay_journal(&mut self, truncate: bool) -> Result<u64, SequencerError> {
        self.replay_from(truncate, &ReplayStart { snapshot: None, from: None })
    }

    /// Replays the journal from `start` (every file when it names none):
    /// files of earlier days are not even read.
    ///
    /// # Errors
    /// A corrupt journal or a sequence gap.
    pub fn replay_from(&mut self, truncate: bool, start: &ReplayStart) -> Result<u64, SequencerError> {
        let Some(dir) = self.data_dir.clone() else {
            return Ok(0);
        };
        let files = journal_file::journal_files(&dir)
            .map_err(|source| SequencerError::Journal { path: dir.clone(), source })?;
        let (first_date, first_seq) = start.from.unwrap_or((0, 1));
        if start.from.is_some() && !files.iter().any(|p| journal_file::date_of(p) == Some(first_date)) {
            return Err(SequencerError::MissingJournal { path: journal_file::journal_path(&dir, first_date) });
        }
        let mut count = 0;
        for path in files.into_iter().filter(|p| journal_file::date_of(p).is_none_or(|d| d >= first_date)) {
            let skip = journal_file::date_of(&path) == Some(first_date) && start.from.is_some();
            if skip {
                self.next_seq = first_seq;
            }
            count += self.replay_file(&path, if skip { first_seq } else { 0 }, truncate)?;
            self.publisher.flush();
        }
        self.taken_room = 0;
        Ok(count)
    }

    /// Replays one journal file from sequence number `first_seq` on; the
    /// number of records applied.
    ///
    /// A second thread reads, checks and decodes the file a few batches
    /// ahead while this one applies: decoding was a sixth of a replay.
    fn replay_file(&mut self, path: &Path, first_seq: u64, truncate: bool) -> Result<u64, SequencerError> {
        let reader = journal_file::RecordReader::open(path)?;
        self.taken_room = reader.tokens_max()?;
        let (full_tx, full_rx) = crossbeam::channel::bounded(READ_AHEAD);
        let (empty_tx, empty_rx) = crossbeam::channel::bounded(READ_AHEAD + 1);
        for _ in 0..=READ_AHEAD {
            empty_tx.send(Vec::with_capacity(REPLAY_BATCH)).expect("room for every batch");
        }
        std::thread::scope(|scope| {
            let reading = scope.spawn(move || read_ahead(reader, &full_tx, &empty_rx));
            let mut count = 0;
            // On an error, returning drops the channels, which stops the reader.
            for batch in &full_rx {
                let batch = batch?;
                count += self.apply_batch(path, &batch, first_seq)?;
                // The reader may have stopped (end of file): the batch is no longer needed.
                let _ = empty_tx.send(batch);
            }
            let truncated = reading.join().expect("the journal reader does not panic").finish(truncate)?;
            if truncated > 0 {
                tracing::warn!(file = %path.display(), bytes = truncated, truncate, "torn journal tail");
            }
            Ok(count)
        })
    }

    /// Applies the records of `batch` from sequence number `first_seq` on.
    fn apply_batch(&mut self, path: &Path, batch: &[Record], first_seq: u64) -> Result<u64, SequencerError> {
        let first = batch.partition_point(|r| r.seq.get() < first_seq);
        for (i, record) in batch.iter().enumerate().skip(first) {
            self.prefetch_ahead(|i| batch.get(i).map(|r| &r.command), i);
            self.check_sequence(path, record)?;
            self.apply_one(&record.command, record.timestamp);
        }
        Ok((batch.len() - first) as u64)
    }

    fn check_sequence(&mut self, path: &Path, record: &Record) -> Result<(), SequencerError> {
        if record.seq.get() != self.next_seq {
            let (found, expected_before) = (record.seq.get(), self.next_seq - 1);
            return Err(SequencerError::Gap { path: path.to_path_buf(), found, expected_before });
        }
        self.next_seq += 1;
        self.last_ts = self.last_ts.max(record.timestamp.nanos());
        if record.command == Command::Roll {
            self.next_seq = 1;
        }
        Ok(())
    }

    /// Runs until the input queue is closed: batches, journals, applies, publishes.
    ///
    /// # Errors
    /// A journal failure: the exchange must stop rather than acknowledge.
    pub fn run(&mut self, input: &Receiver<Vec<Command>>, clock: &impl Clock) -> Result<(), SequencerError> {
        self.run_with_operator(input, &crossbeam::channel::never(), clock)
    }

    /// [`Sequencer::run`], also serving the operator's requests: their
    /// commands join the next batch, their reads run between batches.
    ///
    /// # Errors
    /// A journal failure: the exchange must stop rather than acknowledge.
    pub fn run_with_operator(
        &mut self,
        input: &Receiver<Vec<Command>>,
        operator: &Receiver<OperatorRequest>,
        clock: &impl Clock,
    ) -> Result<(), SequencerError> {
        let mut batch: Vec<Command> = Vec::with_capacity(self.batching.max_commands);
        loop {
            crossbeam::select! {
                recv(input) -> commands => match commands {
                    Ok(mut commands) => {
                        batch.append(&mut commands);
                        self.fill_batch(input, &mut batch);
                    }
                    Err(_) => return Ok(()),
                },
                recv(operator) -> request => match request {
                    Ok(OperatorRequest::Command(command, reply)) => {
                        self.replies.push((batch.len(), reply));
                        batch.push(command);
                    }
                    Ok(OperatorRequest::Inspect(read)) => read(&self.engine),
                    Ok(OperatorRequest::Snapshot(reply)) => {
                        let _ = reply.send(self.snapshot_now());
                    }
                    Err(_) => {}
                },
                default(IDLE_TICK) => {}
            }
            // A session boundary takes effect before the batch that follows it,
            // even when the queue never runs dry.
            if self.engine.clock_due(clock.now()) {
                batch.insert(0, Command::Clock);
                self.replies.iter_mut().for_each(|(index, _)| *index += 1);
            }
            if !batch.is_empty() {
                self.process(&batch, clock)?;
                self.record_depths(input.len());
                batch.clear();
            }
        }
    }

    fn record_depths(&self, commands_queued: usize) {
        let Some(m) = &self.metrics else { return };
        let (order_entry, market_data) = self.publisher.queue_depths();
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        m.command_queue.set(gauge(commands_queued));
        m.order_entry_queue.set(gauge(order_entry));
        m.feed_queue.set(gauge(market_data));
    }

    /// Group commit: takes what else is queued, up to the batch limits (the
    /// commands that arrived during the previous `fdatasync`), waiting at
    /// most the batch window for more.
    fn fill_batch(&self, input: &Receiver<Vec<Command>>, batch: &mut Vec<Command>) {
        let deadline = std::time::Instant::now() + self.batching.window;
        while batch.len() < self.batching.max_commands {
            let more =
                if self.batching.window.is_zero() { input.try_recv().ok() } else { input.recv_deadline(deadline).ok() };
            let Some(mut more) = more else { break };
            batch.append(&mut more);
        }
    }

    /// Journals, applies and publishes one batch. A roll ends a journal
    /// file, so the batch is cut after each roll.
    ///
    /// # Errors
    /// A journal failure.
    pub fn process(&mut self, batch: &[Command], clock: &impl Clock) -> Result<(), SequencerError> {
        let mut replies = std::mem::take(&mut self.replies).into_iter().peekable();
        let mut index = 0;
        for chunk in batch.split_inclusive(|c| *c == Command::Roll) {
            let now = clock.now();
            let stamped: Vec<(Timestamp, &Command)> = chunk.iter().map(|c| (self.stamp(now), c)).collect();
            let (first_seq, journal_date) = (self.next_seq, self.engine.upcoming_session_date(now));
            let overlap = self.may_sync_while_applying(&stamped);
            self.journal_batch(&stamped, now, overlap)?;
            let mut answered = Vec::new();
            let started = std::time::Instant::now();
            let commands = stamped.len();
            for (offset, &(ts, command)) in stamped.iter().enumerate() {
                self.prefetch_ahead(|i| stamped.get(i).map(|s| s.1), offset);
                if *command == Command::Roll {
                    self.snapshot_before_roll(journal_date, first_seq + offset as u64, ts);
                }
                self.apply_one(command, ts);
                if let Some((_, reply)) = replies.next_if(|(at, _)| *at == index) {
                    answered.push((reply, self.events.clone()));
                }
                index += 1;
            }
            if let Some(m) = &self.metrics {
                m.apply_seconds.observe(started.elapsed().as_secs_f64() / commands as f64);
                m.batch_commands.observe(commands as f64);
                m.commands.inc_by(commands as u64);
            }
            if overlap {
                self.finish_journal_commit()?;
            }
            self.publisher.flush();
            for (reply, events) in answered {
                let _ = reply.send(events); // the operator may have given up waiting
            }
            if chunk.last() == Some(&Command::Roll) {
                self.journal = None; // the next batch opens the new day's file
            }
        }
        Ok(())
    }

    /// The start-of-day snapshot: the state before the roll that ends day
    /// `date`, whose record is `seq` of that day's journal (already durable).
    /// A failure is logged: recovery then replays from an older snapshot.
    fn snapshot_before_roll(&self, date: u32, seq: u64, roll: Timestamp) {
        let Some(dir) = &self.data_dir else { return };
        let file = SnapshotFile {
            journal_date: date,
            next_seq: seq,
            last_ts: roll.nanos().saturating_sub(1),
            kind: snapshot_file::START_OF_DAY.into(),
            taken: Vec::new(),
            engine: self.engine.snapshot(),
        };
        if let Err(err) = snapshot_file::write(&snapshot_file::roll_path(dir, date), &file) {
            tracing::error!(%err, "start-of-day snapshot not written");
        }
    }

    /// The operator's snapshot of the state now, between two batches.
    ///
    /// # Errors
    /// No data directory, or the file could not be written.
    pub fn snapshot_now(&self) -> Result<PathBuf, String> {
        let dir = self.data_dir.as_ref().ok_or("the server runs without a data directory")?;
        let date = self.engine.session_date().ok_or("no trading day has started")?;
        let path = snapshot_file::snapshot_dir(dir).join(format!("now-{date:08}-{}.snap", self.next_seq));
        let file = SnapshotFile {
            journal_date: date,
            next_seq: self.next_seq,
            last_ts: self.last_ts,
            kind: snapshot_file::ON_DEMAND.into(),
            taken: self.taken.iter().map(|(user, token)| (user.get(), *token.bytes())).collect(),
            engine: self.engine.snapshot(),
        };
        snapshot_file::write(&path, &file).map_err(|e| e.to_string())?;
        Ok(path)
    }

    fn stamp(&mut self, now: Timestamp) -> Timestamp {
        self.last_ts = now.nanos().max(self.last_ts + 1);
        Timestamp::from_nanos(self.last_ts)
    }

    /// Whether the batch's `fdatasync` may run while the batch is applied:
    /// in `batch` mode, for a batch big enough to hide some of it, when
    /// nothing in it can send anything out before the batch's end. Events
    /// wait in the publisher until [`Publisher::flush`], which comes after
    /// the sync; but a new day (the first command, or the one after a roll)
    /// hands events over at once, and a roll writes a snapshot: those
    /// batches sync first, as every batch did.
    fn may_sync_while_applying(&self, stamped: &[(Timestamp, &Command)]) -> bool {
        self.fsync == FsyncMode::Batch
            && stamped.len() >= OVERLAP_MIN
            && self.engine.session_day().is_some()
            && stamped.iter().all(|(_, c)| **c != Command::Roll)
    }

    /// Waits for the sync that [`Sequencer::journal_batch`] left running.
    fn finish_journal_commit(&mut self) -> Result<(), SequencerError> {
        let Some(journal) = self.journal.as_mut() else { return Ok(()) };
        let path = journal.path().to_path_buf();
        journal.commit_finish().map_err(|source| SequencerError::Journal { path, source })?;
        record_sync(self.metrics.as_ref(), journal);
        Ok(())
    }

    fn journal_batch(
        &mut self,
        stamped: &[(Timestamp, &Command)],
        now: Timestamp,
        overlap: bool,
    ) -> Result<(), SequencerError> {
        let Some(dir) = self.data_dir.clone() else {
            return Ok(());
        };
        let date = self.engine.upcoming_session_date(now);
        let io_err = |path: PathBuf| move |source| SequencerError::Journal { path, source };
        if self.journal.is_none() {
            self.journal = Some((self.open_journal)(&dir, date, self.fsync).map_err(io_err(dir.clone()))?);
        }
        let journal = self.journal.as_mut().expect("opened above");
        for (ts, command) in stamped {
            let seq = Seq::new(self.next_seq);
            self.next_seq = if **command == Command::Roll { 1 } else { self.next_seq + 1 };
            journal.append(&Record { seq, timestamp: *ts, command: (*command).clone() });
            if journal.mode() == FsyncMode::Always {
                journal.commit().map_err(io_err(journal.path().to_path_buf()))?;
                record_sync(self.metrics.as_ref(), journal);
            }
        }
        if overlap {
            return journal.commit_start().map_err(io_err(journal.path().to_path_buf()));
        }
        journal.commit().map_err(io_err(journal.path().to_path_buf()))?;
        record_sync(self.metrics.as_ref(), journal);
        Ok(())
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

    /// Starts the trading day if no command has yet: the day's references
    /// and phase are journaled and published before any client connects.
    ///
    /// # Errors
    /// A journal failure.
    pub fn start_day(&mut self, clock: &impl Clock) -> Result<(), SequencerError> {
        if self.engine.session_date().is_none() {
            self.process(&[Command::Clock], clock)?;
        }
        Ok(())
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

/// The reader thread of a replay: fills the empty batches it is handed and
/// passes them on (an error ends the file); gives the reader back for its
/// torn-tail check.
fn read_ahead(
    mut reader: journal_file::RecordReader,
    full: &Sender<Result<Vec<Record>, RecoveryError>>,
    empty: &Receiver<Vec<Record>>,
) -> journal_file::RecordReader {
    while let Ok(mut batch) = empty.recv() {
        let more = match read_batch(&mut reader, &mut batch) {
            Ok(true) => full.send(Ok(batch)).is_ok(),
            Ok(false) => false,
            Err(error) => {
                let _ = full.send(Err(error));
                false
            }
        };
        if !more {
            break;
        }
    }
    reader
}

/// Reads the next records of a journal file into `batch` (cleared first);
/// whether there were any.
fn read_batch(reader: &mut journal_file::RecordReader, batch: &mut Vec<Record>) -> Result<bool, RecoveryError> {
    batch.clear();
    while batch.len() < REPLAY_BATCH {
        match reader.next_record()? {
            Some(record) => batch.push(record),
            None => break,
        }
    }
    Ok(!batch.is_empty())
}

/// The new token a command would take, if it takes one.
fn new_token(command: &Command) -> Option<(UserId, &Token)> {
    match command {
        Command::NewOrder(o) => Some((o.user, &o.token)),
        Command::Replace(r) => Some((r.user, &r.new_token)),
        Command::NewBlock(b) => Some((b.user, &b.token)),
        Command::Pick(p) => Some((p.user, &p.token)),
        Command::AuctionBid(b) => Some((b.user, &b.token)),
        _ => None,
    }
}

fn record_sync(metrics: Option<&SequencerMetrics>, journal: &mut JournalWriter) {
    if let (Some(m), Some(took)) = (metrics, journal.take_sync_time()) {
        m.fdatasync_seconds.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonx_engine::{AccountId, EngineConfig, NewOrder, Side, StockCode};
    use std::cell::Cell;

    /// Records every event it is given.
    #[derive(Default)]
    struct Recorder(Vec<Event>);

    impl Publisher for Recorder {
        fn publish(&mut self, _now: Timestamp, events: &[Event]) {
            self.0.extend_from_slice(events);
        }
    }

    /// A clock that starts at 2026-11-24 10:00 Shanghai and ticks a millisecond a reading.
    struct TestClock(Cell<u64>);

    impl Clock for TestClock {
        fn now(&self) -> Timestamp {
            self.0.set(self.0.get() + 1_000_000);
            Timestamp::from_nanos(self.0.get())
        }
    }

    fn clock() -> TestClock {
        TestClock(Cell::new(1_795_485_600 * 1_000_000_000)) // 2026-11-24T02:00:00Z
    }

    fn order(token: &str, account: u32, side: Side, qty: u32) -> Command {
        let (user, stock) = (UserId::new(0), StockCode::from_text("CEA").unwrap());
        let token = Token::from_text(token).unwrap();
        Command::NewOrder(NewOrder::limit(user, token, AccountId::new(account), side, qty, stock, 7_463))
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
        let start = restarted.try_restore(&snapshot, &dir, false).unwrap();
        assert!(start.from.is_some_and(|(_, seq)| seq as usize > 2 * REPLAY_BATCH), "{start:?}");
        assert_eq!(restarted.replay_from(false, &start).unwrap(), 350);
        assert_eq!(restarted.engine().state_hash(), live.engine().state_hash());
        assert_eq!(restarted.publisher().0, live.publisher().0[published_before..]);
        // Tokens taken before the snapshot and in the replayed part stay taken.
        let published = restarted.publisher().0.len();
        restarted.process(&[orders[3].clone(), orders[900].clone()], &clock()).unwrap();
        assert_eq!(restarted.publisher().0.len(), published, "a resend produced events");
    }
}
