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

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use carbonx_soup::files::{self, CheckedFile, FileModes, StorageOp};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError, Vote};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, TypeConfig};

/// The entries' file.
const LOG: &str = "log";
/// The last vote.
const VOTE: &str = "vote";
/// The last committed log id.
const COMMITTED: &str = "committed";
/// The last purged log id.
const PURGED: &str = "purged";

/// A frame's header: body length and crc32c, both `u32` LE.
const HEADER: u64 = 8;

/// Why a frame cannot be read: at the end of `log`, a torn tail.
#[derive(Debug, thiserror::Error)]
pub(super) enum FrameError {
    /// Fewer bytes left than a header.
    #[error("{left} bytes left, fewer than a frame header")]
    ShortHeader {
        /// Bytes left in the file.
        left: u64,
    },
    /// The header announces more bytes than are left.
    #[error("a {len}-byte body announced, {left} bytes left")]
    ShortBody {
        /// The announced body length.
        len: u64,
        /// Bytes left after the header.
        left: u64,
    },
    /// The body's checksum does not match the header's.
    #[error("body checksum {found:08x}, header says {expected:08x}")]
    Checksum {
        /// The header's.
        expected: u32,
        /// The body's.
        found: u32,
    },
    /// The body is not the postcard of what was expected.
    #[error("undecodable body: {0}")]
    Decode(#[from] postcard::Error),
    /// More than one frame where one was expected.
    #[error("{0} bytes after the frame")]
    Trailing(u64),
}

impl From<FrameError> for io::Error {
    fn from(err: FrameError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}

/// Appends `value`'s frame to `out`.
///
/// # Errors
/// `value` cannot be encoded, or its body is over 4 GiB.
pub(super) fn encode_frame<T: Serialize>(value: &T, out: &mut Vec<u8>) -> io::Result<()> {
    let body = postcard::to_allocvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame body over 4 GiB"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// What [`read_frame`] found.
enum Frame {
    /// The clean end of the file.
    End,
    /// A checked body.
    Body(Vec<u8>),
    /// A torn or corrupt frame: the log ends before it.
    Torn(FrameError),
}

/// Reads the next frame from `reader`, which has `left` bytes left.
///
/// # Errors
/// Reading failed (a torn frame is not an error: [`Frame::Torn`]).
fn read_frame(reader: &mut impl Read, left: u64) -> io::Result<Frame> {
    if left == 0 {
        return Ok(Frame::End);
    }
    if left < HEADER {
        return Ok(Frame::Torn(FrameError::ShortHeader { left }));
    }
    let mut header = [0; HEADER as usize];
    reader.read_exact(&mut header)?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u64::from(u32::from_le_bytes([l0, l1, l2, l3]));
    let expected = u32::from_le_bytes([c0, c1, c2, c3]);
    if len > left - HEADER {
        return Ok(Frame::Torn(FrameError::ShortBody { len, left: left - HEADER }));
    }
    let mut body = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    reader.read_exact(&mut body)?;
    let found = crc32c::crc32c(&body);
    if found != expected {
        return Ok(Frame::Torn(FrameError::Checksum { expected, found }));
    }
    Ok(Frame::Body(body))
}

/// Decodes `bytes`, which must be exactly one frame.
fn decode_single<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let left = bytes.len() as u64;
    let mut reader = bytes;
    let body = match read_frame(&mut reader, left) {
        Ok(Frame::Body(body)) => body,
        Ok(Frame::Torn(err)) => return Err(err),
        // A slice has its `left` bytes: the end or a short read cannot be.
        Ok(Frame::End) | Err(_) => return Err(FrameError::ShortHeader { left }),
    };
    if !reader.is_empty() {
        return Err(FrameError::Trailing(reader.len() as u64));
    }
    Ok(postcard::from_bytes(&body)?)
}

/// Reads a one-frame file: `None` if it does not exist.
///
/// # Errors
/// It cannot be read, or is not one good frame (the error names it).
pub(super) fn read_small<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(files::named(path, &err)),
    };
    decode_single(&bytes).map(Some).map_err(|e| files::named(path, &e.into()))
}

/// Replaces `path` with `value`'s frame ([`files::write_atomically`]).
///
/// # Errors
/// Encoding, writing or syncing failed.
pub(super) fn write_small<T: Serialize>(path: &Path, value: &T, modes: FileModes) -> io::Result<()> {
    let mut bytes = Vec::new();
    encode_frame(value, &mut bytes)?;
    files::write_atomically(path, &bytes, modes)
}

/// Replaces `path` with `value`'s frame by a rename, without syncing:
/// after a power cut it holds the old value, the new one, or nothing.
fn write_hint<T: Serialize>(path: &Path, value: &T, modes: FileModes) -> io::Result<()> {
    let mut bytes = Vec::new();
    encode_frame(value, &mut bytes)?;
    let tmp = files::temporary_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(modes.file)
        .open(&tmp)
        .map_err(|e| files::named(&tmp, &e))?;
    files::check(StorageOp::Write, &tmp).and_then(|()| file.write_all(&bytes)).map_err(|e| files::named(&tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| files::named(path, &e))
}

/// The committed hint ([`write_hint`]); unreadable or torn, none: Raft
/// then learns the commit index from the leader again.
fn read_hint(path: &Path) -> Option<LogId<NodeId>> {
    read_small::<Option<LogId<NodeId>>>(path)
        .unwrap_or_else(|err| {
            tracing::warn!(%err, "committed index hint not read; learned from the leader again");
            None
        })
        .flatten()
}

/// `file.sync_data()` through the fault-injection seam: `fdatasync`, the
/// file's length included, its times not.
fn sync_data(file: &CheckedFile) -> io::Result<()> {
    let path = file.path();
    files::check(StorageOp::Sync, path).and_then(|()| file.file().sync_data()).map_err(|e| files::named(path, &e))
}

/// Cuts `file` to `len` bytes and syncs it.
fn set_len_synced(file: &CheckedFile, len: u64) -> io::Result<()> {
    let path = file.path();
    files::check(StorageOp::Write, path).and_then(|()| file.file().set_len(len)).map_err(|e| files::named(path, &e))?;
    sync_data(file)
}

/// The frames of a `log` file, up to the first bad one.
struct Scan {
    /// Each entry with its frame's offset, in file order.
    entries: Vec<(u64, Entry<TypeConfig>)>,
    /// Where the good frames end.
    end: u64,
    /// The file's length.
    len: u64,
    /// Why the log ends before `len`.
    torn: Option<FrameError>,
}

/// Reads every good frame of `file` (`path`).
///
/// # Errors
/// Reading failed, or the entries' indexes do not increase (not a torn
/// tail: the file was written wrongly, and guessing could lose entries).
fn scan(file: &File, path: &Path) -> io::Result<Scan> {
    let len = file.metadata().map_err(|e| files::named(path, &e))?.len();
    let mut reader = BufReader::new(file);
    let mut scan = Scan { entries: Vec::new(), end: 0, len, torn: None };
    loop {
        let body = match read_frame(&mut reader, len - scan.end).map_err(|e| files::named(path, &e))? {
            Frame::End => break,
            Frame::Torn(err) => {
                scan.torn = Some(err);
                break;
            }
            Frame::Body(body) => body,
        };
        let entry: Entry<TypeConfig> = match postcard::from_bytes(&body) {
            Ok(entry) => entry,
            Err(err) => {
                scan.torn = Some(err.into());
                break;
            }
        };
        if let Some((_, last)) = scan.entries.last().filter(|(_, last)| last.log_id.index >= entry.log_id.index) {
            let why = format!("entry {} after entry {} at byte {}", entry.log_id, last.log_id, scan.end);
            return Err(files::named(path, &io::Error::new(io::ErrorKind::InvalidData, why)));
        }
        scan.entries.push((scan.end, entry));
        scan.end += HEADER + body.len() as u64;
    }
    Ok(scan)
}

/// Whether an entry at `index` survives a purge up to `purged`.
fn kept(purged: Option<&LogId<NodeId>>, index: u64) -> bool {
    purged.is_none_or(|p| index > p.index)
}

/// An entry in memory and where its frame starts in `log`.
struct Stored {
    offset: u64,
    entry: Entry<TypeConfig>,
}

/// The log's state, behind [`LogStore`]'s lock.
struct Log {
    /// `raft/`.
    dir: PathBuf,
    modes: FileModes,
    /// `log`, opened for appending.
    file: CheckedFile,
    /// Where the last good frame ends: the file's length.
    end: u64,
    /// The entries not purged, by index.
    entries: BTreeMap<u64, Stored>,
    purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    /// A write or sync failed: no more writes (fail-stop).
    failed: bool,
}

/// Opens `path` for reading and appending, creating it if missing.
fn open_log(path: &Path, modes: FileModes) -> io::Result<CheckedFile> {
    if path.exists() {
        return reopen_log(path);
    }
    let file = files::create_file(path, OpenOptions::new().read(true).append(true).create(true), modes)?;
    Ok(CheckedFile::new(file, path))
}

/// Opens the existing `path` for reading and appending.
fn reopen_log(path: &Path) -> io::Result<CheckedFile> {
    let file = OpenOptions::new().read(true).append(true).open(path);
    Ok(CheckedFile::new(file.map_err(|e| files::named(path, &e))?, path))
}

impl Log {
    /// Loads `dir`, cutting a torn tail off `log`.
    fn open(dir: &Path, modes: FileModes) -> io::Result<Log> {
        files::create_dir_all(dir, modes)?;
        let vote = read_small(&dir.join(VOTE))?;
        let committed = read_hint(&dir.join(COMMITTED));
        let purged: Option<LogId<NodeId>> = read_small(&dir.join(PURGED))?;
        let path = dir.join(LOG);
        let file = open_log(&path, modes)?;
        let scan = scan(file.file(), &path)?;
        if let Some(why) = &scan.torn {
            tracing::warn!(
                path = %path.display(),
                at = scan.end,
                cut = scan.len - scan.end,
                "the Raft log has a torn tail ({why}): cut off (never acknowledged)"
            );
            set_len_synced(&file, scan.end)?;
        }
        let entries = scan
            .entries
            .into_iter()
            .filter(|(_, entry)| kept(purged.as_ref(), entry.log_id.index))
            .map(|(offset, entry)| (entry.log_id.index, Stored { offset, entry }))
            .collect();
        let dir = dir.to_path_buf();
        Ok(Log { dir, modes, file, end: scan.end, entries, purged, vote, committed, failed: false })
    }

    /// `Err` once a write has failed.
    fn writable(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write to the Raft log failed: no more writes (fail-stop)"));
        }
        Ok(())
    }

    /// `result`, remembering a failure.
    fn guard<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        self.failed |= result.is_err();
        result
    }

    /// The last entry's log id, else the last purged one.
    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries.values().next_back().map(|s| s.entry.log_id).or(self.purged)
    }

    /// Clones of the entries in `range`.
    fn entries_in(&self, range: &impl RangeBounds<u64>) -> Vec<Entry<TypeConfig>> {
        // `BTreeMap::range` panics on a reversed range; this cannot.
        let from = (range.start_bound().cloned(), Bound::Unbounded);
        self.entries.range(from).take_while(|(index, _)| range.contains(*index)).map(|(_, s)| s.entry.clone()).collect()
    }

    /// Writes `entries` after the last one, syncs, then keeps them.
    fn append(&mut self, entries: Vec<Entry<TypeConfig>>) -> io::Result<()> {
        self.writable()?;
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(entries.len());
        let mut last = self.entries.keys().next_back().copied();
        for entry in &entries {
            if last.is_some_and(|last| entry.log_id.index <= last) {
                let why = format!("entry {} does not follow entry {last:?}: truncate first", entry.log_id);
                return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
            }
            last = Some(entry.log_id.index);
            offsets.push(self.end + bytes.len() as u64);
            encode_frame(entry, &mut bytes)?;
        }
        let written = self.file.write_all(&bytes).and_then(|()| sync_data(&self.file));
        self.guard(written)?;
        self.end += bytes.len() as u64;
        for (offset, entry) in offsets.into_iter().zip(entries) {
            self.entries.insert(entry.log_id.index, Stored { offset, entry });
        }
        Ok(())
    }

    /// Deletes the entries from `index` on.
    fn truncate(&mut self, index: u64) -> io::Result<()> {
        self.writable()?;
        let Some(offset) = self.entries.range(index..).next().map(|(_, s)| s.offset) else {
            return Ok(());
        };
        let cut = set_len_synced(&self.file, offset);
        self.guard(cut)?;
        self.end = offset;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Forgets the entries up to `log_id`: `purged` first, so that a crash
    /// at any point leaves a log that open reads the same.
    fn purge(&mut self, log_id: LogId<NodeId>) -> io::Result<()> {
        self.writable()?;
        if self.purged.is_some_and(|purged| purged >= log_id) {
            return Ok(());
        }
        let saved = write_small(&self.dir.join(PURGED), &log_id, self.modes);
        self.guard(saved)?;
        self.purged = Some(log_id);
        self.entries = match log_id.index.checked_add(1) {
            Some(first_kept) => self.entries.split_off(&first_kept),
            None => BTreeMap::new(),
        };
        let compacted = self.compact();
        self.guard(compacted)
    }

    /// Rewrites `log` without its purged frames once they are more than
    /// half of it.
    fn compact(&mut self) -> io::Result<()> {
        let base = self.entries.values().next().map_or(self.end, |s| s.offset);
        if base * 2 <= self.end {
            return Ok(());
        }
        let path = self.file.path().to_path_buf();
        let mut kept = vec![0; usize::try_from(self.end - base).map_err(io::Error::other)?];
        self.file.file().read_exact_at(&mut kept, base).map_err(|e| files::named(&path, &e))?;
        files::write_atomically(&path, &kept, self.modes)?;
        self.file = reopen_log(&path)?;
        self.end -= base;
        for stored in self.entries.values_mut() {
            stored.offset -= base;
        }
        tracing::info!(path = %path.display(), dropped = base, kept = self.end, "the Raft log compacted");
        Ok(())
    }

    /// Saves the vote.
    fn save_vote(&mut self, vote: &Vote<NodeId>) -> io::Result<()> {
        self.writable()?;
        let saved = write_small(&self.dir.join(VOTE), vote, self.modes);
        self.guard(saved)?;
        self.vote = Some(*vote);
        Ok(())
    }

    /// Saves the committed log id (if it changed), as a hint: renamed into
    /// place but not synced. openraft calls this on every commit, on the
    /// path a proposal waits on; two `fsync`s there would double the cost
    /// of a commit. Losing it (a power cut) only means a restarted node
    /// re-applies less at start and learns the rest from the leader.
    fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> io::Result<()> {
        self.writable()?;
        if self.committed == committed {
            return Ok(());
        }
        let saved = write_hint(&self.dir.join(COMMITTED), &committed, self.modes);
        self.guard(saved)?;
        self.committed = committed;
        Ok(())
    }
}

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

#[cfg(test)]
pub(super) mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::AtomicUsize;

    use carbonx_soup::files::{FaultPlan, install_faults};
    use crossbeam::channel::{Receiver, unbounded};
    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, EntryPayload, Membership};
    use tempfile::TempDir;

    use super::*;
    use crate::cluster::state_machine::{Applied, StateMachine};
    use crate::cluster::{Batch, Member};

    /// The id of entry `index` proposed in `term` (by node 1).
    pub(in crate::cluster) fn id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    /// A blank entry.
    pub(in crate::cluster) fn blank(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry { log_id: id(term, index), payload: EntryPayload::Blank }
    }

    /// An entry carrying `records`.
    pub(in crate::cluster) fn normal(term: u64, index: u64, records: &[u8]) -> Entry<TypeConfig> {
        Entry { log_id: id(term, index), payload: EntryPayload::Normal(Batch { records: records.to_vec() }) }
    }

    /// A membership entry: voters 1 and 2, with their addresses.
    pub(in crate::cluster) fn membership(term: u64, index: u64) -> Entry<TypeConfig> {
        let member = |n: u64| Member {
            raft: format!("10.0.0.{n}:7000"),
            order_entry: format!("10.0.0.{n}:7001"),
            admin: format!("10.0.0.{n}:7002"),
        };
        let nodes = BTreeMap::from([(1, member(1)), (2, member(2))]);
        let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes);
        Entry { log_id: id(term, index), payload: EntryPayload::Membership(membership) }
    }

    /// A fresh log store and state machine in a temporary directory, for
    /// openraft's suite; the guard keeps the directory and the engine
    /// channel's receiver alive.
    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, (TempDir, Receiver<Applied>)> for Builder {
        async fn build(&self) -> Result<((TempDir, Receiver<Applied>), LogStore, StateMachine), StorageError<NodeId>> {
            let io = |e| storage_error(ErrorSubject::Store, ErrorVerb::Write, e);
            let dir = tempfile::tempdir().map_err(io)?;
            let raft = dir.path().join("raft");
            let (sink, receiver) = unbounded();
            let log = LogStore::open(&raft, FileModes::default()).map_err(io)?;
            let state_machine = StateMachine::open(&raft, FileModes::default(), sink).map_err(io)?;
            Ok(((dir, receiver), log, state_machine))
        }
    }

    #[test]
    fn passes_openraft_storage_suite() {
        Suite::test_all(Builder).expect("openraft's storage suite");
    }

    fn open(dir: &TempDir) -> LogStore {
        LogStore::open(dir.path(), FileModes::default()).expect("open")
    }

    async fn all(log: &mut LogStore) -> Vec<Entry<TypeConfig>> {
        log.try_get_log_entries(..).await.expect("read")
    }

    fn log_len(dir: &TempDir) -> u64 {
        std::fs::metadata(dir.path().join(LOG)).expect("log").len()
    }

    #[tokio::test]
    async fn reopen_restores_entries_vote_and_committed() {
        let dir = tempfile::tempdir().unwrap();
        let entries = vec![blank(1, 1), membership(1, 2), normal(1, 3, b"abc"), normal(2, 4, &[7; 300])];
        let mut log = open(&dir);
        log.blocking_append(entries[..2].to_vec()).await.unwrap();
        log.blocking_append(entries[2..].to_vec()).await.unwrap();
        log.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
        log.save_committed(Some(id(2, 3))).await.unwrap();
        assert_eq!(log.committed_index(), Some(3));
        drop(log);

        let mut log = open(&dir);
        assert_eq!(all(&mut log).await, entries);
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new_committed(2, 1)));
        assert_eq!(log.read_committed().await.unwrap(), Some(id(2, 3)));
        assert_eq!(log.committed_index(), Some(3), "loaded at open");
        let state = log.get_log_state().await.unwrap();
        assert_eq!((state.last_purged_log_id, state.last_log_id), (None, Some(id(2, 4))));
        assert_eq!(log.try_get_log_entries(2..4).await.unwrap(), entries[1..3]);
        assert_eq!(log.try_get_log_entries(3..=3).await.unwrap(), entries[2..3]);
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = log.try_get_log_entries(4..2).await.unwrap();
        assert!(reversed.is_empty(), "a reversed range is empty, not a panic");
        assert_eq!(LogStore::read_all(dir.path()).unwrap(), (entries, Some(id(2, 3))));
    }

    #[tokio::test]
    async fn an_entry_that_does_not_follow_the_last_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(&dir);
        log.blocking_append([blank(1, 1), blank(1, 2)]).await.unwrap();
        assert!(log.blocking_append([blank(2, 2)]).await.is_err(), "overwriting needs a truncate");
        log.blocking_append([blank(1, 3)]).await.expect("a refused append does not stop the store");
        drop(log);
        assert_eq!(all(&mut open(&dir)).await, [blank(1, 1), blank(1, 2), blank(1, 3)]);
    }

    /// Bytes a crash (or a disk) may leave after the last good frame.
    fn torn_tails() -> Vec<(&'static str, Vec<u8>)> {
        let mut frame = Vec::new();
        encode_frame(&normal(1, 4, b"the fourth entry"), &mut frame).unwrap();
        let mut bad_crc = frame.clone();
        *bad_crc.last_mut().unwrap() ^= 1;
        let mut undecodable = Vec::new();
        encode_frame(&[0xffu8; 3], &mut undecodable).unwrap();
        vec![
            ("half a frame", frame[..frame.len() / 2].to_vec()),
            ("a header only", frame[..8].to_vec()),
            ("part of a header", frame[..3].to_vec()),
            ("a bad checksum", bad_crc),
            ("an undecodable body", undecodable),
        ]
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_at_open_and_the_good_entries_kept() {
        let good = vec![blank(1, 1), membership(1, 2), normal(1, 3, b"xyz")];
        for (what, tail) in torn_tails() {
            let dir = tempfile::tempdir().unwrap();
            open(&dir).blocking_append(good.clone()).await.unwrap();
            let good_len = log_len(&dir);
            let mut file = OpenOptions::new().append(true).open(dir.path().join(LOG)).unwrap();
            file.write_all(&tail).unwrap();
            drop(file);

            let (read, _) = LogStore::read_all(dir.path()).unwrap();
            assert_eq!(read, good, "{what}: read_all skips the tail");
            assert_eq!(log_len(&dir), good_len + tail.len() as u64, "{what}: read_all does not cut");

            let mut log = open(&dir);
            assert_eq!(all(&mut log).await, good, "{what}");
            assert_eq!(log_len(&dir), good_len, "{what}: the tail is cut off");
            log.blocking_append([blank(2, 4)]).await.unwrap();
            drop(log);
            assert_eq!(all(&mut open(&dir)).await.len(), 4, "{what}: appends after the cut read back");
        }
    }

    #[tokio::test]
    async fn frames_out_of_order_or_a_corrupt_vote_refuse_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        encode_frame(&blank(1, 2), &mut bytes).unwrap();
        encode_frame(&blank(1, 1), &mut bytes).unwrap();
        std::fs::write(dir.path().join(LOG), &bytes).unwrap();
        let err = LogStore::open(dir.path(), FileModes::default()).err().expect("entries out of order");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(log_len(&dir), bytes.len() as u64, "nothing cut");

        let dir = tempfile::tempdir().unwrap();
        open(&dir).save_vote(&Vote::new(3, 1)).await.unwrap();
        let mut vote = std::fs::read(dir.path().join(VOTE)).unwrap();
        *vote.last_mut().unwrap() ^= 1;
        std::fs::write(dir.path().join(VOTE), vote).unwrap();
        let err = LogStore::open(dir.path(), FileModes::default()).err().expect("a corrupt vote");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn truncate_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(&dir);
        log.blocking_append((1..=5).map(|i| normal(1, i, &[i as u8; 10]))).await.unwrap();
        log.truncate(id(1, 3)).await.unwrap();
        let kept: Vec<_> = (1..=2).map(|i| normal(1, i, &[i as u8; 10])).collect();
        assert_eq!(all(&mut log).await, kept);
        assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(id(1, 2)));
        drop(log);

        let mut log = open(&dir);
        assert_eq!(all(&mut log).await, kept);
        log.blocking_append([normal(2, 3, b"new leader")]).await.unwrap();
        drop(log);
        let mut want = kept;
        want.push(normal(2, 3, b"new leader"));
        assert_eq!(all(&mut open(&dir)).await, want);
    }

    async fn state(log: &mut LogStore) -> (Option<LogId<NodeId>>, Option<LogId<NodeId>>) {
        let state = log.get_log_state().await.unwrap();
        (state.last_purged_log_id, state.last_log_id)
    }

    fn indexes(entries: &[Entry<TypeConfig>]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test]
    async fn purge_survives_reopen_and_compacts_past_half() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(&dir);
        // Ten frames of the same size.
        log.blocking_append((1..=10).map(|i| blank(1, i))).await.unwrap();
        let full = log_len(&dir);
        log.purge(id(1, 4)).await.unwrap();
        assert_eq!(indexes(&all(&mut log).await), [5, 6, 7, 8, 9, 10]);
        assert_eq!(log_len(&dir), full, "4 of 10 frames purged: not compacted");
        drop(log);

        let mut log = open(&dir);
        assert_eq!(indexes(&all(&mut log).await), [5, 6, 7, 8, 9, 10], "purged frames skipped at open");
        assert_eq!(state(&mut log).await, (Some(id(1, 4)), Some(id(1, 10))));
        log.purge(id(1, 8)).await.unwrap();
        assert_eq!(log_len(&dir), full / 5, "8 of 10 frames purged: compacted");
        // Offsets moved with the compaction: cut at the right frame.
        log.truncate(id(1, 10)).await.unwrap();
        log.blocking_append([blank(2, 10)]).await.unwrap();
        drop(log);

        let mut log = open(&dir);
        assert_eq!(all(&mut log).await, [blank(1, 9), blank(2, 10)]);
        assert_eq!(state(&mut log).await, (Some(id(1, 8)), Some(id(2, 10))));
        log.purge(id(2, 20)).await.unwrap();
        assert_eq!((log_len(&dir), state(&mut log).await), (0, (Some(id(2, 20)), Some(id(2, 20)))));
        drop(log);

        let mut log = open(&dir);
        assert_eq!(state(&mut log).await, (Some(id(2, 20)), Some(id(2, 20))));
        log.blocking_append([blank(3, 21)]).await.unwrap();
        assert_eq!(all(&mut log).await, [blank(3, 21)]);
    }

    /// Fails every sync under `dir`.
    struct FailSyncs {
        dir: PathBuf,
        hits: AtomicUsize,
    }

    impl FaultPlan for FailSyncs {
        fn check(&self, op: StorageOp, path: &Path) -> io::Result<()> {
            if op != StorageOp::Sync || !path.starts_with(&self.dir) {
                return Ok(());
            }
            self.hits.fetch_add(1, Ordering::SeqCst);
            Err(io::Error::other("injected sync failure"))
        }
    }

    /// Removes the fault plan, even when the test fails.
    struct Uninstall;

    impl Drop for Uninstall {
        fn drop(&mut self) {
            install_faults(None);
        }
    }

    #[tokio::test]
    async fn a_failing_sync_fails_append_and_stops_every_later_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(&dir);
        log.blocking_append([blank(1, 1)]).await.unwrap();
        log.save_vote(&Vote::new(1, 1)).await.unwrap();
        let plan = Arc::new(FailSyncs { dir: dir.path().to_path_buf(), hits: AtomicUsize::new(0) });
        install_faults(Some(plan.clone()));
        let uninstall = Uninstall;
        let err = log.blocking_append([blank(1, 2)]).await.expect_err("the sync fails");
        drop(uninstall);
        assert!(err.to_string().contains("injected sync failure"), "{err}");
        assert_eq!(plan.hits.load(Ordering::SeqCst), 1);
        assert_eq!(all(&mut log).await, [blank(1, 1)], "not acknowledged, not visible");
        assert_eq!(state(&mut log).await.1, Some(id(1, 1)));

        // Fail-stop: the store takes no more writes, even with the disk back.
        assert!(log.blocking_append([blank(1, 2)]).await.is_err());
        assert!(log.save_vote(&Vote::new(2, 1)).await.is_err());
        assert!(log.truncate(id(1, 1)).await.is_err());
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(1, 1)));
        drop(log);

        // The written but unsynced frame may or may not survive a real
        // crash: Raft allows either for an entry nobody was told about.
        let mut log = open(&dir);
        assert_eq!(all(&mut log).await[0], blank(1, 1));
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(1, 1)));
    }
}
