//! The client side: openraft's network factory ([`Network`]) and one
//! connection per peer ([`PeerClient`]).

use std::time::Duration;

use openraft::error::{InstallSnapshotError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::wire::{FrameError, RaftReply, RaftRequest, encode_frame, read_frame};
use crate::cluster::{Member, NodeId, TypeConfig};

/// The default bound on establishing a connection; the RPC's own deadline
/// still applies when it is shorter.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// The open connection, if any (the network's tests check it).
    pub(super) conn: Option<TcpStream>,
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
