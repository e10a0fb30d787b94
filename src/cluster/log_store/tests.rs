//! The log store's tests (openraft's storage suite, reopening, torn tails,
//! purges, failing syncs), and the entry fixtures the state machine's
//! tests share.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use carbonx_soup::files::{FaultPlan, FileModes, StorageOp, install_faults};
use crossbeam::channel::{Receiver, unbounded};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, Membership, RaftLogReader, StorageError,
    Vote,
};
use tempfile::TempDir;

use super::frame::encode_frame;
use super::{LOG, LogStore, VOTE, storage_error};
use crate::cluster::state_machine::{Committed, StateMachine};
use crate::cluster::{Batch, Member, NodeId, TypeConfig};

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

impl StoreBuilder<TypeConfig, LogStore, StateMachine, (TempDir, Receiver<Committed>)> for Builder {
    async fn build(&self) -> Result<((TempDir, Receiver<Committed>), LogStore, StateMachine), StorageError<NodeId>> {
        let io = |e| storage_error(ErrorSubject::Store, ErrorVerb::Write, e);
        let dir = tempfile::tempdir().map_err(io)?;
        let raft = dir.path().join("raft");
        let (sink, receiver) = unbounded();
        let log = LogStore::open(&raft, FileModes::default()).map_err(io)?;
        let state_machine = StateMachine::open(&raft, FileModes::default(), sink, log.clone()).map_err(io)?;
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
async fn the_committed_hint_is_written_at_most_every_so_often_and_lags_safely() {
    for (every, reopened) in [(Duration::from_secs(3_600), 1), (Duration::ZERO, 2)] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(dir.path(), FileModes::default()).unwrap();
        log.set_hint_every(every);
        log.save_committed(Some(id(1, 1))).await.unwrap();
        log.save_committed(Some(id(1, 2))).await.unwrap();
        assert_eq!(log.committed_index(), Some(2), "known at once");
        drop(log);
        let mut log = LogStore::open(dir.path(), FileModes::default()).unwrap();
        assert_eq!(log.read_committed().await.unwrap(), Some(id(1, reopened)), "written every {every:?}");
        log.save_committed(Some(id(1, 3))).await.unwrap();
        log.write_committed_hint().unwrap(); // at a shutdown
        drop(log);
        let mut log = LogStore::open(dir.path(), FileModes::default()).unwrap();
        assert_eq!(log.read_committed().await.unwrap(), Some(id(1, 3)), "the last one, written at shutdown");
    }
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
