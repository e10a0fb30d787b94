//! Hands committed entries to the engine thread.
//!
//! The engine runs on its own thread and stays the only owner of the
//! books; this state machine does not hold it. It forwards each committed
//! entry, in log order, as an [`Applied`] on a channel, and the engine
//! thread applies the batches. The channel is unbounded on purpose: on the
//! leader the engine thread itself proposes and then blocks in
//! `client_write` until its own entry is applied, so a bounded channel
//! could fill while that thread waits, and `apply` would wait on the very
//! thread that waits on it.
//!
//! # Snapshots
//! A snapshot is the start of the trading day plus the day's log: the
//! engine's start-of-day snapshot ([`DayStart`], taken before the roll,
//! which is alone in its entry) and every batch from the roll to the last
//! applied entry, with that entry's log id and the membership. The batches
//! are not kept in memory: a build takes those of the current snapshot
//! from the day's roll on, and reads the ones applied since from the log
//! (which is only purged up to the current snapshot). The engine
//! thread reports each roll once it has applied it
//! ([`StateMachine::day_started`]); the node then asks openraft to build a
//! snapshot, and openraft purges the log up to it. So a node holds one
//! day's log, and a new or lagging node catches up by the day's start plus
//! the day's entries. Installing one sends the engine thread the day's
//! start (it starts over from there) unless it has already applied the
//! entry before the roll, then the batches it has not applied. The current
//! snapshot is persisted in `snapshot` (one frame, as in
//! [`super::log_store`], replaced atomically), and a restarted node sends
//! it to the engine thread again at [`StateMachine::open`] before openraft
//! re-applies the committed log after it.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use carbonx_soup::files::{self, FileModes};
use crossbeam::channel::Sender;
use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::log_store::{LogStore, read_small, write_small};
use super::{Batch, DayStart, Member, NodeId, TypeConfig};

/// The persisted current snapshot, in `<data>/raft`.
pub const SNAPSHOT: &str = "snapshot";

/// A committed entry for the engine thread, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Its log index.
    pub index: u64,
    /// The term of the leader that proposed it.
    pub term: u64,
    /// Its records; `None` for a blank or membership entry.
    pub batch: Option<Batch>,
}

/// What the engine thread is sent, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Committed {
    /// A committed entry.
    Entry(Applied),
    /// Start over from this day's start (a snapshot's): the day's entries,
    /// from its roll, follow.
    DayStart(Arc<DayStart>),
}

/// A snapshot's data: the day's start (none before the first roll) and
/// every batch applied since, as (index, term, batch).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SnapshotData {
    /// The day's start.
    pub day_start: Option<DayStart>,
    /// The batches from the day's roll (from the first entry before any roll).
    pub entries: Vec<(u64, u64, Batch)>,
}

/// [`SnapshotData`] encoded from a borrow (postcard encodes a slice and a
/// `Vec`, a reference and a value alike).
#[derive(Serialize)]
struct SnapshotDataRef<'a> {
    day_start: Option<&'a DayStart>,
    entries: &'a [(u64, u64, Batch)],
}

/// The `snapshot` file: the current snapshot's meta and data.
#[derive(Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Member>,
    data: Vec<u8>,
}

impl StoredSnapshot {
    /// As openraft hands it out.
    fn to_snapshot(&self) -> Snapshot<TypeConfig> {
        Snapshot { meta: self.meta.clone(), snapshot: Box::new(Cursor::new(self.data.clone())) }
    }

    /// Its day's start and batches.
    fn contents(&self) -> io::Result<SnapshotData> {
        postcard::from_bytes(&self.data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// What has been applied.
#[derive(Default)]
struct State {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Member>,
    /// The last day's start the engine thread reported.
    day_start: Option<Arc<DayStart>>,
    /// The current snapshot's batches from the day's roll on: (index, term,
    /// batch). Those applied after it are in the log.
    batches: Vec<(u64, u64, Batch)>,
    /// The current snapshot's last index: the log holds what follows.
    snapshot_index: u64,
    /// Batches applied after it: the log must hold as many.
    batches_since_snapshot: u64,
}

impl State {
    /// Records `entry` as applied; what the engine thread gets of it.
    fn apply(&mut self, entry: Entry<TypeConfig>) -> Applied {
        let log_id = entry.log_id;
        let (index, term) = (log_id.index, log_id.leader_id.term);
        self.last_applied = Some(log_id);
        let batch = match entry.payload {
            EntryPayload::Blank => None,
            EntryPayload::Normal(batch) => {
                self.batches_since_snapshot += 1;
                Some(batch)
            }
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(log_id), membership);
                None
            }
        };
        Applied { index, term, batch }
    }

    /// Takes the batches applied after the current snapshot from `log`,
    /// those of the day (from its roll) kept. The log must hold every
    /// batch applied since (openraft's suite applies no batch, and its log
    /// holds other entries than it applies: only batches are counted).
    fn take_from_log(&mut self, log: &LogStore) -> io::Result<()> {
        let last = self.last_applied.map_or(0, |id| id.index);
        if last <= self.snapshot_index {
            return Ok(());
        }
        let entries = log.entries(self.snapshot_index + 1..=last);
        let batches = entries.iter().filter(|e| matches!(e.payload, EntryPayload::Normal(_))).count() as u64;
        if batches != self.batches_since_snapshot {
            let (from, applied) = (self.snapshot_index + 1, self.batches_since_snapshot);
            let why = format!("the log holds {batches} batches from entry {from} to {last}, {applied} were applied");
            return Err(io::Error::new(io::ErrorKind::NotFound, why));
        }
        let day_from = self.day_start.as_ref().map_or(0, |day| day.roll_index);
        for entry in entries.into_iter().filter(|e| e.log_id.index >= day_from) {
            if let EntryPayload::Normal(batch) = entry.payload {
                self.batches.push((entry.log_id.index, entry.log_id.leader_id.term, batch));
            }
        }
        (self.snapshot_index, self.batches_since_snapshot) = (last, 0);
        Ok(())
    }

    /// A snapshot of it, named after its last applied log id (the same
    /// state gives the same bytes); [`State::take_from_log`] first.
    fn snapshot(&self) -> io::Result<StoredSnapshot> {
        let data = SnapshotDataRef { day_start: self.day_start.as_deref(), entries: &self.batches };
        let data = postcard::to_allocvec(&data).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let snapshot_id = self.last_applied.map_or_else(|| "none".to_owned(), |id| id.to_string());
        let meta =
            SnapshotMeta { last_log_id: self.last_applied, last_membership: self.membership.clone(), snapshot_id };
        Ok(StoredSnapshot { meta, data })
    }
}

/// What the clones of a [`StateMachine`] share.
struct Shared {
    /// `raft/`.
    dir: PathBuf,
    modes: FileModes,
    sink: Sender<Committed>,
    /// The Raft log, where a snapshot finds the batches applied since the last.
    log: LogStore,
    state: Mutex<State>,
    /// The current snapshot; its lock also orders the writes of its file.
    snapshot: Mutex<Option<StoredSnapshot>>,
}

/// The Raft state machine (see the module docs). Clones share it: the
/// snapshot builder openraft runs beside `apply` is one.
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

/// The engine thread is gone: nothing can apply entries any more.
fn engine_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the engine thread is gone")
}

/// Sends the batches after index `after` to `sink`.
fn forward(sink: &Sender<Committed>, batches: &[(u64, u64, Batch)], after: Option<u64>) -> io::Result<()> {
    for (index, term, batch) in batches.iter().filter(|(index, _, _)| after.is_none_or(|after| *index > after)) {
        let applied = Applied { index: *index, term: *term, batch: Some(batch.clone()) };
        sink.send(Committed::Entry(applied)).map_err(|_| engine_gone())?;
    }
    Ok(())
}

/// Sends the engine thread what it lacks of a snapshot, everything up to
/// entry `before` having been sent already: the day's start unless the
/// entry before its roll was sent, then the batches not sent yet.
fn forward_snapshot(
    sink: &Sender<Committed>,
    day_start: Option<&Arc<DayStart>>,
    batches: &[(u64, u64, Batch)],
    before: Option<u64>,
) -> io::Result<()> {
    let start_over = day_start.filter(|day| before.is_none_or(|before| before + 1 < day.roll_index));
    let after = match start_over {
        Some(day) => {
            sink.send(Committed::DayStart(Arc::clone(day))).map_err(|_| engine_gone())?;
            None
        }
        None => before,
    };
    forward(sink, batches, after)
}

/// `err` as openraft's storage error about the snapshot of `meta`.
fn snapshot_error(meta: &SnapshotMeta<NodeId, Member>, verb: ErrorVerb, err: io::Error) -> StorageError<NodeId> {
    StorageError::from_io_error(ErrorSubject::Snapshot(Some(meta.signature())), verb, err)
}

impl StateMachine {
    /// Opens the state machine in `dir` (`<data>/raft`, where `log` is),
    /// creating it if missing. If a snapshot was persisted, the day's start
    /// and its batches are sent to `sink` at once, so that a restarted
    /// engine thread starts from them.
    ///
    /// # Errors
    /// `dir` cannot be created, the snapshot cannot be read or is corrupt,
    /// or `sink`'s receiver is gone.
    pub fn open(dir: &Path, modes: FileModes, sink: Sender<Committed>, log: LogStore) -> io::Result<StateMachine> {
        files::create_dir_all(dir, modes)?;
        let path = dir.join(SNAPSHOT);
        let stored: Option<StoredSnapshot> = read_small(&path)?;
        let mut state = State::default();
        if let Some(stored) = &stored {
            let data = stored.contents().map_err(|e| files::named(&path, &e))?;
            state.day_start = data.day_start.map(Arc::new);
            state.batches = data.entries;
            state.last_applied = stored.meta.last_log_id;
            state.snapshot_index = stored.meta.last_log_id.map_or(0, |id| id.index);
            state.membership = stored.meta.last_membership.clone();
            forward_snapshot(&sink, state.day_start.as_ref(), &state.batches, None)?;
        }
        let (dir, state, snapshot) = (dir.to_path_buf(), Mutex::new(state), Mutex::new(stored));
        let shared = Shared { dir, modes, sink, log, state, snapshot };
        Ok(StateMachine { shared: Arc::new(shared) })
    }

    /// The persisted snapshot in `dir` (`<data>/raft`), for an offline
    /// replay: its last log index and data.
    ///
    /// # Errors
    /// The file cannot be read or is corrupt.
    pub fn read_snapshot(dir: &Path) -> io::Result<Option<(u64, SnapshotData)>> {
        let path = dir.join(SNAPSHOT);
        let Some(stored) = read_small::<StoredSnapshot>(&path)? else { return Ok(None) };
        let data = stored.contents().map_err(|e| files::named(&path, &e))?;
        Ok(Some((stored.meta.last_log_id.map_or(0, |id| id.index), data)))
    }

    /// The engine thread applied the roll of log entry `day.roll_index`:
    /// snapshots from now on start from `day`, and the batches before it
    /// are dropped. An older day than the one held is ignored.
    pub fn day_started(&self, day: DayStart) {
        let mut state = self.state();
        if state.day_start.as_ref().is_some_and(|held| held.roll_index >= day.roll_index) {
            return;
        }
        state.batches.retain(|(index, _, _)| *index >= day.roll_index);
        state.day_start = Some(Arc::new(day));
    }

    /// What has been applied, locked. Nothing panics while holding it.
    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current snapshot, locked. Nothing panics while holding it.
    fn current(&self) -> MutexGuard<'_, Option<StoredSnapshot>> {
        self.shared.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Persists `stored` and makes it current, unless (`keep_newer`) the
    /// current one is newer: a build that raced an install does not undo it.
    fn store(&self, stored: &StoredSnapshot, keep_newer: bool) -> io::Result<()> {
        let mut current = self.current();
        if keep_newer && current.as_ref().is_some_and(|c| c.meta.last_log_id > stored.meta.last_log_id) {
            return Ok(());
        }
        write_small(&self.shared.dir.join(SNAPSHOT), stored, self.shared.modes)?;
        *current = Some(stored.clone());
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let built = {
            let mut state = self.state();
            state.take_from_log(&self.shared.log).and_then(|()| state.snapshot())
        };
        let stored =
            built.map_err(|e| StorageError::from_io_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        self.store(&stored, true).map_err(|e| snapshot_error(&stored.meta, ErrorVerb::Write, e))?;
        Ok(stored.to_snapshot())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Member>), StorageError<NodeId>> {
        let state = self.state();
        Ok((state.last_applied, state.membership.clone()))
    }

    /// Records each entry and sends it to the engine thread; never blocks.
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.state();
        let mut replies = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let applied = state.apply(entry);
            self.shared.sink.send(Committed::Entry(applied)).map_err(|_| {
                StorageError::from_io_error(ErrorSubject::Apply(log_id), ErrorVerb::Write, engine_gone())
            })?;
            replies.push(());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    /// Persists the snapshot, takes its state, and sends the engine thread
    /// what it lacks of it (see [`forward_snapshot`]).
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let stored = StoredSnapshot { meta: meta.clone(), data: snapshot.into_inner() };
        let data = stored.contents().map_err(|e| snapshot_error(meta, ErrorVerb::Read, e))?;
        self.store(&stored, false).map_err(|e| snapshot_error(meta, ErrorVerb::Write, e))?;
        let mut state = self.state();
        let before = state.last_applied.map(|id| id.index);
        let day_start = data.day_start.map(Arc::new);
        *state = State {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            day_start,
            batches: data.entries,
            snapshot_index: meta.last_log_id.map_or(0, |id| id.index),
            batches_since_snapshot: 0,
        };
        forward_snapshot(&self.shared.sink, state.day_start.as_ref(), &state.batches, before)
            .map_err(|e| snapshot_error(meta, ErrorVerb::Write, e))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.current().as_ref().map(StoredSnapshot::to_snapshot))
    }
}

#[cfg(test)]
mod tests {
    use crossbeam::channel::{Receiver, unbounded};
    use openraft::Membership;
    use tempfile::TempDir;

    use super::*;
    use crate::cluster::log_store::tests::{blank, id, membership, normal};
    use openraft::storage::RaftLogStorageExt;

    fn open(dir: &TempDir) -> (StateMachine, Receiver<Committed>) {
        let (sink, receiver) = unbounded();
        let log = LogStore::open(dir.path(), FileModes::default()).expect("open the log");
        (StateMachine::open(dir.path(), FileModes::default(), sink, log).expect("open"), receiver)
    }

    /// Appends `entries` to the state machine's log, then applies them, as
    /// openraft does (a snapshot reads the day's batches from the log).
    async fn logged(
        sm: &mut StateMachine,
        entries: impl IntoIterator<Item = Entry<TypeConfig>>,
    ) -> Result<Vec<()>, StorageError<NodeId>> {
        let entries: Vec<_> = entries.into_iter().collect();
        sm.shared.log.clone().blocking_append(entries.clone()).await?;
        sm.apply(entries).await
    }

    /// The day so far: a blank entry, a membership change, two batches.
    fn day() -> Vec<Entry<TypeConfig>> {
        vec![blank(1, 1), membership(1, 2), normal(1, 3, b"first"), normal(2, 4, b"second")]
    }

    fn applied(index: u64, term: u64, records: Option<&[u8]>) -> Committed {
        Committed::Entry(Applied { index, term, batch: records.map(|r| Batch { records: r.to_vec() }) })
    }

    fn the_batches() -> Vec<Committed> {
        vec![applied(3, 1, Some(b"first")), applied(4, 2, Some(b"second"))]
    }

    fn membership_of(entry: &Entry<TypeConfig>) -> Membership<NodeId, Member> {
        match &entry.payload {
            EntryPayload::Membership(m) => m.clone(),
            _ => panic!("not a membership entry"),
        }
    }

    #[tokio::test]
    async fn apply_forwards_every_entry_in_order_with_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, receiver) = open(&dir);
        let replies = logged(&mut sm, day()).await.unwrap();
        assert_eq!(replies.len(), 4, "one reply per entry");
        let got: Vec<_> = receiver.try_iter().collect();
        let want =
            [applied(1, 1, None), applied(2, 1, None), applied(3, 1, Some(b"first")), applied(4, 2, Some(b"second"))];
        assert_eq!(got, want);
        let (last, members) = sm.applied_state().await.unwrap();
        assert_eq!(last, Some(id(2, 4)));
        assert_eq!(members, StoredMembership::new(Some(id(1, 2)), membership_of(&day()[1])));
    }

    #[tokio::test]
    async fn apply_fails_when_the_engine_thread_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, receiver) = open(&dir);
        drop(receiver);
        let err = sm.apply([normal(1, 1, b"lost")]).await.expect_err("nobody to apply it");
        assert!(err.to_string().contains("engine thread is gone"), "{err}");
    }

    #[tokio::test]
    async fn an_installed_snapshot_forwards_what_was_not_applied_yet() {
        let (leader_dir, fresh_dir, behind_dir) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut leader, _receiver) = open(&leader_dir);
        logged(&mut leader, day()).await.unwrap();
        let built = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(built.meta.last_log_id, Some(id(2, 4)));

        let (mut fresh, receiver) = open(&fresh_dir);
        fresh.install_snapshot(&built.meta, built.snapshot.clone()).await.unwrap();
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), the_batches(), "every batch, nothing else");
        assert_eq!(fresh.applied_state().await.unwrap(), leader.applied_state().await.unwrap());
        let current = fresh.get_current_snapshot().await.unwrap().expect("installed");
        assert_eq!(
            (current.meta, current.snapshot.into_inner()),
            (built.meta.clone(), built.snapshot.get_ref().clone())
        );

        let (mut behind, receiver) = open(&behind_dir);
        logged(&mut behind, day()[..3].to_vec()).await.unwrap();
        receiver.try_iter().for_each(drop);
        behind.install_snapshot(&built.meta, built.snapshot).await.unwrap();
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), the_batches()[1..], "only the batch after index 3");
        assert_eq!(behind.applied_state().await.unwrap().0, Some(id(2, 4)));
    }

    #[tokio::test]
    async fn reopen_forwards_the_persisted_snapshot_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, _receiver) = open(&dir);
        logged(&mut sm, day()).await.unwrap();
        let built = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        // Applied after the snapshot: openraft re-applies it from the log.
        logged(&mut sm, [normal(2, 5, b"third")]).await.unwrap();
        drop(sm);

        let (mut sm, receiver) = open(&dir);
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), the_batches(), "forwarded at open");
        let (last, members) = sm.applied_state().await.unwrap();
        assert_eq!((last, members), (Some(id(2, 4)), built.meta.last_membership.clone()));
        let current = sm.get_current_snapshot().await.unwrap().expect("persisted");
        assert_eq!(current.meta, built.meta);

        // An installed snapshot is persisted too.
        let other = tempfile::tempdir().unwrap();
        let (mut installed, _receiver) = open(&other);
        installed.install_snapshot(&built.meta, built.snapshot).await.unwrap();
        drop(installed);
        let (_, receiver) = open(&other);
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), the_batches());
    }

    #[tokio::test]
    async fn a_build_that_races_an_install_does_not_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, _receiver) = open(&dir);
        logged(&mut sm, day()[..2].to_vec()).await.unwrap();
        let mut builder = sm.get_snapshot_builder().await;
        let old = sm.state().snapshot().unwrap();

        let leader = tempfile::tempdir().unwrap();
        let (mut leader, _receiver) = open(&leader);
        logged(&mut leader, day()).await.unwrap();
        let newer = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
        sm.install_snapshot(&newer.meta, newer.snapshot).await.unwrap();

        sm.store(&old, true).unwrap();
        let current = sm.get_current_snapshot().await.unwrap().expect("installed");
        assert_eq!(current.meta.last_log_id, Some(id(2, 4)), "the older build is dropped");
        let rebuilt = builder.build_snapshot().await.unwrap();
        assert_eq!(rebuilt.meta.last_log_id, Some(id(2, 4)));
    }

    /// The day so far, then a roll alone in entry 5 and one more batch.
    fn two_days() -> (Vec<Entry<TypeConfig>>, DayStart) {
        let mut entries = day();
        entries.extend([normal(2, 5, b"roll"), normal(2, 6, b"next day")]);
        (entries, DayStart { roll_index: 5, file: b"start of day".to_vec() })
    }

    fn the_next_day(day_start: &DayStart) -> Vec<Committed> {
        vec![
            Committed::DayStart(Arc::new(day_start.clone())),
            applied(5, 2, Some(b"roll")),
            applied(6, 2, Some(b"next day")),
        ]
    }

    #[tokio::test]
    async fn a_snapshot_after_a_roll_is_the_day_start_and_the_days_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (mut leader, _receiver) = open(&dir);
        let (entries, day_start) = two_days();
        logged(&mut leader, entries.clone()).await.unwrap();
        leader.day_started(day_start.clone());
        let built = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(built.meta.last_log_id, Some(id(2, 6)));
        let (last, data) = StateMachine::read_snapshot(dir.path()).unwrap().expect("persisted");
        assert_eq!(last, 6);
        assert_eq!(data.day_start.as_ref(), Some(&day_start));
        assert_eq!(data.entries.iter().map(|e| e.0).collect::<Vec<_>>(), [5, 6], "the old day's batches are gone");

        // An older day reported late changes nothing.
        leader.day_started(DayStart { roll_index: 3, file: b"older".to_vec() });
        assert_eq!(leader.state().day_start.as_deref(), Some(&day_start));

        // A fresh node, and one that missed the roll, start over from the day's start.
        for applied_before in [0, 3] {
            let other = tempfile::tempdir().unwrap();
            let (mut node, receiver) = open(&other);
            logged(&mut node, entries[..applied_before].to_vec()).await.unwrap();
            receiver.try_iter().for_each(drop);
            node.install_snapshot(&built.meta, built.snapshot.clone()).await.unwrap();
            assert_eq!(receiver.try_iter().collect::<Vec<_>>(), the_next_day(&day_start), "{applied_before}");
        }
        // One that applied the entry before the roll only needs what follows.
        let other = tempfile::tempdir().unwrap();
        let (mut node, receiver) = open(&other);
        logged(&mut node, entries[..4].to_vec()).await.unwrap();
        receiver.try_iter().for_each(drop);
        node.install_snapshot(&built.meta, built.snapshot.clone()).await.unwrap();
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), the_next_day(&day_start)[1..]);
        drop(node);

        // Restarted, it starts over from the day's start again.
        let (_node, receiver) = open(&other);
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), the_next_day(&day_start));
    }

    #[tokio::test]
    async fn a_build_refuses_when_the_log_lacks_an_applied_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sm, _receiver) = open(&dir);
        logged(&mut sm, day()).await.unwrap();
        sm.apply([normal(2, 5, b"never logged")]).await.unwrap();
        let err = sm.get_snapshot_builder().await.build_snapshot().await.expect_err("a batch is missing");
        assert!(err.to_string().contains("2 batches from entry 1 to 5, 3 were applied"), "{err}");
    }
}
