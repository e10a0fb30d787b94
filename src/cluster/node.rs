//! One running cluster node: openraft started over the log store, the
//! state machine and the network; the watcher that turns Raft's view into
//! "this node takes orders" or not; the `/cluster` status.

use super::config::ClusterConfig;
use super::log_store::LogStore;
use super::network::{self, Network};
use super::state_machine::{Committed, StateMachine};
use super::{Batch, DayStart, Member, NodeId, TypeConfig};
use crate::admin::api::{ClusterView, MemberView};
use crate::serve::metrics::RaftFigures;
use crate::serve::sequencer::Replication;
use carbonx_soup::failstop::FailStop;
use carbonx_soup::files::FileModes;
use openraft::{Raft, ServerState};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How long a new leader waits for its first commit (the blank entry of
/// its term) before it tries again on the next change of Raft's metrics.
const FIRST_COMMIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a cluster node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `[cluster]` does not make sense.
    #[error("[cluster]: {0}")]
    Config(String),
    /// The Raft log or snapshot files.
    #[error("raft storage: {0}")]
    Storage(std::io::Error),
    /// The Raft listener or runtime.
    #[error("raft: {0}")]
    Io(std::io::Error),
    /// openraft refused to start.
    #[error("raft: {0}")]
    Raft(String),
}

/// Opens (`true`) or closes (`false`) what only the leader serves.
pub type OnLeadership = Arc<dyn Fn(bool) + Send + Sync>;

/// The term in which this node leads and has applied everything committed
/// before it (0: it does not lead).
#[derive(Debug, Default)]
pub struct Leadership {
    ready_term: AtomicU64,
}

impl Leadership {
    /// True while this node may take orders.
    pub fn is_leading(&self) -> bool {
        self.ready_term.load(Ordering::Acquire) != 0
    }
}

/// A running node of the cluster.
pub struct ClusterNode {
    raft: Raft<TypeConfig>,
    runtime: tokio::runtime::Runtime,
    log: LogStore,
    machine: StateMachine,
    leadership: Arc<Leadership>,
    applied: Arc<AtomicU64>,
    shutdown: watch::Sender<bool>,
    id: NodeId,
}

impl ClusterNode {
    /// Starts Raft on `<data_dir>/raft`: committed entries go to `sink`
    /// (the engine thread), `on_leadership(true)` opens what only the
    /// leader serves (order entry, MoldUDP64) once this node leads and has
    /// applied its term's first commit, `on_leadership(false)` closes it
    /// when it stops leading, and a Raft that stops (a storage fault)
    /// throws `failstop`.
    ///
    /// # Errors
    /// A bad `[cluster]`, unreadable Raft files, a port that cannot be bound.
    pub fn start(
        config: &ClusterConfig,
        data_dir: &Path,
        modes: FileModes,
        sink: crossbeam::channel::Sender<Committed>,
        on_leadership: OnLeadership,
        failstop: Arc<FailStop>,
    ) -> Result<ClusterNode, ClusterError> {
        config.validate().map_err(ClusterError::Config)?;
        let me = config.me().ok_or_else(|| ClusterError::Config("this node is not a member".into()))?.clone();
        let raft_config = Arc::new(config.raft_config().validate().map_err(|e| ClusterError::Config(e.to_string()))?);
        // One thread: openraft's core, replication and RPCs are short steps
        // between waits; on a busy machine a second worker only added
        // wake-ups (p50 at 100k msg/s 10.5-11.1 ms against 12.7-12.8 ms).
        let runtime = crate::serve::named_runtime(1, "carbonx-raft").map_err(ClusterError::Io)?;
        let dir = data_dir.join("raft");
        let log = LogStore::open(&dir, modes).map_err(ClusterError::Storage)?;
        let machine = StateMachine::open(&dir, modes, sink, log.clone()).map_err(ClusterError::Storage)?;
        on_leadership(false);
        let raft = runtime
            .block_on(Raft::new(config.node, raft_config, Network::default(), log.clone(), machine.clone()))
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        runtime.block_on(initialize_once(&raft, config))?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(me.raft)).map_err(ClusterError::Io)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        runtime.spawn(network::serve(listener, raft.clone(), shutdown_rx.clone()));
        let leadership = Arc::new(Leadership::default());
        let watcher = Watcher { raft: raft.clone(), leadership: Arc::clone(&leadership), on_leadership, failstop };
        runtime.spawn(watcher.run(shutdown_rx));
        let applied = Arc::new(AtomicU64::new(0));
        Ok(ClusterNode { raft, runtime, log, machine, leadership, applied, shutdown, id: config.node })
    }

    /// The sequencer's side: proposals and the leadership check.
    pub fn replication(&self) -> Box<dyn Replication> {
        Box::new(RaftReplication {
            raft: self.raft.clone(),
            handle: self.runtime.handle().clone(),
            leadership: Arc::clone(&self.leadership),
            machine: self.machine.clone(),
        })
    }

    /// The last log index the engine applied (the sequencer stores it).
    pub fn applied(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.applied)
    }

    /// Reads its Raft figures for `/metrics`; holds handles, not the node
    /// (the node, and its runtime, end at the server's shutdown).
    pub fn figures(&self) -> impl Fn() -> RaftFigures + Send + Sync + 'static {
        let (raft, log) = (self.raft.clone(), self.log.clone());
        let (leadership, applied) = (Arc::clone(&self.leadership), Arc::clone(&self.applied));
        move || {
            let metrics = raft.metrics().borrow().clone();
            RaftFigures {
                term: metrics.current_term,
                leading: leadership.is_leading(),
                last_log_index: metrics.last_log_index.unwrap_or(0),
                commit_index: log.committed_index().unwrap_or(0),
                applied_index: applied.load(Ordering::Acquire),
                snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
                purged_index: metrics.purged.map_or(0, |id| id.index),
            }
        }
    }

    /// What `/cluster` shows, but the state hash (read on the engine thread).
    pub fn view(&self, state_hash: u64, applied_index: u64) -> ClusterView {
        let metrics = self.raft.metrics().borrow().clone();
        let role = match metrics.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner | ServerState::Shutdown => "learner",
        };
        let members = metrics
            .membership_config
            .nodes()
            .map(|(id, m)| MemberView {
                id: *id,
                raft: m.raft.clone(),
                order_entry: m.order_entry.clone(),
                admin: m.admin.clone(),
            })
            .collect();
        ClusterView {
            node: self.id,
            role: role.into(),
            term: metrics.current_term,
            leader: metrics.current_leader,
            commit_index: self.log.committed_index().unwrap_or(0),
            applied_index,
            state_hash: format!("{state_hash:#018x}"),
            members,
        }
    }

    /// Adds `id` as a voter: first as a learner that catches up, then in
    /// the membership (openraft's joint consensus). Leader only.
    ///
    /// # Errors
    /// This node does not lead, or the change failed.
    pub async fn add_member(&self, id: NodeId, member: Member) -> Result<(), String> {
        self.raft.add_learner(id, member, true).await.map_err(|e| e.to_string())?;
        let mut voters = self.voters();
        voters.insert(id);
        self.raft.change_membership(voters, false).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Removes `id` from the membership (a dead machine being replaced).
    ///
    /// # Errors
    /// This node does not lead, or the change failed.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), String> {
        let mut voters = self.voters();
        if !voters.remove(&id) {
            return Err(format!("node {id} is not a member"));
        }
        self.raft.change_membership(voters, false).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// True while this node leads and takes orders.
    pub fn is_leading(&self) -> bool {
        self.leadership.is_leading()
    }

    /// The admin address of the leader this node knows of.
    pub fn leader_admin(&self) -> Option<String> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        metrics.membership_config.nodes().find(|(id, _)| **id == leader).map(|(_, m)| m.admin.clone())
    }

    /// The voting members now.
    pub fn voters(&self) -> std::collections::BTreeSet<NodeId> {
        self.raft.metrics().borrow().membership_config.membership().voter_ids().collect()
    }

    /// Stops Raft and its listener (the runtime ends when the node is dropped).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let _ = self.runtime.block_on(self.raft.shutdown());
        if let Err(err) = self.log.write_committed_hint() {
            tracing::warn!(%err, "the committed index hint not written at shutdown");
        }
    }
}

/// Initializes a node whose log is empty with the configured members (every
/// founding node does, with the same members: openraft takes it once,
/// elections sort out the rest; a node with a log keeps its membership).
/// A joining node (`join = true`) waits to be added by the leader.
async fn initialize_once(raft: &Raft<TypeConfig>, config: &ClusterConfig) -> Result<(), ClusterError> {
    let initialized = raft.is_initialized().await.map_err(|e| ClusterError::Raft(e.to_string()))?;
    if !initialized && !config.join {
        if let Err(err) = raft.initialize(config.membership()).await {
            tracing::debug!(%err, "raft already initialized");
        }
    }
    Ok(())
}

/// Follows Raft's metrics: opens order entry when this node leads and has
/// applied its term's first commit (everything before it is then in the
/// engine), closes it the moment it stops leading, and stops the server
/// when Raft stops on a fault.
struct Watcher {
    raft: Raft<TypeConfig>,
    leadership: Arc<Leadership>,
    on_leadership: OnLeadership,
    failstop: Arc<FailStop>,
}

impl Watcher {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut metrics = self.raft.metrics();
        loop {
            let (state, term, running) = {
                let m = metrics.borrow_and_update();
                (m.state, m.current_term, m.running_state.clone())
            };
            if let Err(fatal) = running {
                self.stopped(
                    &format!("raft stopped: {fatal}"),
                    &shutdown,
                    matches!(fatal, openraft::error::Fatal::Stopped),
                );
                return;
            }
            if state == ServerState::Leader {
                self.lead(term).await;
            } else if self.leadership.ready_term.swap(0, Ordering::AcqRel) != 0 {
                tracing::warn!(term, ?state, "no longer the leader: order entry closed");
                (self.on_leadership)(false);
            }
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() {
                    // Raft's core is gone without saying why (it panicked).
                    self.stopped("raft stopped: its core task ended", &shutdown, false);
                    return;
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Raft stopped: order entry closes; unless the server asked it to stop
    /// (a shutdown), that is a fault and throws the fail-stop switch.
    fn stopped(&self, why: &str, shutdown: &watch::Receiver<bool>, asked: bool) {
        self.leadership.ready_term.store(0, Ordering::Release);
        (self.on_leadership)(false);
        if !(asked || *shutdown.borrow()) {
            self.failstop.trip(why);
        }
    }

    /// Opens order entry once the term's first commit is applied.
    async fn lead(&self, term: u64) {
        if self.leadership.ready_term.load(Ordering::Acquire) == term {
            return;
        }
        match tokio::time::timeout(FIRST_COMMIT_TIMEOUT, self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => {
                self.leadership.ready_term.store(term, Ordering::Release);
                (self.on_leadership)(true);
                tracing::info!(term, "leader: order entry open");
            }
            Ok(Err(err)) => tracing::info!(term, %err, "leader not confirmed"),
            Err(_) => tracing::info!(term, "leader: first commit not applied yet"),
        }
    }
}

/// Proposals from the engine thread (a plain thread: it blocks on the
/// Raft runtime until the entry is committed and applied).
struct RaftReplication {
    raft: Raft<TypeConfig>,
    handle: tokio::runtime::Handle,
    leadership: Arc<Leadership>,
    machine: StateMachine,
}

impl Replication for RaftReplication {
    /// Hands the batch to Raft's core in order (`client_write_ff` only
    /// queues it), and watches its answer on the Raft runtime: a refusal
    /// means this node no longer leads.
    fn propose(&mut self, records: Vec<u8>) {
        let answer = match self.handle.block_on(self.raft.client_write_ff(Batch { records })) {
            Ok(answer) => answer,
            Err(fatal) => {
                tracing::error!(%fatal, "raft stopped: proposal dropped");
                self.leadership.ready_term.store(0, Ordering::Release);
                return;
            }
        };
        let leadership = Arc::clone(&self.leadership);
        self.handle.spawn(async move {
            if let Ok(Err(err)) = answer.await {
                tracing::warn!(%err, "proposal refused: not the leader");
                leadership.ready_term.store(0, Ordering::Release);
            }
        });
    }

    fn leading(&self) -> bool {
        self.leadership.is_leading()
    }

    /// Snapshots start from `day` now; openraft builds one at once and
    /// purges the log up to it (`max_in_snapshot_log_to_keep = 0`).
    fn day_started(&mut self, day: DayStart) {
        self.machine.day_started(day);
        let raft = self.raft.clone();
        self.handle.spawn(async move {
            if let Err(fatal) = raft.trigger().snapshot().await {
                tracing::warn!(%fatal, "no snapshot after the roll");
            }
        });
    }
}
