//! The server side: [`serve`] answers each connection's requests in order
//! through a [`RaftRpc`].

use std::future::Future;
use std::time::Duration;

use openraft::Raft;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::wire::{RaftReply, RaftRequest, read_frame, write_frame};
use crate::cluster::{NodeId, TypeConfig};

/// How long a server connection may sit without a complete request before it
/// is closed: a leader heartbeats many times a second, so a minute of silence
/// means the peer is gone (or stuck), and its socket should not be kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Pause after a failed `accept` (e.g. `EMFILE`): retrying at once would spin
/// on the same error while the condition persists.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

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
