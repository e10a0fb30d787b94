//! Snapshot files: the engine's state ([`carbonx_engine::snapshot`]) with
//! where it sits in the journal, so that recovery starts from it instead
//! of the first day.
//!
//! `DATA/snapshots/YYYYMMDD.snap` is written by the sequencer just before
//! it applies the roll that ends day `YYYYMMDD` (the roll is that day's
//! last journal record): recovery restores the newest one and replays
//! from that roll, so it replays at most one day. `now-YYYYMMDD-SEQ.snap`
//! is the operator's on-demand snapshot (`carbonx admin snapshot`): a
//! point-in-time copy for `carbonx replay --snapshot`; recovery does not
//! start from it, because the day's sessions and feed are rebuilt from
//! the day's first record.
//!
//! Format: one header line `carbonx-snapshot 1 <bytes> <crc32c hex>\n`,
//! then the JSON body of that many bytes. Written to a temporary file,
//! synced, renamed, and the directory synced: a crash leaves the old file
//! or the new one, never half of one.

use carbonx_engine::snapshot::Snapshot;
use carbonx_soup::files;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const MAGIC: &str = "carbonx-snapshot 1";

/// [`SnapshotFile::kind`] of the snapshot written before a roll.
pub const START_OF_DAY: &str = "start-of-day";
/// [`SnapshotFile::kind`] of the operator's snapshot.
pub const ON_DEMAND: &str = "on-demand";

/// What a snapshot file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// The journal file (`YYYYMMDD`) the state continues with.
    pub journal_date: u32,
    /// The sequence number of the first record in it not reflected in the state.
    pub next_seq: u64,
    /// The last journal timestamp applied (ns), so that time never runs back.
    pub last_ts: u64,
    /// `start-of-day` (before a roll) or `on-demand`.
    pub kind: String,
    /// The day's order tokens taken so far (user, token bytes): a resend
    /// of one after the snapshot is ignored as it was live. Empty before a
    /// roll (the roll clears them).
    #[serde(default)]
    pub taken: Vec<(u16, [u8; 14])>,
    /// The engine's state.
    pub engine: Snapshot,
}

/// A snapshot file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a snapshot, truncated, or its checksum does not match.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The snapshot directory of a data directory.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// The start-of-day snapshot written before day `date`'s roll.
pub fn roll_path(data_dir: &Path, date: u32) -> PathBuf {
    snapshot_dir(data_dir).join(format!("{date:08}.snap"))
}

/// Writes `file` to `path` atomically; new files and directories get
/// `modes`. Returns the bytes written ([`encode`]), for a caller that
/// also hands them on (a cluster node gives Raft the day's start).
///
/// # Errors
/// An I/O failure, naming the file.
pub fn write(path: &Path, file: &SnapshotFile, modes: files::FileModes) -> Result<Vec<u8>, SnapshotFileError> {
    let io = |source| SnapshotFileError::Io { path: path.to_path_buf(), source };
    let bytes = encode(file).map_err(io)?;
    files::create_dir_all(files::parent_dir(path), modes).map_err(io)?;
    files::write_atomically(path, &bytes, modes).map_err(io)?;
    Ok(bytes)
}

/// The bytes of `file` as a snapshot file holds them (what [`decode`] reads).
///
/// # Errors
/// The engine's state does not encode (a bug).
pub fn encode(file: &SnapshotFile) -> std::io::Result<Vec<u8>> {
    let body = serde_json::to_vec(file).map_err(std::io::Error::other)?;
    let mut bytes = format!("{MAGIC} {} {:08x}\n", body.len(), crc32c::crc32c(&body)).into_bytes();
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Reads and checks a snapshot file.
///
/// # Errors
/// I/O, or a corrupt file (bad header, short body, checksum, JSON), naming the file.
pub fn read(path: &Path) -> Result<SnapshotFile, SnapshotFileError> {
    let bytes = std::fs::read(path).map_err(|source| SnapshotFileError::Io { path: path.to_path_buf(), source })?;
    decode(&bytes, path)
}

/// Checks and decodes the bytes of a snapshot file read from `path` (the
/// name errors give).
///
/// # Errors
/// A corrupt file: bad header, short body, checksum, JSON.
pub fn decode(bytes: &[u8], path: &Path) -> Result<SnapshotFile, SnapshotFileError> {
    let corrupt = |reason: &str| SnapshotFileError::Corrupt { path: path.to_path_buf(), reason: reason.to_string() };
    let newline = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| corrupt("no header line"))?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| corrupt("header is not text"))?;
    let rest = header.strip_prefix(MAGIC).ok_or_else(|| corrupt("not a carbonx snapshot (version 1)"))?;
    let mut fields = rest.split_whitespace();
    let len: usize = fields.next().and_then(|f| f.parse().ok()).ok_or_else(|| corrupt("bad length"))?;
    let crc = fields.next().and_then(|f| u32::from_str_radix(f, 16).ok()).ok_or_else(|| corrupt("bad checksum"))?;
    let body = &bytes[newline + 1..];
    if body.len() != len {
        return Err(corrupt(&format!("body is {} bytes, the header says {len}: truncated", body.len())));
    }
    if crc32c::crc32c(body) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    serde_json::from_slice(body).map_err(|e| corrupt(&format!("body: {e}")))
}

/// The start-of-day snapshots of `data_dir`, newest first.
///
/// # Errors
/// The directory cannot be listed.
pub fn roll_snapshots(data_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let is_roll =
        |name: &str| name.len() == 13 && name.ends_with(".snap") && name[..8].bytes().all(|b| b.is_ascii_digit());
    let mut files = crate::serve::journal_file::files_named(&snapshot_dir(data_dir), is_roll)?;
    files.reverse();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonx_engine::{Engine, EngineConfig};

    fn file() -> SnapshotFile {
        let engine = Engine::new(EngineConfig::demo()).unwrap();
        SnapshotFile {
            journal_date: 20261124,
            next_seq: 42,
            last_ts: 7,
            kind: "start-of-day".into(),
            taken: vec![(3, *b"ORDER1        ")],
            engine: engine.snapshot(),
        }
    }

    #[test]
    fn the_first_snapshot_syncs_the_new_snapshot_directory_and_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let before = files::dir_syncs_on_this_thread();
        write(&roll_path(dir.path(), 20261124), &file(), files::FileModes::default()).unwrap();
        // `snapshots` in the data directory, the file in `snapshots`.
        assert_eq!(files::dir_syncs_on_this_thread() - before, 2);
    }

    #[test]
    fn a_snapshot_file_round_trips_and_any_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = roll_path(dir.path(), 20261124);
        write(&path, &file(), files::FileModes::default()).unwrap();
        assert_eq!(read(&path).unwrap(), file());
        assert_eq!(roll_snapshots(dir.path()).unwrap(), std::slice::from_ref(&path));
        let good = std::fs::read(&path).unwrap();
        let damaged = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            read(&path).unwrap_err().to_string()
        };
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(damaged(&flipped).contains("checksum"));
        assert!(damaged(&good[..good.len() - 10]).contains("truncated"));
        assert!(damaged(b"hello\n{}").contains("not a carbonx snapshot"));
        assert!(damaged(b"").contains("no header"));
        assert!(damaged(&good[..good.len() - 10]).contains("20261124.snap"), "the error names the file");
    }
}
