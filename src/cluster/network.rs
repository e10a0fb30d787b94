//! Raft's RPCs between nodes: postcard frames over TCP.
//!
//! Each message is a frame `[u32 LE length][postcard body]`. A client
//! ([`PeerClient`]) keeps one connection to a peer's `raft` address and has
//! one request in flight on it (openraft uses one client per replication
//! stream, so a second connection would buy nothing). The server ([`serve`])
//! answers each connection's requests in order through any [`RaftRpc`]:
//! [`openraft::Raft`] in a node, a mock in the tests.
//!
//! These are peer connections inside the cluster, not a public port; still,
//! bytes from the network never panic the node or make it allocate far more
//! than arrived: a frame above [`MAX_FRAME_LEN`] or one that does not decode closes
//! its connection.

use std::future::Future;
use std::time::Duration;

use openraft::Raft;
use openraft::error::{InstallSnapshotError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Member, NodeId, TypeConfig};

/// The largest frame body either side accepts or sends. openraft sends
/// snapshots in chunks of 3 MiB by default and append-entries batches are
/// bounded by `max_payload_entries`, so 64 MiB is generous for a legitimate
/// peer while keeping a corrupt or hostile length from costing gigabytes.
pub const MAX_FRAME_LEN: u32 = 64 << 20;

/// How long a server connection may sit without a complete request before it
/// is closed: a leader heartbeats many times a second, so a minute of silence
/// means the peer is gone (or stuck), and its socket should not be kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default bound on establishing a connection; the RPC's own deadline
/// still applies when it is shorter.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Pause after a failed `accept` (e.g. `EMFILE`): retrying at once would spin
/// on the same error while the condition persists.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// The first read buffer for a frame body: the buffer grows only as bytes
/// arrive, so a peer's claimed length is never allocated up front.
const INITIAL_BODY_CAPACITY: usize = 64 << 10;

/// A request from a Raft node to a peer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum RaftRequest {
    /// Replicate log entries (or heartbeat).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Ask for a vote.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The peer's answer to a [`RaftRequest`], of the same variant.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RaftReply {
    /// Answer to [`RaftRequest::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RaftRequest::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RaftRequest::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
}

/// Why a frame could not be read or written. Every variant ends the
/// connection: after any of them the byte stream's framing is unknown.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix (or the encoded message) is above [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the bound of {MAX_FRAME_LEN} bytes")]
    TooLarge(u64),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {got} of {expected} bytes")]
    Truncated {
        /// Bytes the frame needed (header or body).
        expected: usize,
        /// Bytes that arrived before the end.
        got: usize,
    },
    /// The body is not a valid postcard message of the expected type.
    #[error("frame does not decode: {0}")]
    Codec(#[from] postcard::Error),
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `msg` as one frame (header and body in one buffer, so that it
/// goes out in one write).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = postcard::to_extend(msg, vec![0u8; 4])?;
    let body_len = buf.len() - 4;
    let len =
        u32::try_from(body_len).ok().filter(|&n| n <= MAX_FRAME_LEN).ok_or(FrameError::TooLarge(body_len as u64))?;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    Ok(buf)
}

/// Writes `msg` as one frame.
pub async fn write_frame<W, T>(writer: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let frame = encode_frame(msg)?;
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame and decodes it. `Ok(None)` is a clean end of stream
/// between frames (the peer closed); an end inside a frame is
/// [`FrameError::Truncated`].
pub async fn read_frame<R, T>(reader: &mut R) -> Result<Option<T>, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut header = [0u8; 4];
    let got = read_full(reader, &mut header).await?;
    if got == 0 {
        return Ok(None);
    }
    if got < header.len() {
        return Err(FrameError::Truncated { expected: header.len(), got });
    }
    let len = body_len(header)?;
    let mut body = Vec::with_capacity(len.min(INITIAL_BODY_CAPACITY));
    reader.take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(FrameError::Truncated { expected: len, got: body.len() });
    }
    Ok(Some(postcard::from_bytes(&body)?))
}

/// The body length a header announces, checked against [`MAX_FRAME_LEN`]
/// before anything is allocated for it.
fn body_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header);
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(u64::from(len)));
    }
    // `MAX_FRAME_LEN` fits every supported target's `usize`.
    Ok(len as usize)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read
/// (unlike `read_exact`, this tells a clean end from a truncated header).
async fn read_full<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = reader.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// openraft's network factory: hands out a [`PeerClient`] per target.
#[derive(Clone, Debug)]
pub struct Network {
    connect_timeout: Duration,
}

impl Network {
    /// A factory whose clients give up connecting after `connect_timeout`
    /// (or the RPC's deadline, whichever is sooner).
    pub fn new(connect_timeout: Duration) -> Self {
        Self { connect_timeout }
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new(DEFAULT_CONNECT_TIMEOUT)
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        PeerClient::new(target, node.clone(), self.connect_timeout)
    }
}

/// Why an RPC got no reply. All of these are reported to openraft as
/// [`Unreachable`], so that it backs off instead of piling requests on a peer
/// that is down or stuck.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("connect to {0}: timed out")]
    ConnectTimeout(String),
    #[error("no reply within {0:?}")]
    Deadline(Duration),
    #[error("peer closed the connection before replying")]
    Closed,
    #[error("reply does not match the request")]
    Mismatch,
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// A connection to one peer's Raft RPC port.
///
/// The connection is made lazily and dropped after any failure; the next RPC
/// reconnects. An RPC owns the stream while it runs, so if openraft cancels it
/// (its own deadline) the half-used stream is dropped with it and never reused
/// with a reply still in flight.
#[derive(Debug)]
pub struct PeerClient {
    target: NodeId,
    node: Member,
    connect_timeout: Duration,
    conn: Option<TcpStream>,
}

impl PeerClient {
    /// A client for `target` at `node.raft`; nothing is connected yet.
    pub fn new(target: NodeId, node: Member, connect_timeout: Duration) -> Self {
        Self { target, node, connect_timeout, conn: None }
    }

    /// Sends `frame` and waits for its reply, all within `deadline`.
    async fn call(&mut self, frame: &[u8], deadline: Duration) -> Result<RaftReply, CallError> {
        let stream = self.conn.take();
        let (stream, reply) = tokio::time::timeout(deadline, self.exchange(stream, frame))
            .await
            .map_err(|_| CallError::Deadline(deadline))??;
        self.conn = Some(stream);
        Ok(reply)
    }

    /// One request and its reply on `stream` (or on a new connection).
    async fn exchange(&self, stream: Option<TcpStream>, frame: &[u8]) -> Result<(TcpStream, RaftReply), CallError> {
        let mut stream = match stream {
            Some(s) => s,
            None => self.connect().await?,
        };
        stream.write_all(frame).await.map_err(FrameError::from)?;
        // Trust boundary: an error reply may nest `AnyError` sources, and
        // serde decodes them recursively, so a peer could nest them deep
        // enough to exhaust this task's stack. Replies come only from
        // configured cluster members, which this accepts.
        let reply = read_frame(&mut stream).await?.ok_or(CallError::Closed)?;
        Ok((stream, reply))
    }

    async fn connect(&self) -> Result<TcpStream, CallError> {
        let addr = &self.node.raft;
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr.as_str()))
            .await
            .map_err(|_| CallError::ConnectTimeout(addr.clone()))?
            .map_err(|source| CallError::Connect { addr: addr.clone(), source })?;
        // Raft messages are small and latency-bound: never wait for Nagle.
        stream.set_nodelay(true).map_err(|source| CallError::Connect { addr: addr.clone(), source })?;
        Ok(stream)
    }

    /// Runs one RPC and maps its outcome into openraft's terms: no reply is
    /// [`Unreachable`]; a reply of the wrong kind is [`Unreachable`] too (the
    /// peer speaks something else, and the connection is dropped); an error
    /// from the peer's Raft is a [`RemoteError`].
    async fn rpc<T, E>(
        &mut self,
        frame: Result<Vec<u8>, FrameError>,
        option: &RPCOption,
        pick: impl FnOnce(RaftReply) -> Option<Result<T, RaftError<NodeId, E>>>,
    ) -> Result<T, RPCError<NodeId, Member, RaftError<NodeId, E>>>
    where
        E: std::error::Error,
    {
        let frame = frame.map_err(|e| self.unreachable(&CallError::Frame(e)))?;
        let reply = self.call(&frame, option.hard_ttl()).await.map_err(|e| self.unreachable(&e))?;
        match pick(reply) {
            Some(Ok(resp)) => Ok(resp),
            Some(Err(e)) => Err(RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e))),
            None => {
                self.conn = None;
                Err(self.unreachable(&CallError::Mismatch))
            }
        }
    }

    fn unreachable<E>(&self, err: &CallError) -> RPCError<NodeId, Member, RaftError<NodeId, E>>
    where
        E: std::error::Error,
    {
        tracing::debug!(target_node = self.target, addr = %self.node.raft, error = %err, "raft rpc failed");
        RPCError::Unreachable(Unreachable::new(err))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let entries = rpc.entries.len() as u64;
        let frame = match encode_frame(&RaftRequest::AppendEntries(rpc)) {
            // Too large for one frame: openraft retries with fewer entries.
            Err(FrameError::TooLarge(_)) if entries > 1 => {
                return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries / 2)));
            }
            other => other,
        };
        self.rpc(frame, &option, |r| match r {
            RaftReply::AppendEntries(r) => Some(r),
            _ => None,
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.rpc(encode_frame(&RaftRequest::Vote(rpc)), &option, |r| match r {
            RaftReply::Vote(r) => Some(r),
            _ => None,
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.rpc(encode_frame(&RaftRequest::InstallSnapshot(rpc)), &option, |r| match r {
            RaftReply::InstallSnapshot(r) => Some(r),
            _ => None,
        })
        .await
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// What the RPC server needs from a Raft node: the three RPC entry points.
/// [`openraft::Raft`] in a node; a split out trait so that the transport can
/// be tested against a mock without storage.
pub trait RaftRpc: Clone + Send + Sync + 'static {
    /// [`Raft::append_entries`].
    fn append_entries(
        &self,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> impl Future<Output = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> + Send;

    /// [`Raft::vote`].
    fn vote(
        &self,
        req: VoteRequest<NodeId>,
    ) -> impl Future<Output = Result<VoteResponse<NodeId>, RaftError<NodeId>>> + Send;

    /// [`Raft::install_snapshot`].
    fn install_snapshot(
        &self,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> impl Future<Output = Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> + Send;
}

impl RaftRpc for Raft<TypeConfig> {
    async fn append_entries(
        &self,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        Raft::append_entries(self, req).await
    }

    async fn vote(&self, req: VoteRequest<NodeId>) -> Result<VoteResponse<NodeId>, RaftError<NodeId>> {
        Raft::vote(self, req).await
    }

    async fn install_snapshot(
        &self,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        Raft::install_snapshot(self, req).await
    }
}

/// Serves Raft RPCs on `listener` until `shutdown` becomes true (or its
/// sender is dropped: then nobody is left to stop the server). Returns once
/// the listener and every connection are closed, so that a restart can bind
/// the same port and no old connection answers for the old server.
pub async fn serve<R: RaftRpc>(listener: TcpListener, raft: R, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    tracing::warn!(error = %e, "raft rpc connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(serve_connection(stream, peer, raft.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: wait for descriptors to free up.
                    tracing::debug!(error = %e, "raft rpc accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// Resolves once `shutdown` is true or its sender is gone (the borrow of
/// the value ends here, so that `serve`'s future stays `Send`).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Answers one connection's requests in order until the peer closes it, sends
/// something malformed, falls silent for [`IDLE_TIMEOUT`] or stops reading.
async fn serve_connection<R: RaftRpc>(mut stream: TcpStream, peer: std::net::SocketAddr, raft: R) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "raft rpc: TCP_NODELAY");
    }
    loop {
        let req = match tokio::time::timeout(IDLE_TIMEOUT, read_frame::<_, RaftRequest>(&mut stream)).await {
            Ok(Ok(Some(req))) => req,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "raft rpc: bad frame, closing");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "raft rpc: idle, closing");
                return;
            }
        };
        let reply = dispatch(&raft, req).await;
        match tokio::time::timeout(IDLE_TIMEOUT, write_frame(&mut stream, &reply)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "raft rpc: reply not sent, closing");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "raft rpc: peer not reading replies, closing");
                return;
            }
        }
    }
}

/// Hands a request to Raft; the reply has the request's variant.
async fn dispatch<R: RaftRpc>(raft: &R, req: RaftRequest) -> RaftReply {
    match req {
        RaftRequest::AppendEntries(r) => RaftReply::AppendEntries(raft.append_entries(r).await),
        RaftRequest::Vote(r) => RaftReply::Vote(raft.vote(r).await),
        RaftRequest::InstallSnapshot(r) => RaftReply::InstallSnapshot(raft.install_snapshot(r).await),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::SocketAddr;
    use std::time::Instant;

    use openraft::error::{Fatal, SnapshotMismatch};
    use openraft::{
        AnyError, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, SnapshotSegmentId,
        StorageError, StorageIOError, StoredMembership, Vote,
    };
    use tokio::task::JoinHandle;

    use super::*;
    use crate::cluster::Batch;

    /// A term the mock answers with a fatal error, to test remote errors.
    const FAIL_TERM: u64 = 99;
    /// Deadline for RPCs that should succeed (generous: shared CI cores).
    const TTL: Duration = Duration::from_secs(5);
    /// Slack allowed past a deadline before a test calls it missed.
    const SLACK: Duration = Duration::from_secs(2);

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
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

    fn append_request(term: u64, entries: Vec<Entry<TypeConfig>>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(term, 1),
            prev_log_id: Some(log_id(2, 6)),
            entries,
            leader_commit: Some(log_id(2, 5)),
        }
    }

    fn all_payloads() -> Vec<Entry<TypeConfig>> {
        vec![
            entry(7, EntryPayload::Blank),
            entry(8, EntryPayload::Normal(Batch { records: vec![0, 1, 2, 0xff, 0x80] })),
            entry(9, EntryPayload::Membership(membership())),
        ]
    }

    fn vote_request() -> VoteRequest<NodeId> {
        VoteRequest { vote: Vote::new(4, 2), last_log_id: Some(log_id(3, 9)) }
    }

    fn snapshot_request(offset: u64) -> InstallSnapshotRequest<TypeConfig> {
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

    fn storage_fatal() -> Fatal<NodeId> {
        let io = StorageIOError::write_logs(AnyError::error("disk full").add_context(|| "appending entries"));
        Fatal::StorageError(StorageError::IO { source: io })
    }

    fn mismatch(id: &str, offset: u64) -> InstallSnapshotError {
        InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
            expect: SnapshotSegmentId { id: id.to_string(), offset: 0 },
            got: SnapshotSegmentId { id: id.to_string(), offset },
        })
    }

    fn roundtrip<T: Serialize + DeserializeOwned>(msg: &T) -> T {
        let frame = encode_frame(msg).expect("encodes");
        let mut reader: &[u8] = &frame;
        let decoded = block_on(read_frame(&mut reader)).expect("decodes").expect("one frame");
        assert!(reader.is_empty(), "the frame's length covers exactly its body");
        decoded
    }

    /// Runs a future on a throwaway current-thread runtime (the codec tests
    /// read from byte slices, which never wait).
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    // -- codec ---------------------------------------------------------------

    #[test]
    fn append_entries_request_roundtrips_every_payload_kind() {
        let req = append_request(3, all_payloads());
        let RaftRequest::AppendEntries(back) = roundtrip(&RaftRequest::AppendEntries(req.clone())) else {
            panic!("variant changed");
        };
        assert_eq!(back.vote, req.vote);
        assert_eq!(back.prev_log_id, req.prev_log_id);
        assert_eq!(back.leader_commit, req.leader_commit);
        assert_eq!(back.entries, req.entries);
    }

    #[test]
    fn vote_request_roundtrips() {
        let RaftRequest::Vote(back) = roundtrip(&RaftRequest::Vote(vote_request())) else {
            panic!("variant changed");
        };
        assert_eq!(back, vote_request());
    }

    #[test]
    fn install_snapshot_request_roundtrips() {
        let RaftRequest::InstallSnapshot(back) = roundtrip(&RaftRequest::InstallSnapshot(snapshot_request(42))) else {
            panic!("variant changed");
        };
        assert_eq!(back, snapshot_request(42));
    }

    #[test]
    fn append_entries_replies_roundtrip_including_errors() {
        let replies = [
            Ok(AppendEntriesResponse::Success),
            Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(3, 8)))),
            Ok(AppendEntriesResponse::PartialSuccess(None)),
            Ok(AppendEntriesResponse::Conflict),
            Ok(AppendEntriesResponse::HigherVote(Vote::new(5, 3))),
            Err(RaftError::Fatal(storage_fatal())),
            Err(RaftError::Fatal(Fatal::Stopped)),
            Err(RaftError::Fatal(Fatal::Panicked)),
        ];
        for r in replies {
            let reply = RaftReply::AppendEntries(r);
            assert_eq!(roundtrip(&reply), reply);
        }
    }

    #[test]
    fn vote_replies_roundtrip_including_errors() {
        let granted = VoteResponse { vote: Vote::new(4, 2), vote_granted: true, last_log_id: Some(log_id(3, 9)) };
        let refused = VoteResponse { vote: Vote::new_committed(5, 3), vote_granted: false, last_log_id: None };
        for r in [Ok(granted), Ok(refused), Err(RaftError::Fatal(storage_fatal()))] {
            let reply = RaftReply::Vote(r);
            assert_eq!(roundtrip(&reply), reply);
        }
    }

    #[test]
    fn install_snapshot_replies_roundtrip_including_errors() {
        let replies = [
            Ok(InstallSnapshotResponse { vote: Vote::new_committed(3, 1) }),
            Err(RaftError::APIError(mismatch("3-9-17", 4096))),
            Err(RaftError::Fatal(storage_fatal())),
        ];
        for r in replies {
            let reply = RaftReply::InstallSnapshot(r);
            assert_eq!(roundtrip(&reply), reply);
        }
    }

    #[test]
    fn frame_is_little_endian_length_then_postcard_body() {
        let req = RaftRequest::Vote(vote_request());
        let frame = encode_frame(&req).expect("encodes");
        let body = postcard::to_allocvec(&req).expect("encodes");
        assert_eq!(frame[..4], (body.len() as u32).to_le_bytes());
        assert_eq!(frame[4..], body[..]);
    }

    #[test]
    fn length_bound_is_inclusive() {
        assert_eq!(body_len(MAX_FRAME_LEN.to_le_bytes()).expect("at the bound"), MAX_FRAME_LEN as usize);
        let over = MAX_FRAME_LEN + 1;
        assert!(matches!(body_len(over.to_le_bytes()), Err(FrameError::TooLarge(n)) if n == u64::from(over)));
    }

    #[test]
    fn oversized_length_is_rejected_before_reading_the_body() {
        let mut bytes = u32::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let mut reader: &[u8] = &bytes;
        let got = block_on(read_frame::<_, RaftRequest>(&mut reader));
        assert!(matches!(got, Err(FrameError::TooLarge(n)) if n == u64::from(u32::MAX)), "{got:?}");
        assert_eq!(reader.len(), 8, "nothing past the header is read");
    }

    #[test]
    fn truncated_frames_are_errors() {
        let frame = encode_frame(&RaftRequest::Vote(vote_request())).expect("encodes");
        for cut in [1, 3, 4, frame.len() - 1] {
            let mut reader: &[u8] = &frame[..cut];
            let got = block_on(read_frame::<_, RaftRequest>(&mut reader));
            assert!(matches!(got, Err(FrameError::Truncated { .. })), "cut at {cut}: {got:?}");
        }
        let mut empty: &[u8] = &[];
        let got = block_on(read_frame::<_, RaftRequest>(&mut empty));
        assert!(matches!(got, Ok(None)), "a clean end between frames: {got:?}");
    }

    #[test]
    fn a_long_claim_with_a_short_body_is_truncated_not_allocated() {
        // 60 MiB claimed, 10 bytes sent: an error, after buffering only what came.
        let mut bytes = (60u32 << 20).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[7; 10]);
        let mut reader: &[u8] = &bytes;
        let got = block_on(read_frame::<_, RaftRequest>(&mut reader));
        assert!(matches!(got, Err(FrameError::Truncated { expected, got: 10 }) if expected == 60 << 20), "{got:?}");
    }

    #[test]
    fn garbage_body_is_a_codec_error() {
        for body in [&[0xff_u8, 0xff, 0xff][..], &[200], &[1, 0xff]] {
            let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
            bytes.extend_from_slice(body);
            let mut reader: &[u8] = &bytes;
            let got = block_on(read_frame::<_, RaftRequest>(&mut reader));
            assert!(matches!(got, Err(FrameError::Codec(_))), "{body:?}: {got:?}");
        }
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
}
