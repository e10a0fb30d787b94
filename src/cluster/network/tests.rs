//! The fixtures the network's tests share, and the client and server
//! tested against each other over loopback TCP.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use openraft::Raft;
use openraft::error::{Fatal, InstallSnapshotError, RPCError, RaftError, SnapshotMismatch};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{
    AnyError, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, SnapshotSegmentId, StorageError,
    StorageIOError, StoredMembership, Vote,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{MAX_FRAME_LEN, Network, PeerClient, RaftRpc, serve};
use crate::cluster::{Batch, Member, NodeId, TypeConfig};

/// A term the mock answers with a fatal error, to test remote errors.
const FAIL_TERM: u64 = 99;
/// Deadline for RPCs that should succeed (generous: shared CI cores).
const TTL: Duration = Duration::from_secs(5);
/// Slack allowed past a deadline before a test calls it missed.
const SLACK: Duration = Duration::from_secs(2);

pub(super) fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn member(i: u64) -> Member {
    Member {
        raft: format!("10.0.0.{i}:7100"),
        order_entry: format!("10.0.0.{i}:7200"),
        admin: format!("10.0.0.{i}:7300"),
    }
}

fn membership() -> Membership<NodeId, Member> {
    let voters = BTreeSet::from([1, 2, 3]);
    let nodes: BTreeMap<_, _> = (1..=4).map(|i| (i, member(i))).collect();
    Membership::new(vec![voters], nodes)
}

fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
    Entry { log_id: log_id(3, index), payload }
}

pub(super) fn append_request(term: u64, entries: Vec<Entry<TypeConfig>>) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(term, 1),
        prev_log_id: Some(log_id(2, 6)),
        entries,
        leader_commit: Some(log_id(2, 5)),
    }
}

pub(super) fn all_payloads() -> Vec<Entry<TypeConfig>> {
    vec![
        entry(7, EntryPayload::Blank),
        entry(8, EntryPayload::Normal(Batch { records: vec![0, 1, 2, 0xff, 0x80] })),
        entry(9, EntryPayload::Membership(membership())),
    ]
}

pub(super) fn vote_request() -> VoteRequest<NodeId> {
    VoteRequest { vote: Vote::new(4, 2), last_log_id: Some(log_id(3, 9)) }
}

pub(super) fn snapshot_request(offset: u64) -> InstallSnapshotRequest<TypeConfig> {
    InstallSnapshotRequest {
        vote: Vote::new_committed(3, 1),
        meta: SnapshotMeta {
            last_log_id: Some(log_id(3, 9)),
            last_membership: StoredMembership::new(Some(log_id(3, 9)), membership()),
            snapshot_id: "3-9-17".to_string(),
        },
        offset,
        data: (0..=255).collect(),
        done: true,
    }
}

pub(super) fn storage_fatal() -> Fatal<NodeId> {
    let io = StorageIOError::write_logs(AnyError::error("disk full").add_context(|| "appending entries"));
    Fatal::StorageError(StorageError::IO { source: io })
}

pub(super) fn mismatch(id: &str, offset: u64) -> InstallSnapshotError {
    InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
        expect: SnapshotSegmentId { id: id.to_string(), offset: 0 },
        got: SnapshotSegmentId { id: id.to_string(), offset },
    })
}

// -- client and server ---------------------------------------------------

/// Answers from the request alone, so a test can tell its reply arrived
/// intact: votes are echoed, entries acknowledged up to the last one.
#[derive(Clone)]
struct Mock;

impl RaftRpc for Mock {
    async fn append_entries(
        &self,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        if req.vote.leader_id.term == FAIL_TERM {
            return Err(RaftError::Fatal(storage_fatal()));
        }
        Ok(match req.entries.last() {
            None => AppendEntriesResponse::Success,
            Some(last) => AppendEntriesResponse::PartialSuccess(Some(last.log_id)),
        })
    }

    async fn vote(&self, req: VoteRequest<NodeId>) -> Result<VoteResponse<NodeId>, RaftError<NodeId>> {
        Ok(VoteResponse { vote: req.vote, vote_granted: true, last_log_id: req.last_log_id })
    }

    async fn install_snapshot(
        &self,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        if req.offset != 0 {
            return Err(RaftError::APIError(mismatch(&req.meta.snapshot_id, req.offset)));
        }
        Ok(InstallSnapshotResponse { vote: req.vote })
    }
}

struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(serve(listener, Mock, shutdown));
        Self { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).expect("server listening");
        tokio::time::timeout(SLACK, self.task).await.expect("serve returns on shutdown").expect("no panic");
    }
}

/// Compile-time check: a node can spawn `serve` over its `Raft`.
#[allow(dead_code)]
fn serve_over_raft_is_send(listener: TcpListener, raft: Raft<TypeConfig>, shutdown: watch::Receiver<bool>) {
    fn is_send<T: Send>(_: T) {}
    is_send(serve(listener, raft, shutdown));
}

/// A client for node 2 at `addr`, made the way openraft makes one.
async fn client(addr: SocketAddr) -> PeerClient {
    let node = Member { raft: addr.to_string(), ..Member::default() };
    Network::new(Duration::from_secs(1)).new_client(2, &node).await
}

fn opt(ttl: Duration) -> RPCOption {
    RPCOption::new(ttl)
}

#[tokio::test]
async fn client_gets_each_reply_from_the_server() {
    let server = Server::start("127.0.0.1:0".parse().unwrap()).await;
    let mut c = client(server.addr).await;

    let vote = c.vote(vote_request(), opt(TTL)).await.expect("vote reply");
    assert_eq!(vote, VoteResponse { vote: Vote::new(4, 2), vote_granted: true, last_log_id: Some(log_id(3, 9)) });

    let heartbeat = c.append_entries(append_request(3, vec![]), opt(TTL)).await.expect("heartbeat reply");
    assert_eq!(heartbeat, AppendEntriesResponse::Success);
    let appended = c.append_entries(append_request(3, all_payloads()), opt(TTL)).await.expect("append reply");
    assert_eq!(appended, AppendEntriesResponse::PartialSuccess(Some(log_id(3, 9))));

    let snap = c.install_snapshot(snapshot_request(0), opt(TTL)).await.expect("snapshot reply");
    assert_eq!(snap.vote, Vote::new_committed(3, 1));
    server.stop().await;
}

#[tokio::test]
async fn a_remote_raft_error_is_a_remote_error_and_keeps_the_connection_usable() {
    let server = Server::start("127.0.0.1:0".parse().unwrap()).await;
    let mut c = client(server.addr).await;

    match c.append_entries(append_request(FAIL_TERM, vec![]), opt(TTL)).await {
        Err(RPCError::RemoteError(e)) => {
            assert_eq!(e.target, 2);
            assert_eq!(e.source, RaftError::Fatal(storage_fatal()));
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    match c.install_snapshot(snapshot_request(4096), opt(TTL)).await {
        Err(RPCError::RemoteError(e)) => assert_eq!(e.source, RaftError::APIError(mismatch("3-9-17", 4096))),
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert!(c.conn.is_some(), "a reply, even an error, leaves the connection in sync");
    assert!(c.vote(vote_request(), opt(TTL)).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn no_server_is_unreachable_within_the_deadline() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let mut c = client(addr).await;
    let ttl = Duration::from_millis(500);
    let started = Instant::now();
    let got = c.vote(vote_request(), opt(ttl)).await;
    assert!(matches!(got, Err(RPCError::Unreachable(_))), "{got:?}");
    assert!(started.elapsed() < ttl + SLACK);
}

#[tokio::test]
async fn a_peer_that_never_replies_fails_at_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accepts and holds the connection, never answers.
    let silent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    });
    let mut c = client(addr).await;
    let ttl = Duration::from_millis(300);
    let started = Instant::now();
    let got = c.vote(vote_request(), opt(ttl)).await;
    let elapsed = started.elapsed();
    assert!(matches!(got, Err(RPCError::Unreachable(_))), "{got:?}");
    assert!(elapsed >= ttl && elapsed < ttl + SLACK, "{elapsed:?}");
    assert!(c.conn.is_none(), "a connection with a reply still owed is not reused");
    silent.abort();
}

#[tokio::test]
async fn client_reconnects_after_the_server_restarts() {
    let server = Server::start("127.0.0.1:0".parse().unwrap()).await;
    let addr = server.addr;
    let mut c = client(addr).await;
    assert!(c.vote(vote_request(), opt(TTL)).await.is_ok());
    server.stop().await;

    // The old connection was closed by the server; then nobody listens.
    for _ in 0..2 {
        let got = c.vote(vote_request(), opt(TTL)).await;
        assert!(matches!(got, Err(RPCError::Unreachable(_))), "{got:?}");
    }

    let server = Server::start(addr).await;
    let vote = c.vote(vote_request(), opt(TTL)).await.expect("a fresh connection to the new server");
    assert!(vote.vote_granted);
    server.stop().await;
}

#[tokio::test]
async fn bad_frames_close_their_connection_only() {
    let server = Server::start("127.0.0.1:0".parse().unwrap()).await;
    let garbage = [3u32.to_le_bytes().as_slice(), &[0xff, 0xff, 0xff]].concat();
    let oversized = u32::MAX.to_le_bytes().to_vec();
    for bytes in [garbage, oversized] {
        let mut raw = TcpStream::connect(server.addr).await.expect("connect");
        raw.write_all(&bytes).await.expect("write");
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(SLACK, raw.read(&mut buf)).await.expect("server closes promptly");
        assert!(matches!(read, Ok(0) | Err(_)), "no reply to a bad frame: {read:?}");
    }
    let mut c = client(server.addr).await;
    assert!(c.vote(vote_request(), opt(TTL)).await.is_ok(), "the server still serves others");
    server.stop().await;
}

#[tokio::test]
async fn an_append_too_large_for_a_frame_asks_openraft_to_split_it() {
    let half = (MAX_FRAME_LEN / 2 + 1) as usize;
    let big = |i| entry(i, EntryPayload::Normal(Batch { records: vec![0; half] }));
    // Nothing listens: the request must be refused before any connect.
    let mut c = client("127.0.0.1:1".parse().unwrap()).await;
    match c.append_entries(append_request(3, vec![big(7), big(8)]), opt(TTL)).await {
        Err(RPCError::PayloadTooLarge(_)) => {}
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
}
