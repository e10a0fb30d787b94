//! The log in memory ([`Log`]) and its `log` file: open (scan the frames,
//! cut a torn tail), append, truncate, purge and compact, and the small
//! files beside it (`vote`, `committed`, `purged`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use carbonx_soup::files::{self, CheckedFile, FileModes, StorageOp};
use openraft::{Entry, LogId, Vote};

use super::frame::{
    Frame, FrameError, HEADER, encode_frame, read_frame, read_hint, read_small, write_hint, write_small,
};
use super::{COMMITTED, LOG, PURGED, VOTE};
use crate::cluster::{NodeId, TypeConfig};

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
pub(super) struct Scan {
    /// Each entry with its frame's offset, in file order.
    pub(super) entries: Vec<(u64, Entry<TypeConfig>)>,
    /// Where the good frames end.
    pub(super) end: u64,
    /// The file's length.
    pub(super) len: u64,
    /// Why the log ends before `len`.
    pub(super) torn: Option<FrameError>,
}

/// Reads every good frame of `file` (`path`).
///
/// # Errors
/// Reading failed, or the entries' indexes do not increase (not a torn
/// tail: the file was written wrongly, and guessing could lose entries).
pub(super) fn scan(file: &File, path: &Path) -> io::Result<Scan> {
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
pub(super) fn kept(purged: Option<&LogId<NodeId>>, index: u64) -> bool {
    purged.is_none_or(|p| index > p.index)
}

/// An entry in memory and where its frame starts in `log`.
struct Stored {
    offset: u64,
    entry: Entry<TypeConfig>,
}

/// The log's state, behind [`LogStore`](super::LogStore)'s lock.
pub(super) struct Log {
    /// `raft/`.
    dir: PathBuf,
    modes: FileModes,
    /// `log`, opened for appending.
    file: CheckedFile,
    /// Where the last good frame ends: the file's length.
    end: u64,
    /// The entries not purged, by index.
    entries: BTreeMap<u64, Stored>,
    pub(super) purged: Option<LogId<NodeId>>,
    pub(super) vote: Option<Vote<NodeId>>,
    pub(super) committed: Option<LogId<NodeId>>,
    /// When the `committed` hint was last written, and how often it may be.
    hint_written_at: Option<Instant>,
    pub(super) hint_every: Duration,
    /// A write or sync failed: no more writes (fail-stop).
    failed: bool,
}

/// The `committed` hint is written at most this often: openraft reports
/// every commit, and a file replaced per commit cost a few percent of the
/// cluster's CPU. A hint that lags only means a restarted node applies
/// a little less at start and learns the rest from the leader.
pub(super) const COMMITTED_HINT_EVERY: Duration = Duration::from_millis(100);

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
    pub(super) fn open(dir: &Path, modes: FileModes) -> io::Result<Log> {
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
        Ok(Log {
            dir,
            modes,
            file,
            end: scan.end,
            entries,
            purged,
            vote,
            committed,
            hint_written_at: None,
            hint_every: COMMITTED_HINT_EVERY,
            failed: false,
        })
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
    pub(super) fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries.values().next_back().map(|s| s.entry.log_id).or(self.purged)
    }

    /// Clones of the entries in `range`.
    pub(super) fn entries_in(&self, range: &impl RangeBounds<u64>) -> Vec<Entry<TypeConfig>> {
        // `BTreeMap::range` panics on a reversed range; this cannot.
        let from = (range.start_bound().cloned(), Bound::Unbounded);
        self.entries.range(from).take_while(|(index, _)| range.contains(*index)).map(|(_, s)| s.entry.clone()).collect()
    }

    /// Writes `entries` after the last one, syncs, then keeps them.
    pub(super) fn append(&mut self, entries: Vec<Entry<TypeConfig>>) -> io::Result<()> {
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
    pub(super) fn truncate(&mut self, index: u64) -> io::Result<()> {
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
    pub(super) fn purge(&mut self, log_id: LogId<NodeId>) -> io::Result<()> {
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
    pub(super) fn save_vote(&mut self, vote: &Vote<NodeId>) -> io::Result<()> {
        self.writable()?;
        let saved = write_small(&self.dir.join(VOTE), vote, self.modes);
        self.guard(saved)?;
        self.vote = Some(*vote);
        Ok(())
    }

    /// Saves the committed log id (if it changed), as a hint: renamed into
    /// place but not synced, and at most every `hint_every`
    /// ([`COMMITTED_HINT_EVERY`]).
    /// openraft calls this on every commit, on the path a proposal waits
    /// on; an `fsync` there would double the cost of a commit. Losing it
    /// (a power cut) or a stale one only means a restarted node re-applies
    /// less at start and learns the rest from the leader.
    pub(super) fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> io::Result<()> {
        self.writable()?;
        if self.committed == committed {
            return Ok(());
        }
        self.committed = committed;
        if self.hint_written_at.is_some_and(|at| at.elapsed() < self.hint_every) {
            return Ok(());
        }
        self.write_committed_hint()
    }

    /// Writes the `committed` hint now (at a shutdown: an offline replay
    /// then replays everything committed).
    pub(super) fn write_committed_hint(&mut self) -> io::Result<()> {
        self.writable()?;
        let saved = write_hint(&self.dir.join(COMMITTED), &self.committed, self.modes);
        self.guard(saved)?;
        self.hint_written_at = Some(Instant::now());
        Ok(())
    }
}
