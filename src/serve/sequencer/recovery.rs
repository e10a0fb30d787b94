//! Recovery: restoring a snapshot and replaying the journal files after it
//! through the same `apply_one` as the live loop, so that the
//! engine, the taken tokens and the published streams come out exactly as
//! they were.

use super::live::take_seq;
use super::{Publisher, ReplayStart, Sequencer, SequencerError};
use crate::serve::journal_file::{self, RecoveryError, TornTail};
use crate::serve::snapshot_file::{self, SnapshotFile, SnapshotFileError};
use carbonx_engine::journal::Record;
use carbonx_engine::snapshot::SnapshotError as EngineSnapshotError;
use carbonx_engine::{Engine, Token, UserId};
use crossbeam::channel::{Receiver, Sender};
use std::path::{Path, PathBuf};

/// Records decoded ahead of the engine in a replay: enough to look
/// [`super::PREFETCH_AHEAD`] commands ahead, few enough to stay in the cache.
pub(super) const REPLAY_BATCH: usize = 64;
/// Batches a replay's reader thread may have decoded ahead of the engine.
const READ_AHEAD: usize = 16;

/// Whether a start-of-day snapshot may be used when its day's end-of-day
/// files (trades, positions, statistics) were never written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayFiles {
    /// Skip such a snapshot: the server replays that day from an older
    /// one, and writes the files when the replay crosses the day's end.
    Needed,
    /// Use it anyway: an offline replay writes no files.
    NotNeeded,
}

/// Why a snapshot cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The file cannot be read, or is not a good snapshot file.
    #[error(transparent)]
    File(#[from] SnapshotFileError),
    /// A start-of-day snapshot whose day's end-of-day files are missing,
    /// with [`DayFiles::Needed`].
    #[error("{} missing: that day is replayed to write it", statistics.display())]
    DayFilesMissing {
        /// The day's statistics file, the last one written.
        statistics: PathBuf,
    },
    /// The engine refused the state (another version or market).
    #[error(transparent)]
    Engine(#[from] EngineSnapshotError),
}

impl<P: Publisher> Sequencer<P> {
    /// Replays every journal file in the data directory, oldest first,
    /// publishing as live (so that the sessions' streams are rebuilt).
    /// Returns the number of records replayed.
    ///
    /// # Errors
    /// A corrupt journal or a sequence gap.
    pub fn recover(&mut self) -> Result<u64, SequencerError> {
        let start = self.restore_latest_snapshot(DayFiles::Needed);
        self.replay_from(TornTail::Truncate, &start)
    }

    /// Restores the newest start-of-day snapshot that reads, restores and
    /// (with [`DayFiles::Needed`]) whose day's end-of-day files were written;
    /// an unusable one is logged and the next older one tried. Without any,
    /// the replay starts from the first journal file.
    pub fn restore_latest_snapshot(&mut self, day_files: DayFiles) -> ReplayStart {
        let none = ReplayStart { snapshot: None, from: None };
        let Some(dir) = self.data_dir.clone() else { return none };
        let files = snapshot_file::roll_snapshots(&dir).unwrap_or_else(|err| {
            tracing::warn!(%err, "cannot list the snapshots; replaying every journal file");
            Vec::new()
        });
        for path in files {
            match self.try_restore(&path, &dir, day_files) {
                Ok(start) => return start,
                Err(reason) => tracing::warn!(file = %path.display(), %reason, "snapshot not used"),
            }
        }
        none
    }

    /// Restores `path` if it can be used; the replay's start.
    ///
    /// # Errors
    /// A [`RestoreError`]: the file does not read, its day's end-of-day
    /// files are missing (with [`DayFiles::Needed`]), or it does not fit
    /// this market.
    pub fn try_restore(&mut self, path: &Path, dir: &Path, day_files: DayFiles) -> Result<ReplayStart, RestoreError> {
        let file = snapshot_file::read(path)?;
        let statistics = crate::serve::eod::statistics_path(dir, file.journal_date);
        if day_files == DayFiles::Needed && file.kind == snapshot_file::START_OF_DAY && !statistics.exists() {
            return Err(RestoreError::DayFilesMissing { statistics });
        }
        self.restore_state(&file)?;
        tracing::info!(file = %path.display(), date = file.journal_date, from = file.next_seq, "restored a snapshot");
        Ok(ReplayStart { snapshot: Some(path.to_path_buf()), from: Some((file.journal_date, file.next_seq)) })
    }

    /// Takes the state `file` holds: the engine, the last timestamp, the
    /// taken tokens, the next sequence number; after a start-of-day
    /// snapshot nothing is published until the new day begins.
    ///
    /// # Errors
    /// The engine refused the state (another version or market).
    pub(super) fn restore_state(&mut self, file: &SnapshotFile) -> Result<(), EngineSnapshotError> {
        self.engine = Engine::restore(self.engine.config().clone(), &file.engine)?;
        self.last_ts = file.last_ts;
        self.next_seq = file.next_seq;
        self.taken = file.taken.iter().map(|&(user, token)| (UserId::new(user), Token::from_bytes(token))).collect();
        self.mute_until_new_day = file.kind == snapshot_file::START_OF_DAY;
        Ok(())
    }

    /// Replays the journal like [`Sequencer::recover`]; with
    /// [`TornTail::Keep`] the files are only read (a torn tail is reported,
    /// not cut).
    ///
    /// # Errors
    /// A corrupt journal or a sequence gap.
    pub fn replay_journal(&mut self, torn_tail: TornTail) -> Result<u64, SequencerError> {
        self.replay_from(torn_tail, &ReplayStart { snapshot: None, from: None })
    }

    /// Replays the journal from `start` (every file when it names none):
    /// files of earlier days are not even read.
    ///
    /// # Errors
    /// A corrupt journal or a sequence gap.
    pub fn replay_from(&mut self, torn_tail: TornTail, start: &ReplayStart) -> Result<u64, SequencerError> {
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
            count += self.replay_file(&path, if skip { first_seq } else { 0 }, torn_tail)?;
            self.publisher.flush();
        }
        self.taken_room = 0;
        Ok(count)
    }

    /// Replays one journal file from sequence number `first_seq` on; the
    /// number of records applied.
    ///
    /// A second thread reads, checks and decodes the file a few batches
    /// ahead while this one applies: decoding is a large part of a replay.
    fn replay_file(&mut self, path: &Path, first_seq: u64, torn_tail: TornTail) -> Result<u64, SequencerError> {
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
            let truncated = reading.join().expect("the journal reader does not panic").finish(torn_tail)?;
            if truncated > 0 {
                tracing::warn!(file = %path.display(), bytes = truncated, ?torn_tail, "torn journal tail");
            }
            Ok(count)
        })
    }

    /// Applies the records of `batch` from sequence number `first_seq` on.
    fn apply_batch(&mut self, path: &Path, batch: &[Record], first_seq: u64) -> Result<u64, SequencerError> {
        let first = batch.partition_point(|r| r.seq.get() < first_seq);
        for (i, record) in batch.iter().enumerate().skip(first) {
            self.prefetch_ahead(|i| batch.get(i).map(|r| &r.command), i);
            self.check_sequence(|| path.to_path_buf(), record)?;
            self.publisher.replaying(record.seq.get(), record.timestamp, &record.command);
            self.apply_one(&record.command, record.timestamp);
        }
        Ok((batch.len() - first) as u64)
    }

    /// Checks that `record` (of the journal file or Raft entry `path`
    /// names, built only for the error) is the next one, and moves past it.
    pub(super) fn check_sequence(&mut self, path: impl Fn() -> PathBuf, record: &Record) -> Result<(), SequencerError> {
        if record.seq.get() != self.next_seq {
            let (found, expected_before) = (record.seq.get(), self.next_seq - 1);
            return Err(SequencerError::Gap { path: path(), found, expected_before });
        }
        take_seq(&mut self.next_seq, &record.command);
        self.last_ts = self.last_ts.max(record.timestamp.nanos());
        Ok(())
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
