//! The Raft log on disk: `raft/` in the data directory.
//!
//! # Files
//! - `log`: the entries, appended as frames `[u32 LE body length][u32 LE
//!   crc32c of the body][body: postcard of the entry]`.
//! - `vote`, `committed`, `purged`: one frame each, replaced whole
//!   ([`files::write_atomically`]): after a crash they hold the old value or
//!   the new one.
//!
//! # Durability
//! [`RaftLogStorage::append`] writes all the new frames in one write, syncs
//! the file's data, and only then makes the entries visible to readers and
//! reports them flushed: an entry anyone was told about is on disk. So a
//! crash mid-append leaves at most a torn tail nobody was told about, and
//! [`LogStore::open`] cuts it off (a short frame, a bad checksum or an
//! undecodable body ends the log there), with a warning. A bad frame in
//! the middle, which only a disk fault makes, is cut the same way with
//! everything after it: acknowledged entries are lost then, which Raft's
//! safety does not cover (the leader re-sends them if a majority still
//! has them), so the warning says how many bytes were cut.
//! Every write and sync passes the fault-injection seam of
//! [`carbonx_soup::files`].
//!
//! Purged entries leave memory at once, but their frames stay in `log`
//! (skipped at open, because `purged` is written first) until they make up
//! more than half of the file: then the kept frames are copied to a new
//! file that replaces `log` atomically. Purges come after snapshots, a few
//! times a day, so the copy is rare.
//!
//! # Failure
//! Fail-stop: a write or sync error is returned as a [`StorageError`], on
//! which openraft stops the node. The store also refuses every later write:
//! after a failed `fsync` the kernel may have dropped the dirty pages, and a
//! retried write or sync could report success for data that is gone. A
//! corrupt `vote`, `committed` or `purged` file, or frames out of order in
//! `log`, make [`LogStore::open`] fail: they are not a torn tail, and
//! guessing would risk a vote cast twice or a lost entry.
//!
//! The whole log is kept in memory (a day of batches): reads never touch
//! the disk. The file I/O is blocking and done on the calling task, because
//! openraft awaits each of these calls before going on anyway.
//!
//! # Layout
//! - `mod.rs`: [`LogStore`], openraft's log storage traits over it, and
//!   the files' names.
//! - `frame.rs`: the frame format and the one-frame files (`vote`,
//!   `purged`, and the `committed` hint).
//! - `log.rs`: the log in memory and its `log` file: open (scan, cut a torn
//!   tail), append, truncate, purge, compact; the fail-stop guard.
//! - `tests.rs`: the tests, and the entry fixtures the state machine's
//!   tests share.

mod frame;
mod log;
#[cfg(test)]
pub(super) mod tests;

use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use carbonx_soup::files::{self, FileModes};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError, Vote};

use self::frame::read_hint;
pub(super) use self::frame::{read_small, write_small};
use self::log::{Log, kept, scan};
use super::{NodeId, TypeConfig};

/// The entries' file.
const LOG: &str = "log";
/// The last vote.
const VOTE: &str = "vote";
/// The last committed log id.
const COMMITTED: &str = "committed";
/// The last purged log id.
const PURGED: &str = "purged";

/// What the clones of a [`LogStore`] share.
struct Shared {
    log: Mutex<Log>,
    /// What [`LogStore::committed_index`] reads: the saved committed index
    /// plus one, 0 for none.
    committed: AtomicU64,
}

/// What [`LogStore::read_all`] reads: the entries (not purged) and the
/// saved committed log id.
pub type Contents = (Vec<Entry<TypeConfig>>, Option<LogId<NodeId>>);

/// The Raft log on disk (see the module docs). Clones share it: openraft's
/// replication tasks read through clones ([`RaftLogStorage::LogReader`]).
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

impl LogStore {
    /// Opens the log in `dir` (`<data>/raft`), creating it if missing; cuts
    /// a torn tail off `log` (see the module docs).
    ///
    /// # Errors
    /// A file cannot be created, read, cut or synced, or is corrupt
    /// otherwise than by a torn tail.
    pub fn open(dir: &Path, modes: FileModes) -> io::Result<LogStore> {
        let log = Log::open(dir, modes)?;
        let committed = AtomicU64::new(committed_code(log.committed));
        Ok(LogStore { shared: Arc::new(Shared { log: Mutex::new(log), committed }) })
    }

    /// Writes the `committed` hint now, however recent the last one (at a
    /// shutdown, once Raft has stopped).
    ///
    /// # Errors
    /// The store failed before, or the file cannot be written.
    pub fn write_committed_hint(&self) -> io::Result<()> {
        self.lock().write_committed_hint()
    }

    /// Writes the `committed` hint at most every `every` (tests).
    #[cfg(test)]
    pub(super) fn set_hint_every(&self, every: std::time::Duration) {
        self.lock().hint_every = every;
    }

    /// The entries in `range` this log holds (a state machine's snapshot
    /// reads the day's batches here rather than keeping them in memory).
    pub(in crate::cluster) fn entries(&self, range: std::ops::RangeInclusive<u64>) -> Vec<Entry<TypeConfig>> {
        self.lock().entries_in(&range)
    }

    /// The last committed index saved, for status pages: cheap, no lock.
    pub fn committed_index(&self) -> Option<u64> {
        self.shared.committed.load(Ordering::Acquire).checked_sub(1)
    }

    /// The entries (not purged) and the saved committed log id of the log
    /// in `dir`, for offline tools: read only, so a torn tail is skipped,
    /// not cut.
    ///
    /// # Errors
    /// A file cannot be read, or is corrupt otherwise than by a torn tail.
    pub fn read_all(dir: &Path) -> io::Result<Contents> {
        let committed = read_hint(&dir.join(COMMITTED));
        let purged: Option<LogId<NodeId>> = read_small(&dir.join(PURGED))?;
        let path = dir.join(LOG);
        let file = File::open(&path).map_err(|e| files::named(&path, &e))?;
        let scan = scan(&file, &path)?;
        if let Some(why) = &scan.torn {
            tracing::warn!(path = %path.display(), at = scan.end, "the Raft log has a torn tail ({why}): skipped");
        }
        let entries = scan.entries.into_iter().map(|(_, e)| e).filter(|e| kept(purged.as_ref(), e.log_id.index));
        Ok((entries.collect(), committed))
    }

    /// The log, locked. Nothing panics while holding it, so a poisoned
    /// lock still guards a consistent log.
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.shared.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`Shared::committed`]'s encoding of `committed`.
fn committed_code(committed: Option<LogId<NodeId>>) -> u64 {
    committed.map_or(0, |c| c.index.saturating_add(1))
}

/// `err` as openraft's storage error about `subject`.
fn storage_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, err: io::Error) -> StorageError<NodeId> {
    StorageError::from_io_error(subject, verb, err)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.lock().entries_in(&range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let log = self.lock();
        Ok(LogState { last_purged_log_id: log.purged, last_log_id: log.last_log_id() })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.lock().save_vote(vote).map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    /// Saved so that a restarted node re-applies its committed entries
    /// (the state machine keeps only its snapshot).
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        self.lock().save_committed(committed).map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.shared.committed.store(committed_code(committed), Ordering::Release);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    /// Synchronous: the entries are on disk, visible to readers and
    /// reported flushed before this returns. On an error they are none of
    /// these, the callback gets the error too, and the store takes no more
    /// writes.
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let appended = self.lock().append(entries.into_iter().collect());
        match appended {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(err) => {
                callback.log_io_completed(Err(io::Error::new(err.kind(), err.to_string())));
                Err(storage_error(ErrorSubject::Logs, ErrorVerb::Write, err))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.lock().truncate(log_id.index).map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.lock().purge(log_id).map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}
