//! The journal on disk: one file per trading day in the data directory,
//! records as `carbonx_engine::journal` encodes them, appended in batches
//! with one `fdatasync` per batch (group commit).
//!
//! Recovery reads a file back: a torn tail (the process died mid-write) is
//! cut off; a bad record in the middle stops start-up naming file and offset,
//! because silently skipping it would replay a different history.

use carbonx_engine::journal::{self, JournalError, Record};
use carbonx_soup::files::{FileModes, StorageOp, check};
use crossbeam::channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// When the journal is flushed to stable storage (also `--fsync`'s values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncMode {
    /// `fdatasync` after every command: safest, slowest.
    Always,
    /// `fdatasync` once per batch of commands (group commit): no reply leaves
    /// before its batch is durable.
    #[default]
    Batch,
    /// Never: for benchmarks and tests only; a power cut loses recent commands.
    Never,
}

/// A journal file that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// Reading or truncating failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A complete record in the middle is bad: the file is corrupt.
    #[error("{path}: corrupt journal record at byte offset {offset}: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong with it.
        source: JournalError,
    },
}

/// The path of the journal of trading day `date` (`YYYYMMDD`).
pub fn journal_path(dir: &Path, date: u32) -> PathBuf {
    dir.join(format!("journal-{date}.cxj"))
}

/// The trading day (`YYYYMMDD`) of a journal file, from its name.
pub fn date_of(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("journal-")?.strip_suffix(".cxj")?.parse().ok()
}

/// Journal files in `dir`, oldest day first.
///
/// # Errors
/// When the directory cannot be listed.
pub fn journal_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    files_named(dir, |name| name.starts_with("journal-") && name.ends_with(".cxj"))
}

/// The files in `dir` whose names satisfy `keep`, in name order; none when
/// `dir` does not exist (yet).
///
/// # Errors
/// When the directory cannot be listed.
pub fn files_named(dir: &Path, keep: impl Fn(&str) -> bool) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    files.retain(|p| keep(p.file_name().and_then(|n| n.to_str()).unwrap_or("")));
    files.sort();
    Ok(files)
}

/// Bytes read from a journal file at a time: many records per `read`, and
/// a buffer that stays in the cache (reading a whole day into memory first
/// cost a page fault per 4 KiB and doubled the replay's memory traffic).
const READ_CHUNK: usize = 256 * 1024;

/// What recovery does with a torn tail: the bytes of a last record whose
/// write a crash cut short (never acknowledged, so never published).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornTail {
    /// Cut it off the file, so that the next record appends after the last
    /// good one (a server restarting on its own data directory).
    Truncate,
    /// Leave the file as it is and only report it (an offline replay, a
    /// benchmark: they must not change the files they read).
    Keep,
}

/// Reads a journal file's records in order, a chunk of the file at a time,
/// checking each one's checksum; a torn tail ends the records, a bad one
/// before the end is an error naming its offset.
pub struct RecordReader {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// `buf[start..end]`: read but not yet decoded.
    start: usize,
    end: usize,
    /// The file offset of `buf[start]`: where the next record starts.
    offset: u64,
    /// The whole file has been read into the buffer.
    eof: bool,
}

impl RecordReader {
    /// Opens `path` for reading.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> Result<RecordReader, RecoveryError> {
        let file = File::open(path).map_err(|source| RecoveryError::Io { path: path.to_path_buf(), source })?;
        let buf = vec![0; READ_CHUNK + journal::RECORD_LEN_MAX];
        Ok(RecordReader { path: path.to_path_buf(), file, buf, start: 0, end: 0, offset: 0, eof: false })
    }

    /// The most tokens the file's records can have taken (see
    /// [`journal::TOKEN_RECORD_LEN_MIN`]): room for a replay's taken set.
    ///
    /// # Errors
    /// The file's size cannot be read.
    pub fn tokens_max(&self) -> Result<usize, RecoveryError> {
        let len = self.file.metadata().map_err(|source| RecoveryError::Io { path: self.path.clone(), source })?.len();
        Ok(usize::try_from(len).unwrap_or(usize::MAX) / journal::TOKEN_RECORD_LEN_MIN)
    }

    /// The next good record; `None` at the end of the file or at a torn tail.
    ///
    /// # Errors
    /// [`RecoveryError::Corrupt`] for a bad record followed by more bytes;
    /// [`RecoveryError::Io`] when reading fails.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecoveryError> {
        loop {
            match journal::decode(&self.buf[self.start..self.end]) {
                Ok(Some((record, used))) => {
                    self.start += used;
                    self.offset += used as u64;
                    return Ok(Some(record));
                }
                Ok(None) if self.eof => return Ok(None),
                // Incomplete: the rest is in the file.
                Ok(None) => self.refill()?,
                // Bad, and ends exactly where the bytes read so far end: a
                // torn tail if the file ends there too.
                Err(source) if is_torn_tail(&self.buf[self.start..self.end], &source) => {
                    if self.eof {
                        return Ok(None);
                    }
                    self.refill()?;
                }
                Err(source) => {
                    return Err(RecoveryError::Corrupt { path: self.path.clone(), offset: self.offset, source });
                }
            }
        }
    }

    /// Moves the undecoded bytes to the front and reads more behind them.
    fn refill(&mut self) -> Result<(), RecoveryError> {
        self.buf.copy_within(self.start..self.end, 0);
        (self.end, self.start) = (self.end - self.start, 0);
        while self.end < self.buf.len() {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(RecoveryError::Io { path: self.path.clone(), source }),
            }
        }
        Ok(())
    }

    /// After [`RecordReader::next_record`] returned `None`: the bytes of a
    /// torn tail (0 for a clean file), cut off the file with
    /// [`TornTail::Truncate`]. Before that nothing is known to be torn, and
    /// nothing is cut.
    ///
    /// # Errors
    /// Truncating failed.
    pub fn finish(self, torn_tail: TornTail) -> Result<u64, RecoveryError> {
        if !self.eof {
            return Ok(0);
        }
        let truncated = (self.end - self.start) as u64;
        if truncated > 0 && torn_tail == TornTail::Truncate {
            let io_err = |source| RecoveryError::Io { path: self.path.clone(), source };
            let file = OpenOptions::new().write(true).open(&self.path).map_err(io_err)?;
            file.set_len(self.offset).and_then(|()| file.sync_all()).map_err(io_err)?;
        }
        Ok(truncated)
    }
}

/// A checksum failure on the very last record of the file, whose bytes end
/// exactly at the end of the file, can be a torn write whose length field
/// made it to disk before the rest: treat it as torn, not corrupt. Anything
/// followed by more bytes is corruption.
fn is_torn_tail(rest: &[u8], error: &JournalError) -> bool {
    let declared = rest.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize + 4);
    matches!(error, JournalError::BadChecksum { .. }) && declared == Some(rest.len())
}

/// Where journal bytes go: a file, or in tests a simulated disk that can
/// lose everything not yet synced (the power-cut test).
pub trait JournalSink: Send {
    /// Appends bytes (not yet durable).
    ///
    /// # Errors
    /// The write failed.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable (`fdatasync`).
    ///
    /// # Errors
    /// The sync failed: nothing written since the last sync may be relied on.
    fn sync_data(&mut self) -> io::Result<()>;
}

impl JournalSink for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// The journal file itself: its writes and syncs pass the fault-injection
/// seam ([`carbonx_soup::files::check`]); the writer's errors name it.
struct JournalFile {
    file: File,
    path: PathBuf,
}

impl JournalSink for JournalFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        check(StorageOp::Write, &self.path)?;
        Write::write_all(&mut self.file, bytes)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        check(StorageOp::Sync, &self.path)?;
        self.file.sync_data()
    }
}

fn sink_away() -> io::Error {
    io::Error::other("the journal was used between commit_start and commit_finish")
}

fn sync_thread_stopped() -> io::Error {
    io::Error::other("the journal's sync thread stopped")
}

/// A sink handed to the sync thread, and what comes back.
type SyncResult = (Box<dyn JournalSink>, io::Result<()>, Duration);

/// The thread that runs a writer's `fdatasync` while the sequencer applies
/// the batch it covers (see [`JournalWriter::commit_start`]): the sink goes
/// there and comes back, so nothing is shared and nothing is locked.
struct Syncer {
    /// Requests; dropped to stop the thread.
    to: Option<Sender<Box<dyn JournalSink>>>,
    from: Receiver<SyncResult>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    fn start() -> io::Result<Syncer> {
        let (to, requests) = crossbeam::channel::bounded::<Box<dyn JournalSink>>(1);
        let (done, from) = crossbeam::channel::bounded(1);
        let thread = std::thread::Builder::new().name("carbonx-fsync".into()).spawn(move || {
            for mut sink in requests {
                let started = Instant::now();
                let synced = sink.sync_data();
                if done.send((sink, synced, started.elapsed())).is_err() {
                    return;
                }
            }
        })?;
        Ok(Syncer { to: Some(to), from, thread: Some(thread) })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Closing the request queue ends the thread.
        self.to = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Appends records to today's journal file.
pub struct JournalWriter {
    /// The sink; `None` while the sync thread has it.
    sink: Option<Box<dyn JournalSink>>,
    path: PathBuf,
    buffer: Vec<u8>,
    mode: FsyncMode,
    last_sync: Option<Duration>,
    syncer: Option<Syncer>,
}

impl JournalWriter {
    /// Opens (creating if needed) the journal of `date` in `dir` for
    /// appending; the directory (and each new parent) is synced, so that a
    /// new file's name survives a power cut like its records. New files
    /// and directories get `modes`.
    ///
    /// # Errors
    /// When the directory or file cannot be created or opened.
    pub fn open(dir: &Path, date: u32, mode: FsyncMode, modes: FileModes) -> io::Result<JournalWriter> {
        let path = journal_path(dir, date);
        // A new day's file: its name is synced before any record goes in.
        let file = carbonx_soup::files::create_file(&path, OpenOptions::new().create(true).append(true), modes)?;
        let file = JournalFile { file, path: path.clone() };
        Ok(JournalWriter::with_sink(path, Box::new(file), mode))
    }

    /// A writer over any sink; `path` names it in errors.
    pub fn with_sink(path: PathBuf, sink: Box<dyn JournalSink>, mode: FsyncMode) -> JournalWriter {
        JournalWriter {
            sink: Some(sink),
            path,
            buffer: Vec::with_capacity(1 << 20),
            mode,
            last_sync: None,
            syncer: None,
        }
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Buffers one record; nothing is durable until [`JournalWriter::commit`].
    pub fn append(&mut self, record: &Record) {
        journal::encode(record, &mut self.buffer);
    }

    /// Writes the buffered records and, unless the mode is `never`, waits
    /// until they are on stable storage.
    ///
    /// # Errors
    /// The write or sync failure: the caller must not release any reply.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.write_out()? && self.mode != FsyncMode::Never {
            let started = Instant::now();
            self.sink.as_mut().ok_or_else(sink_away)?.sync_data()?;
            self.last_sync = Some(started.elapsed());
        }
        Ok(())
    }

    /// [`JournalWriter::commit`] in two halves: writes the buffered records
    /// and starts their sync on a thread of its own, returning at once, so
    /// that the caller can apply the batch meanwhile; nothing about it may
    /// leave the process before [`JournalWriter::commit_finish`] says the
    /// records are durable.
    ///
    /// # Errors
    /// The write failed, or the sync thread could not be started.
    pub fn commit_start(&mut self) -> io::Result<()> {
        if !self.write_out()? || self.mode == FsyncMode::Never {
            return Ok(());
        }
        if self.syncer.is_none() {
            self.syncer = Some(Syncer::start()?);
        }
        let sink = self.sink.take().ok_or_else(sink_away)?;
        let to = self.syncer.as_ref().and_then(|s| s.to.as_ref()).expect("started above");
        to.send(sink).map_err(|_| sync_thread_stopped())
    }

    /// Waits for the sync [`JournalWriter::commit_start`] started (at once
    /// when none is under way).
    ///
    /// # Errors
    /// The sync failed: the caller must not release any reply.
    pub fn commit_finish(&mut self) -> io::Result<()> {
        if self.sink.is_some() {
            return Ok(());
        }
        let syncer = self.syncer.as_ref().expect("a sink away is at the sync thread");
        let (sink, synced, took) = syncer.from.recv().map_err(|_| sync_thread_stopped())?;
        self.sink = Some(sink);
        self.last_sync = Some(took);
        synced
    }

    /// Writes the buffered records to the sink; whether there were any.
    fn write_out(&mut self) -> io::Result<bool> {
        if self.buffer.is_empty() {
            return Ok(false);
        }
        let sink = self.sink.as_mut().ok_or_else(sink_away)?;
        let written = sink.write_all(&self.buffer);
        self.buffer.clear();
        written.map(|()| true)
    }

    /// How long the last commit's `fdatasync` took, once (for the metrics).
    pub fn take_sync_time(&mut self) -> Option<std::time::Duration> {
        self.last_sync.take()
    }

    /// The fsync mode.
    pub fn mode(&self) -> FsyncMode {
        self.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonx_engine::{Command, Seq, Timestamp};

    /// What a whole file reads back as.
    #[derive(Debug)]
    struct Recovered {
        records: Vec<Record>,
        truncated: u64,
    }

    /// Reads all of `path` through [`RecordReader`], as recovery does.
    fn read(path: &Path, torn_tail: TornTail) -> Result<Recovered, RecoveryError> {
        let mut reader = RecordReader::open(path)?;
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record);
        }
        let truncated = reader.finish(torn_tail)?;
        Ok(Recovered { records, truncated })
    }

    /// Reads all of `path`, cutting a torn tail off the file.
    fn recover(path: &Path) -> Result<Recovered, RecoveryError> {
        read(path, TornTail::Truncate)
    }

    fn record(n: u64) -> Record {
        Record { seq: Seq::new(n), timestamp: Timestamp::from_nanos(n * 10), command: Command::Clock }
    }

    fn write(dir: &Path, n: u64) -> PathBuf {
        let mut w = JournalWriter::open(dir, 20261124, FsyncMode::Batch, FileModes::default()).unwrap();
        for i in 1..=n {
            w.append(&record(i));
        }
        w.commit().unwrap();
        w.path().to_path_buf()
    }

    #[test]
    fn a_new_journal_file_syncs_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let before = carbonx_soup::files::dir_syncs_on_this_thread();
        JournalWriter::open(&tmp.path().join("data"), 20261124, FsyncMode::Batch, FileModes::default()).unwrap();
        // `data` in the temp dir, the journal in `data`.
        assert_eq!(carbonx_soup::files::dir_syncs_on_this_thread() - before, 2);
    }

    #[test]
    fn a_commit_in_two_halves_is_durable_after_the_second() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(tmp.path(), 20261124, FsyncMode::Batch, FileModes::default()).unwrap();
        w.commit_finish().unwrap(); // nothing under way: at once
        for round in 0..3u64 {
            for i in 1..=100 {
                w.append(&record(round * 100 + i));
            }
            w.commit_start().unwrap();
            w.commit_finish().unwrap();
            assert!(w.take_sync_time().is_some(), "the sync was timed");
        }
        w.append(&record(301));
        w.commit().unwrap(); // the sink came back: the one-piece commit works too
        w.append(&record(302));
        w.commit_start().unwrap(); // dropped with a sync under way: no hang, no loss
        let path = w.path().to_path_buf();
        drop(w);
        let seqs: Vec<u64> = read(&path, TornTail::Keep).unwrap().records.iter().map(|r| r.seq.get()).collect();
        assert_eq!(seqs, (1..=302).collect::<Vec<_>>());
    }

    #[test]
    fn clean_file_reads_back_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = write(&dir, 5);
        let got = recover(&path).unwrap();
        assert_eq!(got.records, (1..=5).map(record).collect::<Vec<_>>());
        assert_eq!(got.truncated, 0);
        assert_eq!(journal_files(&dir).unwrap(), vec![path]);
    }

    #[test]
    fn torn_tail_is_truncated_and_appending_continues() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = write(&dir, 3);
        let full = std::fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full - 3).unwrap();
        let got = recover(&path).unwrap();
        assert_eq!(got.records.len(), 2);
        assert!(got.truncated > 0);
        let mut w = JournalWriter::open(&dir, 20261124, FsyncMode::Never, FileModes::default()).unwrap();
        w.append(&record(3));
        w.commit().unwrap();
        assert_eq!(recover(&path).unwrap().records, (1..=3).map(record).collect::<Vec<_>>());
    }

    #[test]
    fn corruption_in_the_middle_names_file_and_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = write(&dir, 3);
        let mut bytes = std::fs::read(&path).unwrap();
        let second = bytes.len() / 3; // every Clock record has the same length
        bytes[second + 10] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let err = recover(&path).unwrap_err().to_string();
        assert!(err.contains("journal-20261124.cxj"), "{err}");
        assert!(err.contains(&format!("offset {second}")), "{err}");
    }

    /// Where each record starts, and the file's end.
    fn record_starts(path: &Path) -> Vec<u64> {
        let bytes = std::fs::read(path).unwrap();
        let mut starts = vec![0u64];
        while (*starts.last().unwrap() as usize) < bytes.len() {
            let at = *starts.last().unwrap() as usize;
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
            starts.push(at as u64 + 4 + len);
        }
        starts
    }

    #[test]
    fn records_across_read_chunks_cuts_and_flips_anywhere() {
        let tmp = tempfile::tempdir().unwrap();
        let n = 3 * READ_CHUNK as u64 / 20; // records of about 25 bytes: several chunks
        let path = write(tmp.path(), n);
        let starts = record_starts(&path);
        let clean = std::fs::read(&path).unwrap();
        assert_eq!(read(&path, TornTail::Keep).unwrap().records.len() as u64, n);
        let chunk = READ_CHUNK as u64;
        let positions = [1, 5, chunk - 3, chunk, chunk + 1, 2 * chunk - 1, 2 * chunk + 7, clean.len() as u64 - 1];
        for &at in &positions {
            let whole = starts.iter().filter(|&&s| s <= at).count() as u64 - 1;
            std::fs::write(&path, &clean[..at as usize]).unwrap();
            let got = read(&path, TornTail::Keep).unwrap();
            assert_eq!(got.records.len() as u64, whole, "cut at {at}");
            assert_eq!(got.truncated, at - starts[whole as usize], "cut at {at}");
            let mut flipped = clean.clone();
            flipped[at as usize] ^= 0x40;
            std::fs::write(&path, &flipped).unwrap();
            let hit = starts.iter().rposition(|&s| s <= at).unwrap();
            match read(&path, TornTail::Keep) {
                // Only a bad last record can be a torn tail.
                Ok(got) => {
                    assert_eq!(hit, starts.len() - 2, "flip at {at}: a bad record before the end was accepted");
                    assert_eq!(got.records.len(), hit, "flip at {at}");
                }
                Err(RecoveryError::Corrupt { offset, .. }) => assert_eq!(offset, starts[hit], "flip at {at}"),
                Err(err) => panic!("{err}"),
            }
        }
    }
}
