//! The sequencer as one replica of a Raft group (`[cluster]`).
//!
//! The Raft log is the journal: the leader's sequencer stamps a batch as
//! always, then proposes its records instead of writing them to a file,
//! and applies and publishes the batch only once Raft reports it
//! committed (durable on a majority). Every other node applies the
//! committed entries the state machine hands over, in log order, through
//! the same `apply_one`: the engine, the taken tokens, the users' streams
//! and the feed come out the same on every node, byte for byte.
//!
//! The leader sees its own entries come back from the state machine too;
//! they are skipped by log index (it applied them when its proposal
//! returned). A proposal that fails (the node lost its leadership) is
//! undone: its sequence numbers and timestamps are taken back, nothing of
//! it was applied or sent, and if the new leader commits it anyway it
//! arrives like any other committed entry.

use super::{Publisher, Sequencer, SequencerError};
use crate::cluster::log_store::LogStore;
use crate::cluster::state_machine::Applied;
use carbonx_engine::Command;
use carbonx_engine::journal::{self, Record};
use crossbeam::channel::Receiver;
use openraft::EntryPayload;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The sequencer's way into Raft.
pub trait Replication: Send {
    /// Proposes one stamped batch (encoded journal records) and waits
    /// until it is committed: its log index, or `None` when this node is
    /// not, or no longer, the leader.
    fn propose(&mut self, records: Vec<u8>) -> Option<u64>;
    /// True while this node leads and has applied everything committed
    /// before its term: only then may it stamp new commands.
    fn leading(&self) -> bool;
}

/// A sequencer's cluster side: where proposals go, where committed entries
/// come from, and how far it has applied.
pub struct Replica {
    replication: Box<dyn Replication>,
    committed: Receiver<Applied>,
    applied: Arc<AtomicU64>,
}

impl Replica {
    /// A replica proposing through `replication` and applying what
    /// `committed` hands over; `applied` is the last log index applied
    /// (read by the `/cluster` status page).
    pub fn new(replication: Box<dyn Replication>, committed: Receiver<Applied>, applied: Arc<AtomicU64>) -> Replica {
        Replica { replication, committed, applied }
    }

    fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }
}

/// Whether a batch became durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Durability {
    /// Journaled (single node) or committed (cluster): apply and publish it.
    Durable,
    /// Refused: this node no longer leads. Nothing of it may be applied.
    NotLeader,
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
    pub(super) fn committed_queue(&self) -> Receiver<Applied> {
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

    /// Applies one committed entry unless it was applied already (the
    /// leader's own proposal), and publishes its events.
    ///
    /// # Errors
    /// Its records do not decode or do not continue the sequence.
    pub(super) fn apply_committed(&mut self, entry: &Applied) -> Result<(), SequencerError> {
        let Some(replica) = &self.replica else { return Ok(()) };
        if entry.index <= replica.applied() {
            return Ok(());
        }
        if let Some(batch) = &entry.batch {
            self.apply_entry(entry.index, &batch.records)?;
        }
        self.mark_applied(entry.index);
        Ok(())
    }

    /// Applies the records of log entry `index` and publishes their events;
    /// how many there were.
    fn apply_entry(&mut self, index: u64, bytes: &[u8]) -> Result<u64, SequencerError> {
        let records = decode_batch(bytes, index)?;
        self.publisher.sequenced_here(false);
        for record in &records {
            self.check_committed_sequence(index, record)?;
            if record.command == Command::Roll {
                let date = self.engine.session_date().unwrap_or_default();
                self.snapshot_before_roll(date, record.seq.get(), record.timestamp);
            }
            self.apply_one(&record.command, record.timestamp);
        }
        self.publisher.flush();
        Ok(records.len() as u64)
    }

    /// Offline replay of a cluster node's data directory (`carbonx
    /// replay`): every committed entry of the Raft log in `<data>/raft`, in
    /// order; the number of records applied. An uncommitted tail (a
    /// deposed leader's last proposals) is left out: Raft may still drop it.
    ///
    /// # Errors
    /// The log cannot be read, or its records do not continue the stream.
    pub fn replay_raft_log(&mut self, raft_dir: &Path) -> Result<u64, SequencerError> {
        let (entries, committed) = LogStore::read_all(raft_dir)
            .map_err(|source| SequencerError::Journal { path: raft_dir.to_path_buf(), source })?;
        let committed = committed.map_or(0, |id| id.index);
        let mut count = 0;
        for entry in entries.iter().take_while(|e| e.log_id.index <= committed) {
            if let EntryPayload::Normal(batch) = &entry.payload {
                count += self.apply_entry(entry.log_id.index, &batch.records)?;
            }
        }
        Ok(count)
    }

    fn check_committed_sequence(&mut self, index: u64, record: &Record) -> Result<(), SequencerError> {
        if record.seq.get() != self.next_seq {
            let (found, expected_before) = (record.seq.get(), self.next_seq - 1);
            return Err(SequencerError::Gap { path: raft_entry(index), found, expected_before });
        }
        self.next_seq = if record.command == Command::Roll { 1 } else { self.next_seq + 1 };
        self.last_ts = self.last_ts.max(record.timestamp.nanos());
        Ok(())
    }

    pub(super) fn mark_applied(&self, index: u64) {
        if let Some(replica) = &self.replica {
            replica.applied.store(index, Ordering::Release);
        }
    }

    /// Proposes the stamped batch `records` (cluster mode only): its log
    /// index once committed, `None` when refused.
    pub(super) fn propose(&mut self, records: Vec<u8>) -> Option<u64> {
        self.replica.as_mut().and_then(|r| r.replication.propose(records))
    }

    /// True when the sequencer runs as a replica.
    pub(super) fn is_replica(&self) -> bool {
        self.replica.is_some()
    }
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
