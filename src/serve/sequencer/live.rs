//! The live loop: takes the gateway's commands and the operator's
//! requests, forms group commits, journals each batch, applies it and
//! publishes its events once they are durable.

use super::{Clock, OperatorRequest, Publisher, Sequencer, SequencerError};
use crate::serve::journal_file::{FsyncMode, JournalWriter};
use crate::serve::metrics::SequencerMetrics;
use crate::serve::snapshot_file::{self, SnapshotFile, SnapshotFileError};
use carbonx_engine::journal::Record;
use carbonx_engine::{Command, Seq, Timestamp};
use crossbeam::channel::Receiver;
use std::path::PathBuf;
use std::time::Duration;

/// The smallest batch whose `fdatasync` runs while it is applied: a smaller
/// one applies in less time than a thread hand-off takes, and waits alone.
const OVERLAP_MIN: usize = 256;
/// How long the sequencer waits for input before it checks the clock.
const IDLE_TICK: Duration = Duration::from_millis(20);

/// Why the operator's on-demand snapshot was not written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The server keeps no files.
    #[error("the server runs without a data directory")]
    NoDataDirectory,
    /// Before the first day starts there is no journal to continue from.
    #[error("no trading day has started")]
    NoTradingDay,
    /// The file could not be written.
    #[error(transparent)]
    File(#[from] SnapshotFileError),
}

/// When a batch's journal sync runs relative to applying the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncTiming {
    /// Synced before the batch is applied.
    BeforeApplying,
    /// Started before and finished after the batch is applied: its events
    /// wait in the publisher until then.
    WhileApplying,
}

impl<P: Publisher> Sequencer<P> {
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
        let committed = self.committed_queue();
        loop {
            crossbeam::select! {
                recv(committed) -> entry => match entry {
                    Ok(entry) => self.apply_committed(&entry).inspect_err(|err| self.failstop.trip(err))?,
                    Err(_) => return Ok(()), // Raft stopped
                },
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
            self.check_failstop()?;
            // A replica applies what is committed before it stamps anything;
            // one that does not lead drops what was queued: its sessions
            // were closed before any of it was acknowledged.
            self.drain_committed().inspect_err(|err| self.failstop.trip(err))?;
            self.note_leadership();
            if !self.leading() {
                batch.clear();
                self.replies.clear();
                continue;
            }
            // A session boundary (or, in calendar mode, the roll) takes effect
            // before the batch that follows it, even when the queue never runs
            // dry; a cluster's first leader starts the first day.
            self.roll_due_days(clock)?;
            let first_day = self.is_replica() && self.engine.session_date().is_none();
            if first_day || self.engine.clock_due(clock.now()) {
                batch.insert(0, Command::Clock);
                self.replies.iter_mut().for_each(|(index, _)| *index += 1);
            }
            if !batch.is_empty() {
                if let Err(err) = self.process(&batch, clock) {
                    self.failstop.trip(&err);
                    return Err(err);
                }
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
        if self.is_replica() {
            return self.propose_batch(batch, clock.now());
        }
        let mut replies = std::mem::take(&mut self.replies).into_iter().peekable();
        let mut index = 0;
        for chunk in batch.split_inclusive(|c| *c == Command::Roll) {
            let now = clock.now();
            let stamped: Vec<(Timestamp, &Command)> = chunk.iter().map(|c| (self.stamp(now), c)).collect();
            let (first_seq, journal_date) = (self.next_seq, self.engine.upcoming_session_date(now));
            let sync = self.sync_timing(&stamped);
            self.journal_batch(&stamped, now, sync)?;
            self.publisher.sequenced_here(true);
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
                m.applied(commands, started.elapsed());
                m.batch_commands.observe(commands as f64);
            }
            self.panic_hook.tick();
            if sync == SyncTiming::WhileApplying {
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
    /// `date`, whose record is `seq` of that day's journal (already durable),
    /// written to `snapshots/`; its bytes, encoded once for the file and
    /// for Raft (none without a data directory). A failure is logged:
    /// recovery then replays from an older snapshot.
    pub(super) fn snapshot_before_roll(&self, date: u32, seq: u64, roll: Timestamp) -> Option<Vec<u8>> {
        let dir = self.data_dir.as_ref()?;
        let file = SnapshotFile {
            journal_date: date,
            next_seq: seq,
            last_ts: roll.nanos().saturating_sub(1),
            kind: snapshot_file::START_OF_DAY.into(),
            taken: Vec::new(),
            engine: self.engine.snapshot(),
        };
        snapshot_file::write(&snapshot_file::roll_path(dir, date), &file, self.file_modes)
            .inspect_err(|err| tracing::error!(%err, "start-of-day snapshot not written"))
            .ok()
    }

    /// The operator's snapshot of the state now, between two batches.
    ///
    /// # Errors
    /// No data directory, or the file could not be written.
    pub fn snapshot_now(&self) -> Result<PathBuf, SnapshotError> {
        let dir = self.data_dir.as_ref().ok_or(SnapshotError::NoDataDirectory)?;
        let date = self.engine.session_date().ok_or(SnapshotError::NoTradingDay)?;
        let path = snapshot_file::snapshot_dir(dir).join(format!("now-{date:08}-{}.snap", self.next_seq));
        let file = SnapshotFile {
            journal_date: date,
            next_seq: self.next_seq,
            last_ts: self.last_ts,
            kind: snapshot_file::ON_DEMAND.into(),
            taken: self.taken.iter().map(|(user, token)| (user.get(), *token.bytes())).collect(),
            engine: self.engine.snapshot(),
        };
        snapshot_file::write(&path, &file, self.file_modes)?;
        Ok(path)
    }

    /// Stops the batch loop once a stage threw the fail-stop switch.
    ///
    /// # Errors
    /// [`SequencerError::FailStop`] with the first stage's reason.
    pub(super) fn check_failstop(&self) -> Result<(), SequencerError> {
        match self.failstop.reason() {
            Some(reason) => Err(SequencerError::FailStop { reason: reason.to_string() }),
            None if self.failstop.is_tripped() => Err(SequencerError::FailStop { reason: "a stage stopped".into() }),
            None => Ok(()),
        }
    }

    pub(super) fn stamp(&mut self, now: Timestamp) -> Timestamp {
        self.last_ts = now.nanos().max(self.last_ts + 1);
        Timestamp::from_nanos(self.last_ts)
    }

    /// When the batch's `fdatasync` runs: while the batch is applied
    /// in `batch` mode, for a batch big enough to hide some of it, when
    /// nothing in it can send anything out before the batch's end. Events
    /// wait in the publisher until [`Publisher::flush`], which comes after
    /// the sync; but a new day (the first command, or the one after a roll)
    /// hands events over at once, and a roll writes a snapshot: those
    /// batches sync before they are applied. So does a batch with a clock
    /// command, which may end or start a day (the fan-out hands a day's
    /// boundary over at once, taking all before it as durable).
    fn sync_timing(&self, stamped: &[(Timestamp, &Command)]) -> SyncTiming {
        let overlap = self.fsync == FsyncMode::Batch
            && stamped.len() >= OVERLAP_MIN
            && self.engine.session_day().is_some()
            && stamped.iter().all(|(_, c)| !matches!(**c, Command::Roll | Command::Clock));
        if overlap { SyncTiming::WhileApplying } else { SyncTiming::BeforeApplying }
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
        sync: SyncTiming,
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
            let seq = take_seq(&mut self.next_seq, command);
            journal.append(&Record { seq, timestamp: *ts, command: (*command).clone() });
            if journal.mode() == FsyncMode::Always {
                journal.commit().map_err(io_err(journal.path().to_path_buf()))?;
                record_sync(self.metrics.as_ref(), journal);
            }
        }
        if sync == SyncTiming::WhileApplying {
            return journal.commit_start().map_err(io_err(journal.path().to_path_buf()));
        }
        journal.commit().map_err(io_err(journal.path().to_path_buf()))?;
        record_sync(self.metrics.as_ref(), journal);
        Ok(())
    }

    /// Starts the trading day if no command has yet: the day's references
    /// and phase are journaled and published before any client connects.
    /// In calendar mode it first rolls every trading day whose `roll_at`
    /// passed while the server was down, in order.
    ///
    /// # Errors
    /// A journal failure.
    pub fn start_day(&mut self, clock: &impl Clock) -> Result<(), SequencerError> {
        if self.engine.session_date().is_none() {
            self.process(&[Command::Clock], clock)?;
        }
        self.roll_due_days(clock)?;
        Ok(())
    }
}

/// The sequence number of the next record, `command`, moving `next_seq`
/// past it: numbers run from 1 each trading day, so the record after a
/// roll is 1 again. The one rule for journaling, proposing and replaying.
pub(super) fn take_seq(next_seq: &mut u64, command: &Command) -> Seq {
    let seq = Seq::new(*next_seq);
    *next_seq = if *command == Command::Roll { 1 } else { *next_seq + 1 };
    seq
}

fn record_sync(metrics: Option<&SequencerMetrics>, journal: &mut JournalWriter) {
    if let (Some(m), Some(took)) = (metrics, journal.take_sync_time()) {
        m.fdatasync_seconds.observe(took.as_secs_f64());
    }
}
