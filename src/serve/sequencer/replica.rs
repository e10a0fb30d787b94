//! The sequencer as one replica of a Raft group (`[cluster]`).
//!
//! The Raft log is the journal. The leader's sequencer stamps a batch as
//! always, then proposes its records instead of writing them to a file,
//! and goes on stamping the next batches while earlier ones replicate (up
//! to [`IN_FLIGHT_MAX`] proposals in flight). Every node, the leader
//! included, applies only what Raft hands over as committed (durable on a
//! majority), in log order, through the same `apply_one`: the engine, the
//! taken tokens, the users' streams and the feed come out the same on
//! every node, byte for byte, and nothing leaves before it is committed.
//!
//! The leader knows its own entries when they come back: they hold exactly
//! the bytes of its oldest proposal in flight; it answers their operator
//! requests and its feed sends their market data. An entry that is not
//! its oldest proposal (another leader's) means its proposals in flight
//! were lost with its leadership: they are undone (their sequence numbers
//! and timestamps taken back, their operator requests dropped) before the
//! entry is applied. So are proposals still in flight when the node leads
//! again: everything committed before its new term has been applied by
//! then, so they never will be.
//!
//! A roll is proposed alone in its entry, so the start-of-day snapshot
//! taken before it is the state after the entry before. Once a node has
//! applied a roll it hands that snapshot to Raft ([`Replication::day_started`]):
//! Raft's snapshots are the day's start plus the day's log, and the log is
//! purged up to the roll. A node sent a snapshot it lacks the start of
//! starts over from the day's start ([`Committed::DayStart`]).

use super::live::take_seq;
use super::{PendingReply, Publisher, Sequencer, SequencerError};
use crate::cluster::DayStart;
use crate::cluster::log_store::LogStore;
use crate::cluster::state_machine::{Applied, Committed, StateMachine};
use crate::serve::snapshot_file;
use carbonx_engine::journal::{self, Record};
use carbonx_engine::{Command, Timestamp};
use crossbeam::channel::{Receiver, RecvTimeoutError};
use openraft::EntryPayload;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Proposals a leader keeps in flight at most; one more waits for the
/// oldest to be applied.
pub const IN_FLIGHT_MAX: usize = 8;
/// How often a wait for a proposal looks at the leadership and the
/// fail-stop switch.
const WAIT_TICK: Duration = Duration::from_millis(20);

/// The sequencer's way into Raft.
pub trait Replication: Send {
    /// Proposes one stamped batch (encoded journal records), in order
    /// after the previous proposals, without waiting for it: it comes back
    /// through the committed stream, or never (the node lost the lead).
    fn propose(&mut self, records: Vec<u8>);
    /// True while this node leads and has applied everything committed
    /// before its term: only then may it stamp new commands.
    fn leading(&self) -> bool;
    /// The engine applied the roll of entry `day.roll_index`: Raft's
    /// snapshots start from `day` now, and the log before it may go.
    fn day_started(&mut self, day: DayStart);
}

/// A proposal on its way through Raft.
struct InFlight {
    /// Its encoded records, to know it when it comes back.
    records: Vec<u8>,
    /// The operator requests among its commands.
    replies: Vec<PendingReply>,
    /// The stamping position before it: (next sequence number, last timestamp).
    before: (u64, u64),
    /// When it was proposed.
    proposed_at: Instant,
}

/// A sequencer's cluster side: where proposals go, where committed entries
/// come from, and how far it has applied.
pub struct Replica {
    replication: Box<dyn Replication>,
    committed: Receiver<Committed>,
    applied: Arc<AtomicU64>,
    in_flight: VecDeque<InFlight>,
    /// Whether it led at the last look ([`Sequencer::note_leadership`]).
    led: bool,
}

impl Replica {
    /// A replica proposing through `replication` and applying what
    /// `committed` hands over; `applied` is the last log index applied
    /// (read by the `/cluster` status page).
    pub fn new(replication: Box<dyn Replication>, committed: Receiver<Committed>, applied: Arc<AtomicU64>) -> Replica {
        Replica { replication, committed, applied, in_flight: VecDeque::new(), led: false }
    }

    fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }
}

impl<P: Publisher> Sequencer<P> {
    /// Runs as a replica of a Raft group (see the module doc).
    pub fn with_replica(mut self, replica: Replica) -> Sequencer<P> {
        self.replica = Some(replica);
        self
    }

    /// True when this sequencer may stamp commands: a single node always,
    /// a replica while it leads.
    pub(super) fn leading(&self) -> bool {
        self.replica.as_ref().is_none_or(|r| r.replication.leading())
    }

    /// The committed entries' queue (a single node has none: never ready).
    pub(super) fn committed_queue(&self) -> Receiver<Committed> {
        self.replica.as_ref().map_or_else(crossbeam::channel::never, |r| r.committed.clone())
    }

    /// Applies every committed entry already handed over.
    ///
    /// # Errors
    /// A committed batch that does not continue the stream (a bug or a
    /// corrupt log): the node must stop rather than diverge.
    pub(super) fn drain_committed(&mut self) -> Result<(), SequencerError> {
        let queue = self.committed_queue();
        while let Ok(entry) = queue.try_recv() {
            self.apply_committed(&entry)?;
        }
        Ok(())
    }

    /// Applies what Raft handed over: a committed entry, or a day's start
    /// to start over from.
    ///
    /// # Errors
    /// An entry's records do not decode or do not continue the sequence,
    /// or the day's start does not read.
    pub(super) fn apply_committed(&mut self, committed: &Committed) -> Result<(), SequencerError> {
        match committed {
            Committed::Entry(entry) => self.apply_committed_entry(entry),
            Committed::DayStart(day) => self.start_over(day),
        }
    }

    /// Takes the state of `day`'s start, as of the entry before its roll
    /// (what is in flight is undone: it was proposed on another state).
    ///
    /// # Errors
    /// The snapshot file does not read, or the engine refuses its state.
    fn start_over(&mut self, day: &DayStart) -> Result<(), SequencerError> {
        let bad = |reason: String| SequencerError::BadEntry { index: day.roll_index, reason };
        let file = snapshot_file::decode(&day.file, &raft_entry(day.roll_index))
            .map_err(|e| bad(format!("the day's start: {e}")))?;
        self.undo_in_flight();
        self.restore_state(&file).map_err(|e| bad(format!("the day's start: {e}")))?;
        self.mark_applied(day.roll_index.saturating_sub(1));
        tracing::info!(roll = day.roll_index, date = file.journal_date, "started over from the day's start");
        Ok(())
    }

    /// Applies one committed entry unless it was applied already, and
    /// publishes its events: this leader's own (its oldest proposal), or
    /// another leader's, after undoing this one's proposals in flight.
    ///
    /// # Errors
    /// Its records do not decode or do not continue the sequence.
    fn apply_committed_entry(&mut self, entry: &Applied) -> Result<(), SequencerError> {
        let Some(replica) = &mut self.replica else { return Ok(()) };
        if entry.index <= replica.applied() {
            return Ok(());
        }
        if let Some(batch) = &entry.batch {
            let own = replica.in_flight.front().is_some_and(|f| f.records == batch.records);
            let origin = if own {
                let oldest = replica.in_flight.pop_front();
                if let (Some(m), Some(oldest)) = (&self.metrics, &oldest) {
                    m.commit_seconds.observe(oldest.proposed_at.elapsed().as_secs_f64());
                }
                Origin::Own(oldest.map(|f| f.replies).unwrap_or_default())
            } else {
                self.undo_in_flight();
                Origin::Other
            };
            self.apply_entry(entry.index, &batch.records, origin)?;
        }
        self.mark_applied(entry.index);
        Ok(())
    }

    /// Takes back every proposal in flight: they will never be applied
    /// (another leader's entry took their place, or a new term began).
    fn undo_in_flight(&mut self) {
        let Some(replica) = &mut self.replica else { return };
        if let Some(oldest) = replica.in_flight.front() {
            (self.next_seq, self.last_ts) = oldest.before;
            tracing::warn!(proposals = replica.in_flight.len(), "proposals in flight lost with the leadership");
            replica.in_flight.clear(); // their operator requests see an error
        }
    }

    /// Applies the records of log entry `index` and publishes their events;
    /// how many there were. Its own entries answer their operator requests
    /// and are sent as market data; another leader's continue the sequence.
    fn apply_entry(&mut self, index: u64, bytes: &[u8], origin: Origin) -> Result<u64, SequencerError> {
        let records = decode_batch(bytes, index)?;
        let mut replies = match origin {
            Origin::Own(replies) => {
                self.publisher.sequenced_here(true);
                Some(replies.into_iter().peekable())
            }
            Origin::Other => {
                self.publisher.sequenced_here(false);
                None
            }
        };
        let mut day_start = None;
        let started = Instant::now();
        for (i, record) in records.iter().enumerate() {
            self.prefetch_ahead(|i| records.get(i).map(|r| &r.command), i);
            if replies.is_none() {
                self.check_sequence(|| raft_entry(index), record)?;
            }
            if record.command == Command::Roll {
                let date = self.engine.session_date().unwrap_or_default();
                day_start = self.snapshot_before_roll(date, record.seq.get(), record.timestamp);
            }
            self.apply_one(&record.command, record.timestamp);
            if let Some((_, reply)) = replies.as_mut().and_then(|r| r.next_if(|(at, _)| *at == i)) {
                let _ = reply.send(self.events.clone()); // the operator may have given up waiting
            }
        }
        if let Some(m) = &self.metrics {
            m.applied(records.len(), started.elapsed());
        }
        self.publisher.flush();
        // Raft snapshots start from the day's start (an offline replay has no Raft).
        if let (Some(file), Some(replica)) = (day_start.filter(|_| records.len() == 1), &mut self.replica) {
            replica.replication.day_started(DayStart { roll_index: index, file });
        }
        Ok(records.len() as u64)
    }

    /// A leader's batch: stamped, proposed, kept in flight; a roll as an
    /// entry of its own (see the module doc). A proposal with a clock
    /// command or a roll (which change what is due next) is waited for, and
    /// so is the oldest one when [`IN_FLIGHT_MAX`] are out.
    ///
    /// # Errors
    /// A committed entry that does not continue the stream, or a fail-stop.
    pub(super) fn propose_batch(&mut self, batch: &[Command], now: Timestamp) -> Result<(), SequencerError> {
        let mut replies = std::mem::take(&mut self.replies);
        for (start, part) in rolls_apart(batch) {
            let (theirs, rest): (Vec<PendingReply>, Vec<PendingReply>) =
                replies.into_iter().partition(|(at, _)| *at < start + part.len());
            replies = rest;
            let theirs = theirs.into_iter().map(|(at, reply)| (at - start, reply)).collect();
            self.propose(part, theirs, now)?;
        }
        Ok(())
    }

    /// Stamps and proposes `commands` as one entry, `replies` their
    /// operator requests (by index among them).
    fn propose(
        &mut self,
        commands: &[Command],
        replies: Vec<PendingReply>,
        now: Timestamp,
    ) -> Result<(), SequencerError> {
        let before = (self.next_seq, self.last_ts);
        let mut records = Vec::with_capacity(commands.len() * 64);
        for command in commands {
            let timestamp = self.stamp(now);
            let seq = take_seq(&mut self.next_seq, command);
            journal::encode(&Record { seq, timestamp, command: command.clone() }, &mut records);
        }
        let Some(replica) = &mut self.replica else { return Ok(()) };
        replica.replication.propose(records.clone());
        replica.in_flight.push_back(InFlight { records, replies, before, proposed_at: Instant::now() });
        if let Some(m) = &self.metrics {
            m.batch_commands.observe(commands.len() as f64);
        }
        let changes_what_is_due = commands.iter().any(|c| matches!(c, Command::Roll | Command::Clock));
        self.wait_in_flight(if changes_what_is_due { 0 } else { IN_FLIGHT_MAX - 1 })
    }

    /// Applies committed entries until at most `left` proposals are in
    /// flight, or the node stops leading, or a stage threw the fail-stop
    /// switch (a partitioned leader waits here: nothing it proposed can be
    /// committed, nothing is answered).
    ///
    /// # Errors
    /// A committed entry that does not continue the stream, or a fail-stop.
    pub(super) fn wait_in_flight(&mut self, left: usize) -> Result<(), SequencerError> {
        let queue = self.committed_queue();
        while self.replica.as_ref().is_some_and(|r| r.in_flight.len() > left) && self.leading() {
            self.check_failstop()?;
            match queue.recv_timeout(WAIT_TICK) {
                Ok(entry) => self.apply_committed(&entry)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        Ok(())
    }

    /// Called between batches: a node that leads again undoes what is
    /// still in flight from before (everything committed before its term
    /// was applied before it could lead).
    pub(super) fn note_leadership(&mut self) {
        let leads = self.leading();
        let Some(replica) = &mut self.replica else { return };
        let led = std::mem::replace(&mut replica.led, leads);
        if leads && !led {
            self.undo_in_flight();
        }
    }

    /// Offline replay of a cluster node's data directory (`carbonx
    /// replay`): Raft's snapshot in `<data>/raft` (the day's start and the
    /// day's batches), then every committed entry of the log after it, in
    /// order; the number of records applied. An uncommitted tail (a deposed
    /// leader's last proposals) is left out: Raft may still drop it.
    ///
    /// # Errors
    /// The log or snapshot cannot be read, or the records do not continue
    /// the stream.
    pub fn replay_raft_log(&mut self, raft_dir: &Path) -> Result<u64, SequencerError> {
        let unreadable = |source| SequencerError::Journal { path: raft_dir.to_path_buf(), source };
        let (entries, committed) = LogStore::read_all(raft_dir).map_err(unreadable)?;
        let committed = committed.map_or(0, |id| id.index);
        let (mut applied, mut count) = (0, 0);
        if let Some((last, snapshot)) = StateMachine::read_snapshot(raft_dir).map_err(unreadable)? {
            if let Some(day) = &snapshot.day_start {
                self.start_over(day)?;
            }
            for (index, _, batch) in &snapshot.entries {
                count += self.apply_entry(*index, &batch.records, Origin::Other)?;
            }
            applied = last;
        }
        let after_snapshot = entries.iter().skip_while(|e| e.log_id.index <= applied);
        for entry in after_snapshot.take_while(|e| e.log_id.index <= committed) {
            if let EntryPayload::Normal(batch) = &entry.payload {
                count += self.apply_entry(entry.log_id.index, &batch.records, Origin::Other)?;
            }
        }
        Ok(count)
    }

    pub(super) fn mark_applied(&self, index: u64) {
        if let Some(replica) = &self.replica {
            replica.applied.store(index, Ordering::Release);
        }
    }

    /// True when the sequencer runs as a replica.
    pub(super) fn is_replica(&self) -> bool {
        self.replica.is_some()
    }
}

/// Whose entry is being applied.
enum Origin {
    /// This leader's, with the operator requests to answer.
    Own(Vec<PendingReply>),
    /// Another leader's (or any entry on a follower, or offline).
    Other,
}

/// `batch` in the parts proposed as entries, each with where it starts:
/// each roll alone, the commands between rolls together.
fn rolls_apart(batch: &[Command]) -> Vec<(usize, &[Command])> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, command) in batch.iter().enumerate() {
        if *command == Command::Roll {
            if start < i {
                parts.push((start, &batch[start..i]));
            }
            parts.push((i, &batch[i..=i]));
            start = i + 1;
        }
    }
    if start < batch.len() {
        parts.push((start, &batch[start..]));
    }
    parts
}

/// The records of a committed batch, in order.
fn decode_batch(bytes: &[u8], index: u64) -> Result<Vec<Record>, SequencerError> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match journal::decode(&bytes[at..]) {
            Ok(Some((record, used))) => {
                records.push(record);
                at += used;
            }
            Ok(None) => return Err(SequencerError::BadEntry { index, reason: "a record is cut short".into() }),
            Err(err) => return Err(SequencerError::BadEntry { index, reason: err.to_string() }),
        }
    }
    Ok(records)
}

/// How a Raft log entry is named in an error.
fn raft_entry(index: u64) -> PathBuf {
    PathBuf::from(format!("raft log entry {index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_roll_is_proposed_alone_and_the_rest_keeps_its_order() {
        let halt = Command::Clock;
        let batch =
            [halt.clone(), halt.clone(), Command::Roll, halt.clone(), Command::Roll, Command::Roll, halt.clone()];
        let parts: Vec<(usize, usize)> = rolls_apart(&batch).iter().map(|(start, part)| (*start, part.len())).collect();
        assert_eq!(parts, [(0, 2), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1)]);
        for (start, part) in rolls_apart(&batch) {
            assert_eq!(part, &batch[start..start + part.len()]);
            assert!(part.len() == 1 || !part.contains(&Command::Roll), "a roll shares its entry");
        }
        assert!(rolls_apart(&[]).is_empty());
        assert_eq!(rolls_apart(std::slice::from_ref(&halt)).len(), 1);
    }
}
